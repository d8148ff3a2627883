/* test_engine_ratelimit.c -- token buckets for `rate_limit` (reference/aip.md section 3.7) on
 * an injected clock, the caller-owned state (per agent, persistable, reload-proof), and the
 * AIP error bytes of appendix A for rate limits and refused approvals. */
#include "test.h"
#include "engine_fixture.h"

#define KIND(f, rs, now, tool, args) fx_tool((f)->p, rs, now, tool, args).kind
#define OK AIP_DECISION_ALLOW
#define LIMITED AIP_DECISION_RATE_LIMITED

/* reference TestRateLimitEnforcement: "2/minute" = two at once, then one every 30 s. */
static void test_bucket(void) {
  fx_policy f;
  aip_rate_state *rs;
  aip_decision d;
  CHECK_INT(fx_load(&f, "  tool_rules:\n    - {tool: t, rate_limit: 2/minute}\n"), 0);
  rs = aip_rate_state_new(f.p);
  CHECK_INT(KIND(&f, rs, 1000, "t", NULL), OK);
  CHECK_INT(KIND(&f, rs, 1000, "t", NULL), OK);
  d = fx_tool(f.p, rs, 1000, "t", NULL);
  CHECK_INT(d.kind, LIMITED);
  CHECK_INT(d.violation, 1);
  CHECK_INT(d.error_code, AIP_ERR_RATE_LIMITED);
  CHECK_STR(d.error_message, "Rate limit exceeded");
  CHECK_STR(d.reason, "rate limit exceeded for tool \"t\"");
  CHECK_INT(KIND(&f, rs, 30999, "t", NULL), LIMITED);
  CHECK_INT(KIND(&f, rs, 31000, "t", NULL), OK); /* 30 s refilled one token */
  CHECK_INT(KIND(&f, rs, 31000, "t", NULL), LIMITED);
  /* a long pause refills to the burst, not beyond */
  CHECK_INT(KIND(&f, rs, 10000000, "t", NULL), OK);
  CHECK_INT(KIND(&f, rs, 10000000, "t", NULL), OK);
  CHECK_INT(KIND(&f, rs, 10000000, "t", NULL), LIMITED);
  /* a clock that steps back refills nothing and breaks nothing */
  CHECK_INT(KIND(&f, rs, 5000, "t", NULL), LIMITED);
  CHECK_INT(KIND(&f, rs, 10030000, "t", NULL), OK);
  /* NULL state: no rate limiting (tests, aip check) */
  for (int i = 0; i < 5; i++)
    CHECK_INT(KIND(&f, NULL, 0, "t", NULL), OK);
  aip_rate_state_free(rs);
  fx_free(&f);
}

static void test_periods(void) {
  fx_policy f;
  aip_rate_state *rs;
  CHECK_INT(fx_load(&f, "  tool_rules:\n    - {tool: s, rate_limit: 3/second}\n"
                        "    - {tool: h, rate_limit: 1/hour}\n    - {tool: d, rate_limit: 1/day}\n"),
            0);
  rs = aip_rate_state_new(f.p);
  for (int i = 0; i < 3; i++)
    CHECK_INT(KIND(&f, rs, 0, "s", NULL), OK);
  CHECK_INT(KIND(&f, rs, 333, "s", NULL), LIMITED);
  CHECK_INT(KIND(&f, rs, 334, "s", NULL), OK); /* 1/3 s per token */
  CHECK_INT(KIND(&f, rs, 0, "h", NULL), OK);
  CHECK_INT(KIND(&f, rs, 3599999, "h", NULL), LIMITED);
  CHECK_INT(KIND(&f, rs, 3600000, "h", NULL), OK);
  CHECK_INT(KIND(&f, rs, 0, "d", NULL), OK);
  CHECK_INT(KIND(&f, rs, 86399999, "d", NULL), LIMITED);
  CHECK_INT(KIND(&f, rs, 86400000, "d", NULL), OK);
  aip_rate_state_free(rs);
  fx_free(&f);
}

/* Checked before everything: monitor mode does not soften it, a call blocked later for its
 * arguments still spends its token, and tools without a limit are untouched. */
