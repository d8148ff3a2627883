// The AIP-compatible stdio wrapper: `aip --target "CMD ARGS" --policy agent.yaml --audit FILE`.
// SDK clients (StdioClientTransport) and raw line-level clients in front; the C test server,
// a mirror server that shows what reached it (lib/mirror-server.mjs) and server-everything behind.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { SANITIZED, childrenOf, isAlive, names, sleep, textOf, waitFor, writerStalls } from './lib/harness.mjs';
import {
  AIP_BIN, RawWrapper, TARGET_EVERYTHING, TARGET_MIRROR, TARGET_TEST_SERVER, auditRecords,
  cleanup, sdkWrapper, waitAudit, wrapperDir,
} from './lib/wrapper.mjs';

const SPEC = {
  allowed_tools: ['echo', 'add', 'slow', 'crash'],
  tool_rules: [
    { tool: 'fail', action: 'ask' },
    { tool: 'add', allow_args: { a: '^[0-9]+$' } },
  ],
};
const ASK_SPEC = { allowed_tools: ['add', 'slow'], tool_rules: [{ tool: 'echo', action: 'ask' }] };
const DENIED_DATA = { reason: 'User explicitly denied the tool call via approval dialog', tool: 'echo' };

/** Runs body(w) with an SDK wrapper; on failure prints the wrapper's stderr. */
async function withSdk(opts, body) {
  const w = await sdkWrapper(opts);
  try {
    await body(w);
  } catch (e) {
    process.stderr.write(`\n----- wrapper stderr -----\n${w.stderr}\n-----\n`);
    throw e;
  } finally {
    await w.close();
  }
}

async function withRaw(opts, body) {
  const w = RawWrapper.start(opts);
  try {
    await body(w);
  } catch (e) {
    w.dump();
    throw e;
  } finally {
    await w.stop();
  }
}

const mcpError = (code, data) => (e) => {
  assert.ok(e instanceof McpError, `McpError expected, got ${e}`);
  assert.equal(e.code, code, e.message);
  if (data !== undefined) assert.deepEqual(e.data, data);
  return true;
};

