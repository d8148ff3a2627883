// DLP through the gateway with the SDK client: secrets in upstream answers are redacted with
// AIP's placeholder (and counted in audit and metrics, never logged); secrets in arguments
// are blocked, redacted before they go upstream, or passed with a warning, per on_request_match.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Gateway, newToken, sha256hex, testServer, textOf, waitFor } from './lib/harness.mjs';

const KEY = 'AKIAIOSFODNN7EXAMPLE';
const patterns = [{ name: 'AWS Key', regex: '(AKIA|ASIA)[A-Z0-9]{16}' }];
let gw;
const tokResp = newToken('resp'), tokBlock = newToken('block'), tokRedact = newToken('redact');
const tokAsk = newToken('ask'), tokOp = newToken('operator'), tokAskScan = newToken('askscan');

before(async () => {
  gw = await Gateway.start({
    servers: { t: testServer() },
    agents: [
      { name: 'resp', token: tokResp, servers: ['t'],
        policy: { allowed_tools: ['echo'], dlp: { patterns } } },
      { name: 'blocker', token: tokBlock, servers: ['t'],
        policy: { allowed_tools: ['echo'], dlp: { scan_requests: true, patterns } } },
      { name: 'redactor', token: tokRedact, servers: ['t'],
        policy: { allowed_tools: ['echo'], dlp: { scan_requests: true, on_request_match: 'redact', patterns } } },
      { name: 'asker', token: tokAsk, servers: ['t'],
        policy: { tool_rules: [{ tool: 'echo', action: 'ask' }], dlp: { patterns } } },
      { name: 'askscan', token: tokAskScan, servers: ['t'],
        policy: { tool_rules: [{ tool: 'echo', action: 'ask' }], dlp: { scan_requests: true, patterns } } },
    ],
    extra: { operators: [{ name: 'op', token_sha256: sha256hex(tokOp) }] },
  });
});
after(async () => { await gw?.stop(); });

test('a secret in a tool result is redacted exactly; JSON escapes do not hide it', () => gw.wrap(async () => {
  const { client } = await gw.connect(tokResp);
  let r = await client.callTool({ name: 'echo', arguments: { message: `key=${KEY}!` } });
  assert.equal(textOf(r), 'key=[REDACTED:AWS Key]!');
  // the same key written with a JSON escape on the way back is still found
  r = await client.callTool({ name: 'echo', arguments: { message: 'A' + KEY.slice(1) } });
  assert.equal(textOf(r), '[REDACTED:AWS Key]');
  r = await client.callTool({ name: 'echo', arguments: { message: 'nothing to see' } });
  assert.equal(textOf(r), 'nothing to see');
})());

test('structuredContent is redacted too, numbers included; the rest of the result is kept', () => gw.wrap(async () => {
  const g = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'num', token: tokResp, servers: ['t'],
               policy: { allowed_tools: ['add'], dlp: { patterns: [{ name: 'Magic', regex: '4242' }] } } }],
  });
  try {
    // no tools/list first: the SDK would check structuredContent against the output schema,
    // which a redacted number (now a string) no longer fits
    const { client } = await g.connect(tokResp);
    const r = await client.callTool({ name: 'add', arguments: { a: 4000, b: 242 } });
    assert.equal(textOf(r), '[REDACTED:Magic]');
    assert.deepEqual(r.structuredContent, { sum: '[REDACTED:Magic]' });
    const clean = await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
    assert.deepEqual(clean.structuredContent, { sum: 3 }, 'clean numbers stay numbers');
  } finally {
    await g.stop();
  }
})());

test('request DLP runs before an ask: a secret is blocked at once and never reaches the queue', () => gw.wrap(async () => {
  const { client } = await gw.connect(tokAskScan);
  await assert.rejects(client.callTool({ name: 'echo', arguments: { message: `ask with ${KEY}` } }),
    (e) => e.code === -32001 && /Forbidden/.test(e.message));
  const r = await fetch(`${gw.adminUrl}/v1/approvals`, { headers: { Authorization: `Bearer ${tokOp}` } });
  const { approvals } = await r.json();
  assert.ok(!approvals.some((a) => a.agent === 'askscan'), 'no approval record was made');
})());

