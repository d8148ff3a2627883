/* dlp_redact.c -- redacting one decoded string with AIP's exact semantics.
 *
 * The AIP reference (aip-go pkg/dlp Redact) applies each pattern in policy order to the text
 * the earlier ones left, replacing all leftmost non-overlapping matches with the literal
 * "[REDACTED:<name>]" and counting them. We get the same output at Hyperscan speed:
 *   - one Hyperscan scan of the text says which rules can match it at all (clean text, the
 *     common case, ends here);
 *   - only those rules run, in policy order, with PCRE2 (same leftmost-first semantics as Go's
 *     RE2 for the syntax Hyperscan accepts), each on the current text;
 *   - after a replacement, a rule that did not fire could match only around the new
 *     placeholder. dlp_compile.c marks the rules for which that is possible at all ("react");
 *     before running one of those we rescan the current text with Hyperscan, so the set of
 *     rules to run stays exact. With ordinary rules no rescan happens.
 * The text is tracked as pieces (runs of the original, or inserted bytes) so that the caller
 * can copy untouched original bytes, escapes included, into the output.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dlp_internal.h"
#include "engine/engine_internal.h"

/* ---- Hyperscan ---------------------------------------------------------------------------- */

typedef struct scan_ctx {
  aip_dlp_scratch *s;
  size_t base; /* offset of the scanned window in the text */
  long id;     /* >= 0: a solo database, whose only id (0) is this rule position */
  size_t seg;  /* gated scan of s->seg runs: the run of the last match end (they ascend) */
  int gated;
} scan_ctx;

static int fired_cb(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                    void *ctx) {
  scan_ctx *c = ctx;
  if (c->id >= 0) id = (unsigned)c->id;
  if (c->gated) { /* a match ends in the run holding its last byte */
    const dlp_seg *g = c->s->seg;
    while (c->seg > 0 && g[c->seg].at >= to) c->seg--;
    while (c->seg + 1 < c->s->nseg && g[c->seg + 1].at < to) c->seg++;
    c->base = g[c->seg].text - g[c->seg].at;
  }
  dlp_ends *e = &c->s->ends[id];
  c->s->fired[id >> 6] |= 1ull << (id & 63);
  if (e->over) return 0;
  if (e->n == e->cap) {
    uint32_t cap = e->cap ? e->cap * 2 : 16;
    uint32_t *v = cap <= DLP_ENDS_MAX ? realloc(e->v, cap * sizeof *v) : NULL;
    if (!v) {
      e->over = 1; /* too many (or no memory): search this rule in full */
      return 0;
    }
    e->v = v, e->cap = cap;
  }
  e->v[e->n++] = (uint32_t)(to + c->base);
  return 0;
}

int dlp_hs_scan(const dlp_view *v, aip_dlp_scratch *s, const char *p, size_t len) {
  size_t words = (v->n + 63) / 64;
  memset(s->fired, 0, words * sizeof *s->fired);
  for (size_t k = 0; k < v->n; k++) s->ends[k].n = 0, s->ends[k].over = 0;
  if (len > UINT32_MAX) return -E2BIG;
  scan_ctx c = {s, 0, -1, 0, 0};
  s->hs_bytes[0] += len;
  hs_error_t e = v->block ? hs_scan(v->block, p, (unsigned)len, 0, s->hs, fired_cb, &c)
                          : HS_SUCCESS;
  if (e == HS_SUCCESS && v->gated) {
    const char *runs = NULL;
    size_t n = dlp_gate_runs(v, s, p, len, &runs);
    if (n == (size_t)-1) return -ENOMEM;
    if (n > UINT32_MAX) return -E2BIG; /* the runs plus a separator each */
    scan_ctx g = {s, 0, -1, 0, 1};
    if (n) e = hs_scan(v->gated, runs, (unsigned)n, 0, s->hs, fired_cb, &g);
  }
  if (e != HS_SUCCESS) return e == HS_NOMEM ? -ENOMEM : -EINVAL;
  int n = 0;
  for (size_t w = 0; w < words; w++) n += __builtin_popcountll(s->fired[w]);
  return n;
}

static int fired(const aip_dlp_scratch *s, size_t k) { return (s->fired[k >> 6] >> (k & 63)) & 1; }

/* After a replacement only matches that touch a new placeholder can be new, and a bounded rule's
 * match lies within its width of it: scanning those windows is enough. `id` >= 0 scans a solo
 * database (one rule) instead of the view's; `fresh` only around placeholders no shared rescan
 * covered yet. */
