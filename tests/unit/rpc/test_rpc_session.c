/* rpc/session.c behind the real server (io/server.c, io/conn.c): a raw
 * client on the daemon's Unix socket speaks the native framing (5-byte
 * header: flags, big-endian length; a packed doku.bridge.v1.Call) and reads
 * doku.bridge.v1.Reply frames back. The fake upstream stands in for DOKU,
 * with the real tokens and the real journal; one loop runs it all. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"
#include "rpc_test.h"
#include "server.h"
#include "session.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x

#define REF "cust-1"
#define BALANCE_PATH "/balance-inquiry"
#define HDR 5u
#define IN_MAX (256u * 1024u)

typedef struct st_env {
	rt_env *e;
	server *srv;
	int fd;                   /* the client; -1: closed */
	uint8_t in[IN_MAX];       /* what the client read, not yet taken as replies */
	size_t in_len;
	bool eof;
} st_env;

/* ---- the client ------------------------------------------------------------------------- */

/* Read what the client has (non-blocking). */
static void client_poll(st_env *t)
{
	while (!t->eof && t->fd >= 0 && t->in_len < sizeof(t->in)) {
		ssize_t n = read(t->fd, t->in + t->in_len, sizeof(t->in) - t->in_len);

		if (n > 0) {
			t->in_len += (size_t)n;
		} else if (n == 0 || errno == ECONNRESET) {
			t->eof = true;
		} else if (errno != EINTR) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			return;
		}
	}
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A whole frame waits in the client's input. */
static bool have_frame(void *data)
{
	st_env *t = data;

	client_poll(t);
	return t->in_len >= HDR && t->in_len - HDR >= be32(t->in + 1);
}

static bool have_eof(void *data)
{
	st_env *t = data;

	client_poll(t);
	return t->eof;
}

/* Write all of data[0..n), turning the loop while the socket is full. */
static void client_write(st_env *t, const void *data, size_t n)
{
	const uint8_t *p = data;
	unsigned spins = 0;

	while (n > 0) {
		ssize_t k = write(t->fd, p, n);

		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		assert_true(k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
		assert_true(++spins < 100000u);
		uv_run(&t->e->loop, UV_RUN_NOWAIT);
	}
}

static void put_header(uint8_t *p, uint8_t flags, uint32_t len)
{
	p[0] = flags;
	p[1] = (uint8_t)(len >> 24);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 8);
	p[4] = (uint8_t)len;
}

/* A Call frame (header + packed envelope) appended at out + *n. */
static void frame_call(uint8_t *out, size_t cap, size_t *n, uint64_t id, const char *mname,
		       const ProtobufCMessage *req, const char *ref, bool cancel)
{
	Doku__Bridge__V1__Call env = DOKU__BRIDGE__V1__CALL__INIT;
	uint8_t msg[1024];
	size_t mlen = 0, len;

	if (req != NULL) {
		mlen = protobuf_c_message_get_packed_size(req);
		assert_true(mlen <= sizeof(msg));
		protobuf_c_message_pack(req, msg);
	}
	env.id = id;
	env.method = (char *)(mname != NULL ? mname : "");
	env.message.data = mlen > 0 ? msg : NULL;
	env.message.len = mlen;
	env.customer_ref = (char *)(ref != NULL ? ref : "");
	env.cancel = cancel;
	len = protobuf_c_message_get_packed_size(&env.base);
	assert_true(*n + HDR + len <= cap);
	put_header(out + *n, 0, (uint32_t)len);
	protobuf_c_message_pack(&env.base, out + *n + HDR);
	*n += HDR + len;
}

static const char *full_name(const char *name)
{
	const method *m = methods_by_name(name);

	assert_non_null(m);
	return m->full;
}

static void send_call(st_env *t, uint64_t id, const char *mname, const ProtobufCMessage *req,
		      const char *ref)
{
	uint8_t buf[2048];
	size_t n = 0;

	frame_call(buf, sizeof(buf), &n, id, mname, req, ref, false);
	client_write(t, buf, n);
}

static void send_health(st_env *t, uint64_t id)
{
	Doku__Wallet__V1__HealthRequest q = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;

	send_call(t, id, full_name("Health"), &q.base, NULL);
}

