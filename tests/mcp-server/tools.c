/* aip-test-server tools. Each tool receives arguments already validated
 * against its inputSchema (tools_validate), so bodies only read values. */
#include "server_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BIG_CAP ((size_t)128 * 1024 * 1024)

static const cJSON *arg(const cJSON *args, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(args, key);
}

/* ------------------------------------------------------------------ validation */

static bool is_integral(double v) {
  return isfinite(v) && floor(v) == v && fabs(v) <= 9007199254740992.0; /* 2^53 */
}

static bool type_ok(const char *type, const cJSON *v) {
  if (strcmp(type, "string") == 0) return cJSON_IsString(v);
  if (strcmp(type, "number") == 0) return cJSON_IsNumber(v);
  if (strcmp(type, "integer") == 0) return cJSON_IsNumber(v) && is_integral(v->valuedouble);
  if (strcmp(type, "boolean") == 0) return cJSON_IsBool(v);
  if (strcmp(type, "object") == 0) return cJSON_IsObject(v);
  if (strcmp(type, "array") == 0) return cJSON_IsArray(v);
  return true; /* types our schemas don't use are not checked */
}

static bool check_value(const cJSON *prop_schema, const cJSON *v, char *err, size_t errlen) {
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(prop_schema, "type");
  if (cJSON_IsString(type) && !type_ok(type->valuestring, v)) {
    bool vowel = strchr("aeiou", type->valuestring[0]) != NULL;
    snprintf(err, errlen, "'%s' must be %s %s", v->string, vowel ? "an" : "a", type->valuestring);
    return false;
  }
  const cJSON *min = cJSON_GetObjectItemCaseSensitive(prop_schema, "minimum");
  const cJSON *max = cJSON_GetObjectItemCaseSensitive(prop_schema, "maximum");
  if (cJSON_IsNumber(v) && cJSON_IsNumber(min) && v->valuedouble < min->valuedouble) {
    snprintf(err, errlen, "'%s' must be >= %.17g", v->string, min->valuedouble);
    return false;
  }
  if (cJSON_IsNumber(v) && cJSON_IsNumber(max) && v->valuedouble > max->valuedouble) {
    snprintf(err, errlen, "'%s' must be <= %.17g", v->string, max->valuedouble);
    return false;
  }
  return true;
}

bool tools_validate(const cJSON *schema, const cJSON *args, char *err, size_t errlen) {
  if (!cJSON_IsObject(args)) {
    snprintf(err, errlen, "'arguments' must be an object");
    return false;
  }
  const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
  const cJSON *item;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(schema, "required")) {
    if (cJSON_IsString(item) && !cJSON_GetObjectItemCaseSensitive(args, item->valuestring)) {
      snprintf(err, errlen, "'%s' is required", item->valuestring);
      return false;
    }
  }
  bool closed = cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties"));
  cJSON_ArrayForEach(item, args) {
    const cJSON *prop_schema = cJSON_GetObjectItemCaseSensitive(props, item->string);
    if (!prop_schema && closed) {
      snprintf(err, errlen, "unexpected property '%s'", item->string);
      return false;
    }
    if (prop_schema && !check_value(prop_schema, item, err, errlen)) return false;
  }
  return true;
}

/* ------------------------------------------------------------------ simple tools */

static void tool_echo(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params) {
  srv_reply_text(s, id, arg(args, "message")->valuestring, false);
}

/* Integers print without a fraction ("5", not "5.0"); others use the shortest
 * %g form that reads back to the same double. */
static void format_number(double v, char *buf, size_t len) {
  if (floor(v) == v && fabs(v) < 1e21) {
    snprintf(buf, len, "%.0f", v);
    return;
  }
  for (int precision = 15; precision <= 17; precision++) {
    snprintf(buf, len, "%.*g", precision, v);
    if (strtod(buf, NULL) == v) return;
  }
}

