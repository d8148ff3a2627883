// Streamable HTTP upstreams that fail: killed and restarted on the same port, sessions lost
// (404), hanging, answering garbage or HTTP 500, never reachable. The agent must get a prompt
// JSON-RPC error, never a hang, and the gateway must go on serving everything else.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';

import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import {
  Gateway, TestHttpServer, httpServer, testServer, newToken, freePort, listAllTools, names, textOf,
  timed, waitFor, within, sleep,
} from './lib/harness.mjs';

const CALL_OPTS = { timeout: 10000 }; // a hang shows up as a slow test, not a 60 s one

/** node:test `test`, printing the gateway's and the upstreams' logs when the body fails. */
function tester(ctx) {
  return (name, fn) => test(name, async (tc) => {
    try {
      await fn(tc);
    } catch (e) {
      ctx.gw?.dumpLog(`[${tc.name}]`);
      for (const s of Object.values(ctx.ups)) s.dumpLog(`[${tc.name}]`);
      throw e;
    }
  });
}

async function teardown(ctx) {
  try {
    if (ctx.gw) await ctx.gw.stop();
  } finally {
    for (const s of Object.values(ctx.ups)) await s.stop();
  }
}

/** r (from timed()) must be a JSON-RPC error with `code`, within maxMs, message matching re. */
function assertRpcError(r, { code = -32603, maxMs, message } = {}) {
  assert.ok(r.error, `expected a JSON-RPC error, got a result: ${JSON.stringify(r.value)}`);
  assert.ok(r.error instanceof McpError, `McpError expected, got ${r.error?.constructor?.name}: ${r.error}`);
  assert.equal(r.error.code, code, `error code (message: ${r.error.message})`);
  if (message) assert.match(r.error.message, message);
  if (maxMs !== undefined) assert.ok(r.ms < maxMs, `error after ${r.ms.toFixed(0)} ms (limit ${maxMs} ms)`);
}

const call = (client, name, args = {}) => timed(() => client.callTool({ name, arguments: args }, undefined, CALL_OPTS));

async function echoOk(client, tool, msg) {
  const r = await client.callTool({ name: tool, arguments: { message: msg } }, undefined, CALL_OPTS);
  assert.ok(!r.isError, JSON.stringify(r));
  assert.equal(textOf(r), msg);
}

// ---- (a) killed, then restarted on the same port ----------------------------------------------

