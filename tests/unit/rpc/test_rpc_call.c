/* rpc/call.c's state machine, driven through admission (admit) and
 * call_start, with the fake upstream standing in for DOKU, the real tokens
 * and the real journal (SQLite on its worker thread, in a fresh state_dir). */
#include <sqlite3.h>

#include "admit.h"
#include "call.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"
#include "reconciler.h"
#include "rpc_test.h"
#include "store.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x
#define OUT(x) DOKU__BRIDGE__V1__OUTCOME__OUTCOME_##x

#define REF "cust-1"
#define BALANCE_PATH "/balance-inquiry"
#define TOPUP_PATH "/emoney/topup"

/* What a call's done() saw (call_result). */
struct rec {
	unsigned ndone;
	uint64_t id;
	int code, outcome;
	char status[ADMIT_STATUS_MAX + 1];
	unsigned http;
	char response_code[16];
	char response_message[128];
	char external_id[64];
	char partner_ref[64];
	bool have_resp;
	char token_type[16];
};

static void on_done(call *c, void *data)
{
	struct rec *r = data;
	reply_facts f;

	call_result(c, &f);
	r->ndone++;
	r->id = f.id;
	r->code = f.code;
	r->outcome = f.outcome;
	snprintf(r->status, sizeof(r->status), "%s", f.status != NULL ? f.status : "");
	r->http = f.http;
	snprintf(r->response_code, sizeof(r->response_code), "%s",
		 f.response_code != NULL ? f.response_code : "");
	snprintf(r->response_message, sizeof(r->response_message), "%s",
		 f.response_message != NULL ? f.response_message : "");
	snprintf(r->external_id, sizeof(r->external_id), "%s",
		 f.external_id != NULL ? f.external_id : "");
	snprintf(r->partner_ref, sizeof(r->partner_ref), "%s",
		 f.partner_reference_no != NULL ? f.partner_reference_no : "");
	r->have_resp = f.resp != NULL;
	if (f.resp != NULL && f.resp->descriptor == &doku__wallet__v1__open_customer_session_response__descriptor) {
		const Doku__Wallet__V1__OpenCustomerSessionResponse *o = (const void *)f.resp;

		snprintf(r->token_type, sizeof(r->token_type), "%s", o->token_type);
	}
}

static bool rec_done(void *data)
{
	return ((struct rec *)data)->ndone > 0;
}

static void run_until_done(rt_env *e, struct rec *r)
{
	rt_run_until(e, rec_done, r);
	assert_int_equal(r->ndone, 1);
}

static bool no_call_in_flight(void *data)
{
	return ((rt_env *)data)->b.calls_in_flight == 0;
}

/* A Call frame for method name carrying req, through call_new, admit_envelope,
 * admit and call_start, as rpc/session.c does for a connection's frame. */
static call *start_call(rt_env *e, const char *name, const ProtobufCMessage *req, const char *ref,
			uint32_t timeout_ms, struct rec *r)
{
	static uint64_t ids;
	Doku__Bridge__V1__Call env = DOKU__BRIDGE__V1__CALL__INIT;
	const method *m = methods_by_name(name);
	peer p = { 0 };
	admission a;
	Doku__Bridge__V1__Call *got;
	uint8_t *msg, *frame;
	size_t n, len;
	call *c;

	assert_non_null(m);
	n = protobuf_c_message_get_packed_size(req);
	msg = malloc(n > 0 ? n : 1);
	assert_non_null(msg);
	protobuf_c_message_pack(req, msg);
	env.id = ++ids;
	env.method = (char *)m->full;
	env.message.data = msg;
	env.message.len = n;
	env.timeout_ms = timeout_ms;
	env.customer_ref = (char *)(ref != NULL ? ref : "");
	len = protobuf_c_message_get_packed_size(&env.base);
	c = call_new(&e->b, (uint32_t)len, &frame);
	assert_non_null(c);
	protobuf_c_message_pack(&env.base, frame);
	free(msg);

	got = admit_envelope(call_arena(c), frame, (uint32_t)len);
	assert_non_null(got);
	p.pid = getpid();
	p.uid = getuid();
	p.gid = getgid();
	admit(call_arena(c), got, &p, e->b.cfg, &a);
	if (a.code != 0)
		fail_msg("admission refused %s: %s", name, a.status);
	memset(r, 0, sizeof(*r));
	call_start(c, &a, got->id, p.uid, 1, on_done, r);
	return c;
}

