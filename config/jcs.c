/* jcs.c -- RFC 8785 JSON Canonicalization Scheme over a cJSON tree: the bytes a policy
 * signature covers (signing.h).
 *
 * Three rules make the form canonical: object members sorted by the UTF-16 code units of their
 * names (not by UTF-8 bytes: they differ once a name holds characters above U+FFFF), numbers
 * written the way ECMAScript's Number::toString writes them, and strings with exactly the
 * escapes of section 3.2.2.2. No white space anywhere.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/signing.h"

typedef struct jbuf {
  char *data;
  size_t len, cap;
  int oom;
} jbuf;

static void put(jbuf *b, const char *p, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
      b->oom = 1;
      return;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void puts_(jbuf *b, const char *s) { put(b, s, strlen(s)); }

/* ---- numbers --------------------------------------------------------------------------------- */

/* The shortest round-trip digits are found by asking printf for 1, 2, ... 17 significant digits
 * until strtod gives the same double back: at most 17 conversions, simple and exact because
 * glibc's printf rounds correctly (the nearest p-digit decimal is the one ECMAScript picks when
 * several p-digit decimals read back as d). A Ryu-style algorithm would be ~10x faster; policies
 * hold a handful of numbers. Relies on the "C" locale (the aip binary never calls setlocale). */
int aip_jcs_number(double d, char out[AIP_JCS_NUMBER_MAX]) {
  if (!isfinite(d)) return -EDOM;
  if (d == 0) { /* both zeros */
    strcpy(out, "0");
    return 0;
  }
  char tmp[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
    if (strtod(tmp, NULL) == d) break;
  }
  /* tmp is [-]D[.DDD]e(+|-)XX: collect the digits and the decimal exponent */
  char digits[20];
  int k = 0, neg = tmp[0] == '-';
  const char *s = tmp + neg;
  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9') digits[k++] = *s;
  while (k > 1 && digits[k - 1] == '0') k--;
  int n = atoi(s + 1) + 1; /* value = 0.DIGITS x 10^n */
  char *o = out;
  if (neg) *o++ = '-';
  if (k <= n && n <= 21) { /* integer: digits then zeros */
    memcpy(o, digits, (size_t)k);
    o += k;
    for (int i = k; i < n; i++) *o++ = '0';
  } else if (0 < n && n <= 21) { /* decimal point inside the digits */
    memcpy(o, digits, (size_t)n);
    o += n;
    *o++ = '.';
    memcpy(o, digits + n, (size_t)(k - n));
    o += k - n;
  } else if (-6 < n && n <= 0) { /* 0.000ddd */
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -n; i++) *o++ = '0';
    memcpy(o, digits, (size_t)k);
    o += k;
  } else { /* exponent form: d[.ddd]e(+|-)x */
    *o++ = digits[0];
    if (k > 1) {
      *o++ = '.';
      memcpy(o, digits + 1, (size_t)(k - 1));
      o += k - 1;
    }
    o += sprintf(o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
  }
  *o = '\0';
  return 0;
}

/* ---- strings --------------------------------------------------------------------------------- */

/* One UTF-8 sequence at s (n bytes left): its length, or 0 when it is not well-formed (overlong
 * forms, surrogates and values above U+10FFFF included). */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp) {
  unsigned c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (!len || len > n || c > 0xF4) return 0;
  unsigned v = c & (0x7F >> len);
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

static int utf8_valid(const char *s) {
  size_t n = strlen(s);
  unsigned cp;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_next((const unsigned char *)s + i, n - i, &cp);
    if (!l) return 0;
    i += l;
  }
  return 1;
}

static void put_string(jbuf *b, const char *s) {
  put(b, "\"", 1);
  const char *run = s;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    put(b, run, (size_t)(s - run));
    run = s + 1;
    char esc[8];
    switch (c) {
      case '"': puts_(b, "\\\""); break;
      case '\\': puts_(b, "\\\\"); break;
      case '\b': puts_(b, "\\b"); break;
      case '\t': puts_(b, "\\t"); break;
      case '\n': puts_(b, "\\n"); break;
      case '\f': puts_(b, "\\f"); break;
      case '\r': puts_(b, "\\r"); break;
      default:
        snprintf(esc, sizeof esc, "\\u%04x", c); /* lower-case hex, as RFC 8785 requires */
        puts_(b, esc);
    }
  }
  put(b, run, (size_t)(s - run));
  put(b, "\"", 1);
}

/* ---- member order ---------------------------------------------------------------------------- */

/* Walks a (valid) UTF-8 string as UTF-16 code units. */
typedef struct u16it {
  const unsigned char *p;
  size_t n;
  int low; /* pending low surrogate, or -1 */
} u16it;