describe('HTTP upstream SIGKILLed, then restarted on the same port', () => {
  const ctx = { ups: {} };
  const TOKEN = newToken('killer');
  let client;
  let getStream;
  before(async () => {
    ctx.ups.mortal = await TestHttpServer.start({ reply: 'sse', env: { AIP_TEST_NAME: 'mortal', AIP_TEST_VERBOSE: '1' } });
    ctx.gw = await Gateway.start({
      // default request_timeout (60s): a prompt error must not be a timeout
      servers: { mortal: httpServer(ctx.ups.mortal.url) },
      agents: [{
        name: 'killer', token: TOKEN, servers: ['mortal'],
        policy: { allowed_tools: ['echo', 'slow', 'notify_list_changed', 'added_after_restart'] },
      }],
    });
    ({ client, getStream } = await ctx.gw.connect(TOKEN));
    assert.deepEqual(names(await listAllTools(client)), ['echo', 'notify_list_changed', 'slow']);
    await echoOk(client, 'echo', 'warm-up');
  });
  after(() => teardown(ctx));
  const t = tester(ctx);

  t('a call in flight when the server is killed, and every call after it, get -32603 within 2 s', async () => {
    const inflight = call(client, 'slow', { ms: 5000 });
    await sleep(300); // the call is at the upstream now
    const t0 = performance.now();
    await ctx.ups.mortal.kill();
    const r = await inflight;
    const sinceKill = performance.now() - t0;
    assertRpcError(r, { message: /mortal/ });
    assert.ok(sinceKill < 2000, `in-flight call failed ${sinceKill.toFixed(0)} ms after the kill (limit 2000)`);
    for (let i = 0; i < 3; i++) {
      const e = await call(client, 'echo', { message: `while down ${i}` });
      assertRpcError(e, { maxMs: 2000, message: /killer\/mortal/ });
    }
  });

  t('restarted on the same port: the gateway re-initializes and calls succeed again within 5 s', async (tc) => {
    const old = ctx.ups.mortal;
    ctx.ups.mortal = await old.restart();
    assert.equal(ctx.ups.mortal.port, old.port);
    const t0 = performance.now();
    const errors = [];
    let ok = null;
    while (performance.now() - t0 < 5000) {
      const r = await call(client, 'echo', { message: 'back again' });
      if (!r.error) {
        ok = r.value;
        break;
      }
      // in between, only prompt JSON-RPC errors (e.g. the lost session's 404), never a hang
      assertRpcError(r, { maxMs: 2000 });
      errors.push(`${r.error.code} ${r.error.message}`);
      await sleep(200);
    }
    const took = performance.now() - t0;
    tc.diagnostic(`recovered after ${took.toFixed(0)} ms; errors before: ${JSON.stringify(errors)}`);
    assert.ok(ok, `no successful call within 5 s of the restart; errors: ${JSON.stringify(errors)}`);
    assert.equal(textOf(ok), 'back again');
    assert.ok(took < 5000, `recovered after ${took.toFixed(0)} ms`);
    // the new server process has seen a fresh initialize from the gateway
    assert.match(ctx.ups.mortal.log, /"method":"initialize"/);
    for (let i = 0; i < 3; i++) await echoOk(client, 'echo', `stable ${i}`);
  });

  t('after the restart the upstream GET stream is back: list_changed reaches the client', async () => {
    let resolveFired;
    const fired = new Promise((r) => { resolveFired = r; });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolveFired());
    await within(getStream, 3000, 'client GET stream');
    const r = await client.callTool({ name: 'notify_list_changed', arguments: { add_tool: 'added_after_restart' } }, undefined, CALL_OPTS);
    assert.equal(textOf(r), 'ok');
    await within(fired, 3000, 'tools/list_changed from the restarted upstream');
    await waitFor(async () => names(await listAllTools(client)).includes('added_after_restart'), 3000, 'added tool listed');
    await echoOk(client, 'added_after_restart', 'new');
  });
});

// ---- (b) the upstream forgets its sessions ---------------------------------------------------

