/* policy_config.c -- the AgentPolicy configurator: YAML (aip.io/v1alpha1 and v1alpha2) into an
 * aip_policy_doc. Field meanings and defaults follow reference/aip.md section 2; the load-time
 * messages for mode, action and rate_limit are the Go reference's texts (section 2.9), behind
 * our "file:line:col: " prefix.
 *
 * Deliberate deviations from the Go reference (documented in the project docs):
 *   - unknown keys are errors everywhere: a typo such as `denied_tool:` must never silently
 *     weaken a policy;
 *   - apiVersion must be aip.io/v1alpha1 or aip.io/v1alpha2 (the spec says MUST reject);
 *   - booleans are `true`/`false` only, and YAML anchors/aliases are refused (yaml_doc.c);
 *   - rate_limit also accepts the period `day`/`d` (extension);
 *   - tool_rules[].schema_hash (v1alpha2, tool schema pinning) is refused rather than ignored,
 *     since ignoring it would silently drop a protection the author asked for.
 * Regexes are not compiled here: the engine owns the regex engine and its errors. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/yaml_doc.h"

#define WHAT_MAX 112 /* a field path for messages, e.g. "spec.tool_rules[12].allow_args" */
#define PARENT_MAX 80 /* the parent part, kept shorter so that parent + "." + key fits */

/* ---- small helpers ------------------------------------------------------------------------- */

/* Go's strings.TrimSpace + strings.ToLower, for the ASCII values that matter here. */
static void trim_lower(const char *in, char *out, size_t cap) {
  while (isspace((unsigned char)*in)) in++;
  size_t n = strlen(in);
  while (n > 0 && isspace((unsigned char)in[n - 1])) n--;
  if (n >= cap) n = cap - 1;
  for (size_t i = 0; i < n; i++) out[i] = (char)tolower((unsigned char)in[i]);
  out[n] = '\0';
}

static int set_str(char **dst, const char *s, aip_error *err) {
  char *c = strdup(s);
  if (!c) return aip_error_set(err, -ENOMEM, "out of memory");
  free(*dst);
  *dst = c;
  return 0;
}

