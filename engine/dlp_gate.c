/* dlp_gate.c -- the runs of text a gated rule can match in.
 *
 * A rule such as the operations guide's card number, \b(?:\d{4}[- ]?){3}\d{4}\b, has no literal
 * for Hyperscan to look for, so Hyperscan runs an automaton over every byte: alone it scans at
 * a sixth of the speed of the guide's other nine rules together, and in one database with them
 * it sets the pace for all (benchmarks/README.md). But each of its matches is a run of at least
 * 16 bytes drawn from [0-9 -], and in real text such runs are rare (274 in the benchmark's
 * 64 MiB). So such rules ("gated", dlp_gated()) go into a database of their own, scanned only
 * over those runs:
 *   - rules are grouped by the bytes they consume ("gates", up to DLP_GATES; more are merged
 *     into the last, which only makes it less selective); a gate's runs are those of its bytes
 *     at least as long as its shortest match;
 *   - a match of a rule consumes only its gate's bytes, so it lies inside one of its runs;
 *   - each run is handed over with the byte before and after it, so \b and \B see the same
 *     neighbours as in the text (anchors, which would see the run's place, disqualify a rule);
 *   - overlapping runs of different gates are merged (still a piece of the real text), and the
 *     pieces go one after the other into one buffer, each followed by a byte no gated rule
 *     consumes and \b takes for a non-word character, as it does the end of the text: no match
 *     spans two pieces, and Hyperscan's per-call cost is paid once per text.
 * So the matches reported are exactly those a scan of the whole text would report.
 *
 * The search is branch-light: 64 bytes at a time become a bit mask of gate bytes (range
 * compares with AVX-512BW, AVX2 or SSE2, whichever the CPU has), and a few shifts and ANDs of
 * that mask show whether a run of the gate's length ends in the block; only then are the run's
 * ends looked up bytewise.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GATE_VECTOR 1
#endif

#include "engine/dlp_internal.h"
#include "engine/engine_internal.h"

/* After each piece: gated rules consume only ASCII, and the scan is in byte mode without UCP,
 * where 0xFF is no word character. */
#define SEPARATOR '\xff'

static void gate_ranges(struct dlp_gate *g) {
  g->nr = 0;
  for (unsigned c = 0; c < 256; c++) {
    if (!g->byte[c] || (c && g->byte[c - 1])) continue;
    unsigned e = c;
    while (e < 255 && g->byte[e + 1]) e++;
    if (g->nr == (int)sizeof g->lo) {
      g->nr = 0;
      return;
    }
    g->lo[g->nr] = (uint8_t)c, g->hi[g->nr++] = (uint8_t)e;
  }
}

void dlp_gate_view(const aip_dlp *d, dlp_view *v) {
  memset(v->gate, 0, sizeof v->gate);
  v->ngate = 0;
  for (size_t k = 0; k < v->n; k++) {
    const dlp_rule *r = &d->rules[v->idx[k]];
    if (!dlp_gated(r)) continue;
    uint8_t bytes[256];
    for (unsigned c = 0; c < 256; c++) bytes[c] = (r->chars.w[c >> 6] >> (c & 63)) & 1;
    int g = 0;
    while (g < v->ngate && memcmp(v->gate[g].byte, bytes, sizeof bytes) != 0) g++;
    if (g == DLP_GATES) g = DLP_GATES - 1; /* full: the last takes the rest */
    if (g == v->ngate) v->ngate++, v->gate[g].min = UINT32_MAX;
    for (unsigned c = 0; c < 256; c++) v->gate[g].byte[c] |= bytes[c];
    if (r->min_width < v->gate[g].min) v->gate[g].min = r->min_width;
  }
  for (int g = 0; g < v->ngate; g++) gate_ranges(&v->gate[g]);
}

typedef struct search {
  const struct dlp_gate *g;
  aip_dlp_scratch *s;
  const unsigned char *p;
  size_t len;
} search;

/* The run of gate bytes through p[i] (a gate byte), no further left than lo: records it with
 * its neighbours when long enough; returns where it ends (a non-gate byte, or len), or
 * (size_t)-1 without memory. */
