/* dlp_jtok.c -- the DLP's JSON tokenizer: strict (RFC 8259 grammar, UTF-8, depth 64), incremental
 * (a chunk may end anywhere, even inside an escape or a UTF-8 sequence) and zero-copy (events
 * are offsets into the caller's chunk). Block mode feeds one chunk; streaming feeds many.
 *
 * Why not json.c: that one validates a whole buffer for cJSON. Redaction needs the raw offsets
 * of every string and number, and streaming needs to stop and resume at any byte, so this is a
 * push-down state machine instead. Both enforce the same grammar, except that here a lone
 * surrogate escape is allowed (it is valid JSON syntax; the decoder turns it into U+FFFD so
 * the scanners only ever see valid UTF-8) and numbers may be up to DLP_NUMBER_MAX bytes.
 */
#include <errno.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "engine/dlp_internal.h"

enum { ST_VALUE, ST_VALUE_OR_CLOSE, ST_KEY_OR_CLOSE, ST_KEY, ST_COLON, ST_AFTER, ST_STR, ST_NUM,
       ST_LIT, ST_DONE };
enum { N_START, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };
enum { S_PLAIN = 0, S_ESC = 1, S_HEX0 = 2 /* ..S_HEX0+3 */, S_UTF8 = 6 };

static const char *const lits[3] = {"true", "false", "null"};

void dlp_jtok_init(dlp_jtok *t) {
  memset(t, 0, sizeof *t);
  t->state = ST_VALUE;
}

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* State after a value ends, at the current depth. */
static int after_value(const dlp_jtok *t) { return t->depth == 0 ? ST_DONE : ST_AFTER; }

/* Lead byte of a UTF-8 sequence: sets how many continuation bytes follow and the range of the
 * first one (which is what rules out overlongs, surrogates and code points above U+10FFFF). */
static int utf8_lead(dlp_jtok *t, unsigned char c) {
  t->lo = 0x80, t->hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) t->need = 1;
  else if (c >= 0xE0 && c <= 0xEF) {
    t->need = 2;
    if (c == 0xE0) t->lo = 0xA0;
    if (c == 0xED) t->hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    t->need = 3;
    if (c == 0xF0) t->lo = 0x90;
    if (c == 0xF4) t->hi = 0x8F;
  } else
    return -EILSEQ;
  return 0;
}

/* Scans string content from *pos. Returns 1 when the closing quote was reached (*pos past it,
 * *end at the quote), 0 at the end of the chunk, < 0 on error. */
/* The continuation bytes that utf8_lead() asked for, all present at p: are they valid? */
static int utf8_tail_ok(const dlp_jtok *t, const unsigned char *p) {
  if (p[0] < t->lo || p[0] > t->hi) return 0;
  for (unsigned k = 1; k < t->need; k++)
    if ((p[k] & 0xC0) != 0x80) return 0;
  return 1;
}

/* Length of the valid escape at p (a backslash), 0 when invalid or cut off by the chunk end
 * (the byte-at-a-time states then decide). */
static size_t escape_len(const unsigned char *p, size_t n) {
  if (n < 2) return 0;
  switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': return 2;
    case 'u':
      return n >= 6 && is_hex(p[2]) && is_hex(p[3]) && is_hex(p[4]) && is_hex(p[5]) ? 6 : 0;
    default: return 0;
  }
}

/* Eight bytes at a time: non-zero when one of them is a quote, a backslash, a control byte or
 * not ASCII (the classic "has zero byte" bit tricks). */
static uint64_t special8(uint64_t w) {
  const uint64_t high = 0x8080808080808080ull;
  const uint64_t ones = 0x0101010101010101ull;
  uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
  return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & high;
}

/* From i, the first byte that is special (as in special8) or within 8 of the end: string
 * content is mostly plain ASCII, so this loop is most of the tokenizer's time. */
static size_t skip_plain(const unsigned char *p, size_t i, size_t n) {
#ifdef __SSE2__
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x20);
  while (i + 16 <= n) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
    /* signed: bytes >= 0x80 are negative, so "< 0x20" also flags non-ASCII */
    __m128i sp = _mm_or_si128(_mm_cmplt_epi8(x, ctl),
                              _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)));
    int m = _mm_movemask_epi8(sp);
    if (m) return i + (size_t)__builtin_ctz((unsigned)m);
    i += 16;
  }
#endif
  while (i + 8 <= n) {
    uint64_t w, m;
    memcpy(&w, p + i, 8);
    if ((m = special8(w))) return i + ((size_t)__builtin_ctzll(m) >> 3); /* lowest flag exact */
    i += 8;
  }
  return i;
}

