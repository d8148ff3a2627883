/* http_client.h -- HTTP/1.1 client on libuv + llhttp, with a keep-alive connection pool.
 *
 * One client serves one origin (numeric host and port). A request takes an idle connection or
 * opens a new one; after a complete keep-alive response the connection goes back to the pool.
 * Responses are streamed to the caller (headers, then body chunks), so a long SSE stream and a
 * small JSON reply use the same code. Plain http only: TLS to upstreams is a sidecar's job.
 */
#ifndef AIP_HTTP_CLIENT_H
#define AIP_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct aip_http_client aip_http_client;
typedef struct aip_http_creq aip_http_creq;

typedef struct aip_http_creq_cbs {
  /* Status and the raw header block ("name: value\r\n"... lower-cased names). Return nonzero to
   * abort the request (on_done then reports -ECANCELED). */
  int (*on_headers)(aip_http_creq *r, int status, const char *headers, size_t len, void *data);
  int (*on_body)(aip_http_creq *r, const char *p, size_t n, void *data);
  /* Always called exactly once, last: 0 after a complete response, else a negative error
   * (-ECONNREFUSED, -ETIMEDOUT, -ECANCELED, -EPROTO, ...). The request is freed after it. */
  void (*on_done)(aip_http_creq *r, int err, void *data);
} aip_http_creq_cbs;

typedef struct aip_http_client_stats {
  uint64_t connects;
  uint64_t reuses;
  uint64_t failures;
} aip_http_client_stats;

/* `host` is a numeric IPv4/IPv6 address. `connect_timeout_ms` bounds connecting. */
aip_http_client *aip_http_client_new(uv_loop_t *loop, const char *host, int port,
                                     uint64_t connect_timeout_ms);
/* Fails every request (on_done with -ECANCELED) and frees the client once its handles closed. */
void aip_http_client_close(aip_http_client *c);
const aip_http_client_stats *aip_http_client_stats_of(const aip_http_client *c);

/* Starts a request. `headers` is "" or CRLF-terminated lines; Host and Content-Length are
 * added. `timeout_ms` (0 = none) bounds the whole exchange, after which the connection is
 * dropped and on_done gets -ETIMEDOUT. The body is copied. Callbacks never run before this
 * returns. */
int aip_http_client_request(aip_http_client *c, const char *method, const char *path,
                            const char *headers, const void *body, size_t len,
                            uint64_t timeout_ms, const aip_http_creq_cbs *cbs, void *data,
                            aip_http_creq **out);
/* Backpressure for a streamed reply: stop (pause 1) or go on (0) reading its connection. */
void aip_http_creq_pause(aip_http_creq *r, int pause);
/* Replaces the request's whole-exchange timeout from now on (0: none). */
void aip_http_creq_set_timeout(aip_http_creq *r, uint64_t timeout_ms);
/* Abandons a request: on_done(-ECANCELED) runs now; its connection is closed. */
void aip_http_creq_cancel(aip_http_creq *r);

/* Finds a header in a block given to on_headers (name lower-case); returns its value. */
const char *aip_http_header_find(const char *headers, size_t len, const char *lname,
                                 size_t *vlen);

#endif
