/* sealed.c: AES-256-GCM sealing, tamper detection, key files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sealed.h"
#include "store_test.h"

static const unsigned char key1[SEALED_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[SEALED_KEY_LEN] = "fedcba9876543210fedcba9876543210";

struct fx {
	sealed_key *k1, *k2;
	unsigned char ad[SEALED_AD_MAX];
	size_t ad_len;
	char dir[TEST_DIR_MAX];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(sealed_key_new(key1, &f->k1), 0);
	assert_int_equal(sealed_key_new(key2, &f->k2), 0);
	assert_int_equal(sealed_ad("default", "cust-1", "access", f->ad, &f->ad_len), 0);
	assert_int_equal(test_dir_make(f->dir), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	test_dir_remove(f->dir);
	sealed_key_free(f->k1);
	sealed_key_free(f->k2);
	free(f);
	return 0;
}

static void test_round_trip(void **state)
{
	struct fx *f = *state;
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 1000, SEALED_PLAIN_MAX };
	unsigned char *plain = malloc(SEALED_PLAIN_MAX), *sealed = malloc(SEALED_PLAIN_MAX + 64);
	unsigned char *back = malloc(SEALED_PLAIN_MAX + 1);

	assert_non_null(plain);
	assert_non_null(sealed);
	assert_non_null(back);
	for (size_t i = 0; i < SEALED_PLAIN_MAX; i++)
		plain[i] = (unsigned char)(i * 7 + 3);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = 0, m = 0;

		assert_int_equal(sealed_seal(f->k1, f->ad, f->ad_len, plain, sizes[i], sealed,
					     SEALED_PLAIN_MAX + 64, &n),
				 0);
		assert_int_equal(n, sizes[i] + SEALED_OVERHEAD);
		assert_int_equal(sealed[0], SEALED_VERSION);
		if (sizes[i] >= 16) /* the ciphertext is not the plaintext */
			assert_memory_not_equal(sealed + 1 + SEALED_NONCE_LEN, plain, 16);
		assert_int_equal(sealed_open(f->k1, f->ad, f->ad_len, sealed, n, back,
					     SEALED_PLAIN_MAX + 1, &m),
				 0);
		assert_int_equal(m, sizes[i]);
		assert_memory_equal(back, plain, m);
		assert_int_equal(back[m], '\0');
	}
	free(plain);
	free(sealed);
	free(back);
}

static void test_nonce_fresh(void **state)
{
	struct fx *f = *state;
	unsigned char a[64], b[64];
	size_t na, nb;

	assert_int_equal(sealed_seal(f->k1, f->ad, f->ad_len, "token", 5, a, sizeof(a), &na), 0);
	assert_int_equal(sealed_seal(f->k1, f->ad, f->ad_len, "token", 5, b, sizeof(b), &nb), 0);
	assert_int_equal(na, nb);
	assert_memory_not_equal(a + 1, b + 1, SEALED_NONCE_LEN);
	assert_memory_not_equal(a, b, na);
}

/* Open must fail with want and leave nothing but zeros in the output. */
static void expect_refused(sealed_key *k, const void *ad, size_t ad_len,
			   const unsigned char *in, size_t n, int want)
{
	unsigned char out[256];
	size_t m = 99;

	memset(out, 0x5a, sizeof(out));
	assert_int_equal(sealed_open(k, ad, ad_len, in, n, out, sizeof(out), &m), want);
	assert_int_equal(m, 0);
	if (want == SEALED_ERR_AUTH)
		for (size_t i = 0; i < sizeof(out); i++)
			assert_int_equal(out[i], 0);
}

static void test_wrong_key(void **state)
{
	struct fx *f = *state;
	unsigned char s[128];
	size_t n;

	assert_int_equal(sealed_seal(f->k1, f->ad, f->ad_len, "secret token", 12, s, sizeof(s), &n),
			 0);
	expect_refused(f->k2, f->ad, f->ad_len, s, n, SEALED_ERR_AUTH);
}

