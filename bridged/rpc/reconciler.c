/* Reconciliation at work: status queries for the journal's UNKNOWN rows. */
#include "reconciler.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "bridge.h"
#include "call.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "clock.h"
#include "log.h"
#include "text.h"
#include "methods.h"
#include "reconcile.h"
#include "snap_code.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x
#define SETTLE_SLACK_MS 500            /* ask again this long after the settle time */

struct reconciler {
	struct bridge *b;
	store *st;               /* borrowed from the journal; outlives every query */
	unsigned live;           /* queries not ended, the scan in flight, the timer until closed */
	uv_timer_t timer;
	int64_t timer_due;       /* wall-clock ms the timer fires at; 0: not armed */
	bool started, scanning, rescan, closing;
	int64_t busy[RECONCILE_PARALLEL]; /* rows whose status query is in flight (0: free) */
};

/* One status query. */
struct query {
	reconciler *j;
	store_row row;           /* the UNKNOWN row (response NULL) */
	store_row orig;          /* Cancel: the purchase's row, when journaled */
	bool have_orig;
	const method *m;         /* the status RPC */
};

static void scan(reconciler *j);

static void on_timer(uv_timer_t *t)
{
	reconciler *j = t->data;

	j->timer_due = 0;
	scan(j);
}

/* Scan the journal at due_ms (wall clock; 0: now), unless armed sooner. */
static void arm(reconciler *j, int64_t due_ms)
{
	int64_t now = clock_wall_ms();

	if (j->closing || !j->started)
		return;
	if (due_ms < now)
		due_ms = now;
	if (j->timer_due != 0 && j->timer_due <= due_ms)
		return;
	j->timer_due = due_ms;
	j->timer.data = j;
	uv_timer_start(&j->timer, on_timer, (uint64_t)(due_ms - now), 0);
}

/* Slot bookkeeping of the rows whose status query is in flight: the slot
 * holding id from becomes to (from 0: a free slot takes to). */
static void set_busy(reconciler *j, int64_t from, int64_t to)
{
	for (unsigned i = 0; i < RECONCILE_PARALLEL; i++)
		if (j->busy[i] == from) {
			j->busy[i] = to;
			return;
		}
}

static bool is_busy(const reconciler *j, int64_t id)
{
	for (unsigned i = 0; i < RECONCILE_PARALLEL; i++)
		if (j->busy[i] == id)
			return true;
	return false;
}

static bool slots_full(const reconciler *j)
{
	return !is_busy(j, 0);
}

/* Drop one of j's references (a query, the scan, the timer); true: j was
 * freed, closed and the last of them gone. */
static bool unref(reconciler *j)
{
	if (--j->live > 0)
		return false;
	free(j);
	return true;
}

static void query_end(struct query *q)
{
	reconciler *j = q->j;

	set_busy(j, q->row.id, 0);
	free(q);
	if (unref(j))
		return; /* closed: the last query ended after the timer */
	if (!j->closing)
		scan(j); /* a slot is free: the next due row need not wait for the others */
}

static void on_reconciled(const store_result *res, void *data)
{
	struct query *q = data;

	if (res->status == STORE_ERR_STATE)
		log_msg(LOG_LVL_INFO, "reconcile: row %" PRId64 " was settled or claimed by another "
			"daemon meanwhile", q->row.id);
	else if (res->status != 0)
		log_msg(LOG_LVL_ERROR, "reconcile: row %" PRId64 " not updated: %s", q->row.id,
			store_strerror(res->status));
	query_end(q);
}

