/* store.c -- the store thread: batches of requests, one transaction per batch (see store.h).
 *
 * Each request runs inside a SAVEPOINT so a failing request is rolled back alone and the rest of
 * its batch still commits. Completions travel back in a second list and are run by the loop's
 * uv_async callback. A failed write is never silent: it is counted (aip_store_write_errors)
 * and the store reports itself failing until a transaction commits again; the request's
 * `done` gets the error, and it is up to its owner to retry or fail closed.
 */
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_internal.h"

static void run_completions(uv_async_t *h);

/* ---- queue ---------------------------------------------------------------------------------- */

static void push(aip_store_req **head, aip_store_req **tail, aip_store_req *r) {
  r->next = NULL;
  if (*tail) (*tail)->next = r;
  else *head = r;
  *tail = r;
}

/* Wakes the store thread only when it sleeps: a running batch picks the request up when it
 * ends. Every wake-up can hand the loop's core to the store thread (the kernel favours the
 * thread it just woke), so a burst of submissions must not wake it once per request; and the
 * signal goes after the unlock, so the woken thread does not at once block on the mutex. */
void aip_store_submit(aip_store *s, aip_store_req *r) {
  pthread_mutex_lock(&s->mu);
  push(&s->in_head, &s->in_tail, r);
  s->depth++;
  int wake = s->sleeping;
  s->sleeping = 0; /* one signal per sleep is enough */
  pthread_mutex_unlock(&s->mu);
  if (wake) pthread_cond_signal(&s->cv);
}

uint64_t aip_store_queue_depth(aip_store *s) {
  pthread_mutex_lock(&s->mu);
  uint64_t d = s->depth;
  pthread_mutex_unlock(&s->mu);
  return d;
}

uint64_t aip_store_last_batch_us(aip_store *s) {
  pthread_mutex_lock(&s->mu);
  uint64_t v = s->last_batch_us;
  pthread_mutex_unlock(&s->mu);
  return v;
}

void aip_store_batch_histogram(aip_store *s, aip_histogram *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->batches;
  pthread_mutex_unlock(&s->mu);
}

/* ---- the thread ----------------------------------------------------------------------------- */

static uint64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The store whose batch this thread is running (its db_mu held), for the statement cache. */
static __thread aip_store *batch_store;

sqlite3_stmt *aip_store__prepare(sqlite3 *db, const char *sql) {
  aip_store *s = batch_store && batch_store->db == db ? batch_store : NULL;
  int cached = 0;
  for (size_t i = 0; s && i < s->stmts_n; i++) {
    if (s->stmts[i].sql != sql) continue;
    if (!sqlite3_stmt_busy(s->stmts[i].st)) return s->stmts[i].st;
    cached = 1; /* in use by an enclosing step: this caller gets its own */
    break;
  }
  sqlite3_stmt *st = NULL;
  int keep = s && !cached && s->stmts_n < AIP_STORE_STMT_CACHE;
  if (sqlite3_prepare_v3(db, sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL) != SQLITE_OK) {
    sqlite3_finalize(st);
    return NULL;
  }
  if (keep) s->stmts[s->stmts_n++] = (aip_store_stmt){sql, st};
  return st;
}

void aip_store__release(sqlite3_stmt *st) {
  aip_store *s = batch_store;
  for (size_t i = 0; s && i < s->stmts_n; i++)
    if (s->stmts[i].st == st) {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st); /* bound text may point into a request about to be freed */
      return;
    }
  sqlite3_finalize(st);
}

