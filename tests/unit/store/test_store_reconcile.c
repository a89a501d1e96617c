/* reconcile.c with the RPC table's money rules: status requests, reading answers, backoff. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doku/wallet/v1/wallet.pb-c.h"
#include "reconcile.h"
#include "snap_err.h"

int methods_init(void); /* rpc/methods.h: the RPC table, whose rows hold the money rules */

#define NOW_MS 1704078000000LL /* 2024-01-01T10:00:00+07:00 */
#define LONG_AGO (NOW_MS - 10 * 60 * 1000)
#define ARENA_MAX (64u * 1024u)

static const char *const money[] = { "TransferToBank", "TopUp", "Purchase", "CancelPurchase",
				     "RefundPurchase" };

static void row_of(store_row *row, const char *method)
{
	memset(row, 0, sizeof(*row));
	snprintf(row->method, sizeof(row->method), "%s", method);
	snprintf(row->profile, sizeof(row->profile), "default");
	snprintf(row->partner_reference_no, sizeof(row->partner_reference_no), "KEY-1");
	if (strcmp(method, "CancelPurchase") == 0 || strcmp(method, "RefundPurchase") == 0)
		snprintf(row->original_reference_no, sizeof(row->original_reference_no), "PUR-1");
	snprintf(row->external_id, sizeof(row->external_id), "123456789");
	snprintf(row->request_time, sizeof(row->request_time), "2024-01-01T10:00:00+07:00");
	row->created_ms = LONG_AGO;
	row->state = STORE_UNKNOWN;
}

static void test_table_complete(void **state)
{
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < snap_endpoint_count; i++) {
		const snap_endpoint *ep = &snap_endpoints[i];
		const snap_endpoint *st = reconcile_status_endpoint(ep->name);

		if (ep->flags & SNAP_EP_MONEY) {
			assert_non_null(st);
			assert_string_equal(st->name, ep->status_rpc);
			n++;
		} else {
			assert_null(st);
		}
	}
	assert_int_equal(n, sizeof(money) / sizeof(money[0]));
	assert_null(reconcile_status_endpoint(NULL));
	assert_null(reconcile_status_endpoint("Nope"));
	/* the journal keys, and which rows need their purchase's row */
	assert_string_equal(reconcile_key_field("RefundPurchase"), "partner_refund_no");
	assert_string_equal(reconcile_key_field("CancelPurchase"), "original_partner_reference_no");
	assert_string_equal(reconcile_key_field("TopUp"), "partner_reference_no");
	assert_null(reconcile_key_field("GetBalance"));
	assert_true(reconcile_needs_original("CancelPurchase"));
	assert_false(reconcile_needs_original("RefundPurchase"));
	assert_false(reconcile_needs_original("Purchase"));
	assert_false(reconcile_needs_original("Nope"));
}

/* The string field name of m ("" when unset). */
static const char *field(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	const char *v;

	assert_non_null(f);
	v = *(const char *const *)((const char *)m + f->offset);
	return v != NULL ? v : "";
}

static void build(const store_row *row, const store_row *original, snap_arena *a,
		  const char *want_rpc, ProtobufCMessage **m)
{
	const snap_endpoint *ep = NULL;
	char bad[SNAP_FIELD_PATH_MAX];

	assert_int_equal(reconcile_request(row, original, a, &ep, m), 0);
	assert_non_null(ep);
	assert_string_equal(ep->name, want_rpc);
	assert_ptr_equal((*m)->descriptor, ep->request);
	/* everything DOKU requires of the status request is there */
	assert_int_equal(snap_validate(ep, *m, bad), 0);
}

