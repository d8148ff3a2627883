/* stdio transport: one JSON-RPC message per line on stdin/stdout.
 *
 * stdin and stdout are libuv streams when they are pipes, sockets or ttys, so
 * a `slow` call's timer keeps firing while more requests are read. Regular
 * files (and /dev/null) cannot be polled, so they fall back to uv_fs_read for
 * stdin and blocking write() for stdout. */
#include "transport_stdio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK ((size_t)64 * 1024)
/* Larger than any sane request (the biggest test payloads are ~64 MiB). */
#define MAX_LINE ((size_t)160 * 1024 * 1024)
/* After a huge line the buffer is given back rather than kept at its peak. */
#define KEEP_BUFFER ((size_t)4 * 1024 * 1024)

typedef union stream_handle {
  uv_pipe_t pipe;
  uv_tty_t tty;
} stream_handle;

typedef struct stdio_transport {
  uv_loop_t *loop;
  mcp_server *srv;
  stream_handle in_h, out_h;
  uv_stream_t *in, *out; /* NULL when the fd is a regular file */
  uv_fs_t fs_req;        /* stdin reads in file mode */
  uv_shutdown_t shutdown_req;
  char *buf; /* unconsumed input: at most one partial line after process_lines */
  size_t len, cap, scanned;
  bool discarding; /* inside an oversized line: drop bytes until '\n' */
  bool closing, out_failed;
  int status;
} stdio_transport;

typedef struct write_req {
  uv_write_t req;
  char *json;
} write_req;

static char k_newline[] = "\n"; /* uv_buf_t wants a non-const pointer */

/* ------------------------------------------------------------------ output */

static void write_sync(stdio_transport *t, const char *p, size_t len) {
  while (len && !t->out_failed) {
    ssize_t n = write(STDOUT_FILENO, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fprintf(stderr, "[aip-test-server] stdout write failed: %s\n", strerror(errno));
      t->out_failed = true;
      return;
    }
    p += n, len -= (size_t)n;
  }
}

static void begin_shutdown(stdio_transport *t);

static void on_write(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  stdio_transport *t = req->data;
  free(w->json);
  free(w);
  if (status < 0 && !t->out_failed) {
    fprintf(stderr, "[aip-test-server] stdout write failed: %s\n", uv_strerror(status));
    t->out_failed = true;
    begin_shutdown(t); /* the client is gone; nobody can read our answers */
  }
}

/* mcp_emit_fn. Runs inside the core, so errors only set out_failed; the
 * shutdown happens later, outside the core (see process_lines). */
static void on_emit(void *ctx, mcp_out_kind kind, const cJSON *related_id, char *json, size_t len) {
  stdio_transport *t = ctx;
  if (!json) return; /* MCP_OUT_DROPPED: stdio has no per-request stream to close */
  if (t->out_failed) {
    free(json);
    return;
  }
  if (!t->out) {
    write_sync(t, json, len);
    write_sync(t, k_newline, 1);
    free(json);
    return;
  }
  write_req *w = malloc(sizeof *w);
  if (!w) {
    free(json);
    fprintf(stderr, "[aip-test-server] out of memory; message dropped\n");
    return;
  }
  w->json = json;
  w->req.data = t;
  uv_buf_t bufs[2] = {uv_buf_init(json, (unsigned)len), uv_buf_init(k_newline, 1)};
  int rc = uv_write(&w->req, t->out, bufs, 2, on_write);
  if (rc) {
    fprintf(stderr, "[aip-test-server] stdout write failed: %s\n", uv_strerror(rc));
    t->out_failed = true;
    free(json);
    free(w);
  }
}

/* ------------------------------------------------------------------ shutdown */

static void on_shutdown(uv_shutdown_t *req, int status) {
  uv_close((uv_handle_t *)req->handle, NULL);
}

/* Stops reading, drops in-flight calls, and lets queued writes drain: the
 * shutdown request completes only after every earlier uv_write. */
static void begin_shutdown(stdio_transport *t) {
  if (t->closing) return;
  t->closing = true;
  mcp_server_free(t->srv);
  t->srv = NULL;
  if (t->in) {
    uv_read_stop(t->in);
    uv_close((uv_handle_t *)t->in, NULL);
  }
  if (t->out && uv_shutdown(&t->shutdown_req, t->out, on_shutdown) != 0)
    uv_close((uv_handle_t *)t->out, NULL);
}

/* ------------------------------------------------------------------ input */

static bool reserve(stdio_transport *t, size_t extra) {
  if (t->cap - t->len >= extra) return true;
  size_t cap = t->cap ? t->cap : READ_CHUNK;
  while (cap - t->len < extra) cap *= 2;
  char *grown = realloc(t->buf, cap);
  if (!grown) return false;
  t->buf = grown;
  t->cap = cap;
  return true;
}

static void handle_line(stdio_transport *t, const char *line, size_t len) {
  if (len && line[len - 1] == '\r') len--;
  size_t i = 0;
  while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
  if (i == len) return; /* blank lines are not messages */
  mcp_server_handle_json(t->srv, line, len);
}

/* Handles every complete line in buf and keeps the partial tail. Only bytes
 * not yet scanned are searched, so a long line arriving in chunks is O(n). */
