/* wrapper_dlp.c -- DLP in the stdio wrapper, with the gateway's rules and helpers
 * (gateway/core/dlp_apply.c; docs/stdio-wrapper.md, "DLP"):
 *   - every message from the child to the client passes response DLP before our stdout. A scan
 *     that fails (invalid JSON, dlp.timeout, no memory) withholds the message unless
 *     failover.on_dlp_error is allow: a response becomes a -32603 error with its id, a server
 *     request gets that error back at the child, a notification is dropped;
 *   - a line that grows past dlp.stream_threshold streams through the engine as it is read, in
 *     bounded memory, its output written as it becomes final (unless the wrapper needs the whole
 *     message: the answer to initialize or to a tools/list it filters);
 *   - every message from the client to the child (requests, notifications, answers to the
 *     child's requests) passes request DLP, all its members (scan_requests, on_request_match):
 *     that is the decision core's (core/decide.c);
 *   - with filter_stderr the child's stderr is one text stream, so a secret split across writes
 *     is still found; a finished line is flushed once the child goes quiet.
 * Audit: the request's counts ride on the call's record; a message from the child that was
 * redacted or withheld gets a record of its own, direction "downstream", naming the request it
 * answers. Only rule names and counts are ever logged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/decision_audit.h"
#include "gateway/core/dlp_cache.h"
#include "gateway/obs/log.h"
#include "gateway/wrapper/wrapper.h"

#define MAX_TRACKED 4096 /* requests in flight whose answers can be named in the audit */
#define ERR_IDLE_MS 100  /* the child's stderr quiet this long after a newline: flush */

typedef struct tracked {
  char *key; /* id key (aip_wrapper_id_key) */
  char *method;
  char *tool; /* tools/call only */
  uint64_t start_ns;
  /* a forwarded tools/call, audited when it ends (as aip serve does) */
  int call;
  aip_decision d;
  cJSON *args;
  aip_buf dlp; /* its request's DLP counts, then its answer's */
} tracked;

struct aip_wrapper_big {
  aip_dlp_stream *st;
  aip_dlp_counts c;
  cJSON *id;     /* from the line's head, when it was there */
  char *method;  /* idem */
  uint64_t fed;  /* raw bytes fed */
  uint64_t spent_ns; /* time spent scanning it, against dlp.timeout */
  int emitted;   /* part of the line has reached our stdout */
  aip_buf out;
};

/* ---- the top-level id and method of a message, from its raw text (maybe only its head) ---- */

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static size_t skip_ws(const char *p, size_t n, size_t i) {
  while (i < n && is_ws(p[i])) i++;
  return i;
}

/* Index just past the JSON value starting at i; n when it does not end inside p[0..n). Lenient:
 * the engine and the parser are the judges of validity, this only finds spans. */
static size_t skip_value(const char *p, size_t n, size_t i) {
  int depth = 0;
  while (i < n) {
    char ch = p[i];
    if (ch == '"') {
      for (i++; i < n && p[i] != '"'; i++)
        if (p[i] == '\\') i++;
      if (i >= n) return n;
      i++;
    } else if (ch == '{' || ch == '[') {
      depth++, i++;
      continue;
    } else if (ch == '}' || ch == ']') {
      if (depth == 0) return i; /* a scalar ended at its object's end */
      depth--, i++;
    } else if (depth == 0 && (ch == ',' || is_ws(ch))) {
      return i;
    } else {
      i++;
      continue;
    }
    if (depth == 0) return i;
  }
  return n;
}

/* Keys written with escapes are not recognized: the message is still scanned whole; only its
 * audit label and error reply would miss the id. */
