/* test_gw_router.c -- the merged tool list: pagination across servers, tool_prefix naming,
 * policy filtering, routing to the real name, partial lists when a server fails, and
 * invalidation by notifications/tools/list_changed. Upstreams are in-memory fakes that the
 * test answers by hand. */
#include <stdlib.h>
#include <string.h>

#include "gateway/core/agent.h"
#include "gateway/mcp/pending.h"
#include "gateway/serve/gw.h"
#include "test.h"

/* ---- a fake upstream: records requests; the test answers them ---- */

typedef struct fake {
  cJSON *reqs[32];
  int n;
  int fail_list; /* answer tools/list with an error */
  const char *pages[3]; /* tools/list pages as JSON result objects */
} fake;

static int f_start(aip_upstream *u) {
  aip_upstream_transport_up(u);
  return 0;
}
static int f_send(aip_upstream *u, uint64_t id, const char *p, size_t n) {
  fake *f = u->transport;
  cJSON *m = NULL;
  aip_json_parse(p, n, &m);
  if (f->n < 32) f->reqs[f->n++] = m;
  else cJSON_Delete(m);
  return 0;
}
static void f_stop(aip_upstream *u) { aip_upstream_transport_stopped(u); }
static void f_free(aip_upstream *u) {
  fake *f = u->transport;
  for (int i = 0; i < f->n; i++) cJSON_Delete(f->reqs[i]);
  f->n = 0;
}
static const aip_upstream_ops fops = {f_start, f_send, NULL, f_stop, f_free, NULL};

/* Answers every request the fake holds: initialize, then tools/list pages by cursor. */
static void pump(aip_upstream *u) {
  fake *f = u->transport;
  for (int i = 0; i < f->n; i++) {
    cJSON *r = f->reqs[i];
    f->reqs[i] = NULL;
    const cJSON *id = cJSON_GetObjectItem(r, "id");
    const char *method = cJSON_GetObjectItem(r, "method")->valuestring;
    char buf[2048];
    if (!id) {
      cJSON_Delete(r);
      continue;
    }
    if (strcmp(method, "initialize") == 0) {
      snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{}}}", id->valuedouble);
    } else if (f->fail_list) {
      snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"error\":{\"code\":-32603,\"message\":\"boom\"}}", id->valuedouble);
    } else {
      const cJSON *params = cJSON_GetObjectItem(r, "params");
      const cJSON *cur = params ? cJSON_GetObjectItem(params, "cursor") : NULL;
      int page = cur ? atoi(cur->valuestring) : 0;
      snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":%s}", id->valuedouble, f->pages[page]);
    }
    cJSON_Delete(r);
    aip_upstream_transport_message(u, buf, strlen(buf));
    i = -1; /* answering may have queued new requests at the front: rescan */
    int k = 0;
    for (int j = 0; j < f->n; j++)
      if (f->reqs[j]) f->reqs[k++] = f->reqs[j];
    f->n = k;
  }
}

/* ---- fixture ---- */

static uv_loop_t *loop;
static aip_gw gw;
static aip_gateway_config gcfg;
static aip_server_config servers[2] = {{.name = "alpha"}, {.name = "beta"}};
static size_t server_idx[2] = {0, 1};
static aip_limits limits = {.request_timeout_ms = 1000};
static fake fakes[2];

static void agent_make(aip_agent_rt *a, aip_agent_config *ac, const char *policy_yaml,
                       aip_tool_prefix prefix) {
  aip_error err;
  memset(ac, 0, sizeof(*ac));
  ac->name = "bot";
  ac->servers = server_idx;
  ac->servers_n = 2;
  ac->tool_prefix = prefix;
  CHECK_INT(aip_policy_doc_load_string(policy_yaml, strlen(policy_yaml), "p.yaml", &ac->policy, &err), 0);
  memset(a, 0, sizeof(*a));
  a->gw = &gw;
  a->cfg = ac;
  CHECK_INT(aip_policy_compile(ac->policy, &a->policy, &err), 0);
  a->ups = calloc(2, sizeof(*a->ups));
  for (int id = 0; id < AIP_LIST_N; id++) CHECK_INT(aip_list_init(&a->lists[id], (aip_list_id)id, 2), 0);
  for (int i = 0; i < 2; i++) {
    a->ups[i] = calloc(1, sizeof(aip_upstream));
    aip_upstream_init(a->ups[i], &fops, &fakes[i], loop, &servers[i], servers[i].name, &limits, NULL);
  }
}

