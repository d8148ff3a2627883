/* cmd_dlp.c -- `aip dlp scan`: run a policy's DLP rules over a file, the way the gateway would.
 *
 * The redacted text goes to stdout (pipe it on) and the per-rule counts to stderr (never the
 * matched text). Input up to the policy's dlp.stream_threshold is redacted in one piece, with
 * AIP's exact semantics; a larger input streams through in bounded memory, as the gateway does
 * with large results.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "engine/dlp.h"
#include "gateway/core/dlp_cache.h"

#define READ_CHUNK (64 * 1024)

static const char usage[] =
    "usage: aip dlp scan --policy agent.yaml [--json] [--scope response|request]\n"
    "                    [--cache DIR] [FILE]\n"
    "  Redacts FILE (or stdin) with the policy's DLP rules: the result on stdout, the\n"
    "  number of redactions per rule on stderr.\n"
    "  --json       the input is a JSON document: every string and number in it is scanned\n"
    "  --scope      which of the policy's patterns apply (patterns[].scope), default response\n"
    "  --cache DIR  keep compiled rule databases in DIR (a later run starts faster)\n";

typedef struct scan_opts {
  const char *policy, *file, *cache;
  int json, scope;
} scan_opts;

static int parse_args(int argc, char **argv, scan_opts *o) {
  memset(o, 0, sizeof *o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_val = i + 1 < argc;
    if (strcmp(a, "--json") == 0) o->json = 1;
    else if (strcmp(a, "--policy") == 0 && has_val) o->policy = argv[++i];
    else if (strcmp(a, "--cache") == 0 && has_val) o->cache = argv[++i];
    else if (strcmp(a, "--scope") == 0 && has_val) {
      const char *s = argv[++i];
      if (strcmp(s, "request") == 0) o->scope = AIP_DLP_REQUEST;
      else if (strcmp(s, "response") != 0) return -EINVAL;
    } else if (a[0] == '-' && a[1]) return -EINVAL;
    else if (!o->file) o->file = a;
    else return -EINVAL;
  }
  return o->policy ? 0 : -EINVAL;
}

static void print_counts(const aip_dlp *d, const aip_dlp_counts *c) {
  fprintf(stderr, "redactions: %llu\n", (unsigned long long)c->total);
  size_t it = 0;
  const char *rule;
  uint32_t n;
  while (aip_dlp_counts_next(d, c, &it, &rule, &n)) fprintf(stderr, "  %s: %u\n", rule, n);
  if (c->flags & AIP_DLP_F_PARTIAL)
    fprintf(stderr, "warning: max_scan_size left part of the input unscanned\n");
  if (c->flags & AIP_DLP_F_FALLBACK)
    fprintf(stderr, "warning: a rule hit its match limit; a whole string was redacted\n");
}

/* Reads up to `max` bytes; *eof when the input ended first. */
static int read_upto(FILE *in, aip_buf *b, size_t max, int *eof) {
  *eof = 0;
  while (b->len < max) {
    int err = aip_buf_reserve(b, READ_CHUNK);
    if (err) return err;
    size_t want = max - b->len < READ_CHUNK ? max - b->len : READ_CHUNK;
    size_t got = fread(b->data + b->len, 1, want, in);
    b->len += got;
    b->data[b->len] = '\0';
    if (got < want) {
      *eof = 1;
      return ferror(in) ? -EIO : 0;
    }
  }
  return 0;
}

