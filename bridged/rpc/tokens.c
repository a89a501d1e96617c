/* B2B token single flight and customer sessions. */
#include "tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doku/wallet/v1/wallet.pb-c.h"
#include "log.h"
#include "counters.h"
#include "secrets.h"
#include "snap_code.h"
#include "snap_endpoint.h"
#include "snap_err.h"
#include "snap_answer.h"
#include "snap_json.h"
#include "snap_request.h"
#include "snap_time.h"

#define SESSION_BUCKETS_MIN 64u

struct session {
	struct session *next;       /* hash chain */
	char ref[TOK_REF_MAX + 1];
	secret *access;
	secret *refresh;
	time_t access_until;        /* wall clock */
	time_t refresh_until;
	time_t margin;              /* renew this long before access_until */
	unsigned gen;
	struct tok_fetch *refreshing;
	int64_t fleet_gen;          /* a fleet's: the database's generation held here */
	uint64_t fleet_checked;     /* a fleet's: uv_now() + 1 when the database last said "serve it" */
	int64_t refused_gen;        /* a fleet's: the generation DOKU refused */
};

enum fetch_kind { FETCH_B2B, FETCH_OPEN, FETCH_REFRESH };

struct tok_fetch {
	struct list_node node;      /* in tokens.fetches */
	tokens *t;
	tok_profile *tp;            /* NULL once the profile state is gone */
	enum fetch_kind kind;
	unsigned gen;               /* tp->reset_gen when started */
	char ref[TOK_REF_MAX + 1];  /* OPEN / REFRESH: the session */
	config *cfg;                /* one reference */
	struct list_node waiters;
	snap_arena arena;
	up_req up;
};

struct tok_profile {
	struct list_node node;      /* in tokens.profiles */
	tokens *t;
	char *name;
	char *client_id;            /* identity: a change forgets the tokens */
	char *base_url;
	unsigned reset_gen;
	/* B2B */
	secret *b2b;
	unsigned b2b_gen;
	uint64_t b2b_expiry_ms;     /* uv_now() clock */
	uint64_t b2b_margin_ms;
	time_t b2b_until;           /* wall clock, for Health */
	struct tok_fetch *b2b_fetch;
	uint64_t fetches;
	/* the fleet's token (a shared store): b2b is the fleet's of generation
	   fleet_gen; DOKU's lifetime slides ttl_ms after the last use */
	struct fleet_op *b2b_op;    /* the fleet request under way; NULL: none */
	int64_t fleet_gen;          /* the database's generation of b2b; 0: none */
	int64_t refused_gen;        /* a generation DOKU refused: lease past it */
	uint64_t ttl_ms;
	uint64_t last_use_ms;       /* uv_now(): the fleet's last use, as far as known here */
	uint64_t recorded_ms;       /* uv_now(): this daemon's last store_b2b_used */
	bool lease_held;
	/* customer sessions */
	struct session **buckets;
	unsigned nbuckets, nsessions;
	unsigned max_sessions;
	unsigned evict_hand;        /* a fleet's: the bucket sessions_room looks at next */
};

/* One request of a fleet daemon for the fleet's B2B token (a shared store):
 * GET the row; a live token is taken; else LEASE past the lapsed or refused
 * generation; the holder FETCHes from DOKU and PUBLISHes; the others WAIT
 * (polling with backoff) for what it publishes. Store callbacks may run
 * after tokens_free: an op is then orphaned (t NULL) and frees itself. */
enum fleet_stage { FLEET_GET, FLEET_LEASE, FLEET_FETCH, FLEET_PUBLISH, FLEET_WAIT };

struct fleet_op {
	struct list_node node;      /* in tokens.ops */
	tokens *t;                  /* NULL: orphaned by tokens_free */
	tok_profile *tp;            /* NULL once the profile state is gone */
	enum fleet_stage stage;
	bool in_store;              /* a store request is out (its callback will run) */
	config *cfg;                /* one reference: the profile's credentials for a fetch */
	const profile *p;
	int64_t expect_gen;         /* LEASE: the generation found lapsed or refused */
	unsigned backoff_ms;
	uint64_t wait_t0;           /* uv_now() when the wait for another holder began; 0: none */
	uv_timer_t timer;           /* WAIT */
	bool timer_open;
	tok_wait fetch_wait;        /* FETCH: on the token request */
	struct list_node waiters;
};

struct tokens {
	uv_loop_t *loop;
	upstream *up;
	const snap_endpoint *ep_b2b, *ep_b2b2c; /* the token endpoints */
	store *st;                  /* sessions persist here; NULL: memory only */
	struct list_node profiles;
	struct list_node fetches;
	struct list_node ops;       /* fleet_op */
	struct list_node sess_ops;  /* sess_op */
	bool fleet;                 /* st is shared: the B2B token is the fleet's */
};

/* Whether the tokens are a fleet's (a shared store: docs/fleet.md). */
static bool fleet_on(const tok_profile *tp)
{
	return tp->t->fleet && tp->t->st != NULL;
}

static void session_unpersist(tok_profile *tp, const char *ref);

/* ---- helpers ------------------------------------------------------------------ */

