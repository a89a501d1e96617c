/* The one builder of a signed SNAP request: the URL and the header lines of
 * one POST to DOKU, signed (snap-conventions.md sections 2 to 4). The body is
 * the caller's, already encoded; it is signed as given and never copied.
 *
 * Token endpoints (ep->auth SNAP_AUTH_TOKEN), RSA signature of
 * client_id "|" timestamp, these headers in this order:
 *   Content-Type: application/json
 *   X-CLIENT-KEY: <client_id>
 *   X-TIMESTAMP: <timestamp>
 *   X-SIGNATURE: <RSA signature>
 * Service endpoints (SNAP_AUTH_B2B, SNAP_AUTH_B2B_CUSTOMER), HMAC-SHA512 of
 * "POST:" path ":" b2b_token ":" sha256hex(body) ":" timestamp:
 *   Content-Type: application/json
 *   Authorization: Bearer <b2b_token>
 *   X-TIMESTAMP: <timestamp>
 *   X-SIGNATURE: <HMAC signature>
 *   X-PARTNER-ID: <client_id>
 *   X-EXTERNAL-ID: <external_id>
 *   CHANNEL-ID: <channel_id>                          (when channel_id is not NULL)
 *   Authorization-Customer: Bearer <customer_token>   (SNAP_AUTH_B2B_CUSTOMER only)
 * The URL is base_url followed by ep->path.
 *
 * Inputs: every string is NUL-terminated, and the ones that reach the URL or a
 * header line hold no control characters (no CR/LF header injection). What a
 * kind of endpoint does not use must be NULL (0 for secret_len): a token
 * request gets no secret, tokens, external id or channel id; a service call
 * gets no key, and a customer token exactly when ep->auth is
 * SNAP_AUTH_B2B_CUSTOMER. body may be NULL when body_len is 0.
 *
 * Ownership: in and everything it points to stay the caller's and are only
 * read (key is used to sign: not from two threads at once, see snap_sign.h).
 * Every string of out lives in arena, which is wiped when reset or freed: the
 * bearer tokens and the signature are there. The stack copy of the signature
 * is wiped before returning. On error out is empty (url NULL, nheaders 0);
 * what was allocated before the error stays in the arena until it is reset. */
#ifndef DOKU_SNAP_REQUEST_H
#define DOKU_SNAP_REQUEST_H

#include <stddef.h>

#include "snap_arena.h"
#include "snap_endpoint.h"
#include "snap_sign.h"

#define SNAP_REQUEST_HEADERS_MAX 16
#define SNAP_REQUEST_URL_MAX 1024             /* longest URL, in bytes without the NUL */
#define SNAP_REQUEST_HEADER_MAX (4096 + 64)   /* one header line; tokens are up to 4096 bytes */

typedef struct snap_request_in {
	const snap_endpoint *ep;        /* ep->auth decides token vs service signing */
	const char *base_url;           /* "https://host[:port]" */
	const char *client_id;          /* X-CLIENT-KEY (token) / X-PARTNER-ID (service) */
	const char *timestamp;          /* X-TIMESTAMP, snap_time format */
	const char *body;               /* the JSON body, already encoded */
	size_t body_len;
	/* token endpoints (SNAP_AUTH_TOKEN) */
	snap_rsa *key;
	/* service endpoints */
	const void *client_secret;
	size_t secret_len;
	const char *b2b_token;          /* raw, without "Bearer " */
	const char *customer_token;     /* SNAP_AUTH_B2B_CUSTOMER only; NULL otherwise */
	const char *external_id;        /* X-EXTERNAL-ID */
	const char *channel_id;         /* CHANNEL-ID; NULL: no header */
} snap_request_in;

typedef struct snap_request {
	const char *url;                               /* in the arena */
	const char *headers[SNAP_REQUEST_HEADERS_MAX]; /* "Name: value", in the arena */
	unsigned nheaders;
} snap_request;

/* Sign and build. 0, SNAP_ERR_INVALID (a required input missing or empty, a
 * control character, or ep->auth and the inputs disagree), SNAP_ERR_TOO_BIG
 * (the URL over SNAP_REQUEST_URL_MAX or a header line over
 * SNAP_REQUEST_HEADER_MAX bytes), SNAP_ERR_NOMEM (the arena's limit), or what
 * signing returns (SNAP_ERR_CRYPTO, SNAP_ERR_KEY for a public key,
 * SNAP_ERR_TOO_BIG for a client_id too long to sign). */
int snap_request_build(snap_arena *arena, const snap_request_in *in, snap_request *out);

#endif
