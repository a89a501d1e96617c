/* Abuse: connections that send one byte per second, that send half a frame
 * and stall, that never read their replies, that vanish mid-frame or with a
 * call in flight, all while well-behaved callers keep their latency (p99 of
 * a Health loop with the abusers within P99_FACTOR x, plus P99_SLACK_US, of
 * the p99 without them). The stalled ones are closed by the daemon after
 * io_timeout_ms. Then the caps: calls over max_calls_per_connection wait
 * (backpressure, docs/protocol.md), and a connection over max_connections is
 * closed at once. Loopback only; no sleeps (the abusers are paced by the
 * poll loop). */
#include "harness.h"
#include "load.h"
#include "prom.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define C(x) DOKUBRIDGE_##x
#define MAX_CONNS 64u
#define MAX_CALLS 4u
#define IO_TIMEOUT_MS 5000u         /* the harness's io_timeout_ms */
#define GOOD_CONNS 4u
#define PHASE_MS 3000u              /* the well-behaved loop without abusers */
#define ABUSE_MS (IO_TIMEOUT_MS + 4000u)
#define N_SLOW 12u                  /* one byte per second */
#define N_HALF 8u                   /* half a frame, then nothing */
#define N_NOREAD 8u                 /* calls without end, replies never read */
#define N_ABUSERS (N_SLOW + N_HALF + N_NOREAD)
#define VANISH_PER_TICK 3u          /* a new connection that leaves mid-frame, per tick */
#define P99_FACTOR 10u
#define P99_SLACK_US 25000u
#define DELAY_MS 1000u
#define PIPELINED 10u

#define IN_FLIGHT_SETTLE_MS 10000u /* the vanished callers' calls ended by then */

enum ab_kind { AB_SLOW, AB_HALF, AB_NOREAD };

struct abuser {
	int fd;
	enum ab_kind kind;
	uint8_t frame[256];
	size_t len, sent;
	uint64_t next_ms;
	bool closed;                /* the daemon closed it */
	uint64_t closed_after_ms;
};

static h_env env;

static int h_kill_all(void **state)
{
	(void)state;
	h_kill(&env);
	return 0;
}

struct abuse {
	bool active;
	uint64_t t0;
	struct abuser ab[N_ABUSERS];
	uint64_t vanished, left_in_flight, noread_frames;
	uint8_t health[128], balance[512];
	size_t health_len, balance_len;
};

static void make(unsigned client, uint64_t seq, ld_call *out, void *arg)
{
	static Doku__Wallet__V1__HealthRequest h = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;

	(void)client;
	(void)seq;
	(void)arg;
	out->method = "Health";
	out->req = &h.base;
	out->kind = 0;
}

/* The daemon closed fd (EOF or reset), without blocking. */
static bool peer_closed(int fd)
{
	char b[4096];
	ssize_t k;

	for (;;) {
		k = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (k > 0) {
			h_record(b, (size_t)k);
			continue;
		}
		return k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
	}
}

