// `ask_via: elicitation` in `aip serve`: a tools/call whose policy says `ask` is put to the
// agent's own user through its MCP client (elicitation/create on the call's SSE stream) when
// the client declared the capability; accept -> the real result, decline/cancel -> -32004,
// no answer within approvals.timeout -> -32005. Clients that cannot be asked (no capability,
// protocol 2025-03-26) and agents with the default ask_via go to the operators' queue.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { Gateway, newToken, sha256hex, sseReader, testServer, textOf, waitFor, within } from './lib/harness.mjs';

let gw;
const opToken = newToken('operator');
const askToken = newToken('asker'); // ask_via: elicitation
const queueToken = newToken('queuer'); // ask_via default (queue)
const TIMEOUT_MS = 2000;

before(async () => {
  const policy = { allowed_tools: ['add'], tool_rules: [{ tool: 'echo', action: 'ask' }] };
  gw = await Gateway.start({
    servers: { t: testServer() },
    agents: [
      { name: 'asker', token: askToken, servers: ['t'], policy, ask_via: 'elicitation' },
      { name: 'queuer', token: queueToken, servers: ['t'], policy },
    ],
    extra: {
      operators: [{ name: 'alice', token_sha256: sha256hex(opToken) }],
      approvals: { timeout: `${TIMEOUT_MS / 1000}s` },
    },
  });
});
after(async () => { await gw?.stop(); });

const op = (p, opts = {}) => fetch(`${gw.adminUrl}${p}`, {
  ...opts, headers: { Authorization: `Bearer ${opToken}`, 'Content-Type': 'application/json' },
});

async function pendingFor(message) {
  let found;
  await waitFor(async () => {
    const list = (await (await op('/v1/approvals?status=pending')).json()).approvals;
    found = list.find((a) => a.arguments?.message === message);
    return !!found;
  }, 5000, `a pending approval for ${message}`);
  return found;
}

/** An SDK client declaring elicitation whose user answers with `answer(request, extra)`. */
async function elicitClient(answer, token = askToken) {
  const seen = [];
  const { client } = await gw.connect(token, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, (req, extra) => {
    seen.push({ req, signal: extra.signal });
    return answer(req, extra);
  });
  return { client, seen };
}

const auditLines = () => gw.auditRecords();
const auditFor = (message) => auditLines().filter((l) => l.tool === 'echo' && l.args?.message === message);

test('accept: the question reaches the agent\'s user, the call goes upstream, the result arrives', () => gw.wrap(async () => {
  const { client, seen } = await elicitClient(() => ({ action: 'accept', content: { approve: true } }));
  const res = await client.callTool({ name: 'echo', arguments: { message: 'elicit-accept' } });
  assert.equal(textOf(res), 'elicit-accept');
  assert.equal(seen.length, 1);
  const p = seen[0].req.params;
  assert.equal(p.mode, 'form');
  assert.match(p.message, /"echo"/);
  assert.match(p.message, /elicit-accept/);
  assert.match(p.message, /AIP policy "asker"/);
  assert.deepEqual(p.requestedSchema.required, ['approve']);
  assert.equal(p.requestedSchema.properties.approve.type, 'boolean');
  // nothing went to the operators' queue
  const all = (await (await op('/v1/approvals')).json()).approvals;
  assert.equal(all.filter((a) => a.arguments?.message === 'elicit-accept').length, 0);
  await waitFor(() => auditFor('elicit-accept').length >= 3, 3000, 'audit lines');
  const lines = auditFor('elicit-accept');
  assert.deepEqual(lines.map((l) => l.decision), ['ASK', 'APPROVED', 'ALLOW']);
  assert.match(lines[1].reason, /approved by the agent's user \(MCP elicitation\)/);
})());

for (const [label, answer, why] of [
  ['decline', { action: 'decline' }, /declined/],
  ['cancel', { action: 'cancel' }, /dismissed/],
  ['accept without approve: true', { action: 'accept', content: { approve: false } }, /did not approve/],
]) {
  test(`${label}: -32004 User denied, audited DENIED`, () => gw.wrap(async () => {
    const message = `elicit-${label.split(' ')[0]}-${label.length}`;
    const { client, seen } = await elicitClient(() => answer);
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message } }),
      (e) => e.code === -32004 && /User denied/.test(e.message));
    assert.equal(seen.length, 1);
    await waitFor(() => auditFor(message).length >= 2, 3000, 'audit lines');
    const lines = auditFor(message);
    assert.deepEqual(lines.map((l) => l.decision), ['ASK', 'DENIED']);
    assert.match(lines[1].reason, why);
  })());
}

