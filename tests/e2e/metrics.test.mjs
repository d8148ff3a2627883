// /metrics moves with what happens: approval decisions by outcome (approved, denied, expired)
// with a latency observation each, the pending-approvals gauge (also for a call whose agent
// left), rate-limit rejections per agent, store batches; the text passes `promtool check
// metrics` with HELP and TYPE for every metric. And a call held for a human hears from the
// gateway every approvals.keepalive: progress notifications carrying the SDK's progressToken
// (onprogress), or SSE comments when the client sent none.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { Gateway, metricValue, newToken, sha256hex, testServer, textOf, waitFor } from './lib/harness.mjs';

let gw;
const opToken = newToken('operator');
const agentToken = newToken('agent');

before(async () => {
  gw = await Gateway.start({
    servers: { t: testServer() },
    agents: [{
      name: 'bot', token: agentToken, servers: ['t'],
      policy: {
        allowed_tools: ['add'],
        tool_rules: [{ tool: 'echo', action: 'ask' }, { tool: 'add', rate_limit: '1/hour' }],
      },
    }],
    extra: {
      operators: [{ name: 'alice', token_sha256: sha256hex(opToken) }],
      approvals: { timeout: '2s', keepalive: '200ms' },
    },
  });
});
after(async () => { await gw?.stop(); });

const op = (path, opts = {}) => fetch(`${gw.adminUrl}${path}`, {
  ...opts, headers: { Authorization: `Bearer ${opToken}`, 'Content-Type': 'application/json', ...(opts.headers || {}) },
});

async function metrics() {
  const { status, text } = await gw.admin('/metrics');
  assert.equal(status, 200);
  return (name) => metricValue(text, name);
}

async function pendingFor(message) {
  let found;
  await waitFor(async () => {
    const list = (await (await op('/v1/approvals?status=pending')).json()).approvals;
    found = list.find((a) => a.arguments?.message === message);
    return !!found;
  }, 5000, `a pending approval for ${message}`);
  return found;
}

const APPROVED = 'aip_approval_decisions_total{outcome="approved"}';
const DENIED = 'aip_approval_decisions_total{outcome="denied"}';
const EXPIRED = 'aip_approval_decisions_total{outcome="expired"}';
const DECIDED_N = 'aip_approval_decision_seconds_count';

test('every metric has HELP and TYPE, promtool accepts the text, the INTERFACES names are there', () => gw.wrap(async () => {
  const { text } = await gw.admin('/metrics');
  const typed = new Set(), helped = new Set();
  for (const line of text.split('\n')) {
    let m = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
    if (m) typed.add(m[1]);
    m = /^# HELP (\S+) \S/.exec(line);
    if (m) helped.add(m[1]);
  }
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const series = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)[0];
    const name = typed.has(series) ? series : series.replace(/_(bucket|sum|count)$/, '');
    assert.ok(typed.has(name), `TYPE for ${name}`);
    assert.ok(helped.has(name), `HELP for ${name}`);
  }
  for (const name of ['aip_policy_decisions', 'aip_dlp_redactions_total', 'aip_policy_load_errors_total',
    'aip_policy_reloads_total', 'aip_rate_limited_total', 'aip_approval_decisions_total',
    'aip_approval_decision_seconds', 'aip_approvals_pending', 'aip_store_batch_seconds',
    'aip_upstream_restarts_total', 'aip_audit_queue_depth', 'aip_active_sessions',
    'aip_tool_call_duration_seconds']) assert.ok(typed.has(name), name);
  assert.equal(metricValue(text, 'aip_policy_load_errors_total'), 0);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (check.error?.code === 'ENOENT') return; // promtool not installed: the checks above stand
  // promtool also lints names (e.g. counters without _total); only a parse error is a failure
  assert.doesNotMatch(check.stderr + check.stdout, /error while linting|parse error|text format parsing error/i,
    check.stderr + check.stdout);
})());

