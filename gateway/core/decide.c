/* decide.c -- the method table and the decision path of one message (decide.h).
 *
 * Nothing reaches the server unchecked: every request and notification passes the method
 * check; a tools/call the tool check (allow_args, rate limit on the one clock, ask); whatever
 * may go on passes request DLP; answers to the server's requests pass request DLP without a
 * method check. Refused requests get the AIP error (engine/jsonrpc.c); refused notifications
 * get nothing (a reply to a notification is a JSON-RPC violation). Every decision on a
 * tools/call, and every refusal of a method, is audited (core/decision_audit.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/core/decide.h"
#include "gateway/obs/clock.h"
#include "gateway/obs/log.h"

/* ---- the table ---------------------------------------------------------------------------- */

/* Every method passes the method check first (allowed_methods, denied_methods, the default
 * list). resources/unsubscribe has no protected_paths step: it only stops updates, and serve
 * matches its URI against what the session subscribed to (route_resources.c). */
enum { DLP = AIP_STEP_DLP, AUDITED = AIP_STEP_AUDITED };
static const aip_method_entry table[] = {
    {"", AIP_M_OTHER, DLP},
    {"initialize", AIP_M_INITIALIZE, DLP},
    {"ping", AIP_M_PING, DLP},
    {"tools/list", AIP_M_TOOLS_LIST, DLP},
    {"tools/call", AIP_M_TOOLS_CALL, AIP_STEP_TOOL | AUDITED | DLP},
    {"notifications/initialized", AIP_M_INITIALIZED, DLP},
    {"notifications/cancelled", AIP_M_CANCELLED, DLP},
    {"notifications/roots/list_changed", AIP_M_ROOTS_CHANGED, DLP},
    {"prompts/list", AIP_M_PROMPTS_LIST, DLP},
    {"prompts/get", AIP_M_PROMPTS_GET, AIP_STEP_ARGS | AUDITED | DLP},
    {"resources/list", AIP_M_RESOURCES_LIST, DLP},
    {"resources/templates/list", AIP_M_TEMPLATES_LIST, DLP},
    {"resources/read", AIP_M_RESOURCES_READ, AIP_STEP_URI | AUDITED | DLP},
    {"resources/subscribe", AIP_M_SUBSCRIBE, AIP_STEP_URI | AUDITED | DLP},
    {"resources/unsubscribe", AIP_M_UNSUBSCRIBE, DLP},
    {"completion/complete", AIP_M_COMPLETE, DLP},
    {"logging/setLevel", AIP_M_SET_LEVEL, DLP},
};
static const aip_method_entry answer_entry = {"", AIP_M_ANSWER, AIP_STEP_DLP};

const aip_method_entry *aip_core_method_find(const char *method) {
  /* compared normalized, as the policy sees methods */
  char *norm = method ? aip_normalize_name(method, strlen(method)) : NULL;
  const aip_method_entry *e = &table[0];
  /* the table's names are ASCII, and normalized ASCII is lower case (logging/setLevel) */
  for (size_t i = 1; norm && e == &table[0] && i < sizeof(table) / sizeof(table[0]); i++)
    if (strcasecmp(norm, table[i].name) == 0) e = &table[i];
  free(norm);
  return e;
}

/* ---- steps -------------------------------------------------------------------------------- */

static void trace(aip_front *fe, const aip_msg *m, const char *what) {
  if (fe->ops->trace) fe->ops->trace(fe, m, what);
}

static void reply_buf(aip_front *fe, aip_buf *b) {
  if (b->len) fe->ops->reply(fe, b->data, b->len);
  aip_buf_free(b);
}

static void reply_error(aip_front *fe, const aip_msg *m, int code, const char *message,
                        const char *reason) {
  const char *kv[] = {"reason", reason, NULL};
  aip_buf b;
  aip_buf_init(&b);
  aip_msg_error(m, &b, code, message, reason ? kv : NULL);
  reply_buf(fe, &b);
}

static void reply_refusal(aip_front *fe, const aip_msg *m, const aip_decision *d,
                          const char *subject) {
  aip_buf b;
  aip_buf_init(&b);
  aip_msg_refusal(m, &b, d, subject); /* any refusal, AIP's or the gateway's own */
  reply_buf(fe, &b);
}

