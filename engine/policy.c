/* policy.c -- compiling an AgentPolicy (config/) into lookup tables and evaluating method and
 * tool checks against it (reference/aip.md sections 2.2, 2.3, 3.2-3.5).
 *
 * Compiled form: every tool and method name is normalized once into hash maps (engine/map.h),
 * so a check costs one normalization plus O(1) probes. Each tool rule with `allow_args` owns
 * one Hyperscan database holding all its patterns (pattern id = argument index); one scratch
 * region, owned by the policy and sized for every database, serves all scans.
 *
 * Threads: because of that shared scratch, aip_policy_check_tool() must not run concurrently
 * on the same policy object. The gateway calls the engine only from its loop thread; another
 * thread would need its own compiled policy (or hs_clone_scratch).
 *
 * Not enforced yet: rate limits (step 0) and protected paths (step 0.5). The doc keeps them
 * parsed; the follow-up engine issue (rate limiting, protected paths, conformance runner)
 * adds them in aip_policy_check_tool where the TODO is.
 *
 * Deviations from the Go reference, on purpose:
 *   - the default method list adds `notifications/cancelled` and
 *     `notifications/roots/list_changed` (the reference lists a non-MCP `cancelled` instead,
 *     which we keep for compatibility);
 *   - an `allowed_methods` list that was written replaces the defaults even when empty (Go
 *     ignores an empty list);
 *   - strict_args also applies to allow rules without allow_args (Go only checks it on ask
 *     rules and on rules with allow_args, so strict_args: true alone did nothing);
 *   - arguments are checked in policy order and undeclared ones in message order (Go iterates
 *     maps randomly), so `failed_arg` is deterministic;
 *   - regexes run on Hyperscan instead of RE2; `$` is rewritten to `\z` so it keeps RE2's
 *     meaning (end of text, not also before a final newline).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "engine/map.h"

#define NAME_STACK 256   /* names up to this size normalize without malloc */
#define REGEX_MAX_LEN 1000 /* ValidateRegexComplexity's limit */
#define MONITOR_SUFFIX " (monitor mode: allowed for dry run)"

/* ---- the compiled policy ------------------------------------------------------------------- */

typedef struct rule_c {
  const aip_tool_rule *src;
  int strict;         /* strict_args resolved against strict_args_default */
  hs_database_t *db;  /* allow_args, pattern id = index into src->allow_args; NULL if none */
} rule_c;

/* The maps borrow their keys from `names`; set members map to their own key (any non-NULL
 * value would do), rule_index maps a tool to its rule. */
struct aip_policy {
  const aip_policy_doc *doc; /* borrowed: must outlive the policy */
  int monitor;
  aip_map allowed_tools; /* allowed_tools plus every tool that has a rule */
  aip_map denied_tools;
  aip_map rule_index; /* tool -> rule_c * (the last rule for that tool) */
  aip_map allowed_methods;
  aip_map denied_methods;
  int methods_wildcard;
  rule_c *rules;
  size_t rules_n;
  char **names; /* normalized names, owned */
  size_t names_n;
  size_t names_cap;
  hs_scratch_t *scratch;
};

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

/* "file:line:col: message" (or "file: message" without a position), per config.h. */
__attribute__((format(printf, 4, 5))) static int fail_at(aip_error *err,
                                                         const aip_policy_doc *doc,
                                                         aip_src_pos pos, const char *fmt,
                                                         ...) {
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
  char stack[NAME_STACK], *norm, *key;
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
      return fail_at(err, p->doc, pos, "%s entry is not valid UTF-8", field);
  }
  return 0;
}

/* ---- regexes ------------------------------------------------------------------------------- */

/* The reference's ValidateRegexComplexity, byte for byte: length <= 1000 and neither
 * `\)[+*?]\s*[+*?]` nor `\([^)]*[+*]\)[+*]` anywhere in the text (so it also rejects harmless
 * patterns such as `(ab)*?c`; policies accepted by the reference must stay accepted, and
 * policies rejected by it stay rejected). Hyperscan has no backtracking, so this is about
 * compatibility, not safety. */
