/* A fleet's journal under SIGKILL (issue 13; the fleet's version of
 * test_bridged_crash.c): three daemons on one PostgreSQL, money-moving calls
 * (TopUp, each its own partner reference) from callers spread over them, while a
 * daemon picked at random is killed (SIGKILL) at random moments and started again
 * (a new holder in the fleet). A caller whose daemon died asks again, with the same
 * partner reference, through the next daemon of the fleet. The sandbox delays every
 * request (so that kills land while requests are out) and drops a few TopUps
 * (before and after the operation).
 *
 * Then, with no fault armed and no daemon restarted, the live fleet settles
 * everything alone: the PENDING rows of dead holders become UNKNOWN once their
 * beat lapsed (STORE_DEAD_MS) and a live daemon claims and reconciles them; the
 * test waits (bounded by the daemons' schedule) until no row is PENDING or
 * UNKNOWN, and proves from DOKU's log and world and the journal
 * (--export-journal) that
 *   A. every TopUp DOKU received is journaled under the X-EXTERNAL-ID it carried
 *      (as the row's attempt or an earlier one);
 *   B. no row is left PENDING or UNKNOWN (the rows of dead daemons settled by live ones);
 *   C. every row's state is the truth of DOKU's world;
 *   D. none executed twice: a partner reference took effect at most once, by the
 *      row's own attempt; an earlier attempt is one that certainly did not happen;
 *   E. every caller that got a reply got the truth.
 * Seeded ($DOKU_CRASH_SEED), bounded. */
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define FLEET 3u
#define CALLERS 12u
#define OPS_PER_CALLER 64u           /* 768 money-moving calls */
#define CUSTOMERS 3u
#define KILL_MIN_MS 300u             /* between kills */
#define KILL_SPAN_MS 900u
#define KILLS_MAX 30u
#define PHASE_MAX_MS 180000u         /* the calls */
/* the daemons' schedule (bridged/state/store.h, reconcile.h; not included here) */
#define DAEMON_DEAD_MS 10000u        /* STORE_DEAD_MS: a holder silent this long is dead */
#define DAEMON_SETTLE_MS 60000u      /* RECONCILE_SETTLE_MS: "not found" trusted this long after the intent */
#define DAEMON_QUERY_MS 15000u       /* RECONCILE_QUERY_TIMEOUT_MS */
/* the bound of the settle phase after the last intent: a row left PENDING is adopted
 * within DEAD + a beat, asked at once, then (not found before SETTLE) again after at most
 * half its age, so at most ~1.5 x SETTLE after its intent, plus one query's deadline */
#define SETTLE_BOUND_MS (DAEMON_DEAD_MS + DAEMON_SETTLE_MS * 3u / 2u + DAEMON_QUERY_MS + 15000u)
#define POLL_MS 500u
#define SIM_LOG_PAGE 20000u
#define SIM_IDLE_S 3600u             /* see test_bridged_crash.c */
#define REF_MAX 64u
#define ERRORS_SHOWN 20u
#define TOPUP_PATH "/snap-adapter/b2b2c/v1.0/emoney/topup"

struct op {
	char ref[REF_MAX];
	unsigned tries;
	bool replied;
	int code, outcome;
	char ext[DOKUBRIDGE_EXTERNAL_ID_MAX];
};

struct caller {
	dokubridge_client *c[FLEET];  /* one client per daemon */
	unsigned d;                   /* the daemon it calls now */
	unsigned started;
	struct op *cur;
	bool busy;
	const h_customer *cust;
};

static h_env fl[FLEET];
static h_customer custs[CUSTOMERS];
static struct caller callers[CALLERS];
static struct op ops[CALLERS * OPS_PER_CALLER];
static unsigned nops, replies, retries, kills, switched;
static uint64_t rng;
static unsigned errors;

static int kill_all(void **state)
{
	(void)state;
	h_fleet_kill(fl, FLEET);
	return 0;
}

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

