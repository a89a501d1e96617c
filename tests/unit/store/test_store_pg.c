/* store.c on the PostgreSQL backend, against a real server started by
 * tests/tools/pg_run.sh (DOKU_TEST_PG_*): the journal's and sessions'
 * semantics as on SQLite, and the fleet's (two stores, two holders, one
 * database): leases, publishing, claims, orphans, reconnection, the schema
 * and key checks, TLS with verify-full, and the migration from SQLite. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "store.h"
#include "store_backend.h"
#include "store_test.h"

#define GOT_ROWS_MAX 128
#define GOT_TOKEN_MAX 256
#define GOT_BLOB_MAX 1024
#define PW_MAX 256
#define CONNINFO_MAX 1024
#define SHA_A "9ae74bb7fb2c43ac20b00996322a7cea1741c0492a7559bdefbd17547f0e3936"
#define WAIT_MAX_MS 15000 /* a condition polled through the loop fails after this */

static const unsigned char key1[SEALED_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[SEALED_KEY_LEN] = "fedcba9876543210fedcba9876543210";

struct fx {
	uv_loop_t loop;
	sealed_key *key;
	store *a, *b;              /* holders "test-a", "test-b" */
	PGconn *admin;             /* the superuser, to look and to break things */
	char conninfo[CONNINFO_MAX];
	char password[PW_MAX];
	char dir[TEST_DIR_MAX];    /* a SQLite state for the migration */
};

struct got {
	bool done;
	int status;
	int64_t id, gen;
	size_t n_rows, n_sessions;
	store_row rows[GOT_ROWS_MAX];
	unsigned char blob[GOT_BLOB_MAX];
	size_t blob_len;
	bool has_blob;
	char access[GOT_TOKEN_MAX], refresh[GOT_TOKEN_MAX];
	int64_t sess_gen;
	bool sess_leased;
	bool has_b2b;
	store_b2b b2b;
	char b2b_token[GOT_TOKEN_MAX];
	unsigned n_pruned;
	int64_t next_before_id;
};

static void on_result(const store_result *res, void *data)
{
	struct got *g = data;

	assert_false(g->done);
	g->done = true;
	g->status = res->status;
	g->id = res->id;
	g->gen = res->gen;
	g->n_pruned = res->n_pruned;
	g->next_before_id = res->next_before_id;
	assert_true(res->n_rows <= GOT_ROWS_MAX);
	g->n_rows = res->n_rows;
	for (size_t i = 0; i < res->n_rows; i++) {
		g->rows[i] = res->rows[i];
		g->rows[i].response = NULL;
	}
	if (res->n_rows == 1 && res->rows[0].response != NULL) {
		assert_true(res->rows[0].response_len <= GOT_BLOB_MAX);
		memcpy(g->blob, res->rows[0].response, res->rows[0].response_len);
		g->blob_len = res->rows[0].response_len;
		g->has_blob = true;
	}
	g->n_sessions = res->n_sessions;
	if (res->n_sessions > 0) {
		const store_session *s = &res->sessions[0];

		assert_true(s->access_len < GOT_TOKEN_MAX && s->refresh_len < GOT_TOKEN_MAX);
		memcpy(g->access, s->access_token, s->access_len + 1);
		memcpy(g->refresh, s->refresh_token, s->refresh_len + 1);
		g->sess_gen = s->gen;
		g->sess_leased = s->leased;
	}
	g->has_b2b = res->b2b != NULL;
	if (res->b2b != NULL) {
		g->b2b = *res->b2b;
		g->b2b.token = NULL;
		if (res->b2b->token != NULL) {
			assert_true(res->b2b->token_len < GOT_TOKEN_MAX);
			memcpy(g->b2b_token, res->b2b->token, res->b2b->token_len + 1);
		}
	}
}

static void wait_for(struct fx *f, struct got *g)
{
	while (!g->done)
		uv_run(&f->loop, UV_RUN_ONCE);
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0')
		fail_msg("%s is not set: run this test through tests/tools/pg_run.sh", name);
	return v;
}

/* ---- the test's own connection ---- */

static void admin_exec(struct fx *f, const char *sql)
{
	PGresult *res = PQexec(f->admin, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
}

static int64_t admin_int(struct fx *f, const char *sql)
{
	PGresult *res = PQexec(f->admin, sql);
	int64_t v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message; /* DROP SCHEMA ... CASCADE's NOTICEs */
}

static PGconn *admin_connect(void)
{
	PGconn *c = PQconnectdb(env("DOKU_TEST_PG_ADMIN"));

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("admin connection: %s", PQerrorMessage(c));
	PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

/* ---- stores ---- */

static int open_at(struct fx *f, const char *conninfo, const char *holder, sealed_key *key,
		   store **st, char err[STORE_ERR_MAX])
{
	const store_where w = { .kind = STORE_POSTGRES, .conninfo = conninfo,
				.password = f->password, .holder = holder };

	return store_open_at(&f->loop, &w, key, st, err);
}

static store *open_pg(struct fx *f, const char *holder)
{
	char err[STORE_ERR_MAX];
	store *st = NULL;
	int rc = open_at(f, f->conninfo, holder, f->key, &st, err);

	if (rc != 0)
		fail_msg("store_open_at: %d %s", rc, err);
	assert_true(store_shared(st));
	return st;
}

static void on_closed(void *data)
{
	*(bool *)data = true;
}

static void close_st(struct fx *f, store **st)
{
	bool closed = false;

	if (*st == NULL)
		return;
	store_close(*st, on_closed, &closed);
	while (!closed)
		uv_run(&f->loop, UV_RUN_ONCE);
	*st = NULL;
}

static void read_password(struct fx *f)
{
	FILE *fp = fopen(env("DOKU_TEST_PG_PASSWORD_FILE"), "r");
	size_t n;

	assert_non_null(fp);
	n = fread(f->password, 1, sizeof(f->password) - 1, fp);
	fclose(fp);
	f->password[n] = '\0';
	while (n > 0 && (f->password[n - 1] == '\n' || f->password[n - 1] == '\r'))
		f->password[--n] = '\0';
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(sealed_key_new(key1, &f->key), 0);
	snprintf(f->conninfo, sizeof(f->conninfo), "%s", env("DOKU_TEST_PG_CONNINFO"));
	read_password(f);
	f->admin = admin_connect();
	/* a fresh schema for every test */
	admin_exec(f, "DROP SCHEMA IF EXISTS doku CASCADE");
	admin_exec(f, "CREATE SCHEMA doku AUTHORIZATION doku");
	store_fleet_times_set(0, 0);
	f->a = open_pg(f, "test-a");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	close_st(f, &f->a);
	close_st(f, &f->b);
	store_fleet_times_set(0, 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	PQfinish(f->admin);
	sealed_key_free(f->key);
	if (f->dir[0] != '\0')
		test_dir_remove(f->dir);
	explicit_bzero(f->password, sizeof(f->password));
	free(f);
	return 0;
}

/* ---- journal helpers ---- */

static void intent_on(struct fx *f, store *st, const char *method, const char *ref,
		      const char *ext, int64_t created, struct got *g)
{
	store_intent in = {
		.method = method != NULL ? method : "Purchase", .profile = "default",
		.customer_ref = "cust-1", .partner_reference_no = ref, .external_id = ext,
		.amount_value = "10000.00", .amount_currency = "IDR", .body_sha256 = SHA_A,
		.request_time = "2024-01-01T10:00:00+07:00", .created_ms = created,
	};

	assert_int_equal(store_journal_intent(st, &in, on_result, g), 0);
	wait_for(f, g);
}

static int64_t add_intent(struct fx *f, store *st, const char *ref, const char *ext)
{
	struct got g = { 0 };

	intent_on(f, st, NULL, ref, ext, 0, &g);
	assert_int_equal(g.status, 0);
	assert_true(g.id > 0);
	return g.id;
}

static int outcome(struct fx *f, store *st, int64_t id, enum store_state state, const char *blob,
		   int64_t next)
{
	struct got g = { 0 };
	store_outcome o = {
		.state = state,
		.http_status = state == STORE_DONE ? 200 : 0,
		.response_code = state == STORE_DONE ? "2005400" : NULL,
		.response_message = state == STORE_DONE ? "Successful" : "timeout",
		.response = blob,
		.response_len = blob != NULL ? strlen(blob) : 0,
		.next_attempt_ms = next,
	};

	assert_int_equal(store_journal_outcome(st, id, &o, on_result, &g), 0);
	wait_for(f, &g);
	return g.status;
}

static int reconciled(struct fx *f, store *st, int64_t id, enum store_state state, int64_t next)
{
	struct got g = { 0 };

	assert_int_equal(store_journal_reconciled(st, id, state, next, "asked", on_result, &g), 0);
	wait_for(f, &g);
	return g.status;
}

static void get_ext(struct fx *f, store *st, const char *ext, struct got *g)
{
	store_key k = { .profile = "default", .external_id = ext };

	memset(g, 0, sizeof(*g));
	assert_int_equal(store_journal_get(st, &k, on_result, g), 0);
	wait_for(f, g);
}

static void due(struct fx *f, store *st, unsigned limit, struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_journal_due(st, limit, on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->status, 0);
}

static int put_session(struct fx *f, store *st, const char *ref, const char *acc,
		       const char *refresh, int64_t *gen)
{
	struct got g = { 0 };
	store_session s = { .profile = "default", .customer_ref = ref,
			    .access_token = acc, .access_len = strlen(acc),
			    .access_expiry = 1700000000, .refresh_token = refresh,
			    .refresh_len = strlen(refresh), .refresh_expiry = 1800000000 };

	assert_int_equal(store_session_put(st, &s, on_result, &g), 0);
	wait_for(f, &g);
	if (gen != NULL)
		*gen = g.gen;
	return g.status;
}

static void get_session(struct fx *f, store *st, const char *ref, struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_session_get(st, "default", ref, on_result, g), 0);
	wait_for(f, g);
}

/* Run the loop until cond(f) holds, or fail after WAIT_MAX_MS. */
static void on_poll_tick(uv_timer_t *t)
{
	(void)t;
}

static void wait_until(struct fx *f, bool (*cond)(struct fx *f), const char *what)
{
	uv_timer_t t;
	uint64_t t0 = uv_now(&f->loop);

	assert_int_equal(uv_timer_init(&f->loop, &t), 0);
	assert_int_equal(uv_timer_start(&t, on_poll_tick, 10, 10), 0);
	while (!cond(f)) {
		if (uv_now(&f->loop) - t0 > WAIT_MAX_MS)
			fail_msg("waited %d ms for %s", WAIT_MAX_MS, what);
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* ---- tests: opening ---- */

static void test_pg_open_schema_tls(void **state)
{
	struct fx *f = *state;
	char ci[2 * CONNINFO_MAX], err[STORE_ERR_MAX];
	store_stats s;
	store *st = NULL;

	assert_int_equal(admin_int(f, "SELECT version FROM doku.schema_version"),
			 STORE_PG_SCHEMA_VERSION);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.meta WHERE name = 'key_check'"),
			 1);
	/* the daemon's tables are its role's, not the superuser's */
	assert_int_equal(admin_int(f, "SELECT count(*) FROM pg_tables WHERE schemaname = 'doku' "
				      "AND tableowner <> 'doku'"),
			 0);
	/* TLS, the server's certificate checked against the test CA and its name */
	snprintf(ci, sizeof(ci), "%s sslmode=verify-full sslrootcert=%s", f->conninfo,
		 env("DOKU_TEST_PG_CA"));
	assert_int_equal(open_at(f, ci, "test-tls", f->key, &st, err), 0);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity "
				      "USING (pid) WHERE application_name = 'doku-bridged' AND "
				      "ssl"),
			 2);
	store_get_stats(st, &s);
	assert_true(s.connected);
	assert_true(s.round_trips > 0);
	close_st(f, &st);
	/* a CA that did not sign the server's certificate: refused */
	snprintf(ci, sizeof(ci), "%s sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt",
		 f->conninfo);
	assert_int_equal(open_at(f, ci, "test-tls", f->key, &st, err), STORE_ERR_IO);
	assert_null(st);
	assert_non_null(strstr(err, "certificate"));
}

static void test_pg_open_refusals(void **state)
{
	struct fx *f = *state;
	char err[STORE_ERR_MAX], ci[CONNINFO_MAX];
	sealed_key *other;
	store *st = NULL;

	/* another key */
	assert_int_equal(sealed_key_new(key2, &other), 0);
	assert_int_equal(open_at(f, f->conninfo, "test-k", other, &st, err), STORE_ERR_KEY);
	assert_null(st);
	assert_non_null(strstr(err, "another key"));
	sealed_key_free(other);
	/* another schema version */
	admin_exec(f, "UPDATE doku.schema_version SET version = 99");
	assert_int_equal(open_at(f, f->conninfo, "test-v", f->key, &st, err), STORE_ERR_VERSION);
	assert_non_null(strstr(err, "schema version 99"));
	admin_exec(f, "UPDATE doku.schema_version SET version = 1");
	/* a bad holder name */
	assert_int_equal(open_at(f, f->conninfo, "a b", f->key, &st, err), STORE_ERR_INVALID);
	/* a database nobody listens for: IO, libpq's reason, never the password */
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=1 dbname=doku user=doku connect_timeout=2");
	assert_int_equal(open_at(f, ci, "test-io", f->key, &st, err), STORE_ERR_IO);
	assert_null(st);
	assert_non_null(strstr(err, "127.0.0.1"));
	assert_null(strstr(err, f->password));
	/* a wrong password: refused, and not echoed */
	{
		const store_where w = { .kind = STORE_POSTGRES, .conninfo = f->conninfo,
					.password = "not-the-password-0815", .holder = "x" };

		assert_int_equal(store_open_at(&f->loop, &w, f->key, &st, err), STORE_ERR_IO);
		assert_non_null(strstr(err, "password authentication failed"));
		assert_null(strstr(err, "not-the-password-0815"));
	}
}

/* N daemons starting at once on an empty database migrate once. */
struct opener {
	struct fx *f;
	char holder[16];
	int rc;
	char err[STORE_ERR_MAX];
	uv_loop_t loop;
	store *st;
};

static void open_thread(void *arg)
{
	struct opener *o = arg;
	const store_where w = { .kind = STORE_POSTGRES, .conninfo = o->f->conninfo,
				.password = o->f->password, .holder = o->holder };

	o->rc = store_open_at(&o->loop, &w, o->f->key, &o->st, o->err);
}

static void test_pg_concurrent_first_start(void **state)
{
	struct fx *f = *state;
	enum { N = 6 };
	struct opener o[N];
	uv_thread_t t[N];

	close_st(f, &f->a);
	admin_exec(f, "DROP SCHEMA doku CASCADE");
	admin_exec(f, "CREATE SCHEMA doku AUTHORIZATION doku");
	for (int i = 0; i < N; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		o[i].f = f;
		snprintf(o[i].holder, sizeof(o[i].holder), "start-%d", i);
		assert_int_equal(uv_loop_init(&o[i].loop), 0);
		assert_int_equal(uv_thread_create(&t[i], open_thread, &o[i]), 0);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(uv_thread_join(&t[i]), 0);
	for (int i = 0; i < N; i++) {
		bool closed = false;

		if (o[i].rc != 0)
			fail_msg("open %d: %d %s", i, o[i].rc, o[i].err);
		store_close(o[i].st, on_closed, &closed);
		while (!closed)
			uv_run(&o[i].loop, UV_RUN_ONCE);
		assert_int_equal(uv_loop_close(&o[i].loop), 0);
	}
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.schema_version"), 1);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.meta"), 1);
}

/* ---- tests: the journal's semantics, as on SQLite ---- */

static void test_pg_idempotency_and_state_machine(void **state)
{
	struct fx *f = *state;
	struct got g = { 0 };
	int64_t id = add_intent(f, f->a, "INV-7", "200001");
	int64_t other = add_intent(f, f->a, "INV-10", "300002");

	assert_int_equal(outcome(f, f->a, id, STORE_DONE, "serialized-response", 0), 0);
	intent_on(f, f->a, NULL, "INV-7", "200002", 0, &g);
	assert_int_equal(g.status, STORE_ERR_EXISTS);
	assert_int_equal(g.n_rows, 1);
	assert_int_equal(g.rows[0].id, id);
	assert_int_equal(g.rows[0].state, STORE_DONE);
	assert_string_equal(g.rows[0].external_id, "200001");
	assert_true(g.has_blob);
	assert_memory_equal(g.blob, "serialized-response", g.blob_len);
	memset(&g, 0, sizeof(g));
	intent_on(f, f->a, "CancelPurchase", "INV-7", "200003", 0, &g);
	assert_int_equal(g.status, 0);
	memset(&g, 0, sizeof(g));
	intent_on(f, f->a, NULL, "INV-8", "200001", 0, &g);
	assert_int_equal(g.status, STORE_ERR_DUPLICATE);
	/* the state machine */
	assert_int_equal(reconciled(f, f->a, other, STORE_DONE, 0), STORE_ERR_STATE);
	assert_int_equal(outcome(f, f->a, other, STORE_UNKNOWN, NULL, 5000), 0);
	assert_int_equal(outcome(f, f->a, other, STORE_DONE, NULL, 0), STORE_ERR_STATE);
	assert_int_equal(reconciled(f, f->a, other, STORE_UNKNOWN, 7000), 0);
	get_ext(f, f->a, "300002", &g);
	assert_int_equal(g.rows[0].state, STORE_UNKNOWN);
	assert_int_equal(g.rows[0].attempts, 1);
	assert_int_equal(g.rows[0].next_attempt_ms, 7000);
	assert_string_equal(g.rows[0].detail, "asked");
	assert_int_equal(reconciled(f, f->a, other, STORE_DONE, 0), 0);
	assert_int_equal(reconciled(f, f->a, other, STORE_NOT_DONE, 0), STORE_ERR_STATE);
	assert_int_equal(outcome(f, f->a, 999999, STORE_DONE, NULL, 0), STORE_ERR_NOT_FOUND);
	assert_int_equal(reconciled(f, f->a, 999999, STORE_DONE, 0), STORE_ERR_NOT_FOUND);
}

static void test_pg_get_list_due_prune_reissue(void **state)
{
	struct fx *f = *state;
	struct got g = { 0 };
	store_key k = { .profile = "default", .partner_reference_no = "INV-20" };
	store_filter flt = { 0 };
	store_intent again = { .external_id = "500009", .body_sha256 = SHA_A,
			       .request_time = "2024-01-01T11:00:00+07:00" };
	int64_t first = add_intent(f, f->a, "INV-20", "500001"), ids[12];
	int64_t before = 0;
	size_t seen = 0;

	intent_on(f, f->a, "RefundPurchase", "INV-20", "500002", 0, &g);
	assert_int_equal(g.status, 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_journal_get(f->a, &k, on_result, &g), 0);
	wait_for(f, &g);
	assert_int_equal(g.rows[0].id, first);
	get_ext(f, f->a, "500002", &g);
	assert_string_equal(g.rows[0].method, "RefundPurchase");
	/* list: pages of 5 of 12 rows, newest first */
	for (int i = 0; i < 10; i++) {
		char ref[16], ext[16];

		snprintf(ref, sizeof(ref), "L-%d", i);
		snprintf(ext, sizeof(ext), "7%05d", i);
		ids[i] = add_intent(f, f->a, ref, ext);
	}
	flt.limit = 5;
	do {
		flt.before_id = before;
		memset(&g, 0, sizeof(g));
		assert_int_equal(store_journal_list(f->a, &flt, on_result, &g), 0);
		wait_for(f, &g);
		assert_int_equal(g.status, 0);
		if (seen < 10)
			assert_int_equal(g.rows[0].id, ids[9 - seen]);
		seen += g.n_rows;
		before = g.next_before_id;
	} while (before != 0);
	assert_int_equal(seen, 12);
	flt.limit = 0;
	flt.state = STORE_PENDING;
	flt.customer_ref = "nobody";
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_journal_list(f->a, &flt, on_result, &g), 0);
	wait_for(f, &g);
	assert_int_equal(g.n_rows, 0);
	/* due: soonest first, the settled ones not */
	assert_int_equal(outcome(f, f->a, ids[0], STORE_UNKNOWN, NULL, 9000), 0);
	assert_int_equal(outcome(f, f->a, ids[1], STORE_UNKNOWN, NULL, 3000), 0);
	assert_int_equal(outcome(f, f->a, ids[2], STORE_DONE, NULL, 0), 0);
	due(f, f->a, 10, &g);
	assert_int_equal(g.n_rows, 2);
	assert_int_equal(g.rows[0].id, ids[1]);
	assert_int_equal(g.rows[1].id, ids[0]);
	/* reissue keeps the earlier attempt */
	assert_int_equal(outcome(f, f->a, ids[3], STORE_NOT_DONE, NULL, 0), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_journal_reissue(f->a, ids[3], STORE_NOT_DONE, &again, "again",
					       on_result, &g),
			 0);
	wait_for(f, &g);
	assert_int_equal(g.status, 0);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.attempts"), 1);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_journal_reissue(f->a, ids[3], STORE_NOT_DONE, &again, "again",
					       on_result, &g),
			 0);
	wait_for(f, &g);
	assert_int_equal(g.status, STORE_ERR_STATE);
	/* prune: settled rows only, their attempts with them */
	assert_int_equal(outcome(f, f->a, ids[3], STORE_DONE, NULL, 0), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_journal_prune(f->a, INT64_MAX / 2, 1, on_result, &g), 0);
	wait_for(f, &g);
	assert_int_equal(g.status, 0);
	assert_int_equal(g.n_pruned, 1);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_journal_prune(f->a, INT64_MAX / 2, 100, on_result, &g), 0);
	wait_for(f, &g);
	assert_int_equal(g.n_pruned, 1);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.journal WHERE state IN "
				      "('DONE', 'NOT_DONE')"),
			 0);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.attempts"), 0);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.journal"), 10);
}

