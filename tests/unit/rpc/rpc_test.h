/* Helpers of the RPC-layer tests (header-only, static): throwaway
 * credentials (tests/tools/mkcreds.sh), a configuration with one profile, a
 * loop with the fake upstream (fake_upstream.h), tokens and, for calls, the
 * journal in a fresh state_dir; running the loop until something happened
 * (never sleeping); DOKU's answers. */
#ifndef DOKU_RPC_TEST_H
#define DOKU_RPC_TEST_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "bridge.h"
#include "config.h"
#include "fake_upstream.h"
#include "journal.h"
#include "log.h"
#include "methods.h"
#include "snap_extid.h"
#include "snap_time.h"
#include "tokens.h"

#define RT_PROFILE "default"
#define RT_CLIENT_ID "BRN-0001-TEST"
#define RT_BASE_URL "https://doku.test"
#define RT_DIR_MAX 256          /* a temporary directory's path */
#define RT_WAIT_MS 10000u        /* run_until gives up after this long */
#define RT_WATCHDOG_MS 50u       /* the loop wakes at least this often while waiting */

#define RT_B2B_PATH "/authorization/v1/access-token/b2b"
#define RT_B2B2C_PATH "/authorization/v1/access-token/b2b2c"

/* The credentials, made once per test program. */
static char rt_creds[RT_DIR_MAX];

typedef struct rt_env {
	char dir[RT_DIR_MAX];        /* this test's directory: config, state */
	char state[PATH_MAX];
	char conf[PATH_MAX];
	uv_loop_t loop;
	uv_timer_t watchdog;
	struct bridge b;             /* loop, cfg, up, tokens, journal */
	const profile *prof;
	tok_profile *tp;
	bool shared_loop;            /* b.loop is another env's */
} rt_env;

