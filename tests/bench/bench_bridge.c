/* bench_bridge: the figures of issue 8, in one run, each beside its floor.
 *
 *  1. The IPC hop: Health over libdokubridge's async API (one connection
 *     sequential, one connection with 64 calls in flight, 64 connections
 *     with one each): calls/s, p50/p99/p99.9, CPU per call (this process's
 *     getrusage + the daemon's /proc/PID/stat).
 *  5. Its floor: a bare 64-byte ping-pong over Unix sockets with a forked
 *     echo process, in the same three shapes. Both pinned (both processes on
 *     CPU 0) and unpinned.
 *  2. End to end: GetBalance through the daemon to doku-snapsim over TLS,
 *     beside the same signed request sent by this process with libcurl over
 *     kept-alive connections (bu_direct_run), for 1 and 64 callers.
 *  3. Token economy: B2B token requests the simulator saw from the daemon
 *     over its whole life, the 64-caller GetBalance run included.
 *  4. Memory: the daemon's RSS idle, with 1,000 and with N open connections.
 *
 *   bench_bridge [--seconds S] [--calls N] [--e2e-calls N] [--e2e-seconds S]
 *                [--conns N] [--markdown FILE] [--only ipc|e2e] [--smoke]
 *
 * Every run stops at its count or its time, whichever comes first. Prints
 * the tables (Markdown) on stdout, and into FILE with --markdown.
 * tests/bench/run.sh builds a release and writes docs/benchmarks.md. */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#define PING_LEN 64             /* bytes of one bare ping (and pong) */
#define MANY_CONNS 64           /* connections of the "64" shapes */
#define PIPELINE 64             /* calls in flight on one connection */
#define SOME_CONNS 1000         /* the first memory figure */
#define MAX_OPEN_CONNS 20000    /* cap of --conns */
#define EPOLL_BATCH 128
#define WAIT_MS 30000           /* bound of every wait for an answer */
#define WARM_FRACTION 10        /* the first calls/10 (at most WARM_MAX) are not measured */
#define WARM_MAX 20000u
#define ROWS_MAX 32
#define TEXT_MAX 160

static double opt_seconds = 3.0;
static uint64_t opt_calls = 5000000;
static uint64_t opt_e2e_calls = 100000;
static double opt_e2e_seconds = 60.0;
static unsigned opt_conns = 10000;
static const char *opt_markdown;
static const char *opt_only;  /* "ipc" or "e2e": one part alone (for profiling) */

/* ---- the table ------------------------------------------------------------------------ */

struct row {
	char what[TEXT_MAX];
	bu_result r;
	const bu_result *floor; /* the matching floor, or NULL */
};

static struct row rows[ROWS_MAX];
static unsigned nrows;

static struct row *row_add(const char *what, const bu_result *r, const bu_result *floor)
{
	struct row *w = &rows[nrows < ROWS_MAX - 1 ? nrows++ : nrows];

	snprintf(w->what, sizeof(w->what), "%s", what);
	w->r = *r;
	w->floor = floor;
	fprintf(stderr, "bench: %-52s %9.0f calls/s p50 %8.1f us p99 %8.1f us CPU %6.2f us/call\n",
		what, r->rate, r->p50_us, r->p99_us, r->cpu_us_per_call);
	return w;
}

struct goal {
	char what[TEXT_MAX], target[64], measured[TEXT_MAX];
	bool met;
};

static struct goal goals[ROWS_MAX];
static unsigned ngoals;

__attribute__((format(printf, 4, 5)))
static void goal_add(const char *what, const char *target, bool met, const char *fmt, ...)
{
	struct goal *g = &goals[ngoals < ROWS_MAX - 1 ? ngoals++ : ngoals];
	va_list ap;

	snprintf(g->what, sizeof(g->what), "%s", what);
	snprintf(g->target, sizeof(g->target), "%s", target);
	g->met = met;
	va_start(ap, fmt);
	vsnprintf(g->measured, sizeof(g->measured), fmt, ap);
	va_end(ap);
}

