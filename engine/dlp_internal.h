/* dlp_internal.h -- what the dlp*.c files share; not part of the engine's API (see dlp.h). */
#ifndef AIP_DLP_INTERNAL_H
#define AIP_DLP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include "engine/dlp.h"

#define DLP_UNBOUNDED UINT32_MAX
#define DLP_WIDE 256 /* a "react" rule wider than this is rescanned on its own (dlp_redact.c) */
#define DLP_NUMBER_MAX 1024 /* longest JSON number token we accept (json.c accepts 63) */
#define DLP_KEY_PATH_MAX 64 /* keys longer than this never name a message member */
#define DLP_GATE_MIN 8 /* shortest match of a rule the gate may take (dlp_gate.c) */
#define DLP_GATES 4     /* distinct byte sets searched for; more are merged into the last */

/* ---- compiled rules (dlp_compile.c) -------------------------------------------------------- */

enum { DLP_SCOPE_RESPONSE = 1, DLP_SCOPE_REQUEST = 2 };

typedef int (*dlp_validator)(const char *s, size_t n);

/* A set of bytes (dlp_regex.c); all of 0x80..0xFF stands for any non-ASCII character. */
typedef struct dlp_charset {
  uint64_t w[4];
} dlp_charset;


typedef struct dlp_rule {
  char *name;
  char *placeholder; /* "[REDACTED:<name>]" */
  size_t ph_len;
  char *enc_placeholder; /* "[REDACTED:<name>:encoded]" */
  size_t enc_len;
  char *enc_name; /* "<name> (encoded)", the AIP event name */
  const char *expr; /* as written (Hyperscan gets this; its messages refer to it) */
  char *hs_expr;          /* what Hyperscan compiles: pcre_expr, or a pack rule's prefilter */
  uint32_t width_override; /* pack rules with a prefilter: the width of expr's matches */
  char *pcre_expr;  /* RE2 -> PCRE2 translation (dlp_regex.c) */
  unsigned hs_flags;
  pcre2_code *re;
  uint32_t min_width, max_width; /* max_width DLP_UNBOUNDED when unbounded */
  unsigned scopes;               /* DLP_SCOPE_* */
  int group;                     /* capture group to redact; 0 = the whole match (AIP) */
  dlp_validator validate;        /* NULL, or a check of the matched text (Luhn, ...) */
  int bracket;                   /* may consume '[' or ']' (dlp_regex.c) */
  dlp_charset chars;             /* bytes it may consume: a match lies in a run of them */
  int all_chars;                 /* ... which is every byte (no use for skipping) */
  int wordb;                     /* uses \b or \B */
  int gate_ok; /* chars are ASCII without letters and no anchor is used: see dlp_gated() */
  int dropped; /* refused and failover.on_regex_error is allow: 1 by PCRE2, 2 by Hyperscan */
} dlp_rule;

/* The rules of one scope, in policy order; Hyperscan ids are positions in `idx`. */
typedef struct dlp_view {
  uint32_t *idx;
  size_t n;
  hs_database_t *block;
  hs_database_t *stream;
  uint8_t *react; /* [n]: may match anew next to a placeholder (dlp_redact.c, "rescan"); 2 when
                   * it is also wider than DLP_WIDE (or unbounded) */
  uint32_t min_width; /* shortest text any rule can match */
  uint32_t hold;      /* stream hold-back in decoded bytes */
  hs_database_t **solo; /* [n]: a wide "react" rule alone, for its own rescans */
  uint32_t react_w;     /* widest narrow "react" rule: radius of a shared windowed rescan */
  long last_solo;       /* position of the last wide "react" rule, -1 when none */
  /* The gated rules (dlp_gate.c) have a database of their own, in byte mode; `block` and
   * `stream` hold the others, and `stream` all of them. Either of block and gated may be NULL. */
  hs_database_t *gated;
  struct dlp_gate {
    uint8_t byte[256];    /* bytes its rules may consume */
    uint8_t lo[8], hi[8]; /* ... as ranges, when 8 or fewer (vector search) */
    int nr;               /* number of ranges; 0: too many, bytewise search */
    uint32_t min;         /* shortest match of its rules */
  } gate[DLP_GATES];      /* the gated rules grouped by the bytes they consume */
  int ngate;
} dlp_view;

/* A rule that only ever consumes a narrow set of ASCII non-letters (digits and separators: card
 * numbers, SSNs) and is long enough: Hyperscan runs it with no literal to look for, at a
 * fraction of the speed of the other rules, so it is scanned only inside the rare runs of its
 * bytes that are long enough to hold a match. */
