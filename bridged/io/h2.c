/* One HTTP/2 server connection with nghttp2 (h2.h). */
#include "h2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>

#include "list.h"

/* ---- the session's memory -----------------------------------------------------------
 * nghttp2 allocates and frees several small blocks for every stream (the
 * stream, its outbound items, copies of header fields, HPACK entries), and
 * h2 its stream records, bodies and trailers: at tens of thousands of streams
 * a second, malloc and free were a tenth of the daemon's CPU. The session's
 * pool keeps freed blocks of H2_POOL_CLASSES sizes on free lists and hands
 * them out again, at most H2_POOL_KEEP bytes of them (more goes back to
 * free()); a larger block is malloc's. All of it is the session's: the
 * session frees what it holds, then the pool lets its free lists go; an idle
 * session (no stream open at h2_sweep) lets them go too. Under
 * AddressSanitizer a block on a free list is poisoned, so that a use after
 * its free is still caught. */
#define H2_POOL_MIN 64u               /* the smallest class's payload; each class doubles */
#define H2_POOL_CLASSES 6u            /* 64 ... 2048 bytes */
#define H2_POOL_KEEP (64u * 1024u)    /* free payload bytes kept for reuse, at most */
#define H2_POOL_BIG 0xffu             /* the class of a block that is malloc's alone */
#define H2_BLK_HDR 16u                /* the header before a payload (keeps malloc's alignment) */

#if defined(__SANITIZE_ADDRESS__)
#define H2_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H2_ASAN 1
#endif
#endif
#ifdef H2_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* The header of a block: its class; a big block's payload size, or a free
 * block's successor on its free list. */
struct h2_blk {
	uint32_t cls;
	union {
		size_t size;
		struct h2_blk *next;
	} u;
};

_Static_assert(sizeof(struct h2_blk) <= H2_BLK_HDR && _Alignof(max_align_t) <= H2_BLK_HDR,
	       "a block's header keeps its payload aligned");

struct h2_pool {
	struct h2_blk *free[H2_POOL_CLASSES];
	size_t kept;                     /* payload bytes on the free lists */
};

static struct h2_blk *blk_of(void *p)
{
	return (struct h2_blk *)(void *)((uint8_t *)p - H2_BLK_HDR);
}

static void *payload(struct h2_blk *b)
{
	return (uint8_t *)b + H2_BLK_HDR;
}

static size_t class_size(uint32_t cls)
{
	return (size_t)H2_POOL_MIN << cls;
}

/* The payload bytes block p may hold. */
static size_t blk_size(void *p)
{
	const struct h2_blk *b = blk_of(p);

	return b->cls == H2_POOL_BIG ? b->u.size : class_size(b->cls);
}

static void *pool_malloc(size_t n, void *ud)
{
	struct h2_pool *pl = ud;
	uint32_t cls = 0;
	struct h2_blk *b;

	while (cls < H2_POOL_CLASSES && class_size(cls) < n)
		cls++;
	if (cls == H2_POOL_CLASSES) {
		if (n > SIZE_MAX - H2_BLK_HDR || (b = malloc(H2_BLK_HDR + n)) == NULL)
			return NULL;
		b->cls = H2_POOL_BIG;
		b->u.size = n;
		return payload(b);
	}
	b = pl->free[cls];
	if (b != NULL) {
		pl->free[cls] = b->u.next;
		pl->kept -= class_size(cls);
		UNPOISON(payload(b), class_size(cls));
		return payload(b);
	}
	b = malloc(H2_BLK_HDR + class_size(cls));
	if (b == NULL)
		return NULL;
	b->cls = cls;
	return payload(b);
}

static void pool_free(void *p, void *ud)
{
	struct h2_pool *pl = ud;
	struct h2_blk *b;

	if (p == NULL)
		return;
	b = blk_of(p);
	if (b->cls == H2_POOL_BIG || pl->kept + class_size(b->cls) > H2_POOL_KEEP) {
		free(b);
		return;
	}
	POISON(p, class_size(b->cls));
	b->u.next = pl->free[b->cls];
	pl->free[b->cls] = b;
	pl->kept += class_size(b->cls);
}

static void *pool_calloc(size_t k, size_t n, void *ud)
{
	void *p;

	if (n != 0 && k > SIZE_MAX / n)
		return NULL;
	p = pool_malloc(k * n, ud);
	if (p != NULL)
		memset(p, 0, k * n);
	return p;
}

