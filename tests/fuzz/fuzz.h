/* Helpers shared by the libFuzzer targets of doku-bridge. */
#ifndef DOKU_FUZZ_H
#define DOKU_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <protobuf-c/protobuf-c.h>

#include "snap_arena.h"

/* A fuzz target's entry points (libFuzzer calls them; no header declares them). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: a violation is a finding, so stop
 * (libFuzzer saves the input as a crash). Not assert(): it must survive NDEBUG. */
#define FUZZ_CHECK(cond, ...)                                                           \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d): ", #cond,       \
				__FILE__, __LINE__);                                    \
			fprintf(stderr, __VA_ARGS__);                                   \
			fputc('\n', stderr);                                            \
			abort();                                                        \
		}                                                                       \
	} while (0)

/* Arena cap of one decoded input (as the daemon's per-call arena: generous
 * but bounded, so that a failing allocation is a refusal, not an OOM). */
#define FUZZ_ARENA_LIMIT (16u * 1024u * 1024u)
#define FUZZ_JSON_MAX (4u * 1024u * 1024u)

/* The invariants of a message decoded from JSON (msg, of the arena a):
 *  - it is a well-formed protobuf-c message (protobuf_c_message_check);
 *  - its JSON encoding (compact, and with extra_flags: pretty and/or
 *    defaults) decodes again in strict mode and encodes back to the same
 *    compact JSON;
 *  - its protobuf packing unpacks to a message with the same JSON.
 * Aborts on a violation. */
void fuzz_json_roundtrip(const ProtobufCMessage *msg, unsigned extra_flags, snap_arena *a);

#endif
