/* router.c -- an agent's servers seen as one: the merged tool list and tool -> server routing.
 *
 * tools/list fans out to every server of the agent (following every nextCursor), merges the
 * pages, names each tool as the agent will see it (tool_prefix), and keeps the result until a
 * server says notifications/tools/list_changed or restarts. Requests that need the list while
 * it is being fetched wait in `waiters`; one fetch serves them all.
 *
 * A server that fails to answer is left out of the merged list (logged and counted) and the
 * list is not cached, so the next request tries again: one broken server never hides the
 * others' tools.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/agent.h"
#include "gateway/core/server_requests.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

#define MAX_PAGES 100
#define MAX_TOOLS 10000

typedef struct fetch fetch;

typedef struct page_ctx {
  fetch *f;
  size_t server;
  int pages;
} page_ctx;

struct fetch {
  aip_agent_rt *a;
  size_t remaining;
  cJSON **lists; /* per server: the tools collected so far */
  int *failed;
  page_ctx *ctx;
};

/* ---- merge ------------------------------------------------------------------------------- */

static void tools_clear(aip_agent_rt *a) {
  for (size_t i = 0; i < a->tools_n; i++) {
    free(a->tools[i].exposed);
    free(a->tools[i].real);
    free(a->tools[i].qualified);
    free(a->tools[i].keys[0]);
    free(a->tools[i].keys[1]);
  }
  free(a->tools);
  a->tools = NULL;
  a->tools_n = 0;
  aip_map_free(&a->tool_map);
  aip_map_init(&a->tool_map);
  aip_map_free(&a->tool_keys);
  aip_map_init(&a->tool_keys);
  cJSON_Delete(a->tools_json);
  a->tools_json = NULL;
}

static const char *tool_name(const cJSON *tool) {
  const cJSON *n = cJSON_IsObject(tool) ? cJSON_GetObjectItemCaseSensitive(tool, "name") : NULL;
  return cJSON_IsString(n) && n->valuestring[0] ? n->valuestring : NULL;
}

static char *norm(const char *s) { return aip_normalize_name(s, strlen(s)); }

static const char *server_name(const aip_agent_rt *a, size_t server) {
  return a->gw->cfg->servers[a->cfg->servers[server]].name;
}

/* For tool_prefix auto: how many of the agent's servers offer each name, names compared as the
 * policy compares them (so "Exec" and "exec" on two servers are both prefixed). One pass over
 * all tools with a map, so merging stays linear in the number of tools. */
typedef struct name_count {
  char *key; /* normalized name (owned) */
  size_t servers;
  size_t last_server; /* +1; a server listing a name twice counts once */
} name_count;

static int count_names(fetch *f, aip_map *names, name_count *slots, size_t *used) {
  for (size_t s = 0; s < f->a->cfg->servers_n; s++) {
    const cJSON *t;
    cJSON_ArrayForEach(t, f->lists[s]) {
      const char *n = tool_name(t);
      char *k = n ? norm(n) : NULL;
      if (!k) continue; /* not UTF-8: hidden in add_tool */
      name_count *c = aip_map_get(names, k, strlen(k));
      if (c) {
        free(k);
      } else {
        c = &slots[(*used)++];
        c->key = k;
        if (aip_map_put(names, k, strlen(k), c)) return -ENOMEM;
      }
      if (c->last_server != s + 1) c->servers++;
      c->last_server = s + 1;
    }
  }
  return 0;
}

static int is_shared(const aip_map *names, const char *key) {
  const name_count *c = key ? aip_map_get(names, key, strlen(key)) : NULL;
  return c && c->servers > 1;
}

/* An unprefixed name that reads as "<one of the agent's servers>__...": a policy entry for that
 * server's tool could mean it, whether or not the server offers such a tool right now. */
static int reads_as_prefixed(const aip_agent_rt *a, const char *key) {
  for (size_t s = 0; s < a->cfg->servers_n; s++) {
    char *p;
    if (asprintf(&p, "%s__", server_name(a, s)) < 0) return 1;
    char *np = norm(p);
    free(p);
    int hit = !np || strncmp(key, np, strlen(np)) == 0;
    free(np);
    if (hit) return 1;
  }
  return 0;
}

/* Names one upstream tool: exposed, real, qualified, their keys. -ENOMEM, or 0; a name that
 * cannot be normalized (so the policy could not check it) makes the entry hidden. */
