/* test_gw_sse.c -- the event-stream parser: every split of the input gives the same events;
 * CRLF, CR and LF line ends; multi-line data; comments and other fields ignored; priming
 * events (empty data) skipped; oversized events refused; events past the stream threshold
 * passed on in pieces that add up to the same data, in every split. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http/sse.h"
#include "test.h"

static char got[8][64];
static int ngot;

static int on_event(void *data, const char *p, size_t n) {
  if (ngot < 8) snprintf(got[ngot++], sizeof(got[0]), "%.*s", (int)n, p);
  return 0;
}

static const char stream[] =
    ": comment\r\n"
    "id: 1\r\ndata: \r\n\r\n"                 /* priming: skipped */
    "event: message\r\ndata: {\"a\":1}\r\n\r\n"
    "data: line1\ndata: line2\n\n"
    "retry: 500\rdata:nospace\r\r"
    "data\n\n"                                 /* empty data: skipped */
    "data: tail\n\n";

static void check_events(void) {
  CHECK_INT(ngot, 4);
  CHECK_STR(got[0], "{\"a\":1}");
  CHECK_STR(got[1], "line1\nline2");
  CHECK_STR(got[2], "nospace");
  CHECK_STR(got[3], "tail");
}

/* ---- streaming ---- */

static char streamed[256]; /* "B<held>|<chunks>E" per streamed event, in order */
static int decline;

static void put(const char *p, size_t n) {
  size_t l = strlen(streamed);
  snprintf(streamed + l, sizeof(streamed) - l, "%.*s", (int)n, p);
}

static int s_begin(void *data, const char *held, size_t n) {
  if (decline) return -EINVAL;
  put("B", 1);
  put(held, n);
  put("|", 1);
  return 0;
}

static int s_chunk(void *data, const char *p, size_t n) {
  put(p, n);
  return 0;
}

static int s_end(void *data) {
  put("E", 1);
  return 0;
}

static const aip_sse_stream_cbs cbs = {s_begin, s_chunk, s_end};

/* The chunks after "|" vary with the split; what they add up to must not. */
static void normalize(char *out, size_t cap) {
  size_t o = 0;
  int in_held = 0;
  for (const char *c = streamed; *c && o + 1 < cap; c++) {
    if (*c == 'B') in_held = 1;
    if (*c == '|') {
      in_held = 0;
      continue;
    }
    (void)in_held;
    out[o++] = *c;
  }
  out[o] = 0;
}

static const char big_stream[] =
    "data: small\n\n"                             /* under the threshold: an event */
    "event: message\r\ndata: 0123456789abcdef\r\n" /* over it: streamed */
    ": a comment inside\r\n"
    "data:  two spaces\r\n"
    "data\r\n"
    "data:x\r\n\r\n"
    "data: after\n\n";

static void check_streaming(int per_byte) {
  size_t n = strlen(big_stream);
  for (size_t cut = 0; cut <= n; cut++) {
    aip_sse_parser s;
    aip_sse_init(&s, 1024);
    aip_sse_stream(&s, &cbs, 14);
    ngot = 0;
    streamed[0] = 0;
    if (per_byte) {
      for (size_t i = 0; i < n; i++) CHECK_INT(aip_sse_feed(&s, big_stream + i, 1, on_event, NULL), 0);
      cut = n;
    } else {
      CHECK_INT(aip_sse_feed(&s, big_stream, cut, on_event, NULL), 0);
      CHECK_INT(aip_sse_feed(&s, big_stream + cut, n - cut, on_event, NULL), 0);
    }
    char norm[256];
    normalize(norm, sizeof(norm));
    CHECK_STR(norm, "B0123456789abcdef\n two spaces\n\nxE");
    CHECK_INT(ngot, 2);
    CHECK_STR(got[0], "small");
    CHECK_STR(got[1], "after");
    aip_sse_free(&s);
  }
}


/* ---- held and streamed give the same events (WHATWG event-stream rules) ----
 * An event is recorded as "[data]"; a streamed one as "[" held chunks "]" -- the same bytes
 * when the parser is right, whatever the split and wherever the stream threshold falls. */

static aip_buf rec;

static int r_event(void *data, const char *p, size_t n) {
  aip_buf_append(&rec, "[", 1);
  aip_buf_append(&rec, p, n);
  return aip_buf_append(&rec, "]", 1);
}

static int r_begin(void *data, const char *held, size_t n) {
  aip_buf_append(&rec, "[", 1);
  return aip_buf_append(&rec, held, n);
}

static int r_chunk(void *data, const char *p, size_t n) { return aip_buf_append(&rec, p, n); }
static int r_end(void *data) { return aip_buf_append(&rec, "]", 1); }
static const aip_sse_stream_cbs rcbs = {r_begin, r_chunk, r_end};

/* Events of `in` fed in two pieces at `cut` (or byte by byte when cut is -1), streamed past
 * `after` bytes when after >= 0. */
static int last_rc;

