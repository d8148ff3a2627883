/* mcp_dispatch.c -- one JSON-RPC message from an agent: policy first, then the handler.
 *
 * Every message that has a method passes the agent's method check before anything else; a
 * tools/call then passes the tool check. Blocked requests get the AIP error; blocked
 * notifications get nothing (a reply to a notification is a JSON-RPC violation the reference
 * implementation commits). Each decision on a tools/call, and each blocked method, is audited.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gateway/clock.h"
#include "gateway/log.h"

static const char *mode_name(const aip_policy *p) {
  return aip_policy_doc_of(p)->mode == AIP_MODE_MONITOR ? "monitor" : "enforce";
}

/* The audit copy of arguments never holds what DLP would redact (as the AIP reference does,
 * whatever scan_requests says). Returns a redacted copy, or NULL when nothing matched. */
static cJSON *redact_for_audit(aip_agent_rt *a, const cJSON *args) {
  if (!a->dlp || !args) return NULL;
  aip_buf raw, out;
  aip_buf_init(&raw);
  aip_buf_init(&out);
  cJSON *copy = NULL;
  aip_json_print(&raw, args);
  if (aip_dlp_redact_json(a->dlp, a->dlp_scratch, AIP_DLP_RESPONSE | AIP_DLP_WHOLE, raw.data,
                          raw.len, &out, NULL) == 1)
    aip_json_parse(out.data, out.len, &copy);
  aip_buf_free(&raw);
  aip_buf_free(&out);
  return copy;
}

static void audit_dlp(aip_session *s, const char *method, const aip_decision *d,
                      const char *decision, const char *tool, const cJSON *args,
                      int64_t latency_us, const char *dlp) {
  aip_agent_rt *a = s->agent;
  const aip_policy_doc *doc = aip_policy_doc_of(a->policy);
  cJSON *redacted = redact_for_audit(a, args);
  if (redacted) args = redacted;
  aip_audit_rec r = {
      .agent = a->cfg->name,
      .session_id = s->id,
      .direction = "upstream",
      .method = method,
      .policy_mode = mode_name(a->policy),
      .policy_name = doc->name,
      .policy_version = doc->version,
      .tool = tool,
      .args = args,
      .latency_us = latency_us,
      .dlp = dlp,
  };
  aip_audit_log_decision(a->gw->audit, &r, d, decision);
  cJSON_Delete(redacted);
}

static void audit(aip_session *s, const char *method, const aip_decision *d,
                  const char *decision, const char *tool, const cJSON *args, int64_t latency_us) {
  audit_dlp(s, method, d, decision, tool, args, latency_us, NULL);
}

static void count(aip_session *s, aip_decision_kind k) { s->agent->decisions[k]++; }

/* Hands the tool's rate bucket (if it has one) to the store, which writes it behind. */
static void persist_bucket(aip_agent_rt *a, const char *tool) {
  if (!a->gw->store || !a->rate_limited) return; /* no rate rules: no malloc on the hot path */
  char *n = aip_normalize_name(tool, strlen(tool));
  aip_rate_bucket b;
  if (n && aip_rate_bucket_get(a->rate, n, strlen(n), &b) == 0)
    aip_store_bucket_put(a->gw->store, a->cfg->name, n, b.tokens, b.last_ms);
  free(n);
}

/* Answers with the AIP error of a decision that stops the request. */
static void deny(aip_pending *p, const aip_decision *d, const char *tool_or_method) {
  aip_buf b;
  aip_buf_init(&b);
  aip_decision_error(&b, p->client_id, d, tool_or_method);
  aip_pending_error_raw(p, &b);
  aip_buf_free(&b);
}

/* ---- initialize, ping ---------------------------------------------------------------------- */

static void do_initialize(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  const cJSON *pv = cJSON_IsObject(m->params)
                        ? cJSON_GetObjectItemCaseSensitive(m->params, "protocolVersion") : NULL;
  const char *v = aip_mcp_negotiate(cJSON_IsString(pv) ? pv->valuestring : NULL);
  snprintf(s->version, sizeof(s->version), "%s", v);
  const cJSON *caps = cJSON_IsObject(m->params)
                          ? cJSON_GetObjectItemCaseSensitive(m->params, "capabilities") : NULL;
  if (cJSON_IsObject(caps)) s->client_caps = cJSON_Duplicate(caps, 1);
  cJSON *r = cJSON_CreateObject();
  cJSON_AddStringToObject(r, "protocolVersion", v);
  cJSON *c = cJSON_AddObjectToObject(r, "capabilities");
  cJSON *tools = cJSON_AddObjectToObject(c, "tools");
  cJSON_AddTrueToObject(tools, "listChanged");
  cJSON *info = cJSON_AddObjectToObject(r, "serverInfo");
  cJSON_AddStringToObject(info, "name", "aip-gateway");
  cJSON_AddStringToObject(info, "version", AIP_VERSION);
  aip_pending_result(p, r);
}

