/* signing.c -- Ed25519 keys as OpenSSL writes them, trusted key sets, and the one place that
 * decides whether a policy's metadata.signature is good (signing.h; docs/signing.md).
 *
 * Keys are read without OpenSSL: an Ed25519 key in PEM is a fixed DER prefix followed by the 32
 * key bytes (RFC 8410), so comparing the prefix is a complete and strict parser for the one form
 * `openssl genpkey -algorithm Ed25519` and `openssl pkey -pubout` produce. Everything else is
 * refused with a message that says what the file holds instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config/signing.h"
#include "config/yaml_doc.h"

#define KEY_FILE_MAX (64 * 1024)
#define SIG_PREFIX "ed25519:"

/* RFC 8410: PKCS#8 v1 PrivateKeyInfo { 0, { id-Ed25519 }, OCTET STRING { OCTET STRING seed } }
 * and SubjectPublicKeyInfo { { id-Ed25519 }, BIT STRING key }. */
static const uint8_t pkcs8_prefix[] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                       0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
static const uint8_t spki_prefix[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                      0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
static const uint8_t oid_ed448[] = {0x06, 0x03, 0x2b, 0x65, 0x71};

static int init_sodium(aip_error *err) {
  if (sodium_init() < 0) return aip_error_set(err, -EIO, "libsodium failed to initialize");
  return 0;
}

static int contains(const uint8_t *h, size_t hn, const uint8_t *n, size_t nn) {
  for (size_t i = 0; i + nn <= hn; i++)
    if (memcmp(h + i, n, nn) == 0) return 1;
  return 0;
}

/* The first PEM block of the file: its label ("PRIVATE KEY") and DER bytes. The file text is
 * wiped before it is freed, since it may hold a private key. */
static int pem_read(const char *path, char *label, size_t label_cap, uint8_t *der, size_t cap,
                    size_t *der_len, aip_error *err) {
  char *text = NULL;
  size_t len = 0;
  int rc = aip_read_file(path, &text, &len, err);
  if (rc) return rc;
  if (len > KEY_FILE_MAX) {
    rc = aip_error_set(err, -EFBIG, "%s: too large for a key file", path);
    goto out;
  }
  char *t = realloc(text, len + 1); /* NUL-terminate for the string searches */
  if (!t) {
    rc = aip_error_set(err, -ENOMEM, "out of memory");
    goto out;
  }
  text = t;
  text[len] = '\0';
  const char *b = strstr(text, "-----BEGIN ");
  const char *le = b ? strstr(b + 11, "-----") : NULL;
  if (!b || !le || (size_t)(le - b - 11) >= label_cap || memchr(b, '\n', (size_t)(le - b))) {
    rc = aip_error_set(err, -EINVAL, "%s: not a PEM file (no -----BEGIN ...----- line)", path);
    goto out;
  }
  memcpy(label, b + 11, (size_t)(le - b - 11));
  label[le - b - 11] = '\0';
  char end_line[96];
  snprintf(end_line, sizeof end_line, "-----END %s-----", label);
  const char *body = le + 5, *e = strstr(body, end_line);
  if (!e) {
    rc = aip_error_set(err, -EINVAL, "%s: PEM block \"%s\" has no END line", path, label);
    goto out;
  }
  const char *stop = NULL;
  if (sodium_base642bin(der, cap, body, (size_t)(e - body), " \t\r\n", der_len, &stop,
                        sodium_base64_VARIANT_ORIGINAL) != 0 || stop != e) {
    /* too long for any Ed25519 key, or not base64 */
    rc = aip_error_set(err, -EINVAL, "%s: PEM block \"%s\" is not an Ed25519 key", path, label);
  }
out:
  if (text) sodium_memzero(text, len);
  free(text);
  return rc;
}

/* What a wrong key file holds, for the message. */
static int wrong_key(const char *path, const char *label, const uint8_t *der, size_t n,
                     int want_private, aip_error *err) {
  if (want_private && strcmp(label, "PUBLIC KEY") == 0)
    return aip_error_set(err, -EINVAL,
                         "%s holds a public key; signing needs the private key (openssl genpkey "
                         "-algorithm Ed25519 -out key.pem)", path);
  if (!want_private && strstr(label, "PRIVATE KEY"))
    return aip_error_set(err, -EINVAL,
                         "%s holds a private key; trusted keys are public keys (openssl pkey -in "
                         "%s -pubout -out key.pub); keep the private key away from the gateway",
                         path, path);
  if (strcmp(label, "ENCRYPTED PRIVATE KEY") == 0)
    return aip_error_set(err, -EINVAL,
                         "%s: encrypted private keys are not supported; decrypt it (openssl pkey "
                         "-in %s -out plain.pem) or keep it in a secrets manager", path, path);
  if (strcmp(label, "OPENSSH PRIVATE KEY") == 0)
    return aip_error_set(err, -EINVAL,
                         "%s is an OpenSSH key; make a PKCS#8 key with openssl genpkey -algorithm "
                         "Ed25519", path);
  if (strcmp(label, want_private ? "PRIVATE KEY" : "PUBLIC KEY") != 0)
    return aip_error_set(err, -EINVAL, "%s holds a PEM \"%s\", not an Ed25519 %s key", path,
                         label, want_private ? "private (PRIVATE KEY)" : "public (PUBLIC KEY)");
  if (contains(der, n, oid_ed448, sizeof oid_ed448))
    return aip_error_set(err, -EINVAL, "%s is an Ed448 key; only Ed25519 is supported", path);
  return aip_error_set(err, -EINVAL, "%s is not an Ed25519 %s key (another algorithm, or not the "
                                     "form openssl writes)", path,
                       want_private ? "private" : "public");
}

int aip_ed25519_public_load(const char *path, uint8_t pk[AIP_ED25519_PK_BYTES], aip_error *err) {
  char label[64];
  uint8_t der[256];
  size_t n = 0;
  int rc = pem_read(path, label, sizeof label, der, sizeof der, &n, err);
  if (rc) return rc;
  if (strcmp(label, "PUBLIC KEY") != 0 || n != sizeof spki_prefix + AIP_ED25519_PK_BYTES ||
      memcmp(der, spki_prefix, sizeof spki_prefix) != 0)
    return wrong_key(path, label, der, n, 0, err);
  memcpy(pk, der + sizeof spki_prefix, AIP_ED25519_PK_BYTES);
  return 0;
}

int aip_ed25519_private_load(const char *path, uint8_t sk[AIP_ED25519_SK_BYTES], aip_error *err) {
  char label[64];
  uint8_t der[256], pk[AIP_ED25519_PK_BYTES];
  size_t n = 0;
  int rc = init_sodium(err);
  if (!rc) rc = pem_read(path, label, sizeof label, der, sizeof der, &n, err);
  if (!rc && (strcmp(label, "PRIVATE KEY") != 0 || n != sizeof pkcs8_prefix + 32 ||
              memcmp(der, pkcs8_prefix, sizeof pkcs8_prefix) != 0))
    rc = wrong_key(path, label, der, n, 1, err);
  if (!rc && crypto_sign_seed_keypair(pk, sk, der + sizeof pkcs8_prefix) != 0)
    rc = aip_error_set(err, -EINVAL, "%s: cannot derive the Ed25519 key pair", path);
  sodium_memzero(der, sizeof der); /* the seed */
  return rc;
}

/* ---- trusted key sets ------------------------------------------------------------------------ */

void aip_trusted_keys_free(aip_trusted_keys *k) {
  if (!k) return;
  for (size_t i = 0; i < k->n; i++) free(k->paths[i]);
  free(k->paths);
  free(k->pk);
  memset(k, 0, sizeof *k);
}

int aip_trusted_keys_load(const char *const *paths, size_t n, aip_trusted_keys *out,
                          aip_error *err) {
  memset(out, 0, sizeof *out);
  if (n == 0) return 0;
  out->pk = calloc(n, sizeof *out->pk);
  out->paths = calloc(n, sizeof *out->paths);
  if (!out->pk || !out->paths) {
    aip_trusted_keys_free(out);
    return aip_error_set(err, -ENOMEM, "out of memory");
  }
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    rc = aip_ed25519_public_load(paths[i], out->pk[i], err);
    if (!rc && !(out->paths[i] = strdup(paths[i])))
      rc = aip_error_set(err, -ENOMEM, "out of memory");
    if (!rc) out->n++;
  }
  if (rc) aip_trusted_keys_free(out);
  return rc;
}

