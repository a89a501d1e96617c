/* doku-snapsim: injected faults, token lifetimes, the log, the counters,
 * reset, and a clean SIGTERM with a held request in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <cmocka.h>

#include "snap_time.h"
#include "testutil.h"

#define FAULT_WAIT_MS 20000

static simtest_customer cu;

static int setup(void **state)
{
	(void)state;
	if (sim_group_setup(NULL) != 0)
		return -1;
	if (simtest_open_customer(&cli, &sim, &cu) != 0)
		return -1;
	return simtest_top_up(&cli, &cu, "500000.00");
}

static void arm(const char *json)
{
	json_t *j = NULL;

	assert_int_equal(simtest_ctl(&sim, "POST", "/control/faults", json, &j), 201);
	assert_true(json_integer_value(json_object_get(j, "id")) > 0);
	json_decref(j);
}

static void top_up(const char *ref, const char *ext, simtest_reply *r)
{
	char body[512];
	simtest_opts o;

	memset(&o, 0, sizeof(o));
	o.external_id = ext;
	/* libcurl re-sends a request whose reused connection closed without an
	 * answer; a fresh connection shows the drop as the caller sees it */
	o.fresh_connection = true;
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"customerNumber\":\"%s\",\"amount\":{\"value\":\"100.00\","
		 "\"currency\":\"IDR\"},\"sessionId\":\"s\",\"notes\":\"n\"}", ref, cu.account_id);
	CALL(*r, P_TOPUP, body, &o);
}

/* The latestTransactionStatus of a top-up, or its responseCode when refused. */
static void expect_top_up_status(const char *ref, const char *ext, const char *code)
{
	char body[512];
	simtest_reply r;

	snprintf(body, sizeof(body),
		 "{\"originalPartnerReferenceNo\":\"%s\",\"originalExternalId\":\"%s\",\"serviceCode\":\"38\"}",
		 ref, ext);
	CALL(r, P_TOPUP_STATUS, body, NULL);
	assert_string_equal(r.code, code);
	simtest_reply_free(&r);
}

static void fresh_ext(char *out, size_t n)
{
	static unsigned long k;

	snprintf(out, n, "%ld%05d%03lu", (long)time(NULL), (int)getpid() % 100000, ++k % 1000);
}

static void test_http504_operation_not_applied(void **state)
{
	char ref[64], ext[40], *log = NULL;
	simtest_reply r;

	(void)state;
	arm("{\"path\":\"" P_TOPUP "\",\"kind\":\"http504\",\"apply\":false}");
	simtest_ref(ref, sizeof(ref), "f504");
	fresh_ext(ext, sizeof(ext));
	top_up(ref, ext, &r);
	EXPECT_CODE(r, 504, "5043800");
	EXPECT_MESSAGE(r, "Timeout");
	simtest_reply_free(&r);
	expect_top_up_status(ref, ext, "4043901"); /* it did not happen */
	assert_int_equal(simtest_ctl_text(&sim, "/control/log?path=" P_TOPUP "&status=504", &log), 200);
	assert_non_null(strstr(log, "\"fault\":\"http504\""));
	assert_non_null(strstr(log, "\"verdict\":\"fault\""));
	assert_non_null(strstr(log, "\"faultAfterOperation\":false"));
	/* not processed, yet the log names the request */
	assert_non_null(strstr(log, ref));
	assert_non_null(strstr(log, cli.client_id));
	free(log);
}

static void test_http504_operation_applied(void **state)
{
	char ref[64], ext[40], *log = NULL;
	simtest_reply r;

	(void)state;
	arm("{\"path\":\"" P_TOPUP "\",\"kind\":\"http504\",\"apply\":true}");
	simtest_ref(ref, sizeof(ref), "f504a");
	fresh_ext(ext, sizeof(ext));
	top_up(ref, ext, &r);
	EXPECT_CODE(r, 504, "5043800");
	simtest_reply_free(&r);
	expect_top_up_status(ref, ext, "2003900"); /* it happened */
	assert_int_equal(simtest_ctl_text(&sim, "/control/log?path=" P_TOPUP "&status=504", &log), 200);
	assert_non_null(strstr(log, "\"faultAfterOperation\":true"));
	assert_non_null(strstr(log, "\"verdict\":\"ok\""));
	free(log);
}

