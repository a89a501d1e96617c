/* The RPC table and the daemon-local RPCs. */
#include "methods.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "counters.h"
#include "doku/wallet/v1/wallet.pb-c.h"
#include "local.h"
#include "log.h"
#include "reconcile.h"
#include "snap_err.h"

/* The token endpoints (not RPCs: the daemon's own requests, tokens.h). */
#define B2B_TOKEN_ENDPOINT "AccessTokenB2B"
#define B2B2C_TOKEN_ENDPOINT "AccessTokenB2B2C"

#define SNAP_ROW(n) { .name = n, .kind = METHOD_SNAP, .endpoint = n, .uses_profile = true }
/* A money-moving row, with its money rule (state/reconcile.h) */
#define MONEY_ROW(n, r) { .name = n, .kind = METHOD_SNAP, .endpoint = n, .uses_profile = true, \
			  .rule = &(r) }
/* A status RPC's row, with the field of its answer that holds the transaction's status */
#define STATUS_ROW(n, f) { .name = n, .kind = METHOD_SNAP, .endpoint = n, .uses_profile = true, \
			   .status_field = f }

#define F(field, src, arg) { field, RECONCILE_SRC_##src, arg }

/* The money rules: the journal key, the status request, the answer's echoes
 * and what each latestTransactionStatus 00..06 means ('D' DONE, 'N' NOT_DONE,
 * 'U' UNKNOWN; docs/state.md). The endpoints are filled by methods_init. */
static reconcile_rule transfer_rule = {
	.key_field = "partner_reference_no", .amount_field = "amount",
	.params = { F("partner_reference_no", KEY, NULL) },
	.echoes = { F("partner_reference_no", KEY, NULL), F("type", CONST, "SEND_MONEY") },
	.verdict = "DUUUDNN",
};
static reconcile_rule topup_rule = {
	.key_field = "partner_reference_no", .amount_field = "amount",
	.params = { F("original_partner_reference_no", KEY, NULL),
		    F("original_external_id", EXTERNAL_ID, NULL), F("service_code", SERVICE, NULL) },
	.echoes = { F("original_partner_reference_no", KEY, NULL),
		    F("original_external_id", EXTERNAL_ID, NULL) },
	.verdict = "DUUUDNN",
};
static reconcile_rule purchase_rule = {
	.key_field = "partner_reference_no", .amount_field = "amount",
	.params = { F("partner_reference_no", KEY, NULL), F("service_code", SERVICE, NULL),
		    F("transaction_date", TIME, NULL) },
	.echoes = { F("original_partner_reference_no", KEY, NULL) },
	.verdict = "DUUUDNN",
};
static reconcile_rule cancel_rule = {
	.key_field = "original_partner_reference_no",
	.original_field = "original_partner_reference_no", .original_method = "Purchase",
	.params = { F("partner_reference_no", ORIGINAL, NULL),
		    F("service_code", ORIGINAL_SERVICE, NULL),
		    F("transaction_date", ORIGINAL_TIME, NULL) },
	.echoes = { F("original_partner_reference_no", ORIGINAL, NULL) },
	.verdict = "NUUUNDN",
};
static reconcile_rule refund_rule = {
	.key_field = "partner_refund_no", .amount_field = "refund_amount",
	.original_field = "original_partner_reference_no", .original_method = "Purchase",
	.params = { F("partner_reference_no", KEY, NULL) },
	.echoes = { F("partner_reference_no", KEY, NULL), F("type", CONST, "REFUND") },
	.verdict = "DUUUDNN",
};

