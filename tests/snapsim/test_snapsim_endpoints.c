/* doku-snapsim: the happy path of every endpoint, and a whole wallet
 * journey through the world's state (balances, statuses, history). */
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

#define BODY_MAX 1024

static int setup(void **state)
{
	static const char *const extra[] = { "--seed", "42", NULL };

	(void)state;
	if (sim_group_setup(extra) != 0)
		return -1;
	return simtest_b2b(&cli);
}

/* "YYYY-MM-DDTHH:MM:SS+07:00" */
static void assert_jakarta_time(const char *s)
{
	time_t t;

	assert_int_equal(strlen(s), SNAP_TIMESTAMP_LEN);
	assert_string_equal(s + 19, "+07:00");
	assert_int_equal(snap_time_parse(s, strlen(s), &t), 0);
}

static void expect_balance(const char *value)
{
	simtest_reply r;

	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"balance-check\"}", NULL);
	EXPECT_CODE(r, 200, "2001100");
	assert_string_equal(simtest_field(&r, "accountInfo.amount.value"), value);
	assert_string_equal(simtest_field(&r, "accountInfo.amount.currency"), "IDR");
	simtest_reply_free(&r);
}

static void test_b2b_token(void **state)
{
	simtest_reply r;

	(void)state;
	TOKEN(r, P_TOKEN_B2B, "{\"grantType\":\"client_credentials\"}", NULL);
	EXPECT_CODE(r, 200, "2007300");
	assert_string_equal(simtest_field(&r, "responseMessage"), "Successful");
	assert_string_equal(simtest_field(&r, "tokenType"), "Bearer");
	assert_string_equal(simtest_field(&r, "expiresIn"), "900");
	assert_true(strlen(simtest_field(&r, "accessToken")) >= 32);
	snprintf(cli.b2b, sizeof(cli.b2b), "%s", simtest_field(&r, "accessToken"));
	simtest_reply_free(&r);
}

