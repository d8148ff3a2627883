/* rpc_head.h -- find the id of a JSON-RPC response from the first bytes of the message.
 *
 * A large answer from an upstream is streamed through DLP instead of being held whole
 * (docs/dlp.md, "Streaming in the gateway"). To route it to its call before the rest has
 * arrived, the gateway needs the top-level "id" member, which every MCP SDK writes before
 * "result" ({"jsonrpc":"2.0","id":7,"result":{...}}). This scanner reads a prefix of the
 * message and says whether that is the case. It holds no state: the caller runs it once, on
 * the bytes it already holds.
 */
#ifndef AIP_RPC_HEAD_H
#define AIP_RPC_HEAD_H

#include <stddef.h>

typedef struct aip_rpc_head {
  size_t id_off; /* the id's JSON value: p[id_off, id_off + id_len) */
  size_t id_len;
  int is_error;  /* the member after the id is "error" (else "result") */
} aip_rpc_head;

enum {
  AIP_RPC_HEAD_FOUND = 1, /* a top-level object whose "id" (number or string) precedes the
                           * key of its "result" or "error" member */
  AIP_RPC_HEAD_MORE = 0,  /* the prefix ends before either was seen */
  AIP_RPC_HEAD_NO = -1    /* never streamable: not an object, invalid JSON, a "method" member
                           * (a request or notification), "result"/"error" before "id", an id
                           * that is not a number or a string, or a duplicate "id" */
};

/* Scans p[0, n), a prefix of one JSON text (leading whitespace allowed). */
int aip_rpc_head_scan(const char *p, size_t n, aip_rpc_head *out);

#endif
