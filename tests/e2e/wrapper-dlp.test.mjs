// DLP in the stdio wrapper (`aip --target ... --policy p.yaml` with a `dlp` block): the SDK
// client over stdio, the C test server behind. Secrets in what the server sends are redacted
// with AIP's placeholder (content, structuredContent, errors; big results streamed); secrets in
// tool arguments are blocked, redacted or passed with a warning per on_request_match; stderr is
// filtered with filter_stderr; a scan that fails (dlp.timeout) withholds the message unless
// failover.on_dlp_error is allow. Audit records carry rule counts, never the secret.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { SANITIZED, textOf, waitFor } from './lib/harness.mjs';
import {
  AIP_BIN, RawWrapper, TARGET_TEST_SERVER, auditRecords, cleanup, sdkWrapper, waitAudit, wrapperArgs,
  wrapperDir,
} from './lib/wrapper.mjs';

const KEY = 'AKIAIOSFODNN7EXAMPLE';
const RED = '[REDACTED:AWS Key]';
const AWS = { name: 'AWS Key', regex: '(AKIA|ASIA)[A-Z0-9]{16}' };
const TOOLS = ['echo', 'echo_structured', 'big', 'fail', 'stderr'];

async function withSdk(opts, body) {
  const w = await sdkWrapper(opts);
  try {
    await body(w);
  } catch (e) {
    process.stderr.write(`\n----- wrapper stderr -----\n${w.stderr.slice(-4000)}\n-----\n`);
    throw e;
  } finally {
    await w.close();
  }
}

const mcpError = (code, message, data) => (e) => {
  assert.ok(e instanceof McpError, `McpError expected, got ${e}`);
  assert.equal(e.code, code, e.message);
  if (message) assert.match(e.message, message);
  if (data !== undefined) assert.deepEqual(e.data, data);
  return true;
};

/** The wrapper's audit log must never hold the secret. */
function noSecretIn(file) {
  assert.ok(!fs.readFileSync(file, 'utf8').includes(KEY), 'the audit log holds the secret');
}

/** What `big` returns for (bytes, insert, every): x's with a copy of insert centred on each
 * multiple of every. */
function bigText(bytes, insert, every) {
  const b = Buffer.alloc(bytes, 'x');
  for (let at = every; at - Math.floor(insert.length / 2) + insert.length <= bytes; at += every)
    b.write(insert, at - Math.floor(insert.length / 2), 'latin1');
  return b.toString('latin1');
}

