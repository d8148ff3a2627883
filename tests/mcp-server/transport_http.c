/* Streamable HTTP transport for aip-test-server (MCP 2025-03-26 .. 2025-11-25).
 *
 * Each session owns one mcp_server. A POST becomes an "exchange": every request
 * it carries is registered as a call (keyed by its JSON-RPC id within the
 * session) before the core sees it, so whatever the core emits later can be
 * routed by related_id alone: progress onto the exchange's SSE stream, the
 * response into the exchange (which ends once all its calls are answered), and
 * unrelated notifications onto the session's GET stream.
 *
 * The gateway's HTTP server owns sockets, parsing and keep-alive. A request it
 * hands us stays valid until we answer it or its abort callback runs; the
 * callback can fire from inside any write (a dead client), so every owner of a
 * request pointer re-reads it after writing instead of caching it. */
#include "transport_http.h"

#include <errno.h>
#include <llhttp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/map.h"
#include "gateway/http/http_server.h"

#define SESSION_ID_BYTES 16 /* 32 hex characters: visible ASCII, as the spec asks */
#define SESSION_ID_LEN (SESSION_ID_BYTES * 2)
/* As large as the stdio transport's line limit: `echo` of big payloads must pass. */
#define MAX_BODY ((uint64_t)160 * 1024 * 1024)
/* Above this an SSE event is written as three chunks instead of being copied
 * into one buffer first (the HTTP server copies it once more anyway). */
#define SSE_COPY_LIMIT ((size_t)64 * 1024)

/* ------------------------------------------------------------------ lists */

/* Circular intrusive list; a node that is in no list points at itself, so
 * removing it twice is harmless. */
typedef struct dlist {
  struct dlist *prev, *next;
} dlist;

#define OWNER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static void dl_init(dlist *n) { n->prev = n->next = n; }
static bool dl_empty(const dlist *head) { return head->next == head; }

static void dl_append(dlist *head, dlist *n) {
  n->prev = head->prev;
  n->next = head;
  head->prev->next = n;
  head->prev = n;
}

static void dl_remove(dlist *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  dl_init(n);
}

/* ------------------------------------------------------------------ types */

typedef enum fault_mode { FAULT_NONE, FAULT_GARBAGE, FAULT_500, FAULT_HANG } fault_mode;

typedef struct http_transport {
  uv_loop_t *loop;
  const mcp_server_options *opts;
  http_reply_mode reply;
  fault_mode fault;
  aip_http_server *http;
  aip_map sessions;   /* id -> session */
  dlist session_list; /* the same sessions, for drop_sessions and shutdown */
  dlist reap_queue;   /* exchanges whose client left while calls were in flight */
  dlist hung;         /* requests held forever by AIP_TEST_HTTP_FAULT=hang */
  uv_timer_t reap_timer;
  uv_signal_t sigint, sigterm;
  bool stopping;
} http_transport;

typedef struct exchange exchange;

typedef struct session {
  dlist link; /* in transport.session_list */
  http_transport *t;
  char id[SESSION_ID_LEN + 1];
  mcp_server *srv;
  aip_map calls;   /* id key -> call (requests in flight) */
  dlist exchanges; /* POSTs not yet finished */
  aip_http_req *get_stream;
  /* While the core handles one message of a POST: responses emitted
   * synchronously belong to that message, whatever id they carry. */
  exchange *cur_ex;
  struct call *cur_call;
  bool dispatching, dead, unlinked;
} session;

struct exchange {
  dlist link;      /* in session.exchanges */
  dlist reap_link; /* in transport.reap_queue */
  session *sess;
  aip_http_req *req; /* NULL once answered or aborted */
  dlist calls;       /* registered requests not yet answered */
  size_t pending;    /* calls not yet answered, +1 while dispatching */
  bool batch, sse, streaming, expects_reply, dispatching;
  char *single;      /* JSON mode, single message: the response */
  size_t single_len;
  aip_buf out;       /* JSON mode, batch: "[r1,r2" (closed when sent);
                      * SSE mode: events produced while dispatching, not yet sent */
  char headers[64];  /* Mcp-Session-Id on the initialize response */
};

typedef struct call {
  dlist link; /* in exchange.calls */
  exchange *ex;
  size_t key_len;
  char key[]; /* map key, NUL-terminated: 's'+string id or 'n'+number id */
} call;