test('no answer within approvals.timeout: -32005, the question is withdrawn, audited EXPIRED', () => gw.wrap(async () => {
  const { client, seen } = await elicitClient(() => new Promise(() => {}));
  const t0 = Date.now();
  await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'elicit-silent' } }),
    (e) => e.code === -32005 && /User approval timeout/.test(e.message));
  const ms = Date.now() - t0;
  assert.ok(ms >= TIMEOUT_MS - 100 && ms < TIMEOUT_MS + 2000, `took ${ms} ms`);
  assert.equal(seen.length, 1);
  // notifications/cancelled for our question aborted the client's handler
  await waitFor(() => seen[0].signal.aborted, 2000, 'the elicitation handler to be aborted');
  await waitFor(() => auditFor('elicit-silent').length >= 2, 3000, 'audit lines');
  const lines = auditFor('elicit-silent');
  assert.deepEqual(lines.map((l) => l.decision), ['ASK', 'EXPIRED']);
  assert.match(lines[1].reason, /no answer to the elicitation within 2000 ms/);
})());

test('the agent cancels the call while its user is asked: question withdrawn, audited DENIED', () => gw.wrap(async () => {
  const { client, seen } = await elicitClient(() => new Promise(() => {}));
  const ac = new AbortController();
  const call = client.callTool({ name: 'echo', arguments: { message: 'elicit-abort' } }, undefined, { signal: ac.signal });
  call.catch(() => {});
  await waitFor(() => seen.length === 1, 3000, 'the question');
  ac.abort();
  await assert.rejects(call);
  await waitFor(() => seen[0].signal.aborted, 3000, 'the elicitation handler to be aborted');
  await waitFor(() => auditFor('elicit-abort').length >= 2, 3000, 'audit lines');
  const lines = auditFor('elicit-abort');
  assert.deepEqual(lines.map((l) => l.decision), ['ASK', 'DENIED']);
  assert.match(lines[1].reason, /ended before the user answered/);
})());

test('a client without the elicitation capability goes to the operator queue', () => gw.wrap(async () => {
  const { client } = await gw.connect(askToken);
  const call = client.callTool({ name: 'echo', arguments: { message: 'elicit-nocap' } });
  call.catch(() => {});
  const a = await pendingFor('elicit-nocap');
  assert.equal(a.agent, 'asker');
  const r = await op(`/v1/approvals/${a.id}/approve`, { method: 'POST', body: '{"reason":"ok"}' });
  assert.equal(r.status, 200);
  assert.equal(textOf(await call), 'elicit-nocap');
})());

test('an agent with the default ask_via uses the queue even when its client can elicit', () => gw.wrap(async () => {
  const { client, seen } = await elicitClient(() => ({ action: 'accept', content: { approve: true } }), queueToken);
  const call = client.callTool({ name: 'echo', arguments: { message: 'elicit-queuer' } });
  call.catch(() => {});
  const a = await pendingFor('elicit-queuer');
  assert.equal(a.agent, 'queuer');
  await op(`/v1/approvals/${a.id}/deny`, { method: 'POST', body: '{}' });
  await assert.rejects(call, (e) => e.code === -32004);
  assert.equal(seen.length, 0);
})());

// ---- the wire, without the SDK --------------------------------------------------------------

const HDRS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

async function rawElicitSession(version) {
  const r = await gw.post({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: version, capabilities: { elicitation: {} }, clientInfo: { name: 'raw', version: '1' } },
  }, { token: askToken });
  assert.equal(r.status, 200);
  const sid = r.headers.get('mcp-session-id');
  const n = await gw.post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { token: askToken, session: sid, version });
  assert.equal(n.status, 202);
  return sid;
}

