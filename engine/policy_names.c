/* policy_names.c -- the tool check for a tool that has several names (the gateway's tool_prefix).
 *
 * A tool of one of an agent's servers can be named three ways: the name the agent sees
 * (exposed), the server's own name for it (real) and "<server>__<real>" (qualified); the exposed
 * name is always one of the other two. The rule, documented in docs/policy-semantics.md
 * ("Names"):
 *
 *   - a restricting entry (denied_tools, action block or ask, allow_args, strict_args,
 *     rate_limit) written for any of the names holds, whatever name the call used: every name
 *     an entry exists for is checked and the most restrictive outcome wins;
 *   - authorization (allowed_tools, or a tool rule, which implies it) comes only from the exposed
 *     or the qualified name, which each designate exactly this tool. The real name alone does not
 *     authorize a prefixed tool: `allowed_tools: [exec]` must not open alpha__exec and
 *     beta__exec at once.
 *
 * Each checked name spends from its own rate bucket, keyed by the rule's (normalized) name, so a
 * rule for `exec` is one bucket whichever name reaches a tool called exec.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/policy_internal.h"

enum { EXPOSED, REAL, QUALIFIED, NAMES };

typedef struct name_info {
  const char *raw; /* NULL: absent, or the same string as an earlier name */
  int listed;      /* in allowed_tools (which includes every ruled tool) */
  int denied;
  int blocked; /* its rule says action: block */
} name_info;

/* 0, or -1 when the name cannot be normalized (the check refuses it). */
static int classify(const aip_policy *p, const char *raw, name_info *ni) {
  char stack[AIP_NAME_STACK], *t;
  size_t tlen;
  memset(ni, 0, sizeof(*ni));
  ni->raw = raw;
  if (aip_normalize_tmp(raw, strlen(raw), stack, sizeof(stack), &t, &tlen))
    return -1;
  const aip_rule_c *r = aip_map_get(&p->rule_index, t, tlen);
  ni->listed = aip_map_get(&p->allowed_tools, t, tlen) != NULL;
  ni->denied = aip_map_get(&p->denied_tools, t, tlen) != NULL;
  ni->blocked = r && r->src->action == AIP_ACTION_BLOCK;
  if (t != stack)
    free(t);
  return 0;
}

/* Fills info[] for the distinct names; returns whether some authorizing name is listed, or -1
 * when a name is not valid UTF-8. */
static int classify_all(const aip_policy *p, const aip_tool_names *n, name_info info[NAMES]) {
  const char *raw[NAMES] = {n->exposed, n->real, n->qualified};
  int authorized = 0;
  for (int i = 0; i < NAMES; i++) {
    memset(&info[i], 0, sizeof(info[i]));
    int dup = !raw[i];
    for (int j = 0; j < i && !dup; j++)
      dup = raw[j] && strcmp(raw[j], raw[i]) == 0;
    if (dup)
      continue;
    if (classify(p, raw[i], &info[i]))
      return -1;
    if (i != REAL && info[i].listed)
      authorized = 1;
  }
  return authorized;
}

/* refused > ask > allowed with a violation (monitor mode) > allowed */
static int rank(const aip_decision *d) {
  return d->error_code ? 3 : d->kind == AIP_DECISION_ASK ? 2 : d->violation ? 1 : 0;
}

void aip_policy_check_tool_names(const aip_policy *p, const aip_tool_names *n, const cJSON *args,
                                 int64_t now_ms, aip_rate_state *rs, aip_decision *out) {
  name_info info[NAMES];
  int authorized = p ? classify_all(p, n, info) : -1;
  if (authorized < 0) { /* no policy, or a name that is not UTF-8: the plain check refuses it */
    aip_policy_check_tool(p, n->exposed, strlen(n->exposed), args, now_ms, rs, out);
    return;
  }
  int have = 0;
  for (int i = 0; i < NAMES; i++) {
    const name_info *ni = &info[i];
    if (!ni->raw)
      continue;
    /* A name no entry mentions has nothing to add, except the exposed one's "not in
     * allowed_tools" when no other name authorizes the tool. (Protected paths depend on the
     * arguments only, so any checked name finds them.) */
    if (!ni->listed && !ni->denied && (i != EXPOSED || authorized))
      continue;
    aip_decision d;
    aip_policy_check_tool(p, ni->raw, strlen(ni->raw), args, now_ms, rs, &d);
    if (!have || rank(&d) > rank(out))
      *out = d;
    have = 1;
  }
  if (!have) /* cannot happen (an authorizing name is listed, so checked); fail as the plain check */
    aip_policy_check_tool(p, n->exposed, strlen(n->exposed), args, now_ms, rs, out);
}

int aip_policy_tool_visible_names(const aip_policy *p, const aip_tool_names *n) {
  name_info info[NAMES];
  if (!p)
    return 0;
  if (p->monitor)
    return 1;
  int authorized = classify_all(p, n, info);
  if (authorized <= 0)
    return 0;
  for (int i = 0; i < NAMES; i++)
    if (info[i].raw && (info[i].denied || info[i].blocked))
      return 0;
  return 1;
}
