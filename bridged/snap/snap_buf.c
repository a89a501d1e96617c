/* Bounded growable buffer, malloc- or arena-backed. */
#include "snap_buf.h"
#include "snap_err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 64u

void snap_buf_init(snap_buf *b, snap_arena *arena, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->arena = arena;
}

/* Make room for len + extra bytes of content plus the NUL. */
static int buf_reserve(snap_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->max - b->len)
		return SNAP_ERR_TOO_BIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return SNAP_OK;
	cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (b->max < SIZE_MAX && cap > b->max + 1)
		cap = b->max + 1;
	p = b->arena != NULL ? snap_arena_alloc(b->arena, cap) : malloc(cap);
	if (p == NULL)
		return SNAP_ERR_NOMEM;
	if (b->data != NULL) {
		memcpy(p, b->data, b->len + 1);
		if (b->arena == NULL) {
			explicit_bzero(b->data, b->cap);
			free(b->data);
		}
	} else {
		p[0] = '\0';
	}
	b->data = p;
	b->cap = cap;
	return SNAP_OK;
}

int snap_buf_append(snap_buf *b, const void *data, size_t len)
{
	int rc = buf_reserve(b, len);

	if (rc != 0)
		return rc;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return SNAP_OK;
}

int snap_buf_append_str(snap_buf *b, const char *s)
{
	return snap_buf_append(b, s, strlen(s));
}

int snap_buf_printf(snap_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n, rc;

	rc = buf_reserve(b, 0);
	if (rc != 0)
		return rc;
	room = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->data[b->len] = '\0';
		return SNAP_ERR_INVALID;
	}
	if ((size_t)n >= room) {
		b->data[b->len] = '\0';
		rc = buf_reserve(b, (size_t)n);
		if (rc != 0)
			return rc;
		va_start(ap, fmt);
		n = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->data[b->len] = '\0';
			return SNAP_ERR_INVALID;
		}
	}
	b->len += (size_t)n;
	return SNAP_OK;
}

void snap_buf_clear(snap_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void snap_buf_free(snap_buf *b)
{
	if (b->arena == NULL && b->data != NULL) {
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
