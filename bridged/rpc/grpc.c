/* Stock gRPC on HTTP/2 streams: each stream one call (grpc.h). */
#include "grpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "bridge.h"
#include "call.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "grpc_health.h"
#include "grpc_reflect.h"
#include "list.h"
#include "log.h"
#include "reply.h"
#include "snap_frame.h"
#include "tokens.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x
#define OUT(x) DOKU__BRIDGE__V1__OUTCOME__OUTCOME_##x

#define CT_GRPC "application/grpc"
#define CT_GRPC_LEN (sizeof(CT_GRPC) - 1)
#define CT_PROTO "+proto"
#define CT_PROTO_LEN (sizeof(CT_PROTO) - 1)
#define GRPC_ENCODING_MAX 32u     /* a grpc-encoding kept for the message */
#define GRPC_WHY_MAX 192u         /* the text of a refusal before a call */
#define GRPC_TIMEOUT_DIGITS 8u    /* gRPC: TimeoutValue = 1*8DIGIT */

/* A connection that speaks gRPC. */
struct gconn {
	struct bridge *b;
	conn *conn;
	struct list_node streams;    /* struct gstream */
};

/* One stream: one unary call. */
struct gstream {
	struct list_node node;
	struct gconn *g;
	int32_t id;
	/* the request's header block */
	char path[GRPC_PATH_MAX + 1];
	char profile[CONFIG_NAME_MAX + 2];   /* one byte more than a name: a longer one matches none */
	char ref[TOK_REF_MAX + 2];           /* likewise: a longer one is not a valid ref */
	char encoding[GRPC_ENCODING_MAX + 1];
	bool post, grpc_ct, bad_encoding, bad_timeout;
	uint32_t timeout_ms;                 /* 0: none given */
	enum grpc_health_rpc health;
	bool reflect;                        /* ServerReflectionInfo: a bidi stream of messages */
	bool responded;                      /* the response's header block is queued */
	/* the message */
	uint8_t prefix[SNAP_FRAME_HEADER];
	unsigned prefix_got;
	uint8_t *msg;                        /* the call's frame buffer, health_req, or (reflection) malloc'd */
	uint32_t msg_len, msg_got;
	call *call;                          /* its call: being read, or (started) in flight */
	bool started;                        /* call_start was done: done() or detach ends it */
	bool answered;                       /* the response is queued: nothing more is read */
	bool watching;                       /* Health/Watch: its stream stays open until a drain */
	uint8_t health_req[GRPC_HEALTH_REQUEST_MAX];
};

static bool eq(const char *name, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(name, lit, n) == 0;
}

/* grpc-status's value: gRPC's codes (0 to 16) from a table, another in buf. */
static const char *code_text(int code, char *buf, size_t cap)
{
	static const char *const text[] = { "0", "1", "2", "3", "4", "5", "6", "7", "8",
					    "9", "10", "11", "12", "13", "14", "15", "16" };

	if (code >= 0 && (size_t)code < sizeof(text) / sizeof(text[0]))
		return text[code];
	snprintf(buf, cap, "%d", code);
	return buf;
}

/* v in decimal into out (room for its digits and the NUL). */
static const char *unsigned_text(unsigned v, char *out)
{
	char tmp[sizeof(unsigned) * 3];
	size_t n = 0, k = 0;

	do {
		tmp[n++] = (char)('0' + v % 10u);
		v /= 10u;
	} while (v > 0);
	while (n > 0)
		out[k++] = tmp[--n];
	out[k] = '\0';
	return out;
}

/* Copy value[0..n) into dst (cap bytes with the NUL), cut at cap - 1. */
static void keep(char *dst, size_t cap, const char *value, size_t n)
{
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, value, n);
	dst[n] = '\0';
}

/* gRPC's percent-encoding of s into out (cap bytes with the NUL): bytes
 * outside 0x20..0x7E, and '%' when pct (a percent-encoded field; then also
 * a space at either end, which a field value may not have). Cut, never
 * inside an escape, at cap - 1. */
static size_t encode(const char *s, bool pct, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0, len = strlen(s);

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool esc = ch < 0x20 || ch > 0x7e ||
			   (pct && (ch == '%' || (ch == ' ' && (i == 0 || i == len - 1))));

		if (n + (esc ? 3u : 1u) > cap - 1)
			break;
		if (esc) {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		} else {
			out[n++] = (char)ch;
		}
	}
	out[n] = '\0';
	return n;
}

