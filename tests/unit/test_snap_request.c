/* snap_request: the exact header lines and their order for token requests and
 * service calls (the signatures against SNAP's signing vectors, as in
 * test_snap_sign.c), the optional headers, the URL, the caps and bad inputs. */
#include "test_util.h"

#include "snap_arena.h"
#include "snap_endpoint.h"
#include "snap_err.h"
#include "snap_request.h"
#include "snap_sign.h"

#define ARENA_LIMIT (1024u * 1024u)

#define BASE "https://api-sandbox.doku.com"
#define CLIENT_ID "BRN-0221-1693209567392"
#define SECRET "SK-tDzY6MSLBWlNXy3qCsUU"
#define TS "2024-01-01T10:00:00+07:00"
#define EXTID "17041040000000001234567"
#define CHANNEL "H2H"
#define CTOKEN "cust.token.b2b2c"

#define V1_SIG                                                                           \
	"rv97ctJ7shNA5MS0NCoM8cyYcg3gnOiUmRowKIn1uYCjuOn9Nb8LcEeVDqqnz1OODPFnYOjPmuwxa1YWlN" \
	"ScjCuihtjN6mr+lbUKQoSw8jeY758oC3KwKskv4qVMGENASqHfCKSAJZvWMTbUZUu+36rc0/TKorU6G0P" \
	"zQCP0HBA1uYE+zoxor03OcE5JaMn8VY5mKH2AqUhmYJ8LnLK3gG9lS9L6Ngce+Ovnl8TNw79tuxnzAbIv" \
	"0BzagmBsJ460Pl6vQwubTsGDhpyFmeDObgAIpwc+vPwGPVs3lL/de6q3SJxzP/8hc1hMTMHgj1OowJUXh" \
	"LLqmBw2Gdkvw6IZtA=="

#define V2_TOKEN "eyJhbGciOiJSUzI1NiJ9.test.token"
#define V2_PATH "/direct-debit/core/v1/debit/payment-host-to-host"
#define V2_BODY                                                                          \
	"{\"partnerReferenceNo\":\"INV-20240101-0001\",\"amount\":{\"value\":\"10000.00\","  \
	"\"currency\":\"IDR\"},\"additionalInfo\":{\"channel\":\"EMONEY_DOKU_SNAP\"}}"
#define V2_SIG                                                                           \
	"De+3/CasST47NCHx3SDDrc6c/O5P+/V2mU5gemLP4ab5i+qK8seEOYQcY2g2onkIOQ+q19MBLUQ/kG2bAKremg=="
#define V2_EMPTY_SIG                                                                     \
	"y4/aaVglP60o3m0R1+tFOZGTmr0OtvcDP2CiFDO/gw1QDfc8rAJH4sUlQmTb3IvPv2uaHcFKqbYQmljwadh8/g=="

/* The path of vector V2, as a customer endpoint and as a plain B2B one. */
static const snap_endpoint v2_customer = { "V2", V2_PATH, 54, SNAP_AUTH_B2B_CUSTOMER, 0,
					   NULL, NULL, NULL, NULL };
static const snap_endpoint v2_b2b = { "V2", V2_PATH, 54, SNAP_AUTH_B2B, 0, NULL, NULL, NULL, NULL };

static snap_arena arena;
static snap_rsa *key;

static int setup(void **state)
{
	size_t len;
	char *pem = test_read_vector("doku_sdk_test_priv.pem", &len);

	(void)state;
	snap_arena_init(&arena, ARENA_LIMIT);
	key = NULL;
	assert_int_equal(snap_rsa_load_private_pem(pem, len, &key), SNAP_OK);
	free(pem);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	snap_arena_free(&arena);
	snap_rsa_free(key);
	key = NULL;
	return 0;
}

static const snap_endpoint *ep(const char *name)
{
	const snap_endpoint *e = snap_endpoint_by_name(name);

	assert_non_null(e);
	return e;
}

