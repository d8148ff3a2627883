// Per-agent quotas (issue 11, item 13): one agent cannot take every session slot or every call
// slot of the gateway, and a client that stops reading a large answer does not stall the other
// sessions of its agent (which share its stdio server).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Gateway, newToken, testServer, textOf, timed, sleep } from './lib/harness.mjs';

const MiB = 1024 * 1024;

function initBody() {
  return { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'q', version: '1' } } };
}

function rawCall(g, token, sid, id, name, args, signal) {
  return fetch(g.url, {
    method: 'POST',
    headers: {
      Authorization: 'Bearer ' + token, 'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
    signal: signal || AbortSignal.timeout(60000),
  });
}

test('limits.max_sessions_per_agent: agent A fills its quota, agent B still opens sessions', async () => {
  const ta = newToken('qa'), tb = newToken('qb');
  const policy = { allowed_tools: ['echo'] };
  const g = await Gateway.start({
    servers: { t: testServer() },
    limits: { max_sessions: 10, max_sessions_per_agent: 2 },
    agents: [{ name: 'qa', token: ta, policy, servers: ['t'] }, { name: 'qb', token: tb, policy, servers: ['t'], max_sessions: 3 }],
  });
  try {
    await g.wrap(async () => {
      await g.rawSession(ta);
      await g.rawSession(ta);
      const r = await g.post(initBody(), { token: ta });
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json?.error?.code, -32603);
      assert.match(r.json?.error?.message, /Too many sessions for agent qa/);
      await g.rawSession(tb); // another agent is not affected
      const { client } = await g.connect(tb);
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: 'b' } })), 'b');
      await g.rawSession(tb); // its own quota (agents[].max_sessions: 3) overrides the default 2
      const r2 = await g.post(initBody(), { token: tb });
      assert.equal(r2.status, 503, r2.text);
      assert.match(r2.json?.error?.message, /Too many sessions for agent qb/);
      assert.equal(await g.metric('aip_refused_total{agent="qa",reason="sessions_quota"}'), 1);
      assert.equal(await g.metric('aip_refused_total{agent="qb",reason="sessions_quota"}'), 1);
    })();
  } finally { await g.stop(); }
});

test('limits.max_inflight_per_agent: calls beyond it are refused, other agents unaffected', async () => {
  const ta = newToken('ia'), tb = newToken('ib');
  const policy = { allowed_tools: ['echo', 'slow'] };
  const g = await Gateway.start({
    servers: { t: testServer() },
    limits: { max_inflight_per_agent: 2 },
    agents: [{ name: 'ia', token: ta, policy, servers: ['t'] }, { name: 'ib', token: tb, policy, servers: ['t'] }],
  });
  try {
    await g.wrap(async () => {
      const { client: a } = await g.connect(ta);
      const slow = [1, 2].map(() => a.callTool({ name: 'slow', arguments: { ms: 1500 } }, undefined, { timeout: 10000 }));
      await sleep(300);
      await assert.rejects(a.callTool({ name: 'echo', arguments: { message: 'third' } }), (e) => {
        assert.equal(e.code, -32603, String(e));
        assert.match(e.message, /Too many calls in flight for agent ia/);
        return true;
      });
      const { client: b } = await g.connect(tb);
      assert.equal(textOf(await b.callTool({ name: 'echo', arguments: { message: 'b' } })), 'b');
      assert.equal(await g.metric('aip_refused_total{agent="ia",reason="inflight_quota"}'), 1);
      assert.equal(await g.metric('aip_refused_total{agent="ib",reason="inflight_quota"}'), 0);
      await Promise.all(slow);
      assert.equal(textOf(await a.callTool({ name: 'echo', arguments: { message: 'again' } })), 'again');
    })();
  } finally { await g.stop(); }
});

test('a session that stops reading a big answer does not stall another session of its agent', async () => {
  const tok = newToken('slowrd');
  const g = await Gateway.start({
    servers: { t: testServer() },
    limits: { request_timeout: '30s' },
    agents: [{ name: 'slowrd', token: tok, policy: { allowed_tools: ['echo', 'big'] }, servers: ['t'] }],
  });
  try {
    await g.wrap(async () => {
      const sid = await g.rawSession(tok);
      const ac = new AbortController();
      const res = await rawCall(g, tok, sid, 7, 'big', { bytes: 120 * MiB }, ac.signal); // body never read
      assert.equal(res.status, 200);
      await sleep(500);
      const { client } = await g.connect(tok);
      const r = await timed(() => client.callTool({ name: 'echo', arguments: { message: 'prompt' } }, undefined, { timeout: 30000 }));
      assert.ok(!r.error, String(r.error));
      assert.equal(textOf(r.value), 'prompt');
      assert.ok(r.ms < 3000, `the other session's echo took ${r.ms.toFixed(0)} ms`);
      ac.abort();
      assert.match(g.stderr, /slowrd: streamed answer aborted/);
      assert.equal(await g.metric('aip_refused_total{agent="slowrd",reason="stream_buffer"}'), 1);
    })();
  } finally { await g.stop(); }
});
