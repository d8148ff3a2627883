/* cmd_audit.c -- `aip audit verify` and `aip audit tools` (docs/audit.md).
 *
 * verify: every line must be a chained record (audit_chain.c) whose prev is the hash of the
 * line before; files of a rotated series, given oldest first, are one chain. The first line of
 * the first file must start a chain (prev = genesis) unless --prev anchors it: a file that
 * starts mid-chain (a rotated file on its own, or a file whose first lines were deleted) is an
 * error, never silently accepted.
 *
 * tools: per agent, which tools were used (a record ALLOW, ALLOW_MONITOR or APPROVED) or only
 * attempted, with counts; with --policy, the policy's allowed tools that went unused (pruning
 * candidates) and the tools used or attempted that the policy does not allow.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "config/config.h"
#include "engine/engine.h"
#include "gateway/obs/audit.h"
#include "gateway/cmd/cmd.h"

static const char usage[] =
    "usage: aip audit verify [--prev HASH] FILE [FILE...]\n"
    "         check the hash chain; files of a rotated series oldest first.\n"
    "         --prev HASH  the hash the first line must continue (the last hash of the file\n"
    "                      before it); without it the first line must start a chain\n"
    "       aip audit tools --audit FILE [--audit FILE...] [--since 30d|2026-02-01]\n"
    "                       [--policy agent.yaml] [--agent NAME] [--json]\n"
    "         the tools each agent used or attempted; with --policy, the allowed tools\n"
    "         left unused and the tools used or attempted that the policy does not allow\n";

/* ---- reading lines --------------------------------------------------------------------------- */

typedef int (*line_fn)(void *ctx, const char *file, size_t lineno, char *line, size_t len);

/* Calls fn for every line of `file` (without its '\n'; a last line without one is passed with
 * *torn set). Returns fn's first non-zero result, or -errno. */
static int each_line(const char *file, line_fn fn, void *ctx, int *torn) {
  FILE *f = fopen(file, "rb");
  if (!f) {
    int err = -errno;
    fprintf(stderr, "%s: %s\n", file, strerror(errno));
    return err;
  }
  char *buf = NULL;
  size_t cap = 0, lineno = 0;
  ssize_t n;
  int rc = 0;
  *torn = 0;
  while (!rc && (n = getline(&buf, &cap, f)) > 0) {
    lineno++;
    size_t len = (size_t)n;
    if (buf[len - 1] == '\n') len--;
    else *torn = 1;
    rc = fn(ctx, file, lineno, buf, len);
  }
  if (!rc && ferror(f)) {
    fprintf(stderr, "%s: read error\n", file);
    rc = -EIO;
  }
  free(buf);
  fclose(f);
  return rc;
}

/* ---- verify ---------------------------------------------------------------------------------- */

typedef struct verify_ctx {
  char expect[AIP_AUDIT_HASH_HEX + 1]; /* prev the next line must carry; "" = start of a chain */
  const char *prev_file;               /* the file the last line came from */
  uint64_t records;
} verify_ctx;

static int verify_line(void *vc, const char *file, size_t lineno, char *line, size_t len) {
  verify_ctx *c = vc;
  char prev[AIP_AUDIT_HASH_HEX + 1], hash[AIP_AUDIT_HASH_HEX + 1];
  const char *why = len ? aip_audit_check_line(line, len, prev, hash) : "empty line";
  if (why) {
    fprintf(stderr, "%s:%zu: %s\n", file, lineno, why);
    return 1;
  }
  if (!c->expect[0]) {
    if (strcmp(prev, aip_audit_genesis) != 0) {
      fprintf(stderr,
              "%s:%zu: the chain starts mid-way (prev %.16s...): earlier lines are missing, or "
              "this file continues a rotated one; verify it after the file before it, or "
              "anchor it with --prev <that file's last hash>\n",
              file, lineno, prev);
      return 1;
    }
  } else if (strcmp(prev, c->expect) != 0) {
    if (lineno == 1 && c->prev_file && strcmp(c->prev_file, file) != 0)
      fprintf(stderr, "%s:1: does not continue %s (prev %.16s..., but %s ends with %.16s...): "
              "lines are missing between the files, or they are out of order\n",
              file, c->prev_file, prev, c->prev_file, c->expect);
    else if (lineno == 1)
      fprintf(stderr, "%s:1: prev %.16s... is not the --prev anchor %.16s...\n", file, prev,
              c->expect);
    else if (strcmp(prev, aip_audit_genesis) == 0)
      fprintf(stderr, "%s:%zu: a new chain starts here (prev is the genesis value): the lines "
              "before it do not belong to this chain\n", file, lineno);
    else
      fprintf(stderr, "%s:%zu: prev does not match the hash of the line before: a line was "
              "deleted, inserted or moved before this one\n", file, lineno);
    return 1;
  }
  memcpy(c->expect, hash, sizeof(c->expect));
  c->prev_file = file;
  c->records++;
  return 0;
}