int aip_trusted_keys_load_csv(const char *csv, aip_trusted_keys *out, aip_error *err) {
  memset(out, 0, sizeof *out);
  char *copy = strdup(csv ? csv : "");
  size_t n = 1;
  for (const char *p = csv ? csv : ""; *p; p++) n += *p == ',';
  const char **paths = calloc(n, sizeof *paths);
  if (!copy || !paths) {
    free(copy);
    free(paths);
    return aip_error_set(err, -ENOMEM, "out of memory");
  }
  size_t k = 0;
  int rc = 0;
  for (char *s = copy, *next; s && !rc; s = next) {
    next = strchr(s, ',');
    if (next) *next++ = '\0';
    s += strspn(s, " \t");
    for (size_t l = strlen(s); l && (s[l - 1] == ' ' || s[l - 1] == '\t'); l--) s[l - 1] = '\0';
    if (!*s) rc = aip_error_set(err, -EINVAL, "trusted keys: empty file name in \"%s\"", csv);
    else paths[k++] = s;
  }
  if (!rc) rc = aip_trusted_keys_load(paths, k, out, err);
  free(paths);
  free(copy);
  return rc;
}

/* ---- verification and signing ---------------------------------------------------------------- */

/* "ed25519:<base64 of 64 bytes>" -> the signature bytes. */
static int parse_signature(const char *name, const char *sig, aip_src_pos pos,
                           uint8_t out[AIP_ED25519_SIG_BYTES], aip_error *err) {
  char where[64] = "";
  if (pos.line > 0) snprintf(where, sizeof where, ":%d:%d", pos.line, pos.col);
  const char *colon = strchr(sig, ':');
  if (colon && strncmp(sig, SIG_PREFIX, strlen(SIG_PREFIX)) != 0)
    return aip_error_set(err, -EINVAL,
                         "%s%s: metadata.signature: unsupported algorithm \"%.*s\" (only ed25519)",
                         name, where, (int)(colon - sig > 32 ? 32 : colon - sig), sig);
  const char *b64 = sig + strlen(SIG_PREFIX), *end = NULL;
  size_t n = 0;
  if (!colon || sodium_base642bin(out, AIP_ED25519_SIG_BYTES, b64, strlen(b64), NULL, &n, &end,
                                  sodium_base64_VARIANT_ORIGINAL) != 0 ||
      *end != '\0' || n != AIP_ED25519_SIG_BYTES)
    return aip_error_set(err, -EINVAL,
                         "%s%s: metadata.signature: expected \"ed25519:<base64 of 64 bytes>\"",
                         name, where);
  return 0;
}

