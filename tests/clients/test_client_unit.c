/* Unit tests of libdokubridge against a scripted fake daemon: method names,
 * framing, multiplexing, deadlines, cancellation, protocol errors and the
 * local errors (daemon down, bad arguments). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dokubridge.h"
#include "fake_daemon.h"

#define MANY 1000 /* calls in flight at once */

/* ---- methods --------------------------------------------------------------- */

/* The X-list names every RPC of the service, in order, with the types the
 * typed functions use. */
#define CHECK_ROW(snake, Camel)                                                              \
	{                                                                                    \
		const ProtobufCMethodDescriptor *m = &svc->methods[i++];                     \
		assert_string_equal(m->name, #Camel);                                        \
		assert_ptr_equal(m->input, &doku__wallet__v1__##snake##_request__descriptor); \
		assert_ptr_equal(m->output, &doku__wallet__v1__##snake##_response__descriptor); \
		assert_true(dokubridge_##snake != NULL);                                     \
		assert_true(dokubridge_##snake##_start != NULL);                         \
	}

static void test_xlist_matches_service(void **state)
{
	const ProtobufCServiceDescriptor *svc = DOKUBRIDGE_SERVICE;
	unsigned i = 0;

	(void)state;
	DOKUBRIDGE_WALLET_RPCS(CHECK_ROW)
	assert_int_equal(i, svc->n_methods);
	assert_int_equal(svc->n_methods, 22);
}

static void test_kebab_and_lookup(void **state)
{
	const ProtobufCServiceDescriptor *svc = DOKUBRIDGE_SERVICE;
	char buf[DOKUBRIDGE_METHOD_MAX + 1];

	(void)state;
	assert_int_equal(dokubridge_method_kebab(dokubridge_method_lookup("GetTopUpStatus"), buf,
						 sizeof buf), 0);
	assert_string_equal(buf, "get-top-up-status");
	assert_int_equal(dokubridge_method_kebab(dokubridge_method_lookup("VerifyOtp"), buf,
						 sizeof buf), 0);
	assert_string_equal(buf, "verify-otp");
	assert_int_equal(dokubridge_method_kebab(dokubridge_method_lookup("Health"), buf, 4),
			 -DOKUBRIDGE_OUT_OF_RANGE);
	for (unsigned i = 0; i < svc->n_methods; i++) {
		const ProtobufCMethodDescriptor *m = &svc->methods[i];

		assert_ptr_equal(dokubridge_method_lookup(m->name), m);
		assert_int_equal(dokubridge_method_kebab(m, buf, sizeof buf), 0);
		assert_ptr_equal(dokubridge_method_lookup(buf), m);
		assert_int_equal(dokubridge_method_path(m, buf, sizeof buf), 0);
		assert_ptr_equal(dokubridge_method_lookup(buf), m);
	}
	assert_int_equal(dokubridge_method_path(&svc->methods[5], buf, sizeof buf), 0);
	assert_string_equal(buf, "/doku.wallet.v1.Wallet/GetBalance");
	assert_null(dokubridge_method_lookup("getBalance"));
	assert_null(dokubridge_method_lookup("get_balance"));
	assert_null(dokubridge_method_lookup("/doku.wallet.v1.Other/GetBalance"));
	assert_null(dokubridge_method_lookup("/doku.wallet.v1.Wallet"));
	assert_null(dokubridge_method_lookup(""));
	assert_null(dokubridge_method_lookup(NULL));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(dokubridge_code_name(DOKUBRIDGE_OK), "OK");
	assert_string_equal(dokubridge_code_name(DOKUBRIDGE_UNAUTHENTICATED), "UNAUTHENTICATED");
	assert_string_equal(dokubridge_code_name(17), "?");
	assert_string_equal(dokubridge_code_name(-1), "?");
	assert_string_equal(dokubridge_outcome_name(DOKUBRIDGE_OUTCOME_UNKNOWN), "OUTCOME_UNKNOWN");
	assert_string_equal(dokubridge_outcome_name(4), "?");
	/* the library's enums are the contract's */
	assert_int_equal(DOKUBRIDGE_UNAVAILABLE, DOKU__BRIDGE__V1__CODE__UNAVAILABLE);
	assert_int_equal(DOKUBRIDGE_UNAUTHENTICATED, DOKU__BRIDGE__V1__CODE__UNAUTHENTICATED);
	assert_int_equal(DOKUBRIDGE_OUTCOME_UNKNOWN, DOKU__BRIDGE__V1__OUTCOME__OUTCOME_UNKNOWN);
}

/* ---- configuration and local errors ---------------------------------------- */

static void test_socket_path_sources(void **state)
{
	dokubridge_config cfg = {0};
	dokubridge_client *c;
	char longpath[300];

	(void)state;
	unsetenv(DOKUBRIDGE_SOCKET_ENV);
	assert_int_equal(dokubridge_new(NULL, &c), 0);
	assert_string_equal(dokubridge_socket_path(c), DOKUBRIDGE_DEFAULT_SOCKET);
	assert_false(dokubridge_connected(c));
	assert_int_equal(dokubridge_fd(c), -1);
	assert_int_equal(dokubridge_interest(c), 0);
	assert_int_equal(dokubridge_timeout(c), -1);
	dokubridge_free(c);

	setenv(DOKUBRIDGE_SOCKET_ENV, "/tmp/from-env.sock", 1);
	assert_int_equal(dokubridge_new(NULL, &c), 0);
	assert_string_equal(dokubridge_socket_path(c), "/tmp/from-env.sock");
	dokubridge_free(c);

	cfg.socket_path = "/tmp/from-config.sock";
	assert_int_equal(dokubridge_new(&cfg, &c), 0);
	assert_string_equal(dokubridge_socket_path(c), "/tmp/from-config.sock");
	dokubridge_free(c);
	unsetenv(DOKUBRIDGE_SOCKET_ENV);

	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	cfg.socket_path = longpath;
	assert_int_equal(dokubridge_new(&cfg, &c), -DOKUBRIDGE_INVALID_ARGUMENT);
	assert_null(c);
	cfg.socket_path = NULL;
	cfg.max_frame = DOKUBRIDGE_FRAME_MAX_LIMIT + 1;
	assert_int_equal(dokubridge_new(&cfg, &c), -DOKUBRIDGE_INVALID_ARGUMENT);
	cfg.max_frame = 0;
	cfg.max_in_flight = DOKUBRIDGE_IN_FLIGHT_LIMIT + 1;
	assert_int_equal(dokubridge_new(&cfg, &c), -DOKUBRIDGE_INVALID_ARGUMENT);
}

static void never_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		       ProtobufCMessage *resp)
{
	(void)c, (void)arg, (void)res, (void)resp;
	fail_msg("a callback ran for a call that never started");
}

static void test_daemon_down_is_unavailable(void **state)
{
	dokubridge_config cfg = {.socket_path = "/nonexistent/doku-bridge/bridge.sock"};
	Doku__Wallet__V1__HealthRequest req = DOKU__WALLET__V1__HEALTH_REQUEST__INIT;
	Doku__Wallet__V1__HealthResponse *resp = (void *)1;
	dokubridge_client *c;
	dokubridge_result res;

	(void)state;
	assert_int_equal(dokubridge_new(&cfg, &c), 0);
	assert_int_equal(dokubridge_connect(c, &res), -DOKUBRIDGE_UNAVAILABLE);
	assert_int_equal(res.code, DOKUBRIDGE_UNAVAILABLE);
	assert_true(res.local);
	assert_non_null(strstr(res.message, "/nonexistent/doku-bridge/bridge.sock"));
	/* a blocking call connects by itself, and fails the same way */
	assert_int_equal(dokubridge_health(c, NULL, &req, &resp, &res), -DOKUBRIDGE_UNAVAILABLE);
	assert_null(resp);
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_NOT_DONE);
	/* an asynchronous start does not connect */
	assert_int_equal(dokubridge_health_start(c, NULL, &req, never_done, NULL,
						 NULL, &res), -DOKUBRIDGE_UNAVAILABLE);
	assert_int_equal(dokubridge_poll(c, 0), -DOKUBRIDGE_UNAVAILABLE);
	/* res may be NULL */
	assert_int_equal(dokubridge_health(c, NULL, &req, NULL, NULL), -DOKUBRIDGE_UNAVAILABLE);
	dokubridge_free(c);
}

static void test_refused_socket_is_unavailable(void **state)
{
	char dir[] = "/tmp/dokubridge-test-XXXXXX", path[108];
	struct sockaddr_un sa;
	dokubridge_config cfg = {0};
	dokubridge_client *c;
	dokubridge_result res;
	int fd;

	(void)state;
	/* a socket file nobody listens on (a daemon that died) */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/bridge.sock", dir);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd);
	cfg.socket_path = path;
	assert_int_equal(dokubridge_new(&cfg, &c), 0);
	assert_int_equal(dokubridge_connect(c, &res), -DOKUBRIDGE_UNAVAILABLE);
	assert_int_equal(res.code, DOKUBRIDGE_UNAVAILABLE);
	assert_non_null(strstr(res.message, "refused"));
	dokubridge_free(c);
	unlink(path);
	rmdir(dir);
}

/* A socket we may not connect to: PERMISSION_DENIED, not UNAVAILABLE. Root
 * passes every permission check, so as root the check runs in a child that
 * has become nobody. */
static int permission_check(const char *path)
{
	dokubridge_config cfg = {.socket_path = path};
	dokubridge_client *c;
	dokubridge_result res;
	int rc;

	if (dokubridge_new(&cfg, &c) < 0)
		return -1;
	rc = dokubridge_connect(c, &res);
	dokubridge_free(c);
	return rc == -DOKUBRIDGE_PERMISSION_DENIED && res.code == DOKUBRIDGE_PERMISSION_DENIED ? 0 : -1;
}

static void test_socket_permission_denied(void **state)
{
	char dir[] = "/tmp/dokubridge-test-XXXXXX", path[108];
	struct sockaddr_un sa;
	int fd, status = -1;
	pid_t pid;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(path, sizeof path, "%s/bridge.sock", dir);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(chmod(path, 0), 0);
	if (geteuid() != 0) {
		assert_int_equal(permission_check(path), 0);
	} else {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (setgid(65534) < 0 || setuid(65534) < 0)
				_exit(2);
			_exit(permission_check(path) == 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	close(fd);
	unlink(path);
	rmdir(dir);
}

/* ---- a connected client ------------------------------------------------------ */

struct fixture {
	struct fake_daemon f;
	dokubridge_client *c;
};

static struct fixture *fixture_new(enum fake_mode mode, size_t batch, const dokubridge_config *base)
{
	struct fixture *x = calloc(1, sizeof *x);
	dokubridge_config cfg = {0};
	dokubridge_result res;

	assert_non_null(x);
	if (base)
		cfg = *base;
	x->f.batch = batch;
	assert_int_equal(fake_start(&x->f, mode), 0);
	cfg.socket_path = x->f.path;
	assert_int_equal(dokubridge_new(&cfg, &x->c), 0);
	assert_int_equal(dokubridge_connect(x->c, &res), 0);
	assert_true(dokubridge_connected(x->c));
	assert_true(dokubridge_fd(x->c) >= 0);
	assert_int_equal(dokubridge_interest(x->c) & DOKUBRIDGE_WANT_READ, DOKUBRIDGE_WANT_READ);
	return x;
}

static void fixture_free(struct fixture *x)
{
	dokubridge_free(x->c);
	fake_stop(&x->f);
	free(x);
}

static void test_blocking_call_round_trip(void **state)
{
	struct fixture *x = fixture_new(FAKE_ANSWER, 0, NULL);
	Doku__Wallet__V1__GetBalanceRequest req = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceResponse *resp = NULL;
	dokubridge_call_opts opts = {.timeout_ms = 5000, .profile = "shop2", .customer_ref = "cust-1"};
	dokubridge_result res;

	(void)state;
	req.partner_reference_no = "ref-123";
	assert_int_equal(dokubridge_get_balance(x->c, &opts, &req, &resp, &res), 0);
	assert_int_equal(res.code, DOKUBRIDGE_OK);
	assert_false(res.local);
	assert_int_equal(res.call_id, 1);
	assert_int_equal(res.http_status, 200);
	assert_string_equal(res.response_code, "2001100");
	assert_string_equal(res.response_message, "Successful");
	assert_string_equal(res.external_id, "41807553358950093184");
	assert_string_equal(res.partner_reference_no, "ref-123");
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_DONE);
	assert_non_null(resp);
	assert_string_equal(resp->name, "Budi");
	assert_string_equal(resp->account_info->amount->value, "10000.00");
	dokubridge_message_free(resp);
	assert_int_equal(x->f.last_timeout_ms, 5000);
	assert_string_equal(x->f.last_method, "/doku.wallet.v1.Wallet/GetBalance");
	assert_string_equal(x->f.last_profile, "shop2");
	assert_string_equal(x->f.last_customer_ref, "cust-1");
	assert_int_equal(dokubridge_in_flight(x->c), 0);
	fixture_free(x);
}

static void test_generic_calls(void **state)
{
	dokubridge_config cfg = {.default_timeout_ms = 1234, .default_profile = "p0"};
	struct fixture *x = fixture_new(FAKE_ANSWER, 0, &cfg);
	Doku__Wallet__V1__GetTransactionRequest req = DOKU__WALLET__V1__GET_TRANSACTION_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceRequest wrong = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	uint8_t raw[] = {0x0a, 0x03, 'a', 'b', 'c'}, *out = NULL;
	size_t outlen = 0;
	dokubridge_result res;

	(void)state;
	req.partner_reference_no = "x";
	/* by kebab name, message form (the fake echoes: field 1 lands in response_code) */
	assert_int_equal(dokubridge_call(x->c, NULL, "get-transaction", &req.base, &resp, &res), 0);
	assert_non_null(resp);
	assert_ptr_equal(resp->descriptor, &doku__wallet__v1__get_transaction_response__descriptor);
	assert_string_equal(((Doku__Wallet__V1__GetTransactionResponse *)resp)->response_code, "x");
	dokubridge_message_free(resp);
	assert_int_equal(x->f.last_timeout_ms, 1234);
	assert_string_equal(x->f.last_profile, "p0");
	assert_string_equal(x->f.last_customer_ref, "");

	/* serialized form, full path */
	assert_int_equal(dokubridge_call_raw(x->c, NULL, "/doku.wallet.v1.Wallet/GetTransaction", raw,
					     sizeof raw, &out, &outlen, &res), 0);
	assert_int_equal(outlen, sizeof raw);
	assert_memory_equal(out, raw, sizeof raw);
	free(out);

	/* an unknown full path goes out as is; the daemon answers UNIMPLEMENTED */
	assert_int_equal(dokubridge_call_raw(x->c, NULL, "/doku.wallet.v1.Wallet/Nope", NULL, 0, &out,
					     &outlen, &res), -DOKUBRIDGE_UNIMPLEMENTED);
	assert_false(res.local);
	assert_null(out);
	assert_string_equal(x->f.last_method, "/doku.wallet.v1.Wallet/Nope");

	/* local refusals: nothing goes out */
	assert_int_equal(dokubridge_call(x->c, NULL, "Nope", &req.base, &resp, &res),
			 -DOKUBRIDGE_INVALID_ARGUMENT);
	assert_true(res.local);
	assert_int_equal(dokubridge_call_raw(x->c, NULL, "not a path", NULL, 0, NULL, NULL, &res),
			 -DOKUBRIDGE_INVALID_ARGUMENT);
	assert_int_equal(dokubridge_call(x->c, NULL, "GetTransaction", &wrong.base, &resp, &res),
			 -DOKUBRIDGE_INVALID_ARGUMENT);
	assert_non_null(strstr(res.message, "GetBalanceRequest"));
	{
		dokubridge_call_opts bad = {.customer_ref = "no spaces"};
		dokubridge_call_opts longref = {
			.customer_ref = "a123456789a123456789a123456789a123456789a123456789a123456789abcde"};

		assert_int_equal(dokubridge_call(x->c, &bad, "GetTransaction", &req.base, NULL, &res),
				 -DOKUBRIDGE_INVALID_ARGUMENT);
		assert_non_null(strstr(res.message, "customer_ref"));
		assert_int_equal(dokubridge_call(x->c, &longref, "GetTransaction", &req.base, NULL,
						 &res), -DOKUBRIDGE_INVALID_ARGUMENT);
	}
	assert_int_equal(x->f.n_calls, 3);
	/* a NULL request is the empty message */
	assert_int_equal(dokubridge_call(x->c, NULL, "Health", NULL, &resp, &res), 0);
	dokubridge_message_free(resp);
	fixture_free(x);
}

/* ---- many calls in flight ------------------------------------------------------ */

struct tally {
	size_t done;
	size_t ok;
	uint64_t last_id;
	bool in_order;
	int codes[DOKUBRIDGE_CODE_COUNT];
	dokubridge_outcome last_outcome;
	bool last_local;
	char last_message[DOKUBRIDGE_MESSAGE_MAX];
};

static void count_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		       ProtobufCMessage *resp)
{
	struct tally *t = arg;

	(void)c;
	t->done++;
	if (res->code == DOKUBRIDGE_OK && resp)
		t->ok++;
	if (t->last_id && res->call_id > t->last_id)
		t->in_order = true;
	t->last_id = res->call_id;
	t->codes[res->code]++;
	t->last_outcome = res->outcome;
	t->last_local = res->local;
	snprintf(t->last_message, sizeof t->last_message, "%s", res->message);
	dokubridge_message_free(resp);
}

static void test_many_in_flight_reverse_order(void **state)
{
	struct fixture *x = fixture_new(FAKE_REVERSE, MANY, NULL);
	Doku__Wallet__V1__GetBalanceRequest req = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	dokubridge_call_opts opts = {.timeout_ms = 20000, .customer_ref = "c"};
	struct tally t = {0};
	int rounds = 0;

	(void)state;
	req.partner_reference_no = "r";
	for (int i = 0; i < MANY; i++)
		assert_int_equal(dokubridge_get_balance_start(x->c, &opts, &req, count_done, &t, NULL,
							      NULL), 0);
	assert_int_equal(dokubridge_in_flight(x->c), MANY);
	assert_int_equal(t.done, 0); /* no callback from inside a start */
	while (t.done < MANY && rounds++ < 100000)
		assert_int_equal(dokubridge_poll(x->c, 10000), 0);
	assert_int_equal(t.done, MANY);
	assert_int_equal(t.ok, MANY);
	assert_false(t.in_order); /* the replies came last-first and were matched by id */
	assert_int_equal(t.last_id, 1);
	assert_int_equal(dokubridge_in_flight(x->c), 0);
	assert_int_equal(dokubridge_interest(x->c), DOKUBRIDGE_WANT_READ);
	fixture_free(x);
}

static void test_in_flight_cap(void **state)
{
	dokubridge_config cfg = {.max_in_flight = 3};
	struct fixture *x = fixture_new(FAKE_REVERSE, 3, &cfg);
	struct tally t = {0};
	dokubridge_result res;

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(dokubridge_start(x->c, NULL, "Health", NULL, count_done, &t, NULL, NULL), 0);
	assert_int_equal(dokubridge_start(x->c, NULL, "Health", NULL, count_done, &t, NULL, &res),
			 -DOKUBRIDGE_RESOURCE_EXHAUSTED);
	assert_true(res.local);
	while (t.done < 3)
		assert_int_equal(dokubridge_poll(x->c, 10000), 0);
	assert_int_equal(t.ok, 3);
	fixture_free(x);
}

/* ---- deadlines and cancellation ------------------------------------------------- */

static void test_local_deadline(void **state)
{
	struct fixture *x = fixture_new(FAKE_SILENT, 0, NULL);
	dokubridge_call_opts opts = {.timeout_ms = 50};
	Doku__Wallet__V1__HealthResponse *resp = NULL;
	dokubridge_result res;

	(void)state;
	assert_int_equal(dokubridge_health(x->c, &opts, NULL, &resp, &res),
			 -DOKUBRIDGE_DEADLINE_EXCEEDED);
	assert_true(res.local);
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_UNKNOWN); /* it was sent */
	assert_null(resp);
	assert_int_equal(x->f.last_timeout_ms, 50);
	assert_int_equal(dokubridge_in_flight(x->c), 0);
	/* the daemon was told to stop: a cancel frame for call 1 went out; the
	 * daemon's CANCELLED answer to it arrives late and is dropped */
	dokubridge_free(x->c);
	x->c = NULL;
	fake_stop(&x->f);
	assert_int_equal(x->f.n_cancels, 1);
	assert_int_equal(x->f.cancel_ids[0], 1);
	free(x);
}

static void test_cancel(void **state)
{
	struct fixture *x = fixture_new(FAKE_SILENT, 0, NULL);
	struct tally t = {0};
	uint64_t id = 0;

	(void)state;
	assert_int_equal(dokubridge_start(x->c, NULL, "Purchase", NULL, count_done, &t, &id, NULL), 0);
	assert_true(id > 0);
	assert_int_equal(dokubridge_cancel(x->c, id), 0);
	assert_int_equal(dokubridge_cancel(x->c, id + 100), -DOKUBRIDGE_NOT_FOUND);
	while (t.done == 0)
		assert_int_equal(dokubridge_poll(x->c, 10000), 0);
	assert_int_equal(t.codes[DOKUBRIDGE_CANCELLED], 1);
	assert_false(t.last_local); /* the daemon's answer, with its outcome */
	assert_int_equal(t.last_outcome, DOKUBRIDGE_OUTCOME_NOT_DONE);
	fixture_free(x);
}

static void test_free_completes_calls(void **state)
{
	struct fixture *x = fixture_new(FAKE_SILENT, 0, NULL);
	struct tally t = {0};

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(dokubridge_start(x->c, NULL, "Health", NULL, count_done, &t, NULL, NULL), 0);
	dokubridge_free(x->c);
	x->c = NULL;
	assert_int_equal(t.done, 5);
	assert_int_equal(t.codes[DOKUBRIDGE_CANCELLED], 5);
	assert_true(t.last_local);
	fake_stop(&x->f);
	free(x);
}

static void test_late_reply_dropped(void **state)
{
	struct fixture *x = fixture_new(FAKE_LATE, 0, NULL);
	dokubridge_call_opts quick = {.timeout_ms = 30};
	dokubridge_result res;
	ProtobufCMessage *resp = NULL;

	(void)state;
	/* call 1 is held by the fake until call 2 arrives: it times out locally */
	assert_int_equal(dokubridge_call(x->c, &quick, "Health", NULL, &resp, &res),
			 -DOKUBRIDGE_DEADLINE_EXCEEDED);
	/* call 2 releases the late answer to 1 (dropped), and is itself held: times out too */
	assert_int_equal(dokubridge_call(x->c, &quick, "Health", NULL, &resp, &res),
			 -DOKUBRIDGE_DEADLINE_EXCEEDED);
	assert_int_equal(res.call_id, 2);
	assert_true(dokubridge_connected(x->c));
	fixture_free(x);
}

/* ---- protocol errors from the daemon --------------------------------------------- */

static void test_bad_flags_byte(void **state)
{
	struct fixture *x = fixture_new(FAKE_BAD_FLAGS, 0, NULL);
	struct tally t = {0};
	int rc = 0;

	(void)state;
	assert_int_equal(dokubridge_start(x->c, NULL, "Health", NULL, count_done, &t, NULL, NULL), 0);
	assert_int_equal(dokubridge_start(x->c, NULL, "Health", NULL, count_done, &t, NULL, NULL), 0);
	while (t.done < 2 && rc == 0)
		rc = dokubridge_poll(x->c, 10000);
	assert_int_equal(rc, -DOKUBRIDGE_INTERNAL);
	assert_int_equal(t.codes[DOKUBRIDGE_INTERNAL], 2);
	assert_int_equal(t.last_outcome, DOKUBRIDGE_OUTCOME_UNKNOWN);
	assert_non_null(strstr(t.last_message, "flags"));
	assert_false(dokubridge_connected(x->c));
	assert_int_equal(dokubridge_interest(x->c), 0);
	assert_true(dokubridge_fd(x->c) >= 0); /* kept open until connect/free */
	fixture_free(x);
}

static void test_oversized_frame(void **state)
{
	dokubridge_config cfg = {.max_frame = 1024};
	struct fixture *x = fixture_new(FAKE_HUGE, 0, &cfg);
	dokubridge_result res;
	uint8_t big[2048] = {0};

	(void)state;
	/* sending is capped too */
	assert_int_equal(dokubridge_call_raw(x->c, NULL, "Health", big, sizeof big, NULL, NULL, &res),
			 -DOKUBRIDGE_RESOURCE_EXHAUSTED);
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_NOT_DONE);
	assert_int_equal(dokubridge_call(x->c, NULL, "Health", NULL, NULL, &res),
			 -DOKUBRIDGE_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(res.message, "1024"));
	assert_false(dokubridge_connected(x->c));
	fixture_free(x);
}

static void test_daemon_closes(void **state)
{
	struct fixture *x = fixture_new(FAKE_CLOSE, 0, NULL);
	dokubridge_result res;

	(void)state;
	assert_int_equal(dokubridge_call(x->c, NULL, "TopUp", NULL, NULL, &res), -DOKUBRIDGE_UNAVAILABLE);
	assert_true(res.local);
	assert_int_equal(res.outcome, DOKUBRIDGE_OUTCOME_UNKNOWN);
	assert_false(dokubridge_connected(x->c));
	fixture_free(x);
}

/* ---- a callback that starts the next call (reentrancy) ----------------------------- */

struct chain {
	int left;
	int done;
	int refused;
};

static void chain_done(dokubridge_client *c, void *arg, const dokubridge_result *res,
		       ProtobufCMessage *resp)
{
	struct chain *ch = arg;

	assert_int_equal(res->code, DOKUBRIDGE_OK);
	dokubridge_message_free(resp);
	ch->done++;
	/* blocking calls and processing are refused from inside a callback */
	if (dokubridge_call(c, NULL, "Health", NULL, NULL, NULL) == -DOKUBRIDGE_FAILED_PRECONDITION &&
	    dokubridge_process(c, 0) == -DOKUBRIDGE_FAILED_PRECONDITION)
		ch->refused++;
	if (--ch->left > 0)
		assert_int_equal(dokubridge_start(c, NULL, "Health", NULL, chain_done, ch, NULL, NULL), 0);
}

static void test_callback_starts_calls(void **state)
{
	struct fixture *x = fixture_new(FAKE_ANSWER, 0, NULL);
	struct chain ch = {.left = 50};

	(void)state;
	assert_int_equal(dokubridge_start(x->c, NULL, "Health", NULL, chain_done, &ch, NULL, NULL), 0);
	while (ch.left > 0)
		assert_int_equal(dokubridge_poll(x->c, 10000), 0);
	assert_int_equal(ch.done, 50);
	assert_int_equal(ch.refused, 50);
	fixture_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xlist_matches_service),
		cmocka_unit_test(test_kebab_and_lookup),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_socket_path_sources),
		cmocka_unit_test(test_daemon_down_is_unavailable),
		cmocka_unit_test(test_refused_socket_is_unavailable),
		cmocka_unit_test(test_socket_permission_denied),
		cmocka_unit_test(test_blocking_call_round_trip),
		cmocka_unit_test(test_generic_calls),
		cmocka_unit_test(test_many_in_flight_reverse_order),
		cmocka_unit_test(test_in_flight_cap),
		cmocka_unit_test(test_local_deadline),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_free_completes_calls),
		cmocka_unit_test(test_late_reply_dropped),
		cmocka_unit_test(test_bad_flags_byte),
		cmocka_unit_test(test_oversized_frame),
		cmocka_unit_test(test_daemon_closes),
		cmocka_unit_test(test_callback_starts_calls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
