/* test_dlp_cache.c -- the serialized-database cache: hits give the same results, anything
 * stale or damaged is a miss, and the directory store (gateway/core/dlp_cache.c, compiled in here:
 * it only needs libc and the engine) keeps files the engine can load. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../gateway/core/dlp_cache.c"
#include "engine/dlp.h"
#include "test.h"

#define HEAD "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: t}\nspec:\n"
#define POLICY                                                                         \
  HEAD "  failover: {on_regex_error: allow}\n  dlp:\n    scan_requests: true\n"       \
       "    patterns:\n"                                                               \
       "      - {name: Email, regex: '[a-z]+@[a-z]+\\.[a-z]{2,}'}\n"                   \
       "      - {name: Bad, regex: 'x(?=y)'}\n"                                        \
       "      - {name: DB, regex: 'postgres://.*@prod-db\\.', scope: response}\n"      \
       "      - {name: SSN, regex: '\\b\\d{3}-\\d{2}-\\d{4}\\b'}\n"

/* An in-memory cache with one slot, counting calls. */
typedef struct mem {
  char key[64];
  void *blob;
  size_t len;
  int loads, stores, corrupt;
} mem;

static int mem_load(void *ctx, const char *key, void **data, size_t *len) {
  mem *m = ctx;
  m->loads++;
  if (!m->blob || strcmp(key, m->key) != 0) return -ENOENT;
  *data = malloc(m->len);
  memcpy(*data, m->blob, m->len);
  if (m->corrupt && m->len > 100) ((char *)*data)[m->len / 2] ^= 0x5a;
  *len = m->corrupt == 2 ? m->len / 2 : m->len;
  return 0;
}

static int mem_store(void *ctx, const char *key, const void *data, size_t len) {
  mem *m = ctx;
  m->stores++;
  free(m->blob);
  m->blob = malloc(len);
  memcpy(m->blob, data, len);
  m->len = len;
  snprintf(m->key, sizeof m->key, "%s", key);
  return 0;
}

static aip_dlp *compile(const char *yaml, const aip_dlp_cache_io *io) {
  aip_policy_doc *doc = NULL;
  aip_dlp *d = NULL;
  aip_error err = {{0}};
  aip_dlp_opts o = {.cache = io};
  if (aip_policy_doc_load_string(yaml, strlen(yaml), "t.yaml", &doc, &err) ||
      aip_dlp_compile(doc, &o, &d, &err))
    fprintf(stderr, "compile: %s\n", err.msg);
  aip_policy_doc_free(doc);
  return d;
}

/* The redaction of a fixed text, for comparing two compiled objects. */
static void redact(aip_dlp *d, int scope, aip_buf *out) {
  static const char *in = "{\"result\":\"a@b.io x postgres://u@prod-db.z 123-45-6789 xy\"}";
  aip_dlp_scratch *s = aip_dlp_scratch_new();
  aip_dlp_scratch_prepare(s, d);
  aip_buf_reset(out);
  CHECK_INT(aip_dlp_redact_json(d, s, scope | AIP_DLP_WHOLE, in, strlen(in), out, NULL), 1);
  aip_dlp_scratch_free(s);
}

static void test_memory(void) {
  mem m = {0};
  aip_dlp_cache_io io = {&m, mem_load, mem_store};
  aip_buf a, b;
  aip_buf_init(&a);
  aip_buf_init(&b);
  aip_dlp *d1 = compile(POLICY, &io);
  CHECK(d1 && !aip_dlp_from_cache(d1));
  CHECK_INT(m.stores, 1);
  aip_dlp *d2 = compile(POLICY, &io);
  CHECK(d2 && aip_dlp_from_cache(d2));
  CHECK_INT(m.stores, 1);
  /* the same answers, the same warning about the dropped pattern */
  for (int scope = 0; scope < 2; scope++) {
    redact(d1, scope, &a);
    redact(d2, scope, &b);
    CHECK_STR(b.data, a.data);
  }
  CHECK(aip_dlp_warning(d2, 0) && strstr(aip_dlp_warning(d2, 0), "pattern \"Bad\""));
  CHECK_STR(aip_dlp_warning(d2, 0), aip_dlp_warning(d1, 0));
  aip_dlp_free(d2);
  /* damaged or truncated blobs are misses, and the compile still works */
  for (int c = 1; c <= 2; c++) {
    m.corrupt = c;
    d2 = compile(POLICY, &io);
    CHECK(d2 && !aip_dlp_from_cache(d2));
    redact(d2, 0, &b);
    redact(d1, 0, &a);
    CHECK_STR(b.data, a.data);
    aip_dlp_free(d2);
    m.corrupt = 0;
  }
  /* another rule set has another key */
  char key[64];
  snprintf(key, sizeof key, "%s", m.key);
  d2 = compile(HEAD "  dlp:\n    patterns:\n      - {name: Email, regex: '[a-z]+@[a-z]+'}\n", &io);
  CHECK(d2 && !aip_dlp_from_cache(d2) && strcmp(key, m.key) != 0);
  aip_dlp_free(d2);
  aip_dlp_free(d1);
  free(m.blob);
  aip_buf_free(&a);
  aip_buf_free(&b);
}

static void test_directory(void) {
  char dir[] = "/tmp/aip-dlp-cache-test-XXXXXX", sub[64], path[256];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(sub, sizeof sub, "%s/cache", dir); /* created on first store */
  aip_dlp_cache_io io;
  aip_dlp_cache_dir(&io, sub);
  aip_dlp *d1 = compile(HEAD "  dlp: {rulepack: default}\n", &io);
  aip_dlp *d2 = compile(HEAD "  dlp: {rulepack: default}\n", &io);
  CHECK(d1 && !aip_dlp_from_cache(d1));
  CHECK(d2 && aip_dlp_from_cache(d2));
  aip_dlp_free(d2);
  /* truncate the file: a miss, rewritten */
  char cmd[512];
  snprintf(cmd, sizeof cmd, "for f in %s/*.hsdb; do truncate -s 100 \"$f\"; done", sub);
  CHECK_INT(system(cmd), 0);
  d2 = compile(HEAD "  dlp: {rulepack: default}\n", &io);
  CHECK(d2 && !aip_dlp_from_cache(d2));
  aip_dlp_free(d2);
  d2 = compile(HEAD "  dlp: {rulepack: default}\n", &io);
  CHECK(d2 && aip_dlp_from_cache(d2));
  struct stat st;
  snprintf(path, sizeof path, "%s", sub);
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700);
  aip_dlp_free(d2);
  aip_dlp_free(d1);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK_INT(system(cmd), 0);
}

int main(void) {
  test_memory();
  test_directory();
  TEST_MAIN_END();
}
