/* wrapper.c -- `aip --target "CMD ARGS" --policy agent.yaml [--audit FILE] [--verbose]`: the
 * command line, the policy and audit log, the child process, signals and the exit code of the
 * AIP-compatible stdio wrapper (wrapper.h lists the other files; docs/stdio-wrapper.md).
 *
 * Lifecycle, as the reference proxy and MCP clients do it:
 *   - our stdin ends (or our stdout breaks): the child's stdin is closed; 2 s later SIGTERM,
 *     2 s after that SIGKILL, unless it exits first;
 *   - SIGTERM/SIGINT to us: SIGTERM to the child, SIGKILL 10 s later (a second signal: at once);
 *   - the child exits: its last output is delivered, then we exit with its code (128 + signal
 *     when it was killed), the audit log flushed.
 * The child starts as `aip --aip-internal-exec <our pid> PROGRAM ARGS` which sets
 * PR_SET_PDEATHSIG and execs PROGRAM, so a wrapper killed with SIGKILL leaves no orphan server.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <sodium.h>

#include "config/signing.h"
#include "gateway/core/policy_source.h"
#include "gateway/obs/log.h"
#include "gateway/upstream/upstream.h" /* the exec shim */
#include "gateway/wrapper/wrapper.h"

#define STDIN_GRACE_MS 2000  /* stdin closed -> SIGTERM -> SIGKILL, as the MCP SDK client does */
#define SIGNAL_GRACE_MS 10000 /* SIGTERM forwarded -> SIGKILL, as the reference does */
#define EXIT_DRAIN_MS 500    /* after the child's exit, how long its stdout may stay open */
#define OUT_PROGRESS_MS 5000 /* ... while it still delivers output: how long without progress */

static const char usage[] =
    "usage: aip --target \"CMD ARGS\" [--policy agent.yaml] [--audit FILE] [--verbose]\n"
    "           [--approval-timeout 60s] [--max-message 16MiB] [--dlp-cache DIR]\n"
    "           [--trusted-keys a.pub,b.pub]\n"
    "       aip --target \"CMD ARGS\" --policy agent.yaml --generate-cursor-config\n"
    "\n"
    "Runs CMD (split on white space, no quoting) as an MCP server over stdio and proxies\n"
    "newline-delimited JSON-RPC between it and the client on stdin/stdout, enforcing the AIP\n"
    "policy on every client message. Exits with CMD's exit code.\n"
    "\n"
    "  --target CMD             MCP server command line (required)\n"
    "  --policy FILE            AgentPolicy YAML (default agent.yaml)\n"
    "  --audit FILE             audit log, JSON lines (default aip-audit.jsonl)\n"
    "  --verbose                log every message's direction and method on stderr\n"
    "  --approval-timeout D     how long an `ask` waits for the user (default 60s)\n"
    "  --max-message SIZE       longest JSON-RPC line in either direction (default 16MiB)\n"
    "  --dlp-cache DIR          keep compiled DLP rule databases in DIR (faster starts)\n"
    "  --trusted-keys FILES     Ed25519 public keys (comma-separated): the policy must be\n"
    "                           signed by one of them (aip sign-policy), else aip exits 1\n"
    "  --generate-cursor-config print an mcpServers entry for Cursor / Claude and exit\n"
    "  --allow-writable-config  start even if group or others can write the policy (development)\n";

/* ---- options -------------------------------------------------------------------------------- */

typedef struct flags {
  const char *target, *policy, *audit, *approval_timeout, *max_message, *dlp_cache, *trusted_keys;
  int verbose, cursor, help, allow_writable;
} flags;

static int bool_value(const char *v, int *out) {
  if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "t") || !strcmp(v, "TRUE"))
    *out = 1;
  else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "f") || !strcmp(v, "FALSE"))
    *out = 0;
  else
    return -1;
  return 0;
}

/* Go `flag` syntax, as the reference parses it: -name or --name, `=value` or the next word;
 * booleans take no separate word. Returns 0 or prints the problem and returns -1. */
