/* upstream_stdio.c -- the stdio transport: one child process per upstream instance, speaking
 * newline-delimited JSON-RPC on its stdin/stdout; its stderr goes to the gateway log.
 *
 * Each spawn gets its own `child` struct. A dead child's handles close asynchronously while a
 * new child may already be starting, so the two never share state. The instance is reported
 * down only once the process has exited AND its stdout has reached EOF, so a last answer
 * written just before exit is still delivered.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/lines.h"
#include "gateway/obs/log.h"
#include "gateway/http/stream_write.h"
#include "gateway/upstream/upstream.h"

#define STOP_GRACE_MS 2000
#define MAX_STDIN_QUEUE (64u << 20)

typedef struct child {
  uv_process_t proc;
  uv_pipe_t in, out_pipe, err;
  uv_timer_t kill_timer;
  uv_check_t flush; /* writes what stdio_send queued, once per loop turn */
  aip_buf out;      /* queued messages, newline-terminated */
  aip_upstream *u; /* NULL once this child is no longer the instance's current one */
  aip_lines lines; /* stdout, framed (core/lines.c) */
  char rbuf[65536]; /* one read of stdout */
  int whole;       /* the line in progress cannot stream: held whole, up to max_upstream_message */
  int discard;     /* the sink aborted the streamed line: the rest of it is dropped */
  aip_buf eline;   /* stderr bytes after the last newline */
  int eskip;       /* dropping the rest of a stderr line too long to log (AIP_LOG_LONG_LINE) */
  uint64_t ewin_ms;   /* stderr lines logged in the second since ewin_ms (STDERR_LINES_PER_S) */
  uint32_t ewin_n, esuppressed;
  uint64_t streamed; /* bytes of the current line passed to the sink */
  int paused;        /* stdout reading stopped until the sink drains */
  int handles_open;
  int exited;
  int out_eof;
  int64_t exit_status;
  int term_signal;
  int stop_stage; /* 0 running, 1 stdin closed, 2 SIGTERM sent, 3 SIGKILL sent */
} child;

typedef struct stdio_transport {
  char **argv;
  char **env;
  char *cwd;
  child *cur;
} stdio_transport;

static void child_on_close(uv_handle_t *h) {
  child *ch = h->data;
  if (--ch->handles_open > 0) return;
  aip_lines_free(&ch->lines);
  aip_buf_free(&ch->eline);
  aip_buf_free(&ch->out);
  free(ch);
}

static void child_close_handle(child *ch, uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, child_on_close);
}

static void child_close_all(child *ch) {
  child_close_handle(ch, (uv_handle_t *)&ch->in);
  child_close_handle(ch, (uv_handle_t *)&ch->out_pipe);
  child_close_handle(ch, (uv_handle_t *)&ch->err);
  child_close_handle(ch, (uv_handle_t *)&ch->kill_timer);
  child_close_handle(ch, (uv_handle_t *)&ch->flush);
  child_close_handle(ch, (uv_handle_t *)&ch->proc);
}

/* Both the exit and stdout EOF have happened: tell the core. */
static void child_maybe_gone(child *ch) {
  if (!ch->exited || !ch->out_eof) return;
  aip_upstream *u = ch->u;
  child_close_all(ch);
  if (!u) return;
  ch->u = NULL;
  stdio_transport *t = u->transport;
  if (t->cur == ch) t->cur = NULL;
  if (u->state == AIP_UPSTREAM_STOPPING) {
    aip_upstream_transport_stopped(u);
    return;
  }
  char why[96];
  if (ch->term_signal)
    snprintf(why, sizeof(why), "killed by signal %d", ch->term_signal);
  else
    snprintf(why, sizeof(why), "exited with status %lld", (long long)ch->exit_status);
  aip_upstream_transport_down(u, why);
}

