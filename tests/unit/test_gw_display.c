/* test_gw_display.c -- aip_display_string (gateway/approvals/approvals_display.c): what an operator reads
 * before approving. Bidi controls, zero-width and other format characters, C0/C1 controls,
 * non-ASCII spaces, default-ignorable "letters", invalid UTF-8 and long padding are all made
 * visible; ordinary text (ASCII and visible non-ASCII) passes unchanged. */
#include <stdlib.h>
#include <string.h>

#include "gateway/approvals/approvals.h"
#include "test.h"

static void expect(const char *in, size_t n, const char *want) {
  aip_buf b;
  aip_buf_init(&b);
  CHECK_INT(aip_display_string(&b, in, n), 0);
  const char *got = b.data ? b.data : "";
  if (strcmp(got, want) != 0) fprintf(stderr, "display: got [%s] want [%s]\n", got, want);
  CHECK_STR(got, want);
  aip_buf_free(&b);
}

#define E(in, want) expect(in, sizeof(in) - 1, want)

int main(void) {
  /* unchanged */
  E("", "");
  E("ls -l /tmp", "ls -l /tmp");
  E("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
  E("a        b", "a        b"); /* 8 spaces: left as they are */
  E("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"); /* an emoji is visible */
  /* bidi controls: U+202A-202E, U+2066-2069, U+200E/F, U+061C */
  E("rm x\xe2\x80\xaetxt.exe", "rm x<U+202E>txt.exe");
  E("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad", "<U+202A><U+202B><U+202C><U+202D>");
  E("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9", "<U+2066><U+2067><U+2068><U+2069>");
  E("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", "<U+200E><U+200F><U+061C>");
  /* zero-width and other invisible format characters */
  E("a\xe2\x80\x8b\xe2\x80\x8c\xe2\x80\x8d" "b", "a<U+200B><U+200C><U+200D>b");
  E("\xef\xbb\xbfx\xe2\x81\xa0y\xc2\xad", "<U+FEFF>x<U+2060>y<U+00AD>");
  E("\xf3\xa0\x80\x81tag", "<U+E0001>tag"); /* a tag character */
  E("\xe1\x85\x9f\xe3\x85\xa4\xef\xbe\xa0\xe2\xa0\x80", "<U+115F><U+3164><U+FFA0><U+2800>");
  /* C0, DEL and C1 controls; line and paragraph separators */
  E("a\nb\tc\rd\x1b[2J\x7f", "a<U+000A>b<U+0009>c<U+000D>d<U+001B>[2J<U+007F>");
  E("q\xc2\x85r\xc2\x9b", "q<U+0085>r<U+009B>");
  E("\xe2\x80\xa8\xe2\x80\xa9", "<U+2028><U+2029>");
  /* private use, unassigned */
  E("\xee\x80\x80", "<U+E000>");
  E("\xf4\x8f\xbf\xbf", "<U+10FFFF>");
  /* spaces: non-ASCII ones always, runs counted; long ASCII padding collapsed */
  E("x\xc2\xa0y", "x<U+00A0>y");
  E("x\xc2\xa0\xc2\xa0\xc2\xa0y", "x<U+00A0 x3>y");
  E("x\xe3\x80\x80\xe2\x80\x83y", "x<U+3000><U+2003>y");
  E("ok         ; rm", "ok<U+0020 x9>; rm");
  E("\xe2\x80\x8b\xe2\x80\x8b\xe2\x80\x8b\xe2\x80\x8b", "<U+200B x4>");
  /* not UTF-8: every byte shown; NUL too */
  E("a\xff\xfe" "b", "a<0xFF><0xFE>b");
  E("\xc3", "<0xC3>");
  E("\xed\xa0\x80", "<0xED><0xA0><0x80>"); /* an encoded surrogate */
  E("\xc0\xaf", "<0xC0><0xAF>");           /* overlong */
  expect("a\0b", 3, "a<U+0000>b");
  /* a long padding run does not grow the answer */
  char *pad = malloc(100002);
  memset(pad, ' ', 100000);
  pad[0] = 'a';
  pad[100000 - 1] = 'b';
  pad[100000] = 0;
  expect(pad, 100000, "a<U+0020 x99998>b");
  free(pad);
  TEST_MAIN_END();
}
