/* The daemon's metrics, rendered in the Prometheus text exposition format
 * (0.0.4) for the Metrics RPC and the optional loopback HTTP endpoint.
 *
 * Fixed-size counters only: nothing is allocated when a call, a token
 * request or an upstream exchange is counted, and every label set is
 * bounded (method row x gRPC code x outcome; a latency histogram per method
 * with fixed buckets; HTTP statuses 100..599 and transport failures; a table
 * of METRICS_SNAP_MAX SNAP (HTTP, case) pairs; METRICS_PROFILES_MAX profile
 * names). What does not fit a table is counted under "other". No label value
 * ever holds a secret, a token, a reference or an external id.
 *
 * The state is the process's own (one loop, one thread): the hooks are
 * called from the loop's thread only. Connections and calls in flight are
 * read from the bridge when rendering. */
#ifndef DOKU_BRIDGED_METRICS_H
#define DOKU_BRIDGED_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "snap_buf.h"

#define METRICS_TEXT_MAX (512u * 1024u)  /* cap on the rendered text */
#define METRICS_PROFILES_MAX 32          /* profile names tracked (more: "other") */
#define METRICS_SNAP_MAX 128             /* distinct (HTTP, case) pairs tracked (more: "other") */
#define METRICS_BUCKETS 15               /* latency buckets, +Inf aside */

struct bridge;

enum metrics_token_kind {
	METRICS_TOKEN_B2B,       /* client_credentials */
	METRICS_TOKEN_OPEN,      /* authorization_code (OpenCustomerSession) */
	METRICS_TOKEN_REFRESH,   /* refresh_token */
	METRICS_TOKEN_KINDS,
};

/* A call finished: its method row index (-1: unknown method or unreadable
 * envelope), doku.bridge.v1.Code, doku.bridge.v1.Outcome and duration. */
void metrics_call(int method_index, int code, int outcome, uint64_t duration_us);

/* An HTTP exchange with DOKU ended (calls and token requests alike):
 * status is an enum up_status, http the HTTP status when status is UP_OK. */
void metrics_upstream(int status, long http);

/* A request was sent again on a fresh connection: its pooled one had been
 * closed by the server while idle (upstream.h). */
void metrics_upstream_retry(void);

/* DOKU answered a call with responseCode HTTP http, case case_code. */
void metrics_snap_code(int http, int case_code);

/* A token request of profile prof ended: status 0 or an enum tok_err. */
void metrics_token(const char *prof, enum metrics_token_kind kind, int status);

/* Append the exposition text to out (whose max bounds it); own_calls: calls
 * in flight not to count (the Metrics call itself). 0, or a negative
 * SNAP_ERR_* (out then holds a truncated text that must not be served). */
int metrics_render(const struct bridge *b, unsigned own_calls, snap_buf *out);

/* Forget every count (unit tests). */
void metrics_reset(void);

/* ---- the optional HTTP endpoint ([bridge] metrics_listen) ----
 * A tiny HTTP/1.x server on a loopback address for a scraper: GET /metrics
 * answers the same text (200, then the connection closes); anything else 404
 * or 405. At most METRICS_HTTP_CONNS_MAX connections (more are closed at
 * once), a request head of at most METRICS_HTTP_REQ_MAX bytes, and
 * METRICS_HTTP_TIMEOUT_MS for the whole exchange. One per process. */
#define METRICS_HTTP_CONNS_MAX 8
#define METRICS_HTTP_REQ_MAX 4096
#define METRICS_HTTP_TIMEOUT_MS 5000u
#define METRICS_LISTEN_MAX 64        /* "127.0.0.1:9464", "[::1]:9464" */

/* Whether addr is "IPv4-loopback:PORT" or "[::1]:PORT" (PORT 1..65535);
 * fills *sa (a struct sockaddr_storage) when not NULL. */
bool metrics_listen_valid(const char *addr, void *sa);

/* Listen on addr (checked with metrics_listen_valid). 0 or a negative errno (logged). */
int metrics_http_start(struct bridge *b, const char *addr);

/* Close the listener and every connection (shutdown); the memory goes once
 * libuv closed the handles. A no-op when not started. */
void metrics_http_stop(void);

#endif
