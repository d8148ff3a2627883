/* test_store_basic.c -- the SQLite store: migrations from empty and from schema 1, a newer
 * schema refused, approvals (create, decide once, 409-style -EALREADY, unknown id, list and
 * filters, expiry, claim once), buckets written (done after the commit) and reloaded after a reopen, and many
 * concurrent requests completing on the loop thread. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "test.h"

static uv_loop_t *loop;
static char path[256];

/* ---- completion capture ---- */
typedef struct got {
  int calls;
  int err;
  aip_approval a;
  size_t n;
  int more;
  char ids[8][33];
} got;

static void on_one(void *data, int err, const aip_approval *a) {
  got *g = data;
  g->calls++;
  g->err = err;
  aip_approval_clear(&g->a);
  if (a) {
    g->a = *a;
    g->a.agent = a->agent ? strdup(a->agent) : NULL;
    g->a.server = a->server ? strdup(a->server) : NULL;
    g->a.tool = a->tool ? strdup(a->tool) : NULL;
    g->a.arguments = a->arguments ? strdup(a->arguments) : NULL;
    g->a.decided_by = a->decided_by ? strdup(a->decided_by) : NULL;
    g->a.reason = a->reason ? strdup(a->reason) : NULL;
  }
}

static void on_list(void *data, int err, const aip_approval *list, size_t n) {
  got *g = data;
  g->calls++;
  g->err = err;
  g->n = n;
  for (size_t i = 0; i < n && i < 8; i++) memcpy(g->ids[i], list[i].id, 33);
}

static void on_page(void *data, int err, const aip_approval *list, size_t n, int more) {
  on_list(data, err, list, n);
  ((got *)data)->more = more;
}

static void wait_for(got *g, int calls) {
  while (g->calls < calls) uv_run(loop, UV_RUN_ONCE);
}

static aip_approval make(const char *id, int64_t created, int64_t expires) {
  aip_approval a;
  memset(&a, 0, sizeof(a));
  snprintf(a.id, sizeof(a.id), "%s", id);
  a.agent = "bot";
  a.server = "files";
  a.tool = "write_file";
  a.arguments = "{\"path\":\"/tmp/x\"}";
  snprintf(a.args_hash, sizeof(a.args_hash), "hash-%s", id);
  a.created_ms = created;
  a.expires_ms = expires;
  return a;
}

static void test_approvals(aip_store *s) {
  got g = {0};
  aip_approval a1 = make("a1", 1000, 5000), a2 = make("a2", 2000, 3000);
  aip_store_approval_create(s, &a1, 0, on_one, &g);
  aip_store_approval_create(s, &a2, 0, on_one, &g);
  CHECK_INT(g.calls, 0); /* never from inside the call */
  wait_for(&g, 2);
  CHECK_INT(g.err, 0);
  CHECK_STR(g.a.id, "a2");
  CHECK_INT(g.a.status, AIP_APPROVAL_PENDING);
  /* decide once; the second decision is refused with the record as it stands */
  aip_store_approval_decide(s, "a1", AIP_APPROVAL_APPROVED, "alice", "looks fine", 4000, 0, on_one, &g);
  wait_for(&g, 3);
  CHECK_INT(g.err, 0);
  CHECK_INT(g.a.status, AIP_APPROVAL_APPROVED);
  CHECK_STR(g.a.decided_by, "alice");
  CHECK_STR(g.a.reason, "looks fine");
  aip_store_approval_decide(s, "a1", AIP_APPROVAL_DENIED, "bob", NULL, 4100, 0, on_one, &g);
  wait_for(&g, 4);
  CHECK_INT(g.err, -EALREADY);
  CHECK_INT(g.a.status, AIP_APPROVAL_APPROVED);
  CHECK_STR(g.a.decided_by, "alice");
  aip_store_approval_decide(s, "nope", AIP_APPROVAL_DENIED, "bob", NULL, 4100, 0, on_one, &g);
  wait_for(&g, 5);
  CHECK_INT(g.err, -ENOENT);
  /* list: newest first, filter by status */
  aip_store_approval_list(s, -1, 10, 0, 1 << 20, on_page, &g);
  wait_for(&g, 6);
  CHECK_INT(g.n, 2);
  CHECK_STR(g.ids[0], "a2");
  aip_store_approval_list(s, AIP_APPROVAL_PENDING, 10, 0, 1 << 20, on_page, &g);
  wait_for(&g, 7);
  CHECK(g.n == 1 && strcmp(g.ids[0], "a2") == 0);
  /* expiry turns only pending, overdue rows */
  aip_store_approval_expire(s, 3500, on_list, &g);
  wait_for(&g, 8);
  CHECK_INT(g.err, 0);
  CHECK_INT(g.n, 1);
  CHECK(g.n == 1 && strcmp(g.ids[0], "a2") == 0);
  aip_store_approval_get(s, "a2", on_one, &g);
  wait_for(&g, 9);
  CHECK_INT(g.a.status, AIP_APPROVAL_EXPIRED);
  /* an approval made after a disconnect serves one retry of the same call */
  aip_store_approval_claim(s, "bot", "write_file", "hash-a1", 3000, 6000, on_one, &g);
  wait_for(&g, 10);
  CHECK_INT(g.err, 0);
  CHECK_STR(g.a.id, "a1");
  aip_store_approval_claim(s, "bot", "write_file", "hash-a1", 3000, 6100, on_one, &g);
  wait_for(&g, 11);
  CHECK_INT(g.err, -ENOENT);
  aip_approval_clear(&g.a);
}

