/* elicit.h -- asking a human through the agent's own MCP client (elicitation/create, form mode,
 * reference/mcp.md section 7): the messages and the reading of the answer. Shared by the stdio
 * wrapper (wrapper_elicit.c) and `aip serve` with `ask_via: elicitation` (ask_elicit.c), which
 * each own their transport, ids and timers.
 */
#ifndef AIP_ELICIT_H
#define AIP_ELICIT_H

#include "engine/engine.h"

/* Whether a client's `capabilities` object (of initialize; NULL = none) declares form-mode
 * elicitation. */
int aip_elicit_capable(const cJSON *capabilities);
/* Whether the negotiated protocol version has elicitation at all (2025-06-18 and later). */
int aip_elicit_version_ok(const char *version);
/* The elicitation/create request asking to approve `tool` with `args` (may be NULL) under the
 * policy named `policy`; `id` is the asker's own request id. NULL when out of memory. */
cJSON *aip_elicit_request(const char *id, const char *version, const char *tool,
                          const char *policy, const cJSON *args);
/* notifications/cancelled for our elicitation `id` (the question is withdrawn). */
cJSON *aip_elicit_cancelled(const char *id, const char *reason);
/* The client's answer (a response or error to our request): 1 when it approves (action accept
 * with approve: true, nothing else); else 0 with `*why` saying what it was. */
int aip_elicit_approved(const aip_rpc_msg *m, const char **why);

#endif
