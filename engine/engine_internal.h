/* engine_internal.h -- helpers shared between the engine's own files; not part of its API. */
#ifndef AIP_ENGINE_INTERNAL_H
#define AIP_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "engine/engine.h"

/* ---- UTF-8 (buf.c) ---- */

/* Length (1..4) of the well-formed UTF-8 sequence at s, 0 if it is not well-formed (overlong,
 * encoded surrogate, above U+10FFFF, truncated). `n` is the number of readable bytes. */
size_t aip_utf8_seq_len(const unsigned char *s, size_t n);
int aip_utf8_valid(const char *s, size_t n);

/* ---- Go-compatible rendering of decoded JSON values (json.c) ---- */

/* strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent. */
int aip_json_format_float_f(aip_buf *b, double v);
/* encoding/json.Marshal of the value Go's json.Unmarshal would have produced from `item`
 * (map[string]any / []any / float64): compact, object keys sorted bytewise, strings
 * HTML-escaped, numbers in Go's float64 format. */
int aip_json_print_go(aip_buf *b, const cJSON *item);
/* 1 when every number in `item` (recursively) is exactly the number its Go rendering says: its
 * original bytes (kept by aip_json_parse) denote the same decimal value as the shortest
 * round-trip digits of the double, so no decoder, float64 or exact, can read another value.
 * Numbers without original bytes (made by the gateway) count as exact. */
int aip_json_numbers_exact(const cJSON *item);
/* 1 when some object in `item` (at any depth) has two member names equal under simple Unicode
 * case folding ("cmd"/"CMD", "task"/"ta\u017fk", "key"/"\u212aey"), 0 when none, -ENOMEM. */
int aip_json_fold_collision(const cJSON *item);

/* ---- name normalization (normalize.c) ---- */

/* Normalizes like aip_normalize_name() without a malloc in the common case: when the result
 * fits, it is written to `stack` (capacity `stack_cap`, NUL-terminated) and *out == stack;
 * otherwise *out is malloc'd and the caller frees it when *out != stack.
 * Returns 0, -EILSEQ (invalid UTF-8) or -ENOMEM. */
int aip_normalize_tmp(const char *s, size_t len, char *stack, size_t stack_cap, char **out,
                      size_t *out_len);

/* ---- protected paths (protected_paths.c) ---- */

typedef struct aip_pp_entry {
  char *path;       /* absolute and cleaned (filepath.Abs of the expanded entry) */
  size_t len;
  const char *base; /* last element of path (points into it) */
  size_t base_len;
} aip_pp_entry;

typedef struct aip_pp_set {
  aip_pp_entry *v;
  size_t n;
  char *home; /* for `~` in argument values; NULL when unknown */
  char *cwd;  /* for relative argument values */
  /* byte after the leading '/' of some entry: a quick filter for the substring rule */
  unsigned char second[256];
} aip_pp_set;

/* Builds the set from doc->protected_paths, the policy file itself and `opts`. */
int aip_pp_compile(aip_pp_set *s, const aip_policy_doc *doc, const aip_policy_opts *opts,
                   aip_error *err);
void aip_pp_free(aip_pp_set *s);
/* The protected entry that some string in `args` (values, and member names) reaches, or NULL.
 * *nomem is set when a scratch allocation failed (the caller fails closed). */
const char *aip_pp_check(const aip_pp_set *s, const cJSON *args, int *nomem);
/* Go's filepath.Clean on `p` (len n) into dst (capacity >= n + 2); returns the new length. */
size_t aip_path_clean(const char *p, size_t n, char *dst);

/* ---- rate limiting (ratelimit.c) ---- */

/* Takes one token from the bucket of normalized tool `t` (burst `count`, refilled `count` per
 * `period_s`). Returns 1 when allowed, 0 when limited, -EAGAIN in durable mode when a token is
 * left but none is reserved yet, -ENOMEM. */
int aip_rate_take(aip_rate_state *rs, const char *t, size_t tlen, uint32_t count,
                  uint32_t period_s, int64_t now_ms);

/* ---- decision cache (decision_cache.c) ---- */

typedef struct aip_dcache aip_dcache;

aip_dcache *aip_dcache_new(size_t entries);
void aip_dcache_free(aip_dcache *c);
#define AIP_DCACHE_MAX_KEY 1024 /* larger arguments are evaluated every time */

typedef struct aip_dcache_key {
  size_t len;
  char data[AIP_DCACHE_MAX_KEY];
} aip_dcache_key;

/* Builds the cache key of (tool, args). Returns 0, or -E2BIG when the arguments are too large
 * to be worth caching (or hold something the key cannot encode). */
int aip_dcache_key_build(aip_dcache_key *key, const char *t, size_t tlen, const cJSON *args);
/* 1 and *out filled on a hit, 0 on a miss. */
int aip_dcache_get(aip_dcache *c, const aip_dcache_key *key, aip_decision *out);
void aip_dcache_put(aip_dcache *c, const aip_dcache_key *key, const aip_decision *d);
void aip_dcache_stats(const aip_dcache *c, uint64_t *hits, uint64_t *misses);

#endif
