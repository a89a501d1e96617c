/* A fleet's customer sessions (issue 13): three daemons on one PostgreSQL.
 *   test_session_everywhere: a session opened through daemon A serves GetBalance
 *     through B and C without a new binding or token (DOKU issued no customer token
 *     for them); CloseCustomerSession through C closes it everywhere: GetBalance
 *     through A (and B) is then refused as for a session never opened
 *     (FAILED_PRECONDITION, NOT_DONE), and DOKU saw no request for those calls.
 *   test_refresh_once: DOKU expires the customer's access token; calls through the
 *     three daemons at once all succeed and the fleet refreshes it once (single
 *     flight across daemons, compare then refresh). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLEET 3u
#define BAL_PATH "/snap-adapter/b2b2c/v1.0/balance-inquiry"
#define PER_DAEMON 8u              /* calls at once per daemon after the expiry */

static h_env fl[FLEET];

static int kill_all(void **state)
{
	(void)state;
	h_fleet_kill(fl, FLEET);
	return 0;
}

/* GetBalance of customer through c under a fresh reference (into ref[64]): h_call's code. */
static int balance(dokubridge_client *c, const char *customer, char ref[64], dokubridge_result *res)
{
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;

	snprintf(ref, 64, "%s", h_ref("fsbal"));
	gb.partner_reference_no = ref;
	return h_call(c, customer, "GetBalance", &gb.base, NULL, res);
}

static void test_session_everywhere(void **state)
{
	Doku__Wallet__V1__CloseCustomerSessionRequest cq = DOKU__WALLET__V1__CLOSE_CUSTOMER_SESSION_REQUEST__INIT;
	Doku__Wallet__V1__CloseCustomerSessionResponse *cr = NULL;
	Doku__Wallet__V1__HealthRequest hq = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__HealthResponse *hr = NULL;
	dokubridge_client *c[FLEET];
	dokubridge_result res;
	h_customer cust;
	char ref[64];
	long b2b2c, refreshed;

	(void)state;
	h_fleet_start(fl, FLEET, NULL);
	for (unsigned i = 0; i < FLEET; i++)
		c[i] = h_client(&fl[i]);
	h_customer_new(&fl[0], c[0], "fsess-a", &cust); /* bound and opened through A */
	b2b2c = h_counter(&fl[0], "tokens", "b2b2c");
	refreshed = h_counter(&fl[0], "tokens", "refreshed");

	/* served through B and C: no binding, no new customer token */
	for (unsigned i = 1; i < FLEET; i++) {
		if (balance(c[i], "fsess-a", ref, &res) != 0)
			fail_msg("GetBalance through daemon %u of the session opened through A: %s: %s", i,
				 dokubridge_code_name(res.code), res.message);
		assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_DONE);
		assert_int_equal(h_sim_requests(&fl[0], BAL_PATH, ref), 1);
	}
	assert_int_equal(h_counter(&fl[0], "tokens", "b2b2c"), b2b2c);
	assert_int_equal(h_counter(&fl[0], "tokens", "refreshed"), refreshed);

	/* closed through C */
	OK_CALL(c[2], "fsess-a", "CloseCustomerSession", cq, &cr, &res);
	assert_true(cr->closed);
	dokubridge_message_free(cr);

	/* refused through A (which opened it) and B, as a session never opened; not sent */
	for (unsigned i = 0; i < 2; i++) {
		assert_true(balance(c[i], "fsess-a", ref, &res) < 0);
		fprintf(stderr, "fleet sessions: GetBalance through daemon %u after the close through C: "
			"%s %s: %s\n", i, dokubridge_code_name(res.code),
			dokubridge_outcome_name(res.outcome), res.message);
		assert_false(res.local);
		assert_int_equal(res.code, DOKUBRIDGE_FAILED_PRECONDITION);
		assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_NOT_DONE);
		assert_non_null(strstr(res.message, "no customer session"));
		assert_int_equal(res.http_status, 0);
		assert_int_equal(h_sim_requests(&fl[0], BAL_PATH, ref), 0);
	}
	{
		/* a session never opened is refused in the same words */
		dokubridge_result never;

		assert_true(balance(c[0], "fsess-never", ref, &never) < 0);
		assert_int_equal(never.code, res.code);
		assert_int_equal(never.outcome, res.outcome);
	}
	/* closing again through A: there is none anywhere */
	OK_CALL(c[0], "fsess-a", "CloseCustomerSession", cq, &cr, &res);
	assert_false(cr->closed);
	dokubridge_message_free(cr);
	for (unsigned i = 0; i < FLEET; i++) {
		OK_CALL(c[i], NULL, "Health", hq, &hr, &res);
		assert_int_equal(hr->n_profiles, 1);
		assert_int_equal(hr->profiles[0]->customer_sessions, 0);
		dokubridge_message_free(hr);
	}

	/* another customer bound and opened through B: served through A */
	{
		h_customer other;

		h_customer_new(&fl[0], c[1], "fsess-b", &other);
		if (balance(c[0], "fsess-b", ref, &res) != 0)
			fail_msg("GetBalance through A of a session opened through B: %s: %s",
				 dokubridge_code_name(res.code), res.message);
	}
	for (unsigned i = 0; i < FLEET; i++)
		dokubridge_free(c[i]);
	h_fleet_teardown(fl, FLEET);
}

static const ProtobufCMessage *make_balance(unsigned i, void *arg)
{
	static Doku__Wallet__V1__GetBalanceRequest gb;
	static char ref[64];

	(void)arg;
	doku__wallet__v1__get_balance_request__init(&gb);
	snprintf(ref, sizeof(ref), "fsref-%ld-%u", (long)getpid(), i);
	gb.partner_reference_no = ref;
	return &gb.base;
}

static void test_refresh_once(void **state)
{
	dokubridge_client *c[FLEET];
	dokubridge_result res;
	h_customer cust;
	char ref[64];
	long refreshed, st;
	h_burst b;

	(void)state;
	h_fleet_start(fl, FLEET, NULL);
	for (unsigned i = 0; i < FLEET; i++)
		c[i] = h_client(&fl[i]);
	h_customer_new(&fl[0], c[0], "fsess-r", &cust);
	for (unsigned i = 0; i < FLEET; i++) /* each daemon has used the session */
		assert_int_equal(balance(c[i], "fsess-r", ref, &res), 0);
	refreshed = h_counter(&fl[0], "tokens", "refreshed");
	free(h_ctl(&fl[0], "POST", "/control/tokens", "{\"action\":\"expire\",\"kind\":\"customer\"}", &st));
	assert_int_equal(st, 200);
	/* PER_DAEMON calls through each daemon, all started before any completes */
	h_burst_run(c, FLEET, PER_DAEMON, "GetBalance", "fsess-r", make_balance, NULL, NULL, &b);
	fprintf(stderr, "fleet sessions: after the expiry: %u calls through %u daemons, %u ok; "
		"refreshes: %ld\n", b.total, FLEET, b.ok,
		h_counter(&fl[0], "tokens", "refreshed") - refreshed);
	assert_int_equal(b.ok, b.total);
	assert_int_equal(h_counter(&fl[0], "tokens", "refreshed") - refreshed, 1);
	for (unsigned i = 0; i < FLEET; i++)
		dokubridge_free(c[i]);
	h_fleet_teardown(fl, FLEET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_session_everywhere, kill_all),
		cmocka_unit_test_teardown(test_refresh_once, kill_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
