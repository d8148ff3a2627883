/* store.h -- durable state in SQLite, on its own thread.
 *
 * The loop never touches SQLite. It submits requests; the store thread takes every request
 * queued so far, runs them in ONE transaction (so a burst of writes costs one fsync-equivalent
 * under WAL + synchronous=NORMAL), commits, and hands the completions back to the loop through
 * uv_async_send. A request's `done` therefore always runs on the loop thread, after its
 * transaction committed (or failed).
 *
 * What is stored (schema in store_schema.c, versioned with PRAGMA user_version):
 *   - rate-limit buckets per (agent, normalized tool);
 *   - the approval queue.
 */
#ifndef AIP_STORE_H
#define AIP_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "engine/histogram.h"

typedef struct aip_store aip_store;
typedef struct sqlite3 sqlite3;

/* ---- the generic request ---------------------------------------------------------------- */

typedef struct aip_store_req aip_store_req;
struct aip_store_req {
  /* Runs on the store thread inside the batch transaction; returns 0 or a negative error. An
   * error rolls back only this request (a savepoint), not the batch. */
  int (*exec)(sqlite3 *db, aip_store_req *r);
  /* Runs on the loop thread after commit; owns (and frees) the request. */
  void (*done)(aip_store_req *r, int err);
  int err;
  aip_store_req *next;
};

/* Opens (creating) the database, applies migrations, starts the thread. Runs synchronously:
 * call it at start-up, before serving. Errors name the file and what SQLite said. */
int aip_store_open(uv_loop_t *loop, const char *path, aip_store **out, aip_error *err);
/* Queues `r`; `done` runs later on the loop thread (never inside this call). */
void aip_store_submit(aip_store *s, aip_store_req *r);
/* Runs `exec` of every request still queued, stops the thread, closes the database and the
 * loop handle. Completions of the final batch run before it returns. */
void aip_store_close(aip_store *s);

uint64_t aip_store_queue_depth(aip_store *s);
/* Time the last batch took on the store thread (transaction included), in microseconds. */
uint64_t aip_store_last_batch_us(aip_store *s);
/* Copies the histogram of every batch's duration so far (transaction included). */
void aip_store_batch_histogram(aip_store *s, aip_histogram *out);

/* Writes that failed (a request's I/O error, a transaction that could not begin or commit:
 * full disk, a lock held too long, a read-only file), since start. */
uint64_t aip_store_write_errors(aip_store *s);
/* 1 while the last transaction that wrote failed (until one commits again). */
int aip_store_failing(aip_store *s);

/* Runs `fn` on the calling thread with the database, for start-up loads (before the loop runs
 * requests). Returns what fn returns. */
int aip_store_sync(aip_store *s, int (*fn)(sqlite3 *db, void *data), void *data);

/* Schema (store_schema.c). */
#define AIP_STORE_SCHEMA_VERSION 2
int aip_store_migrate(sqlite3 *db, aip_error *err);

/* ---- rate-limit buckets (store_buckets.c) ------------------------------------------------ */

/* Writes one bucket; `done` (may be NULL) runs on the loop once it committed (err 0) or failed
 * (-EIO: the row on disk is what it was). 0 or -ENOMEM (nothing queued). */
typedef void (*aip_store_bucket_done)(void *data, int err);
int aip_store_bucket_write(aip_store *s, const char *agent, const char *tool, double tokens,
                           int64_t last_ms, aip_store_bucket_done done, void *data);
typedef void (*aip_store_bucket_cb)(void *data, const char *agent, const char *tool,
                                    double tokens, int64_t last_ms);
/* Start-up: calls cb for every stored bucket. */
int aip_store_bucket_load(aip_store *s, aip_store_bucket_cb cb, void *data);

/* ---- approvals (store_approvals.c) -------------------------------------------------------- */

typedef enum aip_approval_status {
  AIP_APPROVAL_PENDING = 0,
  AIP_APPROVAL_APPROVED,
  AIP_APPROVAL_DENIED,
  AIP_APPROVAL_EXPIRED
} aip_approval_status;

