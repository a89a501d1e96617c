/* rpc/admit.c: the envelope decoded, then each refusal in its documented
 * order (ACL knows the peer; method; profile; ACL allows; customer ref;
 * message decodes; required fields), and what an admitted call carries. */
#include "daemon_test.h"

#include "admit.h"
#include "config.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"
#include "log.h"
#include "methods.h"
#include "snap_arena.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x
#define WALLET "/doku.wallet.v1.Wallet/"
#define ARENA_LIMIT (1024u * 1024u)

#define PROFILES                                                                 \
	"[profile.default]\nbase_url = https://h\nclient_id = a\n"               \
	"client_secret_file = s\nprivate_key_file = k\n"                         \
	"[profile.other]\nbase_url = https://h\nclient_id = b\n"                 \
	"client_secret_file = s\nprivate_key_file = k\n"

#define BRIDGE "[bridge]\ndefault_timeout_ms = 5000\nmax_timeout_ms = 60000\n"

/* uid 1000 may call the customer methods with profile default; uid 1001
 * only Health (any profile). */
#define ACL                                                                           \
	"[client.shop]\nuids = 1000\n"                                                \
	"methods = GetBalance, TopUp, OpenCustomerSession, Health\nprofiles = default\n" \
	"[client.probe]\nuids = 1001\nmethods = Health\nprofiles = *\n"

struct fx {
	snap_arena arena;
	config *cfg;
};

static config *load(const char *text)
{
	char dir[PATH_MAX], path[PATH_MAX];
	config_diag diag;
	config *c = NULL;

	dt_tmpdir(dir);
	dt_write(dir, "admit.ini", text, 0644, path);
	assert_int_equal(config_load(path, 0, &c, &diag), 0);
	dt_rmdir(dir);
	assert_non_null(c);
	return c;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snap_arena_init(&f->arena, ARENA_LIMIT);
	f->cfg = load(PROFILES BRIDGE ACL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	snap_arena_free(&f->arena);
	config_unref(f->cfg);
	free(f);
	return 0;
}

/* A serialized message (arena). */
static ProtobufCBinaryData packed(snap_arena *a, const ProtobufCMessage *m)
{
	ProtobufCBinaryData b;

	b.len = protobuf_c_message_get_packed_size(m);
	b.data = snap_arena_alloc(a, b.len > 0 ? b.len : 1);
	assert_non_null(b.data);
	assert_int_equal(protobuf_c_message_pack(m, b.data), b.len);
	return b;
}

/* The envelope of a call, packed into a frame and decoded back by admit_envelope. */
static Doku__Bridge__V1__Call *envelope(snap_arena *a, const char *mname, ProtobufCBinaryData msg,
					const char *pname, const char *customer_ref,
					uint32_t timeout_ms)
{
	Doku__Bridge__V1__Call call = DOKU__BRIDGE__V1__CALL__INIT;
	Doku__Bridge__V1__Call *env;
	uint8_t *frame;
	size_t len;

	call.id = 7;
	call.method = (char *)mname;
	call.message = msg;
	call.profile = (char *)pname;
	call.customer_ref = (char *)customer_ref;
	call.timeout_ms = timeout_ms;
	len = doku__bridge__v1__call__get_packed_size(&call);
	frame = snap_arena_alloc(a, len);
	assert_non_null(frame);
	assert_int_equal(doku__bridge__v1__call__pack(&call, frame), len);
	env = admit_envelope(a, frame, (uint32_t)len);
	assert_non_null(env);
	assert_int_equal(env->id, 7);
	return env;
}

static ProtobufCBinaryData balance_req(snap_arena *a, const char *ref)
{
	Doku__Wallet__V1__GetBalanceRequest r = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;

	r.partner_reference_no = (char *)ref;
	return packed(a, &r.base);
}

static ProtobufCBinaryData topup_req(snap_arena *a, const char *value, const char *notes)
{
	Doku__Wallet__V1__TopUpRequest r = DOKU__WALLET__V1__TOP_UP_REQUEST__INIT;
	Doku__Wallet__V1__Amount amt = DOKU__WALLET__V1__AMOUNT__INIT;

	amt.value = (char *)value;
	amt.currency = "IDR";
	r.partner_reference_no = "TOPUP-0001";
	r.customer_number = "628111";
	r.amount = &amt;
	r.session_id = "sess-1";
	r.notes = (char *)notes;
	return packed(a, &r.base);
}

static const peer shop = { .uid = 1000, .gid = 1000 };
static const peer probe = { .uid = 1001, .gid = 1001 };
static const peer stranger = { .uid = 1777, .gid = 1777, .groups = { 10 }, .ngroups = 1 };

static void expect_refusal(const admission *a, int code, const char *status)
{
	assert_int_equal(a->code, code);
	assert_string_equal(a->status, status);
	assert_null(a->req);
	assert_int_equal(a->timeout_ms, 0);
}

/* ---- the envelope ---------------------------------------------------------------- */

static void test_envelope_malformed(void **state)
{
	struct fx *f = *state;
	/* method (field 2, length-delimited) claims 127 bytes, 1 follows */
	static const uint8_t truncated[] = { 0x12, 0x7f, 'x' };
	/* field 1 with wire type 7: no such wire type */
	static const uint8_t bad_wire[] = { 0x0f, 0x00 };
	/* a varint that never ends */
	static const uint8_t endless[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0xff };

	assert_null(admit_envelope(&f->arena, truncated, sizeof(truncated)));
	assert_null(admit_envelope(&f->arena, bad_wire, sizeof(bad_wire)));
	assert_null(admit_envelope(&f->arena, endless, sizeof(endless)));
	/* the empty frame is a valid (empty) Call */
	assert_non_null(admit_envelope(&f->arena, truncated, 0));
}

/* ---- refusals, in order ---------------------------------------------------------- */

static void test_peer_unknown(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env =
		envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "P1"), "", "cust-1", 0);

	admit(&f->arena, env, &stranger, f->cfg, &a);
	expect_refusal(&a, CODE(PERMISSION_DENIED), "uid 1777 may not use this daemon");
	assert_non_null(a.m); /* looked up for the log */
	assert_string_equal(a.m->name, "GetBalance");

	/* the ACL comes first: an unknown method of an unknown peer is PERMISSION_DENIED */
	env = envelope(&f->arena, WALLET "NoSuch", balance_req(&f->arena, "P1"), "nope", "", 0);
	admit(&f->arena, env, &stranger, f->cfg, &a);
	expect_refusal(&a, CODE(PERMISSION_DENIED), "uid 1777 may not use this daemon");
	assert_null(a.m);
	assert_string_equal(a.log_name, WALLET "NoSuch");

	/* with an ACL, root is no one special */
	{
		const peer root = { .uid = 0, .gid = 0 };

		admit(&f->arena, env, &root, f->cfg, &a);
		expect_refusal(&a, CODE(PERMISSION_DENIED), "uid 0 may not use this daemon");
	}
}

