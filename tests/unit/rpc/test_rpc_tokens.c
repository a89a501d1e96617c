/* rpc/tokens.c alone, against the fake upstream: the B2B token's single
 * flight, its generations, refusals, withdrawn waits; customer sessions'
 * refresh single flight and a session closed while its refresh is out. */
#include "rpc_test.h"

#define NWAIT 5

struct waiter {
	tok_wait w;
	unsigned calls;
	tok_result last;
};

static void on_wait(tok_wait *w, const tok_result *r)
{
	struct waiter *x = w->data;

	x->calls++;
	x->last = *r;
}

static void waiter_init(struct waiter *x)
{
	memset(x, 0, sizeof(*x));
	x->w.fn = on_wait;
	x->w.data = x;
}

struct waiters {
	struct waiter *w;
	unsigned n;
};

static bool all_called(void *data)
{
	struct waiters *ws = data;

	for (unsigned i = 0; i < ws->n; i++)
		if (ws->w[i].calls == 0)
			return false;
	return true;
}

static void run_until_called(rt_env *e, struct waiter *w, unsigned n)
{
	struct waiters ws = { w, n };

	rt_run_until(e, all_called, &ws);
}

static int setup(void **state)
{
	*state = rt_env_new(false);
	return 0;
}

/* The table holds two sessions (max_customer_sessions). */
static int setup_small(void **state)
{
	*state = rt_env_new_at(false, "max_customer_sessions = 2\n", NULL);
	return 0;
}

static int teardown(void **state)
{
	rt_env_free(*state);
	return 0;
}

static unsigned count_url(const rt_env *e, const char *suffix)
{
	unsigned n = 0;

	for (unsigned i = 0; i < fake_up_count(e->b.up); i++)
		if (fake_req_url_ends(fake_up_req(e->b.up, i), suffix))
			n++;
	return n;
}

/* N waits for the B2B token: one request, every wait called once with it. */
static void test_b2b_single_flight(void **state)
{
	rt_env *e = *state;
	struct waiter w[NWAIT];
	const fake_req *rq;
	tok_health h;
	unsigned gen;

	for (unsigned i = 0; i < NWAIT; i++) {
		waiter_init(&w[i]);
		assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w[i].w), 1);
	}
	assert_int_equal(fake_up_count(e->b.up), 1);
	rq = fake_up_req(e->b.up, 0);
	assert_true(fake_req_url_ends(rq, RT_B2B_PATH));
	assert_string_equal(fake_req_header(rq, "X-CLIENT-KEY"), RT_CLIENT_ID);
	assert_non_null(fake_req_header(rq, "X-SIGNATURE"));
	assert_non_null(fake_req_header(rq, "X-TIMESTAMP"));
	assert_non_null(strstr(rq->body, "\"grantType\":\"client_credentials\""));
	assert_false(rq->fresh_connection);
	assert_null(tokens_b2b_value(e->tp, &gen));

	rt_answer_b2b(e, 0, "tok-A");
	for (unsigned i = 0; i < NWAIT; i++)
		assert_int_equal(w[i].calls, 0); /* never from inside the answer */
	run_until_called(e, w, NWAIT);
	for (unsigned i = 0; i < NWAIT; i++) {
		assert_int_equal(w[i].calls, 1);
		assert_int_equal(w[i].last.status, 0);
		assert_int_equal(w[i].last.http, 200);
		assert_string_equal(w[i].last.response_code, "2007300");
	}
	assert_string_equal(tokens_b2b_value(e->tp, &gen), "tok-A");
	assert_int_equal(fake_up_count(e->b.up), 1);

	/* held now: a new wait is answered at once, without a request */
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w[0].w), 0);
	assert_int_equal(fake_up_count(e->b.up), 1);
	tokens_health(e->tp, &h);
	assert_true(h.b2b_valid);
	assert_int_equal(h.fetches, 1);
	for (unsigned i = 0; i < NWAIT; i++)
		assert_int_equal(w[i].calls, 1);
}

