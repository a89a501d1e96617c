/* libdokubridge against the real doku-bridged and doku-snapsim (run under
 * harness.py, which sets DOKU_BRIDGE_SOCKET, DOKU_SNAPSIM_CONTROL,
 * DOKU_TEST_CLIENT_ID and DOKU_BRIDGED_PID).
 *
 * Every RPC through the typed blocking functions in one customer's life
 * (create, verify, bind, open a session, money in and out, history, close,
 * unbind); 1,000 calls in flight on one connection through the asynchronous
 * API; and the documented errors: INVALID_ARGUMENT, PERMISSION_DENIED,
 * UNIMPLEMENTED, DEADLINE_EXCEEDED, OUTCOME_UNKNOWN, CANCELLED and, last,
 * UNAVAILABLE once the daemon is stopped. */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "dokubridge.h"
#include "snap_time.h"

#define MANY 1000             /* calls in flight at once */
#define CTL_BODY_MAX (256u * 1024u)
#define CALL_TIMEOUT_MS 20000 /* every call here is bounded */
#define PIN "123456"

/* ---- the sandbox's control API ------------------------------------------------ */

struct body {
	char data[CTL_BODY_MAX];
	size_t len;
};

static size_t body_write(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (len > sizeof b->data - 1 - b->len)
		return 0;
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

/* method ("GET", "POST", "DELETE") on /control/<path>; the JSON answer (new
 * reference), failing the test on a transport error or a status >= 300. */
static json_t *ctl(const char *method, const char *path, const char *json_body)
{
	static struct body b;
	char url[512];
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	long status = 0;
	json_t *out;

	assert_non_null(h);
	snprintf(url, sizeof url, "http://%s/control/%s", getenv("DOKU_SNAPSIM_CONTROL"), path);
	b.len = 0;
	b.data[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (json_body) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body);
	}
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (status >= 300)
		fail_msg("control %s %s: %ld %s", method, path, status, b.data);
	out = json_loads(b.data, JSON_DECODE_ANY, NULL);
	assert_non_null(out);
	return out;
}

static void ctl_fault(const char *path, const char *kind, int delay_ms, bool apply)
{
	char body[512];

	snprintf(body, sizeof body, "{\"path\":\"%s\",\"kind\":\"%s\",\"delayMs\":%d,\"apply\":%s}",
		 path, kind, delay_ms, apply ? "true" : "false");
	json_decref(ctl("POST", "faults", body));
}

/* ---- state shared by the tests, in order -------------------------------------- */

static struct {
	dokubridge_client *c;
	char phone[16];
	char customer_ref[32];
	char customer_number[32];  /* the DOKU account id */
	char link_id[64];
	char topup_ref[32];
	char topup_extid[DOKUBRIDGE_EXTERNAL_ID_MAX];
	char now[SNAP_TIMESTAMP_LEN + 1];
	char yesterday[SNAP_TIMESTAMP_LEN + 1];
} g;

static dokubridge_call_opts customer(void)
{
	dokubridge_call_opts o = {.timeout_ms = CALL_TIMEOUT_MS, .customer_ref = g.customer_ref};

	return o;
}

/* Assert OK, with the facts a SNAP success carries. */
static void assert_ok(int rc, const dokubridge_result *res, bool snap)
{
	if (rc != 0)
		fail_msg("%s: %s (responseCode %s)", dokubridge_code_name(res->code), res->message,
			 res->response_code);
	assert_int_equal(res->code, DOKUBRIDGE_OK);
	assert_false(res->local);
	if (snap) {
		assert_int_equal(res->http_status, 200);
		assert_int_equal(strlen(res->response_code), 7);
		assert_memory_equal(res->response_code, "200", 3);
		assert_true(res->external_id[0] != '\0');
		assert_int_equal(res->outcome, DOKUBRIDGE_OUTCOME_DONE);
	}
}

