/* upstream.h -- a JSON-RPC client of one upstream MCP server instance.
 *
 * upstream.c owns what every transport shares: the MCP initialize handshake, request-id
 * rewriting (many downstream sessions share one instance, so ids and progress tokens are
 * re-keyed to values unique within the instance), progress routing, timeouts, failing in-flight
 * calls when the transport dies, and restarting it with exponential backoff. A transport
 * (upstream_stdio.c; HTTP later) only moves bytes and reports up/down through the
 * aip_upstream_transport_* functions.
 */
#ifndef AIP_UPSTREAM_H
#define AIP_UPSTREAM_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "engine/engine.h"
#include "engine/map.h"

typedef struct aip_upstream aip_upstream;
typedef struct aip_upstream_call aip_upstream_call;

/* A message for a call: a progress notification (final 0, token restored to the caller's) or
 * the final response/error (final 1; the message's id is the upstream one -- the caller puts
 * its own back). Ownership of `msg` passes to the callee. After final, `call` is freed. */
typedef void (*aip_upstream_call_cb)(aip_upstream_call *call, cJSON *msg, int final, void *data);

typedef struct aip_upstream_hooks {
  /* A notification not tied to a call (tools/list_changed, logging, ...); owns `msg`. */
  void (*on_notification)(aip_upstream *u, cJSON *msg, void *data);
  /* The instance (re)started or went down: cached tool lists are stale. */
  void (*on_reset)(aip_upstream *u, void *data);
  void *data;
  /* Optional: a message still incomplete past this many bytes may stream to its call's sink
   * (the agent's dlp.stream_threshold); NULL or 0: never. Asked again for every message, so a
   * reloaded policy counts from its next message. */
  uint64_t (*stream_threshold)(aip_upstream *u, void *data);
  /* Optional: a request of the server to its client (sampling/createMessage,
   * elicitation/create, roots/list; ping is answered here); owns `msg`. `related` is the call
   * it belongs to when known (it came on that call's HTTP stream, or names it in
   * params._meta.relatedRequestId), else NULL. Answer with aip_upstream_respond. With the hook
   * set, the instance declares the sampling, elicitation and roots (listChanged) capabilities
   * in its initialize; without it, none, and such requests get -32601. */
  void (*on_request)(aip_upstream *u, cJSON *msg, aip_upstream_call *related, void *data);
} aip_upstream_hooks;

/* Where a call's answer goes when it is too large to hold (docs/dlp.md, "Streaming in the
 * gateway"): instead of one cJSON through aip_upstream_call_cb, the raw message in pieces as
 * it arrives. Only final responses stream; `data` is the call's callback data. */
typedef struct aip_upstream_sink {
  /* The answer starts; `head` is the message up to its id value, which the sink replaces with
   * its own. 0: taken (chunk and end follow); < 0: not now, the answer is held whole. */
  int (*begin)(void *data, const char *head, size_t n);
  /* The next bytes of the message (the first chunk starts right after the id value). Returns
   * 0; 1 when the reader must pause until aip_upstream_call_resume; < 0 to abort (end follows
   * with that error and the rest of the message is discarded). */
  int (*chunk)(void *data, const char *p, size_t n);
  /* Exactly once after a successful begin: the message is complete (0) or cut short (< 0: the
   * server died, the message was too large, the sink aborted). The call is freed after. */
  void (*end)(void *data, int err);
  /* Optional: the server closed the call's stream before the answer (MCP 2025-11-25 SSE
   * polling) and the transport will resume it; the caller may let its own client poll too. */
  void (*polled)(void *data);
} aip_upstream_sink;

typedef struct aip_upstream_ops {
  int (*start)(aip_upstream *u); /* spawn / connect */
  /* One serialized message; `id` is its upstream request id, 0 for notifications/responses. */
  int (*send)(aip_upstream *u, uint64_t id, const char *p, size_t n);
  void (*ready)(aip_upstream *u); /* optional: the handshake is done */
  void (*stop)(aip_upstream *u);  /* graceful shutdown, then kill */
  void (*free)(aip_upstream *u);  /* after stop completed */
  void (*resume)(aip_upstream *u); /* optional: read again after a sink asked to pause */
} aip_upstream_ops;

typedef struct aip_upstream_stats {
  uint64_t calls;
  uint64_t errors;
  uint64_t timeouts;
  uint64_t restarts;
} aip_upstream_stats;

