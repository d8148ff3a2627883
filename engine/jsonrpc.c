/* jsonrpc.c -- JSON-RPC 2.0 framing: classifying a parsed message, and the one place that
 * builds error responses (including the AIP errors of reference/aip.md section 4, byte for
 * byte what the Go reference sends).
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"

enum { K_JSONRPC, K_ID, K_METHOD, K_PARAMS, K_RESULT, K_ERROR, K_COUNT };

static const char *const envelope_keys[K_COUNT] = {"jsonrpc", "id",     "method",
                                                   "params",  "result", "error"};
static const char *const params_keys[] = {"name", "arguments", "_meta"};

/* Whether `key` is what Go's encoding/json would take for the lower-case ASCII `want`: ASCII
 * case-insensitive, plus the two non-ASCII runes whose simple case folding reaches an ASCII
 * letter: U+017F (long s) folds to 's', U+212A (Kelvin sign) to 'k'. Go-based MCP servers
 * decode with encoding/json, so "paramſ" is `params` to them and must be to us too. */
static int fold_eq(const char *key, const char *want) {
  const unsigned char *k = (const unsigned char *)key;
  for (; *want; want++) {
    unsigned char c = *k;
    if (c >= 'A' && c <= 'Z')
      c = (unsigned char)(c + 32);
    if (c == (unsigned char)*want) {
      k++;
    } else if (*want == 's' && k[0] == 0xC5 && k[1] == 0xBF) {
      k += 2;
    } else if (*want == 'k' && k[0] == 0xE2 && k[1] == 0x84 && k[2] == 0xAA) {
      k += 3;
    } else {
      return 0;
    }
  }
  return *k == '\0';
}

/* Finds the exact-case members named in `keys` (n of them) and rejects members that another
 * parser could mistake for one of them. Returns NULL or the reason the object is invalid. */
static const char *pick_members(const cJSON *obj, const char *const *keys, size_t n,
                                cJSON **slots) {
  for (size_t i = 0; i < n; i++)
    slots[i] = NULL;
  for (cJSON *c = obj->child; c; c = c->next) {
    for (size_t i = 0; i < n; i++) {
      if (strcmp(c->string, keys[i]) == 0) {
        if (slots[i])
          return "duplicate member";
        slots[i] = c;
        break;
      }
      if (fold_eq(c->string, keys[i]))
        return "member name differs from a JSON-RPC member only in case";
    }
  }
  return NULL;
}

static const char *check_fields(cJSON **m) {
  cJSON *params_slots[3];
  const char *why;

  if (!m[K_JSONRPC] || !cJSON_IsString(m[K_JSONRPC]) ||
      strcmp(m[K_JSONRPC]->valuestring, "2.0") != 0)
    return "jsonrpc must be \"2.0\"";
  if (m[K_ID] && !cJSON_IsString(m[K_ID]) && !cJSON_IsNumber(m[K_ID]) && !cJSON_IsNull(m[K_ID]))
    return "id must be a string or a number";
  if (m[K_METHOD] && !cJSON_IsString(m[K_METHOD]))
    return "method must be a string";
  if (m[K_ERROR] && !cJSON_IsObject(m[K_ERROR]))
    return "error must be an object";
  if (m[K_PARAMS] && !cJSON_IsObject(m[K_PARAMS]) && !cJSON_IsArray(m[K_PARAMS]))
    return "params must be an object or an array";
  if (m[K_PARAMS] && cJSON_IsObject(m[K_PARAMS])) {
    why = pick_members(m[K_PARAMS], params_keys, 3, params_slots);
    if (why)
      return why;
  }
  return NULL;
}