static void test_registration_and_customer_token(void **state)
{
	char body[BODY_MAX], ref[64], phone[32], refno[64], pin_token[128], link[64], auth[128];
	char path[128], account_id[32];
	simtest_reply r;
	json_t *j = NULL;

	(void)state;
	simtest_ref(ref, sizeof(ref), "reg");
	simtest_phone(phone, sizeof(phone));
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"name\":\"Siti Rahayu\",\"phoneNo\":\"%s\","
		 "\"email\":\"siti%s@example.com\",\"redirectUrl\":\"https://merchant.example/pin\"}",
		 ref, phone, phone);
	CALL(r, P_CREATE, body, NULL);
	EXPECT_CODE(r, 200, "2000600");
	assert_string_equal(simtest_field(&r, "partnerReferenceNo"), ref);
	snprintf(refno, sizeof(refno), "%s", simtest_field(&r, "referenceNo"));
	assert_int_equal(strlen(refno), 36);
	simtest_reply_free(&r);

	/* the OTP "sent" to the phone */
	snprintf(path, sizeof(path), "/control/otps?phoneNo=%s", phone);
	assert_int_equal(simtest_ctl(&sim, "GET", path, NULL, &j), 200);
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(jstr(json_array_get(j, 0), "purpose"), "account-creation");
	assert_string_equal(jstr(json_array_get(j, 0), "referenceNo"), refno);
	{
		char otp[16];

		snprintf(otp, sizeof(otp), "%s", jstr(json_array_get(j, 0), "otp"));
		json_decref(j);
		/* a wrong OTP first */
		snprintf(body, sizeof(body),
			 "{\"originalPartnerReferenceNo\":\"%s\",\"originalReferenceNo\":\"%s\",\"otp\":\"%s\"}",
			 ref, refno, strcmp(otp, "000000") == 0 ? "111111" : "000000");
		CALL(r, P_VERIFY_OTP, body, NULL);
		EXPECT_CODE(r, 404, "4040415");
		simtest_reply_free(&r);
		snprintf(body, sizeof(body),
			 "{\"originalPartnerReferenceNo\":\"%s\",\"originalReferenceNo\":\"%s\",\"otp\":\"%s\","
			 "\"additionalInfo\":{\"deviceId\":\"dev-1\",\"channel\":\"mobile\"}}",
			 ref, refno, otp);
	}
	CALL(r, P_VERIFY_OTP, body, NULL);
	EXPECT_CODE(r, 200, "2000400");
	assert_string_equal(simtest_field(&r, "originalPartnerReferenceNo"), ref);
	assert_string_equal(simtest_field(&r, "phoneNo"), phone);
	assert_non_null(strstr(simtest_field(&r, "email"), "siti"));
	assert_non_null(strstr(simtest_field(&r, "qparamsURL"), "/snap-adapter-webview/create-pin"));
	assert_string_equal(simtest_field(&r, "additionalInfo.deviceId"), "dev-1");
	snprintf(pin_token, sizeof(pin_token), "%s", simtest_field(&r, "qparams.token"));
	assert_true(pin_token[0] != '\0');
	simtest_reply_free(&r);

	/* the customer creates a PIN in the web view */
	snprintf(body, sizeof(body), "{\"token\":\"%s\",\"pin\":\"" SIMTEST_PIN "\"}", pin_token);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/pin", body, &j), 200);
	assert_string_equal(jstr(j, "state"), "ACTIVE");
	snprintf(account_id, sizeof(account_id), "%s", jstr(j, "accountId"));
	assert_int_equal(strlen(account_id), 10);
	json_decref(j);

	/* binding without successParams: the customer names the account at approval */
	simtest_ref(ref, sizeof(ref), "bind");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"redirectUrl\":\"https://merchant.example/bound\"}", ref);
	CALL(r, P_BIND, body, NULL);
	EXPECT_CODE(r, 200, "2000700");
	snprintf(link, sizeof(link), "%s", simtest_field(&r, "linkId"));
	assert_true(link[0] != '\0');
	assert_non_null(strstr(simtest_field(&r, "nextAction"), "/account-binding?token="));
	assert_string_equal(simtest_field(&r, "redirectUrl"), "https://merchant.example/bound");
	assert_string_equal(simtest_field(&r, "additionalInfo.authCode"), "");
	simtest_reply_free(&r);

	/* before approval the inquiry shows no authCode */
	snprintf(body, sizeof(body), "{\"partnerReferenceNo\":\"%s\"}", ref);
	CALL(r, P_INQUIRE, body, NULL);
	EXPECT_CODE(r, 200, "2000800");
	assert_string_equal(simtest_field(&r, "additionalInfo.remarks"), "PENDING");
	assert_string_equal(simtest_field(&r, "additionalInfo.authCode"), "");
	simtest_reply_free(&r);

	snprintf(body, sizeof(body), "{\"linkId\":\"%s\",\"phoneNo\":\"%s\",\"pin\":\"999999\"}", link, phone);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/bindings/approve", body, NULL), 403);
	snprintf(body, sizeof(body), "{\"linkId\":\"%s\",\"phoneNo\":\"%s\",\"pin\":\"" SIMTEST_PIN "\"}",
		 link, phone);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/bindings/approve", body, &j), 200);
	snprintf(auth, sizeof(auth), "%s", jstr(j, "authCode"));
	assert_true(auth[0] != '\0');
	json_decref(j);

	snprintf(body, sizeof(body), "{\"partnerReferenceNo\":\"%s\",\"additionalInfo\":{\"accountId\":\"%s\"}}",
		 ref, account_id);
	CALL(r, P_INQUIRE, body, NULL);
	EXPECT_CODE(r, 200, "2000800");
	assert_string_equal(simtest_field(&r, "accountNo"), account_id);
	assert_string_equal(simtest_field(&r, "additionalInfo.linkId"), link);
	assert_string_equal(simtest_field(&r, "additionalInfo.authCode"), auth);
	assert_string_equal(simtest_field(&r, "additionalInfo.merchantId"), cli.client_id);
	assert_string_equal(simtest_field(&r, "additionalInfo.remarks"), "ACTIVE");
	simtest_reply_free(&r);

	/* the authCode buys a customer token */
	snprintf(body, sizeof(body), "{\"grantType\":\"authorization_code\",\"authCode\":\"%s\"}", auth);
	TOKEN(r, P_TOKEN_B2B2C, body, NULL);
	EXPECT_CODE(r, 200, "2007400");
	assert_string_equal(simtest_field(&r, "tokenType"), "Bearer");
	assert_jakarta_time(simtest_field(&r, "accessTokenExpiryTime"));
	assert_jakarta_time(simtest_field(&r, "refreshTokenExpiryTime"));
	assert_true(strcmp(simtest_field(&r, "refreshTokenExpiryTime"),
			   simtest_field(&r, "accessTokenExpiryTime")) > 0);
	snprintf(cli.customer, sizeof(cli.customer), "%s", simtest_field(&r, "accessToken"));
	snprintf(cli.refresh, sizeof(cli.refresh), "%s", simtest_field(&r, "refreshToken"));
	simtest_reply_free(&r);

	/* once: the same authCode again is refused; the inquiry shows the next one */
	TOKEN(r, P_TOKEN_B2B2C, body, NULL);
	EXPECT_CODE(r, 401, "4017400");
	simtest_reply_free(&r);
	snprintf(body, sizeof(body), "{\"partnerReferenceNo\":\"%s\"}", ref);
	CALL(r, P_INQUIRE, body, NULL);
	EXPECT_CODE(r, 200, "2000800");
	assert_string_not_equal(simtest_field(&r, "additionalInfo.authCode"), auth);
	snprintf(body, sizeof(body), "{\"grantType\":\"authorization_code\",\"authCode\":\"%s\"}",
		 simtest_field(&r, "additionalInfo.authCode"));
	simtest_reply_free(&r);
	TOKEN(r, P_TOKEN_B2B2C, body, NULL);
	EXPECT_CODE(r, 200, "2007400");
	simtest_reply_free(&r);

	/* the refresh_token grant */
	snprintf(body, sizeof(body), "{\"grantType\":\"refresh_token\",\"refreshToken\":\"%s\"}", cli.refresh);
	TOKEN(r, P_TOKEN_B2B2C, body, NULL);
	EXPECT_CODE(r, 200, "2007400");
	assert_string_equal(simtest_field(&r, "refreshToken"), cli.refresh);
	snprintf(cli.customer, sizeof(cli.customer), "%s", simtest_field(&r, "accessToken"));
	simtest_reply_free(&r);
	expect_balance("0.00");
}

