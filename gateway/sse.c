/* sse.c -- incremental event-stream parser (see sse.h). Only the first five bytes of a line are
 * looked at to classify it ("data:" or exactly "data"); the bytes of a data value go straight to
 * the event's data (held) or to the stream callbacks (streaming), so no line is ever held and a
 * piece boundary can fall anywhere without changing what comes out. */
#include "gateway/sse.h"

#include <errno.h>
#include <string.h>

enum { LINE_START, LINE_DATA, LINE_IGNORE };

static const char bom[3] = {'\xEF', '\xBB', '\xBF'};

void aip_sse_init(aip_sse_parser *s, size_t max_event) {
  memset(s, 0, sizeof(*s));
  aip_buf_init(&s->data);
  s->max_event = max_event;
}

void aip_sse_free(aip_sse_parser *s) { aip_buf_free(&s->data); }

void aip_sse_stream(aip_sse_parser *s, const aip_sse_stream_cbs *cbs, size_t after) {
  s->stream = cbs;
  s->stream_after = after;
}

/* Bytes of the event's data: held, or passed on once the event has outgrown stream_after. */
static int data_bytes(aip_sse_parser *s, const char *p, size_t n, void *data) {
  if (s->streaming) return n ? s->stream->chunk(data, p, n) : 0;
  int may_stream = s->stream && !s->declined;
  /* a streamable event may pass max_event by this piece: it is handed over right below */
  if (s->data.len + n > s->max_event && !may_stream) return -EMSGSIZE;
  if (aip_buf_append(&s->data, p, n)) return -ENOMEM;
  if (!may_stream || s->data.len <= s->stream_after) return 0;
  int rc = s->stream->begin(data, s->data.data, s->data.len);
  if (rc == -EINVAL) { /* held whole after all */
    s->declined = 1;
    return s->data.len > s->max_event ? -EMSGSIZE : 0;
  }
  aip_buf_reset(&s->data);
  if (rc) return rc;
  s->streaming = 1;
  return 0;
}

/* A data line begins: it joins the previous one with '\n'. */
static int data_line(aip_sse_parser *s, void *data) {
  int had = s->has_data;
  s->has_data = 1;
  return had ? data_bytes(s, "\n", 1, data) : 0;
}

/* A blank line: the event is complete. */
static int dispatch(aip_sse_parser *s, aip_sse_event_cb cb, void *data) {
  int rc = 0;
  if (s->streaming)
    rc = s->stream->end(data);
  else if (s->has_data && s->data.len) /* empty data: a priming event, nothing to pass */
    rc = cb(data, s->data.data, s->data.len);
  s->streaming = s->declined = s->has_data = 0;
  aip_buf_reset(&s->data);
  return rc;
}

static int line_end(aip_sse_parser *s, aip_sse_event_cb cb, void *data) {
  int state = s->line, pfx = s->pfx;
  s->line = LINE_START;
  s->pfx = 0;
  if (state != LINE_START) return 0;
  if (pfx == 0) return dispatch(s, cb, data);
  return pfx == 4 ? data_line(s, data) : 0; /* "data" alone: a data field, empty value */
}

/* One ordinary byte of a line still being classified. */
static int classify(aip_sse_parser *s, char ch, void *data) {
  if (s->pfx < 4 && ch == "data"[s->pfx]) {
    s->pfx++;
    return 0;
  }
  if (s->pfx == 4 && ch == ':') {
    s->line = LINE_DATA;
    s->strip_space = 1;
    return data_line(s, data);
  }
  s->line = LINE_IGNORE; /* a comment or another field */
  return 0;
}

static int feed_lines(aip_sse_parser *s, const char *p, size_t n, aip_sse_event_cb cb,
                      void *data) {
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (s->skip_lf) {
      s->skip_lf = 0;
      if (ch == '\n') continue;
    }
    int rc = 0;
    if (ch == '\r' || ch == '\n') {
      s->skip_lf = ch == '\r';
      rc = line_end(s, cb, data);
    } else if (s->line == LINE_START) {
      rc = classify(s, ch, data);
    } else { /* the run of ordinary bytes at once */
      size_t j = i;
      while (j < n && p[j] != '\r' && p[j] != '\n') j++;
      if (s->line == LINE_DATA) {
        if (s->strip_space && p[i] == ' ') i++;
        s->strip_space = 0;
        rc = data_bytes(s, p + i, j - i, data);
      }
      i = j - 1;
    }
    if (rc) return rc;
  }
  return 0;
}

int aip_sse_feed(aip_sse_parser *s, const char *p, size_t n, aip_sse_event_cb cb, void *data) {
  /* a BOM may open the stream, maybe split across pieces; a partial one is ordinary bytes */
  while (s->bom >= 0 && s->bom < 3 && n) {
    if (*p != bom[s->bom]) {
      int held = s->bom;
      s->bom = -1;
      int rc = feed_lines(s, bom, (size_t)held, cb, data);
      if (rc) return rc;
      break;
    }
    s->bom++, p++, n--;
  }
  if (s->bom == 3) s->bom = -1;
  return feed_lines(s, p, n, cb, data);
}