describe('response DLP', () => {
  const spec = { allowed_tools: TOOLS, dlp: { patterns: [AWS] } };

  test('a secret in a result is redacted exactly, in content and structuredContent; audited with counts only', () => withSdk({ spec }, async ({ client, audit, stderr }) => {
    let r = await client.callTool({ name: 'echo', arguments: { message: `key=${KEY}!` } });
    assert.equal(textOf(r), `key=${RED}!`);
    r = await client.callTool({ name: 'echo_structured', arguments: { message: `a ${KEY} b` } });
    assert.equal(textOf(r), `a ${RED} b`);
    assert.deepEqual(r.structuredContent, { message: `a ${RED} b` });
    r = await client.callTool({ name: 'echo', arguments: { message: 'nothing to see' } });
    assert.equal(textOf(r), 'nothing to see');
    // a tool error's text too
    r = await client.callTool({ name: 'fail', arguments: { message: `boom ${KEY}` } });
    assert.equal(r.isError, true);
    assert.equal(textOf(r), `boom ${RED}`);
    await waitAudit(audit, (x) => x.direction === 'downstream' && x.tool === 'fail'); // the last one
    const rec = auditRecords(audit).find((x) => x.direction === 'downstream' && x.tool === 'echo_structured');
    assert.equal(rec.method, 'tools/call');
    assert.equal(rec.decision, 'ALLOW');
    assert.deepEqual(rec.dlp, [{ rule: 'AWS Key', count: 2 }]);
    assert.ok(rec.latency_us >= 0);
    // the upstream record's arguments are redacted too (the reference does that much)
    const up = auditRecords(audit).find((x) => x.direction === 'upstream' && x.tool === 'echo');
    assert.equal(up.args.message, `key=${RED}!`);
    assert.equal(auditRecords(audit).filter((x) => x.direction === 'downstream').length, 3, 'clean answers get no record');
    noSecretIn(audit);
    assert.ok(!stderr.includes(KEY));
  }));

  test('a result above stream_threshold streams through DLP; secrets straddling every read boundary are redacted', () => withSdk({
    spec, extra: ['--verbose'],
  }, async (w) => {
    const bytes = 3_000_000, every = 4099; // a prime: copies land across any read size
    const r = await w.client.callTool({ name: 'big', arguments: { bytes, insert: KEY, every } });
    const want = bigText(bytes, KEY, every).split(KEY).join(RED);
    const got = textOf(r);
    assert.equal(got.length, want.length);
    assert.ok(got === want, 'the streamed result differs from the block redaction');
    const n = Math.floor((bytes - KEY.length / 2) / every);
    const rec = await waitAudit(w.audit, (x) => x.direction === 'downstream' && x.tool === 'big');
    assert.deepEqual(rec.dlp, [{ rule: 'AWS Key', count: n }]);
    assert.match(w.stderr, /a message longer than 1048576 bytes: streamed through DLP/);
    // the session goes on, and a small answer still takes the block path
    assert.equal(textOf(await w.client.callTool({ name: 'echo', arguments: { message: KEY } })), RED);
    noSecretIn(w.audit);
  }));

  test('a streamed result holds bounded memory', () => withSdk({ spec }, async (w) => {
    const peak = () => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${w.pid}/status`, 'utf8'))[1]);
    await w.client.callTool({ name: 'echo', arguments: { message: KEY } });
    const base = peak();
    const bytes = 8 * 1024 * 1024; // the SDK reads at most 10 MiB a line
    const r = await w.client.callTool({ name: 'big', arguments: { bytes, insert: KEY, every: 1_000_003 } });
    assert.equal(textOf(r).length, bytes - 2 * Math.floor((bytes - 10) / 1_000_003));
    // held whole, the line and its redacted copy would take 16 MiB and more; streamed, the output queue
    // (paused at 4 MiB) and the engine's window are all there is
    const grew = peak() - base;
    process.stderr.write(`# wrapper peak RSS ${base} kB before, +${grew} kB for an 8 MiB result\n`);
    if (!SANITIZED) assert.ok(grew < 12 * 1024, `wrapper peak RSS grew by ${grew} kB`);
  }));
});

describe('raw client -> wrapper -> mirror server', () => {
  test('notifications and non-JSON stdout noise are redacted too', async () => {
    const w = RawWrapper.start({
      spec: { allowed_tools: ['echo'], dlp: { patterns: [AWS] } }, env: { MIRROR_BANNER: `banner ${KEY} end` },
    });
    try {
      await w.init();
      w.send({ jsonrpc: '2.0', method: 'notifications/roots/list_changed', params: { _meta: { k: `x ${KEY}` } } });
      const n = await w.next((m) => m.params?.data?.notified?.method === 'notifications/roots/list_changed');
      assert.equal(n.params.data.notified.params._meta.k, `x ${RED}`);
      await waitFor(() => w.stderr.includes(`[subprocess stdout] banner ${RED} end`), 3000, 'the banner');
      assert.ok(!w.stderr.includes(KEY));
      const rec = await waitAudit(w.audit, (x) => x.direction === 'downstream');
      assert.equal(rec.method, 'notifications/message');
      assert.deepEqual(rec.dlp, [{ rule: 'AWS Key', count: 1 }]);
    } catch (e) {
      w.dump();
      throw e;
    } finally {
      await w.stop();
    }
  });
});