static void tool_add(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params) {
  double sum = arg(args, "a")->valuedouble + arg(args, "b")->valuedouble;
  if (!isfinite(sum)) {
    srv_reply_text(s, id, "sum is not a finite number", true);
    return;
  }
  if (sum == 0) sum = 0; /* -0 would print as "-0" */
  char text[64];
  format_number(sum, text, sizeof text);
  cJSON *result = srv_text_result(text, false);
  cJSON *structured = cJSON_AddObjectToObject(result, "structuredContent");
  cJSON_AddNumberToObject(structured, "sum", sum);
  srv_reply_result(s, id, result);
}

static void tool_fail(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params) {
  const cJSON *message = arg(args, "message");
  srv_reply_text(s, id, message ? message->valuestring : "tool failed", true);
}

static void tool_env(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params) {
  const char *value = getenv(arg(args, "name")->valuestring);
  srv_reply_text(s, id, value ? value : "", false);
}

static void tool_crash(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params) {
  srv_log(s, "crash tool called: exiting with status 3");
  _exit(3); /* no atexit handlers, no flushing: look like a sudden death */
}

static void tool_notify_list_changed(mcp_server *s, const cJSON *id, const cJSON *args,
                                     const cJSON *params) {
  const cJSON *add = arg(args, "add_tool");
  if (add && !srv_add_extra_tool(s, add->valuestring)) {
    srv_reply_text(s, id, "add_tool: name is empty or already taken", true);
    return;
  }
  srv_reply_text(s, id, "ok", false);
  cJSON *note = cJSON_CreateObject();
  cJSON_AddStringToObject(note, "jsonrpc", "2.0");
  cJSON_AddStringToObject(note, "method", "notifications/tools/list_changed");
  srv_send(s, MCP_OUT_NOTIFICATION, NULL, note);
}

/* The HTTP request headers of this very call, so tests can prove what a client
 * (the gateway) forwards upstream. stdio has no headers: "{}". */
static void tool_headers(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params) {
  char *json = s->hooks.request_headers ? s->hooks.request_headers(s->emit_ctx) : NULL;
  srv_reply_text(s, id, json ? json : "{}", false);
  free(json);
}

/* Lets fault tests expire sessions on demand: the hook forgets them all (this
 * one included) and the reply still goes out on the current request. */
static void tool_drop_sessions(mcp_server *s, const cJSON *id, const cJSON *args,
                               const cJSON *params) {
  if (s->hooks.drop_sessions) s->hooks.drop_sessions(s->emit_ctx);
  srv_reply_text(s, id, "ok", false);
}

/* A copy of `ins` centred on every multiple of `every` inside p[0..n), so each one straddles
 * that offset (DLP tests: a secret split across reads). */
static void big_insert(char *p, size_t n, const char *ins, size_t every) {
  size_t len = strlen(ins);
  for (size_t at = every; len && at + len / 2 + len - len / 2 <= n; at += every)
    memcpy(p + at - len / 2, ins, len);
}

/* `secret` written over the 'x's at each offset of `at` (DLP streaming tests put secrets
 * across the gateway's read boundaries). The secret goes into the JSON as it is, so it must
 * need no escaping unless `raw` is true. Returns 0, or -1 with `why` set. */
static int big_secrets(char *text, size_t n, const cJSON *args, const char **why) {
  const cJSON *secret = arg(args, "secret"), *at = arg(args, "at"), *o;
  if (!secret) return 0;
  size_t len = strlen(secret->valuestring);
  /* raw: true writes it even so, to make a message that is not valid JSON mid-way */
  for (const char *c = secret->valuestring; !cJSON_IsTrue(arg(args, "raw")) && *c; c++)
    if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) {
      *why = "secret: must need no JSON escaping";
      return -1;
    }
  cJSON_ArrayForEach(o, at) {
    if (!cJSON_IsNumber(o) || !is_integral(o->valuedouble) || o->valuedouble < 0 ||
        o->valuedouble + (double)len > (double)n) {
      *why = "at: the secret must fit inside the text";
      return -1;
    }
    memcpy(text + (size_t)o->valuedouble, secret->valuestring, len);
  }
  return 0;
}