bool tokens_ref_valid(const char *ref)
{
	size_t n = 0;

	if (ref == NULL)
		return false;
	for (; ref[n] != '\0'; n++) {
		char ch = ref[n];

		if (n >= TOK_REF_MAX)
			return false;
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return n > 0;
}

static uint32_t hash_ref(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static struct session **session_slot(const tok_profile *tp, const char *ref)
{
	struct session **pp;

	if (tp->nbuckets == 0)
		return NULL;
	pp = &tp->buckets[hash_ref(ref) & (tp->nbuckets - 1)];
	while (*pp != NULL && strcmp((*pp)->ref, ref) != 0)
		pp = &(*pp)->next;
	return pp;
}

static struct session *session_find(const tok_profile *tp, const char *ref)
{
	struct session **pp = session_slot(tp, ref);

	return pp != NULL ? *pp : NULL;
}

static void session_free(struct session *s)
{
	secret_free(s->access);
	secret_free(s->refresh);
	explicit_bzero(s, sizeof(*s));
	free(s);
}

/* Forget s here only (a fleet's cache entry replaced, or closed elsewhere). */
static void session_forget(tok_profile *tp, struct session *s)
{
	struct session **pp = session_slot(tp, s->ref);

	if (pp != NULL && *pp == s) {
		*pp = s->next;
		tp->nsessions--;
	}
	session_free(s);
}

/* Forget s, here and in the store. */
static void session_unlink_free(tok_profile *tp, struct session *s)
{
	struct session **pp = session_slot(tp, s->ref);

	session_unpersist(tp, s->ref);
	if (pp != NULL && *pp == s) {
		*pp = s->next;
		tp->nsessions--;
	}
	session_free(s);
}

static int sessions_grow(tok_profile *tp)
{
	unsigned n = tp->nbuckets == 0 ? SESSION_BUCKETS_MIN : tp->nbuckets * 2;
	struct session **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < tp->nbuckets; i++) {
		struct session *s = tp->buckets[i], *next;

		for (; s != NULL; s = next) {
			uint32_t k = hash_ref(s->ref) & (n - 1);

			next = s->next;
			s->next = b[k];
			b[k] = s;
		}
	}
	free(tp->buckets);
	tp->buckets = b;
	tp->nbuckets = n;
	return 0;
}

static void sessions_clear(tok_profile *tp)
{
	for (unsigned i = 0; i < tp->nbuckets; i++) {
		struct session *s = tp->buckets[i], *next;

		for (; s != NULL; s = next) {
			next = s->next;
			session_free(s);
		}
		tp->buckets[i] = NULL;
	}
	tp->nsessions = 0;
}

/* Drop sessions whose refresh token has lapsed (when the table is full). */
static void sessions_sweep(tok_profile *tp, time_t now)
{
	for (unsigned i = 0; i < tp->nbuckets; i++) {
		struct session **pp = &tp->buckets[i];

		while (*pp != NULL) {
			struct session *s = *pp;

			if (s->refreshing == NULL && now >= s->refresh_until && now >= s->access_until) {
				*pp = s->next;
				tp->nsessions--;
				session_unpersist(tp, s->ref);
				session_free(s);
				continue;
			}
			pp = &s->next;
		}
	}
}

/* Room in the table for one more session: 0, or TOK_ERR_LIMIT. Lapsed
 * sessions go first. A fleet's table is a cache of the database's (every use
 * asks the database), so when it is still full one entry not being refreshed
 * goes too, taken round the buckets in turn; it is read back when used. A
 * single daemon's table is its sessions: max_customer_sessions refuses. */
static int sessions_room(tok_profile *tp, time_t now)
{
	if (tp->nsessions < tp->max_sessions)
		return 0;
	sessions_sweep(tp, now);
	if (tp->nsessions < tp->max_sessions)
		return 0;
	if (!fleet_on(tp))
		return TOK_ERR_LIMIT;
	for (unsigned n = 0; n < tp->nbuckets; n++) {
		unsigned i = tp->evict_hand++ & (tp->nbuckets - 1);

		for (struct session *e = tp->buckets[i]; e != NULL; e = e->next) {
			if (e->refreshing == NULL) {
				session_forget(tp, e);
				return 0;
			}
		}
	}
	return TOK_ERR_LIMIT; /* every one of them is being refreshed */
}

static void copy_str(char *dst, size_t dstsz, const char *src)
{
	snprintf(dst, dstsz, "%s", src != NULL ? src : "");
}

/* ---- persistence (store.h) ---------------------------------------------------- */

static void on_persisted(const store_result *res, void *data)
{
	(void)data;
	if (res->status != 0 && res->status != STORE_ERR_NOT_FOUND)
		log_msg(LOG_LVL_ERROR, "customer session not saved in the state database: %s",
			store_strerror(res->status));
}

/* The store's view of s (borrowing its tokens). */
static void session_view(const tok_profile *tp, const struct session *s, store_session *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->profile = tp->name;
	ss->customer_ref = s->ref;
	ss->access_token = (const char *)s->access->data;
	ss->access_len = s->access->len;
	ss->access_expiry = (int64_t)s->access_until;
	ss->refresh_token = s->refresh != NULL ? (const char *)s->refresh->data : "";
	ss->refresh_len = s->refresh != NULL ? s->refresh->len : 0;
	ss->refresh_expiry = (int64_t)s->refresh_until;
}

static void session_persist(tok_profile *tp, const struct session *s)
{
	store_session ss;
	int rc;

	if (tp->t->st == NULL || s->access == NULL)
		return;
	session_view(tp, s, &ss);
	rc = store_session_put(tp->t->st, &ss, on_persisted, NULL);
	if (rc != 0)
		log_msg(LOG_LVL_ERROR, "customer session not saved in the state database: %s",
			store_strerror(rc));
}

static void session_unpersist(tok_profile *tp, const char *ref)
{
	int rc;

	if (tp->t->st == NULL)
		return;
	rc = store_session_delete(tp->t->st, tp->name, ref, on_persisted, NULL);
	if (rc != 0)
		log_msg(LOG_LVL_ERROR, "customer session not deleted from the state database: %s",
			store_strerror(rc));
}

/* ---- token requests ------------------------------------------------------------ */

static void fetch_done(up_req *r);

static void fetch_free(struct tok_fetch *f)
{
	list_del(&f->node);
	snap_arena_free(&f->arena);
	config_unref(f->cfg);
	free(f);
}

/* Start a request to the token endpoint. auth_code / refresh: the grant's value. */
static int fetch_start(tok_profile *tp, config *cfg, const profile *p, enum fetch_kind kind,
		       const char *ref, const char *grant_value, struct tok_fetch **out)
{
	tokens *t = tp->t;
	const snap_endpoint *ep = kind == FETCH_B2B ? t->ep_b2b : t->ep_b2b2c;
	Doku__Wallet__V1__AccessTokenRequest req = DOKU__WALLET__V1__ACCESS_TOKEN_REQUEST__INIT;
	char ts[SNAP_TIMESTAMP_LEN + 1];
	snap_request_in in = { 0 };
	snap_request rq;
	struct tok_fetch *f;
	snap_buf body;
	int rc;

	*out = NULL;
	if (ep == NULL || p->key == NULL)
		return TOK_ERR_INTERNAL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return TOK_ERR_INTERNAL;
	f->t = t;
	f->tp = tp;
	f->kind = kind;
	f->gen = tp->reset_gen;
	copy_str(f->ref, sizeof(f->ref), ref);
	list_init(&f->waiters);
	list_add_tail(&t->fetches, &f->node);
	snap_arena_init(&f->arena, TOK_ARENA_MAX);
	f->cfg = config_ref(cfg);

	switch (kind) {
	case FETCH_B2B: req.grant_type = "client_credentials"; break;
	case FETCH_OPEN: req.grant_type = "authorization_code"; req.auth_code = (char *)grant_value; break;
	case FETCH_REFRESH: req.grant_type = "refresh_token"; req.refresh_token = (char *)grant_value; break;
	}
	snap_buf_init(&body, &f->arena, TOK_ARENA_MAX / 4);
	if (snap_time_format(time(NULL), ts) != 0 || snap_json_encode(&req.base, 0, &body) != 0)
		goto fail;
	in.ep = ep;
	in.base_url = p->base_url;
	in.client_id = p->client_id;
	in.timestamp = ts;
	in.body = body.data;
	in.body_len = body.len;
	in.key = p->key;
	if (snap_request_build(&f->arena, &in, &rq) != 0)
		goto fail;
	f->up.url = rq.url;
	f->up.ca_file = p->ca_file;
	f->up.body = body.data;
	f->up.body_len = body.len;
	for (unsigned i = 0; i < rq.nheaders; i++)
		f->up.headers[i] = rq.headers[i];
	f->up.nheaders = rq.nheaders;
	f->up.timeout_ms = TOK_FETCH_TIMEOUT_MS;
	f->up.arena = &f->arena;
	f->up.done = fetch_done;
	f->up.data = f;
	rc = upstream_start(t->up, &f->up);
	if (rc != 0)
		goto fail;
	if (kind == FETCH_B2B)
		tp->fetches++;
	log_msg(LOG_LVL_DEBUG, "token request started: profile=%s kind=%s", tp->name,
		kind == FETCH_B2B ? "b2b" : kind == FETCH_OPEN ? "b2b2c-open" : "b2b2c-refresh");
	*out = f;
	return 0;
fail:
	fetch_free(f);
	return TOK_ERR_INTERNAL;
}

static time_t parse_expiry(const char *s, time_t now, time_t fallback)
{
	time_t t;

	if (s == NULL || s[0] == '\0' || snap_time_parse(s, strlen(s), &t) != 0)
		return now + fallback;
	return t;
}

static time_t margin_for(time_t life)
{
	time_t m = life / 3;

	return m < TOK_MARGIN_S ? m : TOK_MARGIN_S;
}

/* Keep the tokens of a successful answer. 0 or a tok_err. */
static int fetch_store(struct tok_fetch *f, const Doku__Wallet__V1__AccessTokenResponse *resp,
		       tok_result *res)
{
	tok_profile *tp = f->tp;
	time_t now = time(NULL);
	struct session *s;
	secret *access = NULL, *refresh = NULL;

	if (resp->access_token == NULL || resp->access_token[0] == '\0' ||
	    strlen(resp->access_token) > TOK_LEN_MAX)
		return TOK_ERR_UNAVAILABLE;
	if (secret_new(resp->access_token, strlen(resp->access_token), &access) != 0)
		return TOK_ERR_INTERNAL;
	if (f->kind == FETCH_B2B) {
		long ttl = TOK_B2B_TTL_DEFAULT_S;
		char *end;

		if (resp->expires_in != NULL && resp->expires_in[0] != '\0') {
			ttl = strtol(resp->expires_in, &end, 10);
			if (*end != '\0' && *end != '.')
				ttl = TOK_B2B_TTL_DEFAULT_S;
		}
		if (ttl < TOK_TTL_MIN_S || ttl > TOK_TTL_MAX_S)
			ttl = TOK_B2B_TTL_DEFAULT_S;
		secret_free(tp->b2b);
		tp->b2b = access;
		tp->b2b_gen++;
		tp->b2b_expiry_ms = uv_now(f->t->loop) + (uint64_t)ttl * 1000u;
		tp->b2b_margin_ms = (uint64_t)margin_for(ttl) * 1000u;
		tp->b2b_until = now + ttl;
		tp->ttl_ms = (uint64_t)ttl * 1000u;       /* the fleet's view: sliding */
		tp->last_use_ms = uv_now(f->t->loop);
		tp->fleet_gen = 0;                        /* until published */
		tp->refused_gen = 0;
		return 0;
	}
	if (resp->refresh_token != NULL && resp->refresh_token[0] != '\0') {
		if (strlen(resp->refresh_token) > TOK_LEN_MAX ||
		    secret_new(resp->refresh_token, strlen(resp->refresh_token), &refresh) != 0) {
			secret_free(access);
			return TOK_ERR_INTERNAL;
		}
	}
	s = session_find(tp, f->ref);
	if (f->kind == FETCH_REFRESH && (s == NULL || s->refreshing != f)) {
		/* closed (or replaced) while its refresh was in flight: the answer
		 * is stale; a replacing session serves the waiters */
		secret_free(access);
		secret_free(refresh);
		return s != NULL ? 0 : TOK_ERR_NO_SESSION;
	}
	if (s == NULL) {
		if (sessions_room(tp, now) != 0 ||
		    (tp->nsessions >= tp->nbuckets && sessions_grow(tp) != 0)) {
			secret_free(access);
			secret_free(refresh);
			return TOK_ERR_LIMIT;
		}
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			secret_free(access);
			secret_free(refresh);
			return TOK_ERR_INTERNAL;
		}
		copy_str(s->ref, sizeof(s->ref), f->ref);
		{
			struct session **pp = session_slot(tp, s->ref);

			*pp = s;
		}
		tp->nsessions++;
	} else if (f->kind == FETCH_OPEN) {
		/* a refresh of the replaced session may be in flight: its answer is stale */
		s->refreshing = NULL;
	}
	secret_free(s->access);
	s->access = access;
	if (refresh != NULL || f->kind == FETCH_OPEN) {
		secret_free(s->refresh);
		s->refresh = refresh;
	}
	s->access_until = parse_expiry(resp->access_token_expiry_time, now, TOK_B2B_TTL_DEFAULT_S);
	if (refresh != NULL || f->kind == FETCH_OPEN)
		s->refresh_until = s->refresh != NULL ?
			parse_expiry(resp->refresh_token_expiry_time, now, TOK_TTL_MAX_S) : 0;
	s->margin = margin_for(s->access_until - now);
	s->gen++;
	if (!fleet_on(tp))
		session_persist(tp, s); /* a fleet's: fetch_done (open) or the session op (refresh) */
	copy_str(res->token_type, sizeof(res->token_type), resp->token_type);
	copy_str(res->access_expiry, sizeof(res->access_expiry), resp->access_token_expiry_time);
	copy_str(res->refresh_expiry, sizeof(res->refresh_expiry), resp->refresh_token_expiry_time);
	return 0;
}

