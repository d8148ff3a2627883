/* metrics.h -- counters and histograms kept on the loop thread, rendered as Prometheus text. */
#ifndef AIP_METRICS_H
#define AIP_METRICS_H

#include <stdint.h>

#include "engine/engine.h"
#include "engine/histogram.h" /* aip_histogram, aip_histogram_observe/render */

typedef struct aip_metrics {
  aip_histogram tool_call_latency; /* tools/call, gateway in to gateway out */
  uint64_t rpc_messages;           /* JSON-RPC messages received from agents */
  uint64_t rpc_rejected;           /* malformed or refused before dispatch */
  uint64_t auth_failures;
  uint64_t sessions_created;
  uint64_t sessions_expired;
  uint64_t streams_resumed;        /* SSE streams resumed with GET + Last-Event-ID */
  uint64_t tools_list_partial;     /* tools/list answered without some server's tools */
  uint64_t tools_hidden;           /* tools left out of a merged list: their names collided */
  uint64_t policy_load_errors;     /* a policy failed to load (start) or reload, signature included */
  uint64_t policy_reloads;         /* a changed policy came into force after start */
  uint64_t drain_refused;          /* requests refused while draining */
} aip_metrics;

/* Appends `v` as a Prometheus label value, quotes included (\\, \" and \n escaped). */
int aip_metrics_label(aip_buf *b, const char *v);

struct aip_gw;
int aip_metrics_render(struct aip_gw *gw, aip_buf *out);

#endif
