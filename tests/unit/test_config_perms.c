/* test_config_perms.c -- the file protection rule (config/file_perms.c): group- or
 * world-writable files and files of another non-root owner are refused; symlinks are followed
 * (Kubernetes Secret mounts); every file of a gateway config is checked, shared policies once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "test.h"

static char dir[] = "/tmp/aip-perms-XXXXXX";

static char *file(const char *name, mode_t mode) {
  static char paths[8][256];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, 256, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (f) {
    fputs("x: 1\n", f);
    fclose(f);
  }
  chmod(p, mode);
  return p;
}

static void test_rule(void) {
  aip_error err = {{0}};
  CHECK_INT(aip_config_perms_check("a.yaml", S_IFREG | 0644, 0, 1000, &err), 0);
  CHECK_INT(aip_config_perms_check("a.yaml", S_IFREG | 0400, 1000, 1000, &err), 0);
  CHECK_INT(aip_config_perms_check("a.yaml", S_IFREG | 0440, 0, 65532, &err), 0); /* k8s fsGroup */
  CHECK_INT(aip_config_perms_check("a.yaml", S_IFREG | 0700, 0, 0, &err), 0);

  CHECK_INT(aip_config_perms_check("p.yaml", S_IFREG | 0664, 0, 0, &err), -EPERM);
  CHECK_STR(err.msg, "p.yaml: permissions 0664 let group or others write it; run chmod go-w "
                     "p.yaml (or pass --allow-writable-config for development)");
  CHECK_INT(aip_config_perms_check("p.yaml", S_IFREG | 0646, 0, 0, &err), -EPERM);
  CHECK_INT(aip_config_perms_check("p.yaml", S_IFREG | 0620, 0, 0, &err), -EPERM);
  CHECK_INT(aip_config_perms_check("p.yaml", S_IFREG | 0602, 0, 0, &err), -EPERM);
  CHECK_INT(aip_config_perms_check("p.yaml", S_IFREG | 0666, 0, 0, &err), -EPERM);
  CHECK_INT(aip_config_perms_check("p.yaml", S_IFREG | 04664, 0, 0, &err), -EPERM);
  CHECK(strstr(err.msg, "permissions 4664 ") != NULL);

  /* another user's file: they can chmod it and write, whatever its mode */
  CHECK_INT(aip_config_perms_check("o.yaml", S_IFREG | 0400, 1000, 65532, &err), -EPERM);
  CHECK_STR(err.msg, "o.yaml: owned by uid 1000, neither root nor the user aip runs as "
                     "(uid 65532), who could rewrite it; run chown root o.yaml (or pass "
                     "--allow-writable-config for development)");
  /* both wrong: the mode is reported first */
  CHECK_INT(aip_config_perms_check("b.yaml", S_IFREG | 0666, 1000, 2000, &err), -EPERM);
  CHECK(strstr(err.msg, "permissions 0666") != NULL);
}

static void test_files(void) {
  aip_error err = {{0}};
  char *ok = file("ok.yaml", 0644);
  CHECK_INT(aip_config_file_check(ok, &err), 0);
  chmod(ok, 0400);
  CHECK_INT(aip_config_file_check(ok, &err), 0);
  char *bad = file("bad.yaml", 0664);
  CHECK_INT(aip_config_file_check(bad, &err), -EPERM);
  CHECK(strstr(err.msg, "permissions 0664 let group or others write it") != NULL);
  CHECK(strncmp(err.msg, bad, strlen(bad)) == 0);

  /* a symlink (0777 itself) is judged by its target, as a Kubernetes Secret mount */
  char link[300];
  snprintf(link, sizeof link, "%s/link.yaml", dir);
  CHECK_INT(symlink(ok, link), 0);
  CHECK_INT(aip_config_file_check(link, &err), 0);
  unlink(link);
  CHECK_INT(symlink(bad, link), 0);
  CHECK_INT(aip_config_file_check(link, &err), -EPERM);
  unlink(link);

  char missing[300];
  snprintf(missing, sizeof missing, "%s/missing.yaml", dir);
  CHECK_INT(aip_config_file_check(missing, &err), -ENOENT);
  CHECK(strstr(err.msg, "missing.yaml: No such file or directory") != NULL);

  /* a real file of another non-root owner (needs root to chown; skipped otherwise) */
  if (geteuid() == 0) {
    char *other = file("other.yaml", 0600);
    CHECK_INT(chown(other, 12345, 12345), 0);
    CHECK_INT(aip_config_file_check(other, &err), -EPERM);
    CHECK(strstr(err.msg, "owned by uid 12345") != NULL);
  }
}

static int problems;
static char last[AIP_ERROR_MAX];
static void count(void *ctx, const char *msg) {
  (void)ctx;
  problems++;
  snprintf(last, sizeof last, "%s", msg);
}

static void test_gateway_files(void) {
  aip_error err = {{0}};
  char cfgpath[300], p1[300], p2[300], key[300];
  snprintf(cfgpath, sizeof cfgpath, "%s", file("gateway.yaml", 0644));
  snprintf(p1, sizeof p1, "%s", file("a.yaml", 0600));
  snprintf(p2, sizeof p2, "%s", file("b.yaml", 0600));
  snprintf(key, sizeof key, "%s", file("key.pub", 0644));
  aip_agent_config agents[3] = {{.name = "a", .policy_path = p1},
                                {.name = "b", .policy_path = p2},
                                {.name = "c", .policy_path = p2}}; /* shares b's policy */
  char *keys[] = {key};
  aip_gateway_config cfg = {.path = cfgpath, .agents = agents, .agents_n = 3,
                            .trusted_keys = {.items = keys, .n = 1}};
  CHECK_INT(aip_gateway_config_check_files(&cfg, NULL, NULL, &err), 0);
  problems = 0;
  CHECK_INT(aip_gateway_config_check_files(&cfg, count, NULL, &err), 0);
  CHECK_INT(problems, 0);

  /* each kind of file is checked; the shared policy is reported once */
  chmod(p2, 0660);
  chmod(key, 0666);
  CHECK_INT(aip_gateway_config_check_files(&cfg, NULL, NULL, &err), -EPERM);
  CHECK(strncmp(err.msg, p2, strlen(p2)) == 0); /* stops at the first */
  problems = 0;
  CHECK_INT(aip_gateway_config_check_files(&cfg, count, NULL, &err), -EPERM);
  CHECK_INT(problems, 2);
  CHECK(strncmp(err.msg, p2, strlen(p2)) == 0); /* err holds the first, */
  CHECK(strncmp(last, key, strlen(key)) == 0);  /* the callback saw them all */
  chmod(p2, 0600);
  chmod(key, 0644);
  chmod(cfgpath, 0646);
  CHECK_INT(aip_gateway_config_check_files(&cfg, NULL, NULL, &err), -EPERM);
  CHECK(strncmp(err.msg, cfgpath, strlen(cfgpath)) == 0);
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_rule();
  test_files();
  test_gateway_files();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  TEST_MAIN_END();
}
