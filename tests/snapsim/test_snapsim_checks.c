/* doku-snapsim: every strict check fires, with its SNAP code, in DOKU's order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "snap_time.h"
#include "testutil.h"

#define GRANT_B2B "{\"grantType\":\"client_credentials\"}"

static char stamp_buf[SNAP_TIMESTAMP_LEN + 1];

/* A timestamp offset seconds from now. */
static const char *stamp(long offset)
{
	assert_int_equal(snap_time_format(time(NULL) + offset, stamp_buf), 0);
	return stamp_buf;
}

/* A fresh, valid CreateAccount body. */
static const char *create_body(char *buf, size_t n)
{
	char ref[64], phone[32];

	simtest_ref(ref, sizeof(ref), "chk");
	simtest_phone(phone, sizeof(phone));
	snprintf(buf, n,
		 "{\"partnerReferenceNo\":\"%s\",\"name\":\"Check\",\"phoneNo\":\"%s\","
		 "\"email\":\"x%s@example.com\",\"redirectUrl\":\"https://m.example/r\"}",
		 ref, phone, phone);
	return buf;
}

static int setup(void **state)
{
	(void)state;
	if (sim_group_setup(NULL) != 0)
		return -1;
	return simtest_b2b(&cli);
}

static void test_token_headers(void **state)
{
	simtest_reply r;
	simtest_opts o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.omit = "X-CLIENT-KEY";
	TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
	EXPECT_CODE(r, 400, "4007302");
	EXPECT_MESSAGE(r, "{X-CLIENT-KEY}");
	simtest_reply_free(&r);

	o.omit = "X-TIMESTAMP";
	TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
	EXPECT_CODE(r, 400, "4007302");
	EXPECT_MESSAGE(r, "{X-TIMESTAMP}");
	simtest_reply_free(&r);

	o.omit = "X-SIGNATURE";
	TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
	EXPECT_CODE(r, 400, "4007302");
	simtest_reply_free(&r);

	memset(&o, 0, sizeof(o));
	o.timestamp = "2024-13-01T10:00:00+07:00";
	TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
	EXPECT_CODE(r, 400, "4007301");
	EXPECT_MESSAGE(r, "{X-TIMESTAMP}");
	simtest_reply_free(&r);

	memset(&o, 0, sizeof(o));
	o.set_name = "Content-Type";
	o.set_value = "text/plain";
	TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
	EXPECT_CODE(r, 400, "4007301");
	EXPECT_MESSAGE(r, "{Content-Type}");
	simtest_reply_free(&r);
}

static void test_token_timestamp_window(void **state)
{
	simtest_reply r;
	simtest_opts o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.timestamp = stamp(-16 * 60);
	TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
	EXPECT_CODE(r, 401, "4017300");
	EXPECT_MESSAGE(r, "X-TIMESTAMP");
	simtest_reply_free(&r);

	o.timestamp = stamp(16 * 60);
	TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
	EXPECT_CODE(r, 401, "4017300");
	simtest_reply_free(&r);

	/* inside the 15-minute window, and with milliseconds and Z */
	o.timestamp = stamp(-10 * 60);
	TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
	EXPECT_CODE(r, 200, "2007300");
	simtest_reply_free(&r);
	{
		char z[40];
		struct tm tm;
		time_t now = time(NULL);

		gmtime_r(&now, &tm);
		strftime(z, sizeof(z), "%Y-%m-%dT%H:%M:%S.123Z", &tm);
		o.timestamp = z;
		TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
		EXPECT_CODE(r, 200, "2007300");
		simtest_reply_free(&r);
	}
	assert_int_equal(simtest_b2b(&cli), 0);
}

