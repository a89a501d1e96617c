/* bench_snapsim: signed SNAP requests per second that doku-snapsim serves.
 *
 * Starts its own simulator (throwaway credentials, 127.0.0.1, real TLS with
 * verification), opens a customer session, then keeps N keep-alive TLS
 * connections (libcurl multi, one request in flight on each) busy with
 * signed GetBalance calls (HMAC + B2B token + customer token, a new
 * X-EXTERNAL-ID each) for a bounded time or count. Prints requests/s and
 * the latency percentiles.
 *
 *   bench_snapsim [--seconds S] [--requests N] [--connections C] [--threads T]
 *
 * Exit status 0 when every request was answered 200 / 2001100. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simtest.h"
#include "snap_extid.h"
#include "snap_time.h"

#define CONNECTIONS_DEFAULT 32
#define CONNECTIONS_MAX 256
#define SECONDS_DEFAULT 10
#define WARMUP_S 1
#define SAMPLES_MAX (4u * 1024u * 1024u)
#define ANSWER_MAX 4096
#define BODY_TEXT_MAX 128

struct slot {
	CURL *easy;
	struct curl_slist *headers;
	char body[BODY_TEXT_MAX];
	char answer[ANSWER_MAX];
	size_t answer_len;
	struct timespec started;
};

struct bench {
	simtest_client *c;
	CURLM *multi;
	char url[SIMTEST_ADDR_MAX + 64];
	struct slot slots[CONNECTIONS_MAX];
	int connections;
	unsigned long sent;
	unsigned long done;
	unsigned long errors;
	unsigned long measured;        /* answers counted after the warm-up */
	double *samples;               /* latencies in ms after the warm-up */
	size_t nsamples;
	bool measuring;
	char stamp[SNAP_TIMESTAMP_LEN + 1];
	time_t stamp_second;
};

static double seconds_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

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
static const char *stamp_now(struct bench *b)
{
	time_t now = time(NULL);

	if (now != b->stamp_second) {
		b->stamp_second = now;
		snap_time_format(now, b->stamp);
	}
	return b->stamp;
}

static int arm(struct bench *b, struct slot *s)
{
	simtest_client *c = b->c;
	char ext[SNAP_EXTID_MAX + 1], sig[SNAP_HMAC_B64_LEN + 1], line[SIMTEST_TOKEN_MAX + 64];
	const char *ts = stamp_now(b);

	if (snap_extid_next(ext) != 0)
		return -1;
	snprintf(s->body, sizeof(s->body), "{\"partnerReferenceNo\":\"bench-%lu\"}", b->sent);
	if (snap_sign_service(c->secret, c->secret_len, "POST", P_BALANCE, c->b2b, s->body,
			      strlen(s->body), ts, sig) != 0)
		return -1;
	curl_slist_free_all(s->headers);
	s->headers = NULL;
	s->headers = curl_slist_append(s->headers, "Content-Type: application/json");
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
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
	s->answer_len = 0;
	s->answer[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &s->started);
	b->sent++;
	return curl_multi_add_handle(b->multi, s->easy) == CURLM_OK ? 0 : -1;
}

static int slot_init(struct bench *b, struct slot *s)
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