/* The payload is "x" * n, so the message is assembled directly instead of
 * through cJSON, which would hold two extra copies of up to 64 MiB. */
static void tool_big(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params) {
  double requested = arg(args, "bytes")->valuedouble;
  size_t n = requested > (double)BIG_CAP ? BIG_CAP : (size_t)requested;
  const cJSON *ins = arg(args, "insert"), *every = arg(args, "every");
  if (ins) { /* written into the JSON text as it is: no character that needs escaping */
    for (const char *c = ins->valuestring; *c; c++) {
      if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\') {
        srv_reply_text(s, id, "insert: printable ASCII without quotes or backslashes only", true);
        return;
      }
    }
  }
  static const char head1[] = "{\"jsonrpc\":\"2.0\",\"id\":";
  static const char head2[] = ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"";
  static const char tail[] = "\"}]}}";
  char *id_json = cJSON_PrintUnformatted(id);
  size_t id_len = id_json ? strlen(id_json) : 0;
  size_t total = sizeof head1 - 1 + id_len + sizeof head2 - 1 + n + sizeof tail - 1;
  char *json = id_json ? malloc(total + 1) : NULL;
  if (!json) {
    free(id_json);
    srv_reply_error(s, id, MCP_INTERNAL_ERROR, "out of memory");
    return;
  }
  char *p = json;
  memcpy(p, head1, sizeof head1 - 1), p += sizeof head1 - 1;
  memcpy(p, id_json, id_len), p += id_len;
  memcpy(p, head2, sizeof head2 - 1), p += sizeof head2 - 1;
  memset(p, 'x', n);
  if (ins && every && every->valuedouble >= 1)
    big_insert(p, n, ins->valuestring, (size_t)every->valuedouble);
  const char *why = NULL;
  if (big_secrets(p, n, args, &why)) {
    free(id_json);
    free(json);
    srv_reply_error(s, id, MCP_INVALID_PARAMS, "%s", why);
    return;
  }
  p += n;
  memcpy(p, tail, sizeof tail), p += sizeof tail - 1; /* copies the NUL too */
  free(id_json);
  s->emit(s->emit_ctx, MCP_OUT_RESPONSE, id, json, total);
}

/* Text and structuredContent {message}: DLP tests look for a secret in both. */
static void tool_echo_structured(mcp_server *s, const cJSON *id, const cJSON *args,
                                 const cJSON *params) {
  const char *m = arg(args, "message")->valuestring;
  cJSON *result = srv_text_result(m, false);
  cJSON *structured = cJSON_AddObjectToObject(result, "structuredContent");
  cJSON_AddStringToObject(structured, "message", m);
  srv_reply_result(s, id, result);
}

/* Writes the message to stderr in `pieces` writes 30 ms apart, then replies "ok" (stderr
 * filtering tests: a secret split across writes). */
static void tool_stderr(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params) {
  const char *m = arg(args, "message")->valuestring;
  const cJSON *pieces = arg(args, "pieces");
  size_t len = strlen(m), k = pieces ? (size_t)pieces->valuedouble : 1;
  if (k < 1) k = 1;
  for (size_t i = 0, off = 0; i < k; i++) {
    size_t end = i + 1 == k ? len : len * (i + 1) / k;
    for (size_t w = off; w < end;) {
      ssize_t r = write(STDERR_FILENO, m + w, end - w);
      if (r <= 0) break;
      w += (size_t)r;
    }
    off = end;
    if (i + 1 < k) usleep(30 * 1000);
  }
  srv_reply_text(s, id, "ok", false);
}

/* ------------------------------------------------------------------ slow */

/* An in-flight `slow` call. The timer is the first member so the handle
 * pointer converts back to the call. */
struct pending_call {
  uv_timer_t timer;
  mcp_server *srv;
  cJSON *id;
  cJSON *token; /* progressToken or NULL */
  uint64_t start, ms;
  unsigned steps, done;
  pending_call *next;
};

static void pending_closed(uv_handle_t *h) {
  pending_call *p = (pending_call *)h;
  cJSON_Delete(p->id);
  cJSON_Delete(p->token);
  free(p);
}

