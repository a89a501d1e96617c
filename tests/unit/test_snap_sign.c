/* snap_sign: SNAP's signing test vectors (below, each checked with openssl),
 * bit for bit, verification refusing any one-bit change, and bad keys. */
#include "test_util.h"

#include "snap_err.h"
#include "snap_sign.h"

#define CLIENT_ID "BRN-0221-1693209567392"
#define SECRET "SK-tDzY6MSLBWlNXy3qCsUU"
#define TS "2024-01-01T10:00:00+07:00"

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
#define V2_SHA "9ae74bb7fb2c43ac20b00996322a7cea1741c0492a7559bdefbd17547f0e3936"
#define V2_SIG "De+3/CasST47NCHx3SDDrc6c/O5P+/V2mU5gemLP4ab5i+qK8seEOYQcY2g2onkIOQ+q19MBLUQ/kG2bAKremg=="
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define V2_EMPTY_SIG "y4/aaVglP60o3m0R1+tFOZGTmr0OtvcDP2CiFDO/gw1QDfc8rAJH4sUlQmTb3IvPv2uaHcFKqbYQmljwadh8/g=="

#define V3_SECRET "myclientsecret"
#define V3_PATH "/v1.0/qr/qr-mpm-generate"
#define V3_TOKEN "myaccesstoken"
#define V3_TS "2024-03-05T10:37:16.196Z"
#define V3_BODY                                                                           \
	"{\"partnerReferenceNo\":\"2020102900000000000001\",\"amount\":{\"value\":"          \
	"\"12345678.00\",\"currency\":\"IDR\"},\"feeAmount\":{\"value\":\"12345678.00\","    \
	"\"currency\":\"IDR\"},\"merchantId\":\"00007100010926\",\"terminalId\":"            \
	"\"213141251124\",\"validityPeriod\":\"2009-07-03T12:08:56-07:00\"}"
#define V3_SHA "01463f60dbb6ca538581579dd95b31c8ba9fc6600eca750e4d8460ca4e402111"
#define V3_SIG "wmzT7yjg1SxxCsxNsFgCR9SYXiZGGbceF6fV8xe97sAMHxZ+7OEBMIBmvb6Sj6GcksGp3iv77DiomgSbcST3XQ=="

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static snap_rsa *load_key(const char *file, bool is_private)
{
	snap_rsa *k = NULL;
	size_t len;
	char *pem = strstr(file, "pkcs1") != NULL ? test_read_data(file, &len)
						   : test_read_vector(file, &len);

	assert_int_equal(is_private ? snap_rsa_load_private_pem(pem, len, &k)
				    : snap_rsa_load_public_pem(pem, len, &k),
			 SNAP_OK);
	free(pem);
	assert_non_null(k);
	return k;
}

/* Flip one bit of the bytes a base64 text encodes, re-encoding canonically. */
static void flip_b64_bit(char *s, size_t bit)
{
	size_t n = strlen(s), nbits = 0;
	unsigned char bytes[1024];
	size_t nb = 0;
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n && s[i] != '='; i++) {
		acc = acc << 6 | (unsigned)(strchr(b64, s[i]) - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			bytes[nb++] = (unsigned char)(acc >> bits);
		}
	}
	nbits = nb * 8;
	bit %= nbits;
	bytes[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	for (size_t i = 0, o = 0; i < nb; i += 3) {
		unsigned v = (unsigned)bytes[i] << 16;

		if (i + 1 < nb)
			v |= (unsigned)bytes[i + 1] << 8;
		if (i + 2 < nb)
			v |= bytes[i + 2];
		s[o++] = b64[v >> 18 & 63];
		s[o++] = b64[v >> 12 & 63];
		s[o++] = i + 1 < nb ? b64[v >> 6 & 63] : '=';
		s[o++] = i + 2 < nb ? b64[v & 63] : '=';
	}
}

