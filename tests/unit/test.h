/* test.h -- a tiny unit-test harness: CHECK records a failure and goes on, so one run shows
 * every broken expectation; main() of each test file calls TEST_MAIN_END(). The closing line is
 * "N passed, N failed" (the plain form CI runners read). */
#ifndef AIP_TEST_H
#define AIP_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed_;
static int test_failed_;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (cond) {                                                                       \
      test_passed_++;                                                                 \
    } else {                                                                          \
      test_failed_++;                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                                 \
  } while (0)

#define CHECK_STR(got, want)                                                          \
  do {                                                                                \
    const char *g_ = (got), *w_ = (want);                                             \
    if (g_ && w_ && strcmp(g_, w_) == 0) {                                            \
      test_passed_++;                                                                 \
    } else {                                                                          \
      test_failed_++;                                                                 \
      fprintf(stderr, "%s:%d: CHECK_STR failed:\n  got:  %s\n  want: %s\n", __FILE__, \
              __LINE__, g_ ? g_ : "(null)", w_ ? w_ : "(null)");                       \
    }                                                                                 \
  } while (0)

#define CHECK_INT(got, want)                                                          \
  do {                                                                                \
    long long g_ = (long long)(got), w_ = (long long)(want);                          \
    if (g_ == w_) {                                                                   \
      test_passed_++;                                                                 \
    } else {                                                                          \
      test_failed_++;                                                                 \
      fprintf(stderr, "%s:%d: CHECK_INT failed: %s = %lld, want %lld\n", __FILE__,    \
              __LINE__, #got, g_, w_);                                                \
    }                                                                                 \
  } while (0)

#define TEST_MAIN_END()                                                               \
  do {                                                                                \
    printf("%s: %d passed, %d failed\n", __FILE__, test_passed_, test_failed_);      \
    return test_failed_ == 0 && test_passed_ > 0 ? 0 : 1;                             \
  } while (0)

#endif
