/* Outcomes of money-moving calls: a 504, a dropped connection, a 202, a
 * timeout after sending, a cancel: "may have happened", with the
 * X-EXTERNAL-ID and partner reference to ask about it, and the request seen
 * exactly once by DOKU (never resent by the daemon). A failure before
 * sending: "did not happen". */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define PURCHASE "/snap-adapter/b2b2c/v1.0/debit/payment-host-to-host"
#define TOPUP "/snap-adapter/b2b2c/v1.0/emoney/topup"
#define C(x) DOKUBRIDGE_##x

static h_env env;
static dokubridge_client *cli;
static h_customer cust;
static Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;

static int group_setup(void **state)
{
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__Amount big = DOKU__WALLET__V1__AMOUNT__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	dokubridge_result res;

	(void)state;
	h_setup(&env);
	h_daemon_start(&env, NULL, NULL);
	free(h_ctl(&env, "POST", "/control/settings", "{\"autoApprovePurchases\":true}", NULL));
	cli = h_client(&env);
	h_customer_new(&env, cli, "buyer", &cust);
	tu.partner_reference_no = (char *)h_ref("fund");
	tu.customer_number = cust.account_no;
	big.value = "900000.00";
	big.currency = "IDR";
	tu.amount = &big;
	tu.session_id = "s";
	tu.notes = "funds";
	OK_CALL(cli, "buyer", "TopUp", tu, NULL, &res);
	/* warm, reusable connections: a dead one must never make curl resend */
	for (int i = 0; i < 4; i++) {
		gb.partner_reference_no = (char *)h_ref("warm");
		OK_CALL(cli, "buyer", "GetBalance", gb, NULL, &res);
	}
	amt.value = "1000.00";
	amt.currency = "IDR";
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dokubridge_free(cli);
	h_teardown(&env);
	return 0;
}

static int purchase(const char *ref, uint32_t timeout_ms, dokubridge_result *res)
{
	Doku__Wallet__V1__PurchaseRequest p = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	dokubridge_call_opts opts = { .timeout_ms = timeout_ms, .customer_ref = "buyer" };
	ProtobufCMessage *resp = NULL;
	int rc;

	p.partner_reference_no = (char *)ref;
	p.charge_token = "DOKU";
	p.amount = &amt;
	rc = dokubridge_call(cli, &opts, "Purchase", &p.base, &resp, res);
	h_record_result(res);
	dokubridge_message_free(resp);
	fprintf(stderr, "Purchase %s: %s http=%u rc=%s outcome=%s: %s\n", ref,
		dokubridge_code_name(res->code), res->http_status, res->response_code,
		dokubridge_outcome_name(res->outcome), res->message);
	return rc;
}

/* "may have happened", with what it takes to ask. */
static void assert_unknown(const dokubridge_result *res, const char *ref)
{
	assert_int_equal(res->outcome, C(OUTCOME_UNKNOWN));
	assert_int_equal(strlen(res->external_id), 36);
	assert_string_equal(res->partner_reference_no, ref);
	assert_non_null(strstr(res->message, "GetPurchaseStatus"));
	assert_non_null(strstr(res->message, res->external_id));
}

static const char *latest_status(const char *ref)
{
	static char status[DOKUBRIDGE_RESPONSE_CODE_MAX];
	Doku__Wallet__V1__GetPurchaseStatusRequest ps = DOKU__WALLET__V1__GET_PURCHASE_STATUS_REQUEST__INIT;
	Doku__Wallet__V1__GetPurchaseStatusResponse *r = NULL;
	dokubridge_result res;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ps.partner_reference_no = (char *)ref;
	ps.service_code = "54";
	ps.transaction_date = when;
	rc = h_call(cli, "buyer", "GetPurchaseStatus", &ps.base, (ProtobufCMessage **)&r, &res);
	snprintf(status, sizeof(status), "%s", rc == 0 ? r->latest_transaction_status : res.response_code);
	dokubridge_message_free(r);
	return status;
}

static void test_504(void **state)
{
	const char *ref = h_ref("p504");
	dokubridge_result res;

	(void)state;
	h_fault(&env, "{\"path\":\"" PURCHASE "\",\"kind\":\"http504\",\"apply\":true}");
	assert_int_equal(purchase(ref, 10000, &res), -C(DEADLINE_EXCEEDED));
	assert_int_equal(res.http_status, 504);
	assert_unknown(&res, ref);
	assert_int_equal(h_sim_requests(&env, PURCHASE, ref), 1);
	/* it did happen: the status method tells */
	assert_string_equal(latest_status(ref), "00");
	assert_int_equal(h_sim_requests(&env, PURCHASE, ref), 1);
}

