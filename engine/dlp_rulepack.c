/* dlp_rulepack.c -- the built-in rule pack (`dlp: {rulepack: default}`, an extension of AIP).
 *
 * Written for this project from the public formats of the tokens involved (prefixes, lengths,
 * alphabets); the public corpora in shared/data were only used to test them. Every rule:
 *   - starts with a literal or a short keyword where the format has one, because Hyperscan's
 *     speed comes from literals (docs/dlp.md: a pack of such rules scans at several hundred
 *     MB/s, generic ones like "any 40 hex digits" at a few);
 *   - is bounded (no `+`/`*`), so streaming can hold back a finite window;
 *   - redacts only the secret: rules with context ("password = ...") redact capture group 1;
 *   - may carry a validator that rejects a match (Luhn for cards, mod-97 for IBANs), which is
 *     how those two stay quiet on order numbers and timestamps.
 * Names are kebab-case ids, stable for metrics labels and audit records.
 */
#include <ctype.h>
#include <string.h>

#include "engine/dlp_internal.h"

/* Card numbers: 13-19 digits (spaces or dashes between), a known issuer prefix and a Luhn
 * checksum. Cheap: one pass over at most ~40 bytes, and only on text the regex matched. */
static int valid_card(const char *s, size_t n) {
  char d[20];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] >= '0' && s[i] <= '9') {
      if (k == sizeof d) return 0;
      d[k++] = s[i];
    }
  }
  if (k < 13 || k > 19) return 0;
  int p2 = (d[0] - '0') * 10 + (d[1] - '0');
  int p4 = p2 * 100 + (d[2] - '0') * 10 + (d[3] - '0');
  int known = d[0] == '4' || (p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720) ||
              p2 == 34 || p2 == 37 || p4 == 6011 || p2 == 65 || (p4 >= 6440 && p4 <= 6499) ||
              (p4 >= 3528 && p4 <= 3589) || (p4 >= 3000 && p4 <= 3059) || p2 == 36 ||
              p2 == 38 || p2 == 62;
  if (!known) return 0;
  int sum = 0;
  for (size_t i = 0; i < k; i++) {
    int v = d[k - 1 - i] - '0';
    if (i & 1) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
    sum += v;
  }
  return sum % 10 == 0;
}

/* IBAN: ISO 13616 mod-97 over the rearranged digits (letters count as 10..35). */
static int valid_iban(const char *s, size_t n) {
  char c[40];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == ' ') continue;
    if (k == sizeof c) return 0;
    c[k++] = s[i];
  }
  if (k < 15 || k > 34) return 0;
  unsigned rem = 0;
  for (size_t i = 0; i < k; i++) {
    char ch = c[(i + 4) % k];
    if (isdigit((unsigned char)ch)) rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
    else if (ch >= 'A' && ch <= 'Z') rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
    else return 0;
  }
  return rem == 1;
}

#define TOKEN_END "(?:[^A-Za-z0-9_-]|$)" /* \b misbehaves after a trailing '-' */
#define SCHEMES                                                                       \
  "(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\\+srv)?|rediss?|amqps?|mssql|sqlserver" \
  "|jdbc:[a-z]{2,12})"
#define AUTHZ "(?i)\\bauthorization[\"']?\\s{0,4}[:=]\\s{0,4}[\"']?"

/* Rules with a `prefilter` give Hyperscan something it compiles in milliseconds and scans fast
 * (a long bounded repeat costs it seconds to compile, or makes it slow); the prefilter is a part
 * every match must contain, and `max_width` bounds the whole match. */
