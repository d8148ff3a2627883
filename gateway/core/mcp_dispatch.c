/* mcp_dispatch.c -- one JSON-RPC message from an agent: policy first, then the handler.
 *
 * Every message that has a method passes the agent's method check before anything else; a
 * tools/call then passes the tool check. Blocked requests get the AIP error; blocked
 * notifications get nothing (a reply to a notification is a JSON-RPC violation the reference
 * implementation commits). Each decision on a tools/call, and each blocked method, is audited.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway/approvals/ask_elicit.h"
#include "gateway/core/agent.h"
#include "gateway/core/decide.h"
#include "gateway/core/dispatch.h"
#include "gateway/core/rate_durable.h"
#include "gateway/core/routes.h"
#include "gateway/core/server_requests.h"
#include "gateway/mcp/outstanding.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/clock.h"
#include "gateway/obs/log.h"

static cJSON *redact_for_audit(aip_agent_rt *a, const cJSON *args) {
  aip_dlp_run r = aip_agent_dlp_run(a);
  return aip_dlp_redact_copy(&r, args);
}

/* Who this session's records are about (core/decision_audit.h); `run` is filled here. */
static aip_core_who who_of(aip_session *s, aip_dlp_run *run) {
  aip_agent_rt *a = s->agent;
  *run = aip_agent_dlp_run(a);
  aip_core_who w = {.audit = a->gw->audit,
                    .agent = a->cfg->name,
                    .session_id = s->id,
                    .doc = a->policy ? aip_policy_doc_of(a->policy) : NULL,
                    .blocked_policy = a->blocked_policy,
                    .dlp_run = run};
  return w;
}

static void audit_dlp(aip_session *s, const char *method, const aip_decision *d,
                      const char *decision, const char *tool, const cJSON *args,
                      int64_t latency_us, const char *dlp, const aip_approval *ap) {
  aip_dlp_run run;
  aip_core_who who = who_of(s, &run);
  aip_core_audit_more more = {.dlp = dlp,
                              .latency_us = latency_us,
                              .has_latency = latency_us >= 0,
                              .approval_id = ap ? ap->id : NULL,
                              .approver = ap ? ap->decided_by : NULL};
  aip_core_audit(&who, method, d, decision, tool, args, &more);
}

static void audit(aip_session *s, const char *method, const aip_decision *d,
                  const char *decision, const char *tool, const cJSON *args, int64_t latency_us) {
  audit_dlp(s, method, d, decision, tool, args, latency_us, NULL, NULL);
}

static void count(aip_session *s, aip_decision_kind k) { s->agent->decisions[k]++; }

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
  aip_route_initialize(p, r); /* + what the agent's servers offer (route_init.c) */
}

/* ---- tools/list ---------------------------------------------------------------------------- */

static void upstream_unavailable(aip_pending *p, const aip_upstream *u);

static void tools_list_ready(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  const aip_list *l = &a->lists[AIP_LIST_TOOLS];
  /* every server failed: an empty list would read as "no tools"; say which one is down */
  size_t failed = 0;
  for (size_t i = 0; i < a->cfg->servers_n; i++) failed += l->failed[i] != 0;
  if (a->cfg->servers_n && failed == a->cfg->servers_n && !l->n) {
    upstream_unavailable(p, a->ups[0]);
    return;
  }
  cJSON *r = cJSON_CreateObject();
  cJSON_AddItemToObject(r, "tools", l->json ? cJSON_Duplicate(l->json, 1) : cJSON_CreateArray());
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
  /* the record the wrapper writes too (core/decision_audit.c): a monitor-mode violation keeps
   * what the policy objected to */
  if (p->monitor && d.kind == AIP_DECISION_ALLOW_MONITOR) d = *p->monitor;
  audit_dlp(p->sess, "tools/call", &d, NULL, p->tool, p->args, (int64_t)(ns / 1000),
            p->dlp_audit.data, NULL);
}

static void call_answered(aip_upstream_call *call, cJSON *msg, int final, void *data) {
  aip_pending *p = data;
  if (final) p->call = NULL; /* the call is over: nothing left to cancel */
  /* resource links in the result name resources as the agent sees them (docs/routing.md) */
  if (final) aip_route_expose_uris(p->sess->agent, (size_t)p->route_server, msg);
  aip_pending_emit(p, msg, final);
}

/* -32603 "upstream <agent>/<server> unavailable: <why>", data {"reason", "server"}: the
 * server is down, backing off, or could not be started. */
