/* dlp_compile.c -- policy DLP config -> aip_dlp: rules, validation, Hyperscan databases.
 *
 * Order of work, cheapest first: PCRE2 compiles every rule (microseconds each, and it is the
 * engine that decides spans); then the serialized-database cache is asked (dlp_cache.c); only
 * on a miss is every pattern checked alone with hs_expression_info and the per-scope databases
 * built with hs_compile_multi, which is what costs seconds for hundreds of rules. A pattern
 * refused by either engine is reported as `file:line: pattern "name": <engine message>`, the
 * way Hyperscan words it; with failover.on_regex_error: allow it is dropped with a warning.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dlp_internal.h"

typedef struct build {
  const aip_policy_doc *doc;
  aip_dlp *d;
  const aip_src_pos *pos; /* [n]: where each policy pattern was written ({0,0} for the pack) */
  int allow_bad;          /* failover.on_regex_error: allow */
  int stage;              /* 1 while PCRE2 compiles, 2 in the Hyperscan stage (rule.dropped) */
  aip_error *err;
} build;

const hs_platform_info_t *dlp_platform(void) {
  /* Generic and featureless so that a cached database loads on any x86-64 host; the fat
   * runtime still picks the best scanner for the CPU it runs on. */
  static const hs_platform_info_t generic = {HS_TUNE_FAMILY_GENERIC, 0, 0, 0};
  return &generic;
}

static int add_warning(aip_dlp *d, const char *msg) {
  char **w = realloc(d->warnings, (d->nwarn + 1) * sizeof *w);
  if (!w) return -ENOMEM;
  d->warnings = w;
  if (!(w[d->nwarn] = strdup(msg))) return -ENOMEM;
  d->nwarn++;
  return 0;
}

/* A pattern the engines refused: fails the load, or (on_regex_error: allow) drops it. */
static int bad_pattern(build *b, size_t i, const char *msg) {
  const dlp_rule *r = &b->d->rules[i];
  char line[AIP_ERROR_MAX];
  if (b->pos[i].line)
    snprintf(line, sizeof line, "%s:%d: pattern \"%s\": %s", b->doc->path, b->pos[i].line,
             r->name, msg);
  else
    snprintf(line, sizeof line, "rulepack: pattern \"%s\": %s", r->name, msg);
  if (!b->allow_bad) return aip_error_set(b->err, -EINVAL, "%s", line);
  b->d->rules[i].dropped = b->stage;
  char w[AIP_ERROR_MAX + 64];
  snprintf(w, sizeof w, "%s (dropped: failover.on_regex_error is allow)", line);
  return add_warning(b->d, w);
}

/* ---- rules ---------------------------------------------------------------------------------- */

static char *join3(const char *a, const char *b, const char *c) {
  size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
  char *s = malloc(la + lb + lc + 1);
  if (!s) return NULL;
  memcpy(s, a, la);
  memcpy(s + la, b, lb);
  memcpy(s + la + lb, c, lc + 1);
  return s;
}

static int rule_init(dlp_rule *r, const char *name, const char *expr, unsigned scopes) {
  r->name = strdup(name);
  r->placeholder = join3("[REDACTED:", name, "]");
  r->enc_placeholder = join3("[REDACTED:", name, ":encoded]");
  r->enc_name = join3(name, " (encoded)", "");
  r->expr = expr;
  r->pcre_expr = dlp_regex_to_pcre(expr);
  if (!r->name || !r->placeholder || !r->enc_placeholder || !r->enc_name || !r->pcre_expr)
    return -ENOMEM;
  /* Hyperscan gets the same \s as PCRE2 (Go's): with PCRE's wider \s, a negated class such as
   * [^\s] would be narrower in the prefilter than in the matcher, and miss. */
  r->hs_expr = strdup(r->pcre_expr);
  if (!r->hs_expr) return -ENOMEM;
  r->ph_len = strlen(r->placeholder);
  r->enc_len = strlen(r->enc_placeholder);
  r->scopes = scopes;
  /* Go's regexp works on UTF-8 text; so do both engines here (the decoder guarantees it). */
  r->hs_flags = HS_FLAG_UTF8;
  int anchors;
  dlp_regex_analyze(expr, &r->chars, &r->bracket, &r->wordb, &anchors);
  r->all_chars = (r->chars.w[0] & r->chars.w[1] & r->chars.w[2] & r->chars.w[3]) == ~0ull;
  /* Gated rules are scanned in byte mode over runs of their bytes: sound when every byte a
   * match consumes is ASCII (then byte and UTF-8 mode agree), and no anchor sees where a run
   * sits in the text. Letters are left out: a rule with letters has literals Hyperscan does
   * well with, and runs of letters are everywhere. */
  const uint64_t letters = 0x07FFFFFE07FFFFFEull; /* A-Z a-z in the second word */
  r->gate_ok = !anchors && !r->chars.w[2] && !r->chars.w[3] && !(r->chars.w[1] & letters);
  return 0;
}