describe('SDK client -> wrapper -> C test server', () => {
  test('tools/list shows only the tools the policy could allow (ask included)', () => withSdk({ spec: SPEC }, async ({ client }) => {
    const { tools } = await client.listTools();
    assert.deepEqual(names(tools), ['add', 'crash', 'echo', 'fail', 'slow']);
  }));

  test('an allowed call round-trips; the server sees the checked arguments', () => withSdk({ spec: SPEC }, async ({ client }) => {
    const r = await client.callTool({ name: 'echo', arguments: { message: 'héllo "wrapper" \u2028 ✓' } });
    assert.equal(textOf(r), 'héllo "wrapper" \u2028 ✓');
    const s = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    assert.deepEqual(s.structuredContent, { sum: 5 });
  }));

  test('a tool outside allowed_tools: -32001 Forbidden with the reference data', () => withSdk({ spec: SPEC }, async ({ client, audit }) => {
    await assert.rejects(client.callTool({ name: 'env', arguments: { name: 'HOME' } }),
      mcpError(-32001, { reason: 'Tool not in allowed_tools list', tool: 'env' }));
    const rec = await waitAudit(audit, (x) => x.tool === 'env');
    assert.equal(rec.decision, 'BLOCK');
    assert.equal(rec.error_code, -32001);
    assert.equal(rec.violation, true);
  }));

  test('an argument failing allow_args: -32001 Argument validation failed', () => withSdk({ spec: SPEC }, async ({ client }) => {
    await assert.rejects(client.callTool({ name: 'add', arguments: { a: -1, b: 1 } }),
      mcpError(-32001, { arg: 'a', pattern: '^[0-9]+$', reason: 'Argument validation failed for a', tool: 'add' }));
  }));

  test('a method outside allowed_methods: -32006 Method not allowed', () => withSdk({ spec: SPEC }, async ({ client }) => {
    await assert.rejects(client.listResources(), mcpError(-32006, {
      method: 'resources/list',
      reason: "Method 'resources/list' is not in allowed_methods. Add it to your policy to permit this method.",
    }));
    assert.ok(await client.ping(), 'the session goes on');
  }));

  test('progress notifications of a slow call reach the client', () => withSdk({ spec: SPEC }, async ({ client }) => {
    const seen = [];
    const r = await client.callTool({ name: 'slow', arguments: { ms: 400, steps: 3 } }, undefined, { onprogress: (p) => seen.push(p) });
    assert.equal(textOf(r), 'slept 400ms');
    assert.ok(seen.length >= 1, `progress: ${JSON.stringify(seen)}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].progress > seen[i - 1].progress);
  }));

  test('a slow call does not hold up a quick one', () => withSdk({ spec: SPEC }, async ({ client }) => {
    const order = [];
    await Promise.all([
      client.callTool({ name: 'slow', arguments: { ms: 500 } }).then(() => order.push('slow')),
      sleep(50).then(() => client.callTool({ name: 'echo', arguments: { message: 'quick' } })).then(() => order.push('quick')),
    ]);
    assert.deepEqual(order, ['quick', 'slow']);
  }));

  test('protected paths: the policy file and the audit log are protected (-32007); rate_limit gives -32002', () => withSdk({
    spec: { allowed_tools: ['echo'], protected_paths: ['/etc/shadow'], tool_rules: [{ tool: 'echo', rate_limit: '4/minute' }] },
  }, async ({ client, policy, audit }) => {
    const data = {
      reason: 'The requested operation would access a protected path. This action has been blocked and logged for security review.',
      tool: 'echo',
    };
    for (const message of ['cat /etc/shadow', policy, audit]) {
      await assert.rejects(client.callTool({ name: 'echo', arguments: { message } }), mcpError(-32007, data));
    }
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: 'ok' } })), 'ok');
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'fifth' } }),
      mcpError(-32002, { reason: 'Rate limit exceeded for echo. Try again later.', tool: 'echo' }));
    const recs = await waitFor(() => {
      const r = auditRecords(audit);
      return r.length >= 5 && r;
    }, 3000, 'five audit records');
    assert.deepEqual(recs.map((x) => x.error_code ?? 0), [-32007, -32007, -32007, 0, -32002]);
    assert.deepEqual(recs.slice(3).map((x) => x.decision), ['ALLOW', 'RATE_LIMITED']);
  }));

  test('monitor mode: a violation is forwarded and audited as ALLOW_MONITOR', () => withSdk({
    spec: { mode: 'monitor', allowed_tools: ['add'] },
  }, async ({ client, audit }) => {
    const r = await client.callTool({ name: 'echo', arguments: { message: 'dry run' } });
    assert.equal(textOf(r), 'dry run');
    const rec = await waitAudit(audit, (x) => x.tool === 'echo');
    assert.equal(rec.decision, 'ALLOW_MONITOR');
    assert.equal(rec.violation, true);
    assert.equal(rec.policy_mode, 'monitor');
  }));

  test('the audit log has one record per decision with the INTERFACES fields', () => withSdk({ spec: SPEC }, async ({ client, audit }) => {
    await client.callTool({ name: 'echo', arguments: { message: 'audited' } });
    await assert.rejects(client.callTool({ name: 'env', arguments: { name: 'X' } }));
    await assert.rejects(client.listPrompts());
    await waitFor(() => auditRecords(audit).length >= 3, 3000, 'three audit records');
    const recs = auditRecords(audit);
    const sid = recs[0].session_id;
    assert.match(sid, /^[0-9a-f]{32}$/);
    for (const x of recs) {
      assert.equal(x.agent, 'wrapped-agent');
      assert.equal(x.session_id, sid);
      assert.equal(x.direction, 'upstream');
      assert.equal(x.policy_mode, 'enforce');
      assert.deepEqual(x.policy, { name: 'wrapped-agent', version: '1.0.0' });
      assert.match(x.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    const allow = recs.find((x) => x.tool === 'echo');
    assert.equal(allow.decision, 'ALLOW');
    assert.deepEqual(allow.args, { message: 'audited' });
    assert.equal(allow.violation, false);
    const m = recs.find((x) => x.method === 'prompts/list');
    assert.equal(m.decision, 'BLOCK');
    assert.equal(m.error_code, -32006);
  }));
});

describe('audit log rotation', () => {
  // SIGUSR1's default action ends a process: without the handler the second call cannot work.
  test('SIGUSR1 reopens the audit log after a rename (logrotate); the chain verifies across both files', () => withSdk({ spec: SPEC }, async ({ client, audit, pid }) => {
    await client.callTool({ name: 'echo', arguments: { message: 'before rotation' } });
    await waitAudit(audit, (x) => x.args?.message === 'before rotation');
    fs.renameSync(audit, `${audit}.1`);
    process.kill(pid, 'SIGUSR1');
    const r = await client.callTool({ name: 'echo', arguments: { message: 'after rotation' } });
    assert.equal(textOf(r), 'after rotation');
    await waitAudit(audit, (x) => x.args?.message === 'after rotation');
    assert.ok(!auditRecords(`${audit}.1`).some((x) => x.args?.message === 'after rotation'));
    const v = spawnSync(AIP_BIN, ['audit', 'verify', `${audit}.1`, audit], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stdout + v.stderr);
  }));
});

describe('ask: MCP elicitation', () => {
  test('accept with approve: true forwards the call; audit ASK, APPROVED, then ALLOW', async () => {
    const asked = [];
    await withSdk({
      spec: ASK_SPEC,
      capabilities: { elicitation: { form: {} } },
      onElicit: async (req) => { asked.push(req.params); return { action: 'accept', content: { approve: true } }; },
    }, async ({ client, audit }) => {
      const r = await client.callTool({ name: 'echo', arguments: { message: 'approved call' } });
      assert.equal(textOf(r), 'approved call');
      assert.equal(asked.length, 1);
      const p = asked[0];
      assert.equal(p.mode, 'form');
      assert.match(p.message, /"echo"/);
      assert.match(p.message, /approved call/);
      assert.deepEqual(p.requestedSchema.required, ['approve']);
      assert.equal(p.requestedSchema.properties.approve.type, 'boolean');
      // then the ALLOW record of the call it let through, when it ends (docs/audit.md, as in
      // aip serve; the wrapper wrote none before)
      await waitAudit(audit, (x) => x.decision === 'ALLOW');
      const ds = auditRecords(audit).filter((x) => x.tool === 'echo').map((x) => x.decision);
      assert.deepEqual(ds, ['ASK', 'APPROVED', 'ALLOW']);
    });
  });

  for (const [label, answer] of [
    ['decline', { action: 'decline' }],
    ['cancel', { action: 'cancel' }],
    ['accept with approve: false', { action: 'accept', content: { approve: false } }],
  ]) {
    test(`${label}: -32004 User denied, nothing reaches the server`, () => withSdk({
      spec: ASK_SPEC, capabilities: { elicitation: {} }, onElicit: async () => answer,
    }, async ({ client, audit }) => {
      await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'no' } }), mcpError(-32004, DENIED_DATA));
      const rec = await waitAudit(audit, (x) => x.decision === 'DENIED');
      assert.equal(rec.error_code, -32004);
      assert.equal(rec.tool, 'echo');
    }));
  }

  test('a client without the elicitation capability: -32004 at once', () => withSdk({ spec: ASK_SPEC }, async ({ client, audit }) => {
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'x' } }), mcpError(-32004, DENIED_DATA));
    const rec = await waitAudit(audit, (x) => x.decision === 'DENIED');
    assert.match(rec.reason, /elicitation/);
  }));

  test('no answer within --approval-timeout: -32005, the question is cancelled, other calls flow meanwhile', async () => {
    let aborted = false;
    await withSdk({
      spec: ASK_SPEC,
      capabilities: { elicitation: { form: {} } },
      extra: ['--approval-timeout', '1500ms'],
      onElicit: (req, extra) => new Promise((resolve) => {
        extra.signal.addEventListener('abort', () => { aborted = true; resolve({ action: 'cancel' }); });
      }),
    }, async ({ client, audit }) => {
      const t0 = Date.now();
      const pending = client.callTool({ name: 'echo', arguments: { message: 'waits' } });
      pending.catch(() => {});
      // the wrapper keeps serving while the approval is pending
      const sum = await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
      assert.equal(textOf(sum), '3');
      assert.ok(Date.now() - t0 < 1200, 'answered before the approval timed out');
      await assert.rejects(pending, mcpError(-32005, { reason: 'User did not respond to approval dialog within timeout', tool: 'echo' }));
      assert.ok(Date.now() - t0 >= 1400, 'not before the timeout');
      await waitFor(() => aborted, 2000, 'notifications/cancelled for the elicitation');
      const rec = await waitAudit(audit, (x) => x.decision === 'EXPIRED');
      assert.equal(rec.error_code, -32005);
    });
  });
});

describe('ask: raw elicitation traffic', () => {
  const askRaw = (body) => withRaw({ spec: { allowed_tools: ['add'], tool_rules: [{ tool: 'echo', action: 'ask' }] } }, body);

  test('the question uses a wrapper-owned id; cancelling the call withdraws it; late answers are dropped', () => askRaw(async (w) => {
    await w.init('2025-06-18', { elicitation: {} });
    w.send({ jsonrpc: '2.0', id: 30, method: 'tools/call', params: { name: 'echo', arguments: { message: 'q' } } });
    const q = await w.next((m) => m.method === 'elicitation/create');
    assert.match(q.id, /^aip-elicit-[0-9a-f]{8}-\d+$/);
    assert.equal(q.params.mode, undefined, '2025-06-18 has no elicitation mode');
    w.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 30 } });
    const c = await w.next((m) => m.method === 'notifications/cancelled');
    assert.equal(c.params.requestId, q.id);
    // a late answer goes nowhere: not to the server, and the call stays unanswered
    w.send({ jsonrpc: '2.0', id: q.id, result: { action: 'accept', content: { approve: true } } });
    await w.none((m) => m.id === 30 || m.params?.data?.received || m.params?.data?.notified?.method === 'notifications/cancelled');
    const rec = await waitAudit(w.audit, (x) => x.decision === 'DENIED');
    assert.match(rec.reason, /cancelled/);
  }));

  test('an approved call reaches the server exactly as checked', () => askRaw(async (w) => {
    await w.init('2025-11-25', { elicitation: { form: {} } });
    w.send({ jsonrpc: '2.0', id: 31, method: 'tools/call', params: { name: 'echo', arguments: { message: 'yes' } } });
    const q = await w.next((m) => m.method === 'elicitation/create');
    assert.equal(q.params.mode, 'form');
    w.send({ jsonrpc: '2.0', id: q.id, result: { action: 'accept', content: { approve: true } } });
    const r = await w.reply(31);
    assert.deepEqual(r.result.echo, { jsonrpc: '2.0', id: 31, method: 'tools/call', params: { name: 'echo', arguments: { message: 'yes' } } });
  }));

  test('a client that declared only URL elicitation is not asked: -32004', () => askRaw(async (w) => {
    await w.init('2025-11-25', { elicitation: { url: {} } });
    w.send({ jsonrpc: '2.0', id: 32, method: 'tools/call', params: { name: 'echo', arguments: {} } });
    assert.equal((await w.reply(32)).error.code, -32004);
  }));

  test('an error answer to the question denies the call', () => askRaw(async (w) => {
    await w.init('2025-06-18', { elicitation: {} });
    w.send({ jsonrpc: '2.0', id: 33, method: 'tools/call', params: { name: 'echo', arguments: {} } });
    const q = await w.next((m) => m.method === 'elicitation/create');
    w.send({ jsonrpc: '2.0', id: q.id, error: { code: -32602, message: 'no form support' } });
    assert.equal((await w.reply(33)).error.code, -32004);
  }));
});

describe('raw stdio: strict JSON-RPC handling', () => {
  test('invalid JSON: -32700 with id null', () => withRaw({}, async (w) => {
    w.send('{"jsonrpc":"2.0","id":1,"method":');
    const r = await w.next((m) => m.error);
    assert.equal(r.id, null);
    assert.equal(r.error.code, -32700);
    assert.equal(r.error.message, 'Parse error');
  }));

  test('duplicate key: -32600, nothing forwarded', () => withRaw({}, async (w) => {
    await w.init();
    w.send('{"jsonrpc":"2.0","id":2,"method":"ping","method":"tools/call","params":{"name":"x"}}');
    const r = await w.next((m) => m.error);
    assert.equal(r.error.code, -32600);
    assert.equal(r.id, null);
    await w.none((m) => m.result?.echo);
  }));

  test('a case-variant "Method" key: -32600 with the id (the reference is bypassed by it)', () => withRaw({}, async (w) => {
    await w.init();
    w.send({ jsonrpc: '2.0', id: 3, method: 'ping', Method: 'tools/call', params: { name: 'env' } });
    const r = await w.reply(3);
    assert.equal(r.error.code, -32600);
    w.send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', Name: 'env', arguments: {} } });
    assert.equal((await w.reply(4)).error.code, -32600);
  }));

  test('tools/call with a non-string name or non-object arguments: -32602', () => withRaw({}, async (w) => {
    await w.init();
    w.send({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 7, arguments: {} } });
    assert.equal((await w.reply(5)).error.code, -32602);
    w.send({ jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'echo', arguments: ['x'] } });
    assert.equal((await w.reply(6)).error.code, -32602);
  }));

  test('nesting deeper than the bound: -32600', () => withRaw({}, async (w) => {
    const deep = '['.repeat(100) + ']'.repeat(100);
    w.send(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"x":${deep}}}}`);
    const r = await w.next((m) => m.error);
    assert.equal(r.error.code, -32600);
  }));

  test('a line longer than --max-message: -32700, the next line works', () => withRaw({ extra: ['--max-message', '2KiB'] }, async (w) => {
    await w.init();
    w.send({ jsonrpc: '2.0', id: 8, method: 'ping', params: { pad: 'x'.repeat(4000) } });
    const r = await w.next((m) => m.error);
    assert.equal(r.error.code, -32700);
    w.send({ jsonrpc: '2.0', id: 9, method: 'ping' });
    assert.equal((await w.reply(9)).result.echo.id, 9);
  }));

  test('"TOOLS/CALL" still gets the tool check', () => withRaw({}, async (w) => {
    await w.init();
    w.send({ jsonrpc: '2.0', id: 10, method: 'TOOLS/CALL', params: { name: 'env', arguments: {} } });
    const r = await w.reply(10);
    assert.equal(r.error.code, -32001);
  }));

  test('a blocked notification gets no reply and is not forwarded; allowed ones are', () => withRaw({}, async (w) => {
    await w.init();
    await w.next((m) => m.params?.data?.notified?.method === 'notifications/initialized');
    w.send({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
    w.send({ jsonrpc: '2.0', method: 'resources/updated-by-client' });
    w.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 99, reason: 'x' } });
    await w.next((m) => m.params?.data?.notified?.method === 'notifications/roots/list_changed');
    await w.next((m) => m.params?.data?.notified?.method === 'notifications/cancelled');
    await w.none((m) => m.error || m.params?.data?.notified?.method === 'resources/updated-by-client');
    const rec = await waitAudit(w.audit, (x) => x.method === 'resources/updated-by-client');
    assert.equal(rec.decision, 'BLOCK');
  }));

  test('a client response to a server request passes through unchanged', () => withRaw({}, async (w) => {
    await w.init();
    const ping = await w.next((m) => m.method === 'ping');
    assert.equal(ping.id, 'srv-1');
    w.send({ jsonrpc: '2.0', id: 'srv-1', result: {} });
    const got = await w.next((m) => m.params?.data?.received);
    assert.deepEqual(got.params.data.received, { jsonrpc: '2.0', id: 'srv-1', result: {} });
    w.send({ jsonrpc: '2.0', id: 'srv-2', error: { code: -32601, message: 'no' } });
    const got2 = await w.next((m) => m.params?.data?.received);
    assert.equal(got2.params.data.received.error.code, -32601);
  }));

  test('a batch on a 2025-06-18 session: -32600, nothing forwarded', () => withRaw({}, async (w) => {
    await w.init('2025-06-18');
    w.send([{ jsonrpc: '2.0', id: 11, method: 'ping' }]);
    const r = await w.next((m) => m.error);
    assert.equal(r.error.code, -32600);
    assert.equal(r.id, null);
    await w.none((m) => m.id === 11);
  }));

  test('a batch on a 2025-03-26 session: every element checked, answered one by one', () => withRaw({}, async (w) => {
    await w.init('2025-03-26');
    w.send([
      { jsonrpc: '2.0', id: 12, method: 'ping' },
      { jsonrpc: '2.0', id: 13, method: 'resources/list' },
      { jsonrpc: '2.0', id: 14, method: 'tools/call', params: { name: 'env', arguments: {} } },
      { jsonrpc: '2.0', id: 15, method: 'tools/call', params: { name: 'echo', arguments: { message: 'b' } } },
      { jsonrpc: '2.0', id: 16, Method: 'x' },
    ]);
    assert.equal((await w.reply(12)).result.echo.method, 'ping');
    assert.equal((await w.reply(13)).error.code, -32006);
    assert.equal((await w.reply(14)).error.code, -32001);
    assert.equal((await w.reply(15)).result.echo.params.name, 'echo');
    assert.equal((await w.reply(16)).error.code, -32600);
  }));

  test('server stdout lines that are not JSON are logged and dropped', () => withRaw({}, async (w) => {
    await w.init();
    await waitFor(() => w.stderr.includes('[subprocess stdout] mirror server starting'), 3000, 'the banner on stderr');
    assert.ok(w.stderr.includes('[aip-proxy] '), 'log lines carry the [aip-proxy] prefix');
    for (const l of w.lines) JSON.parse(l); // stdout carries only JSON-RPC
  }));

  test('the server gets exactly the checked message, re-serialized compactly', () => withRaw({}, async (w) => {
    await w.init();
    w.send('  {"jsonrpc" : "2.0", "id" : 17, "method" : "tools/call", "params" : {"name":"echo","arguments":{"message":"a\\u0062c"}}}  \r');
    const r = await w.reply(17);
    assert.deepEqual(r.result.echo, { jsonrpc: '2.0', id: 17, method: 'tools/call', params: { name: 'echo', arguments: { message: 'abc' } } });
  }));
});

