/* test_dlp_diff.c -- the optimized redactor against the plainest possible one.
 *
 * The engine skips rules Hyperscan did not see, starts PCRE2 near Hyperscan's match ends,
 * rescans only windows around new placeholders and keeps match ends current through
 * replacements (dlp_redact.c). Each of these is an argument about regexes; this test checks the
 * conclusion: on random texts built to provoke rule interplay (placeholders next to digits,
 * brackets, nested placeholders, escapes), the result must equal AIP's definition applied
 * naively: every rule in order, PCRE2 over the whole current text, replace all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dlp.h"
#include "engine/dlp_internal.h"
#include "test.h"

#define HEAD "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: t}\nspec:\n"

static unsigned seed = 99;
static unsigned rnd(void) {
  seed = seed * 1103515245u + 12345u;
  return seed >> 8;
}

/* AIP's Redact, literally. */
static void naive(const aip_dlp *d, aip_dlp_scratch *s, const char *in, aip_buf *out,
                  uint32_t *counts) {
  aip_buf cur, nxt;
  aip_buf_init(&cur);
  aip_buf_init(&nxt);
  aip_buf_append(&cur, in, strlen(in));
  for (size_t i = 0; i < d->n; i++) {
    const dlp_rule *r = &d->rules[i];
    size_t from = 0, pos = 0, next;
    dlp_span m;
    aip_buf_reset(&nxt);
    aip_buf_reserve(&nxt, 0);
    counts[i] = 0;
    while (from <= cur.len && dlp_rule_find(r, s, cur.data, cur.len, from, &m, &next) == 1) {
      aip_buf_append(&nxt, cur.data + pos, m.start - pos);
      aip_buf_puts(&nxt, r->placeholder);
      pos = m.end, from = next, counts[i]++;
      if (from >= cur.len) break;
    }
    aip_buf_append(&nxt, cur.data + pos, cur.len - pos);
    aip_buf t = cur;
    cur = nxt, nxt = t;
  }
  aip_buf_reset(out);
  aip_buf_append(out, cur.data, cur.len);
  aip_buf_free(&cur);
  aip_buf_free(&nxt);
}

static const char *const pieces[] = {
    "x", "123", "4567", "-", " ", "\n", "[", "]", ":", "a@b.io", "AKIA", "IOSFODNN7EXAMPLE",
    "123-45-6789", "4111 1111 1111 1111", "REDACTED", "[REDACTED:", "k1", "tail", "10.1.2.3",
    "postgres://u:p@prod-db.x", "caf\xc3\xa9", "\xe6\x97\xa5", "ghp_", "0123456789abcdefghij",
    "ABCDEFGHIJ012345", "zz", "q.q", "@", ".io", "--", "7"};

/* Digit runs of every length around the gate's (dlp_gate.c): across its 64-byte blocks, next
 * to letters, non-ASCII and placeholders. */
static const char *const digits[] = {
    "1", "12", "1234", "12345678", "123456789", "0000000000000000000000000000000", " ", "-",
    "x", "k", "\xc3\xa9", "\n", "[REDACTED:", "]", "4111-1111-1111-1111", "123-45-6789", "_"};

static const char *const *set = pieces;
static size_t nset = sizeof pieces / sizeof *pieces;

static void random_text(aip_buf *b, size_t parts) {
  aip_buf_reset(b);
  aip_buf_reserve(b, 0);
  for (size_t i = 0; i < parts; i++) aip_buf_puts(b, set[rnd() % nset]);
}

