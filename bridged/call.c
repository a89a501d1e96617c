/* One call: decode, check, tokens, sign, send, map, reply. */
#include "call.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "journal.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "outcome.h"
#include "snap_code.h"
#include "snap_err.h"
#include "snap_json.h"
#include "snap_sign.h"
#include "snap_time.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x
#define OUT(x) DOKU__BRIDGE__V1__OUTCOME__OUTCOME_##x
#define HEADER_MAX (TOK_LEN_MAX + 64) /* one request header line */
#define URL_MAX 1024
#define CALL_INTERNAL_ARENA (1024u * 1024u) /* arena cap of an internal call */

static void step_tokens(struct call *c);
static void finish(struct call *c);
static void on_upstream(up_req *r);

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

__attribute__((format(printf, 3, 4)))
static void fail(struct call *c, int code, const char *fmt, ...)
{
	va_list ap;

	c->code = code;
	if (c->outcome == OUT(UNSPECIFIED))
		c->outcome = OUT(NOT_DONE);
	va_start(ap, fmt);
	vsnprintf(c->status, sizeof(c->status), fmt, ap);
	va_end(ap);
	finish(c);
}

/* ---- life cycle --------------------------------------------------------------------- */

struct call *call_new(struct bridge *b, struct conn *conn, uint32_t len, uint8_t **frame)
{
	struct call *c = calloc(1, sizeof(*c));

