/* mcp_http.c -- the agent-facing Streamable HTTP endpoint (/mcp), MCP 2025-03-26..2025-11-25.
 *
 * Order of checks for every request, each with its exact status (reference/mcp.md section 2):
 *   path (404) -> Origin, Host (403, http_guard.c) -> bearer token (401) -> HTTP method (405) -> headers
 *   (415, 406, 400 bad MCP-Protocol-Version) -> session (400 missing, 404 unknown or another
 *   agent's) -> body (400 -32700 / -32600) -> dispatch.
 * A POST that carries requests becomes an "exchange": it is answered as application/json when
 * the only message for it is its response, or switches to text/event-stream as soon as a
 * related message (progress) must go first.
 * Every SSE event carries an id "<session tag>-<stream>-<seq>" and is kept in the session's
 * replay buffer (mcp/replay.h), so a client whose connection dropped resumes the stream with
 * GET + Last-Event-ID (docs/routing.md, "Resumable streams").
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "gateway/approvals/ask_elicit.h"
#include "gateway/core/agent.h"
#include "gateway/core/dispatch.h"
#include "gateway/core/rate_durable.h"
#include "gateway/core/routes.h"
#include "gateway/http/http_guard.h"
#include "gateway/mcp/outstanding.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/replay.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

struct aip_exchange {
  aip_gw *gw;
  aip_http_req *req; /* NULL once the client went away */
  aip_session *sess;
  int batch;
  int sse;
  int pending; /* requests not yet answered, +1 while dispatching */
  aip_buf batch_out; /* rendered answers of a batch, comma-separated */
  aip_replay_stream *rs; /* its SSE stream's replay record, once it is SSE */
  char headers[128]; /* extra response headers (Mcp-Session-Id on initialize) */
};

static const char *const versions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};

/* The `retry` of the priming event (2025-11-25): how long a client waits before it resumes a
 * stream whose connection dropped. The gateway itself never closes a stream early. */
#define RESUME_RETRY_MS 1000

/* Priming events and `retry` exist from 2025-11-25 on (SEP-1699); older clients may choke on an
 * event with empty data. */
static int has_priming(const aip_session *s) { return strcmp(s->version, "2025-11-25") >= 0; }

static int version_supported(const char *v, size_t n) {
  for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
    if (strlen(versions[i]) == n && memcmp(versions[i], v, n) == 0) return 1;
  return 0;
}

/* ---- small HTTP helpers ----------------------------------------------------------------- */

/* An HTTP error with a JSON-RPC error body that has no id (as the transport spec suggests). */
static void http_rpc_error(aip_http_req *req, int status, int code, const char *message,
                           const char *headers) {
  aip_buf b;
  aip_buf_init(&b);
  cJSON null_id = {.type = cJSON_NULL};
  if (aip_rpc_error(&b, &null_id, code, message, NULL) == 0)
    aip_http_respond(req, status, "application/json", headers, b.data, b.len);
  else
    aip_http_respond(req, 500, "text/plain", headers, "out of memory\n", 14);
  aip_buf_free(&b);
}

/* Does the comma-separated header value list contain the media type (ignoring parameters)? */
static int header_has_media(const char *v, size_t n, const char *type) {
  size_t tl = strlen(type);
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t s = i;
    while (i < n && v[i] != ',' && v[i] != ';' && v[i] != ' ') i++;
    if (i - s == tl && strncasecmp(v + s, type, tl) == 0) return 1;
    while (i < n && v[i] != ',') i++;
  }
  return 0;
}

static int accepts(const aip_http_req *req, const char *type) {
  size_t n;
  const char *v = aip_http_header_get(req, "accept", &n);
  return v && (header_has_media(v, n, type) || header_has_media(v, n, "*/*"));
}

/* Why a request got 401. RFC 6750 section 3.1: a request that sent no bearer credentials
 * gets a bare challenge, one whose token was refused gets error="invalid_token". No OAuth
 * discovery hints (resource_metadata): the gateway has no authorization server. */
enum auth_fail { AUTH_MISSING, AUTH_INVALID, AUTH_FAIL_N };
static const char *const auth_fail_reason[AUTH_FAIL_N] = {"missing_token", "invalid_token"};
static const char *const auth_fail_challenge[AUTH_FAIL_N] = {
    "WWW-Authenticate: Bearer\r\n", "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n"};

/* Bearer token -> agent. The lookup is by SHA-256 of the presented token, then a constant-time
 * compare of the full digest: timing can only depend on the digest of the attacker's own guess,
 * never on a stored secret. */
static aip_agent_rt *authenticate(aip_gw *gw, const aip_http_req *req, enum auth_fail *why) {
  size_t n;
  const char *v = aip_http_header_get(req, "authorization", &n);
  *why = AUTH_MISSING;
  if (!v || n < 7 || strncasecmp(v, "Bearer ", 7) != 0) return NULL;
  const char *tok = v + 7;
  size_t tl = n - 7;
  while (tl && *tok == ' ') tok++, tl--;
  if (tl == 0) return NULL;
  *why = AUTH_INVALID;
  if (tl > 4096) return NULL;
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, (const unsigned char *)tok, tl);
  aip_agent_rt *a = aip_map_get(&gw->agents_by_token, h, sizeof(h));
  if (!a || sodium_memcmp(a->cfg->token_sha256, h, sizeof(h)) != 0) return NULL;
  return a;
}

/* One log line per reason per second at most, with the count of the lines held back since,
 * so a token-guessing client cannot flood the log. Reason and address only: never the token
 * or its digest. */
static void auth_fail_log(aip_gw *gw, const aip_http_req *req, enum auth_fail why) {
  static uint64_t last_ms[AUTH_FAIL_N], suppressed[AUTH_FAIL_N];
  static int logged[AUTH_FAIL_N];
  uint64_t now = uv_now(gw->loop);
  if (logged[why] && now - last_ms[why] < 1000) {
    suppressed[why]++;
    return;
  }
  char peer[80], more[48] = "";
  aip_http_peer(req, peer, sizeof(peer));
  if (suppressed[why])
    snprintf(more, sizeof(more), " (%llu more suppressed)", (unsigned long long)suppressed[why]);
  aip_warn("auth: refused /mcp request: %s from %s%s", auth_fail_reason[why], peer, more);
  logged[why] = 1;
  last_ms[why] = now;
  suppressed[why] = 0;
}

