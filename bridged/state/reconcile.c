/* Reconciliation logic: one table row per money-moving RPC, one per status RPC. */
#include "reconcile.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "snap_code.h"
#include "snap_err.h"
#include "snap_time.h"

#define PARAMS_MAX 3
#define ECHOES_MAX 2
#define STATUS_NOT_FOUND 7   /* SNAP's latestTransactionStatus "07" */
#define SERVICE_LEN 2

enum src {
	SRC_NONE,          /* the end of a list */
	SRC_KEY,           /* row.partner_reference_no */
	SRC_ORIGINAL,      /* row.original_reference_no */
	SRC_EXTERNAL_ID,   /* row.external_id */
	SRC_TIME,          /* row.request_time */
	SRC_ORIGINAL_TIME, /* the original row's request_time, else row's */
	SRC_SERVICE,       /* the two-digit service code of endpoint arg */
	SRC_CONST,         /* arg */
};

struct field_src {
	const char *field; /* a string field (proto name) */
	enum src src;
	const char *arg;
};

struct rule {
	const char *method;
	const char *original_method; /* the RPC whose row the original field names (or NULL) */
	const char *key_field;      /* request fields: the idempotency key, */
	const char *original_field; /* the purchase it refers to (or NULL), */
	const char *amount_field;   /* its Amount (or NULL) */
	struct field_src params[PARAMS_MAX]; /* the status request */
	struct field_src echoes[ECHOES_MAX]; /* answer fields that, when set, must match */
	const char *verdict; /* by status 00..06 (7 letters): 'D' DONE, 'N' NOT_DONE, 'U' UNKNOWN */
};

static const struct rule rules[] = {
	{ "TransferToBank", NULL, "partner_reference_no", NULL, "amount",
	  { { "partner_reference_no", SRC_KEY, NULL } },
	  { { "partner_reference_no", SRC_KEY, NULL }, { "type", SRC_CONST, "SEND_MONEY" } },
	  "DUUUDNN" },
	{ "TopUp", NULL, "partner_reference_no", NULL, "amount",
	  { { "original_partner_reference_no", SRC_KEY, NULL },
	    { "original_external_id", SRC_EXTERNAL_ID, NULL },
	    { "service_code", SRC_SERVICE, "TopUp" } },
	  { { "original_partner_reference_no", SRC_KEY, NULL },
	    { "original_external_id", SRC_EXTERNAL_ID, NULL } },
	  "DUUUDNN" },
	{ "Purchase", NULL, "partner_reference_no", NULL, "amount",
	  { { "partner_reference_no", SRC_KEY, NULL },
	    { "service_code", SRC_SERVICE, "Purchase" },
	    { "transaction_date", SRC_TIME, NULL } },
	  { { "original_partner_reference_no", SRC_KEY, NULL } },
	  "DUUUDNN" },
	{ "CancelPurchase", "Purchase", "original_partner_reference_no", "original_partner_reference_no", NULL,
	  { { "partner_reference_no", SRC_ORIGINAL, NULL },
	    { "service_code", SRC_SERVICE, "Purchase" },
	    { "transaction_date", SRC_ORIGINAL_TIME, NULL } },
	  { { "original_partner_reference_no", SRC_ORIGINAL, NULL } },
	  "NUUUNDN" },
	{ "RefundPurchase", "Purchase", "partner_refund_no", "original_partner_reference_no", "refund_amount",
	  { { "partner_reference_no", SRC_KEY, NULL } },
	  { { "partner_reference_no", SRC_KEY, NULL }, { "type", SRC_CONST, "REFUND" } },
	  "DUUUDNN" },
};

struct status_rpc {
	const char *name;
	const char *status_field; /* of the answer */
};

static const struct status_rpc status_rpcs[] = {
	{ "GetPurchaseStatus", "latest_transaction_status" },
	{ "GetTopUpStatus", "latest_transaction_status" },
	{ "GetTransaction", "status" },
};

