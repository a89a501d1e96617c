/* The journal's contract end to end (docs/state.md), against doku-snapsim over
 * real TLS, proven from the simulator's log and world and from the journal
 * (GetOperation and doku-bridged --export-journal):
 *   1. a NOT_DONE row is sent again when its caller asks again: a new
 *      X-EXTERNAL-ID, the earlier attempt kept in the row's history; two
 *      callers racing for it: one sends, the other is told UNKNOWN;
 *   2. a money-moving call that meets a 401 (revoked B2B token) is retried
 *      once with a new X-EXTERNAL-ID, and the journal holds the one that
 *      reached DOKU and took effect;
 *   3. a partial refund whose outcome is unknown (504 after DOKU did it) is
 *      reconciled to DONE, in agreement with DOKU's world;
 *   4. --verify-state and --export-journal on a sound database (every row as
 *      GetOperation tells it), and the refusal to start on a database that is
 *      corrupt (header, a page), not a database, or unreadable.
 * test_refund_unknown_hint and test_verify_unusable_file check what the
 * daemon tells a person in those cases (the status method's key, the file).
 *
 * On PostgreSQL (test_bridged_journal_pg, $DOKU_IT_STATE=postgres: one daemon on a
 * database of its own) the same cases run, the state read through the daemon's
 * tools and psql; the SQLite file's own cases (corrupt, not a database, unreadable,
 * named by --verify-state) give way to the database's: one that is not the
 * daemon's, one its role may not use (test_refuse_bad_database); another key is
 * refused in test_sealed_sessions, another schema version in test_fleet_journal. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PURCHASE "/snap-adapter/b2b2c/v1.0/debit/payment-host-to-host"
#define TOPUP "/snap-adapter/b2b2c/v1.0/emoney/topup"
#define REFUND "/snap-adapter/b2b2c/v1.0/debit/refund"
#define TOPUP_STATUS "/snap-adapter/b2b2c/v1.0/emoney/topup-status"
#define BALANCE "/snap-adapter/b2b2c/v1.0/balance-inquiry"
#define CUST2 "jr-sealed"
#define TAMPER_AT 20 /* the byte of a sealed token flipped */
#define SLOW_QUERY_MS 8000     /* a status query DOKU holds */
#define OTHER_SETTLES_MS 5000  /* another row settles meanwhile (first query after 0.5..1 s) */
#define POLL_MS 50
#define CUST "jr"
#define RECONCILE_WAIT_MS 30000 /* first status query after 0.5..1 s, then 1, 2, 4, 8 s */
#define TOOL_OUT_MAX (4u * 1024u * 1024u)

#define C(x) DOKUBRIDGE_##x
#define OPSTATE(x) DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_##x

static h_env env;
static dokubridge_client *cli, *cli2;
static h_customer cust;
static char nd_ref[96]; /* test_not_done_sent_again's partner reference */
static char refund_hint[DOKUBRIDGE_MESSAGE_MAX], refund_no[96]; /* test_partial_refund_reconciled's */

/* ---- helpers -------------------------------------------------------------------------- */

static void show(const char *what, const dokubridge_result *res)
{
	fprintf(stderr, "%s: %s http=%u rc=%s outcome=%s ext=%s: %s\n", what,
		dokubridge_code_name(res->code), res->http_status, res->response_code,
		dokubridge_outcome_name(res->outcome), res->external_id, res->message);
}

static int topup(const char *ref, const char *value, dokubridge_result *res)
{
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__Amount a;
	int rc;

	tu.partner_reference_no = (char *)ref;
	tu.customer_number = cust.account_no;
	h_amount(&a, value);
	tu.amount = &a;
	tu.session_id = "journal";
	tu.notes = "journal test";
	rc = h_call(cli, CUST, "TopUp", &tu.base, NULL, res);
	show("TopUp", res);
	return rc;
}

static void purchase_init(Doku__Wallet__V1__PurchaseRequest *p, Doku__Wallet__V1__Amount *a,
			  const char *ref, const char *value)
{
	doku__wallet__v1__purchase_request__init(p);
	p->partner_reference_no = (char *)ref;
	p->charge_token = "DOKU";
	h_amount(a, value);
	p->amount = a;
}

static int purchase(dokubridge_client *c, const char *ref, const char *value, dokubridge_result *res)
{
	Doku__Wallet__V1__PurchaseRequest p;
	Doku__Wallet__V1__Amount a;
	int rc;

	purchase_init(&p, &a, ref, value);
	rc = h_call(c, CUST, "Purchase", &p.base, NULL, res);
	show("Purchase", res);
	return rc;
}

/* GetOperation by partner reference (and method) or, when ref is NULL, by
 * external id; the response (free it with dokubridge_message_free). */
static Doku__Wallet__V1__GetOperationResponse *get_op(const char *ref, const char *method,
						      const char *ext)
{
	Doku__Wallet__V1__GetOperationRequest go = DOKU__WALLET__V1__GET_OPERATION_REQUEST__INIT;
	Doku__Wallet__V1__GetOperationResponse *r = NULL;
	dokubridge_result res;

	if (ref != NULL) {
		go.partner_reference_no = (char *)ref;
		go.method = (char *)method;
	} else {
		go.external_id = (char *)ext;
	}
	OK_CALL(cli, NULL, "GetOperation", go, &r, &res);
	assert_non_null(r->operation);
	return r;
}

/* Entries of the simulator's log for path whose partnerReferenceNo is ref, oldest first. */
static json_t *sim_log(const char *path, const char *ref)
{
	char url[512];
	char *text, *line, *save = NULL;
	json_t *out = json_array();

	snprintf(url, sizeof(url), "/control/log?path=%s&limit=20000", path);
	text = h_ctl(&env, "GET", url, NULL, NULL);
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);

		assert_non_null(o);
		if (strcmp(h_json_str(o, "path"), path) == 0 && strcmp(h_json_str(o, "partnerReferenceNo"), ref) == 0)
			json_array_append(out, o);
		json_decref(o);
	}
	free(text);
	return out;
}

/* The transactions of DOKU's world of type whose partnerReferenceNo is ref. */
static json_t *world_txns(const char *type, const char *ref)
{
	char url[128];
	char *text;
	json_t *all, *out = json_array(), *t;
	size_t i;

	snprintf(url, sizeof(url), "/control/transactions?type=%s", type);
	text = h_ctl(&env, "GET", url, NULL, NULL);
	all = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(all);
	json_array_foreach(all, i, t)
		if (strcmp(h_json_str(t, "partnerReferenceNo"), ref) == 0)
			json_array_append(out, t);
	json_decref(all);
	return out;
}

/* Run doku-bridged --config conf ARG; its exit status, stdout in *out and
 * stderr in *err (malloc'd; either may be NULL). Bounded by H_WAIT_MS. */
