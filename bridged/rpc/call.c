/* One call: the state machine of call.h. */
#include "call.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "counters.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku_err.h"
#include "local.h"
#include "clock.h"
#include "log.h"
#include "text.h"
#include "reply.h"
#include "reconcile.h"
#include "snap_answer.h"
#include "snap_code.h"
#include "snap_err.h"
#include "snap_extid.h"
#include "snap_json.h"
#include "snap_request.h"
#include "snap_time.h"
#include "tokens.h"
#include "upstream.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x
#define OUT(x) DOKU__BRIDGE__V1__OUTCOME__OUTCOME_##x

enum call_state {
	CALL_READING,
	CALL_ADMITTED,
	CALL_TOKENS,
	CALL_INTENT,
	CALL_SENDING,
	CALL_LOCAL,
	CALL_ANSWERED,
	CALL_OUTCOME,
	CALL_REPLIED,
	CALL_STATES,
};

static const char *const state_names[CALL_STATES] = {
	"READING", "ADMITTED", "TOKENS", "INTENT", "SENDING", "LOCAL", "ANSWERED", "OUTCOME",
	"REPLIED",
};

#define TO(s) (1u << (s))

/* The edges of the machine: from each state, the states it may step to. */
static const unsigned edges[CALL_STATES] = {
	[CALL_READING] = TO(CALL_ADMITTED) | TO(CALL_ANSWERED),
	[CALL_ADMITTED] = TO(CALL_TOKENS) | TO(CALL_LOCAL) | TO(CALL_ANSWERED),
	[CALL_TOKENS] = TO(CALL_INTENT) | TO(CALL_SENDING) | TO(CALL_ANSWERED),
	[CALL_INTENT] = TO(CALL_TOKENS) | TO(CALL_ANSWERED),
	[CALL_SENDING] = TO(CALL_TOKENS) | TO(CALL_ANSWERED),
	[CALL_LOCAL] = TO(CALL_ANSWERED),
	[CALL_ANSWERED] = TO(CALL_OUTCOME) | TO(CALL_REPLIED),
	[CALL_OUTCOME] = TO(CALL_REPLIED),
	[CALL_REPLIED] = 0,
};

/* What a call in TOKENS waits for. */
enum call_wait { WAIT_NONE, WAIT_B2B, WAIT_CUSTOMER, WAIT_OPEN };

struct call {
	struct list_node all_node;   /* in bridge.calls while in flight */
	struct bridge *b;
	snap_arena arena;
	uint8_t *frame;              /* the Call's bytes (arena) */
	uint32_t frame_len;
	enum call_state state;
	bool in_run;                 /* run() is on the stack: callbacks only step */
	call_done_fn done;           /* the owner's; NULL once the caller is gone */
	void *done_data;
	uint64_t id;
	uint64_t start_us;
	uint64_t deadline_ms;        /* uv_now() clock */
	uv_timer_t timer;
	bool timer_init;
	/* who and what */
	uid_t uid;
	uint64_t conn_no;
	const method *m;
	char log_name[ADMIT_LOG_NAME_MAX];
	config *cfg;                 /* one reference while in flight */
	const profile *prof;
	tok_profile *tp;
	char ref[TOK_REF_MAX + 1];
	ProtobufCMessage *req;
	const char *partner_ref;
	uint32_t timeout_ms;
	snap_buf body;
	/* tokens and attempts */
	tok_wait wait;
	enum call_wait waiting;
	unsigned b2b_gen, cust_gen;
	bool b2b_retried, cust_retried;
	unsigned retries;
	up_req up;
	bool sent;                   /* the last attempt may have reached DOKU */
	char external_id[SNAP_EXTID_MAX + 1];
	char ts[SNAP_TIMESTAMP_LEN + 1]; /* the X-TIMESTAMP of the attempt */
	bool need_extid;             /* the next attempt takes a new X-EXTERNAL-ID */
	/* a local RPC */
	local_call lc;
	/* the result */
	int code, outcome;
	char status[ADMIT_STATUS_MAX];
	unsigned http;
	char response_code[16];
	const char *response_message;
	ProtobufCMessage *resp;
	bool detached;
	/* the journal */
	int64_t journal_id;          /* the call's journal row; 0: none */
	bool recorded;               /* its outcome was handed to the journal */
	int abort_code;              /* an abort that came while the journal worked (0: none) */
	bool parked;                 /* out of bridge.calls (still counted) while the journal works */
	bool internal;               /* the daemon's own (call_new_internal): not a caller's */
};