static size_t take_run(search *r, size_t i, size_t lo) {
  const uint8_t *in = r->g->byte;
  size_t a = i, b = i + 1;
  while (a > lo && in[r->p[a - 1]]) a--;
  while (b < r->len && in[r->p[b]]) b++;
  if (b - a < r->g->min) return b;
  aip_dlp_scratch *s = r->s;
  if (s->nruns == s->runcap) {
    size_t cap = s->runcap ? s->runcap * 2 : 64;
    dlp_span *n = realloc(s->runs, cap * sizeof *n);
    if (!n) return (size_t)-1;
    s->runs = n, s->runcap = cap;
  }
  s->runs[s->nruns++] = (dlp_span){a ? a - 1 : 0, b < r->len ? b + 1 : r->len};
  return b;
}

/* Bytewise from `from`: any run of `min` bytes covers one of the bytes probed at that stride. */
static int search_bytes(search *r, size_t from) {
  const uint8_t *in = r->g->byte;
  size_t w = r->g->min, lo = from;
  for (size_t i = from + w - 1; i < r->len;) {
    if (!in[r->p[i]]) {
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

#ifdef GATE_VECTOR
/* Bit j: p[j] is a gate byte, for the 64 bytes at p; one version per instruction set. Each
 * range test is "x - lo <= hi - lo" in unsigned bytes. */
__attribute__((target("avx512bw"))) static uint64_t mask_avx512(const struct dlp_gate *g,
                                                                 const unsigned char *p) {
  __m512i x = _mm512_loadu_si512((const void *)p);
  __mmask64 m = 0;
  for (int k = 0; k < g->nr; k++)
    m |= _mm512_cmple_epu8_mask(_mm512_sub_epi8(x, _mm512_set1_epi8((char)g->lo[k])),
                                _mm512_set1_epi8((char)(g->hi[k] - g->lo[k])));
  return (uint64_t)m;
}

__attribute__((target("avx2"))) static uint64_t mask_avx2(const struct dlp_gate *g,
                                                          const unsigned char *p) {
  uint64_t m = 0;
  for (int q = 0; q < 2; q++) {
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + (size_t)32 * q));
    __m256i hit = _mm256_setzero_si256();
    for (int k = 0; k < g->nr; k++) {
      __m256i t = _mm256_sub_epi8(x, _mm256_set1_epi8((char)g->lo[k]));
      __m256i span = _mm256_set1_epi8((char)(g->hi[k] - g->lo[k]));
      hit = _mm256_or_si256(hit, _mm256_cmpeq_epi8(_mm256_min_epu8(t, span), t));
    }
    m |= (uint64_t)(uint32_t)_mm256_movemask_epi8(hit) << (32 * q);
  }
  return m;
}

static uint64_t mask_sse2(const struct dlp_gate *g, const unsigned char *p) {
  uint64_t m = 0;
  for (int q = 0; q < 4; q++) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + (size_t)16 * q));
    __m128i hit = _mm_setzero_si128();
    for (int k = 0; k < g->nr; k++) {
      __m128i t = _mm_sub_epi8(x, _mm_set1_epi8((char)g->lo[k]));
      __m128i span = _mm_set1_epi8((char)(g->hi[k] - g->lo[k]));
      hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_min_epu8(t, span), t));
    }
    m |= (uint64_t)(uint16_t)_mm_movemask_epi8(hit) << (16 * q);
  }
  return m;
}

typedef uint64_t (*mask_fn)(const struct dlp_gate *g, const unsigned char *p);

static mask_fn best_mask; /* set once by pick_mask (or by tests, before any search) */
static pthread_once_t picked = PTHREAD_ONCE_INIT;

static void pick_mask(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512bw")) best_mask = mask_avx512;
  else if (__builtin_cpu_supports("avx2")) best_mask = mask_avx2;
  else best_mask = mask_sse2;
}

