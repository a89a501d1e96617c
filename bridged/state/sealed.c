/* AES-256-GCM sealing of secrets at rest, and loading of its key. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include "sealed.h"
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CRED_PATH_MAX 4096

struct sealed_key {
	pthread_mutex_t mu; /* guards aes and rng */
	Aes aes;            /* the expanded key */
	WC_RNG rng;         /* nonces */
};

int sealed_key_new(const unsigned char raw[SEALED_KEY_LEN], sealed_key **out)
{
	sealed_key *k;
	bool aes_init = false;
	int rc = SEALED_ERR_CRYPTO;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return SEALED_ERR_NOMEM;
	if (wc_AesInit(&k->aes, NULL, INVALID_DEVID) != 0)
		goto out;
	aes_init = true;
	if (wc_AesGcmSetKey(&k->aes, raw, SEALED_KEY_LEN) != 0)
		goto out;
	if (wc_InitRng(&k->rng) != 0)
		goto out;
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		wc_FreeRng(&k->rng);
		rc = SEALED_ERR_NOMEM;
		goto out;
	}
	*out = k;
	return 0;
out:
	if (aes_init)
		wc_AesFree(&k->aes);
	explicit_bzero(k, sizeof(*k));
	free(k);
	return rc;
}

void sealed_key_free(sealed_key *k)
{
	if (k == NULL)
		return;
	pthread_mutex_destroy(&k->mu);
	wc_FreeRng(&k->rng);
	wc_AesFree(&k->aes);
	explicit_bzero(k, sizeof(*k));
	free(k);
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 32 raw bytes, or 64 hex digits and an optional "\n" / "\r\n", into key. */
static int parse_key(const unsigned char *buf, size_t len, unsigned char key[SEALED_KEY_LEN])
{
	if (len == SEALED_KEY_LEN) {
		memcpy(key, buf, SEALED_KEY_LEN);
		return 0;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len != 2 * SEALED_KEY_LEN)
		return -1;
	for (size_t i = 0; i < SEALED_KEY_LEN; i++) {
		int hi = hex_value(buf[2 * i]), lo = hex_value(buf[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int sealed_key_load_file(const char *path, sealed_key **out, char err[SEALED_ERR_MAX])
{
	unsigned char buf[SEALED_KEY_FILE_MAX + 1];
	unsigned char key[SEALED_KEY_LEN];
	char why[KEYFILE_ERR_MAX];
	struct stat st;
	size_t len = 0;
	int fd = -1, rc = SEALED_ERR_KEYFILE;

	*out = NULL;
	err[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, SEALED_ERR_MAX, "key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (keyfile_check(fd, path, &st, why) != 0) {
		/* the reason names the path; it is cut where the prefix leaves no room */
		snprintf(err, SEALED_ERR_MAX, "key file: %.*s",
			 (int)(SEALED_ERR_MAX - sizeof("key file: ")), why);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, SEALED_ERR_MAX, "key file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf))
			break;
	}
	if (parse_key(buf, len, key) != 0) {
		snprintf(err, SEALED_ERR_MAX,
			 "key file %s: expected 32 bytes, or 64 hex digits (%zu%s bytes found)",
			 path, len > SEALED_KEY_FILE_MAX ? (size_t)SEALED_KEY_FILE_MAX : len,
			 len > SEALED_KEY_FILE_MAX ? "+" : "");
		goto out;
	}
	rc = sealed_key_new(key, out);
	if (rc != 0)
		snprintf(err, SEALED_ERR_MAX, "key file %s: %s", path, sealed_strerror(rc));
out:
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(key, sizeof(key));
	if (fd >= 0)
		close(fd);
	return rc;
}

int sealed_key_load_credential(const char *name, sealed_key **out, char err[SEALED_ERR_MAX])
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[CRED_PATH_MAX];
	int n;

	*out = NULL;
	if (dir == NULL || dir[0] == '\0') {
		snprintf(err, SEALED_ERR_MAX,
			 "credential %s: $CREDENTIALS_DIRECTORY is not set (not run by systemd "
			 "with LoadCredential=?)",
			 name);
		return SEALED_ERR_KEYFILE;
	}
	if (name[0] == '\0' || strchr(name, '/') != NULL) {
		snprintf(err, SEALED_ERR_MAX, "credential name \"%s\" is not a plain name", name);
		return SEALED_ERR_KEYFILE;
	}
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, SEALED_ERR_MAX, "credential %s: path too long", name);
		return SEALED_ERR_KEYFILE;
	}
	return sealed_key_load_file(path, out, err);
}

int sealed_ad(const char *profile, const char *customer_ref, const char *purpose,
	      unsigned char out[SEALED_AD_MAX], size_t *len)
{
	const char *parts[] = { profile, customer_ref, purpose };
	size_t n = 0;

	*len = 0;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t l;

		if (parts[i] == NULL)
			return SEALED_ERR_INVALID;
		l = strlen(parts[i]);
		if (l + 1 > SEALED_AD_MAX - n)
			return SEALED_ERR_TOO_BIG;
		memcpy(out + n, parts[i], l);
		n += l;
		if (i + 1 < sizeof(parts) / sizeof(parts[0]))
			out[n++] = '\0';
	}
	*len = n;
	return 0;
}

int sealed_seal(sealed_key *k, const void *ad, size_t ad_len, const void *plain,
		size_t plain_len, unsigned char *out, size_t out_cap, size_t *out_len)
{
	unsigned char *nonce = out + 1;
	unsigned char *ct = nonce + SEALED_NONCE_LEN;
	int rc = 0;

	*out_len = 0;
	if (k == NULL || out == NULL || (plain == NULL && plain_len > 0) ||
	    (ad == NULL && ad_len > 0))
		return SEALED_ERR_INVALID;
	if (plain_len > SEALED_PLAIN_MAX || ad_len > SEALED_AD_MAX)
		return SEALED_ERR_TOO_BIG;
	if (out_cap < plain_len + SEALED_OVERHEAD)
		return SEALED_ERR_TOO_BIG;
	out[0] = SEALED_VERSION;
	pthread_mutex_lock(&k->mu);
	if (wc_RNG_GenerateBlock(&k->rng, nonce, SEALED_NONCE_LEN) != 0 ||
	    wc_AesGcmEncrypt(&k->aes, ct, plain, (word32)plain_len, nonce, SEALED_NONCE_LEN,
			     ct + plain_len, SEALED_TAG_LEN, ad, (word32)ad_len) != 0)
		rc = SEALED_ERR_CRYPTO;
	pthread_mutex_unlock(&k->mu);
	if (rc != 0) {
		explicit_bzero(out, plain_len + SEALED_OVERHEAD);
		return rc;
	}
	*out_len = plain_len + SEALED_OVERHEAD;
	return 0;
}

int sealed_open(sealed_key *k, const void *ad, size_t ad_len, const unsigned char *in,
		size_t in_len, unsigned char *plain, size_t plain_cap, size_t *plain_len)
{
	const unsigned char *nonce = in + 1;
	const unsigned char *ct = nonce + SEALED_NONCE_LEN;
	size_t n;
	int rc;

	*plain_len = 0;
	if (k == NULL || in == NULL || plain == NULL || (ad == NULL && ad_len > 0))
		return SEALED_ERR_INVALID;
	if (ad_len > SEALED_AD_MAX)
		return SEALED_ERR_TOO_BIG;
	if (in_len < SEALED_OVERHEAD || in[0] != SEALED_VERSION)
		return SEALED_ERR_INVALID;
	n = in_len - SEALED_OVERHEAD;
	if (n > SEALED_PLAIN_MAX || n > plain_cap)
		return SEALED_ERR_TOO_BIG;
	pthread_mutex_lock(&k->mu);
	rc = wc_AesGcmDecrypt(&k->aes, plain, ct, (word32)n, nonce, SEALED_NONCE_LEN, ct + n,
			      SEALED_TAG_LEN, ad, (word32)ad_len);
	pthread_mutex_unlock(&k->mu);
	if (rc != 0) {
		explicit_bzero(plain, plain_cap);
		return rc == AES_GCM_AUTH_E ? SEALED_ERR_AUTH : SEALED_ERR_CRYPTO;
	}
	if (n < plain_cap)
		plain[n] = '\0';
	*plain_len = n;
	return 0;
}

const char *sealed_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case SEALED_ERR_NOMEM:
		return "out of memory";
	case SEALED_ERR_INVALID:
		return "not a sealed value";
	case SEALED_ERR_TOO_BIG:
		return "too big";
	case SEALED_ERR_CRYPTO:
		return "the crypto library failed";
	case SEALED_ERR_AUTH:
		return "does not open: wrong key, or tampered";
	case SEALED_ERR_KEYFILE:
		return "unusable key file";
	default:
		return doku_strerror(err); /* not sealing's: the shared text */
	}
}
