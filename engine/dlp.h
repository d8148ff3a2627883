/* dlp.h -- the DLP engine: find secrets and PII in JSON-RPC messages and redact them in place.
 *
 * One compiled `aip_dlp` per policy (immutable, shared by every thread), one `aip_dlp_scratch`
 * per thread. Every call is pure: no I/O, no clock (a deadline is a caller callback), no log
 * (warnings are returned as strings for the caller to log). Never log a matched value: only
 * rule names and counts leave this module.
 *
 * How a string is scanned (docs/dlp.md has the long version):
 *   1. one Hyperscan block scan of the decoded text with every rule of the scope tells which
 *      rules fired; clean text (the common case) stops here;
 *   2. the rules that fired are applied in policy order with PCRE2 (JIT, match limits), each
 *      replacing its leftmost non-overlapping matches with the literal `[REDACTED:<name>]` on
 *      the text the earlier rules left: exactly the AIP reference's Redact (vectors dlp-001..050);
 *   3. the result is spliced into the raw JSON through an offset map: every byte that is not
 *      part of a redacted match is copied unchanged (escapes, key order, numbers, non-text
 *      content), so the output is always valid JSON.
 *
 * Conventions: 0 or a negative errno (-EINVAL, -ENOMEM, ...); functions that redact return 1
 * when something was redacted, 0 when the input is clean, < 0 on error. On error the caller
 * applies the policy's failover (`failover.on_dlp_error`, block by default).
 */
#ifndef AIP_DLP_H
#define AIP_DLP_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "engine/engine.h"

typedef struct aip_dlp aip_dlp;
typedef struct aip_dlp_scratch aip_dlp_scratch;
typedef struct aip_dlp_stream aip_dlp_stream;

/* ---- compile ------------------------------------------------------------------------------ */

/* Serialized-database cache. The engine does no I/O: it hands the caller an opaque key (a file
 * name made of [0-9a-z.-]) and a blob. gateway/dlp_cache.c implements both on a directory.
 * `load` returns 0 with a malloc'd blob the engine frees, or < 0 on a miss; `store` errors are
 * ignored. A blob that fails any check (Hyperscan version, platform, rule text) is a miss. */
typedef struct aip_dlp_cache_io {
  void *ctx;
  int (*load)(void *ctx, const char *key, void **data, size_t *len);
  int (*store)(void *ctx, const char *key, const void *data, size_t len);
} aip_dlp_cache_io;

typedef struct aip_dlp_opts {
  const aip_dlp_cache_io *cache; /* NULL: always compile */
  /* Compile the stream-mode databases used for bodies above stream_threshold (default on;
   * `aip dlp scan` and the request side do not need them). */
  int no_stream;
} aip_dlp_opts;

/* Compiles doc->dlp (patterns plus the `rulepack`). *out is NULL, and 0 is returned, when the
 * policy has no active DLP (no block, enabled: false, no rules): callers treat NULL as "off".
 * A pattern that Hyperscan or PCRE2 refuses fails the load with
 *   file:line: pattern "name": <message>
 * unless spec.failover.on_regex_error is allow, in which case it is dropped with a warning.
 * Slow for big rule sets (seconds for 200 rules without a cache hit): call it off the loop. */
int aip_dlp_compile(const aip_policy_doc *doc, const aip_dlp_opts *opts, aip_dlp **out,
                    aip_error *err);
void aip_dlp_free(aip_dlp *d);

/* Rules in policy order (patterns first, then the rule pack); NULL past the end. */
size_t aip_dlp_rule_count(const aip_dlp *d);
const char *aip_dlp_rule_name(const aip_dlp *d, size_t i);
/* Load-time warnings (dropped patterns, max_scan_size in force); NULL past the end. */
const char *aip_dlp_warning(const aip_dlp *d, size_t i);
/* 1 when the last aip_dlp_compile took every database from the cache. */
int aip_dlp_from_cache(const aip_dlp *d);

/* ---- per-thread scratch -------------------------------------------------------------------- */

/* A scratch serves any number of compiled DLP objects: prepare it for each one (on the thread
 * that owns it) before scanning with it. Never share a scratch between threads. */
aip_dlp_scratch *aip_dlp_scratch_new(void);
int aip_dlp_scratch_prepare(aip_dlp_scratch *s, const aip_dlp *d);
void aip_dlp_scratch_free(aip_dlp_scratch *s);

/* Optional time budget (the policy's dlp.timeout): the engine calls `expired(ctx)` between
 * strings and between rules; once it returns non-zero the call fails with -ETIMEDOUT. The
 * engine never reads a clock itself. NULL removes it. */
void aip_dlp_scratch_set_deadline(aip_dlp_scratch *s, int (*expired)(void *ctx), void *ctx);

/* ---- counts ------------------------------------------------------------------------------- */

/* What was redacted: per rule, never the text. Calls add to it until reset. Entries
 * [0, rules) are plain matches, [rules, 2*rules) detect_encoding hits ("<name> (encoded)"). */
typedef struct aip_dlp_counts {
  uint32_t *n;
  size_t rules;
  uint64_t total;
  unsigned flags; /* AIP_DLP_F_* */
} aip_dlp_counts;

