/* test_engine_policy.c -- policy compile, method checks and tool checks (reference/aip.md
 * sections 2.2-3.5; cases named after the conformance vectors they mirror). Policies are built
 * by hand so these tests do not depend on the YAML loader. */
#include <errno.h>
#include <stdlib.h>

#include "engine/engine.h"
#include "test.h"

static aip_strlist mklist(const char **items, size_t n) {
  aip_strlist l = {(char **)items, NULL, n};
  return l;
}
#define LIST(...)                         \
  mklist((const char *[]){__VA_ARGS__},   \
         sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *))

static aip_policy_doc doc0(void) {
  aip_policy_doc d;
  memset(&d, 0, sizeof(d));
  d.path = "test.yaml";
  d.api_version = "aip.io/v1alpha1";
  d.kind = "AgentPolicy";
  d.name = "test-policy";
  return d;
}

static aip_tool_rule rule(const char *tool, aip_rule_action action) {
  aip_tool_rule r;
  memset(&r, 0, sizeof(r));
  r.tool = (char *)tool;
  r.action = action;
  r.strict_args = -1;
  return r;
}

static aip_policy *compile(const aip_policy_doc *d) {
  aip_policy *p = NULL;
  aip_error err = {{0}};
  int rc = aip_policy_compile(d, &p, &err);
  if (rc)
    fprintf(stderr, "compile failed: %s\n", err.msg);
  CHECK_INT(rc, 0);
  return p;
}

static aip_decision tool(const aip_policy *p, const char *name, const char *args_json) {
  aip_decision d;
  cJSON *args = NULL;
  if (args_json && aip_json_parse(args_json, strlen(args_json), &args) != AIP_JSON_OK)
    fprintf(stderr, "bad args json: %s\n", args_json);
  aip_policy_check_tool(p, name, strlen(name), args, 0, NULL, &d);
  cJSON_Delete(args);
  return d;
}

static aip_decision method(const aip_policy *p, const char *m) {
  aip_decision d;
  aip_policy_check_method(p, m, strlen(m), &d);
  return d;
}

#define CHECK_DEC(d, k, viol, code)      \
  do {                                   \
    aip_decision d_ = (d);               \
    CHECK_INT(d_.kind, k);               \
    CHECK_INT(d_.violation, viol);       \
    CHECK_INT(d_.error_code, code);      \
  } while (0)

#define ALLOW(d) CHECK_DEC(d, AIP_DECISION_ALLOW, 0, 0)
#define BLOCK(d) CHECK_DEC(d, AIP_DECISION_BLOCK, 1, AIP_ERR_FORBIDDEN)
#define MBLOCK(d) CHECK_DEC(d, AIP_DECISION_BLOCK, 1, AIP_ERR_METHOD_NOT_ALLOWED)

