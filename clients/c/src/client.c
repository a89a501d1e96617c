/* libdokubridge: one connection to doku-bridged, many calls in flight on it.
 *
 * A call is a struct in two indexes: a hash table by id (replies find their
 * call) and a list in start order (deadlines, failures, free). Its frame sits
 * in the send queue until it is completely written; a call is "sent" from the
 * moment its first byte went out (the daemon may then act on it). Received
 * bytes collect in one buffer capped at header + max_frame; complete frames
 * are dispatched in order. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "snap_err.h"
#include "snap_frame.h"

_Static_assert(DOKUBRIDGE_FRAME_MAX_DEFAULT == SNAP_FRAME_MAX_DEFAULT,
	       "the client's default frame cap is the protocol's");

#define READ_CHUNK (64u * 1024u)  /* bytes asked of one read(2) at least */
#define WRITE_IOV_MAX 64u         /* frames handed to one sendmsg(2) */

struct obuf {
	struct obuf *next;
	struct call *call; /* the call whose frame this is; NULL for a cancel frame */
	size_t len;        /* bytes of data */
	size_t off;        /* bytes already written */
	uint8_t data[];
};

struct call {
	uint64_t id;
	struct call *prev, *next;       /* the list of calls in flight */
	int64_t deadline;               /* monotonic ms; 0: none */
	const ProtobufCMessageDescriptor *output; /* NULL: raw call */
	dokubridge_done_fn done;
	dokubridge_raw_done_fn raw_done;
	void *arg;
	struct obuf *ob;                /* its frame while not completely written */
	bool started_sending;           /* a byte of its frame went out */
};

struct dokubridge_client {
	char path[DOKUBRIDGE_SOCKET_PATH_MAX];
	char default_profile[DOKUBRIDGE_PROFILE_MAX + 1];
	uint32_t max_frame;
	uint32_t max_in_flight;
	uint32_t default_timeout_ms;

	int fd;             /* -1: none; kept open after a failure until connect/free */
	bool up;            /* the connection works */
	int pending_errno;  /* a write failed inside a start/cancel: fail at the next process */

	uint64_t next_id;
	struct call **table; /* open addressing, linear probing; capacity table_mask + 1 */
	size_t table_mask;
	size_t n_calls;
	struct call head;    /* sentinel of the list of calls in flight */

	struct obuf *out_head, *out_tail;
	size_t out_bytes;

	uint8_t *rbuf;
	size_t rlen, rcap;

	int in_callback;     /* > 0 while a completion callback runs */
};

/* ---- small helpers ------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t hash_slot(const dokubridge_client *c, uint64_t id)
{
	return (size_t)(id * 0x9E3779B97F4A7C15ull) & c->table_mask;
}

static void table_put(dokubridge_client *c, struct call *k)
{
	size_t i = hash_slot(c, k->id);

	while (c->table[i])
		i = (i + 1) & c->table_mask;
	c->table[i] = k;
}

static struct call *table_get(const dokubridge_client *c, uint64_t id)
{
	for (size_t i = hash_slot(c, id); c->table[i]; i = (i + 1) & c->table_mask)
		if (c->table[i]->id == id)
			return c->table[i];
	return NULL;
}

/* Remove by backward shift, so that lookups never need tombstones. */
static void table_del(dokubridge_client *c, const struct call *k)
{
	size_t i = hash_slot(c, k->id), j;

	while (c->table[i] != k)
		i = (i + 1) & c->table_mask;
	c->table[i] = NULL;
	for (j = (i + 1) & c->table_mask; c->table[j]; j = (j + 1) & c->table_mask) {
		size_t home = hash_slot(c, c->table[j]->id);
		/* move j to the hole at i when its home is not within (i, j] */
		if (((j - home) & c->table_mask) >= ((j - i) & c->table_mask)) {
			c->table[i] = c->table[j];
			c->table[j] = NULL;
			i = j;
		}
	}
}

static void list_add(dokubridge_client *c, struct call *k)
{
	k->prev = c->head.prev;
	k->next = &c->head;
	c->head.prev->next = k;
	c->head.prev = k;
}

static void list_del(struct call *k)
{
	k->prev->next = k->next;
	k->next->prev = k->prev;
	k->prev = k->next = NULL;
}

/* Take k out of both indexes (it is no longer in flight). */
static void call_detach(dokubridge_client *c, struct call *k)
{
	table_del(c, k);
	list_del(k);
	c->n_calls--;
}