static int scan_windows(hs_database_t *db, long id, size_t radius, int fresh,
                        aip_dlp_scratch *s, const char *p, size_t len) {
  size_t ws = 0, we = 0;
  int open = 0;
  for (size_t i = 0; i <= s->nph; i++) {
    size_t a = 0, b = 0;
    if (i < s->nph) {
      if (fresh && !s->ph[i].fresh) continue;
      a = s->ph[i].start > radius ? s->ph[i].start - radius : 0;
      b = s->ph[i].end + radius < len ? s->ph[i].end + radius : len;
      if (open && a <= we) {
        if (b > we) we = b;
        continue;
      }
    }
    if (open && db) {
      scan_ctx c = {s, ws, id, 0, 0};
      s->hs_bytes[id < 0 ? 1 : 2] += we - ws;
      if (hs_scan(db, p + ws, (unsigned)(we - ws), 0, s->hs, fired_cb, &c) != HS_SUCCESS)
        return -EINVAL;
    }
    ws = a, we = b, open = 1;
  }
  return 0;
}

/* Windows add ends out of order, and twice. */
static void sort_ends(dlp_ends *e) {
  uint32_t m = 0;
  for (uint32_t i = 0; i < e->n; i++) { /* insertion: the list is nearly sorted */
    uint32_t x = e->v[i], j = m;
    while (j > 0 && e->v[j - 1] > x) j--;
    if (j > 0 && e->v[j - 1] == x) continue;
    memmove(e->v + j + 1, e->v + j, (m - j) * sizeof *e->v);
    e->v[j] = x;
    m++;
  }
  e->n = m;
}

static int cmp_ph(const void *a, const void *b) {
  const dlp_ph *x = a, *y = b;
  return (x->start > y->start) - (x->start < y->start);
}

/* Before rule position k runs, after replacements, make what we know about it exact again:
 * narrow rules share one windowed rescan with the whole set around the placeholders no such
 * rescan covered yet; a wide rule is rescanned alone, once, around every placeholder (or, when
 * unbounded, everywhere); with no database of its own, everything is rescanned. */
static int rescan(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, size_t k,
                  const dlp_text *t) {
  int rc = 0;
  if (v->react[k] == 1 && s->nfresh) {
    s->rescans++;
    rc = scan_windows(v->block, -1, (size_t)v->react_w + 1, 1, s, t->p, t->len);
    if (!rc) rc = scan_windows(v->gated, -1, (size_t)v->react_w + 1, 1, s, t->p, t->len);
    for (size_t i = 0; i < s->nph; i++) s->ph[i].fresh = 0;
    s->nfresh = 0;
    for (size_t j = 0; !rc && j < v->n; j++) sort_ends(&s->ends[j]);
    return rc;
  }
  if (v->react[k] != 2 || !s->nph) return 0;
  s->rescans++;
  uint32_t w = d->rules[v->idx[k]].max_width;
  if (!v->solo[k]) {
    s->hs_bytes[3] += t->len;
    rc = dlp_hs_scan(v, s, t->p, t->len) < 0 ? -EINVAL : 0;
    s->nph = s->nfresh = 0; /* everything is exact again */
    return rc;
  }
  if (w != DLP_UNBOUNDED) {
    rc = scan_windows(v->solo[k], (long)k, (size_t)w + 1, 0, s, t->p, t->len);
  } else {
    s->fired[k >> 6] &= ~(1ull << (k & 63));
    s->ends[k].n = 0, s->ends[k].over = 0;
    scan_ctx c = {s, 0, (long)k, 0, 0};
    s->hs_bytes[2] += t->len;
    if (hs_scan(v->solo[k], t->p, (unsigned)t->len, 0, s->hs, fired_cb, &c) != HS_SUCCESS)
      rc = -EINVAL;
  }
  sort_ends(&s->ends[k]);
  return rc;
}

/* Keeps match ends and new-placeholder spans of the text current through one replace-all of
 * spans `sp` (old offsets) by `lit` bytes: offsets after a span move by the size change, an
 * offset inside one moves to the end of its placeholder. */
static size_t map_off(size_t x, const dlp_span *sp, size_t nsp, size_t lit, size_t *j,
                      int64_t *delta) {
  for (; *j < nsp && sp[*j].end <= x; (*j)++)
    *delta += (int64_t)lit - (int64_t)(sp[*j].end - sp[*j].start);
  if (*j < nsp && sp[*j].start < x) return (size_t)((int64_t)sp[*j].start + *delta) + lit;
  return (size_t)((int64_t)x + *delta);
}