static void test_pg_sessions(void **state)
{
	struct fx *f = *state;
	struct got g = { 0 };
	int64_t gen1 = 0, gen2 = 0;
	int n = 0;

	assert_int_equal(put_session(f, f->a, "cust-1", "access-token-1", "refresh-token-1", &gen1),
			 0);
	assert_true(gen1 > 0);
	get_session(f, f->a, "cust-1", &g);
	assert_int_equal(g.status, 0);
	assert_string_equal(g.access, "access-token-1");
	assert_string_equal(g.refresh, "refresh-token-1");
	assert_int_equal(g.sess_gen, gen1);
	/* sealed at rest */
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.sessions WHERE "
				      "position('access-token'::bytea IN access_token) > 0 OR "
				      "position('refresh-token'::bytea IN refresh_token) > 0"),
			 0);
	assert_int_equal(put_session(f, f->a, "cust-1", "access-token-2", "", &gen2), 0);
	assert_true(gen2 > gen1);
	get_session(f, f->a, "cust-1", &g);
	assert_string_equal(g.refresh, "");
	/* tampered: does not open */
	/* one bit of byte 21 flipped (writing 0xff there left a token whose
	   byte was 0xff as it was: one run in 256 failed) */
	admin_exec(f, "UPDATE doku.sessions SET access_token = set_byte(access_token, 20, "
		      "get_byte(access_token, 20) # 1)");
	get_session(f, f->a, "cust-1", &g);
	assert_int_equal(g.status, STORE_ERR_SEALED);
	/* delete, then gone */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_session_delete(f->a, "default", "cust-1", on_result, &g), 0);
	wait_for(f, &g);
	assert_int_equal(g.status, 0);
	get_session(f, f->a, "cust-1", &g);
	assert_int_equal(g.status, STORE_ERR_NOT_FOUND);
	/* list in pages */
	for (int i = 0; i < STORE_SESSION_PAGE + 10; i++) {
		char ref[16];

		snprintf(ref, sizeof(ref), "r%04d", i);
		assert_int_equal(put_session(f, f->a, ref, "a", "r", NULL), 0);
	}
	{
		store_session_key after = { "", "" };
		struct got l;

		for (;;) {
			bool more;

			memset(&l, 0, sizeof(l));
			assert_int_equal(store_session_list(f->a, n > 0 ? &after : NULL,
							    on_result, &l),
					 0);
			wait_for(f, &l);
			assert_int_equal(l.status, 0);
			n += (int)l.n_sessions;
			more = l.n_sessions == STORE_SESSION_PAGE;
			if (!more)
				break;
			snprintf(after.profile, sizeof(after.profile), "default");
			snprintf(after.customer_ref, sizeof(after.customer_ref), "r%04d",
				 STORE_SESSION_PAGE - 1);
		}
	}
	assert_int_equal(n, STORE_SESSION_PAGE + 10);
}

