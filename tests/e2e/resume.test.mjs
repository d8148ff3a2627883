// Resumable streams, both ways (docs/routing.md "Resumable streams").
//  - upstream: an SDK server using the 2025-11-25 SSE polling pattern (lib/polling-server.mjs:
//    priming event, `retry`, stream closed before the answer): the gateway resumes it with
//    GET + Last-Event-ID and the call succeeds;
//  - downstream: every SSE event has an id "<session tag>-<stream>-<seq>"; a connection cut
//    mid-call is resumed with GET + Last-Event-ID (SDK client and raw fetch) and the answer
//    arrives exactly once; a call held for approval survives the cut; a Last-Event-ID of
//    another session (or unknown) is refused; the replay buffer's overflow rule.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import {
  Gateway, E2E_DIR, LOOPBACK_PRELOAD, httpServer, testServer, newToken, textOf, waitFor, sleep,
  sha256hex,
} from './lib/harness.mjs';

const ID_RE = /^[0-9a-f]{8}-[1-9][0-9]*-(0|[1-9][0-9]*)$/;

/**
 * An SDK client whose transport reconnects (Last-Event-ID) as SDK clients do by default;
 * `resumes` collects the Last-Event-ID of each GET it made. `cutFirstCall`: the first
 * tools/call POST's connection drops right after its first chunk (the priming event).
 */
async function connectResumable(gw, token, { cutFirstCall = false } = {}) {
  const resumes = [];
  const state = { cut: false };
  const fetchCut = async (url, init) => {
    const body = typeof init?.body === 'string' ? init.body : '';
    const h = new Headers(init?.headers);
    if (h.get('last-event-id')) resumes.push(h.get('last-event-id'));
    if (cutFirstCall && !state.cut && body.includes('"tools/call"')) {
      state.cut = true;
      const c = new AbortController();
      const res = await fetch(url, { ...init, signal: c.signal });
      const src = res.body.getReader();
      const stream = new ReadableStream({
        async pull(ctrl) {
          const { value, done } = await src.read();
          if (done) { ctrl.close(); return; }
          ctrl.enqueue(value);
          c.abort();
          ctrl.error(new TypeError('terminated (cut by the test)'));
        },
      });
      return new Response(stream, { status: res.status, headers: res.headers });
    }
    return fetch(url, init);
  };
  const transport = new StreamableHTTPClientTransport(new URL(gw.url), {
    requestInit: { headers: { Authorization: 'Bearer ' + token } },
    fetch: fetchCut,
    reconnectionOptions: { maxReconnectionDelay: 2000, initialReconnectionDelay: 200, reconnectionDelayGrowFactor: 1.5, maxRetries: 3 },
  });
  const client = new Client({ name: 'resume-sdk', version: '1.0.0' });
  client.onerror = () => {};
  await client.connect(transport);
  gw.clients.push(client);
  return { client, resumes, state };
}

/** lib/polling-server.mjs on a free port; resolves to {url, log(), stop()}. */
async function startPollingServer() {
  const proc = spawn(process.execPath, ['--import', pathToFileURL(LOOPBACK_PRELOAD).href,
    path.join(E2E_DIR, 'lib/polling-server.mjs')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: '0', RETRY_MS: '300' } });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  await waitFor(() => /listening \d+/.test(log), 10000, 'polling server listening');
  const port = Number(/listening (\d+)/.exec(log)[1]);
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    log: () => log,
    stop: () => new Promise((r) => { proc.on('exit', r); proc.kill('SIGTERM'); }),
  };
}

