/* test_gw_audit_queue.c -- the audit queue's backpressure (issue 11): a full queue slows intake
 * instead of refusing calls. High water (buffer_size) asks the gateway to stop reading, low
 * water (buffer_size / 2) lets it go on; records are never refused or dropped for being many;
 * calls are refused only while the file cannot be written, or once the pause lasted longer
 * than its bound (a writer that does not move). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/obs/audit.h"
#include "test.h"

static uv_loop_t *loop;
static int events[64], events_n;
static uint64_t depth_at_resume;
static aip_audit *cur;

static void on_pressure(void *ctx, int full) {
  if (events_n < 64) events[events_n++] = full;
  if (!full) {
    depth_at_resume = aip_audit_queue_depth(cur);
    uv_stop(loop);
  }
}

static void on_deadline(uv_timer_t *t) { uv_stop(loop); }

static void run_for(uint64_t ms) {
  uv_run(loop, UV_RUN_NOWAIT); /* the turn that logged hands its records over (uv_check) */
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, on_deadline, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static void log_n(aip_audit *a, int n) {
  cJSON *args = cJSON_CreateObject();
  char pad[300];
  memset(pad, 'p', sizeof(pad) - 1);
  pad[sizeof(pad) - 1] = 0;
  cJSON_AddStringToObject(args, "pad", pad);
  for (int i = 0; i < n; i++) {
    aip_audit_rec r = {.agent = "a", .direction = "upstream", .method = "tools/call",
                       .decision = "ALLOW", .policy_name = "p", .args = args, .latency_us = -1};
    aip_audit_log(a, &r);
  }
  cJSON_Delete(args);
}

static void test_high_low_water(void) {
  char path[] = "/tmp/aip-audit-q-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  aip_audit_opts o = {10, 0}; /* block */
  aip_audit *a;
  CHECK_INT(aip_audit_open_ex(loop, path, &o, &a), 0);
  cur = a;
  events_n = 0;
  aip_audit_on_pressure(a, 5000, on_pressure, NULL);
  log_n(a, 9);
  CHECK_INT(events_n, 0); /* below high water: nothing */
  log_n(a, 16);            /* one turn: 25 records, well over buffer_size */
  CHECK_INT(events_n, 1);
  CHECK_INT(events[0], 1); /* paused once, however many came after */
  CHECK_INT(aip_audit_admit(a), 0); /* a full queue refuses nothing */
  CHECK_INT(aip_audit_blocking(a), 0);
  run_for(5000);
  CHECK_INT(events_n, 2);
  CHECK_INT(events[1], 0);
  CHECK(depth_at_resume <= 5); /* resumed at low water */
  aip_audit_detach(a);
  uv_run(loop, UV_RUN_NOWAIT);
  aip_audit_stats st;
  aip_audit_close(a);
  /* everything logged was written, nothing dropped or refused */
  FILE *f = fopen(path, "r");
  int lines = 0;
  for (int ch; f && (ch = fgetc(f)) != EOF;) lines += ch == '\n';
  if (f) fclose(f);
  CHECK_INT(lines, 25);
  (void)st;
  unlink(path);
}

/* A writer stuck on a FIFO nobody reads: the pause ends after its bound, calls are then
 * refused (-ENOBUFS) instead of waiting forever, and all is normal again once it drains. */
static int fifo_rd = -1;
static void on_drain_fifo(uv_timer_t *t) {
  char buf[65536];
  while (read(fifo_rd, buf, sizeof(buf)) > 0) {
  }
}

static void test_pause_bound(void) {
  char dir[] = "/tmp/aip-audit-f-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[128];
  snprintf(path, sizeof(path), "%s/fifo", dir);
  CHECK_INT(mkfifo(path, 0600), 0);
  fifo_rd = open(path, O_RDONLY | O_NONBLOCK);
  CHECK(fifo_rd >= 0);
  aip_audit_opts o = {10, 0};
  aip_audit *a;
  CHECK_INT(aip_audit_open_ex(loop, path, &o, &a), 0);
  cur = a;
  events_n = 0;
  aip_audit_on_pressure(a, 100, on_pressure, NULL);
  log_n(a, 1000); /* ~400 KB: far more than a pipe holds */
  CHECK_INT(events_n, 1);
  CHECK_INT(aip_audit_admit(a), 0);
  run_for(3000); /* the bound (100 ms) passes: intake resumes, calls are refused */
  CHECK_INT(events_n, 2);
  CHECK_INT(events[1], 0);
  CHECK_INT(aip_audit_admit(a), -ENOBUFS);
  CHECK(aip_audit_blocking(a) != 0); /* /readyz says not ready */
  log_n(a, 5); /* records still come (calls in flight): accepted */
  uv_timer_t drain;
  uv_timer_init(loop, &drain);
  uv_timer_start(&drain, on_drain_fifo, 0, 5);
  for (int i = 0; i < 200 && aip_audit_written(a) < 1005; i++) run_for(20);
  CHECK_INT(aip_audit_written(a), 1005);
  CHECK_INT(aip_audit_admit(a), 0);
  CHECK_INT(aip_audit_blocking(a), 0);
  uv_close((uv_handle_t *)&drain, NULL);
  aip_audit_detach(a);
  uv_run(loop, UV_RUN_NOWAIT);
  aip_audit_close(a);
  close(fifo_rd);
  unlink(path);
  rmdir(dir);
}

/* An actual write failure is what refuses calls (on_error block). */
static void test_write_failure_refuses(void) {
  aip_audit_opts o = {10, 0};
  aip_audit *a;
  if (access("/dev/full", W_OK) != 0) return;
  CHECK_INT(aip_audit_open_ex(loop, "/dev/full", &o, &a), 0);
  cur = a;
  aip_audit_on_pressure(a, 5000, on_pressure, NULL);
  log_n(a, 1);
  aip_audit_detach(a); /* hands the record over at once */
  aip_audit_stats st = {0};
  for (int i = 0; i < 100 && !st.failing; i++) {
    usleep(10000);
    aip_audit_stats_get(a, &st);
  }
  CHECK(st.failing);
  CHECK_INT(aip_audit_admit(a), -EIO);
  uv_run(loop, UV_RUN_NOWAIT);
  aip_audit_close(a);
}

int main(void) {
  loop = uv_default_loop();
  test_high_low_water();
  test_pause_bound();
  test_write_failure_refuses();
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK_INT(uv_loop_close(loop), 0);
  TEST_MAIN_END();
}
