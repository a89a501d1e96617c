/* rpc/reply.c: DOKU's answers and transport failures -> gRPC code + outcome. */
#include "daemon_test.h"

#include "doku/bridge/v1/bridge.pb-c.h"
#include "reply.h"
#include "upstream.h"

#define C(x) DOKU__BRIDGE__V1__CODE__##x
#define O(x) DOKU__BRIDGE__V1__OUTCOME__OUTCOME_##x

static void check(int transport, bool sent, unsigned http, const char *rc, int code, int outcome)
{
	snap_code parsed;
	struct reply_exchange in = { transport, sent, http, NULL };
	struct reply_verdict out;

	if (rc != NULL) {
		assert_int_equal(snap_code_parse(rc, strlen(rc), &parsed), 0);
		in.rc = &parsed;
	}
	reply_outcome(&in, &out);
	if (out.code != code || out.outcome != outcome)
		fprintf(stderr, "transport %d sent %d http %u rc %s: got %s/%s\n", transport, sent, http,
			rc ? rc : "-", reply_code_name(out.code), reply_outcome_name(out.outcome));
	assert_int_equal(out.code, code);
	assert_int_equal(out.outcome, outcome);
}

static void test_answers(void **state)
{
	(void)state;
	check(UP_OK, true, 200, "2005400", C(OK), O(DONE));
	check(UP_OK, true, 202, "2025400", C(OK), O(UNKNOWN));
	check(UP_OK, true, 400, "4005402", C(INVALID_ARGUMENT), O(NOT_DONE));
	check(UP_OK, true, 401, "4015400", C(UNAUTHENTICATED), O(NOT_DONE));
	check(UP_OK, true, 403, "4035414", C(FAILED_PRECONDITION), O(NOT_DONE));
	check(UP_OK, true, 404, "4045501", C(NOT_FOUND), O(NOT_DONE));
	check(UP_OK, true, 409, "4095401", C(ALREADY_EXISTS), O(NOT_DONE));
	check(UP_OK, true, 429, "4295400", C(RESOURCE_EXHAUSTED), O(NOT_DONE));
	check(UP_OK, true, 500, "5005401", C(INTERNAL), O(UNKNOWN));
	check(UP_OK, true, 503, "5035400", C(UNAVAILABLE), O(UNKNOWN));
	check(UP_OK, true, 504, "5045400", C(DEADLINE_EXCEEDED), O(UNKNOWN));
	/* the responseCode decides over the HTTP status */
	check(UP_OK, true, 200, "4035414", C(FAILED_PRECONDITION), O(NOT_DONE));
	/* no readable responseCode */
	check(UP_OK, true, 200, NULL, C(UNKNOWN), O(UNKNOWN));
	check(UP_OK, true, 502, NULL, C(UNAVAILABLE), O(UNKNOWN));
	check(UP_OK, true, 504, NULL, C(DEADLINE_EXCEEDED), O(UNKNOWN));
	check(UP_OK, true, 404, NULL, C(NOT_FOUND), O(NOT_DONE));
}

static void test_transport(void **state)
{
	(void)state;
	check(UP_ERR_CONNECT, false, 0, NULL, C(UNAVAILABLE), O(NOT_DONE));
	check(UP_ERR_IO, false, 0, NULL, C(UNAVAILABLE), O(NOT_DONE));
	check(UP_ERR_IO, true, 0, NULL, C(UNAVAILABLE), O(UNKNOWN));   /* dropped after sending */
	check(UP_ERR_TIMEOUT, true, 0, NULL, C(DEADLINE_EXCEEDED), O(UNKNOWN));
	check(UP_ERR_TIMEOUT, false, 0, NULL, C(DEADLINE_EXCEEDED), O(NOT_DONE));
	check(UP_ERR_TOO_BIG, true, 0, NULL, C(INTERNAL), O(UNKNOWN));
	check(UP_ERR_CANCELLED, true, 0, NULL, C(CANCELLED), O(UNKNOWN));
	check(UP_ERR_CANCELLED, false, 0, NULL, C(CANCELLED), O(NOT_DONE));
	check(UP_ERR_INTERNAL, false, 0, NULL, C(INTERNAL), O(NOT_DONE));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(reply_code_name(C(OK)), "OK");
	assert_string_equal(reply_code_name(C(UNAUTHENTICATED)), "UNAUTHENTICATED");
	assert_string_equal(reply_code_name(17), "?");
	assert_string_equal(reply_outcome_name(O(UNKNOWN)), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_transport),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
