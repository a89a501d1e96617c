/* A fleet's one B2B token (issue 13): three daemons on one PostgreSQL, one
 * state key, the same merchant credentials, against doku-snapsim, which keeps
 * only the newest B2B token (as DOKU does) and here lets it live ttl_s seconds
 * after its last use (4 s). Twelve callers of GetBalance spread over the three daemons,
 * in busy spells longer than the lifetime (the fleet must keep the token alive by
 * using it, and know when it was last used) separated by idle gaps longer than the
 * lifetime + 3 s (the token lapses while nobody calls: the fleet must replace it
 * before a call meets the lapse), for at least 60 s. Then:
 *   - no call failed;
 *   - DOKU answered no request with 401 (no caller met a revoked or lapsed token);
 *   - DOKU issued no more B2B tokens than one per lapse (the gaps) plus one for the
 *     first, and every one of them was fetched under a lease (the daemons' metrics);
 * then one forced revocation (DOKU drops the token while the fleet is busy): no
 * call fails and the fleet asks for exactly one more token.
 * The figures printed: calls, calls per second, B2B requests, the fleet's waits for
 * the token another daemon fetched, and GetBalance calls per second through one
 * daemon and through the fleet, each in a short bounded burst of the same run. */
#include "harness.h"
#include "load.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLEET 3u
#define CALLERS 12u                 /* spread over the fleet: caller i on daemon i % FLEET */
#define CUSTOMERS 3u
/* The sandbox's B2B token lifetime after its last use: 4 s ($DOKU_FLEET_TTL_S sets
 * another; the daemon believes an expiresIn of TOK_TTL_MIN_S or more, bridged/rpc/tokens.h) */
#define TTL_S_DEFAULT 4u
#define BUSY_MS (ttl_s * 1000u + 2000u)  /* a busy spell: longer than the lifetime */
#define GAP_MS (ttl_s * 1000u + 4000u)   /* an idle gap: longer than the lifetime + 3 s */
#define SPELLS 5u                        /* 5 spells and 4 gaps: 62 s */
#define REVOKE_MS 4000u             /* the spell of the forced revocation */
#define REVOKE_AT_MS 1000u          /* ... armed this far into it */
#define FIGURE_MS 3000u             /* each burst of the figures */
#define CALL_TIMEOUT_MS 20000u
#define B2B_PATH "/authorization/v1/access-token/b2b"
#define BAL_PATH "/snap-adapter/b2b2c/v1.0/balance-inquiry"
#define FAILURES_SHOWN 10u

static h_env fl[FLEET];
static h_customer custs[CUSTOMERS];
static unsigned ttl_s;
static char spell_wall[SPELLS + 1][2][32]; /* each spell's start and end, as DOKU's log writes time */

static int kill_all(void **state)
{
	(void)state;
	h_fleet_kill(fl, FLEET);
	return 0;
}

struct run {
	uint64_t failed;
	bool revoke_armed;      /* the revocation spell: arm it at its first tick */
};

static void make_balance(unsigned client, uint64_t seq, ld_call *out, void *arg)
{
	static Doku__Wallet__V1__GetBalanceRequest gb;
	static char ref[64];

	(void)arg;
	doku__wallet__v1__get_balance_request__init(&gb);
	snprintf(ref, sizeof(ref), "fbal-%u-%llu", client, (unsigned long long)seq);
	gb.partner_reference_no = ref;
	out->method = "GetBalance";
	out->customer = custs[client % CUSTOMERS].ref;
	out->req = &gb.base;
	out->timeout_ms = CALL_TIMEOUT_MS;
}

static void check(const ld_call *call, const dokubridge_result *res, void *arg)
{
	struct run *r = arg;

	(void)call;
	if (res->code == DOKUBRIDGE_OK)
		return;
	if (r->failed++ < FAILURES_SHOWN)
		fprintf(stderr, "fleet tokens: a call failed: %s%s: %s (http %u %s)\n",
			dokubridge_code_name(res->code), res->local ? " (local)" : "", res->message,
			res->http_status, res->response_code);
}

static void arm_revocation(uint64_t elapsed_ms, void *arg)
{
	struct run *r = arg;

	if (r->revoke_armed || elapsed_ms < REVOKE_AT_MS)
		return;
	/* the next GetBalance DOKU receives finds the token dropped (and is answered 401) */
	h_fault(&fl[0], "{\"path\":\"" BAL_PATH "\",\"kind\":\"revoke_b2b\",\"count\":1}");
	r->revoke_armed = true;
}

/* One spell of calls on cs[0..n): duration_ms (tick: may be NULL). */
static void spell(dokubridge_client **cs, unsigned n, uint64_t duration_ms, ld_tick_fn tick,
		  struct run *r, ld_stats *st)
{
	ld_opts o = { .depth = 1, .duration_ms = duration_ms, .tick_ms = tick != NULL ? 100u : 0u,
		      .make = make_balance, .check = check, .tick = tick, .arg = r };

