// Large upstream answers stream through DLP in `aip serve` (docs/dlp.md, "Streaming in the
// gateway"): above the agent's dlp.stream_threshold an answer is never held whole. Secrets
// anywhere in it, across the gateway's 64 KiB pipe reads included, are redacted exactly; the
// rest arrives byte for byte; the gateway's peak memory grows by far less than the answer; a
// server that dies mid-answer, or an answer DLP cannot parse, aborts the HTTP response rather
// than finishing it. Answers under the threshold take the buffered path (application/json).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  Gateway, SANITIZED, TestHttpServer, childrenOf, bytesWrittenBy, writerStalls, httpServer, newToken, sleep, sseMessages, testServer, textOf, waitFor,
} from './lib/harness.mjs';

const KEY = 'AKIAIOSFODNN7EXAMPLE';
const PLACEHOLDER = '[REDACTED:AWS Key]';
const patterns = [{ name: 'AWS Key', regex: '(AKIA|ASIA)[A-Z0-9]{16}' }];
const MiB = 1 << 20;
let gw;
const tokDlp = newToken('dlp'), tokPlain = newToken('plain');

before(async () => {
  gw = await Gateway.start({
    servers: { t: testServer() },
    agents: [
      { name: 'dlp', token: tokDlp, servers: ['t'], policy: { allowed_tools: ['big', 'echo'], dlp: { patterns } } },
      { name: 'plain', token: tokPlain, servers: ['t'], policy: { allowed_tools: ['big'] } },
    ],
    limits: { request_timeout: '120s' },
  });
});
after(async () => { await gw?.stop(); });

/** Offsets for `count` secrets in a text of `n` bytes: some straddling 64 KiB boundaries of
 * the message (the gateway reads the pipe 64 KiB at a time), the 1 MiB threshold, both ends,
 * and the rest spread by a seeded generator. Sorted, never overlapping. */
function offsets(n, count) {
  const head = '{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"'.length;
  const want = [0, n - KEY.length, MiB - head - 7, MiB - head + 3];
  for (let k = 1; k < 40; k++) want.push(k * 65536 - head - 10, k * 65536 * 7 - head - 1);
  let seed = 12345;
  for (let i = 0; i < count; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    want.push(Math.floor((seed / 2147483648) * (n - KEY.length)));
  }
  const out = [];
  for (const o of want.filter((o) => o >= 0 && o + KEY.length <= n).sort((a, b) => a - b))
    if (!out.length || o >= out[out.length - 1] + KEY.length + 2) out.push(o);
  return out;
}

/** What the agent must receive: every secret replaced by the placeholder. */
function expected(n, at, redacted) {
  const parts = [];
  let pos = 0;
  for (const o of at) {
    parts.push('x'.repeat(o - pos), redacted ? PLACEHOLDER : KEY);
    pos = o + KEY.length;
  }
  parts.push('x'.repeat(n - pos));
  return parts.join('');
}

