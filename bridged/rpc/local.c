/* The daemon-local RPCs. */
#include "local.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "clock.h"
#include "text.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"
#include "exposition.h"
#include "journal.h"
#include "snap_buf.h"
#include "snap_time.h"

#ifndef DOKU_VERSION
#define DOKU_VERSION "0.0.0"
#endif

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x
#define OPSTATE(x) DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_##x
#define PAGE_TOKEN_MAX 24
#define LIST_MAX 500u          /* ListOperations page_size cap (proto) */

/* The handler cannot allocate its answer. */
static void out_of_memory(local_call *c)
{
	text_printf(c->status, c->status_cap, "out of memory");
	c->done(c, CODE(RESOURCE_EXHAUSTED), NULL);
}

/* ---- customer sessions ------------------------------------------------------------------ */

static void on_session_ended(int status, bool existed, void *data)
{
	local_call *c = data;
	Doku__Wallet__V1__CloseCustomerSessionResponse *r = c->pending;

	if (status != 0) {
		text_printf(c->status, c->status_cap, "the customer session cannot be closed in the "
			    "fleet's state database: %s", store_strerror(status));
		c->done(c, CODE(UNAVAILABLE), NULL);
		return;
	}
	r->closed = existed;
	c->done(c, CODE(OK), &r->base);
}

void local_close_session(local_call *c)
{
	Doku__Wallet__V1__CloseCustomerSessionResponse *r = snap_arena_alloc(c->arena, sizeof(*r));
	int rc;

	if (r == NULL) {
		out_of_memory(c);
		return;
	}
	doku__wallet__v1__close_customer_session_response__init(r);
	c->pending = r;
	rc = c->tp != NULL ? tokens_session_end(c->tp, c->customer_ref, on_session_ended, c) : 2;
	if (rc == 0)
		return; /* on_session_ended */
	if (rc < 0) {
		text_printf(c->status, c->status_cap, "the customer session cannot be closed in the "
			    "fleet's state database");
		c->done(c, CODE(UNAVAILABLE), NULL);
		return;
	}
	r->closed = rc == 1;
	c->done(c, CODE(OK), &r->base);
}

ProtobufCMessage *local_session_opened(snap_arena *arena, const tok_result *r)
{
	Doku__Wallet__V1__OpenCustomerSessionResponse *o = snap_arena_alloc(arena, sizeof(*o));
	char *fields[5];
	const char *src[5] = { r->response_code, r->response_message, r->token_type,
			       r->access_expiry, r->refresh_expiry };

	for (int i = 0; i < 5; i++) {
		fields[i] = snap_arena_strndup(arena, src[i], strlen(src[i]));
		if (fields[i] == NULL)
			o = NULL;
	}
	if (o == NULL)
		return NULL;
	doku__wallet__v1__open_customer_session_response__init(o);
	o->response_code = fields[0];
	o->response_message = fields[1];
	o->token_type = fields[2];
	o->access_token_expiry_time = fields[3];
	o->refresh_token_expiry_time = fields[4];
	return &o->base;
}

/* ---- Health, Metrics -------------------------------------------------------------------- */

void local_health(local_call *c)
{
	struct bridge *b = c->b;
	const config *cfg = b->cfg;
	Doku__Wallet__V1__HealthResponse *h = snap_arena_alloc(c->arena, sizeof(*h));
	Doku__Wallet__V1__ProfileHealth **ps;

	ps = snap_arena_alloc(c->arena, sizeof(*ps) * (cfg->nprofiles + 1));
	if (h == NULL || ps == NULL) {
		out_of_memory(c);
		return;
	}
	doku__wallet__v1__health_response__init(h);
	h->version = DOKU_VERSION;
	h->uptime_seconds = (uv_now(b->loop) - b->started_ms) / 1000u;
	h->calls_served = b->calls_served;
	h->calls_failed = b->calls_failed;
	h->calls_in_flight = b->calls_in_flight > 0 ? b->calls_in_flight - 1 : 0; /* not this one */
	h->connections = server_connections(b->srv);
	h->profiles = ps;
	for (unsigned i = 0; i < cfg->nprofiles; i++) {
		Doku__Wallet__V1__ProfileHealth *p = snap_arena_alloc(c->arena, sizeof(*p));
		tok_profile *tp = tokens_profile(b->tokens, &cfg->profiles[i]);
		tok_health th = { 0 };

		if (p == NULL) {
			out_of_memory(c);
			return;
		}
		doku__wallet__v1__profile_health__init(p);
		p->name = cfg->profiles[i].name;
		if (tp != NULL)
			tokens_health(tp, &th);
		p->b2b_token_valid = th.b2b_valid;
		if (th.b2b_valid_until != 0) {
			char *ts = snap_arena_alloc(c->arena, SNAP_TIMESTAMP_LEN + 1);

			if (ts != NULL && snap_time_format(th.b2b_valid_until, ts) == 0)
				p->b2b_token_valid_until = ts;
		}
		p->customer_sessions = th.sessions;
		p->token_fetches = th.fetches;
		ps[h->n_profiles++] = p;
	}
	c->done(c, CODE(OK), &h->base);
}

