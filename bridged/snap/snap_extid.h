/* X-EXTERNAL-ID: numeric, at most 36 digits, unique per process, across
 * restarts and across hosts.
 *
 * An id is the Jakarta date-time to the second (14 digits), a per-process
 * random prefix drawn once by snap_extid_init (12 digits), and a per-process
 * counter (10 digits): 36 digits. Within a process the counter alone makes ids
 * unique; the random prefix separates processes and hosts. Thread-safe. */
#ifndef DOKU_SNAP_EXTID_H
#define DOKU_SNAP_EXTID_H

#include <stdbool.h>
#include <stddef.h>

#define SNAP_EXTID_MAX 36

/* Draw the random prefix from wolfCrypt's RNG. Call once at start-up (and in
 * a child after fork). 0 or SNAP_ERR_CRYPTO. */
int snap_extid_init(void);

/* Next id into out, NUL-terminated. 0, or SNAP_ERR_INVALID if init was never called. */
int snap_extid_next(char out[SNAP_EXTID_MAX + 1]);

/* Whether s[0..len) is a well-formed external id: 1 to 36 ASCII digits. */
bool snap_extid_valid(const char *s, size_t len);

#endif