static void test_request(void **state)
{
	snap_arena a;
	store_row row, original;
	ProtobufCMessage *m;
	const snap_endpoint *ep;

	(void)state;
	snap_arena_init(&a, ARENA_MAX);
	row_of(&row, "Purchase");
	build(&row, NULL, &a, "GetPurchaseStatus", &m);
	assert_string_equal(field(m, "partner_reference_no"), "KEY-1");
	assert_string_equal(field(m, "service_code"), "54");
	assert_string_equal(field(m, "transaction_date"), "2024-01-01T10:00:00+07:00");

	row_of(&row, "TopUp");
	build(&row, NULL, &a, "GetTopUpStatus", &m);
	assert_string_equal(field(m, "original_partner_reference_no"), "KEY-1");
	assert_string_equal(field(m, "original_external_id"), "123456789");
	assert_string_equal(field(m, "service_code"), "38");

	row_of(&row, "TransferToBank");
	build(&row, NULL, &a, "GetTransaction", &m);
	assert_string_equal(field(m, "partner_reference_no"), "KEY-1");

	/* a cancel asks about the purchase, dated by the purchase's own journal row */
	row_of(&original, "Purchase");
	snprintf(original.request_time, sizeof(original.request_time), "2023-12-31T09:00:00+07:00");
	row_of(&row, "CancelPurchase");
	build(&row, &original, &a, "GetPurchaseStatus", &m);
	assert_string_equal(field(m, "partner_reference_no"), "PUR-1");
	assert_string_equal(field(m, "service_code"), "54");
	assert_string_equal(field(m, "transaction_date"), "2023-12-31T09:00:00+07:00");
	build(&row, NULL, &a, "GetPurchaseStatus", &m);
	assert_string_equal(field(m, "transaction_date"), "2024-01-01T10:00:00+07:00");

	/* a refund is a transaction of its own: asked about by its partnerRefundNo */
	row_of(&row, "RefundPurchase");
	build(&row, &original, &a, "GetTransaction", &m);
	assert_string_equal(field(m, "partner_reference_no"), "KEY-1");

	/* no request_time: the intent's time, in Jakarta time */
	row_of(&row, "Purchase");
	row.request_time[0] = '\0';
	row.created_ms = NOW_MS;
	build(&row, NULL, &a, "GetPurchaseStatus", &m);
	assert_string_equal(field(m, "transaction_date"), "2024-01-01T10:00:00+07:00");

	/* what cannot be asked */
	row_of(&row, "CancelPurchase");
	row.original_reference_no[0] = '\0';
	assert_int_equal(reconcile_request(&row, NULL, &a, &ep, &m), SNAP_ERR_MISSING);
	assert_null(m);
	row_of(&row, "TopUp");
	row.external_id[0] = '\0';
	assert_int_equal(reconcile_request(&row, NULL, &a, &ep, &m), SNAP_ERR_MISSING);
	row_of(&row, "GetBalance");
	assert_int_equal(reconcile_request(&row, NULL, &a, &ep, &m), SNAP_ERR_INVALID);
	assert_null(ep);
	snap_arena_free(&a);
}

/* ---- answers ---- */

struct answer {
	Doku__Wallet__V1__Amount amount;
	Doku__Wallet__V1__GetPurchaseStatusResponse ps;
	Doku__Wallet__V1__GetTopUpStatusResponse ts;
	Doku__Wallet__V1__GetTransactionResponse tx;
	reconcile_answer a;
};

