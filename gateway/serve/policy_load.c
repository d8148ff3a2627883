/* policy_load.c -- an agent's policy, loaded off the loop and swapped in on it.
 *
 * Reading, parsing and compiling a policy (Hyperscan databases for allow_args and DLP can take
 * seconds for big rule sets) runs on libuv's thread pool; the loop only swaps pointers. The same
 * path serves start-up and every reload (SIGHUP, a watched file changing), so there is one way a
 * policy comes into force:
 *   - start-up: a policy that does not load leaves its agent blocked (every request refused,
 *     /readyz 503); other agents are unaffected (failover.on_policy_load_error: block; with no
 *     good policy there is nothing safe to allow, so `allow` cannot open the agent either);
 *   - reload: a policy that does not load leaves the last good one in force, is logged and
 *     counted in aip_policy_load_errors_total;
 *   - a file whose bytes did not change (SHA-256) is not recompiled, so noisy watch events cost
 *     one read.
 * A call is decided by the policy in force when it arrives; answers are redacted by the DLP in
 * force when they leave (a DLP rule added during an incident applies at once).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config/signing.h"
#include "gateway/core/dlp_cache.h"
#include "gateway/core/agent.h"
#include "gateway/core/policy_source.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

struct aip_policy_gen {
  aip_policy_doc *doc;
  aip_policy *policy;
  aip_dlp *dlp;
  int rate_limited;
  unsigned char digest[crypto_hash_sha256_BYTES]; /* of the file's bytes */
};

typedef struct load_job {
  uv_work_t work;
  aip_agent_rt *agent;
  /* inputs, copied or borrowed from the gateway config (which outlives the job) */
  const char *path;
  const char *gw_config_path;
  const char *cache_dir;
  char **key_paths; /* trusted_keys when the load was queued; none: signatures not checked */
  size_t key_paths_n;
  int check_perms;              /* refuse a file others can write (not --allow-writable-config) */
  int have_prev;
  unsigned char prev_digest[crypto_hash_sha256_BYTES];
  /* outputs */
  unsigned char digest[crypto_hash_sha256_BYTES];
  aip_policy_gen *gen;
  int unchanged;
  int rc;
  int code;          /* JSON-RPC code for a blocked agent's requests */
  char *policy_name; /* the policy's metadata.name when its signature failed */
  aip_error err;
} load_job;

static void gen_free(aip_policy_gen *g) {
  if (!g) return;
  aip_dlp_free(g->dlp);
  aip_policy_free(g->policy);
  aip_policy_doc_free(g->doc);
  free(g);
}

static void job_free(load_job *j) {
  for (size_t i = 0; i < j->key_paths_n; i++) free(j->key_paths[i]);
  free(j->key_paths);
  free(j->policy_name);
  free(j);
}

/* ---- the thread-pool side ------------------------------------------------------------------ */

int aip_agent_policy_compile(const aip_policy_doc *doc, const char *gw_config_path,
                             const char *cache_dir, aip_policy **policy, aip_dlp **dlp,
                             aip_error *err) {
  /* The gateway's own config is as off-limits to tools as the policy file is. */
  const char *extra[] = {gw_config_path, NULL};
  aip_policy_opts opts = {.extra_protected = gw_config_path ? extra : NULL};
  aip_dlp_cache_io cache;
  aip_dlp_cache_dir(&cache, cache_dir);
  aip_dlp_opts dopts = {.cache = cache_dir ? &cache : NULL};
  *policy = NULL;
  *dlp = NULL;
  int rc = aip_policy_compile_ex(doc, &opts, policy, err);
  if (!rc) rc = aip_dlp_compile(doc, &dopts, dlp, err);
  if (rc) {
    aip_policy_free(*policy);
    *policy = NULL;
  }
  return rc;
}

