/* snap_json: exact encoding, round trips of every message of the contract
 * (and of every protobuf-c field type), DOKU's loose answers, strict mode,
 * and bad input that must give an error, never a crash. */
#include "test_util.h"

#include <float.h>
#include <math.h>

#include "snap_code.h"
#include "snap_err.h"
#include "snap_json.h"

#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/test/v1/legacy.pb-c.h"
#include "doku/test/v1/types.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"

#define ARENA_LIMIT (64u * 1024u * 1024u)
#define OUT_MAX (8u * 1024u * 1024u)
#define FILL_REPEAT 3
#define DEEP 10000
#define HUGE_STRING (100u * 1024u * 1024u)

/* ---- helpers ------------------------------------------------------------- */

static snap_arena arena;

static int setup(void **state)
{
	(void)state;
	snap_arena_init(&arena, ARENA_LIMIT);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	snap_arena_free(&arena);
	return 0;
}

/* Encode msg with flags into a NUL-terminated string from the arena. */
static const char *encode(const ProtobufCMessage *msg, unsigned flags)
{
	snap_buf b;

	snap_buf_init(&b, &arena, OUT_MAX);
	assert_int_equal(snap_json_encode(msg, flags, &b), SNAP_OK);
	return b.data != NULL ? b.data : "";
}

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, const char *json,
				unsigned flags)
{
	ProtobufCMessage *m = NULL;
	char err[SNAP_JSON_ERR_MAX];
	int rc = snap_json_decode(d, json, strlen(json), flags, &arena, &m, err, sizeof(err));

	if (rc != SNAP_OK)
		fail_msg("decode of %s failed (%d): %s", json, rc, err);
	assert_non_null(m);
	return m;
}

/* Decoding must fail with rc; err must name `names` (when not NULL). */
static void decode_fails(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
			 unsigned flags, int rc, const char *names)
{
	ProtobufCMessage *m = (ProtobufCMessage *)&m;
	char err[SNAP_JSON_ERR_MAX];
	int got = snap_json_decode(d, json, len, flags, &arena, &m, err, sizeof(err));

	if (got != rc)
		fail_msg("decode of %.200s gave %d, not %d (%s)", json, got, rc, err);
	assert_null(m);
	assert_true(strlen(err) > 0);
	if (names != NULL && strstr(err, names) == NULL)
		fail_msg("error \"%s\" does not name \"%s\"", err, names);
}

/* Whether two messages are the same, by their serialisation. */
static void assert_same(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t na = protobuf_c_message_get_packed_size(a);
	size_t nb = protobuf_c_message_get_packed_size(b);
	uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);

	assert_ptr_equal(a->descriptor, b->descriptor);
	assert_non_null(pa);
	assert_non_null(pb);
	assert_int_equal(protobuf_c_message_pack(a, pa), na);
	assert_int_equal(protobuf_c_message_pack(b, pb), nb);
	if (na != nb || memcmp(pa, pb, na) != 0)
		fail_msg("%s differs after the round trip: %s", a->descriptor->name,
			 encode(b, 0));
	free(pa);
	free(pb);
}

/* ---- a generic filler: every field set, each to a value of its own ------ */

static unsigned counter;

static void fill_value(const ProtobufCFieldDescriptor *f, void *p, int depth);

static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d, int depth)
{
	ProtobufCMessage *m = snap_arena_alloc(&arena, d->sizeof_message);

	assert_non_null(m);
	protobuf_c_message_init(d, m);
	assert_true(depth < 8);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *base = (char *)m;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t sz = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE
					    ? sizeof(void *)
				    : f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData)
				    : f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_SINT64 ||
						    f->type == PROTOBUF_C_TYPE_SFIXED64 ||
						    f->type == PROTOBUF_C_TYPE_UINT64 ||
						    f->type == PROTOBUF_C_TYPE_FIXED64 ||
						    f->type == PROTOBUF_C_TYPE_DOUBLE
					    ? 8
					    : 4;
			char *arr = snap_arena_alloc(&arena, FILL_REPEAT * sz);

			assert_non_null(arr);
			for (size_t k = 0; k < FILL_REPEAT; k++)
				fill_value(f, arr + k * sz, depth);
			*(size_t *)(base + f->quantifier_offset) = FILL_REPEAT;
			*(void **)(base + f->offset) = arr;
			continue;
		}
		fill_value(f, base + f->offset, depth);
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0)
			*(uint32_t *)(base + f->quantifier_offset) = f->id;
		else if (f->quantifier_offset != 0)
			*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
	}
	return m;
}

static void fill_value(const ProtobufCFieldDescriptor *f, void *p, int depth)
{
	unsigned c = ++counter;

	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		char s[96];

		/* Quotes, backslash, slash, HTML characters, control characters,
		 * 2-, 3- and 4-byte UTF-8. */
		snprintf(s, sizeof(s), "v%u \"q\" \\ / <a&b> \t\n\x01 caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 %s",
			 c, f->name);
		*(char **)p = snap_arena_strndup(&arena, s, strlen(s));
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = p;
		uint8_t *d = snap_arena_alloc(&arena, 1 + c % 7);

		for (unsigned i = 0; i <= c % 7; i++)
			d[i] = (uint8_t)(c * 37 + i * 101);
		b->data = d;
		b->len = 1 + c % 7;
		break;
	}
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)p = 1;
		break;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *)p = c % 2 ? -(int32_t)(c * 1000 + 7) : INT32_MIN + (int32_t)c;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)p = UINT32_MAX - c;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		*(int64_t *)p = c % 2 ? -(int64_t)c * 1000000000000007LL : INT64_MIN + c;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *)p = UINT64_MAX - c;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *)p = (float)c + 0.1f;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *)p = c % 2 ? 1.0 / 3.0 + c : -1e-300 * c;
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;

		*(int *)p = e->values[1 + c % (e->n_values - 1)].value;
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		*(ProtobufCMessage **)p = fill(f->descriptor, depth + 1);
		break;
	}
}

