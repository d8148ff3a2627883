/* policy_sign.c -- `aip sign-policy`: the policy text with its metadata.signature line set.
 *
 * The file is edited as text, not re-emitted from a tree, so the operator's comments, key order
 * and quoting survive and a diff of the signed file shows one line. The edit works on lines,
 * using the positions libyaml reports: an existing signature's lines are replaced by one line;
 * otherwise one line is added after the last entry of the metadata block. Block style is needed
 * for that (a flow-style `metadata: {...}` is refused with a hint). Whatever the edit produced
 * is verified with the signing key's public half before it is returned, so an unusual layout
 * can make signing fail but never yields a file that does not verify.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config/signing.h"
#include "config/yaml_doc.h"

typedef struct text {
  const char *p;
  size_t len;
} text;

/* Byte offset of the start of 1-based line `line` (len when past the end). libyaml counts
 * "\r\n", "\r" and "\n" as one break each, and so do we. */
static size_t line_start(text t, int line) {
  size_t i = 0;
  for (int l = 1; l < line && i < t.len; i++) {
    if (t.p[i] == '\r' && i + 1 < t.len && t.p[i + 1] == '\n') i++;
    if (t.p[i] == '\n' || t.p[i] == '\r') l++;
  }
  return i;
}

/* The line break that ends the line starting at `at` ("\n" when the text ends without one). */
static const char *line_break(text t, size_t at) {
  while (at < t.len && t.p[at] != '\n' && t.p[at] != '\r') at++;
  if (at < t.len && t.p[at] == '\r') return at + 1 < t.len && t.p[at + 1] == '\n' ? "\r\n" : "\r";
  return "\n";
}

/* The last line of a mapping entry. libyaml's end mark of the value is just past it, which is
 * column 1 of the next line for block scalars and collections; an empty value (`owner:`) is
 * placed at the next token, so the entry ends on its key's line. */
static int last_line(const aip_ynode *key, const aip_ynode *v) {
  if (v->kind == AIP_YSCALAR && v->plain && v->len == 0) return key->pos.line;
  int l = v->end.col <= 1 && v->end.line > v->pos.line ? v->end.line - 1 : v->end.line;
  return l < key->pos.line ? key->pos.line : l;
}

/* A key written at the start of its line, after spaces only (block style). */
static int at_line_start(text t, const aip_ynode *key) {
  size_t s = line_start(t, key->pos.line);
  for (int i = 0; i < key->pos.col - 1; i++)
    if (s + (size_t)i >= t.len || t.p[s + (size_t)i] != ' ') return 0;
  return 1;
}

/* out = t[0, from) + indent + `signature: "<sig>"` + break + t[to, len) */
static int splice(text t, size_t from, size_t to, int indent, const char *sig, const char *brk,
                  int need_break_before, char **out, size_t *out_len, aip_error *err) {
  size_t n = from + (size_t)indent + strlen(sig) + 32 + (t.len - to);
  char *o = malloc(n);
  if (!o) return aip_error_set(err, -ENOMEM, "out of memory");
  size_t k = 0;
  memcpy(o, t.p, from);
  k += from;
  if (need_break_before) {
    memcpy(o + k, brk, strlen(brk));
    k += strlen(brk);
  }
  memset(o + k, ' ', (size_t)indent);
  k += (size_t)indent;
  k += (size_t)snprintf(o + k, n - k, "signature: \"%s\"%s", sig, brk);
  memcpy(o + k, t.p + to, t.len - to);
  k += t.len - to;
  o[k] = '\0';
  *out = o;
  *out_len = k;
  return 0;
}

static int edit(const aip_ydoc *y, text t, const char *sig, char **out, size_t *out_len,
                aip_error *err) {
  static const char hint[] = "write metadata as a block mapping (one key per line) to sign it";
  const aip_ynode *root = y->root;
  const aip_ynode *meta = root && root->kind == AIP_YMAP ? aip_y_get(root, "metadata") : NULL;
  if (!meta || meta->kind != AIP_YMAP || meta->n < 2)
    return aip_y_errf(y, meta ? meta : root, err,
                      "metadata: the policy needs a metadata mapping (with at least its name) "
                      "to hold the signature");
  for (size_t i = 0; i + 1 < meta->n; i += 2) {
    const aip_ynode *k = meta->items[i], *v = meta->items[i + 1];
    if (!at_line_start(t, k)) return aip_y_errf(y, k, err, "metadata: %s", hint);
    if (strcmp(k->value, "signature") != 0) continue;
    /* replace the signature's lines, keeping its indentation */
    size_t from = line_start(t, k->pos.line), to = line_start(t, last_line(k, v) + 1);
    return splice(t, from, to, k->pos.col - 1, sig, line_break(t, from), 0, out, out_len, err);
  }
  /* add a line after the last entry, indented like the first */
  int last = last_line(meta->items[meta->n - 2], meta->items[meta->n - 1]);
  size_t at = line_start(t, last + 1), prev = line_start(t, last);
  int no_break = at == t.len && t.len > 0 && t.p[t.len - 1] != '\n' && t.p[t.len - 1] != '\r';
  return splice(t, at, at, meta->items[0]->pos.col - 1, sig, line_break(t, prev), no_break, out,
                out_len, err);
}

int aip_policy_sign_text(const char *yaml, size_t len, const char *name,
                         const uint8_t sk[AIP_ED25519_SK_BYTES], char **out, size_t *out_len,
                         aip_error *err) {
  if (!name) name = "<inline>";
  *out = NULL;
  *out_len = 0;
  aip_policy_doc *doc = NULL;
  aip_ydoc *y = NULL;
  char *sig = NULL;
  /* Only a policy the gateway would load is worth signing. */
  int rc = aip_policy_doc_load_string(yaml, len, name, &doc, err);
  aip_policy_doc_free(doc);
  if (!rc) rc = aip_policy_signature(yaml, len, name, sk, &sig, err);
  if (!rc) rc = aip_ydoc_load_string(yaml, len, name, &y, err);
  if (!rc) rc = edit(y, (text){yaml, len}, sig, out, out_len, err);
  /* the proof that the edit touched nothing but the signature */
  uint8_t pk[AIP_ED25519_PK_BYTES];
  aip_trusted_keys self = {.pk = &pk, .paths = (char *[]){"the signing key"}, .n = 1};
  aip_error verr = {{0}};
  if (!rc) crypto_sign_ed25519_sk_to_pk(pk, sk);
  if (!rc && aip_policy_verify_signature(*out, *out_len, name, &self, NULL, &verr) != 0)
    rc = aip_error_set(err, -EINVAL,
                       "%s: cannot insert the signature line into this layout (%s); add a line "
                       "`signature: \"\"` to the metadata block and sign again",
                       name, verr.msg);
  if (rc) {
    free(*out);
    *out = NULL;
    *out_len = 0;
  }
  aip_ydoc_free(y);
  free(sig);
  return rc;
}