static int compile_gen(load_job *j, const char *text, size_t len) {
  aip_policy_gen *g = calloc(1, sizeof(*g));
  if (!g) return aip_error_set(&j->err, -ENOMEM, "out of memory");
  memcpy(g->digest, j->digest, sizeof(g->digest));
  int rc = aip_policy_doc_load_string(text, len, j->path, &g->doc, &j->err);
  if (!rc)
    rc = aip_agent_policy_compile(g->doc, j->gw_config_path, j->cache_dir, &g->policy, &g->dlp,
                                  &j->err);
  for (size_t i = 0; !rc && i < g->doc->rules_n; i++) g->rate_limited |= g->doc->rules[i].rate_count > 0;
  if (rc) {
    gen_free(g);
    return rc;
  }
  j->gen = g;
  return 0;
}

/* trusted_keys: the bytes that were verified are the bytes that get compiled. A policy that
 * fails is not compiled at all: nothing in it (methods, failover) can be trusted. Its name is
 * still read, for the -32010 answer's data.policy. Reading and verifying are the wrapper's too
 * (core/policy_source.c). */
static int verify(load_job *j, const aip_policy_src *src) {
  aip_trusted_keys keys;
  int rc = aip_trusted_keys_load((const char *const *)j->key_paths, j->key_paths_n, &keys, &j->err);
  if (!rc && (rc = aip_policy_src_verify(src, j->path, &keys, &j->policy_name, &j->err)))
    j->code = AIP_ERR_SIGNATURE_INVALID;
  aip_trusted_keys_free(&keys);
  return rc;
}

static void load_work(uv_work_t *w) {
  load_job *j = w->data;
  aip_policy_src src;
  j->code = AIP_ERR_FORBIDDEN;
  j->rc = aip_policy_src_read(j->path, j->check_perms ? AIP_POLICY_PERMS_REFUSE : AIP_POLICY_PERMS_SKIP,
                              &src, &j->err);
  if (j->rc) return;
  memcpy(j->digest, src.digest, sizeof(j->digest));
  if (j->have_prev && memcmp(j->digest, j->prev_digest, sizeof(j->digest)) == 0)
    j->unchanged = 1;
  else if (!(j->key_paths_n && (j->rc = verify(j, &src))))
    j->rc = compile_gen(j, src.text, src.len);
  aip_policy_src_free(&src);
}

/* ---- the loop side ------------------------------------------------------------------------- */

/* Per-rule DLP counters are keyed by rule name across generations, so a reload does not make
 * aip_dlp_redactions_total go backwards for the rules that stay. */
static uint64_t *carry_dlp_counts(const aip_agent_rt *a, const aip_dlp *next) {
  size_t n = next ? aip_dlp_rule_count(next) : 0;
  uint64_t *counts = calloc(n + 1, sizeof(uint64_t));
  if (!counts) return NULL;
  for (size_t i = 0; i < n && a->dlp; i++)
    for (size_t k = 0; k < aip_dlp_rule_count(a->dlp); k++)
      if (strcmp(aip_dlp_rule_name(next, i), aip_dlp_rule_name(a->dlp, k)) == 0)
        counts[i] = a->dlp_redactions[k];
  return counts;
}

/* Rate-limit buckets belong to the agent, not to a policy version: they carry over, so
 * editing a policy (or flipping it to monitor and back) does not refill anybody's bucket. */
static aip_rate_state *carry_buckets(const aip_rate_state *old, const aip_policy *next) {
  aip_rate_state *rs = aip_rate_state_new(next);
  if (rs && old) aip_rate_state_set_durable(rs, aip_rate_state_durable(old));
  const char *tool;
  size_t len;
  aip_rate_bucket b;
  for (size_t it = 0; rs && old && aip_rate_bucket_next(old, &it, &tool, &len, &b);) {
    if (aip_rate_bucket_set(rs, tool, len, &b)) {
      aip_rate_state_free(rs);
      return NULL;
    }
  }
  return rs;
}