static char *events_of(const char *in, size_t n, long cut, long after) {
  aip_sse_parser s;
  aip_sse_init(&s, 1024);
  if (after >= 0) aip_sse_stream(&s, &rcbs, (size_t)after);
  aip_buf_reset(&rec);
  int rc = 0;
  if (cut < 0)
    for (size_t i = 0; i < n && !rc; i++) rc = aip_sse_feed(&s, in + i, 1, r_event, NULL);
  else if (!(rc = aip_sse_feed(&s, in, (size_t)cut, r_event, NULL)))
    rc = aip_sse_feed(&s, in + cut, n - (size_t)cut, r_event, NULL);
  aip_sse_free(&s);
  last_rc = rc;
  aip_buf_append(&rec, "", 1);
  return strdup(rec.data);
}

/* Every split, byte by byte, and every stream threshold give `want`. */
static void check_same(const char *in, const char *want) {
  size_t n = strlen(in);
  int bad = 0;
  for (long after = -1; after <= (long)n && !bad; after++)
    for (long cut = -1; cut <= (long)n && !bad; cut++) {
      char *got_ = events_of(in, n, cut, after);
      if (strcmp(got_, want) != 0 || last_rc != 0) {
        CHECK_INT(last_rc, 0);
        fprintf(stderr, "stream %s: split %ld, threshold %ld\n", in, cut, after);
        CHECK_STR(got_, want);
        bad = 1;
      }
      free(got_);
    }
  CHECK(!bad);
}

/* Every split and threshold fails with `err`. */
static void check_fails(const char *in, int err) {
  size_t n = strlen(in);
  int bad = 0;
  for (long after = -1; after <= (long)n && !bad; after++)
    for (long cut = -1; cut <= (long)n && !bad; cut++) {
      free(events_of(in, n, cut, after));
      if (last_rc != err) {
        fprintf(stderr, "stream %s: split %ld, threshold %ld\n", in, cut, after);
        CHECK_INT(last_rc, err);
        bad = 1;
      }
    }
  CHECK(!bad);
}

static void test_whatwg(void) {
  aip_buf_init(&rec);
  /* one leading space goes, only one; none is needed */
  check_same("data: a\n\n", "[a]");
  check_same("data:  two\n\n", "[ two]");
  check_same("data:x\r\n\r\n", "[x]");
  check_same("data:0123456789\ndata: abcdefghij\n\n", "[0123456789\nabcdefghij]");
  /* an event with empty data (priming, 2025-11-25) is no message; no data field: no event */
  check_same("data:\n\ndata\n\ndata: \n\nid: 7\n\n\n\ndata: z\n\n", "[z]");
  /* two empty data lines: one '\n' of data */
  check_same("data:\ndata\n\n", "[\n]");
  /* CR, LF and CRLF, also a CR at a piece's edge (the LF after it ends no second line) */
  check_same("data: a\rdata: b\r\r", "[a\nb]");
  check_same("data: a\r\ndata: b\r\n\r\ndata: c\n\r\n", "[a\nb][c]");
  check_same("data: a\n\r\rdata: b\n\n", "[a][b]");
  /* comments, id, retry, event and unknown fields carry nothing; a field needs its exact name */
  check_same(": hi\nid: 1\nretry: 10\nevent: message\ndata: a\nfoo: b\ndatax: c\nData: d\n"
             " data: e\n\n",
             "[a]");
  /* a field without a colon is its name with an empty value */
  check_same("data\ndata: q\n\n", "[\nq]");
  /* a BOM opens the stream and goes; only there, and only a whole one */
  check_same("\xEF\xBB\xBF" "data: bom\n\n", "[bom]");
  check_same("\xEF\xBB\xBF" "data: a\n\n\xEF\xBB\xBF" "data: b\n\n", "[a]");
  check_same("\xEF\xBB" "data: a\n\ndata: b\n\n", "[b]");
  check_same("\xEF" "data: a\n\n", "");
  /* the event type: MCP clients read "message" (the default) only and skip the rest whole */
  check_same("event: ping\ndata: x\n\ndata: y\n\n", "[y]");
  check_same("event: message\ndata: a\n\nevent:message\ndata: b\n\nevent\ndata: c\n\n", "[a][b][c]");
  check_same("event: messages\ndata: a\n\nevent:  message\ndata: b\n\n", "");
  check_same("event: a-very-long-type-name-that-is-not-message\ndata: a\n\n", "");
  check_same("event: x\nevent: message\ndata: a\n\nevent: x\n\ndata: b\n\n", "[a][b]");
  check_same("data: a\nevent: message\n\neventx: y\ndata: c\n\n", "[a][c]");
  /* an event line after the data that changes whether the event is read: refused */
  check_fails("data: a\nevent: x\n\n", -EPROTO);
  check_fails("event: x\ndata: a\nevent: message\n\n", -EPROTO);
  check_fails("event: x\ndata: a\nevent\n\n", -EPROTO);
  aip_buf_free(&rec);
}

/* Feeds `in` in two pieces cut at `cut`; both must succeed. */
static void feed_two(aip_sse_parser *s, const char *in, size_t n, size_t cut) {
  ngot = 0;
  CHECK_INT(aip_sse_feed(s, in, cut, on_event, NULL), 0);
  CHECK_INT(aip_sse_feed(s, in + cut, n - cut, on_event, NULL), 0);
}

