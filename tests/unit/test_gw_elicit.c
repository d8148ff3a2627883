/* test_gw_elicit.c -- the elicitation messages shared by the stdio wrapper and `aip serve`
 * (gateway/approvals/elicit.c): which capabilities and versions allow asking, the shape of the question
 * per version, the argument cut on a UTF-8 boundary, and the strict reading of the answer
 * (accept with approve: true, nothing else, approves). */
#include <stdlib.h>
#include <string.h>

#include "gateway/approvals/elicit.h"
#include "test.h"

static cJSON *parse(const char *s) {
  cJSON *j = NULL;
  return aip_json_parse(s, strlen(s), &j) == AIP_JSON_OK ? j : NULL;
}

static void test_capable(void) {
  static const struct {
    const char *caps;
    int want;
  } cases[] = {
      {"{\"elicitation\":{}}", 1},
      {"{\"elicitation\":{\"form\":{}}}", 1},
      {"{\"elicitation\":{\"form\":{},\"url\":{}}}", 1},
      {"{\"elicitation\":{\"url\":{}}}", 0}, /* url mode only: no form */
      {"{\"elicitation\":true}", 0},
      {"{\"sampling\":{}}", 0},
      {"{}", 0},
      {"[]", 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    cJSON *c = parse(cases[i].caps);
    CHECK(c != NULL);
    if (aip_elicit_capable(c) != cases[i].want) fprintf(stderr, "caps %s\n", cases[i].caps);
    CHECK_INT(aip_elicit_capable(c), cases[i].want);
    cJSON_Delete(c);
  }
  CHECK_INT(aip_elicit_capable(NULL), 0);
}

static void test_versions(void) {
  CHECK_INT(aip_elicit_version_ok("2025-11-25"), 1);
  CHECK_INT(aip_elicit_version_ok("2025-06-18"), 1);
  CHECK_INT(aip_elicit_version_ok("2025-03-26"), 0);
  CHECK_INT(aip_elicit_version_ok("2024-11-05"), 0);
  CHECK_INT(aip_elicit_version_ok(NULL), 0);
}

static const char *str_at(const cJSON *o, const char *a, const char *b) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
  if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
  return cJSON_IsString(x) ? x->valuestring : NULL;
}

static void test_request(void) {
  cJSON *args = parse("{\"path\":\"/etc/passwd\"}");
  cJSON *r = aip_elicit_request("aip-elicit-1", "2025-11-25", "read_file", "bot", args);
  CHECK(r != NULL);
  CHECK_STR(str_at(r, "jsonrpc", NULL), "2.0");
  CHECK_STR(str_at(r, "id", NULL), "aip-elicit-1");
  CHECK_STR(str_at(r, "method", NULL), "elicitation/create");
  CHECK_STR(str_at(r, "params", "mode"), "form");
  const char *msg = str_at(r, "params", "message");
  CHECK(msg && strstr(msg, "\"read_file\"") && strstr(msg, "AIP policy \"bot\"") &&
        strstr(msg, "{\"path\":\"/etc/passwd\"}"));
  const cJSON *schema = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "params"),
                                                         "requestedSchema");
  CHECK_STR(str_at(schema, "type", NULL), "object");
  const cJSON *approve = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(schema, "properties"), "approve");
  CHECK_STR(str_at(approve, "type", NULL), "boolean");
  const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
  CHECK(cJSON_GetArraySize(req) == 1 && strcmp(cJSON_GetArrayItem(req, 0)->valuestring, "approve") == 0);
  cJSON_Delete(r);
  /* 2025-06-18 has no mode field; no arguments shows {} */
  r = aip_elicit_request("x", "2025-06-18", "t", "p", NULL);
  CHECK(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "params"), "mode") == NULL);
  CHECK(strstr(str_at(r, "params", "message"), "Arguments:\n{}\n") != NULL);
  cJSON_Delete(r);
  cJSON_Delete(args);
}

