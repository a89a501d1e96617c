/* The journal of money-moving calls, and the state database it lives in
 * (docs/state.md): the sealing key (state_key_file, or <state_dir>/state.key
 * generated on first start), the store (store.h) opened with it, and the
 * records a call hands in and gets back. It never sees a call: the RPC
 * layer (rpc/call.c) hands it an attempt record and gets a verdict record,
 * hands it an outcome record and gets a status. Everything here runs on the
 * loop's thread; the disk is the store's worker's.
 *
 * A money-moving attempt:
 *   journal_attempt: the intent (or, for a new attempt of a journaled call,
 *     its new X-EXTERNAL-ID) is written and fsync'd; the verdict says SEND.
 *     A partner reference journaled already is not sent again: JOURNALED
 *     (the same request: answer from the row), CONFLICT (another request),
 *     except a NOT_DONE one, which is sent again (SEND, the same row) unless
 *     another call is sending it right now (RACING).
 *   journal_outcome: the outcome is written; the reply waits until it is. */
#ifndef DOKU_STATE_JOURNAL_H
#define DOKU_STATE_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "reconcile.h"
#include "sealed.h"
#include "store.h"

#define JOURNAL_KEY_NAME "state.key"   /* the generated key, in state_dir */
#define JOURNAL_PRUNE_BATCH 1000u      /* retention: rows deleted per transaction */
#define JOURNAL_PRUNE_EVERY_MS (60u * 60u * 1000u) /* retention: one pass an hour */
#define JOURNAL_ERR_MAX (STORE_ERR_MAX + SEALED_ERR_MAX)
#define JOURNAL_RETRY_MIN_MS 250u      /* an outcome the database refused: written again after */
#define JOURNAL_RETRY_MAX_MS 5000u     /* ... doubling up to this */

typedef struct journal journal;

/* Open the state of cfg: the key, then the database. On failure err says
 * why in one line (a corrupt or unreadable database, a wrong key) and the
 * daemon must not start. 0 (with *out, the caller's: journal_close) or -1. */
int journal_open(uv_loop_t *loop, const config *cfg, journal **out, char err[JOURNAL_ERR_MAX]);

/* Where cfg's state lives, for store_open_at and the command line's state
 * tools (store_verify_at, ...): w borrows cfg's strings (and its password)
 * and holder (may be NULL outside a daemon). */
void journal_where(const config *cfg, const char *holder, store_where *w);

/* Load cfg's sealing key (state_key_file; else <state_dir>/state.key, made
 * when missing unless must_exist). 0 or -1 with err. */
int journal_key(const config *cfg, bool must_exist, sealed_key **out, char err[JOURNAL_ERR_MAX]);

/* This daemon's name in the fleet's leases, claims and rows (store_holder_make). */
const char *journal_holder(const journal *j);

/* Close: no more retention passes; the store finishes what is queued, then
 * closes; the memory goes after that (run the loop). NULL is a no-op. */
void journal_close(journal *j);

/* The store (sessions, reads of the journal); borrowed. */
store *journal_store(const journal *j);

/* Whether money-moving calls are journaled ([bridge] journal). */
bool journal_on(const journal *j);

/* Retention: one pass now and then every JOURNAL_PRUNE_EVERY_MS, each
 * deleting the settled rows last updated more than days ago (0: none).
 * Called again (SIGHUP) it changes days for the next pass. */
void journal_retention(journal *j, unsigned days);

/* Stop starting retention batches (draining). */
void journal_quiesce(journal *j);

/* ---- the call path ---- */

/* One attempt of a money-moving request. */
typedef struct journal_attempt_rec {
	int64_t id;                   /* 0: the call's first attempt; else its row (a new
					 attempt after DOKU refused the attempt's token) */
	const char *method, *profile, *customer_ref;
	const reconcile_keys *keys;   /* copied; its strings must stay valid until the verdict */
	const char *external_id;      /* of this attempt */
	const char *request_time;     /* its X-TIMESTAMP */
	const void *body;             /* the JSON body sent */
	size_t body_len;
	unsigned refused_http;        /* id != 0: the answer that refused the token */
	const char *refused_response_code;
} journal_attempt_rec;

enum journal_verdict_kind {
	JOURNAL_SEND,       /* journaled (row id): send it */
	JOURNAL_JOURNALED,  /* the same request is journaled (row): answer from it, do not send */
	JOURNAL_CONFLICT,   /* the reference is journaled for a different request (row) */
	JOURNAL_RACING,     /* a NOT_DONE row another call is sending again right now */
	JOURNAL_FAILED,     /* it cannot be journaled (err): do not send */
};

typedef struct journal_verdict {
	enum journal_verdict_kind kind;
	int64_t id;                   /* SEND: the row */
	int err;                      /* FAILED: a STORE_ERR_* */
	const store_row *row;         /* JOURNALED, CONFLICT: valid during the callback */
} journal_verdict;

typedef void (*journal_verdict_fn)(const journal_verdict *v, void *data);

/* Journal attempt a. 0: cb follows once with the verdict; else a negative
 * STORE_ERR_* (cb is not called; the request must not be sent). */
int journal_attempt(journal *j, const journal_attempt_rec *a, journal_verdict_fn cb, void *data);

/* Record the outcome of row id. 0: done(status, data) follows once it is
 * durable (status 0) or failed; else a STORE_ERR_* (logged; done not called). */
int journal_outcome(journal *j, int64_t id, const store_outcome *o,
		    void (*done)(int status, void *data), void *data);

#endif
