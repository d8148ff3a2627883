/* test_config_units.c -- sizes, durations, listen addresses, the error setter, and the YAML
 * reader underneath every configurator (positions, limits, rejected constructs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/yaml_doc.h"
#include "test.h"

static void test_error_set(void) {
  aip_error err;
  CHECK_INT(aip_error_set(&err, -EINVAL, "%s:%d", "x", 7), -EINVAL);
  CHECK_STR(err.msg, "x:7");
  CHECK_INT(aip_error_set(NULL, -ENOMEM, "ignored"), -ENOMEM);
  char big[2 * AIP_ERROR_MAX];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  aip_error_set(&err, -1, "%s", big);
  CHECK_INT(strlen(err.msg), AIP_ERROR_MAX - 1); /* truncated, still terminated */
}

static void test_sizes(void) {
  static const struct {
    const char *in;
    uint64_t want;
  } ok[] = {{"0", 0},           {"1024", 1024},          {"10B", 10},
            {"1KB", 1000},      {"1KiB", 1024},          {"4MiB", 4194304},
            {"1MB", 1000000},   {"1mb", 1000000},        {"2GiB", 2147483648ULL},
            {"3GB", 3000000000ULL}, {"16 KiB", 16384},   {"1kib", 1024}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    uint64_t v = 1;
    CHECK_INT(aip_parse_size(ok[i].in, &v), 0);
    CHECK_INT(v, ok[i].want);
  }
  static const char *const bad[] = {"", "MiB", "-1", "1.5MiB", "4TiB", "4 M", "1MiBs", " 1",
                                    "99999999999999999999", "18446744073709551615GiB", NULL};
  for (size_t i = 0; bad[i]; i++) {
    uint64_t v = 7;
    CHECK(aip_parse_size(bad[i], &v) < 0);
    CHECK_INT(v, 7);
  }
  uint64_t v;
  CHECK(aip_parse_size(NULL, &v) < 0);
}

static void test_durations(void) {
  static const struct {
    const char *in;
    uint64_t want;
  } ok[] = {{"0s", 0},          {"250ms", 250},          {"60s", 60000},
            {"5m", 300000},     {"1m30s", 90000},        {"2h", 7200000},
            {"1d", 86400000},   {"1h1m1s1ms", 3661001},  {"30s1m", 90000}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    uint64_t v = 1;
    CHECK_INT(aip_parse_duration_ms(ok[i].in, &v), 0);
    CHECK_INT(v, ok[i].want);
  }
  static const char *const bad[] = {"", "60", "5 m", "1.5h", "m", "1w", "-1s", "1s ", "1M",
                                    "99999999999999999999d", "1s2", NULL};
  for (size_t i = 0; bad[i]; i++) {
    uint64_t v = 7;
    CHECK(aip_parse_duration_ms(bad[i], &v) < 0);
    CHECK_INT(v, 7);
  }
}

static void check_listen(const char *in, const char *host, int port) {
  aip_listen_addr a = {0};
  int rc = aip_parse_listen(in, &a);
  CHECK_INT(rc, 0);
  if (rc) return;
  CHECK_STR(a.host, host);
  CHECK_INT(a.port, port);
  free(a.host);
}

static void test_listen(void) {
  check_listen("127.0.0.1:8080", "127.0.0.1", 8080);
  check_listen("0.0.0.0:1", "0.0.0.0", 1);
  check_listen("[::1]:65535", "::1", 65535);
  check_listen("[::]:443", "::", 443);
  check_listen("localhost:9091", "127.0.0.1", 9091);
  static const char *const bad[] = {"127.0.0.1",       "127.0.0.1:0",  "127.0.0.1:65536",
                                    "127.0.0.1:",      ":8080",        "example.com:80",
                                    "::1:8080",        "[::1]8080",    "[::1:8080",
                                    "127.0.0.1:+80",   "127.0.0.1:80x", "256.0.0.1:80",
                                    "[127.0.0.1]:80",  "[localhost]:80", "127.1:80",
                                    "127.0.0.1:000080", NULL};
  for (size_t i = 0; bad[i]; i++) {
    aip_listen_addr a = {0};
    CHECK(aip_parse_listen(bad[i], &a) < 0);
    CHECK(a.host == NULL);
  }
}

static aip_ydoc *parse(const char *yaml, aip_error *err) {
  aip_ydoc *d = NULL;
  aip_ydoc_load_string(yaml, strlen(yaml), "y.yaml", &d, err);
  return d;
}

static void expect_yaml_error(const char *yaml, const char *want) {
  aip_error err = {{0}};
  aip_ydoc *d = parse(yaml, &err);
  CHECK(d == NULL);
  CHECK_STR(err.msg, want);
  aip_ydoc_free(d);
}