static void test_tampered(void **state)
{
	struct fx *f = *state;
	const char *plain = "a customer access token";
	size_t plen = strlen(plain), n;
	unsigned char s[128], t[128];
	/* one byte in each part: nonce, ciphertext (first, last), tag (first, last) */
	const size_t at[] = { 1, SEALED_NONCE_LEN, 1 + SEALED_NONCE_LEN,
			      SEALED_NONCE_LEN + plen, 1 + SEALED_NONCE_LEN + plen,
			      SEALED_OVERHEAD + plen - 1 };

	assert_int_equal(sealed_seal(f->k1, f->ad, f->ad_len, plain, plen, s, sizeof(s), &n), 0);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			memcpy(t, s, n);
			t[at[i]] ^= (unsigned char)(1u << bit);
			expect_refused(f->k1, f->ad, f->ad_len, t, n, SEALED_ERR_AUTH);
		}
	}
	/* the version byte */
	memcpy(t, s, n);
	t[0] = 0x02;
	expect_refused(f->k1, f->ad, f->ad_len, t, n, SEALED_ERR_INVALID);
	/* cut short: one byte less, and less than the overhead */
	expect_refused(f->k1, f->ad, f->ad_len, s, n - 1, SEALED_ERR_AUTH);
	expect_refused(f->k1, f->ad, f->ad_len, s, SEALED_OVERHEAD - 1, SEALED_ERR_INVALID);
	/* one byte more */
	memcpy(t, s, n);
	t[n] = 0;
	expect_refused(f->k1, f->ad, f->ad_len, t, n + 1, SEALED_ERR_AUTH);
}

static void test_ad_bound(void **state)
{
	struct fx *f = *state;
	const char *other[][3] = {
		{ "default", "cust-2", "access" },  /* another customer */
		{ "other", "cust-1", "access" },    /* another profile */
		{ "default", "cust-1", "refresh" }, /* another column */
		{ "default", "cust-", "1access" },  /* the same bytes split elsewhere */
	};
	unsigned char s[128], ad[SEALED_AD_MAX];
	size_t n, ad_len;

	assert_int_equal(sealed_seal(f->k1, f->ad, f->ad_len, "tok", 3, s, sizeof(s), &n), 0);
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		assert_int_equal(sealed_ad(other[i][0], other[i][1], other[i][2], ad, &ad_len), 0);
		expect_refused(f->k1, ad, ad_len, s, n, SEALED_ERR_AUTH);
	}
	expect_refused(f->k1, NULL, 0, s, n, SEALED_ERR_AUTH);
}

static void test_ad_layout(void **state)
{
	unsigned char ad[SEALED_AD_MAX];
	char big[SEALED_AD_MAX];
	size_t n;

	(void)state;
	assert_int_equal(sealed_ad("p", "ref", "access", ad, &n), 0);
	assert_int_equal(n, 12);
	assert_memory_equal(ad, "p\0ref\0access", 12);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(sealed_ad(big, "r", "p", ad, &n), SEALED_ERR_TOO_BIG);
	assert_int_equal(sealed_ad(NULL, "r", "p", ad, &n), SEALED_ERR_INVALID);
}

static void test_limits(void **state)
{
	struct fx *f = *state;
	unsigned char s[64], out[8];
	size_t n;

	assert_int_equal(sealed_seal(f->k1, f->ad, f->ad_len, "0123456789", 10, s,
				     10 + SEALED_OVERHEAD - 1, &n),
			 SEALED_ERR_TOO_BIG);
	assert_int_equal(sealed_seal(f->k1, f->ad, f->ad_len, s, SEALED_PLAIN_MAX + 1, s,
				     sizeof(s), &n),
			 SEALED_ERR_TOO_BIG);
	assert_int_equal(sealed_seal(f->k1, f->ad, f->ad_len, "0123456789", 10, s, sizeof(s), &n),
			 0);
	/* an output buffer too small to open into */
	assert_int_equal(sealed_open(f->k1, f->ad, f->ad_len, s, n, out, sizeof(out), &n),
			 SEALED_ERR_TOO_BIG);
}