static int group_setup(void **state)
{
	dokubridge_result res;

	(void)state;
	assert_non_null(getenv("DOKU_SNAPSIM_CONTROL"));
	assert_non_null(getenv(DOKUBRIDGE_SOCKET_ENV));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	assert_int_equal(dokubridge_new(NULL, &g.c), 0);
	assert_int_equal(dokubridge_connect(g.c, &res), 0);
	snprintf(g.phone, sizeof g.phone, "0812%08ld", (long)(getpid() % 100000000));
	snprintf(g.customer_ref, sizeof g.customer_ref, "c-it-%ld", (long)getpid());
	assert_int_equal(snap_time_format(time(NULL) + 3600, g.now), 0);
	assert_int_equal(snap_time_format(time(NULL) - 86400, g.yesterday), 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dokubridge_free(g.c);
	curl_global_cleanup();
	return 0;
}

/* ---- every RPC, blocking ----------------------------------------------------------- */

static void onboard(void)
{
	Doku__Wallet__V1__CreateAccountRequest ca = DOKU__WALLET__V1__CREATE_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__CreateAccountResponse *car = NULL;
	Doku__Wallet__V1__VerifyOtpRequest vo = DOKU__WALLET__V1__VERIFY_OTP_REQUEST__INIT;
	Doku__Wallet__V1__VerifyOtpResponse *vor = NULL;
	Doku__Wallet__V1__BindAccountRequest ba = DOKU__WALLET__V1__BIND_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__BindAccountResponse *bar = NULL;
	Doku__Wallet__V1__InquireAccountRequest ia = DOKU__WALLET__V1__INQUIRE_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__InquireAccountResponse *iar = NULL;
	Doku__Wallet__V1__OpenCustomerSessionRequest os =
		DOKU__WALLET__V1__OPEN_CUSTOMER_SESSION_REQUEST__INIT;
	Doku__Wallet__V1__OpenCustomerSessionResponse *osr = NULL;
	dokubridge_call_opts b2b = {.timeout_ms = CALL_TIMEOUT_MS};
	dokubridge_call_opts sess = customer();
	dokubridge_result res;
	char email[64], path[128], body[256];
	json_t *otps, *j;

	snprintf(email, sizeof email, "it%s@example.id", g.phone);
	ca.partner_reference_no = "it-create-1";
	ca.name = "Budi Santoso";
	ca.phone_no = g.phone;
	ca.email = email;
	ca.redirect_url = "https://merchant.example/after-pin";
	assert_ok(dokubridge_create_account(g.c, &b2b, &ca, &car, &res), &res, true);
	assert_string_equal(res.partner_reference_no, "it-create-1");
	assert_string_equal(car->partner_reference_no, "it-create-1");
	assert_true(car->reference_no[0] != '\0');

	snprintf(path, sizeof path, "otps?phoneNo=%s", g.phone);
	otps = ctl("GET", path, NULL);
	assert_true(json_array_size(otps) >= 1);
	j = json_array_get(otps, json_array_size(otps) - 1);
	vo.original_partner_reference_no = "it-create-1";
	vo.original_reference_no = car->reference_no;
	vo.otp = (char *)json_string_value(json_object_get(j, "otp"));
	assert_non_null(vo.otp);
	assert_ok(dokubridge_verify_otp(g.c, &b2b, &vo, &vor, &res), &res, true);
	assert_string_equal(vor->phone_no, g.phone);
	json_decref(otps);

	snprintf(body, sizeof body, "{\"phoneNo\":\"%s\",\"pin\":\"" PIN "\"}", g.phone);
	json_decref(ctl("POST", "pin", body));

	ba.partner_reference_no = "it-bind-1";
	ba.redirect_url = "https://merchant.example/after-binding";
	assert_ok(dokubridge_bind_account(g.c, &b2b, &ba, &bar, &res), &res, true);
	assert_true(bar->link_id[0] != '\0');
	snprintf(g.link_id, sizeof g.link_id, "%s", bar->link_id);
	snprintf(body, sizeof body, "{\"linkId\":\"%s\",\"phoneNo\":\"%s\",\"pin\":\"" PIN "\"}",
		 g.link_id, g.phone);
	json_decref(ctl("POST", "bindings/approve", body));

	ia.partner_reference_no = "it-bind-1";
	assert_ok(dokubridge_inquire_account(g.c, &b2b, &ia, &iar, &res), &res, true);
	assert_non_null(iar->additional_info);
	assert_true(iar->additional_info->auth_code[0] != '\0');
	snprintf(g.customer_number, sizeof g.customer_number, "%s", iar->account_no);

	os.auth_code = iar->additional_info->auth_code;
	assert_ok(dokubridge_open_customer_session(g.c, &sess, &os, &osr, &res), &res, false);
	assert_true(osr->access_token_expiry_time[0] != '\0');

	dokubridge_message_free(car);
	dokubridge_message_free(vor);
	dokubridge_message_free(bar);
	dokubridge_message_free(iar);
	dokubridge_message_free(osr);
}

static void money(void)
{
	Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceResponse *gbr = NULL;
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__TopUpResponse *tur = NULL;
	Doku__Wallet__V1__GetTopUpStatusRequest ts = DOKU__WALLET__V1__GET_TOP_UP_STATUS_REQUEST__INIT;
	Doku__Wallet__V1__GetTopUpStatusResponse *tsr = NULL;
	Doku__Wallet__V1__InquireBankAccountRequest ib =
		DOKU__WALLET__V1__INQUIRE_BANK_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__InquireBankAccountResponse *ibr = NULL;
	Doku__Wallet__V1__TransferToBankRequest tb = DOKU__WALLET__V1__TRANSFER_TO_BANK_REQUEST__INIT;
	Doku__Wallet__V1__TransferToBankResponse *tbr = NULL;
	dokubridge_call_opts o = customer();
	dokubridge_result res;

	gb.partner_reference_no = "it-balance-1";
	assert_ok(dokubridge_get_balance(g.c, &o, &gb, &gbr, &res), &res, true);
	assert_string_equal(gbr->account_info->amount->value, "0.00");
	dokubridge_message_free(gbr);

	amt.value = "150000.00";
	amt.currency = "IDR";
	tu.partner_reference_no = "it-topup-1";
	tu.customer_number = g.customer_number;
	tu.amount = &amt;
	tu.session_id = "sess-1";
	tu.notes = "first top-up";
	assert_ok(dokubridge_top_up(g.c, &o, &tu, &tur, &res), &res, true);
	snprintf(g.topup_ref, sizeof g.topup_ref, "%s", "it-topup-1");
	snprintf(g.topup_extid, sizeof g.topup_extid, "%s", res.external_id);
	dokubridge_message_free(tur);

	ts.original_partner_reference_no = g.topup_ref;
	ts.original_external_id = g.topup_extid;
	ts.service_code = "38";
	assert_ok(dokubridge_get_top_up_status(g.c, &o, &ts, &tsr, &res), &res, true);
	assert_string_equal(tsr->latest_transaction_status, "00");
	assert_string_equal(tsr->amount->value, "150000.00");
	dokubridge_message_free(tsr);

	ib.partner_reference_no = "it-bankinq-1";
	ib.customer_number = g.customer_number;
	ib.beneficiary_account_number = "1234567891";
	assert_ok(dokubridge_inquire_bank_account(g.c, &o, &ib, &ibr, &res), &res, true);
	assert_true(ibr->beneficiary_account_name[0] != '\0');

	amt.value = "25000.00";
	tb.partner_reference_no = "it-transfer-1";
	tb.customer_number = g.customer_number;
	tb.account_type = "SAVINGS";
	tb.beneficiary_account_number = "1234567891";
	tb.beneficiary_bank_code = ibr->beneficiary_bank_code;
	tb.amount = &amt;
	assert_ok(dokubridge_transfer_to_bank(g.c, &o, &tb, &tbr, &res), &res, true);
	dokubridge_message_free(ibr);
	dokubridge_message_free(tbr);

	gb.partner_reference_no = "it-balance-2";
	assert_ok(dokubridge_get_balance(g.c, &o, &gb, &gbr, &res), &res, true);
	assert_string_equal(gbr->account_info->amount->value, "125000.00");
	dokubridge_message_free(gbr);
}

static void purchases(void)
{
	Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;
	Doku__Wallet__V1__PurchaseRequest pu = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__PurchaseResponse *pur = NULL;
	Doku__Wallet__V1__GetPurchaseStatusRequest ps =
		DOKU__WALLET__V1__GET_PURCHASE_STATUS_REQUEST__INIT;
	Doku__Wallet__V1__GetPurchaseStatusResponse *psr = NULL;
	Doku__Wallet__V1__RefundPurchaseRequest rp = DOKU__WALLET__V1__REFUND_PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__RefundPurchaseResponse *rpr = NULL;
	Doku__Wallet__V1__CancelPurchaseRequest cp = DOKU__WALLET__V1__CANCEL_PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__CancelPurchaseResponse *cpr = NULL;
	Doku__Wallet__V1__ListTransactionsRequest lt = DOKU__WALLET__V1__LIST_TRANSACTIONS_REQUEST__INIT;
	Doku__Wallet__V1__ListTransactionsResponse *ltr = NULL;
	Doku__Wallet__V1__GetTransactionRequest gt = DOKU__WALLET__V1__GET_TRANSACTION_REQUEST__INIT;
	Doku__Wallet__V1__GetTransactionResponse *gtr = NULL;
	dokubridge_call_opts o = customer();
	dokubridge_result res;

	amt.value = "10000.00";
	amt.currency = "IDR";
	pu.charge_token = "DOKU";
	pu.amount = &amt;
	pu.partner_reference_no = "it-purchase-1";
	assert_ok(dokubridge_purchase(g.c, &o, &pu, &pur, &res), &res, true);
	assert_true(pur->web_redirect_url[0] != '\0');
	dokubridge_message_free(pur);
	json_decref(ctl("POST", "purchases/approve",
			"{\"partnerReferenceNo\":\"it-purchase-1\",\"pin\":\"" PIN "\"}"));
	pu.partner_reference_no = "it-purchase-2";
	assert_ok(dokubridge_purchase(g.c, &o, &pu, &pur, &res), &res, true);
	dokubridge_message_free(pur);

	ps.partner_reference_no = "it-purchase-1";
	ps.service_code = "54";
	ps.transaction_date = g.now;
	assert_ok(dokubridge_get_purchase_status(g.c, &o, &ps, &psr, &res), &res, true);
	assert_string_equal(psr->latest_transaction_status, "00");
	dokubridge_message_free(psr);

	rp.original_partner_reference_no = "it-purchase-1";
	rp.reason = "customer changed their mind";
	rp.partner_refund_no = "it-refund-1";
	assert_ok(dokubridge_refund_purchase(g.c, &o, &rp, &rpr, &res), &res, true);
	assert_string_equal(rpr->partner_refund_no, "it-refund-1");
	dokubridge_message_free(rpr);

	cp.original_partner_reference_no = "it-purchase-2";
	cp.reason = "out of stock";
	assert_ok(dokubridge_cancel_purchase(g.c, &o, &cp, &cpr, &res), &res, true);
	dokubridge_message_free(cpr);

	lt.partner_reference_no = "it-history-1";
	lt.from_date_time = g.yesterday;
	lt.to_date_time = g.now;
	lt.page_size = "50";
	lt.page_number = "0";
	assert_ok(dokubridge_list_transactions(g.c, &o, &lt, &ltr, &res), &res, true);
	assert_true(ltr->n_detail_data >= 4); /* top-up, transfer, 2 purchases (+ refund) */
	dokubridge_message_free(ltr);

	gt.partner_reference_no = "it-transfer-1";
	assert_ok(dokubridge_get_transaction(g.c, &o, &gt, &gtr, &res), &res, true);
	assert_string_equal(gtr->amount->value, "25000.00");
	assert_string_equal(gtr->type, "SEND_MONEY");
	dokubridge_message_free(gtr);
}

static void test_every_rpc_blocking(void **state)
{
	Doku__Wallet__V1__HealthRequest h = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__HealthResponse *hr = NULL;
	Doku__Wallet__V1__CloseCustomerSessionRequest cs =
		DOKU__WALLET__V1__CLOSE_CUSTOMER_SESSION_REQUEST__INIT;
	Doku__Wallet__V1__CloseCustomerSessionResponse *csr = NULL;
	Doku__Wallet__V1__UnbindAccountRequest ub = DOKU__WALLET__V1__UNBIND_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__UnbindAccountResponse *ubr = NULL;
	dokubridge_call_opts b2b = {.timeout_ms = CALL_TIMEOUT_MS};
	dokubridge_call_opts scratch = {.timeout_ms = CALL_TIMEOUT_MS, .customer_ref = "scratch"};
	dokubridge_result res;

	(void)state;
	assert_ok(dokubridge_health(g.c, NULL, &h, &hr, &res), &res, false);
	assert_true(hr->n_profiles >= 1);
	assert_string_equal(hr->version, DOKUBRIDGE_VERSION);
	dokubridge_message_free(hr);

	onboard();
	money();
	purchases();

	/* CloseCustomerSession on a session nobody opened: closed = false */
	assert_ok(dokubridge_close_customer_session(g.c, &scratch, &cs, &csr, &res), &res, false);
	assert_false(csr->closed);
	dokubridge_message_free(csr);

	ub.partner_reference_no = "it-unbind-1";
	ub.link_id = g.link_id;
	ub.merchant_id = getenv("DOKU_TEST_CLIENT_ID");
	assert_non_null(ub.merchant_id);
	assert_ok(dokubridge_unbind_account(g.c, &b2b, &ub, &ubr, &res), &res, true);
	assert_string_equal(ubr->unlink_result, "inProgress");
	dokubridge_message_free(ubr);
}

/* ---- 1,000 calls in flight on one connection --------------------------------------- */

struct tally {
	size_t done, ok;
	int first_bad_code;
	char first_bad[DOKUBRIDGE_MESSAGE_MAX];
};

static void tally_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		       ProtobufCMessage *resp)
{
	struct tally *t = arg;

	(void)c;
	t->done++;
	if (res->code == DOKUBRIDGE_OK && resp)
		t->ok++;
	else if (!t->first_bad[0]) {
		t->first_bad_code = res->code;
		snprintf(t->first_bad, sizeof t->first_bad, "%s", res->message[0] ? res->message : "?");
	}
	dokubridge_message_free(resp);
}

