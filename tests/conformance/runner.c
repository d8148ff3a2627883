/* runner.c -- aip-conformance: runs the AIP conformance vectors (basic and full levels)
 * through the engine exactly as a front end does (reference/aip.md section 9).
 *
 *   aip-conformance [-v] [DIR]
 *
 * DIR holds basic/ and full/; by default the copy in the repository (tests/conformance/aip,
 * Apache-2.0, see its PROVENANCE.md), or $AIP_SHARED_DIR/conformance/aip/conformance when
 * AIP_SHARED_DIR is set (to run a newer copy of the vectors). A directory that is not there
 * is "SKIPPED" with exit status 77 (ctest's SKIP_RETURN_CODE), never a silent pass.
 *
 * For each case: the inline policy is loaded with the project's own YAML loader and compiled;
 * the input becomes a real JSON-RPC message (bytes), which goes through the strict parser,
 * aip_rpc_classify and aip_policy_check_msg -- the method check, then the tool check for
 * tools/call. Rate-limit cases (`context.previous_calls`) replay the earlier calls on an
 * injected clock; ask cases with `context.user_response` simulate the human (deny -> -32004,
 * timeout -> -32005). Checked: decision, error_code, violation, and, beyond the upstream
 * runner, the exact error message, the `data` members and the echoed id of the rendered error
 * (every refusal's bytes are parsed back and must echo the request id). Each case also runs
 * with the decision cache off and on (and, where no rate limit is involved, twice with it on)
 * and must agree.
 *
 * DLP cases (`input.type: response`) run the policy's DLP rules over the content
 * (aip_dlp_redact_text) and compare the output and the per-rule events.
 * Output: one line per failure, then "N passed, M failed, K skipped". Exit 1 on any failure.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/yaml_doc.h"
#include "engine/dlp.h"
#include "engine/engine.h"
#include "tests/conformance/vectors.h"

#ifndef AIP_SOURCE_DIR
#define AIP_SOURCE_DIR "."
#endif

/* Pinned so `~/.ssh` means the same on every machine. */
#define CONF_HOME "/home/aip-conformance"
#define CONF_CWD "/srv/aip-conformance"

typedef struct tally {
  int passed, failed, skipped, verbose;
} tally;

typedef struct run {
  cJSON *root; /* the parsed message the verdict borrows from */
  aip_rpc_msg msg;
  aip_verdict v;
} run;

/* ---- building the input message ------------------------------------------------------------ */

static char *build_message(const aip_ynode *input) {
  const aip_ynode *rid = aip_y_get(input, "request_id"), *args = aip_y_get(input, "args");
  const char *method = cv_str(input, "method"), *tool = cv_str(input, "tool");
  cJSON *m = cJSON_CreateObject(), *params;
  char *out;

  cJSON_AddStringToObject(m, "jsonrpc", "2.0");
  cJSON_AddItemToObject(m, "id", rid ? cv_to_json(rid) : cJSON_CreateNumber(1));
  cJSON_AddStringToObject(m, "method", method ? method : "");
  if (tool || args) {
    params = cJSON_AddObjectToObject(m, "params");
    if (tool)
      cJSON_AddStringToObject(params, "name", tool);
    if (args)
      cJSON_AddItemToObject(params, "arguments", cv_to_json(args));
  }
  out = cJSON_PrintUnformatted(m);
  cJSON_Delete(m);
  return out;
}

static int evaluate(const aip_policy *p, aip_rate_state *rs, const char *bytes, int64_t now,
                    run *r) {
  aip_json_status st = aip_json_parse(bytes, strlen(bytes), &r->root);
  if (st != AIP_JSON_OK)
    return -1;
  aip_rpc_classify(r->root, &r->msg);
  aip_policy_check_msg(p, &r->msg, now, rs, &r->v);
  return 0;
}

static void run_free(run *r) {
  cJSON_Delete(r->root);
  memset(r, 0, sizeof(*r));
}

/* ---- checking the outcome ------------------------------------------------------------------ */

static const char *vector_decision(aip_decision_kind k) {
  switch (k) {
  case AIP_DECISION_ALLOW:
  case AIP_DECISION_ALLOW_MONITOR: return "ALLOW";
  case AIP_DECISION_ASK: return "ASK";
  case AIP_DECISION_RATE_LIMITED: return "RATE_LIMITED";
  default: return "BLOCK"; /* BLOCK, and PROTECTED_PATH (reported as BLOCK -32007) */
  }
}

