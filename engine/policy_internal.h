/* policy_internal.h -- the compiled policy, shared by policy.c (compile), policy_eval.c
 * (decisions) and regex.c (allow_args). Not part of the engine's API. */
#ifndef AIP_POLICY_INTERNAL_H
#define AIP_POLICY_INTERNAL_H

#include <hs/hs.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "engine/map.h"

#define AIP_NAME_STACK 256 /* names up to this size normalize without malloc */

typedef struct aip_rule_c {
  const aip_tool_rule *src;
  int strict;           /* strict_args resolved against strict_args_default */
  hs_database_t **dbs;  /* one per src->allow_args[i]; NULL when the rule has none */
  int cacheable;        /* outcome depends only on (tool, args): not ask, not rate-limited */
} aip_rule_c;

/* The maps borrow their keys from `names`; set members map to their own key (any non-NULL
 * value would do), rule_index maps a tool to its rule. */
struct aip_policy {
  const aip_policy_doc *doc; /* borrowed: must outlive the policy */
  int monitor;
  aip_map allowed_tools; /* allowed_tools plus every tool that has a rule */
  aip_map denied_tools;
  aip_map rule_index; /* tool -> aip_rule_c * (the last rule for that tool) */
  aip_map allowed_methods;
  aip_map denied_methods;
  int methods_wildcard;
  aip_rule_c *rules;
  size_t rules_n;
  char **names; /* normalized names, owned */
  size_t names_n;
  size_t names_cap;
  hs_scratch_t *scratch;
  aip_pp_set protected_paths;
  aip_dcache *cache; /* NULL when disabled; mutable through the const policy (one thread) */
};

/* regex.c */
int aip_re_compile_rule(const aip_policy_doc *doc, aip_rule_c *r, hs_scratch_t **scratch,
                        aip_error *err);
void aip_re_free_rule(aip_rule_c *r);
/* Stringifies `v` as the reference's argToString and searches it with allow_args[idx]. */
int aip_re_arg_matches(const aip_policy *p, const aip_rule_c *r, size_t idx, const cJSON *v);

/* policy.c */
/* "file:line:col: message" (or "file: message" without a position), per config.h. */
int aip_policy_fail_at(aip_error *err, const aip_policy_doc *doc, aip_src_pos pos,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int aip_policy_is_default_method(const char *m);

#endif
