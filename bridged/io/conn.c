/* One connection: frames in, frames out, caps and backpressure. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "snap_err.h"
#include "snap_frame.h"

#define PEER_GROUPS_READ 1024 /* SO_PEERGROUPS read buffer, in gids */

static uint8_t read_buf[CONN_READ_BUF]; /* shared: libuv reads one handle at a time */


struct conn_buf {
	uint8_t *data;
	size_t len, cap;
};

/* What the connection speaks: decided by its first byte. */
enum conn_proto { PROTO_UNKNOWN, PROTO_NATIVE, PROTO_H2 };

struct conn {
	uv_pipe_t pipe;
	conn_host *host;
	void *user;                     /* the upper layer's (conn_ops.open) */
	struct list_node node;          /* in host.conns */
	struct list_node resume_node;   /* in host.resume */
	uint64_t number;
	peer peer;
	/* reading */
	uint8_t hdr[SNAP_FRAME_HEADER];
	unsigned hdr_len;
	void *rframe;                   /* the upper layer's frame being read (NULL: none) */
	uint8_t *body;
	uint32_t body_len, body_got;
	uint64_t frame_started_ms;
	uint8_t *stash;                 /* bytes read but not yet parsed (backpressure) */
	size_t stash_len;
	unsigned held;                  /* calls in flight (conn_hold) */
	/* writing */
	struct conn_buf out;            /* frames waiting */
	struct conn_buf wout;           /* frames being written */
	uv_write_t wreq;
	bool writing;
	uint64_t write_started_ms;
	uint64_t last_active_ms;
	bool reading, eof, broken, closing;
	/* HTTP/2 */
	enum conn_proto proto;
	h2 *h2;                         /* the session (PROTO_H2) */
	bool in_h2;                     /* inside a call into h2 (its callbacks may run) */
};

static size_t out_pending(const struct conn *c)
{
	return c->out.len + c->wout.len;
}

static bool can_take_frames(const struct conn *c)
{
	const conn_host *h = c->host;

	/* HTTP/2 reads on while calls are in flight or draining (cancels, flow
	   control, pings): its streams are capped by SETTINGS, not by reading */
	if (c->proto == PROTO_H2)
		return !c->closing && !c->eof && !c->broken &&
		       out_pending(c) < CONN_OUT_HIGH + h->cfg->max_frame;
	return !c->closing && !c->eof && !c->broken && !h->draining &&
	       c->held < h->cfg->max_calls && out_pending(c) < CONN_OUT_HIGH + h->cfg->max_frame;
}

static void queue_resume(struct conn *c)
{
	conn_host *h = c->host;

	if (list_linked(&c->resume_node))
		return;
	list_add_tail(&h->resume, &c->resume_node);
	h->wake(h);
}

/* ---- closing ---------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	conn_host *host = c->host;

	free(c->out.data);
	free(c->wout.data);
	free(c->stash);
	free(c);
	host->nconns--;
	host->closed(host);
}

void conn_close(struct conn *c, const char *why)
{
	if (c->closing)
		return;
	if (c->in_h2) {
		/* never under the h2 session's feet: later, from the idle handle */
		c->broken = true;
		queue_resume(c);
		return;
	}
	c->closing = true;
	log_msg(LOG_LVL_DEBUG, "conn %llu closed: %s", (unsigned long long)c->number, why);
	list_del(&c->node);
	if (list_linked(&c->resume_node))
		list_del(&c->resume_node);
	if (c->rframe != NULL) {
		c->host->ops->frame_drop(c->user, c->rframe);
		c->rframe = NULL;
	}
	if (c->h2 != NULL) {
		c->in_h2 = true;
		h2_free(c->h2); /* its streams' calls lose their caller; the upper layer ends */
		c->h2 = NULL;
		c->in_h2 = false;
	} else if (c->user != NULL) {
		c->host->ops->close(c->user); /* its calls lose their caller */
	}
	c->user = NULL;
	c->held = 0;
	uv_close((uv_handle_t *)&c->pipe, on_closed);
}

/* ---- writing ---------------------------------------------------------------------- */

