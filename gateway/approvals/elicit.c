/* elicit.c -- elicitation/create messages and answers (see elicit.h). */
#include "gateway/approvals/elicit.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/approvals/approvals.h" /* aip_display_string */

#define MAX_SHOWN_ARGS 4000

int aip_elicit_capable(const cJSON *caps) {
  const cJSON *el = cJSON_IsObject(caps) ? cJSON_GetObjectItemCaseSensitive(caps, "elicitation")
                                         : NULL;
  if (!cJSON_IsObject(el)) return 0;
  /* 2025-11-25: {} means form only; {"url":{}} alone means no form */
  if (cJSON_GetObjectItemCaseSensitive(el, "form")) return 1;
  return cJSON_GetObjectItemCaseSensitive(el, "url") == NULL;
}

/* Elicitation exists from 2025-06-18 on; an older session never negotiated it. */
int aip_elicit_version_ok(const char *version) {
  return version && strcmp(version, "2024-11-05") != 0 &&
         strcmp(version, "2025-03-26") != 0;
}

/* "The agent wants to call ...": what the human reads. Arguments are shown compact and cut at
 * MAX_SHOWN_ARGS bytes (on a UTF-8 boundary); the tool name and the arguments in their
 * display-safe form (bidi controls, invisible characters, padding made visible), as the
 * operators' queue shows them. */
static char *question(const char *tool, const char *policy, const cJSON *args) {
  aip_buf a, q, shown_tool, shown_args;
  aip_buf_init(&a);
  aip_buf_init(&q);
  aip_buf_init(&shown_tool);
  aip_buf_init(&shown_args);
  if (args) aip_json_print(&a, args);
  else aip_buf_puts(&a, "{}");
  size_t n = a.len;
  if (n > MAX_SHOWN_ARGS) {
    n = MAX_SHOWN_ARGS;
    while (n && ((unsigned char)a.data[n] & 0xC0) == 0x80) n--;
  }
  int err = aip_display_string(&shown_tool, tool, strlen(tool));
  if (!err) err = aip_display_string(&shown_args, a.data ? a.data : "", n);
  if (!err)
    err = aip_buf_printf(&q,
                         "The agent wants to call the tool \"%s\", which needs your approval (AIP "
                         "policy \"%s\").\n\nArguments:\n%s%s\n\nApprove this call?",
                         shown_tool.data ? shown_tool.data : "", policy,
                         shown_args.data ? shown_args.data : "", n < a.len ? " ..." : "");
  aip_buf_free(&a);
  aip_buf_free(&shown_tool);
  aip_buf_free(&shown_args);
  if (err) {
    aip_buf_free(&q);
    return NULL;
  }
  return aip_buf_steal(&q, NULL);
}

cJSON *aip_elicit_request(const char *id, const char *version, const char *tool,
                          const char *policy, const cJSON *args) {
  cJSON *r = cJSON_CreateObject();
  if (!r) return NULL;
  cJSON_AddStringToObject(r, "jsonrpc", "2.0");
  cJSON_AddStringToObject(r, "id", id);
  cJSON_AddStringToObject(r, "method", "elicitation/create");
  cJSON *p = cJSON_AddObjectToObject(r, "params");
  /* `mode` exists from 2025-11-25 on; 2025-06-18 has form mode only, unnamed */
  if (version && strcmp(version, "2025-11-25") >= 0) cJSON_AddStringToObject(p, "mode", "form");
  char *text = question(tool, policy, args);
  cJSON_AddStringToObject(p, "message", text ? text : "Approve this tool call?");
  free(text);
  cJSON *schema = cJSON_AddObjectToObject(p, "requestedSchema");
  cJSON_AddStringToObject(schema, "type", "object");
  cJSON *props = cJSON_AddObjectToObject(schema, "properties");
  cJSON *approve = cJSON_AddObjectToObject(props, "approve");
  cJSON_AddStringToObject(approve, "type", "boolean");
  cJSON_AddStringToObject(approve, "title", "Approve");
  cJSON_AddStringToObject(approve, "description", "Allow the agent to make this tool call");
  cJSON *req = cJSON_AddArrayToObject(schema, "required");
  cJSON_AddItemToArray(req, cJSON_CreateString("approve"));
  return r;
}

cJSON *aip_elicit_cancelled(const char *id, const char *reason) {
  cJSON *n = cJSON_CreateObject();
  if (!n) return NULL;
  cJSON_AddStringToObject(n, "jsonrpc", "2.0");
  cJSON_AddStringToObject(n, "method", "notifications/cancelled");
  cJSON *p = cJSON_AddObjectToObject(n, "params");
  cJSON_AddStringToObject(p, "requestId", id);
  cJSON_AddStringToObject(p, "reason", reason);
  return n;
}

int aip_elicit_approved(const aip_rpc_msg *m, const char **why) {
  const cJSON *action = cJSON_IsObject(m->result)
                            ? cJSON_GetObjectItemCaseSensitive(m->result, "action") : NULL;
  const cJSON *content = cJSON_IsObject(m->result)
                             ? cJSON_GetObjectItemCaseSensitive(m->result, "content") : NULL;
  const cJSON *yes = cJSON_IsObject(content)
                         ? cJSON_GetObjectItemCaseSensitive(content, "approve") : NULL;
  if (m->kind == AIP_RPC_ERROR) *why = "the client answered the approval request with an error";
  else if (!cJSON_IsString(action)) *why = "the approval answer has no action";
  else if (strcmp(action->valuestring, "decline") == 0) *why = "the user declined";
  else if (strcmp(action->valuestring, "cancel") == 0) *why = "the user dismissed the request";
  else if (strcmp(action->valuestring, "accept") != 0) *why = "unknown approval action";
  else if (!cJSON_IsTrue(yes)) *why = "the user did not approve";
  else return 1;
  return 0;
}