static int install(aip_agent_rt *a, aip_policy_gen *g) {
  /* An answer streaming through the old DLP must not outlive it: cut short (fail closed),
   * first, so its redactions still count under the old rules. */
  aip_agent_streams_abort(a);
  if (g->dlp && !a->dlp_scratch && !(a->dlp_scratch = aip_dlp_scratch_new())) return -ENOMEM;
  /* a scratch grows to serve every database it was prepared for; the old one is done with */
  if (g->dlp && aip_dlp_scratch_prepare(a->dlp_scratch, g->dlp)) return -ENOMEM;
  uint64_t *counts = carry_dlp_counts(a, g->dlp);
  aip_rate_state *rs = carry_buckets(a->rate, g->policy);
  if (!counts || !rs) {
    free(counts);
    aip_rate_state_free(rs);
    return -ENOMEM;
  }
  aip_policy_gen *old = a->gen;
  a->gen = g;
  a->policy = g->policy;
  a->dlp = g->dlp;
  a->rate_limited = g->rate_limited;
  free(a->dlp_redactions);
  a->dlp_redactions = counts;
  aip_rate_state_free(a->rate);
  a->rate = rs;
  free(a->load_error);
  a->load_error = NULL;
  free(a->blocked_policy);
  a->blocked_policy = NULL;
  /* which tools are visible depends on the policy: rebuild the merged list on next use */
  aip_router_tools_changed(a);
  aip_lists_all_changed(a); /* resources reaching protected paths too */
  gen_free(old);
  return 0;
}

static void tell(aip_agent_rt *a, const char *method) {
  cJSON *msg = cJSON_CreateObject();
  if (!msg) return;
  cJSON_AddStringToObject(msg, "jsonrpc", "2.0");
  cJSON_AddStringToObject(msg, "method", method);
  for (aip_session *s = a->sessions; s; s = s->next) aip_session_push(s, msg);
  cJSON_Delete(msg);
}

/* A new policy may show or hide tools (and resources, by protected_paths): connected clients are
 * told to list them again. */
static void tell_tools_changed(aip_agent_rt *a) {
  if (!a->sessions) return;
  tell(a, "notifications/tools/list_changed");
  int resources = 0;
  for (size_t s = 0; s < a->cfg->servers_n; s++) resources |= aip_server_offers(a, s, "resources", NULL);
  if (resources) tell(a, "notifications/resources/list_changed");
}

static void log_warnings(const aip_agent_rt *a) {
  const char *w;
  for (size_t i = 0; a->dlp && (w = aip_dlp_warning(a->dlp, i)); i++)
    aip_warn("agent %s: dlp: %s", a->cfg->name, w);
}

static void load_failed(aip_agent_rt *a, load_job *j) {
  aip_gw *gw = a->gw;
  gw->metrics.policy_load_errors++;
  if (a->gen) {
    aip_error("agent %s: policy not reloaded, the version loaded before stays in force: %s",
              a->cfg->name, j->err.msg);
    return;
  }
  if (j->code == AIP_ERR_SIGNATURE_INVALID)
    aip_error("agent %s: policy signature invalid, refusing all its calls (-32010): %s",
              a->cfg->name, j->err.msg);
  else
    aip_error("agent %s: policy failed to load, the agent's requests are refused: %s",
              a->cfg->name, j->err.msg);
  free(a->load_error);
  a->load_error = strdup(j->err.msg);
  if (!a->load_error) a->load_error = strdup("out of memory"); /* non-NULL means blocked */
  a->load_error_code = j->code;
  free(a->blocked_policy);
  a->blocked_policy = j->policy_name;
  j->policy_name = NULL;
}

