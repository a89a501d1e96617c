/* Access tokens: the B2B token of each profile (fetched on first need, shared
 * by every caller, renewed before it lapses, one fetch in flight at a time;
 * with a shared store, the fleet's one token: leased, fetched by one daemon,
 * published to all, replaced only once it lapsed or DOKU refused it)
 * and the customer (B2B2C) sessions, each named by a caller-chosen ref and
 * renewed with its refresh token.
 *
 * Callers that need a token pass a tok_wait: when the token is ready at once
 * the function returns 0 and the token can be read right away; otherwise the
 * wait is queued on the one request in flight (started if needed), the
 * function returns 1 and the wait's fn runs once with the result. A queued
 * wait can be withdrawn with tokens_cancel. Tokens never leave this module
 * except to sign and send requests; they live in secret memory. */
#ifndef DOKU_RPC_TOKENS_H
#define DOKU_RPC_TOKENS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "config.h"
#include "doku_err.h"
#include "list.h"
#include "snap_endpoint.h"
#include "store.h"
#include "upstream.h"

#define TOK_MARGIN_S 60              /* renew a token this long before it lapses (at most 1/3 of its life) */
#define TOK_LEN_MAX 4096             /* longest token accepted from DOKU */
#define TOK_B2B_TTL_DEFAULT_S 900    /* when expiresIn is missing or unreadable */
#define TOK_TTL_MIN_S 2                 /* (the sandbox shortens lifetimes to seconds) */
#define TOK_TTL_MAX_S 86400
#define TOK_REF_MAX 64               /* customer_ref: [A-Za-z0-9._-]{1,64} */
#define TOK_FETCH_TIMEOUT_MS 15000u  /* deadline of a token request */
#define TOK_MSG_MAX 160
#define TOK_ARENA_MAX (2u * 1024u * 1024u)
/* A fleet (a shared store, docs/fleet.md): DOKU's B2B lifetime slides ttl
 * after the last use; the fleet records its uses, and a token is used while
 * it has TOK_FLEET_SPARE_MS to spare, replaced only when it lapsed for sure
 * (its recorded idle time past ttl by more than TOK_FLEET_LAPSE_SLACK_MS:
 * the records' lag plus DOKU's one-second clock). */
#define TOK_FLEET_SPARE_MS 1000u
#define TOK_FLEET_LAPSE_SLACK_MS 2000u
#define TOK_FLEET_RECORD_MS 1000u    /* a daemon records its use at most this often */
#define TOK_FLEET_LEASE_MS 20000u    /* the fetching daemon's lease (> TOK_FETCH_TIMEOUT_MS) */
#define TOK_FLEET_POLL_MIN_MS 25u    /* waiting for another daemon's token: first poll */
#define TOK_FLEET_POLL_MAX_MS 500u

typedef struct tokens tokens;
typedef struct tok_profile tok_profile;
typedef struct tok_wait tok_wait;

/* The failures of token requests: a named subset of enum doku_err (doku_err.h). */
enum tok_err {
	/* the token endpoint could not be reached, or failed (5xx) */
	TOK_ERR_UNAVAILABLE = DOKU_ERR_UNAVAILABLE,
	/* DOKU refused the token request (4xx): see response_code */
	TOK_ERR_REFUSED = DOKU_ERR_REFUSED,
	TOK_ERR_NO_SESSION = DOKU_ERR_NO_SESSION,   /* no such customer session, or it expired */
	TOK_ERR_LIMIT = DOKU_ERR_LIMIT,             /* max_customer_sessions reached */
	TOK_ERR_INTERNAL = DOKU_ERR_INTERNAL,
	TOK_ERR_TIMEOUT = DOKU_ERR_TIMEOUT,         /* the token request timed out */
};

/* What a token request ended with (no token in it). */
typedef struct tok_result {
	int status;                        /* 0 or enum tok_err */
	unsigned http;                     /* HTTP status of the token endpoint; 0 if none */
	char response_code[16];
	char response_message[TOK_MSG_MAX];
	/* OpenCustomerSession: the new session's lifetimes */
	char token_type[16];
	char access_expiry[32];
	char refresh_expiry[32];
} tok_result;

typedef void (*tok_fn)(tok_wait *w, const tok_result *r);

struct tok_wait {
	struct list_node node; /* linked while queued */
	tok_fn fn;
	void *data;            /* the caller's */
};

