/* engine_fixture.h -- helpers shared by the engine tests that start from policy YAML and raw
 * message bytes (the path a front end takes). Include after test.h. */
#ifndef AIP_ENGINE_FIXTURE_H
#define AIP_ENGINE_FIXTURE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

#define FX_HOME "/home/u"
#define FX_CWD "/home/u/work"

/* A policy from its `spec:` body (indented two spaces), loaded as "<test>" so the file
 * itself is not protected unless `path` says otherwise. */
typedef struct fx_policy {
  aip_policy_doc *doc;
  aip_policy *p;
} fx_policy;

static inline int fx_load_opts(fx_policy *f, const char *spec, const char *path,
                        const aip_policy_opts *opts) {
  char yaml[8192];
  aip_error err = {{0}};
  aip_policy_opts o = opts ? *opts : (aip_policy_opts){0};
  int rc;

  if (!o.home)
    o.home = FX_HOME;
  if (!o.cwd)
    o.cwd = FX_CWD;
  snprintf(yaml, sizeof(yaml),
           "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata:\n  name: t\nspec:\n%s",
           spec);
  memset(f, 0, sizeof(*f));
  rc = aip_policy_doc_load_string(yaml, strlen(yaml), path ? path : "<test>", &f->doc, &err);
  if (!rc)
    rc = aip_policy_compile_ex(f->doc, &o, &f->p, &err);
  if (rc)
    fprintf(stderr, "fixture policy failed: %s\n", err.msg);
  return rc;
}

static inline int fx_load(fx_policy *f, const char *spec) {
  return fx_load_opts(f, spec, NULL, NULL);
}

static inline void fx_free(fx_policy *f) {
  aip_policy_free(f->p);
  aip_policy_doc_free(f->doc);
  memset(f, 0, sizeof(*f));
}

/* One message through the front-end path: strict parse, classify, check. */
typedef struct fx_result {
  aip_json_status parse; /* not OK: the front end answers -32700 and forwards nothing */
  aip_verdict v;
  char reply[1024]; /* rendered error reply, "" when none */
} fx_result;

static inline fx_result fx_send(const aip_policy *p, aip_rate_state *rs, int64_t now, const char *json) {
  fx_result r;
  cJSON *root = NULL;
  aip_rpc_msg m;

  memset(&r, 0, sizeof(r));
  r.parse = aip_json_parse(json, strlen(json), &root);
  if (r.parse != AIP_JSON_OK)
    return r;
  aip_rpc_classify(root, &m);
  aip_policy_check_msg(p, &m, now, rs, &r.v);
  if (r.v.d.error_code) {
    aip_buf b;
    aip_buf_init(&b);
    if (aip_decision_error(&b, m.id, &r.v.d, r.v.subject) == 0)
      snprintf(r.reply, sizeof(r.reply), "%s", b.data);
    aip_buf_free(&b);
  }
  r.v.subject = r.v.tool = NULL; /* borrowed from the tree freed here */
  r.v.args = NULL;
  cJSON_Delete(root);
  return r;
}

/* Forwarded = parsed and no error (ALLOW, ALLOW_MONITOR; ASK goes to a human first). */
static inline int fx_forwarded(const fx_result *r) {
  return r->parse == AIP_JSON_OK && r->v.d.error_code == 0 && r->v.d.kind != AIP_DECISION_ASK;
}

/* A tools/call message for `name_json` (a JSON string literal, escapes allowed) and
 * `args_json` (NULL: no arguments member). */
static inline const char *fx_call(char *buf, size_t cap, const char *name_json, const char *args_json) {
  if (args_json)
    snprintf(buf, cap,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":%s,"
             "\"arguments\":%s}}",
             name_json, args_json);
  else
    snprintf(buf, cap,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":%s}}",
             name_json);
  return buf;
}

static inline aip_decision fx_tool(const aip_policy *p, aip_rate_state *rs, int64_t now,
                            const char *name, const char *args_json) {
  aip_decision d;
  cJSON *args = NULL;
  if (args_json && aip_json_parse(args_json, strlen(args_json), &args) != AIP_JSON_OK)
    fprintf(stderr, "bad args json: %s\n", args_json);
  aip_policy_check_tool(p, name, strlen(name), args, now, rs, &d);
  cJSON_Delete(args);
  return d;
}

#endif
