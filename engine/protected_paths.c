/* protected_paths.c -- `protected_paths` (reference/aip.md section 3.6): no tool argument may
 * name a protected file or anything below a protected folder.
 *
 * Compile time: each entry is `~`-expanded and made absolute the way Go's filepath.Abs does
 * (relative entries against the working directory, then filepath.Clean). The policy file itself
 * and the caller's extra paths (the gateway config) are always added. $HOME and the working
 * directory are read here, once, so the checks stay pure; tests and the wrapper can pin both
 * through aip_policy_opts.
 *
 * Check time, for every string in the arguments (recursively through objects and arrays), with
 * v the raw string and e = Clean(Abs(expand(v))), an entry p is hit when (the reference's rules):
 *   1. e == p or v == p;
 *   2. e lies below p (prefix p + "/");
 *   3. v contains p anywhere (substring: "cat /etc/passwd" is caught, and so is "/etc/passwdx"
 *      when "/etc/passwd" is protected -- an over-block we keep, it errs on the safe side);
 *   4. base(e) == base(p), v contains base(p), and v has a '/' or '\' or starts with '.'
 *      ("cfg/.env", "./backup/id_rsa").
 * Where the reference under-blocks we block more (docs/policy-semantics.md, "Protected paths"):
 *   - every word of v (split at white space, quotes, = ; | & ( ) < > , ` : and @) is checked
 *     with rules 1, 2 and 4 after normalization (resolve: ~, //, /./, .., /proc/<pid>/root and
 *     /cwd), also without a "//authority", under $HOME after "host:", and percent-decoded;
 *   - v is checked again as a shell or JSON decoder reads it (quotes and backslashes undone);
 *   - a word a shell would expand ($HOME, ${X}, ~user, globs, braces) is a pattern, refused when
 *     some expansion could name a protected path (pattern_hit);
 *   - object member names are checked like values (a tool taking {"<path>": "<content>"}
 *     would otherwise write any file);
 *   - `~` expansion of an entry needs a home folder: with none the policy is refused instead of
 *     protecting the literal text "~/.ssh".
 * Not covered (documented): symlinks and hard links (no I/O here), other encodings, paths
 * relative to an upstream server's own working directory when it differs from the gateway's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "engine/policy_internal.h"

#define STACK_PATH 1024
#define MAX_DEPTH 200 /* deeper than the parser allows: a hand-built tree this deep is refused */

/* Go's filepath.Clean (Unix): lexical, "." for an empty result. dst needs n + 2 bytes. */
size_t aip_path_clean(const char *p, size_t n, char *dst) {
  size_t r = 0, w = 0, dotdot = 0;
  int rooted = n > 0 && p[0] == '/';

  if (rooted) {
    dst[w++] = '/';
    r = dotdot = 1;
  }
  while (r < n) {
    if (p[r] == '/') {
      r++;
    } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
      r++;
    } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
      r += 2;
      if (w > dotdot) {
        w--;
        while (w > dotdot && dst[w] != '/')
          w--;
      } else if (!rooted) {
        if (w > 0)
          dst[w++] = '/';
        dst[w++] = '.';
        dst[w++] = '.';
        dotdot = w;
      }
    } else {
      if ((rooted && w != 1) || (!rooted && w != 0))
        dst[w++] = '/';
      for (; r < n && p[r] != '/'; r++)
        dst[w++] = p[r];
    }
  }
  if (w == 0)
    dst[w++] = '.';
  dst[w] = '\0';
  return w;
}

/* A scratch path: on the stack when it fits (the array is deliberately not zeroed: a
 * kilobyte memset per string was most of the cost of a check). */
typedef struct pathbuf {
  char stack[STACK_PATH];
  char *p;
} pathbuf;

static char *pb_get(pathbuf *b, size_t need) {
  b->p = need <= sizeof(b->stack) ? b->stack : malloc(need);
  return b->p;
}

static void pb_free(pathbuf *b) {
  if (b->p && b->p != b->stack)
    free(b->p);
  b->p = NULL;
}

/* Whether an absolute path is already what resolve would return (no "//", "/./", "/../", no
 * trailing slash, not under /proc): then it resolves to itself, with no copy. */
