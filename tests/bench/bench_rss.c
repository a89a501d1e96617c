/* The daemon's memory over many calls: does its RSS grow with the number of
 * money-moving calls (each a new TLS connection, a journal row) or level off?
 *
 *   bench_rss [--method TopUp|GetBalance] [--journal on|off] [--calls N]
 *             [--warmup W] [--block B] [--callers K] [--inflight I]
 *             [--seconds S] [--max-growth-kib G]
 *
 * doku-bridged against doku-snapsim over TLS (no tap). W calls of warm-up,
 * then blocks of B calls until N calls or S seconds (whichever first); after
 * the warm-up and after each block it prints the daemon's VmRSS and its
 * parts (RssAnon: the heap; RssFile, RssShmem: library pages and SQLite's
 * WAL index), its threads, and the growth per call since the warm-up and over
 * the second half of the run. A leak grows the same per call in both halves;
 * a cache or an allocator filling up grows in the first and not in the
 * second. Calls run as bursts of K callers (one connection each) x I calls.
 * --max-growth-kib G: exit 1 when RssAnon grew more than G KiB over the
 * second half of the blocks. Loopback only; bounded by count and time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "harness.h"

#define CALLERS_MAX 256
#define CALLS_DEFAULT 10000u
#define WARMUP_DEFAULT 1000u
#define BLOCK_DEFAULT 1000u
#define CALLERS_DEFAULT 16u
#define INFLIGHT_DEFAULT 4u
#define SECONDS_DEFAULT 300.0
#define BLOCKS_MAX 4096u

/* What /proc/PID/status says of the daemon's memory (KiB) and threads. */
struct mem {
	long rss, anon, file, shmem, threads;
};

static h_env env;
static h_customer cust;
static Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
static Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
static Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;
static char ref[96];
static bool money = true;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mem_read(pid_t pid, struct mem *m)
{
	char path[64], line[256];
	FILE *f;

	memset(m, 0xff, sizeof(*m)); /* -1: unknown */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld", &m->rss) == 1 ||
		    sscanf(line, "RssAnon: %ld", &m->anon) == 1 ||
		    sscanf(line, "RssFile: %ld", &m->file) == 1 ||
		    sscanf(line, "RssShmem: %ld", &m->shmem) == 1)
			continue;
		sscanf(line, "Threads: %ld", &m->threads);
	}
	fclose(f);
}

static const ProtobufCMessage *make(unsigned i, void *arg)
{
	(void)arg;
	(void)i;
	if (!money)
		return &gb.base;
	snprintf(ref, sizeof(ref), "%s", h_ref("rss"));
	tu.partner_reference_no = ref;
	return &tu.base;
}

/* n calls as bursts of callers x inflight; the failed ones. */
static unsigned calls_run(dokubridge_client **cs, unsigned callers, unsigned inflight, unsigned n)
{
	const char *method = money ? "TopUp" : "GetBalance";
	unsigned failed = 0;

	for (unsigned done = 0; done < n;) {
		unsigned per = (n - done) / callers;
		h_burst b;

		per = per == 0 ? 1 : per > inflight ? inflight : per;
		h_burst_run(cs, callers, per, method, cust.ref, make, NULL, NULL, &b);
		failed += b.total - b.ok;
		done += b.total;
	}
	return failed;
}

