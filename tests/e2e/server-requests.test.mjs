// Server-to-client requests through `aip serve` (docs/routing.md, "Server-to-client requests"):
// SDK clients with sampling, elicitation and roots handlers -> the gateway ->
// @modelcontextprotocol/server-everything over stdio and over streamableHttp (127.0.0.1).
// server-everything's trigger-sampling-request, trigger-elicitation-request and get-roots-list
// tools send the requests; they exist only because the gateway now declares the capabilities.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

import {
  Gateway, EverythingHttpServer, EVERYTHING_JS, httpServer, newToken, listAllTools, names, sseReader,
  textOf, waitFor, within,
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
const TOKENS = { stdio: newToken('s2c-stdio'), http: newToken('s2c-http') };
const SERVER = { stdio: 'ev-stdio', http: 'ev-http' };
const V = '2025-11-25';
const HDRS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const S2C_ID = /^aip-s2c-[0-9a-f]{32}$/;

let ev;
let gw;

before(async () => {
  ev = await EverythingHttpServer.start();
  gw = await Gateway.start({
    servers: {
      [SERVER.stdio]: { command: [process.execPath, EVERYTHING_JS, 'stdio'] },
      [SERVER.http]: httpServer(ev.url),
    },
    agents: [
      { name: 's2c-stdio', token: TOKENS.stdio, servers: [SERVER.stdio], policy: { allowed_tools: TOOLS, dlp: DLP } },
      { name: 's2c-http', token: TOKENS.http, servers: [SERVER.http], policy: { allowed_tools: TOOLS, dlp: DLP } },
    ],
  });
});

after(async () => {
  try {
    if (gw) await gw.stop();
  } finally {
    if (ev) await ev.stop();
  }
});

const t = (name, fn) => test(name, async (ctx) => {
  try {
    await gw.wrap(fn)(ctx);
  } catch (e) {
    ev.dumpLog(`[${ctx.name}]`);
    throw e;
  }
});

const auditLines = () => fs.readFileSync(gw.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

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