/* ---- sessions ---------------------------------------------------------------------------- */

static aip_session *session_new(aip_gw *gw, aip_agent_rt *a) {
  aip_session *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  uint8_t rnd[AIP_SESSION_ID_LEN / 2];
  randombytes_buf(rnd, sizeof(rnd));
  sodium_bin2hex(s->id, sizeof(s->id), rnd, sizeof(rnd));
  s->agent = a;
  s->last_used_ms = uv_now(gw->loop);
  /* the tag in its event ids: random, so ids of two sessions never match (and name neither) */
  uint8_t trnd[AIP_REPLAY_TAG_LEN / 2];
  char tag[AIP_REPLAY_TAG_LEN + 1];
  randombytes_buf(trnd, sizeof(trnd));
  sodium_bin2hex(tag, sizeof(tag), trnd, sizeof(trnd));
  if (!(s->replay = malloc(sizeof(*s->replay)))) {
    free(s);
    return NULL;
  }
  aip_replay_init(s->replay, tag, gw->cfg->limits.max_replay_bytes);
  aip_map_init(&s->outstanding);
  if (aip_map_put(&gw->sessions, s->id, AIP_SESSION_ID_LEN, s)) {
    free(s->replay);
    free(s);
    return NULL;
  }
  gw->sessions_n++;
  a->sessions_n++;
  gw->metrics.sessions_created++;
  s->next = a->sessions;
  if (a->sessions) a->sessions->prev = s;
  a->sessions = s;
  return s;
}

static void get_stream_aborted(aip_http_req *req, void *data) {
  aip_session *s = data;
  s->get_stream = NULL;
  /* its record stays: the messages meant for it are kept for a resume */
  if (s->get_rs) aip_replay_attach(s->replay, s->get_rs, 0);
}

void aip_session_end(aip_gw *gw, aip_session *s) {
  while (s->pending) aip_pending_error(s->pending, AIP_RPC_INTERNAL_ERROR, "Session ended");
  aip_route_subs_session_end(s); /* its resource subscriptions (core/routes.h) */
  aip_outstanding_session_end(s); /* requests still awaiting this agent's answer fail */
  if (s->get_stream) {
    aip_http_req *r = s->get_stream;
    s->get_stream = NULL;
    aip_http_set_abort(r, NULL, NULL);
    aip_http_stream_end(r);
  }
  aip_map_del(&gw->sessions, s->id, AIP_SESSION_ID_LEN);
  gw->sessions_n--;
  aip_agent_rt *a = s->agent;
  a->sessions_n--;
  if (s->prev) s->prev->next = s->next;
  else a->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  cJSON_Delete(s->client_caps);
  aip_replay_free(s->replay);
  free(s->replay);
  free(s);
}

/* One rendered message as an SSE event of stream `rs` (its id, then kept for replay), written
 * to `req` when a connection carries the stream now (NULL: the client is away). `rs` NULL (out
 * of memory when the stream opened): an event without id, not kept. */
static int sse_event(aip_session *s, aip_replay_stream *rs, aip_http_req *req, const char *json,
                     size_t len, int final) {
  aip_buf b;
  aip_buf_init(&b);
  int err = 0;
  if (rs) {
    char id[AIP_EVENT_ID_MAX];
    aip_replay_next_id(s->replay, rs, id);
    err = aip_buf_printf(&b, "id: %s\n", id);
  }
  if (!err) err = aip_buf_puts(&b, "event: message\ndata: ");
  if (!err) err = aip_buf_append(&b, json, len);
  if (!err) err = aip_buf_puts(&b, "\n\n");
  /* out of memory for the copy: the event still goes out, it just cannot be replayed */
  if (!err && rs && aip_replay_store(s->replay, rs, b.data, b.len, req != NULL, final))
    aip_warn("agent %s: an SSE event could not be kept for replay (out of memory)",
             s->agent->cfg->name);
  if (!err && req) err = aip_http_stream_write(req, b.data, b.len);
  aip_buf_free(&b);
  return err;
}

/* A new SSE stream on `req` begins: its record, and on 2025-11-25 the priming event (an id and
 * empty data, with the `retry` to wait before resuming). `req_id`: the request it answers. */
static aip_replay_stream *stream_open(aip_session *s, aip_http_req *req, const cJSON *req_id,
                                      int is_get) {
  aip_buf id;
  aip_buf_init(&id);
  if (req_id) aip_json_print(&id, req_id);
  aip_replay_stream *rs = aip_replay_open(s->replay, req_id ? id.data : NULL);
  aip_buf_free(&id);
  if (!rs) return NULL;
  rs->is_get = is_get;
  aip_replay_attach(s->replay, rs, 1);
  if (has_priming(s)) {
    char eid[AIP_EVENT_ID_MAX], ev[AIP_EVENT_ID_MAX + 48];
    aip_replay_priming_id(s->replay, rs, eid);
    int n = snprintf(ev, sizeof(ev), "id: %s\nretry: %d\ndata: \n\n", eid, RESUME_RETRY_MS);
    aip_http_stream_write(req, ev, (size_t)n);
  }
  return rs;
}

/* Prints a message for the agent and runs the agent's response DLP over it: every byte that
 * reaches an agent from upstream passes here. `c` (may be NULL) collects per-rule counts. A
 * scan that fails is fail-closed unless the policy's failover.on_dlp_error says allow. */
static void render(aip_session *s, const cJSON *msg, aip_buf *out, aip_dlp_counts *c) {
  aip_agent_rt *a = s->agent;
  if (!a->dlp) {
    aip_json_print(out, msg);
    return;
  }
  aip_buf raw;
  aip_buf_init(&raw);
  aip_json_print(&raw, msg);
  aip_dlp_run r = {.dlp = a->dlp, .scratch = a->dlp_scratch, .doc = aip_policy_doc_of(a->policy)};
  int rc = aip_dlp_run_json(&r, AIP_DLP_RESPONSE, raw.data, raw.len, out, c); /* dlp.timeout */
  if (rc == 0) {
    aip_buf_append(out, raw.data, raw.len);
  } else if (rc < 0) {
    if (rc == -ETIMEDOUT)
      aip_warn("agent %s: DLP scan exceeded dlp.timeout (%llu ms)", a->cfg->name,
               (unsigned long long)r.doc->dlp.timeout_ms);
    else
      aip_warn("agent %s: DLP could not scan a message (%s)", a->cfg->name, strerror(-rc));
    if (aip_policy_doc_of(a->policy)->failover.on_dlp_error == AIP_FAILOVER_ALLOW) {
      aip_buf_append(out, raw.data, raw.len);
    } else {
      const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
      cJSON null_id = {.type = cJSON_NULL};
      aip_rpc_error(out, id ? id : &null_id, AIP_RPC_INTERNAL_ERROR,
                    AIP_DLP_RESP_FAILED_MSG, NULL);
    }
  }
  aip_buf_free(&raw);
  if (c) aip_agent_count_dlp(a, c);
}