static void test_http500_503_and_in_progress(void **state)
{
	char ref[64], ts[SNAP_TIMESTAMP_LEN + 1], body[512];
	simtest_reply r;

	(void)state;
	arm("{\"path\":\"" P_BALANCE "\",\"kind\":\"http500\"}");
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"f500\"}", NULL);
	EXPECT_CODE(r, 500, "5001100");
	simtest_reply_free(&r);
	arm("{\"path\":\"" P_BALANCE "\",\"kind\":\"http503\"}");
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"f503\"}", NULL);
	EXPECT_CODE(r, 503, "5031100");
	simtest_reply_free(&r);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"after\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	simtest_reply_free(&r);

	/* 202: the purchase was made, its outcome is to be asked */
	arm("{\"path\":\"" P_PURCHASE "\",\"kind\":\"inprogress\",\"apply\":true}");
	simtest_ref(ref, sizeof(ref), "f202");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"chargeToken\":\"DOKU\",\"amount\":{\"value\":\"10.00\","
		 "\"currency\":\"IDR\"}}", ref);
	CALL(r, P_PURCHASE, body, NULL);
	EXPECT_CODE(r, 202, "2025400");
	EXPECT_MESSAGE(r, "In Progress");
	simtest_reply_free(&r);
	assert_int_equal(snap_time_format(time(NULL), ts), 0);
	snprintf(body, sizeof(body), "{\"partnerReferenceNo\":\"%s\",\"serviceCode\":\"54\",\"transactionDate\":\"%s\"}",
		 ref, ts);
	CALL(r, P_PURCHASE_STATUS, body, NULL);
	EXPECT_CODE(r, 200, "2005500");
	assert_string_equal(simtest_field(&r, "latestTransactionStatus"), "03");
	simtest_reply_free(&r);
}

static void test_dropped_connection(void **state)
{
	char ref[64], ext[40], *log = NULL;
	simtest_reply r;

	(void)state;
	arm("{\"path\":\"" P_TOPUP "\",\"kind\":\"drop\",\"apply\":false}");
	simtest_ref(ref, sizeof(ref), "drop");
	fresh_ext(ext, sizeof(ext));
	top_up(ref, ext, &r);
	assert_int_equal(r.http, 0);
	assert_int_not_equal(r.curl_rc, 0);
	simtest_reply_free(&r);
	expect_top_up_status(ref, ext, "4043901");

	arm("{\"path\":\"" P_TOPUP "\",\"kind\":\"drop\",\"apply\":true}");
	simtest_ref(ref, sizeof(ref), "drop-a");
	fresh_ext(ext, sizeof(ext));
	top_up(ref, ext, &r);
	assert_int_equal(r.http, 0);
	simtest_reply_free(&r);
	expect_top_up_status(ref, ext, "2003900");
	assert_int_equal(simtest_ctl_text(&sim, "/control/log?path=" P_TOPUP "&verdict=ok", &log), 200);
	assert_non_null(strstr(log, "\"httpStatus\":0"));
	assert_non_null(strstr(log, "\"fault\":\"drop\""));
	free(log);

	/* on a reused keep-alive connection libcurl re-sends a request that got
	 * no answer: the second copy carries the same X-EXTERNAL-ID and is
	 * refused (409xx00), so the top-up happens once */
	{
		char body[512];
		simtest_opts o;

		CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"warm-up\"}", NULL);
		EXPECT_CODE(r, 200, "2001100");
		simtest_reply_free(&r);
		arm("{\"path\":\"" P_TOPUP "\",\"kind\":\"drop\",\"apply\":true}");
		simtest_ref(ref, sizeof(ref), "drop-r");
		fresh_ext(ext, sizeof(ext));
		memset(&o, 0, sizeof(o));
		o.external_id = ext;
		snprintf(body, sizeof(body),
			 "{\"partnerReferenceNo\":\"%s\",\"customerNumber\":\"%s\",\"amount\":{\"value\":\"100.00\","
			 "\"currency\":\"IDR\"},\"sessionId\":\"s\",\"notes\":\"n\"}", ref, cu.account_id);
		CALL(r, P_TOPUP, body, &o);
		EXPECT_CODE(r, 409, "4093800");
		simtest_reply_free(&r);
		expect_top_up_status(ref, ext, "2003900");
	}
}