/* tokens_b2b_invalidate drops only the generation it names. */
static void test_b2b_invalidate_generation(void **state)
{
	rt_env *e = *state;
	struct waiter w;
	unsigned g1, g2, g;

	waiter_init(&w);
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w.w), 1);
	rt_answer_b2b(e, 0, "tok-A");
	run_until_called(e, &w, 1);
	assert_string_equal(tokens_b2b_value(e->tp, &g1), "tok-A");

	tokens_b2b_invalidate(e->tp, g1); /* the current one: dropped */
	assert_null(tokens_b2b_value(e->tp, &g));
	waiter_init(&w);
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w.w), 1);
	assert_int_equal(fake_up_count(e->b.up), 2);
	rt_answer_b2b(e, 1, "tok-B");
	run_until_called(e, &w, 1);
	assert_int_equal(w.last.status, 0);
	assert_string_equal(tokens_b2b_value(e->tp, &g2), "tok-B");
	assert_int_not_equal(g1, g2);

	/* a caller that signed with tok-A reports it late: tok-B stays */
	tokens_b2b_invalidate(e->tp, g1);
	assert_string_equal(tokens_b2b_value(e->tp, &g), "tok-B");
	assert_int_equal(g, g2);
	waiter_init(&w);
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w.w), 0);
	assert_int_equal(fake_up_count(e->b.up), 2);

	tokens_b2b_invalidate(e->tp, g2);
	assert_null(tokens_b2b_value(e->tp, &g));
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w.w), 1);
	assert_int_equal(fake_up_count(e->b.up), 3);
	rt_answer_b2b(e, 2, "tok-C");
	run_until_called(e, &w, 1);
	assert_string_equal(tokens_b2b_value(e->tp, &g), "tok-C");
}

/* DOKU refuses the token request: every wait gets TOK_ERR_REFUSED, once. */
static void test_b2b_refused(void **state)
{
	rt_env *e = *state;
	struct waiter w[NWAIT];
	unsigned gen;

	for (unsigned i = 0; i < NWAIT; i++) {
		waiter_init(&w[i]);
		assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w[i].w), 1);
	}
	rt_answer_code(e, 0, 401, "4017300", "Unauthorized. Invalid Client");
	run_until_called(e, w, NWAIT);
	for (unsigned i = 0; i < NWAIT; i++) {
		assert_int_equal(w[i].calls, 1);
		assert_int_equal(w[i].last.status, TOK_ERR_REFUSED);
		assert_int_equal(w[i].last.http, 401);
		assert_string_equal(w[i].last.response_code, "4017300");
		assert_non_null(strstr(w[i].last.response_message, "Invalid Client"));
	}
	assert_null(tokens_b2b_value(e->tp, &gen));
	assert_int_equal(fake_up_count(e->b.up), 1);

	/* the next need asks again */
	waiter_init(&w[0]);
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w[0].w), 1);
	assert_int_equal(fake_up_count(e->b.up), 2);
	rt_answer_b2b(e, 1, "tok-A");
	run_until_called(e, w, 1);
	assert_int_equal(w[0].last.status, 0);
}

/* Transport failures: a timeout is TOK_ERR_TIMEOUT, a broken connection or
 * a 5xx TOK_ERR_UNAVAILABLE. */
static void test_b2b_transport_failures(void **state)
{
	rt_env *e = *state;
	struct waiter w;

	waiter_init(&w);
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w.w), 1);
	fake_up_fail(e->b.up, 0, UP_ERR_TIMEOUT, true);
	run_until_called(e, &w, 1);
	assert_int_equal(w.last.status, TOK_ERR_TIMEOUT);
	assert_int_equal(w.last.http, 0);

	waiter_init(&w);
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w.w), 1);
	fake_up_fail(e->b.up, 1, UP_ERR_IO, false);
	run_until_called(e, &w, 1);
	assert_int_equal(w.last.status, TOK_ERR_UNAVAILABLE);

	waiter_init(&w);
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w.w), 1);
	rt_answer_code(e, 2, 503, "5037301", "Service Unavailable");
	run_until_called(e, &w, 1);
	assert_int_equal(w.last.status, TOK_ERR_UNAVAILABLE);
	assert_int_equal(w.last.http, 503);
	assert_int_equal(fake_up_count(e->b.up), 3);
}

/* A withdrawn wait is never called; the others are. */
static void test_cancel_wait(void **state)
{
	rt_env *e = *state;
	struct waiter w[3];
	unsigned gen;

	for (unsigned i = 0; i < 3; i++) {
		waiter_init(&w[i]);
		assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w[i].w), 1);
	}
	tokens_cancel(&w[1].w);
	tokens_cancel(&w[1].w); /* twice: a no-op */
	rt_answer_b2b(e, 0, "tok-A");
	rt_run_until_delivered(e);
	assert_int_equal(w[0].calls, 1);
	assert_int_equal(w[1].calls, 0);
	assert_int_equal(w[2].calls, 1);
	assert_string_equal(tokens_b2b_value(e->tp, &gen), "tok-A");

	/* every wait withdrawn: the answer is still kept */
	tokens_b2b_invalidate(e->tp, gen);
	waiter_init(&w[0]);
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w[0].w), 1);
	tokens_cancel(&w[0].w);
	rt_answer_b2b(e, 1, "tok-B");
	rt_run_until_delivered(e);
	assert_int_equal(w[0].calls, 0);
	assert_string_equal(tokens_b2b_value(e->tp, &gen), "tok-B");
}