static void print_tables(FILE *f, long rss_idle, long rss_some, long rss_many, unsigned many)
{
	fprintf(f, "| run | calls | calls/s | p50 us | p99 us | p99.9 us | CPU us/call | "
		   "vs floor: calls/s | vs floor: p50 |\n");
	fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (unsigned i = 0; i < nrows; i++) {
		const struct row *w = &rows[i];
		char cpu[32] = "-", rr[32] = "-", pr[32] = "-";

		if (w->r.cpu_us_per_call >= 0)
			snprintf(cpu, sizeof(cpu), "%.2f", w->r.cpu_us_per_call);
		if (w->floor != NULL && w->floor->rate > 0 && w->floor->p50_us > 0) {
			snprintf(rr, sizeof(rr), "%.2fx", w->r.rate / w->floor->rate);
			snprintf(pr, sizeof(pr), "%.2fx", w->r.p50_us / w->floor->p50_us);
		}
		fprintf(f, "| %s | %llu | %.0f | %.1f | %.1f | %.1f | %s | %s | %s |\n", w->what,
			(unsigned long long)w->r.calls, w->r.rate, w->r.p50_us, w->r.p99_us,
			w->r.p999_us, cpu, rr, pr);
	}
	fprintf(f, "\nDaemon RSS: idle %ld KiB; %u connections %ld KiB; %u connections %ld KiB.\n\n",
		rss_idle, many < SOME_CONNS ? many : SOME_CONNS, rss_some, many, rss_many);
	fprintf(f, "| goal | target | measured | met |\n|---|---|---|---|\n");
	for (unsigned i = 0; i < ngoals; i++)
		fprintf(f, "| %s | %s | %s | %s |\n", goals[i].what, goals[i].target,
			goals[i].measured, goals[i].met ? "yes" : "**no**");
}

/* ---- the measured window of a run ------------------------------------------------------ */

/* A run's bookkeeping common to both drivers: issue until the count or the
 * time is reached; the first `warm` answers are not measured. */
struct window {
	uint64_t calls, warm;       /* total to issue (warm-up included) */
	uint64_t issued, answered, failed;
	uint64_t t0, end;
	pid_t server;               /* whose CPU counts with ours */
	bu_cpu cpu0;
	bu_samples lat;
	double seconds;
};

static void window_init(struct window *w, uint64_t calls, double seconds, pid_t server)
{
	memset(w, 0, sizeof(*w));
	w->warm = calls / WARM_FRACTION < WARM_MAX ? calls / WARM_FRACTION : WARM_MAX;
	w->calls = calls + w->warm;
	w->seconds = seconds;
	w->server = server;
	assert_int_equal(bu_samples_init(&w->lat, calls), 0);
	w->t0 = bu_now_ns();
	w->end = w->t0 + (uint64_t)(seconds * 1e9);
}

static bool window_more(const struct window *w)
{
	return w->issued < w->calls && (w->answered < w->warm || bu_now_ns() < w->end);
}

static void window_answer(struct window *w, uint64_t t_start, bool ok)
{
	if (w->answered >= w->warm) {
		bu_sample(&w->lat, bu_now_ns() - t_start);
		if (!ok)
			w->failed++;
	}
	if (++w->answered == w->warm) {
		w->t0 = bu_now_ns();
		w->end = w->t0 + (uint64_t)(w->seconds * 1e9);
		bu_cpu_read(w->server, &w->cpu0);
	}
}

static void window_end(struct window *w, bu_result *r)
{
	bu_cpu cpu1;

	bu_cpu_read(w->server, &cpu1);
	bu_result_fill(r, &w->lat, w->answered - w->warm, w->failed, w->t0, bu_now_ns(), &w->cpu0,
		       &cpu1);
	bu_samples_free(&w->lat);
}

/* ---- the floor: bare ping-pong -------------------------------------------------------- */

/* The echo process: send back every byte read, until every peer closed. */
static void echo_serve(const int *fds, unsigned n)
{
	static uint8_t buf[64 * 1024];
	struct epoll_event evs[EPOLL_BATCH];
	int ep = epoll_create1(0);
	unsigned open = n;

	if (ep < 0)
		_exit(1);
	for (unsigned i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0)
			_exit(1);
	}
	while (open > 0) {
		int k = epoll_wait(ep, evs, EPOLL_BATCH, WAIT_MS);

		if (k <= 0)
			_exit(k == 0 ? 2 : 1);
		for (int i = 0; i < k; i++) {
			ssize_t got = read(evs[i].data.fd, buf, sizeof(buf));

			if (got <= 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, NULL);
				close(evs[i].data.fd);
				open--;
				continue;
			}
			for (ssize_t off = 0; off < got;) {
				ssize_t w = write(evs[i].data.fd, buf + off, (size_t)(got - off));

				if (w <= 0)
					_exit(1);
				off += w;
			}
		}
	}
	_exit(0);
}