static call *start_balance(rt_env *e, const char *partner_ref, uint32_t timeout_ms, struct rec *r)
{
	Doku__Wallet__V1__GetBalanceRequest q = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;

	q.partner_reference_no = (char *)partner_ref;
	return start_call(e, "GetBalance", &q.base, REF, timeout_ms, r);
}

static call *start_topup(rt_env *e, const char *partner_ref, struct rec *r)
{
	Doku__Wallet__V1__TopUpRequest q = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;

	amt.value = "10000.00";
	amt.currency = "IDR";
	q.partner_reference_no = (char *)partner_ref;
	q.customer_number = "6281234567890";
	q.amount = &amt;
	q.session_id = "sess-1";
	q.notes = "a top-up";
	return start_call(e, "TopUp", &q.base, REF, 0, r);
}

static int setup(void **state)
{
	rt_env *e = rt_env_new(true);

	rt_restore_session(e, REF, "acc-1", "ref-1", 3600);
	*state = e;
	return 0;
}

static int setup_no_session(void **state)
{
	*state = rt_env_new(true);
	return 0;
}

static int teardown(void **state)
{
	rt_env_free(*state);
	return 0;
}

/* ---- the journal, read behind the daemon's back ---- */

/* The journal row of partner reference ref: state and X-EXTERNAL-ID. false: none. */
static bool journal_row(const rt_env *e, const char *ref, char state[16], char extid[64])
{
	char path[PATH_MAX + 16];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	bool found = false;

	snprintf(path, sizeof(path), "%s/%s", e->state, STORE_DB_NAME);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT state, external_id FROM journal "
					     "WHERE partner_reference_no = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		found = true;
		snprintf(state, 16, "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(extid, 64, "%s", (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return found;
}

static void assert_journal_state(const rt_env *e, const char *ref, const char *want)
{
	char state[16], extid[64];

	assert_true(journal_row(e, ref, state, extid));
	assert_string_equal(state, want);
}

/* At the moment a money-moving request is started, its intent must be durable. */
struct intent_probe {
	rt_env *e;
	const char *ref;
	unsigned seen;
	bool row_found;
	char state[16];
	char row_extid[64];
	char header_extid[64];
	/* after the token answer was handled */
	bool token_done;
	unsigned count_after_token;
};

static void probe_on_start(const fake_req *rq, void *data)
{
	struct intent_probe *p = data;
	const char *x = fake_req_header(rq, "X-EXTERNAL-ID");

	if (!fake_req_url_ends(rq, TOPUP_PATH))
		return;
	p->seen++;
	snprintf(p->header_extid, sizeof(p->header_extid), "%s", x != NULL ? x : "");
	p->row_found = journal_row(p->e, p->ref, p->state, p->row_extid);
}

static void probe_after_done(const fake_req *rq, void *data)
{
	struct intent_probe *p = data;

	if (fake_req_url_ends(rq, RT_B2B_PATH) && !p->token_done) {
		p->token_done = true;
		p->count_after_token = fake_up_count(p->e->b.up);
	}
}

static void probe_install(rt_env *e, struct intent_probe *p, const char *ref)
{
	memset(p, 0, sizeof(*p));
	p->e = e;
	p->ref = ref;
	fake_up_on_start(e->b.up, probe_on_start, p);
	fake_up_after_done(e->b.up, probe_after_done, p);
}

static void probe_remove(rt_env *e)
{
	fake_up_on_start(e->b.up, NULL, NULL);
	fake_up_after_done(e->b.up, NULL, NULL);
}

/* Token, then the TopUp request of a new call; returns the request's number. */
static unsigned topup_until_sent(rt_env *e, const char *ref, struct rec *r, call **c,
				 struct intent_probe *p)
{
	unsigned base = fake_up_count(e->b.up);

	probe_install(e, p, ref);
	*c = start_topup(e, ref, r);
	rt_run_until_requests(e, base + 1);
	assert_true(fake_req_url_ends(fake_up_req(e->b.up, base), RT_B2B_PATH));
	rt_answer_b2b(e, base, "tok-A");
	rt_run_until_requests(e, base + 2);
	/* the verdict came between the token and the request */
	assert_true(p->token_done);
	assert_int_equal(p->count_after_token, base + 1);
	assert_int_equal(p->seen, 1);
	assert_true(p->row_found);
	assert_string_equal(p->state, "PENDING");
	assert_string_equal(p->row_extid, p->header_extid);
	assert_int_equal(r->ndone, 0);
	probe_remove(e);
	return base + 1;
}

/* ---- cases ---- */

/* OpenCustomerSession through the token endpoint, then a customer call uses it. */
static void test_open_session_then_balance(void **state)
{
	rt_env *e = *state;
	Doku__Wallet__V1__OpenCustomerSessionRequest q =
		DOKU__WALLET__V1__OPEN_CUSTOMER_SESSION_REQUEST__INIT;
	struct rec r;
	const fake_req *rq;

	q.auth_code = "auth-1";
	start_call(e, "OpenCustomerSession", &q.base, "cust-9", 0, &r);
	rt_run_until_requests(e, 1);
	rq = fake_up_req(e->b.up, 0);
	assert_true(fake_req_url_ends(rq, RT_B2B2C_PATH));
	assert_non_null(strstr(rq->body, "\"authCode\":\"auth-1\""));
	assert_non_null(fake_req_header(rq, "X-SIGNATURE"));
	rt_answer_b2b2c(e, 0, "acc-9", "ref-9");
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(OK));
	assert_int_equal(r.outcome, OUT(DONE));
	assert_int_equal(r.http, 200);
	assert_string_equal(r.response_code, "2007400");
	assert_true(r.have_resp);
	assert_string_equal(r.token_type, "Bearer");

	{
		Doku__Wallet__V1__GetBalanceRequest b = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;

		b.partner_reference_no = "bal-9";
		start_call(e, "GetBalance", &b.base, "cust-9", 0, &r);
	}
	rt_run_until_requests(e, 2);
	assert_true(fake_req_url_ends(fake_up_req(e->b.up, 1), RT_B2B_PATH));
	rt_answer_b2b(e, 1, "tok-A");
	rt_run_until_requests(e, 3);
	rq = fake_up_req(e->b.up, 2);
	rt_assert_bearer(rq, "Authorization-Customer", "acc-9");
	rt_answer_code(e, 2, 200, "2001100", "Successful");
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(OK));
}

