/* The interface a store backend implements; internal to the state layer
 * (store.c and the backends include it; the rest of the daemon sees store.h).
 *
 * store.c is the generic part: the public API (store.h), the validation and
 * copying of a request's inputs, the queue, the worker thread, the batching
 * of the queued requests into one transaction, the sealing and opening of
 * session tokens (sealed.h), the key check, the uv_async hand-back, close.
 * A backend keeps the rows: its database, schema, statements, the checks at
 * open, and the command line's verify and export. store_sqlite.c is the one
 * backend (SQLite, <state_dir>/state.db).
 *
 * Threads. open, key_check_get/put and adopt_orphans run on the loop's
 * thread in store_open, before the worker starts; then batch_begin, req_begin,
 * exec, req_end, batch_commit and close run on the worker thread only, one at
 * a time; verify and export_journal are called without a store (the command
 * line). A backend never sees the sealing key: it stores and returns sealed
 * bytes. */
#ifndef DOKU_STATE_STORE_BACKEND_H
#define DOKU_STATE_STORE_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sealed.h"
#include "store_types.h"

/* A sealed token longer than this is not one the store wrote: it does not open. */
#define STORE_SEALED_TOKEN_MAX (STORE_TOKEN_MAX + SEALED_OVERHEAD)

/* What a request asks; store.h's function of the same name says what it does. */
enum store_op {
	STORE_OP_SESSION_PUT, /* store_session_put */
	STORE_OP_SESSION_GET, /* store_session_get */
	STORE_OP_SESSION_DELETE,
	STORE_OP_SESSION_LIST,
	STORE_OP_INTENT,      /* store_journal_intent */
	STORE_OP_OUTCOME,
	STORE_OP_RECONCILED,
	STORE_OP_GET,         /* store_journal_get */
	STORE_OP_LIST,
	STORE_OP_DUE,
	STORE_OP_REISSUE,
	STORE_OP_PRUNE,
	STORE_OP_B2B_GET,     /* store_b2b_get (shared backends only, as all below) */
	STORE_OP_B2B_LEASE,
	STORE_OP_B2B_PUBLISH,
	STORE_OP_B2B_RELEASE,
	STORE_OP_B2B_USED,
	STORE_OP_SESSION_LEASE,
	STORE_OP_SESSION_REFRESHED,
};

/* The B2B row as a backend returns it: store_b2b with the token sealed
 * (store.c's bytes, AD "b2b" NUL profile; malloc'd by the backend). */
typedef struct store_sealed_b2b {
	unsigned char *token;
	size_t token_len;
	int64_t gen, ttl_s, idle_ms;
	bool leased;
	char lease_holder[STORE_HOLDER_MAX + 1];
	int64_t lease_left_ms;
} store_sealed_b2b;

/* A session as a backend keeps it: its name, the expiry times, and its two
 * tokens sealed by store.c (sealed.h; AD profile NUL customer_ref NUL
 * "access" / "refresh"). In results, access / refresh are malloc'd by the
 * backend; NULL (len 0) when the stored value is empty or longer than
 * STORE_SEALED_TOKEN_MAX (then it does not open: STORE_ERR_SEALED). */
typedef struct store_sealed_session {
	store_session_key key;
	int64_t gen;                           /* shared backends: its version; else 0 */
	unsigned char *access, *refresh;
	size_t access_len, refresh_len;
	int64_t access_expiry, refresh_expiry; /* unix seconds */
} store_sealed_session;

/* One request, as a backend sees it.
 *
 * Ownership: store.c allocates the request (and, with it, rows[] and
 * sealed[]) on the loop's thread, copies the caller's inputs into it, and
 * frees it, with everything it points to (free(), tokens wiped first), after
 * the callback. A backend reads the inputs, writes the results, and mallocs
 * only what it hands back (row_blob; the sealed bytes of sealed[]): it never
 * frees any of it, not even on an error. Nothing in a request outlives it;
 * a backend keeps no pointer into one after exec returns. */
