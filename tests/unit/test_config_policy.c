/* test_config_policy.c -- AgentPolicy loading: every field of a complete v1alpha2 policy, the
 * defaults, each kind of error with its exact "file:line:col: message", and every inline
 * policy of the AIP conformance suite: the repository's copy (tests/conformance/aip), or
 * $AIP_SHARED_DIR/conformance/aip/conformance when AIP_SHARED_DIR is set -- if that is not
 * there, the rest runs and the test says "SKIPPED" and exits 77 (ctest shows it skipped). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/yaml_doc.h"
#include "test.h"

static aip_policy_doc *load(const char *yaml) {
  aip_policy_doc *doc = NULL;
  aip_error err = {{0}};
  int rc = aip_policy_doc_load_string(yaml, strlen(yaml), "p.yaml", &doc, &err);
  if (rc) fprintf(stderr, "unexpected load error: %s\n", err.msg);
  CHECK_INT(rc, 0);
  return doc;
}

/* Loads yaml, expects failure with exactly `want`. */
static void expect_error(const char *yaml, const char *want) {
  aip_policy_doc *doc = NULL;
  aip_error err = {{0}};
  int rc = aip_policy_doc_load_string(yaml, strlen(yaml), "p.yaml", &doc, &err);
  CHECK(rc < 0);
  CHECK(doc == NULL);
  CHECK_STR(err.msg, want);
}

#define RATE_YAML HEAD "spec:\n  tool_rules:\n    - tool: a\n      rate_limit: \"%s\"\n"
#define HEAD "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata:\n  name: t\n"

static const char full_policy[] =
    "apiVersion: aip.io/v1alpha2\n"
    "kind: AgentPolicy\n"
    "metadata:\n"
    "  name: build-bot\n"
    "  version: 1.2.0\n"
    "  owner: sec@example.com\n"
    "  signature: \"ed25519:AAAA\"\n"
    "spec:\n"
    "  mode: \" Monitor \"\n"
    "  allowed_tools: [read_file, 42, \"list_dir\"]\n"
    "  denied_tools:\n"
    "    - rm_rf\n"
    "  allowed_methods: [\"*\"]\n"
    "  denied_methods: [resources/read]\n"
    "  protected_paths: [~/.ssh, .env]\n"
    "  strict_args_default: true\n"
    "  tool_rules:\n"
    "    - tool: fetch_url\n"
    "      action: \" ASK \"\n"
    "      rate_limit: \" 5 / Minute \"\n"
    "      strict_args: false\n"
    "      allow_args:\n"
    "        url: \"^https://github\\\\.com/\"\n"
    "        depth: '^[0-9]$'\n"
    "    - tool: nightly\n"
    "      rate_limit: 3/day\n"
    "    - tool: drop\n"
    "      action: block\n"
    "  dlp:\n"
    "    detect_encoding: true\n"
    "    filter_stderr: true\n"
    "    scan_requests: true\n"
    "    scan_responses: false\n"
    "    max_scan_size: 2MiB\n"
    "    on_request_match: redact\n"
    "    on_redaction_failure: reject\n"
    "    log_original_on_failure: true\n"
    "    patterns:\n"
    "      - name: AWS Key\n"
    "        regex: \"AKIA[A-Z0-9]{16}\"\n"
    "      - {name: Email, regex: \"[a-z]+@[a-z]+\", scope: response}\n"
    "  identity:\n"
    "    enabled: true\n"
    "    token_ttl: 10m\n"
    "    rotation_interval: 8m\n"
    "    require_token: true\n"
    "    session_binding: strict\n"
    "    nonce_window: 15m\n"
    "    policy_transition_grace: 0s\n"
    "    audience: build-bot\n"
    "    nonce_storage: {type: redis, address: \"127.0.0.1:6379\", key_prefix: \"aip:\", "
    "clock_skew_tolerance: 30s}\n"
    "    keys: {signing_algorithm: ES256, key_source: file, key_path: k.pem, rotation_period: 7d, "
    "jwks_endpoint: /v1/jwks, grace_period: 1h}\n"
    "  server:\n"
    "    enabled: false\n"
    "    listen: \"127.0.0.1:9443\"\n"
    "    failover_mode: fail_closed\n"
    "    timeout: 5s\n"
    "    tls: {cert: c.pem, key: k.pem, client_ca: ca.pem, require_client_cert: true}\n"
    "    fail_open_constraints: {allowed_tools: [a], max_duration: 1m, max_requests: 10, "
    "alert_webhook: \"https://x\", require_local_policy: true}\n"
    "    endpoints: {validate: /v1/validate, revoke: /v1/revoke, jwks: /v1/jwks, health: /health, "
    "metrics: /metrics}\n";

