/* bench_bridge: the figures of issue 8, in one run, each beside its floor.
 *
 *  1. The IPC hop: Health over libdokubridge's async API (one connection
 *     sequential, one connection with 64 calls in flight, 64 connections
 *     with one each): calls/s, p50/p99/p99.9, CPU per call (this process's
 *     getrusage + the daemon's /proc/PID/stat).
 *  5. Its floor: a bare 64-byte ping-pong over Unix sockets with a forked
 *     echo process, in the same three shapes. Both pinned (both processes on
 *     CPU 0) and unpinned.
 *  2. End to end (issue 15): GetBalance through the daemon to doku-snapsim
 *     over TLS, beside the same signed request sent by this process with
 *     libcurl over kept-alive connections, for 1, 16 and 64 callers, each in
 *     two shapes: blocking clients (a thread per caller: dokubridge_call, or
 *     curl_easy_perform on the thread's own easy handle) and one epoll client
 *     (a connection per caller: libdokubridge's async API, or one curl multi
 *     handle driven by curl_multi_socket_action). Interleaved: the direct row
 *     then the daemon's (A then B), shape after shape, in each of --rounds
 *     rounds (3); the table has each row's median across the rounds and the
 *     median of its rounds' ratios to the direct row of the same shape and
 *     round. CPU per call apart: this process (the callers), the daemon,
 *     doku-snapsim. The goals of issue 15 follow.
 *  3. Token economy: B2B token requests the simulator saw from the daemon
 *     during the GetBalance rows: one per row (the direct client's own token
 *     knocks out the daemon's before each of its rows).
 *  4. Memory: the daemon's RSS idle, with 1,000 and with N open connections.
 *
 *   bench_bridge [--seconds S] [--calls N] [--e2e-calls N] [--e2e-seconds S]
 *                [--conns N] [--markdown FILE] [--only ipc|e2e] [--smoke] [--quick]
 *                [--daemon-b PATH] [--rounds N]
 *
 * Every run stops at its count or its time, whichever comes first. Prints
 * the tables (Markdown) on stdout, and into FILE with --markdown.
 * tests/bench/run.sh builds a release and writes docs/benchmarks.md.
 *
 * --daemon-b PATH: A/B comparison of two daemons, A (the one built with this
 * program) and B (PATH), started side by side on the same simulator and
 * credentials. Every daemon row (Health, GetBalance via the daemon) is run
 * for both, back to back, in each of N rounds (3 by default): A first in
 * even rounds, B first in odd ones (neither always runs second), the
 * floors once per round beside them; prints the medians across rounds of
 * every row and the ratios B/A (median, min-max of the rounds). The two
 * daemons share one B2B token (the simulator keeps only the newest), so each
 * takes a new one at the start of its rows: that happens in the unmeasured
 * warm-up. The memory figures are RSS idle and after the rounds, the token
 * count and the IPC goals are left out. --quick: shorter rows (1 s, 1.5 s
 * for GetBalance, smaller warm-ups; options after it still apply). --rounds N
 * also applies to the GetBalance rows of a single daemon (the IPC rows are
 * then measured once). */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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
#define ROWS_MAX 64
#define ROUNDS_MAX 15           /* cap of --rounds */
#define AB_ROUNDS 3             /* rounds of an A/B comparison by default */
#define E2E_ROUNDS 3            /* rounds of the GetBalance rows by default */
#define E2E_WARM 500u           /* answers of a GetBalance row not measured (at least 4 per caller) */
#define TEXT_MAX 160

static double opt_seconds = 3.0;
static uint64_t opt_calls = 5000000;
static uint64_t opt_e2e_calls = 100000;
static double opt_e2e_seconds = 3.0;
static unsigned opt_conns = 10000;
static const char *opt_markdown;
static const char *opt_only;  /* "ipc" or "e2e": one part alone (for profiling) */
static uint64_t opt_warm_max = WARM_MAX;
static const char *opt_daemon_b; /* the second daemon of an A/B comparison */
static unsigned opt_rounds;      /* rounds (0: AB_ROUNDS, E2E_ROUNDS for the GetBalance rows) */
static uint64_t opt_e2e_warm = E2E_WARM;

/* ---- the table ------------------------------------------------------------------------ */

/* A row of the table, with its result in every round. Each round adds the
 * same rows in the same order. */
struct row {
	char what[TEXT_MAX];
	int floor;              /* the matching floor row, or -1 */
	int a;                  /* of a daemon B row: daemon A's row, or -1 */
	bool e2e;               /* a GetBalance row (its own table) */
	unsigned n;             /* rounds measured */
	bu_result r[ROUNDS_MAX];
};

static struct row rows[ROWS_MAX];
static unsigned nrows, row_next; /* row_next: this round's next row */
static unsigned round_no, rounds = 1;

/* Round k begins at row `first` (the rows before it are measured once). */
static void round_begin(unsigned k, unsigned first)
{
	round_no = k;
	row_next = first;
}

/* Add r as this round's result of the row what: its index. */
static int row_add(const char *what, const bu_result *r, int floor, int a)
{
	unsigned i = row_next++;
	struct row *w = &rows[i];
	char tag[32] = "";

	assert_true(i < ROWS_MAX);
	if (i == nrows) {
		snprintf(w->what, sizeof(w->what), "%s", what);
		w->floor = floor;
		w->a = a;
		nrows++;
	}
	assert_string_equal(w->what, what);
	assert_true(w->n < ROUNDS_MAX);
	w->r[w->n++] = *r;
	if (rounds > 1)
		snprintf(tag, sizeof(tag), "round %u/%u: ", round_no + 1, rounds);
	fprintf(stderr, "bench: %s%-52s %9.0f calls/s p50 %8.1f us p99 %8.1f us CPU %6.2f us/call",
		tag, what, r->rate, r->p50_us, r->p99_us, r->cpu_us_per_call);
	if (r->server_us_per_call >= 0 || r->sim_us_per_call >= 0)
		fprintf(stderr, " (client %.2f, server %.2f, snapsim %.2f)", r->client_us_per_call,
			r->server_us_per_call, r->sim_us_per_call);
	fprintf(stderr, "\n");
	return (int)i;
}