static void test_method_unknown(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env;

	/* unknown method before an unknown profile */
	env = envelope(&f->arena, WALLET "GetBalanceX", balance_req(&f->arena, "P1"), "nope", "", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	expect_refusal(&a, CODE(UNIMPLEMENTED), "unknown method \"" WALLET "GetBalanceX\"");
	assert_null(a.m);
	assert_string_equal(a.log_name, WALLET "GetBalanceX");

	/* the short name is not a method name */
	env = envelope(&f->arena, "GetBalance", balance_req(&f->arena, "P1"), "", "cust-1", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	expect_refusal(&a, CODE(UNIMPLEMENTED), "unknown method \"GetBalance\"");
}

static void test_profile_unknown(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env;

	/* unknown profile before the ACL's method check (probe may not call GetBalance) */
	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "P1"), "nope", "", 0);
	admit(&f->arena, env, &probe, f->cfg, &a);
	expect_refusal(&a, CODE(INVALID_ARGUMENT), "profile: no profile \"nope\"");
	assert_non_null(a.m);
	assert_null(a.prof);
}

static void test_acl_denies(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env;

	/* method not allowed; checked before the (missing) customer ref */
	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "P1"), "", "", 0);
	admit(&f->arena, env, &probe, f->cfg, &a);
	expect_refusal(&a, CODE(PERMISSION_DENIED),
		       "uid 1001 may not call GetBalance with profile default");
	assert_non_null(a.prof);
	assert_string_equal(a.prof->name, "default");

	/* profile not allowed */
	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "P1"), "other",
		       "cust-1", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	expect_refusal(&a, CODE(PERMISSION_DENIED),
		       "uid 1000 may not call GetBalance with profile other");

	/* a method that uses no profile: no "with profile" */
	env = envelope(&f->arena, WALLET "Metrics", (ProtobufCBinaryData){ 0, NULL }, "", "", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	expect_refusal(&a, CODE(PERMISSION_DENIED), "uid 1000 may not call Metrics");
}

