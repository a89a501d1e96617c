/* doku-snapsim: malformed input of every kind gets a 4xx (or a closed
 * connection) and never takes the simulator down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "sim.h"
#include "snap_time.h"
#include "testutil.h"

#define IDLE_TIMEOUT_S "2"          /* the simulator's idle timeout in this group */
#define CLOSE_WAIT_MS 15000         /* how long we wait for it to close on us */
#define BIG_BODY (10u * 1024u * 1024u) /* within SIM_BODY_LINGER_MAX: read, then refused */
#define DRAIN_BODY (256u * 1024u)      /* more than libmicrohttpd reads at once */
#define DRAIN_CHUNK 8192u
#define MANY_CONNECTIONS 300

static int setup(void **state)
{
	static const char *const extra[] = { "--idle-timeout", IDLE_TIMEOUT_S, NULL };

	(void)state;
	if (sim_group_setup(extra) != 0)
		return -1;
	return simtest_b2b(&cli);
}

/* ---- raw sockets and TLS ------------------------------------------------ */

static int tcp_connect(void)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)simtest_port(sim.https));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

struct tls {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static void tls_open(struct tls *t)
{
	t->fd = tcp_connect();
	t->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(t->ctx);
	assert_int_equal(SSL_CTX_load_verify_locations(t->ctx, cli.ca, NULL), 1);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	t->ssl = SSL_new(t->ctx);
	assert_non_null(t->ssl);
	SSL_set_fd(t->ssl, t->fd);
	assert_int_equal(SSL_set1_host(t->ssl, "127.0.0.1"), 1);
	assert_int_equal(SSL_connect(t->ssl), 1);
}

static void tls_close(struct tls *t)
{
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	close(t->fd);
}

/* Wait until the peer closes fd (or TLS fails): true when it did within ms. */
static bool closed_within(int fd, SSL *ssl, long ms)
{
	char buf[4096];
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long left;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return false;
		n = ssl != NULL ? SSL_read(ssl, buf, sizeof(buf)) : (int)read(fd, buf, sizeof(buf));
		if (n <= 0)
			return true;
	}
}

/* The whole answer read from a TLS connection until the peer closes or a
 * complete HTTP message with a body arrived. */
static size_t tls_read_answer(struct tls *t, char *out, size_t max)
{
	size_t got = 0;

	while (got + 1 < max) {
		int n = SSL_read(t->ssl, out + got, (int)(max - 1 - got));
		const char *cl, *end;

		if (n <= 0)
			break;
		got += (size_t)n;
		out[got] = '\0';
		cl = strstr(out, "Content-Length: ");
		end = strstr(out, "\r\n\r\n");
		if (cl == NULL)
			cl = strstr(out, "content-length: ");
		if (cl != NULL && end != NULL &&
		    got >= (size_t)(end + 4 - out) + strtoul(cl + 16, NULL, 10))
			break;
	}
	out[got] = '\0';
	return got;
}

/* A signed B2B token request as raw HTTP/1.1 text. */
static size_t token_request_text(char *out, size_t max)
{
	char ts[SNAP_TIMESTAMP_LEN + 1], sig[SNAP_RSA_SIG_B64_MAX];
	const char *body = "{\"grantType\":\"client_credentials\"}";
	int n;

	assert_int_equal(snap_time_format(time(NULL), ts), 0);
	assert_int_equal(snap_sign_token(cli.key, cli.client_id, ts, sig, sizeof(sig)), 0);
	n = snprintf(out, max,
		     "POST " P_TOKEN_B2B " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		     "X-CLIENT-KEY: %s\r\nX-TIMESTAMP: %s\r\nX-SIGNATURE: %s\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n%s",
		     cli.client_id, ts, sig, strlen(body), body);
	assert_true(n > 0 && (size_t)n < max);
	return (size_t)n;
}

/* The simulator still answers a normal request. */
static void assert_alive(void)
{
	simtest_reply r;

	CALL(r, P_INQUIRE, "{\"partnerReferenceNo\":\"still-alive\"}", NULL);
	if (r.http == 401) { /* the token may have been replaced meanwhile */
		simtest_reply_free(&r);
		assert_int_equal(simtest_b2b(&cli), 0);
		CALL(r, P_INQUIRE, "{\"partnerReferenceNo\":\"still-alive\"}", NULL);
	}
	EXPECT_CODE(r, 404, "4040811");
	simtest_reply_free(&r);
}

/* ---- tests -------------------------------------------------------------- */

