// Raw HTTP against /mcp: exact status codes and JSON-RPC error codes of the Streamable HTTP
// endpoint (reference/mcp.md section 2, INTERFACES.md section 3).
import { before, after, test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { Gateway, testServer, newToken, sseMessages, parseMaybeSse, sleep, waitFor, sha256hex } from './lib/harness.mjs';

const A = newToken('alice');
const B = newToken('bob');
const V = '2025-11-25';
const JSON_HDRS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const ping = (id = 1) => ({ jsonrpc: '2.0', id, method: 'ping' });
const init = (protocolVersion = V, id = 1) => ({
  jsonrpc: '2.0', id, method: 'initialize',
  params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

let gw;
let sid; // a session of agent A (2025-11-25)

before(async () => {
  gw = await Gateway.start({
    limits: { max_body: '64KiB', max_header_bytes: '8KiB' },
    servers: { tools: testServer({ AIP_TEST_NAME: 'tools' }) },
    agents: [
      { name: 'alice', token: A, servers: ['tools'], policy: { allowed_tools: ['echo', 'slow'] } },
      { name: 'bob', token: B, servers: ['tools'], policy: { allowed_tools: ['echo'] } },
    ],
  });
  sid = await gw.rawSession(A);
});

after(async () => { if (gw) await gw.stop(); });

const t = (name, fn) => test(name, (ctx) => gw.wrap(fn)(ctx));

/** An error answer: HTTP status, JSON body with a JSON-RPC error code (id null or absent). */
function assertRpcError(r, status, code) {
  assert.equal(r.status, status, `HTTP status (body: ${r.text})`);
  if (code !== undefined) {
    assert.ok(r.json, `JSON body expected, got: ${r.text}`);
    assert.equal(r.json.jsonrpc, '2.0');
    assert.equal(r.json.error?.code, code, r.text);
    assert.equal(typeof r.json.error?.message, 'string');
  }
}

const withSession = (extra = {}, s = sid) => ({ ...JSON_HDRS, 'Mcp-Session-Id': s, 'MCP-Protocol-Version': V, ...extra });

describe('authentication, origin, path, method', () => {
  t('401 without a token, with WWW-Authenticate: Bearer', async () => {
    const r = await gw.raw({ headers: JSON_HDRS, body: JSON.stringify(init()) });
    assertRpcError(r, 401);
    assert.match(r.headers.get('www-authenticate') || '', /^Bearer\b/);
  });

  t('401 with a wrong token, and with a non-Bearer scheme', async () => {
    for (const auth of ['Bearer wrong-token', `Basic ${Buffer.from('a:b').toString('base64')}`, `Bearer ${A}x`, 'Bearer ']) {
      const r = await gw.raw({ headers: { ...JSON_HDRS, Authorization: auth }, body: JSON.stringify(init()) });
      assert.equal(r.status, 401, `Authorization: ${auth}`);
      assert.match(r.headers.get('www-authenticate') || '', /^Bearer\b/);
    }
  });

  t('401 header: no token -> Bearer with no error code; wrong token -> error="invalid_token"', async () => {
    const none = await gw.raw({ headers: JSON_HDRS, body: JSON.stringify(init()) });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer'); // RFC 6750 3.1: no credentials, no error code
    const secret = 'wrong-secret-token-' + 'z'.repeat(20);
    for (const auth of [`Bearer ${secret}`, `Bearer ${A}x`]) {
      const r = await gw.raw({ headers: { ...JSON_HDRS, Authorization: auth }, body: JSON.stringify(init()) });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
    }
    const basic = await gw.raw({ headers: { ...JSON_HDRS, Authorization: 'Basic YTpi' }, body: JSON.stringify(init()) });
    assert.equal(basic.headers.get('www-authenticate'), 'Bearer'); // no Bearer credentials sent
    await waitFor(() => /auth: refused .*invalid_token.*127\.0\.0\.1/.test(gw.stderr), 3000, 'auth log line');
    assert.match(gw.stderr, /auth: refused .*missing_token.*127\.0\.0\.1/);
    assert.ok(!gw.stderr.includes(secret), 'the refused token is never logged');
    assert.ok(!gw.stderr.includes(A), 'no token is logged');
    assert.ok(!gw.stderr.includes(sha256hex(secret)), 'nor its hash');
  });

  t('refused-token log lines are rate-limited, with a count of the suppressed ones', async () => {
    await sleep(1100); // a fresh one-second window
    const before = (gw.stderr.match(/auth: refused .*invalid_token/g) || []).length;
    await Promise.all(Array.from({ length: 20 }, () => gw.raw({ headers: { ...JSON_HDRS, Authorization: 'Bearer nope' }, body: JSON.stringify(init()) })));
    const during = (gw.stderr.match(/auth: refused .*invalid_token/g) || []).length - before;
    assert.ok(during <= 2, `at most one line per second per reason, got ${during}`);
    await sleep(1100);
    await gw.raw({ headers: { ...JSON_HDRS, Authorization: 'Bearer nope' }, body: JSON.stringify(init()) });
    await waitFor(() => /auth: refused .*invalid_token.*\(\d+ more suppressed\)/.test(gw.stderr), 3000, 'suppressed count');
  });

  t('403 for a foreign Origin; a loopback Origin is fine', async () => {
    const bad = await gw.raw({ token: A, headers: withSession({ Origin: 'http://evil.example.com' }), body: JSON.stringify(ping()) });
    assertRpcError(bad, 403);
    const good = await gw.raw({ token: A, headers: withSession({ Origin: 'http://127.0.0.1:3000' }), body: JSON.stringify(ping(2)) });
    assert.equal(good.status, 200, good.text);
    assert.deepEqual(good.json, { jsonrpc: '2.0', id: 2, result: {} });
  });

  t('404 for another path', async () => {
    const r = await gw.raw({ path: '/other', token: A, headers: JSON_HDRS, body: JSON.stringify(ping()) });
    assert.equal(r.status, 404);
    const r2 = await gw.raw({ path: '/mcp/x', method: 'GET', token: A });
    assert.equal(r2.status, 404);
  });

  t('405 for PUT /mcp, with an Allow header', async () => {
    const r = await gw.raw({ method: 'PUT', token: A, headers: withSession(), body: JSON.stringify(ping()) });
    assert.equal(r.status, 405);
    const allow = (r.headers.get('allow') || '').split(',').map((s) => s.trim()).sort();
    assert.deepEqual(allow, ['DELETE', 'GET', 'POST']);
  });
});

describe('content negotiation and body', () => {
  t('406 for a POST that accepts only application/json', async () => {
    const r = await gw.raw({ token: A, headers: withSession({ Accept: 'application/json' }), body: JSON.stringify(ping()) });
    assertRpcError(r, 406, -32000);
  });

  t('406 for a GET without text/event-stream in Accept', async () => {
    const r = await gw.raw({ method: 'GET', token: A, headers: { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V, Accept: 'application/json' } });
    assertRpcError(r, 406, -32000);
  });

  t('415 for Content-Type: text/plain', async () => {
    const r = await gw.raw({ token: A, headers: withSession({ 'Content-Type': 'text/plain' }), body: JSON.stringify(ping()) });
    assertRpcError(r, 415, -32000);
  });

  t('400 -32700 for malformed JSON', async () => {
    for (const body of ['{"jsonrpc":"2.0","id":1,"method":"ping"', 'not json', '{"a":1}garbage']) {
      const r = await gw.raw({ token: A, headers: withSession(), body });
      assertRpcError(r, 400, -32700);
      assert.equal(r.json.id, null);
    }
  });

  t('400 -32600 for a duplicate key', async () => {
    const r = await gw.raw({ token: A, headers: withSession(), body: '{"jsonrpc":"2.0","id":1,"method":"ping","method":"ping"}' });
    assertRpcError(r, 400, -32600);
  });

  t('400 -32600 for a case-variant key ("Method" beside "method")', async () => {
    // a case-insensitive decoder downstream would see tools/call; the gateway must refuse it
    for (const body of [
      '{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":{"name":"slow","arguments":{"ms":1}}}',
      '{"jsonrpc":"2.0","id":1,"Method":"tools/call","method":"ping"}',
    ]) {
      const r = await gw.raw({ token: A, headers: withSession(), body });
      assertRpcError(r, 400, -32600);
    }
  });

  t('413 for a body over limits.max_body (64KiB); a body just under it is served', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x'.repeat(80 * 1024) } } });
    const r = await gw.raw({ token: A, headers: withSession(), body: big });
    assert.equal(r.status, 413, r.text.slice(0, 200));
    const okMsg = 'y'.repeat(60 * 1024);
    const ok = await gw.raw({ token: A, headers: withSession(), body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: { message: okMsg } } }) });
    assert.equal(ok.status, 200);
    assert.equal(parseMaybeSse(ok).result.content[0].text, okMsg); // SSE on 2025-11-25 (resumable)
  });

  t('431 for request headers over limits.max_header_bytes (8KiB)', async () => {
    const r = await rawHttp(gw.port,
      `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${A}\r\nContent-Type: application/json\r\n` +
      `Accept: application/json, text/event-stream\r\nMcp-Session-Id: ${sid}\r\nX-Filler: ${'f'.repeat(16 * 1024)}\r\n` +
      `Content-Length: 2\r\n\r\n{}`, 1);
    assert.equal(r[0].status, 431);
  });
});

