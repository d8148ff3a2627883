/* replay.c -- event ids and the per-session replay buffer (see replay.h). */
#include "gateway/mcp/replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct aip_replay_event {
  aip_replay_stream *st;
  uint64_t seq;
  int sent;  /* written to a connection at least once */
  int final; /* the stream's final answer */
  size_t n;
  aip_replay_event *next;
  char data[]; /* the whole SSE event text */
};

void aip_replay_init(aip_replay *r, const char *tag, uint64_t max_bytes) {
  memset(r, 0, sizeof(*r));
  memcpy(r->tag, tag, AIP_REPLAY_TAG_LEN);
  r->tag[AIP_REPLAY_TAG_LEN] = 0;
  r->max_bytes = max_bytes;
}

static void stream_unlink_free(aip_replay *r, aip_replay_stream *st) {
  if (st->prev) st->prev->next = st->next;
  else r->streams = st->next;
  if (st->next) st->next->prev = st->prev;
  else r->streams_tail = st->prev;
  r->streams_n--;
  free(st->req_id);
  free(st);
}

void aip_replay_free(aip_replay *r) {
  for (aip_replay_event *e = r->head, *n; e; e = n) {
    n = e->next;
    free(e);
  }
  while (r->streams) stream_unlink_free(r, r->streams);
  r->head = r->tail = NULL;
  r->bytes = 0;
}

/* A record no resume can use any more: ended, nothing held, nothing to report. */
static void maybe_release(aip_replay *r, aip_replay_stream *st) {
  if (st->ended && !st->attached && st->held == 0 && st->lost == 0 && st->unkept_seq == 0)
    stream_unlink_free(r, st);
}

aip_replay_stream *aip_replay_open(aip_replay *r, const char *req_id) {
  /* at the cap, the oldest ended record goes (its losses are then never reported) */
  if (r->streams_n >= AIP_REPLAY_MAX_STREAMS) {
    for (aip_replay_stream *st = r->streams; st; st = st->next)
      if (st->ended && !st->attached && st->held == 0) {
        stream_unlink_free(r, st);
        break;
      }
    if (r->streams_n >= AIP_REPLAY_MAX_STREAMS) return NULL;
  }
  aip_replay_stream *st = calloc(1, sizeof(*st));
  if (!st) return NULL;
  if (req_id && !(st->req_id = strdup(req_id))) {
    free(st);
    return NULL;
  }
  st->id = ++r->last_stream;
  st->next_seq = 1;
  st->prev = r->streams_tail;
  if (r->streams_tail) r->streams_tail->next = st;
  else r->streams = st;
  r->streams_tail = st;
  r->streams_n++;
  return st;
}

aip_replay_stream *aip_replay_find(aip_replay *r, uint32_t id) {
  for (aip_replay_stream *st = r->streams; st; st = st->next)
    if (st->id == id) return st;
  return NULL;
}

void aip_replay_next_id(aip_replay *r, aip_replay_stream *st, char out[AIP_EVENT_ID_MAX]) {
  snprintf(out, AIP_EVENT_ID_MAX, "%s-%u-%llu", r->tag, st->id, (unsigned long long)st->next_seq++);
}

void aip_replay_priming_id(const aip_replay *r, const aip_replay_stream *st,
                           char out[AIP_EVENT_ID_MAX]) {
  snprintf(out, AIP_EVENT_ID_MAX, "%s-%u-0", r->tag, st->id);
}

/* The oldest event goes; what it means for its stream is recorded. */
static void drop_oldest(aip_replay *r) {
  aip_replay_event *e = r->head;
  r->head = e->next;
  if (!r->head) r->tail = NULL;
  r->bytes -= e->n + AIP_REPLAY_EVENT_OVERHEAD;
  r->dropped++;
  aip_replay_stream *st = e->st;
  st->held--;
  if (!e->sent) {
    st->lost++;
    if (e->final) st->final_lost = 1;
  }
  free(e);
  maybe_release(r, st);
}