/* ---- tools/list ---------------------------------------------------------------------------- */

static void tools_list_ready(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  cJSON *r = cJSON_CreateObject();
  cJSON_AddItemToObject(r, "tools", a->tools_json ? cJSON_Duplicate(a->tools_json, 1)
                                                  : cJSON_CreateArray());
  aip_pending_result(p, r);
}

static void do_tools_list(aip_pending *p, aip_rpc_msg *m) {
  /* One page holds every tool, so no cursor we issued exists. */
  if (cJSON_IsObject(m->params) && cJSON_GetObjectItemCaseSensitive(m->params, "cursor")) {
    aip_pending_error(p, AIP_RPC_INVALID_PARAMS, "Invalid cursor");
    return;
  }
  p->on_tools = tools_list_ready;
  aip_router_with_tools(p->sess->agent, p);
}

/* ---- tools/call ---------------------------------------------------------------------------- */

/* Every forwarded call is audited exactly once, when it ends: answered, failed, timed out,
 * cancelled or cut short by the end of its session. */
static void audit_forwarded(aip_pending *p, const cJSON *answer) {
  uint64_t ns = uv_hrtime() - p->start_ns;
  aip_histogram_observe(&p->sess->agent->gw->metrics.tool_call_latency, (double)ns / 1e9);
  aip_decision d = {.kind = (aip_decision_kind)p->decision_kind};
  d.violation = d.kind == AIP_DECISION_ALLOW_MONITOR;
  audit_dlp(p->sess, "tools/call", &d, NULL, p->tool, p->args, (int64_t)(ns / 1000),
            p->dlp_audit.data);
}

static void call_answered(aip_upstream_call *call, cJSON *msg, int final, void *data) {
  aip_pending *p = data;
  if (final) p->call = NULL; /* the call is over: nothing left to cancel */
  aip_pending_emit(p, msg, final);
}

static void upstream_unavailable(aip_pending *p, const aip_upstream *u) {
  char msg[300];
  snprintf(msg, sizeof(msg), "upstream %s unavailable: %s", u->label,
           u->last_error[0] ? u->last_error : "not running");
  aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, msg);
}

static void tools_call_ready(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  const aip_tool_entry *t = aip_router_find(a, p->tool);
  /* "<server>__tool" of a server whose tool list could not be fetched: the tool may well exist,
   * the server is what is missing. Saying "unknown tool" would mislead the agent. */
  const aip_upstream *down = t ? NULL : aip_router_failed_server(a, p->tool);
  if (down) {
    upstream_unavailable(p, down);
    return;
  }
  if (!t) {
    char msg[300];
    snprintf(msg, sizeof(msg), "Unknown tool: %.256s", p->tool);
    aip_pending_error(p, AIP_RPC_INVALID_PARAMS, msg);
    return;
  }
  cJSON *params = p->params;
  p->params = NULL;
  cJSON_ReplaceItemInObjectCaseSensitive(params, "name", cJSON_CreateString(t->real));
  aip_upstream *u = a->ups[t->server];
  int err = aip_upstream_call_start(u, "tools/call", params, call_answered, p, &p->call);
  if (err) upstream_unavailable(p, u);
  else aip_upstream_call_set_sink(p->call, &aip_pending_sink); /* large answers stream */
}

/* ---- ask: a human decides ------------------------------------------------------------------ */

static void approval_outcome(void *data, int err, aip_approval_status st, const aip_approval *rec) {
  aip_pending *p = data;
  p->approval = NULL; /* the handle is gone after this call */
  aip_decision d = {.kind = AIP_DECISION_ASK};
  if (err) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "approval queue unavailable");
    return;
  }
  if (st == AIP_APPROVAL_APPROVED) {
    d.kind = AIP_DECISION_ALLOW;
    snprintf(d.reason, sizeof(d.reason), "approved by %s", rec && rec->decided_by ? rec->decided_by : "operator");
    audit(p->sess, "tools/call", &d, "APPROVED", p->tool, p->args, -1);
    p->on_final = audit_forwarded;
    tools_call_ready(p);
    return;
  }
  aip_decision_ask_refused(&d, st == AIP_APPROVAL_EXPIRED);
  if (rec && rec->reason) snprintf(d.reason, sizeof(d.reason), "%s", rec->reason);
  audit(p->sess, "tools/call", &d, st == AIP_APPROVAL_EXPIRED ? "EXPIRED" : "DENIED", p->tool,
        p->args, -1);
  deny(p, &d, p->tool);
}

