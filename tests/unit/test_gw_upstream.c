/* test_gw_upstream.c -- the upstream core with a scripted in-memory transport: handshake, id
 * rewriting, progress token re-keying, late answers, death of the instance, timeouts and
 * restart with backoff. No process is spawned: the transport records what is sent and the test
 * plays the server. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/upstream/upstream.h"
#include "test.h"

static uv_loop_t *loop;
static cJSON *sent[64];
static int sent_n;
static int starts, stops;

static int fake_start(aip_upstream *u) {
  starts++;
  aip_upstream_transport_up(u);
  return 0;
}

static int fake_send(aip_upstream *u, uint64_t id, const char *p, size_t n) {
  cJSON *m = NULL;
  CHECK_INT(aip_json_parse(p, n, &m), AIP_JSON_OK);
  if (sent_n < 64) sent[sent_n++] = m;
  else cJSON_Delete(m);
  return 0;
}

static void fake_stop(aip_upstream *u) {
  stops++;
  aip_upstream_transport_stopped(u);
}

static void fake_free(aip_upstream *u) {}

static const aip_upstream_ops fake_ops = {fake_start, fake_send, NULL, fake_stop, fake_free, NULL};

static void server_says(aip_upstream *u, const char *json) {
  aip_upstream_transport_message(u, json, strlen(json));
}

static const cJSON *last_sent(void) { return sent_n ? sent[sent_n - 1] : NULL; }

static double sent_id(int i) { return cJSON_GetObjectItem(sent[i], "id")->valuedouble; }

/* The calls' callbacks record what they got. */
typedef struct got {
  cJSON *final;
  int progress;
  char token[32];
} got;

static void on_msg(aip_upstream_call *c, cJSON *msg, int final, void *data) {
  got *g = data;
  if (final) {
    g->final = msg;
    return;
  }
  g->progress++;
  cJSON *tok = cJSON_GetObjectItem(cJSON_GetObjectItem(msg, "params"), "progressToken");
  snprintf(g->token, sizeof(g->token), "%s", cJSON_IsString(tok) ? tok->valuestring : "?");
  cJSON_Delete(msg);
}

static void handshake(aip_upstream *u) {
  /* the first call triggers start + initialize */
  CHECK_STR(cJSON_GetObjectItem(sent[0], "method")->valuestring, "initialize");
  char buf[160];
  snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{}}}", sent_id(0));
  server_says(u, buf);
  CHECK_STR(cJSON_GetObjectItem(sent[1], "method")->valuestring, "notifications/initialized");
}

static void reset_sent(void) {
  for (int i = 0; i < sent_n; i++) cJSON_Delete(sent[i]);
  sent_n = 0;
}

/* A sink that records a streamed answer. */
typedef struct sunk {
  aip_buf head, body;
  int begun, ended, end_err;
  int chunk_rc; /* what chunk answers */
  int decline;  /* begin refuses */
} sunk;

/* The sink's data is the call's callback data: a `got` first, for the buffered path. */
typedef struct both {
  got g;
  sunk k;
} both;

static int sink_begin(void *data, const char *head, size_t n) {
  sunk *k = &((both *)data)->k;
  if (k->decline) return -EBUSY;
  k->begun++;
  return aip_buf_append(&k->head, head, n);
}

static int sink_chunk(void *data, const char *p, size_t n) {
  sunk *k = &((both *)data)->k;
  aip_buf_append(&k->body, p, n);
  return k->chunk_rc;
}

static void sink_end(void *data, int err) {
  sunk *k = &((both *)data)->k;
  k->ended++;
  k->end_err = err;
}

static const aip_upstream_sink test_sink = {sink_begin, sink_chunk, sink_end, NULL};


static void on_msg_both(aip_upstream_call *c, cJSON *msg, int final, void *data) {
  on_msg(c, msg, final, &((both *)data)->g);
}

static int stream(aip_upstream *u, const char *s) { return aip_upstream_transport_stream_begin(u, s, strlen(s)); }
static int feed(aip_upstream *u, const char *s) { return aip_upstream_transport_stream_feed(u, s, strlen(s)); }

static void stop_loop(uv_timer_t *t) { uv_stop(t->loop); }

static void run_ms(uint64_t ms) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, stop_loop, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

