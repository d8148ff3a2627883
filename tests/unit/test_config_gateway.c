/* test_config_gateway.c -- gateway config loading: the complete fixture in data/config, the
 * defaults, path resolution, and each kind of error with its exact "file:line:col: message".
 * Error cases are written to a temporary folder so each input sits next to its expectation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "test.h"

static char tmpdir[64];

static void write_file(const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void remove_file(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  unlink(path);
}

/* Writes `yaml` as gw.yaml in the temp folder and expects the load to fail with
 * "<tmp>/gw.yaml:<want>" ("<tmp>/<want>" when want names another file, "<tmp>/gw.yaml: <want>"
 * when it has no position). */
static void expect_error(const char *yaml, const char *want) {
  char path[256], full[1024];
  write_file("gw.yaml", yaml);
  snprintf(path, sizeof path, "%s/gw.yaml", tmpdir);
  if (strncmp(want, "p.yaml", 6) == 0 || strncmp(want, "bad.yaml", 8) == 0 ||
      strncmp(want, "none.yaml", 9) == 0)
    snprintf(full, sizeof full, "%s/%s", tmpdir, want);
  else if (want[0] >= '0' && want[0] <= '9')
    snprintf(full, sizeof full, "%s:%s", path, want);
  else /* a message without a position */
    snprintf(full, sizeof full, "%s: %s", path, want);
  aip_gateway_config *cfg = NULL;
  aip_error err = {{0}};
  int rc = aip_gateway_config_load(path, &cfg, &err);
  CHECK(rc < 0);
  CHECK(cfg == NULL);
  CHECK_STR(err.msg, full);
  aip_gateway_config_free(cfg);
}

#define TOK1 "1111111111111111111111111111111111111111111111111111111111111111"
#define TOK2 "2222222222222222222222222222222222222222222222222222222222222222"
#define SERVERS "servers:\n  files:\n    command: [node, s.js]\n"
#define AGENT "agents:\n  - name: a\n    token_sha256: " TOK1 "\n    policy: p.yaml\n"

static void test_full_fixture(void) {
  aip_gateway_config *c = NULL;
  aip_error err = {{0}};
  int rc = aip_gateway_config_load("data/config/gateway.yaml", &c, &err);
  if (rc) fprintf(stderr, "load error: %s\n", err.msg);
  CHECK_INT(rc, 0);
  if (!c) return;
  CHECK_STR(c->path, "data/config/gateway.yaml");
  CHECK_STR(c->dir, "data/config");
  CHECK_STR(c->listen.host, "127.0.0.1");
  CHECK_INT(c->listen.port, 18080);
  CHECK_STR(c->admin_listen.host, "::1");
  CHECK_INT(c->admin_listen.port, 19091);
  CHECK_STR(c->store_path, "data/config/var/test.db");
  CHECK_STR(c->audit_path, "/tmp/aip-test-audit.jsonl");
  CHECK_INT(c->approvals_timeout_ms, 150000);
  CHECK_INT(c->approvals_max_pending_per_agent, 7);
  CHECK_INT(c->approvals_max_args_size, 8 * 1024);
  CHECK_INT(c->limits.max_body, 1024 * 1024);
  CHECK_INT(c->limits.max_header_bytes, 8 * 1024);
  CHECK_INT(c->limits.max_sessions, 50);
  CHECK_INT(c->limits.request_timeout_ms, 30000);
  CHECK_INT(c->limits.header_timeout_ms, 5000);
  CHECK_INT(c->limits.idle_timeout_ms, 120000);
  CHECK_INT(c->limits.session_idle_timeout_ms, 3600000);
  CHECK_INT(c->limits.max_upstream_message, 32 * 1024 * 1024);
  CHECK_INT(c->allowed_origins.n, 2);
  CHECK_STR(c->allowed_origins.items[1], "http://localhost:3000");
  CHECK_INT(c->servers_n, 2);
  aip_server_config *s = &c->servers[0];
  CHECK_STR(s->name, "files");
  CHECK_INT(s->pos.line, 22);
  CHECK_INT(s->pos.col, 3);
  CHECK_INT(s->command_n, 3);
  CHECK_STR(s->command[0], "node");
  CHECK_STR(s->command[2], "stdio");
  CHECK(s->command[3] == NULL);
  CHECK_INT(s->env.n, 2);
  CHECK_STR(s->env.items[1].key, "PORT");
  CHECK_STR(s->env.items[1].value, "3000");
  CHECK_STR(s->cwd, "data/config/work");
  CHECK(s->url == NULL);
  s = &c->servers[1];
  CHECK_STR(s->name, "remote");
  CHECK_STR(s->url, "http://127.0.0.1:3001/mcp");
  CHECK_STR(s->headers.items[0].key, "Authorization");
  CHECK_STR(s->headers.items[0].value, "Bearer abc");
  CHECK(s->command == NULL);
  CHECK_INT(c->agents_n, 2);
  aip_agent_config *a = &c->agents[0];
  CHECK_STR(a->name, "build-bot");
  CHECK_INT(a->pos.line, 30);
  CHECK_INT(a->token_sha256[0], 0x9f);
  CHECK_INT(a->token_sha256[31], 0x08);
  CHECK_STR(a->policy_path, "data/config/policies/build-bot.yaml");
  CHECK(a->policy != NULL);
  if (a->policy) CHECK_STR(a->policy->name, "build-bot");
  CHECK_INT(a->servers_n, 2);
  CHECK_INT(a->servers[0], 0);
  CHECK_INT(a->servers[1], 1);
  CHECK_INT(a->tool_prefix, AIP_PREFIX_ALWAYS);
  CHECK_INT(a->max_sessions, 0); /* limits.*_per_agent */
  CHECK_INT(a->max_inflight, 0);
  a = &c->agents[1];
  CHECK_INT(a->max_sessions, 5);
  CHECK_INT(a->max_inflight, 7);
  CHECK_STR(a->name, "reader.v2");
  CHECK_INT(a->servers_n, 1);
  CHECK_INT(a->servers[0], 1);
  CHECK_INT(a->tool_prefix, AIP_PREFIX_AUTO);
  if (a->policy) CHECK_INT(a->policy->mode, AIP_MODE_MONITOR);
  CHECK_INT(c->operators_n, 1);
  CHECK_STR(c->operators[0].name, "alice@example.com");
  CHECK_INT(c->operators[0].token_sha256[0], 0x2c);
  aip_gateway_config_free(c);
}