static void out_push(dokubridge_client *c, struct obuf *o)
{
	o->next = NULL;
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_bytes += o->len;
}

/* Unlink an unwritten frame from the send queue and free it. */
static void out_remove(dokubridge_client *c, struct obuf *o)
{
	struct obuf **pp = &c->out_head, *prev = NULL;

	while (*pp && *pp != o) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = o->next;
	if (c->out_tail == o)
		c->out_tail = prev;
	c->out_bytes -= o->len - o->off;
	free(o);
}

static void out_clear(dokubridge_client *c)
{
	struct obuf *o, *next;

	for (o = c->out_head; o; o = next) {
		next = o->next;
		if (o->call)
			o->call->ob = NULL;
		free(o);
	}
	c->out_head = c->out_tail = NULL;
	c->out_bytes = 0;
}

/* ---- completion ------------------------------------------------------------ */

/* Run k's callback with res and the serialized response data[0..len), then
 * free k. k must be detached already. */
static void call_finish(dokubridge_client *c, struct call *k, dokubridge_result *res,
			const uint8_t *data, size_t len, bool have_message)
{
	res->call_id = k->id;
	c->in_callback++;
	if (k->output) {
		ProtobufCMessage *msg = NULL;

		if (have_message) {
			msg = protobuf_c_message_unpack(k->output, NULL, len, data);
			if (!msg && res->code == DOKUBRIDGE_OK) {
				res->code = DOKUBRIDGE_INTERNAL;
				dokubridge__copy(res->message, sizeof res->message,
						 "the daemon's response message does not parse");
			}
		}
		k->done(c, k->arg, res, msg);
	} else {
		k->raw_done(c, k->arg, res, have_message ? data : NULL, have_message ? len : 0);
	}
	c->in_callback--;
	free(k);
}

/* Complete k locally (no Reply): detached already. */
static void call_finish_local(dokubridge_client *c, struct call *k, dokubridge_code code,
			      const char *msg)
{
	dokubridge_result res;
	bool sent = k->started_sending;

	if (k->ob) {
		if (k->ob->off == 0)
			out_remove(c, k->ob);
		else
			k->ob->call = NULL; /* partly written: finish writing it, keep framing */
		k->ob = NULL;
	}
	dokubridge__fail(&res, code, sent ? DOKUBRIDGE_OUTCOME_UNKNOWN : DOKUBRIDGE_OUTCOME_NOT_DONE,
			 "%s", msg);
	call_finish(c, k, &res, NULL, 0, false);
}

/* Take every call out of the indexes into a private list, then complete each
 * (callbacks may start new calls meanwhile; those are not affected). */
static void fail_all(dokubridge_client *c, dokubridge_code code, const char *msg)
{
	struct call list, *k;

	if (c->n_calls == 0)
		return;
	list.next = c->head.next;
	list.prev = c->head.prev;
	list.next->prev = &list;
	list.prev->next = &list;
	c->head.next = c->head.prev = &c->head;
	memset(c->table, 0, (c->table_mask + 1) * sizeof *c->table);
	c->n_calls = 0;
	while ((k = list.next) != &list) {
		list_del(k);
		call_finish_local(c, k, code, msg);
	}
}

/* The connection failed: complete every call in flight with code; keep the fd
 * open (event loops must stop watching it before it is closed). -code. */
static int conn_fail(dokubridge_client *c, dokubridge_code code, const char *msg)
{
	c->up = false;
	c->pending_errno = 0;
	out_clear(c);
	c->rlen = 0;
	fail_all(c, code, msg);
	return -(int)code;
}

static int errno_fail(dokubridge_client *c, int err, const char *what)
{
	char msg[DOKUBRIDGE_MESSAGE_MAX];

	snprintf(msg, sizeof msg, "connection to doku-bridged lost (%s: %s)", what, strerror(err));
	return conn_fail(c, DOKUBRIDGE_UNAVAILABLE, msg);
}

/* ---- sending --------------------------------------------------------------- */

