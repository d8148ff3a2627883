/* dlp_apply.c -- DLP policy around the engine for the gateway and the stdio wrapper
 * (dlp_apply.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "gateway/core/dlp_apply.h"

static int expired(void *ctx) {
  const aip_dlp_run *r = ctx;
  return uv_hrtime() >= r->deadline_ns;
}

void aip_dlp_run_arm(aip_dlp_run *r, uint64_t budget_ns) {
  if (!r->scratch) return;
  if (!budget_ns) {
    aip_dlp_scratch_set_deadline(r->scratch, NULL, NULL);
    return;
  }
  r->deadline_ns = uv_hrtime() + budget_ns;
  aip_dlp_scratch_set_deadline(r->scratch, expired, r);
}

uint64_t aip_dlp_run_budget(const aip_dlp_run *r) {
  /* no DLP in force (dlp.enabled: false, no rules): nothing is scanned, nothing to time */
  return r->doc && r->dlp ? r->doc->dlp.timeout_ms * 1000000u : 0;
}

int aip_dlp_run_stream(aip_dlp_run *r, aip_dlp_stream *st, const char *p, size_t n, int end,
                       uint64_t *spent_ns, aip_buf *out, aip_dlp_counts *c) {
  uint64_t budget = aip_dlp_run_budget(r);
  if (budget && *spent_ns >= budget) return -ETIMEDOUT;
  if (budget) aip_dlp_run_arm(r, budget - *spent_ns);
  uint64_t t0 = uv_hrtime();
  int rc = n ? aip_dlp_stream_feed(st, r->scratch, p, n, out, c) : 0;
  if (rc >= 0 && end) rc = aip_dlp_stream_end(st, r->scratch, out, c);
  *spent_ns += uv_hrtime() - t0;
  if (budget) aip_dlp_run_arm(r, 0);
  return rc < 0 ? rc : 0;
}

const char *aip_dlp_error_name(int rc) {
  return rc == -ETIMEDOUT ? "dlp.timeout exceeded"
         : rc == -EINVAL  ? "invalid JSON"
         : rc == -EILSEQ  ? "invalid UTF-8"
         : rc == -E2BIG   ? "nested too deep"
         : rc == -ENOMEM  ? "out of memory"
                          : "scan error";
}

int aip_dlp_run_fail_open(const aip_dlp_run *r) {
  return r->doc && r->doc->failover.on_dlp_error == AIP_FAILOVER_ALLOW;
}

int aip_dlp_run_json(aip_dlp_run *r, int scope, const char *raw, size_t len, aip_buf *out,
                     aip_dlp_counts *c) {
  if (!r->dlp) return 0;
  uint64_t budget = aip_dlp_run_budget(r);
  if (budget) aip_dlp_run_arm(r, budget);
  int rc = aip_dlp_redact_json(r->dlp, r->scratch, scope, raw, len, out, c);
  if (budget) aip_dlp_run_arm(r, 0);
  return rc;
}

static void request_blocked(aip_decision *block) {
  memset(block, 0, sizeof(*block));
  block->kind = AIP_DECISION_BLOCK;
  block->violation = 1;
  block->error_code = AIP_ERR_FORBIDDEN;
  block->error_message = "Forbidden";
  snprintf(block->reason, sizeof(block->reason), "%s", AIP_DLP_REQ_BLOCKED_REASON);
}

void aip_dlp_req_failed_decision(aip_decision *d) {
  memset(d, 0, sizeof(*d));
  d->kind = AIP_DECISION_BLOCK;
  d->violation = 1;
  d->error_code = AIP_RPC_INTERNAL_ERROR;
  d->error_message = AIP_DLP_REQ_FAILED_MSG;
  snprintf(d->reason, sizeof(d->reason), "DLP could not scan the request");
}

/* Whether `a` and `b` (messages) differ in params.name. */
static int name_changed(const cJSON *a, const cJSON *b) {
  const cJSON *pa = cJSON_GetObjectItemCaseSensitive(a, "params");
  const cJSON *pb = cJSON_GetObjectItemCaseSensitive(b, "params");
  const cJSON *na = cJSON_IsObject(pa) ? cJSON_GetObjectItemCaseSensitive(pa, "name") : NULL;
  const cJSON *nb = cJSON_IsObject(pb) ? cJSON_GetObjectItemCaseSensitive(pb, "name") : NULL;
  return !cJSON_Compare(na, nb, 1) && (na || nb);
}