static void test_full_policy(void) {
  aip_policy_doc *d = load(full_policy);
  if (!d) return;
  CHECK_STR(d->path, "p.yaml");
  CHECK_STR(d->api_version, "aip.io/v1alpha2");
  CHECK_STR(d->kind, "AgentPolicy");
  CHECK_STR(d->name, "build-bot");
  CHECK_STR(d->version, "1.2.0");
  CHECK_STR(d->owner, "sec@example.com");
  CHECK_STR(d->signature, "ed25519:AAAA");
  CHECK_INT(d->mode, AIP_MODE_MONITOR);
  CHECK_INT(d->allowed_tools.n, 3);
  CHECK_STR(d->allowed_tools.items[1], "42"); /* YAML ints are tool names too (aip.md 2.2) */
  CHECK_INT(d->allowed_tools.pos[2].line, 10);
  CHECK_INT(d->allowed_tools.pos[2].col, 34);
  CHECK_INT(d->denied_tools.n, 1);
  CHECK_STR(d->denied_tools.items[0], "rm_rf");
  CHECK_INT(d->allowed_methods_set, 1);
  CHECK_STR(d->allowed_methods.items[0], "*");
  CHECK_STR(d->denied_methods.items[0], "resources/read");
  CHECK_STR(d->protected_paths.items[0], "~/.ssh");
  CHECK_INT(d->strict_args_default, 1);
  CHECK_INT(d->rules_n, 3);
  aip_tool_rule *r = &d->rules[0];
  CHECK_STR(r->tool, "fetch_url");
  CHECK_INT(r->pos.line, 18);
  CHECK_INT(r->pos.col, 13);
  CHECK_INT(r->action, AIP_ACTION_ASK);
  CHECK_INT(r->rate_count, 5);
  CHECK_INT(r->rate_period_s, 60);
  CHECK_INT(r->strict_args, 0);
  CHECK_INT(r->allow_args_n, 2);
  CHECK_STR(r->allow_args[0].name, "url");
  CHECK_STR(r->allow_args[0].regex, "^https://github\\.com/");
  CHECK_INT(r->allow_args[0].pos.line, 23);
  CHECK_STR(r->allow_args[1].regex, "^[0-9]$");
  CHECK_INT(d->rules[1].rate_count, 3);
  CHECK_INT(d->rules[1].rate_period_s, 86400);
  CHECK_INT(d->rules[1].action, AIP_ACTION_ALLOW);
  CHECK_INT(d->rules[1].strict_args, -1);
  CHECK_INT(d->rules[2].action, AIP_ACTION_BLOCK);
  CHECK_INT(d->rules[2].rate_count, 0);
  CHECK_INT(d->dlp.present, 1);
  CHECK_INT(d->dlp.enabled, 1);
  CHECK_INT(d->dlp.detect_encoding, 1);
  CHECK_INT(d->dlp.filter_stderr, 1);
  CHECK_INT(d->dlp.scan_requests, 1);
  CHECK_INT(d->dlp.scan_responses, 0);
  CHECK_INT(d->dlp.max_scan_size, 2 * 1024 * 1024);
  CHECK_STR(d->dlp.on_request_match, "redact");
  CHECK_STR(d->dlp.on_redaction_failure, "reject");
  CHECK_INT(d->dlp.log_original_on_failure, 1);
  CHECK_INT(d->dlp.patterns_n, 2);
  CHECK_STR(d->dlp.patterns[0].name, "AWS Key");
  CHECK_STR(d->dlp.patterns[0].scope, "all");
  CHECK_STR(d->dlp.patterns[1].regex, "[a-z]+@[a-z]+");
  CHECK_STR(d->dlp.patterns[1].scope, "response");
  CHECK_INT(d->identity_present, 1);
  CHECK_INT(d->server_present, 1);
  aip_policy_doc_free(d);
}

