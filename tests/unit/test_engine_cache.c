/* test_engine_cache.c -- the decision cache: it serves repeated deterministic decisions,
 * never ask or rate-limited tools, tells argument orders and types apart, stays bounded, and a
 * new compile (a reload) starts empty. Every cached answer must equal a fresh evaluation. */
#include "test.h"
#include "engine_fixture.h"

static const char *const SPEC = "  mode: enforce\n  allowed_tools: [plain]\n"
                                "  protected_paths: [/secret]\n"
                                "  tool_rules:\n"
                                "    - tool: fetch\n      strict_args: true\n"
                                "      allow_args: {url: \"^https://\", n: \"^[0-9]+$\"}\n"
                                "    - {tool: q, action: ask}\n"
                                "    - {tool: lim, rate_limit: 100/second}\n";

static void stats(const aip_policy *p, uint64_t *h, uint64_t *m) {
  aip_policy_cache_stats(p, h, m);
}

static int same(const aip_decision *a, const aip_decision *b) {
  return a->kind == b->kind && a->violation == b->violation && a->error_code == b->error_code &&
         !strcmp(a->reason, b->reason) && !strcmp(a->failed_arg, b->failed_arg) &&
         !strcmp(a->failed_pattern ? a->failed_pattern : "-",
                 b->failed_pattern ? b->failed_pattern : "-") &&
         !strcmp(a->protected_path ? a->protected_path : "-",
                 b->protected_path ? b->protected_path : "-");
}

/* The same call twice on a cached and an uncached policy: equal answers, one hit. */
static void agree(fx_policy *on, fx_policy *off, const char *tool, const char *args) {
  aip_decision a = fx_tool(on->p, NULL, 0, tool, args), b = fx_tool(on->p, NULL, 0, tool, args),
               c = fx_tool(off->p, NULL, 0, tool, args);
  if (!same(&a, &c) || !same(&b, &c))
    fprintf(stderr, "cache disagrees on %s %s: %s / %s / %s\n", tool, args ? args : "-",
            a.reason, b.reason, c.reason);
  CHECK(same(&a, &c));
  CHECK(same(&b, &c));
}

static void test_agreement(void) {
  fx_policy on, off;
  aip_policy_opts no = {.cache_off = 1};
  uint64_t h, m;
  CHECK_INT(fx_load(&on, SPEC), 0);
  CHECK_INT(fx_load_opts(&off, SPEC, NULL, &no), 0);
  agree(&on, &off, "fetch", "{\"url\":\"https://a\",\"n\":1}");
  agree(&on, &off, "fetch", "{\"url\":\"http://a\",\"n\":1}");
  agree(&on, &off, "fetch", "{\"url\":\"https://a\",\"n\":\"x\"}");
  agree(&on, &off, "fetch", "{\"url\":\"https://a\"}");
  agree(&on, &off, "FETCH", "{\"url\":\"https://a\",\"n\":1,\"extra\":2}");
  agree(&on, &off, "plain", "{\"p\":\"/secret/k\"}");
  agree(&on, &off, "plain", "{\"p\":\"/public\"}");
  agree(&on, &off, "nope", "{\"p\":\"/public\"}");
  stats(on.p, &h, &m);
  CHECK_INT(h, 8);
  CHECK_INT(m, 8);
  stats(off.p, &h, &m);
  CHECK_INT(h + m, 0);
  /* the hit says so */
  CHECK_INT(fx_tool(on.p, NULL, 0, "plain", "{\"p\":\"/public\"}").cached, 1);
  CHECK_INT(fx_tool(off.p, NULL, 0, "plain", "{\"p\":\"/public\"}").cached, 0);
  fx_free(&on);
  fx_free(&off);
}

/* The key keeps message order (strict_args names the first undeclared argument) and value
 * types ("1" and 1 stringify alike here, but are different arguments). */
