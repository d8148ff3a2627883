// Live reload, fail-closed policy loading and graceful drain (operations: incident response by
// switching a policy to monitor, Kubernetes Secret updates, rolling restarts behind a load
// balancer). Each describe gets its own gateway.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import {
  Gateway, testServer, newToken, textOf, timed, sleep, waitFor, toYaml, policyDoc, parseMaybeSse,
  replaceFile, AIP_BIN, listAllTools, names, sha256hex,
} from './lib/harness.mjs';

const tools = testServer({ AIP_TEST_NAME: 'reload' });

/** Resolves to 'ok' or the JSON-RPC error code of an echo call. */
async function echoOutcome(client, tool = 'echo') {
  const args = tool === 'add' ? { a: 1, b: 2 } : { message: 'hi' };
  try {
    await client.callTool({ name: tool, arguments: args });
    return 'ok';
  } catch (e) {
    if (e instanceof McpError) return e.code;
    throw e;
  }
}

describe('live reload', () => {
  const TOKEN = newToken('reload');
  let gw;
  before(async () => {
    gw = await Gateway.start({
      servers: { tools },
      agents: [{ name: 'rl', token: TOKEN, servers: ['tools'], policy: { allowed_tools: ['echo', 'add'], denied_tools: ['add'] } }],
    });
  });
  after(async () => { await gw?.stop(); });

  test('switching to monitor mode takes effect within a second, and back', (ctx) => gw.wrap(async () => {
    const { client } = await gw.connect(TOKEN);
    assert.equal(await echoOutcome(client, 'add'), -32001, 'add is denied in enforce mode');
    const t0 = Date.now();
    gw.writePolicy('rl', { mode: 'monitor', allowed_tools: ['echo', 'add'], denied_tools: ['add'] });
    await waitFor(async () => (await echoOutcome(client, 'add')) === 'ok', 1000, 'monitor mode in force');
    assert.ok(Date.now() - t0 < 1000, `in force after ${Date.now() - t0} ms`);
    gw.writePolicy('rl', { allowed_tools: ['echo', 'add'], denied_tools: ['add'] });
    await waitFor(async () => (await echoOutcome(client, 'add')) === -32001, 1000, 'enforce mode back');
    const audit = gw.auditRecords();
    assert.ok(audit.some((r) => r.tool === 'add' && r.decision === 'ALLOW_MONITOR'), 'monitor decisions audited');
    assert.ok((await gw.metric('aip_policy_reloads_total')) >= 2);
  })(ctx));

  test('connected clients get tools/list_changed and see the new policy\'s tools', (ctx) => gw.wrap(async () => {
    const { client, getStream } = await gw.connect(TOKEN);
    let fired = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => { fired++; });
    await getStream;
    assert.deepEqual(names(await listAllTools(client)), ['echo']);
    gw.writePolicy('rl', { allowed_tools: ['echo', 'add'] });
    await waitFor(() => fired > 0, 2000, 'tools/list_changed');
    assert.deepEqual(names(await listAllTools(client)), ['add', 'echo']);
    gw.writePolicy('rl', { allowed_tools: ['echo', 'add'], denied_tools: ['add'] });
    await waitFor(async () => names(await listAllTools(client)).length === 1, 2000, 'add hidden again');
  })(ctx));

  test('a client calling continuously sees no error while the policy flips', (ctx) => gw.wrap(async () => {
    const { client } = await gw.connect(TOKEN);
    let stop = false, calls = 0;
    const errors = [];
    const loop = (async () => {
      while (!stop) {
        try {
          const r = await client.callTool({ name: 'echo', arguments: { message: `n${calls}` } });
          assert.equal(textOf(r), `n${calls}`);
          calls++;
        } catch (e) { errors.push(String(e)); }
      }
    })();
    for (let i = 0; i < 10; i++) {
      gw.writePolicy('rl', { mode: i % 2 ? 'enforce' : 'monitor', allowed_tools: ['echo', 'add'], denied_tools: ['add'] });
      await sleep(150);
    }
    stop = true;
    await loop;
    assert.deepEqual(errors, [], 'no call failed during the flips');
    assert.ok(calls > 20, `calls kept flowing (${calls})`);
  })(ctx));

  test('a broken policy keeps the last good one in force and is counted', (ctx) => gw.wrap(async () => {
    const { client } = await gw.connect(TOKEN);
    gw.writePolicy('rl', { allowed_tools: ['echo'] });
    await waitFor(async () => (await echoOutcome(client, 'add')) === -32001, 1000, 'echo-only policy');
    const before = await gw.metric('aip_policy_load_errors_total');
    fs.writeFileSync(gw.policyPath('rl') + '.new', 'apiVersion: aip.io/v1alpha1\nkind: AgentPolicy\nspec: {mode: enforce, bogus_key: 1}\n');
    fs.renameSync(gw.policyPath('rl') + '.new', gw.policyPath('rl'));
    await waitFor(async () => (await gw.metric('aip_policy_load_errors_total')) === before + 1, 2000, 'load error counted');
    assert.equal(await echoOutcome(client, 'echo'), 'ok', 'the last good policy still allows echo');
    assert.equal(await echoOutcome(client, 'add'), -32001, 'and still denies add');
    assert.equal((await gw.admin('/readyz')).status, 200, 'a failed reload does not make the gateway unready');
    assert.match(gw.stderr, /policy not reloaded, the version loaded before stays in force: .*bogus_key/);
  })(ctx));

  test('SIGHUP reloads, and an unchanged file is not recompiled', (ctx) => gw.wrap(async () => {
    const { client } = await gw.connect(TOKEN);
    gw.writePolicy('rl', { allowed_tools: ['echo', 'add'] });
    await waitFor(async () => (await echoOutcome(client, 'add')) === 'ok', 1000, 'add allowed');
    const reloads = await gw.metric('aip_policy_reloads_total');
    gw.proc.kill('SIGHUP');
    await waitFor(() => /reloading policies \(SIGHUP\)/.test(gw.stderr), 2000, 'SIGHUP logged');
    await sleep(200);
    assert.equal(await gw.metric('aip_policy_reloads_total'), reloads, 'same bytes: nothing recompiled');
    assert.equal(await echoOutcome(client, 'add'), 'ok');
  })(ctx));
});

