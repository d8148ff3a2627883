/* test_dlp_json.c -- DLP on whole JSON-RPC messages: decode, scan, splice. Every redacted
 * output is re-parsed with the gateway's strict parser. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dlp.h"
#include "engine/engine.h"
#include "test.h"

#define HEAD "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: t}\nspec:\n"
#define GUIDE                                                                             \
  "    patterns:\n"                                                                       \
  "      - {name: AWS Key, regex: \"(A3T[A-Z0-9]|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)" \
  "[A-Z0-9]{16}\"}\n"                                                                     \
  "      - {name: GitHub Token, regex: \"gh[pousr]_[a-zA-Z0-9]{36,255}\"}\n"              \
  "      - {name: Email, regex: \"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\\\.[a-zA-Z]{2,}\"}\n"  \
  "      - {name: SSN, regex: \"\\\\b\\\\d{3}-\\\\d{2}-\\\\d{4}\\\\b\"}\n"                 \
  "      - {name: Credit Card, regex: \"\\\\b(?:\\\\d{4}[- ]?){3}\\\\d{4}\\\\b\"}\n"       \
  "      - {name: DB, regex: \"postgres://.*@prod-db\\\\.\"}\n"

static aip_dlp_scratch *S;
static int lone_surrogate; /* the strict parser refuses those: skip the re-parse */

static aip_dlp *load(const char *yaml) {
  aip_policy_doc *doc = NULL;
  aip_dlp *d = NULL;
  aip_error err = {{0}};
  if (aip_policy_doc_load_string(yaml, strlen(yaml), "t.yaml", &doc, &err) ||
      aip_dlp_compile(doc, NULL, &d, &err)) {
    fprintf(stderr, "load: %s\n", err.msg);
    aip_policy_doc_free(doc);
    return NULL;
  }
  aip_policy_doc_free(doc);
  aip_dlp_scratch_prepare(S, d);
  return d;
}

/* Redacts `in` and checks the output (`want` NULL: unchanged) and that it parses strictly. */
static void expect(aip_dlp *d, int scope, const char *in, const char *want, uint64_t total) {
  aip_buf out;
  aip_buf_init(&out);
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, d);
  int rc = aip_dlp_redact_json(d, S, scope, in, strlen(in), &out, &c);
  CHECK_INT(rc, want ? 1 : 0);
  if (want) {
    CHECK_STR(rc > 0 ? out.data : in, want);
    cJSON *j = NULL;
    aip_json_status st = aip_json_parse(out.data, out.len, &j);
    CHECK_INT(st, lone_surrogate ? AIP_JSON_BAD_UTF8 : AIP_JSON_OK);
    cJSON_Delete(j);
  }
  CHECK_INT(c.total, total);
  aip_dlp_counts_free(&c);
  aip_buf_free(&out);
}

static void test_paths(void) {
  aip_dlp *d = load(HEAD "  dlp:\n    scan_requests: true\n" GUIDE);
  /* result: everything, keys included; id/jsonrpc untouched */
  expect(d, AIP_DLP_RESPONSE,
         "{\"jsonrpc\":\"2.0\",\"id\":\"bob@x.com\",\"result\":{\"content\":[{\"type\":\"text\","
         "\"text\":\"key AKIAIOSFODNN7EXAMPLE\"},{\"type\":\"image\",\"data\":\"iVBOR\","
         "\"mimeType\":\"image/png\"}],\"structuredContent\":{\"mail\":\"a@b.io\"},"
         "\"_meta\":{\"n\":1}}}",
         "{\"jsonrpc\":\"2.0\",\"id\":\"bob@x.com\",\"result\":{\"content\":[{\"type\":\"text\","
         "\"text\":\"key [REDACTED:AWS Key]\"},{\"type\":\"image\",\"data\":\"iVBOR\","
         "\"mimeType\":\"image/png\"}],\"structuredContent\":{\"mail\":\"[REDACTED:Email]\"},"
         "\"_meta\":{\"n\":1}}}",
         2);
  /* errors: message and data, not code */
  expect(d, AIP_DLP_RESPONSE,
         "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"bad a@b.io\","
         "\"data\":{\"dsn\":\"postgres://u:p@prod-db.x\"}}}",
         "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"bad "
         "[REDACTED:Email]\",\"data\":{\"dsn\":\"[REDACTED:DB]x\"}}}",
         2);
  /* notifications: params; method untouched */
  expect(d, AIP_DLP_RESPONSE,
         "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\","
         "\"data\":\"ssn 123-45-6789\"}}",
         "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\","
         "\"data\":\"ssn [REDACTED:SSN]\"}}",
         1);
  /* requests: all of params, name included */
  expect(d, AIP_DLP_REQUEST,
         "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
         "\"a@b.io\",\"arguments\":{\"to\":\"c@d.io\"}}}",
         "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
         "\"[REDACTED:Email]\",\"arguments\":{\"to\":\"[REDACTED:Email]\"}}}",
         2);
  /* the same request in response scope: nothing of it is scanned... params of a request are
   * scanned though (a server -> client request carries data for the agent) */
  expect(d, AIP_DLP_RESPONSE, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}", NULL, 0);
  /* a batch is messages */
  expect(d, AIP_DLP_RESPONSE,
         "[{\"id\":1,\"result\":\"a@b.io\"},{\"id\":\"c@d.io\",\"result\":{}}]",
         "[{\"id\":1,\"result\":\"[REDACTED:Email]\"},{\"id\":\"c@d.io\",\"result\":{}}]", 1);
  /* clean: untouched, returns 0 */
  expect(d, AIP_DLP_RESPONSE,
         "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":"
         "\"nothing here\"}]}}",
         NULL, 0);
  aip_dlp_free(d);
}

