// The audit JSONL file after an allowed and a blocked call (INTERFACES.md section 6).
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

import { Gateway, testServer, newToken, textOf, waitFor } from './lib/harness.mjs';

const TOKEN = newToken('auditee');
let gw;

before(async () => {
  gw = await Gateway.start({
    servers: { tools: testServer({ AIP_TEST_NAME: 'audited' }) },
    agents: [{ name: 'auditee', token: TOKEN, servers: ['tools'], policy: { allowed_tools: ['echo'] } }],
  });
});

after(async () => { if (gw) await gw.stop(); });

const readLines = () => {
  const text = fs.existsSync(gw.auditPath) ? fs.readFileSync(gw.auditPath, 'utf8') : '';
  return text.split('\n').filter((l) => l.length > 0);
};

test('an allowed and a blocked call are audited as ALLOW and BLOCK', (ctx) => gw.wrap(async () => {
  const { client, transport } = await gw.connect(TOKEN);
  const sid = transport.sessionId;
  const r = await client.callTool({ name: 'echo', arguments: { message: 'audit me' } });
  assert.equal(textOf(r), 'audit me');
  await assert.rejects(client.callTool({ name: 'env', arguments: { name: 'HOME' } }), (e) => e.code === -32001);

  // the writer thread appends asynchronously
  await waitFor(() => readLines().length >= 2, 3000, 'two audit lines');
  const text = fs.readFileSync(gw.auditPath, 'utf8');
  assert.ok(text.endsWith('\n'), 'every line is newline-terminated');
  const lines = readLines();
  const recs = lines.map((l, i) => {
    try { return JSON.parse(l); } catch (e) { assert.fail(`line ${i + 1} is not JSON: ${l}`); }
  });

  // jq -r '.tool'
  const tools = recs.map((x) => x.tool);
  assert.ok(tools.includes('echo') && tools.includes('env'), `tools: ${tools}`);

  // jq 'select(.decision == "ALLOW")' / 'select(.decision == "BLOCK")'
  const allow = recs.filter((x) => x.decision === 'ALLOW' && x.tool === 'echo');
  const block = recs.filter((x) => x.decision === 'BLOCK' && x.tool === 'env');
  assert.equal(allow.length, 1, `one ALLOW echo line: ${text}`);
  assert.equal(block.length, 1, `one BLOCK env line: ${text}`);

  for (const x of [allow[0], block[0]]) {
    assert.equal(x.agent, 'auditee');
    assert.equal(x.session_id, sid);
    assert.equal(x.method, 'tools/call');
    assert.match(x.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(x.timestamp) - Date.now()) < 60000, 'timestamp is now');
    assert.equal(typeof x.direction, 'string');
    assert.equal(x.policy_mode, 'enforce');
    assert.deepEqual(x.policy, { name: 'auditee', version: '1.0.0' });
    assert.equal(typeof x.violation, 'boolean');
  }
  assert.deepEqual(allow[0].args, { message: 'audit me' });
  assert.equal(allow[0].violation, false);
  assert.equal(block[0].violation, true);
  assert.equal(block[0].error_code, -32001);
  assert.deepEqual(block[0].args, { name: 'HOME' });
  assert.equal(typeof allow[0].latency_us, 'number');
})(ctx));

test('the operations guide\'s jq filters work on the file as written', (ctx) => gw.wrap(async () => {
  let jq = true;
  try { execFileSync('jq', ['--version'], { stdio: 'ignore' }); } catch { jq = false; }
  if (!jq) { ctx.skip('jq is not installed'); return; }
  const run = (...args) => execFileSync('jq', [...args, gw.auditPath], { encoding: 'utf8' });
  const tools = run('-r', '.tool').trim().split('\n');
  assert.ok(tools.includes('echo') && tools.includes('env'), tools.join(','));
  const blocked = run('-c', 'select(.decision == "BLOCK") | .tool').trim().split('\n');
  assert.deepEqual(blocked, ['"env"']);
  const withArgs = run('-c', 'select(.args.message != null) | .args.message').trim().split('\n');
  assert.deepEqual(withArgs, ['"audit me"']);
})(ctx));