static void test_methods(void) {
  aip_policy_doc d = doc0();
  aip_policy *p = compile(&d);
  aip_decision r;

  /* method-001..005 and the default list */
  ALLOW(method(p, "tools/call"));
  ALLOW(method(p, "tools/list"));
  ALLOW(method(p, "initialize"));
  ALLOW(method(p, "notifications/initialized"));
  ALLOW(method(p, "ping"));
  ALLOW(method(p, "notifications/cancelled"));         /* our addition */
  ALLOW(method(p, "notifications/roots/list_changed")); /* our addition */
  ALLOW(method(p, "cancelled"));                       /* kept from the reference */
  MBLOCK(method(p, "resources/read"));
  MBLOCK(method(p, "prompts/get"));
  MBLOCK(method(p, "logging/setLevel"));
  MBLOCK(method(p, ""));
  /* method-030/031 and Unicode variants */
  ALLOW(method(p, "TOOLS/CALL"));
  ALLOW(method(p, "Tools/Call"));
  ALLOW(method(p, "ｔｏｏｌｓ／ｃａｌｌ"));
  MBLOCK(method(p, "ＲＥＳＯＵＲＣＥＳ／ｒｅａｄ"));
  r = method(p, "Resources/Read");
  CHECK_STR(r.reason, "method \"Resources/Read\" not in allowed_methods");
  CHECK_STR(r.error_message, "Method not allowed");
  CHECK_STR(method(p, "ping").reason, "method in allowed_methods");
  /* not NUL-terminated */
  aip_policy_check_method(p, "pingXYZ", 4, &r);
  ALLOW(r);
  aip_policy_free(p);

  /* method-010: an explicit list replaces the defaults */
  d.allowed_methods = LIST("resources/read", "Tools/Call");
  d.allowed_methods_set = 1;
  p = compile(&d);
  ALLOW(method(p, "resources/read"));
  ALLOW(method(p, "tools/call"));
  MBLOCK(method(p, "initialize"));
  aip_policy_free(p);

  /* method-011/020/021: wildcard, denied wins */
  d.allowed_methods = LIST("*");
  d.denied_methods = LIST("dangerous/method", "Logging/SetLevel");
  p = compile(&d);
  r = method(p, "any/method");
  ALLOW(r);
  CHECK_STR(r.reason, "wildcard '*' in allowed_methods permits all methods");
  r = method(p, "dangerous/method");
  MBLOCK(r);
  CHECK_STR(r.reason, "method explicitly denied by denied_methods");
  MBLOCK(method(p, "logging/setlevel"));
  MBLOCK(method(p, "ｌｏｇｇｉｎｇ／ｓｅｔＬｅｖｅｌ"));
  aip_policy_free(p);

  /* err-030: denied with the default list; monitor mode does not soften method checks */
  d = doc0();
  d.denied_methods = LIST("dangerous/method", "tools/list");
  d.mode = AIP_MODE_MONITOR;
  p = compile(&d);
  MBLOCK(method(p, "dangerous/method"));
  MBLOCK(method(p, "tools/list"));
  ALLOW(method(p, "tools/call"));
  aip_policy_free(p);

  /* a written but empty allowed_methods denies everything (Go would use the defaults) */
  d = doc0();
  d.allowed_methods_set = 1;
  p = compile(&d);
  MBLOCK(method(p, "initialize"));
  aip_policy_free(p);

  /* no policy: the default list */
  r = method(NULL, "initialize");
  ALLOW(r);
  CHECK_STR(r.reason, "method in default allowlist (no policy loaded)");
  MBLOCK(method(NULL, "resources/read"));
}

