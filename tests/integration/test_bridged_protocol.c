/* The wire and the callers: framing errors, caps, backpressure, timeouts,
 * the ACL, a caller that vanishes mid-call, reload and SIGTERM with calls in
 * flight. Raw frames where the client library would refuse to send them. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define INQUIRE "/snap-adapter/b2b/v1.0/registration-account-inquiry"
#define C(x) DOKUBRIDGE_##x
#define MAX_FRAME 65536
#define MAX_CALLS 4

static h_env env;

static const char *bridge_conf =
	"max_frame_bytes = 65536\n"
	"max_calls_per_connection = 4\n"
	"idle_timeout_ms = 60000\n"
	"log_level = debug\n";

static int group_setup(void **state)
{
	(void)state;
	h_setup(&env);
	h_daemon_start(&env, bridge_conf, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	h_teardown(&env);
	return 0;
}

/* ---- raw frames ---- */

static Doku__Bridge__V1__Reply *read_reply(int fd)
{
	uint8_t flags, *body;
	uint32_t len;
	Doku__Bridge__V1__Reply *r;

	assert_int_equal(h_raw_read_frame(fd, &flags, &body, &len), 0);
	assert_int_equal(flags, 0);
	r = doku__bridge__v1__reply__unpack(NULL, len, body);
	free(body);
	assert_non_null(r);
	return r;
}

static void test_oversized_frame(void **state)
{
	uint8_t hdr[5] = { 0, 0x7f, 0xff, 0xff, 0xff }; /* 2 GiB announced */
	Doku__Bridge__V1__Reply *r;
	int fd = h_raw_connect(&env);

	(void)state;
	h_send_all(fd, hdr, sizeof(hdr));
	r = read_reply(fd);
	assert_int_equal(r->code, C(RESOURCE_EXHAUSTED));
	assert_int_equal(r->id, 0);
	assert_non_null(strstr(r->status_message, "over the cap"));
	doku__bridge__v1__reply__free_unpacked(r, NULL);
	assert_true(h_raw_eof(fd)); /* and the connection is closed */
	close(fd);
	/* just over the configured cap */
	fd = h_raw_connect(&env);
	hdr[1] = 0;
	hdr[2] = 0x01;
	hdr[3] = 0x00;
	hdr[4] = 0x01; /* 65537 */
	h_send_all(fd, hdr, sizeof(hdr));
	r = read_reply(fd);
	assert_int_equal(r->code, C(RESOURCE_EXHAUSTED));
	doku__bridge__v1__reply__free_unpacked(r, NULL);
	assert_true(h_raw_eof(fd));
	close(fd);
}

static void test_bad_flags(void **state)
{
	uint8_t buf[64];
	Doku__Bridge__V1__Reply *r;
	int fd = h_raw_connect(&env);

	(void)state;
	h_send_all(fd, buf, h_frame(buf, 1, "\x08\x01", 2));
	r = read_reply(fd);
	assert_int_equal(r->code, C(INVALID_ARGUMENT));
	assert_non_null(strstr(r->status_message, "flags"));
	doku__bridge__v1__reply__free_unpacked(r, NULL);
	assert_true(h_raw_eof(fd));
	close(fd);
}

/* Garbage, an unknown method, a garbled message, a missing field: each gets
 * its status and the connection keeps working. */
