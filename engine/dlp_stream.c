/* dlp_stream.c -- DLP over a body fed in chunks, in bounded memory.
 *
 * The tokenizer runs incrementally; bytes outside scanned strings and numbers go straight to
 * the output. A scanned token is buffered until it ends and then redacted exactly as in block
 * mode, as long as it stays under AIP_DLP_STREAM_STRING_MAX. A longer string switches to a
 * window:
 *   - its bytes are decoded as they come and fed to a Hyperscan stream (one per string), which
 *     remembers per rule the last offset where a match ended;
 *   - when more than `hold` (the longest rule's width, capped) plus a chunk is pending, the
 *     rules that fired in the window are resolved with PCRE2 over it, with one character of
 *     already-emitted context before it for \b; overlapping matches merge into one span shown
 *     with the placeholder of the earliest rule; everything up to `hold` before the end is
 *     emitted, moved back to the start of any span crossing that point;
 *   - a match of a bounded rule that starts before the cut cannot depend on bytes not yet seen,
 *     because it would be longer than `hold`. Rules without a maximum width count as
 *     AIP_DLP_UNBOUNDED_CAP wide: a longer match is redacted from where the window starts.
 * So a long string is redacted per rule on its original text with overlaps merged, which is
 * the block result whenever matches of different rules do not overlap (docs/dlp.md). Plain
 * text streams (stderr) are one long string each.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dlp_internal.h"
#include "engine/engine_internal.h"

#define FLUSH_CHUNK (16u * 1024)                          /* decoded bytes beyond hold */
#define FORCE_CUT (2u * AIP_DLP_HOLD_MAX + 4 * FLUSH_CHUNK) /* pending bytes that force a cut */

enum { T_NONE, T_PASS, T_NAME, T_BUF, T_WIN };

typedef struct wspan {
  size_t start, end;
  uint32_t k;
  int carry;
} wspan;

struct aip_dlp_stream {
  const aip_dlp *d;
  const dlp_view *v;
  int kind, on, failed;
  dlp_jtok tok;
  dlp_path ph;
  uint64_t fed; /* raw bytes consumed, for max_scan_size */
  int ts, tok_key, tok_num;
  aip_buf raw, dec, name;
  size_t raw_dec; /* bytes of `raw` already decoded into dec[ctx..] */
  size_t ctx;     /* emitted context at the front of dec */
  uint64_t base;  /* stream offset of dec[0] */
  hs_stream_t *hs;
  uint64_t *last_end; /* per rule of the view: stream offset where its last match ended */
  uint64_t carry_end; /* a span cut by a forced flush goes on to here */
  uint32_t carry_k;
  int carry, win_changed;
  wspan *sp;
  size_t nsp, spcap;
  size_t peak;
  aip_dlp_scratch *s; /* for the current call */
  aip_buf *out;
  aip_dlp_counts *c;
};

/* ---- memory ---------------------------------------------------------------------------------- */

size_t aip_dlp_stream_mem(const aip_dlp_stream *st, size_t *peak) {
  size_t hs = 0, m;
  if (st->v && st->v->stream) hs_stream_size(st->v->stream, &hs);
  m = sizeof *st + st->raw.cap + st->dec.cap + st->name.cap + st->spcap * sizeof(wspan) +
      (st->v ? st->v->n * sizeof(uint64_t) : 0) + (st->hs ? hs : 0);
  if (peak) *peak = st->peak > m ? st->peak : m;
  return m;
}

static void note_peak(aip_dlp_stream *st) {
  size_t m = aip_dlp_stream_mem(st, NULL);
  if (m > st->peak) st->peak = m;
}

/* ---- windows --------------------------------------------------------------------------------- */

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                    void *ctx) {
  aip_dlp_stream *st = ctx;
  if (to > st->last_end[id]) st->last_end[id] = to;
  return 0;
}

/* Plain text: valid UTF-8 is copied, invalid bytes become 0x1A (dlp_redact.c, sanitize); a
 * sequence cut off at the end waits for the next chunk unless `final`. */