static void test_token_client_and_signature(void **state)
{
	simtest_reply r;
	simtest_opts o;
	char *log = NULL;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.set_name = "X-CLIENT-KEY";
	o.set_value = "BRN-0000-UNKNOWN";
	TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
	EXPECT_CODE(r, 401, "4017300");
	EXPECT_MESSAGE(r, "X-CLIENT-KEY");
	simtest_reply_free(&r);

	memset(&o, 0, sizeof(o));
	o.bad_signature = true;
	TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
	EXPECT_CODE(r, 401, "4017300");
	simtest_reply_free(&r);

	/* the signature of another timestamp */
	memset(&o, 0, sizeof(o));
	o.set_name = "X-TIMESTAMP";
	{
		char signed_ts[SNAP_TIMESTAMP_LEN + 1], sent_ts[SNAP_TIMESTAMP_LEN + 1];

		assert_int_equal(snap_time_format(time(NULL) - 2, signed_ts), 0);
		assert_int_equal(snap_time_format(time(NULL) - 1, sent_ts), 0);
		o.timestamp = signed_ts;
		o.set_value = sent_ts;
		TOKEN(r, P_TOKEN_B2B, GRANT_B2B, &o);
		EXPECT_CODE(r, 401, "4017300");
		simtest_reply_free(&r);
	}
	assert_int_equal(simtest_ctl_text(&sim, "/control/log?verdict=bad_token_signature", &log), 200);
	assert_non_null(strstr(log, "\"responseCode\":\"4017300\""));
	free(log);
}

static void test_token_body(void **state)
{
	simtest_reply r;

	(void)state;
	TOKEN(r, P_TOKEN_B2B, "{\"grantType\":\"password\"}", NULL);
	EXPECT_CODE(r, 400, "4007301");
	EXPECT_MESSAGE(r, "{grantType}");
	simtest_reply_free(&r);

	TOKEN(r, P_TOKEN_B2B, "{}", NULL);
	EXPECT_CODE(r, 400, "4007302");
	EXPECT_MESSAGE(r, "{grantType}");
	simtest_reply_free(&r);

	TOKEN(r, P_TOKEN_B2B, "{\"grantType\":", NULL);
	EXPECT_CODE(r, 400, "4007300");
	simtest_reply_free(&r);

	TOKEN(r, P_TOKEN_B2B2C, "{\"grantType\":\"authorization_code\"}", NULL);
	EXPECT_CODE(r, 400, "4007402");
	EXPECT_MESSAGE(r, "{authCode}");
	simtest_reply_free(&r);

	TOKEN(r, P_TOKEN_B2B2C, "{\"grantType\":\"authorization_code\",\"authCode\":\"never-issued\"}", NULL);
	EXPECT_CODE(r, 401, "4017400");
	simtest_reply_free(&r);

	TOKEN(r, P_TOKEN_B2B2C, "{\"grantType\":\"refresh_token\",\"refreshToken\":\"never-issued\"}", NULL);
	EXPECT_CODE(r, 401, "4017402");
	simtest_reply_free(&r);
}

static void test_service_headers_missing(void **state)
{
	static const char *const names[] = { "Content-Type", "X-TIMESTAMP", "X-SIGNATURE",
					     "X-PARTNER-ID", "X-EXTERNAL-ID", "Authorization" };
	char body[512], want[64];
	simtest_reply r;
	simtest_opts o;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		memset(&o, 0, sizeof(o));
		o.omit = names[i];
		CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
		EXPECT_CODE(r, 400, "4000602");
		snprintf(want, sizeof(want), "{%s}", names[i]);
		EXPECT_MESSAGE(r, want);
		simtest_reply_free(&r);
	}
	memset(&o, 0, sizeof(o));
	o.omit = "Authorization-Customer";
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"b-1\"}", &o);
	EXPECT_CODE(r, 400, "4001102");
	EXPECT_MESSAGE(r, "{Authorization-Customer}");
	simtest_reply_free(&r);
}

