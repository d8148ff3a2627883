/* outstanding.c -- the per-session registry of requests awaiting the agent's answer (see
 * outstanding.h). */
#include "gateway/mcp/outstanding.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "gateway/mcp/session.h"

int aip_outstanding_add(aip_session *s, aip_outstanding *e, const char *prefix,
                        aip_outstanding_cb on_answer, void *data) {
  unsigned char rnd[16];
  char hex[33];
  if (strlen(prefix) > AIP_OUTSTANDING_ID_MAX - sizeof(hex)) return -EINVAL;
  randombytes_buf(rnd, sizeof(rnd));
  sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
  snprintf(e->id, sizeof(e->id), "%s%s", prefix, hex);
  e->on_answer = on_answer;
  e->data = data;
  /* the key is the id inside the entry, which lives as long as it is registered */
  if (aip_map_put(&s->outstanding, e->id, strlen(e->id), e)) return -ENOMEM;
  e->registered = 1;
  return 0;
}

void aip_outstanding_remove(aip_session *s, aip_outstanding *e) {
  if (!e->registered) return;
  e->registered = 0;
  aip_map_del(&s->outstanding, e->id, strlen(e->id));
}

static aip_outstanding *find(const aip_session *s, const cJSON *id) {
  /* our ids are strings; a number can only be a request we never sent */
  if (!cJSON_IsString(id)) return NULL;
  size_t n = strlen(id->valuestring);
  return n < AIP_OUTSTANDING_ID_MAX ? aip_map_get(&s->outstanding, id->valuestring, n) : NULL;
}

int aip_outstanding_awaits(const aip_session *s, const cJSON *id) { return find(s, id) != NULL; }

int aip_outstanding_answer(aip_session *s, const aip_rpc_msg *m) {
  aip_outstanding *e = find(s, m->id);
  if (!e) return -ENOENT;
  aip_outstanding_remove(s, e); /* first answer wins: a second one finds nothing */
  e->on_answer(e->data, s, m);
  return 0;
}

void aip_outstanding_session_end(aip_session *s) {
  const aip_map_entry *me;
  size_t it = 0;
  /* removal inside the iteration would disturb it: restart after each one */
  while ((it = 0, aip_map_next(&s->outstanding, &it, &me))) {
    aip_outstanding *e = me->value;
    aip_outstanding_remove(s, e);
    e->on_answer(e->data, s, NULL);
  }
  aip_map_free(&s->outstanding);
}
