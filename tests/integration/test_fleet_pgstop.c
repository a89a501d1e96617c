/* PostgreSQL stopped under a fleet (issue 13): three daemons on one PostgreSQL,
 * callers of TopUp (each its own partner reference) and of GetBalance spread over
 * them; two seconds in, the cluster is stopped (fast: every connection cut) for
 * 10 s and started again, and the load goes on. Then:
 *   - every TopUp either happened once with a journal row (its caller told DONE,
 *     the row DONE under the same X-EXTERNAL-ID), or was refused UNAVAILABLE with
 *     outcome NOT_DONE and never sent (DOKU saw no request under its reference);
 *     no reference was executed twice, every TopUp DOKU saw is journaled;
 *   - GetBalance kept working while the database was down, on the tokens the
 *     daemons held (each had used the session just before);
 *   - the fleet recovered alone: every call started RECOVER_MS after the restart
 *     succeeded, through every daemon;
 *   - each daemon's metrics count database errors and a reconnect, and say the
 *     connection is up again; its log says it lost the connection and has it again. */
#include "harness.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLEET 3u
#define CALLERS 9u                 /* caller i on daemon i % FLEET; the last three GetBalance */
#define STOP_AT_MS 2000u
#define DOWN_MS 10000u             /* the database stopped this long */
#define TAIL_MS 15000u             /* calls after the restart */
#define RECOVER_MS 8000u           /* calls started this long after the restart all succeed */
#define RECORDS_MAX 100000u
#define PACE_MS 25u                /* a caller starts a call this long after its previous one */
#define TOPUP_PATH "/snap-adapter/b2b2c/v1.0/emoney/topup"
#define ERRORS_SHOWN 20u

enum { K_TOPUP, K_BALANCE };

struct rec {
	char ref[48];
	unsigned kind, daemon;
	uint64_t started_ms;
	int code, outcome;
	bool local;
	char ext[DOKUBRIDGE_EXTERNAL_ID_MAX];
};

static h_env fl[FLEET];
static h_customer cust;
static struct rec *recs;
static unsigned nrecs, errors;

struct phase {
	uint64_t t0, stop_ms, down_ms, start_ms; /* h_now_ms() when stopping began, was done; start done */
	bool stopped, started;
};

static int kill_all(void **state)
{
	(void)state;
	h_fleet_kill(fl, FLEET);
	return 0;
}

__attribute__((format(printf, 1, 2)))
static void bad(const char *fmt, ...)
{
	va_list ap;

	if (errors++ >= ERRORS_SHOWN)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "PGSTOP TEST: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* The schedule: stop at STOP_AT_MS, start again DOWN_MS after the stop was done.
 * Waiting is the point here (the database is down for a while), on the monotonic clock. */
static void tick(uint64_t elapsed_ms, struct phase *p)
{
	if (!p->stopped && elapsed_ms >= STOP_AT_MS) {
		p->stop_ms = h_now_ms();
		h_pg_stop();
		p->down_ms = h_now_ms();
		p->stopped = true;
		fprintf(stderr, "pgstop: the database stopped (%llu ms to stop)\n",
			(unsigned long long)(p->down_ms - p->stop_ms));
	} else if (p->stopped && !p->started && h_now_ms() >= p->down_ms + DOWN_MS) {
		h_pg_start();
		p->start_ms = h_now_ms();
		p->started = true;
		fprintf(stderr, "pgstop: the database started again after %llu ms down\n",
			(unsigned long long)(p->start_ms - p->down_ms));
	}
}

/* ---- the paced callers: each starts a call PACE_MS after its previous one started ---- */

struct caller {
	dokubridge_client *c;
	unsigned idx;
	bool busy;
	uint64_t next_ms;
	struct rec *cur;
};

static void on_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		    ProtobufCMessage *resp)
{
	struct caller *cl = arg;
	struct rec *r = cl->cur;

	(void)c;
	h_record_result(res);
	dokubridge_message_free(resp);
	r->code = (int)res->code;
	r->outcome = (int)res->outcome;
	r->local = res->local;
	snprintf(r->ext, sizeof(r->ext), "%s", res->external_id);
	cl->busy = false;
}

static void start(struct caller *cl)
{
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	dokubridge_call_opts opts = { .timeout_ms = 20000, .customer_ref = cust.ref };
	Doku__Wallet__V1__Amount a;
	dokubridge_result res;
	struct rec *r;

	assert_true(nrecs < RECORDS_MAX);
	r = cl->cur = &recs[nrecs++];
	memset(r, 0, sizeof(*r));
	r->kind = cl->idx / FLEET == 2 ? K_BALANCE : K_TOPUP; /* a third of each daemon's callers */
	r->daemon = cl->idx % FLEET;
	r->started_ms = h_now_ms();
	snprintf(r->ref, sizeof(r->ref), "%s", h_ref(r->kind == K_TOPUP ? "fpg" : "fpgb"));
	cl->next_ms = r->started_ms + PACE_MS;
	if (r->kind == K_TOPUP) {
		tu.partner_reference_no = r->ref;
		tu.customer_number = cust.account_no;
		h_amount(&a, "500.00");
		tu.amount = &a;
		tu.session_id = "pgstop";
		tu.notes = "pgstop";
		assert_int_equal(dokubridge_start(cl->c, &opts, "TopUp", &tu.base, on_done, cl, NULL, &res), 0);
	} else {
		gb.partner_reference_no = r->ref;
		assert_int_equal(dokubridge_start(cl->c, &opts, "GetBalance", &gb.base, on_done, cl, NULL,
						  &res), 0);
	}
	cl->busy = true;
}

