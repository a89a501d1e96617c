/* The daemon's durable state: customer sessions, with their tokens sealed
 * (sealed.h), and the journal of money-moving calls. docs/state.md. In one
 * SQLite database <state_dir>/state.db (WAL, synchronous=FULL) for one
 * daemon, or in PostgreSQL shared by a fleet of daemons (docs/fleet.md),
 * which also holds the fleet's B2B tokens and its leases and claims.
 * This API and its queue, worker and sealing are store.c's; the database is
 * its backend's (store_backend.h, internal): store_sqlite.c, store_postgres.c.
 *
 * Threads. store_open starts one worker thread that alone runs statements,
 * in the order the requests were made; the requests queued at one time share
 * one transaction (group commit) with a savepoint each, so one request's
 * failure does not undo the others. Completions are handed back to the loop
 * with a uv_async_t: the loop never waits for the disk. Every store_*
 * function but store_verify/store_export_journal is called on the loop's
 * thread (store_body_digest, store_state_name and store_strerror on any).
 *
 * Requests. A request function copies its inputs (the caller's memory may go
 * at once) and returns 0, or a negative STORE_ERR_* when the request is
 * refused at once; then its callback never runs. After a 0 the callback runs
 * exactly once, later, on the loop's thread, also while the store closes. A
 * write's callback runs only after its transaction is committed to disk
 * (fsync'd: synchronous=FULL). What a store_result points to lives only
 * during the callback; tokens in it are wiped right after.
 *
 * The journal. One row per money-moving request, keyed by (profile, method,
 * partner_reference_no) -- the request's own idempotency key -- and also
 * unique by (profile, external_id). States:
 *
 *   store_journal_intent   -> PENDING   recorded before the request is sent
 *   store_journal_outcome     PENDING -> DONE | NOT_DONE | UNKNOWN
 *   store_journal_reconciled  UNKNOWN -> DONE | NOT_DONE | UNKNOWN (attempts + 1)
 *   store_open                PENDING -> UNKNOWN (left by a daemon that stopped)
 *   store_journal_prune       DONE | NOT_DONE -> deleted (retention)
 *
 * DONE and NOT_DONE are final.
 *
 * A shared store (POSTGRES): the keys are unique fleet-wide, so a partner
 * reference journaled through any daemon is EXISTS through every other. An
 * intent records its holder; each daemon's worker beats (STORE_BEAT_MS) in
 * the database, and the PENDING rows of a daemon whose beat lapsed
 * (STORE_DEAD_MS) become UNKNOWN (at open and on every beat: "store_open"
 * above, for a fleet). store_journal_due claims the rows it returns for
 * STORE_CLAIM_MS (FOR UPDATE SKIP LOCKED: each row by one daemon at a time),
 * skipping rows another live daemon claimed: the rows due by this daemon's
 * clock (next_attempt_ms <= now); the later ones it returns unclaimed, for
 * scheduling. store_journal_reconciled settles only a row this daemon
 * claimed or one nobody holds a live claim on (else STATE) and drops the
 * claim. store_journal_reissue makes this daemon the row's holder. A store
 * closed in order makes its own PENDING rows UNKNOWN at once (they can no
 * longer get an outcome) and leaves the fleet. */
#ifndef DOKU_STATE_STORE_H
#define DOKU_STATE_STORE_H

/* STORE_BEAT_MS, STORE_DEAD_MS, STORE_CLAIM_MS: store_types.h */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "sealed.h"
/* The limits (STORE_*_MAX), the error codes (enum store_err), the states, rows,
 * sessions and results are in store_types.h, shared with the backends. */
#include "store_types.h"

typedef struct store store;

typedef void (*store_closed_cb)(void *data);

/* Open (creating it and state_dir, mode 0700, when missing) the database of
 * state_dir, synchronously: meant for start-up, before the loop serves.
 * Refuses, with the reason in err: a directory locked by another process
 * (STORE_ERR_LOCKED), an unreadable or read-only file (IO), a file that fails
 * PRAGMA integrity_check (CORRUPT), a foreign or newer schema (VERSION), and
 * a key other than the one it was sealed with (KEY). key may be NULL: then
 * sessions are refused (NO_KEY); else it is borrowed and must outlive the
 * store. *out is the caller's: store_close. */
