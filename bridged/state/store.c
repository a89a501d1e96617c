/* The durable state's generic part: the public API, the requests and their
 * queue, the worker thread that runs them through a backend
 * (store_backend.h; store_sqlite.c, store_postgres.c), the sealing of session
 * and B2B tokens, the fleet's beat, and the completions handed back to the
 * loop. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "clock.h"
#include "store.h"
#include "store_backend.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_PATH_MAX 4096
#define KEY_CHECK_TEXT "doku-bridge state key check v1"
#define KEY_CHECK_AD "doku-bridge key check"
#define B2B_AD "b2b"
#define HOLDER_HOST_MAX 60 /* bytes of the host name in a holder name */

/* ---- the store and its requests ---- */

/* One session: its name and its plaintext tokens (malloc'd, wiped on free). */
struct sess_slot {
	store_session_key key;
	int64_t gen;
	char *access, *refresh;
	size_t access_len, refresh_len;
	int64_t access_expiry, refresh_expiry;
};

/* A request: what the backend sees (b), and what only this file handles. */
struct req {
	store_req b;
	struct req *next;
	store_cb cb;
	void *data;
	struct sess_slot sess_in;   /* session put, refreshed: the plaintext tokens */
	char *b2b_in;               /* b2b publish: the plaintext token (wiped on free) */
	size_t b2b_in_len;
	char *b2b_plain;            /* b2b_*: b.b2b.token opened (wiped on free) */
	store_b2b b2b_pub;          /* the public view of b.b2b */
	struct sess_slot *slots;    /* session get / list: b.sealed opened */
	size_t n_slots;
	store_session *sessions;    /* the public view of slots */
	store_session_key *bad;     /* the rows of b.sealed that did not open */
	bool again;                 /* run once more after a deadlock (STORE_BACKEND_AGAIN) */
};

struct store {
	uv_loop_t *loop;
	uv_async_t async;
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cond;
	const store_backend_ops *ops;
	store_backend *be;            /* the worker's once started */
	sealed_key *key;              /* borrowed; NULL: no sessions */
	int lock_fd;
	unsigned beat_ms;             /* the worker calls ops->beat this often; 0: never */
	store_counters cnt;           /* written by the worker, read by the loop */
	/* guarded by mu */
	struct req *queue_head, *queue_tail;
	size_t queued;
	struct req *done_head, *done_tail;
	bool closing;
	bool worker_done;             /* the backend is closed; the worker returns */
	/* the loop's thread only */
	bool joined;
	store_closed_cb closed_cb;
	void *closed_data;
};

static const char *const state_names[] = {
	[STORE_STATE_ANY] = "ANY", [STORE_PENDING] = "PENDING", [STORE_DONE] = "DONE",
	[STORE_NOT_DONE] = "NOT_DONE", [STORE_UNKNOWN] = "UNKNOWN",
};

const char *store_state_name(enum store_state s)
{
	if ((unsigned)s >= sizeof(state_names) / sizeof(state_names[0]))
		return "?";
	return state_names[s];
}

const char *store_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case STORE_ERR_NOMEM: return "out of memory";
	case STORE_ERR_INVALID: return "invalid argument";
	case STORE_ERR_IO: return "database I/O error";
	case STORE_ERR_CORRUPT: return "database corrupt";
	case STORE_ERR_VERSION: return "not a doku-bridge database of a known schema version";
	case STORE_ERR_KEY: return "the sealing key does not match the database";
	case STORE_ERR_LOCKED: return "state directory locked by another process";
	case STORE_ERR_NOT_FOUND: return "not found";
	case STORE_ERR_EXISTS: return "already journaled";
	case STORE_ERR_DUPLICATE: return "X-EXTERNAL-ID already journaled";
	case STORE_ERR_STATE: return "not allowed in the row's state";
	case STORE_ERR_SEALED: return "sealed token does not open: wrong key or tampered row";
	case STORE_ERR_NO_KEY: return "no sealing key: sessions are not stored";
	case STORE_ERR_CLOSED: return "store closing";
	case STORE_ERR_BUSY: return "too many requests queued";
	case STORE_ERR_TOO_BIG: return "too big";
	default: return doku_strerror(err); /* not the store's: the shared text */
	}
}

/* Copy src (NULL: "") into dst[cap]; INVALID when it does not fit, or is
 * empty and required. */
static int copy_in(char *dst, size_t cap, const char *src, bool required)
{
	size_t n;

	if (src == NULL)
		src = "";
	n = strnlen(src, cap);
	if (n >= cap || (required && n == 0))
		return STORE_ERR_INVALID;
	memcpy(dst, src, n + 1);
	return 0;
}

/* Copy src (NULL: "") into dst[cap], cut to fit at a UTF-8 character boundary. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
	size_t n;

	if (src == NULL)
		src = "";
	n = strnlen(src, cap);
	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- sealing (the worker thread, or store_open before it) ---- */

/* The associated data of a token: a session's (k, purpose) or, with k NULL,
 * the B2B token of profile purpose: "b2b" NUL profile. */
static int token_ad(const store_session_key *k, const char *purpose,
		    unsigned char ad[SEALED_AD_MAX], size_t *ad_len)
{
	size_t n;

	if (k != NULL)
		return sealed_ad(k->profile, k->customer_ref, purpose, ad, ad_len);
	n = strlen(purpose);
	if (sizeof(B2B_AD) + n > SEALED_AD_MAX)
		return STORE_ERR_INVALID;
	memcpy(ad, B2B_AD, sizeof(B2B_AD)); /* with its NUL */
	memcpy(ad + sizeof(B2B_AD), purpose, n);
	*ad_len = sizeof(B2B_AD) + n;
	return 0;
}

static int seal_token(store *st, const store_session_key *k, const char *purpose,
		      const char *tok, size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char ad[SEALED_AD_MAX];
	size_t ad_len;
	int rc;

	*out = malloc(len + SEALED_OVERHEAD);
	if (*out == NULL)
		return STORE_ERR_NOMEM;
	rc = token_ad(k, purpose, ad, &ad_len);
	if (rc == 0)
		rc = sealed_seal(st->key, ad, ad_len, tok, len, *out, len + SEALED_OVERHEAD, out_len);
	return rc == 0 ? 0 : rc == SEALED_ERR_NOMEM ? STORE_ERR_NOMEM : STORE_ERR_IO;
}

/* in[0..in_len), a sealed token of session k (NULL: the B2B token of
 * profile purpose), opened into a new *tok. */
static int open_token(store *st, const unsigned char *in, size_t in_len,
		      const store_session_key *k, const char *purpose, char **tok, size_t *len)
{
	unsigned char ad[SEALED_AD_MAX];
	size_t ad_len, cap;
	int rc;

	*tok = NULL;
	*len = 0;
	if (in == NULL || in_len < SEALED_OVERHEAD || in_len > STORE_SEALED_TOKEN_MAX)
		return STORE_ERR_SEALED;
	cap = in_len - SEALED_OVERHEAD + 1;
	*tok = malloc(cap);
	if (*tok == NULL)
		return STORE_ERR_NOMEM;
	rc = token_ad(k, purpose, ad, &ad_len);
	if (rc == 0)
		rc = sealed_open(st->key, ad, ad_len, in, in_len, (unsigned char *)*tok, cap, len);
	if (rc != 0) {
		explicit_bzero(*tok, cap);
		free(*tok);
		*tok = NULL;
		return rc == SEALED_ERR_NOMEM ? STORE_ERR_NOMEM : STORE_ERR_SEALED;
	}
	return 0;
}

