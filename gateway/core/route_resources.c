/* route_resources.c -- resources/read, subscribe and unsubscribe across an agent's servers.
 *
 * A URI the agent gives is routed (docs/routing.md, "Resources"): a listed resource by its
 * exposed URI; a qualified "aip://<server>/<uri>" to that server; an unqualified URI that one
 * server's template matches to that server; else to the only server that offers resources.
 * Anything that could mean two servers is refused as ambiguous, never guessed. The URI as given
 * passed protected_paths in the decision core (its method table's AIP_STEP_URI, core/decide.c,
 * which the stdio wrapper applies too); the URI as the server will see it passes it here once
 * routed, with the same normalization; every decision is audited with the URI in place of
 * `tool`.
 *
 * Subscriptions are kept per (server, URI) with the sessions that asked: the server is asked
 * once, told to stop when the last subscriber goes (unsubscribe or end of session), and its
 * notifications/resources/updated reach only those sessions, under the URI each one used.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/agent.h"
#include "gateway/core/routes.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

#define AIP_RPC_RESOURCE_NOT_FOUND (-32002) /* MCP's "Resource not found" */

/* ---- routing ----------------------------------------------------------------------------- */

/* Where `uri` goes: 0 with *server and *real (borrowed from uri or the list), or a JSON-RPC error
 * code with *why. */
static int resolve(aip_agent_rt *a, const char *uri, size_t *server, const char **real,
                   const char **why) {
  const aip_list *res = &a->lists[AIP_LIST_RESOURCES], *tpl = &a->lists[AIP_LIST_TEMPLATES];
  const aip_list_entry *e = aip_list_find(res, uri);
  if (e) {
    *server = e->server;
    *real = e->real;
    return 0;
  }
  if (aip_list_ambiguous(res, uri) || aip_list_ambiguous(tpl, uri)) {
    *why = "Ambiguous resource URI: it could mean resources of several servers, so none of them "
           "is exposed under it";
    return AIP_RPC_INVALID_PARAMS;
  }
  aip_list_names names;
  if (aip_agent_list_names(a, &names)) {
    *why = "Internal error";
    return AIP_RPC_INTERNAL_ERROR;
  }
  int s = aip_list_unqualify(AIP_LIST_RESOURCES, &names, uri, real);
  aip_list_names_free(&names);
  if (s >= 0) {
    *server = (size_t)s;
    return 0;
  }
  /* the real URI of resources of several servers (each listed under its qualified name) */
  int found = -1;
  for (size_t i = 0; i < res->n; i++) {
    if (strcmp(res->v[i].real, uri) != 0) continue;
    if (found >= 0 && (size_t)found != res->v[i].server) {
      *why = "Ambiguous resource URI: several servers offer it; use the qualified URI listed";
      return AIP_RPC_INVALID_PARAMS;
    }
    found = (int)res->v[i].server;
  }
  found = -1;
  /* an unqualified URI: the servers whose (unqualified) templates it expands */
  for (size_t i = 0; i < tpl->n; i++) {
    const aip_list_entry *t = &tpl->v[i];
    if (t->hidden || strcmp(t->exposed, t->real) != 0 || !aip_uri_template_match(t->real, uri))
      continue;
    if (found >= 0 && (size_t)found != t->server) {
      *why = "Ambiguous resource URI: templates of several servers match it";
      return AIP_RPC_INVALID_PARAMS;
    }
    found = (int)t->server;
  }
  /* else the one server that offers resources, if there is exactly one */
  for (size_t i = 0; found < 0 && i < a->cfg->servers_n; i++) {
    if (!aip_server_offers(a, i, "resources", NULL)) continue;
    for (size_t j = i + 1; j < a->cfg->servers_n; j++)
      if (aip_server_offers(a, j, "resources", NULL)) {
        i = a->cfg->servers_n;
        break;
      }
    if (i < a->cfg->servers_n) found = (int)i;
  }
  if (found < 0) {
    *why = "Resource not found";
    return AIP_RPC_RESOURCE_NOT_FOUND;
  }
  *server = (size_t)found;
  *real = uri;
  return 0;
}

/* The URI the agent sees for server `server`'s `real`: its listed name; else unchanged when the
 * unchanged URI routes back to the same server (so reading it reaches the same resource), else
 * qualified. tool_prefix always qualifies, never keeps it. malloc'd. */
