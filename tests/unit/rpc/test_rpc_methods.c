/* rpc/methods.c: the RPC table's rows, and the journal keys a money-moving
 * row reads from its requests (the fields of its money rule, resolved once at
 * start-up by methods_init). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "doku/wallet/v1/wallet.pb-c.h"
#include "methods.h"
#include "snap_err.h"

static void test_keys_of(void **state)
{
	Doku__Wallet__V1__Amount amount = DOKU__WALLET__V1__AMOUNT__INIT;
	Doku__Wallet__V1__TransferToBankRequest tr = DOKU__WALLET__V1__TRANSFER_TO_BANK_REQUEST__INIT;
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__PurchaseRequest pu = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__CancelPurchaseRequest ca = DOKU__WALLET__V1__CANCEL_PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__RefundPurchaseRequest re = DOKU__WALLET__V1__REFUND_PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	reconcile_keys k;

	(void)state;
	amount.value = "10000.00";
	amount.currency = "IDR";
	tr.partner_reference_no = "TR-1";
	tr.amount = &amount;
	assert_int_equal(methods_keys(methods_by_name("TransferToBank"), &tr.base, &k), 0);
	assert_string_equal(k.partner_reference_no, "TR-1");
	assert_string_equal(k.original_reference_no, "");
	assert_string_equal(k.amount_value, "10000.00");
	assert_string_equal(k.amount_currency, "IDR");
	tu.partner_reference_no = "TU-1";
	assert_int_equal(methods_keys(methods_by_name("TopUp"), &tu.base, &k), 0);
	assert_string_equal(k.partner_reference_no, "TU-1");
	assert_string_equal(k.amount_value, ""); /* no amount */
	pu.partner_reference_no = "PU-1";
	pu.amount = &amount;
	assert_int_equal(methods_keys(methods_by_name("Purchase"), &pu.base, &k), 0);
	assert_string_equal(k.partner_reference_no, "PU-1");
	/* a cancel is keyed by the purchase it cancels */
	ca.original_partner_reference_no = "PU-1";
	assert_int_equal(methods_keys(methods_by_name("CancelPurchase"), &ca.base, &k), 0);
	assert_string_equal(k.partner_reference_no, "PU-1");
	assert_string_equal(k.original_reference_no, "PU-1");
	/* a refund by its own refund number */
	re.original_partner_reference_no = "PU-1";
	re.partner_refund_no = "RF-1";
	re.refund_amount = &amount;
	assert_int_equal(methods_keys(methods_by_name("RefundPurchase"), &re.base, &k), 0);
	assert_string_equal(k.partner_reference_no, "RF-1");
	assert_string_equal(k.original_reference_no, "PU-1");
	assert_string_equal(k.amount_value, "10000.00");
	/* refused */
	re.partner_refund_no = "";
	assert_int_equal(methods_keys(methods_by_name("RefundPurchase"), &re.base, &k),
			 SNAP_ERR_MISSING);
	assert_int_equal(methods_keys(methods_by_name("Purchase"), &tr.base, &k),
			 SNAP_ERR_INVALID);
	gb.partner_reference_no = "GB-1";
	assert_int_equal(methods_keys(methods_by_name("GetBalance"), &gb.base, &k),
			 SNAP_ERR_INVALID);
}

/* Every money-moving row has its keys resolved; no other row has. */
static void test_keys_resolved(void **state)
{
	(void)state;
	for (unsigned i = 0; i < methods_count(); i++) {
		const method *m = methods_at(i);

		if (!m->money) {
			assert_null(m->original_field);
			assert_null(m->amount_field);
			continue;
		}
		assert_non_null(m->ref_field);
		assert_string_equal(m->ref_field->name, m->rule->key_field);
		assert_true((m->original_field != NULL) == (m->rule->original_field != NULL));
		assert_true((m->amount_field != NULL) == (m->rule->amount_field != NULL));
		if (m->amount_field != NULL) {
			assert_non_null(m->amount_value);
			assert_non_null(m->amount_currency);
		}
	}
}

/* A path finds its row, and only a whole path does. */
static void test_find(void **state)
{
	(void)state;
	for (unsigned i = 0; i < methods_count(); i++) {
		const method *m = methods_at(i);
		char longer[METHOD_FULL_MAX + 1];

		assert_ptr_equal(methods_find(m->full, strlen(m->full)), m);
		assert_null(methods_find(m->full, strlen(m->full) - 1));
		snprintf(longer, sizeof(longer), "%sx", m->full);
		assert_null(methods_find(longer, strlen(longer)));
	}
	assert_null(methods_find("/doku.wallet.v1.Wallet/", 23));
	assert_null(methods_find("/doku.wallet.v1.Wallet/NoSuch", 29));
	assert_null(methods_find("", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_of),
		cmocka_unit_test(test_keys_resolved),
		cmocka_unit_test(test_find),
	};

	if (methods_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
