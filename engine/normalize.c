/* normalize.c -- tool and method name normalization (reference/aip.md section 3.1).
 *
 * The reference does NFKC -> strings.ToLower -> strings.TrimSpace -> drop runes that are not
 * unicode.IsPrint. Each step is reproduced with utf8proc (Unicode 15, the version Go 1.25
 * ships) in the same order, because the order is observable: trimming happens before the
 * invisible characters are dropped, so "\u200B read_file" keeps its leading space.
 *
 * The gateway normalizes on every message (the method) and every tools/call (the tool), and
 * nearly all names are plain ASCII, for which NFKC is the identity. That case takes a byte
 * loop with no allocation; utf8proc runs only when a byte >= 0x80 shows up.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"

/* Unicode White_Space (PropList.txt), the set Go's unicode.IsSpace tests; stable since 6.x. */
static int is_white_space(int32_t c) {
  if (c <= 0x20)
    return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x1680)
    return c == 0x85 || c == 0xA0;
  return c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and U+0020. Everything
 * else goes: Cc, Cf (ZWSP, ZWJ, BOM, soft hyphen, tags), Co, Cs, Cn, Zl, Zp, other Zs. */
static int is_print(int32_t c) {
  utf8proc_category_t cat;
  if (c == 0x20)
    return 1;
  cat = utf8proc_category(c);
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_SO;
}

static int ascii_space(unsigned char c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D);
}

/* The result lands in `stack` when `need` bytes fit, else in a fresh malloc. */
static char *out_buffer(char *stack, size_t stack_cap, size_t need) {
  if (stack && need <= stack_cap)
    return stack;
  return malloc(need);
}

static int normalize_ascii(const unsigned char *s, size_t len, char *stack, size_t stack_cap,
                           char **out, size_t *out_len) {
  size_t a = 0, b = len, o = 0;
  char *dst;

  while (a < b && ascii_space(s[a]))
    a++;
  while (b > a && ascii_space(s[b - 1]))
    b--;
  dst = out_buffer(stack, stack_cap, b - a + 1);
  if (!dst)
    return -ENOMEM;
  for (size_t i = a; i < b; i++) {
    unsigned char c = s[i];
    if (c < 0x20 || c == 0x7F)
      continue;
    dst[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  dst[o] = '\0';
  *out = dst;
  *out_len = o;
  return 0;
}

/* NFKC with utf8proc, then per-code-point simple lower-casing, trim, filter. */
static int normalize_unicode(const char *s, size_t len, char *stack, size_t stack_cap,
                             char **out, size_t *out_len) {
  utf8proc_uint8_t *nfkc = NULL;
  utf8proc_ssize_t n, k;
  int32_t *cps = NULL;
  size_t ncp = 0, a, b, o = 0;
  char *dst = NULL;
  int err = -ENOMEM;

  if (!aip_utf8_valid(s, len))
    return -EILSEQ;
  n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &nfkc,
                   UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (n < 0)
    return n == UTF8PROC_ERROR_NOMEM ? -ENOMEM : -EILSEQ;
  cps = malloc(((size_t)n + 1) * sizeof(*cps));
  if (!cps)
    goto err;
  for (utf8proc_ssize_t i = 0; i < n; i += k) {
    k = utf8proc_iterate(nfkc + i, n - i, &cps[ncp]);
    if (k <= 0) {
      err = -EILSEQ;
      goto err;
    }
    cps[ncp] = utf8proc_tolower(cps[ncp]); /* simple mapping, as Go: U+0130 -> 'i' */
    ncp++;
  }
  for (a = 0; a < ncp && is_white_space(cps[a]); a++)
    ;
  for (b = ncp; b > a && is_white_space(cps[b - 1]); b--)
    ;
  dst = out_buffer(stack, stack_cap, (b - a) * 4 + 1);
  if (!dst)
    goto err;
  for (size_t i = a; i < b; i++)
    if (is_print(cps[i]))
      o += (size_t)utf8proc_encode_char(cps[i], (utf8proc_uint8_t *)dst + o);
  dst[o] = '\0';
  *out = dst;
  *out_len = o;
  err = 0;
err:
  free(cps);
  free(nfkc);
  return err;
}

int aip_normalize_tmp(const char *s, size_t len, char *stack, size_t stack_cap, char **out,
                      size_t *out_len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i;

  *out = NULL;
  *out_len = 0;
  for (i = 0; i < len && p[i] < 0x80; i++)
    ;
  if (i == len)
    return normalize_ascii(p, len, stack, stack_cap, out, out_len);
  return normalize_unicode(s, len, stack, stack_cap, out, out_len);
}

char *aip_normalize_name(const char *s, size_t len) {
  char *out;
  size_t n;
  if (!s && len)
    return NULL;
  if (aip_normalize_tmp(s ? s : "", len, NULL, 0, &out, &n))
    return NULL;
  return out;
}
