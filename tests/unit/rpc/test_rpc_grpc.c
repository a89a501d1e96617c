/* Stock gRPC over HTTP/2 (io/h2.c, rpc/grpc.c) behind the real server and
 * connection (io/server.c, io/conn.c): an in-process nghttp2 client on the
 * daemon's Unix socket sends raw HTTP/2 (its own frames, and bytes written
 * by hand) and reads the responses and trailers. The fake upstream stands
 * in for DOKU, with the real tokens and journal; one loop runs it all. The
 * limits: a bad preface, a message over the cap, more streams than allowed,
 * an unknown path, a compressed message, an oversized header list; and a
 * deadline, a reset, the SNAP facts in the trailers, health Check and Watch;
 * server reflection (v1 and v1alpha, a bidi stream) from the compiled-in
 * descriptors. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <nghttp2/nghttp2.h>

#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc_reflect.h"
#include "rpc_test.h"
#include "server.h"
#include "session.h"

#define REF "cust-1"
#define BALANCE_PATH "/balance-inquiry"
#define TOPUP_PATH "/emoney/topup"
#define MAX_FRAME 65536u       /* the daemon's message cap here */
#define MAX_CALLS 2u           /* ... and its streams per connection */
#define STREAMS_MAX 16
#define FIELDS_MAX 4096u
#define BODY_MAX (256u * 1024u)
#define WALLET "/doku.wallet.v1.Wallet/"

/* One request and its response, as the client saw them. */
struct hstream {
	int32_t id;
	uint8_t req[BODY_MAX];     /* the request body to send */
	size_t req_len, req_off;
	bool req_end;              /* END_STREAM after req */
	bool req_more;             /* more of req comes later (stream_more): no end yet */
	bool count_only;           /* count the body's bytes, keep none */
	char fields[FIELDS_MAX];   /* "name: value\n" of the response, trailers included */
	size_t fields_len;
	unsigned blocks;           /* header blocks received (1: trailers-only) */
	uint8_t body[BODY_MAX];
	size_t body_len;
	bool closed;
	uint32_t error;            /* RST_STREAM's code */
};

typedef struct gt_env {
	rt_env *e;
	server *srv;
	int fd;
	bool eof;
	nghttp2_session *cs;
	struct hstream st[STREAMS_MAX];
	unsigned nst;
	bool goaway;
	unsigned pings;            /* PING acknowledgements received */
} gt_env;

/* ---- the client ------------------------------------------------------------------------- */

static struct hstream *of(gt_env *t, int32_t id)
{
	for (unsigned i = 0; i < t->nst; i++)
		if (t->st[i].id == id)
			return &t->st[i];
	return NULL;
}

static int c_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		    const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct hstream *h = of(ud, f->hd.stream_id);
	int n;

	(void)s;
	(void)flags;
	if (h == NULL)
		return 0;
	n = snprintf(h->fields + h->fields_len, sizeof(h->fields) - h->fields_len, "%.*s: %.*s\n",
		     (int)nlen, (const char *)name, (int)vlen, (const char *)value);
	assert_true(n > 0 && (size_t)n < sizeof(h->fields) - h->fields_len);
	h->fields_len += (size_t)n;
	return 0;
}

static int c_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	gt_env *t = ud;
	struct hstream *h = of(t, f->hd.stream_id);

	(void)s;
	if (f->hd.type == NGHTTP2_GOAWAY)
		t->goaway = true;
	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK) != 0)
		t->pings++;
	if (f->hd.type == NGHTTP2_HEADERS && h != NULL)
		h->blocks++;
	return 0;
}

static int c_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *p, size_t n,
		  void *ud)
{
	struct hstream *h = of(ud, id);

	(void)s;
	(void)flags;
	if (h == NULL)
		return 0;
	if (h->count_only) {
		h->body_len += n;
		return 0;
	}
	assert_true(h->body_len + n <= sizeof(h->body));
	memcpy(h->body + h->body_len, p, n);
	h->body_len += n;
	return 0;
}

static int c_close(nghttp2_session *s, int32_t id, uint32_t error, void *ud)
{
	struct hstream *h = of(ud, id);

	(void)s;
	if (h != NULL) {
		h->closed = true;
		h->error = error;
	}
	return 0;
}

static ssize_t c_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
		      nghttp2_data_source *src, void *ud)
{
	struct hstream *h = src->ptr;
	size_t k = h->req_len - h->req_off;

	(void)s;
	(void)id;
	(void)ud;
	if (k > len)
		k = len;
	if (k == 0 && h->req_more)
		return NGHTTP2_ERR_DEFERRED;
	memcpy(buf, h->req + h->req_off, k);
	h->req_off += k;
	if (h->req_off == h->req_len && !h->req_more) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (!h->req_end)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	}
	return (ssize_t)k;
}

/* Write all of data[0..n), turning the loop while the socket is full. */
static void raw_write(gt_env *t, const void *data, size_t n)
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

/* The client's turn: write what its session has, read what came. */
static void client_io(gt_env *t)
{
	uint8_t buf[16384];

	for (;;) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(t->cs, &p);

		assert_true(n >= 0);
		if (n == 0)
			break;
		raw_write(t, p, (size_t)n);
	}
	while (!t->eof) {
		ssize_t n = read(t->fd, buf, sizeof(buf));

		if (n > 0) {
			assert_int_equal(nghttp2_session_mem_recv(t->cs, buf, (size_t)n), n);
		} else if (n == 0 || errno == ECONNRESET) {
			t->eof = true;
		} else {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
			break;
		}
	}
}

static bool stream_closed(void *data)
{
	struct hstream *h = data;

	return h->closed;
}

struct wait_stream {
	gt_env *t;
	struct hstream *h;
};

static bool closed_io(void *data)
{
	struct wait_stream *w = data;

	client_io(w->t);
	return stream_closed(w->h);
}

/* Run until stream h is closed. */
static void wait_closed(gt_env *t, struct hstream *h)
{
	struct wait_stream w = { t, h };

	rt_run_until(t->e, closed_io, &w);
}

static bool eof_io(void *data)
{
	gt_env *t = data;

	client_io(t);
	return t->eof;
}