/* GetTransaction's status names, read as latestTransactionStatus codes. */
static const struct {
	const char *name;
	int code;
} status_names[] = {
	{ "SUCCESS", 0 }, { "INITIATED", 1 }, { "PAYING", 2 }, { "PENDING", 3 },
	{ "REFUNDED", 4 }, { "CANCELLED", 5 }, { "CANCELED", 5 }, { "FAILED", 6 },
	{ "NOT_FOUND", STATUS_NOT_FOUND },
};

static const struct rule *rule_of(const char *method)
{
	for (size_t i = 0; method != NULL && i < sizeof(rules) / sizeof(rules[0]); i++)
		if (strcmp(rules[i].method, method) == 0)
			return &rules[i];
	return NULL;
}

static const struct status_rpc *status_rpc_of(const char *name)
{
	for (size_t i = 0; i < sizeof(status_rpcs) / sizeof(status_rpcs[0]); i++)
		if (strcmp(status_rpcs[i].name, name) == 0)
			return &status_rpcs[i];
	return NULL;
}

const char *reconcile_key_field(const char *method)
{
	const struct rule *r = rule_of(method);

	return r != NULL ? r->key_field : NULL;
}

const char *reconcile_original_method(const char *method)
{
	const struct rule *r = rule_of(method);

	return r != NULL ? r->original_method : NULL;
}

bool reconcile_needs_original(const char *method)
{
	const struct rule *r = rule_of(method);

	for (size_t i = 0; r != NULL && i < PARAMS_MAX && r->params[i].src != SRC_NONE; i++)
		if (r->params[i].src == SRC_ORIGINAL_TIME)
			return true;
	return false;
}

const snap_endpoint *reconcile_status_endpoint(const char *method)
{
	const snap_endpoint *ep = rule_of(method) != NULL ? snap_endpoint_by_name(method) : NULL;

	if (ep == NULL || !(ep->flags & SNAP_EP_MONEY) || ep->status_rpc == NULL ||
	    status_rpc_of(ep->status_rpc) == NULL)
		return NULL;
	return snap_endpoint_by_name(ep->status_rpc);
}

/* ---- message fields by name ---- */

static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d,
						const char *name, ProtobufCType type)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);

	if (f == NULL || f->type != type || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return f;
}

/* The string field name of m: "" when unset, NULL when m has no such field. */
static const char *string_of(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *f = field_of(m->descriptor, name, PROTOBUF_C_TYPE_STRING);
	const char *v;

	if (f == NULL)
		return NULL;
	v = *(const char *const *)((const char *)m + f->offset);
	return v != NULL ? v : "";
}

static const ProtobufCMessage *message_of(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *f = field_of(m->descriptor, name, PROTOBUF_C_TYPE_MESSAGE);

	if (f == NULL)
		return NULL;
	return *(const ProtobufCMessage *const *)((const char *)m + f->offset);
}

/* ---- the journal keys of a request ---- */

int reconcile_keys_of(const snap_endpoint *ep, const ProtobufCMessage *msg, reconcile_keys *out)
{
	const struct rule *r = ep != NULL ? rule_of(ep->name) : NULL;
	const ProtobufCMessage *amount;

	memset(out, 0, sizeof(*out));
	if (r == NULL || !(ep->flags & SNAP_EP_MONEY) || msg == NULL ||
	    msg->descriptor != ep->request)
		return SNAP_ERR_INVALID;
	out->partner_reference_no = string_of(msg, r->key_field);
	out->original_reference_no = r->original_field != NULL ? string_of(msg, r->original_field)
							       : "";
	out->amount_value = "";
	out->amount_currency = "";
	amount = r->amount_field != NULL ? message_of(msg, r->amount_field) : NULL;
	if (amount != NULL) {
		const char *v = string_of(amount, "value"), *c = string_of(amount, "currency");

		out->amount_value = v != NULL ? v : "";
		out->amount_currency = c != NULL ? c : "";
	}
	if (out->partner_reference_no == NULL || out->original_reference_no == NULL)
		return SNAP_ERR_INVALID;
	if (out->partner_reference_no[0] == '\0')
		return SNAP_ERR_MISSING;
	return 0;
}

