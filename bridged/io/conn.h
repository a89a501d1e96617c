/* One caller connection: bytes in, frames out. It knows frames
 * (snap_frame.h), caps (frame size, calls in flight), backpressure, timeouts
 * and the peer's credentials; it knows nothing of protobuf or of calls. What
 * a frame means is the upper layer's (rpc/session.c), reached only through
 * the conn_ops it is handed.
 *
 * Two protocols share the socket; the first byte decides. The native
 * framing starts with a frame's flags byte (0); HTTP/2 with its client
 * preface ("PRI * HTTP/2.0..."): then the bytes go to an HTTP/2 session
 * (io/h2.h) whose upper layer (rpc/grpc.c) conn_ops.h2_open gives, under
 * the same peer credentials, caps (max_calls = concurrent streams,
 * max_frame = the largest message), timeouts and output bound. Without
 * conn_ops.h2 a preface is a bad frame.
 *
 * Reading: frames are parsed from a buffer shared by the loop (small frames)
 * or read straight into the buffer the upper layer gave for the frame
 * (large bodies); a length over the cap is refused before anything is
 * allocated. Reading stops while max_calls_per_connection calls are held or
 * output piles up unread (bytes already read wait in a stash); it resumes
 * when they drain. Writing: frames are appended to an output buffer and
 * written with one write per loop turn.
 *
 * Ownership: a connection belongs to its host (io/server.c), which accepts
 * it, sweeps it and closes it; it frees itself after libuv closed its handle
 * and then tells the host (conn_host.closed). */
#ifndef DOKU_IO_CONN_H
#define DOKU_IO_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "h2.h"
#include "list.h"

#define CONN_READ_BUF (64u * 1024u)        /* the loop's shared read buffer */
#define CONN_DIRECT_READ_MIN (16u * 1024u) /* read a body in place when this much is missing */
#define CONN_OUT_HIGH (1024u * 1024u)      /* stop reading while more output waits (plus one frame) */
#define CONN_OUT_KEEP (16u * 1024u)        /* output buffer kept between writes */

typedef struct conn conn;

/* Why a connection's stream broke (conn_ops.error). */
enum conn_error {
	CONN_ERR_FLAGS,     /* a frame's flags byte is not 0 */
	CONN_ERR_TOO_BIG,   /* a frame's length is over max_frame */
	CONN_ERR_NOMEM,     /* no memory for a frame */
};

/* The upper layer of every connection. All run on the loop's thread; none
 * may free the connection (conn_close is allowed only from open's caller's
 * later turns, never from inside these). */
typedef struct conn_ops {
	/* A connection was accepted: its upper-layer state (user of the other
	 * calls), or NULL to close it at once. data: conn_host.ops_data. */
	void *(*open)(conn *c, void *data);
	/* A frame of len bytes begins: the buffer of len bytes it is read into
	 * (len 0: any non-NULL pointer), and *frame the upper layer's handle of
	 * it. NULL: out of memory (the stream is then broken). */
	uint8_t *(*frame_begin)(void *user, uint32_t len, void **frame);
	/* The frame is complete. */
	void (*frame_end)(void *user, void *frame);
	/* The frame will never complete (the connection closes). */
	void (*frame_drop)(void *user, void *frame);
	/* The stream broke: the caller gets one error frame (conn_frame_reserve
	 * works), then nothing more is read and the connection closes. */
	void (*error)(void *user, enum conn_error err, const char *msg);
	/* The connection closes now, or turns out to speak HTTP/2: forget it
	 * (user is not used again). */
	void (*close)(void *user);
	/* The connection is gone (freed); data: conn_host.ops_data. May be NULL. */
	void (*gone)(void *data);
	/* HTTP/2 (may be NULL: not served). The connection sent the client
	 * preface: close(user) was called, and h2_open gives the upper layer's
	 * state for the h2 session's ops (h2, whose close ends it), or NULL
	 * to close the connection. data: conn_host.ops_data. */
	void *(*h2_open)(conn *c, void *data);
	const h2_ops *h2;
} conn_ops;

/* What connections share, owned by their host (io/server.c). */
typedef struct conn_host {
	uv_loop_t *loop;
	const config *cfg;           /* current limits: max_frame, max_calls, timeouts */
	bool draining;               /* take no new frames; close once idle */
	const conn_ops *ops;
	void *ops_data;
	struct list_node conns;      /* every open connection */
	unsigned nconns;
	uint64_t accepted;           /* connections accepted (their numbers, for the log) */
	struct list_node resume;     /* connections with deferred work (conn_resume) */
	void (*wake)(struct conn_host *h);   /* run conn_resume for h->resume soon */
	void (*closed)(struct conn_host *h); /* a connection was freed */
} conn_host;

/* Accept a connection waiting on listener. 0 or a negative errno. */
int conn_accept(conn_host *h, uv_stream_t *listener);

/* Close now: a partial frame is dropped, the upper layer told (close). */
void conn_close(conn *c, const char *why);

/* Apply the caps and the drain state: start or stop reading, close when done. */
void conn_update(conn *c);

/* Deferred work (the host's wake): parse stashed bytes, close a broken connection. */
void conn_resume(conn *c);

/* Close the connection if one of its timeouts passed. */
void conn_sweep(conn *c, uint64_t now_ms);

/* The connection of a node of conn_host.conns / .resume. */
conn *conn_of_node(struct list_node *n);
conn *conn_of_resume_node(struct list_node *n);

/* ---- for the upper layer ---- */

/* A call is in flight (reading stops at max_calls), or it ended. */
void conn_hold(conn *c);
void conn_release(conn *c);

/* Room for one frame of n bytes at the end of the output, its header
 * written: the caller writes the n bytes at the pointer returned and calls
 * conn_frame_commit. NULL when the connection is closing or broken, or out
 * of memory (then it is broken: closed once its output is written). */
uint8_t *conn_frame_reserve(conn *c, size_t n);
void conn_frame_commit(conn *c, size_t n);

/* HTTP/2: the connection's session (NULL for the native protocol). After
 * queueing a response on it (h2_response, h2_body, h2_end, h2_reset), call
 * conn_flush: the output is written (at once, or after the h2 callback the
 * caller is in). */
h2 *conn_h2(conn *c);
void conn_flush(conn *c);

const peer *conn_peer(const conn *c);
uint64_t conn_number(const conn *c);
uint32_t conn_max_frame(const conn *c);

#endif