int store_open(uv_loop_t *loop, const char *state_dir, sealed_key *key, store **out,
	       char err[STORE_ERR_MAX]);

/* Where the state lives (store_where, enum store_kind): store_types.h. */

/* store_open for either kind. POSTGRES: connects (the worker keeps the
 * connection, and reconnects with backoff when it is lost: requests made
 * meanwhile fail fast with IO); creates or migrates the schema under an
 * advisory lock (N daemons starting at once migrate once); refuses another
 * schema version (VERSION) or another state key (KEY), as a bad SQLite file
 * is refused. No state directory lock: the daemons of a fleet share it. */
int store_open_at(uv_loop_t *loop, const store_where *w, sealed_key *key, store **out,
		  char err[STORE_ERR_MAX]);

/* A fleet-unique holder name: "<host>:<pid>:<16 hex random>" into out. */
void store_holder_make(char out[STORE_HOLDER_MAX + 1]);

/* true: the store is shared by a fleet (POSTGRES); then the fleet functions
 * below work, and sessions and the B2B token are the fleet's. */
bool store_shared(const store *st);

/* What the store did, for metrics (read on the loop's thread at any time). */
typedef struct store_stats {
	bool connected;             /* POSTGRES: the connection is up (SQLITE: always) */
	uint64_t round_trips;       /* statements sent to the database */
	uint64_t errors;            /* requests failed by the database (not by a rule) */
	uint64_t reconnects;        /* connections made after a loss */
	uint64_t rtt_us_sum;        /* the round trips' time, summed */
	uint64_t rtt_us_max;
	uint64_t rows_claimed;      /* journal rows claimed by store_journal_due (POSTGRES) */
	uint64_t orphans_adopted;   /* PENDING rows of dead daemons made UNKNOWN */
} store_stats;

void store_get_stats(const store *st, store_stats *out);

/* Refuse new requests, finish the queued ones (their callbacks run), stop
 * the worker, close the database, then call closed (may be NULL) on the loop
 * and free the store. */
void store_close(store *st, store_closed_cb closed, void *data);

/* ---- customer sessions ---- */

/* Store (or replace) a session; the tokens are sealed with AD profile NUL
 * customer_ref NUL "access" / "refresh". res.gen: its version now (a shared
 * store: a new one from a fleet-wide sequence, and any lease dropped; 0 on
 * SQLite). */
int store_session_put(store *st, const store_session *s, store_cb cb, void *data);

/* res.sessions[0]; NOT_FOUND; SEALED (res.bad[0] names it) when it does not open. */
int store_session_get(store *st, const char *profile, const char *customer_ref, store_cb cb,
		      void *data);

/* 0, or NOT_FOUND when there was none. */
int store_session_delete(store *st, const char *profile, const char *customer_ref, store_cb cb,
			 void *data);

/* Up to STORE_SESSION_PAGE sessions in (profile, customer_ref) order after
 * after (NULL: from the start). Rows that do not open are listed in res.bad,
 * never in res.sessions; res.next is the after of the next page. */
int store_session_list(store *st, const store_session_key *after, store_cb cb, void *data);

/* ---- the journal ---- */

typedef struct store_intent {
	const char *method;                /* required: the RPC name */
	const char *profile;               /* required */
	const char *customer_ref;          /* may be NULL */
	const char *partner_reference_no;  /* required: the idempotency key */
	const char *original_reference_no; /* may be NULL */
	const char *external_id;           /* required */
	const char *amount_value;          /* may be NULL */
	const char *amount_currency;       /* may be NULL */
	const char *body_sha256;           /* required: 64 lowercase hex digits */
	const char *request_time;          /* the X-TIMESTAMP; may be NULL */
	int64_t created_ms;                /* 0: now */
	/* store_journal_reissue from PENDING only: DOKU's refusal of the attempt
	 * replaced (a token refused: 401), kept with it as NOT_DONE. 0: none */
	unsigned refused_http;
	const char *refused_response_code; /* may be NULL */
} store_intent;

/* Record an intent (PENDING) before the request is sent. res.id is the new
 * row. When (profile, method, partner_reference_no) is journaled already,
 * nothing is written and the result is EXISTS with that row in res.rows[0]:
 * answer with it instead of sending (compare body_sha256 first).
 * DUPLICATE: the external id is journaled already (pick another). */
int store_journal_intent(store *st, const store_intent *in, store_cb cb, void *data);

