/* test_engine_json.c -- strict JSON parsing and Go-compatible rendering. */
#include <stdlib.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "test.h"

static aip_json_status parse(const char *s, size_t n) {
  cJSON *root = NULL;
  aip_json_status st = aip_json_parse(s, n, &root);
  CHECK((st == AIP_JSON_OK) == (root != NULL));
  cJSON_Delete(root);
  return st;
}

#define P(lit) parse(lit, sizeof(lit) - 1)

static void test_accepts(void) {
  CHECK_INT(P("{}"), AIP_JSON_OK);
  CHECK_INT(P(" \t\r\n{\"a\" : [1, -2.5e+3, 0, 0.5, 1E2, true, false, null, \"x\"]} \n"),
            AIP_JSON_OK);
  CHECK_INT(P("\"caf\xc3\xa9 \xf0\x9f\x98\x80\""), AIP_JSON_OK);
  CHECK_INT(P("\"\\ud83d\\ude00 \\u00e9 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\""), AIP_JSON_OK);
  CHECK_INT(P("123"), AIP_JSON_OK);
  CHECK_INT(P("[[[]]]"), AIP_JSON_OK);
  /* keys differing only in case are not duplicates for the parser */
  CHECK_INT(P("{\"a\":1,\"A\":2}"), AIP_JSON_OK);
  /* no NUL needed: parse a prefix of a longer buffer */
  CHECK_INT(parse("{\"a\":1}garbage", 7), AIP_JSON_OK);
}

static void test_syntax(void) {
  CHECK_INT(P(""), AIP_JSON_SYNTAX);
  CHECK_INT(P("   "), AIP_JSON_SYNTAX);
  CHECK_INT(P("{} x"), AIP_JSON_SYNTAX);     /* trailing garbage */
  CHECK_INT(P("{}{}"), AIP_JSON_SYNTAX);
  CHECK_INT(P("x{}"), AIP_JSON_SYNTAX);      /* leading garbage */
  CHECK_INT(P("\x01{}"), AIP_JSON_SYNTAX);   /* cJSON skips any byte <= 0x20 */
  CHECK_INT(P("\xef\xbb\xbf{}"), AIP_JSON_SYNTAX); /* BOM, which cJSON skips */
  CHECK_INT(P("{}\x0b"), AIP_JSON_SYNTAX);
  CHECK_INT(P("NaN"), AIP_JSON_SYNTAX);
  CHECK_INT(P("[Infinity]"), AIP_JSON_SYNTAX);
  CHECK_INT(P("[-]"), AIP_JSON_SYNTAX);
  CHECK_INT(P("[01]"), AIP_JSON_SYNTAX);
  CHECK_INT(P("[+1]"), AIP_JSON_SYNTAX);
  CHECK_INT(P("[.5]"), AIP_JSON_SYNTAX);
  CHECK_INT(P("[1.]"), AIP_JSON_SYNTAX);
  CHECK_INT(P("[1e]"), AIP_JSON_SYNTAX);
  CHECK_INT(P("[0x10]"), AIP_JSON_SYNTAX);
  CHECK_INT(P("[1e999]"), AIP_JSON_SYNTAX);  /* overflows a double */
  CHECK_INT(P("[1,]"), AIP_JSON_SYNTAX);
  CHECK_INT(P("{\"a\":1,}"), AIP_JSON_SYNTAX);
  CHECK_INT(P("{'a':1}"), AIP_JSON_SYNTAX);
  CHECK_INT(P("{a:1}"), AIP_JSON_SYNTAX);
  CHECK_INT(P("{\"a\" 1}"), AIP_JSON_SYNTAX);
  CHECK_INT(P("[tru]"), AIP_JSON_SYNTAX);
  CHECK_INT(P("\"abc"), AIP_JSON_SYNTAX);
  CHECK_INT(P("\"\\x\""), AIP_JSON_SYNTAX);
  CHECK_INT(P("\"\\u12\""), AIP_JSON_SYNTAX);
  CHECK_INT(P("\"a\tb\""), AIP_JSON_SYNTAX);  /* raw control characters in strings */
  CHECK_INT(P("\"a\nb\""), AIP_JSON_SYNTAX);
  CHECK_INT(parse("\"a\0b\"", 5), AIP_JSON_SYNTAX);
  CHECK_INT(parse("{}\0", 3), AIP_JSON_SYNTAX);
  CHECK_INT(aip_json_parse(NULL, 0, &(cJSON *){NULL}), AIP_JSON_SYNTAX);
  /* numbers longer than cJSON's 63-byte buffer */
  char num[64];
  num[0] = '0', num[1] = '.';
  memset(num + 2, '0', 61);
  num[63] = '1'; /* "0." + 61 zeros + "1": 64 bytes */
  CHECK_INT(parse(num, 64), AIP_JSON_SYNTAX);
  num[62] = '1'; /* "0." + 60 zeros + "1": 63 bytes */
  CHECK_INT(parse(num, 63), AIP_JSON_OK);
}