static void test_tools_basic(void) {
  aip_policy_doc d = doc0();
  aip_tool_rule rules[3];
  aip_policy *p;
  aip_decision r;

  /* auth-001/002, norm-* */
  d.allowed_tools = LIST("read_file", "list_directory", "delete_file", "file_read", "tool2");
  p = compile(&d);
  r = tool(p, "read_file", "{\"path\":\"/tmp/test.txt\"}");
  ALLOW(r);
  CHECK_STR(r.reason, "tool allowed, no argument constraints");
  CHECK(r.error_message == NULL && r.failed_arg[0] == '\0' && r.failed_pattern == NULL);
  r = tool(p, "delete_files", "{}");
  BLOCK(r);
  CHECK_STR(r.reason, "tool not in allowed_tools list");
  CHECK_STR(r.error_message, "Forbidden");
  ALLOW(tool(p, "READ_FILE", "{}"));
  ALLOW(tool(p, "Delete_File", "{}"));
  ALLOW(tool(p, "ｄｅｌｅｔｅ＿ｆｉｌｅ", "{}"));
  ALLOW(tool(p, "ﬁle_read", "{}"));
  ALLOW(tool(p, "tool²", "{}"));
  ALLOW(tool(p, "  read_file  ", "{}"));
  ALLOW(tool(p, "\u2003read_file\u2003", "{}"));
  ALLOW(tool(p, "read_file", NULL));
  BLOCK(tool(p, "dеlеtе_filе", "{}")); /* norm-060, Cyrillic */
  BLOCK(tool(p, "read\xff", "{}"));    /* not UTF-8 */
  aip_policy_free(p);

  /* auth-003: empty allowed_tools blocks everything */
  d = doc0();
  p = compile(&d);
  BLOCK(tool(p, "any_tool", "{}"));
  aip_policy_free(p);

  /* auth-010/011/020/030 */
  d = doc0();
  d.allowed_tools = LIST("safe_tool", "dangerous_tool");
  rules[0] = rule("dangerous_tool", AIP_ACTION_BLOCK);
  rules[1] = rule("special_tool", AIP_ACTION_ALLOW);
  rules[2] = rule("sensitive_tool", AIP_ACTION_ASK);
  d.rules = rules;
  d.rules_n = 3;
  p = compile(&d);
  r = tool(p, "dangerous_tool", "{}");
  BLOCK(r);
  CHECK_STR(r.reason, "tool has action=block in tool_rules");
  ALLOW(tool(p, "special_tool", "{}")); /* a rule adds its tool to the allowed set */
  ALLOW(tool(p, "safe_tool", "{}"));
  r = tool(p, "sensitive_tool", "{\"a\":1}");
  CHECK_DEC(r, AIP_DECISION_ASK, 0, 0);
  CHECK_STR(r.reason, "tool requires user approval (action=ask)");
  BLOCK(tool(p, "ｅｘｅｃ", "{}"));
  BLOCK(tool(p, "Dangerous\u200B_Tool", "{}")); /* norm-030 */
  aip_policy_free(p);

  /* auth-050: no policy fails closed */
  r = tool(NULL, "any_tool", "{}");
  BLOCK(r);
  CHECK_STR(r.reason, "no policy loaded");
}

static void test_denied_and_monitor(void) {
  aip_policy_doc d = doc0();
  aip_tool_rule rules[2];
  aip_policy *p;
  aip_decision r;

  d.allowed_tools = LIST("safe_tool", "github_push");
  d.denied_tools = LIST("GitHub_Push");
  rules[0] = rule("github_push", AIP_ACTION_ALLOW);
  rules[1] = rule("dangerous_tool", AIP_ACTION_BLOCK);
  d.rules = rules;
  d.rules_n = 2;
  p = compile(&d);
  r = tool(p, "github_push", "{}");
  BLOCK(r); /* deny wins over allow and over an allow rule */
  CHECK_STR(r.reason, "tool in denied_tools list");
  aip_policy_free(p);

  /* auth-040: monitor lets violations through, marked */
  d.mode = AIP_MODE_MONITOR;
  p = compile(&d);
  r = tool(p, "blocked_tool", "{}");
  CHECK_DEC(r, AIP_DECISION_ALLOW_MONITOR, 1, 0);
  CHECK_STR(r.reason, "tool not in allowed_tools list (monitor mode: allowed for dry run)");
  CHECK_DEC(tool(p, "github_push", "{}"), AIP_DECISION_ALLOW_MONITOR, 1, 0);
  ALLOW(tool(p, "safe_tool", "{}"));
  /* action=block is not softened by monitor mode (as in Go) */
  BLOCK(tool(p, "dangerous_tool", "{}"));
  aip_policy_free(p);
}