static void *pool_realloc(void *p, size_t n, void *ud)
{
	struct h2_blk *b;
	size_t have;
	void *q;

	if (p == NULL)
		return pool_malloc(n, ud);
	have = blk_size(p);
	if (n <= have)
		return p;
	b = blk_of(p);
	if (b->cls == H2_POOL_BIG) {
		if (n > SIZE_MAX - H2_BLK_HDR || (q = realloc(b, H2_BLK_HDR + n)) == NULL)
			return NULL;
		b = q;
		b->u.size = n;
		return payload(b);
	}
	q = pool_malloc(n, ud);
	if (q == NULL)
		return NULL;
	memcpy(q, p, have);
	pool_free(p, ud);
	return q;
}

/* Let the free lists go (nothing on them is in use). */
static void pool_drain(struct h2_pool *pl)
{
	for (unsigned c = 0; c < H2_POOL_CLASSES; c++) {
		while (pl->free[c] != NULL) {
			struct h2_blk *b = pl->free[c];

			pl->free[c] = b->u.next;
			UNPOISON(payload(b), class_size(c));
			free(b);
		}
	}
	pl->kept = 0;
}

/* A stream the peer opened, until nghttp2 closes it. */
struct h2_stream {
	struct list_node node;       /* in h2.streams */
	int32_t id;
	void *st;                    /* the upper layer's; NULL: refused */
	uint64_t stamp_ms;           /* opened, or its response ended (h2_sweep) */
	size_t header_bytes;         /* the request header list so far */
	bool too_big;                /* fields left out */
	bool request_done;           /* END_STREAM received */
	bool submitted;              /* a response (header block) is queued */
	bool ended;                  /* h2_end: nothing more to queue */
	bool deferred;               /* the body reader waits for more (NGHTTP2_ERR_DEFERRED) */
	bool swept;                  /* reset by h2_sweep */
	uint8_t *body;               /* the response body queued ... */
	size_t body_len, body_off;   /* ... and how much of it nghttp2 took */
	size_t body_cap;
	nghttp2_nv *trailers;        /* one block: the fields, then their bytes */
	size_t ntrailers;
};

struct h2 {
	nghttp2_session *s;
	struct h2_pool pool;         /* the session's memory: nghttp2's and its streams' */
	const h2_ops *ops;
	void *user;
	h2_limits lim;
	struct list_node streams;    /* struct h2_stream */
	unsigned nstreams;
	struct h2_stream *last;      /* the stream found last (stream_of), or NULL */
	uint64_t now_ms;
	bool dead;                   /* a fatal error: nothing more is read or written */
	bool goaway;                 /* h2_shutdown was done */
	const char *error;           /* why it is dead (nghttp2's static text) */
};

/* Stream id's record, or NULL. The callbacks and responses of one stream
 * come in runs (a header block's fields, a call's response), so the last
 * one found is kept: one lookup in nghttp2's stream map per run. */
static struct h2_stream *stream_of(struct h2 *h, int32_t id)
{
	struct h2_stream *r;

	if (h->last != NULL && h->last->id == id)
		return h->last;
	r = id > 0 ? nghttp2_session_get_stream_user_data(h->s, id) : NULL;
	if (r != NULL)
		h->last = r;
	return r;
}

/* r's record goes: forget it, then free it (stream_free). */
static void stream_forget(struct h2 *h, struct h2_stream *r)
{
	if (h->last == r)
		h->last = NULL;
	list_del(&r->node);
	h->nstreams--;
}

/* ---- nghttp2's callbacks ------------------------------------------------------------ */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *r;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	r = pool_calloc(1, sizeof(*r), &h->pool);
	if (r == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
	r->id = f->hd.stream_id;
	r->stamp_ms = h->now_ms;
	list_add_tail(&h->streams, &r->node);
	h->nstreams++;
	if (nghttp2_session_set_stream_user_data(s, r->id, r) != 0) {
		list_del(&r->node);
		h->nstreams--;
		pool_free(r, &h->pool);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	r->st = h->ops->stream_open(h->user, r->id);
	if (r->st == NULL)
		(void)nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, r->id, NGHTTP2_REFUSED_STREAM);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *r;
	size_t size = nlen + vlen + 32u; /* RFC 9113 6.5.2 */

	(void)s;
	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* request trailers: gRPC has none; ignored */
	r = stream_of(h, f->hd.stream_id);
	if (r == NULL || r->st == NULL || r->too_big)
		return 0;
	if (r->header_bytes + size > h->lim.max_header_list) {
		r->too_big = true;
		return 0;
	}
	r->header_bytes += size;
	h->ops->header(h->user, r->st, (const char *)name, nlen, (const char *)value, vlen);
	return 0;
}

