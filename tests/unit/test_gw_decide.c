/* test_gw_decide.c -- the decision core (gateway/core/decide.c) through a fake front end:
 * which callback each message reaches, with which table entry, and the exact error bytes. */
#include <stdlib.h>
#include <string.h>

#include "gateway/core/decide.h"
#include "test.h"

typedef struct fake {
  aip_front fe; /* first: the callbacks get &fake.fe */
  aip_buf replies;
  int forwarded, held, own;
  aip_core_method last;
  char tool[64];
} fake;

static void fk_reply(aip_front *fe, const char *json, size_t n) {
  fake *f = (fake *)fe;
  aip_buf_append(&f->replies, json, n);
  aip_buf_puts(&f->replies, "\n");
}
static void fk_forward(aip_front *fe, aip_msg *m, const aip_method_entry *e, const aip_core_call *c) {
  fake *f = (fake *)fe;
  f->forwarded++;
  f->last = e->id;
  snprintf(f->tool, sizeof(f->tool), "%s", c ? c->tool : "");
  aip_msg_free(m);
}
static void fk_hold(aip_front *fe, aip_msg *m, const aip_core_call *c, const aip_decision *d) {
  fake *f = (fake *)fe;
  f->held++;
  CHECK_INT(d->kind, AIP_DECISION_ASK);
  snprintf(f->tool, sizeof(f->tool), "%s", c->tool);
  aip_msg_free(m);
}
static int fk_own(aip_front *fe, const aip_msg *m) {
  fake *f = (fake *)fe;
  if (!aip_msg_id_has_prefix(m, "mine-")) return 0;
  f->own++;
  return 1;
}
static const aip_front_ops ops = {fk_reply, fk_forward, fk_hold, fk_own, NULL, NULL, NULL};

static void deliver(fake *f, const char *line) {
  cJSON *root = NULL;
  if (aip_json_parse(line, strlen(line), &root) != AIP_JSON_OK) {
    CHECK(!"test line does not parse");
    return;
  }
  aip_core_message(&f->fe, aip_msg_adopt(root));
}

static const char policy_yaml[] =
    "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata:\n  name: t\nspec:\n"
    "  allowed_tools: [echo, deploy]\n  denied_methods: [prompts/get]\n"
    "  tool_rules:\n    - tool: deploy\n      action: ask\n";

int main(void) {
  aip_policy_doc *doc = NULL;
  aip_policy *pol = NULL;
  aip_error err = {{0}};
  CHECK_INT(aip_policy_doc_load_string(policy_yaml, strlen(policy_yaml), "p.yaml", &doc, &err), 0);
  CHECK_INT(aip_policy_compile(doc, &pol, &err), 0);
  aip_rate_state *rate = aip_rate_state_new(pol);
  aip_dlp_run run = {.doc = doc};
  fake f;
  memset(&f, 0, sizeof(f));
  aip_buf_init(&f.replies);
  f.fe.ops = &ops;
  f.fe.policy = pol;
  f.fe.rate = rate;
  f.fe.dlp = &run; /* no DLP compiled: scanning is skipped */
  f.fe.who.doc = doc; /* audit NULL: records go nowhere */

  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{}}}");
  CHECK_INT(f.forwarded, 1);
  CHECK_INT(f.last, AIP_M_TOOLS_CALL);
  CHECK_STR(f.tool, "echo");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"Tools/List\"}"); /* normalized */
  CHECK_INT(f.last, AIP_M_TOOLS_LIST);
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\",\"params\":{}}");
  CHECK_INT(f.last, AIP_M_INITIALIZE);
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":1}}");
  CHECK_INT(f.last, AIP_M_CANCELLED);
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":\"s-1\",\"result\":{}}"); /* the server's request's answer */
  CHECK_INT(f.last, AIP_M_ANSWER);
  CHECK_INT(f.forwarded, 5);
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":\"mine-1\",\"result\":{}}");
  CHECK_INT(f.own, 1);
  CHECK_INT(f.forwarded, 5);
  CHECK(f.replies.len == 0);

  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"deploy\"}}");
  CHECK_INT(f.held, 1);
  CHECK_STR(f.tool, "deploy");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{\"name\":\"deploy\"}}");
  CHECK_INT(f.held, 1); /* a notification: nobody to ask, dropped, never answered */
  CHECK(f.replies.len == 0);

  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"rm\",\"arguments\":{}}}");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"prompts/get\"}");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"method\":\"prompts/get\"}"); /* refused notification: silence */
  deliver(&f, "{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"ping\"}");
  CHECK_STR(f.replies.data,
            "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-32001,\"message\":\"Forbidden\","
            "\"data\":{\"reason\":\"Tool not in allowed_tools list\",\"tool\":\"rm\"}}}\n"
            "{\"jsonrpc\":\"2.0\",\"id\":6,\"error\":{\"code\":-32006,\"message\":\"Method not allowed\","
            "\"data\":{\"method\":\"prompts/get\",\"reason\":\"Method 'prompts/get' is not in "
            "allowed_methods. Add it to your policy to permit this method.\"}}}\n"
            "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32600,\"message\":\"Invalid Request\","
            "\"data\":{\"reason\":\"jsonrpc must be \\\"2.0\\\"\"}}}\n");
  CHECK_INT(f.forwarded, 5);

  CHECK_INT(aip_core_method_find("notifications/initialized")->id, AIP_M_INITIALIZED);
  CHECK_INT(aip_core_method_find("resources/read")->id, AIP_M_OTHER);
  CHECK_INT(aip_core_method_find(NULL)->id, AIP_M_OTHER);

  aip_buf_free(&f.replies);
  aip_rate_state_free(rate);
  aip_policy_free(pol);
  aip_policy_doc_free(doc);
  TEST_MAIN_END();
}
