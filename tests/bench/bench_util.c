/* Shared pieces of the benchmark programs (see bench_util.h). */
#include "bench_util.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "snap_extid.h"
#include "snap_time.h"

#define STAT_LINE_MAX 1024
#define ANSWER_MAX 4096
#define BODY_TEXT_MAX 128
#define HEADER_LINE_MAX (SIMTEST_TOKEN_MAX + 64)
#define POLL_MS 100
#define EPOLL_BATCH 128
#define THREADS_NAP_MS 2                    /* the main thread's look at a closed loop */
#define THREADS_WARM_NS 30000000000ull      /* bound of a closed loop's warm-up beyond its time */

uint64_t bu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bu_samples_init(bu_samples *s, size_t cap)
{
	if (cap > BU_SAMPLES_MAX)
		cap = BU_SAMPLES_MAX;
	if (cap == 0)
		cap = 1;
	s->n = 0;
	s->cap = cap;
	s->v = malloc(cap * sizeof(*s->v));
	return s->v != NULL ? 0 : -1;
}

void bu_samples_free(bu_samples *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* utime + stime of every thread of pid, in microseconds (0 when unreadable). */
static uint64_t proc_cpu_us(pid_t pid)
{
	char path[64], line[STAT_LINE_MAX];
	unsigned long long ut = 0, st = 0;
	const char *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	/* fields after the command's closing parenthesis: state is field 3,
	 * utime 14 and stime 15 */
	p = strrchr(line, ')');
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
				&st) != 2)
		return 0;
	return (ut + st) * 1000000u / (unsigned long long)sysconf(_SC_CLK_TCK);
}

void bu_cpu_read3(pid_t pid, pid_t sim, bu_cpu *out)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	out->self_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
		       (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
	out->other_us = pid > 0 ? proc_cpu_us(pid) : 0;
	out->sim_us = sim > 0 ? proc_cpu_us(sim) : 0;
}

void bu_cpu_read(pid_t pid, bu_cpu *out)
{
	bu_cpu_read3(pid, 0, out);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static double pct_us(const bu_samples *s, double p)
{
	size_t i;

	if (s->n == 0)
		return 0.0;
	i = (size_t)(p * (double)(s->n - 1) + 0.5);
	return (double)s->v[i < s->n ? i : s->n - 1] / 1000.0;
}

void bu_result_fill(bu_result *r, bu_samples *s, uint64_t calls, uint64_t failed, uint64_t t0_ns,
		    uint64_t t1_ns, const bu_cpu *before, const bu_cpu *after)
{
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	r->calls = calls;
	r->failed = failed;
	r->seconds = (double)(t1_ns - t0_ns) / 1e9;
	r->rate = r->seconds > 0 ? (double)calls / r->seconds : 0.0;
	r->p50_us = pct_us(s, 0.50);
	r->p99_us = pct_us(s, 0.99);
	r->p999_us = pct_us(s, 0.999);
	r->cpu_us_per_call = -1.0;
	r->client_us_per_call = -1.0;
	r->server_us_per_call = -1.0;
	r->sim_us_per_call = -1.0;
	if (before != NULL && after != NULL && calls > 0) {
		r->client_us_per_call = (double)(after->self_us - before->self_us) / (double)calls;
		r->cpu_us_per_call = (double)(after->self_us - before->self_us + after->other_us -
					      before->other_us) / (double)calls;
		if (after->other_us != 0)
			r->server_us_per_call = (double)(after->other_us - before->other_us) /
						(double)calls;
		if (after->sim_us != 0)
			r->sim_us_per_call = (double)(after->sim_us - before->sim_us) / (double)calls;
	}
}

/* ---- a closed loop of blocking clients ----------------------------------------------- */

struct threads {
	bool (*one)(void *arg, unsigned i);
	void *arg;
	atomic_bool stop, measuring;
	atomic_uint_fast64_t answered, measured, failed, nsamples;
	uint64_t *samples;
	size_t cap;
};

struct thread_arg {
	struct threads *t;
	unsigned i;
	pthread_t th;
	bool started;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	struct threads *t = a->t;

	while (!atomic_load(&t->stop)) {
		uint64_t t0 = bu_now_ns();
		bool inside = atomic_load(&t->measuring);
		bool ok = t->one(t->arg, a->i);
		uint64_t ns = bu_now_ns() - t0;

		if (atomic_load(&t->measuring)) {
			/* counted when it ended inside the window; its latency when it
			 * also began there */
			if (inside) {
				uint64_t k = atomic_fetch_add(&t->nsamples, 1);

				if (k < t->cap)
					t->samples[k] = ns;
			}
			atomic_fetch_add(&t->measured, 1);
			if (!ok)
				atomic_fetch_add(&t->failed, 1);
		}
		atomic_fetch_add(&t->answered, 1);
	}
	return NULL;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };

	nanosleep(&ts, NULL);
}

