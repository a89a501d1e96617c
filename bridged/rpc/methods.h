/* The RPC table: one row per method of doku.wallet.v1.Wallet, holding all
 * the daemon knows of it.
 *
 * A SNAP row points at its snap_endpoint row (path, service code, auth kind,
 * money-moving flag, request/response descriptors, required fields) and, when
 * it moves money, at the row of its status RPC; the OpenCustomerSession row
 * at the B2B2C token endpoint and its reply shaping; the daemon-local rows at
 * their handler. methods_init resolves every row against the service
 * descriptor and the endpoint table and checks the links. Nothing on the path
 * of a call knows which RPC it carries except through its row; no other file
 * of the daemon names an RPC or an endpoint path. */
#ifndef DOKU_RPC_METHODS_H
#define DOKU_RPC_METHODS_H

#include <stdbool.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "reconcile.h"
#include "snap_arena.h"
#include "snap_endpoint.h"
#include "tokens.h"

#define METHODS_MAX 64          /* the ACL keeps methods in a 64-bit mask */
#define METHOD_FULL_MAX 96      /* "/doku.wallet.v1.Wallet/GetBalance" */

struct local_call;

enum method_kind {
	METHOD_SNAP,          /* a SNAP service call: validate, tokens, sign, send */
	METHOD_SESSION_OPEN,  /* the B2B2C token request that opens a customer session */
	METHOD_LOCAL,         /* answered by the daemon itself (rpc/local.c) */
};

/* A daemon-local handler (rpc/local.h): answers with lc->done, at once or
 * later (a store request's callback). */
typedef void (*method_local_fn)(struct local_call *lc);

/* The reply of a session-opening token request: DOKU's answer r shaped into
 * the RPC's response message, in arena. NULL: out of memory. */
typedef ProtobufCMessage *(*method_opened_fn)(snap_arena *arena, const tok_result *r);

typedef struct method {
	const char *name;             /* "GetBalance" */
	enum method_kind kind;
	const char *endpoint;         /* snap_endpoints name (SNAP, SESSION_OPEN) */
	method_local_fn local;        /* LOCAL */
	method_opened_fn opened;      /* SESSION_OPEN */
	bool uses_profile;            /* the call names a credential profile */
	bool customer;                /* the call needs Call.customer_ref */
	bool routine;                 /* a probe: its success is logged at debug */
	reconcile_rule *rule;         /* money-moving: how its outcome is learnt (state/reconcile.h) */
	const char *status_field;     /* a status RPC: its answer's transaction status field */
	const char *const *required;  /* non-SNAP rows: string fields that must be set */
	/* resolved by methods_init */
	unsigned index;
	char full[METHOD_FULL_MAX];   /* "/doku.wallet.v1.Wallet/GetBalance" */
	size_t full_len;              /* strlen(full) */
	const ProtobufCMessageDescriptor *input, *output;
	const snap_endpoint *ep;      /* NULL for LOCAL */
	bool money;                   /* SNAP_EP_MONEY */
	const struct method *status;  /* money: the row of the RPC that tells its outcome */
	const ProtobufCFieldDescriptor *ref_field; /* the request's partner reference, or NULL;
						      money: the rule's key field */
	const ProtobufCFieldDescriptor *original_field; /* money: the rule's original field, or NULL */
	const ProtobufCFieldDescriptor *amount_field;   /* money: the rule's Amount field, or NULL */
	const ProtobufCFieldDescriptor *amount_value, *amount_currency; /* the Amount's strings */
	const ProtobufCFieldDescriptor *required_field; /* SESSION_OPEN: its grant (auth_code) */
} method;

/* Resolve and check the table, and hand the ACL its name lookup
 * (config_method_lookup). 0 or -EINVAL (with a log line naming the row). */
int methods_init(void);

/* The journal keys of req, a request of m's: pointers into req ("" for an
 * unset field), by the fields methods_init resolved from m's money rule.
 * 0, SNAP_ERR_INVALID (m does not move money, or req is not its request),
 * SNAP_ERR_MISSING (the key field is empty). */
int methods_keys(const method *m, const ProtobufCMessage *req, reconcile_keys *out);

/* The row for a full method name name[0..len); NULL if unknown. */
const method *methods_find(const char *name, size_t len);

/* The row of the method named short_name ("GetBalance"); NULL if unknown. */
const method *methods_by_name(const char *short_name);

/* Index of the method named short_name; -1 if unknown. */
int methods_index(const char *short_name);

unsigned methods_count(void);
const method *methods_at(unsigned i);

/* The money rule of the method named short_name; NULL when it moves no money. */
const reconcile_rule *methods_money_rule(const char *short_name);

/* The token endpoints (tokens.h): B2B (client_credentials) and B2B2C. */
const snap_endpoint *methods_b2b_token_endpoint(void);
const snap_endpoint *methods_b2b2c_token_endpoint(void);

/* A string field of msg by descriptor (NULL field or unset: NULL). */
const char *methods_string_field(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f);

#endif
