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
 *
 * Resumption (MCP 2025-11-25 SSE polling; docs/routing.md "Resumable streams"): an SSE reply
 * that ends, or whose connection drops, before the call's answer, after the server gave an
 * event id (a priming event or any other), is resumed with GET + Last-Event-ID after the
 * server's `retry` (else RESUME_DEFAULT_MS), again and again, until the answer arrives or
 * limits.request_timeout since the POST passes. The GET's events go where the POST's went.
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
#define RESUME_DEFAULT_MS 1000 /* reconnection delay when the server sent no `retry` */
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
  post *resuming; /* replies waiting to be resumed (their timer runs) */
  /* the GET stream's last event id and `retry`: a reopened GET resumes it (Last-Event-ID) */
  char get_last_id[AIP_SSE_ID_MAX];
  size_t get_last_id_n;
  int64_t get_retry_ms;
  int get_sent_last_id; /* the GET now open asked to resume */
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
  /* resumption */
  uint64_t deadline_ms;           /* request_timeout after the POST */
  char last_id[AIP_SSE_ID_MAX];   /* the stream's last event id so far */
  size_t last_id_n;
  int64_t retry_ms;               /* the server's reconnection time, -1: none */
  int resumes;                    /* GETs made for it */
  uv_timer_t timer;               /* the wait before the next GET */
  int timer_on;
  post *rnext, *rprev;            /* in t->resuming */
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

/* ---- resumption ------------------------------------------------------------------------------ */

static const aip_http_creq_cbs post_cbs;

static void post_free(post *ps) {
  aip_buf_free(&ps->body);
  aip_sse_free(&ps->parser);
  free(ps);
}

static void resume_timer_closed(uv_handle_t *h) { post_free(h->data); }

/* Takes the reply off the resuming list and frees it (after its timer closed). */
static void resume_forget(post *ps) {
  http_transport *t = ps->u->transport;
  if (ps->rprev) ps->rprev->rnext = ps->rnext;
  else if (t->resuming == ps) t->resuming = ps->rnext;
  if (ps->rnext) ps->rnext->rprev = ps->rprev;
  ps->rnext = ps->rprev = NULL;
  uv_close((uv_handle_t *)&ps->timer, resume_timer_closed);
}

/* Is the request this reply carries still unanswered? */
static int still_waiting(const post *ps) {
  aip_upstream *u = ps->u;
  uint64_t id = ps->id;
  return id && (id == u->handshake_id || aip_map_get(&u->calls, &id, sizeof(id)) != NULL);
}

static void on_resume_timer(uv_timer_t *tm) {
  post *ps = tm->data;
  aip_upstream *u = ps->u;
  http_transport *t = u->transport;
  uint64_t now = uv_now(u->loop);
  if (ps->epoch != t->epoch || t->stopping || !still_waiting(ps)) {
    resume_forget(ps);
    return;
  }
  if (now >= ps->deadline_ms) {
    aip_upstream_transport_fail(u, ps->id, "stream closed before the answer and not resumed "
                                           "within request_timeout");
    resume_forget(ps);
    return;
  }
  /* a fresh parse of a fresh stream; the last event id carries over (WHATWG reconnection) */
  aip_sse_free(&ps->parser);
  aip_sse_init(&ps->parser, u->limits->max_upstream_message);
  aip_buf_reset(&ps->body);
  ps->status = ps->sse = 0;
  ps->mode = BODY_HOLD;
  ps->sent_session = t->session[0] != 0;
  aip_buf h;
  aip_buf_init(&h);
  int err = build_headers(u, &h, "text/event-stream", 0);
  if (!err) err = aip_buf_printf(&h, "Last-Event-ID: %.*s\r\n", (int)ps->last_id_n, ps->last_id);
  if (!err)
    err = aip_http_client_request(t->client, "GET", t->path, h.data, NULL, 0,
                                  ps->deadline_ms - now + 1000, &post_cbs, ps, &ps->req);
  aip_buf_free(&h);
  if (err) {
    aip_upstream_transport_fail(u, ps->id, "could not resume the stream");
    resume_forget(ps);
    return;
  }
  ps->resumes++;
  /* off the list while its GET runs: post_done decides again */
  if (ps->rprev) ps->rprev->rnext = ps->rnext;
  else if (t->resuming == ps) t->resuming = ps->rnext;
  if (ps->rnext) ps->rnext->rprev = ps->rprev;
  ps->rnext = ps->rprev = NULL;
}

