/* dlp_cache.h -- the DLP engine's serialized-database cache kept in a directory, and the
 * `aip dlp` command. The engine does no I/O (engine/dlp.h, aip_dlp_cache_io); this is the one
 * place that reads and writes the cache files. */
#ifndef AIP_GATEWAY_DLP_CACHE_H
#define AIP_GATEWAY_DLP_CACHE_H

#include "engine/dlp.h"

/* Fills `io` with callbacks that keep one file per key in `dir` (created if missing, mode
 * 0700; files 0600, written to a temporary name and renamed into place, so a reader never sees
 * half a file). `dir` is borrowed and must outlive every compile that uses `io`. Call
 * aip_dlp_compile with it off the loop thread: it reads and writes files. */
void aip_dlp_cache_dir(aip_dlp_cache_io *io, const char *dir);

/* `aip dlp scan --policy P [--json] [--scope response|request] [--cache DIR] [FILE]`:
 * prints the redacted text on stdout and the per-rule counts on stderr. Exit 0 ok, 1 invalid
 * policy or input, 2 usage. */
int aip_cmd_dlp(int argc, char **argv);

#endif
