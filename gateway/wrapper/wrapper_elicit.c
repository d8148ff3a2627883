/* wrapper_elicit.c -- `action: ask` in the stdio wrapper: the reference opens a desktop dialog
 * (reference/aip.md section 8.1); we ask the human through the MCP client instead, with a form
 * elicitation (reference/mcp.md section 7), when the client declared it can.
 *
 * The call waits in a list while everything else flows on (the reference blocks its whole loop
 * on the dialog). The client's answer comes back as a response to our own request id,
 * "aip-elicit-<random>-<n>", which can never be one of the child's server->client ids. Approved
 * calls go to the child as they were checked; the rest get -32004 (denied, declined, cancelled,
 * no elicitation support) or -32005 (no answer within --approval-timeout).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/approvals/elicit.h"
#include "gateway/obs/log.h"
#include "gateway/wrapper/wrapper.h"

#define MAX_PENDING_ASKS 64

struct aip_wrapper_ask {
  aip_wrapper_ask *next;
  aip_wrapper *w;
  uv_timer_t timer;
  cJSON *msg;        /* the tools/call request, as checked */
  const cJSON *id;   /* its id (inside msg) */
  const cJSON *args; /* its arguments (inside msg), or NULL */
  char *tool;
  char *dlp;         /* its request DLP counts, or NULL */
  aip_decision d;    /* the ASK decision */
  char eid[80];      /* our elicitation/create id */
};

int aip_wrapper_elicit_capable(const cJSON *init_params) {
  return aip_elicit_capable(cJSON_IsObject(init_params)
                                ? cJSON_GetObjectItemCaseSensitive(init_params, "capabilities")
                                : NULL);
}

static int session_can_elicit(const aip_wrapper *w) {
  return w->client_elicit && aip_elicit_version_ok(w->version);
}

static void ask_closed(uv_handle_t *h) {
  aip_wrapper_ask *a = h->data;
  cJSON_Delete(a->msg);
  free(a->tool);
  free(a->dlp);
  free(a);
}

static void ask_unlink(aip_wrapper *w, aip_wrapper_ask *a) {
  for (aip_wrapper_ask **pp = &w->asks; *pp; pp = &(*pp)->next) {
    if (*pp != a) continue;
    *pp = a->next;
    w->asks_n--;
    break;
  }
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t *)&a->timer, ask_closed);
}

/* Refuses a call that asked for approval: audit, then -32004 or -32005 to the client. */
static void refuse(aip_wrapper *w, const cJSON *id, const char *tool, const cJSON *args,
                   aip_decision d, int timed_out, const char *why, int answer) {
  aip_decision_ask_refused(&d, timed_out);
  snprintf(d.reason, sizeof(d.reason), "%s", why);
  aip_wrapper_audit(w, "tools/call", &d, timed_out ? "EXPIRED" : "DENIED", tool, args);
  if (!answer) return;
  aip_buf b;
  aip_buf_init(&b);
  if (!aip_decision_error(&b, id, &d, tool)) aip_wrapper_to_client(w, b.data, b.len);
  aip_buf_free(&b);
}

/* Tells the client to drop our question (MCP: a request given up on gets a cancellation). */
static void cancel_elicitation(aip_wrapper *w, const aip_wrapper_ask *a, const char *reason) {
  cJSON *n = aip_elicit_cancelled(a->eid, reason);
  aip_buf b;
  aip_buf_init(&b);
  if (n && !aip_json_print(&b, n)) aip_wrapper_to_client(w, b.data, b.len);
  aip_buf_free(&b);
  cJSON_Delete(n);
}

static void on_timeout(uv_timer_t *t) {
  aip_wrapper_ask *a = t->data;
  aip_wrapper *w = a->w;
  char why[96];
  snprintf(why, sizeof(why), "no answer to the approval request within %llu ms",
           (unsigned long long)w->approval_timeout_ms);
  aip_warn("tool %s: %s", a->tool, why);
  cancel_elicitation(w, a, "approval timed out");
  refuse(w, a->id, a->tool, a->args, a->d, 1, why, 1);
  ask_unlink(w, a);
}