describe('request DLP (scan_requests)', () => {
  // request-only rules: the echo shows exactly what reached the server
  const spec = (mode) => ({
    allowed_tools: TOOLS,
    dlp: { scan_requests: true, on_request_match: mode, patterns: [{ ...AWS, scope: 'request' }] },
  });

  test('block: -32001 with AIP\'s data, audited with the rule count; clean calls pass', () => withSdk({ spec: spec('block') }, async ({ client, audit }) => {
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: `leak ${KEY}` } }),
      mcpError(-32001, /Forbidden/, { reason: 'Tool not in allowed_tools list', tool: 'echo' }));
    const rec = await waitAudit(audit, (x) => x.decision === 'BLOCK');
    assert.equal(rec.reason, 'sensitive data in request (DLP)');
    assert.deepEqual(rec.dlp, [{ rule: 'AWS Key', count: 1 }]);
    assert.equal(rec.args.message, `leak ${RED}`);
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: 'clean' } })), 'clean');
    noSecretIn(audit);
  }));

  test('redact: the server gets the redacted arguments', () => withSdk({ spec: spec('redact') }, async ({ client, audit }) => {
    const r = await client.callTool({ name: 'echo', arguments: { message: `leak ${KEY}` } });
    assert.equal(textOf(r), `leak ${RED}`);
    const rec = await waitAudit(audit, (x) => x.tool === 'echo');
    assert.equal(rec.decision, 'ALLOW');
    assert.deepEqual(rec.dlp, [{ rule: 'AWS Key', count: 1 }]);
    noSecretIn(audit);
  }));

  test('warn: forwarded as is, with a warning and the count in the audit record', () => withSdk({ spec: spec('warn') }, async (w) => {
    const r = await w.client.callTool({ name: 'echo', arguments: { message: `leak ${KEY}` } });
    assert.equal(textOf(r), `leak ${KEY}`); // a request-only rule: the answer is not scanned
    const rec = await waitAudit(w.audit, (x) => x.tool === 'echo');
    assert.deepEqual(rec.dlp, [{ rule: 'AWS Key', count: 1 }]);
    assert.equal(rec.args.message, `leak ${RED}`, 'the audit copy is redacted whatever the mode');
    await waitFor(() => /on_request_match: warn/.test(w.stderr), 2000, 'the warning');
    noSecretIn(w.audit);
  }));

  test('ask: the human is shown the arguments DLP-redacted', () => {
    const asked = [];
    return withSdk({
      spec: { tool_rules: [{ tool: 'echo', action: 'ask' }], dlp: { patterns: [AWS] } },
      capabilities: { elicitation: { form: {} } },
      onElicit: async (req) => { asked.push(req.params.message); return { action: 'decline' }; },
    }, async ({ client }) => {
      await assert.rejects(client.callTool({ name: 'echo', arguments: { message: `deploy ${KEY}` } }), mcpError(-32004));
      assert.equal(asked.length, 1);
      assert.ok(asked[0].includes(`deploy ${RED}`) && !asked[0].includes(KEY), asked[0]);
    });
  });
});

describe('filter_stderr', () => {
  const say = `secret ${KEY} done\nnext ${KEY.replace('AKIA', 'ASIA')} line\n`;

  test('the child\'s stderr is redacted, even a secret split across writes', () => withSdk({
    spec: { allowed_tools: TOOLS, dlp: { filter_stderr: true, patterns: [AWS] } },
  }, async (w) => {
    assert.equal(textOf(await w.client.callTool({ name: 'stderr', arguments: { message: say, pieces: 7 } })), 'ok');
    // lines come out once the child goes quiet (no need for its next line)
    await waitFor(() => w.stderr.includes(`[subprocess stderr] next ${RED} line`), 3000, 'the second line');
    assert.match(w.stderr, /\[subprocess stderr\] secret \[REDACTED:AWS Key\] done/);
    assert.ok(!w.stderr.includes('IOSFODNN7EXAMPLE'), 'no part of the secret leaks');
  }));

  // issue 11 item 10: the wrapper's own log never holds a secret; filter_stderr adds the
  // stream across writes and lines, without it each line is redacted as it is logged
  test('without filter_stderr, each stderr line is still redacted in the wrapper\'s log', () => withSdk({
    spec: { allowed_tools: TOOLS, dlp: { patterns: [AWS] } },
  }, async (w) => {
    await w.client.callTool({ name: 'stderr', arguments: { message: say } });
    await waitFor(() => w.stderr.includes(`[subprocess stderr] secret ${RED} done`), 3000, 'the line');
    assert.ok(!w.stderr.includes(KEY), 'the secret is in the wrapper\'s log');
  }));
});

