// `aip approvals` (the CLI over the approval API) and durability: a pending approval survives
// a gateway restart and can still be decided.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AIP_BIN, Gateway, newToken, sha256hex, testServer, waitFor } from './lib/harness.mjs';

const run = promisify(execFile);
let gw;
const opToken = newToken('operator');
const agentToken = newToken('agent');

before(async () => {
  gw = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'bot', token: agentToken, servers: ['t'],
               policy: { tool_rules: [{ tool: 'echo', action: 'ask' }] } }],
    extra: { operators: [{ name: 'carol', token_sha256: sha256hex(opToken) }], approvals: { timeout: '10m' },
             shutdown_grace: '1s' }, // the held call waits 1 s of drain, then the restart cuts it
  });
});
after(async () => { await gw?.stop(); });

const cli = (args, token = opToken) =>
  run(AIP_BIN, ['approvals', ...args, '--admin', gw.adminUrl], { env: { ...process.env, AIP_OPERATOR_TOKEN: token } })
    .then((r) => ({ code: 0, out: r.stdout }), (e) => ({ code: e.code, out: e.stdout, err: e.stderr }));

test('a pending approval survives a restart and is decided with the CLI', () => gw.wrap(async () => {
  const { client } = await gw.connect(agentToken);
  const call = client.callTool({ name: 'echo', arguments: { message: 'durable' } });
  call.catch(() => {}); // the restart cuts this call; the record stays
  let id;
  await waitFor(async () => {
    const r = await cli(['list', '--status', 'pending', '--json']);
    const a = JSON.parse(r.out).approvals.find((x) => x.arguments.message === 'durable');
    id = a?.id;
    return !!id;
  }, 5000, 'the pending approval');
  await gw.restart();
  let r = await cli(['show', id, '--json']);
  assert.equal(r.code, 0);
  assert.equal(JSON.parse(r.out).status, 'pending');
  r = await cli(['approve', id, '--reason', 'after restart', '--json']);
  assert.equal(r.code, 0);
  const rec = JSON.parse(r.out);
  assert.equal(rec.status, 'approved');
  assert.equal(rec.decided_by, 'carol');
  assert.equal(rec.reason, 'after restart');
  r = await cli(['deny', id]);
  assert.equal(r.code, 1); // already decided: 409
  assert.equal(JSON.parse(r.out).error, 'already_decided');
})());

test('the CLI needs a valid operator token and a known id', () => gw.wrap(async () => {
  let r = await cli(['list'], 'wrong');
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.out).error, 'unauthorized');
  r = await cli(['show', '0123456789abcdef0123456789abcdef']);
  assert.equal(r.code, 1);
  r = await cli(['list'], '');
  assert.equal(r.code, 2);
  r = await cli(['frobnicate']);
  assert.equal(r.code, 2);
})());