/* grpc-timeout ("1*8DIGIT unit", unit one of H M S m u n) in ms, rounded up,
 * at least 1, at most UINT32_MAX. false: malformed. */
static bool parse_timeout(const char *v, size_t n, uint32_t *ms)
{
	uint64_t x = 0, t;

	if (n < 2 || n > GRPC_TIMEOUT_DIGITS + 1)
		return false;
	for (size_t i = 0; i + 1 < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10u + (uint64_t)(v[i] - '0');
	}
	switch (v[n - 1]) {
	case 'H': t = x * 3600000u; break;
	case 'M': t = x * 60000u; break;
	case 'S': t = x * 1000u; break;
	case 'm': t = x; break;
	case 'u': t = (x + 999u) / 1000u; break;
	case 'n': t = (x + 999999u) / 1000000u; break;
	default: return false;
	}
	*ms = t == 0 ? 1u : t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
	return true;
}

/* application/grpc or application/grpc+proto, parameters allowed. */
static bool grpc_content_type(const char *v, size_t n)
{
	if (n < CT_GRPC_LEN || memcmp(v, CT_GRPC, CT_GRPC_LEN) != 0)
		return false;
	v += CT_GRPC_LEN;
	n -= CT_GRPC_LEN;
	if (n >= CT_PROTO_LEN && memcmp(v, CT_PROTO, CT_PROTO_LEN) == 0) {
		v += CT_PROTO_LEN;
		n -= CT_PROTO_LEN;
	}
	return n == 0 || v[0] == ';';
}

static uint64_t now_ms(const struct gstream *s)
{
	return uv_now(s->g->b->loop);
}

/* ---- answers -------------------------------------------------------------------------- */

#define FIELD(n, v) ((h2_field){ (n), (v), strlen(v) })

/* A call that was read but never started goes. */
static void drop_unstarted(struct gstream *s)
{
	if (s->call != NULL && !s->started) {
		call_discard(s->call);
		s->call = NULL;
	}
}

/* An answer before any call: ":status" (200 for a gRPC error), and the
 * gRPC status in the same block (trailers-only). Only from inside h2's
 * callbacks, whose caller (io/conn.c) writes the output after them. */
static void refuse_http(struct gstream *s, const char *status, int code, const char *why)
{
	struct gconn *g = s->g;
	char scode[12], msg[GRPC_VALUE_MAX + 1];
	h2_field f[4];
	size_t n = 0;

	drop_unstarted(s);
	s->answered = true;
	call_count_refusal(g->b, code);
	encode(why, true, msg, sizeof(msg));
	f[n++] = FIELD(":status", status);
	f[n++] = FIELD("content-type", CT_GRPC);
	f[n++] = FIELD("grpc-status", code_text(code, scode, sizeof(scode)));
	f[n++] = FIELD("grpc-message", msg);
	(void)h2_end(conn_h2(g->conn), s->id, f, n, now_ms(s));
	log_msg(LOG_LVL_WARNING, "grpc conn=%llu uid=%lu stream=%d %.64s: refused before a call: %s %s",
		(unsigned long long)conn_number(g->conn), (unsigned long)conn_peer(g->conn)->uid, s->id,
		s->path[0] ? s->path : "-", reply_code_name(code), why);
}