/* ---- tests: the fleet ---- */

static void b2b_lease(struct fx *f, store *st, int64_t expect, unsigned ms, struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_b2b_lease(st, "default", "client-1", expect, ms, on_result, g), 0);
	wait_for(f, g);
}

static void b2b_publish(struct fx *f, store *st, const char *tok, struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_b2b_publish(st, "default", "client-1", tok, strlen(tok), 900,
					   on_result, g),
			 0);
	wait_for(f, g);
}

static void b2b_get(struct fx *f, store *st, const char *client, struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_b2b_get(st, "default", client, on_result, g), 0);
	wait_for(f, g);
	assert_int_equal(g->status, 0);
	assert_true(g->has_b2b);
}

static void test_pg_b2b_lease_publish(void **state)
{
	struct fx *f = *state;
	struct got g;

	f->b = open_pg(f, "test-b");
	b2b_get(f, f->a, "client-1", &g);
	assert_int_equal(g.b2b.gen, 0);
	assert_null(g.b2b.token);
	/* single flight: A takes the lease, B waits */
	b2b_lease(f, f->a, 0, 30000, &g);
	assert_int_equal(g.status, 0);
	assert_true(g.b2b.leased);
	assert_string_equal(g.b2b.lease_holder, "test-a");
	assert_true(g.b2b.lease_left_ms > 25000 && g.b2b.lease_left_ms <= 30000);
	b2b_lease(f, f->b, 0, 30000, &g);
	assert_int_equal(g.status, 0);
	assert_false(g.b2b.leased);
	assert_string_equal(g.b2b.lease_holder, "test-a");
	/* a daemon without the lease cannot publish */
	b2b_publish(f, f->b, "token-from-b", &g);
	assert_int_equal(g.status, STORE_ERR_STATE);
	b2b_publish(f, f->a, "token-1", &g);
	assert_int_equal(g.status, 0);
	assert_int_equal(g.b2b.gen, 1);
	assert_string_equal(g.b2b_token, "token-1");
	assert_string_equal(g.b2b.lease_holder, "");
	/* sealed at rest */
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.b2b_tokens WHERE "
				      "position('token-1'::bytea IN token) > 0"),
			 0);
	/* B reads it; compare-then-lease with a stale gen gets the newer token */
	b2b_get(f, f->b, "client-1", &g);
	assert_int_equal(g.b2b.gen, 1);
	assert_string_equal(g.b2b_token, "token-1");
	assert_int_equal(g.b2b.ttl_s, 900);
	assert_true(g.b2b.idle_ms >= 0 && g.b2b.idle_ms < 5000);
	b2b_lease(f, f->b, 0, 30000, &g);
	assert_false(g.b2b.leased);
	assert_int_equal(g.b2b.gen, 1);
	assert_string_equal(g.b2b_token, "token-1");
	/* another client_id's row reads as none */
	b2b_get(f, f->b, "client-2", &g);
	assert_null(g.b2b.token);
	assert_int_equal(g.b2b.gen, 0);
	/* B finds gen 1 refused: it leases, A may not */
	b2b_lease(f, f->b, 1, 30000, &g);
	assert_true(g.b2b.leased);
	b2b_lease(f, f->a, 1, 30000, &g);
	assert_false(g.b2b.leased);
	assert_string_equal(g.b2b.lease_holder, "test-b");
	/* its fetch failed: released, then A may */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_b2b_release(f->b, "default", on_result, &g), 0);
	wait_for(f, &g);
	assert_int_equal(g.status, 0);
	assert_string_equal(g.b2b.lease_holder, "");
	b2b_lease(f, f->a, 1, 30000, &g);
	assert_true(g.b2b.leased);
	/* the holder died: at its lease's expiry another takes it over */
	admin_exec(f, "UPDATE doku.b2b_tokens SET lease_until = now() - interval '1 second'");
	b2b_lease(f, f->b, 1, 30000, &g);
	assert_true(g.b2b.leased);
	b2b_publish(f, f->a, "token-late", &g); /* A's lease was lost: refused */
	assert_int_equal(g.status, STORE_ERR_STATE);
	b2b_publish(f, f->b, "token-2", &g);
	assert_int_equal(g.status, 0);
	assert_int_equal(g.b2b.gen, 2);
	/* the fleet on a SQLite store: INVALID at once */
	{
		char err[STORE_ERR_MAX];
		store *sq = NULL;

		assert_int_equal(test_dir_make(f->dir), 0);
		assert_int_equal(store_open(&f->loop, f->dir, f->key, &sq, err), 0);
		assert_false(store_shared(sq));
		assert_int_equal(store_b2b_get(sq, "default", "c", on_result, &g),
				 STORE_ERR_INVALID);
		assert_int_equal(store_b2b_lease(sq, "default", "c", 0, 100, on_result, &g),
				 STORE_ERR_INVALID);
		assert_int_equal(store_session_lease(sq, "default", "c", 0, 100, on_result, &g),
				 STORE_ERR_INVALID);
		close_st(f, &sq);
	}
}