/* A successful answer of method's status RPC about row, with status. */
static void answer(struct answer *an, const store_row *row, const char *status,
		   const char *amount)
{
	const snap_endpoint *ep = reconcile_status_endpoint(row->method);
	bool by_original = ep != NULL && strcmp(ep->name, "GetPurchaseStatus") == 0 &&
			   row->original_reference_no[0] != '\0';
	const char *ref = by_original ? row->original_reference_no : row->partner_reference_no;

	assert_non_null(ep);
	memset(an, 0, sizeof(*an));
	doku__wallet__v1__amount__init(&an->amount);
	an->amount.value = (char *)amount;
	an->amount.currency = "IDR";
	an->a.http = 200;
	if (strcmp(ep->name, "GetPurchaseStatus") == 0) {
		doku__wallet__v1__get_purchase_status_response__init(&an->ps);
		an->ps.response_code = "2005500";
		an->ps.original_partner_reference_no = (char *)ref;
		an->ps.latest_transaction_status = (char *)status;
		an->ps.trans_amount = &an->amount;
		an->a.msg = &an->ps.base;
		an->a.response_code = "2005500";
	} else if (strcmp(ep->name, "GetTopUpStatus") == 0) {
		doku__wallet__v1__get_top_up_status_response__init(&an->ts);
		an->ts.original_partner_reference_no = (char *)ref;
		an->ts.original_external_id = (char *)row->external_id;
		an->ts.latest_transaction_status = (char *)status;
		an->ts.amount = &an->amount;
		an->a.msg = &an->ts.base;
		an->a.response_code = "2003900";
	} else {
		doku__wallet__v1__get_transaction_response__init(&an->tx);
		an->tx.partner_reference_no = (char *)ref;
		an->tx.status = (char *)status;
		an->tx.type = strcmp(row->method, "RefundPurchase") == 0 ? "REFUND" : "SEND_MONEY";
		an->tx.amount = &an->amount;
		an->a.msg = &an->tx.base;
		an->a.response_code = "2001300";
	}
}

static enum store_state read_status(const store_row *row, const char *status, const char *amount)
{
	struct answer an;
	char detail[RECONCILE_DETAIL_MAX + 1] = "";
	enum store_state s;

	answer(&an, row, status, amount);
	s = reconcile_read(row, &an.a, NOW_MS, detail);
	assert_true(detail[0] != '\0');
	return s;
}

#define D STORE_DONE
#define N STORE_NOT_DONE
#define U STORE_UNKNOWN

static void test_read_every_status(void **state)
{
	/* statuses 00..07, as the reference and the issue define them */
	static const struct {
		const char *method;
		const char *row_amount; /* "": none asked for */
		enum store_state want[8];
	} table[] = {
		{ "TransferToBank", "", { D, U, U, U, D, N, N, N } },
		{ "TopUp", "", { D, U, U, U, D, N, N, N } },
		{ "Purchase", "", { D, U, U, U, D, N, N, N } },
		{ "CancelPurchase", "", { N, U, U, U, N, D, N, N } },
		{ "RefundPurchase", "10000.00", { D, U, U, U, D, N, N, N } }, /* all of it */
		{ "RefundPurchase", "2500.00", { D, U, U, U, D, N, N, N } },  /* part: the same */
	};
	store_row row;
	char code[4];

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		row_of(&row, table[i].method);
		snprintf(row.amount_value, sizeof(row.amount_value), "%s", table[i].row_amount);
		for (int s = 0; s < 8; s++) {
			snprintf(code, sizeof(code), "%02d", s);
			if (read_status(&row, code, "10000") != table[i].want[s])
				fail_msg("%s (%s) status %s: got %d, want %d", table[i].method,
					 table[i].row_amount, code,
					 read_status(&row, code, "10000"), table[i].want[s]);
			/* DOKU may send the status as a JSON number: "0" for "00" */
			snprintf(code, sizeof(code), "%d", s);
			assert_int_equal(read_status(&row, code, "10000"), table[i].want[s]);
		}
	}
}

static void test_read_transaction_names(void **state)
{
	static const struct {
		const char *status;
		enum store_state want;
	} names[] = {
		{ "SUCCESS", D }, { "success", D }, { "PENDING", U }, { "FAILED", N },
		{ "CANCELLED", N }, { "REFUNDED", D }, { "WHATEVER", U }, { "", U }, { "99", U },
	};
	store_row row;

	(void)state;
	row_of(&row, "TransferToBank");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (read_status(&row, names[i].status, "1") != names[i].want)
			fail_msg("status \"%s\"", names[i].status);
}

