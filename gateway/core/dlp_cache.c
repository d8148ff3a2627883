/* dlp_cache.c -- file storage for the DLP database cache (engine/dlp_cache.c makes the blobs).
 *
 * One file per key ("dlp-<hash>.hsdb") in a directory the operator chooses. Loading a file
 * that is not ours, truncated or stale is harmless: the engine checks everything in it and
 * compiles on any doubt. Writes go to a temporary name and are renamed into place, so two
 * processes starting at once at worst both compile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/core/dlp_cache.h"

#define CACHE_FILE_MAX (256u * 1024 * 1024)

static int cache_path(const char *dir, const char *key, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s/%s", dir, key);
  return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static int cache_load(void *ctx, const char *key, void **data, size_t *len) {
  char path[4096];
  int err = cache_path(ctx, key, path, sizeof path);
  if (err) return err;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  char *buf = NULL;
  size_t got = 0;
  if (fstat(fd, &st) || st.st_size <= 0 || (uint64_t)st.st_size > CACHE_FILE_MAX) {
    err = -EINVAL;
  } else if (!(buf = malloc((size_t)st.st_size))) {
    err = -ENOMEM;
  }
  while (!err && got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) err = r < 0 ? -errno : -EIO;
    else got += (size_t)r;
  }
  close(fd);
  if (err) {
    free(buf);
    return err;
  }
  *data = buf;
  *len = got;
  return 0;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -errno;
    p += w, n -= (size_t)w;
  }
  return 0;
}

static int cache_store(void *ctx, const char *key, const void *data, size_t len) {
  const char *dir = ctx;
  char path[4096], tmp[4200];
  int err = cache_path(dir, key, path, sizeof path);
  if (err) return err;
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  if (mkdir(dir, 0700) && errno != EEXIST) return -errno;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  err = write_all(fd, data, len);
  if (close(fd) && !err) err = -errno;
  if (!err && rename(tmp, path)) err = -errno;
  if (err) unlink(tmp);
  return err;
}

void aip_dlp_cache_dir(aip_dlp_cache_io *io, const char *dir) {
  io->ctx = (void *)dir;
  io->load = cache_load;
  io->store = cache_store;
}
