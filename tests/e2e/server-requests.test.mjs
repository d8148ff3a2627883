// Server-to-client requests through `aip serve` (docs/routing.md, "Server-to-client requests"):
// SDK clients with sampling, elicitation and roots handlers -> the gateway ->
// @modelcontextprotocol/server-everything over stdio and over streamableHttp (127.0.0.1).
// server-everything's trigger-sampling-request, trigger-elicitation-request and get-roots-list
// tools send the requests; they exist only because the gateway now declares the capabilities.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

import {
  Gateway, EverythingHttpServer, EVERYTHING_JS, childrenOf, gatewayTest, httpServer, newToken, listAllTools,
  names, sseReader, stopAll, textOf, waitFor, within,
} from './lib/harness.mjs';

const TOOLS = ['trigger-sampling-request', 'trigger-elicitation-request', 'get-roots-list'];
// a response-scope rule redacts what servers send the agent; a request-scope rule (with
// scan_requests and on_request_match: block) stops what the agent answers a server
const DLP = {
  scan_requests: true,
  on_request_match: 'block',
  patterns: [
    { name: 'Secret', regex: 'sk-[a-z0-9]{10}', scope: 'response' },
    { name: 'Leak', regex: 'LEAK-[0-9]{4}', scope: 'request' },
  ],
};
const TOKENS = { stdio: newToken('s2c-stdio'), http: newToken('s2c-http'), related: newToken('s2c-related') };
const RELATED_JS = new URL('./lib/related-server.mjs', import.meta.url).pathname;
const SERVER = { stdio: 'ev-stdio', http: 'ev-http' };
const V = '2025-11-25';
const HDRS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const S2C_ID = /^aip-s2c-[0-9a-f]{32}$/;

let ev;
let gw;
let gw2; // bounds: one request awaiting the agent at a time, a short request_timeout
const BOUND_TOKEN = newToken('s2c-bound');
const BOUND_TIMEOUT_MS = 3000;

before(async () => {
  ev = await EverythingHttpServer.start();
  gw = await Gateway.start({
    servers: {
      [SERVER.stdio]: { command: [process.execPath, EVERYTHING_JS, 'stdio'] },
      [SERVER.http]: httpServer(ev.url),
      related: { command: [process.execPath, RELATED_JS] },
    },
    agents: [
      { name: 's2c-stdio', token: TOKENS.stdio, servers: [SERVER.stdio], policy: { allowed_tools: TOOLS, dlp: DLP } },
      { name: 's2c-http', token: TOKENS.http, servers: [SERVER.http], policy: { allowed_tools: TOOLS, dlp: DLP } },
      { name: 's2c-related', token: TOKENS.related, servers: ['related'], policy: { allowed_tools: ['sample-named', 'sample-unnamed'] } },
    ],
  });
  gw2 = await Gateway.start({
    servers: { ev: { command: [process.execPath, EVERYTHING_JS, 'stdio'] } },
    agents: [{ name: 's2c-bound', token: BOUND_TOKEN, servers: ['ev'], policy: { allowed_tools: TOOLS } }],
    limits: { max_server_requests_per_agent: 1, request_timeout: `${BOUND_TIMEOUT_MS / 1000}s` },
  });
});

after(() => stopAll([gw2, gw], [ev]));

const t = gatewayTest(() => gw, () => [ev]);

const auditLines = () => gw.auditRecords();

/** An SDK client of the agent that declared `caps`, with a handler per declared capability. */
async function clientWith(T, caps, handlers = {}) {
  const c = await gw.connect(TOKENS[T], { capabilities: caps });
  const seen = [];
  if (handlers.sampling) c.client.setRequestHandler(CreateMessageRequestSchema, (req, extra) => {
    seen.push({ req, extra });
    return handlers.sampling(req, extra);
  });
  if (handlers.elicitation) c.client.setRequestHandler(ElicitRequestSchema, (req, extra) => {
    seen.push({ req, extra });
    return handlers.elicitation(req, extra);
  });
  if (handlers.roots) c.client.setRequestHandler(ListRootsRequestSchema, (req, extra) => {
    seen.push({ req, extra });
    return handlers.roots(req, extra);
  });
  return { ...c, seen };
}

