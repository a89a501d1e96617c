/* One connection: frames in, replies out, caps and backpressure. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bridge.h"
#include "call.h"
#include "log.h"
#include "outcome.h"
#include "server.h"
#include "snap_err.h"

#define PEER_GROUPS_READ 1024 /* SO_PEERGROUPS read buffer, in gids */

static uint8_t read_buf[CONN_READ_BUF]; /* shared: libuv reads one handle at a time */

static struct bridge *conn_bridge(const struct conn *c)
{
	return c->srv->b;
}

static size_t out_pending(const struct conn *c)
{
	return c->out.len + c->wout.len;
}

static bool can_take_frames(const struct conn *c)
{
	const struct bridge *b = conn_bridge(c);

	return !c->closing && !c->eof && !c->broken && !b->draining &&
	       c->ncalls < b->cfg->max_calls && out_pending(c) < CONN_OUT_HIGH + b->cfg->max_frame;
}

static void queue_resume(struct conn *c)
{
	server *s = c->srv;

	if (list_linked(&c->resume_node))
		return;
	list_add_tail(&s->resume_list, &c->resume_node);
	server_wake(s);
}

/* ---- closing ---------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	server *s = c->srv;

	free(c->out.data);
	free(c->wout.data);
	free(c->stash);
	free(c);
	server_conn_closed(s);
}

void conn_close(struct conn *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = true;
	log_msg(LOG_LVL_DEBUG, "conn %llu closed: %s", (unsigned long long)c->number, why);
	list_del(&c->node);
	if (list_linked(&c->resume_node))
		list_del(&c->resume_node);
	if (c->rcall != NULL) {
		call_discard(c->rcall);
		c->rcall = NULL;
	}
	while (!list_empty(&c->calls)) {
		struct call *call = list_entry(c->calls.next, struct call, conn_node);

		list_del(&call->conn_node);
		c->ncalls--;
		call->conn = NULL;
		call_detach(call);
	}
	uv_close((uv_handle_t *)&c->pipe, on_closed);
}

/* ---- writing ---------------------------------------------------------------------- */

static void flush(struct conn *c);

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	c->writing = false;
	/* an idle connection keeps no buffer; a busy one keeps a small one */
	if (c->wout.cap > CONN_OUT_KEEP || (c->ncalls == 0 && c->out.len == 0)) {
		free(c->wout.data);
		c->wout.data = NULL;
		c->wout.cap = 0;
	}
	c->wout.len = 0;
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c, "write failed");
		return;
	}
	c->last_active_ms = uv_now(c->srv->b->loop);
	if (c->out.len > 0) {
		flush(c);
	} else if (c->ncalls == 0 && c->out.data != NULL) {
		free(c->out.data);
		c->out.data = NULL;
		c->out.cap = 0;
	}
	conn_update(c);
}

static void flush(struct conn *c)
{
	struct conn_buf t;
	uv_buf_t buf;

	if (c->writing || c->out.len == 0 || c->closing)
		return;
	t = c->wout;
	c->wout = c->out;
	c->out = t;
	buf = uv_buf_init((char *)c->wout.data, (unsigned)c->wout.len);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &buf, 1, on_write) != 0) {
		c->wout.len = 0;
		c->broken = true;
		queue_resume(c); /* closed from the idle handle, never from inside a call */
		return;
	}
	c->writing = true;
	c->write_started_ms = uv_now(c->srv->b->loop);
}