/* The result of row i in the only round. */
static const bu_result *res(int i)
{
	assert_true(i >= 0 && (unsigned)i < nrows);
	return &rows[i].r[0];
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
		const bu_result *r = &rows[i].r[0];
		const bu_result *fl = rows[i].floor >= 0 ? res(rows[i].floor) : NULL;
		char cpu[32] = "-", rr[32] = "-", pr[32] = "-";

		if (rows[i].e2e)
			continue;

		if (r->cpu_us_per_call >= 0)
			snprintf(cpu, sizeof(cpu), "%.2f", r->cpu_us_per_call);
		if (fl != NULL && fl->rate > 0 && fl->p50_us > 0) {
			snprintf(rr, sizeof(rr), "%.2fx", r->rate / fl->rate);
			snprintf(pr, sizeof(pr), "%.2fx", r->p50_us / fl->p50_us);
		}
		fprintf(f, "| %s | %llu | %.0f | %.1f | %.1f | %.1f | %s | %s | %s |\n", rows[i].what,
			(unsigned long long)r->calls, r->rate, r->p50_us, r->p99_us, r->p999_us, cpu,
			rr, pr);
	}
	fprintf(f, "\nDaemon RSS: idle %ld KiB; %u connections %ld KiB; %u connections %ld KiB.\n\n",
		rss_idle, many < SOME_CONNS ? many : SOME_CONNS, rss_some, many, rss_many);
}

/* ---- the tables of an A/B comparison --------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median, min and max of v[0..n) (sorted in place); n > 0. */
static double stats(double *v, unsigned n, double *lo, double *hi)
{
	qsort(v, n, sizeof(*v), cmp_double);
	if (lo != NULL)
		*lo = v[0];
	if (hi != NULL)
		*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum fig { FIG_CALLS, FIG_RATE, FIG_P50, FIG_P99, FIG_P999, FIG_CPU, FIG_CLIENT, FIG_SERVER, FIG_SIM };

static double fig(const bu_result *r, enum fig f)
{
	switch (f) {
	case FIG_CALLS: return (double)r->calls;
	case FIG_RATE: return r->rate;
	case FIG_P50: return r->p50_us;
	case FIG_P99: return r->p99_us;
	case FIG_P999: return r->p999_us;
	case FIG_CPU: return r->cpu_us_per_call;
	case FIG_CLIENT: return r->client_us_per_call;
	case FIG_SERVER: return r->server_us_per_call;
	case FIG_SIM: return r->sim_us_per_call;
	}
	return 0;
}

/* Median across the rounds of figure f of row i, or of its ratio to figure
 * fo of row `over` in the same round when over >= 0 (with min and max); -1
 * when a figure is unknown. */
static double across2(int i, enum fig f, int over, enum fig fo, double *lo, double *hi)
{
	double v[ROUNDS_MAX];
	const struct row *w = &rows[i];

	if (w->n == 0 || (over >= 0 && rows[over].n != w->n))
		return -1;
	for (unsigned k = 0; k < w->n; k++) {
		double x = fig(&w->r[k], f), y = over >= 0 ? fig(&rows[over].r[k], fo) : 1;

		if (x < 0 || y <= 0)
			return -1;
		v[k] = x / y;
	}
	return stats(v, w->n, lo, hi);
}

/* across2 of the same figure. */
static double across(int i, int over, enum fig f, double *lo, double *hi)
{
	return across2(i, f, over, f, lo, hi);
}

static void ratio_cell(char *out, size_t len, int i, int over, enum fig f)
{
	double lo, hi, m = across(i, over, f, &lo, &hi);

	if (m < 0)
		snprintf(out, len, "-");
	else if (rows[i].n > 1)
		snprintf(out, len, "%.3f (%.3f-%.3f)", m, lo, hi);
	else
		snprintf(out, len, "%.3f", m);
}

/* A figure's median across the rounds, "-" when unknown. */
static void fig_cell(char *out, size_t len, int i, enum fig f, int decimals)
{
	double m = across(i, -1, f, NULL, NULL);

	if (m < 0)
		snprintf(out, len, "-");
	else
		snprintf(out, len, "%.*f", decimals, m);
}

/* A ratio's median across the rounds (min-max with several rounds), "-". */
static void ratio2_cell(char *out, size_t len, int i, enum fig f, int over, enum fig fo)
{
	double lo, hi, m = over >= 0 ? across2(i, f, over, fo, &lo, &hi) : -1;

	if (m < 0)
		snprintf(out, len, "-");
	else if (rows[i].n > 1)
		snprintf(out, len, "%.2fx (%.2f-%.2f)", m, lo, hi);
	else
		snprintf(out, len, "%.2fx", m);
}

/* The GetBalance rows (issue 15): each daemon row beside the direct client of
 * the same shape and callers, measured in the same round. */
static void print_e2e_table(FILE *f)
{
	bool any = false;

	for (unsigned i = 0; i < nrows; i++)
		any |= rows[i].e2e;
	if (!any)
		return;
	fprintf(f, "GetBalance end to end, %u round%s (each row the median across the rounds; "
		   "ratios: the median of the rounds' ratios to the direct row of the same shape "
		   "and callers in the same round, min-max). CPU us/call: client (this process: the "
		   "bench's libdokubridge callers, or the direct libcurl client), the daemon, and "
		   "doku-snapsim apart.\n\n", rows[0].n > 0 ? rounds : 1, rounds > 1 ? "s" : "");
	fprintf(f, "| run | calls | calls/s | p50 us | p99 us | client CPU us/call | "
		   "daemon CPU us/call | snapsim CPU us/call | vs direct: calls/s | "
		   "vs direct: p50 | vs direct: p99 | daemon CPU / direct client CPU |\n");
	fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (unsigned i = 0; i < nrows; i++) {
		const struct row *w = &rows[i];
		char calls[32], rate[32], p50[32], p99[32], cl[32], sv[32], sim[32];
		char rr[48], pr[48], qr[48], cr[48];

		if (!w->e2e)
			continue;
		fig_cell(calls, sizeof(calls), (int)i, FIG_CALLS, 0);
		fig_cell(rate, sizeof(rate), (int)i, FIG_RATE, 0);
		fig_cell(p50, sizeof(p50), (int)i, FIG_P50, 1);
		fig_cell(p99, sizeof(p99), (int)i, FIG_P99, 1);
		fig_cell(cl, sizeof(cl), (int)i, FIG_CLIENT, 2);
		fig_cell(sv, sizeof(sv), (int)i, FIG_SERVER, 2);
		fig_cell(sim, sizeof(sim), (int)i, FIG_SIM, 2);
		ratio2_cell(rr, sizeof(rr), (int)i, FIG_RATE, w->floor, FIG_RATE);
		ratio2_cell(pr, sizeof(pr), (int)i, FIG_P50, w->floor, FIG_P50);
		ratio2_cell(qr, sizeof(qr), (int)i, FIG_P99, w->floor, FIG_P99);
		ratio2_cell(cr, sizeof(cr), (int)i, FIG_SERVER, w->floor, FIG_CLIENT);
		fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", w->what,
			calls, rate, p50, p99, cl, sv, sim, rr, pr, qr, cr);
	}
	fprintf(f, "\n");
}

