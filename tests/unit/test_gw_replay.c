/* test_gw_replay.c -- event ids (format, strict parse) and the per-session replay buffer:
 * replay after an id on one stream only, the byte budget with the oldest dropped first, losses
 * (events dropped before they were written anywhere, a lost final answer), records freed when
 * nothing of their stream is left, the cap on records. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gateway/mcp/replay.h"
#include "test.h"

static char seen[512];

static int collect(void *data, const char *ev, size_t n) {
  size_t l = strlen(seen);
  snprintf(seen + l, sizeof(seen) - l, "%.*s|", (int)n, ev);
  return 0;
}

/* Stores one event with the next id of `st`; returns its seq. */
static uint64_t put(aip_replay *r, aip_replay_stream *st, const char *text, int sent, int final) {
  char id[AIP_EVENT_ID_MAX];
  aip_replay_next_id(r, st, id);
  char tag[9];
  uint32_t s;
  uint64_t q;
  CHECK_INT(aip_event_id_parse(id, strlen(id), tag, &s, &q), 0);
  CHECK_STR(tag, "0123abcd");
  CHECK_INT((int)s, (int)st->id);
  CHECK_INT(aip_replay_store(r, st, text, strlen(text), sent, final), 0);
  return q;
}

static void test_ids(void) {
  char tag[9];
  uint32_t s;
  uint64_t q;
  CHECK_INT(aip_event_id_parse("0123abcd-1-0", 12, tag, &s, &q), 0);
  CHECK_INT((int)s, 1);
  CHECK(q == 0);
  CHECK_INT(aip_event_id_parse("0123abcd-4294967295-18446744073709551615", 40, tag, &s, &q), 0);
  CHECK(s == 4294967295u && q == UINT64_MAX);
  static const char *const bad[] = {
      "", "0123abcd", "0123abcd-1", "0123abcd-1-", "0123abcd--1", "0123abcd-0-1" /* no stream 0 */,
      "0123ABCD-1-1" /* upper case */, "0123abc-1-1", "0123abcde-1-1", "0123abcd-01-1",
      "0123abcd-1-01", "0123abcd-4294967296-1", "0123abcd-1-18446744073709551616",
      "0123abcd-1-1-1", "0123abcd-+1-1", "0123abcd-1- 1", "0123abcd-1-1x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CHECK_INT(aip_event_id_parse(bad[i], strlen(bad[i]), tag, &s, &q), -EINVAL);
}

static void test_replay(void) {
  aip_replay r;
  aip_replay_init(&r, "0123abcd", 4 * (AIP_REPLAY_EVENT_OVERHEAD + 2));
  aip_replay_stream *a = aip_replay_open(&r, "7"), *b = aip_replay_open(&r, NULL);
  CHECK_INT((int)a->id, 1);
  CHECK_INT((int)b->id, 2);
  CHECK(aip_replay_find(&r, 2) == b && aip_replay_find(&r, 3) == NULL);
  char pid[AIP_EVENT_ID_MAX];
  aip_replay_priming_id(&r, a, pid);
  CHECK_STR(pid, "0123abcd-1-0");
  put(&r, a, "a1", 1, 0);
  put(&r, b, "b1", 1, 0);
  uint64_t a2 = put(&r, a, "a2", 0, 0);
  put(&r, a, "a3", 0, 1);
  /* only stream a, only after the id asked for */
  seen[0] = 0;
  CHECK_INT(aip_replay_each(&r, a, 1, collect, NULL), 0);
  CHECK_STR(seen, "a2|a3|");
  seen[0] = 0;
  CHECK_INT(aip_replay_each(&r, a, 0, collect, NULL), 0);
  CHECK_STR(seen, "a1|a2|a3|");
  CHECK(a2 == 2);
  int lm;
  CHECK(aip_replay_missing(&r, a, 0, &lm) == 0 && !lm);
  /* over budget: the oldest (a1, b1: both sent) go, nothing lost */
  put(&r, b, "b2", 0, 0);
  put(&r, b, "b3", 0, 0);
  CHECK(r.dropped == 2 && r.bytes <= r.max_bytes);
  /* a1 is gone: a resume from a's start misses 1 (written once, but not to this client) */
  CHECK(aip_replay_missing(&r, a, 0, &lm) == 1 && !lm);
  CHECK(aip_replay_missing(&r, a, 1, &lm) == 0 && !lm);
  CHECK(a->lost == 0 && b->lost == 0);
  /* a2, a3 were replayed above (sent): dropping them loses nothing either */
  put(&r, b, "b4", 0, 0);
  put(&r, b, "b5", 0, 1);
  CHECK(a->held == 0 && a->lost == 0);
  /* b2 and b3 were never written anywhere: they are lost when dropped */
  aip_replay_end(&r, b);
  aip_replay_stream *c = aip_replay_open(&r, NULL);
  put(&r, c, "c1", 0, 0);
  put(&r, c, "c2", 0, 1);
  CHECK(aip_replay_find(&r, 2) == b);
  CHECK((int)b->lost == 2 && !b->final_lost);
  /* c's final answer is bigger than the whole budget: lost at once */
  aip_replay_stream *d = aip_replay_open(&r, "\"x\"");
  char big[400];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  put(&r, d, big, 0, 1);
  CHECK(d->final_lost && d->lost == 1 && d->held == 0);
  CHECK(aip_replay_missing(&r, d, 0, &lm) == 1 && lm);
  CHECK_STR(d->req_id, "\"x\"");
  /* an ended stream with nothing held or lost is freed; attached ones stay until detached */
  aip_replay_end(&r, a);
  CHECK(aip_replay_find(&r, 1) == NULL);
  aip_replay_attach(&r, d, 1);
  aip_replay_forget_lost(&r, d);
  aip_replay_end(&r, d);
  CHECK(aip_replay_find(&r, d->id) == d);
  aip_replay_attach(&r, d, 0);
  CHECK(aip_replay_find(&r, 4) == NULL);
  /* close = end + detach: freed at once when nothing is left of it */
  aip_replay_stream *e = aip_replay_open(&r, NULL);
  uint32_t eid = e->id;
  aip_replay_attach(&r, e, 1);
  aip_replay_close(&r, e);
  CHECK(aip_replay_find(&r, eid) == NULL);
  /* an answer that streamed unkept keeps its record until a resume stood in for it */
  aip_replay_stream *f = aip_replay_open(&r, "1");
  uint32_t fid = f->id;
  f->unkept_seq = 1;
  aip_replay_close(&r, f);
  CHECK(aip_replay_find(&r, fid) == f);
  aip_replay_attach(&r, f, 1);
  aip_replay_forget_lost(&r, f);
  CHECK(f->unkept_seq == 0);
  aip_replay_attach(&r, f, 0);
  CHECK(aip_replay_find(&r, fid) == NULL);
  aip_replay_free(&r);
}

/* At most AIP_REPLAY_MAX_STREAMS records: the oldest ended, nothing held, goes first. */
static void test_cap(void) {
  aip_replay r;
  aip_replay_init(&r, "0123abcd", 1 << 20);
  aip_replay_stream *first = NULL;
  for (int i = 0; i < AIP_REPLAY_MAX_STREAMS; i++) {
    aip_replay_stream *st = aip_replay_open(&r, NULL);
    CHECK(st != NULL);
    if (!first) first = st;
    st->lost = 1; /* kept after its end */
    aip_replay_end(&r, st);
  }
  CHECK(aip_replay_find(&r, 1) == first);
  aip_replay_stream *more = aip_replay_open(&r, NULL);
  CHECK(more != NULL && more->id == AIP_REPLAY_MAX_STREAMS + 1);
  CHECK(aip_replay_find(&r, 1) == NULL);
  CHECK(r.streams_n == AIP_REPLAY_MAX_STREAMS);
  aip_replay_free(&r);
  /* all open: no room */
  aip_replay_init(&r, "0123abcd", 1 << 20);
  for (int i = 0; i < AIP_REPLAY_MAX_STREAMS; i++) CHECK(aip_replay_open(&r, NULL) != NULL);
  CHECK(aip_replay_open(&r, NULL) == NULL);
  aip_replay_free(&r);
}

int main(void) {
  test_ids();
  test_replay();
  test_cap();
  TEST_MAIN_END();
}
