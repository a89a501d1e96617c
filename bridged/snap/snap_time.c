/* X-TIMESTAMP rendering (Asia/Jakarta, fixed +07:00) and ISO-8601 parsing.
 * Never reads TZ: rendering shifts the epoch and uses gmtime_r, parsing does
 * its own calendar arithmetic. */
#include "snap_time.h"
#include "snap_err.h"

#include <stdbool.h>
#include <stdint.h>

#define JAKARTA_OFFSET (7 * 3600)
#define MAX_FRACTION_DIGITS 9

static void put_digits(char *p, int v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

int snap_time_format(time_t t, char out[SNAP_TIMESTAMP_LEN + 1])
{
	struct tm tm;
	time_t local;

	if (t > INT64_MAX - JAKARTA_OFFSET)
		return SNAP_ERR_INVALID;
	local = t + JAKARTA_OFFSET;
	if (gmtime_r(&local, &tm) == NULL)
		return SNAP_ERR_INVALID;
	if (tm.tm_year < 0 - 1900 || tm.tm_year > 9999 - 1900)
		return SNAP_ERR_INVALID;
	put_digits(out, tm.tm_year + 1900, 4);
	out[4] = '-';
	put_digits(out + 5, tm.tm_mon + 1, 2);
	out[7] = '-';
	put_digits(out + 8, tm.tm_mday, 2);
	out[10] = 'T';
	put_digits(out + 11, tm.tm_hour, 2);
	out[13] = ':';
	put_digits(out + 14, tm.tm_min, 2);
	out[16] = ':';
	put_digits(out + 17, tm.tm_sec, 2);
	out[19] = '+';
	out[20] = '0';
	out[21] = '7';
	out[22] = ':';
	out[23] = '0';
	out[24] = '0';
	out[25] = '\0';
	return SNAP_OK;
}

/* n decimal digits at s into *v; false if any is not a digit. */
static bool get_digits(const char *s, int n, int *v)
{
	int x = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return true;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar, counted
 * in 400-year eras that start on March 1st. */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;                                  /* [0, 399] */
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
	return era * 146097 + doe - 719468;
}

int snap_time_parse(const char *s, size_t len, time_t *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	size_t i = 19, f;
	int64_t t;

	if (s == NULL || len < 20)
		return SNAP_ERR_INVALID;
	if (!get_digits(s, 4, &y) || s[4] != '-' || !get_digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !get_digits(s + 8, 2, &d) || s[10] != 'T' ||
	    !get_digits(s + 11, 2, &h) || s[13] != ':' || !get_digits(s + 14, 2, &mi) ||
	    s[16] != ':' || !get_digits(s + 17, 2, &sec))
		return SNAP_ERR_INVALID;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || sec > 59)
		return SNAP_ERR_INVALID;
	if (s[i] == '.') {
		for (f = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == f || i - f > MAX_FRACTION_DIGITS)
			return SNAP_ERR_INVALID;
	}
	if (i < len && s[i] == 'Z') {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		sign = s[i] == '+' ? 1 : -1;
		if (len - i < 6 || !get_digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
		    !get_digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return SNAP_ERR_INVALID;
		i += 6;
	} else {
		return SNAP_ERR_INVALID;
	}
	if (i != len)
		return SNAP_ERR_INVALID;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	*out = (time_t)t;
	return SNAP_OK;
}