/* Write as much of the send queue as the socket takes. 0, or an errno. */
static int flush(dokubridge_client *c)
{
	while (c->out_head) {
		struct iovec iov[WRITE_IOV_MAX];
		struct msghdr mh;
		struct obuf *o;
		unsigned n = 0;
		ssize_t w;

		for (o = c->out_head; o && n < WRITE_IOV_MAX; o = o->next, n++) {
			iov[n].iov_base = o->data + o->off;
			iov[n].iov_len = o->len - o->off;
		}
		memset(&mh, 0, sizeof mh);
		mh.msg_iov = iov;
		mh.msg_iovlen = n;
		w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return errno;
		}
		c->out_bytes -= (size_t)w;
		while (w > 0) {
			o = c->out_head;
			size_t left = o->len - o->off;
			size_t take = (size_t)w < left ? (size_t)w : left;

			o->off += take;
			w -= (ssize_t)take;
			if (o->call)
				o->call->started_sending = true;
			if (o->off < o->len)
				break;
			c->out_head = o->next;
			if (!c->out_head)
				c->out_tail = NULL;
			if (o->call)
				o->call->ob = NULL;
			free(o);
		}
	}
	return 0;
}

/* Flush, deferring a failure to the next dokubridge_process (no callback may
 * run from inside start or cancel). */
static void flush_deferred(dokubridge_client *c)
{
	int err = flush(c);

	if (err && !c->pending_errno)
		c->pending_errno = err;
}

/* A frame holding Call msg, as a send-queue entry. NULL on failure (errno
 * ENOMEM or EMSGSIZE). */
static struct obuf *frame_new(const dokubridge_client *c, const Doku__Bridge__V1__Call *msg)
{
	size_t n = doku__bridge__v1__call__get_packed_size(msg);
	struct obuf *o;

	if (n > c->max_frame) {
		errno = EMSGSIZE;
		return NULL;
	}
	o = malloc(sizeof *o + SNAP_FRAME_HEADER + n);
	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	o->next = NULL;
	o->call = NULL;
	o->off = 0;
	o->len = SNAP_FRAME_HEADER + n;
	snap_frame_header_write(o->data, (uint32_t)n);
	doku__bridge__v1__call__pack(msg, o->data + SNAP_FRAME_HEADER);
	return o;
}

/* Queue Call{id, cancel}. Best effort: on failure the deadline still applies. */
static void queue_cancel(dokubridge_client *c, uint64_t id)
{
	Doku__Bridge__V1__Call msg = DOKU__BRIDGE__V1__CALL__INIT;
	struct obuf *o;

	msg.id = id;
	msg.cancel = 1;
	if (!c->up || c->out_bytes > DOKUBRIDGE_OUTBUF_MAX)
		return;
	o = frame_new(c, &msg);
	if (!o)
		return;
	out_push(c, o);
	flush_deferred(c);
}

/* ---- receiving ------------------------------------------------------------- */

static void dispatch(dokubridge_client *c, const uint8_t *data, size_t len)
{
	Doku__Bridge__V1__Reply *r;
	struct call *k;
	dokubridge_result res;

	r = doku__bridge__v1__reply__unpack(NULL, len, data);
	if (!r)
		return; /* an unreadable reply cannot be matched to a call; its deadline will */
	k = table_get(c, r->id);
	if (!k) {
		/* a late reply: the call met its local deadline or was freed */
		doku__bridge__v1__reply__free_unpacked(r, NULL);
		return;
	}
	call_detach(c, k);
	if (k->ob) { /* cannot happen with a well-behaved daemon: it answered before reading it all */
		k->ob->call = NULL;
		k->ob = NULL;
	}
	memset(&res, 0, sizeof res);
	res.code = ((int)r->code >= 0 && (int)r->code < DOKUBRIDGE_CODE_COUNT) ? (dokubridge_code)r->code
								      : DOKUBRIDGE_UNKNOWN;
	dokubridge__copy(res.message, sizeof res.message, r->status_message);
	res.http_status = r->http_status;
	dokubridge__copy(res.response_code, sizeof res.response_code, r->response_code);
	dokubridge__copy(res.response_message, sizeof res.response_message, r->response_message);
	dokubridge__copy(res.external_id, sizeof res.external_id, r->external_id);
	dokubridge__copy(res.partner_reference_no, sizeof res.partner_reference_no,
			 r->partner_reference_no);
	res.outcome = ((int)r->outcome >= 0 && (int)r->outcome <= (int)DOKUBRIDGE_OUTCOME_UNKNOWN)
			      ? (dokubridge_outcome)r->outcome
			      : DOKUBRIDGE_OUTCOME_UNSPECIFIED;
	/* on OK, zero bytes are the empty message (proto3 cannot tell it from none) */
	call_finish(c, k, &res, r->message.data, r->message.len,
		    r->message.len > 0 || res.code == DOKUBRIDGE_OK);
	doku__bridge__v1__reply__free_unpacked(r, NULL);
}

