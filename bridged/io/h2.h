/* One HTTP/2 server connection (RFC 9113, prior knowledge, no TLS), with
 * nghttp2, driven by its owner's bytes: h2_recv takes what the socket read,
 * h2_output gives what to write. It knows streams, header blocks, flow
 * control and HTTP/2's limits; it knows nothing of gRPC. What a stream
 * means is the upper layer's (rpc/grpc.c), reached only through the h2_ops
 * it is handed; it answers with h2_response / h2_body / h2_end.
 *
 * Limits, all from h2_limits: concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS,
 * enforced by nghttp2: a stream over it is reset), the request header list
 * (SETTINGS_MAX_HEADER_LIST_SIZE; over it the fields are not passed up and
 * headers_end says so), the flow-control windows (stream and connection,
 * sized to the largest message), the HPACK table (4 KiB), SETTINGS entries,
 * queued SETTINGS/PING acknowledgements, CONTINUATION frames and the
 * RST_STREAM rate (nghttp2's options): a peer over one of them loses the
 * connection (GOAWAY). A response is held by h2 until it is written: at most
 * what the upper layer queued. The session's memory (nghttp2's and its
 * streams') comes from a pool of its own that keeps at most 64 KiB of freed
 * blocks for reuse, none once the session is idle (h2_sweep).
 *
 * Ownership: the owner (io/conn.c) creates and frees the session. Calls of
 * the ops happen only from inside h2_recv, h2_output, h2_sweep, h2_shutdown
 * and h2_free;
 * from inside them the upper layer may queue responses (h2_response, ...)
 * but must not call h2_recv, h2_output or h2_free. */
#ifndef DOKU_IO_H2_H
#define DOKU_IO_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24u
#define H2_HEADER_LIST_MAX (16u * 1024u)  /* request header list (RFC 9113 6.5.2 size) */
#define H2_HEADER_TABLE 4096u             /* HPACK dynamic table we decode with */
#define H2_MAX_SETTINGS 16u               /* SETTINGS entries in one frame */
#define H2_MAX_OUTBOUND_ACK 256u          /* SETTINGS/PING acks queued unread */
#define H2_MAX_CONTINUATIONS 8u           /* CONTINUATION frames after a HEADERS */
#define H2_RST_BURST 1000u                /* RST_STREAM received: burst, then ... */
#define H2_RST_RATE 33u                   /* ... per second */
#define H2_WINDOW_MAX 2147483647u         /* RFC 9113 6.9.1 */
#define H2_RESPONSE_FIELDS_MAX 16u        /* header fields of one response block */

/* HTTP/2 error codes the upper layer resets with (RFC 9113 7). */
#define H2_NO_ERROR 0x0u
#define H2_INTERNAL_ERROR 0x2u
#define H2_REFUSED_STREAM 0x7u
#define H2_CANCEL 0x8u

typedef struct h2 h2;

typedef struct h2_limits {
	uint32_t max_streams;     /* concurrent streams the peer may open */
	uint32_t window;          /* flow-control window of a stream and of the connection */
	uint32_t max_header_list; /* request header list, in RFC 9113's measure */
} h2_limits;

/* One header field to send: name lowercase, NUL-terminated and static (a
 * string literal: it is never copied), value of len bytes (copied). */
typedef struct h2_field {
	const char *name;
	const char *value;
	size_t len;
} h2_field;

/* The upper layer of a session. user: h2_new's. st: the upper layer's
 * handle of a stream (stream_open's). All run on the loop's thread. */