static char *expose_uri(aip_agent_rt *a, size_t server, const char *real) {
  const aip_list_entry *e = aip_list_find_real(&a->lists[AIP_LIST_RESOURCES], server, real);
  if (e && !e->hidden) return strdup(e->exposed);
  const char *name = a->gw->cfg->servers[a->cfg->servers[server]].name;
  if (a->cfg->tool_prefix == AIP_PREFIX_NEVER) return strdup(real);
  if (a->cfg->tool_prefix == AIP_PREFIX_AUTO) {
    size_t s;
    const char *r, *why;
    if (resolve(a, real, &s, &r, &why) == 0 && s == server && strcmp(r, real) == 0)
      return strdup(real);
  }
  return aip_list_qualify(AIP_LIST_RESOURCES, name, real);
}

static void set_uri(cJSON *obj, aip_agent_rt *a, size_t server) {
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(obj, "uri");
  if (!cJSON_IsString(u)) return;
  char *x = expose_uri(a, server, u->valuestring);
  if (x) cJSON_ReplaceItemInObjectCaseSensitive(obj, "uri", cJSON_CreateString(x));
  free(x);
}

static void expose_walk(aip_agent_rt *a, size_t server, cJSON *n, int depth) {
  if (depth > 32 || (!cJSON_IsObject(n) && !cJSON_IsArray(n))) return;
  if (cJSON_IsObject(n)) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(n, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "resource_link") == 0)
      set_uri(n, a, server);
    cJSON *res = cJSON_GetObjectItemCaseSensitive(n, "resource");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "resource") == 0 && cJSON_IsObject(res))
      set_uri(res, a, server);
  }
  for (cJSON *c = n->child; c; c = c->next) expose_walk(a, server, c, depth + 1);
}

void aip_route_expose_uris(aip_agent_rt *a, size_t server, cJSON *node) {
  if (server < a->cfg->servers_n) expose_walk(a, server, node, 0);
}

/* ---- the common first steps: both lists fresh, the URI routed and checked -------------- */

/* protected_paths on a URI; 1 when refused (audited, answered). */
static int refused_path(aip_pending *p, const char *method, const char *uri) {
  aip_decision d;
  memset(&d, 0, sizeof(d));
  cJSON *v = cJSON_CreateString(uri);
  int refused = !v || aip_policy_check_paths(p->sess->agent->policy, v, &d);
  cJSON_Delete(v);
  if (!refused) return 0;
  if (!v) d.kind = AIP_DECISION_BLOCK; /* no memory to check: fail closed */
  aip_dispatch_audit(p->sess, method, &d, p->subject, NULL);
  if (v) aip_dispatch_deny(p, &d, p->subject);
  else aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
  return 1;
}

/* Routes p->subject and checks the routed URI; 0 with the route, or 1 when p was answered. */
static int route_checked(aip_pending *p, const char *method, size_t *server, const char **real) {
  aip_agent_rt *a = p->sess->agent;
  /* the URI as given was checked before anything else (core/decide.c: even a URI no server
   * would take is refused as what it is); here the URI as the server will see it */
  const char *why = NULL;
  int code = resolve(a, p->subject, server, real, &why);
  if (code) {
    aip_pending_error(p, code, why);
    return 1;
  }
  if (strcmp(*real, p->subject) != 0 && refused_path(p, method, *real)) return 1;
  aip_decision d;
  memset(&d, 0, sizeof(d));
  d.kind = AIP_DECISION_ALLOW;
  snprintf(d.reason, sizeof(d.reason), "resource routed to server %s",
           a->gw->cfg->servers[a->cfg->servers[*server]].name);
  aip_dispatch_audit(p->sess, method, &d, p->subject, NULL);
  return 0;
}

/* What runs once both lists are fresh (kept in p->route_ctx meanwhile). */
typedef struct step {
  void (*fn)(aip_pending *p);
} step;

static void with_templates(aip_pending *p) {
  p->on_tools = ((const step *)p->route_ctx)->fn;
  p->route_ctx = NULL;
  aip_lists_with(p->sess->agent, AIP_LIST_TEMPLATES, p);
}

/* Takes params.uri; then both lists, then `then`. */
static void start(aip_pending *p, aip_rpc_msg *m, const step *then) {
  const cJSON *uri = cJSON_IsObject(m->params)
                         ? cJSON_GetObjectItemCaseSensitive(m->params, "uri") : NULL;
  if (!cJSON_IsString(uri) || !uri->valuestring[0]) {
    aip_pending_error(p, AIP_RPC_INVALID_PARAMS, "Invalid params: a string uri is required");
    return;
  }
  p->subject = strdup(uri->valuestring);
  p->params = cJSON_Duplicate(m->params, 1);
  if (!p->subject || !p->params) {
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
    return;
  }
  p->route_ctx = (void *)then;
  p->on_tools = with_templates;
  aip_lists_with(p->sess->agent, AIP_LIST_RESOURCES, p);
}

