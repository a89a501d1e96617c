/* The Reply frame (doku.bridge.v1.Reply) of a call's result, packed straight
 * into its connection's output; and the error reply of a broken stream. */
#ifndef DOKU_RPC_REPLY_H
#define DOKU_RPC_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "conn.h"
#include "snap_arena.h"

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