static aip_rpc_kind kind_of(cJSON **m, const char **why) {
  int has_id = m[K_ID] != NULL, null_id = has_id && cJSON_IsNull(m[K_ID]);

  if (m[K_METHOD]) {
    if (m[K_RESULT] || m[K_ERROR])
      *why = "a message cannot have both method and result or error";
    else if (null_id)
      *why = "a request id must not be null";
    else
      return has_id ? AIP_RPC_REQUEST : AIP_RPC_NOTIFICATION;
    return AIP_RPC_INVALID;
  }
  if (m[K_RESULT] && m[K_ERROR])
    *why = "a response cannot have both result and error";
  else if (m[K_RESULT])
    *why = has_id && !null_id ? NULL : "a response needs a string or number id";
  else if (m[K_ERROR])
    *why = has_id ? NULL : "an error response needs an id";
  else
    *why = "no method, result or error";
  if (*why)
    return AIP_RPC_INVALID;
  return m[K_RESULT] ? AIP_RPC_RESPONSE : AIP_RPC_ERROR;
}

aip_rpc_kind aip_rpc_classify(cJSON *root, aip_rpc_msg *out) {
  cJSON *m[K_COUNT];
  const char *why = NULL;

  memset(out, 0, sizeof(*out));
  out->root = root;
  if (!cJSON_IsObject(root)) {
    out->invalid_reason = cJSON_IsArray(root) ? "batches are not supported"
                                              : "a JSON-RPC message must be an object";
    return AIP_RPC_INVALID;
  }
  why = pick_members(root, envelope_keys, K_COUNT, m);
  if (!why)
    why = check_fields(m);
  if (!why)
    out->kind = kind_of(m, &why);
  if (why) {
    out->kind = AIP_RPC_INVALID;
    out->invalid_reason = why;
    return AIP_RPC_INVALID;
  }
  out->id = m[K_ID];
  out->method = m[K_METHOD] ? m[K_METHOD]->valuestring : NULL;
  out->params = m[K_PARAMS];
  out->result = m[K_RESULT];
  out->error = m[K_ERROR];
  return out->kind;
}

/* ---- error responses ---- */

/* Go echoes the id as raw JSON through json.Marshal, which HTML-escapes it. A parsed number
 * id is echoed with its own bytes (aip_json_parse keeps them), so a 17-digit id comes back
 * unchanged. One the gateway made is printed in full ('f' format, never an exponent): cJSON
 * would print 1e15 as "1e+15", which int64-typed clients (Go's among them) refuse to decode. */
static int put_id(aip_buf *b, const cJSON *id) {
  if (cJSON_IsString(id))
    return aip_buf_json_string(b, id->valuestring, strlen(id->valuestring), 1);
  if (cJSON_IsNumber(id) && id->valuestring)
    return aip_buf_puts(b, id->valuestring);
  if (cJSON_IsNumber(id) && isfinite(id->valuedouble))
    return aip_json_format_float_f(b, id->valuedouble);
  return aip_buf_puts(b, "null");
}

int aip_rpc_error(aip_buf *out, const cJSON *id, int code, const char *message,
                  const char *const *data_kv) {
  size_t start = out->len;
  int err = aip_buf_puts(out, "{\"jsonrpc\":\"2.0\",");

  if (!err && id) {
    err = aip_buf_puts(out, "\"id\":");
    if (!err)
      err = put_id(out, id);
    if (!err)
      err = aip_buf_puts(out, ",");
  }
  if (!err)
    err = aip_buf_printf(out, "\"error\":{\"code\":%d,\"message\":", code);
  if (!err)
    err = aip_buf_json_string(out, message, strlen(message), 1);
  if (!err && data_kv) {
    err = aip_buf_puts(out, ",\"data\":{");
    for (size_t i = 0; !err && data_kv[i] && data_kv[i + 1]; i += 2) {
      if (i)
        err = aip_buf_puts(out, ",");
      if (!err)
        err = aip_buf_json_string(out, data_kv[i], strlen(data_kv[i]), 1);
      if (!err)
        err = aip_buf_puts(out, ":");
      if (!err)
        err = aip_buf_json_string(out, data_kv[i + 1], strlen(data_kv[i + 1]), 1);
    }
    if (!err)
      err = aip_buf_puts(out, "}");
  }
  if (!err)
    err = aip_buf_puts(out, "}}");
  if (err && out->data) { /* leave the buffer as it was */
    out->len = start;
    out->data[start] = '\0';
  }
  return err;
}

