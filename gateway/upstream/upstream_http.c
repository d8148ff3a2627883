/* upstream_http.c -- the Streamable HTTP transport for an upstream MCP server.
 *
 * Each message is one POST to the server's URL. The reply is application/json (one message)
 * or text/event-stream (related messages, then the answer), parsed as it arrives. The session
 * id of the initialize reply and the negotiated protocol version go on every later request,
 * with the operator's configured headers (so an upstream credential lives in the gateway,
 * never in the agent; the agent's own bearer token is never forwarded). A GET stream carries
 * the server's unrelated notifications. A 404 means the server lost our session: the instance
 * is reset, and the core re-initializes and retries idempotent calls.
 *
 * Every POST of an instance carries that instance's epoch: replies that arrive after a reset
 * belong to a session that no longer exists and are ignored.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http/http_client.h"
#include "gateway/obs/log.h"
#include "gateway/http/sse.h"
#include "gateway/upstream/upstream.h"

#define GET_RETRY_MS 1000
#define DELETE_TIMEOUT_MS 1000

typedef struct post post;

typedef struct http_transport {
  aip_http_client *client;
  post *streaming; /* the POST whose JSON reply streams now (see post_body) */
  char *path;
  char *headers;  /* configured headers as CRLF lines */
  char session[256];
  uint64_t epoch;
  aip_http_creq *get;
  uv_timer_t get_retry;
  int get_unsupported;
  int get_lost_session;
  int stopping;
} http_transport;

/* What happens to an application/json reply (docs/dlp.md, "Streaming in the gateway"). */
enum body_mode {
  BODY_HOLD = 0, /* held whole; may still switch to streaming */
  BODY_WHOLE,    /* held whole, up to max_upstream_message: cannot stream */
  BODY_STREAM    /* passed to the call's sink as it arrives */
};

struct post {
  aip_upstream *u;
  aip_http_creq *req;
  uint64_t id;
  uint64_t epoch;
  int status;
  int sse;
  int sent_session; /* the request carried a session id */
  enum body_mode mode;
  uint64_t seq;      /* the core's stream this reply feeds */
  uint64_t streamed; /* bytes passed to it */
  aip_buf body;
  aip_sse_parser parser;
};

static void get_open(aip_upstream *u);

/* ---- request headers ------------------------------------------------------------------- */

static int build_headers(aip_upstream *u, aip_buf *h, const char *accept, int json_body) {
  http_transport *t = u->transport;
  int err = aip_buf_printf(h, "Accept: %s\r\n", accept);
  if (!err && json_body) err = aip_buf_puts(h, "Content-Type: application/json\r\n");
  if (!err && t->session[0]) err = aip_buf_printf(h, "Mcp-Session-Id: %s\r\n", t->session);
  const char *v = aip_upstream_protocol_version(u);
  if (!err && v) err = aip_buf_printf(h, "MCP-Protocol-Version: %s\r\n", v);
  if (!err) err = aip_buf_puts(h, t->headers);
  return err;
}

/* ---- POST replies -------------------------------------------------------------------------- */

static int deliver(void *data, const char *p, size_t n) {
  post *ps = data;
  http_transport *t = ps->u->transport;
  if (ps->epoch == t->epoch) {
    /* a request on this POST's stream belongs to the call it carries (server_requests.c) */
    ps->u->related_id = ps->id;
    aip_upstream_transport_message(ps->u, p, n);
    ps->u->related_id = 0;
  }
  return 0;
}

static const aip_sse_stream_cbs sse_stream_cbs;

static int post_headers(aip_http_creq *r, int status, const char *h, size_t len, void *data) {
  post *ps = data;
  http_transport *t = ps->u->transport;
  ps->status = status;
  size_t n;
  const char *ct = aip_http_header_find(h, len, "content-type", &n);
  ps->sse = ct && n >= 17 && strncmp(ct, "text/event-stream", 17) == 0;
  uint64_t threshold = aip_upstream_stream_threshold(ps->u);
  if (ps->sse && threshold) aip_sse_stream(&ps->parser, &sse_stream_cbs, threshold);
  const char *sid = aip_http_header_find(h, len, "mcp-session-id", &n);
  if (sid && ps->epoch == t->epoch && !t->session[0] && status / 100 == 2) {
    /* visible ASCII only (the spec's rule), so it can go back in a header verbatim */
    int ok = n > 0 && n < sizeof(t->session);
    for (size_t i = 0; ok && i < n; i++) ok = sid[i] > 0x20 && sid[i] < 0x7f;
    if (ok) {
      memcpy(t->session, sid, n);
      t->session[n] = 0;
    }
  }
  return 0;
}