static size_t text_decode(const char *p, size_t n, aip_buf *out, int final, int *err) {
  *err = aip_buf_reserve(out, n);
  if (*err) return 0;
  size_t i = 0;
  while (i < n) {
    size_t k = aip_utf8_seq_len((const unsigned char *)p + i, n - i);
    if (k == 0) {
      unsigned char c = (unsigned char)p[i];
      size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      if (!final && want > n - i && want > 1) { /* maybe completed by the next chunk */
        size_t j = i + 1;
        while (j < n && ((unsigned char)p[j] & 0xC0) == 0x80) j++;
        if (j == n) break;
      }
      out->data[out->len++] = 0x1A;
      i++;
      continue;
    }
    memcpy(out->data + out->len, p + i, k);
    out->len += k, i += k;
  }
  out->data[out->len] = '\0';
  return i;
}

/* Decodes what is new in `raw` and feeds it to the Hyperscan stream. */
static int window_decode(aip_dlp_stream *st, int final) {
  size_t old = st->dec.len;
  int err;
  const char *p = st->raw.data + st->raw_dec;
  size_t n = st->raw.len - st->raw_dec;
  size_t used = st->kind == AIP_DLP_STREAM_TEXT ? text_decode(p, n, &st->dec, final, &err)
                                                : dlp_json_decode(p, n, &st->dec, !final, &err);
  if (err) return err;
  st->raw_dec += used;
  if (st->dec.len > old &&
      hs_scan_stream(st->hs, st->dec.data + old, (unsigned)(st->dec.len - old), 0, st->s->hs,
                     on_match, st) != HS_SUCCESS)
    return -EINVAL;
  return 0;
}

static int push_wspan(aip_dlp_stream *st, wspan w) {
  if (st->nsp == st->spcap) {
    size_t cap = st->spcap ? st->spcap * 2 : 16;
    wspan *v = realloc(st->sp, cap * sizeof *v);
    if (!v) return -ENOMEM;
    st->sp = v, st->spcap = cap;
  }
  st->sp[st->nsp++] = w;
  return 0;
}

static int by_start(const void *a, const void *b) {
  const wspan *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start ? 1 : (x->k > y->k) - (x->k < y->k);
}

/* Every match of the rules that fired in the pending window, sorted. */
static int collect(aip_dlp_stream *st) {
  const dlp_view *v = st->v;
  size_t e = st->dec.len;
  st->nsp = 0;
  if (st->carry && st->carry_end > st->base + st->ctx) {
    size_t ce = (size_t)(st->carry_end - st->base);
    int err = push_wspan(st, (wspan){st->ctx, ce < e ? ce : e, st->carry_k, 1});
    if (err) return err;
  }
  for (size_t k = 0; k < v->n; k++) {
    if (st->last_end[k] <= st->base + st->ctx) continue;
    if (dlp_expired(st->s)) return -ETIMEDOUT;
    const dlp_rule *r = &st->d->rules[v->idx[k]];
    size_t from = st->ctx, next;
    dlp_span m;
    int rc;
    while (from < e && (rc = dlp_rule_find(r, st->s, st->dec.data, e, from, &m, &next)) != 0) {
      if (rc < 0) { /* PCRE2 limit: fail closed over the whole window */
        m = (dlp_span){st->ctx, e}, next = e;
        if (st->c) st->c->flags |= AIP_DLP_F_FALLBACK;
      }
      if ((rc = push_wspan(st, (wspan){m.start, m.end, (uint32_t)k, 0}))) return rc;
      from = next;
    }
  }
  if (st->nsp) qsort(st->sp, st->nsp, sizeof *st->sp, by_start); /* sp is NULL when empty */
  return 0;
}

/* Output bytes of dec[a..b) (pending offsets, a >= ctx): the raw bytes they came from. */
static int emit_orig(aip_dlp_stream *st, const uint32_t *ro, size_t a, size_t b, size_t ia,
                     size_t ib) {
  if (b <= a) return 0;
  if (!ro) return aip_buf_append(st->out, st->raw.data + (a - st->ctx), b - a);
  return aip_buf_append(st->out, st->raw.data + ro[ia], ro[ib] - ro[ia]);
}