static void finish(struct bench *b, CURLMsg *msg)
{
	struct slot *s = NULL;
	long status = 0;
	double ms;

	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
	curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
	ms = seconds_since(&s->started) * 1000.0;
	curl_multi_remove_handle(b->multi, msg->easy_handle);
	b->done++;
	if (msg->data.result != CURLE_OK || status != 200 ||
	    strstr(s->answer, "\"responseCode\":\"2001100\"") == NULL) {
		if (b->errors++ < 5)
			fprintf(stderr, "bench: error: curl %d HTTP %ld %s\n", (int)msg->data.result,
				status, s->answer);
	}
	if (b->measuring) {
		b->measured++;
		if (b->nsamples < SAMPLES_MAX)
			b->samples[b->nsamples++] = ms;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double percentile(const double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0.0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_snapsim [--seconds S] [--requests N] [--connections C] "
			"[--threads T]\n");
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "requests", required_argument, NULL, 'n' },
		{ "connections", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench b;
	static simtest_client client;
	char creds[PATH_MAX], threads_text[16] = "2";
	const char *extra[] = { "--threads", threads_text, NULL };
	simtest_proc sim;
	simtest_customer cu;
	struct timespec t0;
	double seconds = SECONDS_DEFAULT, elapsed = 0.0;
	unsigned long requests = 0;
	int opt, rc = 1, stop_rc;

	b.connections = CONNECTIONS_DEFAULT;
	while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (opt) {
		case 's': seconds = atof(optarg); break;
		case 'n': requests = strtoul(optarg, NULL, 10); break;
		case 'c': b.connections = atoi(optarg); break;
		case 't': snprintf(threads_text, sizeof(threads_text), "%s", optarg); break;
		default: usage(); return 2;
		}
	}
	if (b.connections < 1 || b.connections > CONNECTIONS_MAX || seconds <= 0) {
		usage();
		return 2;
	}
	b.samples = malloc(SAMPLES_MAX * sizeof(double));
	if (b.samples == NULL)
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (simtest_make_creds(creds) != 0 || simtest_start(&sim, creds, extra) != 0)
		return 1;
	if (simtest_client_init(&client, &sim) != 0 || simtest_open_customer(&client, &sim, &cu) != 0)
		goto out;
	b.c = &client;
	snprintf(b.url, sizeof(b.url), "%s%s", client.base, P_BALANCE);
	b.multi = curl_multi_init();
	curl_multi_setopt(b.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)b.connections);
	curl_multi_setopt(b.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)b.connections);
	curl_multi_setopt(b.multi, CURLMOPT_MAXCONNECTS, (long)b.connections);
	for (int i = 0; i < b.connections; i++)
		if (slot_init(&b, &b.slots[i]) != 0 || arm(&b, &b.slots[i]) != 0)
			goto out;
	printf("bench: %d keep-alive TLS connections to %s, simulator threads %s, %s\n",
	       b.connections, sim.https, threads_text,
	       requests > 0 ? "fixed count" : "timed run");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int running = 0, queued;
		CURLMsg *msg;
		double now = seconds_since(&t0);

		if (!b.measuring && (requests > 0 || now >= WARMUP_S)) {
			b.measuring = true;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			now = 0.0;
		}
		curl_multi_perform(b.multi, &running);
		while ((msg = curl_multi_info_read(b.multi, &queued)) != NULL) {
			struct slot *s = NULL;
			bool more;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			finish(&b, msg);
			more = requests > 0 ? b.sent < requests : !(b.measuring && now >= seconds);
			if (more && arm(&b, s) != 0)
				goto out;
		}
		if (b.done == b.sent && (requests > 0 ? b.sent >= requests : b.measuring && now >= seconds))
			break;
		curl_multi_poll(b.multi, NULL, 0, 100, NULL);
	}
	elapsed = seconds_since(&t0);
	qsort(b.samples, b.nsamples, sizeof(double), cmp_double);
	printf("bench: %lu requests in %.2f s: %.0f requests/s, p50 %.2f ms, p99 %.2f ms, "
	       "errors %lu\n", b.measured, elapsed, (double)b.measured / elapsed,
	       percentile(b.samples, b.nsamples, 0.50), percentile(b.samples, b.nsamples, 0.99),
	       b.errors);
	rc = b.errors == 0 && b.measured > 0 ? 0 : 1;
out:
	for (int i = 0; i < b.connections; i++) {
		if (b.slots[i].easy != NULL) {
			curl_multi_remove_handle(b.multi, b.slots[i].easy);
			curl_easy_cleanup(b.slots[i].easy);
		}
		curl_slist_free_all(b.slots[i].headers);
	}
	if (b.multi != NULL)
		curl_multi_cleanup(b.multi);
	simtest_client_free(&client);
	stop_rc = simtest_stop(&sim);
	if (stop_rc != 0) {
		fprintf(stderr, "bench: the simulator did not exit cleanly (%d)\n", stop_rc);
		rc = 1;
	}
	simtest_remove_creds(creds);
	curl_global_cleanup();
	free(b.samples);
	return rc;
}
