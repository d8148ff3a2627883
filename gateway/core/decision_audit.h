/* core/decision_audit.h -- the audit record of a decision, filled the same way for `aip serve`
 * (core/mcp_dispatch.c) and the stdio wrapper (wrapper/): who decided (agent, session, policy,
 * DLP) is one struct each front end fills once; the record's other fields come from the
 * decision (obs/audit.c, aip_audit_log_decision). docs/audit.md lists the members. */
#ifndef AIP_CORE_DECISION_AUDIT_H
#define AIP_CORE_DECISION_AUDIT_H

#include <stdint.h>

#include "gateway/core/dlp_apply.h"
#include "gateway/obs/audit.h"

/* Who a record is about. */
typedef struct aip_core_who {
  aip_audit *audit;
  const char *agent;      /* the gateway config's agent name; the wrapper: the policy name */
  const char *session_id;
  const aip_policy_doc *doc;  /* NULL: the agent's policy never loaded */
  const char *blocked_policy; /* then: the name it was refused under (may be NULL) */
  aip_dlp_run *dlp_run;       /* the builder redacts what agents and servers chose */
} aip_core_who;

/* The optional members of a record; a zeroed struct (or NULL) has none. */
typedef struct aip_core_audit_more {
  const char *direction;  /* NULL: "upstream" */
  const char *dlp;        /* `[{"rule":..,"count":..}]` */
  int64_t latency_us;     /* used when has_latency */
  int has_latency;
  const char *approval_id, *approver;
  const char *server;     /* a server-to-client request's server (core/server_requests.c) */
} aip_core_audit_more;

/* One decision on `method` (and `tool`, `args` for a tools/call). `decision` NULL: the
 * decision's own name. */
void aip_core_audit(const aip_core_who *who, const char *method, const aip_decision *d,
                    const char *decision, const char *tool, const cJSON *args,
                    const aip_core_audit_more *more);

/* The decision a forwarded tools/call's record carries when the call ends (both front ends):
 * ALLOW as such; ALLOW_MONITOR with what the policy objected to (reason, failed_arg), the
 * pointers into the policy cleared (it may be reloaded meanwhile). */
void aip_core_forwarded_decision(const aip_decision *d, aip_decision *out);

#endif
