/* test_engine_jsonrpc.c -- JSON-RPC classification and the exact bytes of error responses
 * (reference/aip.md section 4 and appendix A). */
#include <stdlib.h>

#include "engine/engine.h"
#include "test.h"

static aip_rpc_kind classify(const char *json, const char **why) {
  cJSON *root = NULL;
  aip_rpc_msg m;
  aip_rpc_kind k;

  if (aip_json_parse(json, strlen(json), &root) != AIP_JSON_OK) {
    fprintf(stderr, "unparsable test input: %s\n", json);
    return (aip_rpc_kind)-1;
  }
  k = aip_rpc_classify(root, &m);
  CHECK(m.kind == k && m.root == root);
  CHECK((k == AIP_RPC_INVALID) == (m.invalid_reason != NULL));
  if (why)
    *why = m.invalid_reason;
  cJSON_Delete(root);
  return k;
}

static void test_kinds(void) {
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", NULL),
            AIP_RPC_REQUEST);
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"x\",\"params\":{}}", NULL),
            AIP_RPC_REQUEST);
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"x\",\"params\":[1]}", NULL),
            AIP_RPC_REQUEST);
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL),
            AIP_RPC_NOTIFICATION);
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}", NULL), AIP_RPC_RESPONSE);
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":null}", NULL), AIP_RPC_RESPONSE);
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":1,\"message\":\"m\"}}",
                     NULL),
            AIP_RPC_ERROR);
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":1,\"message\":\"m\"}}",
                     NULL),
            AIP_RPC_ERROR);
  /* unknown extra members are fine */
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"extra\":1}", NULL),
            AIP_RPC_REQUEST);
}

static void test_fields(void) {
  cJSON *root = NULL;
  aip_rpc_msg m;
  const char *s =
      "{\"id\":3,\"params\":{\"name\":\"t\"},\"method\":\"tools/call\",\"jsonrpc\":\"2.0\"}";

  CHECK_INT(aip_json_parse(s, strlen(s), &root), AIP_JSON_OK);
  CHECK_INT(aip_rpc_classify(root, &m), AIP_RPC_REQUEST);
  CHECK_STR(m.method, "tools/call");
  CHECK(cJSON_IsNumber(m.id) && m.id->valuedouble == 3);
  CHECK(cJSON_IsObject(m.params));
  CHECK(m.result == NULL && m.error == NULL);
  cJSON_Delete(root);
}

static void test_invalid(void) {
  const char *why = NULL;
  static const char *const bad[] = {
      "[]",
      "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", /* batches */
      "\"x\"",
      "{\"id\":1,\"method\":\"ping\"}",                        /* no jsonrpc */
      "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}",
      "{\"jsonrpc\":2,\"id\":1,\"method\":\"ping\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":\"s\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":null}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"result\":1}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"error\":{}}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{}}",
      "{\"jsonrpc\":\"2.0\",\"result\":1}",
      "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":1}",
      "{\"jsonrpc\":\"2.0\",\"error\":{}}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"boom\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":1}",
      /* case variants another parser could take for the real member */
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"Method\":\"tools/call\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"METHOD\":\"tools/call\"}",
      "{\"jsonrpc\":\"2.0\",\"ID\":1,\"method\":\"ping\"}",
      "{\"JSONRPC\":\"2.0\",\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"Params\":{}}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"Error\":{}}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"param\\u017f\":{}}", /* long s */
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\","
      "\"Name\":\"b\"}}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\","
      "\"ARGUMENTS\":{}}}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"_META\":{}}}",
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
      "\"argument\\u017f\":{}}}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    aip_rpc_kind k = classify(bad[i], &why);
    if (k != AIP_RPC_INVALID)
      fprintf(stderr, "expected INVALID: %s\n", bad[i]);
    CHECK_INT(k, AIP_RPC_INVALID);
  }
  classify("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"Method\":\"tools/call\"}", &why);
  CHECK_STR(why, "member name differs from a JSON-RPC member only in case");
  /* names that merely contain a member name, and params arrays, are fine */
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"methods\":1,\"ids\":2}",
                     NULL),
            AIP_RPC_REQUEST);
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":[{\"Name\":1}]}",
                     NULL),
            AIP_RPC_REQUEST);
  CHECK_INT(classify("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"names\":1,"
                     "\"meta\":2}}",
                     NULL),
            AIP_RPC_REQUEST);
}

