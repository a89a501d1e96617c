/* The one reader of DOKU's answer: the HTTP body decoded (tolerantly, see
 * snap_json.h) as the endpoint's response message, and its responseCode and
 * responseMessage.
 *
 * Never fails: a body that is empty, not JSON, not an object, over
 * snap_json's limits or past the arena's limit gives out->msg NULL and
 * have_code false; a body that decodes but whose responseCode is absent, empty
 * or not 7 digits (snap_code_parse) gives have_code false with msg set. Any
 * one of these is the caller's to judge with the HTTP status.
 *
 * response_code / response_message are read through desc's fields named
 * "response_code" and "response_message" (proto names), when desc has them as
 * string fields that are not repeated; otherwise they stay NULL.
 *
 * Ownership: body stays the caller's and is only read. msg and
 * response_message live in arena (until it is reset; never pass msg to
 * protobuf_c_message_free_unpacked). response_code points into out->code:
 * valid as long as out itself, not in a copy of the struct. */
#ifndef DOKU_SNAP_ANSWER_H
#define DOKU_SNAP_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "snap_arena.h"
#include "snap_code.h"

typedef struct snap_answer {
	unsigned http;                /* HTTP status */
	ProtobufCMessage *msg;        /* the decoded body (type: the descriptor given); NULL when
					 empty or unreadable */
	bool have_code;               /* a well-formed responseCode was read */
	snap_code code;               /* valid when have_code */
	const char *response_code;    /* code.text when have_code, else NULL */
	const char *response_message; /* NULL when none (absent or empty) */
} snap_answer;

/* Decode body[0..len) (the HTTP answer's body, http its status) as a message
 * of desc into arena and fill *out (all of it, whatever the body). body may be
 * NULL when len is 0; a NULL desc or arena reads nothing. */
void snap_answer_read(const ProtobufCMessageDescriptor *desc, unsigned http, const char *body,
		      size_t len, snap_arena *arena, snap_answer *out);

#endif
