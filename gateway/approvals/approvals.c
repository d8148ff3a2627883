/* approvals.c -- the approval queue's loop-side half (see approvals.h).
 *
 * Waiters are kept in a map by approval id. A waiter whose call goes away while a store request
 * about it is in flight is only marked `forgotten`, and freed when that request completes:
 * store callbacks always find their waiter alive.
 */
#include "gateway/approvals/approvals.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "engine/map.h"
#include "gateway/obs/clock.h"
#include "gateway/obs/log.h"

#define EXPIRY_TICK_MS 1000
#define MAX_SUBSCRIBERS 64

struct aip_approval_wait {
  aip_approvals *m;
  char id[33];
  char *agent, *server, *tool, *args;
  char hash[65];
  aip_approval_outcome cb;
  void *data;
  int inflight;  /* a store request about this waiter is running */
  int forgotten; /* the call went away */
  int registered; /* in m->waits */
};

typedef struct subscriber {
  aip_approval_event cb;
  void *data;
} subscriber;

struct aip_approvals {
  uv_loop_t *loop;
  aip_store *store;
  uint64_t timeout_ms, grace_ms;
  uint64_t max_pending, max_args; /* 0 = no cap */
  aip_map waits; /* id -> waiter */
  subscriber subs[MAX_SUBSCRIBERS];
  size_t subs_n;
  uv_timer_t expiry;
  int expiring; /* an expiry sweep is in flight */
  aip_approvals_stats stats;
};

/* A record left `pending` for `a->status` (committed): counted once, here. */
static void count_decided(aip_approvals *m, const aip_approval *a) {
  if (a->status < AIP_APPROVAL_APPROVED || a->status > AIP_APPROVAL_EXPIRED) return;
  m->stats.decisions[a->status - AIP_APPROVAL_APPROVED]++;
  if (m->stats.pending) m->stats.pending--;
  int64_t end = a->decided_ms ? a->decided_ms : aip_wall_ms();
  aip_histogram_observe(&m->stats.decision_seconds,
                        end > a->created_ms ? (double)(end - a->created_ms) / 1000.0 : 0.0);
}

static void emit(aip_approvals *m, const char *type, const aip_approval *a) {
  for (size_t i = 0; i < m->subs_n; i++) m->subs[i].cb(m->subs[i].data, type, a);
}

static void wait_free(aip_approval_wait *w) {
  if (w->registered) aip_map_del(&w->m->waits, w->id, strlen(w->id));
  free(w->agent);
  free(w->server);
  free(w->tool);
  free(w->args);
  free(w);
}

/* Tells the waiter (unless its call went away) and frees it. */
static void finish(aip_approval_wait *w, int err, aip_approval_status st, const aip_approval *a) {
  if (!w->forgotten) w->cb(w->data, err, st, a);
  wait_free(w);
}

/* ---- ask ---------------------------------------------------------------------------------- */

static void on_created(void *data, int err, const aip_approval *a) {
  aip_approval_wait *w = data;
  w->inflight = 0;
  if (err) {
    if (err == -EDQUOT)
      aip_warn("approvals: agent %s has %llu pending approvals; ask refused", w->agent,
               (unsigned long long)w->m->max_pending);
    else
      aip_error("approvals: cannot store a pending approval (%d)", err);
    finish(w, err, AIP_APPROVAL_PENDING, NULL);
    return;
  }
  w->m->stats.pending++;
  /* registered before anyone hears of the id: a decision always finds its live waiter, and so
   * consumes the approval in the same UPDATE (aip_approvals_decide) */
  if (!w->forgotten && aip_map_put(&w->m->waits, w->id, strlen(w->id), w) == 0)
    w->registered = 1;
  emit(w->m, "created", a);
  if (w->forgotten) { /* the record stays for the operators; nobody waits */
    wait_free(w);
    return;
  }
  if (!w->registered) finish(w, -ENOMEM, AIP_APPROVAL_PENDING, NULL);
}

/* Arguments over max_args are stored as [size, "sha256 of them", "prefix"], the prefix cut at a
 * character boundary so that the whole stays within max_args; the held call keeps the full
 * arguments in memory (p->args), so what runs is unchanged. 0 with `out` filled, 1 when the
 * arguments are stored as they are. */
static int stored_args(const aip_approvals *m, aip_buf *out, const char *args) {
  size_t n = strlen(args);
  if (!m->max_args || n <= m->max_args) return 1;
  unsigned char h[crypto_hash_sha256_BYTES];
  char hex[65];
  crypto_hash_sha256(h, (const unsigned char *)args, n);
  sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
  size_t room = m->max_args > 128 ? m->max_args - 128 : 0, keep = room < n ? room : n;
  for (int tries = 0; tries < 16; tries++) {
    while (keep > 0 && ((unsigned char)args[keep] & 0xC0) == 0x80) keep--; /* a boundary */
    out->len = 0;
    if (aip_buf_printf(out, "[%zu,\"%s\",", n, hex) || aip_buf_json_string(out, args, keep, 1) ||
        aip_buf_puts(out, "]"))
      return 1;
    if (out->len <= m->max_args || keep == 0) return 0;
    size_t over = out->len - m->max_args; /* escapes grew it: cut that much more */
    keep = keep > over ? keep - over : 0;
  }
  return 1;
}

