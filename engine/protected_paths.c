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
 * Where the reference under-blocks we block more (docs/policy-semantics.md):
 *   - every shell-like word of v (split at white space, quotes, = ; | & ( ) < > , and `) is also
 *     checked with rules 1, 2 and 4, so "cat ~/.ssh/id_rsa", "cat .env" and
 *     "less ./a/../.ssh/id_rsa" are caught (the reference expands `~` and cleans `..` only when
 *     they start the whole string);
 *   - object member names are checked like values (a tool taking {"<path>": "<content>"}
 *     would otherwise write any file);
 *   - `~` expansion of an entry needs a home folder: with none the policy is refused instead of
 *     protecting the literal text "~/.ssh".
 * Not covered (documented): symlinks and hard links (no I/O here), percent-encoded or otherwise
 * transformed paths, paths relative to an upstream server's own working directory when it
 * differs from the gateway's.
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

/* Whether an absolute path is already what Clean would return (no "//", "/./", "/../", no
 * trailing slash): then it resolves to itself, with no copy. */
static int already_clean(const char *v, size_t n) {
  if (n == 0 || v[0] != '/' || (n > 1 && v[n - 1] == '/'))
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

/* Clean(Abs(expand(v))): *out is v itself or lands in `b` (freed by the caller with pb_free).
 * `home` NULL leaves `~` alone, as Go does when it has no home. Returns the length, or
 * (size_t)-1 when out of memory. */
static size_t resolve(const char *home, const char *cwd, const char *v, size_t n, pathbuf *b,
                      const char **out) {
  const char *pre = "", *rest = v;
  size_t pre_n, rest_n = n, len;
  char *j;

  b->p = NULL;
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
  if (!(j = pb_get(b, pre_n + rest_n + 3)))
    return (size_t)-1;
  memcpy(j, pre, pre_n);
  len = pre_n;
  if (pre_n)
    j[len++] = '/';
  memcpy(j + len, rest, rest_n);
  len += rest_n;
  *out = j;
  return aip_path_clean(j, len, j); /* in place: Clean never writes ahead of its read */
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
  len = resolve(s->home, s->cwd, raw, n, &b, &abs);
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

/* ---- check --------------------------------------------------------------------------------- */

/* Rules 1, 2 and 4 for the raw string v and its resolved form e (base name eb). */
static int hits(const aip_pp_entry *p, const char *v, size_t vn, const char *e, size_t en,
                const char *eb, size_t ebn) {
  if ((en == p->len && memcmp(e, p->path, en) == 0) ||
      (vn == p->len && memcmp(v, p->path, vn) == 0))
    return 1;
  if (p->len == 1) /* "/" protects everything */
    return 1;
  if (en > p->len && e[p->len] == '/' && memcmp(e, p->path, p->len) == 0)
    return 1;
  return ebn == p->base_len && memcmp(eb, p->base, ebn) == 0 &&
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

/* The first entry that the string v (as a whole or as a word) reaches, or NULL. */
static const char *check_one(const aip_pp_set *s, const char *v, size_t vn, int whole,
                             int *nomem) {
  pathbuf b;
  const char *e, *eb, *hit = NULL;
  size_t en = resolve(s->home, s->cwd, v, vn, &b, &e), ebn;

  if (en == (size_t)-1) {
    *nomem = 1;
    return NULL;
  }
  base_of(e, en, &eb, &ebn);
  for (size_t i = 0; i < s->n && !hit; i++)
    if (hits(&s->v[i], v, vn, e, en, eb, ebn))
      hit = s->v[i].path;
  if (!hit && whole)
    hit = substring_hit(s, v, vn);
  pb_free(&b);
  return hit;
}

/* Word separators of shell-like text: white space, quotes, = ; | & ( ) < > , and `. */
static const unsigned char sep_table[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1, ['"'] = 1,
    ['\''] = 1, ['`'] = 1, ['='] = 1, [';'] = 1, ['|'] = 1, ['&'] = 1, ['('] = 1, [')'] = 1,
    ['<'] = 1, ['>'] = 1, [','] = 1,
};
#define is_sep(c) (sep_table[(unsigned char)(c)])

static const char *check_string(const aip_pp_set *s, const char *v, size_t vn, int *nomem) {
  const char *hit = check_one(s, v, vn, 1, nomem);
  size_t i = 0;

  while (!hit && !*nomem && i < vn) {
    size_t a;
    while (i < vn && is_sep(v[i]))
      i++;
    a = i;
    while (i < vn && !is_sep(v[i]))
      i++;
    if (i > a && i - a < vn) /* a word that is not the whole string */
      hit = check_one(s, v + a, i - a, 0, nomem);
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
