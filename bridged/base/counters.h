/* The daemon's counters, and their Prometheus text (exposition format 0.0.4).
 *
 * Fixed-size counters only: nothing is allocated when a call, a token
 * request or an upstream exchange is counted, and every label set is
 * bounded (method row x gRPC code x outcome; a latency histogram per method
 * with fixed buckets; HTTP statuses 100..599 and transport failures; a table
 * of COUNTERS_SNAP_MAX SNAP (HTTP, case) pairs; COUNTERS_PROFILES_MAX profile
 * names). What does not fit a table is counted under "other". No label value
 * ever holds a secret, a token, a reference or an external id.
 *
 * Callers hand in classified labels (a method row's index, a failure class,
 * a token result); the names of codes and outcomes, and the gauges
 * (connections, calls in flight), are handed to counters_render by the layer
 * that knows them (rpc/exposition.c). The hooks run on the loop's thread only. */
#ifndef DOKU_BASE_COUNTERS_H
#define DOKU_BASE_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

#include "snap_buf.h"

#define COUNTERS_TEXT_MAX (512u * 1024u)  /* cap on the rendered text */
#define COUNTERS_METHODS_MAX 64           /* method rows (the ACL's 64-bit mask) */
#define COUNTERS_PROFILES_MAX 32          /* profile names tracked (more: "other") */
#define COUNTERS_SNAP_MAX 128             /* distinct (HTTP, case) pairs tracked (more: "other") */
#define COUNTERS_BUCKETS 15               /* latency buckets, +Inf aside */
#define COUNTERS_CODES 17                 /* gRPC codes OK .. UNAUTHENTICATED */
#define COUNTERS_CODE_UNKNOWN 2           /* where an out-of-range code is counted */
#define COUNTERS_OUTCOMES 4               /* UNSPECIFIED, DONE, NOT_DONE, UNKNOWN */

enum counters_token_kind {
	COUNTERS_TOKEN_B2B,       /* client_credentials */
	COUNTERS_TOKEN_OPEN,      /* authorization_code (OpenCustomerSession) */
	COUNTERS_TOKEN_REFRESH,   /* refresh_token */
	COUNTERS_TOKEN_KINDS,
};

enum counters_token_result {
	COUNTERS_TOKEN_OK,
	COUNTERS_TOKEN_REFUSED,   /* DOKU refused it (4xx) */
	COUNTERS_TOKEN_FAILED,    /* no usable answer */
	COUNTERS_TOKEN_RESULTS,
};

/* Why an HTTP exchange with DOKU got no answer (labels of
 * doku_bridge_upstream_failures_total, in this order). */
enum counters_up_failure {
	COUNTERS_UP_ANSWERED = 0, /* not a failure: an HTTP answer arrived */
	COUNTERS_UP_CONNECT,
	COUNTERS_UP_TIMEOUT,
	COUNTERS_UP_IO,
	COUNTERS_UP_TOO_BIG,
	COUNTERS_UP_INTERNAL,
	COUNTERS_UP_CANCELLED,
	COUNTERS_UP_FAILURES,
};

/* A call finished: its method row index (-1: unknown method or unreadable
 * envelope), doku.bridge.v1.Code, doku.bridge.v1.Outcome and duration. */
void counters_call(int method_index, int code, int outcome, uint64_t duration_us);

/* An HTTP exchange with DOKU ended (calls and token requests alike):
 * failure COUNTERS_UP_ANSWERED with the HTTP status, or the failure's class. */
void counters_upstream(unsigned failure, long http);

/* A request was sent again on a fresh connection: its pooled one had been
 * closed by the server while idle (io/upstream.h). */
void counters_upstream_retry(void);

/* DOKU answered a call with responseCode HTTP http, case case_code. */
void counters_snap_code(int http, int case_code);

/* A token request of profile prof ended. */
void counters_token(const char *prof, enum counters_token_kind kind,
		    enum counters_token_result result);

/* A fleet daemon waited for the fleet's B2B token (another daemon held the
 * lease) for duration_us; or it took the lease itself (a token request follows). */
void counters_fleet_wait(uint64_t duration_us);
void counters_fleet_lease(void);

/* The state database as the store counts it (state/store.h's store_stats),
 * for a fleet (shared = true) or one daemon. */
typedef struct counters_db {
	bool shared;                   /* PostgreSQL: the fleet metrics are rendered */
	bool connected;
	unsigned leases_held;          /* B2B leases this daemon holds now */
	uint64_t round_trips, errors, reconnects, rtt_us_sum, rtt_us_max;
	uint64_t rows_claimed, orphans_adopted;
} counters_db;

/* What only the caller knows, read when rendering. */
typedef struct counters_gauges {
	uint64_t uptime_s;
	unsigned connections;
	uint64_t accepted, refused;    /* connections, since start */
	unsigned calls_in_flight;
	counters_db db;
} counters_gauges;

/* The name of method row index (the label of its counts), handed in once
 * by the RPC layer (methods_init); name is borrowed for good. */
void counters_name_method(unsigned index, const char *name);

/* Label names: code_name of a doku.bridge.v1.Code, outcome_name of a
 * doku.bridge.v1.Outcome > 0. */
typedef struct counters_labels {
	const char *(*code_name)(int code);
	const char *(*outcome_name)(int outcome);
} counters_labels;

/* Append the exposition text to out (whose max bounds it). 0, or a negative
 * SNAP_ERR_* (out then holds a truncated text that must not be served). */
int counters_render(const counters_gauges *g, const counters_labels *l, snap_buf *out);

/* Forget every count (unit tests). */
void counters_reset(void);

#endif
