/* dlp_gate.c -- the runs of text a gated rule can match in.
 *
 * A rule such as the operations guide's card number, \b(?:\d{4}[- ]?){3}\d{4}\b, has no literal
 * for Hyperscan to look for, so Hyperscan runs an automaton over every byte: alone it scans at
 * a sixth of the speed of the guide's other nine rules together, and in one database with them
 * it sets the pace for all (benchmarks/README.md). But each of its matches is a run of at least
 * 16 bytes drawn from [0-9 -], and in real text such runs are rare (2 % of the benchmark's
 * bytes). So such rules ("gated", dlp_gated()) go into a database of their own, scanned only
 * over those runs:
 *   - a match consumes only gate bytes, so it lies inside one run, and a run shorter than the
 *     shortest gated match holds none;
 *   - each run is handed over with the byte before and after it, so \b and \B see the same
 *     neighbours as in the text (anchors, which would see the run's place, disqualify a rule);
 *   - the runs go back to back into one buffer: a match cannot span the non-gate bytes between
 *     them, and Hyperscan's per-call cost is paid once per text, not per run.
 * The reported match ends are those a scan of the whole text would report.
 *
 * The search for runs is branch-light: 64 bytes at a time become a bit mask of gate bytes
 * (SSE2 range compares), and shifts and ANDs over that mask and the previous one show whether
 * a run of gate_min bytes ends in the block; only then are the run's ends looked up bytewise.
 */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "engine/dlp_internal.h"
#include "engine/engine_internal.h"

void dlp_gate_view(const aip_dlp *d, dlp_view *v) {
  memset(v->gate_byte, 0, sizeof v->gate_byte);
  v->gate_min = UINT32_MAX;
  for (size_t k = 0; k < v->n; k++) {
    const dlp_rule *r = &d->rules[v->idx[k]];
    if (!dlp_gated(r)) continue;
    for (unsigned c = 0; c < 256; c++)
      if ((r->chars.w[c >> 6] >> (c & 63)) & 1) v->gate_byte[c] = 1;
    if (r->min_width < v->gate_min) v->gate_min = r->min_width;
  }
  v->gate_nr = 0;
  for (unsigned c = 0; c < 256; c++) {
    if (!v->gate_byte[c] || (c && v->gate_byte[c - 1])) continue;
    unsigned e = c;
    while (e < 255 && v->gate_byte[e + 1]) e++;
    if (v->gate_nr == (int)sizeof v->gate_lo) {
      v->gate_nr = 0;
      return;
    }
    v->gate_lo[v->gate_nr] = (uint8_t)c, v->gate_hi[v->gate_nr++] = (uint8_t)e;
  }
}

static int add_seg(aip_dlp_scratch *s, size_t at, size_t text) {
  if (s->nseg == s->segcap) {
    size_t cap = s->segcap ? s->segcap * 2 : 64;
    dlp_seg *g = realloc(s->seg, cap * sizeof *g);
    if (!g) return -1;
    s->seg = g, s->segcap = cap;
  }
  s->seg[s->nseg++] = (dlp_seg){at, text};
  return 0;
}

typedef struct runs {
  const dlp_view *v;
  aip_dlp_scratch *s;
  const char *p;
  size_t len;
  size_t first_a, first_b; /* the first run with its neighbours, copied only once a second comes */
} runs;

/* The run of gate bytes through p[i] (a gate byte), no further left than lo: adds it when long
 * enough; returns where it ends (a non-gate byte, or len), or (size_t)-1 without memory. */
static size_t take_run(runs *r, size_t i, size_t lo) {
  const uint8_t *in = r->v->gate_byte;
  const unsigned char *u = (const unsigned char *)r->p;
  aip_dlp_scratch *s = r->s;
  size_t a = i, b = i + 1;
  while (a > lo && in[u[a - 1]]) a--;
  while (b < r->len && in[u[b]]) b++;
  if (b - a < r->v->gate_min) return b;
  size_t ca = a ? a - 1 : 0, cb = b < r->len ? b + 1 : r->len;
  if (s->nseg == 0) {
    r->first_a = ca, r->first_b = cb;
    return add_seg(s, 0, ca) ? (size_t)-1 : b;
  }
  if (s->nseg == 1 && aip_buf_append(&s->gate, r->p + r->first_a, r->first_b - r->first_a))
    return (size_t)-1;
  const dlp_seg *last = &s->seg[s->nseg - 1];
  size_t prev_end = last->text + (s->gate.len - last->at);
  if (ca < prev_end) ca = prev_end; /* one byte between two runs: it is there once */
  if (add_seg(s, s->gate.len, ca) || aip_buf_append(&s->gate, r->p + ca, cb - ca))
    return (size_t)-1;
  return b;
}

