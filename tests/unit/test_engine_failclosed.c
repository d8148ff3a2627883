/* test_engine_failclosed.c -- features not enforced yet (DLP, until its issue lands) make the
 * policy fail to compile (with the place in the file), so no policy ever runs weaker than
 * written. protected_paths and rate_limit are enforced now and compile (test_engine_paths.c,
 * test_engine_ratelimit.c). */
#include <errno.h>
#include <string.h>

#include "engine/engine.h"
#include "test.h"

static void expect_refused(const char *spec, const char *what) {
  char yaml[1024];
  snprintf(yaml, sizeof(yaml), "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p}\nspec:\n%s", spec);
  aip_policy_doc *doc = NULL;
  aip_policy *p = NULL;
  aip_error err = {{0}};
  CHECK_INT(aip_policy_doc_load_string(yaml, strlen(yaml), "p.yaml", &doc, &err), 0);
  CHECK_INT(aip_policy_compile(doc, &p, &err), -ENOTSUP);
  CHECK(p == NULL);
  CHECK(strstr(err.msg, what) != NULL);
  CHECK(strncmp(err.msg, "p.yaml:", 7) == 0);
  aip_policy_doc_free(doc);
}

int main(void) {
  expect_refused("  dlp:\n    patterns:\n      - {name: k, regex: \"AKIA[A-Z0-9]{16}\"}\n", "dlp");
  /* a disabled DLP block enforces nothing, so it is fine */
  const char *ok = "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p}\nspec:\n"
                   "  dlp:\n    enabled: false\n    patterns:\n      - {name: k, regex: \"x\"}\n";
  aip_policy_doc *doc = NULL;
  aip_policy *p = NULL;
  aip_error err = {{0}};
  CHECK_INT(aip_policy_doc_load_string(ok, strlen(ok), "p.yaml", &doc, &err), 0);
  CHECK_INT(aip_policy_compile(doc, &p, &err), 0);
  aip_policy_free(p);
  aip_policy_doc_free(doc);
  TEST_MAIN_END();
}
