/* test_gw_audit_chain.c -- the audit record format and its hash chain (docs/audit.md): the
 * exact bytes hashed, the checks `aip audit verify` relies on (edits, a missing or misplaced
 * hash member, duplicates), and the writer: the chain continues across a reopen of the file,
 * a cut last line is closed, and a file that cannot be written is reported per on_error. */
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/obs/audit.h"
#include "test.h"

static const char *G = "0000000000000000000000000000000000000000000000000000000000000000";

static void sha_hex(const char *s, size_t n, char out[65]) {
  unsigned char h[32];
  crypto_hash_sha256(h, (const unsigned char *)s, n);
  sodium_bin2hex(out, 65, h, 32);
}

static void test_format(void) {
  cJSON *args = cJSON_Parse("{\"user_id\":42}");
  aip_audit_rec r = {.agent = "a", .session_id = "s", .direction = "upstream",
                     .method = "tools/call", .decision = "APPROVED", .policy_mode = "enforce",
                     .policy_name = "p", .policy_version = "1", .tool = "t", .args = args,
                     .approval_id = "0123", .approver = "alice", .latency_us = -1};
  char *s;
  size_t n;
  CHECK_INT(aip_audit_format(&r, 1700000000123LL, &s, &n), 0);
  CHECK_STR(s, "{\"timestamp\":\"2023-11-14T22:13:20.123Z\",\"agent\":\"a\",\"session_id\":\"s\","
               "\"direction\":\"upstream\",\"method\":\"tools/call\",\"decision\":\"APPROVED\","
               "\"policy_mode\":\"enforce\",\"policy\":{\"name\":\"p\",\"version\":\"1\"},"
               "\"violation\":false,\"tool\":\"t\",\"args\":{\"user_id\":42},"
               "\"approval_id\":\"0123\",\"approver\":\"alice\"}");
  CHECK_INT(n, strlen(s));
  free(s);
  cJSON_Delete(args);
}

static void test_seal_and_check(void) {
  const char *body = "{\"a\":1}";
  aip_buf b;
  aip_buf_init(&b);
  char h1[65], h2[65], prev[65], hash[65];
  CHECK_INT(aip_audit_seal(&b, body, strlen(body), G, h1), 0);
  /* the hash is over the line without its hash member, no newline */
  char want[65], pre[200];
  snprintf(pre, sizeof(pre), "{\"a\":1,\"prev\":\"%s\"}", G);
  sha_hex(pre, strlen(pre), want);
  CHECK_STR(h1, want);
  char line[300];
  snprintf(line, sizeof(line), "{\"a\":1,\"prev\":\"%s\",\"hash\":\"%s\"}\n", G, want);
  CHECK_STR(b.data, line);
  CHECK(aip_audit_check_line(b.data, b.len - 1, prev, hash) == NULL);
  CHECK_STR(prev, G);
  CHECK_STR(hash, h1);
  /* the next line links to it */
  size_t first = b.len;
  CHECK_INT(aip_audit_seal(&b, "{}", 2, h1, h2), 0);
  CHECK(aip_audit_check_line(b.data + first, b.len - first - 1, prev, hash) == NULL);
  CHECK_STR(prev, h1);
  CHECK(strncmp(b.data + first, "{\"prev\":\"", 9) == 0); /* no comma in an empty object */
  /* bad input */
  CHECK_INT(aip_audit_seal(&b, "[1]", 3, G, h2), -EINVAL);
  CHECK_INT(aip_audit_seal(&b, body, strlen(body), "abc", h2), -EINVAL);
  aip_buf_free(&b);
}

static const char *check(const char *line) {
  char prev[65], hash[65];
  return aip_audit_check_line(line, strlen(line), prev, hash);
}