/* The simulator does not decode a request a fault answers without
 * processing, so its log has no reference for it: count the path. */
static void test_dropped(void **state)
{
	const char *ref = h_ref("pdrop");
	unsigned before = h_sim_requests(&env, PURCHASE, NULL);
	dokubridge_result res;

	(void)state;
	h_fault(&env, "{\"path\":\"" PURCHASE "\",\"kind\":\"drop\",\"apply\":false}");
	assert_int_equal(purchase(ref, 10000, &res), -C(UNAVAILABLE));
	assert_int_equal(res.http_status, 0);
	assert_unknown(&res, ref);
	assert_int_equal(h_sim_requests(&env, PURCHASE, NULL), before + 1);
	/* it did not happen this time: the status method tells that too */
	assert_int_equal(strncmp(latest_status(ref), "404", 3), 0);
	assert_int_equal(h_sim_requests(&env, PURCHASE, NULL), before + 1);
}

static void test_202(void **state)
{
	const char *ref = h_ref("p202");
	dokubridge_result res;

	(void)state;
	h_fault(&env, "{\"path\":\"" PURCHASE "\",\"kind\":\"inprogress\",\"apply\":true}");
	assert_int_equal(purchase(ref, 10000, &res), 0);
	assert_int_equal(res.http_status, 202);
	assert_int_equal(strncmp(res.response_code, "202", 3), 0);
	assert_unknown(&res, ref);
	assert_int_equal(h_sim_requests(&env, PURCHASE, ref), 1);
}

static void test_5xx(void **state)
{
	const char *ref = h_ref("p500");
	unsigned before = h_sim_requests(&env, PURCHASE, NULL);
	dokubridge_result res;

	(void)state;
	h_fault(&env, "{\"path\":\"" PURCHASE "\",\"kind\":\"http500\"}");
	assert_int_equal(purchase(ref, 10000, &res), -C(INTERNAL));
	assert_unknown(&res, ref);
	ref = h_ref("p503");
	h_fault(&env, "{\"path\":\"" PURCHASE "\",\"kind\":\"http503\"}");
	assert_int_equal(purchase(ref, 10000, &res), -C(UNAVAILABLE));
	assert_unknown(&res, ref);
	assert_int_equal(h_sim_requests(&env, PURCHASE, NULL), before + 2);
}

/* The deadline passes while DOKU holds the request. */
static void test_timeout_after_sending(void **state)
{
	const char *ref = h_ref("pslow");
	dokubridge_result res;

	(void)state;
	h_fault(&env, "{\"path\":\"" PURCHASE "\",\"kind\":\"delay\",\"delayMs\":1500}");
	assert_int_equal(purchase(ref, 300, &res), -C(DEADLINE_EXCEEDED));
	assert_false(res.local); /* the daemon's answer, not the library's */
	assert_unknown(&res, ref);
	assert_true(h_wait_sim_requests(&env, PURCHASE, ref, 1));
	assert_int_equal(h_sim_requests(&env, PURCHASE, ref), 1);
}

/* The token is refused, its renewal is slow: the deadline passes before the
 * retry is sent. The first attempt was refused (401), the retry never left:
 * it did not happen. */
static void test_timeout_before_sending(void **state)
{
	const char *ref = h_ref("pnot");
	dokubridge_result res;
	long st;

	(void)state;
	free(h_ctl(&env, "POST", "/control/tokens", "{\"action\":\"revoke\",\"kind\":\"b2b\"}", &st));
	h_fault(&env, "{\"path\":\"/authorization/v1/access-token/b2b\",\"kind\":\"delay\",\"delayMs\":1500}");
	assert_int_equal(purchase(ref, 400, &res), -C(DEADLINE_EXCEEDED));
	assert_int_equal(res.outcome, C(OUTCOME_NOT_DONE));
	assert_int_equal(h_sim_requests(&env, PURCHASE, ref), 1); /* the refused first attempt */
	/* the token arrives later; calls work again */
	ref = h_ref("pafter");
	assert_int_equal(purchase(ref, 10000, &res), 0);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
}

