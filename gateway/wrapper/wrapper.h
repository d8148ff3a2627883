/* wrapper.h -- `aip --target "CMD ARGS" --policy agent.yaml`: the AIP-compatible single-agent
 * stdio wrapper (docs/stdio-wrapper.md). One MCP client on our stdin/stdout, one MCP server as
 * our child; newline-delimited JSON-RPC both ways; every client message passes the policy.
 *
 * Files, in the order a tools/call crosses them:
 *   wrapper_io.c      our stdin/stdout and the child's pipes (framed by core/lines.c), writes,
 *                     back-pressure
 *   wrapper_client.c  client -> server: strict parse, method and tool checks, batches, forwarding
 *   wrapper_elicit.c  `action: ask` through MCP elicitation (elicitation/create to the client)
 *   wrapper_server.c  server -> client: log noise, initialize and tools/list answers
 *   wrapper_dlp.c     DLP: server messages (whole or streamed), tools/call arguments, stderr
 *   wrapper.c         command line, policy and audit, the child process, signals, exit code
 * Everything runs on the loop thread; the audit writer has its own (gateway/obs/audit.c).
 */
#ifndef AIP_WRAPPER_H
#define AIP_WRAPPER_H

#include <stdint.h>

#include <uv.h>

#include "config/config.h"
#include "engine/engine.h"
#include "engine/map.h"
#include "gateway/obs/audit.h"
#include "gateway/core/dlp_apply.h"
#include "gateway/core/decide.h"
#include "gateway/core/lines.h"

/* Entry point from main.c: `argv` starts at the first option (argv[0] is "--target" or so). */
int aip_wrapper_main(int argc, char **argv);

/* ---- internals shared by the wrapper_*.c files ---------------------------------------------- */

typedef struct aip_wrapper aip_wrapper;
typedef struct aip_wrapper_ask aip_wrapper_ask;

typedef union aip_wrapper_stream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_pipe_t pipe;
  uv_tty_t tty;
  uv_tcp_t tcp;
} aip_wrapper_stream;

struct aip_wrapper {
  uv_loop_t *loop;
  /* options */
  const char *target;
  const char *policy_path;
  const char *audit_path;
  const char *dlp_cache; /* --dlp-cache: serialized DLP databases, or NULL */
  const char *trusted_keys; /* --trusted-keys "a.pub,b.pub", or NULL */
  int verbose;
  int allow_writable_config; /* --allow-writable-config: a writable policy only warns */
  uint64_t approval_timeout_ms;
  uint64_t max_message;
  char **argv; /* the split --target */
  char *exe;   /* our own binary (the child starts as `aip --aip-internal-exec ...`) */
  /* policy and audit */
  aip_policy_doc *doc;
  aip_policy *policy;
  aip_audit *audit;
  const char *agent; /* metadata.name */
  char session_id[33];
  /* client side: our stdin and stdout (a NULL stream pointer means a regular file) */
  aip_wrapper_stream in_h, out_h;
  uv_stream_t *in, *out;
  uv_fs_t in_req;
  aip_lines in_lines;
  int in_open, in_reading, in_eof, in_file_busy;
  int audit_full; /* the audit queue is at high water: read no more requests (audit.h) */
  int out_open, out_broken;
  uv_shutdown_t out_shutdown;
  uv_timer_t out_drain; /* bounds the final flush of stdout */
  /* the child */
  uv_process_t proc;
  uv_pipe_t child_in, child_out, child_err;
  uv_shutdown_t child_in_shutdown;
  aip_lines child_lines;
  aip_buf err_line;
  int err_skip; /* dropping the rest of a stderr line too long to log (AIP_LOG_LONG_LINE) */
  uv_timer_t kill_timer;
  uv_signal_t sigterm, sigint;
  uv_signal_t sigusr1; /* reopen the audit file (log rotation), as aip serve does */
  int child_started, child_exited, child_out_eof, child_in_open, child_out_reading;
  int stop_stage; /* 0 running; 1 stdin closed; 2 SIGTERM sent; 3 SIGKILL sent */
  int signalled;  /* we got SIGTERM/SIGINT */
  int client_gone; /* our stdin ended or our stdout broke */
  int exit_code;
  int finishing;  /* the child is gone: closing everything */
  uint64_t child_read_total; /* bytes read from the child's stdout */
  uint64_t drain_mark;       /* child_read_total when the exit drain last looked */
  int drain_checks;
  char read_buf[65536];    /* stream reads (processed before the next read) */
  char in_file_buf[65536]; /* stdin as a regular file: filled by a thread-pool read */
  /* protocol state */
  char version[32];  /* protocol version the server answered to initialize */
  int client_elicit; /* the client declared form elicitation */
  char *init_key;    /* id key of the initialize request in flight */
  aip_map lists;     /* id key -> malloc'd key, tools/list requests in flight */
  aip_wrapper_ask *asks;
  size_t asks_n;
  uint64_t ask_seq;
  char elicit_prefix[40]; /* "aip-elicit-<random>-": our request ids to the client */
  aip_rate_state *rate;
  aip_front front; /* the decision core's view of us (core/decide.h; wrapper_client.c) */
  /* DLP (wrapper_dlp.c); dlp NULL: the policy has none */
  aip_dlp *dlp;
  aip_dlp_run dlp_run;
  aip_map calls;             /* id key -> request forwarded to the child (audit of answers) */
  size_t calls_owed;         /* forwarded tools/calls whose record is still to be written */
  struct aip_wrapper_big *big; /* the server line being streamed through DLP, or NULL */
  int out_partial;           /* a streamed line is half written to our stdout */
  aip_buf out_held;          /* our own messages to the client, waiting for its end */
  aip_dlp_stream *err_stream; /* filter_stderr */
  aip_buf err_out;           /* redacted stderr not yet printed */
  uv_timer_t err_idle;       /* the child's stderr went quiet: flush a finished line */
  int err_nl;  /* the last byte of stderr fed was a newline */
  int err_off; /* filtering failed: stderr is dropped (fail closed) */
};

