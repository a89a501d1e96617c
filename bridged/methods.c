/* The RPC table and the daemon-local RPCs. */
#include "methods.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "call.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"
#include "server.h"
#include "snap_time.h"
#include "tokens.h"

#ifndef DOKU_VERSION
#define DOKU_VERSION "0.0.0"
#endif

static int local_close(struct call *c, ProtobufCMessage **resp);
static int local_health(struct call *c, ProtobufCMessage **resp);
static int local_metrics(struct call *c, ProtobufCMessage **resp);

#define SNAP_ROW(n) { .name = n, .kind = METHOD_SNAP, .endpoint = n, .uses_profile = true }

/* One row per RPC, in the service's order. */
static method rows[] = {
	SNAP_ROW("CreateAccount"),
	SNAP_ROW("VerifyOtp"),
	SNAP_ROW("BindAccount"),
	SNAP_ROW("InquireAccount"),
	SNAP_ROW("UnbindAccount"),
	SNAP_ROW("GetBalance"),
	SNAP_ROW("InquireBankAccount"),
	SNAP_ROW("TransferToBank"),
	SNAP_ROW("TopUp"),
	SNAP_ROW("GetTopUpStatus"),
	SNAP_ROW("Purchase"),
	SNAP_ROW("GetPurchaseStatus"),
	SNAP_ROW("CancelPurchase"),
	SNAP_ROW("RefundPurchase"),
	SNAP_ROW("ListTransactions"),
	SNAP_ROW("GetTransaction"),
	{ .name = "OpenCustomerSession", .kind = METHOD_SESSION_OPEN, .endpoint = "AccessTokenB2B2C",
	  .uses_profile = true, .customer = true,
	  .required = (const char *const[]){ "auth_code", NULL } },
	{ .name = "CloseCustomerSession", .kind = METHOD_LOCAL, .local = local_close,
	  .uses_profile = true, .customer = true },
	{ .name = "Health", .kind = METHOD_LOCAL, .local = local_health },
	{ .name = "GetOperation", .kind = METHOD_JOURNAL, .journal = journal_get_operation,
	  .uses_profile = true },
	{ .name = "ListOperations", .kind = METHOD_JOURNAL, .journal = journal_list_operations,
	  .uses_profile = true },
	{ .name = "Metrics", .kind = METHOD_LOCAL, .local = local_metrics },
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

_Static_assert(NROWS <= METHODS_MAX, "the ACL's method mask has 64 bits");

static const ProtobufCFieldDescriptor *string_field(const ProtobufCMessageDescriptor *d,
						    const char *name)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);

	if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return f;
}