static int send_elicitation(aip_wrapper *w, const aip_wrapper_ask *a) {
  /* the question shows the arguments DLP-redacted, as the gateway's approval records do */
  cJSON *shown = aip_dlp_redact_copy(&w->dlp_run, a->args);
  cJSON *r = aip_elicit_request(a->eid, w->version, a->tool, w->agent, shown ? shown : a->args);
  cJSON_Delete(shown);
  aip_buf b;
  aip_buf_init(&b);
  int err = r ? aip_json_print(&b, r) : -ENOMEM;
  if (!err) aip_wrapper_to_client(w, b.data, b.len);
  aip_buf_free(&b);
  cJSON_Delete(r);
  return err;
}

void aip_wrapper_ask_start(aip_wrapper *w, cJSON *msg, const cJSON *id, const char *tool,
                           const cJSON *args, const aip_decision *d, const char *dlp) {
  const char *why = NULL;
  if (!session_can_elicit(w))
    why = "approval required, but the client did not declare form elicitation";
  else if (w->asks_n >= MAX_PENDING_ASKS)
    why = "approval required, but too many approvals are already pending";
  else if (w->in_eof)
    why = "approval required, but the client closed its input";
  aip_wrapper_ask *a = why ? NULL : calloc(1, sizeof(*a));
  if (a) a->tool = strdup(tool);
  if (!why && (!a || !a->tool)) why = "approval required, but out of memory";
  if (why) {
    aip_info("tool %s: %s; denied", tool, why);
    refuse(w, id, tool, args, *d, 0, why, 1);
    if (a) free(a->tool);
    free(a);
    cJSON_Delete(msg);
    return;
  }
  a->w = w;
  a->dlp = dlp && *dlp ? strdup(dlp) : NULL; /* no memory: the record goes without the counts */
  a->msg = msg;
  a->id = id;
  a->args = args;
  a->d = *d;
  snprintf(a->eid, sizeof(a->eid), "%s%llu", w->elicit_prefix,
           (unsigned long long)++w->ask_seq);
  uv_timer_init(w->loop, &a->timer);
  a->timer.data = a;
  a->next = w->asks;
  w->asks = a;
  w->asks_n++;
  aip_wrapper_audit(w, "tools/call", d, "ASK", tool, args);
  aip_info("tool %s needs approval: asking the client (%s)", tool, a->eid);
  send_elicitation(w, a);
  uv_timer_start(&a->timer, on_timeout, w->approval_timeout_ms, 0);
}

void aip_wrapper_ask_answer(aip_wrapper *w, const aip_rpc_msg *m) {
  aip_wrapper_ask *a = w->asks;
  while (a && strcmp(a->eid, m->id->valuestring) != 0) a = a->next;
  if (!a) {
    aip_warn("answer to an unknown or expired approval request %.80s; dropped",
             m->id->valuestring);
    return;
  }
  const char *why = NULL;
  if (aip_elicit_approved(m, &why)) {
    aip_decision d = a->d;
    d.kind = AIP_DECISION_ALLOW;
    d.error_code = 0;
    d.violation = 0;
    snprintf(d.reason, sizeof(d.reason), "approved by the user (MCP elicitation)");
    aip_wrapper_audit(w, "tools/call", &d, "APPROVED", a->tool, a->args);
    aip_info("tool %s: approved (%s)", a->tool, a->eid);
    /* followed by the ALLOW record of the call, when it ends (docs/audit.md) */
    aip_decision allow = {.kind = AIP_DECISION_ALLOW};
    aip_wrapper_forward_call(w, a->msg, &allow, a->tool, a->args, a->dlp);
  } else {
    aip_info("tool %s: %s (%s)", a->tool, why, a->eid);
    refuse(w, a->id, a->tool, a->args, a->d, 0, why, 1);
  }
  ask_unlink(w, a);
}

int aip_wrapper_ask_cancel(aip_wrapper *w, const cJSON *request_id) {
  for (aip_wrapper_ask *a = w->asks; a; a = a->next) {
    if (!cJSON_Compare(a->id, request_id, 1)) continue;
    aip_info("tool %s: the client cancelled the call while it waited for approval", a->tool);
    cancel_elicitation(w, a, "the tool call was cancelled");
    refuse(w, a->id, a->tool, a->args, a->d, 0, "the client cancelled the call", 0);
    ask_unlink(w, a);
    return 1;
  }
  return 0;
}

void aip_wrapper_ask_end_all(aip_wrapper *w, int answer, const char *why) {
  while (w->asks) {
    aip_wrapper_ask *a = w->asks;
    refuse(w, a->id, a->tool, a->args, a->d, 0, why, answer);
    ask_unlink(w, a);
  }
}
