/* SNAP signatures through wolfCrypt: RSA-SHA256 for token endpoints,
 * HMAC-SHA512 for service calls, SHA-256 of bodies. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/signature.h>

#include "snap_sign.h"
#include "snap_err.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define RSA_SIG_MAX 1024u   /* bytes of an RSA signature of up to 8192 bits */
#define TOKEN_INPUT_MAX 1024u /* client_id "|" timestamp */
#define HMAC_LEN 64u

struct snap_rsa {
	RsaKey key;
	WC_RNG rng;
	bool private_key;
	bool rng_ok;
	bool key_ok;
};

static void wipe_free(void *p, size_t n)
{
	if (p != NULL) {
		explicit_bzero(p, n);
		free(p);
	}
}

/* Constant-time equality of two byte strings of the same length. */
static bool ct_equal(const unsigned char *a, const unsigned char *b, size_t n)
{
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static size_t b64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

/* base64 of in[0..n) into out[outsz] with a NUL. */
static int b64_encode(const unsigned char *in, size_t n, char *out, size_t outsz)
{
	word32 olen = (word32)(outsz - 1);

	if (outsz == 0 || b64_len(n) >= outsz)
		return SNAP_ERR_TOO_BIG;
	if (Base64_Encode_NoNl(in, (word32)n, (byte *)out, &olen) != 0)
		return SNAP_ERR_CRYPTO;
	out[olen] = '\0';
	return SNAP_OK;
}

/* Strict base64 decode: the text must be the canonical encoding of the bytes
 * (padded, no line breaks, unused bits zero), so that one signature has one
 * spelling. */
static int b64_decode(const char *in, size_t n, unsigned char *out, size_t outsz,
		      size_t *outlen)
{
	char canon[SNAP_RSA_SIG_B64_MAX];
	word32 olen = (word32)outsz;

	if (n == 0 || n % 4 != 0 || n >= sizeof(canon) || n / 4 * 3 > outsz)
		return SNAP_ERR_INVALID;
	if (Base64_Decode((const byte *)in, (word32)n, out, &olen) != 0)
		return SNAP_ERR_INVALID;
	if (b64_encode(out, olen, canon, sizeof(canon)) != 0 || strlen(canon) != n ||
	    memcmp(canon, in, n) != 0)
		return SNAP_ERR_INVALID;
	*outlen = olen;
	return SNAP_OK;
}

static int rsa_new(snap_rsa **out)
{
	snap_rsa *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return SNAP_ERR_NOMEM;
	if (wc_InitRsaKey(&k->key, NULL) != 0) {
		free(k);
		return SNAP_ERR_CRYPTO;
	}
	k->key_ok = true;
	*out = k;
	return SNAP_OK;
}

static bool pem_has(const char *pem, size_t len, const char *marker)
{
	size_t m = strlen(marker);

	for (size_t i = 0; i + m <= len; i++)
		if (memcmp(pem + i, marker, m) == 0)
			return true;
	return false;
}

/* Sign a probe and verify it with the public half: SNAP_ERR_KEY if they differ. */
static int rsa_pairwise_check(snap_rsa *k)
{
	static const byte probe[] = "doku-bridge key check";
	unsigned char sig[RSA_SIG_MAX];
	word32 siglen = sizeof(sig);
	int n = wc_SignatureGetSize(WC_SIGNATURE_TYPE_RSA_W_ENC, &k->key, sizeof(k->key));

	if (n <= 0 || (size_t)n > sizeof(sig))
		return SNAP_ERR_KEY;
	if (wc_SignatureGenerate(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_RSA_W_ENC, probe,
				 sizeof(probe), sig, &siglen, &k->key, sizeof(k->key), &k->rng) != 0 ||
	    wc_SignatureVerify(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_RSA_W_ENC, probe,
			       sizeof(probe), sig, siglen, &k->key, sizeof(k->key)) != 0)
		return SNAP_ERR_KEY;
	return SNAP_OK;
}

int snap_rsa_load_private_pem(const char *pem, size_t len, snap_rsa **out)
{
	unsigned char *der = NULL;
	snap_rsa *k = NULL;
	word32 idx = 0;
	int n, rc;

	*out = NULL;
	if (pem == NULL || len == 0)
		return SNAP_ERR_KEY;
	if (len > SNAP_PEM_MAX)
		return SNAP_ERR_TOO_BIG;
	/* wolfSSL's PEM reader takes any "PRIVATE KEY" block; refuse public
	 * keys and other kinds early with a clear error. */
	if (!pem_has(pem, len, "-----BEGIN PRIVATE KEY-----") &&
	    !pem_has(pem, len, "-----BEGIN RSA PRIVATE KEY-----"))
		return SNAP_ERR_KEY;
	der = malloc(len);
	if (der == NULL)
		return SNAP_ERR_NOMEM;
	n = wc_KeyPemToDer((const unsigned char *)pem, (int)len, der, (int)len, NULL);
	if (n <= 0) {
		rc = SNAP_ERR_KEY;
		goto out;
	}
	rc = rsa_new(&k);
	if (rc != 0)
		goto out;
	if (wc_RsaPrivateKeyDecode(der, &idx, &k->key, (word32)n) != 0) {
		rc = SNAP_ERR_KEY;
		goto out;
	}
	if (wc_InitRng(&k->rng) != 0) {
		rc = SNAP_ERR_CRYPTO;
		goto out;
	}
	k->rng_ok = true;
	if (wc_RsaSetRNG(&k->key, &k->rng) != 0) {
		rc = SNAP_ERR_CRYPTO;
		goto out;
	}
	/* A damaged key may still decode: check that its parts belong together. */
	rc = rsa_pairwise_check(k);
	if (rc != 0)
		goto out;
	k->private_key = true;
	*out = k;
	k = NULL;
	rc = SNAP_OK;
out:
	wipe_free(der, len);
	snap_rsa_free(k);
	return rc;
}

int snap_rsa_load_public_pem(const char *pem, size_t len, snap_rsa **out)
{
	unsigned char *der = NULL;
	snap_rsa *k = NULL;
	DerBuffer *pkcs1 = NULL;
	word32 idx = 0;
	int n, rc;

	*out = NULL;
	if (pem == NULL || len == 0)
		return SNAP_ERR_KEY;
	if (len > SNAP_PEM_MAX)
		return SNAP_ERR_TOO_BIG;
	der = malloc(len);
	if (der == NULL)
		return SNAP_ERR_NOMEM;
	if (pem_has(pem, len, "-----BEGIN PUBLIC KEY-----")) {
		n = wc_PubKeyPemToDer((const unsigned char *)pem, (int)len, der, (int)len);
	} else if (pem_has(pem, len, "-----BEGIN RSA PUBLIC KEY-----")) {
		n = -1;
		if (wc_PemToDer((const unsigned char *)pem, (long)len, RSA_PUBLICKEY_TYPE,
				&pkcs1, NULL, NULL, NULL) == 0 && pkcs1->length <= len) {
			memcpy(der, pkcs1->buffer, pkcs1->length);
			n = (int)pkcs1->length;
		}
	} else {
		n = -1;
	}
	if (n <= 0) {
		rc = SNAP_ERR_KEY;
		goto out;
	}
	rc = rsa_new(&k);
	if (rc != 0)
		goto out;
	if (wc_RsaPublicKeyDecode(der, &idx, &k->key, (word32)n) != 0) {
		rc = SNAP_ERR_KEY;
		goto out;
	}
	*out = k;
	k = NULL;
	rc = SNAP_OK;
out:
	wc_FreeDer(&pkcs1);
	wipe_free(der, len);
	snap_rsa_free(k);
	return rc;
}

void snap_rsa_free(snap_rsa *key)
{
	if (key == NULL)
		return;
	if (key->key_ok)
		wc_FreeRsaKey(&key->key);
	if (key->rng_ok)
		wc_FreeRng(&key->rng);
	explicit_bzero(key, sizeof(*key));
	free(key);
}

/* client_id "|" timestamp into buf; its length or a negative error. */
static int token_input(const char *client_id, const char *timestamp, char *buf, size_t bufsz)
{
	size_t a, b;

	if (client_id == NULL || timestamp == NULL)
		return SNAP_ERR_INVALID;
	a = strlen(client_id);
	b = strlen(timestamp);
	if (a >= bufsz || b >= bufsz - a - 1)
		return SNAP_ERR_TOO_BIG;
	memcpy(buf, client_id, a);
	buf[a] = '|';
	memcpy(buf + a + 1, timestamp, b);
	return (int)(a + 1 + b);
}

int snap_sign_token(snap_rsa *key, const char *client_id, const char *timestamp,
		    char *out, size_t outsz)
{
	char input[TOKEN_INPUT_MAX];
	unsigned char sig[RSA_SIG_MAX];
	word32 siglen = sizeof(sig);
	int n, rc;

	if (key == NULL || out == NULL || outsz == 0)
		return SNAP_ERR_INVALID;
	out[0] = '\0';
	if (!key->private_key)
		return SNAP_ERR_KEY;
	n = token_input(client_id, timestamp, input, sizeof(input));
	if (n < 0)
		return n;
	rc = wc_SignatureGetSize(WC_SIGNATURE_TYPE_RSA_W_ENC, &key->key, sizeof(key->key));
	if (rc <= 0 || (size_t)rc > sizeof(sig)) {
		rc = SNAP_ERR_KEY;
		goto out;
	}
	if (b64_len((size_t)rc) >= outsz) {
		rc = SNAP_ERR_TOO_BIG;
		goto out;
	}
	if (wc_SignatureGenerate(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_RSA_W_ENC,
				 (const byte *)input, (word32)n, sig, &siglen, &key->key,
				 sizeof(key->key), &key->rng) != 0) {
		rc = SNAP_ERR_CRYPTO;
		goto out;
	}
	rc = b64_encode(sig, siglen, out, outsz);
out:
	explicit_bzero(input, sizeof(input));
	explicit_bzero(sig, sizeof(sig));
	return rc;
}

int snap_verify_token(snap_rsa *key, const char *client_id, const char *timestamp,
		      const char *sig_b64, size_t sig_len)
{
	char input[TOKEN_INPUT_MAX];
	unsigned char sig[RSA_SIG_MAX];
	size_t siglen;
	int n, rc;

	if (key == NULL || sig_b64 == NULL)
		return SNAP_ERR_INVALID;
	n = token_input(client_id, timestamp, input, sizeof(input));
	if (n < 0)
		return n;
	rc = b64_decode(sig_b64, sig_len, sig, sizeof(sig), &siglen);
	if (rc != 0)
		goto out;
	if (wc_SignatureVerify(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_RSA_W_ENC,
			       (const byte *)input, (word32)n, sig, (word32)siglen,
			       &key->key, sizeof(key->key)) != 0)
		rc = SNAP_ERR_VERIFY;
out:
	explicit_bzero(input, sizeof(input));
	return rc;
}

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int snap_sha256_hex(const void *data, size_t len, char out[SNAP_SHA256_HEX_LEN + 1])
{
	unsigned char h[WC_SHA256_DIGEST_SIZE];

	if (data == NULL && len != 0)
		return SNAP_ERR_INVALID;
	if (len > UINT_MAX)
		return SNAP_ERR_TOO_BIG;
	if (wc_Sha256Hash(data != NULL ? data : "", (word32)len, h) != 0)
		return SNAP_ERR_CRYPTO;
	to_hex(h, sizeof(h), out);
	return SNAP_OK;
}

/* Raw HMAC-SHA512 of the service string-to-sign, fed piece by piece. */
static int service_mac(const void *secret, size_t secret_len, const char *method,
		       const char *path, const char *token, const void *body,
		       size_t body_len, const char *timestamp, unsigned char mac[HMAC_LEN])
{
	const char *parts[9];
	char hex[SNAP_SHA256_HEX_LEN + 1];
	Hmac h;
	int rc;

	if (secret == NULL || method == NULL || path == NULL || token == NULL ||
	    timestamp == NULL || secret_len > UINT_MAX)
		return SNAP_ERR_INVALID;
	rc = snap_sha256_hex(body, body_len, hex);
	if (rc != 0)
		return rc;
	parts[0] = method;
	parts[1] = ":";
	parts[2] = path;
	parts[3] = ":";
	parts[4] = token;
	parts[5] = ":";
	parts[6] = hex;
	parts[7] = ":";
	parts[8] = timestamp;
	if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
		return SNAP_ERR_CRYPTO;
	rc = SNAP_ERR_CRYPTO;
	if (wc_HmacSetKey(&h, WC_SHA512, secret, (word32)secret_len) != 0)
		goto out;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t n = strlen(parts[i]);

		if (n > UINT_MAX || wc_HmacUpdate(&h, (const byte *)parts[i], (word32)n) != 0)
			goto out;
	}
	if (wc_HmacFinal(&h, mac) != 0)
		goto out;
	rc = SNAP_OK;
out:
	wc_HmacFree(&h);
	explicit_bzero(&h, sizeof(h));
	return rc;
}

