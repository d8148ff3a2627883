/* core/rate_durable.h -- rate-limit tokens saved in the store before they are granted */
#ifndef AIP_CORE_RATE_DURABLE_H
#define AIP_CORE_RATE_DURABLE_H

#include <cJSON.h>
#include "engine/engine.h"

typedef struct aip_gw aip_gw;
typedef struct aip_agent_rt aip_agent_rt;
typedef struct aip_pending aip_pending;

/* rate_durable.c (see there). init puts every agent's rate state in durable mode. */
int aip_rate_durable_init(aip_gw *gw);
void aip_rate_durable_close(aip_gw *gw);
/* Clean shutdown, before the store closes: writes back tokens reserved and never granted. */
void aip_rate_durable_give_back(aip_gw *gw);
/* After a tools/call check: tops up, in the background, the reserve of saved tokens of every
 * bucket the check may have spent from (one per name of the tool: engine/policy_names.c). */
void aip_rate_durable_after_check(aip_agent_rt *a, const aip_tool_names *names);
/* The check said rate_wait: `p` waits for the save of the next tokens of a bucket of the tool's
 * names, then its message `root` (taken on success) is checked again. -EIO when no save can be
 * started (fail closed). */
int aip_rate_durable_wait(aip_pending *p, const aip_tool_names *names, cJSON *root);
void aip_rate_durable_forget(aip_pending *p); /* p is freed before its save is done */

int aip_rate_durable_failing(aip_gw *gw);     /* a bucket's save failed and is being retried */

#endif
