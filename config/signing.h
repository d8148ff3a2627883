/* signing.h -- signed policies (AIP v1alpha2 metadata.signature; docs/signing.md).
 *
 * A policy is signed with Ed25519 over the RFC 8785 (JCS) canonical JSON of the whole policy
 * document without `metadata.signature`; the signature is written into the YAML as
 * `metadata.signature: "ed25519:<base64>"`. Keys are the files OpenSSL makes:
 *   openssl genpkey -algorithm Ed25519 -out key.pem      (PKCS#8 "PRIVATE KEY")
 *   openssl pkey -in key.pem -pubout -out key.pub        (SPKI "PUBLIC KEY")
 *
 *   jcs.c          RFC 8785 canonical JSON of a cJSON tree
 *   policy_json.c  policy YAML -> JSON value (the scalar typing rules) -> canonical bytes
 *   signing.c      PEM keys, trusted key sets, verification, signing
 *   policy_sign.c  writing the signature line into the policy text (aip sign-policy)
 * Same conventions as config.h: 0 or a negative errno, the reason in `aip_error`.
 */
#ifndef AIP_CONFIG_SIGNING_H
#define AIP_CONFIG_SIGNING_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/config.h"

/* ---- RFC 8785 JSON Canonicalization Scheme (jcs.c) ------------------------------------------ */

#define AIP_JCS_NUMBER_MAX 32 /* longest ECMAScript number text is 25 bytes + NUL */

/* ECMAScript Number::toString of `d` (RFC 8785 section 3.2.2.3): the shortest decimal that reads
 * back as d, "-0" as "0". -EDOM for NaN and the infinities, which JSON cannot hold. */
int aip_jcs_number(double d, char out[AIP_JCS_NUMBER_MAX]);

/* The canonical bytes of `v`: object members sorted by the UTF-16 code units of their names, no
 * white space, numbers as above, strings with the minimal escapes. Fails (-EINVAL, message in
 * err) on invalid UTF-8, duplicate member names, NaN/Infinity, cJSON raw items, or nesting
 * deeper than AIP_JCS_MAX_DEPTH. `*out` is malloc'd and NUL-terminated. */
#define AIP_JCS_MAX_DEPTH 128
int aip_jcs_serialize(const cJSON *v, char **out, size_t *out_len, aip_error *err);

/* ---- policy YAML -> JSON (policy_json.c) ----------------------------------------------------- */

/* Returned when the policy has no metadata.signature (the only failure that is not a tampered
 * or malformed policy). Any signature that does not verify is -EBADMSG. */
#define AIP_ENOT_SIGNED (-ENOMSG)


/* The whole policy document as a JSON value, scalars typed as docs/signing.md says: quoted,
 * block and tagged scalars are strings; plain `null`/`~`/empty are null, `true`/`false` are
 * booleans, plain numbers written in their canonical JSON form are numbers, every other plain
 * scalar is a string; a plain scalar that some YAML reader would take for a number or boolean
 * but that has no single JSON form (`1.0`, `0x10`, `1e3`, `yes`, `True`, `.inf`) is an error
 * ("quote it"), so no two different texts of a value share one signature. */
int aip_policy_json(const char *yaml, size_t len, const char *name, cJSON **out, aip_error *err);

/* The bytes a signature covers: JCS of aip_policy_json() without metadata.signature.
 * `sig` (optional) receives metadata.signature as written (and `*sig_pos` where); when it is
 * requested and the policy has none (absent or null), AIP_ENOT_SIGNED is returned before the
 * document is canonicalized. */
int aip_policy_canonical(const char *yaml, size_t len, const char *name, char **canon,
                         size_t *canon_len, char **sig, aip_src_pos *sig_pos, aip_error *err);

/* ---- keys and signatures (signing.c) --------------------------------------------------------- */

#define AIP_ED25519_PK_BYTES 32
#define AIP_ED25519_SK_BYTES 64 /* libsodium's form: seed || public key */
#define AIP_ED25519_SIG_BYTES 64

/* A PEM "PUBLIC KEY" (SPKI) holding an Ed25519 key. Any other PEM (a private key, another
 * algorithm, an encrypted key) is an error that says what the file holds instead. */
int aip_ed25519_public_load(const char *path, uint8_t pk[AIP_ED25519_PK_BYTES], aip_error *err);
/* A PEM "PRIVATE KEY" (PKCS#8) holding an Ed25519 seed, expanded to libsodium's secret key.
 * The caller wipes `sk` with sodium_memzero when done. */
int aip_ed25519_private_load(const char *path, uint8_t sk[AIP_ED25519_SK_BYTES], aip_error *err);

/* The public keys a policy may be signed with (gateway `trusted_keys`, wrapper
 * `--trusted-keys`). Two at once is how a key is rotated with a grace period. */
typedef struct aip_trusted_keys {
  uint8_t (*pk)[AIP_ED25519_PK_BYTES];
  char **paths; /* for messages: which key verified or failed */
  size_t n;
} aip_trusted_keys;

int aip_trusted_keys_load(const char *const *paths, size_t n, aip_trusted_keys *out,
                          aip_error *err);
/* Splits "a.pub,b.pub" (the wrapper and verify-policy flag) and loads each file. */
int aip_trusted_keys_load_csv(const char *csv, aip_trusted_keys *out, aip_error *err);
void aip_trusted_keys_free(aip_trusted_keys *k);

/* The one signature check, used by the gateway (start-up and reload), the wrapper and
 * `aip verify-policy`: 0 when one of `keys` verifies the signature of the policy text (`*which`,
 * optional, is that key's index); AIP_ENOT_SIGNED when unsigned; -EBADMSG when the signature
 * does not verify with any key; -EINVAL when the signature or the document is malformed. The
 * message in `err` always starts with the policy's name. */
int aip_policy_verify_signature(const char *yaml, size_t len, const char *name,
                                const aip_trusted_keys *keys, size_t *which, aip_error *err);

/* Reads the policy file once, checks its signature with `keys` and parses the same bytes, so the
 * policy that runs is exactly the one that was verified. A parse error fails (return value, in
 * err); a signature failure does not: the doc is returned and `*sig_err` gets the reason
 * (malloc'd; NULL when the signature is good). `keys` NULL or empty: no check. */
int aip_policy_doc_load_trusted(const char *path, const aip_trusted_keys *keys,
                                aip_policy_doc **out, char **sig_err, aip_error *err);

/* Reads a policy file as the loaders do (size limit, "path: cannot open: ..." errors), for
 * callers that need its bytes (aip sign-policy). `*text` is malloc'd, not NUL-terminated. */
int aip_policy_file_read(const char *path, char **text, size_t *len, aip_error *err);

/* "ed25519:<base64>" of the canonical bytes of the policy text (signature ignored). */
int aip_policy_signature(const char *yaml, size_t len, const char *name,
                         const uint8_t sk[AIP_ED25519_SK_BYTES], char **sig, aip_error *err);

/* ---- aip sign-policy (policy_sign.c) --------------------------------------------------------- */

/* The policy text with `metadata.signature: "ed25519:..."` set: the line of an existing
 * signature is replaced, or one line is added at the end of the metadata mapping; every other
 * byte (comments, order, quoting) is kept. The result (NUL-terminated, `*out_len` bytes) is
 * verified before it is returned. */
int aip_policy_sign_text(const char *yaml, size_t len, const char *name,
                         const uint8_t sk[AIP_ED25519_SK_BYTES], char **out, size_t *out_len,
                         aip_error *err);

#endif
