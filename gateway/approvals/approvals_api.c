/* approvals_api.c -- the operators' approval API on the admin listener (INTERFACES.md §5):
 *   GET  /v1/approvals?status=pending|approved|denied|expired&limit=N&offset=N
 *   GET  /v1/approvals/{id}
 *   POST /v1/approvals/{id}/approve   and   /deny      body {"reason": "..."} (optional)
 *   GET  /v1/approvals/events          SSE: every created and decided record
 * Every request needs an operator's bearer token (401 otherwise). Answers are JSON; errors are
 * {"error": "...", "message": "..."}. Store requests complete later, so each request carries
 * an abort callback that detaches it if the operator's connection goes first.
 */
#include <errno.h>
#include <llhttp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/approvals/approvals_http.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

#define MAX_LIST 500
/* A page holds rows while their stored arguments total at most this (at least one row): with
 * approvals.max_args_size at most 1 MiB, no answer grows past a few MiB whatever `limit` says. */
#define LIST_BUDGET (1u << 20)

typedef struct api_call {
  aip_http_req *req; /* NULL once the operator went away */
  aip_gw *gw;
  char by[80];
  size_t offset; /* list: where this page starts */
} api_call;

static void api_error(aip_http_req *req, int status, const char *code, const char *message) {
  aip_buf b;
  aip_buf_init(&b);
  aip_buf_printf(&b, "{\"error\":\"%s\",\"message\":", code);
  aip_buf_json_string(&b, message, strlen(message), 1);
  aip_buf_puts(&b, "}");
  aip_http_respond(req, status, "application/json", NULL, b.data, b.len);
  aip_buf_free(&b);
}

/* The operator behind the bearer token, or NULL. Same scheme as agents: SHA-256 looked up,
 * then compared in constant time. */
static const aip_operator_config *operator_of(aip_gw *gw, const aip_http_req *req) {
  size_t n;
  const char *v = aip_http_header_get(req, "authorization", &n);
  if (!v || n < 8 || strncasecmp(v, "Bearer ", 7) != 0 || n - 7 > 4096) return NULL;
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, (const unsigned char *)v + 7, n - 7);
  const aip_operator_config *op = aip_map_get(&gw->operators_by_token, h, sizeof(h));
  return op && sodium_memcmp(op->token_sha256, h, sizeof(h)) == 0 ? op : NULL;
}

static void call_aborted(aip_http_req *req, void *data) { ((api_call *)data)->req = NULL; }

static api_call *call_new(aip_gw *gw, aip_http_req *req) {
  api_call *c = calloc(1, sizeof(*c));
  if (!c) {
    api_error(req, 500, "internal", "out of memory");
    return NULL;
  }
  c->req = req;
  c->gw = gw;
  aip_http_set_abort(req, call_aborted, c);
  return c;
}

/* Takes the call's request back (NULL if gone) and frees the call. */
static aip_http_req *call_end(api_call *c) {
  aip_http_req *req = c->req;
  if (req) aip_http_set_abort(req, NULL, NULL);
  free(c);
  return req;
}

/* ---- GET one, POST decide ----------------------------------------------------------------- */

static void on_record(void *data, int err, const aip_approval *a) {
  aip_http_req *req = call_end(data);
  if (!req) return;
  if (err == -ENOENT) return api_error(req, 404, "not_found", "no such approval");
  if (err && err != -EALREADY) return api_error(req, 500, "store", "the store failed");
  if (err == -EALREADY) {
    char msg[96];
    snprintf(msg, sizeof(msg), "already %s", aip_approval_status_name(a->status));
    return api_error(req, 409, "already_decided", msg);
  }
  aip_buf b;
  aip_buf_init(&b);
  aip_approval_to_json(&b, a);
  aip_http_respond(req, 200, "application/json", NULL, b.data, b.len);
  aip_buf_free(&b);
}

/* {"reason": "..."}: strict, exact-case, nothing else; an empty body means no reason. The
 * root must be an object before its members are walked: an array's items have no names, a
 * scalar has no items (see approvals.h; the fuzz harness calls this directly). */