/* Bytewise: any run of gate_min bytes covers one of the bytes probed at that stride. */
static int search_bytes(runs *r, size_t from) {
  const uint8_t *in = r->v->gate_byte;
  const unsigned char *u = (const unsigned char *)r->p;
  size_t w = r->v->gate_min, lo = from;
  for (size_t i = from + w - 1; i < r->len;) {
    if (!in[u[i]]) {
      i += w;
      continue;
    }
    size_t b = take_run(r, i, lo);
    if (b == (size_t)-1) return -1;
    lo = b;
    i = b + w;
  }
  return 0;
}

#ifdef __SSE2__
/* Bit j: p[j] is a gate byte, for the 64 bytes at p. */
static uint64_t gate_mask64(const dlp_view *v, const char *p) {
  uint64_t m = 0;
  for (int q = 0; q < 4; q++) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * q)), hit = _mm_setzero_si128();
    for (int k = 0; k < v->gate_nr; k++) { /* x - lo <= hi - lo, unsigned */
      __m128i t = _mm_sub_epi8(x, _mm_set1_epi8((char)v->gate_lo[k]));
      __m128i span = _mm_set1_epi8((char)(v->gate_hi[k] - v->gate_lo[k]));
      hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_min_epu8(t, span), t));
    }
    m |= (uint64_t)(uint16_t)_mm_movemask_epi8(hit) << (16 * q);
  }
  return m;
}

/* 64 bytes at a time; the tail (under 64) bytewise. */
static int search_vector(runs *r) {
  uint32_t w = r->v->gate_min > 64 ? 64 : r->v->gate_min; /* shorter is only less selective */
  size_t at = 0, past = 0; /* just past the last run taken */
  uint64_t prev = 0; /* mask of the 64 bytes before `at` */
  while (at + 64 <= r->len) {
    uint64_t cur = gate_mask64(r->v, r->p + at);
    if (!cur) {
      prev = 0, at += 64;
      continue;
    }
    /* bit j of (hi:lo) after the loop: bytes j-w+1 .. j of prev:cur are all gate bytes */
    uint64_t hi = cur, lo = prev;
    for (uint32_t len = 1; len < w;) {
      uint32_t k = len * 2 <= w ? len : w - len;
      uint64_t shi = (hi << k) | (lo >> (64 - k)), slo = lo << k;
      hi &= shi, lo &= slo;
      len += k;
    }
    if (!hi) {
      prev = cur, at += 64;
      continue;
    }
    size_t b = take_run(r, at + (size_t)__builtin_ctzll(hi), 0);
    if (b == (size_t)-1) return -1;
    at = past = b + 1; /* p[b] is no gate byte: no run crosses it */
    prev = 0;
  }
  /* a run whose 64th byte (or gate_min-th) is in the tail may start up to 63 bytes before it */
  return search_bytes(r, at > past + 63 ? at - 63 : past);
}
#endif

size_t dlp_gate_runs(const dlp_view *v, aip_dlp_scratch *s, const char *p, size_t len,
                     const char **out) {
  runs r = {v, s, p, len, 0, 0};
  s->nseg = 0;
  aip_buf_reset(&s->gate);
  int rc;
#ifdef __SSE2__
  if (v->gate_nr) rc = search_vector(&r);
  else
#endif
    rc = search_bytes(&r, 0);
  if (rc) return (size_t)-1;
  if (s->nseg == 0) return 0;
  if (s->nseg == 1) { /* one run: read it in place */
    *out = p + r.first_a;
    return r.first_b - r.first_a;
  }
  *out = s->gate.data;
  return s->gate.len;
}
