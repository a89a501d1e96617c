/* The JSON <-> message invariants checked by the JSON fuzz targets. */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "snap_buf.h"
#include "snap_err.h"
#include "snap_json.h"

/* The JSON of msg, from the arena; NULL when a size cap is reached (not a
 * finding). Any other failure is one: what was decoded must encode. */
static const char *encode(const ProtobufCMessage *msg, unsigned flags, snap_arena *a, size_t *len)
{
	snap_buf b;
	int rc;

	snap_buf_init(&b, a, FUZZ_JSON_MAX);
	rc = snap_json_encode(msg, flags, &b);
	if (rc == SNAP_ERR_NOMEM || rc == SNAP_ERR_TOO_BIG)
		return NULL;
	FUZZ_CHECK(rc == 0, "%s does not encode (flags %u): %s", msg->descriptor->name, flags,
		   snap_strerror(rc));
	*len = b.len;
	return b.data;
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

void fuzz_json_roundtrip(const ProtobufCMessage *msg, unsigned extra_flags, snap_arena *a)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	ProtobufCMessage *again = NULL, *unpacked;
	char err[SNAP_JSON_ERR_MAX];
	const char *json, *text, *json2;
	size_t len = 0, tlen = 0, len2 = 0, packed_len;
	uint8_t *packed;
	int rc;

	FUZZ_CHECK(protobuf_c_message_check(msg), "decoded %s is not a valid message", desc->name);
	json = encode(msg, 0, a, &len);
	text = encode(msg, extra_flags, a, &tlen);
	if (json == NULL || text == NULL)
		return;

	/* the encoding (in every form) is strict JSON of the same message */
	rc = snap_json_decode(desc, text, tlen, SNAP_JSON_STRICT, a, &again, err, sizeof(err));
	if (rc == SNAP_ERR_NOMEM)
		return;
	FUZZ_CHECK(rc == 0, "the encoding of %s does not decode strictly: %s: %s\n%.*s",
		   desc->name, snap_strerror(rc), err, (int)tlen, text);
	json2 = encode(again, 0, a, &len2);
	FUZZ_CHECK(json2 == NULL || same(json, len, json2, len2),
		   "%s changes in a JSON round trip:\n%.*s\n%.*s", desc->name, (int)len, json,
		   (int)len2, json2);

	/* the protobuf packing (what the daemon hands its callers) reads back the same */
	packed_len = protobuf_c_message_get_packed_size(msg);
	packed = snap_arena_alloc(a, packed_len > 0 ? packed_len : 1);
	if (packed == NULL)
		return;
	FUZZ_CHECK(protobuf_c_message_pack(msg, packed) == packed_len, "%s: packed size", desc->name);
	unpacked = protobuf_c_message_unpack(desc, NULL, packed_len, packed);
	FUZZ_CHECK(unpacked != NULL, "the packing of %s does not unpack", desc->name);
	json2 = encode(unpacked, 0, a, &len2);
	protobuf_c_message_free_unpacked(unpacked, NULL);
	FUZZ_CHECK(json2 == NULL || same(json, len, json2, len2),
		   "%s changes in a protobuf round trip:\n%.*s\n%.*s", desc->name, (int)len, json,
		   (int)len2, json2);
}
