/* policy_source.c -- reading and verifying a policy file, one way for both front ends
 * (policy_source.h). Runs on any thread: no loop, no shared state. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gateway/core/policy_source.h"
#include "gateway/obs/log.h"

int aip_policy_src_read(const char *path, aip_policy_perms perms, aip_policy_src *src,
                        aip_error *err) {
  memset(src, 0, sizeof(*src));
  int bad = perms != AIP_POLICY_PERMS_SKIP ? aip_config_file_check(path, err) : 0;
  /* a file that is not there is the read's to report ("cannot open"), in every mode */
  if (bad && bad != -ENOENT) {
    if (perms == AIP_POLICY_PERMS_REFUSE) return -EPERM;
    aip_warn("ignored because of --allow-writable-config: %s", err->msg);
  }
  int rc = aip_policy_file_read(path, &src->text, &src->len, err);
  if (rc) return rc;
  crypto_hash_sha256(src->digest, (const unsigned char *)src->text, src->len);
  return 0;
}

int aip_policy_src_verify(const aip_policy_src *src, const char *path,
                          const aip_trusted_keys *keys, char **name, aip_error *err) {
  if (name) *name = NULL;
  if (!keys || !keys->n) return 0;
  int rc = aip_policy_verify_signature(src->text, src->len, path, keys, NULL, err);
  if (!rc || !name) return rc;
  /* nothing in a policy that failed can be trusted; its name is read for data.policy only */
  aip_policy_doc *doc = NULL;
  aip_error ignored;
  if (aip_policy_doc_load_string(src->text, src->len, path, &doc, &ignored) == 0 && doc->name)
    *name = strdup(doc->name);
  aip_policy_doc_free(doc);
  return rc;
}

void aip_policy_src_free(aip_policy_src *src) {
  free(src->text);
  src->text = NULL;
  src->len = 0;
}
