/* The journal under fire: money-moving calls from concurrent callers while
 * the daemon is killed (SIGKILL) at random moments and restarted, against
 * doku-snapsim with delays, 504s and dropped connections injected. Then it
 * proves, from the simulator's log and world and from the journal
 * (doku-bridged --export-journal), that
 *   A. every money-moving request DOKU received is in the journal, under the
 *      X-EXTERNAL-ID it carried, as the row's attempt or one of its earlier ones;
 *   B. after reconciliation no row is left PENDING or UNKNOWN;
 *   C. every row's state is the truth of the simulator's world;
 *   D. nothing was sent twice: a partner reference has at most one attempt
 *      that took effect, and every earlier attempt of a row is one that
 *      certainly did not happen (NOT_DONE, then sent again when its caller
 *      asked again; or refused by DOKU for its token, 401, then retried);
 *   E. every caller that got a reply got the truth (DONE: it happened, with
 *      that X-EXTERNAL-ID; NOT_DONE: it did not).
 * Callers that lose their connection reconnect after the restart and ask
 * again with the same partner reference. Seeded ($DOKU_CRASH_SEED), bounded. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define CALLERS 16
#define OPS_PER_CALLER 64            /* 1,024 money-moving calls */
#define CUSTOMERS 4
#define KILL_MIN_MS 300              /* between restarts and kills */
#define KILL_SPAN_MS 900
#define KILLS_MAX 60
#define SETTLE_MAX_MS 150000         /* reconciliation: "not found" is trusted after 60 s */
#define PHASE_MAX_MS 120000          /* the calls */
#define REF_MAX 64
#define STACK_MAX 64
#define ERRORS_SHOWN 20

#define C(x) DOKUBRIDGE_##x

enum kind { K_TOPUP, K_PURCHASE, K_TRANSFER, K_REFUND, K_CANCEL };
static const char *const kind_method[] = { "TopUp", "Purchase", "TransferToBank",
					   "RefundPurchase", "CancelPurchase" };
static const char *const kind_path[] = {
	"/snap-adapter/b2b2c/v1.0/emoney/topup",
	"/snap-adapter/b2b2c/v1.0/debit/payment-host-to-host",
	"/snap-adapter/b2b2c/v1.0/emoney/transfer-bank",
	"/snap-adapter/b2b2c/v1.0/debit/refund",
	"/snap-adapter/b2b2c/v1.0/debit/cancel",
};

struct op {
	enum kind k;
	char ref[REF_MAX];     /* partnerReferenceNo / partnerRefundNo */
	char orig[REF_MAX];    /* Refund/Cancel: the purchase */
	unsigned tries;
	bool replied;
	int code, outcome;
	char ext[DOKUBRIDGE_EXTERNAL_ID_MAX];
};

struct caller {
	dokubridge_client *c;
	unsigned idx, started;
	struct op *cur;
	bool busy;
	const h_customer *cust;
	char done_buys[STACK_MAX][REF_MAX]; /* DONE purchases not refunded or cancelled yet */
	unsigned nbuys;
};

static h_env env;
static h_customer custs[CUSTOMERS];
static struct caller callers[CALLERS];
static struct op ops[CALLERS * OPS_PER_CALLER];
static unsigned nops, replies, retries, kills;
static uint64_t rng;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void amount(Doku__Wallet__V1__Amount *a, const char *value)
{
	doku__wallet__v1__amount__init(a);
	a->value = (char *)value;
	a->currency = "IDR";
}

/* ---- the callers ---------------------------------------------------------------------- */

static struct op *new_op(struct caller *cl)
{
	struct op *o = &ops[nops++];
	uint32_t r = rnd() % 100;

	memset(o, 0, sizeof(*o));
	if (cl->nbuys > 0 && r < 30) {
		o->k = r < 15 ? K_REFUND : K_CANCEL;
		snprintf(o->orig, sizeof(o->orig), "%s", cl->done_buys[--cl->nbuys]);
	} else if (r < 60) {
		o->k = K_TOPUP;
	} else if (r < 85) {
		o->k = K_PURCHASE;
	} else {
		o->k = K_TRANSFER;
	}
	snprintf(o->ref, sizeof(o->ref), "%s", h_ref(o->k == K_REFUND ? "crf" : "cx"));
	if (o->k == K_CANCEL)
		memcpy(o->ref, o->orig, sizeof(o->ref)); /* its key: the purchase */
	return o;
}

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
		retries++; /* no reply: ask again, same partner reference, after the restart */
		return;
	}
	o->replied = true;
	o->code = (int)res->code;
	o->outcome = (int)res->outcome;
	snprintf(o->ext, sizeof(o->ext), "%s", res->external_id);
	if (o->k == K_PURCHASE && res->outcome == C(OUTCOME_DONE) && cl->nbuys < STACK_MAX)
		snprintf(cl->done_buys[cl->nbuys++], REF_MAX, "%s", o->ref);
	replies++;
	cl->cur = NULL;
}