/* ---- error bytes ---- */

static char *render_error(const char *id_json, int code, const char *msg, const char *const *kv) {
  cJSON *id = NULL;
  aip_buf b;

  aip_buf_init(&b);
  if (id_json && aip_json_parse(id_json, strlen(id_json), &id) != AIP_JSON_OK)
    return NULL;
  if (aip_rpc_error(&b, id, code, msg, kv)) {
    aip_buf_free(&b);
    b.data = NULL;
  }
  cJSON_Delete(id);
  return b.data;
}

static char *render_decision(const char *id_json, const aip_decision *d, const char *name) {
  cJSON *id = NULL;
  aip_buf b;

  aip_buf_init(&b);
  if (id_json && aip_json_parse(id_json, strlen(id_json), &id) != AIP_JSON_OK)
    return NULL;
  if (aip_decision_error(&b, id, d, name)) {
    aip_buf_free(&b);
    b.data = NULL;
  }
  cJSON_Delete(id);
  return b.data;
}

#define CHECK_OWNED(expr, want) \
  do {                          \
    char *s_ = (expr);          \
    CHECK_STR(s_, want);        \
    free(s_);                   \
  } while (0)

static void test_rpc_error(void) {
  static const char *const kv[] = {"reason", "r", "tool", "x<y>&", NULL};

  CHECK_OWNED(render_error("1", -32600, "Invalid Request", NULL),
              "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32600,\"message\":\"Invalid "
              "Request\"}}");
  CHECK_OWNED(render_error(NULL, -32006, "Method not allowed", NULL),
              "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32006,\"message\":\"Method not "
              "allowed\"}}");
  CHECK_OWNED(render_error("null", -32700, "Parse error", NULL),
              "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"Parse "
              "error\"}}");
  CHECK_OWNED(render_error("\"a<b\"", 1, "m", kv),
              "{\"jsonrpc\":\"2.0\",\"id\":\"a\\u003cb\",\"error\":{\"code\":1,\"message\":\"m\","
              "\"data\":{\"reason\":\"r\",\"tool\":\"x\\u003cy\\u003e\\u0026\"}}}");
  /* ids print in full, never with an exponent */
  CHECK_OWNED(render_error("1000000000000000", 1, "m", NULL),
              "{\"jsonrpc\":\"2.0\",\"id\":1000000000000000,\"error\":{\"code\":1,\"message\":"
              "\"m\"}}");
  /* a parsed id comes back with its own bytes (the reference echoes raw JSON): 17+ digits
   * and exponents are not re-rounded through a double */
  CHECK_OWNED(render_error("12345678901234567890", 1, "m", NULL),
              "{\"jsonrpc\":\"2.0\",\"id\":12345678901234567890,\"error\":{\"code\":1,"
              "\"message\":\"m\"}}");
  CHECK_OWNED(render_error("12345678901234567", 1, "m", NULL),
              "{\"jsonrpc\":\"2.0\",\"id\":12345678901234567,\"error\":{\"code\":1,"
              "\"message\":\"m\"}}");
  CHECK_OWNED(render_error("1E2", 1, "m", NULL),
              "{\"jsonrpc\":\"2.0\",\"id\":1E2,\"error\":{\"code\":1,\"message\":\"m\"}}");
  /* an id the gateway made itself has no bytes: printed in full, never with an exponent */
  cJSON *made = cJSON_CreateNumber(1e15);
  aip_buf b;
  aip_buf_init(&b);
  CHECK_INT(aip_rpc_error(&b, made, 1, "m", NULL), 0);
  CHECK_STR(b.data, "{\"jsonrpc\":\"2.0\",\"id\":1000000000000000,\"error\":{\"code\":1,"
                    "\"message\":\"m\"}}");
  aip_buf_free(&b);
  cJSON_Delete(made);
  CHECK_OWNED(render_error("-2.5", 1, "m", NULL),
              "{\"jsonrpc\":\"2.0\",\"id\":-2.5,\"error\":{\"code\":1,\"message\":\"m\"}}");
}

