/* test_dlp_conformance.c -- the AIP DLP vectors (conformance/aip/conformance/full/dlp.yaml)
 * through the DLP engine, exactly as the reference runner judges them: `redacted` is
 * output != input, `output` must be equal byte for byte, and the dlp_events (summed per rule
 * name) must be the same set with the same counts.
 *
 * The file is read from $AIP_SHARED_DIR (default ../../../shared from tests/unit, i.e. the
 * shared folder beside the repository), as tests/conformance does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/yaml_doc.h"
#include "engine/dlp.h"
#include "test.h"

static const char *vectors_path(char *buf, size_t cap) {
  const char *shared = getenv("AIP_SHARED_DIR");
  snprintf(buf, cap, "%s/conformance/aip/conformance/full/dlp.yaml",
           shared && shared[0] ? shared : "../../../shared");
  return buf;
}

static const char *str(const aip_ynode *map, const char *key) {
  const aip_ynode *n = aip_y_get(map, key);
  return n && n->kind == AIP_YSCALAR ? n->value : NULL;
}

/* Expected events vs counts: same rule names, same counts. */
static int events_match(const aip_dlp *d, const aip_dlp_counts *c, const aip_ynode *events,
                        const char *id) {
  size_t want = events ? events->n : 0, got = 0;
  size_t it = 0;
  const char *rule;
  uint32_t count;
  while (aip_dlp_counts_next(d, c, &it, &rule, &count)) {
    got++;
    int found = 0;
    for (size_t i = 0; i < want; i++) {
      const char *r = str(events->items[i], "rule"), *n = str(events->items[i], "count");
      if (r && strcmp(r, rule) == 0 && n && strtoul(n, NULL, 10) == count) found = 1;
    }
    if (!found) {
      fprintf(stderr, "%s: unexpected event %s x%u\n", id, rule, count);
      return 0;
    }
  }
  if (got != want) fprintf(stderr, "%s: %zu events, want %zu\n", id, got, want);
  return got == want;
}

static void run_case(const aip_ynode *tc, aip_dlp_scratch *s, int *ran) {
  const char *id = str(tc, "id"), *policy = str(tc, "policy");
  const aip_ynode *input = aip_y_get(tc, "input"), *exp = aip_y_get(tc, "expected");
  const char *content = str(input, "content"), *want = str(exp, "output");
  const char *redacted = str(exp, "redacted");
  aip_error err = {{0}};
  aip_policy_doc *doc = NULL;
  aip_dlp *d = NULL;
  CHECK(aip_policy_doc_load_string(policy, strlen(policy), id, &doc, &err) == 0);
  CHECK(aip_dlp_compile(doc, NULL, &d, &err) == 0);
  if (err.msg[0]) fprintf(stderr, "%s: %s\n", id, err.msg);
  CHECK(aip_dlp_scratch_prepare(s, d) == 0);
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, d);
  aip_buf out;
  aip_buf_init(&out);
  int rc = aip_dlp_redact_text(d, s, AIP_DLP_RESPONSE, content, strlen(content), &out, &c);
  const char *got = rc > 0 ? out.data : content;
  CHECK(rc >= 0);
  CHECK_STR(got, want);
  if (redacted) CHECK_INT(strcmp(got, content) != 0, strcmp(redacted, "true") == 0);
  const aip_ynode *events = aip_y_get(exp, "dlp_events");
  if (events) CHECK(events_match(d, &c, events, id));
  (*ran)++;
  aip_buf_free(&out);
  aip_dlp_counts_free(&c);
  aip_dlp_free(d);
  aip_policy_doc_free(doc);
}

int main(void) {
  char path[512];
  aip_ydoc *y = NULL;
  aip_error err = {{0}};
  if (aip_ydoc_load_file(vectors_path(path, sizeof path), &y, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  const aip_ynode *tests = aip_y_get(y->root, "tests");
  aip_dlp_scratch *s = aip_dlp_scratch_new();
  int ran = 0;
  for (size_t i = 0; tests && i < tests->n; i++) run_case(tests->items[i], s, &ran);
  CHECK_INT(ran, 9);
  aip_dlp_scratch_free(s);
  aip_ydoc_free(y);
  TEST_MAIN_END();
}