void aip_session_push(aip_session *s, const cJSON *msg) {
  /* no GET stream ever: dropped; one whose connection dropped: kept for its resume */
  if (!s->get_stream && !s->get_rs) return;
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, s->agent->dlp);
  aip_buf b;
  aip_buf_init(&b);
  render(s, msg, &b, &c);
  sse_event(s, s->get_rs, s->get_stream, b.data, b.len, 0);
  aip_buf_free(&b);
  aip_dlp_counts_free(&c);
}

/* Ends idle sessions and keeps open SSE streams alive through proxies. */
void aip_sessions_housekeeping(aip_gw *gw) {
  uint64_t now = uv_now(gw->loop);
  uint64_t idle = gw->cfg->limits.session_idle_timeout_ms;
  for (size_t i = 0; i < gw->agents_n; i++) {
    for (aip_session *s = gw->agents[i].sessions, *n; s; s = n) {
      n = s->next;
      if (s->get_stream) {
        aip_http_stream_write(s->get_stream, ": keep-alive\n\n", 14);
      } else if (!s->pending && now - s->last_used_ms > idle) {
        gw->metrics.sessions_expired++;
        aip_session_end(gw, s);
      }
    }
  }
}

/* The client's `_meta.progressToken` of a held tools/call, or NULL. */
static const cJSON *progress_token(const aip_pending *p) {
  const cJSON *meta = cJSON_IsObject(p->params)
                          ? cJSON_GetObjectItemCaseSensitive(p->params, "_meta") : NULL;
  const cJSON *tok = cJSON_IsObject(meta) ? cJSON_GetObjectItemCaseSensitive(meta, "progressToken")
                                          : NULL;
  return cJSON_IsString(tok) || cJSON_IsNumber(tok) ? tok : NULL;
}

/* A call held for a human hears from us every approvals.keepalive, so neither the client nor a
 * proxy gives up on a quiet stream: notifications/progress with the client's progressToken
 * when it sent one (what SDK clients with onprogress / resetTimeoutOnProgress listen for), else
 * an SSE comment. `progress` is the seconds waited so far: it grows with every notification,
 * as MCP requires, and there is no total. */
void aip_sessions_approval_keepalive(aip_gw *gw) {
  for (size_t i = 0; i < gw->agents_n; i++)
    for (aip_session *s = gw->agents[i].sessions; s; s = s->next)
      for (aip_pending *p = s->pending; p; p = p->next) {
        /* held for the operators' queue or for the agent's own user (elicitation) */
        if (!(p->approval || p->elicit) || !p->ex->req || !p->ex->sse) continue;
        const cJSON *tok = progress_token(p);
        if (!tok) {
          aip_http_stream_write(p->ex->req, ": waiting for approval\n\n", 24);
          continue;
        }
        cJSON *msg = cJSON_CreateObject(), *params;
        cJSON_AddStringToObject(msg, "jsonrpc", "2.0");
        cJSON_AddStringToObject(msg, "method", "notifications/progress");
        cJSON_AddItemToObject(msg, "params", params = cJSON_CreateObject());
        cJSON_AddItemToObject(params, "progressToken", cJSON_Duplicate(tok, 1));
        cJSON_AddNumberToObject(params, "progress",
                                (double)((uv_hrtime() - p->start_ns) / 1000000) / 1000.0);
        cJSON_AddStringToObject(params, "message", "Waiting for human approval");
        aip_pending_emit(p, msg, 0); /* not final: p stays in the list */
      }
}

/* Looks up the session named by the request; answers the error itself when there is none. */
static aip_session *session_of(aip_gw *gw, aip_agent_rt *a, aip_http_req *req) {
  size_t n;
  const char *id = aip_http_header_get(req, "mcp-session-id", &n);
  if (!id) {
    http_rpc_error(req, 400, -32000, "Bad Request: Mcp-Session-Id header is required", NULL);
    return NULL;
  }
  aip_session *s = n == AIP_SESSION_ID_LEN ? aip_map_get(&gw->sessions, id, n) : NULL;
  /* Another agent's session is "not found" for this agent: existence is not disclosed. */
  if (!s || s->agent != a) {
    http_rpc_error(req, 404, -32001, "Session not found", NULL);
    return NULL;
  }
  s->last_used_ms = uv_now(gw->loop);
  return s;
}

/* ---- exchanges and pending requests ------------------------------------------------------ */

static void exchange_aborted(aip_http_req *req, void *data) {
  aip_exchange *ex = data;
  ex->req = NULL;
  /* the call goes on: what it says is kept for a resume (GET + Last-Event-ID) */
  if (ex->rs) aip_replay_attach(ex->sess->replay, ex->rs, 0);
  /* an answer paused for this client would wait forever: let it run to its (dropped) end */
  for (aip_pending *p = ex->sess->pending; p; p = p->next)
    if (p->ex == ex && p->stream && p->call) aip_upstream_call_resume(p->call);
}

static void exchange_maybe_finish(aip_exchange *ex) {
  if (ex->pending > 0) return;
  if (ex->req) {
    aip_http_set_abort(ex->req, NULL, NULL);
    if (ex->sse) {
      aip_http_stream_end(ex->req);
    } else if (ex->batch_out.len) {
      aip_buf b;
      aip_buf_init(&b);
      aip_buf_puts(&b, "[");
      aip_buf_append(&b, ex->batch_out.data, ex->batch_out.len);
      aip_buf_puts(&b, "]");
      aip_http_respond(ex->req, 200, "application/json", ex->headers, b.data, b.len);
      aip_buf_free(&b);
    } else {
      /* every request failed before it could be tracked (out of memory): never hang */
      http_rpc_error(ex->req, 500, AIP_RPC_INTERNAL_ERROR, "Internal error", NULL);
    }
  }
  if (ex->rs) aip_replay_close(ex->sess->replay, ex->rs); /* may free it */
  aip_buf_free(&ex->batch_out);
  free(ex);
}

