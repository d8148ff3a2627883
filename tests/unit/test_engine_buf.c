/* test_engine_buf.c -- aip_buf and the Go-compatible JSON string escaper. */
#include <errno.h>
#include <stdlib.h>

#include "engine/engine.h"
#include "test.h"

static char *esc(const char *s, size_t n, int html) {
  aip_buf b;
  aip_buf_init(&b);
  if (aip_buf_json_string(&b, s, n, html)) {
    aip_buf_free(&b);
    return NULL;
  }
  return aip_buf_steal(&b, NULL);
}

#define CHECK_ESC(in, n, html, want)       \
  do {                                     \
    char *got_ = esc((in), (n), (html));   \
    CHECK_STR(got_, want);                 \
    free(got_);                            \
  } while (0)

static void test_basics(void) {
  aip_buf b;
  size_t n;
  char *s;

  aip_buf_init(&b);
  CHECK(b.data == NULL && b.len == 0);
  CHECK_INT(aip_buf_append(&b, "", 0), 0);
  CHECK(b.data != NULL && b.data[0] == '\0'); /* NUL-terminated after any append */
  CHECK_INT(aip_buf_puts(&b, "abc"), 0);
  CHECK_INT(aip_buf_printf(&b, "-%d-%s", 42, "x"), 0);
  CHECK_STR(b.data, "abc-42-x");
  CHECK_INT(b.len, 8);
  aip_buf_reset(&b);
  CHECK_INT(b.len, 0);
  CHECK_STR(b.data, "");
  /* printf that needs a second, larger vsnprintf */
  char big[500];
  memset(big, 'y', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  CHECK_INT(aip_buf_printf(&b, "<%s>", big), 0);
  CHECK_INT(b.len, 501);
  CHECK(b.data[0] == '<' && b.data[500] == '>' && b.data[501] == '\0');
  /* growth across many appends */
  aip_buf_reset(&b);
  for (int i = 0; i < 10000; i++)
    aip_buf_append(&b, "0123456789", 10);
  CHECK_INT(b.len, 100000);
  CHECK(b.cap > b.len);
  s = aip_buf_steal(&b, &n);
  CHECK_INT(n, 100000);
  CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
  free(s);
  s = aip_buf_steal(&b, &n); /* empty buffer still yields a string */
  CHECK(s != NULL && s[0] == '\0' && n == 0);
  free(s);
  aip_buf_free(&b);
  CHECK_INT(aip_buf_reserve(&b, (size_t)-1), -ENOMEM);
}

static void test_escapes(void) {
  CHECK_ESC("plain", 5, 0, "\"plain\"");
  CHECK_ESC("", 0, 0, "\"\"");
  CHECK_ESC("q\"b\\s/", 6, 0, "\"q\\\"b\\\\s/\"");
  CHECK_ESC("\n\r\t\b\f", 5, 0, "\"\\n\\r\\t\\b\\f\"");
  CHECK_ESC("\x01\x1f\x7f", 3, 0, "\"\\u0001\\u001f\x7f\"");
  CHECK_ESC("a\0b", 3, 0, "\"a\\u0000b\"");
  CHECK_ESC("<a&b>", 5, 0, "\"<a&b>\"");
  CHECK_ESC("<a&b>", 5, 1, "\"\\u003ca\\u0026b\\u003e\"");
  CHECK_ESC("x<y>&", 5, 1, "\"x\\u003cy\\u003e\\u0026\"");
  /* valid UTF-8 passes through; U+2028/U+2029 are escaped as Go does */
  CHECK_ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 1,
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK_ESC("a\xe2\x80\xa8" "b\xe2\x80\xa9", 8, 1, "\"a\\u2028b\\u2029\"");
  CHECK_ESC("a\xe2\x80\xa8", 4, 0, "\"a\\u2028\"");
  /* invalid UTF-8: each bad byte becomes U+FFFD */
  CHECK_ESC("a\xff" "b", 3, 0, "\"a\\ufffdb\"");
  CHECK_ESC("\xc0\xaf", 2, 0, "\"\\ufffd\\ufffd\"");         /* overlong */
  CHECK_ESC("\xed\xa0\x80", 3, 0, "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
  CHECK_ESC("\xe2\x82", 2, 0, "\"\\ufffd\\ufffd\"");         /* truncated */
}

int main(void) {
  test_basics();
  test_escapes();
  TEST_MAIN_END();
}
