// Sessions and the gateway ending while calls are in flight: every pending call is answered and
// the gateway survives (DELETE) or exits 0 (SIGTERM). Each case gets its own gateway, so a
// crash here cannot hide other results.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';

import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { Gateway, testServer, newToken, textOf, timed, sleep } from './lib/harness.mjs';

const TOKEN = newToken('life');
const V = '2025-11-25';
const start = () => Gateway.start({
  servers: { tools: testServer({ AIP_TEST_NAME: 'life' }) },
  extra: { shutdown_grace: '1s' }, // SIGTERM drains for 1 s, then cuts what is left
  agents: [{ name: 'life', token: TOKEN, servers: ['tools'], policy: { allowed_tools: ['echo', 'slow'] } }],
});
const hdrs = (sid) => ({
  'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
  'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V,
});

describe('DELETE of a session with a call in flight', () => {
  let gw;
  before(async () => { gw = await start(); });
  after(async () => { if (gw) await gw.stop(); });

  test('the call is answered with an error, the upstream\'s late answer is dropped, the gateway keeps serving', (ctx) => gw.wrap(async () => {
    const sid = await gw.rawSession(TOKEN);
    const call = gw.raw({
      token: TOKEN, headers: hdrs(sid),
      body: JSON.stringify({ jsonrpc: '2.0', id: 51, method: 'tools/call', params: { name: 'slow', arguments: { ms: 400 } } }),
    });
    await sleep(100);
    const d = await gw.raw({ method: 'DELETE', token: TOKEN, headers: { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V } });
    assert.equal(d.status, 200);
    const r = await call;
    assert.equal(r.status, 200);
    // wait past the upstream's own answer (400 ms)
    await sleep(700);
    assert.equal(gw.proc.signalCode, null, `gateway killed by ${gw.proc.signalCode}`);
    assert.equal(gw.proc.exitCode, null, 'gateway still running');
    const { client } = await gw.connect(TOKEN);
    const e = await client.callTool({ name: 'echo', arguments: { message: 'alive' } });
    assert.equal(textOf(e), 'alive');
  })(ctx));
});

describe('SIGTERM with a call in flight', () => {
  let gw;
  before(async () => { gw = await start(); });
  after(() => { if (gw && gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill('SIGKILL'); });

  test('a call longer than shutdown_grace gets an error when the grace ends; exit 0 within 5 s', (ctx) => gw.wrap(async () => {
    const { client } = await gw.connect(TOKEN);
    await client.callTool({ name: 'echo', arguments: { message: 'warm-up' } });
    const call = timed(() => client.callTool({ name: 'slow', arguments: { ms: 20000 } }, undefined, { timeout: 30000 }));
    await sleep(300);
    gw.clients = []; // keep the client connected: the gateway itself must end the call
    const stopping = gw.stop();
    stopping.catch(() => {}); // awaited below
    const r = await call;
    assert.ok(r.error, 'the in-flight call fails');
    assert.ok(r.ms > 1000 && r.ms < 5000, `when the 1 s grace ended (${r.ms.toFixed(0)} ms)`);
    // sessions are answered on shutdown (a JSON-RPC error), not just cut off
    assert.ok(r.error instanceof McpError, `a JSON-RPC error, got: ${r.error}`);
    await stopping; // asserts exit code 0 within 5 s
    await client.close();
  })(ctx));
});
