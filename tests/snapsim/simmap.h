/* Hash tables of doku-snapsim. Not thread-safe: the owner locks.
 *
 * sim_map: string keys (copied, owned by the map) to uint32 values; open
 * addressing with linear probing, tombstones on removal, at most max entries.
 *
 * sim_idset: a set of X-EXTERNAL-IDs (1 to 36 ASCII digits) tagged with a
 * small number (the partner), stored compactly as two 64-bit numbers. */
#ifndef DOKU_SNAPSIM_SIMMAP_H
#define DOKU_SNAPSIM_SIMMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_map_slot;

typedef struct sim_map {
	struct sim_map_slot *slots; /* cap entries; NULL until the first put */
	size_t cap;                 /* a power of two */
	size_t used;                /* live entries */
	size_t dead;                /* tombstones */
	size_t max;                 /* hard cap on used */
} sim_map;

void sim_map_init(sim_map *m, size_t max);

/* Insert or replace. 0, SIM_ERR_FULL (max reached) or SIM_ERR_NOMEM. */
int sim_map_put(sim_map *m, const char *key, uint32_t value);

/* 0 and *value, or SIM_ERR_NOT_FOUND. */
int sim_map_get(const sim_map *m, const char *key, uint32_t *value);

/* 0, or SIM_ERR_NOT_FOUND. */
int sim_map_del(sim_map *m, const char *key);

/* Forget every entry and release the memory; the map stays usable. */
void sim_map_clear(sim_map *m);

#define SIM_IDSET_DIGITS_MAX 36

struct sim_idset_slot;

typedef struct sim_idset {
	struct sim_idset_slot *slots;
	size_t cap;
	size_t used;
	size_t max;
} sim_idset;

void sim_idset_init(sim_idset *s, size_t max);

/* Add (tag, id[0..len)); id must be 1..36 ASCII digits and tag < 1024.
 * 0 when added, SIM_ERR_EXISTS when already present, SIM_ERR_INVALID,
 * SIM_ERR_FULL or SIM_ERR_NOMEM. */
int sim_idset_add(sim_idset *s, unsigned tag, const char *id, size_t len);

void sim_idset_clear(sim_idset *s);

#endif