test('request side: block -> -32001, redact -> the upstream never sees the secret', () => gw.wrap(async () => {
  const b = (await gw.connect(tokBlock)).client;
  await assert.rejects(b.callTool({ name: 'echo', arguments: { message: `leak ${KEY}` } }),
    (e) => e.code === -32001 && /Forbidden/.test(e.message));
  const ok = await b.callTool({ name: 'echo', arguments: { message: 'clean' } });
  assert.equal(textOf(ok), 'clean');
  const r = (await gw.connect(tokRedact)).client;
  const res = await r.callTool({ name: 'echo', arguments: { message: `leak ${KEY}` } });
  assert.equal(textOf(res), 'leak [REDACTED:AWS Key]'); // the upstream echoed what it got
})());

test('audit and metrics carry rule names and counts, never the secret', () => gw.wrap(async () => {
  const { text: body } = await gw.admin('/metrics');
  assert.match(body, /aip_dlp_redactions_total\{agent="resp",rule="AWS Key"\} [1-9]/);
  const audit = fs.readFileSync(gw.auditPath, 'utf8');
  assert.ok(!audit.includes(KEY), 'the audit log must not hold the secret');
  const lines = audit.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => Array.isArray(l.dlp) && l.dlp[0].rule === 'AWS Key' && l.dlp[0].count >= 1));
  assert.ok(!gw.stderr.includes(KEY), 'the gateway log must not hold the secret');
})());

test('an approval record shows the arguments DLP-redacted; the operator never sees the secret', () => gw.wrap(async () => {
  const { client } = await gw.connect(tokAsk);
  const call = client.callTool({ name: 'echo', arguments: { message: `deploy with ${KEY}` } });
  call.catch(() => {});
  const headers = { Authorization: `Bearer ${tokOp}`, 'Content-Type': 'application/json' };
  let rec;
  await waitFor(async () => {
    const r = await fetch(`${gw.adminUrl}/v1/approvals?status=pending`, { headers });
    const text = await r.text();
    assert.ok(!text.includes(KEY), 'the approval API must not show the secret');
    rec = JSON.parse(text).approvals.find((a) => a.agent === 'asker');
    return !!rec;
  }, 5000, 'the pending approval');
  assert.equal(rec.arguments.message, 'deploy with [REDACTED:AWS Key]');
  await fetch(`${gw.adminUrl}/v1/approvals/${rec.id}/deny`, { method: 'POST', headers, body: '{}' });
  await assert.rejects(call, (e) => e.code === -32004);
})());

// dlp.timeout: a scan that outlives its budget is abandoned; failover.on_dlp_error decides.
// 8 MiB of near misses ("AKIA" 1.6 million times, never followed by 16 key characters) with a
// key at the end: Hyperscan has to check every one of them, which takes several milliseconds
// on any machine, and the engine checks the budget before it resolves the rule that fired.
test('dlp.timeout: block withholds the answer, allow forwards it unredacted', async () => {
  const slow = newToken('slow'), open = newToken('open');
  const dlp = { patterns, timeout: '1ms', stream_threshold: '64MiB' };
  const g = await Gateway.start({
    servers: { t: testServer() },
    limits: { max_body: '16MiB' },
    agents: [
      { name: 'strict', token: slow, servers: ['t'], policy: { allowed_tools: ['echo'], dlp } },
      { name: 'lenient', token: open, servers: ['t'],
        policy: { allowed_tools: ['echo'], dlp, failover: { on_dlp_error: 'allow' } } },
    ],
  });
  try {
    await g.wrap(async () => {
      const message = 'AKIAx'.repeat((8 << 20) / 5) + KEY;
      const strict = (await g.connect(slow)).client;
      await assert.rejects(strict.callTool({ name: 'echo', arguments: { message } }),
        (e) => e.code === -32603 && /withheld/.test(e.message));
      const lenient = (await g.connect(open)).client;
      const r = await lenient.callTool({ name: 'echo', arguments: { message } });
      assert.equal(textOf(r).length, message.length, 'on_dlp_error: allow forwards it');
      assert.match(g.stderr, /DLP scan exceeded dlp.timeout \(1 ms\)/);
    })();
  } finally {
    await g.stop();
  }
});