const sampled = (text) => ({ model: 'agent-model', role: 'assistant', content: { type: 'text', text } });

/** Raw initialize with `caps` + notifications/initialized: the session id and its headers. */
async function rawSession(T, caps) {
  const r = await gw.post({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: V, capabilities: caps, clientInfo: { name: 'raw', version: '1' } },
  }, { token: TOKENS[T] });
  assert.equal(r.status, 200, r.text);
  const sid = r.headers.get('mcp-session-id');
  const n = await gw.post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { token: TOKENS[T], session: sid, version: V });
  assert.equal(n.status, 202);
  return { sid, h: { ...HDRS, Authorization: `Bearer ${TOKENS[T]}`, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V } };
}

const postRaw = (h, msg) => fetch(gw.url, { method: 'POST', headers: h, body: JSON.stringify(msg) });

/** The next message on the stream that is a request or the answer to `id` (notifications skipped). */
async function nextOf(next, what) {
  for (;;) {
    const m = await within(next(), 10000, what);
    if (m === null || m.id !== undefined) return m;
  }
}

for (const T of ['stdio', 'http']) {
  t(`${T}: the upstream sees the capabilities the gateway routes (its tools that need them are listed)`, async () => {
    const { client } = await clientWith(T, {});
    assert.deepEqual(names(await listAllTools(client)), [...TOOLS].sort());
  });

  t(`${T}: sampling round trip: the upstream's sampling/createMessage reaches the calling session, the answer goes back`, async () => {
    const { client, seen } = await clientWith(T, { sampling: {} }, { sampling: () => sampled('sampled by the agent') });
    const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'say hi', maxTokens: 5 } });
    assert.ok(!r.isError, textOf(r));
    assert.match(textOf(r), /sampled by the agent/);
    assert.equal(seen.length, 1);
    assert.match(String(seen[0].extra.requestId), S2C_ID, 'the gateway\'s own id, not the server\'s');
    assert.match(seen[0].req.params.messages[0].content.text, /say hi/);
    const rec = auditLines().filter((l) => l.method === 'sampling/createMessage' && l.agent === `s2c-${T}` && l.decision === 'ALLOW');
    assert.ok(rec.length >= 1, 'an audit record for the routed request');
    assert.equal(rec.at(-1).direction, 'downstream');
    assert.equal(rec.at(-1).server, SERVER[T]);
    assert.ok(!JSON.stringify(rec.at(-1)).includes('say hi'), 'no message contents in the audit');
  });

  t(`${T}: DLP redacts a secret in the upstream's sampling message before the agent sees it`, async () => {
    const { client, seen } = await clientWith(T, { sampling: {} }, { sampling: () => sampled('fine') });
    const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'my key is sk-abcdefghij', maxTokens: 5 } });
    assert.ok(!r.isError, textOf(r));
    const text = seen[0].req.params.messages[0].content.text;
    assert.ok(!text.includes('sk-abcdefghij'), text);
    assert.match(text, /\[REDACTED:Secret\]/);
    const rec = auditLines().filter((l) => l.method === 'sampling/createMessage' && l.agent === `s2c-${T}`).at(-1);
    assert.deepEqual(rec.dlp?.map((d) => d.rule), ['Secret']);
  });

  t(`${T}: DLP blocks a secret in the agent's sampling answer; the upstream gets an error`, async () => {
    const { client } = await clientWith(T, { sampling: {} }, { sampling: () => sampled('here: LEAK-1234') });
    const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'p', maxTokens: 5 } });
    assert.ok(r.isError, textOf(r));
    assert.match(textOf(r), /Forbidden/);
    assert.ok(!textOf(r).includes('LEAK-1234'));
  });

  t(`${T}: elicitation round trip`, async () => {
    const { client, seen } = await clientWith(T, { elicitation: {} }, {
      elicitation: () => ({ action: 'accept', content: { name: 'Ada Lovelace' } }),
    });
    const r = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    assert.ok(!r.isError, textOf(r));
    assert.match(textOf(r), /Ada Lovelace/);
    assert.equal(seen.length, 1);
    assert.match(String(seen[0].extra.requestId), S2C_ID);
    assert.ok(seen[0].req.params.requestedSchema?.properties?.name);
  });

  t(`${T}: roots/list answered by the client, and notifications/roots/list_changed reaches the upstream`, async () => {
    let roots = [{ uri: 'file:///work/alpha', name: 'alpha' }];
    const { client, seen, getStream } = await clientWith(T, { roots: { listChanged: true } }, { roots: () => ({ roots }) });
    await within(getStream, 5000, 'the GET stream');
    const r = await client.callTool({ name: 'get-roots-list', arguments: {} });
    assert.ok(!r.isError, textOf(r));
    assert.match(textOf(r), /file:\/\/\/work\/alpha/);
    const asked = seen.length;
    assert.ok(asked >= 1);
    roots = [{ uri: 'file:///work/beta', name: 'beta' }];
    await client.sendRootsListChanged();
    // the server asks again, unrelated to any call: on this session's GET stream
    await waitFor(() => seen.length > asked, 5000, 'roots/list after list_changed');
    await waitFor(async () => /work\/beta/.test(textOf(await client.callTool({ name: 'get-roots-list', arguments: {} }))),
      5000, 'the new roots');
  });

  t(`${T}: a session that did not declare sampling gets no request; the upstream gets an error`, async () => {
    const { client } = await clientWith(T, {});
    const r = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'p', maxTokens: 5 } });
    assert.ok(r.isError, textOf(r));
    assert.match(textOf(r), /-32601/);
    assert.match(textOf(r), /declared? the sampling capability/);
    const rec = auditLines().filter((l) => l.method === 'sampling/createMessage' && l.agent === `s2c-${T}` && l.decision === 'BLOCK');
    assert.ok(rec.length >= 1, 'the refusal is audited');
  });

  t(`${T}: wire: no request on the stream of a session without the capability`, async () => {
    const { h } = await rawSession(T, {});
    const res = await postRaw(h, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'trigger-elicitation-request', arguments: {} } });
    assert.equal(res.status, 200);
    const ct = res.headers.get('content-type');
    const msgs = ct.startsWith('text/event-stream') ? [] : [await res.json()];
    if (!msgs.length) for (let next = sseReader(res), m; (m = await within(next(), 10000, 'stream')) !== null;) msgs.push(m);
    assert.ok(!msgs.some((m) => m.method === 'elicitation/create'), JSON.stringify(msgs));
    const final = msgs.find((m) => m.id === 5);
    assert.ok(final.result.isError, JSON.stringify(final));
    assert.match(final.result.content[0].text, /elicitation capability/);
  });

  t(`${T}: wire: ids re-keyed; an answer with an id never sent, from another session, or a second one is refused`, async () => {
    const { h } = await rawSession(T, { sampling: {} });
    const res = await postRaw(h, { jsonrpc: '2.0', id: 'call-1', method: 'tools/call', params: { name: 'trigger-sampling-request', arguments: { prompt: 'wire', maxTokens: 5 } } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const next = sseReader(res);
    const q = await nextOf(next, 'sampling/createMessage');
    assert.equal(q.method, 'sampling/createMessage');
    assert.match(q.id, S2C_ID);
    const result = sampled('wire answer');
    for (const id of ['aip-s2c-00000000000000000000000000000000', 0, 1, 'call-1']) {
      const bad = await postRaw(h, { jsonrpc: '2.0', id, result });
      assert.equal(bad.status, 400, `answer id ${id}`);
      assert.equal((await bad.json()).error.code, -32600);
    }
    const other = await rawSession(T, { sampling: {} });
    const cross = await postRaw(other.h, { jsonrpc: '2.0', id: q.id, result });
    assert.equal(cross.status, 400, 'another session cannot answer it');
    const ok = await postRaw(h, { jsonrpc: '2.0', id: q.id, result });
    assert.equal(ok.status, 202);
    const twice = await postRaw(h, { jsonrpc: '2.0', id: q.id, result });
    assert.equal(twice.status, 400, 'a second answer is refused');
    const final = await nextOf(next, 'the call result');
    assert.equal(final.id, 'call-1');
    assert.match(final.result.content[0].text, /wire answer/);
  });
}

// ---- a stdio server's request: which call is it about? (lib/related-server.mjs) -------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Two sessions of the agent, A then B, each calling `tool` while the other's call is in flight. */
async function twoCalls(tool, { bCapable = true } = {}) {
  const got = { A: [], B: [] };
  const sampler = (who) => ({ sampling: (req) => { got[who].push(req.params); return sampled(`from ${who}`); } });
  const A = await clientWith('related', { sampling: {} }, sampler('A'));
  const B = bCapable ? await clientWith('related', { sampling: {} }, sampler('B')) : await clientWith('related', {});
  const a = A.client.callTool({ name: tool, arguments: { tag: 'A-call', delayMs: 800 } });
  await sleep(200); // B's call is the more recent one when A's request is sent
  const b = B.client.callTool({ name: tool, arguments: { tag: 'B-call', delayMs: 1600 } });
  const ra = await a;
  return { got, a: textOf(ra), aUpstreamId: ra._meta?.upstreamId, b: await b };
}

t('stdio: a request naming its call in _meta.relatedRequestId goes to that call\'s session', async () => {
  const { got, a, aUpstreamId, b } = await twoCalls('sample-named');
  assert.equal(a, 'A-call: from A');
  assert.equal(textOf(b), 'B-call: from B');
  assert.deepEqual(got.A.map((p) => p.messages[0].content.text), ['A-call']);
  // the server's id of our call means nothing to the agent: it sees its own id of the call
  assert.equal(typeof aUpstreamId, 'number');
  assert.equal(typeof got.A[0]._meta?.relatedRequestId, 'number');
  assert.notEqual(got.A[0]._meta.relatedRequestId, aUpstreamId);
});

t('stdio: a request naming no call goes to the most recent call in flight whose session can take it', async () => {
  let r = await twoCalls('sample-unnamed');
  // documented guess: B's call was the most recent one in flight when A's request came
  assert.equal(r.a, 'A-call: from B');
  assert.deepEqual(r.got.B.map((p) => p.messages[0].content.text), ['A-call', 'B-call']);
  assert.equal(r.got.A.length, 0);
  // a more recent call of a session without the capability is passed over
  r = await twoCalls('sample-unnamed', { bCapable: false });
  assert.equal(r.a, 'A-call: from A');
  assert.ok(r.b.isError, 'B\'s own request: its session declared no sampling');
  assert.match(textOf(r.b), /declared the sampling capability/);
});

// ---- bounds and clean-up (gw2: max_server_requests_per_agent 1, request_timeout 3 s) ----------

const t2 = (name, fn) => test(name, (ctx) => gw2.wrap(fn)(ctx));
const audit2 = () => gw2.auditRecords()
  .filter((l) => l.method === 'sampling/createMessage');

/** A sampling client whose answers wait until released; `asked` resolves on each request. */
async function heldSampler() {
  const held = [];
  let notify;
  let asked = new Promise((r) => { notify = r; });
  const c = await gw2.connect(BOUND_TOKEN, { capabilities: { sampling: {} } });
  c.client.setRequestHandler(CreateMessageRequestSchema, (req, extra) => new Promise((resolve) => {
    held.push({ resolve, extra });
    notify();
    asked = new Promise((r) => { notify = r; });
  }));
  return { ...c, held, asked: () => asked };
}

t2('limit: a second request while one awaits the agent is refused at the server', async () => {
  const s = await heldSampler();
  const first = s.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'one', maxTokens: 5 } });
  await within(s.asked(), 5000, 'the first request');
  const second = await s.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'two', maxTokens: 5 } });
  assert.ok(second.isError, textOf(second));
  assert.match(textOf(second), /Too many server requests awaiting agent s2c-bound/);
  assert.equal(s.held.length, 1, 'the second never reached the agent');
  s.held[0].resolve(sampled('first answer'));
  assert.match(textOf(await first), /first answer/);
  // the slot is free again
  const third = s.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'three', maxTokens: 5 } });
  await within(s.asked(), 5000, 'the third request');
  s.held[1].resolve(sampled('third answer'));
  assert.match(textOf(await third), /third answer/);
});

