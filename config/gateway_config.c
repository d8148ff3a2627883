/* gateway_config.c -- the gateway configurator: `aip serve --config gateway.yaml` into an
 * aip_gateway_config (INTERFACES.md section 2). Every agent's policy file is loaded here too,
 * so a config that loads is a config the gateway can run.
 *
 * Validation is strict: unknown keys, wrong types, dangling server references and reused
 * tokens are errors with the line and column where they were written. Relative paths are
 * resolved against the config file's folder, so the gateway does not depend on its cwd. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/signing.h"
#include "config/yaml_doc.h"

#define WHAT_MAX 112 /* a field path for messages: "agents[12].token_sha256" and the like */
#define PARENT_MAX 80 /* the parent part, kept shorter so that parent + "." + key fits */

/* A token hash and where it was written, for the cross-agent/operator uniqueness check. */
typedef struct tokref {
  const uint8_t *hash;
  const aip_ynode *node;
  const char *owner;
} tokref;

typedef struct gwctx {
  const aip_ydoc *y;
  aip_gateway_config *cfg;
  aip_error *err;
  tokref *toks;
  size_t ntoks;
  unsigned flags; /* AIP_GWCFG_* */
  aip_trusted_keys keys; /* loaded from trusted_keys, for the agents' policies */
} gwctx;

/* ---- helpers ------------------------------------------------------------------------------- */

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

/* "dir/p" unless p is absolute; with dir "." the path stays as written. */
static int resolve(const char *dir, const char *p, char **out, aip_error *err) {
  char *r;
  if (p[0] == '/' || strcmp(dir, ".") == 0) {
    r = strdup(p);
  } else {
    size_t n = strlen(dir) + strlen(p) + 2;
    r = malloc(n);
    if (r) snprintf(r, n, "%s/%s", dir, p);
  }
  if (!r) return aip_error_set(err, -ENOMEM, "out of memory");
  free(*out);
  *out = r;
  return 0;
}

/* Reads an optional path and resolves it; *out keeps its (already resolved) default. */
static int read_path(gwctx *c, const aip_ynode *n, const char *what, char **out) {
  char *s = NULL;
  int rc = aip_y_str(c->y, n, what, &s, c->err);
  if (rc || !s) return rc;
  if (!s[0]) rc = aip_y_errf(c->y, n, c->err, "%s: must not be empty", what);
  else rc = resolve(c->cfg->dir, s, out, c->err);
  free(s);
  return rc;
}

static int name_ok(const char *s, const char *extra) {
  size_t n = strlen(s);
  if (n == 0 || n > 64) return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && !strchr(extra, *s)) return 0;
  return 1;
}

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static int read_listen(gwctx *c, const aip_ynode *n, const char *what, aip_listen_addr *out) {
  char *s = NULL, q[AIP_Y_QUOTE_MAX];
  int rc = aip_y_str(c->y, n, what, &s, c->err);
  if (rc || !s) return rc;
  aip_listen_addr a = {0};
  rc = aip_parse_listen(s, &a);
  if (rc == -ENOMEM) rc = aip_error_set(c->err, rc, "out of memory");
  else if (rc)
    rc = aip_y_errf(c->y, n, c->err,
                    "%s: invalid listen address %s: expected \"IPv4:port\", \"[IPv6]:port\" or "
                    "\"localhost:port\" with a port from 1 to 65535",
                    what, aip_y_quote(q, sizeof q, s));
  free(s);
  if (rc) return rc;
  free(out->host);
  *out = a;
  return 0;
}

/* Sizes and durations of zero would disable a protection (or hang), so they are refused. */
static int read_positive_size(gwctx *c, const aip_ynode *n, const char *what, uint64_t *out) {
  int rc = aip_y_size(c->y, n, what, out, c->err);
  if (!rc && *out == 0) rc = aip_y_errf(c->y, n, c->err, "%s: must be greater than 0", what);
  return rc;
}

static int read_positive_duration(gwctx *c, const aip_ynode *n, const char *what,
                                  uint64_t *out) {
  int rc = aip_y_duration(c->y, n, what, out, c->err);
  if (!rc && *out == 0) rc = aip_y_errf(c->y, n, c->err, "%s: must be greater than 0", what);
  return rc;
}

/* ---- simple sections ----------------------------------------------------------------------- */