/* false when the daemon closed the connection. */
static bool send_some(int fd, const void *p, size_t n, size_t *sent)
{
	ssize_t k = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

	*sent = 0;
	if (k < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK;
	*sent = (size_t)k;
	return true;
}

static void tick(uint64_t elapsed_ms, void *arg)
{
	struct abuse *a = arg;
	uint64_t now = ld_now_ms();

	(void)elapsed_ms;
	if (!a->active)
		return;
	for (unsigned i = 0; i < N_ABUSERS; i++) {
		struct abuser *b = &a->ab[i];
		size_t k = 0;
		bool alive = true;

		if (b->closed)
			continue;
		switch (b->kind) {
		case AB_SLOW:
			if (now >= b->next_ms && b->sent < b->len) {
				alive = send_some(b->fd, b->frame + b->sent, 1, &k);
				b->sent += k;
				b->next_ms = now + 1000;
			}
			if (alive)
				alive = !peer_closed(b->fd);
			break;
		case AB_HALF:
			alive = !peer_closed(b->fd);
			break;
		case AB_NOREAD:
			/* as many calls as the socket takes; never a read */
			do {
				if (!send_some(b->fd, b->frame + b->sent, b->len - b->sent, &k)) {
					alive = false;
					break;
				}
				b->sent += k;
				if (b->sent == b->len) {
					b->sent = 0;
					a->noread_frames++;
				}
			} while (k > 0);
			break;
		}
		if (!alive) {
			b->closed = true;
			b->closed_after_ms = now - a->t0;
		}
	}
	/* callers that vanish: mid-frame, and with a call in flight */
	for (unsigned i = 0; i < VANISH_PER_TICK; i++) {
		int fd = h_raw_connect(&env);
		size_t k = 0;

		if (i == 0) {
			(void)send_some(fd, a->balance, a->balance_len, &k);
			a->left_in_flight++;
		} else {
			(void)send_some(fd, a->health, a->health_len / 2 + i, &k);
			a->vanished++;
		}
		close(fd);
	}
}

static uint64_t health_p99(dokubridge_client **good, struct abuse *a, uint64_t ms, uint64_t *calls)
{
	ld_opts o = { .depth = 1, .duration_ms = ms, .tick_ms = 100, .make = make, .tick = tick,
		      .arg = a };
	ld_stats st;
	uint64_t p99;

	ld_run(good, GOOD_CONNS, &o, &st);
	assert_int_equal(st.start_failures, 0);
	assert_int_equal(st.ok, st.done);
	*calls = st.done;
	p99 = ld_quantile(&st, 0, 0.99);
	ld_stats_free(&st);
	return p99;
}

static double metric(dokubridge_client *c, const char *name, const char *labels)
{
	Doku__Wallet__V1__MetricsRequest mq = DOKU__WALLET__V1__METRICS_REQUEST__INIT;
	Doku__Wallet__V1__MetricsResponse *mr = NULL;
	dokubridge_result res;
	prom pm;
	double v;

	OK_CALL(c, NULL, "Metrics", mq, &mr, &res);
	if (prom_parse(mr->text, &pm) != 0)
		fail_msg("Metrics: %s", pm.error);
	v = prom_get(&pm, name, labels);
	prom_free(&pm);
	dokubridge_message_free(mr);
	return v;
}

/* Wait (bounded) until the daemon counts n connections. */
static void wait_connections(dokubridge_client *c, double n)
{
	uint64_t end = ld_now_ms() + H_WAIT_MS;

	while (metric(c, "doku_bridge_connections", NULL) != n) {
		assert_true(ld_now_ms() < end);
		poll(NULL, 0, 10); /* bounded polling of an observable condition */
	}
}

static void test_abuse(void **state)
{
	static struct abuse a;
	Doku__Wallet__V1__HealthRequest hq = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	dokubridge_client *good[GOOD_CONNS], *cli;
	h_customer cust;
	uint64_t base, abused, n_base, n_abused, t0;
	int fds[MAX_CONNS], extra, pipe_fd;
	unsigned nfds = 0, got = 0;
	uint8_t buf[PIPELINED * 512];
	size_t n = 0;
	char cfg[256];

	(void)state;
	h_setup(&env);
	snprintf(cfg, sizeof(cfg), "max_connections = %u\nmax_calls_per_connection = %u\nlog_level = warning\n",
		 MAX_CONNS, MAX_CALLS);
	h_daemon_start(&env, cfg, NULL);
	cli = h_client(&env);
	h_customer_new(&env, cli, "ab-1", &cust);
	for (unsigned i = 0; i < GOOD_CONNS; i++)
		good[i] = h_client(&env);
	a.health_len = h_call_frame(a.health, sizeof(a.health), 1, "/doku.wallet.v1.Wallet/Health", &hq.base, NULL);
	gb.partner_reference_no = "ab-bal";
	a.balance_len = h_call_frame(a.balance, sizeof(a.balance), 1, "/doku.wallet.v1.Wallet/GetBalance",
				     &gb.base, cust.ref);

	/* 1. the well-behaved loop alone */
	base = health_p99(good, &a, PHASE_MS, &n_base);

	/* 2. the same with the abusers */
	a.t0 = ld_now_ms();
	for (unsigned i = 0; i < N_ABUSERS; i++) {
		struct abuser *b = &a.ab[i];
		size_t k = 0;

		b->fd = h_raw_connect(&env);
		b->kind = i < N_SLOW ? AB_SLOW : i < N_SLOW + N_HALF ? AB_HALF : AB_NOREAD;
		memcpy(b->frame, a.health, a.health_len);
		b->len = a.health_len;
		if (b->kind == AB_HALF) {
			assert_true(send_some(b->fd, b->frame, 5 + (b->len - 5) / 2, &k));
			assert_int_equal(k, 5 + (b->len - 5) / 2);
		}
	}
	a.active = true;
	abused = health_p99(good, &a, ABUSE_MS, &n_abused);
	a.active = false;
	fprintf(stderr,
		"abuse: Health p99 %.2f ms alone (%llu calls), %.2f ms with %u abusers (%llu calls); "
		"%llu calls pushed unread, %llu callers vanished mid-frame, %llu with a call in flight\n",
		(double)base / 1000.0, (unsigned long long)n_base, (double)abused / 1000.0, N_ABUSERS,
		(unsigned long long)n_abused, (unsigned long long)a.noread_frames,
		(unsigned long long)a.vanished, (unsigned long long)a.left_in_flight);
	assert_true(abused <= base * P99_FACTOR + P99_SLACK_US);
	assert_true(n_abused * PHASE_MS >= n_base * ABUSE_MS / 4); /* throughput kept too */
	/* every stalled connection was closed by the daemon, after io_timeout_ms */
	for (unsigned i = 0; i < N_ABUSERS; i++) {
		struct abuser *b = &a.ab[i];

		if (!b->closed)
			fprintf(stderr, "abuser %u (kind %d) still open\n", i, b->kind);
		assert_true(b->closed);
		assert_true(b->closed_after_ms + 200 >= IO_TIMEOUT_MS);
		close(b->fd);
	}
	assert_true(a.noread_frames > MAX_CALLS);
	/* the last callers that vanished with a call in flight may still be in the
	 * accept queue or their calls being cancelled: the gauge must come back to
	 * 0 (a call that leaked its count never does) */
	{
		uint64_t until = ld_now_ms() + IN_FLIGHT_SETTLE_MS;
		double in_flight;

		while ((in_flight = metric(cli, "doku_bridge_calls_in_flight", NULL)) != 0 &&
		       ld_now_ms() < until)
			poll(NULL, 0, 20); /* bounded polling of an observable condition */
		assert_int_equal(in_flight, 0);
	}

	/* 3. max_calls_per_connection: PIPELINED slow calls on one connection are
	 * served MAX_CALLS at a time (backpressure), all answered */
	{
		char json[256];

		snprintf(json, sizeof(json),
			 "{\"path\":\"/snap-adapter/b2b2c/v1.0/balance-inquiry\",\"kind\":\"delay\",\"delayMs\":%u,\"count\":%u}",
			 DELAY_MS, PIPELINED);
		h_fault(&env, json);
	}
	for (unsigned i = 0; i < PIPELINED; i++)
		n += h_call_frame(buf + n, sizeof(buf) - n, 100 + i, "/doku.wallet.v1.Wallet/GetBalance",
				  &gb.base, cust.ref);
	pipe_fd = h_raw_connect(&env);
	t0 = ld_now_ms();
	h_send_all(pipe_fd, buf, n);
	{
		uint64_t end = ld_now_ms() + H_WAIT_MS;

		while (metric(cli, "doku_bridge_calls_in_flight", NULL) < MAX_CALLS) {
			assert_true(ld_now_ms() < end);
			poll(NULL, 0, 10);
		}
	}
	assert_int_equal(metric(cli, "doku_bridge_calls_in_flight", NULL), MAX_CALLS);
	while (got < PIPELINED) {
		uint8_t flags, *body = NULL;
		uint32_t len;
		Doku__Bridge__V1__Reply *r;

		assert_int_equal(h_raw_read_frame(pipe_fd, &flags, &body, &len), 0);
		r = doku__bridge__v1__reply__unpack(NULL, len, body);
		assert_non_null(r);
		assert_int_equal(r->code, C(OK));
		doku__bridge__v1__reply__free_unpacked(r, NULL);
		free(body);
		got++;
	}
	/* three waves of DELAY_MS: 4, 4, 2 */
	fprintf(stderr, "abuse: %u pipelined calls answered in %llu ms (max %u in flight)\n", PIPELINED,
		(unsigned long long)(ld_now_ms() - t0), MAX_CALLS);
	assert_true(ld_now_ms() - t0 >= 3 * DELAY_MS - 100);
	close(pipe_fd);

	/* 4. max_connections: fill up to the cap; the next one is closed at once */
	wait_connections(cli, 1 + GOOD_CONNS);
	for (unsigned i = 1 + GOOD_CONNS; i < MAX_CONNS; i++) {
		uint8_t flags, *body = NULL;
		uint32_t len;

		fds[nfds] = h_raw_connect(&env);
		h_send_all(fds[nfds], a.health, a.health_len);
		assert_int_equal(h_raw_read_frame(fds[nfds], &flags, &body, &len), 0); /* served */
		free(body);
		nfds++;
	}
	extra = h_raw_connect(&env);
	{
		size_t k;

		/* may fail already: the daemon closes it at once */
		(void)send_some(extra, a.health, a.health_len, &k);
	}
	assert_true(h_raw_eof(extra)); /* closed without a reply */
	close(extra);
	assert_true(metric(cli, "doku_bridge_connections_refused_total", NULL) >= 1);
	assert_int_equal(metric(cli, "doku_bridge_connections", NULL), MAX_CONNS);
	/* a place freed is a place taken */
	close(fds[--nfds]);
	wait_connections(cli, MAX_CONNS - 1);
	{
		dokubridge_client *late = h_client(&env);
		dokubridge_result res;

		OK_CALL(late, NULL, "Health", hq, NULL, &res);
		dokubridge_free(late);
	}
	while (nfds > 0)
		close(fds[--nfds]);

	for (unsigned i = 0; i < GOOD_CONNS; i++)
		dokubridge_free(good[i]);
	assert_int_equal(kill(env.daemon_pid, 0), 0);
	dokubridge_free(cli);
	h_teardown(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_abuse, h_kill_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