/* A string that must be one of `allowed` (NULL-terminated); *out keeps its default if absent. */
static int read_enum(const aip_ydoc *y, const aip_ynode *n, const char *what,
                     const char *const *allowed, char **out, aip_error *err) {
  char *s = NULL;
  int rc = aip_y_str(y, n, what, &s, err);
  if (rc || !s) return rc;
  for (size_t i = 0; allowed[i]; i++) {
    if (strcmp(s, allowed[i]) == 0) {
      free(*out);
      *out = s;
      return 0;
    }
  }
  char list[160] = "", q[AIP_Y_QUOTE_MAX];
  for (size_t i = 0; allowed[i]; i++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", allowed[i]);
  rc = aip_y_errf(y, n, err, "%s: invalid value %s, expected one of: %s", what,
                  aip_y_quote(q, sizeof q, s), list);
  free(s);
  return rc;
}

/* ---- loosely checked v1alpha2 blocks (identity, server) ------------------------------------ */

/* These blocks are validated for shape and types only: the gateway does not implement them
 * yet, but a policy that uses them must still be well-formed. A table keeps that compact. */
typedef enum { F_BOOL, F_STR, F_DUR, F_UINT, F_STRLIST, F_ENUM, F_MAP } ftype;
typedef struct fspec {
  const char *key;
  ftype type;
  const void *extra; /* F_ENUM: const char *const[]; F_MAP: const fspec[] ending in {NULL} */
} fspec;

#define FSPEC_MAX 16

static int check_block(const aip_ydoc *y, const aip_ynode *map, const char *what,
                       const fspec *specs, aip_error *err);

static int check_field(const aip_ydoc *y, const aip_ynode *v, const char *what, const fspec *f,
                       aip_error *err) {
  int b;
  long long i;
  uint64_t u;
  char *s = NULL;
  aip_strlist l = {0};
  int rc = 0;
  switch (f->type) {
    case F_BOOL: return aip_y_bool(y, v, what, &b, err);
    case F_STR: rc = aip_y_str(y, v, what, &s, err); break;
    case F_DUR: return aip_y_duration(y, v, what, &u, err);
    case F_UINT: return aip_y_int(y, v, what, 0, 1000000000LL, &i, err);
    case F_STRLIST: rc = aip_y_strlist(y, v, what, &l, err); break;
    case F_ENUM: rc = read_enum(y, v, what, (const char *const *)f->extra, &s, err); break;
    case F_MAP: return check_block(y, v, what, (const fspec *)f->extra, err);
  }
  free(s);
  aip_strlist_free(&l);
  return rc;
}

static int check_block(const aip_ydoc *y, const aip_ynode *map, const char *what,
                       const fspec *specs, aip_error *err) {
  const char *keys[FSPEC_MAX + 1];
  const aip_ynode *vals[FSPEC_MAX];
  size_t n = 0;
  for (; n < FSPEC_MAX && specs[n].key; n++) keys[n] = specs[n].key;
  keys[n] = NULL;
  int rc = aip_y_fields(y, map, what, keys, vals, err);
  for (size_t i = 0; i < n && !rc; i++) {
    char sub[WHAT_MAX];
    snprintf(sub, sizeof sub, "%s.%s", what, keys[i]);
    rc = check_field(y, vals[i], sub, &specs[i], err);
  }
  return rc;
}

static const char *const binding_values[] = {"process", "policy", "strict", NULL};
static const char *const nonce_types[] = {"memory", "redis", "postgres", NULL};
static const char *const key_sources[] = {"generate", "file", "external", NULL};
static const char *const failover_modes[] = {"fail_closed", "fail_open", "local_policy", NULL};

static const fspec nonce_storage_spec[] = {{"type", F_ENUM, nonce_types},
                                           {"address", F_STR, NULL},
                                           {"key_prefix", F_STR, NULL},
                                           {"clock_skew_tolerance", F_DUR, NULL},
                                           {NULL, F_BOOL, NULL}};
static const fspec keys_spec[] = {{"signing_algorithm", F_STR, NULL},
                                  {"key_source", F_ENUM, key_sources},
                                  {"key_path", F_STR, NULL},
                                  {"rotation_period", F_DUR, NULL},
                                  {"jwks_endpoint", F_STR, NULL},
                                  {"grace_period", F_DUR, NULL},
                                  {NULL, F_BOOL, NULL}};
static const fspec identity_spec[] = {{"enabled", F_BOOL, NULL},
                                      {"token_ttl", F_DUR, NULL},
                                      {"rotation_interval", F_DUR, NULL},
                                      {"require_token", F_BOOL, NULL},
                                      {"session_binding", F_ENUM, binding_values},
                                      {"nonce_window", F_DUR, NULL},
                                      {"policy_transition_grace", F_DUR, NULL},
                                      {"audience", F_STR, NULL},
                                      {"nonce_storage", F_MAP, nonce_storage_spec},
                                      {"keys", F_MAP, keys_spec},
                                      {NULL, F_BOOL, NULL}};
static const fspec tls_spec[] = {{"cert", F_STR, NULL},
                                 {"key", F_STR, NULL},
                                 {"client_ca", F_STR, NULL},
                                 {"require_client_cert", F_BOOL, NULL},
                                 {NULL, F_BOOL, NULL}};
static const fspec fail_open_spec[] = {{"allowed_tools", F_STRLIST, NULL},
                                       {"max_duration", F_DUR, NULL},
                                       {"max_requests", F_UINT, NULL},
                                       {"alert_webhook", F_STR, NULL},
                                       {"require_local_policy", F_BOOL, NULL},
                                       {NULL, F_BOOL, NULL}};
static const fspec endpoints_spec[] = {{"validate", F_STR, NULL}, {"revoke", F_STR, NULL},
                                       {"jwks", F_STR, NULL},     {"health", F_STR, NULL},
                                       {"metrics", F_STR, NULL},  {NULL, F_BOOL, NULL}};
static const fspec server_spec[] = {{"enabled", F_BOOL, NULL},
                                    {"listen", F_STR, NULL},
                                    {"failover_mode", F_ENUM, failover_modes},
                                    {"timeout", F_DUR, NULL},
                                    {"tls", F_MAP, tls_spec},
                                    {"fail_open_constraints", F_MAP, fail_open_spec},
                                    {"endpoints", F_MAP, endpoints_spec},
                                    {NULL, F_BOOL, NULL}};

/* Spec 2.5: rotation_interval MUST be shorter than token_ttl ("0s" disables rotation) and
 * nonce_window must cover token_ttl; both are load failures. */
static int check_identity(const aip_ydoc *y, const aip_ynode *map, aip_error *err) {
  int rc = check_block(y, map, "spec.identity", identity_spec, err);
  if (rc) return rc;
  const aip_ynode *ttl_n = aip_y_get(map, "token_ttl");
  const aip_ynode *rot_n = aip_y_get(map, "rotation_interval");
  const aip_ynode *win_n = aip_y_get(map, "nonce_window");
  uint64_t ttl = 5 * 60 * 1000, rot = 4 * 60 * 1000, window;
  rc = aip_y_duration(y, ttl_n, "spec.identity.token_ttl", &ttl, err);
  if (!rc) rc = aip_y_duration(y, rot_n, "spec.identity.rotation_interval", &rot, err);
  window = ttl;
  if (!rc) rc = aip_y_duration(y, win_n, "spec.identity.nonce_window", &window, err);
  if (rc) return rc;
  if (rot != 0 && rot >= ttl)
    return aip_y_errf(y, rot_n ? rot_n : ttl_n ? ttl_n : map, err,
                      "spec.identity.rotation_interval must be shorter than token_ttl");
  if (window < ttl)
    return aip_y_errf(y, win_n, err, "spec.identity.nonce_window must be at least token_ttl");
  return 0;
}

/* ---- tool_rules ---------------------------------------------------------------------------- */

/* Go's ParseRateLimit, message for message (aip.md 2.3), plus the `day`/`d` extension. */
static int rate_limit_error(const char *input, uint32_t *count, uint32_t *period_s, char *msg,
                            size_t cap) {
  char s[256], q[AIP_Y_QUOTE_MAX];
  const char *b = input;
  while (isspace((unsigned char)*b)) b++;
  size_t n = strlen(b);
  while (n > 0 && isspace((unsigned char)b[n - 1])) n--;
  if (n >= sizeof s) n = sizeof s - 1;
  memcpy(s, b, n);
  s[n] = '\0';
  char *slash = strchr(s, '/');
  if (!slash || strchr(slash + 1, '/')) {
    snprintf(msg, cap, "invalid rate limit format %s: expected 'N/duration'",
             aip_y_quote(q, sizeof q, s));
    return -EINVAL;
  }
  *slash = '\0';
  char num[64];
  trim_lower(s, num, sizeof num);
  const char *p = num + (num[0] == '+'); /* strconv.Atoi accepts a leading '+' */
  unsigned long long c = 0;
  int ok = *p != '\0';
  for (; ok && *p; p++) {
    if (*p < '0' || *p > '9' || c > (UINT32_MAX - (unsigned)(*p - '0')) / 10) ok = 0;
    else c = c * 10 + (unsigned)(*p - '0');
  }
  if (!ok || c == 0) { /* Go quotes parts[0] untrimmed */
    snprintf(msg, cap, "invalid rate limit count %s: must be positive integer",
             aip_y_quote(q, sizeof q, s));
    return -EINVAL;
  }
  char unit[64];
  trim_lower(slash + 1, unit, sizeof unit);
  static const struct {
    const char *name;
    uint32_t secs;
  } units[] = {{"second", 1},   {"sec", 1},   {"s", 1},      {"minute", 60}, {"min", 60},
               {"m", 60},       {"hour", 3600}, {"hr", 3600}, {"h", 3600},    {"day", 86400},
               {"d", 86400}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(unit, units[i].name) == 0) {
      *count = (uint32_t)c;
      *period_s = units[i].secs;
      return 0;
    }
  }
  snprintf(msg, cap, "invalid rate limit duration %s: must be 'second', 'minute', or 'hour'",
           aip_y_quote(q, sizeof q, unit));
  return -EINVAL;
}