describe('Kubernetes-style ..data symlink swap', () => {
  const TOKEN = newToken('k8s');
  let gw;
  before(async () => {
    gw = await Gateway.start({
      servers: { tools },
      agents: [{ name: 'k8s', token: TOKEN, servers: ['tools'], policy: { allowed_tools: ['echo'] } }],
    });
  });
  after(async () => { await gw?.stop(); });

  test('an atomic swap of the ..data link reloads the policy', (ctx) => gw.wrap(async () => {
    const { client } = await gw.connect(TOKEN);
    const dir = path.dirname(gw.policyPath('k8s'));
    const doc = (spec) => toYaml(policyDoc('k8s', spec)).replace(/^\n/, '') + '\n';
    // The kubelet's layout: key -> ..data/key, ..data -> ..<timestamp>/
    fs.mkdirSync(path.join(dir, '..v1'));
    fs.writeFileSync(path.join(dir, '..v1', 'k8s.yaml'), doc({ allowed_tools: ['echo'] }));
    fs.symlinkSync('..v1', path.join(dir, '..data'));
    fs.symlinkSync('..data/k8s.yaml', path.join(dir, 'k8s.yaml.link'));
    fs.renameSync(path.join(dir, 'k8s.yaml.link'), gw.policyPath('k8s'));
    await sleep(300);
    assert.equal(await echoOutcome(client, 'add'), -32001);
    // the update: new folder, new link, renamed over ..data
    fs.mkdirSync(path.join(dir, '..v2'));
    fs.writeFileSync(path.join(dir, '..v2', 'k8s.yaml'), doc({ allowed_tools: ['echo', 'add'] }));
    fs.symlinkSync('..v2', path.join(dir, '..data_tmp'));
    fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    fs.rmSync(path.join(dir, '..v1'), { recursive: true });
    await waitFor(async () => (await echoOutcome(client, 'add')) === 'ok', 1000, 'the new policy');
  })(ctx));
});

describe('a policy that fails to load at start', () => {
  const GOOD = newToken('good'), BAD = newToken('bad');
  let gw;
  before(async () => {
    gw = await Gateway.start({
      ready: false,
      servers: { tools },
      agents: [
        { name: 'good', token: GOOD, servers: ['tools'], policy: { allowed_tools: ['echo'] } },
        { name: 'bad', token: BAD, servers: ['tools'], policy: { allowed_tools: ['echo'], tool_rules: [{ tool: 'echo', allow_args: { message: '(' } }] } },
      ],
    });
  });
  after(async () => { await gw?.stop(); });

  test('blocks only that agent, and /readyz says so until it is fixed', (ctx) => gw.wrap(async () => {
    assert.equal((await gw.admin('/readyz')).status, 503);
    assert.equal((await gw.admin('/healthz')).status, 200);
    const { client } = await gw.connect(GOOD);
    assert.equal(await echoOutcome(client), 'ok', 'the other agent is served');
    const r = await gw.post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }, { token: BAD });
    const body = parseMaybeSse(r);
    assert.equal(body.error?.code, -32001, `blocked: ${JSON.stringify(body)}`);
    assert.equal(body.error.message, 'Forbidden');
    assert.match(gw.stderr, /agent bad: policy failed to load, the agent's requests are refused/);
    assert.ok((await gw.metric('aip_policy_load_errors_total')) >= 1);
    gw.writePolicy('bad', { allowed_tools: ['echo'] });
    await waitFor(async () => (await gw.admin('/readyz')).status === 200, 2000, 'ready once fixed');
    const { client: fixed } = await gw.connect(BAD);
    assert.equal(await echoOutcome(fixed), 'ok');
  })(ctx));
});