function vmHWM(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

/** The agent has stopped reading a 120 MiB answer: the gateway must stop reading the server
 * (which then blocks on a full pipe or socket, far short of the end) rather than buffer the
 * answer. `since` is what the server had written before the call. Measured on its writes, which no allocator skews, and, outside sanitizer builds, on the gateway's
 * peak memory. */
async function assertServerPaused(serverPid, since, gatewayPid) {
  const before = vmHWM(gatewayPid);
  const written = (await writerStalls(serverPid)) - since;
  process.stderr.write(`# a client that does not read: the server stalled after ${(written / MiB).toFixed(1)} MiB of 120\n`);
  assert.ok(written < 64 * MiB, `the server stalled after ${written} bytes of a 120 MiB answer`);
  if (!SANITIZED) assert.ok(vmHWM(gatewayPid) - before < 16 * MiB, 'the gateway does not buffer for a client that does not read');
}

/** A raw tools/call `name`(args) with request id `id` on session `sid` of gateway `g`;
 * returns the fetch Response (body unread). */
function rawCall(g, token, sid, id, name, args, signal) {
  return fetch(g.url, {
    method: 'POST',
    headers: {
      Authorization: 'Bearer ' + token, 'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
    signal: signal || AbortSignal.timeout(60000),
  });
}

/** A raw tools/call of `big` on a fresh session of `gw`; `onSession` gets the session id. */
async function rawBig(token, args, signal, onSession) {
  const sid = await gw.rawSession(token);
  if (onSession) onSession(sid);
  return rawCall(gw, token, sid, 'call-7', 'big', args, signal);
}

/** Waits until `tool` echoes again (a server restarting, a stream's end settling). */
function echoesAgain(client, message, tool = 'echo') {
  return waitFor(async () => {
    try {
      return textOf(await client.callTool({ name: tool, arguments: { message } })) === message;
    } catch { return false; }
  }, 10000, `${tool} answering again`);
}

test('100 MiB with secrets across read boundaries: exact redaction, bounded gateway memory', () => gw.wrap(async () => {
  const { client } = await gw.connect(tokDlp);
  await client.callTool({ name: 'echo', arguments: { message: 'warm up' } });
  const n = 100 * MiB;
  const at = offsets(n, 200);
  const before = vmHWM(gw.pid);
  const r = await client.callTool({ name: 'big', arguments: { bytes: n, secret: KEY, at } });
  const grew = vmHWM(gw.pid) - before;
  const text = textOf(r);
  const want = expected(n, at, true);
  assert.equal(text.length, want.length, 'length after redaction');
  assert.ok(text === want, 'every secret redacted, every other byte unchanged');
  assert.ok(!text.includes('AKIA'), 'no secret left');
  process.stderr.write(`# 100 MiB answer, ${at.length} secrets: gateway VmHWM grew by ${(grew / MiB).toFixed(1)} MiB\n`);
  if (!SANITIZED) assert.ok(grew < 32 * MiB, `gateway peak memory grew by ${grew} bytes for a 100 MiB answer`);
})());

test('20 MiB: the audit record and the metric count every redaction; nothing is logged', () => gw.wrap(async () => {
  const { client } = await gw.connect(tokDlp);
  const n = 20 * MiB;
  const at = offsets(n, 50);
  const r = await client.callTool({ name: 'big', arguments: { bytes: n, secret: KEY, at } });
  assert.ok(textOf(r) === expected(n, at, true), 'exact redaction');
  let rec;
  await waitFor(() => {
    const lines = gw.auditRecords();
    rec = lines.reverse().find((l) => l.tool === 'big' && Array.isArray(l.dlp));
    return rec && rec.dlp[0].count === at.length;
  }, 5000, 'the audit record of the streamed call');
  assert.deepEqual(rec.dlp, [{ rule: 'AWS Key', count: at.length }]);
  const { text: metrics } = await gw.admin('/metrics');
  const m = /aip_dlp_redactions_total\{agent="dlp",rule="AWS Key"\} (\d+)/.exec(metrics);
  assert.ok(m && Number(m[1]) >= at.length, 'aip_dlp_redactions_total counts them');
  assert.ok(!gw.stderr.includes(KEY), 'the gateway log must not hold the secret');
})());

test('an agent without DLP: 20 MiB passes through byte for byte, secrets and all', () => gw.wrap(async () => {
  const { client } = await gw.connect(tokPlain);
  const n = 20 * MiB;
  const at = offsets(n, 20);
  const r = await client.callTool({ name: 'big', arguments: { bytes: n, secret: KEY, at } });
  assert.ok(textOf(r) === expected(n, at, false), 'unchanged');
})());

test('above the threshold the answer is one SSE event with the client id; below it, held whole', () => gw.wrap(async () => {
  let res = await rawBig(tokDlp, { bytes: 2 * MiB, secret: KEY, at: [5, MiB] });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const text = await res.text();
  const msgs = sseMessages(text);
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0].id, 'call-7', 'the client id replaces the upstream one');
  assert.equal(msgs[0].jsonrpc, '2.0');
  assert.ok(msgs[0].result.content[0].text === expected(2 * MiB, [5, MiB], true));

  res = await rawBig(tokDlp, { bytes: 1000, secret: KEY, at: [10] });
  // a 2025-11-25 tools/call answers as SSE from the start (its priming event first, so it can
  // be resumed: docs/routing.md "Resumable streams"); the answer is one event, held whole
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const smallMsgs = sseMessages(await res.text());
  assert.equal(smallMsgs.length, 1);
  const small = smallMsgs[0];
  assert.equal(small.id, 'call-7');
  assert.equal(small.result.content[0].text, expected(1000, [10], true));
})());