static unsigned scope_mask(const char *s) {
  if (s && strcmp(s, "request") == 0) return DLP_SCOPE_REQUEST;
  if (s && strcmp(s, "response") == 0) return DLP_SCOPE_RESPONSE;
  return DLP_SCOPE_REQUEST | DLP_SCOPE_RESPONSE;
}

static int make_rules(build *b) {
  const aip_dlp_config *c = &b->doc->dlp;
  size_t npack = 0;
  const dlp_pack_rule *pack = c->rulepack ? dlp_rulepack(c->rulepack, &npack) : NULL;
  if (c->rulepack && !pack)
    return aip_error_set(b->err, -EINVAL, "%s: unknown dlp.rulepack \"%s\"", b->doc->path,
                         c->rulepack);
  size_t n = c->patterns_n + npack;
  aip_dlp *d = b->d;
  d->rules = calloc(n ? n : 1, sizeof *d->rules);
  aip_src_pos *pos = calloc(n ? n : 1, sizeof *pos);
  b->pos = pos;
  if (!d->rules || !pos) return aip_error_set(b->err, -ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    dlp_rule *r = &d->rules[d->n++];
    int rc;
    if (i < c->patterns_n) {
      const aip_dlp_pattern *p = &c->patterns[i];
      pos[i] = p->pos;
      rc = rule_init(r, p->name, p->regex, scope_mask(p->scope));
    } else {
      const dlp_pack_rule *p = &pack[i - c->patterns_n];
      rc = rule_init(r, p->name, p->regex, DLP_SCOPE_REQUEST | DLP_SCOPE_RESPONSE);
      r->group = p->group;
      r->validate = p->validate;
      if (p->prefilter) {
        r->gate_ok = 0; /* gating reasons about expr's bytes; Hyperscan would run another */
        free(r->hs_expr);
        if (!(r->hs_expr = dlp_regex_to_pcre(p->prefilter))) rc = -ENOMEM;
        r->width_override = p->max_width;
      }
      if (p->bytes) r->hs_flags &= ~(unsigned)HS_FLAG_UTF8;
    }
    if (rc) return aip_error_set(b->err, rc, "out of memory");
  }
  return 0;
}

static int pcre_compile_rule(build *b, size_t i, pcre2_compile_context *cc) {
  dlp_rule *r = &b->d->rules[i];
  int code;
  PCRE2_SIZE at;
  r->re = pcre2_compile((PCRE2_SPTR)r->pcre_expr, PCRE2_ZERO_TERMINATED,
                        PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &code, &at, cc);
  if (!r->re) {
    char msg[256];
    pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
    char full[320];
    snprintf(full, sizeof full, "%s (PCRE2, at offset %zu)", msg, (size_t)at);
    return bad_pattern(b, i, full);
  }
  if (r->group > 0) {
    uint32_t groups = 0;
    pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &groups);
    if ((uint32_t)r->group > groups) r->group = 0;
  }
  pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE); /* without JIT the interpreter still works */
  return 0;
}

static int pcre_compile_all(build *b) {
  pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
  if (!cc) return aip_error_set(b->err, -ENOMEM, "out of memory");
  pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
  int rc = 0;
  for (size_t i = 0; i < b->d->n && !rc; i++) rc = pcre_compile_rule(b, i, cc);
  if (!rc && b->d->detect_encoding) {
    static const char *const cand[4] = {"0[xX][0-9A-Fa-f]{8,}", "[0-9A-Fa-f]{32,}",
                                        "[A-Za-z0-9+/]{16,}={0,2}", "[A-Za-z0-9_-]{16,}={0,2}"};
    for (int k = 0; k < 4 && !rc; k++) {
      int code;
      PCRE2_SIZE at;
      b->d->enc_re[k] = pcre2_compile((PCRE2_SPTR)cand[k], PCRE2_ZERO_TERMINATED, 0, &code,
                                      &at, cc);
      if (!b->d->enc_re[k]) rc = aip_error_set(b->err, -ENOMEM, "out of memory");
      else pcre2_jit_compile(b->d->enc_re[k], PCRE2_JIT_COMPLETE);
    }
  }
  pcre2_compile_context_free(cc);
  return rc;
}