static void test_service_headers_malformed(void **state)
{
	char body[512];
	simtest_reply r;
	simtest_opts o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.external_id = "12ab";
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 400, "4000601");
	EXPECT_MESSAGE(r, "{X-EXTERNAL-ID}");
	simtest_reply_free(&r);

	o.external_id = "1234567890123456789012345678901234567"; /* 37 digits */
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 400, "4000601");
	simtest_reply_free(&r);

	memset(&o, 0, sizeof(o));
	o.set_name = "Authorization";
	o.set_value = "Basic dXNlcjpwYXNz";
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 400, "4000601");
	EXPECT_MESSAGE(r, "{Authorization}");
	simtest_reply_free(&r);

	memset(&o, 0, sizeof(o));
	o.timestamp = "yesterday";
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 400, "4000601");
	simtest_reply_free(&r);
}

static void test_service_timestamp_partner_signature(void **state)
{
	char body[512];
	simtest_reply r;
	simtest_opts o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.timestamp = stamp(-20 * 60);
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 401, "4010600");
	EXPECT_MESSAGE(r, "X-TIMESTAMP");
	simtest_reply_free(&r);

	memset(&o, 0, sizeof(o));
	o.set_name = "X-PARTNER-ID";
	o.set_value = "BRN-9999-NOBODY";
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 401, "4010600");
	EXPECT_MESSAGE(r, "X-PARTNER-ID");
	simtest_reply_free(&r);

	/* the HMAC covers the exact bytes: a re-serialised body does not verify */
	memset(&o, 0, sizeof(o));
	create_body(body, sizeof(body));
	{
		char spaced[600];

		snprintf(spaced, sizeof(spaced), "{ %s", body + 1);
		o.sign_body = body;
		CALL(r, P_CREATE, spaced, &o);
		EXPECT_CODE(r, 401, "4010600");
		EXPECT_MESSAGE(r, "signature");
		simtest_reply_free(&r);
	}
	memset(&o, 0, sizeof(o));
	o.bad_signature = true;
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 401, "4010600");
	simtest_reply_free(&r);

	memset(&o, 0, sizeof(o));
	o.secret = "SK-not-the-secret";
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 401, "4010600");
	simtest_reply_free(&r);

	/* the right signature works */
	CALL(r, P_CREATE, create_body(body, sizeof(body)), NULL);
	EXPECT_CODE(r, 200, "2000600");
	simtest_reply_free(&r);
}

static void test_b2b_token_newest_only(void **state)
{
	char body[512], old[SIMTEST_TOKEN_MAX];
	simtest_reply r;
	simtest_opts o;

	(void)state;
	assert_int_equal(simtest_b2b(&cli), 0);
	snprintf(old, sizeof(old), "%s", cli.b2b);
	assert_int_equal(simtest_b2b(&cli), 0);
	assert_string_not_equal(old, cli.b2b);
	memset(&o, 0, sizeof(o));
	o.b2b_token = old;
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 401, "4010601");
	EXPECT_MESSAGE(r, "Invalid Token (B2B)");
	simtest_reply_free(&r);

	o.b2b_token = "never-issued-token";
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 401, "4010601");
	simtest_reply_free(&r);

	CALL(r, P_CREATE, create_body(body, sizeof(body)), NULL);
	EXPECT_CODE(r, 200, "2000600");
	simtest_reply_free(&r);

	/* expired through the control API */
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/tokens",
				     "{\"action\":\"expire\",\"kind\":\"b2b\"}", NULL), 200);
	CALL(r, P_CREATE, create_body(body, sizeof(body)), NULL);
	EXPECT_CODE(r, 401, "4010601");
	simtest_reply_free(&r);
	assert_int_equal(simtest_b2b(&cli), 0);
}

