/* stream_write.h -- the one way the gateway writes to a libuv stream.
 *
 * uv_try_write first: on a healthy socket or pipe the bytes leave in one syscall, with no
 * request allocated and no epoll_ctl (a uv_write that completes at once still re-arms the
 * watcher, one more syscall per message). Only what the kernel did not take is queued. */
#ifndef AIP_STREAM_WRITE_H
#define AIP_STREAM_WRITE_H

#include <stddef.h>
#include <uv.h>

typedef void (*aip_write_done_cb)(void *data, int status);

/* Takes ownership of `data` (malloc'd). Returns 0 when everything was written now (`done` is
 * not called), 1 when the rest was queued (`done` runs when it is written or failed), or a
 * negative libuv error (nothing queued, `data` freed). */
int aip_stream_write(uv_stream_t *s, char *data, size_t len, aip_write_done_cb done, void *arg);

#endif
