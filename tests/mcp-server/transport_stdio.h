/* stdio transport for aip-test-server: newline-delimited JSON-RPC on fds 0/1. */
#ifndef AIP_TEST_TRANSPORT_STDIO_H
#define AIP_TEST_TRANSPORT_STDIO_H

#include "mcp_server.h"

/* Serves one MCP session on stdin/stdout until stdin reaches EOF (or stdout
 * breaks), then flushes queued output and returns the process exit status.
 * In-flight calls are dropped at EOF without an answer. */
int stdio_transport_run(uv_loop_t *loop, const mcp_server_options *opts);

#endif
