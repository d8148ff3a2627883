/* aip-test-server core: JSON-RPC dispatch, MCP lifecycle, tools/list and
 * tools/call routing. Tool bodies live in tools.c; framing lives in the
 * transports. */
#include "server_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVER_VERSION "1.0.0"
#define LATEST_PROTOCOL "2025-11-25"

static const char *const k_protocol_versions[] = {"2024-11-05", "2025-03-26", "2025-06-18",
                                                  LATEST_PROTOCOL};

/* ------------------------------------------------------------------ logging */

void srv_log(const mcp_server *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "[%s] ", s && s->name ? s->name : "aip-test-server");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* Traces at most 200 bytes of a message so 64 MiB payloads don't flood stderr. */
static void trace(const mcp_server *s, const char *dir, const char *text, size_t len) {
  if (!s->verbose) return;
  int shown = len > 200 ? 200 : (int)len;
  srv_log(s, "%s %.*s%s", dir, shown, text, len > 200 ? "..." : "");
}

/* ------------------------------------------------------------------ output */

void srv_send(mcp_server *s, mcp_out_kind kind, const cJSON *related_id, cJSON *msg) {
  char *json = cJSON_PrintUnformatted(msg);
  cJSON_Delete(msg);
  if (!json) {
    srv_log(s, "out of memory serializing a message; dropped");
    return;
  }
  size_t len = strlen(json);
  trace(s, "->", json, len);
  s->emit(s->emit_ctx, kind, related_id, json, len);
}

static cJSON *new_response(const cJSON *id) {
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "jsonrpc", "2.0");
  cJSON_AddItemToObject(m, "id", id ? cJSON_Duplicate(id, 1) : cJSON_CreateNull());
  return m;
}

void srv_reply_result(mcp_server *s, const cJSON *id, cJSON *result) {
  cJSON *m = new_response(id);
  cJSON_AddItemToObject(m, "result", result);
  srv_send(s, MCP_OUT_RESPONSE, id, m);
}

void srv_reply_error(mcp_server *s, const cJSON *id, int code, const char *fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  cJSON *m = new_response(id);
  cJSON *err = cJSON_AddObjectToObject(m, "error");
  cJSON_AddNumberToObject(err, "code", code);
  cJSON_AddStringToObject(err, "message", text);
  srv_send(s, MCP_OUT_RESPONSE, id, m);
}

cJSON *srv_text_result(const char *text, bool is_error) {
  cJSON *result = cJSON_CreateObject();
  cJSON *content = cJSON_AddArrayToObject(result, "content");
  cJSON *block = cJSON_CreateObject();
  cJSON_AddStringToObject(block, "type", "text");
  cJSON_AddStringToObject(block, "text", text);
  cJSON_AddItemToArray(content, block);
  if (is_error) cJSON_AddTrueToObject(result, "isError");
  return result;
}

void srv_reply_text(mcp_server *s, const cJSON *id, const char *text, bool is_error) {
  srv_reply_result(s, id, srv_text_result(text, is_error));
}

/* ------------------------------------------------------------------ tool set */

static cJSON *tool_entry(const tool_def *d, const char *name) {
  cJSON *t = cJSON_CreateObject();
  cJSON_AddStringToObject(t, "name", name);
  cJSON_AddStringToObject(t, "description", d->description);
  cJSON_AddItemToObject(t, "inputSchema", cJSON_Parse(d->input_schema));
  if (d->output_schema) cJSON_AddItemToObject(t, "outputSchema", cJSON_Parse(d->output_schema));
  if (d->annotations) cJSON_AddItemToObject(t, "annotations", cJSON_Parse(d->annotations));
  return t;
}

/* The cached list doubles as the lookup table for tools/call (name + schema),
 * so the schema text is parsed once, not per call. */
static const cJSON *tool_list(mcp_server *s) {
  if (s->tool_cache) return s->tool_cache;
  s->tool_cache = cJSON_CreateArray();
  for (size_t i = 0; i < k_n_builtin_tools; i++)
    cJSON_AddItemToArray(s->tool_cache, tool_entry(&k_builtin_tools[i], k_builtin_tools[i].name));
  for (size_t i = 0; i < s->n_extra; i++)
    cJSON_AddItemToArray(s->tool_cache, tool_entry(&k_extra_tool_template, s->extra[i]));
  return s->tool_cache;
}

