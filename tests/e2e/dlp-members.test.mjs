// Issue 11, items 9 and 10, in `aip serve`: every byte forwarded in either direction has passed
// DLP, whatever member it is in (extra top-level members, error members next to code,
// notifications and progress with extra members, GET-stream events, the head and tail of a
// streamed answer, params._meta of a call), and nothing the gateway writes to its audit log or
// its own log holds a secret that came from an agent or a server (tool and method names, a
// failed_arg, a reason, upstream stderr, an upstream error message).
// The C test server's `raw` tool sends messages with such members (tests/mcp-server/tools.c).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Gateway, TestHttpServer, httpServer, newToken, sseMessages, testServer, waitFor } from './lib/harness.mjs';

const KEY = 'AKIAIOSFODNN7EXAMPLE';
const RED = '[REDACTED:AWS Key]';
const AWS = { name: 'AWS Key', regex: '(AKIA|ASIA)[A-Z0-9]{16}' };
// request-only: what the upstream received is echoed back without response DLP touching it
const AWS_REQ = { ...AWS, scope: 'request' };
const TOOLS = ['raw', 'echo', 'stderr'];
let gw;
const tResp = newToken('resp'), tBlock = newToken('block'), tRedact = newToken('redact');
const tLog = newToken('log');

before(async () => {
  gw = await Gateway.start({
    servers: {
      t: testServer(),
      bad: testServer({ AIP_TEST_LIST_ERROR: `cannot list: ${KEY}` }),
    },
    agents: [
      { name: 'resp', token: tResp, servers: ['t'],
        policy: { allowed_tools: TOOLS, dlp: { patterns: [AWS], stream_threshold: '64KiB' } } },
      { name: 'blocker', token: tBlock, servers: ['t'],
        policy: { allowed_tools: TOOLS, dlp: { scan_requests: true, patterns: [AWS_REQ] } } },
      { name: 'redactor', token: tRedact, servers: ['t'],
        policy: { allowed_tools: TOOLS, dlp: { scan_requests: true, on_request_match: 'redact', patterns: [AWS_REQ] } } },
      { name: 'logger', token: tLog, servers: ['t', 'bad'],
        policy: {
          allowed_tools: TOOLS,
          tool_rules: [{ tool: 'echo', allow_args: { message: '^ok$' }, strict_args: true }],
          dlp: { patterns: [AWS] },
        } },
    ],
  });
});
after(async () => { await gw?.stop(); });

/** A tools/call over raw HTTP on a fresh session: the answer's whole body text. */
async function call(token, name, args, { meta, session } = {}) {
  const sid = session || await gw.rawSession(token);
  const params = { name, arguments: args };
  if (meta) params._meta = meta;
  const r = await gw.post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params },
    { token, session: sid, version: '2025-11-25' });
  assert.equal(r.status, 200, r.text);
  return r.text;
}

function clean(text, what) {
  assert.ok(!text.includes(KEY), `${what}: the secret reached the agent:\n${text.slice(0, 2000)}`);
}

test('an answer\'s extra top-level members (before id, after result, a key) are redacted', () => gw.wrap(async () => {
  const text = await call(tResp, 'raw', {
    before: { x: KEY }, after: { y: `k ${KEY}`, [KEY]: 1 },
  });
  clean(text, 'extra members');
  assert.ok(text.includes(RED), text);
})());

test('answers to a batch (2025-03-26) are redacted, extra members included', () => gw.wrap(async () => {
  const sid = await gw.rawSession(tResp, '2025-03-26');
  const callMsg = (id, args) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'raw', arguments: args } });
  const r = await gw.post([callMsg(1, { before: { x: KEY } }), callMsg(2, { error: { code: 1, message: 'm', k: KEY } })],
    { token: tResp, session: sid });
  assert.equal(r.status, 200, r.text);
  clean(r.text, 'batch');
  assert.ok(r.text.includes(RED), r.text);
})());

