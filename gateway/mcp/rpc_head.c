/* rpc_head.c -- a prefix scanner for the head of a JSON-RPC response (see rpc_head.h).
 *
 * Only the top level is interpreted; nested values ("jsonrpc" could in theory be anything) are
 * skipped with a depth counter and the string rules. It validates just enough to never
 * mistake a nested or quoted "id" for the top-level one; the DLP tokenizer validates the whole
 * message afterwards.
 */
#include "gateway/mcp/rpc_head.h"

#include <string.h>

typedef struct scan {
  const char *p;
  size_t n, i;
} scan;

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void skip_ws(scan *s) {
  while (s->i < s->n && is_ws(s->p[s->i])) s->i++;
}

/* A string starting at s->i (the quote): 1 and s->i past it, 0 when cut short, -1 invalid. */
static int skip_string(scan *s) {
  size_t i = s->i + 1;
  while (i < s->n) {
    unsigned char c = (unsigned char)s->p[i];
    if (c == '"') {
      s->i = i + 1;
      return 1;
    }
    if (c < 0x20) return -1;
    /* an escape's second byte is never a quote that ends the string */
    i += c == '\\' ? 2 : 1;
  }
  return 0;
}

/* A scalar (number, true, false, null): runs to the first delimiter. */
static int skip_scalar(scan *s) {
  size_t st = s->i;
  while (s->i < s->n) {
    char c = s->p[s->i];
    if (is_ws(c) || c == ',' || c == '}' || c == ']') return s->i > st ? 1 : -1;
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' || c == '.' ||
          c == 'E'))
      return -1;
    s->i++;
  }
  return 0; /* a number may go on in the next bytes */
}

/* Any value, nested ones by depth (brackets inside strings skipped as strings). */
static int skip_value(scan *s) {
  if (s->i >= s->n) return 0;
  char c = s->p[s->i];
  if (c == '"') return skip_string(s);
  if (c != '{' && c != '[') return skip_scalar(s);
  size_t depth = 0;
  while (s->i < s->n) {
    c = s->p[s->i];
    if (c == '"') {
      int r = skip_string(s);
      if (r <= 0) return r;
      continue;
    }
    if (c == '{' || c == '[') depth++;
    else if (c == '}' || c == ']') {
      if (--depth == 0) {
        s->i++;
        return 1;
      }
    }
    s->i++;
  }
  return 0;
}

static int key_is(const scan *s, size_t at, size_t end, const char *k) {
  size_t l = strlen(k);
  /* at..end spans the quotes; an escaped key ("\u0069d") is compared raw and so never matches:
   * such a message is left to the buffered path, which decodes it */
  return end - at == l + 2 && memcmp(s->p + at + 1, k, l) == 0;
}

int aip_rpc_head_scan(const char *p, size_t n, aip_rpc_head *out) {
  scan s = {p, n, 0};
  int have_id = 0;
  skip_ws(&s);
  if (s.i >= n) return AIP_RPC_HEAD_MORE;
  if (p[s.i] != '{') return AIP_RPC_HEAD_NO;
  s.i++;
  for (int first = 1;; first = 0) {
    skip_ws(&s);
    if (s.i >= n) return AIP_RPC_HEAD_MORE;
    if (!first) {
      if (p[s.i] == '}') return AIP_RPC_HEAD_NO; /* ended without result/error */
      if (p[s.i] != ',') return AIP_RPC_HEAD_NO;
      s.i++;
      skip_ws(&s);
      if (s.i >= n) return AIP_RPC_HEAD_MORE;
    }
    if (p[s.i] != '"') return AIP_RPC_HEAD_NO;
    size_t k0 = s.i;
    int r = skip_string(&s);
    if (r <= 0) return r == 0 ? AIP_RPC_HEAD_MORE : AIP_RPC_HEAD_NO;
    size_t k1 = s.i;
    /* the key alone decides: what follows is the large part */
    if (key_is(&s, k0, k1, "method")) return AIP_RPC_HEAD_NO;
    if (key_is(&s, k0, k1, "result") || key_is(&s, k0, k1, "error")) {
      if (!have_id) return AIP_RPC_HEAD_NO;
      out->is_error = key_is(&s, k0, k1, "error");
      return AIP_RPC_HEAD_FOUND;
    }
    skip_ws(&s);
    if (s.i >= n) return AIP_RPC_HEAD_MORE;
    if (p[s.i] != ':') return AIP_RPC_HEAD_NO;
    s.i++;
    skip_ws(&s);
    if (s.i >= n) return AIP_RPC_HEAD_MORE;
    size_t v0 = s.i;
    char c = p[s.i];
    r = skip_value(&s);
    if (r <= 0) return r == 0 ? AIP_RPC_HEAD_MORE : AIP_RPC_HEAD_NO;
    if (key_is(&s, k0, k1, "id")) {
      if (have_id || !(c == '"' || c == '-' || (c >= '0' && c <= '9'))) return AIP_RPC_HEAD_NO;
      have_id = 1;
      out->id_off = v0;
      out->id_len = s.i - v0;
    }
  }
}
