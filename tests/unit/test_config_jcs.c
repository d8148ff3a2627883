/* test_config_jcs.c -- RFC 8785 canonical JSON (config/jcs.c): the RFC's own examples (the
 * number table of appendix B, the sorting example of section 3.2.3 with a non-BMP name, the
 * sample of section 3.2.2), escaping, and every input it must refuse. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/signing.h"
#include "test.h"

static double from_bits(uint64_t bits) {
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

static void test_appendix_b(void) {
  static const struct { uint64_t bits; const char *want; } t[] = {
      {0x0000000000000000ULL, "0"},
      {0x8000000000000000ULL, "0"},
      {0x0000000000000001ULL, "5e-324"},
      {0x8000000000000001ULL, "-5e-324"},
      {0x7fefffffffffffffULL, "1.7976931348623157e+308"},
      {0xffefffffffffffffULL, "-1.7976931348623157e+308"},
      {0x4340000000000000ULL, "9007199254740992"},
      {0xc340000000000000ULL, "-9007199254740992"},
      {0x4430000000000000ULL, "295147905179352830000"},
      {0x44b52d02c7e14af5ULL, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6ULL, "1e+23"},
      {0x44b52d02c7e14af7ULL, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4eULL, "999999999999999700000"},
      {0x444b1ae4d6e2ef4fULL, "999999999999999900000"},
      {0x444b1ae4d6e2ef50ULL, "1e+21"},
      {0x3eb0c6f7a0b5ed8cULL, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8dULL, "0.000001"},
      {0x41b3de4355555553ULL, "333333333.3333332"},
      {0x41b3de4355555554ULL, "333333333.33333325"},
      {0x41b3de4355555555ULL, "333333333.3333333"},
      {0x41b3de4355555556ULL, "333333333.3333334"},
      {0x41b3de4355555557ULL, "333333333.33333343"},
      {0xbecbf647612f3696ULL, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959ULL, "1424953923781206.2"},
  };
  char out[AIP_JCS_NUMBER_MAX];
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    CHECK_INT(aip_jcs_number(from_bits(t[i].bits), out), 0);
    CHECK_STR(out, t[i].want);
  }
  /* NaN and the infinities have no JSON form */
  CHECK_INT(aip_jcs_number(from_bits(0x7fffffffffffffffULL), out), -EDOM);
  CHECK_INT(aip_jcs_number(from_bits(0x7ff0000000000000ULL), out), -EDOM);
  CHECK_INT(aip_jcs_number(-INFINITY, out), -EDOM);
}

static void test_number_forms(void) {
  static const struct { double d; const char *want; } t[] = {
      {1, "1"}, {-1, "-1"}, {10, "10"}, {100, "100"}, {1.5, "1.5"}, {0.1, "0.1"},
      {0.30000000000000004, "0.30000000000000004"}, {1e20, "100000000000000000000"},
      {1e21, "1e+21"}, {1.5e21, "1.5e+21"}, {1e-6, "0.000001"}, {1e-7, "1e-7"},
      {1.25e-7, "1.25e-7"}, {123456.789, "123456.789"}, {4.5, "4.5"}, {2e-3, "0.002"},
      {1e30, "1e+30"}, {1e-27, "1e-27"}, {-0.5, "-0.5"}, {5e-7, "5e-7"},
  };
  char out[AIP_JCS_NUMBER_MAX];
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    CHECK_INT(aip_jcs_number(t[i].d, out), 0);
    CHECK_STR(out, t[i].want);
  }
}

/* Parses `in` with cJSON and returns the canonical text (static buffer), or NULL on error. */
static const char *canon(const char *in, aip_error *err) {
  static char buf[4096];
  cJSON *v = cJSON_Parse(in);
  if (!v) return "(cJSON parse failed)";
  char *out = NULL;
  size_t len = 0;
  int rc = aip_jcs_serialize(v, &out, &len, err);
  cJSON_Delete(v);
  if (rc) return NULL;
  snprintf(buf, sizeof buf, "%s", out);
  if (strlen(out) != len) snprintf(buf, sizeof buf, "(length mismatch)");
  free(out);
  return buf;
}