static void process_lines(stdio_transport *t) {
  size_t start = 0;
  char *nl;
  while (!t->out_failed && (nl = memchr(t->buf + t->scanned, '\n', t->len - t->scanned))) {
    size_t end = (size_t)(nl - t->buf);
    if (t->discarding) {
      t->discarding = false;
      mcp_server_handle_json(t->srv, "", 0); /* an empty text is a parse error: -32700 */
    } else {
      handle_line(t, t->buf + start, end - start);
    }
    start = t->scanned = end + 1;
  }
  if (t->out_failed) {
    begin_shutdown(t);
    return;
  }
  if (start) memmove(t->buf, t->buf + start, t->len - start);
  t->len -= start;
  t->scanned = t->len;
  if (t->len > MAX_LINE && !t->discarding) {
    fprintf(stderr, "[aip-test-server] input line longer than %zu bytes; dropped\n", MAX_LINE);
    t->discarding = true;
  }
  if (t->discarding) t->len = t->scanned = 0;
  if (t->len == 0 && t->cap > KEEP_BUFFER) {
    free(t->buf);
    t->buf = NULL;
    t->cap = 0;
  }
}

static void end_of_input(stdio_transport *t) {
  if (t->len && !t->discarding && !t->closing) handle_line(t, t->buf, t->len); /* no final '\n' */
  t->len = t->scanned = 0;
  begin_shutdown(t);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  stdio_transport *t = h->data;
  /* A zero-length buffer makes libuv report UV_ENOBUFS to on_read. */
  *b = reserve(t, READ_CHUNK) ? uv_buf_init(t->buf + t->len, (unsigned)READ_CHUNK)
                              : uv_buf_init(NULL, 0);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  stdio_transport *t = s->data;
  if (n > 0) {
    t->len += (size_t)n;
    process_lines(t);
  } else if (n < 0) {
    if (n != UV_EOF) fprintf(stderr, "[aip-test-server] stdin: %s\n", uv_strerror((int)n));
    end_of_input(t);
  }
}

static void fs_read_next(stdio_transport *t);

static void on_fs_read(uv_fs_t *req) {
  stdio_transport *t = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  if (t->closing) return;
  if (n > 0) {
    t->len += (size_t)n;
    process_lines(t);
    if (!t->closing) fs_read_next(t);
    return;
  }
  if (n < 0) fprintf(stderr, "[aip-test-server] stdin: %s\n", uv_strerror((int)n));
  end_of_input(t);
}

static void fs_read_next(stdio_transport *t) {
  if (!reserve(t, READ_CHUNK)) {
    fprintf(stderr, "[aip-test-server] out of memory reading stdin\n");
    end_of_input(t);
    return;
  }
  uv_buf_t b = uv_buf_init(t->buf + t->len, (unsigned)READ_CHUNK);
  t->fs_req.data = t;
  if (uv_fs_read(t->loop, &t->fs_req, STDIN_FILENO, &b, 1, -1, on_fs_read) != 0) end_of_input(t);
}

/* ------------------------------------------------------------------ setup */

/* Opens fd as a libuv stream, or leaves *stream NULL for regular files. */
static int open_stream(stdio_transport *t, int fd, stream_handle *h, uv_stream_t **stream) {
  uv_handle_type type = uv_guess_handle(fd);
  int rc;
  *stream = NULL;
  if (type == UV_FILE) return 0;
  if (type == UV_TTY) {
    rc = uv_tty_init(t->loop, &h->tty, fd, fd == STDIN_FILENO);
  } else if (type == UV_NAMED_PIPE || type == UV_TCP) {
    rc = uv_pipe_init(t->loop, &h->pipe, 0);
    if (rc == 0 && (rc = uv_pipe_open(&h->pipe, fd)) != 0) uv_close((uv_handle_t *)&h->pipe, NULL);
  } else {
    rc = UV_EBADF;
  }
  if (rc) {
    fprintf(stderr, "[aip-test-server] cannot use fd %d: %s\n", fd, uv_strerror(rc));
    return rc;
  }
  *stream = (uv_stream_t *)h;
  (*stream)->data = t;
  return 0;
}

int stdio_transport_run(uv_loop_t *loop, const mcp_server_options *opts) {
  stdio_transport t;
  memset(&t, 0, sizeof t);
  t.loop = loop;
  if (open_stream(&t, STDIN_FILENO, &t.in_h, &t.in) ||
      open_stream(&t, STDOUT_FILENO, &t.out_h, &t.out) ||
      !(t.srv = mcp_server_new(loop, opts, on_emit, &t))) {
    t.status = 1;
    begin_shutdown(&t);
  } else {
    fprintf(stderr, "[%s] serving MCP on stdio (pid %d)\n", opts->name, (int)getpid());
    if (t.in) {
      int rc = uv_read_start(t.in, on_alloc, on_read);
      if (rc) {
        fprintf(stderr, "[aip-test-server] stdin: %s\n", uv_strerror(rc));
        end_of_input(&t);
      }
    } else {
      fs_read_next(&t);
    }
  }
  uv_run(loop, UV_RUN_DEFAULT);
  free(t.buf);
  return t.status;
}
