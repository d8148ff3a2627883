/* approvals.c -- the approval queue's loop-side half (see approvals.h).
 *
 * Waiters are kept in a map by approval id. A waiter whose call goes away while a store request
 * about it is in flight is only marked `forgotten`, and freed when that request completes:
 * store callbacks always find their waiter alive.
 */
#include "gateway/approvals.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/map.h"
#include "gateway/clock.h"
#include "gateway/log.h"

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
    aip_error("approvals: cannot store a pending approval (%d)", err);
    finish(w, err, AIP_APPROVAL_PENDING, NULL);
    return;
  }
  w->m->stats.pending++;
  emit(w->m, "created", a);
  if (w->forgotten) { /* the record stays for the operators; nobody waits */
    wait_free(w);
    return;
  }
  if (aip_map_put(&w->m->waits, w->id, strlen(w->id), w)) {
    finish(w, -ENOMEM, AIP_APPROVAL_PENDING, NULL);
    return;
  }
  w->registered = 1;
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
  a.arguments = w->args;
  memcpy(a.args_hash, w->hash, sizeof(a.args_hash));
  a.created_ms = aip_wall_ms();
  a.expires_ms = a.created_ms + (int64_t)w->m->timeout_ms;
  w->inflight = 1;
  aip_store_approval_create(w->m->store, &a, on_created, w);
}

static void on_claimed(void *data, int err, const aip_approval *a) {
  aip_approval_wait *w = data;
  w->inflight = 0;
  if (err == 0) { /* approved while the agent was away: this retry is served once */
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
} decide_ctx;

static void on_decided(void *data, int err, const aip_approval *a) {
  decide_ctx *c = data;
  if (!err && a) {
    count_decided(c->m, a);
    emit(c->m, "decided", a);
    aip_approval_wait *w = aip_map_get(&c->m->waits, a->id, strlen(a->id));
    if (w) finish(w, 0, a->status, a);
  }
  if (c->done) c->done(c->data, err, a);
  free(c);
}

void aip_approvals_decide(aip_approvals *m, const char *id, aip_approval_status to,
                          const char *by, const char *reason, aip_approval_done done,
                          void *data) {
  decide_ctx *c = malloc(sizeof(*c));
  if (!c) {
    if (done) done(data, -ENOMEM, NULL);
    return;
  }
  *c = (decide_ctx){m, done, data};
  aip_store_approval_decide(m->store, id, to, by, reason, aip_wall_ms(), on_decided, c);
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

/* ---- JSON ------------------------------------------------------------------------------------ */

static int add_time(aip_buf *b, const char *key, int64_t ms) {
  if (!ms) return aip_buf_printf(b, ",\"%s\":null", key);
  time_t sec = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  return aip_buf_printf(b, ",\"%s\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", key,
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec, (int)(ms % 1000));
}

static int add_str(aip_buf *b, const char *key, const char *v) {
  int err = aip_buf_printf(b, ",\"%s\":", key);
  if (err) return err;
  return v ? aip_buf_json_string(b, v, strlen(v), 1) : aip_buf_puts(b, "null");
}

int aip_approval_to_json(aip_buf *b, const aip_approval *a) {
  int err = aip_buf_printf(b, "{\"id\":\"%s\"", a->id);
  if (!err) err = add_str(b, "agent", a->agent);
  if (!err) err = add_str(b, "server", a->server);
  if (!err) err = add_str(b, "tool", a->tool);
  /* arguments are JSON the gateway itself produced (strictly parsed, then printed) */
  if (!err) err = aip_buf_printf(b, ",\"arguments\":%s", a->arguments ? a->arguments : "{}");
  if (!err) err = add_time(b, "created_at", a->created_ms);
  if (!err) err = add_time(b, "expires_at", a->expires_ms);
  if (!err) err = aip_buf_printf(b, ",\"status\":\"%s\"", aip_approval_status_name(a->status));
  if (!err) err = add_str(b, "decided_by", a->decided_by);
  if (!err) err = add_time(b, "decided_at", a->decided_ms);
  if (!err) err = add_str(b, "reason", a->reason);
  if (!err) err = aip_buf_puts(b, "}");
  return err;
}