typedef struct hung_req {
  dlist link;
  aip_http_req *req;
} hung_req;

static void session_destroy(session *s);
static void reap_orphans(uv_timer_t *timer);

/* ------------------------------------------------------------------ HTTP helpers */

static void log_session(const http_transport *t, const char *id, const char *what) {
  if (t->opts->verbose) fprintf(stderr, "[%s] session %s %s\n", t->opts->name, id, what);
}

/* An HTTP error carrying a JSON-RPC error without id, as the transport spec suggests.
 * Messages are literals without characters that would need JSON escaping. */
static void http_error(aip_http_req *req, int status, int code, const char *message,
                       const char *headers) {
  char body[256];
  int n = snprintf(body, sizeof body,
                   "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":%d,\"message\":\"%s\"}}",
                   code, message);
  aip_http_respond(req, status, "application/json", headers, body, (size_t)n);
}

/* Is `type` one of the media ranges in a comma-separated header value?
 * Parameters (";q=0.9", ";charset=utf-8") are ignored. */
static bool media_listed(const char *v, size_t n, const char *type) {
  size_t tl = strlen(type), i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t start = i;
    while (i < n && v[i] != ',' && v[i] != ';' && v[i] != ' ' && v[i] != '\t') i++;
    if (i - start == tl && strncasecmp(v + start, type, tl) == 0) return true;
    while (i < n && v[i] != ',') i++;
  }
  return false;
}

static bool accepts(const aip_http_req *req, const char *type) {
  size_t n;
  const char *v = aip_http_header_get(req, "accept", &n);
  return v && (media_listed(v, n, type) || media_listed(v, n, "*/*"));
}

static bool json_content(const aip_http_req *req) {
  size_t n;
  const char *v = aip_http_header_get(req, "content-type", &n);
  return v && media_listed(v, n, "application/json");
}

#define SSE_HEAD "event: message\ndata: "

static int sse_append(aip_buf *b, const char *json, size_t len) {
  int err = aip_buf_puts(b, SSE_HEAD);
  if (!err) err = aip_buf_append(b, json, len);
  if (!err) err = aip_buf_append(b, "\n\n", 2);
  return err;
}

/* Writes one SSE event to *reqp. The abort callback clears *reqp when a write
 * kills the connection, so it is checked before every write. */
static void sse_send(aip_http_req *const *reqp, const char *json, size_t len) {
  if (len > SSE_COPY_LIMIT) {
    if (*reqp) aip_http_stream_write(*reqp, SSE_HEAD, sizeof SSE_HEAD - 1);
    if (*reqp) aip_http_stream_write(*reqp, json, len);
    if (*reqp) aip_http_stream_write(*reqp, "\n\n", 2);
    return;
  }
  aip_buf b;
  aip_buf_init(&b);
  if (sse_append(&b, json, len) == 0 && *reqp) aip_http_stream_write(*reqp, b.data, b.len);
  aip_buf_free(&b);
}

/* ------------------------------------------------------------------ calls */

/* Map key of a JSON-RPC id. The type prefix keeps the ids "1" and 1 apart.
 * Returns buf, or a malloc'd key when buf is too small (NULL without memory). */
static char *id_key(const cJSON *id, char *buf, size_t cap, size_t *len) {
  if (!cJSON_IsString(id)) {
    *len = (size_t)snprintf(buf, cap, "n%.17g", id->valuedouble);
    return buf;
  }
  size_t n = strlen(id->valuestring);
  char *k = n + 2 <= cap ? buf : malloc(n + 2);
  if (!k) return NULL;
  k[0] = 's';
  memcpy(k + 1, id->valuestring, n + 1);
  *len = n + 1;
  return k;
}

static call *call_find(session *s, const cJSON *id) {
  char buf[128];
  size_t len;
  char *k = (cJSON_IsString(id) || cJSON_IsNumber(id)) ? id_key(id, buf, sizeof buf, &len) : NULL;
  call *c = k ? aip_map_get(&s->calls, k, len) : NULL;
  if (k != buf) free(k);
  return c;
}

/* Registers a request of ex. Returns NULL without memory or, setting *dup,
 * when the id is already in flight in this session (replies could not be told apart). */
