// The audit log as the operations guide uses it: a real log made through the gateway (allowed,
// blocked, monitor, DLP, approvals, arguments with user_id), every `jq` command of the guide run
// with the real jq, `aip audit verify` against edited, deleted, reordered and rotated files,
// `aip audit tools`, log rotation under load (mv + SIGUSR1, and mv alone) and audit.on_error.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';

import {
  AIP_BIN, Gateway, makeTempDir, newToken, sha256hex, sleep, testServer, textOf, waitFor,
} from './lib/harness.mjs';

const hasJq = spawnSync('jq', ['--version']).status === 0;
const readLines = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '').split('\n').filter(Boolean);
const aip = (...args) => spawnSync(AIP_BIN, args, { encoding: 'utf8' });

// ---- one log with every kind of record ------------------------------------------------------

const PROD = newToken('prod');
const WATCH = newToken('watch');
const OP = newToken('operator');
const AWS = 'AKIAABCDEFGHIJKLMNOP';
let gw;
let work; // a folder of copies the guide's commands and the tamper tests run on
let expected = 0;

before(async () => {
  gw = await Gateway.start({
    servers: { t: testServer({ AIP_TEST_EXTRA_TOOLS: 'exec_command,delete_file,read_patient_record' }) },
    agents: [
      {
        name: 'prod', token: PROD, servers: ['t'],
        policy: {
          allowed_tools: ['echo', 'add', 'exec_command', 'read_patient_record', 'list_directory'],
          tool_rules: [{ tool: 'delete_file', action: 'ask' }],
          dlp: { patterns: [{ name: 'AWS Key', regex: 'AKIA[A-Z0-9]{16}' }] },
        },
      },
      // the guide's least-privilege step 1: monitor mode with an empty allowlist
      { name: 'watch', token: WATCH, servers: ['t'], policy: { mode: 'monitor', allowed_tools: [] } },
    ],
    extra: { operators: [{ name: 'alice', token_sha256: sha256hex(OP) }], approvals: { timeout: '30s' } },
  });
  const op = (p, body) => fetch(`${gw.adminUrl}${p}`, {
    method: 'POST', body: JSON.stringify(body),
    headers: { Authorization: `Bearer ${OP}`, 'Content-Type': 'application/json' },
  });
  const pending = async (message) => {
    let found;
    await waitFor(async () => {
      const r = await fetch(`${gw.adminUrl}/v1/approvals?status=pending`, { headers: { Authorization: `Bearer ${OP}` } });
      found = (await r.json()).approvals.find((a) => a.arguments?.message === message);
      return found;
    }, 5000, `pending approval ${message}`);
    return found;
  };

  const { client } = await gw.connect(PROD);
  // the test server refuses the extra argument, but the gateway allowed (and audited) the call
  await client.callTool({ name: 'echo', arguments: { message: 'hi', user_id: 'u-17' } });
  await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
  for (let i = 0; i < 2; i++) {
    await assert.rejects(client.callTool({ name: 'env', arguments: { name: 'HOME' } }), (e) => e.code === -32001);
  }
  await client.callTool({ name: 'exec_command', arguments: { message: 'ls' } });
  await client.callTool({ name: 'read_patient_record', arguments: { message: 'p1', user_id: 'u-17' } });
  await client.callTool({ name: 'echo', arguments: { message: `key ${AWS}` } });
  expected += 7;
  // ask -> approved (ASK, APPROVED, ALLOW) and ask -> denied (ASK, DENIED)
  const approved = client.callTool({ name: 'delete_file', arguments: { message: 'old.txt' } });
  assert.equal((await op(`/v1/approvals/${(await pending('old.txt')).id}/approve`, {})).status, 200);
  await approved;
  const denied = client.callTool({ name: 'delete_file', arguments: { message: 'prod.db' } }).then(() => null, (e) => e);
  assert.equal((await op(`/v1/approvals/${(await pending('prod.db')).id}/deny`, { reason: 'no' })).status, 200);
  assert.equal((await denied)?.code, -32004);
  expected += 5;
  const w = await gw.connect(WATCH);
  await w.client.callTool({ name: 'echo', arguments: { message: 'm' } });
  await w.client.callTool({ name: 'env', arguments: { name: 'HOME' } });
  expected += 2;
  await waitFor(() => readLines(gw.auditPath).length >= expected, 5000, `${expected} audit lines`);
  work = makeTempDir('aip-audit-ops-');
  fs.copyFileSync(gw.auditPath, path.join(work, 'aip-audit.jsonl'));
  fs.copyFileSync(gw.auditPath, path.join(work, 'incident-logs.jsonl'));
});

