/* core/lists.h -- an agent's merged lists: tools, prompts, resources and resource templates.
 *
 * One merger for every list kind: fan out `<kind>/list` to every server of the agent that
 * declared the capability (following every nextCursor), name each item under the naming rule
 * (docs/routing.md: unchanged where unambiguous, "<server>__<name>" for tools and prompts and
 * "aip://<server>/<uri>" for resources where not, by the agent's tool_prefix switch), hide names
 * that could mean two items, and keep the result until a server says list_changed or restarts.
 * A server that fails to answer is left out of the list (its last good items stay routable but
 * are not listed) and the list is not cached, so the next request tries again. Requests that
 * need a list while it is fetched wait; one fetch serves them all. The naming part
 * (aip_list_merge) is pure and unit-tested on its own.
 */
#ifndef AIP_CORE_LISTS_H
#define AIP_CORE_LISTS_H

#include <stddef.h>
#include <cJSON.h>
#include "config/config.h"
#include "engine/map.h"

typedef struct aip_agent_rt aip_agent_rt;
typedef struct aip_pending aip_pending;
typedef struct aip_policy aip_policy;

typedef enum aip_list_id {
  AIP_LIST_TOOLS = 0,
  AIP_LIST_PROMPTS,
  AIP_LIST_RESOURCES,
  AIP_LIST_TEMPLATES,
  AIP_LIST_N
} aip_list_id;

/* What differs between the kinds. */
typedef struct aip_list_kind {
  const char *method;   /* "prompts/list" */
  const char *key;      /* the result's array: "prompts" */
  const char *name_key; /* the member that names an item: "name", "uri", "uriTemplate" */
  const char *cap;      /* the server capability that offers it: "prompts"; NULL: ask every
                           server (tools: a server that lists tools without declaring them
                           still had them routed before capabilities were looked at) */
  int uri;              /* 1: names are URIs (aip://<server>/<uri>, compared exactly) */
  const char *noun;     /* for logs: "tool" */
} aip_list_kind;

extern const aip_list_kind aip_list_kinds[AIP_LIST_N];

typedef struct aip_list_entry {
  char *exposed;   /* the name or URI the agent sees */
  char *real;      /* the server's own */
  char *qualified; /* "<server>__<real>" or "aip://<server>/<real>" */
  char *keys[2];   /* exposed and qualified as compared (names normalized, URIs as they are) */
  size_t server;
  int hidden;      /* one of its names could also mean another item: not listed, not routed */
  int visible;     /* listed (the policy does not refuse it) */
} aip_list_entry;

typedef struct aip_list {
  aip_list_id id;
  aip_list_entry *v;
  size_t n;
  aip_map map;  /* exposed -> entry (hidden ones left out) */
  aip_map keys; /* keys[] of every entry -> entry ("ambiguous" vs "unknown") */
  cJSON *json;  /* visible items as exposed */
  cJSON **last; /* per server: its last good items */
  char *failed; /* per server: the last fetch failed */
  int valid, fetching, stale;
  aip_pending **waiters;
  size_t waiters_n, waiters_cap;
  void *fetch; /* the fan-out in progress */
  size_t servers_n;
  size_t hidden_n; /* items the last merge hid as ambiguous */
} aip_list;

/* What naming needs to know of the agent. */
typedef struct aip_list_names {
  const char *const *servers; /* the agent's server names, in its order */
  size_t servers_n;
  aip_tool_prefix prefix;
  /* tools the policy could never allow and resources whose URI reaches a protected path are
   * not listed (NULL: all are) */
  const aip_policy *policy;
  const char *agent; /* for logs */
  const char *stale; /* per server (or NULL): its items are its last good list, kept so they
                        still route (and fail with "unavailable"); routable, not listed */
} aip_list_names;

int aip_list_init(aip_list *l, aip_list_id id, size_t servers_n); /* 0 or -ENOMEM */
void aip_list_free(aip_list *l);
/* Names and merges per-server item arrays (items[s] for server s, borrowed) into l.
 * 0 or -ENOMEM (l is then empty). */
int aip_list_merge(aip_list *l, const aip_list_names *n, cJSON *const *items);
/* "<server>__<real>" or "aip://<server>/<real>" (malloc'd). */
char *aip_list_qualify(aip_list_id id, const char *server, const char *real);
/* The server index whose qualified prefix `name` carries, with *rest the real part; -1 when none
 * (or when prefixes are off: tool_prefix never). */
int aip_list_unqualify(aip_list_id id, const aip_list_names *n, const char *name,
                       const char **rest);
const aip_list_entry *aip_list_find(const aip_list *l, const char *exposed);
/* Whether `name` names an item hidden because it could mean another one. */
int aip_list_ambiguous(const aip_list *l, const char *name);
/* The entry of server `server` whose real name is `real`, or NULL. */
const aip_list_entry *aip_list_find_real(const aip_list *l, size_t server, const char *real);

/* RFC 6570 matching, for routing resources/read: whether `uri` is an expansion of `tmpl`
 * (simple, reserved "+", "#", "/", ".", ";", "?" and "&" expressions; a variable matches any
 * run of characters that its operator allows; literal text must match exactly). */
int aip_uri_template_match(const char *tmpl, const char *uri);

/* ---- an agent's lists (the fetch; lists.c) ---- */

/* The agent's naming inputs (server names live in the gateway config); 0 or -ENOMEM. Free the
 * server array with aip_list_names_free. */
int aip_agent_list_names(aip_agent_rt *a, aip_list_names *out);
void aip_list_names_free(aip_list_names *n);
/* Runs p->on_tools(p) once list `id` of the agent is fresh (maybe at once). */
void aip_lists_with(aip_agent_rt *a, aip_list_id id, aip_pending *p);
void aip_lists_cancel_wait(aip_agent_rt *a, aip_pending *p);
/* A server said list_changed, restarted, or the policy changed: fetch again next time. */
void aip_lists_changed(aip_agent_rt *a, aip_list_id id);
void aip_lists_all_changed(aip_agent_rt *a);
/* Whether server `s` of the agent offers capability `cap` (and, when `sub` is not NULL, that
 * member of it set true). Unknown before its first handshake: 0. */
int aip_server_offers(aip_agent_rt *a, size_t s, const char *cap, const char *sub);

#endif
