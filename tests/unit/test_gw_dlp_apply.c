/* test_gw_dlp_apply.c -- the DLP policy shared by the gateway and the stdio wrapper
 * (gateway/core/dlp_apply.c): request scanning per on_request_match, failover, the time budget, the
 * audit copy of arguments, the audit's counts; and the wrapper's id/method finder. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/core/dlp_apply.h"
#include "gateway/wrapper/wrapper.h"
#include "test.h"

#define KEY "AKIAIOSFODNN7EXAMPLE"
#define RED "[REDACTED:AWS Key]"

static const char *policy_yaml(const char *mode, const char *scope, int scan_requests) {
  static char y[1024];
  snprintf(y, sizeof(y),
           "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: t}\nspec:\n"
           "  dlp:\n    scan_requests: %s\n    on_request_match: %s\n    patterns:\n"
           "      - {name: AWS Key, regex: \"(AKIA|ASIA)[A-Z0-9]{16}\", scope: %s}\n"
           "      - {name: Word, regex: \"zebra\", scope: response}\n",
           scan_requests ? "true" : "false", mode, scope);
  return y;
}

typedef struct fixture {
  aip_policy_doc *doc;
  aip_dlp *dlp;
  aip_dlp_run run;
} fixture;

static int load(fixture *f, const char *yaml) {
  aip_error err = {{0}};
  memset(f, 0, sizeof(*f));
  if (aip_policy_doc_load_string(yaml, strlen(yaml), "t.yaml", &f->doc, &err) ||
      aip_dlp_compile(f->doc, NULL, &f->dlp, &err)) {
    fprintf(stderr, "load: %s\n", err.msg);
    return -1;
  }
  f->run = (aip_dlp_run){.dlp = f->dlp, .scratch = aip_dlp_scratch_new(), .doc = f->doc};
  return aip_dlp_scratch_prepare(f->run.scratch, f->dlp);
}

static void unload(fixture *f) {
  aip_dlp_scratch_free(f->run.scratch);
  aip_dlp_free(f->dlp);
  aip_policy_doc_free(f->doc);
}

static cJSON *call(const char *message) {
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "jsonrpc", "2.0");
  cJSON_AddNumberToObject(m, "id", 7);
  cJSON_AddStringToObject(m, "method", "tools/call");
  cJSON *p = cJSON_AddObjectToObject(m, "params");
  cJSON_AddStringToObject(p, "name", "echo");
  cJSON *a = cJSON_AddObjectToObject(p, "arguments");
  cJSON_AddStringToObject(a, "message", message);
  return m;
}

static const char *arg_of(const cJSON *params) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(params, "arguments");
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(a, "message");
  return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* One scan: returns the outcome; *count the AWS Key count; *redacted the new argument. */
static aip_dlp_req_outcome scan(fixture *f, const char *message, uint64_t *total, char **redacted,
                                aip_decision *d) {
  cJSON *m = call(message), *red = NULL;
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, f->dlp);
  aip_dlp_req_outcome o = aip_dlp_scan_request(&f->run, m, &c, &red, d);
  const cJSON *params = cJSON_GetObjectItemCaseSensitive(red, "params");
  *total = c.total;
  *redacted = params && arg_of(params) ? strdup(arg_of(params)) : NULL;
  cJSON_Delete(red);
  cJSON_Delete(m);
  aip_dlp_counts_free(&c);
  return o;
}