static void test_pg_b2b_used_idle(void **state)
{
	struct fx *f = *state;
	struct got g;

	b2b_lease(f, f->a, 0, 30000, &g);
	b2b_publish(f, f->a, "token-1", &g);
	assert_int_equal(g.status, 0);
	admin_exec(f, "UPDATE doku.b2b_tokens SET last_used = now() - interval '100 seconds'");
	b2b_get(f, f->a, "client-1", &g);
	assert_true(g.b2b.idle_ms >= 100000 && g.b2b.idle_ms < 110000);
	/* another generation's use changes nothing */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_b2b_used(f->a, "default", 7, on_result, &g), 0);
	wait_for(f, &g);
	assert_true(g.b2b.idle_ms >= 100000);
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_b2b_used(f->a, "default", 1, on_result, &g), 0);
	wait_for(f, &g);
	assert_int_equal(g.status, 0);
	assert_true(g.b2b.idle_ms < 5000);
	/* no callback: fine */
	assert_int_equal(store_b2b_used(f->a, "default", 1, NULL, NULL), 0);
	b2b_get(f, f->a, "client-1", &g);
	assert_true(g.b2b.idle_ms < 5000);
}

static void session_lease(struct fx *f, store *st, int64_t expect, struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_session_lease(st, "default", "alice", expect, 30000, on_result, g),
			 0);
	wait_for(f, g);
}

