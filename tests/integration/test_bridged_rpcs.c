/* Every RPC of doku.wallet.v1.Wallet end to end: libdokubridge -> doku-bridged
 * -> (tap) -> doku-snapsim over real TLS, with the outcomes and the SNAP facts. */
#include "harness.h"
#include "prom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static h_env env;
static dokubridge_client *cli;
static h_customer cust;

#define C(x) DOKUBRIDGE_##x

static int group_setup(void **state)
{
	(void)state;
	h_setup(&env);
	h_daemon_start(&env, NULL, NULL);
	free(h_ctl(&env, "POST", "/control/settings", "{\"autoApprovePurchases\":true}", NULL));
	cli = h_client(&env);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dokubridge_free(cli);
	h_teardown(&env);
	return 0;
}

/* CreateAccount, VerifyOtp, BindAccount, InquireAccount, OpenCustomerSession. */
static void test_onboarding(void **state)
{
	(void)state;
	h_customer_new(&env, cli, "cust-1", &cust);
	assert_true(cust.account_no[0] != '\0');
}

static void test_health(void **state)
{
	Doku__Wallet__V1__HealthRequest req = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__HealthResponse *h = NULL;
	dokubridge_result res;

	(void)state;
	OK_CALL(cli, NULL, "Health", req, &h, &res);
	assert_string_equal(h->version, "0.1.0");
	assert_int_equal(h->n_profiles, 1);
	assert_string_equal(h->profiles[0]->name, "default");
	assert_true(h->profiles[0]->b2b_token_valid);
	assert_int_equal(strlen(h->profiles[0]->b2b_token_valid_until), 25);
	assert_int_equal(h->profiles[0]->customer_sessions, 1);
	assert_int_equal(h->profiles[0]->token_fetches, 1);
	assert_true(h->calls_served >= 5);
	assert_int_equal(h->connections, 1);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	dokubridge_message_free(h);
}

static char topup_ref[96], topup_extid[64];

static void test_money_in(void **state)
{
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__GetTopUpStatusRequest ts = DOKU__WALLET__V1__GET_TOP_UP_STATUS_REQUEST__INIT;
	Doku__Wallet__V1__GetTopUpStatusResponse *tsr = NULL;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceResponse *gbr = NULL;
	Doku__Wallet__V1__Amount a;
	dokubridge_result res;

	(void)state;
	snprintf(topup_ref, sizeof(topup_ref), "%s", h_ref("topup"));
	tu.partner_reference_no = topup_ref;
	tu.customer_number = cust.account_no;
	h_amount(&a, "250000.00");
	tu.amount = &a;
	tu.session_id = "sess-1";
	tu.notes = "test top-up";
	OK_CALL(cli, "cust-1", "TopUp", tu, NULL, &res);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	assert_int_equal(res.http_status, 200);
	assert_string_equal(res.response_code, "2003800");
	assert_string_equal(res.partner_reference_no, topup_ref);
	assert_int_equal(strlen(res.external_id), 36);
	snprintf(topup_extid, sizeof(topup_extid), "%s", res.external_id);

	ts.original_partner_reference_no = topup_ref;
	ts.original_external_id = topup_extid;
	ts.service_code = "38";
	OK_CALL(cli, "cust-1", "GetTopUpStatus", ts, &tsr, &res);
	assert_string_equal(tsr->latest_transaction_status, "00");
	dokubridge_message_free(tsr);

	gb.partner_reference_no = (char *)h_ref("bal");
	OK_CALL(cli, "cust-1", "GetBalance", gb, &gbr, &res);
	assert_string_equal(gbr->account_info->amount->value, "250000.00");
	assert_string_equal(res.response_code, "2001100");
	dokubridge_message_free(gbr);
}