static void test_delays(void **state)
{
	simtest_reply r;

	(void)state;
	arm("{\"path\":\"" P_BALANCE "\",\"kind\":\"delay\",\"delayMs\":400}");
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"slow\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	assert_true(r.seconds >= 0.39);
	simtest_reply_free(&r);
	/* a delayed 504 */
	arm("{\"path\":\"" P_BALANCE "\",\"kind\":\"http504\",\"delayMs\":250}");
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"slow504\"}", NULL);
	EXPECT_CODE(r, 504, "5041100");
	assert_true(r.seconds >= 0.24);
	simtest_reply_free(&r);
	/* other connections are served while one is held */
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"fast\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	assert_true(r.seconds < 5.0);
	simtest_reply_free(&r);
}

static void test_token_faults(void **state)
{
	char body[SIMTEST_TOKEN_MAX + 64];
	simtest_reply r;

	(void)state;
	arm("{\"path\":\"" P_BALANCE "\",\"kind\":\"revoke_b2b\"}");
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"rb\"}", NULL);
	EXPECT_CODE(r, 401, "4011101");
	simtest_reply_free(&r);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"rb2\"}", NULL);
	EXPECT_CODE(r, 401, "4011101"); /* revoked for good */
	simtest_reply_free(&r);
	assert_int_equal(simtest_b2b(&cli), 0);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"rb3\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	simtest_reply_free(&r);

	/* expired customer token: the refresh token still works */
	arm("{\"path\":\"" P_BALANCE "\",\"kind\":\"expire_customer\"}");
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"ec\"}", NULL);
	EXPECT_CODE(r, 401, "4011102");
	simtest_reply_free(&r);
	snprintf(body, sizeof(body), "{\"grantType\":\"refresh_token\",\"refreshToken\":\"%s\"}", cli.refresh);
	TOKEN(r, P_TOKEN_B2B2C, body, NULL);
	EXPECT_CODE(r, 200, "2007400");
	snprintf(cli.customer, sizeof(cli.customer), "%s", simtest_field(&r, "accessToken"));
	simtest_reply_free(&r);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"ec2\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	simtest_reply_free(&r);

	/* revoked customer session: the refresh token is dead as well */
	arm("{\"path\":\"" P_BALANCE "\",\"kind\":\"revoke_customer\"}");
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"rc\"}", NULL);
	EXPECT_CODE(r, 401, "4011102");
	simtest_reply_free(&r);
	TOKEN(r, P_TOKEN_B2B2C, body, NULL);
	EXPECT_CODE(r, 401, "4017402");
	simtest_reply_free(&r);
	/* a new session from the binding's current authCode */
	{
		char inquiry[256];

		snprintf(inquiry, sizeof(inquiry), "{\"partnerReferenceNo\":\"%s\"}", cu.bind_ref);
		CALL(r, P_INQUIRE, inquiry, NULL);
		EXPECT_CODE(r, 200, "2000800");
		snprintf(body, sizeof(body), "{\"grantType\":\"authorization_code\",\"authCode\":\"%s\"}",
			 simtest_field(&r, "additionalInfo.authCode"));
		simtest_reply_free(&r);
		TOKEN(r, P_TOKEN_B2B2C, body, NULL);
		EXPECT_CODE(r, 200, "2007400");
		snprintf(cli.customer, sizeof(cli.customer), "%s", simtest_field(&r, "accessToken"));
		snprintf(cli.refresh, sizeof(cli.refresh), "%s", simtest_field(&r, "refreshToken"));
		simtest_reply_free(&r);
	}
	/* the control API revokes too */
	{
		json_t *j = NULL;

		assert_int_equal(simtest_ctl(&sim, "POST", "/control/tokens",
					     "{\"action\":\"revoke\",\"kind\":\"b2b\"}", &j), 200);
		assert_int_equal(json_integer_value(json_object_get(j, "tokens")), 1);
		json_decref(j);
	}
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"cr\"}", NULL);
	EXPECT_CODE(r, 401, "4011101");
	simtest_reply_free(&r);
	assert_int_equal(simtest_b2b(&cli), 0);
}