after(async () => {
  if (gw) await gw.stop();
  if (work && !process.env.AIP_E2E_KEEP) fs.rmSync(work, { recursive: true, force: true });
});

const records = () => readLines(path.join(work, 'aip-audit.jsonl')).map((l) => JSON.parse(l));
// A guide command, exactly as written, run by a shell in the folder of copies.
const sh = (cmd) => execFileSync('bash', ['-o', 'pipefail', '-c', cmd], { cwd: work, encoding: 'utf8' });
// A stream of pretty-printed JSON values (what `jq` prints without -c) -> values.
const jsonStream = (text) => (text.trim() ? JSON.parse(`[${text.trim().replace(/\n\}\n\{/g, '\n},\n{')}]`) : []);

test('the log holds every record, with the fields of INTERFACES.md section 6', (ctx) => gw.wrap(async () => {
  const recs = records();
  assert.equal(recs.length, expected, JSON.stringify(recs, null, 1));
  const by = (d, tool) => recs.filter((r) => r.decision === d && (!tool || r.tool === tool));
  assert.equal(by('BLOCK', 'env').length, 2);
  assert.equal(by('ALLOW_MONITOR').length, 2);
  assert.ok(by('ALLOW_MONITOR').every((r) => r.agent === 'watch' && r.policy_mode === 'monitor'));
  const ok = by('APPROVED')[0];
  assert.match(ok.approval_id, /^[0-9a-f]{32}$/);
  assert.equal(ok.approver, 'alice');
  const no = by('DENIED')[0];
  assert.match(no.approval_id, /^[0-9a-f]{32}$/);
  assert.notEqual(no.approval_id, ok.approval_id);
  assert.equal(no.approver, 'alice');
  assert.equal(by('ASK').length, 2);
  // DLP: the secret is never in the log; the record says which rule matched
  assert.ok(!fs.readFileSync(path.join(work, 'aip-audit.jsonl'), 'utf8').includes(AWS), 'no secret in the log');
  const dlp = recs.find((r) => Array.isArray(r.dlp));
  assert.ok(dlp, 'a record with dlp');
  assert.equal(dlp.dlp[0].rule, 'AWS Key');
  // the chain
  let prev = '0'.repeat(64);
  for (const r of recs) {
    assert.equal(r.prev, prev);
    assert.match(r.hash, /^[0-9a-f]{64}$/);
    prev = r.hash;
  }
})(ctx));

test('the guide: jq -r .tool | sort | uniq lists every tool attempted', (ctx) => gw.wrap(async () => {
  if (!hasJq) { ctx.skip('jq is not installed'); return; }
  const out = sh(`cat aip-audit.jsonl | jq -r '.tool' | sort | uniq`);
  assert.deepEqual(out.trim().split('\n'), ['add', 'delete_file', 'echo', 'env', 'exec_command', 'read_patient_record']);
  // the monthly pruning step: the same with a time filter (string order of RFC 3339 works)
  const since = sh(`cat aip-audit.jsonl | jq -r 'select(.timestamp > "2026-02-01") | .tool' | sort | uniq`);
  assert.equal(since, out);
  const future = sh(`cat aip-audit.jsonl | jq -r 'select(.timestamp > "2999-02-01") | .tool' | sort | uniq`);
  assert.equal(future, '');
})(ctx));