static const char *redos_check(const char *re) {
  size_t n = strlen(re);

  if (n > REGEX_MAX_LEN)
    return "regex pattern exceeds maximum length";
  for (size_t i = 0; i < n; i++) {
    if (re[i] == ')' && re[i + 1] && strchr("+*?", re[i + 1])) {
      size_t j = i + 2;
      while (re[j] && strchr(" \t\n\f\r", re[j]))
        j++;
      if (re[j] && strchr("+*?", re[j]))
        return "regex contains potentially dangerous nested quantifiers";
    }
    if (re[i] == '(') {
      const char *close = strchr(re + i + 1, ')');
      if (close && close - re >= (ptrdiff_t)i + 2 && strchr("+*", close[-1]) && close[1] &&
          strchr("+*", close[1]))
        return "regex contains potentially dangerous nested quantifiers";
    }
  }
  return NULL;
}

/* Whether an inline flag group such as (?m) or (?im:...) turns multi-line mode on. Only RE2's
 * flag letters count, so (?P<name>...) is not mistaken for one; flags after '-' turn off. */
static int sets_multiline(const char *re) {
  for (const char *p = strstr(re, "(?"); p; p = strstr(p + 2, "(?"))
    for (const char *f = p + 2; *f && strchr("imsU", *f); f++)
      if (*f == 'm')
        return 1;
  return 0;
}

/* RE2's `$` outside multi-line mode matches only at the end of the text; PCRE's (Hyperscan's)
 * also matches before a final "\n", so "^[a-z]+$" would accept "abc\n". Every `$` that is an
 * anchor (not escaped, not inside a class or \Q...\E) becomes `\z`. */
static char *translate_re2(const char *re) {
  size_t n = strlen(re), o = 0;
  int in_class = 0, in_quote = 0, ml = sets_multiline(re);
  char *out = malloc(n * 2 + 1);

  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    char c = re[i];
    if (in_quote) {
      if (c == '\\' && re[i + 1] == 'E')
        in_quote = 0;
    } else if (c == '\\' && re[i + 1]) {
      in_quote = re[i + 1] == 'Q';
      out[o++] = c;
      c = re[++i];
    } else if (in_class) {
      if (c == '[' && re[i + 1] == ':') { /* [:alpha:] inside a class */
        const char *end = strstr(re + i + 2, ":]");
        if (end) {
          size_t k = (size_t)(end + 2 - (re + i));
          memcpy(out + o, re + i, k);
          o += k;
          i += k - 1;
          continue;
        }
      } else if (c == ']') {
        in_class = 0;
      }
    } else if (c == '[') {
      in_class = 1;
      out[o++] = c;
      if (re[i + 1] == '^')
        out[o++] = re[++i];
      if (re[i + 1] == ']') /* a leading ] is a literal */
        out[o++] = re[++i];
      continue;
    } else if (c == '$' && !ml) {
      out[o++] = '\\';
      c = 'z';
    }
    out[o++] = c;
  }
  out[o] = '\0';
  return out;
}

