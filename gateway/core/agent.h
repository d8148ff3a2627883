/* core/agent.h -- one agent at run time: its policy, DLP, rate buckets, upstreams and merged lists
 *
 * Everything here lives on the loop thread. The flow of a tools/call, file by file:
 *   http/http_server.c (bytes -> request) -> mcp/mcp_http.c (transport rules, identity,
 *   session) -> core/mcp_dispatch.c (JSON-RPC method -> policy -> handler) -> core/router.c
 *   (tool -> upstream) -> upstream/upstream.c (ids, progress, timeouts) ->
 *   upstream/upstream_stdio.c or upstream_http.c
 * and back the same way; obs/audit.c and obs/metrics.c record each decision. */
#ifndef AIP_CORE_AGENT_H
#define AIP_CORE_AGENT_H

#include <cJSON.h>
#include "config/config.h"
#include "engine/dlp.h"
#include "engine/engine.h"
#include "engine/map.h"
#include "gateway/core/dlp_apply.h"
#include "gateway/core/lists.h"
#include "gateway/upstream/upstream.h"

typedef struct aip_gw aip_gw;
typedef struct aip_agent_rt aip_agent_rt;
typedef struct aip_session aip_session;
typedef struct aip_pending aip_pending;
typedef struct aip_policy_gen aip_policy_gen;

/* One tool as the agent sees it: an entry of the merged tool list (core/lists.h) -- exposed,
 * real and qualified names, their keys, its server, visible, hidden. */
typedef aip_list_entry aip_tool_entry;

/* Requests refused for a quota or a fault rather than by the policy (aip_refused_total). */
typedef enum aip_refused_reason {
  AIP_REFUSED_SESSIONS = 0, /* the agent's session quota */
  AIP_REFUSED_INFLIGHT,     /* its in-flight quota */
  AIP_REFUSED_STREAM_BUFFER, /* a streamed answer its client did not read (max_stream_buffer) */
  AIP_REFUSED_RATE_UNSAVED, /* a rate-limit token that could not be saved as spent */
  AIP_REFUSED_N
} aip_refused_reason;

struct aip_agent_rt {
  aip_gw *gw;
  const aip_agent_config *cfg;
  /* The policy in force (policy_load.c swaps these on reload). `policy` is NULL until the
   * first load succeeds; then `load_error` says why and every request is refused. */
  aip_policy_gen *gen;
  aip_policy *policy;
  char *load_error;
  int load_error_code;  /* what a blocked agent's requests get: -32001, or -32010 (signature) */
  char *blocked_policy; /* the blocked policy's metadata.name, for the -32010 data */
  int loading, reload_again;
  aip_rate_state *rate; /* this agent's rate-limit buckets (engine arithmetic) */
  int rate_limited;     /* its policy has at least one rate_limit rule */
  aip_dlp *dlp;         /* this agent's DLP rules, NULL when its policy has none */
  aip_dlp_scratch *dlp_scratch;
  uint64_t *dlp_redactions; /* per DLP rule, for aip_dlp_redactions_total */
  aip_upstream **ups; /* one per cfg->servers[i] */
  /* merged tools, prompts, resources, templates (lists.c); each keeps per server whether its
   * last fetch failed and its last good items */
  aip_list lists[AIP_LIST_N];
  struct aip_sub *subs;  /* resource subscriptions of its sessions (route_resources.c) */
  aip_session *sessions; /* this agent's sessions */
  size_t sessions_n;     /* against limits.max_sessions_per_agent */
  uint64_t inflight;     /* its requests not yet answered (limits.max_inflight_per_agent) */
  struct aip_s2c *s2c;   /* its servers' requests awaiting its answer (server_requests.c) */
  uint64_t s2c_n;        /* against limits.max_server_requests_per_agent */
  uint64_t refused[AIP_REFUSED_N]; /* aip_refused_total, by aip_refused_reason */
  uint64_t decisions[6]; /* by aip_decision_kind */
};

/* router.c */
int aip_agent_init(aip_gw *gw, aip_agent_rt *a, const aip_agent_config *cfg, aip_error *err);
void aip_agent_shutdown(aip_agent_rt *a);
void aip_agent_free(aip_agent_rt *a);
/* Runs p->on_tools(p) once the agent's merged tool list is fresh (maybe at once). */
void aip_router_with_tools(aip_agent_rt *a, aip_pending *p);
void aip_router_cancel_wait(aip_agent_rt *a, aip_pending *p);
/* Upstream hooks: the list changed or the instance restarted. */
void aip_router_tools_changed(aip_agent_rt *a);
const aip_tool_entry *aip_router_find(aip_agent_rt *a, const char *exposed);
/* Whether `name` is a name of a tool hidden because it could also mean another tool. */
int aip_router_ambiguous(aip_agent_rt *a, const char *name);
/* Adds a message's DLP counts to the agent's totals (metrics). */
void aip_agent_count_dlp(aip_agent_rt *a, const aip_dlp_counts *c);
/* The agent's DLP with its policy, for the shared helpers (gateway/core/dlp_apply.h). */
aip_dlp_run aip_agent_dlp_run(aip_agent_rt *a);
/* The upstream whose "<server>__" prefix `exposed` carries, if that server failed to list its
 * tools in the last fetch; else NULL. */
const aip_upstream *aip_router_failed_server(aip_agent_rt *a, const char *exposed);

#endif
