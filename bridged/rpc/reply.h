/* What a caller is told of its call: the code and outcome of an exchange
 * with DOKU (docs/protocol.md), their names, and the Reply frame
 * (doku.bridge.v1.Reply) packed straight into the connection's output.
 *
 * The outcome is a fact, never a guess: DONE only for DOKU's 2xx00 answer,
 * NOT_DONE when the request certainly did not take effect (never sent, or
 * refused with a 4xx), UNKNOWN otherwise (sent and no answer, 202, 5xx, an
 * answer that cannot be read). The mapping and the names are pure functions. */
#ifndef DOKU_RPC_REPLY_H
#define DOKU_RPC_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "conn.h"
#include "snap_arena.h"
#include "snap_code.h"

struct reply_exchange {
	int transport;        /* enum up_status of the last attempt (UP_OK: DOKU answered) */
	bool sent;            /* the last attempt may have reached DOKU */
	unsigned http;        /* HTTP status of the answer */
	const snap_code *rc;  /* its responseCode; NULL when it had none */
};

struct reply_verdict {
	int code;             /* doku.bridge.v1.Code */
	int outcome;          /* doku.bridge.v1.Outcome */
};

/* The code and outcome of one exchange with DOKU. */
void reply_outcome(const struct reply_exchange *in, struct reply_verdict *out);

/* The gRPC code for an HTTP status class of a SNAP answer (4xx, 5xx). */
int reply_code_for_http(int http);

/* "OK" ... "UNAUTHENTICATED"; "?" when out of range. */
const char *reply_code_name(int code);

/* "DONE", "NOT_DONE", "UNKNOWN", "-". */
const char *reply_outcome_name(int outcome);

/* What a Reply says. Strings may be NULL (sent as ""). */
typedef struct reply_facts {
	uint64_t id;
	int code;                        /* doku.bridge.v1.Code */
	int outcome;                     /* doku.bridge.v1.Outcome */
	const char *status;
	unsigned http;
	const char *response_code;
	const char *response_message;
	const char *external_id;
	const char *partner_reference_no;
	const ProtobufCMessage *resp;    /* the response message; NULL: none */
} reply_facts;

/* The response message of f packed into arena: *msg (len 0: none, or no
 * room in the arena), for the native Reply and for gRPC (rpc/grpc.c) alike.
 * Over cap bytes it is left out, and *too_big says so: the reply is then
 * RESOURCE_EXHAUSTED with REPLY_TOO_BIG. */
#define REPLY_TOO_BIG "the reply is over the frame cap"
void reply_message(const reply_facts *f, snap_arena *arena, size_t cap, ProtobufCBinaryData *msg,
		   bool *too_big);

/* Queue the Reply of f on c. The response message is packed into arena
 * first. A reply over the connection's frame cap is replaced by a
 * RESOURCE_EXHAUSTED reply without message. 0, or a negative errno (the
 * connection is closing or broken: the reply is lost with it). */
int reply_send(conn *c, const reply_facts *f, snap_arena *arena);

/* The one reply to a broken stream (id 0, NOT_DONE). */
int reply_stream_error(conn *c, enum conn_error err, const char *msg);

#endif