cJSON *aip_rpc_error_msg(const cJSON *id, int code, const char *message,
                        const char *const *data_kv) {
  static const cJSON null_id = {.type = cJSON_NULL};
  aip_buf b;
  cJSON *m = NULL;
  aip_buf_init(&b);
  /* rendered once, by aip_rpc_error, and read back: one builder, so the tree and the bytes
   * never differ (an error is rare; the parse costs nothing on the path of a call) */
  if (aip_rpc_error(&b, id ? id : &null_id, code, message, data_kv) == 0 &&
      aip_json_parse(b.data, b.len, &m) != AIP_JSON_OK)
    m = NULL;
  aip_buf_free(&b);
  return m;
}

/* The AIP `data` objects (reference/aip.md section 4 and appendix A). Keys are in Go's sorted
 * order. -32001 says "Tool not in allowed_tools list" for every non-argument block (denied
 * tool, action=block, not listed): the reference does, and clients may match on it. */
int aip_decision_error(aip_buf *out, const cJSON *id, const aip_decision *d,
                       const char *tool_or_method) {
  const char *name = tool_or_method ? tool_or_method : "";
  const char *msg, *kv[10] = {"reason", NULL, "tool", name, NULL};
  aip_buf tmp;
  int err = 0;

  aip_buf_init(&tmp);
  switch (d->error_code) {
  case AIP_ERR_FORBIDDEN:
    if (!d->failed_arg[0]) {
      msg = "Forbidden";
      kv[1] = "Tool not in allowed_tools list";
      break;
    }
    msg = "Argument validation failed";
    err = aip_buf_printf(&tmp, "Argument validation failed for %s", d->failed_arg);
    kv[0] = "arg", kv[1] = d->failed_arg;
    kv[2] = "pattern", kv[3] = d->failed_pattern ? d->failed_pattern : "";
    kv[4] = "reason", kv[5] = tmp.data, kv[6] = "tool", kv[7] = name;
    break;
  case AIP_ERR_RATE_LIMITED:
    msg = "Rate limit exceeded";
    err = aip_buf_printf(&tmp, "Rate limit exceeded for %s. Try again later.", name);
    kv[1] = tmp.data;
    break;
  case AIP_ERR_USER_DENIED:
    msg = "User denied";
    kv[1] = "User explicitly denied the tool call via approval dialog";
    break;
  case AIP_ERR_APPROVAL_TIMEOUT:
    msg = "User approval timeout";
    kv[1] = "User did not respond to approval dialog within timeout";
    break;
  case AIP_ERR_METHOD_NOT_ALLOWED:
    msg = "Method not allowed";
    err = aip_buf_printf(&tmp,
                         "Method '%s' is not in allowed_methods. Add it to your policy to "
                         "permit this method.",
                         name);
    kv[0] = "method", kv[1] = name, kv[2] = "reason", kv[3] = tmp.data;
    break;
  case AIP_ERR_PROTECTED_PATH:
    msg = "Access denied: protected path";
    kv[1] = "The requested operation would access a protected path. This action has been "
            "blocked and logged for security review.";
    break;
  case AIP_ERR_SIGNATURE_INVALID:
    msg = "Policy signature invalid";
    kv[0] = "policy", kv[1] = name, kv[2] = "reason";
    kv[3] = "Policy signature verification failed";
    break;
  case AIP_RPC_PARSE_ERROR:
  case AIP_RPC_INVALID_REQUEST:
  case AIP_RPC_INVALID_PARAMS:
    /* framing errors found by aip_policy_check_msg: the message, no AIP data */
    return aip_rpc_error(out, id, d->error_code, d->error_message ? d->error_message : "Invalid Request",
                         NULL);
  default:
    /* a refusal of the gateway's own (-32603 with its message, -32000...): no AIP data */
    if (!d->error_code)
      return -EINVAL;
    return aip_rpc_error(out, id, d->error_code, d->error_message ? d->error_message : "Internal error",
                         NULL);
  }
  if (!err)
    err = aip_rpc_error(out, id, d->error_code, msg, kv);
  aip_buf_free(&tmp);
  return err;
}