static void test_async_many_in_flight(void **state)
{
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	Doku__Wallet__V1__GetTransactionRequest gt = DOKU__WALLET__V1__GET_TRANSACTION_REQUEST__INIT;
	Doku__Wallet__V1__HealthRequest h = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	dokubridge_call_opts o = customer();
	struct tally t = {0};
	char refs[MANY][24];
	size_t peak;
	time_t until = time(NULL) + 120;

	(void)state;
	amt.value = "10.00";
	amt.currency = "IDR";
	tu.customer_number = g.customer_number;
	tu.amount = &amt;
	tu.session_id = "sess-many";
	tu.notes = "many";
	gt.partner_reference_no = "it-transfer-1";
	for (int i = 0; i < MANY; i++) {
		int rc;

		snprintf(refs[i], sizeof refs[i], "it-many-%d", i);
		switch (i % 4) {
		case 0:
			gb.partner_reference_no = refs[i];
			rc = dokubridge_get_balance_start(g.c, &o, &gb, tally_done, &t, NULL, NULL);
			break;
		case 1:
			rc = dokubridge_get_transaction_start(g.c, &o, &gt, tally_done, &t, NULL, NULL);
			break;
		case 2:
			tu.partner_reference_no = refs[i];
			rc = dokubridge_top_up_start(g.c, &o, &tu, tally_done, &t, NULL, NULL);
			break;
		default:
			rc = dokubridge_health_start(g.c, &o, &h, tally_done, &t, NULL, NULL);
			break;
		}
		assert_int_equal(rc, 0);
	}
	peak = dokubridge_in_flight(g.c);
	assert_int_equal(peak, MANY);
	/* drive it as an event loop would: fd + interest + timeout + process */
	while (t.done < MANY && time(NULL) < until) {
		struct pollfd p = {.fd = dokubridge_fd(g.c)};
		unsigned want = dokubridge_interest(g.c), ev = 0;

		p.events = (short)((want & DOKUBRIDGE_WANT_READ ? POLLIN : 0) |
				   (want & DOKUBRIDGE_WANT_WRITE ? POLLOUT : 0));
		if (poll(&p, 1, dokubridge_timeout(g.c) < 0 ? 1000 : dokubridge_timeout(g.c)) > 0) {
			if (p.revents & (POLLIN | POLLHUP | POLLERR))
				ev |= DOKUBRIDGE_WANT_READ;
			if (p.revents & POLLOUT)
				ev |= DOKUBRIDGE_WANT_WRITE;
		}
		assert_int_equal(dokubridge_process(g.c, ev), 0);
	}
	if (t.ok != MANY)
		fail_msg("%zu of %d calls OK; first failure %s: %s", t.ok, MANY,
			 dokubridge_code_name(t.first_bad_code), t.first_bad);
	assert_int_equal(dokubridge_in_flight(g.c), 0);
}