/* tokens_free with a fetch in flight: the request is cancelled, its waits
 * are dropped (never called). */
static void test_free_with_fetch_in_flight(void **state)
{
	rt_env *e = *state;
	struct waiter w;

	waiter_init(&w);
	assert_int_equal(tokens_b2b(e->tp, e->b.cfg, e->prof, &w.w), 1);
	tokens_free(e->b.tokens);
	e->b.tokens = NULL;
	assert_true(fake_up_req(e->b.up, 0)->cancelled);
	assert_int_equal(upstream_active(e->b.up), 0);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_int_equal(w.calls, 0);
}

/* A session whose access token is due: N waits, one refresh, all served. */
static void test_session_refresh_single_flight(void **state)
{
	rt_env *e = *state;
	struct waiter w[NWAIT];
	const fake_req *rq;
	unsigned gen1, gen2;

	rt_restore_session(e, "cust-1", "acc-1", "ref-1", 3600);
	waiter_init(&w[0]);
	assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &w[0].w), 0);
	assert_string_equal(tokens_session_value(e->tp, "cust-1", &gen1), "acc-1");
	tokens_session_invalidate(e->tp, "cust-1", gen1); /* DOKU refused it: refresh */

	for (unsigned i = 0; i < NWAIT; i++) {
		waiter_init(&w[i]);
		assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &w[i].w), 1);
	}
	assert_int_equal(fake_up_count(e->b.up), 1);
	rq = fake_up_req(e->b.up, 0);
	assert_true(fake_req_url_ends(rq, RT_B2B2C_PATH));
	assert_non_null(strstr(rq->body, "\"grantType\":\"refresh_token\""));
	assert_non_null(strstr(rq->body, "\"refreshToken\":\"ref-1\""));

	rt_answer_b2b2c(e, 0, "acc-2", "ref-2");
	run_until_called(e, w, NWAIT);
	for (unsigned i = 0; i < NWAIT; i++) {
		assert_int_equal(w[i].calls, 1);
		assert_int_equal(w[i].last.status, 0);
	}
	assert_string_equal(tokens_session_value(e->tp, "cust-1", &gen2), "acc-2");
	assert_int_not_equal(gen1, gen2);
	assert_int_equal(fake_up_count(e->b.up), 1);

	/* fresh now: no request; and the refresh token used next is the new one */
	assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &w[0].w), 0);
	tokens_session_invalidate(e->tp, "cust-1", gen1); /* stale generation: no effect */
	assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &w[0].w), 0);
	tokens_session_invalidate(e->tp, "cust-1", gen2);
	waiter_init(&w[0]);
	assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &w[0].w), 1);
	assert_int_equal(fake_up_count(e->b.up), 2);
	assert_non_null(strstr(fake_up_req(e->b.up, 1)->body, "\"refreshToken\":\"ref-2\""));
	rt_answer_b2b2c(e, 1, "acc-3", "ref-3");
	run_until_called(e, w, 1);
	assert_string_equal(tokens_session_value(e->tp, "cust-1", &gen2), "acc-3");
}

/* A session with a lapsed access token is refreshed at its first need. */
static void test_session_lapsed_access_refreshed(void **state)
{
	rt_env *e = *state;
	struct waiter w;
	unsigned gen;

	rt_restore_session(e, "cust-1", "acc-1", "ref-1", -10);
	waiter_init(&w);
	assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &w.w), 1);
	assert_int_equal(count_url(e, RT_B2B2C_PATH), 1);
	rt_answer_b2b2c(e, 0, "acc-2", "ref-2");
	run_until_called(e, &w, 1);
	assert_int_equal(w.last.status, 0);
	assert_string_equal(tokens_session_value(e->tp, "cust-1", &gen), "acc-2");
}

/* A refused refresh ends the session: every wait gets TOK_ERR_REFUSED. */
static void test_session_refresh_refused(void **state)
{
	rt_env *e = *state;
	struct waiter w[2];
	unsigned gen;

	rt_restore_session(e, "cust-1", "acc-1", "ref-1", -10);
	for (unsigned i = 0; i < 2; i++) {
		waiter_init(&w[i]);
		assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &w[i].w), 1);
	}
	rt_answer_code(e, 0, 401, "4017401", "Invalid refresh token");
	run_until_called(e, w, 2);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(w[i].calls, 1);
		assert_int_equal(w[i].last.status, TOK_ERR_REFUSED);
	}
	assert_null(tokens_session_value(e->tp, "cust-1", &gen));
	assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &w[0].w),
			 TOK_ERR_NO_SESSION);
}

/* The session is closed while its refresh is in flight: the answer does
 * not bring it back, and the waits learn that there is no session. */
