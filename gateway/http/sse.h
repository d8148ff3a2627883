/* sse.h -- incremental text/event-stream parser (the WHATWG event-stream format, HTML
 * "9.2.6 Interpreting an event stream"). Feed it bytes as they arrive, in any split: the events
 * are the same as for the whole stream at once. It calls back once per event with its `data`
 * (multiple data lines joined by '\n'). Lines end in LF, CRLF or CR; a leading BOM goes; one
 * space after a field's colon goes; a line without a colon is a field with an empty value.
 * Comments and unknown fields are ignored: MCP carries one JSON-RPC message per event's data.
 * `id` and `retry` are kept for resumption (MCP 2025-11-25 SSE polling, docs/routing.md
 * "Resumable streams"): the last event id (WHATWG: the id buffer, committed at each blank line,
 * kept across events; an `id` value with NUL is ignored) and the reconnection time (a `retry`
 * value of ASCII digits only, else ignored). An event without a data field is not dispatched (WHATWG), and one whose data is
 * empty is not passed on either (the priming event of 2025-11-25 resumability). An event whose
 * `event` type is not "message" (the default) is skipped whole, as the MCP SDK's client skips
 * it; an `event` line after a data line that changes whether the event is skipped is -EPROTO
 * (the data may already have been passed on). */
#ifndef AIP_SSE_H
#define AIP_SSE_H

#include <stddef.h>

#include "engine/engine.h"

typedef int (*aip_sse_event_cb)(void *data, const char *p, size_t n);

/* Optional: an event whose data grows past `after` bytes is passed on in pieces instead of
 * being held (docs/dlp.md, "Streaming in the gateway"). begin gets the data so far (lines
 * joined by '\n', the last one unfinished) and returns 0 to take the event, -EINVAL to leave
 * it whole (capped by max_event as usual), another error to stop the parser. Then chunk gets
 * every further data byte (a '\n' between data lines) and end runs at the blank line that
 * closes the event. Errors they return stop the parser and are returned by aip_sse_feed. */
typedef struct aip_sse_stream_cbs {
  int (*begin)(void *data, const char *held, size_t n);
  int (*chunk)(void *data, const char *p, size_t n);
  int (*end)(void *data);
} aip_sse_stream_cbs;

/* Longest event id kept; a longer one, or one with bytes outside visible ASCII (it goes back in
 * a Last-Event-ID header verbatim), makes the stream not resumable (aip_sse_last_id: NULL). */
#define AIP_SSE_ID_MAX 256

typedef struct aip_sse_parser {
  aip_buf data;     /* the event's data lines so far, joined by '\n' */
  size_t max_event; /* bytes; a larger event is an error */
  int has_data;     /* the event has a data field (even an empty one) */
  int skip_lf;      /* the previous byte was '\r': a '\n' now ends no second line */
  int bom;          /* bytes of a leading BOM matched so far; 3 or -1 once the stream began */
  int line;         /* what the line in progress is: classifying, a data value, ignored */
  char head[6];     /* classifying: the line so far, a prefix of "data:" or "event:" */
  int head_n;
  int strip_space;  /* a field's value starts now: one leading space goes */
  char ev[16];      /* the `event` value in progress (only "message" or not matters) */
  int ev_n, ev_long;
  int ev_other;     /* this event's type is not "message": it is skipped */
  /* `id` and `retry` (resumption) */
  char id_line[AIP_SSE_ID_MAX]; /* the `id` value in progress */
  size_t id_line_n;
  int id_line_bad;  /* too long or not visible ASCII; 2: has NUL (the field is ignored) */
  char id_buf[AIP_SSE_ID_MAX];  /* WHATWG "last event ID buffer" */
  size_t id_buf_n;
  int id_buf_bad;
  char last_id[AIP_SSE_ID_MAX]; /* committed at the last blank line */
  size_t last_id_n;
  int last_id_bad;
  uint64_t retry_acc; /* the `retry` value in progress */
  int retry_bad, retry_n;
  int64_t retry_ms; /* -1: the stream set none */
  /* streaming (aip_sse_stream) */
  const aip_sse_stream_cbs *stream;
  size_t stream_after;
  int streaming;    /* the event in progress goes through `stream` */
  int declined;     /* begin said no: this event is held whole */
} aip_sse_parser;

void aip_sse_init(aip_sse_parser *s, size_t max_event);
void aip_sse_free(aip_sse_parser *s);
/* Streams events larger than `after` bytes through `cbs` (their data pointer is the feed's). */
void aip_sse_stream(aip_sse_parser *s, const aip_sse_stream_cbs *cbs, size_t after);
/* The last event id the stream set (at a dispatched blank line), or NULL when none or unusable. */
const char *aip_sse_last_id(const aip_sse_parser *s, size_t *n);
/* Returns 0, -EMSGSIZE for an oversized event, -EPROTO (see above), -ENOMEM, or what a
 * callback returned. */
int aip_sse_feed(aip_sse_parser *s, const char *p, size_t n, aip_sse_event_cb cb, void *data);

#endif
