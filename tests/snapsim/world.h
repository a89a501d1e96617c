/* The simulated DOKU Wallet: tokens, accounts, OTPs, bindings, customer
 * sessions, balances and transactions, behind one mutex.
 *
 * The request path (checks.c) takes the lock once per request and, while
 * holding it, calls the world_* functions marked "lock held" in DOKU's order
 * of checks; the control API calls the world_ctl_* functions, which take the
 * lock themselves. Every random value (tokens, ids, OTPs) comes from one
 * generator seeded at start (and again at reset), so a given sequence of
 * requests gives the same values for the same seed.
 *
 * The rules of the world are described in docs/snapsim.md. */
#ifndef DOKU_SNAPSIM_WORLD_H
#define DOKU_SNAPSIM_WORLD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "config.h"
#include "sim.h"
#include "snap_arena.h"
#include "snap_endpoint.h"

typedef struct world world;

typedef struct world_refusal {
	int http;        /* 400, 403, 404, 409, 429 ... */
	int case_code;   /* the last two digits of responseCode */
	char message[SIM_MESSAGE_MAX];
} world_refusal;

/* One SNAP operation handed to the world. */
typedef struct world_call {
	const snap_endpoint *ep;
	sim_partner *partner;
	int session;                 /* customer session (world_customer_check), -1: none */
	const ProtobufCMessage *req; /* of type ep->request */
	const char *external_id;     /* X-EXTERNAL-ID, "" for token endpoints */
	snap_arena *arena;           /* every byte of the answer comes from here */
	ProtobufCMessage *resp;      /* out: of type ep->response; responseCode and
				        responseMessage are left to the caller */
	world_refusal refusal;       /* out, with SIM_ERR_REFUSED */
} world_call;

/* A new world over the partners of config (which must outlive it). The
 * world's settings start as config->settings. 0, SIM_ERR_NOMEM. */
int world_new(sim_config *config, uint64_t seed, world **out);
void world_free(world *w);

/* The simulator's own https base URL, used in nextAction / webRedirectUrl. */
void world_set_base_url(world *w, const char *url);

void world_lock(world *w);
void world_unlock(world *w);

/* Lock-free reads: the allowed X-TIMESTAMP skew, and the world's clock (the
 * real clock plus the offset set through the control API). */
long world_clock_skew(world *w);
time_t world_now(world *w);

/* ---- request path: lock held --------------------------------------------- */

/* Whether token[0..len) is the partner's newest B2B token and has not
 * expired; a valid token's expiry slides. */
bool world_b2b_check(world *w, sim_partner *p, const char *token, size_t len);

/* The customer session whose access token is token[0..len), for this
 * partner, not expired, revoked or unbound: its index, or -1. Slides it. */
int world_customer_check(world *w, sim_partner *p, const char *token, size_t len);

/* Record an X-EXTERNAL-ID for today (Jakarta's day of the world clock).
 * 0, SIM_ERR_EXISTS (seen today), SIM_ERR_FULL. */
int world_extid_claim(world *w, sim_partner *p, const char *id, size_t len);

/* Whether the request's idempotency key (partnerReferenceNo, or
 * partnerRefundNo for refunds) already names an operation of this endpoint
 * of this partner. The JSON name of the key goes to *field. */
bool world_duplicate(world *w, sim_partner *p, const snap_endpoint *ep,
		     const ProtobufCMessage *req, const char **field);

/* Carry out the call: 0 with c->resp, SIM_ERR_REFUSED with c->refusal,
 * SIM_ERR_FULL or SIM_ERR_NOMEM. */
int world_run(world *w, world_call *c);

/* Fault actions (lock held): revoke the partner's B2B token; expire the
 * access token, or revoke the whole session, of a customer access token. */
void world_revoke_b2b(world *w, sim_partner *p);
void world_fault_customer(world *w, sim_partner *p, const char *token, size_t len, bool revoke);

/* ---- control API: each takes the lock ------------------------------------ */
/* Functions returning int give 0 or a negative code with err[errlen] set;
 * json_t results are new references for the caller. */

json_t *world_ctl_settings(world *w);
int world_ctl_set_settings(world *w, const json_t *changes, char *err, size_t errlen);
json_t *world_ctl_clock(world *w);
int world_ctl_advance_clock(world *w, long seconds, char *err, size_t errlen);

/* OTPs sent and not yet used; phone may be NULL. */
json_t *world_ctl_otps(world *w, const char *phone);

/* The customer creates the PIN of a verified account, named by phone
 * number or by the create-PIN token of VerifyOtp. */
int world_ctl_set_pin(world *w, const char *phone, const char *token, const char *pin,
		      json_t **out, char *err, size_t errlen);

/* The customer approves (with its PIN) or rejects a binding. phone names
 * the account when the binding did not. */
int world_ctl_decide_binding(world *w, const char *link_id, const char *phone,
			     const char *pin, bool approve, json_t **out, char *err,
			     size_t errlen);

/* The customer approves (with its PIN) or rejects a pending purchase, named
 * by DOKU's referenceNo or by partnerReferenceNo (and client id when several
 * partners use the same one). */
int world_ctl_decide_purchase(world *w, const char *client_id, const char *partner_ref,
			      const char *reference_no, const char *pin, bool approve,
			      json_t **out, char *err, size_t errlen);

json_t *world_ctl_accounts(world *w);
json_t *world_ctl_bindings(world *w);
json_t *world_ctl_transactions(world *w, const char *type, const char *status);

/* action "revoke" or "expire"; kind "b2b", "customer" or "all"; client_id
 * NULL for every partner. *count gets the number of tokens touched. */
int world_ctl_tokens(world *w, const char *action, const char *kind, const char *client_id,
		     long *count, char *err, size_t errlen);

/* Token counters as a JSON object. */
json_t *world_ctl_counters(world *w);

/* Forget everything: state, tokens, external ids; settings back to the
 * config's, clock offset 0, generator reseeded. */
void world_ctl_reset(world *w);

#endif
