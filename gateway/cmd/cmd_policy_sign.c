/* cmd_policy_sign.c -- `aip sign-policy` and `aip verify-policy` (docs/signing.md): thin command
 * lines over config/signing.h, where the canonical form, the keys and the check live.
 *
 *   aip sign-policy --key key.pem --policy agent.yaml > agent.signed.yaml
 *   aip sign-policy --canonical --policy agent.yaml      (the signed bytes, for external signers)
 *   aip verify-policy --policy agent.yaml --trusted-keys a.pub[,b.pub]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config/signing.h"
#include "gateway/cmd/cmd.h"

static const char sign_usage[] =
    "usage: aip sign-policy --key key.pem --policy agent.yaml > agent.signed.yaml\n"
    "       aip sign-policy --canonical --policy agent.yaml\n"
    "  Prints the policy with metadata.signature set to \"ed25519:<base64>\", a signature over\n"
    "  the RFC 8785 canonical JSON of the policy without that field. Comments and layout are\n"
    "  kept. The key is an Ed25519 PKCS#8 PEM file: openssl genpkey -algorithm Ed25519\n"
    "  --canonical  print the canonical JSON bytes instead (to sign with another tool)\n";

static const char verify_usage[] =
    "usage: aip verify-policy --policy agent.yaml --trusted-keys a.pub[,b.pub]\n"
    "  Exits 0 when one of the public keys (openssl pkey -in key.pem -pubout) signed the\n"
    "  policy, 1 when it is unsigned, changed since it was signed, signed with another key, or\n"
    "  a key file is unusable (the reason on stderr).\n";

typedef struct sign_args {
  const char *key, *policy, *trusted;
  int canonical, help;
} sign_args;

/* --name value or --name=value; `canonical` and `help` take no value. -EINVAL on anything else. */
static int parse(int argc, char **argv, sign_args *a) {
  static const char *const names[] = {"--key", "--policy", "--trusted-keys"};
  memset(a, 0, sizeof *a);
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) a->help = 1;
    else if (!strcmp(s, "--canonical")) a->canonical = 1;
    else {
      size_t k = 0, n = 0;
      for (; k < 3; k++) {
        n = strlen(names[k]);
        if (!strncmp(s, names[k], n) && (s[n] == '\0' || s[n] == '=')) break;
      }
      if (k == 3 || (s[n] == '\0' && i + 1 >= argc)) return -EINVAL;
      const char *v = s[n] == '=' ? s + n + 1 : argv[++i];
      *(k == 0 ? &a->key : k == 1 ? &a->policy : &a->trusted) = v;
    }
  }
  return 0;
}

static int usage(const char *text, int help) {
  fputs(text, help ? stdout : stderr);
  return help ? 0 : 2;
}

int aip_cmd_sign_policy(int argc, char **argv) {
  sign_args a;
  if (parse(argc, argv, &a) || a.help || a.trusted || !a.policy || (!a.key == !a.canonical))
    return usage(sign_usage, a.help);
  aip_error err = {{0}};
  char *text = NULL, *out = NULL;
  size_t len = 0, out_len = 0;
  uint8_t sk[AIP_ED25519_SK_BYTES];
  int rc = aip_policy_file_read(a.policy, &text, &len, &err);
  if (!rc && a.canonical)
    rc = aip_policy_canonical(text, len, a.policy, &out, &out_len, NULL, NULL, &err);
  if (!rc && !a.canonical) {
    rc = aip_ed25519_private_load(a.key, sk, &err);
    if (!rc) rc = aip_policy_sign_text(text, len, a.policy, sk, &out, &out_len, &err);
    sodium_memzero(sk, sizeof sk);
  }
  if (!rc && (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout) != 0))
    rc = aip_error_set(&err, -EIO, "cannot write the output");
  free(text);
  free(out);
  if (rc) {
    fprintf(stderr, "aip sign-policy: %s\n", err.msg);
    return 1;
  }
  return 0;
}

int aip_cmd_verify_policy(int argc, char **argv) {
  sign_args a;
  if (parse(argc, argv, &a) || a.help || a.key || a.canonical || !a.policy || !a.trusted)
    return usage(verify_usage, a.help);
  aip_error err = {{0}};
  aip_trusted_keys keys = {0};
  char *text = NULL;
  size_t len = 0, which = 0;
  int rc = aip_trusted_keys_load_csv(a.trusted, &keys, &err);
  if (!rc) rc = aip_policy_file_read(a.policy, &text, &len, &err);
  if (!rc) rc = aip_policy_verify_signature(text, len, a.policy, &keys, &which, &err);
  if (!rc) printf("%s: signature ok (key %s)\n", a.policy, keys.paths[which]);
  else fprintf(stderr, "aip verify-policy: %s\n", err.msg);
  free(text);
  aip_trusted_keys_free(&keys);
  return rc ? 1 : 0;
}