static int run_tool_with(const char *conf, const char *arg, char **out, char **err)
{
	char *argv[] = { DOKU_BRIDGED_BIN, "--config", (char *)conf, (char *)arg, NULL };
	int po[2], pe[2], status = 0;
	char *buf[2] = { NULL, NULL };
	size_t len[2] = { 0, 0 };
	bool open_[2] = { true, true };
	uint64_t end = h_now_ms() + H_WAIT_MS;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	assert_int_equal(pipe2(po, O_CLOEXEC), 0);
	assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pe[1], STDERR_FILENO);
	assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	while (open_[0] || open_[1]) {
		struct pollfd p[2] = { { open_[0] ? po[0] : -1, POLLIN, 0 },
				       { open_[1] ? pe[0] : -1, POLLIN, 0 } };
		int left = (int)(end - h_now_ms());

		if (left <= 0) {
			kill(pid, SIGKILL);
			fail_msg("doku-bridged %s did not finish within %d ms", arg, H_WAIT_MS);
		}
		assert_true(poll(p, 2, left) >= 0);
		for (int k = 0; k < 2; k++) {
			char chunk[65536];
			ssize_t n;

			if (!open_[k] || p[k].revents == 0)
				continue;
			n = read(k == 0 ? po[0] : pe[0], chunk, sizeof(chunk));
			if (n <= 0) {
				open_[k] = false;
				continue;
			}
			assert_true(len[k] + (size_t)n < TOOL_OUT_MAX);
			buf[k] = realloc(buf[k], len[k] + (size_t)n + 1);
			assert_non_null(buf[k]);
			memcpy(buf[k] + len[k], chunk, (size_t)n);
			len[k] += (size_t)n;
			buf[k][len[k]] = '\0';
		}
	}
	close(po[0]);
	close(pe[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	for (int k = 0; k < 2; k++)
		if (buf[k] == NULL)
			buf[k] = calloc(1, 1);
	h_record(buf[0], len[0]); /* the leak scan covers what the tools print */
	h_record(buf[1], len[1]);
	if (out != NULL)
		*out = buf[0];
	else
		free(buf[0]);
	if (err != NULL)
		*err = buf[1];
	else
		free(buf[1]);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_tool(const char *arg, char **out, char **err)
{
	return run_tool_with(env.conf, arg, out, err);
}

/* --export-journal, parsed: one JSON object per line. */
static json_t *row_of(json_t *rows, const char *method, const char *ref)
{
	json_t *r = h_journal_row(rows, method, ref);

	if (r == NULL)
		fail_msg("no journal row for %s %s in the export", method, ref);
	return r;
}

/* ---- set-up --------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	dokubridge_result res;

	(void)state;
	h_setup(&env);
	h_daemon_start(&env, NULL, NULL);
	free(h_ctl(&env, "POST", "/control/settings", "{\"autoApprovePurchases\":true}", NULL));
	cli = h_client(&env);
	cli2 = h_client(&env);
	h_customer_new(&env, cli, CUST, &cust);
	assert_int_equal(topup(h_ref("fund"), "300000.00", &res), 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dokubridge_free(cli);
	dokubridge_free(cli2);
	h_teardown(&env);
	return 0;
}

/* ---- 1. NOT_DONE, then the same partner reference again ------------------------------ */

/* docs/state.md, "NOT_DONE is sent again": the row certainly did not happen,
 * so the caller's second call is sent, with a new X-EXTERNAL-ID; the earlier
 * attempt stays in the row's history. */
static void test_not_done_sent_again(void **state)
{
	Doku__Wallet__V1__GetOperationResponse *g;
	Doku__Wallet__V1__PurchaseResponse *pr;
	char ref[96], ext1[64], ext2[64];
	dokubridge_result res;
	json_t *log, *world, *rows, *row, *earlier;

	(void)state;
	snprintf(ref, sizeof(ref), "%s", h_ref("nd"));
	/* 300,000.00 on the account: DOKU refuses 400,000.00 (balance short), nothing recorded */
	assert_int_equal(purchase(cli, ref, "400000.00", &res), -C(FAILED_PRECONDITION));
	assert_int_equal(res.outcome, C(OUTCOME_NOT_DONE));
	assert_int_equal(res.http_status, 403);
	assert_string_equal(res.response_code, "4035414");
	assert_int_equal(strlen(res.external_id), 36);
	snprintf(ext1, sizeof(ext1), "%s", res.external_id);
	g = get_op(ref, "Purchase", NULL);
	assert_int_equal(g->operation->state, OPSTATE(NOT_DONE));
	assert_string_equal(g->operation->external_id, ext1);
	assert_int_equal(g->operation->http_status, 403);
	assert_string_equal(g->operation->response_code, "4035414");
	dokubridge_message_free(g);

	/* the customer gets the money; the caller asks again, same request */
	assert_int_equal(topup(h_ref("more"), "200000.00", &res), 0);
	assert_int_equal(purchase(cli, ref, "400000.00", &res), 0);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	assert_int_equal(res.http_status, 200);
	assert_string_equal(res.response_code, "2005400");
	assert_null(strstr(res.message, "journal")); /* sent, not answered from the journal */
	assert_int_equal(strlen(res.external_id), 36);
	snprintf(ext2, sizeof(ext2), "%s", res.external_id);
	assert_string_not_equal(ext1, ext2);

	/* DOKU saw it twice, with two X-EXTERNAL-IDs: refused, then done */
	log = sim_log(PURCHASE, ref);
	assert_int_equal(json_array_size(log), 2);
	assert_string_equal(h_json_str(json_array_get(log, 0), "externalId"), ext1);
	assert_int_equal(h_json_num(json_array_get(log, 0), "httpStatus"), 403);
	assert_string_equal(h_json_str(json_array_get(log, 0), "responseCode"), "4035414");
	assert_string_equal(h_json_str(json_array_get(log, 1), "externalId"), ext2);
	assert_int_equal(h_json_num(json_array_get(log, 1), "httpStatus"), 200);
	json_decref(log);
	/* ... and it took effect once, under the second */
	world = world_txns("PAYMENT", ref);
	assert_int_equal(json_array_size(world), 1);
	assert_string_equal(h_json_str(json_array_get(world, 0), "externalId"), ext2);
	assert_string_equal(h_json_str(json_array_get(world, 0), "status"), "SUCCESS");
	json_decref(world);

	/* the journal: DONE under the X-EXTERNAL-ID that took effect, with DOKU's answer */
	g = get_op(ref, "Purchase", NULL);
	assert_int_equal(g->operation->state, OPSTATE(DONE));
	assert_string_equal(g->operation->external_id, ext2);
	assert_int_equal(g->operation->http_status, 200);
	assert_string_equal(g->operation->response_code, "2005400");
	assert_string_equal(g->operation->amount->value, "400000.00");
	pr = doku__wallet__v1__purchase_response__unpack(NULL, g->operation->response.len,
							   g->operation->response.data);
	assert_non_null(pr);
	assert_string_equal(pr->response_code, "2005400");
	doku__wallet__v1__purchase_response__free_unpacked(pr, NULL);
	dokubridge_message_free(g);
	g = get_op(NULL, NULL, ext2);
	assert_string_equal(g->operation->partner_reference_no, ref);
	dokubridge_message_free(g);
	/* the refused attempt is in the row's history */
	rows = h_export_journal(&env);
	row = row_of(rows, "Purchase", ref);
	assert_string_equal(h_json_str(row, "state"), "DONE");
	assert_string_equal(h_json_str(row, "externalId"), ext2);
	earlier = json_object_get(row, "earlier");
	assert_int_equal(json_array_size(earlier), 1);
	assert_string_equal(h_json_str(json_array_get(earlier, 0), "externalId"), ext1);
	assert_string_equal(h_json_str(json_array_get(earlier, 0), "state"), "NOT_DONE");
	assert_int_equal(h_json_num(json_array_get(earlier, 0), "httpStatus"), 403);
	assert_string_equal(h_json_str(json_array_get(earlier, 0), "responseCode"), "4035414");
	json_decref(rows);

	/* once DONE, the same reference is answered from the journal, not sent */
	assert_int_equal(purchase(cli, ref, "400000.00", &res), 0);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	assert_string_equal(res.external_id, ext2);
	assert_non_null(strstr(res.message, "journal"));
	assert_int_equal(h_sim_requests(&env, PURCHASE, ref), 2);
	snprintf(nd_ref, sizeof(nd_ref), "%s", ref);
}

static const ProtobufCMessage *same_purchase(unsigned i, void *arg)
{
	(void)i;
	return arg;
}

/* Two callers ask again at once for a NOT_DONE row: one sends, the other is
 * told UNKNOWN (ABORTED while the first one's resend is being journaled,
 * UNAVAILABLE once the row is PENDING); DOKU sees one new request. */
static void test_not_done_race(void **state)
{
	Doku__Wallet__V1__PurchaseRequest p;
	Doku__Wallet__V1__Amount a;
	Doku__Wallet__V1__GetOperationResponse *g;
	dokubridge_client *cs[2] = { cli, cli2 };
	char ref[96], ext1[64];
	dokubridge_result res;
	json_t *log, *world, *rows;
	h_burst b;

	(void)state;
	snprintf(ref, sizeof(ref), "%s", h_ref("ndrace"));
	/* 100,000.00 left after test_not_done_sent_again */
	assert_int_equal(purchase(cli, ref, "150000.00", &res), -C(FAILED_PRECONDITION));
	assert_int_equal(res.outcome, C(OUTCOME_NOT_DONE));
	snprintf(ext1, sizeof(ext1), "%s", res.external_id);
	assert_int_equal(topup(h_ref("more"), "100000.00", &res), 0);
	/* DOKU holds the one resend while the other caller asks */
	h_fault(&env, "{\"path\":\"" PURCHASE "\",\"kind\":\"delay\",\"delayMs\":800}");
	purchase_init(&p, &a, ref, "150000.00");
	h_burst_run(cs, 2, 1, "Purchase", CUST, same_purchase, NULL, &p.base, &b);
	fprintf(stderr, "race: ok %u, DONE %u, UNKNOWN %u, ABORTED %u, UNAVAILABLE %u\n", b.ok,
		b.outcomes[C(OUTCOME_DONE)], b.outcomes[C(OUTCOME_UNKNOWN)], b.codes[C(ABORTED)],
		b.codes[C(UNAVAILABLE)]);
	assert_int_equal(b.done, 2);
	assert_int_equal(b.ok, 1);
	assert_int_equal(b.outcomes[C(OUTCOME_DONE)], 1);
	assert_int_equal(b.outcomes[C(OUTCOME_UNKNOWN)], 1);
	assert_int_equal(b.codes[C(ABORTED)] + b.codes[C(UNAVAILABLE)], 1);

	log = sim_log(PURCHASE, ref);
	assert_int_equal(json_array_size(log), 2); /* the refused one, one resend */
	assert_string_equal(h_json_str(json_array_get(log, 0), "externalId"), ext1);
	assert_string_not_equal(h_json_str(json_array_get(log, 1), "externalId"), ext1);
	world = world_txns("PAYMENT", ref);
	assert_int_equal(json_array_size(world), 1);
	assert_string_equal(h_json_str(json_array_get(world, 0), "externalId"),
			    h_json_str(json_array_get(log, 1), "externalId"));
	g = get_op(ref, "Purchase", NULL);
	assert_int_equal(g->operation->state, OPSTATE(DONE));
	assert_string_equal(g->operation->external_id, h_json_str(json_array_get(log, 1), "externalId"));
	dokubridge_message_free(g);
	json_decref(world);
	json_decref(log);
	rows = h_export_journal(&env);
	assert_int_equal(json_array_size(json_object_get(row_of(rows, "Purchase", ref), "earlier")), 1);
	json_decref(rows);
}

/* ---- 2. the 401 retry ------------------------------------------------------------------ */

static void test_401_retry(void **state)
{
	Doku__Wallet__V1__GetOperationResponse *g;
	char ref[96], ext1[64], ext2[64];
	long tokens = h_counter(&env, "tokens", "b2b"), st;
	dokubridge_result res;
	json_t *log, *world, *rows, *row, *earlier;

	(void)state;
	free(h_ctl(&env, "POST", "/control/tokens", "{\"action\":\"revoke\",\"kind\":\"b2b\"}", &st));
	assert_int_equal(st, 200);
	snprintf(ref, sizeof(ref), "%s", h_ref("t401"));
	assert_int_equal(topup(ref, "1234.00", &res), 0);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	assert_string_equal(res.response_code, "2003800");
	snprintf(ext2, sizeof(ext2), "%s", res.external_id);
	assert_int_equal(h_counter(&env, "tokens", "b2b"), tokens + 1); /* one new token */

	/* DOKU saw the refused attempt and the retry, each with its own X-EXTERNAL-ID */
	log = sim_log(TOPUP, ref);
	assert_int_equal(json_array_size(log), 2);
	assert_int_equal(h_json_num(json_array_get(log, 0), "httpStatus"), 401);
	assert_string_equal(h_json_str(json_array_get(log, 0), "verdict"), "invalid_b2b_token");
	snprintf(ext1, sizeof(ext1), "%s", h_json_str(json_array_get(log, 0), "externalId"));
	assert_int_equal(h_json_num(json_array_get(log, 1), "httpStatus"), 200);
	assert_string_equal(h_json_str(json_array_get(log, 1), "externalId"), ext2);
	assert_int_equal(strlen(ext1), 36);
	assert_string_not_equal(ext1, ext2);
	json_decref(log);
	/* applied once, under the retry's X-EXTERNAL-ID */
	world = world_txns("TOPUP", ref);
	assert_int_equal(json_array_size(world), 1);
	assert_string_equal(h_json_str(json_array_get(world, 0), "externalId"), ext2);
	assert_string_equal(h_json_str(json_array_get(world, 0), "amount"), "1234.00");
	json_decref(world);

	/* the journal: the X-EXTERNAL-ID that reached DOKU and took effect, DONE */
	g = get_op(ref, "TopUp", NULL);
	assert_int_equal(g->operation->state, OPSTATE(DONE));
	assert_string_equal(g->operation->external_id, ext2);
	assert_int_equal(g->operation->http_status, 200);
	assert_string_equal(g->operation->response_code, "2003800");
	dokubridge_message_free(g);
	rows = h_export_journal(&env);
	row = row_of(rows, "TopUp", ref);
	assert_string_equal(h_json_str(row, "externalId"), ext2);
	earlier = json_object_get(row, "earlier");
	assert_int_equal(json_array_size(earlier), 1);
	fprintf(stderr, "401 retry: earlier attempt %s state %s http %lld rc \"%s\"\n",
		h_json_str(json_array_get(earlier, 0), "externalId"), h_json_str(json_array_get(earlier, 0), "state"),
		h_json_num(json_array_get(earlier, 0), "httpStatus"),
		h_json_str(json_array_get(earlier, 0), "responseCode"));
	assert_string_equal(h_json_str(json_array_get(earlier, 0), "externalId"), ext1);
	/* kept with DOKU's refusal: it did not take effect */
	assert_string_equal(h_json_str(json_array_get(earlier, 0), "state"), "NOT_DONE");
	assert_int_equal(h_json_num(json_array_get(earlier, 0), "httpStatus"), 401);
	assert_int_equal(strlen(h_json_str(json_array_get(earlier, 0), "responseCode")), 7);
	assert_memory_equal(h_json_str(json_array_get(earlier, 0), "responseCode"), "401", 3);
	json_decref(rows);
}

/* ---- 3. a partial refund, outcome unknown, reconciled --------------------------------- */

static void test_partial_refund_reconciled(void **state)
{
	Doku__Wallet__V1__RefundPurchaseRequest rf = DOKU__WALLET__V1__REFUND_PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__GetOperationResponse *g = NULL;
	Doku__Wallet__V1__Amount a;
	char buy[96], refund[96], ext[64];
	dokubridge_result res;
	json_t *log, *world;
	uint64_t start, end;
	int rc;

	(void)state;
	snprintf(buy, sizeof(buy), "%s", h_ref("pbuy"));
	assert_int_equal(purchase(cli, buy, "20000.00", &res), 0);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));

	/* DOKU refunds part of it, then answers 504 */
	h_fault(&env, "{\"path\":\"" REFUND "\",\"kind\":\"http504\",\"apply\":true}");
	snprintf(refund, sizeof(refund), "%s", h_ref("prf"));
	rf.original_partner_reference_no = buy;
	rf.partner_refund_no = refund;
	rf.reason = "one item returned";
	h_amount(&a, "5000.00");
	rf.refund_amount = &a;
	rc = h_call(cli, CUST, "RefundPurchase", &rf.base, NULL, &res);
	show("RefundPurchase", &res);
	assert_int_equal(rc, -C(DEADLINE_EXCEEDED));
	assert_int_equal(res.http_status, 504);
	assert_int_equal(res.outcome, C(OUTCOME_UNKNOWN));
	assert_int_equal(strlen(res.external_id), 36);
	snprintf(ext, sizeof(ext), "%s", res.external_id);
	snprintf(refund_hint, sizeof(refund_hint), "%s", res.message);
	snprintf(refund_no, sizeof(refund_no), "%s", refund);
	assert_non_null(strstr(res.message, ext));
	log = sim_log(REFUND, buy); /* the log names a refund by its purchase */
	assert_int_equal(json_array_size(log), 1);
	assert_string_equal(h_json_str(json_array_get(log, 0), "externalId"), ext);
	json_decref(log);

	/* reconciliation settles it: poll GetOperation, bounded */
	start = h_now_ms();
	end = start + RECONCILE_WAIT_MS;
	for (;;) {
		g = get_op(refund, "RefundPurchase", NULL);
		if (g->operation->state != OPSTATE(UNKNOWN) && g->operation->state != OPSTATE(PENDING))
			break;
		if (h_now_ms() > end) {
			json_t *rows = h_export_journal(&env);
			json_t *row = row_of(rows, "RefundPurchase", refund);

			fail_msg("the partial refund %s is still %s after %d ms and %u status queries: "
				 "\"%s\" (reconciling a partial refund needs GetTransaction by "
				 "partnerRefundNo; GetPurchaseStatus cannot tell part of a purchase)",
				 refund, h_json_str(row, "state"), RECONCILE_WAIT_MS,
				 g->operation->reconcile_attempts, h_json_str(row, "detail"));
		}
		dokubridge_message_free(g);
		poll(NULL, 0, 100); /* bounded polling of an observable condition */
	}
	fprintf(stderr, "partial refund reconciled in %llu ms, %u status queries: %s\n",
		(unsigned long long)(h_now_ms() - start), g->operation->reconcile_attempts,
		g->operation->response_code);
	assert_int_equal(g->operation->state, OPSTATE(DONE));
	assert_string_equal(g->operation->external_id, ext);
	assert_string_equal(g->operation->amount->value, "5000.00");
	assert_true(g->operation->reconcile_attempts >= 1);
	/* what settled it: the refund's own transaction; DOKU's answer to the call stays */
	assert_non_null(strstr(g->operation->detail, "GetTransaction"));
	assert_non_null(strstr(g->operation->detail, "DONE"));
	assert_int_equal(g->operation->http_status, 504);
	dokubridge_message_free(g);

	/* the journal agrees with DOKU's world: this refund, of this part, once */
	world = world_txns("REFUND", refund);
	assert_int_equal(json_array_size(world), 1);
	assert_string_equal(h_json_str(json_array_get(world, 0), "externalId"), ext);
	assert_string_equal(h_json_str(json_array_get(world, 0), "amount"), "5000.00");
	json_decref(world);
	world = world_txns("PAYMENT", buy);
	assert_int_equal(json_array_size(world), 1);
	assert_string_equal(h_json_str(json_array_get(world, 0), "refunded"), "5000.00");
	assert_string_equal(h_json_str(json_array_get(world, 0), "status"), "SUCCESS");
	json_decref(world);
	/* never sent again: neither by reconciliation nor when the caller asks again */
	rc = h_call(cli, CUST, "RefundPurchase", &rf.base, NULL, &res);
	show("RefundPurchase again", &res);
	assert_int_equal(rc, 0);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	assert_string_equal(res.external_id, ext);
	assert_int_equal(h_sim_requests(&env, REFUND, buy), 1);
}

