/* approvals_display.c -- the display-safe form of a string an operator reads before deciding.
 *
 * A call's arguments come from the agent, which may be steered by whoever wrote what it read.
 * Bidi controls reorder what a terminal or a browser shows (U+202E turns "txt.exe" around),
 * zero-width and other format characters hide text, C0/C1 controls move the cursor, and a long
 * run of padding pushes the rest of a command out of sight. Every such code point is shown as
 * <U+XXXX>; a run of the same one (or of more than AIP_DISPLAY_MAX_SPACES plain spaces) as
 * <U+XXXX xN>. Bytes that are not UTF-8 are shown as <0xNN>. Everything else passes unchanged.
 */
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

#include "gateway/approvals/approvals.h"

/* Shown as an escape: every category a reader cannot see or that changes how the rest is laid
 * out (Cc controls, Cf format incl. bidi and zero-width, line/paragraph separators, private use,
 * unassigned, surrogates, every space but U+0020), plus Unicode's default-ignorable code points
 * (U+115F, U+3164, U+FFA0 ... are letters by category, yet render as nothing). */
static int hidden(utf8proc_int32_t c) {
  const utf8proc_property_t *p = utf8proc_get_property(c);
  switch (p->category) {
  case UTF8PROC_CATEGORY_CC:
  case UTF8PROC_CATEGORY_CF:
  case UTF8PROC_CATEGORY_ZL:
  case UTF8PROC_CATEGORY_ZP:
  case UTF8PROC_CATEGORY_CO:
  case UTF8PROC_CATEGORY_CN:
  case UTF8PROC_CATEGORY_CS:
    return 1;
  case UTF8PROC_CATEGORY_ZS:
    return c != ' ';
  default:
    /* U+2800 BRAILLE PATTERN BLANK is a symbol that shows as nothing */
    return p->ignorable || c == 0x2800;
  }
}

static int escape(aip_buf *out, long c, size_t times) {
  if (c < 0) return aip_buf_printf(out, "<0x%02lX>", (unsigned long)-c);
  if (times > 1) return aip_buf_printf(out, "<U+%04lX x%zu>", (unsigned long)c, times);
  return aip_buf_printf(out, "<U+%04lX>", (unsigned long)c);
}

/* The code point at s (n > 0 bytes left): its value, or -(first byte) for a byte that does not
 * start valid UTF-8; *len is how many bytes it took. */
static long next_cp(const unsigned char *s, size_t n, size_t *len) {
  utf8proc_int32_t c;
  utf8proc_ssize_t k = utf8proc_iterate(s, (utf8proc_ssize_t)n, &c);
  if (k <= 0) {
    *len = 1;
    return -(long)s[0];
  }
  *len = (size_t)k;
  return c;
}

int aip_display_string(aip_buf *out, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  int err = 0;
  while (i < n && !err) {
    size_t len, run_len;
    long c = next_cp(s + i, n - i, &len);
    if (c >= 0 && !hidden((utf8proc_int32_t)c) && c != ' ') {
      err = aip_buf_append(out, str + i, len);
      i += len;
      continue;
    }
    /* a run of the same escaped code point (or byte) is shown once, with its count */
    size_t times = 1, j = i + len;
    while (j < n && next_cp(s + j, n - j, &run_len) == c) {
      times++;
      j += run_len;
    }
    if (c == ' ' && times <= AIP_DISPLAY_MAX_SPACES) err = aip_buf_append(out, str + i, times);
    else err = escape(out, c, times);
    i = j;
  }
  return err;
}
