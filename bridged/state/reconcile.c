/* Reconciliation logic, driven by the money rules of the RPC table (rpc/methods.c). */
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

#define STATUS_NOT_FOUND 7   /* SNAP's latestTransactionStatus "07" */
#define SERVICE_LEN 2

/* GetTransaction's status names, read as latestTransactionStatus codes. */
static const struct {
	const char *name;
	int code;
} status_names[] = {
	{ "SUCCESS", 0 }, { "INITIATED", 1 }, { "PAYING", 2 }, { "PENDING", 3 },
	{ "REFUNDED", 4 }, { "CANCELLED", 5 }, { "CANCELED", 5 }, { "FAILED", 6 },
	{ "NOT_FOUND", STATUS_NOT_FOUND },
};

static const reconcile_rule *(*lookup)(const char *method);

void reconcile_rule_lookup(const reconcile_rule *(*rule_of)(const char *method))
{
	lookup = rule_of;
}

static const reconcile_rule *rule_of(const char *method)
{
	return method != NULL && lookup != NULL ? lookup(method) : NULL;
}

const char *reconcile_key_field(const char *method)
{
	const reconcile_rule *r = rule_of(method);

	return r != NULL ? r->key_field : NULL;
}

const char *reconcile_original_method(const char *method)
{
	const reconcile_rule *r = rule_of(method);

	return r != NULL ? r->original_method : NULL;
}

bool reconcile_needs_original(const char *method)
{
	const reconcile_rule *r = rule_of(method);

	for (size_t i = 0; r != NULL && i < RECONCILE_PARAMS_MAX &&
			   r->params[i].src != RECONCILE_SRC_NONE; i++)
		if (r->params[i].src == RECONCILE_SRC_ORIGINAL_TIME)
			return true;
	return false;
}

const snap_endpoint *reconcile_status_endpoint(const char *method)
{
	const reconcile_rule *r = rule_of(method);

	if (r == NULL || r->ep == NULL || !(r->ep->flags & SNAP_EP_MONEY) || r->status_field == NULL)
		return NULL;
	return r->status_ep;
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

/* ---- the status request ---- */

/* The value a reconcile_field names, "" when row has none. buf holds rendered values. */
static const char *source(const reconcile_rule *r, const reconcile_field *fs,
			  const store_row *row, const store_row *original,
			  char buf[SNAP_TIMESTAMP_LEN + 1])
{
	const snap_endpoint *ep;

	switch (fs->src) {
	case RECONCILE_SRC_KEY:
		return row->partner_reference_no;
	case RECONCILE_SRC_ORIGINAL:
		return row->original_reference_no;
	case RECONCILE_SRC_EXTERNAL_ID:
		return row->external_id;
	case RECONCILE_SRC_ORIGINAL_TIME:
		if (original != NULL && original->request_time[0] != '\0')
			return original->request_time;
		/* fall through */
	case RECONCILE_SRC_TIME:
		if (row->request_time[0] != '\0')
			return row->request_time;
		if (row->created_ms > 0 && snap_time_format((time_t)(row->created_ms / 1000), buf) == 0)
			return buf;
		return "";
	case RECONCILE_SRC_SERVICE:
	case RECONCILE_SRC_ORIGINAL_SERVICE:
		ep = fs->src == RECONCILE_SRC_SERVICE ? r->ep : r->original_ep;
		if (ep == NULL || ep->service_code < 0 || ep->service_code > 99)
			return "";
		snprintf(buf, SERVICE_LEN + 1, "%02d", ep->service_code);
		return buf;
	case RECONCILE_SRC_CONST:
		return fs->arg;
	case RECONCILE_SRC_NONE:
		break;
	}
	return "";
}

int reconcile_request(const store_row *row, const store_row *original, snap_arena *arena,
		      const snap_endpoint **ep, ProtobufCMessage **out)
{
	const reconcile_rule *r = row != NULL ? rule_of(row->method) : NULL;
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
	for (size_t i = 0; i < RECONCILE_PARAMS_MAX && r->params[i].src != RECONCILE_SRC_NONE; i++) {
		const reconcile_field *p = &r->params[i];
		const ProtobufCFieldDescriptor *f =
			field_of(sep->request, p->field, PROTOBUF_C_TYPE_STRING);
		char buf[SNAP_TIMESTAMP_LEN + 1];
		const char *v = source(r, p, row, original, buf);
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
	const reconcile_rule *r = rule_of(row->method);
	const snap_endpoint *sep = r != NULL ? reconcile_status_endpoint(row->method) : NULL;
	const char *status;
	snap_code code;
	bool have_code;
	int n;

	if (detail == NULL)
		detail = unused;
	if (sep == NULL)
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
	for (size_t i = 0; i < RECONCILE_ECHOES_MAX && r->echoes[i].src != RECONCILE_SRC_NONE; i++) {
		char buf[SNAP_TIMESTAMP_LEN + 1];
		const char *want = source(r, &r->echoes[i], row, NULL, buf);
		const char *got = string_of(a->msg, r->echoes[i].field);

		if (got != NULL && got[0] != '\0' && strcmp(got, want) != 0)
			return say(detail, STORE_UNKNOWN, "%s %s: answer has %s \"%.64s\", not \"%.64s\"",
				   sep->name, code.text, r->echoes[i].field, got, want);
	}
	status = string_of(a->msg, r->status_field);
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
