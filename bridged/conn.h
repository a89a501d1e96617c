/* One client connection: the frame reader and writer, the caps (frame size,
 * calls in flight), backpressure, the peer's credentials, timeouts.
 *
 * Reading: frames are parsed from a buffer shared by the loop (small frames)
 * or read straight into the call's arena (large bodies); a length over the
 * cap is refused before anything is allocated. Reading stops while
 * max_calls_per_connection calls are in flight or replies pile up unread
 * (bytes already read wait in a stash); it resumes when they drain.
 * Writing: replies are appended to an output buffer and written with one
 * write per loop turn. A connection is owned by the server; it frees itself
 * after libuv closed its handle. */
#ifndef DOKU_BRIDGED_CONN_H
#define DOKU_BRIDGED_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "list.h"
#include "snap_frame.h"

#define CONN_READ_BUF (64u * 1024u)        /* the loop's shared read buffer */
#define CONN_DIRECT_READ_MIN (16u * 1024u) /* read a body in place when this much is missing */
#define CONN_OUT_HIGH (1024u * 1024u)      /* stop reading while more reply bytes wait (plus one frame) */
#define CONN_OUT_KEEP (16u * 1024u)        /* output buffer kept between writes */

struct server;
struct call;

struct conn_buf {
	uint8_t *data;
	size_t len, cap;
};

struct conn {
	uv_pipe_t pipe;
	struct server *srv;
	struct list_node node;          /* in server.conns */
	struct list_node resume_node;   /* in server.resume_list */
	uint64_t number;
	peer peer;
	/* reading */
	uint8_t hdr[SNAP_FRAME_HEADER];
	unsigned hdr_len;
	struct call *rcall;             /* the call whose frame is arriving */
	uint8_t *body;
	uint32_t body_len, body_got;
	uint64_t frame_started_ms;
	uint8_t *stash;                 /* bytes read but not yet parsed (backpressure) */
	size_t stash_len;
	/* calls in flight */
	struct list_node calls;
	unsigned ncalls;
	/* writing */
	struct conn_buf out;            /* replies waiting */
	struct conn_buf wout;           /* replies being written */
	uv_write_t wreq;
	bool writing;
	uint64_t write_started_ms;
	uint64_t last_active_ms;
	bool reading, eof, broken, closing;
};

/* Accept a connection from the listener (server.c). 0 or a negative errno. */
int conn_accept(struct server *s);

/* Close now: calls in flight are detached or aborted, a partial frame dropped. */
void conn_close(struct conn *c, const char *why);

/* Apply the caps and the drain state: start or stop reading, close when done. */
void conn_update(struct conn *c);

/* Deferred work (server's idle handle): parse stashed bytes, close a broken connection. */
void conn_resume(struct conn *c);

/* Close the connection if one of its timeouts passed. */
void conn_sweep(struct conn *c, uint64_t now_ms);

/* ---- for calls ---- */

void conn_call_add(struct conn *c, struct call *call);
/* The call is over (unlinks it; reading may resume). */
void conn_call_done(struct conn *c, struct call *call);
struct call *conn_find_call(struct conn *c, uint64_t id);

/* Queue a reply frame. A reply over the frame cap is replaced by a
 * RESOURCE_EXHAUSTED reply. Never closes the connection synchronously.
 * 0 or a negative errno. */
int conn_reply(struct conn *c, const Doku__Bridge__V1__Reply *r);

#endif