int aip_policy_verify_signature(const char *yaml, size_t len, const char *name,
                                const aip_trusted_keys *keys, size_t *which, aip_error *err) {
  if (!name) name = "<inline>";
  int rc = init_sodium(err);
  if (rc) return rc;
  if (!keys || keys->n == 0) return aip_error_set(err, -EINVAL, "%s: no trusted keys", name);
  char *canon = NULL, *sig = NULL;
  size_t clen = 0;
  aip_src_pos pos = {0, 0};
  uint8_t s[AIP_ED25519_SIG_BYTES];
  rc = aip_policy_canonical(yaml, len, name, &canon, &clen, &sig, &pos, err);
  if (!rc) rc = parse_signature(name, sig, pos, s, err);
  for (size_t i = 0; !rc && i < keys->n; i++) {
    if (crypto_sign_verify_detached(s, (const unsigned char *)canon, clen, keys->pk[i]) != 0)
      continue;
    if (which) *which = i;
    goto out;
  }
  if (!rc) {
    char list[256] = "";
    for (size_t i = 0; i < keys->n; i++) {
      size_t l = strlen(list);
      snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", keys->paths[i]);
    }
    rc = aip_error_set(err, -EBADMSG,
                       "%s: the signature does not verify with the trusted key%s (%s): the policy "
                       "was changed after it was signed, or signed with another key",
                       name, keys->n > 1 ? "s" : "", list);
  }
out:
  free(canon);
  free(sig);
  return rc;
}

int aip_policy_file_read(const char *path, char **text, size_t *len, aip_error *err) {
  return aip_read_file(path, text, len, err);
}

int aip_policy_doc_load_trusted(const char *path, const aip_trusted_keys *keys,
                                aip_policy_doc **out, char **sig_err, aip_error *err) {
  *sig_err = NULL;
  if (!keys || keys->n == 0) return aip_policy_doc_load_file(path, out, err);
  char *text = NULL;
  size_t len = 0;
  int rc = aip_read_file(path, &text, &len, err);
  if (!rc) rc = aip_policy_doc_load_string(text, len, path, out, err);
  aip_error e = {{0}};
  if (!rc && aip_policy_verify_signature(text, len, path, keys, NULL, &e) != 0 &&
      !(*sig_err = strdup(e.msg))) {
    aip_policy_doc_free(*out);
    *out = NULL;
    rc = aip_error_set(err, -ENOMEM, "out of memory");
  }
  free(text);
  return rc;
}

int aip_policy_signature(const char *yaml, size_t len, const char *name,
                         const uint8_t sk[AIP_ED25519_SK_BYTES], char **sig, aip_error *err) {
  *sig = NULL;
  char *canon = NULL;
  size_t clen = 0;
  int rc = init_sodium(err);
  if (!rc) rc = aip_policy_canonical(yaml, len, name, &canon, &clen, NULL, NULL, err);
  uint8_t s[AIP_ED25519_SIG_BYTES];
  if (!rc) crypto_sign_detached(s, NULL, (const unsigned char *)canon, clen, sk);
  free(canon);
  if (rc) return rc;
  size_t b64 = sodium_base64_ENCODED_LEN(sizeof s, sodium_base64_VARIANT_ORIGINAL);
  *sig = malloc(strlen(SIG_PREFIX) + b64);
  if (!*sig) return aip_error_set(err, -ENOMEM, "out of memory");
  strcpy(*sig, SIG_PREFIX);
  sodium_bin2base64(*sig + strlen(SIG_PREFIX), b64, s, sizeof s, sodium_base64_VARIANT_ORIGINAL);
  return 0;
}
