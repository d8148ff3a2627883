/* mcp-load.c -- closed-loop load generator for MCP over Streamable HTTP.
 *
 * Each of --sessions keep-alive connections opens its own MCP session (initialize, then
 * notifications/initialized) and then sends tools/call back to back: the next call leaves as
 * soon as the previous answer is complete. That is a closed loop, so the figures are those of
 * the system at that concurrency; latency under a fixed arrival rate would need an open-loop
 * generator (and coordinated-omission care), which this is not. Every answer, JSON or SSE,
 * is parsed with the engine's strict JSON parser and checked: a JSON-RPC result, the right id,
 * and for `echo` the text verbatim. The result is one `key=value` line on stdout.
 *
 * --idle-sessions N --hold S opens N sessions instead (initialize only) over --connections
 * connections, prints a `ready` line, and holds them S seconds so that the caller can read the
 * server's memory per idle session.
 *
 * One thread, one libuv loop: the generator shares the machine with what it measures, so it
 * keeps per-call work small (one header printf, the payload sent from a shared buffer) and
 * reports its own CPU per call next to the server's. Checking answers with the strict parser
 * is the one big cost (about 200 us for a 64 KiB echo); we pay it because a benchmark that
 * counts wrong answers as calls measures nothing.
 *
 * A little over 800 lines in one file on purpose: a call can be followed from send_call to
 * on_call_answer without leaving it, and nothing here is shared with another program.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <llhttp.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "engine/engine.h"

#define READ_CHUNK 65536
#define MAX_BODY (64u << 20)
#define MAX_SESSION_ID 255
#define MAX_CONN_FAILS 3
#define HANDSHAKE_TIMEOUT_MS 30000
#define ERRORS_SHOWN 10

typedef struct opts {
  char host[64];
  int port;
  char path[256];
  const char *url;
  const char *token;
  int sessions;
  double duration_s, warmup_s;
  const char *tool;
  size_t payload;
  const char *protocol;
  int allow_errors;
  long idle_sessions; /* > 0 selects the idle mode */
  double hold_s;
  int connections;
  int cpu_pid;
  double timeout_s;
} opts;

typedef enum conn_state { CS_INIT, CS_NOTIFY, CS_CALL, CS_IDLE } conn_state;
typedef enum req_kind { REQ_NONE, REQ_INIT, REQ_NOTIFY, REQ_CALL } req_kind;

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  llhttp_t http;
  conn_state state;
  req_kind pending; /* request whose answer we wait for */
  int open;         /* tcp handle initialized and not yet closed */
  int connected;
  int closing, reconnect;
  int write_pending, send_deferred;
  int fails;        /* consecutive connection failures */
  int dead;
  int64_t next_id, want_id;
  uint64_t sent_ns;
  char session[MAX_SESSION_ID + 1];
  char proto[32];   /* protocol version the server chose */
  /* the answer being parsed */
  char hname[32];
  size_t hname_len;
  aip_buf hval;
  int status, is_sse, keep_alive, msg_done;
  char rsession[MAX_SESSION_ID + 1];
  aip_buf body;
  aip_buf out;
  char rbuf[READ_CHUNK];
} conn;

typedef enum phase { PH_HANDSHAKE, PH_WARMUP, PH_MEASURE, PH_HOLD, PH_DONE } phase;

typedef struct bench {
  opts o;
  uv_loop_t *loop;
  llhttp_settings_t settings;
  struct sockaddr_in addr;
  conn *conns;
  int nconns;
  uv_timer_t timer;
  uv_timer_t watchdog;
  phase ph;
  int ready, dead;         /* connections with a session ready for calls / given up */
  char *payload;           /* the echo message */
  aip_buf call_mid;        /* tools/call body between the id and the payload */
  uint64_t t0, t1;         /* measured window, uv_hrtime ns */
  uint64_t cpu0, cpu1;     /* --cpu-pid utime+stime, clock ticks */
  uint64_t self0, self1;   /* our own CPU, us */
  int cpu_ok;
  uint64_t calls, errors, errors_shown;
  uint64_t *lat;           /* latencies of the measured calls, ns */
  size_t lat_n, lat_cap;
  long idle_started, idle_done, idle_ok;
  uint64_t idle_t0, idle_t1;
} bench;

static bench B;