static void agent_drop(aip_agent_rt *a, aip_agent_config *ac) {
  for (int i = 0; i < 2; i++) aip_upstream_close(a->ups[i]);
  uv_run(loop, UV_RUN_DEFAULT);
  aip_policy_free(a->policy); /* made here, not by policy_load.c */
  a->policy = NULL;
  aip_agent_free(a);
  aip_policy_doc_free(ac->policy);
}

static int ready_calls;
static void on_ready(aip_pending *p) { ready_calls++; }

static void fetch(aip_agent_rt *a) {
  aip_pending p;
  memset(&p, 0, sizeof(p));
  p.on_tools = on_ready;
  ready_calls = 0;
  aip_router_with_tools(a, &p);
  pump(a->ups[0]);
  pump(a->ups[1]);
  pump(a->ups[0]);
  CHECK_INT(ready_calls, 1);
}

static const char *visible_names(aip_agent_rt *a, char *buf, size_t n) {
  buf[0] = 0;
  const cJSON *t;
  cJSON_ArrayForEach(t, a->lists[AIP_LIST_TOOLS].json) {
    strncat(buf, cJSON_GetObjectItem(t, "name")->valuestring, n - strlen(buf) - 2);
    strncat(buf, ",", n - strlen(buf) - 1);
  }
  return buf;
}

static const char *policy_all =
    "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p}\nspec:\n  mode: monitor\n";

/* ---- collisions: every exposed name means exactly one (server, tool) ---- */

#define TOOLS2(x, y) "{\"tools\":[{\"name\":\"" x "\"},{\"name\":\"" y "\"}]}"

/* Lists `p0` on alpha and `p1` on beta under `prefix`; checks the visible list. */
static void one_case(aip_agent_rt *a, aip_agent_config *ac, aip_tool_prefix prefix, const char *p0,
                     const char *p1, const char *want, char *buf, size_t n) {
  fakes[0].pages[0] = p0;
  fakes[1].pages[0] = p1;
  agent_make(a, ac, policy_all, prefix);
  fetch(a);
  CHECK_STR(visible_names(a, buf, n), want);
}

static void test_collisions(aip_agent_rt *a, aip_agent_config *ac, char *buf, size_t n) {
  const char *save0 = fakes[0].pages[0], *save1 = fakes[1].pages[0];
  uint64_t hidden = gw.metrics.tools_hidden;
  fakes[0].fail_list = fakes[1].fail_list = 0;

  /* never: two servers' names equal after the policy's normalization (case, NFKC) */
  one_case(a, ac, AIP_PREFIX_NEVER, TOOLS2("Echo", "x"), TOOLS2("echo", "y"), "x,y,", buf, n);
  CHECK(!aip_router_find(a, "Echo") && !aip_router_find(a, "echo"));
  CHECK(aip_router_ambiguous(a, "ECHO"));
  CHECK_INT(gw.metrics.tools_hidden - hidden, 2);
  agent_drop(a, ac);
  one_case(a, ac, AIP_PREFIX_NEVER, TOOLS2("\xef\xbd\x85\xef\xbd\x83\xef\xbd\x88\xef\xbd\x8f", "x"),
           TOOLS2("echo", "y"), "x,y,", buf, n); /* fullwidth "echo" */
  agent_drop(a, ac);
  one_case(a, ac, AIP_PREFIX_NEVER, TOOLS2("ec\u200bho", "x"), TOOLS2(" echo", "y"), "x,y,", buf,
           n); /* a zero-width space is dropped, white space trimmed */
  CHECK(aip_router_ambiguous(a, "echo"));
  agent_drop(a, ac);
  /* auto: names equal after normalization are shared, so both are prefixed (not hidden) */
  one_case(a, ac, AIP_PREFIX_AUTO, TOOLS2("Echo", "x"), TOOLS2("echo", "y"),
           "alpha__Echo,x,beta__echo,y,", buf, n);
  CHECK(aip_router_find(a, "beta__echo")->server == 1);
  agent_drop(a, ac);

  /* auto: beta's tool literally named like alpha's prefixed name: neither is exposed */
  hidden = gw.metrics.tools_hidden;
  one_case(a, ac, AIP_PREFIX_AUTO, TOOLS2("a_only", "x"), TOOLS2("alpha__a_only", "y"), "x,y,", buf, n);
  CHECK(!aip_router_find(a, "a_only") && !aip_router_find(a, "alpha__a_only"));
  CHECK(aip_router_ambiguous(a, "a_only") && aip_router_ambiguous(a, "alpha__a_only"));
  CHECK_INT(gw.metrics.tools_hidden - hidden, 2);
  /* once per refresh: the cached list logs and counts nothing more */
  fetch(a);
  CHECK_INT(gw.metrics.tools_hidden - hidden, 2);
  agent_drop(a, ac);
  /* ... also when alpha offers no such tool (right now): the name reads as alpha's */
  one_case(a, ac, AIP_PREFIX_AUTO, TOOLS2("a_only", "x"), TOOLS2("ALPHA__ghost", "beta__self"),
           "a_only,x,", buf, n);
  CHECK(aip_router_ambiguous(a, "alpha__ghost") && aip_router_ambiguous(a, "beta__self"));
  agent_drop(a, ac);
  /* never: the same (a policy entry for alpha__ghost means alpha's tool ghost) */
  one_case(a, ac, AIP_PREFIX_NEVER, TOOLS2("a_only", "x"), TOOLS2("alpha__ghost", "y"),
           "a_only,x,y,", buf, n);
  agent_drop(a, ac);

  /* always: server names that contain the separator: alpha's x__t and alpha__x's t */
  servers[1].name = "alpha__x";
  one_case(a, ac, AIP_PREFIX_ALWAYS, TOOLS2("x__t", "u"), TOOLS2("t", "v"), "alpha__u,alpha__x__v,",
           buf, n);
  CHECK(!aip_router_find(a, "alpha__x__t") && aip_router_ambiguous(a, "alpha__x__t"));
  agent_drop(a, ac);
  servers[1].name = "beta";

  /* one server listing a name twice: the same tool, exposed once; two case variants: hidden */
  one_case(a, ac, AIP_PREFIX_AUTO, TOOLS2("dup", "dup"), TOOLS2("Twin", "twin"), "dup,", buf, n);
  CHECK(aip_router_find(a, "dup") && !aip_router_ambiguous(a, "dup"));
  CHECK(aip_router_ambiguous(a, "twin"));
  agent_drop(a, ac);

  fakes[0].pages[0] = save0;
  fakes[1].pages[0] = save1;
}

