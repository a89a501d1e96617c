/* libcurl multi on the libuv loop. */
#include "upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "list.h"
#include "log.h"
#include "counters.h"
#include "snap_err.h"

#define US_PER_MS 1000u

/* One easy handle with the options every request shares already set
 * (easy_configure); a request sets only its own (upstream_start). */
struct up_easy {
	CURL *e;
	bool configured;
	char *ca_file;          /* the CA file it was configured with (NULL: libcurl's) */
};

struct upstream {
	uv_loop_t *loop;
	CURLM *multi;
	CURLSH *share;
	uv_timer_t timer;
	struct up_easy *pool[UP_EASY_POOL_MAX];
	unsigned npool;
	struct list_node socks; /* struct up_sock: watched, or idle (kept for its fd) */
	unsigned nidle;         /* idle ones */
	unsigned active;        /* requests in flight */
	unsigned handles;       /* uv handles not yet closed */
	bool default_cafile;    /* libcurl has a default CA file (bundle) */
	bool closing;
};

/* One socket of curl's, watched by libuv. A connection's socket (opened by
 * on_opensocket, hence closed through on_closesocket) keeps its watcher
 * while curl does not watch it ("idle": a kept-alive connection back in its
 * pool, between requests), for the next request on the same fd: no
 * uv_close, no uv_poll_init (an ioctl and two epoll_ctl) and no allocation
 * per request. An idle watcher stays started for reading, unreferenced (it
 * keeps no loop alive), as the next request wants it: no epoll_ctl either
 * (uv_poll_start takes the fd out of epoll and puts it back in, even for the
 * same events, so it is called only when they change). An idle socket that
 * becomes readable (DOKU closed the connection) is stopped; curl finds out
 * when it takes the connection again. It is released when curl closes the
 * fd, or when more than UP_IDLE_SOCKS_MAX are idle (the oldest). Any other
 * socket curl watches (its resolver's socket pair, which it closes itself)
 * is released as soon as curl stops watching it: a watcher must never
 * outlive its fd, or closing it later would take a reused fd number out of
 * epoll. */
#define UP_IDLE_SOCKS_MAX 128
struct up_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	upstream *u;
	bool conn;              /* a connection's: curl closes it through on_closesocket */
	bool idle;
	int events;             /* UV_READABLE | UV_WRITABLE it is started for; 0: stopped */
	struct list_node node;
};

static void check_done(upstream *u);
static void on_poll(uv_poll_t *h, int status, int events);

static void maybe_free(upstream *u)
{
	if (u->closing && u->handles == 0)
		free(u);
}

static void on_handle_closed(uv_handle_t *h)
{
	upstream *u = h->data;

	if (h->type == UV_POLL)
		free(list_entry((uv_poll_t *)(void *)h, struct up_sock, poll));
	u->handles--;
	maybe_free(u);
}

/* Watch s for events (0: stop), with a system call only when they change. */
static int sock_watch(struct up_sock *s, int events)
{
	int rc;

	if (s->events == events)
		return 0;
	rc = events == 0 ? uv_poll_stop(&s->poll) : uv_poll_start(&s->poll, events, on_poll);
	s->events = rc == 0 ? events : 0;
	return rc;
}

/* Stop watching a socket before curl closes it (a watched, closed and reused
 * fd number is the classic crash of this pattern). */