describe('graceful drain on SIGTERM', () => {
  const TOKEN = newToken('drain');
  let gw;
  before(async () => {
    gw = await Gateway.start({
      servers: { tools },
      extra: { shutdown_grace: '10s' },
      agents: [{ name: 'dr', token: TOKEN, servers: ['tools'], policy: { allowed_tools: ['echo', 'slow'] } }],
    });
  });
  after(() => { if (gw && gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill('SIGKILL'); });

  test('readyz 503 at once, in-flight calls finish, new work refused, exit 0', (ctx) => gw.wrap(async () => {
    const { client } = await gw.connect(TOKEN);
    const calls = [1200, 1500, 1800].map((ms) =>
      timed(() => client.callTool({ name: 'slow', arguments: { ms } }, undefined, { timeout: 20000 })));
    await sleep(300);
    const t0 = Date.now();
    gw.proc.kill('SIGTERM');
    await waitFor(async () => (await gw.admin('/readyz').catch(() => ({ status: 0 }))).status === 503, 500, 'readyz 503');
    // new work is refused, not started: a new connection finds the listener closed, and a
    // request on a connection that is still open gets -32000
    const late = await client.callTool({ name: 'echo', arguments: { message: 'late' } }).then(() => 'ok', (e) => e);
    assert.ok(late !== 'ok' && (late.code === -32000 || /fetch failed/.test(String(late))), `refused: ${late}`);
    const r = await fetch(gw.url, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body: '{}' }).then(() => 'ok', (e) => e);
    assert.ok(r !== 'ok', 'no new connection is accepted');
    for (const c of calls) {
      const r = await c;
      assert.ok(!r.error, `in-flight call finished: ${r.error}`);
    }
    const exit = await gw.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    const took = Date.now() - t0;
    assert.ok(took < 4000, `exited once the calls were done (${took} ms)`);
    assert.match(gw.stderr, /drained: no request in flight/);
    fs.rmSync(gw.dir, { recursive: true, force: true });
  })(ctx));
});

// Key rotation without a restart: trusted_keys is re-read from the config on reload, and each
// policy load verifies against the keys in force; a policy signed with a key not (yet) trusted
// is refused and the last good one stays.
describe('signed policies across reloads (key rotation)', () => {
  const TOKEN = newToken('rot');
  let gw, keys;
  const sh = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const signedPolicy = (key, spec) => {
    const plain = path.join(keys, 'plain.yaml');
    fs.writeFileSync(plain, toYaml(policyDoc('rot', spec)).replace(/^\n/, '') + '\n');
    return sh(AIP_BIN, ['sign-policy', '--key', path.join(keys, key), '--policy', plain]);
  };
  before(async () => {
    keys = fs.mkdtempSync('/tmp/aip-rot-');
    for (const v of ['v1', 'v2']) {
      sh('openssl', ['genpkey', '-algorithm', 'Ed25519', '-out', path.join(keys, `${v}.pem`)]);
      sh('openssl', ['pkey', '-in', path.join(keys, `${v}.pem`), '-pubout', '-out', path.join(keys, `${v}.pub`)]);
    }
    gw = new Gateway({
      servers: { tools },
      extra: { trusted_keys: [path.join(keys, 'v1.pub')] },
      agents: [{ name: 'rot', token: TOKEN, servers: ['tools'], policy: { allowed_tools: ['echo'] } }],
    });
    const write = gw.writeConfig.bind(gw);
    gw.writeConfig = () => { write(); fs.writeFileSync(gw.policyPath('rot'), signedPolicy('v1.pem', { allowed_tools: ['echo'] })); };
    await gw._start();
  });
  after(async () => { await gw?.stop(); fs.rmSync(keys, { recursive: true, force: true }); });

  test('v2-signed policy refused until v2 is trusted; then it comes into force', (ctx) => gw.wrap(async () => {
    const { client } = await gw.connect(TOKEN);
    assert.equal(await echoOutcome(client, 'add'), -32001);
    const errors = await gw.metric('aip_policy_load_errors_total');
    replaceFile(gw.policyPath('rot'), signedPolicy('v2.pem', { allowed_tools: ['echo', 'add'] }));
    await waitFor(async () => (await gw.metric('aip_policy_load_errors_total')) === errors + 1, 2000, 'refused');
    assert.match(gw.stderr, /policy not reloaded, the version loaded before stays in force: .*does not verify/);
    assert.equal(await echoOutcome(client, 'add'), -32001, 'the v1-signed policy stays');
    // step 3 of the guide's rotation: trust both keys (a config edit, picked up by the watch)
    const cfg = fs.readFileSync(gw.configPath, 'utf8');
    replaceFile(gw.configPath, cfg.replace(/trusted_keys:\n(\s+)- (.*v1\.pub.*)\n/, (m, ind, v1) =>
      `trusted_keys:\n${ind}- ${v1}\n${ind}- "${path.join(keys, 'v2.pub')}"\n`));
    assert.match(fs.readFileSync(gw.configPath, 'utf8'), /v2\.pub/);
    await waitFor(async () => (await echoOutcome(client, 'add')) === 'ok', 2000, 'the v2-signed policy');
  })(ctx));
});

