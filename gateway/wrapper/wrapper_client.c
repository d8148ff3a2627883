/* wrapper_client.c -- client -> server: every line from our stdin is parsed strictly, checked
 * against the policy, and either answered here or forwarded to the child.
 *
 * Unlike the reference proxy (reference/aip.md section 5.6) nothing reaches the server
 * unchecked: invalid JSON gets -32700 instead of being forwarded raw, keys are exact-case with
 * duplicates and case variants refused, batches are checked element by element (and accepted only
 * on a 2025-03-26 session), answers to server requests pass without a method check, notifications
 * are never answered. What the child receives is the checked tree, re-serialized.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway/core/decision_audit.h"
#include "gateway/obs/clock.h"
#include "gateway/obs/log.h"
#include "gateway/wrapper/wrapper.h"

void aip_wrapper_audit_ex(aip_wrapper *w, const char *direction, const char *method,
                          const aip_decision *d, const char *decision, const char *tool,
                          const cJSON *args, const char *dlp, int64_t latency_us) {
  /* the one record builder of both front ends (core/decision_audit.h) */
  aip_core_who who = {.audit = w->audit,
                      .agent = w->agent,
                      .session_id = w->session_id,
                      .doc = w->doc,
                      .dlp_run = &w->dlp_run};
  aip_core_audit_more more = {.direction = direction,
                              .dlp = dlp,
                              .latency_us = latency_us,
                              .has_latency = latency_us >= 0};
  aip_core_audit(&who, method, d, decision, tool, args, &more);
}

void aip_wrapper_audit(aip_wrapper *w, const char *method, const aip_decision *d,
                       const char *decision, const char *tool, const cJSON *args) {
  aip_wrapper_audit_ex(w, NULL, method, d, decision, tool, args, NULL, -1);
}

char *aip_wrapper_id_key(const cJSON *id) {
  aip_buf b;
  aip_buf_init(&b);
  int err = -1;
  if (cJSON_IsString(id)) {
    err = aip_buf_puts(&b, "s");
    if (!err) err = aip_buf_puts(&b, id->valuestring);
  } else if (cJSON_IsNumber(id)) {
    err = aip_buf_printf(&b, "n%.17g", id->valuedouble);
  }
  if (err) {
    aip_buf_free(&b);
    return NULL;
  }
  return aip_buf_steal(&b, NULL);
}

static void send_buf(aip_wrapper *w, aip_buf *b) {
  if (b->len) aip_wrapper_to_client(w, b->data, b->len);
  aip_buf_free(b);
}

void aip_wrapper_reply_error(aip_wrapper *w, const cJSON *id, int code, const char *message,
                             const char *reason) {
  const char *kv[] = {"reason", reason, NULL};
  aip_buf b;
  aip_buf_init(&b);
  cJSON *null_id = id ? NULL : cJSON_CreateNull();
  aip_rpc_error(&b, id ? id : null_id, code, message, reason ? kv : NULL);
  cJSON_Delete(null_id);
  send_buf(w, &b);
}

static void reply_decision(aip_wrapper *w, const cJSON *id, const aip_decision *d,
                           const char *subject) {
  aip_buf b;
  aip_buf_init(&b);
  aip_decision_error(&b, id, d, subject); /* any refusal, AIP's or ours (engine/jsonrpc.c) */
  send_buf(w, &b);
}

void aip_wrapper_forward(aip_wrapper *w, const cJSON *msg) {
  aip_buf b;
  aip_buf_init(&b);
  if (aip_json_print(&b, msg)) {
    aip_error("out of memory re-serializing a message; dropped");
  } else {
    aip_wrapper_dlp_track(w, msg);
    aip_wrapper_to_child(w, b.data, b.len);
  }
  aip_buf_free(&b);
}

/* ---- what the wrapper learns from the client ------------------------------------------------ */

/* initialize: the id (to spot the server's answer, which names the protocol version) and
 * whether the client can be asked (elicitation). */
static void note_initialize(aip_wrapper *w, const aip_rpc_msg *m) {
  free(w->init_key);
  w->init_key = aip_wrapper_id_key(m->id);
  w->client_elicit = aip_wrapper_elicit_capable(m->params);
}

/* tools/list: remember the id so the answer can be filtered (wrapper_server.c). Returns 0, or
 * -1 when too many lists are in flight (a server that never answers must not grow the map). */
