/* engine_internal.h -- helpers shared between the engine's own files; not part of its API. */
#ifndef AIP_ENGINE_INTERNAL_H
#define AIP_ENGINE_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "engine/engine.h"

/* ---- UTF-8 (buf.c) ---- */

/* Length (1..4) of the well-formed UTF-8 sequence at s, 0 if it is not well-formed (overlong,
 * encoded surrogate, above U+10FFFF, truncated). `n` is the number of readable bytes. */
size_t aip_utf8_seq_len(const unsigned char *s, size_t n);
int aip_utf8_valid(const char *s, size_t n);

/* ---- Go-compatible rendering of decoded JSON values (json.c) ---- */

/* strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent. */
int aip_json_format_float_f(aip_buf *b, double v);
/* encoding/json.Marshal of the value Go's json.Unmarshal would have produced from `item`
 * (map[string]any / []any / float64): compact, object keys sorted bytewise, strings
 * HTML-escaped, numbers in Go's float64 format. */
int aip_json_print_go(aip_buf *b, const cJSON *item);

/* ---- name normalization (normalize.c) ---- */

/* Normalizes like aip_normalize_name() without a malloc in the common case: when the result
 * fits, it is written to `stack` (capacity `stack_cap`, NUL-terminated) and *out == stack;
 * otherwise *out is malloc'd and the caller frees it when *out != stack.
 * Returns 0, -EILSEQ (invalid UTF-8) or -ENOMEM. */
int aip_normalize_tmp(const char *s, size_t len, char *stack, size_t stack_cap, char **out,
                      size_t *out_len);

#endif