/* `req_id`: the request the stream answers (NULL for a batch). */
static void exchange_to_sse(aip_exchange *ex, const cJSON *req_id) {
  if (ex->sse || !ex->req) return;
  ex->sse = 1;
  aip_http_stream_begin(ex->req, 200, "text/event-stream", ex->headers);
  ex->rs = stream_open(ex->sess, ex->req, ex->batch ? NULL : req_id, 0);
}

aip_pending *aip_pending_new(aip_exchange *ex, aip_session *s, const cJSON *id) {
  aip_pending *p = calloc(1, sizeof(*p));
  if (!p || !(p->client_id = cJSON_Duplicate(id, 1))) {
    free(p);
    return NULL;
  }
  p->ex = ex;
  p->sess = s;
  p->start_ns = uv_hrtime();
  p->next = s->pending;
  if (s->pending) s->pending->prev = p;
  s->pending = p;
  ex->pending++;
  s->agent->gw->inflight++;
  s->agent->inflight++;
  return p;
}

static void stream_drop(aip_pending *p, int err);

static void pending_free(aip_pending *p) {
  aip_session *s = p->sess;
  if (p->stream) stream_drop(p, -ECANCELED);
  s->agent->gw->inflight--;
  s->agent->inflight--;
  if (p->waiting_tools) aip_router_cancel_wait(s->agent, p);
  if (p->rate_wait) aip_rate_durable_forget(p);
  /* the approval record stays for the operators; this call just stops waiting for it */
  if (p->approval) aip_approvals_forget(s->agent->gw->approvals, p->approval);
  if (p->call) aip_upstream_call_cancel(p->call, "session ended");
  if (p->prev) p->prev->next = p->next;
  else s->pending = p->next;
  if (p->next) p->next->prev = p->prev;
  cJSON_Delete(p->client_id);
  cJSON_Delete(p->args);
  cJSON_Delete(p->params);
  aip_buf_free(&p->dlp_audit);
  free(p->monitor);
  free(p->tool);
  free(p->subject);
  free(p);
}

void aip_pending_emit(aip_pending *p, cJSON *msg, int final) {
  aip_exchange *ex = p->ex;
  /* an answer before the user's (cancelled, session ended): withdraw the question first */
  if (final && p->elicit) aip_ask_elicit_drop(p, "the tool call ended before the user answered");
  int dropped = p->stream != NULL;
  if (p->stream) {
    /* half an SSE event is on the wire: nothing else can follow it on this response (a session
     * that ends, a reload): the answer is cut short, and the call audited as such */
    if (!final) {
      cJSON_Delete(msg);
      return;
    }
    stream_drop(p, -ECANCELED);
  }
  if (final) {
    cJSON *id = cJSON_Duplicate(p->client_id, 1);
    if (cJSON_GetObjectItemCaseSensitive(msg, "id")) cJSON_ReplaceItemInObjectCaseSensitive(msg, "id", id);
    else cJSON_AddItemToObject(msg, "id", id);
  }
  aip_buf out;
  aip_buf_init(&out);
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, p->sess->agent->dlp);
  render(p->sess, msg, &out, &c);
  /* a dropped stream already put what it redacted in the audit record */
  if (final && !dropped) aip_dlp_counts_json(p->sess->agent->dlp, &c, &p->dlp_audit);
  aip_dlp_counts_free(&c);
  if (final && p->on_final) p->on_final(p, msg);
  if (ex->req && !final) exchange_to_sse(ex, p->client_id);
  if (ex->sse) {
    /* also when the client is away: kept for its resume */
    sse_event(ex->sess, ex->rs, ex->req, out.data, out.len, final && !ex->batch);
  } else if (ex->req) {
    if (ex->batch) {
      if (ex->batch_out.len) aip_buf_puts(&ex->batch_out, ",");
      aip_buf_append(&ex->batch_out, out.data, out.len);
    } else {
      aip_http_set_abort(ex->req, NULL, NULL);
      /* an initialize the policy refused names no session: it is ended right after */
      aip_http_respond(ex->req, 200, "application/json", ex->sess->version[0] ? ex->headers : NULL,
                       out.data, out.len);
      ex->req = NULL;
    }
  }
  aip_buf_free(&out);
  cJSON_Delete(msg);
  if (!final) return;
  pending_free(p); /* cancels the upstream call if it is still running */
  ex->pending--;
  exchange_maybe_finish(ex);
}

void aip_pending_hold(aip_pending *p) { exchange_to_sse(p->ex, p->client_id); }

int aip_pending_connected(const aip_pending *p) { return p->ex->req != NULL; }

/* ---- streamed answers (docs/dlp.md, "Streaming in the gateway") -------------------------- */

/* Queued response bytes above which the upstream reader pauses, and the level at which it
 * resumes: with 64 KiB reads from the server, memory per answer stays a few hundred KiB. */
#define STREAM_HIGH_WATER (256u << 10)
#define STREAM_LOW_WATER (64u << 10)

struct aip_pending_stream {
  aip_dlp_stream *dlp; /* the agent's response DLP, or a pass-through */
  aip_dlp_counts counts;
  aip_buf out;         /* redacted bytes not yet written */
  int err;             /* first failure; the response is aborted at the end */
  int counted;         /* the counts went to the audit record and the metrics */
  uint64_t spent_ns;   /* scanning it so far, against dlp.timeout */
};

static void stream_count(aip_pending *p) {
  struct aip_pending_stream *st = p->stream;
  if (st->counted) return;
  st->counted = 1;
  if (st->counts.flags & AIP_DLP_F_PARTIAL)
    aip_warn("agent %s: dlp.max_scan_size left part of a streamed answer unscanned",
             p->sess->agent->cfg->name);
  aip_dlp_counts_json(p->sess->agent->dlp, &st->counts, &p->dlp_audit);
  aip_agent_count_dlp(p->sess->agent, &st->counts);
}