static int scan_string(dlp_jtok *t, const unsigned char *p, size_t n, size_t *pos, size_t *end) {
  size_t i = *pos;
  while (i < n) {
    if (t->sub == S_PLAIN) { /* jump to the next special byte */
      i = skip_plain(p, i, n);
      if (i == n) break;
    }
    unsigned char c = p[i];
    if (t->sub == S_PLAIN) {
      /* the rest, byte by byte: printable ASCII other than quote and backslash */
      while (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
        if (++i == n) goto out;
        c = p[i];
      }
      if (c == '"') {
        *end = i;
        *pos = i + 1;
        return 1;
      }
      /* whole escapes and characters in one step when the chunk holds them */
      if (c == '\\') {
        size_t k = escape_len(p + i, n - i);
        if (k) {
          i += k;
          continue;
        }
        t->sub = S_ESC;
      } else if (c < 0x20) {
        return -EINVAL;
      } else {
        int err = utf8_lead(t, c);
        if (err) return err;
        if (i + t->need < n && utf8_tail_ok(t, p + i + 1)) {
          i += t->need + 1;
          continue;
        }
        t->sub = S_UTF8;
      }
    } else if (t->sub == S_ESC) {
      if (c == 'u') t->sub = S_HEX0;
      else if (c && strchr("\"\\/bfnrt", c)) t->sub = S_PLAIN;
      else return -EINVAL;
    } else if (t->sub >= S_HEX0 && t->sub < S_HEX0 + 4) {
      if (!is_hex(c)) return -EINVAL;
      t->sub = t->sub == S_HEX0 + 3 ? S_PLAIN : t->sub + 1;
    } else { /* S_UTF8 */
      if (c < t->lo || c > t->hi) return -EILSEQ;
      t->lo = 0x80, t->hi = 0xBF;
      if (--t->need == 0) t->sub = S_PLAIN;
    }
    i++;
  }
out:
  *pos = n;
  return 0;
}

/* Number grammar, one byte at a time. Returns 1 if c continues the number, 0 if it ends it
 * (validly), -EINVAL. */
static int num_step(dlp_jtok *t, unsigned char c) {
  int d = c >= '0' && c <= '9';
  if (++t->numlen > DLP_NUMBER_MAX) return -EINVAL;
  switch (t->sub) {
    case N_START: t->sub = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INT; return 1;
    case N_MINUS: if (c == '0') t->sub = N_ZERO; else if (d) t->sub = N_INT; else return -EINVAL;
      return 1;
    case N_ZERO: case N_INT:
      if (d && t->sub == N_INT) return 1;
      if (c == '.') { t->sub = N_DOT; return 1; }
      if (c == 'e' || c == 'E') { t->sub = N_E; return 1; }
      return d ? -EINVAL : 0; /* "01" */
    case N_DOT: if (!d) return -EINVAL; t->sub = N_FRAC; return 1;
    case N_FRAC:
      if (d) return 1;
      if (c == 'e' || c == 'E') { t->sub = N_E; return 1; }
      return 0;
    case N_E:
      if (c == '+' || c == '-') { t->sub = N_ESIGN; return 1; }
      /* fall through */
    case N_ESIGN: if (!d) return -EINVAL; t->sub = N_EXP; return 1;
    default: return d ? 1 : 0; /* N_EXP */
  }
}

static int num_complete(const dlp_jtok *t) {
  return t->sub == N_ZERO || t->sub == N_INT || t->sub == N_FRAC || t->sub == N_EXP;
}

static int open_container(dlp_jtok *t, int is_obj) {
  if (t->depth >= AIP_JSON_MAX_DEPTH) return -E2BIG;
  if (is_obj) t->objmask |= 1ull << t->depth;
  else t->objmask &= ~(1ull << t->depth);
  t->depth++;
  t->state = is_obj ? ST_KEY_OR_CLOSE : ST_VALUE_OR_CLOSE;
  return 0;
}

static int top_is_obj(const dlp_jtok *t) { return (t->objmask >> (t->depth - 1)) & 1; }

/* A value starts with byte c at offset i. */
static int start_value(dlp_jtok *t, unsigned char c, size_t i, dlp_jev *ev) {
  if (c == '{' || c == '[') {
    int err = open_container(t, c == '{');
    if (err) return err;
    *ev = (dlp_jev){.type = JEV_OPEN, .off = i, .is_obj = c == '{'};
    return 1;
  }
  if (c == '"') {
    t->state = ST_STR, t->sub = S_PLAIN, t->in_str = 1;
    *ev = (dlp_jev){.type = JEV_STR_BEGIN, .off = i + 1, .is_key = 0};
    return 1;
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    t->state = ST_NUM, t->in_num = 1, t->sub = N_START, t->numlen = 0;
    *ev = (dlp_jev){.type = JEV_NUM_BEGIN, .off = i};
    return 1;
  }
  for (int k = 0; k < 3; k++)
    if (c == (unsigned char)lits[k][0]) {
      t->state = ST_LIT, t->sub = k, t->need = 1;
      return 0;
    }
  return -EINVAL;
}

