/* store_approvals.c -- the approval queue's rows. Every operation is one request run by the
 * store thread; the result is copied into the request and handed to the loop in `done`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

#define COLS "id, agent, server, tool, arguments, args_hash, created_ms, expires_ms, status, " \
             "decided_by, decided_ms, reason, used_ms"

typedef struct appr_req {
  aip_store_req base;
  /* inputs */
  aip_approval in;
  int64_t now_ms, since_ms;
  int status, consume;
  size_t limit, offset, budget;
  uint64_t max_pending;
  int64_t used_from, used_to;
  /* outputs */
  aip_approval *out;
  size_t out_n;
  int more;
  /* completion */
  aip_approval_done done1;
  aip_approval_list_done donen;
  aip_approval_page_done donep;
  void *data;
} appr_req;

static const char *const status_names[] = {"pending", "approved", "denied", "expired"};

const char *aip_approval_status_name(aip_approval_status s) {
  return (unsigned)s < 4 ? status_names[s] : "unknown";
}

int aip_approval_status_parse(const char *s, aip_approval_status *out) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, status_names[i]) == 0) {
      *out = (aip_approval_status)i;
      return 0;
    }
  return -EINVAL;
}

void aip_approval_clear(aip_approval *a) {
  free(a->agent);
  free(a->server);
  free(a->tool);
  free(a->arguments);
  free(a->decided_by);
  free(a->reason);
  memset(a, 0, sizeof(*a));
}

static void read_row(sqlite3_stmt *st, aip_approval *a) {
  memset(a, 0, sizeof(*a));
  snprintf(a->id, sizeof(a->id), "%s", (const char *)sqlite3_column_text(st, 0));
  a->agent = aip_store__strdup_col(st, 1);
  a->server = aip_store__strdup_col(st, 2);
  a->tool = aip_store__strdup_col(st, 3);
  a->arguments = aip_store__strdup_col(st, 4);
  snprintf(a->args_hash, sizeof(a->args_hash), "%s", (const char *)sqlite3_column_text(st, 5));
  a->created_ms = sqlite3_column_int64(st, 6);
  a->expires_ms = sqlite3_column_int64(st, 7);
  a->status = (aip_approval_status)sqlite3_column_int(st, 8);
  a->decided_by = aip_store__strdup_col(st, 9);
  a->decided_ms = sqlite3_column_int64(st, 10);
  a->reason = aip_store__strdup_col(st, 11);
  a->used_ms = sqlite3_column_int64(st, 12);
}

/* Runs a prepared SELECT and appends every row to r->out. */
static int collect(sqlite3_stmt *st, appr_req *r) {
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    aip_approval *n = realloc(r->out, (r->out_n + 1) * sizeof(*n));
    if (!n) return -ENOMEM;
    r->out = n;
    read_row(st, &r->out[r->out_n++]);
  }
  return rc == SQLITE_DONE ? 0 : -EIO;
}

static int select_by_id(sqlite3 *db, const char *id, appr_req *r) {
  sqlite3_stmt *st;
  if (!(st = aip_store__prepare(db, "SELECT " COLS " FROM approvals WHERE id = ?")))
    return -EIO;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  int rc = collect(st, r);
  aip_store__release(st);
  return rc ? rc : r->out_n ? 0 : -ENOENT;
}

/* ---- completion (loop thread) --------------------------------------------------------------- */

static void req_done(aip_store_req *base, int err) {
  appr_req *r = (appr_req *)base;
  if (r->donep) r->donep(r->data, err, r->out, r->out_n, r->more);
  else if (r->donen) r->donen(r->data, err, r->out, r->out_n);
  else if (r->done1) r->done1(r->data, err, r->out_n ? &r->out[0] : NULL);
  for (size_t i = 0; i < r->out_n; i++) aip_approval_clear(&r->out[i]);
  free(r->out);
  aip_approval_clear(&r->in);
  free(r);
}

static appr_req *req_new(int (*exec)(sqlite3 *, aip_store_req *), void *data) {
  appr_req *r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  r->base.exec = exec;
  r->base.done = req_done;
  r->data = data;
  return r;
}