int main(void) {
  loop = uv_default_loop();
  aip_limits limits = {.request_timeout_ms = 300};
  aip_server_config sc = {.name = "fake"};
  aip_upstream *u = calloc(1, sizeof(*u));
  CHECK_INT(aip_upstream_init(u, &fake_ops, NULL, loop, &sc, "agent/fake", &limits, NULL), 0);

  /* 1. two downstream calls with the same client token share the instance */
  got g1 = {0}, g2 = {0};
  cJSON *p1 = cJSON_Parse("{\"name\":\"slow\",\"_meta\":{\"progressToken\":\"tok\"}}");
  cJSON *p2 = cJSON_Parse("{\"name\":\"slow\",\"_meta\":{\"progressToken\":\"tok\"}}");
  aip_upstream_call *c1, *c2;
  CHECK_INT(aip_upstream_call_start(u, "tools/call", p1, on_msg, &g1, &c1), 0);
  CHECK_INT(starts, 1);
  handshake(u);
  CHECK_INT(aip_upstream_call_start(u, "tools/call", p2, on_msg, &g2, &c2), 0);
  CHECK_INT(sent_n, 4); /* initialize, initialized, call 1 (flushed), call 2 */
  double id1 = sent_id(2), id2 = sent_id(3);
  CHECK(id1 != id2);
  /* progress tokens are re-keyed to unique values and mapped back */
  double t1 = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(sent[2], "params"), "_meta"), "progressToken")->valuedouble;
  double t2 = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(sent[3], "params"), "_meta"), "progressToken")->valuedouble;
  CHECK(t1 != t2);
  char buf[256];
  snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":%.0f,\"progress\":1}}", t2);
  server_says(u, buf);
  CHECK_INT(g2.progress, 1);
  CHECK_INT(g1.progress, 0);
  CHECK_STR(g2.token, "tok");
  /* answers are matched by id, in any order */
  snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{\"n\":2}}", id2);
  server_says(u, buf);
  CHECK(g2.final && cJSON_GetObjectItem(cJSON_GetObjectItem(g2.final, "result"), "n")->valueint == 2);
  CHECK(g1.final == NULL);
  /* an answer for an unknown id is dropped, not misrouted */
  server_says(u, "{\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{}}");
  CHECK(g1.final == NULL);
  /* garbage from the server is dropped */
  server_says(u, "{not json");
  server_says(u, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"result\":{}}");
  CHECK(g1.final == NULL);

  /* 2. a server->client ping is answered by the gateway */
  reset_sent();
  server_says(u, "{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"ping\"}");
  CHECK(last_sent() && cJSON_IsObject(cJSON_GetObjectItem(last_sent(), "result")));

  /* 3. the instance dies: the call in flight fails at once */
  aip_upstream_transport_down(u, "test kill");
  CHECK(g1.final != NULL);
  CHECK(g1.final && cJSON_GetObjectItem(g1.final, "error") != NULL);
  CHECK_INT(u->state, AIP_UPSTREAM_BACKOFF);

  /* 4. a call during backoff waits for the restart, then succeeds */
  reset_sent();
  got g3 = {0};
  CHECK_INT(aip_upstream_call_start(u, "ping", NULL, on_msg, &g3, NULL), 0);
  CHECK_INT(sent_n, 0);
  run_ms(250); /* backoff is 100 ms */
  CHECK_INT(starts, 2);
  handshake(u);
  CHECK_INT(sent_n, 3);
  snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{}}", sent_id(2));
  server_says(u, buf);
  CHECK(g3.final && cJSON_GetObjectItem(g3.final, "result"));

  /* 5. a call that gets no answer times out with an error and a cancellation upstream */
  reset_sent();
  got g4 = {0};
  CHECK_INT(aip_upstream_call_start(u, "tools/call", cJSON_Parse("{\"name\":\"x\"}"), on_msg, &g4, NULL), 0);
  run_ms(500);
  CHECK(g4.final && cJSON_GetObjectItem(g4.final, "error"));
  CHECK(last_sent() && strcmp(cJSON_GetObjectItem(last_sent(), "method")->valuestring,
                              "notifications/cancelled") == 0);

  /* 6. a cancelled call never calls back, even when its answer comes */
  reset_sent();
  got g5 = {0};
  aip_upstream_call *c5;
  aip_upstream_call_start(u, "tools/call", cJSON_Parse("{\"name\":\"x\"}"), on_msg, &g5, &c5);
  double id5 = sent_id(0);
  aip_upstream_call_cancel(c5, "client");
  snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{}}", id5);
  server_says(u, buf);
  CHECK(g5.final == NULL);

  /* 7. streamed answers (docs/dlp.md, "Streaming in the gateway") */
  {
    char msg[256];
    both b[8];
    memset(b, 0, sizeof(b));
    aip_upstream_call *calls[8];
    double sid[8];
    for (int i = 0; i < 8; i++) {
      aip_buf_init(&b[i].k.head);
      aip_buf_init(&b[i].k.body);
      reset_sent();
      CHECK_INT(aip_upstream_call_start(u, "tools/call", cJSON_Parse("{\"name\":\"big\"}"), on_msg_both,
                                        &b[i], &calls[i]), 0);
      sid[i] = sent_id(0);
      if (i != 1) aip_upstream_call_set_sink(calls[i], &test_sink);
    }
    /* a: head up to the id, then everything after it, then the end; no cJSON callback */
    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{\"content\":[{\"text\":\"ab", sid[0]);
    CHECK_INT(stream(u, msg), 0);
    CHECK_STR(b[0].k.head.data, "{\"jsonrpc\":\"2.0\",\"id\":");
    CHECK_STR(b[0].k.body.data, ",\"result\":{\"content\":[{\"text\":\"ab");
    CHECK_INT(stream(u, msg), -EINVAL); /* one at a time */
    CHECK_INT(feed(u, "cd\"}]}}"), 0);
    aip_upstream_transport_stream_end(u, 0);
    CHECK_INT(b[0].k.ended, 1);
    CHECK_INT(b[0].k.end_err, 0);
    CHECK_STR(b[0].k.body.data, ",\"result\":{\"content\":[{\"text\":\"abcd\"}]}}");
    CHECK(b[0].g.final == NULL);
    CHECK_INT(feed(u, "x"), -ECANCELED); /* nothing streams now */
    /* b: no sink, c: result before id, d: unknown id, e: a request: held whole instead */
    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{}}", sid[1]);
    CHECK_INT(stream(u, msg), -EINVAL);
    server_says(u, msg);
    CHECK(b[1].g.final != NULL);
    cJSON_Delete(b[1].g.final);
    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"result\":{},\"id\":%.0f}", sid[2]);
    CHECK_INT(stream(u, msg), -EINVAL);
    CHECK_INT(stream(u, "{\"jsonrpc\":\"2.0\",\"id\":99999,\"result\":{"), -EINVAL);
    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"method\":\"x\",\"params\":{", sid[2]);
    CHECK_INT(stream(u, msg), -EINVAL);
    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":\"%.0f\",\"result\":{", sid[2]);
    CHECK_INT(stream(u, msg), -EINVAL); /* our ids are numbers */
    b[2].k.decline = 1;
    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{", sid[2]);
    CHECK_INT(stream(u, msg), -EINVAL); /* the sink declined */
    CHECK_INT(b[2].k.begun, 0);
    /* f: the sink asks to pause; the server dies mid-answer */
    b[3].k.chunk_rc = 1;
    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{", sid[3]);
    CHECK_INT(stream(u, msg), 1);
    aip_upstream_transport_stream_end(u, -EPIPE);
    CHECK_INT(b[3].k.ended, 1);
    CHECK_INT(b[3].k.end_err, -EPIPE);
    /* g: the sink fails: end follows with its error, the rest is refused */
    b[4].k.chunk_rc = -EINVAL;
    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{", sid[4]);
    CHECK_INT(stream(u, msg), -ECANCELED);
    CHECK_INT(b[4].k.end_err, -EINVAL);
    CHECK_INT(feed(u, "x"), -ECANCELED);
    /* h: the caller cancels mid-answer: no callback at all, the rest is dropped */
    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{", sid[5]);
    CHECK_INT(stream(u, msg), 0);
    aip_upstream_call_cancel(calls[5], "client gone");
    CHECK_INT(feed(u, "x"), -ECANCELED);
    aip_upstream_transport_stream_end(u, 0);
    CHECK_INT(b[5].k.ended, 0);
    CHECK(b[5].g.final == NULL);
    /* i: no byte for request_timeout (300 ms): aborted with -ETIMEDOUT; a streaming call has
     * no call deadline of its own (the others time out as usual) */
    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"error\":{", sid[6]);
    CHECK_INT(stream(u, msg), 0);
    CHECK_INT(feed(u, "\"code\":1"), 0);
    run_ms(500);
    CHECK_INT(b[6].k.ended, 1);
    CHECK_INT(b[6].k.end_err, -ETIMEDOUT);
    CHECK_INT(feed(u, "x"), -ECANCELED);
    for (int i = 0; i < 8; i++) {
      cJSON_Delete(i == 1 ? NULL : b[i].g.final);
      aip_buf_free(&b[i].k.head);
      aip_buf_free(&b[i].k.body);
    }
  }

  /* 8. a crash loop: a restart backed off by more than 500 ms is not waited for, the call fails
   * at once (-EHOSTDOWN: "unavailable"); a nearer one is. A server that was ready has not
   * "failed to start". */
  {
    got g6 = {0}, g7 = {0};
    aip_upstream_transport_down(u, "crash 1"); /* backoff 200 ms (it was up < 10 s) */
    CHECK_INT(aip_upstream_cannot_start(u), 0);
    reset_sent();
    CHECK_INT(aip_upstream_call_start(u, "ping", NULL, on_msg, &g6, NULL), 0); /* waits */
    run_ms(300);
    handshake(u);
    aip_upstream_transport_down(u, "crash 2"); /* 400 ms */
    CHECK(g6.final && cJSON_GetObjectItem(g6.final, "error"));
    reset_sent();
    CHECK_INT(aip_upstream_call_start(u, "ping", NULL, on_msg, &g7, NULL), 0);
    run_ms(500);
    handshake(u);
    aip_upstream_transport_down(u, "crash 3"); /* 800 ms: too far */
    CHECK_INT(aip_upstream_call_start(u, "ping", NULL, on_msg, NULL, NULL), -EHOSTDOWN);
    CHECK_STR(u->last_error, "crash 3");
    CHECK_INT(aip_upstream_cannot_start(u), 0);
    run_ms(900); /* the backoff ends with nothing queued: down, started on demand */
    CHECK_INT(u->state, AIP_UPSTREAM_DOWN);
    /* the next start fails before its handshake: the server cannot start */
    reset_sent();
    got g8 = {0};
    CHECK_INT(aip_upstream_call_start(u, "ping", NULL, on_msg, &g8, NULL), 0);
    aip_upstream_transport_down(u, "exited with status 1");
    CHECK(g8.final && cJSON_GetObjectItem(g8.final, "error")); /* fails at once, not queued */
    CHECK_INT(aip_upstream_cannot_start(u), 1);
    CHECK_INT(aip_upstream_call_start(u, "ping", NULL, on_msg, NULL, NULL), -EHOSTDOWN);
    run_ms(1700);
    reset_sent();
    got g9 = {0};
    CHECK_INT(aip_upstream_call_start(u, "ping", NULL, on_msg, &g9, NULL), 0);
    handshake(u);
    CHECK_INT(aip_upstream_cannot_start(u), 0); /* up again */
    /* shares_reader: only for a transport with one reader, and only beside other calls */
    CHECK_INT(sent_n, 3);
    aip_upstream_call *c10;
    got g10 = {0};
    CHECK_INT(aip_upstream_call_start(u, "tools/call", cJSON_Parse("{\"name\":\"x\"}"), on_msg, &g10, &c10), 0);
    CHECK_INT(aip_upstream_call_shares_reader(c10), 0);
    u->shared_reader = 1;
    CHECK_INT(aip_upstream_call_shares_reader(c10), 1); /* the ping g9 is still open */
    snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":%.0f,\"result\":{}}", sent_id(2));
    server_says(u, buf);
    CHECK(g9.final != NULL);
    CHECK_INT(aip_upstream_call_shares_reader(c10), 0); /* alone now */
    u->shared_reader = 0;
    aip_upstream_call_cancel(c10, "done");
    cJSON_Delete(g6.final);
    cJSON_Delete(g7.final);
    cJSON_Delete(g8.final);
    cJSON_Delete(g9.final);
  }

  aip_upstream_close(u);
  CHECK_INT(stops, 1);
  uv_run(loop, UV_RUN_DEFAULT);
  reset_sent();
  cJSON_Delete(g1.final);
  cJSON_Delete(g2.final);
  cJSON_Delete(g3.final);
  cJSON_Delete(g4.final);
  CHECK_INT(uv_loop_close(loop), 0);
  TEST_MAIN_END();
}