static void audit(aip_front *fe, const char *method, const aip_decision *d, const char *decision,
                  const char *tool, const cJSON *args, const char *dlp) {
  aip_core_audit_more more = {.dlp = dlp};
  aip_core_audit(&fe->who, method, d, decision, tool, args, &more);
}

/* A message request DLP stopped: audited (a tools/call as the call's record), a request
 * answered. */
static void request_stopped(aip_front *fe, const aip_msg *m, const aip_verdict *v,
                            const aip_decision *d, const char *dlp_json) {
  int call = v && v->tool_call;
  const char *method = call ? "tools/call" : aip_msg_method(m) ? aip_msg_method(m) : "(answer)";
  audit(fe, method, d, NULL, call ? v->tool : NULL, call ? v->args : NULL, dlp_json);
  int blocked = d->error_code == AIP_ERR_FORBIDDEN;
  if (!aip_msg_method(m) && fe->ops->answer_refused) {
    /* the server hears why, as from aip serve (core/server_requests.c) */
    aip_warn("an answer from the client %s DLP; the server gets an error instead",
             blocked ? "matched" : "could not pass");
    fe->ops->answer_refused(fe, m, blocked ? AIP_ERR_FORBIDDEN : AIP_RPC_INTERNAL_ERROR,
                            blocked ? AIP_DLP_ANSWER_BLOCKED_MSG : AIP_DLP_REQ_FAILED_MSG);
    return;
  }
  if (aip_msg_kind(m) != AIP_RPC_REQUEST) {
    aip_warn("a %s from the client %s DLP; dropped", aip_msg_method(m) ? "notification" : "answer",
             blocked ? "matched" : "could not pass");
    return;
  }
  reply_refusal(fe, m, d, call ? v->tool : aip_msg_method(m));
}

/* Request DLP on a message that is to go on (`v` NULL for an answer to a server request): 1
 * when it was stopped here (audited, a request answered). Else `dlp_json` holds the counts for
 * a tools/call's record, and a match that did not stop it (warn) is audited on its own. */
static int scan_request(aip_front *fe, aip_msg *m, aip_verdict *v, aip_buf *dlp_json) {
  if (!fe->dlp || !fe->dlp->dlp) return 0;
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, fe->dlp->dlp);
  aip_decision d;
  aip_dlp_req_outcome o = aip_msg_scan_request(m, fe->dlp, &c, &d, v);
  if (fe->ops->dlp_counted) fe->ops->dlp_counted(fe, &c);
  aip_dlp_counts_json(fe->dlp->dlp, &c, dlp_json);
  int matched = c.total > 0, call = v && v->tool_call;
  aip_dlp_counts_free(&c);
  if (o == AIP_DLP_REQ_FAILED) {
    aip_warn("agent %s: DLP could not scan a message from the client; refused", fe->who.agent);
    aip_dlp_req_failed_decision(&d);
  }
  if (o == AIP_DLP_REQ_FAILED || o == AIP_DLP_REQ_BLOCKED) {
    request_stopped(fe, m, v, &d, dlp_json->data);
    return 1;
  }
  if (o != AIP_DLP_REQ_REDACTED && matched)
    aip_warn("agent %s: a message from the client matches DLP rules; forwarded "
             "(on_request_match: warn)", fe->who.agent);
  if (matched && !call) { /* a tools/call's counts ride on its own record */
    aip_decision a = {.kind = AIP_DECISION_ALLOW};
    audit(fe, aip_msg_method(m) ? aip_msg_method(m) : "(answer)", &a, NULL, NULL, NULL,
          dlp_json->data);
  }
  return 0;
}

/* A refused request or notification: audited unless it was malformed (-32602 is not a policy
 * decision), answered when it is a request. */
static void refuse(aip_front *fe, const aip_msg *m, const aip_verdict *v) {
  const char *method = v->tool_call ? "tools/call" : aip_msg_method(m);
  if (v->d.error_code != AIP_RPC_INVALID_PARAMS)
    audit(fe, method, &v->d, NULL, v->tool, v->args, NULL);
  trace(fe, m, v->reply ? "refused" : "dropped (blocked notification)");
  if (v->reply) reply_refusal(fe, m, &v->d, v->subject);
}

/* ---- one message -------------------------------------------------------------------------- */

