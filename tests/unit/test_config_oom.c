/* test_config_oom.c -- allocation failure: loading the complete gateway fixture (which loads
 * two policies) with the Nth allocation failing, for every N until a load succeeds. Each
 * failed load must report -ENOMEM with a message and give back every byte it took.
 *
 * The allocator is replaced by defining malloc & co. here (glibc lets the program interpose
 * them; libyaml and glibc's strdup go through them too). Sanitizer and valgrind builds bring
 * their own allocator, so there the test detects that the interposition is not active and only
 * says so. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define AIP_TEST_INTERPOSE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AIP_TEST_INTERPOSE 0
#endif
#endif
#ifndef AIP_TEST_INTERPOSE
#define AIP_TEST_INTERPOSE 1
#endif

/* volatile: GCC assumes malloc() leaves globals alone and would fold the probe below. */
static volatile long fail_at = -1; /* index of the allocation to fail, -1 for none */
static volatile long calls;        /* allocations attempted since the counter was reset */
static volatile long live;         /* blocks currently allocated through us */

#if AIP_TEST_INTERPOSE
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static int injected_failure(void) { return fail_at >= 0 && calls++ == fail_at; }

void *malloc(size_t n) {
  if (injected_failure()) return NULL;
  void *p = __libc_malloc(n);
  if (p) live++;
  return p;
}

void *calloc(size_t n, size_t size) {
  if (injected_failure()) return NULL;
  void *p = __libc_calloc(n, size);
  if (p) live++;
  return p;
}

void *realloc(void *p, size_t n) {
  if (injected_failure()) return NULL;
  void *q = __libc_realloc(p, n);
  if (!p && q) live++;
  if (p && !q && n == 0) live--;
  return q;
}

void free(void *p) {
  if (!p) return;
  live--;
  __libc_free(p);
}
#endif

int main(void) {
  /* Probe: is our allocator the one in use? */
  long before = live;
  void *volatile probe = malloc(16);
  int active = live == before + 1;
  free(probe);
  if (!active) {
    printf("allocator interposition not active (sanitizer or valgrind build): skipped\n");
    CHECK(1);
    TEST_MAIN_END();
  }

  long iterations = 0, done = 0;
  for (long n = 0; n < 100000 && !done; n++) {
    aip_gateway_config *cfg = NULL;
    aip_error err = {{0}};
    long live0 = live;
    calls = 0;
    fail_at = n;
    int rc = aip_gateway_config_load("data/config/gateway.yaml", &cfg, &err);
    fail_at = -1;
    iterations++;
    if (rc == 0) {
      done = 1;
    } else {
      if (rc != -ENOMEM || !strstr(err.msg, "out of memory"))
        fprintf(stderr, "allocation %ld: rc=%d msg=%s\n", n, rc, err.msg);
      CHECK_INT(rc, -ENOMEM);
      CHECK(cfg == NULL);
    }
    aip_gateway_config_free(cfg);
    if (live != live0) fprintf(stderr, "allocation %ld: %ld blocks leaked\n", n, live - live0);
    CHECK_INT(live, live0);
  }
  CHECK(done);
  printf("failed each of the %ld allocations of a full gateway config load in turn\n",
         iterations - 1);
  TEST_MAIN_END();
}
