/* store_buckets.c -- rate-limit buckets, written behind.
 *
 * The loop thread owns the live buckets (in the engine's rate state); it only tells the store
 * the latest value. Values wait here, one per (agent, tool), and the next batch writes them all
 * in its transaction: N updates of a hot bucket between two batches cost one row write. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

typedef struct bucket_row {
  size_t key_len; /* agent, NUL, tool */
  double tokens;
  int64_t last_ms;
  char key[];
} bucket_row;

void aip_store__buckets_init(aip_store *s) { aip_map_init(&s->buckets); }

static void free_rows(aip_map *m) {
  size_t it = 0;
  const aip_map_entry *e;
  while (aip_map_next(m, &it, &e)) free(e->value);
  aip_map_free(m);
}

void aip_store__buckets_free(aip_store *s) { free_rows(&s->buckets); }

int aip_store__buckets_pending(aip_store *s) {
  pthread_mutex_lock(&s->mu);
  int n = s->buckets.used > 0;
  pthread_mutex_unlock(&s->mu);
  return n;
}

void aip_store_bucket_put(aip_store *s, const char *agent, const char *tool, double tokens,
                          int64_t last_ms) {
  size_t la = strlen(agent), lt = strlen(tool), n = la + 1 + lt;
  char stack[256], *key = n <= sizeof(stack) ? stack : malloc(n);
  if (!key) return;
  memcpy(key, agent, la + 1);
  memcpy(key + la + 1, tool, lt);
  pthread_mutex_lock(&s->mu);
  bucket_row *r = aip_map_get(&s->buckets, key, n);
  if (!r && (r = malloc(sizeof(*r) + n))) {
    r->key_len = n;
    memcpy(r->key, key, n);
    if (aip_map_put(&s->buckets, r->key, n, r)) {
      free(r);
      r = NULL;
    }
  }
  if (r) {
    r->tokens = tokens;
    r->last_ms = last_ms;
    if (!s->buckets_dirty) pthread_cond_signal(&s->cv);
    s->buckets_dirty = 1;
  }
  pthread_mutex_unlock(&s->mu);
  if (key != stack) free(key);
}

void aip_store__buckets_flush(aip_store *s) {
  pthread_mutex_lock(&s->mu);
  aip_map rows = s->buckets;
  aip_map_init(&s->buckets);
  s->buckets_dirty = 0;
  pthread_mutex_unlock(&s->mu);
  if (!rows.used) {
    aip_map_free(&rows);
    return;
  }
  sqlite3_stmt *st = NULL;
  st = aip_store__prepare(s->db, "INSERT OR REPLACE INTO rate_buckets (agent, tool, tokens, "
                                 "last_ms) VALUES (?, ?, ?, ?)");
  size_t it = 0;
  const aip_map_entry *e;
  while (st && aip_map_next(&rows, &it, &e)) {
    const bucket_row *r = e->value;
    size_t la = strlen(r->key);
    sqlite3_bind_text(st, 1, r->key, (int)la, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->key + la + 1, (int)(r->key_len - la - 1), SQLITE_STATIC);
    sqlite3_bind_double(st, 3, r->tokens);
    sqlite3_bind_int64(st, 4, r->last_ms);
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  aip_store__release(st);
  free_rows(&rows);
}

typedef struct load_ctx {
  aip_store_bucket_cb cb;
  void *data;
} load_ctx;

static int load(sqlite3 *db, void *arg) {
  load_ctx *c = arg;
  sqlite3_stmt *st;
  if (!(st = aip_store__prepare(db, "SELECT agent, tool, tokens, last_ms FROM rate_buckets")))
    return -EIO;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    c->cb(c->data, (const char *)sqlite3_column_text(st, 0),
          (const char *)sqlite3_column_text(st, 1), sqlite3_column_double(st, 2),
          sqlite3_column_int64(st, 3));
  aip_store__release(st);
  return rc == SQLITE_DONE ? 0 : -EIO;
}

int aip_store_bucket_load(aip_store *s, aip_store_bucket_cb cb, void *data) {
  load_ctx c = {cb, data};
  return aip_store_sync(s, load, &c);
}
