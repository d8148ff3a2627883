/* sse.c -- incremental event-stream parser (see sse.h). Lines end in "\n", "\r\n" or "\r";
 * a blank line dispatches the event. */
#include "gateway/sse.h"

#include <errno.h>
#include <string.h>

void aip_sse_init(aip_sse_parser *s, size_t max_event) {
  memset(s, 0, sizeof(*s));
  aip_buf_init(&s->line);
  aip_buf_init(&s->data);
  s->max_event = max_event;
}

void aip_sse_free(aip_sse_parser *s) {
  aip_buf_free(&s->line);
  aip_buf_free(&s->data);
}

void aip_sse_stream(aip_sse_parser *s, const aip_sse_stream_cbs *cbs, size_t after) {
  s->stream = cbs;
  s->stream_after = after;
}

static int is_data_line(const char *l, size_t n) {
  return (n == 4 && memcmp(l, "data", 4) == 0) || (n >= 5 && memcmp(l, "data:", 5) == 0);
}

/* Streaming: a line of the streamed event ended. */
static int stream_line_end(aip_sse_parser *s, void *data) {
  const char *l = s->line.data ? s->line.data : "";
  size_t n = s->line.len;
  if (s->line_data) {
    s->line_data = 0;
    return 0;
  }
  if (n == 0) { /* blank line: the event is complete */
    s->streaming = 0;
    return s->stream->end(data);
  }
  if (n == 4 && memcmp(l, "data", 4) == 0) return s->stream->chunk(data, "\n", 1);
  return 0; /* comments and other fields */
}

/* Streaming: the line in progress (in s->line, not yet a data line) may now show it is one. */
static int stream_line_start(aip_sse_parser *s, void *data) {
  if (s->line.len < 5 || memcmp(s->line.data, "data:", 5) != 0) return 0;
  s->line_data = 1;
  s->strip_space = 1;
  int rc = s->stream->chunk(data, "\n", 1); /* joins it to the previous data line */
  const char *v = s->line.data + 5;
  size_t vn = s->line.len - 5;
  aip_buf_reset(&s->line);
  if (rc || !vn) return rc;
  if (*v == ' ') v++, vn--;
  s->strip_space = 0;
  return vn ? s->stream->chunk(data, v, vn) : 0;
}

/* Not streaming yet: a data line in progress has made the event larger than stream_after. */
static int stream_maybe_begin(aip_sse_parser *s, void *data) {
  if (!s->stream || s->declined || s->data.len + s->line.len <= s->stream_after ||
      !is_data_line(s->line.data, s->line.len) || s->line.len < 5)
    return 0;
  const char *v = s->line.data + 5;
  size_t vn = s->line.len - 5;
  if (*v == ' ') v++, vn--;
  if (aip_buf_append(&s->data, v, vn)) return -ENOMEM;
  int rc = s->stream->begin(data, s->data.data, s->data.len);
  if (rc == -EINVAL) { /* held whole after all: undo */
    s->data.len -= vn;
    s->declined = 1;
    return 0;
  }
  aip_buf_reset(&s->data);
  aip_buf_reset(&s->line);
  if (rc) return rc;
  s->streaming = 1;
  s->line_data = 1;
  s->strip_space = 0;
  return 0;
}

/* One complete line (without its terminator). */
static int sse_line(aip_sse_parser *s, aip_sse_event_cb cb, void *data) {
  const char *l = s->line.data ? s->line.data : "";
  size_t n = s->line.len;
  if (s->streaming) return stream_line_end(s, data);
  if (n == 0) { /* blank line: dispatch */
    s->declined = 0;
    int rc = 0;
    /* an event with empty data is a priming event (2025-11-25 resumability): nothing to pass */
    if (s->data.len > 1) rc = cb(data, s->data.data, s->data.len - 1); /* minus the last '\n' */
    aip_buf_reset(&s->data);
    return rc;
  }
  if ((n == 4 && memcmp(l, "data", 4) == 0) || (n >= 5 && memcmp(l, "data:", 5) == 0)) {
    const char *v = l + (n == 4 ? 4 : 5);
    size_t vn = n == 4 ? 0 : n - 5;
    if (vn && *v == ' ') v++, vn--;
    if (s->data.len + vn + 1 > s->max_event) return -EMSGSIZE;
    if (aip_buf_append(&s->data, v, vn) || aip_buf_append(&s->data, "\n", 1)) return -ENOMEM;
  }
  return 0; /* other fields and comments carry nothing for MCP */
}

int aip_sse_feed(aip_sse_parser *s, const char *p, size_t n, aip_sse_event_cb cb, void *data) {
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (s->skip_lf) {
      s->skip_lf = 0;
      if (ch == '\n') continue;
    }
    if (ch == '\r' || ch == '\n') {
      s->skip_lf = ch == '\r';
      int rc = sse_line(s, cb, data);
      aip_buf_reset(&s->line);
      if (rc) return rc;
      continue;
    }
    /* copy the run of ordinary bytes at once */
    size_t j = i;
    while (j < n && p[j] != '\r' && p[j] != '\n') j++;
    if (s->streaming && s->line_data) { /* a streamed data line: pass it on, hold nothing */
      if (s->strip_space && p[i] == ' ') i++;
      s->strip_space = 0;
      int rc = j > i ? s->stream->chunk(data, p + i, j - i) : 0;
      if (rc) return rc;
      i = j - 1;
      continue;
    }
    if (s->line.len + (j - i) > s->max_event) return -EMSGSIZE;
    if (aip_buf_append(&s->line, p + i, j - i)) return -ENOMEM;
    i = j - 1;
    int rc = s->streaming ? stream_line_start(s, data) : stream_maybe_begin(s, data);
    if (rc) return rc;
  }
  return 0;
}
