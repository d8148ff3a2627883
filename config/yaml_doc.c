/* yaml_doc.c -- libyaml events -> a tree of positioned nodes, and the typed readers that the
 * policy and gateway configurators use so that every error names its file, line and column.
 *
 * We build our own small tree instead of using libyaml's document API because that API keeps
 * aliases, tags and styles we do not want, and because the readers below need only "what was
 * written where". */
#include "config/yaml_doc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

typedef struct ybuild {
  aip_ydoc *doc;
  aip_ynode *stack[AIP_YAML_MAX_DEPTH];
  int depth;
  int documents;
  aip_error *err;
} ybuild;

static void node_free(aip_ynode *n) {
  if (!n) return;
  for (size_t i = 0; i < n->n; i++) node_free(n->items[i]);
  free(n->items);
  free(n->value);
  free(n);
}

static int mark_errf(const ybuild *b, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int mark_errf(const ybuild *b, yaml_mark_t m, const char *fmt, ...) {
  char msg[AIP_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return aip_error_set(b->err, -EINVAL, "%s:%zu:%zu: %s", b->doc->file, m.line + 1, m.column + 1,
                       msg);
}

/* Our readers decide types themselves, so only the standard tags that do not change meaning
 * are allowed; a custom tag (`!secret ...`) most likely expects a feature we do not have. */
static int check_props(const ybuild *b, yaml_mark_t m, const yaml_char_t *anchor,
                       const yaml_char_t *tag, const char *const *ok_tags) {
  if (anchor) return mark_errf(b, m, "YAML anchors and aliases are not supported");
  if (!tag) return 0;
  if (strcmp((const char *)tag, "!") == 0) return 0;
  for (size_t i = 0; ok_tags[i]; i++) {
    if (strncmp((const char *)tag, YAML_TAG_PREFIX, strlen(YAML_TAG_PREFIX)) == 0 &&
        strcmp((const char *)tag + strlen(YAML_TAG_PREFIX), ok_tags[i]) == 0)
      return 0;
  }
  return mark_errf(b, m, "unsupported YAML tag \"%s\"", (const char *)tag);
}

static int key_cmp(const void *a, const void *b) {
  const aip_ynode *x = *(aip_ynode *const *)a, *y = *(aip_ynode *const *)b;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  int c = memcmp(x->value, y->value, x->len);
  if (c) return c;
  if (x->pos.line != y->pos.line) return x->pos.line < y->pos.line ? -1 : 1;
  return (x->pos.col > y->pos.col) - (x->pos.col < y->pos.col);
}

/* Sorting the keys makes the check O(n log n), so a hostile 4 MiB mapping stays cheap; ties are
 * ordered by position so the error points at the second occurrence. */
static int check_duplicate_keys(const ybuild *b, const aip_ynode *map) {
  size_t pairs = map->n / 2;
  if (pairs < 2) return 0;
  aip_ynode **keys = malloc(pairs * sizeof *keys);
  if (!keys) return aip_error_set(b->err, -ENOMEM, "%s: out of memory", b->doc->file);
  for (size_t i = 0; i < pairs; i++) keys[i] = map->items[2 * i];
  qsort(keys, pairs, sizeof *keys, key_cmp);
  int rc = 0;
  for (size_t i = 1; i < pairs && !rc; i++) {
    if (keys[i]->len == keys[i - 1]->len &&
        memcmp(keys[i]->value, keys[i - 1]->value, keys[i]->len) == 0) {
      char q[AIP_Y_QUOTE_MAX];
      rc = aip_y_errf(b->doc, keys[i], b->err, "duplicate key %s (first written at line %d)",
                      aip_y_quote(q, sizeof q, keys[i]->value), keys[i - 1]->pos.line);
    }
  }
  free(keys);
  return rc;
}

/* Attaches a new node to the open collection (or makes it the root). */
static int attach(ybuild *b, aip_ynode *n, yaml_mark_t m) {
  if (b->doc->nodes >= AIP_YAML_MAX_NODES) {
    node_free(n);
    return mark_errf(b, m, "document has more than %d nodes", AIP_YAML_MAX_NODES);
  }
  b->doc->nodes++;
  if (b->depth == 0) {
    b->doc->root = n;
    return 0;
  }
  aip_ynode *parent = b->stack[b->depth - 1];
  if (parent->kind == AIP_YMAP && parent->n % 2 == 0 && n->kind != AIP_YSCALAR) {
    node_free(n);
    return mark_errf(b, m, "mapping keys must be plain strings");
  }
  if ((parent->n & (parent->n - 1)) == 0) { /* grow at powers of two */
    size_t cap = parent->n ? parent->n * 2 : 4;
    aip_ynode **items = realloc(parent->items, cap * sizeof *items);
    if (!items) {
      node_free(n);
      return aip_error_set(b->err, -ENOMEM, "%s: out of memory", b->doc->file);
    }
    parent->items = items;
  }
  parent->items[parent->n++] = n;
  return 0;
}

static aip_ynode *node_new(ybuild *b, aip_ynode_kind kind, yaml_mark_t m) {
  aip_ynode *n = calloc(1, sizeof *n);
  if (!n) {
    aip_error_set(b->err, -ENOMEM, "%s: out of memory", b->doc->file);
    return NULL;
  }
  n->kind = kind;
  n->pos.line = (int)m.line + 1;
  n->pos.col = (int)m.column + 1;
  return n;
}

static int on_scalar(ybuild *b, const yaml_event_t *ev) {
  static const char *const ok_tags[] = {"str", "int", "bool", "null", "float", NULL};
  int rc = check_props(b, ev->start_mark, ev->data.scalar.anchor, ev->data.scalar.tag, ok_tags);
  if (rc) return rc;
  size_t len = ev->data.scalar.length;
  if (memchr(ev->data.scalar.value, 0, len))
    return mark_errf(b, ev->start_mark, "NUL bytes are not allowed in values");
  aip_ynode *n = node_new(b, AIP_YSCALAR, ev->start_mark);
  if (!n) return -ENOMEM;
  n->value = malloc(len + 1);
  if (!n->value) {
    free(n);
    return aip_error_set(b->err, -ENOMEM, "%s: out of memory", b->doc->file);
  }
  memcpy(n->value, ev->data.scalar.value, len);
  n->value[len] = '\0';
  n->len = len;
  /* A tagged scalar (`!!str 5`) is never a plain null/bool/int candidate. */
  n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
  n->end.line = (int)ev->end_mark.line + 1;
  n->end.col = (int)ev->end_mark.column + 1;
  return attach(b, n, ev->start_mark);
}

static int on_collection_start(ybuild *b, const yaml_event_t *ev, aip_ynode_kind kind) {
  static const char *const ok_tags[] = {"seq", "map", NULL};
  const yaml_char_t *anchor, *tag;
  if (kind == AIP_YSEQ) {
    anchor = ev->data.sequence_start.anchor;
    tag = ev->data.sequence_start.tag;
  } else {
    anchor = ev->data.mapping_start.anchor;
    tag = ev->data.mapping_start.tag;
  }
  int rc = check_props(b, ev->start_mark, anchor, tag, ok_tags);
  if (rc) return rc;
  if (b->depth >= AIP_YAML_MAX_DEPTH)
    return mark_errf(b, ev->start_mark, "nesting deeper than %d levels", AIP_YAML_MAX_DEPTH);
  aip_ynode *n = node_new(b, kind, ev->start_mark);
  if (!n) return -ENOMEM;
  rc = attach(b, n, ev->start_mark);
  if (rc) return rc;
  b->stack[b->depth++] = n;
  return 0;
}

static int on_event(ybuild *b, const yaml_event_t *ev) {
  switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
      if (++b->documents > 1)
        return mark_errf(b, ev->start_mark, "only one YAML document per file is supported");
      return 0;
    case YAML_ALIAS_EVENT:
      return mark_errf(b, ev->start_mark, "YAML anchors and aliases are not supported");
    case YAML_SCALAR_EVENT:
      return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
      return on_collection_start(b, ev, AIP_YSEQ);
    case YAML_MAPPING_START_EVENT:
      return on_collection_start(b, ev, AIP_YMAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
      aip_ynode *n = b->stack[--b->depth];
      n->end.line = (int)ev->end_mark.line + 1;
      n->end.col = (int)ev->end_mark.column + 1;
      return n->kind == AIP_YMAP ? check_duplicate_keys(b, n) : 0;
    }
    default:
      return 0;
  }
}

static int syntax_error(const ybuild *b, const yaml_parser_t *p) {
  if (p->error == YAML_MEMORY_ERROR)
    return aip_error_set(b->err, -ENOMEM, "%s: out of memory", b->doc->file);
  const char *problem = p->problem ? p->problem : "syntax error";
  if (p->error == YAML_READER_ERROR) /* the reader reports a byte offset, not a mark */
    return aip_error_set(b->err, -EINVAL, "%s: invalid YAML: %s at byte %zu", b->doc->file,
                         problem, p->problem_offset);
  if (p->context)
    return mark_errf(b, p->problem_mark, "invalid YAML: %s %s", problem, p->context);
  return mark_errf(b, p->problem_mark, "invalid YAML: %s", problem);
}

static int parse(aip_ydoc *d, const char *yaml, size_t len, aip_error *err) {
  ybuild b = {.doc = d, .err = err};
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return aip_error_set(err, -ENOMEM, "%s: out of memory", d->file);
  yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
  int rc = 0, done = 0;
  while (!rc && !done) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      rc = syntax_error(&b, &p);
      break;
    }
    done = ev.type == YAML_STREAM_END_EVENT;
    rc = on_event(&b, &ev);
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  return rc;
}

