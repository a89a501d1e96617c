/* A fleet's one journal (issue 13): three daemons on one PostgreSQL.
 *   test_reference_once: a TopUp through A, then the same partner reference through
 *     B: DOKU executed it once, both callers got the true outcome (B's answered from
 *     the journal, DONE, the same X-EXTERNAL-ID, not sent); GetOperation through C
 *     finds it. Then the same new reference through A and B at once: executed once,
 *     no caller told NOT_DONE, every DONE with the one X-EXTERNAL-ID.
 *     --verify-state and --export-journal on the postgres backend (while the fleet
 *     runs; the same rows through every daemon's configuration).
 *     Nothing durable is left in a fleet daemon's state_dir.
 *   test_wrong_key_refused: a daemon with another state key on the fleet's database,
 *     or the fleet's key on a schema of another version, is refused at start (no
 *     READY=1, exit 1, a message naming the database and what is wrong), and the
 *     fleet goes on serving. */
#include "harness.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLEET 3u
#define TOPUP_PATH "/snap-adapter/b2b2c/v1.0/emoney/topup"
#define OPSTATE(x) DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_##x

static h_env fl[FLEET];
static h_env other;

static int kill_all(void **state)
{
	(void)state;
	h_kill(&other);
	h_fleet_kill(fl, FLEET);
	return 0;
}

static void topup_req(Doku__Wallet__V1__TopUpRequest *tu, Doku__Wallet__V1__Amount *a,
		      const h_customer *cust, const char *ref)
{
	doku__wallet__v1__top_up_request__init(tu);
	tu->partner_reference_no = (char *)ref;
	tu->customer_number = (char *)cust->account_no;
	h_amount(a, "1500.00");
	tu->amount = a;
	tu->session_id = "fleet";
	tu->notes = "fleet journal";
}

static void on_reply(dokubridge_client *c, void *arg, const dokubridge_result *r,
		     ProtobufCMessage *resp)
{
	(void)c;
	h_record_result(r);
	dokubridge_message_free(resp);
	*(dokubridge_result *)arg = *r;
}