static aip_decision dec(int code, const char *arg, const char *pattern) {
  aip_decision d;
  memset(&d, 0, sizeof(d));
  d.kind = AIP_DECISION_BLOCK;
  d.error_code = code;
  if (arg)
    snprintf(d.failed_arg, sizeof(d.failed_arg), "%s", arg);
  d.failed_pattern = pattern;
  return d;
}

static void test_aip_errors(void) {
  aip_decision d;

  d = dec(AIP_ERR_FORBIDDEN, NULL, NULL);
  CHECK_OWNED(render_decision("1", &d, "x<y>&"),
              "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32001,\"message\":\"Forbidden\","
              "\"data\":{\"reason\":\"Tool not in allowed_tools list\",\"tool\":"
              "\"x\\u003cy\\u003e\\u0026\"}}}");
  CHECK_OWNED(render_decision("123", &d, "any_tool"), /* err-050 */
              "{\"jsonrpc\":\"2.0\",\"id\":123,\"error\":{\"code\":-32001,\"message\":"
              "\"Forbidden\",\"data\":{\"reason\":\"Tool not in allowed_tools list\",\"tool\":"
              "\"any_tool\"}}}");
  CHECK_OWNED(render_decision("\"abc-123\"", &d, "blocked"), /* err-051 */
              "{\"jsonrpc\":\"2.0\",\"id\":\"abc-123\",\"error\":{\"code\":-32001,\"message\":"
              "\"Forbidden\",\"data\":{\"reason\":\"Tool not in allowed_tools list\",\"tool\":"
              "\"blocked\"}}}");
  d = dec(AIP_ERR_FORBIDDEN, "url", "^https://.*");
  CHECK_OWNED(render_decision("\"abc\"", &d, "fetch"),
              "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"error\":{\"code\":-32001,\"message\":"
              "\"Argument validation failed\",\"data\":{\"arg\":\"url\",\"pattern\":"
              "\"^https://.*\",\"reason\":\"Argument validation failed for url\",\"tool\":"
              "\"fetch\"}}}");
  d = dec(AIP_ERR_FORBIDDEN, "headers", ""); /* strict_args reject */
  CHECK_OWNED(render_decision("2", &d, "t"),
              "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32001,\"message\":"
              "\"Argument validation failed\",\"data\":{\"arg\":\"headers\",\"pattern\":\"\","
              "\"reason\":\"Argument validation failed for headers\",\"tool\":\"t\"}}}");
  d = dec(AIP_ERR_METHOD_NOT_ALLOWED, NULL, NULL);
  CHECK_OWNED(render_decision("4", &d, "resources/read"),
              "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32006,\"message\":\"Method not "
              "allowed\",\"data\":{\"method\":\"resources/read\",\"reason\":\"Method "
              "'resources/read' is not in allowed_methods. Add it to your policy to permit this "
              "method.\"}}}");
  CHECK_OWNED(render_decision(NULL, &d, "resources/read"), /* blocked notification: no id */
              "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32006,\"message\":\"Method not "
              "allowed\",\"data\":{\"method\":\"resources/read\",\"reason\":\"Method "
              "'resources/read' is not in allowed_methods. Add it to your policy to permit this "
              "method.\"}}}");
  d = dec(AIP_ERR_RATE_LIMITED, NULL, NULL);
  CHECK_OWNED(render_decision("2", &d, "t"),
              "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32002,\"message\":\"Rate limit "
              "exceeded\",\"data\":{\"reason\":\"Rate limit exceeded for t. Try again later.\","
              "\"tool\":\"t\"}}}");
  d = dec(AIP_ERR_USER_DENIED, NULL, NULL);
  CHECK_OWNED(render_decision("3", &d, "t"),
              "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32004,\"message\":\"User "
              "denied\",\"data\":{\"reason\":\"User explicitly denied the tool call via approval "
              "dialog\",\"tool\":\"t\"}}}");
  d = dec(AIP_ERR_APPROVAL_TIMEOUT, NULL, NULL);
  CHECK_OWNED(render_decision("3", &d, "t"),
              "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32005,\"message\":\"User "
              "approval timeout\",\"data\":{\"reason\":\"User did not respond to approval dialog "
              "within timeout\",\"tool\":\"t\"}}}");
  d = dec(AIP_ERR_PROTECTED_PATH, NULL, NULL);
  CHECK_OWNED(render_decision("5", &d, "read_file"),
              "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-32007,\"message\":\"Access "
              "denied: protected path\",\"data\":{\"reason\":\"The requested operation would "
              "access a protected path. This action has been blocked and logged for security "
              "review.\",\"tool\":\"read_file\"}}}");
  d = dec(AIP_ERR_SIGNATURE_INVALID, NULL, NULL);
  CHECK_OWNED(render_decision("8", &d, "p"),
              "{\"jsonrpc\":\"2.0\",\"id\":8,\"error\":{\"code\":-32010,\"message\":\"Policy "
              "signature invalid\",\"data\":{\"policy\":\"p\",\"reason\":\"Policy signature "
              "verification failed\"}}}");
  d = dec(0, NULL, NULL); /* nothing to render for a decision that proceeds */
  CHECK(render_decision("1", &d, "t") == NULL);
}