/* OpenCustomerSession refused by DOKU: FAILED/UNAUTHENTICATED, NOT_DONE. */
static void test_open_session_refused(void **state)
{
	rt_env *e = *state;
	Doku__Wallet__V1__OpenCustomerSessionRequest q =
		DOKU__WALLET__V1__OPEN_CUSTOMER_SESSION_REQUEST__INIT;
	struct rec r;

	q.auth_code = "auth-bad";
	start_call(e, "OpenCustomerSession", &q.base, "cust-9", 0, &r);
	rt_run_until_requests(e, 1);
	rt_answer_code(e, 0, 401, "4017401", "Invalid authCode");
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(UNAUTHENTICATED));
	assert_int_equal(r.outcome, OUT(NOT_DONE));
	assert_int_equal(r.http, 401);
	assert_string_equal(r.response_code, "4017401");
	assert_non_null(strstr(r.status, "Invalid authCode"));
}

/* GetBalance: one token request, then the signed service request; 2001100 -> OK. */
static void test_balance_happy_path(void **state)
{
	rt_env *e = *state;
	struct rec r;
	const fake_req *rq;
	const char *x;

	start_balance(e, "bal-1", 0, &r);
	rt_run_until_requests(e, 1);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_int_equal(fake_up_count(e->b.up), 1); /* nothing else before the token */
	rq = fake_up_req(e->b.up, 0);
	assert_true(fake_req_url_ends(rq, RT_B2B_PATH));
	assert_string_equal(rq->url, RT_BASE_URL RT_B2B_PATH);
	rt_answer_b2b(e, 0, "tok-A");
	rt_run_until_requests(e, 2);
	rq = fake_up_req(e->b.up, 1);
	assert_true(fake_req_url_ends(rq, BALANCE_PATH));
	rt_assert_bearer(rq, "Authorization", "tok-A");
	rt_assert_bearer(rq, "Authorization-Customer", "acc-1");
	x = fake_req_header(rq, "X-EXTERNAL-ID");
	assert_non_null(x);
	assert_true(strlen(x) > 0);
	assert_non_null(fake_req_header(rq, "X-SIGNATURE"));
	assert_non_null(fake_req_header(rq, "X-TIMESTAMP"));
	assert_string_equal(fake_req_header(rq, "X-PARTNER-ID"), RT_CLIENT_ID);
	assert_non_null(strstr(rq->body, "\"partnerReferenceNo\":\"bal-1\""));
	assert_false(rq->fresh_connection);
	assert_int_equal(r.ndone, 0);

	rt_answer_code(e, 1, 200, "2001100", "Successful");
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(OK));
	assert_int_equal(r.outcome, OUT(DONE));
	assert_int_equal(r.http, 200);
	assert_string_equal(r.response_code, "2001100");
	assert_string_equal(r.response_message, "Successful");
	assert_string_equal(r.external_id, x);
	assert_string_equal(r.partner_ref, "bal-1");
	assert_true(r.have_resp);
	assert_int_equal(fake_up_count(e->b.up), 2);
	assert_int_equal(e->b.calls_in_flight, 0);
	assert_int_equal(e->b.calls_served, 1);
	assert_int_equal(e->b.calls_failed, 0);
	assert_false(journal_row(e, "bal-1", (char[16]){ 0 }, (char[64]){ 0 })); /* a read: not journaled */
}