typedef struct store_req {
	enum store_op op;

	/* ---- the inputs: set by store.c before the request is queued ---- */
	/* journal fields: intent (all but id, times, outcome), outcome and
	   reconciled (state, http_status, response_code, response_message,
	   next_attempt_ms, detail), reissue (state: the state it must be in;
	   external_id, request_time, body_sha256, amount, detail; http_status and
	   response_code: DOKU's refusal of a PENDING attempt, 0: none), get (the
	   key: profile, method, partner_reference_no, external_id), list (the
	   filter: profile, customer_ref, state; "" or STORE_STATE_ANY: any) */
	store_row in;
	unsigned char *in_blob;     /* outcome: the response (in.response_len bytes); may be NULL */
	int64_t id;                 /* outcome, reconciled, reissue: the row */
	int64_t from_ms, to_ms;     /* list: created_ms in [from_ms, to_ms); 0: unbounded */
	int64_t before_id;          /* list: rows with id < before_id; 0: from the newest */
	int64_t before_ms;          /* prune: settled rows updated before this */
	unsigned limit;             /* list, due: rows[] holds limit; prune: rows to delete at most */
	store_session_key skey;     /* session get, delete, lease: its name; list: after it ("": from the start) */
	store_sealed_session put;   /* session put, refreshed: the session, its tokens sealed (store.c's bytes) */
	/* the fleet's: b2b_* (profile in skey.profile), session lease (skey) */
	char client_id[STORE_CLIENT_ID_MAX + 1]; /* b2b get, lease, publish */
	int64_t expect_gen;         /* b2b lease, session lease; b2b used: the token's gen */
	unsigned lease_ms;          /* b2b lease, session lease */
	int64_t ttl_s;              /* b2b publish */
	unsigned char *b2b_sealed;  /* b2b publish: the token sealed (store.c's) */
	size_t b2b_sealed_len;

	/* ---- the results: set by exec ---- */
	/* id (intent), n_rows, next_before_id (list), next (session list: &next_key
	   when another page follows), n_pruned, gen (session put, refreshed). status, sessions and bad are
	   store.c's: it sets status to exec's return and opens sealed[]. */
	store_result res;
	store_row *rows;            /* limit rows (get, intent: 1), allocated by store.c */
	unsigned char *row_blob;    /* rows[0].response (get, intent's EXISTS): malloc'd by exec */
	store_sealed_session *sealed; /* session get, lease, refreshed: 1, list: STORE_SESSION_PAGE,
					 allocated by store.c */
	size_t n_sealed;            /* the sessions exec put in sealed[], in key order */
	store_session_key next_key; /* session list: the after of the next page */
	bool sess_leased;           /* session lease: taken */
	store_sealed_b2b b2b;       /* b2b_*: the row after the request (token malloc'd by exec) */
} store_req;

/* What a store did (store.h's store_stats), counted by the worker thread and
 * read by the loop's: atomics. store.c owns them; a backend counts in them
 * (connected, round_trips, reconnects, rtt, rows_claimed, orphans_adopted;
 * store.c counts errors). */
typedef struct store_counters {
	atomic_bool connected;
	atomic_uint_least64_t round_trips, errors, reconnects, rtt_us_sum, rtt_us_max;
	atomic_uint_least64_t rows_claimed, orphans_adopted;
} store_counters;

/* Add one round trip of us microseconds to c (NULL: nothing). */
void store_counters_rtt(store_counters *c, uint64_t us);

/* The fleet's beat and death times (ms): STORE_BEAT_MS and STORE_DEAD_MS
 * unless a test set others with store_fleet_times_set, for the stores opened
 * after (0: the default). Not for production code paths. */
unsigned store_fleet_beat_ms(void);
unsigned store_fleet_dead_ms(void);
void store_fleet_times_set(unsigned beat_ms, unsigned dead_ms);

/* A backend's own state (its database connection, statements, ...). */
typedef struct store_backend store_backend;

