/* route_init.c -- initialize to an agent: the capabilities its servers offer, honestly.
 *
 * The gateway advertises a capability only when some server of the agent offers it: tools
 * (always; listChanged), resources (subscribe and listChanged when some server says so), prompts
 * (listChanged likewise), completions and logging. A server's capabilities are known from its
 * own initialize result, so servers not started yet are started now (a ping each, which makes
 * the instance start and shake hands), and the answer waits for them at most
 * AIP_INIT_WAIT_MS; a server that is slower, down or backing off counts with what it said the
 * last time it ran, or not at all when it never ran. Each server's `instructions` go into the
 * result's `instructions` under a "## <server>" heading.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "gateway/core/agent.h"
#include "gateway/core/routes.h"
#include "gateway/mcp/pending.h"
#include "gateway/mcp/session.h"
#include "gateway/serve/gw.h"

#define AIP_INIT_WAIT_MS 3000

typedef struct init_wait init_wait;
typedef struct ping_ctx {
  init_wait *w;
  aip_upstream_call *call; /* in flight */
} ping_ctx;

struct init_wait {
  aip_pending *p; /* NULL once answered or gone */
  cJSON *result;
  uv_timer_t timer;
  size_t remaining;
  ping_ctx *calls; /* per server */
  size_t calls_n;
};

static void add_true(cJSON *o, const char *k) { cJSON_AddTrueToObject(o, k); }

/* Fills result.capabilities and result.instructions from what the servers said. */
static void fill(aip_agent_rt *a, cJSON *result) {
  cJSON *caps = cJSON_GetObjectItemCaseSensitive(result, "capabilities");
  int res = 0, sub = 0, res_lc = 0, pr = 0, pr_lc = 0, comp = 0, log = 0;
  aip_buf ins;
  aip_buf_init(&ins);
  for (size_t s = 0; s < a->cfg->servers_n; s++) {
    res |= aip_server_offers(a, s, "resources", NULL);
    sub |= aip_server_offers(a, s, "resources", "subscribe");
    res_lc |= aip_server_offers(a, s, "resources", "listChanged");
    pr |= aip_server_offers(a, s, "prompts", NULL);
    pr_lc |= aip_server_offers(a, s, "prompts", "listChanged");
    comp |= aip_server_offers(a, s, "completions", NULL);
    log |= aip_server_offers(a, s, "logging", NULL);
    const cJSON *info = a->ups[s]->server_info;
    const cJSON *in = info ? cJSON_GetObjectItemCaseSensitive(info, "instructions") : NULL;
    if (cJSON_IsString(in) && in->valuestring[0]) {
      if (ins.len) aip_buf_puts(&ins, "\n\n");
      aip_buf_puts(&ins, "## ");
      aip_buf_puts(&ins, a->gw->cfg->servers[a->cfg->servers[s]].name);
      aip_buf_puts(&ins, "\n\n");
      aip_buf_puts(&ins, in->valuestring);
    }
  }
  if (res) {
    cJSON *r = cJSON_AddObjectToObject(caps, "resources");
    if (sub) add_true(r, "subscribe");
    if (res_lc) add_true(r, "listChanged");
  }
  if (pr) {
    cJSON *r = cJSON_AddObjectToObject(caps, "prompts");
    if (pr_lc) add_true(r, "listChanged");
  }
  if (comp) cJSON_AddObjectToObject(caps, "completions");
  if (log) cJSON_AddObjectToObject(caps, "logging");
  if (ins.len) cJSON_AddStringToObject(result, "instructions", ins.data);
  aip_buf_free(&ins);
}

static void wait_closed(uv_handle_t *h) {
  init_wait *w = h->data;
  cJSON_Delete(w->result);
  free(w->calls);
  free(w);
}

/* Answers (if the request is still there) and lets go of everything. */
static void finish(init_wait *w) {
  for (size_t i = 0; i < w->calls_n; i++)
    if (w->calls[i].call) aip_upstream_call_cancel(w->calls[i].call, "initialize answered");
  w->calls_n = 0;
  if (w->p) {
    aip_pending *p = w->p;
    w->p = NULL;
    p->on_final = NULL;
    p->route_ctx = NULL;
    fill(p->sess->agent, w->result);
    cJSON *r = w->result;
    w->result = NULL;
    aip_pending_result(p, r);
  }
  if (!uv_is_closing((uv_handle_t *)&w->timer)) uv_close((uv_handle_t *)&w->timer, wait_closed);
}

static void pinged(aip_upstream_call *call, cJSON *msg, int final, void *data) {
  cJSON_Delete(msg);
  if (!final) return;
  ping_ctx *c = data;
  c->call = NULL;
  if (--c->w->remaining == 0) finish(c->w);
}

static void timed_out(uv_timer_t *t) { finish(t->data); }

static void abandoned(aip_pending *p, const cJSON *answer) {
  init_wait *w = p->route_ctx;
  p->route_ctx = NULL;
  if (!w) return;
  w->p = NULL;
  finish(w);
}

void aip_route_initialize(aip_pending *p, cJSON *result) {
  aip_agent_rt *a = p->sess->agent;
  size_t n = a->cfg->servers_n, cold = 0;
  for (size_t s = 0; s < n; s++) cold += a->ups[s]->state != AIP_UPSTREAM_READY;
  init_wait *w = cold ? calloc(1, sizeof(*w)) : NULL;
  if (w) w->calls = calloc(n, sizeof(*w->calls));
  if (!w || !w->calls) { /* all ready (or no memory to wait): what is known now */
    if (w) free(w);
    fill(a, result);
    aip_pending_result(p, result);
    return;
  }
  w->p = p;
  w->result = result;
  w->calls_n = n;
  uv_timer_init(a->gw->loop, &w->timer);
  w->timer.data = w;
  p->route_ctx = w;
  p->on_final = abandoned;
  w->remaining = 1; /* held while starting */
  for (size_t s = 0; s < n; s++) {
    if (a->ups[s]->state == AIP_UPSTREAM_READY) continue;
    ping_ctx *c = &w->calls[s];
    c->w = w;
    /* down or backing off: it counts with what it said last */
    if (aip_upstream_call_start(a->ups[s], "ping", NULL, pinged, c, &c->call) == 0) w->remaining++;
  }
  if (--w->remaining == 0) {
    finish(w);
    return;
  }
  uv_timer_start(&w->timer, timed_out, AIP_INIT_WAIT_MS, 0);
}
