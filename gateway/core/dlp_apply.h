/* dlp_apply.h -- the policy around the DLP engine, shared by `aip serve` and the stdio wrapper:
 * the per-message time budget (dlp.timeout), request-side scanning (dlp.scan_requests,
 * on_request_match), the audit copy of arguments and the audit's `dlp: [{rule, count}]`.
 * The engine (engine/dlp.h) is pure; this file owns the clock (uv_hrtime) and the decisions.
 */
#ifndef AIP_DLP_APPLY_H
#define AIP_DLP_APPLY_H

#include <stdint.h>

#include "engine/dlp.h"

/* One caller's DLP: the compiled rules (NULL = DLP off), a scratch of the calling thread and
 * the policy (dlp.timeout_ms, on_request_match, failover.on_dlp_error). */
typedef struct aip_dlp_run {
  const aip_dlp *dlp;
  aip_dlp_scratch *scratch;
  const aip_policy_doc *doc;
  uint64_t deadline_ns; /* while armed: uv_hrtime() past this is a timeout */
} aip_dlp_run;

/* Arms the scratch's deadline `budget_ns` from now (0 disarms); engine calls fail with
 * -ETIMEDOUT once it has passed. Disarm before the scratch serves anything else. */
void aip_dlp_run_arm(aip_dlp_run *r, uint64_t budget_ns);
/* The policy's dlp.timeout in ns (0 = none, also when the agent has no DLP in force). */
uint64_t aip_dlp_run_budget(const aip_dlp_run *r);

/* aip_dlp_redact_json within dlp.timeout (armed and disarmed here). Same returns. */
int aip_dlp_run_json(aip_dlp_run *r, int scope, const char *raw, size_t len, aip_buf *out,
                     aip_dlp_counts *c);

/* One read of a streamed message (`end`: and its end) through `st`, within dlp.timeout summed
 * over the message's reads in *spent_ns: the time spent scanning, not the waits between reads.
 * Output is appended to `out`. 0, or < 0 (-ETIMEDOUT once the budget is spent). */
int aip_dlp_run_stream(aip_dlp_run *r, aip_dlp_stream *st, const char *p, size_t n, int end,
                       uint64_t *spent_ns, aip_buf *out, aip_dlp_counts *c);

/* What a failed scan's code means, for logs. */
const char *aip_dlp_error_name(int rc);

/* Whether a failed scan lets the message through (failover.on_dlp_error: allow). */
int aip_dlp_run_fail_open(const aip_dlp_run *r);

/* Request side (scan_requests; nothing unless it is true): every message an agent sends that
 * goes upstream (tools/call in `aip serve`; every request, notification and answer in the
 * stdio wrapper). */
typedef enum aip_dlp_req_outcome {
  AIP_DLP_REQ_FORWARD = 0, /* clean, or a match under on_request_match: warn */
  AIP_DLP_REQ_REDACTED,    /* on_request_match: redact; forward *redacted instead */
  AIP_DLP_REQ_BLOCKED,     /* on_request_match: block; *block is the decision to audit/answer */
  AIP_DLP_REQ_FAILED       /* the scan failed and failover blocks: answer -32603 (below) */
} aip_dlp_req_outcome;

#define AIP_DLP_REQ_FAILED_MSG "Request withheld: DLP could not scan it"
/* The -32603 that stands in for a response (with its id) response DLP could not scan. */
#define AIP_DLP_RESP_FAILED_MSG "Response withheld: DLP could not scan it"
#define AIP_DLP_REQ_BLOCKED_REASON "sensitive data in request (DLP)"
/* What a server gets instead of an agent's answer to its request that request DLP stopped:
 * AIP_ERR_FORBIDDEN with this message (blocked), or -32603 AIP_DLP_REQ_FAILED_MSG (the scan
 * failed); both front ends (core/decide.c, core/server_requests.c). */
#define AIP_DLP_ANSWER_BLOCKED_MSG "Forbidden: " AIP_DLP_REQ_BLOCKED_REASON

/* Scans the whole message `msg`: every member but the values of jsonrpc, id and method
 * (params.name and params._meta included). Counts go to `c` (may be NULL). *redacted
 * (REDACTED only) is the redacted message, a new tree the caller owns; *block (BLOCKED only)
 * is -32001 Forbidden, reason AIP_DLP_REQ_BLOCKED_REASON. Under redact, a match in params.name
 * blocks: a redacted name would be a tool the policy never checked. */
aip_dlp_req_outcome aip_dlp_scan_request(aip_dlp_run *r, const cJSON *msg, aip_dlp_counts *c,
                                         cJSON **redacted, aip_decision *block);

/* The decision of a request the scan stopped with AIP_DLP_REQ_FAILED: BLOCK, -32603
 * AIP_DLP_REQ_FAILED_MSG, reason "DLP could not scan the request". With the BLOCKED decision
 * (*block above) it is what both front ends audit (the call's record, with the counts) and
 * answer (aip_decision_error), so a stopped request looks the same through either. */
void aip_dlp_req_failed_decision(aip_decision *d);

/* The audit (and approval) copy of arguments never holds what DLP would redact, whatever
 * scan_requests says (as the AIP reference does). A redacted copy, or NULL when nothing
 * matched (use the original); when the scan fails, the string AIP_DLP_NOT_SHOWN. No time
 * budget: this copy is never forwarded. */
cJSON *aip_dlp_redact_copy(aip_dlp_run *r, const cJSON *args);

#define AIP_DLP_NOT_SHOWN "[not shown: DLP could not scan it]"

/* What the gateway writes down (audit fields, its own log) passes the rules of both scopes
 * (request-only rules when scan_requests compiled them). Plain text: 1 and the redacted text
 * appended to `out`, 0 clean (out untouched), < 0 the scan failed. */
int aip_dlp_redact_str(aip_dlp_run *r, const char *s, size_t n, aip_buf *out);
/* A NUL-terminated field: `s` itself when clean (or r, s or r->dlp NULL), the redacted text
 * in `b`, or AIP_DLP_NOT_SHOWN when the scan fails. */
const char *aip_dlp_redact_field(aip_dlp_run *r, const char *s, aip_buf *b);

/* aip_log_filter_fn (gateway/obs/log.h) filters of the gateway's own log (log_dlp.c): for `aip
 * serve` (ctx: the aip_gw; a line passes every agent's rules) and for one aip_dlp_run (ctx;
 * the stdio wrapper). */
int aip_dlp_log_filter_gw(void *ctx, const char *msg, size_t len, char **out, size_t *out_len);
int aip_dlp_log_filter_run(void *ctx, const char *msg, size_t len, char **out, size_t *out_len);

/* Renders counts as the audit's `[{"rule":"..","count":N}]` (leaves `out` alone if none).
 * When `out` already holds such a list, the entries are added to it (a rule counted on both a
 * call's arguments and its answer then appears twice). */
void aip_dlp_counts_json(const aip_dlp *d, const aip_dlp_counts *c, aip_buf *out);

#endif