static int parse_flags(int argc, char **argv, flags *f) {
  struct { const char *name; const char **s; int *b; } tab[] = {
      {"target", &f->target, NULL},   {"policy", &f->policy, NULL},
      {"audit", &f->audit, NULL},     {"approval-timeout", &f->approval_timeout, NULL},
      {"max-message", &f->max_message, NULL}, {"dlp-cache", &f->dlp_cache, NULL},
      {"verbose", NULL, &f->verbose}, {"trusted-keys", &f->trusted_keys, NULL},
      {"generate-cursor-config", NULL, &f->cursor}, {"help", NULL, &f->help},
      {"allow-writable-config", NULL, &f->allow_writable},
      {"h", NULL, &f->help}};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || !strcmp(a, "-") || !strcmp(a, "--")) {
      fprintf(stderr, "aip: unexpected argument \"%s\"\n", a);
      return -1;
    }
    a += a[1] == '-' ? 2 : 1;
    const char *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    size_t k = 0, nt = sizeof(tab) / sizeof(tab[0]);
    while (k < nt && !(strlen(tab[k].name) == n && !strncmp(tab[k].name, a, n))) k++;
    if (k == nt) {
      fprintf(stderr, "aip: unknown option %s\n", argv[i]);
      return -1;
    }
    if (tab[k].b) {
      if (bool_value(eq ? eq + 1 : NULL, tab[k].b) == 0) continue;
      fprintf(stderr, "aip: invalid boolean value for %s\n", argv[i]);
      return -1;
    }
    if (!eq && i + 1 >= argc) {
      fprintf(stderr, "aip: option %s needs a value\n", argv[i]);
      return -1;
    }
    *tab[k].s = eq ? eq + 1 : argv[++i];
  }
  return 0;
}

static void free_strv(char **v);

/* strings.Fields on ASCII white space: no quoting, no escapes (as the reference). NULL when
 * there are no fields (or no memory). */
static char **split_target(const char *s) {
  static const char ws[] = " \t\n\v\f\r";
  size_t n = 0, cap = 8;
  char **v = calloc(cap, sizeof(char *));
  if (!v) return NULL;
  for (;;) {
    s += strspn(s, ws);
    if (!*s) break;
    size_t len = strcspn(s, ws);
    if (n + 2 > cap) {
      char **nv = realloc(v, (cap *= 2) * sizeof(char *));
      if (!nv) goto fail;
      v = nv;
    }
    v[n + 1] = NULL;
    if (!(v[n] = strndup(s, len))) goto fail;
    n++;
    s += len;
  }
  if (n) return v;
fail:
  free_strv(v);
  return NULL;
}

static void free_strv(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

/* An audit log on our stdout would corrupt the protocol stream. */
static int audit_path_ok(const char *path) {
  static const char *const bad[] = {"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (strcmp(path, bad[i]) == 0) return 0;
  struct stat a, o;
  if (stat(path, &a) || fstat(STDOUT_FILENO, &o)) return 1;
  int is_null = S_ISCHR(a.st_mode) && a.st_rdev == makedev(1, 3);
  return is_null || a.st_dev != o.st_dev || a.st_ino != o.st_ino;
}

static char *absolute(const char *p) {
  char *r = realpath(p, NULL);
  if (r || p[0] == '/') return r ? r : strdup(p);
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof(cwd))) return strdup(p);
  return asprintf(&r, "%s/%s", cwd, p) < 0 ? NULL : r;
}

/* The reference's --generate-cursor-config: Go's json.MarshalIndent(.., "", "  ") output. */
static int print_cursor_config(const char *policy, const char *target) {
  char exe[PATH_MAX];
  size_t n = sizeof(exe);
  if (uv_exepath(exe, &n)) snprintf(exe, sizeof(exe), "aip");
  char *pol = absolute(policy);
  aip_buf b;
  aip_buf_init(&b);
  aip_buf_puts(&b, "{\n  \"mcpServers\": {\n    \"protected-tool\": {\n      \"args\": [\n"
                   "        \"--policy\",\n        ");
  aip_buf_json_string(&b, pol ? pol : policy, strlen(pol ? pol : policy), 1);
  aip_buf_puts(&b, ",\n        \"--target\",\n        ");
  aip_buf_json_string(&b, target, strlen(target), 1);
  aip_buf_puts(&b, "\n      ],\n      \"command\": ");
  aip_buf_json_string(&b, exe, strlen(exe), 1);
  aip_buf_puts(&b, "\n    }\n  }\n}\n");
  fputs(b.data, stdout);
  aip_buf_free(&b);
  free(pol);
  return 0;
}