test('the guide: the BLOCK alert, compliance reports and incident response', (ctx) => gw.wrap(async () => {
  if (!hasJq) { ctx.skip('jq is not installed'); return; }
  // As written, `jq -r` pretty-prints each blocked record, so `wc -l` counts lines of JSON, not
  // records (docs/audit.md gives the -c form). Both are checked.
  const blockedPretty = sh(`cat aip-audit.jsonl | jq -r 'select(.decision == "BLOCK")'`);
  assert.equal(jsonStream(blockedPretty).length, 2);
  assert.equal(Number(sh(`cat aip-audit.jsonl | jq -r 'select(.decision == "BLOCK")' | wc -l`).trim()),
    blockedPretty.split('\n').filter(Boolean).length);
  assert.equal(sh(`cat aip-audit.jsonl | jq -c 'select(.decision == "BLOCK")' | wc -l`).trim(), '2');

  // Elasticsearch bulk: an index line before every record
  const bulk = sh(`cat aip-audit.jsonl | jq -c '{"index": {"_index": "aip-audit"}}, .'`).trim().split('\n');
  assert.equal(bulk.length, 2 * expected);
  bulk.forEach((l, i) => {
    const v = JSON.parse(l);
    if (i % 2 === 0) assert.deepEqual(v, { index: { _index: 'aip-audit' } });
    else assert.equal(typeof v.hash, 'string');
  });

  // SOC 2: who accessed what, when
  const csv = sh(`cat aip-audit.jsonl | jq -r '[.timestamp, .tool, .decision] | @csv'`).trim().split('\n');
  assert.equal(csv.length, expected);
  assert.match(csv[0], /^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","echo","ALLOW"$/);
  assert.ok(csv.includes(csv.find((l) => /"env","BLOCK"$/.test(l))));

  // GDPR: every action on customer data
  const gdpr = jsonStream(sh(`cat aip-audit.jsonl | jq 'select(.args.user_id != null)'`));
  assert.deepEqual(gdpr.map((r) => r.tool).sort(), ['echo', 'read_patient_record']);
  assert.ok(gdpr.every((r) => r.args.user_id === 'u-17'));

  // HIPAA: every access to PHI
  const phi = jsonStream(sh(`cat aip-audit.jsonl | jq 'select(.tool == "read_patient_record")'`));
  assert.equal(phi.length, 1);
  assert.equal(phi[0].decision, 'ALLOW');

  // incident response: unexpected tools being allowed
  const inc = jsonStream(sh(`cat incident-logs.jsonl | jq 'select(.decision == "ALLOW" and (.tool | IN("exec_command", "delete_file")))'`));
  assert.deepEqual(inc.map((r) => r.tool).sort(), ['delete_file', 'exec_command']);
})(ctx));

test('aip audit verify: ok, then an edited byte, a deleted line, swapped lines, a deleted first line', (ctx) => gw.wrap(async () => {
  const src = path.join(work, 'aip-audit.jsonl');
  const lines = readLines(src);
  const good = aip('audit', 'verify', src);
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, new RegExp(`^${expected} records, chain ok \\(last hash ${JSON.parse(lines.at(-1)).hash}\\)`));

  const variant = (name, ls) => {
    const f = path.join(work, name);
    fs.writeFileSync(f, ls.join('\n') + '\n');
    return [f, aip('audit', 'verify', f)];
  };
  // one byte edited: "add" -> "adc" on line 2
  assert.ok(lines[1].includes('"tool":"add"'));
  let [f, r] = variant('edited.jsonl', lines.map((l, i) => (i === 1 ? l.replace('"tool":"add"', '"tool":"adc"') : l)));
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^${f}:2: hash mismatch`));
  // line 5 deleted: line 5 of the new file does not link
  [f, r] = variant('deleted.jsonl', lines.filter((_, i) => i !== 4));
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^${f}:5: prev does not match`));
  // lines 3 and 4 swapped
  const sw = [...lines];
  [sw[2], sw[3]] = [sw[3], sw[2]];
  [f, r] = variant('swapped.jsonl', sw);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^${f}:3: prev does not match`));
  // the first line deleted: the file starts mid-chain, which is an error unless anchored
  [f, r] = variant('headless.jsonl', lines.slice(1));
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^${f}:1: the chain starts mid-way`));
  r = aip('audit', 'verify', '--prev', JSON.parse(lines[0]).hash, f);
  assert.equal(r.status, 0, r.stderr);
  r = aip('audit', 'verify', '--prev', JSON.parse(lines[1]).hash, f);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^${f}:1: prev .* is not the --prev anchor`));
  // split in two: in order ok, out of order or with a gap not
  const a = path.join(work, 'part.1'), b = path.join(work, 'part.2');
  fs.writeFileSync(a, lines.slice(0, 6).join('\n') + '\n');
  fs.writeFileSync(b, lines.slice(6).join('\n') + '\n');
  assert.equal(aip('audit', 'verify', a, b).status, 0);
  r = aip('audit', 'verify', b, a);
  assert.equal(r.status, 1);
  fs.writeFileSync(b, lines.slice(7).join('\n') + '\n');
  r = aip('audit', 'verify', a, b);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^${b}:1: does not continue ${a}`));
  // a line cut short, not JSON, usage errors
  [f, r] = variant('cut.jsonl', [...lines.slice(0, 3), lines[3].slice(0, 40)]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^${f}:4: not JSON`));
  assert.equal(aip('audit', 'verify').status, 2);
  assert.equal(aip('audit', 'verify', '--prev', 'xyz', src).status, 2);
  assert.equal(aip('audit', 'verify', path.join(work, 'missing')).status, 1);
})(ctx));

test('aip audit tools: per agent, used and attempted; with --policy, unused and not allowed', (ctx) => gw.wrap(async () => {
  const src = path.join(work, 'aip-audit.jsonl');
  let r = aip('audit', 'tools', '--audit', src, '--json');
  assert.equal(r.status, 0, r.stderr);
  const all = JSON.parse(r.stdout);
  assert.deepEqual(all.agents.map((a) => a.agent), ['prod', 'watch']);
  const prod = all.agents[0];
  const t = Object.fromEntries(prod.tools.map((x) => [x.tool, x]));
  assert.deepEqual(Object.keys(t), ['add', 'delete_file', 'echo', 'env', 'exec_command', 'read_patient_record']);
  assert.equal(t.env.used, false);
  assert.deepEqual(t.env.decisions, { BLOCK: 2 });
  assert.equal(t.delete_file.used, true);
  assert.deepEqual(t.delete_file.decisions, { ALLOW: 1, APPROVED: 1, ASK: 2, DENIED: 1 });
  assert.deepEqual(t.echo.decisions, { ALLOW: 2 });
  assert.deepEqual(all.agents[1].tools.map((x) => [x.tool, x.used]), [['echo', true], ['env', true]]);

  r = aip('audit', 'tools', '--audit', src, '--since', '30d', '--policy', path.join(gw.dir, 'policies/prod.yaml'), '--json');
  assert.equal(r.status, 0, r.stderr);
  const withPol = JSON.parse(r.stdout);
  assert.deepEqual(withPol.agents.map((a) => a.agent), ['prod']);
  assert.deepEqual(withPol.agents[0].allowed_unused, ['list_directory']);
  assert.deepEqual(withPol.agents[0].not_allowed, ['env']);
  // text form
  r = aip('audit', 'tools', '--audit', src, '--policy', path.join(gw.dir, 'policies/prod.yaml'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^prod \(policy prod\)\n/);
  assert.match(r.stdout, /\n {2}env +attempted BLOCK=2\n/);
  assert.match(r.stdout, /allowed, unused \(pruning candidates\): list_directory\n/);
  assert.match(r.stdout, /used or attempted, not allowed: env\n/);
  // the monitor agent's policy allows nothing: both tools it used are "not allowed"
  r = aip('audit', 'tools', '--audit', src, '--policy', path.join(gw.dir, 'policies/watch.yaml'), '--json');
  assert.deepEqual(JSON.parse(r.stdout).agents[0].not_allowed, ['echo', 'env']);
  // a time filter that excludes everything
  r = aip('audit', 'tools', '--audit', src, '--since', '2999-01-01', '--json');
  assert.deepEqual(JSON.parse(r.stdout).agents, []);
  assert.equal(aip('audit', 'tools', '--audit', src, '--since', 'soon').status, 2);
  assert.equal(aip('audit', 'tools').status, 2);
  assert.equal(aip('audit', 'tools', '--audit', src, '--policy', path.join(work, 'nope.yaml')).status, 1);
})(ctx));

// ---- rotation ---------------------------------------------------------------------------------

async function callLoop(g, token, stop) {
  const { client } = await g.connect(token);
  let n = 0;
  while (!stop.done) {
    await client.callTool({ name: 'echo', arguments: { message: `m${n}` } });
    n++;
  }
  return n;
}

test('logrotate under load: mv + SIGUSR1 twice loses and duplicates nothing; the series verifies', async (ctx) => {
  const tok = newToken('rot');
  const g = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'rot', token: tok, servers: ['t'], policy: { allowed_tools: ['echo'] } }],
  });
  try {
    await g.wrap(async () => {
      const stop = { done: false };
      const loops = [0, 1, 2, 3].map(() => callLoop(g, tok, stop));
      const p = g.auditPath;
      await waitFor(() => readLines(p).length > 50, 10000, 'records before rotation');
      fs.renameSync(p, `${p}.1`);
      process.kill(g.pid, 'SIGUSR1');
      await waitFor(() => readLines(p).length > 50, 10000, 'records in the new file');
      fs.renameSync(p, `${p}.2`);
      process.kill(g.pid, 'SIGUSR1');
      await waitFor(() => readLines(p).length > 50, 10000, 'records in the third file');
      stop.done = true;
      const calls = (await Promise.all(loops)).reduce((x, y) => x + y, 0);
      const files = [`${p}.1`, `${p}.2`, p];
      const total = () => files.reduce((n, f) => n + readLines(f).length, 0);
      await waitFor(() => total() >= calls, 5000, `${calls} records`);
      await sleep(200);
      assert.equal(total(), calls, 'one record per call');
      ctx.diagnostic(`${calls} calls, records per file: ${files.map((f) => readLines(f).length).join(', ')}`);
      const keys = files.flatMap((f) => readLines(f).map((l) => { const x = JSON.parse(l); return `${x.session_id} ${x.args.message}`; }));
      assert.equal(new Set(keys).size, calls, 'no record twice');
      let r = aip('audit', 'verify', ...files);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^${calls} records, chain ok`));
      // the current file alone starts mid-chain; anchored on the last hash of the file before, ok
      r = aip('audit', 'verify', p);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /starts mid-way/);
      r = aip('audit', 'verify', '--prev', JSON.parse(readLines(`${p}.2`).at(-1)).hash, p);
      assert.equal(r.status, 0, r.stderr);
      // a restart continues the chain in the same file
      await g.restart();
      const { client } = await g.connect(tok);
      await client.callTool({ name: 'echo', arguments: { message: 'after restart' } });
      await waitFor(() => total() === calls + 1, 5000, 'the record after the restart');
      r = aip('audit', 'verify', ...files);
      assert.equal(r.status, 0, r.stderr);
    })(ctx);
  } finally {
    await g.stop();
  }
});