static void stream_free(aip_pending *p) {
  struct aip_pending_stream *st = p->stream;
  p->stream = NULL;
  if (p->ex->req) aip_http_on_drain(p->ex->req, 0, NULL, NULL);
  aip_dlp_stream_free(st->dlp);
  aip_dlp_counts_free(&st->counts);
  aip_buf_free(&st->out);
  free(st);
}

/* The answer cannot be completed: close the connection without the final chunk, so the
 * client sees a truncated response rather than a message missing its end (or, worse, bytes
 * DLP never saw). */
static void stream_drop(aip_pending *p, int err) {
  aip_exchange *ex = p->ex;
  aip_warn("agent %s: streamed answer aborted (%s)", p->sess->agent->cfg->name, strerror(-err));
  stream_count(p);
  stream_free(p);
  if (ex->req) {
    aip_http_stream_abort(ex->req);
    ex->req = NULL;
  }
  if (ex->rs) aip_replay_attach(p->sess->replay, ex->rs, 0);
}

/* Writes what DLP let out. Raw \r and \n can only be JSON whitespace (inside strings they are
 * escaped), and either would end the SSE data line: they become spaces, the same JSON. */
static int stream_flush(aip_pending *p) {
  struct aip_pending_stream *st = p->stream;
  aip_exchange *ex = p->ex;
  if (!ex->req) return -ECONNRESET;
  for (size_t i = 0; i < st->out.len; i++)
    if (st->out.data[i] == '\r' || st->out.data[i] == '\n') st->out.data[i] = ' ';
  int err = st->out.len ? aip_http_stream_write(ex->req, st->out.data, st->out.len) : 0;
  st->out.len = 0;
  if (err && !ex->req) return -ECONNRESET;
  return err;
}

/* One read of the answer (`end`: and its end) through DLP, within dlp.timeout summed over
 * the answer's reads. */
static void stream_feed(aip_pending *p, const char *data, size_t n, int end) {
  struct aip_pending_stream *st = p->stream;
  if (st->err) return;
  aip_dlp_run r = aip_agent_dlp_run(p->sess->agent);
  int rc = aip_dlp_run_stream(&r, st->dlp, data, n, end, &st->spent_ns, &st->out, &st->counts);
  if (rc < 0) {
    aip_warn("agent %s: streamed answer failed DLP (%s)", p->sess->agent->cfg->name,
             aip_dlp_error_name(rc));
    st->err = rc;
  }
}

static int sink_begin(void *data, const char *head, size_t n) {
  aip_pending *p = data;
  aip_exchange *ex = p->ex;
  aip_agent_rt *a = p->sess->agent;
  /* a batch answer is one JSON array: its elements are held and joined as before */
  if (ex->batch || p->stream) return -EINVAL;
  struct aip_pending_stream *st = calloc(1, sizeof(*st));
  if (!st) return -ENOMEM;
  aip_buf_init(&st->out);
  st->dlp = aip_dlp_stream_new(a->dlp, AIP_DLP_RESPONSE, AIP_DLP_STREAM_JSON);
  if (!st->dlp || aip_dlp_counts_init(&st->counts, a->dlp)) {
    aip_dlp_stream_free(st->dlp);
    free(st);
    return -ENOMEM;
  }
  p->stream = st;
  exchange_to_sse(ex, p->client_id);
  /* a streamed answer has an id but is not kept for replay (it may be far larger than
   * limits.max_replay_bytes): a cut while it streams aborts it, as before */
  aip_buf eh;
  aip_buf_init(&eh);
  if (ex->rs) {
    char eid[AIP_EVENT_ID_MAX];
    aip_replay_next_id(p->sess->replay, ex->rs, eid);
    aip_buf_printf(&eh, "id: %s\n", eid);
    ex->rs->unkept_seq = ex->rs->next_seq - 1; /* a resume from before it cannot get it */
  }
  aip_buf_puts(&eh, "event: message\ndata: ");
  if (ex->req && (!eh.data || aip_http_stream_write(ex->req, eh.data, eh.len))) st->err = -ECONNRESET;
  aip_buf_free(&eh);
  /* the message as the agent sees it: its head, then the agent's own id in place of ours */
  aip_buf id;
  aip_buf_init(&id);
  stream_feed(p, head, n, 0);
  if (aip_json_print(&id, p->client_id)) st->err = -ENOMEM;
  stream_feed(p, id.data, id.len, 0);
  aip_buf_free(&id);
  return 0;
}

static void stream_drained(aip_http_req *req, void *data) {
  aip_pending *p = data;
  if (p->call) aip_upstream_call_resume(p->call);
}

static int sink_chunk(void *data, const char *bytes, size_t n) {
  aip_pending *p = data;
  struct aip_pending_stream *st = p->stream;
  stream_feed(p, bytes, n, 0);
  if (!st->err) st->err = stream_flush(p);
  if (st->err) return st->err;
  aip_http_req *req = p->ex->req;
  size_t queued = aip_http_queued(req);
  if (queued <= STREAM_HIGH_WATER) return 0;
  if (p->call && aip_upstream_call_shares_reader(p->call)) {
    /* Pausing would pause the server's pipe for every other session of the agent: this
     * client's answer is held up to limits.max_stream_buffer, then cut off (its call fails). */
    if (queued <= p->sess->agent->gw->cfg->limits.max_stream_buffer) return 0;
    aip_warn("agent %s: a client does not read its answer (%zu bytes queued) while other calls "
             "wait on the same server", p->sess->agent->cfg->name, queued);
    p->sess->agent->refused[AIP_REFUSED_STREAM_BUFFER]++;
    return -ENOBUFS;
  }
  aip_http_on_drain(req, STREAM_LOW_WATER, stream_drained, p);
  return 1;
}

static void sink_end(void *data, int err) {
  aip_pending *p = data;
  aip_exchange *ex = p->ex;
  struct aip_pending_stream *st = p->stream;
  p->call = NULL; /* freed after this returns */
  if (!err) err = st->err;
  if (!err) {
    stream_feed(p, NULL, 0, 1);
    int rc = st->err;
    if (rc < 0 || (rc = stream_flush(p)) < 0) err = rc;
  }
  if (!err && aip_http_stream_write(ex->req, "\n\n", 2)) err = -ECONNRESET;
  if (err) {
    stream_drop(p, err);
    if (ex->rs && !ex->batch) {
      /* the answer never got out whole, and no other will follow: a resume of this stream
       * gets an error in its place */
      ex->rs->lost++;
      ex->rs->final_lost = 1;
    }
  } else {
    stream_count(p);
    stream_free(p);
  }
  if (p->on_final) p->on_final(p, NULL);
  pending_free(p);
  ex->pending--;
  exchange_maybe_finish(ex);
}

