/* lists.c -- an agent's merged tools, prompts, resources and resource templates (core/lists.h).
 *
 * The naming rule (docs/routing.md): under tool_prefix auto an item
 * keeps its own name unless two of the agent's servers offer the same one; then both are
 * qualified with their server. `always` qualifies everything, `never` nothing (a shared name is
 * then exposed by neither). A name that could mean two items (one server's real name equals
 * another's qualified one, or an unqualified name reads as qualified) hides both: never "the
 * first wins". Tool and prompt names are compared as the policy compares names (NFKC,
 * case-folded); URIs exactly, since servers tell URIs apart by case.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/lists.h"
#include "gateway/core/agent.h"
#include "gateway/mcp/pending.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

#define MAX_PAGES 100
#define MAX_ITEMS 10000
#define URI_SCHEME "aip://"

const aip_list_kind aip_list_kinds[AIP_LIST_N] = {
    [AIP_LIST_TOOLS] = {"tools/list", "tools", "name", NULL, 0, "tool"},
    [AIP_LIST_PROMPTS] = {"prompts/list", "prompts", "name", "prompts", 0, "prompt"},
    [AIP_LIST_RESOURCES] = {"resources/list", "resources", "uri", "resources", 1, "resource"},
    [AIP_LIST_TEMPLATES] = {"resources/templates/list", "resourceTemplates", "uriTemplate",
                            "resources", 1, "resource template"},
};

/* ---- naming ------------------------------------------------------------------------------ */

int aip_list_init(aip_list *l, aip_list_id id, size_t servers_n) {
  memset(l, 0, sizeof(*l));
  l->id = id;
  aip_map_init(&l->map);
  aip_map_init(&l->keys);
  l->last = calloc(servers_n ? servers_n : 1, sizeof(cJSON *));
  l->failed = calloc(servers_n ? servers_n : 1, 1);
  l->servers_n = servers_n;
  return l->last && l->failed ? 0 : -ENOMEM;
}

static void entry_free(aip_list_entry *e) {
  free(e->exposed);
  free(e->real);
  free(e->qualified);
  free(e->keys[0]);
  free(e->keys[1]);
}