test('the guide\'s cron rotation (mv alone, no signal) is noticed within about a second', async (ctx) => {
  const tok = newToken('mv');
  const g = await Gateway.start({
    servers: { t: testServer() },
    agents: [{ name: 'mv', token: tok, servers: ['t'], policy: { allowed_tools: ['echo'] } }],
  });
  try {
    await g.wrap(async () => {
      const { client } = await g.connect(tok);
      await client.callTool({ name: 'echo', arguments: { message: 'before' } });
      const p = g.auditPath;
      await waitFor(() => readLines(p).length === 1, 5000, 'the first record');
      const dated = path.join(g.dir, 'audit-20260201.jsonl');
      fs.renameSync(p, dated);
      await sleep(1500);
      await client.callTool({ name: 'echo', arguments: { message: 'after' } });
      await waitFor(() => readLines(p).length === 1, 5000, 'a new audit.jsonl');
      assert.equal(readLines(dated).length, 1);
      assert.equal(JSON.parse(readLines(p)[0]).args.message, 'after');
      const r = aip('audit', 'verify', dated, p);
      assert.equal(r.status, 0, r.stderr);
    })(ctx);
  } finally {
    await g.stop();
  }
});

// ---- audit.on_error ---------------------------------------------------------------------------

// A gateway whose audit.path is a symlink the test can point at /dev/full (every write fails
// with ENOSPC) and back.
async function symlinkedGateway(name, tok, audit) {
  const g = new Gateway({
    servers: { t: testServer() },
    agents: [{ name, token: tok, servers: ['t'], policy: { allowed_tools: ['echo'] } }],
    extra: { audit: { path: 'audit.jsonl', ...audit } },
  });
  g.point = (target) => {
    const tmp = path.join(g.dir, 'audit.link.tmp');
    fs.symlinkSync(target, tmp);
    fs.renameSync(tmp, path.join(g.dir, 'audit.jsonl'));
  };
  g.point(path.join(g.dir, 'real-1.jsonl'));
  await g._start();
  // SIGUSR1 and wait until the writer has reopened the path
  g.reopen = async () => {
    const n = (g.stderr.match(/audit: reopened/g) || []).length;
    process.kill(g.pid, 'SIGUSR1');
    await waitFor(() => (g.stderr.match(/audit: reopened/g) || []).length > n, 5000, 'the audit file reopened');
  };
  return g;
}

