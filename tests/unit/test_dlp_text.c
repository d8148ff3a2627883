/* test_dlp_text.c -- AIP's Redact(text) semantics (the reference's own unit tests, ported),
 * encoding detection, rule interplay, RE2 details and load-time validation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dlp.h"
#include "test.h"

#define HEAD "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: t}\nspec:\n"
#define AWS "'(A3T[A-Z0-9]|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16}'"
#define EMAIL "'[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}'"

static aip_dlp_scratch *S;

static aip_dlp *load_err(const char *yaml, aip_error *err) {
  aip_policy_doc *doc = NULL;
  aip_dlp *d = NULL;
  int rc = aip_policy_doc_load_string(yaml, strlen(yaml), "t.yaml", &doc, err);
  if (!rc) rc = aip_dlp_compile(doc, NULL, &d, err);
  aip_policy_doc_free(doc);
  if (d) aip_dlp_scratch_prepare(S, d);
  return rc ? NULL : d;
}

static aip_dlp *load(const char *yaml) {
  aip_error err = {{0}};
  aip_dlp *d = load_err(yaml, &err);
  if (!d) fprintf(stderr, "load: %s\n", err.msg);
  return d;
}

/* Redacts and compares with `want`; `events` is "rule=n,rule=n" in order ("" for none). */
static void expect(aip_dlp *d, const char *in, const char *want, const char *events) {
  aip_buf out;
  aip_buf_init(&out);
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, d);
  int rc = aip_dlp_redact_text(d, S, AIP_DLP_RESPONSE, in, strlen(in), &out, &c);
  CHECK(rc >= 0);
  CHECK_STR(rc > 0 ? out.data : in, want);
  char got[512] = "";
  size_t it = 0;
  const char *rule;
  uint32_t n;
  while (aip_dlp_counts_next(d, &c, &it, &rule, &n))
    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s=%u", got[0] ? "," : "", rule, n);
  CHECK_STR(got, events);
  aip_dlp_counts_free(&c);
  aip_buf_free(&out);
}

/* aip-go pkg/dlp/scanner_test.go, TestScanner_Redact and the spec case */
static void test_reference(void) {
  aip_dlp *d = load(HEAD "  dlp:\n    patterns:\n      - {name: Email, regex: " EMAIL "}\n"
                    "      - {name: AWS Key, regex: " AWS "}\n"
                    "      - {name: Generic Secret, regex: \"(?i)(api_key|secret|password)"
                    "\\\\s*[:=]\\\\s*['\\\"]?([a-zA-Z0-9-_]+)['\\\"]?\"}\n");
  expect(d, "Hello, this is a normal message", "Hello, this is a normal message", "");
  expect(d, "Contact me at user@example.com", "Contact me at [REDACTED:Email]", "Email=1");
  expect(d, "Email alice@test.org or bob@company.com",
         "Email [REDACTED:Email] or [REDACTED:Email]", "Email=2");
  expect(d, "The key is AKIAIOSFODNN7EXAMPLE", "The key is [REDACTED:AWS Key]", "AWS Key=1");
  expect(d, "api_key: \"my-secret-key-123\"", "[REDACTED:Generic Secret]", "Generic Secret=1");
  expect(d, "password = supersecret123", "[REDACTED:Generic Secret]", "Generic Secret=1");
  expect(d, "Contact user@test.com with key AKIAIOSFODNN7EXAMPLE",
         "Contact [REDACTED:Email] with key [REDACTED:AWS Key]", "Email=1,AWS Key=1");
  expect(d, "SECRET: myvalue", "[REDACTED:Generic Secret]", "Generic Secret=1");
  aip_dlp_free(d);
  d = load(HEAD "  dlp:\n    patterns:\n      - {name: Generic Secret, regex: SECRET}\n");
  expect(d, "This is a SECRET code", "This is a [REDACTED:Generic Secret] code",
         "Generic Secret=1");
  aip_dlp_free(d);
}