/* Wake the waiters of a list detached from its owner (they may queue new waits). */
static void wake_all(struct list_node *waiters, const tok_result *res)
{
	while (!list_empty(waiters)) {
		tok_wait *w = list_entry(waiters->next, tok_wait, node);

		list_del(&w->node);
		w->fn(w, res);
	}
}

/* A fleet's new session: its callers wait until it is in the database. */
struct open_put {
	struct list_node waiters;
	tok_result res;
	char ref[TOK_REF_MAX + 1];
};

static void on_open_put(const store_result *sr, void *data)
{
	struct open_put *op = data;

	if (sr->status != 0) {
		log_msg(LOG_LVL_ERROR, "fleet: customer session %s not saved in the state database: %s; "
			"it serves through this daemon only", op->ref, store_strerror(sr->status));
	}
	wake_all(&op->waiters, &op->res);
	free(op);
}

/* 0: the waiters (moved from *waiters) learn res once the put is done. */
static int open_put(tok_profile *tp, const char *ref, struct list_node *waiters,
		    const tok_result *res)
{
	const struct session *s = session_find(tp, ref);
	struct open_put *op;
	store_session ss;

	if (s == NULL || s->access == NULL || (op = calloc(1, sizeof(*op))) == NULL)
		return -1;
	session_view(tp, s, &ss);
	op->res = *res;
	copy_str(op->ref, sizeof(op->ref), ref);
	if (store_session_put(tp->t->st, &ss, on_open_put, op) != 0) {
		free(op);
		return -1;
	}
	list_move_all(waiters, &op->waiters);
	return 0;
}

static void fetch_done(up_req *r)
{
	struct tok_fetch *f = r->data;
	tok_profile *tp = f->tp;
	const Doku__Wallet__V1__AccessTokenResponse *resp;
	const snap_endpoint *ep = f->kind == FETCH_B2B ? f->t->ep_b2b : f->t->ep_b2b2c;
	tok_result res;
	struct list_node waiters;
	snap_answer a;
	enum fetch_kind f_kind;
	char f_ref[TOK_REF_MAX + 1];

	memset(&res, 0, sizeof(res));
	res.http = r->status == UP_OK ? (unsigned)r->http : 0;
	if (r->status != UP_OK) {
		res.status = r->status == UP_ERR_TIMEOUT ? TOK_ERR_TIMEOUT : TOK_ERR_UNAVAILABLE;
		snprintf(res.response_message, sizeof(res.response_message), "token request failed: %.120s",
			 r->error);
		goto wake;
	}
	snap_answer_read(ep->response, (unsigned)r->http, r->response.data, r->response.len,
			 &f->arena, &a);
	resp = (const Doku__Wallet__V1__AccessTokenResponse *)a.msg;
	if (a.have_code) {
		copy_str(res.response_code, sizeof(res.response_code), a.code.text);
		copy_str(res.response_message, sizeof(res.response_message), a.response_message);
	}
	if (tp == NULL || f->gen != tp->reset_gen) {
		res.status = TOK_ERR_UNAVAILABLE;
		copy_str(res.response_message, sizeof(res.response_message),
			 "the profile changed while its token was fetched");
		goto wake;
	}
	if (r->http >= 200 && r->http < 300 && a.have_code && snap_code_is_success(&a.code)) {
		res.status = fetch_store(f, resp, &res);
		if (res.status != 0 && res.response_message[0] == '\0')
			copy_str(res.response_message, sizeof(res.response_message),
				 "unusable token answer");
	} else {
		int http = a.have_code ? a.code.http : (int)r->http;

		res.status = http >= 400 && http < 500 ? TOK_ERR_REFUSED : TOK_ERR_UNAVAILABLE;
		if (res.response_message[0] == '\0')
			snprintf(res.response_message, sizeof(res.response_message),
				 "token endpoint answered HTTP %ld", r->http);
		if (f->kind == FETCH_REFRESH && res.status == TOK_ERR_REFUSED) {
			struct session *s = session_find(tp, f->ref);

			if (s != NULL && s->refreshing == f)
				session_unlink_free(tp, s);
		}
	}
	log_msg(res.status == 0 ? LOG_LVL_INFO : LOG_LVL_WARNING,
		"token %s: profile=%s http=%u rc=%s%s%s", res.status == 0 ? "issued" : "refused",
		tp->name, res.http, res.response_code[0] ? res.response_code : "-",
		res.status == 0 ? "" : " msg=", res.status == 0 ? "" : res.response_message);
wake:
	counters_token(tp != NULL ? tp->name : NULL,
		       f->kind == FETCH_B2B ? COUNTERS_TOKEN_B2B :
		       f->kind == FETCH_OPEN ? COUNTERS_TOKEN_OPEN : COUNTERS_TOKEN_REFRESH,
		       res.status == 0 ? COUNTERS_TOKEN_OK :
		       res.status == TOK_ERR_REFUSED ? COUNTERS_TOKEN_REFUSED : COUNTERS_TOKEN_FAILED);
	if (tp != NULL) {
		if (f->kind == FETCH_B2B && tp->b2b_fetch == f)
			tp->b2b_fetch = NULL;
		if (f->kind == FETCH_REFRESH) {
			struct session *s = session_find(tp, f->ref);

			if (s != NULL && s->refreshing == f)
				s->refreshing = NULL;
		}
	}
	/* Detach the waiters first: their callbacks may queue new waits. */
	f_kind = f->kind;
	copy_str(f_ref, sizeof(f_ref), f->ref);
	list_move_all(&f->waiters, &waiters);
	fetch_free(f);
	if (tp != NULL && f_kind == FETCH_OPEN && res.status == 0 && fleet_on(tp) &&
	    open_put(tp, f_ref, &waiters, &res) == 0)
		return; /* the callers learn once the fleet can use the session */
	wake_all(&waiters, &res);
}