static void upstream_unavailable(aip_pending *p, const aip_upstream *u) {
  char msg[300];
  const char *why = u->last_error[0] ? u->last_error : "not running";
  snprintf(msg, sizeof(msg), "upstream %s unavailable: %s", u->label, why);
  const char *data[] = {"reason", why, "server", u->server->name, NULL};
  aip_buf b;
  aip_buf_init(&b);
  aip_rpc_error(&b, p->client_id, AIP_RPC_INTERNAL_ERROR, msg, data);
  aip_pending_error_raw(p, &b);
  aip_buf_free(&b);
}

/* A name no listed tool has: which failed server might own it. A "<server>__" prefix names
 * it; an unprefixed name (tool_prefix auto or never) could belong to any server whose list
 * could not be fetched (one that cannot start has never listed anything), so the agent hears
 * that a server is down rather than "Unknown tool". */
static const aip_upstream *owner_down(aip_agent_rt *a, const char *tool) {
  const aip_upstream *u = aip_router_failed_server(a, tool);
  if (u || a->cfg->tool_prefix == AIP_PREFIX_ALWAYS) return u;
  for (size_t s = 0; s < a->cfg->servers_n; s++)
    if (a->lists[AIP_LIST_TOOLS].failed[s]) return a->ups[s];
  return NULL;
}

static void tools_call_ready(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  const aip_tool_entry *t = aip_router_find(a, p->tool);
  /* "<server>__tool" of a server whose tool list could not be fetched: the tool may well exist,
   * the server is what is missing. Saying "unknown tool" would mislead the agent. */
  const aip_upstream *down = t ? NULL : owner_down(a, p->tool);
  if (down) {
    upstream_unavailable(p, down);
    return;
  }
  if (!t) {
    aip_dispatch_unknown(p, &a->lists[AIP_LIST_TOOLS], p->tool);
    return;
  }
  cJSON *params = p->params;
  p->params = NULL;
  cJSON_ReplaceItemInObjectCaseSensitive(params, "name", cJSON_CreateString(t->real));
  aip_upstream *u = a->ups[t->server];
  p->route_server = (int)t->server;
  int err = aip_upstream_call_start(u, "tools/call", params, call_answered, p, &p->call);
  if (err) upstream_unavailable(p, u);
  else aip_upstream_call_set_sink(p->call, &aip_pending_sink); /* large answers stream */
}

/* ---- ask: a human decides ------------------------------------------------------------------ */

/* The agent has approvals.max_pending_per_agent records pending: the ask is refused (-32002,
 * like a rate limit: waiting until operators catch up helps) and audited as DENIED. */
static void ask_over_cap(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  aip_decision d = {.kind = AIP_DECISION_BLOCK, .error_code = AIP_ERR_RATE_LIMITED};
  snprintf(d.reason, sizeof(d.reason), "too many pending approvals for agent (max %llu)",
           (unsigned long long)a->gw->cfg->approvals_max_pending_per_agent);
  audit(p->sess, "tools/call", &d, "DENIED", p->tool, p->args, -1);
  const char *kv[] = {"reason", d.reason, "tool", p->tool, NULL};
  aip_buf b;
  aip_buf_init(&b);
  aip_rpc_error(&b, p->client_id, AIP_ERR_RATE_LIMITED, "Too many pending approvals", kv);
  aip_pending_error_raw(p, &b);
  aip_buf_free(&b);
}

static void approval_outcome(void *data, int err, aip_approval_status st, const aip_approval *rec) {
  aip_pending *p = data;
  p->approval = NULL; /* the handle is gone after this call */
  aip_decision d = {.kind = AIP_DECISION_ASK};
  if (err == -EDQUOT) {
    ask_over_cap(p);
    return;
  }
  if (err) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, err == -EALREADY
                      ? "the approval was used by another call" : "approval queue unavailable");
    return;
  }
  if (st == AIP_APPROVAL_APPROVED) {
    d.kind = AIP_DECISION_ALLOW;
    snprintf(d.reason, sizeof(d.reason), "approved by %s", rec && rec->decided_by ? rec->decided_by : "operator");
    audit_dlp(p->sess, "tools/call", &d, "APPROVED", p->tool, p->args, -1, NULL, rec);
    p->on_final = audit_forwarded;
    tools_call_ready(p);
    return;
  }
  aip_decision_ask_refused(&d, st == AIP_APPROVAL_EXPIRED);
  if (rec && rec->reason) snprintf(d.reason, sizeof(d.reason), "%s", rec->reason);
  audit_dlp(p->sess, "tools/call", &d, st == AIP_APPROVAL_EXPIRED ? "EXPIRED" : "DENIED", p->tool,
            p->args, -1, NULL, rec);
  deny(p, &d, p->tool);
}