static void start(struct caller *cl)
{
	Doku__Wallet__V1__TopUpRequest tu = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__PurchaseRequest pu = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__TransferToBankRequest tb = DOKU__WALLET__V1__TRANSFER_TO_BANK_REQUEST__INIT;
	Doku__Wallet__V1__RefundPurchaseRequest rf = DOKU__WALLET__V1__REFUND_PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__CancelPurchaseRequest cp = DOKU__WALLET__V1__CANCEL_PURCHASE_REQUEST__INIT;
	dokubridge_call_opts opts = { .timeout_ms = 20000, .customer_ref = cl->cust->ref };
	const ProtobufCMessage *msg = NULL;
	Doku__Wallet__V1__Amount a;
	dokubridge_result res;
	struct op *o;

	if (cl->cur == NULL) {
		if (cl->started == OPS_PER_CALLER)
			return;
		cl->cur = new_op(cl);
		cl->started++;
	}
	o = cl->cur;
	switch (o->k) {
	case K_TOPUP:
		tu.partner_reference_no = o->ref;
		tu.customer_number = (char *)cl->cust->account_no;
		amount(&a, "1000.00");
		tu.amount = &a;
		tu.session_id = "crash";
		tu.notes = "crash test";
		msg = &tu.base;
		break;
	case K_PURCHASE:
		pu.partner_reference_no = o->ref;
		pu.charge_token = "DOKU";
		amount(&a, "700.00");
		pu.amount = &a;
		msg = &pu.base;
		break;
	case K_TRANSFER:
		tb.partner_reference_no = o->ref;
		tb.customer_number = (char *)cl->cust->account_no;
		tb.account_type = "SAVINGS";
		tb.beneficiary_account_number = "8888123456";
		tb.beneficiary_bank_code = "014";
		amount(&a, "300.00");
		tb.amount = &a;
		msg = &tb.base;
		break;
	case K_REFUND:
		rf.original_partner_reference_no = o->orig;
		rf.reason = "crash test";
		rf.partner_refund_no = o->ref;
		msg = &rf.base;
		break;
	case K_CANCEL:
		cp.original_partner_reference_no = o->orig;
		cp.reason = "crash test";
		msg = &cp.base;
		break;
	}
	o->tries++;
	if (dokubridge_start(cl->c, &opts, kind_method[o->k], msg, on_done, cl, NULL, &res) == 0)
		cl->busy = true;
}

/* ---- kill and restart ----------------------------------------------------------------- */

/* The first armed fault that matches takes a request: two 504s or dropped
 * connections (after the operation or without it) on money paths, then a
 * delay of every request, so that kills land while requests are out. */
static void arm_faults(void)
{
	char json[256];

	free(h_ctl(&env, "DELETE", "/control/faults", NULL, NULL));
	for (int i = 0; i < 2; i++) {
		snprintf(json, sizeof(json),
			 "{\"path\":\"%s\",\"kind\":\"%s\",\"apply\":%s,\"count\":2,\"delayMs\":%u}",
			 kind_path[rnd() % 5], rnd() % 2 ? "http504" : "drop",
			 rnd() % 2 ? "true" : "false", 50 + rnd() % 200);
		h_fault(&env, json);
	}
	h_fault(&env, "{\"path\":\"*\",\"kind\":\"delay\",\"delayMs\":120,\"count\":-1}");
}

static void kill_restart(bool reconnect)
{
	dokubridge_result res;

	h_daemon_signal(&env, SIGKILL);
	(void)h_daemon_wait(&env);
	kills++;
	arm_faults();
	h_daemon_start(&env, "drain_timeout_ms = 1000", NULL);
	for (unsigned i = 0; reconnect && i < CALLERS; i++) {
		/* calls in flight on the old connection complete (local) with UNAVAILABLE */
		if (dokubridge_connect(callers[i].c, &res) != 0)
			fail_msg("caller %u cannot connect after restart %u: %s", i, kills, res.message);
		callers[i].busy = false;
	}
}

