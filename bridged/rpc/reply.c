/* The code and outcome of an exchange with DOKU; Reply frames. */
#include "reply.h"

#include <errno.h>
#include <stdint.h>

#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku_err.h"
#include "upstream.h"

#define C(x) DOKU__BRIDGE__V1__CODE__##x
#define O(x) DOKU__BRIDGE__V1__OUTCOME__OUTCOME_##x

/* ---- the code and outcome -------------------------------------------------------------------- */

int reply_code_for_http(int http)
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

void reply_outcome(const struct reply_exchange *in, struct reply_verdict *out)
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
	out->code = reply_code_for_http(http);
	out->outcome = http >= 400 && http < 500 ? O(NOT_DONE) : O(UNKNOWN);
}

const char *reply_code_name(int code)
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

const char *reply_outcome_name(int outcome)
{
	switch (outcome) {
	case O(DONE): return "DONE";
	case O(NOT_DONE): return "NOT_DONE";
	case O(UNKNOWN): return "UNKNOWN";
	default: return "-";
	}
}

/* ---- the Reply frame ------------------------------------------------------------------------- */

static char *str(const char *s)
{
	return (char *)(s != NULL ? s : "");
}

static int put(conn *c, const Doku__Bridge__V1__Reply *r)
{
	Doku__Bridge__V1__Reply small;
	size_t n = doku__bridge__v1__reply__get_packed_size(r);
	uint8_t *p;

	if (n > conn_max_frame(c)) {
		small = *r;
		small.message.data = NULL;
		small.message.len = 0;
		small.code = C(RESOURCE_EXHAUSTED);
		small.status_message = REPLY_TOO_BIG;
		r = &small;
		n = doku__bridge__v1__reply__get_packed_size(r);
		if (n > conn_max_frame(c))
			return -E2BIG;
	}
	p = conn_frame_reserve(c, n);
	if (p == NULL)
		return -EPIPE;
	doku__bridge__v1__reply__pack(r, p);
	conn_frame_commit(c, n);
	return 0;
}

void reply_message(const reply_facts *f, snap_arena *arena, size_t cap, ProtobufCBinaryData *msg,
		   bool *too_big)
{
	size_t n;
	uint8_t *p;

	msg->data = NULL;
	msg->len = 0;
	*too_big = false;
	if (f->resp == NULL)
		return;
	n = protobuf_c_message_get_packed_size(f->resp);
	if (n > cap) {
		*too_big = true;
		return;
	}
	p = snap_arena_alloc(arena, n > 0 ? n : 1);
	if (p == NULL)
		return;
	protobuf_c_message_pack(f->resp, p);
	msg->data = p;
	msg->len = n;
}

int reply_send(conn *c, const reply_facts *f, snap_arena *arena)
{
	bool too_big;

	Doku__Bridge__V1__Reply r = DOKU__BRIDGE__V1__REPLY__INIT;

	r.id = f->id;
	r.code = f->code;
	r.status_message = str(f->status);
	r.http_status = f->http;
	r.response_code = str(f->response_code);
	r.response_message = str(f->response_message);
	r.external_id = str(f->external_id);
	r.partner_reference_no = str(f->partner_reference_no);
	r.outcome = f->outcome;
	/* a message over the cap makes the whole Reply too big: put() says so */
	reply_message(f, arena, SIZE_MAX, &r.message, &too_big);
	return put(c, &r);
}

int reply_stream_error(conn *c, enum conn_error err, const char *msg)
{
	Doku__Bridge__V1__Reply r = DOKU__BRIDGE__V1__REPLY__INIT;

	r.code = err == CONN_ERR_FLAGS ? C(INVALID_ARGUMENT) : C(RESOURCE_EXHAUSTED);
	r.status_message = (char *)msg;
	r.outcome = O(NOT_DONE);
	return put(c, &r);
}