static int is_hash(const char *s) {
  if (strlen(s) != AIP_AUDIT_HASH_HEX) return 0;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
  return 1;
}

static int cmd_verify(int argc, char **argv) {
  verify_ctx c;
  memset(&c, 0, sizeof(c));
  int files = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--prev") == 0 && i + 1 < argc) {
      if (!is_hash(argv[++i])) {
        fprintf(stderr, "aip audit verify: --prev needs 64 lower-case hex digits\n");
        return 2;
      }
      memcpy(c.expect, argv[i], sizeof(c.expect));
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "aip audit verify: unknown option %s\n%s", argv[i], usage);
      return 2;
    } else {
      files++;
    }
  }
  if (!files) {
    fputs(usage, stderr);
    return 2;
  }
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--prev") == 0) {
      i++;
      continue;
    }
    int torn = 0;
    int rc = each_line(argv[i], verify_line, &c, &torn);
    if (rc) return 1;
    if (torn) {
      /* the last line was checked like any other; a record is always written whole */
      fprintf(stderr, "%s: the last line has no newline (an interrupted write?)\n", argv[i]);
      return 1;
    }
  }
  printf("%llu records, chain ok", (unsigned long long)c.records);
  if (c.records) printf(" (last hash %s)", c.expect);
  putchar('\n');
  return 0;
}

/* ---- tools ----------------------------------------------------------------------------------- */

static const char *const decisions[] = {"ALLOW", "ALLOW_MONITOR", "APPROVED", "ASK",
                                        "BLOCK", "RATE_LIMITED", "DENIED", "EXPIRED"};
#define N_DECISIONS (sizeof(decisions) / sizeof(decisions[0]))
#define N_USED 3 /* the first three: the call went ahead */

typedef struct tool_use {
  char *name;
  uint64_t n[N_DECISIONS];
} tool_use;

typedef struct agent_use {
  char *name;
  char *policy; /* the policy name its records carry (the last one seen) */
  tool_use *tools;
  size_t tools_n, tools_cap;
} agent_use;

typedef struct tools_ctx {
  char since[40]; /* records with timestamp >= since (string order, as jq compares) */
  const char *agent;
  agent_use *agents;
  size_t agents_n, agents_cap;
} tools_ctx;

static void *grow(void *p, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return p;
  size_t nc = *cap ? *cap * 2 : 8;
  void *np = realloc(p, nc * size);
  if (np) *cap = nc;
  return np;
}

static agent_use *agent_get(tools_ctx *c, const char *name) {
  for (size_t i = 0; i < c->agents_n; i++)
    if (strcmp(c->agents[i].name, name) == 0) return &c->agents[i];
  agent_use *na = grow(c->agents, &c->agents_cap, c->agents_n, sizeof(*na));
  if (!na) return NULL;
  c->agents = na;
  agent_use *a = &c->agents[c->agents_n];
  memset(a, 0, sizeof(*a));
  if (!(a->name = strdup(name))) return NULL;
  c->agents_n++;
  return a;
}

static tool_use *tool_get(agent_use *a, const char *name) {
  for (size_t i = 0; i < a->tools_n; i++)
    if (strcmp(a->tools[i].name, name) == 0) return &a->tools[i];
  tool_use *nt = grow(a->tools, &a->tools_cap, a->tools_n, sizeof(*nt));
  if (!nt) return NULL;
  a->tools = nt;
  tool_use *t = &a->tools[a->tools_n];
  memset(t, 0, sizeof(*t));
  if (!(t->name = strdup(name))) return NULL;
  a->tools_n++;
  return t;
}

