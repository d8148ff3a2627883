/* dlp_json.c -- redacting a whole JSON message: which strings are scanned, and splicing the
 * redactions back into the raw bytes.
 *
 * The message is tokenized strictly (dlp_jtok.c); every string (keys too) and number on a
 * scanned path is decoded and redacted on its own (dlp_redact.c), and only a token that changed
 * is rewritten: its untouched runs are copied from the raw bytes, escapes and all, and the
 * placeholders are JSON-escaped in. Everything else, byte for byte, is copied, so the result
 * is valid JSON with the same structure, key order, numbers and non-text content. A number
 * that matched becomes a string (it can no longer be a number). A key that matched gets "#2",
 * "#3"... after its placeholder from the second redacted key of an object on, so that two
 * redacted keys of one object stay distinct.
 *
 * JSON inside a string (MCP `text` often carries a serialized object): when a decoded string
 * is itself a JSON document with escapes inside, its strings are decoded and scanned too
 * (one level), which finds `\u0041KIA...` written inside the inner document; the outer string
 * is then scanned as plain text as well, exactly as AIP would.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/dlp_internal.h"

/* ---- paths ------------------------------------------------------------------------------- */

void dlp_path_init(dlp_path *ph, int scope) {
  ph->scope = scope & 0xff;
  ph->depth = 0;
  ph->self[0] = PS_SKIP;
  ph->member[0] = (scope & AIP_DLP_WHOLE) ? PS_SCAN : PS_MSG;
}

void dlp_path_open(dlp_path *ph, int is_obj) {
  dlp_pstate st = ph->member[ph->depth];
  /* anything where a message, an error object or a protocol scalar should be is not one:
   * all of it is scanned (a batch's top-level array excepted) */
  if (st == PS_MSG && !is_obj) st = ph->depth == 0 ? PS_MSGS : PS_SCAN;
  else if (st == PS_FIXED || (st == PS_ERROR && !is_obj)) st = PS_SCAN;
  ph->depth++;
  ph->self[ph->depth] = (uint8_t)st;
  ph->keyred[ph->depth] = 0;
  dlp_pstate m = st == PS_SCAN ? PS_SCAN : PS_SKIP;
  if (!is_obj && st == PS_MSGS) m = PS_MSG;
  ph->member[ph->depth] = (uint8_t)m;
}

void dlp_path_close(dlp_path *ph) {
  if (ph->depth > 0) ph->depth--;
}

int dlp_path_value_scanned(const dlp_path *ph) {
  dlp_pstate m = ph->member[ph->depth];
  return m != PS_SKIP && m != PS_FIXED;
}

int dlp_path_key_scanned(const dlp_path *ph) {
  dlp_pstate s = ph->self[ph->depth];
  return s == PS_SCAN || s == PS_MSG || s == PS_ERROR;
}

int dlp_path_key_needed(const dlp_path *ph) {
  dlp_pstate s = ph->self[ph->depth];
  return s == PS_MSG || s == PS_ERROR;
}

static int is(const char *k, size_t n, const char *name) {
  return k && strlen(name) == n && memcmp(k, name, n) == 0;
}

/* Every member of a message is scanned, in both directions, except the values of the
 * protocol's fixed fields (jsonrpc, id, method, error.code), which the gateway checks itself
 * and a redaction would break; the names of the protocol's members are not scanned either.
 * An unknown member (an extension, a misspelt "Result") is scanned whole, keys included. */
void dlp_path_key(dlp_path *ph, const char *k, size_t n) {
  dlp_pstate self = ph->self[ph->depth], m = self == PS_SCAN ? PS_SCAN : PS_SKIP;
  ph->exempt = 0;
  if (self == PS_MSG) {
    m = PS_SCAN;
    if (is(k, n, "jsonrpc") || is(k, n, "id") || is(k, n, "method")) m = PS_FIXED;
    else if (is(k, n, "error")) m = PS_ERROR;
    ph->exempt = m != PS_SCAN || is(k, n, "result") || is(k, n, "params");
  } else if (self == PS_ERROR) {
    m = is(k, n, "code") ? PS_FIXED : PS_SCAN;
    ph->exempt = m == PS_FIXED || is(k, n, "message") || is(k, n, "data");
  }
  ph->member[ph->depth] = (uint8_t)m;
}