static int already_clean(const char *v, size_t n) {
  if (n == 0 || v[0] != '/' || (n > 1 && v[n - 1] == '/') || (n >= 6 && !memcmp(v, "/proc/", 6)))
    return 0;
  for (const char *s = memchr(v, '/', n); s; s = memchr(s + 1, '/', n - (size_t)(s + 1 - v))) {
    size_t rest = n - (size_t)(s + 1 - v);
    if (rest && s[1] == '/')
      return 0;
    if (rest && s[1] == '.' && (rest == 1 || s[2] == '/' ||
                                (s[2] == '.' && (rest == 2 || s[3] == '/'))))
      return 0;
  }
  return 1;
}

/* Length of a leading "self", "thread-self" or decimal pid element at s, else 0. */
static size_t proc_who(const char *s, size_t n) {
  size_t i = 0;
  if (n >= 11 && !memcmp(s, "thread-self", 11))
    return 11;
  if (n >= 4 && !memcmp(s, "self", 4))
    return 4;
  while (i < n && s[i] >= '0' && s[i] <= '9')
    i++;
  return i;
}

/* 'r' when the cleaned path d (length w) is /proc/<who>/root or /proc/<who>/task/<tid>/root,
 * 'c' for the same with cwd, else 0. Those are links to the process's root and working
 * folder: /proc/self/root/etc/passwd is /etc/passwd. */
static int proc_link(const char *d, size_t w) {
  size_t i = 6, k;
  if (w < 6 || memcmp(d, "/proc/", 6) || !(k = proc_who(d + i, w - i)) || (i += k) >= w ||
      d[i++] != '/')
    return 0;
  if (w - i > 5 && !memcmp(d + i, "task/", 5)) {
    for (k = i + 5; k < w && d[k] >= '0' && d[k] <= '9'; k++)
      ;
    if (k == i + 5 || k >= w || d[k] != '/')
      return 0;
    i = k + 1;
  }
  if (w - i == 4 && !memcmp(d + i, "root", 4))
    return 'r';
  return w - i == 3 && !memcmp(d + i, "cwd", 3) ? 'c' : 0;
}

/* Clean of the rooted path src into dst, element by element, where reaching a /proc link
 * restarts from / or from cwd (so "/proc/self/root/../etc" is /etc, as the kernel resolves
 * it). dst needs n + strlen(cwd) + 2 bytes; src and dst must not overlap. */
static size_t normalize(const char *src, size_t n, char *dst, const char *cwd) {
  size_t w = 1, r = 0, e;
  dst[0] = '/';
  while (r < n) {
    if (src[r] == '/') {
      r++;
      continue;
    }
    for (e = r; e < n && src[e] != '/'; e++)
      ;
    if (e - r == 1 && src[r] == '.') {
      /* nothing */
    } else if (e - r == 2 && src[r] == '.' && src[r + 1] == '.') {
      while (w > 1 && dst[w - 1] != '/')
        w--;
      if (w > 1)
        w--;
    } else {
      if (w > 1)
        dst[w++] = '/';
      memcpy(dst + w, src + r, e - r);
      w += e - r;
      int link = (e - r == 4 || e - r == 3) ? proc_link(dst, w) : 0;
      if (link == 'r' || (link == 'c' && !cwd)) {
        w = 1;
      } else if (link == 'c') {
        w = strlen(cwd);
        memcpy(dst, cwd, w);
      }
    }
    r = e;
  }
  dst[w] = '\0';
  return w;
}

/* normalize(Abs(expand(v))): *out is v itself or lands in `b` (freed by the caller with
 * pb_free). `home` NULL leaves `~` alone, as Go does when it has no home. *abs_text is set when
 * v itself was absolute (no home or working folder was put in front). Returns the length, or
 * (size_t)-1 when out of memory. */
static size_t resolve(const char *home, const char *cwd, const char *v, size_t n, pathbuf *b,
                      const char **out, int *abs_text) {
  const char *pre = "", *rest = v;
  size_t pre_n, rest_n = n, len, cwd_n = cwd ? strlen(cwd) : 0;
  char *j;

  b->p = NULL;
  *abs_text = n && v[0] == '/';
  if (home && n >= 1 && v[0] == '~' && (n == 1 || v[1] == '/')) {
    pre = home;
    rest = v + 1;
    rest_n = n - 1;
  } else if (!(n && v[0] == '/')) {
    pre = cwd ? cwd : "/";
  } else if (already_clean(v, n)) {
    *out = v;
    return n;
  }
  pre_n = strlen(pre);
  len = pre_n + rest_n + 2;
  if (!(j = pb_get(b, 2 * len + cwd_n + 2)))
    return (size_t)-1;
  memcpy(j, pre, pre_n);
  j[pre_n] = '/';
  memcpy(j + pre_n + 1, rest, rest_n);
  *out = j + len;
  return normalize(j, pre_n + 1 + rest_n, j + len, cwd);
}

