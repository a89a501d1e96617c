/* The durable state: SQLite on one worker thread, completions on the loop. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "store.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_PATH_MAX 4096
#define BUSY_TIMEOUT_MS 5000
#define INTEGRITY_REPORT_MAX 20 /* problems integrity_check reports */
#define LIST_SQL_MAX 1024
#define ISO_TIME_MAX 32
#define KEY_CHECK_TEXT "doku-bridge state key check v1"
#define KEY_CHECK_AD "doku-bridge key check"
#define ORPHAN_DETAIL "pending at start-up: the daemon stopped before the outcome was known"

/* ---- schema and statements ---- */

static const char schema_sql[] =
	"CREATE TABLE schema_version (version INTEGER NOT NULL);"
	"CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE sessions ("
	" profile TEXT NOT NULL,"
	" customer_ref TEXT NOT NULL,"
	" access_token BLOB NOT NULL,"  /* sealed */
	" access_expiry INTEGER NOT NULL,"
	" refresh_token BLOB NOT NULL," /* sealed */
	" refresh_expiry INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" PRIMARY KEY (profile, customer_ref)) WITHOUT ROWID;"
	"CREATE TABLE journal ("
	" id INTEGER PRIMARY KEY,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL,"
	" method TEXT NOT NULL,"
	" profile TEXT NOT NULL,"
	" customer_ref TEXT NOT NULL,"
	" partner_reference_no TEXT NOT NULL,"
	" original_reference_no TEXT NOT NULL,"
	" external_id TEXT NOT NULL,"
	" amount_value TEXT NOT NULL,"
	" amount_currency TEXT NOT NULL,"
	" body_sha256 TEXT NOT NULL,"
	" request_time TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('PENDING', 'DONE', 'NOT_DONE', 'UNKNOWN')),"
	" http_status INTEGER NOT NULL DEFAULT 0,"
	" response_code TEXT NOT NULL DEFAULT '',"
	" response_message TEXT NOT NULL DEFAULT '',"
	" response BLOB,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt_ms INTEGER NOT NULL DEFAULT 0,"
	" detail TEXT NOT NULL DEFAULT '',"
	" UNIQUE (profile, partner_reference_no, method),"
	" UNIQUE (profile, external_id));"
	"CREATE TABLE attempts ("    /* earlier attempts of a row sent again (store_journal_reissue) */
	" journal_id INTEGER NOT NULL REFERENCES journal (id),"
	" external_id TEXT NOT NULL,"
	" request_time TEXT NOT NULL,"
	" body_sha256 TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" http_status INTEGER NOT NULL,"
	" response_code TEXT NOT NULL,"
	" replaced_ms INTEGER NOT NULL,"
	" UNIQUE (external_id, journal_id));"
	"CREATE INDEX attempts_journal ON attempts (journal_id);"
	"CREATE INDEX journal_state ON journal (state, next_attempt_ms);"
	"CREATE INDEX journal_created ON journal (created_ms);";

#define ROW_COLS                                                                            \
	"id, created_ms, updated_ms, method, profile, customer_ref, partner_reference_no, " \
	"original_reference_no, external_id, amount_value, amount_currency, body_sha256, " \
	"request_time, state, http_status, response_code, response_message, attempts, "    \
	"next_attempt_ms, detail"
#define ROW_WITH_RESPONSE "SELECT " ROW_COLS ", response FROM journal "
#define ROW_NO_RESPONSE "SELECT " ROW_COLS ", NULL FROM journal "

/* Retention: the settled rows (?1 before_ms, ?2 max_rows) one prune deletes,
 * oldest first. A row's created_ms is at most its updated_ms, so "created_ms
 * < ?1" costs nothing but lets the scan walk the old end of journal_created
 * and stop after ?2 rows, instead of reading every settled row of the state
 * index (only a row whose clock went back between its creation and its last
 * update waits until its created_ms is old enough too). Both statements run
 * in one transaction with no write between them: they pick the same rows. */
#define PRUNE_PICK                                                                    \
	"SELECT id FROM journal INDEXED BY journal_created "                          \
	"WHERE created_ms < ?1 AND updated_ms < ?1 AND state IN ('DONE', 'NOT_DONE') " \
	"ORDER BY created_ms, id LIMIT ?2"

enum col {
	C_ID, C_CREATED, C_UPDATED, C_METHOD, C_PROFILE, C_CUSTOMER, C_PARTNER_REF,
	C_ORIGINAL_REF, C_EXTERNAL_ID, C_AMOUNT_VALUE, C_AMOUNT_CURRENCY, C_BODY_SHA256,
	C_REQUEST_TIME, C_STATE, C_HTTP, C_CODE, C_MESSAGE, C_ATTEMPTS, C_NEXT_ATTEMPT,
	C_DETAIL, C_RESPONSE,
};

enum stmt {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
	S_SESSION_PUT, S_SESSION_GET, S_SESSION_DELETE, S_SESSION_LIST,
	S_INTENT, S_FIND_KEY, S_FIND_REF, S_FIND_EXTERNAL, S_OUTCOME, S_RECONCILED,
	S_STATE_OF, S_DUE, S_ATTEMPT_SAVE, S_REISSUE, S_PRUNE_ATTEMPTS, S_PRUNE_JOURNAL,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT req",
	[S_RELEASE] = "RELEASE req",
	[S_ROLLBACK_TO] = "ROLLBACK TO req",
	[S_SESSION_PUT] = "INSERT OR REPLACE INTO sessions (profile, customer_ref, access_token, "
			  "access_expiry, refresh_token, refresh_expiry, updated_ms) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[S_SESSION_GET] = "SELECT profile, customer_ref, access_token, access_expiry, "
			  "refresh_token, refresh_expiry FROM sessions "
			  "WHERE profile = ?1 AND customer_ref = ?2",
	[S_SESSION_DELETE] = "DELETE FROM sessions WHERE profile = ?1 AND customer_ref = ?2",
	[S_SESSION_LIST] = "SELECT profile, customer_ref, access_token, access_expiry, "
			   "refresh_token, refresh_expiry FROM sessions "
			   "WHERE (profile, customer_ref) > (?1, ?2) "
			   "ORDER BY profile, customer_ref LIMIT ?3",
	[S_INTENT] = "INSERT INTO journal (created_ms, updated_ms, method, profile, customer_ref, "
		     "partner_reference_no, original_reference_no, external_id, amount_value, "
		     "amount_currency, body_sha256, request_time, state) "
		     "VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'PENDING')",
	[S_FIND_KEY] = ROW_WITH_RESPONSE
	"WHERE profile = ?1 AND partner_reference_no = ?2 AND method = ?3",
	[S_FIND_REF] = ROW_WITH_RESPONSE
	"WHERE profile = ?1 AND partner_reference_no = ?2 ORDER BY id LIMIT 1",
	[S_FIND_EXTERNAL] = ROW_WITH_RESPONSE "WHERE profile = ?1 AND external_id = ?2",
	[S_OUTCOME] = "UPDATE journal SET state = ?2, updated_ms = ?3, http_status = ?4, "
		      "response_code = ?5, response_message = ?6, response = ?7, "
		      "next_attempt_ms = ?8, detail = ?9 WHERE id = ?1 AND state = 'PENDING'",
	[S_RECONCILED] = "UPDATE journal SET state = ?2, updated_ms = ?3, attempts = attempts + 1, "
			 "next_attempt_ms = ?4, detail = ?5 WHERE id = ?1 AND state = 'UNKNOWN'",
	[S_STATE_OF] = "SELECT state FROM journal WHERE id = ?1",
	[S_DUE] = ROW_NO_RESPONSE
	"WHERE state = 'UNKNOWN' ORDER BY next_attempt_ms, id LIMIT ?1",
	[S_ATTEMPT_SAVE] = "INSERT INTO attempts (journal_id, external_id, request_time, body_sha256, "
			   "state, http_status, response_code, replaced_ms) "
			   "SELECT id, external_id, request_time, body_sha256, "
			   "CASE WHEN ?4 > 0 THEN 'NOT_DONE' ELSE state END, "
			   "CASE WHEN ?4 > 0 THEN ?4 ELSE http_status END, "
			   "CASE WHEN ?4 > 0 THEN ?5 ELSE response_code END, ?3 "
			   "FROM journal WHERE id = ?1 AND state = ?2",
	[S_REISSUE] = "UPDATE journal SET external_id = ?3, request_time = ?4, body_sha256 = ?5, "
		      "amount_value = ?6, amount_currency = ?7, state = 'PENDING', updated_ms = ?8, "
		      "http_status = 0, response_code = '', response_message = '', response = NULL, "
		      "next_attempt_ms = 0, detail = ?9 WHERE id = ?1 AND state = ?2",
	[S_PRUNE_ATTEMPTS] = "DELETE FROM attempts WHERE journal_id IN (" PRUNE_PICK ")",
	[S_PRUNE_JOURNAL] = "DELETE FROM journal WHERE id IN (" PRUNE_PICK ")",
};

/* ---- the store and its requests ---- */

enum req_op {
	OP_SESSION_PUT, OP_SESSION_GET, OP_SESSION_DELETE, OP_SESSION_LIST,
	OP_INTENT, OP_OUTCOME, OP_RECONCILED, OP_GET, OP_LIST, OP_DUE, OP_REISSUE, OP_PRUNE,
};

/* One session: its name and its plaintext tokens (malloc'd, wiped on free). */
struct sess_slot {
	store_session_key key;
	char *access, *refresh;
	size_t access_len, refresh_len;
	int64_t access_expiry, refresh_expiry;
};