/* ---- rules hold under every name; only the exposed or qualified name authorizes ---- */

static void test_names_policy(aip_agent_rt *a, aip_agent_config *ac, char *buf, size_t n) {
  /* alpha: echo, a_only; beta: echo, b_only (auto: alpha__echo, a_only, beta__echo, b_only) */
  agent_make(a, ac,
             "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p}\nspec:\n"
             "  allowed_tools: [alpha__echo, beta__echo, alpha__a_only, b_only]\n"
             "  denied_tools: [echo]\n",
             AIP_PREFIX_AUTO);
  fetch(a);
  CHECK_STR(visible_names(a, buf, n), "a_only,b_only,"); /* denied `echo` hides both prefixed */
  agent_drop(a, ac);
  agent_make(a, ac,
             "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p}\nspec:\n"
             "  allowed_tools: [echo, alpha__echo]\n"
             "  tool_rules: [{tool: beta__b_only, action: block}, {tool: a_only}]\n",
             AIP_PREFIX_ALWAYS);
  fetch(a);
  /* `echo` does not authorize beta__echo; the rule for a_only (real name) does not authorize
   * alpha__a_only either */
  CHECK_STR(visible_names(a, buf, n), "alpha__echo,");
  agent_drop(a, ac);
}

static void decide_names(const aip_policy *p, const char *exposed, const char *real,
                         const char *qualified, int64_t now, aip_rate_state *rs, aip_decision *d) {
  aip_tool_names names = {exposed, real, qualified};
  aip_policy_check_tool_names(p, &names, NULL, now, rs, d);
}

