// SDK Client (@modelcontextprotocol/sdk 1.32.2, Streamable HTTP) -> aip serve -> the C test
// MCP server over stdio.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';

import { McpError, ToolListChangedNotificationSchema, LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  Gateway, testServer, newToken, listAllTools, names, textOf, parseMaybeSse, waitFor, sleep, within,
} from './lib/harness.mjs';

const T = {
  builder: newToken('builder'),
  reviewer: newToken('reviewer'),
  lister: newToken('lister'),
  pauto: newToken('pauto'),
  palways: newToken('palways'),
  pnever: newToken('pnever'),
};

// Every tool of the C test server, and those the builder's policy allows.
const ALL_TOOLS = ['add', 'big', 'crash', 'echo', 'env', 'fail', 'notify_list_changed', 'slow'];
const BUILDER_TOOLS = ['add', 'big', 'echo', 'fail', 'slow'];
const REVIEWER_TOOLS = ['echo', 'env'];

let gw;

before(async () => {
  gw = await Gateway.start({
    // a secret in the gateway's own environment must not leak into upstream processes
    env: { AIP_E2E_GATEWAY_SECRET: 'do-not-leak' },
    servers: {
      // page size 2: the gateway has to follow the upstream's nextCursor (8 tools = 4 pages)
      tools: testServer({ AIP_TEST_NAME: 'tools', AIP_TEST_PAGE_SIZE: '2', AIP_TEST_VERBOSE: '1' }),
      alpha: testServer({
        AIP_TEST_NAME: 'alpha', AIP_TEST_EXTRA_TOOLS: 'shared,only_alpha',
        SERVER_TAG: 'alpha-tag', AIP_TEST_VERBOSE: '1',
      }),
      beta: testServer({
        AIP_TEST_NAME: 'beta', AIP_TEST_EXTRA_TOOLS: 'shared,only_beta',
        SERVER_TAG: 'beta-tag', AIP_TEST_VERBOSE: '1',
      }),
    },
    agents: [
      {
        name: 'builder', token: T.builder, servers: ['tools'],
        policy: { allowed_tools: BUILDER_TOOLS, tool_rules: [{ tool: 'crash', action: 'block' }] },
      },
      {
        name: 'reviewer', token: T.reviewer, servers: ['tools'],
        policy: { allowed_tools: REVIEWER_TOOLS, denied_tools: ['add'] },
      },
      {
        name: 'lister', token: T.lister, servers: ['tools'],
        policy: { allowed_tools: ['echo', 'notify_list_changed', 'added_tool'] },
      },
      {
        name: 'pauto', token: T.pauto, servers: ['alpha', 'beta'], tool_prefix: 'auto',
        policy: {
          allowed_tools: ['alpha__shared', 'beta__shared', 'alpha__env', 'beta__env',
            'only_alpha', 'only_beta', 'shared', 'env', 'alpha__only_alpha'],
        },
      },
      {
        name: 'palways', token: T.palways, servers: ['alpha', 'beta'], tool_prefix: 'always',
        policy: {
          allowed_tools: ['alpha__env', 'beta__env', 'alpha__only_alpha', 'beta__only_beta',
            'alpha__shared', 'only_alpha', 'env'],
        },
      },
      {
        name: 'pnever', token: T.pnever, servers: ['alpha', 'beta'], tool_prefix: 'never',
        policy: {
          allowed_tools: ['env', 'shared', 'only_alpha', 'only_beta', 'alpha__env', 'beta__env'],
        },
      },
    ],
  });
});

after(async () => { if (gw) await gw.stop(); });

const t = (name, fn) => test(name, (ctx) => gw.wrap(fn)(ctx));

