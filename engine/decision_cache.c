/* decision_cache.c -- remembers recent tool decisions of one compiled policy.
 *
 * What may be cached: only outcomes that are a pure function of (normalized tool, arguments)
 * under the compiled policy. So never a rate-limited tool (its outcome depends on time and
 * history), never an ask-rule tool (a human decides), and nothing across policies: the cache
 * lives inside the compiled policy, so a reload starts empty. Protected-path outcomes are
 * cacheable because $HOME and the working directory are fixed at compile time.
 *
 * Shape: a direct-mapped table (a slot per hash, a new entry replaces the old one), so memory
 * is bounded by entries x (decision + AIP_DCACHE_MAX_KEY) and no eviction list is needed.
 * Arguments larger than that key bound are evaluated every time.
 *
 * The key is an exact, unambiguous encoding of the arguments in message order (order matters:
 * strict_args reports the first undeclared argument): strings and member names are length-
 * prefixed bytes, parsed numbers their original bytes (others their IEEE-754 bits), so two argument trees share a key only if
 * the engine could not tell them apart.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "engine/map.h"

typedef struct slot {
  uint64_t hash;
  char *key; /* NULL = empty */
  size_t key_len;
  aip_decision d;
} slot;

struct aip_dcache {
  slot *slots;
  size_t mask;
  uint64_t hits, misses;
};

aip_dcache *aip_dcache_new(size_t entries) {
  aip_dcache *c = calloc(1, sizeof(*c));
  size_t n = 1;

  while (n < entries && n < ((size_t)1 << 24))
    n <<= 1;
  if (!c || !(c->slots = calloc(n, sizeof(*c->slots)))) {
    free(c);
    return NULL;
  }
  c->mask = n - 1;
  return c;
}

void aip_dcache_free(aip_dcache *c) {
  if (!c)
    return;
  for (size_t i = 0; i <= c->mask; i++)
    free(c->slots[i].key);
  free(c->slots);
  free(c);
}

/* Appends n bytes; -E2BIG once the key would pass AIP_DCACHE_MAX_KEY. */
static int put_raw(aip_dcache_key *k, const void *s, size_t n) {
  if (n > sizeof(k->data) - k->len)
    return -E2BIG;
  memcpy(k->data + k->len, s, n);
  k->len += n;
  return 0;
}

/* tag, length in decimal, ':', bytes: a prefix code, so no two trees share an encoding. */
static int put_bytes(aip_dcache_key *k, char tag, const char *s, size_t n) {
  char head[24];
  size_t h = sizeof(head), len = n;
  head[--h] = ':';
  do
    head[--h] = (char)('0' + len % 10);
  while ((len /= 10) && h > 1);
  head[--h] = tag;
  if (put_raw(k, head + h, sizeof(head) - h))
    return -E2BIG;
  return put_raw(k, s, n);
}

static int put_value(aip_dcache_key *k, const cJSON *v) {
  int rc = 0;

  if (cJSON_IsString(v))
    return put_bytes(k, 's', v->valuestring, strlen(v->valuestring));
  if (cJSON_IsNumber(v) && v->valuestring) /* its bytes: 9007199254740993 is not ...992 */
    return put_bytes(k, 'N', v->valuestring, strlen(v->valuestring));
  if (cJSON_IsNumber(v)) { /* the IEEE-754 bits: exact, and no formatting cost */
    char b[1 + sizeof(double)] = {'n'};
    memcpy(b + 1, &v->valuedouble, sizeof(double));
    return put_raw(k, b, sizeof(b));
  }
  if (cJSON_IsTrue(v) || cJSON_IsFalse(v) || cJSON_IsNull(v))
    return put_raw(k, cJSON_IsTrue(v) ? "t" : cJSON_IsFalse(v) ? "f" : "z", 1);
  if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
    return -E2BIG; /* raw or invalid items: do not cache */
  if (put_raw(k, cJSON_IsArray(v) ? "[" : "{", 1))
    return -E2BIG;
  for (const cJSON *c = v->child; c && !rc; c = c->next) {
    if (cJSON_IsObject(v))
      rc = put_bytes(k, 'k', c->string, strlen(c->string));
    if (!rc)
      rc = put_value(k, c);
  }
  return rc ? rc : put_raw(k, cJSON_IsArray(v) ? "]" : "}", 1);
}

int aip_dcache_key_build(aip_dcache_key *key, const char *t, size_t tlen, const cJSON *args) {
  key->len = 0;
  if (put_bytes(key, 'T', t, tlen))
    return -E2BIG;
  return put_value(key, args);
}

int aip_dcache_get(aip_dcache *c, const aip_dcache_key *key, aip_decision *out) {
  uint64_t h = aip_map_hash(key->data, key->len);
  const slot *s = &c->slots[h & c->mask];

  if (s->key && s->hash == h && s->key_len == key->len && !memcmp(s->key, key->data, key->len)) {
    *out = s->d;
    out->cached = 1;
    c->hits++;
    return 1;
  }
  c->misses++;
  return 0;
}

void aip_dcache_put(aip_dcache *c, const aip_dcache_key *key, const aip_decision *d) {
  uint64_t h = aip_map_hash(key->data, key->len);
  slot *s = &c->slots[h & c->mask];
  char *copy = malloc(key->len);

  if (!copy)
    return; /* not cached: the decision itself stands */
  memcpy(copy, key->data, key->len);
  free(s->key);
  s->hash = h;
  s->key = copy;
  s->key_len = key->len;
  s->d = *d;
}

void aip_dcache_stats(const aip_dcache *c, uint64_t *hits, uint64_t *misses) {
  *hits = c->hits;
  *misses = c->misses;
}