/* The tool list is fresh: the approval record can name the server. */
static void ask_ready(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  const aip_tool_entry *t = aip_router_find(a, p->tool);
  if (!t || !a->gw->approvals) {
    char msg[300];
    snprintf(msg, sizeof(msg), t ? "approval queue unavailable" : "Unknown tool: %.256s", p->tool);
    aip_pending_error(p, t ? AIP_RPC_INTERNAL_ERROR : AIP_RPC_INVALID_PARAMS, msg);
    return;
  }
  /* Operators (and the store) see the arguments DLP-redacted; the retry-once hash is taken
   * over the real ones, so two calls that differ only in a redacted secret never match. */
  aip_buf args, shown;
  aip_buf_init(&args);
  aip_buf_init(&shown);
  if (p->args) aip_json_print(&args, p->args);
  cJSON *redacted = redact_for_audit(a, p->args);
  if (redacted) aip_json_print(&shown, redacted);
  cJSON_Delete(redacted);
  const char *server = a->gw->cfg->servers[a->cfg->servers[t->server]].name;
  p->approval = aip_approvals_ask(a->gw->approvals, a->cfg->name, server, p->tool,
                                  shown.len ? shown.data : p->args ? args.data : "{}",
                                  p->args ? args.data : "{}", approval_outcome, p);
  aip_buf_free(&args);
  aip_buf_free(&shown);
  if (!p->approval) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "approval queue unavailable");
    return;
  }
  aip_pending_hold(p); /* the answer may take minutes: keep the stream alive meanwhile */
}

/* Request-side DLP (dlp.scan_requests): arguments that carry a secret are blocked (-32001,
 * default), redacted before they go upstream, or let through with a warning, per
 * on_request_match. Returns 1 when the call was answered here. */
static int scan_request(aip_pending *p, aip_rpc_msg *m) {
  aip_agent_rt *a = p->sess->agent;
  const aip_dlp_config *cfg = &aip_policy_doc_of(a->policy)->dlp;
  if (!a->dlp || !cfg->scan_requests) return 0;
  aip_buf raw, out;
  aip_buf_init(&raw);
  aip_buf_init(&out);
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, a->dlp);
  aip_json_print(&raw, m->root);
  int rc = aip_dlp_redact_json(a->dlp, a->dlp_scratch, AIP_DLP_REQUEST, raw.data, raw.len, &out, &c);
  int answered = 0;
  const char *mode = cfg->on_request_match ? cfg->on_request_match : "block";
  aip_agent_count_dlp(a, &c);
  aip_dlp_counts_json(a->dlp, &c, &p->dlp_audit);
  if (rc < 0 && aip_policy_doc_of(a->policy)->failover.on_dlp_error != AIP_FAILOVER_ALLOW) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Request withheld: DLP could not scan it");
    answered = 1;
  } else if (rc == 1 && strcmp(mode, "block") == 0) {
    aip_decision d = {.kind = AIP_DECISION_BLOCK, .violation = 1, .error_code = AIP_ERR_FORBIDDEN,
                      .error_message = "Forbidden"};
    snprintf(d.reason, sizeof(d.reason), "sensitive data in arguments (DLP)");
    p->on_final = NULL;
    audit_dlp(p->sess, "tools/call", &d, NULL, p->tool, p->args, -1, p->dlp_audit.data);
    deny(p, &d, p->tool);
    answered = 1;
  } else if (rc == 1 && strcmp(mode, "redact") == 0) {
    cJSON *red = NULL;
    if (aip_json_parse(out.data, out.len, &red) == AIP_JSON_OK) {
      cJSON *params = cJSON_DetachItemFromObjectCaseSensitive(red, "params");
      cJSON_Delete(p->params);
      p->params = params;
    }
    cJSON_Delete(red);
  }
  aip_dlp_counts_free(&c);
  aip_buf_free(&raw);
  aip_buf_free(&out);
  return answered;
}