static void test_bad_calls_keep_connection(void **state)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x22 };
	Doku__Wallet__V1__HealthRequest health = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__CreateAccountRequest ca = DOKU__WALLET__V1__CREATE_ACCOUNT_REQUEST__INIT;
	Doku__Bridge__V1__Call call = DOKU__BRIDGE__V1__CALL__INIT;
	uint8_t buf[8192];
	Doku__Bridge__V1__Reply *r;
	unsigned before = h_sim_requests(&env, "/snap-adapter/b2b/v1.0/registration-account-creation", NULL);
	int fd = h_raw_connect(&env);
	size_t n;

	(void)state;
	h_send_all(fd, buf, h_frame(buf, 0, garbage, sizeof(garbage)));
	r = read_reply(fd);
	assert_int_equal(r->code, C(INVALID_ARGUMENT));
	assert_int_equal(r->outcome, C(OUTCOME_NOT_DONE));
	doku__bridge__v1__reply__free_unpacked(r, NULL);

	h_send_all(fd, buf, h_call_frame(buf, sizeof(buf), 7, "/doku.wallet.v1.Wallet/Transfer", NULL, NULL));
	r = read_reply(fd);
	assert_int_equal(r->id, 7);
	assert_int_equal(r->code, C(UNIMPLEMENTED));
	doku__bridge__v1__reply__free_unpacked(r, NULL);

	call.id = 8;
	call.method = "/doku.wallet.v1.Wallet/GetBalance";
	call.customer_ref = "someone";
	call.message.data = (uint8_t *)garbage;
	call.message.len = sizeof(garbage);
	n = doku__bridge__v1__call__pack(&call, buf + 5);
	h_frame(buf, 0, buf + 5, (uint32_t)n);
	h_send_all(fd, buf, n + 5);
	r = read_reply(fd);
	assert_int_equal(r->id, 8);
	assert_int_equal(r->code, C(INVALID_ARGUMENT));
	assert_non_null(strstr(r->status_message, "GetBalanceRequest"));
	doku__bridge__v1__reply__free_unpacked(r, NULL);

	ca.partner_reference_no = "r1";
	ca.name = "N";
	ca.phone_no = "62811";
	ca.redirect_url = "https://x";
	h_send_all(fd, buf, h_call_frame(buf, sizeof(buf), 9, "/doku.wallet.v1.Wallet/CreateAccount", &ca.base, NULL));
	r = read_reply(fd);
	assert_int_equal(r->id, 9);
	assert_int_equal(r->code, C(INVALID_ARGUMENT));
	assert_string_equal(r->status_message, "missing required field: email");
	assert_int_equal(r->outcome, C(OUTCOME_NOT_DONE));
	doku__bridge__v1__reply__free_unpacked(r, NULL);

	ca.email = "e@x.id";
	ca.redirect_url = "";
	h_send_all(fd, buf, h_call_frame(buf, sizeof(buf), 10, "/doku.wallet.v1.Wallet/CreateAccount", &ca.base, NULL));
	r = read_reply(fd);
	assert_string_equal(r->status_message, "missing required field: redirectUrl");
	doku__bridge__v1__reply__free_unpacked(r, NULL);

	h_send_all(fd, buf, h_call_frame(buf, sizeof(buf), 11, "/doku.wallet.v1.Wallet/Health", &health.base, NULL));
	r = read_reply(fd);
	assert_int_equal(r->id, 11);
	assert_int_equal(r->code, C(OK));
	doku__bridge__v1__reply__free_unpacked(r, NULL);
	close(fd);
	/* nothing went out for the refused requests */
	assert_int_equal(h_sim_requests(&env, "/snap-adapter/b2b/v1.0/registration-account-creation", NULL),
			 before);
}

/* An invalid Amount and a bad customer_ref are refused before anything goes out. */
static void test_formats(void **state)
{
	Doku__Wallet__V1__PurchaseRequest p = DOKU__WALLET__V1__PURCHASE_REQUEST__INIT;
	Doku__Wallet__V1__Amount a = DOKU__WALLET__V1__AMOUNT__INIT;
	dokubridge_client *c = h_client(&env);
	dokubridge_result res;

	(void)state;
	p.partner_reference_no = "x";
	p.charge_token = "DOKU";
	a.value = "10.5";
	a.currency = "IDR";
	p.amount = &a;
	assert_int_equal(h_call(c, "cust", "Purchase", &p.base, NULL, &res), -C(INVALID_ARGUMENT));
	assert_non_null(strstr(res.message, "amount.value"));
	a.value = "10.50";
	assert_int_equal(h_call(c, "bad ref!", "Purchase", &p.base, NULL, &res), -C(INVALID_ARGUMENT));
	assert_non_null(strstr(res.message, "customer_ref"));
	dokubridge_free(c);
}

/* 20 slow calls pipelined on one connection: never more than MAX_CALLS in
 * flight, and all 20 answered. */
static void test_calls_cap_backpressure(void **state)
{
	Doku__Wallet__V1__InquireAccountRequest ia = DOKU__WALLET__V1__INQUIRE_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__HealthRequest hr = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__HealthResponse *h = NULL;
	dokubridge_client *other = h_client(&env);
	dokubridge_result res;
	uint8_t buf[20 * 256];
	size_t n = 0;
	unsigned max_seen = 0;
	int fd = h_raw_connect(&env);

	(void)state;
	h_fault(&env, "{\"path\":\"" INQUIRE "\",\"kind\":\"delay\",\"delayMs\":150,\"count\":20}");
	ia.partner_reference_no = "nobody";
	for (unsigned i = 0; i < 20; i++)
		n += h_call_frame(buf + n, sizeof(buf) - n, 100 + i,
				"/doku.wallet.v1.Wallet/InquireAccount", &ia.base, NULL);
	h_send_all(fd, buf, n);
	for (unsigned got = 0; got < 20; got++) {
		Doku__Bridge__V1__Reply *r;

		OK_CALL(other, NULL, "Health", hr, &h, &res);
		if (h->calls_in_flight > max_seen)
			max_seen = h->calls_in_flight;
		dokubridge_message_free(h);
		r = read_reply(fd);
		assert_int_equal(r->code, C(NOT_FOUND));
		doku__bridge__v1__reply__free_unpacked(r, NULL);
	}
	fprintf(stderr, "most calls in flight on the capped connection: %u\n", max_seen);
	assert_true(max_seen >= 1 && max_seen <= MAX_CALLS);
	close(fd);
	dokubridge_free(other);
}