test('a slow agent pauses the server; a server that dies mid-answer aborts the response', () => gw.wrap(async () => {
  // the agent's own server: the last one the gateway's log says it started for dlp/t
  const pid = Number([...gw.stderr.matchAll(/upstream dlp\/t: started pid (\d+)/g)].pop()[1]);
  assert.ok(childrenOf(gw.pid).some((c) => c.pid === pid), 'the test server runs');
  const since = bytesWrittenBy(pid);
  const res = await rawBig(tokDlp, { bytes: 120 * MiB, secret: KEY, at: [100] });
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const reader = res.body.getReader();
  const first = await reader.read();
  assert.ok(!first.done);
  try {
    await assertServerPaused(pid, since, gw.pid);
  } finally {
    process.kill(pid, 'SIGKILL');
  }
  let got = new TextDecoder().decode(first.value);
  let failed = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got += new TextDecoder().decode(value);
    }
  } catch {
    failed = true;
  }
  assert.ok(failed, 'the response is cut short (no final chunk), not ended cleanly');
  assert.ok(!got.includes(KEY), 'nothing unscanned was sent');
  assert.ok(!/\n\n$/.test(got), 'the event was never completed');
  // the server comes back for the next call
  const { client } = await gw.connect(tokDlp);
  await echoesAgain(client, 'again');
})());

test('an answer DLP cannot parse mid-way is aborted, never forwarded', () => gw.wrap(async () => {
  // a raw quote 2 MiB in ends the string early: the rest is not JSON
  const res = await rawBig(tokDlp, { bytes: 4 * MiB, secret: `"${KEY}`, at: [2 * MiB], raw: true });
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  let got = '';
  let failed = false;
  try {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got += new TextDecoder().decode(value);
    }
  } catch {
    failed = true;
  }
  assert.ok(failed, 'the response is cut short');
  assert.ok(!got.includes(KEY), 'the bytes after the error were not forwarded');
  // the gateway and the server are fine for the next call
  const { client } = await gw.connect(tokDlp);
  const r = await client.callTool({ name: 'echo', arguments: { message: `k ${KEY}` } });
  assert.equal(textOf(r), `k ${PLACEHOLDER}`);
})());

/** Reads until the answer's own bytes flow (past the 2025-11-25 priming event). */
async function answerBegun(reader) {
  let text = '';
  while (!text.includes('"jsonrpc"')) {
    const { done, value } = await reader.read();
    if (done) throw new Error('the answer ended before it began');
    text += Buffer.from(value).toString('latin1');
  }
}

/** Reads a response body to its end; {got, failed} where failed means it was cut short. */
async function drain(res) {
  let got = '';
  try {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { got, failed: false };
      got += new TextDecoder().decode(value);
    }
  } catch {
    return { got, failed: true };
  }
}

test('the session ends mid-answer (DELETE): the answer is aborted, the gateway carries on', () => gw.wrap(async () => {
  let sid;
  const res = await rawBig(tokDlp, { bytes: 120 * MiB }, undefined, (s) => { sid = s; });
  const reader = res.body.getReader();
  await answerBegun(reader);
  const del = await gw.raw({ method: 'DELETE', token: tokDlp, headers: { 'Mcp-Session-Id': sid } });
  assert.equal(del.status, 200);
  let failed = false;
  try {
    for (;;) if ((await reader.read()).done) break;
  } catch {
    failed = true;
  }
  assert.ok(failed, 'the answer is cut short');
  const { client } = await gw.connect(tokDlp);
  await echoesAgain(client, 'on');
})());