	*frame = NULL;
	if (c == NULL)
		return NULL;
	c->b = b;
	c->conn = conn;
	c->state = CALL_READING;
	c->uid = conn->peer.uid;
	c->conn_no = conn->number;
	list_node_init(&c->conn_node);
	list_node_init(&c->all_node);
	list_node_init(&c->wait.node);
	snap_arena_init(&c->arena, (size_t)b->cfg->max_frame * 4u + CALL_ARENA_EXTRA);
	c->frame_len = len;
	c->frame = snap_arena_alloc(&c->arena, len > 0 ? len : 1);
	if (c->frame == NULL) {
		snap_arena_free(&c->arena);
		free(c);
		return NULL;
	}
	*frame = c->frame;
	return c;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Wipe and free the arena; the struct goes once its timer (if any) is closed. */
static void release(struct call *c)
{
	snap_arena_free(&c->arena);
	if (c->timer_init) {
		c->timer.data = c;
		uv_close((uv_handle_t *)&c->timer, on_timer_closed);
		return;
	}
	free(c);
}

void call_discard(struct call *c)
{
	release(c);
}

/* The advice of an UNKNOWN outcome, appended to the status. */
static void add_unknown_advice(struct call *c)
{
	size_t n = strlen(c->status);
	const char *rpc = c->m != NULL && c->m->ep != NULL ? c->m->ep->status_rpc : NULL;

	/* only a money-moving call has a status method to ask (a read has nothing to lose) */
	if (c->outcome != OUT(UNKNOWN) || rpc == NULL || n >= sizeof(c->status) - 1)
		return;
	snprintf(c->status + n, sizeof(c->status) - n,
		 "%sthe operation may have happened: ask %s (partnerReferenceNo %s, X-EXTERNAL-ID %s); "
		 "never resend it with a new reference",
		 n > 0 ? "; " : "", rpc,
		 c->partner_ref != NULL ? c->partner_ref : "-",
		 c->external_id[0] != '\0' ? c->external_id : "-");
}

static void build_and_send_reply(struct call *c)
{
	Doku__Bridge__V1__Reply r = DOKU__BRIDGE__V1__REPLY__INIT;

	r.id = c->id;
	r.code = c->code;
	r.status_message = c->status;
	r.http_status = c->http;
	r.response_code = c->response_code;
	r.response_message = (char *)(c->response_message != NULL ? c->response_message : "");
	r.external_id = c->external_id;
	r.partner_reference_no = (char *)(c->partner_ref != NULL ? c->partner_ref : "");
	r.outcome = c->outcome;
	if (c->resp != NULL) {
		size_t n = protobuf_c_message_get_packed_size(c->resp);
		uint8_t *p = snap_arena_alloc(&c->arena, n > 0 ? n : 1);

		if (p != NULL) {
			protobuf_c_message_pack(c->resp, p);
			r.message.data = p;
			r.message.len = n;
		}
	}
	(void)conn_reply(c->conn, &r);
}

static void log_line(const struct call *c)
{
	struct log_call lc;

	memset(&lc, 0, sizeof(lc));
	lc.uid = c->uid;
	lc.conn = c->conn_no;
	lc.id = c->id;
	lc.method = c->m != NULL ? c->m->name : c->log_name;
	lc.profile = c->prof != NULL ? c->prof->name : NULL;
	lc.external_id = c->external_id;
	lc.http = c->http;
	lc.response_code = c->response_code;
	lc.duration_us = now_us() - c->start_us;
	lc.outcome = outcome_name(c->outcome);
	lc.code = outcome_code_name(c->code);
	lc.message = c->code != CODE(OK) || c->outcome == OUT(UNKNOWN) ? c->status : NULL;
	lc.retries = c->retries;
	lc.detached = c->detached;
	lc.routine = c->m != NULL && strcmp(c->m->name, "Health") == 0;
	log_call(&lc);
}

/* Take the call out of bridge.calls while the store works for it (so that
 * the shutdown's abort loops move on); it stays counted in flight. */
static void park(struct call *c)
{
	if (list_linked(&c->all_node)) {
		list_del(&c->all_node);
		c->parked = true;
	}
}

/* A journaled call ends: record its outcome first. true: the store has it,
 * finish runs again from call_store_done once it is durable. */
static bool record_outcome(struct call *c)
{
	c->recorded = true;
	if (c->timer_init)
		uv_timer_stop(&c->timer);
	if (c->outcome == OUT(UNSPECIFIED))
		c->outcome = c->code == CODE(OK) ? OUT(DONE) : OUT(NOT_DONE);
	if (journal_outcome(c) != 0)
		return false; /* logged; the row stays PENDING and is reconciled after a restart */
	c->state = CALL_STORE_OUTCOME;
	return true;
}

static void finish(struct call *c)
{
	struct bridge *b = c->b;
	struct conn *conn = c->conn;

	if (c->state == CALL_DONE)
		return;
	if (c->journal_id != 0 && !c->recorded && record_outcome(c))
		return; /* the reply waits until the outcome is durable (docs/state.md) */
	c->state = CALL_DONE;
	if (c->timer_init)
		uv_timer_stop(&c->timer);
	if (c->outcome == OUT(UNSPECIFIED))
		c->outcome = c->code == CODE(OK) ? OUT(DONE) : OUT(NOT_DONE);
	add_unknown_advice(c);
	metrics_call(c->m != NULL ? (int)c->m->index : -1, c->code, c->outcome, now_us() - c->start_us);
	b->calls_served++;
	if (c->code != CODE(OK))
		b->calls_failed++;
	if (list_linked(&c->all_node) || c->parked) {
		list_del(&c->all_node);
		b->calls_in_flight--;
	}
	log_line(c); /* before the reply: a caller holding a reply finds its line */
	if (c->internal_done != NULL)
		c->internal_done(c);
	if (conn != NULL) {
		/* queue the reply first: unlinking the last call of a draining or
		 * finished connection closes it once its output is written */
		build_and_send_reply(c);
		conn_call_done(conn, c);
	}
	config_unref(c->cfg);
	c->cfg = NULL;
	release(c);
	if (b->draining && b->drain_check != NULL)
		b->drain_check(b);
}

/* ---- tokens ------------------------------------------------------------------------ */

/* DOKU refused a token request made for this call. */
static void token_refused(struct call *c, const tok_result *r)
{
	snap_code rc;
	int http = 401;

	if (r != NULL)
		http = snap_code_parse(r->response_code, strlen(r->response_code), &rc) == 0 ? rc.http
											: (int)r->http;
	if (c->state == CALL_WAIT_CUSTOMER) {
		fail(c, CODE(UNAUTHENTICATED),
		     "customer session \"%s\" ended: DOKU refused its refresh (%s); open a new one "
		     "with OpenCustomerSession",
		     c->ref, r != NULL ? r->response_message : "-");
		return;
	}
	fail(c, http == 401 ? CODE(UNAUTHENTICATED) : outcome_code_for_http(http),
	     "DOKU refused the token request: %s", r != NULL ? r->response_message : "-");
}

static void fail_token(struct call *c, int err, const tok_result *r)
{
	if (r != NULL) {
		c->http = r->http;
		snprintf(c->response_code, sizeof(c->response_code), "%s", r->response_code);
		c->response_message =
			snap_arena_strndup(&c->arena, r->response_message, strlen(r->response_message));
	}
	switch (err) {
	case TOK_ERR_NO_SESSION:
		fail(c, CODE(FAILED_PRECONDITION),
		     "no customer session \"%s\" in profile %s (open one with OpenCustomerSession)", c->ref,
		     c->prof->name);
		return;
	case TOK_ERR_LIMIT:
		fail(c, CODE(RESOURCE_EXHAUSTED), "too many customer sessions (max_customer_sessions)");
		return;
	case TOK_ERR_REFUSED:
		token_refused(c, r);
		return;
	case TOK_ERR_UNAVAILABLE:
	case TOK_ERR_TIMEOUT:
		fail(c, CODE(UNAVAILABLE), "the access token could not be fetched (%s)",
		     r != NULL ? r->response_message : "-");
		return;
	default:
		fail(c, CODE(INTERNAL), "token handling failed");
		return;
	}
}

static const char *hdr(struct call *c, const char *name, const char *value)
{
	snap_buf b;

	snap_buf_init(&b, &c->arena, HEADER_MAX);
	if (snap_buf_printf(&b, "%s: %s", name, value) != 0)
		return NULL;
	return b.data;
}

/* Sign and send one attempt (a new X-EXTERNAL-ID and timestamp each time). */
static void send_attempt(struct call *c)
{
	const method *m = c->m;
	const profile *p = c->prof;
	const char *token, *ctoken = NULL;
	char sig[SNAP_HMAC_B64_LEN + 1];
	char bearer[TOK_LEN_MAX + 8];
	uint64_t now = uv_now(c->b->loop);
	snap_buf url;
	unsigned n = 0;
	int rc;

	token = tokens_b2b_value(c->tp, &c->b2b_gen);
	if (token == NULL) {
		step_tokens(c); /* dropped meanwhile by another call's 401 */
		return;
	}
	if (m->customer) {
		ctoken = tokens_session_value(c->tp, c->ref, &c->cust_gen);
		if (ctoken == NULL) {
			step_tokens(c);
			return;
		}
	}
	if (now >= c->deadline_ms) {
		fail(c, CODE(DEADLINE_EXCEEDED), "deadline exceeded before the request was sent");
		return;
	}
	if (c->need_extid) {
		/* a new attempt: a new X-EXTERNAL-ID, journaled before it leaves */
		if (snap_extid_next(c->external_id) != 0 || snap_time_format(time(NULL), c->ts) != 0) {
			fail(c, CODE(INTERNAL), "cannot make an X-EXTERNAL-ID");
			return;
		}
		c->need_extid = false;
		rc = journal_attempt(c);
		if (rc > 0) {
			c->state = CALL_STORE_INTENT;
			return;
		}
		if (rc < 0) {
			fail(c, CODE(UNAVAILABLE), "the journal cannot record the request (%s); not sent",
			     journal_strerror(rc));
			return;
		}
	}
	if (snap_sign_service(p->client_secret->data, p->client_secret->len, "POST", m->ep->path,
			      token, c->body.data, c->body.len, c->ts, sig) != 0) {
		fail(c, CODE(INTERNAL), "cannot sign the request");
		return;
	}
	memset(&c->up, 0, sizeof(c->up));
	snap_buf_init(&url, &c->arena, URL_MAX);
	if (snap_buf_printf(&url, "%s%s", p->base_url, m->ep->path) != 0) {
		fail(c, CODE(INTERNAL), "URL too long");
		return;
	}
	snprintf(bearer, sizeof(bearer), "Bearer %s", token);
	c->up.headers[n++] = "Content-Type: application/json";
	c->up.headers[n++] = hdr(c, "Authorization", bearer);
	c->up.headers[n++] = hdr(c, "X-TIMESTAMP", c->ts);
	c->up.headers[n++] = hdr(c, "X-SIGNATURE", sig);
	c->up.headers[n++] = hdr(c, "X-PARTNER-ID", p->client_id);
	c->up.headers[n++] = hdr(c, "X-EXTERNAL-ID", c->external_id);
	if (p->channel_id != NULL)
		c->up.headers[n++] = hdr(c, "CHANNEL-ID", p->channel_id);
	if (ctoken != NULL) {
		snprintf(bearer, sizeof(bearer), "Bearer %s", ctoken);
		c->up.headers[n++] = hdr(c, "Authorization-Customer", bearer);
	}
	explicit_bzero(bearer, sizeof(bearer));
	c->up.nheaders = n;
	for (unsigned i = 0; i < n; i++)
		if (c->up.headers[i] == NULL) {
			fail(c, CODE(RESOURCE_EXHAUSTED), "request headers too large");
			return;
		}
	c->up.url = url.data;
	c->up.ca_file = p->ca_file;
	c->up.body = c->body.data;
	c->up.body_len = c->body.len;
	c->up.timeout_ms = (uint32_t)(c->deadline_ms - now);
	c->up.fresh_connection = m->money;
	c->up.arena = &c->arena;
	c->up.done = on_upstream;
	c->up.data = c;
	rc = upstream_start(c->b->up, &c->up);
	if (rc != 0) {
		fail(c, CODE(INTERNAL), "cannot start the HTTPS request");
		return;
	}
	c->state = CALL_UPSTREAM;
}

static void on_token(tok_wait *w, const tok_result *r)
{
	struct call *c = w->data;

	if (r->status != 0) {
		if (c->state == CALL_WAIT_OPEN) {
			c->outcome = OUT(NOT_DONE);
			if (r->status == TOK_ERR_TIMEOUT || (r->status == TOK_ERR_UNAVAILABLE && r->http == 0))
				c->outcome = OUT(UNKNOWN);
		}
		fail_token(c, r->status, r);
		return;
	}
	switch (c->state) {
	case CALL_WAIT_B2B:
	case CALL_WAIT_CUSTOMER:
		step_tokens(c);
		return;
	case CALL_WAIT_OPEN: {
		Doku__Wallet__V1__OpenCustomerSessionResponse *o =
			snap_arena_alloc(&c->arena, sizeof(*o));
		char *fields[5];
		const char *src[5] = { r->response_code, r->response_message, r->token_type,
				       r->access_expiry, r->refresh_expiry };

		for (int i = 0; i < 5; i++) {
			fields[i] = snap_arena_strndup(&c->arena, src[i], strlen(src[i]));
			if (fields[i] == NULL)
				o = NULL;
		}
		if (o == NULL) {
			fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
			return;
		}
		doku__wallet__v1__open_customer_session_response__init(o);
		o->response_code = fields[0];
		o->response_message = fields[1];
		o->token_type = fields[2];
		o->access_token_expiry_time = fields[3];
		o->refresh_token_expiry_time = fields[4];
		c->resp = &o->base;
		c->http = r->http;
		snprintf(c->response_code, sizeof(c->response_code), "%s", r->response_code);
		c->response_message = fields[1];
		c->code = CODE(OK);
		c->outcome = OUT(DONE);
		finish(c);
		return;
	}
	default:
		return;
	}
}

/* Get what the attempt needs: the B2B token, then the customer's. */
static void step_tokens(struct call *c)
{
	int rc;

	c->wait.fn = on_token;
	c->wait.data = c;
	c->state = CALL_WAIT_B2B;
	rc = tokens_b2b(c->tp, c->cfg, c->prof, &c->wait);
	if (rc == 1)
		return;
	if (rc < 0) {
		fail_token(c, rc, NULL);
		return;
	}
	if (c->m->customer) {
		c->state = CALL_WAIT_CUSTOMER;
		rc = tokens_session(c->tp, c->cfg, c->prof, c->ref, &c->wait);
		if (rc == 1)
			return;
		if (rc < 0) {
			fail_token(c, rc, NULL);
			return;
		}
	}
	send_attempt(c);
}

/* ---- DOKU's answer --------------------------------------------------------------------- */

static void on_upstream(up_req *r)
{
	struct call *c = r->data;
	const method *m = c->m;
	struct outcome_in in = { r->status, r->sent, 0, NULL };
	struct outcome_out out;
	snap_code rc;
	bool have_rc = false;

	c->sent = r->sent;
	c->http = r->status == UP_OK ? (unsigned)r->http : 0;
	in.http = c->http;
	if (r->status == UP_OK && r->response.len > 0) {
		ProtobufCMessage *resp = NULL;
		const char *code;

		if (snap_json_decode(m->output, r->response.data, r->response.len, 0, &c->arena, &resp,
				     NULL, 0) == 0) {
			c->resp = resp;
			code = methods_string_field(resp, m->code_field);
			if (code != NULL && snap_code_parse(code, strlen(code), &rc) == 0) {
				have_rc = true;
				snprintf(c->response_code, sizeof(c->response_code), "%s", rc.text);
			}
			c->response_message = methods_string_field(resp, m->message_field);
		}
	}
	if (have_rc)
		metrics_snap_code(rc.http, rc.case_code);
	if (have_rc && rc.http == 401) {
		/* a refused token: the request did not take effect; one new token, one retry */
		if ((rc.case_code == 1 || rc.case_code == 3) && !c->b2b_retried) {
			c->b2b_retried = true;
			c->need_extid = true;
			c->retries++;
			tokens_b2b_invalidate(c->tp, c->b2b_gen);
			c->resp = NULL;
			step_tokens(c);
			return;
		}
		if (rc.case_code == 2 && m->customer && !c->cust_retried) {
			c->cust_retried = true;
			c->need_extid = true;
			c->retries++;
			tokens_session_invalidate(c->tp, c->ref, c->cust_gen);
			c->resp = NULL;
			step_tokens(c);
			return;
		}
	}
	in.rc = have_rc ? &rc : NULL;
	outcome_map(&in, &out);
	c->code = out.code;
	c->outcome = out.outcome;
	if (r->status != UP_OK)
		snprintf(c->status, sizeof(c->status), "%s: %s",
			 r->status == UP_ERR_TIMEOUT ? "no answer from DOKU before the deadline"
						    : "DOKU could not be reached",
			 r->error);
	else if (!have_rc && c->code != CODE(OK))
		snprintf(c->status, sizeof(c->status), "DOKU answered HTTP %u without a readable responseCode",
			 c->http);
	else if (have_rc && rc.http == 202)
		snprintf(c->status, sizeof(c->status), "DOKU is processing the request (%s)", rc.text);
	else if (c->code != CODE(OK))
		snprintf(c->status, sizeof(c->status), "DOKU: %s (%s)",
			 c->response_message != NULL ? c->response_message : "refused", rc.text);
	finish(c);
}

/* ---- start, deadline, cancel ------------------------------------------------------------ */

static void on_deadline(uv_timer_t *t)
{
	struct call *c = t->data;

	call_abort(c, CODE(DEADLINE_EXCEEDED), "deadline exceeded");
}

static int arm_deadline(struct call *c, uint32_t timeout_ms)
{
	c->deadline_ms = uv_now(c->b->loop) + timeout_ms;
	if (uv_timer_init(c->b->loop, &c->timer) != 0)
		return -ENOMEM;
	c->timer_init = true;
	c->timer.data = c;
	return uv_timer_start(&c->timer, on_deadline, timeout_ms, 0);
}

/* A request's non-SNAP required fields (rows other than SNAP). */
static const char *missing_field(const struct call *c)
{
	for (const char *const *f = c->m->required; f != NULL && *f != NULL; f++) {
		const ProtobufCFieldDescriptor *fd =
			protobuf_c_message_descriptor_get_field_by_name(c->m->input, *f);

		if (fd != NULL && methods_string_field(c->req, fd) == NULL)
			return *f;
	}
	return NULL;
}

/* A SNAP request, checked: its JSON body, then tokens, then the attempts. */
static void send_request(struct call *c)
{
	int rc;

	snap_buf_init(&c->body, &c->arena, (size_t)c->cfg->max_frame * 2u);
	rc = snap_json_encode(c->req, 0, &c->body);
	if (rc != 0) {
		fail(c, rc == SNAP_ERR_JSON ? CODE(INVALID_ARGUMENT) : CODE(RESOURCE_EXHAUSTED),
		     rc == SNAP_ERR_JSON ? "message: a string is not valid UTF-8" : "request too large");
		return;
	}
	c->need_extid = true;
	step_tokens(c);
}

static void run(struct call *c, const Doku__Bridge__V1__Call *env)
{
	struct bridge *b = c->b;
	const method *m;
	const peer *pr = &c->conn->peer;
	char field[SNAP_FIELD_PATH_MAX];
	uint32_t timeout;
	int rc;

	m = methods_find(env->method, strlen(env->method));
	if (!config_acl_knows(c->cfg, pr)) {
		snprintf(c->log_name, sizeof(c->log_name), "%.64s", env->method);
		c->m = m;
		fail(c, CODE(PERMISSION_DENIED), "uid %lu may not use this daemon", (unsigned long)pr->uid);
		return;
	}
	if (m == NULL) {
		snprintf(c->log_name, sizeof(c->log_name), "%.64s", env->method);
		fail(c, CODE(UNIMPLEMENTED), "unknown method \"%.64s\"", env->method);
		return;
	}
	c->m = m;
	if (m->uses_profile) {
		c->prof = config_profile(c->cfg, env->profile);
		if (c->prof == NULL) {
			fail(c, CODE(INVALID_ARGUMENT), "profile: no profile \"%.64s\"",
			     env->profile[0] ? env->profile : CONFIG_DEFAULT_PROFILE);
			return;
		}
	}
	if (!config_acl_allows(c->cfg, pr, m->index, c->prof != NULL ? (int)c->prof->index : -1)) {
		fail(c, CODE(PERMISSION_DENIED), "uid %lu may not call %s%s%s", (unsigned long)pr->uid,
		     m->name, c->prof != NULL ? " with profile " : "", c->prof != NULL ? c->prof->name : "");
		return;
	}
	if (m->customer) {
		if (!tokens_ref_valid(env->customer_ref)) {
			fail(c, CODE(INVALID_ARGUMENT), "customer_ref: %s",
			     env->customer_ref[0] ? "expected [A-Za-z0-9._-]{1,64}" : "missing required field");
			return;
		}
		snprintf(c->ref, sizeof(c->ref), "%s", env->customer_ref);
	}
	c->req = protobuf_c_message_unpack(m->input, &c->arena.pb, env->message.len, env->message.data);
	if (c->req == NULL) {
		fail(c, CODE(INVALID_ARGUMENT), "message: not a valid %s", m->input->name);
		return;
	}
	c->partner_ref = methods_string_field(c->req, m->ref_field);
	if (m->kind == METHOD_SNAP) {
		rc = snap_validate(m->ep, c->req, field);
		if (rc == SNAP_ERR_MISSING) {
			fail(c, CODE(INVALID_ARGUMENT), "missing required field: %s", field);
			return;
		}
		if (rc != 0) {
			fail(c, CODE(INVALID_ARGUMENT), "invalid field: %s", field[0] ? field : "message");
			return;
		}
	} else if (missing_field(c) != NULL) {
		char name[SNAP_JSON_NAME_MAX];
		const ProtobufCFieldDescriptor *fd =
			protobuf_c_message_descriptor_get_field_by_name(m->input, missing_field(c));

		if (snap_json_field_name(fd, name, sizeof(name)) != 0)
			snprintf(name, sizeof(name), "%s", fd->name);
		fail(c, CODE(INVALID_ARGUMENT), "missing required field: %s", name);
		return;
	}
	if (m->uses_profile) {
		c->tp = tokens_profile(b->tokens, c->prof);
		if (c->tp == NULL || c->prof->client_secret == NULL || c->prof->key == NULL) {
			fail(c, CODE(INTERNAL), "profile %s is not ready", c->prof->name);
			return;
		}
	}
	if (m->kind == METHOD_LOCAL) {
		rc = m->local(c, &c->resp);
		c->code = rc;
		c->outcome = rc == 0 ? OUT(DONE) : OUT(NOT_DONE);
		finish(c);
		return;
	}
	if (m->kind == METHOD_JOURNAL) {
		c->state = CALL_STORE_LOCAL;
		rc = m->journal(c);
		if (rc != 0) {
			c->code = rc;
			c->outcome = OUT(NOT_DONE);
			finish(c);
		}
		return;
	}
	timeout = env->timeout_ms != 0 ? env->timeout_ms : c->cfg->default_timeout_ms;
	if (timeout > c->cfg->max_timeout_ms)
		timeout = c->cfg->max_timeout_ms;
	if (arm_deadline(c, timeout) != 0) {
		fail(c, CODE(RESOURCE_EXHAUSTED), "out of timers");
		return;
	}
	if (m->kind == METHOD_SESSION_OPEN) {
		const ProtobufCFieldDescriptor *fd =
			protobuf_c_message_descriptor_get_field_by_name(m->input, m->required[0]);

		c->wait.fn = on_token;
		c->wait.data = c;
		c->state = CALL_WAIT_OPEN;
		rc = tokens_session_open(c->tp, c->cfg, c->prof, c->ref, methods_string_field(c->req, fd),
					 &c->wait);
		if (rc < 0)
			fail_token(c, rc, NULL);
		return;
	}
	send_request(c);
}

void call_start(struct call *c)
{
	struct bridge *b = c->b;
	struct conn *conn = c->conn;
	Doku__Bridge__V1__Call *env;

	c->start_us = now_us();
	c->cfg = config_ref(b->cfg);
	env = doku__bridge__v1__call__unpack(&c->arena.pb, c->frame_len, c->frame);
	if (env == NULL) {
		/* the envelope is unreadable, so is its id: answer id 0 */
		snprintf(c->log_name, sizeof(c->log_name), "-");
		list_add_tail(&b->calls, &c->all_node);
		b->calls_in_flight++;
		conn_call_add(conn, c);
		fail(c, CODE(INVALID_ARGUMENT), "malformed Call envelope");
		return;
	}
	c->id = env->id;
	if (env->cancel) {
		struct call *target = conn_find_call(conn, env->id);

		if (target != NULL)
			call_abort(target, CODE(CANCELLED), "cancelled by the caller");
		config_unref(c->cfg);
		release(c);
		return;
	}
	if (conn_find_call(conn, c->id) != NULL) {
		/* the id is taken: answer without joining the list */
		snprintf(c->log_name, sizeof(c->log_name), "%.64s", env->method);
		list_add_tail(&b->calls, &c->all_node);
		b->calls_in_flight++;
		fail(c, CODE(INVALID_ARGUMENT), "id %llu is already in flight on this connection",
		     (unsigned long long)c->id);
		return;
	}
	list_add_tail(&b->calls, &c->all_node);
	b->calls_in_flight++;
	conn_call_add(conn, c);
	run(c, env);
}

void call_abort(struct call *c, int code, const char *why)
{
	switch (c->state) {
	case CALL_WAIT_B2B:
	case CALL_WAIT_CUSTOMER:
		tokens_cancel(&c->wait);
		c->outcome = OUT(NOT_DONE);
		break;
	case CALL_WAIT_OPEN:
		/* the token request is out: the session may get opened */
		tokens_cancel(&c->wait);
		c->outcome = OUT(UNKNOWN);
		break;
	case CALL_STORE_INTENT:
	case CALL_STORE_LOCAL:
		/* the store's answer decides; nothing has been sent */
		if (c->abort_code == 0) {
			c->abort_code = code;
			snprintf(c->status, sizeof(c->status), "%s", why);
		}
		park(c);
		return;
	case CALL_STORE_OUTCOME:
		park(c); /* the outcome is known; the reply follows once it is durable */
		return;
	case CALL_UPSTREAM:
		upstream_cancel(c->b->up, &c->up);
		c->sent = c->up.sent;
		c->outcome = c->sent ? OUT(UNKNOWN) : OUT(NOT_DONE);
		c->http = 0;
		c->resp = NULL;
		break;
	default:
		return;
	}
	c->code = code;
	snprintf(c->status, sizeof(c->status), "%s", why);
	finish(c);
}

void call_store_done(struct call *c, bool send)
{
	switch (c->state) {
	case CALL_STORE_INTENT:
		if (send && c->abort_code != 0) {
			c->code = c->abort_code;
			c->outcome = OUT(NOT_DONE);
			send = false;
		}
		if (!send) {
			finish(c);
			return;
		}
		c->state = CALL_WAIT_B2B;
		send_attempt(c);
		return;
	case CALL_STORE_LOCAL:
		if (c->abort_code != 0) {
			c->code = c->abort_code;
			c->resp = NULL;
		}
		c->outcome = c->code == CODE(OK) ? OUT(DONE) : OUT(NOT_DONE);
		finish(c);
		return;
	case CALL_STORE_OUTCOME:
		finish(c);
		return;
	default:
		return;
	}
}

struct call *call_internal_new(struct bridge *b, void (*done)(struct call *c), void *data)
{
	struct call *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->b = b;
	c->state = CALL_READING;
	c->uid = getuid();
	list_node_init(&c->conn_node);
	list_node_init(&c->all_node);
	list_node_init(&c->wait.node);
	snap_arena_init(&c->arena, CALL_INTERNAL_ARENA);
	c->internal_done = done;
	c->internal_data = data;
	c->start_us = now_us();
	c->cfg = config_ref(b->cfg);
	return c;
}

void call_internal_start(struct call *c, const method *m, const profile *p, const char *ref,
			 ProtobufCMessage *req, uint32_t timeout_ms)
{
	struct bridge *b = c->b;

	c->m = m;
	c->prof = p;
	c->req = req;
	snprintf(c->ref, sizeof(c->ref), "%s", ref != NULL ? ref : "");
	c->partner_ref = methods_string_field(req, m->ref_field);
	list_add_tail(&b->calls, &c->all_node);
	b->calls_in_flight++;
	c->tp = tokens_profile(b->tokens, p);
	if (m->kind != METHOD_SNAP || c->tp == NULL || p->client_secret == NULL || p->key == NULL) {
		fail(c, CODE(INTERNAL), "profile %s is not ready", p->name);
		return;
	}
	if (arm_deadline(c, timeout_ms) != 0) {
		fail(c, CODE(RESOURCE_EXHAUSTED), "out of timers");
		return;
	}
	send_request(c);
}

void call_detach(struct call *c)
{
	c->conn = NULL;
	c->detached = true;
	if (c->state == CALL_UPSTREAM && c->m != NULL && c->m->money && c->up.sent)
		return; /* runs to its end; the outcome goes to the log */
	call_abort(c, CODE(CANCELLED), "the caller went away");
}
