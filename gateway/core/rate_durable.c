/* rate_durable.c -- a rate-limit token is on disk as spent before it is granted.
 *
 * The agents' rate states are in durable mode (engine.h, aip_rate_state_set_durable): the loop
 * grants only tokens reserved ahead, in blocks of a tenth of the limit, whose bucket the store
 * has committed. After each check of a limited tool the reserve is topped up in the background,
 * so a call normally finds its token reserved and never waits. A call that finds none (the
 * first, a burst beyond the block) waits for the save, then is checked again from the start.
 * A crash at any instant therefore grants at most the limit: what was reserved and not granted
 * is lost (at most a block), never given twice.
 *
 * A save that fails gives its tokens back (nothing was granted), fails the calls that waited
 * for it closed (-32603, the tool in data; audited as RATE_LIMITED), is logged and counted by the store
 * (aip_store_write_errors_total), makes /readyz 503, and is retried with backoff (the bucket
 * as it stands, which is never more than what the disk may hold) until the store writes
 * again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/mcp/session.h"
#include "gateway/core/agent.h"
#include "gateway/core/dispatch.h"
#include "gateway/core/rate_durable.h"
#include "gateway/mcp/pending.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/clock.h"
#include "gateway/obs/log.h"
#include "store/store.h"

#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS 30000

struct aip_rate_wait {
  aip_pending *p;
  aip_agent_rt *a;
  cJSON *root; /* the tools/call message, checked again once the save is done */
  char *tool;  /* normalized */
  aip_rate_wait *prev, *next;
};

typedef struct retry_key {
  aip_agent_rt *a;
  char *tool;
} retry_key;

struct aip_rate_durable {
  aip_gw *gw;
  aip_rate_wait *waits;
  retry_key *retry; /* buckets whose last save failed */
  size_t retry_n, retry_cap;
  uint64_t backoff_ms;
  int retrying; /* a retry round is in flight */
  uv_timer_t timer;
};

typedef struct save_ctx {
  aip_agent_rt *a;
  int retry; /* a retry's save: settles nothing */
  char tool[];
} save_ctx;

static void on_saved(void *data, int err);
static void schedule_retry(aip_rate_durable *r);

static int save(aip_agent_rt *a, const char *tool, const aip_rate_bucket *b, int retry) {
  size_t n = strlen(tool);
  save_ctx *c = malloc(sizeof(*c) + n + 1);
  if (!c) return -ENOMEM;
  c->a = a;
  c->retry = retry;
  memcpy(c->tool, tool, n + 1);
  int rc = aip_store_bucket_write(a->gw->store, a->cfg->name, tool, b->tokens, b->last_ms,
                                  on_saved, c);
  if (rc) free(c);
  return rc;
}

/* ---- retries ----------------------------------------------------------------------------- */

static void retry_add(aip_rate_durable *r, aip_agent_rt *a, const char *tool) {
  for (size_t i = 0; i < r->retry_n; i++)
    if (r->retry[i].a == a && strcmp(r->retry[i].tool, tool) == 0) return;
  if (r->retry_n == r->retry_cap) {
    size_t cap = r->retry_cap ? r->retry_cap * 2 : 8;
    retry_key *k = realloc(r->retry, cap * sizeof(*k));
    if (!k) return; /* the next call's reservation tries again anyway */
    r->retry = k;
    r->retry_cap = cap;
  }
  char *t = strdup(tool);
  if (t) r->retry[r->retry_n++] = (retry_key){a, t};
}

static void retry_drop(aip_rate_durable *r, aip_agent_rt *a, const char *tool) {
  for (size_t i = 0; i < r->retry_n; i++) {
    if (r->retry[i].a != a || strcmp(r->retry[i].tool, tool) != 0) continue;
    free(r->retry[i].tool);
    r->retry[i] = r->retry[--r->retry_n];
    return;
  }
}