/* The Prometheus text, rendered into the call's arena. */
void local_metrics(local_call *c)
{
	Doku__Wallet__V1__MetricsResponse *r = snap_arena_alloc(c->arena, sizeof(*r));
	snap_buf text;

	if (r == NULL) {
		out_of_memory(c);
		return;
	}
	doku__wallet__v1__metrics_response__init(r);
	snap_buf_init(&text, c->arena, COUNTERS_TEXT_MAX);
	if (exposition_render(c->b, 1, &text) != 0 || text.data == NULL) {
		text_printf(c->status, c->status_cap, "the metrics text is over %u bytes", COUNTERS_TEXT_MAX);
		c->done(c, CODE(RESOURCE_EXHAUSTED), NULL);
		return;
	}
	r->text = text.data;
	c->done(c, CODE(OK), &r->base);
}

/* ---- GetOperation, ListOperations ------------------------------------------------------- */


static char *arena_str(local_call *c, const char *s)
{
	return snap_arena_strndup(c->arena, s, strlen(s));
}

static char *arena_time(local_call *c, int64_t ms)
{
	char *t = snap_arena_alloc(c->arena, SNAP_TIMESTAMP_LEN + 1);

	if (t == NULL || ms <= 0 || snap_time_format((time_t)(ms / 1000), t) != 0)
		return (char *)"";
	return t;
}

/* An Operation of row, in the call's arena (NULL: out of memory). */
static Doku__Wallet__V1__Operation *operation_of(local_call *c, const store_row *row)
{
	Doku__Wallet__V1__Operation *o = snap_arena_alloc(c->arena, sizeof(*o));
	Doku__Wallet__V1__Amount *a = snap_arena_alloc(c->arena, sizeof(*a));

	if (o == NULL || a == NULL)
		return NULL;
	doku__wallet__v1__operation__init(o);
	doku__wallet__v1__amount__init(a);
	o->method = arena_str(c, row->method);
	o->profile = arena_str(c, row->profile);
	o->customer_ref = arena_str(c, row->customer_ref);
	o->partner_reference_no = arena_str(c, row->partner_reference_no);
	o->external_id = arena_str(c, row->external_id);
	a->value = arena_str(c, row->amount_value);
	a->currency = arena_str(c, row->amount_currency);
	if (row->amount_value[0] != '\0')
		o->amount = a;
	o->body_sha256 = arena_str(c, row->body_sha256);
	o->state = (Doku__Wallet__V1__OperationState)row->state; /* same numbers (proto, store.h) */
	o->http_status = row->http_status;
	o->response_code = arena_str(c, row->response_code);
	o->response_message = arena_str(c, row->response_message);
	o->created_at = arena_time(c, row->created_ms);
	o->updated_at = arena_time(c, row->updated_ms);
	o->reconcile_attempts = row->attempts;
	o->detail = arena_str(c, row->detail);
	if (row->response != NULL && row->response_len > 0) {
		uint8_t *p = snap_arena_alloc(c->arena, row->response_len);

		if (p == NULL)
			return NULL;
		memcpy(p, row->response, row->response_len);
		o->response.data = p;
		o->response.len = row->response_len;
	}
	if (o->method == NULL || o->profile == NULL || o->customer_ref == NULL ||
	    o->partner_reference_no == NULL || o->external_id == NULL || a->value == NULL ||
	    a->currency == NULL || o->body_sha256 == NULL || o->response_code == NULL ||
	    o->response_message == NULL || o->detail == NULL)
		return NULL;
	return o;
}

