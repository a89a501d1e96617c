/* The durable state at work: journal hooks, reconciliation, GetOperation,
 * ListOperations, sessions read back at start-up. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "call.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"
#include "log.h"
#include "methods.h"
#include "outcome.h"
#include "reconcile.h"
#include "snap_code.h"
#include "snap_err.h"
#include "snap_time.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x
#define OUT(x) DOKU__BRIDGE__V1__OUTCOME__OUTCOME_##x
#define OPSTATE(x) DOKU__WALLET__V1__OPERATION_STATE__OPERATION_STATE_##x
#define PATH_MAX_BYTES 4096
#define QUERY_ARENA_MAX (256u * 1024u) /* one status request */
#define SETTLE_SLACK_MS 500            /* ask again this long after the settle time */
#define PAGE_TOKEN_MAX 24
#define DAY_MS (24 * 60 * 60 * 1000LL)

struct journal {
	struct bridge *b;
	store *st;
	sealed_key *key;
	bool on;                 /* [bridge] journal */
	/* reconciliation */
	uv_timer_t timer;
	int64_t timer_due;       /* wall-clock ms the timer fires at; 0: not armed */
	bool started, scanning, rescan, closing;
	int64_t busy[JOURNAL_RECONCILE_PARALLEL]; /* rows whose status query is in flight (0: free) */
	unsigned closes;         /* journal_close: timer and store closes not yet done */
	/* retention (journal_retention_days) */
	uv_timer_t prune_timer;
	bool pruning;            /* a pass is under way */
	int64_t prune_before;    /* the pass deletes settled rows updated before this */
	uint64_t prune_t0;       /* uv_hrtime at the start of the pass */
	uint64_t pruned;         /* rows the pass deleted so far */
	unsigned prune_days, prune_batches;
};

/* One status query of reconciliation. */
struct query {
	journal *j;
	store_row row;           /* the UNKNOWN row (response NULL) */
	store_row orig;          /* Cancel/Refund: the purchase's row, when journaled */
	bool have_orig;
	snap_arena arena;        /* the status request */
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t rnd32(void)
{
	uint32_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)wall_ms();
	return r;
}

/* snprintf into a text buffer, where cutting a long path or message is fine. */
__attribute__((format(printf, 3, 4)))
static void textf(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, cap, fmt, ap);
	va_end(ap);
}

const char *journal_strerror(int err)
{
	return store_strerror(err);
}

/* ---- the key --------------------------------------------------------------------------- */