static void answer_from_agent(aip_front *fe, aip_msg *m) {
  if (fe->ops->own_answer && fe->ops->own_answer(fe, m)) {
    aip_msg_free(m);
    return;
  }
  aip_buf dlp;
  aip_buf_init(&dlp);
  if (scan_request(fe, m, NULL, &dlp)) {
    trace(fe, m, "dropped (DLP)");
    aip_msg_free(m);
  } else {
    fe->ops->forward(fe, m, &answer_entry, NULL);
  }
  aip_buf_free(&dlp);
}

static void counted(aip_front *fe, aip_decision_kind k) {
  if (fe->ops->counted) fe->ops->counted(fe, k);
}

/* Request DLP on what the policy lets through (or asks about), then hold (ASK), refuse
 * (audited, answered) or forward. Takes m. */
static void decided(aip_front *fe, aip_msg *m, const aip_method_entry *e, aip_verdict *vp) {
  aip_verdict v = *vp;
  aip_buf dlp;
  aip_buf_init(&dlp);
  int req = aip_msg_kind(m) == AIP_RPC_REQUEST;
  aip_core_call call = {.tool = v.tool, .args = v.args};
  /* request DLP on every message the policy lets through (or asks about): a blocked one ends
   * here, a redacted one goes on redacted (the human is asked about that one) */
  if ((e->steps & AIP_STEP_DLP) && (!v.d.error_code || v.d.kind == AIP_DECISION_ASK) &&
      scan_request(fe, m, &v, &dlp)) {
    trace(fe, m, "refused (DLP)");
    aip_msg_free(m);
  } else if (v.d.kind == AIP_DECISION_ASK && req) {
    trace(fe, m, "needs approval");
    call.args = v.args;
    call.dlp = dlp.data; /* the request's counts ride on the call's record after approval */
    fe->ops->hold(fe, m, &call, &v.d); /* the hold owns the message now */
  } else if (v.d.kind == AIP_DECISION_ASK) { /* a tools/call notification: nobody to ask */
    aip_decision_ask_refused(&v.d, 0);
    audit(fe, "tools/call", &v.d, "DENIED", v.tool, v.args, NULL);
    trace(fe, m, "dropped (ask on a notification)");
    aip_msg_free(m);
  } else if (v.d.error_code) {
    refuse(fe, m, &v);
    aip_msg_free(m);
  } else {
    call.args = v.args;
    call.dlp = dlp.data;
    call.d = &v.d;
    fe->ops->forward(fe, m, e, v.tool_call ? &call : NULL); /* audited when it ends */
  }
  aip_buf_free(&dlp);
}

/* protected_paths on a resource URI (params.uri) or a prompt's arguments, with the argument
 * normalization of the tool check: 1 when refused (counted, audited with the URI or prompt
 * name in place of `tool`, a request answered). A URI that is not a non-empty string is
 * refused -32602 (it cannot be checked); absent prompt arguments leave nothing to check. */
static int paths_refused(aip_front *fe, aip_msg *m, const aip_method_entry *e) {
  const cJSON *what = aip_msg_param(m, (e->steps & AIP_STEP_URI) ? "uri" : "arguments");
  const char *subject = NULL;
  if (e->steps & AIP_STEP_URI) {
    /* a URI that is not a non-empty string cannot be checked, and the wrapper forwards what
     * passes here: refused in the core, for both front ends (fail closed) */
    if (!cJSON_IsString(what) || !what->valuestring[0]) {
      trace(fe, m, "refused (params.uri is not a non-empty string)");
      if (aip_msg_kind(m) == AIP_RPC_REQUEST)
        reply_error(fe, m, AIP_RPC_INVALID_PARAMS, "Invalid params: a string uri is required",
                    NULL);
      return 1;
    }
    subject = what->valuestring;
  } else {
    if (!what) return 0; /* no arguments: nothing can name a path */
    subject = aip_msg_tool(m); /* params.name, the prompt */
  }
  aip_decision d;
  memset(&d, 0, sizeof(d));
  if (!aip_policy_check_paths(fe->policy, what, &d)) return 0;
  counted(fe, d.kind);
  audit(fe, aip_msg_method(m), &d, NULL, subject, (e->steps & AIP_STEP_ARGS) ? what : NULL, NULL);
  trace(fe, m, aip_msg_kind(m) == AIP_RPC_REQUEST ? "refused" : "dropped (protected path)");
  if (aip_msg_kind(m) == AIP_RPC_REQUEST) reply_refusal(fe, m, &d, subject ? subject : "");
  return 1;
}