static void test_defaults(void) {
  aip_policy_doc *d = load(HEAD "spec:\n  allowed_tools: []\n  allowed_methods: []\n  dlp:\n");
  if (!d) return;
  CHECK_INT(d->mode, AIP_MODE_ENFORCE);
  CHECK_INT(d->allowed_tools.n, 0);
  CHECK_INT(d->allowed_methods_set, 0); /* an empty list keeps the default methods, as in Go */
  CHECK_INT(d->rules_n, 0);
  CHECK_INT(d->strict_args_default, 0);
  CHECK_INT(d->dlp.present, 0); /* `dlp:` with no value is no block (Go: nil pointer) */
  CHECK_INT(d->dlp.enabled, 0);
  CHECK_STR(d->dlp.on_request_match, "block");
  CHECK_STR(d->dlp.on_redaction_failure, "block");
  CHECK_INT(d->dlp.scan_responses, 1);
  CHECK_INT(d->dlp.max_scan_size, 1000000);
  CHECK_INT(d->identity_present, 0);
  CHECK_INT(d->server_present, 0);
  CHECK(d->signature == NULL);
  aip_policy_doc_free(d);

  d = load(HEAD "spec:\n  dlp: {enabled: false}\n");
  if (d) {
    CHECK_INT(d->dlp.present, 1);
    CHECK_INT(d->dlp.enabled, 0);
    aip_policy_doc_free(d);
  }
  d = load(HEAD "spec:\n  dlp: {}\n  mode: ''\n");
  if (d) {
    CHECK_INT(d->dlp.present, 1);
    CHECK_INT(d->dlp.enabled, 1); /* Go: enabled defaults to true when the block exists */
    CHECK_INT(d->mode, AIP_MODE_ENFORCE);
    aip_policy_doc_free(d);
  }
  /* No spec at all: Go accepts it (an empty allowlist blocks every tool). */
  d = load("apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\n");
  if (d) {
    CHECK(d->name == NULL);
    aip_policy_doc_free(d);
  }
}

static void test_header_errors(void) {
  expect_error("", "p.yaml: empty document: policy missing required field: apiVersion");
  expect_error("kind: AgentPolicy\n", "p.yaml:1:1: policy missing required field: apiVersion");
  expect_error("apiVersion: aip.io/v9\nkind: AgentPolicy\n",
               "p.yaml:1:13: unsupported apiVersion \"aip.io/v9\", expected aip.io/v1alpha1 or "
               "aip.io/v1alpha2");
  expect_error("apiVersion: aip.io/v1alpha1\nkind: Policy\n",
               "p.yaml:2:7: unexpected kind \"Policy\", expected AgentPolicy");
  expect_error("apiVersion: aip.io/v1alpha1\n",
               "p.yaml:1:1: unexpected kind \"\", expected AgentPolicy");
  expect_error("- a\n", "p.yaml:1:1: the policy document: expected a mapping, got a list");
}

static void test_unknown_keys(void) {
  expect_error(HEAD "spec:\n  allowed_tool: [a]\n",
               "p.yaml:6:3: unknown key \"allowed_tool\" in spec (did you mean "
               "\"allowed_tools\"?)");
  expect_error(HEAD "  labels: {}\n", "p.yaml:5:3: unknown key \"labels\" in metadata");
  expect_error(HEAD "extra: 1\n", "p.yaml:5:1: unknown key \"extra\" in the policy document");
  expect_error(HEAD "spec:\n  tool_rules:\n    - tool: a\n      args: {}\n",
               "p.yaml:8:7: unknown key \"args\" in spec.tool_rules[0]");
  expect_error(HEAD "spec:\n  dlp:\n    patterns:\n      - {name: a, regex: b, action: x}\n",
               "p.yaml:8:29: unknown key \"action\" in spec.dlp.patterns[0]");
  expect_error(HEAD "spec:\n  server:\n    tls: {cert: a, kye: b}\n",
               "p.yaml:7:20: unknown key \"kye\" in spec.server.tls (did you mean \"key\"?)");
  expect_error(HEAD "spec:\n  identity:\n    ttl: 5m\n",
               "p.yaml:7:5: unknown key \"ttl\" in spec.identity");
  expect_error(HEAD "spec:\n  tool_rules:\n    - tool: a\n      schema_hash: \"sha256:ab\"\n",
               "p.yaml:8:20: spec.tool_rules[0].schema_hash: tool schema pinning is not "
               "supported by this gateway");
}

