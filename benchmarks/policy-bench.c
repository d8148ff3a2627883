/* policy-bench.c -- what one policy decision costs (engine only, no I/O), for the three cases
 * of the engine issue and reference/aip.md section 10 (Go: 0.34 us simple, 4.5 us regex):
 *
 *   simple   allowlisted tool, no rules, no protected paths
 *   regex    a rule with 3 allow_args regexes, 5 protected paths, 3 string arguments
 *   500      a 500-rule policy, a call to one of its rules (with one allow_args regex)
 *
 * Then the rate limit: the same policy's check of a tool with a `rate_limit` rule against one
 * without, both with a rate state (as the gateway always passes one) and a clock that moves, so
 * every limited call refills and takes a token; the difference is what a limit costs per call.
 *
 * Each case is timed for `aip_policy_check_tool` on pre-parsed arguments (what Go's IsAllowed
 * measures) with the decision cache off (every decision computed) and on (repeated identical
 * calls, the best case for the cache), and for the full message path (strict parse, classify,
 * method check, tool check) with the cache off. A figure is the median over RUNS batches of the
 * per-call time of each batch.
 *
 *   policy-bench [--runs N] [--iters N]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"

static int runs = 31, iters = 20000;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct bcase {
  const char *name;
  aip_policy_doc *doc;
  aip_policy *cached, *uncached;
  const char *tool;
  cJSON *args;
  const char *msg; /* the same call as JSON-RPC bytes */
  aip_decision_kind want;
} bcase;

static volatile int sink;

static double time_check(const aip_policy *p, const bcase *c) {
  double t[256];
  aip_decision d;
  size_t tl = strlen(c->tool);
  for (int r = 0; r < runs; r++) {
    double t0 = now_ns();
    for (int i = 0; i < iters; i++) {
      aip_policy_check_tool(p, c->tool, tl, c->args, 0, NULL, &d);
      sink += d.kind;
    }
    t[r] = (now_ns() - t0) / iters;
  }
  qsort(t, (size_t)runs, sizeof(double), cmp_d);
  return t[runs / 2];
}

static double time_message(const aip_policy *p, const bcase *c) {
  double t[256];
  size_t n = strlen(c->msg);
  for (int r = 0; r < runs; r++) {
    double t0 = now_ns();
    for (int i = 0; i < iters; i++) {
      cJSON *root = NULL;
      aip_rpc_msg m;
      aip_verdict v;
      if (aip_json_parse(c->msg, n, &root) != AIP_JSON_OK)
        abort();
      aip_rpc_classify(root, &m);
      aip_policy_check_msg(p, &m, 0, NULL, &v);
      sink += v.d.kind;
      cJSON_Delete(root);
    }
    t[r] = (now_ns() - t0) / iters;
  }
  qsort(t, (size_t)runs, sizeof(double), cmp_d);
  return t[runs / 2];
}

#define HEAD "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata:\n  name: bench\nspec:\n"

/* Check of `tool` with rate state `rs`, the clock advancing 1 ms per call. */
static double time_rate(const aip_policy *p, const char *tool, aip_rate_state *rs) {
  double t[256];
  aip_decision d;
  size_t tl = strlen(tool);
  int64_t now = 1;
  for (int r = 0; r < runs; r++) {
    double t0 = now_ns();
    for (int i = 0; i < iters; i++) {
      aip_policy_check_tool(p, tool, tl, NULL, now++, rs, &d);
      sink += d.kind;
    }
    t[r] = (now_ns() - t0) / iters;
  }
  qsort(t, (size_t)runs, sizeof(double), cmp_d);
  return t[runs / 2];
}

/* Limited vs unlimited tool of one policy; prints both and the difference (target < 1 us). */
static int bench_rate_limit(void) {
  const char *yaml = HEAD "  allowed_tools: [read_file, write_file]\n"
                          "  tool_rules:\n    - tool: write_file\n      rate_limit: 1000000000/second\n";
  aip_error err = {{0}};
  aip_policy_doc *doc = NULL;
  aip_policy *p = NULL;
  aip_policy_opts off = {.home = "/home/bench", .cwd = "/home/bench/work", .cache_off = 1};
  if (aip_policy_doc_load_string(yaml, strlen(yaml), "<bench>", &doc, &err) ||
      aip_policy_compile_ex(doc, &off, &p, &err)) {
    fprintf(stderr, "policy-bench: rate limit: %s\n", err.msg);
    aip_policy_doc_free(doc);
    return -1;
  }
  aip_rate_state *rs = aip_rate_state_new(p);
  aip_decision d;
  aip_policy_check_tool(p, "write_file", 10, NULL, 1, rs, &d);
  aip_rate_bucket b;
  int rc = d.kind == AIP_DECISION_ALLOW && aip_rate_bucket_get(rs, "write_file", 10, &b) == 0 ? 0 : -1;
  if (rc) { /* the limited case must really go through a bucket */
    fprintf(stderr, "policy-bench: rate limit: no bucket was used (%s)\n", aip_decision_name(d.kind));
  } else {
    double lim = time_rate(p, "write_file", rs), unl = time_rate(p, "read_file", rs);
    printf("\nrate limit (ns per check, cache off, rate state passed for both)\n");
    printf("%-26s %8.0f\n%-26s %8.0f\n%-26s %8.0f   (target < 1000)\n", "limited tool (write_file)",
           lim, "unlimited tool (read_file)", unl, "difference", lim - unl);
  }
  aip_rate_state_free(rs);
  aip_policy_free(p);
  aip_policy_doc_free(doc);
  return rc;
}