static void request_or_notification(aip_front *fe, aip_msg *m) {
  const char *method = aip_msg_method(m);
  const aip_method_entry *e = aip_core_method_find(method);
  aip_verdict v;
  memset(&v, 0, sizeof(v));
  v.subject = method;
  aip_policy_check_method(fe->policy, method, strlen(method), &v.d);
  /* audit.on_error block: nothing that must leave a record runs while the log cannot take it
   * (docs/audit.md); a refused notification just goes away */
  if ((v.d.error_code || (e->steps & AIP_STEP_AUDITED)) && fe->ops->admit &&
      fe->ops->admit(fe, m)) {
    trace(fe, m, "refused (audit log unavailable)");
    aip_msg_free(m);
    return;
  }
  if (v.d.error_code) {
    counted(fe, v.d.kind);
    v.reply = aip_msg_kind(m) == AIP_RPC_REQUEST;
    refuse(fe, m, &v);
    aip_msg_free(m);
    return;
  }
  if ((e->steps & AIP_STEP_TOOL) && fe->ops->names) {
    fe->ops->names(fe, m); /* resumes in aip_core_tool_check */
    return;
  }
  if (e->steps & AIP_STEP_TOOL) {
    /* the name as sent: the engine's whole-message check (it refuses malformed params) */
    aip_msg_check(m, fe->policy, aip_wall_ms(), fe->rate, &v); /* the one clock (obs/clock.h) */
    counted(fe, v.d.kind);
  } else if ((e->steps & (AIP_STEP_URI | AIP_STEP_ARGS)) && paths_refused(fe, m, e)) {
    aip_msg_free(m);
    return;
  }
  decided(fe, m, e, &v);
}

void aip_core_tool_check(aip_front *fe, aip_msg *m, const aip_tool_names *n) {
  const cJSON *args = aip_msg_param(m, "arguments");
  if (!cJSON_IsObject(args)) args = NULL;
  aip_verdict v;
  memset(&v, 0, sizeof(v));
  /* wall time: rate buckets are persisted and must mean the same after a restart */
  aip_policy_check_tool_names(fe->policy, n, args, aip_wall_ms(), fe->rate, &v.d);
  if (fe->ops->rate_checked && fe->ops->rate_checked(fe, m, n, &v.d)) return;
  counted(fe, v.d.kind);
  v.tool_call = 1;
  v.reply = v.d.error_code && aip_msg_kind(m) == AIP_RPC_REQUEST;
  v.subject = v.tool = aip_msg_tool(m);
  v.args = args;
  decided(fe, m, aip_core_method_find("tools/call"), &v);
}

void aip_core_message(aip_front *fe, aip_msg *m) {
  if (!m) return;
  switch (aip_msg_kind(m)) {
  case AIP_RPC_INVALID:
    trace(fe, m, aip_msg_invalid_reason(m));
    reply_error(fe, m, AIP_RPC_INVALID_REQUEST, "Invalid Request", aip_msg_invalid_reason(m));
    aip_msg_free(m);
    return;
  case AIP_RPC_RESPONSE:
  case AIP_RPC_ERROR:
    answer_from_agent(fe, m);
    return;
  default:
    request_or_notification(fe, m);
  }
}

/* Both front ends now run every message through aip_core_message: `aip serve`
 * (core/mcp_dispatch.c, serve_front_ops) fills the hooks the wrapper leaves NULL: `admit`
 * (audit.on_error), `counted` (per-agent decision counters), `names` (the tool's three names
 * after the router's fresh list, asynchronously) and `rate_checked` (the durable rate-limit
 * wait, core/rate_durable.c, which resumes at aip_core_tool_check). What is still each front
 * end's own: serve's refusals before the core (a policy that failed its signature check, no
 * policy, draining: core/mcp_dispatch.c), the routing of each method and its ALLOW record for
 * resources and prompts (which names the server: route_resources.c, route_prompts.c), and the
 * protected_paths check of a resource URI as the server will see it once routed
 * (route_resources.c; the wrapper forwards URIs unchanged, so it has only the one check). Serve
 * renders its own answers (results, -32601, -32602 of malformed params) from cJSON trees;
 * the core's refusals are the engine's bytes in both. */
