/* aip-test-server: a small MCP server for aip-gateway's tests and benchmarks.
 * Today it speaks stdio; the core (mcp_server.h) is transport-independent so
 * a Streamable HTTP transport can be added next to transport_stdio.c. */
#include "mcp_server.h"
#include "transport_stdio.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
  fputs("usage: aip-test-server [--stdio]\n"
        "  MCP test server on stdin/stdout (newline-delimited JSON-RPC).\n"
        "  env: AIP_TEST_NAME, AIP_TEST_PAGE_SIZE, AIP_TEST_EXTRA_TOOLS=a,b, AIP_TEST_VERBOSE=1\n",
        f);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout); /* only on request: stdout is otherwise reserved for JSON-RPC */
      return 0;
    }
    if (strcmp(argv[i], "--stdio") != 0) {
      usage(stderr);
      return 2;
    }
  }
  /* A client that closes its end must surface as a write error, not kill us. */
  signal(SIGPIPE, SIG_IGN);

  mcp_server_options opts;
  if (mcp_options_from_env(&opts) != 0) {
    mcp_options_free(&opts);
    return 2;
  }
  uv_loop_t loop;
  int rc = uv_loop_init(&loop);
  if (rc) {
    fprintf(stderr, "[aip-test-server] uv_loop_init: %s\n", uv_strerror(rc));
    mcp_options_free(&opts);
    return 1;
  }
  int status = stdio_transport_run(&loop, &opts);
  if (uv_loop_close(&loop) != 0) fprintf(stderr, "[aip-test-server] loop still busy at exit\n");
  mcp_options_free(&opts);
  return status;
}