int aip_replay_store(aip_replay *r, aip_replay_stream *st, const char *ev, size_t n, int sent,
                     int final) {
  if (n + AIP_REPLAY_EVENT_OVERHEAD > r->max_bytes) {
    r->dropped++;
    if (!sent) {
      st->lost++;
      if (final) st->final_lost = 1;
    }
    return 0;
  }
  aip_replay_event *e = malloc(sizeof(*e) + n);
  if (!e) return -ENOMEM;
  e->st = st;
  e->seq = st->next_seq - 1; /* the id aip_replay_next_id just gave out */
  e->sent = sent;
  e->final = final;
  e->n = n;
  e->next = NULL;
  memcpy(e->data, ev, n);
  if (r->tail) r->tail->next = e;
  else r->head = e;
  r->tail = e;
  st->held++;
  r->bytes += n + AIP_REPLAY_EVENT_OVERHEAD;
  while (r->bytes > r->max_bytes) drop_oldest(r);
  return 0;
}

void aip_replay_end(aip_replay *r, aip_replay_stream *st) {
  st->ended = 1;
  maybe_release(r, st);
}

int aip_replay_each(aip_replay *r, aip_replay_stream *st, uint64_t after,
                    int (*cb)(void *data, const char *ev, size_t n), void *data) {
  for (aip_replay_event *e = r->head; e; e = e->next) {
    if (e->st != st || e->seq <= after) continue;
    e->sent = 1;
    int rc = cb(data, e->data, e->n);
    if (rc) return rc;
  }
  return 0;
}

uint64_t aip_replay_missing(const aip_replay *r, const aip_replay_stream *st, uint64_t after,
                            int *last_missing) {
  uint64_t last = st->next_seq - 1, held = 0;
  int last_held = 0;
  for (const aip_replay_event *e = r->head; e; e = e->next) {
    if (e->st != st || e->seq <= after) continue;
    held++;
    if (e->seq == last) last_held = 1;
  }
  *last_missing = last > after && !last_held;
  return last > after ? last - after - held : 0;
}

void aip_replay_close(aip_replay *r, aip_replay_stream *st) {
  st->ended = 1;
  st->attached = 0;
  maybe_release(r, st);
}

void aip_replay_attach(aip_replay *r, aip_replay_stream *st, int on) {
  st->attached = on;
  if (!on) maybe_release(r, st);
}

void aip_replay_forget_lost(aip_replay *r, aip_replay_stream *st) {
  (void)r;
  st->lost = 0;
  st->final_lost = 0;
  st->unkept_seq = 0; /* what stands in for it now is kept */
}

/* A decimal number without sign or leading zeros, at most `max`. */
static int parse_dec(const char *s, size_t n, uint64_t max, uint64_t *out) {
  if (n == 0 || n > 20 || (n > 1 && s[0] == '0')) return -EINVAL;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -EINVAL;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (max - d) / 10) return -EINVAL;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int aip_event_id_parse(const char *s, size_t n, char tag[AIP_REPLAY_TAG_LEN + 1],
                       uint32_t *stream, uint64_t *seq) {
  if (n < AIP_REPLAY_TAG_LEN + 4 || s[AIP_REPLAY_TAG_LEN] != '-') return -EINVAL;
  for (size_t i = 0; i < AIP_REPLAY_TAG_LEN; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return -EINVAL;
  const char *a = s + AIP_REPLAY_TAG_LEN + 1, *end = s + n;
  const char *dash = memchr(a, '-', (size_t)(end - a));
  if (!dash) return -EINVAL;
  uint64_t st, sq;
  if (parse_dec(a, (size_t)(dash - a), UINT32_MAX, &st) || st == 0 ||
      parse_dec(dash + 1, (size_t)(end - dash - 1), UINT64_MAX, &sq))
    return -EINVAL;
  memcpy(tag, s, AIP_REPLAY_TAG_LEN);
  tag[AIP_REPLAY_TAG_LEN] = 0;
  *stream = (uint32_t)st;
  *seq = sq;
  return 0;
}