static void alloc_line(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void alloc_out(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_stdout(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void child_resume(child *ch) {
  if (!ch->paused || uv_is_closing((uv_handle_t *)&ch->out_pipe)) return;
  ch->paused = 0;
  uv_read_start((uv_stream_t *)&ch->out_pipe, alloc_out, on_stdout);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  child *ch = p->data;
  ch->exited = 1;
  ch->exit_status = status;
  ch->term_signal = sig;
  uv_timer_stop(&ch->kill_timer);
  if (ch->paused) child_resume(ch); /* the EOF still to be read is what reports it gone */
  child_maybe_gone(ch);
}

static void child_kill(child *ch, int sig) {
  if (!ch->exited) uv_process_kill(&ch->proc, sig);
}

/* Escalation: stdin closed -> (grace) SIGTERM -> (grace) SIGKILL, as MCP clients do. */
static void on_kill_timer(uv_timer_t *t) {
  child *ch = t->data;
  if (ch->exited) return;
  ch->stop_stage++;
  child_kill(ch, ch->stop_stage == 2 ? SIGTERM : SIGKILL);
  if (ch->stop_stage < 3) uv_timer_start(&ch->kill_timer, on_kill_timer, STOP_GRACE_MS, 0);
}

/* stderr: read into the line buffer itself */
static void alloc_line(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  child *ch = h->data;
  aip_buf *lb = &ch->eline;
  if (aip_buf_reserve(lb, 65536)) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init(lb->data + lb->len, (unsigned)(lb->cap - lb->len - 1));
}

static void alloc_out(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  child *ch = h->data;
  *buf = uv_buf_init(ch->rbuf, sizeof(ch->rbuf));
}

/* ---- stdout: one message a line (core/lines.h), large answers streamed --------------------- */

static void out_line(void *ctx, char *p, size_t n) {
  child *ch = ctx;
  ch->whole = 0;
  if (n && ch->u) aip_upstream_transport_message(ch->u, p, n); /* empty lines are skipped */
}

static void out_oversize(void *ctx) {
  child *ch = ctx;
  ch->whole = 0;
  if (!ch->u) return;
  aip_error("upstream %s: message larger than %llu bytes; killing the server", ch->u->label,
            (unsigned long long)ch->u->limits->max_upstream_message);
  child_kill(ch, SIGKILL);
}

/* The line in progress has passed the agent's stream threshold: stream it if it is a response
 * with its id first (else hold it whole, as before). */
static int out_long(void *ctx, const char *head, size_t n) {
  child *ch = ctx;
  aip_upstream *u = ch->u;
  if (!u || ch->whole) return 0;
  int rc = aip_upstream_transport_stream_begin(u, head, n);
  if (rc == -EINVAL) {
    ch->whole = 1;
    return 0;
  }
  ch->discard = rc < 0;
  ch->paused = rc == 1;
  ch->streamed = n;
  if (!ch->discard)
    aip_debug("upstream %s: streaming a message larger than %llu bytes", u->label,
              (unsigned long long)ch->lines.stream_at);
  return 1;
}

/* A piece of a streaming line; `end` with its newline. Non-zero: drop the rest of it. */
static int out_part(void *ctx, const char *p, size_t n, int end) {
  child *ch = ctx;
  aip_upstream *u = ch->u;
  int rc = ch->discard ? -1 : 0;
  if (!ch->discard && u) {
    ch->streamed += n;
    if (ch->streamed > u->limits->max_streamed_message) {
      aip_error("upstream %s: streamed message larger than %llu bytes; killing the server",
                u->label, (unsigned long long)u->limits->max_streamed_message);
      aip_upstream_transport_stream_end(u, -EMSGSIZE);
      child_kill(ch, SIGKILL);
      rc = -EMSGSIZE;
    } else {
      rc = aip_upstream_transport_stream_feed(u, p, n);
    }
    if (rc < 0) ch->discard = 1;
    ch->paused = rc == 1;
  }
  if (end) {
    if (!ch->discard && u) aip_upstream_transport_stream_end(u, 0);
    ch->discard = 0;
    ch->paused = 0; /* the sink is done with this message */
    ch->streamed = 0;
  }
  return rc < 0 ? -1 : 0;
}

static void on_stdout(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  child *ch = s->data;
  if (nread < 0) {
    ch->out_eof = 1;
    uv_read_stop(s);
    /* a message cut short is never completed: its HTTP response is aborted */
    if (aip_lines_cut(&ch->lines) && !ch->discard && ch->u)
      aip_upstream_transport_stream_end(ch->u, -EPIPE);
    ch->discard = ch->whole = 0;
    /* a server that closes stdout is unusable: make sure it is gone */
    if (!ch->exited) child_kill(ch, SIGKILL);
    child_maybe_gone(ch);
    return;
  }
  if (ch->u) {
    /* asked for every read: the agent's policy (its dlp.stream_threshold) may change */
    uint64_t threshold = aip_upstream_stream_threshold(ch->u);
    ch->lines.max = (size_t)ch->u->limits->max_upstream_message;
    ch->lines.stream_at = threshold ? (size_t)threshold : SIZE_MAX;
    ch->lines.on_long = threshold ? out_long : NULL;
  }
  aip_lines_feed(&ch->lines, buf->base, (size_t)nread);
  /* backpressure: the agent reads slower than the server writes */
  if (ch->paused && !ch->exited) uv_read_stop(s);
  else ch->paused = 0;
}

/* Logged whole: the log's DLP filter sees all of it before the log cuts it (log.h). */
/* Every logged line passes every agent's DLP on the loop thread (log_dlp.c): a server that
 * floods its stderr must not buy itself that much of the loop, so a child gets this many lines
 * a second; the rest are counted and the count is logged with the next line let through. */
#define STDERR_LINES_PER_S 50

static void stderr_line(child *ch, const char *p, size_t n) {
  if (ch->eskip) return; /* the rest of a line too long to log */
  uint64_t now = uv_now(ch->err.loop);
  if (now - ch->ewin_ms >= 1000) ch->ewin_ms = now, ch->ewin_n = 0;
  if (ch->ewin_n >= STDERR_LINES_PER_S) {
    ch->esuppressed++;
    return;
  }
  ch->ewin_n++;
  const char *label = ch->u ? ch->u->label : "(old)";
  if (ch->esuppressed) {
    aip_warn("upstream %s stderr: %u lines not logged (over %d a second)", label,
             ch->esuppressed, STDERR_LINES_PER_S);
    ch->esuppressed = 0;
  }
  aip_info("upstream %s stderr: %.*s", label, (int)n, p);
}

static void on_stderr(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  child *ch = s->data;
  if (nread < 0) {
    if (ch->eline.len) stderr_line(ch, ch->eline.data, ch->eline.len);
    ch->eline.len = 0;
    uv_read_stop(s);
    return;
  }
  size_t old = ch->eline.len, start = 0;
  ch->eline.len += (size_t)nread;
  for (size_t i = old; i < ch->eline.len; i++) {
    if (ch->eline.data[i] != '\n') continue;
    if (i > start) stderr_line(ch, ch->eline.data + start, i - start);
    ch->eskip = 0;
    start = i + 1;
  }
  if (ch->eline.len - start > AIP_LOG_LONG_LINE) { /* a very long line: its beginning only */
    stderr_line(ch, ch->eline.data + start, ch->eline.len - start);
    ch->eskip = 1;
    start = ch->eline.len;
  }
  memmove(ch->eline.data, ch->eline.data + start, ch->eline.len - start);
  ch->eline.len -= start;
}

static void free_strv(char **v);

static int stdio_start(aip_upstream *u) {
  stdio_transport *t = u->transport;
  /* through the shim, so the child dies with the gateway (exec_shim.c); the program is looked
   * up first so that a missing one is reported as such */
  char *program = NULL, **shim = NULL;
  int err = aip_exec_resolve(t->argv[0], t->env, &program);
  if (err) {
    aip_error("upstream %s: cannot start %s: %s", u->label, t->argv[0], uv_strerror(err));
    return err;
  }
  shim = aip_exec_shim_argv(program, t->argv);
  child *ch = calloc(1, sizeof(*ch));
  if (!ch) {
    free(program);
    free_strv(shim);
    return -ENOMEM;
  }
  ch->u = u;
  aip_buf_init(&ch->eline);
  ch->lines.ctx = ch;
  ch->lines.max = (size_t)u->limits->max_upstream_message;
  ch->lines.stream_at = SIZE_MAX;
  ch->lines.on_line = out_line;
  ch->lines.on_oversize = out_oversize;
  ch->lines.on_part = out_part;
  uv_pipe_init(u->loop, &ch->in, 0);
  uv_pipe_init(u->loop, &ch->out_pipe, 0);
  uv_pipe_init(u->loop, &ch->err, 0);
  uv_timer_init(u->loop, &ch->kill_timer);
  uv_check_init(u->loop, &ch->flush);
  aip_buf_init(&ch->out);
  ch->in.data = ch->out_pipe.data = ch->err.data = ch->kill_timer.data = ch->proc.data = ch;
  ch->flush.data = ch;
  ch->handles_open = 6;

  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t *)&ch->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&ch->out_pipe;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&ch->err;
  uv_process_options_t opt;
  memset(&opt, 0, sizeof(opt));
  opt.file = shim ? shim[0] : program;
  opt.args = shim ? shim : t->argv;
  opt.env = t->env;
  opt.cwd = t->cwd;
  opt.stdio = stdio;
  opt.stdio_count = 3;
  opt.exit_cb = on_exit_cb;
  err = uv_spawn(u->loop, &ch->proc, &opt);
  free(program);
  free_strv(shim);
  if (err) {
    aip_error("upstream %s: cannot start %s: %s", u->label, t->argv[0], uv_strerror(err));
    ch->u = NULL;
    child_close_all(ch);
    return err;
  }
  t->cur = ch;
  uv_read_start((uv_stream_t *)&ch->out_pipe, alloc_out, on_stdout);
  uv_read_start((uv_stream_t *)&ch->err, alloc_line, on_stderr);
  aip_info("upstream %s: started pid %d", u->label, ch->proc.pid);
  aip_upstream_transport_up(u);
  return 0;
}

/* Runs after the loop's I/O phase: every message queued during this turn leaves in one
 * write(2). With many calls in flight that saves a syscall per call. */
static void on_flush(uv_check_t *h) {
  child *ch = h->data;
  uv_check_stop(h);
  if (!ch->out.len || ch->stop_stage) return;
  size_t n;
  char *data = aip_buf_steal(&ch->out, &n);
  /* a failed write shows up as the child's death on its other pipes */
  aip_stream_write((uv_stream_t *)&ch->in, data, n, NULL, NULL);
}

static int stdio_send(aip_upstream *u, uint64_t id, const char *p, size_t n) {
  stdio_transport *t = u->transport;
  child *ch = t->cur;
  if (!ch || ch->stop_stage) return -EPIPE;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&ch->in) + ch->out.len > MAX_STDIN_QUEUE) {
    aip_error("upstream %s: not reading its stdin; killing it", u->label);
    child_kill(ch, SIGKILL);
    return -ENOBUFS;
  }
  int err = aip_buf_append(&ch->out, p, n);
  if (!err) err = aip_buf_append(&ch->out, "\n", 1);
  if (err) return err;
  if (!uv_is_active((uv_handle_t *)&ch->flush)) uv_check_start(&ch->flush, on_flush);
  return 0;
}

