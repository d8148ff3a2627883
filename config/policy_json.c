/* policy_json.c -- a policy's YAML as a JSON value, and the canonical bytes a signature covers
 * (AIP v1alpha2 section 5.2.1: drop metadata.signature, serialize with RFC 8785).
 *
 * AIP does not say how YAML scalars become JSON, and YAML readers disagree (`yes` is a boolean
 * in YAML 1.1 and a string in 1.2; `1e3` a number in 1.2 and a string in 1.1; `1.0` and `1` are
 * one number to both). The rules here make the mapping one-to-one on the documents we accept:
 *   - quoted, block (| >) and tagged scalars are strings, as the config readers take them;
 *   - plain empty, ~, null, Null, NULL are null (the config layer treats all as absent);
 *   - plain true and false are booleans;
 *   - a plain number already in its canonical JSON form (`5`, `-1.5`, `0.25`) is a number;
 *   - any other plain scalar that a YAML 1.1 or 1.2 reader would type as a number, boolean or
 *     date (`1.0`, `007`, `0x1F`, `1_000`, `1e3`, `12:30`, `.inf`, `yes`, `Off`, `True`, `y`,
 *     `2026-01-01`) is refused, telling the author to write the canonical form or quote it;
 *   - every other plain scalar is a string; mapping keys are strings, and a plain key that
 *     some reader would type otherwise (`yes:`, `1:`, `null:`) is refused the same way.
 * So a signature never covers two texts the gateway would read differently (`version: 1.10`
 * and `version: 1.1`), and any YAML reader gets the same JSON back for a document we sign.
 */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "config/signing.h"
#include "config/yaml_doc.h"

/* Every plain scalar some YAML 1.1 (PyYAML, yaml.v2) or 1.2 core reader takes for a number. */
static const char number_like[] =
    "^([-+]?[0-9][0-9_]*"                          /* decimal (1.1: underscores, 0-octal) */
    "|[-+]?0b[01_]+|[-+]?0x[0-9a-fA-F_]+|0o[0-7]+" /* binary, hex, 1.2 octal */
    "|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\\.[0-9_]*)?" /* 1.1 sexagesimal */
    "|[-+]?[0-9][0-9_]*\\.[0-9_]*([eE][-+]?[0-9]+)?"
    "|[-+]?\\.[0-9][0-9_]*([eE][-+]?[0-9]+)?"
    "|[-+]?[0-9]+[eE][-+]?[0-9]+" /* 1.2 exponent without a dot */
    "|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN))$";

/* YAML 1.1 timestamps (PyYAML turns them into dates, which are not JSON at all). */
static const char timestamp_like[] =
    "^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\\.[0-9]*)?"
    "([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)?$";

/* Booleans of YAML 1.1 (yaml.v2 included y/n) and 1.2 core, other than true and false. */
static const char *const bool_like[] = {"y",     "Y",     "yes", "Yes", "YES", "n",  "N",
                                        "no",    "No",    "NO",  "True", "TRUE", "False",
                                        "FALSE", "on",    "On",  "ON",  "off", "Off", "OFF",
                                        NULL};

typedef struct conv {
  const aip_ydoc *y;
  regex_t number_re, timestamp_re;
  aip_error *err;
} conv;

/* The JSON number grammar, which is stricter than YAML's (no +, no leading zeros, no bare dot). */
static int json_number_text(const char *s) {
  if (*s == '-') s++;
  if (*s == '0') s++;
  else if (*s >= '1' && *s <= '9') while (*s >= '0' && *s <= '9') s++;
  else return 0;
  if (*s == '.') {
    if (!(*++s >= '0' && *s <= '9')) return 0;
    while (*s >= '0' && *s <= '9') s++;
  }
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-') s++;
    if (!(*s >= '0' && *s <= '9')) return 0;
    while (*s >= '0' && *s <= '9') s++;
  }
  return *s == '\0';
}