/* Every member but the values of jsonrpc, id, method and error.code, in both directions
 * (issue 11 item 9): extra top-level members, other error members, _meta, keys of unknown
 * members, non-scalar protocol fields. */
static void test_every_member(void) {
  aip_dlp *d = load(HEAD "  dlp:\n    scan_requests: true\n" GUIDE);
  for (int sc = AIP_DLP_RESPONSE; sc <= AIP_DLP_REQUEST; sc++) {
    expect(d, sc,
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"x\":\"AKIAIOSFODNN7EXAMPLE\","
           "\"a@b.io\":1}",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"x\":\"[REDACTED:AWS Key]\","
           "\"[REDACTED:Email]\":1}",
           2);
    expect(d, sc,
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"m\","
           "\"hint\":\"AKIAIOSFODNN7EXAMPLE\"}}",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"m\","
           "\"hint\":\"[REDACTED:AWS Key]\"}}",
           1);
    /* a code that is not a number is not a code */
    expect(d, sc, "{\"id\":1,\"error\":{\"code\":{\"k\":\"a@b.io\"}}}",
           "{\"id\":1,\"error\":{\"code\":{\"k\":\"[REDACTED:Email]\"}}}", 1);
    expect(d, sc,
           "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{},"
           "\"extra\":{\"k\":\"a@b.io\"}}",
           "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{},"
           "\"extra\":{\"k\":\"[REDACTED:Email]\"}}",
           1);
    expect(d, sc,
           "{\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"t\",\"_meta\":"
           "{\"k\":\"a@b.io\"}}}",
           "{\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"t\",\"_meta\":"
           "{\"k\":\"[REDACTED:Email]\"}}}",
           1);
    /* protocol scalars stay, a container in their place is scanned */
    expect(d, sc, "{\"jsonrpc\":\"2.0\",\"id\":\"a@b.io\",\"method\":\"a@b.io\"}", NULL, 0);
    expect(d, sc, "{\"id\":[\"a@b.io\"],\"result\":1}", "{\"id\":[\"[REDACTED:Email]\"],\"result\":1}", 1);
    /* a case variant of a protocol member is an unknown member */
    expect(d, sc, "{\"id\":1,\"ID\":\"a@b.io\",\"result\":1}",
           "{\"id\":1,\"ID\":\"[REDACTED:Email]\",\"result\":1}", 1);
    /* a batch element that is not an object */
    expect(d, sc, "[[\"a@b.io\"]]", "[[\"[REDACTED:Email]\"]]", 1);
  }
  /* a rule that matches protocol names leaves them alone */
  aip_dlp *w = load(HEAD "  dlp:\n    scan_requests: true\n    patterns:\n"
                    "      - {name: W, regex: \"^(jsonrpc|id|method|result|error|code|message|data|params)$\"}\n");
  for (int sc = AIP_DLP_RESPONSE; sc <= AIP_DLP_REQUEST; sc++) {
    expect(w, sc, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"x\":1}}", NULL, 0);
    expect(w, sc, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"x\",\"data\":1}}",
           NULL, 0);
    expect(w, sc, "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"data\":1}}",
           "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"[REDACTED:W]\":1}}", 1);
  }
  aip_dlp_free(w);
  aip_dlp_free(d);
}

