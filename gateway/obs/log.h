/* log.h -- the gateway's operational log: one line per event on stderr.
 * Never pass a secret or a matched DLP value to these functions; text from an agent or a server
 * passes the agents' DLP (aip_log_set_filter). */
#ifndef AIP_LOG_H
#define AIP_LOG_H

#include <stddef.h>

typedef enum aip_log_level { AIP_LOG_DEBUG = 0, AIP_LOG_INFO, AIP_LOG_WARN, AIP_LOG_ERROR } aip_log_level;

void aip_log_set_level(aip_log_level lvl);
/* Text put before every line (the stdio wrapper uses "[aip-proxy] ", as the reference does).
 * The string is borrowed; NULL or "" means none. */
void aip_log_set_prefix(const char *prefix);
void aip_log(aip_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A filter every message passes before it is written (the agents' DLP: log_dlp.c), on the
 * thread that installs it (the loop); lines logged on other threads (the audit writer, policy
 * compiles) never carry text from an agent or a server. Returns 0 (unchanged), 1 with *out a
 * malloc'd replacement of *out_len bytes, or < 0 (the message is withheld). NULL removes it. */
/* Text of unbounded lines (a child's stderr) is logged line by line; a line longer than this is
 * logged once, when this much of it has arrived, and the rest up to its newline is dropped. A
 * log line shows at most ~2 KB, so the filter has seen 16 KiB past anything shown: a secret
 * up to that long that starts in what is shown is seen whole, never cut in two. */
#define AIP_LOG_LONG_LINE (18u * 1024)

typedef int (*aip_log_filter_fn)(void *ctx, const char *msg, size_t len, char **out,
                                 size_t *out_len);
void aip_log_set_filter(aip_log_filter_fn fn, void *ctx);

#define aip_debug(...) aip_log(AIP_LOG_DEBUG, __VA_ARGS__)
#define aip_info(...) aip_log(AIP_LOG_INFO, __VA_ARGS__)
#define aip_warn(...) aip_log(AIP_LOG_WARN, __VA_ARGS__)
#define aip_error(...) aip_log(AIP_LOG_ERROR, __VA_ARGS__)

#endif