int aip_ydoc_load_string(const char *yaml, size_t len, const char *name, aip_ydoc **out,
                         aip_error *err) {
  *out = NULL;
  if (!name) name = "<inline>";
  if (len > AIP_YAML_MAX_BYTES)
    return aip_error_set(err, -EFBIG, "%s: larger than %u bytes", name, AIP_YAML_MAX_BYTES);
  aip_ydoc *d = calloc(1, sizeof *d);
  if (!d || !(d->file = strdup(name))) {
    free(d);
    return aip_error_set(err, -ENOMEM, "%s: out of memory", name);
  }
  int rc = parse(d, yaml ? yaml : "", yaml ? len : 0, err);
  if (rc) {
    aip_ydoc_free(d);
    return rc;
  }
  *out = d;
  return 0;
}

/* Reads the whole file; the size limit is checked on what is actually read, since fstat can
 * lie for pipes and /proc files. */
int aip_read_file(const char *path, char **out, size_t *out_len, aip_error *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return aip_error_set(err, -e, "%s: cannot open: %s", path, strerror(e));
  }
  size_t cap = 64 * 1024, len = 0;
  char *buf = malloc(cap);
  int rc = buf ? 0 : aip_error_set(err, -ENOMEM, "%s: out of memory", path);
  while (!rc) {
    if (len == cap) {
      if (cap > AIP_YAML_MAX_BYTES) {
        rc = aip_error_set(err, -EFBIG, "%s: larger than %u bytes", path, AIP_YAML_MAX_BYTES);
        break;
      }
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        rc = aip_error_set(err, -ENOMEM, "%s: out of memory", path);
        break;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      rc = aip_error_set(err, -e, "%s: cannot read: %s", path, strerror(e));
    } else if (r == 0) {
      break;
    } else {
      len += (size_t)r;
    }
  }
  close(fd);
  if (!rc && len > AIP_YAML_MAX_BYTES)
    rc = aip_error_set(err, -EFBIG, "%s: larger than %u bytes", path, AIP_YAML_MAX_BYTES);
  if (rc) {
    free(buf);
    return rc;
  }
  *out = buf;
  *out_len = len;
  return 0;
}