test('a policy reload mid-answer aborts it (the old DLP rules are gone)', () => gw.wrap(async () => {
  const res = await rawBig(tokDlp, { bytes: 120 * MiB });
  const reader = res.body.getReader();
  await answerBegun(reader);
  const reloads = (gw.stderr.match(/agent dlp: policy .* in force/g) || []).length;
  gw.writePolicy('dlp', { allowed_tools: ['big', 'echo'], dlp: { patterns: [...patterns, { name: 'Other', regex: 'zzzq[0-9]{8}' }] } });
  await waitFor(() => (gw.stderr.match(/agent dlp: policy .* in force/g) || []).length > reloads, 5000, 'the reload');
  let failed = false;
  try {
    for (;;) if ((await reader.read()).done) break;
  } catch {
    failed = true;
  }
  assert.ok(failed, 'the answer is cut short');
  const { client } = await gw.connect(tokDlp);
  const r = await client.callTool({ name: 'echo', arguments: { message: `k ${KEY} zzzq12345678` } });
  assert.equal(textOf(r), `k ${PLACEHOLDER} [REDACTED:Other]`, 'the new rules are in force');
})());

test('an answer that stalls for request_timeout is aborted and the server is free again', async () => {
  const tok = newToken('stall');
  const g = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'stall', token: tok, servers: ['t'], policy: { allowed_tools: ['big', 'echo'], dlp: { patterns } } }],
    // 2 s: the whole call, the server's first byte included, must fit in request_timeout, and
    // a busy 2-core machine can take a second to get there
    limits: { request_timeout: '2s', max_streamed_message: '100MiB' },
  });
  try {
    await g.wrap(async () => {
      const sid = await g.rawSession(tok);
      const res = await rawCall(g, tok, sid, 1, 'big', { bytes: 120 * MiB });
      const reader = res.body.getReader();
      await reader.read();
      await sleep(4500); // this client reads nothing: no byte moves for longer than 2 s
      // (the kernel's socket buffers hold a few MiB: far below max_streamed_message)
      let failed = false;
      try {
        for (;;) if ((await reader.read()).done) break;
      } catch {
        failed = true;
      }
      assert.ok(failed, 'the stalled answer is cut short');
      assert.match(g.stderr, /stalled for 2000 ms; aborting it/);
      // the server dropped the rest of that answer and answers the next call
      const { client } = await g.connect(tok);
      const r = await client.callTool({ name: 'echo', arguments: { message: 'free' } });
      assert.equal(textOf(r), 'free');
      // limits.max_streamed_message: larger answers are aborted and the server restarted
      const big = await rawCall(g, tok, sid, 2, 'big', { bytes: 120 * MiB });
      assert.equal((await drain(big)).failed, true, 'an answer above max_streamed_message is cut short');
      assert.match(g.stderr, /streamed message larger than 104857600 bytes; killing the server/);
      await echoesAgain(client, 'back');
    })();
  } finally {
    await g.stop();
  }
});

test('dlp.timeout counts the scanning of a streamed answer, summed over its reads', async () => {
  const tok = newToken('slowdlp'), tokOff = newToken('dlpoff');
  const g = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'slowdlp', token: tok, servers: ['t'],
      policy: { allowed_tools: ['big', 'echo'], dlp: { patterns, timeout: '5ms' } } },
    // DLP switched off: its answers pass through, and copying them is not DLP time
    { name: 'dlpoff', token: tokOff, servers: ['t'],
      policy: { allowed_tools: ['big'], dlp: { enabled: false, patterns, timeout: '5ms' } } }],
    limits: { request_timeout: '60s' },
  });
  try {
    await g.wrap(async () => {
      const { client } = await g.connect(tok);
      // a small answer scans in microseconds, well within the budget
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: `k ${KEY}` } })), `k ${PLACEHOLDER}`);
      // 60 MiB of near misses ("AKIA" every 5 bytes, which Hyperscan must check one by one)
      // takes far longer than 5 ms to scan on any machine; each 64 KiB read well under it
      const sid = await g.rawSession(tok);
      const res = await rawCall(g, tok, sid, 3, 'big',
        { bytes: 60 * MiB, insert: 'AKIA', every: 5, secret: KEY, at: [50 * MiB] });
      const { got, failed } = await drain(res);
      assert.ok(failed, 'the answer is cut short, not completed');
      assert.ok(got.length < 50 * MiB && !got.includes(KEY), 'nothing past the timeout was sent');
      assert.match(g.stderr, /agent slowdlp: streamed answer failed DLP \(dlp\.timeout exceeded\)/);
      const off = await drain(await rawCall(g, tokOff, await g.rawSession(tokOff), 4, 'big',
        { bytes: 60 * MiB, insert: 'AKIA', every: 5, secret: KEY, at: [50 * MiB] }));
      assert.ok(!off.failed && off.got.includes(KEY), 'with DLP off the whole answer arrives, unscanned');
      await echoesAgain(client, 'next');
    })();
  } finally {
    await g.stop();
  }
});