__attribute__((format(printf, 1, 2)))
static void bad(const char *fmt, ...)
{
	va_list ap;

	if (errors++ >= ERRORS_SHOWN)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "FLEET CRASH TEST: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- the callers ---------------------------------------------------------------------- */

static void on_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		    ProtobufCMessage *resp)
{
	struct caller *cl = arg;
	struct op *o = cl->cur;

	(void)c;
	h_record_result(res);
	dokubridge_message_free(resp);
	cl->busy = false;
	if (res->local) {
		retries++; /* no reply: ask again, same partner reference */
		return;
	}
	o->replied = true;
	o->code = (int)res->code;
	o->outcome = (int)res->outcome;
	snprintf(o->ext, sizeof(o->ext), "%s", res->external_id);
	replies++;
	cl->cur = NULL;
}

static void start(struct caller *cl)
{
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	dokubridge_call_opts opts = { .timeout_ms = 20000, .customer_ref = cl->cust->ref };
	Doku__Wallet__V1__Amount a;
	dokubridge_result res;
	struct op *o;

	if (cl->cur == NULL) {
		if (cl->started == OPS_PER_CALLER)
			return;
		o = cl->cur = &ops[nops++];
		memset(o, 0, sizeof(*o));
		snprintf(o->ref, sizeof(o->ref), "%s", h_ref("fcx"));
		cl->started++;
	}
	o = cl->cur;
	tu.partner_reference_no = o->ref;
	tu.customer_number = (char *)cl->cust->account_no;
	h_amount(&a, "1000.00");
	tu.amount = &a;
	tu.session_id = "fleet-crash";
	tu.notes = "fleet crash test";
	o->tries++;
	if (dokubridge_start(cl->c[cl->d], &opts, "TopUp", &tu.base, on_done, cl, NULL, &res) == 0)
		cl->busy = true;
}

/* ---- kill and restart ----------------------------------------------------------------- */

static void arm_faults(void)
{
	char json[256];

	free(h_ctl(&fl[0], "DELETE", "/control/faults", NULL, NULL));
	for (int i = 0; i < 2; i++) {
		snprintf(json, sizeof(json),
			 "{\"path\":\"" TOPUP_PATH "\",\"kind\":\"%s\",\"apply\":%s,\"count\":2,\"delayMs\":%u}",
			 rnd() % 2 ? "http504" : "drop", rnd() % 2 ? "true" : "false", 50 + rnd() % 200);
		h_fault(&fl[0], json);
	}
	h_fault(&fl[0], "{\"path\":\"*\",\"kind\":\"delay\",\"delayMs\":120,\"count\":-1}");
}

static void kill_restart(unsigned k)
{
	dokubridge_result res;

	h_daemon_signal(&fl[k], SIGKILL);
	(void)h_daemon_wait(&fl[k]);
	kills++;
	for (unsigned i = 0; i < CALLERS; i++) {
		struct caller *cl = &callers[i];

		if (cl->d != k)
			continue;
		/* its call in flight completes (local, UNAVAILABLE); it asks the next daemon */
		(void)dokubridge_connect(cl->c[k], &res);
		cl->busy = false;
		cl->d = (k + 1) % FLEET;
		switched++;
	}
	arm_faults();
	fl[k].daemon_pid = h_daemon_spawn(&fl[k]);
	if (!h_wait_notify(&fl[k], "READY=1"))
		fail_msg("daemon %u did not start again after kill %u", k, kills);
	/* every caller's connection to k was to the dead daemon: connect again */
	for (unsigned i = 0; i < CALLERS; i++)
		if (dokubridge_connect(callers[i].c[k], &res) != 0)
			fail_msg("caller %u cannot connect to daemon %u after kill %u: %s", i, k, kills,
				 res.message);
}

