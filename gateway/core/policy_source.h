/* core/policy_source.h -- an agent's policy file as both front ends take it in, in one order:
 * its permissions (a policy someone else can rewrite is no root of trust), its bytes and their
 * digest, then, with trusted keys, the signature of exactly those bytes; only bytes that passed
 * are parsed (docs/signing.md). `aip serve` (serve/policy_load.c, on the thread pool) and the
 * stdio wrapper (wrapper/wrapper.c) differ only in what they do with a failure: serve blocks
 * the agent (-32010 for a bad signature), the wrapper refuses to start. */
#ifndef AIP_CORE_POLICY_SOURCE_H
#define AIP_CORE_POLICY_SOURCE_H

#include <stddef.h>

#include "config/signing.h"

#define AIP_POLICY_DIGEST_BYTES 32

typedef enum aip_policy_perms {
  AIP_POLICY_PERMS_REFUSE = 0, /* a file group or others can write fails the read */
  AIP_POLICY_PERMS_WARN,       /* ... is logged and read (--allow-writable-config) */
  AIP_POLICY_PERMS_SKIP        /* not looked at */
} aip_policy_perms;

typedef struct aip_policy_src {
  char *text; /* not NUL-terminated */
  size_t len;
  unsigned char digest[AIP_POLICY_DIGEST_BYTES]; /* SHA-256 of text */
} aip_policy_src;

/* Permissions, then the bytes and their digest. 0, or < 0 with `err` (the file's own message). */
int aip_policy_src_read(const char *path, aip_policy_perms perms, aip_policy_src *src,
                        aip_error *err);
/* The signature of src's bytes with `keys` (NULL or none: nothing to check, 0). < 0 with the
 * verifier's message in `err` (it starts with the path) when it does not verify; `*name`
 * (optional) then gets the policy's metadata.name, for an answer's data.policy (malloc'd, may
 * stay NULL). */
int aip_policy_src_verify(const aip_policy_src *src, const char *path,
                          const aip_trusted_keys *keys, char **name, aip_error *err);
void aip_policy_src_free(aip_policy_src *src);

#endif
