/* audit.c -- the audit writer thread.
 *
 * The loop thread formats a line and appends it to a mutex-protected list; the audit thread
 * takes the whole list at once and writes it with one writev-sized batch, so a burst of
 * decisions costs one write(2). The queue is unbounded in count but every line is bounded by
 * the request size limits; a later issue adds buffer limits and on_error policies.
 */
#include "gateway/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "engine/engine.h"
#include "gateway/log.h"

typedef struct line {
  struct line *next;
  size_t len;
  char data[];
} line;

struct aip_audit {
  /* loop side: records of the current loop turn, handed over in one lock by `handoff` */
  line *local_head, *local_tail;
  uv_check_t handoff;
  int attached;
  /* shared with the writer thread */
  int fd;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  line *head, *tail;
  uint64_t depth;
  uint64_t written;
  int stop;
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
  if (!err && r->args) {
    err = aip_buf_puts(&b, ",\"args\":");
    if (!err) err = aip_json_print(&b, r->args);
  }
  if (!err) err = add_str(&b, "reason", r->reason);
  if (!err && r->error_code) err = aip_buf_printf(&b, ",\"error_code\":%d", r->error_code);
  if (!err && r->failed_arg && r->failed_arg[0]) err = add_str(&b, "failed_arg", r->failed_arg);
  if (!err && r->dlp && r->dlp[0]) err = aip_buf_printf(&b, ",\"dlp\":%s", r->dlp);
  if (!err && r->latency_us >= 0)
    err = aip_buf_printf(&b, ",\"latency_us\":%lld", (long long)r->latency_us);
  if (!err) err = aip_buf_puts(&b, "}\n");
  if (err) {
    aip_buf_free(&b);
    return err;
  }
  *out = aip_buf_steal(&b, len);
  return 0;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Writes one batch: lines are packed into a buffer so a burst costs few syscalls. */
static void write_batch(aip_audit *a, line *l) {
  aip_buf b;
  aip_buf_init(&b);
  uint64_t n = 0;
  while (l) {
    line *next = l->next;
    if (aip_buf_append(&b, l->data, l->len) == 0) n++;
    free(l);
    l = next;
    if (b.len >= (1u << 20) || !l) {
      int err = write_all(a->fd, b.data, b.len);
      if (err) aip_error("audit: write failed: %s", strerror(-err));
      aip_buf_reset(&b);
    }
  }
  aip_buf_free(&b);
  pthread_mutex_lock(&a->mu);
  a->written += n;
  pthread_mutex_unlock(&a->mu);
}

static void *audit_main(void *arg) {
  aip_audit *a = arg;
  pthread_mutex_lock(&a->mu);
  for (;;) {
    while (!a->head && !a->stop) pthread_cond_wait(&a->cv, &a->mu);
    line *batch = a->head;
    a->head = a->tail = NULL;
    a->depth = 0;
    int stop = a->stop;
    pthread_mutex_unlock(&a->mu);
    if (batch) write_batch(a, batch);
    pthread_mutex_lock(&a->mu);
    if (stop && !a->head) break;
  }
  pthread_mutex_unlock(&a->mu);
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
  for (line *l = a->local_head; l; l = l->next) a->depth++;
  if (was_empty) pthread_cond_signal(&a->cv); /* the writer sleeps only on an empty queue */
  pthread_mutex_unlock(&a->mu);
  a->local_head = a->local_tail = NULL;
}

static void on_handoff(uv_check_t *h) {
  uv_check_stop(h);
  hand_over(h->data);
}

int aip_audit_open(uv_loop_t *loop, const char *path, aip_audit **out) {
  aip_audit *a = calloc(1, sizeof(*a));
  if (!a) return -ENOMEM;
  a->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (a->fd < 0) {
    int err = -errno;
    free(a);
    return err;
  }
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  int err = pthread_create(&a->thread, NULL, audit_main, a);
  if (err) {
    close(a->fd);
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
}

void aip_audit_log(aip_audit *a, const aip_audit_rec *r) {
  if (!a) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  char *s;
  size_t n;
  if (aip_audit_format(r, (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, &s, &n)) {
    aip_error("audit: cannot format a record (out of memory)");
    return;
  }
  line *l = malloc(sizeof(*l) + n);
  if (!l) {
    free(s);
    aip_error("audit: cannot queue a record (out of memory)");
    return;
  }
  l->next = NULL;
  l->len = n;
  memcpy(l->data, s, n);
  free(s);
  if (a->local_tail) a->local_tail->next = l;
  else a->local_head = l;
  a->local_tail = l;
  if (!a->attached) hand_over(a);
  else if (!uv_is_active((uv_handle_t *)&a->handoff)) uv_check_start(&a->handoff, on_handoff);
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

uint64_t aip_audit_queue_depth(aip_audit *a) {
  pthread_mutex_lock(&a->mu);
  uint64_t d = a->depth;
  pthread_mutex_unlock(&a->mu);
  return d;
}

uint64_t aip_audit_written(aip_audit *a) {
  pthread_mutex_lock(&a->mu);
  uint64_t w = a->written;
  pthread_mutex_unlock(&a->mu);
  return w;
}

void aip_audit_close(aip_audit *a) {
  if (!a) return;
  hand_over(a);
  pthread_mutex_lock(&a->mu);
  a->stop = 1;
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
  pthread_join(a->thread, NULL);
  fsync(a->fd);
  close(a->fd);
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->cv);
  free(a);
}