/* Three calls started together: one token request for all of them. */
static void test_b2b_single_flight(void **state)
{
	rt_env *e = *state;
	struct rec r[3];
	char extids[3][64];
	unsigned ntok = 0;

	start_balance(e, "bal-1", 0, &r[0]);
	start_balance(e, "bal-2", 0, &r[1]);
	start_balance(e, "bal-3", 0, &r[2]);
	rt_run_until_requests(e, 1);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_int_equal(fake_up_count(e->b.up), 1);
	rt_answer_b2b(e, 0, "tok-A");
	rt_run_until_requests(e, 4);
	for (unsigned i = 0; i < fake_up_count(e->b.up); i++)
		if (fake_req_url_ends(fake_up_req(e->b.up, i), RT_B2B_PATH))
			ntok++;
	assert_int_equal(ntok, 1);
	for (unsigned i = 1; i < 4; i++) {
		const fake_req *rq = fake_up_req(e->b.up, i);

		assert_true(fake_req_url_ends(rq, BALANCE_PATH));
		rt_assert_bearer(rq, "Authorization", "tok-A");
		snprintf(extids[i - 1], sizeof(extids[0]), "%s", fake_req_header(rq, "X-EXTERNAL-ID"));
		rt_answer_code(e, i, 200, "2001100", "Successful");
	}
	assert_string_not_equal(extids[0], extids[1]);
	assert_string_not_equal(extids[1], extids[2]);
	for (unsigned i = 0; i < 3; i++) {
		run_until_done(e, &r[i]);
		assert_int_equal(r[i].code, CODE(OK));
		assert_int_equal(r[i].outcome, OUT(DONE));
	}
	assert_int_equal(fake_up_count(e->b.up), 4);
}

/* A 401 for the B2B token: a new token, one retry with a new X-EXTERNAL-ID. */
static void test_401_new_token_one_retry(void **state)
{
	rt_env *e = *state;
	struct rec r;
	char x1[64];
	const fake_req *rq;

	start_balance(e, "bal-1", 0, &r);
	rt_run_until_requests(e, 1);
	rt_answer_b2b(e, 0, "tok-A");
	rt_run_until_requests(e, 2);
	snprintf(x1, sizeof(x1), "%s", fake_req_header(fake_up_req(e->b.up, 1), "X-EXTERNAL-ID"));
	rt_answer_code(e, 1, 401, "4011101", "Invalid Token (B2B)");
	rt_run_until_requests(e, 3);
	assert_true(fake_req_url_ends(fake_up_req(e->b.up, 2), RT_B2B_PATH)); /* fetched again */
	assert_int_equal(r.ndone, 0);
	rt_answer_b2b(e, 2, "tok-B");
	rt_run_until_requests(e, 4);
	rq = fake_up_req(e->b.up, 3);
	assert_true(fake_req_url_ends(rq, BALANCE_PATH));
	rt_assert_bearer(rq, "Authorization", "tok-B");
	assert_non_null(fake_req_header(rq, "X-EXTERNAL-ID"));
	assert_string_not_equal(fake_req_header(rq, "X-EXTERNAL-ID"), x1);
	rt_answer_code(e, 3, 200, "2001100", "Successful");
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(OK));
	assert_int_equal(r.outcome, OUT(DONE));
	assert_string_equal(r.external_id, fake_req_header(rq, "X-EXTERNAL-ID"));
	assert_int_equal(fake_up_count(e->b.up), 4);
}

