/* snap_answer: DOKU's answers read the way the daemon reads them: a good
 * answer, a loose one (capitalised keys, a number for responseCode), bodies
 * that are not JSON or empty, without or with a malformed responseCode, and
 * descriptors without the two fields. */
#include "test_util.h"

#include "snap_answer.h"
#include "snap_arena.h"
#include "snap_code.h"
#include "snap_err.h"

#include "doku/wallet/v1/wallet.pb-c.h"

#define ARENA_LIMIT (1024u * 1024u)
#define WALLET(name) &doku__wallet__v1__##name##__descriptor
#define OK_BODY "{\"responseCode\":\"2001100\"}"

static snap_arena arena;

static int setup(void **state)
{
	(void)state;
	snap_arena_init(&arena, ARENA_LIMIT);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	snap_arena_free(&arena);
	return 0;
}

static void read_str(const ProtobufCMessageDescriptor *desc, unsigned http, const char *body,
		     snap_answer *out)
{
	memset(out, 0xa5, sizeof(*out)); /* every member must be set */
	snap_answer_read(desc, http, body, body != NULL ? strlen(body) : 0, &arena, out);
	assert_int_equal(out->http, http);
}

/* Nothing read: no message, no code, no message text. */
static void check_nothing(const snap_answer *a)
{
	assert_null(a->msg);
	assert_false(a->have_code);
	assert_null(a->response_code);
	assert_null(a->response_message);
}

static void check_code(const snap_answer *a, const char *text, int http, int service, int cs)
{
	assert_true(a->have_code);
	assert_int_equal(a->code.http, http);
	assert_int_equal(a->code.service, service);
	assert_int_equal(a->code.case_code, cs);
	assert_string_equal(a->code.text, text);
	assert_ptr_equal(a->response_code, a->code.text);
}

static void test_good(void **state)
{
	snap_answer a;
	const Doku__Wallet__V1__GetBalanceResponse *r;

	(void)state;
	read_str(WALLET(get_balance_response), 200,
		 "{\"responseCode\":\"2001100\",\"responseMessage\":\"Successful\","
		 "\"referenceNo\":\"REF-1\",\"partnerReferenceNo\":\"INV-1\",\"name\":\"Budi\"}",
		 &a);
	assert_non_null(a.msg);
	assert_ptr_equal(a.msg->descriptor, WALLET(get_balance_response));
	r = (const Doku__Wallet__V1__GetBalanceResponse *)a.msg;
	assert_string_equal(r->reference_no, "REF-1");
	assert_string_equal(r->name, "Budi");
	check_code(&a, "2001100", 200, 11, 0);
	assert_true(snap_code_is_success(&a.code));
	assert_string_equal(a.response_message, "Successful");
}

static void test_token_answer(void **state)
{
	snap_answer a;
	const Doku__Wallet__V1__AccessTokenResponse *r;

	(void)state;
	read_str(WALLET(access_token_response), 200,
		 "{\"responseCode\":\"2007300\",\"responseMessage\":\"Successful\","
		 "\"accessToken\":\"eyJ.tok\",\"tokenType\":\"Bearer\",\"expiresIn\":900}",
		 &a);
	r = (const Doku__Wallet__V1__AccessTokenResponse *)a.msg;
	assert_non_null(r);
	assert_string_equal(r->access_token, "eyJ.tok");
	assert_string_equal(r->expires_in, "900");
	check_code(&a, "2007300", 200, 73, 0);
}

static void test_refusal(void **state)
{
	snap_answer a;

	(void)state;
	read_str(WALLET(error_response), 401,
		 "{\"responseCode\":\"4011101\",\"responseMessage\":\"Invalid Token (B2B)\"}", &a);
	assert_non_null(a.msg);
	check_code(&a, "4011101", 401, 11, 1);
	assert_string_equal(a.response_message, "Invalid Token (B2B)");
	/* The HTTP status is kept as given, even when it and the code disagree. */
	read_str(WALLET(get_balance_response), 200,
		 "{\"responseCode\":\"5041100\",\"responseMessage\":\"Timeout\"}", &a);
	check_code(&a, "5041100", 504, 11, 0);
	assert_false(snap_code_is_success(&a.code));
}

/* Capitalised keys, a number where a string is expected, unknown keys, whitespace. */
static void test_loose(void **state)
{
	snap_answer a;
	const Doku__Wallet__V1__GetBalanceResponse *r;

	(void)state;
	read_str(WALLET(get_balance_response), 200,
		 " {\n \"ResponseCode\" : 2001100 ,\"RESPONSEMESSAGE\":\"OK\","
		 "\"ReferenceNo\":12345,"
		 "\"somethingNew\":{\"a\":[1,2]},\"name\":null}\n",
		 &a);
	r = (const Doku__Wallet__V1__GetBalanceResponse *)a.msg;
	assert_non_null(r);
	assert_string_equal(r->reference_no, "12345");
	check_code(&a, "2001100", 200, 11, 0);
	assert_string_equal(a.response_message, "OK");
}