/* ---- the documented errors -------------------------------------------------------- */

static void test_invalid_argument(void **state)
{
	Doku__Wallet__V1__CreateAccountRequest ca = DOKU__WALLET__V1__CREATE_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__CreateAccountResponse *car = NULL;
	dokubridge_result res;

	(void)state;
	ca.partner_reference_no = "it-bad-1";
	ca.name = "No Phone";
	ca.email = "np@example.id";
	ca.redirect_url = "https://merchant.example/r";
	assert_int_equal(dokubridge_create_account(g.c, NULL, &ca, &car, &res),
			 -DOKUBRIDGE_INVALID_ARGUMENT);
	assert_false(res.local);
	assert_non_null(strstr(res.message, "phoneNo"));
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_NOT_DONE);
	dokubridge_message_free(car);
}

static void test_permission_denied(void **state)
{
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	dokubridge_call_opts o = customer();
	dokubridge_result res;

	(void)state;
	o.profile = "restricted"; /* the harness's ACL lets the tests use "default" only */
	gb.partner_reference_no = "it-denied-1";
	assert_int_equal(dokubridge_get_balance(g.c, &o, &gb, NULL, &res),
			 -DOKUBRIDGE_PERMISSION_DENIED);
	assert_false(res.local);
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_NOT_DONE);
}