struct pconn {
	int fd;
	unsigned rx;                 /* bytes of the current pong received */
	unsigned head, inflight;
	uint64_t t0[PIPELINE];       /* ring of the start times of pings in flight */
};

static void ping_send(struct window *w, struct pconn *p, unsigned k)
{
	static const uint8_t msg[PING_LEN * PIPELINE];
	uint64_t now = bu_now_ns();
	size_t off = 0, len = (size_t)k * PING_LEN;

	for (unsigned i = 0; i < k; i++)
		p->t0[(p->head + p->inflight++) % PIPELINE] = now;
	w->issued += k;
	while (off < len) {
		ssize_t n = write(p->fd, msg + off, len - off);

		assert_true(n > 0);
		off += (size_t)n;
	}
}

static void floor_run(const char *what, unsigned nconns, unsigned window, bool pin,
		      const bu_result **out)
{
	static struct pconn ps[MANY_CONNS];
	int theirs[MANY_CONNS], ep;
	struct epoll_event evs[EPOLL_BATCH];
	struct window w;
	bu_result r;
	pid_t pid;
	int status;

	assert_true(nconns <= MANY_CONNS && window <= PIPELINE);
	for (unsigned i = 0; i < nconns; i++) {
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		memset(&ps[i], 0, sizeof(ps[i]));
		ps[i].fd = sv[0];
		theirs[i] = sv[1];
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (unsigned i = 0; i < nconns; i++)
			close(ps[i].fd);
		echo_serve(theirs, nconns);
	}
	for (unsigned i = 0; i < nconns; i++)
		close(theirs[i]);
	if (pin) {
		assert_int_equal(bu_pin(pid, 0), 0);
		assert_int_equal(bu_pin(0, 0), 0);
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(ep >= 0);
	window_init(&w, opt_calls, opt_seconds, pid);
	for (unsigned i = 0; i < nconns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ps[i] };

		assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, ps[i].fd, &ev), 0);
		ping_send(&w, &ps[i], window);
	}
	while (w.answered < w.issued) {
		int k = epoll_wait(ep, evs, EPOLL_BATCH, WAIT_MS);

		assert_true(k > 0);
		for (int i = 0; i < k; i++) {
			struct pconn *p = evs[i].data.ptr;
			uint8_t buf[PING_LEN * PIPELINE];
			ssize_t n = read(p->fd, buf, sizeof(buf));
			unsigned again = 0;

			assert_true(n > 0);
			for (p->rx += (unsigned)n; p->rx >= PING_LEN; p->rx -= PING_LEN) {
				window_answer(&w, p->t0[p->head], true);
				p->head = (p->head + 1) % PIPELINE;
				p->inflight--;
				if (window_more(&w) && w.issued + again < w.calls)
					again++;
			}
			if (again > 0)
				ping_send(&w, p, again); /* one write for every pong of this read */
		}
	}
	window_end(&w, &r);
	for (unsigned i = 0; i < nconns; i++)
		close(ps[i].fd);
	close(ep);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (pin)
		assert_int_equal(bu_pin(0, -1), 0);
	*out = &row_add(what, &r, NULL)->r;
}

/* ---- calls over libdokubridge ----------------------------------------------------------- */

struct driver {
	struct window w;
	dokubridge_client **cs;
	unsigned n;
	unsigned *interest;          /* what each client's fd is registered for */
	int ep;
	const char *method, *customer;
	const ProtobufCMessage *req;
};

struct slot {
	struct driver *d;
	unsigned client;
	uint64_t t0;
};

static void start_one(struct driver *d, struct slot *s);

static void on_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		    ProtobufCMessage *resp)
{
	struct slot *s = arg;
	struct driver *d = s->d;
	bool ok = res->code == DOKUBRIDGE_OK;

	(void)c;
	dokubridge_message_free(resp);
	if (!ok && d->w.failed == 0)
		fprintf(stderr, "bench: %s: %s: %s\n", d->method, dokubridge_code_name(res->code),
			res->message);
	window_answer(&d->w, s->t0, ok);
	if (window_more(&d->w))
		start_one(d, s);
	else
		free(s);
}

