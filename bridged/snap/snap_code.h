/* SNAP responseCode: 7 digits, HTTP status (3) + service code (2) + case code (2). */
#ifndef DOKU_SNAP_CODE_H
#define DOKU_SNAP_CODE_H

#include <stdbool.h>
#include <stddef.h>

#define SNAP_CODE_LEN 7

typedef struct snap_code {
	int http;      /* 200, 202, 400, 401, 403, 404, 409, 500, 504, ... */
	int service;   /* 0..99, e.g. 54 for debit payment */
	int case_code; /* 0..99 */
	char text[SNAP_CODE_LEN + 1]; /* the 7 digits, NUL-terminated */
} snap_code;

/* Parse exactly 7 ASCII digits (a JSON string's content, or a JSON number's
 * text) into out. 0 or SNAP_ERR_INVALID. */
int snap_code_parse(const char *s, size_t len, snap_code *out);

/* Render http/service/case into out->text; 0 or SNAP_ERR_INVALID if out of range. */
int snap_code_make(int http, int service, int case_code, snap_code *out);

/* 2xx with case 00: the operation happened (202 is "in progress", not success). */
bool snap_code_is_success(const snap_code *c);

#endif