/* Cancel a money-moving call in flight: CANCELLED, and "may have happened". */
static void on_cancelled(dokubridge_client *c, void *arg, const dokubridge_result *r,
			 ProtobufCMessage *m)
{
	(void)c;
	*(dokubridge_result *)arg = *r;
	h_record_result(r);
	dokubridge_message_free(m);
}

static void test_cancel(void **state)
{
	Doku__Wallet__V1__PurchaseRequest p = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	dokubridge_call_opts opts = { .timeout_ms = 10000, .customer_ref = "buyer" };
	const char *ref = h_ref("pcancel");
	dokubridge_result res, got;
	unsigned long seen;
	uint64_t id;

	(void)state;
	if (env.tap == NULL)
		skip();
	h_fault(&env, "{\"path\":\"" PURCHASE "\",\"kind\":\"delay\",\"delayMs\":1500}");
	p.partner_reference_no = (char *)ref;
	p.charge_token = "DOKU";
	p.amount = &amt;
	memset(&got, 0, sizeof(got));
	got.code = (dokubridge_code)-1;
	seen = tap_received(env.tap);
	assert_int_equal(dokubridge_start(cli, &opts, "Purchase", &p.base, on_cancelled, &got, &id, &res), 0);
	/* the request is on its way to DOKU once the tap has it */
	while (tap_received(env.tap) == seen)
		assert_int_equal(dokubridge_poll(cli, 20), 0);
	assert_int_equal(dokubridge_cancel(cli, id), 0);
	while ((int)got.code == -1)
		assert_int_equal(dokubridge_poll(cli, 1000), 0);
	fprintf(stderr, "cancelled: %s %s: %s\n", dokubridge_code_name(got.code),
		dokubridge_outcome_name(got.outcome), got.message);
	assert_int_equal(got.code, C(CANCELLED));
	assert_false(got.local);
	assert_unknown(&got, ref);
	assert_true(h_wait_sim_requests(&env, PURCHASE, ref, 1));
	assert_int_equal(h_sim_requests(&env, PURCHASE, ref), 1);
}

/* The caller leaves while its Purchase is with DOKU: the daemon neither
 * cancels nor repeats it; it runs to its end and its outcome is logged
 * (after an end of stream the daemon still answers what is in flight, so the
 * call ends attached or detached, depending on when the close is seen). */
static void test_vanishing_caller(void **state)
{
	Doku__Wallet__V1__PurchaseRequest p = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	const char *ref = h_ref("pgone");
	unsigned long seen;
	uint8_t buf[4096];
	char *log = NULL, extid[64], want[160];
	size_t n;
	int fd;

	(void)state;
	if (env.tap == NULL)
		skip();
	h_fault(&env, "{\"path\":\"" PURCHASE "\",\"kind\":\"delay\",\"delayMs\":300}");
	p.partner_reference_no = (char *)ref;
	p.charge_token = "DOKU";
	p.amount = &amt;
	seen = tap_received(env.tap);
	fd = h_raw_connect(&env);
	n = h_call_frame(buf, sizeof(buf), 1, "/doku.wallet.v1.Wallet/Purchase", &p.base, "buyer");
	h_send_all(fd, buf, n);
	while (tap_received(env.tap) == seen)
		poll(NULL, 0, 5);
	close(fd);
	assert_true(h_wait_sim_requests(&env, PURCHASE, ref, 1));
	h_sim_external_id(&env, PURCHASE, ref, extid);
	snprintf(want, sizeof(want), "ext_id=%s http=200 rc=2005400", extid);
	/* its line in the log: done, without its caller */
	for (int i = 0; i < 500; i++) {
		FILE *f = fopen(env.log, "r");
		size_t cap = 0;

		assert_non_null(f);
		free(log);
		log = NULL;
		assert_true(getdelim(&log, &cap, '\0', f) > 0);
		fclose(f);
		if (strstr(log, want) != NULL)
			break;
		poll(NULL, 0, 10); /* bounded polling of the daemon's log */
	}
	assert_true(extid[0] != '\0');
	assert_non_null(strstr(log, want));
	assert_non_null(strstr(strstr(log, want), "outcome=DONE code=OK"));
	free(log);
	assert_string_equal(latest_status(ref), "00");
	assert_int_equal(h_sim_requests(&env, PURCHASE, ref), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_504),
		cmocka_unit_test(test_dropped),
		cmocka_unit_test(test_202),
		cmocka_unit_test(test_5xx),
		cmocka_unit_test(test_timeout_after_sending),
		cmocka_unit_test(test_timeout_before_sending),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_vanishing_caller),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
