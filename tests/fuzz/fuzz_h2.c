/* libFuzzer: a client's bytes as an HTTP/2 connection of doku-bridged takes
 * them (io/h2.c): the nghttp2 session with the daemon's limits, its
 * callbacks, and the responses an upper layer queues from inside them and
 * after them, as rpc/grpc.c does (trailers-only refusals, header block +
 * body + trailers, bodies over the flow-control window, resets), the output
 * drained after every chunk as io/conn.c does, the sweep's resets.
 *
 * Input: byte 0 says how: bit 0 set, the client preface goes first (so the
 * fuzzer need not find it); bits 1-3 the size of the chunks the rest is fed
 * in (1, 3, 16, 64, 256, 1024, 4096, all), as reads would cut it. The rest
 * is the client's byte stream.
 *
 * Invariants: every stream the upper layer took is closed exactly once, by
 * the end of the session at the latest; the session's end is told once;
 * nothing leaks (LeakSanitizer). */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "h2.h"

#define MAX_STREAMS 8u
#define WINDOW (65536u + 5u)
#define BODY_MAX (1024u * 1024u)     /* request bytes an upper-layer stream takes */
#define BIG_BODY 70000u              /* a response over the initial window */
#define PENDING_MAX 64u

struct fst {
	int32_t id;
	size_t got;
	bool closed;
};

static struct fz {
	h2 *h;
	unsigned opened, closed, ends;
	struct fst *pending[PENDING_MAX]; /* answered but not ended yet (the next chunk ends them) */
	unsigned npending;
	uint64_t now;
} z;

static uint8_t big[BIG_BODY];

#define FIELD(n, v) ((h2_field){ (n), (v), sizeof(v) - 1 })

static void end_ok(struct fst *s)
{
	h2_field t[] = { FIELD("grpc-status", "0"), FIELD("x-doku-outcome", "DONE") };

	(void)h2_end(z.h, s->id, t, 2, z.now);
}

static void *fz_open(void *user, int32_t id)
{
	struct fst *s;

	(void)user;
	if (id % 13 == 11)
		return NULL; /* refused */
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->id = id;
	z.opened++;
	return s;
}

static void fz_header(void *user, void *st, const char *name, size_t nlen, const char *value,
		      size_t vlen)
{
	(void)user;
	(void)value;
	(void)vlen;
	FUZZ_CHECK(st != NULL && name != NULL && nlen > 0, "a header field without a name");
}

static void fz_headers_end(void *user, void *st, bool too_big)
{
	struct fst *s = st;
	h2_field f[] = { FIELD(":status", "200"), FIELD("content-type", "application/grpc"),
			 FIELD("grpc-status", "3"), FIELD("grpc-message", "refused") };

	(void)user;
	if (too_big || s->id % 5 == 0)
		(void)h2_end(z.h, s->id, f, 4, z.now); /* trailers-only, the request unread */
}

static void fz_data(void *user, void *st, const uint8_t *p, size_t n)
{
	struct fst *s = st;

	(void)user;
	FUZZ_CHECK(p != NULL || n == 0, "data without bytes");
	s->got += n;
	if (s->got > BODY_MAX)
		(void)h2_reset(z.h, s->id, H2_CANCEL);
}

static void fz_request_end(void *user, void *st)
{
	struct fst *s = st;
	h2_field f[] = { FIELD(":status", "200"), FIELD("content-type", "application/grpc") };

	(void)user;
	if (h2_response(z.h, s->id, f, 2) != 0)
		return;
	(void)h2_body(z.h, s->id, big, s->id % 3 == 0 ? BIG_BODY : 5 + s->got % 64);
	if (s->id % 7 == 1 && z.npending < PENDING_MAX)
		z.pending[z.npending++] = s; /* ends after the next chunk: a deferred body */
	else
		end_ok(s);
}

static void fz_stream_close(void *user, void *st, uint32_t error)
{
	struct fst *s = st;

	(void)user;
	(void)error;
	FUZZ_CHECK(!s->closed, "stream %d closed twice", s->id);
	s->closed = true;
	for (unsigned i = 0; i < z.npending; i++)
		if (z.pending[i] == s)
			z.pending[i] = z.pending[--z.npending];
	z.closed++;
	free(s);
}

static void fz_close(void *user)
{
	(void)user;
	z.ends++;
}

static const h2_ops ops = {
	.stream_open = fz_open,
	.header = fz_header,
	.headers_end = fz_headers_end,
	.data = fz_data,
	.request_end = fz_request_end,
	.stream_close = fz_stream_close,
	.close = fz_close,
};

/* What io/conn.c does after each read: take all the output there is. */
static void drain(void)
{
	const uint8_t *p;
	ssize_t n;
	size_t total = 0;

	while ((n = h2_output(z.h, &p)) > 0) {
		FUZZ_CHECK(p != NULL, "output without bytes");
		total += (size_t)n;
		FUZZ_CHECK(total < 64u * 1024u * 1024u, "unbounded output");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[8] = { 1, 3, 16, 64, 256, 1024, 4096, SIZE_MAX };
	h2_limits lim = { MAX_STREAMS, WINDOW, H2_HEADER_LIST_MAX };
	size_t chunk;
	bool dead = false;

	if (size < 1)
		return 0;
	memset(&z, 0, sizeof(z));
	chunk = chunks[(data[0] >> 1) & 7];
	FUZZ_CHECK(h2_new(&lim, &ops, NULL, &z.h) == 0, "h2_new");
	if (data[0] & 1)
		dead = h2_recv(z.h, (const uint8_t *)H2_PREFACE, H2_PREFACE_LEN, z.now) != 0;
	data++;
	size--;
	while (size > 0 && !dead) {
		size_t k = size < chunk ? size : chunk;

		dead = h2_recv(z.h, data, k, z.now) != 0;
		drain();
		for (unsigned i = z.npending; i > 0; i--) {
			struct fst *s = z.pending[--z.npending];

			end_ok(s);
		}
		drain();
		z.now += 100;
		if (h2_sweep(z.h, z.now, 1000) > 0)
			drain();
		data += k;
		size -= k;
		if (!h2_alive(z.h))
			break;
	}
	(void)h2_streams(z.h);
	h2_free(z.h);
	FUZZ_CHECK(z.opened == z.closed, "%u streams taken, %u closed", z.opened, z.closed);
	FUZZ_CHECK(z.ends == 1, "the session's end told %u times", z.ends);
	return 0;
}