static snap_request_in token_in(const char *name)
{
	snap_request_in in = {
		.ep = ep(name),
		.base_url = BASE,
		.client_id = CLIENT_ID,
		.timestamp = TS,
		.body = "{\"grantType\":\"client_credentials\"}",
		.body_len = strlen("{\"grantType\":\"client_credentials\"}"),
		.key = key,
	};
	return in;
}

/* Vector V2 on the customer endpoint, CHANNEL-ID and customer token included. */
static snap_request_in service_in(void)
{
	snap_request_in in = {
		.ep = &v2_customer,
		.base_url = BASE,
		.client_id = CLIENT_ID,
		.timestamp = TS,
		.body = V2_BODY,
		.body_len = strlen(V2_BODY),
		.client_secret = SECRET,
		.secret_len = strlen(SECRET),
		.b2b_token = V2_TOKEN,
		.customer_token = CTOKEN,
		.external_id = EXTID,
		.channel_id = CHANNEL,
	};
	return in;
}

/* out holds exactly the n lines of want, in that order. */
static void check_headers(const snap_request *out, const char *const *want, unsigned n)
{
	assert_int_equal(out->nheaders, n);
	for (unsigned i = 0; i < n; i++) {
		assert_non_null(out->headers[i]);
		assert_string_equal(out->headers[i], want[i]);
	}
	for (unsigned i = n; i < SNAP_REQUEST_HEADERS_MAX; i++)
		assert_null(out->headers[i]);
}

/* The build fails with err (what names the case) and leaves out empty. */
static void check_fails_as(const snap_request_in *in, int err, const char *what)
{
	snap_request out;
	int rc;

	memset(&out, 0xa5, sizeof(out));
	rc = snap_request_build(&arena, in, &out);
	if (rc != err)
		fail_msg("%s: %s (%d), expected %s (%d)", what, snap_strerror(rc), rc,
			 snap_strerror(err), err);
	assert_null(out.url);
	assert_int_equal(out.nheaders, 0);
	for (unsigned i = 0; i < SNAP_REQUEST_HEADERS_MAX; i++)
		assert_null(out.headers[i]);
}

#define check_fails(in, err) check_fails_as((in), (err), #in " at line " TEST_STR(__LINE__))
#define TEST_STR(x) TEST_STR_(x)
#define TEST_STR_(x) #x

/* ---- token requests ---------------------------------------------------------- */

static void test_token_b2b(void **state)
{
	static const char *const want[] = {
		"Content-Type: application/json",
		"X-CLIENT-KEY: " CLIENT_ID,
		"X-TIMESTAMP: " TS,
		"X-SIGNATURE: " V1_SIG,
	};
	snap_request_in in = token_in("AccessTokenB2B");
	snap_request out;
	size_t used = arena.used;

	(void)state;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_string_equal(out.url, BASE "/authorization/v1/access-token/b2b");
	check_headers(&out, want, 4);
	assert_true(arena.used > used); /* the strings are the arena's */
}

static void test_token_b2b2c(void **state)
{
	static const char *const want[] = {
		"Content-Type: application/json",
		"X-CLIENT-KEY: " CLIENT_ID,
		"X-TIMESTAMP: " TS,
		"X-SIGNATURE: " V1_SIG,
	};
	snap_request_in in = token_in("AccessTokenB2B2C");
	snap_request out;

	(void)state;
	/* The RSA signature covers client_id and timestamp only, not the body. */
	in.base_url = "https://127.0.0.1:8443";
	in.body = "{\"grantType\":\"authorization_code\",\"authCode\":\"abc\"}";
	in.body_len = strlen(in.body);
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_string_equal(out.url, "https://127.0.0.1:8443/authorization/v1/access-token/b2b2c");
	check_headers(&out, want, 4);
	/* Another timestamp, another signature. */
	in.timestamp = "2024-01-01T10:00:01+07:00";
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_string_equal(out.headers[2], "X-TIMESTAMP: 2024-01-01T10:00:01+07:00");
	assert_string_not_equal(out.headers[3], "X-SIGNATURE: " V1_SIG);
	assert_int_equal(snap_verify_token(key, CLIENT_ID, in.timestamp, out.headers[3] + 13,
					   strlen(out.headers[3] + 13)),
			 SNAP_OK);
}