static void test_sha256_vectors(void **state)
{
	char hex[SNAP_SHA256_HEX_LEN + 1];

	(void)state;
	assert_int_equal(snap_sha256_hex(V2_BODY, strlen(V2_BODY), hex), SNAP_OK);
	assert_string_equal(hex, V2_SHA);
	assert_int_equal(snap_sha256_hex(V3_BODY, strlen(V3_BODY), hex), SNAP_OK);
	assert_string_equal(hex, V3_SHA);
	assert_int_equal(snap_sha256_hex(NULL, 0, hex), SNAP_OK);
	assert_string_equal(hex, EMPTY_SHA);
	assert_int_equal(snap_sha256_hex("", 0, hex), SNAP_OK);
	assert_string_equal(hex, EMPTY_SHA);
	assert_int_equal(snap_sha256_hex(NULL, 1, hex), SNAP_ERR_INVALID);
}

static void test_v1_token_signature(void **state)
{
	const char *keys[] = { "doku_sdk_test_priv.pem", "doku_sdk_test_priv_pkcs1.pem" };
	char sig[SNAP_RSA_SIG_B64_MAX];

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		snap_rsa *k = load_key(keys[i], true);

		assert_int_equal(snap_sign_token(k, CLIENT_ID, TS, sig, sizeof(sig)), SNAP_OK);
		assert_string_equal(sig, V1_SIG);
		/* RSA PKCS#1 v1.5 is deterministic: blinding does not change it. */
		assert_int_equal(snap_sign_token(k, CLIENT_ID, TS, sig, sizeof(sig)), SNAP_OK);
		assert_string_equal(sig, V1_SIG);
		assert_int_equal(snap_verify_token(k, CLIENT_ID, TS, sig, strlen(sig)), SNAP_OK);
		snap_rsa_free(k);
	}
}

static void test_v1_verify(void **state)
{
	const char *pubs[] = { "doku_sdk_test_pub.pem", "doku_sdk_test_pub_pkcs1.pem" };
	char sig[sizeof(V1_SIG)];

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		snap_rsa *k = load_key(pubs[i], false);

		assert_int_equal(snap_verify_token(k, CLIENT_ID, TS, V1_SIG, strlen(V1_SIG)), SNAP_OK);
		/* One bit of the signature, the timestamp or the client id. */
		for (size_t bit = 0; bit < 2048; bit += 97) {
			memcpy(sig, V1_SIG, sizeof(sig));
			flip_b64_bit(sig, bit);
			assert_int_equal(snap_verify_token(k, CLIENT_ID, TS, sig, strlen(sig)),
					 SNAP_ERR_VERIFY);
		}
		assert_int_equal(snap_verify_token(k, CLIENT_ID, "2024-01-01T10:00:01+07:00", V1_SIG,
						   strlen(V1_SIG)),
				 SNAP_ERR_VERIFY);
		assert_int_equal(snap_verify_token(k, "BRN-0221-1693209567393", TS, V1_SIG,
						   strlen(V1_SIG)),
				 SNAP_ERR_VERIFY);
		/* Not base64, truncated, empty, non-canonical padding bits. */
		assert_int_equal(snap_verify_token(k, CLIENT_ID, TS, "!!!!", 4), SNAP_ERR_INVALID);
		assert_int_equal(snap_verify_token(k, CLIENT_ID, TS, V1_SIG, strlen(V1_SIG) - 4),
				 SNAP_ERR_VERIFY);
		assert_int_equal(snap_verify_token(k, CLIENT_ID, TS, V1_SIG, strlen(V1_SIG) - 1),
				 SNAP_ERR_INVALID);
		assert_int_equal(snap_verify_token(k, CLIENT_ID, TS, "", 0), SNAP_ERR_INVALID);
		memcpy(sig, V1_SIG, sizeof(sig));
		sig[strlen(sig) - 3] = 'B'; /* "A==" -> "B==": same bytes, other spelling */
		assert_int_equal(snap_verify_token(k, CLIENT_ID, TS, sig, strlen(sig)),
				 SNAP_ERR_INVALID);
		/* A public key does not sign. */
		assert_int_equal(snap_sign_token(k, CLIENT_ID, TS, sig, sizeof(sig)), SNAP_ERR_KEY);
		snap_rsa_free(k);
	}
}