static void clear(aip_list *l) {
  for (size_t i = 0; i < l->n; i++) entry_free(&l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
  aip_map_free(&l->map);
  aip_map_init(&l->map);
  aip_map_free(&l->keys);
  aip_map_init(&l->keys);
  cJSON_Delete(l->json);
  l->json = NULL;
}

void aip_list_free(aip_list *l) {
  clear(l);
  for (size_t s = 0; l->last && s < l->servers_n; s++) cJSON_Delete(l->last[s]);
  free(l->last);
  free(l->failed);
  free(l->waiters);
  l->last = NULL;
  l->failed = NULL;
  l->waiters = NULL;
}

char *aip_list_qualify(aip_list_id id, const char *server, const char *real) {
  char *q;
  int rc = aip_list_kinds[id].uri ? asprintf(&q, URI_SCHEME "%s/%s", server, real)
                                  : asprintf(&q, "%s__%s", server, real);
  return rc < 0 ? NULL : q;
}

/* How names are compared: prompt names as the policy compares them, URIs as they are. */
static char *key_of(aip_list_id id, const char *s) {
  return aip_list_kinds[id].uri ? strdup(s) : aip_normalize_name(s, strlen(s));
}

int aip_list_unqualify(aip_list_id id, const aip_list_names *n, const char *name,
                       const char **rest) {
  if (n->prefix == AIP_PREFIX_NEVER) return -1; /* names carry no server */
  int uri = aip_list_kinds[id].uri;
  if (uri && strncmp(name, URI_SCHEME, strlen(URI_SCHEME)) != 0) return -1;
  const char *p = uri ? name + strlen(URI_SCHEME) : name;
  for (size_t s = 0; s < n->servers_n; s++) {
    size_t len = strlen(n->servers[s]);
    const char *sep = uri ? "/" : "__";
    if (strncmp(p, n->servers[s], len) == 0 && strncmp(p + len, sep, strlen(sep)) == 0 &&
        p[len + strlen(sep)]) {
      *rest = p + len + strlen(sep);
      return (int)s;
    }
  }
  return -1;
}

/* An unqualified name that reads as some server's qualified one. */
static int reads_as_qualified(aip_list_id id, const aip_list_names *n, const char *key) {
  for (size_t s = 0; s < n->servers_n; s++) {
    char *q = aip_list_qualify(id, n->servers[s], "");
    char *k = q ? key_of(id, q) : NULL;
    int hit = !k || strncmp(key, k, strlen(k)) == 0;
    free(q);
    free(k);
    if (hit) return 1;
  }
  return 0;
}

static const char *item_name(aip_list_id id, const cJSON *item) {
  const cJSON *v = cJSON_IsObject(item)
                       ? cJSON_GetObjectItemCaseSensitive(item, aip_list_kinds[id].name_key)
                       : NULL;
  return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* How many servers offer each real key (a server listing one twice counts once). */
typedef struct key_count {
  char *key;
  size_t servers, last_server;
} key_count;

static int shared(const aip_map *counts, const char *key) {
  const key_count *c = key ? aip_map_get(counts, key, strlen(key)) : NULL;
  return c && c->servers > 1;
}

static int count_keys(aip_list_id id, const aip_list_names *n, cJSON *const *items,
                      aip_map *counts, key_count *slots, size_t *used) {
  for (size_t s = 0; s < n->servers_n; s++) {
    const cJSON *it;
    cJSON_ArrayForEach(it, items[s]) {
      const char *name = item_name(id, it);
      char *k = name ? key_of(id, name) : NULL;
      if (!k) continue;
      key_count *c = aip_map_get(counts, k, strlen(k));
      if (c) {
        free(k);
      } else {
        c = &slots[(*used)++];
        c->key = k;
        if (aip_map_put(counts, k, strlen(k), c)) return -ENOMEM;
      }
      if (c->last_server != s + 1) c->servers++;
      c->last_server = s + 1;
    }
  }
  return 0;
}

static int entry_make(aip_list_id id, const aip_list_names *n, const aip_map *counts, size_t s,
                      const char *real, aip_list_entry *e) {
  memset(e, 0, sizeof(*e));
  e->server = s;
  e->real = strdup(real);
  e->qualified = aip_list_qualify(id, n->servers[s], real);
  char *rk = key_of(id, real);
  if (!e->real || !e->qualified) {
    free(rk);
    return -ENOMEM;
  }
  int prefix = n->prefix == AIP_PREFIX_ALWAYS || (n->prefix == AIP_PREFIX_AUTO && shared(counts, rk));
  free(rk);
  e->exposed = strdup(prefix ? e->qualified : real);
  if (!e->exposed) return -ENOMEM;
  e->keys[0] = key_of(id, e->exposed);
  e->keys[1] = key_of(id, e->qualified);
  /* a tool or prompt name that reads as qualified is hidden in every mode (a policy entry
   * written for the qualified name could mean it); under `never` URIs carry no server */
  int uri = aip_list_kinds[id].uri;
  e->hidden = !e->keys[0] || !e->keys[1] ||
              (!prefix && (!uri || n->prefix != AIP_PREFIX_NEVER) &&
               reads_as_qualified(id, n, e->keys[0]));
  return 0;
}

/* Claims the entry's keys; another entry with one of them: both hidden. 1: the server lists the
 * same item twice (drop it), 0, -ENOMEM. */
static int claim(aip_list *l, aip_list_entry *e) {
  for (int k = 0; k < 2; k++) {
    if (!e->keys[k] || (k == 1 && strcmp(e->keys[0], e->keys[1]) == 0)) continue;
    aip_list_entry *o = aip_map_get(&l->keys, e->keys[k], strlen(e->keys[k]));
    if (o == e) continue;
    if (o && o->server == e->server && strcmp(o->real, e->real) == 0) return 1;
    if (o) o->hidden = e->hidden = 1;
    else if (aip_map_put(&l->keys, e->keys[k], strlen(e->keys[k]), e)) return -ENOMEM;
  }
  return 0;
}

/* Tools the policy could never allow, and resources whose URI reaches a protected path (refused
 * when read), are not listed. */
static int policy_visible(aip_list_id id, const aip_list_names *n, const aip_list_entry *e) {
  if (!n->policy) return 1;
  if (id == AIP_LIST_TOOLS) {
    aip_tool_names tn = {e->exposed, e->real, e->qualified};
    return aip_policy_tool_visible_names(n->policy, &tn);
  }
  if (id != AIP_LIST_RESOURCES) return 1;
  aip_decision d;
  cJSON *v = cJSON_CreateString(e->real);
  int refused = !v || aip_policy_check_paths(n->policy, v, &d);
  cJSON_Delete(v);
  return !refused;
}

int aip_list_merge(aip_list *l, const aip_list_names *n, cJSON *const *items) {
  aip_list_id id = l->id;
  clear(l);
  size_t all = 0;
  for (size_t s = 0; s < n->servers_n; s++) all += (size_t)cJSON_GetArraySize(items[s]);
  size_t total = all > MAX_ITEMS ? MAX_ITEMS : all;
  l->v = calloc(total ? total : 1, sizeof(*l->v));
  l->json = cJSON_CreateArray();
  const cJSON **src = calloc(total ? total : 1, sizeof(*src));
  key_count *slots = calloc(all ? all : 1, sizeof(*slots));
  aip_map counts;
  aip_map_init(&counts);
  size_t used = 0;
  int rc = l->v && l->json && src && slots ? count_keys(id, n, items, &counts, slots, &used)
                                           : -ENOMEM;
  for (size_t s = 0; !rc && s < n->servers_n; s++) {
    const cJSON *it;
    cJSON_ArrayForEach(it, items[s]) {
      const char *real = item_name(id, it);
      if (!real || l->n >= MAX_ITEMS) continue;
      aip_list_entry *e = &l->v[l->n];
      int r = entry_make(id, n, &counts, s, real, e);
      if (!r) r = claim(l, e);
      if (r) entry_free(e);
      if (r < 0) {
        rc = r;
        break;
      }
      if (r == 1)
        aip_warn("agent %s: server %s lists %s %s twice; using the first", n->agent ? n->agent : "?",
                 n->servers[s], aip_list_kinds[id].noun, real);
      if (r == 0) src[l->n++] = it;
    }
  }
  l->hidden_n = 0;
  for (size_t i = 0; !rc && i < l->n; i++) {
    aip_list_entry *e = &l->v[i];
    if (e->hidden) {
      int two = strcmp(e->exposed, e->qualified) != 0;
      const char *noun = aip_list_kinds[id].noun;
      aip_warn("agent %s: %s %s of server %s hidden: its name %s%s%s could also mean another %s "
               "(ambiguous)", n->agent ? n->agent : "?", noun, e->real, n->servers[e->server],
               e->exposed, two ? " or " : "", two ? e->qualified : "", noun);
      l->hidden_n++;
      continue;
    }
    e->visible = policy_visible(id, n, e);
    /* l->v never moves after this, so the maps may point into it */
    if (aip_map_put(&l->map, e->exposed, strlen(e->exposed), e)) rc = -ENOMEM;
    if (!rc && e->visible && !(n->stale && n->stale[e->server])) {
      cJSON *copy = cJSON_Duplicate(src[i], 1);
      cJSON_ReplaceItemInObjectCaseSensitive(copy, aip_list_kinds[id].name_key,
                                             cJSON_CreateString(e->exposed));
      cJSON_AddItemToArray(l->json, copy);
    }
  }
  aip_map_free(&counts);
  for (size_t i = 0; i < used; i++) free(slots[i].key);
  free(slots);
  free(src);
  if (rc) clear(l);
  return rc;
}

const aip_list_entry *aip_list_find(const aip_list *l, const char *exposed) {
  return aip_map_get(&l->map, exposed, strlen(exposed));
}

int aip_list_ambiguous(const aip_list *l, const char *name) {
  char *k = key_of(l->id, name);
  const aip_list_entry *e = k ? aip_map_get(&l->keys, k, strlen(k)) : NULL;
  free(k);
  return e && e->hidden;
}

const aip_list_entry *aip_list_find_real(const aip_list *l, size_t server, const char *real) {
  for (size_t i = 0; i < l->n; i++)
    if (l->v[i].server == server && strcmp(l->v[i].real, real) == 0) return &l->v[i];
  return NULL;
}

/* ---- RFC 6570 matching ------------------------------------------------------------------- */

/* Whether c may appear in a variable's expansion under operator op. Simple ("" and "."
 * labels) expansions percent-encode reserved characters, so '/', '?' and '#' end them; "+" and
 * "#" keep reserved characters; path and query forms stop at '?' and '#' respectively. */
static int var_char(char op, char c) {
  switch (op) {
  case '+': return c != '#';
  case '#': return 1;
  case '/': return c != '?' && c != '#';
  case ';': case '?': case '&': return c != '#';
  default: return c != '/' && c != '?' && c != '#' && c != '&';
  }
}

static int match_at(const char *t, const char *u, int depth) {
  if (depth > 64) return 0; /* too many expressions for a routing match */
  while (*t && *t != '{') {
    if (*t != *u) return 0;
    t++, u++;
  }
  if (!*t) return !*u;
  const char *close = strchr(t, '}');
  if (!close) return 0; /* not a template */
  char op = strchr("+#./;?&", t[1]) ? t[1] : 0;
  const char *after = close + 1;
  /* the shortest run that lets the rest match */
  for (const char *e = u;; e++) {
    if ((e > u || op) && match_at(after, e, depth + 1)) return 1;
    if (!*e || !var_char(op, *e)) return 0;
  }
}

int aip_uri_template_match(const char *tmpl, const char *uri) {
  return tmpl && uri && match_at(tmpl, uri, 0);
}

/* ---- fetch ------------------------------------------------------------------------------- */

int aip_agent_list_names(aip_agent_rt *a, aip_list_names *out) {
  const char **v = calloc(a->cfg->servers_n ? a->cfg->servers_n : 1, sizeof(*v));
  if (!v) return -ENOMEM;
  for (size_t s = 0; s < a->cfg->servers_n; s++) v[s] = a->gw->cfg->servers[a->cfg->servers[s]].name;
  *out = (aip_list_names){v, a->cfg->servers_n, a->cfg->tool_prefix, a->policy, a->cfg->name, NULL};
  return 0;
}

void aip_list_names_free(aip_list_names *n) {
  free((void *)n->servers);
  n->servers = NULL;
}

int aip_server_offers(aip_agent_rt *a, size_t s, const char *cap, const char *sub) {
  const cJSON *info = a->ups[s]->server_info;
  const cJSON *caps = info ? cJSON_GetObjectItemCaseSensitive(info, "capabilities") : NULL;
  const cJSON *c = cJSON_IsObject(caps) ? cJSON_GetObjectItemCaseSensitive(caps, cap) : NULL;
  if (!cJSON_IsObject(c)) return 0;
  return !sub || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, sub));
}

