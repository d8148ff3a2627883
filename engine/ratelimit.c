/* ratelimit.c -- token-bucket arithmetic for `rate_limit` rules (reference/aip.md section 3.7).
 *
 * The reference uses golang.org/x/time/rate with limit N/period and burst N: a bucket starts
 * full, refills continuously at N tokens per period, a call takes one token, and a refused call
 * takes none. "2/minute" therefore allows two calls at once, then one every 30 s.
 *
 * Unlike the reference (one limiter per process), the state here belongs to the caller: the
 * gateway keeps one per agent, the stdio wrapper one per process, and the store can persist
 * buckets through aip_rate_bucket_get/set/next. Time is the caller's `now_ms` (engine/ never
 * reads a clock), so the conformance runner drives it with an injected clock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "engine/map.h"

/* Refill arithmetic is in doubles; sums of fractions (1/3 + 2/3) may land a hair under 1.0,
 * which must still count as a whole token. */
#define TOKEN_EPSILON 1e-9

typedef struct bucket_node {
  aip_rate_bucket b;
  uint32_t count, period_s; /* the limit of the last take (for aip_rate_reserve) */
  size_t len;
  char name[]; /* normalized tool name, the map key */
} bucket_node;

struct aip_rate_state {
  aip_map buckets; /* normalized tool -> bucket_node * */
  int durable;     /* grant only reserved tokens (aip_rate_state_set_durable) */
};

void aip_rate_state_set_durable(aip_rate_state *rs, int on) { rs->durable = on; }
int aip_rate_state_durable(const aip_rate_state *rs) { return rs->durable; }

aip_rate_state *aip_rate_state_new(const aip_policy *p) {
  aip_rate_state *rs = calloc(1, sizeof(*rs));
  (void)p; /* buckets are made on first use, so the state outlives a policy reload */
  if (rs)
    aip_map_init(&rs->buckets);
  return rs;
}

void aip_rate_state_free(aip_rate_state *rs) {
  const aip_map_entry *e;
  if (!rs)
    return;
  for (size_t i = 0; aip_map_next(&rs->buckets, &i, &e);)
    free(e->value);
  aip_map_free(&rs->buckets);
  free(rs);
}

static bucket_node *node_get(const aip_rate_state *rs, const char *t, size_t len) {
  return aip_map_get(&rs->buckets, t, len);
}

static bucket_node *node_add(aip_rate_state *rs, const char *t, size_t len,
                             const aip_rate_bucket *b) {
  bucket_node *n = malloc(sizeof(*n) + len + 1);
  if (!n)
    return NULL;
  n->b = *b;
  n->count = n->period_s = 0;
  n->len = len;
  memcpy(n->name, t, len);
  n->name[len] = '\0';
  if (aip_map_put(&rs->buckets, n->name, len, n)) {
    free(n);
    return NULL;
  }
  return n;
}

int aip_rate_bucket_get(const aip_rate_state *rs, const char *tool, size_t len,
                        aip_rate_bucket *out) {
  const bucket_node *n = rs ? node_get(rs, tool, len) : NULL;
  if (!n)
    return -ENOENT;
  *out = n->b;
  return 0;
}

int aip_rate_bucket_set(aip_rate_state *rs, const char *tool, size_t len,
                        const aip_rate_bucket *b) {
  bucket_node *n = node_get(rs, tool, len);
  if (n) {
    n->b = *b;
    return 0;
  }
  return node_add(rs, tool, len, b) ? 0 : -ENOMEM;
}

int aip_rate_bucket_next(const aip_rate_state *rs, size_t *iter, const char **tool,
                         size_t *len, aip_rate_bucket *out) {
  const aip_map_entry *e;
  const bucket_node *n;
  if (!aip_map_next(&rs->buckets, iter, &e))
    return 0;
  n = e->value;
  *tool = n->name;
  *len = n->len;
  *out = n->b;
  return 1;
}

/* Refills to now. The burst counts the reserved and pending tokens as still in the bucket:
 * they were only moved aside, so bucket + reserved + pending never exceeds it. A reload that
 * lowered the limit cuts the reservation down too. */
static void refill(bucket_node *n, double burst, int64_t now_ms) {
  /* A clock that steps back refills nothing (and does not rewind last_ms, or the next call
   * would be credited the same interval twice). */
  if (now_ms > n->b.last_ms) {
    double elapsed = (double)(now_ms - n->b.last_ms);
    n->b.tokens += elapsed * burst / ((double)n->period_s * 1000.0);
    n->b.last_ms = now_ms;
  }
  if (n->b.reserved > n->count)
    n->b.reserved = n->count;
  double room = burst - (double)n->b.reserved - (double)n->b.pending;
  if (room < 0)
    room = 0;
  if (n->b.tokens > room) /* also cuts a bucket down after a reload lowered the limit */
    n->b.tokens = room;
}

int aip_rate_take(aip_rate_state *rs, const char *t, size_t tlen, uint32_t count,
                  uint32_t period_s, int64_t now_ms) {
  bucket_node *n = node_get(rs, t, tlen);
  double burst = (double)count;

  if (!n) {
    aip_rate_bucket full = {burst, now_ms, 0, 0};
    if (!(n = node_add(rs, t, tlen, &full)))
      return -ENOMEM;
  }
  n->count = count;
  n->period_s = period_s;
  refill(n, burst, now_ms);
  if (rs->durable) {
    if (n->b.reserved > 0) {
      n->b.reserved--;
      return 1;
    }
    /* tokens being saved (a top-up in flight) are on their way: wait for them too */
    return n->b.tokens + TOKEN_EPSILON < 1.0 && !n->b.pending ? 0 : -EAGAIN;
  }
  if (n->b.tokens + TOKEN_EPSILON < 1.0)
    return 0;
  n->b.tokens -= 1.0;
  if (n->b.tokens < 0)
    n->b.tokens = 0;
  return 1;
}

/* A tenth of the limit: a crash loses at most that many tokens, and a burst of calls waits for
 * a save once per block. */
static uint32_t block_of(uint32_t count) {
  uint32_t b = count / 10;
  return b < 1 ? 1 : b > 100 ? 100 : b;
}

uint32_t aip_rate_reserve(aip_rate_state *rs, const char *tool, size_t len, int64_t now_ms,
                          aip_rate_bucket *save) {
  bucket_node *n = rs ? node_get(rs, tool, len) : NULL;
  if (!n || !n->count || n->b.pending)
    return 0;
  refill(n, (double)n->count, now_ms);
  uint32_t want = block_of(n->count);
  if (n->b.reserved >= want)
    return 0;
  want -= n->b.reserved;
  double whole = (double)(uint32_t)(n->b.tokens + TOKEN_EPSILON);
  uint32_t k = whole < (double)want ? (uint32_t)whole : want;
  if (!k)
    return 0;
  n->b.tokens -= (double)k;
  if (n->b.tokens < 0)
    n->b.tokens = 0;
  n->b.pending = k;
  *save = n->b;
  save->reserved = save->pending = 0; /* after a crash, neither was granted: both are spent */
  return k;
}

void aip_rate_settle(aip_rate_state *rs, const char *tool, size_t len, int ok) {
  bucket_node *n = rs ? node_get(rs, tool, len) : NULL;
  if (!n)
    return;
  if (ok)
    n->b.reserved += n->b.pending;
  else
    n->b.tokens += (double)n->b.pending; /* refill() cuts it to the burst if need be */
  n->b.pending = 0;
}
