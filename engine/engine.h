/* engine.h -- pure decisions: strict JSON, JSON-RPC framing, name normalization, policy.
 *
 * Nothing in engine/ does I/O, reads a clock, or knows about libuv, sockets or SQLite: time is
 * a parameter. That keeps every decision testable in microseconds and shared by `aip serve`,
 * the stdio wrapper, the conformance runner and the benchmarks.
 */
#ifndef AIP_ENGINE_H
#define AIP_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/config.h"

/* ---- aip_buf: a growable byte buffer (buf.c) ------------------------------------------------ */

typedef struct aip_buf {
  char *data; /* always NUL-terminated when len > 0 or after any append */
  size_t len;
  size_t cap;
} aip_buf;

void aip_buf_init(aip_buf *b);
void aip_buf_free(aip_buf *b);
void aip_buf_reset(aip_buf *b); /* len = 0, keeps memory */
int aip_buf_reserve(aip_buf *b, size_t extra);
int aip_buf_append(aip_buf *b, const void *p, size_t n);
int aip_buf_puts(aip_buf *b, const char *s);
int aip_buf_printf(aip_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `s` as a JSON string literal (quotes included). `html_escape` also escapes < > & as
 * \u003c \u003e \u0026, which is what Go's json.Marshal does (AIP error bytes match it). */
int aip_buf_json_string(aip_buf *b, const char *s, size_t n, int html_escape);
/* Moves the bytes out; the buffer is left empty. Caller frees the result. */
char *aip_buf_steal(aip_buf *b, size_t *len);

/* ---- strict JSON (json.c) ------------------------------------------------------------------ */

#define AIP_JSON_MAX_DEPTH 64

typedef enum aip_json_status {
  AIP_JSON_OK = 0,
  AIP_JSON_SYNTAX,        /* not JSON at all */
  AIP_JSON_BAD_UTF8,      /* invalid UTF-8, or an escaped lone surrogate */
  AIP_JSON_DUPLICATE_KEY, /* an object repeats a key (exact match) */
  AIP_JSON_TOO_DEEP,      /* nesting deeper than AIP_JSON_MAX_DEPTH */
  AIP_JSON_NOMEM
} aip_json_status;

/* Parses exactly `len` bytes (no NUL needed, trailing bytes other than whitespace are an error).
 * Rejects duplicate keys in any object, invalid UTF-8 and deep nesting, so that what the policy
 * sees is exactly what an upstream parser would see. */
aip_json_status aip_json_parse(const char *buf, size_t len, cJSON **out);
const char *aip_json_status_str(aip_json_status st);

/* Prints compactly into `b` (appends). */
int aip_json_print(aip_buf *b, const cJSON *item);

/* ---- JSON-RPC 2.0 framing (jsonrpc.c) ------------------------------------------------------ */

typedef enum aip_rpc_kind {
  AIP_RPC_INVALID = 0,
  AIP_RPC_REQUEST,      /* method + id */
  AIP_RPC_NOTIFICATION, /* method, no id */
  AIP_RPC_RESPONSE,     /* result + id */
  AIP_RPC_ERROR         /* error + id (id may be null) */
} aip_rpc_kind;

/* A classified message; the pointers borrow from the cJSON tree. */
typedef struct aip_rpc_msg {
  aip_rpc_kind kind;
  cJSON *root;
  cJSON *id;     /* string or number; NULL for notifications (may be JSON null on errors) */
  const char *method;
  cJSON *params; /* object, array or NULL */
  cJSON *result;
  cJSON *error;
  const char *invalid_reason; /* set when kind == AIP_RPC_INVALID */
} aip_rpc_msg;

/* Classifies a parsed message. Keys are exact-case; an envelope (or `params`) that also holds a
 * key differing from `jsonrpc|id|method|params|result|error` (or `name|arguments|_meta`) only in
 * case is INVALID, because a case-insensitive upstream parser could be fooled by it. */
aip_rpc_kind aip_rpc_classify(cJSON *root, aip_rpc_msg *out);

/* Standard codes and the AIP codes of INTERFACES.md section 4. */
enum {
  AIP_RPC_PARSE_ERROR = -32700,
  AIP_RPC_INVALID_REQUEST = -32600,
  AIP_RPC_METHOD_NOT_FOUND = -32601,
  AIP_RPC_INVALID_PARAMS = -32602,
  AIP_RPC_INTERNAL_ERROR = -32603,
  AIP_ERR_FORBIDDEN = -32001,
  AIP_ERR_RATE_LIMITED = -32002,
  AIP_ERR_USER_DENIED = -32004,
  AIP_ERR_APPROVAL_TIMEOUT = -32005,
  AIP_ERR_METHOD_NOT_ALLOWED = -32006,
  AIP_ERR_PROTECTED_PATH = -32007,
  AIP_ERR_SIGNATURE_INVALID = -32010
};

/* The one place that builds JSON-RPC error responses:
 *   {"jsonrpc":"2.0","id":<id>,"error":{"code":C,"message":M[,"data":{k:v,...}]}}
 * `id` NULL omits the member (AIP's reply to a notification shape); a JSON null prints null.
 * `data_kv` is a NULL-terminated list of key, value string pairs that must already be sorted by
 * key (Go's encoding order); strings are HTML-escaped as Go does. `data_kv` NULL omits data. */
int aip_rpc_error(aip_buf *out, const cJSON *id, int code, const char *message,
                  const char *const *data_kv);
/* The same error as a tree (for callers that hold messages as trees: upstream call results,
 * pending answers), built by aip_rpc_error and parsed back. `id` NULL gives "id":null (the
 * caller re-keys it). NULL when out of memory. */
cJSON *aip_rpc_error_msg(const cJSON *id, int code, const char *message,
                         const char *const *data_kv);

/* ---- name normalization (normalize.c) ------------------------------------------------------ */

/* AIP section 4.1: NFKC, simple lower-case, trim Unicode white space, then drop every code point
 * that is not printable (controls, format characters, separators other than U+0020, unassigned,
 * private use, surrogates). Returns a malloc'd NUL-terminated string, or NULL on invalid UTF-8
 * or no memory. */
char *aip_normalize_name(const char *s, size_t len);

/* ---- policy (policy.c, protected_paths.c, ratelimit.c, decision_cache.c) ------------------ */

/* Compiled policy. It borrows `doc` (keep the doc alive as long as the policy) and owns one
 * Hyperscan scratch and a decision cache, so a policy object is used by one thread at a time
 * (the loop thread, or the stdio wrapper's one thread). Checks take `const aip_policy *` but do
 * update the cache: never call them on the same policy from two threads at once. */
typedef struct aip_policy aip_policy;

/* Compile-time options. A zeroed struct (or NULL) gives the defaults. */
typedef struct aip_policy_opts {
  /* NULL-terminated list of extra paths that are always protected (the gateway passes its own
   * config file). Relative entries are resolved against `cwd`. The policy file itself
   * (doc->path) is always protected unless its name starts with '<' ("<inline>", a string). */
  const char *const *extra_protected;
  /* `~` expansion and relative-path resolution, for protected_paths entries and for argument
   * values alike. NULL: getenv("HOME") / getcwd(), read once here at compile time (the only
   * environment the engine ever reads; checks stay pure). A `~` entry with no home is refused. */
  const char *home;
  const char *cwd;
  /* Decision cache: entries kept (0 = AIP_DECISION_CACHE_DEFAULT); `cache_off` disables it. */
  size_t cache_entries;
  int cache_off;
} aip_policy_opts;

#define AIP_DECISION_CACHE_DEFAULT 1024

int aip_policy_compile_ex(const aip_policy_doc *doc, const aip_policy_opts *opts,
                          aip_policy **out, aip_error *err);
/* = aip_policy_compile_ex(doc, NULL, out, err) */
int aip_policy_compile(const aip_policy_doc *doc, aip_policy **out, aip_error *err);
void aip_policy_free(aip_policy *p);
const aip_policy_doc *aip_policy_doc_of(const aip_policy *p);

/* The absolute protected paths in force (policy entries, the policy file, extras), for logs
 * and `aip check`. Index 0..n-1; NULL past the end. */
const char *aip_policy_protected_path(const aip_policy *p, size_t i);

typedef enum aip_decision_kind {
  AIP_DECISION_ALLOW = 0,
  AIP_DECISION_ALLOW_MONITOR, /* a violation let through because mode is monitor */
  AIP_DECISION_BLOCK,
  AIP_DECISION_ASK,
  AIP_DECISION_RATE_LIMITED,
  AIP_DECISION_PROTECTED_PATH
} aip_decision_kind;

typedef struct aip_decision {
  aip_decision_kind kind;
  int violation;
  int error_code;              /* 0 when the call may proceed, else the JSON-RPC error code */
  const char *error_message;   /* "Forbidden", "Method not allowed", ... (static) */
  char reason[160];            /* reference/aip.md appendix A reasons */
  char failed_arg[128];        /* argument that failed validation, "" if none */
  const char *failed_pattern;  /* its regex ("" for strict_args rejections), or NULL */
  const char *protected_path;  /* PROTECTED_PATH: the protected entry hit (for the audit log
                                  only: never put in the error reply), else NULL */
  int cached;                  /* 1 when the decision came from the decision cache */
  int rate_wait;               /* RATE_LIMITED only because no token is durably reserved yet
                                  (aip_rate_state_set_durable): reserve, save, check again */
} aip_decision;

const char *aip_decision_name(aip_decision_kind k); /* "ALLOW", "BLOCK", ... as in the audit log */

/* Method check (every client message with a method). `method` need not be NUL-terminated. */
void aip_policy_check_method(const aip_policy *p, const char *method, size_t len,
                             aip_decision *out);

/* ---- rate limiting (ratelimit.c; reference/aip.md section 3.7) ---- */

/* Token buckets, one per normalized tool name that has a `rate_limit` rule: burst N, starts
 * full, refills N per period continuously. The caller owns the state (the gateway keeps one per
 * agent; the wrapper one per process) so the store can persist it. A state is not bound to one
 * compiled policy: after a reload it goes on with the new policy's limits (a bucket fuller than
 * the new burst is cut down to it). */
typedef struct aip_rate_state aip_rate_state;

typedef struct aip_rate_bucket {
  double tokens;     /* tokens left at last_ms (reserved and pending ones not included) */
  int64_t last_ms;   /* caller's clock at the last refill */
  uint32_t reserved; /* durable mode: taken from the bucket, durably saved, not yet granted */
  uint32_t pending;  /* durable mode: taken from the bucket, being saved (aip_rate_reserve) */
} aip_rate_bucket;

aip_rate_state *aip_rate_state_new(const aip_policy *p); /* p may be NULL; NULL on no memory */
void aip_rate_state_free(aip_rate_state *rs);
/* Bucket of a normalized tool name: 0, or -ENOENT when no call has touched it yet. */
int aip_rate_bucket_get(const aip_rate_state *rs, const char *tool, size_t len,
                        aip_rate_bucket *out);
/* Restores a bucket (e.g. read back from the store). 0 or -ENOMEM. */
int aip_rate_bucket_set(aip_rate_state *rs, const char *tool, size_t len,
                        const aip_rate_bucket *b);
/* Durable mode (the gateway, whose buckets outlive the process): a call is granted only a token
 * already saved as spent, so a crash at any instant never grants more than the limit. The
 * caller reserves tokens ahead in small blocks (aip_rate_reserve), saves the bucket it is given
 * and settles the reservation when the save committed or failed (aip_rate_settle). A call that
 * finds no reserved token but a token in the bucket (or tokens being saved) is refused with
 * `rate_wait` set: reserve, wait for the save, check it again. Tokens reserved and never granted (a crash) are lost: the
 * error is always on the side of granting fewer. Off by default (the stdio wrapper). */
void aip_rate_state_set_durable(aip_rate_state *rs, int on);
int aip_rate_state_durable(const aip_rate_state *rs);
/* Takes up to a block of tokens (a tenth of the limit, at least 1) less those already reserved
 * from the bucket into `pending`; *save is the bucket to write, as it must read after a crash.
 * Returns how many were taken: 0 when a reservation is in flight, enough are reserved, the
 * bucket is empty or unknown. */
uint32_t aip_rate_reserve(aip_rate_state *rs, const char *tool, size_t len, int64_t now_ms,
                          aip_rate_bucket *save);
/* The save of the bucket's pending tokens committed (ok 1: they become grantable) or failed
 * (ok 0: they go back into the bucket). */
void aip_rate_settle(aip_rate_state *rs, const char *tool, size_t len, int ok);
/* Iteration: for (size_t i = 0; aip_rate_bucket_next(rs, &i, &name, &len, &b);) { ... } */
int aip_rate_bucket_next(const aip_rate_state *rs, size_t *iter, const char **tool,
                         size_t *len, aip_rate_bucket *out);

/* Tool check for tools/call, in the reference's order (section 3.3): rate limit, protected
 * paths, denied_tools, tool rule, allowlist, allow_args, strict_args. `args` is the arguments
 * object (NULL = none). `now_ms` is the caller's clock (any monotonic millisecond count), used
 * only by the rate limit. `rs` NULL skips rate limiting (tests, `aip check`). */
void aip_policy_check_tool(const aip_policy *p, const char *tool, size_t len, const cJSON *args,
                           int64_t now_ms, aip_rate_state *rs, aip_decision *out);

/* Protected paths alone (step 0.5 of the tool check), on any JSON value: a string is checked as
 * one argument value would be, an object or array recursively (resource URIs, prompt arguments:
 * the same normalization as tool arguments). Returns 1 and fills *out (PROTECTED_PATH, -32007)
 * when some string reaches a protected path (or memory ran out: fail closed), else 0. */
int aip_policy_check_paths(const aip_policy *p, const cJSON *value, aip_decision *out);

/* Whether `method` normalizes to "tools/call" (so "TOOLS/CALL" and fullwidth forms get the
 * tool check too: a lenient server could execute them). */
int aip_policy_is_tool_call(const char *method, size_t len);

/* ---- whole messages (policy.c) ---- */

/* What a front end does with one client message: the method check on anything with a method,
 * then, when the method is tools/call, the tool check. The gateway, the stdio wrapper and the
 * conformance runner all go through here or do exactly this. */
typedef struct aip_verdict {
  aip_decision d;       /* error_code 0: forward the message */
  int tool_call;        /* the tool check ran */
  int reply;            /* an error reply must be sent (never for notifications) */
  const char *subject;  /* raw method or tool name for the error reply (borrowed), or "" */
  const char *tool;     /* tools/call: the raw tool name (borrowed), else NULL */
  const cJSON *args;    /* tools/call: arguments object (borrowed), else NULL */
} aip_verdict;

/* `m` as classified by aip_rpc_classify. INVALID messages are refused with -32600 (batches
 * included); responses and errors from the client pass (they carry no method to check); a
 * tools/call whose name is not a string or whose arguments are not an object is refused with
 * -32602 rather than guessed at. An INVALID message has no usable id (m->id is NULL): its
 * -32600 reply carries a JSON null id. A parse failure (-32700) never reaches here; the front
 * end answers it itself with a null id. */
void aip_policy_check_msg(const aip_policy *p, const aip_rpc_msg *m, int64_t now_ms,
                          aip_rate_state *rs, aip_verdict *out);

/* Turns an ASK decision into the refusal sent when the human says no (-32004 "User denied") or
 * does not answer in time (`timed_out`: -32005 "User approval timeout"). */
void aip_decision_ask_refused(aip_decision *d, int timed_out);

/* ---- decision cache (decision_cache.c) ---- */

/* Hits and misses since compile; the cache only holds deterministic outcomes (never ask-rule
 * tools, never rate-limited tools) and dies with the compiled policy, so a reload empties it. */
void aip_policy_cache_stats(const aip_policy *p, uint64_t *hits, uint64_t *misses);

/* Whether tools/list should show `tool` at all: true when some arguments could make a call to it
 * ALLOW or ASK (so not denied, not blocked, and allowed or ruled). Monitor mode shows all. */
int aip_policy_tool_visible(const aip_policy *p, const char *tool, size_t len);

/* ---- a tool with several names (policy_names.c) ---- */

/* How a gateway tool can be named: as the agent sees it, by its server's own name, and as
 * "<server>__<real>"; `exposed` equals one of the other two (NUL-terminated, `qualified` may be
 * NULL). */
typedef struct aip_tool_names {
  const char *exposed;
  const char *real;
  const char *qualified;
} aip_tool_names;

/* The tool check over all the names (docs/policy-semantics.md, "Names"): a restricting entry for
 * any name holds and the most restrictive outcome wins; only the exposed or the qualified name
 * authorizes. Every rate-limited name spends a token from its own bucket. */
void aip_policy_check_tool_names(const aip_policy *p, const aip_tool_names *n, const cJSON *args,
                                 int64_t now_ms, aip_rate_state *rs, aip_decision *out);
/* aip_policy_tool_visible over the names, by the same rule. */
int aip_policy_tool_visible_names(const aip_policy *p, const aip_tool_names *n);

/* Renders the AIP error response for a non-proceeding decision (uses aip_rpc_error):
 * -32001 Forbidden / Argument validation failed, -32006 Method not allowed, ... with the exact
 * `data` of reference/aip.md section 4. `tool_or_method` is the raw (un-normalized) name.
 * -32600/-32602/-32700 (from aip_policy_check_msg) and any other non-AIP code (the gateway's
 * own -32603 refusals) render d->error_message without data; -EINVAL when d has no error. */
int aip_decision_error(aip_buf *out, const cJSON *id, const aip_decision *d,
                       const char *tool_or_method);

#endif