/* Long arguments are cut at 4000 bytes, never inside a UTF-8 sequence, and marked " ...". */
static void test_long_args(void) {
  size_t n = 6000;
  char *v = malloc(n + 1);
  for (size_t i = 0; i + 1 < n; i += 2) memcpy(v + i, "\xc3\xa9", 2); /* é */
  v[n] = 0;
  for (int shift = 0; shift < 2; shift++) {
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, shift ? "kk" : "k", v);
    cJSON *r = aip_elicit_request("x", "2025-11-25", "t", "p", args);
    const char *msg = str_at(r, "params", "message");
    const char *cut = msg ? strstr(msg, " ...\n\nApprove") : NULL;
    CHECK(cut != NULL);
    const char *start = msg ? strstr(msg, "Arguments:\n") + 11 : NULL;
    CHECK(start && cut && cut - start <= 4000 && cut - start >= 3998);
    /* the byte before the cut ends a character: it is the second byte of é */
    CHECK(cut && (unsigned char)cut[-1] == 0xa9);
    cJSON_Delete(r);
    cJSON_Delete(args);
  }
  free(v);
}

/* Issue 11: what the user reads is display-safe (aip_display_string): a bidi control or an
 * invisible character in the tool name or the arguments is shown as <U+XXXX>, padding collapsed. */
static void test_display_safe(void) {
  cJSON *args = parse("{\"cmd\":\"rm x\u202etxt.exe\",\"pad\":\"a                    b\"}");
  cJSON *r = aip_elicit_request("x", "2025-11-25", "wri\xe2\x80\x8bte", "p", args);
  const char *msg = str_at(r, "params", "message");
  CHECK(msg && strstr(msg, "rm x<U+202E>txt.exe") && strstr(msg, "a<U+0020 x20>b") &&
        strstr(msg, "\"wri<U+200B>te\""));
  CHECK(msg && !strstr(msg, "\xe2\x80\xae") && !strstr(msg, "\xe2\x80\x8b"));
  cJSON_Delete(r);
  cJSON_Delete(args);
}

static void test_cancelled(void) {
  cJSON *n = aip_elicit_cancelled("aip-elicit-9", "approval timed out");
  CHECK_STR(str_at(n, "method", NULL), "notifications/cancelled");
  CHECK_STR(str_at(n, "params", "requestId"), "aip-elicit-9");
  CHECK_STR(str_at(n, "params", "reason"), "approval timed out");
  CHECK(cJSON_GetObjectItemCaseSensitive(n, "id") == NULL);
  cJSON_Delete(n);
}

static void test_answers(void) {
  static const struct {
    const char *msg;
    int want;
    const char *why;
  } cases[] = {
      {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"action\":\"accept\",\"content\":{\"approve\":true}}}", 1, NULL},
      {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"action\":\"accept\",\"content\":{\"approve\":false}}}", 0, "did not approve"},
      {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"action\":\"accept\",\"content\":{\"approve\":\"true\"}}}", 0, "did not approve"},
      {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"action\":\"accept\"}}", 0, "did not approve"},
      {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"action\":\"decline\"}}", 0, "declined"},
      {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"action\":\"cancel\"}}", 0, "dismissed"},
      {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"action\":\"ACCEPT\",\"content\":{\"approve\":true}}}", 0, "unknown approval action"},
      {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{}}", 0, "no action"},
      {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"error\":{\"code\":-32602,\"message\":\"x\"}}", 0, "with an error"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    cJSON *root = parse(cases[i].msg);
    aip_rpc_msg m;
    CHECK(root && aip_rpc_classify(root, &m) != AIP_RPC_INVALID);
    const char *why = NULL;
    int got = aip_elicit_approved(&m, &why);
    if (got != cases[i].want) fprintf(stderr, "answer %s\n", cases[i].msg);
    CHECK_INT(got, cases[i].want);
    if (cases[i].why) CHECK(why && strstr(why, cases[i].why));
    cJSON_Delete(root);
  }
}

int main(void) {
  test_capable();
  test_versions();
  test_request();
  test_long_args();
  test_display_safe();
  test_cancelled();
  test_answers();
  TEST_MAIN_END();
}
