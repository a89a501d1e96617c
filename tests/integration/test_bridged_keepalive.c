/* A pooled keep-alive connection that the server closed while it sat idle.
 *
 * doku-snapsim runs with a 1 s idle timeout: it closes a silent keep-alive
 * connection with a TLS close_notify and closes the socket. libcurl's check
 * of a pooled connection peeks one byte, the pending alert makes it look
 * alive, and the next request is written on it: "Send failure: Broken pipe"
 * (CURLE_SEND_ERROR), a spurious UNAVAILABLE for the first non-money call
 * after a quiet spell. The daemon must send such a request again on a fresh
 * connection (bridged/upstream.h), once, without the simulator ever seeing
 * it twice.
 *
 * The test waits, by bounded polling of the simulator's connection counters
 * (GET /control/counters "connections"), until every connection the daemon
 * held has been closed for idleness; no sleep. */
#include "harness.h"
#include "prom.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIM_IDLE_S 1   /* the simulator's --idle-timeout */
#define POLL_MS 20     /* between two looks at the counters */
#define BAL "/snap-adapter/b2b2c/v1.0/balance-inquiry"
#define TOPUP "/snap-adapter/b2b2c/v1.0/emoney/topup"
#define TOPUP_STATUS "/snap-adapter/b2b2c/v1.0/emoney/topup-status"

static h_env env;
static dokubridge_client *cli;
static h_customer cust;

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int group_setup(void **state)
{
	(void)state;
	env.direct = true; /* the daemon's own connections to the simulator, not the tap's */
	env.sim_idle_timeout_s = SIM_IDLE_S;
	h_setup(&env);
	h_daemon_start(&env, NULL, NULL);
	cli = h_client(&env);
	h_customer_new(&env, cli, "cust-1", &cust);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dokubridge_free(cli);
	h_teardown(&env);
	return 0;
}

/* Wait until the simulator holds no HTTPS connection any more and has closed
 * more than idle_before of them for idleness: the daemon's pool then holds
 * only connections the server closed. */
static void wait_idle_closed(long idle_before)
{
	uint64_t end = now_ms() + H_WAIT_MS;

	for (;;) {
		long opened = h_counter(&env, "connections", "opened");
		long closed = h_counter(&env, "connections", "closed");
		long idle = h_counter(&env, "connections", "idleClosed");

		if (opened > 0 && opened == closed && idle > idle_before)
			return;
		if (now_ms() > end)
			fail_msg("connections: opened %ld closed %ld idleClosed %ld (before %ld)", opened,
				 closed, idle, idle_before);
		poll(NULL, 0, POLL_MS); /* bounded polling of an observable condition */
	}
}

static void balance(const char *ref)
{
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceResponse *gbr = NULL;
	dokubridge_result res;

	gb.partner_reference_no = (char *)ref;
	OK_CALL(cli, "cust-1", "GetBalance", gb, &gbr, &res);
	assert_string_equal(res.response_code, "2001100");
	dokubridge_message_free(gbr);
}

/* The daemon's count of requests sent again on a fresh connection. */
static double stale_retries(void)
{
	Doku__Wallet__V1__MetricsRequest req = DOKU__WALLET__V1__METRICS_REQUEST__INIT;
	Doku__Wallet__V1__MetricsResponse *m = NULL;
	dokubridge_result res;
	prom p;
	double v;

	OK_CALL(cli, NULL, "Metrics", req, &m, &res);
	if (prom_parse(m->text, &p) != 0)
		fail_msg("metrics: %s", p.error);
	v = prom_get(&p, "doku_bridge_upstream_retries_total", "reason=\"stale_connection\"");
	prom_free(&p);
	dokubridge_message_free(m);
	return v;
}

/* GetBalance, the connection closed by the server while idle, GetBalance
 * again: OK, and the simulator saw the second call exactly once. */
static void test_balance_after_idle_close(void **state)
{
	char ref1[96], ref2[96];
	long idle_before;
	double retries;

	(void)state;
	snprintf(ref1, sizeof(ref1), "%s", h_ref("bal"));
	snprintf(ref2, sizeof(ref2), "%s", h_ref("bal"));
	idle_before = h_counter(&env, "connections", "idleClosed");
	retries = stale_retries();
	balance(ref1);
	wait_idle_closed(idle_before);
	balance(ref2);
	assert_int_equal(h_sim_requests(&env, BAL, ref2), 1);
	assert_true(stale_retries() >= retries + 1);
}

/* The same for a status query (what reconciliation sends) after a
 * money-moving call: the TopUp went out on a fresh connection, which the
 * pool kept and the server then closed. */
static void test_topup_status_after_idle_close(void **state)
{
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__GetTopUpStatusRequest ts = DOKU__WALLET__V1__GET_TOP_UP_STATUS_REQUEST__INIT;
	Doku__Wallet__V1__GetTopUpStatusResponse *tsr = NULL;
	Doku__Wallet__V1__Amount a = DOKU__WALLET__V1__AMOUNT__INIT;
	dokubridge_result res;
	char ref[96], extid[64];
	long idle_before;

	(void)state;
	snprintf(ref, sizeof(ref), "%s", h_ref("topup"));
	idle_before = h_counter(&env, "connections", "idleClosed");
	tu.partner_reference_no = ref;
	tu.customer_number = cust.account_no;
	a.value = "1000.00";
	a.currency = "IDR";
	tu.amount = &a;
	tu.session_id = "sess-1";
	tu.notes = "keep-alive";
	OK_CALL(cli, "cust-1", "TopUp", tu, NULL, &res);
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_DONE);
	snprintf(extid, sizeof(extid), "%s", res.external_id);
	wait_idle_closed(idle_before);

	ts.original_partner_reference_no = ref;
	ts.original_external_id = extid;
	ts.service_code = "38";
	OK_CALL(cli, "cust-1", "GetTopUpStatus", ts, &tsr, &res);
	assert_string_equal(tsr->latest_transaction_status, "00");
	dokubridge_message_free(tsr);
	assert_int_equal(h_sim_requests(&env, TOPUP, ref), 1);
	assert_int_equal(h_sim_requests(&env, TOPUP_STATUS, ref), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_balance_after_idle_close),
		cmocka_unit_test(test_topup_status_after_idle_close),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