static void test_read_not_found(void **state)
{
	reconcile_answer nf = { .http = 404, .response_code = "4045501" };
	char detail[RECONCILE_DETAIL_MAX + 1];
	store_row row;

	(void)state;
	for (size_t i = 0; i < sizeof(money) / sizeof(money[0]); i++) {
		row_of(&row, money[i]);
		assert_int_equal(reconcile_read(&row, &nf, NOW_MS, detail), STORE_NOT_DONE);
		assert_non_null(strstr(detail, "not found"));
		/* too soon after the intent: DOKU may still be taking it in */
		row.created_ms = NOW_MS - 1000;
		assert_int_equal(reconcile_read(&row, &nf, NOW_MS, detail), STORE_UNKNOWN);
		assert_int_equal(read_status(&row, "07", "1"), STORE_UNKNOWN);
		row.created_ms = NOW_MS - RECONCILE_SETTLE_MS;
		assert_int_equal(reconcile_read(&row, &nf, NOW_MS, detail), STORE_NOT_DONE);
	}
}

static void test_read_stays_unknown(void **state)
{
	static const struct {
		unsigned http;
		const char *code;
	} refusals[] = {
		{ 0, NULL },          /* no answer */
		{ 200, NULL },        /* no responseCode */
		{ 200, "20055" },     /* not a responseCode */
		{ 202, "2025500" },   /* in progress */
		{ 401, "4015501" },   /* token */
		{ 404, "4045500" },   /* 404, but not "not found" */
		{ 500, "5005501" },
		{ 504, "5045500" },
	};
	Doku__Wallet__V1__GetTopUpStatusResponse other = DOKU__WALLET__V1__GET_TOP_UP_STATUS_RESPONSE__INIT;
	char detail[RECONCILE_DETAIL_MAX + 1];
	struct answer an;
	store_row row;

	(void)state;
	row_of(&row, "Purchase");
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		answer(&an, &row, "00", "1");
		an.a.http = refusals[i].http;
		an.a.response_code = refusals[i].code;
		assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, detail), STORE_UNKNOWN);
	}
	/* no message, or a message of another type */
	answer(&an, &row, "00", "1");
	an.a.msg = NULL;
	assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, detail), STORE_UNKNOWN);
	answer(&an, &row, "00", "1");
	other.latest_transaction_status = "00";
	an.a.msg = &other.base;
	assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, detail), STORE_UNKNOWN);
	/* an answer about another transaction */
	answer(&an, &row, "00", "1");
	an.ps.original_partner_reference_no = "KEY-2";
	assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, detail), STORE_UNKNOWN);
	assert_non_null(strstr(detail, "KEY-2"));
	row_of(&row, "TopUp");
	answer(&an, &row, "00", "1");
	an.ts.original_external_id = "999";
	assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, detail), STORE_UNKNOWN);
	row_of(&row, "TransferToBank");
	answer(&an, &row, "SUCCESS", "1");
	an.tx.type = "PAYMENT"; /* a purchase of the same reference */
	assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, detail), STORE_UNKNOWN);
	/* an empty echo is not a mismatch */
	an.tx.type = "";
	assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, detail), STORE_DONE);
	/* not a money-moving method */
	row_of(&row, "GetBalance");
	assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, NULL), STORE_UNKNOWN);
}

/* A refund, whole or part, is read from its own transaction (GetTransaction by
 * partnerRefundNo), never from the purchase's status. */