static void test_defaults(void) {
  aip_gateway_config *c = NULL;
  aip_error err = {{0}};
  CHECK_INT(aip_gateway_config_load("data/config/minimal.yaml", &c, &err), 0);
  if (!c) return;
  CHECK_STR(c->listen.host, "127.0.0.1");
  CHECK_INT(c->listen.port, 8080);
  CHECK_STR(c->admin_listen.host, "127.0.0.1");
  CHECK_INT(c->admin_listen.port, 9091);
  CHECK_STR(c->store_path, "data/config/var/aip.db");
  CHECK_STR(c->audit_path, "data/config/var/aip-audit.jsonl");
  CHECK_INT(c->approvals_timeout_ms, 5 * 60 * 1000);
  CHECK_INT(c->approvals_keepalive_ms, 15 * 1000);
  CHECK_INT(c->approvals_max_pending_per_agent, 100);
  CHECK_INT(c->approvals_max_args_size, 64 * 1024);
  CHECK_INT(c->limits.max_body, 4 * 1024 * 1024);
  CHECK_INT(c->limits.max_header_bytes, 16 * 1024);
  CHECK_INT(c->limits.max_sessions, 10000);
  CHECK_INT(c->limits.request_timeout_ms, 60000);
  CHECK_INT(c->limits.header_timeout_ms, 10000);
  CHECK_INT(c->limits.idle_timeout_ms, 60000);
  CHECK_INT(c->limits.session_idle_timeout_ms, 30 * 60 * 1000);
  CHECK_INT(c->limits.max_upstream_message, 16 * 1024 * 1024);
  CHECK_INT(c->limits.max_streamed_message, 1024ll * 1024 * 1024);
  CHECK_INT(c->limits.max_connections, 0); /* unset: derived from RLIMIT_NOFILE at start */
  CHECK_INT(c->limits.max_sessions_per_agent, 1000);
  CHECK_INT(c->limits.max_inflight_per_agent, 1000);
  CHECK_INT(c->limits.max_server_requests_per_agent, 100);
  CHECK_INT(c->limits.max_stream_buffer, 4 * 1024 * 1024);
  CHECK_INT(c->allowed_origins.n, 0);
  CHECK_INT(c->servers_n, 1);
  CHECK_INT(c->operators_n, 0);
  CHECK_INT(c->agents_n, 1);
  CHECK_INT(c->agents[0].servers_n, 1);
  CHECK_INT(c->agents[0].token_sha256[31], 1);
  aip_gateway_config_free(c);

  /* A config in the current folder keeps relative paths as written; "localhost" is 127.0.0.1. */
  CHECK_INT(chdir("data/config"), 0);
  c = NULL;
  CHECK_INT(aip_gateway_config_load("minimal.yaml", &c, &err), 0);
  if (c) {
    CHECK_STR(c->dir, ".");
    CHECK_STR(c->store_path, "var/aip.db");
    CHECK_STR(c->agents[0].policy_path, "policies/reader.yaml");
    aip_gateway_config_free(c);
  }
  CHECK_INT(chdir("../.."), 0);
}