test('wire: elicitation/create on the call\'s SSE stream, the answer POST gets 202, unknown answers 400', () => gw.wrap(async () => {
  const V = '2025-06-18';
  const sid = await rawElicitSession(V);
  const h = { ...HDRS, Authorization: `Bearer ${askToken}`, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V };
  const res = await fetch(gw.url, {
    method: 'POST', headers: h,
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'elicit-wire' } } }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const next = sseReader(res);
  const q = await within(next(), 5000, 'elicitation/create');
  assert.equal(q.method, 'elicitation/create');
  assert.match(q.id, /^aip-elicit-[0-9a-f]{32}$/);
  assert.equal(q.params.mode, undefined, '2025-06-18 has no mode field');
  assert.ok(q.params.requestedSchema.properties.approve);
  const answer = (id, result) => fetch(gw.url, { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id, result }) });
  // an answer to a question never asked, an id of the wrong type, another session's: 400
  for (const id of ['aip-elicit-00000000000000000000000000000000', 7, 'nope']) {
    const bad = await answer(id, { action: 'accept', content: { approve: true } });
    assert.equal(bad.status, 400, `answer id ${id}`);
    assert.equal((await bad.json()).error.code, -32600);
  }
  const other = await rawElicitSession(V);
  const cross = await fetch(gw.url, {
    method: 'POST', headers: { ...h, 'Mcp-Session-Id': other },
    body: JSON.stringify({ jsonrpc: '2.0', id: q.id, result: { action: 'accept', content: { approve: true } } }),
  });
  assert.equal(cross.status, 400, 'another session cannot answer');
  const ok = await answer(q.id, { action: 'accept', content: { approve: true } });
  assert.equal(ok.status, 202);
  assert.equal(await ok.text(), '');
  const final = await within(next(), 5000, 'the call result');
  assert.equal(final.id, 7);
  assert.equal(final.result.content[0].text, 'elicit-wire');
  assert.equal(await next(), null, 'the stream ends after the result');
  const again = await answer(q.id, { action: 'accept', content: { approve: true } });
  assert.equal(again.status, 400, 'a second answer to the same question');
})());

test('wire: a JSON-RPC error as the answer denies the call', () => gw.wrap(async () => {
  const V = '2025-11-25';
  const sid = await rawElicitSession(V);
  const h = { ...HDRS, Authorization: `Bearer ${askToken}`, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V };
  const res = await fetch(gw.url, {
    method: 'POST', headers: h,
    body: JSON.stringify({ jsonrpc: '2.0', id: 'c1', method: 'tools/call', params: { name: 'echo', arguments: { message: 'elicit-err' } } }),
  });
  const next = sseReader(res);
  const q = await within(next(), 5000, 'elicitation/create');
  assert.equal(q.params.mode, 'form');
  const r = await fetch(gw.url, { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: q.id, error: { code: -32602, message: 'no form mode' } }) });
  assert.equal(r.status, 202);
  const final = await within(next(), 5000, 'the call error');
  assert.equal(final.id, 'c1');
  assert.equal(final.error.code, -32004);
})());

test('wire: a 2025-03-26 session (no elicitation in that version) goes to the queue', () => gw.wrap(async () => {
  const V = '2025-03-26';
  const sid = await rawElicitSession(V);
  const h = { ...HDRS, Authorization: `Bearer ${askToken}`, 'Mcp-Session-Id': sid };
  const call = fetch(gw.url, {
    method: 'POST', headers: h,
    body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'elicit-old' } } }),
  });
  const a = await pendingFor('elicit-old');
  await op(`/v1/approvals/${a.id}/deny`, { method: 'POST', body: '{}' });
  const res = await call;
  const next = sseReader(res);
  let m;
  while ((m = await next()) && m.method) assert.notEqual(m.method, 'elicitation/create');
  assert.equal(m.error.code, -32004);
})());

// The drain gives a call held for an answer its chance (up to shutdown_grace): the question runs
// to approvals.timeout here, and the gateway exits 0 right after.
test('SIGTERM while a question is open: the drain waits for it, exit 0, the call is audited EXPIRED', () => gw.wrap(async () => {
  const V = '2025-11-25';
  const sid = await rawElicitSession(V);
  const h = { ...HDRS, Authorization: `Bearer ${askToken}`, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V };
  const res = await fetch(gw.url, {
    method: 'POST', headers: h,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'elicit-sigterm' } } }),
  });
  const next = sseReader(res);
  const q = await within(next(), 5000, 'elicitation/create');
  assert.equal(q.method, 'elicitation/create');
  await gw.restart(); // SIGTERM: must exit 0 within 5 s
  const lines = auditFor('elicit-sigterm');
  assert.deepEqual(lines.map((l) => l.decision), ['ASK', 'EXPIRED']);
})());