static void run(call *c);

/* The one setter of the state: the edge must be in the table. */
static void step(call *c, enum call_state to)
{
	if ((edges[c->state] & TO(to)) == 0) {
		log_msg(LOG_LVL_ERROR, "call conn=%llu id=%llu: no edge %s -> %s",
			(unsigned long long)c->conn_no, (unsigned long long)c->id,
			state_names[c->state], state_names[to]);
		assert(!"a step outside the edges of the call's state machine");
	}
	if (log_enabled(LOG_LVL_DEBUG))
		log_msg(LOG_LVL_DEBUG, "call conn=%llu id=%llu %s: %s -> %s",
			(unsigned long long)c->conn_no, (unsigned long long)c->id,
			c->m != NULL ? c->m->name : c->log_name, state_names[c->state], state_names[to]);
	c->state = to;
}

/* A callback stepped the machine: drive it (unless run() is on the stack). */
static void kick(call *c)
{
	if (!c->in_run)
		run(c);
}

/* The call ends with code and a status text: ANSWERED. */
__attribute__((format(printf, 3, 4)))
static void fail(call *c, int code, const char *fmt, ...)
{
	va_list ap;

	c->code = code;
	if (c->outcome == OUT(UNSPECIFIED))
		c->outcome = OUT(NOT_DONE);
	va_start(ap, fmt);
	vsnprintf(c->status, sizeof(c->status), fmt, ap);
	va_end(ap);
	step(c, CALL_ANSWERED);
}

/* ---- life cycle --------------------------------------------------------------------------- */

static call *alloc_call(struct bridge *b, size_t arena_cap)
{
	call *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->b = b;
	c->state = CALL_READING;
	list_node_init(&c->all_node);
	list_node_init(&c->wait.node);
	snap_arena_init(&c->arena, arena_cap);
	return c;
}