/* ---- splicing -------------------------------------------------------------------------------- */

/* Where spliced bytes go: `b`, plus (for JSON inside a string) pieces relative to the outer
 * decoded string so its own redaction can run over the result. */
typedef struct emit {
  aip_buf *b;
  aip_dlp_scratch *s; /* non-NULL: also record pieces in s->ipc */
} emit;

static int emit_piece(emit *e, size_t len, int32_t orig) {
  aip_dlp_scratch *s = e->s;
  if (!s || !len) return 0;
  if (s->nipc && ((orig < 0 && s->ipc[s->nipc - 1].orig < 0) ||
                  (orig >= 0 && s->ipc[s->nipc - 1].orig >= 0 &&
                   s->ipc[s->nipc - 1].orig + (int64_t)s->ipc[s->nipc - 1].len == orig))) {
    s->ipc[s->nipc - 1].len += (uint32_t)len;
    return 0;
  }
  if (s->nipc == s->ipccap) {
    size_t cap = s->ipccap ? s->ipccap * 2 : 32;
    dlp_piece *v = realloc(s->ipc, cap * sizeof *v);
    if (!v) return -ENOMEM;
    s->ipc = v, s->ipccap = cap;
  }
  s->ipc[s->nipc++] = (dlp_piece){(uint32_t)len, orig};
  return 0;
}

static int emit_raw(emit *e, const char *base, size_t from, size_t to) {
  int err = aip_buf_append(e->b, base + from, to - from);
  return err ? err : emit_piece(e, to - from, (int32_t)from);
}

static int emit_ins(emit *e, const char *p, size_t n, int esc) {
  size_t mark = e->b->len;
  int err = esc ? dlp_json_escape(e->b, p, n) : aip_buf_append(e->b, p, n);
  return err ? err : emit_piece(e, e->b->len - mark, -1);
}

static int grow_offs(aip_dlp_scratch *s, size_t k) {
  if (k <= s->offcap) return 0;
  uint32_t *v = realloc(s->offs, k * sizeof *v);
  if (!v) return -ENOMEM;
  s->offs = v, s->offcap = k;
  return 0;
}

/* Token content base[a..b) (raw), redacted as `t`. */
static int splice_token(emit *e, aip_dlp_scratch *s, const char *base, size_t a, size_t b,
                        int escaped, const dlp_text *t) {
  size_t k = 0;
  if (escaped) { /* raw offsets of every original run's ends, in one walk over the token */
    int err = grow_offs(s, 2 * t->npc);
    if (err) return err;
    for (size_t i = 0; i < t->npc; i++)
      if (t->pc[i].orig >= 0) {
        s->offs[k++] = (uint32_t)t->pc[i].orig;
        s->offs[k++] = (uint32_t)t->pc[i].orig + t->pc[i].len;
      }
    dlp_json_raw_offsets(base + a, b - a, s->offs, k);
  }
  size_t cur = 0, bi = 0;
  int err = 0;
  for (size_t i = 0; i < t->npc && !err; i++) {
    const dlp_piece *p = &t->pc[i];
    if (p->orig >= 0) {
      size_t ra = escaped ? s->offs[bi++] : (size_t)p->orig;
      size_t rb = escaped ? s->offs[bi++] : (size_t)p->orig + p->len;
      err = emit_raw(e, base, a + ra, a + rb);
    } else {
      err = emit_ins(e, t->p + cur, p->len, 1);
    }
    cur += p->len;
  }
  return err;
}

int dlp_splice_string(aip_dlp_scratch *s, const char *raw, size_t rawlen, int escaped,
                      const dlp_text *t, aip_buf *out) {
  emit e = {out, NULL};
  return splice_token(&e, s, raw, 0, rawlen, escaped, t);
}

