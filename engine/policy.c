/* policy.c -- compiling an AgentPolicy (config/) into lookup tables (reference/aip.md sections
 * 2.2, 2.3). Evaluation is in policy_eval.c, allow_args regexes in regex.c, protected paths in
 * protected_paths.c, rate-limit arithmetic in ratelimit.c, the decision cache in
 * decision_cache.c.
 *
 * Compiled form: every tool and method name is normalized once into hash maps (engine/map.h),
 * so a check costs one normalization plus O(1) probes. Each allow_args pattern owns one
 * Hyperscan database; one scratch region, owned by the policy and sized for every database,
 * serves all scans.
 *
 * Threads: because of that shared scratch and the decision cache, checks must not run
 * concurrently on the same policy object. The gateway calls the engine only from its loop
 * thread; another thread would need its own compiled policy.
 *
 * Deviations from the Go reference, on purpose (all listed in docs/policy-semantics.md):
 *   - the default method list adds `notifications/cancelled` and
 *     `notifications/roots/list_changed` (the reference lists a non-MCP `cancelled` instead,
 *     which we keep for compatibility);
 *   - strict_args also applies to allow rules without allow_args (Go only checks it on ask
 *     rules and on rules with allow_args, so strict_args: true alone did nothing);
 *   - arguments are checked in policy order and undeclared ones in message order (Go iterates
 *     maps randomly), so `failed_arg` is deterministic;
 *   - regexes run on Hyperscan instead of RE2 (regex.c says how the semantics are kept);
 *   - protected paths also catch words inside strings and object member names
 *     (protected_paths.c);
 *   - rate-limit buckets belong to the caller (one per agent in the gateway), not the process.
 * DLP rules are compiled and applied by the DLP module (dlp.h), not here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/policy_internal.h"

/* reference/aip.md section 2.2, plus the two MCP notifications the reference forgot. */
static const char *const default_methods[] = {
    "initialize",
    "initialized",
    "ping",
    "tools/call",
    "tools/list",
    "completion/complete",
    "notifications/initialized",
    "notifications/progress",
    "notifications/message",
    "notifications/resources/updated",
    "notifications/resources/list_changed",
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "cancelled",
    "notifications/cancelled",
    "notifications/roots/list_changed",
};
#define DEFAULT_METHODS_N (sizeof(default_methods) / sizeof(default_methods[0]))

int aip_policy_is_default_method(const char *m) {
  for (size_t i = 0; i < DEFAULT_METHODS_N; i++)
    if (strcmp(m, default_methods[i]) == 0)
      return 1;
  return 0;
}

int aip_policy_fail_at(aip_error *err, const aip_policy_doc *doc, aip_src_pos pos,
                       const char *fmt, ...) {
  char msg[AIP_ERROR_MAX];
  const char *path = doc->path ? doc->path : "<policy>";
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (!err)
    return -EINVAL;
  if (pos.line > 0)
    return aip_error_set(err, -EINVAL, "%s:%d:%d: %s", path, pos.line, pos.col, msg);
  return aip_error_set(err, -EINVAL, "%s: %s", path, msg);
}

/* Keeps a copy of a normalized name for the maps to borrow. */
static char *intern(aip_policy *p, const char *s, size_t len) {
  char *copy;
  if (p->names_n == p->names_cap) {
    size_t cap = p->names_cap ? p->names_cap * 2 : 16;
    char **v = realloc(p->names, cap * sizeof(*v));
    if (!v)
      return NULL;
    p->names = v;
    p->names_cap = cap;
  }
  copy = malloc(len + 1);
  if (!copy)
    return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  p->names[p->names_n++] = copy;
  return copy;
}

/* Normalizes `name` and maps it to `val` in `m` (NULL `val`: the key itself, for sets).
 * Returns 0, -EILSEQ or -ENOMEM. */
static int add_name(aip_policy *p, aip_map *m, const char *name, void *val) {
  char stack[AIP_NAME_STACK], *norm, *key;
  size_t len;
  int err = aip_normalize_tmp(name, strlen(name), stack, sizeof(stack), &norm, &len);
  if (err)
    return err;
  key = intern(p, norm, len);
  err = key ? aip_map_put(m, key, len, val ? val : key) : -ENOMEM;
  if (norm != stack)
    free(norm);
  return err;
}

static int add_list(aip_policy *p, aip_map *m, const aip_strlist *l, const char *field,
                    aip_error *err) {
  for (size_t i = 0; i < l->n; i++) {
    aip_src_pos pos = l->pos ? l->pos[i] : (aip_src_pos){0, 0};
    int rc = add_name(p, m, l->items[i], NULL);
    if (rc == -ENOMEM)
      return aip_error_set(err, rc, "out of memory");
    if (rc)
      return aip_policy_fail_at(err, p->doc, pos, "%s entry is not valid UTF-8", field);
  }
  return 0;
}