static void request_end(struct h2 *h, struct h2_stream *r)
{
	if (r->request_done)
		return;
	r->request_done = true;
	if (r->st != NULL)
		h->ops->request_end(h->user, r->st);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *r;

	(void)s;
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	r = stream_of(h, f->hd.stream_id);
	if (r == NULL)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST && r->st != NULL)
		h->ops->headers_end(h->user, r->st, r->too_big);
	/* the upper layer may have closed it meanwhile (a reset is queued, not done) */
	if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0)
		request_end(h, r);
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *p,
			 size_t n, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *r = stream_of(h, id);

	(void)s;
	(void)flags;
	if (r != NULL && r->st != NULL && !r->request_done)
		h->ops->data(h->user, r->st, p, n);
	return 0;
}

/* A response ended before its request did: ask the peer to stop sending
 * it, without error (RFC 9113 8.1), once the end is on its way. */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *r;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0)
		return 0;
	r = stream_of(h, f->hd.stream_id);
	if (r != NULL && !r->request_done)
		(void)nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, r->id, NGHTTP2_NO_ERROR);
	return 0;
}

static void stream_free(struct h2 *h, struct h2_stream *r)
{
	pool_free(r->body, &h->pool);
	pool_free(r->trailers, &h->pool);
	pool_free(r, &h->pool);
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *r = stream_of(h, id);

	if (r == NULL)
		return 0;
	(void)nghttp2_session_set_stream_user_data(s, id, NULL);
	stream_forget(h, r);
	if (r->st != NULL)
		h->ops->stream_close(h->user, r->st, error);
	stream_free(h, r);
	return 0;
}

/* The response body, as queued; trailers after it, or END_STREAM. */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2_stream *r = src->ptr;
	size_t k = r->body_len - r->body_off;

	(void)ud;
	if (k > len)
		k = len;
	if (k > 0)
		memcpy(buf, r->body + r->body_off, k);
	r->body_off += k;
	if (r->body_off < r->body_len)
		return (ssize_t)k;
	if (!r->ended) {
		if (k > 0)
			return (ssize_t)k;
		r->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (r->ntrailers > 0) {
		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(s, id, r->trailers, r->ntrailers) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)k;
}

/* ---- the session ----------------------------------------------------------------------- */

static int new_session(struct h2 *h)
{
	nghttp2_mem mem = { &h->pool, pool_malloc, pool_free, pool_calloc, pool_realloc };
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	int rc = -ENOMEM;

	if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_option_set_no_closed_streams(opt, 1);
	nghttp2_option_set_max_settings(opt, H2_MAX_SETTINGS);
	nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
	nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
	nghttp2_option_set_stream_reset_rate_limit(opt, H2_RST_BURST, H2_RST_RATE);
	if (nghttp2_session_server_new3(&h->s, cb, h, opt, &mem) != 0)
		goto out;
	rc = 0;
out:
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	return rc;
}

int h2_new(const h2_limits *lim, const h2_ops *ops, void *user, h2 **out)
{
	struct h2 *h = calloc(1, sizeof(*h));
	nghttp2_settings_entry iv[4];
	uint32_t window;
	int rc = -ENOMEM;

	*out = NULL;
	if (h == NULL)
		return -ENOMEM;
	h->ops = ops;
	h->user = user;
	h->lim = *lim;
	list_init(&h->streams);
	window = lim->window < H2_WINDOW_MAX ? lim->window : H2_WINDOW_MAX;
	if (new_session(h) != 0)
		goto out;
	iv[0] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_streams };
	iv[1] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window };
	iv[2] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim->max_header_list };
	iv[3] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, H2_HEADER_TABLE };
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, 4) != 0 ||
	    nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, (int32_t)window) != 0)
		goto out;
	*out = h;
	h = NULL;
	rc = 0;
