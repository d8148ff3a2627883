/* policy_eval.c -- method and tool decisions against a compiled policy (reference/aip.md
 * sections 3.2-3.7), and the one message-level entry point every front end shares.
 *
 * Monitor mode, exactly as the reference: a violation (denied tool, tool not allowed, argument
 * failure, strict_args) becomes ALLOW_MONITOR with violation set and the reason suffixed
 * " (monitor mode: allowed for dry run)"; `action: block`, rate limits, protected paths and the
 * method list are enforced in monitor mode too; an ask rule still asks (and an ask rule whose
 * arguments fail becomes ALLOW_MONITOR without asking).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/policy_internal.h"

#define MONITOR_SUFFIX " (monitor mode: allowed for dry run)"

const char *aip_decision_name(aip_decision_kind k) {
  switch (k) {
  case AIP_DECISION_ALLOW: return "ALLOW";
  case AIP_DECISION_ALLOW_MONITOR: return "ALLOW_MONITOR";
  case AIP_DECISION_BLOCK: return "BLOCK";
  case AIP_DECISION_ASK: return "ASK";
  case AIP_DECISION_RATE_LIMITED: return "RATE_LIMITED";
  case AIP_DECISION_PROTECTED_PATH: return "PROTECTED_PATH";
  }
  return "UNKNOWN";
}

static void decide(aip_decision *d, aip_decision_kind k, int violation, const char *reason) {
  memset(d, 0, sizeof(*d));
  d->kind = k;
  d->violation = violation;
  size_t n = strlen(reason);
  if (n >= sizeof(d->reason)) /* long names: the reason is cut, never overflows */
    n = sizeof(d->reason) - 1;
  memcpy(d->reason, reason, n);
  d->reason[n] = '\0';
}

static void refuse(aip_decision *d, aip_decision_kind k, int code, const char *message,
                   const char *reason) {
  decide(d, k, 1, reason);
  d->error_code = code;
  d->error_message = message;
}

static void block_tool(aip_decision *d, const char *reason) {
  refuse(d, AIP_DECISION_BLOCK, AIP_ERR_FORBIDDEN, "Forbidden", reason);
}

static void block_method(aip_decision *d, const char *reason) {
  refuse(d, AIP_DECISION_BLOCK, AIP_ERR_METHOD_NOT_ALLOWED, "Method not allowed", reason);
}

/* Go's makeDecision for a violation: enforce blocks, monitor lets it through marked. */
static void violate(const aip_policy *p, aip_decision *d, const char *reason, const char *arg,
                    const char *pattern) {
  if (p->monitor) {
    decide(d, AIP_DECISION_ALLOW_MONITOR, 1, reason);
    snprintf(d->reason, sizeof(d->reason), "%s" MONITOR_SUFFIX, reason);
  } else {
    block_tool(d, reason);
  }
  if (arg) {
    snprintf(d->failed_arg, sizeof(d->failed_arg), "%s", arg);
    d->failed_pattern = pattern;
    if (!p->monitor)
      d->error_message = "Argument validation failed";
  }
}

