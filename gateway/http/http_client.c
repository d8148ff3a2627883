/* http_client.c -- HTTP/1.1 client with a keep-alive pool (see http_client.h).
 *
 * A connection carries one request at a time. A request that was sent on a reused keep-alive
 * connection and got no byte back before the connection closed is retried once on a fresh
 * connection: the server most likely closed the idle connection just as we reused it, which
 * is the classic keep-alive race, and nothing reached the application.
 */
#include "gateway/http/http_client.h"

#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "gateway/http/stream_write.h"

typedef struct cconn cconn;

struct aip_http_creq {
  aip_http_client *c;
  cconn *conn;
  aip_http_creq_cbs cbs;
  void *data;
  char *wire;
  size_t wire_len;
  uint64_t timeout_ms;
  int reused;    /* sent on a pooled connection */
  int got_bytes; /* any response byte arrived */
  int retried;
  int aborted;   /* a callback asked to stop */
};

struct cconn {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_timer_t timer;
  int writing; /* a queued write is in flight */
  aip_http_client *c;
  cconn *prev, *next;
  llhttp_t parser;
  aip_buf hdr;
  aip_http_creq *req;
  int idle;
  int connected;
  int closing;
  int handles;
  int complete; /* the current response is complete */
  int paused;   /* reading stopped by aip_http_creq_pause */
  char rbuf[65536];
};

struct aip_http_client {
  uv_loop_t *loop;
  struct sockaddr_storage addr;
  char host[80];
  uint64_t connect_timeout_ms;
  llhttp_settings_t settings;
  cconn *conns;
  size_t alive; /* connections not yet freed */
  int closing;
  aip_http_client_stats stats;
};

static void conn_close(cconn *k);
static void conn_send(cconn *k);
static cconn *conn_new(aip_http_client *c);
static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

/* ---- finishing requests ------------------------------------------------------------------ */

static void req_free(aip_http_creq *r) {
  free(r->wire);
  free(r);
}

static void req_done(aip_http_creq *r, int err) {
  if (r->conn) {
    uv_timer_stop(&r->conn->timer);
    r->conn->req = NULL;
  }
  r->conn = NULL;
  if (err) r->c->stats.failures++;
  r->cbs.on_done(r, err, r->data);
  req_free(r);
}

/* The connection failed under `r`: retry once if that is safe (see the file comment). */
static void req_failed(aip_http_creq *r, int err) {
  cconn *k = r->conn;
  if (k) {
    k->req = NULL;
    r->conn = NULL;
    conn_close(k);
  }
  if (r->reused && !r->got_bytes && !r->retried && !r->c->closing) {
    r->retried = 1;
    r->reused = 0;
    cconn *n = conn_new(r->c);
    if (n) {
      n->req = r;
      r->conn = n;
      return; /* sent once connected */
    }
  }
  req_done(r, err);
}

/* ---- parser callbacks --------------------------------------------------------------------- */

static int hdr_add(cconn *k, const char *p, size_t n, int lower) {
  size_t start = k->hdr.len;
  if (k->hdr.len + n > 65536 || aip_buf_append(&k->hdr, p, n)) return -1;
  if (lower)
    for (size_t i = start; i < k->hdr.len; i++)
      if (k->hdr.data[i] >= 'A' && k->hdr.data[i] <= 'Z') k->hdr.data[i] += 32;
  return 0;
}

static int on_hfield(llhttp_t *p, const char *at, size_t n) { return hdr_add(p->data, at, n, 1); }
static int on_hfield_done(llhttp_t *p) { return hdr_add(p->data, ": ", 2, 0); }
static int on_hvalue(llhttp_t *p, const char *at, size_t n) { return hdr_add(p->data, at, n, 0); }
static int on_hvalue_done(llhttp_t *p) { return hdr_add(p->data, "\r\n", 2, 0); }

