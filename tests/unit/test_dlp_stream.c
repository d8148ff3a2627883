/* test_dlp_stream.c -- streaming DLP: the same output as block mode whatever the chunking,
 * secrets split across reads and SSE events, long strings through the window, bounded
 * memory, plain-text streams. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dlp.h"
#include "engine/engine.h"
#include "test.h"

#define HEAD "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: t}\nspec:\n"
#define RULES                                                                              \
  "  dlp:\n    patterns:\n"                                                                \
  "      - {name: AWS Key, regex: '(AKIA|ASIA)[A-Z0-9]{16}'}\n"                            \
  "      - {name: GitHub Token, regex: 'gh[pousr]_[a-zA-Z0-9]{36,255}'}\n"                 \
  "      - {name: Email, regex: '[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}'}\n"       \
  "      - {name: SSN, regex: '\\b\\d{3}-\\d{2}-\\d{4}\\b'}\n"                             \
  "      - {name: Private Key, regex: '-----BEGIN (RSA |EC )?PRIVATE KEY-----'}\n"

static aip_dlp_scratch *S;
static unsigned seed = 12345;

static unsigned rnd(void) {
  seed = seed * 1103515245u + 12345u;
  return seed >> 8;
}

static aip_dlp *load(const char *yaml) {
  aip_policy_doc *doc = NULL;
  aip_dlp *d = NULL;
  aip_error err = {{0}};
  if (aip_policy_doc_load_string(yaml, strlen(yaml), "t.yaml", &doc, &err) ||
      aip_dlp_compile(doc, NULL, &d, &err))
    fprintf(stderr, "load: %s\n", err.msg);
  aip_policy_doc_free(doc);
  aip_dlp_scratch_prepare(S, d);
  return d;
}

/* Block-mode result (the input itself when clean). */
static void block(aip_dlp *d, int scope, const char *in, size_t n, aip_buf *out, uint64_t *total) {
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, d);
  aip_buf_reset(out);
  int rc = aip_dlp_redact_json(d, S, scope, in, n, out, &c);
  CHECK(rc >= 0);
  if (rc == 0) aip_buf_append(out, in, n);
  *total = c.total;
  aip_dlp_counts_free(&c);
}

/* Streams `in` in chunks of `step` bytes (0: random sizes up to 97). */
static int stream(aip_dlp *d, int scope, int kind, const char *in, size_t n, size_t step,
                  aip_buf *out, uint64_t *total, size_t *peak) {
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, d);
  aip_buf_reset(out);
  aip_buf_reserve(out, 0);
  aip_dlp_stream *st = aip_dlp_stream_new(d, scope, (aip_dlp_stream_kind)kind);
  int rc = 0;
  for (size_t i = 0; i < n && !rc;) {
    size_t k = step ? step : 1 + rnd() % 97;
    if (k > n - i) k = n - i;
    rc = aip_dlp_stream_feed(st, S, in + i, k, out, &c);
    i += k;
  }
  if (!rc) rc = aip_dlp_stream_end(st, S, out, &c);
  aip_dlp_stream_mem(st, peak);
  aip_dlp_stream_free(st);
  *total = c.total;
  aip_dlp_counts_free(&c);
  return rc;
}

static void same_as_block(aip_dlp *d, int scope, const char *in, size_t n) {
  static const size_t steps[] = {1, 2, 3, 7, 64, 4096, 0, 0};
  aip_buf want, got;
  aip_buf_init(&want);
  aip_buf_init(&got);
  uint64_t wt, gt;
  size_t peak;
  block(d, scope, in, n, &want, &wt);
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    CHECK_INT(stream(d, scope, AIP_DLP_STREAM_JSON, in, n, steps[i], &got, &gt, &peak), 0);
    CHECK(got.len == want.len && memcmp(got.data, want.data, want.len) == 0);
    CHECK_INT(gt, wt);
  }
  aip_buf_free(&want);
  aip_buf_free(&got);
}

