/* msg.c -- a message on the decision path, held as a cJSON tree (msg.h). */
#include <stdlib.h>
#include <string.h>

#include "gateway/core/msg.h"

struct aip_msg {
  cJSON *root;
  aip_rpc_msg rpc;
};

aip_msg *aip_msg_adopt(cJSON *root) {
  aip_msg *m = calloc(1, sizeof(*m));
  if (!m) {
    cJSON_Delete(root);
    return NULL;
  }
  m->root = root;
  aip_rpc_classify(root, &m->rpc);
  return m;
}

void aip_msg_free(aip_msg *m) {
  if (!m) return;
  cJSON_Delete(m->root);
  free(m);
}

cJSON *aip_msg_release(aip_msg *m) {
  cJSON *root = m->root;
  free(m);
  return root;
}

aip_rpc_kind aip_msg_kind(const aip_msg *m) { return m->rpc.kind; }
const char *aip_msg_method(const aip_msg *m) { return m->rpc.method; }
const char *aip_msg_invalid_reason(const aip_msg *m) { return m->rpc.invalid_reason; }
const aip_rpc_msg *aip_msg_rpc(const aip_msg *m) { return &m->rpc; }

int aip_msg_id_has_prefix(const aip_msg *m, const char *prefix) {
  return cJSON_IsString(m->rpc.id) && strncmp(m->rpc.id->valuestring, prefix, strlen(prefix)) == 0;
}

/* The id an answer carries: the classified one; for an INVALID message, a string or number
 * "id" member when there is one (else the answer goes with id null). */
static const cJSON *answer_id(const aip_msg *m) {
  if (m->rpc.kind != AIP_RPC_INVALID) return m->rpc.id;
  const cJSON *id = cJSON_IsObject(m->root) ? cJSON_GetObjectItemCaseSensitive(m->root, "id") : NULL;
  return cJSON_IsString(id) || cJSON_IsNumber(id) ? id : NULL;
}

char *aip_rpc_id_key(const cJSON *id) {
  aip_buf b;
  aip_buf_init(&b);
  int err = -1;
  if (cJSON_IsString(id)) {
    err = aip_buf_puts(&b, "s");
    if (!err) err = aip_buf_puts(&b, id->valuestring);
  } else if (cJSON_IsNumber(id)) {
    err = aip_buf_printf(&b, "n%.17g", id->valuedouble);
  }
  if (err) {
    aip_buf_free(&b);
    return NULL;
  }
  return aip_buf_steal(&b, NULL);
}

char *aip_msg_id_key(const aip_msg *m) { return aip_rpc_id_key(m->rpc.id); }

const cJSON *aip_msg_param(const aip_msg *m, const char *name) {
  const cJSON *p = m->rpc.params;
  return cJSON_IsObject(p) ? cJSON_GetObjectItemCaseSensitive(p, name) : NULL;
}

const char *aip_msg_tool(const aip_msg *m) {
  const cJSON *name = aip_msg_param(m, "name");
  return cJSON_IsString(name) ? name->valuestring : NULL;
}

static const cJSON null_id = {.type = cJSON_NULL};

int aip_msg_error(const aip_msg *m, aip_buf *out, int code, const char *message,
                  const char *const *data_kv) {
  const cJSON *id = m ? answer_id(m) : NULL;
  return aip_rpc_error(out, id ? id : &null_id, code, message, data_kv);
}

int aip_msg_refusal(const aip_msg *m, aip_buf *out, const aip_decision *d, const char *subject) {
  const cJSON *id = answer_id(m);
  return aip_decision_error(out, id ? id : &null_id, d, subject);
}

int aip_msg_print(const aip_msg *m, aip_buf *out) { return aip_json_print(out, m->root); }

void aip_msg_check(const aip_msg *m, const aip_policy *p, int64_t now_ms, aip_rate_state *rs,
                   aip_verdict *v) {
  aip_policy_check_msg(p, &m->rpc, now_ms, rs, v);
}

/* Moves the redacted members of `red` into `dst` in place. The engine keeps the shape and the
 * order of a message (it changes scalars and keys only, never jsonrpc, id, method or params'
 * own name), so members pair up one by one; params is merged one level down, which keeps the
 * pointers into the unchanged members (the classification's id, method, params) valid. */
static void take_redacted(cJSON *dst, cJSON *red, int top) {
  for (cJSON *a = dst->child, *b = red->child, *na, *nb; a && b; a = na, b = nb) {
    na = a->next, nb = b->next;
    if (top && strcmp(a->string, "params") == 0 && strcmp(b->string, "params") == 0 &&
        cJSON_IsObject(a) && cJSON_IsObject(b)) {
      take_redacted(a, b, 0);
    } else if (strcmp(a->string, b->string) != 0 || !cJSON_Compare(a, b, 1)) {
      cJSON_DetachItemViaPointer(red, b);
      cJSON_ReplaceItemViaPointer(dst, a, b);
    }
  }
}

aip_dlp_req_outcome aip_msg_scan_request(aip_msg *m, aip_dlp_run *r, aip_dlp_counts *c,
                                         aip_decision *block, aip_verdict *v) {
  cJSON *red = NULL;
  aip_dlp_req_outcome o = aip_dlp_scan_request(r, m->root, c, &red, block);
  if (o != AIP_DLP_REQ_REDACTED) return o;
  take_redacted(m->root, red, 1);
  cJSON_Delete(red);
  if (v && v->tool_call) v->args = cJSON_GetObjectItemCaseSensitive(m->rpc.params, "arguments");
  return o;
}