static int emit_placeholder(aip_dlp_stream *st, uint32_t k) {
  const dlp_rule *r = &st->d->rules[st->v->idx[k]];
  st->win_changed = 1;
  if (st->kind == AIP_DLP_STREAM_TEXT) return aip_buf_append(st->out, r->placeholder, r->ph_len);
  return dlp_json_escape(st->out, r->placeholder, r->ph_len);
}

/* Emits dec[ctx..t) with the merged spans (the first `ng` boundaries in st->s->offs). */
static int emit_upto(aip_dlp_stream *st, size_t t) {
  /* boundaries: every span start/end below t, and t; mapped to raw offsets in one walk */
  size_t nb = 0;
  uint32_t *ro = NULL;
  int json_esc = st->kind == AIP_DLP_STREAM_JSON && memchr(st->raw.data, '\\', st->raw_dec);
  if (json_esc) {
    if (st->s->offcap < 2 * st->nsp + 2) {
      uint32_t *o = realloc(st->s->offs, (2 * st->nsp + 2) * sizeof *o);
      if (!o) return -ENOMEM;
      st->s->offs = o, st->s->offcap = 2 * st->nsp + 2;
    }
    ro = st->s->offs;
  }
  size_t prev = st->ctx, i = 0;
  /* pass 1 (offsets) and pass 2 (emit) walk the same merged groups */
  for (int pass = json_esc ? 0 : 1; pass < 2; pass++) {
    size_t bi = 0;
    prev = st->ctx, i = 0, nb = 0;
    while (i < st->nsp && st->sp[i].start < t) {
      size_t gs = st->sp[i].start, ge = st->sp[i].end;
      uint32_t gk = st->sp[i].k;
      for (; i < st->nsp && st->sp[i].start < ge; i++) {
        if (st->sp[i].end > ge) ge = st->sp[i].end;
        if (st->sp[i].k < gk) gk = st->sp[i].k;
        if (pass == 1 && !st->sp[i].carry && st->sp[i].start < t)
          dlp_counts_add(st->c, st->v->idx[st->sp[i].k], 1);
      }
      size_t cut = ge < t ? ge : t;
      if (pass == 0) {
        ro[nb++] = (uint32_t)(prev - st->ctx), ro[nb++] = (uint32_t)(gs - st->ctx);
      } else {
        int err = emit_orig(st, ro, prev, gs, bi, bi + 1);
        if (!err) err = emit_placeholder(st, gk);
        if (err) return err;
        bi += 2;
        if (ge > t) st->carry = 1, st->carry_end = st->base + ge, st->carry_k = gk;
      }
      prev = cut;
    }
    if (pass == 0) {
      ro[nb++] = (uint32_t)(prev - st->ctx), ro[nb++] = (uint32_t)(t - st->ctx);
      dlp_json_raw_offsets(st->raw.data, st->raw_dec, ro, nb);
    } else {
      int err = emit_orig(st, ro, prev, t, bi, bi + 1);
      if (err) return err;
    }
  }
  return 0;
}

/* Drops dec[..t) and its raw bytes, keeping one character of context. */
static void trim(aip_dlp_stream *st, size_t t, size_t raw_t) {
  size_t c0 = t;
  while (c0 > 0 && t - c0 < 4) {
    c0--;
    if (((unsigned char)st->dec.data[c0] & 0xC0) != 0x80) break;
  }
  memmove(st->dec.data, st->dec.data + c0, st->dec.len - c0);
  st->dec.len -= c0;
  st->base += c0;
  st->ctx = t - c0;
  memmove(st->raw.data, st->raw.data + raw_t, st->raw.len - raw_t);
  st->raw.len -= raw_t;
  st->raw_dec -= raw_t;
}