test('HTTP upstream: application/json and SSE replies are streamed the same way', async () => {
  const json = await TestHttpServer.start({ reply: 'json' });
  const sse = await TestHttpServer.start({ reply: 'sse' });
  const tok = newToken('http');
  const g = await Gateway.start({
    servers: { hj: httpServer(json.url), hs: httpServer(sse.url) },
    agents: [{ name: 'http', token: tok, servers: ['hj', 'hs'], tool_prefix: 'always',
      policy: { allowed_tools: ['hj__big', 'hs__big', 'hj__echo'], dlp: { patterns } } }],
    limits: { request_timeout: '60s' },
  });
  try {
    await g.wrap(async () => {
      const { client } = await g.connect(tok);
      await client.callTool({ name: 'hj__echo', arguments: { message: 'warm up' } });
      const n = 60 * MiB;
      const at = offsets(n, 100);
      const before = vmHWM(g.pid);
      const r = await client.callTool({ name: 'hj__big', arguments: { bytes: n, secret: KEY, at } });
      const grew = vmHWM(g.pid) - before;
      assert.ok(textOf(r) === expected(n, at, true), 'exact redaction over HTTP');
      process.stderr.write(`# 60 MiB answer over HTTP: gateway VmHWM grew by ${(grew / MiB).toFixed(1)} MiB\n`);
      if (!SANITIZED) assert.ok(grew < 24 * MiB, `gateway peak memory grew by ${grew} bytes for a 60 MiB answer`);
      // the pooled connection still works after a streamed reply
      assert.equal(textOf(await client.callTool({ name: 'hj__echo', arguments: { message: 'again' } })), 'again');
      // a client that does not read pauses the upstream connection too
      const sid = await g.rawSession(tok);
      const since = bytesWrittenBy(json.pid);
      const ac = new AbortController();
      const res = await rawCall(g, tok, sid, 1, 'hj__big', { bytes: 120 * MiB }, ac.signal);
      const reader = res.body.getReader();
      await reader.read();
      try {
        await assertServerPaused(json.pid, since, g.pid);
      } finally {
        ac.abort();
      }
      await reader.read().catch(() => {});
      // and the gateway is fine after the client went away mid-answer
      await echoesAgain(client, 'still', 'hj__echo');
      // an SSE reply: the event's data streams (30 MiB: more than max_upstream_message)
      const ns = 30 * MiB;
      const ats = offsets(ns, 60);
      const base2 = vmHWM(g.pid);
      const s = await client.callTool({ name: 'hs__big', arguments: { bytes: ns, secret: KEY, at: ats } });
      const grew2 = vmHWM(g.pid) - base2;
      assert.ok(textOf(s) === expected(ns, ats, true), 'exact redaction of an SSE reply');
      process.stderr.write(`# 30 MiB SSE answer over HTTP: gateway VmHWM grew by ${(grew2 / MiB).toFixed(1)} MiB\n`);
      if (!SANITIZED) assert.ok(grew2 < 16 * MiB, `gateway peak memory grew by ${grew2} bytes for a 30 MiB SSE answer`);
      // under the threshold: held whole as before
      const small = await client.callTool({ name: 'hs__big', arguments: { bytes: 1000, secret: KEY, at: [7] } });
      assert.equal(textOf(small), expected(1000, [7], true));
    })();
  } finally {
    await g.stop();
    await json.stop();
    await sse.stop();
  }
});