/* Passes reply bytes to the streaming call. Non-zero aborts the HTTP exchange (the rest is
 * not wanted: the stream is over, or too large). */
static int post_stream(aip_http_creq *r, post *ps, const char *p, size_t n) {
  aip_upstream *u = ps->u;
  /* a stall timeout may have ended this stream, and another POST's may have begun since */
  if (aip_upstream_stream_seq(u) != ps->seq) return -ECANCELED;
  ps->streamed += n;
  if (ps->streamed > u->limits->max_streamed_message) {
    aip_error("upstream %s: streamed message larger than %llu bytes; dropping it", u->label,
              (unsigned long long)u->limits->max_streamed_message);
    aip_upstream_transport_stream_end(u, -EMSGSIZE);
    return -EMSGSIZE;
  }
  int rc = aip_upstream_transport_stream_feed(u, p, n);
  if (rc < 0) return rc;
  if (rc == 1) aip_http_creq_pause(r, 1);
  return 0;
}

/* The first `n` bytes of an answer (a JSON body, or an SSE event's data) are past the
 * agent's stream threshold: it streams if it is an answer with its id first (upstream.h).
 * -EINVAL: hold it whole as before; another error: abort the exchange. */
static int stream_begin(post *ps, const char *p, size_t n) {
  aip_upstream *u = ps->u;
  http_transport *t = u->transport;
  if (ps->epoch != t->epoch || t->streaming) return -EINVAL; /* one at a time */
  int rc = aip_upstream_transport_stream_begin(u, p, n);
  if (rc == -EINVAL) return rc;
  ps->streamed = n;
  if (rc < 0) return rc;
  ps->mode = BODY_STREAM;
  ps->seq = aip_upstream_stream_seq(u);
  t->streaming = ps;
  /* a long answer may take longer than request_timeout: the core's stall timer bounds it */
  aip_http_creq_set_timeout(ps->req, 0);
  if (rc == 1) aip_http_creq_pause(ps->req, 1);
  return 0;
}

static int maybe_stream(post *ps) {
  uint64_t threshold = aip_upstream_stream_threshold(ps->u);
  if (!threshold || ps->body.len <= threshold) return 0;
  int rc = stream_begin(ps, ps->body.data, ps->body.len);
  if (rc == -EINVAL) {
    ps->mode = BODY_WHOLE;
    return 0;
  }
  aip_buf_free(&ps->body);
  aip_buf_init(&ps->body);
  return rc;
}

/* An SSE reply: the parser hands over an event past the threshold (sse.h). */
static int sse_begin(void *data, const char *held, size_t n) { return stream_begin(data, held, n); }

static int sse_chunk(void *data, const char *p, size_t n) {
  post *ps = data;
  return post_stream(ps->req, ps, p, n);
}

static int sse_end(void *data) {
  post *ps = data;
  http_transport *t = ps->u->transport;
  if (aip_upstream_stream_seq(ps->u) == ps->seq) aip_upstream_transport_stream_end(ps->u, 0);
  ps->mode = BODY_HOLD;
  if (t->streaming == ps) t->streaming = NULL;
  return 0;
}

static const aip_sse_stream_cbs sse_stream_cbs = {sse_begin, sse_chunk, sse_end};

static int post_body(aip_http_creq *r, const char *p, size_t n, void *data) {
  post *ps = data;
  if (ps->sse && ps->status / 100 == 2) return aip_sse_feed(&ps->parser, p, n, deliver, ps);
  if (ps->mode == BODY_STREAM) return post_stream(r, ps, p, n);
  if (ps->body.len + n > ps->u->limits->max_upstream_message) return -EMSGSIZE;
  int err = aip_buf_append(&ps->body, p, n);
  if (!err && ps->mode == BODY_HOLD && ps->status / 100 == 2) err = maybe_stream(ps);
  return err;
}

