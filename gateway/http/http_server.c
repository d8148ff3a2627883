/* http_server.c -- HTTP/1.1 server: libuv for the sockets, llhttp for the parsing.
 *
 * A connection reads into one growing input buffer (llhttp parses it in place) and copies what a
 * request needs (url, headers, body) into the request, so the input buffer can move. The
 * request's own header buffer `hdr` is frozen once the headers are complete: the handler's
 * `path` and `query` point into it, so nothing may grow it afterwards. Trailer fields of a
 * chunked body (the only header bytes that come later) are counted against max_header_bytes
 * and dropped, never stored: they can neither move `hdr` nor pass for a header the handler
 * checks (a trailing Authorization). Header entries hold offsets, not pointers. When a
 * request is complete the parser is paused (HPE_PAUSED) and the handler runs; bytes of any
 * pipelined next request wait in the buffer until the response is finished. That is the whole
 * pipelining story: in-order answers without a response queue.
 */
#include "gateway/http/http_server.h"

#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/obs/log.h"
#include "gateway/http/stream_write.h"

#define READ_CHUNK 65536
/* Bytes a client may pipeline while a request is being handled before we stop reading. */
#define MAX_PIPELINED_BYTES (1u << 20)
/* A client that lets this much response data pile up is too slow; it gets disconnected. */
#define MAX_WRITE_QUEUE (32u << 20)

enum conn_state { CONN_IDLE, CONN_READING, CONN_HANDLING };

struct aip_http_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int listening;
  int draining; /* stopped listening: every response ends its connection */
  int paused;   /* backpressure: read nothing, start no request (aip_http_server_pause) */
  int closing;
  aip_http_limits limits;
  aip_http_handler handler;
  void *ctx;
  llhttp_settings_t settings;
  aip_http_conn *conns; /* doubly linked list of open connections */
  size_t conns_alive;   /* connections not yet freed (closing ones included) */
  aip_http_stats stats;
  int port;
  int refused_logged;
  uint64_t refused_warn_ms;
};

struct aip_http_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  aip_http_server *srv;
  aip_http_conn *prev, *next;
  llhttp_t parser;
  aip_buf in;
  size_t in_pos;
  enum conn_state state;
  aip_http_req *req;
  int keep_alive;
  int http10;
  int err_status;   /* status to answer a protocol error with (400, 408, 413, 431) */
  int in_process;   /* conn_process is on the stack */
  int deferred;     /* the timer fires at once to parse pipelined input */
  int closing;
  int close_after_write;
  int reading;
  int handles_open;
  size_t writes_pending;
  int header_value_open; /* the last header callback was a value */
  int in_trailers;       /* the headers are complete: header callbacks now carry trailers */
  size_t trailer_bytes;  /* trailer bytes seen (they count against max_header_bytes) */
};

static void conn_close(aip_http_conn *c);
static void conn_process(aip_http_conn *c);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* ---- writing ---------------------------------------------------------------------------- */

static void on_write_done(void *arg, int status) {
  aip_http_conn *c = arg;
  c->writes_pending--;
  if (status < 0 && !c->closing) {
    conn_close(c);
    return;
  }
  if (c->close_after_write && c->writes_pending == 0) {
    conn_close(c);
    return;
  }
  aip_http_req *r = c->req;
  if (r && r->drain_cb && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= r->drain_low) {
    void (*cb)(aip_http_req *, void *) = r->drain_cb;
    r->drain_cb = NULL;
    cb(r, r->drain_data);
  }
}

/* Takes ownership of `data` (malloc'd). */
static int conn_write(aip_http_conn *c, char *data, size_t len) {
  if (c->closing) {
    free(data);
    return -EPIPE;
  }
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > MAX_WRITE_QUEUE) {
    free(data);
    aip_warn("http: client too slow, %zu bytes queued; closing", (size_t)MAX_WRITE_QUEUE);
    conn_close(c);
    return -ENOBUFS;
  }
  int rc = aip_stream_write((uv_stream_t *)&c->tcp, data, len, on_write_done, c);
  if (rc < 0) {
    conn_close(c);
    return rc;
  }
  c->writes_pending += rc;
  return 0;
}

const char *aip_http_status_text(int status) {
  switch (status) {
  case 200: return "OK";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Unknown";
  }
}

static void count_status(aip_http_conn *c, int status) {
  int cls = status / 100;
  if (cls >= 0 && cls < 6) c->srv->stats.responses_by_class[cls]++;
}