/* ---- the walk ---------------------------------------------------------------------------- */

typedef struct jwalk {
  const aip_dlp *d;
  const dlp_view *v;
  aip_dlp_scratch *s;
  aip_dlp_counts *c;
  int level;
  const char *raw;
  size_t len, copied;
  int changed;
  emit e;
  dlp_path ph;
  size_t tok;
  int tok_key, tok_scan, tok_name;
} jwalk;

static int token(jwalk *w, size_t a, size_t b, int is_num) {
  if (w->level == 0 && w->d->max_scan_size && a >= w->d->max_scan_size) {
    if (w->c) w->c->flags |= AIP_DLP_F_PARTIAL;
    return 0;
  }
  if (dlp_expired(w->s)) return -ETIMEDOUT;
  dlp_text t;
  int escaped;
  int rc = dlp_scan_token(w->d, w->v, w->s, w->level, w->raw + a, b - a, is_num, &t, &escaped,
                          w->c);
  if (rc <= 0) return rc;
  w->changed = 1;
  rc = emit_raw(&w->e, w->raw, w->copied, a);
  if (!rc && is_num) rc = emit_ins(&w->e, "\"", 1, 0);
  if (!rc) rc = splice_token(&w->e, w->s, w->raw, a, b, escaped, &t);
  if (!rc && w->tok_key) {
    if (w->c) w->c->flags |= AIP_DLP_F_KEY;
    unsigned k = ++w->ph.keyred[w->ph.depth];
    char sfx[16];
    if (k > 1) rc = emit_ins(&w->e, sfx, (size_t)snprintf(sfx, sizeof sfx, "#%u", k), 0);
  }
  if (!rc && is_num) rc = emit_ins(&w->e, "\"", 1, 0);
  w->copied = b;
  return rc;
}

/* The key's decoded name, when the path needs it (short keys only). */
static void path_key(jwalk *w, size_t a, size_t b) {
  if (!w->tok_name || b - a > DLP_KEY_PATH_MAX) {
    dlp_path_key(&w->ph, w->tok_name ? "" : NULL, 0);
    return;
  }
  const char *k = w->raw + a;
  size_t n = b - a;
  aip_buf *tmp = &w->s->ws[w->level].tmp;
  if (memchr(k, '\\', n)) {
    int err;
    aip_buf_reset(tmp);
    dlp_json_decode(k, n, tmp, 0, &err);
    k = err ? "" : tmp->data, n = err ? 0 : tmp->len;
  }
  dlp_path_key(&w->ph, k, n);
}

static int on_event(jwalk *w, const dlp_jev *ev) {
  switch (ev->type) {
    case JEV_OPEN: dlp_path_open(&w->ph, ev->is_obj); return 0;
    case JEV_CLOSE: dlp_path_close(&w->ph); return 0;
    case JEV_STR_BEGIN:
      w->tok = ev->off;
      w->tok_key = ev->is_key;
      w->tok_scan = ev->is_key ? dlp_path_key_scanned(&w->ph) : dlp_path_value_scanned(&w->ph);
      w->tok_name = ev->is_key && dlp_path_key_needed(&w->ph);
      return 0;
    case JEV_STR_CHUNK:
      if (!ev->last) return 0; /* one chunk in block mode: only the last matters */
      if (w->tok_key) path_key(w, w->tok, ev->off + ev->len);
      if (w->tok_key && w->ph.exempt) return 0;
      return w->tok_scan ? token(w, w->tok, ev->off + ev->len, 0) : 0;
    case JEV_NUM_BEGIN:
      w->tok = ev->off;
      w->tok_key = 0;
      w->tok_scan = dlp_path_value_scanned(&w->ph);
      return 0;
    case JEV_NUM_CHUNK:
      return ev->last && w->tok_scan ? token(w, w->tok, ev->off + ev->len, 1) : 0;
  }
  return 0;
}