static void conn_next(conn *c);
static void conn_close(conn *c, int reconnect);
static void conn_fail(conn *c, const char *what, int err);
static void bench_finish(void);

/* ---- errors and samples ------------------------------------------------------------------- */

static void record_error(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record_error(conn *c, const char *fmt, ...) {
  B.errors++;
  if (B.errors_shown >= ERRORS_SHOWN) return;
  B.errors_shown++;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "mcp-load: connection %d: %s\n", (int)(c - B.conns), msg);
}

static void record_latency(uint64_t ns) {
  if (B.lat_n == B.lat_cap) {
    size_t cap = B.lat_cap ? B.lat_cap * 2 : 65536;
    uint64_t *p = realloc(B.lat, cap * sizeof *p);
    if (!p) {
      fprintf(stderr, "mcp-load: out of memory for samples\n");
      exit(1);
    }
    B.lat = p;
    B.lat_cap = cap;
  }
  B.lat[B.lat_n++] = ns;
}

/* ---- CPU of another process and of ourselves ----------------------------------------------- */

/* utime + stime of every thread of `pid`, in clock ticks (field 14 and 15 of /proc/pid/stat;
 * the fields are counted after the closing parenthesis because comm may hold spaces). */
static int proc_cpu_ticks(int pid, uint64_t *out) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -errno;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  unsigned long ut, st;
  if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -EINVAL;
  *out = (uint64_t)ut + st;
  return 0;
}

static uint64_t self_cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* ---- requests ----------------------------------------------------------------------------- */

static void on_write(uv_write_t *w, int status) {
  conn *c = w->data;
  c->write_pending = 0;
  if (status < 0) {
    if (status != UV_ECANCELED && !c->closing) conn_fail(c, "write", status);
    return;
  }
  if (c->send_deferred) {
    c->send_deferred = 0;
    conn_next(c);
  }
}

static void conn_write(conn *c, req_kind k, const uv_buf_t *bufs, unsigned n) {
  c->pending = k;
  c->write_pending = 1;
  c->sent_ns = uv_hrtime();
  c->wreq.data = c;
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, n, on_write);
  if (rc) {
    c->write_pending = 0;
    conn_fail(c, "write", rc);
  }
}

/* Request line and headers; the session headers only once the session exists. */
static void put_headers(conn *c, size_t body_len) {
  aip_buf *b = &c->out;
  aip_buf_reset(b);
  aip_buf_printf(b,
                 "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                 "Accept: application/json, text/event-stream\r\n",
                 B.o.path, B.o.host, B.o.port);
  if (B.o.token) aip_buf_printf(b, "Authorization: Bearer %s\r\n", B.o.token);
  if (c->session[0]) aip_buf_printf(b, "Mcp-Session-Id: %s\r\n", c->session);
  if (c->proto[0]) aip_buf_printf(b, "MCP-Protocol-Version: %s\r\n", c->proto);
  aip_buf_printf(b, "Content-Length: %zu\r\n\r\n", body_len);
}

static void send_initialize(conn *c) {
  char body[512];
  c->session[0] = c->proto[0] = '\0';
  c->want_id = c->next_id++;
  int n = snprintf(body, sizeof body,
                   "{\"jsonrpc\":\"2.0\",\"id\":%" PRId64 ",\"method\":\"initialize\",\"params\":"
                   "{\"protocolVersion\":\"%s\",\"capabilities\":{},\"clientInfo\":"
                   "{\"name\":\"mcp-load\",\"version\":\"1.0.0\"}}}",
                   c->want_id, B.o.protocol);
  put_headers(c, (size_t)n);
  aip_buf_append(&c->out, body, (size_t)n);
  uv_buf_t buf = uv_buf_init(c->out.data, (unsigned)c->out.len);
  conn_write(c, REQ_INIT, &buf, 1);
}

static void send_initialized(conn *c) {
  static const char body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
  put_headers(c, sizeof body - 1);
  aip_buf_append(&c->out, body, sizeof body - 1);
  uv_buf_t buf = uv_buf_init(c->out.data, (unsigned)c->out.len);
  conn_write(c, REQ_NOTIFY, &buf, 1);
}