static int parse_limits(gwctx *c, const aip_ynode *n) {
  static const char *const keys[] = {"max_body",        "max_header_bytes", "max_sessions",
                                     "request_timeout", "header_timeout",   "idle_timeout",
                                     "session_idle_timeout", "max_upstream_message",
                                     "max_streamed_message", "max_connections",
                                     "max_sessions_per_agent", "max_inflight_per_agent",
                                     "max_stream_buffer", "max_server_requests_per_agent", NULL};
  const aip_ynode *v[14];
  aip_limits *l = &c->cfg->limits;
  long long sessions = l->max_sessions, conns = l->max_connections,
            per_agent = l->max_sessions_per_agent, inflight = l->max_inflight_per_agent,
            s2c = l->max_server_requests_per_agent;
  int rc = aip_y_fields(c->y, n, "limits", keys, v, c->err);
  if (!rc) rc = read_positive_size(c, v[0], "limits.max_body", &l->max_body);
  if (!rc) rc = read_positive_size(c, v[1], "limits.max_header_bytes", &l->max_header_bytes);
  if (!rc)
    rc = aip_y_int(c->y, v[2], "limits.max_sessions", 1, 10000000, &sessions, c->err);
  l->max_sessions = (uint32_t)sessions;
  if (!rc) rc = read_positive_duration(c, v[3], "limits.request_timeout", &l->request_timeout_ms);
  if (!rc) rc = read_positive_duration(c, v[4], "limits.header_timeout", &l->header_timeout_ms);
  if (!rc) rc = read_positive_duration(c, v[5], "limits.idle_timeout", &l->idle_timeout_ms);
  if (!rc)
    rc = read_positive_duration(c, v[6], "limits.session_idle_timeout",
                                &l->session_idle_timeout_ms);
  if (!rc)
    rc = read_positive_size(c, v[7], "limits.max_upstream_message", &l->max_upstream_message);
  if (!rc)
    rc = read_positive_size(c, v[8], "limits.max_streamed_message", &l->max_streamed_message);
  if (!rc)
    rc = aip_y_int(c->y, v[9], "limits.max_connections", 1, 10000000, &conns, c->err);
  l->max_connections = (uint32_t)conns;
  if (!rc)
    rc = aip_y_int(c->y, v[10], "limits.max_sessions_per_agent", 1, 10000000, &per_agent, c->err);
  l->max_sessions_per_agent = (uint32_t)per_agent;
  if (!rc)
    rc = aip_y_int(c->y, v[11], "limits.max_inflight_per_agent", 1, 10000000, &inflight, c->err);
  l->max_inflight_per_agent = (uint32_t)inflight;
  if (!rc)
    rc = read_positive_size(c, v[12], "limits.max_stream_buffer", &l->max_stream_buffer);
  if (!rc)
    rc = aip_y_int(c->y, v[13], "limits.max_server_requests_per_agent", 1, 10000000, &s2c,
                   c->err);
  l->max_server_requests_per_agent = (uint32_t)s2c;
  return rc;
}

/* Origins are compared verbatim with the Origin header, so they must look like one. */
static int parse_origins(gwctx *c, const aip_ynode *n) {
  aip_strlist *l = &c->cfg->allowed_origins;
  int rc = aip_y_strlist(c->y, n, "allowed_origins", l, c->err);
  for (size_t i = 0; i < l->n && !rc; i++) {
    const char *o = l->items[i];
    const char *host = strncmp(o, "http://", 7) == 0    ? o + 7
                       : strncmp(o, "https://", 8) == 0 ? o + 8
                                                        : NULL;
    if (!host || !*host || strchr(host, '/')) {
      char q[AIP_Y_QUOTE_MAX];
      aip_ynode at = {.pos = l->pos[i]};
      rc = aip_y_errf(c->y, &at, c->err,
                      "allowed_origins: invalid origin %s: expected scheme://host[:port] with "
                      "scheme http or https and no path",
                      aip_y_quote(q, sizeof q, o));
    }
  }
  return rc;
}

/* admin and store are one-key sections. */
static int parse_one_key(gwctx *c, const aip_ynode *n, const char *section, const char *key,
                         const aip_ynode **out) {
  const char *keys[] = {key, NULL};
  return aip_y_fields(c->y, n, section, keys, out, c->err);
}

static int read_failover(gwctx *c, const aip_ynode *n, const char *what, aip_failover *out) {
  char *s = NULL, q[AIP_Y_QUOTE_MAX];
  int rc = aip_y_str(c->y, n, what, &s, c->err);
  if (!rc && s) {
    if (strcmp(s, "block") == 0) *out = AIP_FAILOVER_BLOCK;
    else if (strcmp(s, "allow") == 0) *out = AIP_FAILOVER_ALLOW;
    else rc = aip_y_errf(c->y, n, c->err, "%s: invalid value %s, expected block or allow", what,
                         aip_y_quote(q, sizeof q, s));
  }
  free(s);
  return rc;
}

