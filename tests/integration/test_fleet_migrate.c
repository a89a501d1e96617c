/* From one daemon to a fleet (issue 13, docs/fleet.md "Migration"): a daemon on
 * SQLite binds customers, opens their sessions and makes TopUps; it is stopped;
 *   doku-bridged --config <postgres configuration> --import-state <its state_dir>
 * copies its state into PostgreSQL and says it verified the copy (a second run
 * copies nothing); then two daemons on PostgreSQL serve the migrated customer
 * sessions without a new binding or customer token, GetOperation finds the
 * journaled rows, and --export-journal of the two backends agrees row by row.
 * The figures, side by side in the run: TopUps per second through one daemon on
 * SQLite, one on PostgreSQL, and two on PostgreSQL (short bounded bursts). */
#include "harness.h"
#include "load.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPUPS 4u
#define BURST_CALLERS 12u
#define BURST_MS 3000u             /* each bounded burst of the figures */
#define OPSTATE(x) DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_##x

static h_env one, pg[2];
static h_customer cust[2];

/* The figures: TopUps (each its own reference) for BURST_MS from BURST_CALLERS callers. */
static void make_topup(unsigned client, uint64_t seq, ld_call *out, void *arg)
{
	static Doku__Wallet__V1__TopUpRequest tu;
	static Doku__Wallet__V1__Amount a;
	static char ref[64];

	(void)arg;
	doku__wallet__v1__top_up_request__init(&tu);
	snprintf(ref, sizeof(ref), "%s-%llu", h_ref("migb"), (unsigned long long)seq);
	tu.partner_reference_no = ref;
	tu.customer_number = cust[client % 2].account_no;
	h_amount(&a, "100.00");
	tu.amount = &a;
	tu.session_id = "figures";
	tu.notes = "figures";
	out->method = "TopUp";
	out->customer = cust[client % 2].ref;
	out->req = &tu.base;
}

/* A burst through envs[0..n) (callers spread over them): TopUps done per second. */
static double burst(h_env *const *envs, unsigned n, const char *what)
{
	dokubridge_client *cs[BURST_CALLERS];
	ld_opts o = { .depth = 1, .duration_ms = BURST_MS, .make = make_topup };
	ld_stats st;
	double rate;

	for (unsigned i = 0; i < BURST_CALLERS; i++)
		cs[i] = h_client(envs[i % n]);
	ld_run(cs, BURST_CALLERS, &o, &st);
	rate = (double)st.ok * 1000.0 / (double)st.elapsed_ms;
	fprintf(stderr, "figures: TopUp, %u callers, %s: %.0f calls/s (%llu done of %llu in %llu ms, "
		"p50 %.1f ms, p99 %.1f ms)\n", BURST_CALLERS, what, rate, (unsigned long long)st.ok,
		(unsigned long long)st.done, (unsigned long long)st.elapsed_ms,
		(double)ld_quantile(&st, 0, 0.5) / 1000.0, (double)ld_quantile(&st, 0, 0.99) / 1000.0);
	assert_int_equal(st.ok, st.done);
	ld_stats_free(&st);
	for (unsigned i = 0; i < BURST_CALLERS; i++)
		dokubridge_free(cs[i]);
	return rate;
}

static int kill_all(void **state)
{
	(void)state;
	h_kill(&pg[1]);
	h_kill(&pg[0]);
	h_kill(&one);
	return 0;
}

/* Every member of a but "id" equal in b. */
static void same_row(const json_t *a, const json_t *b)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)a, key, v) {
		if (strcmp(key, "id") == 0)
			continue;
		if (!json_equal(v, json_object_get(b, key))) {
			char *x = json_dumps(v, JSON_ENCODE_ANY), *y = json_dumps(json_object_get(b, key), JSON_ENCODE_ANY);

			fail_msg("%s %s: \"%s\" is %s on SQLite but %s on PostgreSQL", h_json_str(a, "method"),
				 h_json_str(a, "partnerReferenceNo"), key, x, y != NULL ? y : "absent");
		}
	}
	assert_int_equal(json_object_size(a), json_object_size(b));
}

