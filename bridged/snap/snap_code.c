/* SNAP responseCode: HTTP status (3) + service code (2) + case code (2). */
#include "snap_code.h"
#include "snap_err.h"

#define HTTP_MIN 100
#define HTTP_MAX 599

int snap_code_parse(const char *s, size_t len, snap_code *out)
{
	int v[SNAP_CODE_LEN];

	if (s == NULL || len != SNAP_CODE_LEN)
		return SNAP_ERR_INVALID;
	for (size_t i = 0; i < SNAP_CODE_LEN; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SNAP_ERR_INVALID;
		v[i] = s[i] - '0';
	}
	return snap_code_make(v[0] * 100 + v[1] * 10 + v[2], v[3] * 10 + v[4],
			      v[5] * 10 + v[6], out);
}

int snap_code_make(int http, int service, int case_code, snap_code *out)
{
	if (http < HTTP_MIN || http > HTTP_MAX || service < 0 || service > 99 ||
	    case_code < 0 || case_code > 99)
		return SNAP_ERR_INVALID;
	out->http = http;
	out->service = service;
	out->case_code = case_code;
	out->text[0] = (char)('0' + http / 100);
	out->text[1] = (char)('0' + http / 10 % 10);
	out->text[2] = (char)('0' + http % 10);
	out->text[3] = (char)('0' + service / 10);
	out->text[4] = (char)('0' + service % 10);
	out->text[5] = (char)('0' + case_code / 10);
	out->text[6] = (char)('0' + case_code % 10);
	out->text[7] = '\0';
	return SNAP_OK;
}

bool snap_code_is_success(const snap_code *c)
{
	return c->http >= 200 && c->http <= 299 && c->http != 202 && c->case_code == 0;
}