static int entry_make(aip_agent_rt *a, const aip_map *names, size_t server, const char *real,
                      aip_tool_entry *e) {
  memset(e, 0, sizeof(*e));
  e->server = server;
  e->real = strdup(real);
  if (asprintf(&e->qualified, "%s__%s", server_name(a, server), real) < 0) e->qualified = NULL;
  if (!e->real || !e->qualified) return -ENOMEM;
  char *nreal = norm(real);
  int prefix = a->cfg->tool_prefix == AIP_PREFIX_ALWAYS ||
               (a->cfg->tool_prefix == AIP_PREFIX_AUTO && is_shared(names, nreal));
  free(nreal);
  e->exposed = strdup(prefix ? e->qualified : real);
  if (!e->exposed) return -ENOMEM;
  e->keys[0] = norm(e->exposed);
  e->keys[1] = norm(e->qualified);
  e->hidden = !e->keys[0] || !e->keys[1] || (!prefix && reads_as_prefixed(a, e->keys[0]));
  return 0;
}

static void entry_free(aip_tool_entry *e) {
  free(e->exposed);
  free(e->real);
  free(e->qualified);
  free(e->keys[0]);
  free(e->keys[1]);
}

/* Claims the entry's names. Another tool with the same key: both are hidden (never "the first
 * wins": either could be the one a policy entry meant). Returns 1 for a server listing the same
 * tool twice (the entry is dropped), 0, or -ENOMEM. */
static int claim(aip_agent_rt *a, aip_tool_entry *e) {
  for (int k = 0; k < 2; k++) {
    if (!e->keys[k] || (k == 1 && strcmp(e->keys[0], e->keys[1]) == 0)) continue;
    aip_tool_entry *o = aip_map_get(&a->tool_keys, e->keys[k], strlen(e->keys[k]));
    if (o == e) continue;
    if (o && o->server == e->server && strcmp(o->real, e->real) == 0) return 1;
    if (o) {
      o->hidden = e->hidden = 1;
    } else if (aip_map_put(&a->tool_keys, e->keys[k], strlen(e->keys[k]), e)) {
      return -ENOMEM;
    }
  }
  return 0;
}

/* Exposes one named, unambiguous tool: routable, and listed when visible and not `stale` (its
 * server failed this time and this is its last good list, kept so its tools still route and
 * fail with "unavailable"). */
static int expose(aip_agent_rt *a, aip_tool_entry *e, const cJSON *tool, int stale) {
  if (e->hidden) {
    int two = strcmp(e->exposed, e->qualified) != 0;
    aip_warn("agent %s: tool %s of server %s hidden: its name %s%s%s could also mean another "
             "tool (ambiguous)", a->cfg->name, e->real, server_name(a, e->server), e->exposed,
             two ? " or " : "", two ? e->qualified : "");
    a->gw->metrics.tools_hidden++;
    return 0;
  }
  aip_tool_names n = {e->exposed, e->real, e->qualified};
  e->visible = aip_policy_tool_visible_names(a->policy, &n);
  /* a->tools was sized for every tool up front and never moves, so the map may point into it */
  if (aip_map_put(&a->tool_map, e->exposed, strlen(e->exposed), e)) return -ENOMEM;
  if (e->visible && !stale) {
    cJSON *copy = cJSON_Duplicate(tool, 1);
    cJSON_ReplaceItemInObjectCaseSensitive(copy, "name", cJSON_CreateString(e->exposed));
    cJSON_AddItemToArray(a->tools_json, copy);
  }
  return 0;
}

/* Names and claims every tool; `src[i]` is the JSON of a->tools[i]. */
static int name_all(fetch *f, const aip_map *names, const cJSON **src) {
  aip_agent_rt *a = f->a;
  for (size_t s = 0; s < a->cfg->servers_n; s++) {
    const cJSON *t;
    cJSON_ArrayForEach(t, f->lists[s]) {
      const char *real = tool_name(t);
      if (!real || a->tools_n >= MAX_TOOLS) continue;
      aip_tool_entry *e = &a->tools[a->tools_n];
      int rc = entry_make(a, names, s, real, e);
      if (!rc) rc = claim(a, e);
      if (rc) entry_free(e);
      if (rc < 0) { /* the map may hold a key of the freed entry: forget them all */
        aip_map_free(&a->tool_keys);
        aip_map_init(&a->tool_keys);
        return rc;
      }
      if (rc) {
        aip_warn("agent %s: server %s lists tool %s twice; using the first", a->cfg->name,
                 server_name(a, s), real);
        continue;
      }
      src[a->tools_n] = t;
      a->tools_n++;
    }
  }
  return 0;
}