static void base_of(const char *p, size_t n, const char **b, size_t *bn) {
  size_t i = n;
  while (i > 0 && p[i - 1] != '/')
    i--;
  if (i == n) { /* "/" */
    *b = p;
    *bn = n;
    return;
  }
  *b = p + i;
  *bn = n - i;
}

/* ---- compile ------------------------------------------------------------------------------- */

/* `pos` is where a policy entry was written; {0,0} for the policy file and the extras, which
 * the messages then call "protected path" and place at the file alone. */
static int add_entry(aip_pp_set *s, const char *raw, aip_src_pos pos, const aip_policy_doc *doc,
                     aip_error *err) {
  const char *what = pos.line ? "protected_paths entry" : "protected path";
  size_t n = strlen(raw), len;
  pathbuf b;
  const char *abs;
  aip_pp_entry *e;

  if (n == 0)
    return aip_policy_fail_at(err, doc, pos, "%s is empty (it would protect the whole working "
                              "directory)", what);
  if (raw[0] == '~' && n > 1 && raw[1] != '/')
    return aip_policy_fail_at(err, doc, pos, "%s \"%s\": only \"~\" and \"~/...\" are expanded, "
                              "not \"~user\"", what, raw);
  if (raw[0] == '~' && !s->home)
    return aip_policy_fail_at(err, doc, pos, "%s \"%s\" needs a home folder and $HOME is not set",
                              what, raw);
  if (raw[0] != '~' && raw[0] != '/' && !s->cwd)
    return aip_policy_fail_at(err, doc, pos, "%s \"%s\" is relative and the working directory "
                              "is unknown", what, raw);
  int abs_text;
  len = resolve(s->home, s->cwd, raw, n, &b, &abs, &abs_text);
  if (len == (size_t)-1)
    return aip_error_set(err, -ENOMEM, "out of memory");
  e = realloc(s->v, (s->n + 1) * sizeof(*s->v));
  if (e)
    s->v = e;
  if (!e || !(s->v[s->n].path = strndup(abs, len))) {
    pb_free(&b);
    return aip_error_set(err, -ENOMEM, "out of memory");
  }
  pb_free(&b);
  e = &s->v[s->n++];
  e->len = len;
  base_of(e->path, len, &e->base, &e->base_len);
  if (len > 1)
    s->second[(unsigned char)e->path[1]] = 1;
  return 0;
}

static int set_env(aip_pp_set *s, const aip_policy_opts *o, aip_error *err) {
  const char *home = o && o->home ? o->home : getenv("HOME");
  char cwd[4096];

  if (home && home[0] && !(s->home = strdup(home)))
    return aip_error_set(err, -ENOMEM, "out of memory");
  if (o && o->cwd)
    s->cwd = strdup(o->cwd);
  else if (getcwd(cwd, sizeof(cwd)))
    s->cwd = strdup(cwd);
  else
    return 0; /* unknown: relative entries are refused, relative values resolve against "/" */
  return s->cwd ? 0 : aip_error_set(err, -ENOMEM, "out of memory");
}

int aip_pp_compile(aip_pp_set *s, const aip_policy_doc *doc, const aip_policy_opts *o,
                   aip_error *err) {
  const aip_strlist *l = &doc->protected_paths;
  aip_src_pos none = {0, 0};
  int rc;

  memset(s, 0, sizeof(*s));
  if ((rc = set_env(s, o, err)))
    return rc;
  for (size_t i = 0; i < l->n; i++)
    if ((rc = add_entry(s, l->items[i], l->pos ? l->pos[i] : none, doc, err)))
      return rc;
  /* The reference protects the policy file (LoadFromFile); a policy given as a string has no
   * file, and its name is shaped "<...>". */
  if (doc->path && doc->path[0] && doc->path[0] != '<' &&
      (rc = add_entry(s, doc->path, none, doc, err)))
    return rc;
  for (size_t i = 0; o && o->extra_protected && o->extra_protected[i]; i++)
    if (o->extra_protected[i][0] && (rc = add_entry(s, o->extra_protected[i], none, doc, err)))
      return rc;
  return 0;
}