/* Issue 11: the per-agent pending cap, consumption by a live delivery, the used_ms
 * compare-and-set, and a list page bounded by rows and bytes. */
static void test_approval_limits(aip_store *s) {
  got g = {0};
  int calls = 0;
  aip_approval a = make("c1", 10000, 90000), b = make("c2", 10001, 90000),
               c = make("c3", 10002, 90000);
  a.agent = b.agent = c.agent = "capped";
  aip_store_approval_create(s, &a, 2, on_one, &g);
  aip_store_approval_create(s, &b, 2, on_one, &g);
  wait_for(&g, calls += 2);
  CHECK_INT(g.err, 0);
  aip_store_approval_create(s, &c, 2, on_one, &g); /* the third is over the cap */
  wait_for(&g, ++calls);
  CHECK_INT(g.err, -EDQUOT);
  aip_store_approval_get(s, "c3", on_one, &g);
  wait_for(&g, ++calls);
  CHECK_INT(g.err, -ENOENT);
  /* approved and delivered live: consumed in the same UPDATE, no retry claims it */
  aip_store_approval_decide(s, "c1", AIP_APPROVAL_APPROVED, "alice", NULL, 20000, 1, on_one, &g);
  wait_for(&g, ++calls);
  CHECK_INT(g.err, 0);
  CHECK(g.a.used_ms == 20000);
  aip_store_approval_claim(s, "capped", "write_file", "hash-c1", 0, 20001, on_one, &g);
  wait_for(&g, ++calls);
  CHECK_INT(g.err, -ENOENT);
  /* the cap counts pending records only: c1 decided frees a slot */
  aip_store_approval_create(s, &c, 2, on_one, &g);
  wait_for(&g, ++calls);
  CHECK_INT(g.err, 0);
  /* given back (the call went away): claimable once */
  aip_store_approval_set_used(s, "c1", 20000, 0, on_one, &g);
  wait_for(&g, ++calls);
  CHECK_INT(g.err, 0);
  aip_store_approval_set_used(s, "c1", 20000, 0, on_one, &g);
  wait_for(&g, ++calls);
  CHECK_INT(g.err, -EALREADY);
  aip_store_approval_claim(s, "capped", "write_file", "hash-c1", 0, 20002, on_one, &g);
  wait_for(&g, ++calls);
  CHECK_INT(g.err, 0);
  aip_store_approval_claim(s, "capped", "write_file", "hash-c1", 0, 20003, on_one, &g);
  wait_for(&g, ++calls);
  CHECK_INT(g.err, -ENOENT);
  aip_store_approval_set_used(s, "c2", 0, 1, on_one, &g); /* pending: not approved */
  wait_for(&g, ++calls);
  CHECK_INT(g.err, -EALREADY);
  aip_approval_clear(&g.a);
  /* pages: 2 rows of the pending ones (c2, c3 and a2's kin), `more` when rows remain */
  got p = {0};
  aip_store_approval_list(s, AIP_APPROVAL_PENDING, 1, 0, 1 << 20, on_page, &p);
  wait_for(&p, 1);
  CHECK(p.n == 1 && p.more == 1);
  aip_store_approval_list(s, AIP_APPROVAL_PENDING, 2, 0, 1 << 20, on_page, &p);
  wait_for(&p, 2);
  CHECK(p.n == 2 && p.more == 0);
  /* a byte budget smaller than one row: still one row, and `more` */
  aip_store_approval_list(s, AIP_APPROVAL_PENDING, 10, 0, 1, on_page, &p);
  wait_for(&p, 3);
  CHECK(p.n == 1 && p.more == 1);
}

