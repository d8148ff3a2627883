/* mcp/pending.h -- a request of a session until it is answered (behaviour in mcp/mcp_http.c) */
#ifndef AIP_MCP_PENDING_H
#define AIP_MCP_PENDING_H

#include <stdint.h>
#include <cJSON.h>
#include "engine/engine.h"
#include "gateway/upstream/upstream.h"
#include "gateway/approvals/approvals.h"

typedef struct aip_session aip_session;
typedef struct aip_exchange aip_exchange;
typedef struct aip_pending aip_pending;
typedef struct aip_ask_elicit aip_ask_elicit;
typedef struct aip_rate_wait aip_rate_wait;
typedef struct aip_agent_rt aip_agent_rt;

/* exchange: the HTTP POST a request came in (mcp_http.c) */
struct aip_pending {
  aip_exchange *ex;
  aip_session *sess;
  cJSON *client_id;          /* the downstream id */
  aip_upstream_call *call;   /* when forwarded */
  uint64_t start_ns;
  int waiting_tools;         /* queued in the router until the tool list is fresh */
  void (*on_tools)(aip_pending *p); /* what to do then */
  void (*on_final)(aip_pending *p, const cJSON *answer); /* runs once, whatever the outcome */
  char *tool;                /* tools/call: the exposed name (for audit); resources/subscribe:
                                the URI as its server knows it */
  cJSON *args;               /* tools/call: arguments copy (for audit) */
  cJSON *params;             /* tools/call: params to forward once routed (the whole request
                                while it waits for the tool list: mcp_dispatch.c) */
  int decision_kind;         /* tools/call: ALLOW or ALLOW_MONITOR */
  aip_decision *monitor;     /* ALLOW_MONITOR: its decision (reason, failed_arg) for the record */
  int route_server;          /* forwarded: the agent's server it went to (core/routes.h) */
  char *subject;             /* resources/prompts: the URI or name as the agent gave it */
  void *route_ctx;           /* a fan-out answering it (route_init.c, route_prompts.c); its
                                on_final lets go of the pending */
  aip_approval_wait *approval; /* tools/call: waiting for a human */
  aip_ask_elicit *elicit;    /* tools/call: waiting for the agent's user (ask_elicit.c) */
  aip_rate_wait *rate_wait;  /* tools/call: waiting for its rate-limit token to be saved */
  aip_buf dlp_audit;         /* tools/call: `[{"rule":..,"count":..}]` of its answer, or empty */
  struct aip_pending_stream *stream; /* its answer is streaming (mcp_http.c) */
  aip_pending *prev, *next;  /* in sess->pending */
};
aip_pending *aip_pending_new(aip_exchange *ex, aip_session *s, const cJSON *id);
/* Delivers a message for the pending request: progress (final 0) or its answer (final 1, the
 * pending is freed). `msg` is owned; its id is replaced by the client's. */
void aip_pending_emit(aip_pending *p, cJSON *msg, int final);
/* Lets a forwarded call's large answer stream through DLP to the agent (upstream.h's sink;
 * docs/dlp.md, "Streaming in the gateway"). Set it on the call right after starting it. */
extern const aip_upstream_sink aip_pending_sink;
/* Aborts every answer of the agent that is streaming (its DLP is about to be replaced). */
void aip_agent_streams_abort(aip_agent_rt *a);
/* Switches the request's HTTP answer to an SSE stream now (a call that will wait long). */
void aip_pending_hold(aip_pending *p);
/* Whether the agent still holds the HTTP request the call came in (it can still be told). */
int aip_pending_connected(const aip_pending *p);
/* Answers with a result (owned) or an error built by aip_rpc_error. */
void aip_pending_result(aip_pending *p, cJSON *result);
void aip_pending_error(aip_pending *p, int code, const char *message);
void aip_pending_error_raw(aip_pending *p, aip_buf *err_json); /* pre-rendered error bytes */

#endif