static int close_container(dlp_jtok *t, unsigned char c, size_t i, dlp_jev *ev) {
  if (t->depth == 0 || (c == '}') != top_is_obj(t)) return -EINVAL;
  t->depth--;
  t->state = after_value(t);
  *ev = (dlp_jev){.type = JEV_CLOSE, .off = i, .is_obj = c == '}'};
  return 1;
}

/* One structural byte outside strings, numbers and literals. */
static int structural(dlp_jtok *t, unsigned char c, size_t i, dlp_jev *ev) {
  switch (t->state) {
    case ST_VALUE_OR_CLOSE:
      if (c == ']') return close_container(t, c, i, ev);
      /* fall through */
    case ST_VALUE: return start_value(t, c, i, ev);
    case ST_KEY_OR_CLOSE:
      if (c == '}') return close_container(t, c, i, ev);
      /* fall through */
    case ST_KEY:
      if (c != '"') return -EINVAL;
      t->state = ST_STR, t->sub = S_PLAIN, t->in_str = 2; /* 2: a key */
      *ev = (dlp_jev){.type = JEV_STR_BEGIN, .off = i + 1, .is_key = 1};
      return 1;
    case ST_COLON:
      if (c != ':') return -EINVAL;
      t->state = ST_VALUE;
      return 0;
    case ST_AFTER:
      if (c == ',') {
        t->state = top_is_obj(t) ? ST_KEY : ST_VALUE;
        return 0;
      }
      if (c == '}' || c == ']') return close_container(t, c, i, ev);
      return -EINVAL;
    default: return -EINVAL; /* ST_DONE: trailing bytes */
  }
}

/* Inside a string or number at the start of a call: continue it. */
static int continue_token(dlp_jtok *t, const unsigned char *p, size_t n, size_t *pos,
                          dlp_jev *ev) {
  size_t start = *pos, end;
  if (t->state == ST_STR) {
    int r = scan_string(t, p, n, pos, &end);
    if (r < 0) return r;
    if (r == 0) {
      *ev = (dlp_jev){.type = JEV_STR_CHUNK, .off = start, .len = n - start};
      return n > start ? 1 : 0;
    }
    t->state = t->in_str == 2 ? ST_COLON : after_value(t);
    t->in_str = 0;
    *ev = (dlp_jev){.type = JEV_STR_CHUNK, .off = start, .len = end - start, .last = 1};
    return 1;
  }
  size_t i = start; /* ST_NUM */
  for (; i < n; i++) {
    int r = num_step(t, p[i]);
    if (r < 0) return r;
    if (r == 0) break;
  }
  *pos = i;
  if (i == n) {
    *ev = (dlp_jev){.type = JEV_NUM_CHUNK, .off = start, .len = i - start};
    return i > start ? 1 : 0;
  }
  t->state = after_value(t);
  t->in_num = 0;
  *ev = (dlp_jev){.type = JEV_NUM_CHUNK, .off = start, .len = i - start, .last = 1};
  return 1;
}

int dlp_jtok_next(dlp_jtok *t, const char *chunk, size_t n, size_t *pos, dlp_jev *ev) {
  const unsigned char *p = (const unsigned char *)chunk;
  if (t->state == ST_STR || t->state == ST_NUM) {
    int r = continue_token(t, p, n, pos, ev);
    if (r != 0 || *pos >= n) return r;
  }
  while (*pos < n) {
    size_t i = (*pos)++;
    unsigned char c = p[i];
    if (t->state == ST_LIT) {
      const char *l = lits[t->sub];
      if (c != (unsigned char)l[t->need]) return -EINVAL;
      if (l[++t->need] == '\0') t->state = after_value(t);
      continue;
    }
    if (is_ws(c)) continue;
    int r = structural(t, c, i, ev);
    if (r > 0 && ev->type == JEV_NUM_BEGIN) *pos = i; /* the digits belong to the number */
    if (r != 0) return r;
  }
  return 0;
}

int dlp_jtok_finish(dlp_jtok *t, dlp_jev *ev) {
  if (t->state == ST_NUM && t->depth == 0) {
    if (!num_complete(t)) return -EINVAL;
    t->state = ST_DONE, t->in_num = 0;
    *ev = (dlp_jev){.type = JEV_NUM_CHUNK, .off = 0, .len = 0, .last = 1};
    return 1;
  }
  return t->state == ST_DONE ? 0 : -EINVAL;
}