/* Dispatch every complete frame in rbuf. 0 or a negative code (connection failed). */
static int parse_frames(dokubridge_client *c)
{
	size_t pos = 0;

	while (c->up && c->rlen - pos >= SNAP_FRAME_HEADER) {
		uint32_t n;
		int err = snap_frame_header_read(c->rbuf + pos, c->max_frame, &n);

		if (err == SNAP_ERR_TOO_BIG) {
			char msg[DOKUBRIDGE_MESSAGE_MAX];

			snprintf(msg, sizeof msg,
				 "the daemon sent a frame over the %u-byte cap", (unsigned)c->max_frame);
			return conn_fail(c, DOKUBRIDGE_RESOURCE_EXHAUSTED, msg);
		}
		if (err)
			return conn_fail(c, DOKUBRIDGE_INTERNAL,
					 "protocol error: the daemon sent a frame with a non-zero flags byte");
		if (c->rlen - pos < SNAP_FRAME_HEADER + (size_t)n)
			break;
		dispatch(c, c->rbuf + pos + SNAP_FRAME_HEADER, n);
		pos += SNAP_FRAME_HEADER + (size_t)n;
	}
	if (pos) {
		memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
		c->rlen -= pos;
	}
	return 0;
}

/* Room for at least READ_CHUNK more bytes, but never more than one maximal
 * frame plus a header (a header announcing more was refused already). */
static int rbuf_reserve(dokubridge_client *c)
{
	size_t limit = SNAP_FRAME_HEADER + (size_t)c->max_frame + READ_CHUNK;
	size_t want = c->rlen + READ_CHUNK;
	uint8_t *p;

	if (c->rcap >= want)
		return 0;
	if (want > limit)
		want = limit;
	if (c->rcap >= want)
		return 0;
	p = realloc(c->rbuf, want);
	if (!p)
		return -1;
	c->rbuf = p;
	c->rcap = want;
	return 0;
}

/* Read until the socket is drained. 0 or a negative code (connection failed). */
static int do_read(dokubridge_client *c)
{
	for (;;) {
		ssize_t r;
		int rc;

		if (rbuf_reserve(c) < 0)
			return conn_fail(c, DOKUBRIDGE_RESOURCE_EXHAUSTED,
					 "out of memory for the receive buffer");
		r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return errno_fail(c, errno, "read");
		}
		if (r == 0)
			return conn_fail(c, DOKUBRIDGE_UNAVAILABLE,
					 "doku-bridged closed the connection");
		c->rlen += (size_t)r;
		rc = parse_frames(c);
		if (rc < 0)
			return rc;
	}
}

/* Complete calls whose deadline has passed. */
static void expire(dokubridge_client *c)
{
	struct call list, *k, *next;
	int64_t now;

	if (c->n_calls == 0)
		return;
	now = now_ms();
	list.next = list.prev = &list;
	for (k = c->head.next; k != &c->head; k = next) {
		next = k->next;
		if (k->deadline && k->deadline <= now) {
			call_detach(c, k);
			k->prev = list.prev;
			k->next = &list;
			list.prev->next = k;
			list.prev = k;
		}
	}
	while ((k = list.next) != &list) {
		list_del(k);
		if (k->started_sending)
			queue_cancel(c, k->id);
		call_finish_local(c, k, DOKUBRIDGE_DEADLINE_EXCEEDED,
				  "deadline exceeded before doku-bridged answered");
	}
}

/* ---- public: lifecycle ------------------------------------------------------ */

