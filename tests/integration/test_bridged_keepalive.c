/* Pooled keep-alive connections that the server closed while idle.
 *
 * doku-snapsim runs with a 1 s idle timeout: it closes a silent keep-alive
 * connection with a TLS close_notify and closes the socket. libcurl's check
 * of a pooled connection peeks one byte, the pending alert makes it look
 * alive, and the next request is written on it and gets nothing back.
 * libcurl (7.88) then sends it again on the next pooled connection, and
 * gives up after five: with POOL_FILL dead connections in the pool (one per
 * money-moving call) the first call after the quiet spell failed with
 * CURLE_SEND_ERROR, "Send failure: Broken pipe", UNAVAILABLE. The daemon
 * must send such a request once more on a fresh connection
 * (bridged/io/upstream.h), and the simulator must see it exactly once.
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

#define SIM_IDLE_S 1   /* the simulator's --idle-timeout */
#define POLL_MS 20     /* between two looks at the counters */
#define POOL_FILL 8    /* pooled connections: more than libcurl's 5 retries on dead ones */
#define BAL "/snap-adapter/b2b2c/v1.0/balance-inquiry"
#define TOPUP "/snap-adapter/b2b2c/v1.0/emoney/topup"
#define TOPUP_STATUS "/snap-adapter/b2b2c/v1.0/emoney/topup-status"

static h_env env;
static dokubridge_client *cli;
static h_customer cust;

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
	uint64_t end = h_now_ms() + H_WAIT_MS;

	for (;;) {
		long opened = h_counter(&env, "connections", "opened");
		long closed = h_counter(&env, "connections", "closed");
		long idle = h_counter(&env, "connections", "idleClosed");

		if (opened > 0 && opened == closed && idle > idle_before)
			return;
		if (h_now_ms() > end)
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

/* One pooled connection (the customer's set-up left one or two): GetBalance,
 * the connection closed by the server while idle, GetBalance again: OK, and
 * the simulator saw the second call exactly once. libcurl's own retry
 * handles this one (an empty answer on a reused connection). */
static void test_one_connection(void **state)
{
	char ref[96];
	long idle_before;

	(void)state;
	idle_before = h_counter(&env, "connections", "idleClosed");
	balance(h_ref("bal"));
	wait_idle_closed(idle_before);
	snprintf(ref, sizeof(ref), "%s", h_ref("bal"));
	balance(ref);
	assert_int_equal(h_sim_requests(&env, BAL, ref), 1);
}

/* POOL_FILL money-moving calls, each on a fresh connection that the pool
 * keeps; the simulator then closes them all while idle. */
static void fill_pool_and_wait(char ref[96], char extid[64])
{
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__Amount a;
	dokubridge_result res;
	long idle_before = h_counter(&env, "connections", "idleClosed");

	h_amount(&a, "1000.00");
	for (unsigned i = 0; i < POOL_FILL; i++) {
		snprintf(ref, 96, "%s", h_ref("topup"));
		tu.partner_reference_no = ref;
		tu.customer_number = cust.account_no;
		tu.amount = &a;
		tu.session_id = "sess-1";
		tu.notes = "keep-alive";
		OK_CALL(cli, "cust-1", "TopUp", tu, NULL, &res);
		assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_DONE);
		snprintf(extid, 64, "%s", res.external_id);
	}
	wait_idle_closed(idle_before);
}

/* A status query (what reconciliation sends) after a quiet spell with a
 * full pool: libcurl's own retry walks through the dead connections and
 * gives up after five (CURLE_SEND_ERROR, "Send failure: Broken pipe"); the
 * daemon sends the query once more on a fresh connection. */
static void test_full_pool_status_query(void **state)
{
	Doku__Wallet__V1__GetTopUpStatusRequest ts = DOKU__WALLET__V1__GET_TOP_UP_STATUS_REQUEST__INIT;
	Doku__Wallet__V1__GetTopUpStatusResponse *tsr = NULL;
	dokubridge_result res;
	char ref[96], extid[64];
	double retries = stale_retries();

	(void)state;
	fill_pool_and_wait(ref, extid);
	ts.original_partner_reference_no = ref;
	ts.original_external_id = extid;
	ts.service_code = "38";
	OK_CALL(cli, "cust-1", "GetTopUpStatus", ts, &tsr, &res);
	assert_string_equal(tsr->latest_transaction_status, "00");
	dokubridge_message_free(tsr);
	assert_int_equal(h_sim_requests(&env, TOPUP, ref), 1);
	assert_int_equal(h_sim_requests(&env, TOPUP_STATUS, ref), 1);
	assert_true(stale_retries() == retries + 1);
}

/* The same for GetBalance. */
static void test_full_pool_balance(void **state)
{
	char ref[96], extid[64], bref[96];
	double retries = stale_retries();

	(void)state;
	fill_pool_and_wait(ref, extid);
	snprintf(bref, sizeof(bref), "%s", h_ref("bal"));
	balance(bref);
	assert_int_equal(h_sim_requests(&env, BAL, bref), 1);
	assert_true(stale_retries() == retries + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_connection),
		cmocka_unit_test(test_full_pool_status_query),
		cmocka_unit_test(test_full_pool_balance),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
