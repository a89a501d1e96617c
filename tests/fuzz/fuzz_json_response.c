/* libFuzzer: DOKU's answers through the tolerant JSON decoder, as the daemon
 * maps them (snap_json.h), and the request bodies through snap_validate.
 *
 * Input: one byte, then the JSON. The byte's low 5 bits pick the row (a
 * snap_endpoints row, or past them the test message with every field type),
 * its high bits the extra encoder flags of the round trip (pretty, defaults).
 * Every message that decodes must satisfy fuzz_json_roundtrip. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "snap_endpoint.h"
#include "snap_err.h"
#include "snap_json.h"

#ifdef DOKU_FUZZ_TEST_TYPES
#include "doku/test/v1/types.pb-c.h"
#endif

#define ROW_BITS 5u
#define ROW_MASK ((1u << ROW_BITS) - 1u)

/* The general path alone (SNAP_JSON_GENERAL) gives what the decoder gave
 * (its fast path, when it took the text): the same code, the same bytes. */
static void same_as_general(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
			    int rc, const ProtobufCMessage *msg)
{
	ProtobufCMessage *g = NULL;
	snap_arena b;
	int rg;

	snap_arena_init(&b, FUZZ_ARENA_LIMIT);
	rg = snap_json_decode(desc, json, len, SNAP_JSON_GENERAL, &b, &g, NULL, 0);
	FUZZ_CHECK(rg == rc, "fast path %d, general path %d", rc, rg);
	if (msg != NULL && g != NULL) {
		size_t n = protobuf_c_message_get_packed_size(msg);
		uint8_t *p;

		FUZZ_CHECK(protobuf_c_message_get_packed_size(g) == n, "packed sizes differ");
		p = malloc(2 * n + 2);
		FUZZ_CHECK(p != NULL, "out of memory");
		protobuf_c_message_pack(msg, p);
		protobuf_c_message_pack(g, p + n + 1);
		FUZZ_CHECK(memcmp(p, p + n + 1, n) == 0, "the two paths' messages differ");
		free(p);
	}
	snap_arena_free(&b);
}

static void decode_and_check(const ProtobufCMessageDescriptor *desc, const snap_endpoint *ep,
			     const char *json, size_t len, unsigned extra_flags)
{
	char err[SNAP_JSON_ERR_MAX], field[SNAP_FIELD_PATH_MAX];
	ProtobufCMessage *msg = NULL;
	snap_arena a;
	int rc, decoded;

	snap_arena_init(&a, FUZZ_ARENA_LIMIT);
	rc = snap_json_decode(desc, json, len, 0, &a, &msg, err, sizeof(err));
	decoded = rc;
	FUZZ_CHECK((rc == 0) == (msg != NULL), "result %d with message %p", rc, (void *)msg);
	FUZZ_CHECK(rc == 0 || rc == SNAP_ERR_JSON || rc == SNAP_ERR_TOO_BIG || rc == SNAP_ERR_NOMEM,
		   "unexpected result %d", rc);
	FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "error text not terminated");
	if (msg != NULL) {
		if (ep != NULL) {
			rc = snap_validate(ep, msg, field);
			FUZZ_CHECK(memchr(field, '\0', sizeof(field)) != NULL, "path not terminated");
			FUZZ_CHECK(rc == 0 || rc == SNAP_ERR_MISSING || rc == SNAP_ERR_FORMAT ||
					   rc == SNAP_ERR_INVALID,
				   "snap_validate: %d", rc);
		}
		fuzz_json_roundtrip(msg, extra_flags, &a);
	}
	same_as_general(desc, json, len, decoded, msg);
	snap_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned row, flags;
	const char *json = (const char *)data + 1;

	if (size < 1)
		return 0;
	row = (data[0] & ROW_MASK) % (snap_endpoint_count + 1u);
	flags = 0;
	if (data[0] & 0x20u)
		flags |= SNAP_JSON_PRETTY;
	if (data[0] & 0x40u)
		flags |= SNAP_JSON_EMIT_DEFAULTS;
	if (row < snap_endpoint_count) {
		const snap_endpoint *ep = &snap_endpoints[row];

		decode_and_check(ep->response, NULL, json, size - 1, flags);
		decode_and_check(ep->request, ep, json, size - 1, flags);
	} else {
#ifdef DOKU_FUZZ_TEST_TYPES
		decode_and_check(&doku__test__v1__all_types__descriptor, NULL, json, size - 1, flags);
#endif
	}
	return 0;
}