static void test_errors(void) {
  /* unknown keys, at the key's line:col */
  expect_error("listen: \"127.0.0.1:1\"\nlimts: {}\n",
               "2:1: unknown key \"limts\" in the gateway config (did you mean \"limits\"?)");
  expect_error(SERVERS "    args: [x]\n", "4:5: unknown key \"args\" in servers.files");
  expect_error(AGENT "    tools: [x]\n", "5:5: unknown key \"tools\" in agents[0]");
  expect_error("admin:\n  port: 1\n", "2:3: unknown key \"port\" in admin");
  /* wrong types name the expected type */
  expect_error("limits:\n  max_sessions: many\n",
               "2:17: limits.max_sessions: expected an integer, got \"many\"");
  expect_error("limits:\n  max_connections: 0\n",
               "2:20: limits.max_connections: 0 is out of range (1 to 10000000)");
  expect_error("limits:\n  max_connections: lots\n",
               "2:20: limits.max_connections: expected an integer, got \"lots\"");
  expect_error("limits:\n  max_sessions: 0\n",
               "2:17: limits.max_sessions: 0 is out of range (1 to 10000000)");
  expect_error("limits:\n  max_sessions_per_agent: 0\n",
               "2:27: limits.max_sessions_per_agent: 0 is out of range (1 to 10000000)");
  expect_error("limits:\n  max_inflight_per_agent: lots\n",
               "2:27: limits.max_inflight_per_agent: expected an integer, got \"lots\"");
  expect_error("limits:\n  max_server_requests_per_agent: 0\n",
               "2:34: limits.max_server_requests_per_agent: 0 is out of range (1 to 10000000)");
  expect_error("limits:\n  max_stream_buffer: 0\n",
               "2:22: limits.max_stream_buffer: must be greater than 0");
  expect_error("limits:\n  max_streamed_message: 0\n",
               "2:25: limits.max_streamed_message: must be greater than 0");
  expect_error("servers: [a]\n", "1:10: servers: expected a mapping of name -> server");
  expect_error("agents: {a: 1}\n", "1:9: agents: expected a list, got a mapping");
  expect_error("store: x\n", "1:8: store: expected a mapping, got a scalar");
  expect_error("allowed_origins: https://x\n",
               "1:18: allowed_origins: expected a list, got a scalar");
  /* units */
  expect_error("approvals:\n  timeout: 300\n",
               "2:12: approvals.timeout: invalid duration \"300\": expected numbers with units "
               "ms, s, m, h or d (e.g. \"90s\", \"1m30s\")");
  expect_error("approvals:\n  keepalive: 50ms\n",
               "2:14: approvals.keepalive: must be at least 100ms");
  expect_error("approvals:\n  keepalive: soon\n",
               "2:14: approvals.keepalive: invalid duration \"soon\": expected numbers with units "
               "ms, s, m, h or d (e.g. \"90s\", \"1m30s\")");
  expect_error("approvals:\n  max_pending_per_agent: 0\n",
               "2:26: approvals.max_pending_per_agent: 0 is out of range (1 to 1000000)");
  expect_error("approvals:\n  max_pending_per_agent: -5\n",
               "2:26: approvals.max_pending_per_agent: -5 is out of range (1 to 1000000)");
  expect_error("approvals:\n  max_pending_per_agent: 10x\n",
               "2:26: approvals.max_pending_per_agent: expected an integer, got \"10x\"");
  expect_error("approvals:\n  max_pending_per_agent: \"10\"\n",
               "2:26: approvals.max_pending_per_agent: expected an integer, got \"10\"");
  expect_error("approvals:\n  max_pending_per_agent: [1]\n",
               "2:26: approvals.max_pending_per_agent: expected an integer, got a list");
  expect_error("approvals:\n  max_args_size: 512\n",
               "2:18: approvals.max_args_size: must be between 1KiB and 1MiB");
  expect_error("approvals:\n  max_args_size: 2MiB\n",
               "2:18: approvals.max_args_size: must be between 1KiB and 1MiB");
  expect_error("approvals:\n  max_args_size: big\n",
               "2:18: approvals.max_args_size: invalid size \"big\": expected bytes or a number "
               "with B, KB, KiB, MB, MiB, GB or GiB");
  expect_error("approvals:\n  keep_alive: 1s\n",
               "2:3: unknown key \"keep_alive\" in approvals (did you mean \"keepalive\"?)");
  expect_error("limits:\n  max_body: 4 MB/s\n",
               "2:13: limits.max_body: invalid size \"4 MB/s\": expected bytes or a number with "
               "B, KB, KiB, MB, MiB, GB or GiB");
  expect_error("limits:\n  idle_timeout: 0s\n",
               "2:17: limits.idle_timeout: must be greater than 0");
  expect_error("limits:\n  max_body: 0\n", "2:13: limits.max_body: must be greater than 0");
  expect_error("listen: \"example.com:80\"\n",
               "1:9: listen: invalid listen address \"example.com:80\": expected \"IPv4:port\", "
               "\"[IPv6]:port\" or \"localhost:port\" with a port from 1 to 65535");
  expect_error("admin: {listen: \"127.0.0.1:0\"}\n",
               "1:17: admin.listen: invalid listen address \"127.0.0.1:0\": expected "
               "\"IPv4:port\", \"[IPv6]:port\" or \"localhost:port\" with a port from 1 to 65535");
  expect_error("allowed_origins: [\"https://a.example/\"]\n",
               "1:19: allowed_origins: invalid origin \"https://a.example/\": expected "
               "scheme://host[:port] with scheme http or https and no path");
  /* YAML-level */
  expect_error("listen: \"127.0.0.1:1\"\nlisten: \"127.0.0.1:2\"\n",
               "2:1: duplicate key \"listen\" (first written at line 1)");
  expect_error("x: &a 1\n", "1:4: YAML anchors and aliases are not supported");
  /* servers */
  expect_error("servers:\n  a__b:\n    command: [x]\n",
               "2:3: invalid server name \"a__b\": use 1-64 letters, digits, '_' or '-', without "
               "\"__\" (it separates server and tool in prefixed tool names)");
  expect_error("servers:\n  \"a.b\":\n    command: [x]\n",
               "2:3: invalid server name \"a.b\": use 1-64 letters, digits, '_' or '-', without "
               "\"__\" (it separates server and tool in prefixed tool names)");
  expect_error("servers:\n  s:\n    command: [x]\n    url: http://h/\n",
               "2:3: servers.s: set exactly one of `command` (stdio) or `url`");
  expect_error("servers:\n  s: {env: {A: b}}\n",
               "2:3: servers.s: set exactly one of `command` (stdio) or `url`");
  expect_error("servers:\n  s: {command: []}\n",
               "2:16: servers.s.command: expected a non-empty list such as [\"node\", "
               "\"server.js\"]");
  expect_error("servers:\n  s: {command: node}\n",
               "2:16: servers.s.command: expected a list, got a scalar");
  expect_error("servers:\n  s: {url: \"ftp://h\"}\n",
               "2:12: servers.s.url: expected an http:// or https:// URL");
  expect_error("servers:\n  s: {url: \"http://h\", env: {A: b}}\n",
               "2:29: servers.s: `env` and `cwd` apply to `command` servers only");
  expect_error("servers:\n  s: {command: [x], env: {\"A=B\": c}}\n",
               "2:27: servers.s.env: invalid variable name \"A=B\"");
  expect_error("servers:\n  s: {url: \"http://h\", headers: {\"Bad Header\": x}}\n",
               "2:34: servers.s.headers: invalid header name \"Bad Header\"");
  expect_error("servers:\n  s: {url: \"http://h\", headers: {X: \"a\\r\\nb\"}}\n",
               "2:37: servers.s.headers: header values must not contain control characters");
  /* agents */
  expect_error("agents:\n  - token_sha256: " TOK1 "\n    policy: p.yaml\n",
               "2:5: agents[0].name: missing required field");
  expect_error("agents:\n  - name: a\n    policy: p.yaml\n",
               "2:5: agents[0].token_sha256: missing required field");
  expect_error("agents:\n  - name: a\n    token_sha256: " TOK1 "\n",
               "2:5: agents[0].policy: missing required field");
  expect_error("agents:\n  - name: \"a/b\"\n",
               "2:11: agents[0].name: invalid name \"a/b\": use 1-64 letters, digits or \"_-.\"");
  expect_error("agents:\n  - name: a\n    token_sha256: \"abc\"\n",
               "3:19: agents[0].token_sha256: expected 64 hex characters (the SHA-256 of the "
               "bearer token; `aip token new` prints one)");
  expect_error("agents:\n  - name: a\n    token_sha256: "
               "\"zz11111111111111111111111111111111111111111111111111111111111111\"\n",
               "3:19: agents[0].token_sha256: expected 64 hex characters (the SHA-256 of the "
               "bearer token; `aip token new` prints one)");
  expect_error(AGENT "    max_sessions: 0\n",
               "5:19: agents[0].max_sessions: 0 is out of range (1 to 10000000)");
  expect_error(AGENT "    max_inflight: -3\n",
               "5:19: agents[0].max_inflight: -3 is out of range (1 to 10000000)");
  expect_error(AGENT "    max_inflight: some\n",
               "5:19: agents[0].max_inflight: expected an integer, got \"some\"");
  expect_error(AGENT "    servers: [files]\n",
               "5:15: agents[0].servers: unknown server \"files\" (not defined under `servers`)");
  expect_error(SERVERS AGENT "    servers: [files, files]\n",
               "8:22: agents[0].servers: server \"files\" is listed twice");
  expect_error(AGENT "    tool_prefix: sometimes\n",
               "5:18: agents[0].tool_prefix: invalid value \"sometimes\", expected auto, always or "
               "never");
  expect_error(AGENT "  - name: a\n    token_sha256: " TOK2 "\n    policy: p.yaml\n",
               "5:11: agents[1].name: agent \"a\" is defined twice");
  expect_error(AGENT "  - name: b\n    token_sha256: " TOK1 "\n    policy: p.yaml\n",
               "6:19: token_sha256 is already used by a (each agent and operator needs its own "
               "token)");
  expect_error(AGENT "operators:\n  - name: op\n    token_sha256: " TOK1 "\n",
               "7:19: token_sha256 is already used by a (each agent and operator needs its own "
               "token)");
  expect_error("operators:\n  - name: op\n    token_sha256: " TOK1
               "\n  - name: op\n    token_sha256: " TOK2 "\n",
               "4:11: operators[1].name: operator \"op\" is defined twice");
  /* required: at least one server, one agent, and one server per agent */
  expect_error("", "servers: define at least one upstream MCP server");
  expect_error(AGENT, "servers: define at least one upstream MCP server");
  expect_error("servers: {}\n" AGENT, "1:10: servers: define at least one upstream MCP server");
  expect_error(SERVERS, "agents: define at least one agent");
  expect_error(SERVERS "agents: []\n", "4:9: agents: define at least one agent");
  expect_error(SERVERS AGENT, "5:5: agents[0].servers: list at least one server");
  expect_error(SERVERS AGENT "    servers: []\n",
               "5:5: agents[0].servers: list at least one server");
  /* the policy's own errors come through unchanged, naming the policy file */
  expect_error("agents:\n  - name: a\n    token_sha256: " TOK1 "\n    policy: bad.yaml\n",
               "bad.yaml:4:9: invalid mode \"strict\", must be 'enforce' or 'monitor'");
  expect_error("agents:\n  - name: a\n    token_sha256: " TOK1 "\n    policy: none.yaml\n",
               "none.yaml: cannot open: No such file or directory");
}