static call *call_new(session *s, exchange *ex, const cJSON *id, bool *dup) {
  char buf[128];
  size_t len;
  char *k = id_key(id, buf, sizeof buf, &len);
  call *c = NULL;
  if (k && aip_map_get(&s->calls, k, len)) {
    *dup = true;
  } else if (k && (c = malloc(sizeof *c + len + 1))) {
    memcpy(c->key, k, len);
    c->key[len] = '\0';
    c->key_len = len;
    c->ex = ex;
    if (aip_map_put(&s->calls, c->key, len, c) != 0) {
      free(c);
      c = NULL;
    } else {
      dl_append(&ex->calls, &c->link);
      ex->pending++;
    }
  }
  if (k != buf) free(k);
  return c;
}

static void call_free(session *s, call *c) {
  aip_map_del(&s->calls, c->key, c->key_len);
  dl_remove(&c->link);
  c->ex->pending--;
  free(c);
}

/* notifications/cancelled for a call whose client left, rebuilt from its key. */
static cJSON *cancel_note(const call *c) {
  cJSON *note = cJSON_CreateObject();
  cJSON_AddStringToObject(note, "jsonrpc", "2.0");
  cJSON_AddStringToObject(note, "method", "notifications/cancelled");
  cJSON *params = cJSON_AddObjectToObject(note, "params");
  if (c->key[0] == 's') cJSON_AddStringToObject(params, "requestId", c->key + 1);
  else cJSON_AddNumberToObject(params, "requestId", strtod(c->key + 1, NULL));
  return note;
}

/* ------------------------------------------------------------------ exchanges */

static void exchange_aborted(aip_http_req *req, void *data);

static exchange *exchange_new(session *s, aip_http_req *req, bool batch) {
  exchange *ex = calloc(1, sizeof *ex);
  if (!ex) return NULL;
  ex->sess = s;
  ex->req = req;
  ex->batch = batch;
  ex->sse = s->t->reply == HTTP_REPLY_SSE;
  dl_init(&ex->reap_link);
  dl_init(&ex->calls);
  aip_buf_init(&ex->out);
  dl_append(&s->exchanges, &ex->link);
  aip_http_set_abort(req, exchange_aborted, ex);
  return ex;
}

static void exchange_free(exchange *ex) {
  dl_remove(&ex->link);
  dl_remove(&ex->reap_link);
  aip_buf_free(&ex->out);
  free(ex->single);
  free(ex);
}

/* Hands the request over for its final answer; the abort callback must not run after that. */
static aip_http_req *exchange_take_req(exchange *ex) {
  aip_http_req *req = ex->req;
  ex->req = NULL;
  if (req) aip_http_set_abort(req, NULL, NULL);
  return req;
}

/* Sends the SSE response head once, with the events buffered so far. False
 * when the client is gone (possibly just now). */
static bool exchange_stream(exchange *ex) {
  if (ex->req && !ex->streaming) {
    ex->streaming = true;
    aip_http_stream_begin(ex->req, 200, "text/event-stream", ex->headers);
    if (ex->req && ex->out.len) aip_http_stream_write(ex->req, ex->out.data, ex->out.len);
    aip_buf_free(&ex->out);
  }
  return ex->req != NULL;
}

/* Takes one outgoing message (owning json) for the exchange's client. */
static void exchange_put(exchange *ex, char *json, size_t len) {
  ex->expects_reply = true;
  if (ex->req && ex->sse && ex->dispatching && !ex->streaming && len <= SSE_COPY_LIMIT) {
    /* Most calls finish while dispatching: collect their events, so the whole
     * stream can leave as one response in one write (see exchange_finish). */
    sse_append(&ex->out, json, len);
  } else if (ex->req && ex->sse) {
    if (exchange_stream(ex)) sse_send(&ex->req, json, len);
  } else if (ex->req && ex->batch) {
    if (aip_buf_append(&ex->out, ex->out.len ? "," : "[", 1) == 0)
      aip_buf_append(&ex->out, json, len);
  } else if (ex->req && !ex->single) {
    ex->single = json; /* kept as is: a `big` reply is not copied once more */
    ex->single_len = len;
    return;
  }
  free(json);
}