int dokubridge_new(const dokubridge_config *cfg, dokubridge_client **out)
{
	dokubridge_config def = {0};
	dokubridge_client *c;
	const char *path;
	size_t cap;

	if (!out)
		return -DOKUBRIDGE_INVALID_ARGUMENT;
	*out = NULL;
	if (!cfg)
		cfg = &def;
	path = cfg->socket_path;
	if (!path || !*path)
		path = getenv(DOKUBRIDGE_SOCKET_ENV);
	if (!path || !*path)
		path = DOKUBRIDGE_DEFAULT_SOCKET;
	if (strlen(path) >= DOKUBRIDGE_SOCKET_PATH_MAX)
		return -DOKUBRIDGE_INVALID_ARGUMENT;
	if (cfg->max_frame > DOKUBRIDGE_FRAME_MAX_LIMIT ||
	    cfg->max_in_flight > DOKUBRIDGE_IN_FLIGHT_LIMIT)
		return -DOKUBRIDGE_INVALID_ARGUMENT;
	if (cfg->default_profile && strlen(cfg->default_profile) > DOKUBRIDGE_PROFILE_MAX)
		return -DOKUBRIDGE_INVALID_ARGUMENT;

	c = calloc(1, sizeof *c);
	if (!c)
		return -DOKUBRIDGE_RESOURCE_EXHAUSTED;
	dokubridge__copy(c->path, sizeof c->path, path);
	dokubridge__copy(c->default_profile, sizeof c->default_profile, cfg->default_profile);
	c->max_frame = cfg->max_frame ? cfg->max_frame : DOKUBRIDGE_FRAME_MAX_DEFAULT;
	c->max_in_flight = cfg->max_in_flight ? cfg->max_in_flight : DOKUBRIDGE_IN_FLIGHT_DEFAULT;
	c->default_timeout_ms = cfg->default_timeout_ms;
	c->fd = -1;
	c->next_id = 1;
	c->head.next = c->head.prev = &c->head;
	for (cap = 16; cap < 2u * c->max_in_flight; cap <<= 1)
		;
	c->table = calloc(cap, sizeof *c->table);
	if (!c->table) {
		free(c);
		return -DOKUBRIDGE_RESOURCE_EXHAUSTED;
	}
	c->table_mask = cap - 1;
	*out = c;
	return 0;
}

int dokubridge_connect(dokubridge_client *c, dokubridge_result *res)
{
	struct sockaddr_un sa;
	int fd = -1, err, flags;
	dokubridge_code code;

	if (!c)
		return dokubridge__fail(res, DOKUBRIDGE_INVALID_ARGUMENT,
					DOKUBRIDGE_OUTCOME_NOT_DONE, "no client");
	if (c->in_callback)
		return dokubridge__fail(res, DOKUBRIDGE_FAILED_PRECONDITION, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"dokubridge_connect called from inside a callback");
	if (c->fd >= 0) {
		if (c->up)
			conn_fail(c, DOKUBRIDGE_UNAVAILABLE, "the connection was replaced");
		close(c->fd);
		c->fd = -1;
	}
	c->rlen = 0;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		code = DOKUBRIDGE_UNAVAILABLE;
		goto fail;
	}
	while (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (errno == EINTR)
			continue;
		err = errno;
		code = (err == EACCES || err == EPERM) ? DOKUBRIDGE_PERMISSION_DENIED
						       : DOKUBRIDGE_UNAVAILABLE;
		goto fail;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		err = errno;
		code = DOKUBRIDGE_UNAVAILABLE;
		goto fail;
	}
	c->fd = fd;
	c->up = true;
	c->pending_errno = 0;
	if (res)
		memset(res, 0, sizeof *res);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return dokubridge__fail(res, code, DOKUBRIDGE_OUTCOME_NOT_DONE,
				"cannot connect to doku-bridged at %s: %s", c->path, strerror(err));
}

bool dokubridge_connected(const dokubridge_client *c)
{
	return c && c->up;
}

const char *dokubridge_socket_path(const dokubridge_client *c)
{
	return c ? c->path : NULL;
}

void dokubridge_free(dokubridge_client *c)
{
	if (!c)
		return;
	c->up = false; /* callbacks that start calls now get UNAVAILABLE */
	out_clear(c);
	fail_all(c, DOKUBRIDGE_CANCELLED, "the client was freed");
	out_clear(c);
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c->table);
	free(c);
}