static int parse_rate_limit(const aip_ydoc *y, const aip_ynode *n, aip_tool_rule *r,
                            aip_error *err) {
  char *s = NULL;
  int rc = aip_y_str(y, n, "rate_limit", &s, err);
  if (rc || !s) return rc;
  char msg[AIP_ERROR_MAX / 2], q[AIP_Y_QUOTE_MAX];
  if (s[0] != '\0' && rate_limit_error(s, &r->rate_count, &r->rate_period_s, msg, sizeof msg))
    rc = aip_y_errf(y, n, err, "invalid rate_limit for tool %s: %s",
                    aip_y_quote(q, sizeof q, r->tool), msg);
  free(s);
  return rc;
}

static int parse_action(const aip_ydoc *y, const aip_ynode *n, aip_tool_rule *r,
                        aip_error *err) {
  char *s = NULL;
  int rc = aip_y_str(y, n, "action", &s, err);
  if (rc || !s) return rc;
  char a[64], q1[AIP_Y_QUOTE_MAX], q2[AIP_Y_QUOTE_MAX];
  trim_lower(s, a, sizeof a);
  if (a[0] == '\0' || strcmp(a, "allow") == 0) r->action = AIP_ACTION_ALLOW;
  else if (strcmp(a, "block") == 0) r->action = AIP_ACTION_BLOCK;
  else if (strcmp(a, "ask") == 0) r->action = AIP_ACTION_ASK;
  else
    rc = aip_y_errf(y, n, err, "invalid action %s for tool %s, must be 'allow', 'block', or 'ask'",
                    aip_y_quote(q1, sizeof q1, strlen(s) < sizeof a ? a : s),
                    aip_y_quote(q2, sizeof q2, r->tool));
  free(s);
  return rc;
}

