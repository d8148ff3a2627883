/* dlp-bench.c -- what the DLP engine costs, next to what Hyperscan alone costs on the same bytes.
 *
 *   build/benchmarks/dlp-bench [--quick] [--shared DIR]
 *
 * Prints, for the operations guide's ten patterns and for the default rule pack:
 *   - throughput of aip_dlp_redact_json over JSON tool results (decode + scan + splice),
 *     clean and with one secret per 10 KiB, beside a plain hs_scan of the same message bytes
 *     with the same database, and their ratio;
 *   - latency of one 1 KiB and one 1 MiB tool result holding secrets (ten patterns), beside
 *     the AIP reference's figures (reference/aip.md section 10: 93 us and 72 ms);
 *   - a 100 MiB result streamed in 64 KiB reads: throughput and the stream's peak memory;
 *   - compile time of 200 rules (gitleaks, read from shared/data at run time) cold and from
 *     the serialized-database cache.
 * The corpus is generated here, deterministically; nothing is read but the gitleaks rules.
 * All figures are single-threaded; MB = 10^6 bytes; each throughput is the best of several runs.
 * The "ten guide patterns" are the operations guide's, with its Internal IP regex fixed as
 * docs/dlp.md says. DLP_BENCH_RULES=1 prints redactions per rule; DLP_BENCH_ONLY_LATENCY=1
 * runs only the latency loop (for a profiler).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/dlp.h"
#include "engine/dlp_internal.h"
#include "gateway/core/dlp_cache.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static unsigned seed = 42;
static unsigned rnd(void) {
  seed = seed * 1103515245u + 12345u;
  return seed >> 8;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- corpus ---------------------------------------------------------------------------------- */

static const char *const words[] = {
    "the", "request", "completed", "in", "42ms", "GET", "/api/v1/users/1842", "200", "error:",
    "connection", "reset", "by", "peer", "retrying", "function", "return", "value", "const",
    "if", "else", "{", "}", "(", ")", ";", "=>", "import", "from", "café", "naïve", "日本語",
    "déjà", "vu", "résumé", "8.8.4.4", "203.0.113.7", "https://example.com/docs/page?id=7",
    "3f786850e387550fdab836ed7e6dc881de23001b", "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "2024-11-26T14:32:01Z", "level=info", "msg=\"ok\"", "user_id=1842", "Lorem", "ipsum",
    "dolor", "sit", "amet,", "consectetur", "adipiscing", "elit.", "SELECT", "*", "FROM",
    "orders", "WHERE", "id", "=", "$1", "dGhpcyBpcyBub3QgYSBzZWNyZXQgYXQgYWxs", "\t", "\n"};
#define NWORDS (sizeof words / sizeof words[0])

static const char *const secrets[] = {
    "AKIAIOSFODNN7EXAMPLE", "ghp_0123456789abcdefghijABCDEFGHIJ012345", "alice.smith@example.com",
    "123-45-6789", "4111 1111 1111 1111", "-----BEGIN RSA PRIVATE KEY-----",
    "sk_live_0123456789abcdefghijklmn", "10.20.30.40", "postgres://app:pw@prod-db.internal:5432",
    "sk-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"};
#define NSECRETS (sizeof secrets / sizeof secrets[0])

/* Decoded text of `len` bytes, with a secret about every `every` bytes (0: none). */
static void gen_text(aip_buf *t, size_t len, size_t every) {
  size_t next = every ? rnd() % every : 0;
  aip_buf_reset(t);
  while (t->len < len) {
    if (every && t->len >= next) {
      aip_buf_printf(t, " %s ", secrets[rnd() % NSECRETS]);
      next += every;
    }
    aip_buf_puts(t, words[rnd() % NWORDS]);
    aip_buf_puts(t, " ");
  }
}

/* A tools/call result with one text item of about `len` decoded bytes. */
static void gen_result(aip_buf *msg, size_t len, size_t every, int id) {
  aip_buf t;
  aip_buf_init(&t);
  gen_text(&t, len, every);
  aip_buf_reset(msg);
  aip_buf_printf(msg, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"result\":{\"content\":[{\"type\":\"text\","
                      "\"text\":", id);
  aip_buf_json_string(msg, t.data, t.len, 0);
  aip_buf_puts(msg, "}],\"isError\":false}}");
  aip_buf_free(&t);
}

typedef struct corpus {
  aip_buf *msg;
  size_t n, bytes;
} corpus;

