/* doku_err.h: one error space. Every value has its own non-empty text, the
 * SNAP core's codes are members unchanged, and the modules' enums are named
 * subsets of it whose own texts did not change. */
#include "daemon_test.h"

#include "doku_err.h"
#include "sealed.h"
#include "snap_err.h"
#include "store.h"
#include "tokens.h"
#include "upstream.h"

/* Every member of enum doku_err but DOKU_OK. */
static const int all[] = {
	DOKU_ERR_NOMEM, DOKU_ERR_INVALID, DOKU_ERR_TOO_BIG, DOKU_ERR_CRYPTO, DOKU_ERR_KEY,
	DOKU_ERR_VERIFY, DOKU_ERR_JSON, DOKU_ERR_MISSING, DOKU_ERR_FORMAT, DOKU_ERR_NOT_FOUND,
	DOKU_ERR_IO, DOKU_ERR_CORRUPT, DOKU_ERR_VERSION, DOKU_ERR_WRONG_KEY, DOKU_ERR_LOCKED,
	DOKU_ERR_EXISTS, DOKU_ERR_DUPLICATE, DOKU_ERR_STATE, DOKU_ERR_SEALED, DOKU_ERR_NO_KEY,
	DOKU_ERR_CLOSED, DOKU_ERR_BUSY, DOKU_ERR_AUTH, DOKU_ERR_KEYFILE, DOKU_ERR_UNAVAILABLE,
	DOKU_ERR_REFUSED, DOKU_ERR_NO_SESSION, DOKU_ERR_LIMIT, DOKU_ERR_TIMEOUT, DOKU_ERR_CONNECT,
	DOKU_ERR_CANCELLED, DOKU_ERR_INTERNAL,
};
#define N_ALL (sizeof(all) / sizeof(all[0]))

static bool listed(int v)
{
	for (size_t i = 0; i < N_ALL; i++)
		if (all[i] == v)
			return true;
	return false;
}

static void test_snap_members(void **state)
{
	(void)state;
	assert_int_equal(DOKU_OK, SNAP_OK);
	assert_int_equal(DOKU_ERR_NOMEM, SNAP_ERR_NOMEM);
	assert_int_equal(DOKU_ERR_INVALID, SNAP_ERR_INVALID);
	assert_int_equal(DOKU_ERR_TOO_BIG, SNAP_ERR_TOO_BIG);
	assert_int_equal(DOKU_ERR_CRYPTO, SNAP_ERR_CRYPTO);
	assert_int_equal(DOKU_ERR_KEY, SNAP_ERR_KEY);
	assert_int_equal(DOKU_ERR_VERIFY, SNAP_ERR_VERIFY);
	assert_int_equal(DOKU_ERR_JSON, SNAP_ERR_JSON);
	assert_int_equal(DOKU_ERR_MISSING, SNAP_ERR_MISSING);
	assert_int_equal(DOKU_ERR_FORMAT, SNAP_ERR_FORMAT);
	assert_int_equal(DOKU_ERR_NOT_FOUND, SNAP_ERR_NOT_FOUND);
	/* a SNAP code keeps its text */
	for (int v = SNAP_ERR_NOMEM; v >= SNAP_ERR_NOT_FOUND; v--)
		assert_string_equal(doku_strerror(v), snap_strerror(v));
}

/* Distinct values, each with a non-empty text of its own. */
static void test_distinct(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ALL; i++) {
		const char *t = doku_strerror(all[i]);

		assert_true(all[i] < 0);
		assert_true(all[i] >= DOKU_ERR_LOWEST);
		assert_non_null(t);
		assert_true(t[0] != '\0');
		assert_string_not_equal(t, "unknown error");
		assert_string_not_equal(t, "ok");
		for (size_t j = i + 1; j < N_ALL; j++) {
			assert_int_not_equal(all[i], all[j]);
			assert_string_not_equal(t, doku_strerror(all[j]));
		}
	}
	/* nothing between the members goes unlisted here */
	for (int v = -1; v >= DOKU_ERR_LOWEST; v--)
		if (!listed(v))
			assert_string_equal(doku_strerror(v), "unknown error");
	assert_string_equal(doku_strerror(0), "ok");
	assert_string_equal(doku_strerror(1), "unknown error");
	assert_string_equal(doku_strerror(DOKU_ERR_LOWEST - 1), "unknown error");
	assert_string_equal(doku_strerror(-1000), "unknown error");
}

/* The modules' members are members of the one space, and one failure is
 * one value whichever module reports it. */
