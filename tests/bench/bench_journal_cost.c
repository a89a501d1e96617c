/* The journal's cost: money-moving calls per second (TopUp, every call a new
 * partner reference) through doku-bridged with [bridge] journal = on and
 * journal = off, against doku-snapsim over TLS (no tap), same daemon, same
 * customer (its session survives the restart between the two runs).
 *
 *   bench_journal_cost [--calls N] [--callers K] [--rounds R] [--inflight W]
 *                      [--system-cas 1] [--max-read-per-call BYTES]
 *
 * Each round measures off, then on (R rounds, alternating, to even out the
 * noise of a shared machine) and prints calls/s, the latency of the calls
 * (p50, p90, slowest) and the CPU per call of the daemon, the simulator and
 * this process. By default every call is started at once (calls / callers on
 * each connection), so the slowest call waited for nearly the whole run: its
 * latency is the run's length, not a slow exchange. --inflight W keeps at
 * most W calls in flight per caller (bursts of callers x W calls), which
 * measures a call's own latency. --system-cas 1 appends the system's CA
 * bundle (/etc/ssl/certs/ca-certificates.crt) to the daemon's ca_file, so
 * that the daemon verifies against a CA file the size of a production one
 * (ca_file unset: the system bundle) instead of the one test CA.
 * --max-read-per-call BYTES fails (exit 1) when the daemon read more than
 * that per call (/proc/PID/io rchar): with --system-cas, a daemon that parses
 * its CA file for every new connection reads the whole file per call. */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
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
static uint64_t *lat_us; /* latency of each call of a run */
static unsigned nlat;
static uint64_t burst_t0;
static double read_per_call; /* bytes the daemon read per call, last run */

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

static void on_progress(unsigned done, void *arg)
{
	(void)done;
	(void)arg;
	lat_us[nlat++] = now_us() - burst_t0;
}

/* Bytes pid has read (rchar of /proc/PID/io: files and sockets alike), or 0. */
static uint64_t rchar(pid_t pid)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "rchar: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static double run(bool journal, unsigned calls, unsigned callers, unsigned inflight,
		  uint64_t *max_ms)
{
	dokubridge_client *cs[CALLERS_MAX];
	unsigned per = calls / callers, ok = 0, total = 0;
	h_burst b;
	bu_cpu d0, d1, s0, s1;
	uint64_t t0, rd0, rd1;
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
	nlat = 0;
	*max_ms = 0;
	bu_cpu_read(env.daemon_pid, &d0);
	bu_cpu_read(env.sim_pid, &s0);
	rd0 = rchar(env.daemon_pid);
	t0 = now_us();
	for (unsigned done = 0; done < per; done += inflight) {
		unsigned k = per - done < inflight ? per - done : inflight;

		burst_t0 = now_us();
		h_burst_run(cs, callers, k, "TopUp", cust.ref, make, on_progress, NULL, &b);
		ok += b.ok;
		total += b.total;
		if (b.max_ms > *max_ms)
			*max_ms = b.max_ms;
	}
	secs = (double)(now_us() - t0) / 1e6;
	bu_cpu_read(env.daemon_pid, &d1);
	bu_cpu_read(env.sim_pid, &s1);
	rd1 = rchar(env.daemon_pid);
	for (unsigned i = 0; i < callers; i++)
		dokubridge_free(cs[i]);
	if (ok != total)
		fprintf(stderr, "%u of %u calls failed\n", total - ok, total);
	read_per_call = (double)(rd1 - rd0) / total;
	qsort(lat_us, nlat, sizeof(*lat_us), cmp_u64);
	printf("  %u calls in %.2f s; latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f; "
	       "CPU us/call daemon %.0f simulator %.0f bench %.0f; daemon read %.0f bytes/call\n",
	       total, secs, (double)lat_us[nlat / 2] / 1e3, (double)lat_us[nlat * 9 / 10] / 1e3,
	       (double)lat_us[nlat * 99 / 100] / 1e3, (double)lat_us[nlat - 1] / 1e3,
	       (double)(d1.other_us - d0.other_us) / total,
	       (double)(s1.other_us - s0.other_us) / total,
	       (double)(d1.self_us - d0.self_us) / total, read_per_call);
	return (double)total / secs;
}

int main(int argc, char **argv)
{
	unsigned calls = CALLS_DEFAULT, callers = CALLERS_DEFAULT, rounds = ROUNDS_DEFAULT;
	unsigned inflight = 0;
	bool system_cas = false;
	double max_read = 0;
	int rc = 0;
	dokubridge_client *c;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--calls") == 0)
			calls = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--callers") == 0)
			callers = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--inflight") == 0)
			inflight = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--system-cas") == 0)
			system_cas = strcmp(argv[i + 1], "0") != 0;
		else if (strcmp(argv[i], "--max-read-per-call") == 0)
			max_read = strtod(argv[i + 1], NULL);
	}
	if (callers == 0 || callers > CALLERS_MAX || calls < callers || rounds == 0) {
		fprintf(stderr, "usage: bench_journal_cost [--calls N] [--callers K<=%d] [--rounds R] [--inflight W]\n",
			CALLERS_MAX);
		return 2;
	}
	if (inflight == 0 || inflight > calls / callers)
		inflight = calls / callers;
	lat_us = calloc(calls, sizeof(*lat_us));
	if (lat_us == NULL)
		return 1;
	env.direct = true;
	if (system_cas && access("/etc/ssl/certs/ca-certificates.crt", R_OK) != 0) {
		printf("SKIP: no system CA bundle\n");
		return 77;
	}
	h_setup(&env);
	if (system_cas) {
		char path[PATH_MAX + 16], buf[65536];
		FILE *in = fopen("/etc/ssl/certs/ca-certificates.crt", "r"), *out;
		size_t n;

		snprintf(path, sizeof(path), "%s/creds/ca.pem", env.dir);
		out = fopen(path, "a");
		if (in == NULL || out == NULL) {
			fprintf(stderr, "--system-cas: cannot append the system bundle to %s\n", path);
			return 1;
		}
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, out);
		fclose(in);
		fclose(out);
	}
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
	printf("TopUp, %u calls per run, %u callers (one connection each), at most %u in flight "
	       "each, %s%s\n", calls, callers, inflight, env.sim_https,
	       system_cas ? ", ca_file with the system's CAs" : "");
	for (unsigned r = 0; r < rounds; r++)
		for (int on = 0; on < 2; on++) {
			uint64_t max_ms;
			double rate = run(on != 0, calls, callers, inflight, &max_ms);

			printf("round %u journal=%-3s %8.0f calls/s  slowest %" PRIu64 " ms\n", r + 1,
			       on ? "on" : "off", rate, max_ms);
			if (max_read > 0 && read_per_call > max_read) {
				printf("FAIL: the daemon read %.0f bytes per call (at most %.0f): does "
				       "it parse its CA file for every connection?\n",
				       read_per_call, max_read);
				rc = 1;
			}
			fflush(stdout);
		}
	h_teardown(&env);
	free(lat_us);
	return rc;
}