void aip_ask_outcome(aip_pending *p, aip_approval_status st, const char *by, const char *reason) {
  aip_approval rec = {.status = st, .decided_by = (char *)by, .reason = (char *)reason};
  approval_outcome(p, 0, st, &rec);
}

void aip_ask_abandoned(aip_pending *p, const char *why) {
  aip_decision d = {.kind = AIP_DECISION_ASK};
  aip_decision_ask_refused(&d, 0);
  snprintf(d.reason, sizeof(d.reason), "%s", why);
  audit(p->sess, "tools/call", &d, "DENIED", p->tool, p->args, -1);
}

/* The tool list is fresh: the approval record can name the server. */
static void ask_ready(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  const aip_tool_entry *t = aip_router_find(a, p->tool);
  /* ask_via elicitation: the agent's own user, when its client can be asked; else the queue */
  if (t && a->cfg->ask_via == AIP_ASK_VIA_ELICITATION && aip_ask_elicit_start(p) == 0) return;
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

/* ---- aip serve as a front end of the decision core (core/decide.c) ------------------------- */

/* One message's front (on the stack while the core runs; rebuilt from the pending request when
 * a decision resumes, so a policy reloaded meanwhile is the one that decides). */
typedef struct serve_front {
  aip_front fe; /* first: the callbacks get &fe */
  aip_session *s;
  aip_pending *p; /* NULL for a notification or an answer */
  aip_dlp_run run;
} serve_front;

static const aip_front_ops serve_front_ops;

static void front_init(serve_front *f, aip_session *s, aip_pending *p) {
  aip_agent_rt *a = s->agent;
  memset(f, 0, sizeof(*f));
  f->fe.ops = &serve_front_ops;
  f->fe.policy = a->policy;
  f->fe.rate = a->rate;
  f->fe.who = who_of(s, &f->run);
  f->fe.dlp = &f->run;
  f->s = s;
  f->p = p;
}

static serve_front *sf(aip_front *fe) { return (serve_front *)fe; }

static void sf_reply(aip_front *fe, const char *json, size_t n) {
  aip_pending *p = sf(fe)->p;
  if (!p) return; /* the core answers requests only */
  aip_buf b;
  aip_buf_init(&b);
  if (aip_buf_append(&b, json, n) == 0) aip_pending_error_raw(p, &b);
  else aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
  aip_buf_free(&b);
}

/* What goes upstream is the checked request's params: redacted, if request DLP redacted them.
 * Returns 0, or -1 (answered) when there are none. */
static int take_params(aip_pending *p, aip_msg *m, const aip_core_call *call) {
  cJSON *req = aip_msg_release(m);
  cJSON_Delete(p->params);
  p->params = cJSON_DetachItemFromObjectCaseSensitive(req, "params");
  cJSON_Delete(req);
  if (call->dlp && *call->dlp) aip_buf_puts(&p->dlp_audit, call->dlp);
  if (p->params) return 0;
  aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error"); /* it was checked: never */
  return -1;
}

static void forward_call(aip_pending *p, aip_msg *m, const aip_core_call *call) {
  p->decision_kind = call->d->kind;
  if (call->d->kind == AIP_DECISION_ALLOW_MONITOR && !p->monitor &&
      (p->monitor = malloc(sizeof(*p->monitor))))
    aip_core_forwarded_decision(call->d, p->monitor);
  p->on_final = audit_forwarded;
  if (take_params(p, m, call) == 0) tools_call_ready(p);
}

static void do_notification(aip_session *s, const aip_method_entry *e, aip_rpc_msg *m);
static const aip_route_fn routes[AIP_M_COUNT];

/* A message the core let through: the route of its method (answered, maybe later). A method
 * the agent did not spell as MCP does (the table matched it normalized, so it got every step
 * of the method it resembles) is not routed: -32601, as for any method serve does not know. */
static void sf_forward(aip_front *fe, aip_msg *m, const aip_method_entry *e,
                       const aip_core_call *call) {
  serve_front *f = sf(fe);
  aip_rpc_msg *rpc = (aip_rpc_msg *)aip_msg_rpc(m);
  int exact = rpc->method && strcmp(rpc->method, e->name) == 0;
  if (call && f->p) {
    forward_call(f->p, m, call);
    return;
  }
  if (rpc->kind == AIP_RPC_NOTIFICATION) {
    if (exact) do_notification(f->s, e, rpc);
    /* other client notifications (progress) have no upstream to go to */
  } else if (f->p && exact && routes[e->id]) {
    routes[e->id](f->p, f->s, rpc);
  } else if (f->p) {
    aip_pending_error(f->p, AIP_RPC_METHOD_NOT_FOUND, "Method not found");
  }
  aip_msg_free(m);
}

/* Request DLP ran before anyone is asked: a blocked secret never reaches the queue, and with
 * on_request_match redact the redacted call is what gets approved and forwarded. */
static void sf_hold(aip_front *fe, aip_msg *m, const aip_core_call *call, const aip_decision *d) {
  aip_pending *p = sf(fe)->p;
  p->decision_kind = AIP_DECISION_ALLOW; /* if a human approves */
  if (take_params(p, m, call)) return;
  audit(p->sess, "tools/call", d, "ASK", p->tool, p->args, -1);
  ask_ready(p);
}

/* An answer to a request the session was sent (mcp_http.c refused a POST whose answers name
 * none of them); a batch that answers one id twice finds it gone the second time.
 * server_requests.c applies DLP to it on its way to the server. */
static int sf_own_answer(aip_front *fe, const aip_msg *m) {
  aip_outstanding_answer(sf(fe)->s, aip_msg_rpc(m));
  return 1;
}

static void sf_dlp_counted(aip_front *fe, const aip_dlp_counts *c) {
  aip_agent_count_dlp(sf(fe)->s->agent, c);
}

static int sf_admit(aip_front *fe, const aip_msg *m) {
  serve_front *f = sf(fe);
  if (!aip_audit_admit(f->s->agent->gw->audit)) return 0;
  if (f->p) aip_pending_error(f->p, AIP_RPC_INTERNAL_ERROR,
                              "Audit log unavailable: calls are refused until it can be written");
  (void)m;
  return -1;
}

static void sf_counted(aip_front *fe, aip_decision_kind k) { count(sf(fe)->s, k); }

static void tools_call_checked(aip_pending *p);

/* The tool's names come from the merged tool list: the whole request waits in p->params for
 * it (request DLP later scans the message as received). */
static void sf_names(aip_front *fe, aip_msg *m) {
  aip_pending *p = sf(fe)->p;
  aip_rpc_msg *rpc = (aip_rpc_msg *)aip_msg_rpc(m);
  const cJSON *name, *args;
  if (!p) { /* a tools/call notification: serve routes no such thing */
    aip_msg_free(m);
    return;
  }
  if (strcmp(rpc->method, "tools/call") != 0) {
    aip_pending_error(p, AIP_RPC_METHOD_NOT_FOUND, "Method not found"); /* as sf_forward */
    aip_msg_free(m);
    return;
  }
  if (aip_dispatch_name_args(p, rpc, &name, &args)) {
    aip_msg_free(m);
    return;
  }
  free(p->tool);
  cJSON_Delete(p->args);
  p->tool = strdup(name->valuestring);
  p->args = args ? cJSON_Duplicate(args, 1) : NULL;
  if (!p->tool || (args && !p->args)) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
    aip_msg_free(m);
    return;
  }
  cJSON_Delete(p->params);
  p->params = aip_msg_release(m); /* the whole request, until tools_call_checked */
  p->on_tools = tools_call_checked;
  aip_router_with_tools(p->sess->agent, p);
}

