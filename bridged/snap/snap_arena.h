/* A per-call memory arena: many small allocations, freed (and wiped) in one go.
 *
 * Every byte handed out counts against a hard limit fixed at init; an
 * allocation past it fails (returns NULL) instead of growing without bound.
 * Memory is wiped with explicit_bzero when the arena is reset or freed, since
 * request bodies may hold OTPs and tokens. Not thread-safe: one owner. */
#ifndef DOKU_SNAP_ARENA_H
#define DOKU_SNAP_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#define SNAP_ARENA_CHUNK 4096u /* default chunk size; larger requests get their own chunk */

struct snap_arena_chunk;

typedef struct snap_arena {
	struct snap_arena_chunk *head; /* newest chunk first */
	size_t used;                   /* bytes of chunks held, headers included */
	size_t limit;                  /* hard cap on used */
	ProtobufCAllocator pb;         /* protobuf-c view of this arena (free is a no-op) */
} snap_arena;

/* Initialise an empty arena that will hold at most limit bytes. Allocates nothing. */
void snap_arena_init(snap_arena *a, size_t limit);

/* size bytes aligned for any type; NULL when the limit is reached or malloc fails.
 * The memory lives until snap_arena_reset/free. */
void *snap_arena_alloc(snap_arena *a, size_t size);

/* Copy of s[0..len) with a terminating NUL, from the arena; NULL as above. */
char *snap_arena_strndup(snap_arena *a, const char *s, size_t len);

/* The protobuf-c allocator backed by this arena (for unpack and for messages
 * built by hand). The pointer stays valid as long as the arena. */
ProtobufCAllocator *snap_arena_allocator(snap_arena *a);

/* Wipe and release every chunk; the arena is empty and reusable afterwards. */
void snap_arena_reset(snap_arena *a);

/* Same as reset: after it the arena holds no memory. */
void snap_arena_free(snap_arena *a);

#endif