int bu_threads_run(unsigned n, bool (*one)(void *arg, unsigned i), void *arg, uint64_t warm,
		   uint64_t calls, double seconds, pid_t server, pid_t sim, bu_result *r)
{
	static struct thread_arg ta[BU_THREADS_MAX];
	struct threads t;
	bu_samples s;
	bu_cpu cpu0, cpu1;
	uint64_t t0, t1, end, limit;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (n == 0 || n > BU_THREADS_MAX || bu_samples_init(&s, calls) != 0)
		return -1;
	memset(&t, 0, sizeof(t));
	t.one = one;
	t.arg = arg;
	t.samples = s.v;
	t.cap = s.cap;
	atomic_init(&t.stop, false);
	atomic_init(&t.measuring, false);
	atomic_init(&t.answered, 0);
	atomic_init(&t.measured, 0);
	atomic_init(&t.failed, 0);
	atomic_init(&t.nsamples, 0);
	for (unsigned i = 0; i < n; i++) {
		ta[i].t = &t;
		ta[i].i = i;
		ta[i].started = pthread_create(&ta[i].th, NULL, thread_main, &ta[i]) == 0;
		if (!ta[i].started)
			goto out;
	}
	/* the warm-up: new connections and handshakes; bounded like a call */
	limit = bu_now_ns() + (uint64_t)(seconds * 1e9) + THREADS_WARM_NS;
	while (atomic_load(&t.answered) < warm && bu_now_ns() < limit)
		nap_ms(1);
	bu_cpu_read3(server, sim, &cpu0);
	t0 = bu_now_ns();
	atomic_store(&t.measuring, true);
	end = t0 + (uint64_t)(seconds * 1e9);
	while (atomic_load(&t.measured) < calls && bu_now_ns() < end)
		nap_ms(THREADS_NAP_MS);
	atomic_store(&t.measuring, false);
	t1 = bu_now_ns();
	bu_cpu_read3(server, sim, &cpu1);
	rc = 0;
out:
	atomic_store(&t.stop, true);
	for (unsigned i = 0; i < n; i++)
		if (ta[i].started)
			pthread_join(ta[i].th, NULL);
	if (rc == 0) {
		uint64_t k = atomic_load(&t.nsamples);

		s.n = k < s.cap ? k : s.cap;
		bu_result_fill(r, &s, atomic_load(&t.measured), atomic_load(&t.failed), t0, t1, &cpu0,
			       &cpu1);
	}
	bu_samples_free(&s);
	return rc;
}

long bu_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int bu_pin(pid_t pid, int cpu)
{
	char path[64];
	cpu_set_t set;
	struct dirent *d;
	DIR *dir;
	int rc = 0;

	CPU_ZERO(&set);
	if (cpu >= 0) {
		CPU_SET(cpu, &set);
	} else {
		long n = sysconf(_SC_NPROCESSORS_CONF);

		for (long i = 0; i < n && i < CPU_SETSIZE; i++)
			CPU_SET((int)i, &set);
	}
	snprintf(path, sizeof(path), "/proc/%ld/task", (long)(pid > 0 ? pid : getpid()));
	dir = opendir(path);
	if (dir == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL) {
		long tid = strtol(d->d_name, NULL, 10);

		if (tid > 0 && sched_setaffinity((pid_t)tid, sizeof(set), &set) != 0)
			rc = -1;
	}
	closedir(dir);
	return rc;
}