enum {
  AIP_DLP_F_PARTIAL = 1u << 0,  /* max_scan_size left bytes unscanned (log a warning) */
  AIP_DLP_F_FALLBACK = 1u << 1, /* a PCRE2 limit hit: a whole string was redacted instead */
  AIP_DLP_F_KEY = 1u << 2       /* an object key was redacted */
};

int aip_dlp_counts_init(aip_dlp_counts *c, const aip_dlp *d); /* d may be NULL */
void aip_dlp_counts_reset(aip_dlp_counts *c);
void aip_dlp_counts_free(aip_dlp_counts *c);
/* Non-zero entries in rule order, for the audit record's dlp: [{rule, count}]:
 *   for (size_t it = 0; aip_dlp_counts_next(d, c, &it, &rule, &count);) ...
 * `rule` borrows from d. */
int aip_dlp_counts_next(const aip_dlp *d, const aip_dlp_counts *c, size_t *iter,
                        const char **rule, uint32_t *count);

/* ---- redaction ---------------------------------------------------------------------------- */

typedef enum aip_dlp_scope {
  /* Both scopes scan every member of a message at every depth, keys included, except the
   * values of jsonrpc, id, method and error.code and the names of the protocol's members
   * (dlp_json.c, dlp_path_key): nothing forwarded escapes DLP. A container in a protocol
   * scalar's place is scanned whole.
   * upstream -> agent: rules with scope all|response. Nothing when scan_responses is false. */
  AIP_DLP_RESPONSE = 0,
  /* agent -> upstream: rules with scope all|request. Nothing unless scan_requests is true. */
  AIP_DLP_REQUEST = 1
} aip_dlp_scope;

/* OR into the scope: scan every string and number of the document whatever its path (tests,
 * `aip dlp scan --json`). */
#define AIP_DLP_WHOLE 0x100

/* Redacts one JSON text (a message, or a top-level array of them). Returns 1 and appends the
 * spliced JSON to `out`; returns 0 and leaves `out` alone when nothing matched (forward the
 * original bytes). Invalid JSON: -EINVAL; invalid UTF-8: -EILSEQ; deeper than 64: -E2BIG.
 * `d` NULL is "DLP off" (returns 0). Counts are added to `c` (may be NULL). */
int aip_dlp_redact_json(const aip_dlp *d, aip_dlp_scratch *s, int scope, const char *raw,
                        size_t len, aip_buf *out, aip_dlp_counts *c);

/* Redacts plain text (stderr filtering, `aip dlp scan`, the AIP conformance vectors): the AIP
 * reference's Redact(text) exactly. Invalid UTF-8 bytes are copied as they are; rules see each
 * as one control character (as Go sees U+FFFD: `.` and negated classes match it). */
int aip_dlp_redact_text(const aip_dlp *d, aip_dlp_scratch *s, int scope, const char *text,
                        size_t len, aip_buf *out, aip_dlp_counts *c);

/* ---- streaming (bodies above stream_threshold) --------------------------------------------- */

/* Feed a JSON text (or plain text) in chunks of any size; redacted output is appended to `out`
 * as soon as it is final. Memory is bounded whatever the size: a string is held back only as
 * far as the longest rule can reach (AIP_DLP_HOLD_MAX; rules without a maximum width count as
 * AIP_DLP_UNBOUNDED_CAP), so a secret split across reads or SSE events is still caught. Strings
 * up to AIP_DLP_STREAM_STRING_MAX are redacted exactly as in block mode; longer ones in windows
 * (docs/dlp.md, "Streaming"). Errors are final: once a call fails, bytes already emitted may be
 * a prefix of the message, so the caller must abort the response. */
#define AIP_DLP_STREAM_STRING_MAX (64u * 1024)
#define AIP_DLP_UNBOUNDED_CAP 4096u
#define AIP_DLP_HOLD_MAX (16u * 1024)

typedef enum aip_dlp_stream_kind {
  AIP_DLP_STREAM_JSON = 0,
  AIP_DLP_STREAM_TEXT
} aip_dlp_stream_kind;

/* NULL on no memory. `d` NULL gives a pass-through stream. */
aip_dlp_stream *aip_dlp_stream_new(const aip_dlp *d, int scope, aip_dlp_stream_kind kind);
int aip_dlp_stream_feed(aip_dlp_stream *st, aip_dlp_scratch *s, const char *p, size_t n,
                        aip_buf *out, aip_dlp_counts *c);
/* End of input: emits what is held back; JSON must be complete (-EINVAL otherwise). */
int aip_dlp_stream_end(aip_dlp_stream *st, aip_dlp_scratch *s, aip_buf *out, aip_dlp_counts *c);
/* Text streams only: treat what was fed so far as complete and emit it (e.g. after a newline
 * when the writer goes idle); matching restarts from here. */
int aip_dlp_stream_flush(aip_dlp_stream *st, aip_dlp_scratch *s, aip_buf *out,
                         aip_dlp_counts *c);
/* Bytes this stream holds now and at most so far (buffers it owns; scratch excluded). */
size_t aip_dlp_stream_mem(const aip_dlp_stream *st, size_t *peak);
void aip_dlp_stream_free(aip_dlp_stream *st);

#endif
