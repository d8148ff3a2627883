/* cmd_approvals.c -- `aip approvals list|show ID|approve ID|deny ID [--reason TEXT]
 * [--status S] [--admin URL]`: a thin client of the approval API (docs/approvals.md). The
 * operator token comes from AIP_OPERATOR_TOKEN, never from the command line (where `ps` would
 * show it). Prints the API's JSON answer; exit 0 on 2xx, 1 on an API error, 2 on usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "gateway/http_client.h"

typedef struct reply {
  int status;
  int err;
  int done;
  aip_buf body;
} reply;

static int on_headers(aip_http_creq *r, int status, const char *h, size_t len, void *data) {
  ((reply *)data)->status = status;
  return 0;
}

static int on_body(aip_http_creq *r, const char *p, size_t n, void *data) {
  return aip_buf_append(&((reply *)data)->body, p, n);
}

static void on_done(aip_http_creq *r, int err, void *data) {
  reply *rep = data;
  rep->err = err;
  rep->done = 1;
}

static const char *opt(int argc, char **argv, const char *name) {
  for (int i = 0; i + 1 < argc; i++)
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  return NULL;
}

/* http://HOST:PORT only (the admin listener); localhost is 127.0.0.1. */
static int parse_admin(const char *url, char *host, size_t cap, int *port) {
  if (strncmp(url, "http://", 7) != 0) return -EINVAL;
  const char *h = url + 7, *colon = strrchr(h, ':');
  if (!colon) return -EINVAL;
  snprintf(host, cap, "%.*s", (int)(colon - h), h);
  if (strcmp(host, "localhost") == 0) snprintf(host, cap, "127.0.0.1");
  *port = atoi(colon + 1);
  return *port > 0 && *port < 65536 ? 0 : -EINVAL;
}

static int request(const char *admin, const char *method, const char *path, const char *body,
                   reply *rep) {
  char host[128], headers[4200];
  int port;
  const char *token = getenv("AIP_OPERATOR_TOKEN");
  if (!token || !*token) {
    fprintf(stderr, "aip approvals: set AIP_OPERATOR_TOKEN to an operator token\n");
    return 2;
  }
  if (parse_admin(admin, host, sizeof(host), &port) || strlen(token) > 4000) {
    fprintf(stderr, "aip approvals: --admin must be http://HOST:PORT\n");
    return 2;
  }
  snprintf(headers, sizeof(headers), "Authorization: Bearer %s\r\nContent-Type: application/json\r\n", token);
  uv_loop_t loop;
  uv_loop_init(&loop);
  aip_http_client *c = aip_http_client_new(&loop, host, port, 5000);
  aip_http_creq_cbs cbs = {on_headers, on_body, on_done};
  int rc = c ? aip_http_client_request(c, method, path, headers, body, body ? strlen(body) : 0,
                                       10000, &cbs, rep, NULL)
             : -ENOMEM;
  /* run until the answer is in: the pooled connection's idle timer would keep the loop alive */
  while (!rc && !rep->done) uv_run(&loop, UV_RUN_ONCE);
  if (c) aip_http_client_close(c);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (rc || rep->err) {
    fprintf(stderr, "aip approvals: %s: %s\n", admin, strerror(-(rc ? rc : rep->err)));
    return 1;
  }
  return 0;
}

int aip_cmd_approvals(int argc, char **argv) {
  static const char usage[] =
      "usage: aip approvals list [--status pending|approved|denied|expired]\n"
      "       aip approvals show ID | approve ID [--reason TEXT] | deny ID [--reason TEXT]\n"
      "       (all take --admin http://HOST:PORT, default http://127.0.0.1:9091;\n"
      "        the operator token is read from AIP_OPERATOR_TOKEN)\n";
  if (argc < 1 || strcmp(argv[0], "--help") == 0) {
    fputs(usage, argc < 1 ? stderr : stdout);
    return argc < 1 ? 2 : 0;
  }
  const char *admin = opt(argc, argv, "--admin");
  if (!admin) admin = "http://127.0.0.1:9091";
  char path[256];
  const char *method = "GET";
  aip_buf body;
  aip_buf_init(&body);
  const char *verb = argv[0], *id = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
  if (strcmp(verb, "list") == 0) {
    const char *st = opt(argc, argv, "--status");
    snprintf(path, sizeof(path), "/v1/approvals%s%s", st ? "?status=" : "", st ? st : "");
  } else if (id && strlen(id) < 64 && strcmp(verb, "show") == 0) {
    snprintf(path, sizeof(path), "/v1/approvals/%s", id);
  } else if (id && strlen(id) < 64 && (strcmp(verb, "approve") == 0 || strcmp(verb, "deny") == 0)) {
    const char *reason = opt(argc, argv, "--reason");
    snprintf(path, sizeof(path), "/v1/approvals/%s/%s", id, verb);
    method = "POST";
    aip_buf_puts(&body, "{");
    if (reason) {
      aip_buf_puts(&body, "\"reason\":");
      aip_buf_json_string(&body, reason, strlen(reason), 0);
    }
    aip_buf_puts(&body, "}");
  } else {
    fputs(usage, stderr);
    return 2;
  }
  reply rep = {0};
  aip_buf_init(&rep.body);
  int rc = request(admin, method, path, body.len ? body.data : NULL, &rep);
  if (!rc) {
    fwrite(rep.body.data ? rep.body.data : "", 1, rep.body.len, stdout);
    fputc('\n', stdout);
    rc = rep.status / 100 == 2 ? 0 : 1;
  }
  aip_buf_free(&rep.body);
  aip_buf_free(&body);
  return rc;
}