static void test_reference_once(void **state)
{
	Doku__Wallet__V1__TopUpRequest tu;
	Doku__Wallet__V1__Amount a;
	Doku__Wallet__V1__GetOperationRequest go = DOKU__WALLET__V1__GET_OPERATION_REQUEST__INIT;
	Doku__Wallet__V1__GetOperationResponse *gr = NULL;
	dokubridge_client *c[FLEET];
	dokubridge_result res, res_b;
	h_customer cust;
	char ref[96], ext[DOKUBRIDGE_EXTERNAL_ID_MAX], *out = NULL, *err = NULL, *exp0 = NULL;
	json_t *rows, *row;

	(void)state;
	h_fleet_start(fl, FLEET, NULL);
	for (unsigned i = 0; i < FLEET; i++)
		c[i] = h_client(&fl[i]);
	h_customer_new(&fl[0], c[0], "fjour", &cust);

	/* through A, then through B */
	snprintf(ref, sizeof(ref), "%s", h_ref("fj"));
	topup_req(&tu, &a, &cust, ref);
	OK_CALL(c[0], "fjour", "TopUp", tu, NULL, &res);
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_DONE);
	snprintf(ext, sizeof(ext), "%s", res.external_id);
	assert_true(ext[0] != '\0');
	OK_CALL(c[1], "fjour", "TopUp", tu, NULL, &res_b);
	fprintf(stderr, "fleet journal: the same reference through B: %s %s: %s\n",
		dokubridge_code_name(res_b.code), dokubridge_outcome_name(res_b.outcome), res_b.message);
	assert_int_equal(res_b.outcome, DOKUBRIDGE_OUTCOME_DONE);
	assert_string_equal(res_b.external_id, ext);
	assert_non_null(strstr(res_b.message, "answered from the journal"));
	assert_string_equal(res_b.response_code, res.response_code);
	assert_int_equal(h_sim_requests(&fl[0], TOPUP_PATH, ref), 1); /* executed once */

	/* GetOperation through C */
	go.partner_reference_no = ref;
	go.method = "TopUp";
	OK_CALL(c[2], NULL, "GetOperation", go, &gr, &res);
	assert_non_null(gr->operation);
	assert_string_equal(gr->operation->external_id, ext);
	assert_int_equal(gr->operation->state, OPSTATE(DONE));
	assert_string_equal(gr->operation->customer_ref, "fjour");
	dokubridge_message_free(gr);

	/* the same new reference through A and B at once */
	{
		dokubridge_call_opts opts = { .timeout_ms = 20000, .customer_ref = "fjour" };
		dokubridge_result d[2];
		char ref2[96];

		memset(d, 0, sizeof(d));
		snprintf(ref2, sizeof(ref2), "%s", h_ref("fj2"));
		topup_req(&tu, &a, &cust, ref2);
		for (unsigned i = 0; i < 2; i++)
			assert_int_equal(dokubridge_start(c[i], &opts, "TopUp", &tu.base, on_reply, &d[i],
							  NULL, &res), 0);
		for (unsigned i = 0; i < 2; i++) {
			uint64_t end = h_now_ms() + H_WAIT_MS;

			while (dokubridge_in_flight(c[i]) > 0) {
				assert_true(h_now_ms() < end);
				(void)dokubridge_poll(c[i], 100);
			}
		}
		go.partner_reference_no = ref2;
		OK_CALL(c[2], NULL, "GetOperation", go, &gr, &res);
		fprintf(stderr, "fleet journal: one reference through A and B at once: executed %u "
			"time(s); A: %s %s, B: %s %s (%s); the journal: %s\n",
			h_sim_requests(&fl[0], TOPUP_PATH, ref2), dokubridge_code_name(d[0].code),
			dokubridge_outcome_name(d[0].outcome), dokubridge_code_name(d[1].code),
			dokubridge_outcome_name(d[1].outcome), d[1].message, gr->operation->external_id);
		assert_int_equal(h_sim_requests(&fl[0], TOPUP_PATH, ref2), 1);
		for (unsigned i = 0; i < 2; i++) {
			assert_false(d[i].local);
			/* the truth as known when answered: done, or journaled and not known yet */
			assert_int_not_equal(d[i].outcome, DOKUBRIDGE_OUTCOME_NOT_DONE);
			if (d[i].outcome == DOKUBRIDGE_OUTCOME_DONE)
				assert_string_equal(d[i].external_id, gr->operation->external_id);
			else
				assert_int_equal(d[i].outcome, DOKUBRIDGE_OUTCOME_UNKNOWN);
		}
		assert_true(d[0].outcome == DOKUBRIDGE_OUTCOME_DONE || d[1].outcome == DOKUBRIDGE_OUTCOME_DONE);
		dokubridge_message_free(gr);
	}

	/* --verify-state and --export-journal on the postgres backend, while the fleet runs */
	{
		const char *verify[] = { "--verify-state", NULL }, *export[] = { "--export-journal", NULL };
		char want[64];

		assert_int_equal(h_tool(&fl[2], verify, &out, &err), 0);
		fprintf(stderr, "--verify-state (postgres):\n%s%s", out, err);
		assert_non_null(strstr(out, "result: sound"));
		rows = h_export_journal(&fl[0]);
		snprintf(want, sizeof(want), "journal rows: %zu\n", json_array_size(rows));
		assert_non_null(strstr(out, want));
		assert_non_null(strstr(out, "PostgreSQL"));
		free(out);
		free(err);
		row = h_journal_row(rows, "TopUp", ref);
		assert_non_null(row);
		assert_string_equal(h_json_str(row, "state"), "DONE");
		assert_string_equal(h_json_str(row, "externalId"), ext);
		assert_string_equal(h_json_str(row, "customerRef"), "fjour");
		assert_true(json_array_size(rows) >= 2);
		/* every daemon's configuration exports the same journal */
		assert_int_equal(h_tool(&fl[0], export, &exp0, NULL), 0);
		for (unsigned i = 1; i < FLEET; i++) {
			char *exp = NULL;

			assert_int_equal(h_tool(&fl[i], export, &exp, NULL), 0);
			assert_string_equal(exp, exp0);
			free(exp);
		}
		free(exp0);
		json_decref(rows);
	}
	/* nothing durable in a fleet daemon's state_dir (docs/fleet.md) */
	for (unsigned i = 0; i < FLEET; i++) {
		char dir[PATH_MAX + 16];
		DIR *d;
		struct dirent *de;
		unsigned n = 0;

		assert_true(snprintf(dir, sizeof(dir), "%s/state", fl[i].dir) < (int)sizeof(dir));
		d = opendir(dir);
		while (d != NULL && (de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
				fprintf(stderr, "fleet journal: %s/%s\n", dir, de->d_name);
				n++;
			}
		if (d != NULL)
			closedir(d);
		assert_int_equal(n, 0);
	}
	for (unsigned i = 0; i < FLEET; i++)
		dokubridge_free(c[i]);
	h_fleet_teardown(fl, FLEET);
}

/* Start e's daemon expecting a refusal: it must exit 1 without READY=1. What it
 * said (its log) into *words (malloc'd). */