static int track(const dlp_view *v, aip_dlp_scratch *s, size_t k0, const dlp_span *sp,
                 size_t nsp, size_t lit) {
  for (size_t k = k0; k < v->n; k++) {
    dlp_ends *e = &s->ends[k];
    size_t j = 0;
    int64_t delta = 0;
    for (uint32_t i = 0; !e->over && i < e->n; i++)
      e->v[i] = (uint32_t)map_off(e->v[i], sp, nsp, lit, &j, &delta);
  }
  size_t j = 0, m = 0;
  int64_t delta = 0;
  s->nfresh = 0;
  for (size_t i = 0; i < s->nph; i++) { /* old placeholders a replacement swallowed disappear */
    dlp_ph ph = s->ph[i];
    while (j < nsp && sp[j].end <= ph.start)
      delta += (int64_t)lit - (int64_t)(sp[j].end - sp[j].start), j++;
    if (j < nsp && sp[j].start < ph.end) continue;
    size_t a = (size_t)((int64_t)ph.start + delta);
    s->ph[m++] = (dlp_ph){a, a + (ph.end - ph.start), ph.fresh};
    s->nfresh += (size_t)ph.fresh;
  }
  s->nph = m;
  if (s->nph + nsp > s->phcap) {
    size_t cap = (s->nph + nsp) * 2;
    dlp_ph *nv = realloc(s->ph, cap * sizeof *nv);
    if (!nv) return -ENOMEM;
    s->ph = nv, s->phcap = cap;
  }
  delta = 0;
  for (size_t i = 0; i < nsp; i++) {
    size_t a = (size_t)((int64_t)sp[i].start + delta);
    s->ph[s->nph++] = (dlp_ph){a, a + lit, 1};
    delta += (int64_t)lit - (int64_t)(sp[i].end - sp[i].start);
  }
  s->nfresh += nsp;
  if (s->nph) qsort(s->ph, s->nph, sizeof *s->ph, cmp_ph);
  return 0;
}

/* ---- pieces --------------------------------------------------------------------------------- */

void dlp_text_init(dlp_ws *ws, dlp_text *t, const char *p, size_t len) {
  ws->one = (dlp_piece){(uint32_t)len, 0};
  t->p = p;
  t->len = len;
  t->pc = &ws->one;
  t->npc = len ? 1 : 0;
}

typedef struct pcur {
  const dlp_piece *pc;
  size_t i;
  uint32_t off;
} pcur;

static int push_piece(dlp_ws *ws, int k, size_t *n, uint32_t len, int32_t orig) {
  if (!len) return 0;
  dlp_piece *v = ws->pc[k];
  if (*n) {
    dlp_piece *last = &v[*n - 1];
    if ((orig >= 0 && last->orig >= 0 && last->orig + (int64_t)last->len == orig) ||
        (orig < 0 && last->orig < 0)) {
      last->len += len;
      return 0;
    }
  }
  if (*n == ws->pccap[k]) {
    size_t cap = ws->pccap[k] ? ws->pccap[k] * 2 : 16;
    dlp_piece *nv = realloc(v, cap * sizeof *v);
    if (!nv) return -ENOMEM; /* the old array stays in ws->pc[k], freed with the scratch */
    ws->pc[k] = v = nv;
    ws->pccap[k] = cap;
  }
  v[(*n)++] = (dlp_piece){len, orig};
  return 0;
}

/* Moves the cursor over `len` bytes of the source text, copying their pieces when `copy`. */
static int walk(dlp_ws *ws, int k, size_t *n, pcur *c, size_t len, int copy) {
  while (len) {
    const dlp_piece *p = &c->pc[c->i];
    uint32_t take = p->len - c->off < len ? p->len - c->off : (uint32_t)len;
    if (copy) {
      int err = push_piece(ws, k, n, take, p->orig >= 0 ? p->orig + (int32_t)c->off : -1);
      if (err) return err;
    }
    c->off += take;
    len -= take;
    if (c->off == p->len) c->i++, c->off = 0;
  }
  return 0;
}