__attribute__((format(printf, 3, 4)))
static void refuse(struct gstream *s, int code, const char *fmt, ...)
{
	char why[GRPC_WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	refuse_http(s, "200", code, why);
}

/* The response's header block: ":status" 200, once. */
static int open_response(struct gstream *s)
{
	h2_field f[2] = { FIELD(":status", "200"), FIELD("content-type", CT_GRPC) };
	int rc;

	if (s->responded)
		return 0;
	rc = h2_response(conn_h2(s->g->conn), s->id, f, 2);
	s->responded = rc == 0;
	return rc;
}

/* One message of the response: 5-byte prefix, then its bytes. */
static int send_message(struct gstream *s, const uint8_t *msg, size_t len)
{
	h2 *h = conn_h2(s->g->conn);
	uint8_t prefix[SNAP_FRAME_HEADER];
	int rc;

	snap_frame_header_write(prefix, (uint32_t)len);
	rc = h2_body(h, s->id, prefix, sizeof(prefix));
	if (rc == 0 && len > 0)
		rc = h2_body(h, s->id, msg, len);
	return rc;
}

/* ":status" 200 and the message (none: msg NULL); nothing more is read. */
static int respond(struct gstream *s, const uint8_t *msg, size_t len)
{
	int rc;

	s->answered = true;
	rc = open_response(s);
	if (rc != 0 || msg == NULL)
		return rc;
	return send_message(s, msg, len);
}

/* The trailers of a call's result: the status, then the SNAP facts that
 * the native Reply carries (its non-empty fields). */
static void end_with_facts(struct gstream *s, int code, const char *status, const reply_facts *f)
{
	enum { V_STATUS, V_MSG, V_HTTP, V_RC, V_RMSG, V_EXT, V_REF, V_DETAIL, V_N };
	char v[V_N][GRPC_VALUE_MAX + 1];
	h2_field t[V_N + 1];
	size_t n = 0;

	t[n++] = FIELD("grpc-status", code_text(code, v[V_STATUS], sizeof(v[V_STATUS])));
	if (status != NULL && status[0] != '\0') {
		encode(status, true, v[V_MSG], sizeof(v[V_MSG]));
		t[n++] = FIELD("grpc-message", v[V_MSG]);
	}
	if (f != NULL) {
		if (f->outcome != OUT(UNSPECIFIED))
			t[n++] = FIELD("x-doku-outcome", reply_outcome_name(f->outcome));
		if (f->http != 0) {
			t[n++] = FIELD("x-doku-http-status", unsigned_text(f->http, v[V_HTTP]));
		}
		if (f->response_code != NULL && f->response_code[0] != '\0') {
			encode(f->response_code, false, v[V_RC], sizeof(v[V_RC]));
			t[n++] = FIELD("x-doku-response-code", v[V_RC]);
		}
		if (f->response_message != NULL && f->response_message[0] != '\0') {
			encode(f->response_message, true, v[V_RMSG], sizeof(v[V_RMSG]));
			t[n++] = FIELD("x-doku-response-message", v[V_RMSG]);
		}
		if (f->external_id != NULL && f->external_id[0] != '\0') {
			encode(f->external_id, false, v[V_EXT], sizeof(v[V_EXT]));
			t[n++] = FIELD("x-doku-external-id", v[V_EXT]);
		}
		if (f->partner_reference_no != NULL && f->partner_reference_no[0] != '\0') {
			encode(f->partner_reference_no, false, v[V_REF], sizeof(v[V_REF]));
			t[n++] = FIELD("x-doku-partner-reference-no", v[V_REF]);
		}
		/* the status text whatever the code: grpc-message is dropped on OK */
		if (status != NULL && status[0] != '\0') {
			encode(status, true, v[V_DETAIL], sizeof(v[V_DETAIL]));
			t[n++] = FIELD("x-doku-detail", v[V_DETAIL]);
		}
	}
	if (h2_end(conn_h2(s->g->conn), s->id, t, n, now_ms(s)) != 0)
		h2_reset(conn_h2(s->g->conn), s->id, H2_INTERNAL_ERROR);
}

/* The call ended: its reply goes out, and its call slot is free. Runs
 * inside an h2 callback (a call answered at once) or on its own (later). */
static void on_call_done(call *c, void *data)
{
	struct gstream *s = data;
	struct gconn *g = s->g;
	ProtobufCBinaryData msg;
	reply_facts f;
	bool too_big;
	int code;
	const char *status;

	call_result(c, &f);
	s->call = NULL; /* the stream is not the call's any more */
	s->started = false;
	reply_message(&f, call_arena(c), conn_max_frame(g->conn), &msg, &too_big);
	code = too_big ? CODE(RESOURCE_EXHAUSTED) : f.code;
	status = too_big ? REPLY_TOO_BIG : f.status;
	if (respond(s, msg.data, msg.len) != 0)
		h2_reset(conn_h2(g->conn), s->id, H2_INTERNAL_ERROR);
	else
		end_with_facts(s, code, status, &f);
	conn_release(g->conn);
	conn_flush(g->conn); /* last: writing may close the stream, and free s */
}

/* grpc.health.v1.Health: Check, or Watch's first answer (its stream then
 * stays open: the next answer, NOT_SERVING, comes when the daemon drains).
 * The caller must be one the ACL knows, as for any call. */
static void health(struct gstream *s)
{
	struct gconn *g = s->g;
	const peer *pr = conn_peer(g->conn);
	bool watch = s->health == GRPC_HEALTH_WATCH;
	uint8_t out[GRPC_HEALTH_RESPONSE_MAX];
	char why[GRPC_HEALTH_WHY_MAX];
	size_t n;
	int code;

	if (!config_acl_knows(g->b->cfg, pr)) {
		refuse(s, CODE(PERMISSION_DENIED), "uid %lu may not use this daemon",
		       (unsigned long)pr->uid);
		return;
	}
	code = grpc_health_answer(!g->b->draining, watch, s->msg, s->msg_len, out, &n, why);
	if (code != CODE(OK)) {
		refuse(s, code, "%s", why);
		return;
	}
	if (respond(s, out, n) != 0)
		h2_reset(conn_h2(g->conn), s->id, H2_INTERNAL_ERROR);
	else if (!watch || g->b->draining)
		end_with_facts(s, code, NULL, NULL);
	else
		s->watching = true;
}

/* A stream that fails midway: before its response began, a trailers-only
 * refusal; after it (a reflection stream that answered already), the
 * status in its trailers. */
__attribute__((format(printf, 3, 4)))
static void fail(struct gstream *s, int code, const char *fmt, ...)
{
	char why[GRPC_WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!s->responded) {
		refuse_http(s, "200", code, why);
		return;
	}
	s->answered = true;
	end_with_facts(s, code, why, NULL);
	log_msg(LOG_LVL_WARNING, "grpc conn=%llu uid=%lu stream=%d %.64s: ended: %s %s",
		(unsigned long long)conn_number(s->g->conn),
		(unsigned long)conn_peer(s->g->conn)->uid, s->id, s->path,
		reply_code_name(code), why);
}

/* Server reflection: one ServerReflectionRequest is in (s->msg); its answer
 * follows those before it on the stream, whose request stays open. The
 * answers the peer has not taken are bounded (GRPC_REFLECT_QUEUE_MAX). */
static void reflect_one(struct gstream *s)
{
	h2 *h = conn_h2(s->g->conn);
	char why[GRPC_REFLECT_WHY_MAX];
	uint8_t *out;
	size_t n;
	int code = grpc_reflect_answer(s->msg, s->msg_len, &out, &n, why);

	free(s->msg);
	s->msg = NULL;
	s->prefix_got = 0;
	s->msg_len = s->msg_got = 0;
	if (code != CODE(OK)) {
		fail(s, code, "%s", why);
		return;
	}
	if (h2_queued(h, s->id) + n > GRPC_REFLECT_QUEUE_MAX)
		fail(s, CODE(RESOURCE_EXHAUSTED), "over %u bytes of answers not read",
		     GRPC_REFLECT_QUEUE_MAX);
	else if (open_response(s) != 0 || send_message(s, out, n) != 0) {
		s->answered = true;
		(void)h2_reset(h, s->id, H2_INTERNAL_ERROR);
	} else
		h2_touch(h, s->id, now_ms(s));
	free(out);
}

/* The reflection stream's request ended: so does the response, OK. */
static void reflect_end(struct gstream *s)
{
	if (s->prefix_got > 0) {
		fail(s, CODE(INVALID_ARGUMENT), "malformed message: the request ended inside its message");
		return;
	}
	s->answered = true;
	if (open_response(s) != 0)
		h2_reset(conn_h2(s->g->conn), s->id, H2_INTERNAL_ERROR);
	else
		end_with_facts(s, CODE(OK), NULL, NULL);
}

/* The request is complete: the call starts, as session.c starts a frame's. */
static void start_call(struct gstream *s)
{
	struct gconn *g = s->g;
	const peer *pr = conn_peer(g->conn);
	Doku__Bridge__V1__Call env = DOKU__BRIDGE__V1__CALL__INIT;
	admission a;

	env.id = (uint64_t)s->id;
	env.method = s->path;
	env.message.data = s->msg;
	env.message.len = s->msg_len;
	env.timeout_ms = s->timeout_ms;
	env.profile = s->profile;
	env.customer_ref = s->ref;
	admit(call_arena(s->call), &env, pr, g->b->cfg, &a);
	s->started = true;
	conn_hold(g->conn);
	call_start(s->call, &a, env.id, pr->uid, conn_number(g->conn), on_call_done, s);
}

/* ---- h2's upper layer ------------------------------------------------------------------- */

void *grpc_open(conn *c, void *data)
{
	struct gconn *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->b = data;
	g->conn = c;
	list_init(&g->streams);
	return g;
}

static void *on_stream_open(void *user, int32_t id)
{
	struct gconn *g = user;
	struct gstream *s;

	if (g->b->draining)
		return NULL; /* refused: the caller may retry it elsewhere */
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->g = g;
	s->id = id;
	list_add_tail(&g->streams, &s->node);
	return s;
}

/* The fields a call reads, told apart by their length first: a request
 * carries about ten fields, most of them read by none. */
static void on_header(void *user, void *st, const char *name, size_t nlen, const char *value,
		      size_t vlen)
{
	struct gstream *s = st;

	(void)user;
	switch (nlen) {
	case sizeof(":path") - 1:
		if (eq(name, nlen, ":path"))
			keep(s->path, sizeof(s->path), value, vlen > GRPC_PATH_MAX ? 0 : vlen);
		break;
	case sizeof(":method") - 1:
		if (eq(name, nlen, ":method"))
			s->post = eq(value, vlen, "POST");
		break;
	case sizeof("content-type") - 1: /* and grpc-timeout */
		if (eq(name, nlen, "content-type"))
			s->grpc_ct = grpc_content_type(value, vlen);
		else if (eq(name, nlen, "grpc-timeout"))
			s->bad_timeout = !parse_timeout(value, vlen, &s->timeout_ms);
		break;
	case sizeof("grpc-encoding") - 1:
		if (eq(name, nlen, "grpc-encoding")) {
			keep(s->encoding, sizeof(s->encoding), value, vlen);
			s->bad_encoding = !eq(value, vlen, "identity");
		}
		break;
	case sizeof("x-doku-profile") - 1:
		if (eq(name, nlen, "x-doku-profile"))
			keep(s->profile, sizeof(s->profile), value, vlen);
		break;
	case sizeof("x-doku-customer-ref") - 1:
		if (eq(name, nlen, "x-doku-customer-ref"))
			keep(s->ref, sizeof(s->ref), value, vlen);
		break;
	default:
		break;
	}
}

/* Which service the stream is for: health, reflection (which the caller
 * must be one the ACL knows for, as for any call), or the Wallet's calls. */
static void route(struct gstream *s)
{
	const peer *pr = conn_peer(s->g->conn);

	s->health = grpc_health_rpc_of(s->path);
	s->reflect = grpc_reflect_path(s->path);
	if (s->reflect && !config_acl_knows(s->g->b->cfg, pr))
		refuse(s, CODE(PERMISSION_DENIED), "uid %lu may not use this daemon",
		       (unsigned long)pr->uid);
}

static void on_headers_end(void *user, void *st, bool too_big)
{
	struct gstream *s = st;

	(void)user;
	if (too_big)
		refuse(s, CODE(RESOURCE_EXHAUSTED), "the request's header list is over %u bytes",
		       H2_HEADER_LIST_MAX);
	else if (!s->post)
		refuse_http(s, "405", CODE(UNIMPLEMENTED), "gRPC takes POST");
	else if (!s->grpc_ct)
		refuse_http(s, "415", CODE(INVALID_ARGUMENT),
			    "content-type must be application/grpc or application/grpc+proto");
	else if (s->bad_encoding)
		refuse(s, CODE(UNIMPLEMENTED),
		       "grpc-encoding \"%.32s\" is not supported: messages are not compressed (identity)",
		       s->encoding);
	else if (s->bad_timeout)
		refuse(s, CODE(INVALID_ARGUMENT), "grpc-timeout: expected 1 to 8 digits and a unit");
	else
		route(s);
}

/* The message's 5-byte prefix is in: its buffer, after the checks. */
static void on_prefix(struct gstream *s)
{
	uint32_t max = conn_max_frame(s->g->conn);
	uint32_t len = (uint32_t)s->prefix[1] << 24 | (uint32_t)s->prefix[2] << 16 |
		       (uint32_t)s->prefix[3] << 8 | s->prefix[4];

	if (s->prefix[0] == 1) {
		fail(s, CODE(UNIMPLEMENTED),
		       "compressed messages are not supported: send them uncompressed (identity)");
		return;
	}
	if (s->prefix[0] != 0) {
		fail(s, CODE(INVALID_ARGUMENT), "malformed message: flags byte 0x%02x", s->prefix[0]);
		return;
	}
	if (s->reflect) {
		if (len > GRPC_REFLECT_REQUEST_MAX) {
			fail(s, CODE(RESOURCE_EXHAUSTED),
			     "message of %u bytes is over the cap of %u bytes", len,
			     GRPC_REFLECT_REQUEST_MAX);
			return;
		}
		s->msg_len = len;
		s->msg = malloc(len > 0 ? len : 1);
		if (s->msg == NULL)
			fail(s, CODE(RESOURCE_EXHAUSTED), "out of memory");
		return;
	}
	if (len > max || (s->health != GRPC_HEALTH_NONE && len > GRPC_HEALTH_REQUEST_MAX)) {
		refuse(s, CODE(RESOURCE_EXHAUSTED), "message of %u bytes is over the cap of %u bytes",
		       len, s->health != GRPC_HEALTH_NONE ? GRPC_HEALTH_REQUEST_MAX : max);
		return;
	}
	s->msg_len = len;
	if (s->health != GRPC_HEALTH_NONE) {
		s->msg = s->health_req;
		return;
	}
	s->call = call_new(s->g->b, len, &s->msg);
	if (s->call == NULL)
		refuse(s, CODE(RESOURCE_EXHAUSTED), "out of memory");
}

static void on_data(void *user, void *st, const uint8_t *p, size_t n)
{
	struct gstream *s = st;

	(void)user;
	while (n > 0 && !s->answered) {
		size_t k;

		if (s->prefix_got < SNAP_FRAME_HEADER) {
			k = SNAP_FRAME_HEADER - s->prefix_got;
			k = k < n ? k : n;
			memcpy(s->prefix + s->prefix_got, p, k);
			s->prefix_got += (unsigned)k;
			if (s->prefix_got == SNAP_FRAME_HEADER)
				on_prefix(s);
		} else if (s->msg_got < s->msg_len) {
			k = s->msg_len - s->msg_got;
			k = k < n ? k : n;
			memcpy(s->msg + s->msg_got, p, k);
			s->msg_got += (uint32_t)k;
		} else {
			refuse(s, CODE(INVALID_ARGUMENT), "a unary call takes one message");
			return;
		}
		p += k;
		n -= k;
		if (s->reflect && !s->answered && s->msg != NULL && s->prefix_got == SNAP_FRAME_HEADER &&
		    s->msg_got == s->msg_len)
			reflect_one(s);
	}
}

static void on_request_end(void *user, void *st)
{
	struct gstream *s = st;

	(void)user;
	if (s->answered)
		return;
	if (s->reflect) {
		reflect_end(s);
		return;
	}
	if (s->prefix_got < SNAP_FRAME_HEADER || s->msg_got < s->msg_len) {
		refuse(s, CODE(INVALID_ARGUMENT), "malformed message: the request ended %s",
		       s->prefix_got == 0 ? "without a message" : "inside its message");
		return;
	}
	if (s->health != GRPC_HEALTH_NONE)
		health(s);
	else
		start_call(s);
}

static void on_stream_close(void *user, void *st, uint32_t error)
{
	struct gstream *s = st;
	struct gconn *g = user;

	list_del(&s->node);
	if (s->call != NULL && s->started) {
		/* reset by the caller, or the connection ends, before the reply */
		log_msg(LOG_LVL_DEBUG, "grpc conn=%llu stream=%d reset (HTTP/2 error %u): call detached",
			(unsigned long long)conn_number(g->conn), s->id, error);
		call_detach(s->call); /* done() is not called any more */
		conn_release(g->conn);
	} else {
		drop_unstarted(s);
	}
	if (s->reflect)
		free(s->msg);
	free(s);
}

static void on_close(void *user)
{
	free(user); /* every stream was closed first */
}

/* Draining: each Health/Watch gets NOT_SERVING and ends, and each
 * reflection stream UNAVAILABLE, so that the connection can close once its
 * calls are answered. */
static void on_shutdown(void *user)
{
	struct gconn *g = user;
	uint8_t out[GRPC_HEALTH_RESPONSE_MAX + SNAP_FRAME_HEADER];
	size_t n = grpc_health_not_serving(out + SNAP_FRAME_HEADER);

	snap_frame_header_write(out, (uint32_t)n);
	for (struct list_node *p = g->streams.next; p != &g->streams; p = p->next) {
		struct gstream *s = list_entry(p, struct gstream, node);

		if (s->reflect && !s->answered)
			fail(s, CODE(UNAVAILABLE), "the daemon is draining");
		if (!s->watching)
			continue;
		s->watching = false;
		if (h2_body(conn_h2(g->conn), s->id, out, SNAP_FRAME_HEADER + n) == 0)
			end_with_facts(s, CODE(OK), NULL, NULL);
	}
}

const h2_ops grpc_h2_ops = {
	.stream_open = on_stream_open,
	.header = on_header,
	.headers_end = on_headers_end,
	.data = on_data,
	.request_end = on_request_end,
	.stream_close = on_stream_close,
	.close = on_close,
	.shutdown = on_shutdown,
};
