// Policy file protection (docs/operations.md): `aip serve` and the stdio wrapper refuse to start
// when the config or a policy is writable by group or others, or belongs to another non-root
// user; --allow-writable-config overrides (development); `aip check` only warns. A Kubernetes
// Secret-style mount (symlinks into ..data) is judged by the file it points to.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import {
  AIP_BIN, TEST_SERVER, makeTempDir, freePort, toYaml, policyDoc, testServer, sha256hex,
  writeConfigFile, sleep,
} from './lib/harness.mjs';

const TOKEN = 'aip_e2e_perms_token';
const keep = () => process.env.AIP_E2E_KEEP;

/** A gateway folder: gateway.yaml + policies/agent.yaml, both 0644. */
async function layout() {
  const dir = makeTempDir('aip-perms-');
  const port = await freePort();
  let adminPort = await freePort();
  while (adminPort === port) adminPort = await freePort();
  fs.mkdirSync(path.join(dir, 'policies'));
  const policy = path.join(dir, 'policies/agent.yaml');
  writeConfigFile(policy, toYaml(policyDoc('perms', { allowed_tools: ['echo'] })).replace(/^\n/, '') + '\n');
  const config = path.join(dir, 'gateway.yaml');
  writeConfigFile(config, toYaml({
    listen: `127.0.0.1:${port}`,
    admin: { listen: `127.0.0.1:${adminPort}` },
    store: { path: 'aip.db' },
    audit: { path: 'audit.jsonl' },
    servers: { tools: testServer() },
    agents: [{ name: 'perms', token_sha256: sha256hex(TOKEN), policy: 'policies/agent.yaml', servers: ['tools'] }],
  }).replace(/^\n/, '') + '\n');
  return { dir, config, policy, adminPort };
}

/** Runs `aip serve`; resolves {code, stderr, ready} once it exits or (ready) answers /readyz 200,
 *  in which case it is stopped with SIGTERM and must exit 0. */
async function serve(l, extra = []) {
  const proc = spawn(AIP_BIN, ['serve', '--config', l.config, ...extra], { cwd: l.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let done = null;
  exited.then((e) => { done = e; });
  const deadline = Date.now() + 10000;
  while (!done && Date.now() < deadline) {
    try {
      const r = await fetch(`http://127.0.0.1:${l.adminPort}/readyz`, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      if (r.status === 200) {
        proc.kill('SIGTERM');
        const e = await exited;
        assert.equal(e.code, 0, `exit after SIGTERM: ${JSON.stringify(e)}\n${stderr}`);
        return { ready: true, code: 0, stderr };
      }
    } catch { /* not listening (yet) */ }
    await sleep(50);
  }
  if (!done) {
    proc.kill('SIGKILL');
    assert.fail(`aip serve neither ready nor exited in 10 s\n${stderr}`);
  }
  return { ready: false, code: done.code, stderr };
}

const cleanup = (l) => { if (!keep()) fs.rmSync(l.dir, { recursive: true, force: true }); };

describe('aip serve', () => {
  test('starts with 0644 files', async () => {
    const l = await layout();
    const r = await serve(l);
    assert.ok(r.ready, r.stderr);
    cleanup(l);
  });

  test('a group-writable policy: exit 1 with the fix; --allow-writable-config starts with a warning', async () => {
    const l = await layout();
    fs.chmodSync(l.policy, 0o664);
    const r = await serve(l);
    assert.equal(r.ready, false);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`${l.policy}: permissions 0664 let group or others write it; run chmod go-w ${l.policy} ` +
      '(or pass --allow-writable-config for development)'), r.stderr);
    const ok = await serve(l, ['--allow-writable-config']);
    assert.ok(ok.ready, ok.stderr);
    assert.match(ok.stderr, /warn ignored because of --allow-writable-config: .*agent\.yaml: permissions 0664/);
    cleanup(l);
  });

  test('a world-writable config: exit 1', async () => {
    const l = await layout();
    fs.chmodSync(l.config, 0o646);
    const r = await serve(l);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`${l.config}: permissions 0646 let group or others write it`), r.stderr);
    cleanup(l);
  });

  test('a policy owned by another non-root user: exit 1', { skip: process.getuid() !== 0 && 'needs root to chown' }, async () => {
    const l = await layout();
    fs.chownSync(l.policy, 12345, 12345);
    const r = await serve(l);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /agent\.yaml: owned by uid 12345, neither root nor the user aip runs as/);
    cleanup(l);
  });

  test('a Kubernetes Secret-style mount (symlinks into ..data, files 0400) starts; a writable target does not', async () => {
    const l = await layout();
    // policies/agent.yaml -> ..data/agent.yaml, ..data -> ..2026_01_01_00_00_00.1 (as the kubelet lays it out)
    const ts = path.join(l.dir, 'policies/..2026_01_01_00_00_00.1');
    fs.mkdirSync(ts);
    fs.renameSync(l.policy, path.join(ts, 'agent.yaml'));
    fs.chmodSync(path.join(ts, 'agent.yaml'), 0o400);
    fs.symlinkSync('..2026_01_01_00_00_00.1', path.join(l.dir, 'policies/..data'));
    fs.symlinkSync('..data/agent.yaml', l.policy);
    const r = await serve(l);
    assert.ok(r.ready, r.stderr);
    fs.chmodSync(path.join(ts, 'agent.yaml'), 0o660);
    const bad = await serve(l);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /agent\.yaml: permissions 0660 let group or others write it/);
    cleanup(l);
  });
});

describe('aip check warns, does not fail', () => {
  test('--config and --policy with a group-writable policy: exit 0 and a warning', async () => {
    const l = await layout();
    fs.chmodSync(l.policy, 0o664);
    for (const args of [['--config', l.config], ['--policy', l.policy]]) {
      const r = spawnSync(AIP_BIN, ['check', ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /: ok/);
      assert.ok(r.stderr.includes(`warning: ${l.policy}: permissions 0664 let group or others write it`), r.stderr);
    }
    fs.chmodSync(l.policy, 0o644);
    const clean = spawnSync(AIP_BIN, ['check', '--config', l.config], { encoding: 'utf8' });
    assert.equal(clean.status, 0);
    assert.equal(clean.stderr, '');
    cleanup(l);
  });
});

describe('stdio wrapper (aip --target)', () => {
  const init = JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'perms', version: '1' } },
  }) + '\n';
  const run = (l, extra = []) => spawnSync(AIP_BIN,
    ['--target', TEST_SERVER, '--policy', l.policy, '--audit', path.join(l.dir, 'audit.jsonl'), ...extra],
    { input: init, encoding: 'utf8', timeout: 15000, cwd: l.dir });

  test('a group-writable policy: exit 1 with the fix, the server is not started; the flag overrides', async () => {
    const l = await layout();
    fs.chmodSync(l.policy, 0o664);
    const r = run(l);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.includes(`aip: ${l.policy}: permissions 0664 let group or others write it; run chmod go-w ${l.policy} ` +
      '(or pass --allow-writable-config for development)'), r.stderr);
    const ok = run(l, ['--allow-writable-config']);
    assert.match(ok.stdout, /"result"/, ok.stderr);
    assert.match(ok.stderr, /ignored because of --allow-writable-config: .*permissions 0664/);
    fs.chmodSync(l.policy, 0o400);
    const clean = run(l);
    assert.match(clean.stdout, /"result"/, clean.stderr);
    assert.doesNotMatch(clean.stderr, /allow-writable-config/);
    cleanup(l);
  });
});