static void test_check_names(void) {
#define NAMES_HEAD "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p}\nspec:\n"
#define NAMES_BODY                                                                               \
  "  allowed_tools: [alpha__exec, beta__exec, alpha__add, exec2, alpha__list, beta__rm]\n"                  \
  "  denied_tools: [rm]\n"                                                                       \
  "  tool_rules:\n"                                                                              \
  "    - {tool: exec, action: block}\n"                                                          \
  "    - {tool: add, rate_limit: 2/hour}\n"                                                      \
  "    - {tool: beta__ask, action: ask}\n"                                                       \
  "    - {tool: list, allow_args: {dir: '^/tmp'}}\n"
  const char *modes[2] = {NAMES_HEAD NAMES_BODY, NAMES_HEAD "  mode: monitor\n" NAMES_BODY};
  for (int i = 0; i < 2; i++) {
    aip_policy_doc *doc;
    aip_policy *p;
    aip_error err;
    CHECK_INT(aip_policy_doc_load_string(modes[i], strlen(modes[i]), "p.yaml", &doc, &err), 0);
    CHECK_INT(aip_policy_compile(doc, &p, &err), 0);
    aip_rate_state *rs = aip_rate_state_new(p);
    aip_decision d;
    /* a block for the real name holds under the prefixed name (also in monitor mode) */
    decide_names(p, "alpha__exec", "exec", "alpha__exec", 1, rs, &d);
    CHECK_INT(d.kind, AIP_DECISION_BLOCK);
    decide_names(p, "beta__exec", "exec", "beta__exec", 1, rs, &d);
    CHECK_INT(d.kind, AIP_DECISION_BLOCK);
    /* a rate limit on the real name: one bucket whichever name is used */
    decide_names(p, "alpha__add", "add", "alpha__add", 1, rs, &d);
    CHECK_INT(d.kind, AIP_DECISION_ALLOW);
    decide_names(p, "add", "add", "alpha__add", 2, rs, &d);
    CHECK_INT(d.kind, AIP_DECISION_ALLOW);
    decide_names(p, "alpha__add", "add", "alpha__add", 3, rs, &d);
    CHECK_INT(d.kind, AIP_DECISION_RATE_LIMITED);
    /* an ask rule on the qualified name holds for the bare name; it also authorizes */
    decide_names(p, "ask", "ask", "beta__ask", 1, rs, &d);
    CHECK_INT(d.kind, AIP_DECISION_ASK);
    /* denied real name, though the prefixed one is allowed: refused (enforce) or a violation
     * let through (monitor) */
    decide_names(p, "beta__rm", "rm", "beta__rm", 1, rs, &d);
    CHECK_INT(d.kind, i ? AIP_DECISION_ALLOW_MONITOR : AIP_DECISION_BLOCK);
    CHECK(d.violation && strstr(d.reason, "denied_tools"));
    /* allowed_tools by real name does not authorize the prefixed name */
    decide_names(p, "alpha__exec2", "exec2", "alpha__exec2", 1, rs, &d);
    CHECK_INT(d.kind, i ? AIP_DECISION_ALLOW_MONITOR : AIP_DECISION_BLOCK);
    CHECK(strstr(d.reason, "allowed_tools") != NULL);
    /* ... the qualified name does, bare or prefixed */
    decide_names(p, "exec2", "exec2", "beta__exec2", 1, rs, &d);
    CHECK_INT(d.kind, AIP_DECISION_ALLOW);
    /* allow_args of the real name hold under the prefixed name */
    decide_names(p, "alpha__list", "list", "alpha__list", 1, rs, &d);
    CHECK_INT(d.kind, i ? AIP_DECISION_ALLOW_MONITOR : AIP_DECISION_BLOCK);
    CHECK(strstr(d.reason, "required argument missing") != NULL);
    /* an unknown tool (no entry): the name as called, alone */
    decide_names(p, "exec", NULL, NULL, 1, rs, &d);
    CHECK_INT(d.kind, AIP_DECISION_BLOCK);
    decide_names(p, "nothing", NULL, NULL, 1, rs, &d);
    CHECK_INT(d.kind, i ? AIP_DECISION_ALLOW_MONITOR : AIP_DECISION_BLOCK);
    /* visibility by the same rule */
    aip_tool_names v1 = {"alpha__exec", "exec", "alpha__exec"}, v2 = {"a", "a", "alpha__add"},
                   v3 = {"beta__exec2", "exec2", "beta__exec2"};
    CHECK_INT(aip_policy_tool_visible_names(p, &v1), i);
    CHECK_INT(aip_policy_tool_visible_names(p, &v2), 1);
    CHECK_INT(aip_policy_tool_visible_names(p, &v3), i);
    aip_rate_state_free(rs);
    aip_policy_free(p);
    aip_policy_doc_free(doc);
  }
}

