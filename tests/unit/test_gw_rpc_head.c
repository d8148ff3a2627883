/* test_gw_rpc_head.c -- the prefix scanner that routes a streamed upstream answer. */
#include <string.h>

#include "gateway/mcp/rpc_head.h"
#include "test.h"

static int scan(const char *s, aip_rpc_head *h) { return aip_rpc_head_scan(s, strlen(s), h); }

/* The id's text, for comparisons. */
static const char *id_of(const char *s, const aip_rpc_head *h) {
  static char buf[64];
  snprintf(buf, sizeof(buf), "%.*s", (int)h->id_len, s + h->id_off);
  return buf;
}

static void found(const char *s, const char *want_id, int is_error) {
  aip_rpc_head h = {0};
  int r = scan(s, &h);
  CHECK_INT(r, AIP_RPC_HEAD_FOUND);
  if (r == AIP_RPC_HEAD_FOUND) {
    CHECK_STR(id_of(s, &h), want_id);
    CHECK_INT(h.is_error, is_error);
  }
}

static void outcome(const char *s, int want) {
  aip_rpc_head h = {0};
  int r = scan(s, &h);
  if (r != want) fprintf(stderr, "input: %s\n", s);
  CHECK_INT(r, want);
}

int main(void) {
  /* the SDK's order, and what the rest of the message looks like does not matter */
  found("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"x", "7", 0);
  found("{\"jsonrpc\":\"2.0\",\"id\":123,\"result\":", "123", 0);
  found("{\"jsonrpc\":\"2.0\",\"id\":123,\"result\"", "123", 0);
  found("  {\n \"id\" : \"a\\\"b\" , \"jsonrpc\":\"2.0\",\"error\":{\"code\":1", "\"a\\\"b\"", 1);
  found("{\"x\":{\"id\":1,\"a\":[1,{\"b\":\"}\"}]},\"id\":2,\"result\":1}", "2", 0);
  found("{\"jsonrpc\":\"2.0\",\"id\":-1.5e3,\"result\":{}}", "-1.5e3", 0);

  /* every prefix of a good head asks for more, never decides wrongly */
  const char *head = "{\"jsonrpc\":\"2.0\",\"id\":4567,\"result\":{}}";
  size_t stop = strstr(head, "\"result\"") - head + 8; /* the key's closing quote */
  for (size_t n = 0; n < stop; n++) {
    aip_rpc_head h = {0};
    int r = aip_rpc_head_scan(head, n, &h);
    if (r != AIP_RPC_HEAD_MORE) fprintf(stderr, "prefix %zu -> %d\n", n, r);
    CHECK_INT(r, AIP_RPC_HEAD_MORE);
  }
  /* a number cut at the end of the prefix is not yet known to be complete */
  outcome("{\"id\":45", AIP_RPC_HEAD_MORE);
  outcome("{\"jsonrpc\":\"2.0\",\"id\":1,\"meta\":{\"a\":\"long", AIP_RPC_HEAD_MORE);

  /* never streamable */
  outcome("[{\"id\":1,\"result\":1}]", AIP_RPC_HEAD_NO);            /* a batch */
  outcome("{\"result\":{},\"id\":1}", AIP_RPC_HEAD_NO);              /* result first */
  outcome("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}", AIP_RPC_HEAD_NO); /* a request */
  outcome("{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{}}", AIP_RPC_HEAD_NO);
  outcome("{\"id\":null,\"result\":1}", AIP_RPC_HEAD_NO);            /* no call has id null */
  outcome("{\"id\":{\"a\":1},\"result\":1}", AIP_RPC_HEAD_NO);
  outcome("{\"id\":1,\"id\":2,\"result\":1}", AIP_RPC_HEAD_NO);      /* duplicate id */
  outcome("{\"id\":1}", AIP_RPC_HEAD_NO);                            /* no result */
  outcome("{\"id\":1 \"result\":1}", AIP_RPC_HEAD_NO);               /* missing comma */
  outcome("{\"id\" 1,\"result\":1}", AIP_RPC_HEAD_NO);               /* missing colon */
  outcome("{id:1,\"result\":1}", AIP_RPC_HEAD_NO);                   /* bare key */
  outcome("{\"a\":\"x\ny\",\"id\":1,\"result\":1}", AIP_RPC_HEAD_NO); /* control char in string */
  outcome("{\"a\":tru$,\"id\":1,\"result\":1}", AIP_RPC_HEAD_NO);
  outcome("{\"\\u0069d\":1,\"result\":1}", AIP_RPC_HEAD_NO); /* escaped key: left to the buffered path */
  outcome("\"id\"", AIP_RPC_HEAD_NO);
  TEST_MAIN_END();
}
