/* The Prometheus text of the daemon: its counters (base/counters.h) with the
 * names of methods, codes and outcomes, and the gauges only this layer
 * knows (connections, calls in flight). Served by the Metrics RPC and by the
 * metrics HTTP endpoint (daemon/metrics_http.c). */
#ifndef DOKU_RPC_EXPOSITION_H
#define DOKU_RPC_EXPOSITION_H

#include "counters.h"
#include "snap_buf.h"

struct bridge;

/* Append the text to out (whose max bounds it); own_calls: calls in flight
 * not to count (the Metrics call itself). 0, or a negative SNAP_ERR_* (out
 * then holds a truncated text that must not be served). */
int exposition_render(const struct bridge *b, unsigned own_calls, snap_buf *out);

#endif