int aip_ydoc_load_file(const char *path, aip_ydoc **out, aip_error *err) {
  *out = NULL;
  char *buf = NULL;
  size_t len = 0;
  int rc = aip_read_file(path, &buf, &len, err);
  if (rc) return rc;
  rc = aip_ydoc_load_string(buf, len, path, out, err);
  free(buf);
  return rc;
}

void aip_ydoc_free(aip_ydoc *d) {
  if (!d) return;
  node_free(d->root);
  free(d->file);
  free(d);
}

/* ---- messages ------------------------------------------------------------------------------ */

int aip_y_errf(const aip_ydoc *d, const aip_ynode *n, aip_error *err, const char *fmt, ...) {
  char msg[AIP_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n && n->pos.line > 0)
    return aip_error_set(err, -EINVAL, "%s:%d:%d: %s", d->file, n->pos.line, n->pos.col, msg);
  return aip_error_set(err, -EINVAL, "%s: %s", d->file, msg);
}

const char *aip_y_quote(char *dst, size_t cap, const char *s) {
  size_t o = 0;
  if (cap < 16) {
    if (cap) dst[0] = '\0';
    return dst;
  }
  dst[o++] = '"';
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (o + 8 >= cap || o > 80) { /* leave room for the escape, the ellipsis and the quote */
      memcpy(dst + o, "...", 3);
      o += 3;
      break;
    }
    if (c == '"' || c == '\\') {
      dst[o++] = '\\';
      dst[o++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
    } else {
      dst[o++] = (char)c;
    }
  }
  dst[o++] = '"';
  dst[o] = '\0';
  return dst;
}

