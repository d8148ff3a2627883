/* dlp_encoding.c -- `detect_encoding`: secrets hidden in hex or base64, as the AIP reference
 * finds them (aip-go pkg/dlp findEncodedSegments and the end of Redact), step for step:
 *   1. candidates, in this order: `0[xX][0-9A-Fa-f]{8,}` and `[0-9A-Fa-f]{32,}` decoded as hex,
 *      then `[A-Za-z0-9+/]{16,}={0,2}` and `[A-Za-z0-9_-]{16,}={0,2}` decoded as base64 (std,
 *      url, raw std, raw url: the first that works); a candidate is kept when it decodes to at
 *      least 4 bytes of which 80 % of the characters are printable (Go's unicode.IsPrint or
 *      IsSpace; an invalid byte counts as U+FFFD, which is printable); a string already kept
 *      is not considered again;
 *   2. for each kept candidate still present in the text, the first pattern (policy order) that
 *      matches the decoded bytes replaces each occurrence of the candidate with
 *      "[REDACTED:<name>:encoded]", counted as "<name> (encoded)" once per occurrence (the
 *      reference replaces only the first and so forwards the others: not copied);
 *   3. (ours) steps 1 and 2 again over the new text until nothing changes.
 * Opt-in and rare, so it favours plainness over speed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "engine/dlp_internal.h"
#include "engine/engine_internal.h"

typedef struct seg {
  size_t o_off, o_len; /* the encoded text, copied into the arena (the text changes later) */
  size_t d_off, d_len; /* its decoded bytes, in the arena */
} seg;

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 0x20;
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* hex.DecodeString after strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"). */
static int hex_decode(const char *s, size_t n, aip_buf *out) {
  if (n >= 2 && s[0] == '0' && s[1] == 'x') s += 2, n -= 2;
  if (n >= 2 && s[0] == '0' && s[1] == 'X') s += 2, n -= 2;
  if (n % 2) return -1;
  for (size_t i = 0; i < n; i += 2) {
    int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
    if (hi < 0 || lo < 0) return -1;
    char b = (char)(hi << 4 | lo);
    if (aip_buf_append(out, &b, 1)) return -1;
  }
  return 0;
}

static int b64val(unsigned char c, int url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

/* Go's encoding/base64 (non-strict) for one of its four encodings. */
static int b64_decode(const char *s, size_t n, int url, int padded, aip_buf *out) {
  size_t pad = 0;
  if (padded) {
    if (n % 4) return -1;
    while (pad < 2 && pad < n && s[n - 1 - pad] == '=') pad++;
  } else if (n % 4 == 1) {
    return -1;
  }
  size_t m = n - pad;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < m; i++) {
    int v = b64val((unsigned char)s[i], url);
    if (v < 0) return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      char b = (char)(acc >> bits);
      if (aip_buf_append(out, &b, 1)) return -1;
    }
  }
  return 0;
}

static int b64_any(const char *s, size_t n, aip_buf *out) {
  static const int modes[4][2] = {{0, 1}, {1, 1}, {0, 0}, {1, 0}};
  size_t mark = out->len;
  for (int k = 0; k < 4; k++) {
    out->len = mark;
    if (b64_decode(s, n, modes[k][0], modes[k][1], out) == 0) return 0;
  }
  out->len = mark;
  return -1;
}

static int go_printable(int32_t cp) {
  if (cp < 0x80) return (cp >= 0x20 && cp < 0x7F) || (cp >= '\t' && cp <= '\r');
  if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
      cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
    return 1; /* unicode.IsSpace */
  utf8proc_category_t k = utf8proc_category(cp);
  return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_SO); /* L, M, N, P, S */
}

static int mostly_printable(const unsigned char *p, size_t n) {
  size_t runes = 0, ok = 0;
  for (size_t i = 0; i < n;) {
    size_t k = aip_utf8_seq_len(p + i, n - i);
    int32_t cp = 0xFFFD;
    if (k) utf8proc_iterate(p + i, (utf8proc_ssize_t)k, &cp);
    else k = 1;
    runes++;
    ok += go_printable(cp);
    i += k;
  }
  return runes && ok * 5 >= runes * 4;
}

static int seen(const aip_buf *arena, const seg *sg, size_t ns, const char *p, size_t n) {
  for (size_t i = 0; i < ns; i++)
    if (sg[i].o_len == n && memcmp(arena->data + sg[i].o_off, p, n) == 0) return 1;
  return 0;
}

/* Step 1: every candidate of pattern k that decodes to printable text. */
static int collect(const aip_dlp *d, int k, aip_dlp_scratch *s, const dlp_text *t,
                   aip_buf *arena, seg **sg, size_t *ns, size_t *cap) {
  size_t from = 0;
  while (from < t->len) {
    int rc = pcre2_match(d->enc_re[k], (PCRE2_SPTR)t->p, t->len, from, 0, s->md, s->mctx);
    if (rc < 0) break;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
    const char *e = t->p + ov[0];
    size_t elen = ov[1] - ov[0];
    from = ov[1];
    if (seen(arena, *sg, *ns, e, elen)) continue;
    seg g = {arena->len, elen, 0, 0};
    if (aip_buf_append(arena, e, elen)) return -ENOMEM;
    g.d_off = arena->len;
    int bad = k < 2 ? hex_decode(e, elen, arena) : b64_any(e, elen, arena);
    g.d_len = arena->len - g.d_off;
    if (bad || g.d_len < 4 || !mostly_printable((unsigned char *)arena->data + g.d_off, g.d_len)) {
      arena->len = g.o_off;
      continue;
    }
    if (*ns == *cap) {
      size_t nc = *cap ? *cap * 2 : 8;
      seg *v = realloc(*sg, nc * sizeof *v);
      if (!v) return -ENOMEM;
      *sg = v, *cap = nc;
    }
    (*sg)[(*ns)++] = g;
  }
  return 0;
}