static void drive(void)
{
	struct pollfd pfd[CALLERS];
	uint64_t end = now_ms() + PHASE_MAX_MS, next_kill = now_ms() + KILL_MIN_MS + rnd() % KILL_SPAN_MS;

	while (replies < CALLERS * OPS_PER_CALLER) {
		uint64_t now = now_ms();

		assert_true(now < end);
		if (now >= next_kill && kills < KILLS_MAX) {
			kill_restart(true);
			next_kill = now_ms() + KILL_MIN_MS + rnd() % KILL_SPAN_MS;
		}
		for (unsigned i = 0; i < CALLERS; i++) {
			struct caller *cl = &callers[i];
			unsigned want;

			if (!cl->busy && dokubridge_connected(cl->c))
				start(cl);
			want = dokubridge_interest(cl->c);
			pfd[i].fd = cl->busy ? dokubridge_fd(cl->c) : -1;
			pfd[i].events = (short)((want & DOKUBRIDGE_WANT_READ ? POLLIN : 0) |
						(want & DOKUBRIDGE_WANT_WRITE ? POLLOUT : 0));
			pfd[i].revents = 0;
		}
		assert_true(poll(pfd, CALLERS, 100) >= 0);
		for (unsigned i = 0; i < CALLERS; i++) {
			unsigned ev = 0;

			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				ev |= DOKUBRIDGE_WANT_READ;
			if (pfd[i].revents & POLLOUT)
				ev |= DOKUBRIDGE_WANT_WRITE;
			if (pfd[i].fd >= 0)
				dokubridge_process(callers[i].c, ev);
		}
	}
}

/* ---- the proof ------------------------------------------------------------------------ */

static unsigned errors;

__attribute__((format(printf, 1, 2)))
static void bad(const char *fmt, ...)
{
	va_list ap;

	if (errors++ >= ERRORS_SHOWN)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "CRASH TEST: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* Unresolved rows, by ListOperations. */
static size_t count_state(dokubridge_client *c, Doku__Wallet__V1__OperationState st)
{
	Doku__Wallet__V1__ListOperationsRequest lo = DOKU__WALLET__V1__LIST_OPERATIONS_REQUEST__INIT;
	Doku__Wallet__V1__ListOperationsResponse *r = NULL;
	dokubridge_result res;
	size_t n;

	lo.state = st;
	lo.page_size = 100;
	OK_CALL(c, NULL, "ListOperations", lo, &r, &res);
	n = r->n_operations;
	dokubridge_message_free(r);
	return n;
}

static json_t *export_journal(void)
{
	char cmd[PATH_MAX * 2], *line = NULL;
	size_t cap = 0;
	json_t *rows = json_array();
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' --config '%s' --export-journal", DOKU_BRIDGED_BIN, env.conf);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (getline(&line, &cap, p) > 0) {
		json_t *j = json_loads(line, 0, NULL);

		assert_non_null(j);
		json_array_append_new(rows, j);
	}
	free(line);
	assert_int_equal(pclose(p), 0);
	return rows;
}

/* The row holding external id ext (as its attempt or an earlier one); *earlier its attempt. */
static json_t *row_of_ext(json_t *rows, const char *ext, json_t **earlier)
{
	size_t i, k;
	json_t *r, *e;

	*earlier = NULL;
	json_array_foreach(rows, i, r) {
		if (strcmp(str(r, "externalId"), ext) == 0)
			return r;
		json_array_foreach(json_object_get(r, "earlier"), k, e)
			if (strcmp(str(e, "externalId"), ext) == 0) {
				*earlier = e;
				return r;
			}
	}
	return NULL;
}

static json_t *row_of_key(json_t *rows, const char *method, const char *ref)
{
	size_t i;
	json_t *r;

	json_array_foreach(rows, i, r)
		if (strcmp(str(r, "method"), method) == 0 && strcmp(str(r, "partnerReferenceNo"), ref) == 0)
			return r;
	return NULL;
}

static int kind_of_path(const char *path)
{
	for (int k = 0; k < 5; k++)
		if (strcmp(path, kind_path[k]) == 0)
			return k;
	return -1;
}

static const char *const tx_type[] = { "TOPUP", "PAYMENT", "SEND_MONEY", "REFUND", NULL };