test('error members next to code and message are redacted', () => gw.wrap(async () => {
  const text = await call(tResp, 'raw', {
    error: { code: -32000, message: 'failed', hint: KEY, more: { k: [KEY] } },
  });
  clean(text, 'error members');
  const m = sseMessages(text).at(-1) ?? JSON.parse(text);
  assert.equal(m.error.code, -32000);
  assert.equal(m.error.hint, RED);
})());

test('notifications and progress of a call with extra members are redacted', () => gw.wrap(async () => {
  const text = await call(tResp, 'raw', {
    notes: [
      { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'd' }, extra: KEY },
      { jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1, extra: KEY }, top: { k: KEY } },
    ],
  }, { meta: { progressToken: 'p1' } });
  clean(text, 'notifications');
  assert.ok(text.includes(RED), text);
})());

test('GET-stream events are redacted, extra members included', () => gw.wrap(async () => {
  const sid = await gw.rawSession(tResp);
  const ac = new AbortController();
  const res = await fetch(gw.url, {
    headers: { Authorization: `Bearer ${tResp}`, Accept: 'text/event-stream', 'Mcp-Session-Id': sid,
               'MCP-Protocol-Version': '2025-11-25' },
    signal: ac.signal,
  });
  assert.equal(res.status, 200);
  let got = '';
  const reading = (async () => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of res.body) got += dec.decode(chunk);
    } catch { /* aborted */ }
  })();
  try {
    await call(tResp, 'raw', {
      unrelated: [{ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'g' },
                    extra: KEY, [KEY]: true }],
    }, { session: sid });
    await waitFor(() => got.includes('notifications/message'), 5000, 'the GET-stream event');
    clean(got, 'GET stream');
    assert.ok(got.includes(RED), got);
  } finally {
    ac.abort();
    await reading;
  }
})());

test('a streamed large answer: members in its head and tail are redacted', () => gw.wrap(async () => {
  const text = await call(tResp, 'raw', { before: { x: KEY }, after: { y: KEY }, pad: 300000 });
  clean(text, 'streamed answer');
  assert.ok(text.length > 300000, 'the answer is complete');
  const m = sseMessages(text).at(-1);
  assert.equal(m.x, RED);
  assert.equal(m.y, RED);
  assert.equal(m.result.content[0].text.length, 300000);
})());

test('request DLP covers params._meta: block -> -32001, redact -> the upstream sees no secret', () => gw.wrap(async () => {
  const b = await call(tBlock, 'raw', { echo_params: true }, { meta: { note: KEY } });
  const bm = sseMessages(b).at(-1) ?? JSON.parse(b);
  assert.equal(bm.error?.code, -32001, b);
  const r = await call(tRedact, 'raw', { echo_params: true }, { meta: { note: `k ${KEY}` } });
  const rm = sseMessages(r).at(-1) ?? JSON.parse(r);
  const seen = JSON.parse(rm.result.content[0].text); // what the upstream received
  assert.equal(seen._meta.note, `k ${RED}`);
  clean(r, 'redacted request');
  // the arguments as before
  const r2 = await call(tRedact, 'raw', { echo_params: true, before: { q: KEY } });
  const seen2 = JSON.parse((sseMessages(r2).at(-1) ?? JSON.parse(r2)).result.content[0].text);
  assert.equal(seen2.arguments.before.q, RED);
})());