out:
	if (h != NULL) {
		nghttp2_session_del(h->s);
		pool_drain(&h->pool);
		free(h);
	}
	return rc;
}

void h2_free(struct h2 *h)
{
	if (h == NULL)
		return;
	while (!list_empty(&h->streams)) {
		struct h2_stream *r = list_entry(h->streams.next, struct h2_stream, node);

		stream_forget(h, r);
		(void)nghttp2_session_set_stream_user_data(h->s, r->id, NULL);
		if (r->st != NULL)
			h->ops->stream_close(h->user, r->st, H2_CANCEL);
		stream_free(h, r);
	}
	h->ops->close(h->user);
	nghttp2_session_del(h->s);
	pool_drain(&h->pool);
	free(h);
}

int h2_recv(struct h2 *h, const uint8_t *p, size_t n, uint64_t now_ms)
{
	ssize_t rc;

	if (h->dead)
		return -EPROTO;
	h->now_ms = now_ms;
	rc = nghttp2_session_mem_recv(h->s, p, n);
	if (rc < 0) {
		/* fatal (a bad preface, a flood, no memory): the session is over */
		h->dead = true;
		h->error = nghttp2_strerror((int)rc);
		return rc == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
	}
	return 0;
}

const char *h2_error(const struct h2 *h)
{
	return h->error != NULL ? h->error : "the HTTP/2 session ended";
}

ssize_t h2_output(struct h2 *h, const uint8_t **p)
{
	ssize_t n;

	*p = NULL;
	if (h->dead)
		return 0;
	n = nghttp2_session_mem_send(h->s, p);
	if (n < 0) {
		h->dead = true;
		h->error = nghttp2_strerror((int)n);
		return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
	}
	return n;
}

bool h2_alive(const struct h2 *h)
{
	return !h->dead && (nghttp2_session_want_read(h->s) || nghttp2_session_want_write(h->s));
}

unsigned h2_streams(const struct h2 *h)
{
	return h->nstreams;
}

void h2_shutdown(struct h2 *h)
{
	if (h->goaway || h->dead)
		return;
	h->goaway = true;
	(void)nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE,
				    nghttp2_session_get_last_proc_stream_id(h->s), NGHTTP2_NO_ERROR,
				    NULL, 0);
	if (h->ops->shutdown != NULL)
		h->ops->shutdown(h->user);
}

unsigned h2_sweep(struct h2 *h, uint64_t now_ms, uint32_t timeout_ms)
{
	unsigned reset = 0;

	if (h->nstreams == 0)
		pool_drain(&h->pool); /* an idle session keeps no free blocks */
	if (h->dead)
		return 0;
	h->now_ms = now_ms;
	for (struct list_node *n = h->streams.next; n != &h->streams; n = n->next) {
		struct h2_stream *r = list_entry(n, struct h2_stream, node);
		bool waits = !r->request_done || r->ended;

		if (!waits || r->swept || now_ms - r->stamp_ms <= timeout_ms)
			continue;
		r->swept = true;
		if (nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, r->id, NGHTTP2_CANCEL) == 0)
			reset++;
	}
	return reset;
}

/* ---- responses ---------------------------------------------------------------------------- */

static int nv_of(const h2_field *f, size_t n, nghttp2_nv *nv)
{
	if (n > H2_RESPONSE_FIELDS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		nv[i].name = (uint8_t *)(uintptr_t)f[i].name;
		nv[i].namelen = strlen(f[i].name);
		nv[i].value = (uint8_t *)(uintptr_t)f[i].value;
		nv[i].valuelen = f[i].len;
		nv[i].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME; /* static and lowercase (h2.h) */
	}
	return 0;
}

static struct h2_stream *open_stream(struct h2 *h, int32_t id)
{
	struct h2_stream *r = h->dead ? NULL : stream_of(h, id);

	return r != NULL && r->st != NULL && !r->ended ? r : NULL;
}

