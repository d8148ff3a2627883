/* test_gw_http.c -- the HTTP/1.1 server: keep-alive, pipelining order, limits, timeouts.
 * A raw libuv TCP client on the same loop sends exact bytes and collects what comes back. */
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "gateway/http/http_server.h"
#include "test.h"

static uv_loop_t *loop;
static aip_http_server *srv;
static aip_http_req *held; /* a request the handler answers later */

/* Handler: /echo answers "path:<path> body:<body>"; /hold keeps the request until released. */
static void handler(aip_http_req *req, void *ctx) {
  if (strcmp(req->path, "/hold") == 0) {
    held = req;
    return;
  }
  char out[512];
  size_t hl = 0, tl = 0;
  const char *h = aip_http_header_get(req, "host", &hl);
  const char *t = aip_http_header_get(req, "x-trailer", &tl);
  int n = snprintf(out, sizeof(out), "path:%s query:%s host:%.*s trailer:%s body:%.*s", req->path,
                   req->query, (int)hl, h ? h : "", t ? "yes" : "no", (int)req->body.len,
                   req->body.len ? req->body.data : "");
  aip_http_respond(req, 200, "text/plain", NULL, out, (size_t)n);
}

typedef struct client {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t w;
  uv_timer_t deadline;
  const char *send;
  aip_buf got;
  int closed;
  int handles_closed;
} client;

/* The server's listener keeps the loop alive, so an exchange ends with uv_stop. */
static void on_client_closed(uv_handle_t *h) {
  client *c = h->data;
  if (++c->handles_closed == 2) uv_stop(loop);
}

static void client_close(client *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_client_closed);
  if (!uv_is_closing((uv_handle_t *)&c->deadline)) uv_close((uv_handle_t *)&c->deadline, on_client_closed);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  client *c = h->data;
  aip_buf_reserve(&c->got, 65536);
  *b = uv_buf_init(c->got.data + c->got.len, 65536);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  client *c = s->data;
  if (n < 0) {
    c->closed = 1;
    client_close(c);
    return;
  }
  c->got.len += (size_t)n;
  c->got.data[c->got.len] = 0;
}

static void on_written(uv_write_t *w, int status) {}