static void test_bank(void **state)
{
	Doku__Wallet__V1__InquireBankAccountRequest ib = DOKU__WALLET__V1__INQUIRE_BANK_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__InquireBankAccountResponse *ibr = NULL;
	Doku__Wallet__V1__TransferToBankRequest tb = DOKU__WALLET__V1__TRANSFER_TO_BANK_REQUEST__INIT;
	Doku__Wallet__V1__TransferInfo ti = DOKU__WALLET__V1__TRANSFER_INFO__INIT;
	Doku__Wallet__V1__Amount a;
	dokubridge_result res;

	(void)state;
	ib.partner_reference_no = (char *)h_ref("ib");
	ib.customer_number = cust.account_no;
	ib.beneficiary_account_number = "8888123456";
	OK_CALL(cli, "cust-1", "InquireBankAccount", ib, &ibr, &res);
	assert_true(ibr->beneficiary_account_name[0] != '\0');
	tb.partner_reference_no = (char *)h_ref("tb");
	tb.customer_number = cust.account_no;
	tb.account_type = "SAVINGS";
	tb.beneficiary_account_number = "8888123456";
	tb.beneficiary_bank_code = "014";
	h_amount(&a, "10000.00");
	tb.amount = &a;
	ti.reference_no = ibr->reference_no;
	tb.additional_info = &ti;
	OK_CALL(cli, "cust-1", "TransferToBank", tb, NULL, &res);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	assert_string_equal(res.response_code, "2004300");
	dokubridge_message_free(ibr);
}

static void test_purchase_cycle(void **state)
{
	Doku__Wallet__V1__PurchaseRequest p = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__GetPurchaseStatusRequest ps = DOKU__WALLET__V1__GET_PURCHASE_STATUS_REQUEST__INIT;
	Doku__Wallet__V1__GetPurchaseStatusResponse *psr = NULL;
	Doku__Wallet__V1__RefundPurchaseRequest rf = DOKU__WALLET__V1__REFUND_PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__CancelPurchaseRequest cp = DOKU__WALLET__V1__CANCEL_PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__GetTransactionRequest gt = DOKU__WALLET__V1__GET_TRANSACTION_REQUEST__INIT;
	Doku__Wallet__V1__GetTransactionResponse *gtr = NULL;
	Doku__Wallet__V1__ListTransactionsRequest lt = DOKU__WALLET__V1__LIST_TRANSACTIONS_REQUEST__INIT;
	Doku__Wallet__V1__ListTransactionsResponse *ltr = NULL;
	Doku__Wallet__V1__Amount a;
	char ref1[96], ref2[96], from[32], to[32];
	dokubridge_result res;
	time_t now = time(NULL);
	struct tm tm;

	(void)state;
	snprintf(ref1, sizeof(ref1), "%s", h_ref("buy"));
	p.partner_reference_no = ref1;
	p.charge_token = "DOKU";
	h_amount(&a, "15000.00");
	p.amount = &a;
	OK_CALL(cli, "cust-1", "Purchase", p, NULL, &res);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	assert_string_equal(res.partner_reference_no, ref1);

	ps.partner_reference_no = ref1;
	ps.service_code = "54";
	gmtime_r(&now, &tm);
	strftime(from, sizeof(from), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ps.transaction_date = from;
	OK_CALL(cli, "cust-1", "GetPurchaseStatus", ps, &psr, &res);
	assert_string_equal(psr->original_partner_reference_no, ref1);
	dokubridge_message_free(psr);

	rf.original_partner_reference_no = ref1;
	rf.reason = "customer returned it";
	rf.partner_refund_no = (char *)h_ref("refund");
	OK_CALL(cli, "cust-1", "RefundPurchase", rf, NULL, &res);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	/* a refund's reference is its own, the journal's key (the hint of an UNKNOWN
	   reply names it: tests/integration/test_bridged_journal.c) */
	assert_string_equal(res.partner_reference_no, rf.partner_refund_no);

	snprintf(ref2, sizeof(ref2), "%s", h_ref("buy"));
	p.partner_reference_no = ref2;
	OK_CALL(cli, "cust-1", "Purchase", p, NULL, &res);
	cp.original_partner_reference_no = ref2;
	cp.reason = "changed my mind";
	OK_CALL(cli, "cust-1", "CancelPurchase", cp, NULL, &res);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));

	gt.partner_reference_no = ref1;
	OK_CALL(cli, "cust-1", "GetTransaction", gt, &gtr, &res);
	assert_string_equal(gtr->partner_reference_no, ref1);
	dokubridge_message_free(gtr);

	now -= 3600;
	gmtime_r(&now, &tm);
	strftime(from, sizeof(from), "%Y-%m-%dT%H:%M:%SZ", &tm);
	now += 7200;
	gmtime_r(&now, &tm);
	strftime(to, sizeof(to), "%Y-%m-%dT%H:%M:%SZ", &tm);
	lt.partner_reference_no = (char *)h_ref("list");
	lt.from_date_time = from;
	lt.to_date_time = to;
	lt.page_size = "10";
	lt.page_number = "0";
	OK_CALL(cli, "cust-1", "ListTransactions", lt, &ltr, &res);
	assert_true(ltr->n_detail_data >= 3);
	dokubridge_message_free(ltr);
}