describe('HTTP upstream forgets its sessions (drop_sessions -> 404)', () => {
  const ctx = { ups: {} };
  const TOKEN = newToken('dropper');
  // x (HTTP) and y (stdio) offer the same tools: tool_prefix auto names them x__* and y__*
  const ALLOWED = ['x__drop_sessions', 'x__echo', 'x__headers', 'y__echo', 'y__notify_list_changed'];
  let client;
  let getStream;
  before(async () => {
    ctx.ups.x = await TestHttpServer.start({ reply: 'sse', env: { AIP_TEST_NAME: 'x', AIP_TEST_VERBOSE: '1' } });
    ctx.gw = await Gateway.start({
      servers: { x: httpServer(ctx.ups.x.url), y: testServer({ AIP_TEST_NAME: 'y' }) },
      agents: [{ name: 'dropper', token: TOKEN, servers: ['x', 'y'], policy: { allowed_tools: ALLOWED } }],
    });
    ({ client, getStream } = await ctx.gw.connect(TOKEN));
    assert.deepEqual(names(await listAllTools(client)), ALLOWED);
  });
  after(() => teardown(ctx));
  const t = tester(ctx);

  const upstreamSession = async () => {
    const r = await client.callTool({ name: 'x__headers', arguments: {} }, undefined, CALL_OPTS);
    return JSON.parse(textOf(r))['mcp-session-id'];
  };

  t('drop_sessions, then tools/list: 404 -> re-initialize -> tools/list retried, the list is complete; calls work', async () => {
    const before = await upstreamSession();
    assert.ok(before, 'an upstream session id');
    const d = await client.callTool({ name: 'x__drop_sessions', arguments: {} }, undefined, CALL_OPTS);
    assert.equal(textOf(d), 'ok');
    // The gateway caches the merged tool list: make it stale (y says list_changed) so this
    // tools/list really goes to x, with the session x no longer knows.
    let resolveFired;
    const fired = new Promise((r) => { resolveFired = r; });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolveFired());
    await within(getStream, 3000, 'client GET stream');
    assert.equal(textOf(await client.callTool({ name: 'y__notify_list_changed', arguments: {} }, undefined, CALL_OPTS)), 'ok');
    await within(fired, 3000, 'list_changed from y');
    const partial0 = await ctx.gw.metric('aip_tools_list_partial_total');

    const l = await timed(() => listAllTools(client));
    assert.ok(!l.error, `tools/list failed: ${l.error}`);
    assert.deepEqual(names(l.value), ALLOWED, 'x\'s tools are in the list: tools/list was retried after the 404');
    assert.ok(l.ms < 2000, `tools/list took ${l.ms.toFixed(0)} ms`);
    // the 404 path was taken (not a cache hit), and the retried list was complete, not partial
    assert.match(ctx.gw.stderr, /upstream dropper\/x: down \(upstream session expired \(HTTP 404\)\)/);
    assert.equal(await ctx.gw.metric('aip_tools_list_partial_total'), partial0, 'no partial list');

    await echoOk(client, 'x__echo', 'after the 404');
    const now = await upstreamSession();
    assert.ok(now && now !== before, `a new upstream session: ${before} -> ${now}`);
    await echoOk(client, 'y__echo', 'the other server is untouched');
  });

  t('drop_sessions, then tools/call: that call gets -32603 naming the 404 (not retried), the next call works', async () => {
    const d = await client.callTool({ name: 'x__drop_sessions', arguments: {} }, undefined, CALL_OPTS);
    assert.equal(textOf(d), 'ok');
    const r = await call(client, 'x__echo', { message: 'lost' });
    assertRpcError(r, { maxMs: 2000, message: /404/ });
    const again = await timed(() => echoOk(client, 'x__echo', 'found again'));
    assert.ok(!again.error, `the next call fails: ${again.error}`);
    assert.ok(again.ms < 2000, `the next call took ${again.ms.toFixed(0)} ms`);
  });
});

// ---- (c) the upstream hangs ------------------------------------------------------------------

describe('HTTP upstream hangs (AIP_TEST_HTTP_FAULT=hang), request_timeout 1s', () => {
  const ctx = { ups: {} };
  const TOKEN = newToken('hang');
  const ALLOWED = ['hang__echo', 'ok__echo', 'ok__slow'];
  let client;
  before(async () => {
    ctx.ups.hang = await TestHttpServer.start({ reply: 'sse', env: { AIP_TEST_NAME: 'hang', AIP_TEST_VERBOSE: '1', AIP_TEST_HTTP_FAULT: 'hang' } });
    ctx.ups.ok = await TestHttpServer.start({ reply: 'json', env: { AIP_TEST_NAME: 'ok' } });
    ctx.gw = await Gateway.start({
      limits: { request_timeout: '1s' },
      servers: { hang: httpServer(ctx.ups.hang.url), ok: httpServer(ctx.ups.ok.url) },
      agents: [{ name: 'hanger', token: TOKEN, servers: ['hang', 'ok'], policy: { allowed_tools: ALLOWED } }],
    });
    ({ client } = await ctx.gw.connect(TOKEN));
    // tools/list is not faulted: both servers list their tools
    assert.deepEqual(names(await listAllTools(client)), ALLOWED);
  });
  after(() => teardown(ctx));
  const t = tester(ctx);

  t('a hung tools/call gets -32603 "did not answer within 1000 ms" after ~1 s; notifications/cancelled goes upstream', async () => {
    const r = await call(client, 'hang__echo', { message: 'into the void' });
    assertRpcError(r, { maxMs: 1500, message: /upstream hanger\/hang did not answer within 1000 ms/ });
    assert.ok(r.ms >= 900, `not before the timeout: ${r.ms.toFixed(0)} ms`);
    await waitFor(() => /<- \{"jsonrpc":"2\.0","method":"notifications\/cancelled","params":\{"requestId":\d+,"reason":"timeout"\}\}/
      .test(ctx.ups.hang.log), 2000, 'notifications/cancelled at the hung upstream');
  });

  t('while calls hang, the gateway serves other calls, tools/list and /healthz at once', async () => {
    const hung = [1, 2, 3].map((i) => call(client, 'hang__echo', { message: `hung ${i}` }));
    await sleep(100);
    const e = await timed(() => echoOk(client, 'ok__echo', 'meanwhile'));
    assert.ok(!e.error, String(e.error));
    assert.ok(e.ms < 500, `a call to the other server took ${e.ms.toFixed(0)} ms`);
    const s = await timed(() => client.callTool({ name: 'ok__slow', arguments: { ms: 200 } }, undefined, CALL_OPTS));
    assert.equal(textOf(s.value), 'slept 200ms');
    const l = await timed(() => listAllTools(client));
    assert.deepEqual(names(l.value), ALLOWED);
    assert.ok(l.ms < 500, `tools/list took ${l.ms.toFixed(0)} ms`);
    const h = await ctx.gw.admin('/healthz');
    assert.equal(h.status, 200);
    for (const r of await Promise.all(hung)) assertRpcError(r, { maxMs: 1500, message: /did not answer within 1000 ms/ });
    // afterwards: a new hang times out just the same, other calls are fine
    assertRpcError(await call(client, 'hang__echo', { message: 'again' }), { maxMs: 1500, message: /did not answer/ });
    await echoOk(client, 'ok__echo', 'after');
  });
});