static int parse_allow_args(const aip_ydoc *y, const aip_ynode *n, const char *what,
                            aip_tool_rule *r, aip_error *err) {
  aip_kvlist kv = {0};
  int rc = aip_y_kvlist(y, n, what, &kv, err);
  if (rc || kv.n == 0) return rc;
  r->allow_args = calloc(kv.n, sizeof *r->allow_args);
  if (!r->allow_args) {
    aip_kvlist_free(&kv);
    return aip_error_set(err, -ENOMEM, "out of memory");
  }
  /* Ownership of the strings moves from the kvlist to the rule. */
  for (size_t i = 0; i < kv.n; i++) {
    r->allow_args[i].name = kv.items[i].key;
    r->allow_args[i].regex = kv.items[i].value;
    r->allow_args[i].pos = n->items[2 * i + 1]->pos;
  }
  r->allow_args_n = kv.n;
  free(kv.items);
  return 0;
}

enum { TR_TOOL, TR_ACTION, TR_RATE, TR_STRICT, TR_ARGS, TR_SCHEMA, TR_N };
static const char *const rule_keys[TR_N + 1] = {"tool",        "action",     "rate_limit",
                                                "strict_args", "allow_args", "schema_hash",
                                                NULL};

static int parse_tool_rule(const aip_ydoc *y, const aip_ynode *n, size_t idx, aip_tool_rule *r,
                           aip_error *err) {
  char what[PARENT_MAX], sub[WHAT_MAX];
  snprintf(what, sizeof what, "spec.tool_rules[%zu]", idx);
  const aip_ynode *v[TR_N];
  r->pos = n->pos;
  r->strict_args = -1;
  if (n->kind != AIP_YMAP)
    return aip_y_errf(y, n, err, "%s: expected a mapping with a `tool` key", what);
  int rc = aip_y_fields(y, n, what, rule_keys, v, err);
  snprintf(sub, sizeof sub, "%s.tool", what);
  if (!rc) rc = aip_y_str(y, v[TR_TOOL], sub, &r->tool, err);
  if (rc) return rc;
  if (!r->tool || r->tool[0] == '\0')
    return aip_y_errf(y, v[TR_TOOL] ? v[TR_TOOL] : n, err, "%s: missing required field: tool",
                      what);
  if (v[TR_TOOL]) r->pos = v[TR_TOOL]->pos;
  if (v[TR_SCHEMA])
    return aip_y_errf(y, v[TR_SCHEMA], err,
                      "%s.schema_hash: tool schema pinning is not supported by this gateway",
                      what);
  rc = parse_action(y, v[TR_ACTION], r, err);
  if (!rc) rc = parse_rate_limit(y, v[TR_RATE], r, err);
  snprintf(sub, sizeof sub, "%s.strict_args", what);
  if (!rc) rc = aip_y_bool(y, v[TR_STRICT], sub, &r->strict_args, err);
  snprintf(sub, sizeof sub, "%s.allow_args", what);
  if (!rc) rc = parse_allow_args(y, v[TR_ARGS], sub, r, err);
  return rc;
}

