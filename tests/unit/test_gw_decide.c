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
static const aip_front_ops ops = {.reply = fk_reply, .forward = fk_forward, .hold = fk_hold, .own_answer = fk_own};

/* A front end whose tool names come later (as aip serve's, after the merged list) and which
 * counts decisions and may refuse for its audit log. */
static aip_msg *parked;
static int counts[8], admit_fail, rate_calls;
static void fk_names(aip_front *fe, aip_msg *m) { (void)fe; parked = m; }
static void fk_counted(aip_front *fe, aip_decision_kind k) { (void)fe; counts[k]++; }
static int fk_admit(aip_front *fe, const aip_msg *m) {
  (void)m;
  if (admit_fail) fk_reply(fe, "audit down", 10);
  return admit_fail;
}
static int fk_rate(aip_front *fe, aip_msg *m, const aip_tool_names *n, const aip_decision *d) {
  (void)fe; (void)m; (void)n; (void)d;
  rate_calls++;
  return 0;
}
static const aip_front_ops later_ops = {.reply = fk_reply, .forward = fk_forward, .hold = fk_hold,
                                        .admit = fk_admit, .counted = fk_counted,
                                        .names = fk_names, .rate_checked = fk_rate};

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
    "  protected_paths: [/srv/secret]\n"
    "  allowed_methods: [initialize, ping, tools/call, tools/list, notifications/initialized,\n"
    "    notifications/cancelled, resources/read, resources/subscribe, resources/unsubscribe]\n"
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
  CHECK_INT(aip_core_method_find("resources/read")->id, AIP_M_RESOURCES_READ);
  CHECK_INT(aip_core_method_find("Resources/Read")->id, AIP_M_RESOURCES_READ);
  CHECK_INT(aip_core_method_find("resources/unsubscribe")->steps & AIP_STEP_URI, 0);
  CHECK_INT(aip_core_method_find("x/unknown")->id, AIP_M_OTHER);
  CHECK_INT(aip_core_method_find("logging/setLevel")->id, AIP_M_SET_LEVEL);
  CHECK_INT(aip_core_method_find("notifications/roots/list_changed")->id, AIP_M_ROOTS_CHANGED);

  /* protected_paths on a resource URI, with the argument normalization: refused as in serve */
  f.replies.len = 0;
  int fw = f.forwarded;
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"resources/read\",\"params\":{\"uri\":\"file:///srv/secret/k\"}}");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"resources/read\",\"params\":{\"uri\":\"file:///srv/x/%2e%2e/secret/k\"}}");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"method\":\"resources/subscribe\",\"params\":{\"uri\":\"/srv/secret\"}}");
  CHECK_INT(f.forwarded, fw);
  CHECK(strstr(f.replies.data, "\"id\":8,\"error\":{\"code\":-32007") != NULL);
  CHECK(strstr(f.replies.data, "\"id\":9,\"error\":{\"code\":-32007") != NULL);
  CHECK(strstr(f.replies.data, "\"id\":null") == NULL); /* the notification got no answer */
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"resources/read\",\"params\":{\"uri\":\"file:///srv/open/k\"}}");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"resources/unsubscribe\",\"params\":{\"uri\":\"file:///srv/secret/k\"}}");
  CHECK_INT(f.forwarded, fw + 2);

  /* a URI that is not a non-empty string cannot be checked: refused, never forwarded (the
   * wrapper forwards what passes, so "the front end answers it" would let it through) */
  f.replies.len = 0;
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":20,\"method\":\"resources/read\",\"params\":{\"uri\":[\"file:///srv/secret/k\"]}}");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":21,\"method\":\"resources/read\",\"params\":{\"uri\":{\"href\":\"/srv/secret\"}}}");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":22,\"method\":\"resources/subscribe\",\"params\":{}}");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":23,\"method\":\"resources/read\",\"params\":{\"uri\":\"\"}}");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":24,\"method\":\"resources/read\"}");
  CHECK_INT(f.forwarded, fw + 2);
  CHECK(strstr(f.replies.data, "\"id\":20,\"error\":{\"code\":-32602") != NULL);
  CHECK(strstr(f.replies.data, "\"id\":21,\"error\":{\"code\":-32602") != NULL);
  CHECK(strstr(f.replies.data, "\"id\":22,\"error\":{\"code\":-32602") != NULL);
  CHECK(strstr(f.replies.data, "\"id\":23,\"error\":{\"code\":-32602") != NULL);
  CHECK(strstr(f.replies.data, "\"id\":24,\"error\":{\"code\":-32602") != NULL);

  /* a names front end: the tool check resumes later, re-entrantly, with the names it found */
  f.fe.ops = &later_ops;
  f.replies.len = 0;
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{}}}");
  CHECK(parked != NULL);
  aip_msg *one = parked;
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":13,\"method\":\"tools/call\",\"params\":{\"name\":\"rm\",\"arguments\":{}}}");
  aip_msg *two = parked;
  CHECK(one != two);
  aip_tool_names allowed = {"echo", "echo", "srv__echo"}, unknown = {"rm", NULL, NULL};
  aip_core_tool_check(&f.fe, two, &unknown); /* resumed out of order */
  aip_core_tool_check(&f.fe, one, &allowed);
  CHECK_INT(rate_calls, 2);
  CHECK_INT(f.forwarded, fw + 3); /* `echo` by its real name */
  CHECK_STR(f.tool, "echo");
  CHECK(strstr(f.replies.data, "\"id\":13,\"error\":{\"code\":-32001") != NULL);
  CHECK_INT(counts[AIP_DECISION_ALLOW], 1);
  CHECK_INT(counts[AIP_DECISION_BLOCK], 1);
  admit_fail = 1; /* the audit log is down: an audited method is refused by the front end */
  parked = NULL;
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":14,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\"}}");
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":15,\"method\":\"resources/read\",\"params\":{\"uri\":\"file:///srv/open\"}}");
  CHECK(parked == NULL);
  CHECK_INT(f.forwarded, fw + 3);
  deliver(&f, "{\"jsonrpc\":\"2.0\",\"id\":16,\"method\":\"ping\"}"); /* not audited: goes on */
  CHECK_INT(f.forwarded, fw + 4);
  CHECK(strstr(f.replies.data, "audit down\naudit down\n") != NULL);
  CHECK_INT(aip_core_method_find(NULL)->id, AIP_M_OTHER);

  aip_buf_free(&f.replies);
  aip_rate_state_free(rate);
  aip_policy_free(pol);
  aip_policy_doc_free(doc);
  TEST_MAIN_END();
}