static void test_order(void) {
  fx_policy f;
  aip_rate_state *rs;
  CHECK_INT(fx_load(&f, "  mode: monitor\n  allowed_tools: [free]\n  tool_rules:\n"
                        "    - tool: t\n      rate_limit: 1/minute\n"
                        "      allow_args: {x: \"^ok$\"}\n"),
            0);
  rs = aip_rate_state_new(f.p);
  CHECK_INT(KIND(&f, rs, 0, "t", "{\"x\":\"bad\"}"), AIP_DECISION_ALLOW_MONITOR);
  CHECK_INT(KIND(&f, rs, 0, "t", "{\"x\":\"ok\"}"), LIMITED); /* even in monitor mode */
  for (int i = 0; i < 10; i++)
    CHECK_INT(KIND(&f, rs, 0, "free", NULL), OK);
  fx_free(&f);
  aip_rate_state_free(rs);

  CHECK_INT(fx_load(&f, "  tool_rules:\n    - tool: t\n      rate_limit: 1/minute\n"
                        "      allow_args: {x: \"^ok$\"}\n"),
            0);
  rs = aip_rate_state_new(f.p);
  CHECK_INT(KIND(&f, rs, 0, "t", "{\"x\":\"bad\"}"), AIP_DECISION_BLOCK);
  CHECK_INT(KIND(&f, rs, 0, "t", "{\"x\":\"ok\"}"), LIMITED);
  aip_rate_state_free(rs);
  fx_free(&f);
}

/* One state per agent: agents do not share buckets. */
static void test_per_agent(void) {
  fx_policy f;
  aip_rate_state *a, *b;
  CHECK_INT(fx_load(&f, "  tool_rules:\n    - {tool: t, rate_limit: 1/minute}\n"), 0);
  a = aip_rate_state_new(f.p);
  b = aip_rate_state_new(f.p);
  CHECK_INT(KIND(&f, a, 0, "t", NULL), OK);
  CHECK_INT(KIND(&f, a, 0, "t", NULL), LIMITED);
  CHECK_INT(KIND(&f, b, 0, "t", NULL), OK);
  aip_rate_state_free(a);
  aip_rate_state_free(b);
  fx_free(&f);
}

/* What the store will do: read every bucket, write them back into a new state. */
static void test_persistence(void) {
  fx_policy f;
  aip_rate_state *rs, *copy;
  aip_rate_bucket b;
  const char *name;
  size_t len, n = 0;
  CHECK_INT(fx_load(&f, "  tool_rules:\n    - {tool: Search, rate_limit: 2/minute}\n"), 0);
  rs = aip_rate_state_new(f.p);
  CHECK_INT(aip_rate_bucket_get(rs, "search", 6, &b), -ENOENT);
  CHECK_INT(KIND(&f, rs, 500, "SEARCH", NULL), OK);
  CHECK_INT(aip_rate_bucket_get(rs, "search", 6, &b), 0); /* keyed by the normalized name */
  CHECK(b.tokens > 0.999 && b.tokens < 1.001);
  CHECK_INT(b.last_ms, 500);
  copy = aip_rate_state_new(NULL);
  for (size_t i = 0; aip_rate_bucket_next(rs, &i, &name, &len, &b); n++)
    CHECK_INT(aip_rate_bucket_set(copy, name, len, &b), 0);
  CHECK_INT(n, 1);
  CHECK_INT(KIND(&f, copy, 500, "search", NULL), OK);
  CHECK_INT(KIND(&f, copy, 500, "search", NULL), LIMITED); /* the copy remembered the first */
  b.tokens = 0;
  b.last_ms = 1000;
  CHECK_INT(aip_rate_bucket_set(rs, "search", 6, &b), 0);
  CHECK_INT(KIND(&f, rs, 1000, "search", NULL), LIMITED);
  aip_rate_state_free(rs);
  aip_rate_state_free(copy);
  fx_free(&f);
}

/* Durable mode: only tokens reserved (and saved) ahead are granted; what a crash forgets
 * (reserved, never granted) is spent; a failed save gives the tokens back. */
