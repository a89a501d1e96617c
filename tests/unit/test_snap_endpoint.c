/* snap_endpoint: the table against the contract (proto/, docs/protocol.md), lookups, and
 * snap_validate's required fields and Amount formats. */
#include "test_util.h"

#include "snap_endpoint.h"
#include "snap_err.h"
#include "snap_json.h"

#include "doku/wallet/v1/wallet.pb-c.h"

#define ARENA_LIMIT (4u * 1024u * 1024u)

static snap_arena arena;

static int setup(void **state)
{
	(void)state;
	snap_arena_init(&arena, ARENA_LIMIT);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	snap_arena_free(&arena);
	return 0;
}

struct expect {
	const char *name;
	const char *path;
	int service;
	enum snap_auth auth;
	const char *status_rpc; /* money-moving when not NULL */
};

static const struct expect table[] = {
	{ "AccessTokenB2B", "/authorization/v1/access-token/b2b", 73, SNAP_AUTH_TOKEN, NULL },
	{ "AccessTokenB2B2C", "/authorization/v1/access-token/b2b2c", 74, SNAP_AUTH_TOKEN, NULL },
	{ "CreateAccount", "/snap-adapter/b2b/v1.0/registration-account-creation", 6, SNAP_AUTH_B2B, NULL },
	{ "VerifyOtp", "/snap-adapter/b2b/v1.0/otp-verification", 4, SNAP_AUTH_B2B, NULL },
	{ "BindAccount", "/snap-adapter/b2b/v1.0/registration-account-binding", 7, SNAP_AUTH_B2B, NULL },
	{ "InquireAccount", "/snap-adapter/b2b/v1.0/registration-account-inquiry", 8, SNAP_AUTH_B2B, NULL },
	{ "UnbindAccount", "/snap-adapter/b2b/v1.0/registration-account-unbinding", 9, SNAP_AUTH_B2B, NULL },
	{ "GetBalance", "/snap-adapter/b2b2c/v1.0/balance-inquiry", 11, SNAP_AUTH_B2B_CUSTOMER, NULL },
	{ "InquireBankAccount", "/snap-adapter/b2b2c/v1.0/emoney/bank-account-inquiry", 42,
	  SNAP_AUTH_B2B_CUSTOMER, NULL },
	{ "TransferToBank", "/snap-adapter/b2b2c/v1.0/emoney/transfer-bank", 43, SNAP_AUTH_B2B_CUSTOMER,
	  "GetTransaction" },
	{ "TopUp", "/snap-adapter/b2b2c/v1.0/emoney/topup", 38, SNAP_AUTH_B2B_CUSTOMER, "GetTopUpStatus" },
	{ "GetTopUpStatus", "/snap-adapter/b2b2c/v1.0/emoney/topup-status", 39, SNAP_AUTH_B2B_CUSTOMER, NULL },
	{ "Purchase", "/snap-adapter/b2b2c/v1.0/debit/payment-host-to-host", 54, SNAP_AUTH_B2B_CUSTOMER,
	  "GetPurchaseStatus" },
	{ "GetPurchaseStatus", "/snap-adapter/b2b2c/v1.0/debit/status", 55, SNAP_AUTH_B2B_CUSTOMER, NULL },
	{ "CancelPurchase", "/snap-adapter/b2b2c/v1.0/debit/cancel", 57, SNAP_AUTH_B2B_CUSTOMER,
	  "GetPurchaseStatus" },
	{ "RefundPurchase", "/snap-adapter/b2b2c/v1.0/debit/refund", 58, SNAP_AUTH_B2B_CUSTOMER,
	  "GetTransaction" },
	{ "ListTransactions", "/snap-adapter/b2b2c/v1.0/transaction-history-list", 12,
	  SNAP_AUTH_B2B_CUSTOMER, NULL },
	{ "GetTransaction", "/snap-adapter/b2b2c/v1.0/transaction-history-detail", 13,
	  SNAP_AUTH_B2B_CUSTOMER, NULL },
};

#define N_EXPECT (sizeof(table) / sizeof(table[0]))

/* What the reference marks Required, plus the amount of money-moving calls
 * (file scope: the compound literals live as long as the program). */