describe('agent token rotation by reload', () => {
  const OLD = newToken('old'), NEW = newToken('new');
  let gw;
  before(async () => {
    gw = await Gateway.start({
      servers: { tools },
      agents: [{ name: 'rot', token: OLD, servers: ['tools'], policy: { allowed_tools: ['echo'] } }],
    });
  });
  after(async () => { await gw?.stop(); });

  test('a new token_sha256 in the config: the old token gets 401, the new one works', (ctx) => gw.wrap(async () => {
    const { client } = await gw.connect(OLD);
    assert.equal(await echoOutcome(client), 'ok');
    const cfg = fs.readFileSync(gw.configPath, 'utf8');
    assert.ok(cfg.includes(sha256hex(OLD)));
    replaceFile(gw.configPath, cfg.replace(sha256hex(OLD), sha256hex(NEW)));
    await waitFor(() => /agent rot: bearer token rotated/.test(gw.stderr), 2000, 'rotation logged');
    const old = await gw.post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { token: OLD });
    assert.equal(old.status, 401, 'the old token is refused');
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'x' } }), 'even in its open session');
    const { client: fresh } = await gw.connect(NEW);
    assert.equal(await echoOutcome(fresh), 'ok');
  })(ctx));
});

describe('operator changes by reload', () => {
  const A = newToken('opa'), B = newToken('opb'), C = newToken('opc');
  let gw;
  before(async () => {
    gw = await Gateway.start({
      servers: { tools },
      agents: [{ name: 'ops', token: newToken('ops'), servers: ['tools'], policy: { allowed_tools: ['echo'] } }],
      extra: { operators: [{ name: 'alice', token_sha256: sha256hex(A) }] },
    });
  });
  after(async () => { await gw?.stop(); });

  /** The config text with its operators list replaced by `ops`. */
  function withOperators(text, ops) {
    const lines = text.split('\n');
    const i = lines.findIndex((l) => l.startsWith('operators:'));
    let j = i + 1;
    while (j < lines.length && /^[ -]/.test(lines[j])) j++;
    lines.splice(i, j - i, ...toYaml({ operators: ops }).replace(/^\n/, '').split('\n'));
    return lines.join('\n');
  }
  const approvals = (token) => fetch(`${gw.adminUrl}/v1/approvals`, {
    headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000),
  });

  test('rotated and added operators work at once; a removed token gets 401 and its event stream ends', (ctx) => gw.wrap(async () => {
    assert.equal((await approvals(A)).status, 200);
    assert.equal((await approvals(C)).status, 401);
    const events = await fetch(`${gw.adminUrl}/v1/approvals/events`, { headers: { Authorization: `Bearer ${A}` } });
    assert.equal(events.status, 200);
    const reader = events.body.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /^: approvals/);
    replaceFile(gw.configPath, withOperators(fs.readFileSync(gw.configPath, 'utf8'), [
      { name: 'alice', token_sha256: sha256hex(B) }, { name: 'bob', token_sha256: sha256hex(C) }]));
    await waitFor(() => /operators reloaded from .*: 2 in force/.test(gw.stderr), 2000, 'operators reloaded');
    assert.equal((await approvals(A)).status, 401, "alice's old token is refused");
    assert.equal((await approvals(B)).status, 200, "alice's new token works");
    assert.equal((await approvals(C)).status, 200, 'bob, added, works');
    const end = await Promise.race([reader.read(), sleep(2000, 'open')]);
    assert.notEqual(end, 'open', 'the stream opened with the removed token ended');
    assert.ok(end.done, 'ended cleanly, nothing more was sent');
    // an unchanged operators list (the agents' section changed) is not reloaded again
    const count = (re) => (gw.stderr.match(re) || []).length;
    const reloads = count(/gateway\.yaml changed: reloading it/g), before = count(/operators reloaded/g);
    replaceFile(gw.configPath, fs.readFileSync(gw.configPath, 'utf8') + '\n');
    await waitFor(() => count(/gateway\.yaml changed: reloading it/g) > reloads, 2000, 'the second reload');
    await sleep(300);
    assert.equal(count(/operators reloaded/g), before);
  })(ctx));
});