typedef struct store_outcome {
	enum store_state state;       /* DONE, NOT_DONE or UNKNOWN */
	unsigned http_status;         /* 0: no answer */
	const char *response_code;    /* may be NULL */
	const char *response_message; /* may be NULL; truncated to STORE_MESSAGE_MAX */
	const void *response;         /* the serialized response message; may be NULL */
	size_t response_len;          /* at most STORE_RESPONSE_MAX (else TOO_BIG) */
	int64_t next_attempt_ms;      /* UNKNOWN: when reconciliation asks first */
	const char *detail;           /* may be NULL; truncated to STORE_DETAIL_MAX */
} store_outcome;

/* The outcome of row id's request: PENDING -> o->state. NOT_FOUND, or STATE
 * when the row is not PENDING. */
int store_journal_outcome(store *st, int64_t id, const store_outcome *o, store_cb cb,
			  void *data);

/* What reconciliation learnt about row id: UNKNOWN -> state, one more
 * attempt counted. next_attempt_ms matters when state is UNKNOWN. NOT_FOUND,
 * or STATE when the row is not UNKNOWN. */
int store_journal_reconciled(store *st, int64_t id, enum store_state state,
			     int64_t next_attempt_ms, const char *detail, store_cb cb, void *data);

/* Send row id's request again with a new X-EXTERNAL-ID. The row must be in
 * state from: PENDING (the daemon's one retry after DOKU refused a token: the
 * refused request did not take effect) or NOT_DONE (a request that certainly
 * did not happen, asked again by its caller with the same partner reference).
 * Its attempt so far (external id, request time, digest, state, HTTP status,
 * responseCode) is kept in the row's earlier attempts (store_export_journal's
 * "earlier"; from PENDING with in->refused_http set, it is kept as NOT_DONE
 * with that answer); the row takes in's external_id, request_time, body_sha256
 * and amount, and becomes PENDING (outcome fields cleared, detail set). Only
 * those members of in are read. NOT_FOUND; STATE when the row is not in
 * state from; DUPLICATE when the external id is journaled already. */
int store_journal_reissue(store *st, int64_t id, enum store_state from, const store_intent *in,
			  const char *detail, store_cb cb, void *data);

/* Which row store_journal_get finds: by (profile, method, partner_reference_no)
 * when partner_reference_no is set (method NULL: the oldest row of any method),
 * else by (profile, external_id). */
typedef struct store_key {
	const char *profile;              /* required */
	const char *method;
	const char *partner_reference_no;
	const char *external_id;
} store_key;

/* res.rows[0] (with its response), or NOT_FOUND. */
int store_journal_get(store *st, const store_key *k, store_cb cb, void *data);

typedef struct store_filter {
	const char *profile;       /* NULL: any */
	const char *customer_ref;  /* NULL: any */
	enum store_state state;    /* STORE_STATE_ANY: any */
	int64_t from_ms, to_ms;    /* created_ms in [from_ms, to_ms); 0: unbounded */
	int64_t before_id;         /* rows with id < before_id; 0: from the newest */
	unsigned limit;            /* 0: STORE_LIST_DEFAULT; at most STORE_LIST_MAX */
} store_filter;

/* Matching rows, newest first, without their responses. */
int store_journal_list(store *st, const store_filter *f, store_cb cb, void *data);

/* Up to limit (at most STORE_LIST_MAX) UNKNOWN rows, soonest next_attempt_ms
 * first (due or not: the caller schedules), without their responses. */
int store_journal_due(store *st, unsigned limit, store_cb cb, void *data);

/* Retention: delete up to max_rows (1 .. STORE_PRUNE_MAX) settled rows (DONE,
 * NOT_DONE) last updated before before_ms (unix ms, > 0), oldest first, with
 * their earlier attempts, in the request's transaction; PENDING and UNKNOWN
 * rows are never deleted, however old. res.n_pruned is the number of journal
 * rows deleted; fewer than max_rows: no such row is left. A large backlog is
 * deleted by calling again from the callback, one bounded batch at a time, so
 * that the requests queued meanwhile (intents, outcomes) are written in
 * between. A deleted row is forgotten: store_journal_get and _list no longer
 * find it, and an intent with its partner reference is a new row (not
 * EXISTS). Archive first with store_export_journal. */