static void print_ab_tables(FILE *f, const long rss[2][2], double elapsed)
{
	fprintf(f, "A/B comparison: A = `%s`, B = `%s`; %u rounds in %.0f s. Every figure is the "
		   "median across the rounds; \"vs floor\": the median of the rounds' ratios to "
		   "the floor measured in the same round.\n\n",
		DOKU_BRIDGED_BIN, opt_daemon_b, rounds, elapsed);
	for (unsigned i = 0; i < nrows; i++) {
		if (!rows[i].e2e) { /* the Health rows' table, when there are some */
			fprintf(f, "| run | calls | calls/s | p50 us | p99 us | p99.9 us | CPU us/call | "
				   "vs floor: calls/s | vs floor: p50 |\n");
			fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
			break;
		}
	}
	for (unsigned i = 0; i < nrows; i++) {
		const struct row *w = &rows[i];
		double cpu = across((int)i, -1, FIG_CPU, NULL, NULL);
		char cs[32] = "-", rr[32] = "-", pr[32] = "-";

		if (w->e2e)
			continue;

		if (cpu >= 0)
			snprintf(cs, sizeof(cs), "%.2f", cpu);
		if (w->floor >= 0) {
			double a = across((int)i, w->floor, FIG_RATE, NULL, NULL);
			double b = across((int)i, w->floor, FIG_P50, NULL, NULL);

			if (a >= 0 && b >= 0) {
				snprintf(rr, sizeof(rr), "%.2fx", a);
				snprintf(pr, sizeof(pr), "%.2fx", b);
			}
		}
		fprintf(f, "| %s | %.0f | %.0f | %.1f | %.1f | %.1f | %s | %s | %s |\n", w->what,
			across((int)i, -1, FIG_CALLS, NULL, NULL), across((int)i, -1, FIG_RATE, NULL, NULL),
			across((int)i, -1, FIG_P50, NULL, NULL), across((int)i, -1, FIG_P99, NULL, NULL),
			across((int)i, -1, FIG_P999, NULL, NULL), cs, rr, pr);
	}
	fprintf(f, "\nDaemon RSS: idle A %ld KiB, B %ld KiB; after the rounds (%u connections each) "
		   "A %ld KiB, B %ld KiB.\n\n",
		rss[0][0], rss[1][0], MANY_CONNS, rss[0][1], rss[1][1]);
	print_e2e_table(f);
	fprintf(f, "B vs A: the median of the rounds' ratios B/A (min-max). calls/s above 1: B is "
		   "faster; p50 and CPU below 1: B is faster, cheaper.\n\n");
	fprintf(f, "| run | calls/s B/A | p50 B/A | CPU us/call B/A | daemon CPU us/call B/A |\n"
		   "|---|---:|---:|---:|---:|\n");
	for (unsigned i = 0; i < nrows; i++) {
		const struct row *w = &rows[i];
		char name[TEXT_MAX], rate[64], p50[64], cpu[64], dcpu[64];
		size_t len = strlen(w->what);

		if (w->a < 0)
			continue;
		if (len >= sizeof(" [B]") - 1 && strcmp(w->what + len - 4, " [B]") == 0)
			len -= 4;
		snprintf(name, sizeof(name), "%.*s", (int)len, w->what);
		ratio_cell(rate, sizeof(rate), (int)i, w->a, FIG_RATE);
		ratio_cell(p50, sizeof(p50), (int)i, w->a, FIG_P50);
		ratio_cell(cpu, sizeof(cpu), (int)i, w->a, FIG_CPU);
		ratio_cell(dcpu, sizeof(dcpu), (int)i, w->a, FIG_SERVER);
		fprintf(f, "| %s | %s | %s | %s | %s |\n", name, rate, p50, cpu, dcpu);
	}
}