/* `id` and `retry` (resumption): the last id is committed at each blank line and kept across
 * events; NUL ignores the field; an unusable id (control bytes, too long) makes the stream not
 * resumable; `retry` takes digits only. Same result in every two-piece split. */
static void test_id_retry(void) {
  static const char in[] =
      "id: p-1\nretry: 500\ndata: \n\n"      /* priming */
      "data: {}\n\n"                         /* no id field: the buffer is kept */
      "id: a\0b\nretry: 5x\ndata: {}\n\n"  /* NUL: ignored; bad retry ignored */
      "id:q-2\nid";                          /* unfinished: not committed */
  size_t n = sizeof(in) - 1;
  for (size_t cut = 0; cut <= n; cut++) {
    aip_sse_parser s;
    aip_sse_init(&s, 1024);
    feed_two(&s, in, n, cut);
    size_t l = 0;
    const char *id = aip_sse_last_id(&s, &l);
    CHECK(id && l == 3 && memcmp(id, "p-1", 3) == 0);
    CHECK_INT((int)s.retry_ms, 500);
    CHECK_INT(ngot, 2);
    /* a bare "id" line clears it; the next blank line commits that */
    CHECK_INT(aip_sse_feed(&s, "\n\n", 2, on_event, NULL), 0);
    CHECK(aip_sse_last_id(&s, NULL) == NULL);
    aip_sse_free(&s);
  }
  aip_sse_parser s;
  aip_sse_init(&s, 1024);
  CHECK_INT(aip_sse_feed(&s, "id: a\x01" "b\n\n", 8, on_event, NULL), 0);
  CHECK(aip_sse_last_id(&s, NULL) == NULL); /* control byte: cannot go in a header */
  char big[AIP_SSE_ID_MAX + 16];
  memset(big, 'x', sizeof(big));
  memcpy(big, "id:", 3);
  memcpy(big + sizeof(big) - 2, "\n\n", 2);
  CHECK_INT(aip_sse_feed(&s, big, sizeof(big), on_event, NULL), 0);
  CHECK(aip_sse_last_id(&s, NULL) == NULL); /* too long */
  CHECK_INT(aip_sse_feed(&s, "id: ok\nretry\n\n", 15, on_event, NULL), 0);
  CHECK(aip_sse_last_id(&s, NULL) != NULL);
  CHECK_INT((int)s.retry_ms, -1);
  aip_sse_free(&s);
}

int main(void) {
  test_whatwg();
  test_id_retry();
  check_streaming(0);
  check_streaming(1);
  /* begin says no: the event is held whole, as without streaming */
  {
    decline = 1;
    aip_sse_parser s;
    aip_sse_init(&s, 1024);
    aip_sse_stream(&s, &cbs, 14);
    ngot = 0;
    streamed[0] = 0;
    CHECK_INT(aip_sse_feed(&s, big_stream, strlen(big_stream), on_event, NULL), 0);
    CHECK_INT(ngot, 3);
    CHECK_STR(got[1], "0123456789abcdef\n two spaces\n\nx");
    CHECK_STR(streamed, "");
    aip_sse_free(&s);
    decline = 0;
  }
  size_t n = strlen(stream);
  /* split in two at every position */
  for (size_t cut = 0; cut <= n; cut++) {
    aip_sse_parser s;
    aip_sse_init(&s, 1024);
    feed_two(&s, stream, n, cut);
    check_events();
    aip_sse_free(&s);
  }
  /* byte by byte */
  aip_sse_parser s;
  aip_sse_init(&s, 1024);
  ngot = 0;
  for (size_t i = 0; i < n; i++) aip_sse_feed(&s, stream + i, 1, on_event, NULL);
  check_events();
  aip_sse_free(&s);
  /* an event over the limit is an error, not a truncation */
  aip_sse_init(&s, 8);
  CHECK_INT(aip_sse_feed(&s, "data: 0123456789\n\n", 18, on_event, NULL), -EMSGSIZE);
  aip_sse_free(&s);
  /* ... also when the stream threshold is above the limit (the event is never streamed) */
  aip_sse_init(&s, 8);
  aip_sse_stream(&s, &cbs, 100);
  CHECK_INT(aip_sse_feed(&s, "data: 0123456789\n\n", 18, on_event, NULL), -EMSGSIZE);
  aip_sse_free(&s);
  aip_sse_init(&s, 8);
  aip_sse_stream(&s, &cbs, 100);
  for (int i = 0; i < 6; i++) CHECK_INT(aip_sse_feed(&s, "data:\n", 6, on_event, NULL), 0);
  /* 10 empty data lines: 9 bytes of data (the joining newlines) */
  CHECK_INT(aip_sse_feed(&s, "data:\ndata:\ndata:\ndata:\n", 24, on_event, NULL), -EMSGSIZE);
  aip_sse_free(&s);
  TEST_MAIN_END();
}
