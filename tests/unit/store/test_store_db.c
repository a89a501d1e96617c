/* store.c against a real libuv loop and a real SQLite file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "store.h"
#include "store_test.h"

#define GOT_ROWS_MAX 128
#define GOT_SESSIONS_MAX 300
#define GOT_TOKEN_MAX 128
#define GOT_BLOB_MAX 1024
#define SHA_A "9ae74bb7fb2c43ac20b00996322a7cea1741c0492a7559bdefbd17547f0e3936"
#define NOBODY 65534

static const unsigned char key1[SEALED_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[SEALED_KEY_LEN] = "fedcba9876543210fedcba9876543210";

struct fx {
	uv_loop_t loop;
	char dir[TEST_DIR_MAX];
	char db[TEST_DIR_MAX + 16];
	sealed_key *key;
	store *st;
};

struct got_session {
	char profile[STORE_PROFILE_MAX + 1], ref[STORE_REF_MAX + 1];
	char access[GOT_TOKEN_MAX], refresh[GOT_TOKEN_MAX];
	int64_t access_expiry, refresh_expiry;
};

/* What a callback saw, copied out of the store's result. */
struct got {
	bool done;
	int status;
	int64_t id, next_before_id;
	size_t n_rows, n_sessions, n_bad;
	store_row rows[GOT_ROWS_MAX];
	unsigned char blob[GOT_BLOB_MAX];
	size_t blob_len;
	bool has_blob;
	struct got_session sessions[GOT_SESSIONS_MAX];
	store_session_key bad[GOT_SESSIONS_MAX];
	bool has_next;
	store_session_key next;
	unsigned n_pruned;
	/* run inside the callback, before the result goes */
	void (*check)(struct got *g, const store_result *res);
	const char *db;
	char seen[16];
};

static struct got *got_new(void)
{
	struct got *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	return g;
}

static void on_result(const store_result *res, void *data)
{
	struct got *g = data;

	assert_false(g->done);
	g->done = true;
	g->status = res->status;
	g->id = res->id;
	g->next_before_id = res->next_before_id;
	g->n_pruned = res->n_pruned;
	assert_true(res->n_rows <= GOT_ROWS_MAX);
	g->n_rows = res->n_rows;
	for (size_t i = 0; i < res->n_rows; i++)
		g->rows[i] = res->rows[i];
	if (res->n_rows == 1 && res->rows[0].response != NULL) {
		assert_true(res->rows[0].response_len <= GOT_BLOB_MAX);
		memcpy(g->blob, res->rows[0].response, res->rows[0].response_len);
		g->blob_len = res->rows[0].response_len;
		g->has_blob = true;
	}
	for (size_t i = 0; i < res->n_rows; i++)
		g->rows[i].response = NULL;
	assert_true(res->n_sessions <= GOT_SESSIONS_MAX);
	g->n_sessions = res->n_sessions;
	for (size_t i = 0; i < res->n_sessions; i++) {
		const store_session *s = &res->sessions[i];
		struct got_session *c = &g->sessions[i];

		assert_true(s->access_len < GOT_TOKEN_MAX && s->refresh_len < GOT_TOKEN_MAX);
		assert_int_equal(strlen(s->access_token), s->access_len);
		snprintf(c->profile, sizeof(c->profile), "%s", s->profile);
		snprintf(c->ref, sizeof(c->ref), "%s", s->customer_ref);
		memcpy(c->access, s->access_token, s->access_len + 1);
		memcpy(c->refresh, s->refresh_token, s->refresh_len + 1);
		c->access_expiry = s->access_expiry;
		c->refresh_expiry = s->refresh_expiry;
	}
	g->n_bad = res->n_bad;
	for (size_t i = 0; i < res->n_bad; i++)
		g->bad[i] = res->bad[i];
	g->has_next = res->next != NULL;
	if (res->next != NULL)
		g->next = *res->next;
	if (g->check != NULL)
		g->check(g, res);
}

static void wait_for(struct fx *f, struct got *g)
{
	while (!g->done)
		uv_run(&f->loop, UV_RUN_ONCE);
}

static void open_store(struct fx *f, sealed_key *key)
{
	char err[STORE_ERR_MAX];
	int rc = store_open(&f->loop, f->dir, key, &f->st, err);

	if (rc != 0)
		fail_msg("store_open: %d %s", rc, err);
}

static void on_closed(void *data)
{
	*(bool *)data = true;
}

static void close_store(struct fx *f)
{
	bool closed = false;

	if (f->st == NULL)
		return;
	store_close(f->st, on_closed, &closed);
	while (!closed)
		uv_run(&f->loop, UV_RUN_ONCE);
	f->st = NULL;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(test_dir_make(f->dir), 0);
	snprintf(f->db, sizeof(f->db), "%s/%s", f->dir, STORE_DB_NAME);
	assert_int_equal(sealed_key_new(key1, &f->key), 0);
	open_store(f, f->key);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	close_store(f);
	assert_int_equal(uv_loop_close(&f->loop), 0); /* no handle left behind */
	test_dir_remove(f->dir);
	sealed_key_free(f->key);
	free(f);
	return 0;
}

/* A connection of the test's own to the database file. */
static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* ---- journal helpers ---- */

struct intent_args {
	const char *method, *profile, *customer, *ref, *ext;
	int64_t created_ms;
};

static void intent(struct fx *f, const struct intent_args *a, struct got *g)
{
	store_intent in = {
		.method = a->method != NULL ? a->method : "Purchase",
		.profile = a->profile != NULL ? a->profile : "default",
		.customer_ref = a->customer != NULL ? a->customer : "cust-1",
		.partner_reference_no = a->ref,
		.external_id = a->ext,
		.amount_value = "10000.00",
		.amount_currency = "IDR",
		.body_sha256 = SHA_A,
		.request_time = "2024-01-01T10:00:00+07:00",
		.created_ms = a->created_ms,
	};

	assert_int_equal(store_journal_intent(f->st, &in, on_result, g), 0);
	wait_for(f, g);
}

static int64_t add_intent(struct fx *f, const char *ref, const char *ext)
{
	struct got *g = got_new();
	struct intent_args a = { .ref = ref, .ext = ext };
	int64_t id;

	intent(f, &a, g);
	assert_int_equal(g->status, 0);
	assert_true(g->id > 0);
	id = g->id;
	free(g);
	return id;
}

static int outcome(struct fx *f, int64_t id, enum store_state state, const char *blob,
		   int64_t next)
{
	struct got *g = got_new();
	store_outcome o = {
		.state = state,
		.http_status = state == STORE_DONE ? 200 : 0,
		.response_code = state == STORE_DONE ? "2005400" : NULL,
		.response_message = state == STORE_DONE ? "Successful" : "timeout",
		.response = blob,
		.response_len = blob != NULL ? strlen(blob) : 0,
		.next_attempt_ms = next,
	};
	int rc;

	assert_int_equal(store_journal_outcome(f->st, id, &o, on_result, g), 0);
	wait_for(f, g);
	rc = g->status;
	free(g);
	return rc;
}

static int reconciled(struct fx *f, int64_t id, enum store_state state, int64_t next)
{
	struct got *g = got_new();
	int rc;

	assert_int_equal(store_journal_reconciled(f->st, id, state, next, "asked", on_result, g),
			 0);
	wait_for(f, g);
	rc = g->status;
	free(g);
	return rc;
}

/* Row id, via store_journal_get by external id ext. */
static void get_ext(struct fx *f, const char *profile, const char *ext, struct got *g)
{
	store_key k = { .profile = profile, .external_id = ext };

	assert_int_equal(store_journal_get(f->st, &k, on_result, g), 0);
	wait_for(f, g);
}

/* ---- tests: opening ---- */

