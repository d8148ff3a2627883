/* store_internal.h -- the store's private parts, shared by its files. */
#ifndef AIP_STORE_INTERNAL_H
#define AIP_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "engine/histogram.h"
#include "engine/map.h"
#include "store/store.h"

#define AIP_STORE_STMT_CACHE 24

typedef struct aip_store_stmt {
  const char *sql; /* a string literal: looked up by address */
  sqlite3_stmt *st;
} aip_store_stmt;

struct aip_store {
  sqlite3 *db;
  pthread_t thread;
  pthread_mutex_t mu;    /* guards everything below but db */
  pthread_mutex_t db_mu; /* the connection: store thread batches and aip_store_sync */
  aip_store_stmt stmts[AIP_STORE_STMT_CACHE]; /* prepared once, reused by batches (db_mu) */
  size_t stmts_n;
  pthread_cond_t cv;
  aip_store_req *in_head, *in_tail;   /* submitted, not yet run */
  aip_store_req *out_head, *out_tail; /* run, completion pending */
  uint64_t depth;
  uint64_t last_batch_us;
  aip_histogram batches; /* every batch's duration (aip_store_batch_seconds) */
  int stop;
  int sleeping;          /* the thread waits on cv: a submission must signal it */
  uint64_t write_errors; /* aip_store_write_errors */
  int failing;           /* aip_store_failing */
  uv_async_t async;
};

/* Statements for requests (store.c). Inside a batch, `sql` (a string literal) is prepared once
 * per store and reused: parsing costs more than most of the statements it prepares. Outside a
 * batch (aip_store_sync) it is a plain prepare. NULL on error. Give it back with
 * aip_store__release (reset for reuse, or finalized). */
sqlite3_stmt *aip_store__prepare(sqlite3 *db, const char *sql);
void aip_store__release(sqlite3_stmt *st);

/* SQLite helpers (store_schema.c) */
char *aip_store__strdup_col(sqlite3_stmt *st, int col);

#endif
