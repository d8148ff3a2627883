/* audit.h -- the audit log: one JSON object per line (INTERFACES.md section 6, docs/audit.md).
 *
 * Records are formatted on the loop thread (cheap, no I/O) and handed to the audit thread,
 * which chains them (prev/hash, audit_chain.c) and appends them in batches. Nothing on the
 * request path waits for the disk. The queue between the two is bounded by `buffer_size`; what
 * happens when the disk fails is `on_error` (block or allow, see aip_audit_admit). A full queue
 * is backpressure, not a failure (aip_audit_on_pressure): intake slows, nothing is refused.
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
  const char *server;    /* optional: the server of a server-to-client request (its config name) */
  const cJSON *args;     /* optional */
  const char *reason;    /* optional */
  int error_code;        /* 0 = none */
  const char *failed_arg; /* optional */
  int64_t latency_us;    /* < 0 = none */
  const char *dlp;       /* optional: `[{"rule":..,"count":..}]`, never the matched text */
  const char *approval_id; /* optional: the approval a human decided (APPROVED/DENIED/EXPIRED) */
  const char *approver;    /* optional: the operator who decided it */
  /* optional: the agent's DLP (gateway/core/dlp_apply.h). aip_audit_log passes every field that
   * came from an agent or a server through it: method, tool, args, reason, failed_arg. */
  struct aip_dlp_run *dlp_run;
} aip_audit_rec;

typedef struct aip_audit_opts {
  /* Records logged and not yet written that the queue may hold; 0 = unbounded. */
  uint32_t buffer_size;
  /* 0 (block): never drop a record; while the file cannot be written or the queue is full,
   * aip_audit_admit refuses new work. 1 (allow): keep serving; a record that does not fit is
   * dropped and counted. */
  int on_error_allow;
} aip_audit_opts;

typedef struct aip_audit_stats {
  uint64_t depth;        /* logged, not yet written */
  uint64_t written;      /* records written */
  uint64_t write_errors; /* failed write/open attempts */
  uint64_t dropped;      /* records lost (allow: queue full; any mode: unwritable at close) */
  uint64_t refused;      /* calls aip_audit_admit refused */
  uint64_t pauses;       /* times the queue reached buffer_size and intake paused */
  int failing;           /* the last write attempt failed */
  int paused;            /* intake is paused for the queue now */
} aip_audit_stats;

/* Opens `path` for appending (creating folders is the caller's job), reads the hash of its
 * last line so the chain continues, and starts the thread. Records logged during one turn of
 * `loop` reach the writer together. aip_audit_open (the stdio wrapper): 1000 records, allow. */
int aip_audit_open(uv_loop_t *loop, const char *path, aip_audit **out);
int aip_audit_open_ex(uv_loop_t *loop, const char *path, const aip_audit_opts *opts,
                      aip_audit **out);
/* Log rotation (SIGUSR1): the writer closes the file and opens `path` again; the chain goes on
 * (the new file's first prev is the old file's last hash). The writer also reopens by itself
 * when `path` is gone or is another file (checked about once a second). */
void aip_audit_reopen(aip_audit *a);
/* Whether a new call may start: 0, or -EIO (on_error block and the file cannot be written) or
 * -ENOBUFS (block, and intake was paused for the queue longer than its bound: the writer does
 * not move), in which case the refusal is counted. A queue that is merely full refuses nothing.
 * Always 0 with on_error allow. */
int aip_audit_admit(aip_audit *a);
/* Backpressure (the gateway; loop thread). `cb(ctx, 1)` when the queue reaches buffer_size
 * (high water): stop taking new requests. `cb(ctx, 0)` when the writer has brought it down to
 * buffer_size / 2 (low water), or when the writer fails (calls are then refused or their
 * records dropped, per on_error, and waiting would not help), or after `max_pause_ms` of
 * pause: from then on, until low water, aip_audit_admit refuses (block) so requests get an
 * answer instead of waiting forever. Records logged meanwhile (calls in flight) are always
 * queued: the queue exceeds buffer_size by at most what the requests already taken produce. */
typedef void (*aip_audit_pressure_cb)(void *ctx, int full);
int aip_audit_on_pressure(aip_audit *a, uint64_t max_pause_ms, aip_audit_pressure_cb cb, void *ctx);
/* Same test without counting (readiness). */
int aip_audit_blocking(aip_audit *a);
void aip_audit_stats_get(aip_audit *a, aip_audit_stats *s);
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
/* Writes what is queued (one last attempt if the file is failing), stops the thread, closes. */
void aip_audit_close(aip_audit *a);

/* Formats a record as a JSON object without the chain members and without a newline (the
 * writer thread adds prev, hash and '\n'); exposed for tests. */
int aip_audit_format(const aip_audit_rec *r, int64_t unix_ms, char **out, size_t *len);

/* ---- hash chain (audit_chain.c, docs/audit.md) ------------------------------------------- */

#define AIP_AUDIT_HASH_HEX 64
/* The `prev` of the first record of a chain: 64 '0'. */
extern const char aip_audit_genesis[AIP_AUDIT_HASH_HEX + 1];
/* Appends the line for `body` (a `{...}` object from aip_audit_format): the body with
 * `"prev":prev` and `"hash":H` added as its last members, then '\n'. H = SHA-256 (hex) of the
 * line without its hash member. `hash` receives H. Returns 0, -EINVAL or -ENOMEM. */
int aip_audit_seal(aip_buf *out, const char *body, size_t len, const char *prev,
                   char hash[AIP_AUDIT_HASH_HEX + 1]);
/* Checks one line (without its '\n'): strict JSON object, `prev` of 64 hex digits, `hash` last
 * and matching. Fills prev and hash; returns NULL, or what is wrong. */
const char *aip_audit_check_line(const char *line, size_t len, char prev[AIP_AUDIT_HASH_HEX + 1],
                                 char hash[AIP_AUDIT_HASH_HEX + 1]);

#endif
