/* test_store_stats.c -- what the store tells /metrics and the approvals gauge: the batch
 * histogram (one observation per transaction, copied under the lock), the synchronous count of
 * records by status (start-up), and that cached statements are reused correctly across many
 * batches: the same request kinds over and over, a failing request in the middle (its savepoint
 * rolled back, the statement reset), and a reopen after close (a cached statement left
 * unfinalized would make sqlite3_close fail and leak the connection: the ASan build sees it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "test.h"

static uv_loop_t *loop;
static int done_n, fails;

static void on_done(void *data, int err, const aip_approval *a) {
  (void)a;
  done_n++;
  if (err) fails++;
  if (data) *(int *)data = err;
}

static void run_until(int n) {
  while (done_n < n) uv_run(loop, UV_RUN_ONCE);
}

static void create(aip_store *s, const char *id, int *err) {
  aip_approval a;
  memset(&a, 0, sizeof(a));
  snprintf(a.id, sizeof(a.id), "%s", id);
  a.agent = "bot";
  a.server = "files";
  a.tool = "write_file";
  a.arguments = "{}";
  snprintf(a.args_hash, sizeof(a.args_hash), "h-%s", id);
  a.created_ms = 1000;
  a.expires_ms = 999999;
  aip_store_approval_create(s, &a, 0, on_done, err);
}

int main(void) {
  char path[256];
  loop = uv_default_loop();
  snprintf(path, sizeof(path), "/tmp/aip-test-store-stats-%d.db", (int)getpid());
  unlink(path);
  aip_store *s;
  aip_error err = {{0}};
  CHECK_INT(aip_store_open(loop, path, &s, &err), 0);

  aip_histogram h;
  aip_store_batch_histogram(s, &h);
  CHECK_INT(h.count, 0);
  uint64_t n = 99;
  CHECK_INT(aip_store_approval_count(s, AIP_APPROVAL_PENDING, &n), 0);
  CHECK_INT(n, 0);

  /* many batches of the same statements; one duplicate id fails alone in its batch */
  char id[33];
  int target = 0, dup_err = 0;
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 5; i++) {
      snprintf(id, sizeof(id), "r%02di%d", round, i);
      create(s, id, NULL);
      target++;
    }
    if (round == 7) {
      create(s, "r03i1", &dup_err); /* exists: the INSERT fails, the others commit */
      target++;
    }
    if (round % 3 == 0) {
      aip_store_approval_decide(s, "r00i0", AIP_APPROVAL_DENIED, "alice", NULL, 2000, 0, on_done, NULL);
      target++;
    }
    run_until(target);
  }
  CHECK(dup_err != 0);
  CHECK_INT(fails, 1 + 6); /* the duplicate, and deciding r00i0 again after the first time */
  CHECK_INT(aip_store_approval_count(s, AIP_APPROVAL_PENDING, &n), 0);
  CHECK_INT(n, 99); /* 100 created, one denied */
  CHECK_INT(aip_store_approval_count(s, AIP_APPROVAL_DENIED, &n), 0);
  CHECK_INT(n, 1);

  aip_store_batch_histogram(s, &h);
  CHECK(h.count >= 20); /* at least one transaction per round */
  CHECK(h.count <= (uint64_t)target);
  CHECK(h.sum_seconds > 0);
  uint64_t total = 0;
  for (int i = 0; i <= AIP_LATENCY_BUCKETS; i++) total += h.counts[i];
  CHECK_INT(total, h.count);

  aip_store_close(s);
  uv_run(loop, UV_RUN_DEFAULT);
  /* reopen: the rows are there */
  CHECK_INT(aip_store_open(loop, path, &s, &err), 0);
  CHECK_INT(aip_store_approval_count(s, AIP_APPROVAL_PENDING, &n), 0);
  CHECK_INT(n, 99);
  aip_store_close(s);
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK_INT(uv_loop_close(loop), 0);
  char f[300];
  const char *sfx[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(f, sizeof(f), "%s%s", path, sfx[i]);
    unlink(f);
  }
  TEST_MAIN_END();
}