describe('upstream resumption (SSE polling)', () => {
  const TOK = newToken('poll');
  let gw, up;
  before(async () => {
    up = await startPollingServer();
    gw = await Gateway.start({
      servers: { poll: httpServer(up.url) },
      agents: [{ name: 'poller', token: TOK, servers: ['poll'], policy: { allowed_tools: ['poll_slow', 'drop_get_then_notify'] } }],
    });
  });
  after(async () => {
    if (gw) await gw.stop();
    if (up) await up.stop();
  });

  test('a call whose upstream stream closes after the priming event is resumed and answered', gw_wrap(() => gw, async () => {
    // the gateway polls its agent the same way (it closes the agent's stream too, after a
    // `retry`): a client that resumes, as SDK clients do, gets the answer on its GET
    const { client, resumes } = await connectResumable(gw, TOK);
    const t0 = Date.now();
    const r = await client.callTool({ name: 'poll_slow', arguments: { ms: 700 } });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(textOf(r), 'polled 700');
    // the server's retry (300 ms) was honoured: one or more GETs with Last-Event-ID
    assert.match(up.log(), /resume \S+/, up.log());
    assert.ok(Date.now() - t0 >= 700);
    assert.ok(resumes.length >= 1 && ID_RE.test(resumes[0]), `the agent resumed with Last-Event-ID: ${resumes}`);
    // again, several times in a row (each call is its own stream)
    for (let i = 0; i < 3; i++) {
      const r2 = await client.callTool({ name: 'poll_slow', arguments: { ms: 100 } });
      assert.equal(textOf(r2), 'polled 100');
    }
  }));

  test('the upstream GET stream closed by the server is resumed after retry: a notification sent meanwhile arrives', gw_wrap(() => gw, async () => {
    const { client, getStream } = await gw.connect(TOK);
    await getStream;
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => { changed++; });
    const before = (up.log().match(/resume /g) || []).length;
    const r = await client.callTool({ name: 'drop_get_then_notify', arguments: { ms: 50 } });
    assert.equal(textOf(r), 'dropped');
    await waitFor(() => changed >= 2, 5000, 'the second tools/list_changed, through the resumed upstream GET').catch((e) => { throw new Error(`${e.message}: changed=${changed}\n${up.log()}`); });
    assert.ok((up.log().match(/resume /g) || []).length > before, 'a GET with Last-Event-ID');
  }));
});

// ---- downstream ------------------------------------------------------------------------------

const V = '2025-11-25';

/** Parses SSE text into events {id, retry, data, comment}. */
function sseEvents(text) {
  const out = [];
  for (const block of text.split(/\n\n/)) {
    if (!block) continue;
    const ev = { comments: [] };
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) ev.comments.push(line.slice(1).trim());
      const m = /^(id|retry|data|event): ?(.*)$/.exec(line);
      if (m) ev[m[1]] = m[2];
    }
    out.push(ev);
  }
  return out;
}

/**
 * POSTs a tools/call on a raw session and reads its SSE answer until `until(text)` holds, then
 * cuts the connection. Returns the text read so far.
 */
