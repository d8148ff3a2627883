// SDK Client -> aip serve -> @modelcontextprotocol/server-everything (the reference server) over
// stdio. The upstream's real tool list is first read directly with the SDK's stdio client.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { Gateway, newToken, listAllTools, names, textOf, EVERYTHING_JS } from './lib/harness.mjs';

const TOKEN = newToken('everything');
// get-env is present upstream but not allowed; no-such-tool is allowed but absent upstream.
const ALLOWED = ['echo', 'get-sum', 'no-such-tool'];

let gw;
let upstreamNames;

before(async () => {
  // the real tool names, straight from the server (no gateway)
  const direct = new Client({ name: 'e2e-direct', version: '1.0.0' });
  await direct.connect(new StdioClientTransport({
    command: process.execPath, args: [EVERYTHING_JS, 'stdio'], stderr: 'ignore',
  }));
  upstreamNames = names(await listAllTools(direct));
  await direct.close();
  assert.ok(upstreamNames.includes('echo') && upstreamNames.includes('get-sum') && upstreamNames.includes('get-env'),
    `server-everything tools: ${upstreamNames}`);

  gw = await Gateway.start({
    servers: { everything: { command: [process.execPath, EVERYTHING_JS, 'stdio'] } },
    agents: [{ name: 'ev', token: TOKEN, servers: ['everything'], policy: { allowed_tools: ALLOWED } }],
  });
});

after(async () => { if (gw) await gw.stop(); });

const t = (name, fn) => test(name, (ctx) => gw.wrap(fn)(ctx));

t('tools/list shows exactly the allowed tools that exist upstream', async () => {
  const { client } = await gw.connect(TOKEN);
  const want = ALLOWED.filter((n) => upstreamNames.includes(n)).sort();
  assert.deepEqual(want, ['echo', 'get-sum']);
  const tools = await listAllTools(client);
  assert.deepEqual(names(tools), want);
  const echo = tools.find((x) => x.name === 'echo');
  assert.equal(echo.inputSchema?.type, 'object');
  assert.ok(echo.inputSchema?.properties?.message, 'echo schema passes through');
});

t('echo returns "Echo: <msg>"', async () => {
  const { client } = await gw.connect(TOKEN);
  const r = await client.callTool({ name: 'echo', arguments: { message: 'hello from e2e' } });
  assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: hello from e2e' }]);
});

t('get-sum adds', async () => {
  const { client } = await gw.connect(TOKEN);
  const r = await client.callTool({ name: 'get-sum', arguments: { a: 19, b: 23 } });
  assert.ok(!r.isError, JSON.stringify(r));
  assert.match(textOf(r), /\b42\b/);
});

t('a tool that exists upstream but is not allowed -> -32001', async () => {
  const { client } = await gw.connect(TOKEN);
  await assert.rejects(client.callTool({ name: 'get-env', arguments: {} }), (e) => {
    assert.ok(e instanceof McpError, String(e));
    assert.equal(e.code, -32001);
    assert.match(e.message, /Forbidden/);
    assert.deepEqual(e.data, { reason: 'Tool not in allowed_tools list', tool: 'get-env' });
    return true;
  });
});
