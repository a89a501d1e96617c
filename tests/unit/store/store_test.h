/* Helpers of the store tests (header-only, static): scratch directories. */
#ifndef DOKU_STORE_TEST_H
#define DOKU_STORE_TEST_H

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define TEST_DIR_MAX 64

/* A new empty directory under /tmp (a real disk here, so fsync is real). */
static inline int test_dir_make(char dir[TEST_DIR_MAX])
{
	strcpy(dir, "/tmp/doku-store-XXXXXX");
	return mkdtemp(dir) != NULL ? 0 : -1;
}

/* Remove dir, its files and its empty subdirectories. */
static inline void test_dir_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) != 0)
			unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

#endif