async function callThenCut(gw, token, sid, id, name, args, until, meta) {
  const ac = new AbortController();
  const res = await fetch(gw.url, {
    method: 'POST',
    signal: ac.signal,
    headers: {
      Authorization: 'Bearer ' + token, 'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': V,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const reader = res.body.getReader();
  let text = '';
  while (!until(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
  }
  ac.abort();
  return text;
}

/** GET + Last-Event-ID; reads the SSE stream to its end (or `ms`). {status, text}. */
async function resumeGet(gw, token, sid, lastId, ms = 10000) {
  const res = await fetch(gw.url, {
    headers: {
      Authorization: 'Bearer ' + token, Accept: 'text/event-stream', 'Mcp-Session-Id': sid,
      'MCP-Protocol-Version': V, 'Last-Event-ID': lastId,
    },
    signal: AbortSignal.timeout(ms),
  });
  return { status: res.status, text: await res.text() };
}

/** Waits for the pending approval whose arguments.message satisfies `pred`; returns its record. */
async function pendingApproval(gw, opToken, pred) {
  let rec;
  await waitFor(async () => {
    const r = await fetch(`${gw.adminUrl}/v1/approvals?status=pending`, { headers: { Authorization: `Bearer ${opToken}` } });
    rec = (await r.json()).approvals.find((x) => pred(x.arguments?.message || ''));
    return !!rec;
  }, 5000, 'the pending approval');
  return rec;
}

/** Approves an approval record as an operator. */
function approve(gw, opToken, rec) {
  return fetch(`${gw.adminUrl}/v1/approvals/${rec.id}/approve`, {
    method: 'POST', body: '{}', headers: { Authorization: `Bearer ${opToken}`, 'Content-Type': 'application/json' },
  });
}

const lastIdOf = (text) => sseEvents(text).filter((e) => e.id).at(-1).id;

describe('downstream resumption', () => {
  const TOK = newToken('resume');
  const TOK2 = newToken('resume-other');
  const OP = newToken('operator');
  let gw;
  before(async () => {
    gw = await Gateway.start({
      servers: { t: testServer() },
      agents: [
        { name: 'r', token: TOK, servers: ['t'], policy: { allowed_tools: ['slow', 'add', 'big'], tool_rules: [{ tool: 'echo', action: 'ask' }] } },
        { name: 'r2', token: TOK2, servers: ['t'], policy: { allowed_tools: ['slow'] } },
      ],
      extra: {
        operators: [{ name: 'alice', token_sha256: sha256hex(OP) }],
        approvals: { timeout: '20s' },
      },
    });
  });
  after(async () => { if (gw) await gw.stop(); });

  test('ids on every event, a priming event with retry on 2025-11-25; none on 2025-06-18', gw_wrap(() => gw, async () => {
    const sid = await gw.rawSession(TOK, V);
    const r = await gw.post({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'slow', arguments: { ms: 50, steps: 2 }, _meta: { progressToken: 'p' } } },
      { token: TOK, session: sid, version: V });
    const evs = sseEvents(r.text);
    assert.equal(evs[0].data, '', 'priming: empty data');
    assert.equal(evs[0].retry, '1000');
    assert.match(evs[0].id, ID_RE);
    assert.match(evs[0].id, /-0$/, 'the priming event is seq 0');
    const ids = evs.map((e) => e.id);
    assert.ok(ids.every((i) => ID_RE.test(i)), ids.join(' '));
    assert.equal(new Set(ids).size, ids.length, 'unique');
    assert.equal(new Set(ids.map((i) => i.split('-').slice(0, 2).join('-'))).size, 1, 'one stream');
    assert.equal(JSON.parse(evs.at(-1).data).id, 5);
    // an older revision: ids, but no priming event
    const old = await gw.rawSession(TOK, '2025-06-18');
    const r2 = await gw.post({ jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'slow', arguments: { ms: 50, steps: 2 }, _meta: { progressToken: 'q' } } },
      { token: TOK, session: old, version: '2025-06-18' });
    const evs2 = sseEvents(r2.text);
    assert.ok(evs2.every((e) => e.data), 'no empty (priming) event');
    assert.ok(evs2.every((e) => ID_RE.test(e.id)));
  }));

  test('raw fetch: a cut mid-call is resumed with GET + Last-Event-ID; the answer arrives once', gw_wrap(() => gw, async () => {
    const sid = await gw.rawSession(TOK, V);
    // cut after the priming event and the first progress
    const first = await callThenCut(gw, TOK, sid, 'c-1', 'slow', { ms: 1200, steps: 4 }, (t) => sseEvents(t).length >= 2, { progressToken: 'tok' });
    const last = lastIdOf(first);
    await sleep(1800); // the call finishes while the client is away
    const r = await resumeGet(gw, TOK, sid, last);
    assert.equal(r.status, 200);
    const evs = sseEvents(r.text).filter((e) => e.data);
    const msgs = evs.map((e) => JSON.parse(e.data));
    const answers = msgs.filter((m) => m.id === 'c-1');
    assert.equal(answers.length, 1, r.text);
    assert.match(answers[0].result.content[0].text, /slept|1200|done/i);
    // the progress it missed, none it had
    const progress = msgs.filter((m) => m.method === 'notifications/progress').map((m) => m.params.progress);
    assert.ok(progress.length >= 1 && !progress.includes(sseEvents(first).filter((e) => e.data).map((e) => JSON.parse(e.data).params?.progress)[0]), r.text);
    assert.ok(evs.every((e) => e.id.startsWith(last.split('-').slice(0, 2).join('-') + '-')), 'only that stream');
    // resumed from its last event: nothing more, the stream is over
    const again = await resumeGet(gw, TOK, sid, evs.at(-1).id);
    assert.equal(again.status, 200);
    assert.equal(sseEvents(again.text).filter((e) => e.data).length, 0);
  }));

  test('raw fetch: resumed while the call still runs: the rest arrives live on the GET', gw_wrap(() => gw, async () => {
    const sid = await gw.rawSession(TOK, V);
    const first = await callThenCut(gw, TOK, sid, 'c-2', 'slow', { ms: 1500 }, (t) => sseEvents(t).length >= 1);
    await sleep(200);
    const t0 = Date.now();
    const r = await resumeGet(gw, TOK, sid, lastIdOf(first));
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 >= 900, 'the GET waited for the answer');
    const answers = sseEvents(r.text).filter((e) => e.data).map((e) => JSON.parse(e.data)).filter((m) => m.id === 'c-2');
    assert.equal(answers.length, 1, r.text);
  }));

  test('Last-Event-ID of another session, of no stream, malformed: 400; of a connected stream: 409', gw_wrap(() => gw, async () => {
    const a = await gw.rawSession(TOK, V);
    const b = await gw.rawSession(TOK, V);
    const c = await gw.rawSession(TOK2, V);
    const first = await callThenCut(gw, TOK, a, 'x-1', 'slow', { ms: 300 }, (t) => sseEvents(t).length >= 1);
    const id = lastIdOf(first);
    for (const [tok, sid] of [[TOK, b], [TOK2, c]]) {
      const r = await resumeGet(gw, tok, sid, id);
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, /Last-Event-ID names no stream of this session/);
    }
    const [tag] = id.split('-');
    for (const bad of [`${tag}-999-1`, `${tag}-1-99999`, 'nonsense', `${tag}-01-1`, '']) {
      const r = await resumeGet(gw, TOK, a, bad);
      assert.equal(r.status, bad === '' ? 400 : 400, `${bad}: ${r.status} ${r.text}`);
    }
    // a stream whose POST is still connected
    const ac = new AbortController();
    const res = await fetch(gw.url, {
      method: 'POST', signal: ac.signal,
      headers: { Authorization: 'Bearer ' + TOK, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': a, 'MCP-Protocol-Version': V },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'x-2', method: 'tools/call', params: { name: 'slow', arguments: { ms: 1500 } } }),
    });
    const reader = res.body.getReader();
    const { value } = await reader.read();
    const live = lastIdOf(Buffer.from(value).toString());
    const r = await resumeGet(gw, TOK, a, live);
    assert.equal(r.status, 409, r.text);
    ac.abort();
  }));

  test('a call held for approval survives the cut; decided while away, its answer is replayed', gw_wrap(() => gw, async () => {
    const sid = await gw.rawSession(TOK, V);
    const first = await callThenCut(gw, TOK, sid, 'ask-1', 'echo', { message: 'held-over-a-cut' }, (t) => sseEvents(t).length >= 1);
    const rec = await pendingApproval(gw, OP, (m) => m === 'held-over-a-cut');
    await sleep(300); // the cut has reached the gateway; the wait goes on
    const ok = await approve(gw, OP, rec);
    assert.equal(ok.status, 200);
    await sleep(300);
    const r = await resumeGet(gw, TOK, sid, lastIdOf(first));
    assert.equal(r.status, 200);
    const answers = sseEvents(r.text).filter((e) => e.data).map((e) => JSON.parse(e.data)).filter((m) => m.id === 'ask-1');
    assert.equal(answers.length, 1, r.text);
    assert.equal(answers[0].result.content[0].text, 'held-over-a-cut');
    // audited once: the ask, the operator's decision, the call's one outcome (with its latency)
    const fs = await import('node:fs');
    const mine = () => gw.auditRecords()
      .filter((a) => a.args?.message === 'held-over-a-cut');
    await waitFor(() => mine().some((a) => a.decision === 'ALLOW'), 5000, 'the outcome record');
    await sleep(200);
    assert.deepEqual(mine().map((a) => a.decision).sort(), ['ALLOW', 'APPROVED', 'ASK'], JSON.stringify(mine()));
  }));

  test('an answer too large to keep (it streams through DLP): a resume from before it gets one error in its place', gw_wrap(() => gw, async () => {
    const sid = await gw.rawSession(TOK, V);
    const bigCall = async (id) => {
      const r = await gw.post({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'big', arguments: { bytes: 3 * 1024 * 1024 } } },
        { token: TOK, session: sid, version: V });
      const evs = sseEvents(r.text);
      assert.equal(evs.length, 2, 'priming, then the streamed answer');
      assert.equal(JSON.parse(evs[1].data).id, id);
      return evs;
    };
    // resumed from the answer itself: it was read, nothing more
    const a = await bigCall('big-1');
    const after = await resumeGet(gw, TOK, sid, a[1].id);
    assert.equal(after.status, 200);
    assert.equal(sseEvents(after.text).filter((e) => e.data).length, 0, after.text.slice(0, 300));
    // resumed from before it (as if cut before reading it): one error stands in for it
    const b = await bigCall('big-2');
    const again = await resumeGet(gw, TOK, sid, b[0].id);
    assert.equal(again.status, 200);
    const answers = sseEvents(again.text).filter((e) => e.data).map((e) => JSON.parse(e.data));
    assert.equal(answers.length, 1, again.text.slice(0, 300));
    assert.equal(answers[0].id, 'big-2');
    assert.equal(answers[0].error?.code, -32603);
  }));

  test('SDK client: a connection cut mid-call is resumed by the SDK (Last-Event-ID) and answered once', gw_wrap(() => gw, async () => {
    const { client, resumes, state } = await connectResumable(gw, TOK, { cutFirstCall: true });
    let answers = 0;
    const r = await client.callTool({ name: 'slow', arguments: { ms: 1500 } }, undefined, { timeout: 15000 }).then((x) => { answers++; return x; });
    assert.match(textOf(r), /./);
    assert.ok(state.cut, 'the POST was cut');
    assert.ok(resumes.length >= 1 && ID_RE.test(resumes[0]), `the SDK resumed with Last-Event-ID: ${resumes}`);
    await sleep(300);
    assert.equal(answers, 1);
  }));
});