static void test_modes(void) {
  fixture f;
  aip_decision d;
  uint64_t total;
  char *red;

  CHECK_INT(load(&f, policy_yaml("block", "all", 1)), 0);
  CHECK_INT(scan(&f, "leak " KEY, &total, &red, &d), AIP_DLP_REQ_BLOCKED);
  CHECK_INT(total, 1);
  CHECK_INT(d.error_code, AIP_ERR_FORBIDDEN);
  CHECK_INT(d.kind, AIP_DECISION_BLOCK);
  CHECK_STR(d.reason, "sensitive data in request (DLP)");
  CHECK(red == NULL);
  CHECK_INT(scan(&f, "clean", &total, &red, &d), AIP_DLP_REQ_FORWARD);
  CHECK_INT(total, 0);
  /* a response-only rule does not look at arguments */
  CHECK_INT(scan(&f, "zebra", &total, &red, &d), AIP_DLP_REQ_FORWARD);
  /* the budget is disarmed after each scan: a later scan is not failed by an old deadline */
  f.doc->dlp.timeout_ms = 1;
  CHECK_INT(scan(&f, "leak " KEY, &total, &red, &d), AIP_DLP_REQ_BLOCKED);
  usleep(3000);
  const char *clean = "{\"params\":{\"arguments\":{\"a\":\"x\"}}}";
  aip_buf out;
  aip_buf_init(&out);
  CHECK_INT(aip_dlp_redact_json(f.dlp, f.run.scratch, AIP_DLP_REQUEST, clean, strlen(clean), &out,
                                NULL),
            0);
  aip_buf_free(&out);
  /* invalid UTF-8 cannot be scanned: fail closed, or forward when on_dlp_error is allow */
  CHECK_INT(scan(&f, "bad \xff", &total, &red, &d), AIP_DLP_REQ_FAILED);
  f.doc->failover.on_dlp_error = AIP_FAILOVER_ALLOW;
  CHECK_INT(scan(&f, "bad \xff", &total, &red, &d), AIP_DLP_REQ_FORWARD);
  unload(&f);

  CHECK_INT(load(&f, policy_yaml("redact", "request", 1)), 0);
  CHECK_INT(scan(&f, "leak " KEY "!", &total, &red, &d), AIP_DLP_REQ_REDACTED);
  CHECK_STR(red, "leak " RED "!");
  CHECK_INT(total, 1);
  free(red);
  /* every member is scanned (issue 11 item 9): params._meta and an extra top-level member are
   * redacted; a secret in params.name blocks even under redact */
  {
    cJSON *m = call("clean"), *rm = NULL;
    cJSON *meta = cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(m, "params"), "_meta");
    cJSON_AddStringToObject(meta, "k", KEY);
    cJSON_AddStringToObject(m, "extra", KEY);
    CHECK_INT(aip_dlp_scan_request(&f.run, m, NULL, &rm, &d), AIP_DLP_REQ_REDACTED);
    char *txt = rm ? cJSON_PrintUnformatted(rm) : NULL;
    CHECK(txt && !strstr(txt, KEY) && strstr(txt, "\"_meta\":{\"k\":\"" RED "\"}") &&
          strstr(txt, "\"extra\":\"" RED "\""));
    free(txt);
    cJSON_Delete(rm);
    rm = NULL;
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "params"), "name",
                                           cJSON_CreateString("t" KEY));
    CHECK_INT(aip_dlp_scan_request(&f.run, m, NULL, &rm, &d), AIP_DLP_REQ_BLOCKED);
    CHECK(rm == NULL);
    CHECK_INT(d.error_code, AIP_ERR_FORBIDDEN);
    cJSON_Delete(m);
  }
  unload(&f);

  CHECK_INT(load(&f, policy_yaml("warn", "all", 1)), 0);
  CHECK_INT(scan(&f, "leak " KEY, &total, &red, &d), AIP_DLP_REQ_FORWARD);
  CHECK_INT(total, 1); /* counted for the audit record */
  unload(&f);

  CHECK_INT(load(&f, policy_yaml("block", "all", 0)), 0); /* scan_requests: false */
  CHECK_INT(scan(&f, "leak " KEY, &total, &red, &d), AIP_DLP_REQ_FORWARD);
  CHECK_INT(total, 0);
  unload(&f);
}

static void test_budget(void) {
  fixture f;
  CHECK_INT(load(&f, policy_yaml("block", "all", 1)), 0);
  const char *msg = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":\"" KEY "\",\"b\":\"x\"}}";
  aip_buf out;
  aip_buf_init(&out);
  aip_dlp_run_arm(&f.run, 1); /* 1 ns: past by the first check */
  usleep(1000);
  CHECK_INT(aip_dlp_redact_json(f.dlp, f.run.scratch, AIP_DLP_RESPONSE, msg, strlen(msg), &out,
                                NULL),
            -ETIMEDOUT);
  aip_dlp_run_arm(&f.run, 0);
  out.len = 0;
  CHECK_INT(aip_dlp_run_json(&f.run, AIP_DLP_RESPONSE, msg, strlen(msg), &out, NULL), 1);
  f.doc->dlp.timeout_ms = 10000; /* a generous budget changes nothing */
  out.len = 0;
  CHECK_INT(aip_dlp_run_json(&f.run, AIP_DLP_RESPONSE, msg, strlen(msg), &out, NULL), 1);
  CHECK(strstr(out.data, RED) != NULL);
  CHECK_INT(aip_dlp_run_budget(&f.run), 10000ull * 1000000);
  aip_buf_free(&out);
  unload(&f);
}

