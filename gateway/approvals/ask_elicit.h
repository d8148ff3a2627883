/* approvals/ask_elicit.h -- `ask_via: elicitation` */
#ifndef AIP_APPROVALS_ASK_ELICIT_H
#define AIP_APPROVALS_ASK_ELICIT_H

#include <cJSON.h>
#include "engine/engine.h"

typedef struct aip_session aip_session;
typedef struct aip_pending aip_pending;

/* ask_elicit.c: `ask_via: elicitation`, the agent's own user approves through its MCP client */
/* Asks on the call's stream: 0, or < 0 when this session cannot be asked (no elicitation
 * capability, protocol before 2025-06-18, the POST is gone): the caller uses the queue. */
int aip_ask_elicit_start(aip_pending *p);
/* The client's answer reaches the call through the session's registry (mcp/outstanding.h). */
/* The call is ending while it still waits: withdraw the question, audit DENIED with `why`. */
void aip_ask_elicit_drop(aip_pending *p, const char *why);

#endif