/* Returns the definition for `name` and its parsed input schema, or NULL. */
static const tool_def *find_tool(mcp_server *s, const char *name, const cJSON **schema) {
  size_t i = 0;
  const cJSON *entry;
  cJSON_ArrayForEach(entry, tool_list(s)) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(entry, "name");
    if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) {
      *schema = cJSON_GetObjectItemCaseSensitive(entry, "inputSchema");
      return i < k_n_builtin_tools ? &k_builtin_tools[i] : &k_extra_tool_template;
    }
    i++;
  }
  return NULL;
}

bool srv_add_extra_tool(mcp_server *s, const char *name) {
  const cJSON *schema;
  if (!name[0] || find_tool(s, name, &schema)) return false;
  char **grown = realloc(s->extra, (s->n_extra + 1) * sizeof *grown);
  char *copy = strdup(name);
  if (!grown || !copy) {
    free(copy);
    if (grown) s->extra = grown;
    return false;
  }
  s->extra = grown;
  s->extra[s->n_extra++] = copy;
  cJSON_Delete(s->tool_cache);
  s->tool_cache = NULL;
  return true;
}

/* ------------------------------------------------------------------ methods */

static void on_initialize(mcp_server *s, const cJSON *id, const cJSON *params) {
  const cJSON *requested = cJSON_GetObjectItemCaseSensitive(params, "protocolVersion");
  const char *version = LATEST_PROTOCOL;
  for (size_t i = 0; i < sizeof k_protocol_versions / sizeof *k_protocol_versions; i++)
    if (cJSON_IsString(requested) && strcmp(requested->valuestring, k_protocol_versions[i]) == 0)
      version = k_protocol_versions[i];
  snprintf(s->protocol_version, sizeof s->protocol_version, "%s", version);

  cJSON *result = cJSON_CreateObject();
  cJSON_AddStringToObject(result, "protocolVersion", version);
  cJSON *caps = cJSON_AddObjectToObject(result, "capabilities");
  cJSON *tools = cJSON_AddObjectToObject(caps, "tools");
  cJSON_AddTrueToObject(tools, "listChanged");
  cJSON *info = cJSON_AddObjectToObject(result, "serverInfo");
  cJSON_AddStringToObject(info, "name", s->name);
  cJSON_AddStringToObject(info, "version", SERVER_VERSION);
  srv_reply_result(s, id, result);
}

static void on_ping(mcp_server *s, const cJSON *id, const cJSON *params) {
  srv_reply_result(s, id, cJSON_CreateObject());
}

/* Cursors are "page-<k>" (k >= 1). Anything else, or a page past the end,
 * is invalid; the spec asks for -32602 in that case. */
static bool parse_cursor(const cJSON *cursor, size_t page_size, size_t n, size_t *page) {
  if (!cJSON_IsString(cursor) || page_size == 0) return false;
  const char *p = cursor->valuestring;
  if (strncmp(p, "page-", 5) != 0 || !isdigit((unsigned char)p[5])) return false;
  char *end;
  errno = 0;
  unsigned long long k = strtoull(p + 5, &end, 10);
  size_t pages = n / page_size + (n % page_size != 0);
  if (errno || *end || k == 0 || (k > 1 && k > pages)) return false;
  *page = (size_t)k;
  return true;
}

static void on_tools_list(mcp_server *s, const cJSON *id, const cJSON *params) {
  const char *fail = getenv("AIP_TEST_LIST_ERROR"); /* DLP tests: an upstream error message */
  if (fail && *fail) {
    srv_reply_error(s, id, MCP_INTERNAL_ERROR, "%s", fail);
    return;
  }
  const cJSON *all = tool_list(s);
  size_t n = (size_t)cJSON_GetArraySize(all), page = 1;
  const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(params, "cursor");
  if (cursor && !cJSON_IsNull(cursor) && !parse_cursor(cursor, s->page_size, n, &page)) {
    srv_reply_error(s, id, MCP_INVALID_PARAMS, "Invalid cursor");
    return;
  }
  size_t size = s->page_size ? s->page_size : n;
  size_t first = (page - 1) * size, i = 0; /* < n unless page 1: parse_cursor checked */
  size_t count = n - first < size ? n - first : size;
  cJSON *result = cJSON_CreateObject();
  cJSON *tools = cJSON_AddArrayToObject(result, "tools");
  const cJSON *entry;
  cJSON_ArrayForEach(entry, all) {
    if (i >= first && i - first < count) cJSON_AddItemToArray(tools, cJSON_Duplicate(entry, 1));
    i++;
  }
  if (first + count < n) {
    char next[32];
    snprintf(next, sizeof next, "page-%zu", page + 1);
    cJSON_AddStringToObject(result, "nextCursor", next);
  }
  srv_reply_result(s, id, result);
}