static void test_subsets(void **state)
{
	static const int members[] = {
		STORE_ERR_NOMEM, STORE_ERR_INVALID, STORE_ERR_IO, STORE_ERR_CORRUPT, STORE_ERR_VERSION,
		STORE_ERR_KEY, STORE_ERR_LOCKED, STORE_ERR_NOT_FOUND, STORE_ERR_EXISTS,
		STORE_ERR_DUPLICATE, STORE_ERR_STATE, STORE_ERR_SEALED, STORE_ERR_NO_KEY,
		STORE_ERR_CLOSED, STORE_ERR_BUSY, STORE_ERR_TOO_BIG,
		SEALED_ERR_NOMEM, SEALED_ERR_INVALID, SEALED_ERR_TOO_BIG, SEALED_ERR_CRYPTO,
		SEALED_ERR_AUTH, SEALED_ERR_KEYFILE,
		TOK_ERR_UNAVAILABLE, TOK_ERR_REFUSED, TOK_ERR_NO_SESSION, TOK_ERR_LIMIT,
		TOK_ERR_INTERNAL, TOK_ERR_TIMEOUT,
		UP_ERR_CONNECT, UP_ERR_TIMEOUT, UP_ERR_IO, UP_ERR_TOO_BIG, UP_ERR_INTERNAL,
		UP_ERR_CANCELLED,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		assert_true(listed(members[i]));
	assert_int_equal(UP_OK, DOKU_OK);
	assert_int_equal(STORE_ERR_KEY, DOKU_ERR_WRONG_KEY);
	assert_int_not_equal(STORE_ERR_KEY, SNAP_ERR_KEY);
	assert_int_equal(STORE_ERR_NOMEM, SEALED_ERR_NOMEM);
	assert_int_equal(STORE_ERR_NOT_FOUND, SNAP_ERR_NOT_FOUND);
	assert_int_equal(TOK_ERR_TIMEOUT, UP_ERR_TIMEOUT);
	assert_int_equal(TOK_ERR_INTERNAL, UP_ERR_INTERNAL);
	assert_int_equal(UP_ERR_TOO_BIG, STORE_ERR_TOO_BIG);
}

/* The modules' own texts are as they were; another value gets the shared one. */
static void test_module_texts(void **state)
{
	(void)state;
	assert_string_equal(store_strerror(0), "ok");
	assert_string_equal(store_strerror(STORE_ERR_NOMEM), "out of memory");
	assert_string_equal(store_strerror(STORE_ERR_INVALID), "invalid argument");
	assert_string_equal(store_strerror(STORE_ERR_IO), "database I/O error");
	assert_string_equal(store_strerror(STORE_ERR_CORRUPT), "database corrupt");
	assert_string_equal(store_strerror(STORE_ERR_VERSION),
			    "not a doku-bridge database of a known schema version");
	assert_string_equal(store_strerror(STORE_ERR_KEY), "the sealing key does not match the database");
	assert_string_equal(store_strerror(STORE_ERR_LOCKED), "state directory locked by another process");
	assert_string_equal(store_strerror(STORE_ERR_NOT_FOUND), "not found");
	assert_string_equal(store_strerror(STORE_ERR_EXISTS), "already journaled");
	assert_string_equal(store_strerror(STORE_ERR_DUPLICATE), "X-EXTERNAL-ID already journaled");
	assert_string_equal(store_strerror(STORE_ERR_STATE), "not allowed in the row's state");
	assert_string_equal(store_strerror(STORE_ERR_SEALED),
			    "sealed token does not open: wrong key or tampered row");
	assert_string_equal(store_strerror(STORE_ERR_NO_KEY), "no sealing key: sessions are not stored");
	assert_string_equal(store_strerror(STORE_ERR_CLOSED), "store closing");
	assert_string_equal(store_strerror(STORE_ERR_BUSY), "too many requests queued");
	assert_string_equal(store_strerror(STORE_ERR_TOO_BIG), "too big");
	assert_string_equal(store_strerror(DOKU_ERR_CONNECT), doku_strerror(DOKU_ERR_CONNECT));
	assert_string_equal(store_strerror(-1000), "unknown error");

	assert_string_equal(sealed_strerror(0), "ok");
	assert_string_equal(sealed_strerror(SEALED_ERR_NOMEM), "out of memory");
	assert_string_equal(sealed_strerror(SEALED_ERR_INVALID), "not a sealed value");
	assert_string_equal(sealed_strerror(SEALED_ERR_TOO_BIG), "too big");
	assert_string_equal(sealed_strerror(SEALED_ERR_CRYPTO), "the crypto library failed");
	assert_string_equal(sealed_strerror(SEALED_ERR_AUTH), "does not open: wrong key, or tampered");
	assert_string_equal(sealed_strerror(SEALED_ERR_KEYFILE), "unusable key file");
	assert_string_equal(sealed_strerror(DOKU_ERR_BUSY), doku_strerror(DOKU_ERR_BUSY));
	assert_string_equal(sealed_strerror(-1000), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snap_members),
		cmocka_unit_test(test_distinct),
		cmocka_unit_test(test_subsets),
		cmocka_unit_test(test_module_texts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