_Static_assert((int)STORE_PENDING == (int)OPSTATE(PENDING) && (int)STORE_DONE == (int)OPSTATE(DONE) &&
		       (int)STORE_NOT_DONE == (int)OPSTATE(NOT_DONE) &&
		       (int)STORE_UNKNOWN == (int)OPSTATE(UNKNOWN),
	       "OperationState and store_state agree");

/* The journal cannot serve c: a code with the status set. */
static int unavailable(local_call *c, int err)
{
	journal *j = c->b->journal;

	if (j != NULL && !journal_on(j)) {
		text_printf(c->status, c->status_cap, "the journal is off ([bridge] journal = off)");
		return CODE(FAILED_PRECONDITION);
	}
	text_printf(c->status, c->status_cap, "the journal cannot be read: %s",
		 store_strerror(err != 0 ? err : STORE_ERR_CLOSED));
	return CODE(UNAVAILABLE);
}

static void on_get(const store_result *res, void *data)
{
	local_call *c = data;
	Doku__Wallet__V1__GetOperationResponse *r;
	ProtobufCMessage *resp = NULL;
	int code;

	if (res->status == STORE_ERR_NOT_FOUND) {
		code = CODE(NOT_FOUND);
		text_printf(c->status, c->status_cap, "no journaled operation with that %s in profile %s",
			 c->partner_ref != NULL ? "partner reference" : "X-EXTERNAL-ID", c->prof->name);
	} else if (res->status != 0 || res->n_rows != 1) {
		code = unavailable(c, res->status);
	} else {
		r = snap_arena_alloc(c->arena, sizeof(*r));
		if (r != NULL) {
			doku__wallet__v1__get_operation_response__init(r);
			r->operation = operation_of(c, &res->rows[0]);
		}
		if (r == NULL || r->operation == NULL) {
			code = CODE(RESOURCE_EXHAUSTED);
			text_printf(c->status, c->status_cap, "out of memory");
		} else {
			code = CODE(OK);
			resp = &r->base;
		}
	}
	c->done(c, code, resp);
}

static int get_operation(local_call *c)
{
	const Doku__Wallet__V1__GetOperationRequest *req = (const void *)c->req;
	journal *j = c->b->journal;
	store_key k = { 0 };
	int rc;

	if (j == NULL || !journal_on(j))
		return unavailable(c, 0);
	k.profile = c->prof->name;
	if (req->partner_reference_no != NULL && req->partner_reference_no[0] != '\0') {
		k.partner_reference_no = req->partner_reference_no;
		k.method = req->method != NULL && req->method[0] != '\0' ? req->method : NULL;
	} else if (req->external_id != NULL && req->external_id[0] != '\0') {
		k.external_id = req->external_id;
	} else {
		text_printf(c->status, c->status_cap,
			 "missing required field: partnerReferenceNo or externalId");
		return CODE(INVALID_ARGUMENT);
	}
	if ((k.partner_reference_no != NULL && strlen(k.partner_reference_no) > STORE_PARTNER_REF_MAX) ||
	    (k.external_id != NULL && strlen(k.external_id) > STORE_EXTERNAL_ID_MAX) ||
	    (k.method != NULL && strlen(k.method) > STORE_METHOD_MAX)) {
		text_printf(c->status, c->status_cap, "invalid field: %s",
			 k.external_id != NULL ? "externalId" : k.method != NULL && strlen(k.method) > STORE_METHOD_MAX ? "method" : "partnerReferenceNo");
		return CODE(INVALID_ARGUMENT);
	}
	rc = store_journal_get(journal_store(j), &k, on_get, c);
	return rc == 0 ? 0 : unavailable(c, rc);
}