static int setup(bcase *c, const char *name, const char *yaml, const char *tool,
                 const char *args, aip_decision_kind want) {
  aip_error err = {{0}};
  aip_policy_opts off = {.home = "/home/bench", .cwd = "/home/bench/work", .cache_off = 1};
  aip_policy_opts on = {.home = "/home/bench", .cwd = "/home/bench/work"};
  static char msgs[3][4096];
  static int k;
  aip_decision d;

  memset(c, 0, sizeof(*c));
  c->name = name;
  c->tool = tool;
  c->want = want;
  if (aip_policy_doc_load_string(yaml, strlen(yaml), "<bench>", &c->doc, &err) ||
      aip_policy_compile_ex(c->doc, &off, &c->uncached, &err) ||
      aip_policy_compile_ex(c->doc, &on, &c->cached, &err) ||
      aip_json_parse(args, strlen(args), &c->args) != AIP_JSON_OK) {
    fprintf(stderr, "policy-bench: %s: %s\n", name, err.msg);
    return -1;
  }
  snprintf(msgs[k], sizeof(msgs[k]),
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","
           "\"arguments\":%s}}",
           tool, args);
  c->msg = msgs[k++];
  aip_policy_check_tool(c->uncached, tool, strlen(tool), c->args, 0, NULL, &d);
  if (d.kind != want) { /* a benchmark of the wrong outcome measures nothing */
    fprintf(stderr, "policy-bench: %s: decision %s (%s)\n", name, aip_decision_name(d.kind),
            d.reason);
    return -1;
  }
  return 0;
}

static void teardown(bcase *c) {
  aip_policy_free(c->cached);
  aip_policy_free(c->uncached);
  aip_policy_doc_free(c->doc);
  cJSON_Delete(c->args);
}

static char *big_policy(int rules) {
  size_t cap = 64 * (size_t)rules + 512, o = 0;
  char *y = malloc(cap);
  o += (size_t)snprintf(y + o, cap - o, HEAD "  allowed_tools: [read_file]\n  tool_rules:\n");
  for (int i = 0; i < rules; i++)
    o += (size_t)snprintf(y + o, cap - o,
                          "    - tool: tool_%03d\n      allow_args: {q: \"^[a-z]+$\"}\n", i);
  return y;
}

int main(int argc, char **argv) {
  bcase c[3];
  char *big = big_policy(500);
  int rc = 0;

  for (int i = 1; i + 1 < argc; i++) {
    if (!strcmp(argv[i], "--runs"))
      runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--iters"))
      iters = atoi(argv[++i]);
  }
  if (runs < 1 || runs > 255 || iters < 1)
    return fprintf(stderr, "usage: policy-bench [--runs 1..255] [--iters N]\n"), 2;
  if (setup(&c[0], "simple", HEAD "  allowed_tools: [read_file, list_directory, write_file]\n",
            "read_file", "{\"path\":\"/tmp/test.txt\"}", AIP_DECISION_ALLOW) ||
      setup(&c[1], "regex",
            HEAD "  allowed_tools: [fetch]\n"
                 "  protected_paths: [~/.ssh, ~/.aws, /etc/shadow, .env, /etc/aip]\n"
                 "  tool_rules:\n    - tool: fetch\n      allow_args:\n"
                 "        url: \"^https://(api\\\\.)?github\\\\.com/[A-Za-z0-9_./-]+$\"\n"
                 "        method: \"^(GET|HEAD)$\"\n"
                 "        path: \"^/tmp/[a-z0-9_]+\\\\.json$\"\n",
            "fetch",
            "{\"url\":\"https://api.github.com/repos/aip/gateway\",\"method\":\"GET\","
            "\"path\":\"/tmp/out_1.json\"}",
            AIP_DECISION_ALLOW) ||
      setup(&c[2], "500 rules", big, "tool_250", "{\"q\":\"hello\"}", AIP_DECISION_ALLOW)) {
    free(big);
    return 1;
  }
  printf("policy decision, median of %d batches x %d calls (ns per decision)\n", runs, iters);
  printf("%-10s %14s %14s %16s\n", "case", "check, no cache", "check, cached", "message path");
  for (int i = 0; i < 3; i++) {
    double off = time_check(c[i].uncached, &c[i]), on = time_check(c[i].cached, &c[i]);
    double msg = time_message(c[i].uncached, &c[i]);
    printf("%-10s %14.0f %14.0f %16.0f\n", c[i].name, off, on, msg);
  }
  if (bench_rate_limit()) rc = 1;
  for (int i = 0; i < 3; i++)
    teardown(&c[i]);
  free(big);
  return rc;
}