static void create_record(aip_approval_wait *w) {
  aip_approval a;
  memset(&a, 0, sizeof(a));
  unsigned char rnd[16];
  randombytes_buf(rnd, sizeof(rnd));
  sodium_bin2hex(w->id, sizeof(w->id), rnd, sizeof(rnd));
  memcpy(a.id, w->id, sizeof(a.id));
  a.agent = w->agent;
  a.server = w->server;
  a.tool = w->tool;
  aip_buf shown;
  aip_buf_init(&shown);
  a.arguments = stored_args(w->m, &shown, w->args) ? w->args : shown.data;
  memcpy(a.args_hash, w->hash, sizeof(a.args_hash));
  a.created_ms = aip_wall_ms();
  a.expires_ms = a.created_ms + (int64_t)w->m->timeout_ms;
  w->inflight = 1;
  aip_store_approval_create(w->m->store, &a, w->m->max_pending, on_created, w);
  aip_buf_free(&shown);
}

/* A claimed approval whose call went away before it ran is given back (used_ms -> 0) so a
 * later retry can still claim it; if that retry came first, it asks again (fail closed). */
static void give_back(aip_approvals *m, const aip_approval *a) {
  aip_store_approval_set_used(m->store, a->id, a->used_ms, 0, NULL, NULL);
}

static void on_claimed(void *data, int err, const aip_approval *a) {
  aip_approval_wait *w = data;
  w->inflight = 0;
  if (err == 0 && w->forgotten) {
    give_back(w->m, a);
    wait_free(w);
  } else if (err == 0) { /* approved while the agent was away: this retry is served once */
    finish(w, 0, AIP_APPROVAL_APPROVED, a);
  } else if (w->forgotten) {
    wait_free(w);
  } else {
    create_record(w);
  }
}

aip_approval_wait *aip_approvals_ask(aip_approvals *m, const char *agent, const char *server,
                                     const char *tool, const char *args_json,
                                     const char *call_json, aip_approval_outcome cb, void *data) {
  aip_approval_wait *w = calloc(1, sizeof(*w));
  if (!w) return NULL;
  w->m = m;
  w->cb = cb;
  w->data = data;
  w->agent = strdup(agent);
  w->server = strdup(server);
  w->tool = strdup(tool);
  w->args = strdup(args_json ? args_json : "{}");
  if (!w->agent || !w->server || !w->tool || !w->args) {
    wait_free(w);
    return NULL;
  }
  unsigned char h[crypto_hash_sha256_BYTES];
  if (!call_json) call_json = w->args;
  crypto_hash_sha256(h, (const unsigned char *)call_json, strlen(call_json));
  sodium_bin2hex(w->hash, sizeof(w->hash), h, sizeof(h));
  w->inflight = 1;
  int64_t now = aip_wall_ms();
  aip_store_approval_claim(m->store, agent, tool, w->hash, now - (int64_t)m->grace_ms, now,
                           on_claimed, w);
  return w;
}

void aip_approvals_forget(aip_approvals *m, aip_approval_wait *w) {
  w->forgotten = 1;
  if (!w->inflight) wait_free(w);
}

/* ---- decide and expire ------------------------------------------------------------------------ */

typedef struct decide_ctx {
  aip_approvals *m;
  aip_approval_done done;
  void *data;
  int consumed; /* the UPDATE marked the approval used: its live waiter gets it */
} decide_ctx;

/* A waiter that was not known when the decision was sent (cannot happen while waiters register
 * before their id is published; kept fail-closed): it runs only if it claims the record. */
static void on_live_claimed(void *data, int err, const aip_approval *a) {
  aip_approval_wait *w = data;
  w->inflight = 0;
  if (err == 0 && w->forgotten) give_back(w->m, a);
  if (w->forgotten) wait_free(w);
  else finish(w, err ? -EALREADY : 0, AIP_APPROVAL_APPROVED, a);
}

static void deliver(decide_ctx *c, const aip_approval *a) {
  aip_approval_wait *w = aip_map_get(&c->m->waits, a->id, strlen(a->id));
  if (a->status != AIP_APPROVAL_APPROVED) {
    if (w) finish(w, 0, a->status, a);
  } else if (w && c->consumed) {
    finish(w, 0, a->status, a);
  } else if (w) {
    w->inflight = 1;
    aip_store_approval_set_used(c->m->store, a->id, 0, aip_wall_ms(), on_live_claimed, w);
  } else if (c->consumed) { /* the call went away while the decision was being written */
    give_back(c->m, a);
  }
}

