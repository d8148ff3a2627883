/* approvals/approvals_http.h -- the approval API and the operator page on the admin listener */
#ifndef AIP_APPROVALS_HTTP_H
#define AIP_APPROVALS_HTTP_H

#include "gateway/http/http_server.h"

typedef struct aip_gw aip_gw;

/* approvals_api.c: returns 1 when the path was an approval API path (and was answered) */
int aip_approvals_api_handle(aip_http_req *req, aip_gw *gw);
/* The operators changed (reload): event streams opened with a token no longer listed end. */
void aip_approvals_api_operators_changed(aip_gw *gw);
/* approvals_page.c: the operator page and its files; returns 1 when it answered */
int aip_approvals_page_handle(aip_http_req *req);

#endif