static void test_otp_rules(void **state)
{
	char body[BODY_MAX], ref[64], phone[32], refno[64], path[96];
	simtest_reply r;

	(void)state;
	simtest_ref(ref, sizeof(ref), "otp");
	simtest_phone(phone, sizeof(phone));
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"name\":\"O\",\"phoneNo\":\"%s\","
		 "\"email\":\"o%s@example.com\",\"redirectUrl\":\"https://m.example\"}", ref, phone, phone);
	CALL(r, P_CREATE, body, NULL);
	EXPECT_CODE(r, 200, "2000600");
	snprintf(refno, sizeof(refno), "%s", simtest_field(&r, "referenceNo"));
	simtest_reply_free(&r);
	/* unknown activity */
	snprintf(body, sizeof(body),
		 "{\"originalPartnerReferenceNo\":\"%s\",\"originalReferenceNo\":\"nope\",\"otp\":\"123456\"}", ref);
	CALL(r, P_VERIFY_OTP, body, NULL);
	EXPECT_CODE(r, 404, "4040401");
	simtest_reply_free(&r);
	/* three wrong OTPs block it */
	snprintf(path, sizeof(path), "/control/otps?phoneNo=%s", phone);
	{
		json_t *j = NULL;
		char wrong[8];

		assert_int_equal(simtest_ctl(&sim, "GET", path, NULL, &j), 200);
		snprintf(wrong, sizeof(wrong), "%s",
			 strcmp(jstr(json_array_get(j, 0), "otp"), "000000") == 0 ? "111111" : "000000");
		json_decref(j);
		snprintf(body, sizeof(body),
			 "{\"originalPartnerReferenceNo\":\"%s\",\"originalReferenceNo\":\"%s\",\"otp\":\"%s\"}",
			 ref, refno, wrong);
	}
	CALL(r, P_VERIFY_OTP, body, NULL);
	EXPECT_CODE(r, 404, "4040415");
	simtest_reply_free(&r);
	CALL(r, P_VERIFY_OTP, body, NULL);
	EXPECT_CODE(r, 404, "4040415");
	simtest_reply_free(&r);
	CALL(r, P_VERIFY_OTP, body, NULL);
	EXPECT_CODE(r, 403, "4030411");
	simtest_reply_free(&r);
	/* a new creation sends a new OTP, which expires with the clock */
	simtest_ref(ref, sizeof(ref), "otp");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"name\":\"O\",\"phoneNo\":\"%s\","
		 "\"email\":\"o%s@example.com\",\"redirectUrl\":\"https://m.example\"}", ref, phone, phone);
	CALL(r, P_CREATE, body, NULL);
	EXPECT_CODE(r, 200, "2000600");
	snprintf(refno, sizeof(refno), "%s", simtest_field(&r, "referenceNo"));
	simtest_reply_free(&r);
	{
		json_t *j = NULL;

		assert_int_equal(simtest_ctl(&sim, "GET", path, NULL, &j), 200);
		assert_int_equal(json_array_size(j), 1);
		snprintf(body, sizeof(body),
			 "{\"originalPartnerReferenceNo\":\"%s\",\"originalReferenceNo\":\"%s\",\"otp\":\"%s\"}",
			 ref, refno, jstr(json_array_get(j, 0), "otp"));
		json_decref(j);
	}
	advance_clock(301);
	assert_int_equal(simtest_b2b(&cli), 0);
	CALL(r, P_VERIFY_OTP, body, NULL);
	EXPECT_CODE(r, 403, "4030412");
	simtest_reply_free(&r);
	advance_clock(-301);
	assert_int_equal(simtest_b2b(&cli), 0);
}