/* Run the callers for duration_ms (then wait for their last calls), with tick()
 * between polls. */
static void drive(struct caller *cls, unsigned n, uint64_t duration_ms, struct phase *ph)
{
	struct pollfd pfd[CALLERS];
	uint64_t t0 = h_now_ms(), end = t0 + duration_ms, drain = end + H_WAIT_MS;

	for (;;) {
		uint64_t now = h_now_ms();
		bool busy = false;

		assert_true(now < drain);
		tick(now - t0, ph);
		for (unsigned i = 0; i < n; i++) {
			struct caller *cl = &cls[i];

			if (!cl->busy && now < end && now >= cl->next_ms)
				start(cl);
			busy = busy || cl->busy;
			pfd[i].fd = cl->busy ? dokubridge_fd(cl->c) : -1;
			pfd[i].events = h_poll_events(cl->c);
			pfd[i].revents = 0;
		}
		if (!busy && now >= end)
			break;
		assert_true(poll(pfd, n, 5) >= 0);
		for (unsigned i = 0; i < n; i++)
			if (pfd[i].fd >= 0)
				dokubridge_process(cls[i].c, h_client_events(pfd[i].revents));
	}
}

static unsigned sim_count(json_t *log, const char *ref)
{
	size_t i;
	json_t *e;
	unsigned n = 0;

	json_array_foreach(log, i, e)
		if (strcmp(h_json_str(e, "path"), TOPUP_PATH) == 0 &&
		    strcmp(h_json_str(e, "partnerReferenceNo"), ref) == 0)
			n++;
	return n;
}

static json_t *sim_log(void)
{
	char *text = h_ctl(&fl[0], "GET", "/control/log?path=" TOPUP_PATH "&limit=20000", NULL, NULL);
	char *line, *save = NULL;
	json_t *log = json_array();

	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, NULL);

		assert_non_null(j);
		json_array_append_new(log, j);
	}
	free(text);
	assert_true(json_array_size(log) < 20000);
	return log;
}

