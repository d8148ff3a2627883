// SDK Client (Streamable HTTP) -> aip serve -> the C test server as a Streamable HTTP upstream
// (`url:` servers), once with JSON replies and once with SSE replies.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';

import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import {
  Gateway, TestHttpServer, httpServer, newToken, listAllTools, names, textOf, waitFor, within, sleep,
} from './lib/harness.mjs';

// The C test server's tools: echo add slow big fail env crash notify_list_changed headers
// drop_sessions. The policy allows a subset, plus one name no server offers.
const ALLOWED = ['add', 'big', 'echo', 'fail', 'headers', 'slow', 'not_offered_anywhere'];
const LISTED = ['add', 'big', 'echo', 'fail', 'headers', 'slow'];
const UPSTREAM_SECRET = 's3cret';
const UPSTREAM_BEARER = 'Bearer upstream-credential-0xC0FFEE';

const MODES = ['json', 'sse'];
const T = {};
for (const m of MODES) {
  T[m] = newToken(`http-${m}`);
  T[`${m}2`] = newToken(`http-${m}-other`);
  T[`${m}-lc`] = newToken(`http-${m}-lc`);
}

let gw;
const ups = {};

before(async () => {
  for (const reply of MODES) {
    ups[reply] = await TestHttpServer.start({ reply, env: { AIP_TEST_NAME: `http-${reply}`, AIP_TEST_VERBOSE: '1' } });
  }
  gw = await Gateway.start({
    servers: {
      // json: only a custom header; sse: a custom header and an upstream Authorization of its own
      cj: httpServer(ups.json.url, { 'X-Upstream-Auth': UPSTREAM_SECRET }),
      cs: httpServer(ups.sse.url, { 'X-Upstream-Auth': UPSTREAM_SECRET, Authorization: UPSTREAM_BEARER }),
    },
    agents: MODES.flatMap((m) => {
      const srv = m === 'json' ? 'cj' : 'cs';
      return [
        { name: `h-${m}`, token: T[m], servers: [srv], policy: { allowed_tools: ALLOWED } },
        { name: `h-${m}-other`, token: T[`${m}2`], servers: [srv], policy: { allowed_tools: ['headers'] } },
        { name: `h-${m}-lc`, token: T[`${m}-lc`], servers: [srv], policy: { allowed_tools: ['echo', 'notify_list_changed', 'added_tool'] } },
      ];
    }),
  });
});

after(async () => {
  try {
    if (gw) await gw.stop();
  } finally {
    for (const s of Object.values(ups)) {
      const e = await s.stop();
      // the C server closes its sessions and exits 0 on SIGTERM
      assert.deepEqual(e, { code: 0, signal: null }, `${s.label} exit: ${JSON.stringify(e)}\n${s.log}`);
    }
  }
});

/** Test body wrapped so that a failure prints the gateway's and the upstreams' logs. */
const t = (name, fn) => test(name, async (ctx) => {
  try {
    await gw.wrap(fn)(ctx);
  } catch (e) {
    for (const s of Object.values(ups)) s.dumpLog(`[${ctx.name}]`);
    throw e;
  }
});

/** The HTTP request headers the upstream saw on the POST that carried a `headers` call. */
async function upstreamHeaders(client) {
  const r = await client.callTool({ name: 'headers', arguments: {} });
  assert.ok(!r.isError, JSON.stringify(r));
  return JSON.parse(textOf(r));
}