typedef struct lfetch lfetch;
typedef struct lpage {
  lfetch *f;
  size_t server;
  int pages;
} lpage;

struct lfetch {
  aip_agent_rt *a;
  aip_list_id id;
  size_t remaining;
  cJSON **items;
  int *failed;
  lpage *ctx;
};

static void lfetch_done(lfetch *f) {
  aip_agent_rt *a = f->a;
  aip_list *l = &a->lists[f->id];
  size_t n = a->cfg->servers_n;
  int complete = 1;
  for (size_t s = 0; s < n; s++) { /* keep each good list; a failed server keeps its last */
    l->failed[s] = (char)f->failed[s];
    complete &= !f->failed[s];
    if (!f->failed[s]) {
      cJSON_Delete(l->last[s]);
      l->last[s] = cJSON_Duplicate(f->items[s], 1);
    } else if (l->last[s]) {
      cJSON_Delete(f->items[s]);
      f->items[s] = cJSON_Duplicate(l->last[s], 1);
    }
  }
  aip_list_names names;
  int rc = aip_agent_list_names(a, &names);
  names.stale = l->failed;
  if (!rc) rc = aip_list_merge(l, &names, f->items);
  aip_list_names_free(&names);
  if (f->id == AIP_LIST_TOOLS) {
    a->gw->metrics.tools_hidden += l->hidden_n;
    if (rc || !complete) a->gw->metrics.tools_list_partial++;
  }
  for (size_t s = 0; s < n; s++) cJSON_Delete(f->items[s]);
  free(f->items);
  free(f->failed);
  free(f->ctx);
  free(f);
  l->fetch = NULL;
  l->fetching = 0;
  l->valid = !rc && complete && !l->stale;
  l->stale = 0;
  aip_pending **w = l->waiters; /* waiters may queue new waiters: take the list first */
  size_t wn = l->waiters_n;
  l->waiters = NULL;
  l->waiters_n = l->waiters_cap = 0;
  for (size_t i = 0; i < wn; i++) w[i]->waiting_tools = 0;
  for (size_t i = 0; i < wn; i++) w[i]->on_tools(w[i]);
  free(w);
}

