/* The DOKU Wallet SNAP endpoints and the required-field / Amount checks. */
#include "snap_endpoint.h"
#include "snap_err.h"
#include "snap_json.h"

#include <stdio.h>
#include <string.h>

#include "doku/wallet/v1/wallet.pb-c.h"

#define AMOUNT_TYPE "doku.wallet.v1.Amount"
#define AMOUNT_VALUE_INT_MAX 16 /* digits before the point */
#define VALIDATE_DEPTH_MAX 16   /* nesting of messages walked for Amounts */

#define REQ(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define WALLET(name) &doku__wallet__v1__##name##__descriptor

#define B2B "/snap-adapter/b2b/v1.0/"
#define B2B2C "/snap-adapter/b2b2c/v1.0/"

const snap_endpoint snap_endpoints[] = {
	{ "AccessTokenB2B", "/authorization/v1/access-token/b2b", 73, SNAP_AUTH_TOKEN, 0,
	  WALLET(access_token_request), WALLET(access_token_response), REQ("grantType"), NULL },
	{ "AccessTokenB2B2C", "/authorization/v1/access-token/b2b2c", 74, SNAP_AUTH_TOKEN, 0,
	  WALLET(access_token_request), WALLET(access_token_response), REQ("grantType"), NULL },
	{ "CreateAccount", B2B "registration-account-creation", 6, SNAP_AUTH_B2B, 0,
	  WALLET(create_account_request), WALLET(create_account_response),
	  REQ("partnerReferenceNo", "name", "phoneNo", "email", "redirectUrl"), NULL },
	{ "VerifyOtp", B2B "otp-verification", 4, SNAP_AUTH_B2B, 0,
	  WALLET(verify_otp_request), WALLET(verify_otp_response),
	  REQ("originalPartnerReferenceNo", "originalReferenceNo", "otp"), NULL },
	{ "BindAccount", B2B "registration-account-binding", 7, SNAP_AUTH_B2B, 0,
	  WALLET(bind_account_request), WALLET(bind_account_response),
	  REQ("partnerReferenceNo", "redirectUrl"), NULL },
	{ "InquireAccount", B2B "registration-account-inquiry", 8, SNAP_AUTH_B2B, 0,
	  WALLET(inquire_account_request), WALLET(inquire_account_response),
	  REQ("partnerReferenceNo"), NULL },
	{ "UnbindAccount", B2B "registration-account-unbinding", 9, SNAP_AUTH_B2B, 0,
	  WALLET(unbind_account_request), WALLET(unbind_account_response),
	  REQ("partnerReferenceNo", "linkId", "merchantId"), NULL },
	{ "GetBalance", B2B2C "balance-inquiry", 11, SNAP_AUTH_B2B_CUSTOMER, 0,
	  WALLET(get_balance_request), WALLET(get_balance_response),
	  REQ("partnerReferenceNo"), NULL },
	{ "InquireBankAccount", B2B2C "emoney/bank-account-inquiry", 42, SNAP_AUTH_B2B_CUSTOMER, 0,
	  WALLET(inquire_bank_account_request), WALLET(inquire_bank_account_response),
	  REQ("partnerReferenceNo", "customerNumber", "beneficiaryAccountNumber"), NULL },
	{ "TransferToBank", B2B2C "emoney/transfer-bank", 43, SNAP_AUTH_B2B_CUSTOMER, SNAP_EP_MONEY,
	  WALLET(transfer_to_bank_request), WALLET(transfer_to_bank_response),
	  REQ("partnerReferenceNo", "customerNumber", "accountType", "beneficiaryAccountNumber",
	      "beneficiaryBankCode", "amount.value", "amount.currency"),
	  "GetTransaction" },
	{ "TopUp", B2B2C "emoney/topup", 38, SNAP_AUTH_B2B_CUSTOMER, SNAP_EP_MONEY,
	  WALLET(top_up_request), WALLET(top_up_response),
	  REQ("partnerReferenceNo", "customerNumber", "amount.value", "amount.currency",
	      "sessionId", "notes"),
	  "GetTopUpStatus" },
	{ "GetTopUpStatus", B2B2C "emoney/topup-status", 39, SNAP_AUTH_B2B_CUSTOMER, 0,
	  WALLET(get_top_up_status_request), WALLET(get_top_up_status_response),
	  REQ("originalPartnerReferenceNo", "originalExternalId", "serviceCode"), NULL },
	{ "Purchase", B2B2C "debit/payment-host-to-host", 54, SNAP_AUTH_B2B_CUSTOMER, SNAP_EP_MONEY,
	  WALLET(purchase_request), WALLET(purchase_response),
	  REQ("partnerReferenceNo", "chargeToken", "amount.value", "amount.currency"),
	  "GetPurchaseStatus" },
	{ "GetPurchaseStatus", B2B2C "debit/status", 55, SNAP_AUTH_B2B_CUSTOMER, 0,
	  WALLET(get_purchase_status_request), WALLET(get_purchase_status_response),
	  REQ("partnerReferenceNo", "serviceCode", "transactionDate"), NULL },
	{ "CancelPurchase", B2B2C "debit/cancel", 57, SNAP_AUTH_B2B_CUSTOMER, SNAP_EP_MONEY,
	  WALLET(cancel_purchase_request), WALLET(cancel_purchase_response),
	  REQ("originalPartnerReferenceNo", "reason"), "GetPurchaseStatus" },
	{ "RefundPurchase", B2B2C "debit/refund", 58, SNAP_AUTH_B2B_CUSTOMER, SNAP_EP_MONEY,
	  WALLET(refund_purchase_request), WALLET(refund_purchase_response),
	  REQ("originalPartnerReferenceNo", "reason", "partnerRefundNo"), "GetTransaction" },
	{ "ListTransactions", B2B2C "transaction-history-list", 12, SNAP_AUTH_B2B_CUSTOMER, 0,
	  WALLET(list_transactions_request), WALLET(list_transactions_response),
	  REQ("partnerReferenceNo", "fromDateTime", "toDateTime", "pageSize", "pageNumber"), NULL },
	{ "GetTransaction", B2B2C "transaction-history-detail", 13, SNAP_AUTH_B2B_CUSTOMER, 0,
	  WALLET(get_transaction_request), WALLET(get_transaction_response),
	  REQ("partnerReferenceNo"), NULL },
};

