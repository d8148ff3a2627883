/* server_requests.c -- sampling, elicitation and roots requests of an agent's servers, put to
 * the agent (docs/routing.md, "Server-to-client requests").
 *
 * Where a request goes, in order:
 *   1. the call it belongs to: an HTTP server sends it on that call's POST stream (the
 *      transport says which call); a stdio server may name it in params._meta.relatedRequestId.
 *      Otherwise, for a stdio server only (one pipe, no per-call stream): the most recent call
 *      of the agent in flight on that server whose session declared the capability; when calls
 *      are in flight and none of their sessions declared it, the request is refused (it most
 *      likely belongs to one of them).
 *      The request goes out on that call's SSE stream (its POST switches to SSE), or on the
 *      session's GET stream when the POST is gone.
 *   2. unrelated to any call (an HTTP server's GET stream, a stdio request with no call in
 *      flight): the most recently used session of the agent that declared the capability and
 *      has a GET stream open (aip_session_push).
 * A session that did not declare the capability is never sent the request; the server gets
 * -32601 instead. What cannot be delivered (no stream, the agent's limit, DLP failed) is -32603.
 *
 * Ids both ways: the agent sees "aip-s2c-<32 hex>" (the session's registry of outstanding
 * requests, mcp/outstanding.h, holds it); the server's own id is restored on the answer. An
 * answer to an id the session was not sent, or a second answer, is refused in mcp_http.c.
 *
 * Bounds: limits.max_server_requests_per_agent awaiting the agent at once; each waits at most
 * limits.request_timeout; the session's end or the server's answers the server with an error
 * (or withdraws the request from the agent with notifications/cancelled).
 *
 * Policy: the agent's DLP runs on the request's params toward the agent (response rules, as on
 * everything a server sends) and on the agent's answer toward the server (request rules, under
 * dlp.scan_requests and on_request_match, as on everything an agent sends). AIP's method
 * rules decide the methods an agent calls, not the requests its servers make, so they do not
 * apply here (the stdio wrapper forwards these unchecked as well); the capability the agent's
 * client declared is the agent's consent. Every request leaves one audit record
 * (direction downstream, method, server, outcome; never the contents).
 */
#include "gateway/core/server_requests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/approvals/elicit.h"
#include "gateway/core/agent.h"
#include "gateway/core/decision_audit.h"
#include "gateway/mcp/outstanding.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/session.h"
#include "gateway/obs/log.h"
#include "gateway/serve/gw.h"

#define S2C_PREFIX "aip-s2c-"
#define AUDIT_DOWN "Audit log unavailable"

struct aip_s2c {
  aip_agent_rt *a;
  aip_upstream *u;
  aip_session *s;     /* the session it was sent to */
  aip_pending *p;     /* the call it came with (may have ended since: see live_pending) */
  cJSON *upstream_id; /* the server's id, restored on the answer */
  char method[32];
  uint64_t start_ns;
  aip_buf dlp_audit;  /* `[{"rule":..,"count":..}]` both ways, or empty */
  uv_timer_t timer;   /* limits.request_timeout */
  aip_outstanding out;
  aip_s2c *prev, *next; /* in a->s2c */
};

/* ---- pure ---------------------------------------------------------------------------------- */

const char *aip_s2c_capability(const char *method) {
  if (strcmp(method, "sampling/createMessage") == 0) return "sampling";
  if (strcmp(method, "elicitation/create") == 0) return "elicitation";
  if (strcmp(method, "roots/list") == 0) return "roots";
  return NULL;
}

int aip_s2c_capable(const cJSON *caps, const char *version, const char *method,
                    const cJSON *params) {
  const char *cap = aip_s2c_capability(method);
  if (!cap || !cJSON_IsObject(caps)) return 0;
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(caps, cap);
  if (!cJSON_IsObject(c)) return 0;
  if (strcmp(cap, "elicitation") != 0) return 1;
  if (!aip_elicit_version_ok(version)) return 0;
  /* 2025-11-25 url mode needs the client's "url"; form mode (no mode, or "form") its form */
  const cJSON *mode = cJSON_IsObject(params) ? cJSON_GetObjectItemCaseSensitive(params, "mode")
                                             : NULL;
  if (cJSON_IsString(mode) && strcmp(mode->valuestring, "url") == 0)
    return cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "url"));
  if (mode && !(cJSON_IsString(mode) && strcmp(mode->valuestring, "form") == 0)) return 0;
  return aip_elicit_capable(caps);
}

/* ---- audit --------------------------------------------------------------------------------- */