/* ---- resources/read ---------------------------------------------------------------------- */

static void read_answered(aip_upstream_call *call, cJSON *msg, int final, void *data) {
  aip_pending *p = data;
  if (final) {
    p->call = NULL;
    aip_agent_rt *a = p->sess->agent;
    cJSON *result = cJSON_GetObjectItemCaseSensitive(msg, "result");
    cJSON *contents = cJSON_IsObject(result) ? cJSON_GetObjectItemCaseSensitive(result, "contents") : NULL;
    cJSON *c;
    cJSON_ArrayForEach(c, contents) set_uri(c, a, (size_t)p->route_server);
    aip_route_expose_uris(a, (size_t)p->route_server, result);
  }
  aip_pending_emit(p, msg, final);
}

/* Forwards p->params with its uri set to `real`. */
static void forward(aip_pending *p, const char *method, size_t server, const char *real,
                    aip_upstream_call_cb cb) {
  aip_upstream *u = p->sess->agent->ups[server];
  cJSON *params = p->params;
  p->params = NULL;
  cJSON_ReplaceItemInObjectCaseSensitive(params, "uri", cJSON_CreateString(real));
  p->route_server = (int)server;
  if (aip_upstream_call_start(u, method, params, cb, p, &p->call)) aip_dispatch_unavailable(p, u);
}

static void read_ready(aip_pending *p) {
  size_t server;
  const char *real;
  if (route_checked(p, "resources/read", &server, &real)) return;
  forward(p, "resources/read", server, real, read_answered);
}

void aip_route_resources_read(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  static const step then = {read_ready};
  start(p, m, &then);
}

/* ---- subscriptions ----------------------------------------------------------------------- */

typedef struct sub_sess {
  aip_session *s;
  char *uri; /* as that session named it */
} sub_sess;

struct aip_sub {
  struct aip_sub *next;
  size_t server;
  char *real;
  sub_sess *v;
  size_t n, cap;
};

static struct aip_sub *sub_find(aip_agent_rt *a, size_t server, const char *real) {
  for (struct aip_sub *x = a->subs; x; x = x->next)
    if (x->server == server && strcmp(x->real, real) == 0) return x;
  return NULL;
}

static void ignore_answer(aip_upstream_call *call, cJSON *msg, int final, void *data) {
  cJSON_Delete(msg);
}

/* Drops session `s` from x (all sessions when s is NULL); the last one gone: unsubscribe
 * upstream (when `tell`) and free x. */
static void sub_drop(aip_agent_rt *a, struct aip_sub *x, aip_session *s, int tell) {
  for (size_t i = 0; i < x->n;) {
    if (s && x->v[i].s != s) {
      i++;
      continue;
    }
    free(x->v[i].uri);
    x->v[i] = x->v[--x->n];
  }
  if (x->n) return;
  struct aip_sub **pp = &a->subs;
  while (*pp != x) pp = &(*pp)->next;
  *pp = x->next;
  cJSON *params = cJSON_CreateObject();
  cJSON_AddStringToObject(params, "uri", x->real);
  if (tell && a->ups[x->server]->state == AIP_UPSTREAM_READY)
    aip_upstream_call_start(a->ups[x->server], "resources/unsubscribe", params, ignore_answer,
                            NULL, NULL);
  else
    cJSON_Delete(params); /* an instance that restarted holds no subscription */
  free(x->v);
  free(x->real);
  free(x);
}

static int sub_add(struct aip_sub *x, aip_session *s, const char *uri) {
  for (size_t i = 0; i < x->n; i++)
    if (x->v[i].s == s) return 0;
  if (x->n == x->cap) {
    size_t cap = x->cap ? x->cap * 2 : 4;
    sub_sess *v = realloc(x->v, cap * sizeof(*v));
    if (!v) return -ENOMEM;
    x->v = v;
    x->cap = cap;
  }
  x->v[x->n].s = s;
  x->v[x->n].uri = strdup(uri);
  if (!x->v[x->n].uri) return -ENOMEM;
  x->n++;
  return 0;
}

