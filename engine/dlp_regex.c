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
#include <stdint.h>
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

/* Byte sets: bit b set when the pattern may consume byte b. Every byte of a non-ASCII character
 * is >= 0x80, and those are tracked as one: all of 0x80..0xFF or none. */
typedef struct bset {
  uint64_t w[4];
} bset;

static void bs_add(bset *s, unsigned b) { s->w[b >> 6] |= 1ull << (b & 63); }
static int bs_has(const bset *s, unsigned b) { return (s->w[b >> 6] >> (b & 63)) & 1; }
static void bs_range(bset *s, unsigned lo, unsigned hi) {
  for (unsigned b = lo; b <= hi && b < 256; b++) bs_add(s, b);
}
static void bs_high(bset *s) { s->w[2] = s->w[3] = ~0ull; }
static void bs_or(bset *s, const bset *o) {
  for (int i = 0; i < 4; i++) s->w[i] |= o->w[i];
}
static void bs_not(bset *s) { /* complement within ASCII; non-ASCII is always in */
  for (int i = 0; i < 2; i++) s->w[i] = ~s->w[i];
  bs_high(s);
}

/* ASCII classes by letter: d w s (and POSIX names). */
static void bs_named(bset *s, const char *name, size_t n) {
  bset t = {{0}};
#define NAMED(str) (n == strlen(str) && strncmp(name, str, n) == 0)
  if (NAMED("d") || NAMED("digit")) bs_range(&t, '0', '9');
  else if (NAMED("w") || NAMED("word")) {
    bs_range(&t, '0', '9'), bs_range(&t, 'a', 'z'), bs_range(&t, 'A', 'Z'), bs_add(&t, '_');
  } else if (NAMED("s")) {
    bs_range(&t, '\t', '\r'), bs_add(&t, ' ');
  } else if (NAMED("space")) {
    bs_range(&t, '\t', '\r'), bs_add(&t, ' ');
  } else if (NAMED("alpha")) bs_range(&t, 'a', 'z'), bs_range(&t, 'A', 'Z');
  else if (NAMED("alnum")) bs_range(&t, '0', '9'), bs_range(&t, 'a', 'z'), bs_range(&t, 'A', 'Z');
  else if (NAMED("upper")) bs_range(&t, 'A', 'Z');
  else if (NAMED("lower")) bs_range(&t, 'a', 'z');
  else if (NAMED("xdigit")) bs_range(&t, '0', '9'), bs_range(&t, 'a', 'f'), bs_range(&t, 'A', 'F');
  else if (NAMED("blank")) bs_add(&t, ' '), bs_add(&t, '\t');
  else if (NAMED("cntrl")) bs_range(&t, 0, 31), bs_add(&t, 127);
  else bs_range(&t, 0, 127); /* punct, graph, print, ascii, unknown: all of ASCII, safely */
#undef NAMED
  bs_or(s, &t);
}

/* \p{Name} or \pX at p (P for \P): its length. Letters and numbers (categories L*, N*, scripts
 * named L... or N...) hold ASCII letters or digits and non-ASCII; anything else may hold
 * anything. */
static size_t bs_prop(const char *p, bset *s) {
  const char *name = p + 2;
  size_t k = 3;
  if (*name == '{') {
    const char *q = strchr(name, '}');
    k = q ? (size_t)(q - p) + 1 : strlen(p);
    name++;
  } else if (!*name) {
    k = 2;
  }
  bs_high(s);
  if (p[1] == 'p' && *name == 'L') bs_range(s, 'a', 'z'), bs_range(s, 'A', 'Z');
  else if (p[1] == 'p' && *name == 'N') bs_range(s, '0', '9');
  else bs_range(s, 0, 127);
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
  static const char ctl[] = "n\nt\tr\rf\fv\va\ae\x1b";
  for (const char *c = ctl; *c; c += 2)
    if (e == c[0]) return (unsigned char)c[1];
  if (strchr("dDwWsSpPC", e)) return -1;
  return (unsigned char)e; /* \., \[, ... */
}

/* A class escape (\d \D \w \W \s \S \p \P \C) at p into s; returns its length. */
static size_t bs_class_escape(const char *p, bset *s) {
  char e = p[1];
  if (e == 'p' || e == 'P') return bs_prop(p, s);
  if (e == 'C') {
    bs_range(s, 0, 255);
    return 2;
  }
  bset t = {{0}};
  char lower = (char)(e | 0x20);
  bs_named(&t, &lower, 1);
  if (e >= 'A' && e <= 'Z') bs_not(&t);
  bs_or(s, &t);
  return 2;
}

static void bs_char(bset *s, long v) {
  if (v < 0) return;
  if (v >= 0x80) bs_high(s);
  else bs_add(s, (unsigned)v);
}

