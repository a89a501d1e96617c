/* Time, and random bits to jitter timers with: the daemon's one source of each. */
#ifndef DOKU_BASE_CLOCK_H
#define DOKU_BASE_CLOCK_H

#include <stdint.h>

/* Wall-clock time, unix milliseconds (journal rows, reconciliation schedules). */
int64_t clock_wall_ms(void);

/* Monotonic time in microseconds (durations). */
uint64_t clock_mono_us(void);

/* 32 random bits for jitter (not for secrets: falls back to the clock). */
uint32_t clock_jitter32(void);

#endif
