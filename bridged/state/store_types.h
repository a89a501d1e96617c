/* The store's values, shared by store.h (the public API: include that one)
 * and store_backend.h (the interface a backend implements): limits, error
 * codes, journal states, rows, sessions, results, the completion callback.
 * Their meaning is documented in store.h. */
#ifndef DOKU_STATE_STORE_TYPES_H
#define DOKU_STATE_STORE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "doku_err.h"

#define STORE_DB_NAME "state.db"
#define STORE_LOCK_NAME "state.lock"
#define STORE_SCHEMA_VERSION 1
#define STORE_PG_SCHEMA_VERSION 1 /* the PostgreSQL schema's own version */

#define STORE_PROFILE_MAX 64      /* bytes of a profile name */
#define STORE_REF_MAX 64          /* bytes of a customer_ref */
#define STORE_METHOD_MAX 32       /* bytes of an RPC name */
#define STORE_PARTNER_REF_MAX 64  /* bytes of a partner reference */
#define STORE_EXTERNAL_ID_MAX 36  /* digits of an X-EXTERNAL-ID */
#define STORE_AMOUNT_MAX 24       /* bytes of an amount value ("10000.00") */
#define STORE_CURRENCY_MAX 3
#define STORE_SHA256_HEX 64
#define STORE_TIME_MAX 40         /* bytes of request_time (ISO-8601) */
#define STORE_CODE_MAX 16         /* bytes of a responseCode */
#define STORE_MESSAGE_MAX 256     /* responseMessage, truncated to this */
#define STORE_DETAIL_MAX 256      /* detail, truncated to this */
#define STORE_RESPONSE_MAX (64u * 1024u) /* serialized response message */
#define STORE_TOKEN_MAX 4096      /* bytes of one token */
#define STORE_LIST_MAX 100        /* rows per list / due page */
#define STORE_LIST_DEFAULT 50
#define STORE_SESSION_PAGE 256    /* sessions per store_session_list page */
#define STORE_PRUNE_MAX 10000u    /* journal rows one store_journal_prune deletes at most */
#define STORE_BATCH_MAX 256       /* requests per transaction */
#define STORE_QUEUE_MAX 16384     /* requests queued; more are refused (BUSY) */
#define STORE_ERR_MAX 512         /* size of an error text buffer */
#define STORE_HOLDER_MAX 96       /* bytes of a daemon's name in a fleet (leases, claims) */
#define STORE_CLIENT_ID_MAX 128   /* bytes of a profile's client_id */
#define STORE_LEASE_MAX_MS 600000u /* the longest lease or claim */

/* The fleet's times (store.h, "a shared store") */
#define STORE_BEAT_MS 2000u       /* a daemon's beat in the database */
#define STORE_DEAD_MS 10000u      /* a daemon not beating for this long is dead */
#define STORE_FORGET_MS 86400000u /* a dead daemon's row in the database goes after this */
#define STORE_CLAIM_MS 60000u     /* a claim of a journal row for reconciliation */

/* The store's failures: a named subset of enum doku_err (doku_err.h). */
enum store_err {
	STORE_ERR_NOMEM = DOKU_ERR_NOMEM,
	STORE_ERR_INVALID = DOKU_ERR_INVALID,     /* bad argument (a field missing or over its limit) */
	STORE_ERR_IO = DOKU_ERR_IO,               /* the database could not be opened, read or written */
	STORE_ERR_CORRUPT = DOKU_ERR_CORRUPT,     /* the database (or a row of it) is malformed */
	STORE_ERR_VERSION = DOKU_ERR_VERSION,     /* not a doku-bridge database, or a newer schema */
	STORE_ERR_KEY = DOKU_ERR_WRONG_KEY,       /* the sealing key is not the database's */
	STORE_ERR_LOCKED = DOKU_ERR_LOCKED,       /* another process holds the state directory */
	STORE_ERR_NOT_FOUND = DOKU_ERR_NOT_FOUND,
	STORE_ERR_EXISTS = DOKU_ERR_EXISTS,       /* intent: the key is journaled; res holds that row */
	STORE_ERR_DUPLICATE = DOKU_ERR_DUPLICATE, /* intent: the X-EXTERNAL-ID is journaled already */
	STORE_ERR_STATE = DOKU_ERR_STATE,         /* the row is not in a state that allows the change */
	STORE_ERR_SEALED = DOKU_ERR_SEALED,       /* a sealed token did not open: wrong key, tampered row */
	STORE_ERR_NO_KEY = DOKU_ERR_NO_KEY,       /* a session request to a store opened without a key */
	STORE_ERR_CLOSED = DOKU_ERR_CLOSED,       /* the store is closing */
	STORE_ERR_BUSY = DOKU_ERR_BUSY,           /* STORE_QUEUE_MAX requests are queued */
	STORE_ERR_TOO_BIG = DOKU_ERR_TOO_BIG,     /* a response or token over its limit */
};

enum store_state {
	STORE_STATE_ANY = 0, /* list filter: any state */
	STORE_PENDING,
	STORE_DONE,
	STORE_NOT_DONE,
	STORE_UNKNOWN,
};

