/* rpc/tokens.c as a fleet's (a shared store: PostgreSQL): two daemons' token
 * states on one loop, each with its own store connection (its own holder),
 * its own fake upstream, one database. The B2B token is fetched by one
 * daemon and taken by the other; a refused token is replaced once (compare,
 * then refresh); a customer session opened through one daemon serves the
 * other and, closed through one, is refused by both; a full table of sessions
 * makes room.
 *
 * Run through tests/tools/pg_run.sh (a throwaway PostgreSQL): each test gets
 * a database of its own, made with the superuser's PG* environment. */
#include "rpc_test.h"
#include "store.h"

#include <sys/stat.h>

#define PG_ENV_CONNINFO "DOKU_TEST_PG_CONNINFO"
#define PG_ENV_PASSWORD "DOKU_TEST_PG_PASSWORD_FILE"
#define REF "cust-fleet"

struct fleet {
	uv_loop_t loop;
	rt_env *a, *b;
	char db[64];
};

/* What a wait saw. */
struct waited {
	tok_wait w;
	unsigned n;
	int status;
};

static void on_waited(tok_wait *w, const tok_result *r)
{
	struct waited *x = (struct waited *)(void *)w;

	x->n++;
	x->status = r->status;
}

static bool all_done(void *data)
{
	struct waited **x = data;

	for (; *x != NULL; x++)
		if ((*x)->n == 0)
			return false;
	return true;
}

static unsigned db_seq;

static int setup_with(void **state, const char *more);

static int setup(void **state)
{
	return setup_with(state, "");
}

/* Each daemon's table holds two sessions. */
static int setup_small(void **state)
{
	return setup_with(state, "max_customer_sessions = 2\n");
}

static int setup_with(void **state, const char *more)
{
	struct fleet *f = calloc(1, sizeof(*f));
	const char *conninfo = getenv(PG_ENV_CONNINFO), *pw = getenv(PG_ENV_PASSWORD);
	char cmd[512], extra[2 * PATH_MAX + 2048], key[PATH_MAX];

	if (f == NULL || conninfo == NULL || pw == NULL) {
		fprintf(stderr, "run through tests/tools/pg_run.sh (%s, %s)\n", PG_ENV_CONNINFO,
			PG_ENV_PASSWORD);
		free(f);
		return -1;
	}
	snprintf(f->db, sizeof(f->db), "fleet_%ld_%u", (long)getpid(), ++db_seq);
	snprintf(cmd, sizeof(cmd), "psql -qX -v ON_ERROR_STOP=1 -c 'CREATE DATABASE %s OWNER doku' "
		 ">/dev/null", f->db);
	if (system(cmd) != 0)
		return -1;
	snprintf(key, sizeof(key), "%s/fleet.key", rt_creds);
	snprintf(extra, sizeof(extra),
		 "state_backend = postgres\n"
		 "state_postgres = %s dbname=%s\n"
		 "state_postgres_password_file = %s\n"
		 "state_key_file = %s\n%s", conninfo, f->db, pw, key, more);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->a = rt_env_new_at(true, extra, &f->loop);
	f->b = rt_env_new_at(true, extra, &f->loop);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fleet *f = *state;
	char cmd[256];

	rt_env_close(f->a);
	rt_env_close(f->b);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	rt_env_destroy(f->a);
	rt_env_destroy(f->b);
	snprintf(cmd, sizeof(cmd), "psql -qX -c 'DROP DATABASE %s' >/dev/null", f->db);
	(void)!system(cmd);
	free(f);
	return 0;
}