/* ---- the measured window of a run ------------------------------------------------------ */

/* A run's bookkeeping common to both drivers: issue until the count or the
 * time is reached; the first `warm` answers are not measured. */
struct window {
	uint64_t calls, warm;       /* total to issue (warm-up included) */
	uint64_t issued, answered, failed;
	uint64_t t0, end;
	pid_t server;               /* whose CPU counts with ours */
	pid_t sim;                  /* the simulator, whose CPU is counted apart (0: none) */
	bu_cpu cpu0;
	bu_samples lat;
	double seconds;
};

/* warm: answers not measured (0: a tenth of calls, at most opt_warm_max). */
static void window_init(struct window *w, uint64_t calls, uint64_t warm, double seconds,
			pid_t server, pid_t sim)
{
	memset(w, 0, sizeof(*w));
	w->warm = calls / WARM_FRACTION < opt_warm_max ? calls / WARM_FRACTION : opt_warm_max;
	if (warm > 0)
		w->warm = warm;
	w->sim = sim;
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
		bu_cpu_read3(w->server, w->sim, &w->cpu0);
	}
}

static void window_end(struct window *w, bu_result *r)
{
	bu_cpu cpu1;

	bu_cpu_read3(w->server, w->sim, &cpu1);
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

/* The bare ping-pong of one shape: its row. */
static int floor_run(const char *what, unsigned nconns, unsigned window, bool pin)
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
	window_init(&w, opt_calls, 0, opt_seconds, pid, 0);
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
	return row_add(what, &r, -1, -1);
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

/* What a run of calls through a daemon is: its row, its clients, the calls. */
struct run_spec {
	const char *what;
	dokubridge_client **cs;
	unsigned n, window;           /* clients, calls in flight on each */
	uint64_t calls, warm;         /* warm: 0, a tenth of calls (window_init) */
	double seconds;
	pid_t daemon, sim;            /* sim: 0 when its CPU is not measured */
	const char *method, *customer;
	const ProtobufCMessage *req;
	int floor, a;                 /* rows: the matching floor, daemon A's (of a B row) */
	bool e2e;
};

static int spec_row_add(const struct run_spec *rs, const bu_result *r)
{
	int i = row_add(rs->what, r, rs->floor, rs->a);

	rows[i].e2e = rs->e2e;
	return i;
}

/* window calls at a time on each of cs[0..n), over libdokubridge's
 * asynchronous API on one epoll: the row. */
static int calls_run(const struct run_spec *rs)
{
	const char *what = rs->what;
	dokubridge_client **cs = rs->cs;
	unsigned n = rs->n, window = rs->window;
	const char *method = rs->method, *customer = rs->customer;
	const ProtobufCMessage *req = rs->req;

	struct driver d = { .cs = cs, .n = n, .method = method, .customer = customer, .req = req };
	struct epoll_event evs[EPOLL_BATCH];
	bu_result r;

	d.interest = calloc(n, sizeof(*d.interest));
	assert_non_null(d.interest);
	d.ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(d.ep >= 0);
	window_init(&d.w, rs->calls, rs->warm, rs->seconds, rs->daemon, rs->sim);
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
	if (r.failed != 0)
		fprintf(stderr, "bench: %s: %llu failed\n", what, (unsigned long long)r.failed);
	assert_int_equal(r.failed, 0);
	return spec_row_add(rs, &r);
}

/* One blocking client per thread: thread i calls through cs[i]. */
struct blocking {
	const struct run_spec *rs;
	atomic_uint errors;
};

static bool blocking_one(void *arg, unsigned i)
{
	struct blocking *b = arg;
	const struct run_spec *rs = b->rs;
	dokubridge_call_opts opts = { .timeout_ms = WAIT_MS, .customer_ref = rs->customer };
	dokubridge_result res;
	ProtobufCMessage *resp = NULL;
	int rc = dokubridge_call(rs->cs[i], &opts, rs->method, rs->req, &resp, &res);

	dokubridge_message_free(resp);
	if (rc != 0 && atomic_fetch_add(&b->errors, 1) == 0)
		fprintf(stderr, "bench: %s: %s: %s\n", rs->method, dokubridge_code_name(res.code),
			res.message);
	return rc == 0;
}

/* n threads, a blocking client each (cs[i], dokubridge_call) in a closed
 * loop: the row. */
static int blocking_run(const struct run_spec *rs)
{
	struct blocking b = { .rs = rs };
	uint64_t warm = rs->warm > 0 ? rs->warm : rs->calls / WARM_FRACTION;
	bu_result r;

	atomic_init(&b.errors, 0);
	assert_int_equal(bu_threads_run(rs->n, blocking_one, &b, warm, rs->calls, rs->seconds,
					rs->daemon, rs->sim, &r), 0);
	if (r.failed != 0)
		fprintf(stderr, "bench: %s: %llu failed\n", rs->what, (unsigned long long)r.failed);
	assert_int_equal(r.failed, 0);
	return spec_row_add(rs, &r);
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

/* A daemon under test: alone, or A or B of a comparison. */
struct daemon {
	h_env *env;
	const char *tag;              /* appended to the names of its rows */
	dokubridge_client **cs;       /* its clients, MANY_CONNS at least */
	h_customer cust;
	long rss[2];                  /* idle; after the rounds (A/B) */
};

/* The row of spec (what, clients and daemon set here) for every daemon, A
 * then B, blocking clients or the epoll driver: the first daemon's row. */
static int daemons_run(struct daemon *ds, unsigned nd, const char *what,
		       const struct run_spec *spec, bool blocking)
{
	char name[TEXT_MAX];
	unsigned base = row_next;

	/* A/B: every other round B runs first, so that neither daemon always
	   has the place after the other (an A/A run showed up to 13% for it);
	   the rows keep their order, A's then B's */
	for (unsigned j = 0; j < nd; j++) {
		unsigned d = nd == 2 && round_no % 2 == 1 ? nd - 1 - j : j;
		struct run_spec rs = *spec;

		snprintf(name, sizeof(name), "%s%s", what, ds[d].tag);
		rs.what = name;
		rs.cs = ds[d].cs;
		rs.daemon = ds[d].env->daemon_pid;
		rs.a = d == 0 ? -1 : (int)base;
		row_next = base + d;
		(void)(blocking ? blocking_run(&rs) : calls_run(&rs));
	}
	row_next = base + nd;
	return (int)base;
}

/* Every daemon and this process on cpu (all CPUs when negative). */
static void pin_all(const struct daemon *ds, unsigned nd, int cpu)
{
	for (unsigned d = 0; d < nd; d++)
		assert_int_equal(bu_pin(ds[d].env->daemon_pid, cpu), 0);
	assert_int_equal(bu_pin(0, cpu), 0);
}

struct ipc_rows {
	int floor[2][NSHAPES], health[2][NSHAPES]; /* [pinned][shape] */
};

/* 5 and 1: the floor and Health, unpinned then pinned. */
static void ipc_rows(struct daemon *ds, unsigned nd, const ProtobufCMessage *hr,
		     struct ipc_rows *out)
{
	char what[TEXT_MAX];

	for (int pin = 0; pin < 2; pin++) {
		for (unsigned k = 0; k < NSHAPES; k++) {
			snprintf(what, sizeof(what), "bare ping-pong, %s%s", shapes[k].name,
				 pin ? ", pinned" : "");
			out->floor[pin][k] = floor_run(what, shapes[k].conns, shapes[k].window, pin != 0);
		}
		if (pin)
			pin_all(ds, nd, 0);
		for (unsigned k = 0; k < NSHAPES; k++) {
			snprintf(what, sizeof(what), "Health, %s%s", shapes[k].name, pin ? ", pinned" : "");
			struct run_spec rs = { .n = shapes[k].conns, .window = shapes[k].window,
					       .calls = opt_calls, .seconds = opt_seconds,
					       .method = "Health", .req = hr,
					       .floor = out->floor[pin][k] };

			out->health[pin][k] = daemons_run(ds, nd, what, &rs, false);
		}
		if (pin)
			pin_all(ds, nd, -1);
	}
}

/* The GetBalance rows of issue 15: callers x client shapes, direct and
 * through each daemon. */
#define E2E_CALLERS 3
static const unsigned e2e_callers[E2E_CALLERS] = { 1, 16, MANY_CONNS };
enum { SHAPE_BLOCKING, SHAPE_EPOLL, E2E_SHAPES };
static const char *const e2e_shape_names[E2E_SHAPES] = {
	"blocking (a thread per caller)", "epoll (one thread, a connection per caller)",
};

struct e2e_rows {
	int ipc_floor;                       /* the bare round trip over a Unix socket */
	int direct[E2E_CALLERS][E2E_SHAPES];
	int via[2][E2E_CALLERS][E2E_SHAPES]; /* [daemon] */
};

/* The direct client of the end-to-end floor, with its own tokens. */
static void direct_open(const h_env *env, simtest_client *sc)
{
	simtest_proc sp;
	simtest_customer scu;

	memset(&sp, 0, sizeof(sp));
	snprintf(sp.https, sizeof(sp.https), "%s", env->sim_https);
	snprintf(sp.control, sizeof(sp.control), "%s", env->sim_control);
	assert_true(strlen(env->dir) + sizeof("/creds") <= sizeof(sp.creds));
	memcpy(sp.creds, env->dir, strlen(env->dir));
	memcpy(sp.creds + strlen(env->dir), "/creds", sizeof("/creds"));
	assert_int_equal(simtest_client_init(sc, &sp), 0);
	assert_int_equal(simtest_open_customer(sc, &sp, &scu), 0);
}

static uint64_t e2e_warm(unsigned callers)
{
	uint64_t w = opt_e2e_warm;

	return w < 4u * callers ? 4u * callers : w;
}

/* One round of the GetBalance rows: for each number of callers and each
 * shape, the direct client then every daemon, back to back. The daemons'
 * customer sessions are "bench". */
static void e2e_round(struct daemon *ds, unsigned nd, simtest_client *sc, pid_t sim,
		      const ProtobufCMessage *gb, struct e2e_rows *out)
{
	char what[TEXT_MAX];

	/* the floor of the hop a call through the daemon adds: one 64-byte
	 * round trip between two processes over a Unix socket, no daemon code */
	out->ipc_floor = floor_run("IPC floor: bare 64-byte ping-pong over a Unix socket, "
				   "1 connection, sequential (no daemon)", 1, 1, false);
	rows[out->ipc_floor].e2e = true;
	/* its server is the echo process, not a daemon: CPU in the client column */
	rows[out->ipc_floor].r[rows[out->ipc_floor].n - 1].server_us_per_call = -1;
	for (unsigned c = 0; c < E2E_CALLERS; c++) {
		unsigned n = e2e_callers[c];

		for (unsigned k = 0; k < E2E_SHAPES; k++) {
			struct run_spec rs = { .n = n, .window = 1, .calls = opt_e2e_calls,
					       .warm = e2e_warm(n), .seconds = opt_e2e_seconds,
					       .sim = sim, .method = "GetBalance",
					       .customer = "bench", .req = gb, .e2e = true };
			bu_result r;
			int i;

			/* the daemons' tokens knocked out the direct client's (the
			 * simulator honours the newest only): a new one, which knocks
			 * out theirs in turn; they take a new one (one 401 and one
			 * retry) in their rows' warm-up */
			assert_int_equal(simtest_b2b(sc), 0);
			if (k == SHAPE_BLOCKING)
				assert_int_equal(bu_direct_blocking_run(sc, (int)n, rs.warm, rs.calls,
									rs.seconds, sim, &r), 0);
			else
				assert_int_equal(bu_direct_run(sc, (int)n, rs.warm, rs.calls, rs.seconds,
							       sim, &r), 0);
			assert_int_equal(r.failed, 0);
			snprintf(what, sizeof(what), "GetBalance direct (libcurl in-process), %u caller%s, %s",
				 n, n > 1 ? "s" : "", e2e_shape_names[k]);
			i = row_add(what, &r, -1, -1);
			rows[i].e2e = true;
			out->direct[c][k] = i;
			rs.floor = i;
			snprintf(what, sizeof(what), "GetBalance via the daemon, %u caller%s, %s", n,
				 n > 1 ? "s" : "", e2e_shape_names[k]);
			i = daemons_run(ds, nd, what, &rs, k == SHAPE_BLOCKING);
			for (unsigned d = 0; d < nd; d++)
				out->via[d][c][k] = i + (int)d;
		}
	}
}

/* The median across the rounds of (direct p50 + IPC round trip p50) / direct
 * p50: the least a call through any second process could cost here. */
static double hop_floor(int direct, int ipc)
{
	double v[ROUNDS_MAX];
	unsigned n = rows[direct].n < rows[ipc].n ? rows[direct].n : rows[ipc].n;

	if (n == 0)
		return -1;
	for (unsigned k = 0; k < n; k++)
		v[k] = (rows[direct].r[k].p50_us + rows[ipc].r[k].p50_us) / rows[direct].r[k].p50_us;
	return stats(v, n, NULL, NULL);
}

/* The goals of issue 15 for one daemon's rows (tag: its name in A/B). */
static void e2e_goals_add(const struct e2e_rows *e2e, unsigned d, const char *tag)
{
	char what[TEXT_MAX];

	for (unsigned k = 0; k < E2E_SHAPES; k++) {
		int v1 = e2e->via[d][0][k], f1 = e2e->direct[0][k];
		int v16 = e2e->via[d][1][k], f16 = e2e->direct[1][k];
		double lo, hi, m;

		m = across(v1, f1, FIG_P50, &lo, &hi);
		snprintf(what, sizeof(what), "GetBalance p50 vs direct, 1 caller, %s%s",
			 e2e_shape_names[k], tag);
		goal_add(what, "<= 1.25x (aim 1.1x)", m >= 0 && m <= 1.25,
			 "%.2fx (%.2f-%.2f); the floor of any second process on this machine, "
			 "(direct + the IPC floor's round trip) / direct: %.2fx", m, lo, hi,
			 hop_floor(f1, e2e->ipc_floor));
		m = across(v16, f16, FIG_RATE, &lo, &hi);
		snprintf(what, sizeof(what), "GetBalance calls/s vs direct, 16 callers, %s%s",
			 e2e_shape_names[k], tag);
		goal_add(what, ">= 0.8x (aim 0.9x)", m >= 0.8, "%.2fx (%.2f-%.2f)", m, lo, hi);
		for (unsigned c = 0; c < 2; c++) {
			m = across2(e2e->via[d][c][k], FIG_SERVER, e2e->direct[c][k], FIG_CLIENT, &lo,
				    &hi);
			snprintf(what, sizeof(what),
				 "daemon CPU per GetBalance vs the direct client's, %u caller%s, %s%s",
				 e2e_callers[c], c > 0 ? "s" : "", e2e_shape_names[k], tag);
			goal_add(what, "<= 1.5x", m >= 0 && m <= 1.5, "%.2fx (%.2f-%.2f)", m, lo, hi);
		}
	}
}

/* The goals of issue 8 (the IPC hop, tokens, memory), from the rows of the
 * first round. */
static void goals_add(const struct ipc_rows *ipc, long rss_idle, long rss_some, long b2b,
		      long b2b2c, uint64_t via_calls, unsigned via_rows)
{
	const bu_result *h64 = res(ipc->health[0][2]), *p64 = res(ipc->health[0][1]);
	const bu_result *best = h64->rate > p64->rate ? h64 : p64;
	const bu_result *seq = res(ipc->health[0][0]), *seq_floor = res(ipc->floor[0][0]);
	const bu_result *pinned = res(ipc->health[1][0]);
	double rf = seq->p50_us / seq_floor->p50_us;

	goal_add("Health calls/s, 64 in flight (best shape)", ">= 200,000", best->rate >= 200000,
		 "%.0f (%s)", best->rate, best == h64 ? "64 connections" : "1 connection");
	goal_add("CPU per Health call (client + daemon), 64 in flight", "<= 10 us",
		 best->cpu_us_per_call <= 10, "%.2f us", best->cpu_us_per_call);
	goal_add("Health p50, pinned, sequential", "<= 10 us", pinned->p50_us <= 10, "%.1f us",
		 pinned->p50_us);
	goal_add("Health p50, unpinned, sequential, vs bare socket", "<= 1.3x", rf <= 1.3,
		 "%.2fx (%.1f vs %.1f us)", rf, seq->p50_us, seq_floor->p50_us);
	/* the direct client's B2B token knocks out the daemon's before each of
	 * its rows: one new token per row, however many callers get the 401 */
	goal_add("B2B token requests of the daemon, per GetBalance row (after the direct "
		 "client took its own)", "1", b2b == (long)via_rows,
		 "%ld for %u rows, %llu GetBalance calls (+ %ld customer token)", b2b, via_rows,
		 (unsigned long long)via_calls, b2b2c);
	goal_add("RSS idle", "<= 10 MiB", rss_idle <= 10 * 1024, "%.1f MiB",
		 (double)rss_idle / 1024);
	goal_add("RSS with 1,000 connections", "<= 40 MiB", rss_some <= 40 * 1024, "%.1f MiB",
		 (double)rss_some / 1024);
}

static void print_goals(FILE *f)
{
	if (ngoals == 0)
		return;
	fprintf(f, "| goal | target | measured | met |\n|---|---|---|---|\n");
	for (unsigned i = 0; i < ngoals; i++)
		fprintf(f, "| %s | %s | %s | %s |\n", goals[i].what, goals[i].target,
			goals[i].measured, goals[i].met ? "yes" : "**no**");
}

static void write_markdown(void (*print)(FILE *f, const void *arg), const void *arg)
{
	FILE *md;

	print(stdout, arg);
	if (opt_markdown == NULL)
		return;
	md = fopen(opt_markdown, "w");
	assert_non_null(md);
	print(md, arg);
	assert_int_equal(fclose(md), 0);
}

struct single_tables {
	long rss_idle, rss_some, rss_many;
};

static void print_single(FILE *f, const void *arg)
{
	const struct single_tables *t = arg;

	if (opt_only == NULL || strcmp(opt_only, "ipc") == 0)
		print_tables(f, t->rss_idle, t->rss_some, t->rss_many, opt_conns);
	print_e2e_table(f);
	print_goals(f);
}

struct ab_tables {
	long rss[2][2];
	double elapsed;
};

static void print_ab(FILE *f, const void *arg)
{
	const struct ab_tables *t = arg;

	print_ab_tables(f, t->rss, t->elapsed);
	fprintf(f, "\n");
	print_goals(f);
}

/* The whole table of one daemon, each figure once (as in docs/benchmarks.md). */
static void bench_one(h_env *env, const char *extra)
{
	Doku__Wallet__V1__HealthRequest hr = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	static simtest_client sc;
	struct daemon d = { .env = env, .tag = "" };
	struct ipc_rows ipc;
	struct e2e_rows e2e;
	struct single_tables t = { .rss_some = -1 };
	dokubridge_result res;
	long b2b0, b2b1, b2b2c0, b2b2c1;
	unsigned first_e2e = 0;
	uint64_t via_calls = 0;

	h_daemon_start(env, extra, NULL);
	d.cs = calloc(opt_conns, sizeof(*d.cs));
	assert_non_null(d.cs);
	round_begin(0, 0);

	/* 4. memory */
	t.rss_idle = bu_rss_kib(env->daemon_pid);
	for (unsigned i = 0; i < opt_conns; i++) {
		d.cs[i] = h_client(env);
		assert_int_equal(dokubridge_health(d.cs[i], NULL, &hr, NULL, &res), 0);
		if (i + 1 == SOME_CONNS || (i + 1 == opt_conns && opt_conns < SOME_CONNS))
			t.rss_some = bu_rss_kib(env->daemon_pid);
	}
	t.rss_many = bu_rss_kib(env->daemon_pid);
	for (unsigned i = MANY_CONNS; i < opt_conns; i++)
		dokubridge_free(d.cs[i]);

	if (opt_only == NULL || strcmp(opt_only, "ipc") == 0)
		ipc_rows(&d, 1, &hr.base, &ipc);

	if (opt_only != NULL && strcmp(opt_only, "e2e") != 0)
		goto out;
	/* 2. end to end, in rounds: each row of the daemon beside the direct
	 * client's of the same shape in the same round */
	direct_open(env, &sc);
	b2b2c0 = h_counter(env, "byEndpoint", P_TOKEN_B2B2C);
	h_customer_new(env, d.cs[0], "bench", &d.cust);
	b2b0 = h_counter(env, "byEndpoint", P_TOKEN_B2B); /* the daemon holds one now */
	gb.partner_reference_no = "bench-balance";
	first_e2e = row_next; /* the Health rows are measured once, these every round */
	for (unsigned k = 0; k < rounds; k++) {
		round_begin(k, first_e2e);
		e2e_round(&d, 1, &sc, env->sim_pid, &gb.base, &e2e);
	}
	simtest_client_free(&sc);
	b2b1 = h_counter(env, "byEndpoint", P_TOKEN_B2B);
	b2b2c1 = h_counter(env, "byEndpoint", P_TOKEN_B2B2C);

	e2e_goals_add(&e2e, 0, "");
	if (opt_only != NULL) {
		write_markdown(print_single, &t);
		goto out;
	}
	for (unsigned c = 0; c < E2E_CALLERS; c++)
		for (unsigned k = 0; k < E2E_SHAPES; k++)
			for (unsigned r = 0; r < rows[e2e.via[0][c][k]].n; r++)
				via_calls += rows[e2e.via[0][c][k]].r[r].calls;
	/* the direct client took one B2B token before each of its rows */
	goals_add(&ipc, t.rss_idle, t.rss_some,
		  b2b1 - b2b0 - (long)(rounds * E2E_CALLERS * E2E_SHAPES), b2b2c1 - b2b2c0,
		  via_calls, rounds * E2E_CALLERS * E2E_SHAPES);
	write_markdown(print_single, &t);
out:
	for (unsigned i = 0; i < MANY_CONNS && i < opt_conns; i++)
		dokubridge_free(d.cs[i]);
	free(d.cs);
}

/* A/B: the daemon rows for A (env's daemon) and B (opt_daemon_b), back to
 * back, round after round, beside floors measured in the same rounds. */
static void bench_ab(h_env *env, const char *extra)
{
	Doku__Wallet__V1__HealthRequest hr = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	static simtest_client sc;
	h_env envb;
	struct daemon ds[2] = { { .env = env, .tag = " [A]" }, { .env = &envb, .tag = " [B]" } };
	bool ipc = opt_only == NULL || strcmp(opt_only, "ipc") == 0;
	bool e2e = opt_only == NULL || strcmp(opt_only, "e2e") == 0;
	struct ipc_rows ir;
	struct e2e_rows er;
	struct ab_tables t;
	dokubridge_result res;
	uint64_t t0 = bu_now_ns();

	h_setup_second(&envb, env, "b");
	envb.daemon_bin = opt_daemon_b;
	h_daemon_start(env, extra, NULL);
	h_daemon_start(&envb, extra, NULL);
	for (unsigned d = 0; d < 2; d++) {
		ds[d].rss[0] = bu_rss_kib(ds[d].env->daemon_pid);
		ds[d].cs = calloc(MANY_CONNS, sizeof(*ds[d].cs));
		assert_non_null(ds[d].cs);
		for (unsigned i = 0; i < MANY_CONNS; i++) {
			ds[d].cs[i] = h_client(ds[d].env);
			assert_int_equal(dokubridge_health(ds[d].cs[i], NULL, &hr, NULL, &res), 0);
		}
	}
	if (e2e) {
		direct_open(env, &sc);
		for (unsigned d = 0; d < 2; d++)
			h_customer_new(ds[d].env, ds[d].cs[0], "bench", &ds[d].cust);
		gb.partner_reference_no = "bench-balance";
	}
	for (unsigned k = 0; k < rounds; k++) {
		round_begin(k, 0);
		if (ipc)
			ipc_rows(ds, 2, &hr.base, &ir);
		if (e2e)
			e2e_round(ds, 2, &sc, env->sim_pid, &gb.base, &er);
	}
	if (e2e) {
		e2e_goals_add(&er, 0, " [A]");
		e2e_goals_add(&er, 1, " [B]");
	}
	if (e2e)
		simtest_client_free(&sc);
	for (unsigned d = 0; d < 2; d++) {
		t.rss[d][0] = ds[d].rss[0];
		t.rss[d][1] = bu_rss_kib(ds[d].env->daemon_pid);
	}
	t.elapsed = (double)(bu_now_ns() - t0) / 1e9;
	fprintf(stderr, "bench: A/B, %u rounds: %.0f s\n", rounds, t.elapsed);
	write_markdown(print_ab, &t);
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned i = 0; i < MANY_CONNS; i++)
			dokubridge_free(ds[d].cs[i]);
		free(ds[d].cs);
	}
	h_teardown(&envb);
}