test('on_error block: an unwritable log refuses calls (-32603) and /readyz says 503 until it heals', async (ctx) => {
  const tok = newToken('blk');
  const g = await symlinkedGateway('blk', tok, { on_error: 'block' });
  try {
    await g.wrap(async () => {
      const { client } = await g.connect(tok);
      await client.callTool({ name: 'echo', arguments: { message: 'one' } });
      await waitFor(() => readLines(path.join(g.dir, 'real-1.jsonl')).length === 1, 5000, 'the first record');
      g.point('/dev/full');
      await g.reopen();
      // the next record cannot be written: from then on, calls are refused
      await client.callTool({ name: 'echo', arguments: { message: 'two' } });
      await waitFor(async () => (await g.admin('/readyz')).status === 503, 5000, '/readyz 503');
      await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'refused' } }),
        (e) => e.code === -32603 && /Audit log unavailable/.test(e.message));
      assert.ok(await g.metric('aip_audit_write_errors_total') > 0);
      assert.equal(await g.metric('aip_audit_refused_calls_total'), 1);
      assert.equal(await g.metric('aip_audit_failing'), 1);
      // heal: the held record is written to the new file, calls work again
      g.point(path.join(g.dir, 'real-2.jsonl'));
      await g.reopen();
      await waitFor(async () => (await g.admin('/readyz')).status === 200, 5000, '/readyz 200');
      await client.callTool({ name: 'echo', arguments: { message: 'three' } });
      const f1 = path.join(g.dir, 'real-1.jsonl'), f2 = path.join(g.dir, 'real-2.jsonl');
      await waitFor(() => readLines(f2).length === 2, 5000, 'two records in the healed file');
      assert.deepEqual([...readLines(f1), ...readLines(f2)].map((l) => JSON.parse(l).args.message), ['one', 'two', 'three']);
      const r = aip('audit', 'verify', f1, f2);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(await g.metric('aip_audit_dropped_total'), 0);
    })(ctx);
  } finally {
    await g.stop();
  }
});

