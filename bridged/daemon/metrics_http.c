/* The metrics HTTP endpoint. */
#include "metrics_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bridge.h"
#include "exposition.h"
#include "list.h"
#include "log.h"

#define HTTP_HEAD_MAX 256

struct mh_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	struct list_node node;      /* in mh.conns */
	char req[METRICS_HTTP_REQ_MAX];
	size_t len;
	char head[HTTP_HEAD_MAX];
	snap_buf body;
	unsigned handles;           /* not yet closed */
	bool closing;
};

static struct {
	struct bridge *b;
	uv_tcp_t listener;
	bool open;
	unsigned nconns;
	struct list_node conns;
} mh;

static void mh_handle_closed(uv_handle_t *h)
{
	struct mh_conn *c = h->data;

	if (--c->handles > 0)
		return;
	snap_buf_free(&c->body);
	free(c);
}

static void mh_close(struct mh_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	list_del(&c->node);
	mh.nconns--;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, mh_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, mh_handle_closed);
}

static void mh_on_timeout(uv_timer_t *t)
{
	mh_close(t->data);
}

static void mh_on_written(uv_write_t *w, int status)
{
	(void)status;
	mh_close(w->data);
}

static void mh_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct mh_conn *c = h->data;

	(void)suggested;
	buf->base = c->req + c->len;
	buf->len = sizeof(c->req) - 1 - c->len;
}

/* Answer status with body (NULL: a one-line reason). */
static void mh_answer(struct mh_conn *c, int status, const char *reason, const char *extra)
{
	uv_buf_t bufs[2];
	const char *body = c->body.data != NULL ? c->body.data : reason;
	size_t blen = c->body.data != NULL ? c->body.len : strlen(reason);
	int n;

	uv_read_stop((uv_stream_t *)&c->tcp);
	n = snprintf(c->head, sizeof(c->head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
		     status, reason,
		     c->body.data != NULL ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
		     blen, extra);
	if (n < 0 || (size_t)n >= sizeof(c->head)) {
		mh_close(c);
		return;
	}
	bufs[0] = uv_buf_init(c->head, (unsigned)n);
	bufs[1] = uv_buf_init((char *)body, (unsigned)blen);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, 2, mh_on_written) != 0)
		mh_close(c);
}

static void mh_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct mh_conn *c = s->data;
	char *eol;

	(void)buf;
	if (nread < 0) {
		mh_close(c);
		return;
	}
	c->len += (size_t)nread;
	c->req[c->len] = '\0';
	if (strstr(c->req, "\r\n\r\n") == NULL && strstr(c->req, "\n\n") == NULL) {
		if (c->len + 1 >= sizeof(c->req))
			mh_answer(c, 431, "Request Header Fields Too Large", "");
		return;
	}
	eol = strpbrk(c->req, "\r\n");
	*eol = '\0';
	if (strncmp(c->req, "GET ", 4) != 0) {
		mh_answer(c, 405, "Method Not Allowed", "Allow: GET\r\n");
		return;
	}
	if (strncmp(c->req + 4, "/metrics ", 9) != 0 && strncmp(c->req + 4, "/metrics?", 9) != 0) {
		mh_answer(c, 404, "Not Found", "");
		return;
	}
	snap_buf_init(&c->body, NULL, COUNTERS_TEXT_MAX);
	if (exposition_render(mh.b, 0, &c->body) != 0 || c->body.data == NULL) {
		snap_buf_free(&c->body);
		mh_answer(c, 500, "Internal Server Error", "");
		return;
	}
	mh_answer(c, 200, "OK", "");
}

static void mh_refused_closed(uv_handle_t *h)
{
	free(h);
}

static void mh_on_connection(uv_stream_t *l, int status)
{
	struct mh_conn *c;

	if (status < 0)
		return;
	if (mh.nconns >= METRICS_HTTP_CONNS_MAX) {
		uv_tcp_t *tmp = malloc(sizeof(*tmp));

		if (tmp == NULL || uv_tcp_init(l->loop, tmp) != 0) {
			free(tmp);
			return;
		}
		(void)uv_accept(l, (uv_stream_t *)tmp);
		uv_close((uv_handle_t *)tmp, mh_refused_closed);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	snap_buf_init(&c->body, NULL, COUNTERS_TEXT_MAX);
	uv_tcp_init(l->loop, &c->tcp);
	uv_timer_init(l->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->handles = 2;
	list_add_tail(&mh.conns, &c->node);
	mh.nconns++;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
	    uv_timer_start(&c->timer, mh_on_timeout, METRICS_HTTP_TIMEOUT_MS, 0) != 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, mh_alloc, mh_on_read) != 0)
		mh_close(c);
}

static void mh_listener_closed(uv_handle_t *h)
{
	(void)h;
}

int metrics_http_start(struct bridge *b, const char *addr)
{
	struct sockaddr_storage ss;
	int rc;

	if (mh.open || !config_loopback_addr(addr, &ss))
		return -EINVAL;
	mh.b = b;
	list_init(&mh.conns);
	rc = uv_tcp_init(b->loop, &mh.listener);
	if (rc != 0)
		return rc;
	mh.open = true;
	rc = uv_tcp_bind(&mh.listener, (const struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&mh.listener, METRICS_HTTP_CONNS_MAX, mh_on_connection);
	if (rc != 0) {
		log_msg(LOG_LVL_ERROR, "metrics_listen %s: %s", addr, uv_strerror(rc));
		metrics_http_stop();
		return rc;
	}
	log_msg(LOG_LVL_INFO, "metrics served on http://%s/metrics", addr);
	return 0;
}

void metrics_http_stop(void)
{
	if (!mh.open)
		return;
	mh.open = false;
	while (!list_empty(&mh.conns))
		mh_close(list_entry(mh.conns.next, struct mh_conn, node));
	uv_close((uv_handle_t *)&mh.listener, mh_listener_closed);
}
