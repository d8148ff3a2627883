/* exec_shim.c -- stdio servers die with the gateway, even of a kill -9.
 *
 * A server that ignores EOF on its stdin would outlive a gateway killed with SIGKILL (nothing
 * else tells it). Linux can: PR_SET_PDEATHSIG makes the kernel send a signal to a process when
 * its parent dies, and the setting survives execve. It must be set in the child, between fork
 * and exec, and libuv's uv_spawn has no hook there; so the child execs the gateway's own binary
 * (/proc/self/exe: the very file running, even if an upgrade replaced it on disk) as a shim:
 * `aip __exec-upstream <gateway pid> <program path> <argv...>`, which sets PDEATHSIG to
 * SIGKILL, checks that its parent is still the gateway (it may have died before the prctl: then
 * nothing would ever signal), and execs the server in its own place (same pid, same stdio).
 * The parent is the thread that forked: libuv forks from the loop thread, which lives as long
 * as the process. A server's own children are not covered (they get EOF on the pipes they
 * inherited, as before).
 *
 * The program is looked up here, in the server's PATH, before anything is spawned, so a
 * missing or non-executable program is still reported at once ("cannot start ...") rather than
 * as an exit status of the shim. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <signal.h>
#include <sys/prctl.h>
#endif

#include "config/config.h"
#include "gateway/upstream/upstream.h"

int aip_exec_resolve(const char *cmd, char *const *env, char **out) {
  const char *path = NULL;
  for (char *const *e = env; e && *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  return aip_program_resolve(cmd, path, out);
}

char **aip_exec_shim_argv(const char *program, char *const *argv) {
#ifdef __linux__
  size_t n = 0;
  while (argv[n]) n++;
  char **v = calloc(n + 5, sizeof(char *));
  if (!v) return NULL;
  char pid[24];
  snprintf(pid, sizeof(pid), "%ld", (long)getpid());
  v[0] = strdup("/proc/self/exe");
  v[1] = strdup(AIP_EXEC_SHIM_CMD);
  v[2] = strdup(pid);
  v[3] = strdup(program);
  for (size_t i = 0; i < n; i++) v[4 + i] = strdup(argv[i]);
  for (size_t i = 0; i < n + 4; i++) {
    if (v[i]) continue;
    for (size_t k = 0; k < n + 4; k++) free(v[k]);
    free(v);
    return NULL;
  }
  return v;
#else
  (void)program, (void)argv;
  return NULL; /* no PDEATHSIG: the program is spawned directly */
#endif
}

void aip_exec_shim_argv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

int aip_exec_shim_main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "aip: %s is internal to aip serve\n", AIP_EXEC_SHIM_CMD);
    return 2;
  }
#ifdef __linux__
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    fprintf(stderr, "aip: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
    return 127;
  }
  if ((long)getppid() != strtol(argv[0], NULL, 10)) return 127; /* the gateway is already gone */
#endif
  char *prog = argv[1];
  execv(prog, argv + 2);
  if (errno == ENOEXEC) {
    /* a script without a #! line: sh runs it, as execvp (and so uv_spawn) would */
    static char sh[] = "/bin/sh";
    argv[1] = sh;
    argv[2] = prog;
    execv(sh, argv + 1);
  }
  fprintf(stderr, "aip: cannot run %s: %s\n", prog, strerror(errno));
  return 127;
}