describe('replay buffer overflow (limits.max_replay_bytes: 2KiB); a call never resumed (request_timeout: 2s)', () => {
  const TOK = newToken('small');
  const OP = newToken('operator2');
  let gw;
  before(async () => {
    gw = await Gateway.start({
      servers: { t: testServer() },
      agents: [{ name: 's', token: TOK, servers: ['t'], policy: { allowed_tools: ['slow'], tool_rules: [{ tool: 'echo', action: 'ask' }] } }],
      limits: { max_replay_bytes: '2KiB', request_timeout: '2s' },
      extra: { operators: [{ name: 'bob', token_sha256: sha256hex(OP) }], approvals: { timeout: '20s' } },
    });
  });
  after(async () => { if (gw) await gw.stop(); });

  test('old events are dropped first; the resume says how many; the answer (newest) is still there', gw_wrap(() => gw, async () => {
    const sid = await gw.rawSession(TOK, V);
    const first = await callThenCut(gw, TOK, sid, 'o-1', 'slow', { ms: 800, steps: 40 }, (t) => sseEvents(t).length >= 1, { progressToken: 'pt' });
    await sleep(1500);
    const r = await resumeGet(gw, TOK, sid, lastIdOf(first));
    assert.equal(r.status, 200);
    const evs = sseEvents(r.text);
    const note = evs.flatMap((e) => e.comments).find((c) => /events of this stream were dropped from the replay buffer/.test(c));
    assert.ok(note, r.text.slice(0, 300));
    const n = Number(/^(\d+)/.exec(note)[1]);
    const msgs = evs.filter((e) => e.data).map((e) => JSON.parse(e.data));
    const progress = msgs.filter((m) => m.method === 'notifications/progress');
    assert.equal(n + progress.length, 40, `${n} dropped + ${progress.length} replayed = every progress`);
    assert.equal(progress[0].params.progress, n + 1, 'the oldest went first');
    assert.equal(msgs.filter((m) => m.id === 'o-1').length, 1);
  }));

  test('a call whose client never comes back ends by request_timeout, audited once; its error waits for a resume', gw_wrap(() => gw, async () => {
    const sid = await gw.rawSession(TOK, V);
    const first = await callThenCut(gw, TOK, sid, 'gone-1', 'slow', { ms: 4321 }, (t) => sseEvents(t).length >= 1);
    const fs = await import('node:fs');
    const mine = () => gw.auditRecords()
      .filter((a) => a.args?.ms === 4321);
    await waitFor(() => mine().length > 0, 6000, 'the audit record of the timed-out call');
    await sleep(3000); // past when the upstream would have answered: still one record
    assert.equal(mine().length, 1, JSON.stringify(mine()));
    const us = mine()[0].latency_us;
    assert.ok(us >= 1900000 && us < 3500000, `ended by the 2 s request_timeout, not the 4.3 s answer: ${us} us`);
    const r = await resumeGet(gw, TOK, sid, lastIdOf(first));
    const answers = sseEvents(r.text).filter((e) => e.data).map((e) => JSON.parse(e.data)).filter((m) => m.id === 'gone-1');
    assert.equal(answers.length, 1, r.text);
    assert.equal(answers[0].error?.code, -32603);
    assert.match(answers[0].error.message, /did not answer within/);
  }));

  test('an answer larger than the buffer, finished while away, comes back as one JSON-RPC error', gw_wrap(() => gw, async () => {
    const sid = await gw.rawSession(TOK, V);
    const msg = 'z'.repeat(4096);
    const first = await callThenCut(gw, TOK, sid, 'o-2', 'echo', { message: msg }, (t) => sseEvents(t).length >= 1);
    const rec = await pendingApproval(gw, OP, (m) => m.startsWith('zzzz'));
    await sleep(300);
    await approve(gw, OP, rec);
    await sleep(500);
    const r = await resumeGet(gw, TOK, sid, lastIdOf(first));
    assert.equal(r.status, 200);
    const answers = sseEvents(r.text).filter((e) => e.data).map((e) => JSON.parse(e.data)).filter((m) => m.id === 'o-2');
    assert.equal(answers.length, 1, r.text);
    assert.equal(answers[0].error?.code, -32603);
    assert.match(answers[0].error.message, /answer was dropped before the client resumed/);
  }));
});

function gw_wrap(getGw, fn) {
  return async (t) => getGw().wrap(fn)(t);
}
