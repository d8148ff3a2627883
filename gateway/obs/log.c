/* log.c -- stderr logging with a UTC timestamp and level; one write(2) per line so lines from
 * the loop and the audit thread never interleave mid-line. A filter (the agents' DLP,
 * log_dlp.c) sees every message logged on the thread that installed it, whole, before the
 * line is cut to its maximum length: no half secret at the cut. */
#include "gateway/obs/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048

static aip_log_level min_level = AIP_LOG_INFO;
static const char *line_prefix = "";
static aip_log_filter_fn filter;
static void *filter_ctx;
static pthread_t filter_thread;
static int in_filter; /* the filter's own logging (it has none) must not recurse */

void aip_log_set_level(aip_log_level lvl) { min_level = lvl; }
void aip_log_set_prefix(const char *prefix) { line_prefix = prefix ? prefix : ""; }

void aip_log_set_filter(aip_log_filter_fn fn, void *ctx) {
  filter = fn;
  filter_ctx = ctx;
  filter_thread = pthread_self();
}

void aip_log(aip_log_level lvl, const char *fmt, ...) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  static const char withheld[] = "(a log line DLP could not scan: not shown)";
  if (lvl < min_level) return;
  char msg[LINE_MAX_BYTES], *big = NULL, *red = NULL;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  const char *text = msg;
  size_t tlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
  if (m >= (int)sizeof(msg) && (big = malloc((size_t)m + 1)) != NULL) {
    va_start(ap, fmt);
    vsnprintf(big, (size_t)m + 1, fmt, ap);
    va_end(ap);
    text = big, tlen = (size_t)m;
  }
  if (filter && !in_filter && pthread_equal(pthread_self(), filter_thread)) {
    size_t rlen = 0;
    in_filter = 1;
    int rc = filter(filter_ctx, text, tlen, &red, &rlen);
    in_filter = 0;
    if (rc > 0) text = red, tlen = rlen;
    else if (rc < 0) text = withheld, tlen = sizeof(withheld) - 1;
  }
  char line[LINE_MAX_BYTES];
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  int n = snprintf(line, sizeof(line), "%s%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s ", line_prefix, tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (int)(tv.tv_usec / 1000), names[lvl]);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof(line) - 2) n = (int)sizeof(line) - 2;
  size_t room = sizeof(line) - 1 - (size_t)n;
  if (tlen > room) tlen = room;
  memcpy(line + n, text, tlen);
  size_t len = (size_t)n + tlen;
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
  free(big);
  free(red);
}
