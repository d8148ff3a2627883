/* test_engine_normalize.c -- name normalization (reference/aip.md section 3.1; the pairs are
 * the reference's normalize_test.go plus the probes verified against Go). */
#include <errno.h>
#include <stdlib.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "test.h"

static void check_norm(const char *in, size_t n, const char *want, int line) {
  char *got = aip_normalize_name(in, n);
  if (!(got && want && strcmp(got, want) == 0) && !(got == NULL && want == NULL)) {
    test_failed_++;
    fprintf(stderr, "%s:%d: normalize: got [%s] want [%s]\n", __FILE__, line,
            got ? got : "(null)", want ? want : "(null)");
  } else {
    test_passed_++;
  }
  free(got);
}

#define N(in, want) check_norm(in, sizeof(in) - 1, want, __LINE__)

static void test_table(void) {
  N("delete_files", "delete_files");
  N("DELETE_FILES", "delete_files");
  N("Delete_Files", "delete_files");
  N("  delete_files  ", "delete_files");
  N("ｄｅｌｅｔｅ", "delete");
  N("ｄｅｌｅｔｅ＿ｆｉｌｅｓ", "delete_files");
  N("ＤＥＬＥＴＥ", "delete");
  N("deleteｆｉｌｅｓ", "deletefiles");
  N("ﬁle_read", "file_read");
  N("ﬂag_set", "flag_set");
  N("coﬃee", "coffiee");
  N("tool²", "tool2");
  N("tool₁", "tool1");
  N("delete\u200Bfiles", "deletefiles");
  N("delete\u200Cfiles", "deletefiles");
  N("\uFEFFdelete_files", "delete_files");
  N("delete\u00ADfiles", "deletefiles");
  N("tools/call", "tools/call");
  N("ｔｏｏｌｓ／ｃａｌｌ", "tools/call");
  N("ｒｅｓｏｕｒｃｅｓ／ｒｅａｄ", "resources/read");
  N("", "");
  N("   ", "");
  N("tool123", "tool123");
  /* probes verified against the Go reference */
  N("a\tb", "ab");
  N("a\u00A0b", "a b");
  N("\u2003read_file\u2003", "read_file");
  N("\u200B read_file", " read_file"); /* trim happens before the invisible-char filter */
  N("a\u2028b", "ab");
  N("\U000E0041x", "x");
  N("İX", "ix");
  N("dеlеtе_filе", "dеlеtе_filе"); /* Cyrillic stays (norm-060) */
  N("READ FILE", "read file");
  N("\x01 abc", " abc");
  N("a\x7f" "b", "ab");
  N("\u3000x\u3000", "x");
  N("\u1680x", "x");           /* Ogham space: White_Space, trimmed */
  N("a\u1680b", "ab");         /* ...and a Zs dropped inside */
  N("x\uE000y", "xy");         /* private use */
  N("x\U000F0000y", "xy");     /* private use, plane 15 */
  N("x\u0378y", "xy");         /* unassigned */
  N("e\u0301", "\u00e9");      /* NFKC composes */
  N("\u212B", "\u00e5");       /* Angstrom sign -> a-ring, lower-cased */
  N("Ǆ", "d\u017e"); /* NFKC splits the digraph before lower-casing */
  /* invalid UTF-8 */
  N("a\xff", NULL);
  N("\xc0\xaf", NULL);
  N("\xed\xa0\x80", NULL);
  N("ｄ\xe2\x82", NULL);
}

static void test_tmp(void) {
  char stack[8], *out;
  size_t n;

  CHECK_INT(aip_normalize_tmp("AbC", 3, stack, sizeof(stack), &out, &n), 0);
  CHECK(out == stack);
  CHECK_STR(out, "abc");
  CHECK_INT(n, 3);
  CHECK_INT(aip_normalize_tmp("ABCDEFGHIJ", 10, stack, sizeof(stack), &out, &n), 0);
  CHECK(out != stack); /* too long for the stack buffer */
  CHECK_STR(out, "abcdefghij");
  free(out);
  CHECK_INT(aip_normalize_tmp("ｄ", 3, stack, sizeof(stack), &out, &n), 0);
  CHECK_STR(out, "d");
  if (out != stack)
    free(out);
  CHECK_INT(aip_normalize_tmp("x\xff", 2, stack, sizeof(stack), &out, &n), -EILSEQ);
  /* not NUL-terminated input */
  CHECK_INT(aip_normalize_tmp("ABCxyz", 3, stack, sizeof(stack), &out, &n), 0);
  CHECK_STR(out, "abc");
}

int main(void) {
  test_table();
  test_tmp();
  TEST_MAIN_END();
}