/* keepalive: how often a call held for a human gets a progress notification or an SSE
 * comment; at least 100ms, so a typo cannot turn it into a busy loop. */
/* max_pending_per_agent bounds the queue (store rows) each agent can fill; max_args_size bounds
 * each stored record, so a page of the list stays small (1 KiB to 1 MiB). */
static int parse_approvals(gwctx *c, const aip_ynode *n) {
  static const char *const keys[] = {"timeout", "keepalive", "max_pending_per_agent",
                                     "max_args_size", NULL};
  const aip_ynode *v[4];
  long long pending = (long long)c->cfg->approvals_max_pending_per_agent;
  int rc = aip_y_fields(c->y, n, "approvals", keys, v, c->err);
  if (!rc) rc = read_positive_duration(c, v[0], "approvals.timeout", &c->cfg->approvals_timeout_ms);
  if (!rc) rc = aip_y_duration(c->y, v[1], "approvals.keepalive", &c->cfg->approvals_keepalive_ms, c->err);
  if (!rc && c->cfg->approvals_keepalive_ms < 100)
    rc = aip_y_errf(c->y, v[1], c->err, "approvals.keepalive: must be at least 100ms");
  if (!rc)
    rc = aip_y_int(c->y, v[2], "approvals.max_pending_per_agent", 1, 1000000, &pending, c->err);
  c->cfg->approvals_max_pending_per_agent = (uint64_t)pending;
  if (!rc) rc = aip_y_size(c->y, v[3], "approvals.max_args_size", &c->cfg->approvals_max_args_size, c->err);
  if (!rc && (c->cfg->approvals_max_args_size < 1024 || c->cfg->approvals_max_args_size > (1u << 20)))
    rc = aip_y_errf(c->y, v[3], c->err, "approvals.max_args_size: must be between 1KiB and 1MiB");
  return rc;
}

/* `async` is the operations guide's key: records are always written by the audit thread, so
 * it is accepted (as a boolean) and changes nothing. */
static int parse_audit(gwctx *c, const aip_ynode *n) {
  static const char *const keys[] = {"path", "buffer_size", "on_error", "async", NULL};
  const aip_ynode *v[4];
  long long size = c->cfg->audit_buffer_size;
  int async = 1;
  int rc = aip_y_fields(c->y, n, "audit", keys, v, c->err);
  if (!rc) rc = read_path(c, v[0], "audit.path", &c->cfg->audit_path);
  if (!rc) rc = aip_y_int(c->y, v[1], "audit.buffer_size", 1, 1000000, &size, c->err);
  c->cfg->audit_buffer_size = (uint32_t)size;
  if (!rc) rc = read_failover(c, v[2], "audit.on_error", &c->cfg->audit_on_error);
  if (!rc) rc = aip_y_bool(c->y, v[3], "audit.async", &async, c->err);
  return rc;
}

static int parse_sections(gwctx *c, const aip_ynode *const *v) {
  aip_gateway_config *cfg = c->cfg;
  const aip_ynode *x;
  int rc = read_listen(c, v[0], "listen", &cfg->listen);
  if (!rc) rc = parse_one_key(c, v[1], "admin", "listen", &x);
  if (!rc) rc = read_listen(c, x, "admin.listen", &cfg->admin_listen);
  if (!rc) rc = parse_one_key(c, v[2], "store", "path", &x);
  if (!rc) rc = read_path(c, x, "store.path", &cfg->store_path);
  if (!rc) rc = parse_audit(c, v[3]);
  if (!rc) rc = parse_approvals(c, v[4]);
  if (!rc) rc = parse_limits(c, v[5]);
  if (!rc) rc = parse_origins(c, v[6]);
  if (!rc) rc = read_path(c, v[10], "dlp_cache", &cfg->dlp_cache_dir);
  if (!rc) rc = aip_y_strlist(c->y, v[11], "trusted_keys", &cfg->trusted_keys, c->err);
  for (size_t i = 0; !rc && i < cfg->trusted_keys.n; i++)
    rc = resolve(cfg->dir, cfg->trusted_keys.items[i], &cfg->trusted_keys.items[i], c->err);
  if (!rc && cfg->trusted_keys.n) {
    aip_error e = {{0}};
    rc = aip_trusted_keys_load((const char *const *)cfg->trusted_keys.items, cfg->trusted_keys.n,
                               &c->keys, &e);
    if (rc) rc = aip_y_errf(c->y, v[11], c->err, "trusted_keys: %s", e.msg);
  }
  if (!rc) rc = aip_y_duration(c->y, v[12], "shutdown_grace", &cfg->shutdown_grace_ms, c->err);
  return rc;
}