int dlp_text_replace(dlp_ws *ws, dlp_text *t, const dlp_span *sp, size_t nsp, const char *lit,
                     size_t litlen) {
  int k = t->p == ws->buf[0].data ? 1 : 0; /* write into the buffer t does not live in */
  aip_buf *o = &ws->buf[k];
  aip_buf_reset(o);
  int err = aip_buf_reserve(o, t->len + nsp * litlen);
  if (err) return err;
  size_t n = 0, pos = 0;
  pcur c = {t->pc, 0, 0};
  for (size_t i = 0; i < nsp && !err; i++) {
    aip_buf_append(o, t->p + pos, sp[i].start - pos);
    err = walk(ws, k, &n, &c, sp[i].start - pos, 1);
    aip_buf_append(o, lit, litlen);
    if (!err) err = push_piece(ws, k, &n, (uint32_t)litlen, -1);
    if (!err) err = walk(ws, k, &n, &c, sp[i].end - sp[i].start, 0);
    pos = sp[i].end;
  }
  if (err) return err;
  aip_buf_append(o, t->p + pos, t->len - pos);
  err = walk(ws, k, &n, &c, t->len - pos, 1);
  if (err) return err;
  if (o->len > INT32_MAX) return -E2BIG;
  t->p = o->data;
  t->len = o->len;
  t->pc = ws->pc[k];
  t->npc = n;
  return 0;
}

/* ---- one rule ----------------------------------------------------------------------------- */

static size_t char_len(const char *p, size_t len, size_t at) {
  if (at >= len) return 1;
  unsigned char c = (unsigned char)p[at];
  size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  return at + k <= len ? k : len - at;
}

int dlp_rule_find(const dlp_rule *r, aip_dlp_scratch *s, const char *p, size_t len, size_t from,
                  dlp_span *m, size_t *next) {
  while (from <= len) {
    int rc = pcre2_match(r->re, (PCRE2_SPTR)p, len, from, PCRE2_NO_UTF_CHECK, s->md, s->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) return -E2BIG; /* match, depth, heap or JIT stack limit */
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
    size_t ms = ov[0], me = ov[1], ss = ms, se = me;
    if (r->group > 0 && rc > r->group && ov[2 * r->group] != PCRE2_UNSET)
      ss = ov[2 * r->group], se = ov[2 * r->group + 1];
    if (me > ms && se > ss && (!r->validate || r->validate(p + ss, se - ss))) {
      *m = (dlp_span){ss, se};
      *next = me;
      return 1;
    }
    /* empty, or refused by the validator: a real one may start inside it */
    if (ms >= len) return 0;
    from = ms + char_len(p, len, ms);
  }
  return 0;
}

static int push_span(aip_dlp_scratch *s, dlp_span m) {
  if (s->nspans == s->spancap) {
    size_t cap = s->spancap ? s->spancap * 2 : 16;
    dlp_span *v = realloc(s->spans, cap * sizeof *v);
    if (!v) return -ENOMEM;
    s->spans = v;
    s->spancap = cap;
  }
  s->spans[s->nspans++] = m;
  return 0;
}

/* Where PCRE2 may start looking: a match starting at or after `from` ends at (or, for a rule
 * with a prefilter, after) a reported end `e` beyond `from`; so it starts no earlier than its
 * width before e, nor before the run of bytes the rule can consume that leads up to e. With no
 * end left there is no match left: returns SIZE_MAX. */
static size_t search_from(const dlp_rule *r, const dlp_ends *e, const dlp_text *t, size_t from,
                          uint32_t *cur) {
  if (e->over) return from;
  while (*cur < e->n && e->v[*cur] <= from) (*cur)++;
  if (*cur == e->n) return SIZE_MAX;
  size_t end = e->v[*cur] < t->len ? e->v[*cur] : t->len, lb = from;
  if (r->max_width != DLP_UNBOUNDED && end > lb + r->max_width) lb = end - r->max_width;
  if (!r->all_chars) {
    size_t q = end;
    while (q > lb && ((r->chars.w[(unsigned char)t->p[q - 1] >> 6] >>
                       ((unsigned char)t->p[q - 1] & 63)) & 1))
      q--;
    lb = q;
  }
  return lb;
}

/* Go's ReplaceAllString with a literal: all leftmost non-overlapping matches. When PCRE2 hits
 * a limit the whole text is replaced instead (fail closed) and counted once. */