static void test_allow_args(void) {
  aip_policy_doc d = doc0();
  aip_tool_rule rules[4];
  aip_arg_rule fetch[] = {{"url", "^https://github\\.com/.*", {7, 9}}};
  aip_arg_rule http[] = {{"url", "^https://api\\.github\\.com/.*", {0, 0}},
                         {"method", "^(GET|POST)$", {0, 0}}};
  aip_arg_rule types[] = {{"port", "^[0-9]+$", {0, 0}},
                          {"enabled", "^(true|false)$", {0, 0}},
                          {"tags", "^\\[.*\\]$", {0, 0}},
                          {"ratio", "^1\\.5$", {0, 0}},
                          {"obj", "^\\{\"a\":\"\\\\u003cb\\\\u003e\",\"z\":1\\}$", {0, 0}},
                          {"none", "^$", {0, 0}}};
  aip_arg_rule q[] = {{"query", "^SELECT\\s+.*", {0, 0}}};
  aip_policy *p;
  aip_decision r;

  rules[0] = rule("fetch_url", AIP_ACTION_ALLOW);
  rules[0].allow_args = fetch, rules[0].allow_args_n = 1;
  rules[1] = rule("http_request", AIP_ACTION_ALLOW);
  rules[1].allow_args = http, rules[1].allow_args_n = 2;
  rules[2] = rule("typed", AIP_ACTION_ALLOW);
  rules[2].allow_args = types, rules[2].allow_args_n = 6;
  rules[3] = rule("postgres_query", AIP_ACTION_ALLOW);
  rules[3].allow_args = q, rules[3].allow_args_n = 1;
  d.rules = rules;
  d.rules_n = 4;
  p = compile(&d);

  r = tool(p, "fetch_url", "{\"url\":\"https://github.com/user/repo\"}"); /* args-001 */
  ALLOW(r);
  CHECK_STR(r.reason, "tool and arguments permitted");
  r = tool(p, "fetch_url", "{\"url\":\"https://evil.com/steal\"}"); /* args-002 */
  BLOCK(r);
  CHECK_STR(r.reason, "argument failed regex validation");
  CHECK_STR(r.failed_arg, "url");
  CHECK_STR(r.failed_pattern, "^https://github\\.com/.*");
  CHECK_STR(r.error_message, "Argument validation failed");
  r = tool(p, "fetch_url", "{}"); /* args-010 */
  BLOCK(r);
  CHECK_STR(r.reason, "required argument missing");
  CHECK_STR(r.failed_arg, "url");
  BLOCK(tool(p, "fetch_url", NULL));
  BLOCK(tool(p, "fetch_url", "[\"https://github.com/x\"]")); /* not an object: no arguments */
  BLOCK(tool(p, "fetch_url", "{\"URL\":\"https://github.com/x\"}")); /* names are exact */
  /* unanchored search, as RE2's MatchString */
  ALLOW(tool(p, "fetch_url", "{\"url\":\"https://github.com/\"}"));
  BLOCK(tool(p, "fetch_url", "{\"url\":\"xhttps://github.com/\"}"));

  ALLOW(tool(p, "http_request", "{\"url\":\"https://api.github.com/repos\",\"method\":\"GET\"}"));
  r = tool(p, "http_request", "{\"url\":\"https://api.github.com/repos\",\"method\":\"DELETE\"}");
  BLOCK(r); /* args-021 */
  CHECK_STR(r.failed_arg, "method");
  /* RE2's $ is end of text only: no match before a trailing newline */
  BLOCK(tool(p, "http_request", "{\"url\":\"https://api.github.com/\",\"method\":\"GET\\n\"}"));

  /* args-040..042 and the other stringifications */
  ALLOW(tool(p, "typed", "{\"port\":8080,\"enabled\":true,\"tags\":[\"tag1\",\"tag2\"],"
                         "\"ratio\":1.5,\"obj\":{\"z\":1,\"a\":\"<b>\"},\"none\":null}"));
  r = tool(p, "typed", "{\"port\":80.5,\"enabled\":true,\"tags\":[],\"ratio\":1.5,"
                       "\"obj\":{\"z\":1,\"a\":\"<b>\"},\"none\":null}");
  BLOCK(r);
  CHECK_STR(r.failed_arg, "port");
  r = tool(p, "typed", "{\"port\":1,\"enabled\":\"yes\",\"tags\":[],\"ratio\":1.5,"
                       "\"obj\":{\"a\":\"<b>\",\"z\":1},\"none\":\"\"}");
  BLOCK(r);
  CHECK_STR(r.failed_arg, "enabled");
  r = tool(p, "typed", "{\"port\":1,\"enabled\":false,\"tags\":[],\"ratio\":1.5,"
                       "\"obj\":{\"a\":\"<b>\",\"z\":1},\"none\":\"x\"}");
  BLOCK(r);
  CHECK_STR(r.failed_arg, "none");

  /* args-050..052 */
  ALLOW(tool(p, "postgres_query", "{\"query\":\"SELECT * FROM users WHERE id = 1\"}"));
  BLOCK(tool(p, "postgres_query", "{\"query\":\"DELETE FROM users WHERE 1=1\"}"));
  ALLOW(tool(p, "postgres_query", "{\"query\":\"SELECT 1; DROP TABLE users; --\"}"));
  /* `.` does not cross a newline; \s does */
  ALLOW(tool(p, "postgres_query", "{\"query\":\"SELECT\\n1\"}"));
  aip_policy_free(p);
}