static void check_round_trip(const ProtobufCMessageDescriptor *d)
{
	static const unsigned enc_flags[] = { 0, SNAP_JSON_PRETTY, SNAP_JSON_EMIT_DEFAULTS };
	ProtobufCMessage *m = fill(d, 0), *empty;

	for (size_t i = 0; i < sizeof(enc_flags) / sizeof(enc_flags[0]); i++) {
		const char *json = encode(m, enc_flags[i]);

		assert_same(m, decode(d, json, 0));
		assert_same(m, decode(d, json, SNAP_JSON_STRICT));
	}
	/* An empty message: "{}", and back. */
	empty = snap_arena_alloc(&arena, d->sizeof_message);
	protobuf_c_message_init(d, empty);
	if (d->n_fields > 0 && d->fields[0].label != PROTOBUF_C_LABEL_REQUIRED) {
		assert_string_equal(encode(empty, 0), "{}");
		assert_same(empty, decode(d, "{}", SNAP_JSON_STRICT));
		assert_same(empty, decode(d, encode(empty, SNAP_JSON_EMIT_DEFAULTS), SNAP_JSON_STRICT));
	}
}

/* ---- tests --------------------------------------------------------------- */

static void test_field_names(void **state)
{
	const ProtobufCMessageDescriptor *d = &doku__wallet__v1__verify_otp_response__descriptor;
	char name[SNAP_JSON_NAME_MAX];

	(void)state;
	assert_int_equal(snap_json_field_name(&d->fields[2], name, sizeof(name)), SNAP_OK);
	assert_string_equal(name, "originalPartnerReferenceNo");
	assert_int_equal(snap_json_field_name(&d->fields[8], name, sizeof(name)), SNAP_OK);
	assert_string_equal(name, "qparamsURL");
	assert_int_equal(snap_json_field_name(&d->fields[9], name, sizeof(name)), SNAP_OK);
	assert_string_equal(name, "qparams");
	assert_int_equal(snap_json_field_name(&d->fields[2], name, 26), SNAP_ERR_TOO_BIG);
	assert_int_equal(snap_json_field_name(&d->fields[2], name, 27), SNAP_OK);
	assert_int_equal(snap_json_field_name(&d->fields[2], name, 0), SNAP_ERR_TOO_BIG);
}

static void test_round_trip_every_rpc(void **state)
{
	const ProtobufCServiceDescriptor *svc = &doku__wallet__v1__wallet__descriptor;

	(void)state;
	assert_true(svc->n_methods >= 19);
	for (unsigned i = 0; i < svc->n_methods; i++) {
		check_round_trip(svc->methods[i].input);
		check_round_trip(svc->methods[i].output);
	}
	check_round_trip(&doku__wallet__v1__access_token_request__descriptor);
	check_round_trip(&doku__wallet__v1__access_token_response__descriptor);
	check_round_trip(&doku__wallet__v1__error_response__descriptor);
}

static void test_round_trip_every_type(void **state)
{
	(void)state;
	check_round_trip(&doku__test__v1__all_types__descriptor);
	check_round_trip(&doku__test__v1__legacy__descriptor);
	check_round_trip(&doku__bridge__v1__call__descriptor);
	check_round_trip(&doku__bridge__v1__reply__descriptor);
}

static void test_encode_exact(void **state)
{
	Doku__Wallet__V1__GetPurchaseStatusRequest r = DOKU__WALLET__V1__GET_PURCHASE_STATUS_REQUEST__INIT;
	Doku__Wallet__V1__Amount a = DOKU__WALLET__V1__AMOUNT__INIT;
	Doku__Wallet__V1__DeviceInfo di = DOKU__WALLET__V1__DEVICE_INFO__INIT;

	(void)state;
	/* Set in reverse order: the output follows field numbers. */
	di.channel = "EMONEY_DOKU_SNAP";
	r.additional_info = &di;
	a.currency = "IDR";
	a.value = "10000.00";
	r.amount = &a;
	r.transaction_date = "2024-01-01T10:00:00+07:00";
	r.service_code = "54";
	r.partner_reference_no = "INV-20240101-0001";
	assert_string_equal(encode(&r.base, 0),
			    "{\"partnerReferenceNo\":\"INV-20240101-0001\",\"serviceCode\":\"54\","
			    "\"transactionDate\":\"2024-01-01T10:00:00+07:00\",\"amount\":{\"value\":"
			    "\"10000.00\",\"currency\":\"IDR\"},\"additionalInfo\":{\"channel\":"
			    "\"EMONEY_DOKU_SNAP\"}}");
	/* Escapes: only '"', '\\' and control characters; '/', '<', '>', '&' and UTF-8 raw. */
	r.amount = NULL;
	r.additional_info = NULL;
	r.service_code = "";
	r.transaction_date = NULL;
	r.partner_reference_no = "a/b<c>&d\"e\\f\x01\x1f\b\f\n\r\t caf\xc3\xa9 \xe2\x80\xa8 \x7f";
	assert_string_equal(encode(&r.base, 0),
			    "{\"partnerReferenceNo\":\"a/b<c>&d\\\"e\\\\f\\u0001\\u001f\\b\\f\\n\\r\\t "
			    "caf\xc3\xa9 \xe2\x80\xa8 \x7f\"}");
	/* Defaults on request. */
	r.partner_reference_no = "";
	r.transaction_date = NULL;
	assert_string_equal(encode(&r.base, 0), "{}");
	assert_string_equal(encode(&r.base, SNAP_JSON_EMIT_DEFAULTS),
			    "{\"partnerReferenceNo\":\"\",\"serviceCode\":\"\"}");
	/* Pretty. */
	r.partner_reference_no = "X";
	r.amount = &a;
	assert_string_equal(encode(&r.base, SNAP_JSON_PRETTY),
			    "{\n  \"partnerReferenceNo\": \"X\",\n  \"amount\": {\n    \"value\": "
			    "\"10000.00\",\n    \"currency\": \"IDR\"\n  }\n}");
}