typedef struct aip_approval {
  char id[33];      /* hex of 16 random bytes */
  char *agent;
  char *server;
  char *tool;
  char *arguments;  /* JSON text, DLP-redacted: an object; or, when the arguments were over
                     * approvals.max_args_size, [size, "sha256 hex", "prefix"] (an array is
                     * never a call's arguments, so the two cannot be confused) */
  char args_hash[65];
  int64_t created_ms;
  int64_t expires_ms;
  aip_approval_status status;
  char *decided_by; /* NULL while pending */
  int64_t decided_ms;
  char *reason;
  int64_t used_ms;  /* when a call executed under this approval (delivered live, or claimed by
                     * a retry after a disconnect); 0 = unused. An approval is used once. */
} aip_approval;

const char *aip_approval_status_name(aip_approval_status s);
int aip_approval_status_parse(const char *s, aip_approval_status *out);
void aip_approval_clear(aip_approval *a); /* frees the strings */

typedef void (*aip_approval_done)(void *data, int err, const aip_approval *a);
typedef void (*aip_approval_list_done)(void *data, int err, const aip_approval *list, size_t n);
/* A page of the list: `more` is 1 when rows after these exist (or the page was cut short by
 * its byte budget), so the next page starts at offset + n. */
typedef void (*aip_approval_page_done)(void *data, int err, const aip_approval *list, size_t n,
                                       int more);

/* Inserts a pending approval (committed when `done` runs). With `max_pending` > 0 the agent's
 * pending records are counted in the same store request first: at the cap, nothing is
 * inserted and err is -EDQUOT. */
void aip_store_approval_create(aip_store *s, const aip_approval *a, uint64_t max_pending,
                               aip_approval_done done, void *data);
/* pending -> approved/denied. err -ENOENT for an unknown id, -EALREADY when it is no longer
 * pending; `a` is the record after the change (or as it stands, on -EALREADY). `consume`
 * (approvals only): the approval is delivered to its waiting call, so it is marked used in the
 * same UPDATE and no retry can claim it. */
void aip_store_approval_decide(aip_store *s, const char *id, aip_approval_status to,
                               const char *by, const char *reason, int64_t now_ms, int consume,
                               aip_approval_done done, void *data);
void aip_store_approval_get(aip_store *s, const char *id, aip_approval_done done, void *data);
/* Newest first; `status` < 0 means any. At most `limit` rows, and rows are added only while
 * their arguments total at most `budget` bytes (the first row always). */
void aip_store_approval_list(aip_store *s, int status, size_t limit, size_t offset,
                             size_t budget, aip_approval_page_done done, void *data);
/* Compare-and-set of an approved record's used_ms (from -> to): err 0 when it changed, -EALREADY
 * when the record was not approved with used_ms == from. Claims an approval for a live call
 * (0 -> now) or gives back one whose call went away before it ran (now -> 0). */
void aip_store_approval_set_used(aip_store *s, const char *id, int64_t from, int64_t to,
                                 aip_approval_done done, void *data);
/* Every pending approval whose expires_ms <= now becomes expired; the list holds them. */
void aip_store_approval_expire(aip_store *s, int64_t now_ms, aip_approval_list_done done,
                               void *data);
/* An approved, unused approval for (agent, tool, args_hash) decided at or after `since_ms`
 * is marked used and returned (err 0), else err -ENOENT: lets an agent that disconnected while
 * waiting retry the same call once. */
/* Start-up: the number of records with status `st`, read synchronously (like
 * aip_store_bucket_load). 0 or -EIO. */
int aip_store_approval_count(aip_store *s, aip_approval_status st, uint64_t *out);
void aip_store_approval_claim(aip_store *s, const char *agent, const char *tool,
                              const char *args_hash, int64_t since_ms, int64_t now_ms,
                              aip_approval_done done, void *data);

#endif