/* ---- the child process ---------------------------------------------------------------------- */

static void close_if_open(uv_handle_t *h) {
  if (h->type != UV_UNKNOWN_HANDLE && !uv_is_closing(h)) uv_close(h, NULL);
}

/* Both the exit and the end of its stdout: close everything; the loop then ends. */
static void finish(aip_wrapper *w) {
  if (w->finishing) return;
  w->finishing = 1;
  aip_wrapper_ask_end_all(w, 0, "the server exited");
  aip_wrapper_close_stdin(w);
  aip_wrapper_close_stdout(w);
  w->child_in_open = 0;
  close_if_open((uv_handle_t *)&w->child_in);
  close_if_open((uv_handle_t *)&w->child_out);
  if (w->err_stream) aip_wrapper_dlp_stderr_take(w, "", 0, 1); /* what DLP still holds */
  close_if_open((uv_handle_t *)&w->child_err);
  close_if_open((uv_handle_t *)&w->err_idle);
  close_if_open((uv_handle_t *)&w->proc);
  close_if_open((uv_handle_t *)&w->kill_timer);
  close_if_open((uv_handle_t *)&w->sigterm);
  close_if_open((uv_handle_t *)&w->sigint);
  close_if_open((uv_handle_t *)&w->sigusr1);
  aip_wrapper_calls_end(w); /* calls the server never answered: their records, cut short */
  aip_audit_detach(w->audit);
}

void aip_wrapper_child_maybe_gone(aip_wrapper *w) {
  if (w->child_exited && w->child_out_eof) finish(w);
}

static void kill_child(aip_wrapper *w, int sig) {
  if (w->child_started && !w->child_exited) uv_process_kill(&w->proc, sig);
}

static void on_kill_timer(uv_timer_t *t);

/* After the child's exit its stdout has not ended. Output still in the pipe is delivered as long
 * as it moves (reading may be paused for a slow client); when nothing has come for a while, the
 * pipe is held open by someone else (a grandchild?) and we stop waiting. */
static void exit_drain(aip_wrapper *w) {
  int progressed = w->child_read_total != w->drain_mark;
  int first = w->drain_checks++ == 0;
  w->drain_mark = w->child_read_total;
  if (!w->out_broken && (progressed || (first && !w->child_out_reading))) {
    uv_timer_start(&w->kill_timer, on_kill_timer, OUT_PROGRESS_MS, 0);
    return;
  }
  w->child_out_eof = 1;
  uv_read_stop((uv_stream_t *)&w->child_out);
  aip_wrapper_child_maybe_gone(w);
}

static void on_kill_timer(uv_timer_t *t) {
  aip_wrapper *w = t->data;
  if (w->child_exited) {
    exit_drain(w);
    return;
  }
  w->stop_stage++;
  aip_info("server still running: sending %s", w->stop_stage == 2 ? "SIGTERM" : "SIGKILL");
  kill_child(w, w->stop_stage == 2 ? SIGTERM : SIGKILL);
  if (w->stop_stage < 3) uv_timer_start(&w->kill_timer, on_kill_timer, STDIN_GRACE_MS, 0);
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig) {
  aip_wrapper *w = p->data;
  w->child_exited = 1;
  w->exit_code = sig ? 128 + sig : (int)status;
  if (sig) aip_info("server killed by signal %d", sig);
  else aip_info("server exited with status %lld", (long long)status);
  w->child_in_open = 0;
  close_if_open((uv_handle_t *)&w->child_in);
  uv_timer_stop(&w->kill_timer);
  w->drain_mark = w->child_read_total;
  if (!w->child_out_eof) uv_timer_start(&w->kill_timer, on_kill_timer, EXIT_DRAIN_MS, 0);
  aip_wrapper_child_maybe_gone(w);
}