void dokubridge_message_free(void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

/* ---- public: asynchronous calls -------------------------------------------- */

static bool valid_ref(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DOKUBRIDGE_CUSTOMER_REF_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* The common start: method already resolved to path; the request serialized. */
static int start_common(dokubridge_client *c, const dokubridge_call_opts *opts,
			const char *path, const uint8_t *req, size_t req_len,
			const ProtobufCMessageDescriptor *output, dokubridge_done_fn done,
			dokubridge_raw_done_fn raw_done, void *arg, uint64_t *call_id,
			dokubridge_result *res)
{
	Doku__Bridge__V1__Call msg = DOKU__BRIDGE__V1__CALL__INIT;
	dokubridge_call_opts none = {0};
	struct call *k;
	struct obuf *o;
	uint32_t timeout;

	if (!opts)
		opts = &none;
	if (!c->up)
		return dokubridge__fail(res, DOKUBRIDGE_UNAVAILABLE, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"not connected to doku-bridged at %s", c->path);
	if (opts->profile && strlen(opts->profile) > DOKUBRIDGE_PROFILE_MAX)
		return dokubridge__fail(res, DOKUBRIDGE_INVALID_ARGUMENT, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"profile: longer than %d bytes", DOKUBRIDGE_PROFILE_MAX);
	if (opts->customer_ref && !valid_ref(opts->customer_ref))
		return dokubridge__fail(res, DOKUBRIDGE_INVALID_ARGUMENT, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"customer_ref: must match [A-Za-z0-9._-]{1,%d}",
					DOKUBRIDGE_CUSTOMER_REF_MAX);
	if (c->n_calls >= c->max_in_flight)
		return dokubridge__fail(res, DOKUBRIDGE_RESOURCE_EXHAUSTED, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"%u calls in flight already", (unsigned)c->max_in_flight);
	if (c->out_bytes > DOKUBRIDGE_OUTBUF_MAX)
		return dokubridge__fail(res, DOKUBRIDGE_RESOURCE_EXHAUSTED, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"send queue full");

	timeout = opts->timeout_ms ? opts->timeout_ms : c->default_timeout_ms;
	msg.id = c->next_id;
	msg.method = (char *)path;
	msg.message.data = (uint8_t *)req;
	msg.message.len = req_len;
	msg.timeout_ms = timeout;
	msg.profile = (char *)(opts->profile ? opts->profile : c->default_profile);
	msg.customer_ref = (char *)(opts->customer_ref ? opts->customer_ref : "");

	k = calloc(1, sizeof *k);
	if (!k)
		return dokubridge__fail(res, DOKUBRIDGE_RESOURCE_EXHAUSTED, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"out of memory");
	o = frame_new(c, &msg);
	if (!o) {
		free(k);
		if (errno == EMSGSIZE)
			return dokubridge__fail(res, DOKUBRIDGE_RESOURCE_EXHAUSTED,
						DOKUBRIDGE_OUTCOME_NOT_DONE,
						"request over the %u-byte frame cap",
						(unsigned)c->max_frame);
		return dokubridge__fail(res, DOKUBRIDGE_RESOURCE_EXHAUSTED, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"out of memory");
	}
	k->id = c->next_id++;
	/* the daemon's own DEADLINE_EXCEEDED, which carries the SNAP facts, gets
	 * the grace period to arrive before the local one */
	k->deadline = timeout ? now_ms() + timeout + DOKUBRIDGE_DEADLINE_GRACE_MS : 0;
	k->output = output;
	k->done = done;
	k->raw_done = raw_done;
	k->arg = arg;
	k->ob = o;
	o->call = k;
	table_put(c, k);
	list_add(c, k);
	c->n_calls++;
	out_push(c, o);
	if (call_id)
		*call_id = k->id;
	if (res) {
		memset(res, 0, sizeof *res);
		res->call_id = k->id;
	}
	flush_deferred(c);
	return 0;
}

int dokubridge_start(dokubridge_client *c, const dokubridge_call_opts *opts,
		     const char *method, const ProtobufCMessage *req,
		     dokubridge_done_fn done, void *arg, uint64_t *call_id,
		     dokubridge_result *res)
{
	const ProtobufCMethodDescriptor *m;
	char path[DOKUBRIDGE_METHOD_MAX + 1];
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (!c || !done)
		return dokubridge__fail(res, DOKUBRIDGE_INVALID_ARGUMENT, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"no client or no callback");
	rc = dokubridge__resolve(method, false, &m, path, res);
	if (rc < 0)
		return rc;
	if (req && strcmp(req->descriptor->name, m->input->name) != 0)
		return dokubridge__fail(res, DOKUBRIDGE_INVALID_ARGUMENT, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"%s takes a %s, not a %s", m->name, m->input->name,
					req->descriptor->name);
	if (req) {
		len = protobuf_c_message_get_packed_size(req);
		if (len > c->max_frame)
			return dokubridge__fail(res, DOKUBRIDGE_RESOURCE_EXHAUSTED,
						DOKUBRIDGE_OUTCOME_NOT_DONE,
						"request over the %u-byte frame cap",
						(unsigned)c->max_frame);
		buf = malloc(len ? len : 1);
		if (!buf)
			return dokubridge__fail(res, DOKUBRIDGE_RESOURCE_EXHAUSTED,
						DOKUBRIDGE_OUTCOME_NOT_DONE, "out of memory");
		protobuf_c_message_pack(req, buf);
	}
	rc = start_common(c, opts, path, buf, len, m->output, done, NULL, arg, call_id, res);
	free(buf);
	return rc;
}

int dokubridge_start_raw(dokubridge_client *c, const dokubridge_call_opts *opts,
			 const char *method, const uint8_t *req, size_t req_len,
			 dokubridge_raw_done_fn done, void *arg, uint64_t *call_id,
			 dokubridge_result *res)
{
	const ProtobufCMethodDescriptor *m;
	char path[DOKUBRIDGE_METHOD_MAX + 1];
	int rc;

	if (!c || !done || (!req && req_len))
		return dokubridge__fail(res, DOKUBRIDGE_INVALID_ARGUMENT, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"no client, no callback or no request bytes");
	rc = dokubridge__resolve(method, true, &m, path, res);
	if (rc < 0)
		return rc;
	return start_common(c, opts, path, req, req_len, NULL, NULL, done, arg, call_id, res);
}

int dokubridge_cancel(dokubridge_client *c, uint64_t call_id)
{
	struct call *k;

	if (!c)
		return -DOKUBRIDGE_INVALID_ARGUMENT;
	k = table_get(c, call_id);
	if (!k)
		return -DOKUBRIDGE_NOT_FOUND;
	if (!k->started_sending) {
		call_detach(c, k);
		call_finish_local(c, k, DOKUBRIDGE_CANCELLED, "cancelled before it was sent");
		return 0;
	}
	/* written (or partly written: the cancel frame queues behind the rest) */
	queue_cancel(c, call_id);
	return 0;
}

int dokubridge_fd(const dokubridge_client *c)
{
	return c ? c->fd : -1;
}

unsigned dokubridge_interest(const dokubridge_client *c)
{
	if (!c || !c->up)
		return 0;
	if (c->pending_errno)
		return DOKUBRIDGE_WANT_READ | DOKUBRIDGE_WANT_WRITE;
	return DOKUBRIDGE_WANT_READ | (c->out_head ? DOKUBRIDGE_WANT_WRITE : 0u);
}

int dokubridge_timeout(const dokubridge_client *c)
{
	int64_t best = 0, now, d;
	const struct call *k;

	if (!c || !c->up)
		return -1;
	if (c->pending_errno)
		return 0;
	for (k = c->head.next; k != &c->head; k = k->next)
		if (k->deadline && (best == 0 || k->deadline < best))
			best = k->deadline;
	if (best == 0)
		return -1;
	now = now_ms();
	d = best - now;
	if (d <= 0)
		return 0;
	return d > INT_MAX ? INT_MAX : (int)d;
}

int dokubridge_process(dokubridge_client *c, unsigned revents)
{
	int rc, err;

	if (!c)
		return -DOKUBRIDGE_INVALID_ARGUMENT;
	if (c->in_callback)
		return -DOKUBRIDGE_FAILED_PRECONDITION;
	if (!c->up)
		return -DOKUBRIDGE_UNAVAILABLE;
	if (c->pending_errno)
		return errno_fail(c, c->pending_errno, "write");
	if (c->out_head) {
		err = flush(c);
		if (err)
			return errno_fail(c, err, "write");
	}
	if (revents & DOKUBRIDGE_WANT_READ) {
		rc = do_read(c);
		if (rc < 0)
			return rc;
	}
	expire(c);
	if (c->pending_errno) /* a cancel written by expire() failed */
		return errno_fail(c, c->pending_errno, "write");
	return 0;
}

int dokubridge_poll(dokubridge_client *c, int timeout_ms)
{
	struct pollfd p;
	unsigned want, ev = 0;
	int t, n;

	if (!c)
		return -DOKUBRIDGE_INVALID_ARGUMENT;
	if (c->in_callback)
		return -DOKUBRIDGE_FAILED_PRECONDITION;
	if (!c->up)
		return -DOKUBRIDGE_UNAVAILABLE;
	want = dokubridge_interest(c);
	t = dokubridge_timeout(c);
	if (t < 0 || (timeout_ms >= 0 && timeout_ms < t))
		t = timeout_ms;
	p.fd = c->fd;
	p.events = (short)(((want & DOKUBRIDGE_WANT_READ) ? POLLIN : 0) |
			   ((want & DOKUBRIDGE_WANT_WRITE) ? POLLOUT : 0));
	p.revents = 0;
	n = poll(&p, 1, t);
	if (n < 0 && errno != EINTR)
		return errno_fail(c, errno, "poll");
	if (n > 0) {
		if (p.revents & (POLLIN | POLLHUP | POLLERR))
			ev |= DOKUBRIDGE_WANT_READ;
		if (p.revents & (POLLOUT | POLLERR))
			ev |= DOKUBRIDGE_WANT_WRITE;
	}
	return dokubridge_process(c, ev);
}

size_t dokubridge_in_flight(const dokubridge_client *c)
{
	return c ? c->n_calls : 0;
}

/* ---- public: blocking calls ------------------------------------------------- */

struct waiter {
	bool done;
	dokubridge_result res;
	ProtobufCMessage *msg;  /* message calls */
	uint8_t *data;          /* raw calls: malloc'd copy */
	size_t len;
	bool want_data;
	bool nomem;
};

static void wait_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		      ProtobufCMessage *resp)
{
	struct waiter *w = arg;

	(void)c;
	w->done = true;
	w->res = *res;
	w->msg = resp;
}

static void wait_raw_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
			  const uint8_t *data, size_t len)
{
	struct waiter *w = arg;

	(void)c;
	w->done = true;
	w->res = *res;
	if (data && w->want_data) {
		w->data = malloc(len ? len : 1);
		if (w->data) {
			memcpy(w->data, data, len);
			w->len = len;
		} else {
			w->nomem = true;
		}
	}
}