static void load_bucket(void *data, const char *agent, const char *tool, double tokens,
                        int64_t last_ms) {
  int *found = data;
  if (strcmp(agent, "bot") == 0 && strcmp(tool, "deploy") == 0 && tokens == 1.5 && last_ms == 77)
    (*found)++;
}

static void on_wrote(void *data, int err) { *(int *)data = err; }

static void test_concurrency(aip_store *s) {
  /* many requests submitted at once complete, each exactly once */
  enum { N = 500 };
  got g = {0};
  for (int i = 0; i < N; i++) {
    char id[33];
    snprintf(id, sizeof(id), "c%d", i);
    aip_approval a = make(id, 10000 + i, 99999);
    aip_store_approval_create(s, &a, 0, on_one, &g);
  }
  wait_for(&g, N);
  CHECK_INT(g.calls, N);
  CHECK_INT(g.err, 0);
  aip_approval_clear(&g.a);
}

static void test_migrations(void) {
  /* a schema-1 database (buckets only) is upgraded in place, keeping its rows */
  char p1[300];
  snprintf(p1, sizeof(p1), "%s.v1", path);
  unlink(p1);
  sqlite3 *db;
  sqlite3_open(p1, &db);
  sqlite3_exec(db, "CREATE TABLE rate_buckets (agent TEXT NOT NULL, tool TEXT NOT NULL, "
                   "tokens REAL NOT NULL, last_ms INTEGER NOT NULL, PRIMARY KEY (agent, tool));"
                   "INSERT INTO rate_buckets VALUES ('bot','deploy',1.5,77);"
                   "PRAGMA user_version=1;", NULL, NULL, NULL);
  sqlite3_close(db);
  aip_store *s;
  aip_error err = {{0}};
  CHECK_INT(aip_store_open(loop, p1, &s, &err), 0);
  int found = 0;
  CHECK_INT(aip_store_bucket_load(s, load_bucket, &found), 0);
  CHECK_INT(found, 1);
  aip_store_close(s);
  /* a newer schema is refused with a clear message */
  sqlite3_open(p1, &db);
  sqlite3_exec(db, "PRAGMA user_version=99;", NULL, NULL, NULL);
  sqlite3_close(db);
  CHECK(aip_store_open(loop, p1, &s, &err) != 0);
  CHECK(strstr(err.msg, "newer") != NULL);
  /* garbage is refused, not crashed on */
  FILE *f = fopen(p1, "w");
  fputs("this is not a database, just text that is long enough to look like a header.....\n", f);
  fclose(f);
  CHECK(aip_store_open(loop, p1, &s, &err) != 0);
  CHECK(strstr(err.msg, p1) != NULL);
  unlink(p1);
}

int main(void) {
  loop = uv_default_loop();
  snprintf(path, sizeof(path), "/tmp/aip-test-store-%d.db", (int)getpid());
  unlink(path);
  aip_store *s;
  aip_error err = {{0}};
  CHECK_INT(aip_store_open(loop, path, &s, &err), 0);
  test_approvals(s);
  test_approval_limits(s);
  test_concurrency(s);
  int wrote[2] = {1, 1};
  CHECK_INT(aip_store_bucket_write(s, "bot", "deploy", 3, 10, on_wrote, &wrote[0]), 0);
  CHECK_INT(aip_store_bucket_write(s, "bot", "deploy", 1.5, 77, on_wrote, &wrote[1]), 0);
  while (wrote[0] == 1 || wrote[1] == 1) uv_run(loop, UV_RUN_ONCE);
  CHECK_INT(wrote[0], 0); /* committed when `done` ran */
  CHECK_INT(wrote[1], 0); /* the latest value wins */
  aip_store_close(s);
  uv_run(loop, UV_RUN_DEFAULT);
  /* reopen: approvals and buckets survived */
  CHECK_INT(aip_store_open(loop, path, &s, &err), 0);
  int found = 0;
  CHECK_INT(aip_store_bucket_load(s, load_bucket, &found), 0);
  CHECK_INT(found, 1);
  got g = {0};
  aip_store_approval_list(s, -1, 500, 0, 1 << 20, on_page, &g);
  wait_for(&g, 1);
  CHECK_INT(g.err, 0);
  aip_store_close(s);
  uv_run(loop, UV_RUN_DEFAULT);
  test_migrations();
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK_INT(uv_loop_close(loop), 0);
  unlink(path);
  char wal[300];
  snprintf(wal, sizeof(wal), "%s-wal", path);
  unlink(wal);
  snprintf(wal, sizeof(wal), "%s-shm", path);
  unlink(wal);
  TEST_MAIN_END();
}
