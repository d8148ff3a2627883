/* wrapper_io.c -- the stdio wrapper's byte plumbing: our stdin/stdout (pipes, sockets, ttys or
 * regular files) and the child's three pipes, framed by core/lines.c; every write goes through
 * aip_stream_write.
 *
 * Back-pressure: a transparent proxy must not buffer without bound when one side stops reading.
 * Reading the child's stdout pauses while our stdout queue holds more than FLOW_HIGH bytes;
 * reading stdin pauses while the child's stdin queue does. Our own replies to the client (errors,
 * approval questions) are smaller than the lines that cause them, so stdout only pauses stdin
 * past OUT_HARD_CAP: below that, stdin keeps being read and a client that closes it while not
 * reading our stdout is still noticed. Each side resumes when the queue that held it drains.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/obs/log.h"
#include "gateway/http/stream_write.h"
#include "gateway/wrapper/wrapper.h"

#define FLOW_HIGH (4u << 20)
#define OUT_HARD_CAP (64u << 20)
#define OUT_DRAIN_MS 5000

/* ---- newline framing (core/lines.c) ------------------------------------------------------- */

static void client_line(void *w, char *line, size_t n) { aip_wrapper_client_line(w, line, n); }
static void client_oversize(void *w) { aip_wrapper_client_oversize(w); }
static void server_line(void *w, char *line, size_t n) { aip_wrapper_server_line(w, line, n); }
static void server_oversize(void *w) { aip_wrapper_server_oversize(w); }

/* ---- writes --------------------------------------------------------------------------------- */

static size_t queued(uv_stream_t *s, int open) {
  return s && open ? uv_stream_get_write_queue_size(s) : 0;
}