/* ---- servers ------------------------------------------------------------------------------- */

static int header_name_ok(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s)) return 0;
  return 1;
}

static int header_value_ok(const char *s) {
  for (; *s; s++)
    if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f) return 0;
  return 1;
}

static int check_kv(gwctx *c, const aip_ynode *map, const char *what, int headers) {
  for (size_t i = 0; i + 1 < map->n; i += 2) {
    const aip_ynode *k = map->items[i], *v = map->items[i + 1];
    char q[AIP_Y_QUOTE_MAX];
    if (headers && !header_name_ok(k->value))
      return aip_y_errf(c->y, k, c->err, "%s: invalid header name %s", what,
                        aip_y_quote(q, sizeof q, k->value));
    if (headers && !header_value_ok(v->value))
      return aip_y_errf(c->y, v, c->err, "%s: header values must not contain control characters",
                        what);
    if (!headers && (!k->value[0] || strchr(k->value, '=')))
      return aip_y_errf(c->y, k, c->err, "%s: invalid variable name %s", what,
                        aip_y_quote(q, sizeof q, k->value));
  }
  return 0;
}

static int parse_command(gwctx *c, const aip_ynode *n, const char *what, aip_server_config *s) {
  aip_strlist l = {0};
  int rc = aip_y_strlist(c->y, n, what, &l, c->err);
  if (rc) return rc;
  if (l.n == 0 || !l.items[0][0]) {
    aip_strlist_free(&l);
    return aip_y_errf(c->y, n, c->err,
                      "%s: expected a non-empty list such as [\"node\", \"server.js\"]", what);
  }
  s->command = realloc(l.items, (l.n + 1) * sizeof *l.items); /* argv needs a NULL at the end */
  if (!s->command) {
    aip_strlist_free(&l);
    return aip_error_set(c->err, -ENOMEM, "out of memory");
  }
  s->command[l.n] = NULL;
  s->command_n = l.n;
  free(l.pos);
  return 0;
}

static int parse_server(gwctx *c, const aip_ynode *key, const aip_ynode *n,
                        aip_server_config *s) {
  static const char *const keys[] = {"command", "env", "cwd", "url", "headers", NULL};
  const aip_ynode *v[5];
  char what[PARENT_MAX], sub[WHAT_MAX], q[AIP_Y_QUOTE_MAX];
  snprintf(what, sizeof what, "servers.%s", key->value);
  s->pos = key->pos;
  if (!(s->name = strdup(key->value))) return aip_error_set(c->err, -ENOMEM, "out of memory");
  if (!name_ok(s->name, "") || strstr(s->name, "__"))
    return aip_y_errf(c->y, key, c->err,
                      "invalid server name %s: use 1-64 letters, digits, '_' or '-', without "
                      "\"__\" (it separates server and tool in prefixed tool names)",
                      aip_y_quote(q, sizeof q, s->name));
  if (n->kind != AIP_YMAP)
    return aip_y_errf(c->y, n, c->err, "%s: expected a mapping with `command` or `url`", what);
  int rc = aip_y_fields(c->y, n, what, keys, v, c->err);
  if (rc) return rc;
  if (!v[0] == !v[3])
    return aip_y_errf(c->y, key, c->err, "%s: set exactly one of `command` (stdio) or `url`",
                      what);
  if (v[3] && (v[1] || v[2]))
    return aip_y_errf(c->y, v[1] ? v[1] : v[2], c->err,
                      "%s: `env` and `cwd` apply to `command` servers only", what);
  if (v[0] && v[4])
    return aip_y_errf(c->y, v[4], c->err, "%s: `headers` apply to `url` servers only", what);
  snprintf(sub, sizeof sub, "%s.command", what);
  if (v[0]) rc = parse_command(c, v[0], sub, s);
  snprintf(sub, sizeof sub, "%s.env", what);
  if (!rc) rc = aip_y_kvlist(c->y, v[1], sub, &s->env, c->err);
  if (!rc && v[1] && !aip_y_is_null(v[1])) rc = check_kv(c, v[1], sub, 0);
  snprintf(sub, sizeof sub, "%s.cwd", what);
  if (!rc) rc = read_path(c, v[2], sub, &s->cwd);
  snprintf(sub, sizeof sub, "%s.url", what);
  if (!rc) rc = aip_y_str(c->y, v[3], sub, &s->url, c->err);
  if (!rc && v[3] && (!s->url || (strncmp(s->url, "http://", 7) && strncmp(s->url, "https://", 8))))
    return aip_y_errf(c->y, v[3], c->err, "%s: expected an http:// or https:// URL", sub);
  snprintf(sub, sizeof sub, "%s.headers", what);
  if (!rc) rc = aip_y_kvlist(c->y, v[4], sub, &s->headers, c->err);
  if (!rc && v[4] && !aip_y_is_null(v[4])) rc = check_kv(c, v[4], sub, 1);
  return rc;
}