static void test_escapes(void) {
  aip_dlp *d = load(HEAD "  dlp:\n" GUIDE);
  int w = AIP_DLP_RESPONSE | AIP_DLP_WHOLE;
  /* a secret written with escapes is found; the surrounding escapes are kept as written */
  expect(d, w, "{\"t\":\"x\\u0041KIAIOSFODNN7EXAMPLE \\u00e9\\n\"}",
         "{\"t\":\"x[REDACTED:AWS Key] \\u00e9\\n\"}", 1);
  expect(d, w, "{\"t\":\"postgres:\\/\\/u:p@prod-db.7\"}", "{\"t\":\"[REDACTED:DB]7\"}", 1);
  /* policy order decides: Email comes before DB and takes the part it matches */
  expect(d, w, "{\"t\":\"postgres:\\/\\/u:p@prod-db.internal\"}",
         "{\"t\":\"postgres:\\/\\/u:[REDACTED:Email]\"}", 1);
  /* surrogate pairs before and after, raw and escaped */
  expect(d, w, "[\"\\ud83d\\ude00a@b.io\\ud83d\\ude00\", \"\xf0\x9f\x98\x80" "a@b.io\"]",
         "[\"\\ud83d\\ude00[REDACTED:Email]\\ud83d\\ude00\", \"\xf0\x9f\x98\x80"
         "[REDACTED:Email]\"]", 2);
  /* a lone surrogate is scanned as U+FFFD and kept */
  lone_surrogate = 1;
  expect(d, w, "[\"\\ud800a@b.io\"]", "[\"\\ud800[REDACTED:Email]\"]", 1);
  lone_surrogate = 0;
  /* a placeholder is escaped when the name needs it */
  aip_dlp *q = load(HEAD "  dlp:\n    patterns:\n      - {name: 'a\"b\\c', regex: 'k[0-9]+'}\n");
  expect(q, w, "[\"x k12 y\"]", "[\"x [REDACTED:a\\\"b\\\\c] y\"]", 1);
  aip_dlp_free(q);
  /* invalid JSON and invalid UTF-8 are errors, out untouched */
  aip_buf out;
  aip_buf_init(&out);
  aip_buf_puts(&out, "keep");
  CHECK_INT(aip_dlp_redact_json(d, S, w, "{\"a\":\"a@b.io\"", 13, &out, NULL), -EINVAL);
  CHECK_INT(aip_dlp_redact_json(d, S, w, "[\"a@b.io\xff\"]", 11, &out, NULL), -EILSEQ);
  CHECK_INT(aip_dlp_redact_json(d, S, w, "[\"a@b.io\"] x", 12, &out, NULL), -EINVAL);
  CHECK_INT(aip_dlp_redact_json(d, S, w, "[01]", 4, &out, NULL), -EINVAL);
  CHECK_STR(out.data, "keep");
  aip_buf_free(&out);
  aip_dlp_free(d);
}

/* The tokenizer skips plain string bytes 16 and 8 at a time: a quote, an escape, a control
 * byte, a UTF-8 sequence or a bad byte at every offset of those blocks is still seen. */
static void test_special_at_every_offset(void) {
  aip_dlp *d = load(HEAD "  dlp:\n" GUIDE);
  int w = AIP_DLP_RESPONSE | AIP_DLP_WHOLE;
  aip_buf in, want, out;
  aip_buf_init(&in);
  aip_buf_init(&want);
  aip_buf_init(&out);
  static const char *const ok[][2] = {{"\\n", "\\n"}, {"\\u00e9", "\\u00e9"},
                                      {"\xc3\xa9", "\xc3\xa9"}, {"\", \"", "\", \""}};
  for (size_t k = 0; k < 40; k++) {
    char pad[64];
    memset(pad, 'a', k);
    pad[k] = '\0';
    for (size_t v = 0; v < sizeof ok / sizeof *ok; v++) { /* then a secret further on */
      aip_buf_reset(&in);
      aip_buf_reset(&want);
      aip_buf_printf(&in, "[\"%s%s %s AKIAIOSFODNN7EXAMPLE\"]", pad, ok[v][0], pad);
      aip_buf_printf(&want, "[\"%s%s %s [REDACTED:AWS Key]\"]", pad, ok[v][1], pad);
      expect(d, w, in.data, want.data, 1);
    }
    static const struct { const char *bad; int rc; } bad[] = {
        {"\x01", -EINVAL}, {"\x1f", -EINVAL}, {"\xff", -EILSEQ}, {"\xc3(", -EILSEQ},
        {"\\x", -EINVAL}};
    for (size_t v = 0; v < sizeof bad / sizeof *bad; v++) {
      aip_buf_reset(&in);
      aip_buf_printf(&in, "[\"%s%s%s\"]", pad, bad[v].bad, pad);
      aip_buf_reset(&out);
      CHECK_INT(aip_dlp_redact_json(d, S, w, in.data, in.len, &out, NULL), bad[v].rc);
    }
  }
  aip_buf_free(&in);
  aip_buf_free(&want);
  aip_buf_free(&out);
  aip_dlp_free(d);
}

