/* yaml_doc.h -- private to config/: a YAML document as a small tree of nodes that remember
 * where they were written, plus typed readers that produce "file:line:col: message" errors.
 *
 * Only the subset of YAML a configuration needs is accepted: one document, scalars, sequences
 * and mappings with scalar keys. Anchors, aliases and custom tags are rejected (an alias can
 * make a small file expand into a huge tree, and none of our files needs one), and so are
 * duplicate mapping keys (YAML forbids them; libyaml does not check). */
#ifndef AIP_CONFIG_YAML_DOC_H
#define AIP_CONFIG_YAML_DOC_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define AIP_YAML_MAX_BYTES (4u * 1024 * 1024) /* larger files are refused before parsing */
#define AIP_YAML_MAX_DEPTH 64                  /* nested sequences/mappings */
#define AIP_YAML_MAX_NODES 250000              /* ~100 bytes each: bounds memory to ~25 MB */

typedef enum aip_ynode_kind { AIP_YSCALAR = 0, AIP_YSEQ, AIP_YMAP } aip_ynode_kind;

typedef struct aip_ynode aip_ynode;
struct aip_ynode {
  aip_ynode_kind kind;
  aip_src_pos pos;
  aip_src_pos end; /* just past the node (libyaml's end mark); aip sign-policy edits by lines */
  int plain;    /* scalar written without quotes or tag: may mean null, a bool or a number */
  char *value;  /* scalar text, NUL-terminated (embedded NULs are rejected at parse time) */
  size_t len;
  aip_ynode **items; /* sequence: the items; mapping: key0, value0, key1, value1, ... */
  size_t n;          /* number of entries in items (2 per mapping pair) */
};

typedef struct aip_ydoc {
  char *file;      /* name used in messages */
  aip_ynode *root; /* NULL for an empty document */
  size_t nodes;
} aip_ydoc;

int aip_ydoc_load_file(const char *path, aip_ydoc **out, aip_error *err);
/* Reads a whole file of at most AIP_YAML_MAX_BYTES; `*out` is malloc'd (not NUL-terminated). */
int aip_read_file(const char *path, char **out, size_t *out_len, aip_error *err);
int aip_ydoc_load_string(const char *yaml, size_t len, const char *name, aip_ydoc **out,
                         aip_error *err);
void aip_ydoc_free(aip_ydoc *d);

/* Writes "file:line:col: <message>" (or "file: <message>" when n is NULL); returns -EINVAL. */
int aip_y_errf(const aip_ydoc *d, const aip_ynode *n, aip_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Quotes s for a message the way Go's %q does for ordinary text (escapes quotes, backslashes
 * and control bytes) and cuts it at ~80 bytes; returns dst. */
const char *aip_y_quote(char *dst, size_t cap, const char *s);
#define AIP_Y_QUOTE_MAX 100

/* An unquoted empty, ~, null, Null or NULL. Readers treat a null value like an absent key. */
int aip_y_is_null(const aip_ynode *n);

/* Matches the pairs of mapping `map` against `keys` (NULL-terminated): vals[i] receives the
 * value written for keys[i], or NULL. Any other key is an error at the key's position; `what`
 * names the mapping in messages ("spec", "servers.files"). A NULL or null `map` is an empty
 * mapping. */
int aip_y_fields(const aip_ydoc *d, const aip_ynode *map, const char *what,
                 const char *const *keys, const aip_ynode **vals, aip_error *err);

/* The value written for `key` in mapping `map`, or NULL. */
const aip_ynode *aip_y_get(const aip_ynode *map, const char *key);

/* Typed readers. Each one leaves *out unchanged when n is NULL or null, so callers set
 * defaults first. Strings accept any scalar (`version: 1` is "1", as Go's yaml does). */
int aip_y_str(const aip_ydoc *d, const aip_ynode *n, const char *what, char **out,
              aip_error *err);
int aip_y_bool(const aip_ydoc *d, const aip_ynode *n, const char *what, int *out, aip_error *err);
int aip_y_int(const aip_ydoc *d, const aip_ynode *n, const char *what, long long min,
              long long max, long long *out, aip_error *err);
int aip_y_size(const aip_ydoc *d, const aip_ynode *n, const char *what, uint64_t *out,
               aip_error *err);
int aip_y_duration(const aip_ydoc *d, const aip_ynode *n, const char *what, uint64_t *out_ms,
                   aip_error *err);
/* A sequence of scalars; each item is copied with its position. */
int aip_y_strlist(const aip_ydoc *d, const aip_ynode *n, const char *what, aip_strlist *out,
                  aip_error *err);
/* A mapping of scalar -> scalar, in file order. */
int aip_y_kvlist(const aip_ydoc *d, const aip_ynode *n, const char *what, aip_kvlist *out,
                 aip_error *err);
/* Checks that n is a sequence (or absent/null) and returns its items. */
int aip_y_seq(const aip_ydoc *d, const aip_ynode *n, const char *what, aip_ynode *const **items,
              size_t *count, aip_error *err);

void aip_kvlist_free(aip_kvlist *l);

#endif