static int parse_tool_rules(const aip_ydoc *y, const aip_ynode *n, aip_policy_doc *doc,
                            aip_error *err) {
  aip_ynode *const *items;
  size_t count;
  int rc = aip_y_seq(y, n, "spec.tool_rules", &items, &count, err);
  if (rc || count == 0) return rc;
  doc->rules = calloc(count, sizeof *doc->rules);
  if (!doc->rules) return aip_error_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; i < count && !rc; i++) {
    doc->rules_n++; /* counted first so that free() releases a half-parsed rule */
    rc = parse_tool_rule(y, items[i], i, &doc->rules[i], err);
  }
  return rc;
}

/* ---- dlp ----------------------------------------------------------------------------------- */

static const char *const scope_values[] = {"all", "request", "response", NULL};

static int parse_dlp_pattern(const aip_ydoc *y, const aip_ynode *n, size_t idx,
                             aip_dlp_pattern *p, aip_error *err) {
  static const char *const keys[] = {"name", "regex", "scope", NULL};
  char what[PARENT_MAX], sub[WHAT_MAX];
  const aip_ynode *v[3];
  snprintf(what, sizeof what, "spec.dlp.patterns[%zu]", idx);
  p->pos = n->pos;
  int rc = set_str(&p->scope, "all", err);
  if (!rc && n->kind != AIP_YMAP)
    return aip_y_errf(y, n, err, "%s: expected a mapping with `name` and `regex`", what);
  if (!rc) rc = aip_y_fields(y, n, what, keys, v, err);
  snprintf(sub, sizeof sub, "%s.name", what);
  if (!rc) rc = aip_y_str(y, v[0], sub, &p->name, err);
  snprintf(sub, sizeof sub, "%s.regex", what);
  if (!rc) rc = aip_y_str(y, v[1], sub, &p->regex, err);
  snprintf(sub, sizeof sub, "%s.scope", what);
  if (!rc) rc = read_enum(y, v[2], sub, scope_values, &p->scope, err);
  if (rc) return rc;
  if (!p->name || !p->name[0])
    return aip_y_errf(y, v[0] ? v[0] : n, err, "%s: missing required field: name", what);
  if (!p->regex || !p->regex[0])
    return aip_y_errf(y, v[1] ? v[1] : n, err, "%s: missing required field: regex", what);
  return 0;
}

enum {
  D_ENABLED, D_DETECT, D_STDERR, D_SCAN_REQ, D_SCAN_RESP, D_MAX_SCAN, D_ON_MATCH, D_ON_FAIL,
  D_LOG_ORIG, D_PATTERNS, D_RULEPACK, D_TIMEOUT, D_STREAM, D_N
};
static const char *const dlp_keys[D_N + 1] = {
    "enabled",          "detect_encoding",      "filter_stderr",
    "scan_requests",    "scan_responses",       "max_scan_size",
    "on_request_match", "on_redaction_failure", "log_original_on_failure",
    "patterns",         "rulepack",             "timeout",
    "stream_threshold", NULL};
static const char *const rulepack_values[] = {"default", "none", NULL};
static const char *const on_match_values[] = {"block", "redact", "warn", NULL};
static const char *const on_fail_values[] = {"block", "allow_original", "reject", NULL};

static int parse_dlp_patterns(const aip_ydoc *y, const aip_ynode *n, aip_dlp_config *dlp,
                              aip_error *err) {
  aip_ynode *const *items;
  size_t count;
  int rc = aip_y_seq(y, n, "spec.dlp.patterns", &items, &count, err);
  if (rc || count == 0) return rc;
  dlp->patterns = calloc(count, sizeof *dlp->patterns);
  if (!dlp->patterns) return aip_error_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; i < count && !rc; i++) {
    dlp->patterns_n++;
    rc = parse_dlp_pattern(y, items[i], i, &dlp->patterns[i], err);
  }
  return rc;
}

/* Extensions: rulepack, the operations guide's timeout, stream_threshold; and max_scan_size is
 * honoured only when written (the spec's "1MB" default would silently skip large results). */
static int parse_dlp_extensions(const aip_ydoc *y, const aip_ynode *const *v, aip_dlp_config *dlp,
                                aip_error *err) {
  dlp->max_scan_size_set = v[D_MAX_SCAN] && !aip_y_is_null(v[D_MAX_SCAN]);
  int rc = read_enum(y, v[D_RULEPACK], "spec.dlp.rulepack", rulepack_values, &dlp->rulepack, err);
  if (!rc && dlp->rulepack && strcmp(dlp->rulepack, "none") == 0) {
    free(dlp->rulepack);
    dlp->rulepack = NULL;
  }
  if (!rc) rc = aip_y_duration(y, v[D_TIMEOUT], "spec.dlp.timeout", &dlp->timeout_ms, err);
  if (!rc)
    rc = aip_y_size(y, v[D_STREAM], "spec.dlp.stream_threshold", &dlp->stream_threshold, err);
  return rc;
}