/* Every call is answered: end the stream or send the collected messages, then free. */
static void exchange_finish(exchange *ex) {
  if (ex->sse && !ex->streaming && ex->req) {
    /* A complete SSE stream: Content-Length instead of chunks saves two writes. */
    char headers[sizeof ex->headers + 32];
    snprintf(headers, sizeof headers, "Cache-Control: no-cache\r\n%s", ex->headers);
    aip_http_respond(exchange_take_req(ex), 200, "text/event-stream", headers, ex->out.data,
                     ex->out.len);
  } else if (ex->sse) {
    if (exchange_stream(ex)) aip_http_stream_end(exchange_take_req(ex));
  } else if (ex->req) {
    aip_http_req *req = exchange_take_req(ex);
    if (ex->batch && ex->out.len && aip_buf_append(&ex->out, "]", 1) == 0)
      aip_http_respond(req, 200, "application/json", ex->headers, ex->out.data, ex->out.len);
    else if (!ex->batch && ex->single)
      aip_http_respond(req, 200, "application/json", ex->headers, ex->single, ex->single_len);
    else /* every call was cancelled: there is nothing to answer with */
      aip_http_respond(req, 202, NULL, NULL, NULL, 0);
  }
  exchange_free(ex);
}

static void exchange_settle(exchange *ex) {
  if (ex->pending == 0) exchange_finish(ex);
}

/* A client that left with calls in flight: cancel them from the reaper, not
 * here, since this may run inside the core (a failed progress write). */
static void exchange_orphan_check(exchange *ex) {
  http_transport *t = ex->sess->t;
  if (ex->req || dl_empty(&ex->calls) || !dl_empty(&ex->reap_link) || t->stopping) return;
  dl_append(&t->reap_queue, &ex->reap_link);
  uv_timer_start(&t->reap_timer, reap_orphans, 0, 0);
}

static void exchange_aborted(aip_http_req *req, void *data) {
  exchange *ex = data;
  ex->req = NULL;
  exchange_orphan_check(ex);
}

/* The session ended under the exchange: unanswered calls are dropped. */
static void exchange_gone(exchange *ex) {
  while (!dl_empty(&ex->calls)) call_free(ex->sess, OWNER(ex->calls.next, call, link));
  if (ex->req && ex->streaming) aip_http_stream_end(exchange_take_req(ex));
  else if (ex->req) http_error(exchange_take_req(ex), 404, -32001, "Session not found", NULL);
  exchange_free(ex);
}

/* Cancels the calls of exchanges whose client went away, so `slow` timers of
 * a dead connection do not run on (the client cannot see the answer anyway). */
static void reap_orphans(uv_timer_t *timer) {
  http_transport *t = timer->data;
  while (!dl_empty(&t->reap_queue)) {
    exchange *ex = OWNER(t->reap_queue.next, exchange, reap_link);
    session *s = ex->sess;
    dl_remove(&ex->reap_link);
    while (!dl_empty(&ex->calls)) {
      call *c = OWNER(ex->calls.next, call, link);
      cJSON *note = cancel_note(c);
      call_free(s, c); /* first: the core's DROPPED for it then finds nothing */
      mcp_server_handle_message(s->srv, note);
      cJSON_Delete(note);
    }
    exchange_settle(ex);
  }
}

/* ------------------------------------------------------------------ core output */

static void get_stream_push(session *s, char *json, size_t len) {
  if (s->get_stream) sse_send(&s->get_stream, json, len);
  free(json); /* no GET stream open: unrelated notifications are lost, as with the SDK */
}

/* mcp_emit_fn: routes one message of the core by kind and related_id. */
static void on_emit(void *ctx, mcp_out_kind kind, const cJSON *related_id, char *json, size_t len) {
  session *s = ctx;
  if (kind == MCP_OUT_NOTIFICATION && !related_id) {
    get_stream_push(s, json, len);
    return;
  }
  exchange *ex = NULL;
  call *c = NULL;
  if (kind == MCP_OUT_RESPONSE && s->cur_ex) {
    ex = s->cur_ex; /* a synchronous answer: also covers invalid messages with any id */
    c = s->cur_call;
    s->cur_call = NULL;
  } else if (related_id && (c = call_find(s, related_id))) {
    ex = c->ex;
  }
  if (!ex) { /* its call was cancelled or reaped */
    free(json);
    return;
  }
  if (kind == MCP_OUT_NOTIFICATION) {
    if (ex->sse) exchange_put(ex, json, len);
    else free(json); /* a JSON reply has no room for progress (the SDK drops it too) */
    return;
  }
  if (json) exchange_put(ex, json, len);
  if (c) call_free(s, c);
  exchange_settle(ex);
}

