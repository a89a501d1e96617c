/* SNAP answers and transport failures -> gRPC code + outcome. */
#include "outcome.h"

#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku_err.h"
#include "upstream.h"

#define C(x) DOKU__BRIDGE__V1__CODE__##x
#define O(x) DOKU__BRIDGE__V1__OUTCOME__OUTCOME_##x

int outcome_code_for_http(int http)
{
	switch (http) {
	case 400: return C(INVALID_ARGUMENT);
	case 401: return C(UNAUTHENTICATED);
	case 403: return C(FAILED_PRECONDITION);
	case 404: return C(NOT_FOUND);
	case 409: return C(ALREADY_EXISTS);
	case 429: return C(RESOURCE_EXHAUSTED);
	case 500: return C(INTERNAL);
	case 504: return C(DEADLINE_EXCEEDED);
	default: break;
	}
	if (http >= 200 && http < 300)
		return C(OK);
	if (http >= 400 && http < 500)
		return C(FAILED_PRECONDITION);
	if (http >= 500 && http < 600)
		return C(UNAVAILABLE);
	return C(UNKNOWN);
}

void outcome_map(const struct outcome_in *in, struct outcome_out *out)
{
	int http;

	switch (in->transport) { /* an enum up_status: values of doku_err.h */
	case DOKU_OK:
		break;
	case DOKU_ERR_CANCELLED:
		out->code = C(CANCELLED);
		out->outcome = in->sent ? O(UNKNOWN) : O(NOT_DONE);
		return;
	case DOKU_ERR_TIMEOUT:
		out->code = C(DEADLINE_EXCEEDED);
		out->outcome = in->sent ? O(UNKNOWN) : O(NOT_DONE);
		return;
	case DOKU_ERR_TOO_BIG:
		out->code = C(INTERNAL);
		out->outcome = O(UNKNOWN);
		return;
	case DOKU_ERR_INTERNAL:
		out->code = C(INTERNAL);
		out->outcome = O(NOT_DONE);
		return;
	default: /* DOKU_ERR_CONNECT, DOKU_ERR_IO */
		out->code = C(UNAVAILABLE);
		out->outcome = in->sent ? O(UNKNOWN) : O(NOT_DONE);
		return;
	}
	if (in->rc != NULL && snap_code_is_success(in->rc)) {
		out->code = C(OK);
		out->outcome = O(DONE);
		return;
	}
	http = in->rc != NULL ? in->rc->http : (int)in->http;
	if (http >= 200 && http < 300 && in->rc == NULL) {
		/* an HTTP success without a readable responseCode */
		out->code = C(UNKNOWN);
		out->outcome = O(UNKNOWN);
		return;
	}
	out->code = outcome_code_for_http(http);
	out->outcome = http >= 400 && http < 500 ? O(NOT_DONE) : O(UNKNOWN);
}

const char *outcome_code_name(int code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};

	if (code < 0 || code >= (int)(sizeof(names) / sizeof(names[0])))
		return "?";
	return names[code];
}

const char *outcome_name(int outcome)
{
	switch (outcome) {
	case O(DONE): return "DONE";
	case O(NOT_DONE): return "NOT_DONE";
	case O(UNKNOWN): return "UNKNOWN";
	default: return "-";
	}
}