static void post_done(aip_http_creq *r, int err, void *data) {
  post *ps = data;
  aip_upstream *u = ps->u;
  http_transport *t = u->transport;
  if (t->streaming == ps) t->streaming = NULL;
  /* cut short (an SSE event still streaming never got its blank line): the response aborts */
  if (ps->mode == BODY_STREAM && aip_upstream_stream_seq(u) == ps->seq)
    aip_upstream_transport_stream_end(u, err ? err : ps->sse ? -EPIPE : 0);
  int current = ps->epoch == t->epoch && !t->stopping;
  char why[160];
  why[0] = 0;
  if (!current) {
    /* a reply to an instance that is gone */
  } else if (err == -ECONNREFUSED || err == -ECONNRESET || err == -EPIPE) {
    /* the server is gone (or restarted, and with it our session): start over */
    snprintf(why, sizeof(why), "%s", strerror(-err));
    aip_upstream_transport_down(u, why);
    why[0] = 0;
  } else if (err) {
    snprintf(why, sizeof(why), "HTTP request failed: %s", strerror(-err));
  } else if (ps->status == 404 && ps->sent_session) {
    t->session[0] = 0;
    aip_upstream_transport_down(u, "upstream session expired (HTTP 404)");
  } else {
    if (ps->body.len && !ps->sse) aip_upstream_transport_message(u, ps->body.data, ps->body.len);
    if (ps->status / 100 != 2) snprintf(why, sizeof(why), "HTTP status %d", ps->status);
    else if (ps->id) snprintf(why, sizeof(why), "no valid JSON-RPC answer in the HTTP reply");
  }
  /* A call still waiting after its HTTP exchange ended will never be answered: say so now.
   * (No-op when the reply above already answered it.) */
  if (current && why[0] && ps->id) aip_upstream_transport_fail(u, ps->id, why);
  aip_buf_free(&ps->body);
  aip_sse_free(&ps->parser);
  free(ps);
}

static const aip_http_creq_cbs post_cbs = {post_headers, post_body, post_done};

static int http_send(aip_upstream *u, uint64_t id, const char *p, size_t n) {
  http_transport *t = u->transport;
  post *ps = calloc(1, sizeof(*ps));
  if (!ps) return -ENOMEM;
  ps->u = u;
  ps->id = id;
  ps->epoch = t->epoch;
  ps->sent_session = t->session[0] != 0;
  aip_buf_init(&ps->body);
  aip_sse_init(&ps->parser, u->limits->max_upstream_message);
  aip_buf h;
  aip_buf_init(&h);
  int err = build_headers(u, &h, "application/json, text/event-stream", 1);
  /* The HTTP exchange may outlive the call's deadline by a little; the core answers the call. */
  if (!err)
    err = aip_http_client_request(t->client, "POST", t->path, h.data, p, n,
                                  u->limits->request_timeout_ms + 1000, &post_cbs, ps, &ps->req);
  aip_buf_free(&h);
  if (err) {
    aip_sse_free(&ps->parser);
    free(ps);
  }
  return err;
}

/* ---- the GET stream -------------------------------------------------------------------------- */

static int get_headers(aip_http_creq *r, int status, const char *h, size_t len, void *data) {
  aip_upstream *u = data;
  http_transport *t = u->transport;
  if (status == 404 && t->session[0]) {
    t->get_lost_session = 1; /* handled in get_done, outside the client's callbacks */
    return 1;
  }
  /* 405 is allowed by the spec (no unrelated messages); any 4xx will not get better by retrying */
  if (status / 100 == 4) t->get_unsupported = 1;
  return status != 200;
}

static int get_event(void *data, const char *p, size_t n) {
  aip_upstream_transport_message(data, p, n);
  return 0;
}

static aip_sse_parser *get_parser(aip_upstream *u);

static int get_body(aip_http_creq *r, const char *p, size_t n, void *data) {
  return aip_sse_feed(get_parser(data), p, n, get_event, data);
}

static void on_get_retry(uv_timer_t *tm) { get_open(tm->data); }

static void get_done(aip_http_creq *r, int err, void *data) {
  aip_upstream *u = data;
  http_transport *t = u->transport;
  t->get = NULL;
  aip_sse_free(get_parser(u));
  if (t->get_lost_session && !t->stopping && u->state == AIP_UPSTREAM_READY) {
    t->get_lost_session = 0;
    t->session[0] = 0;
    aip_upstream_transport_down(u, "upstream session expired (HTTP 404)");
    return;
  }
  /* A stream that ends while the instance is up is reopened, a little later. */
  if (!t->stopping && !t->get_unsupported && u->state == AIP_UPSTREAM_READY)
    uv_timer_start(&t->get_retry, on_get_retry, GET_RETRY_MS, 0);
}

static const aip_http_creq_cbs get_cbs = {get_headers, get_body, get_done};

/* The GET stream's parser lives beside the transport (one stream at a time). */
typedef struct http_transport_full {
  http_transport t;
  aip_sse_parser get_parser;
} http_transport_full;

static aip_sse_parser *get_parser(aip_upstream *u) {
  return &((http_transport_full *)u->transport)->get_parser;
}

