/* A growable byte buffer with a mandatory maximum size (after curl's dynbuf).
 *
 * The buffer always keeps a NUL after its content, so data can be used as a C
 * string when the content has no NUL. Memory comes from an arena when one is
 * given (then snap_buf_free only forgets it) or from malloc (then snap_buf_free
 * wipes and frees it). */
#ifndef DOKU_SNAP_BUF_H
#define DOKU_SNAP_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "snap_arena.h"

typedef struct snap_buf {
	char *data;        /* NULL until the first append */
	size_t len;        /* bytes of content */
	size_t cap;        /* bytes allocated */
	size_t max;        /* hard cap on len */
	snap_arena *arena; /* NULL: malloc */
} snap_buf;

void snap_buf_init(snap_buf *b, snap_arena *arena, size_t max);

/* 0, SNAP_ERR_TOO_BIG past max (the buffer is left unchanged), or SNAP_ERR_NOMEM. */
int snap_buf_append(snap_buf *b, const void *data, size_t len);
int snap_buf_append_str(snap_buf *b, const char *s);
int snap_buf_printf(snap_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forget the content, keep the memory. */
void snap_buf_clear(snap_buf *b);

/* Wipe and release (malloc-backed) or forget (arena-backed) the memory. */
void snap_buf_free(snap_buf *b);

#endif
