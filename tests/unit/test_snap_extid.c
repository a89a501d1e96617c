/* snap_extid: 36 digits, no duplicate in a million, thread-safe, init required. */
#include "test_util.h"

#include <pthread.h>
#include <time.h>

#include "snap_err.h"
#include "snap_extid.h"
#include "snap_time.h"

#define MANY 1000000
#define THREADS 4
#define PER_THREAD 50000

static int cmp_ids(const void *a, const void *b)
{
	return memcmp(a, b, SNAP_EXTID_MAX);
}

/* Runs first: before init, no id. */
static void test_needs_init(void **state)
{
	char id[SNAP_EXTID_MAX + 1];

	(void)state;
	assert_int_equal(snap_extid_next(id), SNAP_ERR_INVALID);
	assert_int_equal(snap_extid_init(), SNAP_OK);
	assert_int_equal(snap_extid_next(id), SNAP_OK);
}

static void test_million_unique(void **state)
{
	char (*ids)[SNAP_EXTID_MAX + 1] = malloc((size_t)MANY * sizeof(*ids));

	(void)state;
	assert_non_null(ids);
	assert_int_equal(snap_extid_init(), SNAP_OK);
	for (size_t i = 0; i < MANY; i++) {
		assert_int_equal(snap_extid_next(ids[i]), SNAP_OK);
		if (strlen(ids[i]) != SNAP_EXTID_MAX || !snap_extid_valid(ids[i], strlen(ids[i])))
			fail_msg("bad id %s", ids[i]);
	}
	qsort(ids, MANY, sizeof(*ids), cmp_ids);
	for (size_t i = 1; i < MANY; i++)
		if (memcmp(ids[i - 1], ids[i], SNAP_EXTID_MAX) == 0)
			fail_msg("duplicate %s", ids[i]);
	free(ids);
}

static void test_layout(void **state)
{
	char id[SNAP_EXTID_MAX + 1], id2[SNAP_EXTID_MAX + 1], ts[SNAP_TIMESTAMP_LEN + 1];
	char digits[15];
	time_t before = time(NULL), after;

	(void)state;
	assert_int_equal(snap_extid_next(id), SNAP_OK);
	assert_int_equal(snap_extid_next(id2), SNAP_OK);
	after = time(NULL);
	/* The first 14 digits are the Jakarta date-time. */
	assert_int_equal(snap_time_format(before, ts), SNAP_OK);
	snprintf(digits, sizeof(digits), "%.4s%.2s%.2s%.2s%.2s%.2s", ts, ts + 5, ts + 8, ts + 11,
		 ts + 14, ts + 17);
	if (memcmp(id, digits, 14) != 0) {
		assert_int_equal(snap_time_format(after, ts), SNAP_OK);
		snprintf(digits, sizeof(digits), "%.4s%.2s%.2s%.2s%.2s%.2s", ts, ts + 5, ts + 8,
			 ts + 11, ts + 14, ts + 17);
		assert_memory_equal(id, digits, 14);
	}
	/* Same process: same random prefix; the counter moves by one. */
	assert_memory_equal(id + 14, id2 + 14, 12);
	assert_int_equal(strtoull(id2 + 26, NULL, 10), (strtoull(id + 26, NULL, 10) + 1) % 10000000000ull);
	/* A new init draws a new prefix (with overwhelming probability). */
	assert_int_equal(snap_extid_init(), SNAP_OK);
	assert_int_equal(snap_extid_next(id2), SNAP_OK);
	assert_memory_not_equal(id + 14, id2 + 14, 12);
}

static void *worker(void *arg)
{
	char (*ids)[SNAP_EXTID_MAX + 1] = arg;

	for (size_t i = 0; i < PER_THREAD; i++)
		if (snap_extid_next(ids[i]) != SNAP_OK)
			return arg;
	return NULL;
}

static void test_threads(void **state)
{
	char (*ids)[SNAP_EXTID_MAX + 1] = malloc((size_t)THREADS * PER_THREAD * sizeof(*ids));
	pthread_t th[THREADS];

	(void)state;
	assert_non_null(ids);
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, worker, ids + (size_t)t * PER_THREAD), 0);
	for (int t = 0; t < THREADS; t++) {
		void *rc;

		assert_int_equal(pthread_join(th[t], &rc), 0);
		assert_null(rc);
	}
	qsort(ids, (size_t)THREADS * PER_THREAD, sizeof(*ids), cmp_ids);
	for (size_t i = 1; i < (size_t)THREADS * PER_THREAD; i++)
		assert_memory_not_equal(ids[i - 1], ids[i], SNAP_EXTID_MAX);
	free(ids);
}

static void test_valid(void **state)
{
	(void)state;
	assert_true(snap_extid_valid("1", 1));
	assert_true(snap_extid_valid("123456789012345678901234567890123456", 36));
	assert_false(snap_extid_valid("1234567890123456789012345678901234567", 37));
	assert_false(snap_extid_valid("", 0));
	assert_false(snap_extid_valid(NULL, 3));
	assert_false(snap_extid_valid("12a4", 4));
	assert_false(snap_extid_valid("-12", 3));
	assert_false(snap_extid_valid("12 ", 3));
	assert_true(snap_extid_valid("12x", 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_needs_init),
		cmocka_unit_test(test_million_unique),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