static void merge(fetch *f) {
  aip_agent_rt *a = f->a;
  tools_clear(a);
  size_t all = 0;
  for (size_t s = 0; s < a->cfg->servers_n; s++) all += (size_t)cJSON_GetArraySize(f->lists[s]);
  size_t total = all > MAX_TOOLS ? MAX_TOOLS : all;
  a->tools = calloc(total ? total : 1, sizeof(*a->tools));
  a->tools_json = cJSON_CreateArray();
  aip_map names;
  aip_map_init(&names);
  name_count *slots = calloc(all ? all : 1, sizeof(*slots));
  const cJSON **src = calloc(total ? total : 1, sizeof(*src));
  size_t used = 0;
  int ok = a->tools && a->tools_json && slots && src && count_names(f, &names, slots, &used) == 0 &&
           name_all(f, &names, src) == 0;
  int complete = ok;
  for (size_t s = 0; s < a->cfg->servers_n; s++) {
    a->server_failed[s] = (char)f->failed[s];
    complete &= !f->failed[s]; /* a failed server has an empty list; the others still count */
  }
  for (size_t i = 0; ok && i < a->tools_n; i++)
    if (expose(a, &a->tools[i], src[i], f->failed[a->tools[i].server])) ok = complete = 0;
  aip_map_free(&names);
  for (size_t i = 0; i < used; i++) free(slots[i].key);
  free(slots);
  free(src);
  if (!complete) a->gw->metrics.tools_list_partial++;
  a->tools_valid = complete && !a->tools_stale;
}

/* ---- fetch ------------------------------------------------------------------------------- */

/* Remembers each server's good list, and gives a failed server its last good one. */
static void keep_last_good(fetch *f) {
  aip_agent_rt *a = f->a;
  for (size_t s = 0; s < a->cfg->servers_n; s++) {
    if (!f->failed[s]) {
      cJSON_Delete(a->last_lists[s]);
      a->last_lists[s] = cJSON_Duplicate(f->lists[s], 1);
    } else if (a->last_lists[s]) {
      cJSON_Delete(f->lists[s]);
      f->lists[s] = cJSON_Duplicate(a->last_lists[s], 1);
    }
  }
}

static void fetch_done(fetch *f) {
  aip_agent_rt *a = f->a;
  keep_last_good(f);
  merge(f);
  for (size_t s = 0; s < a->cfg->servers_n; s++) cJSON_Delete(f->lists[s]);
  free(f->lists);
  free(f->failed);
  free(f->ctx);
  free(f);
  a->fetch = NULL;
  a->tools_fetching = 0;
  a->tools_stale = 0;
  /* Waiters may add new waiters (or free themselves): take the list first. */
  aip_pending **w = a->waiters;
  size_t n = a->waiters_n;
  a->waiters = NULL;
  a->waiters_n = a->waiters_cap = 0;
  for (size_t i = 0; i < n; i++) {
    w[i]->waiting_tools = 0;
  }
  for (size_t i = 0; i < n; i++) w[i]->on_tools(w[i]);
  free(w);
}

static void request_page(page_ctx *c, const char *cursor);

static void server_done(page_ctx *c) {
  if (--c->f->remaining == 0) fetch_done(c->f);
}

static void on_page(aip_upstream_call *call, cJSON *msg, int final, void *data) {
  page_ctx *c = data;
  fetch *f = c->f;
  if (!final) {
    cJSON_Delete(msg);
    return;
  }
  const cJSON *result = cJSON_GetObjectItemCaseSensitive(msg, "result");
  const cJSON *tools = cJSON_IsObject(result) ? cJSON_GetObjectItemCaseSensitive(result, "tools") : NULL;
  const cJSON *next = cJSON_IsObject(result) ? cJSON_GetObjectItemCaseSensitive(result, "nextCursor") : NULL;
  if (!cJSON_IsArray(tools)) {
    const char *label = f->a->ups[c->server]->label;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(msg, "error");
    const cJSON *em = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : NULL;
    aip_warn("upstream %s: tools/list failed: %s", label,
             cJSON_IsString(em) ? em->valuestring : "no tools array in the result");
    f->failed[c->server] = 1;
    cJSON_Delete(msg);
    server_done(c);
    return;
  }
  /* Move (not copy) the tools out of the message into the server's list. */
  cJSON *t;
  while ((t = cJSON_DetachItemFromArray((cJSON *)tools, 0))) cJSON_AddItemToArray(f->lists[c->server], t);
  char *cursor = cJSON_IsString(next) ? strdup(next->valuestring) : NULL;
  cJSON_Delete(msg);
  if (cursor && ++c->pages < MAX_PAGES && cJSON_GetArraySize(f->lists[c->server]) < MAX_TOOLS) {
    request_page(c, cursor);
  } else {
    server_done(c);
  }
  free(cursor);
}