static void test_check_rejects(void) {
  aip_buf b;
  aip_buf_init(&b);
  char h[65];
  aip_audit_seal(&b, "{\"tool\":\"read_file\",\"n\":1}", 26, G, h);
  b.data[--b.len] = '\0'; /* drop the newline */
  char *line = strdup(b.data);
  CHECK(check(line) == NULL);
  /* one byte edited */
  char *ed = strdup(line);
  ed[10] = 'R';
  CHECK(check(ed) && strstr(check(ed), "hash mismatch"));
  /* an edit that keeps the JSON valid, value changed */
  char *p = strstr(ed, "\"n\":1");
  ed[10] = line[10];
  p[4] = '2';
  CHECK(check(ed) && strstr(check(ed), "hash mismatch"));
  /* the hash itself changed */
  strcpy(ed, line);
  ed[strlen(ed) - 3] = ed[strlen(ed) - 3] == 'a' ? 'b' : 'a';
  CHECK(check(ed) && strstr(check(ed), "hash mismatch"));
  /* upper-case hex */
  strcpy(ed, line);
  for (char *q = strstr(ed, "\"hash\":\"") + 8; *q != '"'; q++)
    if (*q >= 'a' && *q <= 'f') *q = (char)(*q - 32);
  CHECK(check(ed) != NULL);
  /* not JSON, no prev, no hash, hash not last, duplicate member */
  CHECK_STR(check("{\"a\":"), "not JSON");
  CHECK(check("[1,2]") != NULL);
  CHECK(check("{\"hash\":\"x\"}") != NULL);
  char buf[400];
  snprintf(buf, sizeof(buf), "{\"prev\":\"%s\"}", G);
  CHECK_STR(check(buf), "no \"hash\" member");
  snprintf(buf, sizeof(buf), "{\"hash\":\"%s\",\"prev\":\"%s\"}", h, G);
  CHECK(check(buf) && strstr(check(buf), "last member"));
  snprintf(buf, sizeof(buf), "{\"prev\":\"%s\",\"prev\":\"%s\",\"hash\":\"%s\"}", G, G, h);
  CHECK_STR(check(buf), "a member appears twice");
  free(ed);
  free(line);
  aip_buf_free(&b);
}

/* ---- the writer ---------------------------------------------------------------------------- */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return strdup("");
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = 0;
  fclose(f);
  return strdup(buf);
}

static void log_n(aip_audit *a, int n) {
  aip_audit_rec r = {.agent = "a", .decision = "ALLOW", .tool = "t", .latency_us = -1};
  for (int i = 0; i < n; i++) aip_audit_log(a, &r);
}

/* Lines of `text`, each checked; returns the count, or -line of the first broken link. */
static int chain_ok(const char *text, const char *first_prev) {
  char expect[65];
  snprintf(expect, sizeof(expect), "%s", first_prev);
  int n = 0;
  for (const char *s = text; *s;) {
    const char *e = strchr(s, '\n');
    if (!e) return -(n + 1);
    char prev[65], hash[65];
    n++;
    if (aip_audit_check_line(s, (size_t)(e - s), prev, hash) || strcmp(prev, expect)) return -n;
    memcpy(expect, hash, 65);
    s = e + 1;
  }
  return n;
}

static void test_writer(void) {
  char dir[] = "/tmp/aip-audit-unit-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256];
  snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
  uv_loop_t loop;
  uv_loop_init(&loop);
  aip_audit *a;
  CHECK_INT(aip_audit_open(&loop, path, &a), 0);
  aip_audit_detach(a); /* hand records over at once */
  uv_run(&loop, UV_RUN_DEFAULT); /* let the detached handle close before `a` goes */
  log_n(a, 3);
  aip_audit_close(a);
  char *t = slurp(path);
  CHECK_INT(chain_ok(t, G), 3);
  free(t);
  /* a restart continues the chain */
  CHECK_INT(aip_audit_open(&loop, path, &a), 0);
  aip_audit_detach(a);
  uv_run(&loop, UV_RUN_DEFAULT); /* let the detached handle close before `a` goes */
  log_n(a, 2);
  aip_audit_close(a);
  t = slurp(path);
  CHECK_INT(chain_ok(t, G), 5);
  free(t);
  /* a last line cut by a crash is closed with a newline; the chain restarts after it */
  int fd = open(path, O_WRONLY | O_APPEND);
  CHECK(write(fd, "{\"timestamp\":\"cut", 17) == 17);
  close(fd);
  CHECK_INT(aip_audit_open(&loop, path, &a), 0);
  aip_audit_detach(a);
  uv_run(&loop, UV_RUN_DEFAULT); /* let the detached handle close before `a` goes */
  log_n(a, 1);
  aip_audit_close(a);
  t = slurp(path);
  CHECK_INT(chain_ok(t, G), -6);
  const char *cut = strstr(t, "{\"timestamp\":\"cut\n");
  CHECK(cut != NULL);
  if (cut) CHECK_INT(chain_ok(cut + 18, G), 1);
  free(t);
  unlink(path);
  rmdir(dir);
  CHECK_INT(uv_loop_close(&loop), 0);
}

