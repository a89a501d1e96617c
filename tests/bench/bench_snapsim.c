/* bench_snapsim: signed SNAP requests per second that doku-snapsim serves.
 *
 * Starts its own simulator (throwaway credentials, 127.0.0.1, real TLS with
 * verification), opens a customer session, then keeps N keep-alive TLS
 * connections (libcurl multi, one request in flight on each) busy with
 * signed GetBalance calls (HMAC + B2B token + customer token, a new
 * X-EXTERNAL-ID each) for a bounded time or count (bu_direct_run, the same
 * driver as bench_bridge's direct floor). Prints requests/s and the latency
 * percentiles.
 *
 *   bench_snapsim [--seconds S] [--requests N] [--connections C] [--threads T]
 *
 * Exit status 0 when every request was answered 200 / 2001100. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define CONNECTIONS_DEFAULT 32
#define SECONDS_DEFAULT 10
#define REQUESTS_UNBOUNDED 1000000000ull

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
	static simtest_client client;
	char creds[PATH_MAX], threads_text[16] = "2";
	const char *extra[] = { "--threads", threads_text, NULL };
	simtest_proc sim;
	simtest_customer cu;
	bu_result r;
	double seconds = SECONDS_DEFAULT;
	unsigned long long requests = 0;
	int opt, connections = CONNECTIONS_DEFAULT, rc = 1, stop_rc;

	while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (opt) {
		case 's': seconds = atof(optarg); break;
		case 'n': requests = strtoull(optarg, NULL, 10); break;
		case 'c': connections = atoi(optarg); break;
		case 't': snprintf(threads_text, sizeof(threads_text), "%s", optarg); break;
		default: usage(); return 2;
		}
	}
	if (connections < 1 || connections > BU_DIRECT_CONNS_MAX || seconds <= 0) {
		usage();
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (simtest_make_creds(creds) != 0 || simtest_start(&sim, creds, extra) != 0)
		return 1;
	if (simtest_client_init(&client, &sim) != 0 || simtest_open_customer(&client, &sim, &cu) != 0)
		goto out;
	printf("bench: %d keep-alive TLS connections to %s, simulator threads %s, %s\n",
	       connections, sim.https, threads_text, requests > 0 ? "fixed count" : "timed run");
	if (bu_direct_run(&client, connections, 0, requests > 0 ? requests : REQUESTS_UNBOUNDED,
			  requests > 0 ? 1e9 : seconds, 0, &r) != 0)
		goto out;
	printf("bench: %llu requests in %.2f s: %.0f requests/s, p50 %.2f ms, p99 %.2f ms, "
	       "errors %llu\n", (unsigned long long)r.calls, r.seconds, r.rate, r.p50_us / 1000.0,
	       r.p99_us / 1000.0, (unsigned long long)r.failed);
	rc = r.failed == 0 && r.calls > 0 ? 0 : 1;
out:
	simtest_client_free(&client);
	stop_rc = simtest_stop(&sim);
	if (stop_rc != 0) {
		fprintf(stderr, "bench: the simulator did not exit cleanly (%d)\n", stop_rc);
		rc = 1;
	}
	simtest_remove_creds(creds);
	curl_global_cleanup();
	return rc;
}
