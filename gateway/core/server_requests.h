/* core/server_requests.h -- an upstream's requests to its client (sampling/createMessage,
 * elicitation/create, roots/list), routed to the agent session they belong to and the agent's
 * answer routed back (docs/routing.md, "Server-to-client requests").
 */
#ifndef AIP_CORE_SERVER_REQUESTS_H
#define AIP_CORE_SERVER_REQUESTS_H

#include <cJSON.h>
#include "gateway/upstream/upstream.h"

typedef struct aip_agent_rt aip_agent_rt;
typedef struct aip_session aip_session;
typedef struct aip_s2c aip_s2c;

/* The upstream hook (router.c): `msg` (owned) is the server's request, `related` the call it
 * came with, if the transport or the request named one. Every request is answered at the
 * server: with the agent's answer, or with a JSON-RPC error saying why no session took it. */
void aip_s2c_request(aip_agent_rt *a, aip_upstream *u, cJSON *msg, aip_upstream_call *related);
/* The instance went down: its requests still awaiting the agent are withdrawn from it. */
void aip_s2c_upstream_reset(aip_agent_rt *a, aip_upstream *u);
/* The agent's session sent notifications/roots/list_changed: every server of the agent hears. */
void aip_s2c_roots_changed(aip_session *s);

/* Pure: whether a client that declared `caps` in initialize, on protocol `version`, can take
 * the server request `method` with `params`. 0 also for a method that is no server-to-client
 * request the gateway routes. */
int aip_s2c_capable(const cJSON *caps, const char *version, const char *method,
                    const cJSON *params);
/* Pure: the capability a routed method needs ("sampling", "elicitation", "roots"), or NULL
 * when the gateway does not route it. */
const char *aip_s2c_capability(const char *method);

#endif
