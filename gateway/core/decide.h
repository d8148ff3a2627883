/* core/decide.h -- the decision path of one message from an agent, as a table of methods with
 * the front end's own parts behind a struct of callbacks (libuv style): the core decides
 * (method rules, the tool check with its rate limit and `ask`, request DLP) and audits; the
 * front end answers, forwards and holds calls for a human its own way.
 *
 * Users: both front ends, for every message from an agent: the stdio wrapper
 * (wrapper/wrapper_client.c) and `aip serve` (core/mcp_dispatch.c). A method added here, or a
 * step fixed, is added or fixed for both; a front end supplies only how to route, answer and
 * hold. The core keeps nothing between the stages of a decision: a front end that must wait
 * (serve: the merged tool list before the tool check, the store before a rate-limit token)
 * holds the message meanwhile and resumes with aip_core_tool_check.
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
  AIP_M_ROOTS_CHANGED, /* notifications/roots/list_changed */
  AIP_M_PROMPTS_LIST,
  AIP_M_PROMPTS_GET,
  AIP_M_RESOURCES_LIST,
  AIP_M_TEMPLATES_LIST, /* resources/templates/list */
  AIP_M_RESOURCES_READ,
  AIP_M_SUBSCRIBE,      /* resources/subscribe */
  AIP_M_UNSUBSCRIBE,    /* resources/unsubscribe */
  AIP_M_COMPLETE,       /* completion/complete */
  AIP_M_SET_LEVEL,      /* logging/setLevel */
  AIP_M_ANSWER,       /* not a method: a response or error to a request of the server's */
  AIP_M_COUNT
} aip_core_method;

/* What the core does for a method beyond the method check every message gets. */
enum {
  AIP_STEP_TOOL = 1u << 0,  /* the tool check (allow_args, rate limit, ask), always audited */
  AIP_STEP_DLP = 1u << 1,   /* request DLP (dlp.scan_requests) before it goes on */
  AIP_STEP_URI = 1u << 2,   /* protected_paths on params.uri (resources/read, subscribe) */
  AIP_STEP_ARGS = 1u << 3,  /* protected_paths on params.arguments (prompts/get) */
  AIP_STEP_AUDITED = 1u << 4 /* every decision leaves a record: refused while the audit log
                                cannot take one (the front end's `admit`) */
};

typedef struct aip_method_entry {
  const char *name; /* MCP's spelling; matched normalized (AIP section 4.1), as the policy
                       sees methods, so "TOOLS/CALL" gets every step of tools/call */
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
  /* The rest may be NULL; `aip serve` fills them. */
  /* Before a decision that must leave an audit record (a refusal, or an AIP_STEP_AUDITED
   * method): 0 when the log can take it, else nonzero and the front end answered (its
   * audit.on_error block); the core drops the message. */
  int (*admit)(aip_front *fe, const aip_msg *m);
  /* Every policy decision, for the per-agent decision counters. */
  void (*counted)(aip_front *fe, aip_decision_kind k);
  /* A tools/call that passed the method check: the front end learns the tool's names (maybe
   * later: serve's merged tool list) and resumes with aip_core_tool_check, or answers. Takes
   * m. NULL: the tool check with the name as sent (aip_policy_check_msg). */
  void (*names)(aip_front *fe, aip_msg *m);
  /* After each tool check of a names front end: 0 to go on; 1 when the front end took m
   * (d->rate_wait: it waits for the store and resumes with aip_core_tool_check, or fails the
   * call closed itself). */
  int (*rate_checked)(aip_front *fe, aip_msg *m, const aip_tool_names *n, const aip_decision *d);
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
/* The tool check of a tools/call over the tool's names (exposed, real, qualified:
 * docs/policy-semantics.md, "Names"), for a front end with a `names` hook, once it knows them
 * (and again after a rate-limit wait); then the rest of the path. Takes m, whose params name
 * the tool and hold its arguments (the front end checked their shape). */
void aip_core_tool_check(aip_front *fe, aip_msg *m, const aip_tool_names *n);

#endif