/* The rendered error: parsed back; always must be JSON-RPC 2.0 with the request's id. */
static int check_error_bytes(const aip_ynode *exp, const run *r, char *why, size_t cap) {
  const aip_decision *d = &r->v.d;
  aip_buf b;
  cJSON *resp = NULL, *err;
  const aip_ynode *want;
  char path[256] = "";
  int ok = 0;

  aip_buf_init(&b);
  if (aip_decision_error(&b, r->msg.id, d, r->v.subject) ||
      aip_json_parse(b.data, b.len, &resp) != AIP_JSON_OK) {
    snprintf(why, cap, "error reply could not be rendered/parsed: %s", b.data ? b.data : "");
    goto out;
  }
  err = cJSON_GetObjectItemCaseSensitive(resp, "error");
  if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(resp, "jsonrpc")) || !cJSON_IsObject(err) ||
      !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(resp, "id"), r->msg.id, 1)) {
    snprintf(why, cap, "reply does not echo the request id: %s", b.data);
    goto out;
  }
  if (cv_str(exp, "error_message") &&
      strcmp(cv_str(exp, "error_message"),
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"))
                 ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message")) : "")) {
    snprintf(why, cap, "error_message: want \"%s\", reply %s", cv_str(exp, "error_message"), b.data);
    goto out;
  }
  strcpy(path, "error_data");
  if ((want = aip_y_get(exp, "error_data")) &&
      !cv_subset(want, cJSON_GetObjectItemCaseSensitive(err, "data"), path, sizeof(path))) {
    snprintf(why, cap, "%s differs: reply %s", path, b.data);
    goto out;
  }
  strcpy(path, "response_format");
  if ((want = aip_y_get(exp, "response_format")) && !cv_subset(want, resp, path, sizeof(path))) {
    snprintf(why, cap, "%s differs: reply %s", path, b.data);
    goto out;
  }
  ok = 1;
out:
  cJSON_Delete(resp);
  aip_buf_free(&b);
  return ok;
}

/* Compares one verdict with `expected`. Returns 1 on a match, else 0 with `why`. */
static int check(const aip_ynode *exp, const run *r, char *why, size_t cap) {
  const aip_decision *d = &r->v.d;
  const char *want = cv_str(exp, "decision");
  const aip_ynode *code_n = aip_y_get(exp, "error_code"), *viol = aip_y_get(exp, "violation");
  const aip_ynode *rf_err = aip_y_get(aip_y_get(exp, "response_format"), "error");
  long long code;

  if (want && strcmp(want, vector_decision(d->kind)) &&
      !(strcmp(want, "PROTECTED_PATH") == 0 && d->kind == AIP_DECISION_PROTECTED_PATH)) {
    snprintf(why, cap, "decision %s (%s), want %s", aip_decision_name(d->kind), d->reason, want);
    return 0;
  }
  if (code_n ? (aip_y_is_null(code_n) ? (code = 0, 1) : cv_int(exp, "error_code", &code))
             : cv_int(rf_err, "code", &code)) {
    if (code != d->error_code) {
      snprintf(why, cap, "error_code %d, want %lld (%s)", d->error_code, code, d->reason);
      return 0;
    }
  }
  if (viol && cv_str(exp, "violation") && !!d->violation != !strcmp(viol->value, "true")) {
    snprintf(why, cap, "violation %d, want %s (%s)", d->violation, viol->value, d->reason);
    return 0;
  }
  if (!d->error_code) {
    if (cv_str(exp, "error_message") || aip_y_get(exp, "error_data")) {
      snprintf(why, cap, "expected an error reply, the call proceeds (%s)", d->reason);
      return 0;
    }
    return 1;
  }
  return check_error_bytes(exp, r, why, cap);
}

/* ---- one case ------------------------------------------------------------------------------ */

static int same_decision(const aip_decision *a, const aip_decision *b) {
  return a->kind == b->kind && a->violation == b->violation && a->error_code == b->error_code &&
         strcmp(a->reason, b->reason) == 0 && strcmp(a->failed_arg, b->failed_arg) == 0;
}