/* Connect if needed; refuse from callbacks. 0 or negative with res filled. */
static int blocking_prologue(dokubridge_client *c, dokubridge_result *res)
{
	if (!c)
		return dokubridge__fail(res, DOKUBRIDGE_INVALID_ARGUMENT, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"no client");
	if (c->in_callback)
		return dokubridge__fail(res, DOKUBRIDGE_FAILED_PRECONDITION, DOKUBRIDGE_OUTCOME_NOT_DONE,
					"a blocking call from inside a callback");
	if (!c->up)
		return dokubridge_connect(c, res);
	return 0;
}

/* Drive the connection until w completes (every call completes, at the
 * latest at its deadline or when the connection fails). */
static int blocking_wait(dokubridge_client *c, struct waiter *w, dokubridge_result *res)
{
	while (!w->done) {
		int rc = dokubridge_poll(c, -1);

		if (rc < 0 && !w->done) /* cannot happen: a failure completes every call */
			return dokubridge__fail(res, DOKUBRIDGE_INTERNAL, DOKUBRIDGE_OUTCOME_UNKNOWN,
						"the call was lost");
	}
	if (res)
		*res = w->res;
	return -(int)w->res.code;
}

int dokubridge_call(dokubridge_client *c, const dokubridge_call_opts *opts,
		    const char *method, const ProtobufCMessage *req,
		    ProtobufCMessage **resp, dokubridge_result *res)
{
	struct waiter w;
	int rc;

	memset(&w, 0, sizeof w);
	if (resp)
		*resp = NULL;
	rc = blocking_prologue(c, res);
	if (rc < 0)
		return rc;
	rc = dokubridge_start(c, opts, method, req, wait_done, &w, NULL, res);
	if (rc < 0)
		return rc;
	rc = blocking_wait(c, &w, res);
	if (resp)
		*resp = w.msg;
	else
		dokubridge_message_free(w.msg);
	return rc;
}

int dokubridge_call_raw(dokubridge_client *c, const dokubridge_call_opts *opts,
			const char *method, const uint8_t *req, size_t req_len,
			uint8_t **resp, size_t *resp_len, dokubridge_result *res)
{
	struct waiter w;
	int rc;

	memset(&w, 0, sizeof w);
	w.want_data = resp != NULL;
	if (resp)
		*resp = NULL;
	if (resp_len)
		*resp_len = 0;
	rc = blocking_prologue(c, res);
	if (rc < 0)
		return rc;
	rc = dokubridge_start_raw(c, opts, method, req, req_len, wait_raw_done, &w, NULL, res);
	if (rc < 0)
		return rc;
	rc = blocking_wait(c, &w, res);
	if (w.nomem && rc == 0)
		return dokubridge__fail(res, DOKUBRIDGE_RESOURCE_EXHAUSTED, w.res.outcome,
					"out of memory for the response");
	if (resp)
		*resp = w.data;
	if (resp_len)
		*resp_len = w.len;
	return rc;
}