/* ---- Hyperscan ------------------------------------------------------------------------------ */

/* Each pattern alone: syntax and widths, without building a database. */
static int hs_check_rules(build *b) {
  for (size_t i = 0; i < b->d->n; i++) {
    dlp_rule *r = &b->d->rules[i];
    if (r->dropped) continue;
    hs_expr_info_t *info = NULL;
    hs_compile_error_t *ce = NULL;
    if (hs_expression_info(r->hs_expr, r->hs_flags, &info, &ce) != HS_SUCCESS) {
      int rc = bad_pattern(b, i, ce ? ce->message : "refused by Hyperscan");
      hs_free_compile_error(ce);
      if (rc) return rc;
      continue;
    }
    r->min_width = info->min_width;
    r->max_width = info->max_width == UINT_MAX ? DLP_UNBOUNDED : info->max_width;
    if (r->width_override) r->max_width = r->width_override;
    free(info);
  }
  return 0;
}

int dlp_view_collect(aip_dlp *d, dlp_view *v, unsigned scope) {
  for (size_t k = 0; v->solo && k < v->n; k++) hs_free_database(v->solo[k]);
  free(v->solo);
  v->solo = NULL;
  free(v->idx);
  v->idx = calloc(d->n ? d->n : 1, sizeof *v->idx);
  if (!v->idx) return -ENOMEM;
  v->n = 0;
  for (size_t i = 0; i < d->n; i++)
    if (!d->rules[i].dropped && (d->rules[i].scopes & scope)) v->idx[v->n++] = (uint32_t)i;
  return 0;
}

enum { ALL_RULES, UNGATED_RULES, GATED_RULES };

/* Compiles a database of the view's rules (`which` of them) in `mode`, ids being positions in
 * the view; the gated ones in byte mode (see dlp_gated()). None selected: *db stays NULL. On
 * failure finds the pattern and reports it (or drops it and returns -EAGAIN so the caller
 * rebuilds the view). */
static int view_compile(build *b, dlp_view *v, unsigned mode, int which, hs_database_t **db) {
  aip_dlp *d = b->d;
  const char **ex = calloc(v->n, sizeof *ex);
  unsigned *fl = calloc(v->n, sizeof *fl), *ids = calloc(v->n, sizeof *ids);
  int rc = ex && fl && ids ? 0 : -ENOMEM;
  unsigned m = 0;
  for (size_t k = 0; k < v->n && !rc; k++) {
    const dlp_rule *r = &d->rules[v->idx[k]];
    if (which != ALL_RULES && dlp_gated(r) != (which == GATED_RULES)) continue;
    ex[m] = r->hs_expr;
    fl[m] = which == GATED_RULES ? r->hs_flags & ~(unsigned)HS_FLAG_UTF8 : r->hs_flags;
    ids[m++] = (unsigned)k;
  }
  hs_compile_error_t *ce = NULL;
  if (!rc && m && hs_compile_multi(ex, fl, ids, m, mode, dlp_platform(), db, &ce) !=
                 HS_SUCCESS) {
    if (ce && ce->expression >= 0 && (unsigned)ce->expression < m) {
      rc = bad_pattern(b, v->idx[ids[ce->expression]], ce->message);
      if (!rc) rc = -EAGAIN;
    } else {
      rc = aip_error_set(b->err, -EINVAL, "%s: dlp: %s", b->doc->path,
                         ce ? ce->message : "Hyperscan compile failed");
    }
  }
  hs_free_compile_error(ce);
  free(ex);
  free(fl);
  free(ids);
  return rc;
}

static int fired_cb(unsigned id, unsigned long long from, unsigned long long to,
                    unsigned flags, void *ctx) {
  uint8_t *seen = ctx;
  seen[id] = 1;
  return 0;
}

/* Which rules may match anew next to a placeholder that an earlier rule inserted (the rescan
 * rule of dlp_redact.c): those that can consume a bracket, use \b or \B, or match inside an
 * earlier rule's placeholder. Names holding brackets or control bytes defeat the reasoning, so
 * then every rule is marked. */