describe('lifecycle', () => {
  test('exit code: the crash tool makes the server exit 3, the wrapper exits 3', () => withRaw({ target: TARGET_TEST_SERVER, spec: SPEC }, async (w) => {
    await w.init('2025-06-18');
    w.send({ jsonrpc: '2.0', id: 20, method: 'tools/call', params: { name: 'crash', arguments: {} } });
    const e = await Promise.race([w.exited, sleep(5000).then(() => null)]);
    assert.deepEqual(e, { code: 3, signal: null });
  }));

  test('back-pressure: a client that stops reading does not make the wrapper buffer everything', () => withRaw({
    target: TARGET_TEST_SERVER, spec: { allowed_tools: ['big'] },
  }, async (w) => {
    await w.init('2025-06-18');
    w.proc.stdout.pause();
    const n = 10, size = 10_000_000;
    for (let i = 0; i < n; i++) w.send({ jsonrpc: '2.0', id: 100 + i, method: 'tools/call', params: { name: 'big', arguments: { bytes: size } } });
    // the server blocks on a full pipe far short of the 100 MB it has to send (measured on its
    // writes, which ASan's quarantine does not skew), and the wrapper holds little of it
    const [server] = childrenOf(w.pid);
    const written = await writerStalls(server.pid);
    assert.ok(written < 60e6, `the server wrote ${(written / 1e6).toFixed(1)} MB of ${(n * size) / 1e6} MB unread`);
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${w.pid}/status`, 'utf8'))[1]) * 1024;
    if (!SANITIZED) assert.ok(rss < 100e6, `wrapper RSS ${(rss / 1e6).toFixed(1)} MB with ${(n * size) / 1e6} MB unread`);
    w.proc.stdout.resume();
    await waitFor(() => w.lines.filter((l) => l.length > size).length >= n, 20000, 'every answer');
    const big = w.lines.filter((l) => l.length > size);
    assert.equal(big.length, n);
    for (const l of big) assert.ok(l.includes('"text":"' + 'x'.repeat(1000)), 'a big text block');
    w.lines.length = 0; // keep the helper's later scans cheap
  }));

  test('stdin EOF: the server\'s stdin is closed, the wrapper exits with its code', () => withRaw({ env: { MIRROR_EXIT: '7' } }, async (w) => {
    await w.init();
    w.endInput();
    const e = await Promise.race([w.exited, sleep(5000).then(() => null)]);
    assert.deepEqual(e, { code: 7, signal: null });
  }));

  test('SIGTERM is forwarded: the wrapper exits promptly and the server is gone', () => withRaw({ target: TARGET_TEST_SERVER, spec: SPEC }, async (w) => {
    await w.init('2025-06-18');
    const kids = childrenOf(w.pid);
    assert.equal(kids.length, 1, JSON.stringify(kids));
    const t0 = Date.now();
    w.proc.kill('SIGTERM');
    const e = await Promise.race([w.exited, sleep(5000).then(() => null)]);
    assert.ok(e, 'exited');
    assert.deepEqual(e, { code: 143, signal: null }, 'the server died of SIGTERM: 128 + 15');
    assert.ok(Date.now() - t0 < 2000, `promptly (${Date.now() - t0} ms)`);
    await waitFor(() => !isAlive(kids[0].pid), 2000, 'the server gone');
  }));

  test('a server that ignores SIGTERM is killed after the grace period (exit 128+9)', { timeout: 20000 }, () => withRaw({ env: { MIRROR_IGNORE_TERM: '1' } }, async (w) => {
    await w.init();
    await sleep(200); // the mirror's SIGTERM handler is set at start
    w.proc.kill('SIGTERM');
    const e = await Promise.race([w.exited, sleep(15000).then(() => null)]);
    assert.deepEqual(e, { code: 137, signal: null });
  }));

  test('a wrapper killed with SIGKILL leaves no orphan server', () => withRaw({ target: TARGET_TEST_SERVER, spec: SPEC }, async (w) => {
    await w.init('2025-06-18');
    const [kid] = childrenOf(w.pid);
    assert.ok(kid, 'a child');
    w.proc.kill('SIGKILL');
    await w.exited;
    await waitFor(() => !isAlive(kid.pid), 3000, 'the orphan gone');
  }));

  test('the audit log may not be our stdout; a missing program is exit 1', () => {
    const d = wrapperDir({ allowed_tools: ['echo'] });
    try {
      for (const audit of ['/dev/stdout', '/dev/fd/1', '/proc/self/fd/1']) {
        const r = spawnSync(AIP_BIN, ['--target', TARGET_TEST_SERVER, '--policy', d.policy, '--audit', audit], { input: '', encoding: 'utf8' });
        assert.equal(r.status, 1, `${audit}: ${r.stderr}`);
        assert.match(r.stderr, /refusing audit log/);
        assert.equal(r.stdout, '');
      }
      const r = spawnSync(AIP_BIN, ['--target', '/nonexistent/server --x', '--policy', d.policy, '--audit', d.audit], { input: '', encoding: 'utf8' });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /cannot start \/nonexistent\/server/);
      const u = spawnSync(AIP_BIN, ['--policy', d.policy], { input: '', encoding: 'utf8' });
      assert.equal(u.status, 2, 'usage error without --target');
      const bad = spawnSync(AIP_BIN, ['--target', TARGET_TEST_SERVER, '--policy', path.join(d.dir, 'missing.yaml')], { input: '', encoding: 'utf8' });
      assert.equal(bad.status, 1, bad.stderr);
    } finally {
      cleanup(d.dir);
    }
  });

  test('--generate-cursor-config prints the reference\'s mcpServers entry', () => {
    const d = wrapperDir({ allowed_tools: ['echo'] });
    try {
      const r = spawnSync(AIP_BIN, ['--target', 'npx -y some-server', '--policy', d.policy, '--generate-cursor-config'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const cfg = JSON.parse(r.stdout);
      const entry = cfg.mcpServers['protected-tool'];
      assert.deepEqual(entry.args, ['--policy', fs.realpathSync(d.policy), '--target', 'npx -y some-server']);
      assert.ok(path.isAbsolute(entry.command) && fs.existsSync(entry.command), entry.command);
      assert.ok(r.stdout.startsWith('{\n  "mcpServers": {\n    "protected-tool": {\n      "args": [\n'), r.stdout);
    } finally {
      cleanup(d.dir);
    }
  });
});

describe('server-everything over stdio behind the wrapper', () => {
  test('initialize, filtered tools/list, echo; a blocked tool is refused', () => withSdk({
    target: TARGET_EVERYTHING,
    spec: { allowed_tools: ['echo', 'get-sum'] },
  }, async ({ client }) => {
    const { tools } = await client.listTools();
    assert.deepEqual(names(tools), ['echo', 'get-sum']);
    const r = await client.callTool({ name: 'echo', arguments: { message: 'through the wrapper' } });
    assert.equal(textOf(r), 'Echo: through the wrapper');
    await assert.rejects(client.callTool({ name: 'get-env', arguments: {} }), mcpError(-32001));
  }));
});

// issue 11: a full audit queue (the writer cannot keep up) made the wrapper drop records beyond
// its 1000; now it stops reading the agent's requests until the writer catches up. The audit
// file is a FIFO the test stops reading: the writer blocks, the queue fills, and not one of
// 3000 calls' records may be lost.
describe('audit backpressure', () => {
  test('a stalled audit writer slows the agent down; no record is dropped', async () => {
    const d = wrapperDir({ allowed_tools: ['echo'] });
    const fifo = path.join(d.dir, 'audit.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const { spawn } = await import('node:child_process');
    const p = spawn(AIP_BIN, ['--target', TARGET_TEST_SERVER, '--policy', d.policy, '--audit', fifo], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '', auditText = '';
    p.stdout.on('data', (x) => { out += x; });
    p.stderr.on('data', (x) => { err += x; });
    const N = 3000;
    try {
      const lines = [JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bp', version: '1' } } }),
        JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })];
      for (let i = 1; i <= N; i++) lines.push(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'echo', arguments: { message: `m${i}` } } }));
      p.stdin.write(lines.join('\n') + '\n');
      await sleep(1500); // the writer is stuck on the full FIFO meanwhile
      const answered = (out.match(/"id":/g) || []).length;
      assert.ok(answered < N, `the wrapper held the agent back (${answered} answers while the log was stuck)`);
      // drain the FIFO until every answer is there
      const buf = Buffer.alloc(1 << 16);
      const deadline = Date.now() + 40000;
      while ((out.match(/"id":/g) || []).length < N + 1 && Date.now() < deadline) {
        try {
          for (let n; (n = fs.readSync(rfd, buf, 0, buf.length, null)) > 0;) auditText += buf.subarray(0, n).toString();
        } catch (e) { if (e.code !== 'EAGAIN') throw e; }
        await sleep(5);
      }
      assert.equal((out.match(/"id":/g) || []).length, N + 1, 'every call answered');
      p.stdin.end();
      const closed = new Promise((r) => p.on('exit', r));
      while (p.exitCode === null) {
        try {
          for (let n; (n = fs.readSync(rfd, buf, 0, buf.length, null)) > 0;) auditText += buf.subarray(0, n).toString();
        } catch (e) { if (e.code !== 'EAGAIN') throw e; }
        await Promise.race([closed, sleep(5)]);
      }
      try { for (let n; (n = fs.readSync(rfd, buf, 0, buf.length, null)) > 0;) auditText += buf.subarray(0, n).toString(); } catch { /* EAGAIN */ }
      assert.doesNotMatch(err, /dropped/, err);
      const calls = auditText.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.method === 'tools/call');
      assert.equal(calls.length, N, 'one record per call');
    } finally {
      if (p.exitCode === null) p.kill('SIGKILL');
      fs.closeSync(rfd);
      cleanup(d.dir);
    }
  });
});
