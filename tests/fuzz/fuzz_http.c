/* fuzz_http.c -- the HTTP/1.1 server's request parsing (gateway/http/http_server.c: llhttp callbacks,
 * headers, Content-Length and chunked bodies with trailers, pipelining, limits, keep-alive) on
 * a real aip_http_server: each input is sent as raw bytes on a loopback connection (loopback.h).
 * The handler looks at the request the way the gateway does and answers by its path:
 *   /s...  a chunked stream of the body;  /d...  later, from a timer (the parser stays paused
 *   meanwhile: pipelined requests wait);  anything else: at once, echoing the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loopback.h"

static aip_http_req *held;
static uv_timer_t later;

static void held_aborted(aip_http_req *req, void *data) {
  held = NULL;
  uv_timer_stop(&later);
}

static void answer(aip_http_req *req) {
  size_t n;
  const char *ct = aip_http_header_get(req, "content-type", &n);
  char head[64];
  int hn = snprintf(head, sizeof head, "X-CT-Len: %zu\r\n", ct ? n : 0);
  (void)hn;
  aip_http_respond(req, 200, "text/plain", head, req->body.data ? req->body.data : "", req->body.len);
}

static void on_later(uv_timer_t *t) {
  aip_http_req *req = held;
  held = NULL;
  if (!req) return;
  aip_http_set_abort(req, NULL, NULL);
  answer(req);
}

static void handler(aip_http_req *req, void *ctx) {
  /* every header is reachable by its lower-case name */
  for (int i = 0; i < req->headers_n; i++) {
    const aip_http_header *h = &req->headers[i];
    if (h->name_off + h->name_len > req->hdr.len || h->value_off + h->value_len > req->hdr.len)
      abort();
  }
  if (strlen(req->path) < req->path_len) abort();
  if (req->path[1] == 's') {
    aip_http_stream_begin(req, 200, "text/event-stream", NULL);
    if (aip_http_stream_write(req, "data: ", 6) == 0 &&
        aip_http_stream_write(req, req->body.data ? req->body.data : "", req->body.len) == 0)
      aip_http_stream_end(req);
    return;
  }
  if (req->path[1] == 'd' && !held) {
    held = req;
    aip_http_set_abort(req, held_aborted, NULL);
    uv_timer_start(&later, on_later, 0, 0);
    return;
  }
  answer(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!fz_srv) {
    aip_http_limits lim = {.max_header_bytes = 8192, .max_body = 65536, .header_timeout_ms = 2000,
                           .idle_timeout_ms = 2000, .max_connections = 16};
    fz_start(&lim, handler, NULL);
    uv_timer_init(fz_loop, &later);
  }
  fz_exchange(data, size, 1000);
  return 0;
}