static void test_read_refund(void **state)
{
	static const char *const amounts[] = { "10000.00", "2500.00", "0.01", "" };
	char detail[RECONCILE_DETAIL_MAX + 1];
	struct answer an;
	store_row row;

	(void)state;
	row_of(&row, "RefundPurchase");
	for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		snprintf(row.amount_value, sizeof(row.amount_value), "%s", amounts[i]);
		assert_int_equal(read_status(&row, "SUCCESS", "10000.00"), STORE_DONE);
		assert_int_equal(read_status(&row, "FAILED", "10000.00"), STORE_NOT_DONE);
		assert_int_equal(read_status(&row, "PENDING", "10000.00"), STORE_UNKNOWN);
	}
	/* the purchase's own record under that reference is not the refund */
	answer(&an, &row, "SUCCESS", "10000.00");
	an.tx.type = "PAYMENT";
	assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, detail), STORE_UNKNOWN);
	assert_non_null(strstr(detail, "PAYMENT"));
	/* an answer about the purchase, or another refund */
	answer(&an, &row, "SUCCESS", "10000.00");
	an.tx.partner_reference_no = "PUR-1";
	assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, detail), STORE_UNKNOWN);
	/* a purchase status answer does not settle a refund */
	{
		Doku__Wallet__V1__GetPurchaseStatusResponse ps =
			DOKU__WALLET__V1__GET_PURCHASE_STATUS_RESPONSE__INIT;

		answer(&an, &row, "SUCCESS", "10000.00");
		ps.latest_transaction_status = "04";
		ps.original_partner_reference_no = "PUR-1";
		an.a.msg = &ps.base;
		an.a.response_code = "2005500";
		assert_int_equal(reconcile_read(&row, &an.a, NOW_MS, detail), STORE_UNKNOWN);
	}
}

static void test_backoff(void **state)
{
	static const uint32_t rnds[] = { 0, 1, 499, 500, 501, 12345, 0x7fffffffu, 0xffffffffu };
	static const int64_t ages[] = { -5000, 0, 1, 999, 2000, 2001, 10000, 65000, 599999,
					600000, 600001, 3600000, INT64_MAX };
	uint64_t prev_cap = 0;
	int64_t age;
	unsigned queries;

	(void)state;
	for (size_t a = 0; a < sizeof(ages) / sizeof(ages[0]); a++) {
		uint64_t cap = ages[a] > 0 ? (uint64_t)ages[a] / RECONCILE_BACKOFF_AGE_DIV : 0;

		cap = cap < RECONCILE_BACKOFF_BASE_MS ? RECONCILE_BACKOFF_BASE_MS : cap;
		cap = cap > RECONCILE_BACKOFF_MAX_MS ? RECONCILE_BACKOFF_MAX_MS : cap;
		assert_true(cap >= prev_cap); /* older rows never wait less */
		prev_cap = cap;
		for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
			uint32_t d = reconcile_backoff_ms(ages[a], rnds[i]);

			assert_true(d >= cap / 2 && d <= cap);
		}
		for (int i = 0; i < 1000; i++) {
			uint32_t d = reconcile_backoff_ms(ages[a], (uint32_t)rand());

			assert_true(d >= cap / 2 && d <= cap);
		}
	}
	assert_int_equal(reconcile_backoff_ms(0, 0), 500);
	assert_int_equal(reconcile_backoff_ms(0, 500), 1000);
	assert_int_equal(reconcile_backoff_ms(65000, 0), 16250);
	assert_int_equal(reconcile_backoff_ms(65000, 16250), 32500);
	assert_int_equal(reconcile_backoff_ms(3600000, 0), 150000);
	assert_int_equal(reconcile_backoff_ms(3600000, 150000), 300000);

	/* a row that never settles, queried at each scheduled time: DOKU is not
	   hammered (the shortest delays: ~20 queries in the first 10 minutes) ... */
	for (age = 0, queries = 0; age < 600000; queries++)
		age += reconcile_backoff_ms(age, 0);
	assert_true(queries <= 30);
	/* ... and a row is asked again within half its age, however many queries
	   it has had (a row 61 s old after six early "not found": 30.5 s at most) */
	assert_true(reconcile_backoff_ms(61000, UINT32_MAX) <= 30500);
}

int main(void)
{
	/* the money rules are the RPC table's: it hands them to reconcile.c */
	if (methods_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_complete),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_read_every_status),
		cmocka_unit_test(test_read_transaction_names),
		cmocka_unit_test(test_read_not_found),
		cmocka_unit_test(test_read_stays_unknown),
		cmocka_unit_test(test_read_refund),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