int methods_init(void)
{
	const ProtobufCServiceDescriptor *svc = &doku__wallet__v1__wallet__descriptor;

	if (svc->n_methods != NROWS) {
		log_msg(LOG_LVL_ERROR, "methods: the service has %u methods, the table %zu rows",
			svc->n_methods, NROWS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < NROWS; i++) {
		method *m = &rows[i];
		const ProtobufCMethodDescriptor *md =
			protobuf_c_service_descriptor_get_method_by_name(svc, m->name);
		const char *key;
		int n;

		if (md == NULL) {
			log_msg(LOG_LVL_ERROR, "methods: %s is not a method of %s", m->name, svc->name);
			return -EINVAL;
		}
		m->index = i;
		m->input = md->input;
		m->output = md->output;
		n = snprintf(m->full, sizeof(m->full), "/%s/%s", svc->name, m->name);
		if (n < 0 || (size_t)n >= sizeof(m->full))
			return -EINVAL;
		if (m->endpoint != NULL) {
			m->ep = snap_endpoint_by_name(m->endpoint);
			if (m->ep == NULL) {
				log_msg(LOG_LVL_ERROR, "methods: no SNAP endpoint %s", m->endpoint);
				return -EINVAL;
			}
		}
		if (m->kind == METHOD_SNAP) {
			if (m->ep->request != m->input || m->ep->response != m->output) {
				log_msg(LOG_LVL_ERROR, "methods: %s: endpoint and service types differ", m->name);
				return -EINVAL;
			}
			m->money = (m->ep->flags & SNAP_EP_MONEY) != 0;
			m->customer = m->ep->auth == SNAP_AUTH_B2B_CUSTOMER;
		}
		/* a money-moving call's reference is its journal key (a refund's
		   partnerRefundNo), else partnerReferenceNo, else the original's */
		key = m->money ? reconcile_key_field(m->name) : NULL;
		m->ref_field = key != NULL ? string_field(m->input, key) : NULL;
		if (m->ref_field == NULL)
			m->ref_field = string_field(m->input, "partner_reference_no");
		if (m->ref_field == NULL)
			m->ref_field = string_field(m->input, "original_partner_reference_no");
		m->code_field = string_field(m->output, "response_code");
		m->message_field = string_field(m->output, "response_message");
	}
	return 0;
}

const method *methods_find(const char *name, size_t len)
{
	for (unsigned i = 0; i < NROWS; i++)
		if (strncmp(rows[i].full, name, len) == 0 && rows[i].full[len] == '\0')
			return &rows[i];
	return NULL;
}

int methods_index(const char *short_name)
{
	for (unsigned i = 0; i < NROWS; i++)
		if (strcmp(rows[i].name, short_name) == 0)
			return (int)i;
	return -1;
}

unsigned methods_count(void)
{
	return NROWS;
}

const method *methods_at(unsigned i)
{
	return i < NROWS ? &rows[i] : NULL;
}

const char *methods_string_field(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const char *s;

	if (msg == NULL || f == NULL)
		return NULL;
	s = *(const char *const *)(const void *)((const char *)msg + f->offset);
	return s != NULL && s[0] != '\0' ? s : NULL;
}

/* ---- daemon-local RPCs ----------------------------------------------------------- */

static int local_close(struct call *c, ProtobufCMessage **resp)
{
	Doku__Wallet__V1__CloseCustomerSessionResponse *r = snap_arena_alloc(&c->arena, sizeof(*r));

	if (r == NULL)
		return DOKU__BRIDGE__V1__CODE__RESOURCE_EXHAUSTED;
	doku__wallet__v1__close_customer_session_response__init(r);
	r->closed = c->tp != NULL && tokens_session_close(c->tp, c->ref);
	*resp = &r->base;
	return 0;
}

static int local_health(struct call *c, ProtobufCMessage **resp)
{
	struct bridge *b = c->b;
	const config *cfg = b->cfg;
	Doku__Wallet__V1__HealthResponse *h = snap_arena_alloc(&c->arena, sizeof(*h));
	Doku__Wallet__V1__ProfileHealth **ps;

	ps = snap_arena_alloc(&c->arena, sizeof(*ps) * (cfg->nprofiles + 1));
	if (h == NULL || ps == NULL)
		return DOKU__BRIDGE__V1__CODE__RESOURCE_EXHAUSTED;
	doku__wallet__v1__health_response__init(h);
	h->version = DOKU_VERSION;
	h->uptime_seconds = (uv_now(b->loop) - b->started_ms) / 1000u;
	h->calls_served = b->calls_served;
	h->calls_failed = b->calls_failed;
	h->calls_in_flight = b->calls_in_flight > 0 ? b->calls_in_flight - 1 : 0; /* not this one */
	h->connections = server_connections(b->srv);
	h->profiles = ps;
	for (unsigned i = 0; i < cfg->nprofiles; i++) {
		Doku__Wallet__V1__ProfileHealth *p = snap_arena_alloc(&c->arena, sizeof(*p));
		tok_profile *tp = tokens_profile(b->tokens, &cfg->profiles[i]);
		tok_health th = { 0 };

		if (p == NULL)
			return DOKU__BRIDGE__V1__CODE__RESOURCE_EXHAUSTED;
		doku__wallet__v1__profile_health__init(p);
		p->name = cfg->profiles[i].name;
		if (tp != NULL)
			tokens_health(tp, &th);
		p->b2b_token_valid = th.b2b_valid;
		if (th.b2b_valid_until != 0) {
			char *ts = snap_arena_alloc(&c->arena, SNAP_TIMESTAMP_LEN + 1);

			if (ts != NULL && snap_time_format(th.b2b_valid_until, ts) == 0)
				p->b2b_token_valid_until = ts;
		}
		p->customer_sessions = th.sessions;
		p->token_fetches = th.fetches;
		ps[h->n_profiles++] = p;
	}
	*resp = &h->base;
	return 0;
}

/* The Prometheus text of metrics.c, rendered into the call's arena. */
static int local_metrics(struct call *c, ProtobufCMessage **resp)
{
	Doku__Wallet__V1__MetricsResponse *r = snap_arena_alloc(&c->arena, sizeof(*r));
	snap_buf text;

	if (r == NULL)
		return DOKU__BRIDGE__V1__CODE__RESOURCE_EXHAUSTED;
	doku__wallet__v1__metrics_response__init(r);
	snap_buf_init(&text, &c->arena, METRICS_TEXT_MAX);
	if (metrics_render(c->b, 1, &text) != 0 || text.data == NULL) {
		snprintf(c->status, sizeof(c->status), "the metrics text is over %u bytes",
			 METRICS_TEXT_MAX);
		return DOKU__BRIDGE__V1__CODE__RESOURCE_EXHAUSTED;
	}
	r->text = text.data;
	*resp = &r->base;
	return 0;
}
