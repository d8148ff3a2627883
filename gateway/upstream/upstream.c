/* upstream.c -- JSON-RPC multiplexing over one upstream MCP server instance (see upstream.h).
 *
 * Ids: every request the gateway sends gets an integer id unique within the instance; the
 * caller keeps the downstream id and puts it back on the answer. Progress tokens are replaced
 * by that same integer, so two sessions that both use token "1" never see each other's progress.
 *
 * Deadlines: all calls share one timeout, so creation order is deadline order; one timer armed
 * for the oldest call serves them all (O(1) per call, no timer per call).
 */
#include "gateway/upstream/upstream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/obs/log.h"
#include "gateway/mcp/rpc_head.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_AFTER_MS 10000
/* A call that finds the server backing off waits for the restart only if it is this close;
 * else it fails at once ("unavailable"), so a crash loop never holds calls for its backoff. */
#define BACKOFF_WAIT_MAX_MS 500

struct aip_upstream_call {
  aip_upstream *u;
  uint64_t id;
  char *method;
  cJSON *params;         /* kept until sent */
  cJSON *progress_token; /* the caller's token, restored on progress notifications */
  aip_upstream_call_cb cb;
  void *data;
  const aip_upstream_sink *sink; /* NULL: the answer is always held whole */
  uint64_t deadline_ms;
  int sent;
  int idempotent; /* tools/list, ping: safe to send again after the instance is lost */
  int retried;
  aip_upstream_call *prev, *next;
};

cJSON *aip_upstream_error_msg(int code, const char *message) {
  return aip_rpc_error_msg(NULL, code, message, NULL); /* the engine's builder */
}

static uint64_t now_ms(aip_upstream *u) { return uv_now(u->loop); }

/* ---- call bookkeeping ------------------------------------------------------------------- */

static void call_unlink(aip_upstream_call *c) {
  aip_upstream *u = c->u;
  if (c->prev) c->prev->next = c->next;
  else u->head = c->next;
  if (c->next) c->next->prev = c->prev;
  else u->tail = c->prev;
  if (c->sent) aip_map_del(&u->calls, &c->id, sizeof(c->id));
}

static void call_free(aip_upstream_call *c) {
  free(c->method);
  cJSON_Delete(c->params);
  cJSON_Delete(c->progress_token);
  free(c);
}

static void timer_rearm(aip_upstream *u);

/* Ends a call with `msg` (owned) as its final message. */
static void call_finish(aip_upstream_call *c, cJSON *msg) {
  call_unlink(c);
  aip_upstream_call_cb cb = c->cb;
  void *data = c->data;
  if (msg && cJSON_GetObjectItemCaseSensitive(msg, "error")) c->u->stats.errors++;
  if (cb) cb(c, msg, 1, data);
  else cJSON_Delete(msg);
  call_free(c);
}