/* A backend. Every int function returns 0 or a negative STORE_ERR_*. */
typedef struct store_backend_ops {
	const char *name; /* "sqlite" */

	/* ---- opening and closing ---- */

	bool shared; /* a fleet's: the b2b and lease ops work, journal rows have holders */

	/* Open (creating it when missing) the database w names (SQLITE: the
	 * state_dir store.c has made and locked): check it (integrity, schema
	 * version; an empty one gets the schema) and make it ready for exec.
	 * c is store.c's, for the backend to count in (the worker thread
	 * writes it, the loop reads it: atomics); it outlives the backend. On
	 * an error, err says what (naming the database) and *out is NULL. */
	int (*open)(const store_where *w, store_counters *c, store_backend **out,
		    char err[STORE_ERR_MAX]);

	/* The worker calls beat when it has been idle for the beat interval,
	 * and between batches at least that often when busy: a shared backend
	 * beats, adopts the PENDING rows of dead daemons, and reconnects a lost
	 * connection. NULL: never (SQLite). The interval is store_fleet_beat_ms(). */
	void (*beat)(store_backend *b);

	/* The database, for messages: "<state_dir>/state.db". */
	const char *(*where)(const store_backend *b);

	/* The key check: the known text store.c sealed with the first key the
	 * database saw. get: *v (malloc'd, the caller frees) and *n, or
	 * NOT_FOUND (err untouched); put: store it. Other errors set err. */
	int (*key_check_get)(store_backend *b, unsigned char **v, size_t *n,
			     char err[STORE_ERR_MAX]);
	int (*key_check_put)(store_backend *b, const unsigned char *v, size_t n,
			     char err[STORE_ERR_MAX]);

	/* The store is about to serve, after the key check: the rows a daemon
	 * that stopped left PENDING become UNKNOWN (store.h). err on an error. */
	int (*adopt_orphans)(store_backend *b, char err[STORE_ERR_MAX]);

	/* Close the database and free b (the worker's last step, or store_open
	 * giving up). b may be NULL. */
	void (*close)(store_backend *b);

	/* ---- the worker: one transaction per batch, a savepoint per request ---- */

	/* Begin the batch's transaction. On an error no request of it runs. */
	int (*batch_begin)(store_backend *b);
	/* A savepoint before one request; req_end(undo) rolls back to it when
	 * the request failed, then releases it. */
	int (*req_begin)(store_backend *b);
	void (*req_end)(store_backend *b, bool undo);
	/* Commit the batch (durably: a write's callback runs only after it); on
	 * an error it is rolled back, and every request of it failed. */
	int (*batch_commit)(store_backend *b);

	/* Run request r (between req_begin and req_end): read r's inputs, write
	 * its results; the return value is r's status, or STORE_BACKEND_AGAIN. */
	int (*exec)(store_backend *b, store_req *r);

	/* ---- the command line (synchronous; no store, no key) ---- */

	/* store_verify without its last line ("result: ..."), which store.c writes. */
	int (*verify)(const store_where *w, FILE *report);
	/* store_export_journal. */
	int (*export_journal)(const store_where *w, FILE *out);
} store_backend_ops;

/* exec's status when the database undid the request to break a deadlock
 * with another daemon's transaction (PostgreSQL: 40P01, or a serialization
 * failure, 40001), through no fault of the request: two daemons writing the
 * same keys in opposite orders, each in one batch. The rest of the batch
 * goes on; store.c runs the request once more, in the next batch (by then
 * the other transaction has ended, or waits no more for this one), and
 * fails it as STORE_ERR_IO if it is undone again. Positive: never an enum
 * doku_err, never seen by a caller. */
#define STORE_BACKEND_AGAIN 1

/* The backends. */
const store_backend_ops *store_sqlite_backend(void);   /* store_sqlite.c */
const store_backend_ops *store_postgres_backend(void); /* store_postgres.c */

/* The migration's source: every row of the SQLite database of state_dir,
 * read in one transaction, handed to the callbacks in order (sessions by
 * key; journal rows oldest first, each followed by its earlier attempts).
 * The key check's sealed bytes first. A callback's non-zero return stops
 * the walk and is returned. store_sqlite.c. */
typedef struct store_attempt_row {
	int64_t journal_id;
	char external_id[STORE_EXTERNAL_ID_MAX + 1];
	char request_time[STORE_TIME_MAX + 1];
	char body_sha256[STORE_SHA256_HEX + 1];
	enum store_state state;
	unsigned http_status;
	char response_code[STORE_CODE_MAX + 1];
	int64_t replaced_ms;
} store_attempt_row;

typedef struct store_walk {
	int (*key_check)(const unsigned char *v, size_t n, void *arg);
	int (*session)(const store_sealed_session *s, void *arg);
	int (*row)(const store_row *r, void *arg);   /* with its response */
	int (*attempt)(const store_attempt_row *a, void *arg);
	void *arg;
} store_walk;

int store_sqlite_walk(const char *state_dir, const store_walk *w, char err[STORE_ERR_MAX]);

/* The migration's target (store_postgres.c): write what store_sqlite_walk
 * reads into w's database, in one transaction, compare row by row, report. */
int store_postgres_import(const store_where *w, const char *sqlite_dir, FILE *report,
			  char err[STORE_ERR_MAX]);

#endif