/* ------------------------------------------------------------------ hooks */

/* Tool `headers`: the request headers of the POST being dispatched, as JSON.
 * Repeated headers are joined with ", " (RFC 9110 list semantics). */
static char *hook_request_headers(void *ctx) {
  session *s = ctx;
  const aip_http_req *req = s->cur_ex ? s->cur_ex->req : NULL;
  if (!req) return NULL;
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; o && i < req->headers_n; i++) {
    const aip_http_header *h = &req->headers[i];
    const char *name = req->hdr.data + h->name_off; /* NUL-terminated by the server */
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(o, name);
    size_t plen = prev ? strlen(prev->valuestring) + 2 : 0;
    char *v = malloc(plen + h->value_len + 1);
    if (!v) continue;
    if (prev) memcpy(v, prev->valuestring, plen - 2), memcpy(v + plen - 2, ", ", 2);
    memcpy(v + plen, req->hdr.data + h->value_off, h->value_len);
    v[plen + h->value_len] = '\0';
    if (prev) cJSON_ReplaceItemInObjectCaseSensitive(o, name, cJSON_CreateString(v));
    else cJSON_AddStringToObject(o, name, v);
    free(v);
  }
  char *json = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return json;
}

/* Tool `drop_sessions`: the calling session is dispatching, so session_destroy
 * only unlinks it; post_dispatch frees it after the tool's reply went out. */
static void hook_drop_sessions(void *ctx) {
  http_transport *t = ((session *)ctx)->t;
  size_t n = 0;
  while (!dl_empty(&t->session_list)) {
    session_destroy(OWNER(t->session_list.next, session, link));
    n++;
  }
  if (t->opts->verbose) fprintf(stderr, "[%s] dropped %zu session(s)\n", t->opts->name, n);
}

/* ------------------------------------------------------------------ sessions */

static session *session_new(http_transport *t) {
  unsigned char rnd[SESSION_ID_BYTES];
  session *s = calloc(1, sizeof *s);
  if (!s || uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0) {
    free(s);
    return NULL;
  }
  for (size_t i = 0; i < sizeof rnd; i++) snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);
  s->t = t;
  dl_init(&s->exchanges);
  s->srv = mcp_server_new(t->loop, t->opts, on_emit, s);
  if (!s->srv || aip_map_put(&t->sessions, s->id, SESSION_ID_LEN, s) != 0) {
    mcp_server_free(s->srv);
    free(s);
    return NULL;
  }
  static const mcp_transport_hooks hooks = {hook_request_headers, hook_drop_sessions};
  mcp_server_set_hooks(s->srv, &hooks);
  dl_append(&t->session_list, &s->link);
  log_session(t, s->id, "created");
  return s;
}

/* Makes the session unreachable: its id gets 404 from now on. */
static void session_unlink(session *s) {
  if (s->unlinked) return;
  s->unlinked = true;
  aip_map_del(&s->t->sessions, s->id, SESSION_ID_LEN);
  dl_remove(&s->link);
}

/* Ends the session and everything still open on it. A session whose core is
 * on the stack (drop_sessions) is only unlinked; post_dispatch finishes it. */
static void session_destroy(session *s) {
  session_unlink(s);
  if (s->dispatching) {
    s->dead = true;
    return;
  }
  log_session(s->t, s->id, "ended");
  if (s->get_stream) {
    aip_http_req *req = s->get_stream;
    s->get_stream = NULL;
    aip_http_set_abort(req, NULL, NULL);
    aip_http_stream_end(req);
  }
  while (!dl_empty(&s->exchanges)) exchange_gone(OWNER(s->exchanges.next, exchange, link));
  mcp_server_free(s->srv); /* drops in-flight `slow` calls without emitting */
  aip_map_free(&s->calls);
  free(s);
}