static void test_unbinding(void **state)
{
	simtest_customer cu;
	char body[BODY_MAX], ref[64], refno[64], path[96];
	simtest_reply r;
	json_t *j = NULL;

	(void)state;
	assert_int_equal(simtest_open_customer(&cli, &sim, &cu), 0);
	simtest_ref(ref, sizeof(ref), "unbind");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"linkId\":\"%s\",\"merchantId\":\"BRN-SOMEONE-ELSE\"}",
		 ref, cu.link_id);
	CALL(r, P_UNBIND, body, NULL);
	EXPECT_CODE(r, 404, "4040908");
	simtest_reply_free(&r);
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"linkId\":\"%s\",\"merchantId\":\"%s\","
		 "\"additionalInfo\":{\"channel\":\"mobilephone\",\"phoneNo\":\"%s\"}}",
		 ref, cu.link_id, cli.client_id, cu.phone);
	CALL(r, P_UNBIND, body, NULL);
	EXPECT_CODE(r, 200, "2000900");
	assert_string_equal(simtest_field(&r, "unlinkResult"), "inProgress");
	assert_string_equal(simtest_field(&r, "linkId"), cu.link_id);
	assert_string_equal(simtest_field(&r, "merchantId"), cli.client_id);
	assert_string_equal(simtest_field(&r, "additionalInfo.channel"), "mobilephone");
	snprintf(refno, sizeof(refno), "%s", simtest_field(&r, "referenceNo"));
	simtest_reply_free(&r);
	/* still bound until the OTP is verified */
	expect_balance("0.00");
	snprintf(path, sizeof(path), "/control/otps?phoneNo=%s", cu.phone);
	assert_int_equal(simtest_ctl(&sim, "GET", path, NULL, &j), 200);
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(jstr(json_array_get(j, 0), "purpose"), "unbinding");
	snprintf(body, sizeof(body),
		 "{\"originalPartnerReferenceNo\":\"%s\",\"originalReferenceNo\":\"%s\",\"otp\":\"%s\"}",
		 ref, refno, jstr(json_array_get(j, 0), "otp"));
	json_decref(j);
	CALL(r, P_VERIFY_OTP, body, NULL);
	EXPECT_CODE(r, 200, "2000400");
	assert_string_equal(simtest_field(&r, "qparamsURL"), "");
	simtest_reply_free(&r);
	/* unbound: the customer token, the authCode and the binding are gone */
	CALL(r, P_BALANCE, "{\"partnerReferenceNo\":\"after-unbind\"}", NULL);
	EXPECT_CODE(r, 401, "4011102");
	simtest_reply_free(&r);
	snprintf(body, sizeof(body), "{\"partnerReferenceNo\":\"%s\"}", cu.bind_ref);
	CALL(r, P_INQUIRE, body, NULL);
	EXPECT_CODE(r, 200, "2000800");
	assert_string_equal(simtest_field(&r, "additionalInfo.remarks"), "UNBOUND");
	assert_string_equal(simtest_field(&r, "additionalInfo.authCode"), "");
	simtest_reply_free(&r);
	snprintf(body, sizeof(body), "{\"refreshToken\":\"%s\",\"grantType\":\"refresh_token\"}", cli.refresh);
	TOKEN(r, P_TOKEN_B2B2C, body, NULL);
	EXPECT_CODE(r, 401, "4017402");
	simtest_reply_free(&r);
	simtest_ref(ref, sizeof(ref), "unbind");
	snprintf(body, sizeof(body), "{\"partnerReferenceNo\":\"%s\",\"linkId\":\"%s\",\"merchantId\":\"%s\"}",
		 ref, cu.link_id, cli.client_id);
	CALL(r, P_UNBIND, body, NULL);
	EXPECT_CODE(r, 404, "4040911");
	simtest_reply_free(&r);
	/* and it can be bound again */
	simtest_ref(ref, sizeof(ref), "rebind");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"redirectUrl\":\"https://m.example\","
		 "\"successParams\":{\"accountId\":\"%s\"}}", ref, cu.account_id);
	CALL(r, P_BIND, body, NULL);
	EXPECT_CODE(r, 200, "2000700");
	assert_string_equal(simtest_field(&r, "userInfo.publicUserId"), cu.account_id);
	simtest_reply_free(&r);
}

static double money(const char *s)
{
	return strtod(s, NULL);
}

struct journey {
	simtest_customer cu;
	char topup_ref[64], topup_ext[40], transfer_ref[64], refund_a[64], refund_b[64];
	char p1[64], p2[64], p3[64];
};