/* A caller that sends calls but never reads its replies is cut off after
 * io_timeout_ms; everybody else is served meanwhile. */
static void test_slow_reader(void **state)
{
	Doku__Wallet__V1__HealthRequest hr = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	dokubridge_client *other = h_client(&env);
	dokubridge_result res;
	uint8_t one[128], buf[64 * 1024];
	size_t k = h_call_frame(one, sizeof(one), 1, "/doku.wallet.v1.Wallet/Health", &hr.base, NULL), n = 0;
	int fd = h_raw_connect(&env), rcv = 4096;
	unsigned long sent = 0;

	(void)state;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (n + k <= sizeof(buf)) {
		memcpy(buf + n, one, k);
		n += k;
	}
	/* write until the daemon stops reading us (our writes block), or it closes */
	for (;;) {
		struct pollfd p = { fd, POLLOUT, 0 };
		ssize_t w;

		if (poll(&p, 1, 2000) != 1)
			break; /* backpressure: the daemon no longer reads from us */
		w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
			break;
		if (w > 0)
			sent += (unsigned long)w;
		OK_CALL(other, NULL, "Health", hr, NULL, &res); /* others are still served */
	}
	fprintf(stderr, "slow reader: %lu bytes of calls sent before the daemon stopped reading\n", sent);
	assert_true(h_raw_hup(fd)); /* closed after io_timeout_ms, though we never read */
	close(fd);
	OK_CALL(other, NULL, "Health", hr, NULL, &res);
	dokubridge_free(other);
}

/* Half a frame, then silence: closed after io_timeout_ms. */
static void test_half_frame(void **state)
{
	uint8_t hdr[3] = { 0, 0, 0 };
	int fd = h_raw_connect(&env);

	(void)state;
	h_send_all(fd, hdr, sizeof(hdr));
	assert_true(h_raw_eof(fd));
	close(fd);
}

/* The caller leaves while its calls are with DOKU: they stop (a money-moving
 * one runs to its end: test_bridged_outcomes), the connection goes, nothing
 * leaks (ASan checks at exit). */
static void test_vanishing_caller(void **state)
{
	Doku__Wallet__V1__InquireAccountRequest ia = DOKU__WALLET__V1__INQUIRE_ACCOUNT_REQUEST__INIT;
	Doku__Wallet__V1__HealthRequest hr = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__HealthResponse *h = NULL;
	dokubridge_client *other = h_client(&env);
	dokubridge_result res;
	uint8_t buf[4096];
	size_t n = 0;
	int fd = h_raw_connect(&env);
	unsigned long seen = env.tap != NULL ? tap_received(env.tap) : 0;

	(void)state;
	h_fault(&env, "{\"path\":\"" INQUIRE "\",\"kind\":\"delay\",\"delayMs\":300,\"count\":3}");
	ia.partner_reference_no = "nobody";
	for (unsigned i = 0; i < 3; i++)
		n += h_call_frame(buf + n, sizeof(buf) - n, i + 1, "/doku.wallet.v1.Wallet/InquireAccount",
				  &ia.base, NULL);
	h_send_all(fd, buf, n);
	/* a partial frame too */
	h_send_all(fd, buf, 7);
	if (env.tap != NULL) /* the calls are with DOKU */
		while (tap_received(env.tap) < seen + 3)
			poll(NULL, 0, 5);
	close(fd);
	/* every call of the vanished caller ends; the connection is gone */
	for (int i = 0; i < 200; i++) {
		OK_CALL(other, NULL, "Health", hr, &h, &res);
		if (h->calls_in_flight == 0 && h->connections == 1) {
			dokubridge_message_free(h);
			h = NULL;
			break;
		}
		dokubridge_message_free(h);
		h = NULL;
		poll(NULL, 0, 20); /* bounded polling of the daemon's own state */
	}
	OK_CALL(other, NULL, "Health", hr, &h, &res);
	assert_int_equal(h->calls_in_flight, 0);
	assert_int_equal(h->connections, 1);
	dokubridge_message_free(h);
	dokubridge_free(other);
}

/* With [client.NAME] sections, a caller they do not name is refused, and the
 * refusal is logged; a section naming us allows what it lists. */