static void drive(void)
{
	struct pollfd pfd[CALLERS];
	uint64_t end = h_now_ms() + PHASE_MAX_MS, next_kill = h_now_ms() + KILL_MIN_MS + rnd() % KILL_SPAN_MS;

	while (replies < CALLERS * OPS_PER_CALLER) {
		uint64_t now = h_now_ms();

		assert_true(now < end);
		if (now >= next_kill && kills < KILLS_MAX) {
			kill_restart(rnd() % FLEET);
			next_kill = h_now_ms() + KILL_MIN_MS + rnd() % KILL_SPAN_MS;
		}
		for (unsigned i = 0; i < CALLERS; i++) {
			struct caller *cl = &callers[i];
			dokubridge_client *c = cl->c[cl->d];

			if (!cl->busy && !dokubridge_connected(c)) {
				/* its connection failed: again, else through the next daemon */
				dokubridge_result res;

				if (dokubridge_connect(c, &res) != 0) {
					cl->d = (cl->d + 1) % FLEET;
					c = cl->c[cl->d];
				}
			}
			if (!cl->busy && dokubridge_connected(c))
				start(cl);
			pfd[i].fd = cl->busy ? dokubridge_fd(c) : -1;
			pfd[i].events = h_poll_events(c);
			pfd[i].revents = 0;
		}
		assert_true(poll(pfd, CALLERS, 100) >= 0);
		for (unsigned i = 0; i < CALLERS; i++)
			if (pfd[i].fd >= 0)
				dokubridge_process(callers[i].c[callers[i].d], h_client_events(pfd[i].revents));
	}
}

/* ---- settling ------------------------------------------------------------------------- */

static size_t count_state(dokubridge_client *c, Doku__Wallet__V1__OperationState st)
{
	Doku__Wallet__V1__ListOperationsRequest lo = DOKU__WALLET__V1__LIST_OPERATIONS_REQUEST__INIT;
	Doku__Wallet__V1__ListOperationsResponse *r = NULL;
	dokubridge_result res;
	size_t n;

	lo.state = st;
	lo.page_size = 500;
	OK_CALL(c, NULL, "ListOperations", lo, &r, &res);
	n = r->n_operations;
	dokubridge_message_free(r);
	return n;
}

/* Wait, bounded by the daemons' schedule, until no row is PENDING or UNKNOWN. */
static void settle(void)
{
	dokubridge_client *c = h_client(&fl[0]);
	uint64_t t0 = h_now_ms(), end = t0 + SETTLE_BOUND_MS;
	size_t pending, unknown;

	for (;;) {
		pending = count_state(c, DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_PENDING);
		unknown = count_state(c, DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_UNKNOWN);
		if (pending == 0 && unknown == 0)
			break;
		if (h_now_ms() > end)
			fail_msg("B: %zu rows PENDING and %zu UNKNOWN %u ms after the last call; the "
				 "live fleet did not settle them", pending, unknown, SETTLE_BOUND_MS);
		poll(NULL, 0, POLL_MS); /* bounded polling of an observable condition */
	}
	dokubridge_free(c);
	fprintf(stderr, "fleet crash test: settled by the live fleet %llu ms after the last call\n",
		(unsigned long long)(h_now_ms() - t0));
}

/* ---- the proof ------------------------------------------------------------------------ */

static json_t *read_log(void)
{
	json_t *log = json_array();
	json_int_t last = 0;
	char path[96];
	size_t got;

	do {
		char *text, *line, *save = NULL;

		snprintf(path, sizeof(path), "/control/log?since=%lld&limit=%u", (long long)last,
			 SIM_LOG_PAGE);
		text = h_ctl(&fl[0], "GET", path, NULL, NULL);
		got = 0;
		for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
			json_t *j = json_loads(line, 0, NULL);

			assert_non_null(j);
			if (h_json_num(j, "seq") != last + 1)
				fail_msg("DOKU's log is not whole: entry %lld follows %lld",
					 (long long)h_json_num(j, "seq"), (long long)last);
			last++;
			got++;
			json_array_append_new(log, j);
		}
		free(text);
	} while (got == SIM_LOG_PAGE);
	return log;
}

static json_t *row_of_ext(json_t *rows, const char *ext, json_t **earlier)
{
	size_t i, k;
	json_t *r, *e;

	*earlier = NULL;
	json_array_foreach(rows, i, r) {
		if (strcmp(h_json_str(r, "externalId"), ext) == 0)
			return r;
		json_array_foreach(json_object_get(r, "earlier"), k, e)
			if (strcmp(h_json_str(e, "externalId"), ext) == 0) {
				*earlier = e;
				return r;
			}
	}
	return NULL;
}