static int walk_json(jwalk *w) {
  dlp_jtok t;
  dlp_jev ev;
  size_t pos = 0;
  int rc;
  dlp_jtok_init(&t);
  while ((rc = dlp_jtok_next(&t, w->raw, w->len, &pos, &ev)) > 0)
    if ((rc = on_event(w, &ev)) < 0) return rc;
  if (rc < 0) return rc;
  if ((rc = dlp_jtok_finish(&t, &ev)) < 0) return rc;
  if (rc > 0) { /* a top-level number ends with the text */
    ev.off = w->len;
    if ((rc = on_event(w, &ev)) < 0) return rc;
  }
  if (w->changed && (rc = emit_raw(&w->e, w->raw, w->copied, w->len))) return rc;
  return w->changed;
}

static int valid_json(const char *p, size_t n) {
  dlp_jtok t;
  dlp_jev ev;
  size_t pos = 0;
  int rc;
  dlp_jtok_init(&t);
  while ((rc = dlp_jtok_next(&t, p, n, &pos, &ev)) > 0) {
  }
  return rc == 0 && dlp_jtok_finish(&t, &ev) >= 0;
}

/* A decoded string that is a JSON object or array holding escapes of its own. */
static int inner_json(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, const char *p,
                      size_t n, aip_dlp_counts *c) {
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
  if (i == n || (p[i] != '{' && p[i] != '[') || !memchr(p, '\\', n) || !valid_json(p, n))
    return 0;
  aip_buf_reset(&s->inner);
  s->nipc = 0;
  jwalk w = {.d = d, .v = v, .s = s, .c = c, .level = 1, .raw = p, .len = n,
             .e = {&s->inner, s}};
  dlp_path_init(&w.ph, AIP_DLP_WHOLE);
  return walk_json(&w);
}

int dlp_scan_token(const aip_dlp *d, const dlp_view *v, aip_dlp_scratch *s, int level,
                   const char *raw, size_t n, int is_num, dlp_text *t, int *escaped,
                   aip_dlp_counts *c) {
  dlp_ws *ws = &s->ws[level];
  *escaped = 0;
  if (n < v->min_width) return 0; /* decoding only shortens */
  *escaped = !is_num && memchr(raw, '\\', n) != NULL;
  const char *text = raw;
  size_t len = n;
  if (*escaped) {
    int err;
    aip_buf_reset(&ws->dec);
    dlp_json_decode(raw, n, &ws->dec, 0, &err);
    if (err) return err;
    text = ws->dec.data, len = ws->dec.len;
  }
  if (len > INT32_MAX) return -E2BIG;
  dlp_text_init(ws, t, text, len);
  int changed = 0, rc;
  if (level == 0 && *escaped && (rc = inner_json(d, v, s, text, len, c)) != 0) {
    if (rc < 0) return rc;
    t->p = s->inner.data, t->len = s->inner.len, t->pc = s->ipc, t->npc = s->nipc;
    changed = 1;
  }
  rc = dlp_redact_text(d, v, s, ws, t, c);
  return rc < 0 ? rc : (changed | rc);
}

int aip_dlp_redact_json(const aip_dlp *d, aip_dlp_scratch *s, int scope, const char *raw,
                        size_t len, aip_buf *out, aip_dlp_counts *c) {
  int sc = scope & 0xff;
  if (!d) return 0;
  if (sc > AIP_DLP_REQUEST) return -EINVAL;
  const dlp_view *v = &d->view[sc];
  if (!dlp_view_ready(v)) return 0;
  if (!(scope & AIP_DLP_WHOLE) && !(sc == AIP_DLP_RESPONSE ? d->scan_responses : d->scan_requests))
    return 0;
  size_t mark = out->len;
  jwalk w = {.d = d, .v = v, .s = s, .c = c, .level = 0, .raw = raw, .len = len,
             .e = {out, NULL}};
  dlp_path_init(&w.ph, scope);
  int rc = walk_json(&w);
  if (rc <= 0) {
    out->len = mark;
    if (out->data) out->data[mark] = '\0';
  }
  return rc;
}