/* Whether row's operation happened in the world, and with which external id. */
static bool happened(json_t *world, const json_t *row, int k, const char **ext)
{
	size_t i;
	json_t *t;

	*ext = NULL;
	json_array_foreach(world, i, t) {
		if (k == K_CANCEL) {
			if (strcmp(str(t, "type"), "PAYMENT") == 0 &&
			    strcmp(str(t, "partnerReferenceNo"), str(row, "partnerReferenceNo")) == 0)
				return strcmp(str(t, "status"), "CANCELLED") == 0;
			continue;
		}
		if (strcmp(str(t, "type"), tx_type[k]) != 0)
			continue;
		if (strcmp(str(t, "externalId"), str(row, "externalId")) == 0) {
			*ext = str(t, "externalId");
			return true;
		}
		{
			size_t m;
			json_t *e;

			json_array_foreach(json_object_get(row, "earlier"), m, e)
				if (strcmp(str(t, "externalId"), str(e, "externalId")) == 0) {
					*ext = str(t, "externalId");
					return true;
				}
		}
	}
	return false;
}

static void prove(void)
{
	dokubridge_client *c = h_client(&env);
	uint64_t end = now_ms() + SETTLE_MAX_MS;
	json_t *rows, *log = json_array(), *world, *r, *e;
	char *text, *line, *save = NULL;
	unsigned seen = 0, states[5] = { 0 }, earlier_n = 0;
	size_t i;

	/* B: reconciliation settles */
	while (count_state(c, DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_UNKNOWN) > 0 ||
	       count_state(c, DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_PENDING) > 0) {
		assert_true(now_ms() < end);
		poll(NULL, 0, 250); /* bounded polling of an observable condition */
	}
	dokubridge_free(c);
	rows = export_journal();
	text = h_ctl(&env, "GET", "/control/log?since=0&limit=20000", NULL, NULL);
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, NULL);

		assert_non_null(j);
		json_array_append_new(log, j);
	}
	free(text);
	text = h_ctl(&env, "GET", "/control/transactions", NULL, NULL);
	world = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(world);

	/* A: every money-moving request DOKU received is journaled under its external id */
	json_array_foreach(log, i, e) {
		int k = kind_of_path(str(e, "path"));
		json_t *att;

		if (k < 0 || str(e, "externalId")[0] == '\0')
			continue;
		seen++;
		r = row_of_ext(rows, str(e, "externalId"), &att);
		if (r == NULL) {
			bad("A: %s %s X-EXTERNAL-ID %s (http %lld, %s) is not in the journal", kind_method[k],
			    str(e, "partnerReferenceNo"), str(e, "externalId"),
			    (long long)json_integer_value(json_object_get(e, "httpStatus")), str(e, "verdict"));
			continue;
		}
		if (strcmp(str(r, "method"), kind_method[k]) != 0 ||
		    strcmp(k == K_REFUND ? str(r, "originalReferenceNo") : str(r, "partnerReferenceNo"),
			   str(e, "partnerReferenceNo")) != 0)
			bad("A: X-EXTERNAL-ID %s: DOKU saw %s %s, the journal says %s %s", str(e, "externalId"),
			    kind_method[k], str(e, "partnerReferenceNo"), str(r, "method"),
			    str(r, "partnerReferenceNo"));
		/* D: an earlier attempt is one that certainly did not take effect */
		if (att != NULL && strcmp(str(att, "state"), "NOT_DONE") != 0 &&
		    json_integer_value(json_object_get(e, "httpStatus")) != 401)
			bad("D: %s %s was sent again although attempt %s (%s, http %lld) may have happened",
			    str(r, "method"), str(r, "partnerReferenceNo"), str(att, "externalId"),
			    str(att, "state"), (long long)json_integer_value(json_object_get(e, "httpStatus")));
	}

	/* B, C, D: each row's final state is the world's truth, from one attempt */
	json_array_foreach(rows, i, r) {
		const char *st = str(r, "state"), *ext = NULL;
		int k = -1;
		bool did;

		for (int m = 0; m < 5; m++)
			if (strcmp(str(r, "method"), kind_method[m]) == 0)
				k = m;
		assert_true(k >= 0);
		earlier_n += (unsigned)json_array_size(json_object_get(r, "earlier"));
		if (strcmp(st, "DONE") == 0)
			states[0]++;
		else if (strcmp(st, "NOT_DONE") == 0)
			states[1]++;
		else {
			bad("B: %s %s is still %s", str(r, "method"), str(r, "partnerReferenceNo"), st);
			continue;
		}
		did = happened(world, r, k, &ext);
		if (did != (strcmp(st, "DONE") == 0))
			bad("C: %s %s is %s in the journal but %s in DOKU's world (%s)", str(r, "method"),
			    str(r, "partnerReferenceNo"), st, did ? "happened" : "did not happen",
			    str(r, "detail"));
		if (did && ext != NULL && strcmp(ext, str(r, "externalId")) != 0)
			bad("D: %s %s happened with X-EXTERNAL-ID %s, an earlier attempt", str(r, "method"),
			    str(r, "partnerReferenceNo"), ext);
	}

	/* E: every reply told the truth */
	for (unsigned n = 0; n < nops; n++) {
		struct op *o = &ops[n];

		if (!o->replied)
			continue;
		r = row_of_key(rows, kind_method[o->k], o->ref);
		if (o->outcome == C(OUTCOME_DONE)) {
			if (r == NULL || strcmp(str(r, "state"), "DONE") != 0 ||
			    strcmp(str(r, "externalId"), o->ext) != 0)
				bad("E: %s %s was answered DONE (%s) but is %s (%s)", kind_method[o->k], o->ref,
				    o->ext, r != NULL ? str(r, "state") : "not journaled",
				    r != NULL ? str(r, "externalId") : "-");
			states[2]++;
		} else if (o->outcome == C(OUTCOME_NOT_DONE)) {
			if (r != NULL && strcmp(str(r, "state"), "NOT_DONE") != 0)
				bad("E: %s %s was answered NOT_DONE but is %s", kind_method[o->k], o->ref,
				    str(r, "state"));
			states[3]++;
		} else {
			states[4]++;
		}
	}
	fprintf(stderr,
		"crash test: %u calls (%u asked again after a lost connection), %u kills; DOKU logged %u "
		"money-moving requests; journal: %zu rows, %u DONE, %u NOT_DONE, %u earlier attempts; "
		"replies: %u DONE, %u NOT_DONE, %u UNKNOWN\n",
		nops, retries, kills, seen, json_array_size(rows), states[0], states[1], earlier_n,
		states[2], states[3], states[4]);
	json_decref(rows);
	json_decref(log);
	json_decref(world);
	assert_int_equal(errors, 0);
	assert_true(seen >= CALLERS * OPS_PER_CALLER / 2);
}

