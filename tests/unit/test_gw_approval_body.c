/* test_gw_approval_body.c -- aip_approval_decision_parse (gateway/approvals/approvals_api.c), the body of
 * POST /v1/approvals/{id}/approve|deny: empty or exactly {"reason": "<string>"}; every other
 * shape is refused without touching members an array or a scalar does not have (issue 11: an
 * array body crashed the gateway). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/approvals/approvals.h"
#include "test.h"

static int parse(const char *body, size_t n, char **reason) {
  return aip_approval_decision_parse(body, n, reason);
}

static void refused(const char *body, size_t n) {
  char *reason = (char *)1;
  int rc = parse(body, n, &reason);
  if (rc == 0) fprintf(stderr, "accepted: %.*s\n", (int)(n > 60 ? 60 : n), body);
  CHECK(rc == -EINVAL || rc == -EMSGSIZE);
  CHECK(reason == NULL);
}

#define REFUSED(s) refused(s, sizeof(s) - 1)

int main(void) {
  char *reason = NULL;
  CHECK_INT(parse(NULL, 0, &reason), 0);
  CHECK(reason == NULL);
  CHECK_INT(parse("{}", 2, &reason), 0);
  CHECK(reason == NULL);
  CHECK_INT(parse("{\"reason\":\"fine\"}", 17, &reason), 0);
  CHECK(reason && strcmp(reason, "fine") == 0);
  free(reason);
  CHECK_INT(parse(" { \"reason\" : \"\" } ", 19, &reason), 0);
  CHECK(reason && reason[0] == 0);
  free(reason);
  /* every other shape */
  REFUSED("[]");
  REFUSED("[\"x\"]");
  REFUSED("[{\"reason\":\"x\"}]");
  REFUSED("[[],{}]");
  REFUSED("\"x\"");
  REFUSED("1");
  REFUSED("-0.5e3");
  REFUSED("null");
  REFUSED("true");
  REFUSED("{\"reason\":1}");
  REFUSED("{\"reason\":[\"x\"]}");
  REFUSED("{\"reason\":{\"a\":1}}");
  REFUSED("{\"reason\":null}");
  REFUSED("{\"reason\":true}");
  REFUSED("{\"Reason\":\"x\"}");
  REFUSED("{\"reason\":\"a\",\"reason\":\"b\"}");
  REFUSED("{\"reason\":\"x\",\"extra\":1}");
  REFUSED("{\"extra\":1}");
  REFUSED("{");
  REFUSED("{\"reason\":\"x\"");
  REFUSED("{\"reason\":\"x\"}x");
  REFUSED("{\"reason\":\"\xff\"}");
  REFUSED(" ");
  refused("{\"reason\":\"x\"}\0", 15);
  refused("\0", 1);
  /* sizes: a reason over 1000 bytes, a body over 16 KiB */
  size_t n = 20000;
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  memcpy(big, "{\"reason\":\"", 11);
  memset(big + 11, 'x', 1001);
  memcpy(big + 1012, "\"}", 2);
  refused(big, 1014);
  memcpy(big + 11 + 1000, "\"}", 2); /* exactly 1000: fine */
  CHECK_INT(parse(big, 1013, &reason), 0);
  CHECK(reason && strlen(reason) == 1000);
  free(reason);
  big[n] = 0;
  refused(big, n); /* the same, padded past AIP_APPROVAL_BODY_MAX */
  CHECK_INT(parse(big, n, &reason), -EMSGSIZE);
  free(big);
  TEST_MAIN_END();
}