describe('session and tools/list', () => {
  t('negotiates the client\'s protocol version 2025-11-25 and names itself', async () => {
    const { client, transport } = await gw.connect(T.builder);
    assert.equal(LATEST_PROTOCOL_VERSION, '2025-11-25');
    assert.equal(transport.protocolVersion, '2025-11-25');
    assert.ok(transport.sessionId && /^[\x21-\x7e]+$/.test(transport.sessionId),
      `session id is visible ASCII: ${transport.sessionId}`);
    const info = client.getServerVersion();
    assert.equal(typeof info?.name, 'string');
    assert.equal(info.name, 'aip-gateway');
    assert.ok(client.getServerCapabilities()?.tools, 'tools capability advertised');
    await client.close();
  });

  t('raw initialize: 2025-06-18 and 2025-03-26 are echoed, an unknown version gets 2025-11-25', async () => {
    for (const [asked, want] of [['2025-06-18', '2025-06-18'], ['2025-03-26', '2025-03-26'], ['2099-01-01', '2025-11-25']]) {
      const r = await gw.post({
        jsonrpc: '2.0', id: 7, method: 'initialize',
        params: { protocolVersion: asked, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      }, { token: T.builder });
      assert.equal(r.status, 200, r.text);
      const body = parseMaybeSse(r);
      assert.equal(body.id, 7);
      assert.equal(body.result.protocolVersion, want, `asked ${asked}`);
      const sid = r.headers.get('mcp-session-id');
      const d = await gw.raw({ method: 'DELETE', token: T.builder, headers: { 'Mcp-Session-Id': sid } });
      assert.equal(d.status, 200);
    }
  });

  t('paginated upstream tools/list equals exactly the policy\'s allowed subset', async () => {
    const { client } = await gw.connect(T.builder);
    const tools = await listAllTools(client);
    assert.deepEqual(names(tools), BUILDER_TOOLS);
    // no duplicates, and each tool keeps its schema
    assert.equal(new Set(tools.map((x) => x.name)).size, tools.length);
    for (const tool of tools) assert.equal(tool.inputSchema?.type, 'object', tool.name);
    const add = tools.find((x) => x.name === 'add');
    assert.ok(add.outputSchema, 'add keeps its outputSchema');
    for (const hidden of ALL_TOOLS.filter((n) => !BUILDER_TOOLS.includes(n))) {
      assert.ok(!names(tools).includes(hidden), `${hidden} must not be listed`);
    }
  });

  t('two agents with different policies see different tool lists', async () => {
    const { client: b } = await gw.connect(T.builder);
    const { client: r } = await gw.connect(T.reviewer);
    assert.deepEqual(names(await listAllTools(b)), BUILDER_TOOLS);
    assert.deepEqual(names(await listAllTools(r)), REVIEWER_TOOLS);
  });
});

describe('tools/call', () => {
  let client;
  before(async () => { ({ client } = await gw.connect(T.builder)); });

  t('echo round trip', async () => {
    const msg = 'hello through the gateway — ünïcödé "quotes" \\ back\nslash';
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
    const r = await client.callTool({ name: 'fail', arguments: { message: 'it broke' } });
    assert.equal(r.isError, true);
    assert.equal(textOf(r), 'it broke');
  });

  t('big: a 1 MiB result arrives intact', async () => {
    const r = await client.callTool({ name: 'big', arguments: { bytes: 1 << 20 } });
    const s = textOf(r);
    assert.equal(s.length, 1 << 20);
    assert.match(s, /^x+$/);
  });

  t('slow with onprogress: progress notifications arrive, increasing', async () => {
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

  t('concurrent calls: a quick call overtakes a slow one', async () => {
    const order = [];
    const slow = client.callTool({ name: 'slow', arguments: { ms: 800 } }).then(() => order.push('slow'));
    await sleep(50);
    const quick = client.callTool({ name: 'echo', arguments: { message: 'q' } }).then(() => order.push('echo'));
    await Promise.all([slow, quick]);
    assert.deepEqual(order, ['echo', 'slow']);
  });

  t('two sessions using the same progress token each see only their own progress', async () => {
    // fresh clients number their requests alike, so both use the same progressToken
    const { client: c1 } = await gw.connect(T.builder);
    const { client: c2 } = await gw.connect(T.builder);
    const seen1 = [];
    const seen2 = [];
    const [r1, r2] = await Promise.all([
      c1.callTool({ name: 'slow', arguments: { ms: 600, steps: 3 } }, undefined, { onprogress: (p) => seen1.push(p) }),
      c2.callTool({ name: 'slow', arguments: { ms: 600, steps: 3 } }, undefined, { onprogress: (p) => seen2.push(p) }),
    ]);
    assert.equal(textOf(r1), 'slept 600ms');
    assert.equal(textOf(r2), 'slept 600ms');
    for (const seen of [seen1, seen2]) {
      assert.ok(seen.length >= 1 && seen.length <= 3, `1..3 notifications: ${JSON.stringify(seen)}`);
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i].progress > seen[i - 1].progress, JSON.stringify(seen));
    }
  });

  t('an aborted call sends notifications/cancelled upstream; the session goes on', async () => {
    const ac = new AbortController();
    const call = client.callTool({ name: 'slow', arguments: { ms: 5000, steps: 1 } }, undefined, { signal: ac.signal });
    await sleep(200);
    ac.abort('test abort');
    await assert.rejects(call);
    await waitFor(() => /upstream builder\/tools stderr: \[tools\] <- \{"jsonrpc":"2.0","method":"notifications\/cancelled"/.test(gw.stderr),
      2000, 'notifications/cancelled at the upstream');
    const r = await client.callTool({ name: 'echo', arguments: { message: 'after abort' } });
    assert.equal(textOf(r), 'after abort');
  });

  t('upstream processes do not inherit the gateway\'s environment', async () => {
    const { client: rev } = await gw.connect(T.reviewer);
    const r = await rev.callTool({ name: 'env', arguments: { name: 'AIP_E2E_GATEWAY_SECRET' } });
    assert.equal(textOf(r), '');
    const n = await rev.callTool({ name: 'env', arguments: { name: 'AIP_TEST_PAGE_SIZE' } });
    assert.equal(textOf(n), '2', 'the configured env is passed');
  });

  t('a tool outside allowed_tools -> McpError -32001 Forbidden with reason and tool', async () => {
    await assert.rejects(
      client.callTool({ name: 'env', arguments: { name: 'PATH' } }),
      (e) => {
        assert.ok(e instanceof McpError, `McpError, got ${e}`);
        assert.equal(e.code, -32001);
        assert.match(e.message, /Forbidden/);
        assert.deepEqual(e.data, { reason: 'Tool not in allowed_tools list', tool: 'env' });
        return true;
      });
  });

  t('a tool blocked by tool_rules (crash) -> -32001, and the upstream was not called', async () => {
    await assert.rejects(
      client.callTool({ name: 'crash', arguments: {} }),
      (e) => {
        assert.equal(e.code, -32001);
        assert.match(e.message, /Forbidden/);
        assert.equal(e.data?.tool, 'crash');
        return true;
      });
    // had crash reached the upstream, this call would see a restart or an error
    const r = await client.callTool({ name: 'echo', arguments: { message: 'still here' } });
    assert.equal(textOf(r), 'still here');
    assert.doesNotMatch(gw.stderr, /upstream builder\/tools: down/);
  });

  t('one agent\'s blocked call is another agent\'s allowed call', async () => {
    const { client: rev } = await gw.connect(T.reviewer);
    // env: blocked for builder (above), allowed for reviewer
    const r = await rev.callTool({ name: 'env', arguments: { name: 'AIP_TEST_NAME' } });
    assert.equal(textOf(r), 'tools');
    // add: allowed for builder, denied for reviewer
    const ok = await client.callTool({ name: 'add', arguments: { a: 40, b: 2 } });
    assert.deepEqual(ok.structuredContent, { sum: 42 });
    await assert.rejects(rev.callTool({ name: 'add', arguments: { a: 1, b: 1 } }), (e) => {
      assert.equal(e.code, -32001);
      assert.match(e.message, /Forbidden/);
      assert.equal(e.data?.tool, 'add');
      return true;
    });
  });

  t('a tool the policy allows but no server offers -> JSON-RPC error, not a hang', async () => {
    const { client: rev } = await gw.connect(T.pauto);
    // `shared` is allowed by name, but with tool_prefix auto it only exists as <server>__shared
    await assert.rejects(rev.callTool({ name: 'shared', arguments: { message: 'x' } }), (e) => {
      assert.ok(e instanceof McpError);
      assert.equal(e.code, -32602);
      return true;
    });
  });
});

describe('authentication', () => {
  t('a wrong token: SDK connect fails with StreamableHTTPError 401', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(gw.url), {
      requestInit: { headers: { Authorization: 'Bearer not-a-valid-token' } },
    });
    const client = new Client({ name: 'bad', version: '1' });
    client.onerror = () => {};
    await assert.rejects(client.connect(transport), (e) => {
      assert.ok(e instanceof StreamableHTTPError, `StreamableHTTPError, got ${e?.constructor?.name}: ${e}`);
      assert.equal(e.code, 401);
      return true;
    });
  });

  t('a wrong token: raw 401 with WWW-Authenticate: Bearer', async () => {
    const r = await gw.post({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }, { token: 'wrong' });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') || '', /^Bearer\b/);
    assert.equal(r.headers.get('mcp-session-id'), null);
  });
});

