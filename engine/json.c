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
 *      that overflow a double; each number node gets its original bytes (its lexeme) in
 *      `valuestring`, which cJSON ignores for numbers but frees (cJSON_Delete) and copies
 *      (cJSON_Duplicate) like any other valuestring.
 * aip_json_print, the one printer of everything forwarded, prints a number from its lexeme, so
 * the bytes a server decodes are the bytes the policy looked at (cJSON's printer re-renders
 * with 15 significant digits: 0.9999999999999999 became 1). Nothing may change the value of a
 * parsed number node in place (cJSON_SetNumberValue would leave a stale lexeme): replace the
 * node instead.
 * The cost is a second pass over the bytes; the scan is a tight loop and far cheaper than
 * cJSON's allocation-heavy tree build.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

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

/* ---- number lexemes ---- */

/* The next number token at or after *p in validated JSON: strings (keys included) are skipped,
 * and true/false/null hold no digit or '-'. */
static const char *next_number(const char **p, const char *end, size_t *n) {
  const char *c = *p, *start;

  while (c < end) {
    if (*c == '"') {
      for (c++; *c != '"'; c++)
        if (*c == '\\')
          c++;
      c++;
    } else if (*c == '-' || (*c >= '0' && *c <= '9')) {
      start = c;
      while (c < end && (*c == '-' || *c == '+' || *c == '.' || *c == 'e' || *c == 'E' ||
                         (*c >= '0' && *c <= '9')))
        c++;
      *p = c;
      *n = (size_t)(c - start);
      return start;
    } else {
      c++;
    }
  }
  *p = c;
  return NULL;
}

/* Gives every number node its lexeme, in document order (cJSON keeps members in order). */
static aip_json_status attach_lexemes(cJSON *item, const char **p, const char *end) {
  aip_json_status st;
  const char *lex;
  size_t n;

  if (cJSON_IsNumber(item)) {
    if (!(lex = next_number(p, end, &n)))
      return AIP_JSON_SYNTAX; /* cannot happen: the scan saw this number */
    if (!(item->valuestring = malloc(n + 1)))
      return AIP_JSON_NOMEM;
    memcpy(item->valuestring, lex, n);
    item->valuestring[n] = '\0';
    return AIP_JSON_OK;
  }
  for (cJSON *c = item->child; c; c = c->next)
    if ((st = attach_lexemes(c, p, end)) != AIP_JSON_OK)
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
  if (st == AIP_JSON_OK) {
    const char *cursor = buf;
    st = attach_lexemes(root, &cursor, buf + len);
  }
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

/* ---- printing ---- */

/* cJSON's string escaping, byte for byte: " \ \b \f \n \r \t, other bytes below 0x20 as
 * \u00xx, everything else (UTF-8 included) as is. */
static int print_string(aip_buf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  int err = aip_buf_append(b, "\"", 1);

  while (!err && *p) {
    size_t run = 0;
    while (p[run] >= 0x20 && p[run] != '"' && p[run] != '\\')
      run++;
    if (run) {
      err = aip_buf_append(b, p, run);
      p += run;
      continue;
    }
    char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
    const char *short_form = strchr("\"\\\b\f\n\r\t", *p);
    if (short_form) {
      e[1] = "\"\\bfnrt"[short_form - "\"\\\b\f\n\r\t"];
      err = aip_buf_append(b, e, 2);
    } else {
      err = aip_buf_append(b, e, 6);
    }
    p++;
  }
  return err ? err : aip_buf_append(b, "\"", 1);
}

/* A number the gateway made (no lexeme): as cJSON prints it (integers in int range with %d,
 * else %1.15g), except that 16 or 17 digits are used whenever 15 do not read back as exactly
 * the same double (cJSON accepted a 15-digit form within an epsilon). */
static int print_made_number(aip_buf *b, const cJSON *item) {
  double d = item->valuedouble;
  char tmp[32];

  if (!isfinite(d))
    return aip_buf_puts(b, "null");
  if (d == (double)item->valueint)
    return aip_buf_printf(b, "%d", item->valueint);
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof(tmp), "%1.*g", prec, d);
    if (strtod(tmp, NULL) == d)
      break;
  }
  return aip_buf_puts(b, tmp);
}

static int print_value(aip_buf *b, const cJSON *item) {
  int err = 0;

  switch (item->type & 0xFF) {
  case cJSON_NULL: return aip_buf_puts(b, "null");
  case cJSON_False: return aip_buf_puts(b, "false");
  case cJSON_True: return aip_buf_puts(b, "true");
  case cJSON_Number:
    return item->valuestring ? aip_buf_puts(b, item->valuestring) : print_made_number(b, item);
  case cJSON_String: return print_string(b, item->valuestring ? item->valuestring : "");
  case cJSON_Raw: return item->valuestring ? aip_buf_puts(b, item->valuestring) : -EINVAL;
  case cJSON_Array:
  case cJSON_Object: {
    int obj = (item->type & 0xFF) == cJSON_Object;
    err = aip_buf_append(b, obj ? "{" : "[", 1);
    for (const cJSON *c = item->child; c && !err; c = c->next) {
      if (c != item->child)
        err = aip_buf_append(b, ",", 1);
      if (!err && obj)
        err = print_string(b, c->string ? c->string : "");
      if (!err && obj)
        err = aip_buf_append(b, ":", 1);
      if (!err)
        err = print_value(b, c);
    }
    return err ? err : aip_buf_append(b, obj ? "}" : "]", 1);
  }
  }
  return -EINVAL;
}

/* Compact JSON as cJSON_PrintUnformatted writes it, numbers from their lexemes. On failure
 * the buffer is left as it was. */