/* The upstream closed this call's stream before its answer (2025-11-25 SSE polling) and the
 * gateway resumes it there: the agent's stream is closed the same way (after a `retry`), so an
 * agent polls through the gateway as it would against the server itself. Its call goes on; the
 * answer waits in the replay buffer for the agent's GET + Last-Event-ID. Only a stream the
 * agent can resume (2025-11-25, ids, one request) whose answer is not streaming already. */
static void sink_polled(void *data) {
  aip_pending *p = data;
  aip_exchange *ex = p->ex;
  if (!ex->req || !ex->sse || !ex->rs || ex->batch || p->stream || !has_priming(p->sess)) return;
  char r[32];
  int n = snprintf(r, sizeof(r), "retry: %d\n\n", RESUME_RETRY_MS);
  aip_http_stream_write(ex->req, r, (size_t)n);
  aip_http_set_abort(ex->req, NULL, NULL);
  aip_http_stream_end(ex->req);
  ex->req = NULL;
  aip_replay_attach(p->sess->replay, ex->rs, 0);
}

const aip_upstream_sink aip_pending_sink = {sink_begin, sink_chunk, sink_end, sink_polled};

void aip_agent_streams_abort(aip_agent_rt *a) {
  for (aip_session *s = a->sessions; s; s = s->next)
    for (aip_pending *p = s->pending, *n; p; p = n) {
      n = p->next;
      if (p->stream) aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "policy reloaded");
    }
}

void aip_pending_result(aip_pending *p, cJSON *result) {
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "jsonrpc", "2.0");
  cJSON_AddNullToObject(m, "id");
  cJSON_AddItemToObject(m, "result", result);
  aip_pending_emit(p, m, 1);
}

void aip_pending_error_raw(aip_pending *p, aip_buf *err_json) {
  cJSON *m = NULL;
  if (aip_json_parse(err_json->data, err_json->len, &m) != AIP_JSON_OK)
    m = aip_upstream_error_msg(AIP_RPC_INTERNAL_ERROR, "Internal error");
  aip_pending_emit(p, m, 1);
}

void aip_pending_error(aip_pending *p, int code, const char *message) {
  aip_pending_emit(p, aip_upstream_error_msg(code, message), 1);
}

/* limits.max_inflight_per_agent: the agent has that many requests unanswered already (calls
 * running, held for approval, streaming): this one is refused, not queued, so one agent's
 * backlog holds no memory or server capacity of the others. */
static uint64_t max_inflight(const aip_agent_rt *a) {
  return a->cfg->max_inflight ? a->cfg->max_inflight : a->gw->cfg->limits.max_inflight_per_agent;
}

static void refuse_inflight(aip_exchange *ex, aip_session *s, aip_rpc_msg *m) {
  aip_pending *p = aip_pending_new(ex, s, m->id);
  if (!p) return;
  char msg[320];
  snprintf(msg, sizeof(msg), "Too many calls in flight for agent %.200s (its max_inflight quota)",
           s->agent->cfg->name);
  s->agent->refused[AIP_REFUSED_INFLIGHT]++;
  aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, msg);
}

/* ---- POST ---------------------------------------------------------------------------------- */

static int is_initialize(const aip_rpc_msg *m) {
  return m->kind == AIP_RPC_REQUEST && strcmp(m->method, "initialize") == 0;
}

/* Rejects a body before any session work; returns the parsed root or NULL (answered). */
static cJSON *parse_body(aip_gw *gw, aip_http_req *req) {
  cJSON *root = NULL;
  aip_json_status st = aip_json_parse(req->body.data, req->body.len, &root);
  if (st == AIP_JSON_OK) return root;
  gw->metrics.rpc_rejected++;
  if (st == AIP_JSON_DUPLICATE_KEY)
    http_rpc_error(req, 400, AIP_RPC_INVALID_REQUEST, "Invalid Request: duplicate key", NULL);
  else if (st == AIP_JSON_NOMEM)
    http_rpc_error(req, 500, AIP_RPC_INTERNAL_ERROR, "Internal error", NULL);
  else
    http_rpc_error(req, 400, AIP_RPC_PARSE_ERROR, "Parse error", NULL);
  return NULL;
}

/* Classifies every message up front: one bad element rejects the whole POST, so a batch can
 * never smuggle an unchecked message past the policy. */
static int classify_all(aip_http_req *req, cJSON *root, aip_rpc_msg *msgs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    cJSON *item = cJSON_IsArray(root) ? cJSON_GetArrayItem(root, (int)i) : root;
    if (aip_rpc_classify(item, &msgs[i]) == AIP_RPC_INVALID) {
      aip_buf b;
      aip_buf_init(&b);
      char msg[160];
      snprintf(msg, sizeof(msg), "Invalid Request: %s",
               msgs[i].invalid_reason ? msgs[i].invalid_reason : "not a JSON-RPC 2.0 message");
      cJSON null_id = {.type = cJSON_NULL};
      aip_rpc_error(&b, msgs[i].id ? msgs[i].id : &null_id, AIP_RPC_INVALID_REQUEST, msg, NULL);
      aip_http_respond(req, 400, "application/json", NULL, b.data, b.len);
      aip_buf_free(&b);
      return -1;
    }
  }
  return 0;
}

