/* test_store_faults.c -- a store that cannot write says so: a bucket write whose transaction
 * cannot begin (another connection holds the write lock, as a full disk or a read-only file
 * would fail a COMMIT) completes with -EIO (the row on disk unchanged), is counted, and the
 * store reports itself failing until a write commits again. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "test.h"

static uv_loop_t *loop;

static void on_wrote(void *data, int err) { *(int *)data = err; }

static int write_and_wait(aip_store *s, double tokens, int64_t last_ms) {
  int r = 1;
  CHECK_INT(aip_store_bucket_write(s, "bot", "deploy", tokens, last_ms, on_wrote, &r), 0);
  while (r == 1) uv_run(loop, UV_RUN_ONCE);
  return r;
}

static void on_bucket(void *data, const char *agent, const char *tool, double tokens,
                      int64_t last_ms) {
  (void)agent, (void)tool;
  double *out = data;
  out[0] = tokens;
  out[1] = (double)last_ms;
}

int main(void) {
  char path[256];
  loop = uv_default_loop();
  snprintf(path, sizeof(path), "/tmp/aip-test-store-faults-%d.db", (int)getpid());
  unlink(path);
  aip_store *s;
  aip_error err = {{0}};
  CHECK_INT(aip_store_open(loop, path, &s, &err), 0);
  CHECK_INT(aip_store_failing(s), 0);
  CHECK_INT(aip_store_write_errors(s), 0);
  CHECK_INT(write_and_wait(s, 4, 100), 0);

  sqlite3 *other;
  CHECK_INT(sqlite3_open(path, &other), SQLITE_OK);
  CHECK_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  CHECK_INT(write_and_wait(s, 2, 200), -EIO); /* after the busy timeout */
  CHECK_INT(aip_store_failing(s), 1);
  CHECK_INT(aip_store_write_errors(s), 1);
  CHECK_INT(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(other);

  double got[2] = {0};
  CHECK_INT(aip_store_bucket_load(s, on_bucket, got), 0);
  CHECK(got[0] == 4 && got[1] == 100); /* the failed write left the row as it was */
  CHECK_INT(write_and_wait(s, 2, 200), 0); /* a retry commits */
  CHECK_INT(aip_store_failing(s), 0);
  CHECK_INT(aip_store_write_errors(s), 1);
  CHECK_INT(aip_store_bucket_load(s, on_bucket, got), 0);
  CHECK(got[0] == 2 && got[1] == 200);
  aip_store_close(s);
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK_INT(uv_loop_close(loop), 0);
  char f[300];
  unlink(path);
  snprintf(f, sizeof(f), "%s-wal", path);
  unlink(f);
  snprintf(f, sizeof(f), "%s-shm", path);
  unlink(f);
  TEST_MAIN_END();
}