int aip_json_print(aip_buf *b, const cJSON *item) {
  size_t start = b->len;
  int err = item ? print_value(b, item) : -EINVAL;

  if (err && b->data) {
    b->len = start;
    b->data[start] = '\0';
  }
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

/* ---- exactness of parsed numbers ---- */

/* The lexeme's significant digits (leading and trailing zeros dropped) and the decimal exponent
 * of the first one, as shortest_digits gives them for a double. Returns 0 for a zero value. */
static int lexeme_digits(const char *s, char *digits, size_t cap, long *exp10) {
  long point = 0, e = 0, lead = -1;
  size_t nd = 0, last = 0;
  int seen_point = 0, eneg = 0;

  if (*s == '-')
    s++;
  for (long i = 0; *s && *s != 'e' && *s != 'E'; s++) {
    if (*s == '.') {
      seen_point = 1;
      continue;
    }
    if (!seen_point)
      point++;
    if (*s != '0' && lead < 0)
      lead = i;
    if (lead >= 0) {
      if (nd < cap - 1)
        digits[nd] = *s;
      nd++;
      if (*s != '0')
        last = nd;
    }
    i++;
  }
  if (*s == 'e' || *s == 'E') {
    s++;
    eneg = *s == '-';
    if (*s == '-' || *s == '+')
      s++;
    for (; *s; s++)
      e = e < 100000 ? e * 10 + (*s - '0') : e; /* saturates: far outside a double anyway */
  }
  if (lead < 0)
    return 0;
  if (last >= cap) /* more significant digits than any double has: not exact */
    last = cap - 1, digits[0] = 'x';
  digits[last] = '\0';
  *exp10 = point - 1 - lead + (eneg ? -e : e);
  return 1;
}

static int number_exact(const cJSON *n) {
  char want[20], got[40];
  int exp10;
  long lexp;

  if (!n->valuestring)
    return 1;
  if (n->valuedouble == 0)
    return !lexeme_digits(n->valuestring, got, sizeof(got), &lexp); /* 1e-400 is not 0 */
  if (!lexeme_digits(n->valuestring, got, sizeof(got), &lexp))
    return 0;
  shortest_digits(fabs(n->valuedouble), want, &exp10);
  return lexp == exp10 && strcmp(got, want) == 0;
}

int aip_json_numbers_exact(const cJSON *item) {
  if (cJSON_IsNumber(item))
    return number_exact(item);
  if (cJSON_IsArray(item) || cJSON_IsObject(item))
    for (const cJSON *c = item->child; c; c = c->next)
      if (!aip_json_numbers_exact(c))
        return 0;
  return 1;
}

/* ---- member names equal under case folding ---- */

/* One member name folded: every code point through simple upper then simple lower case, so a
 * whole case orbit lands on one code point (s, S and U+017F long s on s; k, K and U+212A Kelvin
 * on k; sigma, final sigma and capital sigma on sigma), which is what Go's EqualFold compares.
 * It also joins a few pairs EqualFold keeps apart (U+0130 with i): refusing those errs on the
 * safe side. Bytes that are not UTF-8 (a tree the gateway built) are kept as they are. */
static int fold_name(aip_buf *b, const char *s) {
  const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
  utf8proc_ssize_t n = (utf8proc_ssize_t)strlen(s);
  int err = 0;

  while (n > 0 && !err) {
    utf8proc_int32_t c;
    utf8proc_uint8_t enc[4];
    utf8proc_ssize_t k = *p < 0x80 ? 1 : utf8proc_iterate(p, n, &c);
    if (*p < 0x80) {
      enc[0] = (utf8proc_uint8_t)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
      err = aip_buf_append(b, enc, 1);
    } else if (k < 1) {
      k = 1;
      err = aip_buf_append(b, p, 1);
    } else {
      c = utf8proc_tolower(utf8proc_toupper(c));
      err = aip_buf_append(b, enc, (size_t)utf8proc_encode_char(c, enc));
    }
    p += k;
    n -= k;
  }
  return err ? err : aip_buf_append(b, "", 1); /* keep the NUL: names are NUL-separated */
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 when two members of `obj` fold to the same name, 0 when not, -ENOMEM. The folded names
 * go NUL-separated into one buffer; their pointers are sorted once it stops growing. */
static int object_folds_twice(const cJSON *obj) {
  const char *stackv[32], **v;
  size_t n = 0, i = 0;
  aip_buf names;
  int rc = 0;

  for (const cJSON *c = obj->child; c; c = c->next)
    n++;
  if (n < 2)
    return 0;
  v = n <= 32 ? stackv : malloc(n * sizeof(*v));
  if (!v)
    return -ENOMEM;
  aip_buf_init(&names);
  for (const cJSON *c = obj->child; c && !rc; c = c->next) {
    v[i++] = (const char *)(uintptr_t)names.len; /* an offset until the buffer is final */
    rc = fold_name(&names, c->string ? c->string : "");
  }
  if (!rc) {
    for (i = 0; i < n; i++)
      v[i] = names.data + (uintptr_t)v[i];
    qsort(v, n, sizeof(*v), name_cmp);
    for (i = 1; i < n && !rc; i++)
      rc = strcmp(v[i - 1], v[i]) == 0;
  }
  aip_buf_free(&names);
  if (v != stackv)
    free(v);
  return rc;
}

int aip_json_fold_collision(const cJSON *item) {
  int rc;

  if (cJSON_IsObject(item) && (rc = object_folds_twice(item)))
    return rc;
  if (cJSON_IsObject(item) || cJSON_IsArray(item))
    for (const cJSON *c = item->child; c; c = c->next)
      if ((rc = aip_json_fold_collision(c)))
        return rc;
  return 0;
}
