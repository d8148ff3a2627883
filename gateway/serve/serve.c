/* serve.c -- `aip serve`: load and check everything, open the listeners, run the loop, reload
 * policies on SIGHUP or file changes, and on SIGTERM/SIGINT drain: /readyz goes 503 and new
 * connections are refused at once, the calls in flight get up to `shutdown_grace` to finish,
 * then everything stops cleanly (sessions answered, children stopped, audit flushed). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "gateway/obs/clock.h"
#include "gateway/core/agent.h"
#include "gateway/core/rate_durable.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

#define HOUSEKEEPING_MS 15000
#define DRAIN_POLL_MS 20

static void on_http(aip_http_req *req, void *ctx) { aip_mcp_handle(req, ctx); }
static void on_admin(aip_http_req *req, void *ctx) { aip_admin_handle(req, ctx); }

static void on_housekeeping(uv_timer_t *t) { aip_sessions_housekeeping(t->data); }
static void on_approval_keepalive(uv_timer_t *t) { aip_sessions_approval_keepalive(t->data); }

static void gw_stop(aip_gw *gw) {
  if (gw->stopping) return;
  gw->stopping = 1;
  aip_info("shutting down");
  if (gw->mcp) aip_http_server_stop_listening(gw->mcp);
  for (size_t i = 0; i < gw->agents_n; i++) aip_agent_shutdown(&gw->agents[i]);
  if (gw->mcp) aip_http_server_close(gw->mcp);
  if (gw->admin) aip_http_server_close(gw->admin);
  gw->mcp = gw->admin = NULL;
  uv_close((uv_handle_t *)&gw->housekeeping, NULL);
  uv_close((uv_handle_t *)&gw->drain_timer, NULL);
  aip_policy_watch_stop(gw);
  uv_close((uv_handle_t *)&gw->approval_keepalive, NULL);
  aip_audit_detach(gw->audit);
  aip_rate_durable_give_back(gw);
  /* the store runs its last batch and completions before the approvals they refer to go */
  aip_store_close(gw->store);
  gw->store = NULL;
  aip_rate_durable_close(gw);
  aip_approvals_free(gw->approvals);
  gw->approvals = NULL;
  uv_close((uv_handle_t *)&gw->sigterm, NULL);
  uv_close((uv_handle_t *)&gw->sigint, NULL);
  uv_close((uv_handle_t *)&gw->sighup, NULL);
  uv_close((uv_handle_t *)&gw->sigusr1, NULL);
}

static void on_drain_poll(uv_timer_t *t) {
  aip_gw *gw = t->data;
  if (gw->inflight && (uint64_t)aip_wall_ms() < gw->drain_deadline_ms) return;
  if (gw->inflight)
    aip_warn("shutdown_grace over: %llu request(s) still in flight are cut off",
             (unsigned long long)gw->inflight);
  else
    aip_info("drained: no request in flight");
  gw_stop(gw);
}

static void on_signal(uv_signal_t *s, int signum) {
  aip_gw *gw = s->data;
  if (gw->draining || !gw->started) { /* a second signal, or nothing to drain yet: stop now */
    gw_stop(gw);
    return;
  }
  gw->draining = 1;
  gw->drain_deadline_ms = (uint64_t)aip_wall_ms() + gw->cfg->shutdown_grace_ms;
  aip_info("%s: draining (%llu request(s) in flight, up to %llu ms); a second signal stops at once",
           signum == SIGINT ? "SIGINT" : "SIGTERM", (unsigned long long)gw->inflight,
           (unsigned long long)gw->cfg->shutdown_grace_ms);
  /* New connections go to the other instances; the open ones finish what they started. */
  if (gw->mcp) aip_http_server_stop_listening(gw->mcp);
  uv_timer_start(&gw->drain_timer, on_drain_poll, 0, DRAIN_POLL_MS);
}

static void on_sighup(uv_signal_t *s, int signum) {
  (void)signum;
  aip_policy_reload_all(s->data, "SIGHUP");
}

/* logrotate: `mv audit.jsonl audit.jsonl.1; kill -USR1 <pid>` (docs/audit.md). */
static void on_sigusr1(uv_signal_t *s, int signum) {
  aip_gw *gw = s->data;
  aip_audit_reopen(gw->audit);
}

static void warn_writable(void *ctx, const char *msg) {
  aip_warn("ignored because of --allow-writable-config: %s", msg);
}

/* A config, policy or key that someone else can rewrite is no root of trust (file_perms.c). */
static int check_files(aip_gw *gw, aip_error *err) {
  if (!gw->allow_writable_config) return aip_gateway_config_check_files(gw->cfg, NULL, NULL, err);
  aip_gateway_config_check_files(gw->cfg, warn_writable, NULL, err);
  return 0;
}