/* Builds "HTTP/1.1 <status>..." plus headers into `b`. */
static int head_printf(aip_buf *b, aip_http_conn *c, int status, const char *ctype,
                       const char *extra) {
  int err = aip_buf_printf(b, "HTTP/1.1 %d %s\r\n", status, aip_http_status_text(status));
  if (!err && ctype) err = aip_buf_printf(b, "Content-Type: %s\r\n", ctype);
  if (!err && extra) err = aip_buf_puts(b, extra);
  /* Draining: the answer ends the connection, unless requests already wait behind it (they are
   * answered too, by the handler's refusal, and the last of them closes). */
  if (c->srv->draining && c->in_pos >= c->in.len) c->keep_alive = 0;
  if (!err && !c->keep_alive) err = aip_buf_puts(b, "Connection: close\r\n");
  return err;
}

/* Writes what `b` holds, or closes the connection when building it failed (`err`). */
static int send_buf(aip_http_conn *c, aip_buf *b, int err) {
  if (err) {
    aip_buf_free(b);
    conn_close(c);
    return err;
  }
  size_t n;
  char *data = aip_buf_steal(b, &n);
  return conn_write(c, data, n);
}

/* ---- request lifecycle ------------------------------------------------------------------ */

static void req_free(aip_http_req *r) {
  if (!r) return;
  aip_buf_free(&r->hdr);
  aip_buf_free(&r->body);
  free(r);
}

static void timer_arm(aip_http_conn *c, uint64_t ms);

/* The response is complete: free the request and go on with the connection. */
static void req_finish(aip_http_conn *c) {
  req_free(c->req);
  c->req = NULL;
  if (!c->keep_alive || c->srv->closing) {
    c->close_after_write = 1;
    if (c->writes_pending == 0) conn_close(c);
    return;
  }
  c->state = CONN_IDLE;
  llhttp_resume(&c->parser);
  if (!c->in_process && c->in_pos < c->in.len) {
    /* A pipelined request is waiting. Run it on the next loop turn, not from inside the
     * handler that just answered: handlers need not be reentrant. */
    c->deferred = 1;
    timer_arm(c, 0);
    return;
  }
  timer_arm(c, c->srv->limits.idle_timeout_ms);
}

void aip_http_respond(aip_http_req *req, int status, const char *content_type,
                      const char *extra_headers, const void *body, size_t len) {
  aip_http_conn *c = req->conn;
  aip_buf b;
  aip_buf_init(&b);
  int err = head_printf(&b, c, status, content_type, extra_headers);
  if (!err) err = aip_buf_printf(&b, "Content-Length: %zu\r\n\r\n", len);
  if (!err && len) err = aip_buf_append(&b, body, len);
  req->responded = 1;
  count_status(c, status);
  if (send_buf(c, &b, err) == 0 && !c->closing) req_finish(c);
}

void aip_http_stream_begin(aip_http_req *req, int status, const char *content_type,
                           const char *extra_headers) {
  aip_http_conn *c = req->conn;
  aip_buf b;
  aip_buf_init(&b);
  /* HTTP/1.0 has no chunked encoding: the stream then ends by closing the connection. */
  if (c->http10) c->keep_alive = 0;
  int err = head_printf(&b, c, status, content_type, extra_headers);
  if (!err) err = aip_buf_puts(&b, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
  if (!err && !c->http10) err = aip_buf_puts(&b, "Transfer-Encoding: chunked\r\n");
  if (!err) err = aip_buf_puts(&b, "\r\n");
  req->streaming = 1;
  count_status(c, status);
  send_buf(c, &b, err);
}

int aip_http_stream_write(aip_http_req *req, const void *p, size_t n) {
  aip_http_conn *c = req->conn;
  if (c->closing) return -EPIPE;
  aip_buf b;
  aip_buf_init(&b);
  int err = c->http10 ? 0 : aip_buf_printf(&b, "%zx\r\n", n);
  if (!err) err = aip_buf_append(&b, p, n);
  if (!err && !c->http10) err = aip_buf_puts(&b, "\r\n");
  if (err) {
    aip_buf_free(&b);
    return err;
  }
  size_t len;
  char *data = aip_buf_steal(&b, &len);
  return conn_write(c, data, len);
}

void aip_http_stream_end(aip_http_req *req) {
  aip_http_conn *c = req->conn;
  req->responded = 1;
  if (!c->http10 && !c->closing) {
    char *data = strdup("0\r\n\r\n");
    if (!data || conn_write(c, data, 5) != 0) return;
  }
  if (!c->closing) req_finish(c);
}

void aip_http_set_abort(aip_http_req *req, aip_http_abort_cb cb, void *data) {
  req->abort_cb = cb;
  req->abort_data = data;
}

size_t aip_http_queued(const aip_http_req *req) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&req->conn->tcp);
}

