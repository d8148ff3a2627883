/* fuzz_approvals.c -- the operators' approval API bodies and queries (gateway/approvals/approvals_api.c)
 * behind a real aip_http_server, with a real approval queue on a SQLite store in a temporary
 * folder and one pending record. The input's first byte picks the endpoint, the rest is the
 * body (POST approve/deny), the query string (GET list) or the rest of the path (GET one);
 * the harness writes the request line and headers with the operator's token. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "gateway/approvals/approvals_http.h"
#include "gateway/serve/gw.h"
#include "loopback.h"
#include "store/store.h"

static aip_gw gw;
static aip_operator_config op;
static char dir[64];
static const char id[] = "0123456789abcdef0123456789abcdef";
static const char token[] = "aip_fuzz_operator_token";

static void handler(aip_http_req *req, void *ctx) {
  if (!aip_approvals_api_handle(req, &gw)) aip_http_respond(req, 404, "text/plain", NULL, "", 0);
}

static void on_asked(void *data, int err, aip_approval_status st, const aip_approval *a) {}

static void init(void) {
  snprintf(dir, sizeof dir, "%s", "/tmp/aip-fuzz-approvals-XXXXXX");
  if (!mkdtemp(dir)) abort();
  char db[128];
  snprintf(db, sizeof db, "%s/aip.db", dir);
  aip_http_limits lim = {.max_header_bytes = 8192, .max_body = 65536, .header_timeout_ms = 2000,
                         .idle_timeout_ms = 2000, .max_connections = 16};
  fz_start(&lim, handler, NULL);
  aip_error err = {{0}};
  gw.loop = fz_loop;
  if (aip_store_open(fz_loop, db, &gw.store, &err)) abort();
  gw.approvals = aip_approvals_new(fz_loop, gw.store, 3600 * 1000, 0);
  op.name = "fuzz-operator";
  crypto_hash_sha256(op.token_sha256, (const unsigned char *)token, strlen(token));
  aip_map_init(&gw.operators_by_token);
  aip_map_put(&gw.operators_by_token, op.token_sha256, sizeof(op.token_sha256), &op);
  /* one pending record (its id comes back in the list) */
  aip_approvals_ask(gw.approvals, "agent", "server", "tool", "{}", "{}", on_asked, NULL);
  for (int i = 0; i < 50; i++) uv_run(fz_loop, UV_RUN_NOWAIT), usleep(1000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!fz_srv) init();
  if (size < 1) return 0;
  int which = data[0] % 6;
  size_t bn = size - 1;
  char *body = malloc(bn + 1); /* NUL-terminated for the request-line cases */
  memcpy(body, data + 1, bn);
  body[bn] = 0;
  aip_buf req;
  aip_buf_init(&req);
  int post = which < 4;
  if (post) /* approve / deny, an id that is not there or a well-formed unknown one */
    aip_buf_printf(&req, "POST /v1/approvals/%s/%s HTTP/1.1\r\n",
                   which < 2 ? id : "ffffffffffffffffffffffffffffffff", which & 1 ? "deny" : "approve");
  else if (which == 4) /* the list, the input as its query */
    aip_buf_printf(&req, "GET /v1/approvals?%.*s HTTP/1.1\r\n", (int)strcspn(body, " \r\n#"), body);
  else /* one record or a sub-path, the input as the rest of the path */
    aip_buf_printf(&req, "GET /v1/approvals/%.*s HTTP/1.1\r\n", (int)strcspn(body, " \r\n?#"), body);
  aip_buf_printf(&req, "Host: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 token, post ? bn : 0);
  if (post) aip_buf_append(&req, body, bn);
  fz_exchange(req.data, req.len, 2000);
  aip_buf_free(&req);
  free(body);
  return 0;
}
