/* fuzz_policy_yaml.c -- the AgentPolicy loader (config/yaml_doc.c, config/policy_config.c) on
 * arbitrary bytes, then everything serve compiles from a policy that loads: the policy
 * (allow_args regexes, protected paths) and its DLP databases. Errors are fine; crashes, leaks
 * and undefined behaviour are not, and an error always has a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "engine/dlp.h"
#include "engine/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  aip_policy_doc *doc = NULL;
  aip_error err = {{0}};
  if (aip_policy_doc_load_string((const char *)data, size, "fuzz.yaml", &doc, &err)) {
    if (!err.msg[0]) abort();
    return 0;
  }
  aip_policy *p = NULL;
  aip_policy_opts o = {.home = "/home/fuzz", .cwd = "/work"};
  if (aip_policy_compile_ex(doc, &o, &p, &err) == 0) {
    aip_dlp *d = NULL;
    aip_dlp_opts dopts = {.no_stream = 1}; /* the stream databases double the compile time */
    /* the built-in pack takes seconds to compile (fuzz_dlp and the unit tests cover it): its
     * name still goes through the loader, but its databases are not built for every input */
    free(doc->dlp.rulepack);
    doc->dlp.rulepack = NULL;
    if (aip_dlp_compile(doc, &dopts, &d, &err) == 0) aip_dlp_free(d);
    else if (!err.msg[0]) abort();
    aip_policy_free(p);
  } else if (!err.msg[0]) {
    abort();
  }
  aip_policy_doc_free(doc);
  return 0;
}