describe('failover.on_dlp_error', () => {
  // A 1 ms budget and two rules that fire thousands of times: the scan cannot finish in time.
  const patterns = [AWS, { name: 'Example', regex: 'EXAMPLE' }];
  const dense = { insert: KEY, every: 40 };

  test('block (default): a timed-out scan withholds the answer (-32603), whole or streamed; the session goes on', () => withSdk({
    spec: { allowed_tools: TOOLS, dlp: { timeout: '1ms', patterns } },
  }, async ({ client, audit }) => {
    for (const bytes of [900_000, 3_000_000]) {
      await assert.rejects(client.callTool({ name: 'big', arguments: { bytes, ...dense } }),
        mcpError(-32603, /Response withheld: DLP could not scan it/));
    }
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: KEY } })), RED);
    const recs = auditRecords(audit).filter((x) => x.direction === 'downstream' && x.tool === 'big');
    assert.equal(recs.length, 2);
    for (const r of recs) assert.equal(r.decision, 'BLOCK');
  }));

  test('allow: a timed-out scan forwards the answer unredacted', () => withSdk({
    spec: { allowed_tools: TOOLS, dlp: { timeout: '1ms', patterns }, failover: { on_dlp_error: 'allow' } },
  }, async (w) => {
    const r = await w.client.callTool({ name: 'big', arguments: { bytes: 900_000, ...dense } });
    assert.equal(textOf(r), bigText(900_000, KEY, 40));
    assert.match(w.stderr, /forwarded unredacted \(failover\.on_dlp_error: allow\)/);
  }));
});

test('a policy whose pattern does not compile does not start (exit 1)', async () => {
  const d = wrapperDir({ allowed_tools: ['echo'], dlp: { patterns: [{ name: 'bad', regex: '(?=x)y' }] } });
  const r = spawnSync(AIP_BIN, wrapperArgs({ target: TARGET_TEST_SERVER, policy: d.policy, audit: d.audit }),
    { input: '', encoding: 'utf8', timeout: 10000 });
  cleanup(d.dir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /pattern "bad"/);
});

test('--dlp-cache: the second start loads the compiled rules from the cache', () => {
  const d = wrapperDir({ allowed_tools: ['echo'], dlp: { rulepack: 'default', patterns: [AWS] } });
  const args = [...wrapperArgs({ target: TARGET_TEST_SERVER, policy: d.policy, audit: d.audit }), '--dlp-cache', `${d.dir}/cache`];
  const run = () => spawnSync(AIP_BIN, args, { input: '', encoding: 'utf8', timeout: 30000 });
  const first = run(), second = run();
  cleanup(d.dir);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /DLP: \d+ rule\(s\); /);
  assert.match(second.stderr, /DLP: \d+ rule\(s\) \(from the cache\)/);
});

