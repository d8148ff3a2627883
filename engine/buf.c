/* buf.c -- aip_buf, the growable byte buffer every layer writes JSON and text into, and the
 * JSON string escaper that makes our error bytes identical to Go's json.Marshal output.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"

void aip_buf_init(aip_buf *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void aip_buf_free(aip_buf *b) {
  free(b->data);
  aip_buf_init(b);
}

void aip_buf_reset(aip_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

/* Keeps room for `extra` more bytes plus the terminating NUL. Doubling keeps appends amortized
 * O(1); the first allocation is 64 bytes because most of what we build (error replies, names)
 * is small. */
int aip_buf_reserve(aip_buf *b, size_t extra) {
  size_t need, cap;
  char *p;

  if (extra > SIZE_MAX - b->len - 1)
    return -ENOMEM;
  need = b->len + extra + 1;
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  p = realloc(b->data, cap);
  if (!p)
    return -ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int aip_buf_append(aip_buf *b, const void *p, size_t n) {
  int err = aip_buf_reserve(b, n);
  if (err)
    return err;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int aip_buf_puts(aip_buf *b, const char *s) {
  return aip_buf_append(b, s, strlen(s));
}

int aip_buf_printf(aip_buf *b, const char *fmt, ...) {
  va_list ap, ap2;
  int n, err;

  err = aip_buf_reserve(b, 64);
  if (err)
    return err;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n < 0) {
    va_end(ap2);
    b->data[b->len] = '\0';
    return -EINVAL;
  }
  if ((size_t)n >= b->cap - b->len) {
    err = aip_buf_reserve(b, (size_t)n);
    if (err) {
      va_end(ap2);
      b->data[b->len] = '\0';
      return err;
    }
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
  }
  va_end(ap2);
  b->len += (size_t)n;
  return 0;
}

char *aip_buf_steal(aip_buf *b, size_t *len) {
  char *p = b->data;
  if (len)
    *len = b->len;
  if (!p)
    p = calloc(1, 1);
  aip_buf_init(b);
  return p;
}

/* ---- JSON string escaping ------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when it is not well-formed
 * (overlong, surrogate, beyond U+10FFFF, truncated). Shared with json.c and normalize.c. */
size_t aip_utf8_seq_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
      return 0;
    if (c == 0xE0 && s[1] < 0xA0) /* overlong */
      return 0;
    if (c == 0xED && s[1] >= 0xA0) /* UTF-16 surrogate */
      return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && s[1] < 0x90) /* overlong */
      return 0;
    if (c == 0xF4 && s[1] >= 0x90) /* > U+10FFFF */
      return 0;
    return 4;
  }
  return 0;
}

int aip_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, k;
  while (i < n) {
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    k = aip_utf8_seq_len(p + i, n - i);
    if (!k)
      return 0;
    i += k;
  }
  return 1;
}

/* Bytes that can be copied verbatim inside a JSON string literal. */
static int json_plain(unsigned char c, int html) {
  if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
    return 0;
  if (html && (c == '<' || c == '>' || c == '&'))
    return 0;
  return 1;
}

static int json_escape_ascii(aip_buf *b, unsigned char c) {
  static const char hex[] = "0123456789abcdef";
  char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
  switch (c) {
  case '"': return aip_buf_append(b, "\\\"", 2);
  case '\\': return aip_buf_append(b, "\\\\", 2);
  case '\n': return aip_buf_append(b, "\\n", 2);
  case '\r': return aip_buf_append(b, "\\r", 2);
  case '\t': return aip_buf_append(b, "\\t", 2);
  case '\b': return aip_buf_append(b, "\\b", 2);
  case '\f': return aip_buf_append(b, "\\f", 2);
  default: return aip_buf_append(b, esc, 6);
  }
}

/* Go's encoding/json escapes U+2028 and U+2029 in every mode (they end lines in JavaScript),
 * HTML-escapes < > & unless told not to, and replaces each invalid UTF-8 byte with \ufffd.
 * We do the same so the bytes we emit are the bytes AIP clients have seen from the reference. */
int aip_buf_json_string(aip_buf *b, const char *s, size_t n, int html_escape) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, run, k;
  int err;

  err = aip_buf_reserve(b, n + 2);
  if (!err)
    err = aip_buf_append(b, "\"", 1);
  if (err)
    return err;
  while (i < n) {
    for (run = i; run < n && json_plain(p[run], html_escape); run++)
      ;
    if (run > i && (err = aip_buf_append(b, p + i, run - i)))
      return err;
    i = run;
    if (i >= n)
      break;
    if (p[i] < 0x80) {
      err = json_escape_ascii(b, p[i]);
      i++;
    } else if ((k = aip_utf8_seq_len(p + i, n - i)) == 0) {
      err = aip_buf_append(b, "\\ufffd", 6);
      i++;
    } else if (k == 3 && p[i] == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] & 0xFE) == 0xA8) {
      err = aip_buf_append(b, p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
      i += 3;
    } else {
      err = aip_buf_append(b, p + i, k);
      i += k;
    }
    if (err)
      return err;
  }
  return aip_buf_append(b, "\"", 1);
}