/* ---- the status request ---- */

/* The value a field_src names, "" when row has none. buf holds rendered values. */
static const char *source(const struct field_src *fs, const store_row *row,
			  const store_row *original, char buf[SNAP_TIMESTAMP_LEN + 1])
{
	const snap_endpoint *ep;

	switch (fs->src) {
	case SRC_KEY:
		return row->partner_reference_no;
	case SRC_ORIGINAL:
		return row->original_reference_no;
	case SRC_EXTERNAL_ID:
		return row->external_id;
	case SRC_ORIGINAL_TIME:
		if (original != NULL && original->request_time[0] != '\0')
			return original->request_time;
		/* fall through */
	case SRC_TIME:
		if (row->request_time[0] != '\0')
			return row->request_time;
		if (row->created_ms > 0 && snap_time_format((time_t)(row->created_ms / 1000), buf) == 0)
			return buf;
		return "";
	case SRC_SERVICE:
		ep = snap_endpoint_by_name(fs->arg);
		if (ep == NULL || ep->service_code < 0 || ep->service_code > 99)
			return "";
		snprintf(buf, SERVICE_LEN + 1, "%02d", ep->service_code);
		return buf;
	case SRC_CONST:
		return fs->arg;
	case SRC_NONE:
		break;
	}
	return "";
}

int reconcile_request(const store_row *row, const store_row *original, snap_arena *arena,
		      const snap_endpoint **ep, ProtobufCMessage **out)
{
	const struct rule *r = row != NULL ? rule_of(row->method) : NULL;
	const snap_endpoint *sep = r != NULL ? reconcile_status_endpoint(row->method) : NULL;
	ProtobufCMessage *m;

	*ep = NULL;
	*out = NULL;
	if (sep == NULL)
		return SNAP_ERR_INVALID;
	m = snap_arena_alloc(arena, sep->request->sizeof_message);
	if (m == NULL)
		return SNAP_ERR_NOMEM;
	protobuf_c_message_init(sep->request, m);
	for (size_t i = 0; i < PARAMS_MAX && r->params[i].src != SRC_NONE; i++) {
		const struct field_src *p = &r->params[i];
		const ProtobufCFieldDescriptor *f =
			field_of(sep->request, p->field, PROTOBUF_C_TYPE_STRING);
		char buf[SNAP_TIMESTAMP_LEN + 1];
		const char *v = source(p, row, original, buf);
		char *copy;

		if (f == NULL)
			return SNAP_ERR_INVALID;
		if (v[0] == '\0')
			return SNAP_ERR_MISSING;
		copy = snap_arena_strndup(arena, v, strlen(v));
		if (copy == NULL)
			return SNAP_ERR_NOMEM;
		*(char **)((char *)m + f->offset) = copy;
	}
	*ep = sep;
	*out = m;
	return 0;
}

/* ---- reading the answer ---- */