static void test_utf8(void) {
  CHECK_INT(P("\"\xff\""), AIP_JSON_BAD_UTF8);
  CHECK_INT(P("\"\xc0\xaf\""), AIP_JSON_BAD_UTF8);           /* overlong '/' */
  CHECK_INT(P("\"\xe0\x80\xaf\""), AIP_JSON_BAD_UTF8);       /* overlong, 3 bytes */
  CHECK_INT(P("\"\xf0\x80\x80\xaf\""), AIP_JSON_BAD_UTF8);   /* overlong, 4 bytes */
  CHECK_INT(P("\"\xed\xa0\x80\""), AIP_JSON_BAD_UTF8);       /* U+D800 encoded */
  CHECK_INT(P("\"\xed\xbf\xbf\""), AIP_JSON_BAD_UTF8);       /* U+DFFF encoded */
  CHECK_INT(P("\"\xf4\x90\x80\x80\""), AIP_JSON_BAD_UTF8);   /* U+110000 */
  CHECK_INT(P("\"\xe2\x82\""), AIP_JSON_BAD_UTF8);           /* truncated */
  CHECK_INT(P("\"\x80\""), AIP_JSON_BAD_UTF8);               /* lone continuation */
  CHECK_INT(P("{\"\xff\":1}"), AIP_JSON_BAD_UTF8);           /* in a key */
  CHECK_INT(P("\"\xf4\x8f\xbf\xbf\""), AIP_JSON_OK);         /* U+10FFFF */
  CHECK_INT(P("\"\xef\xbf\xbf\""), AIP_JSON_OK);             /* U+FFFF */
  /* escaped surrogates must pair up */
  CHECK_INT(P("\"\\ud800\""), AIP_JSON_BAD_UTF8);
  CHECK_INT(P("\"\\uD800x\""), AIP_JSON_BAD_UTF8);
  CHECK_INT(P("\"\\ud800\\u0041\""), AIP_JSON_BAD_UTF8);
  CHECK_INT(P("\"\\ud800\\ud800\""), AIP_JSON_BAD_UTF8);
  CHECK_INT(P("\"\\udc00\""), AIP_JSON_BAD_UTF8);
  CHECK_INT(P("\"\\udc00\\ud800\""), AIP_JSON_BAD_UTF8);
  CHECK_INT(P("\"\\uDBFF\\uDFFF\""), AIP_JSON_OK);
  /* an escaped NUL would truncate the string cJSON hands to the policy */
  CHECK_INT(P("{\"name\":\"read_file\\u0000x\"}"), AIP_JSON_BAD_UTF8);
  /* non-ASCII outside strings is a syntax error */
  CHECK_INT(P("[1,\xc3\xa9]"), AIP_JSON_SYNTAX);
}

static void test_duplicates_and_depth(void) {
  char deep[200];
  int i;

  CHECK_INT(P("{\"a\":1,\"a\":2}"), AIP_JSON_DUPLICATE_KEY);
  CHECK_INT(P("{\"method\":\"ping\",\"x\":1,\"method\":\"tools/call\"}"), AIP_JSON_DUPLICATE_KEY);
  CHECK_INT(P("{\"a\":1,\"\\u0061\":2}"), AIP_JSON_DUPLICATE_KEY); /* equal after decoding */
  CHECK_INT(P("{\"p\":{\"x\":{\"k\":1,\"k\":1}}}"), AIP_JSON_DUPLICATE_KEY);
  CHECK_INT(P("[1,{\"a\":[{\"b\":1,\"b\":2}]}]"), AIP_JSON_DUPLICATE_KEY);
  CHECK_INT(P("{\"a\":{\"a\":{\"a\":1}}}"), AIP_JSON_OK); /* same key at different levels */
  /* a large object goes through the sorted path */
  aip_buf b;
  aip_buf_init(&b);
  aip_buf_puts(&b, "{");
  for (i = 0; i < 100; i++)
    aip_buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
  aip_buf_puts(&b, "}");
  CHECK_INT(parse(b.data, b.len), AIP_JSON_OK);
  b.len--;
  aip_buf_puts(&b, ",\"k57\":0}");
  CHECK_INT(parse(b.data, b.len), AIP_JSON_DUPLICATE_KEY);
  aip_buf_reset(&b);
  aip_buf_puts(&b, "{");
  for (i = 0; i < 20; i++)
    aip_buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
  aip_buf_puts(&b, ",\"k3\":1}");
  CHECK_INT(parse(b.data, b.len), AIP_JSON_DUPLICATE_KEY);
  aip_buf_free(&b);

  for (i = 0; i < AIP_JSON_MAX_DEPTH; i++)
    deep[i] = '[';
  for (; i < 2 * AIP_JSON_MAX_DEPTH; i++)
    deep[i] = ']';
  CHECK_INT(parse(deep, 2 * AIP_JSON_MAX_DEPTH), AIP_JSON_OK);
  for (i = 0; i <= AIP_JSON_MAX_DEPTH; i++)
    deep[i] = '[';
  for (; i < 2 * AIP_JSON_MAX_DEPTH + 2; i++)
    deep[i] = ']';
  CHECK_INT(parse(deep, 2 * AIP_JSON_MAX_DEPTH + 2), AIP_JSON_TOO_DEEP);
  CHECK_STR(aip_json_status_str(AIP_JSON_DUPLICATE_KEY), "duplicate key in an object");
}