/* The session named by Mcp-Session-Id; answers 400 / 404 itself when there is none. */
static session *session_of(http_transport *t, aip_http_req *req) {
  size_t n;
  const char *id = aip_http_header_get(req, "mcp-session-id", &n);
  if (!id) {
    http_error(req, 400, -32000, "Bad Request: Mcp-Session-Id header is required", NULL);
    return NULL;
  }
  session *s = n == SESSION_ID_LEN ? aip_map_get(&t->sessions, id, n) : NULL;
  if (!s) http_error(req, 404, -32001, "Session not found", NULL);
  return s;
}

/* ------------------------------------------------------------------ POST */

/* A message the core will treat as a request (mirrors mcp_server_handle_message). */
static bool is_request(const cJSON *m) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "jsonrpc");
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
  return cJSON_IsObject(m) && cJSON_IsString(v) && strcmp(v->valuestring, "2.0") == 0 &&
         cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "method")) &&
         (cJSON_IsString(id) || cJSON_IsNumber(id));
}

static bool is_method(const cJSON *m, const char *method) {
  return is_request(m) &&
         strcmp(cJSON_GetObjectItemCaseSensitive(m, "method")->valuestring, method) == 0;
}

static bool has_tool_call(const cJSON *root) {
  if (!cJSON_IsArray(root)) return is_method(root, "tools/call");
  const cJSON *m;
  cJSON_ArrayForEach(m, root) if (is_method(m, "tools/call")) return true;
  return false;
}

/* Answers a request the core never saw (a duplicate in-flight id, no memory). */
static void exchange_put_error(exchange *ex, const cJSON *id, int code, const char *message) {
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "jsonrpc", "2.0");
  cJSON_AddItemToObject(m, "id", cJSON_Duplicate(id, 1));
  cJSON *err = cJSON_AddObjectToObject(m, "error");
  cJSON_AddNumberToObject(err, "code", code);
  cJSON_AddStringToObject(err, "message", message);
  char *json = cJSON_PrintUnformatted(m);
  cJSON_Delete(m);
  if (json) exchange_put(ex, json, strlen(json));
}

static void dispatch_one(session *s, exchange *ex, const cJSON *msg) {
  call *c = NULL;
  if (is_request(msg)) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    bool dup = false;
    if (!(c = call_new(s, ex, id, &dup))) {
      exchange_put_error(ex, id, dup ? -32600 : -32603,
                         dup ? "Invalid Request: this id is already in flight" : "out of memory");
      return;
    }
    ex->expects_reply = true;
  }
  s->cur_ex = ex;
  s->cur_call = c;
  mcp_server_handle_message(s->srv, msg);
  s->cur_ex = NULL;
  s->cur_call = NULL;
}

/* Feeds the POST's messages to the session's core and answers what it can now. */
static void post_dispatch(session *s, aip_http_req *req, const cJSON *root, bool created) {
  exchange *ex = exchange_new(s, req, cJSON_IsArray(root));
  if (!ex) {
    http_error(req, 500, -32603, "Internal error", NULL);
    return;
  }
  if (created) snprintf(ex->headers, sizeof ex->headers, "Mcp-Session-Id: %s\r\n", s->id);
  ex->pending = 1; /* synchronous answers must not finish the exchange mid-batch */
  s->dispatching = ex->dispatching = true;
  if (ex->batch) {
    const cJSON *m;
    cJSON_ArrayForEach(m, root) dispatch_one(s, ex, m);
  } else {
    dispatch_one(s, ex, root);
  }
  s->dispatching = ex->dispatching = false;
  if (!ex->expects_reply) { /* only notifications and responses */
    aip_http_req *r = exchange_take_req(ex);
    if (r) aip_http_respond(r, 202, NULL, NULL, NULL, 0);
  } else if (ex->sse && !dl_empty(&ex->calls)) {
    exchange_stream(ex); /* headers now, so clients see 200 while `slow` runs */
  }
  exchange_orphan_check(ex);
  ex->pending--;
  exchange_settle(ex);
  if (s->dead) session_destroy(s);
}