static int apply_rule(const aip_dlp *d, const dlp_view *v, size_t k, aip_dlp_scratch *s,
                      dlp_ws *ws, dlp_text *t, aip_dlp_counts *c) {
  const dlp_rule *r = &d->rules[v->idx[k]];
  size_t from = 0;
  uint32_t cur = 0;
  s->nspans = 0;
  for (;;) {
    dlp_span m;
    size_t next, at = search_from(r, &s->ends[k], t, from, &cur);
    if (at == SIZE_MAX) break;
    int rc = dlp_rule_find(r, s, t->p, t->len, at, &m, &next);
    if (rc == 0) break;
    if (rc < 0) {
      s->nspans = 0;
      rc = push_span(s, (dlp_span){0, t->len});
      if (c) c->flags |= AIP_DLP_F_FALLBACK;
      if (rc) return rc;
      break;
    }
    if ((rc = push_span(s, m))) return rc;
    from = next;
    if (from >= t->len) break;
  }
  if (!s->nspans) return 0;
  dlp_counts_add(c, v->idx[k], (uint32_t)s->nspans);
  int err = track(v, s, k + 1, s->spans, s->nspans, r->ph_len);
  if (!err) err = dlp_text_replace(ws, t, s->spans, s->nspans, r->placeholder, r->ph_len);
  return err ? err : 1;
}

int dlp_redact_text(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, dlp_ws *ws,
                    dlp_text *t, aip_dlp_counts *c) {
  if (t->len < v->min_width) return 0; /* no rule, and no decoded candidate, fits */
  int n = dlp_hs_scan(v, s, t->p, t->len);
  if (n < 0) return n;
  int changed = 0;
  s->nph = s->nfresh = 0;
  for (size_t k = 0; n > 0 && k < v->n; k++) {
    /* after replacements, this rule might match anew around a placeholder */
    int rc = v->react[k] ? rescan(d, v, s, k, t) : 0;
    if (rc) return rc;
    if (!fired(s, k)) continue;
    if (dlp_expired(s)) return -ETIMEDOUT;
    rc = apply_rule(d, v, k, s, ws, t, c);
    if (rc < 0) return rc;
    if (rc) changed = 1;
  }
  if (d->detect_encoding) {
    int rc = dlp_encoding_pass(d, v, s, ws, t, c);
    if (rc < 0) return rc;
    changed |= rc;
  }
  return changed;
}

/* ---- plain text (public) -------------------------------------------------------------------- */

/* Invalid UTF-8 cannot be given to either engine; such bytes are scanned as 0x1A, which like
 * Go's U+FFFD for them matches `.` and negated classes, and copied unchanged to the output. */
static const char *sanitize(dlp_ws *ws, const char *p, size_t len, int *err) {
  *err = 0;
  if (aip_utf8_valid(p, len)) return p;
  aip_buf_reset(&ws->dec);
  if ((*err = aip_buf_append(&ws->dec, p, len))) return NULL;
  unsigned char *q = (unsigned char *)ws->dec.data;
  for (size_t i = 0; i < len;) {
    size_t k = aip_utf8_seq_len(q + i, len - i);
    if (k == 0) q[i] = 0x1A, k = 1;
    i += k;
  }
  return ws->dec.data;
}

int aip_dlp_redact_text(const aip_dlp *d, aip_dlp_scratch *s, int scope, const char *text,
                        size_t len, aip_buf *out, aip_dlp_counts *c) {
  int sc = scope & 0xff;
  if (!d || sc > AIP_DLP_REQUEST) return d ? -EINVAL : 0;
  const dlp_view *v = &d->view[sc];
  if (!dlp_view_ready(v)) return 0;
  size_t scan = len;
  if (d->max_scan_size && len > d->max_scan_size) {
    scan = (size_t)d->max_scan_size;
    while (scan > 0 && ((unsigned char)text[scan] & 0xC0) == 0x80) scan--;
    if (c) c->flags |= AIP_DLP_F_PARTIAL;
  }
  if (scan > INT32_MAX) return -E2BIG;
  dlp_ws *ws = &s->ws[0];
  int err;
  const char *p = sanitize(ws, text, scan, &err);
  if (!p) return err;
  dlp_text t;
  dlp_text_init(ws, &t, p, scan);
  int rc = dlp_redact_text(d, v, s, ws, &t, c);
  if (rc <= 0) return rc;
  size_t cur = 0;
  for (size_t i = 0; i < t.npc && !err; i++) {
    const dlp_piece *pc = &t.pc[i];
    err = aip_buf_append(out, pc->orig >= 0 ? text + pc->orig : t.p + cur, pc->len);
    cur += pc->len;
  }
  if (!err) err = aip_buf_append(out, text + scan, len - scan);
  return err ? err : 1;
}
