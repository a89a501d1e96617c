/* The RPC table: one row per method of doku.wallet.v1.Wallet.
 *
 * A SNAP row points at its snap_endpoint row (path, service code, auth kind,
 * money-moving flag, request/response descriptors, required fields); the
 * OpenCustomerSession row at the B2B2C token endpoint; the daemon-local rows
 * (CloseCustomerSession, Health) at their handler. methods_init resolves
 * every row against the service descriptor and checks the types agree.
 * Nothing on the path of a call knows which RPC it carries except through
 * its row. */
#ifndef DOKU_BRIDGED_METHODS_H
#define DOKU_BRIDGED_METHODS_H

#include <stdbool.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "snap_endpoint.h"

#define METHODS_MAX 64          /* the ACL keeps methods in a 64-bit mask */
#define METHOD_FULL_MAX 96      /* "/doku.wallet.v1.Wallet/GetBalance" */

struct call;

enum method_kind {
	METHOD_SNAP,          /* a SNAP service call: validate, tokens, sign, send */
	METHOD_SESSION_OPEN,  /* the B2B2C token request that opens a customer session */
	METHOD_LOCAL,         /* answered by the daemon itself */
	METHOD_JOURNAL,       /* answered by the daemon from its journal: the handler starts a
				 store request whose callback completes the call (call_store_done) */
};

/* A daemon-local handler: fills *resp (allocated from the call's arena).
 * 0, or a doku.bridge.v1.Code with the call's status text set. */
typedef int (*method_local_fn)(struct call *c, ProtobufCMessage **resp);

/* A METHOD_JOURNAL handler: starts its store request and returns 0 (then
 * call_store_done(c, false) runs later with c->code and c->resp set), or
 * returns a doku.bridge.v1.Code at once with the call's status text set. */
typedef int (*method_journal_fn)(struct call *c);

typedef struct method {
	const char *name;             /* "GetBalance" */
	enum method_kind kind;
	const char *endpoint;         /* snap_endpoints name (SNAP, SESSION_OPEN) */
	method_local_fn local;        /* LOCAL */
	method_journal_fn journal;    /* JOURNAL */
	bool uses_profile;            /* the call names a credential profile */
	bool customer;                /* the call needs Call.customer_ref */
	const char *const *required;  /* non-SNAP rows: string fields that must be set */
	/* resolved by methods_init */
	unsigned index;
	char full[METHOD_FULL_MAX];   /* "/doku.wallet.v1.Wallet/GetBalance" */
	const ProtobufCMessageDescriptor *input, *output;
	const snap_endpoint *ep;      /* NULL for LOCAL */
	bool money;                   /* SNAP_EP_MONEY */
	const ProtobufCFieldDescriptor *ref_field; /* the request's partner reference, or NULL */
	const ProtobufCFieldDescriptor *code_field, *message_field; /* of output */
} method;

/* Resolve and check the table. 0 or -EINVAL (with a log line naming the row). */
int methods_init(void);

/* The row for a full method name name[0..len); NULL if unknown. */
const method *methods_find(const char *name, size_t len);

/* Index of the method named short_name ("GetBalance"); -1 if unknown. */
int methods_index(const char *short_name);

unsigned methods_count(void);
const method *methods_at(unsigned i);

/* A string field of msg by descriptor (NULL field or unset: NULL). */
const char *methods_string_field(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f);

#endif
