/* Shared pieces of the benchmark programs (see bench_util.h). */
#include "bench_util.h"

#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void bu_cpu_read(pid_t pid, bu_cpu *out)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	out->self_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
		       (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
	out->other_us = pid > 0 ? proc_cpu_us(pid) : 0;
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
	if (before != NULL && after != NULL && calls > 0)
		r->cpu_us_per_call = (double)(after->self_us - before->self_us + after->other_us -
					      before->other_us) / (double)calls;
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

struct slot {
	CURL *easy;
	struct curl_slist *headers;
	char body[BODY_TEXT_MAX];
	char answer[ANSWER_MAX];
	size_t answer_len;
	uint64_t t0;
};

struct direct {
	simtest_client *c;
	CURLM *multi;
	char url[SIMTEST_ADDR_MAX + 64];
	struct slot slots[BU_DIRECT_CONNS_MAX];
	uint64_t sent, done, errors;
	uint64_t warm;          /* answers before the measurement starts (new connections) */
	bu_cpu cpu0;
	uint64_t measured;
	bu_samples lat;
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
static const char *stamp_now(struct direct *b)
{
	time_t now = time(NULL);

	if (now != b->stamp_second) {
		b->stamp_second = now;
		snap_time_format(now, b->stamp);
	}
	return b->stamp;
}

/* Sign one GetBalance (a new X-EXTERNAL-ID each) and put it on the multi handle. */
static int arm(struct direct *b, struct slot *s)
{
	simtest_client *c = b->c;
	char ext[SNAP_EXTID_MAX + 1], sig[SNAP_HMAC_B64_LEN + 1], line[HEADER_LINE_MAX];
	const char *ts = stamp_now(b);

	if (snap_extid_next(ext) != 0)
		return -1;
	snprintf(s->body, sizeof(s->body), "{\"partnerReferenceNo\":\"bench-%llu\"}",
		 (unsigned long long)b->sent);
	if (snap_sign_service(c->secret, c->secret_len, "POST", P_BALANCE, c->b2b, s->body,
			      strlen(s->body), ts, sig) != 0)
		return -1;
	curl_slist_free_all(s->headers);
	s->headers = curl_slist_append(NULL, "Content-Type: application/json");
	snprintf(line, sizeof(line), "Authorization: Bearer %s", c->b2b);
	s->headers = curl_slist_append(s->headers, line);
	snprintf(line, sizeof(line), "Authorization-Customer: Bearer %s", c->customer);
	s->headers = curl_slist_append(s->headers, line);
	snprintf(line, sizeof(line), "X-TIMESTAMP: %s", ts);
	s->headers = curl_slist_append(s->headers, line);
	snprintf(line, sizeof(line), "X-SIGNATURE: %s", sig);
	s->headers = curl_slist_append(s->headers, line);
	snprintf(line, sizeof(line), "X-PARTNER-ID: %s", c->client_id);
	s->headers = curl_slist_append(s->headers, line);
	snprintf(line, sizeof(line), "X-EXTERNAL-ID: %s", ext);
	s->headers = curl_slist_append(s->headers, line);
	s->headers = curl_slist_append(s->headers, "Expect:");
	if (s->headers == NULL)
		return -1;
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
	s->answer_len = 0;
	s->answer[0] = '\0';
	s->t0 = bu_now_ns();
	b->sent++;
	return curl_multi_add_handle(b->multi, s->easy) == CURLM_OK ? 0 : -1;
}

static int slot_init(struct direct *b, struct slot *s)
{
	s->easy = curl_easy_init();
	if (s->easy == NULL)
		return -1;
	curl_easy_setopt(s->easy, CURLOPT_URL, b->url);
	curl_easy_setopt(s->easy, CURLOPT_CAINFO, b->c->ca);
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

static void answered(struct direct *b, CURLMsg *msg, struct slot *s)
{
	long status = 0;

	curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
	if (b->done >= b->warm) {
		bu_sample(&b->lat, bu_now_ns() - s->t0);
		b->measured++;
	}
	curl_multi_remove_handle(b->multi, msg->easy_handle);
	b->done++;
	if (msg->data.result != CURLE_OK || status != 200 ||
	    strstr(s->answer, "\"responseCode\":\"2001100\"") == NULL) {
		if (b->errors++ < 5)
			fprintf(stderr, "bench: direct: curl %d HTTP %ld %s\n", (int)msg->data.result,
				status, s->answer);
	}
}

int bu_direct_run(simtest_client *c, int conns, uint64_t calls, double seconds, bu_result *r)
{
	static struct direct b; /* large (answer buffers): not on the stack */
	bu_cpu cpu1;
	uint64_t t0, end;
	int rc = -1;

	memset(&b, 0, sizeof(b));
	memset(r, 0, sizeof(*r));
	if (conns < 1 || conns > BU_DIRECT_CONNS_MAX || bu_samples_init(&b.lat, calls) != 0)
		return -1;
	b.c = c;
	b.warm = 2u * (uint64_t)conns; /* every connection's handshake, then some */
	calls += b.warm;
	snprintf(b.url, sizeof(b.url), "%s%s", c->base, P_BALANCE);
	b.multi = curl_multi_init();
	if (b.multi == NULL)
		goto out;
	curl_multi_setopt(b.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
	curl_multi_setopt(b.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conns);
	curl_multi_setopt(b.multi, CURLMOPT_MAXCONNECTS, (long)conns);
	t0 = bu_now_ns();
	end = t0 + (uint64_t)(seconds * 1e9);
	for (int i = 0; i < conns && b.sent < calls; i++)
		if (slot_init(&b, &b.slots[i]) != 0 || arm(&b, &b.slots[i]) != 0)
			goto out;
	while (b.done < b.sent) {
		int running = 0, queued;
		CURLMsg *msg;

		curl_multi_perform(b.multi, &running);
		while ((msg = curl_multi_info_read(b.multi, &queued)) != NULL) {
			struct slot *s = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			answered(&b, msg, s);
			if (b.done == b.warm) {
				bu_cpu_read(0, &b.cpu0);
				t0 = bu_now_ns();
				end = t0 + (uint64_t)(seconds * 1e9);
			}
			if (b.sent < calls && bu_now_ns() < end && arm(&b, s) != 0)
				goto out;
		}
		if (b.done < b.sent)
			curl_multi_poll(b.multi, NULL, 0, POLL_MS, NULL);
	}
	bu_cpu_read(0, &cpu1);
	bu_result_fill(r, &b.lat, b.measured, b.errors, t0, bu_now_ns(), &b.cpu0, &cpu1);
	rc = 0;
out:
	for (int i = 0; i < conns; i++) {
		if (b.slots[i].easy != NULL) {
			curl_multi_remove_handle(b.multi, b.slots[i].easy);
			curl_easy_cleanup(b.slots[i].easy);
		}
		curl_slist_free_all(b.slots[i].headers);
	}
	if (b.multi != NULL)
		curl_multi_cleanup(b.multi);
	bu_samples_free(&b.lat);
	return rc;
}
