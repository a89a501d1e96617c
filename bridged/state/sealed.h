/* Secrets at rest: AES-256-GCM (wolfCrypt) with a random 96-bit nonce per seal.
 *
 * A sealed value is
 *     version (1 byte, SEALED_VERSION) | nonce (12) | ciphertext (n) | tag (16)
 * and is bound to associated data naming what it belongs to (sealed_ad:
 * profile NUL customer_ref NUL purpose), so a value copied to another row or
 * column does not open. Opening with a wrong key, or after any byte of the
 * value or of its associated data changed, fails with SEALED_ERR_AUTH and
 * yields no plaintext (the output buffer is wiped).
 *
 * The key is 32 bytes read from a file (32 raw bytes, or 64 hex digits and an
 * optional newline) that only its owner can access, as ssh demands of a
 * private key, or from a systemd credential. Key bytes are wiped as soon as
 * wolfCrypt has expanded them, and the expanded key when the key is freed.
 *
 * Thread-safe: one sealed_key may seal and open from several threads at once
 * (a mutex guards its AES state and its RNG). */
#ifndef DOKU_STATE_SEALED_H
#define DOKU_STATE_SEALED_H

#include <stddef.h>

#include "doku_err.h"

#define SEALED_KEY_LEN 32
#define SEALED_NONCE_LEN 12
#define SEALED_TAG_LEN 16
#define SEALED_VERSION 0x01
#define SEALED_OVERHEAD (1 + SEALED_NONCE_LEN + SEALED_TAG_LEN)
#define SEALED_PLAIN_MAX (64u * 1024u) /* largest secret sealed */
#define SEALED_AD_MAX 256u             /* largest associated data */
#define SEALED_KEY_FILE_MAX 128u       /* a longer key file is refused */
#define SEALED_ERR_MAX 256             /* size of an error text buffer */

/* Sealing's failures: a named subset of enum doku_err (doku_err.h). */
enum sealed_err {
	SEALED_ERR_NOMEM = DOKU_ERR_NOMEM,
	/* bad argument, or not a sealed value (short, unknown version) */
	SEALED_ERR_INVALID = DOKU_ERR_INVALID,
	/* input over SEALED_PLAIN_MAX / SEALED_AD_MAX, or output too small */
	SEALED_ERR_TOO_BIG = DOKU_ERR_TOO_BIG,
	SEALED_ERR_CRYPTO = DOKU_ERR_CRYPTO,   /* wolfCrypt failed (RNG, AES) */
	/* did not open: wrong key, or the value or its AD was changed */
	SEALED_ERR_AUTH = DOKU_ERR_AUTH,
	SEALED_ERR_KEYFILE = DOKU_ERR_KEYFILE, /* key file missing, unreadable, refused or malformed */
};

typedef struct sealed_key sealed_key;

/* A key from 32 raw bytes (the caller wipes its copy). *out is the caller's:
 * free with sealed_key_free. 0, SEALED_ERR_NOMEM or SEALED_ERR_CRYPTO. */
int sealed_key_new(const unsigned char raw[SEALED_KEY_LEN], sealed_key **out);

/* Read a key file: refused unless it is a regular file owned by the effective
 * user or root with no permission for group or others; it must hold exactly 32
 * bytes, or 64 hex digits optionally followed by "\n" or "\r\n". On error err
 * holds the reason (never a key byte) and the result is SEALED_ERR_KEYFILE (or
 * NOMEM/CRYPTO). *out as for sealed_key_new. */
int sealed_key_load_file(const char *path, sealed_key **out, char err[SEALED_ERR_MAX]);

/* As sealed_key_load_file for the systemd credential name
 * ($CREDENTIALS_DIRECTORY/name; name holds no '/'). */
int sealed_key_load_credential(const char *name, sealed_key **out, char err[SEALED_ERR_MAX]);

/* Wipe and free; NULL is a no-op. */
void sealed_key_free(sealed_key *k);

/* The associated data of a secret: profile NUL customer_ref NUL purpose
 * (e.g. "access", "refresh") into out, its length in *len. 0 or
 * SEALED_ERR_TOO_BIG / SEALED_ERR_INVALID (a NULL string). */
int sealed_ad(const char *profile, const char *customer_ref, const char *purpose,
	      unsigned char out[SEALED_AD_MAX], size_t *len);

/* Seal plain[0..plain_len) (at most SEALED_PLAIN_MAX) into out[0..out_cap);
 * the sealed length, plain_len + SEALED_OVERHEAD, in *out_len. */
int sealed_seal(sealed_key *k, const void *ad, size_t ad_len, const void *plain,
		size_t plain_len, unsigned char *out, size_t out_cap, size_t *out_len);

/* Open in[0..in_len) into plain[0..plain_cap) (in_len - SEALED_OVERHEAD bytes;
 * plain is also NUL-terminated when plain_cap leaves room). SEALED_ERR_AUTH
 * when it does not open; then plain holds zeros only. */
int sealed_open(sealed_key *k, const void *ad, size_t ad_len, const unsigned char *in,
		size_t in_len, unsigned char *plain, size_t plain_cap, size_t *plain_len);

/* A static text for an error code: sealing's own for its members,
 * doku_strerror's for any other value. */
const char *sealed_strerror(int err);

#endif