static void test_crash(void **state)
{
	const char *seed = getenv("DOKU_CRASH_SEED");
	dokubridge_client *c;
	char ref[32];

	(void)state;
	rng = seed != NULL ? strtoull(seed, NULL, 10) : 20261123u;
	if (rng == 0)
		rng = 1;
	fprintf(stderr, "crash test: seed %" PRIu64 "\n", rng);
	env.direct = true;
	h_setup(&env);
	h_daemon_start(&env, "drain_timeout_ms = 1000", NULL);
	free(h_ctl(&env, "POST", "/control/settings", "{\"autoApprovePurchases\":true}", NULL));
	c = h_client(&env);
	for (unsigned i = 0; i < CUSTOMERS; i++) {
		snprintf(ref, sizeof(ref), "crash-%u", i);
		h_customer_new(&env, c, ref, &custs[i]);
	}
	dokubridge_free(c);
	for (unsigned i = 0; i < CALLERS; i++) {
		callers[i].idx = i;
		callers[i].cust = &custs[i % CUSTOMERS];
		callers[i].c = h_client(&env);
	}
	arm_faults();
	drive();
	for (unsigned i = 0; i < CALLERS; i++)
		dokubridge_free(callers[i].c);
	free(h_ctl(&env, "DELETE", "/control/faults", NULL, NULL));
	/* one last restart: customer sessions survive it (reconciliation needs them) */
	kill_restart(false);
	free(h_ctl(&env, "DELETE", "/control/faults", NULL, NULL));
	{
		Doku__Wallet__V1__HealthRequest hq = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
		Doku__Wallet__V1__HealthResponse *hr = NULL;
		dokubridge_result res;

		c = h_client(&env);
		OK_CALL(c, NULL, "Health", hq, &hr, &res);
		assert_int_equal(hr->n_profiles, 1);
		assert_int_equal(hr->profiles[0]->customer_sessions, CUSTOMERS);
		dokubridge_message_free(hr);
		dokubridge_free(c);
	}
	prove();
	h_teardown(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