	ld_run(cs, n, &o, st);
}

/* The fleet's sum of a metric. */
static double fleet_metric(const char *name)
{
	double v = 0;

	for (unsigned i = 0; i < FLEET; i++)
		v += h_metric(&fl[i], name, NULL);
	return v;
}

/* The wall clock now as DOKU's log gives times ("...T20:38:55.404+07:00": compared as text). */
static void wall_now(char out[32])
{
	struct timespec ts;
	struct tm tm;
	time_t t;
	char sec[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	t = ts.tv_sec + 7 * 3600;
	gmtime_r(&t, &tm);
	assert_true(strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm) > 0);
	snprintf(out, 32, "%.19s.%03d", sec, (int)(ts.tv_nsec / 1000000L));
}

/* After a failure: when DOKU answered 401 for a token, against the spells' times. */
static void show_401s(void)
{
	char *text = h_ctl(&fl[0], "GET", "/control/log?verdict=invalid_b2b_token&limit=20000", NULL, NULL);
	char *line, *save = NULL;
	unsigned n = 0;

	for (unsigned k = 0; k < SPELLS; k++)
		fprintf(stderr, "fleet tokens: spell %u from %s to %s\n", k, spell_wall[k][0], spell_wall[k][1]);
	for (line = strtok_r(text, "\n", &save); line != NULL && n < 60; line = strtok_r(NULL, "\n", &save), n++) {
		json_t *j = json_loads(line, 0, NULL);

		fprintf(stderr, "fleet tokens: 401 at %s %s (%s)\n", h_json_str(j, "time"),
			h_json_str(j, "path"), h_json_str(j, "detail"));
		json_decref(j);
	}
	free(text);
}

static long sim_401s(void)
{
	return h_counter(&fl[0], "byStatus", "401");
}