static int exec_sql(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = aip_store__prepare(db, sql);
  if (!st) return -EIO;
  int rc = sqlite3_step(st);
  aip_store__release(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

/* Runs one batch in one transaction. */
static void run_batch(aip_store *s, aip_store_req *batch) {
  uint64_t t0 = mono_us();
  pthread_mutex_lock(&s->db_mu);
  batch_store = s;
  int tx = exec_sql(s->db, "BEGIN IMMEDIATE") == 0;
  uint64_t errors = 0;
  for (aip_store_req *r = batch; tx && r; r = r->next) {
    exec_sql(s->db, "SAVEPOINT req");
    r->err = r->exec ? r->exec(s->db, r) : 0;
    errors += r->err == -EIO; /* -ENOENT, -EALREADY ... are answers, not failed writes */
    exec_sql(s->db, r->err ? "ROLLBACK TO req" : "RELEASE req");
  }
  if (tx && exec_sql(s->db, "COMMIT") != 0) {
    exec_sql(s->db, "ROLLBACK");
    tx = 0;
  }
  if (!tx) {
    /* the whole batch is lost (BEGIN or COMMIT failed): say so to every request */
    errors = 0;
    for (aip_store_req *r = batch; r; r = r->next)
      if (!r->err || r->err == -EIO) {
        r->err = -EIO;
        errors++;
      }
    if (!errors) errors = 1;
  }
  batch_store = NULL;
  pthread_mutex_unlock(&s->db_mu);
  uint64_t us = mono_us() - t0;
  pthread_mutex_lock(&s->mu);
  s->last_batch_us = us;
  s->write_errors += errors;
  s->failing = errors > 0;
  aip_histogram_observe(&s->batches, (double)us / 1e6);
  pthread_mutex_unlock(&s->mu);
}

uint64_t aip_store_write_errors(aip_store *s) {
  pthread_mutex_lock(&s->mu);
  uint64_t v = s->write_errors;
  pthread_mutex_unlock(&s->mu);
  return v;
}

int aip_store_failing(aip_store *s) {
  pthread_mutex_lock(&s->mu);
  int v = s->failing;
  pthread_mutex_unlock(&s->mu);
  return v;
}

static void *store_main(void *arg) {
  aip_store *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->in_head && !s->stop) {
      s->sleeping = 1;
      pthread_cond_wait(&s->cv, &s->mu);
    }
    s->sleeping = 0;
    aip_store_req *batch = s->in_head;
    s->in_head = s->in_tail = NULL;
    s->depth = 0;
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    if (batch) run_batch(s, batch);
    pthread_mutex_lock(&s->mu);
    for (aip_store_req *r = batch, *n; r; r = n) {
      n = r->next;
      push(&s->out_head, &s->out_tail, r);
    }
    if (batch) {
      /* outside the lock: the loop wakes to take the list and must not find it held */
      pthread_mutex_unlock(&s->mu);
      uv_async_send(&s->async);
      pthread_mutex_lock(&s->mu);
    }
    if (stop && !s->in_head) break;
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static void run_completions(uv_async_t *h) {
  aip_store *s = h->data;
  pthread_mutex_lock(&s->mu);
  aip_store_req *r = s->out_head;
  s->out_head = s->out_tail = NULL;
  pthread_mutex_unlock(&s->mu);
  while (r) {
    aip_store_req *n = r->next;
    r->done(r, r->err);
    r = n;
  }
}

/* ---- open / close ----------------------------------------------------------------------------- */

static int open_db(const char *path, sqlite3 **db, aip_error *err) {
  int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                         SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK)
    return aip_error_set(err, -EIO, "%s: cannot open the store: %s", path,
                         *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
  sqlite3_busy_timeout(*db, 5000);
  /* WAL + NORMAL: a commit is durable against a process crash (kill -9) and costs no fsync;
   * only a power loss can drop the last transactions. */
  char *msg = NULL;
  if (sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                        "PRAGMA foreign_keys=ON;", NULL, NULL, &msg) != SQLITE_OK) {
    aip_error_set(err, -EIO, "%s: not a usable SQLite database: %s", path, msg ? msg : "?");
    sqlite3_free(msg);
    return -EIO;
  }
  return 0;
}

int aip_store_open(uv_loop_t *loop, const char *path, aip_store **out, aip_error *err) {
  aip_store *s = calloc(1, sizeof(*s));
  if (!s) return aip_error_set(err, -ENOMEM, "out of memory");
  int rc = open_db(path, &s->db, err);
  if (!rc) {
    rc = aip_store_migrate(s->db, err);
    if (rc) {
      char m[AIP_ERROR_MAX];
      snprintf(m, sizeof(m), "%s", err->msg);
      aip_error_set(err, rc, "%s: %s", path, m);
    }
  }
  if (rc) {
    sqlite3_close(s->db);
    free(s);
    return rc;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->db_mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  uv_async_init(loop, &s->async, run_completions);
  s->async.data = s;
  if (pthread_create(&s->thread, NULL, store_main, s) != 0) {
    uv_close((uv_handle_t *)&s->async, NULL);
    sqlite3_close(s->db);
    free(s);
    return aip_error_set(err, -EAGAIN, "cannot start the store thread");
  }
  *out = s;
  return 0;
}

static void on_async_closed(uv_handle_t *h) { free(h->data); }

void aip_store_close(aip_store *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  run_completions(&s->async);
  for (size_t i = 0; i < s->stmts_n; i++) sqlite3_finalize(s->stmts[i].st);
  sqlite3_close(s->db);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->db_mu);
  pthread_cond_destroy(&s->cv);
  uv_close((uv_handle_t *)&s->async, on_async_closed);
}

int aip_store_sync(aip_store *s, int (*fn)(sqlite3 *db, void *data), void *data) {
  pthread_mutex_lock(&s->db_mu);
  int rc = fn(s->db, data);
  pthread_mutex_unlock(&s->db_mu);
  return rc;
}