static void test_type_errors(void) {
  expect_error(HEAD "spec:\n  allowed_tools: read_file\n",
               "p.yaml:6:18: spec.allowed_tools: expected a list, got a scalar");
  expect_error(HEAD "spec:\n  allowed_tools: [[a]]\n",
               "p.yaml:6:19: spec.allowed_tools: expected a list of strings, got a list");
  expect_error(HEAD "spec:\n  denied_tools: [a, ~]\n",
               "p.yaml:6:21: spec.denied_tools: expected a list of strings, got an empty item");
  expect_error(HEAD "spec:\n  strict_args_default: yes\n",
               "p.yaml:6:24: spec.strict_args_default: expected a boolean (true or false), got "
               "\"yes\"");
  expect_error(HEAD "spec:\n  strict_args_default: \"true\"\n",
               "p.yaml:6:24: spec.strict_args_default: expected a boolean (true or false), got "
               "\"true\"");
  expect_error(HEAD "spec:\n  mode: [enforce]\n",
               "p.yaml:6:9: spec.mode: expected a string, got a list");
  expect_error(HEAD "spec: [a]\n", "p.yaml:5:7: spec: expected a mapping, got a list");
  expect_error(HEAD "spec:\n  tool_rules:\n    - a\n",
               "p.yaml:7:7: spec.tool_rules[0]: expected a mapping with a `tool` key");
  expect_error(HEAD "spec:\n  tool_rules:\n    - tool: a\n      allow_args: [x]\n",
               "p.yaml:8:19: spec.tool_rules[0].allow_args: expected a mapping, got a list");
  expect_error(HEAD "spec:\n  tool_rules:\n    - tool: a\n      allow_args: {x: }\n",
               "p.yaml:8:23: spec.tool_rules[0].allow_args.x: expected a string, got nothing");
  expect_error(HEAD "spec:\n  dlp:\n    max_scan_size: 1.5MB\n",
               "p.yaml:7:20: spec.dlp.max_scan_size: invalid size \"1.5MB\": expected bytes or a "
               "number with B, KB, KiB, MB, MiB, GB or GiB");
  expect_error(HEAD "spec:\n  dlp:\n    on_request_match: drop\n",
               "p.yaml:7:23: spec.dlp.on_request_match: invalid value \"drop\", expected one of: "
               "block, redact, warn");
  expect_error(HEAD "spec:\n  server:\n    fail_open_constraints: {max_requests: many}\n",
               "p.yaml:7:43: spec.server.fail_open_constraints.max_requests: expected an integer, "
               "got \"many\"");
  expect_error(HEAD "spec:\n  identity:\n    token_ttl: 300\n",
               "p.yaml:7:16: spec.identity.token_ttl: invalid duration \"300\": expected numbers "
               "with units ms, s, m, h or d (e.g. \"90s\", \"1m30s\")");
  expect_error(HEAD "spec:\n  identity:\n    token_ttl: 5m\n    rotation_interval: 5m\n",
               "p.yaml:8:24: spec.identity.rotation_interval must be shorter than token_ttl");
  expect_error(HEAD "spec:\n  identity: {session_binding: pid}\n",
               "p.yaml:6:31: spec.identity.session_binding: invalid value \"pid\", expected one "
               "of: process, policy, strict");
}