static void on_connect(uv_connect_t *r, int status) {
  client *c = r->data;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (c->send && *c->send) {
    uv_buf_t b = uv_buf_init((char *)c->send, (unsigned)strlen(c->send));
    uv_write(&c->w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  }
}

static void on_deadline(uv_timer_t *t) { client_close(t->data); }

/* Sends `req` and collects the answer until the server closes or `ms` pass. */
static void exchange(client *c, const char *req, uint64_t ms) {
  memset(c, 0, sizeof(*c));
  aip_buf_init(&c->got);
  c->send = req;
  uv_tcp_init(loop, &c->tcp);
  uv_timer_init(loop, &c->deadline);
  c->tcp.data = c->conn.data = c->deadline.data = c;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", aip_http_server_port(srv), &a);
  uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&a, on_connect);
  uv_timer_start(&c->deadline, on_deadline, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
  return n;
}

static void test_keepalive_pipelining(void) {
  client c;
  exchange(&c,
           "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
           "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
           "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
           2000);
  CHECK_INT(count(c.got.data, "HTTP/1.1 200 OK"), 3);
  const char *a = strstr(c.got.data, "path:/a"), *b = strstr(c.got.data, "path:/b query: host:x trailer:no body:hello"),
             *cc = strstr(c.got.data, "path:/c");
  CHECK(a && b && cc && a < b && b < cc); /* answered in order on one connection */
  CHECK(c.closed);                       /* Connection: close honoured */
  aip_buf_free(&c.got);
}

static void test_chunked_body(void) {
  client c;
  exchange(&c,
           "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
           2000);
  CHECK(strstr(c.got.data, "body:abcde") != NULL);
  aip_buf_free(&c.got);
}

static void test_body_limit(void) {
  client c;
  exchange(&c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n", 2000);
  CHECK(strncmp(c.got.data, "HTTP/1.1 413 ", 13) == 0);
  CHECK(c.closed);
  aip_buf_free(&c.got);
  /* chunked bodies have no length up front: the limit applies as bytes arrive */
  char big[1400];
  memset(big, 'y', sizeof(big));
  char req[2000];
  snprintf(req, sizeof(req),
           "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%.*s\r\n0\r\n\r\n",
           (unsigned)sizeof(big), (int)sizeof(big), big);
  exchange(&c, req, 2000);
  CHECK(strncmp(c.got.data, "HTTP/1.1 413 ", 13) == 0);
  aip_buf_free(&c.got);
}

static void test_header_limit(void) {
  char req[4096];
  char pad[2100];
  memset(pad, 'h', sizeof(pad) - 1);
  pad[sizeof(pad) - 1] = 0;
  snprintf(req, sizeof(req), "GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", pad);
  client c;
  exchange(&c, req, 2000);
  CHECK(strncmp(c.got.data, "HTTP/1.1 431 ", 13) == 0);
  aip_buf_free(&c.got);
}

static void test_malformed(void) {
  client c;
  exchange(&c, "GARBAGE\r\n\r\n", 2000);
  CHECK(strncmp(c.got.data, "HTTP/1.1 400 ", 13) == 0);
  CHECK(c.closed);
  aip_buf_free(&c.got);
}

static void test_header_timeout(void) {
  client c;
  exchange(&c, "GET /slow HTTP/1.1\r\nHost: x\r\n", 3000); /* headers never finish */
  CHECK(strncmp(c.got.data, "HTTP/1.1 408 ", 13) == 0);
  CHECK(c.closed);
  aip_buf_free(&c.got);
}

static void test_idle_timeout(void) {
  client c;
  uint64_t t0 = uv_now(loop);
  exchange(&c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 3000);
  CHECK(strstr(c.got.data, "path:/a") != NULL);
  CHECK(c.closed); /* the idle keep-alive connection was closed by the server */
  CHECK(uv_now(loop) - t0 < 2500);
  aip_buf_free(&c.got);
}

/* Trailer fields arrive after the headers were complete and the handler's pointers (path,
 * query) were set into the header buffer: they must neither move that buffer (issue 11: a
 * use-after-free before authentication) nor become headers. They still count against the
 * header limit. */
static void test_trailers(void) {
  char pad[700];
  memset(pad, 't', sizeof(pad) - 1);
  pad[500] = 0;
  pad[sizeof(pad) - 1] = 0;
  char req[4096];
  snprintf(req, sizeof(req),
           "POST /tr?q=1 HTTP/1.1\r\nHost: hostvalue\r\nTransfer-Encoding: chunked\r\n\r\n"
           "3\r\nabc\r\n0\r\nX-Trailer: %s\r\nX-Other: %s\r\n\r\n"
           "GET /next?z HTTP/1.1\r\nHost: h2\r\nConnection: close\r\n\r\n",
           pad, pad + 300);
  client c;
  exchange(&c, req, 2000);
  CHECK(strstr(c.got.data, "path:/tr query:q=1 host:hostvalue trailer:no body:abc") != NULL);
  CHECK(strstr(c.got.data, "path:/next query:z host:h2 trailer:no") != NULL);
  aip_buf_free(&c.got);
  /* many small trailer fields (each one a callback that could grow the buffer) */
  char many[4096] = "POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    "Connection: close\r\n\r\n1\r\nz\r\n0\r\n";
  for (int i = 0; i < 30; i++) strcat(many, "X-Trailer: vvvvvvvvvv\r\n");
  strcat(many, "\r\n");
  exchange(&c, many, 2000);
  CHECK(strstr(c.got.data, "path:/m query: host:x trailer:no body:z") != NULL);
  aip_buf_free(&c.got);
  /* trailers beyond max_header_bytes: 431, as for headers */
  char big[4096];
  memset(pad, 'u', sizeof(pad) - 1);
  pad[sizeof(pad) - 1] = 0;
  snprintf(big, sizeof(big),
           "POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           "1\r\nz\r\n0\r\nX-A: %s\r\nX-B: %s\r\n\r\n",
           pad, pad);
  exchange(&c, big, 2000);
  CHECK(strncmp(c.got.data, "HTTP/1.1 431 ", 13) == 0);
  CHECK(c.closed);
  aip_buf_free(&c.got);
}

/* A folded (obs-fold) header line and a long header value keep path and query intact. */
static void test_long_and_folded_headers(void) {
  client c;
  exchange(&c, "GET /f?y HTTP/1.1\r\nX-F: a\r\n bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n"
               "Host: fh\r\nConnection: close\r\n\r\n", 2000);
  CHECK(strstr(c.got.data, "path:/f query:y host:fh") != NULL);
  aip_buf_free(&c.got);
  char pad[900];
  memset(pad, 'l', sizeof(pad) - 1);
  pad[sizeof(pad) - 1] = 0;
  char req[2048];
  snprintf(req, sizeof(req), "GET /long?a=b HTTP/1.1\r\nX-L: %s\r\nHost: hh\r\nConnection: close\r\n\r\n", pad);
  exchange(&c, req, 2000);
  CHECK(strstr(c.got.data, "path:/long query:a=b host:hh") != NULL);
  aip_buf_free(&c.got);
}

/* A second Host (or Authorization, Origin, ...) is refused: a proxy could read the other one. */
static void test_duplicate_singletons(void) {
  const char *reqs[] = {
      "GET /d HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET /d HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\nauthorization: Bearer y\r\n\r\n",
      "GET /d HTTP/1.1\r\nHost: a\r\nOrigin: http://127.0.0.1\r\nOrigin: http://evil\r\n\r\n",
      "GET /d HTTP/1.1\r\nHost: a\r\nMcp-Session-Id: 1\r\nMcp-Session-Id: 2\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
    client c;
    exchange(&c, reqs[i], 2000);
    CHECK(strncmp(c.got.data, "HTTP/1.1 400 ", 13) == 0);
    CHECK(c.closed);
    aip_buf_free(&c.got);
  }
  client c; /* repeatable list headers are fine */
  exchange(&c, "GET /d HTTP/1.1\r\nHost: a\r\nAccept: a\r\nAccept: b\r\nConnection: close\r\n\r\n", 2000);
  CHECK(strstr(c.got.data, "path:/d") != NULL);
  aip_buf_free(&c.got);
}

/* A pipelined request behind a pending one waits, then is answered after it. */
static void on_release(uv_timer_t *t) {
  if (held) aip_http_respond(held, 200, "text/plain", NULL, "released", 8);
  held = NULL;
  uv_close((uv_handle_t *)t, NULL);
}

static void test_pending_then_pipelined(void) {
  uv_timer_t rel;
  uv_timer_init(loop, &rel);
  uv_timer_start(&rel, on_release, 200, 0);
  client c;
  exchange(&c,
           "GET /hold HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
           2000);
  const char *r = strstr(c.got.data, "released"), *a = strstr(c.got.data, "path:/after");
  CHECK(r && a && r < a);
  aip_buf_free(&c.got);
}

/* Backpressure: a paused server reads no request (and no timeout closes a connection while
 * paused, although the pause outlasts the 1 s idle and header timeouts); resuming answers the
 * waiting requests in order. */
static void on_resume(uv_timer_t *t) {
  aip_http_server_pause(srv, 0);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_pause_resume(void) {
  uv_timer_t rel;
  uv_timer_init(loop, &rel);
  aip_http_server_pause(srv, 1);
  uv_timer_start(&rel, on_resume, 1500, 0);
  client c;
  uint64_t t0 = uv_now(loop);
  exchange(&c,
           "GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
           4000);
  const char *a = strstr(c.got.data, "path:/p1"), *b = strstr(c.got.data, "path:/p2");
  CHECK(a && b && a < b);
  CHECK(uv_now(loop) - t0 >= 1400); /* nothing was answered while paused */
  CHECK(c.closed);
  aip_buf_free(&c.got);
}

/* A held request answered while paused: the pipelined one behind it waits for the resume, and
 * no idle timeout closes the connection in between (the pause outlasts it). */
static void on_release_paused(uv_timer_t *t) {
  aip_http_server_pause(srv, 1);
  if (held) aip_http_respond(held, 200, "text/plain", NULL, "released", 8);
  held = NULL;
  uv_close((uv_handle_t *)t, NULL);
}

static void test_answer_while_paused(void) {
  uv_timer_t rel, res;
  uv_timer_init(loop, &rel);
  uv_timer_init(loop, &res);
  uv_timer_start(&rel, on_release_paused, 200, 0);
  uv_timer_start(&res, on_resume, 1700, 0);
  client c;
  exchange(&c,
           "GET /hold HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
           4000);
  const char *r = strstr(c.got.data, "released"), *a = strstr(c.got.data, "path:/after");
  CHECK(r && a && r < a);
  aip_buf_free(&c.got);
}

/* The client disconnects while its request is held: the abort callback runs. */
static int aborted;
static void on_abort(aip_http_req *req, void *data) { aborted = 1; held = NULL; }
static void hold_with_abort(aip_http_req *req, void *ctx) {
  handler(req, ctx);
  if (held) aip_http_set_abort(held, on_abort, NULL);
}

static void test_abort(void) {
  aip_http_server_close(srv);
  aip_http_limits l = {1024, 1024, 1000, 1000, 0};
  aip_http_server_start(loop, "127.0.0.1", 0, &l, hold_with_abort, NULL, &srv);
  client c;
  exchange(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", 300); /* client gives up after 300 ms */
  uv_run(loop, UV_RUN_NOWAIT);
  CHECK(aborted);
  CHECK(held == NULL);
  aip_buf_free(&c.got);
}

int main(void) {
  loop = uv_default_loop();
  aip_http_limits l = {1024 /* header bytes */, 1024 /* body */, 1000 /* header timeout */,
                       1000 /* idle */, 0};
  CHECK_INT(aip_http_server_start(loop, "127.0.0.1", 0, &l, handler, NULL, &srv), 0);
  CHECK(aip_http_server_port(srv) > 0);
  test_keepalive_pipelining();
  test_chunked_body();
  test_body_limit();
  test_header_limit();
  test_malformed();
  test_header_timeout();
  test_idle_timeout();
  test_pending_then_pipelined();
  test_trailers();
  test_long_and_folded_headers();
  test_pause_resume();
  test_answer_while_paused();
  test_duplicate_singletons();
  test_abort();
  aip_http_server_close(srv);
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK_INT(uv_loop_close(loop), 0);
  TEST_MAIN_END();
}
