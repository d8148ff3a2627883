/* gateway.h -- the running gateway: agents, sessions and the modules that serve them.
 *
 * Everything here lives on the loop thread. The flow of a tools/call, file by file:
 *   http_server.c (bytes -> request) -> mcp_http.c (transport rules, identity, session)
 *   -> mcp_dispatch.c (JSON-RPC method -> policy -> handler) -> router.c (tool -> upstream)
 *   -> upstream.c (ids, progress, timeouts) -> upstream_stdio.c (child process)
 * and back the same way; audit.c and metrics.c record each decision.
 */
#ifndef AIP_GATEWAY_H
#define AIP_GATEWAY_H

#include <uv.h>

#include "config/config.h"
#include "config/signing.h"
#include "engine/dlp.h"
#include "gateway/dlp_apply.h"
#include "engine/engine.h"
#include "engine/map.h"
#include "gateway/approvals.h"
#include "gateway/audit.h"
#include "gateway/http_server.h"
#include "gateway/metrics.h"
#include "gateway/upstream.h"

#define AIP_SESSION_ID_LEN 32 /* hex of 16 random bytes */

typedef struct aip_gw aip_gw;
typedef struct aip_agent_rt aip_agent_rt;
typedef struct aip_session aip_session;
typedef struct aip_exchange aip_exchange;
typedef struct aip_pending aip_pending;
typedef struct aip_policy_gen aip_policy_gen;
typedef struct aip_policy_watch aip_policy_watch;
typedef struct aip_ask_elicit aip_ask_elicit;
typedef struct aip_rate_wait aip_rate_wait;
typedef struct aip_rate_durable aip_rate_durable;

/* One tool as the agent sees it. */
typedef struct aip_tool_entry {
  char *exposed; /* the name the agent uses (maybe "<server>__<tool>") */
  char *real;    /* the upstream's name */
  char *qualified; /* "<server>__<real>": a policy entry may name the tool so in any tool_prefix */
  char *keys[2]; /* exposed and qualified names normalized as the policy does (collision keys) */
  size_t server; /* index into the agent's upstreams */
  int visible;   /* policy could allow it */
  int hidden;    /* one of its names could also mean another tool: not exposed, not routed */
} aip_tool_entry;

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
  char *server_failed; /* per server: its tools/list failed in the last fetch */
  cJSON **last_lists;  /* per server: its last good tool list (NULL before the first) */
  /* merged tool list (router.c) */
  aip_tool_entry *tools;
  size_t tools_n;
  aip_map tool_map;  /* exposed name -> entry (hidden tools left out) */
  aip_map tool_keys; /* keys[] of every entry -> entry, to tell "ambiguous" from "unknown" */
  cJSON *tools_json; /* visible tools, names as exposed */
  int tools_valid;
  int tools_fetching;
  int tools_stale;   /* changed while fetching: fetch again next time */
  aip_pending **waiters; /* pendings waiting for the list */
  size_t waiters_n, waiters_cap;
  void *fetch;       /* the fan-out in progress (router.c) */
  aip_session *sessions; /* this agent's sessions */
  size_t sessions_n;     /* against limits.max_sessions_per_agent */
  uint64_t inflight;     /* its requests not yet answered (limits.max_inflight_per_agent) */
  uint64_t refused[AIP_REFUSED_N]; /* aip_refused_total, by aip_refused_reason */
  uint64_t decisions[6]; /* by aip_decision_kind */
};

struct aip_session {
  char id[AIP_SESSION_ID_LEN + 1];
  aip_agent_rt *agent;
  char version[16]; /* negotiated protocol version */
  int initialized;  /* notifications/initialized received */
  cJSON *client_caps;
  uint64_t last_used_ms;
  aip_http_req *get_stream; /* the open GET SSE stream, if any */
  aip_pending *pending;     /* requests in flight */
  aip_session *prev, *next; /* in agent->sessions */
};

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
/* cmd_approvals.c: `aip approvals ...` */
int aip_cmd_approvals(int argc, char **argv);
/* cmd_audit.c: `aip audit verify|tools` */
int aip_cmd_audit(int argc, char **argv);
/* cmd_policy_sign.c: `aip sign-policy ...`, `aip verify-policy ...` */
int aip_cmd_sign_policy(int argc, char **argv);
int aip_cmd_verify_policy(int argc, char **argv);