/* Record what the query learnt. */
static void record(struct query *q, enum store_state st, int64_t next_ms, const char *detail)
{
	reconciler *j = q->j;
	int rc;

	log_msg(LOG_LVL_INFO,
		"reconcile: row=%" PRId64 " method=%s profile=%s ref=%s ext_id=%s attempt=%u -> %s (%s)",
		q->row.id, q->row.method, q->row.profile, q->row.partner_reference_no,
		q->row.external_id, q->row.attempts + 1, store_state_name(st), detail);
	rc = store_journal_reconciled(j->st, q->row.id, st, next_ms, detail, on_reconciled, q);
	if (rc != 0) {
		log_msg(LOG_LVL_ERROR, "reconcile: row %" PRId64 " not updated: %s", q->row.id,
			store_strerror(rc));
		query_end(q);
	}
}

static int64_t next_attempt(const struct query *q, int64_t now)
{
	return now + reconcile_backoff_ms(now - q->row.created_ms, clock_jitter32());
}

static void on_query_done(call *c, void *data)
{
	struct query *q = data;
	char detail[RECONCILE_DETAIL_MAX + 1];
	reply_facts f;
	reconcile_answer a;
	int64_t now = clock_wall_ms(), next;
	enum store_state st;
	snap_code rc;

	call_result(c, &f);
	a.http = f.http;
	a.response_code = f.response_code[0] != '\0' ? f.response_code : NULL;
	a.msg = f.resp;
	if (f.http == 0 && q->j->b->draining) {
		/* cut by our own shutdown (drain_timeout_ms), not an answer of DOKU: not an
		 * attempt; the row keeps its schedule and the next start asks it */
		log_msg(LOG_LVL_INFO, "reconcile: row=%" PRId64 " method=%s ref=%s: the status query "
			"was cut by the shutdown; not counted, asked again after the next start",
			q->row.id, q->row.method, q->row.partner_reference_no);
		query_end(q);
		return;
	}
	st = reconcile_read(&q->row, &a, now, detail);
	next = next_attempt(q, now);
	if (st == STORE_UNKNOWN && f.http == 0 && f.code == CODE(FAILED_PRECONDITION))
		text_printf(detail, sizeof(detail), "no customer session \"%s\" in profile %s to ask %s "
			 "with: stays UNKNOWN until one is opened", q->row.customer_ref, q->row.profile,
			 q->m->name);
	if (st == STORE_UNKNOWN && a.response_code != NULL &&
	    snap_code_parse(a.response_code, strlen(a.response_code), &rc) == 0 && rc.http == 404 &&
	    q->row.created_ms + RECONCILE_SETTLE_MS + SETTLE_SLACK_MS < next)
		/* "not found" too soon to trust: ask again once it is not */
		next = q->row.created_ms + RECONCILE_SETTLE_MS + SETTLE_SLACK_MS;
	record(q, st, next, detail);
}

static void send_query(struct query *q)
{
	reconciler *j = q->j;
	struct bridge *b = j->b;
	const snap_endpoint *ep = NULL;
	ProtobufCMessage *msg = NULL;
	const profile *p;
	const method *m;
	call *c;
	int rc;

	c = call_new_internal(b);
	if (c == NULL) {
		record(q, STORE_UNKNOWN, next_attempt(q, clock_wall_ms()), "out of memory");
		return;
	}
	rc = reconcile_request(&q->row, q->have_orig ? &q->orig : NULL, call_arena(c), &ep, &msg);
	if (rc != 0) {
		call_discard(c);
		record(q, STORE_UNKNOWN, next_attempt(q, clock_wall_ms()),
		       "cannot build the status request from the row");
		return;
	}
	m = methods_by_name(ep->name);
	p = config_profile(b->cfg, q->row.profile);
	if (m == NULL || p == NULL) {
		call_discard(c);
		record(q, STORE_UNKNOWN, next_attempt(q, clock_wall_ms()),
		       p == NULL ? "its profile is not configured" : "no status method");
		return;
	}
	q->m = m;
	call_start_internal(c, m, p, q->row.customer_ref, msg, RECONCILE_QUERY_TIMEOUT_MS,
			    on_query_done, q);
}