static void stdin_read_file(aip_wrapper *w);
static void child_out_start(aip_wrapper *w);
static void alloc_read(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_stdin(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void aip_wrapper_flow(aip_wrapper *w) {
  size_t outq = queued(w->out, w->out_open);
  size_t childq = queued((uv_stream_t *)&w->child_in, w->child_in_open);
  int want_in = w->in_open && !w->in_eof && !w->finishing && w->child_started &&
                outq < OUT_HARD_CAP && childq < FLOW_HIGH && !w->audit_full &&
                w->calls_owed < AIP_WRAPPER_OWED_MAX;
  int want_child = w->child_started && !w->child_out_eof && outq < FLOW_HIGH;
  if (want_in != w->in_reading) {
    w->in_reading = want_in;
    if (w->in && want_in) uv_read_start(w->in, alloc_read, on_stdin);
    else if (w->in) uv_read_stop(w->in);
    else if (want_in) stdin_read_file(w);
  }
  if (want_child != w->child_out_reading) {
    w->child_out_reading = want_child;
    if (want_child) child_out_start(w);
    else uv_read_stop((uv_stream_t *)&w->child_out);
  }
}

static void on_client_written(void *arg, int status) {
  aip_wrapper *w = arg;
  if (status < 0 && status != UV_ECANCELED && !w->out_broken) {
    w->out_broken = 1;
    aip_wrapper_client_gone(w, "stdout closed");
  }
  aip_wrapper_flow(w);
}

static int write_file_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Takes `data` (malloc'd, `n` bytes). */
static void client_write(aip_wrapper *w, char *data, size_t n) {
  int err;
  if (!w->out) {
    err = write_file_all(STDOUT_FILENO, data, n);
    free(data);
  } else {
    err = aip_stream_write(w->out, data, n, on_client_written, w);
  }
  if (err < 0) {
    w->out_broken = 1;
    aip_wrapper_client_gone(w, "stdout closed");
    return;
  }
  if (err == 1) aip_wrapper_flow(w);
}

void aip_wrapper_to_client(aip_wrapper *w, const char *p, size_t n) {
  if (!w->out_open || w->out_broken) return;
  if (w->out_partial) {
    /* a streamed server line is half written: our message goes out after its newline */
    if (aip_buf_append(&w->out_held, p, n) || aip_buf_append(&w->out_held, "\n", 1))
      aip_error("out of memory holding a message for the client; message dropped");
    return;
  }
  char *data = malloc(n + 1);
  if (!data) {
    aip_error("out of memory writing to the client; message dropped");
    return;
  }
  memcpy(data, p, n);
  data[n] = '\n';
  client_write(w, data, n + 1);
}

void aip_wrapper_to_client_part(aip_wrapper *w, const char *p, size_t n, int end) {
  if (!w->out_open || w->out_broken) return;
  w->out_partial = !end;
  char *data = n || end ? malloc(n + 1) : NULL;
  if (data) {
    memcpy(data, p, n);
    if (end) data[n++] = '\n';
    client_write(w, data, n);
  } else if (n || end) {
    aip_error("out of memory writing to the client; output cut");
  }
  if (end && w->out_held.len && w->out_open && !w->out_broken) {
    size_t len = w->out_held.len;
    client_write(w, aip_buf_steal(&w->out_held, NULL), len);
  }
}

static void on_child_written(void *arg, int status) {
  /* A failed write shows up as the child's exit; nothing else to do. */
  aip_wrapper_flow(arg);
}

void aip_wrapper_to_child(aip_wrapper *w, const char *p, size_t n) {
  if (!w->child_in_open || w->stop_stage) {
    aip_debug("child stdin closed; message dropped");
    return;
  }
  char *data = malloc(n + 1);
  if (!data) {
    aip_error("out of memory writing to the server; message dropped");
    return;
  }
  memcpy(data, p, n);
  data[n] = '\n';
  int err = aip_stream_write((uv_stream_t *)&w->child_in, data, n + 1, on_child_written, w);
  if (err < 0) aip_debug("write to the server failed: %s", uv_strerror(err));
  if (err == 1) aip_wrapper_flow(w);
}

/* ---- our stdin ------------------------------------------------------------------------------ */

static void alloc_read(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  aip_wrapper *w = h->data;
  *buf = uv_buf_init(w->read_buf, sizeof(w->read_buf));
}

static void stdin_eof(aip_wrapper *w, const char *why) {
  if (w->in_eof) return;
  w->in_eof = 1;
  aip_lines_end(&w->in_lines);
  aip_wrapper_close_stdin(w);
  aip_wrapper_client_gone(w, why);
}

static void on_stdin(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  aip_wrapper *w = s->data;
  if (nread < 0) {
    stdin_eof(w, nread == UV_EOF ? "stdin closed" : uv_strerror((int)nread));
    return;
  }
  aip_lines_feed(&w->in_lines, buf->base, (size_t)nread);
}

static void on_stdin_file(uv_fs_t *req) {
  aip_wrapper *w = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  w->in_file_busy = 0;
  if (!w->in_open) return;
  if (n <= 0) {
    stdin_eof(w, n < 0 ? uv_strerror((int)n) : "stdin closed");
    return;
  }
  aip_lines_feed(&w->in_lines, w->in_file_buf, (size_t)n);
  if (w->in_reading && w->in_open && !w->in_eof) stdin_read_file(w);
}

/* A regular file (or /dev/null) as stdin: read through the thread pool, one block at a time,
 * into its own buffer (read_buf belongs to the loop thread's stream reads). */
static void stdin_read_file(aip_wrapper *w) {
  if (w->in_file_busy) return;
  uv_buf_t b = uv_buf_init(w->in_file_buf, sizeof(w->in_file_buf));
  w->in_req.data = w;
  if (uv_fs_read(w->loop, &w->in_req, STDIN_FILENO, &b, 1, -1, on_stdin_file) == 0)
    w->in_file_busy = 1;
  else
    stdin_eof(w, "stdin unreadable");
}

void aip_wrapper_close_stdin(aip_wrapper *w) {
  if (!w->in_open) return;
  w->in_open = 0;
  w->in_reading = 0;
  if (w->in && !uv_is_closing(&w->in_h.handle)) uv_close(&w->in_h.handle, NULL);
}

static void stdout_closed(aip_wrapper *w) {
  if (!uv_is_closing(&w->out_h.handle)) uv_close(&w->out_h.handle, NULL);
  if (!uv_is_closing((uv_handle_t *)&w->out_drain)) uv_close((uv_handle_t *)&w->out_drain, NULL);
}

static void on_stdout_shutdown(uv_shutdown_t *req, int status) { stdout_closed(req->data); }

/* A client that stopped reading must not keep the wrapper alive forever. */
static void on_out_drain(uv_timer_t *t) {
  aip_wrapper *w = t->data;
  aip_warn("the client stopped reading; %zu bytes of output dropped",
           uv_stream_get_write_queue_size(w->out));
  stdout_closed(w);
}

/* Closes stdout once everything queued has been written (for at most OUT_DRAIN_MS). */
void aip_wrapper_close_stdout(aip_wrapper *w) {
  if (!w->out_open) return;
  w->out_open = 0;
  if (!w->out || uv_is_closing(&w->out_h.handle)) return;
  w->out_shutdown.data = w;
  if (w->out_broken || uv_shutdown(&w->out_shutdown, w->out, on_stdout_shutdown) != 0) {
    stdout_closed(w);
    return;
  }
  uv_timer_start(&w->out_drain, on_out_drain, OUT_DRAIN_MS, 0);
}

/* A stream for fd 0 or 1, or NULL for a regular file (or anything libuv cannot poll). */
static uv_stream_t *open_fd(aip_wrapper *w, aip_wrapper_stream *h, int fd, int readable) {
  int err = -1;
  switch (uv_guess_handle(fd)) {
  case UV_NAMED_PIPE:
    if (!(err = uv_pipe_init(w->loop, &h->pipe, 0))) err = uv_pipe_open(&h->pipe, fd);
    break;
  case UV_TTY:
    err = uv_tty_init(w->loop, &h->tty, fd, readable);
    break;
  case UV_TCP:
    if (!(err = uv_tcp_init(w->loop, &h->tcp))) err = uv_tcp_open(&h->tcp, fd);
    break;
  default:
    return NULL;
  }
  if (err) {
    if (h->handle.type != UV_UNKNOWN_HANDLE) uv_close(&h->handle, NULL);
    return NULL;
  }
  h->handle.data = w;
  return &h->stream;
}

int aip_wrapper_io_open(aip_wrapper *w) {
  w->in_lines.max = (size_t)w->max_message;
  w->in_lines.ctx = w;
  w->in_lines.on_line = client_line;
  w->in_lines.on_oversize = client_oversize;
  w->in = open_fd(w, &w->in_h, STDIN_FILENO, 1);
  w->out = open_fd(w, &w->out_h, STDOUT_FILENO, 0);
  if (w->out) {
    uv_timer_init(w->loop, &w->out_drain);
    w->out_drain.data = w;
  }
  w->in_open = w->out_open = 1;
  return 0;
}

/* ---- the child's pipes ---------------------------------------------------------------------- */

static void on_child_stdout(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  aip_wrapper *w = s->data;
  if (nread < 0) {
    aip_lines_end(&w->child_lines);
    w->child_out_eof = 1;
    w->child_out_reading = 0;
    uv_read_stop(s);
    aip_wrapper_child_maybe_gone(w);
    return;
  }
  w->child_read_total += (uint64_t)nread;
  aip_lines_feed(&w->child_lines, buf->base, (size_t)nread);
}

static void child_out_start(aip_wrapper *w) {
  uv_read_start((uv_stream_t *)&w->child_out, alloc_read, on_child_stdout);
}

/* Logged whole: the log's DLP filter sees all of it before the log cuts it (log.h). */
static void stderr_line(aip_wrapper *w, const char *p, size_t n) {
  if (w->err_skip) return; /* the rest of a line too long to log */
  if (n && p[n - 1] == '\r') n--;
  aip_info("[subprocess stderr] %.*s", (int)n, p);
}

/* The child's stderr goes to ours line by line, prefixed; of a very long line, only its
 * beginning (AIP_LOG_LONG_LINE). */
void aip_wrapper_stderr_out(aip_wrapper *w, const char *p, size_t n, int eof) {
  aip_buf *l = &w->err_line;
  const char *end = p + n;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t take = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (aip_buf_append(l, p, take)) l->len = 0;
    if (nl || l->len >= AIP_LOG_LONG_LINE) {
      if (nl || l->len) stderr_line(w, l->data ? l->data : "", l->len);
      w->err_skip = !nl;
      l->len = 0;
    }
    p += take + (nl ? 1 : 0);
  }
  if (eof && l->len) stderr_line(w, l->data, l->len);
  if (eof) l->len = 0, w->err_skip = 0;
}

/* With dlp.filter_stderr the bytes pass DLP first (wrapper_dlp.c). */
static void on_child_stderr(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  aip_wrapper *w = s->data;
  int eof = nread < 0;
  const char *p = eof ? "" : buf->base;
  size_t n = eof ? 0 : (size_t)nread;
  if (eof) uv_read_stop(s);
  if (!aip_wrapper_dlp_stderr_take(w, p, n, eof)) aip_wrapper_stderr_out(w, p, n, eof);
}

int aip_wrapper_child_pipes_start(aip_wrapper *w) {
  w->child_lines.max = (size_t)w->max_message;
  w->child_lines.ctx = w;
  w->child_lines.on_line = server_line;
  w->child_lines.on_oversize = server_oversize;
  if (w->err_stream) { /* DLP holds stderr back: flushed when the child goes quiet */
    uv_timer_init(w->loop, &w->err_idle);
    w->err_idle.data = w;
  }
  w->child_in_open = 1;
  w->child_out_reading = 1;
  child_out_start(w);
  return uv_read_start((uv_stream_t *)&w->child_err, alloc_read, on_child_stderr);
}