static const dlp_pack_rule default_pack[] = {
    /* cloud providers */
    {.name = "aws-access-key-id", .group = 1,
     .regex = "\\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)"
              "[A-Z0-9]{16})\\b"},
    {.name = "aws-secret-access-key", .group = 1,
     .regex = "(?i)\\baws[_-]?(?:secret[_-]?)?(?:access[_-]?)?key[\"']?\\s{0,30}(?::|=>|=)"
              "\\s{0,30}[\"']?([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"},
    {.name = "google-api-key", .group = 1, .regex = "\\b(AIza[0-9A-Za-z_-]{35})" TOKEN_END},
    {.name = "google-oauth-client-secret", .group = 1,
     .regex = "\\b(GOCSPX-[0-9A-Za-z_-]{28})" TOKEN_END},
    {.name = "google-oauth-access-token", .group = 1,
     .regex = "\\b(ya29\\.[0-9A-Za-z_-]{20,1024})" TOKEN_END},
    {.name = "azure-storage-key", .group = 1,
     .regex = "(?i)\\b(?:AccountKey|SharedAccessKey|SharedSecretValue)\\s{0,4}=\\s{0,4}"
              "([A-Za-z0-9/+]{20,100}={0,3})"},
    {.name = "digitalocean-token", .group = 1, .regex = "\\b(do[por]_v1_[a-f0-9]{64})\\b"},
    {.name = "databricks-token", .group = 1, .regex = "\\b(dapi[a-f0-9]{32}(?:-[0-9]{1,3})?)\\b"},
    {.name = "vault-token", .group = 1, .regex = "\\b(hv[sbr]\\.[A-Za-z0-9_-]{24,600})" TOKEN_END},
    /* source control and package registries */
    {.name = "github-token", .group = 1, .regex = "\\b(gh[pousr]_[A-Za-z0-9]{36,255})\\b"},
    {.name = "github-fine-grained-token", .group = 1,
     .regex = "\\b(github_pat_[A-Za-z0-9_]{82})\\b"},
    {.name = "gitlab-token", .group = 1, .regex = "\\b(gl(?:pat|ptt|dt|rt)-[0-9A-Za-z_-]{20,50})"},
    {.name = "npm-token", .group = 1, .regex = "\\b(npm_[A-Za-z0-9]{36})\\b"},
    {.name = "pypi-token", .group = 1,
     .regex = "\\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000})"},
    {.name = "dockerhub-token", .group = 1, .regex = "\\b(dckr_pat_[A-Za-z0-9_-]{27})" TOKEN_END},
    /* AI providers */
    {.name = "openai-api-key", .group = 1,
     .regex = "\\b(sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,200}|[A-Za-z0-9]{20})T3BlbkFJ"
              "[A-Za-z0-9_-]{20,200}|sk-[A-Za-z0-9]{48})" TOKEN_END},
    {.name = "anthropic-api-key", .group = 1,
     .regex = "\\b(sk-ant-(?:api|admin|oat|ort)[0-9]{2}-[A-Za-z0-9_-]{80,120})"},
    {.name = "groq-api-key", .group = 1, .regex = "\\b(gsk_[A-Za-z0-9]{48,56})\\b"},
    {.name = "huggingface-token", .group = 1, .regex = "\\b(hf_[A-Za-z]{34})\\b"},
    /* payment and commerce */
    {.name = "stripe-key", .group = 1, .regex = "\\b([rs]k_(?:live|test)_[0-9A-Za-z]{24,99})\\b"},
    {.name = "square-token", .group = 1,
     .regex = "\\b(sq0(?:atp-[0-9A-Za-z_-]{22}|csp-[0-9A-Za-z_-]{43}))" TOKEN_END},
    {.name = "shopify-token", .group = 1, .regex = "\\b(shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\\b"},
    /* messaging and SaaS */
    {.name = "slack-token", .group = 1, .regex = "\\b(xox[abposr]-[0-9A-Za-z-]{10,250})"},
    {.name = "slack-app-token", .group = 1, .regex = "\\b(xapp-[0-9A-Za-z/+-]{20,200})"},
    {.name = "slack-webhook", .group = 1,
     .regex = "(https://hooks\\.slack\\.com/(?:services|workflows|triggers)/"
              "[A-Za-z0-9_/+-]{20,160})"},
    {.name = "sendgrid-api-key", .group = 1,
     .regex = "\\b(SG\\.[0-9A-Za-z_-]{22}\\.[0-9A-Za-z_-]{43})" TOKEN_END},
    {.name = "twilio-api-key", .group = 1, .regex = "\\b(SK[0-9a-f]{32})\\b"},
    {.name = "mailgun-api-key", .group = 1, .regex = "\\b(key-[0-9a-f]{32})\\b"},
    {.name = "telegram-bot-token", .group = 1,
     .regex = "\\b([0-9]{8,10}:AA[0-9A-Za-z_-]{32,33})" TOKEN_END},
    {.name = "postman-api-key", .group = 1,
     .regex = "\\b(PMAK-[A-Za-z0-9]{24}-[A-Za-z0-9]{34})\\b"},
    {.name = "atlassian-api-token", .group = 1,
     .regex = "\\b(ATATT3[A-Za-z0-9_-]{20,250}=[0-9A-F]{8})\\b"},
    {.name = "age-secret-key", .group = 1, .regex = "\\b(AGE-SECRET-KEY-1[0-9A-Z]{58})\\b"},
    /* keys, tokens and credentials in generic shapes */
    /* the whole key, up to its END line, or for a key cut short the base64 lines after the
     * header (Hyperscan cannot hold either: "Pattern is too large") */
    {.name = "private-key",
     .regex = "-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----(?:[\\s\\S]{0,8192}?"
              "-----END[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----|(?:[\\s\"'+,]{1,8}"
              "[A-Za-z0-9+/=]{16,100}){0,100})",
     .prefilter = "-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----", .max_width = 11000},
    {.name = "jwt", .group = 1,
     .regex = "\\b(eyJ[A-Za-z0-9_-]{10,2000}\\.eyJ[A-Za-z0-9_-]{10,8000}\\.[A-Za-z0-9_-]{10,1000})"
              TOKEN_END,
     .prefilter = "\\.eyJ[A-Za-z0-9_-]{10}", .max_width = 11100},
    {.name = "connection-string-password", .group = 1,
     .regex = "(?i)\\b" SCHEMES "://[^\\s:@/?#]{1,256}:([^\\s@/?#]{1,256})@",
     .prefilter = "(?i)\\b" SCHEMES "://[^\\s:@/?#]", .max_width = 540},
    {.name = "url-password", .group = 1,
     .regex = "\\bhttps?://[^\\s:@/?#]{1,128}:([^\\s@/?#]{3,128})@",
     /* byte mode: 128 characters are at most 512 bytes */
     .prefilter = "\\bhttps?://[^\\s:@/?#]{1,512}:[^\\s@/?#]{3,512}@", .max_width = 270,
     .bytes = 1},
    {.name = "bearer-token", .group = 1,
     .regex = AUTHZ "bearer\\s{1,4}([A-Za-z0-9._~+/-]{8,2048}={0,2})",
     .prefilter = AUTHZ "bearer\\s{1,4}[A-Za-z0-9._~+/-]{8}", .max_width = 2100},
    {.name = "basic-auth", .group = 1, .regex = AUTHZ "basic\\s{1,4}([A-Za-z0-9+/]{8,1024}={0,2})",
     .prefilter = AUTHZ "basic\\s{1,4}[A-Za-z0-9+/]{8}", .max_width = 1100},
    {.name = "password-assignment", .group = 1, .bytes = 1,
     .regex = "(?i)\\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token"
              "|client[_-]?secret)[\"']?\\s{0,5}(?::|=>|=)\\s{0,5}[\"']?"
              "([^\\s\"'<>&;,()\\[\\]{}$`]{8,256})"},
    /* PII */
    /* bounded so that streams can hold it back; Hyperscan looks for the "x@y" every address
     * holds (the bounded class before '@' scans at 80 MB/s) */
    {.name = "email",
     .regex = "\\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\\.[A-Za-z0-9-]{1,63}){0,8}"
              "\\.[A-Za-z]{2,24}\\b",
     .prefilter = "[A-Za-z0-9._%+-]@[A-Za-z0-9-]", .max_width = 64 + 1 + 9 * 64 + 25},
    {.name = "credit-card", .regex = "\\b(?:[0-9][ -]?){12,18}[0-9]\\b", .validate = valid_card},
    {.name = "us-ssn",
     .regex = "\\b(?:00[1-9]|0[1-9][0-9]|[1-578][0-9]{2}|6[0-57-9][0-9]|66[0-57-9])-"
              "(?:0[1-9]|[1-9][0-9])-(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})\\b"},
    {.name = "iban", .regex = "\\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\\b",
     .validate = valid_iban},
};

const dlp_pack_rule *dlp_rulepack(const char *name, size_t *n) {
  if (strcmp(name, "default") != 0) return NULL;
  *n = sizeof default_pack / sizeof default_pack[0];
  return default_pack;
}
