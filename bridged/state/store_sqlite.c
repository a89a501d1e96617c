/* The SQLite backend of the store (store_backend.h): <state_dir>/state.db,
 * its schema and statements, the checks at open, the requests run on the
 * store's worker thread, and the command line's verify and export. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>

#include "clock.h"
#include "store_backend.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_PATH_MAX 4096
#define BUSY_TIMEOUT_MS 5000
#define INTEGRITY_REPORT_MAX 20 /* problems integrity_check reports */
#define LIST_SQL_MAX 1024
#define ISO_TIME_MAX 32
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

/* ---- the backend ---- */

/* One connection to <state_dir>/state.db: used on the loop's thread in
 * store_open, then by the store's worker only. */
struct store_backend {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	char path[STORE_PATH_MAX];    /* <state_dir>/state.db */
};

/* The schema's spelling of a state (journal.state, attempts.state): the
 * words of store_state_name, which the public API owns. */
static const char *const db_states[] = {
	[STORE_STATE_ANY] = "ANY", [STORE_PENDING] = "PENDING", [STORE_DONE] = "DONE",
	[STORE_NOT_DONE] = "NOT_DONE", [STORE_UNKNOWN] = "UNKNOWN",
};

#define DB_STATES_N (sizeof(db_states) / sizeof(db_states[0]))

static const char *db_state_name(enum store_state s)
{
	return (unsigned)s < DB_STATES_N ? db_states[s] : "?";
}