static void test_b2b_token_sliding_expiry(void **state)
{
	char body[512];
	simtest_reply r;

	(void)state;
	assert_int_equal(simtest_b2b(&cli), 0);
	advance_clock(600);
	CALL(r, P_CREATE, create_body(body, sizeof(body)), NULL);
	EXPECT_CODE(r, 200, "2000600"); /* used: slides to +900 from now */
	simtest_reply_free(&r);
	advance_clock(600);
	CALL(r, P_CREATE, create_body(body, sizeof(body)), NULL);
	EXPECT_CODE(r, 200, "2000600"); /* 1200 s after issue, still alive */
	simtest_reply_free(&r);
	advance_clock(901);
	CALL(r, P_CREATE, create_body(body, sizeof(body)), NULL);
	EXPECT_CODE(r, 401, "4010601"); /* idle for more than 900 s */
	simtest_reply_free(&r);
	advance_clock(-2101);
	assert_int_equal(simtest_b2b(&cli), 0);
}

static void test_customer_token(void **state)
{
	simtest_customer cu;
	char old[SIMTEST_TOKEN_MAX], body[SIMTEST_TOKEN_MAX + 64];
	simtest_reply r;
	simtest_opts o;

	(void)state;
	assert_int_equal(simtest_open_customer(&cli, &sim, &cu), 0);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"bal-1\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	simtest_reply_free(&r);

	memset(&o, 0, sizeof(o));
	o.customer_token = "not-a-customer-token";
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"bal-2\"}", &o);
	EXPECT_CODE(r, 401, "4011102");
	EXPECT_MESSAGE(r, "Invalid Customer Token");
	simtest_reply_free(&r);

	/* expired: refresh gives a new access token, the old one stays dead */
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/tokens",
				     "{\"action\":\"expire\",\"kind\":\"customer\"}", NULL), 200);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"bal-3\"}", NULL);
	EXPECT_CODE(r, 401, "4011102");
	simtest_reply_free(&r);
	snprintf(old, sizeof(old), "%s", cli.customer);
	snprintf(body, sizeof(body), "{\"grantType\":\"refresh_token\",\"refreshToken\":\"%s\"}",
		 cli.refresh);
	TOKEN(r, P_TOKEN_B2B2C, body, NULL);
	EXPECT_CODE(r, 200, "2007400");
	snprintf(cli.customer, sizeof(cli.customer), "%s", simtest_field(&r, "accessToken"));
	assert_string_not_equal(old, cli.customer);
	simtest_reply_free(&r);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"bal-4\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	simtest_reply_free(&r);
	o.customer_token = old;
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"bal-5\"}", &o);
	EXPECT_CODE(r, 401, "4011102");
	simtest_reply_free(&r);

	/* customer tokens slide too */
	advance_clock(800);
	assert_int_equal(simtest_b2b(&cli), 0);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"bal-6\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	simtest_reply_free(&r);
	advance_clock(800);
	assert_int_equal(simtest_b2b(&cli), 0);
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"bal-7\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	simtest_reply_free(&r);
	advance_clock(-1600);
	assert_int_equal(simtest_b2b(&cli), 0);
}

static void test_external_id_unique_per_day(void **state)
{
	char body[512], ext[40];
	simtest_reply r;
	simtest_opts o;

	(void)state;
	snprintf(ext, sizeof(ext), "%ld%d", (long)time(NULL), (int)getpid());
	memset(&o, 0, sizeof(o));
	o.external_id = ext;
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 200, "2000600");
	simtest_reply_free(&r);
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 409, "4090600");
	simtest_reply_free(&r);
	/* another endpoint, same day: still a repeat */
	CALL(r, P_INQUIRE, "{\"partnerReferenceNo\":\"nothing\"}", &o);
	EXPECT_CODE(r, 409, "4090800");
	simtest_reply_free(&r);
	/* the next day it is free again */
	advance_clock(24 * 3600);
	assert_int_equal(simtest_b2b(&cli), 0);
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 200, "2000600");
	simtest_reply_free(&r);
	advance_clock(-24 * 3600);
	assert_int_equal(simtest_b2b(&cli), 0);
}