static void test_missing_required(void) {
  expect_error(HEAD "spec:\n  tool_rules:\n    - action: block\n",
               "p.yaml:7:7: spec.tool_rules[0]: missing required field: tool");
  expect_error(HEAD "spec:\n  tool_rules:\n    - tool: \"\"\n",
               "p.yaml:7:13: spec.tool_rules[0]: missing required field: tool");
  expect_error(HEAD "spec:\n  dlp:\n    patterns:\n      - name: a\n",
               "p.yaml:8:9: spec.dlp.patterns[0]: missing required field: regex");
  expect_error(HEAD "spec:\n  dlp:\n    patterns:\n      - regex: a\n",
               "p.yaml:8:9: spec.dlp.patterns[0]: missing required field: name");
}

/* The Go reference's load errors, word for word after our position prefix (aip.md 2.3). */
static void test_go_messages(void) {
  expect_error(HEAD "spec:\n  mode: Audit\n",
               "p.yaml:6:9: invalid mode \"Audit\", must be 'enforce' or 'monitor'");
  expect_error(HEAD "spec:\n  tool_rules:\n    - tool: a\n      action: Deny\n",
               "p.yaml:8:15: invalid action \"deny\" for tool \"a\", must be 'allow', 'block', "
               "or 'ask'");
  static const struct {
    const char *in, *msg;
  } rl[] = {
      {"day", "invalid rate limit format \"day\": expected 'N/duration'"},
      {"1/m/s", "invalid rate limit format \"1/m/s\": expected 'N/duration'"},
      {"1.5/s", "invalid rate limit count \"1.5\": must be positive integer"},
      {"0/m", "invalid rate limit count \"0\": must be positive integer"},
      {"-5/m", "invalid rate limit count \"-5\": must be positive integer"},
      {"/m", "invalid rate limit count \"\": must be positive integer"},
      {"5/week", "invalid rate limit duration \"week\": must be 'second', 'minute', or 'hour'"},
      {"5/ Fortnight", "invalid rate limit duration \"fortnight\": must be 'second', 'minute', "
                       "or 'hour'"},
  };
  for (size_t i = 0; i < sizeof rl / sizeof rl[0]; i++) {
    char yaml[256], want[512];
    snprintf(yaml, sizeof yaml, RATE_YAML,
             rl[i].in);
    snprintf(want, sizeof want, "p.yaml:8:19: invalid rate_limit for tool \"a\": %s", rl[i].msg);
    expect_error(yaml, want);
  }
  /* Every accepted spelling, and an empty string means no limit. */
  static const struct {
    const char *in;
    unsigned count, period;
  } ok[] = {{"10/second", 10, 1}, {"1/sec", 1, 1},     {"2/S", 2, 1},     {"3/minute", 3, 60},
            {"4/min", 4, 60},     {"+5/m", 5, 60},     {"6/hour", 6, 3600}, {"7/hr", 7, 3600},
            {"8/h", 8, 3600},     {"9/Day", 9, 86400}, {"1/d", 1, 86400}, {"", 0, 0}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char yaml[256];
    snprintf(yaml, sizeof yaml, RATE_YAML,
             ok[i].in);
    aip_policy_doc *d = load(yaml);
    if (!d) continue;
    CHECK_INT(d->rules[0].rate_count, ok[i].count);
    CHECK_INT(d->rules[0].rate_period_s, ok[i].period);
    aip_policy_doc_free(d);
  }
}

static void test_yaml_level_errors(void) {
  expect_error(HEAD "spec:\n  allowed_tools: [a]\n  allowed_tools: [b]\n",
               "p.yaml:7:3: duplicate key \"allowed_tools\" (first written at line 6)");
  expect_error(HEAD "spec:\n  allowed_tools: &t [a]\n  denied_tools: *t\n",
               "p.yaml:6:18: YAML anchors and aliases are not supported");
  expect_error(HEAD "spec:\n  allowed_tools: [a\n",
               "p.yaml:7:1: invalid YAML: did not find expected ',' or ']' while parsing a flow "
               "sequence");
}

