/* The optional metrics HTTP endpoint ([bridge] metrics_listen): a tiny
 * HTTP/1.x server on a loopback address for a scraper. GET /metrics answers
 * the daemon's Prometheus text (rpc/exposition.h; 200, then the connection
 * closes); anything else 404 or 405. At most METRICS_HTTP_CONNS_MAX
 * connections (more are closed at once), a request head of at most
 * METRICS_HTTP_REQ_MAX bytes, and METRICS_HTTP_TIMEOUT_MS for the whole
 * exchange. One per process. */
#ifndef DOKU_DAEMON_METRICS_HTTP_H
#define DOKU_DAEMON_METRICS_HTTP_H

#define METRICS_HTTP_CONNS_MAX 8
#define METRICS_HTTP_REQ_MAX 4096
#define METRICS_HTTP_TIMEOUT_MS 5000u

struct bridge;

/* Listen on addr (config_loopback_addr). 0 or a negative errno (logged). */
int metrics_http_start(struct bridge *b, const char *addr);

/* Close the listener and every connection (shutdown); the memory goes once
 * libuv closed the handles. A no-op when not started. */
void metrics_http_stop(void);

#endif