int dlp_view_react(aip_dlp *d, dlp_view *v) {
  hs_scratch_t *hs = NULL;
  uint8_t *seen = calloc(v->n ? v->n : 1, 1);
  free(v->react);
  v->react = calloc(v->n ? v->n : 1, 1);
  if (!seen || !v->react || (v->block && hs_alloc_scratch(v->block, &hs) != HS_SUCCESS) ||
      (v->gated && hs_alloc_scratch(v->gated, &hs) != HS_SUCCESS)) {
    hs_free_scratch(hs);
    free(seen);
    return -ENOMEM;
  }
  for (size_t k = 0; k < v->n; k++) {
    const dlp_rule *r = &d->rules[v->idx[k]];
    int unsafe = strpbrk(r->name, "[]") != NULL;
    for (const char *q = r->name; *q; q++) unsafe |= (unsigned char)*q < 0x20;
    v->react[k] |= r->bracket | r->wordb;
    memset(seen, 0, v->n);
    if (v->block) hs_scan(v->block, r->placeholder, (unsigned)r->ph_len, 0, hs, fired_cb, seen);
    if (v->gated) hs_scan(v->gated, r->placeholder, (unsigned)r->ph_len, 0, hs, fired_cb, seen);
    for (size_t j = k + 1; j < v->n; j++) v->react[j] |= seen[j] | unsafe;
  }
  hs_free_scratch(hs);
  free(seen);
  return 0;
}

/* A rule that may match anew next to a placeholder is rescanned after a replacement: around the
 * placeholders (within its width) or, unbounded, everywhere. The narrow ones share windows
 * with the whole set; a wide or unbounded one would make those windows the whole text, so it
 * gets a database of its own, which costs a fraction of the set's to scan. */
int dlp_view_solo(aip_dlp *d, dlp_view *v) {
  if (!v->solo && !(v->solo = calloc(v->n ? v->n : 1, sizeof *v->solo))) return -ENOMEM;
  for (size_t k = 0; k < v->n; k++) {
    const dlp_rule *r = &d->rules[v->idx[k]];
    hs_compile_error_t *ce = NULL;
    if (!v->react[k] || r->max_width <= DLP_WIDE || v->solo[k]) continue;
    if (hs_compile(r->hs_expr, r->hs_flags, HS_MODE_BLOCK, dlp_platform(), &v->solo[k], &ce) !=
        HS_SUCCESS)
      v->solo[k] = NULL; /* it compiled with the others; without its own we rescan them all */
    hs_free_compile_error(ce);
  }
  return 0;
}

static void view_widths(const aip_dlp *d, dlp_view *v) {
  v->min_width = UINT32_MAX;
  v->hold = v->react_w = 0;
  v->last_solo = -1;
  for (size_t k = 0; k < v->n; k++) {
    const dlp_rule *r = &d->rules[v->idx[k]];
    if (v->react[k] && r->max_width > DLP_WIDE) v->last_solo = (long)k, v->react[k] = 2;
    else if (v->react[k] && r->max_width > v->react_w) v->react_w = r->max_width;
    uint32_t w = r->max_width == DLP_UNBOUNDED ? AIP_DLP_UNBOUNDED_CAP : r->max_width;
    if (w > AIP_DLP_HOLD_MAX) w = AIP_DLP_HOLD_MAX;
    if (w > v->hold) v->hold = w;
    if (r->min_width < v->min_width) v->min_width = r->min_width;
  }
  if (v->min_width == 0) v->min_width = 1;
  dlp_gate_view(d, v);
}

/* Builds one view from scratch; a dropped pattern restarts it. */
static int view_build(build *b, int vi, unsigned scope, int with_stream) {
  dlp_view *v = &b->d->view[vi];
  for (;;) {
    int rc = dlp_view_collect(b->d, v, scope);
    if (rc) return aip_error_set(b->err, rc, "out of memory");
    if (v->n == 0) return 0;
    rc = view_compile(b, v, HS_MODE_BLOCK, UNGATED_RULES, &v->block);
    if (!rc) rc = view_compile(b, v, HS_MODE_BLOCK, GATED_RULES, &v->gated);
    if (!rc && with_stream) rc = view_compile(b, v, HS_MODE_STREAM, ALL_RULES, &v->stream);
    if (rc == -EAGAIN) {
      hs_free_database(v->block);
      hs_free_database(v->gated);
      hs_free_database(v->stream);
      v->block = v->gated = v->stream = NULL;
      continue;
    }
    if (rc) return rc;
    rc = dlp_view_react(b->d, v);
    if (!rc) rc = dlp_view_solo(b->d, v);
    return rc ? aip_error_set(b->err, rc, "out of memory") : 0;
  }
}

/* ---- public --------------------------------------------------------------------------------- */