int aip_approval_decision_parse(const char *body, size_t len, char **reason) {
  *reason = NULL;
  if (len == 0) return 0;
  if (len > AIP_APPROVAL_BODY_MAX) return -EMSGSIZE;
  cJSON *root = NULL;
  if (aip_json_parse(body, len, &root) != AIP_JSON_OK) return -EINVAL;
  int rc = cJSON_IsObject(root) ? 0 : -EINVAL;
  const cJSON *item;
  for (item = rc ? NULL : root->child; item && !rc; item = item->next) {
    if (!item->string || strcmp(item->string, "reason") != 0 || !cJSON_IsString(item))
      rc = -EINVAL;
    else if (strlen(item->valuestring) > AIP_APPROVAL_REASON_MAX)
      rc = -EINVAL;
    else if (*reason) /* a duplicate (aip_json_parse refuses them; never rely on one place) */
      rc = -EINVAL;
    else if (!(*reason = strdup(item->valuestring)))
      rc = -ENOMEM;
  }
  cJSON_Delete(root);
  if (rc) {
    free(*reason);
    *reason = NULL;
  }
  return rc;
}

static void decide(aip_gw *gw, aip_http_req *req, const aip_operator_config *op, const char *id,
                   aip_approval_status to) {
  char *reason;
  if (aip_approval_decision_parse(req->body.data, req->body.len, &reason))
    return api_error(req, 400, "bad_request", "body must be {\"reason\": \"...\"}");
  api_call *c = call_new(gw, req);
  if (c) aip_approvals_decide(gw->approvals, id, to, op->name, reason, on_record, c);
  free(reason);
}

/* ---- list ------------------------------------------------------------------------------------ */

static void on_list(void *data, int err, const aip_approval *list, size_t n, int more) {
  size_t next = ((api_call *)data)->offset + n;
  aip_http_req *req = call_end(data);
  if (!req) return;
  if (err) return api_error(req, 500, "store", "the store failed");
  aip_buf b;
  aip_buf_init(&b);
  aip_buf_puts(&b, "{\"approvals\":[");
  for (size_t i = 0; i < n; i++) {
    if (i) aip_buf_puts(&b, ",");
    aip_approval_to_json(&b, &list[i]);
  }
  if (more) aip_buf_printf(&b, "],\"next_offset\":%zu}", next);
  else aip_buf_puts(&b, "],\"next_offset\":null}");
  aip_http_respond(req, 200, "application/json", NULL, b.data, b.len);
  aip_buf_free(&b);
}

/* Reads `name=value` from a query string into `out`; returns 1 when present, -1 when too long
 * or given twice (which one would count is a guess: refuse). */
static int query_param(const char *q, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  int found = 0;
  for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
    if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
      size_t vl = strcspn(p + nl + 1, "&");
      if (vl >= cap || found) return -1;
      memcpy(out, p + nl + 1, vl);
      out[vl] = 0;
      found = 1;
    }
  }
  return found;
}

static int query_number(const char *q, const char *name, size_t dflt, size_t min, size_t max,
                        size_t *out) {
  char v[24];
  int has = query_param(q, name, v, sizeof(v));
  if (has < 0) return -EINVAL;
  if (!has) {
    *out = dflt;
    return 0;
  }
  char *end;
  unsigned long long n = strtoull(v, &end, 10);
  if (!*v || *end || n < min || n > max || *v < '0' || *v > '9') return -EINVAL;
  *out = (size_t)n;
  return 0;
}

static void list(aip_gw *gw, aip_http_req *req) {
  char st[16];
  int status = -1, has = query_param(req->query, "status", st, sizeof(st));
  aip_approval_status parsed;
  if (has < 0 || (has && aip_approval_status_parse(st, &parsed)))
    return api_error(req, 400, "bad_request", "status must be pending, approved, denied or expired");
  if (has) status = (int)parsed;
  size_t limit, offset;
  if (query_number(req->query, "limit", 100, 1, MAX_LIST, &limit) ||
      query_number(req->query, "offset", 0, 0, 1u << 30, &offset))
    return api_error(req, 400, "bad_request", "limit (1 to 500) and offset must be numbers");
  api_call *c = call_new(gw, req);
  if (!c) return;
  c->offset = offset;
  aip_store_approval_list(aip_approvals_store(gw->approvals), status, limit, offset, LIST_BUDGET,
                          on_list, c);
}

/* ---- events ---------------------------------------------------------------------------------- */

typedef struct event_stream {
  aip_http_req *req;
  aip_gw *gw;
  uint8_t token_sha256[32]; /* the operator's who opened it: a reload may remove it */
  struct event_stream *prev, *next; /* in gw->event_streams */
} event_stream;