void aip_http_on_drain(aip_http_req *req, size_t low, void (*cb)(aip_http_req *req, void *data),
                       void *data) {
  req->drain_cb = cb;
  req->drain_data = data;
  req->drain_low = low;
}

void aip_http_stream_abort(aip_http_req *req) {
  req->abort_cb = NULL;
  req->drain_cb = NULL;
  conn_close(req->conn);
}

const char *aip_http_header_get(const aip_http_req *req, const char *lname, size_t *len) {
  size_t nl = strlen(lname);
  for (int i = 0; i < req->headers_n; i++) {
    const aip_http_header *h = &req->headers[i];
    if (h->name_len == nl && memcmp(req->hdr.data + h->name_off, lname, nl) == 0) {
      if (len) *len = h->value_len;
      return req->hdr.data + h->value_off;
    }
  }
  return NULL;
}

void aip_http_peer(const aip_http_req *req, char *out, size_t n) {
  struct sockaddr_storage sa;
  int len = sizeof(sa);
  char ip[64];
  snprintf(out, n, "?");
  if (uv_tcp_getpeername(&req->conn->tcp, (struct sockaddr *)&sa, &len) != 0) return;
  if (sa.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&sa;
    if (uv_ip6_name(a, ip, sizeof(ip)) == 0) snprintf(out, n, "[%s]:%d", ip, ntohs(a->sin6_port));
  } else if (sa.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&sa;
    if (uv_ip4_name(a, ip, sizeof(ip)) == 0) snprintf(out, n, "%s:%d", ip, ntohs(a->sin_port));
  }
}

/* ---- parsing callbacks ------------------------------------------------------------------ */

static aip_http_conn *conn_of(llhttp_t *p) { return p->data; }

/* Every byte of url and headers counts against max_header_bytes. */
static int hdr_append(aip_http_conn *c, const char *at, size_t len, int lower) {
  aip_http_req *r = c->req;
  if (c->in_trailers) { /* frozen: path and query point into it (see the top of the file) */
    c->err_status = 500;
    return -1;
  }
  if (r->hdr.len + len > c->srv->limits.max_header_bytes) {
    c->err_status = 431;
    return -1;
  }
  size_t start = r->hdr.len;
  if (aip_buf_append(&r->hdr, at, len)) {
    c->err_status = 500;
    return -1;
  }
  if (lower)
    for (size_t i = start; i < r->hdr.len; i++)
      if (r->hdr.data[i] >= 'A' && r->hdr.data[i] <= 'Z') r->hdr.data[i] += 32;
  return 0;
}

static int on_message_begin(llhttp_t *p) {
  aip_http_conn *c = conn_of(p);
  c->req = calloc(1, sizeof(*c->req));
  if (!c->req) return -1;
  c->req->conn = c;
  aip_buf_init(&c->req->hdr);
  aip_buf_init(&c->req->body);
  c->state = CONN_READING;
  c->header_value_open = 0;
  c->in_trailers = 0;
  c->trailer_bytes = 0;
  timer_arm(c, c->srv->limits.header_timeout_ms);
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  return hdr_append(conn_of(p), at, len, 0);
}

static int on_url_complete(llhttp_t *p) { return hdr_append(conn_of(p), "", 1, 0); }

/* A trailer byte: counted, never stored. */
static int trailer_count(aip_http_conn *c, size_t len) {
  c->trailer_bytes += len;
  if (c->req->hdr.len + c->trailer_bytes > c->srv->limits.max_header_bytes) {
    c->err_status = 431;
    return -1;
  }
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  aip_http_conn *c = conn_of(p);
  aip_http_req *r = c->req;
  if (c->in_trailers) return trailer_count(c, len);
  if (c->header_value_open || r->headers_n == 0 ||
      r->headers[r->headers_n - 1].value_off != 0) {
    if (r->headers_n == AIP_HTTP_MAX_HEADERS) {
      c->err_status = 431;
      return -1;
    }
    c->header_value_open = 0;
    aip_http_header *h = &r->headers[r->headers_n++];
    memset(h, 0, sizeof(*h));
    h->name_off = (uint32_t)r->hdr.len;
  }
  return hdr_append(c, at, len, 1);
}

