/* test_gw_metrics.c -- the pieces of /metrics that are pure: Prometheus label escaping, and
 * histograms (bucket edges are `le`, inclusive; cumulative buckets; sum and count; selectable
 * bounds). The rendered page as a whole is checked end to end by tests/e2e/metrics.test.mjs. */
#include <string.h>

#include "engine/histogram.h"
#include "gateway/obs/metrics.h"
#include "test.h"

static void label(const char *in, const char *want) {
  aip_buf b;
  aip_buf_init(&b);
  CHECK_INT(aip_metrics_label(&b, in), 0);
  aip_buf_puts(&b, ""); /* NUL-terminates */
  CHECK_STR(b.data, want);
  aip_buf_free(&b);
}

static void test_labels(void) {
  label("bot", "\"bot\"");
  label("", "\"\"");
  label("a\"b", "\"a\\\"b\"");
  label("a\\b", "\"a\\\\b\"");
  label("a\nb", "\"a\\nb\"");
  label("\\\"\n", "\"\\\\\\\"\\n\"");
  label("Zürich key", "\"Zürich key\""); /* UTF-8 goes as is */
  label("tab\there", "\"tab\there\"");   /* only the three escapes the format defines */
}

static void test_histogram(void) {
  aip_histogram h = {0};
  aip_histogram_observe(&h, 0.0001); /* on the first bound: in it (le) */
  aip_histogram_observe(&h, 0.0002);
  aip_histogram_observe(&h, 10);     /* beyond 5 s: +Inf only */
  CHECK_INT(h.count, 3);
  CHECK_INT(h.counts[0], 1);
  CHECK_INT(h.counts[1], 1);
  CHECK_INT(h.counts[AIP_LATENCY_BUCKETS], 1);
  aip_buf b;
  aip_buf_init(&b);
  CHECK_INT(aip_histogram_render(&b, "x_seconds", "", &h), 0);
  aip_buf_puts(&b, "");
  CHECK(strstr(b.data, "x_seconds_bucket{le=\"0.0001\"} 1\n") != NULL);
  CHECK(strstr(b.data, "x_seconds_bucket{le=\"0.00025\"} 2\n") != NULL);
  CHECK(strstr(b.data, "x_seconds_bucket{le=\"5\"} 2\n") != NULL);
  CHECK(strstr(b.data, "x_seconds_bucket{le=\"+Inf\"} 3\n") != NULL);
  CHECK(strstr(b.data, "x_seconds_sum 10.000300000\n") != NULL);
  CHECK(strstr(b.data, "x_seconds_count 3\n") != NULL);
  aip_buf_free(&b);

  /* human-scale bounds (approval decisions): 90 s lands in le="120" */
  aip_histogram a = {.bounds = aip_histogram_human_bounds};
  aip_histogram_observe(&a, 90);
  aip_buf_init(&b);
  CHECK_INT(aip_histogram_render(&b, "d", "outcome=\"approved\"", &a), 0);
  aip_buf_puts(&b, "");
  CHECK(strstr(b.data, "d_bucket{outcome=\"approved\",le=\"60\"} 0\n") != NULL);
  CHECK(strstr(b.data, "d_bucket{outcome=\"approved\",le=\"120\"} 1\n") != NULL);
  CHECK(strstr(b.data, "d_bucket{outcome=\"approved\",le=\"86400\"} 1\n") != NULL);
  CHECK(strstr(b.data, "d_count{outcome=\"approved\"} 1\n") != NULL);
  aip_buf_free(&b);
}

int main(void) {
  test_labels();
  test_histogram();
  TEST_MAIN_END();
}
