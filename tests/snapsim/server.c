/* The listeners of doku-snapsim. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"
#include "control.h"
#include "snap_time.h"

#define LISTEN_BACKLOG 1024
#define CONTROL_CONN_MAX 64
#define CONTROL_THREADS 1
#define HELD_MAX SIM_CONN_MAX  /* connections held for a delay at once */
/* A connection closed after at least its idle timeout less this, with no
 * request in progress, was closed for idleness: its mark of last activity is
 * taken just after libmicrohttpd's own (the answer's last write). */
#define IDLE_SLACK_MS 200

/* ---- delays: suspended connections and the thread that resumes them ---- */

struct held {
	struct MHD_Connection *conn;
	struct timespec due; /* CLOCK_MONOTONIC */
};

struct delays {
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* on CLOCK_MONOTONIC */
	pthread_t thread;
	bool started;
	bool joined;
	bool closing;            /* no new holds; the thread ends */
	struct held items[HELD_MAX];
	size_t count;
};

struct sim_server {
	sim_app *app;
	struct MHD_Daemon *https;
	struct MHD_Daemon *control;
	struct delays delays;
	unsigned idle_timeout;   /* seconds */
	bool verbose;
};

static void ts_add_ms(struct timespec *t, long ms)
{
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *delays_main(void *arg)
{
	struct delays *d = arg;

	pthread_mutex_lock(&d->lock);
	while (!d->closing) {
		struct timespec now, next;
		size_t i = 0;

		if (d->count == 0) {
			pthread_cond_wait(&d->cond, &d->lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		next = d->items[0].due;
		while (i < d->count) {
			if (!ts_before(&now, &d->items[i].due)) {
				MHD_resume_connection(d->items[i].conn);
				d->items[i] = d->items[--d->count];
				continue;
			}
			if (ts_before(&d->items[i].due, &next))
				next = d->items[i].due;
			i++;
		}
		if (d->count > 0)
			pthread_cond_timedwait(&d->cond, &d->lock, &next);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

static int delays_start(struct delays *d)
{
	pthread_condattr_t attr;

	memset(d, 0, sizeof(*d));
	if (pthread_mutex_init(&d->lock, NULL) != 0)
		return SIM_ERR_NOMEM;
	if (pthread_condattr_init(&attr) != 0)
		goto fail_mutex;
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (pthread_cond_init(&d->cond, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		goto fail_mutex;
	}
	pthread_condattr_destroy(&attr);
	if (pthread_create(&d->thread, NULL, delays_main, d) != 0) {
		pthread_cond_destroy(&d->cond);
		goto fail_mutex;
	}
	d->started = true;
	return SIM_OK;
fail_mutex:
	pthread_mutex_destroy(&d->lock);
	return SIM_ERR_NOMEM;
}

/* Suspend conn (called from its access handler) until ms from now. false
 * when it cannot be held (closing, or too many held): answer at once. */
static bool delays_hold(struct delays *d, struct MHD_Connection *conn, long ms)
{
	bool held = false;

	pthread_mutex_lock(&d->lock);
	if (!d->closing && d->count < HELD_MAX) {
		struct held *h = &d->items[d->count++];

		clock_gettime(CLOCK_MONOTONIC, &h->due);
		ts_add_ms(&h->due, ms);
		h->conn = conn;
		MHD_suspend_connection(conn);
		pthread_cond_signal(&d->cond);
		held = true;
	}
	pthread_mutex_unlock(&d->lock);
	return held;
}

/* Resume every held connection and end the thread. */
static void delays_close(struct delays *d)
{
	if (!d->started || d->joined)
		return;
	pthread_mutex_lock(&d->lock);
	d->closing = true;
	for (size_t i = 0; i < d->count; i++)
		MHD_resume_connection(d->items[i].conn);
	d->count = 0;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	d->joined = true;
}

static void delays_free(struct delays *d)
{
	if (!d->started)
		return;
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	d->started = false;
}

/* ---- HTTPS connections: which ones the idle timeout closed --------------- */

/* libmicrohttpd tells no reason when it closes a connection between requests
 * (its NOTIFY_COMPLETED only runs for a request in progress), so each
 * connection keeps when it was last active and whether a request is in
 * progress; a connection closed while idle for the idle timeout was closed
 * by it (the client closing one at that very moment aside). Every call for
 * one connection runs on the thread that owns it: no lock. */
struct sim_conn {
	struct timespec last;    /* CLOCK_MONOTONIC: opened, or a request's last event */
	bool busy;               /* a request in progress */
};

static long elapsed_us(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - since->tv_sec) * 1000000L +
	       (now.tv_nsec - since->tv_nsec) / 1000L;
}

static void conn_touch(struct MHD_Connection *conn, bool busy)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct sim_conn *c = ci != NULL ? ci->socket_context : NULL;

	if (c == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &c->last);
	c->busy = busy;
}

static void https_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			     enum MHD_ConnectionNotificationCode toe)
{
	sim_server *s = cls;
	struct sim_conn *c = *socket_context;

	(void)conn;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		c = calloc(1, sizeof(*c));
		if (c != NULL)
			clock_gettime(CLOCK_MONOTONIC, &c->last);
		*socket_context = c;
		sim_log_connection(s->app->log, SIM_CONN_OPENED);
		return;
	}
	if (toe != MHD_CONNECTION_NOTIFY_CLOSED)
		return;
	if (c != NULL && !c->busy &&
	    elapsed_us(&c->last) >= ((long)s->idle_timeout * 1000L - IDLE_SLACK_MS) * 1000L)
		sim_log_connection(s->app->log, SIM_CONN_IDLE_CLOSED);
	else
		sim_log_connection(s->app->log, SIM_CONN_CLOSED);
	free(c);
	*socket_context = NULL;
}

/* ---- one HTTPS request -------------------------------------------------- */

/* A refusal decided before the body is complete (an unknown path: 404; not
 * POST: 405; a body declared, or grown, over SIM_BODY_MAX: 413) is answered
 * only after the rest of the body has been read and thrown away, a lingering
 * read as nginx's lingering_close. Answered at once, libmicrohttpd would
 * close the connection with the body still arriving: the unread bytes make
 * the kernel reset the connection, and a client still writing its body may
 * meet the reset before it reads the answer (curl error 55). With Expect:
 * 100-continue, libmicrohttpd asks for such a body (100 Continue) as the
 * first call queued no answer.
 *
 * The wait is bounded. A refused body declared longer than
 * SIM_BODY_LINGER_MAX is answered at once, before it is read, and the
 * connection closed: a client that sent Expect: 100-continue then never
 * sends it, one that did not may meet the reset. An undeclared (chunked)
 * body is cut after SIM_BODY_DISCARD_MAX bytes, a refused one still arriving
 * after SIM_BODY_LINGER_S too (a silent one after the idle timeout). Cut, the
 * connection is closed without an answer: libmicrohttpd (0.9.75) takes an
 * answer before the body or after all of it, never while it is arriving. */

enum req_phase {
	REQ_READING,   /* headers seen, body arriving */
	REQ_HELD,      /* answer ready, connection suspended for a delay */
	REQ_DONE,      /* answered (or dropped) and logged */
};

struct sim_req {
	enum req_phase phase;
	struct timespec started;     /* CLOCK_MONOTONIC */
	const snap_endpoint *ep;
	snap_buf body;               /* malloc-backed, at most SIM_BODY_MAX; freed once refused */
	size_t seen;                 /* body bytes received, kept or not */
	size_t seen_max;             /* beyond this the connection is cut */
	int refusal;                 /* 0, or the status answered once the body is in */
	enum sim_verdict refusal_verdict;
	const char *refusal_message; /* static text */
	bool drop;                   /* close without an answer */
	sim_fault fault;             /* kind SIM_FAULT_NONE when none */
	bool fault_after_op;
	sim_exchange ex;
	sim_log_entry entry;
};

static const char *mhd_header(void *ctx, const char *name)
{
	return MHD_lookup_connection_value((struct MHD_Connection *)ctx, MHD_HEADER_KIND, name);
}

static void copy_trunc(char *dst, size_t dstsz, const char *src)
{
	snprintf(dst, dstsz, "%s", src != NULL ? src : "");
}

static struct sim_req *req_new(struct MHD_Connection *conn, const char *url, const char *method)
{
	struct sim_req *r = calloc(1, sizeof(*r));
	const char *ext;
	struct timespec wall;

	if (r == NULL)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &r->started);
	clock_gettime(CLOCK_REALTIME, &wall);
	r->entry.time_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
	snap_buf_init(&r->body, NULL, SIM_BODY_MAX);
	sim_exchange_init(&r->ex);
	r->ep = snap_endpoint_by_path(url, strlen(url));
	r->ex.ep = r->ep;
	r->ex.header = mhd_header;
	r->ex.header_ctx = conn;
	copy_trunc(r->entry.method, sizeof(r->entry.method), method);
	copy_trunc(r->entry.path, sizeof(r->entry.path), url);
	ext = mhd_header(conn, "X-EXTERNAL-ID");
	copy_trunc(r->entry.external_id, sizeof(r->entry.external_id), ext);
	return r;
}

/* Refuse r: the answer waits for the end of the body, which is no longer kept. */
static void req_refuse(struct sim_req *r, int http, enum sim_verdict v, const char *message)
{
	r->refusal = http;
	r->refusal_verdict = v;
	r->refusal_message = message;
	snap_buf_free(&r->body);
}

static void req_free(struct sim_req *r)
{
	snap_buf_free(&r->body);
	sim_exchange_free(&r->ex);
	free(r);
}

/* Log the request's outcome (once). http 0: no answer was sent. */
static void req_log(sim_app *app, struct sim_req *r, unsigned http)
{
	sim_log_entry *e = &r->entry;
	long us = elapsed_us(&r->started);

	if (r->phase == REQ_DONE)
		return;
	r->phase = REQ_DONE;
	e->http = (uint16_t)http;
	e->verdict = (uint8_t)r->ex.verdict;
	e->fault = (uint8_t)r->fault.kind;
	e->fault_applied_op = r->fault_after_op;
	e->micros = us < 0 ? 0 : us > (long)UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	copy_trunc(e->client_id, sizeof(e->client_id), r->ex.client_id);
	copy_trunc(e->partner_ref, sizeof(e->partner_ref), r->ex.partner_ref);
	copy_trunc(e->code, sizeof(e->code), http != 0 ? r->ex.code : "");
	copy_trunc(e->detail, sizeof(e->detail), r->ex.detail);
	sim_log_add(app->log, e, r->ep != NULL ? (int)(r->ep - snap_endpoints) : -1);
}

/* Send the answer held in r->ex (or close the connection for a drop). */
static enum MHD_Result req_answer(sim_app *app, struct MHD_Connection *conn, struct sim_req *r)
{
	struct MHD_Response *resp;
	char ts[SNAP_TIMESTAMP_LEN + 1];
	enum MHD_Result ok;

	if (r->drop) {
		req_log(app, r, 0);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(r->ex.answer.len,
					       r->ex.answer.data != NULL ? r->ex.answer.data : (char *)"",
					       MHD_RESPMEM_MUST_COPY);
	if (resp == NULL) {
		req_log(app, r, 0);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (snap_time_format(time(NULL), ts) == 0)
		MHD_add_response_header(resp, "X-TIMESTAMP", ts);
	if (r->ex.http == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_POST);
	ok = MHD_queue_response(conn, (unsigned)r->ex.http, resp);
	MHD_destroy_response(resp);
	req_log(app, r, ok == MHD_YES ? (unsigned)r->ex.http : 0);
	return ok;
}

static bool fault_answers(enum sim_fault_kind k)
{
	return k == SIM_FAULT_HTTP500 || k == SIM_FAULT_HTTP503 || k == SIM_FAULT_HTTP504 ||
	       k == SIM_FAULT_INPROGRESS || k == SIM_FAULT_DROP;
}

/* Put the fault's own answer in place of whatever the request got. */
static void apply_fault_answer(struct sim_req *r, enum sim_verdict verdict)
{
	switch (r->fault.kind) {
	case SIM_FAULT_HTTP500:
		sim_snap_error(&r->ex, 500, 0, verdict, "General Error");
		break;
	case SIM_FAULT_HTTP503:
		sim_snap_error(&r->ex, 503, 0, verdict, "Service Unavailable");
		break;
	case SIM_FAULT_HTTP504:
		sim_snap_error(&r->ex, 504, 0, verdict, "Timeout");
		break;
	case SIM_FAULT_INPROGRESS:
		sim_snap_error(&r->ex, 202, 0, verdict, "Request In Progress");
		break;
	case SIM_FAULT_DROP:
		r->ex.verdict = verdict;
		r->drop = true;
		break;
	default:
		break;
	}
}

/* The whole request is in: fault, checks, operation. */
static void req_process(sim_app *app, struct sim_req *r)
{
	sim_fault *f = &r->fault;

	r->ex.body = r->body.data != NULL ? r->body.data : "";
	r->ex.body_len = r->body.len;
	if (!sim_faults_take(app->faults, r->entry.path, f))
		f->kind = SIM_FAULT_NONE;
	if (f->kind == SIM_FAULT_REVOKE_B2B || f->kind == SIM_FAULT_EXPIRE_CUSTOMER ||
	    f->kind == SIM_FAULT_REVOKE_CUSTOMER)
		sim_snap_fault_before(app->config, app->world, &r->ex, f->kind);
	if (fault_answers(f->kind) && !f->apply) {
		sim_snap_describe(&r->ex);
		apply_fault_answer(r, SIM_V_FAULT);
		return;
	}
	sim_snap_handle(app->config, app->world, &r->ex);
	if (fault_answers(f->kind)) {
		r->fault_after_op = true;
		apply_fault_answer(r, r->ex.verdict);
	}
}

/* Send r's refusal. Before the body is read, libmicrohttpd then closes the
 * connection instead of reading it; after, the connection stays open. */
static enum MHD_Result answer_refusal(sim_app *app, struct MHD_Connection *conn,
				      struct sim_req *r)
{
	sim_snap_describe(&r->ex);
	sim_snap_error(&r->ex, r->refusal, 0, r->refusal_verdict, "%s", r->refusal_message);
	return req_answer(app, conn, r);
}

/* The first call for a request (headers in, no body yet): refuse what the
 * request line and headers already tell, answer at once only a refused body
 * declared too long to wait for. */
static enum MHD_Result req_start(sim_app *app, struct MHD_Connection *conn, struct sim_req *r,
				 const char *method)
{
	const char *cl = mhd_header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
	bool declared = cl != NULL && mhd_header(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING) == NULL;
	unsigned long long length = declared ? strtoull(cl, NULL, 10) : 0;

	/* a declared body cannot outgrow its length (libmicrohttpd reads no more) */
	r->seen_max = declared ? SIM_BODY_LINGER_MAX : SIM_BODY_DISCARD_MAX;
	if (r->ep == NULL)
		req_refuse(r, 404, SIM_V_NOT_FOUND, "Not Found. No such endpoint");
	else if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		req_refuse(r, 405, SIM_V_METHOD, "Requested Function Is Not Supported. Use POST");
	else if (length > SIM_BODY_MAX)
		req_refuse(r, 413, SIM_V_TOO_LARGE, "Request Entity Too Large");
	if (r->refusal != 0 && length > SIM_BODY_LINGER_MAX)
		return answer_refusal(app, conn, r);
	return MHD_YES;
}

/* One piece of the body: kept, or thrown away once refused. */
static enum MHD_Result req_body(sim_app *app, struct sim_req *r, const char *data, size_t len)
{
	long deadline_s = r->refusal != 0 ? SIM_BODY_LINGER_S : SIM_REQUEST_DEADLINE_S;

	if (elapsed_us(&r->started) > deadline_s * 1000000L) {
		r->ex.verdict = SIM_V_TOO_SLOW;
		req_log(app, r, 0);
		return MHD_NO;
	}
	r->seen += len;
	if (r->seen > r->seen_max) {
		r->ex.verdict = SIM_V_TOO_LARGE;
		req_log(app, r, 0);
		return MHD_NO;
	}
	if (r->refusal == 0 && snap_buf_append(&r->body, data, len) != 0)
		req_refuse(r, 413, SIM_V_TOO_LARGE, "Request Entity Too Large");
	return MHD_YES;
}

static enum MHD_Result https_access(void *cls, struct MHD_Connection *conn, const char *url,
				    const char *method, const char *version,
				    const char *upload_data, size_t *upload_data_size,
				    void **con_cls)
{
	sim_server *s = cls;
	sim_app *app = s->app;
	struct sim_req *r = *con_cls;

	(void)version;
	conn_touch(conn, true);
	if (r == NULL) {
		r = req_new(conn, url, method);
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		return req_start(app, conn, r, method);
	}
	if (r->phase == REQ_HELD)
		return req_answer(app, conn, r);
	if (r->phase == REQ_DONE)
		return MHD_NO;
	if (*upload_data_size > 0) {
		enum MHD_Result ok = req_body(app, r, upload_data, *upload_data_size);

		*upload_data_size = 0;
		return ok;
	}
	if (r->refusal != 0)
		return answer_refusal(app, conn, r);
	req_process(app, r);
	if (r->fault.delay_ms > 0) {
		r->phase = REQ_HELD;
		if (delays_hold(&s->delays, conn, r->fault.delay_ms))
			return MHD_YES;
	}
	return req_answer(app, conn, r);
}

static void https_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			    enum MHD_RequestTerminationCode toe)
{
	sim_server *s = cls;
	struct sim_req *r = *con_cls;

	conn_touch(conn, false);
	if (r == NULL)
		return;
	if (r->phase != REQ_DONE) {
		r->ex.verdict = SIM_V_CLIENT_GONE;
		if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
			r->ex.verdict = SIM_V_TOO_SLOW;
		req_log(s->app, r, 0);
	}
	req_free(r);
	*con_cls = NULL;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	sim_server *s = cls;

	if (!s->verbose)
		return;
	fputs("doku-snapsim: mhd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* ---- addresses and sockets ---------------------------------------------- */

int sim_addr_parse(const char *text, struct sockaddr_storage *out, socklen_t *len)
{
	char host[SIM_ADDR_MAX];
	const char *colon, *port_text;
	char *end;
	unsigned long port;
	size_t hlen;

	memset(out, 0, sizeof(*out));
	if (text == NULL || strlen(text) >= SIM_ADDR_MAX)
		return SIM_ERR_INVALID;
	colon = strrchr(text, ':');
	if (colon == NULL)
		return SIM_ERR_INVALID;
	port_text = colon + 1;
	if (*port_text < '0' || *port_text > '9')
		return SIM_ERR_INVALID;
	port = strtoul(port_text, &end, 10);
	if (*end != '\0' || port > 65535)
		return SIM_ERR_INVALID;
	hlen = (size_t)(colon - text);
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;

		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return SIM_ERR_INVALID;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return SIM_OK;
	}
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *)out;

		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return SIM_ERR_INVALID;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
	}
	return SIM_OK;
}

bool sim_addr_is_loopback(const struct sockaddr_storage *addr)
{
	if (addr->ss_family == AF_INET) {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;

		return (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
	}
	if (addr->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;

		return IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
	}
	return false;
}

static void addr_text(const struct sockaddr_storage *ss, char out[SIM_ADDR_MAX])
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
		snprintf(out, SIM_ADDR_MAX, "[%s]:%u", host, ntohs(a6->sin6_port));
	} else {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
		snprintf(out, SIM_ADDR_MAX, "%s:%u", host, ntohs(a4->sin_port));
	}
}

