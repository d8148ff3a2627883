// The ask flow with the official SDK client: a call whose policy says `ask` waits on an SSE
// stream until an operator decides through the approval API (approve -> the real result,
// deny -> -32004, no decision -> -32005), and an approval made after the agent gave up serves
// the same call once when the agent retries.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway, newToken, sha256hex, testServer, textOf, waitFor } from './lib/harness.mjs';

let gw;
const opToken = newToken('operator');
const agentToken = newToken('agent');

before(async () => {
  gw = await Gateway.start({
    servers: { t: testServer() },
    agents: [{
      name: 'bot', token: agentToken, servers: ['t'],
      policy: { allowed_tools: ['add'], tool_rules: [{ tool: 'echo', action: 'ask' }] },
    }],
    extra: {
      operators: [{ name: 'alice', token_sha256: sha256hex(opToken) }],
      approvals: { timeout: '3s' },
    },
  });
});
after(async () => { await gw?.stop(); });

const op = (path, opts = {}) => fetch(`${gw.adminUrl}${path}`, {
  ...opts, headers: { Authorization: `Bearer ${opToken}`, 'Content-Type': 'application/json', ...(opts.headers || {}) },
});

async function pendingFor(message) {
  let found;
  await waitFor(async () => {
    const r = await op('/v1/approvals?status=pending');
    const list = (await r.json()).approvals;
    found = list.find((a) => a.arguments?.message === message);
    return !!found;
  }, 5000, `a pending approval for ${message}`);
  return found;
}

test('ask -> approve via the API -> the real result arrives; the decision is recorded', () => gw.wrap(async () => {
  const { client } = await gw.connect(agentToken);
  const call = client.callTool({ name: 'echo', arguments: { message: 'approve-me' } });
  const a = await pendingFor('approve-me');
  assert.equal(a.agent, 'bot');
  assert.equal(a.tool, 'echo');
  assert.equal(a.server, 't');
  const r = await op(`/v1/approvals/${a.id}/approve`, { method: 'POST', body: '{"reason":"fine"}' });
  assert.equal(r.status, 200);
  const rec = await r.json();
  assert.equal(rec.status, 'approved');
  assert.equal(rec.decided_by, 'alice');
  assert.equal(textOf(await call), 'approve-me');
  // a second decision is a conflict
  const again = await op(`/v1/approvals/${a.id}/deny`, { method: 'POST', body: '{}' });
  assert.equal(again.status, 409);
})());

test('ask -> deny -> -32004 User denied', () => gw.wrap(async () => {
  const { client } = await gw.connect(agentToken);
  const call = client.callTool({ name: 'echo', arguments: { message: 'deny-me' } });
  call.catch(() => {}); // asserted below; not an unhandled rejection meanwhile
  const a = await pendingFor('deny-me');
  const r = await op(`/v1/approvals/${a.id}/deny`, { method: 'POST', body: '{"reason":"no"}' });
  assert.equal(r.status, 200);
  await assert.rejects(call, (e) => e.code === -32004 && /User denied/.test(e.message));
})());

test('ask -> nobody decides -> -32005 User approval timeout, the record is expired', () => gw.wrap(async () => {
  const { client } = await gw.connect(agentToken);
  const t0 = Date.now();
  const call = client.callTool({ name: 'echo', arguments: { message: 'ignore-me' } });
  call.catch(() => {});
  const a = await pendingFor('ignore-me');
  await assert.rejects(call, (e) => e.code === -32005 && /User approval timeout/.test(e.message));
  assert.ok(Date.now() - t0 < 6000);
  const r = await op(`/v1/approvals/${a.id}`);
  assert.equal((await r.json()).status, 'expired');
})());

test('the agent gives up, the operator approves, the same call retried is served once', () => gw.wrap(async () => {
  const { client } = await gw.connect(agentToken);
  const ac = new AbortController();
  const call = client.callTool({ name: 'echo', arguments: { message: 'retry-me' } }, undefined, { signal: ac.signal });
  call.catch(() => {});
  const a = await pendingFor('retry-me');
  ac.abort();
  await assert.rejects(call);
  const r = await op(`/v1/approvals/${a.id}/approve`, { method: 'POST', body: '{}' });
  assert.equal(r.status, 200);
  const res = await client.callTool({ name: 'echo', arguments: { message: 'retry-me' } });
  assert.equal(textOf(res), 'retry-me');
  // only once: the next identical call asks again
  const again = client.callTool({ name: 'echo', arguments: { message: 'retry-me' } });
  again.catch(() => {});
  const b = await pendingFor('retry-me');
  assert.notEqual(b.id, a.id);
  await op(`/v1/approvals/${b.id}/deny`, { method: 'POST', body: '{}' });
  await assert.rejects(again, (e) => e.code === -32004);
})());

test('audit log records ASK, APPROVED, DENIED and EXPIRED', () => gw.wrap(async () => {
  const fs = await import('node:fs');
  const lines = gw.auditRecords();
  const decisions = new Set(lines.map((l) => l.decision));
  for (const d of ['ASK', 'APPROVED', 'DENIED', 'EXPIRED']) assert.ok(decisions.has(d), d);
})());