/* ---- the fleet's B2B token (a shared store) ------------------------------------------------ */

/* Whether the token held here is live with TOK_FLEET_SPARE_MS to spare: its
 * lifetime runs ttl_ms from the fleet's last use, which is at least last_use_ms. */
static bool fleet_live(const tok_profile *tp, uint64_t now)
{
	return tp->b2b != NULL && !(tp->refused_gen != 0 && tp->fleet_gen == tp->refused_gen) &&
	       now + TOK_FLEET_SPARE_MS < tp->last_use_ms + tp->ttl_ms;
}

/* What a row says of its token: live (idle short of the lifetime, with time
 * to spare), lapsed for certain (past it by more than the lag of the use
 * records and DOKU's one-second clock), or neither yet. */
enum row_verdict { ROW_LIVE, ROW_LAPSED, ROW_UNSURE };

static enum row_verdict row_judge(const tok_profile *tp, const store_b2b *row)
{
	int64_t ttl_ms = row->ttl_s * 1000;

	if (row->token == NULL || (tp->refused_gen != 0 && row->gen == tp->refused_gen))
		return ROW_LAPSED;
	if (row->idle_ms + (int64_t)TOK_FLEET_SPARE_MS < ttl_ms)
		return ROW_LIVE;
	if (row->idle_ms > ttl_ms + (int64_t)TOK_FLEET_LAPSE_SLACK_MS)
		return ROW_LAPSED;
	return ROW_UNSURE;
}

static void on_used(const store_result *res, void *data)
{
	(void)data;
	if (res->status != 0 && res->status != STORE_ERR_NOT_FOUND)
		log_msg(LOG_LVL_DEBUG, "fleet: the B2B token's use not recorded: %s",
			store_strerror(res->status));
}

/* The token is about to be used: the fleet learns it (at most once per
 * TOK_FLEET_RECORD_MS from this daemon), for DOKU slides its lifetime. */
static void fleet_use(tok_profile *tp, uint64_t now)
{
	tp->last_use_ms = now;
	if (tp->fleet_gen == 0 || (tp->recorded_ms != 0 && now - tp->recorded_ms < TOK_FLEET_RECORD_MS))
		return;
	tp->recorded_ms = now;
	if (store_b2b_used(tp->t->st, tp->name, tp->fleet_gen, on_used, NULL) != 0)
		tp->recorded_ms = 0;
}

/* Take the row's token as this daemon's. */
static int fleet_adopt(tok_profile *tp, const store_b2b *row)
{
	uint64_t now = uv_now(tp->t->loop);
	secret *tok = NULL;

	if (tp->b2b == NULL || tp->fleet_gen != row->gen) {
		if (row->token_len == 0 || row->token_len > TOK_LEN_MAX ||
		    secret_new(row->token, row->token_len, &tok) != 0)
			return TOK_ERR_INTERNAL;
		secret_free(tp->b2b);
		tp->b2b = tok;
		tp->b2b_gen++;
		tp->fleet_gen = row->gen;
	}
	tp->ttl_ms = (uint64_t)row->ttl_s * 1000u;
	tp->last_use_ms = now > (uint64_t)row->idle_ms ? now - (uint64_t)row->idle_ms : 0;
	tp->b2b_until = time(NULL) + (time_t)((int64_t)tp->ttl_ms - row->idle_ms) / 1000;
	tp->recorded_ms = 0;
	return 0;
}

static void fleet_op_free(struct fleet_op *op);

static void on_op_timer_closed(uv_handle_t *h)
{
	struct fleet_op *op = h->data;

	config_unref(op->cfg);
	free(op);
}

static void fleet_op_free(struct fleet_op *op)
{
	if (op->tp != NULL && op->tp->b2b_op == op)
		op->tp->b2b_op = NULL;
	list_del(&op->node);
	if (op->timer_open) {
		uv_close((uv_handle_t *)&op->timer, on_op_timer_closed);
		return;
	}
	config_unref(op->cfg);
	free(op);
}

/* The op is over: its waiters learn the result r. */
static void fleet_finish(struct fleet_op *op, const tok_result *r)
{
	struct list_node waiters;

	if (op->wait_t0 != 0 && op->t != NULL)
		counters_fleet_wait((uv_now(op->t->loop) - op->wait_t0) * 1000u);
	list_move_all(&op->waiters, &waiters);
	fleet_op_free(op);
	wake_all(&waiters, r);
}

static void fleet_fail(struct fleet_op *op, int status, const char *msg)
{
	tok_result r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	copy_str(r.response_message, sizeof(r.response_message), msg);
	fleet_finish(op, &r);
}

static void fleet_ok(struct fleet_op *op)
{
	tok_result r;

	memset(&r, 0, sizeof(r));
	fleet_finish(op, &r);
}

static void on_fleet_row(const store_result *res, void *data);
static void fleet_get(struct fleet_op *op);

/* The fleet's database failed: a token held here serves while it is live
 * (reads keep working); else the call cannot have one (no daemon fetches on
 * its own: that would knock out the fleet's token). */
static void fleet_db_failed(struct fleet_op *op, int status)
{
	tok_profile *tp = op->tp;

	if (tp != NULL && fleet_live(tp, uv_now(op->t->loop))) {
		fleet_ok(op); /* the caller asks again and finds it live */
		return;
	}
	{
		char msg[TOK_MSG_MAX];

		snprintf(msg, sizeof(msg), "the fleet's state database is unavailable (%s) and no live "
			 "B2B token is held", store_strerror(status));
		fleet_fail(op, TOK_ERR_UNAVAILABLE, msg);
	}
}

static void on_wait_timer(uv_timer_t *h)
{
	struct fleet_op *op = h->data;

	fleet_get(op);
}

/* Another daemon holds the lease, or the token's state is not sure yet: ask again soon. */
static void fleet_wait(struct fleet_op *op, unsigned delay_ms)
{
	op->stage = FLEET_WAIT;
	if (op->wait_t0 == 0)
		op->wait_t0 = uv_now(op->t->loop);
	if (!op->timer_open) {
		uv_timer_init(op->t->loop, &op->timer);
		op->timer.data = op;
		op->timer_open = true;
	}
	uv_timer_start(&op->timer, on_wait_timer, delay_ms, 0);
}

static unsigned next_backoff(struct fleet_op *op)
{
	unsigned d = op->backoff_ms == 0 ? TOK_FLEET_POLL_MIN_MS : op->backoff_ms * 2u;

	op->backoff_ms = d < TOK_FLEET_POLL_MAX_MS ? d : TOK_FLEET_POLL_MAX_MS;
	return op->backoff_ms;
}

static void fleet_get(struct fleet_op *op)
{
	int rc;

	if (op->tp == NULL) {
		fleet_fail(op, TOK_ERR_UNAVAILABLE, "the profile changed while its token was sought");
		return;
	}
	if (list_empty(&op->waiters) && op->stage == FLEET_WAIT) {
		fleet_op_free(op); /* every caller went away */
		return;
	}
	op->stage = FLEET_GET;
	rc = store_b2b_get(op->t->st, op->tp->name, op->tp->client_id, on_fleet_row, op);
	if (rc != 0) {
		fleet_db_failed(op, rc);
		return;
	}
	op->in_store = true;
}

