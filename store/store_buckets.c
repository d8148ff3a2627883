/* store_buckets.c -- rate-limit buckets.
 *
 * A bucket is written as a request of its own and its caller waits for the commit: the gateway
 * grants only tokens whose spending is already on disk (engine.h, aip_rate_reserve), so the
 * write must be known to have committed, or to have failed, before anything is granted. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

typedef struct bucket_req {
  aip_store_req req;
  aip_store_bucket_done done;
  void *data;
  double tokens;
  int64_t last_ms;
  size_t agent_len, tool_len;
  char key[]; /* agent, NUL, tool, NUL */
} bucket_req;

static int exec_write(sqlite3 *db, aip_store_req *r) {
  bucket_req *b = (bucket_req *)r;
  sqlite3_stmt *st = aip_store__prepare(db, "INSERT OR REPLACE INTO rate_buckets (agent, tool, "
                                            "tokens, last_ms) VALUES (?, ?, ?, ?)");
  if (!st) return -EIO;
  sqlite3_bind_text(st, 1, b->key, (int)b->agent_len, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, b->key + b->agent_len + 1, (int)b->tool_len, SQLITE_STATIC);
  sqlite3_bind_double(st, 3, b->tokens);
  sqlite3_bind_int64(st, 4, b->last_ms);
  int rc = sqlite3_step(st);
  aip_store__release(st);
  return rc == SQLITE_DONE ? 0 : -EIO;
}

static void done_write(aip_store_req *r, int err) {
  bucket_req *b = (bucket_req *)r;
  if (b->done) b->done(b->data, err);
  free(b);
}

int aip_store_bucket_write(aip_store *s, const char *agent, const char *tool, double tokens,
                           int64_t last_ms, aip_store_bucket_done done, void *data) {
  size_t la = strlen(agent), lt = strlen(tool);
  bucket_req *b = malloc(sizeof(*b) + la + lt + 2);
  if (!b) return -ENOMEM;
  *b = (bucket_req){.req = {.exec = exec_write, .done = done_write},
                    .done = done,
                    .data = data,
                    .tokens = tokens,
                    .last_ms = last_ms,
                    .agent_len = la,
                    .tool_len = lt};
  memcpy(b->key, agent, la + 1);
  memcpy(b->key + la + 1, tool, lt + 1);
  aip_store_submit(s, &b->req);
  return 0;
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
