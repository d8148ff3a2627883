/* vectors.c -- the YAML side of the conformance runner: turning vector nodes into JSON, and
 * comparing an expected YAML subtree with the JSON the engine produced. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/conformance/vectors.h"

/* YAML 1.2 core schema for plain scalars: null, bool, int, float; anything else is a string.
 * Quoted scalars are always strings ("8080" stays a string, 8080 becomes a number). */
static int plain_number(const aip_ynode *n, double *out) {
  char *end;
  if (!n->plain || n->len == 0)
    return 0;
  *out = strtod(n->value, &end);
  return *end == '\0' && isfinite(*out) && !strchr(n->value, 'x') && !strchr(n->value, 'X') &&
         n->value[0] != '.' && strcmp(n->value, "inf") != 0;
}

static int plain_bool(const aip_ynode *n, int *out) {
  if (!n->plain)
    return 0;
  if (!strcmp(n->value, "true") || !strcmp(n->value, "True") || !strcmp(n->value, "TRUE"))
    return *out = 1, 1;
  if (!strcmp(n->value, "false") || !strcmp(n->value, "False") || !strcmp(n->value, "FALSE"))
    return *out = 0, 1;
  return 0;
}

cJSON *cv_to_json(const aip_ynode *n) {
  cJSON *out;
  double num;
  int b;

  if (!n || aip_y_is_null(n))
    return cJSON_CreateNull();
  if (n->kind == AIP_YSCALAR) {
    if (plain_bool(n, &b))
      return cJSON_CreateBool(b);
    if (plain_number(n, &num))
      return cJSON_CreateNumber(num);
    return cJSON_CreateString(n->value);
  }
  out = n->kind == AIP_YSEQ ? cJSON_CreateArray() : cJSON_CreateObject();
  if (!out)
    return NULL;
  if (n->kind == AIP_YSEQ) {
    for (size_t i = 0; i < n->n; i++)
      cJSON_AddItemToArray(out, cv_to_json(n->items[i]));
  } else {
    for (size_t i = 0; i + 1 < n->n; i += 2)
      cJSON_AddItemToObject(out, n->items[i]->value, cv_to_json(n->items[i + 1]));
  }
  return out;
}

/* Every member of `want` must be in `got` with an equal value (objects compare as subsets,
 * arrays element by element, scalars by type and value). On a mismatch `path` names where. */
int cv_subset(const aip_ynode *want, const cJSON *got, char *path, size_t cap) {
  size_t plen = strlen(path);
  double num;
  int b;

  if (!want || aip_y_is_null(want))
    return cJSON_IsNull(got);
  if (want->kind == AIP_YMAP) {
    if (!cJSON_IsObject(got))
      return 0;
    for (size_t i = 0; i + 1 < want->n; i += 2) {
      const char *k = want->items[i]->value;
      snprintf(path + plen, cap - plen, ".%s", k);
      if (!cv_subset(want->items[i + 1], cJSON_GetObjectItemCaseSensitive(got, k), path, cap))
        return 0;
      path[plen] = '\0';
    }
    return 1;
  }
  if (want->kind == AIP_YSEQ) {
    if (!cJSON_IsArray(got) || (size_t)cJSON_GetArraySize(got) != want->n)
      return 0;
    for (size_t i = 0; i < want->n; i++) {
      snprintf(path + plen, cap - plen, "[%zu]", i);
      if (!cv_subset(want->items[i], cJSON_GetArrayItem(got, (int)i), path, cap))
        return 0;
      path[plen] = '\0';
    }
    return 1;
  }
  if (plain_bool(want, &b))
    return cJSON_IsBool(got) && cJSON_IsTrue(got) == b;
  if (plain_number(want, &num))
    return cJSON_IsNumber(got) && got->valuedouble == num;
  return cJSON_IsString(got) && strcmp(got->valuestring, want->value) == 0;
}

const char *cv_str(const aip_ynode *map, const char *key) {
  const aip_ynode *n = aip_y_get(map, key);
  return n && n->kind == AIP_YSCALAR && !aip_y_is_null(n) ? n->value : NULL;
}

int cv_int(const aip_ynode *map, const char *key, long long *out) {
  const aip_ynode *n = aip_y_get(map, key);
  char *end;
  if (!n || n->kind != AIP_YSCALAR || aip_y_is_null(n))
    return 0;
  *out = strtoll(n->value, &end, 10);
  return *end == '\0' && n->len > 0;
}
