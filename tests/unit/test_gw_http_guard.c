/* test_gw_http_guard.c -- the Origin and Host rules of both listeners (http_guard.c): what a
 * DNS-rebinding page sends is refused, what curl, Prometheus, SDK clients, the CLI and the
 * approvals page send passes; Host only counts on a loopback listener. */
#include <string.h>

#include "gateway/http/http_guard.h"
#include "test.h"

/* A request with the given "name: value" headers (names lower-case, as the server stores). */
static void req_with(aip_http_req *r, const char *host, const char *origin) {
  memset(r, 0, sizeof(*r));
  aip_buf_init(&r->hdr);
  aip_buf_append(&r->hdr, "/x", 3);
  const char *names[] = {"host", "origin"}, *vals[] = {host, origin};
  for (int i = 0; i < 2; i++) {
    if (!vals[i]) continue;
    aip_http_header *h = &r->headers[r->headers_n++];
    h->name_off = (uint32_t)r->hdr.len;
    h->name_len = (uint32_t)strlen(names[i]);
    aip_buf_append(&r->hdr, names[i], h->name_len + 1);
    h->value_off = (uint32_t)r->hdr.len;
    h->value_len = (uint32_t)strlen(vals[i]);
    aip_buf_append(&r->hdr, vals[i], h->value_len + 1);
  }
}

static const char *guard(const aip_gateway_config *cfg, const char *bind, const char *host,
                         const char *origin) {
  aip_http_req r;
  req_with(&r, host, origin);
  const char *bad = aip_http_guard(cfg, bind, &r);
  aip_buf_free(&r.hdr);
  return bad;
}

int main(void) {
  char *extra[] = {"https://inspector.example.com", "http://gw.internal:8080"};
  aip_gateway_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.listen.host = "127.0.0.1";
  cfg.admin_listen.host = "::1";
  cfg.allowed_origins.items = extra;
  cfg.allowed_origins.n = 2;
  /* accepted on a loopback listener */
  const char *ok_hosts[] = {NULL, "127.0.0.1:8080", "127.0.0.1", "localhost:9091", "LOCALHOST",
                            "[::1]:9091", "[::1]", "10.1.2.3:80", "gw.internal:8080",
                            "inspector.example.com"};
  for (size_t i = 0; i < sizeof(ok_hosts) / sizeof(ok_hosts[0]); i++) {
    const char *bad = guard(&cfg, "127.0.0.1", ok_hosts[i], NULL);
    if (bad) fprintf(stderr, "host %s refused\n", ok_hosts[i]);
    CHECK(bad == NULL);
  }
  const char *bad_hosts[] = {"evil.example", "evil.example:8080", "127.0.0.1.evil.example",
                             "localhost.evil.example:1", "127.0.0.1:80x", "[::1", "[::1]x",
                             "gw.internal.:8080", "", ":8080", "::1"};
  for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
    const char *bad = guard(&cfg, "127.0.0.1", bad_hosts[i], NULL);
    if (!bad) fprintf(stderr, "host %s accepted\n", bad_hosts[i]);
    CHECK(bad && strcmp(bad, "Host") == 0);
    CHECK(guard(&cfg, "::1", bad_hosts[i], NULL) != NULL); /* the admin listener: ::1 */
    CHECK(guard(&cfg, "localhost", bad_hosts[i], NULL) != NULL);
    /* a network listener (0.0.0.0, a Service): names it cannot know, Host is not checked */
    CHECK(guard(&cfg, "0.0.0.0", bad_hosts[i], NULL) == NULL);
    CHECK(guard(&cfg, "10.0.0.5", bad_hosts[i], NULL) == NULL);
  }
  /* Origin: on every listener */
  const char *ok_origins[] = {"http://127.0.0.1:9091", "http://localhost", "https://[::1]:8443",
                              "https://inspector.example.com"};
  for (size_t i = 0; i < sizeof(ok_origins) / sizeof(ok_origins[0]); i++)
    CHECK(guard(&cfg, "127.0.0.1", "127.0.0.1:9091", ok_origins[i]) == NULL);
  const char *bad_origins[] = {"http://evil.example", "null", "http://127.0.0.1.evil.example",
                               "http://localhost:80x", "https://inspector.example.com.evil"};
  for (size_t i = 0; i < sizeof(bad_origins) / sizeof(bad_origins[0]); i++) {
    const char *bad = guard(&cfg, "0.0.0.0", "127.0.0.1:9091", bad_origins[i]);
    CHECK(bad && strcmp(bad, "Origin") == 0);
  }
  TEST_MAIN_END();
}