/* The tree form is the bytes form read back: printed, it gives the same bytes (the one builder
 * serves both; the tree printer does not HTML-escape, so the text here has nothing to escape),
 * and an id left out becomes null. */
static void test_rpc_error_msg(void) {
  static const char *const kv[] = {"reason", "r", NULL};
  cJSON *id = cJSON_CreateString("x");
  cJSON *m = aip_rpc_error_msg(id, -32601, "Method not found", kv);
  aip_buf b, want;
  aip_buf_init(&b);
  aip_buf_init(&want);
  CHECK(m != NULL);
  CHECK_INT(aip_json_print(&b, m), 0);
  CHECK_INT(aip_rpc_error(&want, id, -32601, "Method not found", kv), 0);
  CHECK_STR(b.data, want.data);
  cJSON_Delete(m);
  b.len = 0;
  m = aip_rpc_error_msg(NULL, -32603, "Internal error", NULL);
  CHECK(m != NULL);
  CHECK_INT(aip_json_print(&b, m), 0);
  CHECK_STR(b.data, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,"
                    "\"message\":\"Internal error\"}}");
  cJSON_Delete(m);
  /* a refusal of the gateway's own (not an AIP code) renders its message, without data */
  aip_decision d = dec(AIP_RPC_INTERNAL_ERROR, NULL, NULL);
  d.error_message = "Request withheld: DLP could not scan it";
  b.len = 0;
  CHECK_INT(aip_decision_error(&b, id, &d, "t"), 0);
  CHECK_STR(b.data, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":-32603,"
                    "\"message\":\"Request withheld: DLP could not scan it\"}}");
  d = dec(0, NULL, NULL);
  CHECK(aip_decision_error(&b, id, &d, "t") != 0); /* nothing to refuse */
  aip_buf_free(&b);
  aip_buf_free(&want);
  cJSON_Delete(id);
}

int main(void) {
  test_rpc_error_msg();
  test_kinds();
  test_fields();
  test_invalid();
  test_rpc_error();
  test_aip_errors();
  TEST_MAIN_END();
}