static void audit(aip_agent_rt *a, aip_session *s, aip_upstream *u, const char *method,
                  const char *decision, int code, const char *reason, int64_t latency_us,
                  const char *dlp) {
  /* the one record builder (core/decision_audit.c): who, then the decision */
  aip_dlp_run run = aip_agent_dlp_run(a);
  aip_core_who who = {.audit = a->gw->audit,
                      .agent = a->cfg->name,
                      .session_id = s ? s->id : NULL,
                      .doc = a->policy ? aip_policy_doc_of(a->policy) : NULL,
                      .blocked_policy = a->blocked_policy,
                      .dlp_run = &run};
  aip_decision d = {.kind = code ? AIP_DECISION_BLOCK : AIP_DECISION_ALLOW, .error_code = code};
  if (reason) snprintf(d.reason, sizeof(d.reason), "%s", reason);
  aip_core_audit_more more = {.direction = "downstream",
                              .dlp = dlp,
                              .latency_us = latency_us,
                              .has_latency = latency_us >= 0,
                              .server = u->server->name};
  aip_core_audit(&who, method, &d, decision, NULL, NULL, &more);
}

/* The server hears `code`/`why` for a request no session takes; audited as BLOCK (unless the
 * audit log is what refuses it: nothing is written while it cannot take records). */
static void refuse(aip_agent_rt *a, aip_upstream *u, aip_session *s, cJSON *msg, int code,
                   const char *why) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(msg, "method");
  const char *method = cJSON_IsString(m) ? m->valuestring : "";
  aip_info("agent %s: %s request of server %s refused: %s", a->cfg->name, method,
           u->server->name, why);
  if (strcmp(why, AUDIT_DOWN) != 0) audit(a, s, u, method, "BLOCK", code, why, -1, NULL);
  aip_upstream_respond(u, cJSON_GetObjectItemCaseSensitive(msg, "id"),
                       aip_upstream_error_msg(code, why));
  cJSON_Delete(msg);
}

/* ---- finding the session ----------------------------------------------------------------- */

/* The agent's pending request that owns `call`, if any. */
static aip_pending *pending_of(aip_agent_rt *a, const aip_upstream_call *call) {
  for (aip_session *s = a->sessions; s; s = s->next)
    for (aip_pending *p = s->pending; p; p = p->next)
      if (p->call == call) return p;
  return NULL;
}

/* A stdio server's request that names no call: the agent's most recent call in flight on `u`
 * whose session can take it. *busy: calls are in flight on `u` (so the request is theirs). */
static aip_pending *guess_call(aip_agent_rt *a, aip_upstream *u, const char *method,
                               const cJSON *params, int *busy) {
  aip_pending *best = NULL;
  *busy = 0;
  for (aip_session *s = a->sessions; s; s = s->next)
    for (aip_pending *p = s->pending; p; p = p->next) {
      if (!p->call || aip_upstream_call_owner(p->call) != u) continue;
      *busy = 1;
      if (!aip_s2c_capable(s->client_caps, s->version, method, params)) continue;
      if (!best || p->start_ns > best->start_ns) best = p;
    }
  return best;
}

/* A request unrelated to a call: the most recently used session that can take it and has a GET
 * stream. *capable: some session declared the capability (but none has a stream open). */
static aip_session *unrelated_session(aip_agent_rt *a, const char *method, const cJSON *params,
                                      int *capable) {
  aip_session *best = NULL;
  *capable = 0;
  for (aip_session *s = a->sessions; s; s = s->next) {
    if (!s->initialized || !aip_s2c_capable(s->client_caps, s->version, method, params)) continue;
    *capable = 1;
    if (s->get_stream && (!best || s->last_used_ms > best->last_used_ms)) best = s;
  }
  return best;
}

/* Whether `p` is still one of its session's calls, and can still carry a message. */
static int live_pending(const aip_s2c *e) {
  if (!e->p) return 0;
  for (aip_pending *p = e->s->pending; p; p = p->next)
    if (p == e->p) return aip_pending_connected(p) && !p->stream;
  return 0;
}

/* ---- one request's life ------------------------------------------------------------------- */

static void timer_closed(uv_handle_t *h) {
  aip_s2c *e = h->data;
  cJSON_Delete(e->upstream_id);
  aip_buf_free(&e->dlp_audit);
  free(e);
}

