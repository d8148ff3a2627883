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

/* One complete line (without its terminator). */
static int sse_line(aip_sse_parser *s, aip_sse_event_cb cb, void *data) {
  const char *l = s->line.data ? s->line.data : "";
  size_t n = s->line.len;
  if (n == 0) { /* blank line: dispatch */
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
    if (s->line.len + (j - i) > s->max_event) return -EMSGSIZE;
    if (aip_buf_append(&s->line, p + i, j - i)) return -ENOMEM;
    i = j - 1;
  }
  return 0;
}