void aip_wrapper_top_keys(const char *p, size_t n, aip_wrapper_top *k) {
  memset(k, 0, sizeof(*k));
  size_t i = skip_ws(p, n, 0);
  if (i >= n || p[i] != '{') return;
  for (i = skip_ws(p, n, i + 1); i < n && p[i] == '"';) {
    size_t ks = i + 1, ke = skip_value(p, n, i);
    if (ke >= n) return;
    size_t klen = ke - 1 - ks;
    i = skip_ws(p, n, ke);
    if (i >= n || p[i] != ':') return;
    size_t vs = skip_ws(p, n, i + 1), ve = skip_value(p, n, vs);
    if (ve >= n || ve == vs) return;
    if (klen == 2 && memcmp(p + ks, "id", 2) == 0) k->id = p + vs, k->id_len = ve - vs;
    if (klen == 6 && memcmp(p + ks, "method", 6) == 0) k->method = p + vs, k->method_len = ve - vs;
    i = skip_ws(p, n, ve);
    if (i >= n || p[i] != ',') return;
    i = skip_ws(p, n, i + 1);
  }
}

/* A string or number id (other values are no usable id). */
static cJSON *parse_id(const char *p, size_t n) {
  cJSON *v = NULL;
  if (!p || aip_json_parse(p, n, &v) != AIP_JSON_OK) return NULL;
  if (cJSON_IsString(v) || cJSON_IsNumber(v)) return v;
  cJSON_Delete(v);
  return NULL;
}

static char *parse_method(const char *p, size_t n) {
  cJSON *v = NULL;
  char *s = NULL;
  if (p && aip_json_parse(p, n, &v) == AIP_JSON_OK && cJSON_IsString(v))
    s = strdup(v->valuestring);
  cJSON_Delete(v);
  return s;
}

/* ---- requests in flight (to name the answers in the audit log) ---------------------------- */

static void tracked_free(tracked *t) {
  if (!t) return;
  free(t->key);
  free(t->method);
  free(t->tool);
  cJSON_Delete(t->args);
  aip_buf_free(&t->dlp);
  free(t);
}

/* The record of a forwarded tools/call, once it is over (answered or cut short). */
static void audit_call(aip_wrapper *w, tracked *t) {
  if (!t->call) return;
  t->call = 0;
  if (w->calls_owed-- == AIP_WRAPPER_OWED_MAX) aip_wrapper_flow(w); /* stdin may be read again */
  int64_t lat = (int64_t)((uv_hrtime() - t->start_ns) / 1000);
  aip_wrapper_audit_ex(w, NULL, "tools/call", &t->d, NULL, t->tool, t->args, t->dlp.data, lat);
}

static tracked *track(aip_wrapper *w, const cJSON *msg) {
  if (w->calls.used >= MAX_TRACKED || !cJSON_IsObject(msg)) return NULL;
  const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
  if (!cJSON_IsString(method) || !id) return NULL;
  tracked *t = calloc(1, sizeof(*t));
  if (!t || !(t->key = aip_wrapper_id_key(id)) || !(t->method = strdup(method->valuestring))) {
    tracked_free(t);
    return NULL;
  }
  aip_buf_init(&t->dlp);
  if (aip_policy_is_tool_call(t->method, strlen(t->method))) {
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    const cJSON *name = cJSON_IsObject(params)
                            ? cJSON_GetObjectItemCaseSensitive(params, "name") : NULL;
    if (cJSON_IsString(name)) t->tool = strdup(name->valuestring);
  }
  t->start_ns = uv_hrtime();
  tracked *old = aip_map_del(&w->calls, t->key, strlen(t->key)); /* a reused id: the newest */
  if (old) audit_call(w, old);
  tracked_free(old);
  if (aip_map_put(&w->calls, t->key, strlen(t->key), t)) {
    tracked_free(t);
    return NULL;
  }
  return t;
}

void aip_wrapper_dlp_track(aip_wrapper *w, const cJSON *msg) {
  if (w->dlp) track(w, msg);
}

int aip_wrapper_call_track(aip_wrapper *w, const cJSON *msg, const aip_decision *d,
                           const cJSON *args, const char *dlp) {
  tracked *t = track(w, msg);
  if (!t) return -1;
  t->call = 1;
  aip_core_forwarded_decision(d, &t->d); /* the record aip serve writes */
  if (args && !(t->args = cJSON_Duplicate(args, 1))) t->call = 0;
  if (dlp && *dlp && aip_buf_puts(&t->dlp, dlp)) t->call = 0;
  if (t->call) w->calls_owed++;
  return t->call ? 0 : -1;
}