static int compile_rule_db(const aip_policy_doc *doc, const aip_tool_rule *r,
                           hs_database_t **db, aip_error *err) {
  size_t n = r->allow_args_n;
  char **exprs = calloc(n, sizeof(*exprs));
  unsigned *flags = calloc(n, sizeof(*flags)), *ids = calloc(n, sizeof(*ids));
  hs_compile_error_t *cerr = NULL;
  int rc = 0;

  *db = NULL;
  if (!exprs || !flags || !ids) {
    rc = aip_error_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    const aip_arg_rule *a = &r->allow_args[i];
    const char *why = redos_check(a->regex);
    if (why) {
      rc = fail_at(err, doc, a->pos,
                   "potentially dangerous regex for tool \"%s\" arg \"%s\": %s: %s", r->tool,
                   a->name, why, a->regex);
      goto out;
    }
    if (!(exprs[i] = translate_re2(a->regex))) {
      rc = aip_error_set(err, -ENOMEM, "out of memory");
      goto out;
    }
    /* `.` keeps excluding "\n" (no DOTALL), as in RE2. */
    flags[i] = HS_FLAG_UTF8 | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
    ids[i] = (unsigned)i;
  }
  if (hs_compile_multi((const char *const *)exprs, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL,
                       db, &cerr) != HS_SUCCESS) {
    int e = cerr && cerr->expression >= 0 ? cerr->expression : 0;
    rc = fail_at(err, doc, r->allow_args[e].pos,
                 "invalid regex for tool \"%s\" arg \"%s\": \"%s\": %s", r->tool,
                 r->allow_args[e].name, r->allow_args[e].regex,
                 cerr ? cerr->message : "compile failed");
    hs_free_compile_error(cerr);
    *db = NULL;
  }
out:
  for (size_t i = 0; exprs && i < n; i++)
    free(exprs[i]);
  free(exprs);
  free(flags);
  free(ids);
  return rc;
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
    rule_c *c = &p->rules[i];

    c->src = r;
    c->strict = r->strict_args < 0 ? doc->strict_args_default != 0 : r->strict_args != 0;
    p->rules_n = i + 1;
    if (r->allow_args_n) {
      if ((rc = compile_rule_db(doc, r, &c->db, err)))
        return rc;
      if (hs_alloc_scratch(c->db, &p->scratch) != HS_SUCCESS)
        return aip_error_set(err, -ENOMEM, "out of memory (Hyperscan scratch)");
    }
    rc = add_name(p, &p->rule_index, r->tool, c); /* the last rule for a tool wins */
    if (!rc)
      rc = add_name(p, &p->allowed_tools, r->tool, NULL);
    if (rc == -ENOMEM)
      return aip_error_set(err, rc, "out of memory");
    if (rc)
      return fail_at(err, doc, r->pos, "tool_rules tool is not valid UTF-8");
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
 * never run weaker than written. Each feature's issue removes its line here. */
static int reject_unenforced(const aip_policy_doc *doc, aip_error *err) {
  static const char why[] = "is not enforced by this build yet; refusing the policy rather than "
                            "running it weaker than written";
  if (doc->protected_paths.n)
    return aip_error_set(err, -ENOTSUP, "%s:%d:%d: protected_paths %s", doc->path,
                         doc->protected_paths.pos[0].line, doc->protected_paths.pos[0].col, why);
  for (size_t i = 0; i < doc->rules_n; i++)
    if (doc->rules[i].rate_count)
      return aip_error_set(err, -ENOTSUP, "%s:%d:%d: rate_limit %s", doc->path,
                           doc->rules[i].pos.line, doc->rules[i].pos.col, why);
  if (doc->dlp.present && doc->dlp.enabled && doc->dlp.patterns_n)
    return aip_error_set(err, -ENOTSUP, "%s:%d:%d: dlp %s", doc->path, doc->dlp.patterns[0].pos.line,
                         doc->dlp.patterns[0].pos.col, why);
  return 0;
}

int aip_policy_compile(const aip_policy_doc *doc, aip_policy **out, aip_error *err) {
  aip_policy *p;
  int rc;

  *out = NULL;
  if (!doc)
    return aip_error_set(err, -EINVAL, "no policy document");
  rc = reject_unenforced(doc, err);
  if (rc)
    return rc;
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
  if (rc) {
    aip_policy_free(p);
    return rc;
  }
  *out = p;
  return 0;
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
    hs_free_database(p->rules[i].db);
  free(p->rules);
  for (size_t i = 0; i < p->names_n; i++)
    free(p->names[i]);
  free(p->names);
  hs_free_scratch(p->scratch);
  free(p);
}

const aip_policy_doc *aip_policy_doc_of(const aip_policy *p) {
  return p ? p->doc : NULL;
}

/* ---- decisions ----------------------------------------------------------------------------- */

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
  snprintf(d->reason, sizeof(d->reason), "%s", reason);
}

static void block_tool(aip_decision *d, const char *reason) {
  decide(d, AIP_DECISION_BLOCK, 1, reason);
  d->error_code = AIP_ERR_FORBIDDEN;
  d->error_message = "Forbidden";
}