static void purchase(const char *ref, const char *amount, const char *expect_code)
{
	char body[BODY_MAX];
	simtest_reply r;

	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"chargeToken\":\"DOKU\",\"amount\":{\"value\":\"%s\","
		 "\"currency\":\"IDR\"},\"urlParam\":{\"url\":\"https://m.example/paid\",\"type\":\"PAY_RETURN\","
		 "\"isDeepLink\":\"N\"},\"additionalInfo\":{\"basket\":[{\"name\":\"Kopi\",\"price\":\"%s\","
		 "\"quantity\":\"1\"}]}}", ref, amount, amount);
	CALL(r, P_PURCHASE, body, NULL);
	EXPECT_CODE(r, atoi(expect_code) / 10000, expect_code);
	if (r.http == 200) {
		assert_non_null(strstr(simtest_field(&r, "webRedirectUrl"), "/direct-debit?token="));
		assert_string_equal(simtest_field(&r, "partnerReferenceNo"), ref);
		assert_int_equal(strlen(simtest_field(&r, "additionalInfo.dokuId")), 10);
	}
	simtest_reply_free(&r);
}

static void purchase_status(const char *ref, const char *status, const char *desc)
{
	char body[BODY_MAX], ts[SNAP_TIMESTAMP_LEN + 1];
	simtest_reply r;

	assert_int_equal(snap_time_format(time(NULL), ts), 0);
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"serviceCode\":\"54\",\"transactionDate\":\"%s\"}", ref, ts);
	CALL(r, P_PURCHASE_STATUS, body, NULL);
	EXPECT_CODE(r, 200, "2005500");
	assert_string_equal(simtest_field(&r, "latestTransactionStatus"), status);
	assert_string_equal(simtest_field(&r, "transactionStatusDesc"), desc);
	assert_string_equal(simtest_field(&r, "originalPartnerReferenceNo"), ref);
	assert_string_equal(simtest_field(&r, "originalResponseCode"), "2005400");
	simtest_reply_free(&r);
}

static void approve_purchase(const char *ref, long expect_status)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"partnerReferenceNo\":\"%s\",\"pin\":\"" SIMTEST_PIN "\"}", ref);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/purchases/approve", body, NULL), expect_status);
}

static void refund(const char *ref, const char *refund_no, const char *amount, const char *expect_code)
{
	char body[BODY_MAX], amt[96] = "";
	simtest_reply r;

	if (amount != NULL)
		snprintf(amt, sizeof(amt), ",\"refundAmount\":{\"value\":\"%s\",\"currency\":\"IDR\"}", amount);
	snprintf(body, sizeof(body),
		 "{\"originalPartnerReferenceNo\":\"%s\",\"reason\":\"customer returned it\","
		 "\"partnerRefundNo\":\"%s\"%s}", ref, refund_no, amt);
	CALL(r, P_REFUND, body, NULL);
	EXPECT_CODE(r, atoi(expect_code) / 10000, expect_code);
	if (r.http == 200) {
		assert_string_equal(simtest_field(&r, "partnerRefundNo"), refund_no);
		assert_string_equal(simtest_field(&r, "originalPartnerReferenceNo"), ref);
		assert_true(simtest_field(&r, "refundNo")[0] != '\0');
		assert_jakarta_time(simtest_field(&r, "refundTime"));
	}
	simtest_reply_free(&r);
}

static void cancel(const char *ref, const char *expect_code)
{
	char body[BODY_MAX];
	simtest_reply r;

	snprintf(body, sizeof(body), "{\"originalPartnerReferenceNo\":\"%s\",\"reason\":\"changed my mind\"}", ref);
	CALL(r, P_CANCEL, body, NULL);
	EXPECT_CODE(r, atoi(expect_code) / 10000, expect_code);
	if (r.http == 200) {
		assert_jakarta_time(simtest_field(&r, "cancelTime"));
		assert_jakarta_time(simtest_field(&r, "transactionDate"));
	}
	simtest_reply_free(&r);
}