static void test_encode_types(void **state)
{
	Doku__Test__V1__AllTypes t = DOKU__TEST__V1__ALL_TYPES__INIT;
	Doku__Test__V1__Inner in = DOKU__TEST__V1__INNER__INIT;
	uint8_t bytes[] = { 0xfb, 0xff, 0x00, 'a' };
	int colors[] = { DOKU__TEST__V1__COLOR__BLUE, 7 };
	double dbs[] = { 0.1, 1e21, -0.0, 1095086.98, 5e-324, NAN, INFINITY, -INFINITY, 123456789012.0 };
	float fls[] = { 0.1f, 3.4028235e38f, 16777216.0f };

	(void)state;
	t.i64 = INT64_MIN;
	t.u64 = UINT64_MAX;
	t.i32 = -5;
	t.u32 = UINT32_MAX;
	t.fl = 1.1f;
	t.db = 0.30000000000000004;
	t.color = DOKU__TEST__V1__COLOR__GREEN;
	t.b.data = bytes;
	t.b.len = sizeof(bytes);
	t.flag = 1;
	t.n_r_color = 2;
	t.r_color = colors;
	t.n_r_db = sizeof(dbs) / sizeof(dbs[0]);
	t.r_db = dbs;
	t.n_r_fl = sizeof(fls) / sizeof(fls[0]);
	t.r_fl = fls;
	t.choice_case = DOKU__TEST__V1__ALL_TYPES__CHOICE_C_I64;
	t.c_i64 = 0; /* a set oneof member is written even when 0 */
	assert_string_equal(encode(&t.base, 0),
			    "{\"b\":\"+/8AYQ==\",\"flag\":true,\"i32\":-5,\"u32\":4294967295,"
			    "\"i64\":\"-9223372036854775808\",\"u64\":\"18446744073709551615\","
			    "\"fl\":1.1,\"db\":0.30000000000000004,\"color\":\"GREEN\","
			    "\"rFl\":[0.1,3.4028235e+38,16777216],"
			    "\"rDb\":[0.1,1e+21,-0.0,1095086.98,5e-324,\"NaN\",\"Infinity\","
			    "\"-Infinity\",123456789012],"
			    "\"rColor\":[\"BLUE\",7],\"cI64\":\"0\"}");
	t.choice_case = DOKU__TEST__V1__ALL_TYPES__CHOICE_C_INNER;
	t.c_inner = &in;
	in.n = 3;
	t.n_r_db = 0;
	t.n_r_fl = 0;
	t.n_r_color = 0;
	t.b.len = 0;
	t.flag = 0;
	t.i32 = t.u32 = 0;
	t.i64 = 0;
	t.u64 = 0;
	t.fl = 0;
	t.db = 0;
	t.color = 0;
	assert_string_equal(encode(&t.base, 0), "{\"cInner\":{\"n\":3}}");
	/* Back, including NaN and infinities. */
	{
		Doku__Test__V1__AllTypes *d = (Doku__Test__V1__AllTypes *)decode(
			&doku__test__v1__all_types__descriptor,
			"{\"rDb\":[\"NaN\",\"Infinity\",\"-Infinity\",1e+21],\"cStr\":\"x\","
			"\"rColor\":[\"BLUE\",7,\"RED\"]}",
			SNAP_JSON_STRICT);

		assert_int_equal(d->n_r_db, 4);
		assert_true(isnan(d->r_db[0]));
		assert_true(isinf(d->r_db[1]) && d->r_db[1] > 0);
		assert_true(isinf(d->r_db[2]) && d->r_db[2] < 0);
		assert_true(d->r_db[3] == 1e21);
		assert_int_equal(d->choice_case, DOKU__TEST__V1__ALL_TYPES__CHOICE_C_STR);
		assert_string_equal(d->c_str, "x");
		assert_int_equal(d->n_r_color, 3);
		assert_int_equal(d->r_color[0], DOKU__TEST__V1__COLOR__BLUE);
		assert_int_equal(d->r_color[1], 7);
		assert_int_equal(d->r_color[2], DOKU__TEST__V1__COLOR__RED);
	}
}

/* Found by fuzz_json_response: -0 read back as +0 (jansson reads "-0" as the
 * integer 0), and the float FLT_MAX, written "3.4028235e+38", was refused on
 * the way back (above FLT_MAX as a double, yet it rounds to FLT_MAX). */
static void test_round_trip_edge_reals(void **state)
{
	Doku__Test__V1__AllTypes t = DOKU__TEST__V1__ALL_TYPES__INIT, *d;
	double dbs[] = { -0.0, 0.0, -DBL_MAX, DBL_MIN };
	float fls[] = { -0.0f, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f };

	(void)state;
	t.fl = FLT_MAX;
	t.db = -DBL_MAX;
	t.n_r_db = sizeof(dbs) / sizeof(dbs[0]);
	t.r_db = dbs;
	t.n_r_fl = sizeof(fls) / sizeof(fls[0]);
	t.r_fl = fls;
	d = (Doku__Test__V1__AllTypes *)decode(&doku__test__v1__all_types__descriptor,
					       encode(&t.base, 0), SNAP_JSON_STRICT);
	assert_true(d->fl == FLT_MAX);
	assert_true(d->db == -DBL_MAX);
	assert_int_equal(d->n_r_db, t.n_r_db);
	for (size_t i = 0; i < t.n_r_db; i++)
		assert_true(d->r_db[i] == dbs[i] && signbit(d->r_db[i]) == signbit(dbs[i]));
	assert_int_equal(d->n_r_fl, t.n_r_fl);
	for (size_t i = 0; i < t.n_r_fl; i++)
		assert_true(d->r_fl[i] == fls[i] && signbit(d->r_fl[i]) == signbit(fls[i]));
	/* a real that rounds past FLT_MAX is still no float */
	d = (Doku__Test__V1__AllTypes *)decode(&doku__test__v1__all_types__descriptor,
					       "{\"fl\":3.4028236e38,\"rFl\":[1,-3.5e38]}", 0);
	assert_true(d->fl == 0.0f);
	assert_int_equal(d->n_r_fl, 1);
}