void aip_wrapper_calls_end(aip_wrapper *w) {
  const aip_map_entry *e;
  for (size_t it = 0; aip_map_next(&w->calls, &it, &e);) audit_call(w, e->value);
}

static tracked *untrack(aip_wrapper *w, const cJSON *id) {
  if (!w->calls.used || !id) return NULL;
  char *key = aip_wrapper_id_key(id);
  tracked *t = key ? aip_map_del(&w->calls, key, strlen(key)) : NULL;
  free(key);
  return t;
}

/* ---- one message from the child, after DLP ------------------------------------------------- */

/* The audit record of a message from the child that was redacted (`withheld` 0) or withheld. */
static void audit_down(aip_wrapper *w, const tracked *t, const char *method, int withheld,
                       const char *dlp) {
  aip_decision d = {.kind = withheld ? AIP_DECISION_BLOCK : AIP_DECISION_ALLOW};
  if (withheld) {
    d.violation = 1;
    d.error_code = AIP_RPC_INTERNAL_ERROR;
    d.error_message = "Internal error";
  }
  snprintf(d.reason, sizeof(d.reason), "%s",
           withheld ? "DLP could not scan the message; withheld" : "redacted by DLP");
  int64_t lat = t ? (int64_t)((uv_hrtime() - t->start_ns) / 1000) : -1;
  aip_wrapper_audit_ex(w, "downstream", t ? t->method : method ? method : "response", &d, NULL,
                       t ? t->tool : NULL, NULL, dlp, lat);
}

/* What happens to one message once DLP is done with it: its request is no longer in flight;
 * a withheld one gets its stand-in; a redacted or withheld one is audited. `rc` < 0: withheld. */
static void settle(aip_wrapper *w, const cJSON *id, const char *method, int rc,
                   const aip_dlp_counts *c) {
  tracked *t = method ? NULL : untrack(w, id);
  if (rc < 0 && method && id) { /* the child's own request must not hang */
    aip_buf b;
    aip_buf_init(&b);
    if (!aip_rpc_error(&b, id, AIP_RPC_INTERNAL_ERROR, AIP_DLP_REQ_FAILED_MSG, NULL))
      aip_wrapper_to_child(w, b.data, b.len);
    aip_buf_free(&b);
  } else if (rc < 0 && id) {
    aip_wrapper_reply_error(w, id, AIP_RPC_INTERNAL_ERROR, AIP_DLP_RESP_FAILED_MSG, NULL);
  }
  if (c && (c->flags & AIP_DLP_F_PARTIAL))
    aip_warn("dlp.max_scan_size: part of a message from the server was not scanned");
  if (rc < 0 || (c && c->total)) {
    aip_buf dj;
    aip_buf_init(&dj);
    if (c) aip_dlp_counts_json(w->dlp, c, &dj);
    audit_down(w, t, method, rc < 0, dj.data);
    aip_buf_free(&dj);
  }
  if (t && t->call) {
    if (c) aip_dlp_counts_json(w->dlp, c, &t->dlp); /* the answer's counts join the request's */
    audit_call(w, t);
  }
  tracked_free(t);
}