typedef enum plain_kind {
  P_STRING = 0,
  P_NULL,
  P_TRUE,
  P_FALSE,
  P_NUMBER,    /* canonical: the same number to every reader */
  P_AMBIGUOUS  /* typed by some reader, with no single JSON form: refused */
} plain_kind;

/* How every YAML reader would type a plain scalar; `what` (for P_AMBIGUOUS) names the type. */
static plain_kind classify(const conv *c, const aip_ynode *n, const char **what) {
  const char *v = n->value;
  *what = "a number";
  if (aip_y_is_null(n)) return P_NULL;
  if (strcmp(v, "true") == 0) return P_TRUE;
  if (strcmp(v, "false") == 0) return P_FALSE;
  for (size_t i = 0; bool_like[i]; i++) {
    if (strcmp(v, bool_like[i]) != 0) continue;
    *what = "a boolean";
    return P_AMBIGUOUS;
  }
  if (strcmp(v, "=") == 0 || strcmp(v, "<<") == 0 ||
      regexec(&c->timestamp_re, v, 0, NULL, 0) == 0) {
    *what = strcmp(v, "=") == 0 ? "a YAML 1.1 value key" : v[0] == '<' ? "a merge key" : "a date";
    return P_AMBIGUOUS;
  }
  if (regexec(&c->number_re, v, 0, NULL, 0) != 0) return P_STRING;
  /* A number. Only its canonical text is accepted, and an exponent only with a dot (YAML 1.1
   * reads `1e+21` as a string). */
  char canon[AIP_JCS_NUMBER_MAX];
  if (json_number_text(v) && aip_jcs_number(strtod(v, NULL), canon) == 0 &&
      strcmp(canon, v) == 0 && (!strpbrk(v, "eE") || strchr(v, '.')))
    return P_NUMBER;
  return P_AMBIGUOUS;
}

static cJSON *plain_scalar(conv *c, const aip_ynode *n) {
  const char *what;
  char q[AIP_Y_QUOTE_MAX], canon[AIP_JCS_NUMBER_MAX] = "";
  switch (classify(c, n, &what)) {
    case P_STRING: return cJSON_CreateString(n->value);
    case P_NULL: return cJSON_CreateNull();
    case P_TRUE: return cJSON_CreateTrue();
    case P_FALSE: return cJSON_CreateFalse();
    case P_NUMBER: return cJSON_CreateNumber(strtod(n->value, NULL));
    case P_AMBIGUOUS: break;
  }
  aip_y_quote(q, sizeof q, n->value);
  if (strcmp(what, "a number") == 0 && json_number_text(n->value) &&
      aip_jcs_number(strtod(n->value, NULL), canon) == 0 && !strpbrk(canon, "eE"))
    aip_y_errf(c->y, n, c->err,
               "%s reads as a number but has no single JSON form: write %s, or quote it, "
               "before signing", q, canon);
  else
    aip_y_errf(c->y, n, c->err,
               "%s reads as %s to some YAML readers and as a string to others: quote it "
               "before signing", q, what);
  return NULL;
}

/* Mapping keys are JSON strings, so a plain key must be a string to every reader (`yes:` is
 * the key true to YAML 1.1, `1.0:` the number 1). */
static int plain_key_ok(conv *c, const aip_ynode *k) {
  const char *what;
  if (!k->plain || classify(c, k, &what) == P_STRING) return 1;
  char q[AIP_Y_QUOTE_MAX];
  aip_y_errf(c->y, k, c->err,
             "the key %s is not a plain string to every YAML reader: quote it before signing",
             aip_y_quote(q, sizeof q, k->value));
  return 0;
}

