/* test_gw_lists.c -- the naming rule of the merged prompt, resource and template lists
 * (gateway/core/lists.c, docs/routing.md) and RFC 6570 template matching for routing. */
#include <stdlib.h>
#include <string.h>

#include "gateway/core/lists.h"
#include "engine/engine.h"
#include "test.h"

static const char *const servers[] = {"alpha", "beta"};

static cJSON *arr(const char *json) {
  cJSON *v = NULL;
  aip_json_parse(json, strlen(json), &v);
  return v;
}

/* The visible names of l joined with ','. */
static const char *listed(const aip_list *l, char *buf, size_t n) {
  buf[0] = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, l->json) {
    const cJSON *v = cJSON_GetObjectItem(it, aip_list_kinds[l->id].name_key);
    strncat(buf, v->valuestring, n - strlen(buf) - 2);
    strncat(buf, ",", n - strlen(buf) - 1);
  }
  return buf;
}

static void merge(aip_list *l, aip_list_id id, aip_tool_prefix prefix, const aip_policy *pol,
                  const char *a, const char *b) {
  aip_list_names n = {servers, 2, prefix, pol, "bot", NULL};
  cJSON *items[2] = {arr(a), arr(b)};
  CHECK_INT(aip_list_init(l, id, 2), 0);
  CHECK_INT(aip_list_merge(l, &n, items), 0);
  cJSON_Delete(items[0]);
  cJSON_Delete(items[1]);
}

static void test_prompts(void) {
  char buf[512];
  aip_list l;
  const char *a = "[{\"name\":\"greet\"},{\"name\":\"a_only\"},{\"name\":\"Shared\"}]";
  const char *b = "[{\"name\":\"greet\"},{\"name\":\"b_only\"},{\"name\":\"shared\"}]";
  /* auto: only names two servers share are qualified (compared as the policy compares them) */
  merge(&l, AIP_LIST_PROMPTS, AIP_PREFIX_AUTO, NULL, a, b);
  CHECK_STR(listed(&l, buf, sizeof(buf)), "alpha__greet,a_only,alpha__Shared,beta__greet,b_only,beta__shared,");
  const aip_list_entry *e = aip_list_find(&l, "beta__greet");
  CHECK(e && e->server == 1 && strcmp(e->real, "greet") == 0);
  CHECK(aip_list_find(&l, "greet") == NULL && !aip_list_ambiguous(&l, "greet"));
  aip_list_free(&l);
  /* always */
  merge(&l, AIP_LIST_PROMPTS, AIP_PREFIX_ALWAYS, NULL, a, b);
  CHECK_STR(listed(&l, buf, sizeof(buf)),
            "alpha__greet,alpha__a_only,alpha__Shared,beta__greet,beta__b_only,beta__shared,");
  aip_list_free(&l);
  /* never: a shared name is exposed by neither, and refused as ambiguous */
  merge(&l, AIP_LIST_PROMPTS, AIP_PREFIX_NEVER, NULL, a, b);
  CHECK_STR(listed(&l, buf, sizeof(buf)), "a_only,b_only,");
  CHECK(aip_list_ambiguous(&l, "greet") && aip_list_ambiguous(&l, "SHARED"));
  aip_list_free(&l);
  /* a name that reads as another server's qualified one hides both */
  merge(&l, AIP_LIST_PROMPTS, AIP_PREFIX_AUTO, NULL, "[{\"name\":\"beta__x\"}]", "[{\"name\":\"x\"}]");
  CHECK_STR(listed(&l, buf, sizeof(buf)), "");
  CHECK(aip_list_ambiguous(&l, "beta__x") && aip_list_ambiguous(&l, "x"));
  aip_list_free(&l);
  /* a server listing a name twice: the first counts, no hiding */
  merge(&l, AIP_LIST_PROMPTS, AIP_PREFIX_AUTO, NULL, "[{\"name\":\"d\"},{\"name\":\"d\"}]", "[]");
  CHECK_STR(listed(&l, buf, sizeof(buf)), "d,");
  aip_list_free(&l);
}