static int u16_next(u16it *it) {
  if (it->low >= 0) {
    int u = it->low;
    it->low = -1;
    return u;
  }
  if (!it->n) return -1;
  unsigned cp;
  size_t l = utf8_next(it->p, it->n, &cp);
  it->p += l;
  it->n -= l;
  if (cp < 0x10000) return (int)cp;
  cp -= 0x10000;
  it->low = (int)(0xDC00 + (cp & 0x3FF));
  return (int)(0xD800 + (cp >> 10));
}

static int name_cmp(const void *a, const void *b) {
  const char *x = (*(const cJSON *const *)a)->string, *y = (*(const cJSON *const *)b)->string;
  u16it i = {(const unsigned char *)x, strlen(x), -1}, j = {(const unsigned char *)y, strlen(y), -1};
  for (;;) {
    int u = u16_next(&i), v = u16_next(&j);
    if (u != v) return u < v ? -1 : 1; /* a shorter name (-1) sorts first */
    if (u < 0) return 0;
  }
}

/* ---- values ---------------------------------------------------------------------------------- */

static int value(jbuf *b, const cJSON *v, int depth, aip_error *err);

static int object(jbuf *b, const cJSON *v, int depth, aip_error *err) {
  size_t n = 0;
  for (const cJSON *c = v->child; c; c = c->next) n++;
  const cJSON **m = n ? malloc(n * sizeof *m) : NULL;
  if (n && !m) return aip_error_set(err, -ENOMEM, "out of memory");
  n = 0;
  int rc = 0;
  for (const cJSON *c = v->child; c && !rc; c = c->next) {
    if (!c->string || !utf8_valid(c->string))
      rc = aip_error_set(err, -EINVAL, "canonical JSON: a member name is not valid UTF-8");
    m[n++] = c;
  }
  if (!rc && n) qsort(m, n, sizeof *m, name_cmp); /* m is NULL for {} */
  for (size_t i = 1; i < n && !rc; i++)
    if (name_cmp(&m[i - 1], &m[i]) == 0)
      rc = aip_error_set(err, -EINVAL, "canonical JSON: duplicate member name \"%.80s\"",
                         m[i]->string);
  put(b, "{", 1);
  for (size_t i = 0; i < n && !rc; i++) {
    if (i) put(b, ",", 1);
    put_string(b, m[i]->string);
    put(b, ":", 1);
    rc = value(b, m[i], depth + 1, err);
  }
  put(b, "}", 1);
  free(m);
  return rc;
}

static int value(jbuf *b, const cJSON *v, int depth, aip_error *err) {
  if (depth > AIP_JCS_MAX_DEPTH)
    return aip_error_set(err, -EINVAL, "canonical JSON: nesting deeper than %d levels",
                         AIP_JCS_MAX_DEPTH);
  char num[AIP_JCS_NUMBER_MAX];
  switch (v->type & 0xFF) {
    case cJSON_NULL: puts_(b, "null"); return 0;
    case cJSON_True: puts_(b, "true"); return 0;
    case cJSON_False: puts_(b, "false"); return 0;
    case cJSON_Number:
      if (aip_jcs_number(v->valuedouble, num))
        return aip_error_set(err, -EINVAL, "canonical JSON: NaN and Infinity are not JSON");
      puts_(b, num);
      return 0;
    case cJSON_String:
      if (!v->valuestring || !utf8_valid(v->valuestring))
        return aip_error_set(err, -EINVAL, "canonical JSON: a string is not valid UTF-8");
      put_string(b, v->valuestring);
      return 0;
    case cJSON_Array: {
      put(b, "[", 1);
      int rc = 0;
      for (const cJSON *c = v->child; c && !rc; c = c->next) {
        if (c != v->child) put(b, ",", 1);
        rc = value(b, c, depth + 1, err);
      }
      put(b, "]", 1);
      return rc;
    }
    case cJSON_Object:
      return object(b, v, depth, err);
    default:
      return aip_error_set(err, -EINVAL, "canonical JSON: unsupported value type");
  }
}

int aip_jcs_serialize(const cJSON *v, char **out, size_t *out_len, aip_error *err) {
  *out = NULL;
  if (out_len) *out_len = 0;
  if (!v) return aip_error_set(err, -EINVAL, "canonical JSON: no value");
  jbuf b = {0};
  int rc = value(&b, v, 0, err);
  if (!rc && b.oom) rc = aip_error_set(err, -ENOMEM, "out of memory");
  if (rc) {
    free(b.data);
    return rc;
  }
  *out = b.data;
  if (out_len) *out_len = b.len;
  return 0;
}
