/* aip-test-server: a small MCP server for aip-gateway's tests and benchmarks.
 * The core (mcp_server.h) is transport-independent; main picks stdio
 * (transport_stdio.c) or Streamable HTTP (transport_http.c). */
#include "mcp_server.h"
#include "transport_http.h"
#include "transport_stdio.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fputs("usage: aip-test-server [--stdio]\n"
        "       aip-test-server --http HOST:PORT [--reply json|sse] [--port-file FILE]\n"
        "  --stdio      MCP on stdin/stdout (newline-delimited JSON-RPC); the default\n"
        "  --http       MCP Streamable HTTP at http://HOST:PORT/mcp; PORT 0 picks a free port\n"
        "  --reply      how a POST with requests is answered: sse (default) or json\n"
        "  --port-file  write the bound port to FILE once listening\n"
        "  env: AIP_TEST_NAME, AIP_TEST_PAGE_SIZE, AIP_TEST_EXTRA_TOOLS=a,b, AIP_TEST_VERBOSE=1,\n"
        "       AIP_TEST_HTTP_FAULT=garbage|500|hang (HTTP: tools/call POSTs misbehave)\n",
        f);
}

typedef struct cli {
  bool http;
  char host[256];
  http_transport_config cfg;
} cli;

/* HOST:PORT, where HOST may be a bracketed IPv6 literal ([::1]:0). */
static int parse_listen(const char *arg, cli *c) {
  const char *colon = strrchr(arg, ':');
  if (!colon || colon == arg) return -1;
  size_t hl = (size_t)(colon - arg);
  const char *host = arg;
  if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') host++, hl -= 2;
  if (hl == 0 || hl >= sizeof c->host) return -1;
  memcpy(c->host, host, hl);
  c->host[hl] = '\0';
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if (errno || end == colon + 1 || *end || port < 0 || port > 65535) return -1;
  c->cfg.host = c->host;
  c->cfg.port = (int)port;
  return 0;
}

/* Returns 0 to run, 1 after --help, 2 on a usage error. */
static int parse_args(int argc, char **argv, cli *c) {
  bool reply_given = false;
  memset(c, 0, sizeof *c);
  c->cfg.reply = HTTP_REPLY_SSE;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout); /* only on request: in stdio mode stdout is reserved for JSON-RPC */
      return 1;
    } else if (strcmp(a, "--stdio") == 0) {
      continue;
    } else if (strcmp(a, "--http") == 0 && v && parse_listen(v, c) == 0) {
      c->http = true;
    } else if (strcmp(a, "--reply") == 0 && v && (!strcmp(v, "json") || !strcmp(v, "sse"))) {
      c->cfg.reply = strcmp(v, "json") == 0 ? HTTP_REPLY_JSON : HTTP_REPLY_SSE;
      reply_given = true;
    } else if (strcmp(a, "--port-file") == 0 && v && *v) {
      c->cfg.port_file = v;
    } else {
      usage(stderr);
      return 2;
    }
    i++; /* every option but --stdio takes a value */
  }
  if (!c->http && (reply_given || c->cfg.port_file)) {
    fputs("aip-test-server: --reply and --port-file need --http\n", stderr);
    return 2;
  }
  return 0;
}

int main(int argc, char **argv) {
  cli c;
  int rc = parse_args(argc, argv, &c);
  if (rc) return rc == 1 ? 0 : rc;
  /* A client that closes its end must surface as a write error, not kill us. */
  signal(SIGPIPE, SIG_IGN);

  mcp_server_options opts;
  if (mcp_options_from_env(&opts) != 0) {
    mcp_options_free(&opts);
    return 2;
  }
  uv_loop_t loop;
  rc = uv_loop_init(&loop);
  if (rc) {
    fprintf(stderr, "[aip-test-server] uv_loop_init: %s\n", uv_strerror(rc));
    mcp_options_free(&opts);
    return 1;
  }
  int status = c.http ? http_transport_run(&loop, &opts, &c.cfg) : stdio_transport_run(&loop, &opts);
  if (uv_loop_close(&loop) != 0) fprintf(stderr, "[aip-test-server] loop still busy at exit\n");
  mcp_options_free(&opts);
  return status;
}
