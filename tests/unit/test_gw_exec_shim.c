/* test_gw_exec_shim.c -- the lookup of a stdio server's program before it is spawned
 * (exec_shim.c): found in the child's PATH or as given, and every way it can be missing is an
 * error (ENOENT, EACCES for a file that is not runnable or not a file), never a guess; relative
 * PATH entries are not used. And the shim's argv. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/upstream/upstream.h"
#include "test.h"

static char dir[128];

static void make_file(const char *name, mode_t mode) {
  char p[256];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  fputs("#!/bin/sh\n", f);
  fclose(f);
  chmod(p, mode);
}

int main(void) {
  snprintf(dir, sizeof(dir), "/tmp/aip-test-exec-%d", (int)getpid());
  mkdir(dir, 0700);
  make_file("runme", 0700);
  make_file("plain", 0600);
  char sub[160], path_env[200];
  snprintf(sub, sizeof(sub), "%s/sub", dir);
  mkdir(sub, 0700);
  snprintf(path_env, sizeof(path_env), "PATH=relative/bin:%s", dir);
  char *env[] = {"HOME=/nowhere", path_env, NULL};
  char *out = NULL;
  char want[256];

  CHECK_INT(aip_exec_resolve("runme", env, &out), 0); /* found in the child's PATH */
  snprintf(want, sizeof(want), "%s/runme", dir);
  CHECK_STR(out, want);
  free(out);
  out = NULL;
  CHECK_INT(aip_exec_resolve(want, env, &out), 0); /* a path is taken as given */
  CHECK_STR(out, want);
  free(out);
  out = NULL;
  CHECK_INT(aip_exec_resolve("missing", env, &out), -ENOENT);
  CHECK_INT(aip_exec_resolve("plain", env, &out), -EACCES); /* there, but not runnable */
  CHECK_INT(aip_exec_resolve("sub", env, &out), -EACCES);   /* a folder is not a program */
  snprintf(want, sizeof(want), "%s/plain", dir);
  CHECK_INT(aip_exec_resolve(want, env, &out), -EACCES);
  CHECK_INT(aip_exec_resolve("/nonexistent/prog", env, &out), -ENOENT);
  CHECK(out == NULL);
  /* no PATH in the child's environment: the default one, which holds sh */
  char *bare[] = {NULL};
  CHECK_INT(aip_exec_resolve("sh", bare, &out), 0);
  CHECK(out && out[0] == '/');
  free(out);
  out = NULL;
  /* a relative PATH entry is skipped (it would depend on the child's cwd) */
  char *rel[] = {"PATH=.", NULL};
  CHECK_INT(chdir(dir), 0);
  CHECK_INT(aip_exec_resolve("runme", rel, &out), -ENOENT);

  char *argv[] = {"runme", "--flag", NULL};
  char **v = aip_exec_shim_argv("/x/runme", argv);
#ifdef __linux__
  CHECK(v != NULL);
  if (v) {
    CHECK_STR(v[0], "/proc/self/exe");
    CHECK_STR(v[1], AIP_EXEC_SHIM_CMD);
    char pid[24];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    CHECK_STR(v[2], pid);
    CHECK_STR(v[3], "/x/runme");
    CHECK_STR(v[4], "runme"); /* the server sees its own argv[0] */
    CHECK_STR(v[5], "--flag");
    CHECK(v[6] == NULL);
    for (char **p = v; *p; p++) free(*p);
    free(v);
  }
#else
  CHECK(v == NULL);
#endif
  char p[256];
  snprintf(p, sizeof(p), "%s/runme", dir);
  unlink(p);
  snprintf(p, sizeof(p), "%s/plain", dir);
  unlink(p);
  rmdir(sub);
  rmdir(dir);
  TEST_MAIN_END();
}