// ---- (d, e) garbage and HTTP 500 ------------------------------------------------------------

describe('HTTP upstream answers garbage or HTTP 500', () => {
  const ctx = { ups: {} };
  const TOKEN = newToken('bad');
  const ALLOWED = ['e500__echo', 'garbage__echo', 'ok__echo'];
  let client;
  before(async () => {
    ctx.ups.garbage = await TestHttpServer.start({ reply: 'json', env: { AIP_TEST_NAME: 'garbage', AIP_TEST_HTTP_FAULT: 'garbage' } });
    ctx.ups.e500 = await TestHttpServer.start({ reply: 'sse', env: { AIP_TEST_NAME: 'e500', AIP_TEST_HTTP_FAULT: '500' } });
    ctx.ups.ok = await TestHttpServer.start({ reply: 'sse', env: { AIP_TEST_NAME: 'ok' } });
    ctx.gw = await Gateway.start({
      // default request_timeout: these errors must come from the reply, not from a timeout
      servers: {
        garbage: httpServer(ctx.ups.garbage.url),
        e500: httpServer(ctx.ups.e500.url),
        ok: httpServer(ctx.ups.ok.url),
      },
      agents: [{ name: 'bad', token: TOKEN, servers: ['garbage', 'e500', 'ok'], policy: { allowed_tools: ALLOWED } }],
    });
    ({ client } = await ctx.gw.connect(TOKEN));
    assert.deepEqual(names(await listAllTools(client)), ALLOWED);
  });
  after(() => teardown(ctx));
  const t = tester(ctx);

  t('garbage (200 application/json "not json") -> -32603 naming the bad reply, at once; the gateway is unharmed', async () => {
    const r = await call(client, 'garbage__echo', { message: 'x' });
    assertRpcError(r, { maxMs: 1000, message: /upstream bad\/garbage/ });
    assert.match(r.error.message, /no valid JSON-RPC answer in the HTTP reply|not (valid )?JSON|invalid (JSON|reply)|bad reply/i,
      'the message says what was wrong with the reply');
    await echoOk(client, 'ok__echo', 'unharmed');
    assert.equal((await ctx.gw.admin('/healthz')).status, 200);
    assert.equal((await ctx.gw.admin('/readyz')).status, 200);
    // the same error again (no stuck state), and the server's other methods still work
    assertRpcError(await call(client, 'garbage__echo', { message: 'y' }), { maxMs: 1000, message: /bad\/garbage/ });
    assert.deepEqual(names(await listAllTools(client)), ALLOWED);
    await echoOk(client, 'ok__echo', 'still unharmed');
  });

  t('HTTP 500 -> -32603 naming HTTP status 500, at once; other servers unaffected', async () => {
    const r = await call(client, 'e500__echo', { message: 'x' });
    assertRpcError(r, { maxMs: 1000, message: /HTTP status 500/ });
    assert.match(r.error.message, /bad\/e500/);
    await echoOk(client, 'ok__echo', 'after 500');
    assertRpcError(await call(client, 'e500__echo', { message: 'y' }), { maxMs: 1000, message: /HTTP status 500/ });
    assert.equal((await ctx.gw.admin('/healthz')).status, 200);
  });
});