describe('sessions and protocol version', () => {
  t('400 for a non-initialize POST without Mcp-Session-Id', async () => {
    const r = await gw.raw({ token: A, headers: { ...JSON_HDRS, 'MCP-Protocol-Version': V }, body: JSON.stringify(ping()) });
    assertRpcError(r, 400);
  });

  t('404 for an unknown session id', async () => {
    for (const s of ['0'.repeat(sid.length), 'nope', sid.slice(0, -1) + (sid.endsWith('a') ? 'b' : 'a')]) {
      const r = await gw.raw({ token: A, headers: withSession({}, s), body: JSON.stringify(ping()) });
      assertRpcError(r, 404);
    }
  });

  t('404 for another agent\'s valid session id (POST, GET and DELETE)', async () => {
    const r = await gw.raw({ token: B, headers: withSession(), body: JSON.stringify(ping()) });
    assertRpcError(r, 404);
    const g = await gw.raw({ method: 'GET', token: B, headers: { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V, Accept: 'text/event-stream' } });
    assert.equal(g.status, 404);
    const d = await gw.raw({ method: 'DELETE', token: B, headers: { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V } });
    assert.equal(d.status, 404);
    // and alice's session survived bob's DELETE
    const ok = await gw.raw({ token: A, headers: withSession(), body: JSON.stringify(ping(9)) });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { jsonrpc: '2.0', id: 9, result: {} });
  });

  t('400 for an unsupported MCP-Protocol-Version (1999-01-01)', async () => {
    const r = await gw.raw({ token: A, headers: withSession({ 'MCP-Protocol-Version': '1999-01-01' }), body: JSON.stringify(ping()) });
    assertRpcError(r, 400);
  });

  t('202 with an empty body for a notification', async () => {
    const r = await gw.raw({ token: A, headers: withSession(), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    assert.equal(r.status, 202);
    assert.equal(r.text, '');
    const c = await gw.raw({ token: A, headers: withSession(), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 12345 } }) });
    assert.equal(c.status, 202);
  });

  t('409 for a second concurrent GET stream on one session', async () => {
    const ac = new AbortController();
    const first = await fetch(gw.url, {
      headers: { Authorization: 'Bearer ' + A, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V, Accept: 'text/event-stream' },
      signal: ac.signal,
    });
    try {
      assert.equal(first.status, 200);
      assert.match(first.headers.get('content-type') || '', /^text\/event-stream/);
      const second = await gw.raw({ method: 'GET', token: A, headers: { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V, Accept: 'text/event-stream' } });
      assertRpcError(second, 409, -32000);
    } finally {
      ac.abort();
      await first.body?.cancel().catch(() => {});
    }
    // once the first stream is gone a new one may open
    await sleep(100);
    const ac2 = new AbortController();
    const third = await fetch(gw.url, {
      headers: { Authorization: 'Bearer ' + A, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V, Accept: 'text/event-stream' },
      signal: ac2.signal,
    });
    assert.equal(third.status, 200);
    ac2.abort();
    await third.body?.cancel().catch(() => {});
  });

  t('batch: a 2025-03-26 session accepts a 2-ping batch, a 2025-06-18 session gets 400 -32600', async () => {
    const old = await gw.rawSession(A, '2025-03-26');
    const r = await gw.raw({ token: A, headers: { ...JSON_HDRS, 'Mcp-Session-Id': old }, body: JSON.stringify([ping(21), ping(22)]) });
    assert.equal(r.status, 200, r.text);
    let body = r.json;
    if (!body && /event-stream/.test(r.headers.get('content-type') || '')) body = sseMessages(r.text);
    assert.ok(Array.isArray(body), `array of responses expected: ${r.text}`);
    assert.equal(body.length, 2);
    assert.deepEqual(body.map((m) => m.id).sort(), [21, 22]);
    for (const m of body) assert.deepEqual(m.result, {});

    const mid = await gw.rawSession(A, '2025-06-18');
    const r2 = await gw.raw({ token: A, headers: { ...JSON_HDRS, 'Mcp-Session-Id': mid, 'MCP-Protocol-Version': '2025-06-18' }, body: JSON.stringify([ping(31), ping(32)]) });
    assertRpcError(r2, 400, -32600);
    const r3 = await gw.raw({ token: A, headers: withSession(), body: JSON.stringify([ping(41), ping(42)]) });
    assertRpcError(r3, 400, -32600);
  });

  t('DELETE -> 200, then the session is 404 (POST, GET, DELETE)', async () => {
    const s = await gw.rawSession(A);
    const d = await gw.raw({ method: 'DELETE', token: A, headers: { 'Mcp-Session-Id': s, 'MCP-Protocol-Version': V } });
    assert.equal(d.status, 200);
    const p = await gw.raw({ token: A, headers: withSession({}, s), body: JSON.stringify(ping()) });
    assertRpcError(p, 404);
    const g = await gw.raw({ method: 'GET', token: A, headers: { 'Mcp-Session-Id': s, 'MCP-Protocol-Version': V, Accept: 'text/event-stream' } });
    assert.equal(g.status, 404);
    const d2 = await gw.raw({ method: 'DELETE', token: A, headers: { 'Mcp-Session-Id': s, 'MCP-Protocol-Version': V } });
    assert.equal(d2.status, 404);
  });
});

