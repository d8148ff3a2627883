/* test_config_signing.c -- signed policies (config/signing.h): OpenSSL key files, the YAML ->
 * JSON typing rules, canonical bytes checked against an independent computation, a signature
 * made by `openssl pkeyutl` verified here, aip sign-policy's text edit on several layouts, and
 * every way a policy must fail: tampered, reordered list, unsigned, wrong key, bad format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config/signing.h"
#include "test.h"

#define D "data/signing/"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(1 << 16);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  fclose(f);
  buf[n] = '\0';
  if (len) *len = n;
  return buf;
}

/* Replaces the first `from` in s by `to` (malloc'd result). */
static char *subst(const char *s, const char *from, const char *to) {
  const char *p = strstr(s, from);
  if (!p) return NULL;
  size_t a = (size_t)(p - s), fl = strlen(from), tl = strlen(to);
  char *o = malloc(strlen(s) - fl + tl + 1);
  memcpy(o, s, a);
  memcpy(o + a, to, tl);
  strcpy(o + a + tl, p + fl);
  return o;
}

static aip_trusted_keys keys(const char *csv) {
  aip_trusted_keys k;
  aip_error err = {{0}};
  if (aip_trusted_keys_load_csv(csv, &k, &err)) fprintf(stderr, "keys: %s\n", err.msg);
  return k;
}

static int verify(const char *yaml, const char *csv, size_t *which, aip_error *err) {
  aip_trusted_keys k = keys(csv);
  int rc = aip_policy_verify_signature(yaml, strlen(yaml), "p.yaml", &k, which, err);
  aip_trusted_keys_free(&k);
  return rc;
}

/* ---- keys ------------------------------------------------------------------------------------ */