static void test_encode_refuses_bad_utf8(void **state)
{
	static const char *bad[] = {
		"\xff", "abc\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xf8\x88\x80\x80\x80", "\x80", "ok\xe2\x82", "\xc3\x28",
	};
	Doku__Wallet__V1__GetBalanceRequest r = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	snap_buf b;

	(void)state;
	snap_buf_init(&b, NULL, 1024);
	assert_int_equal(snap_buf_append_str(&b, "prefix"), SNAP_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r.partner_reference_no = (char *)bad[i];
		assert_int_equal(snap_json_encode(&r.base, 0, &b), SNAP_ERR_JSON);
		assert_string_equal(b.data, "prefix"); /* left as it was */
	}
	r.partner_reference_no = "\xf4\x8f\xbf\xbf \xef\xbf\xbf \xed\x9f\xbf";
	assert_int_equal(snap_json_encode(&r.base, 0, &b), SNAP_OK);
	snap_buf_free(&b);
}

static void test_encode_limits(void **state)
{
	Doku__Wallet__V1__GetBalanceRequest r = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	snap_buf b;
	char *big = malloc(HUGE_STRING + 1);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', HUGE_STRING);
	big[HUGE_STRING] = '\0';
	r.partner_reference_no = big;
	snap_buf_init(&b, NULL, SNAP_JSON_MAX_INPUT);
	assert_int_equal(snap_json_encode(&r.base, 0, &b), SNAP_ERR_TOO_BIG);
	assert_int_equal(b.len, 0);
	free(big);
	r.partner_reference_no = "12345";
	snap_buf_free(&b);
	snap_buf_init(&b, NULL, 29);
	assert_int_equal(snap_json_encode(&r.base, 0, &b), SNAP_ERR_TOO_BIG);
	snap_buf_free(&b);
	snap_buf_init(&b, NULL, 30);
	assert_int_equal(snap_json_encode(&r.base, 0, &b), SNAP_OK);
	assert_string_equal(b.data, "{\"partnerReferenceNo\":\"12345\"}");
	snap_buf_free(&b);
	assert_int_equal(snap_json_encode(NULL, 0, &b), SNAP_ERR_INVALID);
}

static void test_tolerant_numbers_for_strings(void **state)
{
	Doku__Wallet__V1__GetBalanceResponse *r;
	Doku__Wallet__V1__AccessTokenResponse *t;
	snap_code code;

	(void)state;
	r = (Doku__Wallet__V1__GetBalanceResponse *)decode(
		&doku__wallet__v1__get_balance_response__descriptor,
		"{\"responseCode\":2001100,\"responseMessage\":\"Successful\",\"referenceNo\":17139626343,"
		"\"accountNo\":-12,\"name\":1e2,\"accountInfo\":{\"balanceType\":\"Cash\","
		"\"amount\":{\"value\":1095086.98,\"currency\":\"IDR\"}}}",
		0);
	assert_string_equal(r->response_code, "2001100");
	assert_int_equal(snap_code_parse(r->response_code, strlen(r->response_code), &code), SNAP_OK);
	assert_int_equal(code.service, 11);
	assert_string_equal(r->reference_no, "17139626343");
	assert_string_equal(r->account_no, "-12");
	assert_string_equal(r->name, "100");
	assert_string_equal(r->account_info->amount->value, "1095086.98");
	/* An integer too big for jansson: the retry reads it as a real. */
	t = (Doku__Wallet__V1__AccessTokenResponse *)decode(
		&doku__wallet__v1__access_token_response__descriptor,
		"{\"responseCode\":\"2007300\",\"expiresIn\":900,\"accessToken\":"
		"123456789012345678901234567890,\"tokenType\":0.1}",
		0);
	assert_string_equal(t->response_code, "2007300");
	assert_string_equal(t->expires_in, "900");
	assert_string_equal(t->access_token, "1.2345678901234568e+29");
	assert_string_equal(t->token_type, "0.1");
	t = (Doku__Wallet__V1__AccessTokenResponse *)decode(
		&doku__wallet__v1__access_token_response__descriptor,
		"{\"expiresIn\":\"900\",\"accessToken\":18446744073709551615}", 0);
	assert_string_equal(t->expires_in, "900");
	assert_string_equal(t->access_token, "1.8446744073709552e+19");
	/* A bool where a string is expected cannot be placed: ignored. */
	t = (Doku__Wallet__V1__AccessTokenResponse *)decode(
		&doku__wallet__v1__access_token_response__descriptor,
		"{\"tokenType\":true,\"accessToken\":{\"a\":1},\"refreshToken\":[1]}", 0);
	assert_string_equal(t->token_type, "");
	assert_string_equal(t->access_token, "");
	assert_string_equal(t->refresh_token, "");
}