static const char *str_of(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int tools_line(void *vc, const char *file, size_t lineno, char *line, size_t len) {
  tools_ctx *c = vc;
  if (!len) return 0;
  cJSON *o = NULL;
  if (aip_json_parse(line, len, &o) != AIP_JSON_OK || !cJSON_IsObject(o)) {
    fprintf(stderr, "%s:%zu: not a JSON object\n", file, lineno);
    cJSON_Delete(o);
    return 1;
  }
  const char *ts = str_of(o, "timestamp"), *agent = str_of(o, "agent"), *tool = str_of(o, "tool"),
             *dec = str_of(o, "decision");
  const cJSON *pol = cJSON_GetObjectItemCaseSensitive(o, "policy");
  const char *pname = cJSON_IsObject(pol) ? str_of(pol, "name") : NULL;
  int rc = 0;
  size_t k = N_DECISIONS;
  for (size_t i = 0; dec && i < N_DECISIONS; i++)
    if (strcmp(dec, decisions[i]) == 0) k = i;
  if (ts && agent && tool && k < N_DECISIONS && (!c->since[0] || strcmp(ts, c->since) >= 0) &&
      (!c->agent || strcmp(agent, c->agent) == 0)) {
    agent_use *a = agent_get(c, agent);
    tool_use *t = a ? tool_get(a, tool) : NULL;
    if (!t) {
      fprintf(stderr, "aip audit tools: out of memory\n");
      rc = 1;
    } else {
      t->n[k]++;
      if (pname && (!a->policy || strcmp(a->policy, pname) != 0)) {
        free(a->policy);
        a->policy = strdup(pname);
      }
    }
  }
  cJSON_Delete(o);
  return rc;
}

static int by_name(const void *x, const void *y) {
  return strcmp(((const tool_use *)x)->name, ((const tool_use *)y)->name);
}
static int agent_by_name(const void *x, const void *y) {
  return strcmp(((const agent_use *)x)->name, ((const agent_use *)y)->name);
}
static int str_cmp(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

static int used(const tool_use *t) {
  uint64_t n = 0;
  for (size_t i = 0; i < N_USED; i++) n += t->n[i];
  return n > 0;
}

/* The policy side of the report: compiled as if enforced (monitor mode would allow every
 * tool, which says nothing about what the policy allows). */
typedef struct policy_view {
  aip_policy_doc *doc;
  aip_policy *pol;
  char **allowed; /* the tools it names as allowed (allowed_tools, allow/ask rules), sorted */
  size_t allowed_n;
} policy_view;

static int policy_allows(const policy_view *pv, const char *tool) {
  return aip_policy_tool_visible(pv->pol, tool, strlen(tool));
}

static int policy_load(const char *path, policy_view *pv) {
  aip_error err = {{0}};
  memset(pv, 0, sizeof(*pv));
  int rc = aip_policy_doc_load_file(path, &pv->doc, &err);
  if (!rc) {
    pv->doc->mode = AIP_MODE_ENFORCE;
    rc = aip_policy_compile(pv->doc, &pv->pol, &err);
  }
  if (rc) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  const aip_policy_doc *d = pv->doc;
  pv->allowed = calloc(d->allowed_tools.n + d->rules_n + 1, sizeof(char *));
  if (!pv->allowed) return 1;
  for (size_t i = 0; i < d->allowed_tools.n + d->rules_n; i++) {
    const char *t = i < d->allowed_tools.n ? d->allowed_tools.items[i]
                                           : d->rules[i - d->allowed_tools.n].tool;
    if (!t || !policy_allows(pv, t)) continue; /* denied, or a block rule */
    /* by normalized name, once (AIP section 4.1: "Read_File" and "read_file" are one tool) */
    char *n = aip_normalize_name(t, strlen(t));
    if (!n) continue;
    int dup = 0;
    for (size_t j = 0; j < pv->allowed_n && !dup; j++) dup = strcmp(pv->allowed[j], n) == 0;
    if (dup) free(n);
    else pv->allowed[pv->allowed_n++] = n;
  }
  if (pv->allowed_n) qsort(pv->allowed, pv->allowed_n, sizeof(char *), str_cmp);
  return 0;
}

static void policy_free(policy_view *pv) {
  for (size_t i = 0; i < pv->allowed_n; i++) free(pv->allowed[i]);
  free(pv->allowed);
  aip_policy_free(pv->pol);
  aip_policy_doc_free(pv->doc);
}

/* Whether agent `a` used the normalized tool name `n`. */
static int agent_used(const agent_use *a, const char *n) {
  for (size_t i = 0; i < a->tools_n; i++) {
    if (!used(&a->tools[i])) continue;
    char *m = aip_normalize_name(a->tools[i].name, strlen(a->tools[i].name));
    int same = m && strcmp(m, n) == 0;
    free(m);
    if (same) return 1;
  }
  return 0;
}

static void print_text(const tools_ctx *c, const policy_view *pv) {
  for (size_t i = 0; i < c->agents_n; i++) {
    const agent_use *a = &c->agents[i];
    printf("%s%s", i ? "\n" : "", a->name);
    if (a->policy) printf(" (policy %s)", a->policy);
    printf("\n");
    for (size_t j = 0; j < a->tools_n; j++) {
      const tool_use *t = &a->tools[j];
      printf("  %-32s %-9s", t->name, used(t) ? "used" : "attempted");
      for (size_t k = 0; k < N_DECISIONS; k++)
        if (t->n[k]) printf(" %s=%llu", decisions[k], (unsigned long long)t->n[k]);
      printf("\n");
    }
    if (!pv) continue;
    printf("  allowed, unused (pruning candidates):");
    int any = 0;
    for (size_t j = 0; j < pv->allowed_n; j++)
      if (!agent_used(a, pv->allowed[j])) printf("%s %s", any++ ? "," : "", pv->allowed[j]);
    printf("%s\n", any ? "" : " none");
    printf("  used or attempted, not allowed:");
    any = 0;
    for (size_t j = 0; j < a->tools_n; j++)
      if (!policy_allows(pv, a->tools[j].name)) printf("%s %s", any++ ? "," : "", a->tools[j].name);
    printf("%s\n", any ? "" : " none");
  }
}

static int print_json(const tools_ctx *c, const policy_view *pv) {
  cJSON *root = cJSON_CreateObject(), *agents = cJSON_AddArrayToObject(root, "agents");
  if (c->since[0]) cJSON_AddStringToObject(root, "since", c->since);
  for (size_t i = 0; i < c->agents_n; i++) {
    const agent_use *a = &c->agents[i];
    cJSON *ja = cJSON_CreateObject();
    cJSON_AddItemToArray(agents, ja);
    cJSON_AddStringToObject(ja, "agent", a->name);
    if (a->policy) cJSON_AddStringToObject(ja, "policy", a->policy);
    cJSON *tools = cJSON_AddArrayToObject(ja, "tools");
    for (size_t j = 0; j < a->tools_n; j++) {
      const tool_use *t = &a->tools[j];
      cJSON *jt = cJSON_CreateObject();
      cJSON_AddItemToArray(tools, jt);
      cJSON_AddStringToObject(jt, "tool", t->name);
      cJSON_AddBoolToObject(jt, "used", used(t));
      cJSON *dc = cJSON_AddObjectToObject(jt, "decisions");
      for (size_t k = 0; k < N_DECISIONS; k++)
        if (t->n[k]) cJSON_AddNumberToObject(dc, decisions[k], (double)t->n[k]);
    }
    if (!pv) continue;
    cJSON *unused = cJSON_AddArrayToObject(ja, "allowed_unused");
    for (size_t j = 0; j < pv->allowed_n; j++)
      if (!agent_used(a, pv->allowed[j]))
        cJSON_AddItemToArray(unused, cJSON_CreateString(pv->allowed[j]));
    cJSON *na = cJSON_AddArrayToObject(ja, "not_allowed");
    for (size_t j = 0; j < a->tools_n; j++)
      if (!policy_allows(pv, a->tools[j].name))
        cJSON_AddItemToArray(na, cJSON_CreateString(a->tools[j].name));
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!s) return 1;
  puts(s);
  cJSON_free(s);
  return 0;
}

/* --since: a duration back from now ("30d", "12h") or the start of a timestamp ("2026-02-01"). */
static int parse_since(const char *s, char out[40]) {
  uint64_t ms;
  if (strlen(s) >= 4 && s[0] >= '0' && s[0] <= '9' && s[4] == '-') {
    if (strlen(s) >= 40) return -EINVAL;
    snprintf(out, 40, "%s", s);
    return 0;
  }
  if (aip_parse_duration_ms(s, &ms) != 0) return -EINVAL;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  time_t t = (time_t)(tv.tv_sec - (time_t)(ms / 1000));
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 40, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return 0;
}

static int cmd_tools(int argc, char **argv) {
  tools_ctx c;
  memset(&c, 0, sizeof(c));
  const char *policy = NULL, *files[64];
  size_t files_n = 0;
  int json = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if (strcmp(a, "--json") == 0) json = 1;
    else if (strcmp(a, "--audit") == 0 && has && files_n < 64) files[files_n++] = argv[++i];
    else if (strcmp(a, "--policy") == 0 && has) policy = argv[++i];
    else if (strcmp(a, "--agent") == 0 && has) c.agent = argv[++i];
    else if (strcmp(a, "--since") == 0 && has) {
      if (parse_since(argv[++i], c.since)) {
        fprintf(stderr, "aip audit tools: --since %s: want a duration (30d, 12h) or a date "
                "(2026-02-01)\n", argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "aip audit tools: unexpected argument %s\n%s", a, usage);
      return 2;
    }
  }
  if (!files_n) {
    fputs(usage, stderr);
    return 2;
  }
  policy_view pv;
  int have_pol = policy != NULL;
  if (have_pol && policy_load(policy, &pv)) {
    policy_free(&pv);
    return 1;
  }
  int rc = 0;
  for (size_t i = 0; !rc && i < files_n; i++) {
    int torn;
    rc = each_line(files[i], tools_line, &c, &torn) ? 1 : 0;
  }
  if (!rc && have_pol && !c.agent) {
    /* the policy's agents: those whose records name it; none yet is a report too (all unused) */
    size_t keep = 0;
    for (size_t i = 0; i < c.agents_n; i++) {
      agent_use *a = &c.agents[i];
      if (a->policy && strcmp(a->policy, pv.doc->name) == 0) c.agents[keep++] = *a;
      else {
        for (size_t j = 0; j < a->tools_n; j++) free(a->tools[j].name);
        free(a->tools);
        free(a->name);
        free(a->policy);
      }
    }
    c.agents_n = keep;
    if (!keep && agent_get(&c, pv.doc->name) == NULL) rc = 1;
  }
  if (!rc) {
    if (c.agents_n) qsort(c.agents, c.agents_n, sizeof(*c.agents), agent_by_name);
    for (size_t i = 0; i < c.agents_n; i++)
      if (c.agents[i].tools_n) qsort(c.agents[i].tools, c.agents[i].tools_n, sizeof(tool_use), by_name);
    if (json) rc = print_json(&c, have_pol ? &pv : NULL);
    else print_text(&c, have_pol ? &pv : NULL);
  }
  for (size_t i = 0; i < c.agents_n; i++) {
    for (size_t j = 0; j < c.agents[i].tools_n; j++) free(c.agents[i].tools[j].name);
    free(c.agents[i].tools);
    free(c.agents[i].name);
    free(c.agents[i].policy);
  }
  free(c.agents);
  if (have_pol) policy_free(&pv);
  return rc;
}

int aip_cmd_audit(int argc, char **argv) {
  if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
    fputs(usage, argc < 1 ? stderr : stdout);
    return argc < 1 ? 2 : 0;
  }
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(usage, stdout);
      return 0;
    }
  if (strcmp(argv[0], "verify") == 0) return cmd_verify(argc - 1, argv + 1);
  if (strcmp(argv[0], "tools") == 0) return cmd_tools(argc - 1, argv + 1);
  fprintf(stderr, "aip audit: unknown subcommand %s\n%s", argv[0], usage);
  return 2;
}
