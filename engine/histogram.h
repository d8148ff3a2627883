/* histogram.h -- fixed-bucket latency histograms in seconds (Prometheus `histogram` type).
 *
 * Pure arithmetic and text, no locking: the gateway's metrics keep theirs on the loop thread;
 * the store keeps its batch histogram under its own mutex and hands out copies. */
#ifndef AIP_HISTOGRAM_H
#define AIP_HISTOGRAM_H

#include <stdint.h>

#include "engine/engine.h"

#define AIP_LATENCY_BUCKETS 14

typedef struct aip_histogram {
  /* AIP_LATENCY_BUCKETS upper bounds in seconds, ascending; NULL (a zeroed histogram) means
   * aip_histogram_latency_bounds. */
  const double *bounds;
  uint64_t counts[AIP_LATENCY_BUCKETS + 1]; /* last = +Inf */
  double sum_seconds;
  uint64_t count;
} aip_histogram;

/* 100 us .. 5 s: tool calls, store transactions. */
extern const double aip_histogram_latency_bounds[AIP_LATENCY_BUCKETS];
/* 0.5 s .. 1 day: waits for a human (approval decisions). */
extern const double aip_histogram_human_bounds[AIP_LATENCY_BUCKETS];

void aip_histogram_observe(aip_histogram *h, double seconds);
/* Appends one histogram in Prometheus text (no HELP/TYPE lines); `labels` "" or `k="v"`
 * (already escaped). */
int aip_histogram_render(aip_buf *b, const char *name, const char *labels, const aip_histogram *h);

#endif