static void subscribe_answered(aip_upstream_call *call, cJSON *msg, int final, void *data) {
  aip_pending *p = data;
  if (final) {
    p->call = NULL;
    struct aip_sub *x = sub_find(p->sess->agent, (size_t)p->route_server, p->tool);
    /* the server refused: nobody is subscribed (and there is nothing to undo upstream) */
    if (x && !cJSON_GetObjectItemCaseSensitive(msg, "result")) sub_drop(p->sess->agent, x, NULL, 0);
  }
  aip_pending_emit(p, msg, final);
}

static void subscribe_ready(aip_pending *p) {
  aip_agent_rt *a = p->sess->agent;
  size_t server;
  const char *real;
  if (route_checked(p, "resources/subscribe", &server, &real)) return;
  if (a->ups[server]->server_info && !aip_server_offers(a, server, "resources", "subscribe")) {
    aip_pending_error(p, AIP_RPC_METHOD_NOT_FOUND,
                      "The resource's server does not support subscriptions");
    return;
  }
  struct aip_sub *x = sub_find(a, server, real);
  if (x) { /* the server already sends its updates: one more session hears them */
    if (sub_add(x, p->sess, p->subject)) aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
    else aip_pending_result(p, cJSON_CreateObject());
    return;
  }
  x = calloc(1, sizeof(*x));
  p->tool = strdup(real); /* the URI as the server knows it, to find x again on the answer */
  if (!x || !p->tool || !(x->real = strdup(real)) || sub_add(x, p->sess, p->subject)) {
    if (x) free(x->v ? x->v[0].uri : NULL), free(x->v), free(x->real);
    free(x);
    aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
    return;
  }
  x->server = server;
  x->next = a->subs;
  a->subs = x;
  forward(p, "resources/subscribe", server, real, subscribe_answered);
}

void aip_route_resources_subscribe(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  static const step then = {subscribe_ready};
  start(p, m, &then);
}

/* Unsubscribing needs no policy check (it only stops updates): the URI is matched against what
 * this session subscribed to, as it named it. */
void aip_route_resources_unsubscribe(aip_pending *p, aip_session *s, aip_rpc_msg *m) {
  const cJSON *uri = cJSON_IsObject(m->params)
                         ? cJSON_GetObjectItemCaseSensitive(m->params, "uri") : NULL;
  if (!cJSON_IsString(uri)) {
    aip_pending_error(p, AIP_RPC_INVALID_PARAMS, "Invalid params: a string uri is required");
    return;
  }
  aip_agent_rt *a = s->agent;
  for (struct aip_sub *x = a->subs, *next; x; x = next) {
    next = x->next;
    for (size_t i = 0; i < x->n; i++) {
      if (x->v[i].s != s || strcmp(x->v[i].uri, uri->valuestring) != 0) continue;
      sub_drop(a, x, s, 1);
      break;
    }
  }
  aip_pending_result(p, cJSON_CreateObject());
}

void aip_route_subs_session_end(aip_session *s) {
  aip_agent_rt *a = s->agent;
  for (struct aip_sub *x = a->subs, *next; x; x = next) {
    next = x->next;
    for (size_t i = 0; i < x->n; i++)
      if (x->v[i].s == s) {
        sub_drop(a, x, s, 1);
        break;
      }
  }
}

void aip_route_resource_updated(aip_agent_rt *a, size_t server, cJSON *msg) {
  cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
  const cJSON *uri = cJSON_IsObject(params) ? cJSON_GetObjectItemCaseSensitive(params, "uri") : NULL;
  struct aip_sub *x = cJSON_IsString(uri) ? sub_find(a, server, uri->valuestring) : NULL;
  for (size_t i = 0; x && i < x->n; i++) {
    cJSON_ReplaceItemInObjectCaseSensitive(params, "uri", cJSON_CreateString(x->v[i].uri));
    aip_session_push(x->v[i].s, msg);
  }
  cJSON_Delete(msg);
}

/* The server's instance went down: its subscriptions went with it. Subscribe again, queued for
 * the next instance (which this starts), so the sessions keep hearing updates. */
void aip_route_subs_reset(aip_agent_rt *a, size_t server) {
  for (struct aip_sub *x = a->subs; x; x = x->next) {
    if (x->server != server) continue;
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "uri", x->real);
    if (aip_upstream_call_start(a->ups[server], "resources/subscribe", params, ignore_answer, NULL,
                                NULL))
      aip_warn("upstream %s: cannot subscribe again to a resource after a restart: %s",
               a->ups[server]->label, a->ups[server]->last_error);
  }
}

/* The subscriptions left when the agent goes (every session ended first). */
void aip_route_subs_free(aip_agent_rt *a) {
  while (a->subs) sub_drop(a, a->subs, NULL, 0);
}