#define R(...) ((const char *const[]){ __VA_ARGS__, NULL })
static const struct {
	const char *name;
	const char *const *req;
} required[] = {
	{ "AccessTokenB2B", R("grantType") },
	{ "AccessTokenB2B2C", R("grantType") },
	{ "CreateAccount", R("partnerReferenceNo", "name", "phoneNo", "email", "redirectUrl") },
	{ "VerifyOtp", R("originalPartnerReferenceNo", "originalReferenceNo", "otp") },
	{ "BindAccount", R("partnerReferenceNo", "redirectUrl") },
	{ "InquireAccount", R("partnerReferenceNo") },
	{ "UnbindAccount", R("partnerReferenceNo", "linkId", "merchantId") },
	{ "GetBalance", R("partnerReferenceNo") },
	{ "InquireBankAccount", R("partnerReferenceNo", "customerNumber", "beneficiaryAccountNumber") },
	{ "TransferToBank", R("partnerReferenceNo", "customerNumber", "accountType",
			      "beneficiaryAccountNumber", "beneficiaryBankCode", "amount.value",
			      "amount.currency") },
	{ "TopUp", R("partnerReferenceNo", "customerNumber", "amount.value", "amount.currency",
		     "sessionId", "notes") },
	{ "GetTopUpStatus", R("originalPartnerReferenceNo", "originalExternalId", "serviceCode") },
	{ "Purchase", R("partnerReferenceNo", "chargeToken", "amount.value", "amount.currency") },
	{ "GetPurchaseStatus", R("partnerReferenceNo", "serviceCode", "transactionDate") },
	{ "CancelPurchase", R("originalPartnerReferenceNo", "reason") },
	{ "RefundPurchase", R("originalPartnerReferenceNo", "reason", "partnerRefundNo") },
	{ "ListTransactions", R("partnerReferenceNo", "fromDateTime", "toDateTime", "pageSize",
				"pageNumber") },
	{ "GetTransaction", R("partnerReferenceNo") },
};
#undef R

static const char *const *required_of(const char *name)
{
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (strcmp(required[i].name, name) == 0)
			return required[i].req;
	fail_msg("no required list for %s", name);
	return NULL;
}

static void test_table(void **state)
{
	(void)state;
	assert_int_equal(snap_endpoint_count, N_EXPECT);
	for (size_t i = 0; i < N_EXPECT; i++) {
		const snap_endpoint *ep = snap_endpoint_by_name(table[i].name);
		const char *const *want = required_of(table[i].name);
		size_t k = 0;

		assert_non_null(ep);
		assert_string_equal(ep->path, table[i].path);
		assert_int_equal(ep->service_code, table[i].service);
		assert_int_equal(ep->auth, table[i].auth);
		assert_ptr_equal(snap_endpoint_by_path(table[i].path, strlen(table[i].path)), ep);
		assert_non_null(ep->request);
		assert_non_null(ep->response);
		if (table[i].status_rpc != NULL) {
			assert_true(ep->flags & SNAP_EP_MONEY);
			assert_string_equal(ep->status_rpc, table[i].status_rpc);
			assert_non_null(snap_endpoint_by_name(ep->status_rpc));
		} else {
			assert_false(ep->flags & SNAP_EP_MONEY);
			assert_null(ep->status_rpc);
		}
		for (; want[k] != NULL; k++) {
			assert_non_null(ep->required[k]);
			assert_string_equal(ep->required[k], want[k]);
		}
		assert_null(ep->required[k]);
	}
	assert_ptr_equal(snap_endpoint_by_name("AccessTokenB2B")->request,
			 &doku__wallet__v1__access_token_request__descriptor);
	assert_ptr_equal(snap_endpoint_by_name("AccessTokenB2B2C")->response,
			 &doku__wallet__v1__access_token_response__descriptor);
}

static void test_table_matches_service(void **state)
{
	const ProtobufCServiceDescriptor *svc = &doku__wallet__v1__wallet__descriptor;
	size_t matched = 0;

	(void)state;
	for (unsigned i = 0; i < svc->n_methods; i++) {
		const snap_endpoint *ep = snap_endpoint_by_name(svc->methods[i].name);

		if (ep == NULL)
			continue;
		assert_ptr_equal(ep->request, svc->methods[i].input);
		assert_ptr_equal(ep->response, svc->methods[i].output);
		matched++;
	}
	assert_int_equal(matched, 16);
	/* The daemon's own methods and OpenCustomerSession are not rows. */
	assert_null(snap_endpoint_by_name("OpenCustomerSession"));
	assert_null(snap_endpoint_by_name("Health"));
	assert_null(snap_endpoint_by_name("getbalance"));
	assert_null(snap_endpoint_by_name(""));
	assert_null(snap_endpoint_by_name(NULL));
	assert_null(snap_endpoint_by_path("/snap-adapter/b2b2c/v1.0/balance-inquiryX", 41));
	assert_null(snap_endpoint_by_path("/snap-adapter/b2b2c/v1.0/balance-inquir", 39));
	assert_non_null(snap_endpoint_by_path("/snap-adapter/b2b2c/v1.0/balance-inquiry?x", 40));
	assert_null(snap_endpoint_by_path(NULL, 0));
}