static void stdio_stop(aip_upstream *u) {
  stdio_transport *t = u->transport;
  child *ch = t->cur;
  if (!ch) {
    aip_upstream_transport_stopped(u);
    return;
  }
  if (ch->stop_stage) return;
  ch->stop_stage = 1;
  child_close_handle(ch, (uv_handle_t *)&ch->in); /* EOF on stdin: the polite way to stop */
  uv_timer_start(&ch->kill_timer, on_kill_timer, STOP_GRACE_MS, 0);
}

static void free_strv(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

static void stdio_free(aip_upstream *u) {
  stdio_transport *t = u->transport;
  free_strv(t->argv);
  free_strv(t->env);
  free(t->cwd);
  free(t);
}

static void stdio_resume(aip_upstream *u) {
  stdio_transport *t = u->transport;
  if (t->cur) child_resume(t->cur);
}

static const aip_upstream_ops stdio_ops = {stdio_start, stdio_send, NULL, stdio_stop, stdio_free,
                                           stdio_resume};

/* The child sees only a few harmless variables of ours plus its configured `env`, as the MCP
 * SDK's stdio client does: the gateway's own environment may hold secrets. */
static char **build_env(const aip_kvlist *extra) {
  static const char *keep[] = {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "TMPDIR"};
  size_t nkeep = sizeof(keep) / sizeof(keep[0]);
  char **env = calloc(nkeep + extra->n + 1, sizeof(char *));
  if (!env) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < nkeep; i++) {
    int overridden = 0;
    for (size_t j = 0; j < extra->n; j++) overridden |= strcmp(extra->items[j].key, keep[i]) == 0;
    const char *v = getenv(keep[i]);
    if (!v || overridden) continue;
    if (asprintf(&env[n], "%s=%s", keep[i], v) < 0) goto fail;
    n++;
  }
  for (size_t j = 0; j < extra->n; j++) {
    if (asprintf(&env[n], "%s=%s", extra->items[j].key, extra->items[j].value) < 0) goto fail;
    n++;
  }
  return env;
fail:
  env[n] = NULL;
  free_strv(env);
  return NULL;
}