/* Forwarded calls whose records are still owed (each is written when its call ends): stdin
 * is not read while this many are, as while the audit queue is full (audit.h), so the records
 * of the calls taken always fit the queue's bound (aip_audit_open: 1000). */
#define AIP_WRAPPER_OWED_MAX 1000

/* wrapper_io.c */
int aip_wrapper_io_open(aip_wrapper *w);
/* Sends one message (without newline) to the client or to the child; copies the bytes. */
void aip_wrapper_to_client(aip_wrapper *w, const char *p, size_t n);
/* Part of one streamed line to the client (no newline added until `end`); other messages to
 * the client wait until the line ends. */
void aip_wrapper_to_client_part(aip_wrapper *w, const char *p, size_t n, int end);
void aip_wrapper_to_child(aip_wrapper *w, const char *p, size_t n);
/* Starts or stops reading stdin and the child's stdout as the write queues allow. */
void aip_wrapper_flow(aip_wrapper *w);
int aip_wrapper_child_pipes_start(aip_wrapper *w);
/* Prints the child's stderr on ours, line by line, as "[subprocess stderr] ..." */
void aip_wrapper_stderr_out(aip_wrapper *w, const char *p, size_t n, int eof);
void aip_wrapper_close_stdin(aip_wrapper *w);
void aip_wrapper_close_stdout(aip_wrapper *w);

/* wrapper.c */
void aip_wrapper_client_gone(aip_wrapper *w, const char *why);
void aip_wrapper_child_maybe_gone(aip_wrapper *w);

/* wrapper_client.c */
void aip_wrapper_client_line(aip_wrapper *w, char *line, size_t n);
void aip_wrapper_client_oversize(aip_wrapper *w);
/* Audit record of a decision on a client message. `decision` NULL = the decision's own name.
 * Arguments are recorded DLP-redacted. */
void aip_wrapper_audit(aip_wrapper *w, const char *method, const aip_decision *d,
                       const char *decision, const char *tool, const cJSON *args);
/* The same with every field: `direction` (NULL = upstream), `dlp` counts JSON, latency. */
void aip_wrapper_audit_ex(aip_wrapper *w, const char *direction, const char *method,
                          const aip_decision *d, const char *decision, const char *tool,
                          const cJSON *args, const char *dlp, int64_t latency_us);
/* Renders an id as a map key ("s<string>" or "n<number>"); malloc'd, NULL for other types. */
char *aip_wrapper_id_key(const cJSON *id);
/* Replies with a JSON-RPC error (`reason` becomes data.reason when not NULL). */
void aip_wrapper_reply_error(aip_wrapper *w, const cJSON *id, int code, const char *message,
                             const char *reason);