/* Parses [...] at re[i] (the '['), adds what it may match to s, returns the index of ']'. */
static size_t parse_class(const char *re, size_t i, bset *s) {
  size_t n = strlen(re);
  int neg = 0, first = 1;
  bset c = {{0}};
  i++;
  if (re[i] == '^') neg = 1, i++;
  while (i < n && (re[i] != ']' || first)) {
    first = 0;
    long lo;
    size_t len = 1;
    if (re[i] == '[' && re[i + 1] == ':') {
      const char *q = strstr(re + i + 2, ":]");
      if (!q) break;
      int negp = re[i + 2] == '^';
      const char *nm = re + i + 2 + negp;
      bset t = {{0}};
      bs_named(&t, nm, (size_t)(q - nm));
      if (negp) bs_not(&t);
      bs_or(&c, &t);
      i = (size_t)(q - re) + 2;
      continue;
    }
    if (re[i] == '\\') {
      lo = escape_value(re + i, &len);
      if (lo < 0) {
        i += bs_class_escape(re + i, &c);
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
      if (hi < 0) hi = 0x10FFFF;
      i += len;
    }
    if (lo < 0x80) bs_range(&c, (unsigned)lo, hi < 0x7F ? (unsigned)hi : 0x7F);
    if (hi >= 0x80) bs_high(&c);
  }
  if (neg) bs_not(&c);
  bs_or(s, &c);
  return i;
}

/* Letters also match their other case; k and s also match the Kelvin and long-s signs. */
static void bs_fold(bset *s) {
  for (unsigned b = 'a'; b <= 'z'; b++)
    if (bs_has(s, b) || bs_has(s, b - 32)) bs_add(s, b), bs_add(s, b - 32);
  if (bs_has(s, 'k') || bs_has(s, 's')) bs_high(s);
}

/* One escape outside a class at re[i]: its length; sets *wordb for \b \B, *anchors for \A \z
 * \Z. */
static size_t walk_escape(const char *re, size_t i, size_t n, bset *s, int *wordb,
                          int *anchors) {
  char e = re[i + 1];
  size_t len;
  if (e == 'b' || e == 'B') {
    *wordb = 1;
    return 2;
  }
  if (e == 'A' || e == 'z' || e == 'Z') {
    *anchors = 1;
    return 2;
  }
  if (e == 'Q') {
    const char *q = strstr(re + i + 2, "\\E");
    size_t end = q ? (size_t)(q - re) : n;
    for (size_t k = i + 2; k < end; k++) bs_char(s, (unsigned char)re[k]);
    return (q ? end + 2 : n) - i;
  }
  long v = escape_value(re + i, &len);
  if (v < 0) return bs_class_escape(re + i, s);
  bs_char(s, v);
  return len;
}

/* "(?" group syntax at re[i]: its length, not text; (?x) makes white space and # comments
 * syntax too, which this walker does not follow: then *all is set. */
static size_t walk_group(const char *re, size_t i, size_t n, int *icase, int *all) {
  size_t k = i + 2;
  if (re[k] == '#') {
    while (k < n && re[k] != ')') k++;
  } else if (re[k] == 'P' || re[k] == '<' || re[k] == '\'') {
    while (k < n && re[k] != '>' && (re[k] != '\'' || k == i + 2)) k++;
  } else {
    for (; k < n && re[k] != ':' && re[k] != ')'; k++) {
      if (re[k] == 'x') *all = 1;
      if (re[k] == 'i') *icase = 1;
    }
  }
  return k - i + 1;
}

void dlp_regex_analyze(const char *re, dlp_charset *cs, int *bracket, int *wordb, int *anchors) {
  size_t n = strlen(re);
  bset s = {{0}};
  int icase = 0, all = 0;
  *wordb = *anchors = 0;
  for (size_t i = 0; i < n;) {
    char ch = re[i];
    if (ch == '\\' && i + 1 < n) {
      i += walk_escape(re, i, n, &s, wordb, anchors);
    } else if (ch == '[') {
      i = parse_class(re, i, &s) + 1;
    } else if (ch == '(' && re[i + 1] == '?') {
      i += walk_group(re, i, n, &icase, &all);
    } else if (ch == '.') {
      bs_range(&s, 0, 255);
      if (!strstr(re, "(?s") && !strstr(re, "s)") && !strstr(re, "s:")) s.w[0] &= ~(1ull << '\n');
      i++;
    } else if (ch == '{') { /* a quantifier's digits are not literals */
      size_t k = i + 1;
      while (k < n && ((re[k] >= '0' && re[k] <= '9') || re[k] == ',')) k++;
      if (re[k] == '}') i = k + 1;
      else bs_add(&s, '{'), i++;
    } else if (strchr("()|*+?^$", ch)) {
      if (ch == '^' || ch == '$') *anchors = 1;
      i++;
    } else {
      bs_char(&s, (unsigned char)ch);
      i++;
    }
  }
  if (icase) bs_fold(&s);
  if (all) *wordb = *anchors = 1, bs_range(&s, 0, 255);
  memcpy(cs->w, s.w, sizeof s.w);
  *bracket = bs_has(&s, '[') || bs_has(&s, ']');
}