static int parse_servers(gwctx *c, const aip_ynode *n) {
  aip_gateway_config *cfg = c->cfg;
  if (!n || aip_y_is_null(n)) return 0;
  if (n->kind != AIP_YMAP)
    return aip_y_errf(c->y, n, c->err, "servers: expected a mapping of name -> server");
  size_t count = n->n / 2;
  if (count == 0) return 0;
  cfg->servers = calloc(count, sizeof *cfg->servers);
  if (!cfg->servers) return aip_error_set(c->err, -ENOMEM, "out of memory");
  int rc = 0;
  for (size_t i = 0; i < count && !rc; i++) {
    cfg->servers_n++;
    rc = parse_server(c, n->items[2 * i], n->items[2 * i + 1], &cfg->servers[i]);
  }
  return rc;
}

/* ---- agents and operators ------------------------------------------------------------------ */

static int read_token(gwctx *c, const aip_ynode *n, const aip_ynode *parent, const char *what,
                      const char *owner, uint8_t out[32]) {
  char *s = NULL;
  int rc = aip_y_str(c->y, n, what, &s, c->err);
  if (rc) return rc;
  if (!s) return aip_y_errf(c->y, parent, c->err, "%s: missing required field", what);
  int ok = strlen(s) == 64;
  for (size_t i = 0; ok && i < 32; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) ok = 0;
    else out[i] = (uint8_t)(hi << 4 | lo);
  }
  free(s);
  if (!ok)
    return aip_y_errf(c->y, n, c->err,
                      "%s: expected 64 hex characters (the SHA-256 of the bearer token; "
                      "`aip token new` prints one)",
                      what);
  c->toks[c->ntoks++] = (tokref){out, n, owner};
  return 0;
}

static int tok_cmp(const void *a, const void *b) {
  const tokref *x = a, *y = b;
  int r = memcmp(x->hash, y->hash, 32);
  if (r) return r;
  if (x->node->pos.line != y->node->pos.line) return x->node->pos.line < y->node->pos.line ? -1 : 1;
  return (x->node->pos.col > y->node->pos.col) - (x->node->pos.col < y->node->pos.col);
}

/* A token must identify exactly one principal: sorted, so this is O(n log n). */
static int check_tokens_unique(gwctx *c) {
  qsort(c->toks, c->ntoks, sizeof *c->toks, tok_cmp);
  for (size_t i = 1; i < c->ntoks; i++) {
    if (memcmp(c->toks[i].hash, c->toks[i - 1].hash, 32) == 0)
      return aip_y_errf(c->y, c->toks[i].node, c->err,
                        "token_sha256 is already used by %s (each agent and operator needs its "
                        "own token)",
                        c->toks[i - 1].owner);
  }
  return 0;
}

static int read_name(gwctx *c, const aip_ynode *n, const aip_ynode *parent, const char *what,
                     const char *extra, char **out) {
  char q[AIP_Y_QUOTE_MAX];
  int rc = aip_y_str(c->y, n, what, out, c->err);
  if (rc) return rc;
  if (!*out) return aip_y_errf(c->y, parent, c->err, "%s: missing required field", what);
  if (!name_ok(*out, extra))
    return aip_y_errf(c->y, n, c->err, "%s: invalid name %s: use 1-64 letters, digits or \"_-%s\"",
                      what, aip_y_quote(q, sizeof q, *out), extra);
  return 0;
}

static int parse_agent_servers(gwctx *c, const aip_ynode *n, const char *what,
                               aip_agent_config *a) {
  aip_strlist l = {0};
  char q[AIP_Y_QUOTE_MAX];
  int rc = aip_y_strlist(c->y, n, what, &l, c->err);
  if (!rc && l.n && !(a->servers = calloc(l.n, sizeof *a->servers)))
    rc = aip_error_set(c->err, -ENOMEM, "out of memory");
  for (size_t i = 0; i < l.n && !rc; i++) {
    aip_ynode at = {.pos = l.pos[i]};
    size_t j = 0;
    while (j < c->cfg->servers_n && strcmp(c->cfg->servers[j].name, l.items[i]) != 0) j++;
    if (j == c->cfg->servers_n) {
      rc = aip_y_errf(c->y, &at, c->err, "%s: unknown server %s (not defined under `servers`)",
                      what, aip_y_quote(q, sizeof q, l.items[i]));
      break;
    }
    for (size_t k = 0; k < a->servers_n && !rc; k++)
      if (a->servers[k] == j)
        rc = aip_y_errf(c->y, &at, c->err, "%s: server %s is listed twice", what,
                        aip_y_quote(q, sizeof q, l.items[i]));
    if (!rc) a->servers[a->servers_n++] = j;
  }
  aip_strlist_free(&l);
  return rc;
}