/* Messages of 1-64 KiB up to `total` bytes. */
static void gen_corpus(corpus *c, size_t total, size_t every) {
  c->n = 0, c->bytes = 0;
  c->msg = calloc(total / KIB + 1, sizeof *c->msg);
  while (c->bytes < total) {
    aip_buf_init(&c->msg[c->n]);
    gen_result(&c->msg[c->n], KIB + rnd() % (63 * KIB), every, (int)c->n);
    c->bytes += c->msg[c->n].len;
    c->n++;
  }
}

static void free_corpus(corpus *c) {
  for (size_t i = 0; i < c->n; i++) aip_buf_free(&c->msg[i]);
  free(c->msg);
}

/* ---- policies -------------------------------------------------------------------------------- */

static const char *const guide[][2] = {
    {"AWS Key", "(A3T[A-Z0-9]|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16}"},
    {"GitHub Token", "gh[pousr]_[a-zA-Z0-9]{36,255}"},
    {"OpenAI API Key", "sk-[a-zA-Z0-9]{48}"},
    {"Stripe Key", "sk_(test|live)_[a-zA-Z0-9]{24,99}"},
    {"Email Address", "[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}"},
    {"SSN", "\\b\\d{3}-\\d{2}-\\d{4}\\b"},
    {"Credit Card", "\\b(?:\\d{4}[- ]?){3}\\d{4}\\b"},
    {"Private Key", "-----BEGIN (RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----"},
    {"Internal IP", "\\b(10(\\.\\d{1,3}){3}|172\\.(1[6-9]|2[0-9]|3[01])(\\.\\d{1,3}){2}|"
                    "192\\.168(\\.\\d{1,3}){2})\\b"},
    {"Production Database URL", "postgres://.*@prod-db\\."}};

/* A policy doc built in memory (no YAML escaping games). */
static aip_policy_doc *make_doc(const char *const (*pats)[2], size_t n, const char *pack) {
  aip_policy_doc *doc = calloc(1, sizeof *doc);
  doc->path = strdup(pack ? "default-pack" : "bench");
  doc->dlp.present = doc->dlp.enabled = doc->dlp.scan_responses = 1;
  doc->dlp.rulepack = pack ? strdup(pack) : NULL;
  doc->dlp.on_request_match = strdup("block");
  doc->dlp.on_redaction_failure = strdup("block");
  doc->failover.on_regex_error = AIP_FAILOVER_ALLOW;
  doc->dlp.patterns = calloc(n ? n : 1, sizeof *doc->dlp.patterns);
  for (size_t i = 0; i < n; i++) {
    doc->dlp.patterns[i].name = strdup(pats[i][0]);
    doc->dlp.patterns[i].regex = strdup(pats[i][1]);
    doc->dlp.patterns[i].scope = strdup("all");
  }
  doc->dlp.patterns_n = n;
  return doc;
}

static aip_dlp *compile(aip_policy_doc *doc, const aip_dlp_opts *o, double *secs) {
  aip_dlp *d = NULL;
  aip_error err = {{0}};
  double t0 = now();
  if (aip_dlp_compile(doc, o, &d, &err)) {
    fprintf(stderr, "dlp-bench: %s\n", err.msg);
    exit(1);
  }
  if (secs) *secs = now() - t0;
  return d;
}

/* ---- measurements ---------------------------------------------------------------------------- */

static int count_cb(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                    void *ctx) {
  (*(size_t *)ctx)++;
  return 0;
}

typedef struct result {
  double dlp_mbs, hs_mbs;
  uint64_t redactions;
} result;

/* The baseline: every rule of the response view in one database, as a plain Hyperscan user
 * would build it (the engine splits off the gated rules, dlp_gate.c). */