/* A token is left but not yet saved as spent: wait for the save, then check again
 * (aip_dispatch_tools_call_again); fail closed when no save can start. */
static int sf_rate_checked(aip_front *fe, aip_msg *m, const aip_tool_names *n,
                           const aip_decision *d) {
  aip_pending *p = sf(fe)->p;
  if (!d->rate_wait) {
    aip_rate_durable_after_check(p->sess->agent, n);
    return 0;
  }
  cJSON *req = aip_msg_release(m);
  if (aip_rate_durable_wait(p, n, req) == 0) return 1; /* the wait owns req now */
  aip_dispatch_rate_unsaved(p, cJSON_GetObjectItemCaseSensitive(req, "params"));
  cJSON_Delete(req);
  return 1;
}

static const aip_front_ops serve_front_ops = {
    .reply = sf_reply,
    .forward = sf_forward,
    .hold = sf_hold,
    .own_answer = sf_own_answer,
    .dlp_counted = sf_dlp_counted,
    .admit = sf_admit,
    .counted = sf_counted,
    .names = sf_names,
    .rate_checked = sf_rate_checked,
};

/* The tool list is fresh, so the tool check knows every name of the tool (its exposed, real
 * and qualified names: docs/policy-semantics.md, "Names"). */
static void tools_call_checked(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  cJSON *req = p->params;
  p->params = NULL;
  aip_msg *m = aip_msg_adopt(req);
  if (!m) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
    return;
  }
  const aip_tool_entry *t = aip_router_find(a, p->tool);
  aip_tool_names names = {p->tool, t ? t->real : NULL, t ? t->qualified : NULL};
  serve_front f;
  front_init(&f, p->sess, p);
  aip_core_tool_check(&f.fe, m, &names);
}

