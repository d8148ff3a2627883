// SDK Client -> aip serve -> @modelcontextprotocol/server-everything in streamableHttp mode (a
// `url:` upstream), kept on 127.0.0.1 by the lib/loopback.mjs preload. The upstream's real tool
// list is first read directly with the SDK's Streamable HTTP client.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

import {
  Gateway, EverythingHttpServer, gatewayTest, httpServer, newToken, listAllTools, names, stopAll, textOf,
  tcpListeners,
} from './lib/harness.mjs';

const TOKEN = newToken('everything-http');
// get-env exists upstream but is not allowed; no-such-tool is allowed but absent upstream.
const ALLOWED = ['echo', 'get-sum', 'trigger-long-running-operation', 'no-such-tool'];
const LISTED = ['echo', 'get-sum', 'trigger-long-running-operation'];

let ev;
let gw;
let upstreamNames;

before(async () => {
  ev = await EverythingHttpServer.start();
  // the real tool names, straight from the server (no gateway)
  const direct = new Client({ name: 'e2e-direct', version: '1.0.0' });
  await direct.connect(new StreamableHTTPClientTransport(new URL(ev.url)));
  upstreamNames = names(await listAllTools(direct));
  await direct.close();
  for (const n of [...LISTED, 'get-env']) assert.ok(upstreamNames.includes(n), `server-everything offers ${n}: ${upstreamNames}`);

  gw = await Gateway.start({
    servers: { everything: httpServer(ev.url, { 'X-Upstream-Auth': 's3cret' }) },
    agents: [{ name: 'evh', token: TOKEN, servers: ['everything'], policy: { allowed_tools: ALLOWED } }],
  });
});

after(() => stopAll([gw], [ev]));

const t = gatewayTest(() => gw, () => [ev]);

t('server-everything listens on 127.0.0.1 only (loopback preload)', async () => {
  const l = tcpListeners(ev.port);
  assert.ok(l.length >= 1, `a listening socket on port ${ev.port}`);
  assert.deepEqual(l, l.map(() => ({ family: 4, addr: '127.0.0.1' })), `listeners on ${ev.port}: ${JSON.stringify(l)}`);
});

t('tools/list shows exactly the allowed tools that exist upstream', async () => {
  const { client } = await gw.connect(TOKEN);
  assert.deepEqual(ALLOWED.filter((n) => upstreamNames.includes(n)).sort(), LISTED);
  const tools = await listAllTools(client);
  assert.deepEqual(names(tools), LISTED);
  const echo = tools.find((x) => x.name === 'echo');
  assert.equal(echo.inputSchema?.type, 'object');
  assert.ok(echo.inputSchema?.properties?.message, 'echo schema passes through');
});

t('echo returns "Echo: <msg>"', async () => {
  const { client } = await gw.connect(TOKEN);
  const r = await client.callTool({ name: 'echo', arguments: { message: 'hello over http' } });
  assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: hello over http' }]);
});

t('get-sum adds', async () => {
  const { client } = await gw.connect(TOKEN);
  const r = await client.callTool({ name: 'get-sum', arguments: { a: 19, b: 23 } });
  assert.ok(!r.isError, JSON.stringify(r));
  assert.match(textOf(r), /\b42\b/);
});

t('trigger-long-running-operation: progress from the upstream reaches the client, increasing', async () => {
  const { client } = await gw.connect(TOKEN);
  const seen = [];
  const r = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1.2, steps: 4 } },
    undefined, { onprogress: (p) => seen.push(p), timeout: 15000 });
  assert.ok(!r.isError, JSON.stringify(r));
  assert.match(textOf(r), /Long running operation completed\. Duration: 1\.2 seconds, Steps: 4\./);
  assert.ok(seen.length >= 1, `expected >= 1 progress notification, got ${JSON.stringify(seen)}`);
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i].progress > seen[i - 1].progress, `progress increases: ${JSON.stringify(seen)}`);
  }
  for (const p of seen) assert.equal(p.total, 4);
});

t('a tool that exists upstream but is not allowed -> -32001', async () => {
  const { client } = await gw.connect(TOKEN);
  await assert.rejects(client.callTool({ name: 'get-env', arguments: {} }), (e) => {
    assert.ok(e instanceof McpError, String(e));
    assert.equal(e.code, -32001);
    assert.deepEqual(e.data, { reason: 'Tool not in allowed_tools list', tool: 'get-env' });
    return true;
  });
});
