/* mcp/session.h -- an agent's MCP session (Streamable HTTP) and the /mcp endpoint */
#ifndef AIP_MCP_SESSION_H
#define AIP_MCP_SESSION_H

#include <stdint.h>
#include <cJSON.h>
#include "engine/map.h"
#include "gateway/http/http_server.h"

typedef struct aip_gw aip_gw;
typedef struct aip_agent_rt aip_agent_rt;
typedef struct aip_session aip_session;
typedef struct aip_pending aip_pending;

#define AIP_SESSION_ID_LEN 32 /* hex of 16 random bytes */

struct aip_session {
  char id[AIP_SESSION_ID_LEN + 1];
  aip_agent_rt *agent;
  char version[16]; /* negotiated protocol version */
  int initialized;  /* notifications/initialized received */
  cJSON *client_caps;
  uint64_t last_used_ms;
  aip_http_req *get_stream; /* the open GET SSE stream, if any */
  aip_pending *pending;     /* requests in flight */
  aip_map outstanding;      /* requests sent to it awaiting its answer (mcp/outstanding.h) */
  aip_session *prev, *next; /* in agent->sessions */
};

/* mcp_http.c: the /mcp endpoint */
void aip_mcp_handle(aip_http_req *req, aip_gw *gw);
void aip_session_end(aip_gw *gw, aip_session *s);
/* Sends an unrelated server->client message on the session's GET stream (dropped if none). */
void aip_session_push(aip_session *s, const cJSON *msg);
void aip_sessions_housekeeping(aip_gw *gw);
/* Tells every call held for a human that it is still waiting (progress or SSE comment). */
void aip_sessions_approval_keepalive(aip_gw *gw);
const char *aip_mcp_negotiate(const char *requested);

#endif