/* The scenario for one cache setting: earlier calls (rate limits), the call, the human. */
static int scenario(const aip_policy_doc *doc, int cache_off, const aip_ynode *tc,
                    const char *bytes, char *why, size_t cap) {
  const aip_ynode *input = aip_y_get(tc, "input"), *exp = aip_y_get(tc, "expected");
  const aip_ynode *ctx = aip_y_get(input, "context");
  const char *user = cv_str(ctx, "user_response"), *window = cv_str(ctx, "window");
  aip_policy_opts opts = {.home = CONF_HOME, .cwd = CONF_CWD, .cache_off = cache_off};
  aip_policy *p = NULL;
  aip_rate_state *rs = NULL;
  aip_error err = {{0}};
  long long prev = 0;
  run r = {0}, again = {0};
  int ok = 0;

  if (doc && aip_policy_compile_ex(doc, &opts, &p, &err)) {
    snprintf(why, cap, "policy refused: %s", err.msg);
    return 0;
  }
  rs = aip_rate_state_new(p);
  cv_int(ctx, "previous_calls", &prev);
  for (long long i = 0; i < prev; i++) { /* all at t = 0: well inside any window */
    if (evaluate(p, rs, bytes, 0, &r) == 0)
      run_free(&r);
  }
  if (evaluate(p, rs, bytes, 0, &r)) {
    snprintf(why, cap, "input message does not parse: %s", bytes);
    goto out;
  }
  if (r.v.d.kind == AIP_DECISION_ASK && user)
    aip_decision_ask_refused(&r.v.d, strcmp(user, "timeout") == 0);
  if (!(ok = check(exp, &r, why, cap)))
    goto out;
  if (!cache_off && !prev && !user && !evaluate(p, rs, bytes, 0, &again) &&
      !same_decision(&r.v.d, &again.v.d)) {
    snprintf(why, cap, "second evaluation (cache %s) differs: %s vs %s", again.v.d.cached ? "hit" : "miss",
             r.v.d.reason, again.v.d.reason);
    ok = 0;
  }
  /* Injected clock: once the window has passed, the bucket has refilled. */
  uint64_t win_ms;
  run_free(&again);
  if (ok && r.v.d.kind == AIP_DECISION_RATE_LIMITED && window &&
      aip_parse_duration_ms(window, &win_ms) == 0 &&
      !evaluate(p, rs, bytes, (int64_t)win_ms, &again) &&
      again.v.d.kind == AIP_DECISION_RATE_LIMITED) {
    snprintf(why, cap, "still rate limited after the %s window", window);
    ok = 0;
  }
out:
  run_free(&r);
  run_free(&again);
  aip_rate_state_free(rs);
  aip_policy_free(p);
  return ok;
}

/* ---- DLP cases (input.type: response): the policy's patterns over a tool's text ---- */

/* Every expected event has a matching (rule, count) and there are no others. */
static int dlp_events_match(const aip_dlp *d, const aip_dlp_counts *c, const aip_ynode *events,
                            char *why, size_t whylen) {
  size_t want = events ? events->n : 0, got = 0, it = 0;
  const char *rule;
  uint32_t count;
  while (aip_dlp_counts_next(d, c, &it, &rule, &count)) {
    int found = 0;
    got++;
    for (size_t i = 0; i < want; i++) {
      const char *r = cv_str(events->items[i], "rule"), *n = cv_str(events->items[i], "count");
      if (r && strcmp(r, rule) == 0 && n && strtoul(n, NULL, 10) == count) found = 1;
    }
    if (!found) {
      snprintf(why, whylen, "unexpected DLP event %s x%u", rule, count);
      return 0;
    }
  }
  if (got != want) snprintf(why, whylen, "%zu DLP events, want %zu", got, want);
  return got == want;
}

static int dlp_case(const aip_ynode *tc, const char *name, char *why, size_t whylen) {
  const aip_ynode *input = aip_y_get(tc, "input"), *exp = aip_y_get(tc, "expected");
  const char *ptext = cv_str(tc, "policy"), *content = cv_str(input, "content");
  const char *want = cv_str(exp, "output"), *redacted = cv_str(exp, "redacted");
  aip_policy_doc *doc = NULL;
  aip_dlp *d = NULL;
  aip_dlp_scratch *s = aip_dlp_scratch_new();
  aip_error err = {{0}};
  aip_buf out;
  aip_buf_init(&out);
  aip_dlp_counts c = {0};
  int ok = 0;
  if (!ptext || !content || !s || aip_policy_doc_load_string(ptext, strlen(ptext), name, &doc, &err) ||
      aip_dlp_compile(doc, NULL, &d, &err) || aip_dlp_scratch_prepare(s, d) ||
      aip_dlp_counts_init(&c, d)) {
    snprintf(why, whylen, "DLP setup failed: %s", err.msg);
  } else {
    int rc = aip_dlp_redact_text(d, s, AIP_DLP_RESPONSE, content, strlen(content), &out, &c);
    const char *got = rc > 0 ? out.data : content;
    if (rc < 0) snprintf(why, whylen, "redaction failed (%d)", rc);
    else if (want && strcmp(got, want) != 0) snprintf(why, whylen, "output %s, want %s", got, want);
    else if (redacted && (strcmp(got, content) != 0) != (strcmp(redacted, "true") == 0))
      snprintf(why, whylen, "redacted is %d", rc > 0);
    else if (!aip_y_get(exp, "dlp_events")) ok = 1; /* the case does not pin the events */
    else ok = dlp_events_match(d, &c, aip_y_get(exp, "dlp_events"), why, whylen);
  }
  aip_dlp_counts_free(&c);
  aip_buf_free(&out);
  aip_dlp_scratch_free(s);
  aip_dlp_free(d);
  aip_policy_doc_free(doc);
  return ok;
}

