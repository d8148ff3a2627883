/* sse.c -- incremental event-stream parser (see sse.h). Only the first six bytes of a line are
 * looked at to classify it ("data:", "event:", "id:", "retry:", or exactly such a name); the bytes of a data
 * value go straight to the event's data (held) or to the stream callbacks (streaming), so no
 * line is ever held and a piece boundary can fall anywhere without changing what comes out. */
#include "gateway/http/sse.h"

#include <errno.h>
#include <string.h>

enum { LINE_START, LINE_DATA, LINE_EVENT, LINE_ID, LINE_RETRY, LINE_IGNORE };

/* The fields read, with the line state each starts (index + LINE_DATA). */
static const char *const fields[] = {"data:", "event:", "id:", "retry:"};
#define NFIELDS 4

static const char bom[3] = {'\xEF', '\xBB', '\xBF'};

void aip_sse_init(aip_sse_parser *s, size_t max_event) {
  memset(s, 0, sizeof(*s));
  aip_buf_init(&s->data);
  s->max_event = max_event;
  s->retry_ms = -1;
}

const char *aip_sse_last_id(const aip_sse_parser *s, size_t *n) {
  if (s->last_id_bad || s->last_id_n == 0) return NULL;
  if (n) *n = s->last_id_n;
  return s->last_id;
}

void aip_sse_free(aip_sse_parser *s) { aip_buf_free(&s->data); }

void aip_sse_stream(aip_sse_parser *s, const aip_sse_stream_cbs *cbs, size_t after) {
  s->stream = cbs;
  s->stream_after = after;
}

/* Bytes of the event's data: held, or passed on once the event has outgrown stream_after. */
static int data_bytes(aip_sse_parser *s, const char *p, size_t n, void *data) {
  if (s->ev_other) return 0; /* an event no MCP client reads: nothing is held */
  if (s->streaming) return n ? s->stream->chunk(data, p, n) : 0;
  int may_stream = s->stream && !s->declined;
  /* a streamable event may pass max_event by this piece if it is handed over right below */
  if (s->data.len + n > s->max_event && !may_stream) return -EMSGSIZE;
  if (aip_buf_append(&s->data, p, n)) return -ENOMEM;
  if (!may_stream || s->data.len <= s->stream_after)
    return s->data.len > s->max_event ? -EMSGSIZE : 0;
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
  /* WHATWG: the id buffer becomes the stream's last event id at every blank line, dispatched
   * or not (a priming event has empty data); set first, so a callback sees its own event's id */
  memcpy(s->last_id, s->id_buf, s->id_buf_n);
  s->last_id_n = s->id_buf_n;
  s->last_id_bad = s->id_buf_bad;
  if (s->streaming)
    rc = s->stream->end(data);
  else if (s->has_data && s->data.len && !s->ev_other) /* empty: a priming event */
    rc = cb(data, s->data.data, s->data.len);
  s->streaming = s->declined = s->has_data = s->ev_other = 0;
  aip_buf_reset(&s->data);
  return rc;
}

/* An `event` field ended. The MCP SDK's client reads only events of type "message" (the
 * default): others are skipped whole, as it does. The type must be known before the data is
 * passed on, so an `event` line after a data line that changes which kind the event is, is a
 * protocol error however the stream was cut. */
static int event_type(aip_sse_parser *s) {
  int other = s->ev_long || !(s->ev_n == 0 || (s->ev_n == 7 && memcmp(s->ev, "message", 7) == 0));
  if (s->has_data && other != s->ev_other) return -EPROTO;
  s->ev_other = other;
  return 0;
}

/* An `id` line ended: its value becomes the id buffer, unless it has a NUL (WHATWG). */
static int id_end(aip_sse_parser *s) {
  if (s->id_line_bad == 2) return 0;
  memcpy(s->id_buf, s->id_line, s->id_line_n);
  s->id_buf_n = s->id_line_n;
  s->id_buf_bad = s->id_line_bad;
  return 0;
}