void aip_pp_free(aip_pp_set *s) {
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i].path);
  free(s->v);
  free(s->home);
  free(s->cwd);
  memset(s, 0, sizeof(*s));
}

/* ---- check: literal paths ---------------------------------------------------------------- */

/* Rules 1, 2 and 4 for the raw string v and its resolved form e (base name eb). When v was
 * absolute itself, e starting with p at all is a hit, as rule 3 does for the raw text
 * ("/etc//passwd.bak" like "/etc/passwd.bak"); a path put under $HOME or the working folder is
 * compared element-wise, so "~/.ss" stays clear of "~/.ssh". */
static int hits(const aip_pp_entry *p, const char *v, size_t vn, const char *e, size_t en,
                const char *eb, size_t ebn, int abs_text, int base_rule) {
  if ((en == p->len && memcmp(e, p->path, en) == 0) ||
      (vn == p->len && memcmp(v, p->path, vn) == 0))
    return 1;
  if (p->len == 1) /* "/" protects everything */
    return 1;
  if (en > p->len && (abs_text || e[p->len] == '/') && memcmp(e, p->path, p->len) == 0)
    return 1;
  return base_rule && ebn == p->base_len && memcmp(eb, p->base, ebn) == 0 &&
         memmem(v, vn, p->base, p->base_len) &&
         (memchr(v, '/', vn) || memchr(v, '\\', vn) || (vn && v[0] == '.'));
}

/* Rule 3: an entry anywhere inside v. Entries are absolute, so only a '/' of v can start one,
 * and only if the next byte starts some entry's first element. */
static const char *substring_hit(const aip_pp_set *s, const char *v, size_t vn) {
  for (const char *c = memchr(v, '/', vn); c; c = memchr(c + 1, '/', vn - (size_t)(c + 1 - v))) {
    size_t left = vn - (size_t)(c - v);
    if (left < 2 || !s->second[(unsigned char)c[1]])
      continue;
    for (size_t i = 0; i < s->n; i++)
      if (s->v[i].len <= left && memcmp(c, s->v[i].path, s->v[i].len) == 0)
        return s->v[i].path;
  }
  return NULL;
}

#define CHECK_WHOLE 1   /* v is a whole string: rule 3 (substring) too */
#define CHECK_NO_BASE 2 /* v was made up here (host:x read as ~/x): no rule 4, whose '/' test
                           would see our '/' */

/* The first entry that the string v (as a whole or as a word) reaches, or NULL. */
static const char *check_one(const aip_pp_set *s, const char *v, size_t vn, int flags,
                             int *nomem) {
  pathbuf b;
  const char *e, *eb, *hit = NULL;
  int abs_text;
  size_t en = resolve(s->home, s->cwd, v, vn, &b, &e, &abs_text), ebn;

  if (en == (size_t)-1) {
    *nomem = 1;
    return NULL;
  }
  base_of(e, en, &eb, &ebn);
  for (size_t i = 0; i < s->n && !hit; i++)
    if (hits(&s->v[i], v, vn, e, en, eb, ebn, abs_text, !(flags & CHECK_NO_BASE)))
      hit = s->v[i].path;
  if (!hit && (flags & CHECK_WHOLE))
    hit = substring_hit(s, v, vn);
  pb_free(&b);
  return hit;
}

/* ---- check: shell words that expand ------------------------------------------------------ */

#define ANY '\x01'   /* in a pattern: a variable or ~user ($HOME, ${X}): any text */
#define STAR2 '\x02' /* "**" or a brace group holding a '/': any text, '/' included */
/* Longest brace group or bracket expression taken as one: longer ones are read as literal
 * text, which keeps adversarial strings ("{{{{...") linear. */
#define GROUP_MAX 256

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Where the bracket expression starting at pat[i] == '[' ends (index of ']'), or 0. */
static size_t class_end(const char *pat, size_t pn, size_t i) {
  size_t k = i + 1;
  if (k < pn && (pat[k] == '!' || pat[k] == '^'))
    k++;
  if (k < pn && pat[k] == ']')
    k++;
  while (k < pn && k - i < GROUP_MAX && pat[k] != ']' && pat[k] != '/')
    k++;
  return k < pn && pat[k] == ']' ? k : 0;
}