static int group_setup(void **state)
{
	char path[PATH_MAX];
	FILE *k;

	if (rt_group_setup(state) != 0)
		return -1;
	/* the fleet's one sealing key (as state.key: 64 hex digits, 0600) */
	snprintf(path, sizeof(path), "%s/fleet.key", rt_creds);
	k = fopen(path, "w");
	if (k == NULL)
		return -1;
	fprintf(k, "%s\n", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	fclose(k);
	return chmod(path, 0600);
}

static unsigned b2b_requests(const rt_env *e)
{
	unsigned n = 0;

	for (unsigned i = 0; i < fake_up_count(e->b.up); i++)
		n += fake_req_url_ends(fake_up_req(e->b.up, i), RT_B2B_PATH);
	return n;
}

/* Both daemons want the token at once: one B2B request in the fleet, and
 * both get its token. */
static void test_b2b_single_flight(void **state)
{
	struct fleet *f = *state;
	struct waited wa = { 0 }, wb = { 0 };
	struct waited *all[] = { &wa, &wb, NULL };
	rt_env *fetcher, *other;
	unsigned ga, gb;

	wa.w.fn = wb.w.fn = on_waited;
	assert_int_equal(tokens_b2b(f->a->tp, f->a->b.cfg, f->a->prof, &wa.w), 1);
	assert_int_equal(tokens_b2b(f->b->tp, f->b->b.cfg, f->b->prof, &wb.w), 1);
	/* one of them leases and asks DOKU; the other waits for it */
	while (fake_up_count(f->a->b.up) + fake_up_count(f->b->b.up) == 0)
		uv_run(&f->loop, UV_RUN_ONCE);
	fetcher = fake_up_count(f->a->b.up) > 0 ? f->a : f->b;
	other = fetcher == f->a ? f->b : f->a;
	rt_answer_b2b(fetcher, 0, "tok-fleet-1");
	rt_run_until(f->a, all_done, all);
	assert_int_equal(wa.status, 0);
	assert_int_equal(wb.status, 0);
	assert_string_equal(tokens_b2b_value(f->a->tp, &ga), "tok-fleet-1");
	assert_string_equal(tokens_b2b_value(f->b->tp, &gb), "tok-fleet-1");
	assert_int_equal(b2b_requests(fetcher), 1);
	assert_int_equal(b2b_requests(other), 0);
	assert_int_equal(tokens_leases_held(f->a->b.tokens) + tokens_leases_held(f->b->b.tokens), 0);
	/* held now: served at once, no request */
	assert_int_equal(tokens_b2b(f->a->tp, f->a->b.cfg, f->a->prof, &wa.w), 0);
	assert_int_equal(tokens_b2b(f->b->tp, f->b->b.cfg, f->b->prof, &wb.w), 0);
}

/* DOKU refused the token through both daemons: one new token for the fleet
 * (compare, then refresh); a refusal of a generation already replaced takes
 * the newer token without asking DOKU. */
static void test_b2b_compare_then_refresh(void **state)
{
	struct fleet *f = *state;
	struct waited wa = { 0 }, wb = { 0 };
	struct waited *all[] = { &wa, &wb, NULL };
	unsigned ga, gb, na, nb;

	test_b2b_single_flight(state);
	na = b2b_requests(f->a);
	nb = b2b_requests(f->b);
	(void)tokens_b2b_value(f->a->tp, &ga);
	(void)tokens_b2b_value(f->b->tp, &gb);
	tokens_b2b_invalidate(f->a->tp, ga);
	tokens_b2b_invalidate(f->b->tp, gb);
	wa.w.fn = wb.w.fn = on_waited;
	assert_int_equal(tokens_b2b(f->a->tp, f->a->b.cfg, f->a->prof, &wa.w), 1);
	assert_int_equal(tokens_b2b(f->b->tp, f->b->b.cfg, f->b->prof, &wb.w), 1);
	while (b2b_requests(f->a) + b2b_requests(f->b) == na + nb)
		uv_run(&f->loop, UV_RUN_ONCE);
	if (b2b_requests(f->a) > na)
		rt_answer_b2b(f->a, fake_up_count(f->a->b.up) - 1, "tok-fleet-2");
	else
		rt_answer_b2b(f->b, fake_up_count(f->b->b.up) - 1, "tok-fleet-2");
	rt_run_until(f->a, all_done, all);
	assert_int_equal(wa.status, 0);
	assert_int_equal(wb.status, 0);
	assert_int_equal(b2b_requests(f->a) + b2b_requests(f->b), na + nb + 1);
	assert_string_equal(tokens_b2b_value(f->a->tp, &ga), "tok-fleet-2");
	assert_string_equal(tokens_b2b_value(f->b->tp, &gb), "tok-fleet-2");
}

struct ended {
	int status;
	bool existed;
	unsigned n;
};

static void on_ended(int status, bool existed, void *data)
{
	struct ended *e = data;

	e->status = status;
	e->existed = existed;
	e->n++;
}

static bool ended_done(void *data)
{
	return ((struct ended *)data)->n > 0;
}

/* A session opened through A serves B without a request of B's; closed
 * through B, it is refused through A. */
static void test_session_shared(void **state)
{
	struct fleet *f = *state;
	struct waited wo = { 0 }, wb = { 0 }, wa = { 0 };
	struct waited *one[] = { &wo, NULL }, *two[] = { &wb, NULL }, *three[] = { &wa, NULL };
	struct ended ended = { -1, false, 0 };
	unsigned gen, before;
	int rc;

	wo.w.fn = wb.w.fn = wa.w.fn = on_waited;
	assert_int_equal(tokens_session_open(f->a->tp, f->a->b.cfg, f->a->prof, REF, "auth-1", &wo.w), 1);
	rt_run_until_requests(f->a, 1);
	rt_answer_b2b2c(f->a, 0, "acc-fleet", "ref-fleet");
	rt_run_until(f->a, all_done, one);
	assert_int_equal(wo.status, 0);

	before = fake_up_count(f->b->b.up);
	rc = tokens_session(f->b->tp, f->b->b.cfg, f->b->prof, REF, &wb.w);
	assert_int_equal(rc, 1); /* read from the database */
	rt_run_until(f->b, all_done, two);
	assert_int_equal(wb.status, 0);
	assert_string_equal(tokens_session_value(f->b->tp, REF, &gen), "acc-fleet");
	assert_int_equal(fake_up_count(f->b->b.up), before);
	/* asked again in the same loop turn (as the woken call does): served at once,
	   else every call would read the database forever (a bug once) */
	assert_int_equal(tokens_session(f->b->tp, f->b->b.cfg, f->b->prof, REF, &wb.w), 0);

	/* closed through B: the database forgets it before the answer */
	rc = tokens_session_end(f->b->tp, REF, on_ended, &ended);
	assert_int_equal(rc, 0);
	rt_run_until(f->b, ended_done, &ended);
	assert_int_equal(ended.status, 0);
	assert_true(ended.existed);
	/* A held it, and still refuses it: it asks the database */
	assert_non_null(tokens_session_value(f->a->tp, REF, &gen));
	rc = tokens_session(f->a->tp, f->a->b.cfg, f->a->prof, REF, &wa.w);
	assert_int_equal(rc, 1);
	rt_run_until(f->a, all_done, three);
	assert_int_equal(wa.status, TOK_ERR_NO_SESSION);
	assert_null(tokens_session_value(f->a->tp, REF, &gen));
}

/* A fleet daemon's table is a cache of the database's sessions: full, it
 * makes room instead of refusing (a bug once: max_customer_sessions refused
 * the fleet's customers), and a session it let go is read back when used. */
static void test_session_cache_full(void **state)
{
	struct fleet *f = *state;
	static const char *const refs[] = { "cust-1", "cust-2", "cust-3" };
	static const char *const access[] = { "acc-1", "acc-2", "acc-3" };
	struct waited w[3] = { 0 };
	struct waited *one[2] = { NULL, NULL };
	tok_health h;
	unsigned gen, before;
	int rc;

	for (unsigned i = 0; i < 3; i++) {
		w[i].w.fn = on_waited;
		one[0] = &w[i];
		before = fake_up_count(f->a->b.up);
		rc = tokens_session_open(f->a->tp, f->a->b.cfg, f->a->prof, refs[i], "auth", &w[i].w);
		assert_int_equal(rc, 1);
		rt_run_until_requests(f->a, before + 1);
		rt_answer_b2b2c(f->a, before, access[i], "ref");
		rt_run_until(f->a, all_done, one);
		assert_int_equal(w[i].status, 0);
		tokens_health(f->a->tp, &h);
		assert_true(h.sessions <= 2);
	}
	/* every one of them serves, through either daemon, read from the database
	   when it is not held; no token request */
	for (unsigned k = 0; k < 2; k++) {
		rt_env *e = k == 0 ? f->a : f->b;

		before = fake_up_count(e->b.up);
		for (unsigned i = 0; i < 3; i++) {
			struct waited x = { 0 };

			x.w.fn = on_waited;
			one[0] = &x;
			rc = tokens_session(e->tp, e->b.cfg, e->prof, refs[i], &x.w);
			if (rc == 1)
				rt_run_until(e, all_done, one);
			else
				x.status = rc;
			assert_int_equal(x.status, 0);
			assert_string_equal(tokens_session_value(e->tp, refs[i], &gen), access[i]);
			tokens_health(e->tp, &h);
			assert_true(h.sessions <= 2);
		}
		assert_int_equal(fake_up_count(e->b.up), before);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_b2b_single_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_b2b_compare_then_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_cache_full, setup_small, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, rt_group_teardown);
}