/* A field of h's response ("" when absent). */
static const char *field(const struct hstream *h, const char *name, char *out, size_t cap)
{
	char key[128];
	const char *p;

	snprintf(key, sizeof(key), "%s: ", name);
	out[0] = '\0';
	for (p = h->fields; (p = strstr(p, key)) != NULL; p++) {
		if (p == h->fields || p[-1] == '\n') {
			const char *v = p + strlen(key), *e = strchr(v, '\n');

			snprintf(out, cap, "%.*s", (int)(e - v), v);
			break;
		}
	}
	return out;
}

static void expect_field(const struct hstream *h, const char *name, const char *want)
{
	char v[1024];

	field(h, name, v, sizeof(v));
	if (strcmp(v, want) != 0)
		fail_msg("%s: \"%s\", want \"%s\"; fields:\n%s", name, v, want, h->fields);
}

static void expect_status(const struct hstream *h, int code)
{
	char want[12];

	snprintf(want, sizeof(want), "%d", code);
	expect_field(h, "grpc-status", want);
}

/* A request on path with its extra fields (name, value pairs, NULL-ended),
 * body[0..len) and END_STREAM after it when end. */
static struct hstream *request_raw(gt_env *t, const char *path, const char *ct,
				   const char *const *extra, const uint8_t *body, size_t len,
				   bool end)
{
	nghttp2_nv nv[16];
	size_t n = 0;
	struct hstream *h;
	nghttp2_data_provider prd;

#define NV(a, b) (nghttp2_nv){ (uint8_t *)(uintptr_t)(a), (uint8_t *)(uintptr_t)(b), strlen(a), strlen(b), NGHTTP2_NV_FLAG_NONE }
	assert_true(t->nst < STREAMS_MAX);
	h = &t->st[t->nst++];
	memset(h, 0, sizeof(*h));
	assert_true(len <= sizeof(h->req));
	if (len > 0)
		memcpy(h->req, body, len);
	h->req_len = len;
	h->req_end = end;
	nv[n++] = NV(":method", "POST");
	nv[n++] = NV(":scheme", "http");
	nv[n++] = NV(":authority", "localhost");
	nv[n++] = NV(":path", path);
	nv[n++] = NV("content-type", ct);
	nv[n++] = NV("te", "trailers");
	for (const char *const *e = extra; e != NULL && *e != NULL; e += 2)
		nv[n++] = NV(e[0], e[1]);
#undef NV
	prd.source.ptr = h;
	prd.read_callback = c_read;
	h->id = nghttp2_submit_request(t->cs, NULL, nv, n, &prd, NULL);
	assert_true(h->id > 0);
	return h;
}

/* A gRPC request: one message (msg packed, with its 5-byte prefix). */
static struct hstream *request(gt_env *t, const char *path, const ProtobufCMessage *msg,
			       const char *const *extra)
{
	uint8_t body[4096];
	size_t len = msg != NULL ? protobuf_c_message_get_packed_size(msg) : 0;

	assert_true(len + 5 <= sizeof(body));
	body[0] = 0;
	body[1] = (uint8_t)(len >> 24);
	body[2] = (uint8_t)(len >> 16);
	body[3] = (uint8_t)(len >> 8);
	body[4] = (uint8_t)len;
	if (msg != NULL)
		protobuf_c_message_pack(msg, body + 5);
	return request_raw(t, path, "application/grpc", extra, body, len + 5, true);
}

static struct hstream *health_check(gt_env *t, const char *service)
{
	Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	q.service = (char *)service;
	return request(t, "/grpc.health.v1.Health/Check", &q.base, NULL);
}

static struct hstream *balance(gt_env *t, const char *partner_ref, const char *const *extra)
{
	Doku__Wallet__V1__GetBalanceRequest q = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;

	q.partner_reference_no = (char *)partner_ref;
	return request(t, WALLET "GetBalance", &q.base, extra);
}

/* The response message of h (one, with its prefix), unpacked; free by the caller. */
static ProtobufCMessage *message_of(const struct hstream *h, const ProtobufCMessageDescriptor *d)
{
	uint32_t len;

	assert_true(h->body_len >= 5);
	assert_int_equal(h->body[0], 0);
	len = (uint32_t)h->body[1] << 24 | (uint32_t)h->body[2] << 16 | (uint32_t)h->body[3] << 8 |
	      h->body[4];
	assert_int_equal(h->body_len, 5 + len);
	return protobuf_c_message_unpack(d, NULL, len, h->body + 5);
}

/* ---- setup -------------------------------------------------------------------------------- */

static int connect_client(gt_env *t, uint32_t assumed_streams)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	struct sockaddr_un sa;
	int flags;

	t->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(t->fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->e->b.cfg->socket);
	assert_int_equal(connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	flags = fcntl(t->fd, F_GETFL);
	assert_int_equal(fcntl(t->fd, F_SETFL, flags | O_NONBLOCK), 0);
	t->eof = false;
	t->goaway = false;
	t->nst = 0;
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, c_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_close);
	assert_int_equal(nghttp2_option_new(&opt), 0);
	/* before the daemon's SETTINGS arrive, the client may open this many */
	nghttp2_option_set_peer_max_concurrent_streams(opt, assumed_streams);
	assert_int_equal(nghttp2_session_client_new2(&t->cs, cb, t, opt), 0);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	assert_int_equal(nghttp2_submit_settings(t->cs, NGHTTP2_FLAG_NONE, NULL, 0), 0);
	return 0;
}