enum aip_upstream_state {
  AIP_UPSTREAM_DOWN = 0, /* not running; started on the next call */
  AIP_UPSTREAM_STARTING, /* transport starting or handshake in progress */
  AIP_UPSTREAM_READY,
  AIP_UPSTREAM_BACKOFF, /* died; waiting before the restart */
  AIP_UPSTREAM_STOPPING
};

struct aip_upstream {
  const aip_upstream_ops *ops;
  void *transport;
  uv_loop_t *loop;
  char *label; /* "agent/server", for logs and metrics */
  const aip_server_config *server;
  const aip_limits *limits;
  aip_upstream_hooks hooks;
  enum aip_upstream_state state;
  uint64_t next_id;
  aip_map calls;          /* upstream id -> call, for calls sent */
  aip_upstream_call *head; /* every call in creation order (= deadline order) */
  aip_upstream_call *tail;
  uv_timer_t timer;       /* call deadlines, handshake deadline and restart backoff */
  uint64_t backoff_ms;
  uint64_t restart_at_ms; /* end of the current backoff */
  int was_ready;          /* the instance that went down had finished its handshake */
  int start_failed;       /* the last start failed and none came up since */
  int shared_reader;      /* one reader for every call (stdio: the child's stdout): pausing
                           * it for one call's sink pauses them all */
  char last_error[160];   /* why it went down */
  uint64_t ready_since_ms;
  uint64_t start_deadline_ms; /* the handshake must be done by then */
  uint64_t handshake_id;
  cJSON *server_info; /* initialize result of the current instance */
  aip_upstream_stats stats;
  int closing;
  aip_upstream_call *streaming; /* the call whose answer is streaming now, if any */
  uint64_t stream_deadline_ms;  /* it is aborted when no byte moved until then */
  uint64_t stream_seq;          /* counts streams begun (see aip_upstream_stream_seq) */
  uint64_t related_id; /* set by a transport while it delivers a message that came on the
                        * stream of the call with this id (HTTP: that call's POST); 0: none */
};

/* Creates a stdio upstream (child process per instance); `label` is copied. */
aip_upstream *aip_upstream_stdio_new(uv_loop_t *loop, const aip_server_config *server,
                                     const char *cfg_dir, const char *label,
                                     const aip_limits *limits, const aip_upstream_hooks *hooks);

/* Creates a Streamable HTTP upstream for `server->url` (one MCP session per instance). */
aip_upstream *aip_upstream_http_new(uv_loop_t *loop, const aip_server_config *server,
                                    const char *label, const aip_limits *limits,
                                    const aip_upstream_hooks *hooks);

/* Sends `method` with `params` (owned; NULL for none). The call is queued while the instance
 * starts. The callback is never invoked before this function returns. Fails with -EHOSTDOWN
 * (see u->last_error) while backing off from an instance that never came up, or while the
 * restart is more than a moment away (a crash loop): the caller answers "unavailable" at once
 * rather than hold the call for up to 30 s of backoff. */
int aip_upstream_call_start(aip_upstream *u, const char *method, cJSON *params,
                            aip_upstream_call_cb cb, void *data, aip_upstream_call **out);
/* Forgets the call (its callback is never invoked again) and tells the server with
 * notifications/cancelled if it was sent. */
void aip_upstream_call_cancel(aip_upstream_call *call, const char *reason);
/* Lets the call's answer stream to `sink` when it is large (see aip_upstream_sink). */
void aip_upstream_call_set_sink(aip_upstream_call *call, const aip_upstream_sink *sink);
/* 1 when pausing this call's answer would also hold up other calls: its transport reads every
 * answer through one pipe (stdio) and other calls are queued or in flight. The sink should
 * then not pause (chunk returning 1) but hold a bounded amount, and abort beyond it. A call
 * started while an answer is paused resumes the reader (see aip_upstream_call_start). */
int aip_upstream_call_shares_reader(const aip_upstream_call *call);
/* The sink paused the reader (chunk returned 1) and can take more now. */
void aip_upstream_call_resume(aip_upstream_call *call);
/* Forwards a notification (e.g. a client's notifications/progress); `params` owned. */
int aip_upstream_notify(aip_upstream *u, const char *method, cJSON *params);