/* `p` is the raw message (or batch) the scan was about. */
static void settle_raw(aip_wrapper *w, const char *p, size_t n, int rc, const aip_dlp_counts *c) {
  if (rc >= 0 && (!c || !c->total) && !w->calls.used) return; /* the common case: nothing to note */
  size_t i = skip_ws(p, n, 0);
  if (i < n && p[i] == '[') { /* a 2025-03-26 batch: rare, parsed whole */
    cJSON *arr = NULL;
    if (aip_json_parse(p, n, &arr) == AIP_JSON_OK) {
      for (const cJSON *el = arr->child; el; el = el->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(el, "id");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(el, "method");
        settle(w, cJSON_IsString(id) || cJSON_IsNumber(id) ? id : NULL,
               cJSON_IsString(m) ? m->valuestring : NULL, rc, el == arr->child ? c : NULL);
      }
    } else {
      settle(w, NULL, NULL, rc, c);
    }
    cJSON_Delete(arr);
    return;
  }
  aip_wrapper_top k;
  aip_wrapper_top_keys(p, n, &k);
  cJSON *id = parse_id(k.id, k.id_len);
  char *method = parse_method(k.method, k.method_len);
  settle(w, id, method ? method : k.method ? "?" : NULL, rc, c);
  cJSON_Delete(id);
  free(method);
}

void aip_wrapper_dlp_deliver(aip_wrapper *w, const char *p, size_t n) {
  if (!w->dlp) {
    aip_wrapper_to_client(w, p, n);
    settle_raw(w, p, n, 0, NULL); /* the answer of a forwarded tools/call ends it */
    return;
  }
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, w->dlp);
  aip_buf out;
  aip_buf_init(&out);
  int rc = aip_dlp_run_json(&w->dlp_run, AIP_DLP_RESPONSE, p, n, &out, &c);
  if (rc < 0 && aip_dlp_run_fail_open(&w->dlp_run)) {
    aip_warn("DLP could not scan a message from the server (%s); forwarded unredacted "
             "(failover.on_dlp_error: allow)", aip_dlp_error_name(rc));
    rc = 0;
  } else if (rc < 0) {
    aip_warn("DLP could not scan a message from the server (%s); withheld", aip_dlp_error_name(rc));
  }
  if (rc == 0) aip_wrapper_to_client(w, p, n);
  else if (rc == 1) aip_wrapper_to_client(w, out.data, out.len);
  settle_raw(w, p, n, rc, &c);
  aip_buf_free(&out);
  aip_dlp_counts_free(&c);
}

void aip_wrapper_dlp_noise(aip_wrapper *w, const char *p, size_t n) {
  aip_buf out;
  aip_buf_init(&out);
  /* the whole line is redacted before it is cut to 1000 bytes: no half secret at the cut */
  int rc = w->dlp ? aip_dlp_redact_text(w->dlp, w->dlp_run.scratch, AIP_DLP_RESPONSE, p, n,
                                        &out, NULL)
                  : 0;
  if (rc == 1) p = out.data, n = out.len;
  if (rc < 0) aip_info("[subprocess stdout] (a line DLP could not scan: not shown)");
  else aip_info("[subprocess stdout] %.*s", (int)(n > 1000 ? 1000 : n), p);
  aip_buf_free(&out);
}

/* ---- lines above dlp.stream_threshold ------------------------------------------------------ */

static void big_free(aip_wrapper *w) {
  struct aip_wrapper_big *b = w->big;
  if (!b) return;
  aip_dlp_stream_free(b->st);
  aip_dlp_counts_free(&b->c);
  cJSON_Delete(b->id);
  free(b->method);
  aip_buf_free(&b->out);
  free(b);
  w->big = NULL;
}

/* A streamed message that cannot go on: whatever already reached the client is cut off with a
 * newline (the client drops the broken line) and the message is withheld. Its beginning is out,
 * so failover.on_dlp_error: allow cannot apply here. */
static void big_abort(aip_wrapper *w, const char *what) {
  struct aip_wrapper_big *b = w->big;
  aip_warn("a %llu-byte message from the server %s; %s", (unsigned long long)b->fed, what,
           b->emitted ? "cut short" : "withheld");
  if (b->emitted) aip_wrapper_to_client_part(w, "", 0, 1);
  settle(w, b->id, b->method, -1, &b->c);
  big_free(w);
}

