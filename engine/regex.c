/* regex.c -- `allow_args` patterns on Hyperscan (reference/aip.md sections 2.3, 3.4, 3.5).
 *
 * The reference compiles each pattern with Go's regexp (RE2) and runs an unanchored search on
 * the argument's string form. Here every pattern gets its own Hyperscan block-mode database
 * (one scan per argument, no filtering of other patterns' matches) and all of them share the
 * policy's one scratch region.
 *
 * Hyperscan-vs-RE2 differences and how they are handled:
 *   - `$` is rewritten to `\z` outside multi-line mode so it keeps RE2's meaning (end of text
 *     only; PCRE also matches before a final "\n");
 *   - `.` excludes "\n" in both (no DOTALL flag);
 *   - Hyperscan refuses backreferences and lookaround at compile time, as RE2 does, so such a
 *     policy fails to load with the position of the pattern;
 *   - `\d \w \s \b` are ASCII in both in non-UCP mode;
 *   - a few RE2 constructs Hyperscan lacks (e.g. some Unicode classes \pN names it does not
 *     know) fail to load rather than match differently.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/policy_internal.h"

#define REGEX_MAX_LEN 1000 /* ValidateRegexComplexity's limit */

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

static int compile_one(const aip_policy_doc *doc, const aip_tool_rule *r, size_t i,
                       hs_database_t **db, aip_error *err) {
  const aip_arg_rule *a = &r->allow_args[i];
  const char *why = redos_check(a->regex);
  hs_compile_error_t *cerr = NULL;
  char *expr;
  int rc = 0;

  if (why)
    return aip_policy_fail_at(err, doc, a->pos,
                              "potentially dangerous regex for tool \"%s\" arg \"%s\": %s: %s",
                              r->tool, a->name, why, a->regex);
  if (!(expr = translate_re2(a->regex)))
    return aip_error_set(err, -ENOMEM, "out of memory");
  /* `.` keeps excluding "\n" (no DOTALL), as in RE2. */
  if (hs_compile(expr, HS_FLAG_UTF8 | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY, HS_MODE_BLOCK,
                 NULL, db, &cerr) != HS_SUCCESS) {
    rc = aip_policy_fail_at(err, doc, a->pos, "invalid regex for tool \"%s\" arg \"%s\": \"%s\": %s",
                            r->tool, a->name, a->regex, cerr ? cerr->message : "compile failed");
    hs_free_compile_error(cerr);
    *db = NULL;
  }
  free(expr);
  return rc;
}

int aip_re_compile_rule(const aip_policy_doc *doc, aip_rule_c *c, hs_scratch_t **scratch,
                        aip_error *err) {
  const aip_tool_rule *r = c->src;
  int rc;

  if (!r->allow_args_n)
    return 0;
  if (!(c->dbs = calloc(r->allow_args_n, sizeof(*c->dbs))))
    return aip_error_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; i < r->allow_args_n; i++) {
    if ((rc = compile_one(doc, r, i, &c->dbs[i], err)))
      return rc;
    if (hs_alloc_scratch(c->dbs[i], scratch) != HS_SUCCESS)
      return aip_error_set(err, -ENOMEM, "out of memory (Hyperscan scratch)");
  }
  return 0;
}

void aip_re_free_rule(aip_rule_c *c) {
  for (size_t i = 0; c->dbs && i < c->src->allow_args_n; i++)
    hs_free_database(c->dbs[i]);
  free(c->dbs);
  c->dbs = NULL;
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                    void *ctx) {
  *(int *)ctx = 1;
  return 1; /* stop scanning */
}

/* Scan errors and strings Hyperscan cannot take (not UTF-8, > 4 GiB) count as no match.
 * Numbers are searched in Go's rendering (what the reference and the conformance vectors
 * check), which is the number a float64 decoder reads; a number whose forwarded bytes say
 * something else (more digits than a double holds: 9007199254740993, 0.99999999999999999999)
 * would be read differently by an exact decoder, so it never matches (docs/policy-semantics.md,
 * "Numbers"). */
int aip_re_arg_matches(const aip_policy *p, const aip_rule_c *r, size_t idx, const cJSON *v) {
  const char *s = "";
  size_t n = 0;
  aip_buf tmp;
  hs_error_t rc;
  int hit = 0;

  if (!aip_json_numbers_exact(v))
    return 0;
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
  rc = hs_scan(r->dbs[idx], s, (unsigned)n, 0, p->scratch, on_match, &hit);
  aip_buf_free(&tmp);
  return rc == HS_SCAN_TERMINATED && hit;
}