/* The agent's own quotas; 0 (absent) means the limits.*_per_agent default. */
static int parse_agent_quotas(gwctx *c, const aip_ynode *sessions, const aip_ynode *inflight,
                              const char *what, aip_agent_config *a) {
  char sub[WHAT_MAX];
  long long v = 0;
  snprintf(sub, sizeof sub, "%s.max_sessions", what);
  int rc = aip_y_int(c->y, sessions, sub, 1, 10000000, &v, c->err);
  a->max_sessions = (uint32_t)v;
  v = 0;
  snprintf(sub, sizeof sub, "%s.max_inflight", what);
  if (!rc) rc = aip_y_int(c->y, inflight, sub, 1, 10000000, &v, c->err);
  a->max_inflight = (uint32_t)v;
  return rc;
}

static int parse_agent(gwctx *c, const aip_ynode *n, size_t idx, aip_agent_config *a) {
  static const char *const keys[] = {"name", "token_sha256", "policy", "servers", "tool_prefix",
                                     "ask_via", "max_sessions", "max_inflight", NULL};
  const aip_ynode *v[8];
  char what[PARENT_MAX], sub[WHAT_MAX], q[AIP_Y_QUOTE_MAX];
  snprintf(what, sizeof what, "agents[%zu]", idx);
  a->pos = n->pos;
  if (n->kind != AIP_YMAP) return aip_y_errf(c->y, n, c->err, "%s: expected a mapping", what);
  int rc = aip_y_fields(c->y, n, what, keys, v, c->err);
  snprintf(sub, sizeof sub, "%s.name", what);
  if (!rc) rc = read_name(c, v[0], n, sub, ".", &a->name);
  /* O(n^2) over agents; fine for the tens to hundreds a gateway serves. */
  for (size_t i = 0; !rc && i < (size_t)(a - c->cfg->agents); i++)
    if (strcmp(c->cfg->agents[i].name, a->name) == 0)
      rc = aip_y_errf(c->y, v[0], c->err, "%s: agent %s is defined twice", sub,
                      aip_y_quote(q, sizeof q, a->name));
  snprintf(sub, sizeof sub, "%s.token_sha256", what);
  if (!rc) rc = read_token(c, v[1], n, sub, a->name, a->token_sha256);
  snprintf(sub, sizeof sub, "%s.servers", what);
  if (!rc) rc = parse_agent_servers(c, v[3], sub, a);
  if (!rc && v[4]) {
    static const char *const prefixes[] = {"auto", "always", "never", NULL};
    char *p = NULL;
    snprintf(sub, sizeof sub, "%s.tool_prefix", what);
    rc = aip_y_str(c->y, v[4], sub, &p, c->err);
    size_t k = 0;
    while (!rc && p && prefixes[k] && strcmp(prefixes[k], p) != 0) k++;
    if (!rc && p && !prefixes[k])
      rc = aip_y_errf(c->y, v[4], c->err, "%s: invalid value %s, expected auto, always or never",
                      sub, aip_y_quote(q, sizeof q, p));
    if (!rc && p) a->tool_prefix = (aip_tool_prefix)k; /* same order as the enum */
    free(p);
  }
  if (!rc && v[5]) {
    char *p = NULL;
    snprintf(sub, sizeof sub, "%s.ask_via", what);
    rc = aip_y_str(c->y, v[5], sub, &p, c->err);
    if (!rc && p && strcmp(p, "elicitation") == 0) a->ask_via = AIP_ASK_VIA_ELICITATION;
    else if (!rc && p && strcmp(p, "queue") != 0)
      rc = aip_y_errf(c->y, v[5], c->err, "%s: invalid value %s, expected queue or elicitation",
                      sub, aip_y_quote(q, sizeof q, p));
    free(p);
  }
  if (!rc) rc = parse_agent_quotas(c, v[6], v[7], what, a);
  snprintf(sub, sizeof sub, "%s.policy", what);
  if (!rc) rc = read_path(c, v[2], sub, &a->policy_path);
  if (!rc && !a->policy_path) rc = aip_y_errf(c->y, n, c->err, "%s: missing required field", sub);
  /* The policy's own errors already say file:line:col; they are passed on unchanged. A policy
   * that fails its signature check still loads, with signature_error saying why. */
  if (!rc && !(c->flags & AIP_GWCFG_DEFER_POLICIES))
    rc = aip_policy_doc_load_trusted(a->policy_path, &c->keys, &a->policy, &a->signature_error,
                                     c->err);
  return rc;
}