#define MAX_LISTS_IN_FLIGHT 1024
static int note_tools_list(aip_wrapper *w, const aip_rpc_msg *m) {
  char *key = aip_wrapper_id_key(m->id);
  if (!key) return -1;
  if (aip_map_get(&w->lists, key, strlen(key))) { /* a reused id: filtered once either way */
    free(key);
    return 0;
  }
  if (w->lists.used >= MAX_LISTS_IN_FLIGHT || aip_map_put(&w->lists, key, strlen(key), key)) {
    free(key);
    return -1;
  }
  return 0;
}

static void trace(aip_wrapper *w, const aip_rpc_msg *m, const char *what) {
  if (!w->verbose) return;
  char id[64] = "";
  if (cJSON_IsString(m->id)) snprintf(id, sizeof(id), " id=\"%.40s\"", m->id->valuestring);
  else if (cJSON_IsNumber(m->id)) snprintf(id, sizeof(id), " id=%.17g", m->id->valuedouble);
  static const char *kinds[] = {"invalid", "request", "notification", "response", "error"};
  aip_debug("client -> server: %s%s%s%s: %s", kinds[m->kind], m->method ? " " : "",
            m->method ? m->method : "", id, what);
}

/* ---- one message ---------------------------------------------------------------------------- */

/* The id of an INVALID message, when it has a usable one (else the error goes with id null). */
static const cJSON *readable_id(const cJSON *root) {
  const cJSON *id = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "id") : NULL;
  return cJSON_IsString(id) || cJSON_IsNumber(id) ? id : NULL;
}

static int is_our_answer(const aip_wrapper *w, const aip_rpc_msg *m) {
  return cJSON_IsString(m->id) &&
         strncmp(m->id->valuestring, w->elicit_prefix, strlen(w->elicit_prefix)) == 0;
}

static void refuse(aip_wrapper *w, const aip_rpc_msg *m, const aip_verdict *v) {
  const char *method = v->tool_call ? "tools/call" : m->method;
  if (v->d.error_code != AIP_RPC_INVALID_PARAMS) /* malformed, not a policy decision */
    aip_wrapper_audit(w, method, &v->d, NULL, v->tool, v->args);
  trace(w, m, v->reply ? "refused" : "dropped (blocked notification)");
  if (v->reply) reply_decision(w, m->id, &v->d, v->subject);
}

/* A request or notification that passed: note what the wrapper must watch, then forward.
 * Methods are compared normalized, as the policy saw them. */
static void pass(aip_wrapper *w, cJSON *root, const aip_rpc_msg *m, const aip_verdict *v,
                 const char *dlp) {
  if (v->tool_call)
    aip_wrapper_audit_ex(w, NULL, "tools/call", &v->d, NULL, v->tool, v->args, dlp, -1);
  char *norm = v->tool_call ? NULL : aip_normalize_name(m->method, strlen(m->method));
  const char *n = norm ? norm : "";
  int req = m->kind == AIP_RPC_REQUEST, stop = 0;
  if (req && strcmp(n, "initialize") == 0) {
    note_initialize(w, m);
  } else if (req && strcmp(n, "tools/list") == 0 && note_tools_list(w, m)) {
    aip_wrapper_reply_error(w, m->id, AIP_RPC_INTERNAL_ERROR, "Internal error",
                            "too many tools/list requests in flight");
    stop = 1;
  } else if (!req && strcmp(n, "notifications/cancelled") == 0) {
    const cJSON *rid = cJSON_IsObject(m->params)
                           ? cJSON_GetObjectItemCaseSensitive(m->params, "requestId") : NULL;
    /* the child never saw a call that is still waiting for approval */
    if (rid && aip_wrapper_ask_cancel(w, rid)) {
      trace(w, m, "ended a pending approval");
      stop = 1;
    }
  }
  free(norm);
  if (stop) return;
  trace(w, m, "forwarded");
  aip_wrapper_forward(w, root);
}