describe('notifications/tools/list_changed', () => {
  t('upstream list_changed reaches the SDK client on the GET stream, and the list is refreshed', async () => {
    const { client, getStream } = await gw.connect(T.lister);
    let fired = 0;
    let resolveFired;
    const firedP = new Promise((r) => { resolveFired = r; });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => { fired++; resolveFired(); });
    assert.deepEqual(names(await listAllTools(client)), ['echo', 'notify_list_changed']);
    // the SDK opens the GET stream in the background after notifications/initialized
    await within(getStream, 3000, 'GET stream');
    const r = await client.callTool({ name: 'notify_list_changed', arguments: { add_tool: 'added_tool' } });
    assert.equal(textOf(r), 'ok');
    await within(firedP, 3000, 'tools/list_changed notification');
    assert.equal(fired, 1);
    // the gateway's cached list was invalidated: the new (allowed) tool is visible and callable
    await waitFor(async () => names(await listAllTools(client)).includes('added_tool'), 3000, 'added_tool listed');
    assert.deepEqual(names(await listAllTools(client)), ['added_tool', 'echo', 'notify_list_changed']);
    const e = await client.callTool({ name: 'added_tool', arguments: { message: 'new' } });
    assert.equal(textOf(e), 'new');
  });
});

describe('tool_prefix with two servers sharing tool names', () => {
  const tag = async (client, tool) => textOf(await client.callTool({ name: tool, arguments: { name: 'SERVER_TAG' } }));

  t('auto: shared names become <server>__<tool>, unique names stay bare, each routes to its server', async () => {
    const { client } = await gw.connect(T.pauto);
    const listed = names(await listAllTools(client));
    assert.deepEqual(listed, ['alpha__env', 'alpha__shared', 'beta__env', 'beta__shared', 'only_alpha', 'only_beta']);
    assert.equal(await tag(client, 'alpha__env'), 'alpha-tag');
    assert.equal(await tag(client, 'beta__env'), 'beta-tag');
    // the shared echo-like tool: the upstream that got the call traces it on stderr (verbose)
    for (const srv of ['alpha', 'beta']) {
      const marker = `route-${srv}-${Date.now()}`;
      const r = await client.callTool({ name: `${srv}__shared`, arguments: { message: marker } });
      assert.equal(textOf(r), marker);
      const other = srv === 'alpha' ? 'beta' : 'alpha';
      await waitFor(() => new RegExp(`upstream pauto/${srv} stderr:.*${marker}`).test(gw.stderr), 2000, `${srv} trace`);
      assert.doesNotMatch(gw.stderr, new RegExp(`upstream pauto/${other} stderr:.*${marker}`));
      // the upstream must see its own tool name, not the prefixed one
      assert.match(gw.stderr, new RegExp(`upstream pauto/${srv} stderr:.*"name":"shared".*${marker}`));
    }
    const a = await client.callTool({ name: 'only_alpha', arguments: { message: 'oa' } });
    assert.equal(textOf(a), 'oa');
    // the bare name of a prefixed tool does not exist for this agent
    await assert.rejects(client.callTool({ name: 'env', arguments: { name: 'SERVER_TAG' } }), (e) => e.code === -32602);
  });

  t('always: every tool is <server>__<tool>', async () => {
    const { client } = await gw.connect(T.palways);
    const listed = names(await listAllTools(client));
    assert.deepEqual(listed, ['alpha__env', 'alpha__only_alpha', 'alpha__shared', 'beta__env', 'beta__only_beta']);
    assert.equal(await tag(client, 'alpha__env'), 'alpha-tag');
    assert.equal(await tag(client, 'beta__env'), 'beta-tag');
    const r = await client.callTool({ name: 'beta__only_beta', arguments: { message: 'ob' } });
    assert.equal(textOf(r), 'ob');
  });

  t('never: bare names only; a name two servers share is exposed by neither', async () => {
    const { client } = await gw.connect(T.pnever);
    const tools = await listAllTools(client);
    assert.deepEqual(names(tools), ['only_alpha', 'only_beta']);
    // env and shared could mean alpha's or beta's tool: neither is reachable, with a clear error
    for (const n of ['env', 'shared']) {
      await assert.rejects(client.callTool({ name: n, arguments: { name: 'SERVER_TAG' } }), (e) => {
        assert.equal(e.code, -32602);
        assert.match(e.message, /Ambiguous tool name/);
        return true;
      });
    }
    const r = await client.callTool({ name: 'only_beta', arguments: { message: 'nb' } });
    assert.equal(textOf(r), 'nb');
    await waitFor(() => /upstream pnever\/beta stderr:.*"nb"/.test(gw.stderr), 2000, 'only_beta routed to beta');
  });
});