static int class_match(const char *pat, size_t i, size_t end, char c) {
  int neg = pat[i + 1] == '!' || pat[i + 1] == '^', in = 0;
  for (size_t k = i + 1 + (size_t)neg; k < end; k++) {
    if (k + 2 < end && pat[k + 1] == '-') {
      in |= c >= pat[k] && c <= pat[k + 2];
      k += 2;
    } else {
      in |= c == pat[k];
    }
  }
  return in != neg;
}

/* Whether glob `pat` can produce a text that starts with `txt`: with `boundary`, txt must end
 * where the produced text ends or at a '/' of it (element-wise); without, anywhere (rule 3's
 * over-block). '*', '?' and classes stay inside one element, ANY crosses them. The pattern is
 * run as a set of positions in txt (O(pattern x text), no backtracking). cur and nxt hold
 * tn + 1 bytes each. */
static int glob_reaches(const char *pat, size_t pn, const char *txt, size_t tn, int boundary,
                        unsigned char *cur, unsigned char *nxt) {
  memset(cur, 0, tn + 1);
  cur[0] = 1;
  for (size_t i = 0;; i++) {
    int any = 0;
    if (cur[tn] && (!boundary || i == pn || pat[i] == '/'))
      return 1;
    if (i == pn)
      return 0;
    char c = pat[i];
    size_t end = c == '[' ? class_end(pat, pn, i) : 0;
    memset(nxt, 0, tn + 1);
    for (size_t j = 0; j <= tn; j++) {
      if (c == '*' || c == ANY || c == STAR2) {
        nxt[j] = cur[j] || (j > 0 && nxt[j - 1] && (c != '*' || txt[j - 1] != '/'));
      } else if (j < tn && cur[j]) {
        if (c == '?')
          nxt[j + 1] |= txt[j] != '/';
        else if (end)
          nxt[j + 1] |= txt[j] != '/' && class_match(pat, i, end, txt[j]);
        else
          nxt[j + 1] |= txt[j] == c;
      }
      any |= nxt[j];
    }
    if (end)
      i = end;
    memcpy(cur, nxt, tn + 1);
    if (!any)
      return 0;
  }
}

/* Whether the element of a pattern pat[a..b) names something: a byte that is not a wildcard.
 * "*" or "?" alone could be any file and proves nothing on its own. */
static int has_literal(const char *pat, size_t a, size_t b) {
  for (size_t i = a; i < b; i++) {
    size_t end = pat[i] == '[' ? class_end(pat, b, i) : 0;
    if (end)
      i = end;
    else if (pat[i] != '*' && pat[i] != '?' && pat[i] != ANY && pat[i] != STAR2)
      return 1;
  }
  return 0;
}

/* Whether a pattern has a byte other than wildcards, '/', '.' and a leading '~'. */
static int names_something(const char *pat, size_t pn) {
  for (size_t i = pat[0] == '~' ? 1 : 0; i < pn; i++) {
    size_t end = pat[i] == '[' ? class_end(pat, pn, i) : 0;
    if (end)
      i = end;
    else if (!strchr("*?./", pat[i]) && pat[i] != ANY && pat[i] != STAR2)
      return 1;
  }
  return 0;
}

/* A byte of a shell variable name ([A-Za-z_][A-Za-z0-9_]*). */
static int name_byte(char c, int digits_too) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (digits_too && c >= '0' && c <= '9');
}

/* The glob form of a shell word into out (capacity n + 1): $NAME, $N, ${...} and ~user become
 * ANY, a brace group {a,b} becomes '*' (STAR2 when it holds a '/'), "**" becomes STAR2
 * (bash's globstar), other globs stay. Returns 1 when
 * the word has anything a shell would expand. */
