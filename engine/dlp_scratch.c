/* dlp_scratch.c -- per-thread working memory of the DLP engine, and redaction counts.
 *
 * A scratch holds the Hyperscan scratch (grown for every database it is prepared for), the
 * PCRE2 match data and JIT stack, and the buffers a redaction works in, so that scanning a
 * clean message allocates nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dlp_internal.h"

#define JIT_STACK_START (32 * 1024)
#define JIT_STACK_MAX (512 * 1024)
#define PCRE_MATCH_LIMIT 1000000u  /* backtracking steps per match attempt */
#define PCRE_HEAP_LIMIT_KIB 8192u

aip_dlp_scratch *aip_dlp_scratch_new(void) {
  aip_dlp_scratch *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->md = pcre2_match_data_create(32, NULL);
  s->mctx = pcre2_match_context_create(NULL);
  s->jit = pcre2_jit_stack_create(JIT_STACK_START, JIT_STACK_MAX, NULL);
  if (!s->md || !s->mctx || !s->jit) {
    aip_dlp_scratch_free(s);
    return NULL;
  }
  /* A rule that backtracks badly on some text hits the limit, and that string is then
   * redacted whole (fail closed) instead of stalling the thread. */
  pcre2_set_match_limit(s->mctx, PCRE_MATCH_LIMIT);
  pcre2_set_heap_limit(s->mctx, PCRE_HEAP_LIMIT_KIB);
  pcre2_jit_stack_assign(s->mctx, NULL, s->jit);
  return s;
}

static int grow_hs(aip_dlp_scratch *s, const hs_database_t *db) {
  if (!db) return 0;
  return hs_alloc_scratch(db, &s->hs) == HS_SUCCESS ? 0 : -ENOMEM;
}

int aip_dlp_scratch_prepare(aip_dlp_scratch *s, const aip_dlp *d) {
  if (!d) return 0;
  for (int vi = 0; vi < 2; vi++) {
    int err = grow_hs(s, d->view[vi].block);
    if (!err) err = grow_hs(s, d->view[vi].gated);
    if (!err) err = grow_hs(s, d->view[vi].stream);
    for (size_t k = 0; !err && d->view[vi].solo && k < d->view[vi].n; k++)
      err = grow_hs(s, d->view[vi].solo[k]);
    if (err) return err;
  }
  size_t nmax = d->view[0].n > d->view[1].n ? d->view[0].n : d->view[1].n;
  if (nmax > s->ends_n) {
    dlp_ends *e = realloc(s->ends, nmax * sizeof *e);
    if (!e) return -ENOMEM;
    memset(e + s->ends_n, 0, (nmax - s->ends_n) * sizeof *e);
    s->ends = e;
    s->ends_n = nmax;
  }
  if (d->words > s->fired_words) {
    uint64_t *f = realloc(s->fired, d->words * sizeof *f);
    if (!f) return -ENOMEM;
    memset(f + s->fired_words, 0, (d->words - s->fired_words) * sizeof *f);
    s->fired = f;
    s->fired_words = d->words;
  }
  return 0;
}

static void ws_free(dlp_ws *w) {
  for (int k = 0; k < 2; k++) {
    aip_buf_free(&w->buf[k]);
    free(w->pc[k]);
  }
  aip_buf_free(&w->dec);
  aip_buf_free(&w->tmp);
}

void aip_dlp_scratch_free(aip_dlp_scratch *s) {
  if (!s) return;
  hs_free_scratch(s->hs);
  pcre2_match_data_free(s->md);
  pcre2_match_context_free(s->mctx);
  pcre2_jit_stack_free(s->jit);
  free(s->fired);
  for (size_t i = 0; i < s->ends_n; i++) free(s->ends[i].v);
  free(s->ends);
  free(s->ph);
  free(s->spans);
  for (int k = 0; k < 2; k++) ws_free(&s->ws[k]);
  aip_buf_free(&s->inner);
  free(s->ipc);
  free(s->offs);
  aip_buf_free(&s->gate);
  free(s->seg);
  free(s->runs);
  free(s);
}

void aip_dlp_scratch_set_deadline(aip_dlp_scratch *s, int (*expired)(void *ctx), void *ctx) {
  s->expired = expired;
  s->ectx = ctx;
}

int dlp_expired(aip_dlp_scratch *s) { return s->expired && s->expired(s->ectx); }

/* ---- counts --------------------------------------------------------------------------------- */

int aip_dlp_counts_init(aip_dlp_counts *c, const aip_dlp *d) {
  memset(c, 0, sizeof *c);
  c->rules = d ? d->n : 0;
  c->n = calloc(c->rules ? 2 * c->rules : 1, sizeof *c->n);
  return c->n ? 0 : -ENOMEM;
}

void aip_dlp_counts_reset(aip_dlp_counts *c) {
  if (c->n) memset(c->n, 0, 2 * c->rules * sizeof *c->n);
  c->total = 0;
  c->flags = 0;
}

void aip_dlp_counts_free(aip_dlp_counts *c) {
  free(c->n);
  memset(c, 0, sizeof *c);
}

int dlp_counts_add(aip_dlp_counts *c, size_t idx, uint32_t k) {
  if (!c || !k) return 0;
  if (idx < 2 * c->rules) c->n[idx] += k;
  c->total += k;
  return 0;
}

int aip_dlp_counts_next(const aip_dlp *d, const aip_dlp_counts *c, size_t *iter,
                        const char **rule, uint32_t *count) {
  if (!d || !c || !c->n) return 0;
  size_t lim = 2 * (c->rules < d->n ? c->rules : d->n);
  for (; *iter < lim; (*iter)++) {
    size_t i = *iter;
    if (!c->n[i]) continue;
    *rule = i < c->rules ? d->rules[i].name : d->rules[i - c->rules].enc_name;
    *count = c->n[i];
    (*iter)++;
    return 1;
  }
  return 0;
}
