/* map.c -- the project's hash map (see map.h). FNV-1a is enough: keys are short names and ids,
 * and the table never holds attacker-chosen keys in numbers that could make probing quadratic
 * beyond the configured limits (sessions and tools are bounded). */
#include "engine/map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char tombstone_;
#define AIP_MAP_TOMBSTONE ((const void *)&tombstone_)

void aip_map_init(aip_map *m) { memset(m, 0, sizeof(*m)); }

void aip_map_free(aip_map *m) {
  free(m->slots);
  memset(m, 0, sizeof(*m));
}

uint64_t aip_map_hash(const void *key, size_t len) {
  const unsigned char *p = key;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static int live(const aip_map_entry *e) { return e->key && e->key != AIP_MAP_TOMBSTONE; }

static aip_map_entry *find(const aip_map *m, const void *key, size_t len, uint64_t h) {
  if (m->cap == 0) return NULL;
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    aip_map_entry *e = &m->slots[i];
    if (!e->key) return NULL;
    if (live(e) && e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) return e;
  }
}

static int grow(aip_map *m) {
  size_t ncap = m->cap ? m->cap * 2 : 16;
  /* Rehash in place of a table full of tombstones without growing. */
  if (m->cap && m->used * 2 < m->cap) ncap = m->cap;
  aip_map_entry *ns = calloc(ncap, sizeof(*ns));
  if (!ns) return -ENOMEM;
  size_t mask = ncap - 1;
  for (size_t i = 0; i < m->cap; i++) {
    aip_map_entry *e = &m->slots[i];
    if (!live(e)) continue;
    size_t j = e->hash & mask;
    while (ns[j].key) j = (j + 1) & mask;
    ns[j] = *e;
  }
  free(m->slots);
  m->slots = ns;
  m->cap = ncap;
  m->filled = m->used;
  return 0;
}

void *aip_map_get(const aip_map *m, const void *key, size_t len) {
  aip_map_entry *e = find(m, key, len, aip_map_hash(key, len));
  return e ? e->value : NULL;
}

int aip_map_put(aip_map *m, const void *key, size_t len, void *value) {
  uint64_t h = aip_map_hash(key, len);
  aip_map_entry *e = find(m, key, len, h);
  if (e) {
    e->key = key; /* the new value may own new key bytes */
    e->value = value;
    return 0;
  }
  if ((m->filled + 1) * 10 > m->cap * 7) {
    int err = grow(m);
    if (err) return err;
  }
  size_t mask = m->cap - 1;
  size_t i = h & mask;
  while (live(&m->slots[i])) i = (i + 1) & mask;
  if (!m->slots[i].key) m->filled++;
  m->slots[i] = (aip_map_entry){key, len, h, value};
  m->used++;
  return 0;
}

void *aip_map_del(aip_map *m, const void *key, size_t len) {
  aip_map_entry *e = find(m, key, len, aip_map_hash(key, len));
  if (!e) return NULL;
  void *v = e->value;
  e->key = AIP_MAP_TOMBSTONE;
  e->value = NULL;
  m->used--;
  return v;
}

int aip_map_next(const aip_map *m, size_t *iter, const aip_map_entry **out) {
  while (*iter < m->cap) {
    const aip_map_entry *e = &m->slots[(*iter)++];
    if (live(e)) {
      *out = e;
      return 1;
    }
  }
  return 0;
}
