#!/usr/bin/env node
// The client of the suite's client scenarios (`conformance client --command "node client.mjs
// MODE"`; the suite appends its server's URL and names the scenario in
// MCP_CONFORMANCE_SCENARIO).
//   --gateway  starts `aip serve` with that URL as its one HTTP upstream and drives the gateway
//              with an SDK client: what the suite sees is the gateway's upstream client
//   --direct   the same SDK client straight to the URL (the reference column of the table)
// Exits 0 when every step worked; the suite judges from what its server saw.
import { Gateway, newToken } from '../e2e/lib/harness.mjs';
import { Client, StreamableHTTPClientTransport, types } from './sdk.mjs';
import { CLIENT_TOOLS, gatewayAgent } from './scenarios.mjs';

const [mode, url] = process.argv.slice(2);
const scenario = process.env.MCP_CONFORMANCE_SCENARIO;
if (!['--direct', '--gateway'].includes(mode) || !url || !scenario) {
  process.stderr.write('usage: MCP_CONFORMANCE_SCENARIO=S client.mjs --direct|--gateway URL\n');
  process.exit(2);
}

/** What the client does in each scenario, once connected. */
async function drive(client) {
  const { tools } = await client.listTools();
  const has = (n) => tools.some((t) => t.name === n);
  switch (scenario) {
    case 'initialize':
      break;
    case 'tools_call':
      await client.callTool({ name: 'add_numbers', arguments: { a: 2, b: 3 } });
      break;
    case 'elicitation-sep1034-client-defaults':
      await client.callTool({ name: 'test_client_elicitation_defaults', arguments: {} });
      break;
    case 'sse-retry':
      await client.callTool({ name: 'test_reconnection', arguments: {} });
      break;
    case 'json-schema-2020-12-preservation': {
      const focal = tools.find((t) => t.name === 'json_schema_2020_12_tool');
      if (!focal || !has('json_schema_echo')) throw new Error(`tools missing: ${tools.map((t) => t.name)}`);
      await client.callTool({ name: 'json_schema_echo', arguments: { schema: focal.inputSchema } });
      break;
    }
    default:
      throw new Error(`no steps for scenario ${scenario}`);
  }
}

async function connect(target, headers = {}) {
  // elicitation with applyDefaults: the SDK fills in the schema's defaults the user left out
  const client = new Client({ name: 'aip-conformance-client', version: '1.0.0' },
    { capabilities: { elicitation: { form: { applyDefaults: true } } } });
  client.setRequestHandler(types.ElicitRequestSchema, () => ({ action: 'accept', content: {} }));
  const transport = new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
  await client.connect(transport);
  return { client, transport };
}

async function main() {
  // the suite names its server http://localhost:PORT; it listens on 127.0.0.1 only (run.mjs
  // preloads tests/e2e/lib/loopback.mjs), and the gateway takes http://HOST:PORT/PATH (two of
  // the suite's servers are at a bare origin: the URL class adds the "/")
  const upstream = new URL(url);
  if (upstream.hostname === 'localhost') upstream.hostname = '127.0.0.1';
  if (mode === '--direct') {
    const { client, transport } = await connect(upstream.href);
    try { await drive(client); } finally { await transport.terminateSession().catch(() => {}); await client.close(); }
    return;
  }
  const token = newToken('conformance-client');
  const gw = await Gateway.start({
    servers: { suite: { url: upstream.href } },
    agents: [gatewayAgent(token, ['suite'], CLIENT_TOOLS)],
  });
  try {
    const { client } = await connect(gw.url, { Authorization: `Bearer ${token}` });
    try { await drive(client); } finally { await client.close(); }
  } catch (e) {
    gw.dumpLog(`[${scenario}]`);
    throw e;
  } finally {
    await gw.stop();
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`client.mjs (${scenario}, ${mode}): ${e.stack || e}\n`);
  process.exit(1);
});
