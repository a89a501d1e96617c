/* Bounded text: formatting into a fixed buffer where cutting a long text
 * (a path, DOKU's message) is the intended behaviour, not an error. */
#ifndef DOKU_BASE_TEXT_H
#define DOKU_BASE_TEXT_H

#include <stddef.h>

/* snprintf into out[cap] (cap > 0), always NUL-terminated, cut when longer. */
void text_printf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