static void test_pg_stopped(void **state)
{
	static struct caller cls[CALLERS];
	struct phase ph = { 0 };
	unsigned topups = 0, done = 0, refused = 0, bal_down = 0, bal_ok = 0, late = 0;
	uint64_t first_ok[FLEET] = { 0 };
	json_t *rows, *log;
	dokubridge_client *c;
	dokubridge_result res;

	(void)state;
	recs = calloc(RECORDS_MAX, sizeof(*recs));
	assert_non_null(recs);
	fl[0].direct = true;
	h_fleet_start(fl, FLEET, NULL);
	c = h_client(&fl[0]);
	h_customer_new(&fl[0], c, "fpg", &cust);
	dokubridge_free(c);
	for (unsigned i = 0; i < CALLERS; i++) {
		cls[i].idx = i;
		cls[i].c = h_client(&fl[i % FLEET]);
	}
	/* every daemon has used the customer's session and the B2B token just before */
	for (unsigned i = 0; i < FLEET; i++) {
		Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;

		gb.partner_reference_no = (char *)h_ref("fpgw");
		OK_CALL(cls[i].c, cust.ref, "GetBalance", gb, NULL, &res);
	}

	ph.t0 = h_now_ms();
	drive(cls, CALLERS, STOP_AT_MS + 2000u + DOWN_MS + 3000u + TAIL_MS, &ph);
	assert_true(ph.started);
	if (h_now_ms() < ph.start_ms + RECOVER_MS + 5000u)
		fail_msg("the load ended %llu ms after the restart: too soon to see the recovery",
			 (unsigned long long)(h_now_ms() - ph.start_ms));

	/* after the load: the journal and DOKU's log */
	rows = h_export_journal(&fl[1]);
	log = sim_log();
	for (unsigned n = 0; n < nrecs; n++) {
		struct rec *r = &recs[n];
		bool down = r->started_ms >= ph.stop_ms && r->started_ms < ph.start_ms;

		if (r->kind == K_BALANCE) {
			if (down) {
				bal_down++;
				if (r->code != DOKUBRIDGE_OK)
					bad("GetBalance %s through daemon %u while the database was down: %s",
					    r->ref, r->daemon, dokubridge_code_name(r->code));
			}
			if (r->code == DOKUBRIDGE_OK)
				bal_ok++;
		} else {
			json_t *row = h_journal_row(rows, "TopUp", r->ref);
			unsigned sent = sim_count(log, r->ref);

			topups++;
			if (r->code == DOKUBRIDGE_OK && r->outcome == DOKUBRIDGE_OUTCOME_DONE) {
				done++;
				if (sent != 1)
					bad("TopUp %s answered DONE was received %u times by DOKU", r->ref, sent);
				if (row == NULL || strcmp(h_json_str(row, "state"), "DONE") != 0 ||
				    strcmp(h_json_str(row, "externalId"), r->ext) != 0)
					bad("TopUp %s answered DONE (%s) is %s in the journal", r->ref, r->ext,
					    row == NULL ? "absent" : h_json_str(row, "state"));
				if (r->started_ms >= ph.start_ms && first_ok[r->daemon] == 0)
					first_ok[r->daemon] = r->started_ms;
			} else if (r->code == DOKUBRIDGE_UNAVAILABLE && r->outcome == DOKUBRIDGE_OUTCOME_NOT_DONE &&
				   !r->local) {
				refused++;
				if (sent != 0)
					bad("TopUp %s refused NOT_DONE was received %u times by DOKU", r->ref, sent);
				/* (a row may be left when the intent's commit was cut with the
				   connection: it was not sent, reconciliation settles it NOT_DONE) */
				if (row != NULL && strcmp(h_json_str(row, "state"), "DONE") == 0)
					bad("TopUp %s refused NOT_DONE is DONE in the journal", r->ref);
				if (row != NULL)
					fprintf(stderr, "pgstop: TopUp %s refused NOT_DONE has a %s row\n",
						r->ref, h_json_str(row, "state"));
			} else {
				bad("TopUp %s through daemon %u (started %lld ms after the stop): %s %s%s, "
				    "neither done nor refused NOT_DONE", r->ref, r->daemon,
				    (long long)r->started_ms - (long long)ph.stop_ms,
				    dokubridge_code_name(r->code), dokubridge_outcome_name(r->outcome),
				    r->local ? " (local)" : "");
			}
			if (r->started_ms >= ph.start_ms + RECOVER_MS && r->code != DOKUBRIDGE_OK)
				late++;
		}
	}
	/* every TopUp DOKU received is journaled, none twice */
	{
		size_t i;
		json_t *e;

		json_array_foreach(log, i, e) {
			const char *ref = h_json_str(e, "partnerReferenceNo");
			json_t *row = h_journal_row(rows, "TopUp", ref);

			if (strncmp(ref, "fpg-", 4) != 0)
				continue;
			if (row == NULL)
				bad("TopUp %s received by DOKU is not journaled", ref);
			if (sim_count(log, ref) > 1)
				bad("TopUp %s received %u times by DOKU", ref, sim_count(log, ref));
		}
	}
	fprintf(stderr, "pgstop: %u TopUps: %u done, %u refused UNAVAILABLE/NOT_DONE; GetBalance: %u ok, "
		"%u while the database was down; first TopUp done after the restart, by daemon: "
		"%lld / %lld / %lld ms; failures %u ms or more after the restart: %u\n",
		topups, done, refused, bal_ok, bal_down,
		first_ok[0] != 0 ? (long long)(first_ok[0] - ph.start_ms) : -1LL,
		first_ok[1] != 0 ? (long long)(first_ok[1] - ph.start_ms) : -1LL,
		first_ok[2] != 0 ? (long long)(first_ok[2] - ph.start_ms) : -1LL, RECOVER_MS, late);
	for (unsigned i = 0; i < FLEET; i++) {
		double errs = h_metric(&fl[i], "doku_bridge_fleet_db_errors_total", NULL);
		double reconnects = h_metric(&fl[i], "doku_bridge_fleet_db_reconnects_total", NULL);
		double up = h_metric(&fl[i], "doku_bridge_fleet_db_up", NULL);

		fprintf(stderr, "pgstop: daemon %u: db errors %.0f, reconnects %.0f, up %.0f\n", i, errs,
			reconnects, up);
		assert_true(errs >= 1);
		assert_true(reconnects >= 1);
		assert_true(up == 1);
		assert_true(first_ok[i] != 0);
		/* and says so in its log */
		{
			FILE *f = fopen(fl[i].log, "r");
			char *text = NULL;
			size_t cap = 0;

			assert_non_null(f);
			assert_true(getdelim(&text, &cap, '\0', f) > 0);
			fclose(f);
			assert_non_null(strstr(text, "connection lost"));
			assert_non_null(strstr(text, "connected again"));
			free(text);
		}
	}
	json_decref(rows);
	json_decref(log);
	assert_int_equal(errors, 0);
	assert_int_equal(late, 0);
	assert_true(refused > 0);   /* the stop was met by money-moving calls */
	assert_true(bal_down > 0);  /* ... and by reads */
	for (unsigned i = 0; i < CALLERS; i++)
		dokubridge_free(cls[i].c);
	h_fleet_teardown(fl, FLEET);
	free(recs);
	recs = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_pg_stopped, kill_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
