/* Shared pieces of the benchmark programs: clocks, latency samples and their
 * percentiles, a process's RSS and CPU time, CPU pinning, and the "direct"
 * floor: signed GetBalance requests sent straight to doku-snapsim with a
 * libcurl multi handle over kept-alive TLS connections. Bounded in time and
 * count; loopback only. */
#ifndef DOKU_BENCH_UTIL_H
#define DOKU_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "simtest.h"

#define BU_SAMPLES_MAX (8u * 1024u * 1024u) /* latency samples kept per run */
#define BU_DIRECT_CONNS_MAX 256

/* Monotonic clock in nanoseconds. */
uint64_t bu_now_ns(void);

/* Latency samples (nanoseconds) of one run. */
typedef struct bu_samples {
	uint64_t *v;
	size_t n, cap;
} bu_samples;

/* 0 or -1 (out of memory). cap is clamped to BU_SAMPLES_MAX. */
int bu_samples_init(bu_samples *s, size_t cap);
void bu_samples_free(bu_samples *s);
static inline void bu_sample(bu_samples *s, uint64_t ns)
{
	if (s->n < s->cap)
		s->v[s->n++] = ns;
}

/* The figures of one run. */
typedef struct bu_result {
	uint64_t calls, failed;
	double seconds;
	double rate;                /* calls per second */
	double p50_us, p99_us, p999_us;
	double cpu_us_per_call;     /* client (this process) + server, -1 when unknown */
	double client_us_per_call;  /* this process alone, -1 when unknown */
	double server_us_per_call;  /* the server (daemon) alone, -1 when none */
	double sim_us_per_call;     /* the simulator, -1 when not measured */
} bu_result;

/* CPU time of this process (getrusage), of pid and of sim (/proc/PID/stat,
 * all their threads; 0 when the pid is <= 0), in microseconds. */
typedef struct bu_cpu {
	uint64_t self_us, other_us, sim_us;
} bu_cpu;

/* bu_cpu_read3 with no simulator. */
void bu_cpu_read(pid_t pid, bu_cpu *out);
void bu_cpu_read3(pid_t pid, pid_t sim, bu_cpu *out);

/* Sort the samples and fill r: calls, rate, percentiles, and the CPU per call
 * from the two readings (before, after): client + server, each apart, and the
 * simulator's when before->sim_us or after->sim_us is not 0. */
void bu_result_fill(bu_result *r, bu_samples *s, uint64_t calls, uint64_t failed, uint64_t t0_ns,
		    uint64_t t1_ns, const bu_cpu *before, const bu_cpu *after);

/* A closed loop of n threads (a blocking client each): thread i calls
 * one(arg, i), which makes one call and returns true when it succeeded, again
 * and again. The first `warm` answers are not measured; then the run is
 * measured until `calls` more answers or `seconds`, whichever comes first.
 * CPU: this process, server and sim (pids, 0: none). 0, or -1 when the threads
 * could not be started. n <= BU_THREADS_MAX. */
#define BU_THREADS_MAX 256
int bu_threads_run(unsigned n, bool (*one)(void *arg, unsigned i), void *arg, uint64_t warm,
		   uint64_t calls, double seconds, pid_t server, pid_t sim, bu_result *r);

/* VmRSS of pid in KiB, or -1. */
long bu_rss_kib(pid_t pid);

/* Pin every thread of pid (0: this process) to cpu, or to all CPUs when cpu
 * is negative. 0 or -1. */
int bu_pin(pid_t pid, int cpu);

/* The direct floor, an event-loop client: one libcurl multi handle driven by
 * epoll (curl_multi_socket_action, as the daemon drives its own), conns
 * kept-alive TLS connections to the simulator, one signed GetBalance in
 * flight on each (a new X-EXTERNAL-ID, X-TIMESTAMP and HMAC signature per
 * request), until calls answers or seconds have passed (the first
 * max(2 * conns, warm) answers, new connections, are not measured). c holds
 * the B2B and customer tokens (simtest_open_customer). The CPU per call is
 * this process's (and sim's, when sim > 0). 0, or -1 when the run could not
 * be set up. */
int bu_direct_run(simtest_client *c, int conns, uint64_t warm, uint64_t calls, double seconds,
		  pid_t sim, bu_result *r);

/* The direct floor, blocking clients: conns threads, each with its own easy
 * handle (its own kept-alive connection) making the same signed GetBalance
 * with curl_easy_perform, in a closed loop (bu_threads_run). */
int bu_direct_blocking_run(simtest_client *c, int conns, uint64_t warm, uint64_t calls,
			   double seconds, pid_t sim, bu_result *r);

#endif