call *call_new(struct bridge *b, uint32_t len, uint8_t **frame)
{
	call *c = alloc_call(b, (size_t)b->cfg->max_frame * 4u + CALL_ARENA_EXTRA);

	*frame = NULL;
	if (c == NULL)
		return NULL;
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

const uint8_t *call_frame(const call *c, uint32_t *len)
{
	*len = c->frame_len;
	return c->frame;
}

snap_arena *call_arena(call *c)
{
	return &c->arena;
}

uint64_t call_id(const call *c)
{
	return c->id;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Wipe and free the arena; the struct goes once its timer (if any) is closed. */
static void release(call *c)
{
	snap_arena_free(&c->arena);
	if (c->timer_init) {
		c->timer.data = c;
		uv_close((uv_handle_t *)&c->timer, on_timer_closed);
		return;
	}
	free(c);
}

void call_discard(call *c)
{
	release(c);
}

/* The count c is in while in flight: a caller's, or the daemon's own. */
static unsigned *in_flight(call *c)
{
	return c->internal ? &c->b->internal_in_flight : &c->b->calls_in_flight;
}

/* In flight: in bridge.calls and counted. */
static void enter(call *c)
{
	struct bridge *b = c->b;

	c->start_us = c->start_us != 0 ? c->start_us : clock_mono_us();
	if (c->cfg == NULL)
		c->cfg = config_ref(b->cfg);
	list_add_tail(&b->calls, &c->all_node);
	*in_flight(c) += 1;
}

void call_start(call *c, const admission *a, uint64_t id, uid_t uid, uint64_t conn_no,
		call_done_fn done, void *data)
{
	c->id = id;
	c->uid = uid;
	c->conn_no = conn_no;
	c->done = done;
	c->done_data = data;
	c->m = a->m;
	snprintf(c->log_name, sizeof(c->log_name), "%s", a->log_name);
	c->prof = a->prof;
	snprintf(c->ref, sizeof(c->ref), "%s", a->customer_ref);
	c->req = a->req;
	c->partner_ref = a->partner_ref;
	c->timeout_ms = a->timeout_ms;
	enter(c);
	if (a->code != 0) {
		fail(c, a->code, "%s", a->status);
	} else {
		step(c, CALL_ADMITTED);
	}
	run(c);
}

call *call_new_internal(struct bridge *b)
{
	call *c = alloc_call(b, CALL_INTERNAL_ARENA);

	if (c == NULL)
		return NULL;
	c->uid = getuid();
	c->internal = true;
	c->start_us = clock_mono_us();
	c->cfg = config_ref(b->cfg);
	return c;
}

void call_start_internal(call *c, const method *m, const profile *p, const char *ref,
			 ProtobufCMessage *req, uint32_t timeout_ms, call_done_fn done, void *data)
{
	c->m = m;
	c->prof = p;
	c->req = req;
	c->done = done;
	c->done_data = data;
	snprintf(c->ref, sizeof(c->ref), "%s", ref != NULL ? ref : "");
	c->partner_ref = methods_string_field(req, m->ref_field);
	c->timeout_ms = timeout_ms;
	enter(c);
	if (m->kind != METHOD_SNAP)
		fail(c, CODE(INTERNAL), "profile %s is not ready", p->name);
	else
		step(c, CALL_ADMITTED);
	run(c);
}

void call_result(const call *c, reply_facts *f)
{
	f->id = c->id;
	f->code = c->code;
	f->outcome = c->outcome;
	f->status = c->status;
	f->http = c->http;
	f->response_code = c->response_code;
	f->response_message = c->response_message;
	f->external_id = c->external_id;
	f->partner_reference_no = c->partner_ref;
	f->resp = c->resp;
}

/* ---- the end ------------------------------------------------------------------------------ */

/* The advice of an UNKNOWN outcome, appended to the status. */
static void add_unknown_advice(call *c)
{
	size_t n = strlen(c->status);
	const method *st = c->m != NULL ? c->m->status : NULL;

	/* only a money-moving call has a status method to ask (a read has nothing to lose) */
	if (c->outcome != OUT(UNKNOWN) || st == NULL || n >= sizeof(c->status) - 1)
		return;
	snprintf(c->status + n, sizeof(c->status) - n,
		 "%sthe operation may have happened: ask %s (partnerReferenceNo %s, X-EXTERNAL-ID %s); "
		 "never resend it with a new reference",
		 n > 0 ? "; " : "", st->name,
		 c->partner_ref != NULL ? c->partner_ref : "-",
		 c->external_id[0] != '\0' ? c->external_id : "-");
}

static void log_line(const call *c)
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
	lc.duration_us = clock_mono_us() - c->start_us;
	lc.outcome = reply_outcome_name(c->outcome);
	lc.code = reply_code_name(c->code);
	lc.message = c->code != CODE(OK) || c->outcome == OUT(UNKNOWN) ? c->status : NULL;
	lc.retries = c->retries;
	lc.detached = c->detached;
	lc.routine = c->m != NULL && c->m->routine;
	log_call(&lc);
}

/* Take the call out of bridge.calls while the journal works for it (so that
 * the shutdown's abort loops move on); it stays counted in flight. */
static void park(call *c)
{
	if (list_linked(&c->all_node)) {
		list_del(&c->all_node);
		c->parked = true;
	}
}

/* The result is final: no deadline any more, and an outcome for every code. */
static void settle(call *c)
{
	if (c->timer_init)
		uv_timer_stop(&c->timer);
	if (c->outcome == OUT(UNSPECIFIED))
		c->outcome = c->code == CODE(OK) ? OUT(DONE) : OUT(NOT_DONE);
}

void call_count_refusal(struct bridge *b, int code)
{
	counters_call(-1, code, OUT(NOT_DONE), 0);
	b->calls_served++;
	b->calls_failed++;
}

/* REPLIED: count, log, hand the result to the owner, free. */
static void finish(call *c)
{
	struct bridge *b = c->b;

	settle(c);
	add_unknown_advice(c);
	counters_call(c->m != NULL ? (int)c->m->index : -1, c->code, c->outcome,
		      clock_mono_us() - c->start_us);
	b->calls_served++;
	if (c->code != CODE(OK))
		b->calls_failed++;
	if (list_linked(&c->all_node) || c->parked) {
		list_del(&c->all_node);
		*in_flight(c) -= 1;
	}
	log_line(c); /* before the reply: a caller holding a reply finds its line */
	if (c->done != NULL)
		c->done(c, c->done_data);
	config_unref(c->cfg);
	c->cfg = NULL;
	release(c);
	if (b->draining && b->drain_check != NULL)
		b->drain_check(b);
}

/* ---- the journal ----------------------------------------------------------------------------- */

static enum store_state state_of_outcome(int outcome)
{
	switch (outcome) {
	case OUT(DONE): return STORE_DONE;
	case OUT(NOT_DONE): return STORE_NOT_DONE;
	default: return STORE_UNKNOWN;
	}
}

static void on_outcome_recorded(int status, void *data)
{
	call *c = data;

	if (status != 0)
		log_msg(LOG_LVL_ERROR, "journal: the outcome of row %" PRId64 " (%s %s) was not recorded: "
			"%s; it is reconciled after a restart", c->journal_id, c->m->name,
			c->partner_ref != NULL ? c->partner_ref : "-", store_strerror(status));
	else if (c->outcome == OUT(UNKNOWN) && c->b->unknown_recorded != NULL)
		c->b->unknown_recorded(c->b); /* reconcile it */
	step(c, CALL_REPLIED);
	kick(c);
}

/* ANSWERED of a journaled call: hand its outcome to the journal. true: OUTCOME (wait). */
static bool record_outcome(call *c)
{
	store_outcome o = { 0 };
	uint8_t *packed = NULL;
	size_t n;

	c->recorded = true;
	settle(c);
	o.state = state_of_outcome(c->outcome);
	o.http_status = c->http;
	o.response_code = c->response_code;
	o.response_message = c->response_message;
	if (c->resp != NULL) {
		n = protobuf_c_message_get_packed_size(c->resp);
		packed = n <= STORE_RESPONSE_MAX ? snap_arena_alloc(&c->arena, n > 0 ? n : 1) : NULL;
		if (packed != NULL) {
			protobuf_c_message_pack(c->resp, packed);
			o.response = packed;
			o.response_len = n;
		}
	}
	if (o.state == STORE_UNKNOWN)
		o.next_attempt_ms = clock_wall_ms() + reconcile_backoff_ms(0, clock_jitter32());
	o.detail = c->status;
	/* on failure (logged) the row stays PENDING and is reconciled after a restart */
	if (journal_outcome(c->b->journal, c->journal_id, &o, on_outcome_recorded, c) != 0)
		return false;
	step(c, CALL_OUTCOME);
	return true;
}

/* The journal refused the attempt: nothing was sent. */
static void refused_by_journal(call *c, int err)
{
	c->journal_id = 0;
	c->outcome = OUT(NOT_DONE);
	fail(c, CODE(UNAVAILABLE), "the journal cannot record the request: %s; not sent",
	     store_strerror(err));
}

/* Answer c from its journaled row, without sending. */
static void answer_from_row(call *c, const store_row *row)
{
	text_printf(c->external_id, sizeof(c->external_id), "%s", row->external_id);
	c->http = row->http_status;
	text_printf(c->response_code, sizeof(c->response_code), "%s", row->response_code);
	c->response_message = row->response_message[0] != '\0' ?
		snap_arena_strndup(&c->arena, row->response_message, strlen(row->response_message)) :
		NULL;
	c->resp = NULL;
	if (row->response != NULL && row->response_len > 0)
		c->resp = protobuf_c_message_unpack(c->m->output, &c->arena.pb, row->response_len,
						    row->response);
	if (row->state == STORE_DONE) {
		c->code = CODE(OK);
		c->outcome = OUT(DONE);
		text_printf(c->status, sizeof(c->status),
			 "answered from the journal: partner reference %s was done (X-EXTERNAL-ID %s); "
			 "not sent again", row->partner_reference_no, row->external_id);
	} else {
		c->code = CODE(UNAVAILABLE);
		c->outcome = OUT(UNKNOWN);
		text_printf(c->status, sizeof(c->status),
			 "partner reference %s is journaled (%s, X-EXTERNAL-ID %s) and its outcome is not "
			 "known yet; not sent again: ask GetOperation", row->partner_reference_no,
			 store_state_name(row->state), row->external_id);
	}
	step(c, CALL_ANSWERED);
}

static void on_verdict(const journal_verdict *v, void *data)
{
	call *c = data;

	switch (v->kind) {
	case JOURNAL_SEND:
		c->journal_id = v->id;
		if (c->abort_code != 0) {
			c->code = c->abort_code;
			c->outcome = OUT(NOT_DONE);
			step(c, CALL_ANSWERED);
			break;
		}
		step(c, CALL_TOKENS); /* the tokens again (dropped meanwhile?), then send */
		break;
	case JOURNAL_JOURNALED:
		answer_from_row(c, v->row);
		break;
	case JOURNAL_CONFLICT:
		c->outcome = OUT(NOT_DONE);
		fail(c, CODE(ALREADY_EXISTS),
		     "partner reference %s is journaled (%s) for a different request; not sent",
		     v->row->partner_reference_no, store_state_name(v->row->state));
		break;
	case JOURNAL_RACING:
		c->journal_id = 0;
		c->outcome = OUT(UNKNOWN);
		fail(c, CODE(ABORTED),
		     "another call with partner reference %s is being sent; this one was not sent: "
		     "ask GetOperation", c->partner_ref != NULL ? c->partner_ref : "-");
		break;
	case JOURNAL_FAILED:
		refused_by_journal(c, v->err);
		break;
	}
	kick(c);
}

/* A new attempt of a money-moving call: journal it before it leaves.
 * 1: INTENT (the verdict follows), 0: not journaled, <0: a STORE_ERR_*. */
static int journal_intent(call *c)
{
	journal *j = c->b->journal;
	journal_attempt_rec a = { 0 };
	reconcile_keys k;
	int rc;

	if (!c->m->money || j == NULL || !journal_on(j))
		return 0;
	if (methods_keys(c->m, c->req, &k) != 0)
		return STORE_ERR_INVALID;
	a.id = c->journal_id;
	a.method = c->m->name;
	a.profile = c->prof->name;
	a.customer_ref = c->ref;
	a.keys = &k;
	a.external_id = c->external_id;
	a.request_time = c->ts;
	a.body = c->body.data;
	a.body_len = c->body.len;
	a.refused_http = c->http;
	a.refused_response_code = c->response_code;
	rc = journal_attempt(j, &a, on_verdict, c);
	if (rc != 0)
		return rc;
	step(c, CALL_INTENT);
	return 1;
}

/* ---- tokens -------------------------------------------------------------------------------- */

/* DOKU refused a token request made for this call. */
static void token_refused(call *c, const tok_result *r)
{
	snap_code rc;
	int http = 401;

	if (r != NULL)
		http = snap_code_parse(r->response_code, strlen(r->response_code), &rc) == 0 ? rc.http
											: (int)r->http;
	if (c->waiting == WAIT_CUSTOMER) {
		fail(c, CODE(UNAUTHENTICATED),
		     "customer session \"%s\" ended: DOKU refused its refresh (%s); open a new one "
		     "with OpenCustomerSession",
		     c->ref, r != NULL ? r->response_message : "-");
		return;
	}
	fail(c, http == 401 ? CODE(UNAUTHENTICATED) : reply_code_for_http(http),
	     "DOKU refused the token request: %s", r != NULL ? r->response_message : "-");
}

/* A token request failed: err (an enum tok_err value of the daemon's error
 * space, doku_err.h) -> the call's code and status text. */
static void fail_token(call *c, int err, const tok_result *r)
{
	if (r != NULL) {
		c->http = r->http;
		snprintf(c->response_code, sizeof(c->response_code), "%s", r->response_code);
		c->response_message =
			snap_arena_strndup(&c->arena, r->response_message, strlen(r->response_message));
	}
	switch (err) {
	case DOKU_ERR_NO_SESSION:
		fail(c, CODE(FAILED_PRECONDITION),
		     "no customer session \"%s\" in profile %s (open one with OpenCustomerSession)", c->ref,
		     c->prof->name);
		return;
	case DOKU_ERR_LIMIT:
		fail(c, CODE(RESOURCE_EXHAUSTED), "too many customer sessions (max_customer_sessions)");
		return;
	case DOKU_ERR_REFUSED:
		token_refused(c, r);
		return;
	case DOKU_ERR_UNAVAILABLE:
	case DOKU_ERR_TIMEOUT:
		fail(c, CODE(UNAVAILABLE), "the access token could not be fetched (%s)",
		     r != NULL ? r->response_message : "-");
		return;
	default: /* DOKU_ERR_INTERNAL */
		fail(c, CODE(INTERNAL), "token handling failed");
		return;
	}
}

/* The session-opening token request answered: the RPC's reply. */
static void session_opened(call *c, const tok_result *r)
{
	c->resp = c->m->opened(&c->arena, r);
	if (c->resp == NULL) {
		fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
		return;
	}
	c->http = r->http;
	snprintf(c->response_code, sizeof(c->response_code), "%s", r->response_code);
	c->response_message = snap_arena_strndup(&c->arena, r->response_message,
						 strlen(r->response_message));
	c->code = CODE(OK);
	c->outcome = OUT(DONE);
	step(c, CALL_ANSWERED);
}

static void on_token(tok_wait *w, const tok_result *r)
{
	call *c = w->data;

	if (r->status != 0) {
		if (c->waiting == WAIT_OPEN) {
			c->outcome = OUT(NOT_DONE);
			if (r->status == TOK_ERR_TIMEOUT || (r->status == TOK_ERR_UNAVAILABLE && r->http == 0))
				c->outcome = OUT(UNKNOWN);
		}
		fail_token(c, r->status, r);
	} else if (c->waiting == WAIT_OPEN) {
		session_opened(c, r);
	}
	/* else: still TOKENS; run() asks again, and finds the token */
	kick(c);
}

/* ---- the attempt ------------------------------------------------------------------------------ */

static void on_upstream(up_req *r);

/* Sign and send one attempt. */
static void send_attempt(call *c, const char *token, const char *ctoken)
{
	const method *m = c->m;
	const profile *p = c->prof;
	snap_request_in in = { 0 };
	snap_request rq;
	int rc;

	in.ep = m->ep;
	in.base_url = p->base_url;
	in.client_id = p->client_id;
	in.timestamp = c->ts;
	in.body = c->body.data;
	in.body_len = c->body.len;
	in.client_secret = p->client_secret->data;
	in.secret_len = p->client_secret->len;
	in.b2b_token = token;
	in.customer_token = ctoken;
	in.external_id = c->external_id;
	in.channel_id = p->channel_id;
	rc = snap_request_build(&c->arena, &in, &rq);
	if (rc != 0) {
		if (rc == SNAP_ERR_TOO_BIG)
			fail(c, CODE(RESOURCE_EXHAUSTED), "request headers too large");
		else
			fail(c, CODE(INTERNAL), "cannot sign the request");
		return;
	}
	memset(&c->up, 0, sizeof(c->up));
	c->up.url = rq.url;
	for (unsigned i = 0; i < rq.nheaders; i++)
		c->up.headers[i] = rq.headers[i];
	c->up.nheaders = rq.nheaders;
	c->up.ca_file = p->ca_file;
	c->up.body = c->body.data;
	c->up.body_len = c->body.len;
	c->up.timeout_ms = (uint32_t)(c->deadline_ms - uv_now(c->b->loop));
	c->up.fresh_connection = m->money;
	c->up.arena = &c->arena;
	c->up.done = on_upstream;
	c->up.data = c;
	if (upstream_start(c->b->up, &c->up) != 0) {
		fail(c, CODE(INTERNAL), "cannot start the HTTPS request");
		return;
	}
	step(c, CALL_SENDING);
}

/* TOKENS: get the B2B token, then the customer's; journal a new attempt;
 * send. true: the call waits (for a token, the journal or DOKU). */
static bool tokens_then_send(call *c)
{
	const char *token, *ctoken = NULL;
	int rc;

	if (c->waiting == WAIT_OPEN)
		return true; /* the session-opening request is out */
	c->wait.fn = on_token;
	c->wait.data = c;
	c->waiting = WAIT_B2B;
	rc = tokens_b2b(c->tp, c->cfg, c->prof, &c->wait);
	if (rc == 1)
		return true;
	if (rc < 0) {
		fail_token(c, rc, NULL);
		return false;
	}
	if (c->m->customer) {
		c->waiting = WAIT_CUSTOMER;
		rc = tokens_session(c->tp, c->cfg, c->prof, c->ref, &c->wait);
		if (rc == 1)
			return true;
		if (rc < 0) {
			fail_token(c, rc, NULL);
			return false;
		}
	}
	token = tokens_b2b_value(c->tp, &c->b2b_gen);
	if (c->m->customer)
		ctoken = tokens_session_value(c->tp, c->ref, &c->cust_gen);
	if (token == NULL || (c->m->customer && ctoken == NULL))
		return false; /* dropped meanwhile by another call's 401: ask again */
	c->waiting = WAIT_NONE;
	if (uv_now(c->b->loop) >= c->deadline_ms) {
		fail(c, CODE(DEADLINE_EXCEEDED), "deadline exceeded before the request was sent");
		return false;
	}
	if (c->need_extid) {
		/* a new attempt: a new X-EXTERNAL-ID, journaled before it leaves */
		if (snap_extid_next(c->external_id) != 0 || snap_time_format(time(NULL), c->ts) != 0) {
			fail(c, CODE(INTERNAL), "cannot make an X-EXTERNAL-ID");
			return false;
		}
		c->need_extid = false;
		rc = journal_intent(c);
		if (rc > 0)
			return true;
		if (rc < 0) {
			fail(c, CODE(UNAVAILABLE), "the journal cannot record the request (%s); not sent",
			     store_strerror(rc));
			return false;
		}
	}
	send_attempt(c, token, ctoken);
	return c->state == CALL_SENDING;
}

/* ---- DOKU's answer ---------------------------------------------------------------------------- */

static void on_upstream(up_req *r)
{
	call *c = r->data;
	const method *m = c->m;
	struct reply_exchange in = { r->status, r->sent, 0, NULL };
	struct reply_verdict out;
	snap_answer a = { 0 };
	snap_code rc;
	bool have_rc = false;

	c->sent = r->sent;
	c->http = r->status == UP_OK ? (unsigned)r->http : 0;
	in.http = c->http;
	if (r->status == UP_OK && r->response.len > 0) {
		snap_answer_read(m->output, c->http, r->response.data, r->response.len, &c->arena, &a);
		c->resp = a.msg;
		c->response_message = a.response_message;
		if (a.have_code) {
			have_rc = true;
			rc = a.code;
			snprintf(c->response_code, sizeof(c->response_code), "%s", rc.text);
		}
	}
	if (have_rc)
		counters_snap_code(rc.http, rc.case_code);
	if (have_rc && rc.http == 401) {
		/* a refused token: the request did not take effect; one new token, one retry */
		if ((rc.case_code == 1 || rc.case_code == 3) && !c->b2b_retried) {
			c->b2b_retried = true;
			c->need_extid = true;
			c->retries++;
			tokens_b2b_invalidate(c->tp, c->b2b_gen);
			c->resp = NULL;
			step(c, CALL_TOKENS);
			kick(c);
			return;
		}
		if (rc.case_code == 2 && m->customer && !c->cust_retried) {
			c->cust_retried = true;
			c->need_extid = true;
			c->retries++;
			tokens_session_invalidate(c->tp, c->ref, c->cust_gen);
			c->resp = NULL;
			step(c, CALL_TOKENS);
			kick(c);
			return;
		}
	}
	in.rc = have_rc ? &rc : NULL;
	reply_outcome(&in, &out);
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
	step(c, CALL_ANSWERED);
	kick(c);
}

/* ---- local RPCs --------------------------------------------------------------------------------- */

static void on_local_done(local_call *lc, int code, ProtobufCMessage *resp)
{
	call *c = (call *)(void *)((char *)lc - offsetof(call, lc));

	c->code = code;
	c->resp = code == CODE(OK) ? resp : NULL;
	if (c->abort_code != 0) {
		c->code = c->abort_code;
		c->resp = NULL;
	}
	c->outcome = c->code == CODE(OK) ? OUT(DONE) : OUT(NOT_DONE);
	step(c, CALL_ANSWERED);
	kick(c);
}

static void start_local(call *c)
{
	local_call *lc = &c->lc;

	lc->b = c->b;
	lc->arena = &c->arena;
	lc->req = c->req;
	lc->prof = c->prof;
	lc->tp = c->tp;
	lc->customer_ref = c->ref;
	lc->partner_ref = c->partner_ref;
	lc->status = c->status;
	lc->status_cap = sizeof(c->status);
	lc->done = on_local_done;
	step(c, CALL_LOCAL);
	c->m->local(lc);
}

/* ---- admitted: the deadline, then the way the row says ------------------------------------------ */

static void on_deadline(uv_timer_t *t)
{
	call_abort(t->data, CODE(DEADLINE_EXCEEDED), "deadline exceeded");
}

static int arm_deadline(call *c)
{
	c->deadline_ms = uv_now(c->b->loop) + c->timeout_ms;
	if (uv_timer_init(c->b->loop, &c->timer) != 0)
		return -ENOMEM;
	c->timer_init = true;
	c->timer.data = c;
	return uv_timer_start(&c->timer, on_deadline, c->timeout_ms, 0);
}

static void admitted(call *c)
{
	const method *m = c->m;
	int rc;

	if (m->uses_profile) {
		c->tp = tokens_profile(c->b->tokens, c->prof);
		if (c->tp == NULL || c->prof->client_secret == NULL || c->prof->key == NULL) {
			fail(c, CODE(INTERNAL), "profile %s is not ready", c->prof->name);
			return;
		}
	}
	if (m->kind == METHOD_LOCAL) {
		start_local(c);
		return;
	}
	if (arm_deadline(c) != 0) {
		fail(c, CODE(RESOURCE_EXHAUSTED), "out of timers");
		return;
	}
	if (m->kind == METHOD_SESSION_OPEN) {
		c->wait.fn = on_token;
		c->wait.data = c;
		c->waiting = WAIT_OPEN;
		step(c, CALL_TOKENS);
		rc = tokens_session_open(c->tp, c->cfg, c->prof, c->ref,
					 methods_string_field(c->req, m->required_field), &c->wait);
		if (rc < 0)
			fail_token(c, rc, NULL);
		return;
	}
	snap_buf_init(&c->body, &c->arena, (size_t)c->cfg->max_frame * 2u);
	rc = snap_json_encode(c->req, 0, &c->body);
	if (rc != 0) {
		fail(c, rc == SNAP_ERR_JSON ? CODE(INVALID_ARGUMENT) : CODE(RESOURCE_EXHAUSTED),
		     rc == SNAP_ERR_JSON ? "message: a string is not valid UTF-8" : "request too large");
		return;
	}
	c->need_extid = true;
	step(c, CALL_TOKENS);
}

/* ---- the driver ----------------------------------------------------------------------------------- */

/* Drive the call from its state until it waits for something or ends. */
static void run(call *c)
{
	bool wait = false;

	c->in_run = true;
	while (!wait) {
		switch (c->state) {
		case CALL_ADMITTED:
			admitted(c);
			break;
		case CALL_TOKENS:
			wait = tokens_then_send(c);
			break;
		case CALL_ANSWERED:
			if (c->journal_id != 0 && !c->recorded && record_outcome(c)) {
				wait = true; /* the reply waits until the outcome is durable */
				break;
			}
			step(c, CALL_REPLIED);
			break;
		case CALL_REPLIED:
			c->in_run = false;
			finish(c);
			return; /* c is gone */
		case CALL_READING:
		case CALL_INTENT:
		case CALL_SENDING:
		case CALL_LOCAL:
		case CALL_OUTCOME:
		case CALL_STATES:
			wait = true;
			break;
		}
	}
	c->in_run = false;
}

/* ---- abort, detach ---------------------------------------------------------------------------------- */

void call_abort(call *c, int code, const char *why)
{
	switch (c->state) {
	case CALL_TOKENS:
		tokens_cancel(&c->wait);
		/* a session-opening request is out: the session may get opened */
		c->outcome = c->waiting == WAIT_OPEN ? OUT(UNKNOWN) : OUT(NOT_DONE);
		break;
	case CALL_INTENT:
	case CALL_LOCAL:
		/* the journal's answer decides; nothing has been sent */
		if (c->abort_code == 0) {
			c->abort_code = code;
			snprintf(c->status, sizeof(c->status), "%s", why);
		}
		park(c);
		return;
	case CALL_OUTCOME:
		park(c); /* the outcome is known; the reply follows once it is durable */
		return;
	case CALL_SENDING:
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
	step(c, CALL_ANSWERED);
	kick(c);
}

void call_detach(call *c)
{
	c->done = NULL;
	c->detached = true;
	if (c->state == CALL_SENDING && c->m != NULL && c->m->money && c->up.sent)
		return; /* runs to its end; the outcome goes to the log and the journal */
	call_abort(c, CODE(CANCELLED), "the caller went away");
}

void call_abort_all(struct bridge *b, int code, const char *why)
{
	while (!list_empty(&b->calls))
		call_abort(list_entry(b->calls.next, call, all_node), code, why);
}
