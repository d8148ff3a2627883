/* server_program.c -- does a stdio server's program exist where `aip serve` will look for it?
 * The lookup mirrors gateway/upstream_stdio.c and execvp(3) in the child, so `aip check` can
 * refuse a config whose server would only fail on the first call that needs it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

/* 0 when `path` is an executable regular file; else -errno and why in `why`. */
static int executable(const char *path, const char **why) {
  struct stat st;
  if (stat(path, &st) != 0) {
    int e = errno;
    *why = strerror(e);
    return -e;
  }
  if (!S_ISREG(st.st_mode)) return *why = "not a regular file", -EACCES;
  if (access(path, X_OK) != 0) return *why = "not executable", -EACCES;
  return 0;
}

/* The PATH the child's execvp searches: its env's (build_env passes ours unless set). */
static const char *child_path(const aip_server_config *s) {
  for (size_t i = 0; i < s->env.n; i++)
    if (strcmp(s->env.items[i].key, "PATH") == 0) return s->env.items[i].value;
  const char *p = getenv("PATH");
  return p ? p : "/bin:/usr/bin"; /* glibc's execvp default */
}

static int in_path(const char *name, const char *path) {
  for (const char *d = path;; d++) {
    const char *end = strchr(d, ':');
    size_t n = end ? (size_t)(end - d) : strlen(d);
    char *cand = NULL;
    const char *why;
    /* an empty entry is the current directory, as for execvp */
    int ok = asprintf(&cand, "%.*s/%s", (int)(n ? n : 1), n ? d : ".", name) >= 0 &&
             executable(cand, &why) == 0;
    free(cand);
    if (ok) return 1;
    if (!end) return 0;
    d = end;
  }
}

int aip_server_program_check(const aip_gateway_config *cfg, const aip_server_config *s,
                             aip_error *err) {
  if (!s->command || !s->command_n) return 0;
  const char *prog = s->command[0];
  if (!strchr(prog, '/')) {
    const char *path = child_path(s);
    if (in_path(prog, path)) return 0;
    return aip_error_set(err, -ENOENT, "%s:%d:%d: server \"%s\": program \"%s\" not found in PATH (%s)",
                         cfg->path, s->pos.line, s->pos.col, s->name, prog, path);
  }
  char *abs = NULL;
  if (prog[0] == '/') abs = strdup(prog);
  else if (asprintf(&abs, "%s/%s", cfg->dir ? cfg->dir : ".", prog) < 0) abs = NULL;
  if (!abs) return aip_error_set(err, -ENOMEM, "out of memory");
  const char *why = NULL;
  int rc = executable(abs, &why);
  if (rc) aip_error_set(err, rc, "%s:%d:%d: server \"%s\": program \"%s\" (%s): %s", cfg->path,
                        s->pos.line, s->pos.col, s->name, prog, abs, why);
  free(abs);
  return rc;
}