static int parse_dlp(const aip_ydoc *y, const aip_ynode *n, aip_dlp_config *dlp,
                     aip_error *err) {
  const aip_ynode *v[D_N];
  int rc = aip_y_fields(y, n, "spec.dlp", dlp_keys, v, err);
  if (rc || !n || aip_y_is_null(n)) return rc; /* `dlp:` with no value is no block, as in Go */
  dlp->present = 1;
  dlp->enabled = 1;
  rc = aip_y_bool(y, v[D_ENABLED], "spec.dlp.enabled", &dlp->enabled, err);
  if (!rc) rc = aip_y_bool(y, v[D_DETECT], "spec.dlp.detect_encoding", &dlp->detect_encoding, err);
  if (!rc) rc = aip_y_bool(y, v[D_STDERR], "spec.dlp.filter_stderr", &dlp->filter_stderr, err);
  if (!rc) rc = aip_y_bool(y, v[D_SCAN_REQ], "spec.dlp.scan_requests", &dlp->scan_requests, err);
  if (!rc)
    rc = aip_y_bool(y, v[D_SCAN_RESP], "spec.dlp.scan_responses", &dlp->scan_responses, err);
  if (!rc)
    rc = aip_y_size(y, v[D_MAX_SCAN], "spec.dlp.max_scan_size", &dlp->max_scan_size, err);
  if (!rc)
    rc = read_enum(y, v[D_ON_MATCH], "spec.dlp.on_request_match", on_match_values,
                   &dlp->on_request_match, err);
  if (!rc)
    rc = read_enum(y, v[D_ON_FAIL], "spec.dlp.on_redaction_failure", on_fail_values,
                   &dlp->on_redaction_failure, err);
  if (!rc)
    rc = aip_y_bool(y, v[D_LOG_ORIG], "spec.dlp.log_original_on_failure",
                    &dlp->log_original_on_failure, err);
  if (!rc) rc = parse_dlp_patterns(y, v[D_PATTERNS], dlp, err);
  if (!rc) rc = parse_dlp_extensions(y, v, dlp, err);
  return rc;
}

/* ---- spec, metadata, header ---------------------------------------------------------------- */

enum {
  S_MODE, S_ALLOWED_TOOLS, S_DENIED_TOOLS, S_ALLOWED_METHODS, S_DENIED_METHODS, S_TOOL_RULES,
  S_PROTECTED, S_STRICT_DEFAULT, S_DLP, S_IDENTITY, S_SERVER, S_FAILOVER, S_N
};
static const char *const spec_keys[S_N + 1] = {
    "mode",         "allowed_tools",   "denied_tools",        "allowed_methods",
    "denied_methods", "tool_rules",    "protected_paths",     "strict_args_default",
    "dlp",          "identity",        "server",              "failover",
    NULL};

/* spec.failover (operations guide, not in AIP): block (default) or allow for each failure. */
static int parse_failover(const aip_ydoc *y, const aip_ynode *n, aip_failover_config *f,
                          aip_error *err) {
  static const char *const keys[] = {"on_policy_load_error", "on_regex_error", "on_dlp_error",
                                     NULL};
  static const char *const values[] = {"block", "allow", NULL};
  aip_failover *dst[3] = {&f->on_policy_load_error, &f->on_regex_error, &f->on_dlp_error};
  const aip_ynode *v[3];
  int rc = aip_y_fields(y, n, "spec.failover", keys, v, err);
  if (rc || !n || aip_y_is_null(n)) return rc;
  f->present = 1;
  for (int i = 0; i < 3 && !rc; i++) {
    char what[WHAT_MAX], *s = NULL;
    snprintf(what, sizeof what, "spec.failover.%s", keys[i]);
    rc = read_enum(y, v[i], what, values, &s, err);
    if (!rc && s) *dst[i] = strcmp(s, "allow") == 0 ? AIP_FAILOVER_ALLOW : AIP_FAILOVER_BLOCK;
    free(s);
  }
  return rc;
}