static void test_session_close_during_refresh(void **state)
{
	rt_env *e = *state;
	struct waiter w[2];
	tok_health h;
	unsigned gen;

	rt_restore_session(e, "cust-1", "acc-1", "ref-1", -10);
	for (unsigned i = 0; i < 2; i++) {
		waiter_init(&w[i]);
		assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &w[i].w), 1);
	}
	assert_int_equal(fake_up_count(e->b.up), 1);
	assert_true(tokens_session_close(e->tp, "cust-1"));
	assert_false(tokens_session_close(e->tp, "cust-1"));
	tokens_health(e->tp, &h);
	assert_int_equal(h.sessions, 0);

	rt_answer_b2b2c(e, 0, "acc-2", "ref-2");
	run_until_called(e, w, 2);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(w[i].calls, 1);
		assert_int_equal(w[i].last.status, TOK_ERR_NO_SESSION);
	}
	assert_null(tokens_session_value(e->tp, "cust-1", &gen));
	tokens_health(e->tp, &h);
	assert_int_equal(h.sessions, 0);
	assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &w[0].w),
			 TOK_ERR_NO_SESSION);
	assert_int_equal(fake_up_count(e->b.up), 1);
}

/* Closed during its refresh and opened again before the refresh answers:
 * the stale refresh does not overwrite the new session's token. */
static void test_session_reopened_during_refresh(void **state)
{
	rt_env *e = *state;
	struct waiter r, o;
	unsigned gen;

	rt_restore_session(e, "cust-1", "acc-1", "ref-1", -10);
	waiter_init(&r);
	assert_int_equal(tokens_session(e->tp, e->b.cfg, e->prof, "cust-1", &r.w), 1);
	assert_true(tokens_session_close(e->tp, "cust-1"));
	waiter_init(&o);
	assert_int_equal(tokens_session_open(e->tp, e->b.cfg, e->prof, "cust-1", "auth-1", &o.w), 1);
	assert_int_equal(fake_up_count(e->b.up), 2);
	assert_non_null(strstr(fake_up_req(e->b.up, 1)->body, "\"grantType\":\"authorization_code\""));
	assert_non_null(strstr(fake_up_req(e->b.up, 1)->body, "\"authCode\":\"auth-1\""));
	rt_answer_b2b2c(e, 1, "acc-open", "ref-open");
	run_until_called(e, &o, 1);
	assert_int_equal(o.last.status, 0);
	assert_string_equal(o.last.token_type, "Bearer");
	assert_string_equal(tokens_session_value(e->tp, "cust-1", &gen), "acc-open");

	rt_answer_b2b2c(e, 0, "acc-stale", "ref-stale");
	run_until_called(e, &r, 1);
	assert_string_equal(tokens_session_value(e->tp, "cust-1", &gen), "acc-open");
}

/* A single daemon's table is its sessions: full of live ones, a new one is
 * refused before any token request (the fleet's makes room: test_rpc_fleet);
 * a session closed makes room. */
static void test_sessions_limit(void **state)
{
	rt_env *e = *state;
	struct waiter o;
	unsigned gen;

	rt_restore_session(e, "cust-1", "acc-1", "ref-1", 600);
	rt_restore_session(e, "cust-2", "acc-2", "ref-2", 600);
	waiter_init(&o);
	assert_int_equal(tokens_session_open(e->tp, e->b.cfg, e->prof, "cust-3", "auth-3", &o.w),
			 TOK_ERR_LIMIT);
	assert_int_equal(fake_up_count(e->b.up), 0);
	assert_non_null(tokens_session_value(e->tp, "cust-1", &gen));
	assert_non_null(tokens_session_value(e->tp, "cust-2", &gen));

	/* a session closed makes room */
	assert_true(tokens_session_close(e->tp, "cust-2"));
	assert_int_equal(tokens_session_open(e->tp, e->b.cfg, e->prof, "cust-3", "auth-3", &o.w), 1);
	rt_answer_b2b2c(e, 0, "acc-3", "ref-3");
	run_until_called(e, &o, 1);
	assert_int_equal(o.last.status, 0);
	assert_string_equal(tokens_session_value(e->tp, "cust-3", &gen), "acc-3");
	assert_non_null(tokens_session_value(e->tp, "cust-1", &gen));
	assert_null(tokens_session_value(e->tp, "cust-2", &gen));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_b2b_single_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_b2b_invalidate_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_b2b_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_b2b_transport_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_fetch_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_refresh_single_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_lapsed_access_refreshed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_refresh_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_close_during_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_reopened_during_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sessions_limit, setup_small, teardown),
	};

	return cmocka_run_group_tests(tests, rt_group_setup, rt_group_teardown);
}