static void on_event(void *data, const char *type, const aip_approval *a) {
  event_stream *es = data;
  aip_buf b;
  aip_buf_init(&b);
  aip_buf_printf(&b, "event: %s\ndata: ", type);
  aip_approval_to_json(&b, a);
  aip_buf_puts(&b, "\n\n");
  aip_http_stream_write(es->req, b.data, b.len);
  aip_buf_free(&b);
}

static void events_free(event_stream *es) {
  aip_approvals_unsubscribe(es->gw->approvals, on_event, es);
  if (es->prev) es->prev->next = es->next;
  else es->gw->event_streams = es->next;
  if (es->next) es->next->prev = es->prev;
  free(es);
}

static void events_aborted(aip_http_req *req, void *data) { events_free(data); }

static void events(aip_gw *gw, aip_http_req *req, const aip_operator_config *op) {
  event_stream *es = calloc(1, sizeof(*es));
  if (!es || aip_approvals_subscribe(gw->approvals, on_event, es)) {
    free(es);
    return api_error(req, 503, "busy", "too many event streams");
  }
  es->req = req;
  es->gw = gw;
  memcpy(es->token_sha256, op->token_sha256, sizeof(es->token_sha256));
  es->next = gw->event_streams;
  if (es->next) es->next->prev = es;
  gw->event_streams = es;
  aip_http_set_abort(req, events_aborted, es);
  aip_http_stream_begin(req, 200, "text/event-stream", NULL);
  aip_http_stream_write(req, ": approvals\n\n", 13);
}

void aip_approvals_api_operators_changed(aip_gw *gw) {
  event_stream *next;
  for (event_stream *es = gw->event_streams; es; es = next) {
    next = es->next;
    if (aip_map_get(&gw->operators_by_token, es->token_sha256, sizeof(es->token_sha256))) continue;
    aip_http_req *req = es->req;
    aip_http_set_abort(req, NULL, NULL);
    events_free(es);
    aip_http_stream_end(req);
  }
}

/* ---- routing ---------------------------------------------------------------------------------- */

static int valid_id(const char *s, size_t n) {
  if (n != 32) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

int aip_approvals_api_handle(aip_http_req *req, aip_gw *gw) {
  static const char prefix[] = "/v1/approvals";
  if (strncmp(req->path, prefix, sizeof(prefix) - 1) != 0) return 0;
  const char *rest = req->path + sizeof(prefix) - 1;
  if (*rest && *rest != '/') return 0;
  const aip_operator_config *op = operator_of(gw, req);
  if (!op) {
    static const char body[] = "{\"error\":\"unauthorized\",\"message\":\"operator token required\"}";
    aip_http_respond(req, 401, "application/json", "WWW-Authenticate: Bearer\r\n", body,
                     sizeof(body) - 1);
    return 1;
  }
  if (!gw->approvals) {
    api_error(req, 503, "unavailable", "the approval queue is not running");
    return 1;
  }
  int get = req->method == HTTP_GET, post = req->method == HTTP_POST;
  if (!*rest || strcmp(rest, "/") == 0) {
    if (get) list(gw, req);
    else api_error(req, 405, "method_not_allowed", "GET only");
    return 1;
  }
  if (strcmp(rest, "/events") == 0) {
    if (get) events(gw, req, op);
    else api_error(req, 405, "method_not_allowed", "GET only");
    return 1;
  }
  const char *id = rest + 1, *slash = strchr(id, '/');
  size_t idn = slash ? (size_t)(slash - id) : strlen(id);
  char idbuf[33];
  if (!valid_id(id, idn)) {
    api_error(req, 404, "not_found", "no such approval");
    return 1;
  }
  memcpy(idbuf, id, 32);
  idbuf[32] = 0;
  if (!slash && get) {
    api_call *c = call_new(gw, req);
    if (c) aip_store_approval_get(aip_approvals_store(gw->approvals), idbuf, on_record, c);
  } else if (slash && post && strcmp(slash, "/approve") == 0) {
    decide(gw, req, op, idbuf, AIP_APPROVAL_APPROVED);
  } else if (slash && post && strcmp(slash, "/deny") == 0) {
    decide(gw, req, op, idbuf, AIP_APPROVAL_DENIED);
  } else if (slash && (strcmp(slash, "/approve") == 0 || strcmp(slash, "/deny") == 0)) {
    api_error(req, 405, "method_not_allowed", "POST only");
  } else {
    api_error(req, 404, "not_found", "no such endpoint");
  }
  return 1;
}