/* The payload goes out from the one shared buffer: a 64 KiB call costs no copy here. */
static void send_call(conn *c) {
  static const char tail[] = "\"}}}";
  char head[64];
  c->want_id = c->next_id++;
  int hn = snprintf(head, sizeof head, "{\"jsonrpc\":\"2.0\",\"id\":%" PRId64, c->want_id);
  put_headers(c, (size_t)hn + B.call_mid.len + B.o.payload + sizeof tail - 1);
  aip_buf_append(&c->out, head, (size_t)hn);
  aip_buf_append(&c->out, B.call_mid.data, B.call_mid.len);
  uv_buf_t bufs[3] = {uv_buf_init(c->out.data, (unsigned)c->out.len),
                      uv_buf_init(B.payload, (unsigned)B.o.payload),
                      uv_buf_init((char *)tail, sizeof tail - 1)};
  conn_write(c, REQ_CALL, bufs, 3);
}

/* Sends whatever this connection does next, if anything. */
static void conn_next(conn *c) {
  if (B.ph == PH_DONE || !c->connected || c->closing || c->pending != REQ_NONE) return;
  if (c->write_pending) { /* the answer overtook our write callback; the request is reused */
    c->send_deferred = 1;
    return;
  }
  switch (c->state) {
  case CS_INIT:
    if (B.o.idle_sessions > 0) {
      if (B.idle_started >= B.o.idle_sessions) {
        c->state = CS_IDLE;
        return;
      }
      B.idle_started++;
    }
    send_initialize(c);
    break;
  case CS_NOTIFY: send_initialized(c); break;
  case CS_CALL: send_call(c); break;
  case CS_IDLE: break;
  }
}

/* ---- checking answers ----------------------------------------------------------------------- */

/* The JSON-RPC answer inside an SSE body: the first event whose data is a response or an error;
 * notifications (progress) and priming events (empty data) before it are skipped. `data` is
 * the event's data lines joined with '\n' as the SSE spec says. */
static int sse_find_answer(conn *c, cJSON **root, aip_rpc_msg *m) {
  const char *p = c->body.data, *end = p + c->body.len;
  aip_buf data;
  aip_buf_init(&data);
  int found = 0;
  while (p < end && !found) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    size_t len = (size_t)(le - p);
    if (len && p[len - 1] == '\r') len--;
    if (len == 0 && data.len) { /* end of an event */
      if (aip_json_parse(data.data, data.len, root) == AIP_JSON_OK) {
        aip_rpc_kind k = aip_rpc_classify(*root, m);
        if (k == AIP_RPC_RESPONSE || k == AIP_RPC_ERROR) found = 1;
        else cJSON_Delete(*root);
      } else {
        found = -1;
      }
      aip_buf_reset(&data);
    } else if (len >= 5 && memcmp(p, "data:", 5) == 0) {
      size_t skip = (len > 5 && p[5] == ' ') ? 6 : 5;
      if (data.len) aip_buf_append(&data, "\n", 1);
      aip_buf_append(&data, p + skip, len - skip);
    }
    p = nl ? nl + 1 : end;
  }
  aip_buf_free(&data);
  return found == 1 ? 0 : -1;
}

/* Parses the answer into `root`/`m` and checks that it is a result for want_id. Returns 0, or
 * -1 after recording the error. */
static int parse_answer(conn *c, cJSON **root, aip_rpc_msg *m) {
  *root = NULL;
  if (c->status != 200) {
    record_error(c, "HTTP %d: %.200s", c->status, c->body.len ? c->body.data : "");
    return -1;
  }
  int rc;
  if (c->is_sse) {
    rc = sse_find_answer(c, root, m);
  } else {
    rc = aip_json_parse(c->body.data, c->body.len, root) == AIP_JSON_OK ? 0 : -1;
    if (!rc) aip_rpc_classify(*root, m);
  }
  if (rc) {
    record_error(c, "no JSON-RPC answer in the %s body: %.200s", c->is_sse ? "SSE" : "JSON",
                 c->body.len ? c->body.data : "");
    cJSON_Delete(*root);
    *root = NULL;
    return -1;
  }
  if (!cJSON_IsNumber(m->id) || (int64_t)m->id->valuedouble != c->want_id) {
    record_error(c, "answer for the wrong id (want %" PRId64 "): %.200s", c->want_id, c->body.data);
  } else if (m->kind != AIP_RPC_RESPONSE) {
    record_error(c, "JSON-RPC error: %.200s", c->body.data);
  } else {
    return 0;
  }
  cJSON_Delete(*root);
  *root = NULL;
  return -1;
}