/* An SSE reply ended (or its connection dropped) without the answer, after an event id: wait
 * the server's `retry` and resume it. Returns 1 when it will be (ps is kept), 0 otherwise. */
static int resume_later(post *ps, int err) {
  aip_upstream *u = ps->u;
  http_transport *t = u->transport;
  size_t n = 0;
  const char *id = aip_sse_last_id(&ps->parser, &n);
  if (id) {
    memcpy(ps->last_id, id, n);
    ps->last_id_n = n;
  }
  if (ps->parser.retry_ms >= 0) ps->retry_ms = ps->parser.retry_ms;
  if (!ps->sse || ps->status / 100 != 2 || ps->mode == BODY_STREAM || !ps->last_id_n) return 0;
  if (err && err != -ECONNRESET && err != -EPIPE) return 0;
  if (ps->epoch != t->epoch || t->stopping || !still_waiting(ps)) return 0;
  uint64_t now = uv_now(u->loop);
  uint64_t wait = ps->retry_ms >= 0 ? (uint64_t)ps->retry_ms : RESUME_DEFAULT_MS;
  if (now >= ps->deadline_ms) return 0;
  if (wait > ps->deadline_ms - now) wait = ps->deadline_ms - now;
  if (!ps->timer_on) {
    if (uv_timer_init(u->loop, &ps->timer)) return 0;
    ps->timer.data = ps;
    ps->timer_on = 1;
  }
  ps->req = NULL;
  ps->rnext = t->resuming;
  ps->rprev = NULL;
  if (t->resuming) t->resuming->rprev = ps;
  t->resuming = ps;
  uv_timer_start(&ps->timer, on_resume_timer, wait, 0);
  /* the server polls on purpose (not a dropped connection): the agent may be told to as well */
  if (!err) aip_upstream_transport_polled(u, ps->id);
  return 1;
}

/* Every reply waiting to be resumed is dropped (the instance stops or resets). */
static void resume_drop_all(http_transport *t) {
  while (t->resuming) resume_forget(t->resuming);
}

static void post_done(aip_http_creq *r, int err, void *data) {
  post *ps = data;
  aip_upstream *u = ps->u;
  http_transport *t = u->transport;
  if (t->streaming == ps) t->streaming = NULL;
  if (resume_later(ps, err)) return;
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
  if (ps->timer_on) {
    uv_close((uv_handle_t *)&ps->timer, resume_timer_closed);
    return;
  }
  post_free(ps);
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
  ps->deadline_ms = uv_now(u->loop) + u->limits->request_timeout_ms;
  ps->retry_ms = -1;
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
  /* a server that will not resume that id (no event store, an id it forgot): a fresh stream
   * next time, rather than none */
  if (status / 100 == 4 && t->get_sent_last_id) {
    t->get_last_id_n = 0;
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
  size_t idn = 0;
  const char *id = aip_sse_last_id(get_parser(u), &idn);
  if (id) {
    memcpy(t->get_last_id, id, idn);
    t->get_last_id_n = idn;
  }
  if (get_parser(u)->retry_ms >= 0) t->get_retry_ms = get_parser(u)->retry_ms;
  aip_sse_free(get_parser(u));
  if (t->get_lost_session && !t->stopping && u->state == AIP_UPSTREAM_READY) {
    t->get_lost_session = 0;
    t->session[0] = 0;
    aip_upstream_transport_down(u, "upstream session expired (HTTP 404)");
    return;
  }
  /* A stream that ends while the instance is up is reopened, after the server's `retry` if it
   * sent one (MCP 2025-11-25: the client MUST respect it), resuming after its last event id. */
  if (!t->stopping && !t->get_unsupported && u->state == AIP_UPSTREAM_READY)
    uv_timer_start(&t->get_retry, on_get_retry,
                   t->get_retry_ms >= 0 ? (uint64_t)t->get_retry_ms : GET_RETRY_MS, 0);
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
  t->get_sent_last_id = t->get_last_id_n != 0;
  if (!err && t->get_last_id_n)
    err = aip_buf_printf(&h, "Last-Event-ID: %.*s\r\n", (int)t->get_last_id_n, t->get_last_id);
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
  t->get_last_id_n = 0; /* ids of the old session's stream */
  t->get_retry_ms = -1;
  if (t->get) aip_http_creq_cancel(t->get);
  uv_timer_stop(&t->get_retry);
  resume_drop_all(t); /* replies of the old instance's session */
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
  resume_drop_all(t);
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
  resume_drop_all(t);
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
  t->get_retry_ms = -1;
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