static int shell_pattern(const char *t, size_t n, char *out, size_t *on) {
  size_t i = 0, o = 0;
  int expands = 0;

  if (n > 1 && t[0] == '~' && t[1] != '/') { /* ~user, ~+, ~- */
    while (i < n && t[i] != '/')
      i++;
    out[o++] = ANY;
    expands = 1;
  }
  while (i < n) {
    char c = t[i];
    if (c == '$' && i + 1 < n && t[i + 1] == '{') {
      const char *close = memchr(t + i, '}', n - i);
      i = close ? (size_t)(close - t) + 1 : n;
      out[o++] = ANY;
      expands = 1;
    } else if (c == '$' && i + 1 < n && name_byte(t[i + 1], 0)) {
      for (i++; i < n && name_byte(t[i], 1); i++)
        ;
      out[o++] = ANY;
      expands = 1;
    } else if (c == '$' && i + 1 < n && strchr("0123456789@*#?$!-", t[i + 1])) {
      i += 2;
      out[o++] = ANY;
      expands = 1;
    } else if (c == '{') {
      size_t depth = 0, k = i, slash = 0, comma = 0;
      for (; k < n && k - i < GROUP_MAX; k++) {
        depth += t[k] == '{';
        slash |= t[k] == '/';
        comma |= t[k] == ',' || (t[k] == '.' && k + 1 < n && t[k + 1] == '.');
        if (t[k] == '}' && --depth == 0)
          break;
      }
      if (k < n && k - i < GROUP_MAX && comma) {
        out[o++] = slash ? STAR2 : '*';
        expands = 1;
        i = k + 1;
      } else {
        out[o++] = t[i++];
      }
    } else {
      expands |= c == '*' || c == '?' || (c == '[' && class_end(t, n, i));
      if (c == '*' && o && (out[o - 1] == '*' || out[o - 1] == STAR2)) { /* globstar ** */
        out[o - 1] = STAR2;
        i++;
      } else {
        out[o++] = t[i++];
      }
    }
  }
  out[o] = '\0';
  *on = o;
  return expands;
}

/* Whether the elements of r (a rooted, cleaned pattern) begin with the last k elements of
 * entry p for some k, with a named element among those matched: "$X/.ssh/id_rsa" and
 * "~root/.ssh" reach ~/.ssh whatever $X or root's home is; "$X/x" does not. */
static int tail_hits(const char *r, size_t rn, const aip_pp_entry *p, unsigned char *cur,
                     unsigned char *nxt) {
  size_t k = 0;
  for (size_t start = p->len; start > 0;) {
    start--;
    while (start > 0 && p->path[start] != '/')
      start--;
    k++; /* p->path + start is "/" and the last k elements */
    int named = 0;
    for (size_t a = 1, e, seen = 0; a < rn && seen < k; a = e + 1, seen++) {
      for (e = a; e < rn && r[e] != '/'; e++)
        ;
      named |= has_literal(r, a, e);
    }
    if (named && glob_reaches(r, rn, p->path + start, p->len - start, 1, cur, nxt))
      return 1;
  }
  return 0;
}

/* A word a shell would expand is refused when some expansion could name a protected path
 * (docs/policy-semantics.md, "Shell words"). */
static const char *pattern_hit(const aip_pp_set *s, const char *t, size_t n, int *nomem) {
  pathbuf pb, ab, tb;
  char *pat, *r;
  size_t pn, rn, maxlen = 0, pre_n;
  const char *hit = NULL, *last_any, *pre;
  unsigned char *st;

  if (!memchr(t, '$', n) && !memchr(t, '*', n) && !memchr(t, '?', n) && !memchr(t, '[', n) &&
      !memchr(t, '{', n) && !(n > 1 && t[0] == '~' && t[1] != '/'))
    return NULL;
  for (size_t i = 0; i < s->n; i++)
    maxlen = s->v[i].len > maxlen ? s->v[i].len : maxlen;
  pb.p = ab.p = tb.p = NULL;
  if (!(pat = pb_get(&pb, n + 1)) || !(st = (unsigned char *)pb_get(&tb, 2 * maxlen + 2))) {
    *nomem = 1;
    goto out;
  }
  if (!shell_pattern(t, n, pat, &pn))
    goto out;
  last_any = NULL;
  for (size_t i = 0; i < pn; i++)
    if (pat[i] == ANY)
      last_any = pat + i;
  if (last_any) { /* free text in front: compare the elements after it with entries' tails */
    const char *a = last_any;
    while (a > pat && a[-1] != '/')
      a--;
    rn = pn - (size_t)(a - pat);
    if (!(r = pb_get(&ab, 2 * rn + 4))) {
      *nomem = 1;
      goto out;
    }
    r[0] = '/';
    for (size_t i = 0; i < rn; i++)
      r[i + 1] = a[i] == ANY ? '*' : a[i];
    rn = aip_path_clean(r, rn + 1, r);
    for (size_t i = 0; i < s->n && !hit; i++)
      if (tail_hits(r, rn, &s->v[i], st, st + maxlen + 1))
        hit = s->v[i].path;
    pb_free(&ab);
  }
  /* anchored: absolute, under ~, or a relative word that looks like a path; and naming
   * something: a word of wildcards, dots and slashes alone (the two halves of a C comment in
   * file contents, "../" followed by a star) is not matched */
  if (!hit && names_something(pat, pn) &&
      (pat[0] == '/' || (pat[0] == '~' && (pn == 1 || pat[1] == '/')) ||
       (pat[0] != ANY && (memchr(pat, '/', pn) || pat[0] == '.')))) {
    int abs_text = pat[0] == '/';
    pre = abs_text ? "" : pat[0] == '~' ? (s->home ? s->home : "/") : (s->cwd ? s->cwd : "/");
    const char *rest = pat[0] == '~' ? pat + 1 : pat;
    pre_n = strlen(pre);
    rn = pre_n + 1 + pn;
    if (!(r = pb_get(&ab, rn + 2))) {
      *nomem = 1;
      goto out;
    }
    memcpy(r, pre, pre_n);
    r[pre_n] = '/';
    /* here a variable stands for one element: "/home/$USER/src" is not "/home/u/.ssh/src" */
    for (size_t i = 0; i < pn - (size_t)(rest - pat); i++)
      r[pre_n + 1 + i] = rest[i] == ANY ? '*' : rest[i];
    rn = aip_path_clean(r, pre_n + 1 + pn - (size_t)(rest - pat), r);
    const char *lb = r + rn;
    while (lb > r && lb[-1] != '/')
      lb--;
    for (size_t i = 0; i < s->n && !hit; i++) {
      const aip_pp_entry *p = &s->v[i];
      if (glob_reaches(r, rn, p->path, p->len, !abs_text, st, st + maxlen + 1))
        hit = p->path;
      /* rule 4 for a pattern: its last element matches the entry's base name */
      else if (!abs_text && pat[0] != '~' && has_literal(lb, 0, (size_t)(r + rn - lb)) &&
               glob_reaches(lb, (size_t)(r + rn - lb), p->base, p->base_len, 1, st,
                            st + maxlen + 1))
        hit = p->path;
    }
  }
out:
  pb_free(&pb);
  pb_free(&ab);
  pb_free(&tb);
  return hit;
}