static void test_strict_args(void) {
  aip_policy_doc d = doc0();
  aip_tool_rule rules[5];
  aip_arg_rule url[] = {{"url", "^https://.*", {0, 0}}};
  aip_arg_rule ep[] = {{"endpoint", "^/api/.*", {0, 0}}};
  aip_policy *p;
  aip_decision r;

  rules[0] = rule("strict_tool", AIP_ACTION_ALLOW);
  rules[0].allow_args = url, rules[0].allow_args_n = 1, rules[0].strict_args = 1;
  rules[1] = rule("lenient_tool", AIP_ACTION_ALLOW);
  rules[1].allow_args = url, rules[1].allow_args_n = 1, rules[1].strict_args = 0;
  rules[2] = rule("api_call", AIP_ACTION_ALLOW);
  rules[2].allow_args = ep, rules[2].allow_args_n = 1;
  rules[3] = rule("bare_strict", AIP_ACTION_ALLOW);
  rules[3].strict_args = 1;
  rules[4] = rule("ask_tool", AIP_ACTION_ASK);
  rules[4].allow_args = url, rules[4].allow_args_n = 1;
  d.rules = rules;
  d.rules_n = 5;
  p = compile(&d);

  r = tool(p, "strict_tool",
           "{\"url\":\"https://example.com\",\"headers\":{\"Authorization\":\"Bearer s\"}}");
  BLOCK(r); /* args-030 */
  CHECK_STR(r.reason, "undeclared argument \"headers\" rejected (strict_args enabled)");
  CHECK_STR(r.failed_arg, "headers");
  CHECK_STR(r.failed_pattern, "");
  ALLOW(tool(p, "strict_tool", "{\"url\":\"https://example.com\"}"));
  ALLOW(tool(p, "lenient_tool", "{\"url\":\"https://example.com\",\"headers\":{}}")); /* 031 */
  ALLOW(tool(p, "api_call", "{\"endpoint\":\"/api/users\",\"extra_param\":\"x\"}"));
  /* strict_args on a rule without allow_args is enforced (the reference ignores it) */
  r = tool(p, "bare_strict", "{\"x\":1}");
  BLOCK(r);
  CHECK_STR(r.failed_arg, "x");
  ALLOW(tool(p, "bare_strict", "{}"));
  ALLOW(tool(p, "bare_strict", NULL));
  /* issue 11: arguments that are not an object are refused whatever the rule (an array's
   * members have no names: the strict walk used to read a NULL name) */
  static const char *const not_objects[] = {"[\"x\"]", "[]", "\"x\"", "1", "null", "true"};
  for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++) {
    const char *tools[] = {"bare_strict", "strict_tool", "lenient_tool", "ask_tool"};
    for (size_t t = 0; t < 4; t++) {
      r = tool(p, tools[t], not_objects[i]);
      CHECK_INT(r.kind, AIP_DECISION_BLOCK);
      CHECK_INT(r.error_code, AIP_ERR_FORBIDDEN);
      CHECK_STR(r.reason, "tools/call arguments are not an object");
    }
  }
  /* ask rules validate their arguments before asking */
  CHECK_DEC(tool(p, "ask_tool", "{\"url\":\"https://x\"}"), AIP_DECISION_ASK, 0, 0);
  r = tool(p, "ask_tool", "{\"url\":\"http://x\"}");
  BLOCK(r);
  CHECK_STR(r.failed_arg, "url");
  aip_policy_free(p);

  /* args-032: strict_args_default, and a rule opting out */
  d.strict_args_default = 1;
  p = compile(&d);
  r = tool(p, "api_call", "{\"endpoint\":\"/api/users\",\"extra_param\":\"malicious\"}");
  BLOCK(r);
  CHECK_STR(r.failed_arg, "extra_param");
  ALLOW(tool(p, "lenient_tool", "{\"url\":\"https://example.com\",\"headers\":{}}"));
  r = tool(p, "ask_tool", "{\"url\":\"https://x\",\"more\":1}");
  BLOCK(r);
  CHECK_STR(r.failed_arg, "more");
  aip_policy_free(p);

  /* monitor mode: argument failures are let through, ask-rule failures too (as Go) */
  d.mode = AIP_MODE_MONITOR;
  p = compile(&d);
  r = tool(p, "api_call", "{\"endpoint\":\"/nope\"}");
  CHECK_DEC(r, AIP_DECISION_ALLOW_MONITOR, 1, 0);
  CHECK_STR(r.failed_arg, "endpoint");
  CHECK_STR(r.reason, "argument failed regex validation (monitor mode: allowed for dry run)");
  CHECK_DEC(tool(p, "ask_tool", "{\"url\":\"http://x\"}"), AIP_DECISION_ALLOW_MONITOR, 1, 0);
  CHECK_DEC(tool(p, "ask_tool", "{\"url\":\"https://x\"}"), AIP_DECISION_ASK, 0, 0);
  aip_policy_free(p);
}

