/* snap_code: responseCode parsing and rendering. */
#include "test_util.h"

#include "snap_code.h"
#include "snap_err.h"

static void test_parse(void **state)
{
	snap_code c;

	(void)state;
	assert_int_equal(snap_code_parse("2005400", 7, &c), SNAP_OK);
	assert_int_equal(c.http, 200);
	assert_int_equal(c.service, 54);
	assert_int_equal(c.case_code, 0);
	assert_string_equal(c.text, "2005400");
	assert_true(snap_code_is_success(&c));
	assert_int_equal(snap_code_parse("4035414xyz", 7, &c), SNAP_OK); /* len counts */
	assert_int_equal(c.http, 403);
	assert_int_equal(c.case_code, 14);
	assert_false(snap_code_is_success(&c));
	assert_int_equal(snap_code_parse("2023800", 7, &c), SNAP_OK);
	assert_false(snap_code_is_success(&c)); /* in progress */
	assert_int_equal(snap_code_parse("2007301", 7, &c), SNAP_OK);
	assert_false(snap_code_is_success(&c));
	assert_int_equal(snap_code_parse("5041300", 7, &c), SNAP_OK);
	assert_int_equal(c.http, 504);
}

static void test_parse_refused(void **state)
{
	static const char *bad[] = { "", "200540", "20054000", "200540a", " 200540", "2005 00",
				     "-200540", "+200540", "20054.0", "0005400", "9005400" };
	snap_code c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(snap_code_parse(bad[i], strlen(bad[i]), &c), SNAP_ERR_INVALID);
	assert_int_equal(snap_code_parse(NULL, 7, &c), SNAP_ERR_INVALID);
	assert_int_equal(snap_code_parse("2005400", 6, &c), SNAP_ERR_INVALID);
}

static void test_make(void **state)
{
	snap_code c;

	(void)state;
	assert_int_equal(snap_code_make(401, 11, 1, &c), SNAP_OK);
	assert_string_equal(c.text, "4011101");
	assert_int_equal(snap_code_make(200, 4, 0, &c), SNAP_OK);
	assert_string_equal(c.text, "2000400");
	assert_int_equal(snap_code_make(99, 11, 0, &c), SNAP_ERR_INVALID);
	assert_int_equal(snap_code_make(600, 11, 0, &c), SNAP_ERR_INVALID);
	assert_int_equal(snap_code_make(200, 100, 0, &c), SNAP_ERR_INVALID);
	assert_int_equal(snap_code_make(200, -1, 0, &c), SNAP_ERR_INVALID);
	assert_int_equal(snap_code_make(200, 11, 100, &c), SNAP_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_refused),
		cmocka_unit_test(test_make),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
