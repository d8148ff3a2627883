/* audit.h -- the audit log: one JSON object per line (INTERFACES.md section 6).
 *
 * Records are formatted on the loop thread (cheap, no I/O) and handed to the audit thread,
 * which appends them in batches. Nothing on the request path waits for the disk.
 */
#ifndef AIP_AUDIT_H
#define AIP_AUDIT_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "engine/engine.h"

typedef struct aip_audit aip_audit;

typedef struct aip_audit_rec {
  const char *agent;
  const char *session_id;
  const char *direction; /* "upstream" (agent -> server) or "downstream" */
  const char *method;
  const char *decision; /* ALLOW, BLOCK, ALLOW_MONITOR, RATE_LIMITED, ASK, ... */
  const char *policy_mode;
  const char *policy_name;
  const char *policy_version;
  int violation;
  const char *tool;      /* optional */
  const cJSON *args;     /* optional */
  const char *reason;    /* optional */
  int error_code;        /* 0 = none */
  const char *failed_arg; /* optional */
  int64_t latency_us;    /* < 0 = none */
  const char *dlp;       /* optional: `[{"rule":..,"count":..}]`, never the matched text */
} aip_audit_rec;

/* Opens (creating folders is the operator's job) `path` for appending; starts the thread.
 * Records logged during one turn of `loop` reach the writer together. */
int aip_audit_open(uv_loop_t *loop, const char *path, aip_audit **out);
/* Releases the loop handle (before the loop ends); later records are handed over at once. */
void aip_audit_detach(aip_audit *a);
void aip_audit_log(aip_audit *a, const aip_audit_rec *r);
/* Fills the decision fields of `r` from `d` (the decision name unless `decision` overrides it,
 * violation, reason, error code, failed argument) and logs it: the one place a policy decision
 * becomes an audit record, for the gateway and the stdio wrapper alike. */
void aip_audit_log_decision(aip_audit *a, aip_audit_rec *r, const aip_decision *d,
                            const char *decision);
uint64_t aip_audit_queue_depth(aip_audit *a);
uint64_t aip_audit_written(aip_audit *a);
/* Writes what is queued, stops the thread, closes the file. */
void aip_audit_close(aip_audit *a);

/* Formats a record as one JSON line (with '\n'); exposed for tests. */
int aip_audit_format(const aip_audit_rec *r, int64_t unix_ms, char **out, size_t *len);

#endif