static void get_open(aip_upstream *u) {
  http_transport *t = u->transport;
  if (t->get || t->stopping || t->get_unsupported || u->state != AIP_UPSTREAM_READY) return;
  aip_buf h;
  aip_buf_init(&h);
  aip_sse_init(get_parser(u), u->limits->max_upstream_message);
  int err = build_headers(u, &h, "text/event-stream", 0);
  if (!err) err = aip_http_client_request(t->client, "GET", t->path, h.data, NULL, 0, 0, &get_cbs, u, &t->get);
  aip_buf_free(&h);
  if (err) aip_sse_free(get_parser(u));
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static int http_start(aip_upstream *u) {
  http_transport *t = u->transport;
  t->epoch++;
  t->session[0] = 0;
  t->get_unsupported = 0;
  if (t->get) aip_http_creq_cancel(t->get);
  uv_timer_stop(&t->get_retry);
  aip_upstream_transport_up(u); /* connections are made per request */
  return 0;
}

static void http_ready(aip_upstream *u) { get_open(u); }

static void delete_done(aip_http_creq *r, int err, void *data) {
  aip_upstream_transport_stopped(data);
}

static const aip_http_creq_cbs delete_cbs = {NULL, NULL, delete_done};

/* Ends the upstream session politely (DELETE), then reports the transport stopped. */
static void http_stop(aip_upstream *u) {
  http_transport *t = u->transport;
  t->stopping = 1;
  uv_timer_stop(&t->get_retry);
  if (t->get) aip_http_creq_cancel(t->get);
  if (t->session[0]) {
    aip_buf h;
    aip_buf_init(&h);
    int err = build_headers(u, &h, "application/json, text/event-stream", 0);
    if (!err) err = aip_http_client_request(t->client, "DELETE", t->path, h.data, NULL, 0,
                                            DELETE_TIMEOUT_MS, &delete_cbs, u, NULL);
    aip_buf_free(&h);
    if (!err) return;
  }
  aip_upstream_transport_stopped(u);
}

static void on_retry_timer_closed(uv_handle_t *h) { free(h->data); }

static void http_free(aip_upstream *u) {
  http_transport *t = u->transport;
  aip_http_client_close(t->client);
  free(t->path);
  free(t->headers);
  t->get_retry.data = t;
  uv_close((uv_handle_t *)&t->get_retry, on_retry_timer_closed);
}

static void http_resume(aip_upstream *u) {
  http_transport *t = u->transport;
  if (t->streaming) aip_http_creq_pause(t->streaming->req, 0);
}

static const aip_upstream_ops http_ops = {http_start, http_send, http_ready,
                                          http_stop,  http_free, http_resume};

/* ---- construction ------------------------------------------------------------------------- */

/* http://HOST:PORT/PATH with a numeric host (or localhost); no DNS on the loop thread. */
static int parse_url(const char *url, char *host, size_t hostsz, int *port, char **path) {
  if (strncmp(url, "http://", 7) != 0) return -EINVAL;
  const char *h = url + 7, *end;
  if (*h == '[') {
    end = strchr(h, ']');
    if (!end) return -EINVAL;
    snprintf(host, hostsz, "%.*s", (int)(end - h - 1), h + 1);
    end++;
  } else {
    end = h + strcspn(h, ":/");
    snprintf(host, hostsz, "%.*s", (int)(end - h), h);
  }
  if (strcmp(host, "localhost") == 0) snprintf(host, hostsz, "127.0.0.1");
  *port = 80;
  if (*end == ':') {
    char *e;
    long p = strtol(end + 1, &e, 10);
    if (p < 1 || p > 65535) return -EINVAL;
    *port = (int)p;
    end = e;
  }
  *path = strdup(*end == '/' ? end : "/");
  return *path ? 0 : -ENOMEM;
}

aip_upstream *aip_upstream_http_new(uv_loop_t *loop, const aip_server_config *server,
                                    const char *label, const aip_limits *limits,
                                    const aip_upstream_hooks *hooks) {
  aip_upstream *u = calloc(1, sizeof(*u));
  http_transport_full *tf = calloc(1, sizeof(*tf));
  http_transport *t = &tf->t;
  char host[128];
  int port;
  aip_buf h;
  aip_buf_init(&h);
  if (!u || !tf || parse_url(server->url, host, sizeof(host), &port, &t->path)) goto fail;
  for (size_t i = 0; i < server->headers.n; i++)
    if (aip_buf_printf(&h, "%s: %s\r\n", server->headers.items[i].key, server->headers.items[i].value))
      goto fail;
  t->headers = h.data ? aip_buf_steal(&h, NULL) : strdup("");
  t->client = aip_http_client_new(loop, host, port, limits->request_timeout_ms);
  if (!t->headers || !t->client) goto fail;
  if (aip_upstream_init(u, &http_ops, t, loop, server, label, limits, hooks)) goto fail;
  uv_timer_init(loop, &t->get_retry);
  t->get_retry.data = u;
  return u;
fail:
  aip_buf_free(&h);
  if (tf) {
    if (t->client) aip_http_client_close(t->client);
    free(t->path);
    free(t->headers);
  }
  free(tf);
  free(u);
  return NULL;
}
