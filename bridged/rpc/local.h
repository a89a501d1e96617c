/* The daemon-local RPCs: CloseCustomerSession, Health, Metrics,
 * GetOperation, ListOperations, and the reply of OpenCustomerSession.
 *
 * A handler sees a local_call, never a call: what it may read, the arena
 * to answer from, and done(), which it calls exactly once, at once or from
 * a store request's callback, with a doku.bridge.v1.Code (0: OK, with resp)
 * and, on failure, the status text written into status first. */
#ifndef DOKU_RPC_LOCAL_H
#define DOKU_RPC_LOCAL_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "config.h"
#include "snap_arena.h"
#include "tokens.h"

struct bridge;

typedef struct local_call {
	struct bridge *b;
	snap_arena *arena;              /* the call's: the answer's memory */
	const ProtobufCMessage *req;    /* the request message */
	const profile *prof;            /* NULL for a method without profile */
	tok_profile *tp;                /* the profile's tokens; NULL without profile */
	const char *customer_ref;       /* "" when the method has none */
	const char *partner_ref;        /* the request's partner reference, or NULL */
	char *status;                   /* the status text on failure */
	size_t status_cap;
	void (*done)(struct local_call *lc, int code, ProtobufCMessage *resp);
	void *pending;                  /* a handler's answer while its store request is out */
} local_call;

void local_close_session(local_call *lc);
void local_health(local_call *lc);
void local_metrics(local_call *lc);
void local_get_operation(local_call *lc);
void local_list_operations(local_call *lc);

/* OpenCustomerSession's reply: DOKU's answer to the token request. NULL: out of memory. */
ProtobufCMessage *local_session_opened(snap_arena *arena, const tok_result *r);

#endif
