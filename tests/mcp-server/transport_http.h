/* Streamable HTTP transport for aip-test-server: MCP at http://HOST:PORT/mcp,
 * served by the gateway's own HTTP server (gateway/http/http_server.h). */
#ifndef AIP_TEST_TRANSPORT_HTTP_H
#define AIP_TEST_TRANSPORT_HTTP_H

#include "mcp_server.h"

typedef enum http_reply_mode {
  HTTP_REPLY_SSE,  /* a POST with requests is answered as text/event-stream */
  HTTP_REPLY_JSON, /* ... as one application/json body; progress is dropped */
} http_reply_mode;

typedef struct http_transport_config {
  const char *host;      /* IPv4 or IPv6 literal, without brackets */
  int port;              /* 0 picks a free port */
  http_reply_mode reply;
  const char *port_file; /* NULL, or a file that receives the bound port */
} http_transport_config;

/* Serves until SIGINT or SIGTERM, then closes every session and connection and
 * returns the exit status (0 after a signal). Reads AIP_TEST_HTTP_FAULT. */
int http_transport_run(uv_loop_t *loop, const mcp_server_options *opts,
                       const http_transport_config *cfg);

#endif