static void test_counts_wildcards_and_listing(void **state)
{
	json_t *j = NULL;
	simtest_reply r;
	long id;

	(void)state;
	arm("{\"path\":\"*\",\"kind\":\"http503\",\"count\":2}");
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"w1\"}", NULL);
	EXPECT_CODE(r, 503, "5031100");
	simtest_reply_free(&r);
	CALL(r, P_INQUIRE, "{\"partnerReferenceNo\":\"w2\"}", NULL);
	EXPECT_CODE(r, 503, "5030800");
	simtest_reply_free(&r);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"w3\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	simtest_reply_free(&r);
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/faults", NULL, &j), 200);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);

	/* until cleared */
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/faults",
				     "{\"path\":\"" P_BALANCE "\",\"kind\":\"http500\",\"count\":-1}", &j), 201);
	id = (long)json_integer_value(json_object_get(j, "id"));
	json_decref(j);
	for (int i = 0; i < 3; i++) {
		CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"u\"}", NULL);
		EXPECT_CODE(r, 500, "5001100");
		simtest_reply_free(&r);
	}
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/faults", NULL, &j), 200);
	assert_int_equal(json_array_size(j), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "fired")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "remaining")), -1);
	json_decref(j);
	{
		char path[64];

		snprintf(path, sizeof(path), "/control/faults/%ld", id);
		assert_int_equal(simtest_ctl(&sim, "DELETE", path, NULL, NULL), 200);
		assert_int_equal(simtest_ctl(&sim, "DELETE", path, NULL, NULL), 404);
	}
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"u2\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	simtest_reply_free(&r);
	arm("{\"kind\":\"drop\",\"count\":5}");
	assert_int_equal(simtest_ctl(&sim, "DELETE", "/control/faults", NULL, NULL), 200);
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/faults", NULL, &j), 200);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
}

static json_int_t counter(json_t *c, const char *group, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(c, group), key));
}