static void prove(void)
{
	json_t *rows, *log, *world, *r, *e, *t;
	char *text;
	unsigned seen = 0, done = 0, not_done = 0, earlier_n = 0, said[4] = { 0 };
	size_t i, k;

	rows = h_export_journal(&fl[1]);
	log = read_log();
	text = h_ctl(&fl[0], "GET", "/control/transactions", NULL, NULL);
	world = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(world);

	/* A, D: every TopUp DOKU received is journaled; earlier attempts certainly did not happen */
	json_array_foreach(log, i, e) {
		json_t *att;

		if (strcmp(h_json_str(e, "path"), TOPUP_PATH) != 0 || h_json_str(e, "externalId")[0] == '\0')
			continue;
		seen++;
		r = row_of_ext(rows, h_json_str(e, "externalId"), &att);
		if (r == NULL) {
			bad("A: TopUp %s X-EXTERNAL-ID %s (http %lld, %s) is not in the journal",
			    h_json_str(e, "partnerReferenceNo"), h_json_str(e, "externalId"),
			    (long long)h_json_num(e, "httpStatus"), h_json_str(e, "verdict"));
			continue;
		}
		if (strcmp(h_json_str(r, "partnerReferenceNo"), h_json_str(e, "partnerReferenceNo")) != 0)
			bad("A: X-EXTERNAL-ID %s: DOKU saw %s, the journal says %s", h_json_str(e, "externalId"),
			    h_json_str(e, "partnerReferenceNo"), h_json_str(r, "partnerReferenceNo"));
		if (att != NULL && strcmp(h_json_str(att, "state"), "NOT_DONE") != 0 &&
		    h_json_num(e, "httpStatus") != 401)
			bad("D: TopUp %s was sent again although attempt %s (%s) may have happened",
			    h_json_str(r, "partnerReferenceNo"), h_json_str(att, "externalId"),
			    h_json_str(att, "state"));
	}

	/* B, C, D: each row's state is the world's truth, from one attempt */
	json_array_foreach(rows, i, r) {
		const char *st = h_json_str(r, "state");
		unsigned by_ref = 0, by_attempt = 0;
		bool own = false;

		earlier_n += (unsigned)json_array_size(json_object_get(r, "earlier"));
		if (strcmp(st, "DONE") == 0)
			done++;
		else if (strcmp(st, "NOT_DONE") == 0)
			not_done++;
		else {
			bad("B: TopUp %s is still %s", h_json_str(r, "partnerReferenceNo"), st);
			continue;
		}
		json_array_foreach(world, k, t) {
			size_t m;
			json_t *a;

			if (strcmp(h_json_str(t, "type"), "TOPUP") != 0 ||
			    strcmp(h_json_str(t, "partnerReferenceNo"), h_json_str(r, "partnerReferenceNo")) != 0)
				continue;
			by_ref++;
			if (strcmp(h_json_str(t, "externalId"), h_json_str(r, "externalId")) == 0) {
				by_attempt++;
				own = true;
				continue;
			}
			json_array_foreach(json_object_get(r, "earlier"), m, a)
				if (strcmp(h_json_str(t, "externalId"), h_json_str(a, "externalId")) == 0)
					by_attempt++;
		}
		if ((by_ref > 0) != (strcmp(st, "DONE") == 0))
			bad("C: TopUp %s is %s in the journal but %s in DOKU's world (%s)",
			    h_json_str(r, "partnerReferenceNo"), st, by_ref > 0 ? "happened" : "did not happen",
			    h_json_str(r, "detail"));
		if (by_ref > 1)
			bad("D: TopUp %s took effect %u times", h_json_str(r, "partnerReferenceNo"), by_ref);
		if (by_ref != by_attempt)
			bad("D: TopUp %s: %u transactions under its reference, %u by an attempt the "
			    "journal holds", h_json_str(r, "partnerReferenceNo"), by_ref, by_attempt);
		if (by_ref == 1 && !own)
			bad("D: TopUp %s happened by an earlier attempt", h_json_str(r, "partnerReferenceNo"));
	}

	/* E: every reply told the truth */
	for (unsigned n = 0; n < nops; n++) {
		struct op *o = &ops[n];

		if (!o->replied)
			continue;
		said[(unsigned)o->outcome < 4 ? o->outcome : 0]++;
		r = h_journal_row(rows, "TopUp", o->ref);
		if (o->outcome == DOKUBRIDGE_OUTCOME_DONE) {
			if (r == NULL || strcmp(h_json_str(r, "state"), "DONE") != 0 ||
			    strcmp(h_json_str(r, "externalId"), o->ext) != 0)
				bad("E: TopUp %s was answered DONE (%s) but is %s (%s)", o->ref, o->ext,
				    r != NULL ? h_json_str(r, "state") : "not journaled",
				    r != NULL ? h_json_str(r, "externalId") : "-");
		} else if (o->outcome == DOKUBRIDGE_OUTCOME_NOT_DONE) {
			if (r != NULL && strcmp(h_json_str(r, "state"), "NOT_DONE") != 0)
				bad("E: TopUp %s was answered NOT_DONE but is %s", o->ref, h_json_str(r, "state"));
		}
	}
	fprintf(stderr,
		"fleet crash test: %u calls (%u asked again after a lost connection, %u callers moved to "
		"another daemon), %u kills; DOKU logged %u TopUps; journal: %zu rows, %u DONE, %u NOT_DONE, "
		"%u earlier attempts; replies: %u DONE, %u NOT_DONE, %u UNKNOWN; rows of dead daemons "
		"adopted by the live ones (their metrics, since each one's start): %.0f\n",
		nops, retries, switched, kills, seen, json_array_size(rows), done, not_done, earlier_n,
		said[DOKUBRIDGE_OUTCOME_DONE], said[DOKUBRIDGE_OUTCOME_NOT_DONE],
		said[DOKUBRIDGE_OUTCOME_UNKNOWN],
		h_metric(&fl[0], "doku_bridge_fleet_orphans_adopted_total", NULL) +
			h_metric(&fl[1], "doku_bridge_fleet_orphans_adopted_total", NULL) +
			h_metric(&fl[2], "doku_bridge_fleet_orphans_adopted_total", NULL));
	json_decref(rows);
	json_decref(log);
	json_decref(world);
	assert_int_equal(errors, 0);
	assert_true(seen >= CALLERS * OPS_PER_CALLER / 2);
	assert_true(kills >= 3);
}