static void test_token_public_key(void **state)
{
	size_t len;
	char *pem = test_read_vector("doku_sdk_test_pub.pem", &len);
	snap_rsa *pub = NULL;
	snap_request_in in = token_in("AccessTokenB2B");

	(void)state;
	assert_int_equal(snap_rsa_load_public_pem(pem, len, &pub), SNAP_OK);
	free(pem);
	in.key = pub;
	check_fails(&in, SNAP_ERR_KEY);
	snap_rsa_free(pub);
}

/* ---- service calls ---------------------------------------------------------- */

static void test_service_v2(void **state)
{
	static const char *const want[] = {
		"Content-Type: application/json",
		"Authorization: Bearer " V2_TOKEN,
		"X-TIMESTAMP: " TS,
		"X-SIGNATURE: " V2_SIG,
		"X-PARTNER-ID: " CLIENT_ID,
		"X-EXTERNAL-ID: " EXTID,
		"CHANNEL-ID: " CHANNEL,
		"Authorization-Customer: Bearer " CTOKEN,
	};
	snap_request_in in = service_in();
	snap_request out;

	(void)state;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_string_equal(out.url, BASE V2_PATH);
	check_headers(&out, want, 8);
	/* The customer token is not signed: another one, the same signature. */
	in.customer_token = "another.customer.token";
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_string_equal(out.headers[3], "X-SIGNATURE: " V2_SIG);
	assert_string_equal(out.headers[7],
			    "Authorization-Customer: Bearer another.customer.token");
	/* The B2B token is: another one, another signature. */
	in.b2b_token = V2_TOKEN "x";
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_string_equal(out.headers[1], "Authorization: Bearer " V2_TOKEN "x");
	assert_string_not_equal(out.headers[3], "X-SIGNATURE: " V2_SIG);
}

static void test_service_empty_body(void **state)
{
	snap_request_in in = service_in();
	snap_request out;

	(void)state;
	in.body = NULL;
	in.body_len = 0;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_string_equal(out.headers[3], "X-SIGNATURE: " V2_EMPTY_SIG);
	in.body = "";
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_string_equal(out.headers[3], "X-SIGNATURE: " V2_EMPTY_SIG);
	/* Only body_len bytes are signed. */
	in.body = V2_BODY "trailing bytes that are not sent";
	in.body_len = strlen(V2_BODY);
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_string_equal(out.headers[3], "X-SIGNATURE: " V2_SIG);
}

/* CHANNEL-ID and Authorization-Customer present or absent, the order kept. */
static void test_service_optional_headers(void **state)
{
	static const char *const b2b[] = {
		"Content-Type: application/json",
		"Authorization: Bearer " V2_TOKEN,
		"X-TIMESTAMP: " TS,
		"X-SIGNATURE: " V2_SIG,
		"X-PARTNER-ID: " CLIENT_ID,
		"X-EXTERNAL-ID: " EXTID,
		"CHANNEL-ID: " CHANNEL,
	};
	static const char *const customer_no_channel[] = {
		"Content-Type: application/json",
		"Authorization: Bearer " V2_TOKEN,
		"X-TIMESTAMP: " TS,
		"X-SIGNATURE: " V2_SIG,
		"X-PARTNER-ID: " CLIENT_ID,
		"X-EXTERNAL-ID: " EXTID,
		"Authorization-Customer: Bearer " CTOKEN,
	};
	snap_request_in in = service_in();
	snap_request out;

	(void)state;
	/* B2B with a channel: 7 lines, no Authorization-Customer. */
	in.ep = &v2_b2b;
	in.customer_token = NULL;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	check_headers(&out, b2b, 7);
	/* B2B without a channel: the first 6. */
	in.channel_id = NULL;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	check_headers(&out, b2b, 6);
	/* Customer without a channel. */
	in = service_in();
	in.channel_id = NULL;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	check_headers(&out, customer_no_channel, 7);
}

