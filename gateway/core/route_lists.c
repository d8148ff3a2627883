/* route_lists.c -- prompts/list, resources/list and resources/templates/list: the agent's merged
 * list (lists.c) in one page, as tools/list answers. */
#include "gateway/core/agent.h"
#include "gateway/core/routes.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/session.h"

static void answer(aip_pending *p, aip_list_id id) {
  const aip_list *l = &p->sess->agent->lists[id];
  cJSON *r = cJSON_CreateObject();
  cJSON_AddItemToObject(r, aip_list_kinds[id].key,
                        l->json ? cJSON_Duplicate(l->json, 1) : cJSON_CreateArray());
  aip_pending_result(p, r);
}

static void prompts_ready(aip_pending *p) { answer(p, AIP_LIST_PROMPTS); }
static void resources_ready(aip_pending *p) { answer(p, AIP_LIST_RESOURCES); }
static void templates_ready(aip_pending *p) { answer(p, AIP_LIST_TEMPLATES); }

static void list(aip_pending *p, aip_rpc_msg *m, aip_list_id id, void (*ready)(aip_pending *)) {
  /* One page holds every item, so no cursor we issued exists (as tools/list). */
  if (cJSON_IsObject(m->params) && cJSON_GetObjectItemCaseSensitive(m->params, "cursor")) {
    aip_pending_error(p, AIP_RPC_INVALID_PARAMS, "Invalid cursor");
    return;
  }
  p->on_tools = ready;
  aip_lists_with(p->sess->agent, id, p);
}

void aip_route_prompts_list(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  list(p, m, AIP_LIST_PROMPTS, prompts_ready);
}
void aip_route_resources_list(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  list(p, m, AIP_LIST_RESOURCES, resources_ready);
}
void aip_route_templates_list(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  list(p, m, AIP_LIST_TEMPLATES, templates_ready);
}