/* Ends the request: the server gets `reply` (owned; NULL: it is gone), the audit its record. */
static void finish(aip_s2c *e, cJSON *reply, int code, const char *outcome) {
  aip_agent_rt *a = e->a;
  if (reply && aip_upstream_respond(e->u, e->upstream_id, reply))
    aip_info("agent %s: server %s went away before the answer to its %s", a->cfg->name,
             e->u->server->name, e->method);
  audit(a, e->s, e->u, e->method, "ALLOW", code, outcome,
        (int64_t)((uv_hrtime() - e->start_ns) / 1000), e->dlp_audit.len ? e->dlp_audit.data : NULL);
  aip_outstanding_remove(e->s, &e->out);
  if (e->prev) e->prev->next = e->next;
  else a->s2c = e->next;
  if (e->next) e->next->prev = e->prev;
  a->s2c_n--;
  uv_timer_stop(&e->timer);
  uv_close((uv_handle_t *)&e->timer, timer_closed);
}

/* Tells the agent the request is withdrawn (where it was sent, if that stream still exists). */
static void withdraw(aip_s2c *e, const char *reason) {
  cJSON *n = cJSON_CreateObject(), *params;
  cJSON_AddStringToObject(n, "jsonrpc", "2.0");
  cJSON_AddStringToObject(n, "method", "notifications/cancelled");
  cJSON_AddItemToObject(n, "params", params = cJSON_CreateObject());
  cJSON_AddStringToObject(params, "requestId", e->out.id);
  cJSON_AddStringToObject(params, "reason", reason);
  if (live_pending(e)) {
    aip_pending_emit(e->p, n, 0);
    return;
  }
  aip_session_push(e->s, n);
  cJSON_Delete(n);
}

static void on_timeout(uv_timer_t *t) {
  aip_s2c *e = t->data;
  char why[128];
  snprintf(why, sizeof(why), "the agent did not answer within %llu ms",
           (unsigned long long)e->a->gw->cfg->limits.request_timeout_ms);
  aip_warn("agent %s: %s request of server %s: %s", e->a->cfg->name, e->method,
           e->u->server->name, why);
  withdraw(e, "timed out");
  finish(e, aip_upstream_error_msg(AIP_RPC_INTERNAL_ERROR, why), AIP_RPC_INTERNAL_ERROR,
         "timed out");
}

/* The agent's answer, through request-side DLP (dlp.scan_requests), back to the server. */
static cJSON *answer_for_server(aip_s2c *e, const aip_rpc_msg *m, int *code, const char **outcome) {
  aip_agent_rt *a = e->a;
  const cJSON *src = m->root;
  cJSON *red = NULL;
  *outcome = m->kind == AIP_RPC_ERROR ? "answered with an error" : "answered";
  *code = 0;
  if (a->dlp) {
    aip_dlp_run r = aip_agent_dlp_run(a);
    aip_dlp_counts c;
    aip_dlp_counts_init(&c, a->dlp);
    aip_decision d;
    aip_dlp_req_outcome o = aip_dlp_scan_request(&r, m->root, &c, &red, &d);
    aip_agent_count_dlp(a, &c);
    aip_dlp_counts_json(a->dlp, &c, &e->dlp_audit);
    aip_dlp_counts_free(&c);
    if (o == AIP_DLP_REQ_FAILED) {
      *code = AIP_RPC_INTERNAL_ERROR;
      *outcome = "answer withheld: DLP could not scan it";
      return aip_upstream_error_msg(AIP_RPC_INTERNAL_ERROR, AIP_DLP_REQ_FAILED_MSG);
    }
    if (o == AIP_DLP_REQ_BLOCKED) {
      *code = AIP_ERR_FORBIDDEN;
      *outcome = "answer blocked: " AIP_DLP_REQ_BLOCKED_REASON;
      return aip_upstream_error_msg(AIP_ERR_FORBIDDEN, AIP_DLP_ANSWER_BLOCKED_MSG);
    }
    if (o == AIP_DLP_REQ_REDACTED) src = red;
  }
  cJSON *reply = cJSON_CreateObject();
  cJSON_AddStringToObject(reply, "jsonrpc", "2.0");
  const char *key = m->kind == AIP_RPC_ERROR ? "error" : "result";
  cJSON *body = cJSON_GetObjectItemCaseSensitive(src, key);
  cJSON_AddItemToObject(reply, key, cJSON_Duplicate(body, 1));
  cJSON_Delete(red);
  return reply;
}

static void on_answer(void *data, aip_session *s, const aip_rpc_msg *m) {
  aip_s2c *e = data;
  if (!m) {
    finish(e, aip_upstream_error_msg(AIP_RPC_INTERNAL_ERROR,
                                     "the agent's session ended before it answered"),
           AIP_RPC_INTERNAL_ERROR, "session ended");
    return;
  }
  int code;
  const char *outcome;
  cJSON *reply = answer_for_server(e, m, &code, &outcome);
  finish(e, reply, code, outcome);
}