static void fleet_lease(struct fleet_op *op, int64_t expect_gen)
{
	int rc;

	op->stage = FLEET_LEASE;
	op->expect_gen = expect_gen;
	rc = store_b2b_lease(op->t->st, op->tp->name, op->tp->client_id, expect_gen,
			     TOK_FLEET_LEASE_MS, on_fleet_row, op);
	if (rc != 0) {
		fleet_db_failed(op, rc);
		return;
	}
	op->in_store = true;
}

static void on_released(const store_result *res, void *data)
{
	(void)data;
	if (res->status != 0 && res->status != STORE_ERR_STATE)
		log_msg(LOG_LVL_WARNING, "fleet: the B2B lease was not released (%s); it lapses alone",
			store_strerror(res->status));
}

/* FETCH: the token request of the lease's holder ended. */
static void on_fleet_fetched(tok_wait *w, const tok_result *r)
{
	struct fleet_op *op = list_entry(w, struct fleet_op, fetch_wait);
	tok_profile *tp = op->tp;
	int rc;

	if (r->status != 0 || tp == NULL || tp->b2b == NULL) {
		if (tp != NULL) {
			tp->lease_held = false;
			if (store_b2b_release(op->t->st, tp->name, on_released, NULL) != 0)
				log_msg(LOG_LVL_WARNING, "fleet: the B2B lease was not released; it lapses alone");
		}
		fleet_finish(op, r);
		return;
	}
	op->stage = FLEET_PUBLISH;
	rc = store_b2b_publish(op->t->st, tp->name, tp->client_id, (const char *)tp->b2b->data,
			       tp->b2b->len, (int64_t)(tp->ttl_ms / 1000u), on_fleet_row, op);
	if (rc != 0) {
		/* the token serves here; the fleet finds it lapsed and leases again */
		log_msg(LOG_LVL_WARNING, "fleet: the new B2B token was not published: %s",
			store_strerror(rc));
		tp->lease_held = false;
		tp->fleet_gen = 0;
		fleet_ok(op);
		return;
	}
	op->in_store = true;
}

static void fleet_fetch(struct fleet_op *op)
{
	tok_profile *tp = op->tp;
	struct tok_fetch *f;
	int rc;

	op->stage = FLEET_FETCH;
	tp->lease_held = true;
	counters_fleet_lease();
	rc = fetch_start(tp, op->cfg, op->p, FETCH_B2B, NULL, NULL, &f);
	if (rc != 0) {
		tok_result r;

		memset(&r, 0, sizeof(r));
		r.status = rc;
		snprintf(r.response_message, sizeof(r.response_message), "cannot start the token request");
		on_fleet_fetched(&op->fetch_wait, &r);
		return;
	}
	op->fetch_wait.fn = on_fleet_fetched;
	op->fetch_wait.data = op;
	list_add_tail(&f->waiters, &op->fetch_wait.node);
}

/* A store request of op ended with the row as it is now. */
static void on_fleet_row(const store_result *res, void *data)
{
	struct fleet_op *op = data;
	tok_profile *tp = op->tp;
	const store_b2b *row = res->b2b;
	store_b2b none;
	enum row_verdict v;

	op->in_store = false;
	if (op->t == NULL) {
		fleet_op_free(op);
		return;
	}
	if (tp == NULL) {
		fleet_fail(op, TOK_ERR_UNAVAILABLE, "the profile changed while its token was sought");
		return;
	}
	if (op->stage == FLEET_PUBLISH) {
		tp->lease_held = false;
		if (res->status == 0 && row != NULL) {
			tp->fleet_gen = row->gen;
			tp->last_use_ms = uv_now(op->t->loop);
			tp->recorded_ms = tp->last_use_ms;
			log_msg(LOG_LVL_INFO, "fleet: B2B token of profile %s published (generation %lld)",
				tp->name, (long long)row->gen);
		} else {
			log_msg(LOG_LVL_WARNING, "fleet: the new B2B token of profile %s was not published "
				"(%s): it serves here only", tp->name, store_strerror(res->status));
			tp->fleet_gen = 0;
		}
		fleet_ok(op);
		return;
	}
	if (res->status != 0 && res->status != STORE_ERR_NOT_FOUND) {
		fleet_db_failed(op, res->status);
		return;
	}
	if (row == NULL) {
		memset(&none, 0, sizeof(none));
		row = &none;
	}
	v = row_judge(tp, row);
	log_msg(LOG_LVL_DEBUG, "fleet: profile %s: %s: status %d, generation %lld, idle %lld ms, "
		"lease %s%s, verdict %d", tp->name, op->stage == FLEET_GET ? "get" : "lease",
		res->status, (long long)row->gen, (long long)row->idle_ms,
		row->lease_holder[0] != '\0' ? row->lease_holder : "none",
		row->leased ? " (ours)" : "", (int)v);
	if (v == ROW_LIVE && (op->stage == FLEET_GET || row->gen != op->expect_gen)) {
		if (fleet_adopt(tp, row) != 0) {
			fleet_fail(op, TOK_ERR_INTERNAL, "out of memory");
			return;
		}
		fleet_ok(op);
		return;
	}
	if (op->stage == FLEET_LEASE && row->leased) {
		fleet_fetch(op);
		return;
	}
	if (op->stage == FLEET_GET && v == ROW_LAPSED && row->lease_holder[0] == '\0') {
		fleet_lease(op, row->gen);
		return;
	}
	/* another daemon is fetching, or the token may yet be live: look again soon */
	fleet_wait(op, v == ROW_UNSURE ? TOK_FLEET_POLL_MAX_MS : next_backoff(op));
}

static int fleet_start(tok_profile *tp, config *cfg, const profile *p)
{
	struct fleet_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return TOK_ERR_INTERNAL;
	op->t = tp->t;
	op->tp = tp;
	op->cfg = config_ref(cfg);
	op->p = p;
	list_init(&op->waiters);
	list_node_init(&op->fetch_wait.node);
	list_add_tail(&tp->t->ops, &op->node);
	tp->b2b_op = op;
	op->stage = FLEET_GET;
	if (store_b2b_get(tp->t->st, tp->name, tp->client_id, on_fleet_row, op) != 0) {
		tp->b2b_op = NULL;
		list_del(&op->node);
		config_unref(op->cfg);
		free(op);
		return 1; /* no database: the caller decides */
	}
	op->in_store = true;
	return 0;
}

/* tokens_b2b of a fleet daemon. */
static int fleet_b2b(tok_profile *tp, config *cfg, const profile *p, tok_wait *w)
{
	uint64_t now = uv_now(tp->t->loop);

	if (tp->b2b_op == NULL && fleet_live(tp, now)) {
		fleet_use(tp, now);
		return 0;
	}
	if (tp->b2b_op == NULL && fleet_start(tp, cfg, p) != 0)
		return TOK_ERR_UNAVAILABLE; /* no database, and no live token held */
	list_add_tail(&tp->b2b_op->waiters, &w->node);
	return 1;
}

/* ---- the fleet's customer sessions (a shared store) ---------------------------------------- */

/* A fleet daemon reads a session from the database on every use: opened
 * through any daemon it serves here, closed through any it is refused here.
 * Its refresh is leased like the B2B token (compare, then refresh). A
 * session op serves every call of one ref meanwhile. */
struct sess_op {
	struct list_node node;      /* in tokens.sess_ops */
	tokens *t;                  /* NULL: orphaned by tokens_free */
	tok_profile *tp;
	char ref[TOK_REF_MAX + 1];
	enum fleet_stage stage;     /* GET, LEASE, FETCH, PUBLISH, WAIT */
	bool in_store;
	config *cfg;
	const profile *p;
	int64_t gen;                /* the database's generation of the session read */
	unsigned backoff_ms;
	uv_timer_t timer;
	bool timer_open;
	tok_wait fetch_wait;
	struct list_node waiters;
};

static void on_sess_timer_closed(uv_handle_t *h)
{
	struct sess_op *op = h->data;

	config_unref(op->cfg);
	free(op);
}

static void sess_op_free(struct sess_op *op)
{
	list_del(&op->node);
	if (op->timer_open) {
		uv_close((uv_handle_t *)&op->timer, on_sess_timer_closed);
		return;
	}
	config_unref(op->cfg);
	free(op);
}