/* ---- the direct floor ---------------------------------------------------------------- */

/* One client's request: its easy handle (its connection), body, headers, answer. */
struct slot {
	CURL *easy;
	struct curl_slist *headers;
	char body[BODY_TEXT_MAX];
	char answer[ANSWER_MAX];
	size_t answer_len;
	uint64_t n;             /* requests made */
	unsigned no;            /* the slot's number */
	uint64_t t0;
	char stamp[SNAP_TIMESTAMP_LEN + 1];
	time_t stamp_second;
};

static size_t on_answer(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct slot *s = userdata;
	size_t n = size * nmemb;

	if (s->answer_len + n >= ANSWER_MAX)
		return 0;
	memcpy(s->answer + s->answer_len, ptr, n);
	s->answer_len += n;
	s->answer[s->answer_len] = '\0';
	return n;
}

/* One X-TIMESTAMP per second, as a client would. */
static const char *stamp_now(struct slot *s)
{
	time_t now = time(NULL);

	if (now != s->stamp_second) {
		s->stamp_second = now;
		snap_time_format(now, s->stamp);
	}
	return s->stamp;
}

/* The next GetBalance of s, signed (a new X-EXTERNAL-ID each): body and
 * headers set on its easy handle. 0 or -1. */
static int sign_next(simtest_client *c, struct slot *s)
{
	char ext[SNAP_EXTID_MAX + 1], sig[SNAP_HMAC_B64_LEN + 1], line[HEADER_LINE_MAX];
	const char *ts = stamp_now(s);

	if (snap_extid_next(ext) != 0)
		return -1;
	snprintf(s->body, sizeof(s->body), "{\"partnerReferenceNo\":\"bench-%u-%llu\"}", s->no,
		 (unsigned long long)s->n++);
	if (snap_sign_service(c->secret, c->secret_len, "POST", P_BALANCE, c->b2b, s->body,
			      strlen(s->body), ts, sig) != 0)
		return -1;
	curl_slist_free_all(s->headers);
	s->headers = curl_slist_append(NULL, "Content-Type: application/json");
	snprintf(line, sizeof(line), "Authorization: Bearer %s", c->b2b);
	s->headers = curl_slist_append(s->headers, line);
	snprintf(line, sizeof(line), "X-TIMESTAMP: %s", ts);
	s->headers = curl_slist_append(s->headers, line);
	snprintf(line, sizeof(line), "X-SIGNATURE: %s", sig);
	s->headers = curl_slist_append(s->headers, line);
	snprintf(line, sizeof(line), "X-PARTNER-ID: %s", c->client_id);
	s->headers = curl_slist_append(s->headers, line);
	snprintf(line, sizeof(line), "X-EXTERNAL-ID: %s", ext);
	s->headers = curl_slist_append(s->headers, line);
	snprintf(line, sizeof(line), "Authorization-Customer: Bearer %s", c->customer);
	s->headers = curl_slist_append(s->headers, line);
	s->headers = curl_slist_append(s->headers, "Expect:");
	if (s->headers == NULL)
		return -1;
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
	s->answer_len = 0;
	s->answer[0] = '\0';
	return 0;
}