static void do_tools_call(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  const cJSON *name = cJSON_IsObject(m->params)
                          ? cJSON_GetObjectItemCaseSensitive(m->params, "name") : NULL;
  const cJSON *args = cJSON_IsObject(m->params)
                          ? cJSON_GetObjectItemCaseSensitive(m->params, "arguments") : NULL;
  if (!cJSON_IsString(name) || (args && !cJSON_IsObject(args))) {
    aip_pending_error(p, AIP_RPC_INVALID_PARAMS,
                      "Invalid params: tools/call needs a string name and object arguments");
    return;
  }
  aip_agent_rt *a = s->agent;
  aip_decision d;
  /* wall time: rate buckets are persisted and must mean the same after a restart */
  aip_policy_check_tool(a->policy, name->valuestring, strlen(name->valuestring), args,
                        aip_wall_ms(), a->rate, &d);
  persist_bucket(a, name->valuestring);
  count(s, d.kind);
  p->tool = strdup(name->valuestring);
  p->args = args ? cJSON_Duplicate(args, 1) : NULL;
  if (d.kind == AIP_DECISION_ASK) {
    audit(s, "tools/call", &d, "ASK", p->tool, p->args, -1);
    p->decision_kind = AIP_DECISION_ALLOW; /* if a human approves */
    p->params = cJSON_Duplicate(m->params, 1);
    p->on_tools = ask_ready;
    aip_router_with_tools(a, p);
    return;
  }
  if (d.error_code) {
    audit(s, "tools/call", &d, NULL, p->tool, p->args, -1);
  }
  if (d.error_code) {
    deny(p, &d, name->valuestring);
    return;
  }
  p->decision_kind = d.kind;
  p->on_final = audit_forwarded;
  p->params = cJSON_Duplicate(m->params, 1);
  if (scan_request(p, m)) return;
  p->on_tools = tools_call_ready;
  aip_router_with_tools(a, p);
}

/* ---- notifications ------------------------------------------------------------------------- */

static void do_cancelled(aip_session *s, aip_rpc_msg *m) {
  const cJSON *rid = cJSON_IsObject(m->params)
                         ? cJSON_GetObjectItemCaseSensitive(m->params, "requestId") : NULL;
  if (!rid) return;
  for (aip_pending *p = s->pending; p; p = p->next) {
    if (!cJSON_Compare(p->client_id, rid, 1)) continue;
    if (p->call) {
      aip_upstream_call_cancel(p->call, "cancelled by client");
      p->call = NULL;
    }
    /* The client ignores it, but the HTTP request that carried the call must be answered. */
    aip_pending_error(p, -32800, "Request cancelled");
    return;
  }
}

static void do_notification(aip_session *s, aip_rpc_msg *m) {
  if (strcmp(m->method, "notifications/initialized") == 0) s->initialized = 1;
  else if (strcmp(m->method, "notifications/cancelled") == 0) do_cancelled(s, m);
  /* other client notifications (progress, roots/list_changed) have no upstream to go to */
}

/* ---- entry point --------------------------------------------------------------------------- */

/* An agent whose policy never loaded is blocked outright (failover.on_policy_load_error): no
 * policy, no way to decide, so nothing passes. A draining gateway takes no new work: the load
 * balancer has already seen /readyz go 503 and the client retries elsewhere. */
static void refuse_unavailable(aip_exchange *ex, aip_session *s, aip_rpc_msg *m) {
  aip_gw *gw = s->agent->gw;
  if (m->kind != AIP_RPC_REQUEST) return;
  aip_pending *p = aip_pending_new(ex, s, m->id);
  if (!p) return;
  if (s->agent->policy) {
    gw->metrics.drain_refused++;
    aip_pending_error(p, -32000, "Server shutting down: retry on another instance");
    return;
  }
  aip_buf b;
  aip_buf_init(&b);
  static const char *const data[] = {"reason", "the agent's policy failed to load; see the gateway log", NULL};
  aip_rpc_error(&b, p->client_id, AIP_ERR_FORBIDDEN, "Forbidden", data);
  aip_pending_error_raw(p, &b);
  aip_buf_free(&b);
}

void aip_dispatch(aip_exchange *ex, aip_session *s, aip_rpc_msg *m) {
  if (m->kind == AIP_RPC_RESPONSE || m->kind == AIP_RPC_ERROR) {
    return; /* answers to server->client requests: the gateway sends none yet */
  }
  if (!s->agent->policy || s->agent->gw->draining) {
    refuse_unavailable(ex, s, m);
    return;
  }
  aip_decision d;
  aip_policy_check_method(s->agent->policy, m->method, strlen(m->method), &d);
  if (d.error_code) {
    count(s, d.kind);
    audit(s, m->method, &d, NULL, NULL, NULL, -1);
  }
  if (m->kind == AIP_RPC_NOTIFICATION) {
    if (!d.error_code) do_notification(s, m);
    return;
  }
  aip_pending *p = aip_pending_new(ex, s, m->id);
  if (!p) {
    aip_warn("dispatch: out of memory");
    return;
  }
  if (d.error_code) {
    deny(p, &d, m->method);
    return;
  }
  if (strcmp(m->method, "initialize") == 0) do_initialize(p, s, m);
  else if (strcmp(m->method, "ping") == 0) aip_pending_result(p, cJSON_CreateObject());
  else if (strcmp(m->method, "tools/list") == 0) do_tools_list(p, m);
  else if (strcmp(m->method, "tools/call") == 0) do_tools_call(p, s, m);
  else aip_pending_error(p, AIP_RPC_METHOD_NOT_FOUND, "Method not found");
}
