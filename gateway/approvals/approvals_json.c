/* approvals_json.c -- an approval record as the API's JSON object (INTERFACES.md section 5),
 * with its `display` fields (approvals_display.c) and the truncated form of stored arguments
 * (store.h) read back. Used by the API's answers and the event stream. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gateway/approvals/approvals.h"

static int add_time(aip_buf *b, const char *key, int64_t ms) {
  if (!ms) return aip_buf_printf(b, ",\"%s\":null", key);
  time_t sec = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  return aip_buf_printf(b, ",\"%s\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", key,
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec, (int)(ms % 1000));
}

static int add_str(aip_buf *b, const char *key, const char *v) {
  int err = aip_buf_printf(b, ",\"%s\":", key);
  if (err) return err;
  return v ? aip_buf_json_string(b, v, strlen(v), 1) : aip_buf_puts(b, "null");
}

/* "key":"<display form of v>" (null for NULL), for the `display` object. */
static int add_display(aip_buf *b, const char *key, const char *v, const char *suffix) {
  if (!v) return aip_buf_printf(b, "\"%s\":null", key);
  aip_buf d;
  aip_buf_init(&d);
  int err = aip_display_string(&d, v, strlen(v));
  if (!err && suffix) err = aip_buf_puts(&d, suffix);
  if (!err) err = aip_buf_printf(b, "\"%s\":", key);
  if (!err) err = aip_buf_json_string(b, d.data ? d.data : "", d.len, 1);
  aip_buf_free(&d);
  return err;
}

/* The stored arguments: an object (shown as it is) or the truncated form of store.h. */
typedef struct shown_args {
  cJSON *root;        /* the truncated form, parsed */
  const char *prefix; /* its prefix, NULL when not truncated */
  double size;
  const char *sha256;
} shown_args;

static void read_args(const char *stored, shown_args *o) {
  memset(o, 0, sizeof(*o));
  if (!stored || stored[0] != '[') return;
  if (aip_json_parse(stored, strlen(stored), &o->root) != AIP_JSON_OK) return;
  const cJSON *n = cJSON_GetArrayItem(o->root, 0), *h = cJSON_GetArrayItem(o->root, 1),
              *p = cJSON_GetArrayItem(o->root, 2);
  if (cJSON_IsArray(o->root) && cJSON_IsNumber(n) && cJSON_IsString(h) && cJSON_IsString(p)) {
    o->size = n->valuedouble;
    o->sha256 = h->valuestring;
    o->prefix = p->valuestring;
  }
}

static int add_args(aip_buf *b, const aip_approval *a, const shown_args *t) {
  if (!t->prefix) /* JSON the gateway itself produced (strictly parsed, then printed) */
    return aip_buf_printf(b, ",\"arguments\":%s,\"arguments_truncated\":false",
                          a->arguments && a->arguments[0] == '{' ? a->arguments : "{}");
  int err = aip_buf_puts(b, ",\"arguments\":");
  if (!err) err = aip_buf_json_string(b, t->prefix, strlen(t->prefix), 1);
  if (!err)
    err = aip_buf_printf(b, ",\"arguments_truncated\":true,\"arguments_size\":%.0f,"
                         "\"arguments_sha256\":\"%.64s\"", t->size, t->sha256);
  return err;
}

/* display: every string an operator reads, in its display-safe form (aip_display_string). */
static int add_display_object(aip_buf *b, const aip_approval *a, const shown_args *t) {
  char suffix[160] = "";
  if (t->prefix)
    snprintf(suffix, sizeof(suffix), " <truncated: %.0f bytes in all, sha256 %.64s>", t->size,
             t->sha256);
  int err = aip_buf_puts(b, ",\"display\":{");
  if (!err) err = add_display(b, "agent", a->agent, NULL);
  if (!err) err = aip_buf_puts(b, ",");
  if (!err) err = add_display(b, "server", a->server, NULL);
  if (!err) err = aip_buf_puts(b, ",");
  if (!err) err = add_display(b, "tool", a->tool, NULL);
  if (!err) err = aip_buf_puts(b, ",");
  if (!err) err = add_display(b, "arguments", t->prefix ? t->prefix : a->arguments ? a->arguments : "{}",
                              t->prefix ? suffix : NULL);
  if (!err) err = aip_buf_puts(b, ",");
  if (!err) err = add_display(b, "decided_by", a->decided_by, NULL);
  if (!err) err = aip_buf_puts(b, ",");
  if (!err) err = add_display(b, "reason", a->reason, NULL);
  if (!err) err = aip_buf_puts(b, "}");
  return err;
}

int aip_approval_to_json(aip_buf *b, const aip_approval *a) {
  shown_args t;
  read_args(a->arguments, &t);
  int err = aip_buf_printf(b, "{\"id\":\"%s\"", a->id);
  if (!err) err = add_str(b, "agent", a->agent);
  if (!err) err = add_str(b, "server", a->server);
  if (!err) err = add_str(b, "tool", a->tool);
  if (!err) err = add_args(b, a, &t);
  if (!err) err = add_time(b, "created_at", a->created_ms);
  if (!err) err = add_time(b, "expires_at", a->expires_ms);
  if (!err) err = aip_buf_printf(b, ",\"status\":\"%s\"", aip_approval_status_name(a->status));
  if (!err) err = add_str(b, "decided_by", a->decided_by);
  if (!err) err = add_time(b, "decided_at", a->decided_ms);
  if (!err) err = add_str(b, "reason", a->reason);
  if (!err) err = add_time(b, "used_at", a->used_ms); /* when a call ran under it */
  if (!err) err = add_display_object(b, a, &t);
  if (!err) err = aip_buf_puts(b, "}");
  cJSON_Delete(t.root);
  return err;
}
