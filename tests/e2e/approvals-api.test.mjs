// The approval API and the operator page on the admin listener: authentication, validation and
// the security headers of the page. (The ask flow itself is tested with the SDK client in
// approvals-flow tests once the gateway parks `ask` calls.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway, newToken, sha256hex, testServer } from './lib/harness.mjs';

let gw;
const opToken = newToken('operator');
const agentToken = newToken('agent');

before(async () => {
  gw = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'bot', token: agentToken, policy: { allowed_tools: ['echo'] }, servers: ['t'] }],
    extra: { operators: [{ name: 'alice', token_sha256: sha256hex(opToken) }] },
  });
});
after(async () => { await gw?.stop(); });

const api = (path, opts = {}) => fetch(`${gw.adminUrl}${path}`, opts);
const auth = (t = opToken) => ({ Authorization: `Bearer ${t}` });
const someId = '0123456789abcdef0123456789abcdef';

test('no token, a wrong token and an agent token are all 401 with WWW-Authenticate', async () => {
  for (const headers of [{}, auth('nope'), auth(agentToken)]) {
    const r = await api('/v1/approvals', { headers });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') || '', /^Bearer/);
    assert.equal((await r.json()).error, 'unauthorized');
  }
});

test('list: empty queue, filters validated', async () => {
  let r = await api('/v1/approvals?status=pending', { headers: auth() });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { approvals: [], next_offset: null });
  for (const q of ['status=bogus', 'limit=100000', 'offset=-1', 'limit=abc']) {
    r = await api(`/v1/approvals?${q}`, { headers: auth() });
    assert.equal(r.status, 400, q);
    assert.equal((await r.json()).error, 'bad_request');
  }
});

test('unknown and malformed ids are 404; wrong methods are 405', async () => {
  let r = await api(`/v1/approvals/${someId}`, { headers: auth() });
  assert.equal(r.status, 404);
  r = await api('/v1/approvals/not-an-id', { headers: auth() });
  assert.equal(r.status, 404);
  r = await api(`/v1/approvals/${someId}/approve`, { method: 'POST', headers: auth() });
  assert.equal(r.status, 404);
  r = await api(`/v1/approvals/${someId}/approve`, { headers: auth() });
  assert.equal(r.status, 405);
  r = await api('/v1/approvals', { method: 'DELETE', headers: auth() });
  assert.equal(r.status, 405);
});

test('a decision body must be exactly {"reason": "..."}', async () => {
  for (const body of ['{', '{"reason": 5}', '{"Reason": "x"}', '{"reason":"a","reason":"b"}', '[]',
                      '{"reason": "x", "extra": 1}']) {
    const r = await api(`/v1/approvals/${someId}/deny`, {
      method: 'POST', headers: { ...auth(), 'Content-Type': 'application/json' }, body,
    });
    assert.equal(r.status, 400, body);
  }
});

test('the event stream opens as text/event-stream', async () => {
  const ac = new AbortController();
  const r = await api('/v1/approvals/events', { headers: auth(), signal: ac.signal });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const reader = r.body.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /^: approvals/);
  ac.abort();
});

test('the operator page: static, strict CSP, no inline script, no cookies', async () => {
  const r = await api('/approvals');
  assert.equal(r.status, 200);
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('set-cookie'), null);
  const html = await r.text();
  for (const m of html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)) {
    assert.match(m[1], /src=/);
    assert.equal(m[2].trim(), '');
  }
  const js = await api('/approvals.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /javascript/);
  assert.doesNotMatch(await js.text(), /innerHTML/); // API values never become HTML
});
