// Sessions and the gateway ending while calls are in flight: every pending call is answered and
// the gateway survives (DELETE) or exits 0 (SIGTERM). Each case gets its own gateway, so a
// crash here cannot hide other results.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { Gateway, testServer, newToken, textOf, timed, sleep, waitFor } from './lib/harness.mjs';

const TOKEN = newToken('life');
const V = '2025-11-25';
const start = () => Gateway.start({
  servers: { tools: testServer({ AIP_TEST_NAME: 'life' }) },
  extra: { shutdown_grace: '1s' }, // SIGTERM drains for 1 s, then cuts what is left
  agents: [{ name: 'life', token: TOKEN, servers: ['tools'], policy: { allowed_tools: ['echo', 'slow'] } }],
});
const hdrs = (sid) => ({
  'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
  'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V,
});

describe('DELETE of a session with a call in flight', () => {
  let gw;
  before(async () => { gw = await start(); });
  after(async () => { if (gw) await gw.stop(); });

  test('the call is answered with an error, the upstream\'s late answer is dropped, the gateway keeps serving', (ctx) => gw.wrap(async () => {
    const sid = await gw.rawSession(TOKEN);
    const call = gw.raw({
      token: TOKEN, headers: hdrs(sid),
      body: JSON.stringify({ jsonrpc: '2.0', id: 51, method: 'tools/call', params: { name: 'slow', arguments: { ms: 400 } } }),
    });
    await sleep(100);
    const d = await gw.raw({ method: 'DELETE', token: TOKEN, headers: { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V } });
    assert.equal(d.status, 200);
    const r = await call;
    assert.equal(r.status, 200);
    // wait past the upstream's own answer (400 ms)
    await sleep(700);
    assert.equal(gw.proc.signalCode, null, `gateway killed by ${gw.proc.signalCode}`);
    assert.equal(gw.proc.exitCode, null, 'gateway still running');
    const { client } = await gw.connect(TOKEN);
    const e = await client.callTool({ name: 'echo', arguments: { message: 'alive' } });
    assert.equal(textOf(e), 'alive');
  })(ctx));
});

describe('SIGTERM with a call in flight', () => {
  let gw;
  before(async () => { gw = await start(); });
  after(() => { if (gw && gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill('SIGKILL'); });

  test('a call longer than shutdown_grace gets an error when the grace ends; exit 0 within 5 s', (ctx) => gw.wrap(async () => {
    const { client } = await gw.connect(TOKEN);
    await client.callTool({ name: 'echo', arguments: { message: 'warm-up' } });
    const call = timed(() => client.callTool({ name: 'slow', arguments: { ms: 20000 } }, undefined, { timeout: 30000 }));
    await sleep(300);
    gw.clients = []; // keep the client connected: the gateway itself must end the call
    const stopping = gw.stop();
    stopping.catch(() => {}); // awaited below
    const r = await call;
    assert.ok(r.error, 'the in-flight call fails');
    assert.ok(r.ms > 1000 && r.ms < 5000, `when the 1 s grace ended (${r.ms.toFixed(0)} ms)`);
    // sessions are answered on shutdown (a JSON-RPC error), not just cut off
    assert.ok(r.error instanceof McpError, `a JSON-RPC error, got: ${r.error}`);
    await stopping; // asserts exit code 0 within 5 s
    await client.close();
  })(ctx));
});

/** A raw keep-alive connection: write bytes, collect complete responses (Content-Length or chunked). */
function rawConn(port) {
  const sock = net.connect({ host: '127.0.0.1', port });
  let buf = Buffer.alloc(0);
  let closed = false;
  const out = [];
  const waiters = [];
  const parse = () => {
    for (;;) {
      const he = buf.indexOf('\r\n\r\n');
      if (he < 0) break;
      const head = buf.subarray(0, he).toString('latin1').split('\r\n');
      const headers = {};
      for (const l of head.slice(1)) { const i = l.indexOf(':'); headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim(); }
      if (headers['transfer-encoding'] === 'chunked') {
        // an SSE answer (a 2025-11-25 tools/call that ran upstream): its chunks up to the last
        let at = he + 4, body = '', complete = false;
        for (;;) {
          const le = buf.indexOf('\r\n', at);
          if (le < 0) break;
          const size = parseInt(buf.subarray(at, le).toString('latin1'), 16);
          if (buf.length < le + 2 + size + 2) break;
          body += buf.subarray(le + 2, le + 2 + size).toString();
          at = le + 2 + size + 2;
          if (size === 0) { complete = true; break; }
        }
        if (!complete) break;
        out.push({ status: Number(head[0].split(' ')[1]), headers, body });
        buf = buf.subarray(at);
        continue;
      }
      const n = Number(headers['content-length'] || 0);
      if (buf.length < he + 4 + n) break;
      out.push({ status: Number(head[0].split(' ')[1]), headers, body: buf.subarray(he + 4, he + 4 + n).toString() });
      buf = buf.subarray(he + 4 + n);
    }
    for (const w of waiters.splice(0)) w();
  };
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); parse(); });
  sock.on('close', () => { closed = true; parse(); });
  sock.on('error', () => {});
  const ready = new Promise((resolve) => sock.on('connect', resolve));
  return {
    ready, sock, out, get closed() { return closed; },
    async next(count, ms = 5000) {
      const deadline = Date.now() + ms;
      while (out.length < count) {
        if (closed) throw new Error(`connection closed after ${out.length}/${count} responses`);
        if (Date.now() > deadline) throw new Error(`timeout after ${out.length}/${count} responses`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 50); });
      }
      return out[count - 1];
    },
  };
}