/* TestEncodingDetection_* */
static void test_encoding(void) {
  aip_dlp *d = load(HEAD "  dlp:\n    detect_encoding: true\n    patterns:\n"
                    "      - {name: AWS Key, regex: " AWS "}\n"
                    "      - {name: Password, regex: '(?i)password\\s*[:=]\\s*\\S+'}\n");
  expect(d, "Key: AKIAIOSFODNN7EXAMPLE", "Key: [REDACTED:AWS Key]", "AWS Key=1");
  expect(d, "Encoded: QUtJQUlPU0ZPRE5ON0VYQU1QTEU=", "Encoded: [REDACTED:AWS Key:encoded]",
         "AWS Key (encoded)=1");
  expect(d, "Random: SGVsbG8gV29ybGQh", "Random: SGVsbG8gV29ybGQh", "");
  expect(d, "Hex key: 414b4941494f53464f444e4e374558414d504c45",
         "Hex key: [REDACTED:AWS Key:encoded]", "AWS Key (encoded)=1");
  expect(d, "Key: 0x414b4941494f53464f444e4e374558414d504c45",
         "Key: [REDACTED:AWS Key:encoded]", "AWS Key (encoded)=1");
  expect(d, "{\"secret\": \"QUtJQUlPU0ZPRE5ON0VYQU1QTEU=\"}",
         "{\"secret\": \"[REDACTED:AWS Key:encoded]\"}", "AWS Key (encoded)=1");
  static const char *const clean[] = {
      "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
      "Authorization: Basic dXNlcm5hbWU6cGFzc3dvcmQ=", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"};
  for (int i = 0; i < 3; i++) expect(d, clean[i], clean[i], "");
  /* the plain pass first, then encodings; every copy of an encoded secret is redacted and
   * counted (the reference redacts only the first and forwards the second: not copied) */
  expect(d,
         "AKIAIOSFODNN7EXAMPLE and QUtJQUlPU0ZPRE5ON0VYQU1QTEU= again "
         "QUtJQUlPU0ZPRE5ON0VYQU1QTEU=",
         "[REDACTED:AWS Key] and [REDACTED:AWS Key:encoded] again [REDACTED:AWS Key:encoded]",
         "AWS Key=1,AWS Key (encoded)=2");
  expect(d, "QUtJQUlPU0ZPRE5ON0VYQU1QTEU=QUtJQUlPU0ZPRE5ON0VYQU1QTEU= x QUtJQUlPU0ZPRE5ON0VYQU1QTEU=",
         "[REDACTED:AWS Key:encoded][REDACTED:AWS Key:encoded] x [REDACTED:AWS Key:encoded]",
         "AWS Key (encoded)=3");
  aip_dlp_free(d);
  d = load(HEAD "  dlp:\n    patterns:\n      - {name: AWS Key, regex: " AWS "}\n");
  expect(d, "Encoded: QUtJQUlPU0ZPRE5ON0VYQU1QTEU=", "Encoded: QUtJQUlPU0ZPRE5ON0VYQU1QTEU=", "");
  aip_dlp_free(d);
}

/* Later rules see the text the earlier ones left, as in Go. */
static void test_interplay(void) {
  aip_dlp *d = load(HEAD "  dlp:\n    patterns:\n      - {name: A, regex: 'x+'}\n"
                    "      - {name: B, regex: REDACTED}\n");
  expect(d, "xx", "[[REDACTED:B]:A]", "A=1,B=1");
  expect(d, "REDACTED", "[REDACTED:B]", "B=1");
  aip_dlp_free(d);
  /* \b next to a placeholder: "x123" has no \b before 1, "[REDACTED:X]123" has one */
  d = load(HEAD "  dlp:\n    patterns:\n      - {name: X, regex: x}\n"
                "      - {name: D, regex: '\\b\\d{3}\\b'}\n");
  expect(d, "x123", "[REDACTED:X][REDACTED:D]", "X=1,D=1");
  expect(d, "y123", "y123", "");
  aip_dlp_free(d);
  /* a rule that can consume a bracket: ".+" after a replacement */
  d = load(HEAD "  dlp:\n    patterns:\n      - {name: K, regex: 'k[0-9]'}\n"
                "      - {name: W, regex: '\\]tail'}\n");
  expect(d, "k1tail", "[REDACTED:K[REDACTED:W]", "K=1,W=1");
  aip_dlp_free(d);
  /* the placeholder is literal: no $1 expansion (deviation from Go, which expands it) */
  d = load(HEAD "  dlp:\n    patterns:\n      - {name: Dollar$1, regex: '(abc)'}\n");
  expect(d, "xabcx", "x[REDACTED:Dollar$1]x", "Dollar$1=1");
  aip_dlp_free(d);
}

/* RE2 semantics that PCRE2 needs help with, and UTF-8. */
static void test_re2(void) {
  aip_dlp *d = load(HEAD "  dlp:\n    patterns:\n      - {name: S, regex: 'a\\sb'}\n"
                         "      - {name: E, regex: 'end$'}\n"
                         "      - {name: K, regex: '(?i)ok'}\n"
                         "      - {name: P, regex: 'pw=.{2}'}\n");
  expect(d, "a\vb a b", "a\vb [REDACTED:S]", "S=1"); /* Go's \s has no \v */
  expect(d, "end\n", "end\n", "");                    /* $ is the very end, as in Go */
  expect(d, "the end", "the [REDACTED:E]", "E=1");
  expect(d, "o\xe2\x84\xaa", "[REDACTED:K]", "K=1"); /* KELVIN SIGN folds to k */
  expect(d, "pw=\xe6\x97\xa5\xe6\x9c\xac!", "[REDACTED:P]!", "P=1"); /* two characters */
  /* invalid UTF-8 stays as it is and does not stop the scan */
  expect(d, "\xff ok \xfe", "\xff [REDACTED:K] \xfe", "K=1");
  aip_dlp_free(d);
}

static void test_load(void) {
  aip_error err = {{0}};
  CHECK(load_err(HEAD "  allowed_tools: [a]\n", &err) == NULL && !err.msg[0]);
  CHECK(load_err(HEAD "  dlp:\n    enabled: false\n    patterns:\n      - {name: a, regex: b}\n",
                 &err) == NULL && !err.msg[0]);
  aip_dlp *d = load_err(HEAD "  dlp:\n    patterns:\n      - {name: ok, regex: 'ab+c'}\n"
                        "      - {name: bad, regex: 'a(?=b)'}\n", &err);
  CHECK(d == NULL);
  CHECK_STR(err.msg, "t.yaml:8: pattern \"bad\": Zero-width assertions are not supported.");
  d = load_err(HEAD "  dlp:\n    patterns:\n      - {name: empty, regex: 'a*'}\n", &err);
  CHECK(d == NULL && strstr(err.msg, "t.yaml:7: pattern \"empty\": Pattern matches empty"));
  d = load_err(HEAD "  dlp:\n    patterns:\n      - {name: big, regex: 'a{40000}'}\n", &err);
  CHECK(d == NULL && strstr(err.msg, "pattern \"big\": Bounded repeat is too large."));
  /* failover.on_regex_error: allow drops the bad one and says so */
  d = load(HEAD "  failover: {on_regex_error: allow}\n  dlp:\n    patterns:\n"
                "      - {name: ok, regex: 'ab+c'}\n      - {name: bad, regex: 'a(?=b)'}\n"
                "      - {name: bad2, regex: 'x*'}\n");
  CHECK(d != NULL);
  CHECK(aip_dlp_warning(d, 0) && strstr(aip_dlp_warning(d, 0), "pattern \"bad\""));
  CHECK(aip_dlp_warning(d, 1) && strstr(aip_dlp_warning(d, 1), "pattern \"bad2\""));
  expect(d, "abbc", "[REDACTED:ok]", "ok=1");
  aip_dlp_free(d);
  /* the rule pack alone enables DLP; policy patterns come first */
  d = load(HEAD "  dlp:\n    rulepack: default\n    patterns:\n      - {name: mine, regex: zz9}\n");
  CHECK(d && aip_dlp_rule_count(d) > 30);
  CHECK_STR(aip_dlp_rule_name(d, 0), "mine");
  expect(d, "zz9 ghp_0123456789abcdefghijABCDEFGHIJ012345",
         "[REDACTED:mine] [REDACTED:github-token]", "mine=1,github-token=1");
  aip_dlp_free(d);
  d = load_err(HEAD "  dlp:\n    rulepack: other\n", &err);
  CHECK(d == NULL && strstr(err.msg, "rulepack"));
}

/* The new policy fields (config/policy_config.c). */
static void test_fields(void) {
  const char *y = HEAD "  failover: {on_regex_error: allow, on_dlp_error: allow}\n"
                       "  dlp:\n    timeout: 100ms\n    stream_threshold: 2MiB\n"
                       "    rulepack: none\n    max_scan_size: 10KB\n"
                       "    patterns: [{name: a, regex: b}]\n";
  aip_policy_doc *doc = NULL;
  aip_error err = {{0}};
  CHECK_INT(aip_policy_doc_load_string(y, strlen(y), "t.yaml", &doc, &err), 0);
  if (doc) {
    CHECK_INT(doc->dlp.timeout_ms, 100);
    CHECK_INT(doc->dlp.stream_threshold, 2 * 1024 * 1024);
    CHECK(doc->dlp.rulepack == NULL);
    CHECK_INT(doc->dlp.max_scan_size_set, 1);
    CHECK_INT(doc->dlp.max_scan_size, 10000);
    CHECK_INT(doc->failover.present, 1);
    CHECK_INT(doc->failover.on_regex_error, AIP_FAILOVER_ALLOW);
    CHECK_INT(doc->failover.on_dlp_error, AIP_FAILOVER_ALLOW);
    CHECK_INT(doc->failover.on_policy_load_error, AIP_FAILOVER_BLOCK);
  }
  aip_policy_doc_free(doc);
  /* defaults: nothing skipped, 1 MiB threshold, fail closed */
  y = HEAD "  dlp:\n    patterns: [{name: a, regex: b}]\n";
  CHECK_INT(aip_policy_doc_load_string(y, strlen(y), "t.yaml", &doc, &err), 0);
  if (doc) {
    CHECK_INT(doc->dlp.max_scan_size_set, 0);
    CHECK_INT(doc->dlp.stream_threshold, 1024 * 1024);
    CHECK_INT(doc->dlp.timeout_ms, 0);
    CHECK_INT(doc->failover.on_dlp_error, AIP_FAILOVER_BLOCK);
  }
  aip_policy_doc_free(doc);
  doc = NULL;
  y = HEAD "  failover: {on_dlp_error: maybe}\n";
  CHECK(aip_policy_doc_load_string(y, strlen(y), "t.yaml", &doc, &err) < 0);
  CHECK(strstr(err.msg, "t.yaml:5:") && strstr(err.msg, "spec.failover.on_dlp_error"));
  y = HEAD "  dlp: {timeout: soon}\n";
  CHECK(aip_policy_doc_load_string(y, strlen(y), "t.yaml", &doc, &err) < 0);
  CHECK(strstr(err.msg, "spec.dlp.timeout") != NULL);
}

int main(void) {
  S = aip_dlp_scratch_new();
  test_fields();
  test_reference();
  test_encoding();
  test_interplay();
  test_re2();
  test_load();
  aip_dlp_scratch_free(S);
  TEST_MAIN_END();
}
