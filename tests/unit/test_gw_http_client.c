/* test_gw_http_client.c -- the HTTP client against the project's own HTTP server on the same
 * loop: keep-alive reuse, streamed (chunked) bodies, header lookup, request timeout, refused
 * connections, cancellation. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "gateway/http/http_client.h"
#include "gateway/http/http_server.h"
#include "test.h"

static uv_loop_t *loop;
static aip_http_server *srv;
static aip_http_req *hung;

static void handler(aip_http_req *req, void *ctx) {
  if (strcmp(req->path, "/json") == 0) {
    aip_http_respond(req, 200, "application/json", "X-Test: yes\r\n", req->body.data,
                     req->body.len);
  } else if (strcmp(req->path, "/stream") == 0) {
    aip_http_stream_begin(req, 200, "text/event-stream", NULL);
    aip_http_stream_write(req, "data: 1\n\n", 9);
    aip_http_stream_write(req, "data: 2\n\n", 9);
    aip_http_stream_end(req);
  } else if (strcmp(req->path, "/hang") == 0) {
    hung = req; /* never answered; the client times out */
  } else {
    aip_http_respond(req, 404, "text/plain", NULL, "no", 2);
  }
}

typedef struct result {
  int status;
  int done;
  int err;
  aip_buf body;
  char xtest[16];
} result;

static int on_headers(aip_http_creq *r, int status, const char *h, size_t len, void *data) {
  result *res = data;
  res->status = status;
  size_t n;
  const char *v = aip_http_header_find(h, len, "x-test", &n);
  if (v) snprintf(res->xtest, sizeof(res->xtest), "%.*s", (int)n, v);
  return 0;
}

static int on_body(aip_http_creq *r, const char *p, size_t n, void *data) {
  return aip_buf_append(&((result *)data)->body, p, n);
}

static void on_done(aip_http_creq *r, int err, void *data) {
  result *res = data;
  res->done = 1;
  res->err = err;
  uv_stop(loop);
}

static const aip_http_creq_cbs cbs = {on_headers, on_body, on_done};

static void run_until(result *r) {
  while (!r->done) uv_run(loop, UV_RUN_DEFAULT);
}

int main(void) {
  loop = uv_default_loop();
  aip_http_limits l = {16384, 1 << 20, 5000, 5000, 0};
  CHECK_INT(aip_http_server_start(loop, "127.0.0.1", 0, &l, handler, NULL, &srv), 0);
  aip_http_client *c = aip_http_client_new(loop, "127.0.0.1", aip_http_server_port(srv), 1000);
  CHECK(c != NULL);

  /* a JSON exchange, then a second one on the same (pooled) connection */
  for (int i = 0; i < 2; i++) {
    result r = {0};
    aip_buf_init(&r.body);
    CHECK_INT(aip_http_client_request(c, "POST", "/json", "Content-Type: application/json\r\n",
                                      "{\"x\":1}", 7, 2000, &cbs, &r, NULL), 0);
    CHECK(!r.done); /* never called back from inside the request call */
    run_until(&r);
    CHECK_INT(r.err, 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.xtest, "yes");
    CHECK(r.body.len == 7 && memcmp(r.body.data, "{\"x\":1}", 7) == 0);
    aip_buf_free(&r.body);
  }
  CHECK_INT(aip_http_client_stats_of(c)->connects, 1);
  CHECK_INT(aip_http_client_stats_of(c)->reuses, 1);

  /* a chunked event stream arrives whole */
  result s = {0};
  aip_buf_init(&s.body);
  aip_http_client_request(c, "GET", "/stream", "Accept: text/event-stream\r\n", NULL, 0, 2000, &cbs, &s, NULL);
  run_until(&s);
  CHECK_INT(s.err, 0);
  CHECK(s.body.len == 18 && memcmp(s.body.data, "data: 1\n\ndata: 2\n\n", 18) == 0);
  aip_buf_free(&s.body);

  /* status codes pass through */
  result nf = {0};
  aip_buf_init(&nf.body);
  aip_http_client_request(c, "GET", "/nope", "", NULL, 0, 2000, &cbs, &nf, NULL);
  run_until(&nf);
  CHECK_INT(nf.status, 404);
  aip_buf_free(&nf.body);

  /* a request that gets no answer times out */
  result t = {0};
  aip_buf_init(&t.body);
  uint64_t t0 = uv_now(loop);
  aip_http_client_request(c, "GET", "/hang", "", NULL, 0, 200, &cbs, &t, NULL);
  run_until(&t);
  CHECK_INT(t.err, -ETIMEDOUT);
  CHECK(uv_now(loop) - t0 < 1000);
  aip_buf_free(&t.body);

  /* cancellation reports -ECANCELED at once */
  result k = {0};
  aip_buf_init(&k.body);
  aip_http_creq *kr;
  aip_http_client_request(c, "GET", "/hang", "", NULL, 0, 0, &cbs, &k, &kr);
  uv_run(loop, UV_RUN_NOWAIT);
  aip_http_creq_cancel(kr);
  CHECK(k.done);
  CHECK_INT(k.err, -ECANCELED);
  aip_buf_free(&k.body);
  aip_http_client_close(c);

  /* nobody listening: the connection is refused quickly */
  int port = aip_http_server_port(srv);
  aip_http_server_close(srv);
  uv_run(loop, UV_RUN_NOWAIT);
  aip_http_client *dead = aip_http_client_new(loop, "127.0.0.1", port, 1000);
  result d = {0};
  aip_buf_init(&d.body);
  aip_http_client_request(dead, "GET", "/json", "", NULL, 0, 2000, &cbs, &d, NULL);
  run_until(&d);
  CHECK_INT(d.err, -ECONNREFUSED);
  aip_buf_free(&d.body);
  aip_http_client_close(dead);
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK_INT(uv_loop_close(loop), 0);
  TEST_MAIN_END();
}