static int session_refreshed(struct fx *f, store *st, const char *acc, int64_t *gen)
{
	struct got g = { 0 };
	store_session s = { .profile = "default", .customer_ref = "alice", .access_token = acc,
			    .access_len = strlen(acc), .access_expiry = 1700000100,
			    .refresh_token = "r2", .refresh_len = 2, .refresh_expiry = 1800000100 };

	assert_int_equal(store_session_refreshed(st, &s, on_result, &g), 0);
	wait_for(f, &g);
	if (gen != NULL)
		*gen = g.gen;
	return g.status;
}

static void test_pg_session_lease_refresh(void **state)
{
	struct fx *f = *state;
	struct got g;
	int64_t g1 = 0, g2 = 0, g3 = 0;

	f->b = open_pg(f, "test-b");
	/* opened through A, usable through B */
	assert_int_equal(put_session(f, f->a, "alice", "acc-1", "ref-1", &g1), 0);
	get_session(f, f->b, "alice", &g);
	assert_int_equal(g.status, 0);
	assert_string_equal(g.access, "acc-1");
	assert_int_equal(g.sess_gen, g1);
	/* single flight of the refresh */
	session_lease(f, f->b, g1, &g);
	assert_int_equal(g.status, 0);
	assert_true(g.sess_leased);
	assert_string_equal(g.access, "acc-1");
	session_lease(f, f->a, g1, &g);
	assert_int_equal(g.status, 0);
	assert_false(g.sess_leased);
	assert_int_equal(session_refreshed(f, f->a, "acc-from-a", NULL), STORE_ERR_STATE);
	assert_int_equal(session_refreshed(f, f->b, "acc-2", &g2), 0);
	assert_true(g2 > g1);
	/* A's compare fails now: it gets the newer tokens */
	session_lease(f, f->a, g1, &g);
	assert_false(g.sess_leased);
	assert_int_equal(g.sess_gen, g2);
	assert_string_equal(g.access, "acc-2");
	/* a put (the session opened again) replaces it, whoever held the lease */
	session_lease(f, f->a, g2, &g);
	assert_true(g.sess_leased);
	assert_int_equal(put_session(f, f->b, "alice", "acc-3", "ref-3", &g3), 0);
	assert_true(g3 > g2);
	assert_int_equal(session_refreshed(f, f->a, "acc-stale", NULL), STORE_ERR_STATE);
	session_lease(f, f->b, g3, &g);
	assert_true(g.sess_leased);
	/* closed through A: gone for B */
	memset(&g, 0, sizeof(g));
	assert_int_equal(store_session_delete(f->a, "default", "alice", on_result, &g), 0);
	wait_for(f, &g);
	assert_int_equal(session_refreshed(f, f->b, "acc-4", NULL), STORE_ERR_NOT_FOUND);
	session_lease(f, f->b, g3, &g);
	assert_int_equal(g.status, STORE_ERR_NOT_FOUND);
	get_session(f, f->b, "alice", &g);
	assert_int_equal(g.status, STORE_ERR_NOT_FOUND);
}

/* The same partner reference through two daemons at once: one row. */
static void test_pg_intent_race(void **state)
{
	struct fx *f = *state;
	store_intent in = { .method = "Purchase", .profile = "default",
			    .partner_reference_no = "RACE-1", .body_sha256 = SHA_A };
	struct got ga = { 0 }, gb = { 0 };
	PGconn *holder;
	PGresult *res;

	f->b = open_pg(f, "test-b");
	in.external_id = "910001";
	assert_int_equal(store_journal_intent(f->a, &in, on_result, &ga), 0);
	in.external_id = "910002";
	assert_int_equal(store_journal_intent(f->b, &in, on_result, &gb), 0);
	wait_for(f, &ga);
	wait_for(f, &gb);
	assert_true((ga.status == 0 && gb.status == STORE_ERR_EXISTS) ||
		    (gb.status == 0 && ga.status == STORE_ERR_EXISTS));
	assert_int_equal((ga.status == 0 ? gb : ga).rows[0].id, (ga.status == 0 ? ga : gb).id);
	/* racing an uncommitted intent on the key: waits for it, then EXISTS */
	holder = admin_connect();
	res = PQexec(holder, "BEGIN; INSERT INTO doku.journal (created_ms, updated_ms, method, "
			     "profile, customer_ref, partner_reference_no, original_reference_no, "
			     "external_id, amount_value, amount_currency, body_sha256, request_time, "
			     "state, holder) VALUES (1, 1, 'Purchase', 'default', '', 'RACE-2', '', "
			     "'920001', '', '', 'x', '', 'PENDING', 'test-b')");
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	memset(&ga, 0, sizeof(ga));
	in.partner_reference_no = "RACE-2";
	in.external_id = "920002";
	assert_int_equal(store_journal_intent(f->a, &in, on_result, &ga), 0);
	/* until A's insert waits on the lock */
	while (admin_int(f, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
			    "'doku-bridged' AND wait_event_type = 'Lock'") == 0) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		assert_false(ga.done);
	}
	assert_false(ga.done);
	res = PQexec(holder, "COMMIT");
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	PQfinish(holder);
	wait_for(f, &ga);
	assert_int_equal(ga.status, STORE_ERR_EXISTS);
	assert_string_equal(ga.rows[0].external_id, "920001");
}

/* Another transaction T: BEGIN, then its own intent on ref (uncommitted). */
static PGconn *holding(const char *ref, const char *ext)
{
	char sql[1024];
	PGconn *t = admin_connect();
	PGresult *res;

	snprintf(sql, sizeof(sql),
		 "SET deadlock_timeout = '60s'; BEGIN; INSERT INTO doku.journal (created_ms, "
		 "updated_ms, method, profile, customer_ref, partner_reference_no, "
		 "original_reference_no, external_id, amount_value, amount_currency, body_sha256, "
		 "request_time, state, holder) VALUES (1, 1, 'Purchase', 'default', '', '%s', '', "
		 "'%s', '', '', 'x', '', 'PENDING', 'test-t')",
		 ref, ext);
	res = PQexec(t, sql);
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	return t;
}