/* http_guard.c: the Origin and Host rules of both listeners (DNS rebinding); `bind` is the
 * listener's configured host. NULL when the request may go on, else the name of the header
 * that fails ("Origin", "Host"): answer 403. */
const char *aip_http_guard(const aip_gateway_config *cfg, const char *bind,
                           const aip_http_req *req);

/* admin.c */
void aip_admin_handle(aip_http_req *req, aip_gw *gw);
/* approvals_api.c: returns 1 when the path was an approval API path (and was answered) */
int aip_approvals_api_handle(aip_http_req *req, aip_gw *gw);
/* The operators changed (reload): event streams opened with a token no longer listed end. */
void aip_approvals_api_operators_changed(aip_gw *gw);
/* approvals_page.c: the operator page and its files; returns 1 when it answered */
int aip_approvals_page_handle(aip_http_req *req);

/* mcp_http.c: the /mcp endpoint */
void aip_mcp_handle(aip_http_req *req, aip_gw *gw);
void aip_session_end(aip_gw *gw, aip_session *s);
/* Sends an unrelated server->client message on the session's GET stream (dropped if none). */
void aip_session_push(aip_session *s, const cJSON *msg);
void aip_sessions_housekeeping(aip_gw *gw);
/* Tells every call held for a human that it is still waiting (progress or SSE comment). */
void aip_sessions_approval_keepalive(aip_gw *gw);
const char *aip_mcp_negotiate(const char *requested);

/* mcp_dispatch.c: one JSON-RPC message of a session */
void aip_dispatch(aip_exchange *ex, aip_session *s, aip_rpc_msg *m);
/* A tools/call that waited for its rate-limit token (rate_durable.c) is checked again from the
 * start; `root` (its message) is taken. */
void aip_dispatch_tools_call_again(aip_pending *p, cJSON *root);
/* Fails the tools/call (its `params`) closed: its rate-limit token could not be saved as spent.
 * Audited (RATE_LIMITED, with the reason), answered -32603 with {"tool": name}. */
void aip_dispatch_rate_unsaved(aip_pending *p, const cJSON *params);

/* rate_durable.c (see there). init puts every agent's rate state in durable mode. */
int aip_rate_durable_init(aip_gw *gw);
void aip_rate_durable_close(aip_gw *gw);
/* Clean shutdown, before the store closes: writes back tokens reserved and never granted. */
void aip_rate_durable_give_back(aip_gw *gw);
/* After a tools/call check: tops up, in the background, the reserve of saved tokens of every
 * bucket the check may have spent from (one per name of the tool: engine/policy_names.c). */
void aip_rate_durable_after_check(aip_agent_rt *a, const aip_tool_names *names);
/* The check said rate_wait: `p` waits for the save of the next tokens of a bucket of the tool's
 * names, then its message `root` (taken on success) is checked again. -EIO when no save can be
 * started (fail closed). */
int aip_rate_durable_wait(aip_pending *p, const aip_tool_names *names, cJSON *root);
void aip_rate_durable_forget(aip_pending *p); /* p is freed before its save is done */

int aip_rate_durable_failing(aip_gw *gw);     /* a bucket's save failed and is being retried */
/* A human's answer to an `ask` that came from elsewhere than the queue (ask_elicit.c): audited
 * and acted on exactly as an operator's decision (APPROVED forwards the call, DENIED -32004,
 * EXPIRED -32005). `by` names the approver, `reason` the refusal (either may be NULL). */
void aip_ask_outcome(aip_pending *p, aip_approval_status st, const char *by, const char *reason);
/* The call ended before anyone answered its `ask` (cancelled, session ended): audit only. */
void aip_ask_abandoned(aip_pending *p, const char *why);

