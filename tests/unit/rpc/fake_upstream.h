/* A stand-in for io/upstream.c, linked instead of it (a link seam): the
 * functions of io/upstream.h, with no network. Every request started is
 * recorded (its URL, headers and body copied) in the order it was started;
 * the test reads them and answers one with an HTTP status and a body, or
 * fails it (UP_ERR_TIMEOUT, UP_ERR_IO, ... with sent true or false). The
 * answer reaches the request's done() from the loop (a uv_idle handle),
 * never inside upstream_start or inside the call that answers. */
#ifndef DOKU_TEST_FAKE_UPSTREAM_H
#define DOKU_TEST_FAKE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "upstream.h"

#define FAKE_REQ_MAX 256 /* requests recorded by one fake upstream */

/* One request as it was started. */
typedef struct fake_req {
	unsigned seq;                     /* 0, 1, 2... in the order started */
	char *url;
	char *headers[UP_HEADERS_MAX];    /* "Name: value" */
	unsigned nheaders;
	char *body;                       /* NUL-terminated copy */
	size_t body_len;
	bool fresh_connection;
	unsigned timeout_ms;
	/* its fate */
	bool in_flight;                   /* started, not yet answered or cancelled */
	bool answered;                    /* an answer was scheduled (it may not be delivered yet) */
	bool delivered;                   /* done() was called */
	bool cancelled;                   /* upstream_cancel while in flight */
} fake_req;

/* Requests started on u so far. */
unsigned fake_up_count(const upstream *u);

/* The request of sequence number i (NULL when there is none). */
const fake_req *fake_up_req(const upstream *u, unsigned i);

/* The value of header name (case-insensitive) of rq, NULL when absent. */
const char *fake_req_header(const fake_req *rq, const char *name);

/* Whether rq's URL ends with suffix. */
bool fake_req_url_ends(const fake_req *rq, const char *suffix);

/* The requests in flight and not yet answered. */
unsigned fake_up_pending(const upstream *u);

/* Mark request i as written on the connection (up_req.sent true), as curl
 * does just before it writes a request. */
void fake_up_set_sent(upstream *u, unsigned i);

/* Answer request i (in flight, not yet answered) with HTTP http and body
 * (NULL: empty); done() follows from the loop. sent is set true. */
void fake_up_answer(upstream *u, unsigned i, long http, const char *body);

/* Fail request i with status (a negative enum up_status) and sent. */
void fake_up_fail(upstream *u, unsigned i, int status, bool sent);

/* A hook run inside upstream_start, after the request is recorded. */
typedef void (*fake_start_fn)(const fake_req *rq, void *data);
void fake_up_on_start(upstream *u, fake_start_fn fn, void *data);

/* A hook run right after a done() returned (rq: the request answered). */
void fake_up_after_done(upstream *u, fake_start_fn fn, void *data);

/* Make the next upstream_start fail with status (0: succeed again). */
void fake_up_refuse_next(upstream *u, int status);

#endif