/* Unlinks p from its server and closes its timer; memory goes in pending_closed. */
static void pending_release(pending_call *p) {
  for (pending_call **link = &p->srv->pending; *link; link = &(*link)->next) {
    if (*link == p) {
      *link = p->next;
      break;
    }
  }
  uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static void slow_tick(uv_timer_t *t);

/* Progress i (1..steps) is due at start + ms*(i-1)/steps (the start of step
 * i), the result at start + ms. The last progress thus precedes the result by
 * ms/steps instead of sharing a write with it: SDK 1.x clients dispatch
 * notifications a tick later than responses and drop progress that arrives
 * in the same chunk as its result. Absolute deadlines keep rounding from
 * accumulating. */
static void slow_schedule(pending_call *p) {
  uint64_t due = p->start + p->ms;
  if (p->token && p->done < p->steps) due = p->start + p->ms * p->done / p->steps;
  uint64_t now = uv_now(p->srv->loop);
  uv_timer_start(&p->timer, slow_tick, due > now ? due - now : 0, 0);
}

static void slow_progress(pending_call *p) {
  cJSON *note = cJSON_CreateObject();
  cJSON_AddStringToObject(note, "jsonrpc", "2.0");
  cJSON_AddStringToObject(note, "method", "notifications/progress");
  cJSON *np = cJSON_AddObjectToObject(note, "params");
  cJSON_AddItemToObject(np, "progressToken", cJSON_Duplicate(p->token, 1));
  cJSON_AddNumberToObject(np, "progress", p->done);
  cJSON_AddNumberToObject(np, "total", p->steps);
  srv_send(p->srv, MCP_OUT_NOTIFICATION, p->id, note);
}

static void slow_tick(uv_timer_t *t) {
  pending_call *p = (pending_call *)t;
  if (p->token && p->done < p->steps) {
    p->done++;
    slow_progress(p);
    slow_schedule(p); /* the next progress, or the result once all were sent */
    return;
  }
  char text[64];
  snprintf(text, sizeof text, "slept %llums", (unsigned long long)p->ms);
  srv_reply_text(p->srv, p->id, text, false);
  pending_release(p);
}

static void tool_slow(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params) {
  const cJSON *steps = arg(args, "steps");
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
  const cJSON *token = cJSON_GetObjectItemCaseSensitive(meta, "progressToken");
  pending_call *p = calloc(1, sizeof *p);
  if (!p) {
    srv_reply_error(s, id, MCP_INTERNAL_ERROR, "out of memory");
    return;
  }
  p->srv = s;
  p->id = cJSON_Duplicate(id, 1);
  if (cJSON_IsString(token) || cJSON_IsNumber(token)) p->token = cJSON_Duplicate(token, 1);
  p->ms = (uint64_t)arg(args, "ms")->valuedouble;
  p->steps = steps ? (unsigned)steps->valuedouble : 3;
  p->start = uv_now(s->loop);
  uv_timer_init(s->loop, &p->timer);
  p->next = s->pending;
  s->pending = p;
  slow_schedule(p);
}

static bool same_id(const cJSON *a, const cJSON *b) {
  if (cJSON_IsString(a) && cJSON_IsString(b)) return strcmp(a->valuestring, b->valuestring) == 0;
  return cJSON_IsNumber(a) && cJSON_IsNumber(b) && a->valuedouble == b->valuedouble;
}

void tools_cancel(mcp_server *s, const cJSON *request_id) {
  for (pending_call *p = s->pending; p; p = p->next) {
    if (same_id(p->id, request_id)) {
      if (s->verbose) srv_log(s, "cancelled an in-flight slow call");
      s->emit(s->emit_ctx, MCP_OUT_DROPPED, p->id, NULL, 0);
      pending_release(p);
      return;
    }
  }
  /* Unknown or finished ids are ignored, as the spec asks. */
}

void tools_drop_all(mcp_server *s) {
  while (s->pending) pending_release(s->pending);
}

/* DLP tests (issue 11): messages with members outside result/params/error.message. Sends each
 * of `notes` (whole messages; a notifications/progress gets the caller's progressToken) as
 * notifications of this call and each of `unrelated` as notifications of no call (the GET
 * stream over HTTP), then the reply: jsonrpc, the members of `before`, id, `error` when given
 * else a text result ("ok", `pad` bytes of 'x', or with `echo_params` the params as received),
 * then the members of `after`. */
static void add_members(cJSON *m, const cJSON *from) {
  for (const cJSON *c = from ? from->child : NULL; c; c = c->next)
    cJSON_AddItemToObject(m, c->string, cJSON_Duplicate(c, 1));
}

static void send_notes(mcp_server *s, const cJSON *list, const cJSON *id, const cJSON *token) {
  for (const cJSON *n = list ? list->child : NULL; n; n = n->next) {
    cJSON *m = cJSON_Duplicate(n, 1);
    cJSON *np = cJSON_GetObjectItemCaseSensitive(m, "params");
    if (token && cJSON_IsObject(np) && !cJSON_GetObjectItemCaseSensitive(np, "progressToken"))
      cJSON_AddItemToObject(np, "progressToken", cJSON_Duplicate(token, 1));
    srv_send(s, MCP_OUT_NOTIFICATION, id, m);
  }
}

static void tool_raw(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params) {
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
  const cJSON *token = cJSON_IsObject(meta) ? cJSON_GetObjectItemCaseSensitive(meta, "progressToken") : NULL;
  send_notes(s, arg(args, "notes"), id, token);
  send_notes(s, arg(args, "unrelated"), NULL, NULL);
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "jsonrpc", "2.0");
  add_members(m, arg(args, "before"));
  cJSON_AddItemToObject(m, "id", cJSON_Duplicate(id, 1));
  const cJSON *error = arg(args, "error"), *pad = arg(args, "pad");
  if (error) {
    cJSON_AddItemToObject(m, "error", cJSON_Duplicate(error, 1));
  } else {
    size_t n = pad ? (size_t)pad->valuedouble : 0;
    char *text = cJSON_IsTrue(arg(args, "echo_params")) ? cJSON_PrintUnformatted(params)
                                                         : malloc(n + 3);
    if (!text) _exit(4);
    if (!cJSON_IsTrue(arg(args, "echo_params"))) {
      memset(text, 'x', n);
      text[n] = '\0';
      if (!n) memcpy(text, "ok", 3);
    }
    cJSON_AddItemToObject(m, "result", srv_text_result(text, false));
    free(text);
  }
  add_members(m, arg(args, "after"));
  srv_send(s, MCP_OUT_RESPONSE, id, m);
}