/* A `retry` line ended: ASCII digits only set the reconnection time (saturating), else ignored. */
static int retry_end(aip_sse_parser *s) {
  if (!s->retry_bad && s->retry_n) s->retry_ms = (int64_t)s->retry_acc;
  return 0;
}

static void id_bytes(aip_sse_parser *s, const char *p, size_t n) {
  if (s->strip_space && n && *p == ' ') p++, n--;
  s->strip_space = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == 0) s->id_line_bad = 2;
    else if ((c < 0x21 || c > 0x7e) && !s->id_line_bad) s->id_line_bad = 1;
  }
  if (n > sizeof(s->id_line) - s->id_line_n) {
    if (!s->id_line_bad) s->id_line_bad = 1;
    return;
  }
  memcpy(s->id_line + s->id_line_n, p, n);
  s->id_line_n += n;
}

static void retry_bytes(aip_sse_parser *s, const char *p, size_t n) {
  if (s->strip_space && n && *p == ' ') p++, n--;
  s->strip_space = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') {
      s->retry_bad = 1;
      return;
    }
    s->retry_n = 1;
    s->retry_acc = s->retry_acc > 1000000000000ull ? s->retry_acc : s->retry_acc * 10 + (uint64_t)(p[i] - '0');
  }
}

static int line_end(aip_sse_parser *s, aip_sse_event_cb cb, void *data) {
  int state = s->line, n = s->head_n;
  s->line = LINE_START;
  s->head_n = 0;
  if (state == LINE_EVENT) return event_type(s);
  if (state == LINE_ID) return id_end(s);
  if (state == LINE_RETRY) return retry_end(s);
  if (state != LINE_START) return 0;
  if (n == 0) return dispatch(s, cb, data);
  if (n == 4 && memcmp(s->head, "data", 4) == 0) return data_line(s, data); /* empty value */
  if (n == 5 && memcmp(s->head, "event", 5) == 0) {
    s->ev_n = s->ev_long = 0;
    return event_type(s);
  }
  if (n == 2 && memcmp(s->head, "id", 2) == 0) { /* an empty id clears the buffer */
    s->id_line_n = 0;
    s->id_line_bad = 0;
    return id_end(s);
  }
  return 0; /* "retry" alone: an empty value is not digits */
}

/* One ordinary byte of a line still being classified. */
static int classify(aip_sse_parser *s, char ch, void *data) {
  int n = s->head_n, match = -1, any = 0;
  for (int f = 0; f < NFIELDS; f++) {
    size_t fl = strlen(fields[f]);
    if ((size_t)n < fl && memcmp(s->head, fields[f], (size_t)n) == 0 && ch == fields[f][n]) {
      any = 1;
      if ((size_t)n + 1 == fl) match = f;
    }
  }
  if (!any) {
    s->line = LINE_IGNORE; /* a comment or another field */
    return 0;
  }
  s->head[s->head_n++] = ch;
  if (match < 0) return 0;
  s->line = LINE_DATA + match;
  s->strip_space = 1;
  if (s->line == LINE_DATA) return data_line(s, data);
  if (s->line == LINE_EVENT) s->ev_n = s->ev_long = 0;
  if (s->line == LINE_ID) s->id_line_n = 0, s->id_line_bad = 0;
  if (s->line == LINE_RETRY) s->retry_acc = 0, s->retry_bad = s->retry_n = 0;
  return 0;
}

/* Bytes of an `event` value: only whether it is "message" matters. */
static void event_bytes(aip_sse_parser *s, const char *p, size_t n) {
  if (s->strip_space && n && *p == ' ') p++, n--;
  s->strip_space = 0;
  if (n > sizeof(s->ev) - (size_t)s->ev_n) s->ev_long = 1;
  else memcpy(s->ev + s->ev_n, p, n), s->ev_n += (int)n;
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
      } else if (s->line == LINE_EVENT) {
        event_bytes(s, p + i, j - i);
      } else if (s->line == LINE_ID) {
        id_bytes(s, p + i, j - i);
      } else if (s->line == LINE_RETRY) {
        retry_bytes(s, p + i, j - i);
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