/* A second 401: UNAUTHENTICATED, no third attempt. */
static void test_401_twice_unauthenticated(void **state)
{
	rt_env *e = *state;
	struct rec r;

	start_balance(e, "bal-1", 0, &r);
	rt_run_until_requests(e, 1);
	rt_answer_b2b(e, 0, "tok-A");
	rt_run_until_requests(e, 2);
	rt_answer_code(e, 1, 401, "4011101", "Invalid Token (B2B)");
	rt_run_until_requests(e, 3);
	rt_answer_b2b(e, 2, "tok-B");
	rt_run_until_requests(e, 4);
	rt_answer_code(e, 3, 401, "4011101", "Invalid Token (B2B)");
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(UNAUTHENTICATED));
	assert_int_equal(r.outcome, OUT(NOT_DONE));
	assert_int_equal(r.http, 401);
	assert_string_equal(r.response_code, "4011101");
	assert_non_null(strstr(r.status, "Invalid Token (B2B)"));
	uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_int_equal(fake_up_count(e->b.up), 4);
	assert_int_equal(fake_up_pending(e->b.up), 0);
	assert_int_equal(e->b.calls_failed, 1);
}

/* TopUp: intent journaled before the request leaves, on a fresh connection;
 * a timeout after it was sent is UNKNOWN with the status RPC's advice; the
 * same reference again is answered from the journal, not sent. */
static void test_topup_timeout_unknown_then_journal(void **state)
{
	rt_env *e = *state;
	struct intent_probe p;
	struct rec r;
	const fake_req *rq;
	char extid[64], st[16], x[64];
	unsigned n;
	call *c;

	n = topup_until_sent(e, "top-1", &r, &c, &p);
	rq = fake_up_req(e->b.up, n);
	assert_true(fake_req_url_ends(rq, TOPUP_PATH));
	assert_true(rq->fresh_connection);
	rt_assert_bearer(rq, "Authorization", "tok-A");
	rt_assert_bearer(rq, "Authorization-Customer", "acc-1");
	snprintf(extid, sizeof(extid), "%s", fake_req_header(rq, "X-EXTERNAL-ID"));

	fake_up_fail(e->b.up, n, UP_ERR_TIMEOUT, true);
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(DEADLINE_EXCEEDED)); /* reply.c: UP_ERR_TIMEOUT */
	assert_int_equal(r.outcome, OUT(UNKNOWN));
	assert_int_equal(r.http, 0);
	assert_string_equal(r.external_id, extid);
	assert_non_null(strstr(r.status, "no answer from DOKU before the deadline"));
	assert_non_null(strstr(r.status, "the operation may have happened"));
	assert_non_null(strstr(r.status, "ask GetTopUpStatus"));
	assert_non_null(strstr(r.status, "partnerReferenceNo top-1"));
	assert_non_null(strstr(r.status, extid));
	/* the reply waited until the outcome was durable */
	assert_true(journal_row(e, "top-1", st, x));
	assert_string_equal(st, "UNKNOWN");
	assert_string_equal(x, extid);

	/* the same reference (and request) again: from the journal, not sent */
	n = fake_up_count(e->b.up);
	start_topup(e, "top-1", &r);
	run_until_done(e, &r);
	assert_int_equal(fake_up_count(e->b.up), n);
	assert_int_equal(r.code, CODE(UNAVAILABLE));
	assert_int_equal(r.outcome, OUT(UNKNOWN));
	assert_string_equal(r.external_id, extid);
	assert_non_null(strstr(r.status, "journaled"));
	assert_non_null(strstr(r.status, "not sent again"));
	assert_non_null(strstr(r.status, "GetTopUpStatus"));
}

/* A TopUp that certainly did not leave (I/O failure before sending): NOT_DONE,
 * UNAVAILABLE; asked again, it is sent again (a new X-EXTERNAL-ID). */