static inline int dlp_gated(const dlp_rule *r) {
  return r->gate_ok && !r->dropped && r->min_width >= DLP_GATE_MIN;
}
/* The view has rules and their databases (a view of gated rules only has no `block`). */
static inline int dlp_view_ready(const dlp_view *v) { return v->n && (v->block || v->gated); }

struct aip_dlp {
  dlp_rule *rules;
  size_t n;
  dlp_view view[2]; /* [AIP_DLP_RESPONSE], [AIP_DLP_REQUEST] */
  int detect_encoding;
  int scan_requests, scan_responses;
  uint64_t max_scan_size; /* 0: scan everything */
  pcre2_code *enc_re[4];  /* detect_encoding candidates: hex 0x, hex long, base64, base64url */
  char **warnings;
  size_t nwarn;
  size_t hs_warn_from; /* warnings from here on come from the Hyperscan stage (cached) */
  int from_cache;
  size_t words; /* uint64 words in a fired-rule bitmap */
};

/* ---- scratch ------------------------------------------------------------------------------ */

typedef struct dlp_piece {
  uint32_t len;
  int32_t orig; /* >= 0: offset in the original text; -1: inserted (bytes are in the text) */
} dlp_piece;

/* A working text: flat bytes plus how they derive from the original. */
typedef struct dlp_text {
  const char *p;
  size_t len;
  dlp_piece *pc;
  size_t npc;
} dlp_text;

typedef struct dlp_span {
  size_t start, end;
} dlp_span;

/* A placeholder the redaction inserted; `fresh` until the shared windowed rescan covered it. */
typedef struct dlp_ph {
  size_t start, end;
  int fresh;
} dlp_ph;

/* Where a rule's matches ended in the text (from Hyperscan), kept current through replacements;
 * PCRE2 then starts looking only `max_width` before the next one. */
#define DLP_ENDS_MAX 4096 /* per rule and scan; beyond it the rule is searched in full */
typedef struct dlp_ends {
  uint32_t *v;
  uint32_t n, cap;
  int over;
} dlp_ends;

/* Buffers for one nesting level of redaction (0: the message, 1: JSON inside a string). */
typedef struct dlp_ws {
  aip_buf buf[2];
  dlp_piece *pc[2];
  size_t pccap[2];
  dlp_piece one; /* the single piece of an untouched original */
  aip_buf dec;   /* decoded string */
  aip_buf tmp;   /* detect_encoding decode */
} dlp_ws;

struct aip_dlp_scratch {
  hs_scratch_t *hs;
  pcre2_match_data *md;
  pcre2_match_context *mctx;
  pcre2_jit_stack *jit;
  uint64_t *fired;
  size_t fired_words;
  dlp_ends *ends; /* [ends_n], one per rule position of the view being scanned */
  size_t ends_n;
  struct dlp_ph *ph; /* placeholders inserted since the whole-text scan, current offsets */
  size_t nph, phcap, nfresh;
  int (*expired)(void *ctx);
  void *ectx;
  dlp_span *spans;
  size_t nspans, spancap;
  dlp_ws ws[2];
  aip_buf inner; /* output of the JSON-inside-a-string pass */
  dlp_piece *ipc;
  size_t nipc, ipccap;
  uint32_t *offs; /* offset-map work area */
  size_t offcap;
  aip_buf gate;          /* the runs a gated scan reads (dlp_gate.c) */
  struct dlp_seg *seg;   /* where each run came from */
  size_t nseg, segcap;
  dlp_span *runs;        /* the runs found, with their neighbours */
  size_t nruns, runcap;
  uint64_t rescans;     /* statistics for the benchmark: */
  uint64_t hs_bytes[4]; /* scanned: whole texts, shared windows, solo rules, full rescans */
};

/* ---- dlp_compile.c ---- */
int dlp_view_collect(aip_dlp *d, dlp_view *v, unsigned scope); /* rules of a scope, not dropped */
int dlp_view_react(aip_dlp *d, dlp_view *v);                   /* needs v->block */
int dlp_view_solo(aip_dlp *d, dlp_view *v);                    /* needs v->react */
int dlp_counts_add(aip_dlp_counts *c, size_t idx, uint32_t k);
int dlp_expired(aip_dlp_scratch *s);

/* ---- dlp_regex.c: RE2 syntax helpers ---- */