int snap_sign_service(const void *secret, size_t secret_len, const char *method,
		      const char *path, const char *token, const void *body,
		      size_t body_len, const char *timestamp,
		      char out[SNAP_HMAC_B64_LEN + 1])
{
	unsigned char mac[HMAC_LEN];
	int rc;

	rc = service_mac(secret, secret_len, method, path, token, body, body_len,
			 timestamp, mac);
	if (rc == 0)
		rc = b64_encode(mac, sizeof(mac), out, SNAP_HMAC_B64_LEN + 1);
	explicit_bzero(mac, sizeof(mac));
	return rc;
}

int snap_verify_service(const void *secret, size_t secret_len, const char *method,
			const char *path, const char *token, const void *body,
			size_t body_len, const char *timestamp, const char *sig_b64,
			size_t sig_len)
{
	unsigned char mac[HMAC_LEN], got[RSA_SIG_MAX];
	size_t gotlen = 0;
	int rc;

	if (sig_b64 == NULL)
		return SNAP_ERR_INVALID;
	rc = b64_decode(sig_b64, sig_len, got, sizeof(got), &gotlen);
	if (rc != 0)
		goto out;
	rc = service_mac(secret, secret_len, method, path, token, body, body_len,
			 timestamp, mac);
	if (rc != 0)
		goto out;
	rc = gotlen == sizeof(mac) && ct_equal(mac, got, sizeof(mac)) ? SNAP_OK
								       : SNAP_ERR_VERIFY;
out:
	explicit_bzero(mac, sizeof(mac));
	explicit_bzero(got, sizeof(got));
	return rc;
}