/* Set the string at a dotted JSON path of msg, creating messages on the way. */
static void set_path(ProtobufCMessage *msg, const char *path, const char *value)
{
	char seg[SNAP_JSON_NAME_MAX], name[SNAP_JSON_NAME_MAX];
	const char *dot = strchr(path, '.');
	size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);
	const ProtobufCFieldDescriptor *f = NULL;

	memcpy(seg, path, n);
	seg[n] = '\0';
	for (unsigned i = 0; i < msg->descriptor->n_fields; i++) {
		assert_int_equal(snap_json_field_name(&msg->descriptor->fields[i], name, sizeof(name)), 0);
		if (strcmp(name, seg) == 0)
			f = &msg->descriptor->fields[i];
	}
	assert_non_null(f);
	if (dot == NULL) {
		assert_int_equal(f->type, PROTOBUF_C_TYPE_STRING);
		*(const char **)((char *)msg + f->offset) = value;
	} else {
		ProtobufCMessage **sub = (ProtobufCMessage **)((char *)msg + f->offset);
		const ProtobufCMessageDescriptor *d = f->descriptor;

		assert_int_equal(f->type, PROTOBUF_C_TYPE_MESSAGE);
		if (*sub == NULL) {
			*sub = snap_arena_alloc(&arena, d->sizeof_message);
			protobuf_c_message_init(d, *sub);
		}
		set_path(*sub, dot + 1, value);
	}
}

static const char *valid_value(const char *path)
{
	if (strcmp(path, "amount.value") == 0)
		return "10000.00";
	if (strcmp(path, "amount.currency") == 0)
		return "IDR";
	return "x";
}

static void test_validate_required(void **state)
{
	char field[SNAP_FIELD_PATH_MAX];

	(void)state;
	for (size_t i = 0; i < snap_endpoint_count; i++) {
		const snap_endpoint *ep = &snap_endpoints[i];
		ProtobufCMessage *m = snap_arena_alloc(&arena, ep->request->sizeof_message);

		protobuf_c_message_init(ep->request, m);
		/* Fill the required paths one by one: each time the next is named. */
		for (size_t k = 0; ep->required[k] != NULL; k++) {
			assert_int_equal(snap_validate(ep, m, field), SNAP_ERR_MISSING);
			assert_string_equal(field, ep->required[k]);
			set_path(m, ep->required[k], "");
			assert_int_equal(snap_validate(ep, m, field), SNAP_ERR_MISSING);
			assert_string_equal(field, ep->required[k]);
			set_path(m, ep->required[k], valid_value(ep->required[k]));
		}
		assert_int_equal(snap_validate(ep, m, field), SNAP_OK);
		assert_string_equal(field, "");
		/* Remove each one again: it is the one named. */
		for (size_t k = 0; ep->required[k] != NULL; k++) {
			set_path(m, ep->required[k], "");
			assert_int_equal(snap_validate(ep, m, field), SNAP_ERR_MISSING);
			assert_string_equal(field, ep->required[k]);
			set_path(m, ep->required[k], valid_value(ep->required[k]));
		}
		/* A message of another type is refused. */
		if (ep->request != &doku__wallet__v1__get_balance_request__descriptor) {
			Doku__Wallet__V1__GetBalanceRequest g = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;

			assert_int_equal(snap_validate(ep, &g.base, field), SNAP_ERR_INVALID);
		}
	}
}

static void test_validate_absent_amount(void **state)
{
	Doku__Wallet__V1__PurchaseRequest p = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	char field[SNAP_FIELD_PATH_MAX];

	(void)state;
	p.partner_reference_no = "P";
	p.charge_token = "DOKU";
	assert_int_equal(snap_validate(snap_endpoint_by_name("Purchase"), &p.base, field),
			 SNAP_ERR_MISSING);
	assert_string_equal(field, "amount.value");
}

