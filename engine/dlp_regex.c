/* dlp_regex.c -- small RE2-syntax walkers used when DLP rules are compiled.
 *
 * 1. PCRE2 translation. AIP patterns are Go RE2 regexes; PCRE2 agrees with RE2 on everything
 *    a pattern that Hyperscan accepts can say, given PCRE2_UTF, PCRE2_DOLLAR_ENDONLY and LF
 *    newlines, except `\s`, which in PCRE2 also matches VT (0x0B). We rewrite it to Go's class.
 * 2. A conservative analysis for the redactor's rescan rule (dlp_redact.c): a rule that Hyperscan
 *    did not see fire on the original text can only match after an earlier rule replaced
 *    something if its match overlaps a placeholder "[REDACTED:x]" (so it can consume '[' or
 *    ']', or it matches inside a placeholder, which compile tests directly) or touches one
 *    through \b or \B. When unsure, say yes: a false yes costs a rescan, a false no a miss.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/dlp_internal.h"

/* ---- translation ---------------------------------------------------------------------------- */

char *dlp_regex_to_pcre(const char *re) {
  size_t n = strlen(re);
  aip_buf b;
  aip_buf_init(&b);
  int in_class = 0, err = aip_buf_reserve(&b, n + 16);
  for (size_t i = 0; i < n && !err; i++) {
    char c = re[i];
    if (c == '\\' && i + 1 < n) {
      char e = re[i + 1];
      if (e == 'Q') { /* literal up to \E: copied untouched */
        const char *q = strstr(re + i + 2, "\\E");
        size_t end = q ? (size_t)(q - re) + 2 : n;
        err = aip_buf_append(&b, re + i, end - i);
        i = end - 1;
      } else if (e == 's') {
        err = aip_buf_puts(&b, in_class ? "\\t\\n\\f\\r " : "[\\t\\n\\f\\r ]");
        i++;
      } else if (e == 'S') {
        err = aip_buf_puts(&b, in_class ? "\\x00-\\x08\\x0b\\x0e-\\x1f!-\\x{10ffff}"
                                        : "[^\\t\\n\\f\\r ]");
        i++;
      } else {
        err = aip_buf_append(&b, re + i, 2);
        i++;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = 1;
      err = aip_buf_append(&b, re + i, 1);
      /* a ']' right after '[' or '[^' is a member, not the end */
      if (!err && i + 1 < n && re[i + 1] == '^') err = aip_buf_append(&b, re + ++i, 1);
      if (!err && i + 1 < n && re[i + 1] == ']') err = aip_buf_append(&b, re + ++i, 1);
      continue;
    }
    if (in_class && c == '[' && i + 1 < n && re[i + 1] == ':') { /* [:alpha:] */
      const char *q = strstr(re + i + 2, ":]");
      size_t end = q ? (size_t)(q - re) + 2 : i + 1;
      err = aip_buf_append(&b, re + i, end - i);
      i = end - 1;
      continue;
    }
    if (in_class && c == ']') in_class = 0;
    err = aip_buf_append(&b, &c, 1);
  }
  if (err) {
    aip_buf_free(&b);
    return NULL;
  }
  return aip_buf_steal(&b, NULL);
}

/* ---- analysis ------------------------------------------------------------------------------- */

typedef struct cls {
  int maybe, surely; /* may contain a bracket / surely contains one */
} cls;

static int is_bracket(unsigned v) { return v == '[' || v == ']'; }

/* \p{Name} or \pX at p: its length; *maybe unless it names letters or numbers (categories L*
 * and N*, and the scripts whose names start with L or N, which hold no brackets either). */
static size_t prop_len(const char *p, int *maybe) {
  const char *name = p + 2;
  size_t k = 3;
  if (*name == '{') {
    const char *q = strchr(name, '}');
    k = q ? (size_t)(q - p) + 1 : strlen(p);
    name++;
  } else if (!*name) {
    k = 2;
  }
  *maybe = p[1] == 'P' || !(*name == 'L' || *name == 'N');
  return k;
}

/* Value of a single-character escape at p (a backslash), or -1 for a class escape. */
static long escape_value(const char *p, size_t *len) {
  char e = p[1];
  *len = 2;
  if (e == 'x') {
    if (p[2] == '{') {
      char *endp;
      long v = strtol(p + 3, &endp, 16);
      *len = (size_t)(endp - p) + (*endp == '}');
      return v;
    }
    char h[3] = {p[2], p[2] ? p[3] : 0, 0};
    *len = 2 + strlen(h);
    return strtol(h, NULL, 16);
  }
  if (e >= '0' && e <= '7') {
    size_t k = 1;
    long v = 0;
    while (k <= 3 && p[k] >= '0' && p[k] <= '7') v = v * 8 + (p[k] - '0'), k++;
    *len = k;
    return v;
  }
  if (strchr("dDwWsSpPC", e)) return -1;
  return (unsigned char)e; /* \n, \., \[, ... (n, t, r, f, v, a, e are never brackets) */
}

/* Class escape \d \D ... at p; updates c; returns its length. */
static size_t class_escape(const char *p, cls *c) {
  char e = p[1];
  if (e == 'p' || e == 'P') {
    int maybe;
    size_t k = prop_len(p, &maybe);
    if (e == 'P') maybe = 1;
    c->maybe |= maybe;
    return k;
  }
  if (e == 'D' || e == 'W' || e == 'S' || e == 'C') c->maybe = c->surely = 1;
  return 2;
}

/* Parses [...] at re[i] (the '['); returns the index of its ']' and whether it may match a
 * bracket. */
static size_t parse_class(const char *re, size_t i, int *may) {
  size_t n = strlen(re);
  int neg = 0;
  cls c = {0, 0};
  i++;
  if (re[i] == '^') neg = 1, i++;
  int first = 1;
  while (i < n && (re[i] != ']' || first)) {
    first = 0;
    long lo;
    size_t len = 1;
    if (re[i] == '[' && re[i + 1] == ':') {
      const char *q = strstr(re + i + 2, ":]");
      if (!q) break;
      int negp = re[i + 2] == '^';
      const char *nm = re + i + 2 + negp;
      int has = !strncmp(nm, "punct", 5) || !strncmp(nm, "graph", 5) ||
                !strncmp(nm, "print", 5) || !strncmp(nm, "ascii", 5);
      if (has != negp) c.maybe = c.surely = 1;
      i = (size_t)(q - re) + 2;
      continue;
    }
    if (re[i] == '\\') {
      lo = escape_value(re + i, &len);
      if (lo < 0) {
        i += class_escape(re + i, &c);
        continue;
      }
    } else {
      lo = (unsigned char)re[i];
    }
    i += len;
    long hi = lo;
    if (re[i] == '-' && i + 1 < n && re[i + 1] != ']') {
      i++;
      len = 1;
      hi = re[i] == '\\' ? escape_value(re + i, &len) : (unsigned char)re[i];
      if (hi < 0) hi = 0x10FFFF; /* [a-\d] is an error anyway: be conservative */
      i += len;
    }
    if ((lo <= '[' && '[' <= hi) || (lo <= ']' && ']' <= hi)) c.maybe = c.surely = 1;
  }
  *may = neg ? !c.surely : c.maybe;
  return i;
}

void dlp_regex_analyze(const char *re, int *bracket, int *wordb) {
  size_t n = strlen(re);
  *bracket = *wordb = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = re[i];
    if (ch == '\\' && i + 1 < n) {
      char e = re[i + 1];
      size_t len;
      if (e == 'b' || e == 'B') {
        *wordb = 1;
        i++;
      } else if (e == 'Q') {
        const char *q = strstr(re + i + 2, "\\E");
        size_t end = q ? (size_t)(q - re) : n;
        for (size_t k = i + 2; k < end; k++) *bracket |= is_bracket((unsigned char)re[k]);
        i = q ? end + 1 : n;
      } else if (e == 'p' || e == 'P' || strchr("DWSC", e)) {
        cls c = {0, 0};
        i += class_escape(re + i, &c) - 1;
        *bracket |= c.maybe;
      } else {
        long v = escape_value(re + i, &len);
        *bracket |= v >= 0 && is_bracket((unsigned)v);
        i += len - 1;
      }
    } else if (ch == '[') {
      int may;
      i = parse_class(re, i, &may);
      *bracket |= may;
    } else if (ch == '(' && re[i + 1] == '?') {
      /* group syntax is not text: skip "(?flags:", "(?P<name>", "(?#...)"; (?x) makes white
       * space and # comments syntax too, which this walker does not follow: give up */
      size_t k = i + 2;
      if (re[k] == '#') {
        while (k < n && re[k] != ')') k++;
      } else if (re[k] == 'P' || re[k] == '<' || re[k] == '\'') {
        while (k < n && re[k] != '>' && (re[k] != '\'' || k == i + 2)) k++;
      } else {
        for (; k < n && re[k] != ':' && re[k] != ')'; k++)
          if (re[k] == 'x') *bracket = *wordb = 1;
      }
      i = k;
    } else if (ch == '.' || ch == ']') {
      *bracket = 1;
    } else if (ch == '{') { /* a quantifier's digits are not literals */
      size_t k = i + 1;
      while (k < n && ((re[k] >= '0' && re[k] <= '9') || re[k] == ',')) k++;
      if (re[k] == '}') i = k;
    }
  }
}
