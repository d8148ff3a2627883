/* vectors.h -- YAML helpers of the conformance runner (vectors.c). */
#ifndef AIP_CONFORMANCE_VECTORS_H
#define AIP_CONFORMANCE_VECTORS_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "config/yaml_doc.h"

/* A YAML value as JSON (core schema for plain scalars; quoted scalars are strings). */
cJSON *cv_to_json(const aip_ynode *n);
/* 1 when `got` holds everything `want` says (objects as subsets); else 0 and `path` (capacity
 * `cap`, initially "" or a prefix) names the first difference. */
int cv_subset(const aip_ynode *want, const cJSON *got, char *path, size_t cap);
/* Scalar member `key` of `map` as text (NULL when absent or null). */
const char *cv_str(const aip_ynode *map, const char *key);
/* Integer member: 1 and *out set, or 0 when absent, null or not an integer. */
int cv_int(const aip_ynode *map, const char *key, long long *out);

#endif
