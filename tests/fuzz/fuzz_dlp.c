/* fuzz_dlp.c -- the DLP redactor (engine/dlp_*.c) with the default rule pack plus a few
 * policy patterns and detect_encoding. For a JSON input the strict parser takes (scope response,
 * whole document):
 *   - a redacted output re-parses with the strict parser, and a second scan of it changes
 *     nothing outside placeholders (no match is left in text the first scan passed);
 *   - the streaming redactor, fed in pieces the input chooses, emits exactly the block
 *     result (the redacted bytes, or the input itself when nothing matched).
 * A non-JSON input goes through the plain-text redactor: the same second-scan rule. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dlp.h"

static aip_dlp *D;
static aip_dlp_scratch *S;
static aip_policy_doc *doc;

static const char policy_yaml[] =
    "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: fuzz}\n"
    "spec:\n  allowed_tools: [echo]\n"
    "  dlp:\n    rulepack: default\n    detect_encoding: true\n    patterns:\n"
    "      - {name: tok, regex: 'tok_[A-Za-z0-9]{8,}'}\n"
    "      - {name: pin, regex: 'PIN:? ?[0-9]{4}'}\n"
    "      - {name: word, regex: '(?i)zebra'}\n";

static void init(void) {
  aip_error err = {{0}};
  if (aip_policy_doc_load_string(policy_yaml, strlen(policy_yaml), "<fuzz>", &doc, &err) ||
      aip_dlp_compile(doc, NULL, &D, &err))
    abort();
  S = aip_dlp_scratch_new();
  if (!S || aip_dlp_scratch_prepare(S, D)) abort();
}

static const int scope = AIP_DLP_RESPONSE | AIP_DLP_WHOLE;

static void check_stream(const uint8_t *data, size_t size, const aip_buf *want) {
  aip_dlp_stream *st = aip_dlp_stream_new(D, scope, AIP_DLP_STREAM_JSON);
  if (!st) abort();
  aip_buf out;
  aip_buf_init(&out);
  uint32_t seed = size ? data[0] : 0;
  int rc = 0;
  for (size_t i = 0; i < size && !rc;) {
    seed = seed * 1103515245u + 12345u;
    size_t k = 1 + (seed >> 16) % 64;
    if (k > size - i) k = size - i;
    rc = aip_dlp_stream_feed(st, S, (const char *)data + i, k, &out, NULL);
    i += k;
  }
  if (!rc) rc = aip_dlp_stream_end(st, S, &out, NULL);
  if (rc < 0) abort(); /* the block redactor took it */
  if (out.len != want->len || memcmp(out.data, want->data, out.len) != 0) abort();
  aip_buf_free(&out);
  aip_dlp_stream_free(st);
}

/* A second scan of redacted output may change it only where a placeholder stands: a rule may
 * match across placeholders ("user:[REDACTED:a]:[REDACTED:b]@" reads as a password), which
 * hides nothing, while a change in text the first scan left alone would be a secret it missed.
 * Checked on the span between the longest common prefix and suffix of the two outputs. */
static int second_scan_ok(const aip_buf *out, const aip_buf *again) {
  size_t pre = 0, suf = 0;
  while (pre < out->len && pre < again->len && out->data[pre] == again->data[pre]) pre++;
  if (pre == out->len && pre == again->len) return 1;
  while (suf < out->len - pre && suf < again->len - pre &&
         out->data[out->len - 1 - suf] == again->data[again->len - 1 - suf])
    suf++;
  /* widen to whole placeholders: the change may start inside one */
  size_t lo = pre > 64 ? pre - 64 : 0, hi = out->len - suf + 64;
  if (hi > out->len) hi = out->len;
  return memmem(out->data + lo, hi - lo, "[REDACTED:", 10) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!D) init();
  aip_buf out, again;
  aip_buf_init(&out);
  aip_buf_init(&again);
  /* the gateway redacts only what the strict parser took (duplicate keys, say, never get here) */
  cJSON *in = NULL;
  int strict = aip_json_parse((const char *)data, size, &in) == AIP_JSON_OK;
  cJSON_Delete(in);
  int rc = strict ? aip_dlp_redact_json(D, S, scope, (const char *)data, size, &out, NULL) : -EINVAL;
  if (rc == 1) {
    cJSON *root = NULL;
    if (aip_json_parse(out.data, out.len, &root) != AIP_JSON_OK) abort();
    cJSON_Delete(root);
    int rc2 = aip_dlp_redact_json(D, S, scope, out.data, out.len, &again, NULL);
    if (rc2 < 0 || (rc2 == 1 && !second_scan_ok(&out, &again))) abort();
    if (size <= 60000) check_stream(data, size, &out);
  } else if (rc == 0) {
    aip_buf_append(&out, data, size);
    if (size <= 60000) check_stream(data, size, &out);
  } else {
    aip_buf_reset(&out);
    rc = aip_dlp_redact_text(D, S, AIP_DLP_RESPONSE, (const char *)data, size, &out, NULL);
    if (rc < 0) abort();
    if (rc == 1) {
      int rc2 = aip_dlp_redact_text(D, S, AIP_DLP_RESPONSE, out.data, out.len, &again, NULL);
      if (rc2 < 0 || (rc2 == 1 && !second_scan_ok(&out, &again))) abort();
    }
  }
  aip_buf_free(&out);
  aip_buf_free(&again);
  return 0;
}