static cJSON *node(conv *c, const aip_ynode *n) {
  if (n->kind == AIP_YSCALAR) {
    cJSON *v = n->plain ? plain_scalar(c, n) : cJSON_CreateString(n->value);
    if (!v && !c->err->msg[0]) aip_error_set(c->err, -ENOMEM, "out of memory");
    return v;
  }
  cJSON *v = n->kind == AIP_YMAP ? cJSON_CreateObject() : cJSON_CreateArray();
  if (!v) {
    aip_error_set(c->err, -ENOMEM, "out of memory");
    return NULL;
  }
  size_t step = n->kind == AIP_YMAP ? 2 : 1;
  for (size_t i = 0; i + step - 1 < n->n; i += step) {
    if (step == 2 && !plain_key_ok(c, n->items[i])) {
      cJSON_Delete(v);
      return NULL;
    }
    cJSON *item = node(c, n->items[i + step - 1]);
    int ok = item && (n->kind == AIP_YMAP ? cJSON_AddItemToObject(v, n->items[i]->value, item)
                                          : cJSON_AddItemToArray(v, item));
    if (!ok) {
      if (item) aip_error_set(c->err, -ENOMEM, "out of memory");
      cJSON_Delete(item);
      cJSON_Delete(v);
      return NULL;
    }
  }
  return v;
}

static int to_json(const aip_ydoc *y, cJSON **out, aip_error *err) {
  *out = NULL;
  if (!y->root) return aip_y_errf(y, NULL, err, "the policy is empty");
  conv c = {.y = y, .err = err};
  if (regcomp(&c.number_re, number_like, REG_EXTENDED | REG_NOSUB))
    return aip_error_set(err, -ENOMEM, "out of memory");
  if (regcomp(&c.timestamp_re, timestamp_like, REG_EXTENDED | REG_NOSUB)) {
    regfree(&c.number_re);
    return aip_error_set(err, -ENOMEM, "out of memory");
  }
  err->msg[0] = '\0';
  *out = node(&c, y->root);
  regfree(&c.number_re);
  regfree(&c.timestamp_re);
  return *out ? 0 : -EINVAL;
}

int aip_policy_json(const char *yaml, size_t len, const char *name, cJSON **out, aip_error *err) {
  aip_ydoc *y = NULL;
  *out = NULL;
  int rc = aip_ydoc_load_string(yaml, len, name, &y, err);
  if (!rc) rc = to_json(y, out, err);
  aip_ydoc_free(y);
  return rc;
}

int aip_policy_canonical(const char *yaml, size_t len, const char *name, char **canon,
                         size_t *canon_len, char **sig, aip_src_pos *sig_pos, aip_error *err) {
  aip_ydoc *y = NULL;
  cJSON *doc = NULL;
  *canon = NULL;
  if (sig) *sig = NULL;
  int rc = aip_ydoc_load_string(yaml, len, name, &y, err);
  if (rc) return rc;
  /* The signature is looked up first, so a caller learns "unsigned" even when the rest of the
   * document cannot be canonicalized. */
  const aip_ynode *meta = y->root && y->root->kind == AIP_YMAP ? aip_y_get(y->root, "metadata")
                                                               : NULL;
  const aip_ynode *s = aip_y_get(meta, "signature");
  if (s && s->kind != AIP_YSCALAR)
    rc = aip_y_errf(y, s, err, "metadata.signature: expected a string");
  if (!rc && s && !aip_y_is_null(s)) {
    if (sig_pos) *sig_pos = s->pos;
    if (sig && !(*sig = strdup(s->value))) rc = aip_error_set(err, -ENOMEM, "out of memory");
  } else if (!rc && sig) {
    rc = aip_error_set(err, AIP_ENOT_SIGNED, "%s: the policy is not signed (no metadata.signature)",
                       y->file);
  }
  if (!rc) rc = to_json(y, &doc, err);
  if (!rc) {
    cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    if (cJSON_IsObject(m)) cJSON_DeleteItemFromObjectCaseSensitive(m, "signature");
    rc = aip_jcs_serialize(doc, canon, canon_len, err);
  }
  cJSON_Delete(doc);
  aip_ydoc_free(y);
  return rc;
}