static void test_resources(void) {
  char buf[1024];
  aip_list l;
  const char *a = "[{\"uri\":\"file:///srv/a.txt\",\"name\":\"a\"},{\"uri\":\"mem://Graph\",\"name\":\"g\"}]";
  const char *b = "[{\"uri\":\"file:///srv/a.txt\",\"name\":\"a\"},{\"uri\":\"mem://graph\",\"name\":\"g\"}]";
  /* URIs compare exactly: mem://Graph and mem://graph are two resources */
  merge(&l, AIP_LIST_RESOURCES, AIP_PREFIX_AUTO, NULL, a, b);
  CHECK_STR(listed(&l, buf, sizeof(buf)),
            "aip://alpha/file:///srv/a.txt,mem://Graph,aip://beta/file:///srv/a.txt,mem://graph,");
  const aip_list_entry *e = aip_list_find(&l, "aip://beta/file:///srv/a.txt");
  CHECK(e && e->server == 1 && strcmp(e->real, "file:///srv/a.txt") == 0);
  CHECK(aip_list_find_real(&l, 0, "mem://Graph") != NULL);
  aip_list_free(&l);
  /* an unqualified URI that reads as qualified is hidden (it would route elsewhere) */
  merge(&l, AIP_LIST_RESOURCES, AIP_PREFIX_AUTO, NULL, "[{\"uri\":\"aip://beta/x\"}]", "[{\"uri\":\"y://z\"}]");
  CHECK_STR(listed(&l, buf, sizeof(buf)), "y://z,");
  CHECK(aip_list_ambiguous(&l, "aip://beta/x"));
  aip_list_free(&l);
  /* a resource whose URI reaches a protected path is not listed (but still known) */
  const char *y = "apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: p}\nspec:\n"
                  "  protected_paths: [/srv/secret]\n";
  aip_policy_doc *doc = NULL;
  aip_policy *pol = NULL;
  aip_error err;
  CHECK_INT(aip_policy_doc_load_string(y, strlen(y), "<inline>", &doc, &err), 0);
  CHECK_INT(aip_policy_compile(doc, &pol, &err), 0);
  merge(&l, AIP_LIST_RESOURCES, AIP_PREFIX_AUTO, pol,
        "[{\"uri\":\"file:///srv/secret/k\"},{\"uri\":\"file:///srv/x/../secret/k2\"},{\"uri\":\"file:///srv/ok\"}]", "[]");
  CHECK_STR(listed(&l, buf, sizeof(buf)), "file:///srv/ok,");
  CHECK(aip_list_find(&l, "file:///srv/secret/k") != NULL);
  aip_list_free(&l);
  aip_policy_free(pol);
  aip_policy_doc_free(doc);
}

static void test_unqualify(void) {
  aip_list_names n = {servers, 2, AIP_PREFIX_AUTO, NULL, "bot", NULL};
  const char *rest = NULL;
  CHECK_INT(aip_list_unqualify(AIP_LIST_RESOURCES, &n, "aip://beta/file:///x", &rest), 1);
  CHECK_STR(rest, "file:///x");
  CHECK_INT(aip_list_unqualify(AIP_LIST_RESOURCES, &n, "aip://gamma/file:///x", &rest), -1);
  CHECK_INT(aip_list_unqualify(AIP_LIST_RESOURCES, &n, "aip://alpha/", &rest), -1);
  CHECK_INT(aip_list_unqualify(AIP_LIST_RESOURCES, &n, "aip://alphax/y", &rest), -1);
  CHECK_INT(aip_list_unqualify(AIP_LIST_PROMPTS, &n, "alpha__greet", &rest), 0);
  CHECK_STR(rest, "greet");
  CHECK_INT(aip_list_unqualify(AIP_LIST_PROMPTS, &n, "alpha_greet", &rest), -1);
  /* the rule is reversible: qualify then unqualify gives the server and the real name back */
  char *q = aip_list_qualify(AIP_LIST_TEMPLATES, "beta", "demo://r/{id}");
  CHECK_STR(q, "aip://beta/demo://r/{id}");
  CHECK_INT(aip_list_unqualify(AIP_LIST_TEMPLATES, &n, q, &rest), 1);
  CHECK_STR(rest, "demo://r/{id}");
  free(q);
  n.prefix = AIP_PREFIX_NEVER; /* names carry no server */
  CHECK_INT(aip_list_unqualify(AIP_LIST_RESOURCES, &n, "aip://beta/file:///x", &rest), -1);
}

static void test_templates(void) {
  CHECK(aip_uri_template_match("demo://resource/dynamic/text/{id}", "demo://resource/dynamic/text/7"));
  CHECK(!aip_uri_template_match("demo://resource/dynamic/text/{id}", "demo://resource/dynamic/text/"));
  CHECK(!aip_uri_template_match("demo://resource/dynamic/text/{id}", "demo://resource/dynamic/text/7/8"));
  CHECK(!aip_uri_template_match("demo://resource/dynamic/text/{id}", "demo://resource/dynamic/blob/7"));
  CHECK(aip_uri_template_match("file:///{+path}", "file:///a/b/c.txt"));
  CHECK(!aip_uri_template_match("file:///{+path}", "http:///a"));
  CHECK(aip_uri_template_match("gh://{owner}/{repo}", "gh://me/aip"));
  CHECK(!aip_uri_template_match("gh://{owner}/{repo}", "gh://me"));
  CHECK(aip_uri_template_match("s://x{?q,r}", "s://x?q=1&r=2"));
  CHECK(aip_uri_template_match("s://x{?q}", "s://x"));
  CHECK(aip_uri_template_match("s://p{/a,b}", "s://p/1/2"));
  CHECK(aip_uri_template_match("exact://no-vars", "exact://no-vars"));
  CHECK(!aip_uri_template_match("exact://no-vars", "exact://no-vars2"));
  CHECK(!aip_uri_template_match("broken://{x", "broken://y"));
  CHECK(!aip_uri_template_match(NULL, "x"));
}

int main(void) {
  test_prompts();
  test_resources();
  test_unqualify();
  test_templates();
  TEST_MAIN_END();
}