static void sock_release(struct up_sock *s)
{
	uv_poll_stop(&s->poll);
	s->events = 0;
	if (s->idle)
		s->u->nidle--;
	list_del(&s->node);
	uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

/* curl no longer watches s: kept for the next request on its fd, watched
 * for reading (as that request will want) or stopped. */
static void sock_idle(upstream *u, struct up_sock *s)
{
	if (s->events != UV_READABLE)
		(void)sock_watch(s, 0);
	uv_unref((uv_handle_t *)&s->poll);
	s->idle = true;
	u->nidle++;
	/* the oldest idle ones at the front, the newest at the back */
	list_del(&s->node);
	list_add_tail(&u->socks, &s->node);
	while (u->nidle > UP_IDLE_SOCKS_MAX) {
		struct up_sock *old = NULL;

		for (struct list_node *n = u->socks.next; n != &u->socks; n = n->next) {
			old = list_entry(n, struct up_sock, node);
			if (old->idle)
				break;
		}
		if (old == NULL || !old->idle)
			break;
		sock_release(old);
	}
}

/* The idle watcher of fd, taken back, or NULL. */
static struct up_sock *sock_take_idle(upstream *u, curl_socket_t fd)
{
	if (u->nidle == 0)
		return NULL;
	for (struct list_node *n = u->socks.prev; n != &u->socks; n = n->prev) {
		struct up_sock *s = list_entry(n, struct up_sock, node);

		if (s->idle && s->fd == fd) {
			s->idle = false;
			u->nidle--;
			uv_ref((uv_handle_t *)&s->poll);
			return s;
		}
	}
	return NULL;
}

/* A watcher for fd, not started, in u->socks. */
static struct up_sock *sock_new(upstream *u, curl_socket_t fd)
{
	struct up_sock *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (uv_poll_init_socket(u->loop, &s->poll, fd) != 0) {
		free(s);
		return NULL;
	}
	s->fd = fd;
	s->u = u;
	s->poll.data = u;
	u->handles++;
	list_add_tail(&u->socks, &s->node);
	return s;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct up_sock *s = list_entry(h, struct up_sock, poll);
	upstream *u = s->u;
	int flags = 0, running;

	if (s->idle) {
		/* DOKU closed a kept-alive connection (or spoke out of turn): stop
		   watching; curl's check of the connection, when it takes it again,
		   closes it */
		(void)sock_watch(s, 0);
		return;
	}
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	curl_multi_socket_action(u->multi, s->fd, flags, &running);
	check_done(u);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	upstream *u = userp;
	struct up_sock *s = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			if (u->closing || !s->conn)
				sock_release(s);
			else
				sock_idle(u, s);
			if (!u->closing)
				curl_multi_assign(u->multi, fd, NULL);
		}
		return 0;
	}
	if (s == NULL && (s = sock_take_idle(u, fd)) != NULL) {
		curl_multi_assign(u->multi, fd, s);
	} else if (s == NULL) {
		s = sock_new(u, fd);
		if (s == NULL)
			return -1;
		curl_multi_assign(u->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	return sock_watch(s, events) == 0 ? 0 : -1;
}

/* curl opens a connection's socket: its watcher is made now, idle, and
 * marked as one that curl will close through on_closesocket. */
static curl_socket_t on_opensocket(void *clientp, curlsocktype purpose,
				   struct curl_sockaddr *address)
{
	upstream *u = clientp;
	/* what libcurl does without this callback */
	curl_socket_t fd = socket(address->family, address->socktype, address->protocol);
	struct up_sock *s;

	if (fd == CURL_SOCKET_BAD || purpose != CURLSOCKTYPE_IPCXN || u->closing)
		return fd;
	s = sock_new(u, fd);
	if (s != NULL) {
		s->conn = true;
		sock_idle(u, s); /* idle until curl watches it; the oldest past the cap go */
	}
	return fd; /* without a watcher if none could be made: on_socket makes one */
}

/* curl closes a socket: make sure nothing still watches it, then close it. */
static int on_closesocket(void *clientp, curl_socket_t fd)
{
	upstream *u = clientp;

	for (struct list_node *n = u->socks.next; n != &u->socks; n = n->next) {
		struct up_sock *s = list_entry(n, struct up_sock, node);

		if (s->fd == fd) {
			sock_release(s);
			break;
		}
	}
	return close(fd);
}

static void on_timeout(uv_timer_t *t)
{
	upstream *u = t->data;
	int running;

	curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(u);
}

static int on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
	upstream *u = userp;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&u->timer);
	else
		/* 0: "as soon as possible"; libuv runs a 0 ms timer on the next loop
		 * iteration. Rounding it up to 1 ms cost every request a whole
		 * millisecond: GetBalance with 1 caller, p50 1,554 -> 190 us
		 * (docs/benchmarks.md). */
		uv_timer_start(&u->timer, on_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	up_req *r = userdata;
	size_t n = size * nmemb;

	if (snap_buf_append(&r->response, ptr, n) != 0) {
		r->too_big = true;
		return 0; /* over UP_RESPONSE_MAX or out of memory: CURLE_WRITE_ERROR */
	}
	return n;
}

static int on_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
		     int local_port)
{
	up_req *r = clientp;

	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	r->sent = true;
	return CURL_PREREQFUNC_OK;
}