static void bench(void **state)
{
	struct rlimit rl;
	char extra[128];
	h_env env;

	(void)state;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (opt_conns + 64 > rl.rlim_cur)
		opt_conns = (unsigned)rl.rlim_cur - 64;
	memset(&env, 0, sizeof(env));
	env.direct = true; /* straight to the simulator: no recording tap in the path */
	h_setup(&env);
	snprintf(extra, sizeof(extra), "max_connections = %u\nupstream_connections = 64\n",
		 opt_conns + 64);
	if (opt_daemon_b != NULL)
		bench_ab(&env, extra);
	else
		bench_one(&env, extra);
	h_teardown(&env);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_bridge [--seconds S] [--calls N] [--e2e-calls N] "
			"[--e2e-seconds S] [--conns N] [--markdown FILE] [--only ipc|e2e] [--smoke] "
			"[--quick] [--daemon-b PATH] [--rounds N<=%d]\n", ROUNDS_MAX);
	exit(2);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(bench) };
	bool smoke = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--smoke") == 0) {
			opt_seconds = 0.2;
			opt_calls = 2000;
			opt_e2e_calls = 640;
			opt_e2e_seconds = 0.3;
			opt_e2e_warm = 64;
			opt_conns = 100;
			smoke = true;
			continue;
		}
		if (strcmp(a, "--quick") == 0) {
			opt_seconds = 1.0;
			opt_warm_max = 5000;
			opt_e2e_calls = 30000;
			opt_e2e_seconds = 1.5;
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
		else if (strcmp(a, "--daemon-b") == 0)
			opt_daemon_b = v;
		else if (strcmp(a, "--rounds") == 0)
			opt_rounds = (unsigned)strtoul(v, NULL, 10);
		else
			usage();
	}
	if (opt_seconds <= 0 || opt_e2e_seconds <= 0 || opt_calls < 100 || opt_e2e_calls < 640 ||
	    opt_conns < MANY_CONNS || opt_conns > MAX_OPEN_CONNS || opt_rounds > ROUNDS_MAX)
		usage();
	rounds = opt_rounds > 0 ? opt_rounds : smoke ? 1 : opt_daemon_b != NULL ? AB_ROUNDS : E2E_ROUNDS;
	if (opt_daemon_b != NULL) {
		if (access(opt_daemon_b, X_OK) != 0) {
			fprintf(stderr, "bench_bridge: --daemon-b %s: %s\n", opt_daemon_b, strerror(errno));
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