static int slot_init(simtest_client *c, const char *url, struct slot *s, unsigned no)
{
	memset(s, 0, sizeof(*s));
	s->no = no;
	s->easy = curl_easy_init();
	if (s->easy == NULL)
		return -1;
	curl_easy_setopt(s->easy, CURLOPT_URL, url);
	curl_easy_setopt(s->easy, CURLOPT_CAINFO, c->ca);
	curl_easy_setopt(s->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(s->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT, (long)SIMTEST_HTTP_TIMEOUT_S);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
	curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
	return 0;
}

static void slot_free(struct slot *s)
{
	if (s->easy != NULL)
		curl_easy_cleanup(s->easy);
	curl_slist_free_all(s->headers);
	s->easy = NULL;
	s->headers = NULL;
}

/* Whether the answer of s is a successful GetBalance (printed when not, the first few). */
static bool answer_ok(struct slot *s, CURLcode cc, atomic_uint_fast64_t *errors)
{
	long status = 0;

	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	if (cc == CURLE_OK && status == 200 &&
	    strstr(s->answer, "\"responseCode\":\"2001100\"") != NULL)
		return true;
	if (atomic_fetch_add(errors, 1) < 5)
		fprintf(stderr, "bench: direct: curl %d HTTP %ld %s\n", (int)cc, status, s->answer);
	return false;
}

struct direct {
	simtest_client *c;
	CURLM *multi;
	int ep;
	uint64_t timer_at;      /* curl's timer, bu_now_ns() clock; 0: none */
	char url[SIMTEST_ADDR_MAX + 64];
	struct slot slots[BU_DIRECT_CONNS_MAX];
	uint64_t sent, done, failed;
	atomic_uint_fast64_t errors;
	uint64_t warm;          /* answers before the measurement starts (new connections) */
	bu_cpu cpu0;
	uint64_t measured;
	bu_samples lat;
	pid_t sim;
};

/* CURLMOPT_SOCKETFUNCTION: what curl wants of fd, in epoll. */
static int on_sock(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct direct *b = userp;
	struct epoll_event ev = { .data.fd = fd };

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(b->ep, EPOLL_CTL_DEL, fd, NULL);
		curl_multi_assign(b->multi, fd, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
	if (socketp == NULL) {
		if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) != 0 &&
		    (errno != EEXIST || epoll_ctl(b->ep, EPOLL_CTL_MOD, fd, &ev) != 0))
			return -1;
		curl_multi_assign(b->multi, fd, b);
		return 0;
	}
	return epoll_ctl(b->ep, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct direct *b = userp;

	(void)multi;
	b->timer_at = timeout_ms < 0 ? 0 : bu_now_ns() + (uint64_t)timeout_ms * 1000000u;
	return 0;
}

static int arm(struct direct *b, struct slot *s)
{
	if (sign_next(b->c, s) != 0)
		return -1;
	s->t0 = bu_now_ns();
	b->sent++;
	return curl_multi_add_handle(b->multi, s->easy) == CURLM_OK ? 0 : -1;
}

static void answered(struct direct *b, CURLMsg *msg, struct slot *s)
{
	bool ok;

	curl_multi_remove_handle(b->multi, msg->easy_handle);
	ok = answer_ok(s, msg->data.result, &b->errors);
	if (b->done >= b->warm) {
		bu_sample(&b->lat, bu_now_ns() - s->t0);
		b->measured++;
		if (!ok)
			b->failed++;
	}
	b->done++;
}

int bu_direct_run(simtest_client *c, int conns, uint64_t warm, uint64_t calls, double seconds,
		  pid_t sim, bu_result *r)
{
	static struct direct b; /* large (answer buffers): not on the stack */
	struct epoll_event evs[EPOLL_BATCH];
	bu_cpu cpu1;
	uint64_t t0, end;
	int rc = -1, running;

	memset(&b, 0, sizeof(b));
	memset(r, 0, sizeof(*r));
	b.ep = -1;
	if (conns < 1 || conns > BU_DIRECT_CONNS_MAX || bu_samples_init(&b.lat, calls) != 0)
		return -1;
	atomic_init(&b.errors, 0);
	b.c = c;
	b.sim = sim;
	b.warm = 2u * (uint64_t)conns; /* every connection's handshake, then some */
	if (warm > b.warm)
		b.warm = warm;
	calls += b.warm;
	snprintf(b.url, sizeof(b.url), "%s%s", c->base, P_BALANCE);
	b.ep = epoll_create1(EPOLL_CLOEXEC);
	b.multi = curl_multi_init();
	if (b.multi == NULL || b.ep < 0)
		goto out;
	curl_multi_setopt(b.multi, CURLMOPT_SOCKETFUNCTION, on_sock);
	curl_multi_setopt(b.multi, CURLMOPT_SOCKETDATA, &b);
	curl_multi_setopt(b.multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(b.multi, CURLMOPT_TIMERDATA, &b);
	curl_multi_setopt(b.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
	curl_multi_setopt(b.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conns);
	curl_multi_setopt(b.multi, CURLMOPT_MAXCONNECTS, (long)conns);
	t0 = bu_now_ns();
	end = t0 + (uint64_t)(seconds * 1e9);
	for (int i = 0; i < conns && b.sent < calls; i++)
		if (slot_init(c, b.url, &b.slots[i], (unsigned)i) != 0 || arm(&b, &b.slots[i]) != 0)
			goto out;
	while (b.done < b.sent) {
		uint64_t now = bu_now_ns();
		int wait = POLL_MS, k, queued;
		CURLMsg *msg;

		if (b.timer_at != 0)
			wait = b.timer_at <= now ? 0 : (int)((b.timer_at - now + 999999u) / 1000000u);
		k = epoll_wait(b.ep, evs, EPOLL_BATCH, wait);
		if (k < 0 && errno != EINTR)
			goto out;
		for (int i = 0; i < k; i++) {
			int flags = 0;

			if (evs[i].events & (EPOLLIN | EPOLLHUP))
				flags |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (evs[i].events & EPOLLERR)
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(b.multi, evs[i].data.fd, flags, &running);
		}
		if (b.timer_at != 0 && b.timer_at <= bu_now_ns()) {
			b.timer_at = 0;
			curl_multi_socket_action(b.multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		while ((msg = curl_multi_info_read(b.multi, &queued)) != NULL) {
			struct slot *s = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			answered(&b, msg, s);
			if (b.done == b.warm) {
				bu_cpu_read3(0, b.sim, &b.cpu0);
				t0 = bu_now_ns();
				end = t0 + (uint64_t)(seconds * 1e9);
			}
			if (b.sent < calls && (b.done <= b.warm || bu_now_ns() < end) && arm(&b, s) != 0)
				goto out;
		}
	}
	bu_cpu_read3(0, b.sim, &cpu1);
	bu_result_fill(r, &b.lat, b.measured, b.failed, t0, bu_now_ns(), &b.cpu0, &cpu1);
	rc = 0;
out:
	for (int i = 0; i < conns; i++) {
		if (b.slots[i].easy != NULL && b.multi != NULL)
			curl_multi_remove_handle(b.multi, b.slots[i].easy);
		slot_free(&b.slots[i]);
	}
	if (b.multi != NULL)
		curl_multi_cleanup(b.multi);
	if (b.ep >= 0)
		close(b.ep);
	bu_samples_free(&b.lat);
	return rc;
}

/* ---- the direct floor, blocking --------------------------------------------------------- */

struct blocking {
	simtest_client *c;
	struct slot slots[BU_DIRECT_CONNS_MAX];
	atomic_uint_fast64_t errors;
};

static bool blocking_one(void *arg, unsigned i)
{
	struct blocking *b = arg;
	struct slot *s = &b->slots[i];

	if (sign_next(b->c, s) != 0) {
		atomic_fetch_add(&b->errors, 1);
		return false;
	}
	return answer_ok(s, curl_easy_perform(s->easy), &b->errors);
}

int bu_direct_blocking_run(simtest_client *c, int conns, uint64_t warm, uint64_t calls,
			   double seconds, pid_t sim, bu_result *r)
{
	static struct blocking b;
	char url[SIMTEST_ADDR_MAX + 64];
	int rc = -1;

	memset(&b, 0, sizeof(b));
	memset(r, 0, sizeof(*r));
	if (conns < 1 || conns > BU_DIRECT_CONNS_MAX || conns > BU_THREADS_MAX)
		return -1;
	atomic_init(&b.errors, 0);
	b.c = c;
	snprintf(url, sizeof(url), "%s%s", c->base, P_BALANCE);
	for (int i = 0; i < conns; i++)
		if (slot_init(c, url, &b.slots[i], (unsigned)i) != 0)
			goto out;
	if (warm < 2u * (uint64_t)conns)
		warm = 2u * (uint64_t)conns;
	rc = bu_threads_run((unsigned)conns, blocking_one, &b, warm, calls, seconds, 0, sim, r);
out:
	for (int i = 0; i < conns; i++)
		slot_free(&b.slots[i]);
	return rc;
}
