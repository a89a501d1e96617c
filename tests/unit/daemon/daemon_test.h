/* Helpers of the daemon's unit tests: temporary directories and files. */
#ifndef DOKU_DAEMON_TEST_H
#define DOKU_DAEMON_TEST_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

/* A new private directory under $TMPDIR (or /tmp); path[PATH_MAX]. */
static inline void dt_tmpdir(char *path)
{
	const char *t = getenv("TMPDIR");

	snprintf(path, PATH_MAX, "%s/doku-unit-XXXXXX", t != NULL ? t : "/tmp");
	assert_non_null(mkdtemp(path));
}

/* out[PATH_MAX] = dir "/" name; asserts it fits. */
static inline void dt_join(char *out, const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);

	assert_true(a + 1 + b < PATH_MAX);
	memcpy(out, dir, a);
	out[a] = '/';
	memcpy(out + a + 1, name, b + 1);
}

/* Write dir/name with mode; the full path into out[PATH_MAX] when out is not NULL. */
static inline void dt_write(const char *dir, const char *name, const char *text, mode_t mode,
			    char *out)
{
	char path[PATH_MAX];
	FILE *f;

	dt_join(path, dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	if (out != NULL)
		memcpy(out, path, strlen(path) + 1);
}

/* rm -r of a flat directory. */
static inline void dt_rmdir(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

#endif
