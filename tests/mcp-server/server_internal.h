/* Shared between server_core.c (JSON-RPC + MCP lifecycle) and tools.c. */
#ifndef AIP_TEST_SERVER_INTERNAL_H
#define AIP_TEST_SERVER_INTERNAL_H

#include "mcp_server.h"

#define MCP_PARSE_ERROR -32700
#define MCP_INVALID_REQUEST -32600
#define MCP_METHOD_NOT_FOUND -32601
#define MCP_INVALID_PARAMS -32602
#define MCP_INTERNAL_ERROR -32603

typedef struct pending_call pending_call;

struct mcp_server {
  uv_loop_t *loop;
  mcp_emit_fn emit;
  void *emit_ctx;
  char *name;
  size_t page_size;
  char **extra; /* echo-like tools: from the environment, then added at runtime */
  size_t n_extra;
  cJSON *tool_cache; /* tools/list array; rebuilt lazily after the tool set changes */
  pending_call *pending; /* in-flight `slow` calls */
  mcp_transport_hooks hooks;
  char protocol_version[16];
  bool initialized;
  bool verbose;
};

/* ---- output helpers (server_core.c) ---- */

/* Serializes msg, deletes it, and hands the text to the transport. */
void srv_send(mcp_server *s, mcp_out_kind kind, const cJSON *related_id, cJSON *msg);
/* Sends {"jsonrpc","id","result"}; takes ownership of result. */
void srv_reply_result(mcp_server *s, const cJSON *id, cJSON *result);
void srv_reply_error(mcp_server *s, const cJSON *id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Builds a CallToolResult with a single text block. */
cJSON *srv_text_result(const char *text, bool is_error);
/* Sends a CallToolResult with a single text block. */
void srv_reply_text(mcp_server *s, const cJSON *id, const char *text, bool is_error);
/* Appends an echo-like tool; returns false if the name is taken or invalid. */
bool srv_add_extra_tool(mcp_server *s, const char *name);
void srv_log(const mcp_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- tools (tools.c) ---- */

typedef void (*tool_fn)(mcp_server *s, const cJSON *id, const cJSON *args, const cJSON *params);

typedef struct tool_def {
  const char *name;
  const char *description;
  const char *input_schema;  /* JSON text; also drives argument validation */
  const char *output_schema; /* JSON text or NULL */
  const char *annotations;   /* JSON text or NULL */
  tool_fn run;
} tool_def;

extern const tool_def k_builtin_tools[];
extern const size_t k_n_builtin_tools;
/* Definition used for each extra tool (name replaced). */
extern const tool_def k_extra_tool_template;

/* Checks args against the JSON Schema subset our tools use (type, required,
 * additionalProperties:false, minimum, maximum). On failure writes a message to err. */
bool tools_validate(const cJSON *schema, const cJSON *args, char *err, size_t errlen);
/* notifications/cancelled: drops the in-flight call with that id, if any. */
void tools_cancel(mcp_server *s, const cJSON *request_id);
/* Drops every in-flight call silently (server teardown). */
void tools_drop_all(mcp_server *s);

#endif