const size_t snap_endpoint_count = sizeof(snap_endpoints) / sizeof(snap_endpoints[0]);

const snap_endpoint *snap_endpoint_by_name(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < snap_endpoint_count; i++)
		if (strcmp(snap_endpoints[i].name, name) == 0)
			return &snap_endpoints[i];
	return NULL;
}

const snap_endpoint *snap_endpoint_by_path(const char *path, size_t len)
{
	if (path == NULL)
		return NULL;
	for (size_t i = 0; i < snap_endpoint_count; i++) {
		const char *p = snap_endpoints[i].path;

		if (strlen(p) == len && memcmp(p, path, len) == 0)
			return &snap_endpoints[i];
	}
	return NULL;
}

/* The field of desc whose JSON name is name[0..len). */
static const ProtobufCFieldDescriptor *field_by_json(const ProtobufCMessageDescriptor *desc,
						     const char *name, size_t len)
{
	char jname[SNAP_JSON_NAME_MAX];

	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];

		if (snap_json_field_name(f, jname, sizeof(jname)) == 0 &&
		    strlen(jname) == len && memcmp(jname, name, len) == 0)
			return f;
	}
	return NULL;
}

/* Whether the dotted JSON path is present and non-empty in msg. */
static int path_present(const ProtobufCMessage *msg, const char *path)
{
	const char *seg = path;

	while (msg != NULL) {
		const char *dot = strchr(seg, '.');
		size_t n = dot != NULL ? (size_t)(dot - seg) : strlen(seg);
		const ProtobufCFieldDescriptor *f = field_by_json(msg->descriptor, seg, n);

		if (f == NULL || !snap_json_field_present(msg, f))
			return 0;
		if (dot == NULL)
			return 1;
		if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
			return 0;
		msg = *(ProtobufCMessage *const *)((const char *)msg + f->offset);
		seg = dot + 1;
	}
	return 0;
}