test('approve, deny, expire: each outcome +1, one latency observation each; pending goes up and down', () => gw.wrap(async () => {
  const m0 = await metrics();
  const { client } = await gw.connect(agentToken);

  const ok = client.callTool({ name: 'echo', arguments: { message: 'm-approve' } });
  const a = await pendingFor('m-approve');
  assert.equal((await metrics())('aip_approvals_pending'), m0('aip_approvals_pending') + 1);
  assert.equal((await op(`/v1/approvals/${a.id}/approve`, { method: 'POST', body: '{}' })).status, 200);
  assert.equal(textOf(await ok), 'm-approve');
  let m = await metrics();
  assert.equal(m(APPROVED), m0(APPROVED) + 1);
  assert.equal(m(DECIDED_N), m0(DECIDED_N) + 1);
  assert.ok(m('aip_approval_decision_seconds_sum') > m0('aip_approval_decision_seconds_sum'));
  assert.equal(m('aip_approvals_pending'), m0('aip_approvals_pending'));

  const no = client.callTool({ name: 'echo', arguments: { message: 'm-deny' } });
  no.catch(() => {});
  const d = await pendingFor('m-deny');
  await op(`/v1/approvals/${d.id}/deny`, { method: 'POST', body: '{}' });
  await assert.rejects(no, (e) => e.code === -32004);
  m = await metrics();
  assert.equal(m(DENIED), m0(DENIED) + 1);
  assert.equal(m(DECIDED_N), m0(DECIDED_N) + 2);

  // the agent gives up: the record stays pending (gauge), then expires (counter)
  const ac = new AbortController();
  const gone = client.callTool({ name: 'echo', arguments: { message: 'm-expire' } }, undefined, { signal: ac.signal });
  gone.catch(() => {});
  await pendingFor('m-expire');
  ac.abort();
  await assert.rejects(gone);
  m = await metrics();
  if (m(EXPIRED) === m0(EXPIRED)) { // (a very slow machine may have passed the 2 s timeout already)
    assert.equal(m('aip_approvals_pending'), m0('aip_approvals_pending') + 1, 'pending although nobody waits');
  }
  await waitFor(async () => (await metrics())(EXPIRED) === m0(EXPIRED) + 1, 6000, 'the expired counter');
  m = await metrics();
  assert.equal(m('aip_approvals_pending'), m0('aip_approvals_pending'));
  assert.equal(m(DECIDED_N), m0(DECIDED_N) + 3);
  assert.equal(m(APPROVED), m0(APPROVED) + 1, 'approved unchanged');
  // the store committed those records in batches
  assert.ok(m('aip_store_batch_seconds_count') > m0('aip_store_batch_seconds_count'));
})());

test('a rate-limited call counts in aip_rate_limited_total{agent}', () => gw.wrap(async () => {
  const key = 'aip_rate_limited_total{agent="bot"}';
  const before = (await metrics())(key);
  assert.equal(typeof before, 'number');
  const { client } = await gw.connect(agentToken);
  await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
  assert.equal((await metrics())(key), before, 'an allowed call is not counted');
  await assert.rejects(client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }), (e) => e.code === -32002);
  assert.equal((await metrics())(key), before + 1);
})());

test('a held call with onprogress gets progress notifications before the approval arrives', () => gw.wrap(async () => {
  const { client } = await gw.connect(agentToken);
  const seen = [];
  const call = client.callTool({ name: 'echo', arguments: { message: 'm-progress' } }, undefined, {
    onprogress: (p) => seen.push(p),
  });
  let settled = false;
  call.then(() => { settled = true; }, () => { settled = true; });
  const a = await pendingFor('m-progress');
  await waitFor(() => seen.length >= 2, 3000, 'two progress notifications');
  assert.equal(settled, false, 'still waiting for the human');
  assert.ok(seen[1].progress > seen[0].progress, `progress grows: ${JSON.stringify(seen)}`);
  assert.equal(seen[0].total, undefined);
  assert.match(seen[0].message, /approval/);
  await op(`/v1/approvals/${a.id}/approve`, { method: 'POST', body: '{}' });
  assert.equal(textOf(await call), 'm-progress');
})());