static int scan_stream(const aip_dlp *d, aip_dlp_scratch *s, const scan_opts *o, FILE *in,
                       aip_buf *first, aip_dlp_counts *c) {
  aip_dlp_stream *st = aip_dlp_stream_new(d, o->scope | (o->json ? AIP_DLP_WHOLE : 0),
                                          o->json ? AIP_DLP_STREAM_JSON : AIP_DLP_STREAM_TEXT);
  if (!st) return -ENOMEM;
  aip_buf out;
  aip_buf_init(&out);
  int rc = aip_dlp_stream_feed(st, s, first->data, first->len, &out, c), eof = 0;
  while (!rc && !eof) {
    fwrite(out.data, 1, out.len, stdout);
    aip_buf_reset(&out);
    aip_buf_reset(first);
    rc = read_upto(in, first, READ_CHUNK, &eof);
    if (!rc) rc = aip_dlp_stream_feed(st, s, first->data, first->len, &out, c);
  }
  if (!rc) rc = aip_dlp_stream_end(st, s, &out, c);
  if (!rc) fwrite(out.data, 1, out.len, stdout);
  aip_buf_free(&out);
  aip_dlp_stream_free(st);
  return rc;
}

static int scan(const aip_dlp *d, const scan_opts *o, FILE *in, uint64_t threshold) {
  aip_dlp_scratch *s = aip_dlp_scratch_new();
  aip_dlp_counts c;
  aip_buf buf, out;
  aip_buf_init(&buf);
  aip_buf_init(&out);
  int eof = 0, rc = !s || aip_dlp_counts_init(&c, d) ? -ENOMEM : aip_dlp_scratch_prepare(s, d);
  if (!rc) rc = read_upto(in, &buf, threshold, &eof);
  if (!rc && !eof) {
    rc = scan_stream(d, s, o, in, &buf, &c);
  } else if (!rc) {
    int scope = o->scope | (o->json ? AIP_DLP_WHOLE : 0);
    rc = o->json ? aip_dlp_redact_json(d, s, scope, buf.data ? buf.data : "", buf.len, &out, &c)
                 : aip_dlp_redact_text(d, s, scope, buf.data ? buf.data : "", buf.len, &out, &c);
    if (rc >= 0) fwrite(rc ? out.data : buf.data, 1, rc ? out.len : buf.len, stdout);
    rc = rc < 0 ? rc : 0;
  }
  fflush(stdout);
  if (rc) fprintf(stderr, "aip: %s: %s\n", o->file ? o->file : "<stdin>",
                  rc == -EINVAL ? "invalid JSON" : rc == -EILSEQ ? "invalid UTF-8 in JSON"
                                                  : strerror(-rc));
  else print_counts(d, &c);
  aip_dlp_counts_free(&c);
  aip_dlp_scratch_free(s);
  aip_buf_free(&buf);
  aip_buf_free(&out);
  return rc ? 1 : 0;
}

int aip_cmd_dlp(int argc, char **argv) {
  scan_opts o;
  int help = argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
  if (argc < 1 || strcmp(argv[0], "scan") != 0 || help || parse_args(argc, argv, &o)) {
    fputs(usage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  aip_error err = {{0}};
  aip_policy_doc *doc = NULL;
  aip_dlp *d = NULL;
  aip_dlp_cache_io io;
  if (o.cache) aip_dlp_cache_dir(&io, o.cache);
  aip_dlp_opts opts = {.cache = o.cache ? &io : NULL};
  if (aip_policy_doc_load_file(o.policy, &doc, &err) || aip_dlp_compile(doc, &opts, &d, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    aip_policy_doc_free(doc);
    return 1;
  }
  for (size_t i = 0; aip_dlp_warning(d, i); i++)
    fprintf(stderr, "warning: %s\n", aip_dlp_warning(d, i));
  if (!d)
    fprintf(stderr, "warning: %s: DLP is not enabled; the input is copied unchanged\n", o.policy);
  FILE *in = o.file ? fopen(o.file, "rb") : stdin;
  int rc = 1;
  if (!in) fprintf(stderr, "aip: %s: %s\n", o.file, strerror(errno));
  else rc = scan(d, &o, in, doc->dlp.stream_threshold ? doc->dlp.stream_threshold : 1 << 20);
  if (in && in != stdin) fclose(in);
  aip_dlp_free(d);
  aip_policy_doc_free(doc);
  return rc;
}