/* /dev/full fails every write with ENOSPC: allow counts and drops beyond the buffer, block
 * refuses (aip_audit_admit) and never drops while running. */
static void test_unwritable(void) {
  if (access("/dev/full", W_OK) != 0) return;
  uv_loop_t loop;
  uv_loop_init(&loop);
  aip_audit *a;
  aip_audit_opts allow = {.buffer_size = 4, .on_error_allow = 1};
  CHECK_INT(aip_audit_open_ex(&loop, "/dev/full", &allow, &a), 0);
  aip_audit_detach(a);
  uv_run(&loop, UV_RUN_DEFAULT); /* let the detached handle close before `a` goes */
  log_n(a, 10);
  aip_audit_stats st;
  for (int i = 0; i < 200; i++) {
    aip_audit_stats_get(a, &st);
    if (st.write_errors) break;
    usleep(10000);
  }
  CHECK(st.write_errors > 0);
  CHECK(st.failing);
  CHECK_INT(st.dropped, 6); /* 4 fit in the buffer */
  CHECK_INT(aip_audit_admit(a), 0);
  aip_audit_close(a);

  aip_audit_opts block = {.buffer_size = 100, .on_error_allow = 0};
  CHECK_INT(aip_audit_open_ex(&loop, "/dev/full", &block, &a), 0);
  aip_audit_detach(a);
  uv_run(&loop, UV_RUN_DEFAULT); /* let the detached handle close before `a` goes */
  CHECK_INT(aip_audit_admit(a), 0);
  log_n(a, 3);
  for (int i = 0; i < 200 && !aip_audit_blocking(a); i++) usleep(10000);
  CHECK_INT(aip_audit_blocking(a), -EIO);
  CHECK_INT(aip_audit_admit(a), -EIO);
  aip_audit_stats_get(a, &st);
  CHECK_INT(st.refused, 1);
  CHECK_INT(st.dropped, 0);
  CHECK_INT(st.depth, 3);
  aip_audit_close(a);
  CHECK_INT(uv_loop_close(&loop), 0);
}

/* block with a full queue refuses too: while attached, records wait on the loop side until the
 * loop turns, so the bound is reached without racing the writer; nothing is dropped. */
static void test_full_queue(void) {
  char path[] = "/tmp/aip-audit-unit-q-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  uv_loop_t loop;
  uv_loop_init(&loop);
  aip_audit *a;
  aip_audit_opts block = {.buffer_size = 2, .on_error_allow = 0};
  CHECK_INT(aip_audit_open_ex(&loop, path, &block, &a), 0);
  /* attached: records stay on the loop side until the loop turns */
  log_n(a, 2);
  CHECK_INT(aip_audit_blocking(a), -ENOBUFS);
  log_n(a, 1); /* block never drops */
  aip_audit_stats st;
  aip_audit_stats_get(a, &st);
  CHECK_INT(st.depth, 3);
  aip_audit_detach(a);
  uv_run(&loop, UV_RUN_DEFAULT);
  aip_audit_close(a);
  char *t = slurp(path);
  CHECK_INT(chain_ok(t, G), 3);
  free(t);
  unlink(path);
  CHECK_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  test_format();
  test_seal_and_check();
  test_check_rejects();
  test_writer();
  test_unwritable();
  test_full_queue();
  TEST_MAIN_END();
}