static void t_exec(PGconn *t, const char *sql)
{
	PGresult *res = PQexec(t, sql);

	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
}

/* Until the store's connection waits on a lock (another transaction's key). */
static void until_store_waits(struct fx *f)
{
	while (admin_int(f, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
			    "'doku-bridged' AND wait_event_type = 'Lock'") == 0)
		uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Two daemons journal the same two new keys in opposite orders, each in one
 * batch: a deadlock, and PostgreSQL undoes one side's statement (the side
 * whose deadlock_timeout lapses first: the store's 1 s, T's 60 s). The
 * store's request is run once more after its batch, not failed as a lost
 * database: the money call would have been refused for nothing. Here T
 * (another daemon's batch) holds DL-2 and then wants DL-1, while the store's
 * batch holds DL-1 and wants DL-2. */
static void test_pg_deadlock_run_again(void **state)
{
	struct fx *f = *state;
	store_intent in = { .method = "Purchase", .profile = "default", .body_sha256 = SHA_A };
	struct got g0 = { 0 }, g1 = { 0 }, g2 = { 0 };
	PGconn *t1, *t2;
	PGresult *res;

	t1 = holding("DL-0", "930000"); /* keeps the store's worker busy: one batch for DL-1, DL-2 */
	t2 = holding("DL-2", "930002");
	in.partner_reference_no = "DL-0";
	in.external_id = "940000";
	assert_int_equal(store_journal_intent(f->a, &in, on_result, &g0), 0);
	until_store_waits(f);
	in.partner_reference_no = "DL-1";
	in.external_id = "940001";
	assert_int_equal(store_journal_intent(f->a, &in, on_result, &g1), 0);
	in.partner_reference_no = "DL-2";
	in.external_id = "940002";
	assert_int_equal(store_journal_intent(f->a, &in, on_result, &g2), 0);
	t_exec(t1, "COMMIT");
	PQfinish(t1);
	wait_for(f, &g0);
	assert_int_equal(g0.status, STORE_ERR_EXISTS);
	/* the batch: DL-1 in, DL-2 waits for T; then T wants DL-1 */
	until_store_waits(f);
	assert_false(g1.done);
	assert_int_equal(PQsendQuery(t2, "INSERT INTO doku.journal (created_ms, updated_ms, method, "
				     "profile, customer_ref, partner_reference_no, "
				     "original_reference_no, external_id, amount_value, "
				     "amount_currency, body_sha256, request_time, state, holder) "
				     "VALUES (1, 1, 'Purchase', 'default', '', 'DL-1', '', '930001', "
				     "'', '', 'x', '', 'PENDING', 'test-t') ON CONFLICT DO NOTHING"),
			 1);
	wait_for(f, &g1); /* the deadlock undid DL-2; the batch committed DL-1 */
	assert_int_equal(g1.status, 0);
	assert_false(g2.done);
	res = PQgetResult(t2); /* T's DL-1: the store's, committed: nothing inserted */
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	assert_string_equal(PQcmdTuples(res), "0");
	PQclear(res);
	assert_null(PQgetResult(t2));
	t_exec(t2, "COMMIT");
	PQfinish(t2);
	/* DL-2 ran again: T's row, EXISTS; never the database's error */
	wait_for(f, &g2);
	assert_int_equal(g2.status, STORE_ERR_EXISTS);
	assert_string_equal(g2.rows[0].external_id, "930002");
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.journal WHERE "
				      "partner_reference_no IN ('DL-1', 'DL-2')"),
			 2);
}

/* T's session of customer %s: tokens that do not open (T is another
 * daemon's transaction, not a store with the test's key). */
#define T_SESSION_UPSERT                                                                     \
	"INSERT INTO doku.sessions (profile, customer_ref, access_token, access_expiry, "      \
	"refresh_token, refresh_expiry, updated_ms, gen) VALUES ('default', '%s', '\\x00', 1, " \
	"'\\x00', 1, 1, nextval('doku.session_gen')) ON CONFLICT (profile, customer_ref) DO "  \
	"UPDATE SET gen = EXCLUDED.gen"

/* Another transaction T: BEGIN, then its own session of ref (uncommitted). */
static PGconn *holding_session(const char *ref)
{
	char sql[512];
	PGconn *t = admin_connect();

	snprintf(sql, sizeof(sql),
		 "SET deadlock_timeout = '60s'; BEGIN; " T_SESSION_UPSERT, ref);
	t_exec(t, sql);
	return t;
}

/* The journal's deadlock with customer sessions: two daemons store the
 * sessions of the same two customers in opposite orders, each in one batch
 * (two customers opening sessions on two pods at once). The store's put
 * undone by PostgreSQL runs once more after its batch: the customer's new
 * session, which DOKU has already issued, is kept, not failed as a lost
 * database. T holds S-2 and then wants S-1; the store's batch holds S-1 and
 * wants S-2. */
static void test_pg_deadlock_session_run_again(void **state)
{
	struct fx *f = *state;
	store_session s = { .profile = "default", .access_expiry = 1700000000,
			    .refresh_expiry = 1800000000 };
	struct got g0 = { 0 }, g1 = { 0 }, g2 = { 0 }, got;
	char sql[512];
	PGconn *t1, *t2;
	PGresult *res;

	t1 = holding_session("S-0"); /* keeps the store's worker busy: one batch for S-1, S-2 */
	t2 = holding_session("S-2");
	s.access_token = "acc-0";
	s.access_len = 5;
	s.refresh_token = "ref-0";
	s.refresh_len = 5;
	s.customer_ref = "S-0";
	assert_int_equal(store_session_put(f->a, &s, on_result, &g0), 0);
	until_store_waits(f);
	s.customer_ref = "S-1";
	s.access_token = "acc-1";
	assert_int_equal(store_session_put(f->a, &s, on_result, &g1), 0);
	s.customer_ref = "S-2";
	s.access_token = "acc-2";
	assert_int_equal(store_session_put(f->a, &s, on_result, &g2), 0);
	t_exec(t1, "COMMIT");
	PQfinish(t1);
	wait_for(f, &g0);
	assert_int_equal(g0.status, 0);
	/* the batch: S-1 in, S-2 waits for T; then T wants S-1 */
	until_store_waits(f);
	assert_false(g1.done);
	snprintf(sql, sizeof(sql), T_SESSION_UPSERT, "S-1");
	assert_int_equal(PQsendQuery(t2, sql), 1);
	wait_for(f, &g1); /* the deadlock undid S-2; the batch committed S-1 */
	assert_int_equal(g1.status, 0);
	assert_false(g2.done);
	res = PQgetResult(t2); /* T's S-1: after the store's, over it */
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	assert_null(PQgetResult(t2));
	t_exec(t2, "COMMIT");
	PQfinish(t2);
	/* S-2 ran again, after T: the store's session, never the database's error */
	wait_for(f, &g2);
	assert_int_equal(g2.status, 0);
	get_session(f, f->a, "S-2", &got);
	assert_int_equal(got.status, 0);
	assert_string_equal(got.access, "acc-2");
	assert_string_equal(got.refresh, "ref-0");
}

static void insert_row(struct fx *f, const char *ref, const char *state, const char *holder,
		       int64_t next)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO doku.journal (created_ms, updated_ms, method, profile, customer_ref, "
		 "partner_reference_no, original_reference_no, external_id, amount_value, "
		 "amount_currency, body_sha256, request_time, state, holder, next_attempt_ms) "
		 "VALUES (1, 1, 'Purchase', 'default', '', '%s', '', 'x-%s', '', '', '%s', '', "
		 "'%s', '%s', %" PRId64 ")",
		 ref, ref, SHA_A, state, holder, next);
	admin_exec(f, sql);
}