/* Write a key file of content[0..len) with mode; its path in path. */
static void key_file(struct fx *f, const char *name, const void *content, size_t len, mode_t mode,
		     char path[256])
{
	int fd;

	snprintf(path, 256, "%s/%s", f->dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

/* A key loaded from a file must open what key1 sealed. */
static void expect_key1(struct fx *f, sealed_key *k)
{
	unsigned char s[64], out[64];
	size_t n, m;

	assert_non_null(k);
	assert_int_equal(sealed_seal(f->k1, f->ad, f->ad_len, "tok", 3, s, sizeof(s), &n), 0);
	assert_int_equal(sealed_open(k, f->ad, f->ad_len, s, n, out, sizeof(out), &m), 0);
	assert_int_equal(m, 3);
}

static void test_key_file_forms(void **state)
{
	struct fx *f = *state;
	char hex[2 * SEALED_KEY_LEN + 3], path[256], err[SEALED_ERR_MAX];
	sealed_key *k = NULL;

	key_file(f, "raw", key1, SEALED_KEY_LEN, 0600, path);
	assert_int_equal(sealed_key_load_file(path, &k, err), 0);
	expect_key1(f, k);
	sealed_key_free(k);

	for (size_t i = 0; i < SEALED_KEY_LEN; i++)
		sprintf(hex + 2 * i, "%02X", key1[i]);
	key_file(f, "hex", hex, 2 * SEALED_KEY_LEN, 0400, path);
	assert_int_equal(sealed_key_load_file(path, &k, err), 0);
	expect_key1(f, k);
	sealed_key_free(k);

	strcpy(hex + 2 * SEALED_KEY_LEN, "\r\n");
	key_file(f, "hex-crlf", hex, 2 * SEALED_KEY_LEN + 2, 0600, path);
	assert_int_equal(sealed_key_load_file(path, &k, err), 0);
	expect_key1(f, k);
	sealed_key_free(k);
}

static void expect_keyfile_refused(const char *path, const char *why)
{
	char err[SEALED_ERR_MAX];
	sealed_key *k = (sealed_key *)1;

	assert_int_equal(sealed_key_load_file(path, &k, err), SEALED_ERR_KEYFILE);
	assert_null(k);
	if (strstr(err, why) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, why);
}

static void test_key_file_refused(void **state)
{
	struct fx *f = *state;
	char path[256], hex[2 * SEALED_KEY_LEN + 1];

	key_file(f, "group", key1, SEALED_KEY_LEN, 0640, path);
	expect_keyfile_refused(path, "too open");
	key_file(f, "other", key1, SEALED_KEY_LEN, 0604, path);
	expect_keyfile_refused(path, "too open");
	key_file(f, "group-exec", key1, SEALED_KEY_LEN, 0610, path);
	expect_keyfile_refused(path, "too open");
	key_file(f, "short", key1, SEALED_KEY_LEN - 1, 0600, path);
	expect_keyfile_refused(path, "expected 32 bytes");
	key_file(f, "long", "0123456789abcdef0123456789abcdef!", SEALED_KEY_LEN + 1, 0600, path);
	expect_keyfile_refused(path, "expected 32 bytes");
	memset(hex, 'g', sizeof(hex) - 1);
	key_file(f, "badhex", hex, 2 * SEALED_KEY_LEN, 0600, path);
	expect_keyfile_refused(path, "64 hex digits");
	snprintf(path, sizeof(path), "%s/missing", f->dir);
	expect_keyfile_refused(path, "No such file");
	expect_keyfile_refused(f->dir, "not a regular file");
	if (geteuid() == 0) { /* only root can give a file away */
		key_file(f, "foreign", key1, SEALED_KEY_LEN, 0600, path);
		assert_int_equal(chown(path, 4242, 4242), 0);
		expect_keyfile_refused(path, "owned by uid 4242");
	}
}

static void test_credential(void **state)
{
	struct fx *f = *state;
	char path[256], err[SEALED_ERR_MAX];
	sealed_key *k = NULL;

	key_file(f, "state-key", key1, SEALED_KEY_LEN, 0400, path);
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(sealed_key_load_credential("state-key", &k, err), SEALED_ERR_KEYFILE);
	assert_non_null(strstr(err, "CREDENTIALS_DIRECTORY"));
	setenv("CREDENTIALS_DIRECTORY", f->dir, 1);
	assert_int_equal(sealed_key_load_credential("state-key", &k, err), 0);
	expect_key1(f, k);
	sealed_key_free(k);
	assert_int_equal(sealed_key_load_credential("../state-key", &k, err), SEALED_ERR_KEYFILE);
	assert_null(k);
	unsetenv("CREDENTIALS_DIRECTORY");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_fresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ad_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ad_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credential, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