static void request_page(page_ctx *c, const char *cursor) {
  cJSON *params = NULL;
  if (cursor) {
    params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "cursor", cursor);
  }
  aip_upstream *u = c->f->a->ups[c->server];
  if (aip_upstream_call_start(u, "tools/list", params, on_page, c, NULL)) {
    c->f->failed[c->server] = 1;
    server_done(c);
  }
}

static void fetch_start(aip_agent_rt *a) {
  size_t n = a->cfg->servers_n;
  fetch *f = calloc(1, sizeof(*f));
  if (f) {
    f->lists = calloc(n ? n : 1, sizeof(cJSON *));
    f->failed = calloc(n ? n : 1, sizeof(int));
    f->ctx = calloc(n ? n : 1, sizeof(page_ctx));
  }
  if (!f || !f->lists || !f->failed || !f->ctx) {
    if (f) {
      free(f->lists);
      free(f->failed);
      free(f->ctx);
    }
    free(f);
    return; /* waiters stay queued; the next request retries */
  }
  f->a = a;
  f->remaining = n + 1; /* +1 held while starting: answers may come synchronously */
  a->fetch = f;
  a->tools_fetching = 1;
  a->tools_stale = 0;
  for (size_t s = 0; s < n; s++) {
    f->lists[s] = cJSON_CreateArray();
    f->ctx[s] = (page_ctx){f, s, 0};
    request_page(&f->ctx[s], NULL);
  }
  if (--f->remaining == 0) fetch_done(f);
}

void aip_router_with_tools(aip_agent_rt *a, aip_pending *p) {
  if (a->tools_valid) {
    p->on_tools(p);
    return;
  }
  if (a->waiters_n == a->waiters_cap) {
    size_t cap = a->waiters_cap ? a->waiters_cap * 2 : 8;
    aip_pending **w = realloc(a->waiters, cap * sizeof(*w));
    if (!w) {
      aip_pending_error(p, AIP_RPC_INTERNAL_ERROR, "Internal error");
      return;
    }
    a->waiters = w;
    a->waiters_cap = cap;
  }
  a->waiters[a->waiters_n++] = p;
  p->waiting_tools = 1;
  if (!a->tools_fetching) fetch_start(a);
}

void aip_router_cancel_wait(aip_agent_rt *a, aip_pending *p) {
  for (size_t i = 0; i < a->waiters_n; i++) {
    if (a->waiters[i] != p) continue;
    memmove(&a->waiters[i], &a->waiters[i + 1], (a->waiters_n - i - 1) * sizeof(*a->waiters));
    a->waiters_n--;
    break;
  }
  p->waiting_tools = 0;
}

const aip_upstream *aip_router_failed_server(aip_agent_rt *a, const char *exposed) {
  if (a->cfg->tool_prefix == AIP_PREFIX_NEVER) return NULL; /* names carry no server */
  for (size_t s = 0; s < a->cfg->servers_n; s++) {
    const char *name = a->gw->cfg->servers[a->cfg->servers[s]].name;
    size_t n = strlen(name);
    if (a->server_failed[s] && strncmp(exposed, name, n) == 0 && strncmp(exposed + n, "__", 2) == 0)
      return a->ups[s];
  }
  return NULL;
}

const aip_tool_entry *aip_router_find(aip_agent_rt *a, const char *exposed) {
  return aip_map_get(&a->tool_map, exposed, strlen(exposed));
}

int aip_router_ambiguous(aip_agent_rt *a, const char *name) {
  char *k = norm(name);
  const aip_tool_entry *e = k ? aip_map_get(&a->tool_keys, k, strlen(k)) : NULL;
  free(k);
  return e && e->hidden;
}

void aip_router_tools_changed(aip_agent_rt *a) {
  if (a->tools_fetching) a->tools_stale = 1;
  a->tools_valid = 0;
}

/* ---- upstream hooks ---------------------------------------------------------------------- */