static void test_log_and_counters(void **state)
{
	json_t *before = NULL, *after = NULL;
	char *log = NULL, path[128];
	simtest_reply r;
	long last;

	(void)state;
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/counters", NULL, &before), 200);
	last = (long)json_integer_value(json_object_get(before, "lastSeq"));
	for (int i = 0; i < 3; i++)
		assert_int_equal(simtest_b2b(&cli), 0);
	for (int i = 0; i < 4; i++) {
		CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"cnt\"}", NULL);
		EXPECT_CODE(r, 200, "2001100");
		simtest_reply_free(&r);
	}
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"cnt\"}", &(simtest_opts){ .bad_signature = true });
	EXPECT_CODE(r, 401, "4011100");
	simtest_reply_free(&r);
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/counters", NULL, &after), 200);
	assert_int_equal(counter(after, "tokens", "b2b") - counter(before, "tokens", "b2b"), 3);
	assert_int_equal(counter(after, "byEndpoint", P_BALANCE) - counter(before, "byEndpoint", P_BALANCE), 5);
	assert_int_equal(counter(after, "byEndpoint", P_TOKEN_B2B) - counter(before, "byEndpoint", P_TOKEN_B2B), 3);
	assert_int_equal(counter(after, "byStatus", "200") - counter(before, "byStatus", "200"), 7);
	assert_int_equal(counter(after, "byStatus", "401") - counter(before, "byStatus", "401"), 1);
	assert_int_equal(json_integer_value(json_object_get(after, "requests")) -
			 json_integer_value(json_object_get(before, "requests")), 8);
	assert_true(counter(after, "tokens", "b2b2c") >= 2);
	json_decref(before);
	json_decref(after);

	/* the log since then: 8 lines, in order, with the request's facts */
	snprintf(path, sizeof(path), "/control/log?since=%ld", last);
	assert_int_equal(simtest_ctl_text(&sim, path, &log), 200);
	{
		int lines = 0;
		long prev = last;

		for (char *line = log; *line != '\0';) {
			char *end = strchr(line, '\n');
			json_t *e;

			assert_non_null(end);
			e = json_loadb(line, (size_t)(end - line), 0, NULL);
			assert_non_null(e);
			assert_true(json_integer_value(json_object_get(e, "seq")) > prev);
			prev = (long)json_integer_value(json_object_get(e, "seq"));
			assert_string_equal(jstr(e, "clientId"), cli.client_id);
			assert_string_equal(jstr(e, "method"), "POST");
			if (strcmp(jstr(e, "path"), P_BALANCE) == 0 &&
			    strcmp(jstr(e, "verdict"), "ok") == 0) {
				assert_string_equal(jstr(e, "partnerReferenceNo"), "cnt");
				assert_int_equal(strlen(jstr(e, "externalId")), 36);
			}
			assert_non_null(strstr(jstr(e, "time"), "+07:00"));
			json_decref(e);
			lines++;
			line = end + 1;
		}
		assert_int_equal(lines, 8);
	}
	assert_non_null(strstr(log, "\"verdict\":\"bad_signature\""));
	free(log);
	snprintf(path, sizeof(path), "/control/log?since=%ld&path=" P_TOKEN_B2B, last);
	assert_int_equal(simtest_ctl_text(&sim, path, &log), 200);
	{
		int lines = 0;

		for (char *p = log; (p = strchr(p, '\n')) != NULL; p++)
			lines++;
		assert_int_equal(lines, 3);
	}
	free(log);
}

static void test_token_lifetimes(void **state)
{
	json_t *j = NULL;
	simtest_reply r;
	char body[SIMTEST_TOKEN_MAX + 64];
	time_t expiry, now;

	(void)state;
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/settings",
				     "{\"b2bTokenTtl\":60,\"customerTokenTtl\":120}", &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "b2bTokenTtl")), 60);
	json_decref(j);
	TOKEN(r, P_TOKEN_B2B, "{\"grantType\":\"client_credentials\"}", NULL);
	EXPECT_CODE(r, 200, "2007300");
	assert_string_equal(simtest_field(&r, "expiresIn"), "60");
	snprintf(cli.b2b, sizeof(cli.b2b), "%s", simtest_field(&r, "accessToken"));
	simtest_reply_free(&r);
	snprintf(body, sizeof(body), "{\"grantType\":\"refresh_token\",\"refreshToken\":\"%s\"}", cli.refresh);
	TOKEN(r, P_TOKEN_B2B2C, body, NULL);
	EXPECT_CODE(r, 200, "2007400");
	now = time(NULL);
	assert_int_equal(snap_time_parse(simtest_field(&r, "accessTokenExpiryTime"),
					 strlen(simtest_field(&r, "accessTokenExpiryTime")), &expiry), 0);
	assert_true(expiry >= now + 110 && expiry <= now + 130);
	snprintf(cli.customer, sizeof(cli.customer), "%s", simtest_field(&r, "accessToken"));
	simtest_reply_free(&r);
	/* 61 s idle: the B2B token is gone, the customer token not yet */
	advance_clock(61);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"ttl\"}", NULL);
	EXPECT_CODE(r, 401, "4011101");
	simtest_reply_free(&r);
	assert_int_equal(simtest_b2b(&cli), 0);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"ttl\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	simtest_reply_free(&r);
	advance_clock(-61);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/settings",
				     "{\"b2bTokenTtl\":900,\"customerTokenTtl\":900}", NULL), 200);
	assert_int_equal(simtest_b2b(&cli), 0);
}