static int on_header_field_complete(llhttp_t *p) {
  aip_http_conn *c = conn_of(p);
  if (c->in_trailers) return 0;
  aip_http_header *h = &c->req->headers[c->req->headers_n - 1];
  h->name_len = (uint32_t)(c->req->hdr.len - h->name_off);
  if (hdr_append(c, "", 1, 0)) return -1;
  h->value_off = (uint32_t)c->req->hdr.len;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  aip_http_conn *c = conn_of(p);
  if (c->in_trailers) return trailer_count(c, len);
  c->header_value_open = 1;
  return hdr_append(c, at, len, 0);
}

static int on_header_value_complete(llhttp_t *p) {
  aip_http_conn *c = conn_of(p);
  if (c->in_trailers) return 0;
  aip_http_header *h = &c->req->headers[c->req->headers_n - 1];
  h->value_len = (uint32_t)(c->req->hdr.len - h->value_off);
  /* trailing optional white space is not part of the value */
  while (h->value_len && (c->req->hdr.data[h->value_off + h->value_len - 1] == ' ' ||
                          c->req->hdr.data[h->value_off + h->value_len - 1] == '\t'))
    h->value_len--;
  c->header_value_open = 1;
  return hdr_append(c, "", 1, 0);
}

/* Headers that name one thing: a second copy is refused (RFC 9112 3.2 for Host), since a proxy
 * in front may read the other copy than the one we check (aip_http_header_get takes the first). */
static int has_duplicate_singleton(const aip_http_req *r) {
  static const char *const single[] = {"host", "authorization", "origin", "mcp-session-id",
                                       "mcp-protocol-version", "content-type"};
  for (size_t k = 0; k < sizeof(single) / sizeof(single[0]); k++) {
    size_t nl = strlen(single[k]);
    int seen = 0;
    for (int i = 0; i < r->headers_n; i++) {
      const aip_http_header *h = &r->headers[i];
      if (h->name_len == nl && memcmp(r->hdr.data + h->name_off, single[k], nl) == 0 && seen++)
        return 1;
    }
  }
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  aip_http_conn *c = conn_of(p);
  aip_http_req *r = c->req;
  if (r->hdr.len == 0) return -1; /* no url: cannot happen with a valid request line */
  if (has_duplicate_singleton(r)) {
    c->err_status = 400;
    return -1;
  }
  r->method = p->method;
  r->path = r->hdr.data;
  char *q = strchr(r->path, '?');
  if (q) {
    *q = 0;
    r->query = q + 1;
  } else {
    r->query = "";
  }
  r->path_len = strlen(r->path);
  r->start_ns = uv_hrtime();
  c->in_trailers = 1; /* from here on `hdr` must not move */
  c->http10 = p->http_major == 1 && p->http_minor == 0;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->limits.max_body) {
    c->err_status = 413;
    return -1;
  }
  timer_arm(c, c->srv->limits.idle_timeout_ms);
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  aip_http_conn *c = conn_of(p);
  if (c->req->body.len + len > c->srv->limits.max_body) {
    c->err_status = 413;
    return -1;
  }
  if (aip_buf_append(&c->req->body, at, len)) {
    c->err_status = 500;
    return -1;
  }
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  aip_http_conn *c = conn_of(p);
  c->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
  c->state = CONN_HANDLING;
  uv_timer_stop(&c->timer);
  c->srv->stats.requests_total++;
  return HPE_PAUSED;
}

/* ---- connection ------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
  aip_http_conn *c = h->data;
  if (--c->handles_open > 0) return;
  aip_http_server *s = c->srv;
  aip_buf_free(&c->in);
  free(c);
  if (--s->conns_alive == 0 && s->closing && !s->listening) free(s);
}

static void conn_close(aip_http_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  aip_http_server *s = c->srv;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->stats.connections_open--;
  aip_http_req *r = c->req;
  c->req = NULL;
  if (r && c->state == CONN_HANDLING && !r->responded && r->abort_cb) r->abort_cb(r, r->abort_data);
  req_free(r);
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_timeout(uv_timer_t *t) {
  aip_http_conn *c = t->data;
  if (c->srv->paused && c->state != CONN_HANDLING && !c->close_after_write) {
    /* no request runs and no idle/header time counts while paused: resuming re-arms it */
    c->deferred = 0;
    return;
  }
  if (c->deferred) {
    c->deferred = 0;
    timer_arm(c, c->srv->limits.idle_timeout_ms);
    conn_process(c);
    return;
  }
  if (c->state == CONN_READING && c->req && !c->req->responded) {
    /* a request that started but did not finish in time */
    c->keep_alive = 0;
    c->state = CONN_HANDLING;
    aip_http_respond(c->req, 408, "text/plain", NULL, "request timeout\n", 16);
    return;
  }
  conn_close(c);
}