/* ------------------------------------------------------------------ table */

#define RO "{\"readOnlyHint\":true,\"openWorldHint\":false}"
#define ECHO_SCHEMA                                                                    \
  "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\","              \
  "\"description\":\"Text to return verbatim\"}},\"required\":[\"message\"],"          \
  "\"additionalProperties\":false}"

const tool_def k_builtin_tools[] = {
    {"echo", "Returns the message verbatim as one text block.", ECHO_SCHEMA, NULL, RO, tool_echo},
    {"add", "Adds two numbers; returns the sum as text and as structuredContent {sum}.",
     "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"},\"b\":{\"type\":\"number\"}},"
     "\"required\":[\"a\",\"b\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"sum\":{\"type\":\"number\"}},\"required\":[\"sum\"]}",
     RO, tool_add},
    {"slow",
     "Waits ms milliseconds, sending `steps` progress notifications when the request has a "
     "progressToken; honours notifications/cancelled.",
     "{\"type\":\"object\",\"properties\":{\"ms\":{\"type\":\"integer\",\"minimum\":0,"
     "\"maximum\":86400000},\"steps\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":10000,"
     "\"default\":3}},\"required\":[\"ms\"],\"additionalProperties\":false}",
     NULL, RO, tool_slow},
    {"big",
     "Returns one text block of exactly `bytes` bytes of 'x' (capped at 128 MiB); with `insert` "
     "and `every`, a copy of `insert` straddles every multiple of `every`; `secret` is written "
     "at each offset in `at`.",
     "{\"type\":\"object\",\"properties\":{\"bytes\":{\"type\":\"integer\",\"minimum\":0},"
     "\"insert\":{\"type\":\"string\"},\"every\":{\"type\":\"integer\",\"minimum\":1},"
     "\"secret\":{\"type\":\"string\"},\"at\":{\"type\":\"array\",\"items\":"
     "{\"type\":\"integer\",\"minimum\":0}},\"raw\":{\"type\":\"boolean\"}},"
     "\"required\":[\"bytes\"],\"additionalProperties\":false}",
     NULL, RO, tool_big},
    {"echo_structured", "Returns the message as text and as structuredContent {message}.",
     ECHO_SCHEMA, NULL, RO, tool_echo_structured},
    {"stderr", "Writes the message to stderr in `pieces` writes 30 ms apart, then replies ok.",
     "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"},"
     "\"pieces\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100}},"
     "\"required\":[\"message\"],\"additionalProperties\":false}",
     NULL, RO, tool_stderr},
    {"fail", "Always returns a tool error (isError:true) with the given message.",
     "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"}},"
     "\"additionalProperties\":false}",
     NULL, RO, tool_fail},
    {"env", "Returns the value of an environment variable of the server process, or \"\".",
     "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},"
     "\"required\":[\"name\"],\"additionalProperties\":false}",
     NULL, RO, tool_env},
    {"crash", "Kills the server process (exit status 3) without answering.",
     "{\"type\":\"object\",\"additionalProperties\":false}", NULL,
     "{\"readOnlyHint\":false,\"destructiveHint\":true,\"openWorldHint\":false}", tool_crash},
    {"notify_list_changed",
     "Replies \"ok\", then sends notifications/tools/list_changed; add_tool first registers "
     "another echo-like tool.",
     "{\"type\":\"object\",\"properties\":{\"add_tool\":{\"type\":\"string\"}},"
     "\"additionalProperties\":false}",
     NULL, "{\"readOnlyHint\":false,\"destructiveHint\":false,\"openWorldHint\":false}",
     tool_notify_list_changed},
    {"headers",
     "Returns, as text, a JSON object of the HTTP request headers (lower-case names) of the "
     "request that carried this call; \"{}\" over stdio.",
     "{\"type\":\"object\",\"additionalProperties\":false}", NULL, RO, tool_headers},
    {"raw",
     "DLP tests: sends `notes` (this call's notifications) and `unrelated` (no call's), then "
     "a reply with the members of `before` ahead of id, `error` or a text result (`pad` 'x's), "
     "and the members of `after`; `echo_params`: the result's text is the params received.",
     "{\"type\":\"object\",\"properties\":{\"notes\":{\"type\":\"array\",\"items\":"
     "{\"type\":\"object\"}},\"unrelated\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"object\"}},\"before\":{\"type\":\"object\"},\"after\":{\"type\":\"object\"},"
     "\"error\":{\"type\":\"object\"},\"pad\":{\"type\":\"integer\",\"minimum\":0,"
     "\"maximum\":134217728},\"echo_params\":{\"type\":\"boolean\"}},"
     "\"additionalProperties\":false}",
     NULL, RO, tool_raw},
    {"drop_sessions",
     "Replies \"ok\" and forgets every HTTP session, so their next request gets 404 "
     "(no effect over stdio).",
     "{\"type\":\"object\",\"additionalProperties\":false}", NULL,
     "{\"readOnlyHint\":false,\"destructiveHint\":true,\"openWorldHint\":false}",
     tool_drop_sessions},
};
const size_t k_n_builtin_tools = sizeof k_builtin_tools / sizeof *k_builtin_tools;

const tool_def k_extra_tool_template = {
    NULL, "Extra echo-like tool (AIP_TEST_EXTRA_TOOLS): returns the message verbatim.",
    ECHO_SCHEMA, NULL, RO, tool_echo};
