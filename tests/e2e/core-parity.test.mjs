// One routing core for both front ends (issue 12 item 4): the same call, refused by the same
// policy, gets the same error bytes and leaves the same audit record through the stdio wrapper
// (`aip --target`) and through `aip serve`. Each case is sent as the same JSON-RPC line to both;
// the records are compared member by member, less those that name the front end (agent,
// session, policy name, time, chain).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Gateway, newToken, testServer, waitFor } from './lib/harness.mjs';
import { RawWrapper, TARGET_TEST_SERVER, auditRecords } from './lib/wrapper.mjs';

const KEY = 'AKIAIOSFODNN7EXAMPLE';
const AWS = { name: 'AWS Key', regex: '(AKIA|ASIA)[A-Z0-9]{16}' };
const V = '2025-06-18';
// 8 MiB of near misses: request DLP cannot scan it within a 1 ms dlp.timeout (dlp.test.mjs)
const DENSE = 'AKIAx'.repeat((8 << 20) / 5) + KEY;

const POLICY = {
  allowed_tools: ['echo', 'add'],
  denied_methods: ['prompts/get'],
  tool_rules: [
    { tool: 'echo', allow_args: { message: '^[A-Za-z0-9 ]*$' } },
    { tool: 'add', rate_limit: '1/hour' },
  ],
  dlp: { scan_requests: true, patterns: [AWS], timeout: '1ms' },
};

// resources and prompts: protected_paths on a resource URI (resources/read, subscribe) and on a
// prompt's arguments is a step of the core's method table, so the wrapper refuses what serve
// refuses, before anything reaches a server (the test server offers no resources: a read it
// got would be answered -32601, not -32007)
const SECRET = '/srv/aip-parity-secret';
const PATHS_POLICY = {
  allowed_methods: ['initialize', 'notifications/initialized', 'ping', 'tools/list', 'tools/call',
    'resources/read', 'resources/subscribe', 'prompts/get'],
  allowed_tools: ['echo'],
  protected_paths: [SECRET],
};
const rpc = (id, method, params) => JSON.stringify({ jsonrpc: '2.0', id, method, params });
const PATH_CASES = [
  ['a resources/read of a protected file:// URI', rpc(31, 'resources/read', { uri: `file://${SECRET}/key` })],
  ['a resources/read that climbs with ..', rpc(32, 'resources/read', { uri: `file:///srv/open/../aip-parity-secret/key` })],
  ['a resources/read that climbs with %2e%2e', rpc(33, 'resources/read', { uri: `file:///srv/open/%2e%2e/aip-parity-secret/key` })],
  ['a resources/read of a protected plain path', rpc(34, 'resources/read', { uri: `${SECRET}/key` })],
  ['a resources/read of file:<path> (no slashes)', rpc(35, 'resources/read', { uri: `file:${SECRET}/key` })],
  ['a resources/subscribe to a protected URI', rpc(36, 'resources/subscribe', { uri: `file://${SECRET}` })],
  ['a prompts/get whose argument names a protected path', rpc(37, 'prompts/get', { name: 'p', arguments: { file: `${SECRET}/key` } })],
];

const call = (id, name, args) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

// [what, line, expected code, members of the record not compared]
const CASES = [
  ['a tool not in allowed_tools', call(11, 'fail', { message: 'x' }), -32001],
  ['an argument that fails allow_args', call(12, 'echo', { message: 'not ok!' }), -32001],
  ['a secret in the arguments (request DLP, block)', call(13, 'echo', { message: KEY }), -32001],
  ['a denied method', JSON.stringify({ jsonrpc: '2.0', id: 14, method: 'prompts/get', params: { name: 'p' } }), -32006],
  ['the second call of a 1/hour tool', call(16, 'add', { a: 1, b: 2 }), -32002],
  // how far the scan got before the budget ran out varies: its counts are not compared
  ['a request DLP could not scan (dlp.timeout)', call(17, 'echo', { message: DENSE }), -32603, ['dlp']],
];
const FIRST_ADD = call(15, 'add', { a: 1, b: 2 });
const FRONT_END = ['timestamp', 'agent', 'session_id', 'policy', 'prev', 'hash'];

/** The record without the members that name the front end (or vary). */
function comparable(rec, skip = []) {
  const out = { ...rec };
  for (const k of [...FRONT_END, ...skip]) delete out[k];
  return out;
}

/** The JSON text of the answer to a POST (application/json, or the last SSE data line). */
function answerText(r) {
  if (!(r.headers.get('content-type') || '').startsWith('text/event-stream')) return r.text;
  return r.text.split('\n').filter((l) => l.startsWith('data:')).pop().slice(5).trim();
}