static int parse_mode(const aip_ydoc *y, const aip_ynode *n, aip_policy_doc *doc,
                      aip_error *err) {
  char *s = NULL;
  int rc = aip_y_str(y, n, "spec.mode", &s, err);
  if (rc || !s) return rc;
  char m[64], q[AIP_Y_QUOTE_MAX];
  trim_lower(s, m, sizeof m);
  if (m[0] == '\0' || strcmp(m, "enforce") == 0) doc->mode = AIP_MODE_ENFORCE;
  else if (strcmp(m, "monitor") == 0) doc->mode = AIP_MODE_MONITOR;
  else /* Go quotes the raw value here, unlike for actions */
    rc = aip_y_errf(y, n, err, "invalid mode %s, must be 'enforce' or 'monitor'",
                    aip_y_quote(q, sizeof q, s));
  free(s);
  return rc;
}

static int parse_spec(const aip_ydoc *y, const aip_ynode *n, aip_policy_doc *doc,
                      aip_error *err) {
  const aip_ynode *v[S_N];
  int rc = aip_y_fields(y, n, "spec", spec_keys, v, err);
  if (!rc) rc = parse_mode(y, v[S_MODE], doc, err);
  if (!rc)
    rc = aip_y_strlist(y, v[S_ALLOWED_TOOLS], "spec.allowed_tools", &doc->allowed_tools, err);
  if (!rc) rc = aip_y_strlist(y, v[S_DENIED_TOOLS], "spec.denied_tools", &doc->denied_tools, err);
  if (!rc)
    rc = aip_y_strlist(y, v[S_ALLOWED_METHODS], "spec.allowed_methods", &doc->allowed_methods,
                       err);
  /* As in Go, only a non-empty list replaces the default methods: `allowed_methods: []` keeps
   * the safe defaults rather than silently blocking every method. */
  doc->allowed_methods_set = doc->allowed_methods.n > 0;
  if (!rc)
    rc = aip_y_strlist(y, v[S_DENIED_METHODS], "spec.denied_methods", &doc->denied_methods, err);
  if (!rc)
    rc = aip_y_strlist(y, v[S_PROTECTED], "spec.protected_paths", &doc->protected_paths, err);
  if (!rc)
    rc = aip_y_bool(y, v[S_STRICT_DEFAULT], "spec.strict_args_default", &doc->strict_args_default,
                    err);
  if (!rc) rc = parse_tool_rules(y, v[S_TOOL_RULES], doc, err);
  if (!rc) rc = parse_dlp(y, v[S_DLP], &doc->dlp, err);
  if (!rc) rc = parse_failover(y, v[S_FAILOVER], &doc->failover, err);
  if (!rc && v[S_IDENTITY] && !aip_y_is_null(v[S_IDENTITY])) {
    doc->identity_present = 1;
    rc = check_identity(y, v[S_IDENTITY], err);
  }
  if (!rc && v[S_SERVER] && !aip_y_is_null(v[S_SERVER])) {
    doc->server_present = 1;
    rc = check_block(y, v[S_SERVER], "spec.server", server_spec, err);
  }
  return rc;
}

static int parse_metadata(const aip_ydoc *y, const aip_ynode *n, aip_policy_doc *doc,
                          aip_error *err) {
  static const char *const keys[] = {"name", "version", "owner", "signature", NULL};
  const aip_ynode *v[4];
  int rc = aip_y_fields(y, n, "metadata", keys, v, err);
  if (!rc) rc = aip_y_str(y, v[0], "metadata.name", &doc->name, err);
  if (!rc) rc = aip_y_str(y, v[1], "metadata.version", &doc->version, err);
  if (!rc) rc = aip_y_str(y, v[2], "metadata.owner", &doc->owner, err);
  if (!rc) rc = aip_y_str(y, v[3], "metadata.signature", &doc->signature, err);
  return rc;
}