static int buf_reserve(struct conn_buf *b, size_t more)
{
	size_t cap;
	uint8_t *p;

	if (b->cap - b->len >= more)
		return 0;
	cap = b->cap > 0 ? b->cap : 4096;
	while (cap - b->len < more)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int conn_reply(struct conn *c, const Doku__Bridge__V1__Reply *r)
{
	Doku__Bridge__V1__Reply small;
	size_t n;

	if (c->closing || c->broken)
		return -EPIPE;
	n = doku__bridge__v1__reply__get_packed_size(r);
	if (n > c->srv->b->cfg->max_frame) {
		small = *r;
		small.message.data = NULL;
		small.message.len = 0;
		small.code = DOKU__BRIDGE__V1__CODE__RESOURCE_EXHAUSTED;
		small.status_message = "the reply is over the frame cap";
		r = &small;
		n = doku__bridge__v1__reply__get_packed_size(r);
		if (n > c->srv->b->cfg->max_frame)
			return -E2BIG;
	}
	if (buf_reserve(&c->out, SNAP_FRAME_HEADER + n) != 0) {
		c->broken = true;
		queue_resume(c);
		return -ENOMEM;
	}
	snap_frame_header_write(c->out.data + c->out.len, (uint32_t)n);
	doku__bridge__v1__reply__pack(r, c->out.data + c->out.len + SNAP_FRAME_HEADER);
	c->out.len += SNAP_FRAME_HEADER + n;
	flush(c);
	return 0;
}

/* A reply made by the connection itself (no call: framing errors). */
static void reply_error(struct conn *c, uint64_t id, int code, const char *msg)
{
	Doku__Bridge__V1__Reply r = DOKU__BRIDGE__V1__REPLY__INIT;

	r.id = id;
	r.code = code;
	r.status_message = (char *)msg;
	r.outcome = DOKU__BRIDGE__V1__OUTCOME__OUTCOME_NOT_DONE;
	(void)conn_reply(c, &r);
}

/* The stream is broken: answer once, stop reading, close when written. */
static void protocol_error(struct conn *c, int code, const char *msg)
{
	log_msg(LOG_LVL_WARNING, "conn %llu uid=%lu pid=%ld: %s", (unsigned long long)c->number,
		(unsigned long)c->peer.uid, (long)c->peer.pid, msg);
	reply_error(c, 0, code, msg);
	c->broken = true;
	conn_update(c);
}

/* ---- reading ---------------------------------------------------------------------- */

static void frame_done(struct conn *c)
{
	struct call *call = c->rcall;

	c->rcall = NULL;
	c->body = NULL;
	call_start(call);
}

/* Keep data[0..n) for later (reading is stopped until it is parsed). */
static void stash(struct conn *c, const uint8_t *data, size_t n)
{
	uint8_t *p = malloc(n);

	if (p == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	memcpy(p, data, n);
	free(c->stash);
	c->stash = p;
	c->stash_len = n;
}

/* Parse frames from data[0..n). Returns when all is consumed, the caps are
 * reached (the rest is stashed) or the connection broke. */
static void parse(struct conn *c, const uint8_t *data, size_t n)
{
	struct bridge *b = conn_bridge(c);

	while (n > 0 && !c->closing && !c->broken) {
		uint32_t len;
		size_t k;
		int rc;

		if (c->rcall != NULL) {
			k = c->body_len - c->body_got;
			if (k > n)
				k = n;
			memcpy(c->body + c->body_got, data, k);
			c->body_got += (uint32_t)k;
			data += k;
			n -= k;
			if (c->body_got == c->body_len)
				frame_done(c);
			continue;
		}
		if (c->hdr_len == 0 && !can_take_frames(c)) {
			if (!c->eof && !b->draining)
				stash(c, data, n);
			return;
		}
		if (c->hdr_len == 0)
			c->frame_started_ms = uv_now(b->loop);
		k = SNAP_FRAME_HEADER - c->hdr_len;
		if (k > n)
			k = n;
		memcpy(c->hdr + c->hdr_len, data, k);
		c->hdr_len += (unsigned)k;
		data += k;
		n -= k;
		if (c->hdr_len < SNAP_FRAME_HEADER)
			return;
		c->hdr_len = 0;
		rc = snap_frame_header_read(c->hdr, b->cfg->max_frame, &len);
		if (rc == SNAP_ERR_INVALID) {
			char msg[96];

			snprintf(msg, sizeof(msg), "bad frame: flags byte 0x%02x, must be 0", c->hdr[0]);
			protocol_error(c, DOKU__BRIDGE__V1__CODE__INVALID_ARGUMENT, msg);
			return;
		}
		if (rc != 0) {
			char msg[128];
			uint32_t want = (uint32_t)c->hdr[1] << 24 | (uint32_t)c->hdr[2] << 16 |
					(uint32_t)c->hdr[3] << 8 | c->hdr[4];

			snprintf(msg, sizeof(msg), "frame of %u bytes is over the cap of %u bytes", want,
				 b->cfg->max_frame);
			protocol_error(c, DOKU__BRIDGE__V1__CODE__RESOURCE_EXHAUSTED, msg);
			return;
		}
		c->rcall = call_new(b, c, len, &c->body);
		if (c->rcall == NULL) {
			protocol_error(c, DOKU__BRIDGE__V1__CODE__RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		c->body_len = len;
		c->body_got = 0;
		if (len == 0)
			frame_done(c);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	if (c->rcall != NULL && c->body_len - c->body_got >= CONN_DIRECT_READ_MIN)
		*buf = uv_buf_init((char *)c->body + c->body_got, c->body_len - c->body_got);
	else
		*buf = uv_buf_init((char *)read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;

	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		if (nread != UV_EOF) {
			conn_close(c, uv_strerror((int)nread));
			return;
		}
		/* The caller will send nothing more; answer what is in flight. */
		c->eof = true;
		if (c->rcall != NULL || c->hdr_len > 0) {
			conn_close(c, "end of stream inside a frame");
			return;
		}
		conn_update(c);
		return;
	}
	c->last_active_ms = uv_now(c->srv->b->loop);
	if (c->rcall != NULL && (uint8_t *)buf->base == c->body + c->body_got) {
		c->body_got += (uint32_t)nread;
		if (c->body_got == c->body_len)
			frame_done(c);
		conn_update(c);
		return;
	}
	parse(c, (const uint8_t *)buf->base, (size_t)nread);
	conn_update(c);
}

void conn_resume(struct conn *c)
{
	uint8_t *data;
	size_t n;

	if (c->broken && !c->writing && c->out.len == 0) {
		conn_close(c, "broken");
		return;
	}
	if (c->stash != NULL && can_take_frames(c)) {
		data = c->stash;
		n = c->stash_len;
		c->stash = NULL;
		c->stash_len = 0;
		parse(c, data, n);
		free(data);
	}
	conn_update(c);
}

void conn_update(struct conn *c)
{
	struct bridge *b = conn_bridge(c);
	bool take = can_take_frames(c);
	bool want = take && c->stash == NULL;

	if (c->closing)
		return;
	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->reading = false;
	}
	if (take && c->stash != NULL)
		queue_resume(c);
	if ((c->eof || c->broken || b->draining) && c->ncalls == 0 && !c->writing && c->out.len == 0)
		conn_close(c, c->broken ? "protocol error" : c->eof ? "end of stream" : "draining");
}

void conn_sweep(struct conn *c, uint64_t now)
{
	const config *cfg = conn_bridge(c)->cfg;

	if ((c->rcall != NULL || c->hdr_len > 0) && now - c->frame_started_ms > cfg->io_timeout_ms) {
		log_msg(LOG_LVL_WARNING, "conn %llu uid=%lu: frame not completed within %u ms, closed",
			(unsigned long long)c->number, (unsigned long)c->peer.uid, cfg->io_timeout_ms);
		conn_close(c, "half-sent frame");
		return;
	}
	if (c->writing && now - c->write_started_ms > cfg->io_timeout_ms) {
		log_msg(LOG_LVL_WARNING, "conn %llu uid=%lu: replies not read within %u ms, closed",
			(unsigned long long)c->number, (unsigned long)c->peer.uid, cfg->io_timeout_ms);
		conn_close(c, "replies not read");
		return;
	}
	if (c->ncalls == 0 && c->rcall == NULL && c->hdr_len == 0 && !c->writing &&
	    c->out.len == 0 && now - c->last_active_ms > cfg->idle_timeout_ms)
		conn_close(c, "idle");
}

/* ---- calls ------------------------------------------------------------------------ */

void conn_call_add(struct conn *c, struct call *call)
{
	list_add_tail(&c->calls, &call->conn_node);
	c->ncalls++;
}

void conn_call_done(struct conn *c, struct call *call)
{
	if (list_linked(&call->conn_node)) {
		list_del(&call->conn_node);
		c->ncalls--;
	}
	c->last_active_ms = uv_now(c->srv->b->loop);
	conn_update(c);
}

struct call *conn_find_call(struct conn *c, uint64_t id)
{
	for (struct list_node *n = c->calls.next; n != &c->calls; n = n->next) {
		struct call *call = list_entry(n, struct call, conn_node);

		if (call->id == id)
			return call;
	}
	return NULL;
}

/* ---- accepting ----------------------------------------------------------------------- */

static void read_peer(struct conn *c)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	gid_t groups[PEER_GROUPS_READ];
	uv_os_fd_t fd;

	c->peer.uid = (uid_t)-1;
	c->peer.gid = (gid_t)-1;
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 && len == sizeof(uc)) {
		c->peer.pid = uc.pid;
		c->peer.uid = uc.uid;
		c->peer.gid = uc.gid;
	}
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		unsigned n = (unsigned)(len / sizeof(gid_t));

		if (n > CONFIG_PEER_GROUPS_MAX)
			n = CONFIG_PEER_GROUPS_MAX;
		memcpy(c->peer.groups, groups, n * sizeof(gid_t));
		c->peer.ngroups = n;
	}
}

static void on_refused_closed(uv_handle_t *h)
{
	free(h);
}

int conn_accept(server *s)
{
	struct bridge *b = s->b;
	struct conn *c;
	int rc;

	if (s->nconns >= b->cfg->max_connections || b->draining) {
		uv_pipe_t *tmp = malloc(sizeof(*tmp));

		if (tmp == NULL)
			return -ENOMEM;
		uv_pipe_init(b->loop, tmp, 0);
		(void)uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)tmp);
		uv_close((uv_handle_t *)tmp, on_refused_closed);
		if (s->refused++ % 1000 == 0)
			log_msg(LOG_LVL_WARNING, "connection refused: %u connections (max_connections)",
				s->nconns);
		return -EAGAIN;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	rc = uv_pipe_init(b->loop, &c->pipe, 0);
	if (rc != 0) {
		free(c);
		return rc;
	}
	c->pipe.data = c;
	c->srv = s;
	c->number = ++s->next_number;
	list_init(&c->calls);
	list_node_init(&c->resume_node);
	list_add_tail(&s->conns, &c->node);
	server_conn_opened(s);
	c->last_active_ms = uv_now(b->loop);
	rc = uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->pipe);
	if (rc != 0) {
		conn_close(c, "accept failed");
		return rc;
	}
	read_peer(c);
	if (!config_acl_knows(b->cfg, &c->peer))
		log_msg(LOG_LVL_WARNING,
			"conn %llu from uid=%lu gid=%lu pid=%ld: no ACL entry allows this caller; its calls will be refused",
			(unsigned long long)c->number, (unsigned long)c->peer.uid,
			(unsigned long)c->peer.gid, (long)c->peer.pid);
	else
		log_msg(LOG_LVL_DEBUG, "conn %llu from uid=%lu pid=%ld", (unsigned long long)c->number,
			(unsigned long)c->peer.uid, (long)c->peer.pid);
	conn_update(c);
	return 0;
}