static void test_customer_ref(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env;
	static const uint8_t garbage[] = { 0x0a, 0x7f, 'x' };

	/* missing, before the message is looked at */
	env = envelope(&f->arena, WALLET "GetBalance",
		       (ProtobufCBinaryData){ sizeof(garbage), (uint8_t *)garbage }, "", "", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	expect_refusal(&a, CODE(INVALID_ARGUMENT), "customer_ref: missing required field");
	assert_string_equal(a.customer_ref, "");

	/* malformed: a character outside [A-Za-z0-9._-] */
	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "P1"), "", "cust/1", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	expect_refusal(&a, CODE(INVALID_ARGUMENT), "customer_ref: expected [A-Za-z0-9._-]{1,64}");

	/* malformed: 65 characters */
	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "P1"), "",
		       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	expect_refusal(&a, CODE(INVALID_ARGUMENT), "customer_ref: expected [A-Za-z0-9._-]{1,64}");

	/* 64 is fine */
	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "P1"), "",
		       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.code, 0);
}

static void test_message_undecodable(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env;
	static const uint8_t garbage[] = { 0x0a, 0x7f, 'x' };

	env = envelope(&f->arena, WALLET "GetBalance",
		       (ProtobufCBinaryData){ sizeof(garbage), (uint8_t *)garbage }, "", "cust-1", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	expect_refusal(&a, CODE(INVALID_ARGUMENT),
		       "message: not a valid doku.wallet.v1.GetBalanceRequest");
	assert_string_equal(a.customer_ref, "cust-1");
}

static void test_snap_required(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env;

	/* an empty GetBalanceRequest: partnerReferenceNo unset */
	env = envelope(&f->arena, WALLET "GetBalance", (ProtobufCBinaryData){ 0, NULL }, "",
		       "cust-1", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.code, CODE(INVALID_ARGUMENT));
	assert_string_equal(a.status, "missing required field: partnerReferenceNo");
	assert_int_equal(a.timeout_ms, 0);

	/* a nested path: TopUp without notes */
	env = envelope(&f->arena, WALLET "TopUp", topup_req(&f->arena, "10000.00", NULL), "",
		       "cust-1", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.code, CODE(INVALID_ARGUMENT));
	assert_string_equal(a.status, "missing required field: notes");
}

static void test_bad_amount(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env;
	static const char *const bad[] = { "10000", "10000.0", "1.000", "-1.00", "01.00", "x" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		env = envelope(&f->arena, WALLET "TopUp", topup_req(&f->arena, bad[i], "n"), "",
			       "cust-1", 0);
		admit(&f->arena, env, &shop, f->cfg, &a);
		assert_int_equal(a.code, CODE(INVALID_ARGUMENT));
		assert_string_equal(a.status, "invalid field: amount.value");
		assert_int_equal(a.timeout_ms, 0);
	}
}

static void test_session_open_auth_code(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env;
	Doku__Wallet__V1__OpenCustomerSessionRequest r =
		DOKU__WALLET__V1__OPEN_CUSTOMER_SESSION_REQUEST__INIT;

	env = envelope(&f->arena, WALLET "OpenCustomerSession", packed(&f->arena, &r.base), "",
		       "cust-1", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.code, CODE(INVALID_ARGUMENT));
	assert_string_equal(a.status, "missing required field: authCode");

	r.auth_code = "AUTH-1";
	env = envelope(&f->arena, WALLET "OpenCustomerSession", packed(&f->arena, &r.base), "",
		       "cust-1", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.code, 0);
	assert_string_equal(a.m->name, "OpenCustomerSession");
	assert_string_equal(a.customer_ref, "cust-1");
}

/* ---- admitted -------------------------------------------------------------------- */

static void test_admitted_balance(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env;
	const Doku__Wallet__V1__GetBalanceRequest *req;

	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "BAL-42"), "",
		       "cust-1", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.code, 0);
	assert_string_equal(a.status, "");
	assert_non_null(a.m);
	assert_ptr_equal(a.m, methods_by_name("GetBalance"));
	assert_non_null(a.prof);
	assert_ptr_equal(a.prof, config_profile(f->cfg, "default"));
	assert_string_equal(a.customer_ref, "cust-1");
	assert_non_null(a.req);
	assert_ptr_equal(a.req->descriptor, &doku__wallet__v1__get_balance_request__descriptor);
	req = (const Doku__Wallet__V1__GetBalanceRequest *)a.req;
	assert_string_equal(req->partner_reference_no, "BAL-42");
	assert_non_null(a.partner_ref);
	assert_string_equal(a.partner_ref, "BAL-42");
	/* 0: the default */
	assert_int_equal(f->cfg->default_timeout_ms, 5000);
	assert_int_equal(a.timeout_ms, 5000);

	/* a timeout under the cap is kept */
	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "BAL-43"), "default",
		       "cust-1", 1234);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.code, 0);
	assert_int_equal(a.timeout_ms, 1234);

	/* the cap itself, and over it */
	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "BAL-44"), "",
		       "cust-1", 60000);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.timeout_ms, 60000);
	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "BAL-45"), "",
		       "cust-1", 60001);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.code, 0);
	assert_int_equal(a.timeout_ms, 60000);
	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "BAL-46"), "",
		       "cust-1", UINT32_MAX);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.timeout_ms, f->cfg->max_timeout_ms);
}

