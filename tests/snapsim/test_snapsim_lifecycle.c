/* doku-snapsim: command line, readiness, determinism with --seed, several
 * partners from a config file, SIGINT/SIGTERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <signal.h>

#include <cmocka.h>

#include "testutil.h"

#define SECOND_ID "BRN-0002-SECOND-PARTNER"

static char creds2[PATH_MAX];

static int setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (simtest_make_creds(creds) != 0 || simtest_make_creds(creds2) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	simtest_remove_creds(creds2);
	return sim_group_teardown(state);
}

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
	int w = snprintf(out, n, "%s/%s", dir, name);

	assert_true(w > 0 && (size_t)w < n);
}

static void test_bad_command_lines(void **state)
{
	char cert[PATH_MAX], key[PATH_MAX], sec[PATH_MAX], pub[PATH_MAX], err[2048];

	(void)state;
	path_in(cert, sizeof(cert), creds, "server.pem");
	path_in(key, sizeof(key), creds, "server.key");
	path_in(sec, sizeof(sec), creds, "client-secret");
	path_in(pub, sizeof(pub), creds, "partner.pub");
	{
		const char *args[] = { NULL };

		assert_int_equal(simtest_run_expect_exit(args, err, sizeof(err)), 2);
		assert_non_null(strstr(err, "usage"));
	}
	{
		const char *args[] = { "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
				       "--client-id", "BRN-X", "--client-secret-file", sec,
				       "--partner-public-key", pub, "--control", "10.1.2.3:0", NULL };

		assert_int_equal(simtest_run_expect_exit(args, err, sizeof(err)), 1);
		assert_non_null(strstr(err, "loopback"));
	}
	{
		const char *args[] = { "--listen", "nowhere", "--tls-cert", cert, "--tls-key", key,
				       "--client-id", "BRN-X", "--client-secret-file", sec,
				       "--partner-public-key", pub, NULL };

		assert_int_equal(simtest_run_expect_exit(args, err, sizeof(err)), 1);
		assert_non_null(strstr(err, "--listen"));
	}
	{
		const char *args[] = { "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
				       "--tls-cert", cert, "--tls-key", key, NULL };

		assert_int_equal(simtest_run_expect_exit(args, err, sizeof(err)), 1);
		assert_non_null(strstr(err, "no partner"));
	}
	{
		const char *args[] = { "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
				       "--tls-cert", cert, "--tls-key", key, "--client-id", "BRN-X",
				       "--client-secret-file", sec, "--partner-public-key", sec, NULL };

		assert_int_equal(simtest_run_expect_exit(args, err, sizeof(err)), 1);
		assert_non_null(strstr(err, "not an RSA key"));
	}
	{
		const char *args[] = { "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
				       "--tls-cert", pub, "--tls-key", key, "--client-id", "BRN-X",
				       "--client-secret-file", sec, "--partner-public-key", pub, NULL };

		assert_int_equal(simtest_run_expect_exit(args, err, sizeof(err)), 1);
		assert_non_null(strstr(err, "HTTPS"));
	}
	{
		const char *args[] = { "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
				       "--tls-cert", cert, "--tls-key", key, "--client-id", "BRN-X",
				       "--client-secret-file", sec, "--partner-public-key", pub,
				       "--clock-skew", "soon", NULL };

		assert_int_equal(simtest_run_expect_exit(args, err, sizeof(err)), 1);
		assert_non_null(strstr(err, "--clock-skew"));
	}
}

/* The first B2B token and the first account reference of a fresh simulator. */
static void first_values(const char *seed, char token[SIMTEST_TOKEN_MAX], char ref[64])
{
	const char *extra[] = { "--seed", seed, NULL };
	simtest_proc p;
	simtest_client c;
	simtest_reply r;

	assert_int_equal(simtest_start(&p, creds, seed != NULL ? extra : NULL), 0);
	assert_int_equal(simtest_client_init(&c, &p), 0);
	assert_int_equal(simtest_b2b(&c), 0);
	snprintf(token, SIMTEST_TOKEN_MAX, "%s", c.b2b);
	memset(&r, 0, sizeof(r));
	simtest_call(&c, P_CREATE,
		     "{\"partnerReferenceNo\":\"det-1\",\"name\":\"D\",\"phoneNo\":\"081299990000\","
		     "\"email\":\"d@example.com\",\"redirectUrl\":\"https://m.example\"}", NULL, &r);
	assert_int_equal(r.http, 200);
	snprintf(ref, 64, "%s", simtest_field(&r, "referenceNo"));
	simtest_reply_free(&r);
	/* after a reset the same sequence starts again */
	assert_int_equal(simtest_ctl(&p, "POST", "/control/reset", "{}", NULL), 200);
	assert_int_equal(simtest_b2b(&c), 0);
	assert_string_equal(c.b2b, token);
	simtest_client_free(&c);
	assert_int_equal(simtest_stop(&p), 0);
}

static void test_seed_makes_it_deterministic(void **state)
{
	char t1[SIMTEST_TOKEN_MAX], t2[SIMTEST_TOKEN_MAX], t3[SIMTEST_TOKEN_MAX];
	char r1[64], r2[64], r3[64];

	(void)state;
	first_values("42", t1, r1);
	first_values("42", t2, r2);
	first_values("43", t3, r3);
	assert_string_equal(t1, t2);
	assert_string_equal(r1, r2);
	assert_string_not_equal(t1, t3);
	assert_string_not_equal(r1, r3);
}