static void test_duplicate_partner_reference(void **state)
{
	char body[512];
	simtest_reply r;

	(void)state;
	create_body(body, sizeof(body));
	CALL(r, P_CREATE, body, NULL);
	EXPECT_CODE(r, 200, "2000600");
	simtest_reply_free(&r);
	CALL(r, P_CREATE, body, NULL); /* a new X-EXTERNAL-ID, the same partnerReferenceNo */
	EXPECT_CODE(r, 409, "4090601");
	EXPECT_MESSAGE(r, "partnerReferenceNo");
	simtest_reply_free(&r);
}

static void test_mandatory_fields_and_formats(void **state)
{
	simtest_reply r;

	(void)state;
	CALL(r, P_CREATE, "{\"partnerReferenceNo\":\"m-1\",\"name\":\"N\",\"email\":\"a@b.co\","
			  "\"redirectUrl\":\"https://m.example\"}", NULL);
	EXPECT_CODE(r, 400, "4000602");
	EXPECT_MESSAGE(r, "Invalid Mandatory Field {phoneNo}");
	simtest_reply_free(&r);

	CALL(r, P_CREATE, "{\"partnerReferenceNo\":\"m-2\",\"name\":\"N\",\"phoneNo\":\"081200001111\","
			  "\"email\":\"not-an-email\",\"redirectUrl\":\"https://m.example\"}", NULL);
	EXPECT_CODE(r, 400, "4000601");
	EXPECT_MESSAGE(r, "Invalid Field Format {email}");
	simtest_reply_free(&r);

	CALL(r, P_CREATE, "{\"partnerReferenceNo\":\"m-3\",\"name\":\"N\",\"phoneNo\":\"08-12\","
			  "\"email\":\"a@b.co\",\"redirectUrl\":\"https://m.example\"}", NULL);
	EXPECT_CODE(r, 400, "4000601");
	EXPECT_MESSAGE(r, "{phoneNo}");
	simtest_reply_free(&r);
}

static void test_amount_rules(void **state)
{
	simtest_customer cu;
	simtest_reply r;

	(void)state;
	assert_int_equal(simtest_open_customer(&cli, &sim, &cu), 0);
	CALL(r, P_TOPUP, "{\"partnerReferenceNo\":\"am-1\",\"customerNumber\":\"1\","
			 "\"amount\":{\"value\":\"10000\",\"currency\":\"IDR\"},\"sessionId\":\"s\","
			 "\"notes\":\"n\"}", NULL);
	EXPECT_CODE(r, 400, "4003801");
	EXPECT_MESSAGE(r, "{amount.value}");
	simtest_reply_free(&r);

	CALL(r, P_TOPUP, "{\"partnerReferenceNo\":\"am-2\",\"customerNumber\":\"1\","
			 "\"amount\":{\"value\":\"10000.00\",\"currency\":\"idr\"},\"sessionId\":\"s\","
			 "\"notes\":\"n\"}", NULL);
	EXPECT_CODE(r, 400, "4003801");
	EXPECT_MESSAGE(r, "{amount.currency}");
	simtest_reply_free(&r);

	CALL(r, P_TOPUP, "{\"partnerReferenceNo\":\"am-3\",\"customerNumber\":\"1\","
			 "\"sessionId\":\"s\",\"notes\":\"n\"}", NULL);
	EXPECT_CODE(r, 400, "4003802");
	EXPECT_MESSAGE(r, "{amount.value}");
	simtest_reply_free(&r);

	{
		char body[2048], longname[1100];

		memset(longname, 'n', 1000);
		longname[1000] = '\0';
		snprintf(body, sizeof(body),
			 "{\"partnerReferenceNo\":\"am-4\",\"customerNumber\":\"%s\","
			 "\"amount\":{\"value\":\"1.00\",\"currency\":\"IDR\"},\"sessionId\":\"s\","
			 "\"notes\":\"%s\"}", cu.account_id, longname);
		CALL(r, P_TOPUP, body, NULL);
		EXPECT_CODE(r, 400, "4003801");
		EXPECT_MESSAGE(r, "{notes}");
		simtest_reply_free(&r);
	}
}