static void on_decided(void *data, int err, const aip_approval *a) {
  decide_ctx *c = data;
  if (!err && a) {
    count_decided(c->m, a);
    emit(c->m, "decided", a);
    deliver(c, a);
  }
  if (c->done) c->done(c->data, err, a);
  free(c);
}

/* An approval whose call is waiting live is consumed by the same UPDATE that approves it: no
 * retry can claim it in between. Without a live waiter it stays claimable (once) by a retry. */
void aip_approvals_decide(aip_approvals *m, const char *id, aip_approval_status to,
                          const char *by, const char *reason, aip_approval_done done,
                          void *data) {
  decide_ctx *c = malloc(sizeof(*c));
  if (!c) {
    if (done) done(data, -ENOMEM, NULL);
    return;
  }
  aip_approval_wait *w = aip_map_get(&m->waits, id, strlen(id));
  *c = (decide_ctx){m, done, data, to == AIP_APPROVAL_APPROVED && w && !w->forgotten};
  aip_store_approval_decide(m->store, id, to, by, reason, aip_wall_ms(), c->consumed, on_decided,
                            c);
}

static void on_expired(void *data, int err, const aip_approval *list, size_t n) {
  aip_approvals *m = data;
  m->expiring = 0;
  for (size_t i = 0; !err && i < n; i++) {
    count_decided(m, &list[i]);
    emit(m, "decided", &list[i]);
    aip_approval_wait *w = aip_map_get(&m->waits, list[i].id, strlen(list[i].id));
    if (w) finish(w, 0, AIP_APPROVAL_EXPIRED, &list[i]);
  }
}

static void on_tick(uv_timer_t *t) {
  aip_approvals *m = t->data;
  if (m->expiring) return;
  m->expiring = 1;
  aip_store_approval_expire(m->store, aip_wall_ms(), on_expired, m);
}

/* ---- lifecycle and small accessors -------------------------------------------------------- */

aip_approvals *aip_approvals_new(uv_loop_t *loop, aip_store *store, uint64_t timeout_ms,
                                 uint64_t retry_grace_ms) {
  aip_approvals *m = calloc(1, sizeof(*m));
  if (!m) return NULL;
  m->loop = loop;
  m->store = store;
  m->timeout_ms = timeout_ms;
  m->grace_ms = retry_grace_ms;
  m->stats.decision_seconds.bounds = aip_histogram_human_bounds;
  /* records left pending by an earlier run count too; the gauge is kept from here on */
  if (aip_store_approval_count(store, AIP_APPROVAL_PENDING, &m->stats.pending))
    aip_warn("approvals: cannot count the pending records; aip_approvals_pending starts at 0");
  aip_map_init(&m->waits);
  uv_timer_init(loop, &m->expiry);
  m->expiry.data = m;
  uv_timer_start(&m->expiry, on_tick, EXPIRY_TICK_MS, EXPIRY_TICK_MS);
  return m;
}

void aip_approvals_set_limits(aip_approvals *m, uint64_t max_pending_per_agent,
                              uint64_t max_args_size) {
  m->max_pending = max_pending_per_agent;
  m->max_args = max_args_size;
}

static void on_timer_closed(uv_handle_t *h) {
  aip_approvals *m = h->data;
  aip_map_free(&m->waits);
  free(m);
}

/* Waiters still registered are told nothing more: their calls end with their sessions. */
void aip_approvals_free(aip_approvals *m) {
  if (!m) return;
  size_t it = 0;
  const aip_map_entry *e;
  while (aip_map_next(&m->waits, &it, &e)) {
    aip_approval_wait *w = e->value;
    w->registered = 0;
    wait_free(w);
  }
  uv_close((uv_handle_t *)&m->expiry, on_timer_closed);
}

int aip_approvals_subscribe(aip_approvals *m, aip_approval_event cb, void *data) {
  if (m->subs_n == MAX_SUBSCRIBERS) return -ENOSPC;
  m->subs[m->subs_n++] = (subscriber){cb, data};
  return 0;
}

void aip_approvals_unsubscribe(aip_approvals *m, aip_approval_event cb, void *data) {
  for (size_t i = 0; i < m->subs_n; i++)
    if (m->subs[i].cb == cb && m->subs[i].data == data) {
      m->subs[i] = m->subs[--m->subs_n];
      return;
    }
}

aip_store *aip_approvals_store(aip_approvals *m) { return m->store; }

aip_approvals_stats *aip_approvals_stats_of(aip_approvals *m) { return &m->stats; }

uint64_t aip_approvals_waiting(const aip_approvals *m) { return m->waits.used; }