static void disconnect_client(gt_env *t)
{
	if (t->cs != NULL)
		nghttp2_session_del(t->cs);
	t->cs = NULL;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

static bool no_call_in_flight(void *data)
{
	return ((gt_env *)data)->e->b.calls_in_flight == 0;
}

static bool no_connection(void *data)
{
	return server_connections(((gt_env *)data)->srv) == 0;
}

static int setup(void **state)
{
	gt_env *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->fd = -1;
	t->e = rt_env_new(true);
	t->e->b.cfg->max_frame = MAX_FRAME;
	t->e->b.cfg->max_calls = MAX_CALLS;
	rt_restore_session(t->e, REF, "acc-1", "ref-1", 3600);
	assert_int_equal(server_start(&t->e->loop, t->e->b.cfg, &session_conn_ops, &t->e->b, &t->srv), 0);
	t->e->b.srv = t->srv;
	connect_client(t, 100);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	gt_env *t = *state;

	disconnect_client(t);
	rt_run_until(t->e, no_connection, t);
	server_close(t->srv);
	t->e->b.srv = NULL;
	rt_run_until(t->e, no_call_in_flight, t);
	rt_env_free(t->e);
	free(t);
	return 0;
}

/* The next request started at the fake upstream (after the B2B token,
 * answered when it is asked first) ends with suffix: its number. */
static unsigned held_at_upstream(gt_env *t, unsigned base, const char *suffix)
{
	rt_env *e = t->e;

	while (fake_up_count(e->b.up) < base + 1) {
		client_io(t);
		uv_run(&e->loop, UV_RUN_ONCE);
	}
	if (fake_req_url_ends(fake_up_req(e->b.up, base), RT_B2B_PATH)) {
		rt_answer_b2b(e, base, "tok-A");
		base++;
		while (fake_up_count(e->b.up) < base + 1) {
			client_io(t);
			uv_run(&e->loop, UV_RUN_ONCE);
		}
	}
	assert_true(fake_req_url_ends(fake_up_req(e->b.up, base), suffix));
	return base;
}

/* ---- cases -------------------------------------------------------------------------------- */

static void test_health_check(void **state)
{
	gt_env *t = *state;
	struct hstream *a = health_check(t, ""), *b = health_check(t, "doku.wallet.v1.Wallet"), *c;
	Grpc__Health__V1__HealthCheckResponse *r;

	wait_closed(t, a);
	wait_closed(t, b);
	c = health_check(t, "no.such.Service"); /* MAX_CALLS streams at a time */
	wait_closed(t, c);
	expect_field(a, ":status", "200");
	expect_field(a, "content-type", "application/grpc");
	expect_status(a, 0);
	r = (Grpc__Health__V1__HealthCheckResponse *)message_of(
		a, &grpc__health__v1__health_check_response__descriptor);
	assert_non_null(r);
	assert_int_equal(r->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	grpc__health__v1__health_check_response__free_unpacked(r, NULL);
	expect_status(b, 0);
	expect_status(c, 5); /* NOT_FOUND */
	assert_int_equal(c->blocks, 1); /* trailers-only */
	assert_int_equal(c->body_len, 0);
}

static void test_wallet_health(void **state)
{
	gt_env *t = *state;
	Doku__Wallet__V1__HealthRequest q = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	struct hstream *h = request(t, WALLET "Health", &q.base, NULL);
	Doku__Wallet__V1__HealthResponse *r;

	wait_closed(t, h);
	assert_int_equal(h->error, 0);
	assert_int_equal(h->blocks, 2); /* headers, then trailers */
	expect_status(h, 0);
	expect_field(h, "x-doku-outcome", "DONE");
	expect_field(h, "grpc-message", "");
	r = (Doku__Wallet__V1__HealthResponse *)message_of(h, &doku__wallet__v1__health_response__descriptor);
	assert_non_null(r);
	assert_string_equal(r->version, DOKU_VERSION);
	assert_int_equal(r->connections, 1);
	doku__wallet__v1__health_response__free_unpacked(r, NULL);
}

/* The SNAP facts travel in the trailers, percent-encoded where the contract says so. */
static void test_snap_facts(void **state)
{
	gt_env *t = *state;
	const char *const md[] = { "x-doku-customer-ref", REF, NULL };
	struct hstream *h = balance(t, "bal-1", md);
	unsigned i = held_at_upstream(t, 0, BALANCE_PATH);
	char ext[64];
	Doku__Wallet__V1__GetBalanceResponse *r;

	fake_up_answer(t->e->b.up, i, 200,
		       "{\"responseCode\":\"2001100\",\"responseMessage\":\"Sukses 100% \xe2\x9c\x93\","
		       "\"accountInfos\":{\"amount\":{\"value\":\"10.00\",\"currency\":\"IDR\"}}}");
	wait_closed(t, h);
	expect_status(h, 0);
	expect_field(h, "x-doku-outcome", "DONE");
	expect_field(h, "x-doku-http-status", "200");
	expect_field(h, "x-doku-response-code", "2001100");
	expect_field(h, "x-doku-response-message", "Sukses 100%25 %E2%9C%93");
	expect_field(h, "x-doku-partner-reference-no", "bal-1");
	field(h, "x-doku-external-id", ext, sizeof(ext));
	assert_string_equal(ext, fake_req_header(fake_up_req(t->e->b.up, i), "X-EXTERNAL-ID"));
	r = (Doku__Wallet__V1__GetBalanceResponse *)message_of(
		h, &doku__wallet__v1__get_balance_response__descriptor);
	assert_non_null(r);
	doku__wallet__v1__get_balance_response__free_unpacked(r, NULL);
}

/* An unknown path or method: UNIMPLEMENTED; the connection serves on. */
static void test_unknown_path(void **state)
{
	gt_env *t = *state;
	struct hstream *a = request(t, WALLET "NoSuchMethod", NULL, NULL);
	struct hstream *b = request(t, "/no.such.Service/Call", NULL, NULL);
	struct hstream *c;

	wait_closed(t, a);
	wait_closed(t, b);
	expect_status(a, 12);
	expect_field(a, "grpc-message", "unknown method \"/doku.wallet.v1.Wallet/NoSuchMethod\"");
	expect_field(a, "x-doku-outcome", "NOT_DONE");
	expect_status(b, 12);
	c = health_check(t, "");
	wait_closed(t, c);
	expect_status(c, 0);
}

/* A content-type other than gRPC's: HTTP 415; a GET: 405. Refused before
 * it became a call, a request still counts as a failed call (the Health
 * figures, doku_bridge_calls_total of method "unknown"), as on the native
 * protocol. */
static void test_content_type(void **state)
{
	gt_env *t = *state;
	uint64_t served = t->e->b.calls_served, failed = t->e->b.calls_failed;
	uint8_t body[5] = { 0 };
	struct hstream *a = request_raw(t, WALLET "Health", "application/json", NULL, body, 5, true);
	struct hstream *b = request_raw(t, WALLET "Health", "application/grpc+proto", NULL, body, 5, true);
	struct hstream *c;

	wait_closed(t, a);
	wait_closed(t, b);
	c = request_raw(t, WALLET "Health", "application/grpc;charset=x", NULL, body, 5, true);
	wait_closed(t, c);
	expect_field(a, ":status", "415");
	expect_status(b, 0);
	expect_status(c, 0);
	assert_int_equal(t->e->b.calls_served - served, 3);
	assert_int_equal(t->e->b.calls_failed - failed, 1);
}

/* The compressed flag, or a grpc-encoding other than identity: UNIMPLEMENTED. */
static void test_compressed(void **state)
{
	gt_env *t = *state;
	uint8_t body[8] = { 1, 0, 0, 0, 3, 1, 2, 3 };
	const char *const gz[] = { "grpc-encoding", "gzip", NULL };
	const char *const id[] = { "grpc-encoding", "identity", NULL };
	struct hstream *a = request_raw(t, WALLET "Health", "application/grpc", NULL, body, 8, true);
	struct hstream *b, *c;
	uint8_t ok[5] = { 0 };

	wait_closed(t, a);
	expect_status(a, 12);
	expect_field(a, "grpc-message",
		     "compressed messages are not supported: send them uncompressed (identity)");
	b = request_raw(t, WALLET "Health", "application/grpc", gz, ok, 5, true);
	c = request_raw(t, WALLET "Health", "application/grpc", id, ok, 5, true);
	wait_closed(t, b);
	wait_closed(t, c);
	expect_status(b, 12);
	expect_status(c, 0);
}

/* A message over max_frame_bytes is refused from its prefix, before anything
 * is allocated; the rest of it is not read; the connection serves on. */
static void test_oversized(void **state)
{
	gt_env *t = *state;
	static uint8_t body[MAX_FRAME + 5 + 16];
	struct hstream *a, *b;
	uint32_t len = MAX_FRAME + 1;

	body[0] = 0;
	body[1] = (uint8_t)(len >> 24);
	body[2] = (uint8_t)(len >> 16);
	body[3] = (uint8_t)(len >> 8);
	body[4] = (uint8_t)len;
	a = request_raw(t, WALLET "Health", "application/grpc", NULL, body, sizeof(body) - 10, true);
	wait_closed(t, a);
	expect_status(a, 8); /* RESOURCE_EXHAUSTED */
	expect_field(a, "grpc-message", "message of 65537 bytes is over the cap of 65536 bytes");
	b = health_check(t, "");
	wait_closed(t, b);
	expect_status(b, 0);
}

/* Malformed: a request that ends inside its message, or has none, or two. */
static void test_malformed(void **state)
{
	gt_env *t = *state;
	uint8_t cut[8] = { 0, 0, 0, 0, 10, 1, 2, 3 };
	uint8_t two[10] = { 0 };
	struct hstream *a = request_raw(t, WALLET "Health", "application/grpc", NULL, cut, 8, true);
	struct hstream *b = request_raw(t, WALLET "Health", "application/grpc", NULL, NULL, 0, true);
	struct hstream *c;

	wait_closed(t, a);
	wait_closed(t, b);
	expect_status(a, 3);
	expect_field(a, "grpc-message", "malformed message: the request ended inside its message");
	expect_status(b, 3);
	c = request_raw(t, WALLET "Health", "application/grpc", NULL, two, 10, true);
	wait_closed(t, c);
	expect_status(c, 3);
	expect_field(c, "grpc-message", "a unary call takes one message");
}

/* A header list over the cap: RESOURCE_EXHAUSTED, the connection serves on. */
static void test_header_list(void **state)
{
	gt_env *t = *state;
	static char big[H2_HEADER_LIST_MAX + 1];
	const char *md[] = { "x-big", big, NULL };
	struct hstream *a, *b;

	memset(big, 'a', sizeof(big) - 1);
	a = health_check(t, "");
	wait_closed(t, a);
	b = request(t, "/grpc.health.v1.Health/Check", NULL, md);
	wait_closed(t, b);
	expect_status(b, 8);
	a = health_check(t, "");
	wait_closed(t, a);
	expect_status(a, 0);
}

/* More streams than max_calls_per_connection: the extra one is refused
 * (REFUSED_STREAM), the others are answered. The client opens them before
 * the daemon's SETTINGS reach it. */
static void test_too_many_streams(void **state)
{
	gt_env *t = *state;
	const char *const md[] = { "x-doku-customer-ref", REF, NULL };
	struct hstream *h[MAX_CALLS + 1];
	unsigned i;

	for (i = 0; i < MAX_CALLS + 1; i++)
		h[i] = balance(t, "bal-x", md);
	wait_closed(t, h[MAX_CALLS]);
	assert_int_equal(h[MAX_CALLS]->error, NGHTTP2_REFUSED_STREAM);
	assert_int_equal(h[MAX_CALLS]->blocks, 0);
	i = held_at_upstream(t, 0, BALANCE_PATH);
	rt_run_until_requests(t->e, i + 2);
	assert_int_equal(t->e->b.calls_in_flight, MAX_CALLS);
	rt_answer_code(t->e, i, 200, "2001100", "Successful");
	rt_answer_code(t->e, i + 1, 200, "2001100", "Successful");
	wait_closed(t, h[0]);
	wait_closed(t, h[1]);
	expect_status(h[0], 0);
	expect_status(h[1], 0);
}

/* grpc-timeout is the call's deadline: the daemon answers DEADLINE_EXCEEDED
 * itself and cancels the request to DOKU. */
static void test_deadline(void **state)
{
	gt_env *t = *state;
	const char *const md[] = { "x-doku-customer-ref", REF, "grpc-timeout", "200m", NULL };
	struct hstream *h = balance(t, "bal-dl", md);
	unsigned i = held_at_upstream(t, 0, BALANCE_PATH);

	wait_closed(t, h);
	expect_status(h, 4);
	expect_field(h, "x-doku-outcome", "NOT_DONE");
	assert_true(fake_up_req(t->e->b.up, i)->cancelled);
	assert_true(fake_up_req(t->e->b.up, i)->timeout_ms <= 200);
}

/* A malformed grpc-timeout: INVALID_ARGUMENT. */
static void test_bad_timeout(void **state)
{
	gt_env *t = *state;
	const char *const md[] = { "grpc-timeout", "123456789S", NULL };
	Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	struct hstream *h = request(t, "/grpc.health.v1.Health/Check", &q.base, md);

	wait_closed(t, h);
	expect_status(h, 3);
}

/* RST_STREAM from the caller: the call stops (a read's request is cancelled);
 * the connection serves on. */
static void test_reset(void **state)
{
	gt_env *t = *state;
	const char *const md[] = { "x-doku-customer-ref", REF, NULL };
	struct hstream *h = balance(t, "bal-rst", md);
	unsigned i = held_at_upstream(t, 0, BALANCE_PATH);
	struct hstream *c;

	assert_int_equal(nghttp2_submit_rst_stream(t->cs, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_CANCEL), 0);
	client_io(t);
	rt_run_until(t->e, no_call_in_flight, t);
	assert_true(fake_up_req(t->e->b.up, i)->cancelled);
	c = health_check(t, "");
	wait_closed(t, c);
	expect_status(c, 0);
}

/* RST_STREAM on a money-moving call already sent: it runs to its end and
 * its outcome is journaled. */
static void test_reset_money_sent(void **state)
{
	gt_env *t = *state;
	const char *const md[] = { "x-doku-customer-ref", REF, NULL };
	Doku__Wallet__V1__TopUpRequest q = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;
	struct hstream *h;
	unsigned i;

	amt.value = "10.00";
	amt.currency = "IDR";
	q.partner_reference_no = "top-rst";
	q.customer_number = "123";
	q.amount = &amt;
	q.session_id = "s";
	q.notes = "n";
	h = request(t, WALLET "TopUp", &q.base, md);
	i = held_at_upstream(t, 0, TOPUP_PATH);
	fake_up_set_sent(t->e->b.up, i);
	assert_int_equal(nghttp2_submit_rst_stream(t->cs, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_CANCEL), 0);
	wait_closed(t, h);
	for (int k = 0; k < 20; k++)
		uv_run(&t->e->loop, UV_RUN_NOWAIT);
	assert_false(fake_up_req(t->e->b.up, i)->cancelled);
	assert_int_equal(t->e->b.calls_in_flight, 1); /* detached, running */
	rt_answer_code(t->e, i, 200, "2003800", "Successful");
	rt_run_until(t->e, no_call_in_flight, t);
	assert_int_equal(t->e->b.calls_failed, 0);
}

/* A preface that is not HTTP/2's: the connection is closed; others are served. */
static void test_bad_preface(void **state)
{
	gt_env *t = *state;
	static const char bad[] = "PRI * HTTP/1.1\r\n\r\nXX\r\n\r\n";
	struct hstream *h;

	disconnect_client(t);
	rt_run_until(t->e, no_connection, t);
	connect_client(t, 100);
	nghttp2_session_del(t->cs); /* not this one's bytes: raw ones */
	t->cs = NULL;
	raw_write(t, bad, sizeof(bad) - 1);
	{
		uint8_t buf[256];
		uint64_t end = rt_now_ms() + RT_WAIT_MS;

		while (!t->eof) {
			ssize_t n = read(t->fd, buf, sizeof(buf));

			if (n == 0 || (n < 0 && errno == ECONNRESET))
				t->eof = true;
			assert_true(rt_now_ms() < end);
			uv_run(&t->e->loop, UV_RUN_ONCE);
		}
	}
	close(t->fd);
	t->fd = -1;
	rt_run_until(t->e, no_connection, t);
	connect_client(t, 100);
	h = health_check(t, "");
	wait_closed(t, h);
	expect_status(h, 0);
}

/* The native protocol beside it on the same socket: the first byte decides
 * per connection (a native frame holding an empty Call: method "" unknown). */
static void test_native_beside(void **state)
{
	gt_env *t = *state;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa;
	uint8_t frame[5] = { 0, 0, 0, 0, 0 }, in[512];
	size_t got = 0;
	struct hstream *h = health_check(t, "");
	uint64_t end = rt_now_ms() + RT_WAIT_MS;
	Doku__Bridge__V1__Reply *r;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->e->b.cfg->socket);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	assert_int_equal(write(fd, frame, 5), 5);
	while (got < 5 || got < 5u + in[4]) {
		ssize_t n = read(fd, in + got, sizeof(in) - got);

		if (n > 0)
			got += (size_t)n;
		assert_true(rt_now_ms() < end);
		client_io(t);
		uv_run(&t->e->loop, UV_RUN_ONCE);
	}
	r = doku__bridge__v1__reply__unpack(NULL, in[4], in + 5);
	assert_non_null(r);
	assert_int_equal(r->code, DOKU__BRIDGE__V1__CODE__UNIMPLEMENTED);
	doku__bridge__v1__reply__free_unpacked(r, NULL);
	close(fd);
	wait_closed(t, h);
	expect_status(h, 0);
}

static bool has_body(void *data)
{
	struct wait_stream *w = data;

	client_io(w->t);
	return w->h->body_len > 0;
}

/* Health/Watch: the status at once, the stream open; NOT_SERVING when the
 * daemon drains, then the end (grpc-status 0) and the connection's. */
static void test_watch(void **state)
{
	gt_env *t = *state;
	Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	struct hstream *h = request(t, "/grpc.health.v1.Health/Watch", &q.base, NULL), *u;
	struct wait_stream w = { t, h };
	Grpc__Health__V1__HealthCheckResponse *r;
	uint8_t first[64];
	size_t n;

	rt_run_until(t->e, has_body, &w);
	assert_false(h->closed);
	expect_field(h, ":status", "200");
	r = (Grpc__Health__V1__HealthCheckResponse *)message_of(
		h, &grpc__health__v1__health_check_response__descriptor);
	assert_int_equal(r->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	grpc__health__v1__health_check_response__free_unpacked(r, NULL);
	n = h->body_len;
	assert_true(n <= sizeof(first));
	memcpy(first, h->body, n);
	q.service = "no.such.Service";
	u = request(t, "/grpc.health.v1.Health/Watch", &q.base, NULL);
	w.h = u;
	rt_run_until(t->e, has_body, &w);
	r = (Grpc__Health__V1__HealthCheckResponse *)message_of(
		u, &grpc__health__v1__health_check_response__descriptor);
	assert_int_equal(r->status,
			 GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN);
	grpc__health__v1__health_check_response__free_unpacked(r, NULL);

	t->e->b.draining = true;
	server_drain(t->srv);
	wait_closed(t, h);
	wait_closed(t, u);
	expect_status(h, 0);
	assert_int_equal(h->error, 0);
	/* the second message: NOT_SERVING */
	assert_true(h->body_len > n);
	memmove(h->body, h->body + n, h->body_len - n);
	h->body_len -= n;
	r = (Grpc__Health__V1__HealthCheckResponse *)message_of(
		h, &grpc__health__v1__health_check_response__descriptor);
	assert_int_equal(r->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
	grpc__health__v1__health_check_response__free_unpacked(r, NULL);
	rt_run_until(t->e, eof_io, t);
	rt_run_until(t->e, no_connection, t);
}

/* Draining: a GOAWAY; the connection closes once idle. */
static void test_drain(void **state)
{
	gt_env *t = *state;
	struct hstream *h = health_check(t, "");

	wait_closed(t, h);
	t->e->b.draining = true;
	server_drain(t->srv);
	rt_run_until(t->e, eof_io, t);
	assert_true(t->goaway);
	rt_run_until(t->e, no_connection, t);
}

/* ---- server reflection ---------------------------------------------------------------------- */

#define REFLECT_V1 "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define REFLECT_V1ALPHA "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#define REQ_CASE(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x
#define RESP_CASE(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x

typedef Grpc__Reflection__V1__ServerReflectionRequest rreq;
typedef Grpc__Reflection__V1__ServerReflectionResponse rresp;

/* Append q, packed with its 5-byte prefix, to buf[*len..cap). */
static void rmsg(uint8_t *buf, size_t cap, size_t *len, const rreq *q)
{
	size_t n = grpc__reflection__v1__server_reflection_request__get_packed_size(q);

	assert_true(*len + 5 + n <= cap);
	buf[*len] = 0;
	buf[*len + 1] = (uint8_t)(n >> 24);
	buf[*len + 2] = (uint8_t)(n >> 16);
	buf[*len + 3] = (uint8_t)(n >> 8);
	buf[*len + 4] = (uint8_t)n;
	grpc__reflection__v1__server_reflection_request__pack(q, buf + *len + 5);
	*len += 5 + n;
}

static rreq rq(int which, const char *s)
{
	rreq q = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;

	q.host = "localhost";
	q.message_request_case = which;
	switch (which) {
	case REQ_CASE(FILE_BY_FILENAME): q.file_by_filename = (char *)s; break;
	case REQ_CASE(FILE_CONTAINING_SYMBOL): q.file_containing_symbol = (char *)s; break;
	case REQ_CASE(ALL_EXTENSION_NUMBERS_OF_TYPE): q.all_extension_numbers_of_type = (char *)s; break;
	case REQ_CASE(LIST_SERVICES): q.list_services = (char *)s; break;
	default: break;
	}
	return q;
}

/* The next response message of h's body from *off, unpacked (free by the caller). */
static rresp *next_resp(const struct hstream *h, size_t *off)
{
	uint32_t len;
	rresp *r;

	assert_true(h->body_len >= *off + 5);
	assert_int_equal(h->body[*off], 0);
	len = (uint32_t)h->body[*off + 1] << 24 | (uint32_t)h->body[*off + 2] << 16 |
	      (uint32_t)h->body[*off + 3] << 8 | h->body[*off + 4];
	assert_true(h->body_len >= *off + 5 + len);
	r = grpc__reflection__v1__server_reflection_response__unpack(NULL, len, h->body + *off + 5);
	assert_non_null(r);
	*off += 5 + len;
	return r;
}

/* r answers with exactly one file, named name, of package pkg. */
static void expect_file(rresp *r, const char *name, const char *pkg)
{
	Google__Protobuf__FileDescriptorProto *fd;

	assert_int_equal(r->message_response_case, RESP_CASE(FILE_DESCRIPTOR_RESPONSE));
	assert_int_equal(r->file_descriptor_response->n_file_descriptor_proto, 1);
	fd = google__protobuf__file_descriptor_proto__unpack(
		NULL, r->file_descriptor_response->file_descriptor_proto[0].len,
		r->file_descriptor_response->file_descriptor_proto[0].data);
	assert_non_null(fd);
	assert_string_equal(fd->name, name);
	assert_string_equal(fd->package, pkg);
	google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
	grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

static void expect_not_found(rresp *r, const char *msg)
{
	assert_int_equal(r->message_response_case, RESP_CASE(ERROR_RESPONSE));
	assert_int_equal(r->error_response->error_code, 5);
	assert_string_equal(r->error_response->error_message, msg);
	grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

/* Every kind of request on one stream, answered in order from the
 * descriptors protoc compiled in; what is not there: NOT_FOUND, in the stream. */
static void test_reflection(void **state)
{
	gt_env *t = *state;
	static uint8_t body[8192];
	size_t len = 0, off = 0;
	const char *syms[][3] = {
		{ "doku.wallet.v1.Wallet", "doku/wallet/v1/wallet.proto", "doku.wallet.v1" },
		{ "doku.wallet.v1.Wallet.GetBalance", "doku/wallet/v1/wallet.proto", "doku.wallet.v1" },
		{ "doku.wallet.v1.GetBalanceRequest", "doku/wallet/v1/wallet.proto", "doku.wallet.v1" },
		{ "doku.wallet.v1.OPERATION_STATE_DONE", "doku/wallet/v1/wallet.proto", "doku.wallet.v1" },
		{ "doku.bridge.v1.Call.customer_ref", "doku/bridge/v1/bridge.proto", "doku.bridge.v1" },
		{ "grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto",
		  "grpc.health.v1" },
		{ "grpc.health.v1.HealthCheckResponse.SERVING", "grpc/health/v1/health.proto",
		  "grpc.health.v1" },
		{ "grpc.reflection.v1.ServerReflectionRequest.message_request",
		  "grpc/reflection/v1/reflection.proto", "grpc.reflection.v1" },
		{ "grpc.reflection.v1alpha.ServerReflection", "grpc/reflection/v1alpha/reflection.proto",
		  "grpc.reflection.v1alpha" },
	};
	const char *const services[] = { "doku.wallet.v1.Wallet", "grpc.health.v1.Health",
					 "grpc.reflection.v1.ServerReflection",
					 "grpc.reflection.v1alpha.ServerReflection" };
	rreq q;
	Grpc__Reflection__V1__ExtensionRequest x = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
	struct hstream *h;
	rresp *r;

	q = rq(REQ_CASE(LIST_SERVICES), "*");
	rmsg(body, sizeof(body), &len, &q);
	q = rq(REQ_CASE(FILE_BY_FILENAME), "doku/wallet/v1/wallet.proto");
	rmsg(body, sizeof(body), &len, &q);
	q = rq(REQ_CASE(FILE_BY_FILENAME), "doku/bridge/v1/bridge.proto");
	rmsg(body, sizeof(body), &len, &q);
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		q = rq(REQ_CASE(FILE_CONTAINING_SYMBOL), syms[i][0]);
		rmsg(body, sizeof(body), &len, &q);
	}
	q = rq(REQ_CASE(FILE_CONTAINING_SYMBOL), "doku.wallet.v1.Wallet.NoSuchMethod");
	rmsg(body, sizeof(body), &len, &q);
	q = rq(REQ_CASE(FILE_CONTAINING_SYMBOL), "doku.wallet");
	rmsg(body, sizeof(body), &len, &q);
	q = rq(REQ_CASE(FILE_BY_FILENAME), "wallet.proto");
	rmsg(body, sizeof(body), &len, &q);
	q = rq(REQ_CASE(FILE_CONTAINING_EXTENSION), NULL);
	x.containing_type = "doku.wallet.v1.Amount";
	x.extension_number = 100;
	q.file_containing_extension = &x;
	rmsg(body, sizeof(body), &len, &q);
	q = rq(REQ_CASE(ALL_EXTENSION_NUMBERS_OF_TYPE), "doku.wallet.v1.Amount");
	rmsg(body, sizeof(body), &len, &q);
	q = rq(REQ_CASE(ALL_EXTENSION_NUMBERS_OF_TYPE), "doku.wallet.v1.Wallet");
	rmsg(body, sizeof(body), &len, &q);
	q = rq(0, NULL);
	rmsg(body, sizeof(body), &len, &q);

	h = request_raw(t, REFLECT_V1, "application/grpc", NULL, body, len, true);
	wait_closed(t, h);
	expect_field(h, ":status", "200");
	expect_status(h, 0);
	assert_int_equal(h->error, 0);

	r = next_resp(h, &off);
	assert_string_equal(r->valid_host, "localhost");
	assert_int_equal(r->original_request->message_request_case, REQ_CASE(LIST_SERVICES));
	assert_int_equal(r->message_response_case, RESP_CASE(LIST_SERVICES_RESPONSE));
	assert_int_equal(r->list_services_response->n_service, 4);
	for (size_t i = 0; i < 4; i++) {
		bool found = false;

		for (size_t k = 0; k < 4; k++)
			found = found || strcmp(r->list_services_response->service[k]->name,
						services[i]) == 0;
		assert_true(found);
	}
	grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
	expect_file(next_resp(h, &off), "doku/wallet/v1/wallet.proto", "doku.wallet.v1");
	expect_file(next_resp(h, &off), "doku/bridge/v1/bridge.proto", "doku.bridge.v1");
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		r = next_resp(h, &off);
		assert_string_equal(r->original_request->file_containing_symbol, syms[i][0]);
		expect_file(r, syms[i][1], syms[i][2]);
	}
	expect_not_found(next_resp(h, &off), "symbol not found: doku.wallet.v1.Wallet.NoSuchMethod");
	expect_not_found(next_resp(h, &off), "symbol not found: doku.wallet");
	expect_not_found(next_resp(h, &off), "file not found: wallet.proto");
	expect_not_found(next_resp(h, &off), "extension not found: doku.wallet.v1.Amount");
	r = next_resp(h, &off);
	assert_int_equal(r->message_response_case, RESP_CASE(ALL_EXTENSION_NUMBERS_RESPONSE));
	assert_string_equal(r->all_extension_numbers_response->base_type_name, "doku.wallet.v1.Amount");
	assert_int_equal(r->all_extension_numbers_response->n_extension_number, 0);
	grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
	expect_not_found(next_resp(h, &off), "message type not found: doku.wallet.v1.Wallet");
	r = next_resp(h, &off);
	assert_int_equal(r->message_response_case, RESP_CASE(ERROR_RESPONSE));
	assert_int_equal(r->error_response->error_code, 3);
	grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
	assert_int_equal(off, h->body_len);
}

/* Add q (or, with q NULL, bytes) to h's request, END_STREAM after it when end. */
static void stream_more(gt_env *t, struct hstream *h, const rreq *q, const uint8_t *raw,
			size_t n, bool end)
{
	int rc;

	if (q != NULL) {
		rmsg(h->req, sizeof(h->req), &h->req_len, q);
	} else {
		assert_true(h->req_len + n <= sizeof(h->req));
		memcpy(h->req + h->req_len, raw, n);
		h->req_len += n;
	}
	h->req_more = !end;
	h->req_end = end;
	rc = nghttp2_session_resume_data(t->cs, h->id);
	assert_true(rc == 0 || rc == NGHTTP2_ERR_INVALID_ARGUMENT); /* the latter: not deferred yet */
	client_io(t);
}

/* v1alpha, a real bidi stream: each answer comes while the request stays
 * open; the end of the request ends the response, OK. */
static void test_reflection_bidi(void **state)
{
	gt_env *t = *state;
	struct hstream *h = request_raw(t, REFLECT_V1ALPHA, "application/grpc", NULL, NULL, 0, false);
	struct wait_stream w = { t, h };
	rreq q = rq(REQ_CASE(LIST_SERVICES), "");
	size_t off = 0;
	rresp *r;

	h->req_more = true;
	stream_more(t, h, &q, NULL, 0, false);
	rt_run_until(t->e, has_body, &w);
	assert_false(h->closed);
	r = next_resp(h, &off);
	assert_int_equal(r->list_services_response->n_service, 4);
	grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
	q = rq(REQ_CASE(FILE_CONTAINING_SYMBOL), "grpc.health.v1.Health.Watch");
	stream_more(t, h, &q, NULL, 0, true);
	wait_closed(t, h);
	expect_status(h, 0);
	assert_int_equal(h->blocks, 2);
	expect_file(next_resp(h, &off), "grpc/health/v1/health.proto", "grpc.health.v1");
	assert_int_equal(off, h->body_len);
}

/* A request that does not decode ends the stream (INVALID_ARGUMENT) after
 * the answers before it; one over the cap: RESOURCE_EXHAUSTED at once. */
static void test_reflection_malformed(void **state)
{
	gt_env *t = *state;
	uint8_t body[256], bad[7] = { 0, 0, 0, 0, 2, 0xff, 0xff };
	uint8_t big[5] = { 0, 0, 0, 0x10, 0x01 }; /* 4097 bytes */
	size_t len = 0, off = 0;
	rreq q = rq(REQ_CASE(LIST_SERVICES), "");
	struct hstream *a, *b;

	rmsg(body, sizeof(body), &len, &q);
	memcpy(body + len, bad, sizeof(bad));
	len += sizeof(bad);
	a = request_raw(t, REFLECT_V1, "application/grpc", NULL, body, len, true);
	b = request_raw(t, REFLECT_V1, "application/grpc", NULL, big, sizeof(big), false);
	wait_closed(t, a);
	wait_closed(t, b);
	assert_int_equal(a->blocks, 2);
	expect_status(a, 3);
	grpc__reflection__v1__server_reflection_response__free_unpacked(next_resp(a, &off), NULL);
	assert_int_equal(off, a->body_len);
	assert_int_equal(b->blocks, 1); /* trailers-only */
	expect_status(b, 8);
	expect_field(b, "grpc-message", "message of 4097 bytes is over the cap of 4096 bytes");
	a = health_check(t, "");
	wait_closed(t, a);
	expect_status(a, 0);
}

static bool ping_io(void *data)
{
	gt_env *t = data;

	client_io(t);
	return t->pings > 0;
}

/* A peer that asks without reading the answers (its stream window 0): past
 * GRPC_REFLECT_QUEUE_MAX of them queued, the stream ends RESOURCE_EXHAUSTED. */
static void test_reflection_unread(void **state)
{
	gt_env *t = *state;
	nghttp2_settings_entry iv = { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0 };
	static uint8_t body[BODY_MAX];
	size_t len = 0, per;
	rreq q = rq(REQ_CASE(FILE_BY_FILENAME), "doku/wallet/v1/wallet.proto");
	struct hstream *h;
	unsigned n;

	assert_int_equal(nghttp2_submit_settings(t->cs, NGHTTP2_FLAG_NONE, &iv, 1), 0);
	rmsg(body, sizeof(body), &len, &q);
	per = len;
	n = 2 * GRPC_REFLECT_QUEUE_MAX / 8192u; /* an answer is well over 8 KiB */
	assert_true(n * per <= sizeof(body));
	for (unsigned i = 1; i < n; i++)
		rmsg(body, sizeof(body), &len, &q);
	h = request_raw(t, REFLECT_V1, "application/grpc", NULL, body, len, false);
	h->count_only = true;
	h->req_more = true;
	client_io(t); /* the requests, written ... */
	t->pings = 0;
	assert_int_equal(nghttp2_submit_ping(t->cs, NGHTTP2_FLAG_NONE, NULL), 0);
	rt_run_until(t->e, ping_io, t); /* ... and read, once the PING after them is answered */
	assert_false(h->closed);
	assert_int_equal(nghttp2_submit_window_update(t->cs, NGHTTP2_FLAG_NONE, h->id, 1 << 30), 0);
	wait_closed(t, h);
	expect_status(h, 8);
	expect_field(h, "grpc-message", "over 1048576 bytes of answers not read");
	assert_true(h->body_len <= GRPC_REFLECT_QUEUE_MAX);
}

/* Draining: an open reflection stream ends UNAVAILABLE, the connection closes. */
static void test_reflection_drain(void **state)
{
	gt_env *t = *state;
	struct hstream *h = request_raw(t, REFLECT_V1, "application/grpc", NULL, NULL, 0, false);
	struct wait_stream w = { t, h };
	rreq q = rq(REQ_CASE(LIST_SERVICES), "");

	h->req_more = true;
	stream_more(t, h, &q, NULL, 0, false);
	rt_run_until(t->e, has_body, &w);
	t->e->b.draining = true;
	server_drain(t->srv);
	wait_closed(t, h);
	expect_status(h, 14);
	rt_run_until(t->e, eof_io, t);
	rt_run_until(t->e, no_connection, t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_health_check),
		T(test_wallet_health),
		T(test_snap_facts),
		T(test_unknown_path),
		T(test_content_type),
		T(test_compressed),
		T(test_oversized),
		T(test_malformed),
		T(test_header_list),
		T(test_too_many_streams),
		T(test_deadline),
		T(test_bad_timeout),
		T(test_reset),
		T(test_reset_money_sent),
		T(test_bad_preface),
		T(test_native_beside),
		T(test_drain),
		T(test_watch),
		T(test_reflection),
		T(test_reflection_bidi),
		T(test_reflection_malformed),
		T(test_reflection_unread),
		T(test_reflection_drain),
#undef T
	};

	return cmocka_run_group_tests(tests, rt_group_setup, rt_group_teardown);
}