/* approvals.keepalive beside approvals.timeout (the fixture leaves it at its default). */
static void test_approvals_keepalive(void) {
  char path[256];
  aip_gateway_config *c = NULL;
  aip_error err = {{0}};
  write_file("gw.yaml", "approvals:\n  timeout: 1m\n  keepalive: 250ms\n" SERVERS AGENT
                        "    servers: [files]\n");
  snprintf(path, sizeof path, "%s/gw.yaml", tmpdir);
  int rc = aip_gateway_config_load(path, &c, &err);
  if (rc) fprintf(stderr, "load error: %s\n", err.msg);
  CHECK_INT(rc, 0);
  if (!c) return;
  CHECK_INT(c->approvals_timeout_ms, 60000);
  CHECK_INT(c->approvals_keepalive_ms, 250);
  aip_gateway_config_free(c);
}

static void test_missing_file(void) {
  aip_gateway_config *c = NULL;
  aip_error err = {{0}};
  CHECK_INT(aip_gateway_config_load("data/config/nope.yaml", &c, &err), -ENOENT);
  CHECK(c == NULL);
  CHECK_STR(err.msg, "data/config/nope.yaml: cannot open: No such file or directory");
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/aip-test-config-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  write_file("p.yaml",
             "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nspec:\n  allowed_tools: [x]\n");
  write_file("bad.yaml", "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nspec:\n  mode: strict\n");
  test_full_fixture();
  test_defaults();
  test_errors();
  test_missing_file();
  test_approvals_keepalive();
  remove_file("gw.yaml");
  remove_file("p.yaml");
  remove_file("bad.yaml");
  rmdir(tmpdir);
  TEST_MAIN_END();
}