static void flush(struct conn *c);
static void h2_pump(struct conn *c);

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	c->writing = false;
	/* an idle connection keeps no buffer; a busy one keeps a small one */
	if (c->wout.cap > CONN_OUT_KEEP || (c->held == 0 && c->out.len == 0)) {
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
	c->last_active_ms = uv_now(c->host->loop);
	if (c->h2 != NULL)
		h2_pump(c);
	if (c->out.len > 0) {
		flush(c);
	} else if (c->held == 0 && c->out.data != NULL) {
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
	c->write_started_ms = uv_now(c->host->loop);
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

uint8_t *conn_frame_reserve(struct conn *c, size_t n)
{
	if (c->closing || c->broken || n > UINT32_MAX)
		return NULL;
	if (buf_reserve(&c->out, SNAP_FRAME_HEADER + n) != 0) {
		c->broken = true;
		queue_resume(c);
		return NULL;
	}
	snap_frame_header_write(c->out.data + c->out.len, (uint32_t)n);
	return c->out.data + c->out.len + SNAP_FRAME_HEADER;
}

void conn_frame_commit(struct conn *c, size_t n)
{
	c->out.len += SNAP_FRAME_HEADER + n;
	if (!c->writing)
		queue_resume(c); /* written once for the loop turn's frames (conn_resume) */
}

/* The stream is broken: answer once, stop reading, close when written. */
static void protocol_error(struct conn *c, enum conn_error err, const char *msg)
{
	log_msg(LOG_LVL_WARNING, "conn %llu uid=%lu pid=%ld: %s", (unsigned long long)c->number,
		(unsigned long)c->peer.uid, (long)c->peer.pid, msg);
	c->host->ops->error(c->user, err, msg);
	c->broken = true;
	conn_update(c);
}

/* ---- HTTP/2 ------------------------------------------------------------------------ */

/* Move the session's output into the output buffer, up to its bound. true:
 * the bound stopped it (the session may have more). */
static bool h2_collect(struct conn *c)
{
	bool full = false;

	c->in_h2 = true;
	while (!(full = out_pending(c) >= CONN_OUT_HIGH)) {
		const uint8_t *p;
		ssize_t n = h2_output(c->h2, &p);

		if (n < 0) {
			log_msg(LOG_LVL_WARNING, "conn %llu uid=%lu: HTTP/2: %s", (unsigned long long)c->number,
				(unsigned long)c->peer.uid, h2_error(c->h2));
			c->broken = true;
		}
		if (n <= 0)
			break;
		if (buf_reserve(&c->out, (size_t)n) != 0) {
			c->broken = true;
			break;
		}
		memcpy(c->out.data + c->out.len, p, (size_t)n);
		c->out.len += (size_t)n;
	}
	c->in_h2 = false;
	return full;
}

/* Write the output buffer at once if the socket takes all of it: true, and
 * the buffer is empty. Otherwise what is left goes to uv_write (flush). A
 * write that completes at once costs one system call, where uv_write's
 * request also has libuv re-arm the socket's poll (epoll_ctl) and run a
 * write callback. A connection that ends (GOAWAY, a drain, the peer's EOF, a
 * protocol error) writes through uv_write as before: it closes once that
 * write is done, a turn of the loop later, not at once. */
static bool write_now(struct conn *c)
{
	uv_buf_t buf;
	int n;

	if (c->writing || c->out.len == 0 || c->closing)
		return false;
	if (c->broken || c->eof || c->host->draining || (c->h2 != NULL && !h2_alive(c->h2))) {
		flush(c);
		return false;
	}
	buf = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
	n = uv_try_write((uv_stream_t *)&c->pipe, &buf, 1);
	if (n == (int)c->out.len) {
		c->out.len = 0;
		c->last_active_ms = uv_now(c->host->loop);
		if (c->out.cap > CONN_OUT_KEEP || (c->h2 == NULL && c->held == 0)) {
			/* an idle native connection keeps no buffer; a busy one, or an
			   HTTP/2 one, a small one (conn_sweep frees HTTP/2's when idle) */
			free(c->out.data);
			c->out.data = NULL;
			c->out.cap = 0;
		}
		return true;
	}
	if (n > 0) {
		memmove(c->out.data, c->out.data + n, c->out.len - (size_t)n);
		c->out.len -= (size_t)n;
	}
	flush(c); /* the rest; an error (not UV_EAGAIN) comes back as uv_write's */
	return false;
}

/* Move the session's output into the output buffer, up to its bound, and
 * write it; again while the socket takes it all at once and the session has more. */
static void h2_pump(struct conn *c)
{
	if (c->h2 == NULL || c->in_h2 || c->closing)
		return;
	while (h2_collect(c) && write_now(c))
		;
	(void)write_now(c);
}

/* The connection sent the client preface: the native upper layer lets it
 * go, HTTP/2's takes it. 0 or -ENOMEM. */
static int h2_start(struct conn *c)
{
	const conn_ops *ops = c->host->ops;
	const config *cfg = c->host->cfg;
	h2_limits lim;
	void *user;

	if (c->user != NULL)
		ops->close(c->user);
	c->user = NULL;
	c->proto = PROTO_H2;
	user = ops->h2_open(c, c->host->ops_data);
	if (user == NULL)
		return -ENOMEM;
	lim.max_streams = cfg->max_calls;
	lim.window = cfg->max_frame + SNAP_FRAME_HEADER;
	lim.max_header_list = H2_HEADER_LIST_MAX;
	if (h2_new(&lim, ops->h2, user, &c->h2) != 0) {
		ops->h2->close(user);
		return -ENOMEM;
	}
	c->user = user;
	log_msg(LOG_LVL_DEBUG, "conn %llu speaks HTTP/2", (unsigned long long)c->number);
	return 0;
}

static void h2_feed(struct conn *c, const uint8_t *data, size_t n)
{
	int rc;

	c->in_h2 = true;
	rc = h2_recv(c->h2, data, n, uv_now(c->host->loop));
	c->in_h2 = false;
	if (rc != 0) {
		log_msg(LOG_LVL_WARNING, "conn %llu uid=%lu pid=%ld: HTTP/2: %s",
			(unsigned long long)c->number, (unsigned long)c->peer.uid, (long)c->peer.pid,
			h2_error(c->h2));
		c->broken = true;
	}
	h2_pump(c);
}

h2 *conn_h2(struct conn *c)
{
	return c->h2;
}

void conn_flush(struct conn *c)
{
	h2_pump(c); /* inside an h2 callback: the caller of h2 pumps after it */
}

/* ---- reading ---------------------------------------------------------------------- */

static void frame_done(struct conn *c)
{
	void *frame = c->rframe;

	c->rframe = NULL;
	c->body = NULL;
	c->host->ops->frame_end(c->user, frame);
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
	conn_host *h = c->host;

	while (n > 0 && !c->closing && !c->broken) {
		uint32_t len;
		size_t k;
		int rc;

		if (c->rframe != NULL) {
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
			if (!c->eof && !h->draining)
				stash(c, data, n);
			return;
		}
		if (c->hdr_len == 0)
			c->frame_started_ms = uv_now(h->loop);
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
		rc = snap_frame_header_read(c->hdr, h->cfg->max_frame, &len);
		if (rc == SNAP_ERR_INVALID) {
			char msg[96];

			snprintf(msg, sizeof(msg), "bad frame: flags byte 0x%02x, must be 0", c->hdr[0]);
			protocol_error(c, CONN_ERR_FLAGS, msg);
			return;
		}
		if (rc != 0) {
			char msg[128];
			uint32_t want = (uint32_t)c->hdr[1] << 24 | (uint32_t)c->hdr[2] << 16 |
					(uint32_t)c->hdr[3] << 8 | c->hdr[4];

			snprintf(msg, sizeof(msg), "frame of %u bytes is over the cap of %u bytes", want,
				 h->cfg->max_frame);
			protocol_error(c, CONN_ERR_TOO_BIG, msg);
			return;
		}
		c->body = h->ops->frame_begin(c->user, len, &c->rframe);
		if (c->body == NULL) {
			c->rframe = NULL;
			protocol_error(c, CONN_ERR_NOMEM, "out of memory");
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
	if (c->rframe != NULL && c->body_len - c->body_got >= CONN_DIRECT_READ_MIN)
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
		if (c->rframe != NULL || c->hdr_len > 0) {
			conn_close(c, "end of stream inside a frame");
			return;
		}
		conn_update(c);
		return;
	}
	c->last_active_ms = uv_now(c->host->loop);
	if (c->proto == PROTO_UNKNOWN) {
		c->proto = PROTO_NATIVE;
		if (((const uint8_t *)buf->base)[0] == (uint8_t)H2_PREFACE[0] &&
		    c->host->ops->h2 != NULL && h2_start(c) != 0) {
			conn_close(c, "out of memory");
			return;
		}
	}
	if (c->proto == PROTO_H2) {
		h2_feed(c, (const uint8_t *)buf->base, (size_t)nread);
		conn_update(c);
		return;
	}
	if (c->rframe != NULL && (uint8_t *)buf->base == c->body + c->body_got) {
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
	if (c->h2 == NULL)
		(void)write_now(c); /* the frames of the loop turn, in one write */
	h2_pump(c);
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

/* conn_update of an HTTP/2 connection: GOAWAY when draining; close when
 * the session is over, or when nothing is left to answer after EOF or a drain. */
static void h2_update(struct conn *c)
{
	bool quiet = !c->writing && c->out.len == 0;

	if (c->in_h2)
		return; /* the caller of h2 updates after it */
	if (c->host->draining && !c->broken) {
		c->in_h2 = true;
		h2_shutdown(c->h2);
		c->in_h2 = false;
		h2_pump(c);
		quiet = !c->writing && c->out.len == 0;
	}
	if ((c->broken || !h2_alive(c->h2)) && quiet)
		conn_close(c, c->broken ? "protocol error" : "HTTP/2 session ended");
	else if ((c->eof || c->host->draining) && c->held == 0 && h2_streams(c->h2) == 0 && quiet)
		conn_close(c, c->eof ? "end of stream" : "draining");
}

void conn_update(struct conn *c)
{
	const conn_host *h = c->host;
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
	if (c->h2 != NULL) {
		h2_update(c);
		return;
	}
	if ((c->eof || c->broken || h->draining) && c->held == 0 && !c->writing && c->out.len == 0)
		conn_close(c, c->broken ? "protocol error" : c->eof ? "end of stream" : "draining");
}

void conn_sweep(struct conn *c, uint64_t now)
{
	const config *cfg = c->host->cfg;

	if (c->h2 != NULL) {
		unsigned n = h2_sweep(c->h2, now, cfg->io_timeout_ms);

		if (n > 0) {
			log_msg(LOG_LVL_WARNING, "conn %llu uid=%lu: %u HTTP/2 stream(s) not completed "
				"within %u ms, reset", (unsigned long long)c->number,
				(unsigned long)c->peer.uid, n, cfg->io_timeout_ms);
			h2_pump(c);
		}
		if (!c->writing && c->out.len == 0 && h2_streams(c->h2) == 0 && c->out.data != NULL) {
			free(c->out.data); /* an idle connection keeps no buffer */
			c->out.data = NULL;
			c->out.cap = 0;
		}
	}

	if ((c->rframe != NULL || c->hdr_len > 0) && now - c->frame_started_ms > cfg->io_timeout_ms) {
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
	if (c->held == 0 && c->rframe == NULL && c->hdr_len == 0 && !c->writing &&
	    c->out.len == 0 && (c->h2 == NULL || h2_streams(c->h2) == 0) &&
	    now - c->last_active_ms > cfg->idle_timeout_ms)
		conn_close(c, "idle");
}

/* ---- the upper layer ------------------------------------------------------------------ */

void conn_hold(struct conn *c)
{
	c->held++;
}

void conn_release(struct conn *c)
{
	if (c->closing)
		return;
	if (c->held > 0)
		c->held--;
	c->last_active_ms = uv_now(c->host->loop);
	conn_update(c);
}

const peer *conn_peer(const struct conn *c)
{
	return &c->peer;
}

uint64_t conn_number(const struct conn *c)
{
	return c->number;
}

uint32_t conn_max_frame(const struct conn *c)
{
	return c->host->cfg->max_frame;
}

struct conn *conn_of_node(struct list_node *n)
{
	return list_entry(n, struct conn, node);
}

struct conn *conn_of_resume_node(struct list_node *n)
{
	return list_entry(n, struct conn, resume_node);
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

int conn_accept(conn_host *h, uv_stream_t *listener)
{
	struct conn *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL)
		return -ENOMEM;
	rc = uv_pipe_init(h->loop, &c->pipe, 0);
	if (rc != 0) {
		free(c);
		return rc;
	}
	c->pipe.data = c;
	c->host = h;
	c->number = ++h->accepted;
	list_node_init(&c->resume_node);
	list_add_tail(&h->conns, &c->node);
	h->nconns++;
	c->last_active_ms = uv_now(h->loop);
	rc = uv_accept(listener, (uv_stream_t *)&c->pipe);
	if (rc != 0) {
		conn_close(c, "accept failed");
		return rc;
	}
	read_peer(c);
	if (!config_acl_knows(h->cfg, &c->peer))
		log_msg(LOG_LVL_WARNING,
			"conn %llu from uid=%lu gid=%lu pid=%ld: no ACL entry allows this caller; its calls will be refused",
			(unsigned long long)c->number, (unsigned long)c->peer.uid,
			(unsigned long)c->peer.gid, (long)c->peer.pid);
	else
		log_msg(LOG_LVL_DEBUG, "conn %llu from uid=%lu pid=%ld", (unsigned long long)c->number,
			(unsigned long)c->peer.uid, (long)c->peer.pid);
	c->user = h->ops->open(c, h->ops_data);
	if (c->user == NULL) {
		conn_close(c, "out of memory");
		return -ENOMEM;
	}
	conn_update(c);
	return 0;
}