static void on_tools_call(mcp_server *s, const cJSON *id, const cJSON *params) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(params, "name");
  if (!cJSON_IsObject(params) || !cJSON_IsString(name)) {
    srv_reply_error(s, id, MCP_INVALID_PARAMS, "Invalid params: tools/call needs a string 'name'");
    return;
  }
  const cJSON *schema = NULL;
  const tool_def *tool = find_tool(s, name->valuestring, &schema);
  if (!tool) {
    srv_reply_error(s, id, MCP_INVALID_PARAMS, "Unknown tool: %s", name->valuestring);
    return;
  }
  /* Missing or null arguments mean "no arguments"; validate against {}. */
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
  cJSON *empty = NULL;
  if (!args || cJSON_IsNull(args)) args = empty = cJSON_CreateObject();
  char err[512];
  if (!tools_validate(schema, args, err, sizeof err)) {
    char text[600];
    snprintf(text, sizeof text, "Input validation error: %s", err);
    srv_reply_text(s, id, text, true);
  } else {
    tool->run(s, id, args, params);
  }
  cJSON_Delete(empty);
}

typedef void (*method_fn)(mcp_server *s, const cJSON *id, const cJSON *params);

static const struct {
  const char *name;
  method_fn fn;
} k_methods[] = {
    {"initialize", on_initialize},
    {"ping", on_ping},
    {"tools/list", on_tools_list},
    {"tools/call", on_tools_call},
};

static void on_request(mcp_server *s, const char *method, const cJSON *id, const cJSON *params) {
  for (size_t i = 0; i < sizeof k_methods / sizeof *k_methods; i++) {
    if (strcmp(method, k_methods[i].name) == 0) {
      k_methods[i].fn(s, id, params);
      return;
    }
  }
  srv_reply_error(s, id, MCP_METHOD_NOT_FOUND, "Method not found");
}

/* Notifications never get a reply, not even for unknown methods. */
static void on_notification(mcp_server *s, const char *method, const cJSON *params) {
  if (strcmp(method, "notifications/initialized") == 0) {
    s->initialized = true;
  } else if (strcmp(method, "notifications/cancelled") == 0) {
    tools_cancel(s, cJSON_GetObjectItemCaseSensitive(params, "requestId"));
  } else if (s->verbose) {
    srv_log(s, "ignoring notification %s", method);
  }
}

void mcp_server_handle_message(mcp_server *s, const cJSON *msg) {
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
  const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
  const cJSON *version = cJSON_GetObjectItemCaseSensitive(msg, "jsonrpc");
  /* JSON-RPC ids are strings or integers; anything else is unusable for the reply. */
  const cJSON *reply_id = (cJSON_IsString(id) || cJSON_IsNumber(id)) ? id : NULL;
  bool versioned = cJSON_IsString(version) && strcmp(version->valuestring, "2.0") == 0;

  if (!cJSON_IsObject(msg)) {
    srv_reply_error(s, NULL, MCP_INVALID_REQUEST, "Invalid Request");
  } else if (!method && id && (cJSON_GetObjectItemCaseSensitive(msg, "result") ||
                               cJSON_GetObjectItemCaseSensitive(msg, "error"))) {
    /* A response: we never send requests, so there is nothing to match. */
    if (s->verbose) srv_log(s, "ignoring unexpected response");
  } else if (!cJSON_IsString(method) || !versioned) {
    if (id || !cJSON_IsString(method)) srv_reply_error(s, reply_id, MCP_INVALID_REQUEST, "Invalid Request");
  } else if (!id) {
    on_notification(s, method->valuestring, cJSON_GetObjectItemCaseSensitive(msg, "params"));
  } else if (!reply_id) {
    srv_reply_error(s, NULL, MCP_INVALID_REQUEST, "Invalid Request");
  } else {
    on_request(s, method->valuestring, id, cJSON_GetObjectItemCaseSensitive(msg, "params"));
  }
}