static void on_retry(uv_timer_t *t) {
  aip_rate_durable *r = t->data;
  if (r->gw->stopping || !r->gw->store) return;
  r->retrying = 0;
  for (size_t i = 0; i < r->retry_n; i++) {
    aip_rate_bucket b;
    const char *tool = r->retry[i].tool;
    if (aip_rate_bucket_get(r->retry[i].a->rate, tool, strlen(tool), &b)) continue;
    if (!save(r->retry[i].a, tool, &b, 1)) r->retrying++;
  }
  if (!r->retrying && r->retry_n) schedule_retry(r); /* nothing could be queued: later */
}

static void schedule_retry(aip_rate_durable *r) {
  if (r->gw->stopping || r->retrying || uv_is_active((uv_handle_t *)&r->timer)) return;
  r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : RETRY_FIRST_MS;
  if (r->backoff_ms > RETRY_MAX_MS) r->backoff_ms = RETRY_MAX_MS;
  uv_timer_start(&r->timer, on_retry, r->backoff_ms, 0);
}

/* ---- saves ------------------------------------------------------------------------------- */

static void wait_unlink(aip_rate_durable *r, aip_rate_wait *w) {
  if (w->prev) w->prev->next = w->next;
  else r->waits = w->next;
  if (w->next) w->next->prev = w->prev;
  w->p->rate_wait = NULL;
}

static void wait_free(aip_rate_wait *w) {
  cJSON_Delete(w->root);
  free(w->tool);
  free(w);
}

/* The calls that waited for this bucket's save: checked again (ok), or refused (failed). */
static void wake(aip_rate_durable *r, aip_agent_rt *a, const char *tool, int ok) {
  aip_rate_wait *list = NULL;
  for (aip_rate_wait *w = r->waits, *n; w; w = n) {
    n = w->next;
    if (w->a != a || strcmp(w->tool, tool) != 0) continue;
    wait_unlink(r, w);
    w->next = list;
    list = w;
  }
  for (aip_rate_wait *w = list, *n; w; w = n) {
    n = w->next;
    if (ok) {
      aip_dispatch_tools_call_again(w->p, w->root);
      w->root = NULL;
    } else {
      aip_dispatch_rate_unsaved(w->p, cJSON_GetObjectItemCaseSensitive(w->root, "params"));
    }
    wait_free(w);
  }
}

static void on_saved(void *data, int err) {
  save_ctx *c = data;
  aip_agent_rt *a = c->a;
  aip_rate_durable *r = a->gw->rated;
  if (!c->retry) aip_rate_settle(a->rate, c->tool, strlen(c->tool), !err);
  if (!r) { /* shutting down */
    free(c);
    return;
  }
  if (err) {
    if (!r->retry_n || c->retry)
      aip_error("store: cannot save the rate-limit bucket of %s/%s (%s): calls that need a new "
                "token are refused until it can; retrying",
                a->cfg->name, c->tool, strerror(-err));
    retry_add(r, a, c->tool);
  } else if (r->retry_n) {
    retry_drop(r, a, c->tool);
    if (!r->retry_n) {
      aip_info("store: rate-limit buckets are saved again");
      r->backoff_ms = 0;
    }
  }
  if (c->retry && r->retrying) r->retrying--;
  if (r->retry_n) schedule_retry(r);
  if (!c->retry) wake(r, a, c->tool, !err);
  free(c);
}

/* Tops up the reserve of normalized `tool`; 1 when a save was started or is in flight. */
static int topup(aip_agent_rt *a, const char *tool) {
  aip_rate_bucket b;
  size_t n = strlen(tool);
  if (aip_rate_reserve(a->rate, tool, n, aip_wall_ms(), &b)) {
    if (save(a, tool, &b, 0) == 0) return 1;
    aip_rate_settle(a->rate, tool, n, 0);
    return 0;
  }
  return aip_rate_bucket_get(a->rate, tool, n, &b) == 0 && b.pending > 0;
}

/* The distinct names of a tool, each the key of the bucket of a rule for it (policy_names.c). */
static int distinct_names(const aip_tool_names *n, const char *out[3]) {
  const char *all[] = {n->exposed, n->real, n->qualified};
  int k = 0;
  for (int i = 0; i < 3; i++) {
    int dup = !all[i];
    for (int j = 0; j < k && !dup; j++) dup = strcmp(out[j], all[i]) == 0;
    if (!dup) out[k++] = all[i];
  }
  return k;
}

