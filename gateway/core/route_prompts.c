/* route_prompts.c -- prompts/get, completion/complete and logging/setLevel across an agent's
 * servers.
 *
 * Prompts are named by the tool rule (lists.c): a prompt is routed by the name the agent sees
 * to its server under its real name; an ambiguous name is refused, never guessed. AIP has no
 * rule for prompts, so what applies is the method list and protected_paths on the prompt's
 * arguments (as for tool arguments), both checked in the decision core before the route
 * (core/decide.c, AIP_STEP_ARGS: the stdio wrapper applies them too); every decision is
 * audited with the prompt name in place of `tool`. completion/complete follows its `ref`: a prompt by name, a resource
 * template or resource by URI. logging/setLevel goes to every server that offers logging.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/agent.h"
#include "gateway/core/routes.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"

static const char *server_name(aip_agent_rt *a, size_t s) {
  return a->gw->cfg->servers[a->cfg->servers[s]].name;
}

static void answered(aip_upstream_call *call, cJSON *msg, int final, void *data) {
  aip_pending *p = data;
  if (final) {
    p->call = NULL;
    aip_route_expose_uris(p->sess->agent, (size_t)p->route_server, msg);
  }
  aip_pending_emit(p, msg, final);
}

static void send_to(aip_pending *p, const char *method, size_t server) {
  aip_upstream *u = p->sess->agent->ups[server];
  cJSON *params = p->params;
  p->params = NULL;
  p->route_server = (int)server;
  if (aip_upstream_call_start(u, method, params, answered, p, &p->call))
    aip_dispatch_unavailable(p, u);
}

/* The prompt p->subject names: its entry, or NULL with p answered. */
static const aip_list_entry *prompt_of(aip_pending *p) {
  const aip_list *l = &p->sess->agent->lists[AIP_LIST_PROMPTS];
  const aip_list_entry *e = aip_list_find(l, p->subject);
  if (!e) aip_dispatch_unknown(p, l, p->subject);
  return e;
}

/* ---- prompts/get ------------------------------------------------------------------------- */

static void get_ready(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  const aip_list_entry *e = prompt_of(p);
  if (!e) return;
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(p->params, "arguments");
  aip_decision d;
  memset(&d, 0, sizeof(d));
  d.kind = AIP_DECISION_ALLOW;
  snprintf(d.reason, sizeof(d.reason), "prompt routed to server %s", server_name(a, e->server));
  aip_dispatch_audit(p->sess, "prompts/get", &d, p->subject, args);
  cJSON_ReplaceItemInObjectCaseSensitive(p->params, "name", cJSON_CreateString(e->real));
  send_to(p, "prompts/get", e->server);
}

void aip_route_prompts_get(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  const cJSON *name, *args;
  if (aip_dispatch_name_args(p, m, &name, &args)) return;
  p->subject = strdup(name->valuestring);
  p->params = cJSON_Duplicate(m->params, 1);
  if (!p->subject || !p->params) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
    return;
  }
  p->on_tools = get_ready;
  aip_lists_with(s->agent, AIP_LIST_PROMPTS, p);
}

/* ---- completion/complete ----------------------------------------------------------------- */

static void complete_prompt(aip_pending *p) {
  const aip_list_entry *e = prompt_of(p);
  if (!e) return;
  cJSON *ref = cJSON_GetObjectItemCaseSensitive(p->params, "ref");
  cJSON_ReplaceItemInObjectCaseSensitive(ref, "name", cJSON_CreateString(e->real));
  send_to(p, "completion/complete", e->server);
}

/* ref/resource names a template (as listed) or a resource URI. */
static void complete_resource(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  const aip_list_entry *e = aip_list_find(&a->lists[AIP_LIST_TEMPLATES], p->subject);
  if (!e) e = aip_list_find(&a->lists[AIP_LIST_RESOURCES], p->subject);
  size_t server = 0;
  const char *real = NULL;
  if (e) {
    server = e->server;
    real = e->real;
  } else {
    aip_list_names n;
    int s = aip_agent_list_names(a, &n) ? -1 : aip_list_unqualify(AIP_LIST_TEMPLATES, &n, p->subject, &real);
    aip_list_names_free(&n);
    if (s < 0) {
      aip_dispatch_unknown(p, &a->lists[AIP_LIST_TEMPLATES], p->subject);
      return;
    }
    server = (size_t)s;
  }
  cJSON *ref = cJSON_GetObjectItemCaseSensitive(p->params, "ref");
  cJSON_ReplaceItemInObjectCaseSensitive(ref, "uri", cJSON_CreateString(real));
  send_to(p, "completion/complete", server);
}

static void complete_resources(aip_pending *p) {
  p->on_tools = complete_resource;
  aip_lists_with(p->sess->agent, AIP_LIST_RESOURCES, p);
}