/* A business refusal: mapped to a gRPC code, responseCode passed through. */
static void test_refusal(void **state)
{
	Doku__Wallet__V1__PurchaseRequest p = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__PurchaseResponse *pr = NULL;
	Doku__Wallet__V1__Amount a;
	dokubridge_result res;

	(void)state;
	p.partner_reference_no = (char *)h_ref("big");
	p.charge_token = "DOKU";
	h_amount(&a, "99999999.00");
	p.amount = &a;
	assert_int_equal(h_call(cli, "cust-1", "Purchase", &p.base, (ProtobufCMessage **)&pr, &res),
			 -C(FAILED_PRECONDITION));
	assert_int_equal(res.http_status, 403);
	assert_int_equal(strncmp(res.response_code, "40354", 5), 0); /* over a limit */
	assert_int_equal(res.outcome, C(OUTCOME_NOT_DONE));
	assert_non_null(pr); /* DOKU's body comes along, its code unchanged */
	assert_string_equal(pr->response_code, res.response_code);
	assert_non_null(strstr(res.message, res.response_code));
	dokubridge_message_free(pr);
}

/* The journal: GetOperation, ListOperations, and a money-moving call whose
 * partner reference is journaled is answered from the journal, not sent again. */
static void test_journal(void **state)
{
	Doku__Wallet__V1__PurchaseRequest p = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__GetOperationRequest go = DOKU__WALLET__V1__GET_OPERATION_REQUEST__INIT;
	Doku__Wallet__V1__GetOperationResponse *gor = NULL;
	Doku__Wallet__V1__ListOperationsRequest lo = DOKU__WALLET__V1__LIST_OPERATIONS_REQUEST__INIT;
	Doku__Wallet__V1__ListOperationsResponse *lor = NULL;
	Doku__Wallet__V1__Amount a;
	dokubridge_result res;
	char ref[96], ext[64];

	(void)state;
	snprintf(ref, sizeof(ref), "%s", h_ref("jbuy"));
	p.partner_reference_no = ref;
	p.charge_token = "DOKU";
	h_amount(&a, "1000.00");
	p.amount = &a;
	OK_CALL(cli, "cust-1", "Purchase", p, NULL, &res);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	snprintf(ext, sizeof(ext), "%s", res.external_id);

	/* the same partner reference again: the journaled outcome, nothing sent */
	OK_CALL(cli, "cust-1", "Purchase", p, NULL, &res);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	assert_string_equal(res.external_id, ext);
	assert_non_null(strstr(res.message, "journal"));
	assert_int_equal(h_sim_requests(&env, "/snap-adapter/b2b2c/v1.0/debit/payment-host-to-host",
					ref), 1);
	/* ... but a different request under it is refused */
	h_amount(&a, "2000.00");
	assert_int_equal(h_call(cli, "cust-1", "Purchase", &p.base, NULL, &res), -C(ALREADY_EXISTS));
	assert_int_equal(res.outcome, C(OUTCOME_NOT_DONE));

	go.partner_reference_no = ref;
	go.method = "Purchase";
	OK_CALL(cli, NULL, "GetOperation", go, &gor, &res);
	assert_string_equal(gor->operation->external_id, ext);
	assert_string_equal(gor->operation->customer_ref, "cust-1");
	assert_string_equal(gor->operation->amount->value, "1000.00");
	assert_int_equal(gor->operation->state, DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_DONE);
	assert_int_equal(gor->operation->http_status, 200);
	assert_true(gor->operation->response.len > 0);
	dokubridge_message_free(gor);
	go.partner_reference_no = "";
	go.method = "";
	go.external_id = ext;
	OK_CALL(cli, NULL, "GetOperation", go, &gor, &res);
	assert_string_equal(gor->operation->partner_reference_no, ref);
	dokubridge_message_free(gor);
	go.external_id = "1";
	assert_int_equal(h_call(cli, NULL, "GetOperation", &go.base, NULL, &res), -C(NOT_FOUND));
	go.external_id = "";
	assert_int_equal(h_call(cli, NULL, "GetOperation", &go.base, NULL, &res), -C(INVALID_ARGUMENT));

	lo.customer_ref = "cust-1";
	lo.state = DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_DONE;
	lo.page_size = 2;
	OK_CALL(cli, NULL, "ListOperations", lo, &lor, &res);
	assert_int_equal(lor->n_operations, 2);
	assert_string_equal(lor->operations[0]->partner_reference_no, ref); /* newest first */
	assert_true(lor->next_page_token[0] != '\0');
	lo.page_token = lor->next_page_token;
	lo.page_size = 0;
	{
		Doku__Wallet__V1__ListOperationsResponse *more = NULL;

		OK_CALL(cli, NULL, "ListOperations", lo, &more, &res);
		assert_true(more->n_operations >= 3); /* top-ups, transfer, purchases, refund, cancel */
		for (size_t i = 0; i < more->n_operations; i++)
			assert_string_not_equal(more->operations[i]->partner_reference_no, ref);
		dokubridge_message_free(more);
	}
	dokubridge_message_free(lor);
}

