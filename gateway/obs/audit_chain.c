/* audit_chain.c -- the audit log's hash chain (docs/audit.md, "Hash chain").
 *
 * Every line is a JSON object whose last two members are
 *   ..., "prev":"<64 hex>", "hash":"<64 hex>"}
 * `hash` is the lower-case hex SHA-256 of the line's bytes with the `,"hash":"<64 hex>"` member
 * cut out (so it ends `..."prev":"<64 hex>"}`, no newline); `prev` is the `hash` of the line
 * before, or 64 zeros (the genesis value) for the first line of a chain. The hash is over the
 * exact bytes written, not a re-serialisation, so a verifier needs no canonical JSON: a few
 * lines of Python or sed+sha256sum check it.
 */
#include "gateway/obs/audit.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

const char aip_audit_genesis[AIP_AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static const char hash_key[] = ",\"hash\":\"";

static int is_hex64(const char *s, size_t n) {
  if (n != AIP_AUDIT_HASH_HEX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

static void sha256_hex(const char *p, size_t n, char hex[AIP_AUDIT_HASH_HEX + 1]) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, (const unsigned char *)p, n);
  sodium_bin2hex(hex, AIP_AUDIT_HASH_HEX + 1, h, sizeof(h));
}

int aip_audit_seal(aip_buf *out, const char *body, size_t len, const char *prev,
                   char hash[AIP_AUDIT_HASH_HEX + 1]) {
  if (len < 2 || body[0] != '{' || body[len - 1] != '}' || !is_hex64(prev, strlen(prev)))
    return -EINVAL;
  size_t start = out->len;
  int err = aip_buf_append(out, body, len - 1);
  if (!err) err = aip_buf_printf(out, "%s\"prev\":\"%s\"}", len > 2 ? "," : "", prev);
  if (err) {
    out->len = start;
    return err;
  }
  sha256_hex(out->data + start, out->len - start, hash);
  out->len--; /* the closing brace goes after the hash member */
  err = aip_buf_printf(out, "%s%s\"}\n", hash_key, hash);
  if (err) out->len = start;
  return err;
}

const char *aip_audit_check_line(const char *line, size_t len, char prev[AIP_AUDIT_HASH_HEX + 1],
                                 char hash[AIP_AUDIT_HASH_HEX + 1]) {
  cJSON *obj = NULL;
  aip_json_status st = aip_json_parse(line, len, &obj);
  if (st != AIP_JSON_OK) return st == AIP_JSON_DUPLICATE_KEY ? "a member appears twice" : "not JSON";
  const char *why = NULL;
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "prev");
  if (!cJSON_IsObject(obj)) why = "not a JSON object";
  else if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "hash"))) why = "no \"hash\" member";
  else if (!cJSON_IsString(p) || !is_hex64(p->valuestring, strlen(p->valuestring)))
    why = "no \"prev\" member of 64 lower-case hex digits";
  if (!why) memcpy(prev, p->valuestring, AIP_AUDIT_HASH_HEX + 1);
  cJSON_Delete(obj);
  if (why) return why;
  /* The hash member must be the last one, written exactly as the gateway writes it. */
  size_t klen = sizeof(hash_key) - 1, tail = klen + AIP_AUDIT_HASH_HEX + 2;
  if (len < tail + 1 || memcmp(line + len - tail, hash_key, klen) != 0 ||
      memcmp(line + len - 2, "\"}", 2) != 0 ||
      !is_hex64(line + len - tail + klen, AIP_AUDIT_HASH_HEX))
    return "\"hash\" is not the last member as 64 lower-case hex digits";
  memcpy(hash, line + len - tail + klen, AIP_AUDIT_HASH_HEX);
  hash[AIP_AUDIT_HASH_HEX] = '\0';
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_state s;
  crypto_hash_sha256_init(&s);
  crypto_hash_sha256_update(&s, (const unsigned char *)line, len - tail);
  crypto_hash_sha256_update(&s, (const unsigned char *)"}", 1);
  crypto_hash_sha256_final(&s, h);
  char want[AIP_AUDIT_HASH_HEX + 1];
  sodium_bin2hex(want, sizeof(want), h, sizeof(h));
  if (memcmp(want, hash, AIP_AUDIT_HASH_HEX) != 0)
    return "hash mismatch: the line was changed after it was written";
  return NULL;
}