static void test_open_creates(void **state)
{
	struct fx *f = *state;
	struct stat sb;
	sqlite3 *db;
	sqlite3_stmt *s;

	assert_int_equal(stat(f->db, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	db = raw_open(f->db);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &s, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), STORE_SCHEMA_VERSION);
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static void test_open_missing_dir_made(void **state)
{
	struct fx *f = *state;
	char sub[TEST_DIR_MAX + 16], err[STORE_ERR_MAX];
	struct stat sb;
	store *st = NULL;
	bool closed = false;

	snprintf(sub, sizeof(sub), "%s/sub", f->dir);
	assert_int_equal(store_open(&f->loop, sub, f->key, &st, err), 0);
	assert_int_equal(stat(sub, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	store_close(st, on_closed, &closed);
	while (!closed)
		uv_run(&f->loop, UV_RUN_ONCE);
	test_dir_remove(sub);
}

static void test_open_locked(void **state)
{
	struct fx *f = *state;
	char err[STORE_ERR_MAX];
	store *st = (store *)1;

	assert_int_equal(store_open(&f->loop, f->dir, f->key, &st, err), STORE_ERR_LOCKED);
	assert_null(st);
	assert_non_null(strstr(err, "in use by another process"));
}

static void test_open_wrong_key(void **state)
{
	struct fx *f = *state;
	char err[STORE_ERR_MAX];
	sealed_key *other;
	store *st = NULL;

	close_store(f);
	assert_int_equal(sealed_key_new(key2, &other), 0);
	assert_int_equal(store_open(&f->loop, f->dir, other, &st, err), STORE_ERR_KEY);
	assert_null(st);
	assert_non_null(strstr(err, "another key"));
	sealed_key_free(other);
	open_store(f, f->key); /* the right key still opens it */
}

static void test_open_versions(void **state)
{
	struct fx *f = *state;
	char err[STORE_ERR_MAX];
	store *st = NULL;

	close_store(f);
	raw_exec(f->db, "UPDATE schema_version SET version = 99");
	assert_int_equal(store_open(&f->loop, f->dir, f->key, &st, err), STORE_ERR_VERSION);
	assert_non_null(strstr(err, "schema version 99"));
	raw_exec(f->db, "DROP TABLE schema_version");
	assert_int_equal(store_open(&f->loop, f->dir, f->key, &st, err), STORE_ERR_VERSION);
	assert_non_null(strstr(err, "not a doku-bridge state database"));
	assert_null(st);
}

/* Overwrite len bytes at off of path with byte. */
static void smash(const char *path, off_t off, size_t len, unsigned char byte)
{
	unsigned char buf[8192];
	FILE *fp = fopen(path, "r+b");

	assert_non_null(fp);
	assert_true(len <= sizeof(buf));
	memset(buf, byte, len);
	assert_int_equal(fseeko(fp, off, SEEK_SET), 0);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* Counts the results of many requests. */
struct counter {
	int done, failed;
};

static void on_count(const store_result *res, void *data)
{
	struct counter *c = data;

	c->done++;
	if (res->status != 0)
		c->failed++;
}

static void fill(struct fx *f, int n, const char *prefix)
{
	store_intent in = { .method = "Purchase", .profile = "default", .customer_ref = "c",
			    .amount_value = "1.00", .amount_currency = "IDR",
			    .body_sha256 = SHA_A, .request_time = "2024-01-01T10:00:00+07:00" };
	struct counter c = { 0 };
	char ref[32], ext[40];

	for (int i = 0; i < n; i++) {
		snprintf(ref, sizeof(ref), "%s-%06d", prefix, i);
		snprintf(ext, sizeof(ext), "%d%08d", (int)strlen(prefix), i);
		in.partner_reference_no = ref;
		in.external_id = ext;
		assert_int_equal(store_journal_intent(f->st, &in, on_count, &c), 0);
	}
	while (c.done < n)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(c.failed, 0);
}

static void test_open_corrupt(void **state)
{
	struct fx *f = *state;
	char err[STORE_ERR_MAX], *report = NULL;
	size_t report_len = 0;
	struct stat sb;
	store *st = NULL;
	FILE *mem;

	fill(f, 3000, "corrupt");
	close_store(f);
	assert_int_equal(stat(f->db, &sb), 0);
	assert_true(sb.st_size > 256 * 1024);
	/* a page in the middle */
	smash(f->db, (sb.st_size / 2) & ~(off_t)4095, 4096, 0xA5);
	assert_int_equal(store_open(&f->loop, f->dir, f->key, &st, err), STORE_ERR_CORRUPT);
	assert_null(st);
	assert_non_null(strstr(err, "is corrupt"));
	assert_non_null(strstr(err, f->db));
	mem = open_memstream(&report, &report_len);
	assert_non_null(mem);
	assert_int_equal(store_verify(f->dir, mem), STORE_ERR_CORRUPT);
	fclose(mem);
	assert_non_null(strstr(report, "problem:"));
	assert_non_null(strstr(report, "result: database corrupt"));
	free(report);
	/* the header too: not a database at all */
	smash(f->db, 0, 100, 0x5A);
	assert_int_equal(store_open(&f->loop, f->dir, f->key, &st, err), STORE_ERR_CORRUPT);
	assert_non_null(strstr(err, "not a database"));
}

/* In a child as nobody (root reads everything) or as ourselves after
 * chmod 000: the store must refuse a database it cannot read. */
static void test_open_unreadable(void **state)
{
	struct fx *f = *state;
	char lock[TEST_DIR_MAX + 16];
	int status = 0;
	pid_t pid;

	close_store(f);
	snprintf(lock, sizeof(lock), "%s/%s", f->dir, STORE_LOCK_NAME);
	assert_int_equal(unlink(lock), 0);
	if (geteuid() == 0)
		assert_int_equal(chmod(f->dir, 0777), 0);
	else
		assert_int_equal(chmod(f->db, 0), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[STORE_ERR_MAX];
		uv_loop_t loop;
		store *st = NULL;
		int rc;

		if (geteuid() == 0 && (setgid(NOBODY) != 0 || setuid(NOBODY) != 0))
			_exit(3);
		if (uv_loop_init(&loop) != 0)
			_exit(4);
		rc = store_open(&loop, f->dir, NULL, &st, err);
		if (rc != STORE_ERR_IO || st != NULL || strstr(err, "Permission denied") == NULL ||
		    strstr(err, STORE_DB_NAME) == NULL) {
			fprintf(stderr, "store_open as uid %u: %d %s\n", (unsigned)geteuid(), rc, err);
			_exit(1);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	chmod(f->db, 0600);
	unlink(lock); /* nobody's */
}

/* ---- tests: sessions ---- */

static void put_session(struct fx *f, const char *profile, const char *ref, const char *acc,
			const char *refresh)
{
	struct got *g = got_new();
	store_session s = { .profile = profile, .customer_ref = ref,
			    .access_token = acc, .access_len = strlen(acc),
			    .access_expiry = 1700000000, .refresh_token = refresh,
			    .refresh_len = strlen(refresh), .refresh_expiry = 1800000000 };

	assert_int_equal(store_session_put(f->st, &s, on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->status, 0);
	free(g);
}

static void get_session(struct fx *f, const char *profile, const char *ref, struct got *g)
{
	assert_int_equal(store_session_get(f->st, profile, ref, on_result, g), 0);
	wait_for(f, g);
}

static void list_sessions(struct fx *f, const store_session_key *after, struct got *g)
{
	assert_int_equal(store_session_list(f->st, after, on_result, g), 0);
	wait_for(f, g);
}

static void test_session_round_trip(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	sqlite3 *db;
	sqlite3_stmt *s;

	put_session(f, "default", "cust-1", "access-token-1", "refresh-token-1");
	get_session(f, "default", "cust-1", g);
	assert_int_equal(g->status, 0);
	assert_int_equal(g->n_sessions, 1);
	assert_string_equal(g->sessions[0].access, "access-token-1");
	assert_string_equal(g->sessions[0].refresh, "refresh-token-1");
	assert_int_equal(g->sessions[0].access_expiry, 1700000000);
	assert_int_equal(g->sessions[0].refresh_expiry, 1800000000);
	/* at rest the tokens are not in the clear */
	db = raw_open(f->db);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sessions WHERE "
						"instr(access_token, 'access-token') > 0 OR "
						"instr(refresh_token, 'refresh-token') > 0",
					    -1, &s, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	/* replace */
	put_session(f, "default", "cust-1", "access-token-2", "");
	memset(g, 0, sizeof(*g));
	get_session(f, "default", "cust-1", g);
	assert_string_equal(g->sessions[0].access, "access-token-2");
	assert_string_equal(g->sessions[0].refresh, "");
	/* delete */
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_session_delete(f->st, "default", "cust-1", on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->status, 0);
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_session_delete(f->st, "default", "cust-1", on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->status, STORE_ERR_NOT_FOUND);
	memset(g, 0, sizeof(*g));
	get_session(f, "default", "cust-1", g);
	assert_int_equal(g->status, STORE_ERR_NOT_FOUND);
	assert_int_equal(g->n_sessions, 0);
	free(g);
}

static void test_session_refused_args(void **state)
{
	struct fx *f = *state;
	char big[STORE_TOKEN_MAX + 2];
	store_session s = { .profile = "default", .customer_ref = "c", .access_token = "a",
			    .access_len = 1 };
	struct got g;

	assert_int_equal(store_session_get(f->st, "", "c", on_result, &g), STORE_ERR_INVALID);
	assert_int_equal(store_session_get(f->st, "default",
					   "0123456789012345678901234567890123456789012345678901234567890123x",
					   on_result, &g),
			 STORE_ERR_INVALID);
	memset(big, 'x', sizeof(big));
	s.access_token = big;
	s.access_len = STORE_TOKEN_MAX + 1;
	assert_int_equal(store_session_put(f->st, &s, on_result, &g), STORE_ERR_TOO_BIG);
	s.access_len = 0;
	assert_int_equal(store_session_put(f->st, &s, on_result, &g), STORE_ERR_INVALID);
}

static void test_session_tampered(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	const char *names[] = { "a-flipped", "b-good", "c-moved", "d-swapped", "e-good" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		put_session(f, "default", names[i], "acc", "ref");
	/* a changed byte; a token moved from another row; the two columns
	   swapped. The byte is made another, whatever it was: writing 0xff left
	   a token whose byte 21 was 0xff as it was, and one run in 256 failed. */
	raw_exec(f->db, "UPDATE sessions SET access_token = substr(access_token, 1, 20) || "
			"CASE WHEN substr(access_token, 21, 1) = x'00' THEN x'01' ELSE x'00' END "
			"|| substr(access_token, 22) WHERE customer_ref = 'a-flipped'");
	raw_exec(f->db, "UPDATE sessions SET access_token = (SELECT access_token FROM sessions "
			"WHERE customer_ref = 'b-good') WHERE customer_ref = 'c-moved'");
	raw_exec(f->db, "UPDATE sessions SET access_token = refresh_token, "
			"refresh_token = access_token WHERE customer_ref = 'd-swapped'");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		bool good = strstr(names[i], "good") != NULL;

		memset(g, 0, sizeof(*g));
		get_session(f, "default", names[i], g);
		assert_int_equal(g->status, good ? 0 : STORE_ERR_SEALED);
		assert_int_equal(g->n_sessions, good ? 1 : 0);
		assert_int_equal(g->n_bad, good ? 0 : 1);
		if (!good)
			assert_string_equal(g->bad[0].customer_ref, names[i]);
	}
	memset(g, 0, sizeof(*g));
	list_sessions(f, NULL, g);
	assert_int_equal(g->status, 0);
	assert_int_equal(g->n_sessions, 2);
	assert_string_equal(g->sessions[0].ref, "b-good");
	assert_string_equal(g->sessions[1].ref, "e-good");
	assert_int_equal(g->n_bad, 3);
	assert_string_equal(g->bad[0].customer_ref, "a-flipped");
	assert_string_equal(g->bad[1].customer_ref, "c-moved");
	assert_string_equal(g->bad[2].customer_ref, "d-swapped");
	assert_false(g->has_next);
	free(g);
}

static void test_session_list_pages(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	enum { N = STORE_SESSION_PAGE + 44 };
	store_session s = { .profile = "p", .access_token = "acc", .access_len = 3,
			    .refresh_token = "ref", .refresh_len = 3 };
	struct counter c = { 0 };
	char ref[16];
	int seen = 0;

	for (int i = 0; i < N; i++) {
		snprintf(ref, sizeof(ref), "r%04d", i);
		s.customer_ref = ref;
		assert_int_equal(store_session_put(f->st, &s, on_count, &c), 0);
	}
	while (c.done < N)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(c.failed, 0);
	list_sessions(f, NULL, g);
	for (;;) {
		assert_int_equal(g->status, 0);
		for (size_t i = 0; i < g->n_sessions; i++, seen++) {
			snprintf(ref, sizeof(ref), "r%04d", seen);
			assert_string_equal(g->sessions[i].ref, ref);
		}
		if (!g->has_next)
			break;
		assert_int_equal(g->n_sessions, STORE_SESSION_PAGE);
		{
			store_session_key after = g->next;

			memset(g, 0, sizeof(*g));
			list_sessions(f, &after, g);
		}
	}
	assert_int_equal(seen, N);
	free(g);
}

static void test_no_key(void **state)
{
	struct fx *f = *state;
	store_session s = { .profile = "p", .customer_ref = "c", .access_token = "a",
			    .access_len = 1 };
	struct got g;

	close_store(f);
	open_store(f, NULL);
	assert_int_equal(store_session_put(f->st, &s, on_result, &g), STORE_ERR_NO_KEY);
	assert_int_equal(store_session_list(f->st, NULL, on_result, &g), STORE_ERR_NO_KEY);
	(void)add_intent(f, "no-key-ref", "1001");
}

/* ---- tests: the journal ---- */

static void check_durable(struct got *g, const store_result *res)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;

	/* another connection sees the row before this callback returns */
	assert_int_equal(res->status, 0);
	assert_int_equal(sqlite3_open_v2(g->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT state FROM journal WHERE id = ?1", -1, &s,
					    NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(s, 1, res->id);
	if (sqlite3_step(s) == SQLITE_ROW)
		snprintf(g->seen, sizeof(g->seen), "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static void test_intent_durable_before_callback(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	struct intent_args a = { .ref = "INV-1", .ext = "100001" };

	g->check = check_durable;
	g->db = f->db;
	intent(f, &a, g);
	assert_int_equal(g->status, 0);
	assert_string_equal(g->seen, "PENDING");
	free(g);
}

static void test_intent_refused_args(void **state)
{
	struct fx *f = *state;
	store_intent ok = { .method = "Purchase", .profile = "default", .partner_reference_no = "R",
			    .external_id = "1", .body_sha256 = SHA_A };
	store_intent in;
	struct got g;

	in = ok;
	in.method = NULL;
	assert_int_equal(store_journal_intent(f->st, &in, on_result, &g), STORE_ERR_INVALID);
	in = ok;
	in.partner_reference_no = "";
	assert_int_equal(store_journal_intent(f->st, &in, on_result, &g), STORE_ERR_INVALID);
	in = ok;
	in.body_sha256 = "9AE74BB7FB2C43AC20B00996322A7CEA1741C0492A7559BDEFBD17547F0E3936";
	assert_int_equal(store_journal_intent(f->st, &in, on_result, &g), STORE_ERR_INVALID);
	in = ok;
	in.external_id = "1234567890123456789012345678901234567"; /* 37 digits */
	assert_int_equal(store_journal_intent(f->st, &in, on_result, &g), STORE_ERR_INVALID);
	in = ok;
	in.partner_reference_no =
		"0123456789012345678901234567890123456789012345678901234567890123x";
	assert_int_equal(store_journal_intent(f->st, &in, on_result, &g), STORE_ERR_INVALID);
	assert_int_equal(store_journal_intent(f->st, &ok, NULL, &g), STORE_ERR_INVALID);
}

static void test_idempotency(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	struct intent_args a = { .ref = "INV-7", .ext = "200001" };
	int64_t id = add_intent(f, "INV-7", "200001");

	assert_int_equal(outcome(f, id, STORE_DONE, "serialized-response", 0), 0);
	/* the same key again, with a fresh external id: the journaled row comes back */
	a.ext = "200002";
	intent(f, &a, g);
	assert_int_equal(g->status, STORE_ERR_EXISTS);
	assert_int_equal(g->n_rows, 1);
	assert_int_equal(g->rows[0].id, id);
	assert_int_equal(g->rows[0].state, STORE_DONE);
	assert_int_equal(g->rows[0].http_status, 200);
	assert_string_equal(g->rows[0].response_code, "2005400");
	assert_string_equal(g->rows[0].external_id, "200001");
	assert_string_equal(g->rows[0].body_sha256, SHA_A);
	assert_true(g->has_blob);
	assert_int_equal(g->blob_len, strlen("serialized-response"));
	assert_memory_equal(g->blob, "serialized-response", g->blob_len);
	/* another method or another profile with the same reference is another key */
	memset(g, 0, sizeof(*g));
	a.method = "CancelPurchase";
	a.ext = "200003";
	intent(f, &a, g);
	assert_int_equal(g->status, 0);
	memset(g, 0, sizeof(*g));
	a.method = NULL;
	a.profile = "other";
	a.ext = "200004";
	intent(f, &a, g);
	assert_int_equal(g->status, 0);
	/* an external id is never used twice in a profile */
	memset(g, 0, sizeof(*g));
	a.profile = NULL;
	a.ref = "INV-8";
	a.ext = "200001";
	intent(f, &a, g);
	assert_int_equal(g->status, STORE_ERR_DUPLICATE);
	free(g);
}

static void test_state_machine(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	int64_t id = add_intent(f, "INV-9", "300001");
	int64_t other = add_intent(f, "INV-10", "300002");
	store_outcome bad = { .state = STORE_PENDING };
	struct got dummy;

	assert_int_equal(store_journal_outcome(f->st, id, &bad, on_result, &dummy),
			 STORE_ERR_INVALID);
	assert_int_equal(store_journal_reconciled(f->st, id, STORE_STATE_ANY, 0, NULL, on_result,
						  &dummy),
			 STORE_ERR_INVALID);
	/* PENDING: reconciliation may not touch it */
	assert_int_equal(reconciled(f, id, STORE_DONE, 0), STORE_ERR_STATE);
	assert_int_equal(outcome(f, id, STORE_UNKNOWN, NULL, 5000), 0);
	assert_int_equal(outcome(f, id, STORE_DONE, NULL, 0), STORE_ERR_STATE);
	assert_int_equal(reconciled(f, id, STORE_UNKNOWN, 7000), 0);
	get_ext(f, "default", "300001", g);
	assert_int_equal(g->rows[0].state, STORE_UNKNOWN);
	assert_int_equal(g->rows[0].attempts, 1);
	assert_int_equal(g->rows[0].next_attempt_ms, 7000);
	assert_string_equal(g->rows[0].detail, "asked");
	assert_int_equal(reconciled(f, id, STORE_DONE, 0), 0);
	memset(g, 0, sizeof(*g));
	get_ext(f, "default", "300001", g);
	assert_int_equal(g->rows[0].state, STORE_DONE);
	assert_int_equal(g->rows[0].attempts, 2);
	assert_string_equal(g->rows[0].response_message, "timeout"); /* the exchange's facts stay */
	/* final */
	assert_int_equal(reconciled(f, id, STORE_NOT_DONE, 0), STORE_ERR_STATE);
	assert_int_equal(outcome(f, id, STORE_NOT_DONE, NULL, 0), STORE_ERR_STATE);
	assert_int_equal(outcome(f, 999999, STORE_DONE, NULL, 0), STORE_ERR_NOT_FOUND);
	assert_int_equal(reconciled(f, 999999, STORE_DONE, 0), STORE_ERR_NOT_FOUND);
	assert_int_equal(outcome(f, other, STORE_NOT_DONE, NULL, 0), 0);
	free(g);
}

static void test_outcome_limits(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	int64_t id = add_intent(f, "INV-11", "400001");
	char msg[601];
	store_outcome o = { .state = STORE_NOT_DONE, .http_status = 403,
			    .response_code = "4035414", .response_message = msg };
	size_t n;

	for (size_t i = 0; i < 300; i++)
		memcpy(msg + 2 * i, "\xc3\xa9", 2); /* 300 times U+00E9 */
	msg[600] = '\0';
	o.response = msg;
	o.response_len = STORE_RESPONSE_MAX + 1;
	assert_int_equal(store_journal_outcome(f->st, id, &o, on_result, g), STORE_ERR_TOO_BIG);
	o.response = NULL;
	o.response_len = 0;
	assert_int_equal(store_journal_outcome(f->st, id, &o, on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->status, 0);
	memset(g, 0, sizeof(*g));
	get_ext(f, "default", "400001", g);
	n = strlen(g->rows[0].response_message);
	assert_true(n <= STORE_MESSAGE_MAX && n >= STORE_MESSAGE_MAX - 1);
	assert_int_equal(n % 2, 0); /* cut between characters */
	assert_false(g->has_blob);
	free(g);
}

static void test_get(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	int64_t first = add_intent(f, "INV-20", "500001");
	struct intent_args a = { .method = "RefundPurchase", .ref = "INV-20", .ext = "500002" };
	store_key k = { .profile = "default", .partner_reference_no = "INV-20" };

	intent(f, &a, g);
	assert_int_equal(g->status, 0);
	/* by reference, any method: the oldest */
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_journal_get(f->st, &k, on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->status, 0);
	assert_int_equal(g->rows[0].id, first);
	assert_string_equal(g->rows[0].method, "Purchase");
	/* by reference and method */
	memset(g, 0, sizeof(*g));
	k.method = "RefundPurchase";
	assert_int_equal(store_journal_get(f->st, &k, on_result, g), 0);
	wait_for(f, g);
	assert_string_equal(g->rows[0].external_id, "500002");
	assert_string_equal(g->rows[0].amount_value, "10000.00");
	assert_string_equal(g->rows[0].amount_currency, "IDR");
	assert_string_equal(g->rows[0].customer_ref, "cust-1");
	assert_string_equal(g->rows[0].request_time, "2024-01-01T10:00:00+07:00");
	assert_int_equal(g->rows[0].state, STORE_PENDING);
	/* by external id; another profile does not see it */
	memset(g, 0, sizeof(*g));
	get_ext(f, "default", "500002", g);
	assert_string_equal(g->rows[0].method, "RefundPurchase");
	memset(g, 0, sizeof(*g));
	get_ext(f, "other", "500002", g);
	assert_int_equal(g->status, STORE_ERR_NOT_FOUND);
	assert_int_equal(g->n_rows, 0);
	memset(&k, 0, sizeof(k));
	k.profile = "default";
	assert_int_equal(store_journal_get(f->st, &k, on_result, g), STORE_ERR_INVALID);
	free(g);
}

#define LIST_N 30

struct list_row {
	int64_t id;
	const char *profile;
	char customer[8];
	enum store_state state;
	int64_t created;
};

static void list(struct fx *f, const store_filter *flt, struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_journal_list(f->st, flt, on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->status, 0);
}

/* Whether row r passes flt. */
static bool passes(const struct list_row *r, const store_filter *flt)
{
	return (flt->profile == NULL || strcmp(flt->profile, r->profile) == 0) &&
	       (flt->customer_ref == NULL || strcmp(flt->customer_ref, r->customer) == 0) &&
	       (flt->state == STORE_STATE_ANY || flt->state == r->state) &&
	       (flt->from_ms == 0 || r->created >= flt->from_ms) &&
	       (flt->to_ms == 0 || r->created < flt->to_ms);
}

/* The listing of flt must be exactly the rows that pass it, newest first. */
static void expect_listing(struct fx *f, const struct list_row *rows, const store_filter *flt,
			   struct got *g)
{
	size_t n = 0;

	list(f, flt, g);
	for (int i = LIST_N - 1; i >= 0; i--) {
		if (!passes(&rows[i], flt))
			continue;
		assert_true(n < g->n_rows);
		assert_int_equal(g->rows[n].id, rows[i].id);
		n++;
	}
	assert_int_equal(n, g->n_rows);
	assert_true(n > 0);
}

static void test_list_filters_and_pages(void **state)
{
	static const enum store_state states[] = { STORE_DONE, STORE_NOT_DONE, STORE_UNKNOWN,
						   STORE_PENDING };
	struct fx *f = *state;
	struct list_row rows[LIST_N];
	struct got *g = got_new();
	store_filter flt;
	int64_t before = 0;
	size_t seen = 0;

	for (int i = 0; i < LIST_N; i++) {
		char ref[16], ext[16];
		struct intent_args a = { .ref = ref, .ext = ext };

		rows[i].profile = i % 2 != 0 ? "p1" : "p0";
		snprintf(rows[i].customer, sizeof(rows[i].customer), "c%d", i % 3);
		rows[i].state = states[i % 4];
		rows[i].created = 1000000 + i * 1000;
		snprintf(ref, sizeof(ref), "L-%d", i);
		snprintf(ext, sizeof(ext), "7%05d", i);
		a.profile = rows[i].profile;
		a.customer = rows[i].customer;
		a.created_ms = rows[i].created;
		memset(g, 0, sizeof(*g));
		intent(f, &a, g);
		assert_int_equal(g->status, 0);
		rows[i].id = g->id;
		if (rows[i].state != STORE_PENDING)
			assert_int_equal(outcome(f, g->id, rows[i].state, NULL, 0), 0);
	}
	memset(&flt, 0, sizeof(flt));
	expect_listing(f, rows, &flt, g);
	assert_int_equal(g->n_rows, LIST_N);
	flt.profile = "p0";
	expect_listing(f, rows, &flt, g);
	flt.customer_ref = "c1";
	expect_listing(f, rows, &flt, g);
	memset(&flt, 0, sizeof(flt));
	flt.state = STORE_UNKNOWN;
	expect_listing(f, rows, &flt, g);
	flt.state = STORE_PENDING;
	expect_listing(f, rows, &flt, g);
	memset(&flt, 0, sizeof(flt));
	flt.from_ms = 1005000;
	flt.to_ms = 1015000;
	expect_listing(f, rows, &flt, g);
	assert_int_equal(g->n_rows, 10);
	/* pages of 7, newest first, each row once */
	memset(&flt, 0, sizeof(flt));
	flt.limit = 7;
	do {
		flt.before_id = before;
		list(f, &flt, g);
		assert_true(g->n_rows <= 7);
		for (size_t i = 0; i < g->n_rows; i++, seen++)
			assert_int_equal(g->rows[i].id, rows[LIST_N - 1 - seen].id);
		before = g->next_before_id;
		assert_true(before == 0 || g->n_rows == 7);
	} while (before != 0);
	assert_int_equal(seen, LIST_N);
	flt.limit = STORE_LIST_MAX + 1;
	assert_int_equal(store_journal_list(f->st, &flt, on_result, g), STORE_ERR_INVALID);
	free(g);
}

static void test_due(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	int64_t a = add_intent(f, "D-1", "800001"), b = add_intent(f, "D-2", "800002");
	int64_t c = add_intent(f, "D-3", "800003");

	assert_int_equal(outcome(f, a, STORE_UNKNOWN, NULL, 9000), 0);
	assert_int_equal(outcome(f, b, STORE_UNKNOWN, NULL, 3000), 0);
	assert_int_equal(outcome(f, c, STORE_DONE, NULL, 0), 0);
	assert_int_equal(store_journal_due(f->st, 10, on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->status, 0);
	assert_int_equal(g->n_rows, 2);
	assert_int_equal(g->rows[0].id, b);
	assert_int_equal(g->rows[1].id, a);
	assert_int_equal(store_journal_due(f->st, 0, on_result, g), STORE_ERR_INVALID);
	free(g);
}

static void test_restart_keeps_everything(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	int64_t pending = add_intent(f, "R-1", "600001");
	int64_t done = add_intent(f, "R-2", "600002");
	int64_t unknown = add_intent(f, "R-3", "600003");

	put_session(f, "default", "alice", "acc-alice", "ref-alice");
	put_session(f, "other", "bob", "acc-bob", "ref-bob");
	assert_int_equal(outcome(f, done, STORE_DONE, "resp", 0), 0);
	assert_int_equal(outcome(f, unknown, STORE_UNKNOWN, NULL, 4242), 0);
	close_store(f);
	open_store(f, f->key);
	list_sessions(f, NULL, g);
	assert_int_equal(g->n_sessions, 2);
	assert_int_equal(g->n_bad, 0);
	assert_string_equal(g->sessions[0].profile, "default");
	assert_string_equal(g->sessions[0].access, "acc-alice");
	assert_string_equal(g->sessions[1].refresh, "ref-bob");
	memset(g, 0, sizeof(*g));
	get_ext(f, "default", "600002", g);
	assert_int_equal(g->rows[0].id, done);
	assert_int_equal(g->rows[0].state, STORE_DONE);
	assert_memory_equal(g->blob, "resp", 4);
	/* the row left PENDING by the stopped daemon is now UNKNOWN, due at once */
	memset(g, 0, sizeof(*g));
	get_ext(f, "default", "600001", g);
	assert_int_equal(g->rows[0].id, pending);
	assert_int_equal(g->rows[0].state, STORE_UNKNOWN);
	assert_non_null(strstr(g->rows[0].detail, "stopped"));
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_journal_due(f->st, 10, on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->n_rows, 2);
	assert_int_equal(g->rows[0].id, unknown); /* 4242 comes before now */
	assert_int_equal(g->rows[1].id, pending);
	free(g);
}

/* ---- tests: retention ---- */

#define OLD_MS 1704067200000LL       /* 2024-01-01T00:00:00Z: the old rows' creation */
#define DAY_MS (24 * 60 * 60 * 1000LL)
#define PRUNE_OLD_DONE 25           /* old DONE rows of test_prune */
#define PRUNE_TEST_BATCH 10u        /* max_rows of test_prune: smaller than its backlog */
#define PRUNE_BENCH_ROWS 20000      /* test_prune_backlog's settled rows; $DOKU_PRUNE_ROWS */
#define PRUNE_BENCH_BATCH 1000u

static int64_t wall_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An intent of reference ref created at created_ms (0: now); its row id. */
static int64_t add_intent_at(struct fx *f, const char *ref, const char *ext, int64_t created_ms)
{
	struct got *g = got_new();
	struct intent_args a = { .ref = ref, .ext = ext, .created_ms = created_ms };
	int64_t id;

	intent(f, &a, g);
	assert_int_equal(g->status, 0);
	id = g->id;
	free(g);
	return id;
}

/* Row id sent again from state from with the new external id ext. */
static void reissue(struct fx *f, int64_t id, enum store_state from, const char *ext)
{
	struct got *g = got_new();
	store_intent in = { .external_id = ext, .body_sha256 = SHA_A,
			    .refused_http = from == STORE_PENDING ? 401 : 0,
			    .refused_response_code = from == STORE_PENDING ? "4015400" : NULL };

	assert_int_equal(store_journal_reissue(f->st, id, from, &in, "again", on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->status, 0);
	free(g);
}

/* store_journal_prune(before_ms, max_rows): its status; *n the rows deleted. */
static int prune(struct fx *f, int64_t before_ms, unsigned max_rows, unsigned *n)
{
	struct got *g = got_new();
	int rc;

	assert_int_equal(store_journal_prune(f->st, before_ms, max_rows, on_result, g), 0);
	wait_for(f, g);
	rc = g->status;
	*n = g->n_pruned;
	free(g);
	return rc;
}

/* One integer from the database file, read on a connection of the test's own. */
static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *s = NULL;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* The state of the row of partner reference ref, or NOT_FOUND (as a negative). */
static int state_of_ref(struct fx *f, const char *ref)
{
	struct got *g = got_new();
	store_key k = { .profile = "default", .partner_reference_no = ref };
	int rc;

	assert_int_equal(store_journal_get(f->st, &k, on_result, g), 0);
	wait_for(f, g);
	rc = g->status != 0 ? g->status : (int)g->rows[0].state;
	free(g);
	return rc;
}

static int64_t attempts_of(const char *db, int64_t id)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM attempts WHERE journal_id = %" PRId64, id);
	return raw_int(db, sql);
}

/* Only settled rows last updated before the cut go, in batches, with their
 * attempts; PENDING and UNKNOWN rows stay however old; a pruned partner
 * reference is new again. */
static void test_prune(void **state)
{
	struct fx *f = *state;
	struct got *g = got_new();
	struct intent_args again = { .ref = "OLD-D-00", .ext = "690001" };
	char ref[32], ext[32];
	int64_t old_n, old_r, old_u, late, new_n, cut;
	unsigned n, total = 0, batches = 0;
	char *text = NULL;
	size_t len = 0;
	FILE *mem;

	/* old: created at OLD_MS, settled now (before the cut) */
	for (int i = 0; i < PRUNE_OLD_DONE; i++) {
		snprintf(ref, sizeof(ref), "OLD-D-%02d", i);
		snprintf(ext, sizeof(ext), "61%04d", i);
		assert_int_equal(outcome(f, add_intent_at(f, ref, ext, OLD_MS), STORE_DONE, "r", 0),
				 0);
	}
	old_n = add_intent_at(f, "OLD-N", "620001", OLD_MS); /* NOT_DONE, two earlier attempts */
	reissue(f, old_n, STORE_PENDING, "620002");          /* the 401 retry */
	assert_int_equal(outcome(f, old_n, STORE_NOT_DONE, NULL, 0), 0);
	reissue(f, old_n, STORE_NOT_DONE, "620003");         /* asked again */
	assert_int_equal(outcome(f, old_n, STORE_NOT_DONE, NULL, 0), 0);
	assert_int_equal(attempts_of(f->db, old_n), 2);
	old_r = add_intent_at(f, "OLD-R", "630001", OLD_MS); /* DONE by reconciliation */
	assert_int_equal(outcome(f, old_r, STORE_UNKNOWN, NULL, 0), 0);
	assert_int_equal(reconciled(f, old_r, STORE_DONE, 0), 0);
	assert_int_equal(outcome(f, add_intent_at(f, "OLD-K", "630002", OLD_MS), STORE_UNKNOWN,
				 NULL, 0), 0);
	(void)add_intent_at(f, "OLD-P", "640001", OLD_MS); /* PENDING, updated_ms = OLD_MS */
	old_u = add_intent_at(f, "OLD-U", "640002", OLD_MS); /* UNKNOWN, with an earlier attempt */
	reissue(f, old_u, STORE_PENDING, "640003");
	assert_int_equal(outcome(f, old_u, STORE_UNKNOWN, NULL, 0), 0);
	late = add_intent_at(f, "LATE", "650001", OLD_MS); /* created old, settled after the cut */
	assert_int_equal(outcome(f, late, STORE_UNKNOWN, NULL, 0), 0);
	/* the cut: every write so far is before it, every later one at or after it (the
	 * millisecond clock is read until it passes the cut: no sleep, at most 1 ms) */
	cut = wall_now_ms() + 1;
	while (wall_now_ms() < cut)
		;
	/* new: settled after the cut */
	assert_int_equal(reconciled(f, late, STORE_DONE, 0), 0);
	assert_int_equal(outcome(f, add_intent_at(f, "NEW-D", "660001", 0), STORE_DONE, "r", 0), 0);
	new_n = add_intent_at(f, "NEW-N", "660002", 0);
	assert_int_equal(outcome(f, new_n, STORE_NOT_DONE, NULL, 0), 0);
	reissue(f, new_n, STORE_NOT_DONE, "660003");
	assert_int_equal(outcome(f, new_n, STORE_NOT_DONE, NULL, 0), 0);
	(void)add_intent_at(f, "NEW-P", "660004", 0);
	assert_int_equal(outcome(f, add_intent_at(f, "NEW-U", "660005", 0), STORE_UNKNOWN, NULL, 0),
			 0);
	/* before the prune, the old reference is journaled: not sent again */
	intent(f, &again, g);
	assert_int_equal(g->status, STORE_ERR_EXISTS);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM journal"), PRUNE_OLD_DONE + 10);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM journal WHERE updated_ms < "
				 "created_ms"), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM attempts"), 4);

	/* nothing was updated before the old rows were created */
	assert_int_equal(prune(f, OLD_MS + 1, PRUNE_TEST_BATCH, &n), 0);
	assert_int_equal(n, 0);
	/* the backlog before the cut (25 DONE, OLD-N, OLD-R), in batches of 10 */
	do {
		assert_int_equal(prune(f, cut, PRUNE_TEST_BATCH, &n), 0);
		assert_true(n <= PRUNE_TEST_BATCH);
		total += n;
		batches++;
	} while (n == PRUNE_TEST_BATCH);
	assert_int_equal(total, PRUNE_OLD_DONE + 2);
	assert_int_equal(batches, 3);                /* 10, 10, 7 */
	assert_int_equal(prune(f, cut, PRUNE_TEST_BATCH, &n), 0); /* again: nothing left */
	assert_int_equal(n, 0);
	assert_int_equal(state_of_ref(f, "OLD-D-00"), STORE_ERR_NOT_FOUND);
	assert_int_equal(state_of_ref(f, "OLD-D-24"), STORE_ERR_NOT_FOUND);
	assert_int_equal(state_of_ref(f, "OLD-N"), STORE_ERR_NOT_FOUND);
	assert_int_equal(state_of_ref(f, "OLD-R"), STORE_ERR_NOT_FOUND);
	assert_int_equal(attempts_of(f->db, old_n), 0);
	/* however old, PENDING and UNKNOWN stay, with their attempts */
	assert_int_equal(state_of_ref(f, "OLD-P"), STORE_PENDING);
	assert_int_equal(state_of_ref(f, "OLD-K"), STORE_UNKNOWN);
	assert_int_equal(state_of_ref(f, "OLD-U"), STORE_UNKNOWN);
	assert_int_equal(attempts_of(f->db, old_u), 1);
	/* created before the cut, updated after it: stays */
	assert_int_equal(state_of_ref(f, "LATE"), STORE_DONE);
	assert_int_equal(state_of_ref(f, "NEW-D"), STORE_DONE);
	assert_int_equal(state_of_ref(f, "NEW-N"), STORE_NOT_DONE);
	assert_int_equal(attempts_of(f->db, new_n), 1);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM journal"), 8);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM attempts"), 2);

	/* a pruned partner reference is forgotten: the same intent is a new row */
	memset(g, 0, sizeof(*g));
	intent(f, &again, g);
	assert_int_equal(g->status, 0);
	assert_true(g->id > 0);
	assert_int_equal(state_of_ref(f, "OLD-D-00"), STORE_PENDING);

	/* pruning "the future" leaves only PENDING and UNKNOWN rows */
	assert_int_equal(prune(f, wall_now_ms() + DAY_MS, PRUNE_TEST_BATCH, &n), 0);
	assert_int_equal(n, 3); /* LATE, NEW-D, NEW-N */
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM journal WHERE state IN "
				 "('DONE', 'NOT_DONE')"), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM journal"), 6);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM attempts"), 1); /* OLD-U's */
	assert_int_equal(attempts_of(f->db, old_u), 1);
	/* the database stays sound */
	mem = open_memstream(&text, &len);
	assert_int_equal(store_verify(f->dir, mem), 0);
	fclose(mem);
	assert_non_null(strstr(text, "journal rows: 6"));
	assert_non_null(strstr(text, "  DONE: 0"));
	free(text);
	free(g);
}

static void test_prune_refused_args(void **state)
{
	struct fx *f = *state;
	struct got g = { 0 };

	assert_int_equal(store_journal_prune(NULL, 1, 1, on_result, &g), STORE_ERR_INVALID);
	assert_int_equal(store_journal_prune(f->st, 1, 1, NULL, &g), STORE_ERR_INVALID);
	assert_int_equal(store_journal_prune(f->st, 0, 1, on_result, &g), STORE_ERR_INVALID);
	assert_int_equal(store_journal_prune(f->st, -5, 1, on_result, &g), STORE_ERR_INVALID);
	assert_int_equal(store_journal_prune(f->st, 1, 0, on_result, &g), STORE_ERR_INVALID);
	assert_int_equal(store_journal_prune(f->st, 1, STORE_PRUNE_MAX + 1, on_result, &g),
			 STORE_ERR_INVALID);
	assert_false(g.done);
}

/* A backlog pruned in batches the way journal.c does it, with an intent
 * written between every two batches; prints the time of the whole and of
 * the longest batch (the write lock's hold). Rows: $DOKU_PRUNE_ROWS. */
struct backlog {
	struct fx *f;
	int64_t before;
	unsigned batches, intents_sent;
	uint64_t deleted, t_batch, longest_ns;
	bool done;
	int status;
	struct counter intents;
};

static void on_backlog(const store_result *res, void *data)
{
	struct backlog *b = data;
	uint64_t now = uv_hrtime();
	store_intent in = { .method = "TopUp", .profile = "default", .customer_ref = "c",
			    .body_sha256 = SHA_A };
	char ref[32], ext[32];

	/* the intent queued before this batch was written first */
	assert_int_equal(b->intents.done, (int)b->intents_sent);
	if (now - b->t_batch > b->longest_ns)
		b->longest_ns = now - b->t_batch;
	b->batches++;
	b->deleted += res->n_pruned;
	b->status = res->status;
	if (res->status != 0 || res->n_pruned < PRUNE_BENCH_BATCH) {
		b->done = true;
		return;
	}
	/* a call's intent arrives meanwhile: it is written before the next batch ends */
	snprintf(ref, sizeof(ref), "MID-%06u", b->batches);
	snprintf(ext, sizeof(ext), "7%08u", b->batches);
	in.partner_reference_no = ref;
	in.external_id = ext;
	assert_int_equal(store_journal_intent(b->f->st, &in, on_count, &b->intents), 0);
	b->intents_sent++;
	b->t_batch = uv_hrtime();
	assert_int_equal(store_journal_prune(b->f->st, b->before, PRUNE_BENCH_BATCH, on_backlog, b),
			 0);
}

static void test_prune_backlog(void **state)
{
	struct fx *f = *state;
	const char *env = getenv("DOKU_PRUNE_ROWS");
	long rows = env != NULL ? strtol(env, NULL, 10) : PRUNE_BENCH_ROWS;
	struct backlog b = { .f = f };
	char sql[2048], *text = NULL;
	size_t len = 0;
	uint64_t t0;
	FILE *mem;

	assert_true(rows >= 1000 && rows <= 10000000);
	/* rows settled rows a year old (one in 20 with an earlier attempt), and one
	 * UNKNOWN row per 1,000, written directly */
	snprintf(sql, sizeof(sql),
		 "BEGIN;"
		 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %ld) "
		 "INSERT INTO journal (created_ms, updated_ms, method, profile, customer_ref, "
		 "partner_reference_no, original_reference_no, external_id, amount_value, "
		 "amount_currency, body_sha256, request_time, state, http_status, response_code, "
		 "response_message, response, detail) "
		 "SELECT %lld + i * 100, %lld + i * 100 + 900, 'Purchase', 'default', "
		 "'customer-' || (i %% 5000), 'INV-' || i, '', '8' || printf('%%012d', i), "
		 "'10000.00', 'IDR', '%s', '2024-01-01T10:00:00+07:00', "
		 "CASE WHEN i %% 1000 = 0 THEN 'UNKNOWN' WHEN i %% 50 = 0 THEN 'NOT_DONE' ELSE 'DONE' END, "
		 "200, '2005400', 'Successful', randomblob(300), '' FROM n;"
		 "INSERT INTO attempts SELECT id, '9' || id, request_time, body_sha256, 'NOT_DONE', "
		 "401, '4015400', updated_ms FROM journal WHERE id %% 20 = 0;"
		 "COMMIT;",
		 rows + rows / 999, (long long)(OLD_MS - 365 * DAY_MS), (long long)(OLD_MS - 365 * DAY_MS),
		 SHA_A);
	t0 = uv_hrtime();
	raw_exec(f->db, sql);
	print_message("backlog of %" PRId64 " rows (%" PRId64 " settled) and %" PRId64
		      " attempts written in %.0f ms\n",
		      raw_int(f->db, "SELECT count(*) FROM journal"),
		      raw_int(f->db, "SELECT count(*) FROM journal WHERE state != 'UNKNOWN'"),
		      raw_int(f->db, "SELECT count(*) FROM attempts"), (double)(uv_hrtime() - t0) / 1e6);
	rows = (long)raw_int(f->db, "SELECT count(*) FROM journal WHERE state != 'UNKNOWN'");
	b.before = OLD_MS;
	t0 = b.t_batch = uv_hrtime();
	assert_int_equal(store_journal_prune(f->st, b.before, PRUNE_BENCH_BATCH, on_backlog, &b), 0);
	while (!b.done || b.intents.done < (int)b.intents_sent)
		uv_run(&f->loop, UV_RUN_ONCE);
	print_message("pruned %" PRIu64 " rows in %u batches of at most %u: %.0f ms in all, "
		      "longest batch %.1f ms, %u intents written between batches\n",
		      b.deleted, b.batches, PRUNE_BENCH_BATCH, (double)(uv_hrtime() - t0) / 1e6,
		      (double)b.longest_ns / 1e6, b.intents_sent);
	assert_int_equal(b.status, 0);
	assert_int_equal(b.deleted, (uint64_t)rows);
	assert_int_equal(b.batches, (unsigned)(rows / PRUNE_BENCH_BATCH) + 1);
	assert_int_equal(b.intents.failed, 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM journal WHERE state != 'UNKNOWN' AND "
		 "updated_ms < %lld", (long long)OLD_MS);
	assert_int_equal(raw_int(f->db, sql), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM journal WHERE state = 'UNKNOWN'"),
			 rows / 1000);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM attempts WHERE journal_id NOT IN "
				 "(SELECT id FROM journal)"), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM journal WHERE state = 'PENDING'"),
			 (int64_t)b.intents_sent);
	mem = open_memstream(&text, &len);
	assert_int_equal(store_verify(f->dir, mem), 0);
	fclose(mem);
	free(text);
}

/* ---- tests: the loop never waits ---- */

/* While another connection holds the database's write lock, the store's
 * worker waits for it (busy timeout); the loop must tick all along, and the
 * intents complete once the lock is gone. Independent of the machine's speed:
 * the store cannot finish before the test lets it. */
struct ticker {
	uv_timer_t timer;
	struct counter *c;
	sqlite3 *holder;              /* the connection holding the write lock, until released */
	int total;
	int ticks_while_held;
	uint64_t last_ns, max_gap_ns;
};

enum { HOLD_TICKS = 50 };         /* ticks of 1 ms the loop makes while the lock is held */

static void on_tick(uv_timer_t *t)
{
	struct ticker *k = t->data;
	uint64_t now = uv_hrtime();

	if (now - k->last_ns > k->max_gap_ns)
		k->max_gap_ns = now - k->last_ns;
	k->last_ns = now;
	if (k->holder != NULL) {
		assert_int_equal(k->c->done, 0); /* nothing can be written while held */
		if (++k->ticks_while_held >= HOLD_TICKS) {
			assert_int_equal(sqlite3_exec(k->holder, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
			sqlite3_close(k->holder);
			k->holder = NULL;
		}
	}
	if (k->holder == NULL && k->c->done >= k->total)
		uv_timer_stop(t);
}

static void test_loop_not_blocked(void **state)
{
	struct fx *f = *state;
	enum { N = 2000 };
	store_intent in = { .method = "TopUp", .profile = "default", .customer_ref = "c",
			    .amount_value = "1.00", .amount_currency = "IDR",
			    .body_sha256 = SHA_A };
	struct counter c = { 0 };
	struct ticker k = { .c = &c, .total = N };
	char ref[32], ext[32];
	uint64_t t0;

	k.holder = raw_open(f->db);
	assert_int_equal(sqlite3_exec(k.holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 0; i < N; i++) {
		snprintf(ref, sizeof(ref), "BULK-%06d", i);
		snprintf(ext, sizeof(ext), "5%08d", i);
		in.partner_reference_no = ref;
		in.external_id = ext;
		assert_int_equal(store_journal_intent(f->st, &in, on_count, &c), 0);
	}
	assert_int_equal(uv_timer_init(&f->loop, &k.timer), 0);
	k.timer.data = &k;
	t0 = k.last_ns = uv_hrtime();
	assert_int_equal(uv_timer_start(&k.timer, on_tick, 1, 1), 0);
	while (c.done < N || k.holder != NULL)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_timer_stop(&k.timer);
	uv_close((uv_handle_t *)&k.timer, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	print_message("%d intents queued behind a held write lock: the 1 ms timer ticked %d times "
		      "before the lock went, longest gap %.1f ms; all written %.0f ms after the start\n",
		      N, k.ticks_while_held, (double)k.max_gap_ns / 1e6,
		      (double)(uv_hrtime() - t0) / 1e6);
	assert_int_equal(c.failed, 0);
	assert_int_equal(k.ticks_while_held, HOLD_TICKS);
	assert_true(k.max_gap_ns < 500u * 1000u * 1000u);
}

static void test_close_drains(void **state)
{
	struct fx *f = *state;
	enum { N = 100 };
	store_intent in = { .method = "Purchase", .profile = "default", .customer_ref = "c",
			    .body_sha256 = SHA_A };
	struct counter c = { 0 };
	struct got *g = got_new();
	bool closed = false;
	char ref[32], ext[32];

	for (int i = 0; i < N; i++) {
		snprintf(ref, sizeof(ref), "DRAIN-%03d", i);
		snprintf(ext, sizeof(ext), "3%05d", i);
		in.partner_reference_no = ref;
		in.external_id = ext;
		assert_int_equal(store_journal_intent(f->st, &in, on_count, &c), 0);
	}
	store_close(f->st, on_closed, &closed);
	assert_int_equal(store_journal_due(f->st, 1, on_result, g), STORE_ERR_CLOSED);
	while (!closed) {
		assert_true(c.done <= N);
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	assert_int_equal(c.done, N);
	assert_int_equal(c.failed, 0);
	f->st = NULL;
	open_store(f, f->key);
	memset(g, 0, sizeof(*g));
	get_ext(f, "default", "300099", g);
	assert_int_equal(g->status, 0);
	assert_string_equal(g->rows[0].partner_reference_no, "DRAIN-099");
	free(g);
}

/* ---- tests: verify and export ---- */

static void test_verify_and_export(void **state)
{
	struct fx *f = *state;
	int64_t id = add_intent(f, "E-1", "900001");
	int64_t id2 = add_intent(f, "E-\"2\"\n", "900002");
	char *text = NULL, line[2048];
	size_t len = 0;
	int lines = 0;
	FILE *mem;

	(void)id2;
	put_session(f, "default", "alice", "acc", "ref");
	assert_int_equal(outcome(f, id, STORE_DONE, "\x01\x02\x03", 0), 0);
	mem = open_memstream(&text, &len);
	assert_int_equal(store_verify(f->dir, mem), 0);
	fclose(mem);
	assert_non_null(strstr(text, "integrity_check: ok"));
	assert_non_null(strstr(text, "sessions: 1"));
	assert_non_null(strstr(text, "journal rows: 2"));
	assert_non_null(strstr(text, "  DONE: 1"));
	assert_non_null(strstr(text, "  PENDING: 1"));
	assert_non_null(strstr(text, "result: sound"));
	free(text);
	text = NULL;
	/* a database file works as well as its directory */
	mem = open_memstream(&text, &len);
	assert_int_equal(store_verify(f->db, mem), 0);
	fclose(mem);
	free(text);
	text = NULL;
	mem = open_memstream(&text, &len);
	assert_int_equal(store_export_journal(f->dir, mem), 0);
	fclose(mem);
	mem = fmemopen(text, len, "r");
	while (fgets(line, sizeof(line), mem) != NULL) {
		size_t n = strlen(line);

		assert_true(n > 2 && line[0] == '{' && line[n - 2] == '}' && line[n - 1] == '\n');
		lines++;
	}
	fclose(mem);
	assert_int_equal(lines, 2);
	assert_non_null(strstr(text, "{\"id\":1,\"created\":\""));
	assert_non_null(strstr(text, "\"partnerReferenceNo\":\"E-1\""));
	assert_non_null(strstr(text, "\"amount\":{\"value\":\"10000.00\",\"currency\":\"IDR\"}"));
	assert_non_null(strstr(text, "\"state\":\"DONE\",\"httpStatus\":200"));
	assert_non_null(strstr(text, "\"response\":\"AQID\""));
	assert_non_null(strstr(text, "\"partnerReferenceNo\":\"E-\\\"2\\\"\\u000a\""));
	assert_non_null(strstr(text, "\"response\":null"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_missing_dir_made, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_unreadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_refused_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_tampered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_list_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intent_durable_before_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intent_refused_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outcome_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_filters_and_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_due, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_refused_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_not_blocked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_drains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_and_export, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