/* Endpoints of the table: the path in the URL and in the signature. */
static void test_service_table(void **state)
{
	const char *names[] = { "GetBalance", "Purchase", "BindAccount", "CreateAccount" };
	char sig[SNAP_HMAC_B64_LEN + 1], line[256], url[256];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snap_request_in in = service_in();
		snap_request out;
		const char *sig_in;
		bool customer;

		in.ep = ep(names[i]);
		customer = in.ep->auth == SNAP_AUTH_B2B_CUSTOMER;
		if (!customer)
			in.customer_token = NULL;
		assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
		snprintf(url, sizeof(url), "%s%s", BASE, in.ep->path);
		assert_string_equal(out.url, url);
		assert_int_equal(snap_sign_service(SECRET, strlen(SECRET), "POST", in.ep->path,
						   V2_TOKEN, V2_BODY, strlen(V2_BODY), TS, sig),
				 SNAP_OK);
		snprintf(line, sizeof(line), "X-SIGNATURE: %s", sig);
		assert_string_equal(out.headers[3], line);
		assert_string_not_equal(sig, V2_SIG);
		sig_in = out.headers[3] + strlen("X-SIGNATURE: ");
		assert_int_equal(snap_verify_service(SECRET, strlen(SECRET), "POST", in.ep->path,
						     V2_TOKEN, V2_BODY, strlen(V2_BODY), TS, sig_in,
						     strlen(sig_in)),
				 SNAP_OK);
		assert_int_equal(out.nheaders, customer ? 8u : 7u);
		assert_string_equal(out.headers[6], "CHANNEL-ID: " CHANNEL);
		if (customer)
			assert_string_equal(out.headers[7],
					    "Authorization-Customer: Bearer " CTOKEN);
	}
}

/* ---- caps ---------------------------------------------------------------------- */

/* A string of n copies of c; caller frees. */
static char *filled(size_t n, char c)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_url_cap(void **state)
{
	size_t path = strlen(V2_PATH);
	char *base = filled(SNAP_REQUEST_URL_MAX - path, 'h');
	snap_request_in in = service_in();
	snap_request out;

	(void)state;
	memcpy(base, "https://", 8);
	in.base_url = base;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_int_equal(strlen(out.url), SNAP_REQUEST_URL_MAX);
	free(base);
	base = filled(SNAP_REQUEST_URL_MAX - path + 1, 'h');
	memcpy(base, "https://", 8);
	in.base_url = base;
	check_fails(&in, SNAP_ERR_TOO_BIG);
	free(base);
	/* The token endpoint's (shorter) path. */
	in = token_in("AccessTokenB2B");
	path = strlen(in.ep->path);
	base = filled(SNAP_REQUEST_URL_MAX - path, 'h');
	memcpy(base, "https://", 8);
	in.base_url = base;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_int_equal(strlen(out.url), SNAP_REQUEST_URL_MAX);
	free(base);
	base = filled(SNAP_REQUEST_URL_MAX - path + 1, 'h');
	memcpy(base, "https://", 8);
	in.base_url = base;
	check_fails(&in, SNAP_ERR_TOO_BIG);
	free(base);
}