static void on_child_in_shutdown(uv_shutdown_t *req, int status) {
  aip_wrapper *w = req->data;
  close_if_open((uv_handle_t *)&w->child_in);
}

void aip_wrapper_client_gone(aip_wrapper *w, const char *why) {
  if (w->finishing || w->client_gone) return;
  w->client_gone = 1;
  aip_info("client gone (%s): closing the server's stdin", why);
  aip_wrapper_ask_end_all(w, !w->out_broken, "the client closed its input");
  aip_wrapper_close_stdin(w);
  if (w->child_in_open) {
    w->child_in_open = 0; /* what is queued still goes out before the EOF */
    w->child_in_shutdown.data = w;
    if (uv_shutdown(&w->child_in_shutdown, (uv_stream_t *)&w->child_in, on_child_in_shutdown))
      close_if_open((uv_handle_t *)&w->child_in);
  }
  if (!w->child_exited && w->stop_stage == 0) {
    w->stop_stage = 1;
    uv_timer_start(&w->kill_timer, on_kill_timer, STDIN_GRACE_MS, 0);
  }
}

static void on_sigusr1(uv_signal_t *s, int signum) {
  (void)signum;
  aip_wrapper *w = s->data;
  if (w->audit) aip_audit_reopen(w->audit);
}

static void on_signal(uv_signal_t *s, int signum) {
  aip_wrapper *w = s->data;
  if (w->child_exited) return;
  if (w->signalled) {
    aip_info("second signal: killing the server");
    w->stop_stage = 3;
    kill_child(w, SIGKILL);
    return;
  }
  w->signalled = 1;
  aip_info("received %s: sending SIGTERM to the server (SIGKILL in %d s)",
           signum == SIGINT ? "SIGINT" : "SIGTERM", SIGNAL_GRACE_MS / 1000);
  w->stop_stage = 2;
  kill_child(w, SIGTERM);
  uv_timer_start(&w->kill_timer, on_kill_timer, SIGNAL_GRACE_MS, 0);
}

static int spawn_child(aip_wrapper *w, const char *program) {
  /* through the exec shim, as aip serve's stdio servers (exec_shim.c): the server dies with the
   * wrapper, even of a kill -9; NULL where there is no PDEATHSIG, then it is spawned directly */
  char **args = aip_exec_shim_argv(program, w->argv);
  uv_stdio_container_t stdio[3] = {
      {UV_CREATE_PIPE | UV_READABLE_PIPE, {(uv_stream_t *)&w->child_in}},
      {UV_CREATE_PIPE | UV_WRITABLE_PIPE, {(uv_stream_t *)&w->child_out}},
      {UV_CREATE_PIPE | UV_WRITABLE_PIPE, {(uv_stream_t *)&w->child_err}}};
  uv_process_options_t opt;
  memset(&opt, 0, sizeof(opt));
  opt.file = args ? args[0] : program;
  opt.args = args ? args : w->argv;
  opt.stdio = stdio;
  opt.stdio_count = 3;
  opt.exit_cb = on_child_exit; /* env NULL: the child gets our environment, as in the reference */
  int err = uv_spawn(w->loop, &w->proc, &opt);
  aip_exec_shim_argv_free(args);
  if (err) return err;
  w->proc.data = w->child_in.data = w->child_out.data = w->child_err.data = w;
  w->child_started = 1;
  aip_info("started %s (pid %d), policy %s (%s mode)", program, w->proc.pid,
           w->doc->name ? w->doc->name : w->policy_path,
           w->doc->mode == AIP_MODE_MONITOR ? "monitor" : "enforce");
  aip_wrapper_child_pipes_start(w);
  aip_wrapper_flow(w);
  return 0;
}

/* ---- start and end -------------------------------------------------------------------------- */

