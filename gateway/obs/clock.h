/* clock.h -- the gateway's wall clock (the one clock for records that outlive the process:
 * audit timestamps, approval times, rate-limit buckets). Timeouts use uv_now (monotonic). */
#ifndef AIP_CLOCK_H
#define AIP_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t aip_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