int aip_wrapper_dlp_line_part(void *ctx, const char *p, size_t n, int end) {
  aip_wrapper *w = ctx;
  struct aip_wrapper_big *b = w->big;
  if (!b) return -1;
  b->fed += n;
  if (b->fed > w->max_message) {
    big_abort(w, "is longer than --max-message");
    return -1;
  }
  b->out.len = 0;
  int rc = aip_dlp_run_stream(&w->dlp_run, b->st, p, n, end, &b->spent_ns, &b->out, &b->c);
  if (rc < 0) {
    char what[64];
    snprintf(what, sizeof(what), "failed DLP (%s)", aip_dlp_error_name(rc));
    big_abort(w, what);
    return -1;
  }
  if (b->out.len || end) {
    b->emitted = 1;
    aip_wrapper_to_client_part(w, b->out.data ? b->out.data : "", b->out.len, end);
  }
  if (end) {
    settle(w, b->id, b->method, 0, &b->c);
    big_free(w);
  }
  return 0;
}

int aip_wrapper_dlp_long_line(void *ctx, const char *head, size_t n) {
  aip_wrapper *w = ctx;
  size_t i = skip_ws(head, n, 0);
  if (!w->dlp || w->big || i >= n || head[i] != '{') return 0; /* noise, batches: held whole */
  aip_wrapper_top k;
  aip_wrapper_top_keys(head, n, &k);
  cJSON *id = parse_id(k.id, k.id_len);
  if (!k.method && (w->init_key || w->lists.used)) {
    /* maybe an answer the wrapper reads whole (initialize, a tools/list it filters) */
    char *key = id ? aip_wrapper_id_key(id) : NULL;
    int held = !key || (w->init_key && strcmp(key, w->init_key) == 0) ||
               aip_map_get(&w->lists, key, strlen(key));
    free(key);
    if (held) {
      cJSON_Delete(id);
      return 0;
    }
  }
  struct aip_wrapper_big *b = calloc(1, sizeof(*b));
  if (!b || !(b->st = aip_dlp_stream_new(w->dlp, AIP_DLP_RESPONSE, AIP_DLP_STREAM_JSON)) ||
      aip_dlp_counts_init(&b->c, w->dlp)) {
    if (b) aip_dlp_stream_free(b->st);
    free(b);
    cJSON_Delete(id);
    return 0; /* no memory for a stream: the line is held whole, as without DLP */
  }
  b->id = id;
  b->method = parse_method(k.method, k.method_len);
  aip_buf_init(&b->out);
  w->big = b;
  aip_debug("server -> client: a message longer than %llu bytes: streamed through DLP",
            (unsigned long long)w->child_lines.stream_at);
  aip_wrapper_dlp_line_part(w, head, n, 0); /* a failure has ended it: the rest is skipped */
  return 1;
}

/* ---- the child's stderr (filter_stderr) ---------------------------------------------------- */

static void err_emit(aip_wrapper *w, int rc, int eof) {
  if (rc < 0) {
    /* errors are final for a stream: fail closed (drop the rest) unless told otherwise */
    int open = aip_dlp_run_fail_open(&w->dlp_run);
    aip_warn("DLP could not filter the server's stderr (%s); %s", aip_dlp_error_name(rc),
             open ? "passing it through unfiltered" : "dropping it from now on");
    aip_dlp_stream_free(w->err_stream);
    w->err_stream = NULL;
    w->err_off = !open;
  }
  if (w->err_out.len || eof) aip_wrapper_stderr_out(w, w->err_out.data, w->err_out.len, eof);
  w->err_out.len = 0;
}

static void on_err_idle(uv_timer_t *t) {
  aip_wrapper *w = t->data;
  if (!w->err_stream || !w->err_nl) return; /* an unfinished line waits for its end */
  int rc = aip_dlp_stream_flush(w->err_stream, w->dlp_run.scratch, &w->err_out, NULL);
  err_emit(w, rc, 0);
}

