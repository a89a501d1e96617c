/* The journal's cost: money-moving calls per second (TopUp, every call a new
 * partner reference) through doku-bridged with [bridge] journal = on and
 * journal = off, against doku-snapsim over TLS (no tap), same daemon, same
 * customer (its session survives the restart between the two runs).
 *
 *   bench_journal_cost [--calls N] [--callers K] [--rounds R]
 *
 * Each round measures off, then on (R rounds, alternating, to even out the
 * noise of a shared machine) and prints calls/s and the slowest call. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define CALLERS_MAX 256
#define CALLS_DEFAULT 4096
#define CALLERS_DEFAULT 64
#define ROUNDS_DEFAULT 2

static h_env env;
static h_customer cust;
static Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
static Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;
static char ref[96];

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const ProtobufCMessage *make(unsigned i, void *arg)
{
	(void)arg;
	(void)i;
	snprintf(ref, sizeof(ref), "%s", h_ref("jc"));
	tu.partner_reference_no = ref;
	return &tu.base;
}

static double run(bool journal, unsigned calls, unsigned callers, uint64_t *max_ms)
{
	dokubridge_client *cs[CALLERS_MAX];
	h_burst b;
	uint64_t t0;
	double secs;

	if (env.daemon_pid > 0) {
		h_daemon_signal(&env, SIGTERM);
		if (h_daemon_wait(&env) != 0)
			fprintf(stderr, "daemon did not stop cleanly\n");
	}
	h_daemon_start(&env, journal ? "journal = on\nlog_level = warning"
				     : "journal = off\nlog_level = warning", NULL);
	for (unsigned i = 0; i < callers; i++)
		cs[i] = h_client(&env);
	t0 = now_us();
	h_burst_run(cs, callers, calls / callers, "TopUp", cust.ref, make, NULL, NULL, &b);
	secs = (double)(now_us() - t0) / 1e6;
	for (unsigned i = 0; i < callers; i++)
		dokubridge_free(cs[i]);
	if (b.ok != b.total)
		fprintf(stderr, "%u of %u calls failed\n", b.total - b.ok, b.total);
	*max_ms = b.max_ms;
	return (double)b.total / secs;
}

int main(int argc, char **argv)
{
	unsigned calls = CALLS_DEFAULT, callers = CALLERS_DEFAULT, rounds = ROUNDS_DEFAULT;
	dokubridge_client *c;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--calls") == 0)
			calls = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--callers") == 0)
			callers = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = (unsigned)strtoul(argv[i + 1], NULL, 10);
	}
	if (callers == 0 || callers > CALLERS_MAX || calls < callers || rounds == 0) {
		fprintf(stderr, "usage: bench_journal_cost [--calls N] [--callers K<=%d] [--rounds R]\n",
			CALLERS_MAX);
		return 2;
	}
	env.direct = true;
	h_setup(&env);
	h_daemon_start(&env, NULL, NULL);
	c = h_client(&env);
	h_customer_new(&env, c, "bench", &cust);
	dokubridge_free(c);
	tu.customer_number = cust.account_no;
	amt.value = "1.00";
	amt.currency = "IDR";
	tu.amount = &amt;
	tu.session_id = "bench";
	tu.notes = "journal cost";
	printf("TopUp, %u calls per run, %u callers (one connection each), %s\n", calls, callers,
	       env.sim_https);
	for (unsigned r = 0; r < rounds; r++)
		for (int on = 0; on < 2; on++) {
			uint64_t max_ms;
			double rate = run(on != 0, calls, callers, &max_ms);

			printf("round %u journal=%-3s %8.0f calls/s  slowest %" PRIu64 " ms\n", r + 1,
			       on ? "on" : "off", rate, max_ms);
			fflush(stdout);
		}
	h_teardown(&env);
	return 0;
}
