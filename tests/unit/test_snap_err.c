/* snap_strerror: every code has a distinct name; unknown codes do not crash. */
#include "test_util.h"

#include "snap_err.h"

static void test_names(void **state)
{
	(void)state;
	for (int a = SNAP_ERR_NOT_FOUND; a <= SNAP_OK; a++) {
		assert_non_null(snap_strerror(a));
		assert_string_not_equal(snap_strerror(a), snap_strerror(1));
		for (int b = a + 1; b <= SNAP_OK; b++)
			assert_string_not_equal(snap_strerror(a), snap_strerror(b));
	}
	assert_string_equal(snap_strerror(-1000), snap_strerror(42));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