static void slot_wipe(struct sess_slot *sl)
{
	if (sl->access != NULL) {
		explicit_bzero(sl->access, sl->access_len);
		free(sl->access);
	}
	if (sl->refresh != NULL) {
		explicit_bzero(sl->refresh, sl->refresh_len);
		free(sl->refresh);
	}
	explicit_bzero(sl, sizeof(*sl));
}

/* A session the backend returned, opened into sl; SEALED when a token does
 * not open (sl keeps only the name then). */
static int open_session(store *st, const store_sealed_session *ss, struct sess_slot *sl)
{
	int rc;

	sl->key = ss->key;
	sl->gen = ss->gen;
	sl->access_expiry = ss->access_expiry;
	sl->refresh_expiry = ss->refresh_expiry;
	rc = open_token(st, ss->access, ss->access_len, &sl->key, "access", &sl->access,
			&sl->access_len);
	if (rc == 0)
		rc = open_token(st, ss->refresh, ss->refresh_len, &sl->key, "refresh",
				&sl->refresh, &sl->refresh_len);
	if (rc != 0) {
		store_session_key k = sl->key;

		slot_wipe(sl);
		sl->key = k;
	}
	return rc;
}

static void publish_session(store_session *pub, const struct sess_slot *sl)
{
	pub->gen = sl->gen;
	pub->profile = sl->key.profile;
	pub->customer_ref = sl->key.customer_ref;
	pub->access_token = sl->access;
	pub->access_len = sl->access_len;
	pub->access_expiry = sl->access_expiry;
	pub->refresh_token = sl->refresh;
	pub->refresh_len = sl->refresh_len;
	pub->refresh_expiry = sl->refresh_expiry;
}

/* Room for n opened sessions and n names of rows that did not open. */
static int alloc_slots(struct req *r, size_t n)
{
	r->slots = calloc(n, sizeof(*r->slots));
	r->sessions = calloc(n, sizeof(*r->sessions));
	r->bad = calloc(n, sizeof(*r->bad));
	if (r->slots == NULL || r->sessions == NULL || r->bad == NULL)
		return STORE_ERR_NOMEM;
	r->n_slots = n;
	return 0;
}

/* Session put: r's tokens sealed into r->b.put, for the backend to store. */
static int seal_session(store *st, struct req *r)
{
	const struct sess_slot *in = &r->sess_in;
	store_sealed_session *out = &r->b.put;
	int rc;

	out->key = in->key;
	out->access_expiry = in->access_expiry;
	out->refresh_expiry = in->refresh_expiry;
	rc = seal_token(st, &in->key, "access", in->access, in->access_len, &out->access,
			&out->access_len);
	if (rc == 0)
		rc = seal_token(st, &in->key, "refresh", in->refresh, in->refresh_len,
				&out->refresh, &out->refresh_len);
	return rc;
}

/* Session get / list: open the sessions the backend returned (rc: its
 * status). Those that open are published, the others named in bad: a
 * session get's one row that does not open is SEALED. */
static int open_sessions(store *st, struct req *r, int rc)
{
	if (r->b.n_sealed == 0)
		return rc;
	if (alloc_slots(r, r->b.n_sealed) != 0)
		return rc != 0 ? rc : STORE_ERR_NOMEM;
	for (size_t i = 0; i < r->b.n_sealed; i++) {
		struct sess_slot *sl = &r->slots[r->b.res.n_sessions];
		int o = open_session(st, &r->b.sealed[i], sl);

		if (o == STORE_ERR_SEALED) {
			r->bad[r->b.res.n_bad++] = sl->key;
			slot_wipe(sl);
			if (r->b.op != STORE_OP_SESSION_LIST && rc == 0)
				rc = STORE_ERR_SEALED;
		} else if (o != 0) {
			return rc != 0 ? rc : o;
		} else {
			publish_session(&r->sessions[r->b.res.n_sessions], sl);
			r->sessions[r->b.res.n_sessions++].leased = r->b.sess_leased;
		}
	}
	return rc;
}

/* ---- the worker ---- */

/* One request, between the backend's req_begin and req_end. */
static bool is_b2b_op(enum store_op op)
{
	return op == STORE_OP_B2B_GET || op == STORE_OP_B2B_LEASE || op == STORE_OP_B2B_PUBLISH ||
	       op == STORE_OP_B2B_RELEASE || op == STORE_OP_B2B_USED;
}

/* B2B: the row the backend returned, its token opened, into r->b2b_pub. A
 * token that does not open reads as none (the next fetch replaces it). */
static int open_b2b(store *st, struct req *r, int rc)
{
	const store_sealed_b2b *in = &r->b.b2b;
	store_b2b *out = &r->b2b_pub;
	int o;

	out->gen = in->gen;
	out->ttl_s = in->ttl_s;
	out->idle_ms = in->idle_ms;
	out->leased = in->leased;
	memcpy(out->lease_holder, in->lease_holder, sizeof(out->lease_holder));
	out->lease_left_ms = in->lease_left_ms;
	if (in->token == NULL || in->token_len == 0)
		return rc;
	o = open_token(st, in->token, in->token_len, NULL, r->b.skey.profile, &r->b2b_plain,
		       &out->token_len);
	if (o == 0)
		out->token = r->b2b_plain;
	else if (o != STORE_ERR_SEALED && rc == 0)
		rc = o;
	return rc;
}

/* One request, between the backend's req_begin and req_end. */
static int run_req(store *st, struct req *r)
{
	int rc = 0;

	if (r->b.op == STORE_OP_SESSION_PUT || r->b.op == STORE_OP_SESSION_REFRESHED)
		rc = seal_session(st, r);
	else if (r->b.op == STORE_OP_B2B_PUBLISH)
		rc = seal_token(st, NULL, r->b.skey.profile, r->b2b_in, r->b2b_in_len,
				&r->b.b2b_sealed, &r->b.b2b_sealed_len);
	if (rc == 0)
		rc = st->ops->exec(st->be, &r->b);
	if (r->b.op == STORE_OP_SESSION_GET || r->b.op == STORE_OP_SESSION_LIST ||
	    r->b.op == STORE_OP_SESSION_LEASE)
		rc = open_sessions(st, r, rc);
	else if (is_b2b_op(r->b.op))
		rc = open_b2b(st, r, rc);
	return rc;
}