static bool ghost_adopted(struct fx *f)
{
	return admin_int(f, "SELECT count(*) FROM doku.journal WHERE state = 'PENDING' AND "
			    "holder = 'ghost-old'") == 0;
}

static void test_pg_orphans_of_dead_only(void **state)
{
	struct fx *f = *state;
	store_stats s;
	struct got g;

	/* A is alive with a call in flight; ghost-old stopped beating; ghost-none never did */
	add_intent(f, f->a, "LIVE-1", "930001");
	admin_exec(f, "INSERT INTO doku.daemons VALUES ('ghost-old', now() - interval '1 hour', "
		      "now() - interval '2 hours')");
	insert_row(f, "DEAD-1", "PENDING", "ghost-old", 0);
	insert_row(f, "DEAD-2", "PENDING", "ghost-none", 0);
	f->b = open_pg(f, "test-b"); /* adopts at open */
	store_get_stats(f->b, &s);
	assert_int_equal(s.orphans_adopted, 2);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.journal WHERE state = 'UNKNOWN' "
				      "AND detail LIKE '%ghost-old stopped beating%'"),
			 1);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.journal WHERE state = 'PENDING'"),
			 1); /* A's */
	get_ext(f, f->b, "930001", &g);
	assert_int_equal(g.rows[0].state, STORE_PENDING);
	/* on the beat too: A stops beating (its row aged by hand) */
	close_st(f, &f->b);
	store_fleet_times_set(20, 5000);
	f->b = open_pg(f, "test-b");
	admin_exec(f, "UPDATE doku.daemons SET beat = now() - interval '1 hour' WHERE holder = 'ghost-old'");
	insert_row(f, "DEAD-3", "PENDING", "ghost-old", 0);
	wait_until(f, ghost_adopted, "the beat to adopt a dead daemon's row");
	store_get_stats(f->b, &s);
	assert_int_equal(s.orphans_adopted, 1);
	/* A closed in order: its PENDING row is UNKNOWN at once, and it left the fleet */
	close_st(f, &f->a);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.journal WHERE state = 'PENDING'"),
			 0);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.daemons WHERE holder = 'test-a'"),
			 0);
}

static void test_pg_due_claims(void **state)
{
	struct fx *f = *state;
	struct got ga, gb;
	store_stats s;
	int64_t b_row;
	bool seen[8] = { false };

	f->b = open_pg(f, "test-b");
	for (int i = 0; i < 6; i++) {
		char ref[16];

		snprintf(ref, sizeof(ref), "DUE-%d", i);
		insert_row(f, ref, "UNKNOWN", "ghost", 1000 + i);
	}
	insert_row(f, "LATER", "UNKNOWN", "ghost", INT64_MAX / 4); /* not due: not claimed */
	due(f, f->a, 3, &ga);
	assert_int_equal(ga.n_rows, 3);
	due(f, f->b, 10, &gb);
	assert_int_equal(gb.n_rows, 4); /* the other three, and the later one */
	for (size_t i = 0; i < ga.n_rows; i++)
		seen[ga.rows[i].id % 8] = true;
	for (size_t i = 0; i + 1 < gb.n_rows; i++) {
		assert_false(seen[gb.rows[i].id % 8]); /* disjoint */
		assert_true(gb.rows[i].next_attempt_ms < 2000);
	}
	assert_string_equal(gb.rows[3].partner_reference_no, "LATER");
	store_get_stats(f->a, &s);
	assert_int_equal(s.rows_claimed, 3);
	store_get_stats(f->b, &s);
	assert_int_equal(s.rows_claimed, 3);
	/* A again: its own claims renewed, none of B's */
	due(f, f->a, 10, &ga);
	assert_int_equal(ga.n_rows, 4);
	/* only the claimer settles a row */
	b_row = gb.rows[0].id;
	assert_int_equal(reconciled(f, f->a, b_row, STORE_DONE, 0), STORE_ERR_STATE);
	assert_int_equal(reconciled(f, f->b, b_row, STORE_UNKNOWN, 5000), 0);
	/* settled (still UNKNOWN), its claim dropped: anyone's again */
	assert_int_equal(reconciled(f, f->a, b_row, STORE_DONE, 0), 0);
	/* an expired claim is nobody's */
	admin_exec(f, "UPDATE doku.journal SET claim_until = now() - interval '1 second' "
		      "WHERE claim_holder = 'test-a'");
	due(f, f->b, 10, &gb);
	assert_int_equal(gb.n_rows, 6);
}

static bool is_connected(struct fx *f)
{
	store_stats s;

	store_get_stats(f->a, &s);
	return s.connected;
}

static void test_pg_connection_killed(void **state)
{
	struct fx *f = *state;
	struct got g = { 0 };
	store_stats s;
	int64_t id = add_intent(f, f->a, "K-1", "940001");
	int tries = 0;

	admin_exec(f, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
		      "WHERE application_name = 'doku-bridged'");
	/* the next request fails: not journaled, never sent */
	intent_on(f, f->a, NULL, "K-2", "940002", 0, &g);
	assert_int_equal(g.status, STORE_ERR_IO);
	store_get_stats(f->a, &s);
	assert_false(s.connected);
	assert_true(s.errors >= 1);
	/* while in backoff requests fail at once; then it reconnects by itself */
	wait_until(f, is_connected, "the store to reconnect on its beat");
	do {
		memset(&g, 0, sizeof(g));
		intent_on(f, f->a, NULL, "K-2", "940002", 0, &g);
		assert_true(g.status == 0 || g.status == STORE_ERR_IO);
		assert_true(++tries < 1000);
	} while (g.status != 0);
	store_get_stats(f->a, &s);
	assert_true(s.connected);
	assert_int_equal(s.reconnects, 1);
	assert_int_equal(outcome(f, f->a, id, STORE_DONE, NULL, 0), 0);
}

/* The worker beats on its own: in the database, while idle */
static bool beat_seen(struct fx *f)
{
	return admin_int(f, "SELECT count(*) FROM doku.daemons WHERE holder = 'test-b' AND "
			    "beat > started") > 0;
}

static void test_pg_beats_while_idle(void **state)
{
	struct fx *f = *state;

	store_fleet_times_set(20, 0);
	f->b = open_pg(f, "test-b");
	wait_until(f, beat_seen, "a beat of an idle store");
}

/* A daemon silent for a day (killed, its pod gone) leaves no row behind: the
 * beat forgets it (they were kept for ever once); one silent for an hour stays. */
static bool ghost_forgotten(struct fx *f)
{
	return admin_int(f, "SELECT count(*) FROM doku.daemons WHERE holder = 'ghost-gone'") == 0;
}

static void test_pg_dead_daemons_forgotten(void **state)
{
	struct fx *f = *state;

	store_fleet_times_set(20, 0);
	f->b = open_pg(f, "test-b");
	admin_exec(f, "INSERT INTO doku.daemons VALUES ('ghost-gone', now() - interval '25 hours', "
		      "now() - interval '26 hours'), ('ghost-hour', now() - interval '1 hour', "
		      "now() - interval '2 hours')");
	wait_until(f, ghost_forgotten, "the beat to forget a daemon silent for a day");
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.daemons WHERE holder = 'ghost-hour'"),
			 1);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.daemons WHERE holder = 'test-b'"), 1);
}

