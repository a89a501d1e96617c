/* cmocka glue shared by the doku-snapsim tests: one simulator per test
 * program, started by the group setup, and assertion helpers. Include after
 * <cmocka.h>. */
#ifndef DOKU_SNAPSIM_TESTUTIL_H
#define DOKU_SNAPSIM_TESTUTIL_H

#include <stdio.h>
#include <string.h>

#include "simtest.h"

static simtest_proc sim;
static simtest_client cli;
static char creds[PATH_MAX];

/* Start one simulator with extra arguments for the whole group. */
static inline int sim_group_setup(const char *const *extra)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (simtest_make_creds(creds) != 0)
		return -1;
	if (simtest_start(&sim, creds, extra) != 0)
		return -1;
	return simtest_client_init(&cli, &sim);
}

static inline int sim_group_teardown(void **state)
{
	(void)state;
	simtest_client_free(&cli);
	if (sim.pid > 0)
		simtest_stop(&sim);
	simtest_remove_creds(creds);
	curl_global_cleanup();
	return 0;
}

/* The last test of every group: SIGTERM gives a clean exit (status 0; in
 * the sanitizer build that also means no leak and no error report). */
static inline void test_sigterm_clean_exit(void **state)
{
	(void)state;
	assert_int_equal(simtest_stop(&sim), 0);
}

/* Assert the HTTP status and responseCode of a reply; print it otherwise. */
#define EXPECT_CODE(r, status, code_text)                                                   \
	do {                                                                                \
		if ((r).http != (status) || strcmp((r).code, (code_text)) != 0)             \
			fprintf(stderr, "reply: HTTP %ld curl %d %s\n", (r).http, (r).curl_rc, \
				(r).body != NULL ? (r).body : "");                          \
		assert_int_equal((r).http, (status));                                      \
		assert_string_equal((r).code, (code_text));                                 \
	} while (0)

/* The responseMessage contains text. */
#define EXPECT_MESSAGE(r, text)                                                             \
	do {                                                                                \
		const char *m_ = simtest_field(&(r), "responseMessage");                    \
		if (strstr(m_, (text)) == NULL)                                             \
			fprintf(stderr, "responseMessage '%s' lacks '%s'\n", m_, (text));   \
		assert_non_null(strstr(m_, (text)));                                        \
	} while (0)

/* A service call that must succeed at the HTTP level; the reply is left in r. */
#define CALL(r, path, body, opts)                                                           \
	do {                                                                                \
		memset(&(r), 0, sizeof(r));                                                 \
		simtest_call(&cli, (path), (body), (opts), &(r));                           \
	} while (0)

#define TOKEN(r, path, body, opts)                                                          \
	do {                                                                                \
		memset(&(r), 0, sizeof(r));                                                 \
		simtest_token(&cli, (path), (body), (opts), &(r));                          \
	} while (0)

/* A JSON member of a control answer as a string ("" when absent). */
static inline const char *jstr(const json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));

	return s != NULL ? s : "";
}

/* Move the world's clock. */
static inline void advance_clock(long seconds)
{
	char body[64];

	snprintf(body, sizeof(body), "{\"advanceSeconds\":%ld}", seconds);
	assert_int_equal(simtest_ctl(&sim, "POST", "/control/clock", body, NULL), 200);
}

#endif