static void sess_finish(struct sess_op *op, int status, const char *msg)
{
	struct list_node waiters;
	tok_result r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	copy_str(r.response_message, sizeof(r.response_message), msg);
	if (status == 0 && op->tp != NULL && op->t != NULL) {
		struct session *s = session_find(op->tp, op->ref);

		/* the waiters ask again in this loop turn: served from here */
		if (s != NULL)
			s->fleet_checked = uv_now(op->t->loop) + 1;
	}
	list_move_all(&op->waiters, &waiters);
	sess_op_free(op);
	wake_all(&waiters, &r);
}

/* The session as the database has it, into this daemon's table (replacing
 * an older generation). 0, or a tok_err. */
static int sess_adopt(tok_profile *tp, const store_session *ss)
{
	struct session *s = session_find(tp, ss->customer_ref);

	if (s != NULL && s->fleet_gen == ss->gen && s->access != NULL)
		return 0;
	int rc;

	if (s != NULL)
		session_forget(tp, s);
	else if (sessions_room(tp, time(NULL)) != 0)
		return TOK_ERR_LIMIT;
	rc = tokens_session_restore(tp, ss);
	if (rc != 0)
		return rc;
	s = session_find(tp, ss->customer_ref);
	if (s == NULL)
		return TOK_ERR_INTERNAL;
	s->fleet_gen = ss->gen;
	s->gen = (unsigned)ss->gen; /* one per version: a stale invalidate matches none */
	return 0;
}

static void on_sess_row(const store_result *res, void *data);

static void sess_get(struct sess_op *op)
{
	op->stage = FLEET_GET;
	if (store_session_get(op->t->st, op->tp->name, op->ref, on_sess_row, op) != 0) {
		sess_finish(op, TOK_ERR_UNAVAILABLE, "the fleet's state database is unavailable");
		return;
	}
	op->in_store = true;
}

static void on_sess_timer(uv_timer_t *h)
{
	struct sess_op *op = h->data;

	if (op->tp == NULL) {
		sess_finish(op, TOK_ERR_UNAVAILABLE, "the profile changed");
		return;
	}
	if (list_empty(&op->waiters)) {
		sess_op_free(op);
		return;
	}
	sess_get(op);
}

static void sess_wait(struct sess_op *op)
{
	unsigned d = op->backoff_ms == 0 ? TOK_FLEET_POLL_MIN_MS : op->backoff_ms * 2u;

	op->backoff_ms = d < TOK_FLEET_POLL_MAX_MS ? d : TOK_FLEET_POLL_MAX_MS;
	op->stage = FLEET_WAIT;
	if (!op->timer_open) {
		uv_timer_init(op->t->loop, &op->timer);
		op->timer.data = op;
		op->timer_open = true;
	}
	uv_timer_start(&op->timer, on_sess_timer, op->backoff_ms, 0);
}

/* FETCH: the refresh request of the lease's holder ended. */
static void on_sess_fetched(tok_wait *w, const tok_result *r)
{
	struct sess_op *op = list_entry(w, struct sess_op, fetch_wait);
	tok_profile *tp = op->tp;
	struct session *s = tp != NULL ? session_find(tp, op->ref) : NULL;
	store_session ss;

	if (r->status != 0 || s == NULL || s->access == NULL) {
		/* a refused refresh token: the session is over everywhere */
		if (tp != NULL && r->status == TOK_ERR_REFUSED)
			session_unpersist(tp, op->ref);
		sess_finish(op, r->status != 0 ? r->status : TOK_ERR_NO_SESSION, r->response_message);
		return;
	}
	session_view(tp, s, &ss);
	op->stage = FLEET_PUBLISH;
	if (store_session_refreshed(op->t->st, &ss, on_sess_row, op) != 0) {
		log_msg(LOG_LVL_WARNING, "fleet: the refreshed session %s was not stored", op->ref);
		sess_finish(op, 0, "");
		return;
	}
	op->in_store = true;
}

static void sess_fetch(struct sess_op *op, struct session *s)
{
	struct tok_fetch *f;
	int rc;

	op->stage = FLEET_FETCH;
	rc = fetch_start(op->tp, op->cfg, op->p, FETCH_REFRESH, op->ref,
			 (const char *)s->refresh->data, &f);
	if (rc != 0) {
		sess_finish(op, rc, "cannot start the token request");
		return;
	}
	s->refreshing = f;
	op->fetch_wait.fn = on_sess_fetched;
	op->fetch_wait.data = op;
	list_add_tail(&f->waiters, &op->fetch_wait.node);
}

static void on_sess_row(const store_result *res, void *data)
{
	struct sess_op *op = data;
	tok_profile *tp = op->tp;
	const store_session *ss = res->n_sessions > 0 ? &res->sessions[0] : NULL;
	time_t now = time(NULL);
	struct session *s;

	op->in_store = false;
	if (op->t == NULL) {
		sess_op_free(op);
		return;
	}
	if (tp == NULL) {
		sess_finish(op, TOK_ERR_UNAVAILABLE, "the profile changed");
		return;
	}
	if (op->stage == FLEET_PUBLISH) {
		s = session_find(tp, op->ref);
		if (res->status == 0 && s != NULL && ss != NULL)
			s->fleet_gen = ss->gen;
		else if (res->status != 0)
			log_msg(LOG_LVL_WARNING, "fleet: the refreshed session %s was not stored: %s",
				op->ref, store_strerror(res->status));
		sess_finish(op, 0, "");
		return;
	}
	if (res->status == STORE_ERR_NOT_FOUND || res->status == STORE_ERR_SEALED) {
		/* closed through another daemon; or a row that does not open (tampered,
		   another key): never used, as at start-up */
		s = session_find(tp, op->ref);
		if (s != NULL)
			session_forget(tp, s);
		if (res->status == STORE_ERR_SEALED)
			log_msg(LOG_LVL_ERROR, "fleet: customer session %s does not open (a tampered row, "
				"or sealed with another key): refused", op->ref);
		sess_finish(op, TOK_ERR_NO_SESSION, "no such customer session");
		return;
	}
	if (res->status != 0 || ss == NULL) {
		/* the database is down: a live session held here still serves */
		s = session_find(tp, op->ref);
		if (s != NULL && s->access != NULL && now + s->margin < s->access_until)
			sess_finish(op, 0, "");
		else
			sess_finish(op, TOK_ERR_UNAVAILABLE, "the fleet's state database is unavailable");
		return;
	}
	{
		int rc = sess_adopt(tp, ss);

		if (rc != 0) {
			sess_finish(op, rc, rc == TOK_ERR_NO_SESSION ? "the customer session expired" :
				    rc == TOK_ERR_LIMIT ? "max_customer_sessions reached" :
				    "out of memory");
			return;
		}
	}
	s = session_find(tp, op->ref);
	op->gen = ss->gen;
	if (s->access != NULL && now + s->margin < s->access_until &&
	    !(s->refused_gen != 0 && s->refused_gen == ss->gen)) {
		sess_finish(op, 0, "");
		return;
	}
	if (s->refresh == NULL || now >= s->refresh_until) {
		sess_finish(op, TOK_ERR_NO_SESSION, "the customer session expired");
		return;
	}
	if (op->stage == FLEET_LEASE && ss->leased) {
		sess_fetch(op, s);
		return;
	}
	if (op->stage == FLEET_GET) {
		op->stage = FLEET_LEASE;
		if (store_session_lease(op->t->st, tp->name, op->ref, ss->gen, TOK_FLEET_LEASE_MS,
					on_sess_row, op) != 0) {
			sess_finish(op, TOK_ERR_UNAVAILABLE, "the fleet's state database is unavailable");
			return;
		}
		op->in_store = true;
		return;
	}
	sess_wait(op); /* another daemon refreshes it */
}