/* <state_dir>/state.key: read it, or make it (32 random bytes as 64 hex digits, 0600). */
static int key_default(const char *dir, sealed_key **out, char err[JOURNAL_ERR_MAX])
{
	char path[PATH_MAX_BYTES], why[SEALED_ERR_MAX], hex[2 * SEALED_KEY_LEN + 2];
	unsigned char raw[SEALED_KEY_LEN];
	int fd, n, rc = -1;

	n = snprintf(path, sizeof(path), "%s/%s", dir, JOURNAL_KEY_NAME);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		textf(err, JOURNAL_ERR_MAX, "state_dir %s: path too long", dir);
		return -1;
	}
	if (access(path, F_OK) == 0) {
		if (sealed_key_load_file(path, out, why) != 0) {
			textf(err, JOURNAL_ERR_MAX, "state key %s: %s", path, why);
			return -1;
		}
		return 0;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		textf(err, JOURNAL_ERR_MAX, "state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		textf(err, JOURNAL_ERR_MAX, "state key: no random bytes: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < SEALED_KEY_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	hex[2 * SEALED_KEY_LEN] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		textf(err, JOURNAL_ERR_MAX, "state key %s: cannot create: %s", path, strerror(errno));
		goto out;
	}
	if (write(fd, hex, 2 * SEALED_KEY_LEN + 1) != 2 * SEALED_KEY_LEN + 1 || fsync(fd) != 0) {
		textf(err, JOURNAL_ERR_MAX, "state key %s: cannot write: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		goto out;
	}
	close(fd);
	if (sealed_key_new(raw, out) != 0) {
		textf(err, JOURNAL_ERR_MAX, "state key: cannot set it up");
		goto out;
	}
	log_msg(LOG_LVL_INFO, "state: generated the sealing key %s (keep it with the database: "
		"without it the customer sessions cannot be read)", path);
	rc = 0;
out:
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(hex, sizeof(hex));
	return rc;
}

/* ---- open, sessions, close ------------------------------------------------------------- */

struct load {
	journal *j;
	bool done;
	unsigned restored, lapsed, bad, failed;
};

static void on_sessions(const store_result *res, void *data)
{
	struct load *ld = data;
	struct bridge *b = ld->j->b;
	int rc;

	if (res->status != 0) {
		log_msg(LOG_LVL_ERROR, "state: customer sessions cannot be read: %s",
			store_strerror(res->status));
		ld->done = true;
		return;
	}
	for (size_t i = 0; i < res->n_sessions; i++) {
		const store_session *s = &res->sessions[i];
		tok_profile *tp = tokens_profile(b->tokens, config_profile(b->cfg, s->profile));

		if (tp == NULL) {
			log_msg(LOG_LVL_WARNING, "state: customer session %s of profile %s: no such profile; "
				"not loaded", s->customer_ref, s->profile);
			ld->failed++;
			continue;
		}
		rc = tokens_session_restore(tp, s);
		if (rc == 0)
			ld->restored++;
		else if (rc == TOK_ERR_NO_SESSION)
			ld->lapsed++;
		else
			ld->failed++;
	}
	for (size_t i = 0; i < res->n_bad; i++) {
		log_msg(LOG_LVL_ERROR, "state: customer session %s of profile %s does not open (a tampered "
			"row, or sealed with another key): ignored, never used",
			res->bad[i].customer_ref, res->bad[i].profile);
		ld->bad++;
	}
	if (res->next != NULL) {
		rc = store_session_list(ld->j->st, res->next, on_sessions, ld);
		if (rc == 0)
			return;
		log_msg(LOG_LVL_ERROR, "state: customer sessions cannot be read: %s", store_strerror(rc));
	}
	ld->done = true;
}

/* journal_close's last step: the journal is freed only when its timers and
 * its store are closed (in any order). */
static void journal_closed_one(journal *j)
{
	if (--j->closes > 0)
		return;
	sealed_key_free(j->key);
	free(j);
}

static void on_timer_closed(uv_handle_t *h)
{
	journal_closed_one(h->data);
}

int journal_open(struct bridge *b, char err[JOURNAL_ERR_MAX])
{
	const config *cfg = b->cfg;
	char why[STORE_ERR_MAX];
	struct load ld;
	journal *j = calloc(1, sizeof(*j));
	int rc;

	err[0] = '\0';
	if (j == NULL) {
		textf(err, JOURNAL_ERR_MAX, "out of memory");
		return -1;
	}
	j->b = b;
	j->on = cfg->journal;
	if (cfg->state_key_file != NULL) {
		char kwhy[SEALED_ERR_MAX];

		if (sealed_key_load_file(cfg->state_key_file, &j->key, kwhy) != 0) {
			textf(err, JOURNAL_ERR_MAX, "state_key_file %s: %s", cfg->state_key_file, kwhy);
			free(j);
			return -1;
		}
	} else if (key_default(cfg->state_dir, &j->key, err) != 0) {
		free(j);
		return -1;
	}
	rc = store_open(b->loop, cfg->state_dir, j->key, &j->st, why);
	if (rc != 0) {
		textf(err, JOURNAL_ERR_MAX, "%s", why);
		sealed_key_free(j->key);
		free(j);
		return -1;
	}
	uv_timer_init(b->loop, &j->timer);
	j->timer.data = j;
	uv_timer_init(b->loop, &j->prune_timer);
	j->prune_timer.data = j;
	b->journal = j;
	tokens_set_store(b->tokens, j->st);
	memset(&ld, 0, sizeof(ld));
	ld.j = j;
	rc = store_session_list(j->st, NULL, on_sessions, &ld);
	if (rc != 0)
		ld.done = true;
	while (!ld.done)
		uv_run(b->loop, UV_RUN_ONCE); /* before anything is served */
	log_msg(LOG_LVL_INFO, "state: %s open; journal %s; customer sessions: %u restored, %u lapsed "
		"(deleted), %u unreadable, %u not loaded", cfg->state_dir, j->on ? "on" : "OFF",
		ld.restored, ld.lapsed, ld.bad, ld.failed);
	return 0;
}

static void on_store_closed(void *data)
{
	journal_closed_one(data);
}

void journal_close(struct bridge *b)
{
	journal *j = b->journal;

	if (j == NULL)
		return;
	b->journal = NULL;
	j->closing = true;
	if (b->tokens != NULL)
		tokens_set_store(b->tokens, NULL);
	uv_timer_stop(&j->timer);
	j->closes = 3;
	uv_close((uv_handle_t *)&j->timer, on_timer_closed);
	uv_close((uv_handle_t *)&j->prune_timer, on_timer_closed);
	store_close(j->st, on_store_closed, j);
}

/* ---- the call path ---------------------------------------------------------------------- */

static enum store_state state_of_outcome(int outcome)
{
	switch (outcome) {
	case OUT(DONE): return STORE_DONE;
	case OUT(NOT_DONE): return STORE_NOT_DONE;
	default: return STORE_UNKNOWN;
	}
}

/* The call cannot go on because of the journal: nothing was sent. */
static void refuse(struct call *c, int code, int store_err, const char *what)
{
	c->code = code;
	c->outcome = OUT(NOT_DONE);
	textf(c->status, sizeof(c->status), "%s%s%s; not sent", what, store_err != 0 ? ": " : "",
		 store_err != 0 ? store_strerror(store_err) : "");
	call_store_done(c, false);
}

/* Answer c from its journaled row, without sending. */
static void answer_from_row(struct call *c, const store_row *row, const char *digest)
{
	const method *m = c->m;

	if (strcmp(row->body_sha256, digest) != 0) {
		c->code = CODE(ALREADY_EXISTS);
		c->outcome = OUT(NOT_DONE);
		textf(c->status, sizeof(c->status),
			 "partner reference %s is journaled (%s) for a different request; not sent",
			 row->partner_reference_no, store_state_name(row->state));
		call_store_done(c, false);
		return;
	}
	textf(c->external_id, sizeof(c->external_id), "%s", row->external_id);
	c->http = row->http_status;
	textf(c->response_code, sizeof(c->response_code), "%s", row->response_code);
	c->response_message = row->response_message[0] != '\0' ?
		snap_arena_strndup(&c->arena, row->response_message, strlen(row->response_message)) :
		NULL;
	c->resp = NULL;
	if (row->response != NULL && row->response_len > 0)
		c->resp = protobuf_c_message_unpack(m->output, &c->arena.pb, row->response_len,
						    row->response);
	if (row->state == STORE_DONE) {
		c->code = CODE(OK);
		c->outcome = OUT(DONE);
		textf(c->status, sizeof(c->status),
			 "answered from the journal: partner reference %s was done (X-EXTERNAL-ID %s); "
			 "not sent again", row->partner_reference_no, row->external_id);
	} else {
		c->code = CODE(UNAVAILABLE);
		c->outcome = OUT(UNKNOWN);
		textf(c->status, sizeof(c->status),
			 "partner reference %s is journaled (%s, X-EXTERNAL-ID %s) and its outcome is not "
			 "known yet; not sent again: ask GetOperation", row->partner_reference_no,
			 store_state_name(row->state), row->external_id);
	}
	call_store_done(c, false);
}

static void on_reissued(const store_result *res, void *data)
{
	struct call *c = data;

	if (res->status == STORE_ERR_STATE) {
		c->journal_id = 0;
		c->code = CODE(ABORTED);
		c->outcome = OUT(UNKNOWN);
		textf(c->status, sizeof(c->status),
			 "another call with partner reference %s is being sent; this one was not sent: "
			 "ask GetOperation", c->partner_ref != NULL ? c->partner_ref : "-");
		call_store_done(c, false);
		return;
	}
	if (res->status != 0) {
		c->journal_id = 0;
		refuse(c, CODE(UNAVAILABLE), res->status, "the journal cannot record the request");
		return;
	}
	call_store_done(c, true);
}

static int reissue(struct call *c, int64_t id, enum store_state from, const char *digest,
		   const char *detail)
{
	reconcile_keys k;
	store_intent in = { 0 };

	if (reconcile_keys_of(c->m->ep, c->req, &k) != 0)
		return STORE_ERR_INVALID;
	in.external_id = c->external_id;
	in.request_time = c->ts;
	in.body_sha256 = digest;
	in.amount_value = k.amount_value;
	in.amount_currency = k.amount_currency;
	if (from == STORE_PENDING) { /* the answer that refused the attempt's token */
		in.refused_http = c->http;
		in.refused_response_code = c->response_code;
	}
	c->journal_id = id;
	return store_journal_reissue(c->b->journal->st, id, from, &in, detail, on_reissued, c);
}

static void on_intent(const store_result *res, void *data)
{
	struct call *c = data;
	char digest[STORE_SHA256_HEX + 1];
	int rc;

	if (res->status == 0) {
		c->journal_id = res->id;
		call_store_done(c, true);
		return;
	}
	if (res->status == STORE_ERR_EXISTS && res->n_rows == 1) {
		const store_row *row = &res->rows[0];

		if (store_body_digest(c->body.data, c->body.len, digest) != 0) {
			refuse(c, CODE(INTERNAL), 0, "cannot digest the request");
			return;
		}
		if (row->state != STORE_NOT_DONE) {
			answer_from_row(c, row, digest);
			return;
		}
		/* it certainly did not happen: the caller asks again, send it again */
		rc = reissue(c, row->id, STORE_NOT_DONE, digest,
			     "sent again: the journaled attempt was NOT_DONE");
		if (rc != 0) {
			c->journal_id = 0;
			refuse(c, CODE(UNAVAILABLE), rc, "the journal cannot record the request");
		}
		return;
	}
	refuse(c, CODE(UNAVAILABLE), res->status, "the journal cannot record the request");
}

int journal_attempt(struct call *c)
{
	journal *j = c->b->journal;
	char digest[STORE_SHA256_HEX + 1];
	reconcile_keys k;
	store_intent in = { 0 };
	int rc;

	if (j == NULL || !j->on || c->m == NULL || !c->m->money)
		return 0;
	if (store_body_digest(c->body.data, c->body.len, digest) != 0)
		return STORE_ERR_IO;
	if (c->journal_id != 0)
		/* DOKU refused the token of the attempt: the request did not take effect;
		 * the retry's new X-EXTERNAL-ID is journaled before it leaves */
		rc = reissue(c, c->journal_id, STORE_PENDING, digest,
			     "sent again with a new X-EXTERNAL-ID after DOKU refused the token");
	else {
		rc = reconcile_keys_of(c->m->ep, c->req, &k);
		if (rc != 0)
			return STORE_ERR_INVALID;
		in.method = c->m->name;
		in.profile = c->prof->name;
		in.customer_ref = c->ref;
		in.partner_reference_no = k.partner_reference_no;
		in.original_reference_no = k.original_reference_no;
		in.external_id = c->external_id;
		in.amount_value = k.amount_value;
		in.amount_currency = k.amount_currency;
		in.body_sha256 = digest;
		in.request_time = c->ts;
		rc = store_journal_intent(j->st, &in, on_intent, c);
	}
	return rc == 0 ? 1 : rc;
}

static void arm(journal *j, int64_t due_ms);

static void on_outcome(const store_result *res, void *data)
{
	struct call *c = data;
	journal *j = c->b->journal;

	if (res->status != 0)
		log_msg(LOG_LVL_ERROR, "journal: the outcome of row %" PRId64 " (%s %s) was not recorded: "
			"%s; it is reconciled after a restart", c->journal_id, c->m->name,
			c->partner_ref != NULL ? c->partner_ref : "-", store_strerror(res->status));
	else if (c->outcome == OUT(UNKNOWN) && j != NULL)
		arm(j, 0); /* reconcile it */
	call_store_done(c, false);
}

int journal_outcome(struct call *c)
{
	journal *j = c->b->journal;
	store_outcome o = { 0 };
	uint8_t *packed = NULL;
	size_t n = 0;
	int rc;

	if (j == NULL)
		return STORE_ERR_CLOSED;
	o.state = state_of_outcome(c->outcome);
	o.http_status = c->http;
	o.response_code = c->response_code;
	o.response_message = c->response_message;
	if (c->resp != NULL) {
		n = protobuf_c_message_get_packed_size(c->resp);
		packed = n <= STORE_RESPONSE_MAX ? snap_arena_alloc(&c->arena, n > 0 ? n : 1) : NULL;
		if (packed != NULL) {
			protobuf_c_message_pack(c->resp, packed);
			o.response = packed;
			o.response_len = n;
		}
	}
	if (o.state == STORE_UNKNOWN)
		o.next_attempt_ms = wall_ms() + reconcile_backoff_ms(0, rnd32());
	o.detail = c->status;
	rc = store_journal_outcome(j->st, c->journal_id, &o, on_outcome, c);
	if (rc != 0)
		log_msg(LOG_LVL_ERROR, "journal: the outcome of row %" PRId64 " was not recorded: %s",
			c->journal_id, store_strerror(rc));
	return rc;
}

/* ---- reconciliation --------------------------------------------------------------------- */

static void scan(journal *j);

static void on_timer(uv_timer_t *t)
{
	journal *j = t->data;

	j->timer_due = 0;
	scan(j);
}

/* Scan the journal at due_ms (wall clock; 0: now), unless armed sooner. */
static void arm(journal *j, int64_t due_ms)
{
	int64_t now = wall_ms();

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
static void set_busy(journal *j, int64_t from, int64_t to)
{
	for (unsigned i = 0; i < JOURNAL_RECONCILE_PARALLEL; i++)
		if (j->busy[i] == from) {
			j->busy[i] = to;
			return;
		}
}

static bool is_busy(const journal *j, int64_t id)
{
	for (unsigned i = 0; i < JOURNAL_RECONCILE_PARALLEL; i++)
		if (j->busy[i] == id)
			return true;
	return false;
}

static bool slots_full(const journal *j)
{
	return !is_busy(j, 0);
}

static void query_end(struct query *q)
{
	journal *j = q->j;

	set_busy(j, q->row.id, 0);
	snap_arena_free(&q->arena);
	free(q);
	if (!j->closing)
		scan(j); /* a slot is free: the next due row need not wait for the others */
}

static void on_reconciled(const store_result *res, void *data)
{
	struct query *q = data;

	if (res->status != 0)
		log_msg(LOG_LVL_ERROR, "reconcile: row %" PRId64 " not updated: %s", q->row.id,
			store_strerror(res->status));
	query_end(q);
}

/* Record what the query learnt. */
static void record(struct query *q, enum store_state st, int64_t next_ms, const char *detail)
{
	journal *j = q->j;
	int rc;

	log_msg(st == STORE_UNKNOWN ? LOG_LVL_INFO : LOG_LVL_INFO,
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
	return now + reconcile_backoff_ms(now - q->row.created_ms, rnd32());
}

static void on_query_done(struct call *c)
{
	struct query *q = c->internal_data;
	char detail[RECONCILE_DETAIL_MAX + 1];
	reconcile_answer a = { c->http, c->response_code[0] != '\0' ? c->response_code : NULL, c->resp };
	int64_t now = wall_ms(), next;
	enum store_state st;
	snap_code rc;

	if (c->http == 0 && q->j->b->draining) {
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
	if (st == STORE_UNKNOWN && c->http == 0 && c->code == CODE(FAILED_PRECONDITION))
		textf(detail, sizeof(detail), "no customer session \"%s\" in profile %s to ask %s "
			 "with: stays UNKNOWN until one is opened", q->row.customer_ref, q->row.profile,
			 c->m->name);
	if (st == STORE_UNKNOWN && a.response_code != NULL &&
	    snap_code_parse(a.response_code, strlen(a.response_code), &rc) == 0 && rc.http == 404 &&
	    q->row.created_ms + RECONCILE_SETTLE_MS + SETTLE_SLACK_MS < next)
		/* "not found" too soon to trust: ask again once it is not */
		next = q->row.created_ms + RECONCILE_SETTLE_MS + SETTLE_SLACK_MS;
	record(q, st, next, detail);
}

static void send_query(struct query *q)
{
	journal *j = q->j;
	struct bridge *b = j->b;
	const snap_endpoint *ep = NULL;
	ProtobufCMessage *msg = NULL;
	const profile *p;
	const method *m;
	struct call *c;
	int rc;

	rc = reconcile_request(&q->row, q->have_orig ? &q->orig : NULL, &q->arena, &ep, &msg);
	if (rc != 0) {
		record(q, STORE_UNKNOWN, next_attempt(q, wall_ms()),
		       "cannot build the status request from the row");
		return;
	}
	m = methods_at((unsigned)methods_index(ep->name));
	p = config_profile(b->cfg, q->row.profile);
	if (m == NULL || p == NULL) {
		record(q, STORE_UNKNOWN, next_attempt(q, wall_ms()),
		       p == NULL ? "its profile is not configured" : "no status method");
		return;
	}
	c = call_internal_new(b, on_query_done, q);
	if (c == NULL) {
		record(q, STORE_UNKNOWN, next_attempt(q, wall_ms()), "out of memory");
		return;
	}
	call_internal_start(c, m, p, q->row.customer_ref, msg, JOURNAL_RECONCILE_TIMEOUT_MS);
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

static void start_query(journal *j, const store_row *row)
{
	struct query *q = calloc(1, sizeof(*q));
	store_key k = { 0 };

	if (q == NULL)
		return;
	q->j = j;
	q->row = *row;
	q->row.response = NULL;
	q->row.response_len = 0;
	snap_arena_init(&q->arena, QUERY_ARENA_MAX);
	set_busy(j, 0, row->id);
	if (row->original_reference_no[0] != '\0' && reconcile_needs_original(row->method)) {
		/* Cancel: the purchase's row gives its transactionDate */
		k.profile = row->profile;
		k.method = "Purchase";
		k.partner_reference_no = row->original_reference_no;
		if (store_journal_get(j->st, &k, on_original, q) == 0)
			return;
	}
	send_query(q);
}

static void on_due(const store_result *res, void *data)
{
	journal *j = data;
	int64_t now = wall_ms();

	j->scanning = false;
	if (j->closing)
		return;
	if (res->status != 0) {
		log_msg(LOG_LVL_ERROR, "reconcile: the journal cannot be read: %s",
			store_strerror(res->status));
		arm(j, now + JOURNAL_RETRY_MS);
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
}

static void scan(journal *j)
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
	rc = store_journal_due(j->st, JOURNAL_RECONCILE_BATCH, on_due, j);
	if (rc != 0) {
		j->scanning = false;
		log_msg(LOG_LVL_ERROR, "reconcile: the journal cannot be read: %s", store_strerror(rc));
		arm(j, wall_ms() + JOURNAL_RETRY_MS);
	}
}

/* ---- retention -------------------------------------------------------------------------- */

/* The pass's one log line. */
static void prune_end(journal *j, int err)
{
	char before[SNAP_TIMESTAMP_LEN + 1] = "?";
	time_t t = (time_t)(j->prune_before / 1000);
	struct tm tm;

	j->pruning = false;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(before, sizeof(before), "%Y-%m-%dT%H:%M:%SZ", &tm);
	log_msg(err != 0 ? LOG_LVL_ERROR : LOG_LVL_INFO,
		"journal: retention %u days: %" PRIu64 " settled rows last updated before %s "
		"deleted (%u batches of at most %u, %.0f ms)%s%s", j->prune_days, j->pruned, before,
		j->prune_batches, JOURNAL_PRUNE_BATCH, (double)(uv_hrtime() - j->prune_t0) / 1e6,
		err != 0 ? "; stopped: " : "", err != 0 ? store_strerror(err) : "");
}

static void on_pruned(const store_result *res, void *data)
{
	journal *j = data;
	int rc;

	j->prune_batches++;
	j->pruned += res->n_pruned;
	if (res->status != 0 || res->n_pruned < JOURNAL_PRUNE_BATCH || j->closing ||
	    j->b->draining) {
		prune_end(j, res->status);
		return;
	}
	/* more may be due: the next batch, queued after what came meanwhile */
	rc = store_journal_prune(j->st, j->prune_before, JOURNAL_PRUNE_BATCH, on_pruned, j);
	if (rc != 0)
		prune_end(j, rc);
}

/* One retention pass, with the configuration current now (SIGHUP applies at the next). */
static void on_prune_timer(uv_timer_t *t)
{
	journal *j = t->data;
	unsigned days = j->b->cfg->journal_retention_days;
	int rc;

	if (j->closing || j->b->draining || j->pruning || days == 0)
		return;
	j->pruning = true;
	j->prune_days = days;
	j->prune_before = wall_ms() - (int64_t)days * DAY_MS;
	j->prune_t0 = uv_hrtime();
	j->pruned = 0;
	j->prune_batches = 0;
	rc = store_journal_prune(j->st, j->prune_before, JOURNAL_PRUNE_BATCH, on_pruned, j);
	if (rc != 0)
		prune_end(j, rc);
}

void journal_start(struct bridge *b)
{
	journal *j = b->journal;

	if (j == NULL)
		return;
	j->started = true;
	scan(j);
	uv_timer_start(&j->prune_timer, on_prune_timer, 0, JOURNAL_PRUNE_EVERY_MS);
}

/* ---- GetOperation, ListOperations ------------------------------------------------------- */

static char *arena_str(struct call *c, const char *s)
{
	return snap_arena_strndup(&c->arena, s, strlen(s));
}

static char *arena_time(struct call *c, int64_t ms)
{
	char *t = snap_arena_alloc(&c->arena, SNAP_TIMESTAMP_LEN + 1);

	if (t == NULL || ms <= 0 || snap_time_format((time_t)(ms / 1000), t) != 0)
		return (char *)"";
	return t;
}

/* An Operation of row, in the call's arena (NULL: out of memory). */
static Doku__Wallet__V1__Operation *operation_of(struct call *c, const store_row *row)
{
	Doku__Wallet__V1__Operation *o = snap_arena_alloc(&c->arena, sizeof(*o));
	Doku__Wallet__V1__Amount *a = snap_arena_alloc(&c->arena, sizeof(*a));

	if (o == NULL || a == NULL)
		return NULL;
	doku__wallet__v1__operation__init(o);
	doku__wallet__v1__amount__init(a);
	o->method = arena_str(c, row->method);
	o->profile = arena_str(c, row->profile);
	o->customer_ref = arena_str(c, row->customer_ref);
	o->partner_reference_no = arena_str(c, row->partner_reference_no);
	o->external_id = arena_str(c, row->external_id);
	a->value = arena_str(c, row->amount_value);
	a->currency = arena_str(c, row->amount_currency);
	if (row->amount_value[0] != '\0')
		o->amount = a;
	o->body_sha256 = arena_str(c, row->body_sha256);
	o->state = (Doku__Wallet__V1__OperationState)row->state; /* same numbers (proto, store.h) */
	o->http_status = row->http_status;
	o->response_code = arena_str(c, row->response_code);
	o->response_message = arena_str(c, row->response_message);
	o->created_at = arena_time(c, row->created_ms);
	o->updated_at = arena_time(c, row->updated_ms);
	o->reconcile_attempts = row->attempts;
	o->detail = arena_str(c, row->detail);
	if (row->response != NULL && row->response_len > 0) {
		uint8_t *p = snap_arena_alloc(&c->arena, row->response_len);

		if (p == NULL)
			return NULL;
		memcpy(p, row->response, row->response_len);
		o->response.data = p;
		o->response.len = row->response_len;
	}
	if (o->method == NULL || o->profile == NULL || o->customer_ref == NULL ||
	    o->partner_reference_no == NULL || o->external_id == NULL || a->value == NULL ||
	    a->currency == NULL || o->body_sha256 == NULL || o->response_code == NULL ||
	    o->response_message == NULL || o->detail == NULL)
		return NULL;
	return o;
}

_Static_assert((int)STORE_PENDING == (int)OPSTATE(PENDING) && (int)STORE_DONE == (int)OPSTATE(DONE) &&
		       (int)STORE_NOT_DONE == (int)OPSTATE(NOT_DONE) &&
		       (int)STORE_UNKNOWN == (int)OPSTATE(UNKNOWN),
	       "OperationState and store_state agree");

/* The journal cannot serve c: a code with the status set. */
static int unavailable(struct call *c, int err)
{
	journal *j = c->b->journal;

	if (j != NULL && !j->on) {
		textf(c->status, sizeof(c->status), "the journal is off ([bridge] journal = off)");
		return CODE(FAILED_PRECONDITION);
	}
	textf(c->status, sizeof(c->status), "the journal cannot be read: %s",
		 store_strerror(err != 0 ? err : STORE_ERR_CLOSED));
	return CODE(UNAVAILABLE);
}

static void on_get(const store_result *res, void *data)
{
	struct call *c = data;
	Doku__Wallet__V1__GetOperationResponse *r;

	if (res->status == STORE_ERR_NOT_FOUND) {
		c->code = CODE(NOT_FOUND);
		textf(c->status, sizeof(c->status), "no journaled operation with that %s in profile %s",
			 c->partner_ref != NULL ? "partner reference" : "X-EXTERNAL-ID", c->prof->name);
	} else if (res->status != 0 || res->n_rows != 1) {
		c->code = unavailable(c, res->status);
	} else {
		r = snap_arena_alloc(&c->arena, sizeof(*r));
		if (r != NULL) {
			doku__wallet__v1__get_operation_response__init(r);
			r->operation = operation_of(c, &res->rows[0]);
		}
		if (r == NULL || r->operation == NULL) {
			c->code = CODE(RESOURCE_EXHAUSTED);
			textf(c->status, sizeof(c->status), "out of memory");
		} else {
			c->code = CODE(OK);
			c->resp = &r->base;
		}
	}
	call_store_done(c, false);
}

int journal_get_operation(struct call *c)
{
	const Doku__Wallet__V1__GetOperationRequest *req = (const void *)c->req;
	journal *j = c->b->journal;
	store_key k = { 0 };
	int rc;

	if (j == NULL || !j->on)
		return unavailable(c, 0);
	k.profile = c->prof->name;
	if (req->partner_reference_no != NULL && req->partner_reference_no[0] != '\0') {
		k.partner_reference_no = req->partner_reference_no;
		k.method = req->method != NULL && req->method[0] != '\0' ? req->method : NULL;
	} else if (req->external_id != NULL && req->external_id[0] != '\0') {
		k.external_id = req->external_id;
	} else {
		textf(c->status, sizeof(c->status),
			 "missing required field: partnerReferenceNo or externalId");
		return CODE(INVALID_ARGUMENT);
	}
	if ((k.partner_reference_no != NULL && strlen(k.partner_reference_no) > STORE_PARTNER_REF_MAX) ||
	    (k.external_id != NULL && strlen(k.external_id) > STORE_EXTERNAL_ID_MAX) ||
	    (k.method != NULL && strlen(k.method) > STORE_METHOD_MAX)) {
		textf(c->status, sizeof(c->status), "invalid field: %s",
			 k.external_id != NULL ? "externalId" : k.method != NULL && strlen(k.method) > STORE_METHOD_MAX ? "method" : "partnerReferenceNo");
		return CODE(INVALID_ARGUMENT);
	}
	rc = store_journal_get(j->st, &k, on_get, c);
	return rc == 0 ? 0 : unavailable(c, rc);
}

static void on_list(const store_result *res, void *data)
{
	struct call *c = data;
	Doku__Wallet__V1__ListOperationsResponse *r = snap_arena_alloc(&c->arena, sizeof(*r));
	Doku__Wallet__V1__Operation **ops = NULL;

	if (res->status != 0) {
		c->code = unavailable(c, res->status);
		call_store_done(c, false);
		return;
	}
	if (r != NULL)
		ops = snap_arena_alloc(&c->arena, sizeof(*ops) * (res->n_rows + 1));
	if (r == NULL || ops == NULL)
		goto oom;
	doku__wallet__v1__list_operations_response__init(r);
	r->operations = ops;
	for (size_t i = 0; i < res->n_rows; i++) {
		ops[i] = operation_of(c, &res->rows[i]);
		if (ops[i] == NULL)
			goto oom;
		r->n_operations++;
	}
	if (res->next_before_id != 0) {
		char tok[PAGE_TOKEN_MAX];

		snprintf(tok, sizeof(tok), "%" PRId64, res->next_before_id);
		r->next_page_token = arena_str(c, tok);
		if (r->next_page_token == NULL)
			goto oom;
	}
	c->code = CODE(OK);
	c->resp = &r->base;
	call_store_done(c, false);
	return;
oom:
	c->code = CODE(RESOURCE_EXHAUSTED);
	textf(c->status, sizeof(c->status), "out of memory");
	call_store_done(c, false);
}

/* An ISO-8601 time of field name into *ms; "" leaves it 0. */
static int time_field(struct call *c, const char *v, const char *name, int64_t *ms)
{
	time_t t;

	if (v == NULL || v[0] == '\0')
		return 0;
	if (snap_time_parse(v, strlen(v), &t) != 0) {
		textf(c->status, sizeof(c->status), "invalid field: %s (expected ISO-8601)", name);
		return -1;
	}
	*ms = (int64_t)t * 1000;
	return 0;
}

int journal_list_operations(struct call *c)
{
	const Doku__Wallet__V1__ListOperationsRequest *req = (const void *)c->req;
	journal *j = c->b->journal;
	store_filter f = { 0 };
	int rc;

	if (j == NULL || !j->on)
		return unavailable(c, 0);
	f.profile = c->prof->name;
	if (req->customer_ref != NULL && req->customer_ref[0] != '\0') {
		if (!tokens_ref_valid(req->customer_ref)) {
			textf(c->status, sizeof(c->status), "invalid field: customerRef");
			return CODE(INVALID_ARGUMENT);
		}
		f.customer_ref = req->customer_ref;
	}
	if ((int)req->state < 0 || (int)req->state > (int)OPSTATE(UNKNOWN)) {
		textf(c->status, sizeof(c->status), "invalid field: state");
		return CODE(INVALID_ARGUMENT);
	}
	f.state = (enum store_state)req->state;
	if (time_field(c, req->from_time, "fromTime", &f.from_ms) != 0 ||
	    time_field(c, req->to_time, "toTime", &f.to_ms) != 0)
		return CODE(INVALID_ARGUMENT);
	if (req->page_size > JOURNAL_LIST_MAX) {
		textf(c->status, sizeof(c->status), "invalid field: pageSize (at most %u)",
			 JOURNAL_LIST_MAX);
		return CODE(INVALID_ARGUMENT);
	}
	/* a page holds at most STORE_LIST_MAX rows; next_page_token gives the rest */
	f.limit = req->page_size > STORE_LIST_MAX ? STORE_LIST_MAX : req->page_size;
	if (req->page_token != NULL && req->page_token[0] != '\0') {
		char *end;
		long long id;

		errno = 0;
		id = strtoll(req->page_token, &end, 10);
		if (errno != 0 || *end != '\0' || id <= 0) {
			textf(c->status, sizeof(c->status), "invalid field: pageToken");
			return CODE(INVALID_ARGUMENT);
		}
		f.before_id = id;
	}
	rc = store_journal_list(j->st, &f, on_list, c);
	return rc == 0 ? 0 : unavailable(c, rc);
}
