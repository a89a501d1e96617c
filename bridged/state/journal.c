/* The state database at work: the key, the store, the journal's records, retention. */
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

#include "clock.h"
#include "list.h"
#include "log.h"
#include "text.h"
#include "snap_time.h"

#define PATH_MAX_BYTES 4096
#define DAY_MS (24 * 60 * 60 * 1000LL)

struct journal {
	store *st;
	sealed_key *key;
	bool on;                 /* [bridge] journal */
	bool closing, quiet;
	unsigned closes;         /* journal_close: timer and store closes not yet done */
	/* retention (journal_retention_days) */
	uv_timer_t prune_timer;
	unsigned days;           /* of the next pass; 0: none */
	bool pruning;            /* a pass is under way */
	int64_t prune_before;    /* the pass deletes settled rows updated before this */
	uint64_t prune_t0;       /* uv_hrtime at the start of the pass */
	uint64_t pruned;         /* rows the pass deleted so far */
	unsigned prune_days, prune_batches;
	char holder[STORE_HOLDER_MAX + 1]; /* this daemon's name in a fleet's database */
	/* outcomes the database could not take, written again (struct retry) */
	uv_timer_t retry_timer;
	struct list_node retries;
	unsigned retrying;           /* being written now */
	unsigned retry_backoff_ms;
};

/* One attempt's store request. */
struct attempt {
	journal *j;
	journal_verdict_fn cb;
	void *data;
	journal_attempt_rec a;   /* pointers valid until cb (the caller's); a.keys: &keys */
	reconcile_keys keys;     /* a copy: the caller's may be on its stack */
	char digest[STORE_SHA256_HEX + 1];
};

/* One outcome's store request. */
struct retry;

struct outcome_req {
	void (*done)(int status, void *data);
	void *data;
	journal *j;
	struct retry *copy;          /* the outcome, kept for a retry; NULL: none */
};

/* ---- the key --------------------------------------------------------------------------- */