static void test_unbind_and_close(void **state)
{
	Doku__Wallet__V1__UnbindAccountRequest ub = DOKU__WALLET__V1__UNBIND_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__CloseCustomerSessionRequest cs = DOKU__WALLET__V1__CLOSE_CUSTOMER_SESSION_REQUEST__INIT;
	Doku__Wallet__V1__CloseCustomerSessionResponse *csr = NULL;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	dokubridge_result res;

	(void)state;
	OK_CALL(cli, "cust-1", "CloseCustomerSession", cs, &csr, &res);
	assert_true(csr->closed);
	dokubridge_message_free(csr);
	OK_CALL(cli, "cust-1", "CloseCustomerSession", cs, &csr, &res);
	assert_false(csr->closed);
	dokubridge_message_free(csr);
	gb.partner_reference_no = (char *)h_ref("bal");
	assert_int_equal(h_call(cli, "cust-1", "GetBalance", &gb.base, NULL, &res),
			 -C(FAILED_PRECONDITION));
	assert_non_null(strstr(res.message, "no customer session"));

	ub.partner_reference_no = (char *)h_ref("unbind");
	ub.link_id = cust.link_id;
	ub.merchant_id = env.client_id;
	OK_CALL(cli, NULL, "UnbindAccount", ub, NULL, &res);
	assert_string_equal(res.response_code, "2000900");
}

/* Every RPC of the service was exercised above. */
static void test_all_methods_seen(void **state)
{
	const ProtobufCServiceDescriptor *svc = DOKUBRIDGE_SERVICE;
	Doku__Wallet__V1__MetricsRequest mq = DOKU__WALLET__V1__METRICS_REQUEST__INIT;
	Doku__Wallet__V1__MetricsResponse *mr = NULL;
	dokubridge_result res;
	prom pm;
	char *log = NULL;
	FILE *f;
	size_t n = 0;

	(void)state;
	/* Metrics: valid Prometheus text with the calls made above */
	OK_CALL(cli, NULL, "Metrics", mq, &mr, &res);
	if (prom_parse(mr->text, &pm) != 0)
		fail_msg("Metrics: %s", pm.error);
	assert_true(prom_has_family(&pm, "doku_bridge_call_duration_seconds"));
	assert_true(prom_has_family(&pm, "doku_bridge_token_requests_total"));
	assert_true(prom_get(&pm, "doku_bridge_calls_total",
			     "method=\"UnbindAccount\",code=\"OK\",outcome=\"DONE\"") >= 1);
	assert_true(prom_get(&pm, "doku_bridge_upstream_responses_total", "http=\"200\"") >= 10);
	prom_free(&pm);
	dokubridge_message_free(mr);
	f = fopen(env.log, "r");
	assert_non_null(f);
	assert_true(getdelim(&log, &n, '\0', f) > 0);
	fclose(f);
	for (unsigned i = 0; i < svc->n_methods; i++) {
		char want[128];

		if (strcmp(svc->methods[i].name, "Health") == 0)
			continue; /* a successful probe is logged at debug; test_health calls it */
		snprintf(want, sizeof(want), "method=%s profile=", svc->methods[i].name);
		if (strstr(log, want) == NULL)
			fprintf(stderr, "not called: %s\n", svc->methods[i].name);
		assert_non_null(strstr(log, want));
	}
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_onboarding),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_money_in),
		cmocka_unit_test(test_bank),
		cmocka_unit_test(test_purchase_cycle),
		cmocka_unit_test(test_refusal),
		cmocka_unit_test(test_journal),
		cmocka_unit_test(test_unbind_and_close),
		cmocka_unit_test(test_all_methods_seen),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