/* The whole journey of a customer's money, checked against the world. */
static void test_wallet_journey(void **state)
{
	struct journey jy;
	char body[BODY_MAX], ts_from[SNAP_TIMESTAMP_LEN + 1], ts_to[SNAP_TIMESTAMP_LEN + 1];
	simtest_reply r;
	simtest_opts o;

	(void)state;
	memset(&jy, 0, sizeof(jy));
	assert_int_equal(simtest_open_customer(&cli, &sim, &jy.cu), 0);
	expect_balance("0.00");

	/* top up 100,000.00 */
	simtest_ref(jy.topup_ref, sizeof(jy.topup_ref), "topup");
	snprintf(jy.topup_ext, sizeof(jy.topup_ext), "7%ld%d", (long)time(NULL), (int)getpid());
	memset(&o, 0, sizeof(o));
	o.external_id = jy.topup_ext;
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"customerNumber\":\"%s\",\"amount\":{\"value\":\"100000.00\","
		 "\"currency\":\"IDR\"},\"sessionId\":\"sess-1\",\"notes\":\"first top up\","
		 "\"additionalInfo\":{\"deviceId\":\"d\",\"channel\":\"web\"}}",
		 jy.topup_ref, jy.cu.account_id);
	CALL(r, P_TOPUP, body, &o);
	EXPECT_CODE(r, 200, "2003800");
	assert_string_equal(simtest_field(&r, "sessionId"), "sess-1");
	assert_string_equal(simtest_field(&r, "customerNumber"), jy.cu.account_id);
	simtest_reply_free(&r);
	expect_balance("100000.00");
	/* a top-up for someone else's account number is refused */
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"x-%s\",\"customerNumber\":\"0000000001\",\"amount\":{\"value\":\"1.00\","
		 "\"currency\":\"IDR\"},\"sessionId\":\"s\",\"notes\":\"n\"}", jy.topup_ref);
	CALL(r, P_TOPUP, body, NULL);
	EXPECT_CODE(r, 404, "4043811");
	simtest_reply_free(&r);

	/* its status, by partnerReferenceNo and X-EXTERNAL-ID */
	snprintf(body, sizeof(body),
		 "{\"originalPartnerReferenceNo\":\"%s\",\"originalExternalId\":\"%s\",\"serviceCode\":\"38\"}",
		 jy.topup_ref, jy.topup_ext);
	CALL(r, P_TOPUP_STATUS, body, NULL);
	EXPECT_CODE(r, 200, "2003900");
	assert_string_equal(simtest_field(&r, "latestTransactionStatus"), "00");
	assert_string_equal(simtest_field(&r, "transactionStatusDesc"), "SUCCESS");
	assert_string_equal(simtest_field(&r, "amount.value"), "100000.00");
	assert_string_equal(simtest_field(&r, "originalExternalId"), jy.topup_ext);
	assert_int_equal(strlen(simtest_field(&r, "additionalInfo.approvalCode")), 6);
	simtest_reply_free(&r);
	snprintf(body, sizeof(body),
		 "{\"originalPartnerReferenceNo\":\"%s\",\"originalExternalId\":\"1\",\"serviceCode\":\"38\"}",
		 jy.topup_ref);
	CALL(r, P_TOPUP_STATUS, body, NULL);
	EXPECT_CODE(r, 404, "4043901");
	simtest_reply_free(&r);

	/* a bank account, then a transfer of 25,000.00 to it */
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"inq-1\",\"customerNumber\":\"%s\",\"amount\":{\"value\":\"25000.00\","
		 "\"currency\":\"IDR\"},\"beneficiaryAccountNumber\":\"8880001234\",\"additionalInfo\":{\"bankCode\":\"014\"}}",
		 jy.cu.account_id);
	CALL(r, P_BANK_INQUIRY, body, NULL);
	EXPECT_CODE(r, 200, "2004200");
	assert_true(simtest_field(&r, "beneficiaryAccountName")[0] != '\0');
	assert_string_equal(simtest_field(&r, "beneficiaryBankCode"), "014");
	assert_string_equal(simtest_field(&r, "amount.value"), "25000.00");
	simtest_reply_free(&r);
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"inq-2\",\"customerNumber\":\"%s\",\"beneficiaryAccountNumber\":\"8880001000\"}",
		 jy.cu.phone);
	CALL(r, P_BANK_INQUIRY, body, NULL);
	EXPECT_CODE(r, 404, "4044211");
	simtest_reply_free(&r);
	simtest_ref(jy.transfer_ref, sizeof(jy.transfer_ref), "transfer");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"customerNumber\":\"%s\",\"accountType\":\"SAVINGS\","
		 "\"beneficiaryAccountNumber\":\"8880001234\",\"beneficiaryBankCode\":\"014\","
		 "\"amount\":{\"value\":\"25000.00\",\"currency\":\"IDR\"}}", jy.transfer_ref, jy.cu.account_id);
	CALL(r, P_TRANSFER, body, NULL);
	EXPECT_CODE(r, 200, "2004300");
	assert_jakarta_time(simtest_field(&r, "transactionDate"));
	assert_int_equal(strlen(simtest_field(&r, "referenceNumber")), 12);
	simtest_reply_free(&r);
	expect_balance("75000.00");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"too-much-%s\",\"customerNumber\":\"%s\",\"accountType\":\"SAVINGS\","
		 "\"beneficiaryAccountNumber\":\"8880001234\",\"beneficiaryBankCode\":\"014\","
		 "\"amount\":{\"value\":\"75000.01\",\"currency\":\"IDR\"}}", jy.transfer_ref, jy.cu.account_id);
	CALL(r, P_TRANSFER, body, NULL);
	EXPECT_CODE(r, 403, "4034314");
	simtest_reply_free(&r);

	/* purchase 1: waits for the customer, paid, refunded in two steps */
	simtest_ref(jy.p1, sizeof(jy.p1), "p1");
	purchase(jy.p1, "30000.00", "2005400");
	purchase_status(jy.p1, "03", "PENDING");
	expect_balance("75000.00");
	{
		char wrong[128];

		snprintf(wrong, sizeof(wrong), "{\"partnerReferenceNo\":\"%s\",\"pin\":\"000001\"}", jy.p1);
		assert_int_equal(simtest_ctl(&sim, "POST", "/control/purchases/approve", wrong, NULL), 403);
	}
	refund(jy.p1, "rf-early", NULL, "4045800"); /* not paid yet */
	approve_purchase(jy.p1, 200);
	approve_purchase(jy.p1, 409);
	purchase_status(jy.p1, "00", "SUCCESS");
	expect_balance("45000.00");
	simtest_ref(jy.refund_a, sizeof(jy.refund_a), "rfa");
	refund(jy.p1, jy.refund_a, "10000.00", "2005800");
	expect_balance("55000.00");
	refund(jy.p1, jy.refund_a, "1.00", "4095801");             /* partnerRefundNo reused */
	simtest_ref(jy.refund_b, sizeof(jy.refund_b), "rfb");
	refund(jy.p1, jy.refund_b, "20000.01", "4045813");         /* more than what remains */
	refund(jy.p1, jy.refund_b, NULL, "2005800");               /* the rest: 20,000.00 */
	expect_balance("75000.00");
	purchase_status(jy.p1, "04", "REFUNDED");
	refund(jy.p1, "rf-late", NULL, "4045800");
	cancel(jy.p1, "4045700");

	/* purchase 2: cancelled while pending, nothing moves */
	simtest_ref(jy.p2, sizeof(jy.p2), "p2");
	purchase(jy.p2, "5000.00", "2005400");
	cancel(jy.p2, "2005700");
	purchase_status(jy.p2, "05", "CANCELLED");
	cancel(jy.p2, "4045704");
	approve_purchase(jy.p2, 409);
	expect_balance("75000.00");

	/* purchase 3: paid, then cancelled (a reversal gives the money back) */
	simtest_ref(jy.p3, sizeof(jy.p3), "p3");
	purchase(jy.p3, "70000.00", "2005400");
	approve_purchase(jy.p3, 200);
	expect_balance("5000.00");
	cancel(jy.p3, "2005700");
	expect_balance("75000.00");

	/* insufficient funds, unknown transactions */
	purchase("p-too-big", "75000.01", "4035414");
	{
		char ts[SNAP_TIMESTAMP_LEN + 1];

		assert_int_equal(snap_time_format(time(NULL), ts), 0);
		snprintf(body, sizeof(body),
			 "{\"partnerReferenceNo\":\"never-made\",\"serviceCode\":\"54\",\"transactionDate\":\"%s\"}", ts);
		CALL(r, P_PURCHASE_STATUS, body, NULL);
		EXPECT_CODE(r, 404, "4045501");
		simtest_reply_free(&r);
	}
	cancel("never-made", "4045701");
	refund("never-made", "rf-x", NULL, "4045801");

	/* the history shows what happened, newest first, paged */
	assert_int_equal(snap_time_format(time(NULL) - 3600, ts_from), 0);
	assert_int_equal(snap_time_format(time(NULL) + 3600, ts_to), 0);
	{
		static const char *const want_types[] = { "PAYMENT", "PAYMENT", "REFUND", "REFUND",
							  "PAYMENT", "SEND_MONEY", "TOPUP" };
		static const char *const want_status[] = { "CANCELLED", "CANCELLED", "SUCCESS", "SUCCESS",
							   "REFUNDED", "SUCCESS", "SUCCESS" };
		size_t seen = 0;

		for (int page = 0; page < 4; page++) {
			json_t *items;

			snprintf(body, sizeof(body),
				 "{\"partnerReferenceNo\":\"hist-%d\",\"fromDateTime\":\"%s\",\"toDateTime\":\"%s\","
				 "\"pageSize\":\"3\",\"pageNumber\":\"%d\"}", page, ts_from, ts_to, page);
			CALL(r, P_HISTORY, body, NULL);
			EXPECT_CODE(r, 200, "2001200");
			items = json_object_get(r.json, "detailData");
			assert_true(json_array_size(items) == (page < 2 ? 3u : page == 2 ? 1u : 0u));
			for (size_t i = 0; i < json_array_size(items); i++, seen++) {
				json_t *it = json_array_get(items, i);

				assert_string_equal(jstr(it, "type"), want_types[seen]);
				assert_string_equal(jstr(it, "status"), want_status[seen]);
				assert_string_equal(jstr(json_object_get(it, "amount"), "currency"), "IDR");
				assert_true(jstr(it, "dateTime")[0] != '\0');
			}
			simtest_reply_free(&r);
		}
		assert_int_equal(seen, 7);
	}
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"hist-x\",\"fromDateTime\":\"%s\",\"toDateTime\":\"not a date\","
		 "\"pageSize\":\"3\",\"pageNumber\":\"0\"}", ts_from);
	CALL(r, P_HISTORY, body, NULL);
	EXPECT_CODE(r, 400, "4001201");
	simtest_reply_free(&r);

	/* details */
	snprintf(body, sizeof(body), "{\"partnerReferenceNo\":\"%s\"}", jy.transfer_ref);
	CALL(r, P_HISTORY_DETAIL, body, NULL);
	EXPECT_CODE(r, 200, "2001300");
	assert_string_equal(simtest_field(&r, "type"), "SEND_MONEY");
	assert_string_equal(simtest_field(&r, "remark"), "Transfer Cash Wallet To Bank Account");
	assert_string_equal(simtest_field(&r, "amount.value"), "25000.00");
	assert_string_equal(simtest_field(&r, "status"), "SUCCESS");
	simtest_reply_free(&r);
	snprintf(body, sizeof(body), "{\"partnerReferenceNo\":\"%s\"}", jy.refund_b);
	CALL(r, P_HISTORY_DETAIL, body, NULL);
	EXPECT_CODE(r, 200, "2001300");
	assert_string_equal(simtest_field(&r, "type"), "REFUND");
	assert_string_equal(simtest_field(&r, "amount.value"), "20000.00");
	simtest_reply_free(&r);
	CALL(r, P_HISTORY_DETAIL, "{\"partnerReferenceNo\":\"never-made\"}", NULL);
	EXPECT_CODE(r, 404, "4041301");
	simtest_reply_free(&r);

	/* the control API agrees */
	{
		json_t *j = NULL;
		bool found = false;

		assert_int_equal(simtest_ctl(&sim, "GET", "/control/accounts", NULL, &j), 200);
		for (size_t i = 0; i < json_array_size(j); i++) {
			json_t *a = json_array_get(j, i);

			if (strcmp(jstr(a, "accountId"), jy.cu.account_id) == 0) {
				assert_true(money(jstr(a, "balance")) == 75000.0);
				found = true;
			}
		}
		assert_true(found);
		json_decref(j);
	}
}