static void mem_print(const char *what, unsigned calls, double secs, const struct mem *m)
{
	printf("%-8s %7u calls %7.1f s  VmRSS %6ld  RssAnon %6ld  RssFile %6ld  RssShmem %5ld KiB"
	       "  threads %ld\n",
	       what, calls, secs, m->rss, m->anon, m->file, m->shmem, m->threads);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	unsigned calls = CALLS_DEFAULT, warmup = WARMUP_DEFAULT, block = BLOCK_DEFAULT;
	unsigned callers = CALLERS_DEFAULT, inflight = INFLIGHT_DEFAULT, nblocks = 0, failed = 0;
	unsigned done = 0;
	bool journal = true;
	double seconds = SECONDS_DEFAULT, t0;
	long max_growth = -1;
	static struct mem at[BLOCKS_MAX + 1];
	static unsigned calls_at[BLOCKS_MAX + 1];
	dokubridge_client *cs[CALLERS_MAX];
	dokubridge_client *c;
	int rc = 0;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *v = argv[i + 1];

		if (strcmp(argv[i], "--method") == 0)
			money = strcmp(v, "GetBalance") != 0;
		else if (strcmp(argv[i], "--journal") == 0)
			journal = strcmp(v, "off") != 0;
		else if (strcmp(argv[i], "--calls") == 0)
			calls = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--warmup") == 0)
			warmup = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--block") == 0)
			block = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--callers") == 0)
			callers = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--inflight") == 0)
			inflight = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = strtod(v, NULL);
		else if (strcmp(argv[i], "--max-growth-kib") == 0)
			max_growth = strtol(v, NULL, 10);
	}
	if (callers == 0 || callers > CALLERS_MAX || inflight == 0 || block < callers ||
	    calls < block || calls / block > BLOCKS_MAX || seconds <= 0) {
		fprintf(stderr, "usage: bench_rss [--method TopUp|GetBalance] [--journal on|off] "
				"[--calls N] [--warmup W] [--block B>=K] [--callers K<=%d] "
				"[--inflight I] [--seconds S] [--max-growth-kib G] (N/B <= %u)\n",
			CALLERS_MAX, BLOCKS_MAX);
		return 2;
	}
	env.direct = true;
	h_setup(&env);
	h_daemon_start(&env, journal ? "journal = on\nlog_level = warning"
				     : "journal = off\nlog_level = warning", NULL);
	c = h_client(&env);
	h_customer_new(&env, c, "bench", &cust);
	dokubridge_free(c);
	tu.customer_number = cust.account_no;
	amt.value = "1.00";
	amt.currency = "IDR";
	tu.amount = &amt;
	tu.session_id = "bench";
	tu.notes = "rss";
	gb.partner_reference_no = "rss-balance";
	for (unsigned i = 0; i < callers; i++)
		cs[i] = h_client(&env);
	printf("%s, journal %s, %u warm-up + up to %u calls in blocks of %u (at most %.0f s), "
	       "%u callers x %u in flight, %s, daemon pid %d\n",
	       money ? "TopUp" : "GetBalance", journal ? "on" : "off", warmup, calls, block, seconds,
	       callers, inflight, env.sim_https, (int)env.daemon_pid);
	mem_read(env.daemon_pid, &at[0]);
	mem_print("start", 0, 0, &at[0]);
	t0 = now_s();
	failed += calls_run(cs, callers, inflight, warmup);
	if (failed > 0)
		goto out; /* the figures of failed calls would say nothing */
	mem_read(env.daemon_pid, &at[0]);
	calls_at[0] = 0;
	mem_print("warm-up", warmup, now_s() - t0, &at[0]);
	t0 = now_s();
	while (done < calls && now_s() - t0 < seconds && failed == 0) {
		failed += calls_run(cs, callers, inflight, block);
		done += block;
		nblocks++;
		calls_at[nblocks] = done;
		mem_read(env.daemon_pid, &at[nblocks]);
		mem_print("block", done, now_s() - t0, &at[nblocks]);
	}
	if (nblocks >= 2) {
		unsigned mid = nblocks / 2, n1 = calls_at[mid], n2 = done - calls_at[mid];
		long g1 = at[mid].anon - at[0].anon, g2 = at[nblocks].anon - at[mid].anon;

		printf("RssAnon growth: first half %ld KiB over %u calls (%.0f bytes/call), second "
		       "half %ld KiB over %u calls (%.0f bytes/call); VmRSS %ld -> %ld KiB\n",
		       g1, n1, (double)g1 * 1024 / n1, g2, n2, (double)g2 * 1024 / n2, at[0].rss,
		       at[nblocks].rss);
		if (max_growth >= 0 && g2 > max_growth) {
			printf("FAIL: RssAnon grew %ld KiB over the second half (at most %ld)\n", g2,
			       max_growth);
			rc = 1;
		}
	}
out:
	if (failed > 0) {
		fprintf(stderr, "%u calls failed\n", failed);
		rc = 1;
	}
	for (unsigned i = 0; i < callers; i++)
		dokubridge_free(cs[i]);
	h_teardown(&env);
	return rc;
}
