/* file_perms.c -- refuse configuration files that someone else could rewrite (operations guide
 * "Policy File Protection": the policy is the root of trust, `chmod 400` it).
 *
 * Rules, for the gateway config, every policy and every trusted key:
 *   - neither group nor others may write the file (mode & 022 == 0);
 *   - it is owned by root or by the user aip runs as: any other owner can chmod it and write,
 *     whatever its mode says. Root is accepted because that is the guide's `chown root:root`
 *     and how Kubernetes Secret and ConfigMap volumes present their files.
 * stat() follows symlinks on purpose: a Kubernetes Secret mount is a symlink into ..data, and
 * what matters is the file that is read. Only the file is checked, not the folders above it
 * (a writable folder lets someone replace the file): the shipped systemd unit and Kubernetes
 * manifests keep those root-owned, and docs/operations.md says so.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

#define OVERRIDE_HINT "(or pass --allow-writable-config for development)"

int aip_config_perms_check(const char *path, unsigned mode, unsigned uid, unsigned euid,
                           aip_error *err) {
  if (mode & (S_IWGRP | S_IWOTH))
    return aip_error_set(err, -EPERM,
                         "%s: permissions %04o let group or others write it; run chmod go-w %s "
                         OVERRIDE_HINT, path, mode & 07777, path);
  if (uid != 0 && uid != euid)
    return aip_error_set(err, -EPERM,
                         "%s: owned by uid %u, neither root nor the user aip runs as (uid %u), "
                         "who could rewrite it; run chown root %s " OVERRIDE_HINT,
                         path, uid, euid, path);
  return 0;
}

int aip_config_file_check(const char *path, aip_error *err) {
  struct stat st;
  if (stat(path, &st) != 0) {
    int e = errno;
    return aip_error_set(err, -e, "%s: %s", path, strerror(e));
  }
  return aip_config_perms_check(path, (unsigned)st.st_mode, (unsigned)st.st_uid,
                                (unsigned)geteuid(), err);
}

/* One file: report a problem through `each` (or stop at it when `each` is NULL). */
static int check_one(const char *path, aip_file_problem_fn each, void *ctx, int *first,
                     aip_error *err) {
  aip_error e = {{0}};
  int rc = aip_config_file_check(path, &e);
  if (!rc) return 0;
  if (!*first) {
    *first = rc;
    if (err) *err = e;
  }
  if (each) each(ctx, e.msg);
  return each ? 0 : rc;
}

int aip_gateway_config_check_files(const aip_gateway_config *cfg, aip_file_problem_fn each,
                                   void *ctx, aip_error *err) {
  int first = 0;
  int rc = check_one(cfg->path, each, ctx, &first, err);
  for (size_t i = 0; !rc && i < cfg->agents_n; i++) {
    const char *p = cfg->agents[i].policy_path;
    size_t j = 0; /* agents sharing a policy: one report (O(n^2) over a handful of agents) */
    while (j < i && strcmp(cfg->agents[j].policy_path, p) != 0) j++;
    if (j == i) rc = check_one(p, each, ctx, &first, err);
  }
  for (size_t i = 0; !rc && i < cfg->trusted_keys.n; i++)
    rc = check_one(cfg->trusted_keys.items[i], each, ctx, &first, err);
  return first;
}