static void test_header_cap(void **state)
{
	const size_t auth = strlen("Authorization: Bearer ");
	const size_t cust = strlen("Authorization-Customer: Bearer ");
	snap_request_in in = service_in();
	snap_request out;
	char *tok;

	(void)state;
	/* Tokens of 4096 bytes fit. */
	tok = filled(4096, 't');
	in.b2b_token = tok;
	in.customer_token = tok;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_int_equal(strlen(out.headers[1]), auth + 4096);
	assert_int_equal(strlen(out.headers[7]), cust + 4096);
	free(tok);
	/* A line of exactly SNAP_REQUEST_HEADER_MAX bytes, then one more. */
	tok = filled(SNAP_REQUEST_HEADER_MAX - auth, 't');
	in = service_in();
	in.b2b_token = tok;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_int_equal(strlen(out.headers[1]), SNAP_REQUEST_HEADER_MAX);
	free(tok);
	tok = filled(SNAP_REQUEST_HEADER_MAX - auth + 1, 't');
	in.b2b_token = tok;
	check_fails(&in, SNAP_ERR_TOO_BIG);
	free(tok);
	/* The customer token, the last line. */
	tok = filled(SNAP_REQUEST_HEADER_MAX - cust, 'c');
	in = service_in();
	in.customer_token = tok;
	assert_int_equal(snap_request_build(&arena, &in, &out), SNAP_OK);
	assert_int_equal(strlen(out.headers[7]), SNAP_REQUEST_HEADER_MAX);
	free(tok);
	tok = filled(SNAP_REQUEST_HEADER_MAX - cust + 1, 'c');
	in.customer_token = tok;
	check_fails(&in, SNAP_ERR_TOO_BIG);
	free(tok);
	/* A channel id. */
	tok = filled(SNAP_REQUEST_HEADER_MAX, 'C');
	in = service_in();
	in.channel_id = tok;
	check_fails(&in, SNAP_ERR_TOO_BIG);
	free(tok);
	/* A client id too long to sign (snap_sign_token's limit). */
	tok = filled(2000, 'B');
	in = token_in("AccessTokenB2B");
	in.client_id = tok;
	check_fails(&in, SNAP_ERR_TOO_BIG);
	free(tok);
}

static void test_arena_limit(void **state)
{
	snap_arena small;
	snap_request_in in = service_in();
	snap_request out;

	(void)state;
	snap_arena_init(&small, 64);
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(snap_request_build(&small, &in, &out), SNAP_ERR_NOMEM);
	assert_null(out.url);
	assert_int_equal(out.nheaders, 0);
	snap_arena_free(&small);
	/* Room for the URL and some lines only. */
	snap_arena_init(&small, 4096 + 256);
	{
		char *tok = filled(4000, 't');

		in.b2b_token = tok;
		in.customer_token = tok;
		assert_int_equal(snap_request_build(&small, &in, &out), SNAP_ERR_NOMEM);
		assert_int_equal(out.nheaders, 0);
		free(tok);
	}
	snap_arena_free(&small);
}

/* ---- bad inputs ------------------------------------------------------------------ */

static void test_bad_args(void **state)
{
	snap_request_in in = service_in();
	snap_request out;

	(void)state;
	assert_int_equal(snap_request_build(NULL, &in, &out), SNAP_ERR_INVALID);
	assert_int_equal(snap_request_build(&arena, NULL, &out), SNAP_ERR_INVALID);
	assert_int_equal(snap_request_build(&arena, &in, NULL), SNAP_ERR_INVALID);
}

typedef struct mutation {
	const char *name;
	void (*fn)(snap_request_in *in);
} mutation;

#define MUT(name, body) \
	static void name(snap_request_in *in) { body; }
#define M(name) { #name, name }