static void post_messages(aip_gw *gw, aip_http_req *req, aip_session *s, cJSON *root,
                          aip_rpc_msg *msgs, size_t n, int created) {
  aip_exchange *ex = calloc(1, sizeof(*ex));
  if (!ex) {
    http_rpc_error(req, 500, AIP_RPC_INTERNAL_ERROR, "Internal error", NULL);
    return;
  }
  ex->gw = gw;
  ex->req = req;
  ex->sess = s;
  ex->batch = cJSON_IsArray(root);
  ex->pending = 1; /* held while dispatching, so synchronous answers cannot finish it early */
  if (created) snprintf(ex->headers, sizeof(ex->headers), "Mcp-Session-Id: %s\r\n", s->id);
  aip_http_set_abort(req, exchange_aborted, ex);
  size_t requests = 0;
  for (size_t i = 0; i < n; i++) {
    gw->metrics.rpc_messages++;
    requests += msgs[i].kind == AIP_RPC_REQUEST;
    if (msgs[i].kind == AIP_RPC_REQUEST && s->agent->inflight >= max_inflight(s->agent))
      refuse_inflight(ex, s, &msgs[i]);
    else
      aip_dispatch(ex, s, &msgs[i]);
  }
  /* 2025-11-25: a tool call not answered at once (it runs upstream, or waits for a human)
   * answers as SSE from now on, its priming event first, so a client cut off during it can
   * resume it (GET + Last-Event-ID). One answered at once (refused, from a cache) stays JSON. */
  if (!ex->batch && n == 1 && msgs[0].kind == AIP_RPC_REQUEST && ex->pending > 1 &&
      strcmp(msgs[0].method, "tools/call") == 0 && has_priming(s))
    exchange_to_sse(ex, msgs[0].id);
  if (requests == 0 && ex->req) {
    aip_http_set_abort(req, NULL, NULL);
    aip_http_respond(req, 202, NULL, NULL, NULL, 0);
    ex->req = NULL;
  }
  ex->pending--;
  exchange_maybe_finish(ex);
}

static void mcp_post(aip_gw *gw, aip_agent_rt *a, aip_http_req *req) {
  size_t n;
  const char *ct = aip_http_header_get(req, "content-type", &n);
  if (!ct || !header_has_media(ct, n, "application/json")) {
    http_rpc_error(req, 415, -32000, "Unsupported Media Type: Content-Type must be application/json", NULL);
    return;
  }
  if (!accepts(req, "application/json") || !accepts(req, "text/event-stream")) {
    http_rpc_error(req, 406, -32000,
                   "Not Acceptable: Client must accept both application/json and text/event-stream", NULL);
    return;
  }
  cJSON *root = parse_body(gw, req);
  if (!root) return;
  size_t count = cJSON_IsArray(root) ? (size_t)cJSON_GetArraySize(root) : 1;
  aip_rpc_msg msgs_small[1];
  aip_rpc_msg *msgs = count <= 1 ? msgs_small : calloc(count, sizeof(*msgs));
  aip_session *s = NULL;
  int created = 0;
  if (!msgs) {
    http_rpc_error(req, 500, AIP_RPC_INTERNAL_ERROR, "Internal error", NULL);
    goto done;
  }
  if (count == 0 || count > 100) {
    http_rpc_error(req, 400, AIP_RPC_INVALID_REQUEST, "Invalid Request: batch size", NULL);
    goto done;
  }
  if (classify_all(req, root, msgs, count)) goto done;
  if (count == 1 && is_initialize(&msgs[0]) && !cJSON_IsArray(root)) {
    if (aip_http_header_get(req, "mcp-session-id", NULL)) {
      http_rpc_error(req, 400, AIP_RPC_INVALID_REQUEST, "Invalid Request: Server already initialized", NULL);
      goto done;
    }
    if (gw->sessions_n >= gw->cfg->limits.max_sessions) {
      http_rpc_error(req, 503, AIP_RPC_INTERNAL_ERROR, "Too many sessions", NULL);
      goto done;
    }
    if (a->sessions_n >= (a->cfg->max_sessions ? a->cfg->max_sessions
                                                : gw->cfg->limits.max_sessions_per_agent)) {
      /* one agent cannot take every slot: the others still get theirs */
      char msg[320];
      snprintf(msg, sizeof(msg), "Too many sessions for agent %.200s (its max_sessions quota)",
               a->cfg->name);
      a->refused[AIP_REFUSED_SESSIONS]++;
      http_rpc_error(req, 503, AIP_RPC_INTERNAL_ERROR, msg, NULL);
      goto done;
    }
    if (!(s = session_new(gw, a))) {
      http_rpc_error(req, 500, AIP_RPC_INTERNAL_ERROR, "Internal error", NULL);
      goto done;
    }
    created = 1;
  } else {
    for (size_t i = 0; i < count; i++)
      if (is_initialize(&msgs[i])) {
        http_rpc_error(req, 400, AIP_RPC_INVALID_REQUEST, "Invalid Request: initialize must be sent alone", NULL);
        goto done;
      }
    if (!(s = session_of(gw, a, req))) goto done;
    /* An answer must be to a request this session was sent and has not answered yet (an
     * approval question, a server's sampling, elicitation or roots request): anything else is
     * refused whole, like any bad element. */
    for (size_t i = 0; i < count; i++)
      if ((msgs[i].kind == AIP_RPC_RESPONSE || msgs[i].kind == AIP_RPC_ERROR) &&
          !aip_outstanding_awaits(s, msgs[i].id)) {
        http_rpc_error(req, 400, AIP_RPC_INVALID_REQUEST,
                       "Invalid Request: no request of this session awaits that response", NULL);
        goto done;
      }
    /* JSON-RPC batches exist only in protocol 2025-03-26 (removed in 2025-06-18). */
    if (cJSON_IsArray(root) && strcmp(s->version, "2025-03-26") != 0) {
      http_rpc_error(req, 400, AIP_RPC_INVALID_REQUEST,
                     "Invalid Request: batches are not allowed in this protocol version", NULL);
      goto done;
    }
  }
  post_messages(gw, req, s, root, msgs, count, created);
  /* an initialize refused by the policy leaves no session behind */
  if (created && !s->version[0] && !s->pending) aip_session_end(gw, s);
done:
  if (msgs != msgs_small) free(msgs);
  cJSON_Delete(root);
}

/* ---- GET and DELETE ------------------------------------------------------------------------ */

static int replay_write(void *data, const char *ev, size_t n) {
  return aip_http_stream_write(data, ev, n);
}

/* GET + Last-Event-ID: the events of that stream after that id, then, while the stream is
 * still open (its call runs, or the GET stream), what comes next on this connection. Only the
 * session's own streams: an id of another session, of a stream it never had or whose record
 * is gone, or not ours at all, is 400; a stream another connection carries now is 409. */
