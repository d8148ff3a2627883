/* config_reload.c -- what a reload (SIGHUP, a watched file changing) takes from gateway.yaml.
 *
 * Policies reload whole (policy_load.c). Of the gateway config, a reload applies what operators
 * rotate on a schedule and what can change without touching a connection: the trusted keys
 * (policy signing key rotation), the agents' bearer tokens (a new token_sha256 for an agent
 * of the same name: the old token is refused from the next request on, its sessions included)
 * and the operators who work the approval queue (added, removed, tokens rotated: a token no
 * longer listed is refused from the next request on, and its open event streams end).
 * Everything else (listeners, servers, agents added or removed, policy paths, limits) needs a
 * restart, and the log says which agent or section changed. A config that no longer loads
 * changes nothing and is counted in aip_policy_load_errors_total.
 */
#include <string.h>

#include "gateway/approvals/approvals_http.h"
#include "gateway/core/agent.h"
#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

static aip_agent_rt *agent_named(aip_gw *gw, const char *name) {
  for (size_t i = 0; i < gw->agents_n; i++)
    if (strcmp(gw->agents[i].cfg->name, name) == 0) return &gw->agents[i];
  return NULL;
}

/* The token map borrows the key bytes from the agent's config: the old entry goes before the
 * bytes change, and the new one is put after. */
static void rotate_token(aip_gw *gw, aip_agent_rt *a, const uint8_t next[32]) {
  aip_agent_config *ac = &gw->cfg->agents[a - gw->agents];
  if (memcmp(ac->token_sha256, next, 32) == 0) return;
  aip_map_del(&gw->agents_by_token, ac->token_sha256, 32);
  memcpy(ac->token_sha256, next, 32);
  if (aip_map_put(&gw->agents_by_token, ac->token_sha256, 32, a)) {
    aip_error("agent %s: out of memory while rotating its token: the agent is unreachable until "
              "the next reload", ac->name);
    return;
  }
  aip_info("agent %s: bearer token rotated (the old token is refused from now on)", ac->name);
}

static void apply_agents(aip_gw *gw, const aip_gateway_config *next) {
  for (size_t i = 0; i < next->agents_n; i++) {
    const aip_agent_config *na = &next->agents[i];
    aip_agent_rt *a = agent_named(gw, na->name);
    if (!a) {
      aip_warn("agent %s is new in %s: it is served after a restart", na->name, next->path);
      continue;
    }
    /* a token that another agent in force still holds would make two agents one */
    aip_agent_rt *holder = aip_map_get(&gw->agents_by_token, na->token_sha256, 32);
    if (holder && holder != a) {
      aip_error("agent %s: its new token is agent %s's: not rotated", na->name, holder->cfg->name);
      continue;
    }
    rotate_token(gw, a, na->token_sha256);
    if (strcmp(a->cfg->policy_path, na->policy_path) != 0)
      aip_warn("agent %s: policy path changed to %s: it applies after a restart", na->name,
               na->policy_path);
  }
  for (size_t i = 0; i < gw->agents_n; i++) {
    int kept = 0;
    for (size_t k = 0; k < next->agents_n && !kept; k++)
      kept = strcmp(next->agents[k].name, gw->agents[i].cfg->name) == 0;
    if (!kept)
      aip_warn("agent %s is no longer in %s: it is served until a restart", gw->agents[i].cfg->name,
               next->path);
  }
}

static int same_operators(const aip_gateway_config *a, const aip_gateway_config *b) {
  if (a->operators_n != b->operators_n) return 0;
  for (size_t i = 0; i < a->operators_n; i++)
    if (strcmp(a->operators[i].name, b->operators[i].name) != 0 ||
        memcmp(a->operators[i].token_sha256, b->operators[i].token_sha256, 32) != 0)
      return 0;
  return 1;
}

/* The new list replaces the old whole; the map's values point into the array, which moves
 * into gw->cfg (the old one goes with `next`). */
static void apply_operators(aip_gw *gw, aip_gateway_config *next) {
  aip_gateway_config *cur = gw->cfg;
  if (same_operators(cur, next)) return;
  aip_map m;
  aip_map_init(&m);
  for (size_t i = 0; i < next->operators_n; i++) {
    aip_operator_config *op = &next->operators[i];
    if (aip_map_put(&m, op->token_sha256, sizeof(op->token_sha256), op)) {
      aip_map_free(&m);
      aip_error("operators: out of memory: the operators in force stay");
      return;
    }
  }
  aip_operator_config *ops = cur->operators;
  size_t n = cur->operators_n;
  cur->operators = next->operators, cur->operators_n = next->operators_n;
  next->operators = ops, next->operators_n = n;
  aip_map_free(&gw->operators_by_token);
  gw->operators_by_token = m;
  aip_info("operators reloaded from %s: %zu in force", next->path, cur->operators_n);
  aip_approvals_api_operators_changed(gw);
}

void aip_config_reload(aip_gw *gw) {
  aip_gateway_config *next = NULL;
  aip_error err = {{0}};
  int rc = aip_gateway_config_load_ex(gw->cfg->path, AIP_GWCFG_DEFER_POLICIES, &next, &err);
  if (!rc) rc = aip_policy_keys_set(gw, &next->trusted_keys, &err);
  if (rc) {
    gw->metrics.policy_load_errors++;
    aip_error("%s: not reloaded, the settings in force stay: %s", gw->cfg->path, err.msg);
  } else {
    apply_agents(gw, next);
    apply_operators(gw, next);
  }
  aip_gateway_config_free(next);
}