static hs_database_t *plain_db(const aip_dlp *d) {
  const dlp_view *v = &d->view[0];
  const char **ex = calloc(v->n, sizeof *ex);
  unsigned *fl = calloc(v->n, sizeof *fl), *ids = calloc(v->n, sizeof *ids);
  for (size_t k = 0; k < v->n; k++) {
    ex[k] = d->rules[v->idx[k]].hs_expr;
    fl[k] = d->rules[v->idx[k]].hs_flags;
    ids[k] = (unsigned)k;
  }
  hs_database_t *db = NULL;
  hs_compile_error_t *ce = NULL;
  if (hs_compile_multi(ex, fl, ids, (unsigned)v->n, HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS) {
    fprintf(stderr, "baseline database: %s\n", ce ? ce->message : "?");
    exit(1);
  }
  free(ex);
  free(fl);
  free(ids);
  return db;
}

static result throughput(const aip_dlp *d, aip_dlp_scratch *s, const corpus *c, int runs) {
  result r = {0, 0, 0};
  aip_buf out;
  aip_buf_init(&out);
  aip_dlp_counts cnt;
  aip_dlp_counts_init(&cnt, d);
  hs_database_t *plain = plain_db(d);
  hs_scratch_t *hs = NULL;
  hs_alloc_scratch(plain, &hs);
  for (int k = 0; k < runs; k++) {
    aip_dlp_counts_reset(&cnt);
    double t0 = now();
    for (size_t i = 0; i < c->n; i++) {
      aip_buf_reset(&out);
      if (aip_dlp_redact_json(d, s, AIP_DLP_RESPONSE, c->msg[i].data, c->msg[i].len, &out,
                              &cnt) < 0)
        exit(1);
    }
    double mbs = (double)c->bytes / (now() - t0) / 1e6;
    if (mbs > r.dlp_mbs) r.dlp_mbs = mbs;
    size_t cb = 0;
    t0 = now();
    for (size_t i = 0; i < c->n; i++)
      hs_scan(plain, c->msg[i].data, (unsigned)c->msg[i].len, 0, hs, count_cb, &cb);
    mbs = (double)c->bytes / (now() - t0) / 1e6;
    if (mbs > r.hs_mbs) r.hs_mbs = mbs;
  }
  r.redactions = cnt.total;
  if (getenv("DLP_BENCH_RULES")) {
    size_t it = 0;
    const char *rule;
    uint32_t k;
    while (aip_dlp_counts_next(d, &cnt, &it, &rule, &k)) fprintf(stderr, "  %s=%u\n", rule, k);
  }
  hs_free_scratch(hs);
  hs_free_database(plain);
  aip_dlp_counts_free(&cnt);
  aip_buf_free(&out);
  return r;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median seconds of redacting one message `iters` times. */
static double latency(const aip_dlp *d, aip_dlp_scratch *s, const aip_buf *msg, int iters,
                      uint64_t *redactions) {
  double *t = calloc((size_t)iters, sizeof *t);
  aip_buf out;
  aip_buf_init(&out);
  aip_dlp_counts cnt;
  aip_dlp_counts_init(&cnt, d);
  for (int i = 0; i < iters; i++) {
    aip_buf_reset(&out);
    aip_dlp_counts_reset(&cnt);
    double t0 = now();
    aip_dlp_redact_json(d, s, AIP_DLP_RESPONSE, msg->data, msg->len, &out, &cnt);
    t[i] = now() - t0;
  }
  *redactions = cnt.total;
  qsort(t, (size_t)iters, sizeof *t, cmp_double);
  double m = t[iters / 2];
  free(t);
  aip_dlp_counts_free(&cnt);
  aip_buf_free(&out);
  return m;
}

static void print_throughput(const char *name, const aip_dlp *d, aip_dlp_scratch *s,
                             size_t total, int runs) {
  corpus clean, dirty;
  seed = 42;
  gen_corpus(&clean, total, 0);
  gen_corpus(&dirty, total, 10 * KIB);
  result a = throughput(d, s, &clean, runs), b = throughput(d, s, &dirty, runs);
  printf("%-22s %4zu rules  clean: %7.0f MB/s  (hs_scan %7.0f, ratio %.2f)  redactions %llu\n",
         name, aip_dlp_rule_count(d), a.dlp_mbs, a.hs_mbs, a.dlp_mbs / a.hs_mbs,
         (unsigned long long)a.redactions);
  printf("%-22s             1/10KiB: %5.0f MB/s  (hs_scan %7.0f, ratio %.2f)  redactions %llu\n",
         "", b.dlp_mbs, b.hs_mbs, b.dlp_mbs / b.hs_mbs, (unsigned long long)b.redactions);
  free_corpus(&clean);
  free_corpus(&dirty);
}

static void print_latency(const char *name, const aip_dlp *d, aip_dlp_scratch *s) {
  aip_buf m;
  aip_buf_init(&m);
  uint64_t n;
  seed = 7;
  gen_result(&m, 900, 300, 1); /* ~1 KiB message, ~3 secrets */
  double small = latency(d, s, &m, 20000, &n);
  printf("%-20s 1 KiB tool result (%zu B, %llu redactions): %6.2f us   (AIP reference: 93 us, "
         "target < 5 us)\n", name, m.len, (unsigned long long)n, small * 1e6);
  gen_result(&m, MIB, 10 * KIB, 2);
  double big = latency(d, s, &m, 30, &n);
  printf("%-20s 1 MiB tool result (%zu B, %llu redactions): %6.2f ms   (AIP reference: 72 ms, "
         "target < 3 ms)\n", name, m.len, (unsigned long long)n, big * 1e3);
  aip_buf_free(&m);
}

/* A 100 MiB result (many text items and one 8 MiB string) fed in 64 KiB reads. */
static void print_stream(const aip_dlp *d, aip_dlp_scratch *s, size_t total) {
  aip_buf chunk, out, t;
  aip_buf_init(&chunk);
  aip_buf_init(&out);
  aip_buf_init(&t);
  aip_dlp_stream *st = aip_dlp_stream_new(d, AIP_DLP_RESPONSE, AIP_DLP_STREAM_JSON);
  aip_dlp_counts cnt;
  aip_dlp_counts_init(&cnt, d);
  size_t fed = 0, outn = 0, items = 0;
  double busy = 0;
  seed = 9;
  const char *head = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[";
  double t0 = now();
  aip_dlp_stream_feed(st, s, head, strlen(head), &out, &cnt);
  while (fed < total) {
    gen_text(&t, items % 8 == 0 ? 8 * MIB : 64 * KIB, 10 * KIB);
    aip_buf_reset(&chunk);
    aip_buf_printf(&chunk, "%s{\"type\":\"text\",\"text\":", items++ ? "," : "");
    aip_buf_json_string(&chunk, t.data, t.len, 0);
    aip_buf_puts(&chunk, "}");
    for (size_t i = 0; i < chunk.len; i += 64 * KIB) {
      size_t k = chunk.len - i < 64 * KIB ? chunk.len - i : 64 * KIB;
      double b0 = now();
      if (aip_dlp_stream_feed(st, s, chunk.data + i, k, &out, &cnt)) exit(1);
      busy += now() - b0;
      outn += out.len;
      aip_buf_reset(&out);
    }
    fed += chunk.len;
  }
  aip_dlp_stream_feed(st, s, "]}}", 3, &out, &cnt);
  aip_dlp_stream_end(st, s, &out, &cnt);
  double wall = now() - t0;
  size_t peak;
  aip_dlp_stream_mem(st, &peak);
  printf("streamed %.0f MiB in 64 KiB reads: %.0f MB/s (DLP time only; %.1f s with generation), "
         "%llu redactions, stream peak %.0f KiB (target < 512 KiB)\n",
         (double)fed / MIB, (double)fed / busy / 1e6, wall, (unsigned long long)cnt.total,
         (double)peak / KIB);
  aip_dlp_stream_free(st);
  aip_dlp_counts_free(&cnt);
  aip_buf_free(&chunk);
  aip_buf_free(&out);
  aip_buf_free(&t);
}

/* ---- compile and cache ----------------------------------------------------------------------- */

/* The first `max` [[rules]] regexes of gitleaks.toml (id and ''' literal). */
static size_t gitleaks_rules(const char *path, char *(*pats)[2], size_t max) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char line[8192], id[256] = "";
  size_t n = 0;
  while (n < max && fgets(line, sizeof line, f)) {
    if (strncmp(line, "id = \"", 6) == 0) sscanf(line + 6, "%255[^\"]", id);
    if (strncmp(line, "regex = '''", 11) != 0 || !id[0]) continue;
    char *end = strstr(line + 11, "'''");
    if (!end) continue;
    *end = '\0';
    pats[n][0] = strdup(id);
    pats[n][1] = strdup(line + 11);
    n++, id[0] = '\0';
  }
  fclose(f);
  return n;
}

static void print_compile(const char *shared) {
  char path[1024], dir[] = "/tmp/aip-dlp-bench-XXXXXX";
  snprintf(path, sizeof path, "%s/data/gitleaks/gitleaks.toml", shared);
  char *pats[200][2];
  size_t n = gitleaks_rules(path, pats, 200);
  if (n == 0) {
    printf("compile: %s not found, skipped\n", path);
    return;
  }
  aip_policy_doc *doc = make_doc((const char *const(*)[2])pats, n, NULL);
  if (!mkdtemp(dir)) return;
  aip_dlp_cache_io io;
  aip_dlp_cache_dir(&io, dir);
  aip_dlp_opts o = {.cache = &io};
  double cold, warm;
  aip_dlp *d = compile(doc, &o, &cold);
  size_t kept = 0;
  for (int v = 0; v < 2; v++) kept += d->view[v].n;
  aip_dlp_free(d);
  d = compile(doc, &o, &warm);
  printf("compile %zu gitleaks rules (%zu kept, block + stream databases): cold %.2f s, "
         "from cache %.1f ms (%s)\n", n, kept, cold, warm * 1e3,
         aip_dlp_from_cache(d) ? "hit" : "MISS");
  aip_dlp_free(d);
  aip_policy_doc_free(doc);
  for (size_t i = 0; i < n; i++) free(pats[i][0]), free(pats[i][1]);
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) return;
}

int main(int argc, char **argv) {
  int quick = 0;
  const char *shared = getenv("AIP_SHARED_DIR");
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) quick = 1;
    else if (strcmp(argv[i], "--shared") == 0 && i + 1 < argc) shared = argv[++i];
  }
  if (!shared) shared = AIP_SOURCE_DIR "/../shared";
  if (getenv("DLP_BENCH_ONLY_LATENCY")) { /* for profiling */
    aip_policy_doc *gd = make_doc(guide, 10, NULL);
    aip_dlp *gg = compile(gd, NULL, NULL);
    aip_dlp_scratch *ss = aip_dlp_scratch_new();
    aip_dlp_scratch_prepare(ss, gg);
    for (int i = 0; i < 2; i++) print_latency("ten guide patterns", gg, ss);
    fprintf(stderr, "hs bytes: texts %llu windows %llu solo %llu full %llu rescans %llu\n",
            (unsigned long long)ss->hs_bytes[0], (unsigned long long)ss->hs_bytes[1],
            (unsigned long long)ss->hs_bytes[2], (unsigned long long)ss->hs_bytes[3],
            (unsigned long long)ss->rescans);
    return 0;
  }
  size_t total = quick ? 8 * MIB : 64 * MIB;
  int runs = quick ? 2 : 5;
  aip_dlp_scratch *s = aip_dlp_scratch_new();
  aip_policy_doc *gdoc = make_doc(guide, 10, NULL), *pdoc = make_doc(NULL, 0, "default");
  double gsecs, psecs;
  aip_dlp *g = compile(gdoc, NULL, &gsecs), *p = compile(pdoc, NULL, &psecs);
  aip_dlp_scratch_prepare(s, g);
  aip_dlp_scratch_prepare(s, p);
  printf("hyperscan %s, %s corpus of JSON tool results (1-64 KiB each)\n", hs_version(),
         quick ? "8 MiB" : "64 MiB");
  if (getenv("DLP_BENCH_PROFILE")) { /* for perf: the ten patterns on the corpus with secrets */
    corpus dirty;
    gen_corpus(&dirty, total, 10 * KIB);
    for (int k = 0; k < 4; k++) throughput(g, s, &dirty, runs);
    return 0;
  }
  printf("\n== throughput (aip_dlp_redact_json vs hs_scan of the same bytes, same database)\n");
  print_throughput("ten guide patterns", g, s, total, runs);
  print_throughput("default rule pack", p, s, total, runs);
  printf("targets: >= 600 MB/s (ten patterns), >= 150 MB/s (default pack)\n");
  printf("\n== latency (median; the AIP reference figures are for its 4 patterns)\n");
  print_latency("ten guide patterns", g, s);
  print_latency("default rule pack", p, s);
  printf("\n== streaming, ten guide patterns\n");
  print_stream(g, s, quick ? 16 * MIB : 100 * MIB);
  printf("\n== compile\n");
  printf("ten guide patterns %.1f ms, default pack %.1f ms (no cache)\n", gsecs * 1e3,
         psecs * 1e3);
  print_compile(shared);
  printf("\nrescans after a replacement: %llu; bytes given to Hyperscan: %.0f MB whole texts, "
         "%.1f MB windows, %.1f MB single rules\n", (unsigned long long)s->rescans,
         (double)s->hs_bytes[0] / 1e6, (double)s->hs_bytes[1] / 1e6, (double)s->hs_bytes[2] / 1e6);
  aip_dlp_free(g);
  aip_dlp_free(p);
  aip_policy_doc_free(gdoc);
  aip_policy_doc_free(pdoc);
  aip_dlp_scratch_free(s);
  return 0;
}
