/* The load driver of the integration tests. */
#include "load.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define LD_DEFAULT_TIMEOUT_MS 30000u
#define LD_DRAIN_MS 60000u          /* bound on waiting for the last calls */

struct slot {
	ld_stats *st;
	const ld_opts *o;
	ld_call call;
	uint64_t started_us;
	bool busy;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t ld_now_ms(void)
{
	return now_us() / 1000u;
}

unsigned long ld_env(const char *name, unsigned long def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (v == NULL || v[0] == '\0')
		return def;
	n = strtoul(v, &end, 10);
	return *end == '\0' && n > 0 ? n : def;
}

long ld_raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if ((long)rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || (long)rl.rlim_max > want ? (rlim_t)want
											: rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (long)rl.rlim_cur;
}

long ld_rss_kib(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	long kib = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void add_latency(ld_stats *s, unsigned kind, uint64_t us)
{
	if (s->nlat[kind] == s->caplat[kind]) {
		s->caplat[kind] = s->caplat[kind] * 2 + 4096;
		s->lat_us[kind] = realloc(s->lat_us[kind], s->caplat[kind] * sizeof(uint32_t));
		assert_non_null(s->lat_us[kind]);
	}
	s->lat_us[kind][s->nlat[kind]++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void on_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		    ProtobufCMessage *resp)
{
	struct slot *sl = arg;
	ld_stats *s = sl->st;
	unsigned kind = sl->call.kind;
	uint64_t us = now_us() - sl->started_us;

	(void)c;
	h_record_result(res);
	dokubridge_message_free(resp);
	s->done++;
	s->by_kind[kind]++;
	if (res->code == DOKUBRIDGE_OK) {
		s->ok++;
		s->ok_by_kind[kind]++;
	}
	if ((unsigned)res->code < DOKUBRIDGE_CODE_COUNT)
		s->codes[res->code]++;
	if ((unsigned)res->outcome < 4)
		s->outcomes[res->outcome]++;
	if (res->local)
		s->local++;
	if (us / 1000u > s->max_ms[kind])
		s->max_ms[kind] = us / 1000u;
	add_latency(s, kind, us);
	if (sl->o->check != NULL)
		sl->o->check(&sl->call, res, sl->o->arg);
	sl->busy = false;
}

static void start_one(dokubridge_client *c, unsigned client, struct slot *sl, ld_stats *s)
{
	dokubridge_call_opts opts = { 0 };
	dokubridge_result res;

	memset(&sl->call, 0, sizeof(sl->call));
	sl->o->make(client, s->started, &sl->call, sl->o->arg);
	assert_true(sl->call.kind < LD_KINDS);
	opts.timeout_ms = sl->call.timeout_ms != 0 ? sl->call.timeout_ms : LD_DEFAULT_TIMEOUT_MS;
	opts.customer_ref = sl->call.customer;
	sl->started_us = now_us();
	if (dokubridge_start(c, &opts, sl->call.method, sl->call.req, on_done, sl, NULL, &res) != 0) {
		if (s->start_failures++ == 0)
			fprintf(stderr, "load: start %s: %s: %s\n", sl->call.method,
				dokubridge_code_name(res.code), res.message);
		return;
	}
	sl->busy = true;
	s->started++;
}

void ld_run(dokubridge_client **cs, unsigned n, const ld_opts *o, ld_stats *out)
{
	unsigned depth = o->depth > 0 ? o->depth : 1;
	struct slot *slots = calloc((size_t)n * depth, sizeof(*slots));
	struct pollfd *pfd = calloc(n, sizeof(*pfd));
	uint64_t t0 = ld_now_ms(), next_tick = t0 + o->tick_ms, stop_at = t0 + o->duration_ms;
	uint64_t drain_end = 0;
	bool running = true;

	assert_non_null(slots);
	assert_non_null(pfd);
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < (size_t)n * depth; i++) {
		slots[i].st = out;
		slots[i].o = o;
	}
	for (;;) {
		uint64_t now = ld_now_ms();
		bool busy = false;
		int timeout = 50;

		if (running && (now >= stop_at || (o->max_calls != 0 && out->started >= o->max_calls))) {
			running = false;
			drain_end = now + LD_DRAIN_MS;
		}
		if (running)
			for (unsigned i = 0; i < n; i++)
				for (unsigned k = 0; k < depth; k++) {
					struct slot *sl = &slots[(size_t)i * depth + k];

					if (!sl->busy && dokubridge_connected(cs[i]) &&
					    (o->max_calls == 0 || out->started < o->max_calls))
						start_one(cs[i], i, sl, out);
				}
		for (unsigned i = 0; i < n; i++) {
			int t = dokubridge_timeout(cs[i]);

			pfd[i].fd = dokubridge_in_flight(cs[i]) > 0 ? dokubridge_fd(cs[i]) : -1;
			pfd[i].events = h_poll_events(cs[i]);
			pfd[i].revents = 0;
			if (dokubridge_in_flight(cs[i]) > 0) {
				busy = true;
				if (t >= 0 && t < timeout)
					timeout = t;
			}
		}
		if (!running && !busy)
			break;
		if (!running)
			assert_true(ld_now_ms() < drain_end);
		if (o->tick != NULL && o->tick_ms != 0 && now >= next_tick) {
			o->tick(now - t0, o->arg);
			next_tick = now + o->tick_ms;
		}
		if (poll(pfd, n, timeout) < 0)
			assert_int_equal(errno, EINTR);
		for (unsigned i = 0; i < n; i++)
			if (pfd[i].fd >= 0)
				(void)dokubridge_process(cs[i], h_client_events(pfd[i].revents));
	}
	out->elapsed_ms = ld_now_ms() - t0;
	free(pfd);
	free(slots);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t ld_quantile(ld_stats *s, unsigned kind, double q)
{
	uint64_t n = s->nlat[kind], i;

	if (n == 0)
		return 0;
	qsort(s->lat_us[kind], n, sizeof(uint32_t), cmp_u32);
	i = (uint64_t)(q * (double)(n - 1));
	return s->lat_us[kind][i];
}

void ld_stats_free(ld_stats *s)
{
	for (unsigned k = 0; k < LD_KINDS; k++) {
		free(s->lat_us[k]);
		s->lat_us[k] = NULL;
		s->nlat[k] = s->caplat[k] = 0;
	}
}
