/* main.c -- the `aip` command line (INTERFACES.md section 1).
 * Exit codes: 0 ok, 1 invalid input or failed check, 2 usage error. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "engine/engine.h"
#include "gateway/upstream/upstream.h"
#include "gateway/core/dlp_cache.h"
#include "gateway/cmd/cmd.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"
#include "gateway/wrapper/wrapper.h"

static const char usage[] =
    "usage: aip <command> [options]\n"
    "       aip --target \"CMD ARGS\" --policy agent.yaml [--audit FILE] [--verbose]\n"
    "                                  AIP-compatible stdio wrapper (aip --target x --help)\n"
    "\n"
    "commands:\n"
    "  serve --config gateway.yaml     run the multi-agent gateway\n"
    "  check --config gateway.yaml     validate a gateway config (and its policies)\n"
    "  check --policy agent.yaml       validate an AgentPolicy\n"
    "  sign-policy --key key.pem --policy agent.yaml  print the policy signed (Ed25519)\n"
    "  verify-policy --policy p.yaml --trusted-keys a.pub[,b.pub]  check its signature\n"
    "  token new                       print a fresh bearer token and its token_sha256\n"
    "  approvals list|show|approve|deny  work the approval queue (AIP_OPERATOR_TOKEN)\n"
    "  dlp scan --policy agent.yaml    redact a file with the policy's DLP rules\n"
    "  audit verify FILE [FILE...]     check the audit log's hash chain\n"
    "  audit tools --audit FILE        the tools each agent used (--since, --policy)\n"
    "  version                         print the version\n"
    "\n"
    "Run `aip <command> --help` for a command's options.\n";

static int usage_error(const char *msg) {
  if (msg) fprintf(stderr, "aip: %s\n", msg);
  fputs(usage, stderr);
  return 2;
}

/* Finds `--name value` (or `--name=value`) in argv; returns NULL if absent. */
static const char *opt(int argc, char **argv, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], name) == 0 && i + 1 < argc) return argv[i + 1];
    if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
  }
  return NULL;
}

static int wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
  return 0;
}

/* `aip check` validates content, often on a CI checkout where modes mean nothing: a file that
 * `aip serve` would refuse for its permissions is a warning here, not a failure. */
static void warn_file(void *ctx, const char *msg) {
  fprintf(stderr, "warning: %s\n", msg);
}

/* `aip check --config`: every agent's policy through the compile path serve uses (policy,
 * allow_args, DLP databases), signatures, every stdio server's program; all problems are
 * printed, exit 1 if any. */
