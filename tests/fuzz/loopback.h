/* loopback.h -- for the HTTP harnesses: a real aip_http_server on 127.0.0.1 (port 0) in this
 * process and a libuv TCP client on the same loop that sends one input's bytes, half-closes,
 * and reads until the server closes (or a deadline passes). One exchange per input. */
#ifndef AIP_FUZZ_LOOPBACK_H
#define AIP_FUZZ_LOOPBACK_H

#include <stdlib.h>
#include <string.h>

#include "gateway/http/http_server.h"

typedef struct fz_client {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t w;
  uv_shutdown_t sd;
  uv_timer_t deadline;
  uv_buf_t send;
  char rbuf[65536];
  size_t got; /* bytes of response read */
  int handles_closed;
} fz_client;

static uv_loop_t *fz_loop;
static aip_http_server *fz_srv;

static void fz_closed(uv_handle_t *h) {
  fz_client *c = h->data;
  c->handles_closed++;
}

static void fz_close(fz_client *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, fz_closed);
  if (!uv_is_closing((uv_handle_t *)&c->deadline)) uv_close((uv_handle_t *)&c->deadline, fz_closed);
}

static void fz_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  fz_client *c = h->data;
  *b = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void fz_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  fz_client *c = s->data;
  if (n < 0) fz_close(c);
  else c->got += (size_t)n;
}

static void fz_written(uv_write_t *w, int status) {}
static void fz_shut(uv_shutdown_t *r, int status) {}

static void fz_connected(uv_connect_t *r, int status) {
  fz_client *c = r->data;
  if (status < 0) return fz_close(c);
  uv_read_start((uv_stream_t *)&c->tcp, fz_alloc, fz_read);
  if (c->send.len) uv_write(&c->w, (uv_stream_t *)&c->tcp, &c->send, 1, fz_written);
  uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, fz_shut); /* EOF after the bytes */
}

static void fz_timeout(uv_timer_t *t) { fz_close(t->data); }

static void fz_start(const aip_http_limits *lim, aip_http_handler h, void *ctx) {
  fz_loop = uv_default_loop();
  if (aip_http_server_start(fz_loop, "127.0.0.1", 0, lim, h, ctx, &fz_srv)) abort();
}

/* Sends `p` on a new connection; returns the number of response bytes read. */
static size_t fz_exchange(const void *p, size_t n, uint64_t ms) {
  fz_client c;
  memset(&c, 0, sizeof(c));
  c.send = uv_buf_init((char *)p, (unsigned)n);
  uv_tcp_init(fz_loop, &c.tcp);
  uv_timer_init(fz_loop, &c.deadline);
  c.tcp.data = c.conn.data = c.deadline.data = &c;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", aip_http_server_port(fz_srv), &a);
  if (uv_tcp_connect(&c.conn, &c.tcp, (struct sockaddr *)&a, fz_connected)) abort();
  uv_timer_start(&c.deadline, fz_timeout, ms, 0);
  while (c.handles_closed < 2) uv_run(fz_loop, UV_RUN_ONCE);
  /* let the server side finish closing that connection before the next input */
  for (int i = 0; i < 4; i++) uv_run(fz_loop, UV_RUN_NOWAIT);
  return c.got;
}

#endif
