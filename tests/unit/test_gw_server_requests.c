/* test_gw_server_requests.c -- which session may take an upstream's server-to-client request
 * (core/server_requests.c: the capability a method needs, elicitation modes and versions), and
 * the per-session registry of outstanding requests (mcp/outstanding.c): unguessable ids, an
 * answer only to an id that was sent, only once, and the session's end reaching every owner. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/core/server_requests.h"
#include "gateway/mcp/outstanding.h"
#include "gateway/mcp/session.h"
#include "test.h"

static cJSON *parse(const char *s) {
  cJSON *j = NULL;
  return aip_json_parse(s, strlen(s), &j) == AIP_JSON_OK ? j : NULL;
}

static void test_capability(void) {
  CHECK_STR(aip_s2c_capability("sampling/createMessage"), "sampling");
  CHECK_STR(aip_s2c_capability("elicitation/create"), "elicitation");
  CHECK_STR(aip_s2c_capability("roots/list"), "roots");
  CHECK(aip_s2c_capability("ping") == NULL); /* the gateway answers it itself */
  CHECK(aip_s2c_capability("tools/call") == NULL);
  CHECK(aip_s2c_capability("Sampling/createMessage") == NULL); /* exact names only */
}

static void test_capable(void) {
  static const struct {
    const char *caps, *version, *method, *params;
    int want;
  } cases[] = {
      {"{\"sampling\":{}}", "2025-11-25", "sampling/createMessage", NULL, 1},
      {"{\"sampling\":{}}", "2025-03-26", "sampling/createMessage", NULL, 1},
      {"{\"sampling\":true}", "2025-11-25", "sampling/createMessage", NULL, 0},
      {"{\"roots\":{}}", "2025-11-25", "sampling/createMessage", NULL, 0},
      {"{\"roots\":{\"listChanged\":true}}", "2025-06-18", "roots/list", NULL, 1},
      {"{\"sampling\":{}}", "2025-11-25", "roots/list", NULL, 0},
      {"{\"elicitation\":{}}", "2025-11-25", "elicitation/create", "{\"message\":\"m\"}", 1},
      {"{\"elicitation\":{}}", "2025-11-25", "elicitation/create", "{\"mode\":\"form\"}", 1},
      /* elicitation did not exist before 2025-06-18 */
      {"{\"elicitation\":{}}", "2025-03-26", "elicitation/create", NULL, 0},
      /* url mode needs the client's url capability; {} means form only */
      {"{\"elicitation\":{}}", "2025-11-25", "elicitation/create", "{\"mode\":\"url\"}", 0},
      {"{\"elicitation\":{\"url\":{}}}", "2025-11-25", "elicitation/create", "{\"mode\":\"url\"}", 1},
      {"{\"elicitation\":{\"url\":{}}}", "2025-11-25", "elicitation/create", "{\"mode\":\"form\"}", 0},
      {"{\"elicitation\":{\"form\":{}}}", "2025-11-25", "elicitation/create", "{\"mode\":\"other\"}", 0},
      {"{\"elicitation\":{\"form\":{}}}", "2025-11-25", "elicitation/create", "{\"mode\":1}", 0},
      {"{\"sampling\":{}}", "2025-11-25", "tools/call", NULL, 0},
      {"[]", "2025-11-25", "sampling/createMessage", NULL, 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    cJSON *c = parse(cases[i].caps);
    cJSON *p = cases[i].params ? parse(cases[i].params) : NULL;
    CHECK(c != NULL);
    int got = aip_s2c_capable(c, cases[i].version, cases[i].method, p);
    if (got != cases[i].want)
      fprintf(stderr, "case %zu: %s %s %s\n", i, cases[i].caps, cases[i].method,
              cases[i].params ? cases[i].params : "");
    CHECK_INT(got, cases[i].want);
    cJSON_Delete(c);
    cJSON_Delete(p);
  }
  CHECK_INT(aip_s2c_capable(NULL, "2025-11-25", "sampling/createMessage", NULL), 0);
}

typedef struct owner {
  aip_outstanding out;
  int answers, ended;
} owner;

static void on_answer(void *data, aip_session *s, const aip_rpc_msg *m) {
  owner *o = data;
  if (m) o->answers++;
  else o->ended++;
}

static int answer(aip_session *s, const char *json) {
  cJSON *root = parse(json);
  aip_rpc_msg m;
  aip_rpc_classify(root, &m);
  int rc = aip_outstanding_answer(s, &m);
  cJSON_Delete(root);
  return rc;
}

static void test_registry(void) {
  aip_session s;
  memset(&s, 0, sizeof(s));
  aip_map_init(&s.outstanding);
  owner a = {0}, b = {0}, c = {0};
  CHECK_INT(aip_outstanding_add(&s, &a.out, "aip-s2c-", on_answer, &a), 0);
  CHECK_INT(aip_outstanding_add(&s, &b.out, "aip-s2c-", on_answer, &b), 0);
  CHECK_INT(aip_outstanding_add(&s, &c.out, "aip-elicit-", on_answer, &c), 0);
  CHECK_INT((int)strlen(a.out.id), 8 + 32);
  CHECK(strncmp(a.out.id, "aip-s2c-", 8) == 0);
  CHECK(strcmp(a.out.id, b.out.id) != 0); /* random */
  cJSON *id = cJSON_CreateString(a.out.id);
  CHECK_INT(aip_outstanding_awaits(&s, id), 1);
  cJSON_Delete(id);
  id = cJSON_CreateNumber(1); /* our ids are strings */
  CHECK_INT(aip_outstanding_awaits(&s, id), 0);
  cJSON_Delete(id);
  char buf[160];
  snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"result\":{}}", a.out.id);
  CHECK_INT(answer(&s, buf), 0);
  CHECK_INT(a.answers, 1);
  CHECK_INT(answer(&s, buf), -ENOENT); /* answered once only */
  CHECK_INT(a.answers, 1);
  CHECK_INT(answer(&s, "{\"jsonrpc\":\"2.0\",\"id\":\"aip-s2c-00000000000000000000000000000000\",\"result\":{}}"),
            -ENOENT); /* never sent */
  /* the owner withdraws one; the session's end reaches the rest, once each */
  aip_outstanding_remove(&s, &b.out);
  aip_outstanding_remove(&s, &b.out); /* idempotent */
  aip_outstanding_session_end(&s);
  CHECK_INT(b.ended, 0);
  CHECK_INT(c.ended, 1);
  CHECK_INT(a.ended, 0);
  CHECK_INT(c.answers, 0);
}

int main(void) {
  test_capability();
  test_capable();
  test_registry();
  TEST_MAIN_END();
}