/* tokens_session of a fleet daemon. */
static int fleet_session(tok_profile *tp, config *cfg, const profile *p, const char *ref,
			 tok_wait *w)
{
	struct sess_op *op = NULL;
	struct session *s = session_find(tp, ref);

	if (s != NULL && s->access != NULL && s->fleet_checked == uv_now(tp->t->loop) + 1 &&
	    time(NULL) + s->margin < s->access_until)
		return 0; /* the database said so in this loop turn */
	for (struct list_node *k = tp->t->sess_ops.next; k != &tp->t->sess_ops; k = k->next) {
		struct sess_op *o = list_entry(k, struct sess_op, node);

		if (o->tp == tp && strcmp(o->ref, ref) == 0 && o->stage != FLEET_PUBLISH) {
			op = o;
			break;
		}
	}
	if (op == NULL) {
		op = calloc(1, sizeof(*op));
		if (op == NULL)
			return TOK_ERR_INTERNAL;
		op->t = tp->t;
		op->tp = tp;
		copy_str(op->ref, sizeof(op->ref), ref);
		op->cfg = config_ref(cfg);
		op->p = p;
		list_init(&op->waiters);
		list_node_init(&op->fetch_wait.node);
		list_add_tail(&tp->t->sess_ops, &op->node);
		op->stage = FLEET_GET;
		if (store_session_get(tp->t->st, tp->name, ref, on_sess_row, op) != 0) {
			sess_op_free(op);
			if (s != NULL && s->access != NULL && time(NULL) + s->margin < s->access_until)
				return 0;
			return TOK_ERR_UNAVAILABLE;
		}
		op->in_store = true;
	}
	list_add_tail(&op->waiters, &w->node);
	return 1;
}

/* ---- public --------------------------------------------------------------------- */

int tokens_new(uv_loop_t *loop, upstream *up, const snap_endpoint *b2b,
	       const snap_endpoint *b2b2c, tokens **out)
{
	tokens *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (t == NULL)
		return -ENOMEM;
	t->loop = loop;
	t->up = up;
	t->ep_b2b = b2b;
	t->ep_b2b2c = b2b2c;
	list_init(&t->profiles);
	list_init(&t->fetches);
	list_init(&t->ops);
	list_init(&t->sess_ops);
	*out = t;
	return 0;
}

static void profile_reset(tok_profile *tp)
{
	secret_free(tp->b2b);
	tp->b2b = NULL;
	tp->b2b_gen++;
	tp->b2b_until = 0;
	tp->b2b_expiry_ms = 0;
	tp->b2b_fetch = NULL;
	tp->fleet_gen = 0;
	tp->refused_gen = 0;
	if (tp->b2b_op != NULL) {
		tp->b2b_op->tp = NULL;
		tp->b2b_op = NULL;
	}
	tp->lease_held = false;
	for (struct list_node *k = tp->t->sess_ops.next; k != &tp->t->sess_ops; k = k->next) {
		struct sess_op *op = list_entry(k, struct sess_op, node);

		if (op->tp == tp)
			op->tp = NULL;
	}
	sessions_clear(tp);
	tp->reset_gen++;
}

static void profile_free(tok_profile *tp)
{
	profile_reset(tp);
	list_del(&tp->node);
	free(tp->buckets);
	free(tp->name);
	free(tp->client_id);
	free(tp->base_url);
	free(tp);
}

void tokens_free(tokens *t)
{
	if (t == NULL)
		return;
	while (!list_empty(&t->fetches)) {
		struct tok_fetch *f = list_entry(t->fetches.next, struct tok_fetch, node);

		upstream_cancel(t->up, &f->up);
		while (!list_empty(&f->waiters))
			list_del(f->waiters.next);
		fetch_free(f);
	}
	while (!list_empty(&t->ops)) {
		struct fleet_op *op = list_entry(t->ops.next, struct fleet_op, node);

		while (!list_empty(&op->waiters))
			list_del(op->waiters.next);
		if (op->tp != NULL)
			op->tp->b2b_op = NULL;
		op->tp = NULL;
		list_del(&op->node);
		if (op->in_store) {
			op->t = NULL; /* its store callback frees it */
			continue;
		}
		fleet_op_free(op);
	}
	while (!list_empty(&t->sess_ops)) {
		struct sess_op *op = list_entry(t->sess_ops.next, struct sess_op, node);

		while (!list_empty(&op->waiters))
			list_del(op->waiters.next);
		op->tp = NULL;
		list_del(&op->node);
		if (op->in_store) {
			op->t = NULL;
			continue;
		}
		sess_op_free(op);
	}
	while (!list_empty(&t->profiles))
		profile_free(list_entry(t->profiles.next, tok_profile, node));
	free(t);
}

static tok_profile *find_profile(tokens *t, const char *name)
{
	for (struct list_node *n = t->profiles.next; n != &t->profiles; n = n->next) {
		tok_profile *tp = list_entry(n, tok_profile, node);

		if (strcmp(tp->name, name) == 0)
			return tp;
	}
	return NULL;
}

int tokens_reconfigure(tokens *t, const config *cfg)
{
	struct list_node *n, *next;

	for (n = t->profiles.next; n != &t->profiles; n = next) {
		tok_profile *tp = list_entry(n, tok_profile, node);
		const profile *p = config_profile(cfg, tp->name);

		next = n->next;
		if (p == NULL) {
			for (struct list_node *k = t->fetches.next; k != &t->fetches; k = k->next) {
				struct tok_fetch *f = list_entry(k, struct tok_fetch, node);

				if (f->tp == tp)
					f->tp = NULL;
			}
			profile_free(tp);
			continue;
		}
		if (strcmp(tp->client_id, p->client_id) != 0 || strcmp(tp->base_url, p->base_url) != 0) {
			char *id = strdup(p->client_id), *url = strdup(p->base_url);

			if (id == NULL || url == NULL) {
				free(id);
				free(url);
				return -ENOMEM;
			}
			log_msg(LOG_LVL_INFO, "profile %s: credentials changed, tokens and sessions forgotten",
				tp->name);
			profile_reset(tp);
			free(tp->client_id);
			free(tp->base_url);
			tp->client_id = id;
			tp->base_url = url;
		}
		tp->max_sessions = cfg->max_sessions;
	}
	for (unsigned i = 0; i < cfg->nprofiles; i++) {
		const profile *p = &cfg->profiles[i];
		tok_profile *tp;

		if (find_profile(t, p->name) != NULL)
			continue;
		tp = calloc(1, sizeof(*tp));
		if (tp == NULL)
			return -ENOMEM;
		tp->t = t;
		tp->name = strdup(p->name);
		tp->client_id = strdup(p->client_id);
		tp->base_url = strdup(p->base_url);
		tp->max_sessions = cfg->max_sessions;
		list_add_tail(&t->profiles, &tp->node);
		if (tp->name == NULL || tp->client_id == NULL || tp->base_url == NULL)
			return -ENOMEM;
	}
	return 0;
}

tok_profile *tokens_profile(tokens *t, const profile *p)
{
	return p != NULL ? find_profile(t, p->name) : NULL;
}

void tokens_cancel(tok_wait *w)
{
	if (list_linked(&w->node))
		list_del(&w->node);
}

int tokens_b2b(tok_profile *tp, config *cfg, const profile *p, tok_wait *w)
{
	uint64_t now = uv_now(tp->t->loop);
	int rc;

	if (fleet_on(tp))
		return fleet_b2b(tp, cfg, p, w);
	if (tp->b2b_fetch == NULL && tp->b2b != NULL && now + tp->b2b_margin_ms < tp->b2b_expiry_ms)
		return 0;
	if (tp->b2b_fetch == NULL) {
		rc = fetch_start(tp, cfg, p, FETCH_B2B, NULL, NULL, &tp->b2b_fetch);
		if (rc != 0)
			return rc;
	}
	list_add_tail(&tp->b2b_fetch->waiters, &w->node);
	return 1;
}

const char *tokens_b2b_value(const tok_profile *tp, unsigned *gen)
{
	*gen = tp->b2b_gen;
	return tp->b2b != NULL ? (const char *)tp->b2b->data : NULL;
}

