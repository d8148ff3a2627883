/* test_dlp_rulepack.c -- the default rule pack against Nosey Parker's labelled examples
 * (Apache-2.0): the 29 rule files it needs are in tests/unit/data/noseyparker-rules (with their
 * LICENSE, NOTICE and SOURCE.md); AIP_SHARED_DIR=<dir> reads <dir>/data/noseyparker-rules
 * instead (the whole corpus, maybe newer) -- if that is not there, the rest runs and the test
 * says "SKIPPED" and exits 77.
 *
 * For every Nosey Parker rule that one of ours covers: each example must be redacted by our
 * rule, and each negative example must not be (where their negatives are negatives for the
 * secret type, not just for their narrower rule). Plus our own cases for the validators.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/yaml_doc.h"
#include "engine/dlp.h"
#include "test.h"

typedef struct map {
  const char *np_file, *np_id, *ours;
  int negatives; /* their negative examples are negatives for ours too */
} map;

static const map maps[] = {
    {"aws", "np.aws.1", "aws-access-key-id", 1},
    {"aws", "np.aws.2", "aws-secret-access-key", 1},
    {"github", "np.github.1", "github-token", 1},
    {"github", "np.github.2", "github-token", 1},
    {"github", "np.github.3", "github-token", 1},
    {"github", "np.github.4", "github-token", 1},
    {"github", "np.github.7", "github-fine-grained-token", 1},
    {"gitlab", "np.gitlab.2", "gitlab-token", 1},
    {"slack", "np.slack.2", "slack-token", 0}, /* their negatives are other Slack tokens */
    {"slack", "np.slack.4", "slack-token", 0},
    {"slack", "np.slack.5", "slack-app-token", 1},
    {"slack", "np.slack.3", "slack-webhook", 1},
    {"stripe", "np.stripe.1", "stripe-key", 1},
    {"stripe", "np.stripe.2", "stripe-key", 1},
    {"openai", "np.openai.1", "openai-api-key", 1},
    {"anthropic", "np.anthropic.1", "anthropic-api-key", 1},
    {"google", "np.google.2", "google-oauth-client-secret", 1},
    {"google", "np.google.4", "google-oauth-access-token", 1},
    {"google", "np.google.5", "google-api-key", 1},
    {"jwt", "np.jwt.1", "jwt", 1},
    {"pem", "np.pem.1", "private-key", 1},
    {"npm", "np.npm.1", "npm-token", 1},
    {"pypi", "np.pypi.1", "pypi-token", 1},
    {"sendgrid", "np.sendgrid.1", "sendgrid-api-key", 1},
    {"twilio", "np.twilio.1", "twilio-api-key", 1},
    {"huggingface", "np.huggingface.1", "huggingface-token", 1},
    {"digitalocean", "np.digitalocean.1", "digitalocean-token", 1},
    {"digitalocean", "np.digitalocean.2", "digitalocean-token", 1},
    {"digitalocean", "np.digitalocean.3", "digitalocean-token", 1},
    {"shopify", "np.shopify.3", "shopify-token", 1},
    {"shopify", "np.shopify.4", "shopify-token", 1},
    {"hashicorp", "np.hashicorp.4", "vault-token", 1},
    {"hashicorp", "np.hashicorp.5", "vault-token", 1},
    {"hashicorp", "np.hashicorp.6", "vault-token", 1},
    {"postman", "np.postman.1", "postman-api-key", 1},
    {"databricks", "np.databricks.1", "databricks-token", 1},
    {"dockerhub", "np.dockerhub.1", "dockerhub-token", 1},
    {"azure", "np.azure.1", "azure-storage-key", 1},
    {"square", "np.square.1", "square-token", 1},
    {"square", "np.square.2", "square-token", 1},
    {"telegram", "np.telegram.1", "telegram-bot-token", 1},
    {"mailgun", "np.mailgun.1", "mailgun-api-key", 1},
    {"atlassian", "np.atlassian.1", "atlassian-api-token", 1},
    /* their negative has an IPv6 host: still a password for us */
    {"postgres", "np.postgres.1", "connection-string-password", 0},
    {"http", "np.http.1", "basic-auth", 1},
    {"http", "np.http.2", "bearer-token", 1},
    {"groq", "np.groq.1", "groq-api-key", 1},
};

static aip_dlp_scratch *S;
static aip_dlp *D;
static int examples, negatives;

static size_t rule_index(const char *name) {
  for (size_t i = 0; i < aip_dlp_rule_count(D); i++)
    if (strcmp(aip_dlp_rule_name(D, i), name) == 0) return i;
  return (size_t)-1;
}

/* Count of our rule `idx` on text. */
static uint32_t hits(const char *text, size_t idx) {
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, D);
  aip_buf out;
  aip_buf_init(&out);
  int rc = aip_dlp_redact_text(D, S, AIP_DLP_RESPONSE, text, strlen(text), &out, &c);
  CHECK(rc >= 0);
  uint32_t n = idx < c.rules ? c.n[idx] : 0;
  aip_buf_free(&out);
  aip_dlp_counts_free(&c);
  return n;
}