void aip_rate_durable_after_check(aip_agent_rt *a, const aip_tool_names *names) {
  if (!a->gw->rated || !a->rate_limited) return; /* no rate rules: no malloc on the hot path */
  const char *all[3];
  for (int i = 0, k = distinct_names(names, all); i < k; i++) {
    char *n = aip_normalize_name(all[i], strlen(all[i]));
    if (n) topup(a, n);
    free(n);
  }
}

/* Waits on the first name whose bucket has a save started or in flight; if another name's bucket
 * still lacks a reserved token when the call is checked again, it waits once more. (A name whose
 * token was already granted on the first pass spends again on the second: the error is on the
 * side of granting fewer.) */
int aip_rate_durable_wait(aip_pending *p, const aip_tool_names *names, cJSON *root) {
  aip_agent_rt *a = p->sess->agent;
  aip_rate_durable *r = a->gw->rated;
  aip_rate_wait *w = r ? calloc(1, sizeof(*w)) : NULL;
  const char *all[3];
  int k = distinct_names(names, all);
  for (int i = 0; w && !w->tool && i < k; i++) {
    char *n = aip_normalize_name(all[i], strlen(all[i]));
    if (n && topup(a, n)) w->tool = n;
    else free(n);
  }
  if (!w || !w->tool) {
    free(w);
    return -EIO;
  }
  w->p = p;
  w->a = a;
  w->root = root;
  w->next = r->waits;
  if (r->waits) r->waits->prev = w;
  r->waits = w;
  p->rate_wait = w;
  return 0;
}

void aip_rate_durable_forget(aip_pending *p) {
  aip_rate_wait *w = p->rate_wait;
  if (!w) return;
  wait_unlink(w->a->gw->rated, w);
  wait_free(w);
}

int aip_rate_durable_failing(aip_gw *gw) { return gw->rated && gw->rated->retry_n > 0; }

int aip_rate_durable_init(aip_gw *gw) {
  aip_rate_durable *r = calloc(1, sizeof(*r));
  if (!r) return -ENOMEM;
  r->gw = gw;
  uv_timer_init(gw->loop, &r->timer);
  r->timer.data = r;
  gw->rated = r;
  for (size_t i = 0; i < gw->agents_n; i++) aip_rate_state_set_durable(gw->agents[i].rate, 1);
  return 0;
}

/* A clean stop gives back what was reserved and not granted: after a restart the limit is
 * exact, not short by a block. (A crash cannot do this; it only ever errs on the safe side.) */
static void give_back(aip_agent_rt *a) {
  const char *tool;
  size_t len;
  aip_rate_bucket b;
  for (size_t it = 0; aip_rate_bucket_next(a->rate, &it, &tool, &len, &b);) {
    if (!b.reserved || b.pending) continue;
    if (aip_store_bucket_write(a->gw->store, a->cfg->name, tool, b.tokens + b.reserved, b.last_ms,
                               NULL, NULL))
      continue;
    b.tokens += b.reserved;
    b.reserved = 0; /* nothing is granted after this (the agents are shut down) */
    aip_rate_bucket_set(a->rate, tool, len, &b);
  }
}

void aip_rate_durable_give_back(aip_gw *gw) {
  if (!gw->rated || !gw->store) return;
  for (size_t i = 0; i < gw->agents_n; i++)
    if (gw->agents[i].rate) give_back(&gw->agents[i]);
}

static void on_timer_closed(uv_handle_t *h) {
  aip_rate_durable *r = h->data;
  for (size_t i = 0; i < r->retry_n; i++) free(r->retry[i].tool);
  free(r->retry);
  free(r);
}

void aip_rate_durable_close(aip_gw *gw) {
  aip_rate_durable *r = gw->rated;
  if (!r) return;
  while (r->waits) {
    aip_rate_wait *w = r->waits;
    wait_unlink(r, w);
    wait_free(w);
  }
  gw->rated = NULL;
  uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}