static void test_rules_last_wins_and_visibility(void) {
  aip_policy_doc d = doc0();
  aip_tool_rule rules[4];
  aip_policy *p;

  d.allowed_tools = LIST("listed", "denied_too");
  d.denied_tools = LIST("denied_too");
  rules[0] = rule("flip", AIP_ACTION_BLOCK);
  rules[1] = rule("FLIP", AIP_ACTION_ASK); /* same normalized name: the last rule wins */
  rules[2] = rule("blocked", AIP_ACTION_BLOCK);
  rules[3] = rule("ruled", AIP_ACTION_ALLOW);
  d.rules = rules;
  d.rules_n = 4;
  p = compile(&d);
  CHECK_DEC(tool(p, "flip", "{}"), AIP_DECISION_ASK, 0, 0);
  CHECK_INT(aip_policy_tool_visible(p, "listed", 6), 1);
  CHECK_INT(aip_policy_tool_visible(p, "LISTED", 6), 1);
  CHECK_INT(aip_policy_tool_visible(p, "ruled", 5), 1);
  CHECK_INT(aip_policy_tool_visible(p, "flip", 4), 1);
  CHECK_INT(aip_policy_tool_visible(p, "blocked", 7), 0);
  CHECK_INT(aip_policy_tool_visible(p, "denied_too", 10), 0);
  CHECK_INT(aip_policy_tool_visible(p, "other", 5), 0);
  CHECK_INT(aip_policy_tool_visible(NULL, "listed", 6), 0);
  CHECK(aip_policy_doc_of(p) == &d);
  aip_policy_free(p);
  d.mode = AIP_MODE_MONITOR;
  p = compile(&d);
  CHECK_INT(aip_policy_tool_visible(p, "other", 5), 1);
  aip_policy_free(p);
  aip_policy_free(NULL);
}

static int compile_error(const char *pattern, char *msg, size_t cap) {
  aip_policy_doc d = doc0();
  aip_arg_rule a[] = {{"x", (char *)pattern, {12, 7}}};
  aip_tool_rule r = rule("t", AIP_ACTION_ALLOW);
  aip_policy *p = NULL;
  aip_error err = {{0}};
  int rc;

  r.allow_args = a, r.allow_args_n = 1;
  d.rules = &r, d.rules_n = 1;
  rc = aip_policy_compile(&d, &p, &err);
  snprintf(msg, cap, "%s", err.msg);
  if (!rc)
    aip_policy_free(p);
  CHECK(rc ? p == NULL : p != NULL);
  return rc;
}

