/* A load driver for the integration tests: n connected clients, each
 * keeping `depth` calls in flight, for a bounded duration, driven with
 * poll(2) in the test's thread. Every reply goes to the test's check
 * function (and is recorded for the leak scan); a tick function runs about
 * every tick_ms (to sample memory, inject faults...). */
#ifndef DOKU_ITEST_LOAD_H
#define DOKU_ITEST_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

#define LD_KINDS 8          /* kinds of calls a test may tell apart */

/* One call to start: make() fills it; the message is serialized at once, so
 * it may live in the test's static storage. */
typedef struct ld_call {
	const char *method;
	const char *customer;             /* may be NULL */
	const ProtobufCMessage *req;
	unsigned kind;                    /* < LD_KINDS: the test's own class */
	uint32_t timeout_ms;              /* 0: 30000 */
	uint64_t user;                    /* the test's own */
} ld_call;

typedef struct ld_stats {
	uint64_t started, done, ok, local;
	uint64_t codes[DOKUBRIDGE_CODE_COUNT];
	uint64_t outcomes[4];
	uint64_t by_kind[LD_KINDS], ok_by_kind[LD_KINDS];
	uint64_t max_ms[LD_KINDS];
	uint64_t start_failures;          /* dokubridge_start refused */
	uint32_t *lat_us[LD_KINDS];       /* every latency of the kind (malloc'd) */
	uint64_t nlat[LD_KINDS], caplat[LD_KINDS];
	uint64_t elapsed_ms;
} ld_stats;

/* client: index of the client; seq: the driver's call number. */
typedef void (*ld_make_fn)(unsigned client, uint64_t seq, ld_call *out, void *arg);
/* A completed call (res->local: the library made it). */
typedef void (*ld_check_fn)(const ld_call *call, const dokubridge_result *res, void *arg);
typedef void (*ld_tick_fn)(uint64_t elapsed_ms, void *arg);

typedef struct ld_opts {
	unsigned depth;             /* calls in flight per client (>= 1) */
	uint64_t duration_ms;       /* stop starting calls after this */
	uint64_t max_calls;         /* or after this many (0: no cap) */
	unsigned tick_ms;           /* 0: no ticks */
	ld_make_fn make;
	ld_check_fn check;          /* may be NULL */
	ld_tick_fn tick;            /* may be NULL */
	void *arg;
} ld_opts;

/* Run, then wait (bounded) for every call in flight to complete. */
void ld_run(dokubridge_client **cs, unsigned n, const ld_opts *o, ld_stats *out);
void ld_stats_free(ld_stats *s);
/* The q-quantile (0..1) of the latencies of kind, in microseconds. */
uint64_t ld_quantile(ld_stats *s, unsigned kind, double q);
/* The VmRSS of pid in KiB; 0 if unreadable. */
long ld_rss_kib(pid_t pid);
/* Raise RLIMIT_NOFILE's soft limit to at least want (up to the hard limit);
 * the new soft limit. */
long ld_raise_nofile(long want);
/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t ld_now_ms(void);
/* $name as a positive number, or def. */
unsigned long ld_env(const char *name, unsigned long def);

#endif