static void test_tolerant_strings_for_numbers(void **state)
{
	Doku__Test__V1__AllTypes *t;
	Doku__Test__V1__Legacy *l;

	(void)state;
	t = (Doku__Test__V1__AllTypes *)decode(
		&doku__test__v1__all_types__descriptor,
		"{\"i32\":\"-42\",\"u32\":\"4294967295\",\"i64\":\"-9223372036854775808\","
		"\"u64\":\"18446744073709551615\",\"fl\":\"1.5\",\"db\":\"-2.5e3\",\"flag\":\"true\","
		"\"si32\":\"1e2\",\"sf32\":5.0,\"f32\":\"7\",\"color\":\"BLUE\",\"rI32\":[\"1\",2,\"3\"],"
		"\"rFlag\":[\"false\",true,1,0],\"b\":\"-_8\"}",
		0);
	assert_int_equal(t->i32, -42);
	assert_int_equal(t->u32, UINT32_MAX);
	assert_true(t->i64 == INT64_MIN);
	assert_true(t->u64 == UINT64_MAX);
	assert_true(t->fl == 1.5f);
	assert_true(t->db == -2500.0);
	assert_true(t->flag);
	assert_int_equal(t->si32, 100);
	assert_int_equal(t->sf32, 5);
	assert_int_equal(t->f32, 7);
	assert_int_equal(t->color, DOKU__TEST__V1__COLOR__BLUE);
	assert_int_equal(t->n_r_i32, 3);
	assert_int_equal(t->r_i32[2], 3);
	assert_int_equal(t->n_r_flag, 4);
	assert_false(t->r_flag[0]);
	assert_true(t->r_flag[1] && t->r_flag[2]);
	assert_false(t->r_flag[3]);
	assert_int_equal(t->b.len, 2);
	assert_memory_equal(t->b.data, "\xfb\xff", 2);
	/* Out of range, not integral, not numbers: not placed. */
	t = (Doku__Test__V1__AllTypes *)decode(
		&doku__test__v1__all_types__descriptor,
		"{\"i32\":2147483648,\"u32\":-1,\"i64\":\"9223372036854775808\",\"u64\":\"-1\","
		"\"sf32\":1.5,\"fl\":1e39,\"db\":\"abc\",\"flag\":\"yes\",\"color\":\"PURPLE\","
		"\"si32\":\" 5\",\"f32\":\"0x10\",\"b\":\"a\",\"rU32\":[1,-1,2]}",
		0);
	assert_int_equal(t->i32, 0);
	assert_int_equal(t->u32, 0);
	assert_true(t->i64 == 0);
	assert_true(t->u64 == 0);
	assert_int_equal(t->sf32, 0);
	assert_true(t->fl == 0.0f);
	assert_true(t->db == 0.0);
	assert_false(t->flag);
	assert_int_equal(t->color, 0);
	assert_int_equal(t->si32, 0);
	assert_int_equal(t->f32, 0);
	assert_int_equal(t->b.len, 0);
	assert_int_equal(t->n_r_u32, 2);
	assert_int_equal(t->r_u32[1], 2);
	/* proto2 optional: has_ flags follow presence. */
	l = (Doku__Test__V1__Legacy *)decode(&doku__test__v1__legacy__descriptor,
					      "{\"optI32\":0,\"req\":\"r\",\"pU32\":\"9\"}", 0);
	assert_true(l->has_opt_i32);
	assert_int_equal(l->opt_i32, 0);
	assert_false(l->has_opt_flag);
	assert_null(l->opt_s);
	assert_int_equal(l->pick_case, DOKU__TEST__V1__LEGACY__PICK_P_U32);
	assert_int_equal(l->p_u32, 9);
	assert_string_equal(encode(&l->base, 0), "{\"optI32\":0,\"req\":\"r\",\"pU32\":9}");
}

static void test_tolerant_shapes(void **state)
{
	Doku__Wallet__V1__PurchaseResponse *p;
	Doku__Wallet__V1__BindAccountResponse *b;
	Doku__Wallet__V1__ListTransactionsResponse *l;
	Doku__Wallet__V1__GetBalanceResponse *g;
	Doku__Wallet__V1__InquireAccountResponse *q;

	(void)state;
	/* Capitalised keys; unknown keys of every kind ignored. */
	p = (Doku__Wallet__V1__PurchaseResponse *)decode(
		&doku__wallet__v1__purchase_response__descriptor,
		"{\"responseCode\":\"2005400\",\"ReferenceNo\":\"R1\",\"PartnerReferenceNo\":\"P1\","
		"\"WEBREDIRECTURL\":\"https://x/y?a=1&b=2\",\"unknown\":{\"deep\":[1,{\"x\":null}]},"
		"\"other\":[],\"n\":null,\"additionalInfo\":{\"dokuId\":\"D1\",\"extra\":1}}",
		0);
	assert_string_equal(p->response_code, "2005400");
	assert_string_equal(p->reference_no, "R1");
	assert_string_equal(p->partner_reference_no, "P1");
	assert_string_equal(p->web_redirect_url, "https://x/y?a=1&b=2");
	assert_string_equal(p->additional_info->doku_id, "D1");
	/* additionalInfo: "" / a string that is not JSON / a stringified object / null. */
	b = (Doku__Wallet__V1__BindAccountResponse *)decode(
		&doku__wallet__v1__bind_account_response__descriptor, "{\"additionalInfo\":\"\"}", 0);
	assert_null(b->additional_info);
	b = (Doku__Wallet__V1__BindAccountResponse *)decode(
		&doku__wallet__v1__bind_account_response__descriptor,
		"{\"additionalInfo\":\"not json {\"}", 0);
	assert_null(b->additional_info);
	b = (Doku__Wallet__V1__BindAccountResponse *)decode(
		&doku__wallet__v1__bind_account_response__descriptor,
		"{\"additionalInfo\":\"[1,2]\",\"linkId\":\"L\"}", 0);
	assert_null(b->additional_info);
	assert_string_equal(b->link_id, "L");
	b = (Doku__Wallet__V1__BindAccountResponse *)decode(
		&doku__wallet__v1__bind_account_response__descriptor,
		"{\"additionalInfo\":\"{\\\"authCode\\\":\\\"abc-123\\\",\\\"x\\\":{}}\"}", 0);
	assert_non_null(b->additional_info);
	assert_string_equal(b->additional_info->auth_code, "abc-123");
	b = (Doku__Wallet__V1__BindAccountResponse *)decode(
		&doku__wallet__v1__bind_account_response__descriptor,
		"{\"additionalInfo\":{\"authCode\":\"xyz\"},\"userInfo\":null}", 0);
	assert_string_equal(b->additional_info->auth_code, "xyz");
	assert_null(b->user_info);
	q = (Doku__Wallet__V1__InquireAccountResponse *)decode(
		&doku__wallet__v1__inquire_account_response__descriptor,
		"{\"additionalInfo\":null,\"accountNo\":null}", 0);
	assert_null(q->additional_info);
	assert_string_equal(q->account_no, "");
	/* detailData: one object, or a list (nulls skipped). */
	l = (Doku__Wallet__V1__ListTransactionsResponse *)decode(
		&doku__wallet__v1__list_transactions_response__descriptor,
		"{\"detailData\":{\"dateTime\":\"T1\",\"amount\":{\"value\":\"1.00\",\"currency\":\"IDR\"}}}",
		0);
	assert_int_equal(l->n_detail_data, 1);
	assert_string_equal(l->detail_data[0]->date_time, "T1");
	assert_string_equal(l->detail_data[0]->amount->value, "1.00");
	l = (Doku__Wallet__V1__ListTransactionsResponse *)decode(
		&doku__wallet__v1__list_transactions_response__descriptor,
		"{\"detailData\":[{\"dateTime\":\"T1\"},null,{\"DateTime\":\"T2\"},\"junk\",7]}", 0);
	assert_int_equal(l->n_detail_data, 2);
	assert_string_equal(l->detail_data[1]->date_time, "T2");
	l = (Doku__Wallet__V1__ListTransactionsResponse *)decode(
		&doku__wallet__v1__list_transactions_response__descriptor, "{\"detailData\":[]}", 0);
	assert_int_equal(l->n_detail_data, 0);
	/* accountInfo as a list: its first element. */
	g = (Doku__Wallet__V1__GetBalanceResponse *)decode(
		&doku__wallet__v1__get_balance_response__descriptor,
		"{\"accountInfo\":[{\"balanceType\":\"Cash\",\"amount\":{\"value\":\"5.00\","
		"\"currency\":\"IDR\"}},{\"balanceType\":\"Point\"}]}",
		0);
	assert_string_equal(g->account_info->balance_type, "Cash");
	assert_string_equal(g->account_info->amount->value, "5.00");
	g = (Doku__Wallet__V1__GetBalanceResponse *)decode(
		&doku__wallet__v1__get_balance_response__descriptor, "{\"accountInfo\":[]}", 0);
	assert_null(g->account_info);
	/* The same key twice (in two spellings): the last wins. */
	p = (Doku__Wallet__V1__PurchaseResponse *)decode(
		&doku__wallet__v1__purchase_response__descriptor,
		"{\"referenceNo\":\"a\",\"ReferenceNo\":\"b\",\"reference_no\":\"c\"}", 0);
	assert_string_equal(p->reference_no, "c");
}