static void start_one(struct driver *d, struct slot *s)
{
	dokubridge_call_opts opts = { .timeout_ms = WAIT_MS, .customer_ref = d->customer };
	dokubridge_result res;

	s->t0 = bu_now_ns();
	d->w.issued++;
	assert_int_equal(dokubridge_start(d->cs[s->client], &opts, d->method, d->req, on_done, s,
					  NULL, &res), 0);
}

/* Register client i's fd for what it wants now (only when that changed). */
static void rearm(struct driver *d, unsigned i, int op)
{
	unsigned want = dokubridge_interest(d->cs[i]);
	struct epoll_event ev = { .data.u32 = i };

	if (op == EPOLL_CTL_MOD && want == d->interest[i])
		return;
	ev.events = (want & DOKUBRIDGE_WANT_READ ? EPOLLIN : 0u) |
		    (want & DOKUBRIDGE_WANT_WRITE ? EPOLLOUT : 0u);
	assert_int_equal(epoll_ctl(d->ep, op, dokubridge_fd(d->cs[i]), &ev), 0);
	d->interest[i] = want;
}

static void calls_run(const char *what, dokubridge_client **cs, unsigned n, unsigned window,
		      uint64_t calls, double seconds, pid_t daemon, const char *method,
		      const char *customer, const ProtobufCMessage *req, const bu_result *floor,
		      bu_result *out)
{
	struct driver d = { .cs = cs, .n = n, .method = method, .customer = customer, .req = req };
	struct epoll_event evs[EPOLL_BATCH];
	bu_result r;

	d.interest = calloc(n, sizeof(*d.interest));
	assert_non_null(d.interest);
	d.ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(d.ep >= 0);
	window_init(&d.w, calls, seconds, daemon);
	for (unsigned i = 0; i < n; i++) {
		for (unsigned k = 0; k < window && d.w.issued < d.w.calls; k++) {
			struct slot *s = calloc(1, sizeof(*s));

			assert_non_null(s);
			s->d = &d;
			s->client = i;
			start_one(&d, s);
		}
		rearm(&d, i, EPOLL_CTL_ADD);
	}
	while (d.w.answered < d.w.issued) {
		int k = epoll_wait(d.ep, evs, EPOLL_BATCH, WAIT_MS);

		assert_true(k > 0);
		for (int j = 0; j < k; j++) {
			unsigned i = evs[j].data.u32, ev = 0;

			if (evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				ev |= DOKUBRIDGE_WANT_READ;
			if (evs[j].events & EPOLLOUT)
				ev |= DOKUBRIDGE_WANT_WRITE;
			assert_int_equal(dokubridge_process(cs[i], ev), 0);
			rearm(&d, i, EPOLL_CTL_MOD);
		}
	}
	window_end(&d.w, &r);
	for (unsigned i = 0; i < n; i++)
		epoll_ctl(d.ep, EPOLL_CTL_DEL, dokubridge_fd(cs[i]), NULL);
	close(d.ep);
	free(d.interest);
	assert_int_equal(r.failed, 0);
	row_add(what, &r, floor);
	if (out != NULL)
		*out = r;
}

/* ---- the whole run ---------------------------------------------------------------------- */

struct shape {
	const char *name;
	unsigned conns, window;
};

static const struct shape shapes[] = {
	{ "1 connection, sequential", 1, 1 },
	{ "1 connection, 64 in flight", 1, PIPELINE },
	{ "64 connections, 1 in flight each", MANY_CONNS, 1 },
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

static void bench(void **state)
{
	Doku__Wallet__V1__HealthRequest hr = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	const bu_result *floors[2][NSHAPES];
	bu_result health[2][NSHAPES], direct1, direct64, via1, via64;
	dokubridge_client **cs;
	static simtest_client sc;
	simtest_proc sp;
	simtest_customer scu;
	h_customer cust;
	dokubridge_result res;
	struct rlimit rl;
	char extra[128], what[TEXT_MAX];
	long rss_idle, rss_some = -1, rss_many, b2b0, b2b1, b2b2c0, b2b2c1;
	h_env env;
	FILE *md;

	(void)state;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (opt_conns + 64 > rl.rlim_cur)
		opt_conns = (unsigned)rl.rlim_cur - 64;
	cs = calloc(opt_conns, sizeof(*cs));
	assert_non_null(cs);
	memset(&env, 0, sizeof(env));
	env.direct = true; /* straight to the simulator: no recording tap in the path */
	h_setup(&env);
	snprintf(extra, sizeof(extra), "max_connections = %u\nupstream_connections = 64\n",
		 opt_conns + 64);
	h_daemon_start(&env, extra, NULL);

	/* 4. memory */
	rss_idle = bu_rss_kib(env.daemon_pid);
	for (unsigned i = 0; i < opt_conns; i++) {
		cs[i] = h_client(&env);
		assert_int_equal(dokubridge_health(cs[i], NULL, &hr, NULL, &res), 0);
		if (i + 1 == SOME_CONNS || (i + 1 == opt_conns && opt_conns < SOME_CONNS))
			rss_some = bu_rss_kib(env.daemon_pid);
	}
	rss_many = bu_rss_kib(env.daemon_pid);
	for (unsigned i = MANY_CONNS; i < opt_conns; i++)
		dokubridge_free(cs[i]);

	/* 5 and 1: the floor and Health, unpinned then pinned */
	for (int pin = 0; pin < 2 && (opt_only == NULL || strcmp(opt_only, "ipc") == 0); pin++) {
		for (unsigned k = 0; k < NSHAPES; k++) {
			snprintf(what, sizeof(what), "bare ping-pong, %s%s", shapes[k].name,
				 pin ? ", pinned" : "");
			floor_run(what, shapes[k].conns, shapes[k].window, pin != 0, &floors[pin][k]);
		}
		if (pin) {
			assert_int_equal(bu_pin(env.daemon_pid, 0), 0);
			assert_int_equal(bu_pin(0, 0), 0);
		}
		for (unsigned k = 0; k < NSHAPES; k++) {
			snprintf(what, sizeof(what), "Health, %s%s", shapes[k].name, pin ? ", pinned" : "");
			calls_run(what, cs, shapes[k].conns, shapes[k].window, opt_calls, opt_seconds,
				  env.daemon_pid, "Health", NULL, &hr.base, floors[pin][k],
				  &health[pin][k]);
		}
		if (pin) {
			assert_int_equal(bu_pin(env.daemon_pid, -1), 0);
			assert_int_equal(bu_pin(0, -1), 0);
		}
	}

	if (opt_only != NULL && strcmp(opt_only, "e2e") != 0)
		goto out;
	/* 2. end to end: first the direct floor with its own B2B token (taking
	 * one later would knock out the daemon's), then through the daemon */
	memset(&sp, 0, sizeof(sp));
	snprintf(sp.https, sizeof(sp.https), "%s", env.sim_https);
	snprintf(sp.control, sizeof(sp.control), "%s", env.sim_control);
	assert_true(strlen(env.dir) + sizeof("/creds") <= sizeof(sp.creds));
	memcpy(sp.creds, env.dir, strlen(env.dir));
	memcpy(sp.creds + strlen(env.dir), "/creds", sizeof("/creds"));
	assert_int_equal(simtest_client_init(&sc, &sp), 0);
	assert_int_equal(simtest_open_customer(&sc, &sp, &scu), 0);
	assert_int_equal(bu_direct_run(&sc, 1, opt_e2e_calls / 10, opt_e2e_seconds / 4, &direct1), 0);
	assert_int_equal(direct1.failed, 0);
	row_add("GetBalance direct (libcurl in-process), 1 caller", &direct1, NULL);
	assert_int_equal(bu_direct_run(&sc, MANY_CONNS, opt_e2e_calls, opt_e2e_seconds, &direct64),
			 0);
	assert_int_equal(direct64.failed, 0);
	row_add("GetBalance direct (libcurl in-process), 64 callers", &direct64, NULL);
	simtest_client_free(&sc);

	b2b0 = h_counter(&env, "byEndpoint", P_TOKEN_B2B);
	b2b2c0 = h_counter(&env, "byEndpoint", P_TOKEN_B2B2C);
	h_customer_new(&env, cs[0], "bench", &cust);
	gb.partner_reference_no = "bench-balance";
	calls_run("GetBalance via the daemon, 1 caller", cs, 1, 1, opt_e2e_calls / 10,
		  opt_e2e_seconds / 4, env.daemon_pid, "GetBalance", "bench", &gb.base, &direct1,
		  &via1);
	calls_run("GetBalance via the daemon, 64 callers", cs, MANY_CONNS, 1, opt_e2e_calls,
		  opt_e2e_seconds, env.daemon_pid, "GetBalance", "bench", &gb.base, &direct64, &via64);
	b2b1 = h_counter(&env, "byEndpoint", P_TOKEN_B2B);
	b2b2c1 = h_counter(&env, "byEndpoint", P_TOKEN_B2B2C);

	if (opt_only != NULL)
		goto out;
	/* the goals */
	{
		const bu_result *h64 = &health[0][2], *p64 = &health[0][1];
		const bu_result *best = h64->rate > p64->rate ? h64 : p64;
		double o1 = via1.p50_us / direct1.p50_us - 1, o64 = via64.p50_us / direct64.p50_us - 1;
		double rf = health[0][0].p50_us / floors[0][0]->p50_us;

		goal_add("Health calls/s, 64 in flight (best shape)", ">= 200,000",
			 best->rate >= 200000, "%.0f (%s)", best->rate,
			 best == h64 ? "64 connections" : "1 connection");
		goal_add("CPU per Health call (client + daemon), 64 in flight", "<= 10 us",
			 best->cpu_us_per_call <= 10, "%.2f us", best->cpu_us_per_call);
		goal_add("Health p50, pinned, sequential", "<= 10 us", health[1][0].p50_us <= 10,
			 "%.1f us", health[1][0].p50_us);
		goal_add("Health p50, unpinned, sequential, vs bare socket", "<= 1.3x", rf <= 1.3,
			 "%.2fx (%.1f vs %.1f us)", rf, health[0][0].p50_us, floors[0][0]->p50_us);
		goal_add("GetBalance p50 over direct, 1 caller", "<= +10%", o1 <= 0.10,
			 "%+.1f%% (%.0f vs %.0f us)", o1 * 100, via1.p50_us, direct1.p50_us);
		goal_add("GetBalance p50 over direct, 64 callers", "<= +10%", o64 <= 0.10,
			 "%+.1f%% (%.0f vs %.0f us)", o64 * 100, via64.p50_us, direct64.p50_us);
		goal_add("B2B token requests for all the daemon's calls", "1", b2b1 - b2b0 == 1,
			 "%ld for %llu GetBalance calls from 64 callers (+ %ld customer token)",
			 b2b1 - b2b0, (unsigned long long)(via1.calls + via64.calls), b2b2c1 - b2b2c0);
		goal_add("RSS idle", "<= 10 MiB", rss_idle <= 10 * 1024, "%.1f MiB",
			 (double)rss_idle / 1024);
		goal_add("RSS with 1,000 connections", "<= 40 MiB", rss_some <= 40 * 1024, "%.1f MiB",
			 (double)rss_some / 1024);
	}
	print_tables(stdout, rss_idle, rss_some, rss_many, opt_conns);
	if (opt_markdown != NULL) {
		md = fopen(opt_markdown, "w");
		assert_non_null(md);
		print_tables(md, rss_idle, rss_some, rss_many, opt_conns);
		assert_int_equal(fclose(md), 0);
	}
out:
	for (unsigned i = 0; i < MANY_CONNS && i < opt_conns; i++)
		dokubridge_free(cs[i]);
	free(cs);
	h_teardown(&env);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_bridge [--seconds S] [--calls N] [--e2e-calls N] "
			"[--e2e-seconds S] [--conns N] [--markdown FILE] [--only ipc|e2e] [--smoke]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(bench) };

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--smoke") == 0) {
			opt_seconds = 0.2;
			opt_calls = 2000;
			opt_e2e_calls = 640;
			opt_e2e_seconds = 10;
			opt_conns = 100;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--seconds") == 0)
			opt_seconds = atof(v);
		else if (strcmp(a, "--calls") == 0)
			opt_calls = strtoull(v, NULL, 10);
		else if (strcmp(a, "--e2e-calls") == 0)
			opt_e2e_calls = strtoull(v, NULL, 10);
		else if (strcmp(a, "--e2e-seconds") == 0)
			opt_e2e_seconds = atof(v);
		else if (strcmp(a, "--conns") == 0)
			opt_conns = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--markdown") == 0)
			opt_markdown = v;
		else if (strcmp(a, "--only") == 0)
			opt_only = v;
		else
			usage();
	}
	if (opt_seconds <= 0 || opt_e2e_seconds <= 0 || opt_calls < 100 || opt_e2e_calls < 640 ||
	    opt_conns < MANY_CONNS || opt_conns > MAX_OPEN_CONNS)
		usage();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