static int parse_root(const aip_ydoc *y, aip_policy_doc *doc, aip_error *err) {
  static const char *const keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
  const aip_ynode *v[4];
  char q[AIP_Y_QUOTE_MAX];
  if (!y->root || aip_y_is_null(y->root))
    return aip_y_errf(y, NULL, err, "empty document: policy missing required field: apiVersion");
  int rc = aip_y_fields(y, y->root, "the policy document", keys, v, err);
  if (!rc) rc = aip_y_str(y, v[0], "apiVersion", &doc->api_version, err);
  if (!rc) rc = aip_y_str(y, v[1], "kind", &doc->kind, err);
  if (rc) return rc;
  if (!doc->api_version || !doc->api_version[0])
    return aip_y_errf(y, y->root, err, "policy missing required field: apiVersion");
  if (strcmp(doc->api_version, "aip.io/v1alpha1") != 0 &&
      strcmp(doc->api_version, "aip.io/v1alpha2") != 0)
    return aip_y_errf(y, v[0], err, "unsupported apiVersion %s, expected aip.io/v1alpha1 or "
                      "aip.io/v1alpha2", aip_y_quote(q, sizeof q, doc->api_version));
  if (!doc->kind || strcmp(doc->kind, "AgentPolicy") != 0)
    return aip_y_errf(y, v[1] ? v[1] : y->root, err, "unexpected kind %s, expected AgentPolicy",
                      aip_y_quote(q, sizeof q, doc->kind ? doc->kind : ""));
  rc = parse_metadata(y, v[2], doc, err);
  if (!rc) rc = parse_spec(y, v[3], doc, err);
  return rc;
}

/* ---- public -------------------------------------------------------------------------------- */

/* Defaults that hold whether or not a `dlp:` block is written, so the engine never sees NULL. */
static int set_defaults(aip_policy_doc *doc, aip_error *err) {
  doc->mode = AIP_MODE_ENFORCE;
  doc->dlp.scan_responses = 1;
  doc->dlp.max_scan_size = 1000 * 1000; /* spec: "1MB", honoured only when written */
  doc->dlp.stream_threshold = 1024 * 1024;
  int rc = set_str(&doc->dlp.on_request_match, "block", err);
  if (!rc) rc = set_str(&doc->dlp.on_redaction_failure, "block", err);
  return rc;
}

static int load_ydoc(const aip_ydoc *y, const char *path, aip_policy_doc **out, aip_error *err) {
  aip_policy_doc *doc = calloc(1, sizeof *doc);
  if (!doc) return aip_error_set(err, -ENOMEM, "out of memory");
  int rc = set_str(&doc->path, path, err);
  if (!rc) rc = set_defaults(doc, err);
  if (!rc) rc = parse_root(y, doc, err);
  if (rc) {
    aip_policy_doc_free(doc);
    return rc;
  }
  *out = doc;
  return 0;
}

int aip_policy_doc_load_string(const char *yaml, size_t len, const char *name,
                               aip_policy_doc **out, aip_error *err) {
  aip_ydoc *y;
  *out = NULL;
  if (!name) name = "<inline>";
  int rc = aip_ydoc_load_string(yaml, len, name, &y, err);
  if (rc) return rc;
  rc = load_ydoc(y, name, out, err);
  aip_ydoc_free(y);
  return rc;
}

int aip_policy_doc_load_file(const char *path, aip_policy_doc **out, aip_error *err) {
  aip_ydoc *y;
  *out = NULL;
  int rc = aip_ydoc_load_file(path, &y, err);
  if (rc) return rc;
  rc = load_ydoc(y, path, out, err);
  aip_ydoc_free(y);
  return rc;
}

void aip_policy_doc_free(aip_policy_doc *doc) {
  if (!doc) return;
  free(doc->path);
  free(doc->api_version);
  free(doc->kind);
  free(doc->name);
  free(doc->version);
  free(doc->owner);
  free(doc->signature);
  aip_strlist_free(&doc->allowed_tools);
  aip_strlist_free(&doc->denied_tools);
  aip_strlist_free(&doc->allowed_methods);
  aip_strlist_free(&doc->denied_methods);
  aip_strlist_free(&doc->protected_paths);
  for (size_t i = 0; i < doc->rules_n; i++) {
    aip_tool_rule *r = &doc->rules[i];
    free(r->tool);
    for (size_t j = 0; j < r->allow_args_n; j++) {
      free(r->allow_args[j].name);
      free(r->allow_args[j].regex);
    }
    free(r->allow_args);
  }
  free(doc->rules);
  for (size_t i = 0; i < doc->dlp.patterns_n; i++) {
    free(doc->dlp.patterns[i].name);
    free(doc->dlp.patterns[i].regex);
    free(doc->dlp.patterns[i].scope);
  }
  free(doc->dlp.patterns);
  free(doc->dlp.on_request_match);
  free(doc->dlp.on_redaction_failure);
  free(doc->dlp.rulepack);
  free(doc);
}
