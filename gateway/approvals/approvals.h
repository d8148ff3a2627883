/* approvals.h -- the human approval queue on the loop thread.
 *
 * A call whose decision is `ask` becomes a record in the store (committed before anyone can see
 * it) and a waiter here. Operators decide through the admin API; the decision is committed,
 * then the waiter (if its agent is still connected) is told, and every subscriber of the event
 * stream hears of it. Pending records outlive restarts; a record decided after its agent left
 * can be claimed once by the same agent retrying the same call (same tool, same argument hash)
 * within a grace window.
 */
#ifndef AIP_APPROVALS_H
#define AIP_APPROVALS_H

#include <stdint.h>
#include <uv.h>

#include "engine/engine.h"
#include "engine/histogram.h"
#include "store/store.h"

typedef struct aip_approvals aip_approvals;
typedef struct aip_approval_wait aip_approval_wait;

/* The waiter's outcome: APPROVED, DENIED or EXPIRED (err < 0: the store failed). */
typedef void (*aip_approval_outcome)(void *data, int err, aip_approval_status st,
                                     const aip_approval *a);
/* Event stream subscribers get every created and decided record. */
typedef void (*aip_approval_event)(void *data, const char *type, const aip_approval *a);

aip_approvals *aip_approvals_new(uv_loop_t *loop, aip_store *store, uint64_t timeout_ms,
                                 uint64_t retry_grace_ms);
void aip_approvals_free(aip_approvals *m);
/* approvals.max_pending_per_agent (0 = none) and approvals.max_args_size (0 = none): an ask over
 * the first fails with -EDQUOT; arguments over the second are stored truncated (store.h). */
void aip_approvals_set_limits(aip_approvals *m, uint64_t max_pending_per_agent,
                              uint64_t max_args_size);

/* Parks a call: claims an approval made for the same call after a disconnect if there is one
 * (outcome APPROVED at once, still asynchronously), else creates a pending record. The handle
 * is valid until the outcome runs or aip_approvals_forget is called. */
/* `args_json` is what the record shows (DLP-redacted); `call_json` (the real arguments) is
 * only hashed, to recognise the same call when it is retried. */
aip_approval_wait *aip_approvals_ask(aip_approvals *m, const char *agent, const char *server,
                                     const char *tool, const char *args_json,
                                     const char *call_json, aip_approval_outcome cb, void *data);
/* The waiting call went away (agent disconnected, session ended): no outcome will run; the
 * record stays pending for operators. */
void aip_approvals_forget(aip_approvals *m, aip_approval_wait *w);

/* Operator decision (approve/deny). `done` gets the store's answer: 0, -ENOENT, -EALREADY. */
void aip_approvals_decide(aip_approvals *m, const char *id, aip_approval_status to,
                          const char *by, const char *reason, aip_approval_done done,
                          void *data);

int aip_approvals_subscribe(aip_approvals *m, aip_approval_event cb, void *data);
void aip_approvals_unsubscribe(aip_approvals *m, aip_approval_event cb, void *data);

/* Figures for /metrics, kept as records change (no query per scrape). */
typedef struct aip_approvals_stats {
  uint64_t pending;                /* pending records, agent connected or not */
  uint64_t decisions[3];           /* approved, denied, expired */
  aip_histogram decision_seconds;  /* creation -> decision or expiry */
} aip_approvals_stats;
aip_approvals_stats *aip_approvals_stats_of(aip_approvals *m);

aip_store *aip_approvals_store(aip_approvals *m);
uint64_t aip_approvals_waiting(const aip_approvals *m);

/* The body of POST /v1/approvals/{id}/approve|deny: empty, or exactly {"reason": "<string of at
 * most AIP_APPROVAL_REASON_MAX bytes>"}. Any other shape (array, scalar, null, other members,
 * wrong type, invalid JSON, over AIP_APPROVAL_BODY_MAX bytes) is -EINVAL/-EMSGSIZE. `*reason` is
 * NULL or a string for the caller to free. A plain function over bytes (fuzzed directly). */
#define AIP_APPROVAL_REASON_MAX 1000
#define AIP_APPROVAL_BODY_MAX 16384
int aip_approval_decision_parse(const char *body, size_t len, char **reason);

/* Appends the display-safe form of s[0..n) (approvals_display.c): bidi controls, zero-width and
 * other invisible or format characters, C0/C1 controls, non-ASCII spaces and bytes that are not
 * UTF-8 are shown as <U+XXXX> / <0xNN>, a run of one of them as <U+XXXX xN>, and more than
 * AIP_DISPLAY_MAX_SPACES spaces in a row as <U+0020 xN>. The API's `display` fields, the page
 * and the CLI show this form. */
#define AIP_DISPLAY_MAX_SPACES 8
int aip_display_string(aip_buf *out, const char *s, size_t n);

/* Renders a record as the API's JSON object (INTERFACES.md section 5). */
int aip_approval_to_json(aip_buf *b, const aip_approval *a);

#endif
