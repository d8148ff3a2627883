/* log.h -- the gateway's operational log: one line per event on stderr.
 * Never pass a secret or a matched DLP value to these functions. */
#ifndef AIP_LOG_H
#define AIP_LOG_H

typedef enum aip_log_level { AIP_LOG_DEBUG = 0, AIP_LOG_INFO, AIP_LOG_WARN, AIP_LOG_ERROR } aip_log_level;

void aip_log_set_level(aip_log_level lvl);
/* Text put before every line (the stdio wrapper uses "[aip-proxy] ", as the reference does).
 * The string is borrowed; NULL or "" means none. */
void aip_log_set_prefix(const char *prefix);
void aip_log(aip_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define aip_debug(...) aip_log(AIP_LOG_DEBUG, __VA_ARGS__)
#define aip_info(...) aip_log(AIP_LOG_INFO, __VA_ARGS__)
#define aip_warn(...) aip_log(AIP_LOG_WARN, __VA_ARGS__)
#define aip_error(...) aip_log(AIP_LOG_ERROR, __VA_ARGS__)

#endif
