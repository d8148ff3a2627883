/* mcp/replay.h -- a session's SSE event ids and its bounded replay buffer (docs/routing.md,
 * "Resumable streams"). Pure bookkeeping, no I/O: mcp_http.c writes the events and asks here
 * what a client that resumes with GET + Last-Event-ID has missed.
 *
 * Event ids are "<tag>-<stream>-<seq>": `tag` is 8 lower-case hex digits drawn at random for the
 * session (so an id of another session is recognized as such without naming that session),
 * `stream` the session's stream number (1, 2, ... in the order the streams opened: one per POST
 * answered as SSE, one per GET), `seq` the event's number on its stream (0: the priming event of
 * 2025-11-25, never stored; messages from 1). Decimal, no leading zeros, no sign.
 *
 * Every event written on a stream is kept (its whole SSE text) until the session's events pass
 * limits.max_replay_bytes; then the oldest go first, whatever their stream. An event dropped
 * before it was ever written to a connection is "lost": the resume of its stream says how many
 * (an SSE comment), and a lost final answer is replaced by a JSON-RPC error for the request it
 * answered (mcp_http.c), so the client always gets exactly one answer.
 */
#ifndef AIP_MCP_REPLAY_H
#define AIP_MCP_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define AIP_REPLAY_TAG_LEN 8
#define AIP_EVENT_ID_MAX 48 /* "<8>-<10 digits>-<20 digits>" and the NUL */
/* Stream records kept at most: the oldest ended ones go first (their resume is then refused as
 * unknown). Bounds the memory of a session with very many calls whose events were lost. */
#define AIP_REPLAY_MAX_STREAMS 256
/* What a stored event costs on top of its bytes (the record), in the byte budget. */
#define AIP_REPLAY_EVENT_OVERHEAD 64

typedef struct aip_replay_event aip_replay_event;

typedef struct aip_replay_stream {
  uint32_t id;
  uint64_t next_seq;  /* of the next event (1 after the priming event) */
  int ended;          /* its final message was written: nothing more will come */
  int attached;       /* a connection carries it now (mcp_http.c sets this) */
  int is_get;         /* a GET stream (unrelated messages), not a POST's answer */
  uint64_t held;      /* events of it in the buffer */
  uint64_t lost;      /* events of it dropped before they were ever written to a connection */
  int final_lost;     /* one of them was its final answer */
  uint64_t unkept_seq; /* its answer streamed (too large to keep) as this event; 0: none */
  char *req_id;       /* the JSON of the request it answers (NULL: none, or several) */
  struct aip_replay_stream *prev, *next; /* oldest first */
} aip_replay_stream;

typedef struct aip_replay {
  char tag[AIP_REPLAY_TAG_LEN + 1];
  uint64_t max_bytes;
  uint64_t bytes; /* held, with AIP_REPLAY_EVENT_OVERHEAD per event */
  uint32_t last_stream;
  aip_replay_event *head, *tail; /* oldest first */
  aip_replay_stream *streams, *streams_tail;
  size_t streams_n;
  uint64_t dropped; /* events dropped for the budget, all streams (metrics, logs) */
} aip_replay;

/* `tag`: AIP_REPLAY_TAG_LEN lower-case hex digits (the caller draws them at random). */
void aip_replay_init(aip_replay *r, const char *tag, uint64_t max_bytes);
void aip_replay_free(aip_replay *r);

/* A new stream; `req_id` (may be NULL) is copied. NULL when out of memory. */
aip_replay_stream *aip_replay_open(aip_replay *r, const char *req_id);
aip_replay_stream *aip_replay_find(aip_replay *r, uint32_t id);
/* The next event's id on `st` (its seq is taken): writes "<tag>-<stream>-<seq>" into `out`. */
void aip_replay_next_id(aip_replay *r, aip_replay_stream *st, char out[AIP_EVENT_ID_MAX]);
/* The id of the stream's priming event (seq 0: it takes no seq and is never stored). */
void aip_replay_priming_id(const aip_replay *r, const aip_replay_stream *st,
                           char out[AIP_EVENT_ID_MAX]);
/* Keeps a copy of an event written on `st` (`sent`: it went to a connection; `final`: it is the
 * stream's final answer), then drops the oldest events past the budget. An event larger than
 * the whole budget is not kept (counted as dropped, and lost when not sent). -ENOMEM or 0. */
int aip_replay_store(aip_replay *r, aip_replay_stream *st, const char *ev, size_t n, int sent,
                     int final);
/* The stream got its final message (or will get none): no more events. Frees its record when
 * nothing of it is held or lost. */
void aip_replay_end(aip_replay *r, aip_replay_stream *st);
/* Calls `cb` with every held event of `st` after `seq`, oldest first, and marks them sent
 * (they went to the resuming connection). Returns what cb returned if not 0. */
int aip_replay_each(aip_replay *r, aip_replay_stream *st, uint64_t after,
                    int (*cb)(void *data, const char *ev, size_t n), void *data);
/* The stream is over and no connection carries it any more: end + detach in one (the record
 * may be freed: do not use `st` after). */
void aip_replay_close(aip_replay *r, aip_replay_stream *st);
/* A connection carries the stream now (1) or no longer (0; the record may be freed then: do not
 * use `st` after detaching an ended stream). */
void aip_replay_attach(aip_replay *r, aip_replay_stream *st, int on);
/* What a resume from `after` cannot replay: how many events of `st` after it are not held
 * (dropped for the budget, or an answer too large to keep), and whether its last event is one
 * of them (`*last_missing`; a POST stream's last event is its answer once it ended). */
uint64_t aip_replay_missing(const aip_replay *r, const aip_replay_stream *st, uint64_t after,
                            int *last_missing);
/* After a resume reported the stream's losses (and stood in for an answer it could not
 * replay): they are not reported again. */
void aip_replay_forget_lost(aip_replay *r, aip_replay_stream *st);

/* Parses an event id strictly ("<tag>-<stream>-<seq>" as above). 0, or -EINVAL. */
int aip_event_id_parse(const char *s, size_t n, char tag[AIP_REPLAY_TAG_LEN + 1],
                       uint32_t *stream, uint64_t *seq);

#endif
