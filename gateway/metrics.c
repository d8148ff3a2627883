/* metrics.c -- Prometheus text exposition of the gateway's counters (INTERFACES.md section 5).
 * Rendering walks agents and upstreams: O(agents x servers) per scrape, which is what a
 * scrape every few seconds can afford; nothing is computed on the request path but increments. */
#include "gateway/metrics.h"

#include <string.h>

#include "gateway/gateway.h"

static const double bounds[AIP_LATENCY_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                   0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                   1,      5};

void aip_histogram_observe(aip_histogram *h, double seconds) {
  int i = 0;
  while (i < AIP_LATENCY_BUCKETS && seconds > bounds[i]) i++;
  h->counts[i]++;
  h->sum_seconds += seconds;
  h->count++;
}

int aip_histogram_render(aip_buf *b, const char *name, const char *labels, const aip_histogram *h) {
  uint64_t cum = 0;
  const char *sep = labels[0] ? "," : "";
  int err = 0;
  for (int i = 0; !err && i <= AIP_LATENCY_BUCKETS; i++) {
    cum += h->counts[i];
    if (i < AIP_LATENCY_BUCKETS)
      err = aip_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                           (unsigned long long)cum);
    else
      err = aip_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                           (unsigned long long)cum);
  }
  const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
  if (!err) err = aip_buf_printf(b, "%s_sum%s%s%s %.9f\n", name, open, labels, close, h->sum_seconds);
  if (!err)
    err = aip_buf_printf(b, "%s_count%s%s%s %llu\n", name, open, labels, close,
                         (unsigned long long)h->count);
  return err;
}

static int counter(aip_buf *b, const char *name, const char *help, uint64_t v) {
  return aip_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                        (unsigned long long)v);
}

static int gauge(aip_buf *b, const char *name, const char *help, uint64_t v) {
  return aip_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, name,
                        (unsigned long long)v);
}

static int render_decisions(aip_gw *gw, aip_buf *b) {
  int err = aip_buf_puts(b, "# HELP aip_policy_decisions Policy decisions by agent and decision.\n"
                            "# TYPE aip_policy_decisions counter\n");
  for (size_t i = 0; !err && i < gw->agents_n; i++)
    for (int k = 0; !err && k < 6; k++)
      err = aip_buf_printf(b, "aip_policy_decisions{agent=\"%s\",decision=\"%s\"} %llu\n",
                           gw->agents[i].cfg->name, aip_decision_name((aip_decision_kind)k),
                           (unsigned long long)gw->agents[i].decisions[k]);
  return err;
}

static int render_dlp(aip_gw *gw, aip_buf *b) {
  int err = aip_buf_puts(b, "# HELP aip_dlp_redactions_total DLP matches redacted (or blocked), by agent and rule.\n"
                            "# TYPE aip_dlp_redactions_total counter\n");
  for (size_t i = 0; !err && i < gw->agents_n; i++) {
    aip_agent_rt *a = &gw->agents[i];
    for (size_t r = 0; !err && a->dlp && r < aip_dlp_rule_count(a->dlp); r++) {
      err = aip_buf_printf(b, "aip_dlp_redactions_total{agent=\"%s\",rule=", a->cfg->name);
      const char *name = aip_dlp_rule_name(a->dlp, r);
      if (!err) err = aip_buf_json_string(b, name, strlen(name), 0);
      if (!err) err = aip_buf_printf(b, "} %llu\n", (unsigned long long)a->dlp_redactions[r]);
    }
  }
  return err;
}

static int render_upstreams(aip_gw *gw, aip_buf *b) {
  static const char *const names[] = {"calls", "errors", "timeouts", "restarts"};
  int err = 0;
  for (int m = 0; !err && m < 4; m++) {
    err = aip_buf_printf(b, "# HELP aip_upstream_%s_total Upstream %s by agent and server.\n"
                            "# TYPE aip_upstream_%s_total counter\n", names[m], names[m], names[m]);
    for (size_t i = 0; !err && i < gw->agents_n; i++) {
      aip_agent_rt *a = &gw->agents[i];
      for (size_t s = 0; !err && s < a->cfg->servers_n; s++) {
        const aip_upstream_stats *st = &a->ups[s]->stats;
        uint64_t v = m == 0 ? st->calls : m == 1 ? st->errors : m == 2 ? st->timeouts : st->restarts;
        err = aip_buf_printf(b, "aip_upstream_%s_total{agent=\"%s\",server=\"%s\"} %llu\n",
                             names[m], a->cfg->name, gw->cfg->servers[a->cfg->servers[s]].name,
                             (unsigned long long)v);
      }
    }
  }
  return err;
}

static int render_http(aip_gw *gw, aip_buf *b) {
  const aip_http_stats *st = aip_http_server_stats(gw->mcp);
  int err = counter(b, "aip_http_requests_total", "HTTP requests on the MCP listener.",
                    st->requests_total);
  if (!err) err = aip_buf_puts(b, "# HELP aip_http_responses_total MCP listener responses by status class.\n"
                                  "# TYPE aip_http_responses_total counter\n");
  for (int c = 1; !err && c < 6; c++)
    err = aip_buf_printf(b, "aip_http_responses_total{code=\"%dxx\"} %llu\n", c,
                         (unsigned long long)st->responses_by_class[c]);
  if (!err) err = gauge(b, "aip_http_connections", "Open connections on the MCP listener.",
                        st->connections_open);
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
  if (!err) err = gauge(b, "aip_active_sessions", "MCP sessions open.", gw->sessions_n);
  if (!err) err = counter(b, "aip_tools_list_partial_total", "tools/list answers missing a failed server's tools.", m->tools_list_partial);
  if (!err) err = render_audit(gw, b);
  if (!err) err = gauge(b, "aip_approvals_waiting", "Calls held for a human decision.",
                        gw->approvals ? aip_approvals_waiting(gw->approvals) : 0);
  if (!err) err = gauge(b, "aip_store_queue_depth", "Requests waiting for the store thread.",
                        gw->store ? aip_store_queue_depth(gw->store) : 0);
  if (!err) err = gauge(b, "aip_store_last_batch_microseconds", "Duration of the store's last transaction.",
                        gw->store ? aip_store_last_batch_us(gw->store) : 0);
  if (!err) err = render_http(gw, b);
  if (!err) err = render_upstreams(gw, b);
  if (!err) err = aip_buf_puts(b, "# HELP aip_tool_call_duration_seconds tools/call latency through the gateway.\n"
                                  "# TYPE aip_tool_call_duration_seconds histogram\n");
  if (!err) err = aip_histogram_render(b, "aip_tool_call_duration_seconds", "", &m->tool_call_latency);
  return err;
}