static void easy_free(struct up_easy *x)
{
	if (x == NULL)
		return;
	curl_easy_cleanup(x->e);
	free(x->ca_file);
	free(x);
}

/* The options of x->e that are the same for every request with this CA
 * file, on a new or reset handle. 0, or -1 (x->e is then half set up). */
static int easy_configure(upstream *u, struct up_easy *x, const char *ca_file)
{
	CURL *e = x->e;
	int cc = CURLE_OK;

	if (ca_file != NULL) {
		x->ca_file = strdup(ca_file);
		if (x->ca_file == NULL)
			return -1;
	}
	cc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	cc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
	cc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	cc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	cc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	cc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca_file != NULL)
		cc |= curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
	/* Only the CA file (ca_file, or libcurl's bundle), no CA directory:
	 * libcurl (OpenSSL) keeps the parsed CA file in the multi handle for
	 * UP_CA_CACHE_S only when no CA directory is set, and Debian's libcurl
	 * sets /etc/ssl/certs by default. Without the cache every new connection
	 * (each money-moving call) parsed the whole file again on the loop: with
	 * the system's bundle (~145 certificates) ~24 ms of CPU per connection,
	 * ~1 ms with the cache. Kept when there is no CA file to fall back on. */
	if (ca_file != NULL || u->default_cafile)
		cc |= curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
#if LIBCURL_VERSION_NUM >= 0x075700 /* 7.87.0 */
	cc |= curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, (long)UP_CA_CACHE_S);
#endif
	cc |= curl_easy_setopt(e, CURLOPT_SHARE, u->share);
	cc |= curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
	cc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
	cc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)u);
	cc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
	cc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, (void *)u);
	cc |= curl_easy_setopt(e, CURLOPT_USERAGENT, UP_USER_AGENT);
	cc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	cc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	if (cc != CURLE_OK)
		return -1;
	x->configured = true;
	return 0;
}

static bool same_ca(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* A handle set up for ca_file: from the pool (set up already, unless it
 * served another CA file: then reset and set up again), or a new one. */
static struct up_easy *easy_get(upstream *u, const char *ca_file)
{
	struct up_easy *x = u->npool > 0 ? u->pool[--u->npool] : NULL;

	if (x == NULL) {
		x = calloc(1, sizeof(*x));
		if (x == NULL)
			return NULL;
		x->e = curl_easy_init();
		if (x->e == NULL) {
			free(x);
			return NULL;
		}
	} else if (!same_ca(x->ca_file, ca_file)) {
		curl_easy_reset(x->e);
		free(x->ca_file);
		x->ca_file = NULL;
		x->configured = false;
	}
	if (!x->configured && easy_configure(u, x, ca_file) != 0) {
		easy_free(x);
		return NULL;
	}
	return x;
}

/* Back to the pool, keeping its configuration (no curl_easy_reset: the next
 * request sets every option of its own again), or freed. broken: a
 * request's option could not be set; the handle is not kept. */
static void easy_put(upstream *u, struct up_easy *x, bool broken)
{
	if (!broken && u->npool < UP_EASY_POOL_MAX && !u->closing) {
		/* nothing of the finished request stays reachable from the handle */
		if (curl_easy_setopt(x->e, CURLOPT_ERRORBUFFER, NULL) == CURLE_OK) {
			u->pool[u->npool++] = x;
			return;
		}
	}
	easy_free(x);
}

static CURL *req_easy(const up_req *r)
{
	return ((const struct up_easy *)r->easy)->e;
}

/* Whether r failed the way a request written on a pooled connection that
 * the server had already closed fails (upstream.h): not a fresh-connection
 * request, not resent yet, CURLE_SEND_ERROR, no new connection made
 * (CURLINFO_NUM_CONNECTS 0: only reused ones, libcurl's own retries
 * included) and not a byte of an answer. */
static bool req_stale_connection(const up_req *r, CURLcode cc)
{
	long connects = -1, header = -1, http = -1;

	if (r->fresh_connection || r->resent || cc != CURLE_SEND_ERROR || r->response.len != 0)
		return false;
	if (curl_easy_getinfo(req_easy(r), CURLINFO_NUM_CONNECTS, &connects) != CURLE_OK ||
	    curl_easy_getinfo(req_easy(r), CURLINFO_HEADER_SIZE, &header) != CURLE_OK ||
	    curl_easy_getinfo(req_easy(r), CURLINFO_RESPONSE_CODE, &http) != CURLE_OK)
		return false;
	return connects == 0 && header == 0 && http == 0;
}

/* Send r again, once, on a fresh connection, within what is left of its
 * timeout. 0, or a negative errno when it cannot be (r then finishes with
 * its first failure). */
static int req_resend(upstream *u, up_req *r)
{
	CURL *e = req_easy(r);
	curl_off_t spent_us = 0;
	uint64_t spent_ms;
	int cc = CURLE_OK;

	if (u->closing)
		return -ECANCELED;
	if (curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &spent_us) != CURLE_OK || spent_us < 0)
		spent_us = 0;
	spent_ms = (uint64_t)spent_us / US_PER_MS;
	if (r->timeout_ms != 0 && spent_ms >= r->timeout_ms)
		return -ETIMEDOUT;
	curl_multi_remove_handle(u->multi, e);
	cc |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	if (r->timeout_ms != 0) /* 0: none, as curl's */
		cc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(r->timeout_ms - spent_ms));
	if (cc != CURLE_OK)
		return -EINVAL;
	r->resent = true;
	r->error[0] = '\0';
	if (curl_multi_add_handle(u->multi, e) != CURLM_OK)
		return -ENOMEM;
	return 0;
}