int h2_response(struct h2 *h, int32_t id, const h2_field *f, size_t n)
{
	struct h2_stream *r = open_stream(h, id);
	nghttp2_nv nv[H2_RESPONSE_FIELDS_MAX];
	nghttp2_data_provider prd;

	if (r == NULL)
		return -ENOENT;
	if (r->submitted || nv_of(f, n, nv) != 0)
		return -EINVAL;
	prd.source.ptr = r;
	prd.read_callback = read_body;
	if (nghttp2_submit_response(h->s, id, nv, n, &prd) != 0)
		return -ENOMEM;
	r->submitted = true;
	return 0;
}

static void resume(struct h2 *h, struct h2_stream *r)
{
	if (r->deferred) {
		r->deferred = false;
		(void)nghttp2_session_resume_data(h->s, r->id);
	}
}

int h2_body(struct h2 *h, int32_t id, const uint8_t *p, size_t n)
{
	struct h2_stream *r = open_stream(h, id);

	if (r == NULL)
		return -ENOENT;
	if (!r->submitted)
		return -EINVAL;
	if (r->body_cap - r->body_len < n) {
		size_t cap = r->body_len + n;
		uint8_t *b;

		if (r->body_off > 0 && r->body_off == r->body_len) {
			r->body_len = r->body_off = 0; /* all taken: start over */
			cap = n;
		}
		b = cap > r->body_cap ? pool_realloc(r->body, cap, &h->pool) : r->body;
		if (b == NULL)
			return -ENOMEM;
		r->body = b;
		r->body_cap = blk_size(b);
	}
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	resume(h, r);
	return 0;
}

/* Copy f[0..n) into one block of nghttp2_nv and the values' bytes (the
 * names are static). The stream keeps it until it is freed, after the
 * trailers are sent: nghttp2 need not copy them again. */
static nghttp2_nv *copy_fields(struct h2 *h, const h2_field *f, size_t n)
{
	size_t bytes = n * sizeof(nghttp2_nv);
	nghttp2_nv *nv;
	uint8_t *p;

	for (size_t i = 0; i < n; i++)
		bytes += f[i].len;
	nv = pool_malloc(bytes > 0 ? bytes : 1, &h->pool);
	if (nv == NULL)
		return NULL;
	p = (uint8_t *)(nv + n);
	for (size_t i = 0; i < n; i++) {
		nv[i].name = (uint8_t *)(uintptr_t)f[i].name;
		nv[i].namelen = strlen(f[i].name);
		if (f[i].len > 0)
			memcpy(p, f[i].value, f[i].len);
		nv[i].value = p;
		nv[i].valuelen = f[i].len;
		p += f[i].len;
		nv[i].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
	}
	return nv;
}

int h2_end(struct h2 *h, int32_t id, const h2_field *f, size_t n, uint64_t now_ms)
{
	struct h2_stream *r = open_stream(h, id);
	nghttp2_nv nv[H2_RESPONSE_FIELDS_MAX];

	if (r == NULL)
		return -ENOENT;
	if (n > H2_RESPONSE_FIELDS_MAX)
		return -EINVAL;
	if (!r->submitted) {
		/* trailers-only: the one header block, with END_STREAM */
		if (n == 0 || nv_of(f, n, nv) != 0)
			return -EINVAL;
		if (nghttp2_submit_response(h->s, id, nv, n, NULL) != 0)
			return -ENOMEM;
		r->submitted = true;
	} else if (n > 0) {
		r->trailers = copy_fields(h, f, n);
		if (r->trailers == NULL)
			return -ENOMEM;
		r->ntrailers = n;
	}
	r->ended = true;
	r->stamp_ms = now_ms;
	resume(h, r);
	return 0;
}

size_t h2_queued(const struct h2 *h, int32_t id)
{
	const struct h2_stream *r = h->dead || id <= 0 ? NULL
		: h->last != NULL && h->last->id == id ? h->last
		: nghttp2_session_get_stream_user_data(h->s, id);

	return r != NULL ? r->body_len - r->body_off : 0;
}

void h2_touch(struct h2 *h, int32_t id, uint64_t now_ms)
{
	struct h2_stream *r = h->dead ? NULL : stream_of(h, id);

	if (r != NULL && !r->ended)
		r->stamp_ms = now_ms;
}

int h2_reset(struct h2 *h, int32_t id, uint32_t error)
{
	struct h2_stream *r = h->dead ? NULL : stream_of(h, id);

	if (r == NULL)
		return -ENOENT;
	return nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, id, error) == 0 ? 0 : -ENOMEM;
}
