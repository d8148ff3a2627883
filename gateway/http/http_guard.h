/* http/http_guard.h -- the Origin and Host rules of both listeners */
#ifndef AIP_HTTP_GUARD_H
#define AIP_HTTP_GUARD_H

#include "config/config.h"
#include "gateway/http/http_server.h"


/* http_guard.c: the Origin and Host rules of both listeners (DNS rebinding); `bind` is the
 * listener's configured host. NULL when the request may go on, else the name of the header
 * that fails ("Origin", "Host"): answer 403. */
const char *aip_http_guard(const aip_gateway_config *cfg, const char *bind,
                           const aip_http_req *req);

#endif