static void send_balance(st_env *t, uint64_t id, const char *partner_ref)
{
	Doku__Wallet__V1__GetBalanceRequest q = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;

	q.partner_reference_no = (char *)partner_ref;
	send_call(t, id, full_name("GetBalance"), &q.base, REF);
}

static void send_cancel(st_env *t, uint64_t id)
{
	uint8_t buf[256];
	size_t n = 0;

	frame_call(buf, sizeof(buf), &n, id, NULL, NULL, NULL, true);
	client_write(t, buf, n);
}

/* The next Reply (runs the loop until it is whole); free_unpacked by the caller. */
static Doku__Bridge__V1__Reply *next_reply(st_env *t)
{
	Doku__Bridge__V1__Reply *r;
	uint32_t len;

	rt_run_until(t->e, have_frame, t);
	assert_int_equal(t->in[0], 0); /* flags */
	len = be32(t->in + 1);
	r = doku__bridge__v1__reply__unpack(NULL, len, t->in + HDR);
	assert_non_null(r);
	memmove(t->in, t->in + HDR + len, t->in_len - HDR - len);
	t->in_len -= HDR + len;
	return r;
}

static void assert_reply(const Doku__Bridge__V1__Reply *r, uint64_t id, int code, const char *status)
{
	if (r->id != id || (int)r->code != code || strcmp(r->status_message, status) != 0)
		fail_msg("reply id %llu code %d \"%s\"; want id %llu code %d \"%s\"",
			 (unsigned long long)r->id, (int)r->code, r->status_message,
			 (unsigned long long)id, code, status);
}

/* The next reply is (id, code, status). */
static void expect_reply(st_env *t, uint64_t id, int code, const char *status)
{
	Doku__Bridge__V1__Reply *r = next_reply(t);

	assert_reply(r, id, code, status);
	doku__bridge__v1__reply__free_unpacked(r, NULL);
}

/* Nothing more arrives while the loop turns a few times. */
static void expect_quiet(st_env *t)
{
	for (int i = 0; i < 20; i++)
		uv_run(&t->e->loop, UV_RUN_NOWAIT);
	client_poll(t);
	assert_int_equal(t->in_len, 0);
}

/* ---- conditions --------------------------------------------------------------------------- */

static bool no_call_in_flight(void *data)
{
	return ((st_env *)data)->e->b.calls_in_flight == 0;
}

static bool no_connection(void *data)
{
	return server_connections(((st_env *)data)->srv) == 0;
}

static bool one_connection(void *data)
{
	return server_connections(((st_env *)data)->srv) == 1;
}

/* ---- setup -------------------------------------------------------------------------------- */