static void test_acl(void **state)
{
	char sections[512], *log;
	Doku__Wallet__V1__HealthRequest hr = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__InquireAccountRequest ia = DOKU__WALLET__V1__INQUIRE_ACCOUNT_REQUEST__INIT;
	dokubridge_client *c = h_client(&env);
	dokubridge_result res;
	FILE *f;
	size_t n = 0;

	(void)state;
	h_write_config(&env, bridge_conf,
		       "[client.someone-else]\nuids = 54321\nmethods = *\nprofiles = *\n");
	h_daemon_signal(&env, SIGHUP);
	assert_true(h_wait_notify(&env, "READY=1"));
	assert_int_equal(h_call(c, NULL, "Health", &hr.base, NULL, &res), -C(PERMISSION_DENIED));
	assert_int_equal(res.outcome, C(OUTCOME_NOT_DONE));

	snprintf(sections, sizeof(sections),
		 "[client.me]\nuids = %lu\nmethods = Health\nprofiles = default\n",
		 (unsigned long)getuid());
	h_write_config(&env, bridge_conf, sections);
	h_daemon_signal(&env, SIGHUP);
	assert_true(h_wait_notify(&env, "READY=1"));
	OK_CALL(c, NULL, "Health", hr, NULL, &res);
	ia.partner_reference_no = "x";
	assert_int_equal(h_call(c, NULL, "InquireAccount", &ia.base, NULL, &res), -C(PERMISSION_DENIED));
	assert_non_null(strstr(res.message, "InquireAccount"));
	dokubridge_free(c);

	f = fopen(env.log, "r");
	assert_non_null(f);
	log = NULL;
	assert_true(getdelim(&log, &n, '\0', f) > 0);
	fclose(f);
	assert_non_null(strstr(log, "method=Health profile=- ext_id=- http=0 rc=- "));
	assert_non_null(strstr(log, "code=PERMISSION_DENIED"));
	free(log);
	/* back to no ACL for the next tests */
	h_write_config(&env, bridge_conf, NULL);
	h_daemon_signal(&env, SIGHUP);
	assert_true(h_wait_notify(&env, "READY=1"));
}

/* SIGTERM with calls in flight: every one is answered, then the daemon exits 0. */
static void on_done(dokubridge_client *c, void *arg, const dokubridge_result *r, ProtobufCMessage *m)
{
	unsigned *answered = arg;

	(void)c;
	h_record_result(r);
	dokubridge_message_free(m);
	if (r->code == C(NOT_FOUND) && !r->local) {
		answered[0]++;
	} else {
		answered[1]++;
		fprintf(stderr, "not drained: %s%s: %s\n", dokubridge_code_name(r->code),
			r->local ? " (local)" : "", r->message);
	}
}

static void test_sigterm_drains(void **state)
{
	Doku__Wallet__V1__InquireAccountRequest ia = DOKU__WALLET__V1__INQUIRE_ACCOUNT_REQUEST__INIT;
	dokubridge_call_opts opts = { .timeout_ms = 10000 };
	dokubridge_client *c = h_client(&env);
	unsigned answered[2] = { 0, 0 };
	unsigned long seen = env.tap != NULL ? tap_received(env.tap) : 0;
	dokubridge_result res;

	(void)state;
	h_fault(&env, "{\"path\":\"" INQUIRE "\",\"kind\":\"delay\",\"delayMs\":500,\"count\":4}");
	ia.partner_reference_no = "nobody";
	for (int i = 0; i < MAX_CALLS; i++)
		assert_int_equal(dokubridge_start(c, &opts, "InquireAccount", &ia.base, on_done, answered,
						  NULL, &res), 0);
	if (env.tap != NULL)
		while (tap_received(env.tap) < seen + MAX_CALLS)
			assert_int_equal(dokubridge_poll(c, 20), 0);
	h_daemon_signal(&env, SIGTERM);
	assert_true(h_wait_notify(&env, "STOPPING=1"));
	while (answered[0] + answered[1] < MAX_CALLS)
		if (dokubridge_poll(c, 1000) != 0)
			break;
	fprintf(stderr, "drained: %u answered by DOKU, %u otherwise\n", answered[0], answered[1]);
	assert_int_equal(answered[0], MAX_CALLS);
	assert_int_equal(h_daemon_wait(&env), 0);
	dokubridge_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oversized_frame),
		cmocka_unit_test(test_bad_flags),
		cmocka_unit_test(test_bad_calls_keep_connection),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_calls_cap_backpressure),
		cmocka_unit_test(test_half_frame),
		cmocka_unit_test(test_vanishing_caller),
		cmocka_unit_test(test_acl),
		cmocka_unit_test(test_slow_reader),
		cmocka_unit_test(test_sigterm_drains),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
