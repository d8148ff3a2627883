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

#include "gateway/core/decide.h"
#include "gateway/obs/clock.h"
#include "gateway/obs/log.h"

/* ---- the table ---------------------------------------------------------------------------- */

static const aip_method_entry table[] = {
    {"", AIP_M_OTHER, AIP_STEP_DLP},
    {"initialize", AIP_M_INITIALIZE, AIP_STEP_DLP},
    {"ping", AIP_M_PING, AIP_STEP_DLP},
    {"tools/list", AIP_M_TOOLS_LIST, AIP_STEP_DLP},
    {"tools/call", AIP_M_TOOLS_CALL, AIP_STEP_TOOL | AIP_STEP_DLP},
    {"notifications/initialized", AIP_M_INITIALIZED, AIP_STEP_DLP},
    {"notifications/cancelled", AIP_M_CANCELLED, AIP_STEP_DLP},
};
static const aip_method_entry answer_entry = {"", AIP_M_ANSWER, AIP_STEP_DLP};

const aip_method_entry *aip_core_method_find(const char *method) {
  /* compared normalized, as the policy sees methods */
  char *norm = method ? aip_normalize_name(method, strlen(method)) : NULL;
  const aip_method_entry *e = &table[0];
  for (size_t i = 1; norm && i < sizeof(table) / sizeof(table[0]); i++)
    if (strcmp(norm, table[i].name) == 0) e = &table[i];
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

static void request_or_notification(aip_front *fe, aip_msg *m) {
  aip_verdict v;
  aip_msg_check(m, fe->policy, aip_wall_ms(), fe->rate, &v); /* the one clock (obs/clock.h) */
  aip_core_decided(fe, m, &v);
}

void aip_core_decided(aip_front *fe, aip_msg *m, aip_verdict *vp) {
  aip_verdict v = *vp;
  const aip_method_entry *e =
      v.tool_call ? aip_core_method_find("tools/call") : aip_core_method_find(aip_msg_method(m));
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

/* What moving the rest of `aip serve` onto aip_core_message takes (mcp_dispatch.c runs its
 * method and tool checks, then aip_core_decided): (1) the tool check over a tool's three names
 * (aip_policy_check_tool_names) after the router's fresh list, i.e. a `names` hook the front end
 * fills asynchronously before the core decides; (2) the durable rate-limit wait
 * (core/rate_durable.c), a decision that may come back later; (3) the audit.on_error admission
 * check (aip_audit_admit) and the per-agent decision counters, as front-end hooks. */