static void test_bad_json(void **state)
{
	static const char *const bodies[] = {
		"{", "}", "[]", "null", "\"text\"", "42", "{\"partnerReferenceNo\":}",
		"{\"partnerReferenceNo\":\"a\",}", "{'single':'quotes'}", "{\"a\":\"\xff\xfe\"}",
		"{\"a\":\"\xc3\x28\"}", "   ", "{\"partnerReferenceNo\":\"x\"}trailing",
	};
	simtest_reply r;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		CALL(r, P_CREATE, bodies[i], NULL);
		if (r.http != 400 || strcmp(r.code, "4000600") != 0)
			fprintf(stderr, "body #%zu: HTTP %ld %s\n", i, r.http, r.body);
		EXPECT_CODE(r, 400, "4000600");
		simtest_reply_free(&r);
	}
	/* nested far deeper than anything DOKU sends */
	{
		size_t depth = 5000, n = 0;
		char *deep = malloc(depth * 2 + 64);

		assert_non_null(deep);
		n += (size_t)sprintf(deep, "{\"partnerReferenceNo\":");
		for (size_t i = 0; i < depth; i++)
			deep[n++] = '[';
		for (size_t i = 0; i < depth; i++)
			deep[n++] = ']';
		deep[n++] = '}';
		deep[n] = '\0';
		CALL(r, P_CREATE, deep, NULL);
		EXPECT_CODE(r, 400, "4000600");
		simtest_reply_free(&r);
		free(deep);
	}
	/* an empty body on a token endpoint */
	TOKEN(r, P_TOKEN_B2B, "", NULL);
	EXPECT_CODE(r, 400, "4007300");
	simtest_reply_free(&r);
	assert_alive();
}

static void test_huge_bodies(void **state)
{
	char *big = malloc(BIG_BODY + 1);
	simtest_reply r;
	simtest_opts o;

	(void)state;
	assert_non_null(big);
	memset(big, 'a', BIG_BODY);
	big[0] = '{';
	big[BIG_BODY] = '\0';
	/* Every over-limit body here is declared within SIM_BODY_LINGER_MAX: the
	 * simulator reads it, throws it away, then answers 413, so a client still
	 * writing its body always gets the answer (no reset, no curl error 55).
	 * Declared 10 MB with Expect: 100-continue (asked for, then refused) */
	memset(&o, 0, sizeof(o));
	o.expect_100 = true;
	CALL(r, P_CREATE, big, &o);
	EXPECT_CODE(r, 413, "4130600");
	simtest_reply_free(&r);
	/* 10 MB sent straight away */
	CALL(r, P_CREATE, big, NULL);
	EXPECT_CODE(r, 413, "4130600");
	simtest_reply_free(&r);
	/* one byte over the limit, with Expect: 100-continue (curl's 1 s wait for
	 * the 100 may lapse on a loaded machine: the body is then on its way) */
	big[SIM_BODY_MAX + 1] = '\0';
	CALL(r, P_CREATE, big, &o);
	EXPECT_CODE(r, 413, "4130600");
	simtest_reply_free(&r);
	/* and sent straight away */
	CALL(r, P_CREATE, big, NULL);
	EXPECT_CODE(r, 413, "4130600");
	simtest_reply_free(&r);
	/* just under: read, verified, refused as JSON */
	big[SIM_BODY_MAX - 1] = '\0';
	CALL(r, P_CREATE, big, NULL);
	EXPECT_CODE(r, 400, "4000600");
	simtest_reply_free(&r);
	free(big);
	assert_alive();
}