static void test_auto_approval(void **state)
{
	simtest_customer cu;
	char body[BODY_MAX], ref[64];
	simtest_reply r;

	(void)state;
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/settings",
				     "{\"autoApproveBindings\":true,\"autoApprovePurchases\":true}", NULL), 200);
	assert_int_equal(simtest_new_account(&cli, &sim, &cu), 0);
	/* approved at once: the binding answer carries the authCode */
	simtest_ref(ref, sizeof(ref), "auto");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"redirectUrl\":\"https://m.example\","
		 "\"successParams\":{\"accountId\":\"%s\"}}", ref, cu.account_id);
	CALL(r, P_BIND, body, NULL);
	EXPECT_CODE(r, 200, "2000700");
	snprintf(body, sizeof(body), "{\"grantType\":\"authorization_code\",\"authCode\":\"%s\"}",
		 simtest_field(&r, "additionalInfo.authCode"));
	simtest_reply_free(&r);
	TOKEN(r, P_TOKEN_B2B2C, body, NULL);
	EXPECT_CODE(r, 200, "2007400");
	snprintf(cli.customer, sizeof(cli.customer), "%s", simtest_field(&r, "accessToken"));
	simtest_reply_free(&r);
	/* a second binding of a bound account is refused */
	simtest_ref(ref, sizeof(ref), "auto");
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"%s\",\"redirectUrl\":\"https://m.example\","
		 "\"successParams\":{\"accountId\":\"%s\"}}", ref, cu.phone);
	CALL(r, P_BIND, body, NULL);
	EXPECT_CODE(r, 403, "4030701");
	simtest_reply_free(&r);
	assert_int_equal(simtest_top_up(&cli, &cu, "1000.00"), 0);
	simtest_ref(ref, sizeof(ref), "autopay");
	purchase(ref, "400.00", "2005400");
	purchase_status(ref, "00", "SUCCESS");
	expect_balance("600.00");
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/settings",
				     "{\"autoApproveBindings\":false,\"autoApprovePurchases\":false}", NULL), 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b2b_token),
		cmocka_unit_test(test_registration_and_customer_token),
		cmocka_unit_test(test_otp_rules),
		cmocka_unit_test(test_unbinding),
		cmocka_unit_test(test_wallet_journey),
		cmocka_unit_test(test_auto_approval),
		cmocka_unit_test(test_sigterm_clean_exit),
	};

	return cmocka_run_group_tests_name("snapsim_endpoints", tests, setup, sim_group_teardown);
}