/* A tool result must not be isError, and echo must return our message verbatim. */
static int check_call_result(conn *c, const cJSON *result) {
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "isError"))) {
    record_error(c, "tool error: %.200s", c->body.data);
    return -1;
  }
  if (strcmp(B.o.tool, "echo") != 0) return 0;
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(content, 0), "text");
  if (!cJSON_IsString(text) || strlen(text->valuestring) != B.o.payload ||
      memcmp(text->valuestring, B.payload, B.o.payload) != 0) {
    record_error(c, "echo text differs from the message sent");
    return -1;
  }
  return 0;
}

static void on_call_answer(conn *c, uint64_t now) {
  cJSON *root;
  aip_rpc_msg m;
  if (parse_answer(c, &root, &m)) return;
  int bad = check_call_result(c, m.result);
  cJSON_Delete(root);
  if (bad || B.ph != PH_MEASURE) return;
  B.calls++;
  record_latency(now - c->sent_ns);
}

static void on_hold_done(uv_timer_t *t) { bench_finish(); }

static void idle_session_done(int ok) {
  B.idle_done++;
  B.idle_ok += ok;
  if (B.idle_done < B.o.idle_sessions) return;
  B.idle_t1 = uv_hrtime();
  B.ph = PH_HOLD;
  printf("ready sessions=%ld ok=%ld open_s=%.3f\n", B.o.idle_sessions, B.idle_ok,
         (double)(B.idle_t1 - B.idle_t0) / 1e9);
  fflush(stdout);
  uv_timer_start(&B.timer, on_hold_done, (uint64_t)(B.o.hold_s * 1000), 0);
}

static void start_warmup(void);

static void session_ready(conn *c, int ok) {
  if (ok) {
    c->state = CS_CALL;
    B.ready++;
  } else {
    c->state = CS_IDLE;
    c->dead = 1;
    B.dead++;
  }
  if (B.ph == PH_HANDSHAKE && B.ready + B.dead == B.nconns) start_warmup();
}

static void on_init_answer(conn *c) {
  cJSON *root;
  aip_rpc_msg m;
  int ok = parse_answer(c, &root, &m) == 0;
  if (ok) {
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(m.result, "protocolVersion");
    if (cJSON_IsString(pv) && strlen(pv->valuestring) < sizeof c->proto) {
      strcpy(c->proto, pv->valuestring);
    } else {
      record_error(c, "initialize result without a protocolVersion");
      ok = 0;
    }
    cJSON_Delete(root);
  }
  if (ok) strcpy(c->session, c->rsession);
  if (B.o.idle_sessions > 0) {
    c->session[0] = c->proto[0] = '\0'; /* the next initialize opens a new session */
    idle_session_done(ok);
  } else if (ok) {
    c->state = CS_NOTIFY;
  } else {
    session_ready(c, 0);
  }
}

static void on_notify_answer(conn *c) {
  int ok = c->status >= 200 && c->status < 300;
  if (!ok) record_error(c, "notifications/initialized: HTTP %d", c->status);
  session_ready(c, ok);
}

static void conn_on_answer(conn *c) {
  req_kind k = c->pending;
  uint64_t now = uv_hrtime();
  c->pending = REQ_NONE;
  c->fails = 0;
  switch (k) {
  case REQ_INIT: on_init_answer(c); break;
  case REQ_NOTIFY: on_notify_answer(c); break;
  case REQ_CALL: on_call_answer(c, now); break;
  case REQ_NONE: record_error(c, "an answer nobody asked for"); break;
  }
}

/* ---- HTTP response parsing (llhttp callbacks) ------------------------------------------------ */

static int on_message_begin(llhttp_t *p) {
  conn *c = p->data;
  c->hname_len = 0;
  c->status = 0;
  c->is_sse = 0;
  c->rsession[0] = '\0';
  aip_buf_reset(&c->hval);
  aip_buf_reset(&c->body);
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  conn *c = p->data;
  size_t room = sizeof c->hname - 1 - c->hname_len;
  if (len > room) len = room; /* a longer name is none we look at */
  memcpy(c->hname + c->hname_len, at, len);
  c->hname_len += len;
  c->hname[c->hname_len] = '\0';
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  conn *c = p->data;
  return aip_buf_append(&c->hval, at, len) ? -1 : 0;
}