static int load(aip_gw *gw, const char *path) {
  aip_error err = {{0}};
  int rc = aip_gateway_config_load_ex(path, AIP_GWCFG_DEFER_POLICIES, &gw->cfg, &err);
  if (!rc) rc = check_files(gw, &err);
  if (!rc) rc = aip_policy_keys_set(gw, &gw->cfg->trusted_keys, &err);
  if (rc) {
    aip_error("%s", err.msg);
    return rc;
  }
  gw->agents = calloc(gw->cfg->agents_n ? gw->cfg->agents_n : 1, sizeof(*gw->agents));
  if (!gw->agents) return -ENOMEM;
  aip_log_set_filter(aip_dlp_log_filter_gw, gw); /* our log passes every agent's DLP */
  for (size_t i = 0; i < gw->cfg->agents_n; i++) {
    aip_agent_config *ac = &gw->cfg->agents[i];
    gw->agents_n = i + 1;
    rc = aip_agent_init(gw, &gw->agents[i], ac, &err);
    if (rc) {
      aip_error("agent %s: %s", ac->name, err.msg);
      return rc;
    }
    rc = aip_map_put(&gw->agents_by_token, ac->token_sha256, sizeof(ac->token_sha256), &gw->agents[i]);
    if (!rc) rc = aip_agent_policy_load(&gw->agents[i]);
    if (rc) return rc;
  }
  /* Policies compile in parallel on the thread pool; serving starts when all are done. A
   * policy that failed (signature check included) leaves only its agent blocked. */
  while (gw->loads_pending) uv_run(gw->loop, UV_RUN_ONCE);
  if (gw->trusted_keys.n)
    aip_info("trusted_keys: %zu key(s); %llu of %zu agent policies failed to load or verify",
             gw->trusted_keys.n, (unsigned long long)gw->metrics.policy_load_errors,
             gw->cfg->agents_n);
  return 0;
}

/* Creates the folders above `path` (like mkdir -p), so a fresh install needs no manual step. */
static void make_parent_dirs(const char *path) {
  char *p = strdup(path);
  if (!p) return;
  for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = 0;
    mkdir(p, 0750); /* EEXIST is fine; other errors surface when the file is opened */
    *s = '/';
  }
  free(p);
}

/* A bucket saved by an earlier run goes back to its agent (agents no longer configured are
 * ignored), so a restart does not reset a rate limit. */
static void restore_bucket(void *data, const char *agent, const char *tool, double tokens,
                           int64_t last_ms) {
  aip_gw *gw = data;
  for (size_t i = 0; i < gw->agents_n; i++) {
    if (strcmp(gw->agents[i].cfg->name, agent) != 0) continue;
    aip_rate_bucket b = {tokens, last_ms, 0, 0};
    aip_rate_bucket_set(gw->agents[i].rate, tool, strlen(tool), &b);
  }
}

/* The store (rate limits, approvals) and the operators who may work the queue. */
static int open_state(aip_gw *gw) {
  aip_error err = {{0}};
  make_parent_dirs(gw->cfg->store_path);
  int rc = aip_store_open(gw->loop, gw->cfg->store_path, &gw->store, &err);
  if (rc) {
    aip_error("%s", err.msg);
    return rc;
  }
  rc = aip_store_bucket_load(gw->store, restore_bucket, gw);
  if (rc) {
    aip_error("%s: cannot read rate-limit buckets", gw->cfg->store_path);
    return rc;
  }
  if ((rc = aip_rate_durable_init(gw))) return rc;
  gw->approvals = aip_approvals_new(gw->loop, gw->store, gw->cfg->approvals_timeout_ms,
                                    gw->cfg->approvals_timeout_ms);
  if (!gw->approvals) return -ENOMEM;
  aip_approvals_set_limits(gw->approvals, gw->cfg->approvals_max_pending_per_agent,
                           gw->cfg->approvals_max_args_size);
  for (size_t i = 0; i < gw->cfg->operators_n; i++) {
    aip_operator_config *op = &gw->cfg->operators[i];
    rc = aip_map_put(&gw->operators_by_token, op->token_sha256, sizeof(op->token_sha256), op);
    if (rc) return rc;
  }
  return 0;
}

/* The admin listener's own connections, and descriptors kept for everything else (the
 * store, the audit file, upstream children's pipes and HTTP connections, policy watches). */
#define ADMIN_MAX_CONNECTIONS 128
#define FD_RESERVE (ADMIN_MAX_CONNECTIONS + 128)

/* limits.max_connections, or when unset what RLIMIT_NOFILE leaves after the reserve: agents
 * at the cap never starve /healthz, /readyz, /metrics or the approval API of descriptors. */
static uint32_t mcp_max_connections(const aip_limits *l) {
  struct rlimit rl;
  uint64_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                        ? (uint64_t)rl.rlim_cur : 1u << 20;
  uint64_t fit = nofile > 2 * FD_RESERVE ? nofile - FD_RESERVE : nofile / 2;
  if (fit == 0) fit = 1;
  if (!l->max_connections) return fit > 10000000 ? 10000000 : (uint32_t)fit;
  if (l->max_connections > fit)
    aip_warn("limits.max_connections %u is more than the open-file limit leaves (%llu of "
             "RLIMIT_NOFILE %llu): raise `ulimit -n`, or agents' connections can starve the admin "
             "listener", l->max_connections, (unsigned long long)fit, (unsigned long long)nofile);
  return l->max_connections;
}

