/* fuzz_sse.c -- the event-stream parser (gateway/http/sse.c). The input, with "\n\n" appended so
 * every event ends, is parsed three ways that must agree exactly:
 *   - by a plain whole-buffer reading of the WHATWG rules written here (the reference), which
 *     also says whether the stream is refused (-EPROTO, sse.h);
 *   - held (no streaming), in pieces cut where the input's first bytes say;
 *   - streamed past a threshold the input chooses, in other pieces ("[" held chunks "]").
 * Events are recorded as "[data]". The last event id and the `retry` value (resumption) must
 * agree too. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http/sse.h"

static aip_buf rec;

static int on_event(void *d, const char *p, size_t n) {
  aip_buf_append(&rec, "[", 1);
  aip_buf_append(&rec, p, n);
  return aip_buf_append(&rec, "]", 1);
}
static int on_begin(void *d, const char *held, size_t n) {
  aip_buf_append(&rec, "[", 1);
  return aip_buf_append(&rec, held, n);
}
static int on_chunk(void *d, const char *p, size_t n) { return aip_buf_append(&rec, p, n); }
static int on_end(void *d) { return aip_buf_append(&rec, "]", 1); }
static const aip_sse_stream_cbs cbs = {on_begin, on_chunk, on_end};

/* The reference: HTML "9.2.6 Interpreting an event stream" for the data and event fields, plus
 * sse.h's rules: empty data is not passed on, a type other than "message" skips the event, and
 * an event line after data that changes that is -EPROTO. Returns 0 or -EPROTO. */
typedef struct ref_ids {
  aip_buf buf, last; /* the id buffer, and its value at the last blank line */
  int buf_bad, last_bad;
  long long retry;
} ref_ids;

static int reference(const char *p, size_t n, aip_buf *out, ref_ids *ids) {
  aip_buf data;
  aip_buf_init(&data);
  int has = 0, other = 0, rc = 0;
  size_t i = 0;
  if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) i = 3;
  while (i < n && !rc) {
    size_t e = i;
    while (e < n && p[e] != '\r' && p[e] != '\n') e++;
    if (e == n) break; /* an unfinished line is never processed */
    const char *l = p + i;
    size_t ln = e - i;
    i = e + (p[e] == '\r' && e + 1 < n && p[e + 1] == '\n' ? 2 : 1);
    if (ln == 0) {
      aip_buf_reset(&ids->last);
      aip_buf_append(&ids->last, ids->buf.data, ids->buf.len);
      ids->last_bad = ids->buf_bad;
      if (has && data.len && !other) {
        aip_buf_append(out, "[", 1);
        aip_buf_append(out, data.data, data.len);
        aip_buf_append(out, "]", 1);
      }
      has = other = 0;
      aip_buf_reset(&data);
      continue;
    }
    const char *colon = memchr(l, ':', ln);
    size_t fn = colon ? (size_t)(colon - l) : ln;
    const char *v = colon ? colon + 1 : l + ln;
    size_t vn = (size_t)(l + ln - v);
    if (vn && *v == ' ') v++, vn--;
    if (fn == 5 && memcmp(l, "event", 5) == 0) {
      int o = !(vn == 0 || (vn == 7 && memcmp(v, "message", 7) == 0));
      if (has && o != other) rc = -EPROTO;
      other = o;
      continue;
    }
    if (fn == 2 && memcmp(l, "id", 2) == 0) {
      if (memchr(v, 0, vn)) continue; /* WHATWG: ignored */
      aip_buf_reset(&ids->buf);
      aip_buf_append(&ids->buf, v, vn);
      ids->buf_bad = vn > AIP_SSE_ID_MAX;
      for (size_t k = 0; k < vn; k++)
        ids->buf_bad |= (unsigned char)v[k] < 0x21 || (unsigned char)v[k] > 0x7e;
      continue;
    }
    if (fn == 5 && memcmp(l, "retry", 5) == 0) {
      size_t k = 0;
      unsigned long long r = 0;
      while (k < vn && v[k] >= '0' && v[k] <= '9') {
        r = r > 1000000000000ull ? r : r * 10 + (unsigned)(v[k] - '0');
        k++;
      }
      if (k == vn && vn) ids->retry = (long long)r;
      continue;
    }
    if (fn != 4 || memcmp(l, "data", 4) != 0) continue;
    if (has) aip_buf_append(&data, "\n", 1);
    aip_buf_append(&data, v, vn);
    has = 1;
  }
  aip_buf_free(&data);
  return rc;
}

/* Feeds `in` in pieces whose sizes come from `seed`. */
static int feed(aip_sse_parser *s, const char *in, size_t n, uint32_t seed) {
  size_t i = 0;
  while (i < n) {
    seed = seed * 1103515245u + 12345u;
    size_t k = 1 + (seed >> 16) % 7;
    if ((seed >> 8) % 4 == 0) k = n - i;
    if (k > n - i) k = n - i;
    int rc = aip_sse_feed(s, in + i, k, on_event, NULL);
    if (rc) return rc;
    i += k;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint32_t seed = data[0];
  size_t after = data[1];
  char *in = malloc(size - 2 + 2);
  memcpy(in, data + 2, size - 2);
  memcpy(in + size - 2, "\n\n", 2);
  size_t n = size;
  aip_buf ref, held;
  aip_buf_init(&ref);
  aip_buf_init(&held);
  ref_ids ids = {.retry = -1};
  aip_buf_init(&ids.buf);
  aip_buf_init(&ids.last);
  int want = reference(in, n, &ref, &ids);

  aip_sse_parser s;
  aip_sse_init(&s, 1u << 24);
  aip_buf_init(&rec);
  if (feed(&s, in, n, seed) != want) abort();
  if (!want) {
    size_t il = 0;
    const char *id = aip_sse_last_id(&s, &il);
    int usable = !ids.last_bad && ids.last.len;
    if (!id != !usable || s.retry_ms != ids.retry) abort();
    if (id && (il != ids.last.len || memcmp(id, ids.last.data, il) != 0)) abort();
  }
  aip_sse_free(&s);
  held = rec;

  aip_sse_init(&s, 1u << 24);
  aip_sse_stream(&s, &cbs, after);
  aip_buf_init(&rec);
  if (feed(&s, in, n, seed * 7 + 3) != want) abort();
  aip_sse_free(&s);

  if (held.len != ref.len || (ref.len && memcmp(held.data, ref.data, ref.len) != 0)) abort();
  /* after an error the stream may have begun an event it could not finish: compare only runs
   * that went to the end */
  if (!want && (rec.len != ref.len || (ref.len && memcmp(rec.data, ref.data, ref.len) != 0)))
    abort();
  aip_buf_free(&rec);
  aip_buf_free(&held);
  aip_buf_free(&ref);
  aip_buf_free(&ids.buf);
  aip_buf_free(&ids.last);
  free(in);
  return 0;
}