static void test_strict_mode(void **state)
{
	const ProtobufCMessageDescriptor *d = &doku__wallet__v1__top_up_request__descriptor;
	const char *ok = "{\"partnerReferenceNo\":\"P\",\"amount\":{\"value\":\"1.00\",\"currency\":\"IDR\"}}";
	Doku__Wallet__V1__TopUpRequest *r;

	(void)state;
	r = (Doku__Wallet__V1__TopUpRequest *)decode(d, ok, SNAP_JSON_STRICT);
	assert_string_equal(r->amount->value, "1.00");
	/* Case-insensitive names and nulls are still fine. */
	decode(d, "{\"PartnerReferenceNo\":\"P\",\"notes\":null}", SNAP_JSON_STRICT);
#define STRICT_FAILS(json, names) \
	decode_fails(d, json, strlen(json), SNAP_JSON_STRICT, SNAP_ERR_JSON, names)
	STRICT_FAILS("{\"partnerReferenceNo\":\"P\",\"bogus\":1}", "bogus");
	STRICT_FAILS("{\"amount\":{\"value\":\"1.00\",\"cur\":\"IDR\"}}", "amount.cur");
	STRICT_FAILS("{\"partnerReferenceNo\":5}", "partnerReferenceNo");
	STRICT_FAILS("{\"notes\":true}", "notes");
	STRICT_FAILS("{\"amount\":\"1.00\"}", "amount");
	STRICT_FAILS("{\"amount\":[{\"value\":\"1.00\"}]}", "amount");
	STRICT_FAILS("{\"amount\":{\"value\":10000.00}}", "amount.value");
	STRICT_FAILS("{\"additionalInfo\":\"{\\\"channel\\\":\\\"x\\\"}\"}", "additionalInfo");
	d = &doku__wallet__v1__list_transactions_response__descriptor;
	STRICT_FAILS("{\"detailData\":{\"dateTime\":\"x\"}}", "detailData");
	STRICT_FAILS("{\"detailData\":[{\"dateTime\":\"x\"},{\"dateTime\":1}]}", "detailData[1].dateTime");
	STRICT_FAILS("{\"detailData\":[{\"dateTime\":\"x\"},\"y\"]}", "detailData[1]");
	d = &doku__test__v1__all_types__descriptor;
	STRICT_FAILS("{\"i32\":1.5}", "i32");
	STRICT_FAILS("{\"flag\":1}", "flag");
	STRICT_FAILS("{\"color\":\"PURPLE\"}", "color");
	STRICT_FAILS("{\"rI32\":5}", "rI32");
	STRICT_FAILS("{\"b\":\"!!\"}", "b");
	STRICT_FAILS("{\"inner\":{\"n\":\"x\"}}", "inner.n");
#undef STRICT_FAILS
	/* The same inputs are fine when tolerant. */
	d = &doku__wallet__v1__top_up_request__descriptor;
	decode(d, "{\"partnerReferenceNo\":5,\"bogus\":1,\"amount\":\"1.00\"}", 0);
}

/* An object whose "x" nests arrays: levels of nesting in all. */
static void nested(char *out, int levels)
{
	size_t n = (size_t)sprintf(out, "{\"x\":");

	for (int i = 1; i < levels; i++)
		out[n++] = '[';
	for (int i = 1; i < levels; i++)
		out[n++] = ']';
	out[n++] = '}';
	out[n] = '\0';
}

