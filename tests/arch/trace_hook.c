/* trace_hook.c: the functions doku-bridged enters, for tests/arch/trace_rpc.sh.
 *
 * Linked into doku-bridged with -DDOKU_TRACE_CALLS=ON (cmake/Callgraph.cmake),
 * which builds the daemon's code with -finstrument-functions. When the
 * environment names a file in DOKU_TRACE_FILE, every function entry is kept
 * in a ring of TRACE_CAP entries: the function's link-time address and that
 * of its call site (0 when the caller is outside the executable: libuv, curl
 * or sqlite calling back). Each SIGUSR2 appends to the file, as text, the
 * entries since the previous SIGUSR2 ("FN SITE" in hex, one a line), then
 * "mark N" (N = 1, 2, ...); "lost K" says that K entries were overwritten
 * before they could be written. So the lines between "mark 1" and "mark 2"
 * are exactly the functions entered between the two signals.
 *
 * The enter hook allocates nothing and takes no lock; the signal handler only
 * formats into a stack buffer and calls write(2). One mark at a time: a
 * SIGUSR2 arriving while another thread writes a mark is ignored, so wait
 * for "mark N" in the file before sending the next one. An entry being
 * recorded by another thread at the instant of the signal may be written
 * half-done or fall into the next window.
 *
 * Addresses are made link-time by subtracting the executable's load address
 * (&__executable_start, whose link-time value is 0 in a PIE such as
 * doku-bridged), so that addr2line -e doku-bridged can read them. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define NO_TRACE __attribute__((no_instrument_function))
#define TRACE_CAP (1ul << 20)

/* From the linker: the executable's first byte and the end of its code. */
extern const char __executable_start[];
extern const char etext[];

void __cyg_profile_func_enter(void *this_fn, void *call_site) NO_TRACE;
void __cyg_profile_func_exit(void *this_fn, void *call_site) NO_TRACE;

static struct entry {
	uintptr_t fn, site;
} ring[TRACE_CAP];
static atomic_ulong entered;	 /* entries recorded since the start */
static unsigned long written;	 /* entries written out (signal handler only) */
static unsigned long marks;	 /* marks written (signal handler only) */
static atomic_flag busy = ATOMIC_FLAG_INIT; /* a handler is writing */
static int trace_fd = -1;	 /* >= 0: tracing */

void __cyg_profile_func_enter(void *this_fn, void *call_site)
{
	uintptr_t base = (uintptr_t)__executable_start;
	uintptr_t site = (uintptr_t)call_site;
	struct entry *e;

	/* Only the executable's own functions (clang also instruments inline
	 * functions of system headers whose address is the C library's). */
	if (trace_fd < 0 || (uintptr_t)this_fn < base || (uintptr_t)this_fn >= (uintptr_t)etext)
		return;
	e = &ring[atomic_fetch_add_explicit(&entered, 1, memory_order_relaxed) % TRACE_CAP];
	e->fn = (uintptr_t)this_fn - base;
	e->site = site >= base && site < (uintptr_t)etext ? site - base : 0;
}

void __cyg_profile_func_exit(void *this_fn, void *call_site)
{
	(void)this_fn;
	(void)call_site;
}

/* The text of the signal handler, gathered in a stack buffer. */
struct out {
	char buf[4096];
	size_t n;
};

static void flush(struct out *o) NO_TRACE;
static void flush(struct out *o)
{
	size_t done = 0;

	while (done < o->n) {
		ssize_t w = write(trace_fd, o->buf + done, o->n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* nowhere to report it: the marks will be missing */
		done += (size_t)w;
	}
	o->n = 0;
}

/* No memcpy or strlen here: clang instruments the inline ones of <string.h>. */
static void put(struct out *o, const char *s) NO_TRACE;
static void put(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (o->n == sizeof o->buf)
			flush(o);
		o->buf[o->n++] = *s;
	}
}

/* v in BASE (10 or 16) followed by END. */
static void put_num(struct out *o, unsigned long long v, unsigned base, const char *end) NO_TRACE;
static void put_num(struct out *o, unsigned long long v, unsigned base, const char *end)
{
	char s[24], *p = s + sizeof s;

	*--p = '\0';
	do {
		*--p = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	put(o, p);
	put(o, end);
}

static void on_mark(int signum) NO_TRACE;
static void on_mark(int signum)
{
	int saved = errno;
	unsigned long end;
	struct out o;

	(void)signum;
	if (atomic_flag_test_and_set(&busy))
		return;
	o.n = 0;
	end = atomic_load(&entered);
	if (end - written > TRACE_CAP) {
		put(&o, "lost ");
		put_num(&o, end - written - TRACE_CAP, 10, "\n");
		written = end - TRACE_CAP;
	}
	for (; written != end; written++) {
		const struct entry *e = &ring[written % TRACE_CAP];

		put_num(&o, e->fn, 16, " ");
		put_num(&o, e->site, 16, "\n");
	}
	put(&o, "mark ");
	put_num(&o, ++marks, 10, "\n");
	flush(&o);
	atomic_flag_clear(&busy);
	errno = saved;
}

static void trace_start(void) __attribute__((constructor)) NO_TRACE;
static void trace_start(void)
{
	const char *path = getenv("DOKU_TRACE_FILE");
	struct sigaction sa = {.sa_handler = on_mark, .sa_flags = SA_RESTART};

	if (!path || !*path)
		return;
	sigemptyset(&sa.sa_mask);
	trace_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (trace_fd >= 0 && sigaction(SIGUSR2, &sa, NULL) != 0) {
		close(trace_fd);
		trace_fd = -1;
	}
}