static void test_keys_numbers_nested(void) {
  aip_dlp *d = load(HEAD "  dlp:\n" GUIDE);
  int w = AIP_DLP_RESPONSE | AIP_DLP_WHOLE;
  /* secrets in keys: the second redacted key of an object gets #2 */
  expect(d, w, "{\"a@b.io\":1,\"c@d.io\":2,\"x\":{\"e@f.io\":3}}",
         "{\"[REDACTED:Email]\":1,\"[REDACTED:Email]#2\":2,\"x\":{\"[REDACTED:Email]\":3}}", 3);
  /* numbers: a card number as a JSON number becomes a string; others stay numbers */
  expect(d, w, "{\"card\":4111111111111111,\"n\":12.5e3,\"m\":-7}",
         "{\"card\":\"[REDACTED:Credit Card]\",\"n\":12.5e3,\"m\":-7}", 1);
  expect(d, w, "4111111111111111", "\"[REDACTED:Credit Card]\"", 1);
  /* JSON inside a string, with an escaped secret inside it */
  expect(d, w,
         "{\"text\":\"{\\\"k\\\":\\\"\\\\u0041KIAIOSFODNN7EXAMPLE\\\",\\\"m\\\":\\\"a@b.io\\\"}\"}",
         "{\"text\":\"{\\\"k\\\":\\\"[REDACTED:AWS Key]\\\",\\\"m\\\":\\\"[REDACTED:Email]\\\"}\"}",
         2);
  /* not JSON after all: scanned as text only */
  expect(d, w, "{\"text\":\"{\\\"k\\\": \\\\u0041KIAIOSFODNN7EXAMPLE a@b.io\"}",
         "{\"text\":\"{\\\"k\\\": \\\\u0041KIAIOSFODNN7EXAMPLE [REDACTED:Email]\"}", 1);
  aip_dlp_free(d);
}

static void test_scan_flags(void) {
  /* scan_responses: false turns the response side off; requests need scan_requests */
  aip_dlp *d = load(HEAD "  dlp:\n    scan_responses: false\n" GUIDE);
  expect(d, AIP_DLP_RESPONSE, "{\"id\":1,\"result\":\"a@b.io\"}", NULL, 0);
  expect(d, AIP_DLP_REQUEST, "{\"params\":{\"arguments\":{\"a\":\"a@b.io\"}}}", NULL, 0);
  aip_dlp_free(d);
  /* scope per pattern */
  d = load(HEAD "  dlp:\n    scan_requests: true\n    patterns:\n"
                "      - {name: R, regex: 'req[0-9]{3}', scope: request}\n"
                "      - {name: P, regex: 'resp[0-9]{3}', scope: response}\n");
  expect(d, AIP_DLP_REQUEST, "{\"params\":{\"arguments\":{\"a\":\"req123 resp123\"}}}",
         "{\"params\":{\"arguments\":{\"a\":\"[REDACTED:R] resp123\"}}}", 1);
  expect(d, AIP_DLP_RESPONSE, "{\"result\":\"req123 resp123\"}",
         "{\"result\":\"req123 [REDACTED:P]\"}", 1);
  aip_dlp_free(d);
  /* max_scan_size: only when written; later tokens are left alone and flagged */
  d = load(HEAD "  dlp:\n    max_scan_size: 30\n" GUIDE);
  aip_buf out;
  aip_buf_init(&out);
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, d);
  const char *in = "{\"result\":[\"a@b.io\",\"................\",\"c@d.io\"]}";
  CHECK_INT(aip_dlp_redact_json(d, S, 0, in, strlen(in), &out, &c), 1);
  CHECK_STR(out.data, "{\"result\":[\"[REDACTED:Email]\",\"................\",\"c@d.io\"]}");
  CHECK(c.flags & AIP_DLP_F_PARTIAL);
  CHECK(aip_dlp_warning(d, 0) != NULL);
  aip_dlp_counts_free(&c);
  aip_buf_free(&out);
  aip_dlp_free(d);
}

static int expired_now(void *ctx) { return ++*(int *)ctx > 1; }

static void test_deadline(void) {
  aip_dlp *d = load(HEAD "  dlp:\n" GUIDE);
  int calls = 0;
  aip_dlp_scratch_set_deadline(S, expired_now, &calls);
  aip_buf out;
  aip_buf_init(&out);
  const char *in = "[\"a@b.io\",\"c@d.io\",\"e@f.io\"]";
  CHECK_INT(aip_dlp_redact_json(d, S, AIP_DLP_WHOLE, in, strlen(in), &out, NULL), -ETIMEDOUT);
  aip_dlp_scratch_set_deadline(S, NULL, NULL);
  CHECK_INT(aip_dlp_redact_json(d, S, AIP_DLP_WHOLE, in, strlen(in), &out, NULL), 1);
  aip_buf_free(&out);
  aip_dlp_free(d);
}

int main(void) {
  S = aip_dlp_scratch_new();
  test_paths();
  test_every_member();
  test_escapes();
  test_special_at_every_offset();
  test_keys_numbers_nested();
  test_scan_flags();
  test_deadline();
  aip_dlp_scratch_free(S);
  TEST_MAIN_END();
}