static void on_original(const store_result *res, void *data)
{
	struct query *q = data;

	if (res->status == 0 && res->n_rows == 1) {
		q->orig = res->rows[0];
		q->orig.response = NULL;
		q->orig.response_len = 0;
		q->have_orig = true;
	}
	if (q->j->closing) {
		query_end(q);
		return;
	}
	send_query(q);
}

static void start_query(reconciler *j, const store_row *row)
{
	struct query *q = calloc(1, sizeof(*q));
	store_key k = { 0 };

	if (q == NULL)
		return;
	j->live++;
	q->j = j;
	q->row = *row;
	q->row.response = NULL;
	q->row.response_len = 0;
	set_busy(j, 0, row->id);
	if (row->original_reference_no[0] != '\0' && reconcile_needs_original(row->method) &&
	    reconcile_original_method(row->method) != NULL) {
		/* Cancel: the purchase's row gives its transactionDate */
		k.profile = row->profile;
		k.method = reconcile_original_method(row->method);
		k.partner_reference_no = row->original_reference_no;
		if (store_journal_get(j->st, &k, on_original, q) == 0)
			return;
	}
	send_query(q);
}

static void on_due(const store_result *res, void *data)
{
	reconciler *j = data;
	int64_t now = clock_wall_ms();

	j->scanning = false;
	if (unref(j) || j->closing)
		return; /* closed while the journal was read */
	if (res->status != 0) {
		log_msg(LOG_LVL_ERROR, "reconcile: the journal cannot be read: %s",
			store_strerror(res->status));
		arm(j, now + RECONCILE_RETRY_MS);
		return;
	}
	for (size_t i = 0; i < res->n_rows; i++) {
		if (is_busy(j, res->rows[i].id))
			continue; /* its query is in flight */
		if (res->rows[i].next_attempt_ms > now) {
			arm(j, res->rows[i].next_attempt_ms);
			break;
		}
		if (slots_full(j))
			break; /* the rest: as slots free up */
		start_query(j, &res->rows[i]);
	}
	if (j->rescan && !slots_full(j))
		scan(j);
	if (store_shared(j->st))
		arm(j, now + RECONCILE_FLEET_SCAN_MS); /* rows of dead daemons become UNKNOWN meanwhile */
}

static void scan(reconciler *j)
{
	int rc;

	if (j->closing || !j->started || j->b->draining)
		return;
	if (j->scanning || slots_full(j)) {
		j->rescan = true;
		return;
	}
	j->rescan = false;
	j->scanning = true;
	j->live++; /* the scan's: reconciler_close may come before on_due */
	rc = store_journal_due(j->st, RECONCILE_BATCH, on_due, j);
	if (rc != 0) {
		j->live--;
		j->scanning = false;
		log_msg(LOG_LVL_ERROR, "reconcile: the journal cannot be read: %s", store_strerror(rc));
		arm(j, clock_wall_ms() + RECONCILE_RETRY_MS);
	}
}


/* bridge.unknown_recorded: an outcome was journaled UNKNOWN: reconcile it. */
static void on_unknown(struct bridge *b)
{
	if (b->rec != NULL)
		arm(b->rec, 0);
}

int reconciler_new(struct bridge *b, reconciler **out)
{
	reconciler *j = calloc(1, sizeof(*j));

	*out = NULL;
	if (j == NULL)
		return -1;
	j->b = b;
	j->st = journal_store(b->journal);
	j->live = 1; /* the timer */
	uv_timer_init(b->loop, &j->timer);
	j->timer.data = j;
	b->unknown_recorded = on_unknown;
	*out = j;
	return 0;
}

void reconciler_start(reconciler *j)
{
	j->started = true;
	scan(j);
}

static void on_timer_closed(uv_handle_t *h)
{
	(void)unref(h->data);
}

void reconciler_close(reconciler *j)
{
	if (j == NULL)
		return;
	j->closing = true;
	j->b->unknown_recorded = NULL;
	uv_timer_stop(&j->timer);
	uv_close((uv_handle_t *)&j->timer, on_timer_closed);
}