static void test_rfc_examples(void) {
  aip_error err = {{0}};
  /* RFC 8785 section 3.2.2 */
  CHECK_STR(canon("{\n  \"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n"
                  "  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
                  "  \"literals\": [null, true, false]\n}",
                  &err),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
            "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
  /* RFC 8785 section 3.2.3: UTF-16 order puts U+1F600 (D83D DE00) before U+FB33, unlike UTF-8 */
  CHECK_STR(canon("{\"\\u20ac\": \"Euro Sign\", \"\\r\": \"Carriage Return\",\n"
                  " \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\", \"1\": \"One\",\n"
                  " \"\\ud83d\\ude00\": \"Emoji: Grinning Face\", \"\\u0080\": \"Control\",\n"
                  " \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"}",
                  &err),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
            "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
            "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
            "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
  /* the reference implementation's "weird" sample: DEL and </script> stay literal */
  CHECK_STR(canon("{\"\\u20ac\":\"Euro Sign\",\"1\":\"One\",\"\\u0080\":\"Control\\u007f\","
                  "\"\\ud83d\\ude02\":\"Smiley\",\"\\u00f6\":\"Latin Small Letter O With Diaeresis\","
                  "\"\\ufb33\":\"Hebrew Letter Dalet With Dagesh\",\"</script>\":\"Browser Challenge\"}",
                  &err),
            "{\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\xc2\x80\":\"Control\x7f\","
            "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
            "\"\xf0\x9f\x98\x82\":\"Smiley\",\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

static void test_structure(void) {
  aip_error err = {{0}};
  /* nested objects sorted, array order kept, no white space */
  CHECK_STR(canon(" { \"b\" : [ 3 , 1 , { \"z\":1,\"a\":2 } ], \"a\" : { } , \"c\":[]} ", &err),
            "{\"a\":{},\"b\":[3,1,{\"a\":2,\"z\":1}],\"c\":[]}");
  /* a name that is a prefix of another sorts first */
  CHECK_STR(canon("{\"ab\":1,\"a\":2,\"\":3}", &err), "{\"\":3,\"a\":2,\"ab\":1}");
  /* every control character: the short escapes, else \u00xx in lower case */
  CHECK_STR(canon("[\"\\u0002\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \\\"\\\\/\\u2028\"]", &err),
            "[\"\\u0002\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \\\"\\\\/\xe2\x80\xa8\"]");
  CHECK_STR(canon("\"plain\"", &err), "\"plain\"");
  CHECK_STR(canon("-0", &err), "0");
  CHECK_STR(canon("[1.0, 100, 1e2, -0.0]", &err), "[1,100,100,0]");
}

static void test_refused(void) {
  aip_error err = {{0}};
  char *out = (char *)"untouched";
  /* duplicate names (cJSON keeps both) */
  CHECK(canon("{\"a\":1,\"a\":2}", &err) == NULL);
  CHECK(strstr(err.msg, "duplicate member name \"a\"") != NULL);
  /* invalid UTF-8 in a value and in a name, a lone surrogate encoded in UTF-8 */
  cJSON *v = cJSON_CreateString("ok\xff");
  CHECK_INT(aip_jcs_serialize(v, &out, NULL, &err), -EINVAL);
  CHECK(out == NULL);
  cJSON_Delete(v);
  v = cJSON_CreateObject();
  cJSON_AddNumberToObject(v, "\xc0\xaf", 1); /* overlong '/' */
  CHECK_INT(aip_jcs_serialize(v, &out, NULL, &err), -EINVAL);
  cJSON_Delete(v);
  v = cJSON_CreateString("\xed\xa0\x80"); /* U+D800 */
  CHECK_INT(aip_jcs_serialize(v, &out, NULL, &err), -EINVAL);
  cJSON_Delete(v);
  /* NaN, Infinity, raw JSON */
  v = cJSON_CreateArray();
  cJSON_AddItemToArray(v, cJSON_CreateNumber(NAN));
  CHECK_INT(aip_jcs_serialize(v, &out, NULL, &err), -EINVAL);
  CHECK(strstr(err.msg, "NaN") != NULL);
  cJSON_Delete(v);
  v = cJSON_CreateRaw("{\"b\":1,\"a\":2}");
  CHECK_INT(aip_jcs_serialize(v, &out, NULL, &err), -EINVAL);
  cJSON_Delete(v);
  /* nesting beyond the limit */
  cJSON *root = cJSON_CreateArray(), *cur = root;
  for (int i = 0; i < AIP_JCS_MAX_DEPTH + 5; i++) {
    cJSON *n = cJSON_CreateArray();
    cJSON_AddItemToArray(cur, n);
    cur = n;
  }
  CHECK_INT(aip_jcs_serialize(root, &out, NULL, &err), -EINVAL);
  CHECK(strstr(err.msg, "deeper") != NULL);
  cJSON_Delete(root);
  CHECK_INT(aip_jcs_serialize(NULL, &out, NULL, &err), -EINVAL);
}

/* Shortest round trip on many doubles: the text reads back as the same double, and no text with
 * one digit fewer would (checked through printf's %.*g, an independent path). */
static void test_round_trip(void) {
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  int bad = 0;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
    double d = from_bits(x);
    if (!isfinite(d)) continue;
    char out[AIP_JCS_NUMBER_MAX], g[40];
    if (aip_jcs_number(d, out) || strtod(out, NULL) != d) {
      bad++;
      continue;
    }
    int digits = 0;
    for (const char *p = out; *p && *p != 'e'; p++) digits += *p >= '0' && *p <= '9';
    /* strip the zeros of the integer form and a leading "0." before counting */
    const char *p = out + (out[0] == '-');
    if (p[0] == '0' && p[1] == '.') {
      for (p += 2; *p == '0'; p++) digits--;
      digits--; /* the 0 before the point */
    }
    int sig = 1;
    while (sig < 17) {
      snprintf(g, sizeof g, "%.*g", sig, d);
      if (strtod(g, NULL) == d) break;
      sig++;
    }
    if (!strchr(out, 'e') && !strchr(out, '.')) { /* integer: trailing zeros are padding */
      size_t l = strlen(out);
      while (l > 1 && out[l - 1] == '0') l--, digits--;
    }
    if (digits != sig) bad++;
  }
  CHECK_INT(bad, 0);
}

int main(void) {
  test_appendix_b();
  test_number_forms();
  test_rfc_examples();
  test_structure();
  test_refused();
  test_round_trip();
  TEST_MAIN_END();
}