static void test_fleet_one_token(void **state)
{
	dokubridge_client *cs[CALLERS], *one[CALLERS], *c;
	struct run r = { 0 };
	uint64_t calls = 0, ok = 0, busy_ms = 0;
	long b2b0, s401_0, vb0, vc0, b2b, gaps = 0;
	char ref[32], body[64];
	ld_stats st;
	double waits, wait_s, leases;

	(void)state;
	ttl_s = (unsigned)ld_env("DOKU_FLEET_TTL_S", TTL_S_DEFAULT);
	fl[0].direct = true; /* the figures: no tap between the fleet and DOKU */
	h_fleet_start(fl, FLEET, NULL);
	snprintf(body, sizeof(body), "{\"b2bTokenTtl\":%u}", ttl_s);
	free(h_ctl(&fl[0], "POST", "/control/settings", body, NULL));
	/* customers bound and sessions opened through daemon 0: every daemon serves them */
	c = h_client(&fl[0]);
	for (unsigned i = 0; i < CUSTOMERS; i++) {
		snprintf(ref, sizeof(ref), "ftok-%u", i);
		h_customer_new(&fl[0], c, ref, &custs[i]);
	}
	dokubridge_free(c);
	for (unsigned i = 0; i < CALLERS; i++)
		cs[i] = h_client(&fl[i % FLEET]);

	b2b0 = h_counter(&fl[0], "tokens", "b2b");
	s401_0 = sim_401s();
	vb0 = h_counter(&fl[0], "byVerdict", "invalid_b2b_token");
	vc0 = h_counter(&fl[0], "byVerdict", "invalid_customer_token");
	for (unsigned k = 0; k < SPELLS; k++) {
		uint64_t quiet;

		wall_now(spell_wall[k][0]);
		spell(cs, CALLERS, BUSY_MS, NULL, &r, &st);
		wall_now(spell_wall[k][1]);
		calls += st.done;
		ok += st.ok;
		busy_ms += st.elapsed_ms;
		fprintf(stderr, "fleet tokens: spell %u: %llu calls in %llu ms, %llu failed so far; "
			"B2B tokens issued so far %ld\n", k, (unsigned long long)st.done,
			(unsigned long long)st.elapsed_ms, (unsigned long long)r.failed,
			h_counter(&fl[0], "tokens", "b2b") - b2b0);
		ld_stats_free(&st);
		if (k + 1 == SPELLS)
			break;
		/* The idle gap: waiting is the point here (the token must lapse while nobody
		 * calls), measured on the monotonic clock from the last call's answer. */
		quiet = h_now_ms() + GAP_MS;
		while (h_now_ms() < quiet)
			poll(NULL, 0, (int)(quiet - h_now_ms()));
		gaps++;
	}
	b2b = h_counter(&fl[0], "tokens", "b2b") - b2b0;
	waits = fleet_metric("doku_bridge_fleet_token_waits_total");
	wait_s = fleet_metric("doku_bridge_fleet_token_wait_seconds_total");
	leases = fleet_metric("doku_bridge_fleet_leases_total");
	fprintf(stderr,
		"fleet tokens: %llu calls (%llu ok) over %u daemons in %llu ms busy (%.0f calls/s for the "
		"fleet), %ld idle gaps of %u ms (token lifetime %u s); B2B requests: %ld (at most %ld "
		"allowed); 401s from DOKU: %ld (invalid B2B token %ld, invalid customer token %ld); "
		"waits for another daemon's token: %.0f (%.3f s in all); leases taken: %.0f\n",
		(unsigned long long)calls, (unsigned long long)ok, FLEET, (unsigned long long)busy_ms,
		busy_ms > 0 ? (double)ok * 1000.0 / (double)busy_ms : 0.0, gaps, GAP_MS, ttl_s, b2b,
		gaps + 1, sim_401s() - s401_0, h_counter(&fl[0], "byVerdict", "invalid_b2b_token") - vb0,
		h_counter(&fl[0], "byVerdict", "invalid_customer_token") - vc0, waits, wait_s, leases);
	assert_true(busy_ms + (uint64_t)gaps * GAP_MS >= 60000u);
	assert_int_equal(r.failed, 0);
	assert_int_equal(ok, calls);
	if (sim_401s() - s401_0 != 0)
		show_401s();
	assert_int_equal(sim_401s() - s401_0, 0);
	assert_int_equal(h_counter(&fl[0], "byVerdict", "invalid_b2b_token") - vb0, 0);
	assert_int_equal(h_counter(&fl[0], "byVerdict", "invalid_customer_token") - vc0, 0);
	assert_true(b2b <= gaps + 1);
	/* the token did lapse in every gap (else this run proved nothing) */
	assert_true(b2b >= gaps);
	/* every B2B request DOKU saw was made by a daemon holding the fleet's lease */
	assert_int_equal((long)leases, h_counter(&fl[0], "tokens", "b2b"));

	/* One forced revocation while the fleet is busy (the token is live: no gap). */
	{
		long before = h_counter(&fl[0], "tokens", "b2b"), s401 = sim_401s();

		r.failed = 0;
		spell(cs, CALLERS, REVOKE_MS, arm_revocation, &r, &st);
		fprintf(stderr, "fleet tokens: revoked during load: %llu calls, %llu failed; B2B requests "
			"%ld; 401s answered by DOKU %ld (the calls that met the revoked token, "
			"retried)\n", (unsigned long long)st.done, (unsigned long long)r.failed,
			h_counter(&fl[0], "tokens", "b2b") - before, sim_401s() - s401);
		assert_true(r.revoke_armed);
		assert_false(h_faults_armed(&fl[0])); /* the revocation happened */
		assert_int_equal(r.failed, 0);
		assert_int_equal(st.ok, st.done);
		assert_int_equal(h_counter(&fl[0], "tokens", "b2b") - before, 1);
		ld_stats_free(&st);
	}

	/* The figures: one daemon, then the fleet, the same callers' count, each bounded. */
	{
		ld_stats s1, sf;

		for (unsigned i = 0; i < CALLERS; i++)
			one[i] = h_client(&fl[0]);
		r.failed = 0;
		spell(one, CALLERS, FIGURE_MS, NULL, &r, &s1);
		spell(cs, CALLERS, FIGURE_MS, NULL, &r, &sf);
		fprintf(stderr, "fleet tokens: GetBalance, %u callers: through one daemon %.0f calls/s "
			"(%llu in %llu ms, p99 %.1f ms); through the fleet of %u %.0f calls/s (%llu in "
			"%llu ms, p99 %.1f ms)\n", CALLERS, (double)s1.ok * 1000.0 / (double)s1.elapsed_ms,
			(unsigned long long)s1.ok, (unsigned long long)s1.elapsed_ms,
			(double)ld_quantile(&s1, 0, 0.99) / 1000.0, FLEET,
			(double)sf.ok * 1000.0 / (double)sf.elapsed_ms, (unsigned long long)sf.ok,
			(unsigned long long)sf.elapsed_ms, (double)ld_quantile(&sf, 0, 0.99) / 1000.0);
		assert_int_equal(r.failed, 0);
		ld_stats_free(&s1);
		ld_stats_free(&sf);
		for (unsigned i = 0; i < CALLERS; i++)
			dokubridge_free(one[i]);
	}
	fprintf(stderr, "fleet tokens: B2B requests of the whole run: %ld\n",
		h_counter(&fl[0], "tokens", "b2b"));
	for (unsigned i = 0; i < CALLERS; i++)
		dokubridge_free(cs[i]);
	h_fleet_teardown(fl, FLEET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fleet_one_token, kill_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
