/* Stock gRPC over HTTP/2 on the daemon's socket (docs/protocol.md, "gRPC"):
 * the upper layer of an HTTP/2 connection (io/h2.h), mapping each stream
 * onto the call machinery exactly as rpc/session.c maps native frames.
 *
 * A stream is one unary call: ":path" /doku.wallet.v1.Wallet/<Method> (any
 * row of rpc/methods.c; admission decides), POST, content-type
 * application/grpc[+proto], one length-prefixed message (uncompressed), and
 * the envelope as metadata: x-doku-profile, x-doku-customer-ref,
 * grpc-timeout (the deadline, capped as timeout_ms is). The reply is
 * ":status" 200, the response message, and trailers: grpc-status and
 * grpc-message (the native code and status text), then the SNAP facts of the
 * native Reply (x-doku-outcome, -http-status, -response-code,
 * -response-message, -external-id, -partner-reference-no, -detail).
 * grpc.health.v1.Health is answered here (rpc/grpc_health.c): Check, and
 * Watch, whose stream stays open and gets NOT_SERVING when the daemon drains,
 * then ends.
 *
 * Refused before a call, with a trailers-only answer, the other streams
 * going on: a header list over its cap, a method other than POST (HTTP 405),
 * another content-type (HTTP 415), grpc-encoding other than identity or a
 * compressed message (UNIMPLEMENTED), a malformed grpc-timeout or message
 * (INVALID_ARGUMENT), a message over max_frame_bytes (RESOURCE_EXHAUSTED,
 * before anything is allocated). A stream the peer resets, or a connection
 * that ends, detaches its call (call_detach: a money-moving request already
 * sent runs to its end and is journaled). A call holds a call slot of the
 * connection (conn_hold) from its start to its reply. */
#ifndef DOKU_RPC_GRPC_H
#define DOKU_RPC_GRPC_H

#include "conn.h"
#include "h2.h"

#define GRPC_PATH_MAX 128u        /* a :path kept (longer: unknown) */
#define GRPC_VALUE_MAX 1024u      /* a trailer's value, percent-encoded (longer: cut) */

/* conn_ops.h2_open (data: the bridge) and conn_ops.h2 of the daemon's socket. */
void *grpc_open(conn *c, void *data);
extern const h2_ops grpc_h2_ops;

#endif
