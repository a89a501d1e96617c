/* Protected memory for secrets, and secret files read as ssh reads keys. */
#include "secrets.h"
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(SECRET_ERR_MAX >= KEYFILE_ERR_MAX, "a key file's reason fits a secret's error");

#define SLAB_SIZE (64u * 1024u)  /* one mapping shared by the blocks of a size class */
#define CLASS_MIN_SHIFT 6        /* smallest block: 64 bytes */
#define CLASS_COUNT 7            /* 64 .. 4096 bytes */
#define BLOCK_MAX (1u << (CLASS_MIN_SHIFT + CLASS_COUNT - 1))

/* The header of every block; data follows it. */
struct block {
	secret s;
	size_t size;         /* bytes of the block, header included */
	struct block *next;  /* free list (while free) */
};

static struct block *free_list[CLASS_COUNT];
static bool lock_failed;

/* jansson's free: tokens and OTPs pass through its heap while DOKU's answers
 * are parsed, so every block it frees is wiped first. */
static void json_free_wiped(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

int secrets_harden(void)
{
	struct rlimit rl;
	int rc = 0;

	json_set_alloc_funcs(malloc, json_free_wiped);

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		rc = -errno;
	/* systemd's LimitCORE=0 may have done it, and its filter may refuse setrlimit */
	if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0) {
		rl.rlim_cur = 0;
		rl.rlim_max = 0;
		if (setrlimit(RLIMIT_CORE, &rl) != 0 && rc == 0)
			rc = -errno;
	}
	return rc;
}

bool secrets_locked(void)
{
	return !lock_failed;
}

static void *map_protected(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, size, MADV_DONTDUMP);
	(void)madvise(p, size, MADV_DONTFORK);
	if (mlock(p, size) != 0)
		lock_failed = true;
	return p;
}

static size_t page_round(size_t n)
{
	long ps = sysconf(_SC_PAGESIZE);
	size_t page = ps > 0 ? (size_t)ps : 4096u;

	return (n + page - 1) / page * page;
}

static int class_of(size_t size)
{
	for (int c = 0; c < CLASS_COUNT; c++)
		if (size <= (size_t)1 << (CLASS_MIN_SHIFT + c))
			return c;
	return -1;
}

static struct block *block_alloc(size_t size)
{
	int c = class_of(size);
	struct block *b;

	if (c < 0) {
		size_t total = page_round(size);

		b = map_protected(total);
		if (b == NULL)
			return NULL;
		b->size = total;
		return b;
	}
	if (free_list[c] == NULL) {
		size_t bs = (size_t)1 << (CLASS_MIN_SHIFT + c);
		char *slab = map_protected(SLAB_SIZE);

		if (slab == NULL)
			return NULL;
		/* Slabs are never unmapped: they are few and reused. */
		for (size_t off = 0; off + bs <= SLAB_SIZE; off += bs) {
			b = (struct block *)(void *)(slab + off);
			b->size = bs;
			b->next = free_list[c];
			free_list[c] = b;
		}
	}
	b = free_list[c];
	free_list[c] = b->next;
	return b;
}

int secret_new(const void *p, size_t len, secret **out)
{
	struct block *b;

	*out = NULL;
	if (len > SECRET_MAX)
		return -EINVAL;
	b = block_alloc(sizeof(*b) + len + 1);
	if (b == NULL)
		return -ENOMEM;
	b->next = NULL;
	b->s.len = len;
	b->s.data = (unsigned char *)(b + 1);
	if (len > 0)
		memcpy(b->s.data, p, len);
	b->s.data[len] = '\0';
	*out = &b->s;
	return 0;
}

void secret_free(secret *s)
{
	struct block *b;
	size_t size;
	int c;

	if (s == NULL)
		return;
	b = (struct block *)(void *)s;
	size = b->size;
	explicit_bzero(b, size);
	if (size > BLOCK_MAX) {
		(void)munlock(b, size);
		(void)munmap(b, size);
		return;
	}
	c = class_of(size);
	b->size = size;
	b->next = free_list[c];
	free_list[c] = b;
}

int secret_read_file(const char *path, size_t max, bool strip_newline, secret **out,
		     char err[SECRET_ERR_MAX])
{
	secret *s = NULL;
	struct block *b;
	struct stat st;
	size_t got = 0;
	int fd, rc;

	*out = NULL;
	err[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, SECRET_ERR_MAX, "cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	rc = keyfile_check(fd, path, &st, err);
	if (rc != 0)
		goto out;
	if ((uint64_t)st.st_size > max || max > SECRET_MAX) {
		rc = -EFBIG;
		snprintf(err, SECRET_ERR_MAX, "%s is larger than %zu bytes", path, max);
		goto out;
	}
	/* Read straight into protected memory sized by the file. */
	b = block_alloc(sizeof(*b) + (size_t)st.st_size + 1);
	if (b == NULL) {
		rc = -ENOMEM;
		snprintf(err, SECRET_ERR_MAX, "out of memory reading %s", path);
		goto out;
	}
	b->next = NULL;
	b->s.data = (unsigned char *)(b + 1);
	b->s.len = 0;
	s = &b->s;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, s->data + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, SECRET_ERR_MAX, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (strip_newline && got > 0 && s->data[got - 1] == '\n') {
		got--;
		if (got > 0 && s->data[got - 1] == '\r')
			got--;
	}
	s->data[got] = '\0';
	s->len = got;
	if (got == 0) {
		rc = -EINVAL;
		snprintf(err, SECRET_ERR_MAX, "%s is empty", path);
		goto out;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	secret_free(s);
	close(fd);
	return rc;
}