static char *go(const char *json) {
  cJSON *v = NULL;
  aip_buf b;
  aip_buf_init(&b);
  if (aip_json_parse(json, strlen(json), &v) != AIP_JSON_OK)
    return NULL;
  aip_json_print_go(&b, v);
  cJSON_Delete(v);
  return aip_buf_steal(&b, NULL);
}

static char *ff(double v) {
  aip_buf b;
  aip_buf_init(&b);
  aip_json_format_float_f(&b, v);
  return aip_buf_steal(&b, NULL);
}

#define CHECK_OWNED(expr, want) \
  do {                          \
    char *s_ = (expr);          \
    CHECK_STR(s_, want);        \
    free(s_);                   \
  } while (0)

static void test_go_rendering(void) {
  cJSON *v = NULL;
  aip_buf b;

  /* strconv.FormatFloat(v, 'f', -1, 64) */
  CHECK_OWNED(ff(8080), "8080");
  CHECK_OWNED(ff(1.5), "1.5");
  CHECK_OWNED(ff(-3), "-3");
  CHECK_OWNED(ff(0.0000001), "0.0000001");
  CHECK_OWNED(ff(1e21), "1000000000000000000000");
  CHECK_OWNED(ff(0.1), "0.1");
  CHECK_OWNED(ff(123.456), "123.456");
  CHECK_OWNED(ff(0), "0");
  CHECK_OWNED(ff(-0.0), "-0");
  CHECK_OWNED(ff(9007199254740993.0), "9007199254740992");
  char *max = ff(1.7976931348623157e308);
  CHECK(max && strlen(max) == 309 && strncmp(max, "17976931348623157000", 20) == 0);
  free(max);
  /* json.Marshal of the decoded value: sorted keys, HTML escaping, Go float format */
  CHECK_OWNED(go("{\"z\":1,\"a\":\"<b>&\"}"), "{\"a\":\"\\u003cb\\u003e\\u0026\",\"z\":1}");
  CHECK_OWNED(go("[\"tag1\", \"tag2\"]"), "[\"tag1\",\"tag2\"]");
  CHECK_OWNED(go("{\"b\":[1,{\"y\":null,\"x\":true}],\"a\":{}}"),
              "{\"a\":{},\"b\":[1,{\"x\":true,\"y\":null}]}");
  CHECK_OWNED(go("[1e21, 1e20, 1e-7, 0.000001, 1.5e-10, -2.5E+30, 100]"),
              "[1e+21,100000000000000000000,1e-7,0.000001,1.5e-10,-2.5e+30,100]");
  CHECK_OWNED(go("[\"\\u2028\", \"\\n\"]"), "[\"\\u2028\",\"\\n\"]");
  /* compact cJSON printing */
  aip_buf_init(&b);
  CHECK_INT(aip_json_parse("{ \"a\" : [1, 2] }", 16, &v), AIP_JSON_OK);
  CHECK_INT(aip_json_print(&b, v), 0);
  CHECK_STR(b.data, "{\"a\":[1,2]}");
  cJSON_Delete(v);
  aip_buf_free(&b);
}

/* Parsed numbers keep their bytes: what the policy checked is what the server receives. */
static char *reprint(const char *json) {
  cJSON *v = NULL;
  aip_buf b;
  aip_buf_init(&b);
  if (aip_json_parse(json, strlen(json), &v) != AIP_JSON_OK)
    return NULL;
  if (aip_json_print(&b, v))
    aip_buf_free(&b);
  cJSON_Delete(v);
  return aip_buf_steal(&b, NULL);
}

static char *print_made(cJSON *v) {
  aip_buf b;
  aip_buf_init(&b);
  if (aip_json_print(&b, v))
    aip_buf_free(&b);
  cJSON_Delete(v);
  return aip_buf_steal(&b, NULL);
}