/* ask_elicit.c: `ask_via: elicitation`, the agent's own user approves through its MCP client */
/* Asks on the call's stream: 0, or < 0 when this session cannot be asked (no elicitation
 * capability, protocol before 2025-06-18, the POST is gone): the caller uses the queue. */
int aip_ask_elicit_start(aip_pending *p);
/* Whether a call of the session waits for an answer with this id. */
int aip_ask_elicit_waiting(const aip_session *s, const cJSON *id);
/* The client's response or error to our elicitation: 0 routed, -ENOENT no such question. */
int aip_ask_elicit_answer(aip_session *s, const aip_rpc_msg *m);
/* The call is ending while it still waits: withdraw the question, audit DENIED with `why`. */
void aip_ask_elicit_drop(aip_pending *p, const char *why);

/* exchange: the HTTP POST a request came in (mcp_http.c) */
struct aip_pending {
  aip_exchange *ex;
  aip_session *sess;
  cJSON *client_id;          /* the downstream id */
  aip_upstream_call *call;   /* when forwarded */
  uint64_t start_ns;
  int waiting_tools;         /* queued in the router until the tool list is fresh */
  void (*on_tools)(aip_pending *p); /* what to do then */
  void (*on_final)(aip_pending *p, const cJSON *answer); /* runs once, whatever the outcome */
  char *tool;                /* tools/call: the exposed name (for audit) */
  cJSON *args;               /* tools/call: arguments copy (for audit) */
  cJSON *params;             /* tools/call: params to forward once routed (the whole request
                                while it waits for the tool list: mcp_dispatch.c) */
  int decision_kind;         /* tools/call: ALLOW or ALLOW_MONITOR */
  aip_approval_wait *approval; /* tools/call: waiting for a human */
  aip_ask_elicit *elicit;    /* tools/call: waiting for the agent's user (ask_elicit.c) */
  aip_rate_wait *rate_wait;  /* tools/call: waiting for its rate-limit token to be saved */
  aip_buf dlp_audit;         /* tools/call: `[{"rule":..,"count":..}]` of its answer, or empty */
  struct aip_pending_stream *stream; /* its answer is streaming (mcp_http.c) */
  aip_pending *prev, *next;  /* in sess->pending */
};
aip_pending *aip_pending_new(aip_exchange *ex, aip_session *s, const cJSON *id);
/* Delivers a message for the pending request: progress (final 0) or its answer (final 1, the
 * pending is freed). `msg` is owned; its id is replaced by the client's. */
void aip_pending_emit(aip_pending *p, cJSON *msg, int final);
/* Lets a forwarded call's large answer stream through DLP to the agent (upstream.h's sink;
 * docs/dlp.md, "Streaming in the gateway"). Set it on the call right after starting it. */
extern const aip_upstream_sink aip_pending_sink;
/* Aborts every answer of the agent that is streaming (its DLP is about to be replaced). */
void aip_agent_streams_abort(aip_agent_rt *a);
/* Switches the request's HTTP answer to an SSE stream now (a call that will wait long). */
void aip_pending_hold(aip_pending *p);
/* Whether the agent still holds the HTTP request the call came in (it can still be told). */
int aip_pending_connected(const aip_pending *p);
/* Answers with a result (owned) or an error built by aip_rpc_error. */
void aip_pending_result(aip_pending *p, cJSON *result);
void aip_pending_error(aip_pending *p, int code, const char *message);
void aip_pending_error_raw(aip_pending *p, aip_buf *err_json); /* pre-rendered error bytes */

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
/* The agent's DLP with its policy, for the shared helpers (gateway/dlp_apply.h). */
aip_dlp_run aip_agent_dlp_run(aip_agent_rt *a);
/* The upstream whose "<server>__" prefix `exposed` carries, if that server failed to list its
 * tools in the last fetch; else NULL. */
const aip_upstream *aip_router_failed_server(aip_agent_rt *a, const char *exposed);

#endif
