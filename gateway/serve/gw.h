/* serve/gw.h -- the running gateway: listeners, agents, sessions, store, signals */
#ifndef AIP_SERVE_GW_H
#define AIP_SERVE_GW_H

#include <uv.h>
#include "config/config.h"
#include "engine/dlp.h"
#include "engine/engine.h"
#include "engine/map.h"
#include "gateway/approvals/approvals.h"
#include "gateway/http/http_server.h"
#include "gateway/obs/audit.h"
#include "gateway/obs/metrics.h"

typedef struct aip_gw aip_gw;
typedef struct aip_agent_rt aip_agent_rt;
typedef struct aip_rate_durable aip_rate_durable;
typedef struct aip_policy_watch aip_policy_watch;

struct aip_gw {
  uv_loop_t *loop;
  aip_gateway_config *cfg;
  aip_agent_rt *agents;
  size_t agents_n;
  aip_map agents_by_token; /* sha256(token) -> agent */
  aip_map sessions;        /* id -> session */
  size_t sessions_n;
  aip_http_server *mcp;
  aip_http_server *admin;
  aip_audit *audit;
  aip_store *store;
  aip_rate_durable *rated; /* rate-limit tokens saved before they are granted (rate_durable.c) */
  aip_approvals *approvals;
  aip_map operators_by_token; /* sha256(token) -> operator */
  struct event_stream *event_streams; /* open /v1/approvals/events streams (approvals_api.c) */
  aip_metrics metrics;
  uv_signal_t sigterm, sigint, sighup;
  uv_signal_t sigusr1; /* reopen the audit file (log rotation) */
  uv_timer_t housekeeping; /* session expiry and SSE keep-alives */
  aip_policy_watch *watch;  /* policy and config files (policy_watch.c) */
  int loads_pending;        /* policy loads on the thread pool */
  int started;              /* listening: loads after this are reloads */
  int draining;             /* SIGTERM/SIGINT: finishing the calls in flight */
  uint64_t inflight;        /* requests received and not yet answered */
  uv_timer_t drain_timer;
  uint64_t drain_deadline_ms;
  uv_timer_t approval_keepalive; /* calls held for a human: every approvals.keepalive */
  int stopping;
  int allow_writable_config; /* --allow-writable-config: file permission problems only warn */
  /* trusted_keys in force: the key files every policy must be signed by one of (re-read from
   * the config on reload, so keys rotate without a restart; each policy load reads the files) */
  aip_strlist trusted_keys;
};

/* serve.c; allow_writable_config: --allow-writable-config (development only) */
int aip_serve(const char *config_path, int allow_writable_config);
/* admin.c */
void aip_admin_handle(aip_http_req *req, aip_gw *gw);

/* policy_load.c: load the agent's policy file off the loop and swap it in when compiled (a
 * reload while one runs is queued). aip_policy_reload_all does it for every agent. */
int aip_agent_policy_load(aip_agent_rt *a);
void aip_policy_reload_all(aip_gw *gw, const char *why);
void aip_agent_policy_free(aip_agent_rt *a);
/* What makes a loaded policy one that can come into force, for serve and `aip check` alike:
 * the policy (allow_args regexes, protected paths plus `gw_config_path` when not NULL) and
 * its DLP databases (cache_dir NULL: no cache). On error nothing is returned. */
int aip_agent_policy_compile(const aip_policy_doc *doc, const char *gw_config_path,
                             const char *cache_dir, aip_policy **policy, aip_dlp **dlp,
                             aip_error *err);
/* config_reload.c: what a reload takes from the gateway config (trusted_keys, agent tokens);
 * the rest is reported as needing a restart. */
void aip_config_reload(aip_gw *gw);
/* Makes `paths` the trusted keys for the loads to come, after checking every file loads. */
int aip_policy_keys_set(aip_gw *gw, const aip_strlist *paths, aip_error *err);
/* policy_watch.c: reload when the config or a policy file changes (editors' renames and the
 * Kubernetes ..data symlink swap included). */
int aip_policy_watch_start(aip_gw *gw);
void aip_policy_watch_stop(aip_gw *gw);

#endif