describe('the wrapper and aip serve agree', () => {
  const tok = newToken('parity');
  let gw, sid, w;

  before(async () => {
    gw = await Gateway.start({
      servers: { t: testServer() },
      limits: { max_body: '16MiB' },
      agents: [{ name: 'parity', token: tok, servers: ['t'], policy: POLICY }],
    });
    sid = await gw.rawSession(tok, V);
    w = RawWrapper.start({ target: TARGET_TEST_SERVER, spec: POLICY });
    await w.init(V);
    // the first call of the rate-limited tool passes on both sides
    w.send(FIRST_ADD);
    assert.ok((await w.reply(15)).result, 'the wrapper forwards the first add');
    const r = await gw.post(FIRST_ADD, { token: tok, session: sid, version: V });
    assert.ok(JSON.parse(answerText(r)).result, `serve forwards the first add: ${r.text}`);
  });

  after(async () => {
    if (w) await w.stop();
    if (gw) await gw.stop();
  });

  test('an allowed call: one ALLOW record when it ends, with its latency', async () => {
    const pick = (file) => auditRecords(file).filter((x) => x.decision === 'ALLOW' && x.tool === 'add');
    const [wr] = await waitFor(() => pick(w.audit).length && pick(w.audit), 3000, 'the wrapper\'s record');
    const [sr] = await waitFor(() => pick(gw.auditPath).length && pick(gw.auditPath), 3000, 'serve\'s record');
    assert.equal(pick(w.audit).length, 1);
    assert.equal(pick(gw.auditPath).length, 1);
    for (const r of [wr, sr]) assert.equal(typeof r.latency_us, 'number', JSON.stringify(r));
    assert.deepEqual(comparable(wr, ['latency_us']), comparable(sr, ['latency_us']));
  });

  for (const [what, line, code, skip] of CASES) {
    test(what, async () => {
      const id = Number(/"id":(\d+)/.exec(line)[1]);
      const seenW = auditRecords(w.audit).length, seenS = auditRecords(gw.auditPath).length;
      w.send(line);
      const got = await w.reply(id, 10000);
      assert.equal(got.error?.code, code, JSON.stringify(got));
      const wrapperBytes = w.lines.find((l) => { const m = JSON.parse(l); return m.id === id && !m.method; });
      const r = await gw.post(line, { token: tok, session: sid, version: V });
      assert.equal(answerText(r), wrapperBytes, 'the same error bytes');

      // the record of the decision, among those each log got since the case began
      const pick = (file, seen) => auditRecords(file).slice(seen).find((x) => x.error_code === code);
      const wr = await waitFor(() => pick(w.audit, seenW), 3000, 'the wrapper\'s record');
      const sr = await waitFor(() => pick(gw.auditPath, seenS), 3000, 'serve\'s record');
      assert.deepEqual(comparable(wr, skip), comparable(sr, skip), 'the same audit record');
      assert.ok(!JSON.stringify(wr).includes(KEY) && !JSON.stringify(sr).includes(KEY), 'no secret in the log');
    });
  }
});

describe('the wrapper and aip serve refuse the same resource URIs and prompt arguments', () => {
  const tok = newToken('paths');
  let gw, sid, w;

  before(async () => {
    gw = await Gateway.start({
      servers: { t: testServer() },
      agents: [{ name: 'paths', token: tok, servers: ['t'], policy: PATHS_POLICY }],
    });
    sid = await gw.rawSession(tok, V);
    w = RawWrapper.start({ target: TARGET_TEST_SERVER, spec: PATHS_POLICY });
    await w.init(V);
  });

  after(async () => {
    if (w) await w.stop();
    if (gw) await gw.stop();
  });

  for (const [what, line] of PATH_CASES) {
    test(what, async () => {
      const id = Number(/"id":(\d+)/.exec(line)[1]);
      const seenW = auditRecords(w.audit).length, seenS = auditRecords(gw.auditPath).length;
      w.send(line);
      const got = await w.reply(id, 10000);
      assert.equal(got.error?.code, -32007, `the wrapper refuses it: ${JSON.stringify(got)}`);
      const wrapperBytes = w.lines.find((l) => { const m = JSON.parse(l); return m.id === id && !m.method; });
      const r = await gw.post(line, { token: tok, session: sid, version: V });
      assert.equal(answerText(r), wrapperBytes, 'the same error bytes');
      const pick = (file, seen) => auditRecords(file).slice(seen).find((x) => x.error_code === -32007);
      const wr = await waitFor(() => pick(w.audit, seenW), 3000, 'the wrapper\'s record');
      const sr = await waitFor(() => pick(gw.auditPath, seenS), 3000, 'serve\'s record');
      assert.deepEqual(comparable(wr), comparable(sr), 'the same audit record');
      assert.equal(wr.method, JSON.parse(line).method);
      assert.ok(wr.tool, 'the URI or prompt name in place of tool');
    });
  }

  test('an unprotected resources/read goes on to the server through the wrapper', async () => {
    w.send(rpc(38, 'resources/read', { uri: 'file:///srv/open/readme' }));
    const got = await w.reply(38, 10000);
    assert.notEqual(got.error?.code, -32007, JSON.stringify(got));
  });
});
