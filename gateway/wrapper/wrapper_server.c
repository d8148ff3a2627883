/* wrapper_server.c -- server -> client: the child's stdout, line by line.
 *
 * A line that does not start with '{' (or '[', a 2025-03-26 batch) is server log noise printed
 * on the wrong stream: it goes to our stderr as "[subprocess stdout] ..." and is dropped, as in
 * the reference. Everything else is forwarded byte for byte, except two answers the wrapper
 * watches for: the one to `initialize` (it names the protocol version, which decides whether
 * batches and elicitation exist) and those to `tools/list`, from which tools the policy could
 * never allow are removed (the gateway does the same; the reference shows them all).
 * Lines are parsed only while such an answer is awaited (or with --verbose). Whatever goes to
 * the client passes DLP first (wrapper_dlp.c); lines above dlp.stream_threshold are streamed
 * there and never reach this file.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway/obs/log.h"
#include "gateway/wrapper/wrapper.h"

/* The one exit towards the client for server messages: response DLP (wrapper_dlp.c). */
static void deliver(aip_wrapper *w, const char *p, size_t n) { aip_wrapper_dlp_deliver(w, p, n); }

static void learn_version(aip_wrapper *w, const aip_rpc_msg *m) {
  const cJSON *v = cJSON_IsObject(m->result)
                       ? cJSON_GetObjectItemCaseSensitive(m->result, "protocolVersion") : NULL;
  if (cJSON_IsString(v)) snprintf(w->version, sizeof(w->version), "%s", v->valuestring);
  aip_info("session initialized: protocol version %s%s", w->version[0] ? w->version : "unknown",
           w->client_elicit ? ", client can be asked (elicitation)" : "");
}

/* Removes the tools no call could ever be allowed to use. Returns 1 if the list changed. */
static int filter_tools(aip_wrapper *w, const aip_rpc_msg *m) {
  cJSON *tools = cJSON_IsObject(m->result)
                     ? cJSON_GetObjectItemCaseSensitive(m->result, "tools") : NULL;
  if (!cJSON_IsArray(tools)) return 0;
  int removed = 0, kept = 0;
  for (cJSON *t = tools->child, *next; t; t = next) {
    next = t->next;
    const cJSON *name = cJSON_IsObject(t) ? cJSON_GetObjectItemCaseSensitive(t, "name") : NULL;
    if (cJSON_IsString(name) &&
        aip_policy_tool_visible(w->policy, name->valuestring, strlen(name->valuestring))) {
      kept++;
      continue;
    }
    cJSON_Delete(cJSON_DetachItemViaPointer(tools, t));
    removed++;
  }
  if (removed) aip_debug("tools/list: %d tool(s) hidden by the policy, %d shown", removed, kept);
  return removed > 0;
}

static void trace(const aip_wrapper *w, const aip_rpc_msg *m) {
  if (!w->verbose) return;
  static const char *kinds[] = {"invalid", "request", "notification", "response", "error"};
  char id[64] = "";
  if (cJSON_IsString(m->id)) snprintf(id, sizeof(id), " id=\"%.40s\"", m->id->valuestring);
  else if (cJSON_IsNumber(m->id)) snprintf(id, sizeof(id), " id=%.17g", m->id->valuedouble);
  aip_debug("server -> client: %s%s%s%s", kinds[m->kind], m->method ? " " : "",
            m->method ? m->method : "", id);
}

/* One message: returns 1 if it was changed (and must be re-serialized). */
static int inspect(aip_wrapper *w, cJSON *msg) {
  aip_rpc_msg m;
  if (aip_rpc_classify(msg, &m) == AIP_RPC_INVALID) return 0;
  trace(w, &m);
  if (m.kind != AIP_RPC_RESPONSE && m.kind != AIP_RPC_ERROR) return 0;
  char *key = aip_wrapper_id_key(m.id);
  if (!key) return 0;
  int changed = 0;
  if (w->init_key && strcmp(key, w->init_key) == 0) {
    free(w->init_key);
    w->init_key = NULL;
    if (m.kind == AIP_RPC_RESPONSE) learn_version(w, &m);
  } else {
    char *tracked = aip_map_del(&w->lists, key, strlen(key));
    if (tracked && m.kind == AIP_RPC_RESPONSE) changed = filter_tools(w, &m);
    free(tracked);
  }
  free(key);
  return changed;
}

void aip_wrapper_server_line(aip_wrapper *w, char *line, size_t n) {
  while (n && (*line == ' ' || *line == '\t' || *line == '\r')) line++, n--;
  while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r')) n--;
  if (!n) return;
  if (*line != '{' && *line != '[') {
    aip_wrapper_dlp_noise(w, line, n);
    return;
  }
  if (!w->init_key && !w->lists.used && !w->verbose) {
    deliver(w, line, n);
    return;
  }
  cJSON *root = NULL;
  aip_json_status st = aip_json_parse(line, n, &root);
  if (st != AIP_JSON_OK) {
    aip_warn("server sent a message the wrapper cannot parse (%s); forwarded as is",
             aip_json_status_str(st));
    deliver(w, line, n);
    return;
  }
  int changed = 0;
  if (cJSON_IsArray(root)) {
    for (cJSON *el = root->child; el; el = el->next) changed |= inspect(w, el);
  } else {
    changed = inspect(w, root);
  }
  aip_buf b;
  aip_buf_init(&b);
  if (changed && aip_json_print(&b, root) == 0) deliver(w, b.data, b.len);
  else deliver(w, line, n);
  aip_buf_free(&b);
  cJSON_Delete(root);
}

void aip_wrapper_server_oversize(aip_wrapper *w) {
  aip_error("server sent a message larger than %llu bytes; dropped (see --max-message)",
            (unsigned long long)w->max_message);
}