test('on_error allow: calls go on, write errors and dropped records are counted, /readyz stays 200', async (ctx) => {
  const tok = newToken('alw');
  const g = await symlinkedGateway('alw', tok, { on_error: 'allow', buffer_size: 3 });
  try {
    await g.wrap(async () => {
      g.point('/dev/full');
      await g.reopen();
      const { client } = await g.connect(tok);
      for (let i = 0; i < 8; i++) {
        assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: `m${i}` } })), `m${i}`);
      }
      await waitFor(async () => await g.metric('aip_audit_write_errors_total') > 0, 5000, 'write errors counted');
      assert.equal(await g.metric('aip_audit_dropped_total'), 5, 'three records fit the buffer');
      assert.equal((await g.admin('/readyz')).status, 200);
      // healed: the three held records are written
      g.point(path.join(g.dir, 'real-2.jsonl'));
      await g.reopen();
      await waitFor(() => readLines(path.join(g.dir, 'real-2.jsonl')).length === 3, 5000, 'the buffered records');
    })(ctx);
  } finally {
    await g.stop();
  }
});

// ---- backpressure (issue 11) -----------------------------------------------------------------

// A full queue slows intake (the gateway stops reading agents' connections until the writer
// catches up) instead of refusing calls: with buffer_size 1 every record fills it, and many
// concurrent calls must all succeed, every one audited, none refused.
test('backpressure: audit buffer_size 1 and 120 concurrent calls: zero refusals, every call audited', async (ctx) => {
  const tok = newToken('bp');
  const g = new Gateway({
    servers: { t: testServer() },
    agents: [{ name: 'bp', token: tok, servers: ['t'], policy: { allowed_tools: ['echo'] } }],
    extra: { audit: { path: 'audit.jsonl', buffer_size: 1, on_error: 'block' } },
  });
  await g._start();
  try {
    await g.wrap(async () => {
      const clients = await Promise.all(Array.from({ length: 6 }, () => g.connect(tok)));
      const calls = [];
      for (const { client } of clients)
        for (let i = 0; i < 20; i++) calls.push(client.callTool({ name: 'echo', arguments: { message: `c${calls.length}` } }));
      const res = await Promise.allSettled(calls);
      const failed = res.filter((r) => r.status === 'rejected').map((r) => String(r.reason?.message));
      assert.deepEqual(failed, [], 'no call refused');
      res.forEach((r, i) => assert.equal(textOf(r.value), `c${i}`));
      assert.equal(await g.metric('aip_audit_refused_calls_total'), 0);
      assert.equal(await g.metric('aip_audit_dropped_total'), 0);
      assert.ok(await g.metric('aip_audit_backpressure_pauses_total') > 0, 'the queue did fill');
      const f = path.join(g.dir, 'audit.jsonl');
      await waitFor(() => readLines(f).filter((l) => JSON.parse(l).method === 'tools/call').length === 120, 5000, '120 tools/call records');
      assert.equal((await g.admin('/readyz')).status, 200);
      const v = aip('audit', 'verify', f);
      assert.equal(v.status, 0, v.stderr);
    })(ctx);
  } finally {
    await g.stop();
  }
});