static void start_refused(h_env *e, char **words)
{
	int status = 0, pfd;
	bool ready = false;
	pid_t pid;
	FILE *f;
	size_t cap = 0;

	struct stat sb;
	off_t before = stat(e->log, &sb) == 0 ? sb.st_size : 0;

	pid = h_daemon_spawn(e);
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_true(pfd >= 0);
	{
		struct pollfd p = { pfd, POLLIN, 0 };

		if (poll(&p, 1, H_WAIT_MS) != 1) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("the daemon was not refused within %d ms", H_WAIT_MS);
		}
	}
	close(pfd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	for (;;) {
		char msg[1024];
		ssize_t k = recv(e->notify_fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);

		if (k <= 0)
			break;
		msg[k] = '\0';
		ready = ready || strstr(msg, "READY=1") != NULL;
	}
	f = fopen(e->log, "r");
	assert_non_null(f);
	assert_int_equal(fseeko(f, before, SEEK_SET), 0); /* what this start said */
	*words = NULL;
	assert_true(getdelim(words, &cap, '\0', f) > 0);
	fclose(f);
	fprintf(stderr, "fleet: refused start: %s %d, %s; said: %s", WIFEXITED(status) ? "exited" : "killed",
		WIFEXITED(status) ? WEXITSTATUS(status) : -1, ready ? "READY=1 sent" : "no READY=1", *words);
	assert_false(ready);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_non_null(strstr(*words, "refusing to start"));
	assert_non_null(strstr(*words, h_pg_dbname())); /* names the database */
	assert_null(strstr(*words, "ready ("));
}

/* A daemon with another state key, or on a schema of another version: refused at start. */
static void test_wrong_key_refused(void **state)
{
	char bridge[4 * PATH_MAX + 2048], key[PATH_MAX], *words = NULL, *out = NULL;
	Doku__Wallet__V1__HealthRequest hq = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	dokubridge_client *c;
	dokubridge_result res;
	FILE *f;

	(void)state;
	h_fleet_start(fl, 1, NULL); /* the fleet's database holds its key's check */
	/* another daemon of the same merchant, on the same database, with its own key */
	h_setup_second(&other, &fl[0], "other");
	h_pg_bridge(&other, NULL, bridge, sizeof(bridge));
	h_fleet_key(&other, key); /* the fleet's */
	{
		char own[PATH_MAX + 16], *at = strstr(bridge, key);
		unsigned char raw[32];
		FILE *u = fopen("/dev/urandom", "rb");

		assert_non_null(at);
		assert_non_null(u);
		snprintf(own, sizeof(own), "%s/own.key", other.dir);
		assert_int_equal(fread(raw, 1, sizeof(raw), u), sizeof(raw));
		fclose(u);
		f = fopen(own, "w");
		assert_non_null(f);
		for (size_t i = 0; i < sizeof(raw); i++)
			fprintf(f, "%02x", raw[i]);
		fprintf(f, "\n");
		assert_int_equal(fclose(f), 0);
		assert_int_equal(chmod(own, 0600), 0);
		/* the line "state_key_file = <fleet's>" becomes "... = <own>" */
		{
			char rest[sizeof(bridge)];

			snprintf(rest, sizeof(rest), "%s", at + strlen(key));
			snprintf(at, sizeof(bridge) - (size_t)(at - bridge), "%s%s", own, rest);
		}
	}
	h_write_config(&other, bridge, NULL);
	start_refused(&other, &words);
	assert_non_null(strstr(words, "another key"));
	free(words);

	/* the fleet's key on a schema of another version (as a newer daemon would leave it) */
	h_pg_bridge(&other, NULL, bridge, sizeof(bridge));
	h_write_config(&other, bridge, NULL);
	assert_int_equal(h_pg_sql(NULL, "SELECT version FROM doku.schema_version", &out), 0);
	assert_int_equal(h_pg_sql(NULL, "UPDATE doku.schema_version SET version = 99", NULL), 0);
	start_refused(&other, &words);
	assert_non_null(strstr(words, "99"));
	free(words);
	{
		char sql[96];

		snprintf(sql, sizeof(sql), "UPDATE doku.schema_version SET version = %d", atoi(out));
		assert_int_equal(h_pg_sql(NULL, sql, NULL), 0);
		free(out);
	}
	h_teardown(&other);

	/* the fleet goes on */
	c = h_client(&fl[0]);
	OK_CALL(c, NULL, "Health", hq, NULL, &res);
	dokubridge_free(c);
	h_fleet_teardown(fl, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_reference_once, kill_all),
		cmocka_unit_test_teardown(test_wrong_key_refused, kill_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