static int parse_operator(gwctx *c, const aip_ynode *n, size_t idx, aip_operator_config *o) {
  static const char *const keys[] = {"name", "token_sha256", NULL};
  const aip_ynode *v[2];
  char what[PARENT_MAX], sub[WHAT_MAX], q[AIP_Y_QUOTE_MAX];
  snprintf(what, sizeof what, "operators[%zu]", idx);
  if (n->kind != AIP_YMAP) return aip_y_errf(c->y, n, c->err, "%s: expected a mapping", what);
  int rc = aip_y_fields(c->y, n, what, keys, v, c->err);
  snprintf(sub, sizeof sub, "%s.name", what);
  /* '@' so that operators can be named by e-mail address. */
  if (!rc) rc = read_name(c, v[0], n, sub, ".@", &o->name);
  for (size_t i = 0; !rc && i < (size_t)(o - c->cfg->operators); i++)
    if (strcmp(c->cfg->operators[i].name, o->name) == 0)
      rc = aip_y_errf(c->y, v[0], c->err, "%s: operator %s is defined twice", sub,
                      aip_y_quote(q, sizeof q, o->name));
  snprintf(sub, sizeof sub, "%s.token_sha256", what);
  if (!rc) rc = read_token(c, v[1], n, sub, o->name, o->token_sha256);
  return rc;
}

static int parse_principals(gwctx *c, const aip_ynode *agents, const aip_ynode *operators) {
  aip_gateway_config *cfg = c->cfg;
  aip_ynode *const *ag, *const *op;
  size_t nag, nop;
  int rc = aip_y_seq(c->y, agents, "agents", &ag, &nag, c->err);
  if (!rc) rc = aip_y_seq(c->y, operators, "operators", &op, &nop, c->err);
  if (rc) return rc;
  if (nag + nop == 0) return 0;
  c->toks = calloc(nag + nop, sizeof *c->toks);
  cfg->agents = nag ? calloc(nag, sizeof *cfg->agents) : NULL;
  cfg->operators = nop ? calloc(nop, sizeof *cfg->operators) : NULL;
  if (!c->toks || (nag && !cfg->agents) || (nop && !cfg->operators))
    return aip_error_set(c->err, -ENOMEM, "out of memory");
  /* Operators first: they are cheap, while each agent loads a policy file. */
  for (size_t i = 0; i < nop && !rc; i++) {
    cfg->operators_n++;
    rc = parse_operator(c, op[i], i, &cfg->operators[i]);
  }
  for (size_t i = 0; i < nag && !rc; i++) {
    cfg->agents_n++;
    rc = parse_agent(c, ag[i], i, &cfg->agents[i]);
  }
  if (!rc) rc = check_tokens_unique(c);
  return rc;
}

/* ---- public -------------------------------------------------------------------------------- */

static int set_defaults(aip_gateway_config *cfg, const char *path, aip_error *err) {
  cfg->path = strdup(path);
  cfg->dir = dir_of(path);
  if (!cfg->path || !cfg->dir) return aip_error_set(err, -ENOMEM, "out of memory");
  int rc = aip_parse_listen("127.0.0.1:8080", &cfg->listen);
  if (!rc) rc = aip_parse_listen("127.0.0.1:9091", &cfg->admin_listen);
  if (rc) return aip_error_set(err, rc, "out of memory");
  rc = resolve(cfg->dir, "var/aip.db", &cfg->store_path, err);
  if (!rc) rc = resolve(cfg->dir, "var/aip-audit.jsonl", &cfg->audit_path, err);
  if (!rc) rc = resolve(cfg->dir, "var/dlp-cache", &cfg->dlp_cache_dir, err);
  cfg->audit_buffer_size = 1000;
  cfg->shutdown_grace_ms = 30 * 1000;
  cfg->approvals_timeout_ms = 5 * 60 * 1000;
  cfg->approvals_keepalive_ms = 15 * 1000;
  cfg->approvals_max_pending_per_agent = 100;
  cfg->approvals_max_args_size = 64 * 1024;
  cfg->limits = (aip_limits){
      .max_body = 4 * 1024 * 1024,
      .max_header_bytes = 16 * 1024,
      .max_sessions = 10000,
      .max_sessions_per_agent = 1000,
      .max_inflight_per_agent = 1000,
      .max_server_requests_per_agent = 100,
      .max_stream_buffer = 4 * 1024 * 1024,
      .request_timeout_ms = 60 * 1000,
      .header_timeout_ms = 10 * 1000,
      .idle_timeout_ms = 60 * 1000,
      .session_idle_timeout_ms = 30 * 60 * 1000,
      .max_upstream_message = 16 * 1024 * 1024,
      .max_streamed_message = 1024ull * 1024 * 1024,
  };
  return rc;
}