/* Request-side params toward the agent through its response DLP (as everything a server sends
 * it). 0 and *out (owned, maybe the input); < 0 when the scan failed and failover blocks. */
static int redact_params(aip_s2c *e, cJSON *params, cJSON **out) {
  aip_agent_rt *a = e->a;
  *out = params;
  if (!a->dlp || !params) return 0;
  aip_dlp_run r = aip_agent_dlp_run(a);
  aip_buf raw, red;
  aip_buf_init(&raw);
  aip_buf_init(&red);
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, a->dlp);
  int rc = aip_json_print(&raw, params) ? -ENOMEM
                                        : aip_dlp_run_json(&r, AIP_DLP_RESPONSE, raw.data, raw.len,
                                                           &red, &c);
  if (rc > 0) {
    cJSON *parsed = NULL;
    if (aip_json_parse(red.data, red.len, &parsed) == AIP_JSON_OK) {
      cJSON_Delete(params);
      *out = parsed;
    } else {
      rc = -EINVAL;
    }
  }
  aip_agent_count_dlp(a, &c);
  aip_dlp_counts_json(a->dlp, &c, &e->dlp_audit);
  aip_dlp_counts_free(&c);
  aip_buf_free(&raw);
  aip_buf_free(&red);
  if (rc < 0 && aip_dlp_run_fail_open(&r)) {
    aip_warn("agent %s: DLP could not scan a server request (%s); forwarded (on_dlp_error: allow)",
             a->cfg->name, aip_dlp_error_name(rc));
    return 0;
  }
  return rc < 0 ? rc : 0;
}

/* params._meta.relatedRequestId names our call's upstream id, which means nothing to the agent:
 * it becomes the agent's own id of that call, or goes when the request went elsewhere. */
static void rekey_related(cJSON *params, const aip_pending *p) {
  cJSON *meta = cJSON_IsObject(params) ? cJSON_GetObjectItemCaseSensitive(params, "_meta") : NULL;
  if (!cJSON_IsObject(meta) || !cJSON_GetObjectItemCaseSensitive(meta, "relatedRequestId")) return;
  if (p) cJSON_ReplaceItemInObjectCaseSensitive(meta, "relatedRequestId", cJSON_Duplicate(p->client_id, 1));
  else cJSON_DeleteItemFromObjectCaseSensitive(meta, "relatedRequestId");
}

static uint64_t max_s2c(const aip_agent_rt *a) {
  return a->gw->cfg->limits.max_server_requests_per_agent;
}