for (const mode of MODES) {
  describe(`C test server over HTTP, --reply ${mode}`, () => {
    let client;
    let transport;
    before(async () => { ({ client, transport } = await gw.connect(T[mode], { headers: { 'X-Agent-Private': 'agent-only-value' } })); });

    t('tools/list equals the policy-allowed subset of the upstream tools', async () => {
      const tools = await listAllTools(client);
      assert.deepEqual(names(tools), LISTED);
      for (const tool of tools) assert.equal(tool.inputSchema?.type, 'object', tool.name);
      assert.ok(tools.find((x) => x.name === 'add').outputSchema, 'add keeps its outputSchema');
    });

    t('echo round trip', async () => {
      const msg = `over http/${mode}: ünïcödé "quotes" \\ back\nslash`;
      const r = await client.callTool({ name: 'echo', arguments: { message: msg } });
      assert.deepEqual(r.content, [{ type: 'text', text: msg }]);
      assert.ok(!r.isError);
    });

    t('add returns structuredContent', async () => {
      const r = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
      assert.deepEqual(r.structuredContent, { sum: 5 });
      assert.equal(textOf(r), '5');
    });

    t('fail: result.isError true passes through', async () => {
      const r = await client.callTool({ name: 'fail', arguments: { message: `broken over ${mode}` } });
      assert.equal(r.isError, true);
      assert.equal(textOf(r), `broken over ${mode}`);
    });

    t('big: a 1 MiB result arrives intact', async () => {
      const r = await client.callTool({ name: 'big', arguments: { bytes: 1 << 20 } });
      const s = textOf(r);
      assert.equal(s.length, 1 << 20);
      assert.match(s, /^x+$/);
    });

    t('a policy-blocked tool never reaches the upstream (-32001)', async () => {
      await assert.rejects(client.callTool({ name: 'env', arguments: { name: 'PATH' } }), (e) => {
        assert.ok(e instanceof McpError, String(e));
        assert.equal(e.code, -32001);
        assert.deepEqual(e.data, { reason: 'Tool not in allowed_tools list', tool: 'env' });
        return true;
      });
      assert.doesNotMatch(ups[mode].log, /"name":"env"/, 'the upstream never saw the env call');
    });

    if (mode === 'sse') {
      t('slow with onprogress: progress from the upstream SSE stream reaches the client, increasing', async () => {
        const seen = [];
        const r = await client.callTool({ name: 'slow', arguments: { ms: 900, steps: 3 } }, undefined, {
          onprogress: (p) => seen.push(p),
        });
        assert.equal(textOf(r), 'slept 900ms');
        assert.ok(seen.length >= 1, `expected >= 1 progress notification, got ${JSON.stringify(seen)}`);
        for (let i = 1; i < seen.length; i++) {
          assert.ok(seen[i].progress > seen[i - 1].progress, `progress increases: ${JSON.stringify(seen)}`);
        }
        for (const p of seen) assert.equal(p.total, 3);
      });
    } else {
      t('slow: the result arrives (JSON replies carry no progress)', async () => {
        const r = await client.callTool({ name: 'slow', arguments: { ms: 300, steps: 3 } }, undefined, {
          onprogress: () => {},
        });
        assert.equal(textOf(r), 'slept 300ms');
      });
    }

    t('concurrent calls on one upstream session: a quick call overtakes a slow one', async () => {
      const order = [];
      const slow = client.callTool({ name: 'slow', arguments: { ms: 700 } }).then(() => order.push('slow'));
      await sleep(50);
      const quick = client.callTool({ name: 'echo', arguments: { message: 'q' } }).then(() => order.push('echo'));
      await Promise.all([slow, quick]);
      assert.deepEqual(order, ['echo', 'slow']);
    });

    t('configured upstream headers arrive; the agent\'s bearer token and headers do not', async () => {
      const h = await upstreamHeaders(client);
      assert.equal(h['x-upstream-auth'], UPSTREAM_SECRET, `headers seen upstream: ${JSON.stringify(h)}`);
      if (mode === 'sse') {
        // the configured Authorization replaces the agent's, it is not joined with it
        assert.equal(h.authorization, UPSTREAM_BEARER, JSON.stringify(h));
      } else {
        assert.equal(h.authorization, undefined, `no Authorization header upstream: ${JSON.stringify(h)}`);
      }
      for (const [k, v] of Object.entries(h)) {
        assert.ok(!String(v).includes(T[mode]) && !k.includes(T[mode]), `header ${k} carries the agent token: ${v}`);
        assert.ok(!String(v).includes('agent-only-value'), `header ${k} carries an agent header: ${v}`);
      }
      assert.equal(h['x-agent-private'], undefined, 'agent headers are not forwarded');
      // Streamable HTTP: the upstream's session id and the negotiated version go on later requests
      assert.match(h['mcp-session-id'] || '', /^[0-9a-f]{32}$/, JSON.stringify(h));
      assert.notEqual(h['mcp-session-id'], transport.sessionId, 'the agent\'s session id is not forwarded');
      assert.equal(h['mcp-protocol-version'], '2025-11-25', JSON.stringify(h));
    });

    t('one upstream MCP session per (agent, server): shared by the agent\'s sessions, not by other agents', async () => {
      const { client: c2 } = await gw.connect(T[mode]);
      const { client: other } = await gw.connect(T[`${mode}2`]);
      const a = (await upstreamHeaders(client))['mcp-session-id'];
      const b = (await upstreamHeaders(c2))['mcp-session-id'];
      const o = (await upstreamHeaders(other))['mcp-session-id'];
      assert.ok(a && b && o, `${a} ${b} ${o}`);
      assert.equal(a, b, 'two sessions of one agent share the upstream session');
      assert.notEqual(a, o, 'another agent has its own upstream session');
    });

    t('notifications/tools/list_changed from the upstream GET stream reaches the SDK client', async () => {
      const { client: lc, getStream } = await gw.connect(T[`${mode}-lc`]);
      let fired = 0;
      let resolveFired;
      const firedP = new Promise((r) => { resolveFired = r; });
      lc.setNotificationHandler(ToolListChangedNotificationSchema, () => { fired++; resolveFired(); });
      assert.deepEqual(names(await listAllTools(lc)), ['echo', 'notify_list_changed']);
      await within(getStream, 3000, 'client GET stream');
      const r = await lc.callTool({ name: 'notify_list_changed', arguments: { add_tool: 'added_tool' } });
      assert.equal(textOf(r), 'ok');
      await within(firedP, 3000, 'tools/list_changed notification at the client');
      assert.equal(fired, 1);
      // the gateway dropped its cached list: the tool added upstream is listed and callable
      await waitFor(async () => names(await listAllTools(lc)).includes('added_tool'), 3000, 'added_tool listed');
      assert.deepEqual(names(await listAllTools(lc)), ['added_tool', 'echo', 'notify_list_changed']);
      const e = await lc.callTool({ name: 'added_tool', arguments: { message: 'new tool' } });
      assert.equal(textOf(e), 'new tool');
    });
  });
}