int store_journal_prune(store *st, int64_t before_ms, unsigned max_rows, store_cb cb,
			void *data);

/* ---- the fleet (a shared store only; SQLite refuses with INVALID) ----
 *
 * The B2B token of each profile, sealed in the database (AD "b2b" NUL
 * profile), one row per profile naming its client_id: a row of another
 * client_id reads as none. Times are the database's clock. A lease (holder,
 * expiry) lets one daemon fetch while the others wait for what it publishes.
 * Every result carries the row as it is after the request (res.b2b). */

/* The row now. */
int store_b2b_get(store *st, const char *profile, const char *client_id, store_cb cb,
		  void *data);

/* Compare, then lease: take the lease for lease_ms (1 .. STORE_LEASE_MAX_MS)
 * when no other daemon holds a live one and the row's gen is still
 * expect_gen (the token found lapsed or refused; 0: none was held).
 * res.b2b->leased tells; when not, res.b2b is the newer token or the other
 * holder's lease. */
int store_b2b_lease(store *st, const char *profile, const char *client_id, int64_t expect_gen,
		    unsigned lease_ms, store_cb cb, void *data);

/* The lease's holder publishes the token it fetched: gen + 1, last use now,
 * lease released. STATE when this daemon does not hold the lease (it
 * expired and another took it): the token is not stored. */
int store_b2b_publish(store *st, const char *profile, const char *client_id, const char *token,
		      size_t token_len, int64_t ttl_s, store_cb cb, void *data);

/* The fetch failed: release the lease if this daemon holds it. */
int store_b2b_release(store *st, const char *profile, store_cb cb, void *data);

/* The token of generation gen was used now (DOKU slides its lifetime):
 * last use = max(last use, now) when gen is still current. cb may be NULL. */
int store_b2b_used(store *st, const char *profile, int64_t gen, store_cb cb, void *data);

/* Compare, then lease a customer session for its refresh: taken when no
 * other daemon holds a live lease and the session's gen is still
 * expect_gen. res.sessions[0] is the session as it is now, with .leased;
 * NOT_FOUND when it is gone. */
int store_session_lease(store *st, const char *profile, const char *customer_ref,
			int64_t expect_gen, unsigned lease_ms, store_cb cb, void *data);

/* The lease's holder stores the refreshed tokens: a new gen (res.gen), lease
 * released. STATE when this daemon does not hold the lease (an expired lease
 * nobody took since still counts as held); NOT_FOUND when the session was
 * closed meanwhile. (store_session_put, opening a session,
 * replaces it whoever holds a lease.) */
int store_session_refreshed(store *st, const store_session *s, store_cb cb, void *data);

/* ---- helpers ---- */

/* Lowercase hex SHA-256 of body[0..len) into hex (NUL-terminated). 0 or STORE_ERR_IO. */
int store_body_digest(const void *body, size_t len, char hex[STORE_SHA256_HEX + 1]);

/* "PENDING", "DONE", "NOT_DONE", "UNKNOWN"; "ANY" for 0. */
const char *store_state_name(enum store_state s);

/* A static text for an error code: the store's own for its members,
 * doku_strerror's for any other value. */
const char *store_strerror(int err);

/* ---- the command line (synchronous; no loop, no key) ---- */

/* Check the database at path (a state directory or a database file) read-only:
 * integrity_check, schema version, row counts by state. Writes a report to
 * report; 0 when the database is sound, else the first error. */
int store_verify(const char *path, FILE *report);

/* Write every journal row to out as one JSON object per line, oldest first,
 * read in one transaction. 0 or an error (also when out fails); what went
 * wrong is also described on stderr. */
int store_export_journal(const char *path, FILE *out);

/* The same for either kind (a SQLITE where uses state_dir as path). */
int store_verify_at(const store_where *w, FILE *report);
int store_export_journal_at(const store_where *w, FILE *out);

/* The migration: copy the SQLite state of sqlite_dir (sessions, sealed as
 * they are, and the journal with its earlier attempts) into the POSTGRES
 * store w, which must be empty of both or hold exactly those rows already
 * (a second run copies nothing and says so); key must open both key checks.
 * Then compare the two row by row. In one transaction: all or nothing.
 * Writes what it did to report. */
int store_import_sqlite(const store_where *w, const char *sqlite_dir, sealed_key *key,
			FILE *report);

#endif