/* Makes w->front (policy, DLP and audit loaded). */
void aip_wrapper_front_init(aip_wrapper *w);
/* Forwards a checked message to the child, re-serialized from the tree. */
void aip_wrapper_forward(aip_wrapper *w, const cJSON *msg);
/* The same for a tools/call the policy let through with `d`: tracked so that its record is
 * written when it ends (its latency, the DLP counts `dlp` of its request and those of its
 * answer), as aip serve does. */
void aip_wrapper_forward_call(aip_wrapper *w, const cJSON *msg, const aip_decision *d,
                              const char *tool, const cJSON *args, const char *dlp);

/* wrapper_server.c */
void aip_wrapper_server_line(aip_wrapper *w, char *line, size_t n);
void aip_wrapper_server_oversize(aip_wrapper *w);

/* wrapper_dlp.c */
/* The raw text of the top-level "id" and "method" values of a JSON object text, as far as
 * p[0..n) goes (a line's head is enough when they come first); NULL when not found there. */
typedef struct aip_wrapper_top {
  const char *id, *method;
  size_t id_len, method_len;
} aip_wrapper_top;
void aip_wrapper_top_keys(const char *p, size_t n, aip_wrapper_top *k);
/* Compiles the policy's DLP (none: w->dlp stays NULL); logs its warnings. 0 or -1 (printed). */
int aip_wrapper_dlp_open(aip_wrapper *w);
void aip_wrapper_dlp_close(aip_wrapper *w);
/* One message (or batch) from the child towards the client: response DLP, then our stdout. */
void aip_wrapper_dlp_deliver(aip_wrapper *w, const char *p, size_t n);
/* aip_lines hooks (core/lines.h; ctx: the wrapper) for child lines above dlp.stream_threshold. */
int aip_wrapper_dlp_long_line(void *ctx, const char *head, size_t n);
int aip_wrapper_dlp_line_part(void *ctx, const char *p, size_t n, int end);
/* Logs a non-JSON line of the child's stdout ("[subprocess stdout] ..."), redacted when the
 * policy has DLP: it is the response channel, and our log must not hold its secrets. */
void aip_wrapper_dlp_noise(aip_wrapper *w, const char *p, size_t n);
/* A request forwarded to the child (its answer's audit record names it). */
void aip_wrapper_dlp_track(aip_wrapper *w, const cJSON *msg);
/* A forwarded tools/call, audited when its answer passes (or by aip_wrapper_calls_end). 0, or
 * -1 when it cannot be tracked (the caller audits it at once). */
int aip_wrapper_call_track(aip_wrapper *w, const cJSON *msg, const aip_decision *d,
                           const cJSON *args, const char *dlp);
/* The end: every forwarded call still unanswered is audited (cut short). */
void aip_wrapper_calls_end(aip_wrapper *w);
/* The child's stderr through DLP (filter_stderr); `eof` at its end. Returns 1 when it took
 * the bytes, 0 when they go out as they are (aip_wrapper_stderr_out). */
int aip_wrapper_dlp_stderr_take(aip_wrapper *w, const char *p, size_t n, int eof);

/* wrapper_elicit.c */
/* A tools/call the policy answered with ASK. Takes ownership of `msg` (the whole request);
 * `dlp` (may be NULL): its request DLP counts, for the call's record once approved. */
void aip_wrapper_ask_start(aip_wrapper *w, cJSON *msg, const cJSON *id, const char *tool,
                           const cJSON *args, const aip_decision *d, const char *dlp);
/* A response or error from the client whose id starts with our elicitation prefix. */
void aip_wrapper_ask_answer(aip_wrapper *w, const aip_rpc_msg *m);
/* notifications/cancelled for `request_id`: 1 if it named a call waiting for approval. */
int aip_wrapper_ask_cancel(aip_wrapper *w, const cJSON *request_id);
/* Denies every call still waiting (audited as DENIED with `why`); `answer` 0 sends no reply
 * (the wrapper is ending). */
void aip_wrapper_ask_end_all(aip_wrapper *w, int answer, const char *why);
/* Whether the client's initialize declared form-mode elicitation. */
int aip_wrapper_elicit_capable(const cJSON *init_params);

#endif