aip_dlp_req_outcome aip_dlp_scan_request(aip_dlp_run *r, const cJSON *msg, aip_dlp_counts *c,
                                         cJSON **redacted, aip_decision *block) {
  if (!r->dlp || !r->doc->dlp.scan_requests) return AIP_DLP_REQ_FORWARD;
  aip_buf raw, out;
  aip_buf_init(&raw);
  aip_buf_init(&out);
  aip_dlp_req_outcome res = AIP_DLP_REQ_FORWARD;
  const char *mode = r->doc->dlp.on_request_match ? r->doc->dlp.on_request_match : "block";
  /* the whole message: every member the agent sent is forwarded, so every one is scanned
   * (the engine leaves jsonrpc, id and method alone) */
  int rc = aip_json_print(&raw, msg) ? -ENOMEM
                                     : aip_dlp_run_json(r, AIP_DLP_REQUEST, raw.data, raw.len,
                                                        &out, c);
  if (rc < 0) {
    if (!aip_dlp_run_fail_open(r)) res = AIP_DLP_REQ_FAILED;
  } else if (rc == 1 && strcmp(mode, "block") == 0) {
    request_blocked(block);
    res = AIP_DLP_REQ_BLOCKED;
  } else if (rc == 1 && strcmp(mode, "redact") == 0) {
    cJSON *red = NULL;
    /* the engine's output is valid JSON by construction; if it does not parse, fail closed */
    if (aip_json_parse(out.data, out.len, &red) != AIP_JSON_OK) {
      res = AIP_DLP_REQ_FAILED;
    } else if (name_changed(msg, red)) {
      /* a redacted tool name is not the tool the policy checked: refuse the call instead */
      request_blocked(block);
      res = AIP_DLP_REQ_BLOCKED;
    } else {
      *redacted = red;
      red = NULL;
      res = AIP_DLP_REQ_REDACTED;
    }
    cJSON_Delete(red);
  }
  aip_buf_free(&raw);
  aip_buf_free(&out);
  return res;
}

/* The response rules, then (with scan_requests; the request database exists only then) the
 * request-only ones: a rule of either scope names something that must not be written down. */
static const int write_scopes[] = {AIP_DLP_RESPONSE, AIP_DLP_REQUEST};

int aip_dlp_redact_str(aip_dlp_run *r, const char *s, size_t n, aip_buf *out) {
  if (!r->dlp) return 0;
  aip_buf in, t;
  aip_buf_init(&in);
  aip_buf_init(&t);
  int changed = 0, rc = 0;
  for (size_t i = 0; rc >= 0 && i < 2; i++) {
    t.len = 0;
    rc = aip_dlp_redact_text(r->dlp, r->scratch, write_scopes[i], changed ? in.data : s,
                             changed ? in.len : n, &t, NULL);
    if (rc != 1) continue;
    changed = 1;
    aip_buf x = in; /* the redacted text is the input of the next pass */
    in = t;
    t = x;
  }
  if (rc >= 0 && changed) rc = aip_buf_append(out, in.data, in.len) ? -ENOMEM : 1;
  else if (rc >= 0) rc = 0;
  aip_buf_free(&in);
  aip_buf_free(&t);
  return rc;
}

const char *aip_dlp_redact_field(aip_dlp_run *r, const char *s, aip_buf *b) {
  if (!s || !r || !r->dlp) return s;
  aip_buf_reset(b);
  int rc = aip_dlp_redact_str(r, s, strlen(s), b);
  if (rc == 0) return s;
  if (rc < 0 || aip_buf_append(b, "", 1)) return AIP_DLP_NOT_SHOWN;
  return b->data;
}

cJSON *aip_dlp_redact_copy(aip_dlp_run *r, const cJSON *args) {
  if (!r->dlp || !args) return NULL;
  aip_buf raw, out;
  aip_buf_init(&raw);
  aip_buf_init(&out);
  cJSON *copy = NULL;
  int changed = 0;
  int rc = aip_json_print(&raw, args);
  for (size_t i = 0; rc >= 0 && i < 2; i++) {
    if (i == 1 && !(r->doc && r->doc->dlp.scan_requests)) break;
    out.len = 0;
    rc = aip_dlp_redact_json(r->dlp, r->scratch, write_scopes[i] | AIP_DLP_WHOLE, raw.data,
                             raw.len, &out, NULL);
    if (rc != 1) continue;
    changed = 1;
    aip_buf t = raw; /* the redacted text is the input of the next pass */
    raw = out;
    out = t;
  }
  /* what could not be scanned is not written down either */
  if (rc < 0 || (changed && aip_json_parse(raw.data, raw.len, &copy) != AIP_JSON_OK)) {
    cJSON_Delete(copy);
    copy = cJSON_CreateString(AIP_DLP_NOT_SHOWN);
  }
  aip_buf_free(&raw);
  aip_buf_free(&out);
  return copy;
}

void aip_dlp_counts_json(const aip_dlp *d, const aip_dlp_counts *c, aip_buf *out) {
  if (!d || !c->total) return;
  const char *rule;
  uint32_t n;
  /* a list already there (a call's request counts, then its answer's) is extended */
  int more = out->len > 1 && out->data[out->len - 1] == ']';
  if (more) out->len--;
  else aip_buf_puts(out, "[");
  for (size_t it = 0, k = more; aip_dlp_counts_next(d, c, &it, &rule, &n); k++) {
    aip_buf_puts(out, k ? ",{\"rule\":" : "{\"rule\":");
    aip_buf_json_string(out, rule, strlen(rule), 0);
    aip_buf_printf(out, ",\"count\":%u}", n);
  }
  aip_buf_puts(out, "]");
}