int main(void) {
  loop = uv_default_loop();
  gw.loop = loop;
  gw.cfg = &gcfg;
  gcfg.servers = servers;
  gcfg.servers_n = 2;
  fakes[0].pages[0] = "{\"tools\":[{\"name\":\"echo\",\"inputSchema\":{}},{\"name\":\"a_only\",\"inputSchema\":{}}]}";
  /* beta paginates: two pages */
  fakes[1].pages[0] = "{\"tools\":[{\"name\":\"echo\",\"inputSchema\":{}}],\"nextCursor\":\"1\"}";
  fakes[1].pages[1] = "{\"tools\":[{\"name\":\"b_only\",\"inputSchema\":{}}]}";
  char buf[512];
  aip_agent_rt a;
  aip_agent_config ac;

  /* auto: only the shared name is prefixed; a monitor policy shows everything */
  agent_make(&a, &ac, policy_all, AIP_PREFIX_AUTO);
  fetch(&a);
  CHECK_STR(visible_names(&a, buf, sizeof(buf)), "alpha__echo,a_only,beta__echo,b_only,");
  const aip_tool_entry *e = aip_router_find(&a, "beta__echo");
  CHECK(e && e->server == 1 && strcmp(e->real, "echo") == 0);
  e = aip_router_find(&a, "b_only");
  CHECK(e && e->server == 1 && strcmp(e->real, "b_only") == 0);
  CHECK(aip_router_find(&a, "echo") == NULL);
  CHECK(a.lists[AIP_LIST_TOOLS].valid);
  /* cached: no new request upstream */
  int before = fakes[0].n + fakes[1].n;
  fetch(&a);
  CHECK_INT(fakes[0].n + fakes[1].n, before);
  /* list_changed invalidates; the next request fetches again */
  aip_router_tools_changed(&a);
  CHECK(!a.lists[AIP_LIST_TOOLS].valid);
  fetch(&a);
  CHECK(a.lists[AIP_LIST_TOOLS].valid);
  agent_drop(&a, &ac);

  /* always and never */
  agent_make(&a, &ac, policy_all, AIP_PREFIX_ALWAYS);
  fetch(&a);
  CHECK_STR(visible_names(&a, buf, sizeof(buf)), "alpha__echo,alpha__a_only,beta__echo,beta__b_only,");
  agent_drop(&a, &ac);
  agent_make(&a, &ac, policy_all, AIP_PREFIX_NEVER);
  fetch(&a);
  /* on a clash neither server's tool is exposed (no "first wins": either could be meant) */
  CHECK_STR(visible_names(&a, buf, sizeof(buf)), "a_only,b_only,");
  CHECK(aip_router_find(&a, "echo") == NULL);
  CHECK(aip_router_ambiguous(&a, "echo"));
  CHECK(!aip_router_ambiguous(&a, "a_only"));
  CHECK(!aip_router_ambiguous(&a, "nothing"));
  agent_drop(&a, &ac);

  /* the policy filters the list by the names the agent sees */
  agent_make(&a, &ac,
             "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p}\nspec:\n"
             "  allowed_tools: [beta__echo, a_only, b_only]\n  denied_tools: [a_only]\n",
             AIP_PREFIX_AUTO);
  fetch(&a);
  CHECK_STR(visible_names(&a, buf, sizeof(buf)), "beta__echo,b_only,");
  CHECK(aip_router_find(&a, "alpha__echo") != NULL); /* routable, but the policy blocks it */
  agent_drop(&a, &ac);

  /* one failing server: the other's tools are served, the list is not cached */
  fakes[1].fail_list = 1;
  agent_make(&a, &ac, policy_all, AIP_PREFIX_AUTO);
  fetch(&a);
  CHECK_STR(visible_names(&a, buf, sizeof(buf)), "echo,a_only,");
  CHECK(!a.lists[AIP_LIST_TOOLS].valid);
  CHECK_INT(gw.metrics.tools_list_partial, 1);
  agent_drop(&a, &ac);
  /* a server that fails after a good list: its tools stay routable, but are not shown */
  fakes[1].fail_list = 0;
  agent_make(&a, &ac, policy_all, AIP_PREFIX_AUTO);
  fetch(&a);
  fakes[1].fail_list = 1;
  aip_router_tools_changed(&a);
  fetch(&a);
  CHECK_STR(visible_names(&a, buf, sizeof(buf)), "alpha__echo,a_only,");
  e = aip_router_find(&a, "b_only");
  CHECK(e && e->server == 1);
  agent_drop(&a, &ac);
  /* the same when the first server listed is the broken one */
  fakes[1].fail_list = 0;
  fakes[0].fail_list = 1;
  agent_make(&a, &ac, policy_all, AIP_PREFIX_AUTO);
  fetch(&a);
  CHECK_STR(visible_names(&a, buf, sizeof(buf)), "echo,b_only,");
  CHECK(!a.lists[AIP_LIST_TOOLS].valid);
  agent_drop(&a, &ac);

  test_collisions(&a, &ac, buf, sizeof(buf));
  test_names_policy(&a, &ac, buf, sizeof(buf));
  test_check_names();

  CHECK_INT(uv_loop_close(loop), 0);
  TEST_MAIN_END();
}
