/* stream_write.c -- try_write, then queue the rest (see stream_write.h). */
#include "gateway/http/stream_write.h"

#include <errno.h>
#include <stdlib.h>

typedef struct queued {
  uv_write_t w;
  char *data;
  aip_write_done_cb done;
  void *arg;
} queued;

static void on_written(uv_write_t *w, int status) {
  queued *q = (queued *)w;
  aip_write_done_cb done = q->done;
  void *arg = q->arg;
  free(q->data);
  free(q);
  if (done) done(arg, status);
}

int aip_stream_write(uv_stream_t *s, char *data, size_t len, aip_write_done_cb done, void *arg) {
  size_t off = 0;
  if (uv_stream_get_write_queue_size(s) == 0) {
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    int n = uv_try_write(s, &b, 1);
    if (n > 0) off = (size_t)n;
    else if (n < 0 && n != UV_EAGAIN) {
      free(data);
      return n;
    }
  }
  if (off == len) {
    free(data);
    return 0;
  }
  queued *q = malloc(sizeof(*q));
  if (!q) {
    free(data);
    return UV_ENOMEM;
  }
  q->data = data;
  q->done = done;
  q->arg = arg;
  uv_buf_t b = uv_buf_init(data + off, (unsigned)(len - off));
  int err = uv_write(&q->w, s, &b, 1, on_written);
  if (err) {
    free(data);
    free(q);
    return err;
  }
  return 1;
}