/* 64 bytes at a time; the tail (under 64) bytewise. */
static int search_vector(search *r, mask_fn mask) {
  uint32_t w = r->g->min > 64 ? 64 : r->g->min; /* shorter is only less selective */
  size_t at = 0, past = 0; /* past: just past the last run taken */
  uint32_t carry = 0;      /* gate bytes just before `at` (at most 64 counted) */
  while (at + 64 <= r->len) {
    uint64_t cur = mask(r->g, r->p + at);
    /* bit j after the loop: bytes j-w+1 .. j are gate bytes, counting bytes before the block
     * as gate bytes ... */
    uint64_t x = cur;
    for (uint32_t len = 1; len < w;) { /* the same steps every time: no branch to mispredict */
      uint32_t k = len * 2 <= w ? len : w - len;
      x &= (x << k) | ((1ull << k) - 1);
      len += k;
    }
    /* ... which only the last `carry` of them are */
    x &= ~0ull << (carry < w - 1 ? w - 1 - carry : 0);
    if (!x) {
      carry = ~cur ? (uint32_t)__builtin_clzll(~cur) : 64;
      at += 64;
      continue;
    }
    size_t b = take_run(r, at + (size_t)__builtin_ctzll(x), past);
    if (b == (size_t)-1) return -1;
    at = past = b + 1; /* p[b] is no gate byte: no run crosses it */
    carry = 0;
  }
  /* a run whose 64th byte (or min-th) is in the tail may start up to 63 bytes before it */
  return search_bytes(r, at > past + 63 ? at - 63 : past);
}
#endif

static int bytewise; /* tests: the search without vectors */

int dlp_gate_isa(const char *isa) {
  bytewise = 0;
#ifdef GATE_VECTOR
  pthread_once(&picked, pick_mask);
  if (!isa) pick_mask();
  else if (!strcmp(isa, "avx512bw") && __builtin_cpu_supports("avx512bw")) best_mask = mask_avx512;
  else if (!strcmp(isa, "avx2") && __builtin_cpu_supports("avx2")) best_mask = mask_avx2;
  else if (!strcmp(isa, "sse2")) best_mask = mask_sse2;
  else if (!strcmp(isa, "bytes")) bytewise = 1;
  else return -1;
  return 0;
#else
  return isa && strcmp(isa, "bytes") ? -1 : 0;
#endif
}

static int cmp_span(const void *a, const void *b) {
  const dlp_span *x = a, *y = b;
  return (x->start > y->start) - (x->start < y->start);
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

size_t dlp_gate_runs(const dlp_view *v, aip_dlp_scratch *s, const char *p, size_t len,
                     const char **out) {
  s->nruns = s->nseg = 0;
  aip_buf_reset(&s->gate);
#ifdef GATE_VECTOR
  pthread_once(&picked, pick_mask);
#endif
  for (int g = 0; g < v->ngate; g++) {
    search r = {&v->gate[g], s, (const unsigned char *)p, len};
    int rc;
#ifdef GATE_VECTOR
    if (r.g->nr && !bytewise) rc = search_vector(&r, best_mask);
    else
#endif
      rc = search_bytes(&r, 0);
    if (rc) return (size_t)-1;
  }
  if (s->nruns == 0) return 0;
  if (v->ngate > 1) qsort(s->runs, s->nruns, sizeof *s->runs, cmp_span);
  size_t m = 0; /* merge what overlaps or touches: still one piece of the text */
  for (size_t i = 1; i < s->nruns; i++) {
    if (s->runs[i].start <= s->runs[m].end) {
      if (s->runs[i].end > s->runs[m].end) s->runs[m].end = s->runs[i].end;
    } else {
      s->runs[++m] = s->runs[i];
    }
  }
  s->nruns = m + 1;
  if (add_seg(s, 0, s->runs[0].start)) return (size_t)-1;
  if (s->nruns == 1) { /* one piece: read it in place */
    *out = p + s->runs[0].start;
    return s->runs[0].end - s->runs[0].start;
  }
  for (size_t i = 0; i < s->nruns; i++) {
    const dlp_span *r = &s->runs[i];
    if ((i && add_seg(s, s->gate.len, r->start)) ||
        aip_buf_append(&s->gate, p + r->start, r->end - r->start) ||
        aip_buf_append(&s->gate, &(char){SEPARATOR}, 1))
      return (size_t)-1;
  }
  *out = s->gate.data;
  return s->gate.len;
}