/* The counters' failure class of an exchange that ended with status. */
static enum counters_up_failure failure_class(int status)
{
	switch ((enum up_status)status) {
	case UP_OK: return COUNTERS_UP_ANSWERED;
	case UP_ERR_CONNECT: return COUNTERS_UP_CONNECT;
	case UP_ERR_TIMEOUT: return COUNTERS_UP_TIMEOUT;
	case UP_ERR_IO: return COUNTERS_UP_IO;
	case UP_ERR_TOO_BIG: return COUNTERS_UP_TOO_BIG;
	case UP_ERR_INTERNAL: return COUNTERS_UP_INTERNAL;
	case UP_ERR_CANCELLED: return COUNTERS_UP_CANCELLED;
	}
	return COUNTERS_UP_INTERNAL; /* not an enum up_status */
}

static void req_finish(upstream *u, up_req *r, CURLcode cc)
{
	CURL *e = req_easy(r);

	if (req_stale_connection(r, cc)) {
		char why[CURL_ERROR_SIZE];
		int rc;

		snprintf(why, sizeof(why), "%s", r->error[0] != '\0' ? r->error : curl_easy_strerror(cc));
		rc = req_resend(u, r);
		log_msg(LOG_LVL_DEBUG,
			"upstream: curl error %d (%s) on reused connections, no byte of an answer: %s",
			(int)cc, why, rc == 0 ? "sent again on a fresh connection" : "not sent again");
		if (rc == 0) {
			counters_upstream_retry();
			return;
		}
		/* the handle may be out of the multi handle already: finish from here */
		snprintf(r->error, sizeof(r->error), "%s", why);
	}

	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->http);
	curl_multi_remove_handle(u->multi, e);
	easy_put(u, r->easy, false);
	r->easy = NULL;
	r->active = false;
	u->active--;
	if (cc == CURLE_OK)
		r->status = UP_OK;
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		r->status = UP_ERR_TIMEOUT;
	else if (cc == CURLE_WRITE_ERROR && r->too_big)
		r->status = UP_ERR_TOO_BIG;
	else if (!r->sent)
		r->status = UP_ERR_CONNECT;
	else
		r->status = UP_ERR_IO;
	if (cc != CURLE_OK && r->error[0] == '\0')
		snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(cc));
	if (cc != CURLE_OK)
		r->http = 0;
	counters_upstream(failure_class(r->status), r->http);
	r->done(r);
}

static void check_done(upstream *u)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
		up_req *r = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r == NULL || !r->active || req_easy(r) != msg->easy_handle)
			continue;
		req_finish(u, r, msg->data.result);
	}
}

