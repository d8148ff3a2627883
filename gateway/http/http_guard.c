/* http_guard.c -- the Origin and Host rules shared by both listeners (/mcp and admin).
 *
 * DNS rebinding: a page on evil.example whose name is made to resolve to 127.0.0.1 talks to the
 * gateway as a same-origin page. Its requests give it away twice: by Origin (sent on every
 * POST, and on cross-origin GETs) and by Host (always sent, and the only mark a same-origin
 * GET of /metrics carries). So both are checked, on every path of both listeners:
 *   Origin: absent (non-browser clients), a loopback origin, or one listed in allowed_origins;
 *   Host:   absent (HTTP/1.0), an IP literal (a rebinding attack needs a DNS name), localhost,
 *           a host the gateway listens on by name, or the host of an allowed_origins entry;
 *           checked on listeners bound to a loopback address only: one bound to 0.0.0.0 or a
 *           LAN address is reached under names the gateway cannot know (a Kubernetes Service).
 */
#include <string.h>
#include <strings.h>

#include "gateway/http/http_guard.h"

static int origin_ok(const aip_gateway_config *cfg, const char *o, size_t n) {
  const aip_strlist *allowed = &cfg->allowed_origins;
  for (size_t i = 0; i < allowed->n; i++)
    if (strlen(allowed->items[i]) == n && memcmp(allowed->items[i], o, n) == 0) return 1;
  static const char *const local[] = {"http://localhost", "http://127.0.0.1", "http://[::1]",
                                      "https://localhost", "https://127.0.0.1", "https://[::1]"};
  for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
    size_t l = strlen(local[i]);
    if (n >= l && memcmp(o, local[i], l) == 0 && (n == l || o[l] == ':')) {
      size_t j = l + (n > l);
      while (j < n && o[j] >= '0' && o[j] <= '9') j++;
      if (j == n) return 1;
    }
  }
  return 0;
}

/* The name part of "host[:port]" or "[v6]:port": its length, or 0 when malformed. */
static size_t host_name_len(const char *h, size_t n) {
  size_t end = n;
  if (n && h[0] == '[') {
    const char *b = memchr(h, ']', n);
    if (!b) return 0;
    end = (size_t)(b - h) + 1;
    if (end < n && h[end] != ':') return 0;
  } else {
    const char *colon = memchr(h, ':', n);
    if (colon) end = (size_t)(colon - h);
  }
  for (size_t j = end + 1; j < n; j++)
    if (h[j] < '0' || h[j] > '9') return 0; /* the port is digits only */
  return end;
}

static int is_ip_literal(const char *h, size_t n) {
  char tmp[64];
  unsigned char addr[16];
  if (n < 2 || n >= sizeof(tmp)) return 0;
  if (h[0] == '[' && h[n - 1] == ']') {
    memcpy(tmp, h + 1, n - 2);
    tmp[n - 2] = 0;
    return uv_inet_pton(AF_INET6, tmp, addr) == 0;
  }
  memcpy(tmp, h, n);
  tmp[n] = 0;
  return uv_inet_pton(AF_INET, tmp, addr) == 0;
}

static int name_is(const char *h, size_t n, const char *name) {
  return strlen(name) == n && strncasecmp(h, name, n) == 0;
}

static int host_ok(const aip_gateway_config *cfg, const char *h, size_t n) {
  size_t hn = host_name_len(h, n);
  if (hn == 0) return 0;
  if (is_ip_literal(h, hn) || name_is(h, hn, "localhost")) return 1;
  if (name_is(h, hn, cfg->listen.host) || name_is(h, hn, cfg->admin_listen.host)) return 1;
  for (size_t i = 0; i < cfg->allowed_origins.n; i++) {
    const char *o = strstr(cfg->allowed_origins.items[i], "://"); /* validated at load */
    if (!o) continue;
    o += 3;
    size_t on = host_name_len(o, strlen(o));
    if (on && on == hn && strncasecmp(o, h, hn) == 0) return 1;
  }
  return 0;
}

/* 127.0.0.0/8, ::1 or localhost: only the machine itself (and a rebinding page) gets there. */
static int is_loopback(const char *bind) {
  unsigned char a[16];
  if (strcasecmp(bind, "localhost") == 0) return 1;
  if (uv_inet_pton(AF_INET, bind, a) == 0) return a[0] == 127;
  static const unsigned char v6[16] = {[15] = 1};
  return uv_inet_pton(AF_INET6, bind, a) == 0 && memcmp(a, v6, 16) == 0;
}

const char *aip_http_guard(const aip_gateway_config *cfg, const char *bind,
                           const aip_http_req *req) {
  size_t n;
  const char *o = aip_http_header_get(req, "origin", &n);
  if (o && !origin_ok(cfg, o, n)) return "Origin";
  const char *h = aip_http_header_get(req, "host", &n);
  if (h && is_loopback(bind) && !host_ok(cfg, h, n)) return "Host";
  return NULL;
}
