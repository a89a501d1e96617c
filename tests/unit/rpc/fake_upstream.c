/* The fake upstream of fake_upstream.h: io/upstream.h without curl. */
#include "fake_upstream.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct answer {
	unsigned seq;
	int status;
	long http;
	bool sent;
	char *body;
};

struct upstream {
	uv_loop_t *loop;
	uv_idle_t idle;
	bool idle_on;
	unsigned max_host_connections;
	fake_req *reqs[FAKE_REQ_MAX];
	up_req *live[FAKE_REQ_MAX];   /* the caller's request while in flight */
	unsigned nreqs;
	unsigned active;
	struct answer queue[FAKE_REQ_MAX]; /* answers waiting for the loop, in order */
	unsigned nqueue;
	fake_start_fn hook;
	void *hook_data;
	fake_start_fn after;
	void *after_data;
	int refuse_next;
};

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	assert(d != NULL);
	if (n > 0)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

int upstream_new(uv_loop_t *loop, unsigned max_host_connections, upstream **out)
{
	upstream *u = calloc(1, sizeof(*u));

	*out = NULL;
	if (u == NULL)
		return -ENOMEM;
	u->loop = loop;
	u->max_host_connections = max_host_connections;
	if (uv_idle_init(loop, &u->idle) != 0) {
		free(u);
		return -ENOMEM;
	}
	u->idle.data = u;
	*out = u;
	return 0;
}

void upstream_set_max_host_connections(upstream *u, unsigned n)
{
	u->max_host_connections = n;
}

static void on_idle(uv_idle_t *h);

static void schedule(upstream *u)
{
	if (!u->idle_on && u->nqueue > 0) {
		uv_idle_start(&u->idle, on_idle);
		u->idle_on = true;
	}
}

/* Deliver the answers queued before this turn of the loop. */
static void on_idle(uv_idle_t *h)
{
	upstream *u = h->data;
	unsigned n = u->nqueue;

	for (unsigned k = 0; k < n && u->nqueue > 0; k++) {
		struct answer a = u->queue[0];
		fake_req *rq = u->reqs[a.seq];
		up_req *r = u->live[a.seq];

		memmove(&u->queue[0], &u->queue[1], (u->nqueue - 1) * sizeof(u->queue[0]));
		u->nqueue--;
		if (r == NULL || !rq->in_flight) { /* cancelled meanwhile */
			free(a.body);
			continue;
		}
		rq->in_flight = false;
		rq->delivered = true;
		u->live[a.seq] = NULL;
		u->active--;
		r->active = false;
		r->status = a.status;
		r->sent = a.sent || r->sent;
		r->http = a.status == UP_OK ? a.http : 0;
		if (a.status == UP_OK && a.body != NULL)
			(void)snap_buf_append(&r->response, a.body, strlen(a.body));
		if (a.status != UP_OK)
			snprintf(r->error, sizeof(r->error), "%s",
				 a.status == UP_ERR_TIMEOUT ? "fake: operation timed out"
							    : "fake: connection reset by peer");
		free(a.body);
		r->done(r); /* r may be gone now */
		if (u->after != NULL)
			u->after(rq, u->after_data);
	}
	if (u->nqueue == 0 && u->idle_on) {
		uv_idle_stop(&u->idle);
		u->idle_on = false;
	}
}

int upstream_start(upstream *u, up_req *r)
{
	fake_req *rq;

	if (u->refuse_next != 0) {
		int rc = u->refuse_next;

		u->refuse_next = 0;
		return rc;
	}
	if (r->nheaders > UP_HEADERS_MAX || u->nreqs >= FAKE_REQ_MAX)
		return UP_ERR_INTERNAL;
	r->status = 0;
	r->http = 0;
	r->sent = false;
	r->resent = false;
	r->too_big = false;
	r->error[0] = '\0';
	snap_buf_init(&r->response, r->arena, UP_RESPONSE_MAX);
	rq = calloc(1, sizeof(*rq));
	assert(rq != NULL);
	rq->seq = u->nreqs;
	rq->url = dup_n(r->url, strlen(r->url));
	for (unsigned i = 0; i < r->nheaders; i++)
		rq->headers[i] = dup_n(r->headers[i], strlen(r->headers[i]));
	rq->nheaders = r->nheaders;
	rq->body = dup_n(r->body != NULL ? r->body : "", r->body != NULL ? r->body_len : 0);
	rq->body_len = r->body_len;
	rq->fresh_connection = r->fresh_connection;
	rq->timeout_ms = r->timeout_ms;
	rq->in_flight = true;
	u->reqs[u->nreqs] = rq;
	u->live[u->nreqs] = r;
	u->nreqs++;
	r->active = true;
	u->active++;
	if (u->hook != NULL)
		u->hook(rq, u->hook_data);
	return 0;
}