static void test_unimplemented(void **state)
{
	dokubridge_result res;

	(void)state;
	assert_int_equal(dokubridge_call_raw(g.c, NULL, "/doku.wallet.v1.Wallet/NoSuchMethod", NULL, 0,
					     NULL, NULL, &res), -DOKUBRIDGE_UNIMPLEMENTED);
	assert_false(res.local);
}

static void test_deadline_exceeded(void **state)
{
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	dokubridge_call_opts o = customer();
	dokubridge_result res;
	time_t t0 = time(NULL);

	(void)state;
	ctl_fault("/snap-adapter/b2b2c/v1.0/balance-inquiry", "delay", 5000, false);
	o.timeout_ms = 300;
	gb.partner_reference_no = "it-slow-1";
	assert_int_equal(dokubridge_get_balance(g.c, &o, &gb, NULL, &res),
			 -DOKUBRIDGE_DEADLINE_EXCEEDED);
	assert_true(time(NULL) - t0 <= 3);
	/* the daemon's answer (not the local backstop), with the facts to reconcile with */
	assert_false(res.local);
	assert_true(res.external_id[0] != '\0');
	json_decref(ctl("DELETE", "faults", NULL));
}

static void test_outcome_unknown(void **state)
{
	Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__GetTopUpStatusRequest ts = DOKU__WALLET__V1__GET_TOP_UP_STATUS_REQUEST__INIT;
	Doku__Wallet__V1__GetTopUpStatusResponse *tsr = NULL;
	dokubridge_call_opts o = customer();
	dokubridge_result res;
	char extid[DOKUBRIDGE_EXTERNAL_ID_MAX];

	(void)state;
	/* DOKU answers 504 after doing it: the daemon must say "may have happened" */
	ctl_fault("/snap-adapter/b2b2c/v1.0/emoney/topup", "http504", 0, true);
	amt.value = "500.00";
	amt.currency = "IDR";
	tu.partner_reference_no = "it-topup-504";
	tu.customer_number = g.customer_number;
	tu.amount = &amt;
	tu.session_id = "sess-504";
	tu.notes = "gateway timeout";
	assert_true(dokubridge_top_up(g.c, &o, &tu, NULL, &res) < 0);
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_UNKNOWN);
	assert_int_equal(res.http_status, 504);
	assert_string_equal(res.partner_reference_no, "it-topup-504");
	assert_true(res.external_id[0] != '\0');
	snprintf(extid, sizeof extid, "%s", res.external_id);
	/* ... and the status method tells: it happened */
	ts.original_partner_reference_no = "it-topup-504";
	ts.original_external_id = extid;
	ts.service_code = "38";
	assert_ok(dokubridge_get_top_up_status(g.c, &o, &ts, &tsr, &res), &res, true);
	assert_string_equal(tsr->latest_transaction_status, "00");
	dokubridge_message_free(tsr);
}

