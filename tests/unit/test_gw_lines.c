/* test_gw_lines.c -- the one stdio line framer (gateway/core/lines.c): splitting across reads,
 * '\r' stripping, oversized lines, streamed lines, and the two ends of input (the wrapper's,
 * where a last unterminated line counts, and a server's, where it is cut). */
#include <stdlib.h>
#include <string.h>

#include "gateway/core/lines.h"
#include "test.h"

typedef struct rec {
  aip_buf got; /* "L<line>|" per line, "O|" per oversize, "H<head>|" per on_long, "P<part><end>|" */
  int take_long;
  int fail_part;
} rec;

static void on_line(void *ctx, char *p, size_t n) {
  rec *r = ctx;
  aip_buf_puts(&r->got, "L");
  aip_buf_append(&r->got, p, n);
  aip_buf_puts(&r->got, "|");
}
static void on_oversize(void *ctx) { aip_buf_puts(&((rec *)ctx)->got, "O|"); }
static int on_long(void *ctx, const char *h, size_t n) {
  rec *r = ctx;
  aip_buf_puts(&r->got, "H");
  aip_buf_append(&r->got, h, n);
  aip_buf_puts(&r->got, "|");
  return r->take_long;
}
static int on_part(void *ctx, const char *p, size_t n, int end) {
  rec *r = ctx;
  aip_buf_puts(&r->got, "P");
  aip_buf_append(&r->got, p, n);
  aip_buf_puts(&r->got, end ? "$|" : "|");
  return r->fail_part;
}

static void feed(aip_lines *l, const char *s) {
  char *copy = strdup(s);
  aip_lines_feed(l, copy, strlen(copy));
  free(copy);
}

static aip_lines framer(rec *r, size_t max, size_t stream_at) {
  memset(r, 0, sizeof(*r));
  aip_buf_init(&r->got);
  aip_lines l = {.max = max, .stream_at = stream_at, .ctx = r, .on_line = on_line,
                 .on_oversize = on_oversize, .on_long = stream_at ? on_long : NULL,
                 .on_part = on_part};
  aip_buf_init(&l.buf);
  return l;
}

int main(void) {
  rec r;
  aip_lines l = framer(&r, 10, 0);
  feed(&l, "ab\r\ncd");
  feed(&l, "e\n\nf");
  CHECK_STR(r.got.data, "Lab|Lcde|L|");
  aip_lines_end(&l); /* the wrapper's inputs: the last line counts */
  CHECK_STR(r.got.data, "Lab|Lcde|L|Lf|");
  aip_buf_reset(&r.got);
  feed(&l, "0123456789A");
  feed(&l, "BC\nok\n");
  CHECK_STR(r.got.data, "O|Lok|"); /* reported once, dropped to its newline */
  feed(&l, "tail");
  CHECK_INT(aip_lines_cut(&l), 0); /* a server's stdout: an unterminated line is no message */
  feed(&l, "\n");
  CHECK_STR(r.got.data, "O|Lok|L|");
  aip_lines_free(&l);
  aip_buf_free(&r.got);

  /* streaming: the head goes to on_long once it passes stream_at, the rest to on_part */
  l = framer(&r, 100, 3);
  r.take_long = 1;
  feed(&l, "abcd");
  feed(&l, "ef");
  feed(&l, "g\nnext\n");
  CHECK_STR(r.got.data, "Habcd|Pef|Pg$|Lnext|");
  aip_buf_reset(&r.got);
  feed(&l, "wxyz");
  CHECK_INT(aip_lines_cut(&l), 1); /* cut short while streaming: the sink must hear of it */
  aip_buf_reset(&r.got);
  /* a failed part drops the rest of its line */
  feed(&l, "wxyz");
  r.fail_part = 1;
  feed(&l, "1");
  feed(&l, "2\nz\n");
  CHECK_STR(r.got.data, "Hwxyz|P1|Lz|");
  aip_buf_reset(&r.got);
  /* on_long declining holds the line whole */
  r.take_long = 0;
  r.fail_part = 0;
  feed(&l, "abcd");
  feed(&l, "e\n");
  CHECK_STR(r.got.data, "Habcd|Labcde|");
  aip_lines_free(&l);
  aip_buf_free(&r.got);
  TEST_MAIN_END();
}