static void lpage_request(lpage *c, const char *cursor);

static void lserver_done(lpage *c) {
  if (--c->f->remaining == 0) lfetch_done(c->f);
}

static void lon_page(aip_upstream_call *call, cJSON *msg, int final, void *data) {
  lpage *c = data;
  lfetch *f = c->f;
  if (!final) {
    cJSON_Delete(msg);
    return;
  }
  const aip_list_kind *k = &aip_list_kinds[f->id];
  const cJSON *result = cJSON_GetObjectItemCaseSensitive(msg, "result");
  const cJSON *arr = cJSON_IsObject(result) ? cJSON_GetObjectItemCaseSensitive(result, k->key) : NULL;
  const cJSON *next = cJSON_IsObject(result) ? cJSON_GetObjectItemCaseSensitive(result, "nextCursor") : NULL;
  if (!cJSON_IsArray(arr)) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(msg, "error");
    const cJSON *code = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "code") : NULL;
    /* a server we have not met yet that does not offer the kind: an empty list, not a fault */
    if (!(cJSON_IsNumber(code) && code->valueint == AIP_RPC_METHOD_NOT_FOUND)) {
      const cJSON *em = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : NULL;
      aip_warn("upstream %s: %s failed: %s", f->a->ups[c->server]->label, k->method,
               cJSON_IsString(em) ? em->valuestring : "no list in the result");
      f->failed[c->server] = 1;
    }
    cJSON_Delete(msg);
    lserver_done(c);
    return;
  }
  cJSON *it;
  while ((it = cJSON_DetachItemFromArray((cJSON *)arr, 0))) cJSON_AddItemToArray(f->items[c->server], it);
  char *cursor = cJSON_IsString(next) ? strdup(next->valuestring) : NULL;
  cJSON_Delete(msg);
  if (cursor && ++c->pages < MAX_PAGES && cJSON_GetArraySize(f->items[c->server]) < MAX_ITEMS)
    lpage_request(c, cursor);
  else
    lserver_done(c);
  free(cursor);
}