static void test_validate_amount_formats(void **state)
{
	static const char *good[] = { "0.00", "1.00", "10000.00", "99.99", "1234567890123456.00" };
	static const char *bad[] = { "10000", "10000.0", "10000.000", "01.00", "00.00", "-1.00",
				     "+1.00", "1,000.00", " 1.00", "1.00 ", "abc", "1e3.00", ".50",
				     "1.", "1.0a", "12345678901234567.00", "1.00\n", "１.00" };
	static const char *bad_cur[] = { "idr", "ID", "IDRR", "1DR", "Idr", " ID" };
	Doku__Wallet__V1__GetPurchaseStatusRequest s = DOKU__WALLET__V1__GET_PURCHASE_STATUS_REQUEST__INIT;
	Doku__Wallet__V1__RefundPurchaseRequest r = DOKU__WALLET__V1__REFUND_PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__Amount a = DOKU__WALLET__V1__AMOUNT__INIT;
	const snap_endpoint *st = snap_endpoint_by_name("GetPurchaseStatus");
	const snap_endpoint *rf = snap_endpoint_by_name("RefundPurchase");
	char field[SNAP_FIELD_PATH_MAX];

	(void)state;
	s.partner_reference_no = "P";
	s.service_code = "54";
	s.transaction_date = "2024-01-01T10:00:00+07:00";
	assert_int_equal(snap_validate(st, &s.base, field), SNAP_OK); /* optional amount absent */
	s.amount = &a;
	a.currency = "IDR";
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		a.value = (char *)good[i];
		assert_int_equal(snap_validate(st, &s.base, field), SNAP_OK);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a.value = (char *)bad[i];
		if (snap_validate(st, &s.base, field) != SNAP_ERR_FORMAT)
			fail_msg("accepted amount \"%s\"", bad[i]);
		assert_string_equal(field, "amount.value");
	}
	/* A present but empty optional Amount is badly formed. */
	a.value = "";
	assert_int_equal(snap_validate(st, &s.base, field), SNAP_ERR_FORMAT);
	assert_string_equal(field, "amount.value");
	a.value = "1.00";
	for (size_t i = 0; i < sizeof(bad_cur) / sizeof(bad_cur[0]); i++) {
		a.currency = (char *)bad_cur[i];
		assert_int_equal(snap_validate(st, &s.base, field), SNAP_ERR_FORMAT);
		assert_string_equal(field, "amount.currency");
	}
	/* The path of an Amount under another name. */
	r.original_partner_reference_no = "P";
	r.reason = "R";
	r.partner_refund_no = "F";
	r.refund_amount = &a;
	a.currency = "IDR";
	a.value = "5.5";
	assert_int_equal(snap_validate(rf, &r.base, field), SNAP_ERR_FORMAT);
	assert_string_equal(field, "refundAmount.value");
	a.value = "5.50";
	assert_int_equal(snap_validate(rf, &r.base, field), SNAP_OK);
	/* Missing comes before format. */
	r.reason = "";
	a.value = "bad";
	assert_int_equal(snap_validate(rf, &r.base, field), SNAP_ERR_MISSING);
	assert_string_equal(field, "reason");
}

static void test_validate_from_json(void **state)
{
	const snap_endpoint *ep = snap_endpoint_by_name("TopUp");
	ProtobufCMessage *m = NULL;
	char field[SNAP_FIELD_PATH_MAX], err[SNAP_JSON_ERR_MAX];
	const char *json = "{\"partnerReferenceNo\":\"P\",\"customerNumber\":\"C\","
			   "\"amount\":{\"value\":\"1.00\"},\"sessionId\":\"S\",\"notes\":\"N\"}";

	(void)state;
	assert_int_equal(snap_json_decode(ep->request, json, strlen(json), SNAP_JSON_STRICT, &arena,
					  &m, err, sizeof(err)),
			 SNAP_OK);
	assert_int_equal(snap_validate(ep, m, field), SNAP_ERR_MISSING);
	assert_string_equal(field, "amount.currency");
	assert_int_equal(snap_validate(NULL, m, field), SNAP_ERR_INVALID);
	assert_int_equal(snap_validate(ep, NULL, field), SNAP_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_table_matches_service),
		cmocka_unit_test_setup_teardown(test_validate_required, setup, teardown),
		cmocka_unit_test(test_validate_absent_amount),
		cmocka_unit_test(test_validate_amount_formats),
		cmocka_unit_test_setup_teardown(test_validate_from_json, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
