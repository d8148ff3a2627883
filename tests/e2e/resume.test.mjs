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

import {
  Gateway, E2E_DIR, LOOPBACK_PRELOAD, httpServer, testServer, newToken, textOf, waitFor, sleep,
  sseMessages,
} from './lib/harness.mjs';

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
      agents: [{ name: 'poller', token: TOK, servers: ['poll'], policy: { allowed_tools: ['poll_slow'] } }],
    });
  });
  after(async () => {
    if (gw) await gw.stop();
    if (up) await up.stop();
  });

  test('a call whose upstream stream closes after the priming event is resumed and answered', gw_wrap(() => gw, async () => {
    const { client } = await gw.connect(TOK);
    const t0 = Date.now();
    const r = await client.callTool({ name: 'poll_slow', arguments: { ms: 700 } });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(textOf(r), 'polled 700');
    // the server's retry (300 ms) was honoured: one or more GETs with Last-Event-ID
    assert.match(up.log(), /resume \S+/, up.log());
    assert.ok(Date.now() - t0 >= 700);
    // again, several times in a row (each call is its own stream)
    for (let i = 0; i < 3; i++) {
      const r2 = await client.callTool({ name: 'poll_slow', arguments: { ms: 100 } });
      assert.equal(textOf(r2), 'polled 100');
    }
  }));
});

function gw_wrap(getGw, fn) {
  return async (t) => getGw().wrap(fn)(t);
}