/* With --trusted-keys, a policy whose signature does not verify is a policy that does not load:
 * the wrapper serves one agent, so refusing to start is AIP's "policy rejection" (docs/signing.md)
 * and nothing reaches the server. Permissions, bytes, signature, then the parse of the bytes
 * verified: the order and the checks of `aip serve` (core/policy_source.c). */
static int load_trusted_policy(aip_wrapper *w, aip_error *err) {
  aip_policy_src src;
  aip_policy_perms perms = w->allow_writable_config ? AIP_POLICY_PERMS_WARN : AIP_POLICY_PERMS_REFUSE;
  int rc = aip_policy_src_read(w->policy_path, perms, &src, err);
  if (rc) return rc;
  if (w->trusted_keys) {
    aip_trusted_keys keys;
    aip_error why = {{0}};
    rc = aip_trusted_keys_load_csv(w->trusted_keys, &keys, err);
    if (!rc && aip_policy_src_verify(&src, w->policy_path, &keys, NULL, &why))
      rc = aip_error_set(err, -EBADMSG, "policy signature invalid: %s", why.msg);
    else if (!rc)
      aip_info("policy %s: signature verified", w->policy_path);
    aip_trusted_keys_free(&keys);
  }
  if (!rc) rc = aip_policy_doc_load_string(src.text, src.len, w->policy_path, &w->doc, err);
  aip_policy_src_free(&src);
  return rc;
}

static int load_policy(aip_wrapper *w) {
  aip_error err = {{0}};
  int rc = load_trusted_policy(w, &err);
  /* The audit log is protected like the policy file: an agent must not edit its own record. */
  const char *extra[] = {w->audit_path, NULL};
  aip_policy_opts po = {.extra_protected = extra};
  if (!rc) rc = aip_policy_compile_ex(w->doc, &po, &w->policy, &err);
  if (!rc && !(w->rate = aip_rate_state_new(w->policy)))
    rc = aip_error_set(&err, -ENOMEM, "out of memory");
  if (rc) {
    fprintf(stderr, "aip: %s\n", err.msg);
    return -1;
  }
  w->agent = w->doc->name ? w->doc->name : "";
  return aip_wrapper_dlp_open(w); /* a pattern that does not compile fails the start */
}

static int options(aip_wrapper *w, const flags *f) {
  if (aip_parse_duration_ms(f->approval_timeout ? f->approval_timeout : "60s",
                            &w->approval_timeout_ms) || w->approval_timeout_ms == 0) {
    fprintf(stderr, "aip: invalid --approval-timeout \"%s\" (e.g. 60s, 2m, 500ms)\n",
            f->approval_timeout);
    return -1;
  }
  if (aip_parse_size(f->max_message ? f->max_message : "16MiB", &w->max_message) ||
      w->max_message < 1024) {
    fprintf(stderr, "aip: invalid --max-message \"%s\" (at least 1KiB, e.g. 16MiB)\n",
            f->max_message);
    return -1;
  }
  w->target = f->target;
  w->policy_path = f->policy ? f->policy : "agent.yaml";
  w->audit_path = f->audit ? f->audit : "aip-audit.jsonl";
  w->dlp_cache = f->dlp_cache;
  w->verbose = f->verbose;
  w->allow_writable_config = f->allow_writable;
  w->trusted_keys = f->trusted_keys;
  if (!(w->argv = split_target(f->target))) {
    fprintf(stderr, "aip: --target is empty\n");
    return -1;
  }
  return 0;
}

static void new_ids(aip_wrapper *w) {
  unsigned char r[16], e[4];
  randombytes_buf(r, sizeof(r));
  randombytes_buf(e, sizeof(e));
  sodium_bin2hex(w->session_id, sizeof(w->session_id), r, sizeof(r));
  char hex[9];
  sodium_bin2hex(hex, sizeof(hex), e, sizeof(e));
  snprintf(w->elicit_prefix, sizeof(w->elicit_prefix), "aip-elicit-%s-", hex);
}

/* Everything up to the running loop; returns 0 or an exit code. */
/* The audit queue is full: read no more requests from the agent until the writer catches up
 * (audit.h), rather than lose their records. */