static void test_fleet_crash(void **state)
{
	const char *seed = getenv("DOKU_CRASH_SEED");
	dokubridge_client *c;
	char ref[32];

	(void)state;
	rng = seed != NULL ? strtoull(seed, NULL, 10) : 20261203u;
	if (rng == 0)
		rng = 1;
	fprintf(stderr, "fleet crash test: seed %" PRIu64 "\n", rng);
	fl[0].direct = true;
	fl[0].sim_idle_timeout_s = SIM_IDLE_S;
	h_fleet_start(fl, FLEET, "drain_timeout_ms = 1000");
	c = h_client(&fl[0]);
	for (unsigned i = 0; i < CUSTOMERS; i++) {
		snprintf(ref, sizeof(ref), "fcrash-%u", i);
		h_customer_new(&fl[0], c, ref, &custs[i]);
	}
	dokubridge_free(c);
	for (unsigned i = 0; i < CALLERS; i++) {
		callers[i].cust = &custs[i % CUSTOMERS];
		callers[i].d = i % FLEET;
		for (unsigned k = 0; k < FLEET; k++)
			callers[i].c[k] = h_client(&fl[k]);
	}
	arm_faults();
	drive();
	for (unsigned i = 0; i < CALLERS; i++)
		for (unsigned k = 0; k < FLEET; k++)
			dokubridge_free(callers[i].c[k]);
	free(h_ctl(&fl[0], "DELETE", "/control/faults", NULL, NULL));
	settle();
	prove();
	h_fleet_teardown(fl, FLEET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fleet_crash, kill_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