/* Go's %q, enough for reason texts: quotes, backslashes and control bytes escaped. */
static void go_quote(char *dst, size_t cap, const char *s, size_t n) {
  size_t o = 0;
  if (cap < 3)
    return;
  dst[o++] = '"';
  for (size_t i = 0; i < n && o + 6 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      o += (size_t)snprintf(dst + o, cap - o, "\\%c", c);
    else if (c == '\n' || c == '\t' || c == '\r')
      o += (size_t)snprintf(dst + o, cap - o, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
    else if (c < 0x20 || c == 0x7F)
      o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
    else
      dst[o++] = (char)c;
  }
  dst[o++] = '"';
  dst[o] = '\0';
}

/* ---- method check (section 3.2) ------------------------------------------------------------ */

/* The reference applies the method list in monitor mode too; so do we. */
void aip_policy_check_method(const aip_policy *p, const char *method, size_t len,
                             aip_decision *out) {
  char stack[AIP_NAME_STACK], quoted[120], reason[160];
  char *m;
  size_t mlen;

  if (aip_normalize_tmp(method ? method : "", method ? len : 0, stack, sizeof(stack), &m,
                        &mlen)) {
    block_method(out, "method name is not valid UTF-8");
    return;
  }
  if (!p) {
    if (aip_policy_is_default_method(m))
      decide(out, AIP_DECISION_ALLOW, 0, "method in default allowlist (no policy loaded)");
    else
      block_method(out, "method not in default allowlist (no policy loaded)");
  } else if (aip_map_get(&p->denied_methods, m, mlen)) {
    block_method(out, "method explicitly denied by denied_methods");
  } else if (p->methods_wildcard) {
    decide(out, AIP_DECISION_ALLOW, 0, "wildcard '*' in allowed_methods permits all methods");
  } else if (aip_map_get(&p->allowed_methods, m, mlen)) {
    decide(out, AIP_DECISION_ALLOW, 0, "method in allowed_methods");
  } else {
    go_quote(quoted, sizeof(quoted), method, len);
    snprintf(reason, sizeof(reason), "method %s not in allowed_methods", quoted);
    block_method(out, reason);
  }
  if (m != stack)
    free(m);
}

int aip_policy_is_tool_call(const char *method, size_t len) {
  char stack[AIP_NAME_STACK], *m;
  size_t mlen;
  int yes;

  if (!method || aip_normalize_tmp(method, len, stack, sizeof(stack), &m, &mlen))
    return 0;
  yes = mlen == 10 && memcmp(m, "tools/call", 10) == 0;
  if (m != stack)
    free(m);
  return yes;
}

/* ---- argument checks (sections 3.3 steps 5-6, 3.4, 3.5) ----------------------------------- */

/* Steps 5 and 6 for `r`. Returns 1 after recording a violation in `out`, 0 when the arguments
 * pass. `args` that is not an object counts as no arguments (the reference's nil map). */
static int check_args(const aip_policy *p, const aip_rule_c *r, const cJSON *args,
                      aip_decision *out) {
  const aip_tool_rule *src = r->src;
  char reason[200], quoted[140];

  if (!cJSON_IsObject(args))
    args = NULL;
  for (size_t i = 0; i < src->allow_args_n; i++) {
    const aip_arg_rule *a = &src->allow_args[i];
    const cJSON *v = args ? cJSON_GetObjectItemCaseSensitive(args, a->name) : NULL;
    if (!v) {
      violate(p, out, "required argument missing", a->name, a->regex);
      return 1;
    }
    if (!aip_re_arg_matches(p, r, i, v)) {
      violate(p, out, "argument failed regex validation", a->name, a->regex);
      return 1;
    }
  }
  if (!r->strict || !args)
    return 0;
  for (const cJSON *c = args->child; c; c = c->next) {
    size_t i;
    for (i = 0; i < src->allow_args_n && strcmp(src->allow_args[i].name, c->string); i++)
      ;
    if (i == src->allow_args_n) {
      go_quote(quoted, sizeof(quoted), c->string, strlen(c->string));
      snprintf(reason, sizeof(reason), "undeclared argument %s rejected (strict_args enabled)",
               quoted);
      violate(p, out, reason, c->string, "");
      return 1;
    }
  }
  return 0;
}

/* ---- tool check (section 3.3) ------------------------------------------------------------- */

int aip_policy_check_paths(const aip_policy *p, const cJSON *value, aip_decision *out) {
  int nomem = 0;
  const char *hit = aip_pp_check(&p->protected_paths, value, &nomem);

  if (!hit && !nomem) return 0;
  /* even in monitor mode, as in Go */
  char quoted[AIP_ERROR_MAX / 2], reason[AIP_ERROR_MAX];
  go_quote(quoted, sizeof(quoted), hit ? hit : "?", hit ? strlen(hit) : 1);
  snprintf(reason, sizeof(reason),
           "access to protected path %s blocked (policy self-modification defense)", quoted);
  refuse(out, AIP_DECISION_PROTECTED_PATH, AIP_ERR_PROTECTED_PATH,
         "Access denied: protected path", nomem ? "out of memory checking protected paths"
                                                : reason);
  out->protected_path = hit;
  return 1;
}

/* Step 0.5 and steps 1-6: everything that depends only on (tool, args). */
static void evaluate_tool(const aip_policy *p, const aip_rule_c *r, const char *t, size_t tlen,
                          const cJSON *args, aip_decision *out) {
  if (aip_policy_check_paths(p, args, out)) return;
  if (aip_map_get(&p->denied_tools, t, tlen)) {
    violate(p, out, "tool in denied_tools list", NULL, NULL);
    return;
  }
  if (r && r->src->action == AIP_ACTION_BLOCK) { /* not softened by monitor mode, as in Go */
    block_tool(out, "tool has action=block in tool_rules");
    return;
  }
  if (r && r->src->action == AIP_ACTION_ASK) {
    if (!check_args(p, r, args, out))
      decide(out, AIP_DECISION_ASK, 0, "tool requires user approval (action=ask)");
    return;
  }
  if (!aip_map_get(&p->allowed_tools, t, tlen)) {
    violate(p, out, "tool not in allowed_tools list", NULL, NULL);
    return;
  }
  if (!r || (!r->src->allow_args_n && !r->strict)) {
    decide(out, AIP_DECISION_ALLOW, 0, "tool allowed, no argument constraints");
    return;
  }
  if (!check_args(p, r, args, out))
    decide(out, AIP_DECISION_ALLOW, 0, "tool and arguments permitted");
}

/* Step 0: the rate limit, before anything else, so a call blocked later for another reason
 * still spends its token (as in Go); RATE_LIMITED even in monitor mode. Returns 1 when the
 * call is limited (decision written). */
static int rate_limited(const aip_rule_c *r, const char *t, size_t tlen, int64_t now_ms,
                        aip_rate_state *rs, aip_decision *out) {
  char quoted[AIP_NAME_STACK + 8], reason[AIP_NAME_STACK + 64];
  int rc;

  if (!rs || !r || !r->src->rate_count)
    return 0;
  rc = aip_rate_take(rs, t, tlen, r->src->rate_count, r->src->rate_period_s, now_ms);
  if (rc == 1)
    return 0;
  go_quote(quoted, sizeof(quoted), t, tlen);
  snprintf(reason, sizeof(reason), "rate limit exceeded for tool %s", quoted);
  refuse(out, AIP_DECISION_RATE_LIMITED, AIP_ERR_RATE_LIMITED, "Rate limit exceeded",
         rc == -ENOMEM ? "out of memory in the rate limiter" : reason);
  out->rate_wait = rc == -EAGAIN;
  return 1;
}

/* The cache pays off only where the outcome depends on the arguments (protected paths,
 * allow_args, strict_args); elsewhere the check is already two hash probes. */
static int worth_caching(const aip_policy *p, const aip_rule_c *r, const cJSON *args) {
  if (!p->cache || !args || (r && !r->cacheable))
    return 0;
  return p->protected_paths.n || (r && (r->src->allow_args_n || r->strict));
}

void aip_policy_check_tool(const aip_policy *p, const char *tool, size_t len, const cJSON *args,
                           int64_t now_ms, aip_rate_state *rs, aip_decision *out) {
  char stack[AIP_NAME_STACK], *t;
  const aip_rule_c *r;
  size_t tlen;
  aip_dcache_key key; /* 1 KiB on the stack, not zeroed: no malloc per check */
  int rc;

  if (!p) {
    block_tool(out, "no policy loaded"); /* fail closed */
    return;
  }
  /* every rule below reads arguments as an object's members: any other type is refused here,
   * whatever the caller checked (an array's members have no names) */
  if (args && !cJSON_IsObject(args)) {
    block_tool(out, "tools/call arguments are not an object");
    return;
  }
  rc = aip_normalize_tmp(tool ? tool : "", tool ? len : 0, stack, sizeof(stack), &t, &tlen);
  if (rc) {
    block_tool(out, rc == -ENOMEM ? "out of memory" : "tool name is not valid UTF-8");
    return;
  }
  r = aip_map_get(&p->rule_index, t, tlen);
  if (rate_limited(r, t, tlen, now_ms, rs, out)) {
    /* decided */
  } else if (worth_caching(p, r, args) && !aip_dcache_key_build(&key, t, tlen, args)) {
    if (!aip_dcache_get(p->cache, &key, out)) {
      evaluate_tool(p, r, t, tlen, args, out);
      aip_dcache_put(p->cache, &key, out);
    }
  } else {
    evaluate_tool(p, r, t, tlen, args, out);
  }
  if (t != stack)
    free(t);
}

int aip_policy_tool_visible(const aip_policy *p, const char *tool, size_t len) {
  char stack[AIP_NAME_STACK];
  const aip_rule_c *r;
  char *t;
  size_t tlen;
  int visible;

  if (!p)
    return 0;
  if (p->monitor)
    return 1;
  if (aip_normalize_tmp(tool ? tool : "", tool ? len : 0, stack, sizeof(stack), &t, &tlen))
    return 0;
  r = aip_map_get(&p->rule_index, t, tlen);
  if (aip_map_get(&p->denied_tools, t, tlen))
    visible = 0;
  else if (r && r->src->action == AIP_ACTION_BLOCK)
    visible = 0;
  else
    visible = aip_map_get(&p->allowed_tools, t, tlen) != NULL; /* includes ask, allow rules */
  if (t != stack)
    free(t);
  return visible;
}

void aip_decision_ask_refused(aip_decision *d, int timed_out) {
  refuse(d, AIP_DECISION_BLOCK, timed_out ? AIP_ERR_APPROVAL_TIMEOUT : AIP_ERR_USER_DENIED,
         timed_out ? "User approval timeout" : "User denied",
         timed_out ? "user did not respond to approval dialog within timeout"
                   : "user denied the tool call");
}

/* ---- whole messages ------------------------------------------------------------------------ */

static void malformed(aip_verdict *v, int code, const char *message, const char *reason) {
  refuse(&v->d, AIP_DECISION_BLOCK, code, message, reason);
}

static void check_call(const aip_policy *p, const aip_rpc_msg *m, int64_t now_ms,
                       aip_rate_state *rs, aip_verdict *v) {
  const cJSON *params = m->params, *name = NULL, *args = NULL;

  /* aip_rpc_classify has already refused duplicate and case-variant name/arguments members,
   * so the exact-case lookups below see what every upstream parser sees. */
  if (cJSON_IsObject(params)) {
    name = cJSON_GetObjectItemCaseSensitive(params, "name");
    args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
  }
  if (!cJSON_IsString(name) || (args && !cJSON_IsObject(args))) {
    malformed(v, AIP_RPC_INVALID_PARAMS,
              "Invalid params: tools/call needs a string name and object arguments",
              "tools/call without a string name or with non-object arguments");
    return;
  }
  /* {"cmd":"ls","CMD":"rm -rf /"}: the rules read "cmd", a case-insensitive decoder (Go's
   * encoding/json into a struct) may take "CMD". Such arguments are ambiguous at any depth
   * (an object argument is checked as a whole), so they are refused always, in monitor mode
   * too, like the other malformed calls. */
  if (args && aip_json_fold_collision(args)) {
    malformed(v, AIP_RPC_INVALID_PARAMS,
              "Invalid params: arguments hold member names equal under case folding",
              "tools/call arguments with member names equal under case folding");
    return;
  }
  v->tool_call = 1;
  v->tool = v->subject = name->valuestring;
  v->args = args;
  aip_policy_check_tool(p, name->valuestring, strlen(name->valuestring), args, now_ms, rs,
                        &v->d);
}

void aip_policy_check_msg(const aip_policy *p, const aip_rpc_msg *m, int64_t now_ms,
                          aip_rate_state *rs, aip_verdict *v) {
  memset(v, 0, sizeof(*v));
  v->subject = "";
  if (m->kind == AIP_RPC_INVALID) {
    malformed(v, AIP_RPC_INVALID_REQUEST, "Invalid Request",
              m->invalid_reason ? m->invalid_reason : "invalid JSON-RPC message");
    v->reply = 1;
    return;
  }
  if (m->kind == AIP_RPC_RESPONSE || m->kind == AIP_RPC_ERROR) {
    /* The client answering a server request: no method to check (the reference blocks these
     * with -32006, which breaks sampling and elicitation). */
    decide(&v->d, AIP_DECISION_ALLOW, 0, "response from the client (no method)");
    return;
  }
  v->subject = m->method;
  aip_policy_check_method(p, m->method, strlen(m->method), &v->d);
  if (!v->d.error_code && aip_policy_is_tool_call(m->method, strlen(m->method)))
    check_call(p, m, now_ms, rs, v);
  v->reply = v->d.error_code != 0 && m->kind == AIP_RPC_REQUEST;
}