static int on_header_value_complete(llhttp_t *p) {
  conn *c = p->data;
  const char *v = c->hval.len ? c->hval.data : "";
  if (strcasecmp(c->hname, "content-type") == 0) {
    c->is_sse = strncasecmp(v, "text/event-stream", 17) == 0;
  } else if (strcasecmp(c->hname, "mcp-session-id") == 0) {
    if (c->hval.len > MAX_SESSION_ID) return -1;
    memcpy(c->rsession, v, c->hval.len);
    c->rsession[c->hval.len] = '\0';
  }
  c->hname_len = 0;
  aip_buf_reset(&c->hval);
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  conn *c = p->data;
  c->status = llhttp_get_status_code(p);
  return 0;
}

/* llhttp has already removed any chunked framing. */
static int on_body(llhttp_t *p, const char *at, size_t len) {
  conn *c = p->data;
  if (c->body.len + len > MAX_BODY) return -1;
  return aip_buf_append(&c->body, at, len) ? -1 : 0;
}

/* The answer is handled outside llhttp_execute (see on_read), so the parser is paused here. */
static int on_message_complete(llhttp_t *p) {
  conn *c = p->data;
  c->keep_alive = llhttp_should_keep_alive(p);
  c->msg_done = 1;
  return HPE_PAUSED;
}

static void init_settings(llhttp_settings_t *s) {
  llhttp_settings_init(s);
  s->on_message_begin = on_message_begin;
  s->on_header_field = on_header_field;
  s->on_header_value = on_header_value;
  s->on_header_value_complete = on_header_value_complete;
  s->on_headers_complete = on_headers_complete;
  s->on_body = on_body;
  s->on_message_complete = on_message_complete;
}

/* ---- connections ------------------------------------------------------------------------- */

static void conn_connect(conn *c);

static void on_closed(uv_handle_t *h) {
  conn *c = h->data;
  c->open = c->closing = 0;
  c->write_pending = c->send_deferred = 0;
  if (c->reconnect && B.ph != PH_DONE) conn_connect(c);
}