static void run_case(tally *t, const char *file, const aip_ynode *tc) {
  const char *id = cv_str(tc, "id"), *ptext = cv_str(tc, "policy");
  const aip_ynode *input = aip_y_get(tc, "input");
  const char *type = cv_str(input, "type");
  aip_policy_doc *doc = NULL;
  aip_error err = {{0}};
  char why[1024] = "", name[700];
  char *bytes = NULL;
  int ok;

  snprintf(name, sizeof(name), "<%s#%s>", file, id ? id : "?");
  if (type && strcmp(type, "response") == 0) {
    if (dlp_case(tc, name, why, sizeof(why))) {
      t->passed++;
    } else {
      t->failed++;
      printf("FAIL %s %s: %s\n", file, id ? id : "?", why);
    }
    return;
  }
  if (ptext && aip_policy_doc_load_string(ptext, strlen(ptext), name, &doc, &err)) {
    snprintf(why, sizeof(why), "policy does not load: %s", err.msg);
    ok = 0;
  } else if (!(bytes = build_message(input))) {
    snprintf(why, sizeof(why), "out of memory");
    ok = 0;
  } else {
    ok = scenario(doc, 1, tc, bytes, why, sizeof(why)) && scenario(doc, 0, tc, bytes, why, sizeof(why));
  }
  if (ok) {
    t->passed++;
    if (t->verbose)
      printf("ok   %s %s\n", file, id ? id : "?");
  } else {
    t->failed++;
    printf("FAIL %s %s: %s\n", file, id ? id : "?", why);
  }
  free(bytes);
  aip_policy_doc_free(doc);
}

/* ---- files --------------------------------------------------------------------------------- */

static void run_file(tally *t, const char *dir, const char *level, const char *fname) {
  char path[4096], shown[300];
  aip_ydoc *y = NULL;
  aip_error err = {{0}};
  const aip_ynode *tests;

  snprintf(path, sizeof(path), "%s/%s/%s", dir, level, fname);
  snprintf(shown, sizeof(shown), "%s/%s", level, fname);
  if (aip_ydoc_load_file(path, &y, &err)) {
    t->failed++;
    printf("FAIL %s: %s\n", shown, err.msg);
    return;
  }
  tests = aip_y_get(y->root, "tests");
  for (size_t i = 0; tests && tests->kind == AIP_YSEQ && i < tests->n; i++)
    run_case(t, shown, tests->items[i]);
  aip_ydoc_free(y);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.yaml of DIR/level, in name order. */
static int run_level(tally *t, const char *dir, const char *level) {
  char path[4096], *names[256];
  size_t n = 0;
  struct dirent *e;
  DIR *d;

  snprintf(path, sizeof(path), "%s/%s", dir, level);
  if (!(d = opendir(path))) {
    fprintf(stderr, "aip-conformance: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  while ((e = readdir(d)) && n < 256) {
    size_t len = strlen(e->d_name);
    if (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0)
      names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof(*names), cmp_names);
  for (size_t i = 0; i < n; i++) {
    if (names[i])
      run_file(t, dir, level, names[i]);
    free(names[i]);
  }
  return 0;
}

static int dir_exists(const char *dir, const char *level) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, level);
  DIR *d = opendir(path);
  if (d) closedir(d);
  return d != NULL;
}

int main(int argc, char **argv) {
  tally t = {0};
  const char *dir = NULL, *shared = getenv("AIP_SHARED_DIR");
  char def[4096];

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0)
      t.verbose = 1;
    else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
      return puts("usage: aip-conformance [-v] [DIR]  (DIR holds basic/ and full/)"), 0;
    else
      dir = argv[i];
  }
  if (!dir) {
    if (shared && shared[0])
      snprintf(def, sizeof(def), "%s/conformance/aip/conformance", shared);
    else
      snprintf(def, sizeof(def), "%s", AIP_SOURCE_DIR "/tests/conformance/aip/conformance");
    dir = def;
  }
  if (!dir_exists(dir, "basic") || !dir_exists(dir, "full")) {
    printf("SKIPPED: %s not found (no basic/ and full/ vectors there)\n", dir);
    return 77;
  }
  if (run_level(&t, dir, "basic") || run_level(&t, dir, "full"))
    return 2;
  printf("%d passed, %d failed, %d skipped\n", t.passed, t.failed, t.skipped);
  return t.failed == 0 && t.passed > 0 ? 0 : 1;
}