void mcp_server_handle_json(mcp_server *s, const char *text, size_t len) {
  trace(s, "<-", text, len);
  const char *end = NULL;
  cJSON *msg = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  /* cJSON stops at the end of the first value; trailing bytes make it invalid too. */
  while (msg && end < text + len && isspace((unsigned char)*end)) end++;
  if (!msg || end != text + len) {
    cJSON_Delete(msg);
    srv_reply_error(s, NULL, MCP_PARSE_ERROR, "Parse error");
    return;
  }
  if (!cJSON_IsArray(msg)) {
    mcp_server_handle_message(s, msg);
  } else if (cJSON_GetArraySize(msg) == 0) {
    srv_reply_error(s, NULL, MCP_INVALID_REQUEST, "Invalid Request");
  } else {
    /* 2025-03-26 batches: answer each element on its own, which that revision allows. */
    const cJSON *item;
    cJSON_ArrayForEach(item, msg) mcp_server_handle_message(s, item);
  }
  cJSON_Delete(msg);
}

/* ------------------------------------------------------------------ lifetime */

mcp_server *mcp_server_new(uv_loop_t *loop, const mcp_server_options *o, mcp_emit_fn emit,
                           void *emit_ctx) {
  mcp_server *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->loop = loop;
  s->emit = emit;
  s->emit_ctx = emit_ctx;
  s->name = strdup(o->name ? o->name : "aip-test-server");
  s->page_size = o->page_size;
  s->verbose = o->verbose;
  if (!s->name) {
    free(s);
    return NULL;
  }
  for (size_t i = 0; i < o->n_extra_tools; i++)
    if (!srv_add_extra_tool(s, o->extra_tools[i]))
      srv_log(s, "extra tool '%s' skipped (empty or duplicate name)", o->extra_tools[i]);
  return s;
}

void mcp_server_set_hooks(mcp_server *s, const mcp_transport_hooks *hooks) { s->hooks = *hooks; }

void mcp_server_free(mcp_server *s) {
  if (!s) return;
  tools_drop_all(s);
  for (size_t i = 0; i < s->n_extra; i++) free(s->extra[i]);
  free(s->extra);
  cJSON_Delete(s->tool_cache);
  free(s->name);
  free(s);
}

/* ------------------------------------------------------------------ options */

static int split_extra_tools(mcp_server_options *o, const char *list) {
  const char *p = list;
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const char *start = p;
    while (len && isspace((unsigned char)*start)) start++, len--;
    while (len && isspace((unsigned char)start[len - 1])) len--;
    if (len) {
      char **grown = realloc(o->extra_tools, (o->n_extra_tools + 1) * sizeof *grown);
      if (!grown) return -1;
      o->extra_tools = grown;
      if (!(o->extra_tools[o->n_extra_tools] = strndup(start, len))) return -1;
      o->n_extra_tools++;
    }
    p = comma ? comma + 1 : p + strlen(p);
  }
  return 0;
}

int mcp_options_from_env(mcp_server_options *o) {
  memset(o, 0, sizeof *o);
  const char *name = getenv("AIP_TEST_NAME");
  o->name = strdup(name && *name ? name : "aip-test-server");
  if (!o->name) return -1;
  const char *verbose = getenv("AIP_TEST_VERBOSE");
  o->verbose = verbose && strcmp(verbose, "0") != 0 && *verbose;
  const char *page = getenv("AIP_TEST_PAGE_SIZE");
  if (page && *page) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(page, &end, 10);
    if (errno || *end || !isdigit((unsigned char)*page)) {
      fprintf(stderr, "[aip-test-server] AIP_TEST_PAGE_SIZE must be a non-negative integer\n");
      return -1;
    }
    o->page_size = (size_t)v;
  }
  const char *extra = getenv("AIP_TEST_EXTRA_TOOLS");
  return extra ? split_extra_tools(o, extra) : 0;
}

void mcp_options_free(mcp_server_options *o) {
  for (size_t i = 0; i < o->n_extra_tools; i++) free(o->extra_tools[i]);
  free(o->extra_tools);
  free(o->name);
  memset(o, 0, sizeof *o);
}