/* Parses the body like the core does (cJSON, trailing white space allowed). */
static cJSON *parse_body(const aip_http_req *req) {
  if (!req->body.len) return NULL;
  const char *text = req->body.data, *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, req->body.len, &end, 0);
  while (root && end < text + req->body.len &&
         (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
    end++;
  if (root && end != text + req->body.len) {
    cJSON_Delete(root);
    root = NULL;
  }
  return root;
}

static void hung_aborted(aip_http_req *req, void *data) {
  hung_req *h = data;
  dl_remove(&h->link);
  free(h);
}

/* AIP_TEST_HTTP_FAULT for a POST that carries a tools/call. */
static void inject_fault(http_transport *t, aip_http_req *req) {
  if (t->fault == FAULT_GARBAGE) {
    aip_http_respond(req, 200, "application/json", NULL, "not json", 8);
  } else if (t->fault == FAULT_500) {
    aip_http_respond(req, 500, "text/plain", NULL, "injected fault\n", 15);
  } else {
    hung_req *h = malloc(sizeof *h);
    if (!h) {
      aip_http_respond(req, 500, "text/plain", NULL, "out of memory\n", 14);
      return;
    }
    h->req = req; /* never answered; freed when the client gives up or at shutdown */
    dl_append(&t->hung, &h->link);
    aip_http_set_abort(req, hung_aborted, h);
  }
}

static void handle_post(http_transport *t, aip_http_req *req) {
  if (!accepts(req, "application/json") || !accepts(req, "text/event-stream")) {
    http_error(req, 406, -32000,
               "Not Acceptable: Client must accept both application/json and text/event-stream",
               NULL);
    return;
  }
  if (!json_content(req)) {
    http_error(req, 415, -32000, "Unsupported Media Type: Content-Type must be application/json",
               NULL);
    return;
  }
  if (t->opts->verbose) { /* the core traces only what it emits; bodies are traced here */
    int shown = req->body.len > 200 ? 200 : (int)req->body.len;
    fprintf(stderr, "[%s] <- %.*s%s\n", t->opts->name, shown, req->body.len ? req->body.data : "",
            req->body.len > 200 ? "..." : "");
  }
  cJSON *root = parse_body(req);
  if (!root) {
    http_error(req, 400, -32700, "Parse error: Invalid JSON", NULL);
    return;
  }
  session *s = NULL;
  bool created = false;
  if (cJSON_IsArray(root) && cJSON_GetArraySize(root) == 0) {
    http_error(req, 400, -32600, "Invalid Request: empty batch", NULL);
  } else if (!aip_http_header_get(req, "mcp-session-id", NULL) && is_method(root, "initialize")) {
    if (!(s = session_new(t))) http_error(req, 500, -32603, "Internal error", NULL);
    created = s != NULL;
  } else {
    s = session_of(t, req);
  }
  if (s && t->fault != FAULT_NONE && has_tool_call(root)) inject_fault(t, req);
  else if (s) post_dispatch(s, req, root, created);
  cJSON_Delete(root);
}

/* ------------------------------------------------------------------ GET, DELETE */

static void get_stream_aborted(aip_http_req *req, void *data) {
  ((session *)data)->get_stream = NULL;
}

static void handle_get(http_transport *t, aip_http_req *req) {
  if (!accepts(req, "text/event-stream")) {
    http_error(req, 406, -32000, "Not Acceptable: Client must accept text/event-stream", NULL);
    return;
  }
  session *s = session_of(t, req);
  if (!s) return;
  if (s->get_stream) {
    http_error(req, 409, -32000, "Conflict: Only one SSE stream is allowed per session", NULL);
    return;
  }
  s->get_stream = req;
  aip_http_set_abort(req, get_stream_aborted, s);
  aip_http_stream_begin(req, 200, "text/event-stream", NULL);
}

static void handle_delete(http_transport *t, aip_http_req *req) {
  session *s = session_of(t, req);
  if (!s) return;
  session_destroy(s);
  aip_http_respond(req, 200, NULL, NULL, NULL, 0);
}

static void on_request(aip_http_req *req, void *ctx) {
  http_transport *t = ctx;
  if (strcmp(req->path, "/mcp") != 0) {
    aip_http_respond(req, 404, "text/plain", NULL, "not found\n", 10);
    return;
  }
  switch (req->method) {
  case HTTP_POST: handle_post(t, req); return;
  case HTTP_GET: handle_get(t, req); return;
  case HTTP_DELETE: handle_delete(t, req); return;
  default:
    http_error(req, 405, -32000, "Method Not Allowed", "Allow: GET, POST, DELETE\r\n");
  }
}

/* ------------------------------------------------------------------ lifetime */

/* Closes every session (answering their open requests), then the server,
 * which aborts the hung requests; the loop then runs dry. */
static void transport_stop(http_transport *t) {
  if (t->stopping) return;
  t->stopping = true;
  uv_close((uv_handle_t *)&t->sigint, NULL);
  uv_close((uv_handle_t *)&t->sigterm, NULL);
  while (!dl_empty(&t->session_list)) session_destroy(OWNER(t->session_list.next, session, link));
  if (t->http) aip_http_server_close(t->http);
  t->http = NULL;
  uv_close((uv_handle_t *)&t->reap_timer, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  http_transport *t = h->data;
  fprintf(stderr, "[%s] %s: shutting down\n", t->opts->name, strsignal(signum));
  transport_stop(t);
}

static int read_fault(fault_mode *out) {
  const char *v = getenv("AIP_TEST_HTTP_FAULT");
  *out = FAULT_NONE;
  if (!v || !*v) return 0;
  if (strcmp(v, "garbage") == 0) *out = FAULT_GARBAGE;
  else if (strcmp(v, "500") == 0) *out = FAULT_500;
  else if (strcmp(v, "hang") == 0) *out = FAULT_HANG;
  else {
    fprintf(stderr, "[aip-test-server] AIP_TEST_HTTP_FAULT must be garbage, 500 or hang\n");
    return -1;
  }
  return 0;
}

/* Written to a temporary name and renamed, so a script polling for the file
 * never reads half a number. */
static int write_port_file(const char *path, int port) {
  size_t n = strlen(path) + 5;
  char *tmp = malloc(n);
  if (!tmp) return -1;
  snprintf(tmp, n, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int rc = f && fprintf(f, "%d\n", port) > 0 ? 0 : -1;
  if (f && fclose(f) != 0) rc = -1;
  if (rc == 0 && rename(tmp, path) != 0) rc = -1;
  if (rc) fprintf(stderr, "[aip-test-server] cannot write %s: %s\n", path, strerror(errno));
  free(tmp);
  return rc;
}

static int start_listening(http_transport *t, const http_transport_config *cfg) {
  aip_http_limits limits = {
      .max_header_bytes = 64 * 1024,
      .max_body = MAX_BODY,
      .header_timeout_ms = 30 * 1000,
      .idle_timeout_ms = 5 * 60 * 1000, /* keep-alive pools of a benchmark stay open */
      .max_connections = 0,             /* unlimited */
  };
  int rc = aip_http_server_start(t->loop, cfg->host, cfg->port, &limits, on_request, t, &t->http);
  if (rc) {
    fprintf(stderr, "[aip-test-server] cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
            uv_strerror(rc));
    t->http = NULL;
    return -1;
  }
  int port = aip_http_server_port(t->http);
  bool v6 = strchr(cfg->host, ':') != NULL;
  fprintf(stderr, "[%s] listening on http://%s%s%s:%d/mcp\n", t->opts->name, v6 ? "[" : "",
          cfg->host, v6 ? "]" : "", port);
  return cfg->port_file ? write_port_file(cfg->port_file, port) : 0;
}

int http_transport_run(uv_loop_t *loop, const mcp_server_options *opts,
                       const http_transport_config *cfg) {
  http_transport t;
  memset(&t, 0, sizeof t);
  t.loop = loop;
  t.opts = opts;
  t.reply = cfg->reply;
  dl_init(&t.session_list);
  dl_init(&t.reap_queue);
  dl_init(&t.hung);
  aip_map_init(&t.sessions);
  if (read_fault(&t.fault) != 0) return 2;
  uv_timer_init(loop, &t.reap_timer);
  t.reap_timer.data = &t;
  uv_signal_init(loop, &t.sigint);
  uv_signal_init(loop, &t.sigterm);
  t.sigint.data = t.sigterm.data = &t;
  int status = 0;
  if (start_listening(&t, cfg) != 0) {
    status = 1;
    transport_stop(&t);
  } else {
    uv_signal_start(&t.sigint, on_signal, SIGINT);
    uv_signal_start(&t.sigterm, on_signal, SIGTERM);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  aip_map_free(&t.sessions);
  return status;
}