static void test_topup_not_sent_then_sent_again(void **state)
{
	rt_env *e = *state;
	struct intent_probe p;
	struct rec r;
	char x1[64];
	unsigned n;
	call *c;

	n = topup_until_sent(e, "top-2", &r, &c, &p);
	snprintf(x1, sizeof(x1), "%s", fake_req_header(fake_up_req(e->b.up, n), "X-EXTERNAL-ID"));
	fake_up_fail(e->b.up, n, UP_ERR_IO, false);
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(UNAVAILABLE));
	assert_int_equal(r.outcome, OUT(NOT_DONE));
	assert_null(strstr(r.status, "may have happened"));
	assert_journal_state(e, "top-2", "NOT_DONE");

	start_topup(e, "top-2", &r);
	rt_run_until_requests(e, n + 2); /* the token is held: straight to the request */
	assert_true(fake_req_url_ends(fake_up_req(e->b.up, n + 1), TOPUP_PATH));
	assert_string_not_equal(fake_req_header(fake_up_req(e->b.up, n + 1), "X-EXTERNAL-ID"), x1);
	rt_answer_code(e, n + 1, 200, "2003800", "Successful");
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(OK));
	assert_int_equal(r.outcome, OUT(DONE));
	assert_journal_state(e, "top-2", "DONE");
}

/* The deadline passes while DOKU does not answer: DEADLINE_EXCEEDED, the
 * request withdrawn; it was not sent, so NOT_DONE. */
static void test_deadline(void **state)
{
	rt_env *e = *state;
	struct rec r;

	start_balance(e, "bal-1", 200, &r);
	rt_run_until_requests(e, 1);
	rt_answer_b2b(e, 0, "tok-A");
	rt_run_until_requests(e, 2);
	assert_true(fake_up_req(e->b.up, 1)->timeout_ms <= 200);
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(DEADLINE_EXCEEDED));
	assert_int_equal(r.outcome, OUT(NOT_DONE));
	assert_non_null(strstr(r.status, "deadline exceeded"));
	assert_true(fake_up_req(e->b.up, 1)->cancelled);
	assert_int_equal(upstream_active(e->b.up), 0);
}

/* The deadline passes while the call waits for its token: the token request
 * goes on (for the others), the call ends. */
static void test_deadline_waiting_for_token(void **state)
{
	rt_env *e = *state;
	struct rec r;
	unsigned gen;

	start_balance(e, "bal-1", 100, &r);
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(DEADLINE_EXCEEDED));
	assert_int_equal(r.outcome, OUT(NOT_DONE));
	assert_int_equal(fake_up_count(e->b.up), 1);
	assert_false(fake_up_req(e->b.up, 0)->cancelled);
	rt_answer_b2b(e, 0, "tok-A");
	rt_run_until_delivered(e);
	assert_string_equal(tokens_b2b_value(e->tp, &gen), "tok-A");
}

/* call_abort while SENDING: not yet written -> NOT_DONE; written -> UNKNOWN. */
static void test_abort_while_sending(void **state)
{
	rt_env *e = *state;
	struct intent_probe p;
	struct rec r;
	unsigned n;
	call *c;

	n = topup_until_sent(e, "top-3", &r, &c, &p);
	call_abort(c, CODE(CANCELLED), "cancelled by the caller");
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(CANCELLED));
	assert_int_equal(r.outcome, OUT(NOT_DONE));
	assert_non_null(strstr(r.status, "cancelled by the caller"));
	assert_true(fake_up_req(e->b.up, n)->cancelled);
	assert_journal_state(e, "top-3", "NOT_DONE");

	c = start_topup(e, "top-4", &r);
	rt_run_until_requests(e, n + 2); /* the token is held: straight to the request */
	assert_true(fake_req_url_ends(fake_up_req(e->b.up, n + 1), TOPUP_PATH));
	fake_up_set_sent(e->b.up, n + 1);
	call_abort(c, CODE(CANCELLED), "cancelled by the caller");
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(CANCELLED));
	assert_int_equal(r.outcome, OUT(UNKNOWN));
	assert_non_null(strstr(r.status, "cancelled by the caller"));
	assert_non_null(strstr(r.status, "ask GetTopUpStatus"));
	assert_true(fake_up_req(e->b.up, n + 1)->cancelled);
	assert_journal_state(e, "top-4", "UNKNOWN");
}

/* The caller goes away from a money-moving call already sent: it runs to its
 * end without done(), and its outcome is journaled. */