static void test_bad_input(void **state)
{
	const ProtobufCMessageDescriptor *d = &doku__wallet__v1__get_balance_response__descriptor;
	char *deep = malloc(2 * DEEP + 32), *big;
	size_t n = 0;

	(void)state;
	/* 10,000 levels deep: at the top, and inside an ignored key. */
	assert_non_null(deep);
	for (int i = 0; i < DEEP; i++)
		deep[n++] = '[';
	for (int i = 0; i < DEEP; i++)
		deep[n++] = ']';
	decode_fails(d, deep, n, 0, SNAP_ERR_JSON, "deep");
	n = (size_t)sprintf(deep, "{\"x\":");
	for (int i = 0; i < DEEP; i++)
		n += (size_t)sprintf(deep + n, "[");
	for (int i = 0; i < DEEP; i++)
		n += (size_t)sprintf(deep + n, "]");
	n += (size_t)sprintf(deep + n, "}");
	decode_fails(d, deep, n, 0, SNAP_ERR_JSON, "deep");
	free(deep);
	/* Just at the limit, and one over. */
	{
		char lim[4 * SNAP_JSON_MAX_DEPTH + 64];

		nested(lim, SNAP_JSON_MAX_DEPTH);
		decode(d, lim, 0);
		nested(lim, SNAP_JSON_MAX_DEPTH + 1);
		decode_fails(d, lim, strlen(lim), 0, SNAP_ERR_JSON, "deep");
	}
	/* 100 MB: refused before parsing. */
	big = malloc(HUGE_STRING);
	assert_non_null(big);
	memset(big, 'a', HUGE_STRING);
	memcpy(big, "{\"name\":\"", 9);
	memcpy(big + HUGE_STRING - 2, "\"}", 2);
	decode_fails(d, big, HUGE_STRING, 0, SNAP_ERR_TOO_BIG, NULL);
	decode_fails(d, big, SNAP_JSON_MAX_INPUT + 1, 0, SNAP_ERR_TOO_BIG, NULL);
	free(big);
	/* NUL bytes: raw and escaped. */
	decode_fails(d, "{\"name\":\"a\0b\"}", 14, 0, SNAP_ERR_JSON, NULL);
	decode_fails(d, "{\"name\":\"a\"}\0", 13, 0, SNAP_ERR_JSON, NULL);
	decode_fails(d, "{\"name\":\"a\\u0000b\"}", 19, 0, SNAP_ERR_JSON, NULL);
	decode_fails(d, "{\"na\\u0000me\":\"a\"}", 18, 0, SNAP_ERR_JSON, NULL);
	/* Invalid UTF-8: in a value, in a key, a lone surrogate escape. */
	decode_fails(d, "{\"name\":\"\xff\"}", 12, 0, SNAP_ERR_JSON, NULL);
	decode_fails(d, "{\"name\":\"\xc0\xaf\"}", 13, 0, SNAP_ERR_JSON, NULL);
	decode_fails(d, "{\"\xed\xa0\x80\":1}", 9, 0, SNAP_ERR_JSON, NULL);
	decode_fails(d, "{\"name\":\"\\ud800\"}", 17, 0, SNAP_ERR_JSON, NULL);
	/* Not an object at the top; not JSON; truncated; trailing garbage. */
	{
		static const char *bad[] = { "[]", "[{}]", "\"x\"", "42", "null", "true", "", " ",
					     "{", "{\"name\":", "{\"name\":\"x\"", "{}{}", "{} x",
					     "{'name':'x'}", "{\"name\":x}", "{\"a\":1,}", "\xef\xbb\xbf{}",
					     "{\"n\":1e999}" };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			decode_fails(d, bad[i], strlen(bad[i]), 0, SNAP_ERR_JSON, NULL);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			decode_fails(d, bad[i], strlen(bad[i]), SNAP_JSON_STRICT, SNAP_ERR_JSON, NULL);
	}
	/* Whitespace around is fine; errors need no err buffer. */
	decode(d, " \n{ \"name\" : \"x\" }\t", 0);
	{
		ProtobufCMessage *m;
		char tiny[4];

		assert_int_equal(snap_json_decode(d, "[]", 2, 0, &arena, &m, NULL, 0), SNAP_ERR_JSON);
		assert_int_equal(snap_json_decode(d, "[]", 2, 0, &arena, &m, tiny, sizeof(tiny)),
				 SNAP_ERR_JSON);
		assert_int_equal(strlen(tiny), 3);
		assert_int_equal(snap_json_decode(d, NULL, 0, 0, &arena, &m, NULL, 0), SNAP_ERR_JSON);
	}
}

static void test_arena_limit(void **state)
{
	const ProtobufCMessageDescriptor *d = &doku__wallet__v1__list_transactions_response__descriptor;
	snap_arena small;
	ProtobufCMessage *m = NULL;
	char err[SNAP_JSON_ERR_MAX];
	snap_buf b;

	(void)state;
	snap_buf_init(&b, NULL, SNAP_JSON_MAX_INPUT);
	assert_int_equal(snap_buf_append_str(&b, "{\"detailData\":["), SNAP_OK);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(snap_buf_printf(&b, "%s{\"dateTime\":\"2024-01-01T10:00:00+07:00\","
						     "\"remark\":\"item %d\"}", i ? "," : "", i),
				 SNAP_OK);
	assert_int_equal(snap_buf_append_str(&b, "]}"), SNAP_OK);
	snap_arena_init(&small, 64 * 1024);
	assert_int_equal(snap_json_decode(d, b.data, b.len, 0, &small, &m, err, sizeof(err)),
			 SNAP_ERR_NOMEM);
	assert_null(m);
	snap_arena_free(&small);
	snap_arena_init(&small, 4 * 1024 * 1024);
	assert_int_equal(snap_json_decode(d, b.data, b.len, 0, &small, &m, err, sizeof(err)), SNAP_OK);
	assert_int_equal(((Doku__Wallet__V1__ListTransactionsResponse *)m)->n_detail_data, 2000);
	snap_arena_free(&small);
	snap_buf_free(&b);
}


