/* units.c -- the small value parsers shared by every configurator: sizes ("4MiB"), durations
 * ("1m30s"), listen addresses ("127.0.0.1:8080", "[::1]:8080") and the error setter. They are
 * strict on purpose: a value that could be read two ways is an error, not a guess. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"

int aip_error_set(aip_error *err, int code, const char *fmt, ...) {
  if (!err) return code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return code;
}

/* Reads a run of decimal digits; fails on none or on overflow of uint64_t. */
static int parse_digits(const char **sp, uint64_t *out) {
  const char *s = *sp;
  uint64_t v = 0;
  if (*s < '0' || *s > '9') return -EINVAL;
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -ERANGE;
    v = v * 10 + d;
  }
  *sp = s;
  *out = v;
  return 0;
}

int aip_parse_size(const char *s, uint64_t *out) {
  static const struct {
    const char *suffix;
    uint64_t mult;
  } units[] = {
      {"", 1},
      {"B", 1},
      {"KB", 1000ULL},
      {"KiB", 1024ULL},
      {"MB", 1000ULL * 1000},
      {"MiB", 1024ULL * 1024},
      {"GB", 1000ULL * 1000 * 1000},
      {"GiB", 1024ULL * 1024 * 1024},
  };
  uint64_t v;
  if (!s || parse_digits(&s, &v)) return -EINVAL;
  while (*s == ' ') s++; /* "4 MiB" reads naturally; allow it */
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    /* Case-insensitive: "1mb" and "1MB" are the same; the 'i' still tells KiB from KB. */
    if (strcasecmp(s, units[i].suffix) != 0) continue;
    if (v > UINT64_MAX / units[i].mult) return -ERANGE;
    *out = v * units[i].mult;
    return 0;
  }
  return -EINVAL;
}

int aip_parse_duration_ms(const char *s, uint64_t *out_ms) {
  uint64_t total = 0;
  if (!s || !*s) return -EINVAL;
  while (*s) {
    uint64_t v, mult;
    if (parse_digits(&s, &v)) return -EINVAL;
    /* "ms" before "m": the longest unit wins. */
    if (strncmp(s, "ms", 2) == 0) {
      mult = 1;
      s += 2;
    } else if (*s == 's') {
      mult = 1000;
      s++;
    } else if (*s == 'm') {
      mult = 60ULL * 1000;
      s++;
    } else if (*s == 'h') {
      mult = 3600ULL * 1000;
      s++;
    } else if (*s == 'd') {
      mult = 86400ULL * 1000;
      s++;
    } else {
      return -EINVAL; /* a bare number or an unknown unit */
    }
    if (v > UINT64_MAX / mult || total > UINT64_MAX - v * mult) return -ERANGE;
    total += v * mult;
  }
  *out_ms = total;
  return 0;
}

static int parse_port(const char *s, int *out) {
  uint64_t v;
  if (strlen(s) > 5 || parse_digits(&s, &v) || *s || v < 1 || v > 65535) return -EINVAL;
  *out = (int)v;
  return 0;
}

/* Only numeric hosts (plus "localhost"): resolving names at startup would make the bind address
 * depend on DNS and /etc/hosts, and a listener must never end up on an unintended interface. */
int aip_parse_listen(const char *s, aip_listen_addr *out) {
  char host[64];
  const char *port;
  int v6 = 0;
  if (!s) return -EINVAL;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host) return -EINVAL;
    memcpy(host, s + 1, (size_t)(end - s - 1));
    host[end - s - 1] = '\0';
    port = end + 2;
    v6 = 1;
  } else {
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host || memchr(s, ':', (size_t)(colon - s)))
      return -EINVAL; /* an unbracketed IPv6 address is ambiguous */
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = colon + 1;
  }
  int p;
  if (parse_port(port, &p)) return -EINVAL;
  unsigned char addr[16];
  const char *h = host;
  if (!v6 && strcmp(host, "localhost") == 0) h = "127.0.0.1";
  else if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1) return -EINVAL;
  char *copy = strdup(h);
  if (!copy) return -ENOMEM;
  out->host = copy;
  out->port = p;
  return 0;
}