void aip_route_complete(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  const cJSON *ref = cJSON_IsObject(m->params) ? cJSON_GetObjectItemCaseSensitive(m->params, "ref") : NULL;
  const cJSON *type = cJSON_IsObject(ref) ? cJSON_GetObjectItemCaseSensitive(ref, "type") : NULL;
  int prompt = cJSON_IsString(type) && strcmp(type->valuestring, "ref/prompt") == 0;
  int resource = cJSON_IsString(type) && strcmp(type->valuestring, "ref/resource") == 0;
  const cJSON *key = prompt ? cJSON_GetObjectItemCaseSensitive(ref, "name")
                   : resource ? cJSON_GetObjectItemCaseSensitive(ref, "uri") : NULL;
  if (!cJSON_IsString(key)) {
    aip_pending_error(p, AIP_RPC_INVALID_PARAMS,
                      "Invalid params: ref must be a ref/prompt with a name or a ref/resource with a uri");
    return;
  }
  p->subject = strdup(key->valuestring);
  p->params = cJSON_Duplicate(m->params, 1);
  if (!p->subject || !p->params) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
    return;
  }
  p->on_tools = prompt ? complete_prompt : complete_resources;
  aip_lists_with(s->agent, prompt ? AIP_LIST_PROMPTS : AIP_LIST_TEMPLATES, p);
}

/* ---- logging/setLevel -------------------------------------------------------------------- */

typedef struct level_fan {
  aip_pending *p; /* NULL once the request went away */
  size_t remaining;
  aip_buf failed; /* "a (why), b (why)" */
} level_fan;

static void level_finish(level_fan *f) {
  if (--f->remaining) return;
  if (f->p) {
    aip_pending *p = f->p;
    p->on_final = NULL;
    p->route_ctx = NULL;
    if (!f->failed.len) {
      aip_pending_result(p, cJSON_CreateObject());
    } else {
      aip_buf msg;
      aip_buf_init(&msg);
      aip_buf_puts(&msg, "logging/setLevel failed on: ");
      aip_buf_append(&msg, f->failed.data, f->failed.len);
      aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, msg.data);
      aip_buf_free(&msg);
    }
  }
  aip_buf_free(&f->failed);
  free(f);
}

static void level_fail(level_fan *f, const char *server, const char *why) {
  if (f->failed.len) aip_buf_puts(&f->failed, ", ");
  aip_buf_puts(&f->failed, server);
  aip_buf_puts(&f->failed, " (");
  aip_buf_puts(&f->failed, why);
  aip_buf_puts(&f->failed, ")");
}

typedef struct level_call {
  level_fan *f;
  const char *server;
} level_call;

static void level_answered(aip_upstream_call *call, cJSON *msg, int final, void *data) {
  level_call *c = data;
  if (!final) {
    cJSON_Delete(msg);
    return;
  }
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(msg, "error");
  const cJSON *em = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : NULL;
  if (!cJSON_GetObjectItemCaseSensitive(msg, "result"))
    level_fail(c->f, c->server, cJSON_IsString(em) ? em->valuestring : "error");
  cJSON_Delete(msg);
  level_fan *f = c->f;
  free(c);
  level_finish(f);
}

static void level_abandoned(aip_pending *p, const cJSON *answer) {
  level_fan *f = p->route_ctx;
  if (f) f->p = NULL;
  p->route_ctx = NULL;
}

void aip_route_set_level(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  aip_agent_rt *a = s->agent;
  const cJSON *level = cJSON_IsObject(m->params) ? cJSON_GetObjectItemCaseSensitive(m->params, "level") : NULL;
  if (!cJSON_IsString(level)) {
    aip_pending_error(p, AIP_RPC_INVALID_PARAMS, "Invalid params: a string level is required");
    return;
  }
  level_fan *f = calloc(1, sizeof(*f));
  if (!f) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
    return;
  }
  aip_buf_init(&f->failed);
  f->p = p;
  f->remaining = 1; /* held while starting */
  p->route_ctx = f;
  p->on_final = level_abandoned;
  for (size_t i = 0; i < a->cfg->servers_n; i++) {
    aip_upstream *u = a->ups[i];
    /* a server known not to offer logging is not asked; one not met yet is */
    if (u->server_info && !aip_server_offers(a, i, "logging", NULL)) continue;
    level_call *c = malloc(sizeof(*c));
    if (!c) {
      level_fail(f, server_name(a, i), "out of memory");
      continue;
    }
    *c = (level_call){f, server_name(a, i)};
    f->remaining++;
    if (aip_upstream_call_start(u, "logging/setLevel", cJSON_Duplicate(m->params, 1),
                                level_answered, c, NULL)) {
      level_fail(f, c->server, u->last_error[0] ? u->last_error : "unavailable");
      free(c);
      f->remaining--;
    }
  }
  level_finish(f);
}