/* Bound the blocking reads and writes of t. */
static void tls_timeouts(struct tls *t)
{
	struct timeval tv = { CLOSE_WAIT_MS / 1000, (CLOSE_WAIT_MS % 1000) * 1000 };

	assert_int_equal(setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(setsockopt(t->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
}

/* After a refusal the connection still serves: the refused body was read to
 * its end, none of it is taken for the next request. */
static void assert_connection_serves(struct tls *t)
{
	const char next[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	char answer[4096];

	assert_int_equal(SSL_write(t->ssl, next, (int)strlen(next)), (int)strlen(next));
	tls_read_answer(t, answer, sizeof(answer));
	if (strncmp(answer, "HTTP/1.1 404", 12) != 0)
		fprintf(stderr, "next answer: %s\n", answer);
	assert_int_equal(strncmp(answer, "HTTP/1.1 404", 12), 0);
	assert_non_null(strstr(answer, "\"responseCode\":\"4040000\""));
}

/* A request refused from its headers (or once its body outgrew the limit)
 * is answered after its body has been read and thrown away: a client that
 * writes its whole body before reading gets the answer, not a reset, and
 * the connection stays usable. */
static void test_refused_bodies_are_read_first(void **state)
{
	static const struct {
		const char *method, *path;
		size_t length;       /* 0: chunked, DRAIN_BODY in DRAIN_CHUNK pieces */
		const char *status, *code;
	} cases[] = {
		{ "POST", P_CREATE, SIM_BODY_MAX + 1, "HTTP/1.1 413", "4130600" },
		{ "POST", P_CREATE, DRAIN_BODY, "HTTP/1.1 413", "4130600" },
		{ "POST", P_CREATE, 0, "HTTP/1.1 413", "4130600" },
		{ "POST", "/nowhere", DRAIN_BODY, "HTTP/1.1 404", "4040000" },
		{ "PUT", P_CREATE, DRAIN_BODY, "HTTP/1.1 405", "4050600" },
	};
	char *body = malloc(DRAIN_BODY);
	char head[512], answer[4096];

	(void)state;
	assert_non_null(body);
	memset(body, 'a', DRAIN_BODY);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls t;
		int n;

		tls_open(&t);
		tls_timeouts(&t);
		if (cases[i].length > 0)
			n = snprintf(head, sizeof(head),
				     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
				     cases[i].method, cases[i].path, cases[i].length);
		else
			n = snprintf(head, sizeof(head),
				     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
				     cases[i].method, cases[i].path);
		assert_true(n > 0 && (size_t)n < sizeof(head));
		assert_int_equal(SSL_write(t.ssl, head, n), n);
		if (cases[i].length > 0) {
			assert_int_equal(SSL_write(t.ssl, body, (int)cases[i].length),
					 (int)cases[i].length);
		} else {
			char size[32];

			n = snprintf(size, sizeof(size), "%x\r\n", DRAIN_CHUNK);
			for (size_t sent = 0; sent < DRAIN_BODY; sent += DRAIN_CHUNK) {
				assert_int_equal(SSL_write(t.ssl, size, n), n);
				assert_int_equal(SSL_write(t.ssl, body, (int)DRAIN_CHUNK), (int)DRAIN_CHUNK);
				assert_int_equal(SSL_write(t.ssl, "\r\n", 2), 2);
			}
			assert_int_equal(SSL_write(t.ssl, "0\r\n\r\n", 5), 5);
		}
		tls_read_answer(&t, answer, sizeof(answer));
		if (strncmp(answer, cases[i].status, strlen(cases[i].status)) != 0 ||
		    strstr(answer, cases[i].code) == NULL)
			fprintf(stderr, "case #%zu: %s\n", i, answer);
		assert_int_equal(strncmp(answer, cases[i].status, strlen(cases[i].status)), 0);
		assert_non_null(strstr(answer, cases[i].code));
		assert_connection_serves(&t);
		tls_close(&t);
	}
	free(body);
	assert_alive();
}

/* A refused body declared longer than SIM_BODY_LINGER_MAX is not waited
 * for: the refusal comes at once, before any 100 Continue, and the
 * connection is closed. */
static void test_body_too_long_to_wait_for(void **state)
{
	struct tls t;
	char head[512], answer[4096];
	int n;

	(void)state;
	tls_open(&t);
	tls_timeouts(&t);
	n = snprintf(head, sizeof(head),
		     "POST " P_CREATE " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		     "Content-Length: %u\r\nExpect: 100-continue\r\n\r\n",
		     SIM_BODY_LINGER_MAX + 1u);
	assert_true(n > 0 && (size_t)n < sizeof(head));
	assert_int_equal(SSL_write(t.ssl, head, n), n);
	tls_read_answer(&t, answer, sizeof(answer));
	if (strncmp(answer, "HTTP/1.1 413", 12) != 0)
		fprintf(stderr, "answer: %s\n", answer);
	assert_int_equal(strncmp(answer, "HTTP/1.1 413", 12), 0);
	assert_non_null(strstr(answer, "\"responseCode\":\"4130600\""));
	assert_true(closed_within(t.fd, t.ssl, CLOSE_WAIT_MS));
	tls_close(&t);
	assert_alive();
}

static void test_chunked_body_over_the_limit(void **state)
{
	struct tls t;
	char head[512], chunk[8192 + 16];
	size_t sent = 0;
	int n;

	(void)state;
	tls_open(&t);
	n = snprintf(head, sizeof(head),
		     "POST " P_CREATE " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n");
	assert_int_equal(SSL_write(t.ssl, head, n), n);
	n = snprintf(chunk, sizeof(chunk), "2000\r\n");
	memset(chunk + n, 'x', 8192);
	memcpy(chunk + n + 8192, "\r\n", 2);
	n += 8192 + 2;
	/* keep streaming: the simulator must close long before 8 MB */
	while (sent < 8u * 1024u * 1024u) {
		if (SSL_write(t.ssl, chunk, n) <= 0)
			break;
		sent += 8192;
	}
	assert_true(sent < 8u * 1024u * 1024u);
	tls_close(&t);
	assert_alive();
}

static void test_wrong_methods_and_paths(void **state)
{
	static const char *const methods[] = { "GET", "PUT", "DELETE", "PATCH", "OPTIONS" };
	simtest_reply r;
	simtest_opts o;

	(void)state;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		memset(&o, 0, sizeof(o));
		o.method = methods[i];
		CALL(r, P_BALANCE, "{}", &o);
		EXPECT_CODE(r, 405, "4051100");
		simtest_reply_free(&r);
	}
	memset(&o, 0, sizeof(o));
	o.method = "GET";
	TOKEN(r, P_TOKEN_B2B, "", &o);
	EXPECT_CODE(r, 405, "4057300");
	simtest_reply_free(&r);
	CALL(r, "/snap-adapter/b2b2c/v1.0/balance-inquiry/", "{}", NULL);
	EXPECT_CODE(r, 404, "4040000");
	simtest_reply_free(&r);
	CALL(r, "/", "{}", NULL);
	EXPECT_CODE(r, 404, "4040000");
	simtest_reply_free(&r);
	CALL(r, "/v1.0/balance-inquiry", "{}", NULL);
	EXPECT_CODE(r, 404, "4040000");
	simtest_reply_free(&r);
	assert_alive();
}

static void test_no_headers_at_all(void **state)
{
	struct tls t;
	char answer[4096];
	const char req[] = "POST " P_BALANCE " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";

	(void)state;
	tls_open(&t);
	assert_int_equal(SSL_write(t.ssl, req, (int)strlen(req)), (int)strlen(req));
	tls_read_answer(&t, answer, sizeof(answer));
	assert_non_null(strstr(answer, "HTTP/1.1 400"));
	assert_non_null(strstr(answer, "\"responseCode\":\"4001102\""));
	assert_non_null(strstr(answer, "{Content-Type}"));
	tls_close(&t);
}

static void test_header_floods(void **state)
{
	struct tls t;
	char *req = malloc(256 * 1024);
	char answer[4096];
	size_t n;

	(void)state;
	assert_non_null(req);
	/* one 40 KB header */
	tls_open(&t);
	n = (size_t)sprintf(req, "POST " P_BALANCE " HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(req + n, 'b', 40000);
	n += 40000;
	n += (size_t)sprintf(req + n, "\r\nContent-Length: 2\r\n\r\n{}");
	SSL_write(t.ssl, req, (int)n);
	tls_read_answer(&t, answer, sizeof(answer));
	assert_non_null(strstr(answer, "HTTP/1.1 4"));
	tls_close(&t);
	/* 4000 small headers */
	tls_open(&t);
	n = (size_t)sprintf(req, "POST " P_BALANCE " HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 4000; i++)
		n += (size_t)sprintf(req + n, "X-H%d: v\r\n", i);
	n += (size_t)sprintf(req + n, "Content-Length: 2\r\n\r\n{}");
	SSL_write(t.ssl, req, (int)n);
	tls_read_answer(&t, answer, sizeof(answer));
	assert_non_null(strstr(answer, "HTTP/1.1 4"));
	tls_close(&t);
	free(req);
	assert_alive();
}

/* An honest but slow client: every byte in its own TLS record, a pause
 * between them. It is served. */
static void test_slow_client_byte_at_a_time(void **state)
{
	char req[2048], answer[4096];
	size_t n = token_request_text(req, sizeof(req));
	struct timespec pause = { 0, 2 * 1000000L };
	struct tls t;

	(void)state;
	tls_open(&t);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(SSL_write(t.ssl, req + i, 1), 1);
		nanosleep(&pause, NULL);
	}
	tls_read_answer(&t, answer, sizeof(answer));
	assert_non_null(strstr(answer, "HTTP/1.1 200"));
	assert_non_null(strstr(answer, "\"responseCode\":\"2007300\""));
	tls_close(&t);
	/* that request replaced the B2B token */
	assert_int_equal(simtest_b2b(&cli), 0);
}

/* A client that stops in the middle is disconnected after the idle timeout. */
static void test_stalled_clients_are_dropped(void **state)
{
	const char part[] = "POST " P_BALANCE " HTTP/1.1\r\nHost: x\r\nX-TIMES";
	struct tls t;
	int fd;

	(void)state;
	/* stalled in the headers, after the handshake */
	tls_open(&t);
	assert_int_equal(SSL_write(t.ssl, part, (int)strlen(part)), (int)strlen(part));
	assert_true(closed_within(t.fd, t.ssl, CLOSE_WAIT_MS));
	tls_close(&t);
	/* stalled before the handshake */
	fd = tcp_connect();
	assert_true(closed_within(fd, NULL, CLOSE_WAIT_MS));
	close(fd);
	/* stalled in the body */
	tls_open(&t);
	{
		const char head[] = "POST " P_BALANCE " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a";

		assert_int_equal(SSL_write(t.ssl, head, (int)strlen(head)), (int)strlen(head));
	}
	assert_true(closed_within(t.fd, t.ssl, CLOSE_WAIT_MS));
	tls_close(&t);
	assert_alive();
}

static void test_garbage_and_plaintext(void **state)
{
	unsigned char junk[16384];
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < 20; round++) {
		int fd = tcp_connect();

		for (size_t i = 0; i < sizeof(junk); i++) {
			seed = seed * 1103515245u + 12345u;
			junk[i] = (unsigned char)(seed >> 16);
		}
		if (round % 2 == 0)
			junk[0] = 0x16; /* looks like a TLS handshake record */
		(void)!write(fd, junk, sizeof(junk));
		assert_true(closed_within(fd, NULL, CLOSE_WAIT_MS));
		close(fd);
	}
	{
		const char plain[] = "POST " P_BALANCE " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
		int fd = tcp_connect();

		(void)!write(fd, plain, strlen(plain));
		assert_true(closed_within(fd, NULL, CLOSE_WAIT_MS));
		close(fd);
	}
	/* a handshake, then the connection cut in the middle of a request */
	{
		struct tls t;
		const char head[] = "POST " P_BALANCE " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";

		tls_open(&t);
		SSL_write(t.ssl, head, (int)strlen(head));
		tls_close(&t);
	}
	assert_alive();
}


/* GET /control/counters "connections": key (opened, closed, idleClosed). */
static long conn_counter(const char *key)
{
	json_t *j = NULL;
	long n;

	assert_int_equal(simtest_ctl(&sim, "GET", "/control/counters", NULL, &j), 200);
	n = (long)json_integer_value(json_object_get(json_object_get(j, "connections"), key));
	json_decref(j);
	return n;
}

/* Wait until no HTTPS connection is open (every one opened was closed). */
static void wait_no_connection(void)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (conn_counter("opened") != conn_counter("closed")) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_true((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 <
			    CLOSE_WAIT_MS);
		poll(NULL, 0, 20); /* bounded polling of an observable condition */
	}
}

/* Many connections at once, each held, then closed. The simulator counts
 * a connection when it accepts it, which may come after the client closed
 * it (it waits in the listen queue): the test waits until all of them are
 * counted and closed, so that none is accepted late into the next test's
 * counts (which once saw one connection too many). */
static void test_many_idle_connections(void **state)
{
	int fds[MANY_CONNECTIONS];
	long opened = conn_counter("opened");
	struct timespec start, now;

	(void)state;
	for (int i = 0; i < MANY_CONNECTIONS; i++)
		fds[i] = tcp_connect();
	assert_alive();
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (conn_counter("opened") < opened + MANY_CONNECTIONS) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_true((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 <
			    CLOSE_WAIT_MS);
		poll(NULL, 0, 20); /* bounded polling of an observable condition */
	}
	for (int i = 0; i < MANY_CONNECTIONS; i++)
		close(fds[i]);
	wait_no_connection();
	assert_alive();
}

/* One answered keep-alive request on a new TLS connection, left open. */
static void keepalive_request(struct tls *t)
{
	const char req[] = "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
	char answer[4096];

	tls_open(t);
	assert_int_equal(SSL_write(t->ssl, req, (int)strlen(req)), (int)strlen(req));
	tls_read_answer(t, answer, sizeof(answer));
	assert_non_null(strstr(answer, "HTTP/1.1 404"));
}

/* The connection counters tell a connection the simulator closed for
 * idleness (idleClosed) from one the client closed. */
static void test_idle_closes_counted(void **state)
{
	struct tls t;
	long idle, opened, closed;

	(void)state;
	wait_no_connection(); /* earlier connections (the group's client) are gone */
	idle = conn_counter("idleClosed");
	opened = conn_counter("opened");
	closed = conn_counter("closed");
	/* closed by the client right after its answer: not an idle close */
	keepalive_request(&t);
	tls_close(&t);
	wait_no_connection();
	assert_int_equal(conn_counter("opened"), opened + 1);
	assert_int_equal(conn_counter("closed"), closed + 1);
	assert_int_equal(conn_counter("idleClosed"), idle);
	/* left silent: the simulator closes it after the idle timeout */
	keepalive_request(&t);
	assert_true(closed_within(t.fd, t.ssl, CLOSE_WAIT_MS));
	tls_close(&t);
	wait_no_connection();
	assert_int_equal(conn_counter("opened"), opened + 2);
	assert_int_equal(conn_counter("closed"), closed + 2);
	assert_int_equal(conn_counter("idleClosed"), idle + 1);
}

static void test_control_api_malformed(void **state)
{
	json_t *j = NULL;
	char *big;

	(void)state;
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/faults", "{not json", NULL), 400);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/faults", "[1]", NULL), 400);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/faults", "{\"kind\":\"meteor\"}", NULL), 400);
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/nothing", NULL, NULL), 404);
	assert_int_equal(simtest_ctl(&sim, "PUT", "/control/reset", "{}", NULL), 405);
	assert_int_equal(simtest_ctl(&sim, "GET", "/", NULL, NULL), 404);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/settings", "{\"b2bTokenTtl\":-5}", &j), 400);
	assert_non_null(strstr(jstr(j, "error"), "b2b_token_ttl"));
	json_decref(j);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/settings", "{\"nope\":1}", NULL), 400);
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/log?since=abc", NULL, NULL), 400);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/pin", "{\"phoneNo\":\"0\",\"pin\":\"12\"}", NULL), 400);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/bindings/approve", "{\"linkId\":\"x\"}", NULL), 404);
	big = malloc(200 * 1024);
	assert_non_null(big);
	memset(big, ' ', 200 * 1024 - 1);
	big[0] = '{';
	big[200 * 1024 - 2] = '}';
	big[200 * 1024 - 1] = '\0';
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/settings", big, NULL), 413);
	free(big);
	assert_int_equal(simtest_ctl(&sim, "GET", "/control/health", NULL, &j), 200);
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
}