int aip_dispatch_name_args(aip_pending *p, aip_rpc_msg *m, const cJSON **name,
                           const cJSON **args) {
  *name = cJSON_IsObject(m->params) ? cJSON_GetObjectItemCaseSensitive(m->params, "name") : NULL;
  *args = cJSON_IsObject(m->params) ? cJSON_GetObjectItemCaseSensitive(m->params, "arguments") : NULL;
  if (cJSON_IsString(*name) && (!*args || cJSON_IsObject(*args))) return 0;
  char msg[120];
  snprintf(msg, sizeof(msg), "Invalid params: %s needs a string name and object arguments", m->method);
  aip_pending_error(p, AIP_RPC_INVALID_PARAMS, msg);
  return 1;
}

/* Fail closed: the call's rate-limit token could not be saved as spent (rate_durable.c).
 * Audited as RATE_LIMITED with the reason, answered -32603 with the tool in data. */
void aip_dispatch_rate_unsaved(aip_pending *p, const cJSON *params) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(params, "name");
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
  const char *tool = cJSON_IsString(name) ? name->valuestring : "";
  aip_decision d = {.kind = AIP_DECISION_RATE_LIMITED,
                    .violation = 1,
                    .error_code = AIP_RPC_INTERNAL_ERROR,
                    .error_message = "Rate limit state cannot be saved"};
  snprintf(d.reason, sizeof(d.reason), "rate limit state cannot be saved (store write failed)");
  /* not a -32002 refusal: aip_refused_total counts it, not the decision counter */
  p->sess->agent->refused[AIP_REFUSED_RATE_UNSAVED]++;
  audit(p->sess, "tools/call", &d, NULL, tool, cJSON_IsObject(args) ? args : NULL, -1);
  const char *data[] = {"tool", tool, NULL};
  aip_buf b;
  aip_buf_init(&b);
  aip_rpc_error(&b, p->client_id, AIP_RPC_INTERNAL_ERROR,
                "Rate limit state cannot be saved: the call is refused", data);
  aip_pending_error_raw(p, &b);
  aip_buf_free(&b);
}

/* The wait is over: the tools/call is checked again from its names on (the method check and
 * the audit admission ran when it came in). */
void aip_dispatch_tools_call_again(aip_pending *p, cJSON *root) {
  aip_msg *m = aip_msg_adopt(root);
  if (!m || aip_msg_kind(m) != AIP_RPC_REQUEST) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error"); /* it was a request */
    aip_msg_free(m);
    return;
  }
  serve_front f;
  front_init(&f, p->sess, p);
  sf_names(&f.fe, m);
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

static void do_notification(aip_session *s, const aip_method_entry *e, aip_rpc_msg *m) {
  if (e->id == AIP_M_INITIALIZED) s->initialized = 1;
  else if (e->id == AIP_M_CANCELLED) do_cancelled(s, m);
  else if (e->id == AIP_M_ROOTS_CHANGED) aip_s2c_roots_changed(s);
}

/* ---- a policy that failed its signature check ---------------------------------------------- */

/* trusted_keys is set and this agent's policy did not verify (policy_load.c logged why at
 * start; a reload that fails verification keeps the last good policy instead). Nothing in that policy can be trusted, not even its method list or its failover
 * settings, so every request is refused with -32010 (initialize too: the agent learns at
 * connect time, and no session is left behind), notifications are dropped, and nothing reaches
 * the agent's servers. Each refusal is audited. */
