/* core/routes.h -- the method families beyond tools, routed across an agent's servers.
 *
 * Each handler answers the pending request (maybe later); the method check already ran in
 * aip_dispatch. docs/routing.md says what goes where and under which name. */
#ifndef AIP_CORE_ROUTES_H
#define AIP_CORE_ROUTES_H

#include <cJSON.h>
#include "engine/engine.h"
#include "gateway/core/lists.h"

typedef struct aip_pending aip_pending;
typedef struct aip_session aip_session;
typedef struct aip_agent_rt aip_agent_rt;
typedef struct aip_upstream aip_upstream;

typedef void (*aip_route_fn)(aip_pending *p, aip_session *s, aip_rpc_msg *m);

/* route_lists.c: prompts/list, resources/list, resources/templates/list */
void aip_route_prompts_list(aip_pending *p, aip_session *s, aip_rpc_msg *m);
void aip_route_resources_list(aip_pending *p, aip_session *s, aip_rpc_msg *m);
void aip_route_templates_list(aip_pending *p, aip_session *s, aip_rpc_msg *m);

/* route_resources.c */
void aip_route_resources_read(aip_pending *p, aip_session *s, aip_rpc_msg *m);
void aip_route_resources_subscribe(aip_pending *p, aip_session *s, aip_rpc_msg *m);
void aip_route_resources_unsubscribe(aip_pending *p, aip_session *s, aip_rpc_msg *m);
/* The session ends: its subscriptions go (the last subscriber unsubscribes upstream). */
void aip_route_subs_session_end(aip_session *s);
void aip_route_subs_free(aip_agent_rt *a);
/* Server `server`'s instance went down: its subscriptions are sent again to the next one. */
void aip_route_subs_reset(aip_agent_rt *a, size_t server);
/* notifications/resources/updated from server `server`: to the sessions that subscribed. */
void aip_route_resource_updated(aip_agent_rt *a, size_t server, cJSON *msg);
/* Rewrites the URIs of resource_link and embedded resource items anywhere in `node` (a tool
 * result, prompt messages) from server `server`'s own to the ones the agent sees. */
void aip_route_expose_uris(aip_agent_rt *a, size_t server, cJSON *node);

/* route_prompts.c: prompts/get, completion/complete, logging/setLevel */
void aip_route_prompts_get(aip_pending *p, aip_session *s, aip_rpc_msg *m);
void aip_route_complete(aip_pending *p, aip_session *s, aip_rpc_msg *m);
void aip_route_set_level(aip_pending *p, aip_session *s, aip_rpc_msg *m);

/* route_init.c: the initialize result gets the union of the servers' capabilities and their
 * instructions (each under its server's name); `result` is owned. */
void aip_route_initialize(aip_pending *p, cJSON *result);

/* notify.c: a notification from server `server` of the agent (owned). */
void aip_route_notification(aip_agent_rt *a, size_t server, cJSON *msg);

/* mcp_dispatch.c hooks for the routes */
/* Audits a decision on `subject` (a resource URI, a prompt name) of `method`. */
void aip_dispatch_audit(aip_session *s, const char *method, const aip_decision *d,
                        const char *subject, const cJSON *args);
/* Answers with the AIP error of a refusing decision. */
void aip_dispatch_deny(aip_pending *p, const aip_decision *d, const char *subject);
/* params.name (a string) and params.arguments (an object, or absent) of a tools/call or
 * prompts/get; 1 when they are not, and p was answered -32602. */
int aip_dispatch_name_args(aip_pending *p, aip_rpc_msg *m, const cJSON **name,
                           const cJSON **args);
/* -32602 "Unknown <noun>: <name>", or "Ambiguous <noun> name: ..." when the name is hidden as
 * one that could mean items of several servers. */
void aip_dispatch_unknown(aip_pending *p, const aip_list *l, const char *name);
/* -32603 "upstream <agent>/<server> unavailable: <why>". */
void aip_dispatch_unavailable(aip_pending *p, const aip_upstream *u);

#endif
