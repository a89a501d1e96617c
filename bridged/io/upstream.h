/* HTTPS to DOKU: one libcurl multi handle driven by the libuv loop (the
 * multi-socket pattern: a uv_poll_t per socket, one uv_timer_t for curl's
 * timeouts), connections and TLS sessions reused (a curl share for TLS
 * sessions and DNS, and a pool of easy handles, each set up once with the
 * options every request shares: a request sets only its URL, headers, body
 * and timeouts, never curl_easy_reset), TLS verification always on,
 * against a CA file only (ca_file, or libcurl's bundle; libcurl's default CA
 * directory is dropped when there is a file) parsed once per UP_CA_CACHE_S,
 * not once per connection.
 *
 * A request is a caller-owned struct up_req: the caller fills the "in"
 * fields, calls upstream_start, and gets exactly one call of done() unless it
 * calls upstream_cancel first. Every pointer the caller hands in must stay
 * valid until then. "sent" tells whether the request may have reached the
 * server: it is set just before curl writes the request on a connection
 * (CURLOPT_PREREQFUNCTION), so a request that fails with sent == false
 * certainly did not happen.
 *
 * Requests with fresh_connection never go out on a reused connection: curl
 * silently re-sends a request whose reused connection turned out dead, which
 * must never happen to a money-moving request.
 *
 * Pooled connections the server closed while idle (its keep-alive timeout:
 * nginx 75 s, load balancers 60 s, doku-snapsim's --idle-timeout) stay in
 * curl's pool: its liveness check peeks one byte, and the TLS close_notify
 * the server sent is that byte. A request written on such a connection gets
 * nothing back, and curl (7.88, Curl_retry_request) sends it again on the
 * next pooled connection, which may be just as dead; after five such tries
 * it gives up with CURLE_SEND_ERROR (the message is the first error of the
 * transfer: "Send failure: Broken pipe", from closing the first dead one).
 * After a quiet spell with six or more connections in the pool, the first
 * request failed that way. So a request without fresh_connection that
 * fails with CURLE_SEND_ERROR having made no new connection
 * (CURLINFO_NUM_CONNECTS 0) and received not a byte of an answer
 * (CURLINFO_HEADER_SIZE 0, no status) is sent once more, on a fresh
 * connection, with the same headers and body (the same X-EXTERNAL-ID: the
 * server closed those connections before reading anything), within what is
 * left of its timeout_ms; done() sees only the second outcome. Counted in
 * doku_bridge_upstream_retries_total{reason="stale_connection"}, logged at
 * debug.
 *
 * Not for CURLE_RECV_ERROR or CURLE_GOT_NOTHING: curl already retries those
 * itself when they can be a dead pooled connection (no byte received on a
 * reused connection); one that still reaches us came from a connection
 * that took the whole request and then failed, which the server may have
 * processed. A send error means the request was not all written on that
 * connection, and curl's "gave up" send error follows only its own retries
 * of that first kind. Requests with fresh_connection are never sent again.
 *
 * CURLOPT_MAXAGE_CONN stays at curl's 118 s: a connection closed with a FIN
 * is found dead at no cost (the end of stream is already in the socket when
 * the request is written), so a shorter age would only buy handshakes; and
 * 118 s is below the silent-drop timeouts of common middleboxes (AWS NLB
 * 350 s, Azure LB 240 s). */
#ifndef DOKU_IO_UPSTREAM_H
#define DOKU_IO_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>
#include <uv.h>

#include "doku_err.h"
#include "snap_arena.h"
#include "snap_buf.h"

#define UP_RESPONSE_MAX (1024u * 1024u) /* largest response body accepted */
#define UP_HEADERS_MAX 16               /* request headers of one request */
#define UP_CONNECT_TIMEOUT_MS 10000u    /* cap on connect + TLS handshake */
#define UP_EASY_POOL_MAX 64             /* idle easy handles kept */
#define UP_CA_CACHE_S 3600              /* a parsed CA file is kept this long */
#define UP_USER_AGENT "doku-bridged"

typedef struct upstream upstream;
typedef struct up_req up_req;

/* How an exchange ended: 0, or a named subset of enum doku_err (doku_err.h). */
enum up_status {
	UP_OK = DOKU_OK,                       /* an HTTP answer arrived (any status): see http */
	UP_ERR_CONNECT = DOKU_ERR_CONNECT,     /* failed before the request was sent */
	UP_ERR_TIMEOUT = DOKU_ERR_TIMEOUT,     /* the request's deadline passed */
	UP_ERR_IO = DOKU_ERR_IO,               /* the connection failed (dropped, reset, bad TLS...) */
	UP_ERR_TOO_BIG = DOKU_ERR_TOO_BIG,     /* the response was over UP_RESPONSE_MAX */
	UP_ERR_INTERNAL = DOKU_ERR_INTERNAL,   /* curl refused the request */
	UP_ERR_CANCELLED = DOKU_ERR_CANCELLED, /* upstream_cancel */
};

typedef void (*up_done_fn)(up_req *r);

struct up_req {
	/* in: set before upstream_start, valid until done() or upstream_cancel */
	const char *url;
	const char *ca_file;     /* NULL: the system's CA bundle */
	const void *body;
	size_t body_len;
	const char *headers[UP_HEADERS_MAX]; /* "Name: value" */
	unsigned nheaders;
	uint32_t timeout_ms;     /* whole request */
	bool fresh_connection;   /* never reuse a connection (money-moving requests) */
	snap_arena *arena;       /* the response body's memory */
	up_done_fn done;
	void *data;              /* the caller's */
	/* out: valid in done() (sent also after upstream_cancel) */
	int status;              /* enum up_status */
	long http;               /* HTTP status, 0 if none */
	bool sent;
	snap_buf response;       /* the response body */
	char error[CURL_ERROR_SIZE]; /* curl's reason when status < 0 */
	/* private */
	void *easy;
	bool active;
	bool too_big;
	bool resent;             /* sent again on a fresh connection (above) */
	struct curl_slist slist[UP_HEADERS_MAX + 1];
};

/* 0 or a negative errno; *out is owned by the caller until upstream_close.
 * max_host_connections caps parallel connections to one host (0: no cap). */
int upstream_new(uv_loop_t *loop, unsigned max_host_connections, upstream **out);

/* Change the cap on parallel connections per host (after a reload). */
void upstream_set_max_host_connections(upstream *u, unsigned n);

/* Start r. 0, or a negative enum up_status (done() is then never called). */
int upstream_start(upstream *u, up_req *r);

/* Abandon r if it is in flight: done() will not be called; r->sent keeps
 * whether the request may have been sent. Never call it from inside done()
 * of the same request. */
void upstream_cancel(upstream *u, up_req *r);

/* Requests in flight. */
unsigned upstream_active(const upstream *u);

/* Close every connection and release everything; no request may be in
 * flight. The memory goes once libuv has closed the handles (run the loop). */
void upstream_close(upstream *u);

#endif