typedef struct store_req store_req;
struct store_req {
	store_req *next;
	enum req_op op;
	store_cb cb;
	void *data;
	/* inputs */
	store_row in;               /* journal fields; the key of get; the filter's strings */
	unsigned char *in_blob;     /* OP_OUTCOME: a copy of the response */
	int64_t id;                 /* outcome, reconciled */
	int64_t from_ms, to_ms, before_id;
	int64_t before_ms;          /* prune */
	unsigned limit;             /* rows of list / due; prune: rows to delete at most */
	struct sess_slot sess_in;   /* session put / get / delete; list: the cursor */
	/* results */
	store_result res;
	store_row *rows;            /* limit rows, allocated with the request */
	unsigned char *row_blob;    /* rows[0].response */
	struct sess_slot *slots;    /* opened sessions */
	size_t n_slots;
	store_session *sessions;    /* the public view of slots */
	store_session_key *bad;
	store_session_key next_key;
};

struct store {
	uv_loop_t *loop;
	uv_async_t async;
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cond;
	sqlite3 *db;                  /* the worker's once started */
	sqlite3_stmt *stmt[S_COUNT];
	sealed_key *key;              /* borrowed; NULL: no sessions */
	int lock_fd;
	/* guarded by mu */
	store_req *queue_head, *queue_tail;
	size_t queued;
	store_req *done_head, *done_tail;
	bool closing;
	bool worker_done;             /* the database is closed; the worker returns */
	/* the loop's thread only */
	bool joined;
	store_closed_cb closed_cb;
	void *closed_data;
};

static const char *const state_names[] = {
	[STORE_STATE_ANY] = "ANY", [STORE_PENDING] = "PENDING", [STORE_DONE] = "DONE",
	[STORE_NOT_DONE] = "NOT_DONE", [STORE_UNKNOWN] = "UNKNOWN",
};

const char *store_state_name(enum store_state s)
{
	if ((unsigned)s >= sizeof(state_names) / sizeof(state_names[0]))
		return "?";
	return state_names[s];
}

static int state_parse(const char *name, enum store_state *out)
{
	for (unsigned i = STORE_PENDING; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(name, state_names[i]) == 0) {
			*out = (enum store_state)i;
			return 0;
		}
	return STORE_ERR_CORRUPT;
}

const char *store_strerror(int err)
{
	static const char *const texts[] = {
		"ok",
		"out of memory",
		"invalid argument",
		"database I/O error",
		"database corrupt",
		"not a doku-bridge database of a known schema version",
		"the sealing key does not match the database",
		"state directory locked by another process",
		"not found",
		"already journaled",
		"X-EXTERNAL-ID already journaled",
		"not allowed in the row's state",
		"sealed token does not open: wrong key or tampered row",
		"no sealing key: sessions are not stored",
		"store closing",
		"too many requests queued",
		"too big",
	};

	if (err > 0 || (size_t)-err >= sizeof(texts) / sizeof(texts[0]))
		return "unknown error";
	return texts[-err];
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sql_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return STORE_ERR_NOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return STORE_ERR_CORRUPT;
	case SQLITE_TOOBIG:
		return STORE_ERR_TOO_BIG;
	default:
		return STORE_ERR_IO;
	}
}

/* Copy src (NULL: "") into dst[cap]; INVALID when it does not fit, or is
 * empty and required. */
static int copy_in(char *dst, size_t cap, const char *src, bool required)
{
	size_t n;

	if (src == NULL)
		src = "";
	n = strnlen(src, cap);
	if (n >= cap || (required && n == 0))
		return STORE_ERR_INVALID;
	memcpy(dst, src, n + 1);
	return 0;
}

/* Copy src (NULL: "") into dst[cap], cut to fit at a UTF-8 character boundary. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
	size_t n;

	if (src == NULL)
		src = "";
	n = strnlen(src, cap);
	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- sqlite helpers (worker thread, or open/verify before it) ---- */

/* Run a statement that returns no rows, and reset it. 0 or an error; a
 * failed constraint is on_constraint. */
static int step_write(sqlite3_stmt *s, int on_constraint)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_DONE)
		return 0;
	return (rc & 0xff) == SQLITE_CONSTRAINT ? on_constraint : sql_err(rc);
}

/* As step_write, a failed constraint being an I/O error like any other. */
static int step_done(sqlite3_stmt *s)
{
	return step_write(s, STORE_ERR_IO);
}

/* One value bound to a statement's parameter; the statement borrows it. */
struct sql_arg {
	enum { ARG_TEXT, ARG_INT, ARG_BLOB } type;
	const void *p;  /* text (NUL-terminated), blob (NULL binds NULL) */
	int64_t n;      /* int: the value; blob: its length */
};

static struct sql_arg arg_text(const char *v)
{
	return (struct sql_arg){ .type = ARG_TEXT, .p = v };
}

static struct sql_arg arg_int(int64_t v)
{
	return (struct sql_arg){ .type = ARG_INT, .n = v };
}

static struct sql_arg arg_blob(const void *v, size_t len)
{
	return (struct sql_arg){ .type = ARG_BLOB, .p = v, .n = (int64_t)len };
}

#define ARGS_N(args) (sizeof(args) / sizeof((args)[0]))

/* Bind args[0..n) to parameters ?1..?n of s. 0, or NOMEM with s reset. */
static int bind_args(sqlite3_stmt *s, const struct sql_arg *args, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int col = (int)i + 1, rc;

		switch (args[i].type) {
		case ARG_TEXT:
			rc = sqlite3_bind_text(s, col, args[i].p, -1, SQLITE_STATIC);
			break;
		case ARG_INT:
			rc = sqlite3_bind_int64(s, col, args[i].n);
			break;
		default:
			rc = sqlite3_bind_blob(s, col, args[i].p, (int)args[i].n, SQLITE_STATIC);
			break;
		}
		if (rc != SQLITE_OK) {
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			return STORE_ERR_NOMEM;
		}
	}
	return 0;
}

/* Bind args to s and run it (it returns no rows) as step_write. */
static int bind_write(sqlite3_stmt *s, const struct sql_arg *args, size_t n, int on_constraint)
{
	int rc = bind_args(s, args, n);

	return rc != 0 ? rc : step_write(s, on_constraint);
}

/* Column i as text into dst[cap]; CORRUPT when it does not fit. NULL is "". */
static int col_text(sqlite3_stmt *s, int i, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i);

	if (t == NULL)
		n = 0;
	if (n >= cap)
		return STORE_ERR_CORRUPT;
	if (n > 0)
		memcpy(dst, t, n);
	dst[n] = '\0';
	return 0;
}

/* The current row of a ROW_COLS statement into row; with blob non-NULL, its
 * response is copied into a new *blob (the caller frees). */
static int read_row(sqlite3_stmt *s, store_row *row, unsigned char **blob)
{
	char state[16];
	int64_t v;
	int rc = 0;

	memset(row, 0, sizeof(*row));
	row->id = sqlite3_column_int64(s, C_ID);
	row->created_ms = sqlite3_column_int64(s, C_CREATED);
	row->updated_ms = sqlite3_column_int64(s, C_UPDATED);
	rc |= col_text(s, C_METHOD, row->method, sizeof(row->method));
	rc |= col_text(s, C_PROFILE, row->profile, sizeof(row->profile));
	rc |= col_text(s, C_CUSTOMER, row->customer_ref, sizeof(row->customer_ref));
	rc |= col_text(s, C_PARTNER_REF, row->partner_reference_no,
		       sizeof(row->partner_reference_no));
	rc |= col_text(s, C_ORIGINAL_REF, row->original_reference_no,
		       sizeof(row->original_reference_no));
	rc |= col_text(s, C_EXTERNAL_ID, row->external_id, sizeof(row->external_id));
	rc |= col_text(s, C_AMOUNT_VALUE, row->amount_value, sizeof(row->amount_value));
	rc |= col_text(s, C_AMOUNT_CURRENCY, row->amount_currency, sizeof(row->amount_currency));
	rc |= col_text(s, C_BODY_SHA256, row->body_sha256, sizeof(row->body_sha256));
	rc |= col_text(s, C_REQUEST_TIME, row->request_time, sizeof(row->request_time));
	rc |= col_text(s, C_STATE, state, sizeof(state));
	rc |= col_text(s, C_CODE, row->response_code, sizeof(row->response_code));
	rc |= col_text(s, C_MESSAGE, row->response_message, sizeof(row->response_message));
	rc |= col_text(s, C_DETAIL, row->detail, sizeof(row->detail));
	if (rc != 0 || state_parse(state, &row->state) != 0)
		return STORE_ERR_CORRUPT;
	v = sqlite3_column_int64(s, C_HTTP);
	row->http_status = v >= 0 && v <= 999 ? (unsigned)v : 0;
	v = sqlite3_column_int64(s, C_ATTEMPTS);
	row->attempts = v >= 0 && v <= UINT32_MAX ? (unsigned)v : 0;
	row->next_attempt_ms = sqlite3_column_int64(s, C_NEXT_ATTEMPT);
	if (blob != NULL && sqlite3_column_type(s, C_RESPONSE) == SQLITE_BLOB) {
		const void *p = sqlite3_column_blob(s, C_RESPONSE);
		size_t n = (size_t)sqlite3_column_bytes(s, C_RESPONSE);

		if (n > STORE_RESPONSE_MAX)
			return STORE_ERR_CORRUPT;
		*blob = malloc(n > 0 ? n : 1);
		if (*blob == NULL)
			return STORE_ERR_NOMEM;
		if (n > 0)
			memcpy(*blob, p, n);
		row->response = *blob;
		row->response_len = n;
	}
	return 0;
}

/* ---- the worker's operations ---- */