static void on_upstream_notification(aip_upstream *u, cJSON *msg, void *data) {
  aip_agent_rt *a = data;
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(msg, "method");
  if (cJSON_IsString(m) && strcmp(m->valuestring, "notifications/tools/list_changed") == 0)
    aip_router_tools_changed(a);
  for (aip_session *s = a->sessions; s; s = s->next) aip_session_push(s, msg);
  cJSON_Delete(msg);
}

static void on_upstream_reset(aip_upstream *u, void *data) {
  aip_router_tools_changed(data);
  aip_s2c_upstream_reset(data, u); /* its requests to the agent died with it */
}

static void on_upstream_request(aip_upstream *u, cJSON *msg, aip_upstream_call *related,
                                void *data) {
  aip_s2c_request(data, u, msg, related);
}

/* Answers larger than the agent's dlp.stream_threshold stream through its DLP (mcp_http.c). */
static uint64_t agent_stream_threshold(aip_upstream *u, void *data) {
  const aip_agent_rt *a = data;
  if (!a->policy) return 0;
  uint64_t t = aip_policy_doc_of(a->policy)->dlp.stream_threshold;
  return t ? t : 1024 * 1024;
}

/* ---- agent lifecycle --------------------------------------------------------------------- */

int aip_agent_init(aip_gw *gw, aip_agent_rt *a, const aip_agent_config *cfg, aip_error *err) {
  memset(a, 0, sizeof(*a));
  a->gw = gw;
  a->cfg = cfg;
  aip_map_init(&a->tool_map);
  aip_map_init(&a->tool_keys);
  /* the policy itself comes from policy_load.c; buckets outlive policy versions */
  a->rate = aip_rate_state_new(NULL);
  if (!a->rate) return aip_error_set(err, -ENOMEM, "out of memory");
  a->ups = calloc(cfg->servers_n ? cfg->servers_n : 1, sizeof(*a->ups));
  a->server_failed = calloc(cfg->servers_n ? cfg->servers_n : 1, 1);
  a->last_lists = calloc(cfg->servers_n ? cfg->servers_n : 1, sizeof(cJSON *));
  if (!a->ups || !a->server_failed || !a->last_lists)
    return aip_error_set(err, -ENOMEM, "out of memory");
  aip_upstream_hooks hooks = {on_upstream_notification, on_upstream_reset, a,
                              agent_stream_threshold, on_upstream_request};
  for (size_t i = 0; i < cfg->servers_n; i++) {
    const aip_server_config *sc = &gw->cfg->servers[cfg->servers[i]];
    char label[200];
    snprintf(label, sizeof(label), "%s/%s", cfg->name, sc->name);
    a->ups[i] = sc->url ? aip_upstream_http_new(gw->loop, sc, label, &gw->cfg->limits, &hooks)
                        : aip_upstream_stdio_new(gw->loop, sc, gw->cfg->dir, label,
                                                 &gw->cfg->limits, &hooks);
    if (!a->ups[i]) return aip_error_set(err, -ENOMEM, "out of memory");
  }
  return 0;
}

void aip_agent_shutdown(aip_agent_rt *a) {
  while (a->sessions) aip_session_end(a->gw, a->sessions);
  for (size_t i = 0; a->ups && i < a->cfg->servers_n; i++)
    if (a->ups[i]) aip_upstream_close(a->ups[i]);
}

aip_dlp_run aip_agent_dlp_run(aip_agent_rt *a) {
  return (aip_dlp_run){.dlp = a->dlp, .scratch = a->dlp_scratch,
                       .doc = a->policy ? aip_policy_doc_of(a->policy) : NULL};
}

void aip_agent_count_dlp(aip_agent_rt *a, const aip_dlp_counts *c) {
  if (!a->dlp || !c->total) return;
  for (size_t i = 0; i < c->rules && i < aip_dlp_rule_count(a->dlp); i++)
    a->dlp_redactions[i] += c->n[i];
}

void aip_agent_free(aip_agent_rt *a) {
  aip_dlp_scratch_free(a->dlp_scratch);
  aip_agent_policy_free(a);
  free(a->dlp_redactions);
  tools_clear(a);
  aip_map_free(&a->tool_map);
  aip_map_free(&a->tool_keys);
  free(a->waiters);
  free(a->ups);
  free(a->server_failed);
  for (size_t s = 0; a->last_lists && s < a->cfg->servers_n; s++) cJSON_Delete(a->last_lists[s]);
  free(a->last_lists);
  aip_rate_state_free(a->rate);
}
