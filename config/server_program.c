/* server_program.c -- does a stdio server's program exist where `aip serve` will look for it?
 * aip_program_resolve is the one lookup of a program in PATH: aip serve (gateway/exec_shim.c),
 * the stdio wrapper and `aip check` all use it, so check refuses exactly what serve could not
 * start on the first call that needs it. */
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

int aip_program_resolve(const char *cmd, const char *path, char **out) {
  const char *why;
  *out = NULL;
  if (strchr(cmd, '/')) {
    int rc = executable(cmd, &why);
    if (!rc && !(*out = strdup(cmd))) rc = -ENOMEM;
    return rc;
  }
  if (!path || !*path) path = AIP_DEFAULT_PATH;
  int rc = -ENOENT;
  for (const char *p = path; *p;) {
    size_t n = strcspn(p, ":");
    /* relative entries (".", "") would depend on the working directory: never searched */
    if (n && p[0] == '/') {
      char *cand = NULL;
      if (asprintf(&cand, "%.*s/%s", (int)n, p, cmd) < 0) return -ENOMEM;
      int r = executable(cand, &why);
      if (!r) {
        *out = cand;
        return 0;
      }
      if (r == -EACCES) rc = r; /* found but not runnable: say so rather than "not found" */
      free(cand);
    }
    p += n;
    if (*p == ':') p++;
  }
  return rc;
}

/* The PATH the child is started with: its env's (build_env passes ours unless set). */
static const char *child_path(const aip_server_config *s) {
  for (size_t i = 0; i < s->env.n; i++)
    if (strcmp(s->env.items[i].key, "PATH") == 0) return s->env.items[i].value;
  return getenv("PATH");
}

int aip_server_program_check(const aip_gateway_config *cfg, const aip_server_config *s,
                             aip_error *err) {
  if (!s->command || !s->command_n) return 0;
  const char *prog = s->command[0];
  if (!strchr(prog, '/')) {
    const char *path = child_path(s);
    char *found = NULL;
    int rc = aip_program_resolve(prog, path, &found);
    free(found);
    if (rc == -ENOMEM) return aip_error_set(err, rc, "out of memory");
    if (rc == -EACCES)
      return aip_error_set(err, rc, "%s:%d:%d: server \"%s\": program \"%s\" found in PATH (%s) but not executable",
                           cfg->path, s->pos.line, s->pos.col, s->name, prog, path ? path : AIP_DEFAULT_PATH);
    if (rc)
      return aip_error_set(err, rc, "%s:%d:%d: server \"%s\": program \"%s\" not found in PATH (%s)",
                           cfg->path, s->pos.line, s->pos.col, s->name, prog, path ? path : AIP_DEFAULT_PATH);
    return 0;
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
