/* One call's life, as one state machine (docs/daemon.md, "One call"):
 *
 *   READING -> ADMITTED -> TOKENS -> INTENT -> SENDING -> ANSWERED -> OUTCOME -> REPLIED
 *
 *   READING   its frame is arriving (the connection fills call_new's buffer)
 *   ADMITTED  admit() passed it: method, profile, ref and request known; deadline armed
 *   TOKENS    waiting for a token: B2B, the customer's, or the session-opening request
 *   INTENT    money: the attempt (its X-EXTERNAL-ID) is being journaled before it leaves
 *   SENDING   the signed request is with DOKU
 *   LOCAL     a daemon-local RPC is answering (perhaps from the journal)
 *   ANSWERED  the result is known: code, outcome, DOKU's answer
 *   OUTCOME   money: the outcome is being journaled; the reply waits until it is durable
 *   REPLIED   the owner has the result (the reply is queued); the call is freed
 *
 * One setter changes the state; it asserts that the edge is in the table
 * and traces it at debug level. Callbacks (tokens, journal, upstream, local
 * handlers, the deadline, a cancel) store what they learnt and step the
 * machine; the one driver, run(), is never re-entered.
 *
 * Ownership: a call is created by its owner (rpc/session.c for a caller's
 * frame, rpc/reconciler.c for a status query) and owns itself once started:
 * it frees itself after calling the owner's done() (REPLIED). All of its
 * memory but the struct comes from its arena, freed and wiped in one go. */
#ifndef DOKU_RPC_CALL_H
#define DOKU_RPC_CALL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>

#include "admit.h"
#include "config.h"
#include "methods.h"
#include "reply.h"
#include "snap_arena.h"

#define CALL_ARENA_EXTRA (2u * 1024u * 1024u) /* arena cap beyond 4 x the frame cap */
#define CALL_INTERNAL_ARENA (1024u * 1024u)   /* arena cap of an internal call */

struct bridge;
typedef struct call call;

/* The call ended: its result is readable (call_result) until done returns;
 * then the call frees itself. */
typedef void (*call_done_fn)(call *c, void *data);

/* A call for a frame of len bytes: *frame gets its buffer (len bytes, in the
 * call's arena, whose cap follows max_frame). NULL when out of memory. */
call *call_new(struct bridge *b, uint32_t len, uint8_t **frame);

/* The frame, as read. */
const uint8_t *call_frame(const call *c, uint32_t *len);
snap_arena *call_arena(call *c);

/* Free a call that was never started. */
void call_discard(call *c);

/* A request answered before it became a call (gRPC's refusals of a
 * stream's headers or framing, rpc/grpc.c): counted as a failed call of no
 * method, as a native frame refused at admission is. Its log line is the
 * caller's. */
void call_count_refusal(struct bridge *b, int code);

/* Start a call admitted by admit() (a->code 0), or answer one it refused
 * (a->code != 0). id: the Call's id; uid, conn_no: who sent it, for the
 * log. done(c, data) runs once, at the end. */
void call_start(call *c, const admission *a, uint64_t id, uid_t uid, uint64_t conn_no,
		call_done_fn done, void *data);

/* An internal call (reconciliation's status queries): no connection, no
 * ACL. req: a message of m->input, in arena (call_arena of the result),
 * sent as customer ref of profile p. NULL when out of memory (done is then
 * never called); else done runs once, at the end. */
call *call_new_internal(struct bridge *b);
void call_start_internal(call *c, const method *m, const profile *p, const char *ref,
			 ProtobufCMessage *req, uint32_t timeout_ms, call_done_fn done, void *data);

/* Stop a call in flight and answer it with code (CANCELLED, DEADLINE_EXCEEDED,
 * UNAVAILABLE at shutdown). The outcome says whether the request may have
 * gone out. A call whose journal write is in flight ends when it is done. */
void call_abort(call *c, int code, const char *why);

/* The caller is gone: done is not called any more. A money-moving request
 * already sent runs to its end and its outcome is logged and journaled;
 * anything else stops. */
void call_detach(call *c);

/* The call's id (its Call.id) and its result (valid in done). */
uint64_t call_id(const call *c);
void call_result(const call *c, reply_facts *out);

/* Shutdown: abort every call in flight of b with code (calls whose journal
 * write is in flight end when it is done). */
void call_abort_all(struct bridge *b, int code, const char *why);

#endif