static void test_log_tells_what_happened(void **state)
{
	char *log = NULL;

	(void)state;
	assert_int_equal(simtest_ctl_text(&sim, "/control/log?verdict=body_too_large", &log), 200);
	assert_non_null(strstr(log, "\"httpStatus\":413"));
	free(log);
	assert_int_equal(simtest_ctl_text(&sim, "/control/log?verdict=bad_json&limit=1", &log), 200);
	assert_non_null(strstr(log, "\"responseCode\":\"4000600\""));
	assert_null(strchr(strchr(log, '\n') + 1, '\n')); /* limit=1: one line */
	free(log);
	assert_int_equal(simtest_ctl_text(&sim, "/control/log?verdict=method_not_allowed", &log), 200);
	assert_non_null(strstr(log, "\"method\":\"PUT\""));
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_huge_bodies),
		cmocka_unit_test(test_refused_bodies_are_read_first),
		cmocka_unit_test(test_body_too_long_to_wait_for),
		cmocka_unit_test(test_chunked_body_over_the_limit),
		cmocka_unit_test(test_wrong_methods_and_paths),
		cmocka_unit_test(test_no_headers_at_all),
		cmocka_unit_test(test_header_floods),
		cmocka_unit_test(test_slow_client_byte_at_a_time),
		cmocka_unit_test(test_stalled_clients_are_dropped),
		cmocka_unit_test(test_garbage_and_plaintext),
		cmocka_unit_test(test_many_idle_connections),
		cmocka_unit_test(test_idle_closes_counted),
		cmocka_unit_test(test_control_api_malformed),
		cmocka_unit_test(test_log_tells_what_happened),
		cmocka_unit_test(test_sigterm_clean_exit),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("snapsim_malformed", tests, setup, sim_group_teardown);
}