static void test_load_file(void) {
  aip_policy_doc *d = NULL;
  aip_error err = {{0}};
  CHECK_INT(aip_policy_doc_load_file("data/config/policies/build-bot.yaml", &d, &err), 0);
  if (d) {
    CHECK_STR(d->path, "data/config/policies/build-bot.yaml");
    CHECK_STR(d->name, "build-bot");
    aip_policy_doc_free(d);
  }
  CHECK_INT(aip_policy_doc_load_file("data/config/no-such-policy.yaml", &d, &err), -ENOENT);
  CHECK_STR(err.msg, "data/config/no-such-policy.yaml: cannot open: No such file or directory");
  CHECK(aip_policy_doc_load_file("data/config/policies/bad-action.yaml", &d, &err) < 0);
  CHECK_STR(err.msg, "data/config/policies/bad-action.yaml:8:15: invalid action \"deny\" for tool "
                     "\"write_file\", must be 'allow', 'block', or 'ask'");
  aip_policy_doc_free(NULL);
}

/* ---- the conformance suite's inline policies ------------------------------------------------ */

static int conformance_loaded, conformance_failed;

static void load_conformance_file(const char *path) {
  aip_ydoc *y = NULL;
  aip_error err = {{0}};
  if (aip_ydoc_load_file(path, &y, &err)) {
    fprintf(stderr, "cannot read conformance file: %s\n", err.msg);
    conformance_failed++;
    return;
  }
  const aip_ynode *tests = aip_y_get(y->root, "tests");
  for (size_t i = 0; tests && tests->kind == AIP_YSEQ && i < tests->n; i++) {
    const aip_ynode *policy = aip_y_get(tests->items[i], "policy");
    const aip_ynode *id = aip_y_get(tests->items[i], "id");
    /* auth-050 has `policy: null` ("no policy loaded"): not a document to load */
    if (!policy || policy->kind != AIP_YSCALAR || aip_y_is_null(policy)) continue;
    char name[512];
    snprintf(name, sizeof name, "%s#%s", path, id ? id->value : "?");
    aip_policy_doc *d = NULL;
    if (aip_policy_doc_load_string(policy->value, policy->len, name, &d, &err) == 0) {
      conformance_loaded++;
    } else {
      fprintf(stderr, "conformance policy rejected: %s\n", err.msg);
      conformance_failed++;
    }
    aip_policy_doc_free(d);
  }
  aip_ydoc_free(y);
}

static void walk(const char *dir) {
  DIR *dp = opendir(dir);
  if (!dp) return;
  struct dirent *e;
  while ((e = readdir(dp))) {
    if (e->d_name[0] == '.') continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    size_t n = strlen(path);
    if (n > 5 && strcmp(path + n - 5, ".yaml") == 0) load_conformance_file(path);
    else walk(path);
  }
  closedir(dp);
}

static int skipped;

static void test_conformance_policies(void) {
  const char *shared = getenv("AIP_SHARED_DIR");
  char dir[1024];
  if (shared && shared[0])
    snprintf(dir, sizeof dir, "%s/conformance/aip/conformance", shared);
  else
    snprintf(dir, sizeof dir, "../conformance/aip/conformance"); /* run from tests/unit */
  DIR *dp = opendir(dir);
  if (!dp) {
    printf("SKIPPED: %s not found (AIP conformance policies not loaded)\n", dir);
    skipped = 1;
    return;
  }
  closedir(dp);
  walk(dir);
  printf("conformance: %d inline policies loaded, %d rejected (from %s)\n", conformance_loaded,
         conformance_failed, dir);
  CHECK(conformance_loaded >= 60); /* basic + full hold 64; fails loudly if the dir is missing */
  CHECK_INT(conformance_failed, 0);
}

int main(void) {
  test_full_policy();
  test_defaults();
  test_header_errors();
  test_unknown_keys();
  test_type_errors();
  test_missing_required();
  test_go_messages();
  test_yaml_level_errors();
  test_load_file();
  test_conformance_policies();
  if (skipped && test_failed_ == 0) return printf("%s: %d passed, SKIPPED\n", __FILE__, test_passed_), 77;
  TEST_MAIN_END();
}