static void block_method(aip_decision *d, const char *reason) {
  decide(d, AIP_DECISION_BLOCK, 1, reason);
  d->error_code = AIP_ERR_METHOD_NOT_ALLOWED;
  d->error_message = "Method not allowed";
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

static int is_default_method(const char *m) {
  for (size_t i = 0; i < DEFAULT_METHODS_N; i++)
    if (strcmp(m, default_methods[i]) == 0)
      return 1;
  return 0;
}

/* The reference applies the method list in monitor mode too; so do we. */
void aip_policy_check_method(const aip_policy *p, const char *method, size_t len,
                             aip_decision *out) {
  char stack[NAME_STACK], quoted[120], reason[160];
  char *m;
  size_t mlen;

  if (aip_normalize_tmp(method ? method : "", method ? len : 0, stack, sizeof(stack), &m,
                        &mlen)) {
    block_method(out, "method name is not valid UTF-8");
    return;
  }
  if (!p) {
    if (is_default_method(m))
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

/* ---- argument checks (sections 3.3 steps 5-6, 3.4, 3.5) ----------------------------------- */

typedef struct match_ctx {
  unsigned want;
  int hit;
} match_ctx;

static int on_match(unsigned id, unsigned long long from, unsigned long long to,
                    unsigned flags, void *ctx) {
  match_ctx *m = ctx;
  if (id != m->want)
    return 0;
  m->hit = 1;
  return 1; /* stop scanning */
}

/* Stringifies `v` as the reference's argToString and searches it with pattern `idx`. Scan
 * errors and strings Hyperscan cannot take (not UTF-8, > 4 GiB) count as no match. */
static int arg_matches(const aip_policy *p, const rule_c *r, size_t idx, const cJSON *v) {
  match_ctx ctx = {(unsigned)idx, 0};
  const char *s = "";
  size_t n = 0;
  aip_buf tmp;
  hs_error_t rc;

  aip_buf_init(&tmp);
  if (cJSON_IsString(v)) {
    s = v->valuestring;
    n = strlen(s);
  } else if (cJSON_IsNumber(v) || cJSON_IsBool(v) || cJSON_IsArray(v) || cJSON_IsObject(v)) {
    int err = cJSON_IsNumber(v) ? aip_json_format_float_f(&tmp, v->valuedouble)
              : cJSON_IsBool(v) ? aip_buf_puts(&tmp, cJSON_IsTrue(v) ? "true" : "false")
                                : aip_json_print_go(&tmp, v);
    if (err) {
      aip_buf_free(&tmp);
      return 0;
    }
    s = tmp.data;
    n = tmp.len;
  } /* null -> "" */
  if (n > UINT32_MAX || !aip_utf8_valid(s, n)) {
    aip_buf_free(&tmp);
    return 0;
  }
  rc = hs_scan(r->db, s, (unsigned)n, 0, p->scratch, on_match, &ctx);
  aip_buf_free(&tmp);
  return rc == HS_SCAN_TERMINATED && ctx.hit;
}

/* Steps 5 and 6 for `r`. Returns 1 after recording a violation in `out`, 0 when the arguments
 * pass. `args` that is not an object counts as no arguments (the reference's nil map). */
static int check_args(const aip_policy *p, const rule_c *r, const cJSON *args,
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
    if (!arg_matches(p, r, i, v)) {
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

static void evaluate_tool(const aip_policy *p, const char *t, size_t tlen, const cJSON *args,
                          aip_decision *out) {
  const rule_c *r = aip_map_get(&p->rule_index, t, tlen);

  /* TODO(engine follow-up issue: rate limiting, protected paths): step 0, the rate limit
   * (RATE_LIMITED even in monitor mode), and step 0.5, protected paths in any string
   * argument (PROTECTED_PATH even in monitor mode), go here. */
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

void aip_policy_check_tool(const aip_policy *p, const char *tool, size_t len, const cJSON *args,
                           int64_t now_ms, aip_decision *out) {
  char stack[NAME_STACK];
  char *t;
  size_t tlen;
  int rc;

  if (!p) {
    block_tool(out, "no policy loaded"); /* fail closed */
    return;
  }
  rc = aip_normalize_tmp(tool ? tool : "", tool ? len : 0, stack, sizeof(stack), &t, &tlen);
  if (rc) {
    block_tool(out, rc == -ENOMEM ? "out of memory" : "tool name is not valid UTF-8");
    return;
  }
  evaluate_tool(p, t, tlen, args, out);
  if (t != stack)
    free(t);
}

int aip_policy_tool_visible(const aip_policy *p, const char *tool, size_t len) {
  char stack[NAME_STACK];
  const rule_c *r;
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