static void test_durable(void) {
  fx_policy f;
  aip_rate_state *rs;
  aip_rate_bucket save, b;
  aip_decision d;
  CHECK_INT(fx_load(&f, "  tool_rules:\n    - {tool: t, rate_limit: 30/hour}\n"), 0);
  rs = aip_rate_state_new(f.p);
  aip_rate_state_set_durable(rs, 1);
  CHECK_INT(aip_rate_reserve(rs, "t", 1, 0, &save), 0); /* unknown bucket */
  d = fx_tool(f.p, rs, 0, "t", NULL);
  CHECK_INT(d.kind, LIMITED);
  CHECK_INT(d.rate_wait, 1); /* a token is there, but not saved as spent yet */
  CHECK_INT(aip_rate_reserve(rs, "t", 1, 0, &save), 3); /* a tenth of 30 */
  CHECK(save.tokens > 26.999 && save.tokens < 27.001); /* what a crash finds */
  CHECK_INT(save.reserved + save.pending, 0);
  CHECK_INT(aip_rate_reserve(rs, "t", 1, 0, &save), 0); /* one save at a time */
  CHECK_INT(fx_tool(f.p, rs, 0, "t", NULL).rate_wait, 1);
  aip_rate_settle(rs, "t", 1, 1);
  for (int i = 0; i < 3; i++)
    CHECK_INT(KIND(&f, rs, 0, "t", NULL), OK);
  CHECK_INT(fx_tool(f.p, rs, 0, "t", NULL).rate_wait, 1);
  /* a failed save: the tokens go back, nothing is granted */
  CHECK_INT(aip_rate_reserve(rs, "t", 1, 0, &save), 3);
  aip_rate_settle(rs, "t", 1, 0);
  CHECK_INT(aip_rate_bucket_get(rs, "t", 1, &b), 0);
  CHECK(b.tokens > 26.999 && b.tokens < 27.001);
  CHECK_INT(b.reserved + b.pending, 0);
  /* drain: 27 more, then limited without rate_wait */
  int granted = 0;
  for (int i = 0; i < 40; i++) {
    d = fx_tool(f.p, rs, 0, "t", NULL);
    if (d.kind == OK) granted++;
    else if (d.rate_wait && aip_rate_reserve(rs, "t", 1, 0, &save)) aip_rate_settle(rs, "t", 1, 1);
  }
  CHECK_INT(granted, 27);
  d = fx_tool(f.p, rs, 0, "t", NULL);
  CHECK_INT(d.kind, LIMITED);
  CHECK_INT(d.rate_wait, 0);
  CHECK_INT(aip_rate_reserve(rs, "t", 1, 0, &save), 0);
  /* reserved tokens count against the burst: a long pause refills only to 30 in all */
  CHECK_INT(aip_rate_reserve(rs, "t", 1, 120000, &save), 1); /* 1 refilled in 2 min */
  aip_rate_settle(rs, "t", 1, 1);
  CHECK_INT(aip_rate_reserve(rs, "t", 1, 100000000, &save), 2);
  aip_rate_settle(rs, "t", 1, 1);
  CHECK_INT(aip_rate_bucket_get(rs, "t", 1, &b), 0);
  CHECK_INT(b.reserved, 3);
  CHECK(b.tokens > 26.999 && b.tokens < 27.001);
  /* the last tokens of a bucket in flight to the store: a call waits for them, it is not
   * refused (2/hour: the top-up after the first call takes the second token) */
  aip_rate_state_free(rs);
  fx_free(&f);
  CHECK_INT(fx_load(&f, "  tool_rules:\n    - {tool: t, rate_limit: 2/hour}\n"), 0);
  rs = aip_rate_state_new(f.p);
  aip_rate_state_set_durable(rs, 1);
  CHECK_INT(fx_tool(f.p, rs, 0, "t", NULL).rate_wait, 1);
  CHECK_INT(aip_rate_reserve(rs, "t", 1, 0, &save), 1);
  aip_rate_settle(rs, "t", 1, 1);
  CHECK_INT(KIND(&f, rs, 0, "t", NULL), OK);
  CHECK_INT(aip_rate_reserve(rs, "t", 1, 0, &save), 1); /* the top-up, still being saved */
  d = fx_tool(f.p, rs, 0, "t", NULL);
  CHECK_INT(d.kind, LIMITED);
  CHECK_INT(d.rate_wait, 1);
  aip_rate_settle(rs, "t", 1, 1);
  CHECK_INT(KIND(&f, rs, 0, "t", NULL), OK);
  d = fx_tool(f.p, rs, 0, "t", NULL);
  CHECK_INT(d.kind, LIMITED);
  CHECK_INT(d.rate_wait, 0); /* now the limit itself */
  /* a state that is not durable (the wrapper) ignores all this */
  aip_rate_state_set_durable(rs, 0);
  CHECK_INT(KIND(&f, rs, 100000000, "t", NULL), OK);
  aip_rate_state_free(rs);
  fx_free(&f);
}