static void timer_arm(aip_http_conn *c, uint64_t ms) {
  if (c->closing) return;
  uv_timer_start(&c->timer, on_timeout, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  aip_http_conn *c = h->data;
  if (aip_buf_reserve(&c->in, READ_CHUNK)) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void protocol_error(aip_http_conn *c) {
  int status = c->err_status ? c->err_status : 400;
  c->keep_alive = 0;
  if (!c->req) on_message_begin(&c->parser);
  if (!c->req) {
    conn_close(c);
    return;
  }
  c->state = CONN_HANDLING;
  char body[64];
  int n = snprintf(body, sizeof(body), "%s\n", aip_http_status_text(status));
  aip_http_respond(c->req, status, "text/plain", NULL, body, (size_t)n);
}

/* Reads while there is room for pipelined bytes and the server is not paused. */
static void conn_update_reading(aip_http_conn *c) {
  if (c->closing || c->close_after_write) return;
  int want = !c->srv->paused && c->in.len - c->in_pos < MAX_PIPELINED_BYTES;
  if (want && !c->reading) {
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  } else if (!want && c->reading) {
    c->reading = 0;
    uv_read_stop((uv_stream_t *)&c->tcp);
  }
}

/* Parses buffered input and runs handlers until the input is exhausted or a handler keeps its
 * request pending. Handlers that answer at once make this loop go on to pipelined requests. */
static void conn_process(aip_http_conn *c) {
  c->in_process = 1;
  while (!c->closing && !c->srv->paused && c->state != CONN_HANDLING && c->in_pos < c->in.len) {
    const char *start = c->in.data + c->in_pos;
    llhttp_errno_t e = llhttp_execute(&c->parser, start, c->in.len - c->in_pos);
    if (e == HPE_OK) {
      c->in_pos = c->in.len;
    } else if (e == HPE_PAUSED) {
      c->in_pos = (size_t)(llhttp_get_error_pos(&c->parser) - c->in.data);
      c->srv->handler(c->req, c->srv->ctx);
    } else {
      protocol_error(c);
      break;
    }
  }
  if (!c->closing && c->in_pos == c->in.len) c->in_pos = c->in.len = 0;
  conn_update_reading(c);
  c->in_process = 0;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  aip_http_conn *c = st->data;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->in.len += (size_t)nread;
  c->in.data[c->in.len] = 0;
  conn_process(c);
}

/* At most one warning a second about refused connections, with the count since the last. */
static void refused_warn(aip_http_server *s, const char *why) {
  s->stats.connections_refused++;
  uint64_t now = uv_now(s->loop);
  if (s->refused_logged && now - s->refused_warn_ms < 1000) return;
  aip_warn("http %d: refusing connections: %s (%llu refused so far)", s->port, why,
           (unsigned long long)s->stats.connections_refused);
  s->refused_logged = 1;
  s->refused_warn_ms = now;
}

/* Over the cap: a short 503 so the client knows why, then close at once. The write is a
 * non-blocking attempt (a fresh socket's buffer takes it): libuv accepts a whole backlog in one
 * go, and a refused connection that kept its descriptor until a write callback would run the
 * process out of them (EMFILE), locking out the admin listener the cap is there to protect. */
static void refuse_over_cap(aip_http_conn *c) {
  static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                            "Retry-After: 1\r\nContent-Length: 0\r\n\r\n";
  refused_warn(c->srv, "max_connections reached");
  uv_buf_t b = uv_buf_init((char *)msg, sizeof(msg) - 1);
  (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  conn_close(c);
}

static void on_connection(uv_stream_t *ls, int status) {
  aip_http_server *s = ls->data;
  if (status < 0) {
    /* EMFILE/ENFILE: libuv has already accepted and closed the waiting connections with its
     * reserved descriptor (no busy loop); the cap below normally keeps us from getting here. */
    refused_warn(s, uv_strerror(status));
    return;
  }
  aip_http_conn *c = calloc(1, sizeof(*c));
  if (!c) return;
  c->srv = s;
  s->conns_alive++;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles_open = 2;
  aip_buf_init(&c->in);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->stats.connections_open++;
  s->stats.connections_total++;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  if (s->limits.max_connections && s->stats.connections_open > s->limits.max_connections) {
    refuse_over_cap(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
  c->parser.data = c;
  c->state = CONN_IDLE;
  if (!s->paused) timer_arm(c, s->limits.header_timeout_ms);
  conn_update_reading(c);
}

void aip_http_server_pause(aip_http_server *s, int paused) {
  if (s->paused == !!paused) return;
  s->paused = !!paused;
  for (aip_http_conn *c = s->conns; c; c = c->next) {
    if (c->closing || c->close_after_write) continue;
    conn_update_reading(c);
    if (c->state == CONN_HANDLING) continue; /* its request goes on; its timer is its own */
    if (paused) {
      if (!c->deferred) uv_timer_stop(&c->timer);
    } else if (c->in_pos < c->in.len) {
      c->deferred = 1; /* buffered requests: parse them on the next turn (not reentrantly) */
      timer_arm(c, 0);
    } else {
      timer_arm(c, c->state == CONN_READING ? c->srv->limits.header_timeout_ms
                                            : c->srv->limits.idle_timeout_ms);
    }
  }
}

/* ---- server ----------------------------------------------------------------------------- */

int aip_http_server_start(uv_loop_t *loop, const char *host, int port,
                          const aip_http_limits *limits, aip_http_handler handler, void *ctx,
                          aip_http_server **out) {
  aip_http_server *s = calloc(1, sizeof(*s));
  if (!s) return -ENOMEM;
  s->loop = loop;
  s->limits = *limits;
  s->handler = handler;
  s->ctx = ctx;
  llhttp_settings_init(&s->settings);
  s->settings.on_message_begin = on_message_begin;
  s->settings.on_url = on_url;
  s->settings.on_url_complete = on_url_complete;
  s->settings.on_header_field = on_header_field;
  s->settings.on_header_field_complete = on_header_field_complete;
  s->settings.on_header_value = on_header_value;
  s->settings.on_header_value_complete = on_header_value_complete;
  s->settings.on_headers_complete = on_headers_complete;
  s->settings.on_body = on_body;
  s->settings.on_message_complete = on_message_complete;

  struct sockaddr_storage addr;
  int err = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                              : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
  if (!err) err = uv_tcp_init(loop, &s->listener);
  if (err) {
    free(s);
    return err;
  }
  s->listener.data = s;
  s->listening = 1;
  err = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
  if (!err) err = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
  if (err) {
    s->closing = 1;
    aip_http_server_stop_listening(s);
    return err;
  }
  struct sockaddr_storage bound;
  int blen = sizeof(bound);
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
  s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  *out = s;
  return 0;
}

static void on_listener_closed(uv_handle_t *h) {
  aip_http_server *s = h->data;
  s->listening = 0;
  if (s->closing && s->conns_alive == 0) free(s);
}

/* Idle connections stay open: a request may already be on its way (or in the socket buffer,
 * unread because the signal was handled first), and it deserves the handler's answer with
 * Connection: close rather than a reset. They end with that answer, their idle timeout, or
 * aip_http_server_close. */
void aip_http_server_stop_listening(aip_http_server *s) {
  s->draining = 1;
  if (s->listening && !uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

/* A last answer still being written gets this long to reach the client. */
#define CLOSE_FLUSH_MS 1000

void aip_http_server_close(aip_http_server *s) {
  s->closing = s->draining = 1;
  s->paused = 0; /* the last answers are flushed and their connections closed on time */
  int was_listening = s->listening;
  aip_http_server_stop_listening(s);
  for (aip_http_conn *c = s->conns, *n; c; c = n) {
    n = c->next;
    /* A complete answer still in the socket's queue (a -32000 of the drain) is flushed, then
     * the connection closes (on_write_done), or at the latest when the timer fires. */
    if (!c->req && c->writes_pending) {
      c->close_after_write = 1;
      if (c->reading) uv_read_stop((uv_stream_t *)&c->tcp);
      c->reading = 0;
      c->deferred = 0;
      timer_arm(c, CLOSE_FLUSH_MS);
      continue;
    }
    conn_close(c);
  }
  /* Otherwise the listener's or the last connection's close callback frees it. */
  if (!was_listening && s->conns_alive == 0) free(s);
}

const aip_http_stats *aip_http_server_stats(const aip_http_server *s) { return &s->stats; }

int aip_http_server_port(const aip_http_server *s) { return s->port; }