/* When a request breaks several rules, the one first in DOKU's order wins. */
static void test_order_of_checks(void **state)
{
	char body[512], ext[40], old[SIMTEST_TOKEN_MAX];
	simtest_reply r;
	simtest_opts o;

	(void)state;
	/* stale timestamp before signature */
	memset(&o, 0, sizeof(o));
	o.timestamp = stamp(-3600);
	o.bad_signature = true;
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 401, "4010600");
	EXPECT_MESSAGE(r, "X-TIMESTAMP");
	simtest_reply_free(&r);

	/* signature before the B2B token */
	snprintf(old, sizeof(old), "%s", cli.b2b);
	assert_int_equal(simtest_b2b(&cli), 0);
	memset(&o, 0, sizeof(o));
	o.b2b_token = old;
	o.bad_signature = true;
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 401, "4010600");
	EXPECT_MESSAGE(r, "signature");
	simtest_reply_free(&r);

	/* the B2B token before the external id */
	snprintf(ext, sizeof(ext), "9%ld%d", (long)time(NULL), (int)getpid());
	memset(&o, 0, sizeof(o));
	o.external_id = ext;
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 200, "2000600");
	simtest_reply_free(&r);
	o.b2b_token = old;
	CALL(r, P_CREATE, create_body(body, sizeof(body)), &o);
	EXPECT_CODE(r, 401, "4010601");
	simtest_reply_free(&r);

	/* the external id before the body */
	o.b2b_token = NULL;
	CALL(r, P_CREATE, "{not json", &o);
	EXPECT_CODE(r, 409, "4090600");
	simtest_reply_free(&r);

	/* the body before the fields */
	CALL(r, P_CREATE, "[1,2,3]", NULL);
	EXPECT_CODE(r, 400, "4000600");
	simtest_reply_free(&r);

	/* a duplicate partnerReferenceNo before a missing field */
	create_body(body, sizeof(body));
	CALL(r, P_CREATE, body, NULL);
	EXPECT_CODE(r, 200, "2000600");
	simtest_reply_free(&r);
	{
		char ref[80], partial[200];
		const char *start = strstr(body, "\"partnerReferenceNo\":\"") + 22;
		size_t n = (size_t)(strchr(start, '"') - start);

		memcpy(ref, start, n);
		ref[n] = '\0';
		snprintf(partial, sizeof(partial), "{\"partnerReferenceNo\":\"%s\"}", ref);
		CALL(r, P_CREATE, partial, NULL);
		EXPECT_CODE(r, 409, "4090601");
		simtest_reply_free(&r);
	}
	/* a missing field before a bad one */
	CALL(r, P_CREATE, "{\"partnerReferenceNo\":\"o-9\",\"name\":\"N\",\"email\":\"bad\","
			  "\"redirectUrl\":\"https://m.example\"}", NULL);
	EXPECT_CODE(r, 400, "4000602");
	simtest_reply_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_headers),
		cmocka_unit_test(test_token_timestamp_window),
		cmocka_unit_test(test_token_client_and_signature),
		cmocka_unit_test(test_token_body),
		cmocka_unit_test(test_service_headers_missing),
		cmocka_unit_test(test_service_headers_malformed),
		cmocka_unit_test(test_service_timestamp_partner_signature),
		cmocka_unit_test(test_b2b_token_newest_only),
		cmocka_unit_test(test_b2b_token_sliding_expiry),
		cmocka_unit_test(test_mandatory_fields_and_formats),
		cmocka_unit_test(test_customer_token),
		cmocka_unit_test(test_external_id_unique_per_day),
		cmocka_unit_test(test_duplicate_partner_reference),
		cmocka_unit_test(test_amount_rules),
		cmocka_unit_test(test_order_of_checks),
		cmocka_unit_test(test_sigterm_clean_exit),
	};

	return cmocka_run_group_tests_name("snapsim_checks", tests, setup, sim_group_teardown);
}