void aip_s2c_request(aip_agent_rt *a, aip_upstream *u, cJSON *msg, aip_upstream_call *related) {
  aip_rpc_msg m;
  if (aip_rpc_classify(msg, &m) != AIP_RPC_REQUEST) { /* upstream.c classified it so */
    cJSON_Delete(msg);
    return;
  }
  char why[320];
  const char *cap = aip_s2c_capability(m.method);
  if (!cap) {
    refuse(a, u, NULL, msg, AIP_RPC_METHOD_NOT_FOUND, "Method not found");
    return;
  }
  if (!a->policy || a->gw->draining) {
    refuse(a, u, NULL, msg, AIP_RPC_INTERNAL_ERROR,
           a->policy ? "the gateway is shutting down" : "the agent's policy is not loaded");
    return;
  }
  if (aip_audit_admit(a->gw->audit)) {
    refuse(a, u, NULL, msg, AIP_RPC_INTERNAL_ERROR, AUDIT_DOWN);
    return;
  }
  if (a->s2c_n >= max_s2c(a)) {
    snprintf(why, sizeof(why), "Too many server requests awaiting agent %.200s "
             "(limits.max_server_requests_per_agent)", a->cfg->name);
    refuse(a, u, NULL, msg, AIP_RPC_INTERNAL_ERROR, why);
    return;
  }
  /* 1. the call it belongs to */
  aip_pending *p = related ? pending_of(a, related) : NULL;
  int busy = 0;
  if (!p && !related && !u->server->url) p = guess_call(a, u, m.method, m.params, &busy);
  aip_session *s = p ? p->sess : NULL;
  if (p && !aip_s2c_capable(s->client_caps, s->version, m.method, m.params)) {
    snprintf(why, sizeof(why), "Method not found: the agent's session did not declare the %s "
             "capability", cap);
    refuse(a, u, s, msg, AIP_RPC_METHOD_NOT_FOUND, why);
    return;
  }
  if (!p && busy) {
    snprintf(why, sizeof(why), "Method not found: no session with a call in flight on this "
             "server declared the %s capability", cap);
    refuse(a, u, NULL, msg, AIP_RPC_METHOD_NOT_FOUND, why);
    return;
  }
  if (p && !(aip_pending_connected(p) && !p->stream)) {
    /* the call's POST is gone (or half an answer is on it): the session's GET stream, if any */
    if (!s->get_stream) {
      refuse(a, u, s, msg, AIP_RPC_INTERNAL_ERROR,
             "the agent's stream for this call is closed and its session has no GET stream");
      return;
    }
    p = NULL;
  }
  /* 2. unrelated: a session that can take it on its GET stream */
  if (!s) {
    int capable;
    s = unrelated_session(a, m.method, m.params, &capable);
    if (!s) {
      if (capable)
        snprintf(why, sizeof(why), "no session of the agent that declared the %s capability has "
                 "a GET stream open", cap);
      else
        snprintf(why, sizeof(why), "Method not found: no session of the agent declared the %s "
                 "capability", cap);
      refuse(a, u, NULL, msg, capable ? AIP_RPC_INTERNAL_ERROR : AIP_RPC_METHOD_NOT_FOUND, why);
      return;
    }
  }
  aip_s2c *e = calloc(1, sizeof(*e));
  if (!e) {
    refuse(a, u, s, msg, AIP_RPC_INTERNAL_ERROR, "out of memory");
    return;
  }
  e->a = a;
  e->u = u;
  e->s = s;
  e->p = p;
  e->start_ns = uv_hrtime();
  snprintf(e->method, sizeof(e->method), "%s", m.method);
  aip_buf_init(&e->dlp_audit);
  cJSON *params = m.params ? cJSON_DetachItemViaPointer(msg, m.params) : NULL;
  rekey_related(params, p);
  cJSON *shown = NULL;
  if (redact_params(e, params, &shown) < 0) {
    cJSON_Delete(params);
    aip_buf_free(&e->dlp_audit);
    free(e);
    refuse(a, u, s, msg, AIP_RPC_INTERNAL_ERROR, "Request withheld: DLP could not scan it");
    return;
  }
  if (aip_outstanding_add(s, &e->out, S2C_PREFIX, on_answer, e)) {
    cJSON_Delete(shown);
    aip_buf_free(&e->dlp_audit);
    free(e);
    refuse(a, u, s, msg, AIP_RPC_INTERNAL_ERROR, "out of memory");
    return;
  }
  e->upstream_id = cJSON_DetachItemFromObjectCaseSensitive(msg, "id");
  cJSON_Delete(msg);
  e->next = a->s2c;
  if (a->s2c) a->s2c->prev = e;
  a->s2c = e;
  a->s2c_n++;
  uv_timer_init(a->gw->loop, &e->timer);
  e->timer.data = e;
  uv_timer_start(&e->timer, on_timeout, a->gw->cfg->limits.request_timeout_ms, 0);
  cJSON *out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "jsonrpc", "2.0");
  cJSON_AddStringToObject(out, "id", e->out.id);
  cJSON_AddStringToObject(out, "method", e->method);
  if (shown) cJSON_AddItemToObject(out, "params", shown);
  aip_info("agent %s: %s request of server %s sent to session %.8s... (%s)", a->cfg->name,
           e->method, u->server->name, s->id, p ? "on its call's stream" : "on its GET stream");
  if (p) {
    aip_pending_emit(p, out, 0); /* switches the call's answer to SSE */
  } else {
    aip_session_push(s, out);
    cJSON_Delete(out);
  }
}

void aip_s2c_upstream_reset(aip_agent_rt *a, aip_upstream *u) {
  for (aip_s2c *e = a->s2c, *n; e; e = n) {
    n = e->next;
    if (e->u != u) continue;
    withdraw(e, "the server went away");
    finish(e, NULL, AIP_RPC_INTERNAL_ERROR, "the server went away");
  }
}

void aip_s2c_roots_changed(aip_session *s) {
  aip_agent_rt *a = s->agent;
  /* every server of the agent may have asked any of its sessions for roots: all hear it (a
   * server that is not up learns the roots when it next asks) */
  for (size_t i = 0; i < a->cfg->servers_n; i++)
    aip_upstream_notify(a->ups[i], "notifications/roots/list_changed", NULL);
}