#define AUDIT_MAX_PAUSE_MS 60000
static void on_audit_pressure(void *ctx, int full) {
  aip_wrapper *w = ctx;
  w->audit_full = full;
  aip_wrapper_flow(w);
}

static int start(aip_wrapper *w) {
  if (!audit_path_ok(w->audit_path)) {
    fprintf(stderr, "aip: refusing audit log %s: it is our stdout, which carries JSON-RPC\n",
            w->audit_path);
    return 1;
  }
  if (load_policy(w)) return 1;
  char *program = NULL;
  int rc = aip_program_resolve(w->argv[0], getenv("PATH"), &program);
  if (rc) {
    aip_error("cannot start %s: %s", w->argv[0],
              rc == -EACCES ? "not executable" : rc == -ENOENT ? "not found" : strerror(-rc));
    return 1;
  }
  int err = aip_audit_open(w->loop, w->audit_path, &w->audit);
  if (!err) err = aip_audit_on_pressure(w->audit, AUDIT_MAX_PAUSE_MS, on_audit_pressure, w);
  if (err) {
    aip_error("cannot open audit log %s: %s", w->audit_path, strerror(-err));
    free(program);
    return 1;
  }
  aip_wrapper_front_init(w);
  aip_wrapper_io_open(w);
  uv_pipe_init(w->loop, &w->child_in, 0);
  uv_pipe_init(w->loop, &w->child_out, 0);
  uv_pipe_init(w->loop, &w->child_err, 0);
  uv_timer_init(w->loop, &w->kill_timer);
  uv_signal_init(w->loop, &w->sigterm);
  uv_signal_init(w->loop, &w->sigint);
  uv_signal_init(w->loop, &w->sigusr1);
  w->kill_timer.data = w->sigterm.data = w->sigint.data = w->sigusr1.data = w;
  uv_signal_start(&w->sigterm, on_signal, SIGTERM);
  uv_signal_start(&w->sigint, on_signal, SIGINT);
  uv_signal_start(&w->sigusr1, on_sigusr1, SIGUSR1);
  err = spawn_child(w, program);
  free(program);
  if (err) {
    aip_error("cannot start %s: %s", w->argv[0], uv_strerror(err));
    w->exit_code = 1;
    w->child_exited = w->child_out_eof = 1;
    finish(w);
  }
  return 0;
}

static void cleanup(aip_wrapper *w) {
  aip_audit_close(w->audit);
  const aip_map_entry *e;
  for (size_t it = 0; aip_map_next(&w->lists, &it, &e);) free(e->value);
  aip_map_free(&w->lists);
  free(w->init_key);
  aip_lines_free(&w->in_lines);
  aip_lines_free(&w->child_lines);
  aip_buf_free(&w->err_line);
  aip_rate_state_free(w->rate);
  aip_wrapper_dlp_close(w);
  aip_policy_free(w->policy);
  aip_policy_doc_free(w->doc);
  free_strv(w->argv);
}

int aip_wrapper_main(int argc, char **argv) {
  flags f = {0};
  if (parse_flags(argc, argv, &f)) {
    fputs(usage, stderr);
    return 2;
  }
  if (f.help) {
    fputs(usage, stdout);
    return 0;
  }
  if (!f.target) {
    fprintf(stderr, "aip: --target is required\n%s", usage);
    return 2;
  }
  if (f.cursor) return print_cursor_config(f.policy ? f.policy : "agent.yaml", f.target);
  aip_wrapper *w = calloc(1, sizeof(*w));
  if (!w) return 1;
  if (options(w, &f)) {
    free_strv(w->argv);
    free(w);
    return 2;
  }
  aip_log_set_prefix("[aip-proxy] ");
  if (w->verbose) aip_log_set_level(AIP_LOG_DEBUG);
  signal(SIGPIPE, SIG_IGN);
  w->loop = uv_default_loop();
  aip_map_init(&w->lists);
  new_ids(w);
  int rc = start(w);
  if (!rc) {
    uv_run(w->loop, UV_RUN_DEFAULT);
    rc = w->exit_code;
  }
  cleanup(w);
  uv_loop_close(w->loop);
  free(w);
  return rc;
}