int upstream_new(uv_loop_t *loop, unsigned max_host_connections, upstream **out)
{
	upstream *u;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return -ENOMEM;
	u->loop = loop;
	list_init(&u->socks);
	u->multi = curl_multi_init();
	u->share = curl_share_init();
	if (u->multi == NULL || u->share == NULL)
		goto fail;
	if (curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
	    curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK)
		goto fail;
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	upstream_set_max_host_connections(u, max_host_connections);
#if LIBCURL_VERSION_NUM >= 0x075400 /* 7.84.0: CURLINFO_CAINFO */
	{
		CURL *e = curl_easy_init();
		char *ca = NULL;

		if (e == NULL)
			goto fail;
		u->default_cafile = curl_easy_getinfo(e, CURLINFO_CAINFO, &ca) == CURLE_OK &&
				    ca != NULL && ca[0] != '\0';
		curl_easy_cleanup(e);
	}
#endif
	if (uv_timer_init(loop, &u->timer) != 0)
		goto fail;
	u->timer.data = u;
	u->handles = 1;
	*out = u;
	return 0;
fail:
	if (u->multi != NULL)
		curl_multi_cleanup(u->multi);
	if (u->share != NULL)
		curl_share_cleanup(u->share);
	free(u);
	return -ENOMEM;
}

void upstream_set_max_host_connections(upstream *u, unsigned n)
{
	curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)n);
	/* keep enough idle connections for the cap */
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)(n > 0 ? n : 32));
}

int upstream_start(upstream *u, up_req *r)
{
	int cc = CURLE_OK;
	struct curl_slist *head = NULL;
	struct up_easy *x;
	CURL *e;

	if (u->closing || r->nheaders > UP_HEADERS_MAX)
		return UP_ERR_INTERNAL;
	r->status = 0;
	r->http = 0;
	r->sent = false;
	r->resent = false;
	r->too_big = false;
	r->error[0] = '\0';
	snap_buf_init(&r->response, r->arena, UP_RESPONSE_MAX);
	/* the header list lives in the request itself: no allocation */
	for (unsigned i = 0; i <= r->nheaders; i++) {
		r->slist[i].data = (char *)(i < r->nheaders ? r->headers[i] : "Expect:");
		r->slist[i].next = i < r->nheaders ? &r->slist[i + 1] : NULL;
	}
	head = &r->slist[0];
	x = easy_get(u, r->ca_file);
	if (x == NULL)
		return UP_ERR_INTERNAL;
	e = x->e;
	/* what differs from request to request; the rest is easy_configure's */
	cc |= curl_easy_setopt(e, CURLOPT_URL, r->url);
	cc |= curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)r);
	cc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
	cc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	cc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, head);
	cc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r);
	cc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	cc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			       (long)(r->timeout_ms < UP_CONNECT_TIMEOUT_MS ? r->timeout_ms
									   : UP_CONNECT_TIMEOUT_MS));
	cc |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, r->fresh_connection ? 1L : 0L);
	cc |= curl_easy_setopt(e, CURLOPT_PREREQDATA, (void *)r);
	cc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
	if (cc != CURLE_OK) {
		easy_put(u, x, true);
		return UP_ERR_INTERNAL;
	}
	r->easy = x;
	r->active = true;
	u->active++;
	if (curl_multi_add_handle(u->multi, e) != CURLM_OK) {
		r->easy = NULL;
		r->active = false;
		u->active--;
		easy_put(u, x, true);
		return UP_ERR_INTERNAL;
	}
	return 0;
}

void upstream_cancel(upstream *u, up_req *r)
{
	if (!r->active)
		return;
	curl_multi_remove_handle(u->multi, req_easy(r));
	easy_put(u, r->easy, false);
	r->easy = NULL;
	r->active = false;
	r->status = UP_ERR_CANCELLED;
	u->active--;
}

unsigned upstream_active(const upstream *u)
{
	return u->active;
}

void upstream_close(upstream *u)
{
	if (u == NULL)
		return;
	u->closing = true;
	curl_multi_cleanup(u->multi); /* closes connections: socket callbacks run */
	u->multi = NULL;
	while (u->npool > 0)
		easy_free(u->pool[--u->npool]);
	curl_share_cleanup(u->share);
	while (!list_empty(&u->socks))
		sock_release(list_entry(u->socks.next, struct up_sock, node));
	uv_timer_stop(&u->timer);
	uv_close((uv_handle_t *)&u->timer, on_handle_closed);
}
