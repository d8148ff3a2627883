/* http_server.h -- HTTP/1.1 server on libuv + llhttp.
 *
 * One request per connection is handled at a time: when a request is complete the parser is
 * paused until its response has been written, so pipelined requests are answered in order by
 * construction. A handler answers with one complete response (aip_http_respond) or with a
 * chunked stream (aip_http_stream_*), possibly much later (an upstream call, an SSE stream).
 * If the client goes away first, the request's abort callback runs and the handler must forget
 * the request.
 */
#ifndef AIP_HTTP_SERVER_H
#define AIP_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "engine/engine.h"

typedef struct aip_http_server aip_http_server;
typedef struct aip_http_conn aip_http_conn;
typedef struct aip_http_req aip_http_req;

#define AIP_HTTP_MAX_HEADERS 64

typedef struct aip_http_header {
  uint32_t name_off, name_len; /* into req->hdr; names are lower-cased */
  uint32_t value_off, value_len;
} aip_http_header;

typedef void (*aip_http_abort_cb)(aip_http_req *req, void *data);

struct aip_http_req {
  aip_http_conn *conn;
  int method;      /* llhttp_method_t */
  char *path;      /* NUL-terminated, inside hdr */
  size_t path_len; /* without the query string */
  const char *query; /* after '?', or "" */
  aip_buf hdr;     /* url + header bytes */
  aip_http_header headers[AIP_HTTP_MAX_HEADERS];
  int headers_n;
  aip_buf body;
  uint64_t start_ns; /* when the headers were complete (uv_hrtime) */
  /* handler side */
  aip_http_abort_cb abort_cb;
  void *abort_data;
  int streaming;  /* chunked response begun */
  int responded;  /* complete response handed to the connection */
  void (*drain_cb)(aip_http_req *req, void *data); /* see aip_http_on_drain */
  void *drain_data;
  size_t drain_low;
};

typedef void (*aip_http_handler)(aip_http_req *req, void *ctx);

typedef struct aip_http_limits {
  uint64_t max_header_bytes;
  uint64_t max_body;
  uint64_t header_timeout_ms;
  uint64_t idle_timeout_ms;
  uint32_t max_connections; /* 0: no cap; above it a connection gets 503 and is closed */
} aip_http_limits;

typedef struct aip_http_stats {
  uint64_t connections_total;
  uint64_t connections_open;
  uint64_t connections_refused; /* over max_connections, or accept failed (EMFILE) */
  uint64_t requests_total;
  uint64_t responses_by_class[6]; /* index status/100 */
} aip_http_stats;

int aip_http_server_start(uv_loop_t *loop, const char *host, int port,
                          const aip_http_limits *limits, aip_http_handler handler, void *ctx,
                          aip_http_server **out);
/* Stops accepting and closes idle connections; requests in flight keep their connection until
 * they finish (or until aip_http_server_close_all). */
void aip_http_server_stop_listening(aip_http_server *s);
/* Closes every connection (aborting requests) and frees the server once all handles closed. */
void aip_http_server_close(aip_http_server *s);
/* Backpressure (the audit queue is full): paused, no connection reads or starts a request
 * (bytes already read wait in their buffer, the kernel's socket buffers and then TCP hold the
 * rest); requests already being handled go on. Resuming goes on where each connection was.
 * Header and idle timeouts do not run while paused: the pause is the server's doing. */
void aip_http_server_pause(aip_http_server *s, int paused);
const aip_http_stats *aip_http_server_stats(const aip_http_server *s);
int aip_http_server_port(const aip_http_server *s); /* the bound port (useful with port 0) */

/* Header lookup by lower-case name; returns the value (not NUL-terminated) or NULL. */
const char *aip_http_header_get(const aip_http_req *req, const char *lname, size_t *len);

/* Sends a complete response. `extra_headers` is "" or CRLF-terminated header lines. */
void aip_http_respond(aip_http_req *req, int status, const char *content_type,
                      const char *extra_headers, const void *body, size_t len);

/* Chunked streaming (used for text/event-stream). */
void aip_http_stream_begin(aip_http_req *req, int status, const char *content_type,
                           const char *extra_headers);
/* Returns 0, or -ENOBUFS when the client is too slow (the connection is then closed). */
int aip_http_stream_write(aip_http_req *req, const void *p, size_t n);
void aip_http_stream_end(aip_http_req *req);

void aip_http_set_abort(aip_http_req *req, aip_http_abort_cb cb, void *data);

/* Backpressure for a producer that can wait (a streamed upstream answer): bytes written to
 * the connection but not yet taken by the kernel, and a one-shot callback for when they fall
 * to `low` or below (cb NULL cancels it). It never runs once the connection is closed. */
size_t aip_http_queued(const aip_http_req *req);
void aip_http_on_drain(aip_http_req *req, size_t low, void (*cb)(aip_http_req *req, void *data),
                       void *data);
/* Ends a streamed response in error: the connection is closed without the final chunk, which
 * a client sees as a truncated response. The abort callback does not run; `req` is gone. */
void aip_http_stream_abort(aip_http_req *req);

const char *aip_http_status_text(int status);

/* The client's address as text ("127.0.0.1:5123", "[::1]:5123"), for log lines; "?" when
 * unknown. */
void aip_http_peer(const aip_http_req *req, char *out, size_t n);

#endif
