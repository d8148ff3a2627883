/* audit.c -- the audit writer thread.
 *
 * The loop thread formats a record (a JSON object without its chain members) and appends it to
 * a list of the current loop turn; once per turn the list moves to the writer under one lock.
 * The writer seals each record into the hash chain (prev/hash: the SHA-256 work stays off the
 * loop) and writes the batch with as few write(2) calls as it takes.
 *
 * Bounds and failures (docs/audit.md):
 * - `depth` counts records logged and not yet written. Reaching buffer_size is backpressure:
 *   the gateway stops reading requests (aip_audit_on_pressure) until the writer brings depth
 *   down to half, so the queue exceeds the bound by at most the records of calls already
 *   running, and nothing is refused for it. Only a writer that fails (or does not move for the
 *   pause's bound) makes block refuse new calls, and allow drop records beyond buffer_size.
 *   Without a pressure callback, allow drops beyond buffer_size.
 * - A failed write keeps the sealed lines and retries (50 ms doubling to 1 s): the chain stays
 *   continuous in the file and a transient failure loses nothing. Bytes of a failed attempt that
 *   reached the file are cut off again (ftruncate) so no half line is left behind.
 * - The file is reopened on aip_audit_reopen (SIGUSR1) and when its path is gone or names
 *   another file (a `mv` rotation without a signal); the chain carries on into the new file.
 */
#include "gateway/obs/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "engine/engine.h"
#include "gateway/core/dlp_apply.h"
#include "gateway/obs/log.h"

#define FLUSH_BYTES (1u << 20)
#define RENAME_CHECK_MS 1000
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 1000
#define TAIL_MAX (64u << 20) /* the longest last line we read back at open */

typedef struct line {
  struct line *next;
  size_t len;
  char data[];
} line;

struct aip_audit {
  aip_audit_opts opts;
  char *path;
  /* loop side: records of the current loop turn, handed over in one lock by `handoff` */
  line *local_head, *local_tail;
  uv_check_t handoff;
  int attached;
  /* backpressure (loop side): NORMAL, PAUSED (intake stopped), OVERLOADED (paused too long) */
  enum { PRESSURE_NORMAL, PRESSURE_PAUSED, PRESSURE_OVERLOADED } pstate;
  aip_audit_pressure_cb pressure_cb;
  void *pressure_ctx;
  uint64_t max_pause_ms;
  uv_async_t pressure_wake; /* the writer: depth fell to low water, or writing failed */
  uv_timer_t pressure_timer;
  atomic_int pressure; /* the loop waits for low water: the writer wakes it */
  uint64_t pauses;
  /* read on the loop without a lock */
  atomic_uint_fast64_t depth, written, write_errors, dropped, refused;
  atomic_int failing;
  /* shared with the writer thread, under mu */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  line *head, *tail;
  int stop, reopen;
  int wake_closed; /* pressure_wake is closed: the writer must not send it */
  /* writer thread only (and open/close, before and after it runs) */
  int fd;
  dev_t dev;
  ino_t ino;
  char last[AIP_AUDIT_HASH_HEX + 1]; /* hash of the last line sealed */
  aip_buf out;                       /* sealed lines not yet written */
  size_t out_done;                   /* bytes of `out` already in the file */
  uint64_t out_n;                    /* records in `out` */
  int64_t last_check_ms;
};

static int add_str(aip_buf *b, const char *key, const char *val) {
  if (!val) return 0;
  int err = aip_buf_printf(b, ",\"%s\":", key);
  return err ? err : aip_buf_json_string(b, val, strlen(val), 0);
}