static void test_reset(void **state)
{
	json_t *j = NULL;
	simtest_reply r;

	(void)state;
	arm("{\"kind\":\"http500\",\"count\":-1,\"path\":\"" P_HISTORY "\"}");
	advance_clock(5);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/reset", "{}", NULL), 200);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"after-reset\"}", NULL);
	EXPECT_CODE(r, 401, "4011101");
	simtest_reply_free(&r);
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/accounts", NULL, &j), 200);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/faults", NULL, &j), 200);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/clock", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "offsetSeconds")), 0);
	json_decref(j);
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/counters", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "requests")), 1);
	assert_int_equal(counter(j, "tokens", "b2b"), 0);
	json_decref(j);
	/* and the world works again from scratch */
	assert_int_equal(simtest_b2b(&cli), 0);
	assert_int_equal(simtest_open_customer(&cli, &sim, &cu), 0);
}

struct held_call {
	simtest_client c;
	simtest_reply r;
};

static void *held_call_main(void *arg)
{
	struct held_call *h = arg;

	simtest_call(&h->c, P_BALANCE, "{\"partnerReferenceNo\":\"held\"}", NULL, &h->r);
	return NULL;
}

/* SIGTERM while a request is held by a 20 s delay: the simulator answers
 * or closes it and exits cleanly at once. */
static void test_sigterm_with_a_held_request(void **state)
{
	struct held_call *h = calloc(1, sizeof(*h));
	struct timespec t0, t1;
	pthread_t thread;
	bool fired = false;

	(void)state;
	assert_non_null(h);
	assert_int_equal(simtest_client_init(&h->c, &sim), 0);
	memcpy(h->c.b2b, cli.b2b, sizeof(h->c.b2b));
	memcpy(h->c.customer, cli.customer, sizeof(h->c.customer));
	arm("{\"path\":\"" P_BALANCE "\",\"kind\":\"delay\",\"delayMs\":20000}");
	assert_int_equal(pthread_create(&thread, NULL, held_call_main, h), 0);
	/* wait for the simulator to report the fault taken */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!fired) {
		json_t *j = NULL;

		assert_int_equal(simtest_ctl(&sim, "GET", "/control/faults", NULL, &j), 200);
		fired = json_array_size(j) == 0; /* a count-1 fault is removed when taken */
		json_decref(j);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_true((t1.tv_sec - t0.tv_sec) * 1000 < FAULT_WAIT_MS);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(simtest_stop(&sim), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 10);
	pthread_join(thread, NULL);
	assert_true(h->r.http == 200 || h->r.http == 0);
	simtest_reply_free(&h->r);
	simtest_client_free(&h->c);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http504_operation_not_applied),
		cmocka_unit_test(test_http504_operation_applied),
		cmocka_unit_test(test_http500_503_and_in_progress),
		cmocka_unit_test(test_dropped_connection),
		cmocka_unit_test(test_delays),
		cmocka_unit_test(test_token_faults),
		cmocka_unit_test(test_counts_wildcards_and_listing),
		cmocka_unit_test(test_log_and_counters),
		cmocka_unit_test(test_token_lifetimes),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_sigterm_with_a_held_request),
	};

	return cmocka_run_group_tests_name("snapsim_faults", tests, setup, sim_group_teardown);
}