static void test_compile_errors(void) {
  char msg[AIP_ERROR_MAX], long_re[1100];

  CHECK_INT(compile_error("(a+)+$", msg, sizeof(msg)), -EINVAL);
  CHECK_STR(msg, "test.yaml:12:7: potentially dangerous regex for tool \"t\" arg \"x\": regex "
                 "contains potentially dangerous nested quantifiers: (a+)+$");
  CHECK_INT(compile_error("^([a-z]+)*$", msg, sizeof(msg)), -EINVAL);
  CHECK_INT(compile_error("(ab)*?c", msg, sizeof(msg)), -EINVAL); /* as the reference */
  CHECK_INT(compile_error("(x)+ +", msg, sizeof(msg)), -EINVAL); /* \s between */
  CHECK_INT(compile_error("(x) + +", msg, sizeof(msg)), 0);
  CHECK_INT(compile_error("(a|b)+c", msg, sizeof(msg)), 0);
  CHECK_INT(compile_error("(a+)b", msg, sizeof(msg)), 0);
  memset(long_re, 'a', 1001);
  long_re[1001] = '\0';
  CHECK_INT(compile_error(long_re, msg, sizeof(msg)), -EINVAL);
  CHECK(strstr(msg, "regex pattern exceeds maximum length") != NULL);
  long_re[1000] = '\0';
  CHECK_INT(compile_error(long_re, msg, sizeof(msg)), 0);
  CHECK_INT(compile_error("(unclosed", msg, sizeof(msg)), -EINVAL);
  CHECK(strncmp(msg, "test.yaml:12:7: invalid regex for tool \"t\" arg \"x\": \"(unclosed\": ",
                63) == 0);
  CHECK_INT(compile_error("(a)\\1", msg, sizeof(msg)), -EINVAL); /* RE2 rejects these too */
  CHECK_INT(compile_error("(?=a)b", msg, sizeof(msg)), -EINVAL);
  CHECK_INT(compile_error("", msg, sizeof(msg)), 0);
  CHECK_INT(compile_error("^$", msg, sizeof(msg)), 0);
  CHECK_INT(compile_error("[$]x$", msg, sizeof(msg)), 0);
  CHECK_INT(compile_error("(?i)^[[:alpha:]]+\\$$", msg, sizeof(msg)), 0);
}

static void test_regex_dialect(void) {
  aip_policy_doc d = doc0();
  aip_arg_rule a[] = {{"dollar", "^a[$]b\\$c$", {0, 0}},
                      {"ci", "(?i)^abc$", {0, 0}},
                      {"ml", "(?m)^x$", {0, 0}},
                      {"empty", "", {0, 0}},
                      {"uni", "^.{2}$", {0, 0}},
                      {"named", "^(?P<name>[a-z]+)$", {0, 0}}};
  aip_tool_rule r = rule("t", AIP_ACTION_ALLOW);
  aip_policy *p;
  cJSON *args;
  aip_decision dec;

  r.allow_args = a, r.allow_args_n = 6;
  d.rules = &r, d.rules_n = 1;
  p = compile(&d);
  ALLOW(tool(p, "t", "{\"dollar\":\"a$b$c\",\"ci\":\"ABC\",\"ml\":\"y\\nx\\nz\",\"empty\":\"\","
                     "\"uni\":\"\xc3\xa9\xc3\xa9\",\"named\":\"abc\"}"));
  /* (?P<name>...) is not a multi-line flag group: its $ still means end of text */
  dec = tool(p, "t", "{\"dollar\":\"a$b$c\",\"ci\":\"ABC\",\"ml\":\"x\",\"empty\":\"\","
                     "\"uni\":\"ab\",\"named\":\"abc\\n\"}");
  BLOCK(dec);
  CHECK_STR(dec.failed_arg, "named");
  BLOCK(tool(p, "t", "{\"dollar\":\"a$b$c\\n\",\"ci\":\"ABC\",\"ml\":\"x\",\"empty\":1,"
                     "\"uni\":\"ab\"}"));
  BLOCK(tool(p, "t", "{\"dollar\":\"a$b$c\",\"ci\":\"ABC\",\"ml\":\"x\",\"empty\":1,"
                     "\"uni\":\"abc\"}"));
  /* strings that are not UTF-8 (only possible outside aip_json_parse) never match */
  args = cJSON_Parse("{\"dollar\":\"a$b$c\",\"ci\":\"ABC\",\"ml\":\"x\",\"empty\":1,"
                     "\"named\":\"x\"}");
  cJSON_AddItemToObject(args, "uni", cJSON_CreateString("\xff\xfe"));
  aip_policy_check_tool(p, "t", 1, args, 0, NULL, &dec);
  BLOCK(dec);
  CHECK_STR(dec.failed_arg, "uni");
  cJSON_Delete(args);
  aip_policy_free(p);
}