static void test_keys(void) {
  aip_error err = {{0}};
  uint8_t pk[32], sk[64], pk2[32];
  CHECK_INT(aip_ed25519_public_load(D "v1.pub", pk, &err), 0);
  CHECK_INT(aip_ed25519_private_load(D "v1.pem", sk, &err), 0);
  crypto_sign_ed25519_sk_to_pk(pk2, sk);
  CHECK(memcmp(pk, pk2, 32) == 0); /* the pair OpenSSL made */
  sodium_memzero(sk, sizeof sk);

  static const struct { const char *path; int priv; const char *msg; } bad[] = {
      {D "v1.pem", 0, "holds a private key; trusted keys are public keys"},
      {D "v1.pub", 1, "holds a public key; signing needs the private key"},
      {D "ed448.pub", 0, "is an Ed448 key"},
      {D "ed448.pem", 1, "is an Ed448 key"},
      {D "p256.pub", 0, "is not an Ed25519 public key"},
      {D "p256.pem", 1, "is not an Ed25519 private key"},
      {D "v1-encrypted.pem", 1, "encrypted private keys are not supported"},
      {D "policy.yaml", 0, "not a PEM file"},
      {D "missing.pub", 0, "cannot open"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err.msg[0] = '\0';
    int rc = bad[i].priv ? aip_ed25519_private_load(bad[i].path, sk, &err)
                         : aip_ed25519_public_load(bad[i].path, pk, &err);
    CHECK(rc < 0);
    if (!strstr(err.msg, bad[i].msg)) fprintf(stderr, "  %s: %s\n", bad[i].path, err.msg);
    CHECK(strstr(err.msg, bad[i].msg) != NULL);
    CHECK(strstr(err.msg, bad[i].path) != NULL);
  }
  /* a PEM body that is not base64, and one whose END line is missing */
  char tmp[] = "/tmp/aip-test-key-XXXXXX";
  int fd = mkstemp(tmp);
  const char *garbage = "-----BEGIN PUBLIC KEY-----\n!!!notbase64!!!\n-----END PUBLIC KEY-----\n";
  CHECK(write(fd, garbage, strlen(garbage)) == (ssize_t)strlen(garbage));
  close(fd);
  CHECK_INT(aip_ed25519_public_load(tmp, pk, &err), -EINVAL);
  CHECK(strstr(err.msg, "not an Ed25519 key") != NULL);
  FILE *f = fopen(tmp, "w");
  fputs("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n", f);
  fclose(f);
  CHECK_INT(aip_ed25519_public_load(tmp, pk, &err), -EINVAL);
  CHECK(strstr(err.msg, "no END line") != NULL);
  unlink(tmp);

  aip_trusted_keys k;
  CHECK_INT(aip_trusted_keys_load_csv(D "v1.pub, " D "v2.pub", &k, &err), 0);
  CHECK_INT(k.n, 2);
  CHECK_STR(k.paths[1], D "v2.pub");
  aip_trusted_keys_free(&k);
  CHECK_INT(aip_trusted_keys_load_csv(D "v1.pub,," D "v2.pub", &k, &err), -EINVAL);
  CHECK(strstr(err.msg, "empty file name") != NULL);
  CHECK_INT(aip_trusted_keys_load_csv(D "v1.pub," D "v1.pem", &k, &err), -EINVAL);
  CHECK_INT(k.n, 0);
}

/* ---- YAML -> JSON ---------------------------------------------------------------------------- */

static const char *json_of(const char *yaml, aip_error *err) {
  static char buf[2048];
  cJSON *v = NULL;
  char *out = NULL;
  err->msg[0] = '\0';
  if (aip_policy_json(yaml, strlen(yaml), "t.yaml", &v, err)) return NULL;
  aip_jcs_serialize(v, &out, NULL, err);
  cJSON_Delete(v);
  snprintf(buf, sizeof buf, "%s", out ? out : "(null)");
  free(out);
  return buf;
}

static void test_typing(void) {
  aip_error err = {{0}};
  CHECK_STR(json_of("a: 5\nb: -1.5\nc: \"5\"\nd: true\ne: ~\nf:\ng: 1.0.0\nh: 'true'\n"
                    "i: !!str 7\nj: |\n  x\nk: 0.25\nl: 10/m\nm: [false, null, 0, -7]\n"
                    "nn: 1.5e-7\no: 1MB\np: \"1.0\"\nq: NULL\n\"7\": key\nr: 2026-01-01x\n",
                    &err),
            "{\"7\":\"key\",\"a\":5,\"b\":-1.5,\"c\":\"5\",\"d\":true,\"e\":null,\"f\":null,"
            "\"g\":\"1.0.0\",\"h\":\"true\",\"i\":\"7\",\"j\":\"x\\n\",\"k\":0.25,\"l\":\"10/m\","
            "\"m\":[false,null,0,-7],\"nn\":1.5e-7,\"o\":\"1MB\",\"p\":\"1.0\",\"q\":null,"
            "\"r\":\"2026-01-01x\"}");
  /* scalars some YAML reader types differently, or that have no single JSON form */
  static const char *const refused[] = {
      "1.0", "007", "0x1F", "0o17", "0b101", "1_000", "1e3", "1e+21", "+1", "-0", "12:30",
      ".5", "1.", ".inf", "-.Inf", ".NaN", "yes", "No", "on", "OFF", "True", "FALSE", "y", "n",
      "12345678901234567890", "0.10", "2026-01-01", "2001-12-14t21:59:43.10-05:00", "=",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    char doc[96];
    snprintf(doc, sizeof doc, "spec:\n  x: [ok, %s]\n", refused[i]);
    const char *got = json_of(doc, &err);
    if (got) fprintf(stderr, "  accepted %s: %s\n", refused[i], got);
    CHECK(got == NULL);
    CHECK(strncmp(err.msg, "t.yaml:2:", 9) == 0);
    CHECK(strstr(err.msg, "quote it") != NULL);
  }
  /* keys: quoted any way, plain only when a string to every reader */
  static const char *const keys[] = {"1", "1.0", "yes", "true", "null", "~", "<<", "2026-01-01"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    char doc[96];
    snprintf(doc, sizeof doc, "a:\n  ok: 1\n  %s: x\n", keys[i]);
    CHECK(json_of(doc, &err) == NULL);
    CHECK(strncmp(err.msg, "t.yaml:3:3: the key", 19) == 0);
  }
  CHECK_STR(json_of("\"1\": a\n'yes': b\n\"<<\": c\n", &err), "{\"1\":\"a\",\"<<\":\"c\",\"yes\":\"b\"}");
  CHECK(json_of("a: 1.0\n", &err) == NULL);
  CHECK(strstr(err.msg, "write 1, or quote it") != NULL);
  /* quoting any of them makes a string */
  CHECK_STR(json_of("a: ['1.0', \"yes\", \"0x1F\"]\n", &err), "{\"a\":[\"1.0\",\"yes\",\"0x1F\"]}");
  CHECK(json_of("", &err) == NULL);
  CHECK(json_of("a: [1\n", &err) == NULL); /* YAML syntax error */
}

/* ---- canonical bytes, verification ----------------------------------------------------------- */

static void test_canonical_and_openssl(void) {
  aip_error err = {{0}};
  size_t len, clen;
  char *policy = slurp(D "policy.yaml", &len), *want = slurp(D "policy.canonical.json", NULL);
  char *canon = NULL;
  CHECK_INT(aip_policy_canonical(policy, len, "policy.yaml", &canon, &clen, NULL, NULL, &err), 0);
  CHECK_STR(canon, want);
  free(canon);
  /* asking for the signature of an unsigned policy */
  char *sig = (char *)"x";
  CHECK_INT(aip_policy_canonical(policy, len, "policy.yaml", &canon, &clen, &sig, NULL, &err),
            AIP_ENOT_SIGNED);
  CHECK(sig == NULL && canon == NULL);
  CHECK(strstr(err.msg, "policy.yaml: the policy is not signed") != NULL);

  /* signed by `openssl pkeyutl -sign -rawin` over the independent canonical form */
  char *signed_ = slurp(D "openssl-signed.yaml", NULL);
  size_t which = 99;
  CHECK_INT(verify(signed_, D "v1.pub", &which, &err), 0);
  CHECK_INT(which, 0);
  CHECK_INT(verify(signed_, D "v2.pub", NULL, &err), -EBADMSG);
  CHECK(strstr(err.msg, "p.yaml: the signature does not verify with the trusted key (") != NULL);
  CHECK_INT(verify(signed_, D "v2.pub," D "v1.pub", &which, &err), 0); /* rotation */
  CHECK_INT(which, 1);

  /* changes that keep the meaning keep the signature: mapping order, quoting, comments */
  char *t1 = subst(signed_, "  mode: enforce\n", "");
  char *t2 = subst(t1, "  strict_args_default: false\n", "  strict_args_default: false\n  mode: enforce\n");
  char *t3 = subst(t2, "\"list_dir\"", "'list_dir'");
  char *t4 = subst(t3, "# A policy", "# An edited comment on a policy");
  CHECK_INT(verify(t4, D "v1.pub", NULL, &err), 0);
  free(t1), free(t2), free(t3), free(t4);

  /* changes of meaning do not */
  static const char *const tamper[][2] = {
      {"read_file", "read_filf"},                               /* one byte of a value */
      {"[read_file, \"list_dir\"]", "[\"list_dir\", read_file]"}, /* list order */
      {"action: ask", "action: allow"},
      {"  strict_args_default: false\n", ""},                   /* a key removed */
      {"regex: 'TICK-[0-9]{4}'", "regex: 'TICK-[0-9]{4}'\n        scope: request"},
      {"apiVersion: aip.io/v1alpha2", "apiVersion: aip.io/v1alpha1"},
  };
  for (size_t i = 0; i < sizeof tamper / sizeof tamper[0]; i++) {
    char *t = subst(signed_, tamper[i][0], tamper[i][1]);
    CHECK(t != NULL);
    CHECK_INT(verify(t, D "v1.pub," D "v2.pub", NULL, &err), -EBADMSG);
    free(t);
  }
  /* unsigned, null signature, malformed signatures */
  CHECK_INT(verify(policy, D "v1.pub", NULL, &err), AIP_ENOT_SIGNED);
  char *sigline = strstr(signed_, "  signature: ");
  char line[200];
  snprintf(line, sizeof line, "%.*s", (int)(strchr(sigline, '\n') - sigline + 1), sigline);
  static const struct { const char *to; int rc; const char *msg; } forms[] = {
      {"  signature:\n", AIP_ENOT_SIGNED, "not signed"},
      {"  signature: ~\n", AIP_ENOT_SIGNED, "not signed"},
      {"  signature: \"\"\n", -EINVAL, "p.yaml:7:14: metadata.signature: expected"},
      {"  signature: \"ed25519:abc\"\n", -EINVAL, "expected \"ed25519:<base64 of 64 bytes>\""},
      {"  signature: \"ed25519:K30z1Ad7bwW025WENs8jhdaat1axl0Q6Za1PdViry15EPZInVyswiCO8_DtlRrk-b4mTkgVPNv_8LqEnpyriCw==\"\n",
       -EINVAL, "expected"}, /* base64url is not the format */
      {"  signature: \"ecdsa-p256:AAAA\"\n", -EINVAL, "unsupported algorithm \"ecdsa-p256\""},
      {"  signature: {alg: ed25519}\n", -EINVAL, "metadata.signature: expected a string"},
  };
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    char *t = subst(signed_, line, forms[i].to);
    CHECK_INT(verify(t, D "v1.pub", NULL, &err), forms[i].rc);
    if (!strstr(err.msg, forms[i].msg)) fprintf(stderr, "  %s: %s\n", forms[i].to, err.msg);
    CHECK(strstr(err.msg, forms[i].msg) != NULL);
    free(t);
  }
  /* a signature over a document some readers would type differently: refused, not verified */
  char *amb = subst(signed_, "version: 1.0.0", "version: 1.0");
  CHECK_INT(verify(amb, D "v1.pub", NULL, &err), -EINVAL);
  CHECK(strstr(err.msg, "quote it") != NULL);
  free(amb);
  aip_trusted_keys none = {0};
  CHECK_INT(aip_policy_verify_signature(signed_, strlen(signed_), "p", &none, NULL, &err), -EINVAL);
  free(signed_);
  free(policy);
  free(want);
}

