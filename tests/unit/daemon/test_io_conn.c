/* io/conn.c under a fake upper layer, over real Unix sockets on one loop:
 * frames in, frames out, protocol errors, the calls-in-flight cap and EOF. */
#include "daemon_test.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include "config.h"
#include "conn.h"
#include "list.h"
#include "log.h"
#include "methods.h"

#define SPIN_MAX 20000   /* loop turns before a condition counts as never met */
#define QUIET_TURNS 200  /* loop turns during which nothing may happen */
#define RECS_MAX 32
#define MAX_FRAME 1048576u
#define MAX_CALLS 2u

#define CONFIG_TEXT                                                              \
	"[profile.default]\nbase_url = https://h\nclient_id = a\n"               \
	"client_secret_file = s\nprivate_key_file = k\n"                         \
	"[bridge]\nmax_frame_bytes = 1048576\nmax_calls_per_connection = 2\n"

/* A frame the fake was handed. */
struct rec {
	uint32_t len;
	uint8_t *buf;
	bool done;
};

/* Events, in order (for ordering checks). */
enum ev { EV_OPEN = 1, EV_ERROR, EV_DROP, EV_CLOSE, EV_CLOSED };

struct fake {
	conn_host host;
	uv_loop_t loop;
	uv_pipe_t listener;
	uv_idle_t idle;
	config *cfg;
	char dir[PATH_MAX], path[PATH_MAX];
	int fd;                   /* the client */
	conn *c;
	/* the upper layer's record */
	struct rec recs[RECS_MAX];
	unsigned nbegin, nend, ndrop, nopen, nclose, nclosed, nerror;
	enum conn_error err;
	char errmsg[160];
	bool hold;                /* conn_hold at every frame_end */
	enum ev evs[16];
	unsigned nevs;
	/* the client's input */
	uint8_t in[256 * 1024];
	size_t in_len;
	bool in_eof;
};

static void ev(struct fake *f, enum ev e)
{
	if (f->nevs < sizeof(f->evs) / sizeof(f->evs[0]))
		f->evs[f->nevs++] = e;
}

/* ---- the fake upper layer ---------------------------------------------------------- */

static void *fk_open(conn *c, void *data)
{
	struct fake *f = data;

	f->c = c;
	f->nopen++;
	ev(f, EV_OPEN);
	return f;
}

static uint8_t *fk_frame_begin(void *user, uint32_t len, void **frame)
{
	struct fake *f = user;
	struct rec *r;

	assert_true(f->nbegin < RECS_MAX);
	r = &f->recs[f->nbegin++];
	r->len = len;
	r->buf = malloc(len > 0 ? len : 1);
	assert_non_null(r->buf);
	*frame = r;
	return r->buf;
}

static void fk_frame_end(void *user, void *frame)
{
	struct fake *f = user;
	struct rec *r = frame;

	assert_false(r->done);
	r->done = true;
	f->nend++;
	if (f->hold)
		conn_hold(f->c);
}

static void fk_frame_drop(void *user, void *frame)
{
	struct fake *f = user;

	(void)frame;
	f->ndrop++;
	ev(f, EV_DROP);
}

/* The stream broke: answer with one frame "ERR". */
static void fk_error(void *user, enum conn_error err, const char *msg)
{
	struct fake *f = user;
	uint8_t *p;

	f->nerror++;
	f->err = err;
	snprintf(f->errmsg, sizeof(f->errmsg), "%s", msg);
	ev(f, EV_ERROR);
	p = conn_frame_reserve(f->c, 3);
	assert_non_null(p);
	memcpy(p, "ERR", 3);
	conn_frame_commit(f->c, 3);
}

static void fk_close(void *user)
{
	struct fake *f = user;

	f->nclose++;
	ev(f, EV_CLOSE);
}

static const conn_ops fake_ops = {
	.open = fk_open,
	.frame_begin = fk_frame_begin,
	.frame_end = fk_frame_end,
	.frame_drop = fk_frame_drop,
	.error = fk_error,
	.close = fk_close,
	.gone = NULL,
};

/* ---- the host ---------------------------------------------------------------------- */