/* ---- check: words of a string -------------------------------------------------------------- */

/* Word separators: white space, quotes, = ; | & ( ) < > , ` and the : and @ of URIs, scp's
 * user@host:path and curl's @file. */
static const unsigned char sep_table[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1, ['"'] = 1,
    ['\''] = 1, ['`'] = 1, ['='] = 1, [';'] = 1, ['|'] = 1, ['&'] = 1, ['('] = 1, [')'] = 1,
    ['<'] = 1, ['>'] = 1, [','] = 1, [':'] = 1, ['@'] = 1,
};
#define is_sep(c) (sep_table[(unsigned char)(c)])

/* %XX decoded (file URIs), into out (capacity n + 1). */
static size_t percent_decode(const char *t, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int h, l;
    if (t[i] == '%' && i + 2 < n && (h = hexval(t[i + 1])) >= 0 && (l = hexval(t[i + 2])) >= 0) {
      out[o++] = (char)(h * 16 + l);
      i += 2;
    } else {
      out[o++] = t[i];
    }
  }
  out[o] = '\0';
  return o;
}

/* v as a shell or a JSON decoder would read it: quotes removed, \x read as x, and \uXXXX
 * (JSON text inside a string, as in {"p":"\/etc\/passwd"}) decoded. Into out (n + 1). */
static size_t dequote(const char *v, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int a, b, c, d;
    if (v[i] == '"' || v[i] == '\'')
      continue;
    if (v[i] != '\\' || i + 1 == n) {
      out[o++] = v[i];
    } else if (v[i + 1] == 'u' && i + 5 < n && (a = hexval(v[i + 2])) >= 0 &&
               (b = hexval(v[i + 3])) >= 0 && (c = hexval(v[i + 4])) >= 0 &&
               (d = hexval(v[i + 5])) >= 0 && !a && !b && (c * 16 + d) < 0x80 && c * 16 + d) {
      out[o++] = (char)(c * 16 + d); /* ASCII only: the rest cannot spell a separator */
      i += 5;
    } else {
      out[o++] = v[++i];
    }
  }
  out[o] = '\0';
  return o;
}

/* One word t (prev: the separator in front of it, 0 at the start). Besides the word itself:
 * "//host/path" without its authority (file://localhost/..., scheme://host/...), a relative
 * path after "host:" also under $HOME (scp and rsync read it there), the word percent-decoded,
 * and its shell expansions. */
