/* mcp/outstanding.h -- the requests the gateway sent a session and still awaits an answer to
 *
 * One id-keyed registry per session, for every server-to-client request the gateway puts to an
 * agent: its own approval questions (approvals/ask_elicit.c) and the sampling, elicitation and
 * roots requests of the agent's servers (core/server_requests.c). An agent's POST that carries a
 * JSON-RPC response is accepted only when its id is registered here for that session
 * (mcp/mcp_http.c), and the first answer unregisters it: an agent can neither answer a request
 * it was not sent (another session's, a guessed one) nor answer one twice.
 *
 * Ids are "<prefix><32 hex>" from 16 random bytes: unguessable, and never the id an upstream
 * chose (those are restored only on the way back to it).
 */
#ifndef AIP_MCP_OUTSTANDING_H
#define AIP_MCP_OUTSTANDING_H

#include <cJSON.h>
#include "engine/engine.h"

typedef struct aip_session aip_session;

/* The answer to the request (a response or an error), or NULL when the session ended first.
 * The entry is already unregistered when this runs; its owner frees it. */
typedef void (*aip_outstanding_cb)(void *data, aip_session *s, const aip_rpc_msg *answer);

#define AIP_OUTSTANDING_ID_MAX 48

/* Lives inside its owner's struct; the registry only borrows it. */
typedef struct aip_outstanding {
  char id[AIP_OUTSTANDING_ID_MAX];
  aip_outstanding_cb on_answer;
  void *data;
  int registered;
} aip_outstanding;

/* Gives `e` a fresh id "<prefix><32 hex>" (prefix up to 15 bytes) and registers it with the
 * session. 0 or -ENOMEM. */
int aip_outstanding_add(aip_session *s, aip_outstanding *e, const char *prefix,
                        aip_outstanding_cb on_answer, void *data);
/* Unregisters `e` (its owner gives up on it); a no-op when it is not registered. */
void aip_outstanding_remove(aip_session *s, aip_outstanding *e);
/* Whether the session awaits an answer with this id. */
int aip_outstanding_awaits(const aip_session *s, const cJSON *id);
/* Routes the agent's answer to the request it answers: 0, or -ENOENT (no such request). */
int aip_outstanding_answer(aip_session *s, const aip_rpc_msg *m);
/* The session ends: every request still awaited hears NULL; then the registry is freed. */
void aip_outstanding_session_end(aip_session *s);

#endif