/* Returns 1 when it took the bytes (filtered or dropped), 0 when they pass as they are. */
int aip_wrapper_dlp_stderr_take(aip_wrapper *w, const char *p, size_t n, int eof) {
  if (w->err_off) return 1;
  if (!w->err_stream) return 0;
  int rc = n ? aip_dlp_stream_feed(w->err_stream, w->dlp_run.scratch, p, n, &w->err_out, NULL)
             : 0;
  if (n) w->err_nl = p[n - 1] == '\n';
  if (rc >= 0 && eof) rc = aip_dlp_stream_end(w->err_stream, w->dlp_run.scratch, &w->err_out,
                                              NULL);
  err_emit(w, rc, eof);
  if (eof && w->err_stream) {
    aip_dlp_stream_free(w->err_stream);
    w->err_stream = NULL;
  }
  if (!eof && w->err_stream) uv_timer_start(&w->err_idle, on_err_idle, ERR_IDLE_MS, 0);
  return 1;
}

/* ---- start and end ------------------------------------------------------------------------- */

int aip_wrapper_dlp_open(aip_wrapper *w) {
  aip_error err = {{0}};
  w->dlp_run.doc = w->doc;
  aip_map_init(&w->calls);
  aip_buf_init(&w->out_held);
  aip_buf_init(&w->err_out);
  aip_dlp_cache_io io;
  if (w->dlp_cache) aip_dlp_cache_dir(&io, w->dlp_cache);
  aip_dlp_opts opts = {.cache = w->dlp_cache ? &io : NULL};
  /* before the loop runs, so compiling (and the cache's file I/O) blocks nothing */
  if (aip_dlp_compile(w->doc, &opts, &w->dlp, &err)) {
    fprintf(stderr, "aip: %s\n", err.msg);
    return -1;
  }
  if (!w->dlp) return 0;
  for (size_t i = 0; aip_dlp_warning(w->dlp, i); i++) aip_warn("%s", aip_dlp_warning(w->dlp, i));
  aip_dlp_scratch *s = aip_dlp_scratch_new();
  w->dlp_run.dlp = w->dlp;
  w->dlp_run.scratch = s;
  if (!s || aip_dlp_scratch_prepare(s, w->dlp)) {
    fprintf(stderr, "aip: out of memory preparing DLP\n");
    return -1;
  }
  aip_log_set_filter(aip_dlp_log_filter_run, &w->dlp_run); /* our own log passes DLP too */
  const aip_dlp_config *cfg = &w->doc->dlp;
  if (cfg->filter_stderr) {
    if (!(w->err_stream = aip_dlp_stream_new(w->dlp, AIP_DLP_RESPONSE, AIP_DLP_STREAM_TEXT))) {
      fprintf(stderr, "aip: out of memory preparing DLP\n");
      return -1;
    }
  }
  uint64_t at = cfg->stream_threshold ? cfg->stream_threshold : 1u << 20;
  w->child_lines.stream_at = (size_t)at;
  w->child_lines.on_long = aip_wrapper_dlp_long_line;
  w->child_lines.on_part = aip_wrapper_dlp_line_part;
  aip_info("DLP: %zu rule(s)%s; responses %s, tool arguments %s, stderr %s; messages above %llu "
           "bytes are streamed", aip_dlp_rule_count(w->dlp),
           aip_dlp_from_cache(w->dlp) ? " (from the cache)" : "",
           cfg->scan_responses ? "scanned" : "not scanned",
           cfg->scan_requests ? (cfg->on_request_match ? cfg->on_request_match : "block")
                              : "not scanned",
           cfg->filter_stderr ? "filtered" : "not filtered", (unsigned long long)at);
  return 0;
}

void aip_wrapper_dlp_close(aip_wrapper *w) {
  if (w->dlp) aip_log_set_filter(NULL, NULL);
  big_free(w);
  const aip_map_entry *e;
  for (size_t it = 0; aip_map_next(&w->calls, &it, &e);) tracked_free(e->value);
  aip_map_free(&w->calls);
  aip_dlp_stream_free(w->err_stream);
  w->err_stream = NULL;
  aip_buf_free(&w->err_out);
  aip_buf_free(&w->out_held);
  aip_dlp_scratch_free(w->dlp_run.scratch);
  aip_dlp_free(w->dlp);
  w->dlp = NULL;
}