static void conn_close(conn *c, int reconnect) {
  if (!c->open || c->closing) return;
  c->closing = 1;
  c->connected = 0;
  c->reconnect = reconnect;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* The connection broke. A request in flight is an error; the session survives it (a session is
 * not a connection), so we reconnect unless that keeps failing. */
static void conn_fail(conn *c, const char *what, int err) {
  int had_request = c->pending != REQ_NONE;
  if (had_request || err != UV_EOF) record_error(c, "%s: %s", what, uv_strerror(err));
  if (had_request && c->pending == REQ_INIT && B.o.idle_sessions > 0) idle_session_done(0);
  c->pending = REQ_NONE;
  int again = c->state != CS_IDLE && ++c->fails <= MAX_CONN_FAILS;
  if (!again && c->state != CS_IDLE && !c->dead) {
    if (B.o.idle_sessions == 0) {
      session_ready(c, 0);
    } else {
      c->state = CS_IDLE;
      c->dead = 1;
      if (++B.dead == B.nconns) bench_finish(); /* nobody left to open the rest */
    }
  }
  conn_close(c, again);
}

/* Feeds the bytes to llhttp; a complete answer pauses the parser, is handled, and parsing
 * resumes after it (bytes past an answer would be an answer nobody asked for). */
static void conn_parse(conn *c, const char *data, size_t len) {
  while (len > 0) {
    llhttp_errno_t e = llhttp_execute(&c->http, data, len);
    if (e == HPE_OK) return;
    if (e != HPE_PAUSED) {
      record_error(c, "bad HTTP answer: %s", llhttp_get_error_reason(&c->http));
      c->pending = REQ_NONE;
      conn_close(c, 1);
      return;
    }
    const char *stop = llhttp_get_error_pos(&c->http);
    len -= (size_t)(stop - data);
    data = stop;
    llhttp_resume(&c->http);
    c->msg_done = 0;
    conn_on_answer(c);
    if (c->closing) return;
    if (!c->keep_alive) {
      conn_close(c, 1);
      return;
    }
    conn_next(c);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn *c = h->data;
  *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn *c = s->data;
  if (n > 0) {
    conn_parse(c, buf->base, (size_t)n);
  } else if (n < 0) {
    /* An answer framed by the end of the connection ends here. */
    if (n == UV_EOF && c->pending != REQ_NONE) llhttp_finish(&c->http);
    if (c->msg_done) {
      c->msg_done = 0;
      conn_on_answer(c);
    }
    conn_fail(c, "read", (int)n);
  }
}

static void on_connect(uv_connect_t *r, int status) {
  conn *c = r->data;
  if (status < 0) {
    if (status != UV_ECANCELED) conn_fail(c, "connect", status);
    return;
  }
  c->connected = 1;
  uv_tcp_nodelay(&c->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc) {
    conn_fail(c, "read", rc);
    return;
  }
  conn_next(c);
}

static void conn_connect(conn *c) {
  uv_tcp_init(B.loop, &c->tcp);
  c->tcp.data = c->creq.data = c;
  c->open = 1;
  c->msg_done = 0;
  llhttp_init(&c->http, HTTP_RESPONSE, &B.settings);
  c->http.data = c;
  int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&B.addr, on_connect);
  if (rc) conn_fail(c, "connect", rc);
}

/* ---- phases ------------------------------------------------------------------------------ */

/* A request unanswered after --timeout is an error (a hung server must not pass as a slow one);
 * its connection is replaced, since the answer could still arrive on it. O(connections) a few
 * times per --timeout: cheaper than a timer per request. */
static void on_watchdog(uv_timer_t *t) {
  uint64_t now = uv_hrtime(), limit = (uint64_t)(B.o.timeout_s * 1e9);
  for (int i = 0; i < B.nconns; i++) {
    conn *c = &B.conns[i];
    if (c->pending != REQ_NONE && !c->closing && now - c->sent_ns > limit)
      conn_fail(c, "no answer", UV_ETIMEDOUT);
  }
}

static void end_measure(uv_timer_t *t) {
  B.t1 = uv_hrtime();
  B.self1 = self_cpu_us();
  if (B.o.cpu_pid && proc_cpu_ticks(B.o.cpu_pid, &B.cpu1)) B.cpu_ok = 0;
  bench_finish();
}

static void begin_measure(uv_timer_t *t) {
  B.ph = PH_MEASURE;
  B.t0 = uv_hrtime();
  B.self0 = self_cpu_us();
  B.cpu_ok = B.o.cpu_pid && proc_cpu_ticks(B.o.cpu_pid, &B.cpu0) == 0;
  uv_timer_start(&B.timer, end_measure, (uint64_t)(B.o.duration_s * 1000), 0);
}

/* Every session is ready (or has failed): the warmup starts now, so a slow handshake (the
 * gateway starting its stdio child) never falls inside the measured window. */
static void start_warmup(void) {
  if (B.ready == 0) {
    fprintf(stderr, "mcp-load: no session could be opened\n");
    bench_finish();
    return;
  }
  B.ph = PH_WARMUP;
  uv_timer_start(&B.timer, begin_measure, (uint64_t)(B.o.warmup_s * 1000), 0);
}

static void handshake_timeout(uv_timer_t *t) {
  if (B.ph != PH_HANDSHAKE) return;
  fprintf(stderr, "mcp-load: sessions not ready after %d ms (%d of %d)\n", HANDSHAKE_TIMEOUT_MS,
          B.ready, B.nconns);
  B.errors++;
  bench_finish();
}

static void bench_finish(void) {
  if (B.ph == PH_DONE) return;
  if (B.ph != PH_MEASURE && B.o.idle_sessions == 0) B.t0 = B.t1 = 0;
  B.ph = PH_DONE;
  uv_timer_stop(&B.timer);
  uv_close((uv_handle_t *)&B.timer, NULL);
  uv_close((uv_handle_t *)&B.watchdog, NULL);
  for (int i = 0; i < B.nconns; i++) conn_close(&B.conns[i], 0);
}

/* ---- report ------------------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples, in us. */
static double pct_us(double q) {
  if (B.lat_n == 0) return 0;
  size_t rank = (size_t)ceil(q * (double)B.lat_n);
  if (rank < 1) rank = 1;
  return (double)B.lat[rank - 1] / 1000.0;
}

static void report_load(void) {
  double win = (double)(B.t1 - B.t0) / 1e9;
  if (B.lat_n) qsort(B.lat, B.lat_n, sizeof *B.lat, cmp_u64); /* qsort(NULL, 0) is UB */
  printf("mode=load sessions=%d payload=%zu tool=%s window_s=%.3f calls=%" PRIu64
         " errors=%" PRIu64 " calls_per_s=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f",
         B.o.sessions, B.o.payload, B.o.tool, win, B.calls, B.errors,
         win > 0 ? (double)B.calls / win : 0.0, pct_us(0.50), pct_us(0.90), pct_us(0.99),
         pct_us(1.0));
  if (B.o.cpu_pid && B.cpu_ok && B.calls) {
    double us = (double)(B.cpu1 - B.cpu0) * 1e6 / (double)sysconf(_SC_CLK_TCK);
    printf(" cpu_pid=%d cpu_us=%.0f cpu_us_per_call=%.2f", B.o.cpu_pid, us, us / (double)B.calls);
  }
  if (B.calls)
    printf(" load_cpu_us_per_call=%.2f", (double)(B.self1 - B.self0) / (double)B.calls);
  printf("\n");
}

static void report_idle(void) {
  double open_s = B.idle_t1 > B.idle_t0 ? (double)(B.idle_t1 - B.idle_t0) / 1e9 : 0;
  printf("mode=idle sessions=%ld opened=%ld errors=%" PRIu64 " connections=%d open_s=%.3f"
         " sessions_per_s=%.1f\n",
         B.o.idle_sessions, B.idle_ok, B.errors, B.nconns, open_s,
         open_s > 0 ? (double)B.idle_ok / open_s : 0.0);
}

/* ---- options ------------------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(f,
          "usage: mcp-load --url http://HOST:PORT/PATH [--token T] [--sessions N]\n"
          "                [--duration S] [--warmup S] [--tool NAME] [--payload BYTES]\n"
          "                [--protocol VERSION] [--timeout S] [--cpu-pid PID] [--allow-errors]\n"
          "       mcp-load --url ... --idle-sessions N --hold S [--connections C]\n"
          "Closed-loop tools/call load over MCP Streamable HTTP, one session per connection;\n"
          "prints one key=value line. Exit 0 ok, 1 errors (unless --allow-errors), 2 usage.\n");
}

/* http://HOST:PORT/PATH with a numeric IPv4 host or localhost; plain HTTP only. */
static int parse_url(opts *o, const char *url) {
  if (strncmp(url, "http://", 7) != 0) return -1;
  const char *h = url + 7, *colon = strchr(h, ':'), *slash = strchr(h, '/');
  if (!colon || (slash && slash < colon) || (size_t)(colon - h) >= sizeof o->host) return -1;
  memcpy(o->host, h, (size_t)(colon - h));
  o->host[colon - h] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (port < 1 || port > 65535 || (*end && *end != '/')) return -1;
  o->port = (int)port;
  snprintf(o->path, sizeof o->path, "%s", *end ? end : "/");
  return 0;
}

static double num_arg(const char *name, const char *v, double lo, double hi) {
  char *end;
  double d = v ? strtod(v, &end) : NAN;
  if (!v || *end || !(d >= lo && d <= hi)) {
    fprintf(stderr, "mcp-load: %s needs a number from %g to %g\n", name, lo, hi);
    exit(2);
  }
  return d;
}

static void parse_args(opts *o, int argc, char **argv) {
  *o = (opts){.sessions = 64, .duration_s = 5, .warmup_s = 1, .tool = "echo", .payload = 16,
              .protocol = "2025-06-18", .hold_s = 10, .connections = 64, .timeout_s = 10};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int takes = 1;
    if (!strcmp(a, "--url")) o->url = v;
    else if (!strcmp(a, "--token")) o->token = v;
    else if (!strcmp(a, "--sessions")) o->sessions = (int)num_arg(a, v, 1, 100000);
    else if (!strcmp(a, "--duration")) o->duration_s = num_arg(a, v, 0.1, 86400);
    else if (!strcmp(a, "--warmup")) o->warmup_s = num_arg(a, v, 0, 86400);
    else if (!strcmp(a, "--tool")) o->tool = v;
    else if (!strcmp(a, "--payload")) o->payload = (size_t)num_arg(a, v, 1, 16 << 20);
    else if (!strcmp(a, "--protocol")) o->protocol = v;
    else if (!strcmp(a, "--timeout")) o->timeout_s = num_arg(a, v, 0.001, 86400);
    else if (!strcmp(a, "--cpu-pid")) o->cpu_pid = (int)num_arg(a, v, 1, 1 << 30);
    else if (!strcmp(a, "--idle-sessions")) o->idle_sessions = (long)num_arg(a, v, 1, 1e7);
    else if (!strcmp(a, "--hold")) o->hold_s = num_arg(a, v, 0, 86400);
    else if (!strcmp(a, "--connections")) o->connections = (int)num_arg(a, v, 1, 100000);
    else if (!strcmp(a, "--allow-errors")) o->allow_errors = 1, takes = 0;
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage(stdout), exit(0);
    else fprintf(stderr, "mcp-load: unknown option %s\n", a), usage(stderr), exit(2);
    if (takes && !v) fprintf(stderr, "mcp-load: %s needs a value\n", a), exit(2);
    i += takes;
  }
  if (!o->url || parse_url(o, o->url)) {
    fprintf(stderr, "mcp-load: --url http://HOST:PORT/PATH is required\n");
    exit(2);
  }
}