/* Out of memory before anything was queued: report it like any other failure, but from here. */
static void fail_now(aip_approval_done d1, aip_approval_list_done dn, void *data) {
  if (dn) dn(data, -ENOMEM, NULL, 0);
  else if (d1) d1(data, -ENOMEM, NULL);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* ---- create ------------------------------------------------------------------------------- */

/* The agent's pending records, counted on the store thread right before the insert: requests
 * run one at a time, so two asks cannot both see room for one more. */
static int pending_of(sqlite3 *db, const char *agent, uint64_t *n) {
  sqlite3_stmt *st;
  if (!(st = aip_store__prepare(db, "SELECT count(*) FROM approvals WHERE agent = ? AND "
                                   "status = 0")))
    return -EIO;
  sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
  if (!rc) *n = (uint64_t)sqlite3_column_int64(st, 0);
  aip_store__release(st);
  return rc;
}

static int exec_create(sqlite3 *db, aip_store_req *base) {
  appr_req *r = (appr_req *)base;
  const aip_approval *a = &r->in;
  sqlite3_stmt *st;
  if (r->max_pending) {
    uint64_t n = 0;
    int rc = pending_of(db, a->agent, &n);
    if (rc) return rc;
    if (n >= r->max_pending) return -EDQUOT;
  }
  if (!(st = aip_store__prepare(db, "INSERT INTO approvals (" COLS ") VALUES "
                                   "(?,?,?,?,?,?,?,?,?,NULL,0,NULL,0)")))
    return -EIO;
  sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, a->agent, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, a->server, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, a->tool, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, a->arguments, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, a->args_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, a->created_ms);
  sqlite3_bind_int64(st, 8, a->expires_ms);
  sqlite3_bind_int(st, 9, AIP_APPROVAL_PENDING);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
  aip_store__release(st);
  return rc ? rc : select_by_id(db, a->id, r);
}

void aip_store_approval_create(aip_store *s, const aip_approval *a, uint64_t max_pending,
                               aip_approval_done done, void *data) {
  appr_req *r = req_new(exec_create, data);
  if (!r) return fail_now(done, NULL, data);
  r->done1 = done;
  r->max_pending = max_pending;
  r->in = *a;
  r->in.agent = dup_or_null(a->agent);
  r->in.server = dup_or_null(a->server);
  r->in.tool = dup_or_null(a->tool);
  r->in.arguments = dup_or_null(a->arguments ? a->arguments : "{}");
  r->in.decided_by = r->in.reason = NULL;
  aip_store_submit(s, &r->base);
}

/* ---- decide ------------------------------------------------------------------------------- */

static int exec_decide(sqlite3 *db, aip_store_req *base) {
  appr_req *r = (appr_req *)base;
  sqlite3_stmt *st;
  if (!(st = aip_store__prepare(db, "UPDATE approvals SET status = ?, decided_by = ?, "
                                   "decided_ms = ?, reason = ?, used_ms = ? WHERE id = ? AND "
                                   "status = ?")))
    return -EIO;
  sqlite3_bind_int(st, 1, r->status);
  sqlite3_bind_text(st, 2, r->in.decided_by, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, r->now_ms);
  sqlite3_bind_text(st, 4, r->in.reason, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, r->consume && r->status == AIP_APPROVAL_APPROVED ? r->now_ms : 0);
  sqlite3_bind_text(st, 6, r->in.id, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 7, AIP_APPROVAL_PENDING);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
  int changed = sqlite3_changes(db);
  aip_store__release(st);
  if (rc) return rc;
  rc = select_by_id(db, r->in.id, r);
  if (rc) return rc;
  /* the row exists but was not pending: report it as it stands */
  return changed ? 0 : -EALREADY;
}

