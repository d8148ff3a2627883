// An upstream that dies (crash tool, killed from outside) or hangs (request_timeout): the client
// gets a JSON-RPC error quickly and the gateway restarts the server for the next call.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';

import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { Gateway, testServer, newToken, textOf, timed, childrenOf, isAlive, waitFor, sleep, TEST_SERVER } from './lib/harness.mjs';

const TOKEN = newToken('dier');
const POLICY = { allowed_tools: ['echo', 'slow', 'crash'] };

/** The gateway's live aip-test-server children. */
function upstreamPids(gw) {
  return childrenOf(gw.pid).filter((c) => c.cmdline[0] === TEST_SERVER && c.state !== 'Z').map((c) => c.pid);
}

async function echoOk(client, msg) {
  const r = await client.callTool({ name: 'echo', arguments: { message: msg } }, undefined, { timeout: 10000 });
  assert.equal(textOf(r), msg);
}

describe('upstream dies', () => {
  let gw;
  let client;
  before(async () => {
    gw = await Gateway.start({
      servers: { tools: testServer({ AIP_TEST_NAME: 'mortal' }) },
      agents: [{ name: 'dier', token: TOKEN, servers: ['tools'], policy: POLICY }],
    });
    ({ client } = await gw.connect(TOKEN));
    await echoOk(client, 'warm-up');
  });
  after(async () => { if (gw) await gw.stop(); });
  const t = (name, fn) => test(name, (ctx) => gw.wrap(fn)(ctx));

  t('crash (the server exits mid-call) -> JSON-RPC error within 2 s, next call restarts it', async () => {
    const before = upstreamPids(gw);
    assert.equal(before.length, 1, `one upstream child: ${JSON.stringify(childrenOf(gw.pid))}`);
    const r = await timed(() => client.callTool({ name: 'crash', arguments: {} }, undefined, { timeout: 10000 }));
    assert.ok(r.error, `crash must fail, got ${JSON.stringify(r.value)}`);
    assert.ok(r.error instanceof McpError, `McpError, got ${r.error}`);
    assert.ok(r.ms < 2000, `error after ${r.ms.toFixed(0)} ms (limit 2000)`);
    assert.ok(r.error.code < 0 && r.error.code !== -32001, `an upstream error, not a policy error: ${r.error.code} ${r.error.message}`);
    await waitFor(() => !isAlive(before[0]), 2000, 'old child gone');
    await echoOk(client, 'after crash');
    const after = upstreamPids(gw);
    assert.equal(after.length, 1);
    assert.notEqual(after[0], before[0], 'a new child process');
  });

  t('slow call, child killed from outside -> error within 2 s, next call OK', async () => {
    const [pid] = upstreamPids(gw);
    assert.ok(pid, 'an upstream child is running');
    const call = timed(() => client.callTool({ name: 'slow', arguments: { ms: 5000 } }, undefined, { timeout: 10000 }));
    await sleep(300); // the call is at the upstream now
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    const r = await call;
    const sinceKill = performance.now() - t0;
    assert.ok(r.error, `slow must fail, got ${JSON.stringify(r.value)}`);
    assert.ok(r.error instanceof McpError, `McpError, got ${r.error}`);
    assert.ok(sinceKill < 2000, `error ${sinceKill.toFixed(0)} ms after the kill (limit 2000)`);
    await echoOk(client, 'after kill');
    const [npid] = upstreamPids(gw);
    assert.ok(npid && npid !== pid, 'restarted as a new process');
  });

  t('two sessions of one agent: a crash fails only the in-flight calls, both sessions go on', async () => {
    const { client: other } = await gw.connect(TOKEN);
    const slow = timed(() => other.callTool({ name: 'slow', arguments: { ms: 3000 } }, undefined, { timeout: 10000 }));
    await sleep(200);
    const crash = await timed(() => client.callTool({ name: 'crash', arguments: {} }, undefined, { timeout: 10000 }));
    assert.ok(crash.error);
    const s = await slow;
    assert.ok(s.error, 'the call in flight on the dead server fails too');
    assert.ok(s.ms < 2500, `and promptly (${s.ms.toFixed(0)} ms)`);
    await echoOk(client, 'one');
    await echoOk(other, 'two');
  });
});

describe('request_timeout', () => {
  let gw;
  let client;
  before(async () => {
    gw = await Gateway.start({
      limits: { request_timeout: '1s' },
      servers: { tools: testServer({ AIP_TEST_NAME: 'sleepy' }) },
      agents: [{ name: 'dier', token: TOKEN, servers: ['tools'], policy: POLICY }],
    });
    ({ client } = await gw.connect(TOKEN));
    await echoOk(client, 'warm-up');
  });
  after(async () => { if (gw) await gw.stop(); });
  const t = (name, fn) => test(name, (ctx) => gw.wrap(fn)(ctx));

  t('slow 3000 ms with request_timeout 1s -> error after ~1 s, gateway still serves', async () => {
    const [pid] = upstreamPids(gw);
    const r = await timed(() => client.callTool({ name: 'slow', arguments: { ms: 3000 } }, undefined, { timeout: 10000 }));
    assert.ok(r.error, `must time out, got ${JSON.stringify(r.value)}`);
    assert.ok(r.error instanceof McpError, `McpError, got ${r.error}`);
    assert.ok(r.ms >= 900, `not before the timeout: ${r.ms.toFixed(0)} ms`);
    assert.ok(r.ms < 1500, `error after ${r.ms.toFixed(0)} ms (limit 1500)`);
    await echoOk(client, 'after timeout');
    // a timeout is not a crash: the same upstream process serves on
    assert.deepEqual(upstreamPids(gw), [pid]);
  });

  t('a call under the timeout is unaffected', async () => {
    const r = await client.callTool({ name: 'slow', arguments: { ms: 300 } }, undefined, { timeout: 10000 });
    assert.equal(textOf(r), 'slept 300ms');
  });
});
