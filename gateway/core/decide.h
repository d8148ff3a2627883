/* core/decide.h -- the decision path of one message from an agent, as a table of methods with
 * the front end's own parts behind a struct of callbacks (libuv style): the core decides
 * (method rules, the tool check with its rate limit and `ask`, request DLP) and audits; the
 * front end answers, forwards and holds calls for a human its own way.
 *
 * Users: the stdio wrapper (wrapper/wrapper_client.c) for every client message; `aip serve`
 * (core/mcp_dispatch.c) for what follows a tools/call's check (aip_core_decided): its method
 * check and its tool check still run in mcp_dispatch.c, because the tool check needs the
 * merged tool list first and its rate limits may wait for the store (decide.c, at the end,
 * says what moving them takes).
 */
#ifndef AIP_CORE_DECIDE_H
#define AIP_CORE_DECIDE_H

#include "gateway/core/decision_audit.h"
#include "gateway/core/msg.h"

/* The methods the core knows by name; everything else is AIP_M_OTHER (the method check
 * alone). */
typedef enum aip_core_method {
  AIP_M_OTHER = 0,
  AIP_M_INITIALIZE,
  AIP_M_PING,
  AIP_M_TOOLS_LIST,
  AIP_M_TOOLS_CALL,
  AIP_M_INITIALIZED,  /* notifications/initialized */
  AIP_M_CANCELLED,    /* notifications/cancelled */
  AIP_M_ANSWER        /* not a method: a response or error to a request of the server's */
} aip_core_method;

/* What the core does for a method beyond the method check every message gets. */
enum {
  AIP_STEP_TOOL = 1u << 0,  /* the tool check (allow_args, rate limit, ask), always audited */
  AIP_STEP_DLP = 1u << 1    /* request DLP (dlp.scan_requests) before it goes on */
};

typedef struct aip_method_entry {
  const char *name; /* normalized (AIP section 4.1) */
  aip_core_method id;
  unsigned steps;
} aip_method_entry;

/* The entry of a method as sent (normalized here); the AIP_M_OTHER entry when not in the
 * table. Never NULL. */
const aip_method_entry *aip_core_method_find(const char *method);

typedef struct aip_front aip_front;

/* A tools/call the core let through or holds: what the front end may need of it. */
typedef struct aip_core_call {
  const char *tool;   /* as the agent named it */
  const cJSON *args;  /* the arguments (redacted when on_request_match redacted them) */
  const char *dlp;    /* request DLP counts for its audit record, or NULL */
  const aip_decision *d; /* forward: ALLOW or ALLOW_MONITOR */
} aip_core_call;

typedef struct aip_front_ops {
  /* One message for the agent (an error answer; no newline). */
  void (*reply)(aip_front *fe, const char *json, size_t n);
  /* The checked message goes on (`e`: its entry; `call` for tools/call, else NULL). Takes m.
   * A forwarded tools/call is audited once, when it ends (answered, or cut short by the end
   * of the session), with its latency and the DLP counts of its request and answer: the front
   * end writes that record (aip_core_audit with call->d), as `aip serve` does. */
  void (*forward)(aip_front *fe, aip_msg *m, const aip_method_entry *e, const aip_core_call *call);
  /* A tools/call request the policy asks a human about (ASK); audited by the front end when
   * the question is put. Takes m. */
  void (*hold)(aip_front *fe, aip_msg *m, const aip_core_call *call, const aip_decision *d);
  /* An answer from the agent to a request of the front end's own (elicitation): 1 when it was
   * one (handled), else 0 (it goes on to the server). May be NULL. */
  int (*own_answer)(aip_front *fe, const aip_msg *m);
  /* What happened to a message, for a debug trace. May be NULL. */
  void (*trace)(aip_front *fe, const aip_msg *m, const char *what);
  /* Request DLP's per-rule counts of a message, for metrics. May be NULL. */
  void (*dlp_counted)(aip_front *fe, const aip_dlp_counts *c);
  /* An answer of the agent to a server's request that request DLP stopped: the server is to
   * get this error instead (render it with aip_msg_error: m's id is the server's), so its
   * request does not hang. May be NULL (the answer is dropped). */
  void (*answer_refused)(aip_front *fe, const aip_msg *m, int code, const char *message);
} aip_front_ops;

struct aip_front {
  const aip_front_ops *ops;
  const aip_policy *policy;
  aip_rate_state *rate;
  aip_dlp_run *dlp; /* its dlp NULL: the policy has no DLP */
  aip_core_who who; /* the audit records' agent, session and policy */
};

/* One message from the agent (not a batch), through the table. Takes m. */
void aip_core_message(aip_front *fe, aip_msg *m);
/* The path after the policy's check, for a front end that checks in its own way (aip serve:
 * a tool's three names, once the router's list is fresh; its rate limit may wait for the
 * store): request DLP on what may go on, then hold (ASK), refuse (audited, answered) or
 * forward. `v` as aip_policy_check_msg fills it. Takes m. */
void aip_core_decided(aip_front *fe, aip_msg *m, aip_verdict *v);

#endif