aip_upstream *aip_upstream_stdio_new(uv_loop_t *loop, const aip_server_config *server,
                                     const char *cfg_dir, const char *label,
                                     const aip_limits *limits, const aip_upstream_hooks *hooks) {
  aip_upstream *u = calloc(1, sizeof(*u));
  stdio_transport *t = calloc(1, sizeof(*t));
  if (!u || !t) goto fail;
  t->argv = calloc(server->command_n + 1, sizeof(char *));
  if (!t->argv) goto fail;
  for (size_t i = 0; i < server->command_n; i++)
    if (!(t->argv[i] = strdup(server->command[i]))) goto fail;
  /* A relative program path ("bin/server") is relative to the config file, like every other
   * path in it; a bare name ("node") is looked up in PATH. */
  if (strchr(t->argv[0], '/') && t->argv[0][0] != '/' && cfg_dir) {
    char *abs = NULL;
    if (asprintf(&abs, "%s/%s", cfg_dir, t->argv[0]) < 0) goto fail;
    free(t->argv[0]);
    t->argv[0] = abs;
  }
  if (!(t->env = build_env(&server->env))) goto fail;
  if (server->cwd && !(t->cwd = strdup(server->cwd))) goto fail;
  if (aip_upstream_init(u, &stdio_ops, t, loop, server, label, limits, hooks)) goto fail;
  u->shared_reader = 1; /* every answer comes through the child's stdout */
  return u;
fail:
  if (t) {
    free_strv(t->argv);
    free_strv(t->env);
    free(t->cwd);
  }
  free(t);
  free(u);
  return NULL;
}