/* ---- decoding -------------------------------------------------------------------------------- */

static unsigned hex4(const char *p) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = (unsigned char)p[i];
    v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* One escape at raw[i] (a backslash): decoded code point and raw length; 0 when it is cut off
 * (partial mode) and a high surrogate whose low half may still come. */
static size_t escape_at(const char *raw, size_t n, size_t i, int partial, unsigned *cp) {
  if (i + 1 >= n) return 0;
  char c = raw[i + 1];
  if (c != 'u') {
    switch (c) {
      case 'b': *cp = '\b'; break;
      case 'f': *cp = '\f'; break;
      case 'n': *cp = '\n'; break;
      case 'r': *cp = '\r'; break;
      case 't': *cp = '\t'; break;
      default: *cp = (unsigned char)c; /* " \ / */
    }
    return 2;
  }
  if (i + 6 > n) return 0;
  unsigned v = hex4(raw + i + 2);
  if (v >= 0xD800 && v <= 0xDBFF) {
    if (i + 12 <= n && raw[i + 6] == '\\' && raw[i + 7] == 'u') {
      unsigned lo = hex4(raw + i + 8);
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        *cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        return 12;
      }
    } else if (partial && i + 12 > n) {
      return 0; /* the low half may be in the next chunk */
    }
    v = 0xFFFD;
  } else if (v >= 0xDC00 && v <= 0xDFFF) {
    v = 0xFFFD;
  }
  *cp = v;
  return 6;
}

/* Length of the longest prefix of raw[0..n) that does not end inside a UTF-8 sequence. */
static size_t utf8_whole(const char *raw, size_t n) {
  size_t back = 0;
  while (back < 3 && back < n && ((unsigned char)raw[n - 1 - back] & 0xC0) == 0x80) back++;
  if (back == n) return n;
  unsigned char lead = (unsigned char)raw[n - 1 - back];
  size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return want > back + 1 ? n - 1 - back : n;
}

size_t dlp_json_decode(const char *raw, size_t n, aip_buf *out, int partial, int *err) {
  if (partial) n = utf8_whole(raw, n);
  *err = aip_buf_reserve(out, n);
  if (*err) return 0;
  char *o = out->data + out->len;
  size_t i = 0;
  while (i < n) {
    const char *bs = memchr(raw + i, '\\', n - i);
    size_t run = bs ? (size_t)(bs - raw) - i : n - i;
    memcpy(o, raw + i, run);
    o += run, i += run;
    if (!bs) break;
    unsigned cp;
    size_t k = escape_at(raw, n, i, partial, &cp);
    if (k == 0) break;
    o += put_utf8(o, cp);
    i += k;
  }
  out->len = (size_t)(o - out->data);
  out->data[out->len] = '\0';
  return i;
}

void dlp_json_raw_offsets(const char *raw, size_t n, uint32_t *offs, size_t k) {
  size_t i = 0, d = 0, j = 0; /* raw position, decoded position, next offset to map */
  while (j < k) {
    while (j < k && offs[j] <= d) offs[j++] = (uint32_t)i;
    if (j == k || i >= n) break;
    if (raw[i] != '\\') {
      const char *bs = memchr(raw + i, '\\', n - i);
      size_t run = bs ? (size_t)(bs - raw) - i : n - i;
      /* offsets inside a plain run map one to one */
      while (j < k && offs[j] < d + run) offs[j] = (uint32_t)(i + (offs[j] - d)), j++;
      i += run, d += run;
      continue;
    }
    unsigned cp = 0xFFFD;
    size_t len = escape_at(raw, n, i, 0, &cp);
    if (!len) break; /* a cut-off escape: not in validated content, but never loop on it */
    char tmp[4];
    i += len;
    d += put_utf8(tmp, cp);
  }
  while (j < k) offs[j++] = (uint32_t)n;
}

int dlp_json_escape(aip_buf *b, const char *p, size_t n) {
  static const char hexd[] = "0123456789abcdef";
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && (unsigned char)p[run] >= 0x20 && p[run] != '"' && p[run] != '\\') run++;
    int err = aip_buf_append(b, p + i, run - i);
    if (err) return err;
    if (run == n) break;
    unsigned char c = (unsigned char)p[run];
    char e[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
    size_t el = 6;
    if (c == '"' || c == '\\') e[1] = (char)c, el = 2;
    else if (c == '\n') e[1] = 'n', el = 2;
    else if (c == '\t') e[1] = 't', el = 2;
    else if (c == '\r') e[1] = 'r', el = 2;
    err = aip_buf_append(b, e, el);
    if (err) return err;
    i = run + 1;
  }
  return 0;
}
