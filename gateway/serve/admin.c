/* admin.c -- the admin listener: /healthz, /readyz and /metrics (INTERFACES.md section 5).
 * It is a separate listener so that load balancers and Prometheus never share a port (or a
 * token) with agents. */
#include <stdio.h>
#include <string.h>

#include <llhttp.h>

#include "gateway/core/agent.h"
#include "gateway/approvals/approvals_http.h"
#include "gateway/core/rate_durable.h"
#include "gateway/http/http_guard.h"
#include "gateway/serve/gw.h"
#include "store/store.h"

/* Ready: every agent's policy is loaded (one that failed at start leaves its agent blocked),
 * the store is open and its last write committed, and the gateway is not draining. A failed
 * reload keeps the last good policy and so does not make the gateway unready. `why` gets the
 * body: what is missing, or "ready". */
static int ready(aip_gw *gw, aip_buf *why) {
  if (gw->stopping || gw->draining || !gw->store || gw->agents_n == 0) return 0;
  /* audit.on_error block refuses calls while the audit file cannot be written */
  if (aip_audit_blocking(gw->audit)) return 0;
  /* the store cannot write: rate-limited calls are refused until it can again */
  if (aip_store_failing(gw->store) || aip_rate_durable_failing(gw)) {
    aip_buf_puts(why, "not ready: the store cannot write\n");
    return 0;
  }
  for (size_t i = 0; i < gw->agents_n; i++)
    if (!gw->agents[i].policy) return 0;
  aip_buf_puts(why, "ready\n");
  /* An upstream that cannot start is listed but leaves the gateway ready: every replica shares
   * the config, so pulling them all would turn one server's outage into everyone's. Its agent
   * hears "unavailable" with the server's name; aip_upstream_unavailable counts it. */
  for (size_t i = 0; i < gw->agents_n; i++)
    for (size_t s = 0; s < gw->agents[i].cfg->servers_n; s++) {
      const aip_upstream *u = gw->agents[i].ups[s];
      if (aip_upstream_cannot_start(u))
        aip_buf_printf(why, "upstream %s cannot start: %.160s\n", u->label, u->last_error);
    }
  return 1;
}

void aip_admin_handle(aip_http_req *req, aip_gw *gw) {
  /* Before any path: /metrics and the approval queue are as worth reading for a DNS-rebinding
   * page as /mcp is (http_guard.c). */
  const char *bad = aip_http_guard(gw->cfg, gw->cfg->admin_listen.host, req);
  if (bad) {
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "forbidden: invalid %s header\n", bad);
    aip_http_respond(req, 403, "text/plain", NULL, msg, (size_t)n);
    return;
  }
  if (aip_approvals_api_handle(req, gw)) return;
  if (aip_approvals_page_handle(req)) return;
  if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
    aip_http_respond(req, 405, "text/plain", "Allow: GET\r\n", "method not allowed\n", 19);
  } else if (strcmp(req->path, "/healthz") == 0) {
    aip_http_respond(req, 200, "text/plain", NULL, "ok\n", 3);
  } else if (strcmp(req->path, "/readyz") == 0) {
    aip_buf why;
    aip_buf_init(&why);
    int ok = ready(gw, &why);
    if (!why.len) aip_buf_puts(&why, "not ready\n");
    aip_http_respond(req, ok ? 200 : 503, "text/plain", NULL, why.data, why.len);
    aip_buf_free(&why);
  } else if (strcmp(req->path, "/metrics") == 0) {
    aip_buf b;
    aip_buf_init(&b);
    if (aip_metrics_render(gw, &b) == 0)
      aip_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.data, b.len);
    else
      aip_http_respond(req, 500, "text/plain", NULL, "out of memory\n", 14);
    aip_buf_free(&b);
  } else {
    aip_http_respond(req, 404, "text/plain", NULL, "not found\n", 10);
  }
}
