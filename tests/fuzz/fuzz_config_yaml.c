/* fuzz_config_yaml.c -- the gateway config loader (config/gateway_config.c) on arbitrary bytes.
 * The loader takes a path (relative paths in it are the file's folder's), so the bytes are
 * written to gateway.yaml in a private temporary folder that also holds a valid policy at
 * policies/agent.yaml, for an agent's reference to resolve. Then
 * what `aip check --config` checks of a config that loads. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

static char dir[64], path[128];

static void put(const char *name, const char *text) {
  char p[192];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (!f || fputs(text, f) < 0 || fclose(f)) abort();
}

static void init(void) {
  snprintf(dir, sizeof dir, "%s", "/tmp/aip-fuzz-config-XXXXXX");
  if (!mkdtemp(dir)) abort();
  char p[192];
  snprintf(p, sizeof p, "%s/policies", dir);
  mkdir(p, 0700);
  put("policies/agent.yaml", "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\n"
                             "metadata: {name: a}\nspec: {allowed_tools: [echo]}\n");
  snprintf(path, sizeof path, "%s/gateway.yaml", dir);
}

static void cleanup(void) {
  char p[192];
  snprintf(p, sizeof p, "%s/policies/agent.yaml", dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/policies", dir);
  rmdir(p);
  unlink(path);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  init();
  atexit(cleanup);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd)) abort();
  aip_gateway_config *c = NULL;
  aip_error err = {{0}};
  if (aip_gateway_config_load(path, &c, &err)) {
    if (!err.msg[0]) abort();
    return 0;
  }
  for (size_t i = 0; i < c->servers_n; i++) aip_server_program_check(c, &c->servers[i], &err);
  aip_gateway_config_check_files(c, NULL, NULL, &err);
  aip_gateway_config_free(c);
  return 0;
}
