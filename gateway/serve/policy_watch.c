/* policy_watch.c -- reload policies when their files change.
 *
 * Watching a file's inode misses the two ways files are usually replaced: editors and config
 * tools write a new file and rename it over the old one, and Kubernetes swaps the `..data`
 * symlink of a mounted Secret or ConfigMap (every key is a symlink through it). So the folder of
 * each file is watched instead, and an event about one of our file names (or about a `..name`
 * entry, Kubernetes' swap) schedules a reload. Events come in bursts (write, chmod, rename), so
 * the reload waits DEBOUNCE_MS for the burst to end; policy_load.c then skips files whose bytes
 * did not change. The gateway config itself is watched too: its change reloads the policies
 * (other settings take effect at the next start, and the log says so).
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/serve/gw.h"
#include "gateway/obs/log.h"

#define DEBOUNCE_MS 100

typedef struct watched_dir {
  uv_fs_event_t ev;
  aip_policy_watch *w;
  char *dir;
} watched_dir;

struct aip_policy_watch {
  aip_gw *gw;
  uv_timer_t debounce;
  watched_dir **dirs;
  size_t dirs_n;
  char **names; /* base names of the watched files */
  size_t names_n;
  size_t open_handles; /* freed when the last one is closed */
  int config_changed;
};

static void watch_unref(aip_policy_watch *w) {
  if (--w->open_handles) return;
  for (size_t i = 0; i < w->names_n; i++) free(w->names[i]);
  free(w->names);
  free(w->dirs);
  free(w);
}

static void debounce_closed(uv_handle_t *h) { watch_unref(h->data); }

static void dir_closed(uv_handle_t *h) {
  watched_dir *d = h->data;
  aip_policy_watch *w = d->w;
  free(d->dir);
  free(d);
  watch_unref(w);
}

static void on_debounce(uv_timer_t *t) {
  aip_policy_watch *w = t->data;
  if (w->config_changed)
    aip_info("%s changed: reloading it (trusted_keys, agent tokens and operators apply now, "
             "the other settings at the next start)", w->gw->cfg->path);
  w->config_changed = 0;
  aip_policy_reload_all(w->gw, "a watched file changed");
}

static int is_ours(const aip_policy_watch *w, const char *name) {
  if (strncmp(name, "..", 2) == 0) return 1; /* Kubernetes' ..data swap */
  for (size_t i = 0; i < w->names_n; i++)
    if (strcmp(w->names[i], name) == 0) return 1;
  return 0;
}

static void on_event(uv_fs_event_t *h, const char *name, int events, int status) {
  (void)events;
  watched_dir *d = h->data;
  aip_policy_watch *w = d->w;
  if (status < 0) {
    aip_warn("watching %s: %s", d->dir, uv_strerror(status));
    return;
  }
  if (!name || !is_ours(w, name)) return;
  if (strcmp(name, w->names[0]) == 0) w->config_changed = 1; /* names[0]: the config */
  uv_timer_start(&w->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static int add_name(aip_policy_watch *w, const char *path) {
  char *copy = strdup(path);
  if (!copy) return -ENOMEM;
  char *base = strdup(basename(copy));
  free(copy);
  char **n = base ? realloc(w->names, (w->names_n + 1) * sizeof(*n)) : NULL;
  if (!n) {
    free(base);
    return -ENOMEM;
  }
  w->names = n;
  w->names[w->names_n++] = base;
  return 0;
}

static int add_dir(aip_policy_watch *w, const char *path) {
  char *copy = strdup(path);
  if (!copy) return -ENOMEM;
  char *dir = strdup(dirname(copy));
  free(copy);
  if (!dir) return -ENOMEM;
  for (size_t i = 0; i < w->dirs_n; i++) {
    if (strcmp(w->dirs[i]->dir, dir) == 0) {
      free(dir);
      return 0;
    }
  }
  watched_dir **dirs = realloc(w->dirs, (w->dirs_n + 1) * sizeof(*dirs));
  watched_dir *d = calloc(1, sizeof(*d));
  if (dirs) w->dirs = dirs;
  if (!dirs || !d) {
    free(d);
    free(dir);
    return -ENOMEM;
  }
  d->w = w;
  d->dir = dir;
  uv_fs_event_init(w->gw->loop, &d->ev);
  d->ev.data = d;
  w->dirs[w->dirs_n++] = d;
  w->open_handles++;
  int rc = uv_fs_event_start(&d->ev, on_event, dir, 0);
  if (rc) aip_warn("cannot watch %s for policy changes (%s): reload with SIGHUP", dir, uv_strerror(rc));
  return 0;
}

static int watch_file(aip_policy_watch *w, const char *path) {
  int rc = add_name(w, path);
  return rc ? rc : add_dir(w, path);
}

int aip_policy_watch_start(aip_gw *gw) {
  aip_policy_watch *w = calloc(1, sizeof(*w));
  if (!w) return -ENOMEM;
  w->gw = gw;
  uv_timer_init(gw->loop, &w->debounce);
  w->debounce.data = w;
  w->open_handles = 1;
  gw->watch = w;
  int rc = watch_file(w, gw->cfg->path);
  for (size_t i = 0; !rc && i < gw->cfg->agents_n; i++)
    rc = watch_file(w, gw->cfg->agents[i].policy_path);
  if (rc) aip_policy_watch_stop(gw);
  return rc;
}

void aip_policy_watch_stop(aip_gw *gw) {
  aip_policy_watch *w = gw->watch;
  if (!w) return;
  gw->watch = NULL;
  for (size_t i = 0; i < w->dirs_n; i++) uv_close((uv_handle_t *)&w->dirs[i]->ev, dir_closed);
  uv_close((uv_handle_t *)&w->debounce, debounce_closed);
}