t2('timeout: an unanswered request is withdrawn after request_timeout; a late answer is refused', async () => {
  const { h } = await (async () => {
    const r = await gw2.post({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: V, capabilities: { sampling: {} }, clientInfo: { name: 'raw', version: '1' } },
    }, { token: BOUND_TOKEN });
    const sid = r.headers.get('mcp-session-id');
    await gw2.post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { token: BOUND_TOKEN, session: sid, version: V });
    return { h: { ...HDRS, Authorization: `Bearer ${BOUND_TOKEN}`, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V } };
  })();
  const res = await fetch(gw2.url, { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'trigger-sampling-request', arguments: { prompt: 'late', maxTokens: 5 } } }) });
  const next = sseReader(res);
  const q = await nextOf(next, 'sampling/createMessage');
  assert.match(q.id, S2C_ID);
  await waitFor(() => audit2().some((l) => l.reason === 'timed out'), BOUND_TIMEOUT_MS * 3, 'the timeout record');
  const late = await fetch(gw2.url, { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: q.id, result: sampled('too late') }) });
  assert.equal(late.status, 400, 'the request is no longer outstanding');
});

t2('session end: the upstream hears an error; the record says so', async () => {
  const s = await heldSampler();
  const call = s.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'bye', maxTokens: 5 } }).catch((e) => e);
  await within(s.asked(), 5000, 'the request');
  await s.transport.terminateSession();
  await call;
  await waitFor(() => audit2().some((l) => l.reason === 'session ended'), 5000, 'the session-ended record');
  // the server got its answer (an error) and serves the next session normally
  const s2 = await heldSampler();
  const next = s2.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'next', maxTokens: 5 } });
  await within(s2.asked(), 5000, 'the next request');
  s2.held[0].resolve(sampled('next answer'));
  assert.match(textOf(await next), /next answer/);
});

t2('server death: a request of a server that died is withdrawn from the agent (notifications/cancelled)', async () => {
  const s = await heldSampler();
  await within(s.getStream, 5000, 'the GET stream');
  const call = s.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'doomed', maxTokens: 5 } }).catch((e) => e);
  await within(s.asked(), 5000, 'the request');
  const kids = childrenOf(gw2.pid).filter((c) => c.cmdline.includes(EVERYTHING_JS) && c.state !== 'Z');
  assert.equal(kids.length, 1, JSON.stringify(childrenOf(gw2.pid)));
  process.kill(kids[0].pid, 'SIGKILL');
  const r = await call;
  assert.ok(r instanceof Error || r.isError, 'the call fails with its server');
  await waitFor(() => s.held[0].extra.signal.aborted, 5000, 'the agent\'s handler is cancelled');
  await waitFor(() => audit2().some((l) => l.reason === 'the server went away'), 5000, 'the record');
});
