/* Reply frames. */
#include "reply.h"

#include <errno.h>
#include <stdint.h>

#include "doku/bridge/v1/bridge.pb-c.h"

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
		small.code = DOKU__BRIDGE__V1__CODE__RESOURCE_EXHAUSTED;
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

	r.code = err == CONN_ERR_FLAGS ? DOKU__BRIDGE__V1__CODE__INVALID_ARGUMENT :
					  DOKU__BRIDGE__V1__CODE__RESOURCE_EXHAUSTED;
	r.status_message = (char *)msg;
	r.outcome = DOKU__BRIDGE__V1__OUTCOME__OUTCOME_NOT_DONE;
	return put(c, &r);
}