const post = (sid, msg) => {
  const body = JSON.stringify(msg);
  return `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\n` +
    `Accept: application/json, text/event-stream\r\nMcp-Session-Id: ${sid}\r\nMCP-Protocol-Version: ${V}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
};

/** The answer's JSON-RPC message (application/json or the last SSE event). */
const rpcOf = (r) => (/event-stream/.test(r.headers['content-type'] || '')
  ? JSON.parse(r.body.split('\n').filter((l) => l.startsWith('data: ')).at(-1).slice(6)) : JSON.parse(r.body));

// issue 11: a request that reaches an idle keep-alive connection as SIGTERM arrives (or waits
// pipelined behind a call in flight) gets -32000 and Connection: close, not a closed socket.
describe('SIGTERM and requests on open keep-alive connections', () => {
  let gw;
  before(async () => { gw = await start(); });
  after(() => { if (gw && gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill('SIGKILL'); });

  test('a request written right after SIGTERM, on an idle connection: -32000 with Connection: close', (ctx) => gw.wrap(async () => {
    const sid = await gw.rawSession(TOKEN);
    const c = rawConn(gw.port);
    await c.ready;
    c.sock.write(post(sid, { jsonrpc: '2.0', id: 1, method: 'ping' }));
    const first = await c.next(1);
    assert.equal(first.status, 200);
    assert.notEqual(first.headers.connection, 'close');
    // an in-flight call on another connection keeps the drain going
    const slow = gw.raw({ token: TOKEN, headers: hdrs(sid), body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'slow', arguments: { ms: 600 } } }) });
    await sleep(150);
    gw.proc.kill('SIGTERM');
    await waitFor(() => /SIGTERM: draining/.test(gw.stderr), 3000, 'drain started');
    c.sock.write(post(sid, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'late' } } }));
    const r = await c.next(2);
    assert.equal(r.headers.connection, 'close', JSON.stringify(r.headers));
    const m = rpcOf(r);
    assert.equal(m.id, 2);
    assert.equal(m.error?.code, -32000, r.body);
    assert.match(m.error.message, /shutting down/i);
    const s = await slow;
    assert.equal(s.status, 200, 'the call in flight still finishes');
    const e = await gw.exited;
    assert.equal(e.code, 0);
  })(ctx));
});

describe('SIGTERM with a request pipelined behind a call in flight', () => {
  let gw;
  before(async () => { gw = await start(); });
  after(() => { if (gw && gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill('SIGKILL'); });

  test('the buffered request gets -32000 with Connection: close after the call in flight', (ctx) => gw.wrap(async () => {
    const sid = await gw.rawSession(TOKEN);
    const c = rawConn(gw.port);
    await c.ready;
    c.sock.write(post(sid, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'slow', arguments: { ms: 500 } } }) +
      post(sid, { jsonrpc: '2.0', id: 4, method: 'ping' }));
    await sleep(150);
    gw.proc.kill('SIGTERM');
    const a = await c.next(1);
    assert.notEqual(a.headers.connection, 'close', 'a request waits behind this answer');
    assert.equal(rpcOf(a).id, 3);
    assert.ok(rpcOf(a).result, a.body);
    const b = await c.next(2);
    assert.equal(b.headers.connection, 'close');
    assert.equal(rpcOf(b).id, 4);
    assert.equal(rpcOf(b).error?.code, -32000, b.body);
    const e = await gw.exited;
    assert.equal(e.code, 0);
  })(ctx));
});

describe('SIGTERM with nothing in flight and a request just written', () => {
  let gw;
  before(async () => { gw = await start(); });
  after(() => { if (gw && gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill('SIGKILL'); });

  test('the request is answered (its result, or -32000 with Connection: close), never cut off', (ctx) => gw.wrap(async () => {
    const sid = await gw.rawSession(TOKEN);
    const c = rawConn(gw.port);
    await c.ready;
    c.sock.write(post(sid, { jsonrpc: '2.0', id: 1, method: 'ping' }));
    await c.next(1);
    c.sock.write(post(sid, { jsonrpc: '2.0', id: 5, method: 'ping' }));
    gw.proc.kill('SIGTERM');
    const r = await c.next(2);
    const m = rpcOf(r);
    assert.equal(m.id, 5);
    if (m.error) { // it came in after the signal
      assert.equal(m.error.code, -32000, r.body);
      assert.equal(r.headers.connection, 'close');
    } else {
      assert.deepEqual(m.result, {});
    }
    assert.equal((await gw.exited).code, 0);
  })(ctx));
});
