/* core/lines.h -- newline framing of a stdio byte stream (MCP's stdio transport: one JSON-RPC
 * message a line, UTF-8, no embedded newline; a trailing '\r' is not part of the message). The
 * one framer of the stdio wrapper (its stdin, the child's stdout) and of `aip serve`'s stdio
 * upstreams (upstream/upstream_stdio.c).
 *
 * A line longer than `max` is dropped up to its newline and reported once through
 * `on_oversize`. With `on_long`, a line that grows past `stream_at` bytes without its newline
 * is offered to it: when it returns 1 it has taken the head, and the rest of the line goes to
 * `on_part` as it arrives (`end` set with the last piece; a non-zero return drops the rest of
 * the line); 0 holds the line whole (up to `max`). Empty lines reach on_line too (n == 0). */
#ifndef AIP_CORE_LINES_H
#define AIP_CORE_LINES_H

#include <stddef.h>

#include "engine/engine.h" /* aip_buf */

typedef struct aip_lines {
  aip_buf buf; /* the unfinished line */
  size_t max;
  size_t stream_at;
  int skipping;  /* inside an oversized (or failed streamed) line */
  int streaming; /* inside a line handed to on_part */
  void *ctx;     /* the callbacks' first argument */
  void (*on_line)(void *ctx, char *line, size_t n);
  void (*on_oversize)(void *ctx);
  int (*on_long)(void *ctx, const char *head, size_t n);
  int (*on_part)(void *ctx, const char *p, size_t n, int end);
} aip_lines;

void aip_lines_feed(aip_lines *l, char *p, size_t n);
/* End of input where an unterminated last line still counts (as Go's bufio.Scanner has it:
 * the wrapper's two inputs). A streamed line gets its end. */
void aip_lines_end(aip_lines *l);
/* End of input where it does not (a server's stdout: a message cut short is never complete).
 * Returns 1 when a streamed line was cut short (its sink must be told), else 0. */
int aip_lines_cut(aip_lines *l);
void aip_lines_free(aip_lines *l);

#endif