void upstream_cancel(upstream *u, up_req *r)
{
	if (!r->active)
		return;
	for (unsigned i = 0; i < u->nreqs; i++) {
		if (u->live[i] == r) {
			u->live[i] = NULL;
			u->reqs[i]->in_flight = false;
			u->reqs[i]->cancelled = true;
			break;
		}
	}
	r->active = false;
	r->status = UP_ERR_CANCELLED;
	u->active--;
}

unsigned upstream_active(const upstream *u)
{
	return u->active;
}

static void on_closed(uv_handle_t *h)
{
	free(h->data);
}

void upstream_close(upstream *u)
{
	if (u == NULL)
		return;
	assert(u->active == 0); /* no request may be in flight */
	for (unsigned i = 0; i < u->nqueue; i++)
		free(u->queue[i].body);
	for (unsigned i = 0; i < u->nreqs; i++) {
		fake_req *rq = u->reqs[i];

		free(rq->url);
		for (unsigned k = 0; k < rq->nheaders; k++)
			free(rq->headers[k]);
		free(rq->body);
		free(rq);
	}
	uv_idle_stop(&u->idle);
	uv_close((uv_handle_t *)&u->idle, on_closed);
}

/* ---- the test's side ----------------------------------------------------------------------- */

unsigned fake_up_count(const upstream *u)
{
	return u->nreqs;
}

const fake_req *fake_up_req(const upstream *u, unsigned i)
{
	return i < u->nreqs ? u->reqs[i] : NULL;
}

const char *fake_req_header(const fake_req *rq, const char *name)
{
	size_t n = strlen(name);

	for (unsigned i = 0; i < rq->nheaders; i++) {
		const char *h = rq->headers[i];

		if (strncasecmp(h, name, n) == 0 && h[n] == ':')
			return h[n + 1] == ' ' ? h + n + 2 : h + n + 1;
	}
	return NULL;
}

bool fake_req_url_ends(const fake_req *rq, const char *suffix)
{
	size_t a = strlen(rq->url), b = strlen(suffix);

	return a >= b && strcmp(rq->url + a - b, suffix) == 0;
}

unsigned fake_up_pending(const upstream *u)
{
	unsigned n = 0;

	for (unsigned i = 0; i < u->nreqs; i++)
		if (u->reqs[i]->in_flight && !u->reqs[i]->answered)
			n++;
	return n;
}

void fake_up_set_sent(upstream *u, unsigned i)
{
	assert(i < u->nreqs && u->live[i] != NULL);
	u->live[i]->sent = true;
}

static void enqueue(upstream *u, unsigned i, int status, long http, bool sent, const char *body)
{
	fake_req *rq;

	assert(i < u->nreqs);
	rq = u->reqs[i];
	assert(rq->in_flight && !rq->answered);
	assert(u->nqueue < FAKE_REQ_MAX);
	rq->answered = true;
	u->queue[u->nqueue].seq = i;
	u->queue[u->nqueue].status = status;
	u->queue[u->nqueue].http = http;
	u->queue[u->nqueue].sent = sent;
	u->queue[u->nqueue].body = body != NULL ? dup_n(body, strlen(body)) : NULL;
	u->nqueue++;
	schedule(u);
}

void fake_up_answer(upstream *u, unsigned i, long http, const char *body)
{
	enqueue(u, i, UP_OK, http, true, body);
}

void fake_up_fail(upstream *u, unsigned i, int status, bool sent)
{
	assert(status < 0);
	enqueue(u, i, status, 0, sent, NULL);
}

void fake_up_on_start(upstream *u, fake_start_fn fn, void *data)
{
	u->hook = fn;
	u->hook_data = data;
}

void fake_up_after_done(upstream *u, fake_start_fn fn, void *data)
{
	u->after = fn;
	u->after_data = data;
}

void fake_up_refuse_next(upstream *u, int status)
{
	u->refuse_next = status;
}
