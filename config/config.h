/* config.h -- the configuration layer's public API.
 *
 * config/ turns YAML files into typed, validated structs. Nothing above this layer ever sees a
 * YAML node: the gateway and the engine only read the structs declared here (the h2o split
 * between a configurator and its handler).
 *
 * Conventions (shared by the whole project):
 *   - fallible functions return 0 on success or a negative error (-EINVAL, -ENOMEM, -ENOENT...);
 *   - on failure a human-readable message is written to `aip_error`, shaped
 *     "file:line:col: message" whenever the problem has a place in a file;
 *   - every struct returned by a *_load() is released by the matching *_free() (NULL is fine).
 */
#ifndef AIP_CONFIG_H
#define AIP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define AIP_ERROR_MAX 512

typedef struct aip_error {
  char msg[AIP_ERROR_MAX];
} aip_error;

/* printf-style; always returns `code` so callers can `return aip_error_set(err, -EINVAL, ...)`. */
int aip_error_set(aip_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A position in a source file (1-based; 0 when unknown). */
typedef struct aip_src_pos {
  int line;
  int col;
} aip_src_pos;

typedef struct aip_strlist {
  char **items;
  aip_src_pos *pos; /* pos[i] is where items[i] was written */
  size_t n;
} aip_strlist;
void aip_strlist_free(aip_strlist *l); /* frees the items, leaves an empty list */

typedef struct aip_kv {
  char *key;
  char *value;
} aip_kv;

typedef struct aip_kvlist {
  aip_kv *items;
  size_t n;
} aip_kvlist;

/* ---- units: "4MiB", "60s", "5m" ------------------------------------------------------------ */

/* Sizes: plain bytes or a suffix B, KB, KiB, MB, MiB, GB, GiB (KB = 1000, KiB = 1024). */
int aip_parse_size(const char *s, uint64_t *out);
/* Durations: "<n>ms|s|m|h|d" or a combination such as "1m30s"; a bare number is an error. */
int aip_parse_duration_ms(const char *s, uint64_t *out_ms);

/* ---- file protection (config/file_perms.c; docs/operations.md "Policy file protection") ---- */

/* 0 when the file at `path` (symlinks followed) may be trusted as configuration: neither group
 * nor others can write it, and it belongs to root or to the user we run as. Otherwise -EPERM
 * (or -errno when it cannot be stat()ed) with a message naming the fix. */
int aip_config_file_check(const char *path, aip_error *err);
/* The rule itself, on a stat() result and our effective uid (testable without chown). */
int aip_config_perms_check(const char *path, unsigned mode, unsigned uid, unsigned euid,
                           aip_error *err);
/* Checks the gateway config file, every agent's policy and every trusted key. With `each`
 * NULL it stops at the first problem; otherwise it reports every problem through `each` and
 * goes on. Returns 0 or the first problem's code (its message in `err`). */
typedef void (*aip_file_problem_fn)(void *ctx, const char *msg);
struct aip_gateway_config;
int aip_gateway_config_check_files(const struct aip_gateway_config *cfg, aip_file_problem_fn each,
                                   void *ctx, aip_error *err);
/* server_program.c: 0 when the stdio server's program (command[0]) resolves as `aip serve`
 * starts it -- relative to the config file's folder when it has a '/', else in PATH (the
 * server env's PATH when it sets one, else ours) -- to an executable regular file; otherwise a
 * negative errno with "file:line:col: server "name": program ..." in `err`. 0 for HTTP servers. */
struct aip_server_config;
/* The one lookup of a program to run: with a '/', `cmd` itself; else the first absolute entry of
 * `path` (NULL or empty: AIP_DEFAULT_PATH) holding an executable regular file named `cmd`. 0 and
 * a malloc'ed *out, or -ENOENT, -EACCES (found, not runnable), -ENOMEM. */
#define AIP_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
int aip_program_resolve(const char *cmd, const char *path, char **out);
int aip_server_program_check(const struct aip_gateway_config *cfg,
                             const struct aip_server_config *server, aip_error *err);

/* ---- AgentPolicy (AIP aip.io/v1alpha1 and aip.io/v1alpha2) ---------------------------------- */

typedef enum aip_policy_mode { AIP_MODE_ENFORCE = 0, AIP_MODE_MONITOR } aip_policy_mode;

typedef enum aip_rule_action {
  AIP_ACTION_ALLOW = 0,
  AIP_ACTION_BLOCK,
  AIP_ACTION_ASK
} aip_rule_action;

typedef struct aip_arg_rule {
  char *name;  /* argument name (exact, not normalized) */
  char *regex; /* RE2-syntax pattern, unanchored search */
  aip_src_pos pos;
} aip_arg_rule;

typedef struct aip_tool_rule {
  char *tool; /* as written; the engine normalizes */
  aip_src_pos pos;
  aip_rule_action action;
  /* rate_limit "<count>/<period>"; count 0 means no limit configured */
  uint32_t rate_count;
  uint32_t rate_period_s; /* 1, 60, 3600 (86400 for the `day` extension) */
  int strict_args;        /* -1 inherit strict_args_default, 0 false, 1 true */
  aip_arg_rule *allow_args;
  size_t allow_args_n;
} aip_tool_rule;

typedef struct aip_dlp_pattern {
  char *name;
  char *regex;
  char *scope; /* "all" (default), "request", "response" */
  aip_src_pos pos;
} aip_dlp_pattern;

typedef struct aip_dlp_config {
  int present;         /* the `dlp:` block exists */
  char *rulepack;      /* extension: "default" adds the built-in secret/PII rules; NULL none */
  uint64_t timeout_ms; /* operations guide `timeout`: per-message scan budget, 0 = none */
  uint64_t stream_threshold; /* extension: bodies above this stream through DLP (1 MiB) */
  int max_scan_size_set;     /* max_scan_size was written: only then is it honoured */
  int enabled;         /* default 1 when the block exists */
  int detect_encoding; /* default 0 */
  int filter_stderr;   /* default 0 */
  int scan_requests;   /* v1alpha2, default 0 */
  int scan_responses;  /* v1alpha2, default 1 */
  uint64_t max_scan_size;          /* v1alpha2, default 1 MB; 0 = unlimited */
  char *on_request_match;          /* block (default) | redact | warn */
  char *on_redaction_failure;      /* block (default) | allow_original | reject */
  int log_original_on_failure;     /* default 0 */
  aip_dlp_pattern *patterns;
  size_t patterns_n;
} aip_dlp_config;

/* spec.failover (operations guide "Failure Modes"): what to do when something fails. */
typedef enum aip_failover { AIP_FAILOVER_BLOCK = 0, AIP_FAILOVER_ALLOW } aip_failover;

typedef struct aip_failover_config {
  int present;
  aip_failover on_policy_load_error; /* a policy that does not load: block all its traffic */
  aip_failover on_regex_error;       /* allow: drop a DLP pattern that does not compile */
  aip_failover on_dlp_error;         /* allow: forward unredacted when a DLP scan fails */
} aip_failover_config;

typedef struct aip_policy_doc {
  char *path; /* file the policy came from ("<inline>" for strings) */
  char *api_version;
  char *kind;
  /* metadata */
  char *name;
  char *version;
  char *owner;
  char *signature;
  /* spec */
  aip_policy_mode mode;
  aip_strlist allowed_tools;
  aip_strlist denied_tools;
  aip_strlist allowed_methods;
  /* 1 when a non-empty `allowed_methods` was written: it replaces the default list. As in Go,
   * `allowed_methods: []` keeps the defaults instead of blocking every method. */
  int allowed_methods_set;
  aip_strlist denied_methods;
  aip_strlist protected_paths; /* as written; `~` expansion is the engine's job */
  aip_tool_rule *rules;
  size_t rules_n;
  int strict_args_default;
  aip_dlp_config dlp;
  aip_failover_config failover;
  /* v1alpha2 `identity` and `server` blocks are accepted and validated but not used yet */
  int identity_present;
  int server_present;
} aip_policy_doc;

/* Parses and validates an AgentPolicy. `path` is used in messages and stored in the doc. */
int aip_policy_doc_load_file(const char *path, aip_policy_doc **out, aip_error *err);
int aip_policy_doc_load_string(const char *yaml, size_t len, const char *name,
                               aip_policy_doc **out, aip_error *err);
void aip_policy_doc_free(aip_policy_doc *doc);

/* ---- gateway config (INTERFACES.md section 2) ------------------------------------------------ */

typedef enum aip_tool_prefix {
  AIP_PREFIX_AUTO = 0, /* "<server>__<tool>" only where two of the agent's servers share a name */
  AIP_PREFIX_ALWAYS,
  AIP_PREFIX_NEVER
} aip_tool_prefix;

typedef struct aip_listen_addr {
  char *host; /* numeric IPv4 or IPv6 address */
  int port;
} aip_listen_addr;

typedef struct aip_server_config {
  char *name;
  aip_src_pos pos;
  /* stdio upstream: argv, NULL-terminated (command_n excludes the NULL) */
  char **command;
  size_t command_n;
  aip_kvlist env;
  char *cwd; /* optional working directory, relative to the config file */
  /* Streamable HTTP upstream */
  char *url;
  aip_kvlist headers;
} aip_server_config;

/* How an `ask` decision reaches a human (extension `ask_via`). */
typedef enum aip_ask_via {
  AIP_ASK_VIA_QUEUE = 0,   /* the operators' approval queue (API, CLI, web page) */
  AIP_ASK_VIA_ELICITATION  /* the agent's own user via elicitation/create; queue as fallback */
} aip_ask_via;

typedef struct aip_agent_config {
  char *name;
  aip_src_pos pos;
  uint8_t token_sha256[32];
  char *policy_path;      /* resolved against the config file's folder */
  aip_policy_doc *policy; /* loaded by aip_gateway_config_load (unless deferred) */
  /* trusted_keys is set and the policy's signature does not verify: why (`aip check` reports
   * it); NULL when verified, not checked, or deferred (`aip serve` checks in policy_load.c) */
  char *signature_error;
  size_t *servers;        /* indexes into aip_gateway_config.servers */
  size_t servers_n;
  aip_tool_prefix tool_prefix;
  aip_ask_via ask_via;
  uint32_t max_sessions; /* its own quotas; 0: limits.max_sessions_per_agent, */
  uint32_t max_inflight; /* limits.max_inflight_per_agent */
} aip_agent_config;

typedef struct aip_operator_config {
  char *name;
  uint8_t token_sha256[32];
} aip_operator_config;

typedef struct aip_limits {
  uint64_t max_body;                /* "4MiB": larger POST bodies get 413 */
  uint64_t max_header_bytes;        /* "16KiB": request line + headers */
  uint32_t max_sessions;            /* 10000 */
  uint32_t max_sessions_per_agent;  /* 1000: one agent cannot take every session slot */
  uint32_t max_inflight_per_agent;  /* 1000: requests of one agent not yet answered */
  uint32_t max_server_requests_per_agent; /* 100: its servers' sampling, elicitation and roots
                                           * requests awaiting the agent's answer */
  uint64_t max_stream_buffer;       /* "4MiB": a streamed answer held for a client that does not
                                     * read while its server's pipe serves other calls too */
  uint64_t request_timeout_ms;      /* "60s": an upstream call that takes longer fails */
  uint64_t header_timeout_ms;       /* "10s": headers must arrive within this */
  uint64_t idle_timeout_ms;         /* "60s": an idle keep-alive connection is closed */
  uint64_t session_idle_timeout_ms; /* "30m": a session unused this long is ended */
  uint64_t max_upstream_message;    /* "16MiB": one JSON-RPC line from a stdio upstream */
  uint64_t max_streamed_message;    /* "1GiB": one answer streamed through DLP (above the
                                     * agent's dlp.stream_threshold), which is never held */
  uint32_t max_connections;         /* open /mcp connections; 0 (unset): derived from
                                     * RLIMIT_NOFILE at start (serve.c) */
} aip_limits;

typedef struct aip_gateway_config {
  char *path; /* the config file */
  char *dir;  /* its folder, for resolving relative paths */
  aip_listen_addr listen;
  aip_listen_addr admin_listen;
  char *store_path;
  char *audit_path;
  uint32_t audit_buffer_size;  /* records the loop may queue for the audit thread (1000) */
  aip_failover audit_on_error; /* the audit file cannot be written: block calls or allow */
  char *dlp_cache_dir;         /* serialized Hyperscan databases ("var/dlp-cache") */
  aip_strlist trusted_keys;    /* Ed25519 public keys (PEM files); set: policies must be signed
                                  (config/signing.h, checked by aip_gateway_config_load) */
  uint64_t shutdown_grace_ms;  /* SIGTERM: in-flight calls get this long to finish (30s) */
  uint64_t approvals_timeout_ms;
  uint64_t approvals_keepalive_ms; /* a call waiting for a human hears from us this often (15s) */
  uint64_t approvals_max_pending_per_agent; /* pending records per agent; over it asks fail (100) */
  uint64_t approvals_max_args_size; /* stored arguments; larger ones are stored cut (64 KiB) */
  aip_strlist allowed_origins; /* extension: extra Origin values accepted besides localhost */
  aip_limits limits;
  aip_server_config *servers;
  size_t servers_n;
  aip_agent_config *agents;
  size_t agents_n;
  aip_operator_config *operators;
  size_t operators_n;
} aip_gateway_config;

int aip_gateway_config_load(const char *path, aip_gateway_config **out, aip_error *err);
/* AIP_GWCFG_DEFER_POLICIES: leave every agents[].policy NULL. `aip serve` loads policies itself
 * (off the loop, per agent), so that one broken policy blocks only its own agent. */
#define AIP_GWCFG_DEFER_POLICIES 1u
int aip_gateway_config_load_ex(const char *path, unsigned flags, aip_gateway_config **out,
                               aip_error *err);
void aip_gateway_config_free(aip_gateway_config *cfg);

/* Parses "host:port" or "[v6]:port" (host must be a numeric address). */
int aip_parse_listen(const char *s, aip_listen_addr *out);

#endif