/* Forget what a request found (its transaction did not commit). */
static void req_drop_results(struct req *r)
{
	for (size_t i = 0; r->slots != NULL && i < r->n_slots; i++)
		slot_wipe(&r->slots[i]);
	if (r->b2b_plain != NULL) {
		explicit_bzero(r->b2b_plain, r->b2b_pub.token_len);
		free(r->b2b_plain);
		r->b2b_plain = NULL;
	}
	memset(&r->b2b_pub, 0, sizeof(r->b2b_pub));
	r->b.res.gen = 0;
	r->b.res.n_rows = 0;
	r->b.res.n_sessions = 0;
	r->b.res.n_bad = 0;
	r->b.res.next = NULL;
	r->b.res.next_before_id = 0;
	r->b.res.id = 0;
	r->b.res.n_pruned = 0;
}

/* Forget all that run_req made of r (its savepoint was rolled back): the
 * tokens sealed for the backend, what exec wrote, the sessions opened. r is
 * as it was before it ran; its inputs are untouched. */
static void req_drop_exec(struct req *r)
{
	req_drop_results(r);
	free(r->slots);
	free(r->sessions);
	free(r->bad);
	r->slots = NULL;
	r->sessions = NULL;
	r->bad = NULL;
	r->n_slots = 0;
	free(r->b.put.access);
	free(r->b.put.refresh);
	memset(&r->b.put, 0, sizeof(r->b.put));
	free(r->b.b2b_sealed);
	r->b.b2b_sealed = NULL;
	r->b.b2b_sealed_len = 0;
	free(r->b.row_blob);
	r->b.row_blob = NULL;
	for (size_t i = 0; r->b.sealed != NULL && i < r->b.n_sealed; i++) {
		free(r->b.sealed[i].access);
		free(r->b.sealed[i].refresh);
		memset(&r->b.sealed[i], 0, sizeof(r->b.sealed[i]));
	}
	r->b.n_sealed = 0;
	memset(&r->b.next_key, 0, sizeof(r->b.next_key));
	r->b.sess_leased = false;
	free(r->b.b2b.token);
	memset(&r->b.b2b, 0, sizeof(r->b.b2b));
}

/* After the batch: whether r, undone by the database to break a deadlock
 * (store_backend.h, STORE_BACKEND_AGAIN), runs once more in the next batch.
 * Any request does, once: its savepoint was rolled back, so running it again
 * is running it a little later, and failing it would fail its caller for
 * nothing (a money call refused, a customer's new session lost, a B2B lease
 * not taken). A second deadlock fails it as the database's error. */
static bool run_again(struct req *r, bool committed)
{
	if (r->b.res.status != STORE_BACKEND_AGAIN)
		return false;
	r->b.res.status = STORE_ERR_IO;
	if (!committed || r->again)
		return false;
	req_drop_exec(r);
	r->again = true;
	return true;
}

/* One transaction for the batch, a savepoint per request. */
static void run_batch(store *st, struct req **batch, size_t n)
{
	const store_backend_ops *ops = st->ops;
	int rc = ops->batch_begin(st->be);

	for (size_t i = 0; i < n; i++) {
		if (rc != 0) {
			batch[i]->b.res.status = rc;
			continue;
		}
		if (ops->req_begin(st->be) != 0) {
			batch[i]->b.res.status = STORE_ERR_IO;
			continue;
		}
		batch[i]->b.res.status = run_req(st, batch[i]);
		ops->req_end(st->be, batch[i]->b.res.status != 0);
	}
	if (rc == 0 && ops->batch_commit(st->be) != 0) {
		for (size_t i = 0; i < n; i++) {
			req_drop_results(batch[i]);
			batch[i]->b.res.status = STORE_ERR_IO;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int s;

		if (run_again(batch[i], rc == 0)) {
			batch[i]->b.res.status = STORE_BACKEND_AGAIN;
			continue;
		}
		s = batch[i]->b.res.status;
		if (s == STORE_ERR_IO || s == STORE_ERR_CORRUPT)
			atomic_fetch_add(&st->cnt.errors, 1);
	}
}

/* Beat now when the interval has passed since *next (uv_hrtime ns). */
static void maybe_beat(store *st, uint64_t *next)
{
	if (st->beat_ms == 0 || uv_hrtime() < *next)
		return;
	st->ops->beat(st->be);
	*next = uv_hrtime() + (uint64_t)st->beat_ms * 1000000u;
}

static void worker_main(void *arg)
{
	store *st = arg;
	struct req *batch[STORE_BATCH_MAX];
	uint64_t next_beat = uv_hrtime() + (uint64_t)st->beat_ms * 1000000u;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the loop's */
	uv_mutex_lock(&st->mu);
	for (;;) {
		size_t n = 0;

		while (st->queue_head == NULL && !st->closing) {
			uint64_t now = uv_hrtime();

			if (st->beat_ms == 0) {
				uv_cond_wait(&st->cond, &st->mu);
			} else if (now < next_beat) {
				(void)uv_cond_timedwait(&st->cond, &st->mu, next_beat - now);
			} else {
				uv_mutex_unlock(&st->mu);
				maybe_beat(st, &next_beat);
				uv_mutex_lock(&st->mu);
			}
		}
		if (st->queue_head == NULL)
			break;
		while (n < STORE_BATCH_MAX && st->queue_head != NULL) {
			batch[n] = st->queue_head;
			st->queue_head = batch[n]->next;
			batch[n++]->next = NULL;
			st->queued--;
		}
		if (st->queue_head == NULL)
			st->queue_tail = NULL;
		uv_mutex_unlock(&st->mu);
		maybe_beat(st, &next_beat);
		run_batch(st, batch, n);
		uv_mutex_lock(&st->mu);
		for (size_t i = n; i-- > 0;) {
			if (batch[i]->b.res.status != STORE_BACKEND_AGAIN)
				continue;
			/* first in the next batch, in their order */
			batch[i]->next = st->queue_head;
			st->queue_head = batch[i];
			if (st->queue_tail == NULL)
				st->queue_tail = batch[i];
			st->queued++;
			batch[i] = NULL;
		}
		for (size_t i = 0; i < n; i++) {
			if (batch[i] == NULL)
				continue;
			if (st->done_tail != NULL)
				st->done_tail->next = batch[i];
			else
				st->done_head = batch[i];
			st->done_tail = batch[i];
		}
		uv_mutex_unlock(&st->mu);
		uv_async_send(&st->async);
		uv_mutex_lock(&st->mu);
	}
	uv_mutex_unlock(&st->mu);
	st->ops->close(st->be);
	st->be = NULL;
	uv_mutex_lock(&st->mu);
	st->worker_done = true;
	uv_mutex_unlock(&st->mu);
	uv_async_send(&st->async);
}

/* ---- the loop's side ---- */

static void req_free(struct req *r)
{
	if (r == NULL)
		return;
	req_drop_exec(r); /* what running it made; then its inputs and room */
	free(r->b.rows);
	free(r->b.in_blob);
	free(r->b.sealed);
	if (r->b2b_in != NULL) {
		explicit_bzero(r->b2b_in, r->b2b_in_len);
		free(r->b2b_in);
	}
	slot_wipe(&r->sess_in);
	explicit_bzero(r, sizeof(*r));
	free(r);
}

/* A request with room for rows journal rows and, for a session get or list,
 * the sessions the backend returns. */
static struct req *req_new(enum store_op op, store_cb cb, void *data, unsigned rows)
{
	size_t sessions = 0;
	struct req *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->b.op = op;
	r->cb = cb;
	r->data = data;
	r->b.limit = rows;
	if (op == STORE_OP_SESSION_GET || op == STORE_OP_SESSION_LEASE)
		sessions = 1;
	else if (op == STORE_OP_SESSION_LIST)
		sessions = STORE_SESSION_PAGE;
	if (rows > 0)
		r->b.rows = calloc(rows, sizeof(*r->b.rows));
	if (sessions > 0)
		r->b.sealed = calloc(sessions, sizeof(*r->b.sealed));
	if ((rows > 0 && r->b.rows == NULL) || (sessions > 0 && r->b.sealed == NULL)) {
		free(r->b.rows);
		free(r->b.sealed);
		free(r);
		return NULL;
	}
	return r;
}

/* Queue r, or free it and say why not. */
static int submit(store *st, struct req *r)
{
	int rc = 0;

	uv_mutex_lock(&st->mu);
	if (st->closing)
		rc = STORE_ERR_CLOSED;
	else if (st->queued >= STORE_QUEUE_MAX)
		rc = STORE_ERR_BUSY;
	if (rc == 0) {
		if (st->queue_tail != NULL)
			st->queue_tail->next = r;
		else
			st->queue_head = r;
		st->queue_tail = r;
		st->queued++;
		uv_cond_signal(&st->cond);
	}
	uv_mutex_unlock(&st->mu);
	if (rc != 0)
		req_free(r);
	return rc;
}

static void on_closed(uv_handle_t *h)
{
	store *st = h->data;
	store_closed_cb cb = st->closed_cb;
	void *data = st->closed_data;

	uv_cond_destroy(&st->cond);
	uv_mutex_destroy(&st->mu);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st);
	if (cb != NULL)
		cb(data);
}

