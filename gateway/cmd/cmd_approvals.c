/* cmd_approvals.c -- `aip approvals list|show ID|approve ID|deny ID [--reason TEXT]
 * [--status S] [--limit N] [--offset N] [--json] [--admin URL]`: a thin client of the approval
 * API (docs/approvals.md). The operator token comes from AIP_OPERATOR_TOKEN, never from the
 * command line (where `ps` would show it). Prints the records in their display-safe form (the
 * API's `display` fields: no bidi control or invisible character reaches the terminal raw);
 * with --json, and for errors, the API's JSON answer with every non-ASCII character escaped.
 * Exit 0 on 2xx, 1 on an API error, 2 on usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "engine/engine.h"
#include "gateway/http/http_client.h"

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

/* JSON text with every non-ASCII character (and DEL) as \\uXXXX: the same JSON, and nothing in
 * it can reorder or hide what a terminal shows. Only strings hold such characters. */
static void print_json_ascii(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    if (p[i] < 0x7f) {
      fputc(p[i++], stdout);
      continue;
    }
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &c);
    if (k <= 0) c = 0xFFFD, k = 1;
    if (c > 0xFFFF)
      printf("\\u%04x\\u%04x", (unsigned)(0xD800 + ((c - 0x10000) >> 10)),
             (unsigned)(0xDC00 + ((c - 0x10000) & 0x3FF)));
    else
      printf("\\u%04x", (unsigned)c);
    i += (size_t)k;
  }
  fputc('\n', stdout);
}

/* A display field: the API made it safe (aip_display_string); "-" when absent. */
static const char *shown(const cJSON *rec, const char *key) {
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(rec, "display");
  const cJSON *v = cJSON_IsObject(d) ? cJSON_GetObjectItemCaseSensitive(d, key) : NULL;
  return cJSON_IsString(v) ? v->valuestring : "-";
}

static const char *plain(const cJSON *rec, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);
  return cJSON_IsString(v) ? v->valuestring : "-";
}

static void print_record(const cJSON *rec) {
  printf("id         %s\nstatus     %s\n", plain(rec, "id"), plain(rec, "status"));
  printf("agent      %s\nserver     %s\ntool       %s\n", shown(rec, "agent"),
         shown(rec, "server"), shown(rec, "tool"));
  printf("created    %s\nexpires    %s\n", plain(rec, "created_at"), plain(rec, "expires_at"));
  if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(rec, "decided_at")))
    printf("decided    %s by %s\nreason     %s\n", plain(rec, "decided_at"),
           shown(rec, "decided_by"), shown(rec, "reason"));
  printf("arguments  %s\n", shown(rec, "arguments"));
}

/* The display form of a record or a list page; 0, or -EINVAL when the answer is not one. */
static int print_display(const aip_buf *body, const char *again) {
  cJSON *root = NULL;
  if (!body->len || aip_json_parse(body->data, body->len, &root) != AIP_JSON_OK) return -EINVAL;
  int rc = cJSON_IsObject(root) ? 0 : -EINVAL;
  const cJSON *list = rc ? NULL : cJSON_GetObjectItemCaseSensitive(root, "approvals");
  if (cJSON_IsArray(list)) {
    const cJSON *rec, *next = cJSON_GetObjectItemCaseSensitive(root, "next_offset");
    int i = 0;
    cJSON_ArrayForEach(rec, list) {
      if (!cJSON_IsObject(rec)) continue;
      if (i++) fputc('\n', stdout);
      print_record(rec);
    }
    if (!i) printf("(no approvals)\n");
    if (cJSON_IsNumber(next)) printf("\nmore: aip approvals list%s --offset %.0f\n", again,
                                     next->valuedouble);
  } else if (!rc) {
    print_record(root);
  }
  cJSON_Delete(root);
  return rc;
}

/* --status/--limit/--offset become the query; each must be a word or a number. */
static int list_path(int argc, char **argv, char *path, size_t cap, char *again, size_t acap) {
  static const char *const names[] = {"--status", "--limit", "--offset"};
  size_t len = (size_t)snprintf(path, cap, "/v1/approvals");
  again[0] = 0;
  for (int k = 0; k < 3; k++) {
    const char *v = opt(argc, argv, names[k]);
    if (!v) continue;
    if (!*v || strlen(v) > 24 || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(v))
      return -EINVAL;
    len += (size_t)snprintf(path + len, cap - len, "%c%s=%s", len > 13 ? '&' : '?', names[k] + 2, v);
    if (k < 2) snprintf(again + strlen(again), acap - strlen(again), " %s %s", names[k], v);
  }
  return 0;
}

int aip_cmd_approvals(int argc, char **argv) {
  static const char usage[] =
      "usage: aip approvals list [--status pending|approved|denied|expired] [--limit N] [--offset N]\n"
      "       aip approvals show ID | approve ID [--reason TEXT] | deny ID [--reason TEXT]\n"
      "       (all take --json, to print the API's JSON, and --admin http://HOST:PORT,\n"
      "        default http://127.0.0.1:9091; the operator token is read from AIP_OPERATOR_TOKEN)\n";
  if (argc < 1 || strcmp(argv[0], "--help") == 0) {
    fputs(usage, argc < 1 ? stderr : stdout);
    return argc < 1 ? 2 : 0;
  }
  const char *admin = opt(argc, argv, "--admin");
  if (!admin) admin = "http://127.0.0.1:9091";
  char path[256], again[128] = "";
  const char *method = "GET";
  aip_buf body;
  aip_buf_init(&body);
  const char *verb = argv[0], *id = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
  if (strcmp(verb, "list") == 0) {
    if (list_path(argc, argv, path, sizeof(path), again, sizeof(again))) {
      fputs(usage, stderr);
      return 2;
    }
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
    rc = rep.status / 100 == 2 ? 0 : 1;
    int json = 0;
    for (int i = 0; i < argc; i++) json |= strcmp(argv[i], "--json") == 0;
    if (rc || json || print_display(&rep.body, again))
      print_json_ascii(rep.body.data ? rep.body.data : "", rep.body.len);
  }
  aip_buf_free(&rep.body);
  aip_buf_free(&body);
  return rc;
}
