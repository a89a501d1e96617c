/* Load: LOAD_CONNS connections at once issuing mixed calls (Health, GetBalance
 * through the simulator, a few TopUps and Purchases) for DOKU_LOAD_SECONDS
 * (default 60; 15 under the sanitizers), with no error, and the daemon's
 * memory flat: the largest VmRSS of the last third of the run is at most
 * RSS_SLACK_KIB above the largest of the first third (under ASan the
 * daemon's quarantine is cut to 4 MiB for this). Loopback only.
 * DOKU_LOAD_ONLY=health|balance|money narrows the mix (a diagnosis aid). */
#include "harness.h"
#include "load.h"
#include "prom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#define C(x) DOKUBRIDGE_##x
#define LOAD_CONNS 1000u
#define RSS_SAMPLES_MAX 4096
#define RSS_SLACK_KIB (8 * 1024L)      /* growth allowed from the first third to the last */
#define RSS_TICK_MS 250u
#ifdef DOKU_SANITIZE
#define LOAD_SECONDS_DEFAULT 15ul
#else
#define LOAD_SECONDS_DEFAULT 60ul
#endif

enum { K_HEALTH, K_BALANCE, K_TOPUP, K_PURCHASE };

static h_env env;

static int h_kill_all(void **state)
{
	(void)state;
	h_kill(&env);
	return 0;
}
static h_customer cust;

struct run {
	long rss[RSS_SAMPLES_MAX];
	uint64_t rss_ms[RSS_SAMPLES_MAX];
	unsigned nrss;
	uint64_t bad;
	char ref[96];
	Doku__Wallet__V1__HealthRequest health;
	Doku__Wallet__V1__GetBalanceRequest bal;
	Doku__Wallet__V1__TopUpRequest topup;
	Doku__Wallet__V1__PurchaseRequest buy;
	Doku__Wallet__V1__Amount one;
};

static void make(unsigned client, uint64_t seq, ld_call *out, void *arg)
{
	struct run *r = arg;
	unsigned pick = (unsigned)((seq * 7919u + client) % 100u);
	const char *only = getenv("DOKU_LOAD_ONLY"); /* a diagnosis aid: "health", "balance" or "money" */

	if (only != NULL)
		pick = strcmp(only, "health") == 0 ? 0 : strcmp(only, "money") == 0 ? 96 + pick % 4 : 60;

	if (pick < 50) {
		out->method = "Health";
		out->req = &r->health.base;
		out->kind = K_HEALTH;
		return;
	}
	out->customer = cust.ref;
	if (pick < 96) {
		out->method = "GetBalance";
		out->req = &r->bal.base;
		out->kind = K_BALANCE;
		return;
	}
	snprintf(r->ref, sizeof(r->ref), "ld-%ld-%llu", (long)getpid(), (unsigned long long)seq);
	if (pick < 98) {
		r->topup.partner_reference_no = r->ref;
		out->method = "TopUp";
		out->req = &r->topup.base;
		out->kind = K_TOPUP;
		return;
	}
	r->buy.partner_reference_no = r->ref;
	out->method = "Purchase";
	out->req = &r->buy.base;
	out->kind = K_PURCHASE;
}

static void check(const ld_call *call, const dokubridge_result *res, void *arg)
{
	struct run *r = arg;

	if (res->code == C(OK) && res->outcome == C(OUTCOME_DONE))
		return;
	if (r->bad++ < 10)
		fprintf(stderr, "load: %s: %s %s: %s\n", call->method, dokubridge_code_name(res->code),
			dokubridge_outcome_name(res->outcome), res->message);
}

static void tick(uint64_t elapsed_ms, void *arg)
{
	struct run *r = arg;

	if (r->nrss < RSS_SAMPLES_MAX) {
		r->rss[r->nrss] = ld_rss_kib(env.daemon_pid);
		r->rss_ms[r->nrss] = elapsed_ms;
		r->nrss++;
	}
}