static int seal_token(store *st, const store_session_key *k, const char *purpose,
		      const char *tok, size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char ad[SEALED_AD_MAX];
	size_t ad_len;
	int rc;

	*out = malloc(len + SEALED_OVERHEAD);
	if (*out == NULL)
		return STORE_ERR_NOMEM;
	rc = sealed_ad(k->profile, k->customer_ref, purpose, ad, &ad_len);
	if (rc == 0)
		rc = sealed_seal(st->key, ad, ad_len, tok, len, *out, len + SEALED_OVERHEAD, out_len);
	return rc == 0 ? 0 : rc == SEALED_ERR_NOMEM ? STORE_ERR_NOMEM : STORE_ERR_IO;
}

/* Column i, a sealed token of session k, opened into a new *tok. */
static int open_token(store *st, sqlite3_stmt *s, int i, const store_session_key *k,
		      const char *purpose, char **tok, size_t *len)
{
	const unsigned char *in = sqlite3_column_blob(s, i);
	size_t in_len = (size_t)sqlite3_column_bytes(s, i);
	unsigned char ad[SEALED_AD_MAX];
	size_t ad_len, cap;
	int rc;

	*tok = NULL;
	*len = 0;
	if (in == NULL || in_len < SEALED_OVERHEAD || in_len > STORE_TOKEN_MAX + SEALED_OVERHEAD)
		return STORE_ERR_SEALED;
	cap = in_len - SEALED_OVERHEAD + 1;
	*tok = malloc(cap);
	if (*tok == NULL)
		return STORE_ERR_NOMEM;
	rc = sealed_ad(k->profile, k->customer_ref, purpose, ad, &ad_len);
	if (rc == 0)
		rc = sealed_open(st->key, ad, ad_len, in, in_len, (unsigned char *)*tok, cap, len);
	if (rc != 0) {
		explicit_bzero(*tok, cap);
		free(*tok);
		*tok = NULL;
		return rc == SEALED_ERR_NOMEM ? STORE_ERR_NOMEM : STORE_ERR_SEALED;
	}
	return 0;
}

static void slot_wipe(struct sess_slot *sl)
{
	if (sl->access != NULL) {
		explicit_bzero(sl->access, sl->access_len);
		free(sl->access);
	}
	if (sl->refresh != NULL) {
		explicit_bzero(sl->refresh, sl->refresh_len);
		free(sl->refresh);
	}
	explicit_bzero(sl, sizeof(*sl));
}

/* The current row of a sessions SELECT opened into sl; SEALED when a token
 * does not open (sl keeps only the name then). */
static int read_session(store *st, sqlite3_stmt *s, struct sess_slot *sl)
{
	int rc;

	if (col_text(s, 0, sl->key.profile, sizeof(sl->key.profile)) != 0 ||
	    col_text(s, 1, sl->key.customer_ref, sizeof(sl->key.customer_ref)) != 0)
		return STORE_ERR_CORRUPT;
	sl->access_expiry = sqlite3_column_int64(s, 3);
	sl->refresh_expiry = sqlite3_column_int64(s, 5);
	rc = open_token(st, s, 2, &sl->key, "access", &sl->access, &sl->access_len);
	if (rc == 0)
		rc = open_token(st, s, 4, &sl->key, "refresh", &sl->refresh, &sl->refresh_len);
	if (rc != 0) {
		store_session_key k = sl->key;

		slot_wipe(sl);
		sl->key = k;
	}
	return rc;
}

static void publish_session(store_session *pub, const struct sess_slot *sl)
{
	pub->profile = sl->key.profile;
	pub->customer_ref = sl->key.customer_ref;
	pub->access_token = sl->access;
	pub->access_len = sl->access_len;
	pub->access_expiry = sl->access_expiry;
	pub->refresh_token = sl->refresh;
	pub->refresh_len = sl->refresh_len;
	pub->refresh_expiry = sl->refresh_expiry;
}

/* Room for n opened sessions and n names of rows that did not open. */
static int alloc_slots(store_req *r, size_t n)
{
	r->slots = calloc(n, sizeof(*r->slots));
	r->sessions = calloc(n, sizeof(*r->sessions));
	r->bad = calloc(n, sizeof(*r->bad));
	if (r->slots == NULL || r->sessions == NULL || r->bad == NULL)
		return STORE_ERR_NOMEM;
	r->n_slots = n;
	return 0;
}

static int exec_session_put(store *st, store_req *r)
{
	const struct sess_slot *in = &r->sess_in;
	unsigned char *acc = NULL, *ref = NULL;
	size_t acc_len = 0, ref_len = 0;
	int rc;

	rc = seal_token(st, &in->key, "access", in->access, in->access_len, &acc, &acc_len);
	if (rc == 0)
		rc = seal_token(st, &in->key, "refresh", in->refresh, in->refresh_len, &ref, &ref_len);
	if (rc == 0) {
		const struct sql_arg args[] = {
			arg_text(in->key.profile), arg_text(in->key.customer_ref),
			arg_blob(acc, acc_len), arg_int(in->access_expiry),
			arg_blob(ref, ref_len), arg_int(in->refresh_expiry),
			arg_int(now_ms()),
		};

		rc = bind_write(st->stmt[S_SESSION_PUT], args, ARGS_N(args), STORE_ERR_IO);
	}
	free(acc);
	free(ref);
	return rc;
}

/* Bind r's session name (profile, customer_ref) to ?1 and ?2 of s. */
static int bind_session_key(sqlite3_stmt *s, const store_req *r)
{
	const struct sql_arg args[] = {
		arg_text(r->sess_in.key.profile), arg_text(r->sess_in.key.customer_ref),
	};

	return bind_args(s, args, ARGS_N(args));
}

static int exec_session_get(store *st, store_req *r)
{
	sqlite3_stmt *s = st->stmt[S_SESSION_GET];
	int rc = bind_session_key(s, r);

	if (rc != 0)
		goto out;
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		rc = STORE_ERR_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		rc = sql_err(rc);
		goto out;
	}
	rc = alloc_slots(r, 1);
	if (rc != 0)
		goto out;
	rc = read_session(st, s, &r->slots[0]);
	if (rc == 0) {
		publish_session(&r->sessions[0], &r->slots[0]);
		r->res.n_sessions = 1;
	} else if (rc == STORE_ERR_SEALED) {
		r->bad[0] = r->slots[0].key;
		r->res.n_bad = 1;
	}
out:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

static int exec_session_delete(store *st, store_req *r)
{
	sqlite3_stmt *s = st->stmt[S_SESSION_DELETE];
	int rc = bind_session_key(s, r);

	if (rc == 0)
		rc = step_done(s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = STORE_ERR_NOT_FOUND;
	return rc;
}

static int exec_session_list(store *st, store_req *r)
{
	sqlite3_stmt *s = st->stmt[S_SESSION_LIST];
	size_t seen = 0;
	int rc = 0;

	if (alloc_slots(r, STORE_SESSION_PAGE) != 0)
		return STORE_ERR_NOMEM;
	if (bind_session_key(s, r) != 0 ||
	    sqlite3_bind_int(s, 3, STORE_SESSION_PAGE + 1) != SQLITE_OK) {
		rc = STORE_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		struct sess_slot *sl;
		int step = sqlite3_step(s);

		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = sql_err(step);
			goto out;
		}
		if (seen == STORE_SESSION_PAGE) { /* one more row: another page follows */
			r->res.next = &r->next_key;
			break;
		}
		seen++;
		sl = &r->slots[r->res.n_sessions];
		rc = read_session(st, s, sl);
		if (rc == STORE_ERR_SEALED)
			r->bad[r->res.n_bad++] = sl->key;
		else if (rc != 0)
			goto out;
		r->next_key = sl->key;
		if (rc == 0)
			publish_session(&r->sessions[r->res.n_sessions++], sl);
		else
			slot_wipe(sl);
		rc = 0;
	}
out:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

/* Step s (bound) once: its row into r->rows[0] with the response, or NOT_FOUND. */
static int fetch_one(sqlite3_stmt *s, store_req *r)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		rc = read_row(s, &r->rows[0], &r->row_blob);
		if (rc == 0)
			r->res.n_rows = 1;
	} else {
		rc = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : sql_err(rc);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

/* r->in's row: by (profile, partner_reference_no, method), by (profile,
 * partner_reference_no) when no method is given, else by (profile, external_id). */
static int find_by_key(store *st, store_req *r)
{
	const store_row *k = &r->in;
	const bool by_ref = k->partner_reference_no[0] != '\0';
	const bool by_method = by_ref && k->method[0] != '\0';
	const struct sql_arg args[] = {
		arg_text(k->profile),
		arg_text(by_ref ? k->partner_reference_no : k->external_id),
		arg_text(k->method), /* ?3 of S_FIND_KEY only */
	};
	sqlite3_stmt *s = st->stmt[by_method ? S_FIND_KEY : by_ref ? S_FIND_REF : S_FIND_EXTERNAL];
	int rc = bind_args(s, args, by_method ? 3 : 2);

	return rc != 0 ? rc : fetch_one(s, r);
}

static int exec_intent(store *st, store_req *r)
{
	const store_row *in = &r->in;
	const struct sql_arg args[] = {
		arg_int(in->created_ms), arg_text(in->method),
		arg_text(in->profile), arg_text(in->customer_ref),
		arg_text(in->partner_reference_no), arg_text(in->original_reference_no),
		arg_text(in->external_id), arg_text(in->amount_value),
		arg_text(in->amount_currency), arg_text(in->body_sha256),
		arg_text(in->request_time),
	};
	int rc = find_by_key(st, r);

	if (rc == 0)
		return STORE_ERR_EXISTS;
	if (rc != STORE_ERR_NOT_FOUND)
		return rc;
	rc = bind_write(st->stmt[S_INTENT], args, ARGS_N(args), STORE_ERR_DUPLICATE);
	if (rc == 0)
		r->res.id = sqlite3_last_insert_rowid(st->db);
	return rc;
}

/* After an UPDATE of row id that changed nothing: NOT_FOUND or STATE. */
static int why_unchanged(store *st, int64_t id)
{
	sqlite3_stmt *s = st->stmt[S_STATE_OF];
	const struct sql_arg args[] = { arg_int(id) };
	int rc = bind_args(s, args, ARGS_N(args));

	if (rc != 0)
		return rc;
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_ROW)
		return STORE_ERR_STATE;
	return rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : sql_err(rc);
}