static void test_migrate(void **state)
{
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	Doku__Wallet__V1__GetOperationRequest go = DOKU__WALLET__V1__GET_OPERATION_REQUEST__INIT;
	Doku__Wallet__V1__GetOperationResponse *gr = NULL;
	Doku__Wallet__V1__Amount a;
	dokubridge_client *c;
	dokubridge_result res;
	char key[PATH_MAX], extra[PATH_MAX + 32], bridge[4 * PATH_MAX + 2048], sqlite_dir[PATH_MAX + 16];
	char refs[TOPUPS][64], exts[TOPUPS][DOKUBRIDGE_EXTERNAL_ID_MAX], *out = NULL, *err = NULL;
	const char *import[] = { "--import-state", sqlite_dir, NULL };
	json_t *before, *after, *r;
	long b2b2c, bindings;
	size_t i;

	(void)state;
	if (!h_pg_init()) {
		fprintf(stderr, "not inside tests/tools/pg_run.sh (no $DOKU_TEST_PG_CONNINFO): skipped\n");
		skip();
	}
	h_pg_new_db();
	h_setup(&one);
	/* one daemon on SQLite, sealing with the key the fleet will share */
	h_fleet_key(&one, key);
	snprintf(extra, sizeof(extra), "state_key_file = %s", key);
	h_daemon_start(&one, extra, NULL);
	c = h_client(&one);
	h_customer_new(&one, c, "mig-1", &cust[0]);
	h_customer_new(&one, c, "mig-2", &cust[1]);
	for (unsigned k = 0; k < TOPUPS; k++) {
		snprintf(refs[k], sizeof(refs[k]), "%s", h_ref("mig"));
		tu.partner_reference_no = refs[k];
		tu.customer_number = cust[k % 2].account_no;
		h_amount(&a, "2500.00");
		tu.amount = &a;
		tu.session_id = "migrate";
		tu.notes = "before the migration";
		OK_CALL(c, cust[k % 2].ref, "TopUp", tu, NULL, &res);
		assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_DONE);
		snprintf(exts[k], sizeof(exts[k]), "%s", res.external_id);
	}
	dokubridge_free(c);
	{
		h_env *e1[] = { &one };

		burst(e1, 1, "one daemon on SQLite");
	}
	h_daemon_signal(&one, SIGTERM);
	assert_int_equal(h_daemon_wait(&one), 0);
	before = h_export_journal(&one);
	assert_true(json_array_size(before) >= TOPUPS);

	/* the migration, as docs/fleet.md gives it */
	h_setup_second(&pg[0], &one, "pg0");
	h_pg_bridge(&pg[0], NULL, bridge, sizeof(bridge));
	h_write_config(&pg[0], bridge, NULL);
	snprintf(sqlite_dir, sizeof(sqlite_dir), "%s/state", one.dir);
	assert_int_equal(h_tool(&pg[0], import, &out, &err), 0);
	fprintf(stderr, "--import-state:\n%s%s", out, err);
	assert_non_null(strstr(out, "verified"));
	assert_non_null(strstr(out, "copied: 2 sessions"));
	free(out);
	free(err);
	/* a second run copies nothing, and says so */
	assert_int_equal(h_tool(&pg[0], import, &out, &err), 0);
	fprintf(stderr, "--import-state again:\n%s%s", out, err);
	assert_non_null(strstr(out, "nothing copied"));
	assert_non_null(strstr(out, "verified"));
	free(out);
	free(err);

	/* two daemons on PostgreSQL serve the migrated sessions: no binding, no new token */
	b2b2c = h_counter(&one, "tokens", "b2b2c");
	bindings = h_counter(&one, "tokens", "bindings");
	h_setup_second(&pg[1], &one, "pg1");
	h_daemon_start(&pg[0], bridge, NULL);
	h_pg_bridge(&pg[1], NULL, bridge, sizeof(bridge));
	h_daemon_start(&pg[1], bridge, NULL);
	for (unsigned d = 0; d < 2; d++) {
		c = h_client(&pg[d]);
		for (unsigned k = 0; k < 2; k++) {
			gb.partner_reference_no = (char *)h_ref("migbal");
			if (h_call(c, cust[k].ref, "GetBalance", &gb.base, NULL, &res) != 0)
				fail_msg("GetBalance of migrated session %s through PostgreSQL daemon %u: %s: %s",
					 cust[k].ref, d, dokubridge_code_name(res.code), res.message);
		}
		/* GetOperation finds the rows journaled on SQLite */
		for (unsigned k = 0; k < TOPUPS; k++) {
			go.partner_reference_no = refs[k];
			go.method = "TopUp";
			OK_CALL(c, NULL, "GetOperation", go, &gr, &res);
			assert_string_equal(gr->operation->external_id, exts[k]);
			assert_int_equal(gr->operation->state, OPSTATE(DONE));
			assert_string_equal(gr->operation->customer_ref, cust[k % 2].ref);
			dokubridge_message_free(gr);
		}
		/* a reference journaled on SQLite is not sent again */
		tu.partner_reference_no = refs[0];
		tu.customer_number = cust[0].account_no;
		OK_CALL(c, cust[0].ref, "TopUp", tu, NULL, &res);
		assert_string_equal(res.external_id, exts[0]);
		assert_non_null(strstr(res.message, "answered from the journal"));
		dokubridge_free(c);
	}
	assert_int_equal(h_counter(&one, "tokens", "b2b2c"), b2b2c);
	assert_int_equal(h_counter(&one, "tokens", "bindings"), bindings);
	assert_int_equal(h_sim_requests(&one, "/snap-adapter/b2b2c/v1.0/emoney/topup", refs[0]), 1);

	/* --export-journal of both backends, row by row */
	after = h_export_journal(&pg[0]);
	assert_int_equal(json_array_size(after), json_array_size(before));
	json_array_foreach(before, i, r) {
		json_t *p = h_journal_row(after, h_json_str(r, "method"), h_json_str(r, "partnerReferenceNo"));

		if (p == NULL)
			fail_msg("%s %s is not in PostgreSQL's journal", h_json_str(r, "method"),
				 h_json_str(r, "partnerReferenceNo"));
		same_row(r, p);
	}
	fprintf(stderr, "migration: %zu journal rows and 2 customer sessions carried over, the same row "
		"by row\n", json_array_size(before));
	{
		h_env *e1[] = { &pg[0] }, *e2[] = { &pg[0], &pg[1] };

		burst(e1, 1, "one daemon on PostgreSQL");
		burst(e2, 2, "two daemons on PostgreSQL");
	}
	json_decref(before);
	json_decref(after);
	h_teardown(&pg[1]);
	h_teardown(&pg[0]);
	h_teardown(&one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_migrate, kill_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