/* <state_dir>/state.key: read it, or make it (32 random bytes as 64 hex digits, 0600). */
static int key_default(const char *dir, sealed_key **out, char err[JOURNAL_ERR_MAX])
{
	char path[PATH_MAX_BYTES], why[SEALED_ERR_MAX], hex[2 * SEALED_KEY_LEN + 2];
	unsigned char raw[SEALED_KEY_LEN];
	int fd, n, rc = -1;

	n = snprintf(path, sizeof(path), "%s/%s", dir, JOURNAL_KEY_NAME);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		text_printf(err, JOURNAL_ERR_MAX, "state_dir %s: path too long", dir);
		return -1;
	}
	if (access(path, F_OK) == 0) {
		if (sealed_key_load_file(path, out, why) != 0) {
			text_printf(err, JOURNAL_ERR_MAX, "state key %s: %s", path, why);
			return -1;
		}
		return 0;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		text_printf(err, JOURNAL_ERR_MAX, "state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		text_printf(err, JOURNAL_ERR_MAX, "state key: no random bytes: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < SEALED_KEY_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	hex[2 * SEALED_KEY_LEN] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		text_printf(err, JOURNAL_ERR_MAX, "state key %s: cannot create: %s", path, strerror(errno));
		goto out;
	}
	if (write(fd, hex, 2 * SEALED_KEY_LEN + 1) != 2 * SEALED_KEY_LEN + 1 || fsync(fd) != 0) {
		text_printf(err, JOURNAL_ERR_MAX, "state key %s: cannot write: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		goto out;
	}
	close(fd);
	if (sealed_key_new(raw, out) != 0) {
		text_printf(err, JOURNAL_ERR_MAX, "state key: cannot set it up");
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

/* ---- open, close ----------------------------------------------------------------------- */

void journal_where(const config *cfg, const char *holder, store_where *w)
{
	memset(w, 0, sizeof(*w));
	w->kind = cfg->state_backend == CONFIG_STATE_POSTGRES ? STORE_POSTGRES : STORE_SQLITE;
	w->state_dir = cfg->state_dir;
	w->conninfo = cfg->state_postgres;
	w->password = cfg->state_postgres_password != NULL ?
		(const char *)cfg->state_postgres_password->data : NULL;
	w->holder = holder;
}

int journal_key(const config *cfg, bool must_exist, sealed_key **out, char err[JOURNAL_ERR_MAX])
{
	char kwhy[SEALED_ERR_MAX];
	char path[PATH_MAX_BYTES];

	*out = NULL;
	if (cfg->state_key_file == NULL && !must_exist)
		return key_default(cfg->state_dir, out, err);
	if (cfg->state_key_file == NULL)
		text_printf(path, sizeof(path), "%s/%s", cfg->state_dir, JOURNAL_KEY_NAME);
	else
		text_printf(path, sizeof(path), "%s", cfg->state_key_file);
	if (sealed_key_load_file(path, out, kwhy) != 0) {
		text_printf(err, JOURNAL_ERR_MAX, "state key %s: %s", path, kwhy);
		return -1;
	}
	return 0;
}

const char *journal_holder(const journal *j)
{
	return j->holder;
}

int journal_open(uv_loop_t *loop, const config *cfg, journal **out, char err[JOURNAL_ERR_MAX])
{
	char why[STORE_ERR_MAX];
	journal *j = calloc(1, sizeof(*j));
	store_where w;
	int rc;

	*out = NULL;
	err[0] = '\0';
	if (j == NULL) {
		text_printf(err, JOURNAL_ERR_MAX, "out of memory");
		return -1;
	}
	j->on = cfg->journal;
	if (journal_key(cfg, false, &j->key, err) != 0) {
		free(j);
		return -1;
	}
	store_holder_make(j->holder);
	journal_where(cfg, j->holder, &w);
	rc = store_open_at(loop, &w, j->key, &j->st, why);
	if (rc != 0) {
		text_printf(err, JOURNAL_ERR_MAX, "%s", why);
		sealed_key_free(j->key);
		free(j);
		return -1;
	}
	uv_timer_init(loop, &j->prune_timer);
	j->prune_timer.data = j;
	uv_timer_init(loop, &j->retry_timer);
	j->retry_timer.data = j;
	list_init(&j->retries);
	*out = j;
	return 0;
}

/* The journal is freed only when its timer and its store are closed (in any order). */
static void closed_one(journal *j)
{
	if (--j->closes > 0)
		return;
	sealed_key_free(j->key);
	free(j);
}

static void on_timer_closed(uv_handle_t *h)
{
	closed_one(h->data);
}

static void on_store_closed(void *data)
{
	closed_one(data);
}

static void retry_drop_all(journal *j);

void journal_close(journal *j)
{
	if (j == NULL)
		return;
	j->closing = true;
	j->closes = 3;
	retry_drop_all(j);
	uv_close((uv_handle_t *)&j->prune_timer, on_timer_closed);
	uv_close((uv_handle_t *)&j->retry_timer, on_timer_closed);
	store_close(j->st, on_store_closed, j);
}

store *journal_store(const journal *j)
{
	return j->st;
}

bool journal_on(const journal *j)
{
	return j->on;
}

void journal_quiesce(journal *j)
{
	j->quiet = true;
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
	    j->quiet) {
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
	unsigned days = j->days;
	int rc;

	if (j->closing || j->quiet || j->pruning || days == 0)
		return;
	j->pruning = true;
	j->prune_days = days;
	j->prune_before = clock_wall_ms() - (int64_t)days * DAY_MS;
	j->prune_t0 = uv_hrtime();
	j->pruned = 0;
	j->prune_batches = 0;
	rc = store_journal_prune(j->st, j->prune_before, JOURNAL_PRUNE_BATCH, on_pruned, j);
	if (rc != 0)
		prune_end(j, rc);
}

void journal_retention(journal *j, unsigned days)
{
	bool first = !uv_is_active((uv_handle_t *)&j->prune_timer);

	j->days = days;
	if (first)
		uv_timer_start(&j->prune_timer, on_prune_timer, 0, JOURNAL_PRUNE_EVERY_MS);
}

/* ---- attempts and outcomes ------------------------------------------------------------- */

static void verdict(struct attempt *at, enum journal_verdict_kind kind, int64_t id, int err,
		    const store_row *row)
{
	journal_verdict v = { kind, id, err, row };

	at->cb(&v, at->data);
	free(at);
}

static void on_reissued(const store_result *res, void *data)
{
	struct attempt *at = data;

	if (res->status == STORE_ERR_STATE)
		verdict(at, JOURNAL_RACING, 0, 0, NULL);
	else if (res->status != 0)
		verdict(at, JOURNAL_FAILED, 0, res->status, NULL);
	else
		verdict(at, JOURNAL_SEND, at->a.id, 0, NULL);
}

/* A new attempt of row id, which is in state from. */
static int reissue(struct attempt *at, int64_t id, enum store_state from, const char *detail)
{
	store_intent in = { 0 };

	in.external_id = at->a.external_id;
	in.request_time = at->a.request_time;
	in.body_sha256 = at->digest;
	in.amount_value = at->a.keys->amount_value;
	in.amount_currency = at->a.keys->amount_currency;
	if (from == STORE_PENDING) { /* the answer that refused the attempt's token */
		in.refused_http = at->a.refused_http;
		in.refused_response_code = at->a.refused_response_code;
	}
	at->a.id = id;
	return store_journal_reissue(at->j->st, id, from, &in, detail, on_reissued, at);
}

static void on_intent(const store_result *res, void *data)
{
	struct attempt *at = data;
	const store_row *row;
	int rc;

	if (res->status == 0) {
		verdict(at, JOURNAL_SEND, res->id, 0, NULL);
		return;
	}
	if (res->status != STORE_ERR_EXISTS || res->n_rows != 1) {
		verdict(at, JOURNAL_FAILED, 0, res->status, NULL);
		return;
	}
	row = &res->rows[0];
	if (strcmp(row->body_sha256, at->digest) != 0) {
		verdict(at, JOURNAL_CONFLICT, 0, 0, row);
		return;
	}
	if (row->state != STORE_NOT_DONE) {
		verdict(at, JOURNAL_JOURNALED, row->id, 0, row);
		return;
	}
	/* it certainly did not happen: the caller asks again, send it again */
	rc = reissue(at, row->id, STORE_NOT_DONE, "sent again: the journaled attempt was NOT_DONE");
	if (rc != 0)
		verdict(at, JOURNAL_FAILED, 0, rc, NULL);
}

int journal_attempt(journal *j, const journal_attempt_rec *a, journal_verdict_fn cb, void *data)
{
	struct attempt *at;
	store_intent in = { 0 };
	int rc;

	if (j->closing)
		return STORE_ERR_CLOSED;
	at = calloc(1, sizeof(*at));
	if (at == NULL)
		return STORE_ERR_NOMEM;
	at->j = j;
	at->cb = cb;
	at->data = data;
	at->a = *a;
	if (a->keys != NULL) {
		at->keys = *a->keys;
		at->a.keys = &at->keys;
	}
	if (store_body_digest(a->body, a->body_len, at->digest) != 0) {
		free(at);
		return STORE_ERR_IO;
	}
	if (a->id != 0) {
		/* DOKU refused the token of the attempt: the request did not take effect;
		 * the retry's new X-EXTERNAL-ID is journaled before it leaves */
		rc = reissue(at, a->id, STORE_PENDING,
			     "sent again with a new X-EXTERNAL-ID after DOKU refused the token");
	} else {
		in.method = a->method;
		in.profile = a->profile;
		in.customer_ref = a->customer_ref;
		in.partner_reference_no = a->keys->partner_reference_no;
		in.original_reference_no = a->keys->original_reference_no;
		in.external_id = a->external_id;
		in.amount_value = a->keys->amount_value;
		in.amount_currency = a->keys->amount_currency;
		in.body_sha256 = at->digest;
		in.request_time = a->request_time;
		rc = store_journal_intent(j->st, &in, on_intent, at);
	}
	if (rc != 0)
		free(at);
	return rc;
}

/* ---- outcomes the database could not take: written again until it can ---- */

/* An outcome whose write failed for the database's sake (IO, BUSY, NOMEM):
 * a copy, written again with backoff until it lands or the row is no longer
 * PENDING. When the journal closes first, the row stays PENDING: the next
 * start (or, in a fleet, a live daemon once this one's beat lapsed) makes it
 * UNKNOWN and reconciles it. Either way nothing journaled is lost. */
struct retry {
	struct list_node node;       /* in journal.retries while waiting */
	journal *j;
	int64_t id;
	unsigned attempts;
	store_outcome o;             /* its strings and response point into mem */
	char mem[];
};

static char *retry_str(char **at, const char *src)
{
	size_t n;
	char *dst = *at;

	if (src == NULL)
		return NULL;
	n = strlen(src) + 1;
	memcpy(dst, src, n);
	*at += n;
	return dst;
}

/* A copy of o for row id; NULL when out of memory. */
static struct retry *retry_new(journal *j, int64_t id, const store_outcome *o)
{
	size_t n = sizeof(struct retry) + o->response_len;
	struct retry *r;
	char *at;

	n += o->response_code != NULL ? strlen(o->response_code) + 1 : 0;
	n += o->response_message != NULL ? strlen(o->response_message) + 1 : 0;
	n += o->detail != NULL ? strlen(o->detail) + 1 : 0;
	r = calloc(1, n);
	if (r == NULL)
		return NULL;
	list_node_init(&r->node);
	r->j = j;
	r->id = id;
	r->o = *o;
	at = r->mem;
	r->o.response = NULL;
	if (o->response != NULL && o->response_len > 0) {
		memcpy(at, o->response, o->response_len);
		r->o.response = at;
		at += o->response_len;
	}
	r->o.response_code = retry_str(&at, o->response_code);
	r->o.response_message = retry_str(&at, o->response_message);
	r->o.detail = retry_str(&at, o->detail);
	return r;
}

static bool retry_worth(int status)
{
	return status == STORE_ERR_IO || status == STORE_ERR_BUSY || status == STORE_ERR_NOMEM;
}

static void on_retry_timer(uv_timer_t *t);

static void retry_arm(journal *j)
{
	unsigned d = j->retry_backoff_ms;

	if (j->closing || j->retrying > 0 || list_empty(&j->retries) ||
	    uv_is_active((uv_handle_t *)&j->retry_timer))
		return;
	uv_timer_start(&j->retry_timer, on_retry_timer, d == 0 ? JOURNAL_RETRY_MIN_MS : d, 0);
}

/* Keep r to write again. */
static void retry_keep(journal *j, struct retry *r)
{
	if (j->closing) {
		log_msg(LOG_LVL_ERROR, "journal: the outcome of row %" PRId64 " is left PENDING: it is "
			"reconciled once this daemon is gone", r->id);
		free(r);
		return;
	}
	if (r->attempts == 0)
		log_msg(LOG_LVL_WARNING, "journal: the outcome of row %" PRId64 " was not recorded; it "
			"is written again once the database takes it", r->id);
	list_add_tail(&j->retries, &r->node);
	retry_arm(j);
}

static void on_retry_written(const store_result *res, void *data)
{
	struct retry *r = data;
	journal *j = r->j;

	j->retrying--;
	r->attempts++;
	if (retry_worth(res->status)) {
		j->retry_backoff_ms = j->retry_backoff_ms == 0 ? JOURNAL_RETRY_MIN_MS :
			j->retry_backoff_ms >= JOURNAL_RETRY_MAX_MS / 2 ? JOURNAL_RETRY_MAX_MS :
			j->retry_backoff_ms * 2;
		retry_keep(j, r);
		return;
	}
	if (res->status == 0)
		log_msg(LOG_LVL_INFO, "journal: the outcome of row %" PRId64 " is recorded now (attempt "
			"%u)", r->id, r->attempts + 1);
	else
		log_msg(LOG_LVL_ERROR, "journal: the outcome of row %" PRId64 " cannot be recorded: %s",
			r->id, store_strerror(res->status));
	j->retry_backoff_ms = 0;
	free(r);
	retry_arm(j);
}

static void on_retry_timer(uv_timer_t *t)
{
	journal *j = t->data;

	while (!list_empty(&j->retries) && !j->closing) {
		struct retry *r = list_entry(j->retries.next, struct retry, node);

		list_del(&r->node);
		if (store_journal_outcome(j->st, r->id, &r->o, on_retry_written, r) != 0) {
			list_add_tail(&j->retries, &r->node);
			break;
		}
		j->retrying++;
	}
	retry_arm(j);
}

/* The journal closes: the outcomes still waiting stay PENDING (logged). */
static void retry_drop_all(journal *j)
{
	while (!list_empty(&j->retries)) {
		struct retry *r = list_entry(j->retries.next, struct retry, node);

		list_del(&r->node);
		log_msg(LOG_LVL_ERROR, "journal: the outcome of row %" PRId64 " is left PENDING: it is "
			"reconciled once this daemon is gone", r->id);
		free(r);
	}
}

static void on_outcome(const store_result *res, void *data)
{
	struct outcome_req *o = data;

	if (retry_worth(res->status) && o->copy != NULL)
		retry_keep(o->j, o->copy);
	else
		free(o->copy);
	o->done(res->status, o->data);
	free(o);
}

int journal_outcome(journal *j, int64_t id, const store_outcome *o,
		    void (*done)(int status, void *data), void *data)
{
	struct outcome_req *req;
	int rc;

	if (j == NULL || j->closing)
		return STORE_ERR_CLOSED;
	req = malloc(sizeof(*req));
	if (req == NULL)
		return STORE_ERR_NOMEM;
	req->done = done;
	req->data = data;
	req->j = j;
	req->copy = retry_new(j, id, o);
	rc = store_journal_outcome(j->st, id, o, on_outcome, req);
	if (rc != 0) {
		log_msg(LOG_LVL_ERROR, "journal: the outcome of row %" PRId64 " was not recorded: %s", id,
			store_strerror(rc));
		if (retry_worth(rc) && req->copy != NULL)
			retry_keep(j, req->copy);
		else
			free(req->copy);
		free(req);
	}
	return rc;
}