/* After an UPDATE of row id: 0 when it changed the row, else why not. */
static int changed_or_why(store *st, int64_t id)
{
	return sqlite3_changes(st->db) > 0 ? 0 : why_unchanged(st, id);
}

/* Row r->id, in state r->in.state, is sent again: its attempt so far goes to
 * attempts, the row takes the new attempt's fields and becomes PENDING. */
static int exec_reissue(store *st, store_req *r)
{
	const store_row *in = &r->in;
	const char *from = store_state_name(in->state);
	const int64_t now = now_ms();
	const struct sql_arg save[] = { arg_int(r->id), arg_text(from), arg_int(now),
					arg_int(in->http_status), arg_text(in->response_code) };
	const struct sql_arg reissue[] = {
		arg_int(r->id), arg_text(from),
		arg_text(in->external_id), arg_text(in->request_time),
		arg_text(in->body_sha256), arg_text(in->amount_value),
		arg_text(in->amount_currency), arg_int(now),
		arg_text(in->detail),
	};
	int rc;

	rc = bind_write(st->stmt[S_ATTEMPT_SAVE], save, ARGS_N(save), STORE_ERR_DUPLICATE);
	if (rc == 0)
		rc = changed_or_why(st, r->id);
	if (rc == 0)
		rc = bind_write(st->stmt[S_REISSUE], reissue, ARGS_N(reissue), STORE_ERR_DUPLICATE);
	if (rc == 0)
		rc = changed_or_why(st, r->id);
	return rc;
}

static int exec_outcome(store *st, store_req *r)
{
	const store_row *in = &r->in;
	const struct sql_arg args[] = {
		arg_int(r->id), arg_text(store_state_name(in->state)),
		arg_int(now_ms()), arg_int((int)in->http_status),
		arg_text(in->response_code), arg_text(in->response_message),
		arg_blob(r->in_blob, in->response_len), arg_int(in->next_attempt_ms),
		arg_text(in->detail),
	};
	int rc = bind_write(st->stmt[S_OUTCOME], args, ARGS_N(args), STORE_ERR_IO);

	return rc == 0 ? changed_or_why(st, r->id) : rc;
}

static int exec_reconciled(store *st, store_req *r)
{
	const struct sql_arg args[] = {
		arg_int(r->id), arg_text(store_state_name(r->in.state)),
		arg_int(now_ms()), arg_int(r->in.next_attempt_ms),
		arg_text(r->in.detail),
	};
	int rc = bind_write(st->stmt[S_RECONCILED], args, ARGS_N(args), STORE_ERR_IO);

	return rc == 0 ? changed_or_why(st, r->id) : rc;
}

/* Read up to r->limit rows of a bound ROW_NO_RESPONSE statement. With
 * paged, one more row is asked for: it sets next_before_id. */
static int fetch_rows(sqlite3_stmt *s, store_req *r, bool paged)
{
	for (;;) {
		int rc = sqlite3_step(s);

		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return sql_err(rc);
		if (r->res.n_rows == r->limit) {
			if (paged)
				r->res.next_before_id = r->rows[r->limit - 1].id;
			return 0;
		}
		rc = read_row(s, &r->rows[r->res.n_rows], NULL);
		if (rc != 0)
			return rc;
		r->res.n_rows++;
	}
}

static int exec_list(store *st, store_req *r)
{
	static const char *const conds[] = {
		" AND profile = ?1", " AND customer_ref = ?2", " AND state = ?3",
		" AND created_ms >= ?4", " AND created_ms < ?5", " AND id < ?6",
	};
	const bool on[] = { r->in.profile[0] != '\0', r->in.customer_ref[0] != '\0',
			    r->in.state != STORE_STATE_ANY, r->from_ms != 0, r->to_ms != 0,
			    r->before_id != 0 };
	static const char order[] = " ORDER BY id DESC LIMIT ?7";
	const struct sql_arg args[] = {
		arg_text(r->in.profile), arg_text(r->in.customer_ref),
		arg_text(store_state_name(r->in.state)), arg_int(r->from_ms),
		arg_int(r->to_ms), arg_int(r->before_id), arg_int((int)r->limit + 1),
	};
	char sql[LIST_SQL_MAX] = ROW_NO_RESPONSE "WHERE 1";
	sqlite3_stmt *s = NULL;
	size_t len = strlen(sql);
	int rc;

	for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++) {
		size_t n = strlen(conds[i]);

		if (!on[i])
			continue;
		if (len + n + sizeof(order) > sizeof(sql))
			return STORE_ERR_INVALID;
		memcpy(sql + len, conds[i], n + 1);
		len += n;
	}
	memcpy(sql + len, order, sizeof(order));
	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sql_err(rc);
	rc = bind_args(s, args, ARGS_N(args));
	if (rc == 0)
		rc = fetch_rows(s, r, true);
	sqlite3_finalize(s);
	return rc;
}

static int exec_due(store *st, store_req *r)
{
	sqlite3_stmt *s = st->stmt[S_DUE];
	int rc;

	if (sqlite3_bind_int(s, 1, (int)r->limit) != SQLITE_OK)
		return STORE_ERR_NOMEM;
	rc = fetch_rows(s, r, false);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

/* Delete up to r->limit settled rows updated before r->before_ms, their
 * earlier attempts first. */
static int exec_prune(store *st, store_req *r)
{
	const struct sql_arg args[] = { arg_int(r->before_ms), arg_int(r->limit) };
	int rc = bind_write(st->stmt[S_PRUNE_ATTEMPTS], args, ARGS_N(args), STORE_ERR_IO);

	if (rc == 0)
		rc = bind_write(st->stmt[S_PRUNE_JOURNAL], args, ARGS_N(args), STORE_ERR_IO);
	if (rc == 0)
		r->res.n_pruned = (unsigned)sqlite3_changes(st->db);
	return rc;
}

static int exec_req(store *st, store_req *r)
{
	switch (r->op) {
	case OP_SESSION_PUT:
		return exec_session_put(st, r);
	case OP_SESSION_GET:
		return exec_session_get(st, r);
	case OP_SESSION_DELETE:
		return exec_session_delete(st, r);
	case OP_SESSION_LIST:
		return exec_session_list(st, r);
	case OP_INTENT:
		return exec_intent(st, r);
	case OP_OUTCOME:
		return exec_outcome(st, r);
	case OP_RECONCILED:
		return exec_reconciled(st, r);
	case OP_GET:
		return find_by_key(st, r);
	case OP_LIST:
		return exec_list(st, r);
	case OP_DUE:
		return exec_due(st, r);
	case OP_REISSUE:
		return exec_reissue(st, r);
	case OP_PRUNE:
		return exec_prune(st, r);
	}
	return STORE_ERR_INVALID;
}

/* Forget what a request found (its transaction did not commit). */
static void req_drop_results(store_req *r)
{
	for (size_t i = 0; r->slots != NULL && i < r->n_slots; i++)
		slot_wipe(&r->slots[i]);
	r->res.n_rows = 0;
	r->res.n_sessions = 0;
	r->res.n_bad = 0;
	r->res.next = NULL;
	r->res.next_before_id = 0;
	r->res.id = 0;
	r->res.n_pruned = 0;
}

/* One transaction for the batch, a savepoint per request. */
static void run_batch(store *st, store_req **b, size_t n)
{
	int rc = step_done(st->stmt[S_BEGIN]);

	for (size_t i = 0; i < n; i++) {
		if (rc != 0) {
			b[i]->res.status = rc;
			continue;
		}
		if (step_done(st->stmt[S_SAVEPOINT]) != 0) {
			b[i]->res.status = STORE_ERR_IO;
			continue;
		}
		b[i]->res.status = exec_req(st, b[i]);
		if (b[i]->res.status != 0)
			(void)step_done(st->stmt[S_ROLLBACK_TO]);
		(void)step_done(st->stmt[S_RELEASE]);
	}
	if (rc == 0 && step_done(st->stmt[S_COMMIT]) != 0) {
		(void)step_done(st->stmt[S_ROLLBACK]);
		for (size_t i = 0; i < n; i++) {
			req_drop_results(b[i]);
			b[i]->res.status = STORE_ERR_IO;
		}
	}
}

static void db_close(store *st)
{
	for (size_t i = 0; i < S_COUNT; i++) {
		sqlite3_finalize(st->stmt[i]);
		st->stmt[i] = NULL;
	}
	sqlite3_close(st->db);
	st->db = NULL;
}

static void worker_main(void *arg)
{
	store *st = arg;
	store_req *batch[STORE_BATCH_MAX];
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the loop's */
	uv_mutex_lock(&st->mu);
	for (;;) {
		size_t n = 0;

		while (st->queue_head == NULL && !st->closing)
			uv_cond_wait(&st->cond, &st->mu);
		if (st->queue_head == NULL)
			break;
		while (n < STORE_BATCH_MAX && st->queue_head != NULL) {
			batch[n] = st->queue_head;
			st->queue_head = batch[n]->next;
			batch[n++]->next = NULL;
			st->queued--;
		}
		if (st->queue_head == NULL)
			st->queue_tail = NULL;
		uv_mutex_unlock(&st->mu);
		run_batch(st, batch, n);
		uv_mutex_lock(&st->mu);
		for (size_t i = 0; i < n; i++) {
			if (st->done_tail != NULL)
				st->done_tail->next = batch[i];
			else
				st->done_head = batch[i];
			st->done_tail = batch[i];
		}
		uv_mutex_unlock(&st->mu);
		uv_async_send(&st->async);
		uv_mutex_lock(&st->mu);
	}
	uv_mutex_unlock(&st->mu);
	db_close(st);
	uv_mutex_lock(&st->mu);
	st->worker_done = true;
	uv_mutex_unlock(&st->mu);
	uv_async_send(&st->async);
}

/* ---- the loop's side ---- */

static void req_free(store_req *r)
{
	if (r == NULL)
		return;
	req_drop_results(r);
	free(r->slots);
	free(r->sessions);
	free(r->bad);
	free(r->rows);
	free(r->row_blob);
	free(r->in_blob);
	slot_wipe(&r->sess_in);
	explicit_bzero(r, sizeof(*r));
	free(r);
}

static store_req *req_new(enum req_op op, store_cb cb, void *data, unsigned rows)
{
	store_req *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->op = op;
	r->cb = cb;
	r->data = data;
	r->limit = rows;
	if (rows > 0) {
		r->rows = calloc(rows, sizeof(*r->rows));
		if (r->rows == NULL) {
			free(r);
			return NULL;
		}
	}
	return r;
}

/* Queue r, or free it and say why not. */
static int submit(store *st, store_req *r)
{
	int rc = 0;

	uv_mutex_lock(&st->mu);
	if (st->closing)
		rc = STORE_ERR_CLOSED;
	else if (st->queued >= STORE_QUEUE_MAX)
		rc = STORE_ERR_BUSY;
	if (rc == 0) {
		if (st->queue_tail != NULL)
			st->queue_tail->next = r;
		else
			st->queue_head = r;
		st->queue_tail = r;
		st->queued++;
		uv_cond_signal(&st->cond);
	}
	uv_mutex_unlock(&st->mu);
	if (rc != 0)
		req_free(r);
	return rc;
}

static void on_closed(uv_handle_t *h)
{
	store *st = h->data;
	store_closed_cb cb = st->closed_cb;
	void *data = st->closed_data;

	uv_cond_destroy(&st->cond);
	uv_mutex_destroy(&st->mu);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st);
	if (cb != NULL)
		cb(data);
}