static void on_async(uv_async_t *a)
{
	store *st = a->data;
	struct req *r;
	bool finished;

	uv_mutex_lock(&st->mu);
	r = st->done_head;
	st->done_head = st->done_tail = NULL;
	finished = st->worker_done;
	uv_mutex_unlock(&st->mu);
	while (r != NULL) {
		struct req *next = r->next;

		r->b.res.rows = r->b.res.n_rows > 0 ? r->b.rows : NULL;
		r->b.res.sessions = r->b.res.n_sessions > 0 ? r->sessions : NULL;
		r->b.res.bad = r->b.res.n_bad > 0 ? r->bad : NULL;
		r->b.res.b2b = is_b2b_op(r->b.op) ? &r->b2b_pub : NULL;
		if (r->cb != NULL)
			r->cb(&r->b.res, r->data);
		req_free(r);
		r = next;
	}
	if (finished && !st->joined) {
		st->joined = true;
		uv_thread_join(&st->thread);
		uv_close((uv_handle_t *)&st->async, on_closed);
	}
}

void store_close(store *st, store_closed_cb closed, void *data)
{
	if (st == NULL)
		return;
	uv_mutex_lock(&st->mu);
	if (st->closing) {
		uv_mutex_unlock(&st->mu);
		return;
	}
	st->closing = true;
	st->closed_cb = closed;
	st->closed_data = data;
	uv_cond_signal(&st->cond);
	uv_mutex_unlock(&st->mu);
}

/* ---- opening ---- */

/* state_dir exists as a directory (made with mode 0700 when missing), and is ours. */
static int take_dir(store *st, const char *dir, char err[STORE_ERR_MAX])
{
	char path[STORE_PATH_MAX];
	struct stat sb;
	int n;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		text_printf(err, STORE_ERR_MAX, "state directory %s: %s", dir, strerror(errno));
		return STORE_ERR_IO;
	}
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		text_printf(err, STORE_ERR_MAX, "state directory %s: not a directory", dir);
		return STORE_ERR_IO;
	}
	n = snprintf(path, sizeof(path), "%s/%s", dir, STORE_LOCK_NAME);
	if (n <= 0 || n >= (int)sizeof(path)) {
		text_printf(err, STORE_ERR_MAX, "state directory %s: path too long", dir);
		return STORE_ERR_INVALID;
	}
	st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (st->lock_fd < 0) {
		text_printf(err, STORE_ERR_MAX, "state directory %s: %s: %s", dir, STORE_LOCK_NAME,
			 strerror(errno));
		return STORE_ERR_IO;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		text_printf(err, STORE_ERR_MAX, "state directory %s is in use by another process (%s: %s)",
			 dir, STORE_LOCK_NAME,
			 e == EWOULDBLOCK ? "locked" : strerror(e));
		return e == EWOULDBLOCK ? STORE_ERR_LOCKED : STORE_ERR_IO;
	}
	return 0;
}

static int key_check_once(const store_backend_ops *ops, store_backend *be, sealed_key *key,
			  char err[STORE_ERR_MAX]);

/* The key must open the key check sealed with the first key the database
 * saw; a database that never saw one gets one (a shared backend's put is
 * EXISTS when another daemon put one first: then that one is checked). */
static int key_check(const store_backend_ops *ops, store_backend *be, sealed_key *key,
		     char err[STORE_ERR_MAX])
{
	int rc = 0;

	if (key == NULL)
		return 0;
	for (int round = 0; round < 2; round++) {
		rc = key_check_once(ops, be, key, err);
		if (rc != STORE_ERR_EXISTS)
			return rc;
		/* another daemon of the fleet stored one meanwhile: check against it */
	}
	return rc;
}

static int key_check_once(const store_backend_ops *ops, store_backend *be, sealed_key *key,
			  char err[STORE_ERR_MAX])
{
	static const char text[] = KEY_CHECK_TEXT;
	unsigned char plain[sizeof(text)];
	unsigned char sealed[sizeof(text) + SEALED_OVERHEAD];
	unsigned char *v = NULL;
	size_t n = 0, len = 0;
	int rc;

	rc = ops->key_check_get(be, &v, &n, err);
	if (rc == 0 && (n == 0 ||
			sealed_open(key, KEY_CHECK_AD, sizeof(KEY_CHECK_AD) - 1, v, n, plain,
				    sizeof(plain), &len) != 0 ||
			len != sizeof(text) - 1 || memcmp(plain, text, len) != 0)) {
		if (ops->shared)
			text_printf(err, STORE_ERR_MAX,
				    "state database %s was sealed with another key: its sessions "
				    "and tokens cannot be opened with this one. Every daemon of a "
				    "fleet must use the same state_key_file",
				    ops->where(be));
		else
			text_printf(err, STORE_ERR_MAX,
				    "state database %s was sealed with another key: its sessions "
				    "cannot be opened with this one. Use the key it was written "
				    "with, or move %s away to start afresh (its sessions are then "
				    "lost; --export-journal saves the journal first)",
				    ops->where(be), STORE_DB_NAME);
		rc = STORE_ERR_KEY;
	}
	free(v);
	explicit_bzero(plain, sizeof(plain));
	if (rc != STORE_ERR_NOT_FOUND)
		return rc;
	if (sealed_seal(key, KEY_CHECK_AD, sizeof(KEY_CHECK_AD) - 1, text, sizeof(text) - 1,
			sealed, sizeof(sealed), &len) != 0) {
		text_printf(err, STORE_ERR_MAX,
			 "state database %s cannot be used: the key check could not be sealed",
			 ops->where(be));
		return STORE_ERR_IO;
	}
	return ops->key_check_put(be, sealed, len, err);
}

