/* fuzz_json.c -- the strict JSON parser, JSON-RPC classification, the policy check and the
 * response-head scanner (engine/json.c, engine/jsonrpc.c, engine/policy*.c, gateway/mcp/rpc_head.c).
 * Invariants: what parses prints, and the print parses back to the same print; every refusal
 * renders to valid JSON; the head scanner never finds a response head in a request, and when
 * it finds one in a valid response, its id and kind are the parser's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "engine/engine.h"
#include "gateway/mcp/rpc_head.h"

static aip_policy *P;
static aip_policy_doc *D;
static aip_rate_state *R;

static const char policy_yaml[] =
    "apiVersion: aip.io/v1alpha2\nkind: AgentPolicy\nmetadata: {name: fuzz}\n"
    "spec:\n  mode: enforce\n  allowed_tools: [echo, read_file, Write]\n"
    "  allowed_methods: [initialize, tools/list, tools/call, ping, resources/read]\n"
    "  protected_paths: [/etc/shadow, ~/.ssh]\n"
    "  tool_rules:\n"
    "    - {tool: echo, action: allow, allow_args: {text: '^[a-z ]{0,40}$'}}\n"
    "    - {tool: Write, action: ask}\n"
    "    - {tool: read_file, action: allow, rate_limit: 5/minute}\n";

static void init(void) {
  aip_error err = {{0}};
  aip_policy_opts o = {.home = "/home/fuzz", .cwd = "/work"};
  if (aip_policy_doc_load_string(policy_yaml, strlen(policy_yaml), "<fuzz>", &D, &err) ||
      aip_policy_compile_ex(D, &o, &P, &err))
    abort();
  R = aip_rate_state_new(P);
}

static void check_head(const uint8_t *data, size_t size, const aip_rpc_msg *m) {
  aip_rpc_head h;
  int r = aip_rpc_head_scan((const char *)data, size, &h);
  if (r != AIP_RPC_HEAD_FOUND) return;
  if (m->kind == AIP_RPC_REQUEST || m->kind == AIP_RPC_NOTIFICATION) abort();
  if (m->kind != AIP_RPC_RESPONSE && m->kind != AIP_RPC_ERROR) return;
  if (h.is_error != (m->kind == AIP_RPC_ERROR)) abort();
  cJSON *id = NULL;
  if (aip_json_parse((const char *)data + h.id_off, h.id_len, &id) != AIP_JSON_OK) abort();
  if (!m->id || !cJSON_Compare(id, m->id, 1)) abort();
  cJSON_Delete(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!P) init();
  cJSON *root = NULL;
  if (aip_json_parse((const char *)data, size, &root) != AIP_JSON_OK) return 0;
  aip_buf a, b;
  aip_buf_init(&a);
  aip_buf_init(&b);
  cJSON *again = NULL;
  if (aip_json_print(&a, root) || aip_json_parse(a.data, a.len, &again) != AIP_JSON_OK ||
      aip_json_print(&b, again) || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
    abort();
  cJSON_Delete(again);
  aip_rpc_msg m;
  aip_rpc_classify(root, &m);
  check_head(data, size, &m);
  aip_verdict v;
  aip_policy_check_msg(P, &m, 1000, R, &v);
  if (v.reply) {
    aip_buf e;
    aip_buf_init(&e);
    cJSON *err = NULL;
    if (aip_decision_error(&e, m.id, &v.d, v.subject) ||
        aip_json_parse(e.data, e.len, &err) != AIP_JSON_OK)
      abort();
    cJSON_Delete(err);
    aip_buf_free(&e);
  }
  aip_buf_free(&a);
  aip_buf_free(&b);
  cJSON_Delete(root);
  return 0;
}