static int on_headers_done(llhttp_t *p) {
  cconn *k = p->data;
  aip_http_creq *r = k->req;
  if (!r) return -1;
  if (r->cbs.on_headers && r->cbs.on_headers(r, p->status_code, k->hdr.data ? k->hdr.data : "",
                                             k->hdr.len, r->data)) {
    r->aborted = 1;
    return -1;
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  cconn *k = p->data;
  aip_http_creq *r = k->req;
  if (!r) return -1;
  if (r->cbs.on_body && r->cbs.on_body(r, at, n, r->data)) {
    r->aborted = 1;
    return -1;
  }
  return 0;
}

static int on_complete(llhttp_t *p) {
  cconn *k = p->data;
  k->complete = 1;
  return HPE_PAUSED; /* one response per request: stop here */
}

/* ---- connection -------------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
  cconn *k = h->data;
  if (--k->handles > 0) return;
  aip_http_client *c = k->c;
  aip_buf_free(&k->hdr);
  free(k);
  if (--c->alive == 0 && c->closing) free(c);
}

static void conn_close(cconn *k) {
  if (k->closing) return;
  k->closing = 1;
  aip_http_client *c = k->c;
  if (k->prev) k->prev->next = k->next;
  else c->conns = k->next;
  if (k->next) k->next->prev = k->prev;
  aip_http_creq *r = k->req;
  k->req = NULL;
  if (r) {
    r->conn = NULL;
    req_failed(r, -ECONNRESET);
  }
  uv_close((uv_handle_t *)&k->tcp, on_closed);
  uv_close((uv_handle_t *)&k->timer, on_closed);
}

static void on_timer(uv_timer_t *t) {
  cconn *k = t->data;
  aip_http_creq *r = k->req;
  if (r) {
    k->req = NULL;
    r->conn = NULL;
    conn_close(k);
    req_done(r, -ETIMEDOUT);
  } else {
    conn_close(k); /* idle too long, or connect timed out with no request */
  }
}

/* A response is complete: the connection goes back to the pool (before the caller hears of
 * it, so a request made from on_done reuses it) unless the server wants it closed. */
static void response_complete(cconn *k) {
  aip_http_creq *r = k->req;
  int keep = llhttp_should_keep_alive(&k->parser) && !k->c->closing;
  k->complete = 0;
  aip_buf_reset(&k->hdr);
  llhttp_init(&k->parser, HTTP_RESPONSE, &k->c->settings);
  k->parser.data = k;
  k->req = NULL;
  uv_timer_stop(&k->timer);
  if (keep) {
    k->idle = 1;
    /* a pooled connection always reads: that is how it notices the server closing it */
    if (k->paused) {
      k->paused = 0;
      uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
    }
    /* an idle pooled connection is closed after a while, before the server does it */
    uv_timer_start(&k->timer, on_timer, 30000, 0);
  }
  if (r) {
    r->conn = NULL;
    r->cbs.on_done(r, 0, r->data);
    req_free(r);
  }
  if (!keep) conn_close(k);
}

void aip_http_creq_pause(aip_http_creq *r, int pause) {
  cconn *k = r->conn;
  if (!k || k->closing || !k->connected || k->paused == pause) return;
  k->paused = pause;
  if (pause) uv_read_stop((uv_stream_t *)&k->tcp);
  else uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
}