/* ---- aip sign-policy ------------------------------------------------------------------------- */

static char *sign(const char *yaml, const char *keyfile, aip_error *err) {
  uint8_t sk[64];
  char *out = NULL;
  size_t len = 0;
  if (aip_ed25519_private_load(keyfile, sk, err)) return NULL;
  int rc = aip_policy_sign_text(yaml, strlen(yaml), "p.yaml", sk, &out, &len, err);
  sodium_memzero(sk, sizeof sk);
  if (!rc && strlen(out) != len) rc = -1;
  return rc ? NULL : out;
}

static void test_sign_text(void) {
  aip_error err = {{0}};
  char *policy = slurp(D "policy.yaml", NULL);
  char *out = sign(policy, D "v2.pem", &err);
  if (!out) fprintf(stderr, "  sign: %s\n", err.msg);
  CHECK(out != NULL);
  if (!out) return;
  CHECK_INT(verify(out, D "v2.pub", NULL, &err), 0);
  CHECK_INT(verify(out, D "v1.pub", NULL, &err), -EBADMSG);
  /* exactly one line added, after the last metadata entry; everything else byte for byte */
  char *sigline = out ? strstr(out, "  signature: \"ed25519:") : NULL;
  CHECK(sigline != NULL);
  if (sigline) {
    char *eol = strchr(sigline, '\n');
    CHECK(eol - sigline == (long)strlen("  signature: \"ed25519:\"") + 88);
    CHECK(strncmp(sigline - strlen("  version: 1.0.0\n"), "  version: 1.0.0\n", 17) == 0);
    char *rest = malloc(strlen(out) + 1);
    memcpy(rest, out, (size_t)(sigline - out));
    strcpy(rest + (sigline - out), eol + 1);
    CHECK_STR(rest, policy);
    free(rest);
  }
  /* signing again (with v1) replaces the line instead of adding one */
  char *again = out ? sign(out, D "v1.pem", &err) : NULL;
  CHECK(again != NULL);
  CHECK_INT(again ? strlen(again) : 0, out ? strlen(out) : 1);
  CHECK_INT(again ? verify(again, D "v1.pub", NULL, &err) : -1, 0);
  CHECK_INT(again ? verify(again, D "v2.pub", NULL, &err) : -1, -EBADMSG);
  free(again);
  free(out);
  free(policy);

  /* other layouts: each result must verify (aip_policy_sign_text checks it too) */
  static const char *const layouts[] = {
      /* no trailing newline */
      "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nspec:\n  allowed_tools: [a]\nmetadata:\n  name: x",
      /* CRLF line ends */
      "apiVersion: aip.io/v1alpha1\r\nkind: AgentPolicy\r\nmetadata:\r\n  name: x\r\nspec:\r\n  allowed_tools: [a]\r\n",
      /* the last metadata entry is a block scalar, then a comment */
      "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata:\n    name: x\n    owner: |\n      ops@example.com\n# spec follows\nspec:\n  allowed_tools: [a]\n",
      /* an empty signature to fill in, an empty last entry */
      "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata:\n  signature: \"\"\n  name: x\n  owner:\nspec:\n  allowed_tools: [a]\n",
      "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata:\n  name: x\n  signature:\nspec:\n  allowed_tools: [a]\n",
      /* a multi-line old signature */
      "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata:\n  name: x\n  signature: >-\n    ed25519:old\n  version: 1.0.0\nspec:\n  allowed_tools: [a]\n",
  };
  for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
    char *s = sign(layouts[i], D "v1.pem", &err);
    if (!s) fprintf(stderr, "  layout %zu: %s\n", i, err.msg);
    CHECK(s != NULL);
    if (s) CHECK_INT(verify(s, D "v1.pub", NULL, &err), 0);
    if (s && i == 1) CHECK(strstr(s, "  name: x\r\n  signature: \"ed25519:") != NULL);
    if (s && i == 5) CHECK(strstr(s, "old") == NULL && strstr(s, "  version: 1.0.0\n") != NULL);
    free(s);
  }
  /* refused: flow-style metadata, no metadata, an invalid policy, an ambiguous scalar */
  static const struct { const char *yaml, *msg; } bad[] = {
      {"apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: x}\nspec: {}\n",
       "block mapping"},
      {"apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nspec: {}\n", "metadata mapping"},
      {"apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata:\n  name: x\nspec:\n  mode: fast\n",
       "mode"},
      {"apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata:\n  name: x\n  version: 1.0\nspec: {}\n",
       "quote it"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *s = sign(bad[i].yaml, D "v1.pem", &err);
    CHECK(s == NULL);
    if (!strstr(err.msg, bad[i].msg)) fprintf(stderr, "  bad %zu: %s\n", i, err.msg);
    CHECK(strstr(err.msg, bad[i].msg) != NULL);
    free(s);
  }
}