static void load_done(uv_work_t *w, int status) {
  load_job *j = w->data;
  aip_agent_rt *a = j->agent;
  aip_gw *gw = a->gw;
  a->loading = 0;
  gw->loads_pending--;
  if (status == UV_ECANCELED) {
    j->rc = aip_error_set(&j->err, -ECANCELED, "load cancelled");
  }
  if (j->unchanged) {
    aip_debug("agent %s: policy file unchanged", a->cfg->name);
  } else if (j->rc) {
    load_failed(a, j);
  } else if (install(a, j->gen)) {
    gen_free(j->gen);
    aip_error_set(&j->err, -ENOMEM, "out of memory");
    load_failed(a, j);
  } else {
    if (gw->started) {
      gw->metrics.policy_reloads++;
      tell_tools_changed(a);
    }
    const aip_policy_doc *d = a->gen->doc;
    aip_info("agent %s: policy %s%s%s in force (mode %s)%s", a->cfg->name,
             d->name ? d->name : j->path, d->version ? " version " : "", d->version ? d->version : "",
             d->mode == AIP_MODE_MONITOR ? "monitor" : "enforce",
             a->dlp && aip_dlp_from_cache(a->dlp) ? ", DLP databases from cache" : "");
    log_warnings(a);
  }
  job_free(j);
  if (a->reload_again && !gw->stopping) {
    a->reload_again = 0;
    aip_agent_policy_load(a);
  }
}

int aip_agent_policy_load(aip_agent_rt *a) {
  if (a->loading) {
    a->reload_again = 1; /* the file changed again while compiling: look once more after */
    return 0;
  }
  aip_gw *gw = a->gw;
  load_job *j = calloc(1, sizeof(*j));
  if (!j) return -ENOMEM;
  j->work.data = j;
  j->agent = a;
  j->path = a->cfg->policy_path;
  j->gw_config_path = gw->cfg->path;
  j->cache_dir = gw->cfg->dlp_cache_dir;
  j->check_perms = !gw->allow_writable_config;
  /* the job's own copy: a reload may replace the list while the job runs */
  j->key_paths = calloc(gw->trusted_keys.n + 1, sizeof(char *));
  for (size_t i = 0; j->key_paths && i < gw->trusted_keys.n; i++, j->key_paths_n++)
    if (!(j->key_paths[i] = strdup(gw->trusted_keys.items[i]))) break;
  if (!j->key_paths || j->key_paths_n < gw->trusted_keys.n) {
    job_free(j);
    return -ENOMEM;
  }
  if (a->gen) {
    j->have_prev = 1;
    memcpy(j->prev_digest, a->gen->digest, sizeof(j->prev_digest));
  }
  int rc = uv_queue_work(gw->loop, &j->work, load_work, load_done);
  if (rc) {
    job_free(j);
    return rc;
  }
  a->loading = 1;
  gw->loads_pending++;
  return 0;
}

int aip_policy_keys_set(aip_gw *gw, const aip_strlist *paths, aip_error *err) {
  aip_trusted_keys keys;
  int rc = aip_trusted_keys_load((const char *const *)paths->items, paths->n, &keys, err);
  aip_trusted_keys_free(&keys);
  aip_strlist copy = {0};
  if (!rc && paths->n && !(copy.items = calloc(paths->n, sizeof(char *))))
    rc = aip_error_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; !rc && i < paths->n; i++, copy.n++)
    if (!(copy.items[i] = strdup(paths->items[i]))) rc = aip_error_set(err, -ENOMEM, "out of memory");
  if (rc) {
    aip_strlist_free(&copy);
    return rc;
  }
  if (gw->trusted_keys.n && !copy.n)
    aip_warn("trusted_keys removed: policy signatures are no longer checked");
  aip_strlist_free(&gw->trusted_keys);
  gw->trusted_keys = copy;
  return 0;
}

void aip_policy_reload_all(aip_gw *gw, const char *why) {
  if (gw->stopping) return;
  aip_info("reloading policies (%s)", why);
  aip_config_reload(gw);
  for (size_t i = 0; i < gw->agents_n; i++) aip_agent_policy_load(&gw->agents[i]);
}

void aip_agent_policy_free(aip_agent_rt *a) {
  gen_free(a->gen);
  a->gen = NULL;
  a->policy = NULL;
  a->dlp = NULL;
  free(a->load_error);
  a->load_error = NULL;
  free(a->blocked_policy);
  a->blocked_policy = NULL;
}