static void test_messages(void) {
  aip_dlp *d = load(HEAD RULES);
  static const char *const msgs[] = {
      "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":"
      "\"key AKIAIOSFODNN7EXAMPLE mail bob@example.com ssn 123-45-6789\"}],"
      "\"structuredContent\":{\"k\\u0041\":\"\\u0041KIAIOSFODNN7EXAMPLE\",\"n\":1.5e3}}}",
      "{\"jsonrpc\":\"2.0\",\"id\":8,\"error\":{\"code\":-1,\"message\":\"a@b.io\","
      "\"data\":[\"x\", 12, true, null, {\"q\":\"ghp_0123456789abcdefghijABCDEFGHIJ012345\"}]}}",
      "{\"method\":\"notifications/message\",\"params\":{\"data\":\"{\\\"k\\\":\\\"\\\\u0041"
      "KIAIOSFODNN7EXAMPLE\\\"}\"}}",
      "[{\"id\":1,\"result\":\"a@b.io\"},{\"id\":2,\"result\":123456789}]",
      "{\"id\":3,\"result\":{\"a@b.io\":1,\"c@d.io\":2}}",
      "  {\"id\":4,\"result\":\"clean\"}  ",
      /* every member (issue 11 item 9): extra members, their keys, other error members */
      "{\"jsonrpc\":\"2.0\",\"x\":\"AKIAIOSFODNN7EXAMPLE\",\"id\":5,\"a@b.io\":{\"k\":1},"
      "\"result\":{}}",
      "{\"id\":6,\"error\":{\"code\":-1,\"hint\":\"a@b.io\",\"code2\":[\"c@d.io\"]},"
      "\"ID\":\"bob@example.com\"}",
      "{\"id\":{\"a\":\"a@b.io\"},\"resul\\u0074\":\"a@b.io\"}",
  };
  for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++)
    same_as_block(d, AIP_DLP_RESPONSE, msgs[i], strlen(msgs[i]));
  /* the extra members really are redacted in stream mode too */
  {
    aip_buf o;
    aip_buf_init(&o);
    uint64_t t;
    size_t pk;
    CHECK_INT(stream(d, AIP_DLP_RESPONSE, AIP_DLP_STREAM_JSON, msgs[6], strlen(msgs[6]), 1, &o,
                     &t, &pk), 0);
    CHECK_INT(t, 2);
    aip_buf_free(&o);
  }
  /* a top-level number */
  aip_dlp *n = load(HEAD "  dlp:\n    patterns:\n      - {name: N, regex: '12345'}\n");
  same_as_block(n, AIP_DLP_WHOLE, "912345", 6);
  aip_dlp_free(n);
  /* errors are final */
  aip_buf out;
  aip_buf_init(&out);
  uint64_t t;
  size_t peak;
  CHECK(stream(d, 0, AIP_DLP_STREAM_JSON, "{\"result\":\"x\"", 13, 3, &out, &t, &peak) < 0);
  CHECK(stream(d, 0, AIP_DLP_STREAM_JSON, "{\"result\":[1,]}", 15, 2, &out, &t, &peak) < 0);
  CHECK_INT(stream(d, 0, AIP_DLP_STREAM_JSON, "{\"result\":\"\xc3\"}", 14, 1, &out, &t, &peak),
            -EILSEQ);
  aip_buf_free(&out);
  aip_dlp_free(d);
}

/* A body with strings far above the block limit: secrets every ~10 KiB, some written with
 * escapes, some straddling the window's slices. */