/* 0 or -ENOMEM; *out is the caller's (tokens_free). b2b, b2b2c: the token
 * endpoints (client_credentials; authorization_code and refresh_token). */
int tokens_new(uv_loop_t *loop, upstream *up, const snap_endpoint *b2b,
	       const snap_endpoint *b2b2c, tokens **out);

/* Cancel token requests in flight (their waits are dropped, not called) and
 * wipe every token. NULL is a no-op. */
void tokens_free(tokens *t);

/* Bring the per-profile state in line with cfg: create state for new
 * profiles; forget the tokens and sessions of a profile whose client_id or
 * base_url changed or that is gone. 0 or -ENOMEM. */
int tokens_reconfigure(tokens *t, const config *cfg);

/* The state of profile p (NULL if tokens_reconfigure never saw it). */
tok_profile *tokens_profile(tokens *t, const profile *p);

/* Withdraw a queued wait (no-op when not queued). */
void tokens_cancel(tok_wait *w);

/* ---- B2B token ---- */

/* 0: tokens_b2b_value is valid now; 1: w queued; <0: enum tok_err (w not
 * queued). cfg/p: the caller's configuration and profile (a request made
 * holds its own reference). */
int tokens_b2b(tok_profile *tp, config *cfg, const profile *p, tok_wait *w);

/* The current B2B token and its generation; NULL when none is held. */
const char *tokens_b2b_value(const tok_profile *tp, unsigned *gen);

/* DOKU said the token of generation gen is invalid: drop it (if it is still
 * the current one), so that the next tokens_b2b fetches one. */
void tokens_b2b_invalidate(tok_profile *tp, unsigned gen);

/* ---- customer sessions ---- */

/* Open (or replace) session ref with DOKU's B2B2C token for auth_code.
 * 1 (w queued; its result carries the lifetimes) or <0. */
int tokens_session_open(tok_profile *tp, config *cfg, const profile *p, const char *ref,
			const char *auth_code, tok_wait *w);

/* As tokens_b2b, for session ref's access token (refreshed when near expiry).
 * TOK_ERR_NO_SESSION when there is no such session or it expired. */
int tokens_session(tok_profile *tp, config *cfg, const profile *p, const char *ref,
		   tok_wait *w);

const char *tokens_session_value(const tok_profile *tp, const char *ref, unsigned *gen);

/* DOKU said session ref's token (generation gen) is invalid: the next
 * tokens_session refreshes it. */
void tokens_session_invalidate(tok_profile *tp, const char *ref, unsigned gen);

/* Forget session ref; false when there was none. */
bool tokens_session_close(tok_profile *tp, const char *ref);

/* Close session ref everywhere: 1 (it was open) or 2 (there was none) when
 * done at once (one daemon: the store forgets it later); 0 when done(status,
 * existed) follows once the fleet's database forgot it (a fleet: no daemon
 * serves it after that); <0: a tok_err (done not called). */
int tokens_session_end(tok_profile *tp, const char *ref,
		       void (*done)(int status, bool existed, void *data), void *data);

/* Persist customer sessions in st (NULL: in memory only): from now on a
 * session opened or refreshed is put (sealed) in the store, one closed,
 * refused or swept is deleted from it. st is borrowed; call again with NULL
 * before closing it. */
void tokens_set_store(tokens *t, store *st);

/* B2B token leases this daemon holds now (a fleet's; for metrics). */
unsigned tokens_leases_held(const tokens *t);

/* Read the customer sessions of st back (running the loop until they are
 * in: before anything is served), then persist sessions in st (tokens_set_store). */
void tokens_restore(tokens *t, store *st, const config *cfg);

/* A session read back from the store at start-up (tokens copied into secret
 * memory). TOK_ERR_NO_SESSION when it has lapsed (then it is deleted from
 * the store), TOK_ERR_LIMIT, TOK_ERR_INTERNAL; 0. */
int tokens_session_restore(tok_profile *tp, const store_session *s);

/* For Health: never a token, only facts about them. */
typedef struct tok_health {
	bool b2b_valid;
	time_t b2b_valid_until; /* 0 when none is held */
	unsigned sessions;
	uint64_t fetches;       /* B2B token requests made */
} tok_health;

void tokens_health(const tok_profile *tp, tok_health *h);

/* Whether ref is a well-formed customer_ref. */
bool tokens_ref_valid(const char *ref);

#endif