int aip_audit_format(const aip_audit_rec *r, int64_t unix_ms, char **out, size_t *len) {
  aip_buf b;
  aip_buf_init(&b);
  time_t sec = (time_t)(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  int err = aip_buf_printf(&b, "{\"timestamp\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                           tm.tm_sec, (int)(unix_ms % 1000));
  if (!err) err = add_str(&b, "agent", r->agent);
  if (!err) err = add_str(&b, "session_id", r->session_id);
  if (!err) err = add_str(&b, "direction", r->direction);
  if (!err) err = add_str(&b, "method", r->method);
  if (!err) err = add_str(&b, "decision", r->decision);
  if (!err) err = add_str(&b, "policy_mode", r->policy_mode);
  if (!err) err = aip_buf_puts(&b, ",\"policy\":{\"name\":");
  if (!err) {
    const char *n = r->policy_name ? r->policy_name : "";
    err = aip_buf_json_string(&b, n, strlen(n), 0);
  }
  if (!err && r->policy_version) err = add_str(&b, "version", r->policy_version);
  if (!err) err = aip_buf_printf(&b, "},\"violation\":%s", r->violation ? "true" : "false");
  if (!err) err = add_str(&b, "tool", r->tool);
  if (!err) err = add_str(&b, "server", r->server);
  if (!err && r->args) {
    err = aip_buf_puts(&b, ",\"args\":");
    if (!err) err = aip_json_print(&b, r->args);
  }
  if (!err) err = add_str(&b, "reason", r->reason);
  if (!err && r->error_code) err = aip_buf_printf(&b, ",\"error_code\":%d", r->error_code);
  if (!err && r->failed_arg && r->failed_arg[0]) err = add_str(&b, "failed_arg", r->failed_arg);
  if (!err && r->dlp && r->dlp[0]) err = aip_buf_printf(&b, ",\"dlp\":%s", r->dlp);
  if (!err) err = add_str(&b, "approval_id", r->approval_id);
  if (!err) err = add_str(&b, "approver", r->approver);
  if (!err && r->latency_us >= 0)
    err = aip_buf_printf(&b, ",\"latency_us\":%lld", (long long)r->latency_us);
  if (!err) err = aip_buf_puts(&b, "}");
  if (err) {
    aip_buf_free(&b);
    return err;
  }
  *out = aip_buf_steal(&b, len);
  return 0;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- opening: continue the chain of an existing file --------------------------------------- */

/* Reads the last line of `fd` (size `size` > 0) and takes its hash as the chain's last. A file
 * cut mid-line (a crash during a write) gets a '\n' first, so the damaged line stays visible to
 * `aip audit verify` and the next record starts a line of its own. */
static void read_chain_tail(aip_audit *a, int rfd, off_t size) {
  char *buf = NULL;
  size_t want = 4096, got = 0;
  off_t start = 0;
  for (;;) {
    if (want > TAIL_MAX) want = TAIL_MAX;
    start = size > (off_t)want ? size - (off_t)want : 0;
    got = (size_t)(size - start);
    char *nb = realloc(buf, got + 1);
    if (!nb) {
      got = 0; /* no memory: the chain restarts, as for an unreadable tail */
      break;
    }
    buf = nb;
    ssize_t r = pread(rfd, buf, got, start);
    if (r != (ssize_t)got) {
      got = 0;
      break;
    }
    /* the line before the last ends at a '\n' other than the final byte */
    size_t i = got - 1;
    while (i > 0 && buf[i - 1] != '\n') i--;
    if (i > 0 || start == 0 || want >= TAIL_MAX) break;
    want *= 2;
  }
  if (!got) {
    aip_warn("audit: cannot read the end of %s; a new chain starts", a->path);
  } else if (buf[got - 1] != '\n') {
    aip_warn("audit: %s ends in the middle of a line (an interrupted write); it is closed with "
             "a newline and the chain restarts", a->path);
    if (write(a->fd, "\n", 1) != 1) aip_warn("audit: cannot end the damaged line: %s", strerror(errno));
  } else {
    size_t end = got - 1, i = end;
    while (i > 0 && buf[i - 1] != '\n') i--;
    char prev[AIP_AUDIT_HASH_HEX + 1], hash[AIP_AUDIT_HASH_HEX + 1];
    const char *why = aip_audit_check_line(buf + i, end - i, prev, hash);
    if (!why) memcpy(a->last, hash, sizeof(a->last));
    else aip_warn("audit: the last line of %s is not a chained record (%s); a new chain starts",
                  a->path, why);
  }
  free(buf);
}

/* Opens (or reopens) the file. The writer thread calls it after start. */
static int open_file(aip_audit *a) {
  int fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  if (a->fd >= 0) close(a->fd);
  a->fd = fd;
  a->dev = st.st_dev;
  a->ino = st.st_ino;
  return 0;
}

/* ---- the writer ---------------------------------------------------------------------------- */

/* Seals the batch onto `out` (after what is still unwritten): the chain order is the order of
 * the lines in the file. */
static void seal_batch(aip_audit *a, line *l) {
  while (l) {
    line *next = l->next;
    char hash[AIP_AUDIT_HASH_HEX + 1];
    if (aip_audit_seal(&a->out, l->data, l->len, a->last, hash) == 0) {
      memcpy(a->last, hash, sizeof(a->last));
      a->out_n++;
    } else {
      aip_error("audit: cannot seal a record (out of memory); it is lost");
      atomic_fetch_add(&a->dropped, 1);
      atomic_fetch_sub(&a->depth, 1);
    }
    free(l);
    l = next;
  }
}

/* Writes what is sealed; 0 when `out` is empty afterwards. */
static int flush_out(aip_audit *a) {
  if (a->fd < 0) { /* a reopen failed: no file, even with nothing to write, is a failure */
    int err = open_file(a);
    if (err) return err;
  }
  if (a->out_done == a->out.len) return 0;
  struct stat st;
  off_t before = fstat(a->fd, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : -1;
  size_t done = a->out_done;
  int err = 0;
  while (done < a->out.len) {
    size_t n = a->out.len - done;
    if (n > FLUSH_BYTES) n = FLUSH_BYTES;
    ssize_t w = write(a->fd, a->out.data + done, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      err = w < 0 ? -errno : -EIO;
      break;
    }
    done += (size_t)w;
  }
  if (err) {
    /* No half line in the file: cut what this attempt wrote, and retry it all later. If the
     * cut fails too, go on from where the file ends. */
    if (done > a->out_done && before >= 0 && ftruncate(a->fd, before) == 0) done = a->out_done;
    a->out_done = done;
    return err;
  }
  atomic_fetch_add(&a->written, a->out_n);
  atomic_fetch_sub(&a->depth, a->out_n);
  a->out_n = 0;
  a->out_done = 0;
  aip_buf_reset(&a->out);
  if (a->out.cap > 4 * FLUSH_BYTES) { /* a burst is over: give the memory back */
    aip_buf_free(&a->out);
    aip_buf_init(&a->out);
  }
  return 0;
}

/* Rotation by rename without a signal: the path is gone or is another file now. */
static int path_moved(aip_audit *a) {
  if (a->fd < 0) return 0;
  struct stat st;
  if (stat(a->path, &st) != 0) return errno == ENOENT;
  return st.st_dev != a->dev || st.st_ino != a->ino;
}

static void do_reopen(aip_audit *a, const char *why) {
  /* Lines a failed attempt did write stay in the old file; a line it cut (when the cut could
   * not be undone) is written whole to the new one. */
  while (a->out_done > 0 && a->out.data[a->out_done - 1] != '\n') a->out_done--;
  int err = open_file(a);
  if (err) {
    aip_error("audit: cannot reopen %s (%s): %s", a->path, why, strerror(-err));
    if (a->fd >= 0) close(a->fd);
    a->fd = -1; /* retried with the next write */
    atomic_fetch_add(&a->write_errors, 1);
    atomic_store(&a->failing, 1);
  } else {
    aip_info("audit: reopened %s (%s)", a->path, why);
  }
}

static void *audit_main(void *arg) {
  aip_audit *a = arg;
  unsigned retry_ms = 0;
  pthread_mutex_lock(&a->mu);
  for (;;) {
    if (!a->head && !a->stop && !a->reopen) {
      /* Sleep until work arrives, a retry is due, or the next rename check. */
      unsigned ms = retry_ms ? retry_ms : RENAME_CHECK_MS;
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += ms / 1000;
      ts.tv_nsec += (long)(ms % 1000) * 1000000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
    line *batch = a->head;
    a->head = a->tail = NULL;
    int reopen = a->reopen, stop = a->stop;
    a->reopen = 0;
    pthread_mutex_unlock(&a->mu);

    int64_t now = mono_ms();
    if (reopen) {
      do_reopen(a, "signal");
    } else if (now - a->last_check_ms >= RENAME_CHECK_MS) {
      a->last_check_ms = now;
      if (path_moved(a)) do_reopen(a, "the file was moved or removed");
    }
    seal_batch(a, batch);
    int err = flush_out(a);
    if (err) {
      atomic_fetch_add(&a->write_errors, 1);
      if (!atomic_exchange(&a->failing, 1))
        aip_error("audit: cannot write %s: %s (retrying)", a->path, strerror(-err));
      retry_ms = retry_ms ? (retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2)
                          : RETRY_MIN_MS;
    } else {
      if (atomic_exchange(&a->failing, 0)) aip_info("audit: writing %s again", a->path);
      retry_ms = 0;
    }

    pthread_mutex_lock(&a->mu);
    /* under mu: aip_audit_detach closes the handle under it */
    if (a->pressure_cb && !a->wake_closed && atomic_load(&a->pressure) &&
        (err || atomic_load(&a->depth) <= a->opts.buffer_size / 2)) {
      atomic_store(&a->pressure, 0);
      uv_async_send(&a->pressure_wake);
    }
    if (stop && !a->head) break;
  }
  pthread_mutex_unlock(&a->mu);
  if (a->out_n) {
    aip_error("audit: %llu record(s) could not be written to %s and are lost",
              (unsigned long long)a->out_n, a->path);
    atomic_fetch_add(&a->dropped, a->out_n);
    atomic_fetch_sub(&a->depth, a->out_n);
  }
  return NULL;
}

/* Moves the loop's pending records to the writer: one lock (and at most one wake-up) per loop
 * turn, however many decisions the turn made. */
static void hand_over(aip_audit *a) {
  if (!a->local_head) return;
  pthread_mutex_lock(&a->mu);
  int was_empty = a->head == NULL;
  if (a->tail) a->tail->next = a->local_head;
  else a->head = a->local_head;
  a->tail = a->local_tail;
  if (was_empty) pthread_cond_signal(&a->cv); /* the writer sleeps only on an empty queue */
  pthread_mutex_unlock(&a->mu);
  a->local_head = a->local_tail = NULL;
}

static void on_handoff(uv_check_t *h) {
  uv_check_stop(h);
  hand_over(h->data);
}

int aip_audit_open(uv_loop_t *loop, const char *path, aip_audit **out) {
  /* The stdio wrapper has no gate to refuse calls with, so "block" would only mean unbounded
   * memory while a disk fails: it keeps 1000 records and counts (and reports) the rest. */
  aip_audit_opts o = {1000, 1};
  return aip_audit_open_ex(loop, path, &o, out);
}

int aip_audit_open_ex(uv_loop_t *loop, const char *path, const aip_audit_opts *opts,
                      aip_audit **out) {
  aip_audit *a = calloc(1, sizeof(*a));
  if (!a) return -ENOMEM;
  a->opts = *opts;
  a->fd = -1;
  a->path = strdup(path);
  aip_buf_init(&a->out);
  memcpy(a->last, aip_audit_genesis, sizeof(a->last));
  int err = a->path ? open_file(a) : -ENOMEM;
  if (err) {
    free(a->path);
    free(a);
    return err;
  }
  /* The chain goes on from the file's last line (a restart is not a new chain). */
  int rfd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (rfd >= 0 && fstat(rfd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    read_chain_tail(a, rfd, st.st_size);
  if (rfd >= 0) close(rfd);
  a->last_check_ms = mono_ms();
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  err = pthread_create(&a->thread, NULL, audit_main, a);
  if (err) {
    close(a->fd);
    free(a->path);
    free(a);
    return -err;
  }
  uv_check_init(loop, &a->handoff);
  a->handoff.data = a;
  a->attached = 1;
  *out = a;
  return 0;
}

void aip_audit_detach(aip_audit *a) {
  if (!a || !a->attached) return;
  hand_over(a);
  a->attached = 0;
  uv_close((uv_handle_t *)&a->handoff, NULL);
  if (a->pressure_cb) {
    a->pstate = PRESSURE_NORMAL;
    pthread_mutex_lock(&a->mu);
    a->wake_closed = 1;
    pthread_mutex_unlock(&a->mu);
    uv_close((uv_handle_t *)&a->pressure_wake, NULL);
    uv_close((uv_handle_t *)&a->pressure_timer, NULL);
  }
}

void aip_audit_reopen(aip_audit *a) {
  if (!a) return;
  hand_over(a); /* records logged before the signal may still land in the old file */
  pthread_mutex_lock(&a->mu);
  a->reopen = 1;
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

int aip_audit_blocking(aip_audit *a) {
  if (!a || a->opts.on_error_allow) return 0;
  if (atomic_load(&a->failing)) return -EIO;
  if (a->pstate == PRESSURE_OVERLOADED) return -ENOBUFS;
  /* without backpressure (no callback) a full queue is all there is to refuse on */
  if (!a->pressure_cb && a->opts.buffer_size && atomic_load(&a->depth) >= a->opts.buffer_size)
    return -ENOBUFS;
  return 0;
}

/* ---- backpressure (loop thread) -------------------------------------------------------------- */

static void pressure_end(aip_audit *a, int tell) {
  int was = a->pstate;
  a->pstate = PRESSURE_NORMAL;
  atomic_store(&a->pressure, 0);
  uv_timer_stop(&a->pressure_timer);
  if (was == PRESSURE_PAUSED && tell) a->pressure_cb(a->pressure_ctx, 0);
}

/* The writer reached low water or failed (or a wake from a state that is already over). */
static void on_pressure_wake(uv_async_t *h) {
  aip_audit *a = h->data;
  if (a->pstate == PRESSURE_NORMAL) return;
  if (atomic_load(&a->depth) <= a->opts.buffer_size / 2 || atomic_load(&a->failing)) {
    pressure_end(a, 1);
    return;
  }
  atomic_store(&a->pressure, 1); /* not yet: wait for the next flush */
  if (atomic_load(&a->depth) <= a->opts.buffer_size / 2) pressure_end(a, 1);
}

static void on_pressure_timeout(uv_timer_t *t) {
  aip_audit *a = t->data;
  if (a->pstate != PRESSURE_PAUSED) return;
  aip_warn("audit: the writer has not caught up for %llu ms (%llu records queued): intake "
           "resumes, and calls are refused until it does",
           (unsigned long long)a->max_pause_ms, (unsigned long long)atomic_load(&a->depth));
  a->pstate = PRESSURE_OVERLOADED;
  a->pressure_cb(a->pressure_ctx, 0);
}

/* A record was queued: at high water, pause intake. */
static void pressure_check(aip_audit *a) {
  if (!a->pressure_cb || a->pstate != PRESSURE_NORMAL || !a->attached) return;
  if (atomic_load(&a->depth) < a->opts.buffer_size || atomic_load(&a->failing)) return;
  a->pstate = PRESSURE_PAUSED;
  a->pauses++;
  uv_timer_start(&a->pressure_timer, on_pressure_timeout, a->max_pause_ms, 0);
  a->pressure_cb(a->pressure_ctx, 1);
  /* Armed after the state is set; the writer may have drained in between and seen nothing to
   * wake: look again (one of the two sees the other's store). */
  atomic_store(&a->pressure, 1);
  if (atomic_load(&a->depth) <= a->opts.buffer_size / 2) pressure_end(a, 1);
}

int aip_audit_on_pressure(aip_audit *a, uint64_t max_pause_ms, aip_audit_pressure_cb cb,
                          void *ctx) {
  if (!a->attached || a->pressure_cb || !a->opts.buffer_size) return -EINVAL;
  uv_loop_t *loop = a->handoff.loop;
  int err = uv_async_init(loop, &a->pressure_wake, on_pressure_wake);
  if (err) return err;
  uv_timer_init(loop, &a->pressure_timer);
  a->pressure_wake.data = a->pressure_timer.data = a;
  uv_unref((uv_handle_t *)&a->pressure_wake); /* it must not keep the loop alive */
  a->pressure_ctx = ctx;
  a->max_pause_ms = max_pause_ms;
  pthread_mutex_lock(&a->mu); /* the writer reads pressure_cb under mu */
  a->pressure_cb = cb;
  pthread_mutex_unlock(&a->mu);
  return 0;
}

int aip_audit_admit(aip_audit *a) {
  int err = aip_audit_blocking(a);
  if (err) atomic_fetch_add(&a->refused, 1);
  return err;
}

/* The record as written: every string an agent or a server chose, redacted by the agent's
 * DLP (names, reasons that quote them, arguments). The buffers hold the redacted texts. */
typedef struct redacted_rec {
  aip_audit_rec r;
  aip_buf b[4];
  cJSON *args;
} redacted_rec;

static void redact_rec(redacted_rec *o, const aip_audit_rec *in) {
  o->r = *in;
  o->args = NULL;
  for (size_t i = 0; i < 4; i++) aip_buf_init(&o->b[i]);
  aip_dlp_run *d = in->dlp_run;
  if (!d || !d->dlp) return;
  o->r.method = aip_dlp_redact_field(d, in->method, &o->b[0]);
  o->r.tool = aip_dlp_redact_field(d, in->tool, &o->b[1]);
  o->r.reason = aip_dlp_redact_field(d, in->reason, &o->b[2]);
  o->r.failed_arg = aip_dlp_redact_field(d, in->failed_arg, &o->b[3]);
  o->args = aip_dlp_redact_copy(d, in->args);
  if (o->args) o->r.args = o->args;
}

static void redacted_free(redacted_rec *o) {
  for (size_t i = 0; i < 4; i++) aip_buf_free(&o->b[i]);
  cJSON_Delete(o->args);
}

static void log_rec(aip_audit *a, const aip_audit_rec *r);

void aip_audit_log(aip_audit *a, const aip_audit_rec *r) {
  if (!a) return;
  redacted_rec o;
  redact_rec(&o, r);
  log_rec(a, &o.r);
  redacted_free(&o);
}

static void log_rec(aip_audit *a, const aip_audit_rec *r) {
  if (a->opts.on_error_allow && a->opts.buffer_size &&
      atomic_load(&a->depth) >= a->opts.buffer_size &&
      (!a->pressure_cb || atomic_load(&a->failing) || a->pstate == PRESSURE_OVERLOADED)) {
    /* allow: the call goes on without its record; the count is the evidence that one is
     * missing (aip_audit_dropped_total) */
    uint64_t n = atomic_fetch_add(&a->dropped, 1) + 1;
    if ((n & (n - 1)) == 0) /* 1, 2, 4, 8, ...: visible without flooding the log */
      aip_error("audit: queue full (%u records); %llu record(s) dropped so far",
                a->opts.buffer_size, (unsigned long long)n);
    return;
  }
  struct timeval tv;
  gettimeofday(&tv, NULL);
  char *s;
  size_t n;
  if (aip_audit_format(r, (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, &s, &n)) {
    aip_error("audit: cannot format a record (out of memory)");
    atomic_fetch_add(&a->dropped, 1);
    return;
  }
  line *l = malloc(sizeof(*l) + n);
  if (!l) {
    free(s);
    aip_error("audit: cannot queue a record (out of memory)");
    atomic_fetch_add(&a->dropped, 1);
    return;
  }
  l->next = NULL;
  l->len = n;
  memcpy(l->data, s, n);
  free(s);
  atomic_fetch_add(&a->depth, 1);
  if (a->local_tail) a->local_tail->next = l;
  else a->local_head = l;
  a->local_tail = l;
  if (!a->attached) hand_over(a);
  else if (!uv_is_active((uv_handle_t *)&a->handoff)) uv_check_start(&a->handoff, on_handoff);
  pressure_check(a);
}

void aip_audit_log_decision(aip_audit *a, aip_audit_rec *r, const aip_decision *d,
                            const char *decision) {
  r->decision = decision ? decision : aip_decision_name(d->kind);
  r->violation = d->violation;
  r->reason = d->reason[0] ? d->reason : NULL;
  r->error_code = d->error_code;
  r->failed_arg = d->failed_arg;
  aip_audit_log(a, r);
}

uint64_t aip_audit_queue_depth(aip_audit *a) { return atomic_load(&a->depth); }

uint64_t aip_audit_written(aip_audit *a) { return atomic_load(&a->written); }

void aip_audit_stats_get(aip_audit *a, aip_audit_stats *s) {
  s->depth = atomic_load(&a->depth);
  s->written = atomic_load(&a->written);
  s->write_errors = atomic_load(&a->write_errors);
  s->dropped = atomic_load(&a->dropped);
  s->refused = atomic_load(&a->refused);
  s->pauses = a->pauses;
  s->failing = atomic_load(&a->failing);
  s->paused = a->pstate == PRESSURE_PAUSED;
}

void aip_audit_close(aip_audit *a) {
  if (!a) return;
  hand_over(a);
  pthread_mutex_lock(&a->mu);
  a->stop = 1;
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
  pthread_join(a->thread, NULL);
  if (a->fd >= 0) {
    fsync(a->fd);
    close(a->fd);
  }
  aip_buf_free(&a->out);
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->cv);
  free(a->path);
  free(a);
}
