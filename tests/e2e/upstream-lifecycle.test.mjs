// Upstream lifecycle (issue 11, items 15 and 17): a crash-looping server fails calls fast
// instead of holding them for its backoff; a server that cannot start is reported as
// "unavailable" with its name (not "Unknown tool"), in tools/list, /readyz and /metrics; and a
// stdio child that ignores stdin EOF does not outlive a kill -9 of the gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Gateway, newToken, textOf, childrenOf, isAlive, waitFor, sleep, TEST_SERVER } from './lib/harness.mjs';

const sh = (script) => ({ command: ['/bin/sh', '-c', script] });

function unavailable(e, server) {
  assert.equal(e.code, -32603, `${e.code} ${e.message}`);
  assert.match(e.message, new RegExp(`${server} unavailable`));
  assert.equal(e.data?.server, server, JSON.stringify(e.data));
  assert.equal(typeof e.data?.reason, 'string');
  return true;
}

test('crash loop: while the server backs off, calls fail at once with "unavailable" (< 1 s)', async () => {
  const tok = newToken('loop');
  // every instance answers the handshake, then dies 150 ms later
  const g = await Gateway.start({
    servers: { t: sh(`(sleep 0.15; kill -9 $$) & exec ${TEST_SERVER}`) },
    agents: [{ name: 'loop', token: tok, policy: { allowed_tools: ['echo'] }, servers: ['t'] }],
  });
  try {
    await g.wrap(async () => {
      const { client } = await g.connect(tok);
      let slowest = 0, fast = 0;
      const t0 = Date.now();
      while (Date.now() - t0 < 7000) {
        const s = Date.now();
        try {
          await client.callTool({ name: 'echo', arguments: { message: 'x' } }, undefined, { timeout: 20000 });
        } catch (e) {
          assert.equal(e.code, -32603, String(e));
          if (e.data?.server === 't') fast++;
        }
        slowest = Math.max(slowest, Date.now() - s);
        await sleep(50);
      }
      assert.ok(slowest < 1000, `a call took ${slowest} ms during the crash loop`);
      assert.ok(fast > 0, 'some calls were refused as unavailable while backing off');
    })();
  } finally { await g.stop(); }
});

test('a server that cannot start: tools/call and tools/list say "unavailable" with its name; /readyz and a metric name it', async () => {
  const tok = newToken('nostart');
  const g = await Gateway.start({
    servers: { t: { command: ['/nonexistent/aip-mcp-server'] } },
    agents: [{ name: 'nostart', token: tok, policy: { allowed_tools: ['echo'] }, servers: ['t'] }],
  });
  try {
    await g.wrap(async () => {
      const { client } = await g.connect(tok);
      await assert.rejects(client.listTools(), (e) => unavailable(e, 't'));
      await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'x' } }), (e) => unavailable(e, 't'));
      const r = await g.admin('/readyz');
      // listed, but the gateway stays ready: every replica shares the config (docs/operations.md)
      assert.equal(r.status, 200);
      assert.match(r.text, /upstream nostart\/t cannot start: no such file or directory/);
      const { text } = await g.admin('/metrics');
      assert.match(text, /aip_upstream_unavailable\{agent="nostart",server="t"\} 1/);
    })();
  } finally { await g.stop(); }
});

test('kill -9 of the gateway: a stdio child that ignores stdin EOF is gone within ~1 s', async () => {
  const tok = newToken('orphan');
  const g = await Gateway.start({
    // sh outlives the server's EOF (it goes on to sleep) and ignores SIGTERM/SIGHUP
    servers: { t: sh(`trap '' TERM HUP; ${TEST_SERVER}; sleep 1000`) },
    agents: [{ name: 'orphan', token: tok, policy: { allowed_tools: ['echo'] }, servers: ['t'] }],
  });
  let pid;
  try {
    await g.wrap(async () => {
      const { client } = await g.connect(tok);
      const r = await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
      assert.equal(textOf(r), 'hi');
      const kids = childrenOf(g.pid).filter((c) => c.state !== 'Z');
      assert.equal(kids.length, 1, JSON.stringify(kids));
      pid = kids[0].pid;
      g.clients.splice(0);
      g.proc.kill('SIGKILL');
      await g.exited;
      const gone = await waitFor(() => !isAlive(pid), 1500).then(() => true, () => false);
      g.stderr += '\n----- kill -9, start again -----\n';
      await g._start();
      assert.ok(gone, `child ${pid} still alive 1.5 s after the gateway's kill -9`);
    })();
  } finally {
    if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL');
    await g.stop();
  }
});

test('a server that floods its stderr gets 50 log lines a second; the rest are counted, not logged', async () => {
  const tok = newToken('noisy');
  const g = await Gateway.start({
    servers: { t: { command: [TEST_SERVER] } },
    agents: [{ name: 'noisy', token: tok, policy: { allowed_tools: ['stderr'] }, servers: ['t'] }],
  });
  try {
    await g.wrap(async () => {
      const { client } = await g.connect(tok);
      const lines = Array.from({ length: 400 }, (_, i) => `flood ${i}`).join('\n');
      await client.callTool({ name: 'stderr', arguments: { message: `${lines}\n` } });
      await sleep(1200); // the next window
      await client.callTool({ name: 'stderr', arguments: { message: 'after the flood\n' } });
      await waitFor(() => /stderr: after the flood/.test(g.stderr), 5000, 'the line after the flood');
      const logged = (g.stderr.match(/stderr: flood \d+/g) || []).length;
      assert.ok(logged <= 50, `${logged} flood lines logged`);
      assert.ok(logged >= 10, `${logged} flood lines logged`);
      assert.match(g.stderr, /stderr: \d+ lines not logged \(over 50 a second\)/);
    })();
  } finally { await g.stop(); }
});