static void test_load(void **state)
{
	static struct run r;
	unsigned long seconds = ld_env("DOKU_LOAD_SECONDS", LOAD_SECONDS_DEFAULT);
	dokubridge_client **cs = calloc(LOAD_CONNS, sizeof(*cs));
	dokubridge_client *cli;
	Doku__Wallet__V1__TopUpRequest seed = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__MetricsRequest mq = DOKU__WALLET__V1__METRICS_REQUEST__INIT;
	Doku__Wallet__V1__MetricsResponse *mr = NULL;
	Doku__Wallet__V1__HealthResponse *h = NULL;
	Doku__Wallet__V1__Amount big;
	dokubridge_result res;
	ld_opts o = { .depth = 1, .duration_ms = seconds * 1000u, .tick_ms = RSS_TICK_MS, .make = make,
		      .check = check, .tick = tick, .arg = &r };
	ld_stats st;
	long first = 0, last = 0;
	prom pm;

	(void)state;
	assert_non_null(cs);
	assert_true(ld_raise_nofile(LOAD_CONNS * 2 + 256) >= (long)(LOAD_CONNS * 2 + 256));
#ifdef DOKU_SANITIZE
	{
		/* ASan's quarantine (256 MiB by default) would read as growth: keep it small
		 * in the daemon (and the simulator) so that the RSS bound means something */
		const char *asan = getenv("ASAN_OPTIONS");
		char opts[1024];

		snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=4", asan != NULL ? asan : "",
			 asan != NULL && asan[0] != '\0' ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
	}
#endif
	env.direct = true; /* the tap would be the bottleneck, not the daemon */
	h_setup(&env);
	h_daemon_start(&env, "max_connections = 1100\nlog_level = warning\nupstream_connections = 32\n"
			     "idle_timeout_ms = 600000\n", NULL);
	free(h_ctl(&env, "POST", "/control/settings", "{\"autoApprovePurchases\":true}", NULL));
	cli = h_client(&env);
	h_customer_new(&env, cli, "load-1", &cust);

	seed.partner_reference_no = (char *)h_ref("seed");
	seed.customer_number = cust.account_no;
	doku__wallet__v1__amount__init(&big);
	big.value = "1000000.00";
	big.currency = "IDR";
	seed.amount = &big;
	seed.session_id = "load";
	seed.notes = "seed";
	OK_CALL(cli, cust.ref, "TopUp", seed, NULL, &res);

	doku__wallet__v1__health_request__init(&r.health);
	doku__wallet__v1__get_balance_request__init(&r.bal);
	r.bal.partner_reference_no = "ld-balance";
	doku__wallet__v1__amount__init(&r.one);
	r.one.value = "1.00";
	r.one.currency = "IDR";
	doku__wallet__v1__top_up_request__init(&r.topup);
	r.topup.customer_number = cust.account_no;
	r.topup.amount = &r.one;
	r.topup.session_id = "load";
	r.topup.notes = "load";
	doku__wallet__v1__purchase_request__init(&r.buy);
	r.buy.charge_token = "DOKU";
	r.buy.amount = &r.one;

	for (unsigned i = 0; i < LOAD_CONNS; i++)
		cs[i] = h_client(&env);
	OK_CALL(cli, NULL, "Health", r.health, &h, &res);
	assert_int_equal(h->connections, LOAD_CONNS + 1);
	dokubridge_message_free(h);

	fprintf(stderr, "load: %u connections for %lu s\n", LOAD_CONNS, seconds);
	ld_run(cs, LOAD_CONNS, &o, &st);
	tick(st.elapsed_ms, &r);

	for (unsigned i = 0; i < r.nrss; i++) {
		if (r.rss_ms[i] * 3 <= st.elapsed_ms && r.rss[i] > first)
			first = r.rss[i];
		if (r.rss_ms[i] * 3 >= st.elapsed_ms * 2 && r.rss[i] > last)
			last = r.rss[i];
	}
	fprintf(stderr,
		"load: %llu calls in %.1f s (%.0f/s): %llu ok, %llu not ok, %llu start failures; "
		"health %llu (p99 %.1f ms), balance %llu (p99 %.1f ms), top-up %llu, purchase %llu "
		"(p99 %.1f ms); RSS KiB start %ld, first third max %ld, last third max %ld, end %ld\n",
		(unsigned long long)st.done, (double)st.elapsed_ms / 1000.0,
		(double)st.done * 1000.0 / (double)st.elapsed_ms, (unsigned long long)st.ok,
		(unsigned long long)(st.done - st.ok), (unsigned long long)st.start_failures,
		(unsigned long long)st.by_kind[K_HEALTH], (double)ld_quantile(&st, K_HEALTH, 0.99) / 1000.0,
		(unsigned long long)st.by_kind[K_BALANCE], (double)ld_quantile(&st, K_BALANCE, 0.99) / 1000.0,
		(unsigned long long)st.by_kind[K_TOPUP], (unsigned long long)st.by_kind[K_PURCHASE],
		(double)ld_quantile(&st, K_PURCHASE, 0.99) / 1000.0, r.nrss > 0 ? r.rss[0] : 0L, first,
		last, r.nrss > 0 ? r.rss[r.nrss - 1] : 0L);
	fprintf(stderr, "load: RSS KiB every 5 s:");
	for (unsigned i = 0; i < r.nrss; i += 5000 / RSS_TICK_MS)
		fprintf(stderr, " %ld", r.rss[i]);
	fprintf(stderr, "\n");
	assert_int_equal(st.start_failures, 0);
	assert_int_equal(r.bad, 0);
	assert_int_equal(st.done, st.started);
	assert_int_equal(st.ok, st.done);
	assert_true(getenv("DOKU_LOAD_ONLY") != NULL || (st.by_kind[K_TOPUP] > 0 && st.by_kind[K_PURCHASE] > 0));
	assert_true(r.nrss >= 6);
	assert_true(first > 0);
	assert_true(last <= first + RSS_SLACK_KIB);

	/* the daemon counted what we saw */
	OK_CALL(cli, NULL, "Metrics", mq, &mr, &res);
	if (prom_parse(mr->text, &pm) != 0)
		fail_msg("Metrics: %s", pm.error);
	assert_true(prom_get(&pm, "doku_bridge_calls_total",
			     "method=\"GetBalance\",code=\"OK\",outcome=\"DONE\"") ==
		    (double)st.by_kind[K_BALANCE]);
	assert_true(prom_get(&pm, "doku_bridge_call_duration_seconds_count", "method=\"Purchase\"") ==
		    (double)st.by_kind[K_PURCHASE]);
	assert_true(prom_get(&pm, "doku_bridge_connections", NULL) == LOAD_CONNS + 1);
	assert_true(prom_get(&pm, "doku_bridge_calls_in_flight", NULL) == 0);
	prom_free(&pm);
	dokubridge_message_free(mr);

	for (unsigned i = 0; i < LOAD_CONNS; i++)
		dokubridge_free(cs[i]);
	free(cs);
	ld_stats_free(&st);
	assert_int_equal(kill(env.daemon_pid, 0), 0); /* alive */
	dokubridge_free(cli);
	h_teardown(&env); /* SIGTERM: exit 0 (no leak under ASan) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_load, h_kill_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
