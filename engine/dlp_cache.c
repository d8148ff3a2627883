/* dlp_cache.c -- serialized Hyperscan databases, so a restart or reload skips the compile.
 *
 * Compiling hundreds of rules takes seconds; deserializing their databases takes well under a
 * millisecond (docs/dlp.md). The blob is a cache, never a source of truth: it is keyed by a
 * hash of the Hyperscan version, the (generic) platform and every input that shapes the
 * databases, and it also carries those inputs in full, compared byte for byte on load, so a
 * hash collision or a stale or truncated file is just a miss. The engine does no I/O: the
 * caller's callbacks move the bytes (gateway/dlp_cache.c keeps them in a directory).
 *
 * Blob: "AIPDLPC2" | material (u32 len + bytes) | per rule: min, max (u32), dropped (u8) |
 *       warnings (u32 count, then u32 len + bytes each) | per view: block, gated, stream | per view,
 *       per rule of the view: its "solo" database (mostly none). A database is u64 len +
 *       hs_serialize_database bytes, len 0 = none. Host byte order: the cache is local.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dlp_internal.h"

static const char magic[8] = {'A', 'I', 'P', 'D', 'L', 'P', 'C', '2'};

/* Everything the databases depend on: engine version, platform, rules (name, expression,
 * flags, scopes, and whether PCRE2 already refused it), which views and modes are built. */
static int material(const aip_dlp *d, int with_stream, aip_buf *m) {
  int err = aip_buf_printf(m, "hs=%s;platform=generic;stream=%d;req=%d;n=%zu;", hs_version(),
                           with_stream, d->scan_requests, d->n);
  for (size_t i = 0; i < d->n && !err; i++) {
    const dlp_rule *r = &d->rules[i];
    err = aip_buf_printf(m, "%zu:%s%c%zu:%s%c%u,%u,%d;", strlen(r->name), r->name, 0,
                         strlen(r->hs_expr), r->hs_expr, 0, r->hs_flags, r->scopes,
                         r->dropped == 1);
  }
  return err;
}

static void cache_key(const aip_buf *m, char key[40]) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a: only names the file, the content is checked */
  for (size_t i = 0; i < m->len; i++) h = (h ^ (unsigned char)m->data[i]) * 1099511628211ull;
  snprintf(key, 40, "dlp-%016llx.hsdb", (unsigned long long)h);
}

static int put(aip_buf *b, const void *p, size_t n) { return aip_buf_append(b, p, n); }
static int put32(aip_buf *b, uint32_t v) { return put(b, &v, 4); }
static int put64(aip_buf *b, uint64_t v) { return put(b, &v, 8); }

static int put_db(aip_buf *b, const hs_database_t *db) {
  char *bytes = NULL;
  size_t len = 0;
  if (db && hs_serialize_database(db, &bytes, &len) != HS_SUCCESS) return -ENOMEM;
  int err = put64(b, len);
  if (!err && len) err = put(b, bytes, len);
  free(bytes);
  return err;
}

void dlp_cache_store(const aip_dlp *d, const aip_dlp_cache_io *io, int with_stream) {
  aip_buf m, b;
  aip_buf_init(&m);
  aip_buf_init(&b);
  char key[40];
  int err = material(d, with_stream, &m);
  if (!err) {
    cache_key(&m, key);
    err = put(&b, magic, sizeof magic);
  }
  if (!err) err = put32(&b, (uint32_t)m.len);
  if (!err) err = put(&b, m.data, m.len);
  for (size_t i = 0; i < d->n && !err; i++) {
    err = put32(&b, d->rules[i].min_width);
    if (!err) err = put32(&b, d->rules[i].max_width);
    if (!err) err = put(&b, &(uint8_t){(uint8_t)d->rules[i].dropped}, 1);
  }
  if (!err) err = put32(&b, (uint32_t)(d->nwarn - d->hs_warn_from));
  for (size_t i = d->hs_warn_from; i < d->nwarn && !err; i++) {
    err = put32(&b, (uint32_t)strlen(d->warnings[i]));
    if (!err) err = put(&b, d->warnings[i], strlen(d->warnings[i]));
  }
  for (int vi = 0; vi < 2 && !err; vi++) {
    err = put_db(&b, d->view[vi].block);
    if (!err) err = put_db(&b, d->view[vi].gated);
    if (!err) err = put_db(&b, d->view[vi].stream);
  }
  for (int vi = 0; vi < 2 && !err; vi++) {
    const dlp_view *v = &d->view[vi];
    for (size_t j = 0; dlp_view_ready(v) && j < v->n && !err; j++)
      err = put_db(&b, v->solo ? v->solo[j] : NULL);
  }
  if (!err) io->store(io->ctx, key, b.data, b.len);
  aip_buf_free(&m);
  aip_buf_free(&b);
}

/* ---- load ----------------------------------------------------------------------------------- */

typedef struct rd {
  const unsigned char *p;
  size_t n, at;
  int bad;
} rd;