static void call_fail(aip_upstream_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void call_fail(aip_upstream_call *c, int code, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  call_finish(c, aip_upstream_error_msg(code, msg));
}

static int send_json(aip_upstream *u, uint64_t id, cJSON *msg) {
  aip_buf b;
  aip_buf_init(&b);
  int err = aip_json_print(&b, msg);
  if (!err) err = u->ops->send(u, id, b.data, b.len);
  aip_buf_free(&b);
  return err;
}

static cJSON *request_msg(uint64_t id, const char *method, cJSON *params) {
  cJSON *m = cJSON_CreateObject();
  if (!m) return NULL;
  cJSON_AddStringToObject(m, "jsonrpc", "2.0");
  cJSON_AddNumberToObject(m, "id", (double)id);
  cJSON_AddStringToObject(m, "method", method);
  if (params) cJSON_AddItemToObject(m, "params", params);
  return m;
}

static void call_send(aip_upstream_call *c) {
  aip_upstream *u = c->u;
  c->sent = 1;
  if (aip_map_put(&u->calls, &c->id, sizeof(c->id), c)) {
    c->sent = 0;
    call_fail(c, AIP_RPC_INTERNAL_ERROR, "out of memory");
    return;
  }
  /* Idempotent calls keep their params: they are sent again if the instance is lost. */
  cJSON *params = c->idempotent && c->params ? cJSON_Duplicate(c->params, 1) : c->params;
  if (!c->idempotent) c->params = NULL;
  cJSON *m = request_msg(c->id, c->method, params); /* m owns params */
  int err = m ? send_json(u, c->id, m) : -ENOMEM;
  cJSON_Delete(m);
  if (err) call_fail(c, AIP_RPC_INTERNAL_ERROR, "upstream %s: write failed", u->label);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static void start_instance(aip_upstream *u) {
  u->state = AIP_UPSTREAM_STARTING;
  u->handshake_id = 0;
  u->start_deadline_ms = now_ms(u) + u->limits->request_timeout_ms;
  int err = u->ops->start(u);
  if (err) aip_upstream_transport_down(u, uv_strerror(err));
  else timer_rearm(u);
}

void aip_upstream_transport_up(aip_upstream *u) {
  cJSON *params = cJSON_CreateObject();
  cJSON *info = cJSON_CreateObject();
  cJSON_AddStringToObject(params, "protocolVersion", "2025-11-25");
  cJSON *caps = cJSON_AddObjectToObject(params, "capabilities");
  if (u->hooks.on_request) {
    /* What the gateway routes back to the agent's sessions (docs/routing.md, "Server-to-client
     * requests"): a request no session can take gets an error, never silence. Elicitation is
     * form mode only ({}), the mode every elicitation-capable client takes. */
    cJSON_AddObjectToObject(caps, "sampling");
    cJSON_AddObjectToObject(caps, "elicitation");
    cJSON_AddTrueToObject(cJSON_AddObjectToObject(caps, "roots"), "listChanged");
  }
  cJSON_AddStringToObject(info, "name", "aip-gateway");
  cJSON_AddStringToObject(info, "version", AIP_VERSION);
  cJSON_AddItemToObject(params, "clientInfo", info);
  u->handshake_id = ++u->next_id;
  cJSON *m = request_msg(u->handshake_id, "initialize", params);
  int err = m ? send_json(u, u->handshake_id, m) : -ENOMEM;
  cJSON_Delete(m);
  if (err) aip_upstream_transport_down(u, "cannot send initialize");
}

static void handshake_done(aip_upstream *u, cJSON *msg) {
  cJSON *result = cJSON_GetObjectItemCaseSensitive(msg, "result");
  if (!cJSON_IsObject(result)) {
    aip_upstream_transport_down(u, "initialize failed");
    return;
  }
  cJSON_Delete(u->server_info);
  u->server_info = cJSON_DetachItemViaPointer(msg, result);
  u->handshake_id = 0;
  cJSON *n = cJSON_CreateObject();
  cJSON_AddStringToObject(n, "jsonrpc", "2.0");
  cJSON_AddStringToObject(n, "method", "notifications/initialized");
  int err = send_json(u, 0, n);
  cJSON_Delete(n);
  if (err) {
    aip_upstream_transport_down(u, "cannot send notifications/initialized");
    return;
  }
  u->state = AIP_UPSTREAM_READY;
  u->start_failed = 0;
  if (u->ops->ready) u->ops->ready(u);
  u->ready_since_ms = now_ms(u);
  aip_info("upstream %s: ready", u->label);
  for (aip_upstream_call *c = u->head, *n2; c; c = n2) {
    n2 = c->next;
    if (!c->sent) call_send(c);
  }
  timer_rearm(u);
}

void aip_upstream_transport_down(aip_upstream *u, const char *why) {
  if (u->state == AIP_UPSTREAM_STOPPING) return;
  int was_ready = u->state == AIP_UPSTREAM_READY;
  aip_warn("upstream %s: down (%s)", u->label, why);
  u->stats.restarts++;
  /* Calls already sent are lost with the instance: answer them now, never let them hang;
   * idempotent ones (tools/list, ping) are sent once more to the next instance. Calls still
   * queued wait for the restart, unless the instance never came up: then the server is
   * unreachable and waiting would only turn a fast error into a timeout. */
  for (aip_upstream_call *c = u->head, *n; c; c = n) {
    n = c->next;
    if (c->sent && c->idempotent && !c->retried) {
      aip_map_del(&u->calls, &c->id, sizeof(c->id));
      c->sent = 0;
      c->retried = 1;
    } else if (c->sent || !was_ready) {
      call_fail(c, AIP_RPC_INTERNAL_ERROR, "upstream %s unavailable: %s", u->label, why);
    }
  }
  if (was_ready && now_ms(u) - u->ready_since_ms >= STABLE_AFTER_MS) u->backoff_ms = 0;
  u->backoff_ms = u->backoff_ms ? u->backoff_ms * 2 : BACKOFF_MIN_MS;
  if (u->backoff_ms > BACKOFF_MAX_MS) u->backoff_ms = BACKOFF_MAX_MS;
  u->state = AIP_UPSTREAM_BACKOFF;
  u->restart_at_ms = now_ms(u) + u->backoff_ms;
  u->was_ready = was_ready;
  u->start_failed = !was_ready;
  snprintf(u->last_error, sizeof(u->last_error), "%s", why);
  u->handshake_id = 0;
  if (u->hooks.on_reset) u->hooks.on_reset(u, u->hooks.data);
  timer_rearm(u);
}

/* ---- timer: backoff, handshake and call deadlines --------------------------------------- */

static void stream_finish(aip_upstream *u, int err);

static void on_timer(uv_timer_t *t) {
  aip_upstream *u = t->data;
  uint64_t now = now_ms(u);
  if (u->state == AIP_UPSTREAM_BACKOFF) {
    /* Restart on demand only: an idle crashed server is not respawned in a loop. */
    if (u->head) start_instance(u);
    else u->state = AIP_UPSTREAM_DOWN;
    return;
  }
  while (u->head && u->head->deadline_ms <= now) {
    aip_upstream_call *c = u->head;
    u->stats.timeouts++;
    if (c->sent) {
      cJSON *p = cJSON_CreateObject();
      cJSON_AddNumberToObject(p, "requestId", (double)c->id);
      cJSON_AddStringToObject(p, "reason", "timeout");
      aip_upstream_notify(u, "notifications/cancelled", p);
    }
    call_fail(c, AIP_RPC_INTERNAL_ERROR, "upstream %s did not answer within %llu ms", u->label,
              (unsigned long long)u->limits->request_timeout_ms);
  }
  if (u->streaming && now >= u->stream_deadline_ms) {
    /* Neither the server wrote nor the agent read for a whole request_timeout: the server
     * would stay blocked on this answer for every other session. The rest is discarded. */
    aip_warn("upstream %s: streamed answer stalled for %llu ms; aborting it", u->label,
             (unsigned long long)u->limits->request_timeout_ms);
    u->stats.timeouts++;
    stream_finish(u, -ETIMEDOUT);
    if (u->ops->resume) u->ops->resume(u);
  }
  if (u->state == AIP_UPSTREAM_STARTING && now >= u->start_deadline_ms) {
    /* a server that never finishes the handshake is as good as dead */
    aip_warn("upstream %s: no answer to initialize; stopping it", u->label);
    u->ops->stop(u);
    return;
  }
  timer_rearm(u);
}

static void timer_rearm(aip_upstream *u) {
  if (u->closing) return;
  uint64_t now = now_ms(u), due;
  if (u->state == AIP_UPSTREAM_BACKOFF) due = u->restart_at_ms > now ? u->restart_at_ms - now : 0;
  else {
    uint64_t at = UINT64_MAX;
    if (u->head) at = u->head->deadline_ms;
    if (u->state == AIP_UPSTREAM_STARTING && u->start_deadline_ms < at) at = u->start_deadline_ms;
    if (u->streaming && u->stream_deadline_ms < at) at = u->stream_deadline_ms;
    if (at == UINT64_MAX) {
      uv_timer_stop(&u->timer);
      return;
    }
    due = at > now ? at - now : 0;
  }
  uv_timer_start(&u->timer, on_timer, due, 0);
}

/* ---- messages from the server --------------------------------------------------------- */

static aip_upstream_call *call_by_id(aip_upstream *u, const cJSON *id);

/* A request from the server: ping is answered here; everything else goes to the hook, which
 * routes it to an agent (core/server_requests.c), or is -32601 without one. */
static void on_server_request(aip_upstream *u, aip_rpc_msg *m) {
  if (strcmp(m->method, "ping") != 0 && u->hooks.on_request) {
    aip_upstream_call *related = NULL;
    if (u->related_id) related = aip_map_get(&u->calls, &u->related_id, sizeof(u->related_id));
    if (!related) {
      /* a server may name the call in the request itself (stdio has no per-call stream) */
      const cJSON *meta = cJSON_IsObject(m->params)
                              ? cJSON_GetObjectItemCaseSensitive(m->params, "_meta") : NULL;
      related = cJSON_IsObject(meta)
                    ? call_by_id(u, cJSON_GetObjectItemCaseSensitive(meta, "relatedRequestId"))
                    : NULL;
    }
    u->hooks.on_request(u, m->root, related, u->hooks.data);
    return;
  }
  cJSON *reply = strcmp(m->method, "ping") == 0
                     ? NULL : aip_upstream_error_msg(AIP_RPC_METHOD_NOT_FOUND, "Method not found");
  if (!reply) {
    reply = cJSON_CreateObject();
    cJSON_AddStringToObject(reply, "jsonrpc", "2.0");
    cJSON_AddItemToObject(reply, "result", cJSON_CreateObject());
  }
  aip_upstream_respond(u, m->id, reply);
  cJSON_Delete(m->root);
}

int aip_upstream_respond(aip_upstream *u, const cJSON *id, cJSON *reply) {
  if (!reply) return -ENOMEM;
  int err = -ENOTCONN;
  if (u->state == AIP_UPSTREAM_READY) {
    cJSON *idc = cJSON_Duplicate(id, 1);
    if (cJSON_GetObjectItemCaseSensitive(reply, "id")) cJSON_ReplaceItemInObjectCaseSensitive(reply, "id", idc);
    else cJSON_AddItemToObject(reply, "id", idc);
    err = send_json(u, 0, reply);
  }
  cJSON_Delete(reply);
  return err;
}

aip_upstream *aip_upstream_call_owner(const aip_upstream_call *c) { return c->u; }

static aip_upstream_call *call_by_id(aip_upstream *u, const cJSON *id) {
  if (!cJSON_IsNumber(id)) return NULL;
  double d = id->valuedouble;
  if (d < 1 || d > 9007199254740992.0) return NULL;
  uint64_t key = (uint64_t)d;
  return aip_map_get(&u->calls, &key, sizeof(key));
}

static void on_progress(aip_upstream *u, aip_rpc_msg *m) {
  cJSON *tok = cJSON_IsObject(m->params)
                   ? cJSON_GetObjectItemCaseSensitive(m->params, "progressToken") : NULL;
  aip_upstream_call *c = call_by_id(u, tok);
  if (!c || !c->progress_token) {
    cJSON_Delete(m->root);
    return;
  }
  cJSON_ReplaceItemViaPointer(m->params, tok, cJSON_Duplicate(c->progress_token, 1));
  c->cb(c, m->root, 0, c->data);
}

void aip_upstream_transport_message(aip_upstream *u, const char *p, size_t n) {
  cJSON *root = NULL;
  aip_json_status st = aip_json_parse(p, n, &root);
  if (st != AIP_JSON_OK) {
    aip_warn("upstream %s: dropped a message (%s)", u->label, aip_json_status_str(st));
    return;
  }
  aip_rpc_msg m;
  switch (aip_rpc_classify(root, &m)) {
  case AIP_RPC_RESPONSE:
  case AIP_RPC_ERROR: {
    if (u->handshake_id && cJSON_IsNumber(m.id) && m.id->valuedouble == (double)u->handshake_id) {
      handshake_done(u, root);
      cJSON_Delete(root);
      return;
    }
    aip_upstream_call *c = call_by_id(u, m.id);
    if (c) call_finish(c, root);
    else cJSON_Delete(root); /* late answer to a cancelled or timed-out call */
    return;
  }
  case AIP_RPC_REQUEST:
    on_server_request(u, &m); /* owns root */
    return;
  case AIP_RPC_NOTIFICATION:
    if (strcmp(m.method, "notifications/progress") == 0) on_progress(u, &m);
    else if (strcmp(m.method, "notifications/cancelled") == 0) cJSON_Delete(root);
    else if (u->hooks.on_notification) u->hooks.on_notification(u, root, u->hooks.data);
    else cJSON_Delete(root);
    return;
  default:
    aip_warn("upstream %s: dropped an invalid JSON-RPC message (%s)", u->label,
             m.invalid_reason ? m.invalid_reason : "?");
    cJSON_Delete(root);
  }
}

/* ---- streamed answers ------------------------------------------------------------------- */

uint64_t aip_upstream_stream_threshold(aip_upstream *u) {
  return u->hooks.stream_threshold ? u->hooks.stream_threshold(u, u->hooks.data) : 0;
}

/* A streaming call leaves the id map and the deadline list when its answer starts: the
 * server has answered in time, and nothing else may finish it (a failure of the instance
 * reaches it through stream_end). */
uint64_t aip_upstream_stream_seq(const aip_upstream *u) {
  return u->streaming ? u->stream_seq : 0;
}

int aip_upstream_transport_stream_begin(aip_upstream *u, const char *p, size_t n) {
  aip_rpc_head h;
  if (u->streaming || aip_rpc_head_scan(p, n, &h) != AIP_RPC_HEAD_FOUND) return -EINVAL;
  if (p[h.id_off] == '"') return -EINVAL; /* our ids are integers */
  /* the scanner saw the member after the id, so strtod stops inside the buffer */
  cJSON id = {.type = cJSON_Number, .valuedouble = strtod(p + h.id_off, NULL)};
  if (u->handshake_id && id.valuedouble == (double)u->handshake_id) return -EINVAL;
  aip_upstream_call *c = call_by_id(u, &id);
  if (!c || !c->sink || c->sink->begin(c->data, p, h.id_off) < 0) return -EINVAL;
  call_unlink(c);
  c->sent = 0; /* out of the map now */
  c->prev = c->next = NULL;
  u->streaming = c;
  u->stream_seq++;
  u->stream_deadline_ms = now_ms(u) + u->limits->request_timeout_ms;
  if (h.is_error) u->stats.errors++;
  timer_rearm(u);
  size_t rest = h.id_off + h.id_len;
  int rc = aip_upstream_transport_stream_feed(u, p + rest, n - rest);
  return rc < 0 ? -ECANCELED : rc; /* -EINVAL means "hold it whole": never confuse the two */
}

static void stream_finish(aip_upstream *u, int err) {
  aip_upstream_call *c = u->streaming;
  u->streaming = NULL;
  if (c->sink) c->sink->end(c->data, err);
  call_free(c);
}

int aip_upstream_transport_stream_feed(aip_upstream *u, const char *p, size_t n) {
  aip_upstream_call *c = u->streaming;
  if (!c) return -ECANCELED;
  if (!c->sink) { /* cancelled by its caller mid-message: drop the rest */
    stream_finish(u, -ECANCELED);
    return -ECANCELED;
  }
  int rc = n ? c->sink->chunk(c->data, p, n) : 0;
  if (rc < 0) stream_finish(u, rc);
  /* progress: the timer, when it fires, finds the later deadline and re-arms (no re-arming
   * for every read) */
  else u->stream_deadline_ms = now_ms(u) + u->limits->request_timeout_ms;
  return rc;
}

void aip_upstream_transport_stream_end(aip_upstream *u, int err) {
  if (u->streaming) stream_finish(u, err);
}

void aip_upstream_call_set_sink(aip_upstream_call *c, const aip_upstream_sink *sink) {
  c->sink = sink;
}

void aip_upstream_call_resume(aip_upstream_call *c) {
  if (c->u->streaming == c && c->u->ops->resume) c->u->ops->resume(c->u);
}

void aip_upstream_transport_fail(aip_upstream *u, uint64_t id, const char *message) {
  if (u->handshake_id && id == u->handshake_id) {
    aip_upstream_transport_down(u, message);
    return;
  }
  aip_upstream_call *c = aip_map_get(&u->calls, &id, sizeof(id));
  if (c) call_fail(c, AIP_RPC_INTERNAL_ERROR, "upstream %s: %s", u->label, message);
}

void aip_upstream_transport_polled(aip_upstream *u, uint64_t id) {
  aip_upstream_call *c = aip_map_get(&u->calls, &id, sizeof(id));
  if (c && c->sink && c->sink->polled) c->sink->polled(c->data);
}

const char *aip_upstream_protocol_version(const aip_upstream *u) {
  const cJSON *v = u->server_info ? cJSON_GetObjectItemCaseSensitive(u->server_info, "protocolVersion") : NULL;
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- public API ------------------------------------------------------------------------ */

int aip_upstream_init(aip_upstream *u, const aip_upstream_ops *ops, void *transport,
                      uv_loop_t *loop, const aip_server_config *server, const char *label,
                      const aip_limits *limits, const aip_upstream_hooks *hooks) {
  if (!(u->label = strdup(label))) return -ENOMEM;
  u->ops = ops;
  u->transport = transport;
  u->loop = loop;
  u->server = server;
  u->limits = limits;
  if (hooks) u->hooks = *hooks;
  aip_map_init(&u->calls);
  uv_timer_init(loop, &u->timer);
  u->timer.data = u;
  return 0;
}

int aip_upstream_call_start(aip_upstream *u, const char *method, cJSON *params,
                            aip_upstream_call_cb cb, void *data, aip_upstream_call **out) {
  if (u->closing) {
    cJSON_Delete(params);
    return -ESHUTDOWN;
  }
  if (u->state == AIP_UPSTREAM_BACKOFF &&
      (!u->was_ready || u->restart_at_ms > now_ms(u) + BACKOFF_WAIT_MAX_MS)) {
    /* The server never came up last time, or its restart is still far off (a crash loop):
     * refuse now (the caller reports u->last_error) rather than park the call for the rest
     * of the backoff. The first call after the backoff tries again. */
    cJSON_Delete(params);
    return -EHOSTDOWN;
  }
  aip_upstream_call *c = calloc(1, sizeof(*c));
  if (!c || !(c->method = strdup(method))) {
    free(c);
    cJSON_Delete(params);
    return -ENOMEM;
  }
  c->u = u;
  c->id = ++u->next_id;
  c->params = params;
  c->idempotent = strcmp(method, "tools/list") == 0 || strcmp(method, "ping") == 0;
  c->cb = cb;
  c->data = data;
  c->deadline_ms = now_ms(u) + u->limits->request_timeout_ms;
  /* Re-key the progress token (see the file comment). */
  cJSON *meta = cJSON_IsObject(params) ? cJSON_GetObjectItemCaseSensitive(params, "_meta") : NULL;
  cJSON *tok = cJSON_IsObject(meta) ? cJSON_GetObjectItemCaseSensitive(meta, "progressToken") : NULL;
  if (tok) {
    c->progress_token = cJSON_DetachItemViaPointer(meta, tok);
    cJSON_AddNumberToObject(meta, "progressToken", (double)c->id);
  }
  c->prev = u->tail;
  if (u->tail) u->tail->next = c;
  else u->head = c;
  u->tail = c;
  u->stats.calls++;
  if (out) *out = c;
  if (u->state == AIP_UPSTREAM_READY) call_send(c);
  else if (u->state == AIP_UPSTREAM_DOWN) start_instance(u);
  /* An answer paused for a client that does not read would hold this call's answer up behind
   * it: read on; its sink now holds a bounded amount and then drops it (shares_reader). */
  if (u->streaming && u->streaming != c && u->shared_reader && u->ops->resume) u->ops->resume(u);
  if (u->head == c) timer_rearm(u);
  return 0;
}

int aip_upstream_call_shares_reader(const aip_upstream_call *c) {
  /* a streaming call has left the list (its deadline is the stream's): any call there is another */
  const aip_upstream_call *h = c->u->head;
  return c->u->shared_reader && h && (h != c || c->next);
}

int aip_upstream_cannot_start(const aip_upstream *u) {
  return !u->closing && u->start_failed && u->state != AIP_UPSTREAM_READY;
}

void aip_upstream_call_cancel(aip_upstream_call *c, const char *reason) {
  aip_upstream *u = c->u;
  if (u->streaming == c) {
    /* its answer is already on the wire: it is dropped as it arrives, and freed at its end */
    c->sink = NULL;
    c->cb = NULL;
    if (u->ops->resume) u->ops->resume(u);
    return;
  }
  if (c->sent) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "requestId", (double)c->id);
    if (reason) cJSON_AddStringToObject(p, "reason", reason);
    aip_upstream_notify(u, "notifications/cancelled", p);
  }
  call_unlink(c);
  call_free(c);
  timer_rearm(u);
}

int aip_upstream_notify(aip_upstream *u, const char *method, cJSON *params) {
  if (u->state != AIP_UPSTREAM_READY) {
    cJSON_Delete(params);
    return -ENOTCONN;
  }
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "jsonrpc", "2.0");
  cJSON_AddStringToObject(m, "method", method);
  if (params) cJSON_AddItemToObject(m, "params", params);
  int err = send_json(u, 0, m);
  cJSON_Delete(m);
  return err;
}

void aip_upstream_close(aip_upstream *u) {
  if (u->closing) return;
  u->closing = 1;
  uv_timer_stop(&u->timer);
  while (u->head) call_fail(u->head, AIP_RPC_INTERNAL_ERROR, "gateway shutting down");
  enum aip_upstream_state st = u->state;
  u->state = AIP_UPSTREAM_STOPPING;
  if (st == AIP_UPSTREAM_STARTING || st == AIP_UPSTREAM_READY) u->ops->stop(u);
  else aip_upstream_transport_stopped(u);
}

static void on_timer_closed(uv_handle_t *h) {
  aip_upstream *u = h->data;
  u->ops->free(u);
  aip_map_free(&u->calls);
  cJSON_Delete(u->server_info);
  free(u->label);
  free(u);
}

void aip_upstream_transport_stopped(aip_upstream *u) {
  if (!u->closing) {
    aip_upstream_transport_down(u, "stopped");
    return;
  }
  uv_close((uv_handle_t *)&u->timer, on_timer_closed);
}