/* ---- main --------------------------------------------------------------------------------- */

/* The echo message: printable ASCII that needs no JSON escaping, so its size on the wire is
 * exactly --payload bytes. */
static int setup(void) {
  if (!strcmp(B.o.host, "localhost")) strcpy(B.o.host, "127.0.0.1");
  if (uv_ip4_addr(B.o.host, B.o.port, &B.addr)) {
    fprintf(stderr, "mcp-load: the host must be a numeric IPv4 address or localhost\n");
    return -1;
  }
  B.payload = malloc(B.o.payload + 1);
  if (!B.payload) return -1;
  for (size_t i = 0; i < B.o.payload; i++) B.payload[i] = (char)('a' + i % 26);
  B.payload[B.o.payload] = '\0';
  aip_buf_init(&B.call_mid);
  aip_buf_puts(&B.call_mid, ",\"method\":\"tools/call\",\"params\":{\"name\":");
  aip_buf_json_string(&B.call_mid, B.o.tool, strlen(B.o.tool), 0);
  aip_buf_puts(&B.call_mid, ",\"arguments\":{\"message\":\"");
  B.nconns = B.o.idle_sessions > 0 ? B.o.connections : B.o.sessions;
  if (B.o.idle_sessions > 0 && B.nconns > B.o.idle_sessions) B.nconns = (int)B.o.idle_sessions;
  B.conns = calloc((size_t)B.nconns, sizeof *B.conns);
  return B.conns ? 0 : -1;
}