/* Where to cut: `hold` before the end, at a character start, before any span crossing it. */
static size_t cut_point(aip_dlp_stream *st, int final) {
  size_t e = st->dec.len;
  if (final) return e;
  size_t t = e > st->v->hold ? e - st->v->hold : 0;
  while (t > st->ctx && ((unsigned char)st->dec.data[t] & 0xC0) == 0x80) t--;
  size_t forced = t;
  for (size_t i = 0; i < st->nsp;) { /* merged groups, as emit_upto forms them */
    size_t gs = st->sp[i].start, ge = st->sp[i].end;
    for (; i < st->nsp && st->sp[i].start < ge; i++)
      if (st->sp[i].end > ge) ge = st->sp[i].end;
    if (gs < t && ge > t) t = gs;
  }
  if (t <= st->ctx && e - st->ctx > FORCE_CUT) t = forced; /* a chain of overlapping spans */
  return t;
}

static int flush_window(aip_dlp_stream *st, int final) {
  size_t e = st->dec.len;
  if (!final && e - st->ctx < st->v->hold + FLUSH_CHUNK) return 0;
  st->carry = st->carry && st->carry_end > st->base + st->ctx;
  int err = collect(st);
  if (err) return err;
  size_t t = cut_point(st, final);
  if (t <= st->ctx && !final) return 0;
  st->carry = 0;
  if ((err = emit_upto(st, t))) return err;
  size_t raw_t = t - st->ctx;
  if (st->kind == AIP_DLP_STREAM_JSON) {
    uint32_t o = (uint32_t)raw_t;
    dlp_json_raw_offsets(st->raw.data, st->raw_dec, &o, 1);
    raw_t = o;
  }
  trim(st, t, raw_t);
  note_peak(st);
  return 0;
}

static int window_open(aip_dlp_stream *st) {
  if (hs_open_stream(st->v->stream, 0, &st->hs) != HS_SUCCESS) return -ENOMEM;
  memset(st->last_end, 0, st->v->n * sizeof *st->last_end);
  aip_buf_reset(&st->dec);
  st->raw_dec = st->ctx = 0;
  st->base = 0;
  st->carry = st->win_changed = 0;
  return 0;
}

/* Adds raw bytes in slices, so one big chunk never sits in memory whole. */
static int window_add(aip_dlp_stream *st, const char *p, size_t n) {
  while (n) {
    size_t k = n < FLUSH_CHUNK ? n : FLUSH_CHUNK;
    int err = aip_buf_append(&st->raw, p, k);
    if (!err) err = window_decode(st, 0);
    if (!err) err = flush_window(st, 0);
    if (err) return err;
    p += k, n -= k;
  }
  return 0;
}

static int window_close(aip_dlp_stream *st) {
  int err = window_decode(st, 1);
  if (!err && hs_close_stream(st->hs, st->s->hs, on_match, st) != HS_SUCCESS) err = -EINVAL;
  st->hs = NULL;
  if (!err) err = flush_window(st, 1);
  aip_buf_reset(&st->raw);
  aip_buf_reset(&st->dec);
  st->raw_dec = st->ctx = 0;
  return err;
}

/* ---- JSON tokens ----------------------------------------------------------------------------- */

static int key_suffix(aip_dlp_stream *st) {
  if (st->c) st->c->flags |= AIP_DLP_F_KEY;
  unsigned k = ++st->ph.keyred[st->ph.depth];
  return k > 1 ? aip_buf_printf(st->out, "#%u", k) : 0;
}

/* A buffered token is complete: redact it as block mode does. */
static int finish_buf(aip_dlp_stream *st) {
  dlp_text t;
  int esc;
  int rc = dlp_scan_token(st->d, st->v, st->s, 0, st->raw.data ? st->raw.data : "",
                          st->raw.len, st->tok_num, &t, &esc, st->c);
  if (rc < 0) return rc;
  if (rc == 0) rc = aip_buf_append(st->out, st->raw.data, st->raw.len);
  else {
    rc = st->tok_num ? aip_buf_append(st->out, "\"", 1) : 0;
    if (!rc) rc = dlp_splice_string(st->s, st->raw.data, st->raw.len, esc, &t, st->out);
    if (!rc && st->tok_key) rc = key_suffix(st);
    if (!rc && st->tok_num) rc = aip_buf_append(st->out, "\"", 1);
  }
  note_peak(st);
  aip_buf_reset(&st->raw);
  return rc;
}

