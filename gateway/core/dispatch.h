/* core/dispatch.h -- the method table: one JSON-RPC message of a session, decided and routed */
#ifndef AIP_CORE_DISPATCH_H
#define AIP_CORE_DISPATCH_H

#include <cJSON.h>
#include "gateway/approvals/approvals.h"
#include "engine/engine.h"

typedef struct aip_exchange aip_exchange;
typedef struct aip_session aip_session;
typedef struct aip_pending aip_pending;

/* mcp_dispatch.c: one JSON-RPC message of a session */
void aip_dispatch(aip_exchange *ex, aip_session *s, aip_rpc_msg *m);
/* A tools/call that waited for its rate-limit token (rate_durable.c) is checked again from the
 * start; `root` (its message) is taken. */
void aip_dispatch_tools_call_again(aip_pending *p, cJSON *root);
/* Fails the tools/call (its `params`) closed: its rate-limit token could not be saved as spent.
 * Audited (RATE_LIMITED, with the reason), answered -32603 with {"tool": name}. */
void aip_dispatch_rate_unsaved(aip_pending *p, const cJSON *params);

/* A human's answer to an `ask` that came from elsewhere than the queue (ask_elicit.c): audited
 * and acted on exactly as an operator's decision (APPROVED forwards the call, DENIED -32004,
 * EXPIRED -32005). `by` names the approver, `reason` the refusal (either may be NULL). */
void aip_ask_outcome(aip_pending *p, aip_approval_status st, const char *by, const char *reason);
/* The call ended before anyone answered its `ask` (cancelled, session ended): audit only. */
void aip_ask_abandoned(aip_pending *p, const char *why);

#endif