static const char *kind_name(const aip_ynode *n) {
  if (n->kind == AIP_YMAP) return "a mapping";
  if (n->kind == AIP_YSEQ) return "a list";
  return "a scalar";
}

/* ---- readers ------------------------------------------------------------------------------- */

int aip_y_is_null(const aip_ynode *n) {
  if (!n || n->kind != AIP_YSCALAR || !n->plain) return 0;
  return n->len == 0 || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
         strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0;
}

static int absent(const aip_ynode *n) { return !n || aip_y_is_null(n); }

/* Levenshtein distance, capped: only used to suggest the intended key after a typo. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 99;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static int unknown_key(const aip_ydoc *d, const aip_ynode *key, const char *what,
                       const char *const *keys, aip_error *err) {
  const char *best = NULL;
  size_t best_d = 3; /* suggest only close matches: at most 2 edits, fewer than the length */
  for (size_t i = 0; keys[i]; i++) {
    size_t dist = edit_distance(key->value, keys[i]);
    if (dist < best_d && dist < strlen(keys[i])) {
      best_d = dist;
      best = keys[i];
    }
  }
  char q[AIP_Y_QUOTE_MAX];
  aip_y_quote(q, sizeof q, key->value);
  if (best)
    return aip_y_errf(d, key, err, "unknown key %s in %s (did you mean \"%s\"?)", q, what, best);
  return aip_y_errf(d, key, err, "unknown key %s in %s", q, what);
}

int aip_y_fields(const aip_ydoc *d, const aip_ynode *map, const char *what,
                 const char *const *keys, const aip_ynode **vals, aip_error *err) {
  size_t nkeys = 0;
  while (keys[nkeys]) vals[nkeys++] = NULL;
  if (absent(map)) return 0;
  if (map->kind != AIP_YMAP)
    return aip_y_errf(d, map, err, "%s: expected a mapping, got %s", what, kind_name(map));
  for (size_t i = 0; i + 1 < map->n; i += 2) {
    const aip_ynode *k = map->items[i];
    size_t j = 0;
    while (j < nkeys && strcmp(keys[j], k->value) != 0) j++;
    if (j == nkeys) return unknown_key(d, k, what, keys, err);
    vals[j] = map->items[i + 1];
  }
  return 0;
}