static int buf_add(aip_dlp_stream *st, const char *p, size_t n) {
  size_t room = AIP_DLP_STREAM_STRING_MAX - st->raw.len;
  if (st->tok_num || !st->v->stream || n <= room) return aip_buf_append(&st->raw, p, n);
  int err = aip_buf_append(&st->raw, p, room);
  if (!err) err = window_open(st);
  if (err) return err;
  st->ts = T_WIN;
  return window_add(st, p + room, n - room);
}

/* Tells the path the key just read. Its name is needed at a message's or an error's level
 * (dlp_path_key_needed): there it was held whole, as a scanned token (T_BUF), or only for its
 * name (T_NAME); a key longer than DLP_KEY_PATH_MAX never names a protocol member. */
static void key_done(aip_dlp_stream *st) {
  const aip_buf *name = st->ts == T_NAME ? &st->name : st->ts == T_BUF ? &st->raw : NULL;
  if (!name || !dlp_path_key_needed(&st->ph)) {
    dlp_path_key(&st->ph, NULL, 0);
    return;
  }
  int err = 0;
  aip_buf *tmp = &st->s->ws[0].tmp;
  aip_buf_reset(tmp);
  if (name->len <= DLP_KEY_PATH_MAX) dlp_json_decode(name->data, name->len, tmp, 0, &err);
  int ok = name->len <= DLP_KEY_PATH_MAX && !err;
  dlp_path_key(&st->ph, ok ? tmp->data : "", ok ? tmp->len : 0);
}

static int token_begin(aip_dlp_stream *st, const char *p, size_t *from, const dlp_jev *ev) {
  int num = ev->type == JEV_NUM_BEGIN, key = !num && ev->is_key;
  int scan = key ? dlp_path_key_scanned(&st->ph) : dlp_path_value_scanned(&st->ph);
  if (scan && st->d->max_scan_size && st->fed + ev->off >= st->d->max_scan_size) {
    scan = 0;
    if (st->c) st->c->flags |= AIP_DLP_F_PARTIAL;
  }
  st->tok_key = key, st->tok_num = num;
  aip_buf_reset(&st->name);
  if (!scan) {
    st->ts = key && dlp_path_key_needed(&st->ph) ? T_NAME : T_PASS;
    return 0;
  }
  st->ts = T_BUF;
  aip_buf_reset(&st->raw);
  int err = aip_buf_append(st->out, p + *from, ev->off - *from);
  *from = ev->off;
  return err;
}

static int token_chunk(aip_dlp_stream *st, const char *p, size_t *from, const dlp_jev *ev) {
  int err = 0;
  if (st->ts == T_NAME && st->name.len <= DLP_KEY_PATH_MAX)
    err = aip_buf_append(&st->name, p + ev->off, ev->len);
  else if (st->ts == T_BUF) err = buf_add(st, p + ev->off, ev->len);
  else if (st->ts == T_WIN) err = window_add(st, p + ev->off, ev->len);
  if (err || !ev->last) return err;
  int held = st->ts == T_BUF || st->ts == T_WIN;
  if (st->tok_key) key_done(st);
  if (st->ts == T_BUF && st->tok_key && st->ph.exempt) { /* a protocol member's name */
    err = aip_buf_append(st->out, st->raw.data, st->raw.len);
    aip_buf_reset(&st->raw);
  } else if (st->ts == T_BUF) err = finish_buf(st);
  else if (st->ts == T_WIN) {
    err = window_close(st);
    if (!err && st->tok_key && st->win_changed) err = key_suffix(st);
  }
  if (held) *from = ev->off + ev->len;
  st->ts = T_NONE;
  return err;
}

static int on_event(aip_dlp_stream *st, const char *p, size_t *from, const dlp_jev *ev) {
  switch (ev->type) {
    case JEV_OPEN: dlp_path_open(&st->ph, ev->is_obj); return 0;
    case JEV_CLOSE: dlp_path_close(&st->ph); return 0;
    case JEV_STR_BEGIN:
    case JEV_NUM_BEGIN: return token_begin(st, p, from, ev);
    case JEV_STR_CHUNK:
    case JEV_NUM_CHUNK: return token_chunk(st, p, from, ev);
  }
  return 0;
}