static int listen_all(aip_gw *gw) {
  const aip_limits *l = &gw->cfg->limits;
  aip_http_limits hl = {l->max_header_bytes, l->max_body, l->header_timeout_ms, l->idle_timeout_ms,
                        mcp_max_connections(l)};
  int rc = aip_http_server_start(gw->loop, gw->cfg->listen.host, gw->cfg->listen.port, &hl,
                                 on_http, gw, &gw->mcp);
  if (rc) {
    aip_error("cannot listen on %s:%d: %s", gw->cfg->listen.host, gw->cfg->listen.port, uv_strerror(rc));
    return rc;
  }
  aip_http_limits al = {16384, 65536, 10000, 60000, ADMIN_MAX_CONNECTIONS};
  rc = aip_http_server_start(gw->loop, gw->cfg->admin_listen.host, gw->cfg->admin_listen.port, &al,
                             on_admin, gw, &gw->admin);
  if (rc) {
    aip_error("cannot listen on %s:%d (admin): %s", gw->cfg->admin_listen.host,
              gw->cfg->admin_listen.port, uv_strerror(rc));
    return rc;
  }
  aip_info("aip-gateway %s: MCP on http://%s:%d/mcp (max %u connections), admin on http://%s:%d, "
           "%zu agent(s)", AIP_VERSION, gw->cfg->listen.host, aip_http_server_port(gw->mcp),
           hl.max_connections, gw->cfg->admin_listen.host, aip_http_server_port(gw->admin),
           gw->agents_n);
  return 0;
}

/* The audit queue is full: stop taking agents' requests until the writer catches up (audit.h).
 * The admin listener goes on (health, metrics, approvals). */
static void on_audit_pressure(void *ctx, int full) {
  aip_gw *gw = ctx;
  if (gw->mcp) aip_http_server_pause(gw->mcp, full);
}

static void cleanup(aip_gw *gw) {
  for (size_t i = 0; i < gw->agents_n; i++) aip_agent_free(&gw->agents[i]);
  free(gw->agents);
  aip_map_free(&gw->agents_by_token);
  aip_map_free(&gw->sessions);
  aip_map_free(&gw->operators_by_token);
  aip_audit_close(gw->audit);
  aip_strlist_free(&gw->trusted_keys);
  aip_gateway_config_free(gw->cfg);
}

int aip_serve(const char *config_path, int allow_writable_config) {
  signal(SIGPIPE, SIG_IGN);
  aip_gw gw;
  memset(&gw, 0, sizeof(gw));
  gw.loop = uv_default_loop();
  aip_map_init(&gw.agents_by_token);
  aip_map_init(&gw.sessions);
  aip_map_init(&gw.operators_by_token);
  gw.allow_writable_config = allow_writable_config;
  uv_timer_init(gw.loop, &gw.housekeeping);
  uv_timer_init(gw.loop, &gw.approval_keepalive);
  gw.approval_keepalive.data = &gw;
  uv_signal_init(gw.loop, &gw.sigterm);
  uv_signal_init(gw.loop, &gw.sigint);
  uv_signal_init(gw.loop, &gw.sighup);
  uv_signal_init(gw.loop, &gw.sigusr1);
  uv_timer_init(gw.loop, &gw.drain_timer);
  gw.housekeeping.data = gw.sigterm.data = gw.sigint.data = gw.sighup.data = &gw;
  gw.sigusr1.data = gw.drain_timer.data = &gw;
  int rc = load(&gw, config_path);
  if (!rc) {
    make_parent_dirs(gw.cfg->audit_path);
    aip_audit_opts ao = {gw.cfg->audit_buffer_size, gw.cfg->audit_on_error == AIP_FAILOVER_ALLOW};
    rc = aip_audit_open_ex(gw.loop, gw.cfg->audit_path, &ao, &gw.audit);
    if (rc) aip_error("cannot open audit log %s: %s", gw.cfg->audit_path, strerror(-rc));
  }
  if (!rc) rc = open_state(&gw);
  if (!rc) rc = listen_all(&gw);
  if (!rc)
    rc = aip_audit_on_pressure(gw.audit, gw.cfg->limits.request_timeout_ms, on_audit_pressure, &gw);
  if (!rc) {
    uv_timer_start(&gw.housekeeping, on_housekeeping, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
    uv_timer_start(&gw.approval_keepalive, on_approval_keepalive, gw.cfg->approvals_keepalive_ms,
                   gw.cfg->approvals_keepalive_ms);
    uv_signal_start(&gw.sigterm, on_signal, SIGTERM);
    uv_signal_start(&gw.sigint, on_signal, SIGINT);
    uv_signal_start(&gw.sighup, on_sighup, SIGHUP);
    uv_signal_start(&gw.sigusr1, on_sigusr1, SIGUSR1);
    if (aip_policy_watch_start(&gw)) aip_warn("policy files are not watched: reload with SIGHUP");
    gw.started = 1;
  }
  if (rc) gw_stop(&gw);
  uv_run(gw.loop, UV_RUN_DEFAULT);
  aip_log_set_filter(NULL, NULL); /* the agents' rules go with them */
  cleanup(&gw);
  uv_loop_close(gw.loop);
  return rc ? 1 : 0;
}