__attribute__((format(printf, 3, 4)))
static enum store_state say(char *detail, enum store_state s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, RECONCILE_DETAIL_MAX + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* A status value ("00", "3", a GetTransaction name) as 0..7; -1 if none of these. */
static int status_code(const char *s)
{
	size_t n = strlen(s);

	if (n >= 1 && n <= 2 && s[0] >= '0' && s[0] <= '9' && (n == 1 || (s[1] >= '0' && s[1] <= '9'))) {
		int v = n == 1 ? s[0] - '0' : (s[0] - '0') * 10 + (s[1] - '0');

		return v <= STATUS_NOT_FOUND ? v : -1;
	}
	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (strcasecmp(s, status_names[i].name) == 0)
			return status_names[i].code;
	return -1;
}

static enum store_state not_found(const store_row *row, int64_t now_ms, const char *rpc,
				  const char *what, char *detail)
{
	int64_t age = now_ms - row->created_ms;

	if (age >= RECONCILE_SETTLE_MS)
		return say(detail, STORE_NOT_DONE, "%s: %s: not found -> NOT_DONE", rpc, what);
	return say(detail, STORE_UNKNOWN, "%s: %s: not found %" PRId64 " ms after the intent; asking again",
		   rpc, what, age);
}

enum store_state reconcile_read(const store_row *row, const reconcile_answer *a, int64_t now_ms,
				char detail[RECONCILE_DETAIL_MAX + 1])
{
	char unused[RECONCILE_DETAIL_MAX + 1];
	const struct rule *r = rule_of(row->method);
	const snap_endpoint *sep = r != NULL ? reconcile_status_endpoint(row->method) : NULL;
	const struct status_rpc *srpc = sep != NULL ? status_rpc_of(sep->name) : NULL;
	const char *status;
	snap_code code;
	bool have_code;
	int n;

	if (detail == NULL)
		detail = unused;
	if (srpc == NULL)
		return say(detail, STORE_UNKNOWN, "%s does not move money", row->method);
	if (a == NULL || a->http == 0)
		return say(detail, STORE_UNKNOWN, "%s: no answer", sep->name);
	have_code = a->response_code != NULL &&
		    snap_code_parse(a->response_code, strlen(a->response_code), &code) == 0;
	if (have_code && code.http == 404 && code.case_code == 1)
		return not_found(row, now_ms, sep->name, code.text, detail);
	if (!have_code || !snap_code_is_success(&code))
		return say(detail, STORE_UNKNOWN, "%s: HTTP %u, responseCode %s; asking again",
			   sep->name, a->http, have_code ? code.text : "none");
	if (a->msg == NULL || a->msg->descriptor != sep->response)
		return say(detail, STORE_UNKNOWN, "%s %s: no readable answer", sep->name, code.text);
	for (size_t i = 0; i < ECHOES_MAX && r->echoes[i].src != SRC_NONE; i++) {
		char buf[SNAP_TIMESTAMP_LEN + 1];
		const char *want = source(&r->echoes[i], row, NULL, buf);
		const char *got = string_of(a->msg, r->echoes[i].field);

		if (got != NULL && got[0] != '\0' && strcmp(got, want) != 0)
			return say(detail, STORE_UNKNOWN, "%s %s: answer has %s \"%.64s\", not \"%.64s\"",
				   sep->name, code.text, r->echoes[i].field, got, want);
	}
	status = string_of(a->msg, srpc->status_field);
	n = status != NULL ? status_code(status) : -1;
	if (n < 0)
		return say(detail, STORE_UNKNOWN, "%s %s: unknown status \"%.32s\"", sep->name,
			   code.text, status != NULL ? status : "");
	if (n == STATUS_NOT_FOUND)
		return not_found(row, now_ms, sep->name, "status 07", detail);
	switch (r->verdict[n]) {
	case 'D':
		return say(detail, STORE_DONE, "%s %s: status %.32s -> DONE", sep->name, code.text,
			   status);
	case 'N':
		return say(detail, STORE_NOT_DONE, "%s %s: status %.32s -> NOT_DONE", sep->name,
			   code.text, status);
	default:
		return say(detail, STORE_UNKNOWN, "%s %s: status %.32s; asking again", sep->name,
			   code.text, status);
	}
}

uint32_t reconcile_backoff_ms(int64_t age_ms, uint32_t rnd)
{
	uint64_t d = age_ms > 0 ? (uint64_t)age_ms / RECONCILE_BACKOFF_AGE_DIV : 0;
	uint32_t half;

	if (d < RECONCILE_BACKOFF_BASE_MS)
		d = RECONCILE_BACKOFF_BASE_MS;
	if (d > RECONCILE_BACKOFF_MAX_MS)
		d = RECONCILE_BACKOFF_MAX_MS;
	half = (uint32_t)(d / 2);
	return half + rnd % ((uint32_t)d - half + 1);
}