/* A non-blocking listening socket bound to addr; its bound address (the
 * port picked when 0 was asked) goes to text. -1 with err on failure. */
static int listen_on(const struct sockaddr_storage *addr, socklen_t len, char text[SIM_ADDR_MAX],
		     char *err, size_t errlen)
{
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	int one = 1;
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	addr_text(addr, text);
	if (bind(fd, (const struct sockaddr *)addr, len) != 0) {
		snprintf(err, errlen, "bind %s: %s", text, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, LISTEN_BACKLOG) != 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
		snprintf(err, errlen, "listen %s: %s", text, strerror(errno));
		close(fd);
		return -1;
	}
	addr_text(&bound, text);
	return fd;
}

int sim_server_start(const sim_server_opts *opts, sim_app *app, sim_server **out, char *err,
		     size_t errlen)
{
	sim_server *s = calloc(1, sizeof(*s));
	unsigned threads = opts->threads;
	int https_fd = -1, control_fd = -1;
	int rc = SIM_ERR_IO;

	*out = NULL;
	if (s == NULL)
		return SIM_ERR_NOMEM;
	s->app = app;
	s->idle_timeout = opts->idle_timeout;
	s->verbose = opts->verbose;
	if (threads < 1 || threads > SIM_THREADS_MAX) {
		snprintf(err, errlen, "threads: 1..%d", SIM_THREADS_MAX);
		rc = SIM_ERR_INVALID;
		goto fail;
	}
	if (delays_start(&s->delays) != 0) {
		snprintf(err, errlen, "cannot start the delay thread");
		rc = SIM_ERR_NOMEM;
		goto fail;
	}
	https_fd = listen_on(&opts->https_addr, opts->https_addr_len, app->https_addr, err, errlen);
	if (https_fd < 0)
		goto fail;
	control_fd = listen_on(&opts->control_addr, opts->control_addr_len, app->control_addr, err,
			       errlen);
	if (control_fd < 0)
		goto fail;
	/* poll, not epoll: with epoll libmicrohttpd 0.9.75 keeps a TLS connection
	 * whose handshake waits for the client in its ready list and spins on it
	 * (epoll_wait(..., 0) + recv EAGAIN), 2-20x a request's CPU when clients
	 * open many connections (a money-moving call opens one each) */
	s->https = MHD_start_daemon(
		MHD_USE_TLS | MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, https_access, s,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)https_fd,
		MHD_OPTION_HTTPS_MEM_CERT, opts->cert_pem,
		MHD_OPTION_HTTPS_MEM_KEY, opts->key_pem,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(threads > 1 ? threads : 0),
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)SIM_CONN_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)opts->idle_timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SIM_CONN_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, https_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, https_connection, s,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
		MHD_OPTION_END);
	if (s->https == NULL) {
		snprintf(err, errlen, "cannot start the HTTPS listener (bad certificate or key?)");
		goto fail;
	}
	https_fd = -1; /* the daemon's now */
	s->control = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		sim_control_access, app,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)control_fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONTROL_CONN_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)opts->idle_timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SIM_CONN_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, sim_control_completed, app,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
		MHD_OPTION_END);
	if (s->control == NULL) {
		snprintf(err, errlen, "cannot start the control listener");
		goto fail;
	}
	*out = s;
	return SIM_OK;
fail:
	if (s->https != NULL) {
		delays_close(&s->delays);
		MHD_stop_daemon(s->https);
	}
	if (https_fd >= 0)
		close(https_fd);
	if (control_fd >= 0)
		close(control_fd);
	delays_close(&s->delays);
	delays_free(&s->delays);
	free(s);
	return rc;
}

void sim_server_stop(sim_server *s)
{
	if (s == NULL)
		return;
	delays_close(&s->delays);
	MHD_stop_daemon(s->https);
	MHD_stop_daemon(s->control);
	delays_free(&s->delays);
	free(s);
}
