/* The SNAP endpoints of the DOKU Wallet: one table row per endpoint, shared
 * by the daemon (what to send), the sandbox (what to accept) and the tools.
 * Also the required-field and format rules of each request. */
#ifndef DOKU_SNAP_ENDPOINT_H
#define DOKU_SNAP_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#define SNAP_FIELD_PATH_MAX 128 /* longest dotted JSON path reported by snap_validate */

enum snap_auth {
	SNAP_AUTH_TOKEN,        /* token endpoint: X-CLIENT-KEY + RSA signature */
	SNAP_AUTH_B2B,          /* HMAC signature + B2B token */
	SNAP_AUTH_B2B_CUSTOMER, /* as B2B, plus Authorization-Customer (B2B2C token) */
};

enum snap_endpoint_flags {
	SNAP_EP_MONEY = 1u << 0, /* moves money: never resent, outcome journaled */
};

typedef struct snap_endpoint {
	const char *name;         /* the Wallet RPC name ("GetBalance"); "AccessTokenB2B" /
				     "AccessTokenB2B2C" for the token endpoints */
	const char *path;         /* "/snap-adapter/b2b2c/v1.0/balance-inquiry" */
	int service_code;         /* 11: the middle two digits of its responseCodes */
	enum snap_auth auth;
	unsigned flags;           /* SNAP_EP_* */
	const ProtobufCMessageDescriptor *request;  /* the JSON body's message */
	const ProtobufCMessageDescriptor *response; /* DOKU's answer's message */
	const char *const *required; /* NULL-terminated JSON paths the reference marks
					Required; nested as "amount.value" */
	const char *status_rpc;   /* money-moving: the RPC that tells its outcome */
} snap_endpoint;

extern const snap_endpoint snap_endpoints[];
extern const size_t snap_endpoint_count;

/* Lookups; NULL when there is no such endpoint. */
const snap_endpoint *snap_endpoint_by_name(const char *name);
const snap_endpoint *snap_endpoint_by_path(const char *path, size_t len);

/* Check msg (of type ep->request) against the endpoint's rules: every
 * required path present and non-empty (SNAP_ERR_MISSING), and every Amount
 * that is present well formed, value "^(0|[1-9][0-9]{0,15})\.[0-9]{2}$" and
 * currency three capital letters (SNAP_ERR_FORMAT). On error field holds the
 * JSON path of the first offending field ("amount.value"). 0 when valid. */
int snap_validate(const snap_endpoint *ep, const ProtobufCMessage *msg,
		  char field[SNAP_FIELD_PATH_MAX]);

#endif