static void resume(aip_gw *gw, aip_session *s, aip_http_req *req, const char *last, size_t n) {
  char tag[AIP_REPLAY_TAG_LEN + 1];
  uint32_t sid;
  uint64_t seq;
  aip_replay_stream *rs = NULL;
  if (aip_event_id_parse(last, n, tag, &sid, &seq) == 0 && strcmp(tag, s->replay->tag) == 0)
    rs = aip_replay_find(s->replay, sid);
  if (!rs || seq >= rs->next_seq) {
    http_rpc_error(req, 400, -32000, "Bad Request: Last-Event-ID names no stream of this session",
                   NULL);
    return;
  }
  aip_exchange *ex = NULL;
  for (aip_pending *p = s->pending; p && !ex; p = p->next)
    if (p->ex->rs == rs) ex = p->ex;
  if (rs->attached || (rs->is_get && s->get_stream)) {
    http_rpc_error(req, 409, -32000, "Conflict: that stream is connected already", NULL);
    return;
  }
  gw->metrics.streams_resumed++;
  aip_http_stream_begin(req, 200, "text/event-stream", NULL);
  aip_replay_attach(s->replay, rs, 1);
  /* what it cannot have: counted from the ids, whether the events were ever written or not */
  int last_missing;
  uint64_t missing = aip_replay_missing(s->replay, rs, seq, &last_missing);
  if (missing) {
    char c[160];
    int k = snprintf(c, sizeof(c), ": %llu events of this stream were dropped from the replay "
                     "buffer (limits.max_replay_bytes)\n\n", (unsigned long long)missing);
    aip_http_stream_write(req, c, (size_t)k);
  }
  aip_replay_each(s->replay, rs, seq, replay_write, req);
  /* an ended POST stream's last event is its answer: gone (dropped, or too large to keep) */
  if (rs->ended && last_missing) rs->final_lost = 1;
  if (rs->final_lost && rs->req_id) {
    /* the answer itself is gone: exactly one answer still, an error saying so */
    cJSON *id = NULL;
    aip_buf e;
    aip_buf_init(&e);
    if (aip_json_parse(rs->req_id, strlen(rs->req_id), &id) == AIP_JSON_OK &&
        aip_rpc_error(&e, id, AIP_RPC_INTERNAL_ERROR,
                      "The answer was dropped before the client resumed (limits.max_replay_bytes "
                      "or a cut streamed answer): the call's outcome is unknown", NULL) == 0)
      sse_event(s, rs, req, e.data, e.len, 1);
    cJSON_Delete(id);
    aip_buf_free(&e);
  }
  aip_replay_forget_lost(s->replay, rs);
  if (ex) { /* the call goes on: this connection carries the rest of its answer */
    ex->req = req;
    aip_http_set_abort(req, exchange_aborted, ex);
    return;
  }
  if (rs->is_get && !rs->ended) {
    s->get_stream = req;
    s->get_rs = rs;
    aip_http_set_abort(req, get_stream_aborted, s);
    return;
  }
  /* the stream is over: everything it had is out now */
  aip_http_stream_end(req);
  aip_replay_attach(s->replay, rs, 0); /* may free rs */
}

static void mcp_get(aip_gw *gw, aip_agent_rt *a, aip_http_req *req) {
  if (!accepts(req, "text/event-stream")) {
    http_rpc_error(req, 406, -32000, "Not Acceptable: Client must accept text/event-stream", NULL);
    return;
  }
  aip_session *s = session_of(gw, a, req);
  if (!s) return;
  size_t n;
  const char *last = aip_http_header_get(req, "last-event-id", &n);
  if (last) {
    resume(gw, s, req, last, n);
    return;
  }
  if (s->get_stream) {
    http_rpc_error(req, 409, -32000, "Conflict: Only one SSE stream is allowed per session", NULL);
    return;
  }
  /* a fresh standalone stream: the older ones are not resumed any more */
  for (aip_replay_stream *o = s->replay->streams, *nx; o; o = nx) {
    nx = o->next;
    if (o->is_get && !o->ended) aip_replay_end(s->replay, o);
  }
  s->get_stream = req;
  aip_http_set_abort(req, get_stream_aborted, s);
  aip_http_stream_begin(req, 200, "text/event-stream", NULL);
  s->get_rs = stream_open(s, req, NULL, 1);
}

static void mcp_delete(aip_gw *gw, aip_agent_rt *a, aip_http_req *req) {
  aip_session *s = session_of(gw, a, req);
  if (!s) return;
  aip_session_end(gw, s);
  aip_http_respond(req, 200, NULL, NULL, NULL, 0);
}

void aip_mcp_handle(aip_http_req *req, aip_gw *gw) {
  if (strcmp(req->path, "/mcp") != 0) {
    aip_http_respond(req, 404, "text/plain", NULL, "not found\n", 10);
    return;
  }
  const char *bad = aip_http_guard(gw->cfg, gw->cfg->listen.host, req);
  if (bad) {
    char msg[64];
    snprintf(msg, sizeof(msg), "Forbidden: invalid %s header", bad);
    http_rpc_error(req, 403, -32000, msg, NULL);
    return;
  }
  enum auth_fail why;
  aip_agent_rt *a = authenticate(gw, req, &why);
  if (!a) {
    gw->metrics.auth_failures++;
    auth_fail_log(gw, req, why);
    http_rpc_error(req, 401, -32000, "Unauthorized", auth_fail_challenge[why]);
    return;
  }
  size_t n;
  const char *pv = aip_http_header_get(req, "mcp-protocol-version", &n);
  if (pv && !version_supported(pv, n)) {
    http_rpc_error(req, 400, -32000, "Bad Request: Unsupported protocol version", NULL);
    return;
  }
  switch (req->method) {
  case HTTP_POST: mcp_post(gw, a, req); return;
  case HTTP_GET: mcp_get(gw, a, req); return;
  case HTTP_DELETE: mcp_delete(gw, a, req); return;
  default:
    http_rpc_error(req, 405, -32000, "Method Not Allowed", "Allow: GET, POST, DELETE\r\n");
  }
}

/* Picks the protocol version for initialize: the client's when we speak it, else our latest. */
const char *aip_mcp_negotiate(const char *requested) {
  if (requested && version_supported(requested, strlen(requested))) return requested;
  return versions[0];
}
