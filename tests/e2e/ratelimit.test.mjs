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
  const lines = (await import('node:fs')).readFileSync(gw.auditPath, 'utf8').trim().split('\n');
  assert.ok(lines.some((l) => JSON.parse(l).decision === 'RATE_LIMITED'));
})());