// Issue 11 items 9 and 10 in the wrapper: every member of every message passes DLP both ways,
// and neither the audit log nor the wrapper's own log holds a secret from the client or the
// server (tool and method names, failed_arg, reasons, stderr).
describe('every member, both ways; nothing in the audit log or our log', () => {
  const raw = (spec, target) => RawWrapper.start({ spec, target });
  async function run(w, body) {
    try {
      await w.init();
      await body();
    } catch (e) {
      w.dump();
      throw e;
    } finally {
      await w.stop();
    }
  }

  test('server -> client: extra top-level members, error members, notification members', async () => {
    const w = raw({ allowed_tools: ['raw'], dlp: { patterns: [AWS], stream_threshold: '64KiB' } }, TARGET_TEST_SERVER);
    await run(w, async () => {
      w.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'raw', _meta: { progressToken: 'p' }, arguments: {
        before: { x: KEY }, after: { [KEY]: 1 },
        notes: [{ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1, extra: KEY }, top: KEY }],
        unrelated: [{ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'd' }, extra: KEY }],
      } } });
      const r = await w.reply(1);
      assert.equal(r.x, RED);
      w.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'raw', arguments: {
        error: { code: -32000, message: 'm', hint: KEY } } } });
      const e = await w.reply(2);
      assert.equal(e.error.code, -32000);
      assert.equal(e.error.hint, RED);
      // a line above stream_threshold streams: its head (before id) and tail too
      w.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'raw', arguments: {
        before: { x: KEY }, after: { y: KEY }, pad: 200000 } } });
      const big = await w.reply(3, 10000);
      assert.equal(big.x, RED);
      assert.equal(big.y, RED);
      assert.equal(big.result.content[0].text.length, 200000);
      await w.next((m) => m.method === 'notifications/message' && m.extra === RED);
      await w.next((m) => m.method === 'notifications/progress' && m.top === RED);
      assert.ok(!w.lines.join('\n').includes(KEY), 'a secret reached the client');
      noSecretIn(w.audit);
    });
  });

  test('client -> server: _meta, extra members, notifications, answers; redact and block', async () => {
    const spec = (mode) => ({ allowed_tools: ['echo'],
      dlp: { scan_requests: true, on_request_match: mode, patterns: [{ ...AWS, scope: 'request' }] } });
    const w = raw(spec('redact'));
    await run(w, async () => {
      w.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', extra: KEY,
               params: { name: 'echo', arguments: { message: 'm' }, _meta: { k: KEY } } });
      const r = await w.reply(1);
      assert.equal(r.result.echo.params._meta.k, RED);
      assert.equal(r.result.echo.extra, RED);
      w.send({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: { k: KEY } } });
      assert.equal((await w.reply(2)).result.echo.params._meta.k, RED);
      w.send({ jsonrpc: '2.0', method: 'notifications/roots/list_changed', params: { k: KEY } });
      await w.next((m) => m.params?.data?.notified?.params?.k === RED);
      w.send({ jsonrpc: '2.0', id: 'srv-1', result: { k: KEY } }); // the answer to the mirror's ping
      await w.next((m) => m.params?.data?.received?.result?.k === RED);
      assert.ok(!w.lines.join('\n').includes(KEY), 'a secret reached the server');
    });
    const b = raw(spec('block'));
    await run(b, async () => {
      b.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'm' }, _meta: { k: KEY } } });
      assert.equal((await b.reply(1)).error.code, -32001);
      b.send({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: { k: KEY } } });
      assert.equal((await b.reply(2)).error.code, -32001);
      b.send({ jsonrpc: '2.0', id: 3, method: 'tools/list', params: {} });
      assert.ok((await b.reply(3)).result, 'a clean request passes');
      // an answer to the server's request that DLP blocks: the server gets an error instead
      // (its request must not hang), the same error aip serve gives its servers
      b.send({ jsonrpc: '2.0', id: 'srv-1', result: { k: KEY } });
      const got = await b.next((m) => m.params?.data?.received?.id === 'srv-1');
      assert.deepEqual(got.params.data.received,
        { jsonrpc: '2.0', id: 'srv-1', error: { code: -32001, message: 'Forbidden: sensitive data in request (DLP)' } });
      assert.ok(!b.lines.join('\n').includes(KEY), 'a secret reached the server');
      noSecretIn(b.audit);
    });
  });

  test('no secret in the audit log or the wrapper\'s log: names, failed_arg, reasons, stderr', async () => {
    const w = raw({
      allowed_tools: ['echo', 'stderr'],
      tool_rules: [{ tool: 'echo', allow_args: { message: '^ok$' }, strict_args: true }],
      dlp: { patterns: [AWS] },
    }, TARGET_TEST_SERVER);
    await run(w, async () => {
      const call = (id, name, args) => w.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
      call(1, `t_${KEY}`, {});
      assert.equal((await w.reply(1)).error.code, -32001);
      w.send({ jsonrpc: '2.0', id: 2, method: `x/${KEY}`, params: {} });
      assert.ok((await w.reply(2)).error);
      call(3, 'echo', { message: 'ok', [`a_${KEY}`]: 1 });
      assert.equal((await w.reply(3)).error.code, -32001);
      call(4, 'echo', { message: KEY });
      assert.equal((await w.reply(4)).error.code, -32001);
      call(5, 'stderr', { message: `stderr says ${KEY}\n` });
      await w.reply(5);
      await waitFor(() => w.stderr.includes('[subprocess stderr] stderr says'), 3000, 'the stderr line');
      // a secret across the old 1000-byte cut of a stderr line, and a line too long to log whole
      call(6, 'stderr', { message: `${'y'.repeat(990)}${KEY}\n${'z'.repeat(30000)}${KEY}\nlast\n` });
      await w.reply(6);
      await waitFor(() => w.stderr.includes('[subprocess stderr] last'), 3000, 'the last stderr line');
      assert.ok(!w.stderr.includes(KEY.slice(0, 8)), 'part of a secret in the wrapper\'s log');
      await waitAudit(w.audit, (x) => x.failed_arg);
      const audit = fs.readFileSync(w.audit, 'utf8');
      assert.ok(!audit.includes(KEY), `the audit log holds the secret:\n${audit}`);
      assert.ok(!w.stderr.includes(KEY), `the wrapper's log holds the secret:\n${w.stderr}`);
      const recs = auditRecords(w.audit);
      assert.ok(recs.some((x) => x.tool === `t_${RED}`), 'the tool name is redacted');
      assert.ok(recs.some((x) => x.method === `x/${RED}`), 'the method is redacted');
      assert.ok(recs.some((x) => x.failed_arg === `a_${RED}`), 'failed_arg is redacted');
    });
  });
});
