/* decision_audit.c -- one audit record builder for both front ends (decision_audit.h). */
#include <string.h>

#include "gateway/core/decision_audit.h"

void aip_core_audit(const aip_core_who *who, const char *method, const aip_decision *d,
                    const char *decision, const char *tool, const cJSON *args,
                    const aip_core_audit_more *more) {
  static const aip_core_audit_more none = {0};
  if (!more) more = &none;
  const aip_policy_doc *doc = who->doc;
  aip_audit_rec r = {
      .agent = who->agent,
      .session_id = who->session_id,
      .direction = more->direction ? more->direction : "upstream",
      .method = method,
      .policy_mode = doc && doc->mode == AIP_MODE_MONITOR ? "monitor" : "enforce",
      /* a blocked agent (its policy never loaded) is audited under the name it was refused with */
      .policy_name = doc ? doc->name : who->blocked_policy,
      .policy_version = doc ? doc->version : NULL,
      .tool = tool,
      .args = args,
      .latency_us = more->has_latency ? more->latency_us : -1,
      .dlp = more->dlp,
      .approval_id = more->approval_id,
      .approver = more->approver,
      .server = more->server,
      .dlp_run = who->dlp_run,
  };
  aip_audit_log_decision(who->audit, &r, d, decision);
}

void aip_core_forwarded_decision(const aip_decision *d, aip_decision *out) {
  if (d->kind == AIP_DECISION_ALLOW_MONITOR) {
    *out = *d;
    out->failed_pattern = NULL;
    out->error_message = NULL;
    return;
  }
  aip_decision allow = {.kind = d->kind};
  *out = allow;
}
