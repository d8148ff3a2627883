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

static int fired_cb(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                    void *ctx) {
  uint64_t *f = ctx;
  f[id >> 6] |= 1ull << (id & 63);
  return 0;
}

int dlp_hs_scan(const dlp_view *v, aip_dlp_scratch *s, const char *p, size_t len) {
  size_t words = (v->n + 63) / 64;
  memset(s->fired, 0, words * sizeof *s->fired);
  if (len > UINT32_MAX) return -E2BIG;
  hs_error_t e = hs_scan(v->block, p, (unsigned)len, 0, s->hs, fired_cb, s->fired);
  if (e != HS_SUCCESS) return e == HS_NOMEM ? -ENOMEM : -EINVAL;
  int n = 0;
  for (size_t w = 0; w < words; w++) n += __builtin_popcountll(s->fired[w]);
  return n;
}

static int fired(const aip_dlp_scratch *s, size_t k) { return (s->fired[k >> 6] >> (k & 63)) & 1; }

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
    v = realloc(v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    ws->pc[k] = v;
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

/* Go's ReplaceAllString with a literal: all leftmost non-overlapping matches. When PCRE2 hits
 * a limit the whole text is replaced instead (fail closed) and counted once. */
static int apply_rule(const aip_dlp *d, size_t ri, aip_dlp_scratch *s, dlp_ws *ws, dlp_text *t,
                      aip_dlp_counts *c) {
  const dlp_rule *r = &d->rules[ri];
  size_t from = 0;
  s->nspans = 0;
  for (;;) {
    dlp_span m;
    size_t next;
    int rc = dlp_rule_find(r, s, t->p, t->len, from, &m, &next);
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
  dlp_counts_add(c, ri, (uint32_t)s->nspans);
  int err = dlp_text_replace(ws, t, s->spans, s->nspans, r->placeholder, r->ph_len);
  return err ? err : 1;
}

int dlp_redact_text(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, dlp_ws *ws,
                    dlp_text *t, aip_dlp_counts *c) {
  if (t->len < v->min_width) return 0; /* no rule, and no decoded candidate, fits */
  int n = dlp_hs_scan(v, s, t->p, t->len);
  if (n < 0) return n;
  int changed = 0, dirty = 0;
  for (size_t k = 0; n > 0 && k < v->n; k++) {
    if (!fired(s, k)) {
      if (!dirty || !v->react[k]) continue;
      /* an earlier rule replaced something and this one might now match around it */
      s->rescans++;
      dirty = 0;
      int rc = dlp_hs_scan(v, s, t->p, t->len);
      if (rc < 0) return rc;
      if (!fired(s, k)) continue;
    }
    if (dlp_expired(s)) return -ETIMEDOUT;
    int rc = apply_rule(d, v->idx[k], s, ws, t, c);
    if (rc < 0) return rc;
    if (rc) changed = dirty = 1;
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
  if (!v->n || !v->block) return 0;
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
