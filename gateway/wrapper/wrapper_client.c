/* wrapper_client.c -- client -> server: every line from our stdin is parsed strictly, checked
 * against the policy, and either answered here or forwarded to the child.
 *
 * Unlike the reference proxy (reference/aip.md section 5.6) nothing reaches the server
 * unchecked: invalid JSON gets -32700 instead of being forwarded raw, keys are exact-case with
 * duplicates and case variants refused, batches are checked element by element (and accepted only
 * on a 2025-03-26 session), answers to server requests pass without a method check, notifications
 * are never answered. What the child receives is the checked tree, re-serialized.
 * The decision itself is the core's (core/decide.c), shared with `aip serve`; this file parses,
 * and is the wrapper's side of aip_front_ops: answer on stdout, forward to the child (noting
 * initialize, tools/list and cancellations), hold an `ask` for the user.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/decide.h"
#include "gateway/obs/log.h"
#include "gateway/wrapper/wrapper.h"

void aip_wrapper_audit_ex(aip_wrapper *w, const char *direction, const char *method,
                          const aip_decision *d, const char *decision, const char *tool,
                          const cJSON *args, const char *dlp, int64_t latency_us) {
  /* the one record builder of both front ends (core/decision_audit.h), with who we are as the
   * decision core sees it (aip_wrapper_front_init) */
  aip_core_audit_more more = {.direction = direction,
                              .dlp = dlp,
                              .latency_us = latency_us,
                              .has_latency = latency_us >= 0};
  aip_core_audit(&w->front.who, method, d, decision, tool, args, &more);
}

void aip_wrapper_audit(aip_wrapper *w, const char *method, const aip_decision *d,
                       const char *decision, const char *tool, const cJSON *args) {
  aip_wrapper_audit_ex(w, NULL, method, d, decision, tool, args, NULL, -1);
}

char *aip_wrapper_id_key(const cJSON *id) { return aip_rpc_id_key(id); }

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

void aip_wrapper_forward_call(aip_wrapper *w, const cJSON *msg, const aip_decision *d,
                              const char *tool, const cJSON *args, const char *dlp) {
  aip_buf b;
  aip_buf_init(&b);
  if (aip_json_print(&b, msg)) {
    aip_error("out of memory re-serializing a message; dropped");
  } else {
    /* audited when its answer comes (wrapper_dlp.c), as aip serve does; a call that cannot be
     * tracked (too many in flight, no memory) is audited now, without its latency */
    if (aip_wrapper_call_track(w, msg, d, args, dlp))
      aip_wrapper_audit_ex(w, NULL, "tools/call", d, NULL,
                           tool, args, dlp, -1);
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

/* ---- the wrapper as a front end of the decision core (core/decide.h) ----------------------- */

static aip_wrapper *wrapper_of(aip_front *fe) {
  return (aip_wrapper *)((char *)fe - offsetof(aip_wrapper, front));
}

static void fe_reply(aip_front *fe, const char *json, size_t n) {
  aip_wrapper_to_client(wrapper_of(fe), json, n);
}

/* A message that passed: note what the wrapper must watch, then forward it to the child. */
static void fe_forward(aip_front *fe, aip_msg *msg, const aip_method_entry *e,
                       const aip_core_call *call) {
  aip_wrapper *w = wrapper_of(fe);
  const aip_rpc_msg *m = aip_msg_rpc(msg);
  int req = m->kind == AIP_RPC_REQUEST, stop = 0;
  if (req && e->id == AIP_M_INITIALIZE) {
    note_initialize(w, m);
  } else if (req && e->id == AIP_M_TOOLS_LIST && note_tools_list(w, m)) {
    aip_wrapper_reply_error(w, m->id, AIP_RPC_INTERNAL_ERROR, "Internal error",
                            "too many tools/list requests in flight");
    stop = 1;
  } else if (!req && e->id == AIP_M_CANCELLED) {
    const cJSON *rid = cJSON_IsObject(m->params)
                           ? cJSON_GetObjectItemCaseSensitive(m->params, "requestId") : NULL;
    /* the child never saw a call that is still waiting for approval */
    if (rid && aip_wrapper_ask_cancel(w, rid)) {
      trace(w, m, "ended a pending approval");
      stop = 1;
    }
  }
  if (!stop) {
    trace(w, m, e->id == AIP_M_ANSWER ? "forwarded (answer to a server request)" : "forwarded");
    if (call) aip_wrapper_forward_call(w, m->root, call->d, call->tool, call->args, call->dlp);
    else aip_wrapper_forward(w, m->root);
  }
  aip_msg_free(msg);
}

/* `ask`: the user is asked through the client (wrapper_elicit.c), which takes the tree. */
static void fe_hold(aip_front *fe, aip_msg *msg, const aip_core_call *call, const aip_decision *d) {
  const cJSON *id = aip_msg_rpc(msg)->id; /* inside the tree, which the ask keeps */
  aip_wrapper_ask_start(wrapper_of(fe), aip_msg_release(msg), id, call->tool, call->args, d,
                        call->dlp);
}

static int fe_own_answer(aip_front *fe, const aip_msg *msg) {
  aip_wrapper *w = wrapper_of(fe);
  if (!aip_msg_id_has_prefix(msg, w->elicit_prefix)) return 0;
  aip_wrapper_ask_answer(w, aip_msg_rpc(msg));
  return 1;
}

static void fe_trace(aip_front *fe, const aip_msg *msg, const char *what) {
  trace(wrapper_of(fe), aip_msg_rpc(msg), what);
}

/* The child's request must not hang on an answer DLP stopped: it gets this error instead. */
static void fe_answer_refused(aip_front *fe, const aip_msg *msg, int code, const char *message) {
  aip_buf b;
  aip_buf_init(&b);
  if (!aip_msg_error(msg, &b, code, message, NULL)) aip_wrapper_to_child(wrapper_of(fe), b.data, b.len);
  aip_buf_free(&b);
}

static const aip_front_ops wrapper_front = {.reply = fe_reply,
                                            .forward = fe_forward,
                                            .hold = fe_hold,
                                            .own_answer = fe_own_answer,
                                            .trace = fe_trace,
                                            .answer_refused = fe_answer_refused};

void aip_wrapper_front_init(aip_wrapper *w) {
  w->front.ops = &wrapper_front;
  w->front.policy = w->policy;
  w->front.rate = w->rate;
  w->front.dlp = &w->dlp_run;
  aip_core_who who = {.audit = w->audit,
                      .agent = w->agent,
                      .session_id = w->session_id,
                      .doc = w->doc,
                      .dlp_run = &w->dlp_run};
  w->front.who = who;
}

/* Takes ownership of `root` (one message, not an array). */
static void handle_message(aip_wrapper *w, cJSON *root) {
  aip_core_message(&w->front, aip_msg_adopt(root));
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