/* Answers the server's request `id` (its own id, as it sent it) with `reply` (owned): a message
 * with `result` or `error`; its id is set here. -ENOTCONN when the instance is not up (the
 * request died with the instance that sent it). */
int aip_upstream_respond(aip_upstream *u, const cJSON *id, cJSON *reply);
/* The upstream a call was started on. */
aip_upstream *aip_upstream_call_owner(const aip_upstream_call *call);

/* Graceful stop: in-flight calls fail, the transport is stopped, then everything is freed. */
void aip_upstream_close(aip_upstream *u);

/* ---- for transports ---- */
/* Fills the shared part of a freshly calloc'd upstream (copies `label`). */
int aip_upstream_init(aip_upstream *u, const aip_upstream_ops *ops, void *transport,
                      uv_loop_t *loop, const aip_server_config *server, const char *label,
                      const aip_limits *limits, const aip_upstream_hooks *hooks);
void aip_upstream_transport_up(aip_upstream *u);
void aip_upstream_transport_message(aip_upstream *u, const char *p, size_t n);
void aip_upstream_transport_down(aip_upstream *u, const char *why);
void aip_upstream_transport_stopped(aip_upstream *u); /* after ops->stop finished */
/* The message with upstream id `id` will get no answer (HTTP error, garbage reply): fail that
 * call now with `message`. No-op when it already finished. A failed handshake takes the
 * instance down. */
void aip_upstream_transport_fail(aip_upstream *u, uint64_t id, const char *message);
/* The server closed call `id`'s stream before its answer, to be resumed (sink's `polled`). */
void aip_upstream_transport_polled(aip_upstream *u, uint64_t id);
/* Streaming one message (stdio: one line) to its call's sink; at most one at a time.
 * aip_upstream_stream_threshold: when the message in progress is larger than this without
 * being complete, try stream_begin on the bytes held so far; 0: never. stream_begin returns
 * -EINVAL when the message cannot stream (not a response with its id first, no such call, no
 * sink, the sink declined: hold it whole as before), 0 when it now streams, 1 when it streams
 * and the reader must pause until ops->resume, -ECANCELED when it started and was aborted at
 * once (discard the rest). The transport then passes every further byte of
 * the message to stream_feed (same returns; < 0: discard the rest of the message) and calls
 * stream_end(0) at its end, or stream_end(< 0) when it is cut short. */
uint64_t aip_upstream_stream_threshold(aip_upstream *u);
/* Which stream is current: a transport with several messages in flight (HTTP) records it
 * after stream_begin and feeds only while it is still current (a stall timeout ends a stream,
 * and another may begin). 0 when none streams. */
uint64_t aip_upstream_stream_seq(const aip_upstream *u);
int aip_upstream_transport_stream_begin(aip_upstream *u, const char *p, size_t n);
int aip_upstream_transport_stream_feed(aip_upstream *u, const char *p, size_t n);
void aip_upstream_transport_stream_end(aip_upstream *u, int err);
/* 1 when the last attempt to start the instance failed (spawn, connect or handshake) and no
 * instance has come up since: /readyz, aip_upstream_unavailable and the agent's errors. */
int aip_upstream_cannot_start(const aip_upstream *u);

/* ---- exec_shim.c: stdio children die with the gateway (PR_SET_PDEATHSIG) ---- */
#define AIP_EXEC_SHIM_CMD "__exec-upstream"
/* `cmd` as execvp would find it in `env`'s PATH (or as given when it has a '/'): 0 and a
 * malloc'd path, -ENOENT, -EACCES, -ENOMEM. */
int aip_exec_resolve(const char *cmd, char *const *env, char **out);
/* The argv that runs `program` with `argv` through the shim; NULL where there is none (not
 * Linux) or no memory: spawn the program directly. */
char **aip_exec_shim_argv(const char *program, char *const *argv);
void aip_exec_shim_argv_free(char **v); /* NULL is fine */
/* `aip __exec-upstream PID PROGRAM ARGV...` (main.c): returns only on failure. */
int aip_exec_shim_main(int argc, char **argv);

/* The protocol version the instance negotiated, or NULL before the handshake. */
const char *aip_upstream_protocol_version(const aip_upstream *u);

/* An error message for a call, {"jsonrpc":"2.0","id":null,"error":..}: aip_rpc_error_msg, the
 * engine's one JSON-RPC error builder. */
cJSON *aip_upstream_error_msg(int code, const char *message);

#endif