describe('HTTP/1.1 connection handling', () => {
  t('keep-alive + pipelining: two requests in one write get two in-order responses on one connection', async () => {
    const req = (id, name, args) => {
      const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
      return `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${A}\r\nContent-Type: application/json\r\n` +
        `Accept: application/json, text/event-stream\r\nMcp-Session-Id: ${sid}\r\nMCP-Protocol-Version: ${V}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    };
    // the first call is the slower one: its answer must still come first
    const res = await rawHttp(gw.port, req(61, 'slow', { ms: 300 }) + req(62, 'echo', { message: 'pipe-62' }), 2);
    assert.equal(res.length, 2);
    assert.equal(res[0].status, 200);
    assert.equal(res[1].status, 200);
    const msgs = res.map((x) => (/event-stream/.test(x.headers['content-type'] || '') ? sseMessages(x.body).at(-1) : JSON.parse(x.body)));
    assert.deepEqual(msgs.map((m) => m.id), [61, 62]);
    assert.deepEqual(msgs.map((m) => m.result.content[0].text), ['slept 300ms', 'pipe-62']);
    for (const x of res) assert.notEqual((x.headers.connection || '').toLowerCase(), 'close');
  });
});

/**
 * Writes `text` in one write on one TCP connection and parses `count` HTTP/1.1 responses
 * (Content-Length or chunked bodies). Resolves with the responses.
 */
function rawHttp(port, text, count, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const out = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`timeout: got ${out.length}/${count} responses; buffered: ${buf.toString().slice(0, 300)}`)); }, timeoutMs);
    const finish = () => { clearTimeout(timer); sock.destroy(); resolve(out); };
    const tryParse = () => {
      for (;;) {
        const he = buf.indexOf('\r\n\r\n');
        if (he < 0) return;
        const head = buf.subarray(0, he).toString('latin1').split('\r\n');
        const status = Number(head[0].split(' ')[1]);
        const headers = {};
        for (const l of head.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        let rest = buf.subarray(he + 4);
        let body;
        if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
          const parts = [];
          let off = 0;
          for (;;) {
            const le = rest.indexOf('\r\n', off);
            if (le < 0) return;
            const size = parseInt(rest.subarray(off, le).toString(), 16);
            if (rest.length < le + 2 + size + 2) return;
            parts.push(rest.subarray(le + 2, le + 2 + size));
            off = le + 2 + size + 2;
            if (size === 0) break;
          }
          body = Buffer.concat(parts).toString();
          rest = rest.subarray(off);
        } else {
          const n = Number(headers['content-length'] || 0);
          if (rest.length < n) return;
          body = rest.subarray(0, n).toString();
          rest = rest.subarray(n);
        }
        out.push({ status, headers, body });
        buf = rest;
        if (out.length === count) return finish();
      }
    };
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); tryParse(); });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('end', () => { tryParse(); if (out.length < count) { clearTimeout(timer); reject(new Error(`connection closed after ${out.length}/${count} responses`)); } });
    sock.write(text);
  });
}

// issue 11: trailer fields of a chunked request grew the header buffer the request's path and
// query pointed into (use-after-free before authentication; a release build answered 404).
describe('trailers, pipelining and long headers on both listeners', () => {
  const chunked = (host, path, trailer, extra = '') =>
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n${extra}` +
    `Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\r\n` +
    `2\r\n{}\r\n0\r\n${trailer}\r\n`;
  const bigTrailer = `X-Trailer: ${'t'.repeat(3000)}\r\nAuthorization: Bearer ${A}\r\n`;

  t('/mcp: a trailer moves nothing and authenticates nothing (401, then the pipelined request)', async () => {
    const next = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n` +
      `Authorization: Bearer ${A}\r\nMcp-Session-Id: ${sid}\r\nMCP-Protocol-Version: ${V}\r\nContent-Length: ${JSON.stringify(ping(71)).length}\r\n\r\n${JSON.stringify(ping(71))}`;
    const res = await rawHttp(gw.port, chunked('127.0.0.1', '/mcp', bigTrailer) + next, 2);
    assert.equal(res[0].status, 401, res[0].body);
    assert.equal(res[1].status, 200, res[1].body);
    assert.deepEqual(JSON.parse(res[1].body), { jsonrpc: '2.0', id: 71, result: {} });
  });

  t('/mcp: many small trailer fields', async () => {
    const many = Array.from({ length: 100 }, (_, i) => `X-T${i}: ${'v'.repeat(40)}\r\n`).join('');
    const res = await rawHttp(gw.port, chunked('127.0.0.1', '/mcp', many, 'Connection: close\r\n'), 1);
    assert.equal(res[0].status, 401, res[0].body);
  });

  t('admin listener: a request with trailers is answered for its own path', async () => {
    const get = (p) => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n${bigTrailer}\r\n`;
    const res = await rawHttp(gw.adminPort, get('/healthz') + get('/readyz') + `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, 3);
    assert.deepEqual(res.map((r) => r.status), [200, 200, 200]);
    assert.equal(res[0].body, 'ok\n');
    assert.equal(res[1].body, 'ready\n');
  });

  t('a long header value before Host keeps path and query intact', async () => {
    const r = await rawHttp(gw.adminPort, `GET /healthz?x=1 HTTP/1.1\r\nX-Long: ${'l'.repeat(6000)}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, 1);
    assert.equal(r[0].status, 200);
  });
});