/* ---- loading a trusted policy ---------------------------------------------------------------- */

static void test_load_trusted(void) {
  aip_error err = {{0}};
  aip_trusted_keys k = keys(D "v1.pub");
  aip_policy_doc *doc = NULL;
  char *why = NULL;
  CHECK_INT(aip_policy_doc_load_trusted(D "openssl-signed.yaml", &k, &doc, &why, &err), 0);
  CHECK(doc != NULL && why == NULL);
  CHECK_STR(doc ? doc->name : NULL, "signed-agent");
  aip_policy_doc_free(doc);
  /* unsigned: the doc loads, the reason is returned */
  CHECK_INT(aip_policy_doc_load_trusted(D "policy.yaml", &k, &doc, &why, &err), 0);
  CHECK(doc != NULL && why != NULL && strstr(why, "not signed") != NULL);
  aip_policy_doc_free(doc);
  free(why);
  why = NULL;
  /* not a policy at all: an error, as without keys */
  CHECK(aip_policy_doc_load_trusted(D "v1.pub", &k, &doc, &why, &err) < 0);
  CHECK(doc == NULL && why == NULL);
  /* no keys: no check */
  aip_trusted_keys none = {0};
  CHECK_INT(aip_policy_doc_load_trusted(D "policy.yaml", &none, &doc, &why, &err), 0);
  CHECK(doc != NULL && why == NULL);
  aip_policy_doc_free(doc);
  aip_trusted_keys_free(&k);
}

