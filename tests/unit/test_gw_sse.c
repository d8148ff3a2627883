/* test_gw_sse.c -- the event-stream parser: every split of the input gives the same events;
 * CRLF, CR and LF line ends; multi-line data; comments and other fields ignored; priming
 * events (empty data) skipped; oversized events refused. */
#include <errno.h>
#include <string.h>

#include "gateway/sse.h"
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

int main(void) {
  size_t n = strlen(stream);
  /* split in two at every position */
  for (size_t cut = 0; cut <= n; cut++) {
    aip_sse_parser s;
    aip_sse_init(&s, 1024);
    ngot = 0;
    CHECK_INT(aip_sse_feed(&s, stream, cut, on_event, NULL), 0);
    CHECK_INT(aip_sse_feed(&s, stream + cut, n - cut, on_event, NULL), 0);
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
  TEST_MAIN_END();
}
