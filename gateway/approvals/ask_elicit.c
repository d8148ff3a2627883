/* ask_elicit.c -- `ask_via: elicitation`: a tools/call whose decision is `ask` is put to the
 * agent's own user through its MCP client instead of the operators' queue.
 *
 * The question (elicitation/create, gateway/approvals/elicit.c) goes out on the call's own POST stream,
 * switched to SSE, since it relates to that call (reference/mcp.md section 7.3); the GET stream
 * may not exist. The client answers with a POST of a JSON-RPC response to our id,
 * "aip-elicit-<32 hex>", registered with the session's outstanding requests (mcp/outstanding.h):
 * random, so it can be neither guessed nor confused with anything else.
 * accept + approve: true forwards the call; anything else is -32004; no answer within
 * approvals.timeout is -32005. The outcome is audited as an operator's decision would be
 * (mcp_dispatch.c). A session that cannot elicit (no capability, protocol before 2025-06-18)
 * uses the queue instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/approvals/elicit.h"
#include "gateway/approvals/ask_elicit.h"
#include "gateway/core/agent.h"
#include "gateway/core/dispatch.h"
#include "gateway/mcp/outstanding.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

#define ELICIT_PREFIX "aip-elicit-"

struct aip_ask_elicit {
  aip_pending *p; /* NULL once the call stopped waiting (the timer is closing) */
  uv_timer_t timer;
  aip_outstanding out; /* out.id: our request id */
};

static void timer_closed(uv_handle_t *h) { free(h->data); }

/* The call stops waiting: unlink both ways, free once the timer is closed. */
static void detach(aip_ask_elicit *e) {
  aip_outstanding_remove(e->p->sess, &e->out);
  e->p->elicit = NULL;
  e->p = NULL;
  uv_timer_stop(&e->timer);
  uv_close((uv_handle_t *)&e->timer, timer_closed);
}

/* Withdraws the question on the call's stream (a request given up on gets a cancellation). */
static void withdraw(aip_pending *p, const char *id, const char *reason) {
  cJSON *n = aip_elicit_cancelled(id, reason);
  if (n) aip_pending_emit(p, n, 0);
}

static void on_timeout(uv_timer_t *t) {
  aip_ask_elicit *e = t->data;
  aip_pending *p = e->p;
  char id[sizeof(e->out.id)], why[96];
  memcpy(id, e->out.id, sizeof(id));
  snprintf(why, sizeof(why), "no answer to the elicitation within %llu ms",
           (unsigned long long)p->sess->agent->gw->cfg->approvals_timeout_ms);
  aip_warn("agent %s, tool %s: %s", p->sess->agent->cfg->name, p->tool, why);
  detach(e);
  withdraw(p, id, "approval timed out");
  aip_ask_outcome(p, AIP_APPROVAL_EXPIRED, NULL, why);
}

static void on_answer(void *data, aip_session *s, const aip_rpc_msg *m);

int aip_ask_elicit_start(aip_pending *p) {
  aip_session *s = p->sess;
  aip_agent_rt *a = s->agent;
  if (!aip_elicit_capable(s->client_caps) || !aip_elicit_version_ok(s->version)) return -ENOTSUP;
  if (!aip_pending_connected(p)) return -ENOTCONN; /* nowhere to ask; the queue still works for a retry */
  aip_ask_elicit *e = calloc(1, sizeof(*e));
  if (!e) return -ENOMEM;
  if (aip_outstanding_add(s, &e->out, ELICIT_PREFIX, on_answer, e)) {
    free(e);
    return -ENOMEM;
  }
  /* the question shows the arguments DLP-redacted, as the operators' queue does */
  aip_dlp_run r = aip_agent_dlp_run(a);
  cJSON *shown = aip_dlp_redact_copy(&r, p->args);
  cJSON *msg = aip_elicit_request(e->out.id, s->version, p->tool,
                                  aip_policy_doc_of(a->policy)->name, shown ? shown : p->args);
  cJSON_Delete(shown);
  if (!msg) {
    aip_outstanding_remove(s, &e->out);
    free(e);
    return -ENOMEM;
  }
  e->p = p;
  p->elicit = e;
  uv_timer_init(a->gw->loop, &e->timer);
  e->timer.data = e;
  uv_timer_start(&e->timer, on_timeout, a->gw->cfg->approvals_timeout_ms, 0);
  aip_info("agent %s, tool %s needs approval: asking the agent's user (%s)", a->cfg->name,
           p->tool, e->out.id);
  aip_pending_emit(p, msg, 0); /* switches the call's answer to SSE */
  return 0;
}

/* The client's response or error to our elicitation (the registry routed it here). The
 * session cannot end while one of its calls waits: aip_session_end ends its calls first, and
 * the call's end withdraws the question (aip_ask_elicit_drop), so `m` is never NULL here. */
static void on_answer(void *data, aip_session *s, const aip_rpc_msg *m) {
  aip_ask_elicit *e = data;
  aip_pending *p = e->p;
  if (!m || !p) return;
  aip_info("agent %s, tool %s: the user answered (%s)", s->agent->cfg->name, p->tool, e->out.id);
  detach(e);
  const char *why = NULL;
  if (aip_elicit_approved(m, &why))
    aip_ask_outcome(p, AIP_APPROVAL_APPROVED, "the agent's user (MCP elicitation)", NULL);
  else
    aip_ask_outcome(p, AIP_APPROVAL_DENIED, NULL, why);
}

void aip_ask_elicit_drop(aip_pending *p, const char *why) {
  aip_ask_elicit *e = p->elicit;
  if (!e) return;
  char id[sizeof(e->out.id)];
  memcpy(id, e->out.id, sizeof(id));
  detach(e);
  withdraw(p, id, why);
  aip_ask_abandoned(p, why);
}
