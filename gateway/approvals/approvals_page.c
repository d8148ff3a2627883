/* approvals_page.c -- the operator web page (/approvals), served from the binary.
 *
 * The page is static; all data comes from the approval API with the operator's bearer token,
 * so there are no cookies and nothing to forge across sites. The Content-Security-Policy
 * allows only the page's own script and style files (no inline script, no other origins). */
#include <string.h>

#include <llhttp.h>

#include "gateway/approvals/approvals_http.h"

struct aip_asset {
  const char *path;
  const unsigned char *data;
  size_t len;
};
extern const struct aip_asset aip_assets[];

static const char security_headers[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cache-Control: no-store\r\n";

static const char *content_type(const char *path) {
  const char *dot = strrchr(path, '.');
  if (dot && strcmp(dot, ".js") == 0) return "text/javascript; charset=utf-8";
  if (dot && strcmp(dot, ".css") == 0) return "text/css; charset=utf-8";
  return "text/html; charset=utf-8";
}

int aip_approvals_page_handle(aip_http_req *req) {
  const char *path = strcmp(req->path, "/approvals") == 0 ? "/approvals.html" : req->path;
  for (const struct aip_asset *a = aip_assets; a->path; a++) {
    if (strcmp(a->path, path) != 0) continue;
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
      aip_http_respond(req, 405, "text/plain", "Allow: GET\r\n", "method not allowed\n", 19);
      return 1;
    }
    aip_http_respond(req, 200, content_type(a->path), security_headers, a->data, a->len);
    return 1;
  }
  return 0;
}
