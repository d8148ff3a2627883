/* core/msg.h -- one JSON-RPC message on the decision path (core/decide.c), held so that its
 * users never see how: today a cJSON tree with its classification; the next issue replaces the
 * tree with an index over the message bytes, and that change stays inside msg.c. The
 * decision core reads a message only through these functions; front ends that still need the
 * tree (the wrapper's elicitation answers, its server side) use aip_msg_rpc, the one door
 * left open, named so it is easy to find and close. */
#ifndef AIP_CORE_MSG_H
#define AIP_CORE_MSG_H

#include <stddef.h>

#include "engine/engine.h"
#include "gateway/core/dlp_apply.h"

typedef struct aip_msg aip_msg;

/* Takes a parsed message (an object, not a batch) and classifies it (aip_rpc_classify). NULL
 * (and `root` freed) when out of memory. */
aip_msg *aip_msg_adopt(cJSON *root);
void aip_msg_free(aip_msg *m);

aip_rpc_kind aip_msg_kind(const aip_msg *m);
/* The method as sent (NULL for answers); why an INVALID message is invalid. */
const char *aip_msg_method(const aip_msg *m);
const char *aip_msg_invalid_reason(const aip_msg *m);
/* Whether the id is a string starting with `prefix` (a request of the front end's own). */
int aip_msg_id_has_prefix(const aip_msg *m, const char *prefix);
/* The id as a map key, "s<string>" or "n<number>" (malloc'd; NULL without a usable id). */
char *aip_msg_id_key(const aip_msg *m);
/* The same for an id held as a tree (the wrapper's maps of requests in flight). */
char *aip_rpc_id_key(const cJSON *id);
/* For tools/call: the tool as the agent named it (NULL when not a string). */
const char *aip_msg_tool(const aip_msg *m);
/* params.<name> (NULL when params is not an object or has no such member). */
const cJSON *aip_msg_param(const aip_msg *m, const char *name);

/* Renders an error answering `m` with aip_rpc_error (engine/jsonrpc.c, the one builder): its
 * id, or null when it has none usable (an INVALID message's string or number id is used). */
int aip_msg_error(const aip_msg *m, aip_buf *out, int code, const char *message,
                  const char *const *data_kv);
/* The refusal of `d` answering `m` (aip_decision_error). */
int aip_msg_refusal(const aip_msg *m, aip_buf *out, const aip_decision *d, const char *subject);
/* The message as it goes on (re-serialized from what was checked, redactions included). */
int aip_msg_print(const aip_msg *m, aip_buf *out);

/* The engine's method and tool check over the message (aip_policy_check_msg). The verdict's
 * tool and args point into `m`. */
void aip_msg_check(const aip_msg *m, const aip_policy *p, int64_t now_ms, aip_rate_state *rs,
                   aip_verdict *v);
/* Request DLP over the whole message (aip_dlp_scan_request). REDACTED: `m` now holds the
 * redacted members, in place, so what was checked stays where it was (id, method, tool name);
 * v (may be NULL) has its args re-pointed. */
aip_dlp_req_outcome aip_msg_scan_request(aip_msg *m, aip_dlp_run *r, aip_dlp_counts *c,
                                         aip_decision *block, aip_verdict *v);

/* The tree view (see above). */
const aip_rpc_msg *aip_msg_rpc(const aip_msg *m);
/* Gives the tree away (the caller owns it) and frees `m`. */
cJSON *aip_msg_release(aip_msg *m);

#endif