typedef struct h2_ops {
	/* The peer opens stream id (its request HEADERS begin): the upper
	 * layer's handle, or NULL to refuse it (RST_STREAM REFUSED_STREAM). */
	void *(*stream_open)(void *user, int32_t id);
	/* One field of the request's header block, in order (pseudo-header
	 * fields first; nghttp2 checked HTTP/2's rules). Not called for fields
	 * past the header list cap. */
	void (*header)(void *user, void *st, const char *name, size_t nlen, const char *value,
		       size_t vlen);
	/* The request's header block is complete; too_big: fields were left
	 * out (over max_header_list). */
	void (*headers_end)(void *user, void *st, bool too_big);
	/* A piece of the request body. */
	void (*data)(void *user, void *st, const uint8_t *p, size_t n);
	/* The request is complete (END_STREAM). */
	void (*request_end)(void *user, void *st);
	/* The stream is closed: its response was written, or either side
	 * reset it (error: the HTTP/2 error code, 0 when it ended normally),
	 * or the session ends. st is not used again. */
	void (*stream_close)(void *user, void *st, uint32_t error);
	/* The session ends (h2_free, after stream_close for each stream still
	 * open): user is not used again. */
	void (*close)(void *user);
	/* The session drains (h2_shutdown): a stream that would stay open
	 * (a server stream) should end now. May be NULL. */
	void (*shutdown)(void *user);
} h2_ops;

/* A server session under lim, its SETTINGS queued. 0 or -ENOMEM. *out
 * belongs to the caller: h2_free. */
int h2_new(const h2_limits *lim, const h2_ops *ops, void *user, h2 **out);

/* Close every stream still open (stream_close with H2_CANCEL), end the
 * upper layer (close) and free the session. */
void h2_free(h2 *h);

/* Bytes the peer sent, from the client preface on; now_ms stamps the streams
 * they open (h2_sweep). 0, or a negative errno when the session is over (a
 * bad preface, a protocol error, a flood): the GOAWAY it queued, if any,
 * is in h2_output; then nothing more is read. */
int h2_recv(h2 *h, const uint8_t *p, size_t n, uint64_t now_ms);

/* Why the session is over (a static text), for the log. */
const char *h2_error(const h2 *h);

/* The next bytes to write: *p (valid until the next call into h), their
 * length; 0 when there is nothing to write now; a negative errno when the
 * session broke. */
ssize_t h2_output(h2 *h, const uint8_t **p);

/* false once the session is over (GOAWAY exchanged, a fatal error): the
 * connection closes when its output is written. */
bool h2_alive(const h2 *h);

/* Streams open now (requests, or responses not yet written). */
unsigned h2_streams(const h2 *h);

/* Draining: GOAWAY with the last stream the peer opened (the peer opens no
 * more; those open finish), and the upper layer told (shutdown). Once. */
void h2_shutdown(h2 *h);

/* Reset the streams that wait on the peer longer than timeout_ms since
 * now_ms: a request not completed, or a response not taken (flow control).
 * The number reset. With no stream open, the pool's free blocks go. */
unsigned h2_sweep(h2 *h, uint64_t now_ms, uint32_t timeout_ms);

/* ---- for the upper layer: the response of stream id ---- */

/* Queue the response's header block (":status" first; n <= H2_RESPONSE_FIELDS_MAX),
 * copied. Once per stream, before h2_body. 0, -ENOENT (the stream is
 * closed), -EINVAL, -ENOMEM. */
int h2_response(h2 *h, int32_t id, const h2_field *f, size_t n);

/* Queue body bytes after the header block (copied). 0, -ENOENT, -ENOMEM, -EINVAL. */
int h2_body(h2 *h, int32_t id, const uint8_t *p, size_t n);

/* The response ends: with trailers f[0..n) (n > 0), or else END_STREAM
 * after the body. Without a header block queued first, f is the whole
 * response (HEADERS with END_STREAM: gRPC's trailers-only). now_ms starts
 * the time the peer has to take it (h2_sweep). 0, -ENOENT, -ENOMEM, -EINVAL. */
int h2_end(h2 *h, int32_t id, const h2_field *f, size_t n, uint64_t now_ms);

/* Response body bytes queued on stream id that the peer has not taken
 * yet (flow control): what the upper layer bounds a stream's answers by.
 * 0 for a stream that is not open. */
size_t h2_queued(const h2 *h, int32_t id);

/* A stream whose request stays open (a client or bidi stream) made
 * progress at now_ms: h2_sweep counts its time from there. */
void h2_touch(h2 *h, int32_t id, uint64_t now_ms);

/* Reset stream id (RST_STREAM with error). 0 or -ENOENT. */
int h2_reset(h2 *h, int32_t id, uint32_t error);

#endif