/* A reload keeps the buckets and applies the new limits (a lower burst cuts the bucket). */
static void test_reload(void) {
  fx_policy v1, v2;
  aip_rate_state *rs;
  CHECK_INT(fx_load(&v1, "  tool_rules:\n    - {tool: t, rate_limit: 10/minute}\n"), 0);
  CHECK_INT(fx_load(&v2, "  tool_rules:\n    - {tool: t, rate_limit: 2/minute}\n"), 0);
  rs = aip_rate_state_new(v1.p);
  CHECK_INT(KIND(&v1, rs, 0, "t", NULL), OK); /* 9 left */
  CHECK_INT(KIND(&v2, rs, 0, "t", NULL), OK); /* cut to 2, one taken */
  CHECK_INT(KIND(&v2, rs, 0, "t", NULL), OK);
  CHECK_INT(KIND(&v2, rs, 0, "t", NULL), LIMITED);
  aip_rate_state_free(rs);
  fx_free(&v1);
  fx_free(&v2);
}

/* reference/aip.md appendix A, byte for byte. */
static void test_error_bytes(void) {
  fx_policy f;
  aip_rate_state *rs;
  fx_result r;
  const char *call = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
                     "\"t\",\"arguments\":{}}}";
  CHECK_INT(fx_load(&f, "  tool_rules:\n    - {tool: t, rate_limit: 1/minute}\n"
                        "    - {tool: q, action: ask}\n"),
            0);
  rs = aip_rate_state_new(f.p);
  CHECK(fx_forwarded((fx_result[]){fx_send(f.p, rs, 0, call)}));
  r = fx_send(f.p, rs, 0, call);
  CHECK_STR(r.reply, "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32002,\"message\":\"Rate "
                     "limit exceeded\",\"data\":{\"reason\":\"Rate limit exceeded for t. Try again "
                     "later.\",\"tool\":\"t\"}}}");
  /* ask: -32004 when the human says no, -32005 when nobody answers */
  aip_decision d = fx_tool(f.p, NULL, 0, "q", NULL);
  CHECK_INT(d.kind, AIP_DECISION_ASK);
  CHECK_INT(d.error_code, 0);
  cJSON *id = cJSON_CreateNumber(3);
  aip_buf b;
  aip_buf_init(&b);
  aip_decision_ask_refused(&d, 0);
  CHECK_INT(d.kind, AIP_DECISION_BLOCK);
  CHECK_INT(d.violation, 1);
  CHECK_INT(aip_decision_error(&b, id, &d, "t"), 0);
  CHECK_STR(b.data, "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32004,\"message\":\"User "
                    "denied\",\"data\":{\"reason\":\"User explicitly denied the tool call via "
                    "approval dialog\",\"tool\":\"t\"}}}");
  aip_buf_reset(&b);
  d = fx_tool(f.p, NULL, 0, "q", NULL);
  aip_decision_ask_refused(&d, 1);
  CHECK_INT(aip_decision_error(&b, id, &d, "t"), 0);
  CHECK_STR(b.data, "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32005,\"message\":\"User "
                    "approval timeout\",\"data\":{\"reason\":\"User did not respond to approval "
                    "dialog within timeout\",\"tool\":\"t\"}}}");
  aip_buf_free(&b);
  cJSON_Delete(id);
  aip_rate_state_free(rs);
  fx_free(&f);
}

int main(void) {
  test_bucket();
  test_periods();
  test_order();
  test_per_agent();
  test_persistence();
  test_durable();
  test_reload();
  test_error_bytes();
  TEST_MAIN_END();
}