static inline uint64_t rt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void rt_rmdir(const char *dir)
{
	char cmd[PATH_MAX + 16];

	if (dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static inline void rt_tmpdir(char path[RT_DIR_MAX])
{
	const char *t = getenv("TMPDIR");
	int n = snprintf(path, RT_DIR_MAX, "%s/doku-rpc-XXXXXX", t != NULL ? t : "/tmp");

	assert_true(n > 0 && n < RT_DIR_MAX);
	assert_non_null(mkdtemp(path));
}

/* Group setup: the methods table, X-EXTERNAL-IDs, credentials. */
static inline int rt_group_setup(void **state)
{
	const char *src = getenv("DOKU_SOURCE_DIR");
	char cmd[2 * PATH_MAX];

	(void)state;
	log_setup(getenv("DOKU_TEST_DEBUG") != NULL ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	if (src == NULL || methods_init() != 0 || snap_extid_init() != 0)
		return -1;
	rt_tmpdir(rt_creds);
	snprintf(cmd, sizeof(cmd), "bash '%s/tests/tools/mkcreds.sh' '%s/creds'", src, rt_creds);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

static inline int rt_group_teardown(void **state)
{
	(void)state;
	rt_rmdir(rt_creds);
	return 0;
}

static inline void rt_on_watchdog(uv_timer_t *t)
{
	(void)t; /* only wakes the loop */
}

/* A loop, the configuration, the fake upstream and tokens; with_journal:
 * the journal too (as daemon/main.c opens it). bridge_extra: more [bridge]
 * lines (NULL: none); shared: run on this loop (another env's) instead of
 * the env's own. */
static inline rt_env *rt_env_new_at(bool with_journal, const char *bridge_extra, uv_loop_t *shared);

static inline rt_env *rt_env_new(bool with_journal)
{
	return rt_env_new_at(with_journal, NULL, NULL);
}

static inline rt_env *rt_env_new_at(bool with_journal, const char *bridge_extra, uv_loop_t *shared)
{
	rt_env *e = calloc(1, sizeof(*e));
	config_diag *diag = calloc(1, sizeof(*diag));
	char jerr[JOURNAL_ERR_MAX];
	FILE *f;
	int rc;

	assert_non_null(e);
	assert_non_null(diag);
	rt_tmpdir(e->dir);
	snprintf(e->state, sizeof(e->state), "%s/state", e->dir);
	snprintf(e->conf, sizeof(e->conf), "%s/bridged.conf", e->dir);
	f = fopen(e->conf, "w");
	assert_non_null(f);
	fprintf(f,
		"[bridge]\n"
		"socket = %s/bridge.sock\n"
		"state_dir = %s\n"
		"%s\n"
		"\n"
		"[profile." RT_PROFILE "]\n"
		"base_url = " RT_BASE_URL "\n"
		"client_id = " RT_CLIENT_ID "\n"
		"client_secret_file = %s/creds/client-secret\n"
		"private_key_file = %s/creds/partner.key\n",
		e->dir, e->state, bridge_extra != NULL ? bridge_extra : "", rt_creds, rt_creds);
	assert_int_equal(fclose(f), 0);
	rc = config_load(e->conf, CONFIG_LOAD_SECRETS, &e->b.cfg, diag);
	if (rc != 0)
		for (unsigned i = 0; i < diag->n; i++)
			fprintf(stderr, "%s\n", diag->msg[i]);
	assert_int_equal(rc, 0);
	free(diag);

	if (shared == NULL) {
		assert_int_equal(uv_loop_init(&e->loop), 0);
		e->b.loop = &e->loop;
	} else {
		e->b.loop = shared;
		e->shared_loop = true;
	}
	list_init(&e->b.calls);
	e->b.started_ms = uv_now(e->b.loop);
	assert_int_equal(uv_timer_init(e->b.loop, &e->watchdog), 0);
	assert_int_equal(uv_timer_start(&e->watchdog, rt_on_watchdog, RT_WATCHDOG_MS, RT_WATCHDOG_MS), 0);
	uv_unref((uv_handle_t *)&e->watchdog);
	assert_int_equal(upstream_new(e->b.loop, e->b.cfg->upstream_connections, &e->b.up), 0);
	assert_int_equal(tokens_new(e->b.loop, e->b.up, methods_b2b_token_endpoint(),
				    methods_b2b2c_token_endpoint(), &e->b.tokens), 0);
	assert_int_equal(tokens_reconfigure(e->b.tokens, e->b.cfg), 0);
	if (with_journal) {
		rc = journal_open(e->b.loop, e->b.cfg, &e->b.journal, jerr);
		if (rc != 0)
			fprintf(stderr, "journal_open: %s\n", jerr);
		assert_int_equal(rc, 0);
		assert_true(journal_on(e->b.journal));
		tokens_restore(e->b.tokens, journal_store(e->b.journal), e->b.cfg);
	}
	e->prof = config_profile(e->b.cfg, RT_PROFILE);
	assert_non_null(e->prof);
	e->tp = tokens_profile(e->b.tokens, e->prof);
	assert_non_null(e->tp);
	return e;
}

static inline void rt_on_closed(uv_handle_t *h)
{
	(void)h;
}

/* Release everything (as daemon/main.c's shutdown does): rt_env_close
 * starts it, the loop finishes it, rt_env_destroy frees the env. */
static inline void rt_env_close(rt_env *e)
{
	assert_int_equal(e->b.calls_in_flight, 0);
	if (e->b.tokens != NULL)
		tokens_set_store(e->b.tokens, NULL);
	journal_close(e->b.journal);
	tokens_free(e->b.tokens);
	upstream_close(e->b.up);
	uv_close((uv_handle_t *)&e->watchdog, rt_on_closed);
}

static inline void rt_env_destroy(rt_env *e)
{
	config_unref(e->b.cfg);
	rt_rmdir(e->dir);
	free(e);
}

/* All of it for an env on its own loop, and check that the loop has no
 * handle left. (Envs on a shared loop: rt_env_close each, run the loop,
 * rt_env_destroy each.) */
static inline void rt_env_free(rt_env *e)
{
	if (e == NULL)
		return;
	assert_false(e->shared_loop);
	rt_env_close(e);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	rt_env_destroy(e);
}

/* Run the loop until cond(data) holds; fails the test after RT_WAIT_MS. */
static inline void rt_run_until(rt_env *e, bool (*cond)(void *data), void *data)
{
	uint64_t end = rt_now_ms() + RT_WAIT_MS;

	while (!cond(data)) {
		if (rt_now_ms() > end)
			fail_msg("the loop ran %u ms and the awaited event did not happen", RT_WAIT_MS);
		uv_run(e->b.loop, UV_RUN_ONCE);
	}
}

struct rt_count {
	upstream *up;
	unsigned n;
};

static inline bool rt_have_requests(void *data)
{
	struct rt_count *c = data;

	return fake_up_count(c->up) >= c->n;
}

/* Run the loop until n requests were started in all. */
static inline void rt_run_until_requests(rt_env *e, unsigned n)
{
	struct rt_count c = { e->b.up, n };

	rt_run_until(e, rt_have_requests, &c);
}

static inline bool rt_no_answer_queued(void *data)
{
	const upstream *u = data;
	unsigned n = fake_up_count(u);

	for (unsigned i = 0; i < n; i++) {
		const fake_req *rq = fake_up_req(u, i);

		if (rq->answered && rq->in_flight)
			return false;
	}
	return true;
}

/* Run the loop until every answer given has been delivered. */
static inline void rt_run_until_delivered(rt_env *e)
{
	rt_run_until(e, rt_no_answer_queued, e->b.up);
}

/* ---- DOKU's answers ---- */

/* A B2B token answer (HTTP 200, 2007300) carrying token. */
static inline void rt_answer_b2b(rt_env *e, unsigned i, const char *token)
{
	char body[512];

	snprintf(body, sizeof(body),
		 "{\"responseCode\":\"2007300\",\"responseMessage\":\"Successful\","
		 "\"accessToken\":\"%s\",\"tokenType\":\"Bearer\",\"expiresIn\":\"900\"}", token);
	fake_up_answer(e->b.up, i, 200, body);
}

/* A B2B2C token answer (HTTP 200, 2007400): access token for an hour,
 * refresh token for a day. */
static inline void rt_answer_b2b2c(rt_env *e, unsigned i, const char *access, const char *refresh)
{
	char body[1024], a[SNAP_TIMESTAMP_LEN + 1], r[SNAP_TIMESTAMP_LEN + 1];
	time_t now = time(NULL);

	assert_int_equal(snap_time_format(now + 3600, a), 0);
	assert_int_equal(snap_time_format(now + 86400, r), 0);
	snprintf(body, sizeof(body),
		 "{\"responseCode\":\"2007400\",\"responseMessage\":\"Successful\","
		 "\"accessToken\":\"%s\",\"tokenType\":\"Bearer\",\"accessTokenExpiryTime\":\"%s\","
		 "\"refreshToken\":\"%s\",\"refreshTokenExpiryTime\":\"%s\"}", access, a, refresh, r);
	fake_up_answer(e->b.up, i, 200, body);
}

/* A SNAP answer with only a responseCode and a message. */
static inline void rt_answer_code(rt_env *e, unsigned i, long http, const char *code,
				  const char *msg)
{
	char body[512];

	snprintf(body, sizeof(body), "{\"responseCode\":\"%s\",\"responseMessage\":\"%s\"}", code, msg);
	fake_up_answer(e->b.up, i, http, body);
}

/* A customer session read back as from the store: access token valid for
 * access_s seconds from now (negative: lapsed), refresh token for a day. */
static inline void rt_restore_session(rt_env *e, const char *ref, const char *access,
				      const char *refresh, long access_s)
{
	store_session s = { 0 };
	time_t now = time(NULL);

	s.profile = RT_PROFILE;
	s.customer_ref = ref;
	s.access_token = access;
	s.access_len = strlen(access);
	s.access_expiry = (int64_t)(now + access_s);
	s.refresh_token = refresh;
	s.refresh_len = strlen(refresh);
	s.refresh_expiry = (int64_t)(now + 86400);
	assert_int_equal(tokens_session_restore(e->tp, &s), 0);
}

/* "Bearer " value. */
static inline void rt_assert_bearer(const fake_req *rq, const char *header, const char *token)
{
	const char *v = fake_req_header(rq, header);
	char want[256];

	snprintf(want, sizeof(want), "Bearer %s", token);
	assert_non_null(v);
	assert_string_equal(v, want);
}

#endif