/* One row per RPC, in the service's order. */
static method rows[] = {
	SNAP_ROW("CreateAccount"),
	SNAP_ROW("VerifyOtp"),
	SNAP_ROW("BindAccount"),
	SNAP_ROW("InquireAccount"),
	SNAP_ROW("UnbindAccount"),
	SNAP_ROW("GetBalance"),
	SNAP_ROW("InquireBankAccount"),
	MONEY_ROW("TransferToBank", transfer_rule),
	MONEY_ROW("TopUp", topup_rule),
	STATUS_ROW("GetTopUpStatus", "latest_transaction_status"),
	MONEY_ROW("Purchase", purchase_rule),
	STATUS_ROW("GetPurchaseStatus", "latest_transaction_status"),
	MONEY_ROW("CancelPurchase", cancel_rule),
	MONEY_ROW("RefundPurchase", refund_rule),
	SNAP_ROW("ListTransactions"),
	STATUS_ROW("GetTransaction", "status"),
	{ .name = "OpenCustomerSession", .kind = METHOD_SESSION_OPEN,
	  .endpoint = B2B2C_TOKEN_ENDPOINT, .opened = local_session_opened,
	  .uses_profile = true, .customer = true,
	  .required = (const char *const[]){ "auth_code", NULL } },
	{ .name = "CloseCustomerSession", .kind = METHOD_LOCAL, .local = local_close_session,
	  .uses_profile = true, .customer = true },
	{ .name = "Health", .kind = METHOD_LOCAL, .local = local_health, .routine = true },
	{ .name = "GetOperation", .kind = METHOD_LOCAL, .local = local_get_operation,
	  .uses_profile = true },
	{ .name = "ListOperations", .kind = METHOD_LOCAL, .local = local_list_operations,
	  .uses_profile = true },
	{ .name = "Metrics", .kind = METHOD_LOCAL, .local = local_metrics },
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

_Static_assert(NROWS <= METHODS_MAX, "the ACL's method mask has 64 bits");

/* The singular field name of d, of type type; NULL when d has none. */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d,
						const char *name, ProtobufCType type)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);

	if (f == NULL || f->type != type || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return f;
}

static const ProtobufCFieldDescriptor *string_field(const ProtobufCMessageDescriptor *d,
						    const char *name)
{
	return field_of(d, name, PROTOBUF_C_TYPE_STRING);
}

/* The request fields of m's money rule, resolved once. 0 or -EINVAL. */
static int resolve_keys(method *m)
{
	const reconcile_rule *r = m->rule;
	const ProtobufCMessageDescriptor *amount;

	if (m->ref_field == NULL || strcmp(m->ref_field->name, r->key_field) != 0)
		goto bad;
	if (r->original_field != NULL) {
		m->original_field = string_field(m->input, r->original_field);
		if (m->original_field == NULL)
			goto bad;
	}
	if (r->amount_field != NULL) {
		m->amount_field = field_of(m->input, r->amount_field, PROTOBUF_C_TYPE_MESSAGE);
		if (m->amount_field == NULL)
			goto bad;
		amount = m->amount_field->descriptor;
		m->amount_value = string_field(amount, "value");
		m->amount_currency = string_field(amount, "currency");
		if (m->amount_value == NULL || m->amount_currency == NULL)
			goto bad;
	}
	return 0;
bad:
	log_msg(LOG_LVL_ERROR, "methods: %s: its money rule names a field its request lacks", m->name);
	return -EINVAL;
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
		m->full_len = (size_t)n;
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
		key = m->money && m->rule != NULL ? m->rule->key_field : NULL;
		m->ref_field = key != NULL ? string_field(m->input, key) : NULL;
		if (m->ref_field == NULL)
			m->ref_field = string_field(m->input, "partner_reference_no");
		if (m->ref_field == NULL)
			m->ref_field = string_field(m->input, "original_partner_reference_no");
		if (m->kind == METHOD_SESSION_OPEN)
			m->required_field = string_field(m->input, m->required[0]);
		counters_name_method(i, m->name);
	}
	/* a money-moving row: its rule, its status RPC (the endpoint table's link) */
	for (unsigned i = 0; i < NROWS; i++) {
		method *m = &rows[i];
		const method *orig;

		if (m->money != (m->rule != NULL)) {
			log_msg(LOG_LVL_ERROR, "methods: %s: a money rule exactly when it moves money",
				m->name);
			return -EINVAL;
		}
		if (!m->money)
			continue;
		m->status = m->ep->status_rpc != NULL ? methods_by_name(m->ep->status_rpc) : NULL;
		if (m->status == NULL || m->status->kind != METHOD_SNAP ||
		    m->status->status_field == NULL) {
			log_msg(LOG_LVL_ERROR, "methods: %s moves money but has no status RPC", m->name);
			return -EINVAL;
		}
		orig = m->rule->original_method != NULL ? methods_by_name(m->rule->original_method)
							: NULL;
		if (m->rule->original_method != NULL && (orig == NULL || !orig->money)) {
			log_msg(LOG_LVL_ERROR, "methods: %s: no money-moving %s", m->name,
				m->rule->original_method);
			return -EINVAL;
		}
		if (resolve_keys(m) != 0)
			return -EINVAL;
		m->rule->ep = m->ep;
		m->rule->original_ep = orig != NULL ? orig->ep : NULL;
		m->rule->status_ep = m->status->ep;
		m->rule->status_field = m->status->status_field;
	}
	reconcile_rule_lookup(methods_money_rule);
	if (snap_endpoint_by_name(B2B_TOKEN_ENDPOINT) == NULL) {
		log_msg(LOG_LVL_ERROR, "methods: no SNAP endpoint %s", B2B_TOKEN_ENDPOINT);
		return -EINVAL;
	}
	config_method_lookup(methods_index);
	return 0;
}

