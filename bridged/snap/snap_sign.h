/* SNAP signatures, all through wolfCrypt.
 *
 * Token endpoints (asymmetric):
 *   X-SIGNATURE = base64(RSA-PKCS#1-v1.5-SHA256(private key, client_id "|" X-TIMESTAMP))
 * Service calls (symmetric):
 *   stringToSign = METHOD ":" PATH ":" TOKEN ":" lowerhex(SHA-256(BODY)) ":" X-TIMESTAMP
 *   X-SIGNATURE  = base64(HMAC-SHA512(client secret, stringToSign))
 * Base64 is standard, padded, without line breaks. Verification decodes the
 * signature and compares bytes in constant time. */
#ifndef DOKU_SNAP_SIGN_H
#define DOKU_SNAP_SIGN_H

#include <stddef.h>

#define SNAP_RSA_SIG_B64_MAX 1400 /* base64 of an RSA signature of up to 8192 bits, + NUL */
#define SNAP_HMAC_B64_LEN 88      /* base64 of 64 bytes */
#define SNAP_SHA256_HEX_LEN 64
#define SNAP_PEM_MAX (64u * 1024u) /* larger PEM input is refused */

typedef struct snap_rsa snap_rsa;

/* Load an RSA private key from PEM, PKCS#8 ("BEGIN PRIVATE KEY") or PKCS#1
 * ("BEGIN RSA PRIVATE KEY"). *out is the caller's: free with snap_rsa_free.
 * SNAP_ERR_KEY for anything that is not an RSA private key (a public key
 * included), SNAP_ERR_TOO_BIG over SNAP_PEM_MAX. The key holds its own RNG
 * (for blinding): one key must not be used from two threads at once. */
int snap_rsa_load_private_pem(const char *pem, size_t len, snap_rsa **out);

/* Load an RSA public key from PEM ("BEGIN PUBLIC KEY" or "BEGIN RSA PUBLIC KEY").
 * Verification only. Same ownership and errors. */
int snap_rsa_load_public_pem(const char *pem, size_t len, snap_rsa **out);

/* Wipe and free a key; NULL is a no-op. */
void snap_rsa_free(snap_rsa *key);

/* Token signature of client_id "|" timestamp, base64, NUL-terminated, into
 * out[outsz]. SNAP_ERR_KEY if key is a public key, SNAP_ERR_TOO_BIG if outsz
 * is too small. */
int snap_sign_token(snap_rsa *key, const char *client_id, const char *timestamp,
		    char *out, size_t outsz);

/* 0 if sig_b64[0..sig_len) is a valid token signature, else SNAP_ERR_VERIFY
 * (or SNAP_ERR_INVALID for a signature that is not base64). Works with a
 * public or a private key. */
int snap_verify_token(snap_rsa *key, const char *client_id, const char *timestamp,
		      const char *sig_b64, size_t sig_len);

/* Service signature into out (NUL-terminated). token is the raw B2B token,
 * without "Bearer ". body may be NULL when body_len is 0. */
int snap_sign_service(const void *secret, size_t secret_len, const char *method,
		      const char *path, const char *token, const void *body,
		      size_t body_len, const char *timestamp,
		      char out[SNAP_HMAC_B64_LEN + 1]);

/* 0 if sig_b64 is the service signature of these inputs, else SNAP_ERR_VERIFY;
 * constant-time comparison of the decoded bytes. */
int snap_verify_service(const void *secret, size_t secret_len, const char *method,
			const char *path, const char *token, const void *body,
			size_t body_len, const char *timestamp, const char *sig_b64,
			size_t sig_len);

/* Lower-case hex SHA-256 of data into out (NUL-terminated). */
int snap_sha256_hex(const void *data, size_t len, char out[SNAP_SHA256_HEX_LEN + 1]);

#endif
