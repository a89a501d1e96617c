/* Internals shared by the files of libdokubridge (not installed). */
#ifndef DOKUBRIDGE_INTERNAL_H
#define DOKUBRIDGE_INTERNAL_H

#include <stdarg.h>

#include "dokubridge.h"

#define DOKUBRIDGE_HIDDEN __attribute__((visibility("hidden")))

/* Fill res (may be NULL) with a local failure; returns -code. */
DOKUBRIDGE_HIDDEN int dokubridge__fail(dokubridge_result *res, dokubridge_code code,
				       dokubridge_outcome outcome, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Copy s into dst[dstsz] (NUL-terminated), cut at a UTF-8 character boundary. */
DOKUBRIDGE_HIDDEN void dokubridge__copy(char *dst, size_t dstsz, const char *s);

/* The method named name (as dokubridge_method_lookup) and its wire path. When
 * no Wallet method matches and name is a full "/pkg.Service/Method" path and
 * allow_unknown is set, *m is NULL and path is name. 0 or -INVALID_ARGUMENT. */
DOKUBRIDGE_HIDDEN int dokubridge__resolve(const char *name, bool allow_unknown,
					  const ProtobufCMethodDescriptor **m,
					  char path[DOKUBRIDGE_METHOD_MAX + 1],
					  dokubridge_result *res);

#endif
