/* metrics.c -- Prometheus text exposition of the gateway's counters (INTERFACES.md section 5;
 * every metric is listed in docs/metrics.md).
 * Rendering walks agents and upstreams: O(agents x servers) per scrape, which is what a
 * scrape every few seconds can afford; nothing is computed on the request path but increments. */
#include "gateway/obs/metrics.h"

#include <string.h>

#include "gateway/core/agent.h"
#include "gateway/core/rate_durable.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"

int aip_metrics_label(aip_buf *b, const char *v) {
  int err = aip_buf_puts(b, "\"");
  for (const char *s = v; !err && *s; s++) {
    /* the exposition format's three escapes; everything else (UTF-8 included) goes as is */
    if (*s == '\\') err = aip_buf_puts(b, "\\\\");
    else if (*s == '"') err = aip_buf_puts(b, "\\\"");
    else if (*s == '\n') err = aip_buf_puts(b, "\\n");
    else err = aip_buf_append(b, s, 1);
  }
  return err ? err : aip_buf_puts(b, "\"");
}

static int head(aip_buf *b, const char *name, const char *type, const char *help) {
  return aip_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample with one or two labels (k2 NULL: one); values are escaped. */
static int sample(aip_buf *b, const char *name, const char *k1, const char *v1, const char *k2,
                  const char *v2, uint64_t v) {
  int err = aip_buf_printf(b, "%s{%s=", name, k1);
  if (!err) err = aip_metrics_label(b, v1);
  if (!err && k2) err = aip_buf_printf(b, ",%s=", k2);
  if (!err && k2) err = aip_metrics_label(b, v2);
  return err ? err : aip_buf_printf(b, "} %llu\n", (unsigned long long)v);
}

static int counter(aip_buf *b, const char *name, const char *help, uint64_t v) {
  int err = head(b, name, "counter", help);
  return err ? err : aip_buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static int gauge(aip_buf *b, const char *name, const char *help, uint64_t v) {
  int err = head(b, name, "gauge", help);
  return err ? err : aip_buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static int histogram(aip_buf *b, const char *name, const char *help, const aip_histogram *h) {
  int err = head(b, name, "histogram", help);
  return err ? err : aip_histogram_render(b, name, "", h);
}

static int render_decisions(aip_gw *gw, aip_buf *b) {
  int err = head(b, "aip_policy_decisions", "counter", "Policy decisions by agent and decision.");
  for (size_t i = 0; !err && i < gw->agents_n; i++)
    for (int k = 0; !err && k < 6; k++)
      err = sample(b, "aip_policy_decisions", "agent", gw->agents[i].cfg->name, "decision",
                   aip_decision_name((aip_decision_kind)k), gw->agents[i].decisions[k]);
  /* RATE_LIMITED is always refused with -32002, monitor mode included (policy_eval.c), so the
   * decision counter is exactly the number of rate-limit rejections. */
  if (!err) err = head(b, "aip_rate_limited_total", "counter",
                       "tools/call requests refused with -32002 (rate limit), by agent.");
  for (size_t i = 0; !err && i < gw->agents_n; i++)
    err = sample(b, "aip_rate_limited_total", "agent", gw->agents[i].cfg->name, NULL, NULL,
                 gw->agents[i].decisions[AIP_DECISION_RATE_LIMITED]);
  static const char *const refused[AIP_REFUSED_N] = {"sessions_quota", "inflight_quota",
                                                     "stream_buffer", "rate_unsaved"};
  if (!err) err = head(b, "aip_refused_total", "counter",
                       "Requests refused for a per-agent quota or a fault, not by policy, by agent and reason.");
  for (size_t i = 0; !err && i < gw->agents_n; i++)
    for (int k = 0; !err && k < AIP_REFUSED_N; k++)
      err = sample(b, "aip_refused_total", "agent", gw->agents[i].cfg->name, "reason", refused[k],
                   gw->agents[i].refused[k]);
  return err;
}

static int render_dlp(aip_gw *gw, aip_buf *b) {
  int err = head(b, "aip_dlp_redactions_total", "counter",
                 "DLP matches redacted (or blocked), by agent and rule.");
  for (size_t i = 0; !err && i < gw->agents_n; i++) {
    aip_agent_rt *a = &gw->agents[i];
    for (size_t r = 0; !err && a->dlp && r < aip_dlp_rule_count(a->dlp); r++)
      err = sample(b, "aip_dlp_redactions_total", "agent", a->cfg->name, "rule",
                   aip_dlp_rule_name(a->dlp, r), a->dlp_redactions[r]);
  }
  return err;
}

static int render_upstreams(aip_gw *gw, aip_buf *b) {
  static const char *const names[] = {"calls", "errors", "timeouts", "restarts"};
  int err = 0;
  for (int m = 0; !err && m < 4; m++) {
    char name[64], help[96];
    snprintf(name, sizeof(name), "aip_upstream_%s_total", names[m]);
    snprintf(help, sizeof(help), "Upstream %s by agent and server.", names[m]);
    err = head(b, name, "counter", help);
    for (size_t i = 0; !err && i < gw->agents_n; i++) {
      aip_agent_rt *a = &gw->agents[i];
      for (size_t s = 0; !err && s < a->cfg->servers_n; s++) {
        const aip_upstream_stats *st = &a->ups[s]->stats;
        uint64_t v = m == 0 ? st->calls : m == 1 ? st->errors : m == 2 ? st->timeouts : st->restarts;
        err = sample(b, name, "agent", a->cfg->name, "server",
                     gw->cfg->servers[a->cfg->servers[s]].name, v);
      }
    }
  }
  if (!err) err = head(b, "aip_upstream_unavailable", "gauge",
                       "1 while the upstream cannot be started (its last start failed).");
  for (size_t i = 0; !err && i < gw->agents_n; i++) {
    aip_agent_rt *a = &gw->agents[i];
    for (size_t s = 0; !err && s < a->cfg->servers_n; s++)
      err = sample(b, "aip_upstream_unavailable", "agent", a->cfg->name, "server",
                   gw->cfg->servers[a->cfg->servers[s]].name,
                   (uint64_t)aip_upstream_cannot_start(a->ups[s]));
  }
  return err;
}

static int render_http(aip_gw *gw, aip_buf *b) {
  const aip_http_stats *st = aip_http_server_stats(gw->mcp);
  int err = counter(b, "aip_http_requests_total", "HTTP requests on the MCP listener.",
                    st->requests_total);
  if (!err) err = head(b, "aip_http_responses_total", "counter",
                       "MCP listener responses by status class.");
  for (int c = 1; !err && c < 6; c++)
    err = aip_buf_printf(b, "aip_http_responses_total{code=\"%dxx\"} %llu\n", c,
                         (unsigned long long)st->responses_by_class[c]);
  if (!err) err = gauge(b, "aip_http_connections", "Open connections on the MCP listener.",
                        st->connections_open);
  if (!err) err = counter(b, "aip_http_connections_refused_total",
                          "MCP listener connections refused (limits.max_connections, or out of descriptors).",
                          st->connections_refused);
  return err;
}

static int render_audit(aip_gw *gw, aip_buf *b) {
  aip_audit_stats st = {0};
  if (gw->audit) aip_audit_stats_get(gw->audit, &st);
  int err = gauge(b, "aip_audit_queue_depth", "Audit records logged and not yet written.", st.depth);
  if (!err) err = counter(b, "aip_audit_records_written_total", "Audit records written.", st.written);
  if (!err) err = counter(b, "aip_audit_write_errors_total", "Failed audit write or reopen attempts.",
                          st.write_errors);
  if (!err) err = counter(b, "aip_audit_dropped_total", "Audit records lost (on_error allow: queue full).",
                          st.dropped);
  if (!err) err = counter(b, "aip_audit_refused_calls_total",
                          "Calls refused because the audit log could not take them (on_error block).",
                          st.refused);
  if (!err) err = gauge(b, "aip_audit_failing", "1 while the audit file cannot be written.", st.failing);
  if (!err) err = counter(b, "aip_audit_backpressure_pauses_total",
                          "Times the audit queue reached buffer_size and agents' requests waited.",
                          st.pauses);
  if (!err) err = gauge(b, "aip_audit_backpressure", "1 while agents' requests wait for the audit writer.",
                        st.paused);
  return err;
}

/* The approval queue's figures (kept by approvals.c) and the store under it. */
static int render_approvals(aip_gw *gw, aip_buf *b) {
  static const char *const outcomes[] = {"approved", "denied", "expired"};
  aip_approvals_stats zero = {0}, *st = gw->approvals ? aip_approvals_stats_of(gw->approvals) : &zero;
  int err = gauge(b, "aip_approvals_waiting", "Calls held for a human decision, agent connected.",
                  gw->approvals ? aip_approvals_waiting(gw->approvals) : 0);
  if (!err) err = gauge(b, "aip_approvals_pending",
                        "Pending approval records, including those whose agent disconnected.",
                        st->pending);
  if (!err) err = head(b, "aip_approval_decisions_total", "counter",
                       "Approvals decided, by outcome (expired: nobody decided in time).");
  for (int i = 0; !err && i < 3; i++)
    err = sample(b, "aip_approval_decisions_total", "outcome", outcomes[i], NULL, NULL,
                 st->decisions[i]);
  if (!err) err = histogram(b, "aip_approval_decision_seconds",
                            "Time from an approval's creation to its decision or expiry.",
                            &st->decision_seconds);
  aip_histogram batches = {0};
  if (gw->store) aip_store_batch_histogram(gw->store, &batches);
  if (!err) err = gauge(b, "aip_store_queue_depth", "Requests waiting for the store thread.",
                        gw->store ? aip_store_queue_depth(gw->store) : 0);
  if (!err) err = gauge(b, "aip_store_last_batch_microseconds", "Duration of the store's last transaction.",
                        gw->store ? aip_store_last_batch_us(gw->store) : 0);
  if (!err) err = histogram(b, "aip_store_batch_seconds",
                            "Duration of the store thread's transactions (one per batch of requests).",
                            &batches);
  if (!err) err = counter(b, "aip_store_write_errors_total",
                          "Store writes that failed (I/O error, a transaction that could not begin or commit).",
                          gw->store ? aip_store_write_errors(gw->store) : 0);
  if (!err) err = gauge(b, "aip_store_failing",
                        "1 while the store's writes fail (rate-limited calls that need a new token are refused).",
                        (gw->store && aip_store_failing(gw->store)) || aip_rate_durable_failing(gw));
  return err;
}

int aip_metrics_render(aip_gw *gw, aip_buf *b) {
  const aip_metrics *m = &gw->metrics;
  int err = render_decisions(gw, b);
  if (!err) err = render_dlp(gw, b);
  if (!err) err = counter(b, "aip_policy_load_errors_total", "Policy loads and reloads that failed (signature checks included).", m->policy_load_errors);
  if (!err) err = counter(b, "aip_policy_reloads_total", "Changed policies brought into force after start.", m->policy_reloads);
  if (!err) err = counter(b, "aip_drain_refused_total", "Requests refused while draining for shutdown.", m->drain_refused);
  if (!err) err = counter(b, "aip_rpc_messages_total", "JSON-RPC messages received from agents.", m->rpc_messages);
  if (!err) err = counter(b, "aip_rpc_rejected_total", "Malformed messages rejected before dispatch.", m->rpc_rejected);
  if (!err) err = counter(b, "aip_auth_failures_total", "Requests with a missing or unknown bearer token.", m->auth_failures);
  if (!err) err = counter(b, "aip_sessions_created_total", "MCP sessions created.", m->sessions_created);
  if (!err) err = counter(b, "aip_sessions_expired_total", "MCP sessions ended for idleness.", m->sessions_expired);
  if (!err) err = counter(b, "aip_streams_resumed_total", "SSE streams resumed with GET + Last-Event-ID.", m->streams_resumed);
  if (!err) err = gauge(b, "aip_active_sessions", "MCP sessions open.", gw->sessions_n);
  if (!err) err = counter(b, "aip_tools_list_partial_total", "tools/list answers missing a failed server's tools.", m->tools_list_partial);
  if (!err) err = counter(b, "aip_tools_hidden_total", "Tools left out of a merged tools/list because one of their names could mean another tool.", m->tools_hidden);
  if (!err) err = render_audit(gw, b);
  if (!err) err = render_approvals(gw, b);
  if (!err) err = render_http(gw, b);
  if (!err) err = render_upstreams(gw, b);
  if (!err) err = histogram(b, "aip_tool_call_duration_seconds", "tools/call latency through the gateway.",
                            &m->tool_call_latency);
  return err;
}
