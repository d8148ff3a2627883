/* log_dlp.c -- the gateway's own log passes DLP (aip_log_set_filter, log.h): upstream stderr,
 * upstream error messages, tool and method names in warnings... whatever an agent or a server
 * chose. In `aip serve` a line cannot always be tied to one agent (a shared message, a
 * reload), so it passes the rules of every agent in turn: a superset of its own agent's. */
#include <stdlib.h>

#include "gateway/core/agent.h"
#include "gateway/serve/gw.h"

/* Runs `*cur` (or msg) through one agent's rules; `changed` says whether *cur holds the text. */
static int pass_one(aip_dlp_run *r, const char *msg, size_t len, aip_buf *cur, int *changed) {
  aip_buf next;
  aip_buf_init(&next);
  int rc = aip_dlp_redact_str(r, *changed ? cur->data : msg, *changed ? cur->len : len, &next);
  if (rc == 1) {
    aip_buf_free(cur);
    *cur = next;
    *changed = 1;
    return 0;
  }
  aip_buf_free(&next);
  return rc;
}

static int finish(int rc, int changed, aip_buf *cur, char **out, size_t *out_len) {
  if (rc < 0 || !changed) {
    aip_buf_free(cur);
    return rc < 0 ? rc : 0;
  }
  *out = aip_buf_steal(cur, out_len);
  return *out ? 1 : -1;
}

int aip_dlp_log_filter_gw(void *ctx, const char *msg, size_t len, char **out, size_t *out_len) {
  aip_gw *gw = ctx;
  aip_buf cur;
  aip_buf_init(&cur);
  int changed = 0, rc = 0;
  for (size_t i = 0; rc >= 0 && i < gw->agents_n; i++) {
    aip_agent_rt *a = &gw->agents[i];
    if (!a->dlp || !a->dlp_scratch) continue; /* no DLP, or not loaded (yet) */
    aip_dlp_run r = aip_agent_dlp_run(a);
    rc = pass_one(&r, msg, len, &cur, &changed);
  }
  return finish(rc, changed, &cur, out, out_len);
}

int aip_dlp_log_filter_run(void *ctx, const char *msg, size_t len, char **out, size_t *out_len) {
  aip_buf cur;
  aip_buf_init(&cur);
  int changed = 0;
  int rc = pass_one(ctx, msg, len, &cur, &changed);
  return finish(rc, changed, &cur, out, out_len);
}
