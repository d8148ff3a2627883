/* histogram.c -- see histogram.h. */
#include "engine/histogram.h"

const double aip_histogram_latency_bounds[AIP_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

const double aip_histogram_human_bounds[AIP_LATENCY_BUCKETS] = {
    0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14400, 86400};

static const double *bounds_of(const aip_histogram *h) {
  return h->bounds ? h->bounds : aip_histogram_latency_bounds;
}

void aip_histogram_observe(aip_histogram *h, double seconds) {
  const double *bounds = bounds_of(h);
  int i = 0;
  while (i < AIP_LATENCY_BUCKETS && seconds > bounds[i]) i++;
  h->counts[i]++;
  h->sum_seconds += seconds;
  h->count++;
}

int aip_histogram_render(aip_buf *b, const char *name, const char *labels, const aip_histogram *h) {
  const double *bounds = bounds_of(h);
  uint64_t cum = 0;
  const char *sep = labels[0] ? "," : "";
  int err = 0;
  for (int i = 0; !err && i <= AIP_LATENCY_BUCKETS; i++) {
    cum += h->counts[i];
    if (i < AIP_LATENCY_BUCKETS)
      err = aip_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                           (unsigned long long)cum);
    else
      err = aip_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                           (unsigned long long)cum);
  }
  const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
  if (!err) err = aip_buf_printf(b, "%s_sum%s%s%s %.9f\n", name, open, labels, close, h->sum_seconds);
  if (!err)
    err = aip_buf_printf(b, "%s_count%s%s%s %llu\n", name, open, labels, close,
                         (unsigned long long)h->count);
  return err;
}