static void refuse_unverified(aip_exchange *ex, aip_session *s, aip_rpc_msg *m) {
  aip_decision d = {.kind = AIP_DECISION_BLOCK,
                    .violation = 1,
                    .error_code = AIP_ERR_SIGNATURE_INVALID,
                    .error_message = "Policy signature invalid"};
  snprintf(d.reason, sizeof(d.reason), "Policy signature verification failed");
  count(s, d.kind);
  audit(s, m->method, &d, NULL, NULL, NULL, -1);
  if (m->kind == AIP_RPC_NOTIFICATION) return;
  aip_pending *p = aip_pending_new(ex, s, m->id);
  if (!p) {
    aip_warn("dispatch: out of memory");
    return;
  }
  const char *name = s->agent->blocked_policy;
  deny(p, &d, name ? name : s->agent->cfg->name); /* data.policy, as AIP defines it */
}

/* ---- hooks for the other method families (core/routes.h) ----------------------------------- */

void aip_dispatch_audit(aip_session *s, const char *method, const aip_decision *d,
                        const char *subject, const cJSON *args) {
  count(s, d->kind);
  audit(s, method, d, NULL, subject, args, -1);
}

void aip_dispatch_deny(aip_pending *p, const aip_decision *d, const char *subject) {
  deny(p, d, subject);
}

void aip_dispatch_unavailable(aip_pending *p, const aip_upstream *u) { upstream_unavailable(p, u); }

void aip_dispatch_unknown(aip_pending *p, const aip_list *l, const char *name) {
  const char *noun = aip_list_kinds[l->id].noun;
  char msg[400];
  if (aip_list_ambiguous(l, name))
    snprintf(msg, sizeof(msg), "Ambiguous %s name: %.256s could mean %ss of several servers, so "
             "none of them is exposed under it (see the gateway log)", noun, name, noun);
  else
    snprintf(msg, sizeof(msg), "Unknown %s: %.256s", noun, name);
  aip_pending_error(p, AIP_RPC_INVALID_PARAMS, msg);
}

/* ---- entry point --------------------------------------------------------------------------- */

static void do_ping(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  aip_pending_result(p, cJSON_CreateObject());
}

static void do_tools_list_h(aip_pending *p, aip_session *s, aip_rpc_msg *m) { do_tools_list(p, m); }

/* How serve answers each request method of the core's table (core/decide.c), once the policy
 * let it through; a method without a route is answered -32601. */
static const aip_route_fn routes[AIP_M_COUNT] = {
    [AIP_M_INITIALIZE] = do_initialize,
    [AIP_M_PING] = do_ping,
    [AIP_M_TOOLS_LIST] = do_tools_list_h,
    [AIP_M_PROMPTS_LIST] = aip_route_prompts_list,
    [AIP_M_PROMPTS_GET] = aip_route_prompts_get,
    [AIP_M_RESOURCES_LIST] = aip_route_resources_list,
    [AIP_M_TEMPLATES_LIST] = aip_route_templates_list,
    [AIP_M_RESOURCES_READ] = aip_route_resources_read,
    [AIP_M_SUBSCRIBE] = aip_route_resources_subscribe,
    [AIP_M_UNSUBSCRIBE] = aip_route_resources_unsubscribe,
    [AIP_M_COMPLETE] = aip_route_complete,
    [AIP_M_SET_LEVEL] = aip_route_set_level,
};

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
  int answer = m->kind == AIP_RPC_RESPONSE || m->kind == AIP_RPC_ERROR;
  if (!answer && !s->agent->policy && s->agent->load_error_code == AIP_ERR_SIGNATURE_INVALID) {
    refuse_unverified(ex, s, m);
    return;
  }
  if (!answer && (!s->agent->policy || s->agent->gw->draining)) {
    refuse_unavailable(ex, s, m);
    return;
  }
  aip_pending *p = m->kind == AIP_RPC_REQUEST ? aip_pending_new(ex, s, m->id) : NULL;
  if (m->kind == AIP_RPC_REQUEST && !p) {
    aip_warn("dispatch: out of memory");
    return;
  }
  /* the core takes a message of its own (the batch item stays the caller's) */
  cJSON *copy = cJSON_Duplicate(m->root, 1);
  aip_msg *msg = copy ? aip_msg_adopt(copy) : NULL;
  if (!msg) {
    if (p) aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
    else aip_warn("dispatch: out of memory");
    return;
  }
  serve_front f;
  front_init(&f, s, p);
  aip_core_message(&f.fe, msg); /* the decision path both front ends share */
}
