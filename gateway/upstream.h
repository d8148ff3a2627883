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
} aip_upstream_hooks;

typedef struct aip_upstream_ops {
  int (*start)(aip_upstream *u); /* spawn / connect */
  /* One serialized message; `id` is its upstream request id, 0 for notifications/responses. */
  int (*send)(aip_upstream *u, uint64_t id, const char *p, size_t n);
  void (*ready)(aip_upstream *u); /* optional: the handshake is done */
  void (*stop)(aip_upstream *u);  /* graceful shutdown, then kill */
  void (*free)(aip_upstream *u);  /* after stop completed */
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
  char last_error[160];   /* why it went down */
  uint64_t ready_since_ms;
  uint64_t start_deadline_ms; /* the handshake must be done by then */
  uint64_t handshake_id;
  cJSON *server_info; /* initialize result of the current instance */
  aip_upstream_stats stats;
  int closing;
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
 * (see u->last_error) while backing off from an instance that never came up. */
int aip_upstream_call_start(aip_upstream *u, const char *method, cJSON *params,
                            aip_upstream_call_cb cb, void *data, aip_upstream_call **out);
/* Forgets the call (its callback is never invoked again) and tells the server with
 * notifications/cancelled if it was sent. */
void aip_upstream_call_cancel(aip_upstream_call *call, const char *reason);
/* Forwards a notification (e.g. a client's notifications/progress); `params` owned. */
int aip_upstream_notify(aip_upstream *u, const char *method, cJSON *params);

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
/* The protocol version the instance negotiated, or NULL before the handshake. */
const char *aip_upstream_protocol_version(const aip_upstream *u);

/* The one place that builds an error message for a call: {"jsonrpc":"2.0","id":null,"error":..} */
cJSON *aip_upstream_error_msg(int code, const char *message);

#endif
