/* Hash tables of doku-snapsim. */
#include "simmap.h"
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#define MAP_CAP_MIN 64u
#define TOMBSTONE ((char *)&tombstone_mark)

static const char tombstone_mark = 0;

struct sim_map_slot {
	char *key; /* NULL: empty; TOMBSTONE: removed */
	uint64_t hash;
	uint32_t value;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

void sim_map_init(sim_map *m, size_t max)
{
	memset(m, 0, sizeof(*m));
	m->max = max;
}

/* The slot holding key, or NULL. */
static struct sim_map_slot *map_find(const sim_map *m, const char *key, uint64_t h)
{
	if (m->slots == NULL)
		return NULL;
	for (size_t i = h & (m->cap - 1), n = 0; n < m->cap; i = (i + 1) & (m->cap - 1), n++) {
		struct sim_map_slot *s = &m->slots[i];

		if (s->key == NULL)
			return NULL;
		if (s->key != TOMBSTONE && s->hash == h && strcmp(s->key, key) == 0)
			return s;
	}
	return NULL;
}

/* Place an owned key in a table known to have room and not to hold it. */
static void map_place(struct sim_map_slot *slots, size_t cap, char *key, uint64_t h,
		      uint32_t value)
{
	size_t i = h & (cap - 1);

	while (slots[i].key != NULL && slots[i].key != TOMBSTONE)
		i = (i + 1) & (cap - 1);
	slots[i].key = key;
	slots[i].hash = h;
	slots[i].value = value;
}

static int map_rehash(sim_map *m, size_t cap)
{
	struct sim_map_slot *slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return SIM_ERR_NOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct sim_map_slot *s = &m->slots[i];

		if (s->key != NULL && s->key != TOMBSTONE)
			map_place(slots, cap, s->key, s->hash, s->value);
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	m->dead = 0;
	return SIM_OK;
}

int sim_map_put(sim_map *m, const char *key, uint32_t value)
{
	uint64_t h = hash_str(key);
	struct sim_map_slot *s = map_find(m, key, h);
	char *copy;
	int rc;

	if (s != NULL) {
		s->value = value;
		return SIM_OK;
	}
	if (m->used >= m->max)
		return SIM_ERR_FULL;
	if (m->slots == NULL || (m->used + m->dead + 1) * 2 > m->cap) {
		size_t cap = m->cap < MAP_CAP_MIN ? MAP_CAP_MIN : m->cap;

		while ((m->used + 1) * 2 > cap)
			cap *= 2;
		rc = map_rehash(m, cap);
		if (rc != 0)
			return rc;
	}
	copy = strdup(key);
	if (copy == NULL)
		return SIM_ERR_NOMEM;
	map_place(m->slots, m->cap, copy, h, value);
	m->used++;
	return SIM_OK;
}

int sim_map_get(const sim_map *m, const char *key, uint32_t *value)
{
	const struct sim_map_slot *s = map_find(m, key, hash_str(key));

	if (s == NULL)
		return SIM_ERR_NOT_FOUND;
	*value = s->value;
	return SIM_OK;
}

int sim_map_del(sim_map *m, const char *key)
{
	struct sim_map_slot *s = map_find(m, key, hash_str(key));

	if (s == NULL)
		return SIM_ERR_NOT_FOUND;
	free(s->key);
	s->key = TOMBSTONE;
	m->used--;
	m->dead++;
	return SIM_OK;
}

void sim_map_clear(sim_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE)
			free(m->slots[i].key);
	free(m->slots);
	m->slots = NULL;
	m->cap = 0;
	m->used = 0;
	m->dead = 0;
}

/* ---- sim_idset ---------------------------------------------------------- */

#define IDSET_HALF 18u          /* digits in each 64-bit half */
#define IDSET_TAG_MAX 1024u
#define IDSET_CAP_MIN 1024u

struct sim_idset_slot {
	uint64_t head;  /* value of the first min(len, 18) digits */
	uint64_t tail;  /* value of the remaining digits */
	uint32_t meta;  /* 0: empty; else len | tag << 8 */
};

void sim_idset_init(sim_idset *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max;
}

/* murmur3's 64-bit finaliser: every input bit reaches every output bit, so
 * ids that differ only in a trailing counter do not form probe clusters */
static uint64_t mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

static uint64_t idset_hash(const struct sim_idset_slot *k)
{
	return mix64(k->head ^ mix64(k->tail ^ mix64(k->meta)));
}

static bool idset_insert(struct sim_idset_slot *slots, size_t cap,
			 const struct sim_idset_slot *k)
{
	for (size_t i = idset_hash(k) & (cap - 1);; i = (i + 1) & (cap - 1)) {
		struct sim_idset_slot *s = &slots[i];

		if (s->meta == 0) {
			*s = *k;
			return true;
		}
		if (s->meta == k->meta && s->head == k->head && s->tail == k->tail)
			return false;
	}
}

static bool idset_contains(const sim_idset *s, const struct sim_idset_slot *k)
{
	if (s->slots == NULL)
		return false;
	for (size_t i = idset_hash(k) & (s->cap - 1); s->slots[i].meta != 0;
	     i = (i + 1) & (s->cap - 1))
		if (s->slots[i].meta == k->meta && s->slots[i].head == k->head &&
		    s->slots[i].tail == k->tail)
			return true;
	return false;
}

int sim_idset_add(sim_idset *s, unsigned tag, const char *id, size_t len)
{
	struct sim_idset_slot k = { 0, 0, 0 };

	if (len == 0 || len > SIM_IDSET_DIGITS_MAX || tag >= IDSET_TAG_MAX)
		return SIM_ERR_INVALID;
	for (size_t i = 0; i < len; i++) {
		if (id[i] < '0' || id[i] > '9')
			return SIM_ERR_INVALID;
		if (i < IDSET_HALF)
			k.head = k.head * 10 + (uint64_t)(id[i] - '0');
		else
			k.tail = k.tail * 10 + (uint64_t)(id[i] - '0');
	}
	k.meta = (uint32_t)len | (uint32_t)tag << 8;
	if (idset_contains(s, &k))
		return SIM_ERR_EXISTS;
	if (s->used >= s->max)
		return SIM_ERR_FULL;
	if (s->slots == NULL || (s->used + 1) * 2 > s->cap) {
		size_t cap = s->cap < IDSET_CAP_MIN ? IDSET_CAP_MIN : s->cap * 2;
		struct sim_idset_slot *slots = calloc(cap, sizeof(*slots));

		if (slots == NULL)
			return SIM_ERR_NOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->slots[i].meta != 0)
				idset_insert(slots, cap, &s->slots[i]);
		free(s->slots);
		s->slots = slots;
		s->cap = cap;
	}
	idset_insert(s->slots, s->cap, &k);
	s->used++;
	return SIM_OK;
}

void sim_idset_clear(sim_idset *s)
{
	free(s->slots);
	s->slots = NULL;
	s->cap = 0;
	s->used = 0;
}
