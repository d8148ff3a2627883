/* lines.c -- newline framing of stdio streams (lines.h). */
#include <string.h>

#include "gateway/core/lines.h"
#include "gateway/obs/log.h"

static void emit(aip_lines *l, char *p, size_t n) {
  if (n && p[n - 1] == '\r') n--;
  l->on_line(l->ctx, p, n);
}

void aip_lines_feed(aip_lines *l, char *p, size_t n) {
  while (n) {
    char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (l->streaming) {
      /* a failed stream skips the rest of its line */
      if (l->on_part(l->ctx, p, take, nl != NULL)) l->skipping = nl == NULL;
      if (nl || l->skipping) l->streaming = 0;
    } else if (l->skipping) {
      if (nl) l->skipping = 0;
    } else if (l->buf.len + take > l->max) {
      l->buf.len = 0;
      l->skipping = nl == NULL;
      l->on_oversize(l->ctx);
    } else if (nl && !l->buf.len) {
      emit(l, p, take); /* the common case: a whole line inside one read, no copy */
    } else if (aip_buf_append(&l->buf, p, take)) {
      aip_error("out of memory buffering a line; dropping it");
      l->buf.len = 0;
      l->skipping = nl == NULL;
    } else if (nl) {
      emit(l, l->buf.data, l->buf.len);
      l->buf.len = 0;
    } else if (l->on_long && l->buf.len > l->stream_at && l->on_long(l->ctx, l->buf.data, l->buf.len)) {
      l->streaming = 1; /* on_long took the head; the rest of the line goes to on_part */
      l->buf.len = 0;
    }
    if (!nl) return;
    p = nl + 1;
    n -= take + 1;
  }
}

void aip_lines_end(aip_lines *l) {
  if (l->streaming) l->on_part(l->ctx, "", 0, 1);
  l->streaming = 0;
  if (l->buf.len && !l->skipping) emit(l, l->buf.data, l->buf.len);
  l->buf.len = 0;
  l->skipping = 0;
}

int aip_lines_cut(aip_lines *l) {
  int cut = l->streaming;
  l->streaming = l->skipping = 0;
  l->buf.len = 0;
  return cut;
}

void aip_lines_free(aip_lines *l) { aip_buf_free(&l->buf); }