/* Wait (bounded) until ref's row (method) leaves UNKNOWN/PENDING; its state, or -1. */
static int settled_within(const char *ref, const char *method, uint64_t ms)
{
	uint64_t end = h_now_ms() + ms;

	for (;;) {
		Doku__Wallet__V1__GetOperationResponse *g = get_op(ref, method, NULL);
		int st = (int)g->operation->state;

		dokubridge_message_free(g);
		if (st != OPSTATE(UNKNOWN) && st != OPSTATE(PENDING))
			return st;
		if (h_now_ms() > end)
			return -1;
		poll(NULL, 0, POLL_MS); /* bounded polling of an observable condition */
	}
}

/* One slow status query does not hold up the others: a TopUp's query is held
 * by DOKU for SLOW_QUERY_MS; a Purchase of unknown outcome meanwhile settles at
 * once (reconciliation used to wait for every query in flight to end). */
static void test_slow_query_does_not_hold_others(void **state)
{
	char tref[96], pref[96], json[256];
	dokubridge_result res;
	uint64_t end;
	int st;

	(void)state;
	snprintf(json, sizeof(json), "{\"path\":\"%s\",\"kind\":\"delay\",\"delayMs\":%d,\"count\":1}",
		 TOPUP_STATUS, SLOW_QUERY_MS);
	h_fault(&env, json);
	h_fault(&env, "{\"path\":\"" TOPUP "\",\"kind\":\"http504\",\"apply\":true,\"count\":1}");
	snprintf(tref, sizeof(tref), "%s", h_ref("slow"));
	assert_int_equal(topup(tref, "1000.00", &res), -C(DEADLINE_EXCEEDED));
	assert_int_equal(res.outcome, C(OUTCOME_UNKNOWN));
	/* its status query is out, held: both faults were taken */
	end = h_now_ms() + OTHER_SETTLES_MS;
	while (h_faults_armed(&env)) {
		assert_true(h_now_ms() < end);
		poll(NULL, 0, POLL_MS); /* bounded polling of an observable condition */
	}

	h_fault(&env, "{\"path\":\"" PURCHASE "\",\"kind\":\"http504\",\"apply\":true,\"count\":1}");
	snprintf(pref, sizeof(pref), "%s", h_ref("fast"));
	assert_int_equal(purchase(cli, pref, "1000.00", &res), -C(DEADLINE_EXCEEDED));
	assert_int_equal(res.outcome, C(OUTCOME_UNKNOWN));
	st = settled_within(pref, "Purchase", OTHER_SETTLES_MS);
	if (st < 0)
		fail_msg("the purchase %s was not reconciled within %d ms while another status query "
			 "was held", pref, OTHER_SETTLES_MS);
	assert_int_equal(st, OPSTATE(DONE));
	/* the held one is still out; it settles once DOKU answers */
	st = settled_within(tref, "TopUp", 0);
	assert_int_equal(st, -1);
	assert_int_equal(settled_within(tref, "TopUp", RECONCILE_WAIT_MS), OPSTATE(DONE));
}