const aip_ynode *aip_y_get(const aip_ynode *map, const char *key) {
  if (!map || map->kind != AIP_YMAP) return NULL;
  for (size_t i = 0; i + 1 < map->n; i += 2)
    if (strcmp(map->items[i]->value, key) == 0) return map->items[i + 1];
  return NULL;
}

static int expect_scalar(const aip_ydoc *d, const aip_ynode *n, const char *what,
                         const char *type, aip_error *err) {
  if (n->kind == AIP_YSCALAR) return 0;
  return aip_y_errf(d, n, err, "%s: expected %s, got %s", what, type, kind_name(n));
}

int aip_y_str(const aip_ydoc *d, const aip_ynode *n, const char *what, char **out,
              aip_error *err) {
  if (absent(n)) return 0;
  int rc = expect_scalar(d, n, what, "a string", err);
  if (rc) return rc;
  char *s = strdup(n->value);
  if (!s) return aip_error_set(err, -ENOMEM, "out of memory");
  free(*out);
  *out = s;
  return 0;
}

int aip_y_bool(const aip_ydoc *d, const aip_ynode *n, const char *what, int *out,
               aip_error *err) {
  if (absent(n)) return 0;
  if (n->kind == AIP_YSCALAR && n->plain && strcmp(n->value, "true") == 0) {
    *out = 1;
    return 0;
  }
  if (n->kind == AIP_YSCALAR && n->plain && strcmp(n->value, "false") == 0) {
    *out = 0;
    return 0;
  }
  if (n->kind == AIP_YSCALAR) {
    char q[AIP_Y_QUOTE_MAX];
    return aip_y_errf(d, n, err, "%s: expected a boolean (true or false), got %s", what,
                      aip_y_quote(q, sizeof q, n->value));
  }
  return aip_y_errf(d, n, err, "%s: expected a boolean (true or false), got %s", what,
                    kind_name(n));
}

int aip_y_int(const aip_ydoc *d, const aip_ynode *n, const char *what, long long min,
              long long max, long long *out, aip_error *err) {
  if (absent(n)) return 0;
  int rc = expect_scalar(d, n, what, "an integer", err);
  if (rc) return rc;
  const char *s = n->value;
  int neg = *s == '-';
  if (*s == '-' || *s == '+') s++;
  long long v = 0;
  int ok = n->plain && *s != '\0';
  for (; ok && *s; s++) {
    if (*s < '0' || *s > '9' || v > (9223372036854775807LL - (*s - '0')) / 10) ok = 0;
    else v = v * 10 + (*s - '0');
  }
  if (neg) v = -v;
  char q[AIP_Y_QUOTE_MAX];
  if (!ok)
    return aip_y_errf(d, n, err, "%s: expected an integer, got %s", what,
                      aip_y_quote(q, sizeof q, n->value));
  if (v < min || v > max)
    return aip_y_errf(d, n, err, "%s: %lld is out of range (%lld to %lld)", what, v, min, max);
  *out = v;
  return 0;
}

int aip_y_size(const aip_ydoc *d, const aip_ynode *n, const char *what, uint64_t *out,
               aip_error *err) {
  if (absent(n)) return 0;
  int rc = expect_scalar(d, n, what, "a size such as \"4MiB\"", err);
  if (rc) return rc;
  if (aip_parse_size(n->value, out) == 0) return 0;
  char q[AIP_Y_QUOTE_MAX];
  return aip_y_errf(d, n, err,
                    "%s: invalid size %s: expected bytes or a number with B, KB, KiB, MB, MiB, "
                    "GB or GiB",
                    what, aip_y_quote(q, sizeof q, n->value));
}