static bool holder_valid(const char *h)
{
	size_t n;

	if (h == NULL)
		return false;
	n = strnlen(h, STORE_HOLDER_MAX + 1);
	if (n == 0 || n > STORE_HOLDER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

void store_holder_make(char out[STORE_HOLDER_MAX + 1])
{
	static const char digits[] = "0123456789abcdef";
	char host[HOLDER_HOST_MAX + 1] = "";
	unsigned char rnd[8] = { 0 };
	char hex[2 * sizeof(rnd) + 1];
	size_t got = 0;

	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[HOLDER_HOST_MAX] = '\0';
	for (char *c = host; *c != '\0'; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == '_'))
			*c = '-';
	if (host[0] == '\0')
		memcpy(host, "host", 5);
	while (got < sizeof(rnd)) {
		ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);

		if (n > 0)
			got += (size_t)n;
		else if (n < 0 && errno != EINTR)
			break;
	}
	if (got < sizeof(rnd)) { /* no getrandom: the clock still makes it unique enough */
		uint64_t t = uv_hrtime() ^ (uint64_t)clock_wall_ms();

		memcpy(rnd, &t, sizeof(rnd));
	}
	for (size_t i = 0; i < sizeof(rnd); i++) {
		hex[2 * i] = digits[rnd[i] >> 4];
		hex[2 * i + 1] = digits[rnd[i] & 0xf];
	}
	hex[sizeof(hex) - 1] = '\0';
	text_printf(out, STORE_HOLDER_MAX + 1, "%s:%ld:%s", host, (long)getpid(), hex);
}

/* The backend of w's kind, or NULL. */
static const store_backend_ops *backend_of(const store_where *w)
{
	if (w == NULL)
		return NULL;
	if (w->kind == STORE_SQLITE)
		return w->state_dir != NULL && w->state_dir[0] != '\0' ? store_sqlite_backend()
									: NULL;
	if (w->kind == STORE_POSTGRES)
		return w->conninfo != NULL ? store_postgres_backend() : NULL;
	return NULL;
}

int store_open_at(uv_loop_t *loop, const store_where *w, sealed_key *key, store **out,
		  char err[STORE_ERR_MAX])
{
	char holder[STORE_HOLDER_MAX + 1];
	const store_backend_ops *ops = backend_of(w);
	store_where where;
	bool sync_made = false;
	store *st;
	int rc;

	*out = NULL;
	err[0] = '\0';
	if (loop == NULL || ops == NULL) {
		text_printf(err, STORE_ERR_MAX, "store_open: no loop, or no state directory or "
			    "PostgreSQL connection string");
		return STORE_ERR_INVALID;
	}
	where = *w;
	if (w->kind == STORE_POSTGRES) {
		if (w->holder == NULL) {
			store_holder_make(holder);
			where.holder = holder;
		} else if (!holder_valid(w->holder)) {
			text_printf(err, STORE_ERR_MAX,
				    "store_open: a holder name is 1 to %d of [A-Za-z0-9._:-]",
				    STORE_HOLDER_MAX);
			return STORE_ERR_INVALID;
		}
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		text_printf(err, STORE_ERR_MAX, "out of memory");
		return STORE_ERR_NOMEM;
	}
	st->loop = loop;
	st->key = key;
	st->lock_fd = -1;
	st->ops = ops;
	st->beat_ms = ops->beat != NULL ? store_fleet_beat_ms() : 0;
	atomic_init(&st->cnt.connected, w->kind == STORE_SQLITE);
	rc = w->kind == STORE_SQLITE ? take_dir(st, w->state_dir, err) : 0;
	if (rc == 0)
		rc = st->ops->open(&where, &st->cnt, &st->be, err);
	if (rc == 0)
		rc = key_check(st->ops, st->be, st->key, err);
	if (rc == 0)
		rc = st->ops->adopt_orphans(st->be, err);
	if (rc != 0)
		goto out;
	rc = STORE_ERR_NOMEM;
	if (uv_mutex_init(&st->mu) != 0)
		goto out;
	if (uv_cond_init(&st->cond) != 0) {
		uv_mutex_destroy(&st->mu);
		goto out;
	}
	sync_made = true;
	if (uv_async_init(loop, &st->async, on_async) != 0)
		goto out;
	st->async.data = st;
	if (uv_thread_create(&st->thread, worker_main, st) != 0) {
		/* the async handle is closed (and the store freed) by the loop */
		text_printf(err, STORE_ERR_MAX, "cannot start the store's worker thread");
		st->ops->close(st->be);
		st->be = NULL;
		st->closed_cb = NULL;
		uv_close((uv_handle_t *)&st->async, on_closed);
		return STORE_ERR_NOMEM;
	}
	*out = st;
	return 0;
out:
	if (rc == STORE_ERR_NOMEM && err[0] == '\0')
		text_printf(err, STORE_ERR_MAX, "out of memory");
	if (sync_made) {
		uv_cond_destroy(&st->cond);
		uv_mutex_destroy(&st->mu);
	}
	st->ops->close(st->be);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st);
	return rc;
}

int store_open(uv_loop_t *loop, const char *state_dir, sealed_key *key, store **out,
	       char err[STORE_ERR_MAX])
{
	const store_where w = { .kind = STORE_SQLITE, .state_dir = state_dir };

	return store_open_at(loop, &w, key, out, err);
}

bool store_shared(const store *st)
{
	return st != NULL && st->ops->shared;
}

void store_get_stats(const store *st, store_stats *out)
{
	store_counters *c = (store_counters *)&st->cnt; /* atomic loads do not modify */

	out->connected = atomic_load(&c->connected);
	out->round_trips = atomic_load(&c->round_trips);
	out->errors = atomic_load(&c->errors);
	out->reconnects = atomic_load(&c->reconnects);
	out->rtt_us_sum = atomic_load(&c->rtt_us_sum);
	out->rtt_us_max = atomic_load(&c->rtt_us_max);
	out->rows_claimed = atomic_load(&c->rows_claimed);
	out->orphans_adopted = atomic_load(&c->orphans_adopted);
}

/* ---- requests ---- */

static int session_in(store *st, enum store_op op, const store_session *s, store_cb cb,
		      void *data, struct req **out);

static int session_key_in(store_session_key *k, const char *profile, const char *ref)
{
	if (copy_in(k->profile, sizeof(k->profile), profile, true) != 0 ||
	    copy_in(k->customer_ref, sizeof(k->customer_ref), ref, true) != 0)
		return STORE_ERR_INVALID;
	return 0;
}

