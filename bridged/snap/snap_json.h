/* The generic mapping between protobuf-c messages and JSON, driven by the
 * descriptors: no per-message code.
 *
 * Names: a field's JSON name is the lowerCamelCase of its proto name
 * (partner_reference_no -> partnerReferenceNo; a name without '_' is kept).
 * Order: fields are written in field-number order, which wallet.proto makes
 * DOKU's order.
 *
 * Encoding writes the compact form of snap-conventions.md: no whitespace,
 * '/' not escaped, non-ASCII as raw UTF-8, '<' '>' '&' as is; only '"', '\\'
 * and control characters are escaped. Unset and default fields (empty
 * strings, absent messages, empty repeated fields, 0, false) are omitted.
 * 64-bit integers are written as strings (proto3 JSON), enums by name, bytes
 * as base64. Strings that are not valid UTF-8 are refused (SNAP_ERR_JSON).
 *
 * Decoding (tolerant, for DOKU's answers): keys match JSON names ignoring
 * ASCII case ("ReferenceNo" fills reference_no); a number where a string is
 * expected is kept as its shortest round-trip text (1095086.98 ->
 * "1095086.98"; 17139626343 -> "17139626343"); a string where a number or
 * bool is expected is parsed; a string where a message is expected is parsed
 * as JSON if it holds an object and is ignored otherwise; an object where a
 * list is expected is one element; a list where one message is expected
 * gives its first element; null is absent; keys that fit no field, and
 * values that cannot be placed, are ignored. With SNAP_JSON_STRICT (for
 * input typed by people, e.g. dokuctl), an unknown key or a value of the
 * wrong kind is an error naming the key instead.
 *
 * Limits: input over SNAP_JSON_MAX_INPUT bytes or nested deeper than
 * SNAP_JSON_MAX_DEPTH is refused; invalid UTF-8 and NUL bytes are refused. */
#ifndef DOKU_SNAP_JSON_H
#define DOKU_SNAP_JSON_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "snap_arena.h"
#include "snap_buf.h"

#define SNAP_JSON_MAX_INPUT (4u * 1024u * 1024u)
#define SNAP_JSON_MAX_DEPTH 32
#define SNAP_JSON_ERR_MAX 160 /* size of an error text buffer */
#define SNAP_JSON_NAME_MAX 64 /* longest JSON field name */

enum snap_json_flags {
	SNAP_JSON_PRETTY = 1u << 0,        /* encode: two-space indentation (for people) */
	SNAP_JSON_EMIT_DEFAULTS = 1u << 1, /* encode: write default-valued scalar fields too */
	SNAP_JSON_STRICT = 1u << 2,        /* decode: unknown keys and wrong kinds are errors */
	SNAP_JSON_GENERAL = 1u << 3,       /* decode: never the fast path for plain answers (the
					      tests and the fuzzer compare both: same result) */
};

/* Append the JSON of msg to out. 0, SNAP_ERR_TOO_BIG (out's max reached),
 * SNAP_ERR_NOMEM or SNAP_ERR_JSON (a string that is not UTF-8). */
int snap_json_encode(const ProtobufCMessage *msg, unsigned flags, snap_buf *out);

/* Parse json[0..len) (a JSON object) into a new message of type desc, every
 * byte of it allocated from arena (it lives until the arena is reset; never
 * pass it to protobuf_c_message_free_unpacked). On error *out is NULL and,
 * when err is not NULL, err holds a one-line reason naming the key (at most
 * errlen bytes with the NUL). 0, SNAP_ERR_JSON, SNAP_ERR_TOO_BIG or SNAP_ERR_NOMEM. */
int snap_json_decode(const ProtobufCMessageDescriptor *desc, const char *json,
		     size_t len, unsigned flags, snap_arena *arena,
		     ProtobufCMessage **out, char *err, size_t errlen);

/* The JSON name of a field into out[outsz] (NUL-terminated). 0 or SNAP_ERR_TOO_BIG. */
int snap_json_field_name(const ProtobufCFieldDescriptor *field, char *out, size_t outsz);

/* Whether field of msg holds a value the encoder writes without
 * SNAP_JSON_EMIT_DEFAULTS: a non-empty string or bytes, a non-zero number,
 * true, a set message, a non-empty repeated field, a set oneof member or a
 * set optional. Shared with snap_validate's "present and non-empty". */
int snap_json_field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field);

#endif