static void on_async(uv_async_t *a)
{
	store *st = a->data;
	store_req *r;
	bool finished;

	uv_mutex_lock(&st->mu);
	r = st->done_head;
	st->done_head = st->done_tail = NULL;
	finished = st->worker_done;
	uv_mutex_unlock(&st->mu);
	while (r != NULL) {
		store_req *next = r->next;

		r->res.rows = r->res.n_rows > 0 ? r->rows : NULL;
		r->res.sessions = r->res.n_sessions > 0 ? r->sessions : NULL;
		r->res.bad = r->res.n_bad > 0 ? r->bad : NULL;
		r->cb(&r->res, r->data);
		req_free(r);
		r = next;
	}
	if (finished && !st->joined) {
		st->joined = true;
		uv_thread_join(&st->thread);
		uv_close((uv_handle_t *)&st->async, on_closed);
	}
}

void store_close(store *st, store_closed_cb closed, void *data)
{
	if (st == NULL)
		return;
	uv_mutex_lock(&st->mu);
	if (st->closing) {
		uv_mutex_unlock(&st->mu);
		return;
	}
	st->closing = true;
	st->closed_cb = closed;
	st->closed_data = data;
	uv_cond_signal(&st->cond);
	uv_mutex_unlock(&st->mu);
}

/* ---- opening ---- */

static int join_path(char out[STORE_PATH_MAX], const char *dir, const char *name)
{
	int n = snprintf(out, STORE_PATH_MAX, "%s/%s", dir, name);

	return n > 0 && n < STORE_PATH_MAX ? 0 : STORE_ERR_INVALID;
}

/* state_dir exists as a directory (made with mode 0700 when missing), and is ours. */
static int take_dir(store *st, const char *dir, char err[STORE_ERR_MAX])
{
	char path[STORE_PATH_MAX];
	struct stat sb;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		text_printf(err, STORE_ERR_MAX, "state directory %s: %s", dir, strerror(errno));
		return STORE_ERR_IO;
	}
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		text_printf(err, STORE_ERR_MAX, "state directory %s: not a directory", dir);
		return STORE_ERR_IO;
	}
	if (join_path(path, dir, STORE_LOCK_NAME) != 0) {
		text_printf(err, STORE_ERR_MAX, "state directory %s: path too long", dir);
		return STORE_ERR_INVALID;
	}
	st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (st->lock_fd < 0) {
		text_printf(err, STORE_ERR_MAX, "state directory %s: %s: %s", dir, STORE_LOCK_NAME,
			 strerror(errno));
		return STORE_ERR_IO;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		text_printf(err, STORE_ERR_MAX, "state directory %s is in use by another process (%s: %s)",
			 dir, STORE_LOCK_NAME,
			 e == EWOULDBLOCK ? "locked" : strerror(e));
		return e == EWOULDBLOCK ? STORE_ERR_LOCKED : STORE_ERR_IO;
	}
	return 0;
}

/* The text of the last error of db, as "sqlite message (code N)". */
static void db_reason(sqlite3 *db, int rc, char *out, size_t cap)
{
	text_printf(out, cap, "%s (sqlite %d)", db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
		 rc);
}

static int refuse(int code, char err[STORE_ERR_MAX], const char *path, const char *why)
{
	switch (code) {
	case STORE_ERR_CORRUPT:
		text_printf(err, STORE_ERR_MAX,
			 "state database %s is corrupt: %s. Save what is readable with "
			 "--export-journal, then restore a backup or move it away",
			 path, why);
		break;
	case STORE_ERR_VERSION:
		text_printf(err, STORE_ERR_MAX, "state database %s: %s", path, why);
		break;
	default:
		text_printf(err, STORE_ERR_MAX, "state database %s cannot be used: %s", path, why);
		break;
	}
	return code;
}

/* Run PRAGMA integrity_check (full) or quick_check; 0 when "ok", else
 * CORRUPT with the first problems in why (and each on report when given). */
static int db_check(sqlite3 *db, bool full, FILE *report, char *why, size_t cap)
{
	char sql[64];
	sqlite3_stmt *s = NULL;
	size_t used = 0;
	int rc, n = 0;

	snprintf(sql, sizeof(sql), "PRAGMA %s(%d)", full ? "integrity_check" : "quick_check",
		 INTEGRITY_REPORT_MAX);
	why[0] = '\0';
	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		db_reason(db, rc, why, cap);
		return sql_err(rc);
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);

		if (t == NULL || strcmp(t, "ok") == 0)
			continue;
		n++;
		for (const char *l = t; report != NULL && *l != '\0';) { /* a row may hold lines */
			size_t len = strcspn(l, "\n");

			if (len > 0)
				fprintf(report, "  problem: %.*s\n", (int)len, l);
			l += len + (l[len] == '\n');
		}
		if (used + 2 < cap) {
			int w = snprintf(why + used, cap - used, "%s%s", used > 0 ? "; " : "", t);

			used = w < 0 ? cap : used + (size_t)w;
		}
	}
	if (rc != SQLITE_DONE) {
		int e = sql_err(rc);

		db_reason(db, rc, why, cap);
		sqlite3_finalize(s);
		return e;
	}
	sqlite3_finalize(s);
	return n == 0 ? 0 : STORE_ERR_CORRUPT;
}

/* One integer from a one-value query; NOT_FOUND when it returned no row. */
static int db_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return sql_err(rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : sql_err(rc);
}

/* Create the schema in an empty database, or check the version of an existing one. */
static int db_schema(sqlite3 *db, const char *path, char err[STORE_ERR_MAX])
{
	char why[STORE_ERR_MAX / 2];
	char sql[sizeof(schema_sql) + 96];
	int64_t tables = 0, version = 0;
	int rc;

	rc = db_int(db, "SELECT count(*) FROM sqlite_schema", &tables);
	if (rc != 0) {
		db_reason(db, rc, why, sizeof(why));
		return refuse(rc, err, path, why);
	}
	if (tables == 0) {
		snprintf(sql, sizeof(sql),
			 "BEGIN IMMEDIATE; %s INSERT INTO schema_version VALUES (%d); COMMIT;",
			 schema_sql, STORE_SCHEMA_VERSION);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			db_reason(db, rc, why, sizeof(why));
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return refuse(sql_err(rc), err, path, why);
		}
		return 0;
	}
	rc = db_int(db, "SELECT version FROM schema_version", &version);
	if (rc != 0) {
		text_printf(why, sizeof(why),
			 "not a doku-bridge state database (no schema_version: %s)",
			 sqlite3_errmsg(db));
		return refuse(rc == STORE_ERR_CORRUPT ? rc : STORE_ERR_VERSION, err, path, why);
	}
	if (version != STORE_SCHEMA_VERSION) {
		text_printf(why, sizeof(why),
			 "schema version %" PRId64 ", but this doku-bridged knows version %d only",
			 version, STORE_SCHEMA_VERSION);
		return refuse(STORE_ERR_VERSION, err, path, why);
	}
	return 0;
}

/* The sealed key check of the database: 0 and *v (sqlite's, valid until
 * the statement is finalized) or NOT_FOUND. */
static int key_check_read(sqlite3 *db, sqlite3_stmt **s, const void **v, size_t *n)
{
	int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = 'key_check'", -1, s,
				    NULL);

	if (rc != SQLITE_OK)
		return sql_err(rc);
	rc = sqlite3_step(*s);
	if (rc == SQLITE_DONE)
		return STORE_ERR_NOT_FOUND;
	if (rc != SQLITE_ROW)
		return sql_err(rc);
	*v = sqlite3_column_blob(*s, 0);
	*n = (size_t)sqlite3_column_bytes(*s, 0);
	return 0;
}

