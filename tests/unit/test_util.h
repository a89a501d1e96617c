/* Helpers shared by the unit tests (header-only, static). */
#ifndef DOKU_TEST_UTIL_H
#define DOKU_TEST_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define TEST_FILE_MAX (1024u * 1024u)

/* The whole of file dir/name, NUL-terminated; caller frees. */
static inline char *test_read_file(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	char *buf;
	size_t n;
	int k;

	assert_non_null(dir);
	k = snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_true(k > 0 && (size_t)k < sizeof(path));
	f = fopen(path, "rb");
	assert_non_null(f);
	buf = malloc(TEST_FILE_MAX + 1);
	assert_non_null(buf);
	n = fread(buf, 1, TEST_FILE_MAX, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* A file of the shared test vectors ($DOKU_VECTORS). */
static inline char *test_read_vector(const char *name, size_t *len)
{
	return test_read_file(getenv("DOKU_VECTORS"), name, len);
}

/* A fixture of tests/unit/data ($DOKU_SOURCE_DIR/tests/unit/data). */
static inline char *test_read_data(const char *name, size_t *len)
{
	char dir[4096];
	const char *src = getenv("DOKU_SOURCE_DIR");
	int k;

	assert_non_null(src);
	k = snprintf(dir, sizeof(dir), "%s/tests/unit/data", src);
	assert_true(k > 0 && (size_t)k < sizeof(dir));
	return test_read_file(dir, name, len);
}

#endif