/* The last checks: a gateway without servers or agents, or an agent without servers, cannot do
 * anything, so such a config is a mistake rather than a valid empty setup. */
static int check_required(gwctx *c, const aip_ynode *servers, const aip_ynode *agents) {
  aip_gateway_config *cfg = c->cfg;
  if (cfg->servers_n == 0)
    return aip_y_errf(c->y, servers, c->err, "servers: define at least one upstream MCP server");
  if (cfg->agents_n == 0)
    return aip_y_errf(c->y, agents, c->err, "agents: define at least one agent");
  for (size_t i = 0; i < cfg->agents_n; i++) {
    if (cfg->agents[i].servers_n) continue;
    aip_ynode at = {.pos = cfg->agents[i].pos};
    return aip_y_errf(c->y, &at, c->err, "agents[%zu].servers: list at least one server", i);
  }
  return 0;
}

static int parse_root(gwctx *c) {
  static const char *const keys[] = {"listen",  "admin",     "store",        "audit",
                                     "approvals", "limits",  "allowed_origins",
                                     "servers", "agents",    "operators",    "dlp_cache",
                                     "trusted_keys", "shutdown_grace", NULL};
  const aip_ynode *v[13];
  int rc = aip_y_fields(c->y, c->y->root, "the gateway config", keys, v, c->err);
  if (!rc) rc = parse_sections(c, v);
  if (!rc) rc = parse_servers(c, v[7]);
  if (!rc) rc = parse_principals(c, v[8], v[9]);
  if (!rc) rc = check_required(c, v[7], v[8]);
  return rc;
}

int aip_gateway_config_load(const char *path, aip_gateway_config **out, aip_error *err) {
  return aip_gateway_config_load_ex(path, 0, out, err);
}

int aip_gateway_config_load_ex(const char *path, unsigned flags, aip_gateway_config **out,
                               aip_error *err) {
  *out = NULL;
  aip_gateway_config *cfg = calloc(1, sizeof *cfg);
  if (!cfg) return aip_error_set(err, -ENOMEM, "out of memory");
  aip_ydoc *y = NULL;
  int rc = set_defaults(cfg, path, err);
  if (!rc) rc = aip_ydoc_load_file(path, &y, err);
  gwctx c = {.y = y, .cfg = cfg, .err = err, .flags = flags};
  if (!rc) rc = parse_root(&c);
  free(c.toks);
  aip_trusted_keys_free(&c.keys);
  aip_ydoc_free(y);
  if (rc) {
    aip_gateway_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

static void server_free(aip_server_config *s) {
  free(s->name);
  for (size_t i = 0; i < s->command_n; i++) free(s->command[i]);
  free(s->command);
  aip_kvlist_free(&s->env);
  free(s->cwd);
  free(s->url);
  aip_kvlist_free(&s->headers);
}

void aip_gateway_config_free(aip_gateway_config *cfg) {
  if (!cfg) return;
  free(cfg->path);
  free(cfg->dir);
  free(cfg->listen.host);
  free(cfg->admin_listen.host);
  free(cfg->store_path);
  free(cfg->audit_path);
  free(cfg->dlp_cache_dir);
  aip_strlist_free(&cfg->trusted_keys);
  aip_strlist_free(&cfg->allowed_origins);
  for (size_t i = 0; i < cfg->servers_n; i++) server_free(&cfg->servers[i]);
  free(cfg->servers);
  for (size_t i = 0; i < cfg->agents_n; i++) {
    free(cfg->agents[i].name);
    free(cfg->agents[i].policy_path);
    aip_policy_doc_free(cfg->agents[i].policy);
    free(cfg->agents[i].signature_error);
    free(cfg->agents[i].servers);
  }
  free(cfg->agents);
  for (size_t i = 0; i < cfg->operators_n; i++) free(cfg->operators[i].name);
  free(cfg->operators);
  free(cfg);
}