static int check_config(const char *cfg) {
  aip_error err = {{0}};
  aip_gateway_config *c = NULL;
  if (aip_gateway_config_load(cfg, &c, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  int bad = 0;
  for (size_t i = 0; i < c->agents_n; i++) {
    aip_policy *p = NULL;
    aip_dlp *d = NULL;
    if (aip_agent_policy_compile(c->agents[i].policy, c->path, NULL, &p, &d, &err)) {
      fprintf(stderr, "%s\n", err.msg);
      bad = 1;
    }
    aip_dlp_free(d);
    aip_policy_free(p);
  }
  /* trusted_keys: every agent whose policy does not verify is reported (serve refuses its
   * calls with -32010), and the config is invalid */
  for (size_t i = 0; i < c->agents_n; i++) {
    if (!c->agents[i].signature_error) continue;
    fprintf(stderr, "%s: agent %s: policy signature invalid: %s\n", cfg, c->agents[i].name,
            c->agents[i].signature_error);
    bad = 1;
  }
  for (size_t i = 0; i < c->servers_n; i++) {
    if (!aip_server_program_check(c, &c->servers[i], &err)) continue;
    fprintf(stderr, "%s\n", err.msg);
    bad = 1;
  }
  if (!bad) aip_gateway_config_check_files(c, warn_file, NULL, NULL);
  aip_gateway_config_free(c);
  if (!bad) printf("%s: ok\n", cfg);
  return bad;
}

/* `aip check --policy`: the same compile as serve, without a gateway config. */
static int check_policy(const char *pol) {
  aip_error err = {{0}};
  aip_policy_doc *doc = NULL;
  aip_policy *p = NULL;
  aip_dlp *d = NULL;
  int rc = aip_policy_doc_load_file(pol, &doc, &err);
  if (!rc) rc = aip_agent_policy_compile(doc, NULL, NULL, &p, &d, &err);
  aip_error perm = {{0}};
  if (!rc && aip_config_file_check(pol, &perm)) warn_file(NULL, perm.msg);
  aip_dlp_free(d);
  aip_policy_free(p);
  aip_policy_doc_free(doc);
  if (rc) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  printf("%s: ok\n", pol);
  return 0;
}

static int cmd_check(int argc, char **argv) {
  const char *cfg = opt(argc, argv, "--config"), *pol = opt(argc, argv, "--policy");
  if (wants_help(argc, argv) || (!cfg == !pol)) {
    fputs("usage: aip check --config gateway.yaml | --policy agent.yaml\n", wants_help(argc, argv) ? stdout : stderr);
    return wants_help(argc, argv) ? 0 : 2;
  }
  return cfg ? check_config(cfg) : check_policy(pol);
}

static int cmd_token(int argc, char **argv) {
  if (argc < 1 || strcmp(argv[0], "new") != 0 || wants_help(argc, argv)) {
    fputs("usage: aip token new\n", wants_help(argc, argv) ? stdout : stderr);
    return wants_help(argc, argv) ? 0 : 2;
  }
  unsigned char raw[32], h[crypto_hash_sha256_BYTES];
  char tok[sizeof(raw) * 2 + 1], hex[sizeof(h) * 2 + 1];
  randombytes_buf(raw, sizeof(raw));
  sodium_bin2hex(tok, sizeof(tok), raw, sizeof(raw));
  char full[sizeof(tok) + 4];
  snprintf(full, sizeof(full), "aip_%s", tok);
  crypto_hash_sha256(h, (const unsigned char *)full, strlen(full));
  sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
  printf("token: %s\ntoken_sha256: \"%s\"\n", full, hex);
  sodium_memzero(raw, sizeof(raw));
  return 0;
}

static int cmd_serve(int argc, char **argv) {
  const char *cfg = opt(argc, argv, "--config");
  if (wants_help(argc, argv) || !cfg) {
    fputs("usage: aip serve --config gateway.yaml [--verbose] [--allow-writable-config]\n"
          "  --allow-writable-config  start even when the config, a policy or a trusted key is\n"
          "                           writable by group or others (development only)\n",
          wants_help(argc, argv) ? stdout : stderr);
    return wants_help(argc, argv) ? 0 : 2;
  }
  int allow_writable = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--verbose") == 0) aip_log_set_level(AIP_LOG_DEBUG);
    if (strcmp(argv[i], "--allow-writable-config") == 0) allow_writable = 1;
  }
  return aip_serve(cfg, allow_writable);
}

int main(int argc, char **argv) {
  /* first: it runs between fork and the upstream server's exec (exec_shim.c) */
  if (argc > 1 && strcmp(argv[1], AIP_EXEC_SHIM_CMD) == 0)
    return aip_exec_shim_main(argc - 2, argv + 2);
  if (sodium_init() < 0) {
    fprintf(stderr, "aip: libsodium failed to initialize\n");
    return 1;
  }
  if (argc < 2) return usage_error(NULL);
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("aip %s\n", AIP_VERSION);
    return 0;
  }
  if (cmd[0] == '-') return aip_wrapper_main(argc - 1, argv + 1); /* aip --target ... */
  if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 2, argv + 2);
  if (strcmp(cmd, "check") == 0) return cmd_check(argc - 2, argv + 2);
  if (strcmp(cmd, "token") == 0) return cmd_token(argc - 2, argv + 2);
  if (strcmp(cmd, "dlp") == 0) return aip_cmd_dlp(argc - 2, argv + 2);
  if (strcmp(cmd, "approvals") == 0) return aip_cmd_approvals(argc - 2, argv + 2);
  if (strcmp(cmd, "audit") == 0) return aip_cmd_audit(argc - 2, argv + 2);
  if (strcmp(cmd, "sign-policy") == 0) return aip_cmd_sign_policy(argc - 2, argv + 2);
  if (strcmp(cmd, "verify-policy") == 0) return aip_cmd_verify_policy(argc - 2, argv + 2);
  return usage_error("unknown command");
}