/* Takes ownership of `root` (one message, not an array). */
static void handle_message(aip_wrapper *w, cJSON *root) {
  aip_rpc_msg m;
  aip_rpc_classify(root, &m);
  if (m.kind == AIP_RPC_INVALID) {
    trace(w, &m, m.invalid_reason);
    aip_wrapper_reply_error(w, readable_id(root), AIP_RPC_INVALID_REQUEST, "Invalid Request",
                            m.invalid_reason);
  } else if ((m.kind == AIP_RPC_RESPONSE || m.kind == AIP_RPC_ERROR) && is_our_answer(w, &m)) {
    aip_wrapper_ask_answer(w, &m);
  } else if (m.kind == AIP_RPC_RESPONSE || m.kind == AIP_RPC_ERROR) {
    aip_buf dlp;
    aip_buf_init(&dlp);
    if (aip_wrapper_dlp_request(w, root, &m, NULL, &dlp)) {
      trace(w, &m, "dropped (DLP)");
    } else {
      trace(w, &m, "forwarded (answer to a server request)");
      aip_wrapper_forward(w, root);
    }
    aip_buf_free(&dlp);
  } else {
    aip_verdict v;
    /* the one clock of rate limits (obs/clock.h), as `aip serve`: wall time, whose buckets
     * mean the same in both front ends (uv_now is the loop's monotonic clock, for timeouts) */
    aip_policy_check_msg(w->policy, &m, aip_wall_ms(), w->rate, &v);
    aip_buf dlp;
    aip_buf_init(&dlp);
    /* request DLP on every message the policy lets through (or asks about): a blocked one
     * ends here, a redacted one goes on redacted (the human is asked about that one) */
    if ((!v.d.error_code || v.d.kind == AIP_DECISION_ASK) &&
        aip_wrapper_dlp_request(w, root, &m, &v, &dlp)) {
      trace(w, &m, "refused (DLP)");
      aip_buf_free(&dlp);
      cJSON_Delete(root);
      return;
    }
    if (v.d.kind == AIP_DECISION_ASK && m.kind == AIP_RPC_REQUEST) {
      aip_buf_free(&dlp);
      trace(w, &m, "needs approval");
      aip_wrapper_ask_start(w, root, m.id, v.tool, v.args, &v.d);
      return; /* the ask owns the message now */
    }
    if (v.d.kind == AIP_DECISION_ASK) { /* a tools/call notification: nobody to ask for it */
      aip_decision_ask_refused(&v.d, 0);
      aip_wrapper_audit(w, "tools/call", &v.d, "DENIED", v.tool, v.args);
      trace(w, &m, "dropped (ask on a notification)");
    } else if (v.d.error_code) {
      refuse(w, &m, &v);
    } else {
      pass(w, root, &m, &v, dlp.data);
    }
    aip_buf_free(&dlp);
  }
  cJSON_Delete(root);
}

/* 2025-03-26 batches: each element is handled as if it had come alone; answers (errors from us,
 * results from the server) come back one per line, which that revision allows. */
static void handle_batch(aip_wrapper *w, cJSON *arr) {
  if (strcmp(w->version, "2025-03-26") != 0) {
    aip_warn("client sent a batch on a %s session; refused",
             w->version[0] ? w->version : "not yet initialized");
    aip_wrapper_reply_error(w, NULL, AIP_RPC_INVALID_REQUEST, "Invalid Request",
                            "JSON-RPC batches are only allowed in protocol version 2025-03-26");
  } else if (!arr->child) {
    aip_wrapper_reply_error(w, NULL, AIP_RPC_INVALID_REQUEST, "Invalid Request", "empty batch");
  } else {
    while (arr->child) handle_message(w, cJSON_DetachItemViaPointer(arr, arr->child));
  }
  cJSON_Delete(arr);
}

void aip_wrapper_client_line(aip_wrapper *w, char *line, size_t n) {
  size_t i = 0;
  while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
  if (i == n || w->finishing || w->client_gone) return; /* blank lines: skipped, as the reference */
  cJSON *root = NULL;
  aip_json_status st = aip_json_parse(line, n, &root);
  if (st != AIP_JSON_OK) {
    aip_warn("client sent %s; answered with an error", aip_json_status_str(st));
    int code = st == AIP_JSON_NOMEM ? AIP_RPC_INTERNAL_ERROR
               : st == AIP_JSON_DUPLICATE_KEY || st == AIP_JSON_TOO_DEEP ? AIP_RPC_INVALID_REQUEST
                                                                       : AIP_RPC_PARSE_ERROR;
    const char *msg = code == AIP_RPC_PARSE_ERROR     ? "Parse error"
                      : code == AIP_RPC_INVALID_REQUEST ? "Invalid Request"
                                                        : "Internal error";
    aip_wrapper_reply_error(w, NULL, code, msg, aip_json_status_str(st));
    return;
  }
  if (cJSON_IsArray(root)) handle_batch(w, root);
  else handle_message(w, root);
}

void aip_wrapper_client_oversize(aip_wrapper *w) {
  char why[96];
  snprintf(why, sizeof(why), "message larger than %llu bytes",
           (unsigned long long)w->max_message);
  aip_warn("client sent a %s; answered with an error", why);
  aip_wrapper_reply_error(w, NULL, AIP_RPC_PARSE_ERROR, "Parse error", why);
}