static void test_cancel(void **state)
{
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	dokubridge_call_opts o = customer();
	struct tally t = {0};
	uint64_t id = 0;
	time_t until = time(NULL) + 20;

	(void)state;
	ctl_fault("/snap-adapter/b2b2c/v1.0/balance-inquiry", "delay", 5000, false);
	gb.partner_reference_no = "it-cancel-1";
	assert_int_equal(dokubridge_get_balance_start(g.c, &o, &gb, tally_done, &t, &id, NULL), 0);
	assert_int_equal(dokubridge_cancel(g.c, id), 0);
	while (t.done == 0 && time(NULL) < until)
		assert_int_equal(dokubridge_poll(g.c, 1000), 0);
	assert_int_equal(t.done, 1);
	assert_int_equal(t.first_bad_code, DOKUBRIDGE_CANCELLED);
	json_decref(ctl("DELETE", "faults", NULL));
}

/* Last: stop the daemon. The connection fails (UNAVAILABLE, the call may have
 * happened), and a new connection cannot be made (UNAVAILABLE, not done). */
static void test_daemon_down(void **state)
{
	const char *pid = getenv("DOKU_BRIDGED_PID");
	Doku__Wallet__V1__HealthRequest h = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	dokubridge_result res;
	time_t until = time(NULL) + 30;
	int rc = 0;

	(void)state;
	assert_non_null(pid);
	assert_int_equal(kill((pid_t)atol(pid), SIGTERM), 0);
	/* the daemon closes our idle connection as it goes: wait for that */
	while (rc == 0 && dokubridge_connected(g.c) && time(NULL) < until)
		rc = dokubridge_poll(g.c, 1000);
	assert_false(dokubridge_connected(g.c));
	assert_int_equal(dokubridge_health(g.c, NULL, &h, NULL, &res), -DOKUBRIDGE_UNAVAILABLE);
	assert_true(res.local);
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_NOT_DONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_rpc_blocking),
		cmocka_unit_test(test_async_many_in_flight),
		cmocka_unit_test(test_invalid_argument),
		cmocka_unit_test(test_permission_denied),
		cmocka_unit_test(test_unimplemented),
		cmocka_unit_test(test_deadline_exceeded),
		cmocka_unit_test(test_outcome_unknown),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_daemon_down),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
