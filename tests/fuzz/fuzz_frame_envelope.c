/* libFuzzer: a client's byte stream as doku-bridged reads it.
 *
 * conn.c and call.c do their decoding inline, around the event loop, so
 * this mirrors their steps with the daemon's own functions and limits:
 * frames are split off the stream with snap_frame_header_read (default cap);
 * each body goes to a per-call arena (call_new's cap), is unpacked as a
 * doku.bridge.v1.Call (call_start), its method looked up in the RPC table,
 * its customer_ref checked, its message unpacked as the method's request and
 * checked as run() does (snap_validate or the row's required fields), and
 * the SNAP body encoded. A truncated last frame is dropped, as at EOF. */
#include <string.h>

#include "call.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "fuzz.h"
#include "methods.h"
#include "snap_err.h"
#include "snap_frame.h"
#include "snap_json.h"
#include "tokens.h"

#define FRAME_CAP SNAP_FRAME_MAX_DEFAULT

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (methods_init() != 0)
		abort();
	return 0;
}

/* run()'s checks of the request message of row m. */
static void check_request(const method *m, const ProtobufCMessage *req, snap_arena *a)
{
	char field[SNAP_FIELD_PATH_MAX];
	snap_buf body;
	int rc;

	(void)methods_string_field(req, m->ref_field);
	if (m->kind == METHOD_SNAP) {
		rc = snap_validate(m->ep, req, field);
		FUZZ_CHECK(rc == 0 || rc == SNAP_ERR_MISSING || rc == SNAP_ERR_FORMAT,
			   "snap_validate: %d", rc);
		if (rc != 0)
			return;
		snap_buf_init(&body, a, (size_t)FRAME_CAP * 2u);
		rc = snap_json_encode(req, 0, &body);
		/* a string that is not UTF-8 is refused, nothing else */
		FUZZ_CHECK(rc == 0 || rc == SNAP_ERR_JSON || rc == SNAP_ERR_NOMEM,
			   "snap_json_encode: %d", rc);
		return;
	}
	for (const char *const *f = m->required; f != NULL && *f != NULL; f++) {
		const ProtobufCFieldDescriptor *fd =
			protobuf_c_message_descriptor_get_field_by_name(m->input, *f);

		FUZZ_CHECK(fd != NULL, "%s: no field %s", m->name, *f);
		(void)methods_string_field(req, fd);
	}
}

/* One frame's body: call_start() and run() up to the tokens. */
static void one_call(const uint8_t *frame, uint32_t len)
{
	Doku__Bridge__V1__Call *env;
	ProtobufCMessage *req;
	const method *m;
	snap_arena a;
	uint8_t *body;

	snap_arena_init(&a, (size_t)FRAME_CAP * 4u + CALL_ARENA_EXTRA);
	body = snap_arena_alloc(&a, len > 0 ? len : 1);
	FUZZ_CHECK(body != NULL, "no arena for a frame under the cap");
	memcpy(body, frame, len);
	env = doku__bridge__v1__call__unpack(&a.pb, len, body);
	if (env == NULL || env->cancel)
		goto out;
	FUZZ_CHECK(env->method != NULL && env->profile != NULL && env->customer_ref != NULL,
		   "unpacked strings are never NULL");
	m = methods_find(env->method, strlen(env->method));
	if (m == NULL)
		goto out;
	if (m->customer && !tokens_ref_valid(env->customer_ref))
		goto out;
	req = protobuf_c_message_unpack(m->input, &a.pb, env->message.len, env->message.data);
	if (req != NULL)
		check_request(m, req, &a);
out:
	snap_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t len;

	while (size >= SNAP_FRAME_HEADER) {
		if (snap_frame_header_read(data, FRAME_CAP, &len) != 0)
			return 0; /* the connection is closed with an error reply */
		data += SNAP_FRAME_HEADER;
		size -= SNAP_FRAME_HEADER;
		if (len > size)
			return 0;
		one_call(data, len);
		data += len;
		size -= len;
	}
	return 0;
}