/* PCRE2 translation of an RE2 pattern: `\s` becomes Go's [\t\n\f\r ] (PCRE2's includes \v). */
char *dlp_regex_to_pcre(const char *re);
/* Conservative analysis: the bytes the pattern may consume (all of 0x80..0xFF stands for any
 * non-ASCII character), whether that includes '[' or ']', whether it uses \b or \B, whether
 * it uses an anchor (^ $ \A \z \Z). */
void dlp_regex_analyze(const char *re, dlp_charset *cs, int *bracket, int *wordb, int *anchors);

/* ---- dlp_gate.c ---- */

/* A piece of text in the buffer a gated scan reads: buffer offset `at` is text offset `text`. */
typedef struct dlp_seg {
  size_t at, text;
} dlp_seg;
/* The runs of each gate's bytes at least its min long in p[0..len), each with the byte before
 * and after it (so \b sees its real neighbours), overlaps merged, one after the other: *out
 * and its length, with s->seg/nseg to map offsets back; 0 when there is none. A single run is
 * not copied. (size_t)-1: no memory. */
size_t dlp_gate_runs(const dlp_view *v, aip_dlp_scratch *s, const char *p, size_t len,
                     const char **out);
/* Fills v->gate_* from the view's gated rules. */
void dlp_gate_view(const aip_dlp *d, dlp_view *v);
/* Tests: search with "avx512bw", "avx2", "sse2" or "bytes" (NULL: the best the CPU has);
 * -1 when this CPU or build cannot. Not thread-safe: call before any search. */
int dlp_gate_isa(const char *isa);

/* ---- dlp_rulepack.c ---- */
typedef struct dlp_pack_rule {
  const char *name;
  const char *regex; /* what PCRE2 matches: the span redacted */
  int group;
  dlp_validator validate;
  /* Optional: a simpler expression for Hyperscan when the full one is too large for it. Every
   * match of `regex` must contain a match of it; `max_width` then bounds `regex`'s matches. */
  const char *prefilter;
  uint32_t max_width;
  /* Hyperscan in byte mode (UTF-8 mode makes its negated class too large). Sound because the
   * class is ASCII and nothing follows the repeat: the first bytes of any PCRE2 match of N
   * characters are a byte-mode match. */
  int bytes;
} dlp_pack_rule;
const dlp_pack_rule *dlp_rulepack(const char *name, size_t *n);

/* ---- dlp_cache.c ---- */
int dlp_cache_load(aip_dlp *d, const aip_dlp_cache_io *io, int with_stream);
void dlp_cache_store(const aip_dlp *d, const aip_dlp_cache_io *io, int with_stream);
const hs_platform_info_t *dlp_platform(void);

/* ---- dlp_jtok.c: the incremental strict JSON tokenizer ---- */

typedef enum dlp_jev_type {
  JEV_OPEN = 1, /* `{` or `[` at off; is_obj */
  JEV_CLOSE,    /* `}` or `]` at off */
  JEV_STR_BEGIN, /* content starts at off (just past the quote); is_key */
  JEV_STR_CHUNK, /* content [off, off+len); last: the closing quote is at off+len */
  JEV_NUM_BEGIN, /* number starts at off */
  JEV_NUM_CHUNK  /* [off, off+len); last: the number ended at off+len */
} dlp_jev_type;

typedef struct dlp_jev {
  dlp_jev_type type;
  size_t off, len;
  int is_key, is_obj, last;
} dlp_jev;

typedef struct dlp_jtok {
  int state, sub;
  unsigned need, lo, hi; /* UTF-8 continuation bytes expected and the range of the next one */
  int depth;
  uint64_t objmask; /* bit d: container at depth d+1 is an object */
  int in_str, in_num, done;
  uint32_t numlen;
} dlp_jtok;

void dlp_jtok_init(dlp_jtok *t);
/* Next event from chunk p[0..n) starting at *pos: 1 with *ev, 0 when the chunk is used up,
 * -EINVAL (syntax), -EILSEQ (UTF-8), -E2BIG (depth). */
int dlp_jtok_next(dlp_jtok *t, const char *p, size_t n, size_t *pos, dlp_jev *ev);
/* End of input: 1 with a final NUM_CHUNK event (a top-level number), 0 when complete, -EINVAL
 * when the text is incomplete. */
int dlp_jtok_finish(dlp_jtok *t, dlp_jev *ev);

/* Decodes the raw content of a JSON string (already validated) into `out`; lone surrogates
 * become U+FFFD. With `partial`, stops before an escape or UTF-8 sequence that is cut off at
 * the end (or a high surrogate whose pair may follow) and returns the raw bytes used. */