static void test_token_sign_small_output(void **state)
{
	snap_rsa *k = load_key("doku_sdk_test_priv.pem", true);
	char sig[344]; /* 344 characters + NUL are needed for 2048 bits */

	(void)state;
	assert_int_equal(snap_sign_token(k, CLIENT_ID, TS, sig, sizeof(sig)), SNAP_ERR_TOO_BIG);
	assert_int_equal(snap_sign_token(k, NULL, TS, sig, sizeof(sig)), SNAP_ERR_INVALID);
	snap_rsa_free(k);
	snap_rsa_free(NULL);
}

static void check_service(const char *secret, const char *path, const char *token,
			  const char *body, const char *ts, const char *expect)
{
	size_t blen = body != NULL ? strlen(body) : 0, slen = strlen(secret);
	char sig[SNAP_HMAC_B64_LEN + 1], bad[SNAP_HMAC_B64_LEN + 1], *b2;

	assert_int_equal(snap_sign_service(secret, slen, "POST", path, token, body, blen, ts, sig),
			 SNAP_OK);
	assert_string_equal(sig, expect);
	assert_int_equal(strlen(sig), SNAP_HMAC_B64_LEN);
	assert_int_equal(snap_verify_service(secret, slen, "POST", path, token, body, blen, ts,
					     expect, strlen(expect)),
			 SNAP_OK);
	/* One bit of the signature. */
	for (size_t bit = 0; bit < 512; bit += 13) {
		memcpy(bad, expect, sizeof(bad));
		flip_b64_bit(bad, bit);
		assert_int_equal(snap_verify_service(secret, slen, "POST", path, token, body, blen,
						     ts, bad, strlen(bad)),
				 SNAP_ERR_VERIFY);
	}
	/* One bit of the body. */
	if (blen > 0) {
		b2 = strdup(body);
		assert_non_null(b2);
		for (size_t i = 0; i < blen; i += 7) {
			b2[i] ^= 1;
			assert_int_equal(snap_verify_service(secret, slen, "POST", path, token, b2,
							     blen, ts, expect, strlen(expect)),
					 SNAP_ERR_VERIFY);
			b2[i] ^= 1;
		}
		free(b2);
	}
	/* One bit of the timestamp, the token, the path, the method, the secret. */
	b2 = strdup(ts);
	b2[strlen(b2) - 7] ^= 1;
	assert_int_equal(snap_verify_service(secret, slen, "POST", path, token, body, blen, b2,
					     expect, strlen(expect)),
			 SNAP_ERR_VERIFY);
	free(b2);
	b2 = strdup(token);
	b2[0] ^= 1;
	assert_int_equal(snap_verify_service(secret, slen, "POST", path, b2, body, blen, ts, expect,
					     strlen(expect)),
			 SNAP_ERR_VERIFY);
	free(b2);
	b2 = strdup(path);
	b2[1] ^= 1;
	assert_int_equal(snap_verify_service(secret, slen, "POST", b2, token, body, blen, ts, expect,
					     strlen(expect)),
			 SNAP_ERR_VERIFY);
	free(b2);
	assert_int_equal(snap_verify_service(secret, slen, "PUT", path, token, body, blen, ts,
					     expect, strlen(expect)),
			 SNAP_ERR_VERIFY);
	assert_int_equal(snap_verify_service(secret, slen - 1, "POST", path, token, body, blen, ts,
					     expect, strlen(expect)),
			 SNAP_ERR_VERIFY);
	/* Not base64; lower-cased (Java's and Node's mistake). */
	assert_int_equal(snap_verify_service(secret, slen, "POST", path, token, body, blen, ts,
					     "not base64!", 11),
			 SNAP_ERR_INVALID);
	memcpy(bad, expect, sizeof(bad));
	for (char *p = bad; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	assert_int_not_equal(snap_verify_service(secret, slen, "POST", path, token, body, blen, ts,
						 bad, strlen(bad)),
			     SNAP_OK);
}

static void test_v2_service_signature(void **state)
{
	(void)state;
	check_service(SECRET, V2_PATH, V2_TOKEN, V2_BODY, TS, V2_SIG);
}

static void test_v2_empty_body(void **state)
{
	char sig[SNAP_HMAC_B64_LEN + 1];

	(void)state;
	check_service(SECRET, V2_PATH, V2_TOKEN, NULL, TS, V2_EMPTY_SIG);
	assert_int_equal(snap_sign_service(SECRET, strlen(SECRET), "POST", V2_PATH, V2_TOKEN, "", 0,
					   TS, sig),
			 SNAP_OK);
	assert_string_equal(sig, V2_EMPTY_SIG);
}

static void test_v3_midtrans(void **state)
{
	(void)state;
	check_service(V3_SECRET, V3_PATH, V3_TOKEN, V3_BODY, V3_TS, V3_SIG);
}

static void test_service_bad_args(void **state)
{
	char sig[SNAP_HMAC_B64_LEN + 1];

	(void)state;
	assert_int_equal(snap_sign_service(NULL, 0, "POST", "/", "t", NULL, 0, TS, sig),
			 SNAP_ERR_INVALID);
	assert_int_equal(snap_sign_service(SECRET, 3, "POST", NULL, "t", NULL, 0, TS, sig),
			 SNAP_ERR_INVALID);
	assert_int_equal(snap_sign_service(SECRET, 3, "POST", "/", "t", NULL, 5, TS, sig),
			 SNAP_ERR_INVALID);
	assert_int_equal(snap_verify_service(SECRET, 3, "POST", "/", "t", NULL, 0, TS, NULL, 0),
			 SNAP_ERR_INVALID);
}

static void test_bad_keys(void **state)
{
	static const char garbage[] = "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n"
				      "-----END PRIVATE KEY-----\n";
	snap_rsa *k = (snap_rsa *)&k; /* must be reset to NULL on failure */
	size_t plen, publen;
	char *pem = test_read_vector("doku_sdk_test_priv.pem", &plen);
	char *pub = test_read_vector("doku_sdk_test_pub.pem", &publen);
	char *big;

	(void)state;
	/* A public key where a private one is wanted, and the reverse. */
	assert_int_equal(snap_rsa_load_private_pem(pub, publen, &k), SNAP_ERR_KEY);
	assert_null(k);
	assert_int_equal(snap_rsa_load_public_pem(pem, plen, &k), SNAP_ERR_KEY);
	assert_null(k);
	/* Garbage, empty, NULL, not PEM at all. */
	assert_int_equal(snap_rsa_load_private_pem(garbage, strlen(garbage), &k), SNAP_ERR_KEY);
	assert_int_equal(snap_rsa_load_private_pem("", 0, &k), SNAP_ERR_KEY);
	assert_int_equal(snap_rsa_load_private_pem(NULL, 0, &k), SNAP_ERR_KEY);
	assert_int_equal(snap_rsa_load_public_pem("hello", 5, &k), SNAP_ERR_KEY);
	/* Truncated at every 50th byte. */
	for (size_t n = 1; n < plen - 30; n += 50)
		assert_int_equal(snap_rsa_load_private_pem(pem, n, &k), SNAP_ERR_KEY);
	for (size_t n = 1; n < publen - 30; n += 20)
		assert_int_equal(snap_rsa_load_public_pem(pub, n, &k), SNAP_ERR_KEY);
	/* One base64 character of the body changed: a broken key. */
	pem[100] = pem[100] == 'A' ? 'B' : 'A';
	pem[400] = pem[400] == 'A' ? 'B' : 'A';
	assert_int_not_equal(snap_rsa_load_private_pem(pem, plen, &k), SNAP_OK);
	assert_null(k);
	/* Over SNAP_PEM_MAX. */
	big = calloc(1, SNAP_PEM_MAX + 2);
	assert_non_null(big);
	memset(big, 'A', SNAP_PEM_MAX + 1);
	assert_int_equal(snap_rsa_load_private_pem(big, SNAP_PEM_MAX + 1, &k), SNAP_ERR_TOO_BIG);
	assert_int_equal(snap_rsa_load_public_pem(big, SNAP_PEM_MAX + 1, &k), SNAP_ERR_TOO_BIG);
	free(big);
	free(pem);
	free(pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_v1_token_signature),
		cmocka_unit_test(test_v1_verify),
		cmocka_unit_test(test_token_sign_small_output),
		cmocka_unit_test(test_v2_service_signature),
		cmocka_unit_test(test_v2_empty_body),
		cmocka_unit_test(test_v3_midtrans),
		cmocka_unit_test(test_service_bad_args),
		cmocka_unit_test(test_bad_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
