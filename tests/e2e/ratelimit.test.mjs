// Rate limits with the SDK client: per agent (two sessions of one agent share the bucket, a
// second agent has its own), -32002 with AIP's data, and the bucket survives a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway, newToken, testServer, textOf } from './lib/harness.mjs';

let gw;
const tokA = newToken('a'), tokB = newToken('b');
const policy = { tool_rules: [{ tool: 'echo', rate_limit: '2/hour' }] };

before(async () => {
  gw = await Gateway.start({
    servers: { t: testServer() },
    agents: [
      { name: 'alpha', token: tokA, policy, servers: ['t'] },
      { name: 'beta', token: tokB, policy, servers: ['t'] },
    ],
  });
});
after(async () => { await gw?.stop(); });

const echo = (client, m) => client.callTool({ name: 'echo', arguments: { message: m } });

async function limited(p) {
  await assert.rejects(p, (e) => {
    assert.equal(e.code, -32002);
    assert.match(e.message, /Rate limit exceeded/);
    assert.deepEqual(e.data, { reason: 'Rate limit exceeded for echo. Try again later.', tool: 'echo' });
    return true;
  });
}

test('burst of 2 per agent, shared by its sessions, separate per agent, kept across a restart', () => gw.wrap(async () => {
  const a1 = (await gw.connect(tokA)).client;
  assert.equal(textOf(await echo(a1, 'one')), 'one');
  const a2 = (await gw.connect(tokA)).client; // a new session does not reset the bucket
  assert.equal(textOf(await echo(a2, 'two')), 'two');
  await limited(echo(a1, 'three'));
  await limited(echo(a2, 'three'));
  const b = (await gw.connect(tokB)).client; // another agent has its own bucket
  assert.equal(textOf(await echo(b, 'b1')), 'b1');
  assert.equal(textOf(await echo(b, 'b2')), 'b2');
  await limited(echo(b, 'b3'));
  await gw.restart();
  const a3 = (await gw.connect(tokA)).client;
  await limited(echo(a3, 'after restart'));
  assert.ok(gw.auditRecords().some((r) => r.decision === 'RATE_LIMITED'));
})());

// kill -9: the process gets no chance to write anything; only what was durable before a call
// was granted counts after the restart.
async function crashAndStart(g) {
  g.clients.splice(0);
  g.proc.kill('SIGKILL');
  await g.exited;
  g.stderr += '\n----- kill -9, start again -----\n';
  await g._start();
}

test('a limit holds across kill -9 right after the last calls (10/hour allows 10, not 20)', async () => {
  const tok = newToken('crash');
  const g = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'crash', token: tok, policy: { tool_rules: [{ tool: 'echo', rate_limit: '10/hour' }] }, servers: ['t'] }],
  });
  try {
    await g.wrap(async () => {
      let granted = 0;
      for (let round = 0; round < 3; round++) {
        const c = (await g.connect(tok)).client;
        // in parallel, then a crash at once: nothing has a second to be written behind
        const res = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => echo(c, `r${round}-${i}`)));
        for (const r of res) {
          if (r.status === 'fulfilled') granted++;
          else assert.equal(r.reason.code, -32002, String(r.reason));
        }
        await crashAndStart(g);
      }
      assert.ok(granted <= 10, `granted ${granted} calls of a 10/hour limit across crashes`);
      assert.ok(granted >= 8, `only ${granted} of 10 granted: reservations lost too much`);
      const c = (await g.connect(tok)).client;
      await limited(echo(c, 'after the crashes'));
    })();
  } finally { await g.stop(); }
});

// A real fault: another process holds the database's write lock, so every transaction of the
// gateway fails (SQLITE_BUSY after the busy timeout), as with a full disk or any COMMIT error.
test('a store that cannot write: rate-limited calls fail closed, /readyz 503, counted; recovers', async () => {
  const tok = newToken('ro');
  const g = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'ro', token: tok, policy: { tool_rules: [{ tool: 'echo', rate_limit: '5/hour' }] }, servers: ['t'] }],
  });
  const { spawn } = await import('node:child_process');
  const path = await import('node:path');
  let locker;
  try {
    await g.wrap(async () => {
      const c = (await g.connect(tok)).client;
      assert.equal(await g.metric('aip_store_write_errors_total'), 0);
      locker = spawn('sqlite3', [path.join(g.dir, 'aip.db')], { stdio: ['pipe', 'ignore', 'inherit'] });
      locker.stdin.write('PRAGMA busy_timeout=5000; BEGIN IMMEDIATE; SELECT 1;\n');
      await new Promise((r) => setTimeout(r, 300));
      await assert.rejects(echo(c, 'x'), (e) => {
        assert.equal(e.code, -32603, String(e));
        assert.match(e.message, /rate limit/i);
        assert.equal(e.data?.tool, 'echo');
        return true;
      });
      assert.equal((await g.admin('/readyz')).status, 503);
      assert.ok((await g.metric('aip_store_write_errors_total')) >= 1);
      assert.match(g.stderr, /cannot save the rate-limit bucket of ro\/echo/);
      const fs = await import('node:fs');
      const recs = g.auditRecords();
      assert.ok(recs.some((r) => r.tool === 'echo' && r.decision === 'RATE_LIMITED' &&
        /cannot be saved/.test(r.reason)), 'the refusal is audited');
      assert.equal(await g.metric('aip_refused_total{agent="ro",reason="rate_unsaved"}'), 1);
      assert.equal(await g.metric('aip_rate_limited_total{agent="ro"}'), 0, 'not a -32002 refusal');
      locker.stdin.end('ROLLBACK;\n');
      await new Promise((r) => locker.on('exit', r));
      locker = null;
      const t0 = Date.now();
      while ((await g.admin('/readyz')).status !== 200) {
        assert.ok(Date.now() - t0 < 20000, '/readyz still 503 20 s after the store recovered');
        await new Promise((r) => setTimeout(r, 200));
      }
      let ok = 0;
      for (let i = 0; i < 7; i++) {
        try { await echo(c, `y${i}`); ok++; } catch (e) { assert.equal(e.code, -32002, String(e)); }
      }
      assert.equal(ok, 5, 'the failed call took no token, the limit is 5');
    })();
  } finally {
    locker?.kill('SIGKILL');
    await g.stop();
  }
});

test('a clean restart gives back the reserved, ungranted tokens: 20/hour is exactly 20', async () => {
  const tok = newToken('exact');
  const g = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'exact', token: tok, policy: { tool_rules: [{ tool: 'echo', rate_limit: '20/hour' }] }, servers: ['t'] }],
  });
  try {
    await g.wrap(async () => {
      let ok = 0;
      const c = (await g.connect(tok)).client;
      for (let i = 0; i < 5; i++) { await echo(c, `a${i}`); ok++; }
      await g.restart();
      const d = (await g.connect(tok)).client;
      for (let i = 0; i < 20; i++) {
        try { await echo(d, `b${i}`); ok++; } catch (e) { assert.equal(e.code, -32002, String(e)); }
      }
      assert.equal(ok, 20);
    })();
  } finally { await g.stop(); }
});