static int db_state_parse(const char *name, enum store_state *out)
{
	for (unsigned i = STORE_PENDING; i < DB_STATES_N; i++)
		if (strcmp(name, db_states[i]) == 0) {
			*out = (enum store_state)i;
			return 0;
		}
	return STORE_ERR_CORRUPT;
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
	if (rc != 0 || db_state_parse(state, &row->state) != 0)
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

static int exec_session_put(store_backend *b, store_req *r)
{
	const store_sealed_session *in = &r->put;
	const struct sql_arg args[] = {
		arg_text(in->key.profile), arg_text(in->key.customer_ref),
		arg_blob(in->access, in->access_len), arg_int(in->access_expiry),
		arg_blob(in->refresh, in->refresh_len), arg_int(in->refresh_expiry),
		arg_int(clock_wall_ms()),
	};

	return bind_write(b->stmt[S_SESSION_PUT], args, ARGS_N(args), STORE_ERR_IO);
}

/* Bind r's session name (profile, customer_ref) to ?1 and ?2 of s. */
static int bind_session_key(sqlite3_stmt *s, const store_req *r)
{
	const struct sql_arg args[] = {
		arg_text(r->skey.profile), arg_text(r->skey.customer_ref),
	};

	return bind_args(s, args, ARGS_N(args));
}

/* Column i, a sealed token, copied into a new *out; NULL when it is empty or
 * longer than any token the store seals (it does not open then). */
static int col_sealed(sqlite3_stmt *s, int i, unsigned char **out, size_t *len)
{
	const void *p = sqlite3_column_blob(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i);

	*out = NULL;
	*len = 0;
	if (p == NULL || n == 0 || n > STORE_SEALED_TOKEN_MAX)
		return 0;
	*out = malloc(n);
	if (*out == NULL)
		return STORE_ERR_NOMEM;
	memcpy(*out, p, n);
	*len = n;
	return 0;
}

/* The current row of a sessions SELECT into the next of r->sealed. */
static int read_session(sqlite3_stmt *s, store_req *r)
{
	store_sealed_session *ss = &r->sealed[r->n_sealed];
	int rc;

	if (col_text(s, 0, ss->key.profile, sizeof(ss->key.profile)) != 0 ||
	    col_text(s, 1, ss->key.customer_ref, sizeof(ss->key.customer_ref)) != 0)
		return STORE_ERR_CORRUPT;
	ss->access_expiry = sqlite3_column_int64(s, 3);
	ss->refresh_expiry = sqlite3_column_int64(s, 5);
	rc = col_sealed(s, 2, &ss->access, &ss->access_len);
	if (rc == 0)
		rc = col_sealed(s, 4, &ss->refresh, &ss->refresh_len);
	r->n_sealed++; /* what it holds is freed with the request */
	return rc;
}

static int exec_session_get(store_backend *b, store_req *r)
{
	sqlite3_stmt *s = b->stmt[S_SESSION_GET];
	int rc = bind_session_key(s, r);

	if (rc != 0)
		goto out;
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		rc = STORE_ERR_NOT_FOUND;
		goto out;
	}
	rc = rc == SQLITE_ROW ? read_session(s, r) : sql_err(rc);
out:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

static int exec_session_delete(store_backend *b, store_req *r)
{
	sqlite3_stmt *s = b->stmt[S_SESSION_DELETE];
	int rc = bind_session_key(s, r);

	if (rc == 0)
		rc = step_done(s);
	if (rc == 0 && sqlite3_changes(b->db) == 0)
		rc = STORE_ERR_NOT_FOUND;
	return rc;
}

static int exec_session_list(store_backend *b, store_req *r)
{
	sqlite3_stmt *s = b->stmt[S_SESSION_LIST];
	int rc = 0;

	if (bind_session_key(s, r) != 0 ||
	    sqlite3_bind_int(s, 3, STORE_SESSION_PAGE + 1) != SQLITE_OK) {
		rc = STORE_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		int step = sqlite3_step(s);

		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = sql_err(step);
			goto out;
		}
		if (r->n_sealed == STORE_SESSION_PAGE) { /* one more row: another page follows */
			r->res.next = &r->next_key;
			break;
		}
		rc = read_session(s, r);
		if (rc != 0)
			goto out;
		r->next_key = r->sealed[r->n_sealed - 1].key;
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
static int find_by_key(store_backend *b, store_req *r)
{
	const store_row *k = &r->in;
	const bool by_ref = k->partner_reference_no[0] != '\0';
	const bool by_method = by_ref && k->method[0] != '\0';
	const struct sql_arg args[] = {
		arg_text(k->profile),
		arg_text(by_ref ? k->partner_reference_no : k->external_id),
		arg_text(k->method), /* ?3 of S_FIND_KEY only */
	};
	sqlite3_stmt *s = b->stmt[by_method ? S_FIND_KEY : by_ref ? S_FIND_REF : S_FIND_EXTERNAL];
	int rc = bind_args(s, args, by_method ? 3 : 2);

	return rc != 0 ? rc : fetch_one(s, r);
}

static int exec_intent(store_backend *b, store_req *r)
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
	int rc = find_by_key(b, r);

	if (rc == 0)
		return STORE_ERR_EXISTS;
	if (rc != STORE_ERR_NOT_FOUND)
		return rc;
	rc = bind_write(b->stmt[S_INTENT], args, ARGS_N(args), STORE_ERR_DUPLICATE);
	if (rc == 0)
		r->res.id = sqlite3_last_insert_rowid(b->db);
	return rc;
}

/* After an UPDATE of row id that changed nothing: NOT_FOUND or STATE. */
static int why_unchanged(store_backend *b, int64_t id)
{
	sqlite3_stmt *s = b->stmt[S_STATE_OF];
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
static int changed_or_why(store_backend *b, int64_t id)
{
	return sqlite3_changes(b->db) > 0 ? 0 : why_unchanged(b, id);
}

/* Row r->id, in state r->in.state, is sent again: its attempt so far goes to
 * attempts, the row takes the new attempt's fields and becomes PENDING. */
static int exec_reissue(store_backend *b, store_req *r)
{
	const store_row *in = &r->in;
	const char *from = db_state_name(in->state);
	const int64_t now = clock_wall_ms();
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

	rc = bind_write(b->stmt[S_ATTEMPT_SAVE], save, ARGS_N(save), STORE_ERR_DUPLICATE);
	if (rc == 0)
		rc = changed_or_why(b, r->id);
	if (rc == 0)
		rc = bind_write(b->stmt[S_REISSUE], reissue, ARGS_N(reissue), STORE_ERR_DUPLICATE);
	if (rc == 0)
		rc = changed_or_why(b, r->id);
	return rc;
}

static int exec_outcome(store_backend *b, store_req *r)
{
	const store_row *in = &r->in;
	const struct sql_arg args[] = {
		arg_int(r->id), arg_text(db_state_name(in->state)),
		arg_int(clock_wall_ms()), arg_int((int)in->http_status),
		arg_text(in->response_code), arg_text(in->response_message),
		arg_blob(r->in_blob, in->response_len), arg_int(in->next_attempt_ms),
		arg_text(in->detail),
	};
	int rc = bind_write(b->stmt[S_OUTCOME], args, ARGS_N(args), STORE_ERR_IO);

	return rc == 0 ? changed_or_why(b, r->id) : rc;
}

static int exec_reconciled(store_backend *b, store_req *r)
{
	const struct sql_arg args[] = {
		arg_int(r->id), arg_text(db_state_name(r->in.state)),
		arg_int(clock_wall_ms()), arg_int(r->in.next_attempt_ms),
		arg_text(r->in.detail),
	};
	int rc = bind_write(b->stmt[S_RECONCILED], args, ARGS_N(args), STORE_ERR_IO);

	return rc == 0 ? changed_or_why(b, r->id) : rc;
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

static int exec_list(store_backend *b, store_req *r)
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
		arg_text(db_state_name(r->in.state)), arg_int(r->from_ms),
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
	rc = sqlite3_prepare_v2(b->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sql_err(rc);
	rc = bind_args(s, args, ARGS_N(args));
	if (rc == 0)
		rc = fetch_rows(s, r, true);
	sqlite3_finalize(s);
	return rc;
}

static int exec_due(store_backend *b, store_req *r)
{
	sqlite3_stmt *s = b->stmt[S_DUE];
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
static int exec_prune(store_backend *b, store_req *r)
{
	const struct sql_arg args[] = { arg_int(r->before_ms), arg_int(r->limit) };
	int rc = bind_write(b->stmt[S_PRUNE_ATTEMPTS], args, ARGS_N(args), STORE_ERR_IO);

	if (rc == 0)
		rc = bind_write(b->stmt[S_PRUNE_JOURNAL], args, ARGS_N(args), STORE_ERR_IO);
	if (rc == 0)
		r->res.n_pruned = (unsigned)sqlite3_changes(b->db);
	return rc;
}

static int sqlite_exec(store_backend *b, store_req *r)
{
	switch (r->op) {
	case STORE_OP_SESSION_PUT:
		return exec_session_put(b, r);
	case STORE_OP_SESSION_GET:
		return exec_session_get(b, r);
	case STORE_OP_SESSION_DELETE:
		return exec_session_delete(b, r);
	case STORE_OP_SESSION_LIST:
		return exec_session_list(b, r);
	case STORE_OP_INTENT:
		return exec_intent(b, r);
	case STORE_OP_OUTCOME:
		return exec_outcome(b, r);
	case STORE_OP_RECONCILED:
		return exec_reconciled(b, r);
	case STORE_OP_GET:
		return find_by_key(b, r);
	case STORE_OP_LIST:
		return exec_list(b, r);
	case STORE_OP_DUE:
		return exec_due(b, r);
	case STORE_OP_REISSUE:
		return exec_reissue(b, r);
	case STORE_OP_PRUNE:
		return exec_prune(b, r);
	default: /* the fleet's: a shared backend's only */
		return STORE_ERR_INVALID;
	}
}

/* ---- the batch: one transaction, a savepoint per request ---- */

static int sqlite_batch_begin(store_backend *b)
{
	return step_done(b->stmt[S_BEGIN]);
}

static int sqlite_req_begin(store_backend *b)
{
	return step_done(b->stmt[S_SAVEPOINT]) != 0 ? STORE_ERR_IO : 0;
}

static void sqlite_req_end(store_backend *b, bool undo)
{
	if (undo)
		(void)step_done(b->stmt[S_ROLLBACK_TO]);
	(void)step_done(b->stmt[S_RELEASE]);
}

static int sqlite_batch_commit(store_backend *b)
{
	if (step_done(b->stmt[S_COMMIT]) == 0)
		return 0;
	(void)step_done(b->stmt[S_ROLLBACK]);
	return STORE_ERR_IO;
}

static void sqlite_close(store_backend *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < S_COUNT; i++)
		sqlite3_finalize(b->stmt[i]);
	sqlite3_close(b->db);
	free(b);
}

/* ---- opening ---- */

static int join_path(char out[STORE_PATH_MAX], const char *dir, const char *name)
{
	int n = snprintf(out, STORE_PATH_MAX, "%s/%s", dir, name);

	return n > 0 && n < STORE_PATH_MAX ? 0 : STORE_ERR_INVALID;
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

static int sqlite_key_check_get(store_backend *b, unsigned char **v, size_t *n,
				char err[STORE_ERR_MAX])
{
	sqlite3_stmt *s = NULL;
	const void *p = NULL;
	size_t len = 0;
	int rc = key_check_read(b->db, &s, &p, &len);

	*v = NULL;
	*n = 0;
	if (rc == 0) {
		*v = malloc(len > 0 ? len : 1);
		if (*v == NULL)
			rc = STORE_ERR_NOMEM;
		else if (len > 0 && p != NULL)
			memcpy(*v, p, len);
		*n = p != NULL ? len : 0;
	}
	if (rc != 0 && rc != STORE_ERR_NOT_FOUND) {
		char why[STORE_ERR_MAX / 2];

		db_reason(b->db, sqlite3_errcode(b->db), why, sizeof(why));
		rc = refuse(rc, err, b->path, why);
	}
	sqlite3_finalize(s);
	return rc;
}

static int sqlite_key_check_put(store_backend *b, const unsigned char *v, size_t n,
				char err[STORE_ERR_MAX])
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(b->db,
				    "INSERT INTO meta (name, value) VALUES ('key_check', ?1)", -1,
				    &s, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(s, 1, v, (int)n, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(b->db);
	sqlite3_finalize(s);
	if (rc != SQLITE_OK) {
		char why[STORE_ERR_MAX / 2];

		db_reason(b->db, sqlite3_errcode(b->db), why, sizeof(why));
		return refuse(sql_err(rc), err, b->path, why);
	}
	return 0;
}

/* Open path read-write and make it ours: its mode, settings, integrity_check. */
static int db_open(store_backend *b, const char *path, char err[STORE_ERR_MAX])
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
	rc = sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		db_reason(b->db, rc, why, sizeof(why));
		return refuse(sql_err(rc), err, path, why);
	}
	sqlite3_extended_result_codes(b->db, 1);
	sqlite3_busy_timeout(b->db, BUSY_TIMEOUT_MS);
	sqlite3_db_config(b->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	if (sqlite3_db_readonly(b->db, "main") == 1)
		return refuse(STORE_ERR_IO, err, path, "read-only");
	rc = db_check(b->db, true, NULL, why, sizeof(why));
	if (rc != 0)
		return refuse(rc, err, path, why);
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		rc = sqlite3_exec(b->db, settings[i], NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			db_reason(b->db, rc, why, sizeof(why));
			return refuse(sql_err(rc), err, path, why);
		}
	}
	if (db_int(b->db, "SELECT journal_mode = 'wal' FROM pragma_journal_mode", &wal) != 0 ||
	    wal != 1)
		return refuse(STORE_ERR_IO, err, path, "WAL journal mode is not available");
	return 0;
}

/* A new store is opened before any call is in flight: its PENDING rows are
 * orphans of a daemon that stopped. */
static int sqlite_adopt_orphans(store_backend *b, char err[STORE_ERR_MAX])
{
	sqlite3_stmt *s = NULL;
	int64_t now = clock_wall_ms();
	int rc = sqlite3_prepare_v2(b->db,
				    "UPDATE journal SET state = 'UNKNOWN', updated_ms = ?1, "
				    "next_attempt_ms = ?1, detail = ?2 WHERE state = 'PENDING'",
				    -1, &s, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_bind_int64(s, 1, now)) == SQLITE_OK &&
	    (rc = sqlite3_bind_text(s, 2, ORPHAN_DETAIL, -1, SQLITE_STATIC)) == SQLITE_OK)
		rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(b->db);
	sqlite3_finalize(s);
	if (rc != SQLITE_OK) {
		char why[STORE_ERR_MAX / 2];

		db_reason(b->db, rc, why, sizeof(why));
		return refuse(sql_err(rc), err, b->path, why);
	}
	return 0;
}

/* Open <state_dir>/state.db: its checks, the schema, the statements. */
static int sqlite_open(const store_where *w, store_counters *c, store_backend **out,
		       char err[STORE_ERR_MAX])
{
	const char *state_dir = w->state_dir;
	store_backend *b;
	int rc;

	(void)c; /* SQLite counts nothing of its own: always connected */
	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (b == NULL) {
		text_printf(err, STORE_ERR_MAX, "out of memory");
		return STORE_ERR_NOMEM;
	}
	if (join_path(b->path, state_dir, STORE_DB_NAME) != 0) {
		text_printf(err, STORE_ERR_MAX, "state directory %s: path too long", state_dir);
		free(b);
		return STORE_ERR_INVALID;
	}
	rc = db_open(b, b->path, err);
	if (rc == 0)
		rc = db_schema(b->db, b->path, err);
	for (size_t i = 0; rc == 0 && i < S_COUNT; i++) {
		int p = sqlite3_prepare_v3(b->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					   &b->stmt[i], NULL);

		if (p != SQLITE_OK) {
			char why[STORE_ERR_MAX / 2];

			db_reason(b->db, p, why, sizeof(why));
			rc = refuse(sql_err(p), err, b->path, why);
		}
	}
	if (rc != 0) {
		sqlite_close(b);
		return rc;
	}
	*out = b;
	return 0;
}

static const char *sqlite_where(const store_backend *b)
{
	return b->path;
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

static int sqlite_verify(const store_where *w, FILE *report)
{
	const char *path = w->state_dir;
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
	for (size_t i = STORE_PENDING; i < DB_STATES_N; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM journal WHERE state = '%s'",
			 db_states[i]);
		rc = db_int(db, sql, &n);
		if (rc != 0)
			goto out;
		fprintf(report, "  %s: %" PRId64 "\n", db_states[i], n);
	}
out:
	sqlite3_close(db); /* store_verify writes the result */
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

static int sqlite_export_journal(const store_where *w, FILE *out)
{
	const char *path = w->state_dir;
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

/* ---- the migration's source ---- */

static int walk_sessions(sqlite3 *db, const store_walk *w)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT profile, customer_ref, access_token, access_expiry, "
				    "refresh_token, refresh_expiry FROM sessions "
				    "ORDER BY profile, customer_ref", -1, &s, NULL);

	if (rc != SQLITE_OK)
		return sql_err(rc);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		store_sealed_session ss;
		int c;

		memset(&ss, 0, sizeof(ss));
		if (col_text(s, 0, ss.key.profile, sizeof(ss.key.profile)) != 0 ||
		    col_text(s, 1, ss.key.customer_ref, sizeof(ss.key.customer_ref)) != 0) {
			rc = STORE_ERR_CORRUPT;
			break;
		}
		ss.access_expiry = sqlite3_column_int64(s, 3);
		ss.refresh_expiry = sqlite3_column_int64(s, 5);
		/* as stored, whatever their length: the copy is exact */
		ss.access = (unsigned char *)sqlite3_column_blob(s, 2);
		ss.access_len = (size_t)sqlite3_column_bytes(s, 2);
		ss.refresh = (unsigned char *)sqlite3_column_blob(s, 4);
		ss.refresh_len = (size_t)sqlite3_column_bytes(s, 4);
		c = w->session != NULL ? w->session(&ss, w->arg) : 0;
		if (c != 0) {
			sqlite3_finalize(s);
			return c;
		}
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : rc < 0 ? rc : sql_err(rc);
}

static int walk_attempts(sqlite3_stmt *s, int64_t id, const store_walk *w)
{
	int rc;

	if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK)
		return STORE_ERR_NOMEM;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		store_attempt_row a;
		char state[16];
		int c;

		memset(&a, 0, sizeof(a));
		a.journal_id = id;
		if (col_text(s, 0, a.external_id, sizeof(a.external_id)) != 0 ||
		    col_text(s, 1, a.request_time, sizeof(a.request_time)) != 0 ||
		    col_text(s, 2, a.body_sha256, sizeof(a.body_sha256)) != 0 ||
		    col_text(s, 3, state, sizeof(state)) != 0 ||
		    db_state_parse(state, &a.state) != 0 ||
		    col_text(s, 5, a.response_code, sizeof(a.response_code)) != 0) {
			rc = STORE_ERR_CORRUPT;
			break;
		}
		a.http_status = (unsigned)sqlite3_column_int(s, 4);
		a.replaced_ms = sqlite3_column_int64(s, 6);
		c = w->attempt != NULL ? w->attempt(&a, w->arg) : 0;
		if (c != 0) {
			sqlite3_reset(s);
			return c;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : rc < 0 ? rc : sql_err(rc);
}

static int walk_journal(sqlite3 *db, const store_walk *w)
{
	sqlite3_stmt *s = NULL, *att = NULL;
	unsigned char *blob = NULL;
	int rc = sqlite3_prepare_v2(db, ROW_WITH_RESPONSE "ORDER BY id", -1, &s, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT external_id, request_time, body_sha256, state, "
					"http_status, response_code, replaced_ms FROM attempts "
					"WHERE journal_id = ?1 ORDER BY rowid", -1, &att, NULL);
	if (rc != SQLITE_OK) {
		rc = sql_err(rc);
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		store_row row;
		int c = read_row(s, &row, &blob);

		if (c == 0 && w->row != NULL)
			c = w->row(&row, w->arg);
		free(blob);
		blob = NULL;
		if (c == 0)
			c = walk_attempts(att, row.id, w);
		if (c != 0) {
			rc = c;
			goto out;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : sql_err(rc);
out:
	sqlite3_finalize(s);
	sqlite3_finalize(att);
	return rc;
}

int store_sqlite_walk(const char *state_dir, const store_walk *w, char err[STORE_ERR_MAX])
{
	char name[STORE_PATH_MAX], why[STORE_ERR_MAX / 2] = "";
	sqlite3_stmt *s = NULL;
	const void *v = NULL;
	sqlite3 *db = NULL;
	size_t n = 0;
	int rc;

	rc = open_readonly(state_dir, &db, name, why, sizeof(why));
	if (rc != 0) {
		text_printf(err, STORE_ERR_MAX, "SQLite state %s: %s", state_dir, why);
		return rc;
	}
	rc = db_check(db, true, NULL, why, sizeof(why));
	if (rc == 0) {
		int64_t version = 0;

		rc = db_int(db, "SELECT version FROM schema_version", &version);
		if (rc != 0 || version != STORE_SCHEMA_VERSION) {
			text_printf(why, sizeof(why), "not a doku-bridge state database of schema "
				    "version %d", STORE_SCHEMA_VERSION);
			rc = rc == STORE_ERR_CORRUPT ? rc : STORE_ERR_VERSION;
		}
	}
	if (rc == 0 && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		db_reason(db, sqlite3_errcode(db), why, sizeof(why));
		rc = STORE_ERR_IO;
	}
	if (rc == 0) {
		int k = key_check_read(db, &s, &v, &n);

		if (k == 0 && w->key_check != NULL)
			rc = w->key_check(v, n, w->arg);
		else if (k != 0 && k != STORE_ERR_NOT_FOUND)
			rc = k;
		sqlite3_finalize(s);
	}
	if (rc == 0)
		rc = walk_sessions(db, w);
	if (rc == 0)
		rc = walk_journal(db, w);
	if (rc < 0 && why[0] == '\0' && db != NULL && sqlite3_errcode(db) != SQLITE_OK)
		db_reason(db, sqlite3_errcode(db), why, sizeof(why));
	if (rc < 0 && err[0] == '\0')
		text_printf(err, STORE_ERR_MAX, "SQLite state %s: %s", name,
			    why[0] != '\0' ? why : "cannot be read");
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

const store_backend_ops *store_sqlite_backend(void)
{
	static const store_backend_ops ops = {
		.name = "sqlite",
		.shared = false,
		.open = sqlite_open,
		.beat = NULL,
		.where = sqlite_where,
		.key_check_get = sqlite_key_check_get,
		.key_check_put = sqlite_key_check_put,
		.adopt_orphans = sqlite_adopt_orphans,
		.close = sqlite_close,
		.batch_begin = sqlite_batch_begin,
		.req_begin = sqlite_req_begin,
		.req_end = sqlite_req_end,
		.batch_commit = sqlite_batch_commit,
		.exec = sqlite_exec,
		.verify = sqlite_verify,
		.export_journal = sqlite_export_journal,
	};

	return &ops;
}