/* ---- gateway config: trusted_keys ----------------------------------------------------------- */

static void test_gateway_config(void) {
  aip_error err = {{0}};
  aip_gateway_config *cfg = NULL;
  CHECK_INT(aip_gateway_config_load(D "gateway.yaml", &cfg, &err), 0);
  if (!cfg) {
    fprintf(stderr, "  %s\n", err.msg);
    return;
  }
  CHECK_INT(cfg->trusted_keys.n, 2);
  CHECK_INT(cfg->agents_n, 2);
  CHECK(cfg->agents[0].policy && cfg->agents[0].signature_error == NULL);
  /* the unsigned agent still loads (the gateway refuses its calls), with the reason */
  CHECK(cfg->agents[1].policy != NULL);
  CHECK(cfg->agents[1].signature_error &&
        strstr(cfg->agents[1].signature_error, "policy.yaml: the policy is not signed"));
  aip_gateway_config_free(cfg);
  /* a private key among the trusted keys: the config is invalid, at the list's position */
  CHECK(aip_gateway_config_load(D "gateway-bad-key.yaml", &cfg, &err) < 0);
  CHECK(cfg == NULL);
  CHECK(strstr(err.msg, "gateway-bad-key.yaml:2:15: trusted_keys: ") != NULL);
  CHECK(strstr(err.msg, "v1.pem holds a private key") != NULL);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  test_keys();
  test_typing();
  test_canonical_and_openssl();
  test_sign_text();
  test_load_trusted();
  test_gateway_config();
  TEST_MAIN_END();
}