static const void *take(rd *r, size_t k) {
  if (r->bad || k > r->n - r->at) {
    r->bad = 1;
    return NULL;
  }
  const void *p = r->p + r->at;
  r->at += k;
  return p;
}

static uint32_t get32(rd *r) {
  uint32_t v = 0;
  const void *p = take(r, 4);
  if (p) memcpy(&v, p, 4);
  return v;
}

static uint64_t get64(rd *r) {
  uint64_t v = 0;
  const void *p = take(r, 8);
  if (p) memcpy(&v, p, 8);
  return v;
}

static int get_db(rd *r, hs_database_t **db) {
  uint64_t len = get64(r);
  if (r->bad || len == 0) return r->bad ? -EINVAL : 0;
  const char *p = take(r, len);
  if (!p || hs_deserialize_database(p, len, db) != HS_SUCCESS) return -EINVAL;
  return 0;
}

static int add_warning_copy(aip_dlp *d, const char *p, size_t n) {
  char **w = realloc(d->warnings, (d->nwarn + 1) * sizeof *w);
  if (!w) return -ENOMEM;
  d->warnings = w;
  if (!(w[d->nwarn] = strndup(p, n))) return -ENOMEM;
  d->nwarn++;
  return 0;
}

static int parse(aip_dlp *d, rd *r, const aip_buf *m) {
  const void *mg = take(r, sizeof magic);
  if (!mg || memcmp(mg, magic, sizeof magic)) return -EINVAL;
  uint32_t ml = get32(r);
  const void *mp = take(r, ml);
  if (!mp || ml != m->len || memcmp(mp, m->data, ml)) return -EINVAL;
  for (size_t i = 0; i < d->n; i++) {
    d->rules[i].min_width = get32(r);
    d->rules[i].max_width = get32(r);
    const uint8_t *dr = take(r, 1);
    if (dr) d->rules[i].dropped = *dr;
  }
  uint32_t nw = get32(r);
  d->hs_warn_from = d->nwarn;
  for (uint32_t i = 0; i < nw && !r->bad; i++) {
    uint32_t len = get32(r);
    const char *w = take(r, len);
    if (w && add_warning_copy(d, w, len)) return -ENOMEM;
  }
  for (int vi = 0; vi < 2; vi++) {
    int err = get_db(r, &d->view[vi].block);
    if (!err) err = get_db(r, &d->view[vi].gated);
    if (!err) err = get_db(r, &d->view[vi].stream);
    if (err) return err;
  }
  return r->bad ? -EINVAL : 0;
}

/* Rebuilds the views' rule lists (from the scopes and the dropped flags) around the loaded
 * databases; a count that disagrees with the database means a bad blob. */
static int rebuild_views(aip_dlp *d, rd *r) {
  static const unsigned scope[2] = {DLP_SCOPE_RESPONSE, DLP_SCOPE_REQUEST};
  for (int vi = 0; vi < 2; vi++) {
    dlp_view *v = &d->view[vi];
    if (!v->block && !v->gated) continue;
    int err = dlp_view_collect(d, v, scope[vi]);
    if (!err) err = dlp_view_react(d, v);
    if (!err && !(v->solo = calloc(v->n ? v->n : 1, sizeof *v->solo))) err = -ENOMEM;
    for (size_t j = 0; j < v->n && !err; j++) err = get_db(r, &v->solo[j]);
    if (err) return err;
  }
  return r->bad || r->at != r->n ? -EINVAL : 0;
}

static void unload(aip_dlp *d) {
  for (int vi = 0; vi < 2; vi++) {
    for (size_t j = 0; d->view[vi].solo && j < d->view[vi].n; j++)
      hs_free_database(d->view[vi].solo[j]);
    free(d->view[vi].solo);
    d->view[vi].solo = NULL;
    hs_free_database(d->view[vi].block);
    hs_free_database(d->view[vi].gated);
    hs_free_database(d->view[vi].stream);
    d->view[vi].block = d->view[vi].gated = d->view[vi].stream = NULL;
  }
  while (d->nwarn > d->hs_warn_from) free(d->warnings[--d->nwarn]);
  for (size_t i = 0; i < d->n; i++)
    if (d->rules[i].dropped == 2) d->rules[i].dropped = 0;
}

int dlp_cache_load(aip_dlp *d, const aip_dlp_cache_io *io, int with_stream) {
  aip_buf m;
  aip_buf_init(&m);
  char key[40];
  void *blob = NULL;
  size_t len = 0;
  int err = material(d, with_stream, &m);
  if (!err) {
    cache_key(&m, key);
    err = io->load(io->ctx, key, &blob, &len) ? -ENOENT : 0;
  }
  rd r = {blob, len, 0, 0};
  if (!err) err = parse(d, &r, &m);
  if (!err) err = rebuild_views(d, &r);
  if (err) unload(d);
  free(blob);
  aip_buf_free(&m);
  return err;
}
