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

static const dlp_pack_rule default_pack[] = {
    /* cloud providers */
    {"aws-access-key-id",
     "\\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16})\\b", 1,
     NULL},
    {"aws-secret-access-key",
     "(?i)\\baws[_-]?(?:secret[_-]?)?(?:access[_-]?)?key[\"']?\\s{0,30}(?::|=>|=)\\s{0,30}"
     "[\"']?([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)", 1, NULL},
    {"google-api-key", "\\b(AIza[0-9A-Za-z_-]{35})" TOKEN_END, 1, NULL},
    {"google-oauth-client-secret", "\\b(GOCSPX-[0-9A-Za-z_-]{28})" TOKEN_END, 1, NULL},
    {"google-oauth-access-token", "\\b(ya29\\.[0-9A-Za-z_-]{20,1024})" TOKEN_END, 1, NULL},
    {"azure-storage-key",
     "(?i)\\b(?:AccountKey|SharedAccessKey|SharedSecretValue)\\s{0,4}=\\s{0,4}"
     "([A-Za-z0-9/+]{20,100}={0,3})", 1, NULL},
    {"digitalocean-token", "\\b(do[por]_v1_[a-f0-9]{64})\\b", 1, NULL},
    {"databricks-token", "\\b(dapi[a-f0-9]{32}(?:-[0-9]{1,3})?)\\b", 1, NULL},
    {"vault-token", "\\b(hv[sbr]\\.[A-Za-z0-9_-]{24,200})" TOKEN_END, 1, NULL},
    /* source control and package registries */
    {"github-token", "\\b(gh[pousr]_[A-Za-z0-9]{36,255})\\b", 1, NULL},
    {"github-fine-grained-token", "\\b(github_pat_[A-Za-z0-9_]{82})\\b", 1, NULL},
    {"gitlab-token", "\\b(gl(?:pat|ptt|dt|rt)-[0-9A-Za-z_-]{20,50})", 1, NULL},
    {"npm-token", "\\b(npm_[A-Za-z0-9]{36})\\b", 1, NULL},
    {"pypi-token", "\\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000})", 1, NULL},
    {"dockerhub-token", "\\b(dckr_pat_[A-Za-z0-9_-]{27})" TOKEN_END, 1, NULL},
    /* AI providers */
    {"openai-api-key",
     "\\b(sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,200}|[A-Za-z0-9]{20})T3BlbkFJ"
     "[A-Za-z0-9_-]{20,200}|sk-[A-Za-z0-9]{48})" TOKEN_END, 1, NULL},
    {"anthropic-api-key", "\\b(sk-ant-(?:api|admin|oat|ort)[0-9]{2}-[A-Za-z0-9_-]{80,120})", 1,
     NULL},
    {"groq-api-key", "\\b(gsk_[A-Za-z0-9]{48,56})\\b", 1, NULL},
    {"huggingface-token", "\\b(hf_[A-Za-z]{34})\\b", 1, NULL},
    /* payment and commerce */
    {"stripe-key", "\\b([rs]k_(?:live|test)_[0-9A-Za-z]{24,99})\\b", 1, NULL},
    {"square-token", "\\b(sq0(?:atp-[0-9A-Za-z_-]{22}|csp-[0-9A-Za-z_-]{43}))" TOKEN_END, 1,
     NULL},
    {"shopify-token", "\\b(shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\\b", 1, NULL},
    /* messaging and SaaS */
    {"slack-token", "\\b(xox[abposr]-[0-9A-Za-z-]{10,250})", 1, NULL},
    {"slack-app-token", "\\b(xapp-[0-9A-Za-z/+-]{20,200})", 1, NULL},
    {"slack-webhook",
     "(https://hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,160})", 1,
     NULL},
    {"sendgrid-api-key", "\\b(SG\\.[0-9A-Za-z_-]{22}\\.[0-9A-Za-z_-]{43})" TOKEN_END, 1, NULL},
    {"twilio-api-key", "\\b(SK[0-9a-f]{32})\\b", 1, NULL},
    {"mailgun-api-key", "\\b(key-[0-9a-f]{32})\\b", 1, NULL},
    {"telegram-bot-token", "\\b([0-9]{8,10}:AA[0-9A-Za-z_-]{32,33})" TOKEN_END, 1, NULL},
    {"postman-api-key", "\\b(PMAK-[A-Za-z0-9]{24}-[A-Za-z0-9]{34})\\b", 1, NULL},
    {"atlassian-api-token", "\\b(ATATT3[A-Za-z0-9_-]{20,250}=[0-9A-F]{8})\\b", 1, NULL},
    {"age-secret-key", "\\b(AGE-SECRET-KEY-1[0-9A-Z]{58})\\b", 1, NULL},
    /* keys, tokens and credentials in generic shapes */
    {"private-key",
     "-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----[\\s\\S]{0,8192}?"
     "-----END[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----", 0, NULL},
    /* a key cut short (no END line): the header and the base64 lines that follow */
    {"private-key-truncated",
     "-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----(?:(?:\\s|\\\\[rn]|[\"'+,]){1,8}"
     "[A-Za-z0-9+/=:-]{4,100}){0,120}", 0, NULL},
    {"jwt",
     "\\b(eyJ[A-Za-z0-9_-]{10,2000}\\.eyJ[A-Za-z0-9_-]{10,8000}\\.[A-Za-z0-9_-]{10,1000})"
     TOKEN_END, 1, NULL},
    {"connection-string-password",
     "(?i)\\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\\+srv)?|rediss?|amqps?|mssql|sqlserver"
     "|jdbc:[a-z]{2,12})://[^\\s:@/?#]{1,256}:([^\\s@/?#]{1,256})@", 1, NULL},
    {"url-password", "\\bhttps?://[^\\s:@/?#]{1,128}:([^\\s@/?#]{3,128})@", 1, NULL},
    {"bearer-token",
     "(?i)\\bauthorization[\"']?\\s{0,4}[:=]\\s{0,4}[\"']?bearer\\s{1,4}"
     "([A-Za-z0-9._~+/-]{8,2048}={0,2})", 1, NULL},
    {"basic-auth",
     "(?i)\\bauthorization[\"']?\\s{0,4}[:=]\\s{0,4}[\"']?basic\\s{1,4}"
     "([A-Za-z0-9+/]{8,1024}={0,2})", 1, NULL},
    {"password-assignment",
     "(?i)\\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token"
     "|client[_-]?secret)[\"']?\\s{0,5}(?::|=>|=)\\s{0,5}[\"']?"
     "([^\\s\"'<>&;,()\\[\\]{}$`]{8,256})", 1, NULL},
    /* PII */
    {"email",
     "\\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\\.[A-Za-z0-9-]{1,63}){0,8}"
     "\\.[A-Za-z]{2,24}\\b", 0, NULL},
    {"credit-card", "\\b(?:[0-9][ -]?){12,18}[0-9]\\b", 0, valid_card},
    {"us-ssn",
     "\\b(?:00[1-9]|0[1-9][0-9]|[1-578][0-9]{2}|6[0-57-9][0-9]|66[0-57-9])-"
     "(?:0[1-9]|[1-9][0-9])-(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})\\b", 0,
     NULL},
    {"iban", "\\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\\b", 0, valid_iban},
};

const dlp_pack_rule *dlp_rulepack(const char *name, size_t *n) {
  if (strcmp(name, "default") != 0) return NULL;
  *n = sizeof default_pack / sizeof default_pack[0];
  return default_pack;
}