static int key_check_write(store *st)
{
	static const char text[] = KEY_CHECK_TEXT;
	unsigned char sealed[sizeof(text) + SEALED_OVERHEAD];
	sqlite3_stmt *s = NULL;
	size_t len;
	int rc;

	if (sealed_seal(st->key, KEY_CHECK_AD, sizeof(KEY_CHECK_AD) - 1, text, sizeof(text) - 1,
			sealed, sizeof(sealed), &len) != 0)
		return STORE_ERR_IO;
	rc = sqlite3_prepare_v2(st->db, "INSERT INTO meta (name, value) VALUES ('key_check', ?1)",
				-1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(s, 1, sealed, (int)len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
	sqlite3_finalize(s);
	return rc == SQLITE_OK ? 0 : sql_err(rc);
}

/* The key must open the key check sealed with the first key the database
 * saw; a database that never saw one gets one. */
static int key_check(store *st, const char *path, char err[STORE_ERR_MAX])
{
	static const char text[] = KEY_CHECK_TEXT;
	unsigned char plain[sizeof(text)];
	sqlite3_stmt *s = NULL;
	const void *v = NULL;
	size_t n = 0, len = 0;
	int rc;

	if (st->key == NULL)
		return 0;
	rc = key_check_read(st->db, &s, &v, &n);
	if (rc == 0 && (v == NULL ||
			sealed_open(st->key, KEY_CHECK_AD, sizeof(KEY_CHECK_AD) - 1, v, n, plain,
				    sizeof(plain), &len) != 0 ||
			len != sizeof(text) - 1 || memcmp(plain, text, len) != 0)) {
		text_printf(err, STORE_ERR_MAX,
			 "state database %s was sealed with another key: its sessions cannot be "
			 "opened with this one. Use the key it was written with, or move %s away "
			 "to start afresh (its sessions are then lost; --export-journal saves the "
			 "journal first)",
			 path, STORE_DB_NAME);
		rc = STORE_ERR_KEY;
	}
	sqlite3_finalize(s);
	if (rc == STORE_ERR_NOT_FOUND)
		rc = key_check_write(st);
	if (rc != 0 && rc != STORE_ERR_KEY) {
		char why[STORE_ERR_MAX / 2];

		db_reason(st->db, sqlite3_errcode(st->db), why, sizeof(why));
		rc = refuse(rc, err, path, why);
	}
	return rc;
}

/* Open path read-write and make it ours: settings, checks, schema, key. */
static int db_open(store *st, const char *path, char err[STORE_ERR_MAX])
{
	static const char *const settings[] = {
		"PRAGMA cell_size_check = ON", "PRAGMA trusted_schema = OFF",
		"PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL",
		/* the page cache: SQLite's default (~2 MB), stated: the daemon's RSS levels
		   off once the journal fills it (docs/benchmarks.md, bench_rss) */
		"PRAGMA cache_size = -2000",
	};
	char why[STORE_ERR_MAX / 2];
	struct stat sb;
	int64_t wal = 0;
	int fd, rc;

	/* Create it as 0600 ourselves (SQLite would use 0644), and learn early
	 * that it cannot be read or written; closed before SQLite opens it. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return refuse(STORE_ERR_IO, err, path, strerror(errno));
	rc = fstat(fd, &sb);
	close(fd);
	if (rc != 0 || !S_ISREG(sb.st_mode))
		return refuse(STORE_ERR_IO, err, path, "not a regular file");
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		db_reason(st->db, rc, why, sizeof(why));
		return refuse(sql_err(rc), err, path, why);
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	if (sqlite3_db_readonly(st->db, "main") == 1)
		return refuse(STORE_ERR_IO, err, path, "read-only");
	rc = db_check(st->db, true, NULL, why, sizeof(why));
	if (rc != 0)
		return refuse(rc, err, path, why);
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		rc = sqlite3_exec(st->db, settings[i], NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			db_reason(st->db, rc, why, sizeof(why));
			return refuse(sql_err(rc), err, path, why);
		}
	}
	if (db_int(st->db, "SELECT journal_mode = 'wal' FROM pragma_journal_mode", &wal) != 0 ||
	    wal != 1)
		return refuse(STORE_ERR_IO, err, path, "WAL journal mode is not available");
	return 0;
}

/* A new store is opened before any call is in flight: its PENDING rows are
 * orphans of a daemon that stopped. */
static int adopt_orphans(store *st, const char *path, char err[STORE_ERR_MAX])
{
	sqlite3_stmt *s = NULL;
	int64_t now = now_ms();
	int rc = sqlite3_prepare_v2(st->db,
				    "UPDATE journal SET state = 'UNKNOWN', updated_ms = ?1, "
				    "next_attempt_ms = ?1, detail = ?2 WHERE state = 'PENDING'",
				    -1, &s, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_bind_int64(s, 1, now)) == SQLITE_OK &&
	    (rc = sqlite3_bind_text(s, 2, ORPHAN_DETAIL, -1, SQLITE_STATIC)) == SQLITE_OK)
		rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
	sqlite3_finalize(s);
	if (rc != SQLITE_OK) {
		char why[STORE_ERR_MAX / 2];

		db_reason(st->db, rc, why, sizeof(why));
		return refuse(sql_err(rc), err, path, why);
	}
	return 0;
}

int store_open(uv_loop_t *loop, const char *state_dir, sealed_key *key, store **out,
	       char err[STORE_ERR_MAX])
{
	char path[STORE_PATH_MAX];
	bool sync_made = false;
	store *st;
	int rc;

	*out = NULL;
	err[0] = '\0';
	if (loop == NULL || state_dir == NULL || state_dir[0] == '\0') {
		text_printf(err, STORE_ERR_MAX, "store_open: no loop or no state directory");
		return STORE_ERR_INVALID;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		text_printf(err, STORE_ERR_MAX, "out of memory");
		return STORE_ERR_NOMEM;
	}
	st->loop = loop;
	st->key = key;
	st->lock_fd = -1;
	rc = take_dir(st, state_dir, err);
	if (rc != 0)
		goto out;
	if (join_path(path, state_dir, STORE_DB_NAME) != 0) {
		rc = STORE_ERR_INVALID;
		text_printf(err, STORE_ERR_MAX, "state directory %s: path too long", state_dir);
		goto out;
	}
	rc = db_open(st, path, err);
	if (rc == 0)
		rc = db_schema(st->db, path, err);
	if (rc == 0)
		rc = key_check(st, path, err);
	if (rc == 0)
		rc = adopt_orphans(st, path, err);
	for (size_t i = 0; rc == 0 && i < S_COUNT; i++) {
		int p = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					   &st->stmt[i], NULL);

		if (p != SQLITE_OK) {
			char why[STORE_ERR_MAX / 2];

			db_reason(st->db, p, why, sizeof(why));
			rc = refuse(sql_err(p), err, path, why);
		}
	}
	if (rc != 0)
		goto out;
	rc = STORE_ERR_NOMEM;
	if (uv_mutex_init(&st->mu) != 0)
		goto out;
	if (uv_cond_init(&st->cond) != 0) {
		uv_mutex_destroy(&st->mu);
		goto out;
	}
	sync_made = true;
	if (uv_async_init(loop, &st->async, on_async) != 0)
		goto out;
	st->async.data = st;
	if (uv_thread_create(&st->thread, worker_main, st) != 0) {
		/* the async handle is closed (and the store freed) by the loop */
		text_printf(err, STORE_ERR_MAX, "cannot start the store's worker thread");
		db_close(st);
		st->closed_cb = NULL;
		uv_close((uv_handle_t *)&st->async, on_closed);
		return STORE_ERR_NOMEM;
	}
	*out = st;
	return 0;
out:
	if (rc == STORE_ERR_NOMEM && err[0] == '\0')
		text_printf(err, STORE_ERR_MAX, "out of memory");
	if (sync_made) {
		uv_cond_destroy(&st->cond);
		uv_mutex_destroy(&st->mu);
	}
	db_close(st);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st);
	return rc;
}

/* ---- requests ---- */

static int session_key_in(store_session_key *k, const char *profile, const char *ref)
{
	if (copy_in(k->profile, sizeof(k->profile), profile, true) != 0 ||
	    copy_in(k->customer_ref, sizeof(k->customer_ref), ref, true) != 0)
		return STORE_ERR_INVALID;
	return 0;
}

/* A copy of tok[0..len) with a NUL, in *out. */
static int token_in(const char *tok, size_t len, char **out)
{
	if (len > STORE_TOKEN_MAX)
		return STORE_ERR_TOO_BIG;
	if (tok == NULL && len > 0)
		return STORE_ERR_INVALID;
	*out = malloc(len + 1);
	if (*out == NULL)
		return STORE_ERR_NOMEM;
	if (len > 0)
		memcpy(*out, tok, len);
	(*out)[len] = '\0';
	return 0;
}