void aip_store_approval_decide(aip_store *s, const char *id, aip_approval_status to,
                               const char *by, const char *reason, int64_t now_ms, int consume,
                               aip_approval_done done, void *data) {
  appr_req *r = req_new(exec_decide, data);
  if (!r) return fail_now(done, NULL, data);
  r->done1 = done;
  r->consume = consume;
  snprintf(r->in.id, sizeof(r->in.id), "%s", id);
  r->status = to;
  r->now_ms = now_ms;
  r->in.decided_by = dup_or_null(by);
  r->in.reason = dup_or_null(reason);
  aip_store_submit(s, &r->base);
}

/* ---- get, list ------------------------------------------------------------------------------ */

static int exec_get(sqlite3 *db, aip_store_req *base) {
  appr_req *r = (appr_req *)base;
  return select_by_id(db, r->in.id, r);
}

void aip_store_approval_get(aip_store *s, const char *id, aip_approval_done done, void *data) {
  appr_req *r = req_new(exec_get, data);
  if (!r) return fail_now(done, NULL, data);
  r->done1 = done;
  snprintf(r->in.id, sizeof(r->in.id), "%s", id);
  aip_store_submit(s, &r->base);
}

static int exec_list(sqlite3 *db, aip_store_req *base) {
  appr_req *r = (appr_req *)base;
  sqlite3_stmt *st;
  const char *sql = r->status < 0
      ? "SELECT " COLS " FROM approvals ORDER BY created_ms DESC, id LIMIT ?1 OFFSET ?2"
      : "SELECT " COLS " FROM approvals WHERE status = ?3 ORDER BY created_ms DESC, id "
        "LIMIT ?1 OFFSET ?2";
  if (!(st = aip_store__prepare(db, sql))) return -EIO;
  /* one row past the page says whether there is a next one */
  sqlite3_bind_int64(st, 1, (sqlite3_int64)r->limit + 1);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)r->offset);
  if (r->status >= 0) sqlite3_bind_int(st, 3, r->status);
  int rc;
  size_t bytes = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    /* the size is read before the row is copied: an over-budget row is never loaded */
    size_t len = (size_t)sqlite3_column_bytes(st, 4);
    if (r->out_n == r->limit || (r->out_n && bytes + len > r->budget)) {
      r->more = 1;
      break;
    }
    aip_approval *n = realloc(r->out, (r->out_n + 1) * sizeof(*n));
    if (!n) {
      rc = SQLITE_NOMEM;
      break;
    }
    r->out = n;
    read_row(st, &r->out[r->out_n++]);
    bytes += len;
  }
  aip_store__release(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

void aip_store_approval_list(aip_store *s, int status, size_t limit, size_t offset,
                             size_t budget, aip_approval_page_done done, void *data) {
  appr_req *r = req_new(exec_list, data);
  if (!r) {
    done(data, -ENOMEM, NULL, 0, 0);
    return;
  }
  r->donep = done;
  r->status = status;
  r->limit = limit;
  r->offset = offset;
  r->budget = budget;
  aip_store_submit(s, &r->base);
}

/* ---- expire, claim -------------------------------------------------------------------------- */

static int exec_expire(sqlite3 *db, aip_store_req *base) {
  appr_req *r = (appr_req *)base;
  sqlite3_stmt *st;
  if (!(st = aip_store__prepare(db, "SELECT " COLS " FROM approvals WHERE status = 0 AND "
                                   "expires_ms <= ?")))
    return -EIO;
  sqlite3_bind_int64(st, 1, r->now_ms);
  int rc = collect(st, r);
  aip_store__release(st);
  if (rc || !r->out_n) return rc;
  if (!(st = aip_store__prepare(db, "UPDATE approvals SET status = 3, decided_ms = ?1 "
                                   "WHERE status = 0 AND expires_ms <= ?1")))
    return -EIO;
  sqlite3_bind_int64(st, 1, r->now_ms);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
  aip_store__release(st);
  for (size_t i = 0; i < r->out_n; i++) {
    r->out[i].status = AIP_APPROVAL_EXPIRED;
    r->out[i].decided_ms = r->now_ms;
  }
  return rc;
}

void aip_store_approval_expire(aip_store *s, int64_t now_ms, aip_approval_list_done done,
                               void *data) {
  appr_req *r = req_new(exec_expire, data);
  if (!r) return fail_now(NULL, done, data);
  r->donen = done;
  r->now_ms = now_ms;
  aip_store_submit(s, &r->base);
}

typedef struct count_ctx {
  aip_approval_status st;
  uint64_t n;
} count_ctx;

static int count_sync(sqlite3 *db, void *data) {
  count_ctx *c = data;
  sqlite3_stmt *st;
  if (!(st = aip_store__prepare(db, "SELECT count(*) FROM approvals WHERE status = ?")))
    return -EIO;
  sqlite3_bind_int(st, 1, (int)c->st);
  int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
  if (!rc) c->n = (uint64_t)sqlite3_column_int64(st, 0);
  aip_store__release(st);
  return rc;
}

int aip_store_approval_count(aip_store *s, aip_approval_status st, uint64_t *out) {
  count_ctx c = {st, 0};
  int rc = aip_store_sync(s, count_sync, &c);
  if (!rc) *out = c.n;
  return rc;
}

static int exec_claim(sqlite3 *db, aip_store_req *base) {
  appr_req *r = (appr_req *)base;
  sqlite3_stmt *st;
  if (!(st = aip_store__prepare(db, "SELECT " COLS " FROM approvals WHERE agent = ? AND "
                                   "tool = ? AND args_hash = ? AND status = 1 AND used_ms = 0 AND "
                                   "decided_ms >= ? ORDER BY decided_ms DESC LIMIT 1")))
    return -EIO;
  sqlite3_bind_text(st, 1, r->in.agent, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, r->in.tool, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, r->in.args_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, r->since_ms);
  int rc = collect(st, r);
  aip_store__release(st);
  if (rc) return rc;
  if (!r->out_n) return -ENOENT;
  if (!(st = aip_store__prepare(db, "UPDATE approvals SET used_ms = ? WHERE id = ? AND "
                                   "used_ms = 0")))
    return -EIO;
  sqlite3_bind_int64(st, 1, r->now_ms);
  sqlite3_bind_text(st, 2, r->out[0].id, -1, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
  int changed = sqlite3_changes(db);
  aip_store__release(st);
  r->out[0].used_ms = r->now_ms;
  return rc ? rc : changed ? 0 : -ENOENT;
}

void aip_store_approval_claim(aip_store *s, const char *agent, const char *tool,
                              const char *args_hash, int64_t since_ms, int64_t now_ms,
                              aip_approval_done done, void *data) {
  appr_req *r = req_new(exec_claim, data);
  if (!r) return fail_now(done, NULL, data);
  r->done1 = done;
  r->in.agent = dup_or_null(agent);
  r->in.tool = dup_or_null(tool);
  snprintf(r->in.args_hash, sizeof(r->in.args_hash), "%s", args_hash);
  r->since_ms = since_ms;
  r->now_ms = now_ms;
  aip_store_submit(s, &r->base);
}

/* ---- used_ms compare-and-set ---------------------------------------------------------------- */

static int exec_set_used(sqlite3 *db, aip_store_req *base) {
  appr_req *r = (appr_req *)base;
  sqlite3_stmt *st;
  if (!(st = aip_store__prepare(db, "UPDATE approvals SET used_ms = ? WHERE id = ? AND "
                                   "status = 1 AND used_ms = ?")))
    return -EIO;
  sqlite3_bind_int64(st, 1, r->used_to);
  sqlite3_bind_text(st, 2, r->in.id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, r->used_from);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
  int changed = sqlite3_changes(db);
  aip_store__release(st);
  if (rc) return rc;
  rc = select_by_id(db, r->in.id, r);
  return rc ? rc : changed ? 0 : -EALREADY;
}

void aip_store_approval_set_used(aip_store *s, const char *id, int64_t from, int64_t to,
                                 aip_approval_done done, void *data) {
  appr_req *r = req_new(exec_set_used, data);
  if (!r) return fail_now(done, NULL, data);
  r->done1 = done;
  snprintf(r->in.id, sizeof(r->in.id), "%s", id);
  r->used_from = from;
  r->used_to = to;
  aip_store_submit(s, &r->base);
}