static void test_key(void) {
  fx_policy f;
  aip_decision d;
  CHECK_INT(fx_load(&f, SPEC), 0);
  d = fx_tool(f.p, NULL, 0, "fetch", "{\"url\":\"https://a\",\"n\":1,\"a\":1,\"b\":1}");
  CHECK_STR(d.failed_arg, "a");
  d = fx_tool(f.p, NULL, 0, "fetch", "{\"url\":\"https://a\",\"n\":1,\"b\":1,\"a\":1}");
  CHECK_STR(d.failed_arg, "b");
  CHECK_INT(d.cached, 0);
  CHECK_INT(fx_tool(f.p, NULL, 0, "fetch", "{\"url\":\"https://a\",\"n\":1}").kind,
            AIP_DECISION_ALLOW);
  CHECK_INT(fx_tool(f.p, NULL, 0, "fetch", "{\"url\":\"https://a\",\"n\":\"1\"}").cached, 0);
  CHECK_INT(fx_tool(f.p, NULL, 0, "fetch", "{\"url\":\"https://a\",\"n\":[1]}").kind,
            AIP_DECISION_BLOCK);
  CHECK_INT(fx_tool(f.p, NULL, 0, "fetch", "{\"url\":\"https://a\",\"n\":{\"1\":1}}").kind,
            AIP_DECISION_BLOCK);
  fx_free(&f);
}

static void test_not_cached(void) {
  fx_policy f;
  aip_rate_state *rs;
  uint64_t h, m;
  char big[3000];
  CHECK_INT(fx_load(&f, SPEC), 0);
  rs = aip_rate_state_new(f.p);
  for (int i = 0; i < 3; i++) {
    CHECK_INT(fx_tool(f.p, NULL, 0, "q", "{\"x\":\"/public\"}").kind, AIP_DECISION_ASK);
    CHECK_INT(fx_tool(f.p, rs, 0, "lim", "{\"x\":\"/public\"}").kind, AIP_DECISION_ALLOW);
  }
  stats(f.p, &h, &m);
  CHECK_INT(h + m, 0);
  /* a tool whose outcome ignores the arguments needs no cache */
  fx_policy g;
  CHECK_INT(fx_load(&g, "  allowed_tools: [t]\n"), 0);
  fx_tool(g.p, NULL, 0, "t", "{\"x\":1}");
  fx_tool(g.p, NULL, 0, "t", "{\"x\":1}");
  stats(g.p, &h, &m);
  CHECK_INT(h + m, 0);
  fx_free(&g);
  /* arguments too large for a key are evaluated every time */
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  char args[3100];
  snprintf(args, sizeof(args), "{\"p\":\"%s\"}", big);
  CHECK_INT(fx_tool(f.p, NULL, 0, "plain", args).kind, AIP_DECISION_ALLOW);
  CHECK_INT(fx_tool(f.p, NULL, 0, "plain", args).cached, 0);
  aip_rate_state_free(rs);
  fx_free(&f);
}

/* One slot: every new entry replaces the last, answers stay right. */
static void test_bounded(void) {
  fx_policy f;
  aip_policy_opts one = {.cache_entries = 1};
  char args[64];
  uint64_t h, m;
  CHECK_INT(fx_load_opts(&f, SPEC, NULL, &one), 0);
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < 50; i++) {
      snprintf(args, sizeof(args), "{\"p\":\"/%s/%d\"}", i % 2 ? "secret" : "pub", i);
      CHECK_INT(fx_tool(f.p, NULL, 0, "plain", args).kind,
                i % 2 ? AIP_DECISION_PROTECTED_PATH : AIP_DECISION_ALLOW);
    }
  stats(f.p, &h, &m);
  CHECK_INT(h, 0);
  CHECK_INT(m, 100);
  fx_free(&f);
}

/* A reload compiles a new policy: its cache starts empty and serves the new rules. */
static void test_reload(void) {
  fx_policy v1, v2;
  uint64_t h, m;
  CHECK_INT(fx_load(&v1, "  allowed_tools: [t]\n  protected_paths: [/a]\n"), 0);
  CHECK_INT(fx_tool(v1.p, NULL, 0, "t", "{\"p\":\"/b\"}").kind, AIP_DECISION_ALLOW);
  CHECK_INT(fx_tool(v1.p, NULL, 0, "t", "{\"p\":\"/b\"}").cached, 1);
  CHECK_INT(fx_load(&v2, "  allowed_tools: [t]\n  protected_paths: [/a, /b]\n"), 0);
  fx_free(&v1);
  stats(v2.p, &h, &m);
  CHECK_INT(h + m, 0);
  CHECK_INT(fx_tool(v2.p, NULL, 0, "t", "{\"p\":\"/b\"}").kind, AIP_DECISION_PROTECTED_PATH);
  fx_free(&v2);
}

int main(void) {
  test_agreement();
  test_key();
  test_not_cached();
  test_bounded();
  test_reload();
  TEST_MAIN_END();
}