static void test_yaml_tree(void) {
  aip_error err = {{0}};
  aip_ydoc *d = parse("a: 1\nb:\n  - x\n  - 'y'\nc: {d: ~}\n", &err);
  CHECK(d != NULL);
  if (!d) return;
  CHECK_INT(d->root->kind, AIP_YMAP);
  CHECK_INT(d->root->n, 6);
  const aip_ynode *b = aip_y_get(d->root, "b");
  CHECK(b && b->kind == AIP_YSEQ && b->n == 2);
  if (b && b->n == 2) {
    CHECK_INT(b->items[1]->pos.line, 4);
    CHECK_INT(b->items[1]->pos.col, 5);
    CHECK_INT(b->items[0]->plain, 1);
    CHECK_INT(b->items[1]->plain, 0);
  }
  CHECK(aip_y_is_null(aip_y_get(aip_y_get(d->root, "c"), "d")));
  CHECK(aip_y_get(d->root, "zz") == NULL);
  long long v = 0;
  CHECK_INT(aip_y_int(d, aip_y_get(d->root, "a"), "a", 0, 10, &v, &err), 0);
  CHECK_INT(v, 1);
  CHECK(aip_y_int(d, aip_y_get(d->root, "a"), "a", 2, 10, &v, &err) < 0);
  CHECK_STR(err.msg, "y.yaml:1:4: a: 1 is out of range (2 to 10)");
  char *s = NULL;
  CHECK(aip_y_str(d, b, "b", &s, &err) < 0);
  CHECK_STR(err.msg, "y.yaml:3:3: b: expected a string, got a list");
  static const char *const keys[] = {"a", "b", NULL};
  const aip_ynode *vals[2];
  CHECK(aip_y_fields(d, d->root, "top", keys, vals, &err) < 0);
  CHECK_STR(err.msg, "y.yaml:5:1: unknown key \"c\" in top");
  aip_ydoc_free(d);

  d = parse("", &err); /* an empty file is an empty document, not an error */
  CHECK(d != NULL && d->root == NULL);
  aip_ydoc_free(d);
  d = parse("# only a comment\n", &err);
  CHECK(d != NULL && d->root == NULL);
  aip_ydoc_free(d);
  d = parse("!!str 5\n", &err);
  CHECK(d != NULL && d->root && d->root->plain == 0);
  aip_ydoc_free(d);
}

static void test_yaml_rejects(void) {
  expect_yaml_error("a: 1\nb: 2\na: 3\n",
                    "y.yaml:3:1: duplicate key \"a\" (first written at line 1)");
  expect_yaml_error("{x: 1, \"x\": 2}\n",
                    "y.yaml:1:8: duplicate key \"x\" (first written at line 1)");
  expect_yaml_error("a: &x 1\nb: *x\n", "y.yaml:1:4: YAML anchors and aliases are not supported");
  expect_yaml_error("a: [1]\nb: *x\n", "y.yaml:2:4: YAML anchors and aliases are not supported");
  expect_yaml_error("a: !secret x\n", "y.yaml:1:4: unsupported YAML tag \"!secret\"");
  expect_yaml_error("a: 1\n---\nb: 2\n",
                    "y.yaml:2:1: only one YAML document per file is supported");
  expect_yaml_error("? [a]\n: 1\n", "y.yaml:1:3: mapping keys must be plain strings");
  expect_yaml_error("a: \"x\\0y\"\n", "y.yaml:1:4: NUL bytes are not allowed in values");
  expect_yaml_error("a: b: c\n", "y.yaml:1:5: invalid YAML: mapping values are not allowed in this "
                    "context");
  expect_yaml_error("a:\n\t- b\n", "y.yaml:2:1: invalid YAML: found character that cannot start "
                    "any token while scanning for the next token");
  expect_yaml_error("a: \"\xff\"\n", "y.yaml: invalid YAML: invalid leading UTF-8 octet at byte 4");

  /* nesting limit: 64 levels parse, 65 do not */
  char deep[512];
  memset(deep, '[', AIP_YAML_MAX_DEPTH);
  memset(deep + AIP_YAML_MAX_DEPTH, ']', AIP_YAML_MAX_DEPTH);
  deep[2 * AIP_YAML_MAX_DEPTH] = '\0';
  aip_error err = {{0}};
  aip_ydoc *d = parse(deep, &err);
  CHECK(d != NULL);
  aip_ydoc_free(d);
  memset(deep, '[', AIP_YAML_MAX_DEPTH + 1);
  memset(deep + AIP_YAML_MAX_DEPTH + 1, ']', AIP_YAML_MAX_DEPTH + 1);
  deep[2 * AIP_YAML_MAX_DEPTH + 2] = '\0';
  expect_yaml_error(deep, "y.yaml:1:65: nesting deeper than 64 levels");

  /* size limit, checked before parsing */
  size_t big = AIP_YAML_MAX_BYTES + 1;
  char *s = malloc(big + 1);
  if (s) {
    memset(s, ' ', big);
    s[big] = '\0';
    d = NULL;
    CHECK_INT(aip_ydoc_load_string(s, big, "big.yaml", &d, &err), -EFBIG);
    CHECK_STR(err.msg, "big.yaml: larger than 4194304 bytes");
    free(s);
  }
  /* node limit: a flat list of many items */
  size_t items = AIP_YAML_MAX_NODES + 10;
  s = malloc(items * 2 + 3);
  if (s) {
    size_t o = 0;
    s[o++] = '[';
    for (size_t i = 0; i < items; i++) {
      s[o++] = '1';
      s[o++] = ',';
    }
    s[o - 1] = ']';
    s[o] = '\0';
    d = NULL;
    CHECK(aip_ydoc_load_string(s, o, "many.yaml", &d, &err) < 0);
    CHECK(strstr(err.msg, "document has more than 250000 nodes") != NULL);
    free(s);
  }
}

static void test_quote(void) {
  char q[AIP_Y_QUOTE_MAX];
  CHECK_STR(aip_y_quote(q, sizeof q, "a\"b\\c\n"), "\"a\\\"b\\\\c\\x0a\"");
  char longs[300];
  memset(longs, 'x', sizeof longs - 1);
  longs[sizeof longs - 1] = '\0';
  aip_y_quote(q, sizeof q, longs);
  CHECK(strlen(q) < sizeof q);
  CHECK(strstr(q, "...\"") != NULL);
}

int main(void) {
  test_error_set();
  test_sizes();
  test_durations();
  test_listen();
  test_yaml_tree();
  test_yaml_rejects();
  test_quote();
  TEST_MAIN_END();
}