static void run(const char *yaml, int rounds, size_t parts) {
  aip_policy_doc *doc = NULL;
  aip_dlp *d = NULL;
  aip_error err = {{0}};
  if (aip_policy_doc_load_string(yaml, strlen(yaml), "t", &doc, &err) ||
      aip_dlp_compile(doc, NULL, &d, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    CHECK(0);
    return;
  }
  aip_dlp_scratch *s = aip_dlp_scratch_new();
  aip_dlp_scratch_prepare(s, d);
  aip_buf in, want, got;
  aip_buf_init(&in);
  aip_buf_init(&want);
  aip_buf_init(&got);
  uint32_t counts[64];
  aip_dlp_counts c;
  aip_dlp_counts_init(&c, d);
  int bad = 0;
  for (int k = 0; k < rounds && bad < 3; k++) {
    random_text(&in, 1 + rnd() % parts);
    naive(d, s, in.data, &want, counts);
    aip_buf_reset(&got);
    aip_dlp_counts_reset(&c);
    int rc = aip_dlp_redact_text(d, s, AIP_DLP_RESPONSE, in.data, in.len, &got, &c);
    const char *g = rc > 0 ? got.data : in.data;
    size_t gl = rc > 0 ? got.len : in.len;
    int same = gl == want.len && memcmp(g, want.data, gl) == 0;
    for (size_t i = 0; i < d->n; i++) same &= counts[i] == c.n[i];
    if (!same) {
      fprintf(stderr, "diff on: %s\n  naive: %s\n  ours:  %.*s\n", in.data, want.data, (int)gl, g);
      bad++;
    }
    CHECK(same);
  }
  aip_dlp_counts_free(&c);
  aip_buf_free(&in);
  aip_buf_free(&want);
  aip_buf_free(&got);
  aip_dlp_scratch_free(s);
  aip_dlp_free(d);
  aip_policy_doc_free(doc);
}

/* Which rules the engine gates: the digit-and-separator ones long enough, nothing with a
 * letter, an anchor or a non-ASCII class. */
static void gating(void) {
  aip_policy_doc *doc = NULL;
  aip_dlp *d = NULL;
  aip_error err = {{0}};
  const char *yaml = HEAD "  dlp:\n    patterns:\n"
                          "      - {name: Card, regex: '\\b(?:\\d{4}[- ]?){3}\\d{4}\\b'}\n"
                          "      - {name: Short, regex: '\\d{7}'}\n"
                          "      - {name: Letter, regex: 'k\\d{8}'}\n"
                          "      - {name: Anchor, regex: '^\\d{8}'}\n"
                          "      - {name: Dot, regex: '\\d{8}.'}\n"
                          "      - {name: Neg, regex: '[^a]\\d{8}'}\n"
                          "      - {name: Case, regex: '(?i)\\d{8}'}\n";
  if (aip_policy_doc_load_string(yaml, strlen(yaml), "t", &doc, &err) ||
      aip_dlp_compile(doc, NULL, &d, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    CHECK(0);
    return;
  }
  static const int want[] = {1, 0, 0, 0, 0, 0, 1};
  for (size_t i = 0; i < d->n; i++) CHECK(dlp_gated(&d->rules[i]) == want[i]);
  CHECK(d->view[0].gated != NULL && d->view[0].block != NULL);
  /* two gates: Card's bytes, and Case's */
  const struct dlp_gate *g = d->view[0].gate;
  CHECK(d->view[0].ngate == 2 && g[0].min == 16 && g[1].min == 8);
  CHECK(g[0].byte['7'] && g[0].byte[' '] && g[0].byte['-'] && !g[0].byte['k']);
  CHECK(g[0].nr == 3); /* [0-9], ' ', '-' */
  CHECK(g[1].byte['7'] && !g[1].byte[' '] && g[1].nr == 1);
  aip_dlp_free(d);
  aip_policy_doc_free(doc);
}

static void gated_rules(void);

int main(void) {
  gating();
  /* the operations guide's rules: \b rules after others, an unbounded rule with `.` */
  run(HEAD "  dlp:\n    patterns:\n"
           "      - {name: AWS, regex: '(AKIA|ASIA)[A-Z0-9]{16}'}\n"
           "      - {name: GH, regex: 'gh[pousr]_[a-zA-Z0-9]{36,255}'}\n"
           "      - {name: Email, regex: '[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}'}\n"
           "      - {name: SSN, regex: '\\b\\d{3}-\\d{2}-\\d{4}\\b'}\n"
           "      - {name: Card, regex: '\\b(?:\\d{4}[- ]?){3}\\d{4}\\b'}\n"
           "      - {name: IP, regex: '\\b(10\\.|192\\.168\\.)\\d{1,3}\\.\\d{1,3}\\b'}\n"
           "      - {name: DB, regex: 'postgres://.*@prod-db\\.'}\n",
      20000, 40);
  /* interplay: a rule that eats placeholders, one next to them, one across them */
  run(HEAD "  dlp:\n    patterns:\n"
           "      - {name: X, regex: 'x+'}\n"
           "      - {name: D, regex: '\\b\\d{3}\\b'}\n"
           "      - {name: R, regex: 'REDACTED'}\n"
           "      - {name: W, regex: '\\]tail'}\n"
           "      - {name: B, regex: '\\[[A-Z:]+'}\n"
           "      - {name: N, regex: '\\B7'}\n"
           "      - {name: Any, regex: 'zz.*q'}\n",
      20000, 30);
  /* the rule pack, on long texts */
  run(HEAD "  dlp: {rulepack: default}\n", 3000, 400);
  set = digits, nset = sizeof digits / sizeof *digits;
  static const char *const isas[] = {"avx512bw", "avx2", "sse2", "bytes"};
  for (size_t i = 0; i < sizeof isas / sizeof *isas; i++)
    if (dlp_gate_isa(isas[i]) == 0) gated_rules();
    else fprintf(stderr, "(this CPU has no %s: not tested)\n", isas[i]);
  dlp_gate_isa(NULL);
  TEST_MAIN_END();
}

/* The gated rules (digits and separators only): \b and \B at a run's edges, a rule wider than
 * the gate's 64-byte blocks, a rule whose run starts with a space, next to ungated ones. */
static void gated_rules(void) {
  run(HEAD "  dlp:\n    patterns:\n"
           "      - {name: K, regex: 'k\\d{8}'}\n"
           "      - {name: W8, regex: '\\b\\d{8}\\b'}\n"
           "      - {name: NB, regex: '\\B\\d{9}'}\n"
           "      - {name: Long, regex: '[0-9]{70}'}\n"
           "      - {name: Dash, regex: '-\\d{7}-'}\n"
           "      - {name: Sp, regex: '\\b \\d{8}'}\n"
           "      - {name: SSN, regex: '\\b\\d{3}-\\d{2}-\\d{4}\\b'}\n"
           "      - {name: Card, regex: '\\b(?:\\d{4}[- ]?){3}\\d{4}\\b'}\n",
      20000, 60);
  /* nine ranges of gate bytes: too many for the vector search, so it goes byte by byte */
  run(HEAD "  dlp:\n    patterns:\n"
           "      - {name: Many, regex: '[0-9!#%&*,/;=@]{10}'}\n"
           "      - {name: W8, regex: '\\b\\d{8}\\b'}\n"
           "      - {name: Long, regex: '[0-9]{70}'}\n",
      10000, 60);
  run(HEAD "  dlp:\n    patterns:\n" /* gated rules only: the view has no other database */
           "      - {name: Card, regex: '\\b(?:\\d{4}[- ]?){3}\\d{4}\\b'}\n"
           "      - {name: Sp, regex: '\\b \\d{8}'}\n",
      5000, 200);
}