static void on_idle(uv_idle_t *h)
{
	struct fake *f = h->data;
	struct list_node local;

	list_init(&local);
	if (!list_empty(&f->host.resume)) {
		local.next = f->host.resume.next;
		local.prev = f->host.resume.prev;
		local.next->prev = &local;
		local.prev->next = &local;
		list_init(&f->host.resume);
	}
	while (!list_empty(&local)) {
		struct list_node *n = local.next;

		list_del(n);
		conn_resume(conn_of_resume_node(n));
	}
	if (list_empty(&f->host.resume))
		uv_idle_stop(&f->idle);
}

static void host_wake(conn_host *h)
{
	struct fake *f = list_entry(h, struct fake, host);

	uv_idle_start(&f->idle, on_idle);
}

static void host_closed(conn_host *h)
{
	struct fake *f = list_entry(h, struct fake, host);

	f->nclosed++;
	ev(f, EV_CLOSED);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct fake *f = listener->data;

	assert_int_equal(status, 0);
	assert_int_equal(conn_accept(&f->host, listener), 0);
}

/* ---- the loop and the client --------------------------------------------------------- */

#define SPIN_UNTIL(f, cond)                                                       \
	do {                                                                      \
		for (int spin_ = 0; spin_ < SPIN_MAX && !(cond); spin_++)         \
			uv_run(&(f)->loop, UV_RUN_NOWAIT);                        \
		assert_true(cond);                                                \
	} while (0)