static int json_feed(aip_dlp_stream *st, const char *p, size_t n) {
  size_t pos = 0, from = 0;
  dlp_jev ev;
  int rc;
  while ((rc = dlp_jtok_next(&st->tok, p, n, &pos, &ev)) > 0)
    if ((rc = on_event(st, p, &from, &ev)) < 0) return rc;
  if (rc < 0) return rc;
  if (st->ts != T_BUF && st->ts != T_WIN) rc = aip_buf_append(st->out, p + from, n - from);
  st->fed += n;
  return rc;
}

/* ---- public ---------------------------------------------------------------------------------- */

aip_dlp_stream *aip_dlp_stream_new(const aip_dlp *d, int scope, aip_dlp_stream_kind kind) {
  aip_dlp_stream *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  int sc = scope & 0xff;
  st->kind = kind;
  dlp_jtok_init(&st->tok);
  dlp_path_init(&st->ph, scope);
  if (d && sc <= AIP_DLP_REQUEST && dlp_view_ready(&d->view[sc]) &&
      (kind == AIP_DLP_STREAM_TEXT || (scope & AIP_DLP_WHOLE) ||
       (sc == AIP_DLP_RESPONSE ? d->scan_responses : d->scan_requests))) {
    st->d = d, st->v = &d->view[sc], st->on = 1;
    st->last_end = calloc(st->v->n, sizeof *st->last_end);
    if (!st->last_end || (kind == AIP_DLP_STREAM_TEXT && !st->v->stream)) {
      aip_dlp_stream_free(st);
      return NULL;
    }
  }
  return st;
}

static int begin_call(aip_dlp_stream *st, aip_dlp_scratch *s, aip_buf *out, aip_dlp_counts *c) {
  st->s = s, st->out = out, st->c = c;
  return st->failed;
}

static int end_call(aip_dlp_stream *st, int rc) {
  if (rc < 0) st->failed = rc;
  note_peak(st);
  return rc < 0 ? rc : 0;
}

int aip_dlp_stream_feed(aip_dlp_stream *st, aip_dlp_scratch *s, const char *p, size_t n,
                        aip_buf *out, aip_dlp_counts *c) {
  int rc = begin_call(st, s, out, c);
  if (rc) return rc;
  if (!st->on) return aip_buf_append(out, p, n);
  if (st->kind == AIP_DLP_STREAM_JSON) return end_call(st, json_feed(st, p, n));
  if (!st->hs) rc = window_open(st);
  if (!rc) rc = window_add(st, p, n);
  return end_call(st, rc);
}

int aip_dlp_stream_flush(aip_dlp_stream *st, aip_dlp_scratch *s, aip_buf *out,
                         aip_dlp_counts *c) {
  int rc = begin_call(st, s, out, c);
  if (rc || !st->on || st->kind != AIP_DLP_STREAM_TEXT || !st->hs) return rc;
  return end_call(st, window_close(st));
}

int aip_dlp_stream_end(aip_dlp_stream *st, aip_dlp_scratch *s, aip_buf *out,
                       aip_dlp_counts *c) {
  int rc = begin_call(st, s, out, c);
  if (rc || !st->on) return rc;
  if (st->kind == AIP_DLP_STREAM_TEXT) return st->hs ? end_call(st, window_close(st)) : 0;
  dlp_jev ev;
  rc = dlp_jtok_finish(&st->tok, &ev);
  if (rc > 0) rc = finish_buf(st); /* a top-level number */
  return end_call(st, rc);
}

void aip_dlp_stream_free(aip_dlp_stream *st) {
  if (!st) return;
  if (st->hs) hs_close_stream(st->hs, NULL, NULL, NULL);
  aip_buf_free(&st->raw);
  aip_buf_free(&st->dec);
  aip_buf_free(&st->name);
  free(st->last_end);
  free(st->sp);
  free(st);
}
