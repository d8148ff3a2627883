// What the conformance runs share: the gateway agent (token + permissive policy) and the
// client scenarios of the pinned suite.

/** The suite's client scenarios of the 2025 protocols (auth/* needs OAuth to upstreams, which
 * the gateway does not do; the 2026-07-28 and extension ones are another protocol shape). */
export const CLIENT_SCENARIOS = [
  'initialize',
  'tools_call',
  'elicitation-sep1034-client-defaults',
  'sse-retry',
  'json-schema-2020-12-preservation',
];

/** The tools the suite's servers offer in those client scenarios. */
export const CLIENT_TOOLS = [
  'add_numbers', 'test_client_elicitation_defaults', 'test_reconnection',
  'json_schema_2020_12_tool', 'json_schema_echo',
];

/** Every method a 2025-era client sends in the scenarios: the policy names each one (rather
 * than `"*"`), so the run also shows that the method rules admit all of MCP. */
const METHODS = [
  'initialize', 'notifications/initialized', 'ping',
  'tools/list', 'tools/call',
  'resources/list', 'resources/templates/list', 'resources/read',
  'resources/subscribe', 'resources/unsubscribe',
  'prompts/list', 'prompts/get', 'completion/complete', 'logging/setLevel',
  'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed',
];

/** One agent for tests/e2e/lib/harness.mjs's Gateway: bearer `token`, all `tools` allowed. */
export function gatewayAgent(token, servers, tools) {
  return {
    name: 'conformance',
    token,
    servers,
    policy: { allowed_methods: METHODS, allowed_tools: tools },
  };
}