/* Go's regexp sees an invalid byte as U+FFFD; give PCRE2 exactly that. */
static int fix_utf8(const char *p, size_t n, aip_buf *out) {
  aip_buf_reset(out);
  for (size_t i = 0; i < n;) {
    size_t k = aip_utf8_seq_len((const unsigned char *)p + i, n - i);
    int err = k ? aip_buf_append(out, p + i, k) : aip_buf_append(out, "\xEF\xBF\xBD", 3);
    if (err) return err;
    i += k ? k : 1;
  }
  return aip_buf_reserve(out, 0);
}

/* Every occurrence of the candidate in the text, left to right without overlap. The reference
 * replaces only the first: a secret repeated in one string went out in clear from its second
 * copy on (found by tests/fuzz/fuzz_dlp). *out is malloc'ed; returns the count or -ENOMEM. */
static long occurrences(const dlp_text *t, const char *orig, size_t olen, dlp_span **out) {
  dlp_span *sp = NULL;
  size_t n = 0, cap = 0, pos = 0;
  const char *at;
  *out = NULL;
  while (pos + olen <= t->len && (at = memmem(t->p + pos, t->len - pos, orig, olen))) {
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 4;
      dlp_span *g = realloc(sp, nc * sizeof(*g));
      if (!g) {
        free(sp);
        return -ENOMEM;
      }
      sp = g, cap = nc;
    }
    sp[n].start = (size_t)(at - t->p);
    sp[n].end = sp[n].start + olen;
    pos = sp[n++].end;
  }
  *out = sp;
  return (long)n;
}

/* Step 2 for one candidate: each of its occurrences is redacted and counted. */
static int redact_segment(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, dlp_ws *ws,
                          dlp_text *t, const char *orig, size_t olen, const aip_buf *dec,
                          aip_dlp_counts *c) {
  if (!memmem(t->p, t->len, orig, olen)) return 0;
  for (size_t k = 0; k < v->n; k++) {
    const dlp_rule *r = &d->rules[v->idx[k]];
    dlp_span m, *sp;
    size_t next;
    if (dlp_rule_find(r, s, dec->data, dec->len, 0, &m, &next) == 0) continue;
    long n = occurrences(t, orig, olen, &sp);
    if (n < 0) return (int)n;
    dlp_counts_add(c, (c ? c->rules : 0) + v->idx[k], (uint32_t)n);
    int err = dlp_text_replace(ws, t, sp, (size_t)n, r->enc_placeholder, r->enc_len);
    free(sp);
    return err ? err : 1;
  }
  return 0;
}

/* One round: the candidates of the text as it stands, each redacted where it still occurs.
 * 1 when the text changed. */
static int encoding_round(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, dlp_ws *ws,
                          dlp_text *t, aip_dlp_counts *c, aip_buf *dec) {
  aip_buf *arena = &ws->tmp;
  aip_buf_reset(arena);
  seg *sg = NULL;
  size_t ns = 0, cap = 0;
  int rc = 0, changed = 0;
  for (int k = 0; k < 4 && !rc; k++) rc = collect(d, k, s, t, arena, &sg, &ns, &cap);
  for (size_t i = 0; i < ns && rc >= 0; i++) {
    rc = fix_utf8(arena->data + sg[i].d_off, sg[i].d_len, dec);
    if (!rc) {
      if (dlp_expired(s)) rc = -ETIMEDOUT;
      else rc = redact_segment(d, v, s, ws, t, arena->data + sg[i].o_off, sg[i].o_len, dec, c);
    }
    if (rc > 0) changed = 1, rc = 0;
  }
  free(sg);
  return rc < 0 ? rc : changed;
}

/* Rounds until one changes nothing: redacting a candidate's copy inside a longer candidate
 * breaks that one up, and what is left of it may hide a secret of its own (found by
 * tests/fuzz/fuzz_dlp), so the result is a fixed point: scanning it again finds nothing. Each
 * round that changes the text replaces 16 or more candidate characters with a placeholder, in
 * which '[', ':' and ']' break every run, so the rounds end -- unless a rule's own name is an
 * encoded secret: after MAX_ROUNDS the text counts as unscannable (fail closed). */
#define MAX_ROUNDS 16
int dlp_encoding_pass(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, dlp_ws *ws,
                      dlp_text *t, aip_dlp_counts *c) {
  aip_buf dec;
  aip_buf_init(&dec);
  int rc, changed = 0, rounds = 0;
  while ((rc = encoding_round(d, v, s, ws, t, c, &dec)) == 1) {
    changed = 1;
    if (++rounds == MAX_ROUNDS) {
      rc = -ELOOP;
      break;
    }
  }
  aip_buf_free(&dec);
  return rc < 0 ? rc : changed;
}