static int setup(void **state)
{
	st_env *t = calloc(1, sizeof(*t));
	struct sockaddr_un sa;
	int flags;

	assert_non_null(t);
	t->fd = -1;
	t->e = rt_env_new(true);
	rt_restore_session(t->e, REF, "acc-1", "ref-1", 3600);
	assert_int_equal(server_start(&t->e->loop, t->e->b.cfg, &session_conn_ops, &t->e->b, &t->srv), 0);
	t->e->b.srv = t->srv;

	t->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(t->fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_true(strlen(t->e->b.cfg->socket) < sizeof(sa.sun_path));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->e->b.cfg->socket);
	assert_int_equal(connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	flags = fcntl(t->fd, F_GETFL);
	assert_true(flags >= 0);
	assert_int_equal(fcntl(t->fd, F_SETFL, flags | O_NONBLOCK), 0);
	rt_run_until(t->e, one_connection, t);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	st_env *t = *state;

	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	/* the server frees itself once its handles and connections are closed:
	 * nothing may look at it after server_close */
	server_close(t->srv);
	t->e->b.srv = NULL;
	t->srv = NULL;
	rt_run_until(t->e, no_call_in_flight, t);
	rt_env_free(t->e); /* runs the loop until the server's handles are closed; uv_loop_close == 0 */
	free(t);
	return 0;
}

/* A GetBalance of id whose request is held at the fake upstream (after the
 * B2B token, when it is fetched first); returns the request's number. */
static unsigned balance_held(st_env *t, uint64_t id, const char *partner_ref)
{
	rt_env *e = t->e;
	unsigned base = fake_up_count(e->b.up);

	send_balance(t, id, partner_ref);
	rt_run_until_requests(e, base + 1);
	if (fake_req_url_ends(fake_up_req(e->b.up, base), RT_B2B_PATH)) {
		rt_answer_b2b(e, base, "tok-A");
		base++;
		rt_run_until_requests(e, base + 1);
	}
	assert_true(fake_req_url_ends(fake_up_req(e->b.up, base), BALANCE_PATH));
	assert_true(fake_up_req(e->b.up, base)->in_flight);
	assert_int_equal(e->b.calls_in_flight, 1);
	return base;
}

/* ---- cases -------------------------------------------------------------------------------- */

/* Health: OK, with its id, and a HealthResponse that sees this connection. */
static void test_health_ok(void **state)
{
	st_env *t = *state;
	Doku__Bridge__V1__Reply *r;
	Doku__Wallet__V1__HealthResponse *h;

	send_health(t, 7);
	r = next_reply(t);
	assert_reply(r, 7, CODE(OK), "");
	h = doku__wallet__v1__health_response__unpack(NULL, r->message.len, r->message.data);
	assert_non_null(h);
	assert_int_equal(h->connections, 1);
	assert_int_equal(h->n_profiles, 1);
	doku__wallet__v1__health_response__free_unpacked(h, NULL);
	doku__bridge__v1__reply__free_unpacked(r, NULL);
	expect_quiet(t);
	assert_int_equal(t->e->b.calls_in_flight, 0);
	assert_int_equal(t->e->b.calls_served, 1);
}

/* Two calls in one write: both answered. */
static void test_two_calls_one_write(void **state)
{
	st_env *t = *state;
	Doku__Wallet__V1__HealthRequest q = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	uint8_t buf[512];
	size_t n = 0;
	bool seen[3] = { false, false, false };

	frame_call(buf, sizeof(buf), &n, 1, full_name("Health"), &q.base, NULL, false);
	frame_call(buf, sizeof(buf), &n, 2, full_name("Health"), &q.base, NULL, false);
	client_write(t, buf, n);
	for (int i = 0; i < 2; i++) {
		Doku__Bridge__V1__Reply *r = next_reply(t);

		assert_true(r->id == 1 || r->id == 2);
		assert_false(seen[r->id]);
		seen[r->id] = true;
		assert_reply(r, r->id, CODE(OK), "");
		doku__bridge__v1__reply__free_unpacked(r, NULL);
	}
	expect_quiet(t);
	assert_int_equal(t->e->b.calls_served, 2);
}

/* An envelope that does not parse: id 0, INVALID_ARGUMENT; the connection goes on. */
static void test_malformed_envelope(void **state)
{
	st_env *t = *state;
	/* field 1 (varint) with a truncated value */
	uint8_t buf[HDR + 3];

	put_header(buf, 0, 3);
	buf[HDR] = 0x08;
	buf[HDR + 1] = 0xff;
	buf[HDR + 2] = 0xff;
	client_write(t, buf, sizeof(buf));
	expect_reply(t, 0, CODE(INVALID_ARGUMENT), "malformed Call envelope");
	send_health(t, 3);
	expect_reply(t, 3, CODE(OK), "");
	assert_int_equal(server_connections(t->srv), 1);
}

/* An id already in flight: refused at once; the first call still ends with its own reply. */
static void test_duplicate_id(void **state)
{
	st_env *t = *state;
	rt_env *e = t->e;
	unsigned n = balance_held(t, 5, "bal-1");

	send_health(t, 5);
	expect_reply(t, 5, CODE(INVALID_ARGUMENT), "id 5 is already in flight on this connection");
	assert_true(fake_up_req(e->b.up, n)->in_flight);
	assert_int_equal(e->b.calls_in_flight, 1);

	rt_answer_code(e, n, 200, "2001100", "Successful");
	{
		Doku__Bridge__V1__Reply *r = next_reply(t);

		assert_reply(r, 5, CODE(OK), "");
		assert_int_equal(r->http_status, 200);
		assert_string_equal(r->response_code, "2001100");
		assert_string_equal(r->partner_reference_no, "bal-1");
		doku__bridge__v1__reply__free_unpacked(r, NULL);
	}
	rt_run_until(e, no_call_in_flight, t);
	expect_quiet(t);
}

/* A cancel frame: the held call answers CANCELLED, its request withdrawn. */
static void test_cancel(void **state)
{
	st_env *t = *state;
	rt_env *e = t->e;
	unsigned n = balance_held(t, 9, "bal-2");

	send_cancel(t, 42); /* no such call: nothing happens, no reply */
	expect_quiet(t);
	assert_true(fake_up_req(e->b.up, n)->in_flight);

	send_cancel(t, 9);
	expect_reply(t, 9, CODE(CANCELLED), "cancelled by the caller");
	assert_true(fake_up_req(e->b.up, n)->cancelled);
	assert_false(fake_up_req(e->b.up, n)->in_flight);
	assert_int_equal(fake_up_pending(e->b.up), 0);
	rt_run_until(e, no_call_in_flight, t);
	expect_quiet(t); /* the cancel frame itself gets no reply */
}

/* A method the daemon does not know: UNIMPLEMENTED. */
static void test_unknown_method(void **state)
{
	st_env *t = *state;

	send_call(t, 11, "/doku.wallet.v1.Wallet/NoSuchMethod", NULL, NULL);
	expect_reply(t, 11, CODE(UNIMPLEMENTED), "unknown method \"/doku.wallet.v1.Wallet/NoSuchMethod\"");
	expect_quiet(t);
}

/* Reply bytes wait unread in the client's socket (peeked, not taken). */
static bool have_unread(void *data)
{
	st_env *t = data;
	uint8_t b;

	return recv(t->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

/* The client goes away while a read is in flight: the call stops, its
 * request withdrawn. The client dies with a reply unread, so its close is
 * a reset (ECONNRESET at the daemon), not an end of stream: an end of
 * stream alone is a half-close, whose calls are still answered (below). */
static void test_client_close_in_flight(void **state)
{
	st_env *t = *state;
	rt_env *e = t->e;
	uint64_t failed;
	unsigned n;

	send_health(t, 12);
	rt_run_until(e, have_unread, t);
	n = balance_held(t, 13, "bal-3");
	failed = e->b.calls_failed;

	close(t->fd);
	t->fd = -1;
	rt_run_until(e, no_connection, t);
	rt_run_until(e, no_call_in_flight, t);
	assert_true(fake_up_req(e->b.up, n)->cancelled);
	assert_false(fake_up_req(e->b.up, n)->in_flight);
	assert_int_equal(fake_up_pending(e->b.up), 0);
	assert_int_equal(e->b.calls_failed, failed + 1); /* ended CANCELLED, answered to nobody */
}

/* The client shuts down its sending side while a call is in flight: the
 * call is still answered, then the connection closes. */
static void test_client_half_close_answered(void **state)
{
	st_env *t = *state;
	rt_env *e = t->e;
	unsigned n = balance_held(t, 14, "bal-4");

	assert_int_equal(shutdown(t->fd, SHUT_WR), 0);
	for (int i = 0; i < 20; i++)
		uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_true(fake_up_req(e->b.up, n)->in_flight);
	assert_false(fake_up_req(e->b.up, n)->cancelled);
	assert_int_equal(server_connections(t->srv), 1);

	rt_answer_code(e, n, 200, "2001100", "Successful");
	expect_reply(t, 14, CODE(OK), "");
	rt_run_until(e, have_eof, t);
	assert_int_equal(t->in_len, 0);
	rt_run_until(e, no_connection, t);
	assert_int_equal(e->b.calls_in_flight, 0);
}

/* A frame whose flags byte is 1: one error reply, then the connection closes. */
static void test_bad_flags(void **state)
{
	st_env *t = *state;
	uint8_t buf[HDR + 4] = { 0 };
	Doku__Bridge__V1__Reply *r;

	put_header(buf, 1, 4);
	client_write(t, buf, sizeof(buf));
	r = next_reply(t);
	assert_reply(r, 0, CODE(INVALID_ARGUMENT), "bad frame: flags byte 0x01, must be 0");
	doku__bridge__v1__reply__free_unpacked(r, NULL);
	rt_run_until(t->e, have_eof, t);
	assert_int_equal(t->in_len, 0); /* nothing after the one error reply */
	rt_run_until(t->e, no_connection, t);
	assert_int_equal(t->e->b.calls_in_flight, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_health_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_calls_one_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_envelope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_close_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_half_close_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
	};

	return cmocka_run_group_tests(tests, rt_group_setup, rt_group_teardown);
}