/* ---- the fast path of tolerant decoding against the general one -------------------------- */

/* Decode json both ways (the fast path when it takes it, and the general
 * path alone); the results must be the same: code, and packed bytes. */
static void same_both_ways(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
			   size_t arena_limit)
{
	snap_arena a, b;
	ProtobufCMessage *ma = NULL, *mb = NULL;
	char ea[SNAP_JSON_ERR_MAX] = "", eb[SNAP_JSON_ERR_MAX] = "";
	int ra, rb;

	snap_arena_init(&a, arena_limit);
	snap_arena_init(&b, arena_limit);
	ra = snap_json_decode(desc, json, len, 0, &a, &ma, ea, sizeof(ea));
	rb = snap_json_decode(desc, json, len, SNAP_JSON_GENERAL, &b, &mb, eb, sizeof(eb));
	if (ra != rb)
		fprintf(stderr, "%s: %.*s: fast %d (%s), general %d (%s)\n", desc->name, (int)len, json,
			ra, ea, rb, eb);
	assert_int_equal(ra, rb);
	assert_int_equal(ma == NULL, mb == NULL);
	if (ra == SNAP_ERR_NOMEM)
		assert_string_equal(ea, eb);
	if (ma != NULL) {
		size_t na = protobuf_c_message_get_packed_size(ma);
		size_t nb = protobuf_c_message_get_packed_size(mb);
		uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);

		assert_non_null(pa);
		assert_non_null(pb);
		protobuf_c_message_pack(ma, pa);
		protobuf_c_message_pack(mb, pb);
		if (na != nb || memcmp(pa, pb, na) != 0)
			fprintf(stderr, "%s: %.*s: the messages differ\n", desc->name, (int)len, json);
		assert_int_equal(na, nb);
		assert_memory_equal(pa, pb, na);
		free(pa);
		free(pb);
	}
	snap_arena_free(&a);
	snap_arena_free(&b);
}

static void test_fast_path_same(void **state)
{
	static const struct {
		const ProtobufCMessageDescriptor *desc;
		const char *json;
	} cases[] = {
		{ &doku__wallet__v1__get_balance_response__descriptor,
		  "{\"responseCode\":\"2001100\",\"responseMessage\":\"Successful\","
		  "\"referenceNo\":\"R-1\",\"partnerReferenceNo\":\"bench-balance\","
		  "\"accountNo\":\"628123\",\"name\":\"Budi\",\"accountInfo\":{\"balanceType\":"
		  "\"Cash\",\"amount\":{\"value\":\"100000.00\",\"currency\":\"IDR\"}}}" },
		{ &doku__wallet__v1__get_balance_response__descriptor,
		  " { \"ResponseCode\" : \"2001100\" ,\n\t\"response_message\":\"\",\r\n"
		  "\"accountInfo\":{}, \"NAME\":\"x y\" } \n" },
		{ &doku__wallet__v1__purchase_response__descriptor,
		  "{\"responseCode\":\"2005400\",\"ReferenceNo\":\"R1\",\"PartnerReferenceNo\":\"P1\","
		  "\"WEBREDIRECTURL\":\"https://x/y?a=1&b=2\",\"additionalInfo\":{\"dokuId\":\"D1\"}}" },
		{ &doku__wallet__v1__bind_account_response__descriptor,
		  "{\"additionalInfo\":{\"authCode\":\"xyz\"},\"linkId\":\"L\"}" },
		{ &doku__wallet__v1__bind_account_response__descriptor,
		  "{\"additionalInfo\":\"{\\\"authCode\\\":\\\"abc-123\\\"}\",\"linkId\":\"L\"}" },
		/* jansson keeps a repeated key at its first place with its last value */
		{ &doku__wallet__v1__get_balance_response__descriptor,
		  "{\"responseCode\":\"A\",\"response_code\":\"B\",\"responseCode\":\"C\"}" },
		{ &doku__wallet__v1__list_transactions_response__descriptor,
		  "{\"responseCode\":\"2001200\",\"detailData\":[{\"amount\":{\"value\":\"1.00\"}}]}" },
	};
	/* Texts spliced into a case at each of its positions. */
	static const char *const bits[] = {
		"", "\"", "{", "}", ",", ":", " ", "\\", "\\u0041", "\\\"", "null", "1", "-1.5e3",
		"true", "[]", "[{}]", "{}", "\"x\"", "\"responseCode\":\"1\",",
		"\"response_code\":\"2\",", "\"unknown\":1,", "\"name\":null,", "\xc3\xa9", "\x01",
		"\"accountInfo\":\"{}\",", "\"accountInfo\":[],",
	};
	char text[1024];

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const char *j = cases[c].json;
		size_t n = strlen(j);

		/* every prefix, and the whole text with the arena at every small limit */
		for (size_t k = 0; k <= n; k++)
			same_both_ways(cases[c].desc, j, k, 1u << 20);
		for (size_t lim = 0; lim < 3 * SNAP_ARENA_CHUNK; lim += 97)
			same_both_ways(cases[c].desc, j, n, lim);
		/* every bit at every position, and instead of every byte */
		for (size_t b = 0; b < sizeof(bits) / sizeof(bits[0]); b++) {
			size_t bl = strlen(bits[b]);

			for (size_t k = 0; k <= n && n + bl < sizeof(text); k++) {
				memcpy(text, j, k);
				memcpy(text + k, bits[b], bl);
				memcpy(text + k + bl, j + k, n - k);
				same_both_ways(cases[c].desc, text, n + bl, 1u << 20);
				if (k < n) {
					memcpy(text + k + bl, j + k + 1, n - k - 1);
					same_both_ways(cases[c].desc, text, n + bl - 1, 1u << 20);
				}
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_field_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_every_rpc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_every_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_edge_reals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_refuses_bad_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encode_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tolerant_numbers_for_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tolerant_strings_for_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tolerant_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arena_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fast_path_same, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
