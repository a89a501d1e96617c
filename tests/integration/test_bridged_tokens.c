/* Tokens: one B2B fetch for a cold burst, one refresh when DOKU revokes the
 * token mid-run (and no failed call), one customer refresh on 401xx02, and a
 * reload that keeps connections and tokens. */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B2B_PATH "/authorization/v1/access-token/b2b"
#define CONNS 50
#define PER_CONN 4

static h_env env;
static dokubridge_client *cs[CONNS];

static int group_setup(void **state)
{
	(void)state;
	h_setup(&env);
	h_daemon_start(&env, NULL, NULL);
	for (unsigned i = 0; i < CONNS; i++)
		cs[i] = h_client(&env);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (unsigned i = 0; i < CONNS; i++)
		dokubridge_free(cs[i]);
	h_teardown(&env);
	return 0;
}

/* Call i creates account i: every call of the burst is a distinct, valid request. */
static const ProtobufCMessage *make_account(unsigned i, void *arg)
{
	static Doku__Wallet__V1__CreateAccountRequest req;
	static char ref[64], phone[32], email[64];
	unsigned base = *(unsigned *)arg;

	doku__wallet__v1__create_account_request__init(&req);
	snprintf(ref, sizeof(ref), "burst-%u-%u", (unsigned)getpid(), base + i);
	snprintf(phone, sizeof(phone), "6285%04u%06u", (unsigned)getpid() % 10000u, base + i);
	snprintf(email, sizeof(email), "b%s@example.id", phone);
	req.partner_reference_no = ref;
	req.name = "Burst Caller";
	req.phone_no = phone;
	req.email = email;
	req.redirect_url = "https://merchant.example/r";
	return &req.base;
}

static void test_cold_burst_one_token(void **state)
{
	unsigned base = 0;
	h_burst b;

	(void)state;
	assert_int_equal(h_counter(&env, "tokens", "b2b"), 0);
	h_burst_run(cs, CONNS, PER_CONN, "CreateAccount", NULL, make_account, NULL, &base, &b);
	fprintf(stderr, "cold burst: %u calls, %u ok, slowest %llu ms\n", b.total, b.ok,
		(unsigned long long)b.max_ms);
	assert_int_equal(b.ok, CONNS * PER_CONN);
	assert_int_equal(h_counter(&env, "tokens", "b2b"), 1);
	assert_int_equal(h_counter(&env, "byEndpoint", B2B_PATH), 1);
}

static void revoke_midway(unsigned done, void *arg)
{
	(void)arg;
	if (done == CONNS) { /* a quarter of the calls answered, the rest in flight */
		long st;
		char *r = h_ctl(&env, "POST", "/control/tokens", "{\"action\":\"revoke\",\"kind\":\"b2b\"}", &st);

		assert_int_equal(st, 200);
		free(r);
	}
}

static void test_revoked_mid_run(void **state)
{
	unsigned base = 100000;
	long before = h_counter(&env, "tokens", "b2b");
	long refused_before = h_counter(&env, "byStatus", "401");
	h_burst b;

	(void)state;
	h_burst_run(cs, CONNS, PER_CONN, "CreateAccount", NULL, make_account, revoke_midway, &base, &b);
	fprintf(stderr, "revoked mid-run: %u ok of %u; 401s answered by DOKU: %ld\n", b.ok, b.total,
		h_counter(&env, "byStatus", "401") - refused_before);
	assert_int_equal(b.ok, CONNS * PER_CONN);          /* no failed call */
	assert_int_equal(h_counter(&env, "tokens", "b2b"), before + 1); /* one refresh */
}

/* DOKU expires the customer's access token: one refresh, the call succeeds. */
static void test_customer_refresh(void **state)
{
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	dokubridge_result res;
	h_customer cust;
	long st;
	char *r;

	(void)state;
	h_customer_new(&env, cs[0], "cust-r", &cust);
	gb.partner_reference_no = (char *)h_ref("bal");
	OK_CALL(cs[0], "cust-r", "GetBalance", gb, NULL, &res);
	assert_int_equal(h_counter(&env, "tokens", "refreshed"), 0);
	r = h_ctl(&env, "POST", "/control/tokens", "{\"action\":\"expire\",\"kind\":\"customer\"}", &st);
	assert_int_equal(st, 200);
	free(r);
	gb.partner_reference_no = (char *)h_ref("bal");
	OK_CALL(cs[1], "cust-r", "GetBalance", gb, NULL, &res);
	assert_int_equal(h_counter(&env, "tokens", "refreshed"), 1);
	/* revoked for good: the session is gone, the caller is told to open one */
	r = h_ctl(&env, "POST", "/control/tokens", "{\"action\":\"revoke\",\"kind\":\"customer\"}", &st);
	free(r);
	gb.partner_reference_no = (char *)h_ref("bal");
	assert_true(h_call(cs[2], "cust-r", "GetBalance", &gb.base, NULL, &res) < 0);
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_NOT_DONE);
	fprintf(stderr, "after revocation: %s: %s\n", dokubridge_code_name(res.code), res.message);
}

/* SIGHUP: new configuration, same connections, same tokens. */
static void test_reload(void **state)
{
	Doku__Wallet__V1__HealthRequest hr = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__HealthResponse *h = NULL;
	Doku__Wallet__V1__InquireAccountRequest ia = DOKU__WALLET__V1__INQUIRE_ACCOUNT_REQUEST__INIT;
	char creds[PATH_MAX + 64], section[4 * PATH_MAX + 1024];
	dokubridge_result res;
	long tokens = h_counter(&env, "tokens", "b2b");

	(void)state;
	snprintf(creds, sizeof(creds), "%s/creds", env.dir);
	snprintf(section, sizeof(section),
		 "[profile.second]\nbase_url = https://%s\nclient_id = %s\n"
		 "client_secret_file = %s/client-secret\nprivate_key_file = %s/partner.key\n"
		 "ca_file = %s/ca.pem\n",
		 env.sim_https, env.client_id, creds, creds, creds);
	h_write_config(&env, "log_level = debug", section);
	h_daemon_signal(&env, SIGHUP);
	assert_true(h_wait_notify(&env, "RELOADING=1"));
	assert_true(h_wait_notify(&env, "READY=1"));
	OK_CALL(cs[0], NULL, "Health", hr, &h, &res);
	assert_int_equal(h->n_profiles, 2);
	assert_int_equal(h->connections, CONNS);
	dokubridge_message_free(h);
	ia.partner_reference_no = (char *)h_ref("none");
	assert_true(h_call(cs[1], NULL, "InquireAccount", &ia.base, NULL, &res) < 0);
	assert_int_equal(res.http_status, 404); /* DOKU answered: the kept token worked */
	assert_int_equal(h_counter(&env, "tokens", "b2b"), tokens);

	/* a broken file: the reload is refused, the daemon keeps running */
	h_write_config(&env, "max_connections = many", NULL);
	h_daemon_signal(&env, SIGHUP);
	assert_true(h_wait_notify(&env, "READY=1"));
	OK_CALL(cs[2], NULL, "Health", hr, &h, &res);
	assert_int_equal(h->n_profiles, 2);
	dokubridge_message_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cold_burst_one_token),
		cmocka_unit_test(test_revoked_mid_run),
		cmocka_unit_test(test_customer_refresh),
		cmocka_unit_test(test_reload),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
