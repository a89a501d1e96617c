/* The Metrics RPC: after a known sequence of calls on a fresh daemon, the
 * Prometheus text is valid (HELP/TYPE lines, `name{labels} value` samples,
 * cumulative histogram buckets with +Inf == count) and counts exactly what
 * happened: calls by method, code and outcome; latency; upstream HTTP
 * statuses and SNAP case codes; token fetches, opens and refreshes;
 * connections; calls in flight. */
#include "harness.h"
#include "prom.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define C(x) DOKUBRIDGE_##x
#define CALLS(m, c, o) "method=\"" m "\",code=\"" c "\",outcome=\"" o "\""

static h_env env;

static int h_kill_all(void **state)
{
	(void)state;
	h_kill(&env);
	return 0;
}

static void metrics(dokubridge_client *c, prom *pm)
{
	Doku__Wallet__V1__MetricsRequest mq = DOKU__WALLET__V1__METRICS_REQUEST__INIT;
	Doku__Wallet__V1__MetricsResponse *mr = NULL;
	dokubridge_result res;

	OK_CALL(c, NULL, "Metrics", mq, &mr, &res);
	assert_int_equal(res.outcome, C(OUTCOME_DONE));
	if (prom_parse(mr->text, pm) != 0)
		fail_msg("Metrics text: %s\n%s", pm->error, mr->text);
	assert_null(strstr(mr->text, "Bearer"));
	dokubridge_message_free(mr);
}