static void test_not_json(void **state)
{
	static const char *const bodies[] = {
		"<html><body>502 Bad Gateway</body></html>",
		"{\"responseCode\":\"2001100\"",          /* truncated */
		"{\"responseCode\":\"2001100\"}}",        /* trailing garbage */
		"[{\"responseCode\":\"2001100\"}]",       /* not an object */
		"\"2001100\"",
		"2001100",
		"null",
		" ",
		"{\"responseCode\":\"2001100\",\"responseMessage\":\"\xff\xfe\"}", /* not UTF-8 */
	};
	snap_answer a;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		read_str(WALLET(get_balance_response), 502, bodies[i], &a);
		check_nothing(&a);
	}
	/* A NUL inside the body. */
	memset(&a, 0xa5, sizeof(a));
	snap_answer_read(WALLET(get_balance_response), 200, OK_BODY "\0{}", strlen(OK_BODY) + 3,
			 &arena, &a);
	check_nothing(&a);
}

static void test_empty(void **state)
{
	snap_answer a;

	(void)state;
	read_str(WALLET(get_balance_response), 504, "", &a);
	check_nothing(&a);
	read_str(WALLET(get_balance_response), 204, NULL, &a);
	check_nothing(&a);
	/* A length of 0 reads nothing even when there are bytes. */
	memset(&a, 0xa5, sizeof(a));
	snap_answer_read(WALLET(get_balance_response), 200, OK_BODY, 0, &arena, &a);
	check_nothing(&a);
	assert_int_equal(a.http, 200);
	/* An empty object: a message, nothing in it. */
	read_str(WALLET(get_balance_response), 200, "{}", &a);
	assert_non_null(a.msg);
	assert_false(a.have_code);
	assert_null(a.response_code);
	assert_null(a.response_message);
}

static void test_no_code(void **state)
{
	snap_answer a;

	(void)state;
	read_str(WALLET(get_balance_response), 401, "{\"responseMessage\":\"Unauthorized\"}", &a);
	assert_non_null(a.msg);
	assert_false(a.have_code);
	assert_null(a.response_code);
	assert_string_equal(a.response_message, "Unauthorized");
	/* Empty strings count as absent. */
	read_str(WALLET(get_balance_response), 500,
		 "{\"responseCode\":\"\",\"responseMessage\":\"\"}", &a);
	assert_non_null(a.msg);
	assert_false(a.have_code);
	assert_null(a.response_code);
	assert_null(a.response_message);
}

static void test_malformed_code(void **state)
{
	static const char *const codes[] = {
		"\"200110\"",    /* 6 digits */
		"\"20011000\"",  /* 8 digits */
		"\"20O1100\"",   /* a letter */
		"\" 2001100\"",  /* a blank */
		"\"2001100 \"",
		"\"-200110\"",
		"\"0991100\"",   /* HTTP 099 */
		"\"6001100\"",   /* HTTP 600 */
		"-2001100",      /* a negative number */
		"2001100.5",     /* a fraction */
		"true",
		"{\"code\":\"2001100\"}",
		"[\"2001100\"]",
		"null",
	};
	char body[256];
	snap_answer a;

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		snprintf(body, sizeof(body), "{\"responseCode\":%s,\"responseMessage\":\"Bad\"}",
			 codes[i]);
		read_str(WALLET(get_balance_response), 400, body, &a);
		/* a value that cannot be placed is ignored: the rest is read */
		assert_non_null(a.msg);
		if (a.have_code)
			fail_msg("responseCode %s read as %s", codes[i], a.code.text);
		assert_null(a.response_code);
		assert_string_equal(a.response_message, "Bad");
	}
}

/* A descriptor without response_code / response_message reads neither. */
static void test_descriptor_without_fields(void **state)
{
	snap_answer a;

	(void)state;
	read_str(WALLET(amount), 200,
		 "{\"value\":\"1.00\",\"currency\":\"IDR\",\"responseCode\":\"2001100\","
		 "\"responseMessage\":\"Successful\"}",
		 &a);
	assert_non_null(a.msg);
	assert_false(a.have_code);
	assert_null(a.response_code);
	assert_null(a.response_message);
}

static void test_bad_args(void **state)
{
	snap_answer a;
	snap_arena small;

	(void)state;
	memset(&a, 0xa5, sizeof(a));
	snap_answer_read(NULL, 200, OK_BODY, strlen(OK_BODY), &arena, &a);
	check_nothing(&a);
	assert_int_equal(a.http, 200);
	memset(&a, 0xa5, sizeof(a));
	snap_answer_read(WALLET(get_balance_response), 200, OK_BODY, strlen(OK_BODY),
			 NULL, &a);
	check_nothing(&a);
	snap_answer_read(WALLET(get_balance_response), 200, "{}", 2, &arena, NULL);
	/* NULL body with a length. */
	memset(&a, 0xa5, sizeof(a));
	snap_answer_read(WALLET(get_balance_response), 200, NULL, 5, &arena, &a);
	check_nothing(&a);
	/* An arena too small for the message. */
	snap_arena_init(&small, 32);
	memset(&a, 0xa5, sizeof(a));
	snap_answer_read(WALLET(get_balance_response), 200, OK_BODY, strlen(OK_BODY),
			 &small, &a);
	check_nothing(&a);
	snap_arena_free(&small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loose, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_descriptor_without_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