static char *big_body(size_t strings, size_t each, size_t *len) {
  static const char *const secrets[] = {"AKIAIOSFODNN7EXAMPLE", "bob.smith@example.com",
                                        "\\u0041SIAIOSFODNN7EXAMPL3", "123-45-6789",
                                        "ghp_0123456789abcdefghijABCDEFGHIJ012345",
                                        "-----BEGIN RSA PRIVATE KEY-----"};
  aip_buf b;
  aip_buf_init(&b);
  aip_buf_puts(&b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[");
  for (size_t s = 0; s < strings; s++) {
    aip_buf_printf(&b, "%s{\"type\":\"text\",\"text\":\"", s ? "," : "");
    size_t start = b.len, k = 0;
    while (b.len - start < each) {
      static const char *const words[] = {"lorem ", "ipsum", "\\n", " dolor, ", "\\u00e9",
                                          " 42 ", "x", "\\/", "\xc3\xa9", "\\ud83d\\ude00"};
      size_t run = 1000 + rnd() % 20000, to = b.len + run;
      while (b.len < to) aip_buf_puts(&b, words[rnd() % 10]);
      aip_buf_printf(&b, " %s ", secrets[k++ % 6]);
    }
    aip_buf_puts(&b, "\"}");
  }
  aip_buf_puts(&b, "]}}");
  return aip_buf_steal(&b, len);
}

static void test_long_strings(void) {
  aip_dlp *d = load(HEAD RULES);
  size_t n;
  char *body = big_body(3, 300 * 1024, &n);
  cJSON *j = NULL;
  CHECK_INT(aip_json_parse(body, n, &j), AIP_JSON_OK);
  cJSON_Delete(j);
  aip_buf want, got;
  aip_buf_init(&want);
  aip_buf_init(&got);
  uint64_t wt, gt;
  size_t peak;
  block(d, AIP_DLP_RESPONSE, body, n, &want, &wt);
  CHECK(wt > 50);
  static const size_t steps[] = {1000, 4096, 65536, 1 << 20, 0};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    CHECK_INT(stream(d, 0, AIP_DLP_STREAM_JSON, body, n, steps[i], &got, &gt, &peak), 0);
    CHECK(got.len == want.len && memcmp(got.data, want.data, want.len) == 0);
    CHECK_INT(gt, wt);
    CHECK(peak < 512 * 1024);
    if (i == 0)
      fprintf(stderr, "long strings: %zu bytes, %llu redactions, stream peak %zu bytes\n", n,
              (unsigned long long)gt, peak);
  }
  CHECK(strstr(got.data, "AKIA") == NULL && strstr(got.data, "ghp_") == NULL);
  j = NULL;
  CHECK_INT(aip_json_parse(got.data, got.len, &j), AIP_JSON_OK);
  cJSON_Delete(j);
  free(body);
  aip_buf_free(&want);
  aip_buf_free(&got);
  aip_dlp_free(d);
}

/* An SSE response read in arbitrary pieces: the reader strips "data: " and forwards each data
 * line's bytes as they arrive (lines of one event joined by "\n"), one DLP stream per event. */
static void test_sse(void) {
  aip_dlp *d = load(HEAD RULES);
  const char *sse =
      "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\n"
      "data: \"params\":{\"data\":\"key AKIAIOSFODNN7EXAMPLE\"}}\n\n"
      "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":"
      "\"mail bob@example.com and ghp_0123456789abcdefghijABCDEFGHIJ012345\"}]}}\n\n";
  for (int round = 0; round < 50; round++) {
    aip_buf out, all;
    aip_buf_init(&out);
    aip_buf_init(&all);
    aip_dlp_stream *st = NULL;
    int at_line_start = 1, in_data = 0, lines = 0;
    size_t n = strlen(sse);
    for (size_t i = 0; i < n;) {
      size_t k = 1 + rnd() % 11, end = i + k > n ? n : i + k;
      for (; i < end; i++) { /* a tiny SSE reader */
        char c = sse[i];
        if (at_line_start) {
          if (c == '\n') { /* blank line: end of the event */
            if (st) aip_dlp_stream_end(st, S, &out, NULL), aip_dlp_stream_free(st), st = NULL;
            aip_buf_append(&all, out.data, out.len), aip_buf_reset(&out);
            aip_buf_puts(&all, "|");
            lines = 0;
            continue;
          }
          in_data = strncmp(sse + i, "data: ", 6) == 0;
          if (in_data) {
            if (!st) st = aip_dlp_stream_new(d, AIP_DLP_RESPONSE, AIP_DLP_STREAM_JSON);
            if (lines++) aip_dlp_stream_feed(st, S, "\n", 1, &out, NULL);
            i += 5;
            at_line_start = 0;
            continue;
          }
          at_line_start = 0;
        }
        if (c == '\n') {
          at_line_start = 1;
          continue;
        }
        if (in_data) CHECK_INT(aip_dlp_stream_feed(st, S, &c, 1, &out, NULL), 0);
      }
    }
    CHECK_STR(all.data,
              "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\n\"params\":{\"data\":"
              "\"key [REDACTED:AWS Key]\"}}|{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":"
              "[{\"type\":\"text\",\"text\":\"mail [REDACTED:Email] and [REDACTED:GitHub Token]\"}"
              "]}}|");
    aip_buf_free(&out);
    aip_buf_free(&all);
  }
  aip_dlp_free(d);
}

/* stderr: a secret split across writes is still caught; flush emits what is held. */
static void test_text(void) {
  aip_dlp *d = load(HEAD RULES);
  aip_dlp_stream *st = aip_dlp_stream_new(d, AIP_DLP_RESPONSE, AIP_DLP_STREAM_TEXT);
  aip_buf out;
  aip_buf_init(&out);
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, d);
  const char *w[] = {"error: key AKIAIOSFO", "DNN7EXAMPLE\npassword ok\nssn 123-4", "5-6789\n"};
  for (int i = 0; i < 3; i++)
    CHECK_INT(aip_dlp_stream_feed(st, S, w[i], strlen(w[i]), &out, &c), 0);
  CHECK_INT(aip_dlp_stream_flush(st, S, &out, &c), 0);
  CHECK_STR(out.data, "error: key [REDACTED:AWS Key]\npassword ok\nssn [REDACTED:SSN]\n");
  CHECK_INT(aip_dlp_stream_feed(st, S, "x\xff a@b.io", 10, &out, &c), 0);
  CHECK_INT(aip_dlp_stream_end(st, S, &out, &c), 0);
  CHECK_STR(out.data, "error: key [REDACTED:AWS Key]\npassword ok\nssn [REDACTED:SSN]\n"
                      "x\xff [REDACTED:Email]");
  CHECK_INT(c.total, 3);
  aip_dlp_counts_free(&c);
  aip_buf_free(&out);
  aip_dlp_stream_free(st);
  /* no DLP: pass-through */
  st = aip_dlp_stream_new(NULL, 0, AIP_DLP_STREAM_JSON);
  aip_buf_init(&out);
  CHECK_INT(aip_dlp_stream_feed(st, S, "{\"a\":1}", 7, &out, NULL), 0);
  CHECK_INT(aip_dlp_stream_end(st, S, &out, NULL), 0);
  CHECK_STR(out.data, "{\"a\":1}");
  aip_buf_free(&out);
  aip_dlp_stream_free(st);
  aip_dlp_free(d);
}

int main(void) {
  S = aip_dlp_scratch_new();
  test_messages();
  test_long_strings();
  test_sse();
  test_text();
  aip_dlp_scratch_free(S);
  TEST_MAIN_END();
}