const method *methods_find(const char *name, size_t len)
{
	/* the rows share their service's prefix: the length tells most apart */
	for (unsigned i = 0; i < NROWS; i++)
		if (rows[i].full_len == len && memcmp(rows[i].full, name, len) == 0)
			return &rows[i];
	return NULL;
}

const method *methods_by_name(const char *short_name)
{
	int i = methods_index(short_name);

	return i >= 0 ? &rows[i] : NULL;
}

const reconcile_rule *methods_money_rule(const char *short_name)
{
	const method *m = methods_by_name(short_name);

	return m != NULL ? m->rule : NULL;
}

const snap_endpoint *methods_b2b_token_endpoint(void)
{
	return snap_endpoint_by_name(B2B_TOKEN_ENDPOINT);
}

const snap_endpoint *methods_b2b2c_token_endpoint(void)
{
	return snap_endpoint_by_name(B2B2C_TOKEN_ENDPOINT);
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

/* The string field f of msg, "" when unset. */
static const char *string_or_empty(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const char *s = *(const char *const *)(const void *)((const char *)msg + f->offset);

	return s != NULL ? s : "";
}

int methods_keys(const method *m, const ProtobufCMessage *req, reconcile_keys *out)
{
	const ProtobufCMessage *amount = NULL;

	memset(out, 0, sizeof(*out));
	if (m == NULL || !m->money || req == NULL || req->descriptor != m->input)
		return SNAP_ERR_INVALID;
	out->partner_reference_no = string_or_empty(req, m->ref_field);
	out->original_reference_no =
		m->original_field != NULL ? string_or_empty(req, m->original_field) : "";
	out->amount_value = "";
	out->amount_currency = "";
	if (m->amount_field != NULL)
		amount = *(const ProtobufCMessage *const *)(const void *)((const char *)req +
									  m->amount_field->offset);
	if (amount != NULL) {
		out->amount_value = string_or_empty(amount, m->amount_value);
		out->amount_currency = string_or_empty(amount, m->amount_currency);
	}
	if (out->partner_reference_no[0] == '\0')
		return SNAP_ERR_MISSING;
	return 0;
}

const char *methods_string_field(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const char *s;

	if (msg == NULL || f == NULL)
		return NULL;
	s = *(const char *const *)(const void *)((const char *)msg + f->offset);
	return s != NULL && s[0] != '\0' ? s : NULL;
}
