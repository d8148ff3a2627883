/* map.h -- one hash map for the whole project: byte-string keys, void* values.
 *
 * Open addressing with linear probing and tombstones; the table doubles at 70% load. Keys are
 * borrowed: the caller keeps the key bytes alive as long as the entry exists (usually the key
 * lives inside the value). Not thread-safe.
 */
#ifndef AIP_MAP_H
#define AIP_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct aip_map_entry {
  const void *key; /* NULL = empty slot; AIP_MAP_TOMBSTONE = deleted */
  size_t key_len;
  uint64_t hash;
  void *value;
} aip_map_entry;

typedef struct aip_map {
  aip_map_entry *slots;
  size_t cap;  /* power of two, or 0 */
  size_t used; /* live entries */
  size_t filled; /* live + tombstones */
} aip_map;

void aip_map_init(aip_map *m);
void aip_map_free(aip_map *m); /* frees the table, not the values */
uint64_t aip_map_hash(const void *key, size_t len);
void *aip_map_get(const aip_map *m, const void *key, size_t len);
/* Inserts or replaces; returns 0 or -ENOMEM. */
int aip_map_put(aip_map *m, const void *key, size_t len, void *value);
/* Removes and returns the value (NULL if absent). */
void *aip_map_del(aip_map *m, const void *key, size_t len);

/* Iteration: for (size_t i = 0; aip_map_next(m, &i, &e);) { ... } */
int aip_map_next(const aip_map *m, size_t *iter, const aip_map_entry **out);

#endif