void aip_http_creq_set_timeout(aip_http_creq *r, uint64_t timeout_ms) {
  r->timeout_ms = timeout_ms;
  if (!r->conn) return;
  if (timeout_ms) uv_timer_start(&r->conn->timer, on_timer, timeout_ms, 0);
  else uv_timer_stop(&r->conn->timer);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  cconn *k = h->data;
  *b = uv_buf_init(k->rbuf, sizeof(k->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  cconn *k = s->data;
  if (n < 0) {
    if (k->req && llhttp_finish(&k->parser) == HPE_OK && k->complete) {
      response_complete(k);
      return;
    }
    conn_close(k);
    return;
  }
  if (!k->req) { /* bytes on an idle connection: the server is confused; drop it */
    conn_close(k);
    return;
  }
  k->req->got_bytes = 1;
  llhttp_errno_t e = llhttp_execute(&k->parser, b->base, (size_t)n);
  if (e == HPE_PAUSED && k->complete) {
    response_complete(k);
  } else if (e != HPE_OK) {
    aip_http_creq *r = k->req;
    k->req = NULL;
    r->conn = NULL;
    conn_close(k);
    req_done(r, r->aborted ? -ECANCELED : -EPROTO);
  }
}

static void on_written(void *arg, int status) {
  cconn *k = arg;
  k->writing = 0;
  if (status < 0 && k->req && !k->closing) req_failed(k->req, status);
}

static void conn_send(cconn *k) {
  aip_http_creq *r = k->req;
  k->idle = 0;
  if (r->timeout_ms) uv_timer_start(&k->timer, on_timer, r->timeout_ms, 0);
  else uv_timer_stop(&k->timer);
  /* the wire bytes are copied: a reply (say an early 413) may end the request mid-write */
  char *copy = malloc(r->wire_len);
  if (!copy) {
    req_failed(r, -ENOMEM);
    return;
  }
  memcpy(copy, r->wire, r->wire_len);
  int rc = aip_stream_write((uv_stream_t *)&k->tcp, copy, r->wire_len, on_written, k);
  if (rc < 0) req_failed(r, rc);
  else k->writing = rc;
}

static void on_connect(uv_connect_t *cr, int status) {
  cconn *k = cr->data;
  if (k->closing) return;
  if (status < 0) {
    aip_http_creq *r = k->req;
    k->req = NULL;
    conn_close(k);
    if (r) {
      r->conn = NULL;
      req_done(r, status);
    }
    return;
  }
  k->connected = 1;
  uv_tcp_nodelay(&k->tcp, 1);
  uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
  if (k->req) conn_send(k);
}

static cconn *conn_new(aip_http_client *c) {
  cconn *k = calloc(1, sizeof(*k));
  if (!k) return NULL;
  k->c = c;
  aip_buf_init(&k->hdr);
  uv_tcp_init(c->loop, &k->tcp);
  uv_timer_init(c->loop, &k->timer);
  k->tcp.data = k->timer.data = k->connect.data = k;
  k->handles = 2;
  c->alive++;
  llhttp_init(&k->parser, HTTP_RESPONSE, &c->settings);
  k->parser.data = k;
  k->next = c->conns;
  if (c->conns) c->conns->prev = k;
  c->conns = k;
  c->stats.connects++;
  uv_timer_start(&k->timer, on_timer, c->connect_timeout_ms, 0);
  int err = uv_tcp_connect(&k->connect, &k->tcp, (struct sockaddr *)&c->addr, on_connect);
  if (err) {
    /* report from the timer, never from inside aip_http_client_request */
    uv_timer_start(&k->timer, on_timer, 0, 0);
  }
  return k;
}

/* ---- public API -------------------------------------------------------------------------- */

aip_http_client *aip_http_client_new(uv_loop_t *loop, const char *host, int port,
                                     uint64_t connect_timeout_ms) {
  aip_http_client *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  int err = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&c->addr)
                              : uv_ip4_addr(host, port, (struct sockaddr_in *)&c->addr);
  if (err) {
    free(c);
    return NULL;
  }
  snprintf(c->host, sizeof(c->host), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
  c->loop = loop;
  c->connect_timeout_ms = connect_timeout_ms;
  llhttp_settings_init(&c->settings);
  c->settings.on_header_field = on_hfield;
  c->settings.on_header_field_complete = on_hfield_done;
  c->settings.on_header_value = on_hvalue;
  c->settings.on_header_value_complete = on_hvalue_done;
  c->settings.on_headers_complete = on_headers_done;
  c->settings.on_body = on_body;
  c->settings.on_message_complete = on_complete;
  return c;
}

void aip_http_client_close(aip_http_client *c) {
  c->closing = 1;
  while (c->conns) conn_close(c->conns);
  if (c->alive == 0) free(c);
}

const aip_http_client_stats *aip_http_client_stats_of(const aip_http_client *c) {
  return &c->stats;
}

int aip_http_client_request(aip_http_client *c, const char *method, const char *path,
                            const char *headers, const void *body, size_t len,
                            uint64_t timeout_ms, const aip_http_creq_cbs *cbs, void *data,
                            aip_http_creq **out) {
  if (c->closing) return -ESHUTDOWN;
  aip_http_creq *r = calloc(1, sizeof(*r));
  if (!r) return -ENOMEM;
  aip_buf w;
  aip_buf_init(&w);
  int err = aip_buf_printf(&w, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n%s\r\n",
                           method, path, c->host, len, headers ? headers : "");
  if (!err && len) err = aip_buf_append(&w, body, len);
  if (err) {
    aip_buf_free(&w);
    free(r);
    return err;
  }
  r->wire = aip_buf_steal(&w, &r->wire_len);
  r->c = c;
  r->cbs = *cbs;
  r->data = data;
  r->timeout_ms = timeout_ms;
  cconn *k = c->conns;
  while (k && !(k->idle && k->connected && !k->req)) k = k->next;
  if (k) {
    c->stats.reuses++;
    r->reused = 1;
    k->req = r;
    r->conn = k;
    conn_send(k);
  } else {
    k = conn_new(c);
    if (!k) {
      req_free(r);
      return -ENOMEM;
    }
    k->req = r;
    r->conn = k;
  }
  if (out) *out = r;
  return 0;
}

void aip_http_creq_cancel(aip_http_creq *r) {
  cconn *k = r->conn;
  if (k) {
    k->req = NULL;
    r->conn = NULL;
    conn_close(k);
  }
  req_done(r, -ECANCELED);
}

const char *aip_http_header_find(const char *headers, size_t len, const char *lname,
                                 size_t *vlen) {
  size_t nl = strlen(lname);
  const char *p = headers, *end = headers + len;
  while (p < end) {
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (!eol) eol = end;
    if ((size_t)(eol - p) > nl + 1 && memcmp(p, lname, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      const char *ve = eol;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      if (vlen) *vlen = (size_t)(ve - v);
      return v;
    }
    p = eol + 2;
  }
  return NULL;
}
