/* json.c -- strict JSON on top of cJSON.
 *
 * cJSON is lenient in ways a security gateway cannot afford: it skips any byte <= 0x20 as
 * white space, accepts numbers such as `01`, `+1`, `.5` and `1.`, lets raw control characters
 * and invalid UTF-8 through inside strings, keeps the first of two equal keys (Go keeps the
 * last, Python the last, some servers the first) and truncates strings at an escaped NUL. Any
 * of these lets the policy see a different message than the upstream server does. So a
 * message goes through three steps:
 *   1. scan: an RFC 8259 grammar check in one pass (white space, numbers, escapes, surrogate
 *      pairs, UTF-8, control characters, nesting depth);
 *   2. cJSON builds the tree (it cannot fail on scanned input except for memory);
 *   3. walk: duplicate keys (after escape decoding, so "a" and "\u0061" collide) and numbers
 *      that overflow a double.
 * The cost is a second pass over the bytes; the scan is a tight loop and far cheaper than
 * cJSON's allocation-heavy tree build.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"

/* cJSON copies a number into a 64-byte buffer before strtod; longer numbers fail to parse. We
 * reject them during the scan so a cJSON failure afterwards can only mean no memory. */
#define JSON_MAX_NUMBER_LEN 63

typedef struct jscan {
  const unsigned char *p;
  const unsigned char *end;
  int depth;
} jscan;

static aip_json_status scan_value(jscan *s);

