/* notify.c -- notifications from an agent's servers, to the agent's sessions.
 *
 * list_changed invalidates the merged list it names (and goes to every session of the agent,
 * on its GET stream); resources/updated goes only to the sessions that subscribed to that
 * resource, under the URI they know it by; log messages and anything else go to every session.
 * Every message passes the agent's DLP on its way out (aip_session_push renders through it).
 */
#include <string.h>

#include "gateway/core/agent.h"
#include "gateway/core/routes.h"
#include "gateway/mcp/session.h"

void aip_route_notification(aip_agent_rt *a, size_t server, cJSON *msg) {
  const cJSON *mj = cJSON_GetObjectItemCaseSensitive(msg, "method");
  const char *m = cJSON_IsString(mj) ? mj->valuestring : "";
  if (strcmp(m, "notifications/resources/updated") == 0) {
    aip_route_resource_updated(a, server, msg);
    return;
  }
  if (strcmp(m, "notifications/tools/list_changed") == 0) {
    aip_router_tools_changed(a);
  } else if (strcmp(m, "notifications/prompts/list_changed") == 0) {
    aip_lists_changed(a, AIP_LIST_PROMPTS);
  } else if (strcmp(m, "notifications/resources/list_changed") == 0) {
    aip_lists_changed(a, AIP_LIST_RESOURCES);
    aip_lists_changed(a, AIP_LIST_TEMPLATES);
  }
  for (aip_session *s = a->sessions; s; s = s->next) aip_session_push(s, msg);
  cJSON_Delete(msg);
}