/* ---- tests: the command line and the migration ---- */

static char *run_report(int (*fn)(const store_where *, FILE *), const store_where *w, int *rc)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	assert_non_null(mem);
	*rc = fn(w, mem);
	fclose(mem);
	return text;
}

static void fill_sqlite(struct fx *f)
{
	char err[STORE_ERR_MAX];
	store *sq = NULL, *keep;
	store_intent again = { .external_id = "950009", .body_sha256 = SHA_A,
			       .request_time = "2024-01-01T11:00:00+07:00",
			       .amount_value = "5.00", .amount_currency = "IDR" };
	struct got g = { 0 };
	int64_t d, u, n;

	assert_int_equal(test_dir_make(f->dir), 0);
	assert_int_equal(store_open(&f->loop, f->dir, f->key, &sq, err), 0);
	keep = f->a;
	f->a = sq;
	assert_int_equal(put_session(f, sq, "alice", "acc-alice", "ref-alice", NULL), 0);
	assert_int_equal(put_session(f, sq, "bob", "acc-bob", "", NULL), 0);
	d = add_intent(f, sq, "M-1", "950001");
	u = add_intent(f, sq, "M-2", "950002");
	n = add_intent(f, sq, "M-3", "950003");
	(void)add_intent(f, sq, "M-4\"\n", "950004"); /* stays PENDING */
	assert_int_equal(outcome(f, sq, d, STORE_DONE, "\x01\x02\x03", 0), 0);
	assert_int_equal(outcome(f, sq, u, STORE_UNKNOWN, NULL, 4242), 0);
	assert_int_equal(outcome(f, sq, n, STORE_NOT_DONE, NULL, 0), 0);
	assert_int_equal(store_journal_reissue(sq, n, STORE_NOT_DONE, &again, "again", on_result,
					       &g),
			 0);
	wait_for(f, &g);
	assert_int_equal(g.status, 0);
	f->a = keep;
	close_st(f, &sq);
}

static void test_pg_import_verify_export(void **state)
{
	struct fx *f = *state;
	const store_where pw = { .kind = STORE_POSTGRES, .conninfo = f->conninfo,
				 .password = f->password };
	char *report = NULL, *sq_json, *pg_json, *text;
	store_where sw = { .kind = STORE_SQLITE };
	size_t len = 0;
	struct got g;
	FILE *mem;
	int rc;

	close_st(f, &f->a); /* an empty target */
	admin_exec(f, "DROP SCHEMA doku CASCADE");
	admin_exec(f, "CREATE SCHEMA doku AUTHORIZATION doku");
	fill_sqlite(f);
	sw.state_dir = f->dir;
	mem = open_memstream(&report, &len);
	rc = store_import_sqlite(&pw, f->dir, f->key, mem);
	fclose(mem);
	if (rc != 0)
		fail_msg("import: %d\n%s", rc, report);
	assert_non_null(strstr(report, "copied: 2 sessions, 4 journal rows, 1 earlier attempts"));
	assert_non_null(strstr(report, "verified: 2 sessions, 4 journal rows"));
	free(report);
	/* the journal reads the same on both, byte for byte */
	sq_json = run_report(store_export_journal_at, &sw, &rc);
	assert_int_equal(rc, 0);
	pg_json = run_report(store_export_journal_at, &pw, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(pg_json, sq_json);
	assert_non_null(strstr(pg_json, "\"response\":\"AQID\""));
	assert_non_null(strstr(pg_json, "\"earlier\":[{\"externalId\":\"950003\""));
	free(sq_json);
	free(pg_json);
	/* twice: nothing copied, verified again */
	report = NULL;
	mem = open_memstream(&report, &len);
	assert_int_equal(store_import_sqlite(&pw, f->dir, f->key, mem), 0);
	fclose(mem);
	assert_non_null(strstr(report, "already imported: nothing copied"));
	free(report);
	/* verify */
	text = run_report(store_verify_at, &pw, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "sessions: 2"));
	assert_non_null(strstr(text, "journal rows: 4"));
	if (strstr(text, "  PENDING: 2") == NULL) /* M-4, and M-3 sent again */
		fail_msg("%s", text);
	assert_non_null(strstr(text, "result: sound"));
	free(text);
	/* a daemon of the fleet uses it: sessions open, rows found, new ids follow */
	f->a = open_pg(f, "test-a"); /* adopts the imported PENDING row */
	get_session(f, f->a, "alice", &g);
	assert_int_equal(g.status, 0);
	assert_string_equal(g.access, "acc-alice");
	get_ext(f, f->a, "950001", &g);
	assert_int_equal(g.rows[0].state, STORE_DONE);
	assert_true(add_intent(f, f->a, "M-5", "950005") > 4);
	assert_int_equal(admin_int(f, "SELECT count(*) FROM doku.journal WHERE state = 'PENDING' "
				      "AND holder = ''"),
			 0);
	/* now the target holds other rows: refused, nothing changed */
	report = NULL;
	mem = open_memstream(&report, &len);
	assert_int_equal(store_import_sqlite(&pw, f->dir, f->key, mem), STORE_ERR_STATE);
	fclose(mem);
	assert_non_null(strstr(report, "holds other"));
	free(report);
	/* another key: refused */
	{
		sealed_key *other;

		assert_int_equal(sealed_key_new(key2, &other), 0);
		report = NULL;
		mem = open_memstream(&report, &len);
		assert_int_equal(store_import_sqlite(&pw, f->dir, other, mem), STORE_ERR_KEY);
		fclose(mem);
		free(report);
		sealed_key_free(other);
	}
}

/* Intents per second, one store, 2,000 in flight: a figure, not a check. */
static void test_pg_bench_intents(void **state)
{
	struct fx *f = *state;
	enum { N = 2000 };
	store_intent in = { .method = "TopUp", .profile = "default", .customer_ref = "c",
			    .body_sha256 = SHA_A };
	struct { int done, failed; } c = { 0, 0 };
	char ref[32], ext[32];
	uint64_t t0;
	store_stats s;
	struct got *gs = calloc(N, sizeof(*gs));

	assert_non_null(gs);
	t0 = uv_hrtime();
	for (int i = 0; i < N; i++) {
		snprintf(ref, sizeof(ref), "B-%06d", i);
		snprintf(ext, sizeof(ext), "6%08d", i);
		in.partner_reference_no = ref;
		in.external_id = ext;
		assert_int_equal(store_journal_intent(f->a, &in, on_result, &gs[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		wait_for(f, &gs[i]);
		c.done++;
		c.failed += gs[i].status != 0;
	}
	store_get_stats(f->a, &s);
	print_message("PostgreSQL: %d intents in %.0f ms (%.0f/s); %" PRIu64 " round trips, "
		      "mean rtt %.0f us, max %" PRIu64 " us\n",
		      N, (double)(uv_hrtime() - t0) / 1e6,
		      N / ((double)(uv_hrtime() - t0) / 1e9), s.round_trips,
		      s.round_trips > 0 ? (double)s.rtt_us_sum / (double)s.round_trips : 0.0,
		      s.rtt_us_max);
	assert_int_equal(c.failed, 0);
	free(gs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pg_open_schema_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_open_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_concurrent_first_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_idempotency_and_state_machine, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pg_get_list_due_prune_reissue, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pg_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_b2b_lease_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_b2b_used_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_session_lease_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_intent_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_deadlock_run_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_deadlock_session_run_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_orphans_of_dead_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_due_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_connection_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_beats_while_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_dead_daemons_forgotten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_import_verify_export, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_bench_intents, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
