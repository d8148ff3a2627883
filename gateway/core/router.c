/* router.c -- an agent's servers seen as one: tool -> server routing over the merged tool list
 * (core/lists.c fetches, names and merges it, as it does prompts and resources), the upstream
 * hooks, and the agent's life cycle.
 *
 * A server that fails to answer is left out of the merged list (logged and counted) and the
 * list is not cached, so the next request tries again: one broken server never hides the
 * others' tools.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/agent.h"
#include "gateway/core/routes.h"
#include "gateway/core/server_requests.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

/* ---- the merged tool list: lists.c's list AIP_LIST_TOOLS ------------------------------------ */

void aip_router_with_tools(aip_agent_rt *a, aip_pending *p) { aip_lists_with(a, AIP_LIST_TOOLS, p); }

void aip_router_cancel_wait(aip_agent_rt *a, aip_pending *p) {
  aip_lists_cancel_wait(a, p);
  p->waiting_tools = 0;
}

const aip_upstream *aip_router_failed_server(aip_agent_rt *a, const char *exposed) {
  if (a->cfg->tool_prefix == AIP_PREFIX_NEVER) return NULL; /* names carry no server */
  const aip_list *l = &a->lists[AIP_LIST_TOOLS];
  for (size_t s = 0; s < a->cfg->servers_n; s++) {
    const char *name = a->gw->cfg->servers[a->cfg->servers[s]].name;
    size_t n = strlen(name);
    if (l->failed[s] && strncmp(exposed, name, n) == 0 && strncmp(exposed + n, "__", 2) == 0)
      return a->ups[s];
  }
  return NULL;
}

const aip_tool_entry *aip_router_find(aip_agent_rt *a, const char *exposed) {
  return aip_list_find(&a->lists[AIP_LIST_TOOLS], exposed);
}

int aip_router_ambiguous(aip_agent_rt *a, const char *name) {
  return aip_list_ambiguous(&a->lists[AIP_LIST_TOOLS], name);
}

void aip_router_tools_changed(aip_agent_rt *a) { aip_lists_changed(a, AIP_LIST_TOOLS); }

/* ---- upstream hooks ---------------------------------------------------------------------- */

static size_t server_of(aip_agent_rt *a, const aip_upstream *u) {
  size_t server = 0;
  while (server + 1 < a->cfg->servers_n && a->ups[server] != u) server++;
  return server;
}

/* Each notification goes where it belongs (notify.c). */
static void on_upstream_notification(aip_upstream *u, cJSON *msg, void *data) {
  aip_agent_rt *a = data;
  aip_route_notification(a, server_of(a, u), msg);
}

static void on_upstream_reset(aip_upstream *u, void *data) {
  aip_agent_rt *a = data;
  aip_lists_all_changed(a);
  aip_s2c_upstream_reset(a, u); /* its requests to the agent died with it */
  if (!a->gw->draining && !u->closing) aip_route_subs_reset(a, server_of(a, u));
}

static void on_upstream_request(aip_upstream *u, cJSON *msg, aip_upstream_call *related,
                                void *data) {
  aip_s2c_request(data, u, msg, related);
}

/* Answers larger than the agent's dlp.stream_threshold stream through its DLP (mcp_http.c). */
static uint64_t agent_stream_threshold(aip_upstream *u, void *data) {
  const aip_agent_rt *a = data;
  if (!a->policy) return 0;
  uint64_t t = aip_policy_doc_of(a->policy)->dlp.stream_threshold;
  return t ? t : 1024 * 1024;
}

/* ---- agent lifecycle --------------------------------------------------------------------- */

int aip_agent_init(aip_gw *gw, aip_agent_rt *a, const aip_agent_config *cfg, aip_error *err) {
  memset(a, 0, sizeof(*a));
  a->gw = gw;
  a->cfg = cfg;
  /* the policy itself comes from policy_load.c; buckets outlive policy versions */
  a->rate = aip_rate_state_new(NULL);
  if (!a->rate) return aip_error_set(err, -ENOMEM, "out of memory");
  a->ups = calloc(cfg->servers_n ? cfg->servers_n : 1, sizeof(*a->ups));
  if (!a->ups) return aip_error_set(err, -ENOMEM, "out of memory");
  for (int id = 0; id < AIP_LIST_N; id++)
    if (aip_list_init(&a->lists[id], (aip_list_id)id, cfg->servers_n))
      return aip_error_set(err, -ENOMEM, "out of memory");
  aip_upstream_hooks hooks = {on_upstream_notification, on_upstream_reset, a,
                              agent_stream_threshold, on_upstream_request};
  for (size_t i = 0; i < cfg->servers_n; i++) {
    const aip_server_config *sc = &gw->cfg->servers[cfg->servers[i]];
    char label[200];
    snprintf(label, sizeof(label), "%s/%s", cfg->name, sc->name);
    a->ups[i] = sc->url ? aip_upstream_http_new(gw->loop, sc, label, &gw->cfg->limits, &hooks)
                        : aip_upstream_stdio_new(gw->loop, sc, gw->cfg->dir, label,
                                                 &gw->cfg->limits, &hooks);
    if (!a->ups[i]) return aip_error_set(err, -ENOMEM, "out of memory");
  }
  return 0;
}

void aip_agent_shutdown(aip_agent_rt *a) {
  while (a->sessions) aip_session_end(a->gw, a->sessions);
  for (size_t i = 0; a->ups && i < a->cfg->servers_n; i++)
    if (a->ups[i]) aip_upstream_close(a->ups[i]);
}

aip_dlp_run aip_agent_dlp_run(aip_agent_rt *a) {
  return (aip_dlp_run){.dlp = a->dlp, .scratch = a->dlp_scratch,
                       .doc = a->policy ? aip_policy_doc_of(a->policy) : NULL};
}

void aip_agent_count_dlp(aip_agent_rt *a, const aip_dlp_counts *c) {
  if (!a->dlp || !c->total) return;
  for (size_t i = 0; i < c->rules && i < aip_dlp_rule_count(a->dlp); i++)
    a->dlp_redactions[i] += c->n[i];
}

void aip_agent_free(aip_agent_rt *a) {
  aip_dlp_scratch_free(a->dlp_scratch);
  aip_agent_policy_free(a);
  free(a->dlp_redactions);
  for (int id = 0; id < AIP_LIST_N; id++) aip_list_free(&a->lists[id]);
  aip_route_subs_free(a);
  free(a->ups);
  aip_rate_state_free(a->rate);
}