static void test_number_lexemes(void) {
  static const char *const same[] = {
      "0.9999999999999999", "-0", "12345678901234567890", "1.0", "1E2", "1e-7", "-0.0",
      "12345678901234567", "99999999999999999", "9007199254740993", "0.1", "1e308", "5e-324",
      "1e-400", "100000000000000000000000", "1.5E+3", "-12.50",
      "[0.30000000000000004,1.000000000000000000001,2]",
      "{\"a\":{\"b\":[1.10,-0,{\"c\":1E+2}]},\"id\":12345678901234567}",
  };
  for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
    CHECK_OWNED(reprint(same[i]), same[i]);
  CHECK_OWNED(reprint("{ \"a\" : [ 1.0 , 2 ] }"), "{\"a\":[1.0,2]}");
  CHECK_INT(P("1e400"), AIP_JSON_SYNTAX); /* not finite: refused, as before */
  /* a copy keeps the bytes too (the gateway duplicates ids and arguments) */
  cJSON *v = NULL;
  CHECK_INT(aip_json_parse("[12345678901234567891]", 22, &v), AIP_JSON_OK);
  CHECK_OWNED(print_made(cJSON_Duplicate(v, 1)), "[12345678901234567891]");
  cJSON_Delete(v);
  /* numbers the gateway makes print as cJSON printed them, except that the value never
   * changes (cJSON's 15 digits made 0.9999999999999999 into 1) */
  CHECK_OWNED(print_made(cJSON_CreateNumber(3)), "3");
  CHECK_OWNED(print_made(cJSON_CreateNumber(-7)), "-7");
  CHECK_OWNED(print_made(cJSON_CreateNumber(0.1)), "0.1");
  CHECK_OWNED(print_made(cJSON_CreateNumber(1e15)), "1e+15");
  CHECK_OWNED(print_made(cJSON_CreateNumber(0.9999999999999999)), "0.9999999999999999");
  CHECK_OWNED(print_made(cJSON_CreateNumber(9007199254740993.0)), "9007199254740992");
  /* strings, literals and containers print exactly as cJSON prints them */
  static const char *const docs[] = {
      "{\"s\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\\u2028 \\u00e9 \\ud83d\\ude00\"}",
      "[true,false,null,[],{},\"\",[[1]]]", "{\"k\\n\":{\"\\u00e9\":\"x\"}}",
  };
  for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
    cJSON *t = NULL;
    CHECK_INT(aip_json_parse(docs[i], strlen(docs[i]), &t), AIP_JSON_OK);
    char *want = cJSON_PrintUnformatted(t);
    CHECK_OWNED(reprint(docs[i]), want);
    cJSON_free(want);
    cJSON_Delete(t);
  }
}

/* Which numbers allow_args may judge by their Go rendering: those whose bytes denote that
 * very number, so no decoder (float64, int64, big decimal) can see another value. */
static int exact(const char *json) {
  cJSON *v = NULL;
  int r;
  if (aip_json_parse(json, strlen(json), &v) != AIP_JSON_OK)
    return -1;
  r = aip_json_numbers_exact(v);
  cJSON_Delete(v);
  return r;
}

static void test_numbers_exact(void) {
  static const char *const yes[] = {"0", "-0", "-0.0", "1", "1.0", "1E2", "1e+2", "100.000",
                                    "0.1", "0.9999999999999999", "9007199254740992",
                                    "12345678901234568", "1e21", "1.5e-10", "5e-324", "-2.5",
                                    "[1,{\"a\":2.50}]", "\"9007199254740993\""};
  static const char *const no[] = {"9007199254740993", "12345678901234567890", "12345678901234567",
                                   "0.99999999999999999999", "1.0000000000000000001", "1e-400",
                                   "3.14159265358979323846", "[1,{\"a\":9007199254740993}]"};
  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    if (exact(yes[i]) != 1)
      fprintf(stderr, "not exact: %s\n", yes[i]);
    CHECK_INT(exact(yes[i]), 1);
  }
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
    if (exact(no[i]) != 0)
      fprintf(stderr, "exact: %s\n", no[i]);
    CHECK_INT(exact(no[i]), 0);
  }
  cJSON *made = cJSON_CreateNumber(9007199254740993.0); /* no bytes: its value is what it is */
  CHECK_INT(aip_json_numbers_exact(made), 1);
  cJSON_Delete(made);
}

int main(void) {
  test_accepts();
  test_syntax();
  test_utf8();
  test_duplicates_and_depth();
  test_go_rendering();
  test_number_lexemes();
  test_numbers_exact();
  TEST_MAIN_END();
}