/* Common inputs. */
MUT(m_no_ep, in->ep = NULL)
MUT(m_no_base, in->base_url = NULL)
MUT(m_empty_base, in->base_url = "")
MUT(m_no_client, in->client_id = NULL)
MUT(m_empty_client, in->client_id = "")
MUT(m_no_ts, in->timestamp = NULL)
MUT(m_empty_ts, in->timestamp = "")
MUT(m_body_null_len, in->body = NULL)
/* Control characters: no header injection. */
MUT(m_crlf_token, in->b2b_token = "abc\r\nX-Evil: 1")
MUT(m_lf_ctoken, in->customer_token = "abc\nX-Evil: 1")
MUT(m_cr_extid, in->external_id = "123\r")
MUT(m_tab_channel, in->channel_id = "H\t2H")
MUT(m_del_client, in->client_id = "BRN\x7f")
MUT(m_crlf_ts, in->timestamp = TS "\r\n")
MUT(m_crlf_base, in->base_url = BASE "\r\nHost: evil")
/* Service inputs. */
MUT(m_key_on_service, in->key = key)
MUT(m_no_secret, in->client_secret = NULL)
MUT(m_secret_len0, in->secret_len = 0)
MUT(m_no_b2b, in->b2b_token = NULL)
MUT(m_empty_b2b, in->b2b_token = "")
MUT(m_no_extid, in->external_id = NULL)
MUT(m_empty_extid, in->external_id = "")
MUT(m_empty_channel, in->channel_id = "")
MUT(m_customer_no_ctoken, in->customer_token = NULL)
MUT(m_customer_empty_ctoken, in->customer_token = "")
MUT(m_b2b_with_ctoken, in->ep = &v2_b2b)
MUT(m_bad_auth, static snap_endpoint e; e = v2_b2b; e.auth = (enum snap_auth)7; in->ep = &e)
MUT(m_no_path, static snap_endpoint e; e = v2_b2b; e.path = NULL; in->ep = &e)
MUT(m_relative_path, static snap_endpoint e; e = v2_b2b; e.path = "v1/x"; in->ep = &e)

static void test_bad_service_inputs(void **state)
{
	static const mutation muts[] = {
		M(m_no_ep), M(m_no_base), M(m_empty_base), M(m_no_client), M(m_empty_client),
		M(m_no_ts), M(m_empty_ts), M(m_body_null_len), M(m_crlf_token), M(m_lf_ctoken),
		M(m_cr_extid), M(m_tab_channel), M(m_del_client), M(m_crlf_ts), M(m_crlf_base),
		M(m_key_on_service), M(m_no_secret), M(m_secret_len0), M(m_no_b2b),
		M(m_empty_b2b), M(m_no_extid), M(m_empty_extid), M(m_empty_channel),
		M(m_customer_no_ctoken), M(m_customer_empty_ctoken), M(m_b2b_with_ctoken),
		M(m_bad_auth), M(m_no_path), M(m_relative_path),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		snap_request_in in = service_in();

		muts[i].fn(&in);
		check_fails_as(&in, SNAP_ERR_INVALID, muts[i].name);
	}
}

/* Token inputs: a key, and nothing of a service call. */
MUT(t_no_key, in->key = NULL)
MUT(t_secret, in->client_secret = SECRET; in->secret_len = strlen(SECRET))
MUT(t_secret_len, in->secret_len = 3)
MUT(t_b2b, in->b2b_token = V2_TOKEN)
MUT(t_ctoken, in->customer_token = CTOKEN)
MUT(t_extid, in->external_id = EXTID)
MUT(t_channel, in->channel_id = CHANNEL)
MUT(t_crlf_client, in->client_id = CLIENT_ID "\r\nX-Evil: 1")

static void test_bad_token_inputs(void **state)
{
	static const mutation muts[] = {
		M(m_no_base), M(m_no_client), M(m_empty_client), M(m_no_ts), M(m_body_null_len),
		M(m_crlf_ts), M(t_no_key), M(t_secret), M(t_secret_len), M(t_b2b), M(t_ctoken),
		M(t_extid), M(t_channel), M(t_crlf_client),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		snap_request_in in = token_in("AccessTokenB2B");

		muts[i].fn(&in);
		check_fails_as(&in, SNAP_ERR_INVALID, muts[i].name);
	}
	/* A service endpoint given token inputs only. */
	{
		snap_request_in in = token_in("AccessTokenB2B");

		in.ep = ep("BindAccount");
		check_fails(&in, SNAP_ERR_INVALID);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_token_b2b, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_b2b2c, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_public_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_empty_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_optional_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_url_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arena_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_service_inputs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_token_inputs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