int store_session_put(store *st, const store_session *s, store_cb cb, void *data)
{
	store_req *r;
	int rc;

	if (st == NULL || s == NULL || cb == NULL || s->access_len == 0)
		return STORE_ERR_INVALID;
	if (st->key == NULL)
		return STORE_ERR_NO_KEY;
	r = req_new(OP_SESSION_PUT, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	rc = session_key_in(&r->sess_in.key, s->profile, s->customer_ref);
	if (rc == 0)
		rc = token_in(s->access_token, s->access_len, &r->sess_in.access);
	if (rc == 0) {
		r->sess_in.access_len = s->access_len;
		rc = token_in(s->refresh_token, s->refresh_len, &r->sess_in.refresh);
	}
	if (rc != 0) {
		req_free(r);
		return rc;
	}
	r->sess_in.refresh_len = s->refresh_len;
	r->sess_in.access_expiry = s->access_expiry;
	r->sess_in.refresh_expiry = s->refresh_expiry;
	return submit(st, r);
}

static int session_named(store *st, enum req_op op, const char *profile, const char *ref,
			 store_cb cb, void *data)
{
	store_req *r;

	if (st == NULL || cb == NULL)
		return STORE_ERR_INVALID;
	if (st->key == NULL)
		return STORE_ERR_NO_KEY;
	r = req_new(op, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	if (session_key_in(&r->sess_in.key, profile, ref) != 0) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	return submit(st, r);
}

int store_session_get(store *st, const char *profile, const char *customer_ref, store_cb cb,
		      void *data)
{
	return session_named(st, OP_SESSION_GET, profile, customer_ref, cb, data);
}

int store_session_delete(store *st, const char *profile, const char *customer_ref, store_cb cb,
			 void *data)
{
	return session_named(st, OP_SESSION_DELETE, profile, customer_ref, cb, data);
}

int store_session_list(store *st, const store_session_key *after, store_cb cb, void *data)
{
	store_req *r;

	if (st == NULL || cb == NULL)
		return STORE_ERR_INVALID;
	if (st->key == NULL)
		return STORE_ERR_NO_KEY;
	r = req_new(OP_SESSION_LIST, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	if (after != NULL &&
	    (copy_in(r->sess_in.key.profile, sizeof(r->sess_in.key.profile), after->profile,
		     false) != 0 ||
	     copy_in(r->sess_in.key.customer_ref, sizeof(r->sess_in.key.customer_ref),
		     after->customer_ref, false) != 0)) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	return submit(st, r);
}

static bool is_lower_hex(const char *s, size_t len)
{
	if (s == NULL || strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int store_journal_intent(store *st, const store_intent *in, store_cb cb, void *data)
{
	store_row *row;
	store_req *r;
	int rc = 0;

	if (st == NULL || in == NULL || cb == NULL ||
	    !is_lower_hex(in->body_sha256, STORE_SHA256_HEX))
		return STORE_ERR_INVALID;
	r = req_new(OP_INTENT, cb, data, 1);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	row = &r->in;
	rc |= copy_in(row->method, sizeof(row->method), in->method, true);
	rc |= copy_in(row->profile, sizeof(row->profile), in->profile, true);
	rc |= copy_in(row->customer_ref, sizeof(row->customer_ref), in->customer_ref, false);
	rc |= copy_in(row->partner_reference_no, sizeof(row->partner_reference_no),
		      in->partner_reference_no, true);
	rc |= copy_in(row->original_reference_no, sizeof(row->original_reference_no),
		      in->original_reference_no, false);
	rc |= copy_in(row->external_id, sizeof(row->external_id), in->external_id, true);
	rc |= copy_in(row->amount_value, sizeof(row->amount_value), in->amount_value, false);
	rc |= copy_in(row->amount_currency, sizeof(row->amount_currency), in->amount_currency,
		      false);
	rc |= copy_in(row->body_sha256, sizeof(row->body_sha256), in->body_sha256, true);
	rc |= copy_in(row->request_time, sizeof(row->request_time), in->request_time, false);
	if (rc != 0) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	row->created_ms = in->created_ms != 0 ? in->created_ms : now_ms();
	return submit(st, r);
}

static bool is_outcome_state(enum store_state s)
{
	return s == STORE_DONE || s == STORE_NOT_DONE || s == STORE_UNKNOWN;
}

int store_journal_outcome(store *st, int64_t id, const store_outcome *o, store_cb cb,
			  void *data)
{
	store_req *r;

	if (st == NULL || o == NULL || cb == NULL || id <= 0 || !is_outcome_state(o->state) ||
	    (o->response == NULL && o->response_len > 0))
		return STORE_ERR_INVALID;
	if (o->response_len > STORE_RESPONSE_MAX)
		return STORE_ERR_TOO_BIG;
	r = req_new(OP_OUTCOME, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	r->id = id;
	r->in.state = o->state;
	r->in.http_status = o->http_status;
	r->in.next_attempt_ms = o->next_attempt_ms;
	copy_cut(r->in.response_message, sizeof(r->in.response_message), o->response_message);
	copy_cut(r->in.detail, sizeof(r->in.detail), o->detail);
	if (copy_in(r->in.response_code, sizeof(r->in.response_code), o->response_code, false)) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	if (o->response != NULL) {
		r->in_blob = malloc(o->response_len > 0 ? o->response_len : 1);
		if (r->in_blob == NULL) {
			req_free(r);
			return STORE_ERR_NOMEM;
		}
		if (o->response_len > 0)
			memcpy(r->in_blob, o->response, o->response_len);
		r->in.response_len = o->response_len;
	}
	return submit(st, r);
}

int store_journal_reconciled(store *st, int64_t id, enum store_state state,
			     int64_t next_attempt_ms, const char *detail, store_cb cb, void *data)
{
	store_req *r;

	if (st == NULL || cb == NULL || id <= 0 || !is_outcome_state(state))
		return STORE_ERR_INVALID;
	r = req_new(OP_RECONCILED, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	r->id = id;
	r->in.state = state;
	r->in.next_attempt_ms = next_attempt_ms;
	copy_cut(r->in.detail, sizeof(r->in.detail), detail);
	return submit(st, r);
}

int store_journal_reissue(store *st, int64_t id, enum store_state from, const store_intent *in,
			  const char *detail, store_cb cb, void *data)
{
	store_row *row;
	store_req *r;
	int rc = 0;

	if (st == NULL || in == NULL || cb == NULL || id <= 0 ||
	    (from != STORE_PENDING && from != STORE_NOT_DONE) ||
	    !is_lower_hex(in->body_sha256, STORE_SHA256_HEX))
		return STORE_ERR_INVALID;
	r = req_new(OP_REISSUE, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	r->id = id;
	row = &r->in;
	row->state = from;
	rc |= copy_in(row->external_id, sizeof(row->external_id), in->external_id, true);
	rc |= copy_in(row->request_time, sizeof(row->request_time), in->request_time, false);
	rc |= copy_in(row->body_sha256, sizeof(row->body_sha256), in->body_sha256, true);
	rc |= copy_in(row->amount_value, sizeof(row->amount_value), in->amount_value, false);
	rc |= copy_in(row->amount_currency, sizeof(row->amount_currency), in->amount_currency,
		      false);
	copy_cut(row->detail, sizeof(row->detail), detail);
	if (from == STORE_PENDING && in->refused_http > 0) {
		row->http_status = in->refused_http;
		rc |= copy_in(row->response_code, sizeof(row->response_code),
			      in->refused_response_code, false);
	}
	if (rc != 0) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	return submit(st, r);
}

int store_journal_get(store *st, const store_key *k, store_cb cb, void *data)
{
	store_req *r;
	int rc = 0;

	if (st == NULL || k == NULL || cb == NULL)
		return STORE_ERR_INVALID;
	r = req_new(OP_GET, cb, data, 1);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	rc |= copy_in(r->in.profile, sizeof(r->in.profile), k->profile, true);
	rc |= copy_in(r->in.method, sizeof(r->in.method), k->method, false);
	rc |= copy_in(r->in.partner_reference_no, sizeof(r->in.partner_reference_no),
		      k->partner_reference_no, false);
	rc |= copy_in(r->in.external_id, sizeof(r->in.external_id), k->external_id, false);
	if (rc != 0 || (r->in.partner_reference_no[0] == '\0' && r->in.external_id[0] == '\0')) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	return submit(st, r);
}

int store_journal_list(store *st, const store_filter *f, store_cb cb, void *data)
{
	unsigned limit;
	store_req *r;

	if (st == NULL || f == NULL || cb == NULL || f->limit > STORE_LIST_MAX ||
	    (unsigned)f->state > STORE_UNKNOWN || f->from_ms < 0 || f->to_ms < 0 ||
	    f->before_id < 0)
		return STORE_ERR_INVALID;
	limit = f->limit != 0 ? f->limit : STORE_LIST_DEFAULT;
	r = req_new(OP_LIST, cb, data, limit);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	if (copy_in(r->in.profile, sizeof(r->in.profile), f->profile, false) != 0 ||
	    copy_in(r->in.customer_ref, sizeof(r->in.customer_ref), f->customer_ref, false) != 0) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	r->in.state = f->state;
	r->from_ms = f->from_ms;
	r->to_ms = f->to_ms;
	r->before_id = f->before_id;
	return submit(st, r);
}

int store_journal_due(store *st, unsigned limit, store_cb cb, void *data)
{
	store_req *r;

	if (st == NULL || cb == NULL || limit == 0 || limit > STORE_LIST_MAX)
		return STORE_ERR_INVALID;
	r = req_new(OP_DUE, cb, data, limit);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	return submit(st, r);
}

int store_journal_prune(store *st, int64_t before_ms, unsigned max_rows, store_cb cb,
			void *data)
{
	store_req *r;

	if (st == NULL || cb == NULL || before_ms <= 0 || max_rows == 0 ||
	    max_rows > STORE_PRUNE_MAX)
		return STORE_ERR_INVALID;
	r = req_new(OP_PRUNE, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	r->before_ms = before_ms;
	r->limit = max_rows;
	return submit(st, r);
}

int store_body_digest(const void *body, size_t len, char hex[STORE_SHA256_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char d[WC_SHA256_DIGEST_SIZE];

	hex[0] = '\0';
	if ((body == NULL && len > 0) || len > UINT32_MAX ||
	    wc_Sha256Hash(body, (word32)len, d) != 0)
		return STORE_ERR_IO;
	for (size_t i = 0; i < sizeof(d); i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 0xf];
	}
	hex[STORE_SHA256_HEX] = '\0';
	return 0;
}

/* ---- the command line ---- */

/* Open path (a state directory or a database file) read-only; the file's name in name. */
static int open_readonly(const char *path, sqlite3 **db, char name[STORE_PATH_MAX],
			 char *why, size_t cap)
{
	struct stat sb;
	int rc;

	*db = NULL;
	if (stat(path, &sb) != 0) {
		text_printf(why, cap, "%s: %s", path, strerror(errno));
		return STORE_ERR_IO;
	}
	if (S_ISDIR(sb.st_mode) ? join_path(name, path, STORE_DB_NAME) != 0
				: snprintf(name, STORE_PATH_MAX, "%s", path) >= STORE_PATH_MAX) {
		text_printf(why, cap, "%s: path too long", path);
		return STORE_ERR_INVALID;
	}
	if (stat(name, &sb) != 0 || access(name, R_OK) != 0) {
		text_printf(why, cap, "%s: %s", name, strerror(errno));
		return STORE_ERR_IO;
	}
	if (!S_ISREG(sb.st_mode)) {
		text_printf(why, cap, "%s: not a regular file%s", name,
			S_ISDIR(sb.st_mode) ? " (a directory)" : "");
		return STORE_ERR_IO;
	}
	rc = sqlite3_open_v2(name, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
		rc = sqlite3_exec(*db, "PRAGMA cell_size_check = ON; PRAGMA trusted_schema = OFF",
				  NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		db_reason(*db, rc, why, cap);
		sqlite3_close(*db);
		*db = NULL;
		return sql_err(rc);
	}
	return 0;
}

int store_verify(const char *path, FILE *report)
{
	static const char *const counted[] = { "PENDING", "DONE", "NOT_DONE", "UNKNOWN" };
	char name[STORE_PATH_MAX], why[STORE_ERR_MAX] = "", sql[128];
	sqlite3 *db = NULL;
	int64_t version = 0, n = 0;
	int rc;

	name[0] = '\0';
	rc = open_readonly(path, &db, name, why, sizeof(why));
	fprintf(report, "state database: %s\n", name[0] != '\0' ? name : path);
	if (rc != 0) {
		fprintf(report, "cannot open: %s\n", why);
		goto out;
	}
	rc = db_check(db, true, report, why, sizeof(why));
	fprintf(report, "integrity_check: %s\n", rc == 0 ? "ok" : why);
	if (rc != 0)
		goto out;
	rc = db_int(db, "SELECT version FROM schema_version", &version);
	if (rc != 0 || version != STORE_SCHEMA_VERSION) {
		fprintf(report, "schema: %s (this build knows version %d)\n",
			rc != 0 ? "no schema_version: not a doku-bridge state database" : "unknown",
			STORE_SCHEMA_VERSION);
		if (rc == 0)
			fprintf(report, "schema version: %" PRId64 "\n", version);
		rc = rc == STORE_ERR_CORRUPT ? rc : STORE_ERR_VERSION;
		goto out;
	}
	fprintf(report, "schema version: %" PRId64 "\n", version);
	rc = db_int(db, "SELECT count(*) FROM sessions", &n);
	if (rc != 0)
		goto out;
	fprintf(report, "sessions: %" PRId64 "\n", n);
	rc = db_int(db, "SELECT count(*) FROM journal", &n);
	if (rc != 0)
		goto out;
	fprintf(report, "journal rows: %" PRId64 "\n", n);
	for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM journal WHERE state = '%s'",
			 counted[i]);
		rc = db_int(db, sql, &n);
		if (rc != 0)
			goto out;
		fprintf(report, "  %s: %" PRId64 "\n", counted[i], n);
	}
out:
	if (rc != 0 && db != NULL && why[0] == '\0')
		db_reason(db, sqlite3_errcode(db), why, sizeof(why));
	fprintf(report, "result: %s\n", rc == 0 ? "sound" : store_strerror(rc));
	sqlite3_close(db);
	return rc;
}

static void json_str(FILE *out, const unsigned char *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void json_val(FILE *out, sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	json_str(out, t != NULL ? t : (const unsigned char *)"",
		 t != NULL ? (size_t)sqlite3_column_bytes(s, i) : 0);
}

static void json_col(FILE *out, const char *key, sqlite3_stmt *s, int i)
{
	fprintf(out, ",\"%s\":", key);
	json_val(out, s, i);
}

static void json_time(FILE *out, const char *key, int64_t ms)
{
	char buf[ISO_TIME_MAX] = "";
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms > 0 && gmtime_r(&t, &tm) != NULL &&
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) > 0)
		fprintf(out, ",\"%s\":\"%s.%03dZ\"", key, buf, (int)(ms % 1000));
	else
		fprintf(out, ",\"%s\":null", key);
}

/* The response column as base64 (null when NULL). */
static int json_blob(FILE *out, const char *key, sqlite3_stmt *s, int i)
{
	const unsigned char *p = sqlite3_column_blob(s, i);
	word32 n = (word32)sqlite3_column_bytes(s, i), len;
	unsigned char *b64;

	fprintf(out, ",\"%s\":", key);
	if (sqlite3_column_type(s, i) != SQLITE_BLOB) {
		fputs("null", out);
		return 0;
	}
	len = 4 * ((n + 2) / 3) + 4;
	b64 = malloc(len);
	if (b64 == NULL)
		return STORE_ERR_NOMEM;
	if (n == 0)
		len = 0;
	else if (Base64_Encode_NoNl(p, n, b64, &len) != 0) {
		free(b64);
		return STORE_ERR_IO;
	}
	json_str(out, b64, len);
	free(b64);
	return 0;
}

#define EARLIER_SQL                                                                  \
	"SELECT external_id, request_time, state, http_status, response_code, replaced_ms " \
	"FROM attempts WHERE journal_id = ?1 ORDER BY rowid"

/* ,"earlier":[{externalId, requestTime, state, httpStatus, responseCode, replaced}...] */
static int json_earlier(FILE *out, sqlite3_stmt *s, int64_t id)
{
	int rc, n = 0;

	if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK)
		return STORE_ERR_NOMEM;
	fputs(",\"earlier\":[", out);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		fputs(n++ > 0 ? ",{\"externalId\":" : "{\"externalId\":", out);
		json_val(out, s, 0);
		json_col(out, "requestTime", s, 1);
		json_col(out, "state", s, 2);
		fprintf(out, ",\"httpStatus\":%" PRId64, (int64_t)sqlite3_column_int64(s, 3));
		json_col(out, "responseCode", s, 4);
		json_time(out, "replaced", sqlite3_column_int64(s, 5));
		fputc('}', out);
	}
	fputc(']', out);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : sql_err(rc);
}

int store_export_journal(const char *path, FILE *out)
{
	char name[STORE_PATH_MAX], why[STORE_ERR_MAX];
	sqlite3_stmt *s = NULL, *earlier = NULL;
	sqlite3 *db = NULL;
	int rc, step;

	rc = open_readonly(path, &db, name, why, sizeof(why));
	if (rc != 0) {
		fprintf(stderr, "export: %s\n", why);
		return rc;
	}
	step = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	if (step == SQLITE_OK)
		step = sqlite3_prepare_v2(db, ROW_WITH_RESPONSE "ORDER BY id", -1, &s, NULL);
	if (step == SQLITE_OK)
		step = sqlite3_prepare_v2(db, EARLIER_SQL, -1, &earlier, NULL);
	while (step == SQLITE_OK && (step = sqlite3_step(s)) == SQLITE_ROW) {
		fprintf(out, "{\"id\":%" PRId64, (int64_t)sqlite3_column_int64(s, C_ID));
		json_time(out, "created", sqlite3_column_int64(s, C_CREATED));
		json_time(out, "updated", sqlite3_column_int64(s, C_UPDATED));
		json_col(out, "method", s, C_METHOD);
		json_col(out, "profile", s, C_PROFILE);
		json_col(out, "customerRef", s, C_CUSTOMER);
		json_col(out, "partnerReferenceNo", s, C_PARTNER_REF);
		json_col(out, "originalReferenceNo", s, C_ORIGINAL_REF);
		json_col(out, "externalId", s, C_EXTERNAL_ID);
		fputs(",\"amount\":{\"value\":", out);
		json_val(out, s, C_AMOUNT_VALUE);
		json_col(out, "currency", s, C_AMOUNT_CURRENCY);
		fputc('}', out);
		json_col(out, "bodySha256", s, C_BODY_SHA256);
		json_col(out, "requestTime", s, C_REQUEST_TIME);
		json_col(out, "state", s, C_STATE);
		fprintf(out, ",\"httpStatus\":%" PRId64, (int64_t)sqlite3_column_int64(s, C_HTTP));
		json_col(out, "responseCode", s, C_CODE);
		json_col(out, "responseMessage", s, C_MESSAGE);
		rc = json_blob(out, "response", s, C_RESPONSE);
		if (rc != 0)
			break;
		fprintf(out, ",\"attempts\":%" PRId64, (int64_t)sqlite3_column_int64(s, C_ATTEMPTS));
		json_time(out, "nextAttempt", sqlite3_column_int64(s, C_NEXT_ATTEMPT));
		json_col(out, "detail", s, C_DETAIL);
		rc = json_earlier(out, earlier, sqlite3_column_int64(s, C_ID));
		if (rc != 0)
			break;
		fputs("}\n", out);
		step = SQLITE_OK;
	}
	if (rc == 0 && step != SQLITE_DONE) {
		rc = sql_err(step);
		db_reason(db, step, why, sizeof(why));
		fprintf(stderr, "export: %s: %s\n", name, why);
	}
	sqlite3_finalize(s);
	sqlite3_finalize(earlier);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	if (rc == 0 && (fflush(out) != 0 || ferror(out)))
		rc = STORE_ERR_IO;
	return rc;
}