static void teardown(void) {
  for (int i = 0; i < B.nconns; i++) {
    aip_buf_free(&B.conns[i].out);
    aip_buf_free(&B.conns[i].body);
    aip_buf_free(&B.conns[i].hval);
  }
  free(B.conns);
  free(B.payload);
  free(B.lat);
  aip_buf_free(&B.call_mid);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  parse_args(&B.o, argc, argv);
  if (setup()) return 1;
  B.loop = uv_default_loop();
  init_settings(&B.settings);
  uv_timer_init(B.loop, &B.timer);
  uv_timer_init(B.loop, &B.watchdog);
  uint64_t every = (uint64_t)(B.o.timeout_s * 250); /* a quarter of --timeout, at most 1 s */
  every = every < 10 ? 10 : every > 1000 ? 1000 : every;
  uv_timer_start(&B.watchdog, on_watchdog, every, every);
  B.ph = PH_HANDSHAKE;
  B.idle_t0 = uv_hrtime();
  if (B.o.idle_sessions == 0) uv_timer_start(&B.timer, handshake_timeout, HANDSHAKE_TIMEOUT_MS, 0);
  for (int i = 0; i < B.nconns; i++) {
    B.conns[i].next_id = 1;
    aip_buf_init(&B.conns[i].out);
    aip_buf_init(&B.conns[i].body);
    aip_buf_init(&B.conns[i].hval);
    conn_connect(&B.conns[i]);
  }
  uv_run(B.loop, UV_RUN_DEFAULT);
  if (B.o.idle_sessions > 0) report_idle();
  else report_load();
  fflush(stdout);
  int failed = B.o.idle_sessions > 0 ? B.idle_ok < B.o.idle_sessions : B.calls == 0;
  teardown();
  uv_loop_close(B.loop);
  return failed || (B.errors && !B.o.allow_errors) ? 1 : 0;
}
