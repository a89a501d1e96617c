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
} bu_result;

/* CPU time of this process (getrusage) and of pid (/proc/PID/stat, all its
 * threads; 0 when pid <= 0), in microseconds. */
typedef struct bu_cpu {
	uint64_t self_us, other_us;
} bu_cpu;

void bu_cpu_read(pid_t pid, bu_cpu *out);

/* Sort the samples and fill r: calls, rate, percentiles, and the CPU per call
 * from the two readings (before, after). */
void bu_result_fill(bu_result *r, bu_samples *s, uint64_t calls, uint64_t failed, uint64_t t0_ns,
		    uint64_t t1_ns, const bu_cpu *before, const bu_cpu *after);

/* VmRSS of pid in KiB, or -1. */
long bu_rss_kib(pid_t pid);

/* Pin every thread of pid (0: this process) to cpu, or to all CPUs when cpu
 * is negative. 0 or -1. */
int bu_pin(pid_t pid, int cpu);

/* The direct floor: conns kept-alive TLS connections to the simulator, one
 * signed GetBalance in flight on each, until calls answers or seconds have
 * passed (the first 2 * conns answers, new connections, are not measured).
 * c holds the B2B and customer tokens (simtest_open_customer). The CPU per
 * call is this process's only. 0, or -1 when the run could not be set up. */
int bu_direct_run(simtest_client *c, int conns, uint64_t calls, double seconds, bu_result *r);

#endif
