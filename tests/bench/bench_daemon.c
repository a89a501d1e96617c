/* bench_daemon: the figures of doku-bridged's issue, measured over its real
 * socket with libdokubridge:
 *   - RSS of the daemon idle and with 1,000 open connections;
 *   - Health: calls per second and p50/p99 latency over 1 connection and over 64;
 *   - GetBalance through doku-snapsim (real TLS, no tap): calls per second and
 *     p50/p99 with 64 concurrent callers.
 * Usage: bench_daemon [--calls N] [--balance-calls N]. ctest runs a short smoke. */
#include "harness.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define IDLE_CONNS 1000

static unsigned health_calls = 200000;
static unsigned balance_calls = 20000;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* A closed loop: each client keeps window calls in flight until total are done. */
struct loop {
	dokubridge_client **cs;
	unsigned n, window;
	unsigned total, started, done, failed;
	const char *method, *customer;
	const ProtobufCMessage *req;
	uint64_t *lat;          /* microseconds, one per call */
};

struct slot {
	struct loop *l;
	unsigned client;
	uint64_t t0;
};

static void start_one(struct loop *l, struct slot *s);

static void on_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		    ProtobufCMessage *resp)
{
	struct slot *s = arg;
	struct loop *l = s->l;

	(void)c;
	dokubridge_message_free(resp);
	if (res->code != DOKUBRIDGE_OK && l->failed++ == 0)
		fprintf(stderr, "bench: %s: %s\n", dokubridge_code_name(res->code), res->message);
	l->lat[l->done++] = now_us() - s->t0;
	if (l->started < l->total)
		start_one(l, s);
	else
		free(s);
}

static void start_one(struct loop *l, struct slot *s)
{
	dokubridge_call_opts opts = { .timeout_ms = 30000, .customer_ref = l->customer };
	dokubridge_result res;

	s->t0 = now_us();
	l->started++;
	assert_int_equal(dokubridge_start(l->cs[s->client], &opts, l->method, l->req, on_done, s, NULL,
					  &res), 0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void run(const char *label, dokubridge_client **cs, unsigned n, unsigned window,
		unsigned total, const char *method, const char *customer, const ProtobufCMessage *req)
{
	struct loop l = { cs, n, window, total, 0, 0, 0, method, customer, req, NULL };
	struct pollfd *pfd = calloc(n, sizeof(*pfd));
	uint64_t t0, dt;

	l.lat = calloc(total, sizeof(*l.lat));
	assert_non_null(l.lat);
	assert_non_null(pfd);
	t0 = now_us();
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = 0; k < window && l.started < total; k++) {
			struct slot *s = calloc(1, sizeof(*s));

			assert_non_null(s);
			s->l = &l;
			s->client = i;
			start_one(&l, s);
		}
	while (l.done < total) {
		for (unsigned i = 0; i < n; i++) {
			unsigned want = dokubridge_interest(cs[i]);

			pfd[i].fd = dokubridge_fd(cs[i]);
			pfd[i].events = (short)((want & DOKUBRIDGE_WANT_READ ? POLLIN : 0) |
						(want & DOKUBRIDGE_WANT_WRITE ? POLLOUT : 0));
			pfd[i].revents = 0;
		}
		assert_true(poll(pfd, n, 30000) > 0);
		for (unsigned i = 0; i < n; i++) {
			unsigned ev = 0;

			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				ev |= DOKUBRIDGE_WANT_READ;
			if (pfd[i].revents & POLLOUT)
				ev |= DOKUBRIDGE_WANT_WRITE;
			if (ev != 0)
				assert_int_equal(dokubridge_process(cs[i], ev), 0);
		}
	}
	dt = now_us() - t0;
	qsort(l.lat, total, sizeof(*l.lat), cmp_u64);
	printf("%-44s %8u calls %9.0f calls/s  p50 %7.3f ms  p99 %7.3f ms  failed %u\n", label, total,
	       (double)total * 1e6 / (double)dt, (double)l.lat[total / 2] / 1000.0,
	       (double)l.lat[(size_t)total * 99 / 100] / 1000.0, l.failed);
	assert_int_equal(l.failed, 0);
	free(l.lat);
	free(pfd);
}

static void bench(void **state)
{
	Doku__Wallet__V1__HealthRequest hr = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	static dokubridge_client *cs[IDLE_CONNS];
	dokubridge_result res;
	struct rlimit rl;
	h_customer cust;
	h_env env;
	long idle, busy;

	(void)state;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	memset(&env, 0, sizeof(env));
	env.direct = true; /* straight to the simulator: no recording tap in the path */
	h_setup(&env);
	h_daemon_start(&env, "max_connections = 2048\nupstream_connections = 64\n", NULL);
	idle = rss_kib(env.daemon_pid);

	for (unsigned i = 0; i < IDLE_CONNS; i++) {
		cs[i] = h_client(&env);
		assert_int_equal(dokubridge_health(cs[i], NULL, &hr, NULL, &res), 0);
	}
	busy = rss_kib(env.daemon_pid);
	printf("RSS idle %ld KiB; with %u open connections (one Health each) %ld KiB (%.1f KiB each)\n",
	       idle, IDLE_CONNS, busy, (double)(busy - idle) / IDLE_CONNS);
	for (unsigned i = 64; i < IDLE_CONNS; i++)
		dokubridge_free(cs[i]);

	run("Health, 1 connection, 1 in flight", cs, 1, 1, health_calls / 10, "Health", NULL, &hr.base);
	run("Health, 1 connection, 32 in flight", cs, 1, 32, health_calls, "Health", NULL, &hr.base);
	run("Health, 64 connections, 1 in flight each", cs, 64, 1, health_calls, "Health", NULL, &hr.base);
	run("Health, 64 connections, 8 in flight each", cs, 64, 8, health_calls, "Health", NULL, &hr.base);

	h_customer_new(&env, cs[0], "bench", &cust);
	gb.partner_reference_no = "bench-balance";
	run("GetBalance via snapsim, 64 callers", cs, 64, 1, balance_calls, "GetBalance", "bench",
	    &gb.base);
	printf("RSS after the runs %ld KiB\n", rss_kib(env.daemon_pid));
	for (unsigned i = 0; i < 64; i++)
		dokubridge_free(cs[i]);
	h_teardown(&env);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(bench) };

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--calls") == 0)
			health_calls = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--balance-calls") == 0)
			balance_calls = (unsigned)strtoul(argv[i + 1], NULL, 10);
	}
	if (health_calls < 100)
		health_calls = 100;
	if (balance_calls < 64)
		balance_calls = 64;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