/* ---- compile ------------------------------------------------------------------------------- */

static int compile_rules(aip_policy *p, aip_error *err) {
  const aip_policy_doc *doc = p->doc;
  int rc;

  p->rules = calloc(doc->rules_n ? doc->rules_n : 1, sizeof(*p->rules));
  if (!p->rules)
    return aip_error_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; i < doc->rules_n; i++) {
    const aip_tool_rule *r = &doc->rules[i];
    aip_rule_c *c = &p->rules[i];

    c->src = r;
    c->strict = r->strict_args < 0 ? doc->strict_args_default != 0 : r->strict_args != 0;
    c->cacheable = r->action != AIP_ACTION_ASK && r->rate_count == 0;
    p->rules_n = i + 1;
    if ((rc = aip_re_compile_rule(doc, c, &p->scratch, err)))
      return rc;
    rc = add_name(p, &p->rule_index, r->tool, c); /* the last rule for a tool wins */
    if (!rc)
      rc = add_name(p, &p->allowed_tools, r->tool, NULL);
    if (rc == -ENOMEM)
      return aip_error_set(err, rc, "out of memory");
    if (rc)
      return aip_policy_fail_at(err, doc, r->pos, "tool_rules tool is not valid UTF-8");
  }
  return 0;
}

static int compile_methods(aip_policy *p, aip_error *err) {
  const aip_policy_doc *doc = p->doc;
  int rc;

  if (doc->allowed_methods_set || doc->allowed_methods.n) {
    rc = add_list(p, &p->allowed_methods, &doc->allowed_methods, "allowed_methods", err);
  } else {
    rc = 0;
    for (size_t i = 0; i < DEFAULT_METHODS_N && !rc; i++)
      rc = add_name(p, &p->allowed_methods, default_methods[i], NULL);
    if (rc)
      return aip_error_set(err, -ENOMEM, "out of memory");
  }
  if (!rc)
    rc = add_list(p, &p->denied_methods, &doc->denied_methods, "denied_methods", err);
  p->methods_wildcard = aip_map_get(&p->allowed_methods, "*", 1) != NULL;
  return rc;
}

/* Fail closed: a policy that asks for something this build does not enforce yet is refused,
 * never run weaker than written. */
int aip_policy_compile_ex(const aip_policy_doc *doc, const aip_policy_opts *opts,
                          aip_policy **out, aip_error *err) {
  aip_policy *p;
  int rc;

  *out = NULL;
  if (!doc)
    return aip_error_set(err, -EINVAL, "no policy document");
  p = calloc(1, sizeof(*p));
  if (!p)
    return aip_error_set(err, -ENOMEM, "out of memory");
  p->doc = doc;
  p->monitor = doc->mode == AIP_MODE_MONITOR;
  rc = add_list(p, &p->allowed_tools, &doc->allowed_tools, "allowed_tools", err);
  if (!rc)
    rc = add_list(p, &p->denied_tools, &doc->denied_tools, "denied_tools", err);
  if (!rc)
    rc = compile_rules(p, err);
  if (!rc)
    rc = compile_methods(p, err);
  if (!rc)
    rc = aip_pp_compile(&p->protected_paths, doc, opts, err);
  if (!rc && !(opts && opts->cache_off) &&
      !(p->cache = aip_dcache_new(opts && opts->cache_entries ? opts->cache_entries
                                                              : AIP_DECISION_CACHE_DEFAULT)))
    rc = aip_error_set(err, -ENOMEM, "out of memory");
  if (rc) {
    aip_policy_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int aip_policy_compile(const aip_policy_doc *doc, aip_policy **out, aip_error *err) {
  return aip_policy_compile_ex(doc, NULL, out, err);
}

void aip_policy_free(aip_policy *p) {
  if (!p)
    return;
  aip_map_free(&p->allowed_tools);
  aip_map_free(&p->denied_tools);
  aip_map_free(&p->rule_index);
  aip_map_free(&p->allowed_methods);
  aip_map_free(&p->denied_methods);
  for (size_t i = 0; i < p->rules_n; i++)
    aip_re_free_rule(&p->rules[i]);
  free(p->rules);
  for (size_t i = 0; i < p->names_n; i++)
    free(p->names[i]);
  free(p->names);
  hs_free_scratch(p->scratch);
  aip_pp_free(&p->protected_paths);
  aip_dcache_free(p->cache);
  free(p);
}

const aip_policy_doc *aip_policy_doc_of(const aip_policy *p) {
  return p ? p->doc : NULL;
}

const char *aip_policy_protected_path(const aip_policy *p, size_t i) {
  return p && i < p->protected_paths.n ? p->protected_paths.v[i].path : NULL;
}

void aip_policy_cache_stats(const aip_policy *p, uint64_t *hits, uint64_t *misses) {
  *hits = *misses = 0;
  if (p && p->cache)
    aip_dcache_stats(p->cache, hits, misses);
}
