/* test_gw_router.c -- the merged tool list: pagination across servers, tool_prefix naming,
 * policy filtering, routing to the real name, partial lists when a server fails, and
 * invalidation by notifications/tools/list_changed. Upstreams are in-memory fakes that the
 * test answers by hand. */
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
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
  aip_map_init(&a->tool_map);
  CHECK_INT(aip_policy_compile(ac->policy, &a->policy, &err), 0);
  a->ups = calloc(2, sizeof(*a->ups));
  a->server_failed = calloc(2, 1);
  a->last_lists = calloc(2, sizeof(cJSON *));
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
  cJSON_ArrayForEach(t, a->tools_json) {
    strncat(buf, cJSON_GetObjectItem(t, "name")->valuestring, n - strlen(buf) - 2);
    strncat(buf, ",", n - strlen(buf) - 1);
  }
  return buf;
}

static const char *policy_all =
    "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p}\nspec:\n  mode: monitor\n";

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
  CHECK(a.tools_valid);
  /* cached: no new request upstream */
  int before = fakes[0].n + fakes[1].n;
  fetch(&a);
  CHECK_INT(fakes[0].n + fakes[1].n, before);
  /* list_changed invalidates; the next request fetches again */
  aip_router_tools_changed(&a);
  CHECK(!a.tools_valid);
  fetch(&a);
  CHECK(a.tools_valid);
  agent_drop(&a, &ac);

  /* always and never */
  agent_make(&a, &ac, policy_all, AIP_PREFIX_ALWAYS);
  fetch(&a);
  CHECK_STR(visible_names(&a, buf, sizeof(buf)), "alpha__echo,alpha__a_only,beta__echo,beta__b_only,");
  agent_drop(&a, &ac);
  agent_make(&a, &ac, policy_all, AIP_PREFIX_NEVER);
  fetch(&a);
  CHECK_STR(visible_names(&a, buf, sizeof(buf)), "echo,a_only,b_only,");
  e = aip_router_find(&a, "echo");
  CHECK(e && e->server == 0); /* on a clash the first server listed wins */
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
  CHECK(!a.tools_valid);
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
  CHECK(!a.tools_valid);
  agent_drop(&a, &ac);

  CHECK_INT(uv_loop_close(loop), 0);
  TEST_MAIN_END();
}