static void on_list(const store_result *res, void *data)
{
	local_call *c = data;
	Doku__Wallet__V1__ListOperationsResponse *r = snap_arena_alloc(c->arena, sizeof(*r));
	Doku__Wallet__V1__Operation **ops = NULL;

	if (res->status != 0) {
		c->done(c, unavailable(c, res->status), NULL);
		return;
	}
	if (r != NULL)
		ops = snap_arena_alloc(c->arena, sizeof(*ops) * (res->n_rows + 1));
	if (r == NULL || ops == NULL)
		goto oom;
	doku__wallet__v1__list_operations_response__init(r);
	r->operations = ops;
	for (size_t i = 0; i < res->n_rows; i++) {
		ops[i] = operation_of(c, &res->rows[i]);
		if (ops[i] == NULL)
			goto oom;
		r->n_operations++;
	}
	if (res->next_before_id != 0) {
		char tok[PAGE_TOKEN_MAX];

		snprintf(tok, sizeof(tok), "%" PRId64, res->next_before_id);
		r->next_page_token = arena_str(c, tok);
		if (r->next_page_token == NULL)
			goto oom;
	}
	c->done(c, CODE(OK), &r->base);
	return;
oom:
	text_printf(c->status, c->status_cap, "out of memory");
	c->done(c, CODE(RESOURCE_EXHAUSTED), NULL);
}

/* An ISO-8601 time of field name into *ms; "" leaves it 0. */
static int time_field(local_call *c, const char *v, const char *name, int64_t *ms)
{
	time_t t;

	if (v == NULL || v[0] == '\0')
		return 0;
	if (snap_time_parse(v, strlen(v), &t) != 0) {
		text_printf(c->status, c->status_cap, "invalid field: %s (expected ISO-8601)", name);
		return -1;
	}
	*ms = (int64_t)t * 1000;
	return 0;
}

static int list_operations(local_call *c)
{
	const Doku__Wallet__V1__ListOperationsRequest *req = (const void *)c->req;
	journal *j = c->b->journal;
	store_filter f = { 0 };
	int rc;

	if (j == NULL || !journal_on(j))
		return unavailable(c, 0);
	f.profile = c->prof->name;
	if (req->customer_ref != NULL && req->customer_ref[0] != '\0') {
		if (!tokens_ref_valid(req->customer_ref)) {
			text_printf(c->status, c->status_cap, "invalid field: customerRef");
			return CODE(INVALID_ARGUMENT);
		}
		f.customer_ref = req->customer_ref;
	}
	if ((int)req->state < 0 || (int)req->state > (int)OPSTATE(UNKNOWN)) {
		text_printf(c->status, c->status_cap, "invalid field: state");
		return CODE(INVALID_ARGUMENT);
	}
	f.state = (enum store_state)req->state;
	if (time_field(c, req->from_time, "fromTime", &f.from_ms) != 0 ||
	    time_field(c, req->to_time, "toTime", &f.to_ms) != 0)
		return CODE(INVALID_ARGUMENT);
	if (req->page_size > LIST_MAX) {
		text_printf(c->status, c->status_cap, "invalid field: pageSize (at most %u)",
			 LIST_MAX);
		return CODE(INVALID_ARGUMENT);
	}
	/* a page holds at most STORE_LIST_MAX rows; next_page_token gives the rest */
	f.limit = req->page_size > STORE_LIST_MAX ? STORE_LIST_MAX : req->page_size;
	if (req->page_token != NULL && req->page_token[0] != '\0') {
		char *end;
		long long id;

		errno = 0;
		id = strtoll(req->page_token, &end, 10);
		if (errno != 0 || *end != '\0' || id <= 0) {
			text_printf(c->status, c->status_cap, "invalid field: pageToken");
			return CODE(INVALID_ARGUMENT);
		}
		f.before_id = id;
	}
	rc = store_journal_list(journal_store(j), &f, on_list, c);
	return rc == 0 ? 0 : unavailable(c, rc);
}

/* A journal read answers now when it cannot start its store request. */
void local_get_operation(local_call *c)
{
	int code = get_operation(c);

	if (code != 0)
		c->done(c, code, NULL);
}

void local_list_operations(local_call *c)
{
	int code = list_operations(c);

	if (code != 0)
		c->done(c, code, NULL);
}