static void lpage_request(lpage *c, const char *cursor) {
  cJSON *params = NULL;
  if (cursor) {
    params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "cursor", cursor);
  }
  aip_upstream *u = c->f->a->ups[c->server];
  if (aip_upstream_call_start(u, aip_list_kinds[c->f->id].method, params, lon_page, c, NULL)) {
    /* down or backing off: the log says why the list is partial */
    aip_warn("upstream %s: %s failed: %s", u->label, aip_list_kinds[c->f->id].method,
             u->last_error[0] ? u->last_error : "unavailable");
    c->f->failed[c->server] = 1;
    lserver_done(c);
  }
}

static void lfetch_start(aip_agent_rt *a, aip_list_id id) {
  aip_list *l = &a->lists[id];
  size_t n = a->cfg->servers_n;
  lfetch *f = calloc(1, sizeof(*f));
  if (f) {
    f->items = calloc(n ? n : 1, sizeof(cJSON *));
    f->failed = calloc(n ? n : 1, sizeof(int));
    f->ctx = calloc(n ? n : 1, sizeof(lpage));
  }
  if (!f || !f->items || !f->failed || !f->ctx) {
    if (f) {
      free(f->items);
      free(f->failed);
      free(f->ctx);
    }
    free(f);
    return; /* waiters stay queued; the next request retries */
  }
  f->a = a;
  f->id = id;
  f->remaining = n + 1; /* +1 held while starting */
  l->fetch = f;
  l->fetching = 1;
  l->stale = 0;
  for (size_t s = 0; s < n; s++) {
    f->items[s] = cJSON_CreateArray();
    f->ctx[s] = (lpage){f, s, 0};
    /* only servers that offer the kind are asked; one not met yet is asked anyway (its
     * capabilities are unknown until it starts: -32601 then reads as "none") */
    const char *cap = aip_list_kinds[id].cap;
    if (cap && a->ups[s]->server_info && !aip_server_offers(a, s, cap, NULL)) {
      f->remaining--;
      continue;
    }
    lpage_request(&f->ctx[s], NULL);
  }
  if (--f->remaining == 0) lfetch_done(f);
}

void aip_lists_with(aip_agent_rt *a, aip_list_id id, aip_pending *p) {
  aip_list *l = &a->lists[id];
  if (l->valid) {
    p->on_tools(p);
    return;
  }
  if (l->waiters_n == l->waiters_cap) {
    size_t cap = l->waiters_cap ? l->waiters_cap * 2 : 8;
    aip_pending **w = realloc(l->waiters, cap * sizeof(*w));
    if (!w) {
      aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
      return;
    }
    l->waiters = w;
    l->waiters_cap = cap;
  }
  l->waiters[l->waiters_n++] = p;
  p->waiting_tools = 1;
  if (!l->fetching) lfetch_start(a, id);
}

void aip_lists_cancel_wait(aip_agent_rt *a, aip_pending *p) {
  for (int id = 0; id < AIP_LIST_N; id++) {
    aip_list *l = &a->lists[id];
    for (size_t i = 0; i < l->waiters_n; i++) {
      if (l->waiters[i] != p) continue;
      memmove(&l->waiters[i], &l->waiters[i + 1], (l->waiters_n - i - 1) * sizeof(*l->waiters));
      l->waiters_n--;
      break;
    }
  }
}

void aip_lists_changed(aip_agent_rt *a, aip_list_id id) {
  if (a->lists[id].fetching) a->lists[id].stale = 1;
  a->lists[id].valid = 0;
}

void aip_lists_all_changed(aip_agent_rt *a) {
  for (int id = 0; id < AIP_LIST_N; id++) aip_lists_changed(a, (aip_list_id)id);
}
