// `aip check` compiles everything `aip serve` compiles (docs/operations.md): the policy, its
// allow_args regexes and its DLP databases (same Hyperscan/PCRE2 validation, same
// `file:line: pattern "name": message`), and checks that every stdio server's program resolves
// (relative to the config file when it has a '/', PATH otherwise) to an executable regular file.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { AIP_BIN, makeTempDir, toYaml, policyDoc, testServer, sha256hex, writeConfigFile } from './lib/harness.mjs';

const TOKEN = 'aip_e2e_check_token';
const keep = () => process.env.AIP_E2E_KEEP;

/** A folder with policies/agent.yaml (spec) and gateway.yaml (servers). */
function layout(spec, servers = { tools: testServer() }) {
  const dir = makeTempDir('aip-check-');
  fs.mkdirSync(path.join(dir, 'policies'));
  const policy = path.join(dir, 'policies/agent.yaml');
  writeConfigFile(policy, toYaml(policyDoc('check', spec)).replace(/^\n/, '') + '\n');
  const config = path.join(dir, 'gateway.yaml');
  writeConfigFile(config, toYaml({
    listen: '127.0.0.1:1',
    store: { path: 'aip.db' },
    audit: { path: 'audit.jsonl' },
    servers,
    agents: [{ name: 'check', token_sha256: sha256hex(TOKEN), policy: 'policies/agent.yaml', servers: Object.keys(servers) }],
  }).replace(/^\n/, '') + '\n');
  return { dir, config, policy };
}

// cwd is elsewhere on purpose: relative paths are the config file's, not the caller's
const check = (args, env = process.env) => spawnSync(AIP_BIN, ['check', ...args], { encoding: 'utf8', cwd: '/', env });
const cleanup = (l) => { if (!keep()) fs.rmSync(l.dir, { recursive: true, force: true }); };

const badDlp = (regex) => ({ allowed_tools: ['echo'], dlp: { patterns: [{ name: 'bad', regex }] } });

describe('aip check compiles DLP patterns as serve does', () => {
  for (const [what, regex, message] of [
    ['an unclosed group', 'secret-(abc', /missing closing parenthesis/],
    ['a bad repetition', 'a{2,1}', /numbers out of order/],
    ['an unknown escape', 'x\\k', /\\k/],
  ]) {
    test(`${what}: --policy and --config fail with file:line: pattern "name": message`, () => {
      const l = layout(badDlp(regex));
      for (const args of [['--policy', l.policy], ['--config', l.config]]) {
        const r = check(args);
        assert.equal(r.status, 1, `${args}: ${r.stdout}${r.stderr}`);
        assert.ok(r.stderr.startsWith(`${l.policy}:`), r.stderr);
        assert.match(r.stderr, /^\S+agent\.yaml:\d+: pattern "bad": /);
        assert.match(r.stderr, message);
        assert.doesNotMatch(r.stdout, /: ok/);
      }
      cleanup(l);
    });
  }

  test('a good DLP pattern and the default rule pack pass', () => {
    const l = layout({ allowed_tools: ['echo'], dlp: { rulepack: 'default', patterns: [{ name: 'k', regex: 'key-[0-9]{8}' }] } });
    for (const args of [['--policy', l.policy], ['--config', l.config]]) {
      const r = check(args);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /: ok/);
    }
    cleanup(l);
  });

  test('a bad allow_args regex fails both', () => {
    const l = layout({ allowed_tools: ['echo'], tool_rules: [{ tool: 'echo', action: 'allow', allow_args: { text: '(' } }] });
    for (const args of [['--policy', l.policy], ['--config', l.config]]) {
      const r = check(args);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /agent\.yaml:\d+/);
    }
    cleanup(l);
  });
});

describe('aip check --config: every stdio server program exists and is executable', () => {
  const spec = { allowed_tools: ['echo'] };

  test('a relative program that is not there: the server is named', () => {
    const l = layout(spec, { tools: { command: ['bin/no-such-server', '--stdio'] } });
    const r = check(['--config', l.config]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /gateway\.yaml:\d+:\d+: server "tools": program "bin\/no-such-server" \(.*\/bin\/no-such-server\): No such file or directory/);
    cleanup(l);
  });

  test('a program that is not executable, and one that is a directory', () => {
    const l = layout(spec, { a: { command: ['./srv.sh'] }, b: { command: ['./bin'] } });
    fs.writeFileSync(path.join(l.dir, 'srv.sh'), '#!/bin/sh\n', { mode: 0o644 });
    fs.mkdirSync(path.join(l.dir, 'bin'));
    let r = check(['--config', l.config]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /server "a": program "\.\/srv\.sh" \(.*\): not executable/);
    fs.chmodSync(path.join(l.dir, 'srv.sh'), 0o755);
    r = check(['--config', l.config]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /server "b": program "\.\/bin" \(.*\): not a regular file/);
    cleanup(l);
  });

  test('a bare name not in PATH; the server env\'s PATH is the one searched', () => {
    const l = layout(spec, { tools: { command: ['aip-no-such-program-xyz'] } });
    let r = check(['--config', l.config]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /server "tools": program "aip-no-such-program-xyz" not found in PATH/);
    cleanup(l);
    // found only through the server's own env PATH
    const m = layout(spec, { tools: { command: ['my-mcp-server'], env: { PATH: '/nonexistent' } } });
    fs.mkdirSync(path.join(m.dir, 'bin'));
    fs.writeFileSync(path.join(m.dir, 'bin/my-mcp-server'), '#!/bin/sh\n', { mode: 0o755 });
    r = check(['--config', m.config]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /server "tools": program "my-mcp-server" not found in PATH \(\/nonexistent\)/);
    cleanup(m);
  });

  test('relative to the config file, a bare name in PATH, an absolute path: ok', () => {
    const l = layout(spec, { a: { command: ['bin/srv'] }, b: { command: ['sh', '-c', 'true'] }, c: testServer() });
    fs.mkdirSync(path.join(l.dir, 'bin'));
    fs.writeFileSync(path.join(l.dir, 'bin/srv'), '#!/bin/sh\n', { mode: 0o755 });
    const r = check(['--config', l.config]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /: ok/);
    cleanup(l);
  });
});