static void skip_ws(jscan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

static int hex4(const unsigned char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned)(c - 'A' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

/* s->p is just past a backslash. A \u escape must not be NUL (cJSON would truncate the string
 * there) nor half of a surrogate pair. */
static aip_json_status scan_escape(jscan *s) {
  unsigned cp, lo;

  if (s->p >= s->end)
    return AIP_JSON_SYNTAX;
  if (*s->p && strchr("\"\\/bfnrt", *s->p)) {
    s->p++;
    return AIP_JSON_OK;
  }
  if (*s->p != 'u' || s->end - s->p < 5 || hex4(s->p + 1, &cp))
    return AIP_JSON_SYNTAX;
  s->p += 5;
  if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
    return AIP_JSON_BAD_UTF8;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
      return AIP_JSON_BAD_UTF8;
    s->p += 6;
  }
  return AIP_JSON_OK;
}

static aip_json_status scan_string(jscan *s) {
  aip_json_status st;
  size_t k;

  s->p++; /* opening quote */
  for (;;) {
    while (s->p < s->end && *s->p >= 0x20 && *s->p < 0x80 && *s->p != '"' && *s->p != '\\')
      s->p++;
    if (s->p >= s->end)
      return AIP_JSON_SYNTAX;
    if (*s->p == '"') {
      s->p++;
      return AIP_JSON_OK;
    }
    if (*s->p == '\\') {
      s->p++;
      if ((st = scan_escape(s)) != AIP_JSON_OK)
        return st;
    } else if (*s->p < 0x20) {
      return AIP_JSON_SYNTAX; /* raw control character */
    } else {
      k = aip_utf8_seq_len(s->p, (size_t)(s->end - s->p));
      if (!k)
        return AIP_JSON_BAD_UTF8;
      s->p += k;
    }
  }
}

static int is_digit(const jscan *s) {
  return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static aip_json_status scan_number(jscan *s) {
  const unsigned char *start = s->p;

  if (*s->p == '-')
    s->p++;
  if (!is_digit(s))
    return AIP_JSON_SYNTAX;
  if (*s->p++ != '0')
    while (is_digit(s))
      s->p++;
  if (s->p < s->end && *s->p == '.') {
    s->p++;
    if (!is_digit(s))
      return AIP_JSON_SYNTAX;
    while (is_digit(s))
      s->p++;
  }
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
    s->p++;
    if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
      s->p++;
    if (!is_digit(s))
      return AIP_JSON_SYNTAX;
    while (is_digit(s))
      s->p++;
  }
  return s->p - start > JSON_MAX_NUMBER_LEN ? AIP_JSON_SYNTAX : AIP_JSON_OK;
}

static aip_json_status scan_literal(jscan *s, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
    return AIP_JSON_SYNTAX;
  s->p += n;
  return AIP_JSON_OK;
}

/* Objects and arrays share one loop: `close` is '}' or ']', members of objects are
 * "key" ws ':' value. */
static aip_json_status scan_container(jscan *s, unsigned char close) {
  aip_json_status st;

  if (++s->depth > AIP_JSON_MAX_DEPTH)
    return AIP_JSON_TOO_DEEP;
  s->p++;
  skip_ws(s);
  if (s->p < s->end && *s->p == close) {
    s->p++;
    s->depth--;
    return AIP_JSON_OK;
  }
  for (;;) {
    if (close == '}') {
      if (s->p >= s->end || *s->p != '"')
        return AIP_JSON_SYNTAX;
      if ((st = scan_string(s)) != AIP_JSON_OK)
        return st;
      skip_ws(s);
      if (s->p >= s->end || *s->p != ':')
        return AIP_JSON_SYNTAX;
      s->p++;
    }
    if ((st = scan_value(s)) != AIP_JSON_OK)
      return st;
    if (s->p >= s->end)
      return AIP_JSON_SYNTAX;
    if (*s->p == close) {
      s->p++;
      s->depth--;
      return AIP_JSON_OK;
    }
    if (*s->p != ',')
      return AIP_JSON_SYNTAX;
    s->p++;
    skip_ws(s);
  }
}

/* A value with the white space around it. */
static aip_json_status scan_value(jscan *s) {
  aip_json_status st;

  skip_ws(s);
  if (s->p >= s->end)
    return AIP_JSON_SYNTAX;
  switch (*s->p) {
  case '{': st = scan_container(s, '}'); break;
  case '[': st = scan_container(s, ']'); break;
  case '"': st = scan_string(s); break;
  case 't': st = scan_literal(s, "true"); break;
  case 'f': st = scan_literal(s, "false"); break;
  case 'n': st = scan_literal(s, "null"); break;
  default:
    if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
      st = scan_number(s);
    else
      st = AIP_JSON_SYNTAX;
  }
  if (st == AIP_JSON_OK)
    skip_ws(s);
  return st;
}

/* ---- tree checks ---- */

static int key_cmp(const void *a, const void *b) {
  return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Small objects (the JSON-RPC envelope, most arguments) are checked pairwise; larger ones
 * sort their key pointers, O(n log n) instead of O(n^2). */
static aip_json_status check_keys(const cJSON *obj) {
  const cJSON *a, *b, *stackv[32], **v;
  size_t n = 0, i;
  aip_json_status st = AIP_JSON_OK;

  for (a = obj->child; a; a = a->next)
    n++;
  if (n <= 8) {
    for (a = obj->child; a; a = a->next)
      for (b = a->next; b; b = b->next)
        if (strcmp(a->string, b->string) == 0)
          return AIP_JSON_DUPLICATE_KEY;
    return AIP_JSON_OK;
  }
  v = n <= 32 ? stackv : malloc(n * sizeof(*v));
  if (!v)
    return AIP_JSON_NOMEM;
  for (i = 0, a = obj->child; a; a = a->next)
    v[i++] = a;
  qsort(v, n, sizeof(*v), key_cmp);
  for (i = 1; i < n; i++)
    if (strcmp(v[i - 1]->string, v[i]->string) == 0) {
      st = AIP_JSON_DUPLICATE_KEY;
      break;
    }
  if (v != stackv)
    free(v);
  return st;
}

static aip_json_status walk(const cJSON *item) {
  aip_json_status st;

  if (cJSON_IsNumber(item))
    return isfinite(item->valuedouble) ? AIP_JSON_OK : AIP_JSON_SYNTAX; /* 1e999 */
  if (cJSON_IsObject(item) && (st = check_keys(item)) != AIP_JSON_OK)
    return st;
  if (cJSON_IsObject(item) || cJSON_IsArray(item))
    for (const cJSON *c = item->child; c; c = c->next)
      if ((st = walk(c)) != AIP_JSON_OK)
        return st;
  return AIP_JSON_OK;
}

aip_json_status aip_json_parse(const char *buf, size_t len, cJSON **out) {
  const char *end = NULL;
  aip_json_status st;
  cJSON *root;

  *out = NULL;
  if (!buf)
    return AIP_JSON_SYNTAX;
  jscan s = {(const unsigned char *)buf, (const unsigned char *)buf + len, 0};
  st = scan_value(&s);
  if (st != AIP_JSON_OK)
    return st;
  if (s.p != s.end)
    return AIP_JSON_SYNTAX; /* trailing bytes */
  root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
  if (!root)
    return AIP_JSON_NOMEM;
  /* The scan already proved this; kept so a cJSON behaviour change cannot go unnoticed. */
  while (end && end < buf + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
    end++;
  if (end != buf + len) {
    cJSON_Delete(root);
    return AIP_JSON_SYNTAX;
  }
  st = walk(root);
  if (st != AIP_JSON_OK) {
    cJSON_Delete(root);
    return st;
  }
  *out = root;
  return AIP_JSON_OK;
}

const char *aip_json_status_str(aip_json_status st) {
  switch (st) {
  case AIP_JSON_OK: return "ok";
  case AIP_JSON_SYNTAX: return "invalid JSON";
  case AIP_JSON_BAD_UTF8: return "invalid UTF-8, lone surrogate or NUL escape in a string";
  case AIP_JSON_DUPLICATE_KEY: return "duplicate key in an object";
  case AIP_JSON_TOO_DEEP: return "JSON nested too deeply";
  case AIP_JSON_NOMEM: return "out of memory";
  }
  return "unknown JSON error";
}

int aip_json_print(aip_buf *b, const cJSON *item) {
  char *s = cJSON_PrintUnformatted(item);
  int err;
  if (!s)
    return -ENOMEM;
  err = aip_buf_puts(b, s);
  cJSON_free(s);
  return err;
}

/* ---- Go-compatible rendering ---- */

/* Shortest decimal digits that read back as v (as Go's strconv does): tries %.{p}e for
 * p = 1..17 and keeps the first that round-trips. Up to 17 snprintf+strtod pairs; a Ryu port
 * would be faster, but numbers in tool arguments are rare and short. */
static void shortest_digits(double v, char digits[20], int *exp10) {
  char tmp[40], *e;
  int p, n = 0;

  for (p = 1; p <= 17; p++) {
    snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
    if (strtod(tmp, NULL) == v)
      break;
  }
  e = strchr(tmp, 'e');
  *exp10 = atoi(e + 1);
  for (char *c = tmp; c < e; c++)
    if (*c >= '0' && *c <= '9')
      digits[n++] = *c;
  while (n > 1 && digits[n - 1] == '0')
    n--;
  digits[n] = '\0';
}

int aip_json_format_float_f(aip_buf *b, double v) {
  char digits[20], out[400];
  int exp10, nd, o = 0;

  if (!isfinite(v))
    return aip_buf_puts(b, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
  if (signbit(v))
    out[o++] = '-';
  v = fabs(v);
  if (v == 0) {
    out[o++] = '0';
    return aip_buf_append(b, out, (size_t)o);
  }
  shortest_digits(v, digits, &exp10);
  nd = (int)strlen(digits);
  if (exp10 < 0) { /* 0.000ddd */
    out[o++] = '0';
    out[o++] = '.';
    for (int i = 0; i < -exp10 - 1; i++)
      out[o++] = '0';
    memcpy(out + o, digits, (size_t)nd);
    o += nd;
  } else { /* ddd[000][.ddd] */
    for (int i = 0; i <= exp10 || i < nd; i++) {
      if (i == exp10 + 1)
        out[o++] = '.';
      out[o++] = i < nd ? digits[i] : '0';
    }
  }
  return aip_buf_append(b, out, (size_t)o);
}

/* encoding/json's float64 encoder: 'f' in [1e-6, 1e21), else 'e' with a minimal negative
 * exponent ("1e-07" is cleaned up to "1e-7"; positive exponents there are >= 21 anyway). */
static int go_number(aip_buf *b, double v) {
  char digits[20];
  int exp10;
  double a = fabs(v);

  if (a == 0 || (a >= 1e-6 && a < 1e21))
    return aip_json_format_float_f(b, v);
  shortest_digits(a, digits, &exp10);
  return aip_buf_printf(b, "%s%c%s%se%+d", signbit(v) ? "-" : "", digits[0],
                        digits[1] ? "." : "", digits + 1, exp10);
}

static int go_object(aip_buf *b, const cJSON *obj) {
  const cJSON *c, *stackv[16], **v;
  size_t n = 0, i;
  int err = 0;

  for (c = obj->child; c; c = c->next)
    n++;
  v = n <= 16 ? stackv : malloc(n * sizeof(*v));
  if (!v)
    return -ENOMEM;
  for (i = 0, c = obj->child; c; c = c->next)
    v[i++] = c;
  qsort(v, n, sizeof(*v), key_cmp);
  err = aip_buf_append(b, "{", 1);
  for (i = 0; i < n && !err; i++) {
    if (i)
      err = aip_buf_append(b, ",", 1);
    if (!err)
      err = aip_buf_json_string(b, v[i]->string, strlen(v[i]->string), 1);
    if (!err)
      err = aip_buf_append(b, ":", 1);
    if (!err)
      err = aip_json_print_go(b, v[i]);
  }
  if (!err)
    err = aip_buf_append(b, "}", 1);
  if (v != stackv)
    free(v);
  return err;
}

int aip_json_print_go(aip_buf *b, const cJSON *item) {
  int err = 0;

  if (cJSON_IsString(item))
    return aip_buf_json_string(b, item->valuestring, strlen(item->valuestring), 1);
  if (cJSON_IsNumber(item))
    return go_number(b, item->valuedouble);
  if (cJSON_IsBool(item))
    return aip_buf_puts(b, cJSON_IsTrue(item) ? "true" : "false");
  if (cJSON_IsObject(item))
    return go_object(b, item);
  if (cJSON_IsArray(item)) {
    err = aip_buf_append(b, "[", 1);
    for (const cJSON *c = item->child; c && !err; c = c->next) {
      if (c != item->child)
        err = aip_buf_append(b, ",", 1);
      if (!err)
        err = aip_json_print_go(b, c);
    }
    return err ? err : aip_buf_append(b, "]", 1);
  }
  return aip_buf_puts(b, "null");
}