size_t dlp_json_decode(const char *raw, size_t n, aip_buf *out, int partial, int *err);
/* Raw offsets of sorted decoded offsets: for each offs[i] (a character start in the decoded
 * text, or its length) the raw offset of the escape or byte that produced it; in place. */
void dlp_json_raw_offsets(const char *raw, size_t n, uint32_t *offs, size_t k);
/* Appends bytes as JSON string content (no quotes), escaping what JSON requires. */
int dlp_json_escape(aip_buf *b, const char *p, size_t n);

/* ---- dlp_redact.c ---- */

/* Redacts one decoded string (valid UTF-8) with the rules of view `v`. On entry `t` describes
 * the text (pieces relative to the original); on return it describes the result. Returns 1
 * when changed, 0, or < 0. */
int dlp_redact_text(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, dlp_ws *ws,
                    dlp_text *t, aip_dlp_counts *c);
/* Starts `t` as the untouched original p[0..len). */
void dlp_text_init(dlp_ws *ws, dlp_text *t, const char *p, size_t len);
/* Fired-rule scan: fills s->fired; returns the number of rules that fired, or < 0. */
int dlp_hs_scan(const dlp_view *v, aip_dlp_scratch *s, const char *p, size_t len);
/* detect_encoding step (dlp_encoding.c), AIP's findEncodedSegments + replace-first. */
int dlp_encoding_pass(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, dlp_ws *ws,
                      dlp_text *t, aip_dlp_counts *c);
/* Replaces spans s->spans[0..nspans) of t by `lit` (sorted, disjoint). */
int dlp_text_replace(dlp_ws *ws, dlp_text *t, const dlp_span *sp, size_t nsp, const char *lit,
                     size_t litlen);
/* First match of rule r in p[from..len) (validator applied): 1 with *m, 0, or < 0 (limit). */
int dlp_rule_find(const dlp_rule *r, aip_dlp_scratch *s, const char *p, size_t len, size_t from,
                  dlp_span *m, size_t *next);

/* ---- dlp_json.c ---- */

/* Appends the string token raw[0..rawlen) (content only, no quotes) whose decoded text was
 * redacted into `t`: original runs are copied as raw bytes (escapes included), inserted bytes
 * are JSON-escaped. `escaped`: the raw content holds escapes (else decoded == raw). */
int dlp_splice_string(aip_dlp_scratch *s, const char *raw, size_t rawlen, int escaped,
                      const dlp_text *t, aip_buf *out);
/* Decodes and redacts one string or number token raw[0..n) into *t (JSON inside a string is
 * handled at level 0). Returns 1 when changed, 0, or < 0; *escaped as above. */
int dlp_scan_token(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, int level,
                   const char *raw, size_t n, int is_num, dlp_text *t, int *escaped,
                   aip_dlp_counts *c);

/* Which parts of a message are scanned (dlp.h, aip_dlp_scope); shared with streaming. */
typedef enum dlp_pstate {
  PS_SKIP = 0, /* not scanned, nor anything below */
  PS_SCAN,     /* scanned, keys included */
  PS_MSG,      /* a message object: its member names decide */
  PS_MSGS,     /* a top-level array of messages */
  PS_ERROR,    /* the `error` member: every member but a scalar `code` is scanned */
  PS_FIXED     /* jsonrpc, id, method, error.code: a scalar is not scanned, a container is */
} dlp_pstate;

typedef struct dlp_path {
  int scope;
  int depth;
  uint8_t self[AIP_JSON_MAX_DEPTH + 2];    /* state of the container at each depth */
  uint8_t member[AIP_JSON_MAX_DEPTH + 2];  /* state of the next value at each depth */
  uint16_t keyred[AIP_JSON_MAX_DEPTH + 2]; /* keys redacted so far in that object */
  int exempt; /* the last key named a protocol member (result, error.code...): not scanned */
} dlp_path;

void dlp_path_init(dlp_path *ph, int scope);
void dlp_path_open(dlp_path *ph, int is_obj);
void dlp_path_close(dlp_path *ph);
int dlp_path_value_scanned(const dlp_path *ph); /* a string or number value here */
/* A key here: scanned, unless dlp_path_key then sets `exempt` (a protocol member's name). */
int dlp_path_key_scanned(const dlp_path *ph);
int dlp_path_key_needed(const dlp_path *ph);    /* whether the key's name matters */
void dlp_path_key(dlp_path *ph, const char *name, size_t n); /* name NULL when not needed */

#endif