static void test_admitted_topup(void **state)
{
	struct fx *f = *state;
	admission a;
	Doku__Bridge__V1__Call *env;

	env = envelope(&f->arena, WALLET "TopUp", topup_req(&f->arena, "10000.00", "n"), "",
		       "cust-9", 0);
	admit(&f->arena, env, &shop, f->cfg, &a);
	assert_int_equal(a.code, 0);
	assert_string_equal(a.m->name, "TopUp");
	assert_true(a.m->money);
	assert_non_null(a.partner_ref);
	assert_string_equal(a.partner_ref, "TOPUP-0001");
	assert_string_equal(a.customer_ref, "cust-9");
	assert_int_equal(a.timeout_ms, 5000);

	/* a method with no partner reference */
	env = envelope(&f->arena, WALLET "Health", (ProtobufCBinaryData){ 0, NULL }, "", "", 0);
	admit(&f->arena, env, &probe, f->cfg, &a);
	assert_int_equal(a.code, 0);
	assert_null(a.partner_ref);
	assert_null(a.prof);
	assert_string_equal(a.customer_ref, "");
}

/* ---- no [client] section ----------------------------------------------------------- */

static void test_no_acl(void **state)
{
	struct fx *f = *state;
	config *c = load(PROFILES BRIDGE);
	admission a;
	Doku__Bridge__V1__Call *env;
	peer self = { .uid = geteuid(), .gid = 99 };
	peer root = { .uid = 0, .gid = 0 };
	uid_t other_uid = geteuid() == 4242 ? 4343 : 4242;
	peer other = { .uid = other_uid, .gid = other_uid };
	char want[ADMIT_STATUS_MAX];

	env = envelope(&f->arena, WALLET "GetBalance", balance_req(&f->arena, "P1"), "other",
		       "cust-1", 0);
	admit(&f->arena, env, &self, c, &a);
	assert_int_equal(a.code, 0);
	assert_string_equal(a.prof->name, "other");
	admit(&f->arena, env, &root, c, &a);
	assert_int_equal(a.code, 0);
	admit(&f->arena, env, &other, c, &a);
	snprintf(want, sizeof(want), "uid %lu may not use this daemon", (unsigned long)other_uid);
	expect_refusal(&a, CODE(PERMISSION_DENIED), want);
	config_unref(c);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_envelope_malformed),
		T(test_peer_unknown),
		T(test_method_unknown),
		T(test_profile_unknown),
		T(test_acl_denies),
		T(test_customer_ref),
		T(test_message_undecodable),
		T(test_snap_required),
		T(test_bad_amount),
		T(test_session_open_auth_code),
		T(test_admitted_balance),
		T(test_admitted_topup),
		T(test_no_acl),
	};

	log_setup(LOG_LVL_ERROR);
	assert_int_equal(methods_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