/* Two partners from a config file: tokens, secrets and external ids are each their own. */
static void test_partners_from_config(void **state)
{
	char ini[PATH_MAX], sec2[PATH_MAX], pub2[PATH_MAX], ext[40];
	const char *extra[] = { "--config", ini, NULL };
	simtest_client c2;
	simtest_reply r;
	simtest_opts o;
	FILE *f;

	(void)state;
	path_in(ini, sizeof(ini), creds2, "sim.ini");
	path_in(sec2, sizeof(sec2), creds2, "client-secret");
	path_in(pub2, sizeof(pub2), creds2, "partner.pub");
	f = fopen(ini, "w");
	assert_non_null(f);
	fprintf(f, "[settings]\nb2b_token_ttl = 120\n\n[partner.second]\nclient_id = " SECOND_ID
		   "\nclient_secret_file = %s\npartner_public_key = %s\n", sec2, pub2);
	fclose(f);
	assert_int_equal(simtest_start(&sim, creds, extra), 0);
	assert_int_equal(simtest_client_init(&cli, &sim), 0);
	/* the second partner's client: its key and secret, its client id */
	{
		simtest_proc p2 = sim;

		snprintf(p2.creds, sizeof(p2.creds), "%s", creds2);
		assert_int_equal(simtest_client_init(&c2, &p2), 0);
		snprintf(c2.client_id, sizeof(c2.client_id), SECOND_ID);
		snprintf(c2.ca, sizeof(c2.ca), "%s", cli.ca); /* the server's CA */
	}
	{
		json_t *j = NULL;

		assert_int_equal(simtest_ctl(&sim, "GET", "/control/health", NULL, &j), 200);
		assert_int_equal(json_integer_value(json_object_get(j, "partners")), 2);
		assert_string_equal(jstr(j, "https"), sim.https);
		json_decref(j);
	}
	assert_int_equal(simtest_b2b(&cli), 0);
	assert_int_equal(simtest_b2b(&c2), 0);
	/* the config's settings apply */
	memset(&r, 0, sizeof(r));
	simtest_token(&c2, P_TOKEN_B2B, "{\"grantType\":\"client_credentials\"}", NULL, &r);
	EXPECT_CODE(r, 200, "2007300");
	assert_string_equal(simtest_field(&r, "expiresIn"), "120");
	snprintf(c2.b2b, sizeof(c2.b2b), "%s", simtest_field(&r, "accessToken"));
	simtest_reply_free(&r);
	/* partner 2 fetching tokens does not knock out partner 1's */
	CALL(r, P_INQUIRE, "{\"partnerReferenceNo\":\"p1\"}", NULL);
	EXPECT_CODE(r, 404, "4040811");
	simtest_reply_free(&r);
	/* partner 1 cannot use partner 2's token, nor sign as partner 2 */
	memset(&o, 0, sizeof(o));
	o.b2b_token = c2.b2b;
	CALL(r, P_INQUIRE, "{\"partnerReferenceNo\":\"p1\"}", &o);
	EXPECT_CODE(r, 401, "4010801");
	simtest_reply_free(&r);
	memset(&o, 0, sizeof(o));
	o.set_name = "X-PARTNER-ID";
	o.set_value = SECOND_ID;
	o.b2b_token = c2.b2b;
	CALL(r, P_INQUIRE, "{\"partnerReferenceNo\":\"p1\"}", &o);
	EXPECT_CODE(r, 401, "4010800");
	simtest_reply_free(&r);
	/* external ids are unique per client: both may use the same one */
	snprintf(ext, sizeof(ext), "5%ld%d", (long)time(NULL), (int)getpid());
	memset(&o, 0, sizeof(o));
	o.external_id = ext;
	CALL(r, P_INQUIRE, "{\"partnerReferenceNo\":\"p1\"}", &o);
	EXPECT_CODE(r, 404, "4040811");
	simtest_reply_free(&r);
	memset(&r, 0, sizeof(r));
	simtest_call(&c2, P_INQUIRE, "{\"partnerReferenceNo\":\"p2\"}", &o, &r);
	EXPECT_CODE(r, 404, "4040811");
	simtest_reply_free(&r);
	memset(&r, 0, sizeof(r));
	simtest_call(&c2, P_INQUIRE, "{\"partnerReferenceNo\":\"p2\"}", &o, &r);
	EXPECT_CODE(r, 409, "4090800");
	simtest_reply_free(&r);
	/* the log names each client */
	{
		char *log = NULL;

		assert_int_equal(simtest_ctl_text(&sim, "/control/log?clientId=" SECOND_ID, &log), 200);
		assert_non_null(strstr(log, SECOND_ID));
		assert_null(strstr(log, cli.client_id));
		free(log);
	}
	simtest_client_free(&c2);
}

static void test_sigint_is_clean_too(void **state)
{
	simtest_proc p;

	(void)state;
	assert_int_equal(simtest_start(&p, creds, NULL), 0);
	assert_int_equal(kill(p.pid, SIGINT), 0);
	/* simtest_stop's SIGTERM may land after the exit: the status is what counts */
	assert_int_equal(simtest_stop(&p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_command_lines),
		cmocka_unit_test(test_seed_makes_it_deterministic),
		cmocka_unit_test(test_sigint_is_clean_too),
		cmocka_unit_test(test_partners_from_config),
		cmocka_unit_test(test_sigterm_clean_exit),
	};

	return cmocka_run_group_tests_name("snapsim_lifecycle", tests, setup, teardown);
}