test('no secret from an agent or a server in the audit log or the gateway log', () => gw.wrap(async () => {
  const sid = await gw.rawSession(tLog);
  const post = (msg) => gw.post(msg, { token: tLog, session: sid, version: '2025-11-25' });
  // a tool name (not allowed: audited with its name and a reason naming it)
  let r = await post({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: `t_${KEY}`, arguments: {} } });
  assert.match(r.text, /-32001/);
  // a method name (not allowed)
  r = await post({ jsonrpc: '2.0', id: 2, method: `x/${KEY}`, params: {} });
  assert.match(r.text, /"error"/);
  // an undeclared argument (strict_args): failed_arg and the reason hold its name
  r = await post({ jsonrpc: '2.0', id: 3, method: 'tools/call',
    params: { name: 'echo', arguments: { message: 'ok', [`a_${KEY}`]: 1 } } });
  assert.match(r.text, /-32001/);
  // a failed regex: the reason
  r = await post({ jsonrpc: '2.0', id: 4, method: 'tools/call',
    params: { name: 'echo', arguments: { message: KEY } } });
  assert.match(r.text, /-32001/);
  // upstream stderr
  r = await post({ jsonrpc: '2.0', id: 5, method: 'tools/call',
    params: { name: 'stderr', arguments: { message: `stderr says ${KEY}\n` } } });
  assert.match(r.text, /"ok"|ok/);
  await waitFor(() => /upstream logger\/t stderr: stderr says/.test(gw.stderr), 5000, 'the stderr line');
  // a secret across the old 1000-byte cut of a stderr line, and a line too long to log whole
  r = await post({ jsonrpc: '2.0', id: 6, method: 'tools/call',
    params: { name: 'stderr', arguments: { message: `${'y'.repeat(990)}${KEY}\n${'z'.repeat(30000)}${KEY}\nlast\n` } } });
  await waitFor(() => /upstream logger\/t stderr: last/.test(gw.stderr), 5000, 'the last stderr line');
  assert.ok(!gw.stderr.includes(KEY.slice(0, 8)), 'part of a secret in the gateway log');
  // an upstream error message (server `bad` fails tools/list: logged)
  await waitFor(() => /logger\/bad: tools\/list failed/.test(gw.stderr), 5000, 'the tools/list failure');
  await waitFor(() => fs.readFileSync(gw.auditPath, 'utf8').includes('x/'), 5000, 'the audit records');
  const audit = fs.readFileSync(gw.auditPath, 'utf8');
  assert.ok(!audit.includes(KEY), `the audit log holds the secret:\n${audit}`);
  assert.ok(!gw.stderr.includes(KEY), `the gateway log holds the secret:\n${gw.stderr}`);
  const recs = audit.trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.agent === 'logger');
  assert.ok(recs.some((x) => x.tool === `t_${RED}`), 'the tool name is redacted, not dropped');
  assert.ok(recs.some((x) => x.failed_arg === `a_${RED}`), 'failed_arg is redacted');
  assert.ok(recs.some((x) => x.method === `x/${RED}`), 'the method is redacted');
  assert.match(gw.stderr, /stderr says \[REDACTED:AWS Key\]/);
})());

test('HTTP upstreams (JSON and SSE replies, small and streamed): extra members are redacted', async () => {
  const ups = {};
  for (const reply of ['json', 'sse']) ups[reply] = await TestHttpServer.start({ reply });
  const tok = newToken('http');
  const g = await Gateway.start({
    servers: { j: httpServer(ups.json.url), s: httpServer(ups.sse.url) },
    agents: [{ name: 'http', token: tok, servers: ['j', 's'],
               policy: { allowed_tools: ['j__raw', 's__raw'], dlp: { patterns: [AWS], stream_threshold: '64KiB' } } }],
  });
  try {
    await g.wrap(async () => {
      for (const srv of ['j', 's']) {
        for (const pad of [0, 200000]) {
          const sid = await g.rawSession(tok);
          const r = await g.post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: {
            name: `${srv}__raw`, _meta: { progressToken: 'p' }, arguments: {
              before: { x: KEY }, after: { y: KEY }, pad,
              notes: [{ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 }, top: KEY }] } } },
          { token: tok, session: sid, version: '2025-11-25' });
          assert.equal(r.status, 200, r.text.slice(0, 500));
          assert.ok(!r.text.includes(KEY), `${srv} pad ${pad}: the secret reached the agent:\n${r.text.slice(0, 1000)}`);
          const m = sseMessages(r.text).at(-1) ?? JSON.parse(r.text);
          assert.equal(m.x, RED, `${srv} pad ${pad}`);
          assert.equal(m.y, RED, `${srv} pad ${pad}`);
        }
      }
    })();
  } finally {
    await g.stop();
    for (const u of Object.values(ups)) await u.stop();
  }
});