test('without a progressToken the held stream carries SSE comments instead', () => gw.wrap(async () => {
  const sid = await gw.rawSession(agentToken);
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${agentToken}`, 'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'm-comment' } } }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  const a = await pendingFor('m-comment');
  while (!text.includes(': waiting for approval')) {
    const { value, done } = await reader.read();
    assert.ok(!done, `stream ended early: ${text}`);
    text += dec.decode(value);
  }
  assert.doesNotMatch(text, /notifications\/progress/);
  await op(`/v1/approvals/${a.id}/approve`, { method: 'POST', body: '{}' });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  assert.match(text, /"id":7/);
  assert.match(text, /m-comment/);
})());

test('aip_approvals_pending counts records left by an earlier run', async () => {
  const g = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'bot', token: agentToken, servers: ['t'], policy: { tool_rules: [{ tool: 'echo', action: 'ask' }] } }],
    extra: { operators: [{ name: 'alice', token_sha256: sha256hex(opToken) }], approvals: { timeout: '10m' },
             shutdown_grace: '1s' }, // the restart may find the cancelled call still held
  });
  try {
    await g.wrap(async () => {
      const { client } = await g.connect(agentToken);
      const ac = new AbortController();
      const call = client.callTool({ name: 'echo', arguments: { message: 'left' } }, undefined, { signal: ac.signal });
      call.catch(() => {});
      await waitFor(async () => (await g.metric('aip_approvals_pending')) === 1, 5000, 'one pending');
      ac.abort();
      await g.restart();
      assert.equal(await g.metric('aip_approvals_pending'), 1, 'counted again after the restart');
      assert.equal(await g.metric('aip_approvals_waiting'), 0, 'nobody waits for it');
      const list = await (await fetch(`${g.adminUrl}/v1/approvals?status=pending`, { headers: { Authorization: `Bearer ${opToken}` } })).json();
      const r = await fetch(`${g.adminUrl}/v1/approvals/${list.approvals[0].id}/deny`, {
        method: 'POST', headers: { Authorization: `Bearer ${opToken}`, 'Content-Type': 'application/json' }, body: '{}',
      });
      assert.equal(r.status, 200);
      assert.equal(await g.metric('aip_approvals_pending'), 0);
      assert.equal(await g.metric('aip_approval_decisions_total{outcome="denied"}'), 1);
    })();
  } finally {
    await g.stop();
  }
});

// issue 11: a DNS-rebinding page (evil.example resolving to 127.0.0.1) reads the admin
// listener as same-origin: its GET carries no Origin, only Host: evil.example. Both headers are
// checked on every admin path, with the rules of /mcp (http_guard.c).
function adminReq(path, headers, method = 'GET') {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port: gw.adminPort, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    r.on('error', reject);
    r.end();
  });
}

test('admin listener: a foreign Host or Origin gets 403 on every path; curl/Prometheus/CLI/page headers pass', () => gw.wrap(async () => {
  const paths = ['/healthz', '/readyz', '/metrics', '/v1/approvals', '/approvals', '/v1/approvals/x/approve'];
  const auth = { Authorization: `Bearer ${opToken}` };
  for (const p of paths) {
    const method = p.endsWith('/approve') ? 'POST' : 'GET';
    const host = await adminReq(p, { ...auth, Host: `evil.example:${gw.adminPort}` }, method);
    assert.equal(host.status, 403, `${p} with a foreign Host: ${host.body}`);
    assert.match(host.body, /Host/);
    const origin = await adminReq(p, { ...auth, Origin: 'http://evil.example', Host: `127.0.0.1:${gw.adminPort}` }, method);
    assert.equal(origin.status, 403, `${p} with a foreign Origin`);
    assert.match(origin.body, /Origin/);
    const rebound = await adminReq(p, { ...auth, Host: 'evil.example' }, method);
    assert.equal(rebound.status, 403, `${p} with Host evil.example (no port)`);
  }
  // what Prometheus and curl send (no Origin, Host 127.0.0.1:port), localhost, and the page
  // in a browser (same-origin: Origin http://127.0.0.1:port)
  for (const headers of [{ Host: `127.0.0.1:${gw.adminPort}` }, { Host: `localhost:${gw.adminPort}` },
    { Host: `127.0.0.1:${gw.adminPort}`, Origin: `http://127.0.0.1:${gw.adminPort}` },
    { Host: `[::1]:${gw.adminPort}` }]) {
    const m = await adminReq('/metrics', headers);
    assert.equal(m.status, 200, JSON.stringify(headers));
    const q = await adminReq('/v1/approvals', { ...auth, ...headers });
    assert.equal(q.status, 200, JSON.stringify(headers));
  }
  const page = await adminReq('/approvals', { Host: `127.0.0.1:${gw.adminPort}`, Origin: `http://127.0.0.1:${gw.adminPort}` });
  assert.equal(page.status, 200);
  // malformed Host values are refused too
  for (const h of ['127.0.0.1:80x', '[::1', 'evil.example.:1']) {
    const r = await adminReq('/healthz', { Host: h });
    assert.equal(r.status, 403, h);
  }
})());

test('/mcp: the same Host rule (403 for a rebinding name, before authentication)', () => gw.wrap(async () => {
  const r = await new Promise((resolve, reject) => {
    const q = http.request({ host: '127.0.0.1', port: gw.port, path: '/mcp', method: 'POST', agent: false,
      headers: { Host: `evil.example:${gw.port}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    q.on('error', reject);
    q.end('{"jsonrpc":"2.0","id":1,"method":"ping"}');
  });
  assert.equal(r.status, 403, r.body);
  assert.equal(JSON.parse(r.body).error.code, -32000);
})());