static void test_names(void) {
  CHECK_STR(aip_decision_name(AIP_DECISION_ALLOW), "ALLOW");
  CHECK_STR(aip_decision_name(AIP_DECISION_ALLOW_MONITOR), "ALLOW_MONITOR");
  CHECK_STR(aip_decision_name(AIP_DECISION_BLOCK), "BLOCK");
  CHECK_STR(aip_decision_name(AIP_DECISION_ASK), "ASK");
  CHECK_STR(aip_decision_name(AIP_DECISION_RATE_LIMITED), "RATE_LIMITED");
  CHECK_STR(aip_decision_name(AIP_DECISION_PROTECTED_PATH), "PROTECTED_PATH");
}

static void test_error_rendering(void) {
  aip_policy_doc d = doc0();
  aip_arg_rule a[] = {{"url", "^https://.*", {0, 0}}};
  aip_tool_rule r = rule("fetch", AIP_ACTION_ALLOW);
  aip_policy *p;
  aip_decision dec;
  aip_buf b;
  cJSON *id = cJSON_CreateString("abc");

  r.allow_args = a, r.allow_args_n = 1;
  d.rules = &r, d.rules_n = 1;
  p = compile(&d);
  aip_buf_init(&b);
  dec = tool(p, "fetch", "{\"url\":\"http://x\"}");
  CHECK_INT(aip_decision_error(&b, id, &dec, "fetch"), 0);
  CHECK_STR(b.data, "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"error\":{\"code\":-32001,\"message\":"
                    "\"Argument validation failed\",\"data\":{\"arg\":\"url\",\"pattern\":"
                    "\"^https://.*\",\"reason\":\"Argument validation failed for url\",\"tool\":"
                    "\"fetch\"}}}");
  aip_buf_reset(&b);
  dec = tool(p, "Other<Tool>", "{}");
  CHECK_INT(aip_decision_error(&b, id, &dec, "Other<Tool>"), 0);
  CHECK_STR(b.data, "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"error\":{\"code\":-32001,\"message\":"
                    "\"Forbidden\",\"data\":{\"reason\":\"Tool not in allowed_tools list\","
                    "\"tool\":\"Other\\u003cTool\\u003e\"}}}");
  aip_buf_reset(&b);
  dec = method(p, "resources/read");
  CHECK_INT(aip_decision_error(&b, NULL, &dec, "resources/read"), 0);
  CHECK(strncmp(b.data, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32006,", 40) == 0);
  aip_buf_free(&b);
  cJSON_Delete(id);
  aip_policy_free(p);
}

int main(void) {
  test_methods();
  test_tools_basic();
  test_denied_and_monitor();
  test_allow_args();
  test_strict_args();
  test_rules_last_wins_and_visibility();
  test_compile_errors();
  test_regex_dialect();
  test_names();
  test_error_rendering();
  TEST_MAIN_END();
}