/* One journal row. */
typedef struct store_row {
	int64_t id;
	int64_t created_ms, updated_ms; /* unix time in milliseconds */
	char method[STORE_METHOD_MAX + 1];      /* the RPC name, "Purchase" */
	char profile[STORE_PROFILE_MAX + 1];
	char customer_ref[STORE_REF_MAX + 1];
	char partner_reference_no[STORE_PARTNER_REF_MAX + 1]; /* the request's idempotency key */
	char original_reference_no[STORE_PARTNER_REF_MAX + 1]; /* Cancel/Refund: the purchase */
	char external_id[STORE_EXTERNAL_ID_MAX + 1];
	char amount_value[STORE_AMOUNT_MAX + 1];
	char amount_currency[STORE_CURRENCY_MAX + 1];
	char body_sha256[STORE_SHA256_HEX + 1]; /* lowercase hex of the body sent */
	char request_time[STORE_TIME_MAX + 1];  /* the X-TIMESTAMP it was sent with */
	enum store_state state;
	unsigned http_status;                   /* 0: no answer */
	char response_code[STORE_CODE_MAX + 1];
	char response_message[STORE_MESSAGE_MAX + 1];
	const unsigned char *response;          /* the serialized response message; NULL in lists */
	size_t response_len;
	unsigned attempts;                      /* reconciliation attempts made */
	int64_t next_attempt_ms;                /* UNKNOWN: when to ask DOKU next */
	char detail[STORE_DETAIL_MAX + 1];      /* how the outcome became known */
} store_row;

/* A customer session. In results every pointer is the store's. */
typedef struct store_session {
	/* results only: the session's version (a shared store counts every put and
	 * refresh; 0 on SQLite) and, for store_session_lease, whether the lease
	 * was taken by this daemon */
	int64_t gen;
	bool leased;
	const char *profile;
	const char *customer_ref;
	const char *access_token;  /* NUL-terminated; at most STORE_TOKEN_MAX */
	size_t access_len;
	int64_t access_expiry;     /* unix seconds */
	const char *refresh_token; /* may be empty */
	size_t refresh_len;
	int64_t refresh_expiry;
} store_session;

/* A session's name, for rows that did not open and for paging. */
typedef struct store_session_key {
	char profile[STORE_PROFILE_MAX + 1];
	char customer_ref[STORE_REF_MAX + 1];
} store_session_key;

/* A profile's B2B token as a shared store keeps it for the fleet (store.h,
 * "the fleet"). In results every pointer is the store's. */
typedef struct store_b2b {
	const char *token;         /* NUL-terminated; NULL: none held (never published, or
				      published for another client_id) */
	size_t token_len;
	int64_t gen;               /* the token's version: +1 per publish; 0: never published */
	int64_t ttl_s;             /* its lifetime after its last use (expiresIn when issued) */
	int64_t idle_ms;           /* the database's now minus the token's last recorded use */
	bool leased;               /* store_b2b_lease: this daemon now holds the lease */
	char lease_holder[STORE_HOLDER_MAX + 1]; /* the live lease's holder; "": none */
	int64_t lease_left_ms;     /* of the live lease */
} store_b2b;

/* What a request ended with. Only the members its request names are set. */
typedef struct store_result {
	int status;                       /* 0 or enum store_err */
	int64_t id;                       /* intent: the new row's id */
	const store_row *rows;            /* get, intent's EXISTS: 1 row (with response);
					     list, due: n_rows rows (without) */
	size_t n_rows;
	int64_t next_before_id;           /* list: before_id of the next page; 0: last page */
	const store_session *sessions;    /* session get: 1; session list: n_sessions */
	size_t n_sessions;
	const store_session_key *bad;     /* session get/list: rows that did not open */
	size_t n_bad;
	const store_session_key *next;    /* session list: after of the next page; NULL: last */
	unsigned n_pruned;                /* prune: journal rows deleted */
	int64_t gen;                      /* session put, refreshed: the session's gen now */
	const store_b2b *b2b;             /* store_b2b_*: the token's row as it is now */
} store_result;

typedef void (*store_cb)(const store_result *res, void *data);

/* Where the state lives: SQLite in a directory (one daemon), or PostgreSQL
 * shared by a fleet of daemons (docs/fleet.md). */
enum store_kind { STORE_SQLITE, STORE_POSTGRES };

typedef struct store_where {
	enum store_kind kind;
	const char *state_dir;  /* SQLITE: the directory (store_open's state_dir) */
	const char *conninfo;   /* POSTGRES: a libpq connection string (no password in it) */
	const char *password;   /* POSTGRES: NULL, or the password (borrowed; read from
				   state_postgres_password_file; the caller wipes it) */
	const char *holder;     /* POSTGRES: this daemon's name in leases, claims and rows
				   it sends ([A-Za-z0-9._:-], at most STORE_HOLDER_MAX);
				   unique in the fleet (store_holder_make) */
} store_where;

#endif