static void turns(struct fake *f, int n)
{
	for (int i = 0; i < n; i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Read what the client has (non-blocking) into f->in. */
static void client_poll(struct fake *f)
{
	ssize_t n;

	if (f->in_eof || f->fd < 0)
		return;
	n = read(f->fd, f->in + f->in_len, sizeof(f->in) - f->in_len);
	if (n > 0)
		f->in_len += (size_t)n;
	else if (n == 0)
		f->in_eof = true;
	else
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

static bool client_has(struct fake *f, size_t n)
{
	client_poll(f);
	return f->in_len >= n;
}

static bool client_eof(struct fake *f)
{
	client_poll(f);
	return f->in_eof;
}

/* Write all of data[0..n), turning the loop while the socket is full. */
static void client_write(struct fake *f, const void *data, size_t n)
{
	const uint8_t *p = data;
	int spins = 0;

	while (n > 0) {
		ssize_t k = write(f->fd, p, n);

		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		assert_true(k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
		assert_true(++spins < SPIN_MAX);
		uv_run(&f->loop, UV_RUN_NOWAIT);
	}
}

static void put_header(uint8_t *p, uint8_t flags, uint32_t len)
{
	p[0] = flags;
	p[1] = (uint8_t)(len >> 24);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 8);
	p[4] = (uint8_t)len;
}

static uint8_t pattern(uint32_t i, unsigned k)
{
	return (uint8_t)(i * 7u + k * 13u + (i >> 8));
}

/* Frame k of len bytes (header + pattern) at p; returns its size. */
static size_t make_frame(uint8_t *p, uint32_t len, unsigned k)
{
	put_header(p, 0, len);
	for (uint32_t i = 0; i < len; i++)
		p[5 + i] = pattern(i, k);
	return 5u + len;
}

static void check_rec(const struct fake *f, unsigned idx, uint32_t len, unsigned k)
{
	const struct rec *r = &f->recs[idx];

	assert_true(idx < f->nbegin);
	assert_true(r->done);
	assert_int_equal(r->len, len);
	for (uint32_t i = 0; i < len; i++)
		if (r->buf[i] != pattern(i, k))
			fail_msg("frame %u byte %u: 0x%02x, want 0x%02x", idx, i, r->buf[i],
				 pattern(i, k));
}

static void send_frame(struct fake *f, uint32_t len, unsigned k)
{
	uint8_t *b = malloc(5u + len);

	assert_non_null(b);
	client_write(f, b, make_frame(b, len, k));
	free(b);
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	config_diag diag;
	struct sockaddr_un sa;
	char ini[PATH_MAX];
	int flags;

	assert_non_null(f);
	f->fd = -1;
	dt_tmpdir(f->dir);
	dt_write(f->dir, "conn.ini", CONFIG_TEXT, 0644, ini);
	assert_int_equal(config_load(ini, 0, &f->cfg, &diag), 0);
	assert_int_equal(f->cfg->max_calls, MAX_CALLS);
	assert_int_equal(f->cfg->max_frame, MAX_FRAME);
	dt_join(f->path, f->dir, "s");

	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->host.loop = &f->loop;
	f->host.cfg = f->cfg;
	f->host.ops = &fake_ops;
	f->host.ops_data = f;
	list_init(&f->host.conns);
	list_init(&f->host.resume);
	f->host.wake = host_wake;
	f->host.closed = host_closed;
	assert_int_equal(uv_idle_init(&f->loop, &f->idle), 0);
	f->idle.data = f;
	assert_int_equal(uv_pipe_init(&f->loop, &f->listener, 0), 0);
	f->listener.data = f;
	assert_int_equal(uv_pipe_bind(&f->listener, f->path), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 8, on_connection), 0);

	f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_true(strlen(f->path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	assert_int_equal(connect(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	flags = fcntl(f->fd, F_GETFL);
	assert_true(flags >= 0);
	assert_int_equal(fcntl(f->fd, F_SETFL, flags | O_NONBLOCK), 0);

	SPIN_UNTIL(f, f->nopen == 1);
	assert_non_null(f->c);
	assert_int_equal(f->host.nconns, 1);
	assert_int_equal(conn_peer(f->c)->uid, geteuid());
	assert_int_equal(conn_peer(f->c)->pid, getpid());
	assert_int_equal(conn_number(f->c), 1);
	assert_int_equal(conn_max_frame(f->c), MAX_FRAME);
	*state = f;
	return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	if (f->fd >= 0)
		close(f->fd);
	if (f->nclosed == 0 && f->nclose == 0 && f->c != NULL)
		conn_close(f->c, "test over");
	SPIN_UNTIL(f, f->host.nconns == 0);
	uv_close((uv_handle_t *)&f->listener, on_handle_closed);
	uv_close((uv_handle_t *)&f->idle, on_handle_closed);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	for (unsigned i = 0; i < f->nbegin; i++)
		free(f->recs[i].buf);
	config_unref(f->cfg);
	unlink(f->path);
	dt_rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- frames in ------------------------------------------------------------------------ */

static void test_frames_in(void **state)
{
	struct fake *f = *state;
	static uint8_t buf[2 * 5 + 1 + 300];
	size_t n;

	/* empty, small, header split over two writes */
	send_frame(f, 0, 0);
	SPIN_UNTIL(f, f->nend == 1);
	check_rec(f, 0, 0, 0);
	send_frame(f, 1000, 1);
	SPIN_UNTIL(f, f->nend == 2);
	check_rec(f, 1, 1000, 1);
	n = make_frame(buf, 17, 2);
	client_write(f, buf, 2);
	turns(f, QUIET_TURNS);
	assert_int_equal(f->nbegin, 2);
	client_write(f, buf + 2, n - 2);
	SPIN_UNTIL(f, f->nend == 3);
	check_rec(f, 2, 17, 2);

	/* two frames in one write */
	n = make_frame(buf, 1, 3);
	n += make_frame(buf + n, 300, 4);
	client_write(f, buf, n);
	SPIN_UNTIL(f, f->nend == 5);
	check_rec(f, 3, 1, 3);
	check_rec(f, 4, 300, 4);
	assert_int_equal(f->nbegin, 5);
	assert_int_equal(f->nerror, 0);
	assert_int_equal(f->nclose, 0);
}

static void test_large_frame_in_place(void **state)
{
	struct fake *f = *state;
	const uint32_t len = 200000; /* over the shared 64 KiB read buffer */
	uint8_t *b = malloc(5u + len);

	assert_non_null(b);
	make_frame(b, len, 5);
	/* the header and a little: the frame begins with >= 16 KiB missing,
	 * so the rest is read straight into the frame's buffer */
	client_write(f, b, 5 + 100);
	SPIN_UNTIL(f, f->nbegin == 1);
	assert_int_equal(f->recs[0].len, len);
	assert_false(f->recs[0].done);
	client_write(f, b + 105, len - 100);
	SPIN_UNTIL(f, f->nend == 1);
	check_rec(f, 0, len, 5);

	/* a 16 KiB frame whole, then a small one right behind it */
	{
		size_t n = make_frame(b, CONN_DIRECT_READ_MIN, 6);

		n += make_frame(b + n, 9, 7);
		client_write(f, b, n);
	}
	SPIN_UNTIL(f, f->nend == 3);
	check_rec(f, 1, CONN_DIRECT_READ_MIN, 6);
	check_rec(f, 2, 9, 7);
	assert_int_equal(f->nerror, 0);
	free(b);
}

/* ---- protocol errors --------------------------------------------------------------- */

static void expect_error_then_close(struct fake *f)
{
	SPIN_UNTIL(f, client_has(f, 8));
	assert_int_equal(f->in_len, 8);
	assert_memory_equal(f->in, "\0\0\0\0\3ERR", 8);
	SPIN_UNTIL(f, f->nclosed == 1);
	assert_int_equal(f->nclose, 1);
	assert_int_equal(f->nerror, 1);
	assert_int_equal(f->host.nconns, 0);
	assert_true(list_empty(&f->host.conns));
	SPIN_UNTIL(f, client_eof(f));
	assert_int_equal(f->in_len, 8);
	/* error, then close, then freed */
	assert_int_equal(f->nevs, 4);
	assert_int_equal(f->evs[1], EV_ERROR);
	assert_int_equal(f->evs[2], EV_CLOSE);
	assert_int_equal(f->evs[3], EV_CLOSED);
}

static void test_bad_flags(void **state)
{
	struct fake *f = *state;
	uint8_t b[64];
	size_t n;

	n = make_frame(b, 4, 0);
	put_header(b + n, 0x80, 4);       /* compressed-flag: refused */
	n += 5;
	n += make_frame(b + n, 4, 1) - 5; /* its body (never read as a frame) */
	n += make_frame(b + n, 2, 2);     /* never read */
	client_write(f, b, n);
	SPIN_UNTIL(f, f->nerror == 1);
	assert_int_equal(f->err, CONN_ERR_FLAGS);
	assert_string_equal(f->errmsg, "bad frame: flags byte 0x80, must be 0");
	expect_error_then_close(f);
	assert_int_equal(f->nbegin, 1);
	check_rec(f, 0, 4, 0);
	assert_int_equal(f->ndrop, 0);
}

static void test_too_big(void **state)
{
	struct fake *f = *state;
	uint8_t b[5];

	/* the cap itself would be taken; one more is refused before anything is allocated */
	put_header(b, 0, MAX_FRAME + 1);
	client_write(f, b, sizeof(b));
	SPIN_UNTIL(f, f->nerror == 1);
	assert_int_equal(f->err, CONN_ERR_TOO_BIG);
	assert_string_equal(f->errmsg, "frame of 1048577 bytes is over the cap of 1048576 bytes");
	expect_error_then_close(f);
	assert_int_equal(f->nbegin, 0);
}

static void test_max_frame_accepted(void **state)
{
	struct fake *f = *state;

	send_frame(f, MAX_FRAME, 8);
	SPIN_UNTIL(f, f->nend == 1);
	check_rec(f, 0, MAX_FRAME, 8);
	assert_int_equal(f->nerror, 0);
}

/* ---- frames out --------------------------------------------------------------------- */

static void test_frames_out(void **state)
{
	struct fake *f = *state;
	static const uint32_t lens[] = { 0, 10, 40000, 3 };
	size_t want = 0, off = 0;

	for (unsigned k = 0; k < 4; k++) {
		uint8_t *p = conn_frame_reserve(f->c, lens[k]);

		assert_non_null(p);
		for (uint32_t i = 0; i < lens[k]; i++)
			p[i] = pattern(i, k + 20);
		conn_frame_commit(f->c, lens[k]);
		want += 5u + lens[k];
	}
	SPIN_UNTIL(f, client_has(f, want));
	assert_int_equal(f->in_len, want);
	for (unsigned k = 0; k < 4; k++) {
		const uint8_t *h = f->in + off;

		assert_int_equal(h[0], 0);
		assert_int_equal((uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 |
					 (uint32_t)h[3] << 8 | h[4],
				 lens[k]);
		for (uint32_t i = 0; i < lens[k]; i++)
			assert_int_equal(h[5 + i], pattern(i, k + 20));
		off += 5u + lens[k];
	}
	/* nothing more, and the connection stays */
	turns(f, QUIET_TURNS);
	assert_false(client_has(f, want + 1));
	assert_false(f->in_eof);
	assert_int_equal(f->nclose, 0);
}

/* ---- the calls-in-flight cap ---------------------------------------------------------- */

static void test_max_calls(void **state)
{
	struct fake *f = *state;
	uint8_t b[3 * (5 + 8)];
	size_t n = 0;

	f->hold = true;
	/* three frames in one write: the third waits (stashed) at the cap */
	for (unsigned k = 0; k < 3; k++)
		n += make_frame(b + n, 8, k);
	client_write(f, b, n);
	SPIN_UNTIL(f, f->nend == MAX_CALLS);
	turns(f, QUIET_TURNS);
	assert_int_equal(f->nbegin, MAX_CALLS);
	conn_release(f->c); /* one call ended: the third is parsed */
	SPIN_UNTIL(f, f->nend == 3);
	check_rec(f, 0, 8, 0);
	check_rec(f, 1, 8, 1);
	check_rec(f, 2, 8, 2);

	/* at the cap again (two held): a frame sent now is not read */
	send_frame(f, 8, 3);
	turns(f, QUIET_TURNS);
	assert_int_equal(f->nbegin, 3);
	conn_release(f->c);
	SPIN_UNTIL(f, f->nend == 4);
	check_rec(f, 3, 8, 3);

	/* below the cap, frames flow */
	f->hold = false;
	conn_release(f->c);
	send_frame(f, 8, 4);
	SPIN_UNTIL(f, f->nend == 5);
	check_rec(f, 4, 8, 4);
	conn_release(f->c);
	assert_int_equal(f->nerror, 0);
	assert_int_equal(f->nclose, 0);
}

/* ---- end of stream --------------------------------------------------------------------- */

static void test_eof_while_held(void **state)
{
	struct fake *f = *state;
	uint8_t *p;

	f->hold = true;
	send_frame(f, 8, 0);
	SPIN_UNTIL(f, f->nend == 1);
	assert_int_equal(shutdown(f->fd, SHUT_WR), 0);
	turns(f, QUIET_TURNS);
	/* the call is still answered */
	assert_int_equal(f->nclose, 0);
	assert_int_equal(f->nclosed, 0);
	p = conn_frame_reserve(f->c, 2);
	assert_non_null(p);
	memcpy(p, "OK", 2);
	conn_frame_commit(f->c, 2);
	SPIN_UNTIL(f, client_has(f, 7));
	assert_memory_equal(f->in, "\0\0\0\0\2OK", 7);
	turns(f, QUIET_TURNS);
	assert_int_equal(f->nclose, 0);
	assert_false(client_eof(f));

	/* the call ends: now it closes, once */
	conn_release(f->c);
	assert_int_equal(f->nclose, 1);
	SPIN_UNTIL(f, f->nclosed == 1);
	SPIN_UNTIL(f, client_eof(f));
	turns(f, QUIET_TURNS);
	assert_int_equal(f->nclose, 1);
	assert_int_equal(f->nclosed, 1);
	assert_int_equal(f->ndrop, 0);
	assert_int_equal(f->host.nconns, 0);
	assert_int_equal(f->nevs, 3);
	assert_int_equal(f->evs[1], EV_CLOSE);
	assert_int_equal(f->evs[2], EV_CLOSED);
}

static void test_eof_inside_frame(void **state)
{
	struct fake *f = *state;
	uint8_t b[5 + 4];

	put_header(b, 0, 100);
	memset(b + 5, 'x', 4);
	client_write(f, b, sizeof(b));
	SPIN_UNTIL(f, f->nbegin == 1);
	assert_int_equal(shutdown(f->fd, SHUT_WR), 0);
	SPIN_UNTIL(f, f->nclosed == 1);
	/* the partial frame is dropped before the upper layer is told */
	assert_int_equal(f->ndrop, 1);
	assert_int_equal(f->nclose, 1);
	assert_int_equal(f->nend, 0);
	assert_int_equal(f->evs[1], EV_DROP);
	assert_int_equal(f->evs[2], EV_CLOSE);
	assert_int_equal(f->evs[3], EV_CLOSED);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_frames_in),
		T(test_large_frame_in_place),
		T(test_bad_flags),
		T(test_too_big),
		T(test_max_frame_accepted),
		T(test_frames_out),
		T(test_max_calls),
		T(test_eof_while_held),
		T(test_eof_inside_frame),
	};

	log_setup(LOG_LVL_ERROR);
	assert_int_equal(methods_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
