/* X-TIMESTAMP: rendering in Asia/Jakarta time (+07:00, whatever the host's TZ)
 * and parsing of SNAP/ISO-8601 date-times. */
#ifndef DOKU_SNAP_TIME_H
#define DOKU_SNAP_TIME_H

#include <stddef.h>
#include <time.h>

#define SNAP_TIMESTAMP_LEN 25 /* "2024-01-01T10:00:00+07:00" */

/* Render t as "YYYY-MM-DDTHH:MM:SS+07:00" into out (NUL-terminated).
 * Does not read or change the process's TZ. 0 or SNAP_ERR_INVALID. */
int snap_time_format(time_t t, char out[SNAP_TIMESTAMP_LEN + 1]);

/* Parse "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" (len bytes, no NUL
 * needed) into seconds since the epoch. The fraction is accepted and dropped.
 * Fields are range-checked. 0 or SNAP_ERR_INVALID. */
int snap_time_parse(const char *s, size_t len, time_t *out);

#endif