/* On UNKNOWN the status message names the status method and what to ask it
 * with (docs/protocol.md). A refund's status method is GetTransaction, which
 * finds the refund by its partnerRefundNo; by the purchase's reference it finds
 * the purchase (SUCCESS), which says nothing of the refund. */
static void test_refund_unknown_hint(void **state)
{
	(void)state;
	if (refund_hint[0] == '\0')
		skip();
	fprintf(stderr, "refund hint: %s\n", refund_hint);
	assert_non_null(strstr(refund_hint, "GetTransaction"));
	if (strstr(refund_hint, refund_no) == NULL)
		fail_msg("the UNKNOWN reply of RefundPurchase %s sends the caller to GetTransaction "
			 "without its partnerRefundNo (\"%s\"): asked by the purchase's reference, "
			 "GetTransaction answers the purchase, not the refund", refund_no, refund_hint);
}

/* ---- 4. verify, export, and refusing a bad database ----------------------------------- */

/* "YYYY-MM-DDTHH:MM:SS[.mmm](Z|+HH:MM)" in seconds since the epoch; -1 if not. */
static long long epoch_of(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, n = 0;
	const char *z;
	long long t;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return -1;
	z = s + n;
	if (*z == '.')
		for (z++; *z >= '0' && *z <= '9'; z++)
			;
	if ((z[0] == '+' || z[0] == '-') && sscanf(z + 1, "%2d:%2d", &oh, &om) == 2) {
		if (z[0] == '-') {
			oh = -oh;
			om = -om;
		}
	} else if (strcmp(z, "Z") != 0) {
		return -1;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (long long)timegm(&tm);
	return t - (long long)oh * 3600 - (long long)om * 60;
}

static char *base64(const uint8_t *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;

	assert_non_null(out);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);

		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static const char *const state_names[] = { "UNSPECIFIED", "PENDING", "DONE", "NOT_DONE", "UNKNOWN" };

/* Every row of the export is the operation GetOperation tells. */
static void test_verify_and_export(void **state)
{
	Doku__Wallet__V1__ListOperationsRequest lo = DOKU__WALLET__V1__LIST_OPERATIONS_REQUEST__INIT;
	Doku__Wallet__V1__ListOperationsResponse *lr = NULL;
	char *out = NULL, *err = NULL, want[64];
	unsigned done = 0, checked = 0;
	dokubridge_result res;
	json_t *rows, *r;
	size_t i;

	(void)state;
	/* a sound database, read while the daemon runs */
	assert_int_equal(run_tool("--verify-state", &out, &err), 0);
	fprintf(stderr, "--verify-state:\n%s%s", out, err);
	assert_non_null(strstr(out, "integrity_check: ok"));
	assert_non_null(strstr(out, "result: sound"));
	/* it names what it checked: the file, or the database */
	assert_non_null(strstr(out, h_state_pg() ? h_pg_dbname() : "/state/state.db"));

	rows = h_export_journal(&env);
	lo.page_size = 100;
	OK_CALL(cli, NULL, "ListOperations", lo, &lr, &res);
	assert_int_equal(lr->n_operations, json_array_size(rows));
	assert_true(json_array_size(rows) >= 8);
	dokubridge_message_free(lr);
	snprintf(want, sizeof(want), "journal rows: %zu\n", json_array_size(rows));
	assert_non_null(strstr(out, want));

	json_array_foreach(rows, i, r) {
		Doku__Wallet__V1__GetOperationResponse *g = get_op(NULL, NULL, h_json_str(r, "externalId"));
		const Doku__Wallet__V1__Operation *o = g->operation;
		const json_t *amt = json_object_get(r, "amount");
		bool settled = o->state == OPSTATE(DONE) || o->state == OPSTATE(NOT_DONE);
		char *b64 = base64(o->response.data, o->response.len);

		assert_true(json_is_integer(json_object_get(r, "id")));
		assert_string_equal(h_json_str(r, "method"), o->method);
		assert_string_equal(h_json_str(r, "profile"), o->profile);
		assert_string_equal(h_json_str(r, "profile"), "default");
		assert_string_equal(h_json_str(r, "customerRef"), o->customer_ref);
		assert_string_equal(h_json_str(r, "customerRef"), CUST);
		assert_string_equal(h_json_str(r, "partnerReferenceNo"), o->partner_reference_no);
		assert_string_equal(h_json_str(r, "externalId"), o->external_id);
		assert_string_equal(h_json_str(amt, "value"), o->amount != NULL ? o->amount->value : "");
		assert_string_equal(h_json_str(amt, "currency"), o->amount != NULL ? o->amount->currency : "");
		assert_string_equal(h_json_str(r, "bodySha256"), o->body_sha256);
		assert_int_equal(strlen(o->body_sha256), 64);
		assert_true((unsigned)o->state < 5);
		if (settled) { /* an unsettled row may move between the two reads */
			assert_string_equal(h_json_str(r, "state"), state_names[o->state]);
			assert_int_equal(h_json_num(r, "httpStatus"), o->http_status);
			assert_string_equal(h_json_str(r, "responseCode"), o->response_code);
			assert_string_equal(h_json_str(r, "responseMessage"), o->response_message);
			assert_int_equal(h_json_num(r, "attempts"), o->reconcile_attempts);
			assert_string_equal(h_json_str(r, "detail"), o->detail);
			assert_string_equal(json_is_null(json_object_get(r, "response")) ? "" :
					    h_json_str(r, "response"), b64);
			assert_int_equal(epoch_of(h_json_str(r, "updated")), epoch_of(o->updated_at));
		}
		assert_true(epoch_of(h_json_str(r, "created")) > 0);
		assert_int_equal(epoch_of(h_json_str(r, "created")), epoch_of(o->created_at));
		assert_true(epoch_of(h_json_str(r, "requestTime")) > 0);
		assert_true(json_is_array(json_object_get(r, "earlier")));
		if (strcmp(h_json_str(r, "method"), "RefundPurchase") == 0)
			assert_true(h_json_str(r, "originalReferenceNo")[0] != '\0');
		done += o->state == OPSTATE(DONE);
		checked++;
		free(b64);
		dokubridge_message_free(g);
	}
	snprintf(want, sizeof(want), "  DONE: %u\n", done);
	assert_non_null(strstr(out, want));
	fprintf(stderr, "export: %u rows match GetOperation (%u DONE)\n", checked, done);
	json_decref(rows);
	free(out);
	free(err);
}

/* ---- the refusal ---------------------------------------------------------------------- */

static char state_db[PATH_MAX + 32], backup[PATH_MAX + 32];

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	if (f == NULL)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void spill(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

/* Remove state.db (a file or a directory) and its -wal and -shm. */
static void remove_db(void)
{
	char path[PATH_MAX + 48];
	struct stat sb;

	if (lstat(state_db, &sb) == 0)
		assert_int_equal(S_ISDIR(sb.st_mode) ? rmdir(state_db) : unlink(state_db), 0);
	snprintf(path, sizeof(path), "%s-wal", state_db);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s-shm", state_db);
	(void)unlink(path);
}

/* Start the daemon on the current state_dir, expecting a refusal: it must exit
 * 1 without READY=1; its words on stderr into *words (malloc'd). */
static int start_refused(char **words)
{
	size_t before = 0, after = 0;
	char *log;
	bool ready = false;
	int pfd, status = 0;
	pid_t pid;

	log = slurp(env.log, &before);
	free(log);
	pid = h_daemon_spawn(&env);
	/* bounded wait for its exit */
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_true(pfd >= 0);
	{
		struct pollfd p = { pfd, POLLIN, 0 };

		if (poll(&p, 1, H_WAIT_MS) != 1) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(pfd);
			fail_msg("doku-bridged did not exit on a bad state database within %d ms", H_WAIT_MS);
		}
	}
	close(pfd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* did it say READY=1 before it went? */
	for (;;) {
		char msg[1024];
		ssize_t k = recv(env.notify_fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);

		if (k <= 0)
			break;
		msg[k] = '\0';
		if (strstr(msg, "READY=1") != NULL)
			ready = true;
	}
	log = slurp(env.log, &after);
	assert_non_null(log);
	*words = strdup(log + before);
	assert_non_null(*words);
	free(log);
	fprintf(stderr, "refused start: %s, %s, said: %s", WIFEXITED(status) ? "exited" : "killed",
		ready ? "READY=1 sent" : "no READY=1", *words);
	assert_false(ready);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* On PostgreSQL: a digest of every row of the daemon's tables but schema_version
 * (which the refusals below change themselves), read as the superuser (malloc'd). */
static char *pg_digest(void)
{
	static const char sql[] =
		"SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), '')) FROM ("
		" SELECT 'j' || t::text AS x FROM doku.journal t"
		" UNION ALL SELECT 'a' || t::text FROM doku.attempts t"
		" UNION ALL SELECT 's' || t::text FROM doku.sessions t"
		" UNION ALL SELECT 'm' || t::text FROM doku.meta t"
		" UNION ALL SELECT 'b' || t::text FROM doku.b2b_tokens t"
		" UNION ALL SELECT 'd' || t::text FROM doku.daemons t) q";
	char *out = NULL;

	assert_int_equal(h_pg_sql(NULL, sql, &out), 0);
	out[strcspn(out, "\n")] = '\0';
	assert_int_equal(strlen(out), 32);
	return out;
}

/* The daemon refuses the state database as it is now; --verify-state says what is
 * wrong; the refusal leaves the file (on PostgreSQL: the database's rows) as it
 * found it. */
static void assert_refused(const char *what, const char *verify_says)
{
	char *words = NULL, *out = NULL, *err = NULL, *before = NULL, *after = NULL;
	size_t nb = 0, na = 0;
	struct stat sb;
	bool pg = h_state_pg(), file = !pg && stat(state_db, &sb) == 0 && S_ISREG(sb.st_mode);
	int st;

	fprintf(stderr, "---- %s\n", what);
	if (file)
		before = slurp(state_db, &nb);
	if (pg)
		before = pg_digest();
	st = start_refused(&words);
	assert_int_equal(st, 1);
	assert_non_null(strstr(words, "refusing to start"));
	/* names the file, or the database */
	assert_non_null(strstr(words, pg ? h_pg_dbname() : state_db));
	assert_non_null(strstr(words, "--verify-state"));
	assert_null(strstr(words, " ready ("));
	if (file) {
		after = slurp(state_db, &na);
		assert_non_null(after);
		assert_int_equal(na, nb);
		assert_memory_equal(after, before, nb);
	}
	if (pg) {
		after = pg_digest();
		assert_string_equal(after, before);
	}
	st = run_tool("--verify-state", &out, &err);
	fprintf(stderr, "--verify-state: exit %d\n%s%s", st, out, err);
	assert_int_equal(st, 1);
	assert_non_null(strstr(out, "result: "));
	assert_null(strstr(out, "result: sound"));
	assert_non_null(strstr(out, verify_says));
	free(words);
	free(out);
	free(err);
	free(before);
	free(after);
}

/* The root page of the journal table and the page size (opened read-only). */
static void journal_root(long *page, long *page_size)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;

	assert_int_equal(sqlite3_open_v2(backup, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT rootpage FROM sqlite_schema WHERE "
					    "type = 'table' AND name = 'journal'", -1, &s, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	*page = (long)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	*page_size = (long)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
}

/* The sound database back: the daemon starts, with the journal intact. */
static void start_sound(void)
{
	Doku__Wallet__V1__GetOperationResponse *g;

	h_daemon_start(&env, NULL, NULL);
	dokubridge_free(cli);
	cli = h_client(&env);
	g = get_op(nd_ref, "Purchase", NULL);
	assert_int_equal(g->operation->state, OPSTATE(DONE));
	dokubridge_message_free(g);
}

/* PostgreSQL's counterparts of a bad SQLite file: a database that is reachable
 * but not the daemon's (a journal table and no schema_version; an empty
 * schema_version), and one its role may not use (CONNECT revoked). Another key,
 * or a schema of another version: test_fleet_journal's test_wrong_key_refused
 * (and test_sealed_sessions below, for the key). */
static void refuse_bad_database_pg(void)
{
	char sql[512], *version = NULL;
	const char *db = h_pg_dbname(), *role = h_pg_role();

	fprintf(stderr, "skipped on PostgreSQL: the SQLite file's cases (its header, a page of the "
		"journal, not a database, a directory in its place, mode 000); instead a database "
		"that is not the daemon's, and one its role may not use\n");
	h_daemon_signal(&env, SIGTERM);
	assert_int_equal(h_daemon_wait(&env), 0);
	assert_int_equal(h_pg_sql(NULL, "SELECT version FROM doku.schema_version", &version), 0);
	version[strcspn(version, "\n")] = '\0';
	assert_true(atoi(version) >= 1);

	/* a journal table, no schema_version: never taken for an empty database */
	assert_int_equal(h_pg_sql(NULL, "ALTER TABLE doku.schema_version RENAME TO schema_version_away",
				  NULL), 0);
	assert_refused("a journal table, no schema_version", "not a doku-bridge state database");
	assert_int_equal(h_pg_sql(NULL, "ALTER TABLE doku.schema_version_away RENAME TO schema_version",
				  NULL), 0);

	/* an empty schema_version */
	assert_int_equal(h_pg_sql(NULL, "DELETE FROM doku.schema_version", NULL), 0);
	assert_refused("an empty schema_version", "not a doku-bridge state database");
	snprintf(sql, sizeof(sql), "INSERT INTO doku.schema_version VALUES (%d)", atoi(version));
	assert_int_equal(h_pg_sql(NULL, sql, NULL), 0);

	/* its role may not connect (as a file the daemon may not read) */
	snprintf(sql, sizeof(sql), "REVOKE CONNECT ON DATABASE \"%s\" FROM \"%s\"", db, role);
	assert_int_equal(h_pg_sql("postgres", sql, NULL), 0);
	assert_refused("CONNECT revoked", "permission denied");
	snprintf(sql, sizeof(sql), "GRANT CONNECT ON DATABASE \"%s\" TO \"%s\"", db, role);
	assert_int_equal(h_pg_sql("postgres", sql, NULL), 0);
	free(version);
	start_sound();
}

static void test_refuse_bad_database(void **state)
{
	char *good, *bad, wal[PATH_MAX + 48];
	size_t n = 0;
	long root = 0, psz = 0;
	struct stat sb;

	(void)state;
	if (h_state_pg()) {
		refuse_bad_database_pg();
		return;
	}
	snprintf(state_db, sizeof(state_db), "%s/state/state.db", env.dir);
	snprintf(backup, sizeof(backup), "%s/state.db.good", env.dir);
	h_daemon_signal(&env, SIGTERM);
	assert_int_equal(h_daemon_wait(&env), 0);
	snprintf(wal, sizeof(wal), "%s-wal", state_db);
	if (stat(wal, &sb) == 0 && sb.st_size > 0)
		fprintf(stderr, "note: %s left with %lld bytes after a clean stop\n", wal,
			(long long)sb.st_size);
	good = slurp(state_db, &n);
	assert_non_null(good);
	assert_true(n >= 4096);
	spill(backup, good, n);
	journal_root(&root, &psz);
	fprintf(stderr, "state.db: %zu bytes, page size %ld, journal root page %ld\n", n, psz, root);
	assert_true(root >= 2 && psz >= 512 && (size_t)(root * psz) <= n);

	/* the header's magic overwritten */
	bad = malloc(n);
	assert_non_null(bad);
	memcpy(bad, good, n);
	memcpy(bad, "this is no magic", 16);
	remove_db();
	spill(state_db, bad, n);
	assert_refused("header overwritten", "not a database");

	/* a page of the journal overwritten with garbage */
	memcpy(bad, good, n);
	for (long i = 0; i < psz; i++)
		bad[(root - 1) * psz + i] = (char)(0xA5 ^ (i * 7));
	remove_db();
	spill(state_db, bad, n);
	assert_refused("journal page overwritten", "integrity_check: ");

	/* a file that is not a database at all */
	remove_db();
	{
		static const char text[] = "# these are my notes, not a database\n"
					   "keep the state key with the database, said the docs\n";

		spill(state_db, text, sizeof(text) - 1);
	}
	assert_refused("not a database", "not a database");

	/* unreadable: a directory where the file should be */
	remove_db();
	assert_int_equal(mkdir(state_db, 0700), 0);
	assert_refused("a directory in its place", ""); /* its words: test_verify_unusable_file */

	/* unreadable: no permission (root reads anything, hence only when not root) */
	if (geteuid() != 0) {
		remove_db();
		spill(state_db, good, n);
		assert_int_equal(chmod(state_db, 0), 0);
		assert_refused("mode 000", "Permission denied");
		assert_int_equal(chmod(state_db, 0600), 0);
	}

	/* the sound database back: the daemon starts, with the journal intact */
	remove_db();
	spill(state_db, good, n);
	start_sound();
	free(bad);
	free(good);
}

/* One GetBalance of customer ref: its code, and the balance request the sandbox saw. */
static int balance_of(const char *ref, const char *partner_ref, unsigned *seen)
{
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	dokubridge_result res;
	int rc;

	gb.partner_reference_no = (char *)partner_ref;
	rc = h_call(cli, ref, "GetBalance", &gb.base, NULL, &res);
	show("GetBalance", &res);
	*seen = h_sim_requests(&env, BALANCE, partner_ref);
	return rc;
}

/* One byte (TAMPER_AT) of customer ref's sealed access token flipped, in the
 * state database as it lies (the SQLite file, or PostgreSQL as the superuser). */
static void tamper_session(const char *ref)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	unsigned char sealed[4096];
	size_t n;

	if (h_state_pg()) {
		char sql[512], *out = NULL;

		snprintf(sql, sizeof(sql),
			 "WITH u AS (UPDATE doku.sessions SET access_token = set_byte(access_token, %d, "
			 "get_byte(access_token, %d) # 1) WHERE customer_ref = '%s' AND "
			 "length(access_token) > %d RETURNING 1) SELECT count(*) FROM u",
			 TAMPER_AT, TAMPER_AT, ref, TAMPER_AT);
		assert_int_equal(h_pg_sql(NULL, sql, &out), 0);
		assert_int_equal(atoi(out), 1);
		free(out);
		return;
	}
	assert_int_equal(sqlite3_open(state_db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT access_token FROM sessions "
					    "WHERE customer_ref = ?1", -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, ref, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	n = (size_t)sqlite3_column_bytes(s, 0);
	assert_true(n > TAMPER_AT && n <= sizeof(sealed));
	memcpy(sealed, sqlite3_column_blob(s, 0), n);
	sqlite3_finalize(s);
	sealed[TAMPER_AT] ^= 0x01;
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE sessions SET access_token = ?1 "
					    "WHERE customer_ref = ?2", -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_blob(s, 1, sealed, (int)n, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, ref, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_finalize(s);
	sqlite3_close(db);
}

/* Customer sessions at rest: they survive a restart; a wrong state key makes
 * the daemon refuse to start (the database is left as it was); a tampered
 * session row is reported and never used (its customer has no session, no
 * request goes out with it), while every other session works. */
static void test_sealed_sessions(void **state)
{
	char key[PATH_MAX + 32], *good_key, *words = NULL, pref[96];
	h_customer c2;
	size_t n = 0;
	unsigned seen = 0;
	int st;

	(void)state;
	snprintf(state_db, sizeof(state_db), "%s/state/state.db", env.dir);
	if (h_state_pg()) /* state_key_file: the fleet's key */
		h_fleet_key(&env, key);
	else
		snprintf(key, sizeof(key), "%s/state/state.key", env.dir);
	h_customer_new(&env, cli, CUST2, &c2);
	snprintf(pref, sizeof(pref), "%s", h_ref("bal"));
	assert_int_equal(balance_of(CUST2, pref, &seen), 0);
	assert_int_equal(seen, 1);

	/* a restart keeps both sessions (no new binding, no new token) */
	h_daemon_signal(&env, SIGTERM);
	assert_int_equal(h_daemon_wait(&env), 0);
	h_daemon_start(&env, NULL, NULL);
	dokubridge_free(cli);
	cli = h_client(&env);
	snprintf(pref, sizeof(pref), "%s", h_ref("bal"));
	assert_int_equal(balance_of(CUST, pref, &seen), 0);
	snprintf(pref, sizeof(pref), "%s", h_ref("bal"));
	assert_int_equal(balance_of(CUST2, pref, &seen), 0);
	assert_int_equal(seen, 1);
	h_daemon_signal(&env, SIGTERM);
	assert_int_equal(h_daemon_wait(&env), 0);

	/* another key: refused, nothing used, the database untouched */
	good_key = slurp(key, &n);
	assert_non_null(good_key);
	spill(key, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 65);
	st = start_refused(&words);
	assert_int_equal(st, 1);
	assert_non_null(strstr(words, "refusing to start"));
	assert_non_null(strstr(words, "another key"));
	free(words);
	spill(key, good_key, n);
	free(good_key);

	/* one byte of the second customer's sealed access token flipped */
	tamper_session(CUST2);

	h_daemon_start(&env, NULL, NULL);
	dokubridge_free(cli);
	cli = h_client(&env);
	words = slurp(env.log, &n);
	assert_non_null(words);
	if (strstr(words, "customer session " CUST2 " of profile default does not open") == NULL)
		fail_msg("the tampered session is not reported in the daemon's log");
	free(words);
	snprintf(pref, sizeof(pref), "%s", h_ref("bal"));
	st = balance_of(CUST2, pref, &seen);
	assert_int_equal(st, -C(FAILED_PRECONDITION));
	assert_int_equal(seen, 0); /* never used: nothing went out */
	snprintf(pref, sizeof(pref), "%s", h_ref("bal"));
	assert_int_equal(balance_of(CUST, pref, &seen), 0);
	assert_int_equal(seen, 1);
}

/* --verify-state on a state_dir whose state.db cannot be opened (a directory
 * in its place): not sound, and it names the file it could not use. Run with
 * a configuration of its own, beside the running daemon. */
static void test_verify_unusable_file(void **state)
{
	char conf[PATH_MAX + 32], dir[PATH_MAX + 32], db[PATH_MAX + 48], *text, *at, *out = NULL;
	size_t n = 0;
	FILE *f;
	bool named;
	int st;

	(void)state;
	h_sqlite_only("a state.db that cannot be opened, named by --verify-state, is the SQLite "
		      "file's case (the database named: test_refuse_bad_database, test_fleet_journal)");
	snprintf(dir, sizeof(dir), "%s/state2", env.dir);
	snprintf(db, sizeof(db), "%s/state.db", dir);
	snprintf(conf, sizeof(conf), "%s/bridge2.ini", env.dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mkdir(db, 0700), 0);
	text = slurp(env.conf, &n);
	assert_non_null(text);
	at = strstr(text, "state_dir = ");
	assert_non_null(at);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "%.*sstate_dir = %s\n%s", (int)(at - text), text, dir, strchr(at, '\n') + 1);
	assert_int_equal(fclose(f), 0);
	free(text);
	st = run_tool_with(conf, "--verify-state", &out, NULL);
	fprintf(stderr, "--verify-state, state.db a directory: exit %d\n%s", st, out);
	assert_int_equal(st, 1);
	assert_null(strstr(out, "result: sound"));
	named = strstr(out, db) != NULL;
	free(out);
	if (!named)
		fail_msg("--verify-state does not name the file it cannot use (%s); it says what "
			 "is printed above", db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_done_sent_again),
		cmocka_unit_test(test_not_done_race),
		cmocka_unit_test(test_401_retry),
		cmocka_unit_test(test_partial_refund_reconciled),
		cmocka_unit_test(test_refund_unknown_hint),
		cmocka_unit_test(test_slow_query_does_not_hold_others),
		cmocka_unit_test(test_verify_and_export),
		cmocka_unit_test(test_refuse_bad_database),
		cmocka_unit_test(test_sealed_sessions),
		cmocka_unit_test(test_verify_unusable_file),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