/* A copy of tok[0..len) with a NUL, in *out. */
static int token_in(const char *tok, size_t len, char **out)
{
	if (len > STORE_TOKEN_MAX)
		return STORE_ERR_TOO_BIG;
	if (tok == NULL && len > 0)
		return STORE_ERR_INVALID;
	*out = malloc(len + 1);
	if (*out == NULL)
		return STORE_ERR_NOMEM;
	if (len > 0)
		memcpy(*out, tok, len);
	(*out)[len] = '\0';
	return 0;
}

int store_session_put(store *st, const store_session *s, store_cb cb, void *data)
{
	struct req *r;
	int rc = session_in(st, STORE_OP_SESSION_PUT, s, cb, data, &r);

	return rc != 0 ? rc : submit(st, r);
}

static int session_named(store *st, enum store_op op, const char *profile, const char *ref,
			 store_cb cb, void *data)
{
	struct req *r;

	if (st == NULL || cb == NULL)
		return STORE_ERR_INVALID;
	if (st->key == NULL)
		return STORE_ERR_NO_KEY;
	r = req_new(op, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	if (session_key_in(&r->b.skey, profile, ref) != 0) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	return submit(st, r);
}

int store_session_get(store *st, const char *profile, const char *customer_ref, store_cb cb,
		      void *data)
{
	return session_named(st, STORE_OP_SESSION_GET, profile, customer_ref, cb, data);
}

int store_session_delete(store *st, const char *profile, const char *customer_ref, store_cb cb,
			 void *data)
{
	return session_named(st, STORE_OP_SESSION_DELETE, profile, customer_ref, cb, data);
}

int store_session_list(store *st, const store_session_key *after, store_cb cb, void *data)
{
	struct req *r;

	if (st == NULL || cb == NULL)
		return STORE_ERR_INVALID;
	if (st->key == NULL)
		return STORE_ERR_NO_KEY;
	r = req_new(STORE_OP_SESSION_LIST, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	if (after != NULL &&
	    (copy_in(r->b.skey.profile, sizeof(r->b.skey.profile), after->profile,
		     false) != 0 ||
	     copy_in(r->b.skey.customer_ref, sizeof(r->b.skey.customer_ref),
		     after->customer_ref, false) != 0)) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	return submit(st, r);
}

static bool is_lower_hex(const char *s, size_t len)
{
	if (s == NULL || strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int store_journal_intent(store *st, const store_intent *in, store_cb cb, void *data)
{
	store_row *row;
	struct req *r;
	int rc = 0;

	if (st == NULL || in == NULL || cb == NULL ||
	    !is_lower_hex(in->body_sha256, STORE_SHA256_HEX))
		return STORE_ERR_INVALID;
	r = req_new(STORE_OP_INTENT, cb, data, 1);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	row = &r->b.in;
	rc |= copy_in(row->method, sizeof(row->method), in->method, true);
	rc |= copy_in(row->profile, sizeof(row->profile), in->profile, true);
	rc |= copy_in(row->customer_ref, sizeof(row->customer_ref), in->customer_ref, false);
	rc |= copy_in(row->partner_reference_no, sizeof(row->partner_reference_no),
		      in->partner_reference_no, true);
	rc |= copy_in(row->original_reference_no, sizeof(row->original_reference_no),
		      in->original_reference_no, false);
	rc |= copy_in(row->external_id, sizeof(row->external_id), in->external_id, true);
	rc |= copy_in(row->amount_value, sizeof(row->amount_value), in->amount_value, false);
	rc |= copy_in(row->amount_currency, sizeof(row->amount_currency), in->amount_currency,
		      false);
	rc |= copy_in(row->body_sha256, sizeof(row->body_sha256), in->body_sha256, true);
	rc |= copy_in(row->request_time, sizeof(row->request_time), in->request_time, false);
	if (rc != 0) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	row->created_ms = in->created_ms != 0 ? in->created_ms : clock_wall_ms();
	return submit(st, r);
}

static bool is_outcome_state(enum store_state s)
{
	return s == STORE_DONE || s == STORE_NOT_DONE || s == STORE_UNKNOWN;
}

int store_journal_outcome(store *st, int64_t id, const store_outcome *o, store_cb cb,
			  void *data)
{
	struct req *r;

	if (st == NULL || o == NULL || cb == NULL || id <= 0 || !is_outcome_state(o->state) ||
	    (o->response == NULL && o->response_len > 0))
		return STORE_ERR_INVALID;
	if (o->response_len > STORE_RESPONSE_MAX)
		return STORE_ERR_TOO_BIG;
	r = req_new(STORE_OP_OUTCOME, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	r->b.id = id;
	r->b.in.state = o->state;
	r->b.in.http_status = o->http_status;
	r->b.in.next_attempt_ms = o->next_attempt_ms;
	copy_cut(r->b.in.response_message, sizeof(r->b.in.response_message), o->response_message);
	copy_cut(r->b.in.detail, sizeof(r->b.in.detail), o->detail);
	if (copy_in(r->b.in.response_code, sizeof(r->b.in.response_code), o->response_code, false)) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	if (o->response != NULL) {
		r->b.in_blob = malloc(o->response_len > 0 ? o->response_len : 1);
		if (r->b.in_blob == NULL) {
			req_free(r);
			return STORE_ERR_NOMEM;
		}
		if (o->response_len > 0)
			memcpy(r->b.in_blob, o->response, o->response_len);
		r->b.in.response_len = o->response_len;
	}
	return submit(st, r);
}

int store_journal_reconciled(store *st, int64_t id, enum store_state state,
			     int64_t next_attempt_ms, const char *detail, store_cb cb, void *data)
{
	struct req *r;

	if (st == NULL || cb == NULL || id <= 0 || !is_outcome_state(state))
		return STORE_ERR_INVALID;
	r = req_new(STORE_OP_RECONCILED, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	r->b.id = id;
	r->b.in.state = state;
	r->b.in.next_attempt_ms = next_attempt_ms;
	copy_cut(r->b.in.detail, sizeof(r->b.in.detail), detail);
	return submit(st, r);
}

int store_journal_reissue(store *st, int64_t id, enum store_state from, const store_intent *in,
			  const char *detail, store_cb cb, void *data)
{
	store_row *row;
	struct req *r;
	int rc = 0;

	if (st == NULL || in == NULL || cb == NULL || id <= 0 ||
	    (from != STORE_PENDING && from != STORE_NOT_DONE) ||
	    !is_lower_hex(in->body_sha256, STORE_SHA256_HEX))
		return STORE_ERR_INVALID;
	r = req_new(STORE_OP_REISSUE, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	r->b.id = id;
	row = &r->b.in;
	row->state = from;
	rc |= copy_in(row->external_id, sizeof(row->external_id), in->external_id, true);
	rc |= copy_in(row->request_time, sizeof(row->request_time), in->request_time, false);
	rc |= copy_in(row->body_sha256, sizeof(row->body_sha256), in->body_sha256, true);
	rc |= copy_in(row->amount_value, sizeof(row->amount_value), in->amount_value, false);
	rc |= copy_in(row->amount_currency, sizeof(row->amount_currency), in->amount_currency,
		      false);
	copy_cut(row->detail, sizeof(row->detail), detail);
	if (from == STORE_PENDING && in->refused_http > 0) {
		row->http_status = in->refused_http;
		rc |= copy_in(row->response_code, sizeof(row->response_code),
			      in->refused_response_code, false);
	}
	if (rc != 0) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	return submit(st, r);
}

int store_journal_get(store *st, const store_key *k, store_cb cb, void *data)
{
	struct req *r;
	int rc = 0;

	if (st == NULL || k == NULL || cb == NULL)
		return STORE_ERR_INVALID;
	r = req_new(STORE_OP_GET, cb, data, 1);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	rc |= copy_in(r->b.in.profile, sizeof(r->b.in.profile), k->profile, true);
	rc |= copy_in(r->b.in.method, sizeof(r->b.in.method), k->method, false);
	rc |= copy_in(r->b.in.partner_reference_no, sizeof(r->b.in.partner_reference_no),
		      k->partner_reference_no, false);
	rc |= copy_in(r->b.in.external_id, sizeof(r->b.in.external_id), k->external_id, false);
	if (rc != 0 || (r->b.in.partner_reference_no[0] == '\0' && r->b.in.external_id[0] == '\0')) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	return submit(st, r);
}

int store_journal_list(store *st, const store_filter *f, store_cb cb, void *data)
{
	unsigned limit;
	struct req *r;

	if (st == NULL || f == NULL || cb == NULL || f->limit > STORE_LIST_MAX ||
	    (unsigned)f->state > STORE_UNKNOWN || f->from_ms < 0 || f->to_ms < 0 ||
	    f->before_id < 0)
		return STORE_ERR_INVALID;
	limit = f->limit != 0 ? f->limit : STORE_LIST_DEFAULT;
	r = req_new(STORE_OP_LIST, cb, data, limit);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	if (copy_in(r->b.in.profile, sizeof(r->b.in.profile), f->profile, false) != 0 ||
	    copy_in(r->b.in.customer_ref, sizeof(r->b.in.customer_ref), f->customer_ref, false) != 0) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	r->b.in.state = f->state;
	r->b.from_ms = f->from_ms;
	r->b.to_ms = f->to_ms;
	r->b.before_id = f->before_id;
	return submit(st, r);
}

int store_journal_due(store *st, unsigned limit, store_cb cb, void *data)
{
	struct req *r;

	if (st == NULL || cb == NULL || limit == 0 || limit > STORE_LIST_MAX)
		return STORE_ERR_INVALID;
	r = req_new(STORE_OP_DUE, cb, data, limit);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	return submit(st, r);
}

int store_journal_prune(store *st, int64_t before_ms, unsigned max_rows, store_cb cb,
			void *data)
{
	struct req *r;

	if (st == NULL || cb == NULL || before_ms <= 0 || max_rows == 0 ||
	    max_rows > STORE_PRUNE_MAX)
		return STORE_ERR_INVALID;
	r = req_new(STORE_OP_PRUNE, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	r->b.before_ms = before_ms;
	r->b.limit = max_rows;
	return submit(st, r);
}

/* ---- the fleet ---- */

/* A fleet request on profile (and client_id when not NULL), or why not. */
static int fleet_req(store *st, enum store_op op, const char *profile, const char *client_id,
		     store_cb cb, void *data, struct req **out)
{
	struct req *r;

	*out = NULL;
	if (st == NULL || (cb == NULL && op != STORE_OP_B2B_USED) || !st->ops->shared)
		return STORE_ERR_INVALID;
	if (st->key == NULL)
		return STORE_ERR_NO_KEY;
	r = req_new(op, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	if (copy_in(r->b.skey.profile, sizeof(r->b.skey.profile), profile, true) != 0 ||
	    (client_id != NULL &&
	     copy_in(r->b.client_id, sizeof(r->b.client_id), client_id, true) != 0)) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	*out = r;
	return 0;
}

int store_b2b_get(store *st, const char *profile, const char *client_id, store_cb cb,
		  void *data)
{
	struct req *r;
	int rc = fleet_req(st, STORE_OP_B2B_GET, profile, client_id != NULL ? client_id : "", cb,
			   data, &r);

	return rc != 0 ? rc : submit(st, r);
}

int store_b2b_lease(store *st, const char *profile, const char *client_id, int64_t expect_gen,
		    unsigned lease_ms, store_cb cb, void *data)
{
	struct req *r;
	int rc;

	if (expect_gen < 0 || lease_ms == 0 || lease_ms > STORE_LEASE_MAX_MS || client_id == NULL)
		return STORE_ERR_INVALID;
	rc = fleet_req(st, STORE_OP_B2B_LEASE, profile, client_id, cb, data, &r);
	if (rc != 0)
		return rc;
	r->b.expect_gen = expect_gen;
	r->b.lease_ms = lease_ms;
	return submit(st, r);
}

int store_b2b_publish(store *st, const char *profile, const char *client_id, const char *token,
		      size_t token_len, int64_t ttl_s, store_cb cb, void *data)
{
	struct req *r;
	int rc;

	if (client_id == NULL || token == NULL || token_len == 0 || ttl_s < 0)
		return STORE_ERR_INVALID;
	if (token_len > STORE_TOKEN_MAX)
		return STORE_ERR_TOO_BIG;
	rc = fleet_req(st, STORE_OP_B2B_PUBLISH, profile, client_id, cb, data, &r);
	if (rc != 0)
		return rc;
	rc = token_in(token, token_len, &r->b2b_in);
	if (rc != 0) {
		req_free(r);
		return rc;
	}
	r->b2b_in_len = token_len;
	r->b.ttl_s = ttl_s;
	return submit(st, r);
}

int store_b2b_release(store *st, const char *profile, store_cb cb, void *data)
{
	struct req *r;
	int rc = fleet_req(st, STORE_OP_B2B_RELEASE, profile, NULL, cb, data, &r);

	return rc != 0 ? rc : submit(st, r);
}

/* b2b_used without a callback: nothing to tell. */
static void used_ignored(const store_result *res, void *data)
{
	(void)res;
	(void)data;
}

int store_b2b_used(store *st, const char *profile, int64_t gen, store_cb cb, void *data)
{
	struct req *r;
	int rc;

	if (gen <= 0)
		return STORE_ERR_INVALID;
	rc = fleet_req(st, STORE_OP_B2B_USED, profile, NULL, cb, data, &r);
	if (rc != 0)
		return rc;
	if (cb == NULL)
		r->cb = used_ignored;
	r->b.expect_gen = gen;
	return submit(st, r);
}

int store_session_lease(store *st, const char *profile, const char *customer_ref,
			int64_t expect_gen, unsigned lease_ms, store_cb cb, void *data)
{
	struct req *r;
	int rc;

	if (expect_gen < 0 || lease_ms == 0 || lease_ms > STORE_LEASE_MAX_MS)
		return STORE_ERR_INVALID;
	rc = fleet_req(st, STORE_OP_SESSION_LEASE, profile, NULL, cb, data, &r);
	if (rc != 0)
		return rc;
	if (copy_in(r->b.skey.customer_ref, sizeof(r->b.skey.customer_ref), customer_ref,
		    true) != 0) {
		req_free(r);
		return STORE_ERR_INVALID;
	}
	r->b.expect_gen = expect_gen;
	r->b.lease_ms = lease_ms;
	return submit(st, r);
}

/* A session's inputs (put, refreshed) copied into a new request of op. */
static int session_in(store *st, enum store_op op, const store_session *s, store_cb cb,
		      void *data, struct req **out)
{
	struct req *r;
	int rc;

	*out = NULL;
	if (st == NULL || s == NULL || cb == NULL || s->access_len == 0)
		return STORE_ERR_INVALID;
	if (st->key == NULL)
		return STORE_ERR_NO_KEY;
	r = req_new(op, cb, data, 0);
	if (r == NULL)
		return STORE_ERR_NOMEM;
	rc = session_key_in(&r->sess_in.key, s->profile, s->customer_ref);
	if (rc == 0)
		rc = token_in(s->access_token, s->access_len, &r->sess_in.access);
	if (rc == 0) {
		r->sess_in.access_len = s->access_len;
		rc = token_in(s->refresh_token, s->refresh_len, &r->sess_in.refresh);
	}
	if (rc != 0) {
		req_free(r);
		return rc;
	}
	r->sess_in.refresh_len = s->refresh_len;
	r->sess_in.access_expiry = s->access_expiry;
	r->sess_in.refresh_expiry = s->refresh_expiry;
	r->b.skey = r->sess_in.key;
	*out = r;
	return 0;
}

int store_session_refreshed(store *st, const store_session *s, store_cb cb, void *data)
{
	struct req *r;
	int rc;

	if (st != NULL && !st->ops->shared)
		return STORE_ERR_INVALID;
	rc = session_in(st, STORE_OP_SESSION_REFRESHED, s, cb, data, &r);
	return rc != 0 ? rc : submit(st, r);
}

int store_body_digest(const void *body, size_t len, char hex[STORE_SHA256_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char d[WC_SHA256_DIGEST_SIZE];

	hex[0] = '\0';
	if ((body == NULL && len > 0) || len > UINT32_MAX ||
	    wc_Sha256Hash(body, (word32)len, d) != 0)
		return STORE_ERR_IO;
	for (size_t i = 0; i < sizeof(d); i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 0xf];
	}
	hex[STORE_SHA256_HEX] = '\0';
	return 0;
}

/* ---- the command line ---- */

int store_verify_at(const store_where *w, FILE *report)
{
	const store_backend_ops *ops = backend_of(w);
	int rc = ops != NULL ? ops->verify(w, report) : STORE_ERR_INVALID;

	fprintf(report, "result: %s\n", rc == 0 ? "sound" : store_strerror(rc));
	return rc;
}

int store_export_journal_at(const store_where *w, FILE *out)
{
	const store_backend_ops *ops = backend_of(w);

	return ops != NULL ? ops->export_journal(w, out) : STORE_ERR_INVALID;
}

int store_verify(const char *path, FILE *report)
{
	const store_where w = { .kind = STORE_SQLITE, .state_dir = path };

	return store_verify_at(&w, report);
}

int store_export_journal(const char *path, FILE *out)
{
	const store_where w = { .kind = STORE_SQLITE, .state_dir = path };

	return store_export_journal_at(&w, out);
}

/* The SQLite key check, checked against key; the walk stops after it. */
#define WALK_STOP 1

struct key_walk {
	sealed_key *key;
	bool seen, ok;
};

static int walk_key_check(const unsigned char *v, size_t n, void *arg)
{
	static const char text[] = KEY_CHECK_TEXT;
	unsigned char plain[sizeof(text)];
	struct key_walk *k = arg;
	size_t len = 0;

	k->seen = true;
	k->ok = sealed_open(k->key, KEY_CHECK_AD, sizeof(KEY_CHECK_AD) - 1, v, n, plain,
			    sizeof(plain), &len) == 0 &&
		len == sizeof(text) - 1 && memcmp(plain, text, len) == 0;
	explicit_bzero(plain, sizeof(plain));
	return WALK_STOP;
}

int store_import_sqlite(const store_where *w, const char *sqlite_dir, sealed_key *key,
			FILE *report)
{
	const store_backend_ops *ops = store_postgres_backend();
	struct key_walk kw = { .key = key };
	const store_walk walk = { .key_check = walk_key_check, .arg = &kw };
	char err[STORE_ERR_MAX] = "", holder[STORE_HOLDER_MAX + 1];
	store_counters cnt;
	store_where where;
	store *lock = NULL;
	store_backend *be = NULL;
	int rc;

	if (w == NULL || w->kind != STORE_POSTGRES || w->conninfo == NULL || sqlite_dir == NULL ||
	    key == NULL) {
		fprintf(report, "import: a PostgreSQL target, a SQLite state directory and the "
			"state key are needed\n");
		return STORE_ERR_INVALID;
	}
	memset(&cnt, 0, sizeof(cnt));
	where = *w;
	if (where.holder == NULL || !holder_valid(where.holder)) {
		store_holder_make(holder);
		where.holder = holder;
	}
	/* no daemon may use the SQLite state meanwhile: its directory lock */
	lock = calloc(1, sizeof(*lock));
	if (lock == NULL) {
		rc = STORE_ERR_NOMEM;
		text_printf(err, sizeof(err), "out of memory");
		goto out;
	}
	lock->lock_fd = -1;
	rc = take_dir(lock, sqlite_dir, err);
	if (rc != 0)
		goto out;
	rc = store_sqlite_walk(sqlite_dir, &walk, err);
	if (rc == WALK_STOP)
		rc = 0;
	if (rc == 0 && (!kw.seen || !kw.ok)) {
		text_printf(err, sizeof(err), "the SQLite state of %s %s", sqlite_dir,
			    kw.seen ? "was sealed with another key" : "has no key check (never "
			    "opened with a key): nothing to migrate");
		rc = kw.seen ? STORE_ERR_KEY : STORE_ERR_INVALID;
	}
	if (rc != 0)
		goto out;
	/* the target: its schema made, its key check the same key's */
	rc = ops->open(&where, &cnt, &be, err);
	if (rc == 0)
		rc = key_check(ops, be, key, err);
	ops->close(be);
	be = NULL;
	if (rc == 0)
		rc = store_postgres_import(&where, sqlite_dir, report, err);
out:
	if (rc != 0)
		fprintf(report, "import failed: %s\n", err[0] != '\0' ? err : store_strerror(rc));
	if (lock != NULL && lock->lock_fd >= 0)
		close(lock->lock_fd);
	free(lock);
	return rc;
}