/* A free TCP port on 127.0.0.1 (the kernel's pick; released at once). */
static unsigned free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void test_metrics_counts(void **state)
{
	static const char *const families[] = {
		"doku_bridge_build_info", "doku_bridge_uptime_seconds", "doku_bridge_connections",
		"doku_bridge_connections_accepted_total", "doku_bridge_connections_refused_total",
		"doku_bridge_calls_in_flight", "doku_bridge_calls_total",
		"doku_bridge_call_duration_seconds", "doku_bridge_upstream_responses_total",
		"doku_bridge_upstream_failures_total", "doku_bridge_snap_responses_total",
		"doku_bridge_token_requests_total", NULL,
	};
	Doku__Wallet__V1__HealthRequest hq = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceRequest gb = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	Doku__Wallet__V1__CreateAccountRequest ca = DOKU__WALLET__V1__CREATE_ACCOUNT_REQUEST__INIT;
	dokubridge_client *cli, *second;
	dokubridge_result res;
	h_customer cust;
	prom pm;
	uint8_t frame[512], flags, *body = NULL;
	uint32_t len;
	int fd;
	unsigned port;
	char url[96], extra[96], ctype[128], *text = NULL;

	(void)state;
	port = free_port();
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
	snprintf(extra, sizeof(extra), "metrics_listen = 127.0.0.1:%u\n", port);
	h_setup(&env);
	h_daemon_start(&env, extra, NULL);
	cli = h_client(&env);

	/* a fresh daemon: families, no calls */
	metrics(cli, &pm);
	for (const char *const *f = families; *f != NULL; f++) {
		if (!prom_has_family(&pm, *f))
			fail_msg("no family %s", *f);
	}
	assert_true(prom_get(&pm, "doku_bridge_build_info", "version=\"0.1.0\"") == 1);
	assert_true(prom_sum(&pm, "doku_bridge_calls_total", NULL) == 0);
	assert_true(prom_get(&pm, "doku_bridge_calls_in_flight", NULL) == 0);
	assert_true(prom_get(&pm, "doku_bridge_connections", NULL) == 1);
	prom_free(&pm);

	/* 3 Health; onboarding (CreateAccount, VerifyOtp, BindAccount,
	 * InquireAccount, OpenCustomerSession); 2 GetBalance; a refused
	 * CreateAccount (no HTTP); an unknown method; a 500 on GetBalance;
	 * an expired customer token (401xx02, one refresh, one retry) */
	for (int i = 0; i < 3; i++)
		OK_CALL(cli, NULL, "Health", hq, NULL, &res);
	h_customer_new(&env, cli, "m-1", &cust);
	gb.partner_reference_no = "m-bal";
	OK_CALL(cli, cust.ref, "GetBalance", gb, NULL, &res);
	OK_CALL(cli, cust.ref, "GetBalance", gb, NULL, &res);
	ca.partner_reference_no = "m-ca";
	assert_int_equal(h_call(cli, NULL, "CreateAccount", &ca.base, NULL, &res), -C(INVALID_ARGUMENT));
	fd = h_raw_connect(&env);
	h_send_all(fd, frame, h_call_frame(frame, sizeof(frame), 9, "/doku.wallet.v1.Wallet/Nope", NULL, NULL));
	assert_int_equal(h_raw_read_frame(fd, &flags, &body, &len), 0);
	free(body);
	close(fd);
	h_fault(&env, "{\"path\":\"/snap-adapter/b2b2c/v1.0/balance-inquiry\",\"kind\":\"http500\"}");
	assert_int_equal(h_call(cli, cust.ref, "GetBalance", &gb.base, NULL, &res), -C(INTERNAL));
	assert_int_equal(res.outcome, C(OUTCOME_UNKNOWN));
	free(h_ctl(&env, "POST", "/control/tokens", "{\"action\":\"expire\",\"kind\":\"customer\"}", NULL));
	OK_CALL(cli, cust.ref, "GetBalance", gb, NULL, &res);
	second = h_client(&env);

	metrics(cli, &pm);
	assert_true(prom_get(&pm, "doku_bridge_calls_total", CALLS("Health", "OK", "DONE")) == 3);
	assert_true(prom_get(&pm, "doku_bridge_calls_total", CALLS("CreateAccount", "OK", "DONE")) == 1);
	assert_true(prom_get(&pm, "doku_bridge_calls_total",
			     CALLS("CreateAccount", "INVALID_ARGUMENT", "NOT_DONE")) == 1);
	assert_true(prom_get(&pm, "doku_bridge_calls_total", CALLS("GetBalance", "OK", "DONE")) == 3);
	assert_true(prom_get(&pm, "doku_bridge_calls_total", CALLS("GetBalance", "INTERNAL", "UNKNOWN")) == 1);
	assert_true(prom_get(&pm, "doku_bridge_calls_total",
			     CALLS("OpenCustomerSession", "OK", "DONE")) == 1);
	assert_true(prom_get(&pm, "doku_bridge_calls_total", CALLS("unknown", "UNIMPLEMENTED", "NOT_DONE")) == 1);
	/* every call but this one, in the histograms too */
	assert_true(prom_sum(&pm, "doku_bridge_calls_total", NULL) == 3 + 5 + 4 + 1 + 1 + 1);
	assert_true(prom_sum(&pm, "doku_bridge_call_duration_seconds_count", NULL) == 15);
	assert_true(prom_get(&pm, "doku_bridge_call_duration_seconds_count", "method=\"GetBalance\"") == 4);
	assert_true(prom_get(&pm, "doku_bridge_call_duration_seconds_bucket",
			     "method=\"Health\",le=\"+Inf\"") == 3);
	assert_true(prom_get(&pm, "doku_bridge_call_duration_seconds_bucket",
			     "method=\"Health\",le=\"0.1\"") == 3); /* local: well under 100 ms */
	/* DOKU's answers: the 500, the 401xx02, and the 200s */
	assert_true(prom_get(&pm, "doku_bridge_upstream_responses_total", "http=\"500\"") == 1);
	assert_true(prom_get(&pm, "doku_bridge_upstream_responses_total", "http=\"401\"") == 1);
	/* 2 token requests (b2b, open) + 1 refresh + 4 onboarding + 4 GetBalance answers + retry */
	assert_true(prom_get(&pm, "doku_bridge_upstream_responses_total", "http=\"200\"") == 3 + 4 + 3);
	assert_true(prom_sum(&pm, "doku_bridge_upstream_failures_total", NULL) == 0);
	assert_true(prom_get(&pm, "doku_bridge_snap_responses_total", "http=\"500\",case=\"00\"") == 1);
	assert_true(prom_get(&pm, "doku_bridge_snap_responses_total", "http=\"401\",case=\"02\"") == 1);
	assert_true(prom_get(&pm, "doku_bridge_snap_responses_total", "http=\"200\",case=\"00\"") == 4 + 3);
	assert_true(prom_get(&pm, "doku_bridge_token_requests_total",
			     "profile=\"default\",kind=\"b2b\",result=\"ok\"") == 1);
	assert_true(prom_get(&pm, "doku_bridge_token_requests_total",
			     "profile=\"default\",kind=\"open\",result=\"ok\"") == 1);
	assert_true(prom_get(&pm, "doku_bridge_token_requests_total",
			     "profile=\"default\",kind=\"refresh\",result=\"ok\"") == 1);
	assert_true(prom_get(&pm, "doku_bridge_connections", NULL) == 2);
	assert_true(prom_get(&pm, "doku_bridge_connections_accepted_total", NULL) == 3);
	assert_true(prom_get(&pm, "doku_bridge_connections_refused_total", NULL) == 0);
	assert_true(prom_get(&pm, "doku_bridge_calls_in_flight", NULL) == 0);
	prom_free(&pm);

	/* the same text over HTTP for a scraper (no call of its own) */
	assert_int_equal(h_http("GET", url, NULL, &text, ctype, sizeof(ctype)), 200);
	assert_string_equal(ctype, "text/plain; version=0.0.4; charset=utf-8");
	if (prom_parse(text, &pm) != 0)
		fail_msg("HTTP metrics: %s", pm.error);
	assert_true(prom_get(&pm, "doku_bridge_calls_total", CALLS("GetBalance", "OK", "DONE")) == 3);
	assert_true(prom_get(&pm, "doku_bridge_calls_total", CALLS("Metrics", "OK", "DONE")) == 2);
	prom_free(&pm);
	free(text);
	assert_int_equal(h_http("POST", url, NULL, NULL, NULL, 0), 405);
	url[strlen(url) - 1] = 'X';
	assert_int_equal(h_http("GET", url, NULL, NULL, NULL, 0), 404);

	/* the first Metrics calls are counted by the next ones */
	metrics(second, &pm);
	assert_true(prom_get(&pm, "doku_bridge_calls_total", CALLS("Metrics", "OK", "DONE")) == 2);
	prom_free(&pm);

	dokubridge_free(second);
	dokubridge_free(cli);
	h_teardown(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_metrics_counts, h_kill_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