static int dlp_active(const aip_dlp_config *c) {
  return c->present && c->enabled && (c->patterns_n > 0 || c->rulepack);
}

/* Removes dropped rules from every view's widths (the views already exclude them). */
static int finish(build *b) {
  aip_dlp *d = b->d;
  for (int vi = 0; vi < 2; vi++)
    if (d->view[vi].n) view_widths(d, &d->view[vi]);
  d->words = (d->n + 63) / 64;
  if (d->max_scan_size) {
    char w[160];
    snprintf(w, sizeof w, "%s: dlp.max_scan_size is set: bytes of a message beyond %llu are "
             "not scanned", b->doc->path, (unsigned long long)d->max_scan_size);
    if (add_warning(d, w)) return aip_error_set(b->err, -ENOMEM, "out of memory");
  }
  return 0;
}

static int compile_dbs(build *b, const aip_dlp_opts *opts) {
  aip_dlp *d = b->d;
  int with_stream = !(opts && opts->no_stream);
  const aip_dlp_cache_io *io = opts ? opts->cache : NULL;
  if (io && dlp_cache_load(d, io, with_stream) == 0) {
    d->from_cache = 1;
    return 0;
  }
  d->hs_warn_from = d->nwarn;
  int rc = hs_check_rules(b);
  if (!rc) rc = view_build(b, AIP_DLP_RESPONSE, DLP_SCOPE_RESPONSE, with_stream);
  if (!rc && b->doc->dlp.scan_requests) rc = view_build(b, AIP_DLP_REQUEST, DLP_SCOPE_REQUEST, 0);
  if (!rc && io) dlp_cache_store(d, io, with_stream);
  return rc;
}

int aip_dlp_compile(const aip_policy_doc *doc, const aip_dlp_opts *opts, aip_dlp **out,
                    aip_error *err) {
  *out = NULL;
  if (!dlp_active(&doc->dlp)) return 0;
  build b = {.doc = doc, .err = err};
  b.allow_bad = doc->failover.on_regex_error == AIP_FAILOVER_ALLOW;
  aip_dlp *d = b.d = calloc(1, sizeof *d);
  if (!d) return aip_error_set(err, -ENOMEM, "out of memory");
  d->detect_encoding = doc->dlp.detect_encoding;
  d->scan_requests = doc->dlp.scan_requests;
  d->scan_responses = doc->dlp.scan_responses;
  d->max_scan_size = doc->dlp.max_scan_size_set ? doc->dlp.max_scan_size : 0;
  int rc = make_rules(&b);
  b.stage = 1;
  if (!rc) rc = pcre_compile_all(&b);
  b.stage = 2;
  if (!rc) rc = compile_dbs(&b, opts);
  if (!rc) rc = finish(&b);
  /* dropped rules stay in d->rules (the cache key covers them) but are in no view */
  free((void *)b.pos);
  if (rc) {
    aip_dlp_free(d);
    return rc;
  }
  *out = d;
  return 0;
}

void aip_dlp_free(aip_dlp *d) {
  if (!d) return;
  for (size_t i = 0; i < d->n; i++) {
    dlp_rule *r = &d->rules[i];
    free(r->name);
    free(r->placeholder);
    free(r->enc_placeholder);
    free(r->enc_name);
    free(r->pcre_expr);
    free(r->hs_expr);
    pcre2_code_free(r->re);
  }
  free(d->rules);
  for (int vi = 0; vi < 2; vi++) {
    free(d->view[vi].idx);
    free(d->view[vi].react);
    for (size_t k = 0; d->view[vi].solo && k < d->view[vi].n; k++)
      hs_free_database(d->view[vi].solo[k]);
    free(d->view[vi].solo);
    hs_free_database(d->view[vi].block);
    hs_free_database(d->view[vi].gated);
    hs_free_database(d->view[vi].stream);
  }
  for (int k = 0; k < 4; k++) pcre2_code_free(d->enc_re[k]);
  for (size_t i = 0; i < d->nwarn; i++) free(d->warnings[i]);
  free(d->warnings);
  free(d);
}

size_t aip_dlp_rule_count(const aip_dlp *d) { return d ? d->n : 0; }
const char *aip_dlp_rule_name(const aip_dlp *d, size_t i) {
  return d && i < d->n ? d->rules[i].name : NULL;
}
const char *aip_dlp_warning(const aip_dlp *d, size_t i) {
  return d && i < d->nwarn ? d->warnings[i] : NULL;
}
int aip_dlp_from_cache(const aip_dlp *d) { return d ? d->from_cache : 0; }