// ---- (f) a dead upstream beside a live one ----------------------------------------------------

describe('a dead HTTP upstream (nobody listens) beside a live one', () => {
  const ctx = { ups: {} };
  const TOKEN = newToken('half');
  // tool_prefix always: dead__echo is unambiguously the dead server's tool
  const ALLOWED = ['dead__add', 'dead__echo', 'live__add', 'live__echo'];
  const LIVE = ['live__add', 'live__echo'];
  let client;
  let deadPort;
  before(async () => {
    ctx.ups.live = await TestHttpServer.start({ reply: 'sse', env: { AIP_TEST_NAME: 'live' } });
    deadPort = await freePort();
    ctx.gw = await Gateway.start({
      // default request_timeout (60s): "fast" must not mean "timed out"
      servers: { live: httpServer(ctx.ups.live.url), dead: httpServer(`http://127.0.0.1:${deadPort}/mcp`) },
      agents: [{ name: 'half', token: TOKEN, servers: ['live', 'dead'], tool_prefix: 'always', policy: { allowed_tools: ALLOWED } }],
    });
    ({ client } = await ctx.gw.connect(TOKEN));
  });
  after(() => teardown(ctx));
  const t = tester(ctx);

  t('tools/list returns the live server\'s tools (a partial list) in < 2 s; /metrics counts it', async () => {
    const p0 = await ctx.gw.metric('aip_tools_list_partial_total');
    const l = await timed(() => listAllTools(client));
    assert.ok(!l.error, `tools/list failed: ${l.error}`);
    assert.deepEqual(names(l.value), LIVE);
    assert.ok(l.ms < 2000, `tools/list took ${l.ms.toFixed(0)} ms`);
    assert.ok(await ctx.gw.metric('aip_tools_list_partial_total') >= p0 + 1, 'aip_tools_list_partial_total went up');
    assert.match(ctx.gw.stderr, /upstream half\/dead: tools\/list failed/);
  });

  t('calls to the live server work, promptly', async () => {
    const e = await timed(() => echoOk(client, 'live__echo', 'alive'));
    assert.ok(!e.error, String(e.error));
    assert.ok(e.ms < 2000, `live__echo took ${e.ms.toFixed(0)} ms`);
    const a = await client.callTool({ name: 'live__add', arguments: { a: 40, b: 2 } }, undefined, CALL_OPTS);
    assert.deepEqual(a.structuredContent, { sum: 42 });
  });

  t('a call routed to the dead server (dead__echo) gets -32603 in < 2 s', async () => {
    const r = await call(client, 'dead__echo', { message: 'anyone?' });
    assertRpcError(r, { code: -32603, maxMs: 2000 });
  });

  t('the dead server never slows the agent down: 8 rounds of tools/list + a live call, each < 2 s', async () => {
    for (let i = 0; i < 8; i++) {
      const l = await timed(() => listAllTools(client));
      assert.ok(!l.error, `round ${i}: tools/list failed: ${l.error}`);
      assert.deepEqual(names(l.value), LIVE, `round ${i}`);
      assert.ok(l.ms < 2000, `round ${i}: tools/list took ${l.ms.toFixed(0)} ms`);
      const e = await timed(() => echoOk(client, 'live__echo', `round ${i}`));
      assert.ok(!e.error, `round ${i}: ${e.error}`);
      assert.ok(e.ms < 2000, `round ${i}: live__echo took ${e.ms.toFixed(0)} ms`);
    }
  });

  t('/readyz and /healthz stay 200; /metrics shows aip_tools_list_partial_total >= 1', async () => {
    assert.equal((await ctx.gw.admin('/readyz')).status, 200);
    assert.equal((await ctx.gw.admin('/healthz')).status, 200);
    const n = await ctx.gw.metric('aip_tools_list_partial_total');
    assert.ok(n >= 1, `aip_tools_list_partial_total = ${n}`);
  });
});
