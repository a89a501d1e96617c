/* DOKU's answers: the body decoded, responseCode and responseMessage read. */
#include "snap_answer.h"
#include "snap_json.h"

#include <stdint.h>
#include <string.h>

/* The value of msg's string field called name (not repeated), NULL when desc
 * has no such field or the value is empty (or another member of its oneof is
 * set). */
static const char *string_field(const ProtobufCMessage *msg, const char *name)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
	const char *s;

	if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
	    *(const uint32_t *)(const void *)((const char *)msg + f->quantifier_offset) != f->id)
		return NULL;
	s = *(const char *const *)(const void *)((const char *)msg + f->offset);
	return s != NULL && s[0] != '\0' ? s : NULL;
}

void snap_answer_read(const ProtobufCMessageDescriptor *desc, unsigned http, const char *body,
		      size_t len, snap_arena *arena, snap_answer *out)
{
	ProtobufCMessage *msg = NULL;
	const char *code;
	snap_code c;

	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	out->http = http;
	if (desc == NULL || arena == NULL || body == NULL || len == 0)
		return;
	if (snap_json_decode(desc, body, len, 0, arena, &msg, NULL, 0) != 0 || msg == NULL)
		return;
	out->msg = msg;
	code = string_field(msg, "response_code");
	if (code != NULL && snap_code_parse(code, strlen(code), &c) == 0) {
		out->code = c;
		out->have_code = true;
		out->response_code = out->code.text;
	}
	out->response_message = string_field(msg, "response_message");
}