static void test_audit_copy_and_counts(void) {
  fixture f;
  CHECK_INT(load(&f, policy_yaml("warn", "request", 1)), 0);
  cJSON *args = cJSON_Parse("{\"k\":\"" KEY "\",\"w\":\"zebra\",\"n\":1}");
  cJSON *copy = aip_dlp_redact_copy(&f.run, args); /* both the response and the request rules */
  char *s = copy ? cJSON_PrintUnformatted(copy) : NULL;
  CHECK_STR(s, "{\"k\":\"" RED "\",\"w\":\"[REDACTED:Word]\",\"n\":1}");
  free(s);
  cJSON_Delete(copy);
  cJSON *clean = cJSON_Parse("{\"k\":\"fine\"}");
  CHECK(aip_dlp_redact_copy(&f.run, clean) == NULL);
  cJSON_Delete(clean);

  aip_dlp_counts c;
  aip_dlp_counts_init(&c, f.dlp);
  aip_buf j;
  aip_buf_init(&j);
  aip_dlp_counts_json(f.dlp, &c, &j); /* nothing counted: nothing written */
  CHECK_INT(j.len, 0);
  aip_buf out;
  aip_buf_init(&out);
  const char *msg = "{\"result\":\"" KEY " " KEY " zebra\"}";
  CHECK_INT(aip_dlp_redact_json(f.dlp, f.run.scratch, AIP_DLP_RESPONSE, msg, strlen(msg), &out,
                                &c), 1);
  aip_dlp_counts_json(f.dlp, &c, &j);
  CHECK_STR(j.data, "[{\"rule\":\"Word\",\"count\":1}]");
  aip_dlp_counts_json(f.dlp, &c, &j); /* a second list extends the first: still valid JSON */
  CHECK_STR(j.data, "[{\"rule\":\"Word\",\"count\":1},{\"rule\":\"Word\",\"count\":1}]");
  aip_buf_free(&j);
  aip_buf_free(&out);
  aip_dlp_counts_free(&c);
  cJSON_Delete(args);
  unload(&f);
}

static void top(const char *text, size_t n, const char *id, const char *method) {
  aip_wrapper_top k;
  aip_wrapper_top_keys(text, n, &k);
  char a[64] = "", b[64] = "";
  if (k.id) snprintf(a, sizeof(a), "%.*s", (int)k.id_len, k.id);
  if (k.method) snprintf(b, sizeof(b), "%.*s", (int)k.method_len, k.method);
  CHECK_STR(k.id ? a : "(none)", id ? id : "(none)");
  CHECK_STR(k.method ? b : "(none)", method ? method : "(none)");
}

static void test_top_keys(void) {
  const char *r = "{\"jsonrpc\":\"2.0\",\"id\":12,\"result\":{\"id\":\"inner\",\"t\":\"a\\\"}\"}}";
  top(r, strlen(r), "12", NULL);
  const char *late = " { \"result\" : [1, {\"id\": 3}, \"x\"] , \"id\" : \"s-1\" } ";
  top(late, strlen(late), "\"s-1\"", NULL);
  const char *req = "{\"method\":\"sampling/createMessage\",\"params\":{},\"id\":\"a\"}";
  top(req, strlen(req), "\"a\"", "\"sampling/createMessage\"");
  const char *note = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1}}";
  top(note, strlen(note), NULL, "\"notifications/progress\"");
  /* a head cut inside the result: the id before it is found, one after it is not */
  const char *head = "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"content\":[{\"text\":\"xxxx";
  top(head, strlen(head), "5", NULL);
  const char *head2 = "{\"jsonrpc\":\"2.0\",\"result\":{\"content\":[{\"text\":\"xxxx";
  top(head2, strlen(head2), NULL, NULL);
  /* cut in the middle of the id's value: not found rather than half an id */
  top(r, 24, NULL, NULL);
  /* not an object, an escaped key, garbage */
  top("[{\"id\":1}]", 10, NULL, NULL);
  top("{\"\\u0069d\":1}", 13, NULL, NULL);
  top("{\"id\"", 5, NULL, NULL);
  top("", 0, NULL, NULL);
}

int main(void) {
  test_modes();
  test_budget();
  test_audit_copy_and_counts();
  test_top_keys();
  TEST_MAIN_END();
}