static const char *check_word(const aip_pp_set *s, const char *t, size_t tn, char prev,
                              int *nomem) {
  const char *hit = check_one(s, t, tn, 0, nomem);
  pathbuf b;

  if (!hit && !*nomem && tn > 2 && t[0] == '/' && t[1] == '/' && t[2] != '/') {
    const char *p = memchr(t + 2, '/', tn - 2);
    if (p)
      hit = check_one(s, p, tn - (size_t)(p - t), 0, nomem);
  }
  if (!hit && !*nomem && prev == ':' && t[0] != '/' && t[0] != '~') {
    char *h = pb_get(&b, tn + 3);
    if (!h) {
      *nomem = 1;
      return NULL;
    }
    h[0] = '~';
    h[1] = '/';
    memcpy(h + 2, t, tn);
    hit = check_one(s, h, tn + 2, CHECK_NO_BASE, nomem);
    pb_free(&b);
  }
  if (!hit && !*nomem && memchr(t, '%', tn)) {
    char *d = pb_get(&b, tn + 1);
    if (!d) {
      *nomem = 1;
      return NULL;
    }
    size_t dn = percent_decode(t, tn, d);
    hit = check_one(s, d, dn, 0, nomem);
    if (!hit && !*nomem && dn > 2 && d[0] == '/' && d[1] == '/' && d[2] != '/') {
      const char *p = memchr(d + 2, '/', dn - 2);
      if (p)
        hit = check_one(s, p, dn - (size_t)(p - d), 0, nomem);
    }
    pb_free(&b);
  }
  if (!hit && !*nomem)
    hit = pattern_hit(s, t, tn, nomem);
  return hit;
}

/* The end of the word starting at v[i]: the next separator, except inside a brace group
 * ({a,b} is one word to a shell). */
static size_t word_end(const char *v, size_t vn, size_t i) {
  while (i < vn && !is_sep(v[i])) {
    if (v[i] == '{') {
      size_t k = i, depth = 0;
      for (; k < vn && k - i < GROUP_MAX && !(v[k] == ' ' || v[k] == '\t' || v[k] == '\n');
           k++) {
        if (v[k] == '{')
          depth++;
        else if (v[k] == '}' && --depth == 0)
          break;
      }
      if (k < vn && k - i < GROUP_MAX && v[k] == '}')
        i = k;
    }
    i++;
  }
  return i;
}

static const char *check_text(const aip_pp_set *s, const char *v, size_t vn, int *nomem) {
  const char *hit = check_one(s, v, vn, CHECK_WHOLE, nomem);
  size_t i = 0;

  while (!hit && !*nomem && i < vn) {
    size_t a;
    while (i < vn && is_sep(v[i]))
      i++;
    a = i;
    i = word_end(v, vn, i);
    if (i > a)
      hit = check_word(s, v + a, i - a, a ? v[a - 1] : 0, nomem);
  }
  return hit;
}

static const char *check_string(const aip_pp_set *s, const char *v, size_t vn, int *nomem) {
  const char *hit = check_text(s, v, vn, nomem);
  pathbuf b;

  if (!hit && !*nomem && (memchr(v, '\\', vn) || memchr(v, '"', vn) || memchr(v, '\'', vn))) {
    char *d = pb_get(&b, vn + 1);
    if (!d) {
      *nomem = 1;
      return NULL;
    }
    hit = check_text(s, d, dequote(v, vn, d), nomem);
    pb_free(&b);
  }
  return hit;
}

static const char *walk(const aip_pp_set *s, const cJSON *v, int depth, int *nomem) {
  const char *hit = NULL;

  if (depth > MAX_DEPTH)
    return s->v[0].path; /* refuse rather than skip what was not looked at */
  if (cJSON_IsString(v) && v->valuestring)
    return check_string(s, v->valuestring, strlen(v->valuestring), nomem);
  if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
    return NULL;
  for (const cJSON *c = v->child; c && !hit && !*nomem; c = c->next) {
    if (cJSON_IsObject(v) && c->string)
      hit = check_string(s, c->string, strlen(c->string), nomem);
    if (!hit && !*nomem)
      hit = walk(s, c, depth + 1, nomem);
  }
  return hit;
}

const char *aip_pp_check(const aip_pp_set *s, const cJSON *args, int *nomem) {
  *nomem = 0;
  if (!s->n || !args)
    return NULL;
  return walk(s, args, 0, nomem);
}
