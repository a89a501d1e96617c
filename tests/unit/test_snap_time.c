/* snap_time: Jakarta rendering whatever TZ says, ISO-8601 parsing. */
#include "test_util.h"

#include <time.h>

#include "snap_err.h"
#include "snap_time.h"

static void check_format(time_t t, const char *expect)
{
	char out[SNAP_TIMESTAMP_LEN + 1];

	assert_int_equal(snap_time_format(t, out), SNAP_OK);
	assert_string_equal(out, expect);
	assert_int_equal(strlen(out), SNAP_TIMESTAMP_LEN);
}

static void test_format_any_tz(void **state)
{
	static const char *zones[] = { "UTC", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati",
				       "Etc/GMT+12", "" };

	(void)state;
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		setenv("TZ", zones[i], 1);
		tzset();
		check_format(1704078000, "2024-01-01T10:00:00+07:00");
		check_format(0, "1970-01-01T07:00:00+07:00");
		check_format(1709610000, "2024-03-05T10:40:00+07:00");
		check_format(1709229599, "2024-03-01T00:59:59+07:00"); /* leap year */
		check_format(1704042000, "2024-01-01T00:00:00+07:00");
		check_format(1704041999, "2023-12-31T23:59:59+07:00");
		check_format(-25201, "1969-12-31T23:59:59+07:00");
		check_format(253402275599, "9999-12-31T23:59:59+07:00");
	}
	unsetenv("TZ");
	tzset();
}

static void test_format_range(void **state)
{
	char out[SNAP_TIMESTAMP_LEN + 1];

	(void)state;
	assert_int_equal(snap_time_format(253402275600, out), SNAP_ERR_INVALID); /* year 10000 */
	assert_int_equal(snap_time_format((time_t)INT64_MAX, out), SNAP_ERR_INVALID);
	assert_int_equal(snap_time_format((time_t)INT64_MIN, out), SNAP_ERR_INVALID);
}

static void check_parse(const char *s, time_t expect)
{
	time_t t = 0;

	assert_int_equal(snap_time_parse(s, strlen(s), &t), SNAP_OK);
	assert_int_equal(t, expect);
}

static void test_parse(void **state)
{
	char out[SNAP_TIMESTAMP_LEN + 1];

	(void)state;
	setenv("TZ", "America/New_York", 1);
	tzset();
	check_parse("2024-01-01T10:00:00+07:00", 1704078000);
	check_parse("2024-01-01T03:00:00Z", 1704078000);
	check_parse("2024-01-01T03:00:00+00:00", 1704078000);
	check_parse("2023-12-31T22:00:00-05:00", 1704078000);
	check_parse("2024-01-01T08:30:00+05:30", 1704078000);
	check_parse("2024-03-05T10:37:16.196Z", 1709635036);
	check_parse("2024-03-05T10:37:16.1Z", 1709635036);
	check_parse("2024-03-05T17:37:16.123456789+07:00", 1709635036);
	check_parse("2009-07-03T12:08:56-07:00", 1246648136);
	check_parse("1970-01-01T00:00:00Z", 0);
	check_parse("1969-12-31T23:59:59Z", -1);
	check_parse("2000-02-29T00:00:00Z", 951782400);
	check_parse("1900-03-01T00:00:00Z", -2203891200);
	/* Round trip through the renderer. */
	for (time_t t = -86400 * 400; t < 86400LL * 365 * 80; t += 86400 * 7 + 3611) {
		time_t back;

		assert_int_equal(snap_time_format(t, out), SNAP_OK);
		assert_int_equal(snap_time_parse(out, SNAP_TIMESTAMP_LEN, &back), SNAP_OK);
		assert_int_equal(back, t);
	}
	/* len bounds the input: no NUL needed. */
	{
		time_t t = 0;

		assert_int_equal(snap_time_parse("2024-01-01T03:00:00Zgarbage", 20, &t), SNAP_OK);
		assert_int_equal(t, 1704078000);
	}
	unsetenv("TZ");
	tzset();
}

static void test_parse_refused(void **state)
{
	static const char *bad[] = {
		"",
		"2024-01-01",
		"2024-01-01T10:00:00",          /* no offset */
		"2024-01-01 10:00:00+07:00",    /* space */
		"2024-01-01T10:00:00+0700",
		"2024-01-01T10:00:00+07",
		"2024-01-01T10:00:00+07:0",
		"2024-01-01T10:00:00+24:00",
		"2024-01-01T10:00:00+07:60",
		"2024-01-01T10:00:00z",
		"2024-01-01T10:00:00Z ",
		"2024-01-01T10:00:00.Z",
		"2024-01-01T10:00:00.1234567890Z",
		"2024-13-01T10:00:00Z",
		"2024-00-01T10:00:00Z",
		"2024-01-00T10:00:00Z",
		"2024-01-32T10:00:00Z",
		"2023-02-29T10:00:00Z",
		"1900-02-29T10:00:00Z",
		"2024-04-31T10:00:00Z",
		"2024-01-01T24:00:00Z",
		"2024-01-01T10:60:00Z",
		"2024-01-01T10:00:60Z",
		"2024-1-01T10:00:00Z",
		"20240101T100000Z",
		"2024-01-01T10:00:00+07:00+07:00",
		"+024-01-01T10:00:00Z",
		"2024-01-01T1a:00:00Z",
	};
	time_t t = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (snap_time_parse(bad[i], strlen(bad[i]), &t) != SNAP_ERR_INVALID)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(t, 42);
	assert_int_equal(snap_time_parse(NULL, 25, &t), SNAP_ERR_INVALID);
	/* Cut short anywhere. */
	for (size_t n = 0; n < SNAP_TIMESTAMP_LEN; n++)
		assert_int_equal(snap_time_parse("2024-01-01T10:00:00+07:00", n, &t),
				 SNAP_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_any_tz),
		cmocka_unit_test(test_format_range),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