static void check_rule(const aip_ynode *rule, const map *m) {
  size_t idx = rule_index(m->ours);
  CHECK(idx != (size_t)-1);
  const aip_ynode *ex = aip_y_get(rule, "examples"), *neg = aip_y_get(rule, "negative_examples");
  for (size_t i = 0; ex && i < ex->n; i++) {
    examples++;
    if (hits(ex->items[i]->value, idx) == 0) {
      fprintf(stderr, "%s example %zu not found by %s\n", m->np_id, i, m->ours);
      CHECK(0);
    }
  }
  for (size_t i = 0; m->negatives && neg && i < neg->n; i++) {
    negatives++;
    if (hits(neg->items[i]->value, idx) != 0) {
      fprintf(stderr, "%s negative %zu matched by %s\n", m->np_id, i, m->ours);
      CHECK(0);
    }
  }
}

static int skipped;

static void test_noseyparker(void) {
  const char *shared = getenv("AIP_SHARED_DIR");
  char dir[512];
  snprintf(dir, sizeof dir, "%s", "data/noseyparker-rules"); /* run from tests/unit */
  if (shared && shared[0]) snprintf(dir, sizeof dir, "%s/data/noseyparker-rules", shared);
  if (access(dir, R_OK | X_OK) != 0) {
    printf("SKIPPED: %s not found (Nosey Parker examples not checked)\n", dir);
    skipped = 1;
    return;
  }
  for (size_t k = 0; k < sizeof maps / sizeof maps[0]; k++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.yml", dir, maps[k].np_file);
    aip_ydoc *y = NULL;
    aip_error err = {{0}};
    if (aip_ydoc_load_file(path, &y, &err)) {
      fprintf(stderr, "%s\n", err.msg);
      CHECK(0);
      continue;
    }
    const aip_ynode *rules = aip_y_get(y->root, "rules");
    int found = 0;
    for (size_t i = 0; rules && i < rules->n; i++) {
      const aip_ynode *id = aip_y_get(rules->items[i], "id");
      if (id && strcmp(id->value, maps[k].np_id) == 0) {
        check_rule(rules->items[i], &maps[k]);
        found = 1;
      }
    }
    CHECK(found);
    aip_ydoc_free(y);
  }
  fprintf(stderr, "Nosey Parker: %zu rules, %d examples, %d negative examples checked\n",
          sizeof maps / sizeof maps[0], examples, negatives);
  CHECK(examples > 80);
}

static void test_validators(void) {
  size_t card = rule_index("credit-card"), iban = rule_index("iban"), ssn = rule_index("us-ssn");
  CHECK_INT(hits("pay with 4111 1111 1111 1111 today", card), 1);
  CHECK_INT(hits("pay with 4111-1111-1111-1112 today", card), 0); /* Luhn */
  CHECK_INT(hits("amex 378282246310005, mc 5555555555554444", card), 2);
  CHECK_INT(hits("order 1234567890123456", card), 0); /* no issuer, no Luhn */
  CHECK_INT(hits("IBAN GB82 WEST 1234 5698 7654 32 ok", iban), 1);
  CHECK_INT(hits("IBAN GB82 WEST 1234 5698 7654 33 ok", iban), 0);
  CHECK_INT(hits("DE89370400440532013000", iban), 1);
  CHECK_INT(hits("ssn 123-45-6789", ssn), 1);
  CHECK_INT(hits("ssn 000-45-6789 666-45-6789 123-00-6789", ssn), 0);
  /* secrets only: the key name and quotes stay */
  aip_buf out;
  aip_buf_init(&out);
  const char *in = "password = \"hunter22hunter\" url=postgres://app:s3cr3t@db:5432/x";
  CHECK_INT(aip_dlp_redact_text(D, S, 0, in, strlen(in), &out, NULL), 1);
  CHECK_STR(out.data, "password = \"[REDACTED:password-assignment]\" "
                      "url=postgres://app:[REDACTED:connection-string-password]@db:5432/x");
  aip_buf_free(&out);
  /* clean prose and code stay clean */
  CHECK_INT(hits("The quick brown fox; sha=3f786850e387550fdab836ed7e6dc881de23001b; id 42", 0) +
                hits("x", 1), 0);
}

int main(void) {
  const char *y = "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: t}\n"
                  "spec:\n  dlp: {rulepack: default}\n";
  aip_policy_doc *doc = NULL;
  aip_error err = {{0}};
  S = aip_dlp_scratch_new();
  if (aip_policy_doc_load_string(y, strlen(y), "t", &doc, &err) ||
      aip_dlp_compile(doc, NULL, &D, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  aip_dlp_scratch_prepare(S, D);
  test_noseyparker();
  test_validators();
  aip_dlp_free(D);
  aip_policy_doc_free(doc);
  aip_dlp_scratch_free(S);
  if (skipped && test_failed_ == 0) return printf("%s: %d passed, SKIPPED\n", __FILE__, test_passed_), 77;
  TEST_MAIN_END();
}
