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
 *   - any other plain scalar that a YAML 1.1 or 1.2 reader would type as a number or boolean
 *     (`1.0`, `007`, `0x1F`, `1_000`, `1e3`, `12:30`, `.inf`, `yes`, `Off`, `True`, `y`) is
 *     refused, telling the author to write the canonical form or quote it;
 *   - every other plain scalar is a string; mapping keys are always strings.
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

/* Booleans of YAML 1.1 (yaml.v2 included y/n) and 1.2 core, other than true and false. */
static const char *const bool_like[] = {"y",     "Y",     "yes", "Yes", "YES", "n",  "N",
                                        "no",    "No",    "NO",  "True", "TRUE", "False",
                                        "FALSE", "on",    "On",  "ON",  "off", "Off", "OFF",
                                        NULL};

typedef struct conv {
  const aip_ydoc *y;
  regex_t number_re;
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

static cJSON *plain_scalar(conv *c, const aip_ynode *n) {
  char q[AIP_Y_QUOTE_MAX];
  if (aip_y_is_null(n)) return cJSON_CreateNull();
  if (strcmp(n->value, "true") == 0) return cJSON_CreateTrue();
  if (strcmp(n->value, "false") == 0) return cJSON_CreateFalse();
  for (size_t i = 0; bool_like[i]; i++) {
    if (strcmp(n->value, bool_like[i]) != 0) continue;
    aip_y_errf(c->y, n, c->err,
               "%s reads as a boolean to some YAML readers and as a string to others: write "
               "true or false, or quote it, before signing",
               aip_y_quote(q, sizeof q, n->value));
    return NULL;
  }
  if (regexec(&c->number_re, n->value, 0, NULL, 0) != 0) return cJSON_CreateString(n->value);
  /* A number. Only its canonical text is accepted, and an exponent only with a dot (YAML 1.1
   * reads `1e+21` as a string). */
  char canon[AIP_JCS_NUMBER_MAX] = "";
  double d = strtod(n->value, NULL);
  int ok = json_number_text(n->value) && aip_jcs_number(d, canon) == 0 &&
           strcmp(canon, n->value) == 0 && (!strpbrk(n->value, "eE") || strchr(n->value, '.'));
  if (ok) return cJSON_CreateNumber(d);
  if (canon[0] && !strpbrk(canon, "eE"))
    aip_y_errf(c->y, n, c->err,
               "%s reads as a number but has no single JSON form: write %s, or quote it, "
               "before signing",
               aip_y_quote(q, sizeof q, n->value), canon);
  else
    aip_y_errf(c->y, n, c->err,
               "%s reads as a number to some YAML readers but has no single JSON form: quote "
               "it before signing",
               aip_y_quote(q, sizeof q, n->value));
  return NULL;
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
  err->msg[0] = '\0';
  *out = node(&c, y->root);
  regfree(&c.number_re);
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