int aip_y_duration(const aip_ydoc *d, const aip_ynode *n, const char *what, uint64_t *out_ms,
                   aip_error *err) {
  if (absent(n)) return 0;
  int rc = expect_scalar(d, n, what, "a duration such as \"60s\"", err);
  if (rc) return rc;
  if (aip_parse_duration_ms(n->value, out_ms) == 0) return 0;
  char q[AIP_Y_QUOTE_MAX];
  return aip_y_errf(d, n, err,
                    "%s: invalid duration %s: expected numbers with units ms, s, m, h or d "
                    "(e.g. \"90s\", \"1m30s\")",
                    what, aip_y_quote(q, sizeof q, n->value));
}

int aip_y_seq(const aip_ydoc *d, const aip_ynode *n, const char *what, aip_ynode *const **items,
              size_t *count, aip_error *err) {
  *items = NULL;
  *count = 0;
  if (absent(n)) return 0;
  if (n->kind != AIP_YSEQ)
    return aip_y_errf(d, n, err, "%s: expected a list, got %s", what, kind_name(n));
  *items = n->items;
  *count = n->n;
  return 0;
}

int aip_y_strlist(const aip_ydoc *d, const aip_ynode *n, const char *what, aip_strlist *out,
                  aip_error *err) {
  aip_ynode *const *items;
  size_t count;
  int rc = aip_y_seq(d, n, what, &items, &count, err);
  if (rc || absent(n)) return rc;
  for (size_t i = 0; i < count; i++) {
    if (items[i]->kind != AIP_YSCALAR || aip_y_is_null(items[i]))
      return aip_y_errf(d, items[i], err, "%s: expected a list of strings, got %s", what,
                        aip_y_is_null(items[i]) ? "an empty item" : kind_name(items[i]));
  }
  aip_strlist_free(out);
  if (count == 0) return 0;
  out->items = calloc(count, sizeof *out->items);
  out->pos = calloc(count, sizeof *out->pos);
  if (!out->items || !out->pos) {
    aip_strlist_free(out);
    return aip_error_set(err, -ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < count; i++, out->n++) {
    out->items[i] = strdup(items[i]->value);
    out->pos[i] = items[i]->pos;
    if (!out->items[i]) {
      aip_strlist_free(out);
      return aip_error_set(err, -ENOMEM, "out of memory");
    }
  }
  return 0;
}

int aip_y_kvlist(const aip_ydoc *d, const aip_ynode *n, const char *what, aip_kvlist *out,
                 aip_error *err) {
  if (absent(n)) return 0;
  if (n->kind != AIP_YMAP)
    return aip_y_errf(d, n, err, "%s: expected a mapping, got %s", what, kind_name(n));
  for (size_t i = 1; i < n->n; i += 2) {
    if (n->items[i]->kind != AIP_YSCALAR || aip_y_is_null(n->items[i]))
      return aip_y_errf(d, n->items[i], err, "%s.%s: expected a string, got %s", what,
                        n->items[i - 1]->value,
                        aip_y_is_null(n->items[i]) ? "nothing" : kind_name(n->items[i]));
  }
  aip_kvlist_free(out);
  size_t pairs = n->n / 2;
  if (pairs == 0) return 0;
  out->items = calloc(pairs, sizeof *out->items);
  if (!out->items) return aip_error_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; i < pairs; i++, out->n++) {
    out->items[i].key = strdup(n->items[2 * i]->value);
    out->items[i].value = strdup(n->items[2 * i + 1]->value);
    if (!out->items[i].key || !out->items[i].value) {
      out->n++;
      aip_kvlist_free(out);
      return aip_error_set(err, -ENOMEM, "out of memory");
    }
  }
  return 0;
}

void aip_strlist_free(aip_strlist *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
  free(l->pos);
  l->items = NULL;
  l->pos = NULL;
  l->n = 0;
}

void aip_kvlist_free(aip_kvlist *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++) {
    free(l->items[i].key);
    free(l->items[i].value);
  }
  free(l->items);
  l->items = NULL;
  l->n = 0;
}