static void test_detach_money_sent_runs_to_end(void **state)
{
	rt_env *e = *state;
	struct intent_probe p;
	struct rec r;
	unsigned n;
	call *c;

	n = topup_until_sent(e, "top-5", &r, &c, &p);
	fake_up_set_sent(e->b.up, n);
	call_detach(c);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_false(fake_up_req(e->b.up, n)->cancelled);
	assert_int_equal(e->b.calls_in_flight, 1);
	assert_journal_state(e, "top-5", "PENDING");

	rt_answer_code(e, n, 200, "2003800", "Successful");
	rt_run_until(e, no_call_in_flight, e);
	assert_int_equal(r.ndone, 0);
	assert_int_equal(e->b.calls_served, 1);
	assert_int_equal(e->b.calls_failed, 0);
	assert_journal_state(e, "top-5", "DONE");
}

/* The daemon's own call (the reconciler's query) is in flight apart from the
 * callers' calls: Health and the gauge report callers' calls only, while the
 * drain still waits for both (a Health after a fault once saw 1 here). */
static void test_internal_call_counted_apart(void **state)
{
	rt_env *e = *state;
	Doku__Wallet__V1__GetBalanceRequest q = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	struct rec r;
	call *c;

	c = call_new_internal(&e->b);
	assert_non_null(c);
	q.partner_reference_no = "rec-1";
	memset(&r, 0, sizeof(r));
	call_start_internal(c, methods_by_name("GetBalance"), e->prof, REF, &q.base, 5000, on_done, &r);
	rt_run_until_requests(e, 1);
	assert_int_equal(e->b.calls_in_flight, 0);
	assert_int_equal(e->b.internal_in_flight, 1);
	rt_answer_b2b(e, 0, "tok-A");
	rt_run_until_requests(e, 2);
	rt_answer_code(e, 1, 200, "2001100", "Successful");
	run_until_done(e, &r);
	assert_int_equal(r.code, CODE(OK));
	assert_int_equal(e->b.internal_in_flight, 0);
	assert_int_equal(e->b.calls_in_flight, 0);
}

/* The caller goes away before the request was written: it stops there,
 * without done(); the journal says NOT_DONE. A read detached stops too. */
static void test_detach_not_sent_stops(void **state)
{
	rt_env *e = *state;
	struct intent_probe p;
	struct rec r;
	unsigned n;
	call *c;

	n = topup_until_sent(e, "top-6", &r, &c, &p);
	call_detach(c);
	assert_true(fake_up_req(e->b.up, n)->cancelled);
	rt_run_until(e, no_call_in_flight, e);
	assert_int_equal(r.ndone, 0);
	assert_journal_state(e, "top-6", "NOT_DONE");

	c = start_balance(e, "bal-1", 0, &r);
	rt_run_until_requests(e, n + 2);
	fake_up_set_sent(e->b.up, n + 1);
	call_detach(c);
	assert_true(fake_up_req(e->b.up, n + 1)->cancelled);
	rt_run_until(e, no_call_in_flight, e);
	assert_int_equal(r.ndone, 0);
	assert_int_equal(e->b.calls_failed, 2); /* both ended CANCELLED */
}

/* The reconciler closed while its scan of the journal is in flight (a
 * shutdown right after start-up): the scan's answer comes after the close
 * and must not find the reconciler freed (valgrind once saw on_due write
 * into freed memory; ASan fails this test without the scan's reference). */
static void test_reconciler_closed_while_scanning(void **state)
{
	rt_env *e = *state;
	reconciler *rec;

	assert_int_equal(reconciler_new(&e->b, &rec), 0);
	reconciler_start(rec); /* the scan is queued to the store's thread */
	reconciler_close(rec);
	uv_run(e->b.loop, UV_RUN_NOWAIT); /* the timer's close callback runs first */
	/* teardown: closing the journal delivers the scan's answer */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_session_then_balance, setup_no_session, teardown),
		cmocka_unit_test_setup_teardown(test_open_session_refused, setup_no_session, teardown),
		cmocka_unit_test_setup_teardown(test_balance_happy_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_b2b_single_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_401_new_token_one_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_401_twice_unauthenticated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_topup_timeout_unknown_then_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_topup_not_sent_then_sent_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline_waiting_for_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_while_sending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_money_sent_runs_to_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_not_sent_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_internal_call_counted_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconciler_closed_while_scanning, setup, teardown),
	};

	return cmocka_run_group_tests(tests, rt_group_setup, rt_group_teardown);
}
