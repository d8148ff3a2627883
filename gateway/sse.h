/* sse.h -- incremental text/event-stream parser (the WHATWG event-stream format).
 * Feed it bytes as they arrive, in any split; it calls back once per event with its `data`
 * (multiple data lines joined by '\n'). Comments, `id`, `retry` and `event` fields are
 * ignored: MCP carries one JSON-RPC message per event's data. */
#ifndef AIP_SSE_H
#define AIP_SSE_H

#include <stddef.h>

#include "engine/engine.h"

typedef int (*aip_sse_event_cb)(void *data, const char *p, size_t n);

typedef struct aip_sse_parser {
  aip_buf line;
  aip_buf data;
  size_t max_event; /* bytes; a larger event is an error */
  int skip_lf;      /* the previous chunk ended with '\r' */
} aip_sse_parser;

void aip_sse_init(aip_sse_parser *s, size_t max_event);
void aip_sse_free(aip_sse_parser *s);
/* Returns 0, -EMSGSIZE for an oversized event, -ENOMEM, or what the callback returned. */
int aip_sse_feed(aip_sse_parser *s, const char *p, size_t n, aip_sse_event_cb cb, void *data);

#endif