static int amount_value_ok(const char *v)
{
	size_t n = 0;

	if (v == NULL || v[0] < '0' || v[0] > '9')
		return 0;
	if (v[0] == '0') {
		n = 1;
	} else {
		while (v[n] >= '0' && v[n] <= '9')
			n++;
		if (n > AMOUNT_VALUE_INT_MAX)
			return 0;
	}
	return v[n] == '.' && v[n + 1] >= '0' && v[n + 1] <= '9' && v[n + 2] >= '0' &&
	       v[n + 2] <= '9' && v[n + 3] == '\0';
}

static int currency_ok(const char *c)
{
	return c != NULL && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' &&
	       c[2] >= 'A' && c[2] <= 'Z' && c[3] == '\0';
}

/* Append ".name" (or "name" at the root) to the path in field; false if it does not fit. */
static int path_push(char field[SNAP_FIELD_PATH_MAX], size_t len, const char *name, long index)
{
	int n;

	if (index >= 0)
		n = snprintf(field + len, SNAP_FIELD_PATH_MAX - len, "%s%s[%ld]",
			     len > 0 ? "." : "", name, index);
	else
		n = snprintf(field + len, SNAP_FIELD_PATH_MAX - len, "%s%s", len > 0 ? "." : "",
			     name);
	return n >= 0 && (size_t)n < SNAP_FIELD_PATH_MAX - len;
}

/* Check every Amount in msg; field[0..len) is msg's path. */
static int check_amounts(const ProtobufCMessage *msg, char field[SNAP_FIELD_PATH_MAX],
			 size_t len, int depth)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	char jname[SNAP_JSON_NAME_MAX];
	int rc;

	if (depth > VALIDATE_DEPTH_MAX)
		return SNAP_ERR_INVALID;
	if (strcmp(d->name, AMOUNT_TYPE) == 0) {
		const Doku__Wallet__V1__Amount *a = (const Doku__Wallet__V1__Amount *)msg;

		if (!amount_value_ok(a->value)) {
			path_push(field, len, "value", -1);
			return SNAP_ERR_FORMAT;
		}
		if (!currency_ok(a->currency)) {
			path_push(field, len, "currency", -1);
			return SNAP_ERR_FORMAT;
		}
		return SNAP_OK;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *p = (const char *)msg + f->offset;
		size_t count = 1;
		ProtobufCMessage *const *items = (ProtobufCMessage *const *)p;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE || !snap_json_field_present(msg, f))
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			count = *(const size_t *)((const char *)msg + f->quantifier_offset);
			items = *(ProtobufCMessage *const *const *)p;
		}
		if (snap_json_field_name(f, jname, sizeof(jname)) != 0)
			return SNAP_ERR_INVALID;
		for (size_t k = 0; k < count; k++) {
			if (items[k] == NULL)
				continue;
			if (!path_push(field, len, jname,
				       f->label == PROTOBUF_C_LABEL_REPEATED ? (long)k : -1))
				return SNAP_ERR_INVALID;
			rc = check_amounts(items[k], field, strlen(field), depth + 1);
			if (rc != 0)
				return rc;
			field[len] = '\0';
		}
	}
	return SNAP_OK;
}

int snap_validate(const snap_endpoint *ep, const ProtobufCMessage *msg,
		  char field[SNAP_FIELD_PATH_MAX])
{
	field[0] = '\0';
	if (ep == NULL || msg == NULL || msg->descriptor != ep->request)
		return SNAP_ERR_INVALID;
	for (const char *const *r = ep->required; r != NULL && *r != NULL; r++) {
		if (!path_present(msg, *r)) {
			snprintf(field, SNAP_FIELD_PATH_MAX, "%s", *r);
			return SNAP_ERR_MISSING;
		}
	}
	return check_amounts(msg, field, 0, 0);
}