void tokens_b2b_invalidate(tok_profile *tp, unsigned gen)
{
	if (tp->b2b != NULL && tp->b2b_gen == gen && fleet_on(tp) && tp->fleet_gen != 0) {
		/* compare, then refresh: the fleet leases past this generation only */
		tp->refused_gen = tp->fleet_gen;
		return;
	}
	if (tp->b2b != NULL && tp->b2b_gen == gen) {
		secret_free(tp->b2b);
		tp->b2b = NULL;
		tp->b2b_until = 0;
		tp->b2b_expiry_ms = 0;
	}
}

int tokens_session_open(tok_profile *tp, config *cfg, const profile *p, const char *ref,
			const char *auth_code, tok_wait *w)
{
	struct tok_fetch *f;
	int rc;

	if (!tokens_ref_valid(ref))
		return TOK_ERR_NO_SESSION;
	if (session_find(tp, ref) == NULL && sessions_room(tp, time(NULL)) != 0)
		return TOK_ERR_LIMIT;
	rc = fetch_start(tp, cfg, p, FETCH_OPEN, ref, auth_code, &f);
	if (rc != 0)
		return rc;
	list_add_tail(&f->waiters, &w->node);
	return 1;
}

int tokens_session(tok_profile *tp, config *cfg, const profile *p, const char *ref, tok_wait *w)
{
	struct session *s = session_find(tp, ref);
	time_t now = time(NULL);
	int rc;

	if (fleet_on(tp))
		return fleet_session(tp, cfg, p, ref, w);
	if (s == NULL)
		return TOK_ERR_NO_SESSION;
	if (s->refreshing == NULL) {
		if (s->access != NULL && now + s->margin < s->access_until)
			return 0;
		if (s->refresh == NULL || now >= s->refresh_until) {
			session_unlink_free(tp, s);
			return TOK_ERR_NO_SESSION;
		}
		rc = fetch_start(tp, cfg, p, FETCH_REFRESH, ref, (const char *)s->refresh->data,
				 &s->refreshing);
		if (rc != 0)
			return rc;
	}
	list_add_tail(&s->refreshing->waiters, &w->node);
	return 1;
}

const char *tokens_session_value(const tok_profile *tp, const char *ref, unsigned *gen)
{
	const struct session *s = session_find(tp, ref);

	*gen = s != NULL ? s->gen : 0;
	return s != NULL && s->access != NULL ? (const char *)s->access->data : NULL;
}

void tokens_session_invalidate(tok_profile *tp, const char *ref, unsigned gen)
{
	struct session *s = session_find(tp, ref);

	if (s != NULL && s->gen == gen) {
		s->access_until = 0;
		s->refused_gen = s->fleet_gen; /* a fleet's: refresh past this generation only */
	}
}

bool tokens_session_close(tok_profile *tp, const char *ref)
{
	struct session *s = session_find(tp, ref);

	if (s == NULL)
		return false;
	session_unlink_free(tp, s);
	return true;
}

struct sess_end {
	void (*done)(int status, bool existed, void *data);
	void *data;
};

static void on_sess_end(const store_result *res, void *data)
{
	struct sess_end *e = data;

	e->done(res->status == STORE_ERR_NOT_FOUND ? 0 : res->status, res->status == 0, e->data);
	free(e);
}

int tokens_session_end(tok_profile *tp, const char *ref,
		       void (*done)(int status, bool existed, void *data), void *data)
{
	struct session *s = session_find(tp, ref);
	struct sess_end *e;

	if (!fleet_on(tp)) {
		if (s != NULL)
			session_unlink_free(tp, s);
		return s != NULL ? 1 : 2;
	}
	if (s != NULL)
		session_forget(tp, s);
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return TOK_ERR_INTERNAL;
	e->done = done;
	e->data = data;
	if (store_session_delete(tp->t->st, tp->name, ref, on_sess_end, e) != 0) {
		free(e);
		return TOK_ERR_UNAVAILABLE;
	}
	return 0;
}

void tokens_set_store(tokens *t, store *st)
{
	t->st = st;
	t->fleet = st != NULL && store_shared(st);
}

unsigned tokens_leases_held(const tokens *t)
{
	unsigned n = 0;

	for (struct list_node *k = t->profiles.next; k != &t->profiles; k = k->next)
		n += list_entry(k, tok_profile, node)->lease_held;
	return n;
}

int tokens_session_restore(tok_profile *tp, const store_session *ss)
{
	time_t now = time(NULL);
	struct session *s;
	secret *access = NULL, *refresh = NULL;

	if (!tokens_ref_valid(ss->customer_ref) || ss->access_len == 0 ||
	    ss->access_len > TOK_LEN_MAX || ss->refresh_len > TOK_LEN_MAX)
		return TOK_ERR_INTERNAL;
	if ((time_t)ss->access_expiry <= now && (ss->refresh_len == 0 || (time_t)ss->refresh_expiry <= now)) {
		session_unpersist(tp, ss->customer_ref);
		return TOK_ERR_NO_SESSION;
	}
	if (session_find(tp, ss->customer_ref) != NULL)
		return 0;
	if (tp->nsessions >= tp->max_sessions)
		return TOK_ERR_LIMIT;
	if (tp->nsessions >= tp->nbuckets && sessions_grow(tp) != 0)
		return TOK_ERR_INTERNAL;
	if (secret_new(ss->access_token, ss->access_len, &access) != 0 ||
	    (ss->refresh_len > 0 && secret_new(ss->refresh_token, ss->refresh_len, &refresh) != 0)) {
		secret_free(access);
		return TOK_ERR_INTERNAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		secret_free(access);
		secret_free(refresh);
		return TOK_ERR_INTERNAL;
	}
	copy_str(s->ref, sizeof(s->ref), ss->customer_ref);
	s->access = access;
	s->refresh = refresh;
	s->access_until = (time_t)ss->access_expiry;
	s->refresh_until = refresh != NULL ? (time_t)ss->refresh_expiry : 0;
	s->margin = margin_for(s->access_until - now > 0 ? s->access_until - now : 0);
	s->gen = 1;
	*session_slot(tp, s->ref) = s;
	tp->nsessions++;
	return 0;
}

void tokens_health(const tok_profile *tp, tok_health *h)
{
	uint64_t now = uv_now(tp->t->loop);

	h->b2b_valid = fleet_on(tp) ? fleet_live(tp, now) : tp->b2b != NULL && now < tp->b2b_expiry_ms;
	h->b2b_valid_until = tp->b2b != NULL ? tp->b2b_until : 0;
	h->sessions = tp->nsessions;
	h->fetches = tp->fetches;
}

/* ---- sessions read back at start-up ------------------------------------------------ */

struct load {
	tokens *t;
	store *st;
	const config *cfg;
	bool done;
	unsigned restored, lapsed, bad, failed;
};

static void on_sessions(const store_result *res, void *data)
{
	struct load *ld = data;
	int rc;

	if (res->status != 0) {
		log_msg(LOG_LVL_ERROR, "state: customer sessions cannot be read: %s",
			store_strerror(res->status));
		ld->done = true;
		return;
	}
	for (size_t i = 0; i < res->n_sessions; i++) {
		const store_session *s = &res->sessions[i];
		tok_profile *tp = tokens_profile(ld->t, config_profile(ld->cfg, s->profile));

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
		rc = store_session_list(ld->st, res->next, on_sessions, ld);
		if (rc == 0)
			return;
		log_msg(LOG_LVL_ERROR, "state: customer sessions cannot be read: %s", store_strerror(rc));
	}
	ld->done = true;
}

void tokens_restore(tokens *t, store *st, const config *cfg)
{
	struct load ld;

	memset(&ld, 0, sizeof(ld));
	ld.t = t;
	ld.st = st;
	ld.cfg = cfg;
	tokens_set_store(t, st);
	if (store_session_list(st, NULL, on_sessions, &ld) != 0)
		ld.done = true;
	while (!ld.done)
		uv_run(t->loop, UV_RUN_ONCE); /* before anything is served */
	log_msg(LOG_LVL_INFO, "state: %s open; journal %s; customer sessions: %u restored, %u lapsed "
		"(deleted), %u unreadable, %u not loaded",
		store_shared(st) ? "the fleet's PostgreSQL" : cfg->state_dir, cfg->journal ? "on" : "OFF",
		ld.restored, ld.lapsed, ld.bad, ld.failed);
}
