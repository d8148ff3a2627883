/* aip-test-server: transport-independent MCP core.
 *
 * The core knows nothing about framing. A transport feeds it one JSON text
 * (mcp_server_handle_json) or one parsed message (mcp_server_handle_message)
 * and receives every outgoing message through an mcp_emit_fn. The stdio
 * transport writes each one as a line; the Streamable HTTP transport routes
 * them by `kind` and `related_id` (the response closes the request's stream,
 * progress rides it, unrelated notifications go to the GET stream).
 *
 * The core needs a libuv loop only for timers (the `slow` tool). */
#ifndef AIP_TEST_MCP_SERVER_H
#define AIP_TEST_MCP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>
#include <uv.h>

typedef enum mcp_out_kind {
  /* A JSON-RPC response. related_id is the request id, or NULL when the id
   * could not be read (the message then carries "id":null). */
  MCP_OUT_RESPONSE,
  /* A notification. related_id is the request it belongs to (progress), or
   * NULL when it belongs to no request (tools/list_changed). */
  MCP_OUT_NOTIFICATION,
  /* No message (json == NULL): request related_id was cancelled and will never
   * get a response. Lets an HTTP transport close that request's stream. */
  MCP_OUT_DROPPED,
} mcp_out_kind;

/* Receives one compact JSON message without a trailing newline. The callee
 * owns `json` (malloc'd, NUL-terminated, len bytes) and must free() it.
 * related_id is only valid during the call. Must not free the server. */
typedef void (*mcp_emit_fn)(void *ctx, mcp_out_kind kind, const cJSON *related_id, char *json,
                            size_t len);

typedef struct mcp_server_options {
  char *name;          /* serverInfo.name (AIP_TEST_NAME) */
  size_t page_size;    /* tools/list page size, 0 = all in one page (AIP_TEST_PAGE_SIZE) */
  char **extra_tools;  /* echo-like tools (AIP_TEST_EXTRA_TOOLS="a,b") */
  size_t n_extra_tools;
  bool verbose;        /* trace every message on stderr (AIP_TEST_VERBOSE=1) */
} mcp_server_options;

/* Fills *o from the AIP_TEST_* environment. Returns 0, or -1 on bad values. */
int mcp_options_from_env(mcp_server_options *o);
void mcp_options_free(mcp_server_options *o);

typedef struct mcp_server mcp_server;

/* One server = one MCP session. Options are copied. */
mcp_server *mcp_server_new(uv_loop_t *loop, const mcp_server_options *o, mcp_emit_fn emit,
                           void *emit_ctx);

/* What a transport can offer the tools that need to see past JSON-RPC. Both
 * receive the server's emit_ctx and run synchronously inside a tools/call, so
 * a transport knows which HTTP request is being handled. Either may be NULL
 * (stdio): `headers` then returns "{}" and `drop_sessions` does nothing. */
typedef struct mcp_transport_hooks {
  /* malloc'd JSON object text: the HTTP request headers of the message being
   * handled (tool `headers`), or NULL when there are none. */
  char *(*request_headers)(void *ctx);
  /* Forgets every session (tool `drop_sessions`). Must not free the calling
   * session before the tool has replied: the reply still goes through emit. */
  void (*drop_sessions)(void *ctx);
} mcp_transport_hooks;

/* Hooks are copied; call right after mcp_server_new. */
void mcp_server_set_hooks(mcp_server *s, const mcp_transport_hooks *hooks);

/* Drops in-flight calls without answering and frees the server. Timer handles
 * close asynchronously: keep running the loop until it is empty. */
void mcp_server_free(mcp_server *s);

/* Parses one JSON text (a message or, per 2025-03-26, a batch) and handles it;
 * invalid JSON gets a -32700 error with id null. */
void mcp_server_handle_json(mcp_server *s, const char *text, size_t len);

/* Handles one parsed JSON-RPC message (request, notification or response). */
void mcp_server_handle_message(mcp_server *s, const cJSON *msg);

#endif
