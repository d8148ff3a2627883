// Signed policies (docs/signing.md): keys made by the real `openssl genpkey -algorithm Ed25519`
// and `openssl pkey -pubout`; aip sign-policy / verify-policy; what a change does to a
// signature; key rotation; interoperability with `openssl pkeyutl`; the gateway with
// trusted_keys serving a signed, a tampered and an unsigned agent; the stdio wrapper with
// --trusted-keys.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { McpError } from '@modelcontextprotocol/sdk/types.js';

import {
  AIP_BIN, Gateway, childrenOf, makeTempDir, names, newToken, parseMaybeSse, testServer, textOf, waitFor,
} from './lib/harness.mjs';
import { sdkWrapper, wrapperArgs, TARGET_TEST_SERVER } from './lib/wrapper.mjs';

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) throw r.error;
  return r;
};
const aip = (...args) => run(AIP_BIN, args);
const openssl = (...args) => {
  const r = run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r;
};

let dir;
const p = (f) => path.join(dir, f);
const write = (f, text) => { fs.writeFileSync(p(f), text); return p(f); };
const read = (f) => fs.readFileSync(p(f), 'utf8');

/** sign-policy into `out`; asserts success. */
function sign(key, policy, out) {
  const r = aip('sign-policy', '--key', p(key), '--policy', p(policy));
  assert.equal(r.status, 0, `sign-policy: ${r.stderr}`);
  return write(out, r.stdout);
}
const verify = (policy, keys) => aip('verify-policy', '--policy', p(policy), '--trusted-keys', keys.map(p).join(','));

const POLICY = `# Policy of the deploy bot (this comment must survive signing)
apiVersion: aip.io/v1alpha1
kind: AgentPolicy
metadata:
  name: deploy-bot
  version: 1.2.0   # semver, a string
spec:
  mode: enforce
  allowed_tools: [echo, add]
  tool_rules:
    - tool: add
      allow_args:
        a: "^[0-9]+$"
  strict_args_default: false
`;

before(() => {
  dir = makeTempDir('aip-sign-');
  for (const k of ['v1', 'v2']) {
    openssl('genpkey', '-algorithm', 'Ed25519', '-out', p(`${k}.pem`));
    openssl('pkey', '-in', p(`${k}.pem`), '-pubout', '-out', p(`${k}.pub`));
  }
  write('agent.yaml', POLICY);
});

after(() => { if (dir && !process.env.AIP_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true }); });

describe('aip sign-policy and verify-policy', () => {
  test('sign -> verify: ok; the output is the input plus one metadata.signature line', () => {
    sign('v1.pem', 'agent.yaml', 'signed.yaml');
    const out = read('signed.yaml');
    const lines = out.split('\n');
    const i = lines.findIndex((l) => l.startsWith('  signature: '));
    assert.match(lines[i], /^ {2}signature: "ed25519:[A-Za-z0-9+/]{86}=="$/);
    assert.equal(lines[i - 1], '  version: 1.2.0   # semver, a string');
    assert.equal([...lines.slice(0, i), ...lines.slice(i + 1)].join('\n'), POLICY);
    const r = verify('signed.yaml', ['v1.pub']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /signed\.yaml: signature ok \(key .*v1\.pub\)/);
    // the signed policy is still a valid policy
    assert.equal(aip('check', '--policy', p('signed.yaml')).status, 0);
  });

  test('one byte changed in a value: rejected', () => {
    write('t1.yaml', read('signed.yaml').replace('"^[0-9]+$"', '"^[0-9]*$"'));
    const r = verify('t1.yaml', ['v1.pub']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /t1\.yaml: the signature does not verify with the trusted key \(.*v1\.pub\): the policy was changed after it was signed/);
  });

  test('a list reordered (allowed_tools): rejected, order is meaning', () => {
    write('t2.yaml', read('signed.yaml').replace('[echo, add]', '[add, echo]'));
    assert.equal(verify('t2.yaml', ['v1.pub']).status, 1);
  });

  test('mapping keys reordered, quoting and comments changed: still valid (canonical form)', () => {
    const moved = read('signed.yaml')
      .replace('  mode: enforce\n', '')
      .replace('  strict_args_default: false\n', '  strict_args_default: false\n  mode: "enforce"  # moved\n')
      .replace('# Policy of the deploy bot', '# edited comment');
    write('t3.yaml', moved);
    const r = verify('t3.yaml', ['v1.pub']);
    assert.equal(r.status, 0, r.stderr);
  });

  test('a value that only looks the same to YAML but reads differently: rejected', () => {
    // 1.2.0 -> "1.2.0" is the same string; a changed version is a change
    write('t4.yaml', read('signed.yaml').replace('version: 1.2.0', 'version: "1.2.0"'));
    assert.equal(verify('t4.yaml', ['v1.pub']).status, 0);
    write('t5.yaml', read('signed.yaml').replace('version: 1.2.0', 'version: 1.2.1'));
    assert.equal(verify('t5.yaml', ['v1.pub']).status, 1);
  });

  test('signature removed: rejected as unsigned', () => {
    write('t6.yaml', read('signed.yaml').replace(/^ {2}signature: .*\n/m, ''));
    const r = verify('t6.yaml', ['v1.pub']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /t6\.yaml: the policy is not signed/);
  });

  test('rotation: signed with v2 -> accepted with v1.pub,v2.pub, rejected with v1.pub alone', () => {
    sign('v2.pem', 'signed.yaml', 'signed-v2.yaml'); // re-signing replaces the line
    assert.equal(read('signed-v2.yaml').split('\n').length, read('signed.yaml').split('\n').length);
    const both = verify('signed-v2.yaml', ['v1.pub', 'v2.pub']);
    assert.equal(both.status, 0, both.stderr);
    assert.match(both.stdout, /v2\.pub/);
    assert.equal(verify('signed-v2.yaml', ['v1.pub']).status, 1);
    assert.equal(verify('signed-v2.yaml', ['v2.pub']).status, 0);
  });

  test('plain Ed25519: openssl verifies our signature, and we accept one made by openssl', () => {
    const c = aip('sign-policy', '--canonical', '--policy', p('signed.yaml'));
    assert.equal(c.status, 0, c.stderr);
    assert.ok(c.stdout.startsWith('{"apiVersion":"aip.io/v1alpha1","kind":"AgentPolicy","metadata":{"name":"deploy-bot","version":"1.2.0"},"spec":{"allowed_tools":["echo","add"]'), c.stdout);
    write('canon.json', c.stdout);
    const b64 = /signature: "ed25519:([^"]+)"/.exec(read('signed.yaml'))[1];
    fs.writeFileSync(p('ours.sig'), Buffer.from(b64, 'base64'));
    openssl('pkeyutl', '-verify', '-rawin', '-pubin', '-inkey', p('v1.pub'), '-in', p('canon.json'), '-sigfile', p('ours.sig'));
    openssl('pkeyutl', '-sign', '-rawin', '-inkey', p('v2.pem'), '-in', p('canon.json'), '-out', p('theirs.sig'));
    const theirs = fs.readFileSync(p('theirs.sig')).toString('base64');
    write('by-openssl.yaml', read('signed.yaml').replace(b64, theirs));
    assert.equal(verify('by-openssl.yaml', ['v2.pub']).status, 0);
  });

  test('wrong key files and usage errors', () => {
    let r = verify('signed.yaml', ['v1.pem']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /v1\.pem holds a private key; trusted keys are public keys/);
    r = aip('sign-policy', '--key', p('v1.pub'), '--policy', p('agent.yaml'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /v1\.pub holds a public key; signing needs the private key/);
    assert.equal(r.stdout, '');
    r = verify('signed.yaml', ['missing.pub']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /missing\.pub: cannot open/);
    assert.equal(aip('sign-policy', '--policy', p('agent.yaml')).status, 2);
    assert.equal(aip('verify-policy', '--policy', p('agent.yaml')).status, 2);
    assert.equal(aip('sign-policy', '--help').status, 0);
    assert.match(aip('verify-policy', '--help').stdout, /usage: aip verify-policy/);
    // a scalar YAML readers disagree on cannot be signed
    write('amb.yaml', POLICY.replace('version: 1.2.0', 'version: 1.0'));
    r = aip('sign-policy', '--key', p('v1.pem'), '--policy', p('amb.yaml'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /amb\.yaml:6:12: "1\.0" reads as a number but has no single JSON form: write 1, or quote it/);
  });
});

describe('gateway with trusted_keys', () => {
  const tokens = { good: newToken('good'), bad: newToken('bad'), none: newToken('none') };
  let gw;

  before(async () => {
    // Policies are written by the harness, then signed (good with v2, bad signed and then
    // tampered, none left unsigned) before `aip serve` starts.
    class SignedGateway extends Gateway {
      writeConfig() {
        super.writeConfig();
        for (const name of ['good', 'bad']) {
          const f = path.join(this.dir, 'policies', `${name}.yaml`);
          const r = aip('sign-policy', '--key', p('v2.pem'), '--policy', f);
          assert.equal(r.status, 0, r.stderr);
          fs.writeFileSync(f, name === 'bad' ? r.stdout.replace('- "echo"', '- "env"') : r.stdout);
        }
      }
    }
    gw = new SignedGateway({
      servers: { tools: testServer() },
      agents: ['good', 'bad', 'none'].map((name) => ({
        name, token: tokens[name], servers: ['tools'], policy: { allowed_tools: ['echo'] },
      })),
      extra: { trusted_keys: [p('v1.pub'), p('v2.pub')] },
      ready: false, // two agents are blocked: /readyz says 503 (checked below)
    });
    await gw._start();
  });

  after(async () => { if (gw) await gw.stop(); });

  test('the signed agent works', () => gw.wrap(async () => {
    const { client } = await gw.connect(tokens.good);
    assert.deepEqual(names((await client.listTools()).tools), ['echo']);
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: 'signed' } })), 'signed');
  })());

  test('the tampered and the unsigned agent get -32010 Policy signature invalid', () => gw.wrap(async () => {
    for (const name of ['bad', 'none']) {
      await assert.rejects(gw.connect(tokens[name]), (e) => {
        assert.ok(e instanceof McpError, `McpError expected, got ${e}`);
        assert.equal(e.code, -32010);
        assert.match(e.message, /Policy signature invalid/);
        assert.deepEqual(e.data, { policy: name, reason: 'Policy signature verification failed' });
        return true;
      });
      // raw: the refused initialize leaves no session
      const r = await gw.post({ jsonrpc: '2.0', id: 7, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }, { token: tokens[name] });
      assert.equal(r.headers.get('mcp-session-id'), null);
      assert.deepEqual(parseMaybeSse(r), {
        jsonrpc: '2.0', id: 7,
        error: { code: -32010, message: 'Policy signature invalid', data: { policy: name, reason: 'Policy signature verification failed' } },
      });
    }
    // the good agent is unaffected, the problem was logged at start, counted and audited
    const { client } = await gw.connect(tokens.good);
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: 'still fine' } })), 'still fine');
    assert.match(gw.stderr, /agent bad: policy signature invalid, refusing all its calls \(-32010\): .*bad\.yaml: the signature does not verify with the trusted keys/);
    assert.match(gw.stderr, /agent none: policy signature invalid, .*none\.yaml: the policy is not signed/);
    assert.doesNotMatch(gw.stderr, /agent good: policy signature invalid/);
    assert.equal(await gw.metric('aip_policy_load_errors_total'), 2);
    assert.equal((await gw.admin('/readyz')).status, 503, 'blocked agents make the gateway unready');
    // only the good agent's server was ever started (one stdio upstream per agent)
    const kids = childrenOf(gw.pid).filter((c) => c.state !== 'Z');
    assert.equal(kids.length, 1, JSON.stringify(kids));
    const recs = await waitFor(() => {
      const r = gw.auditRecords().filter((x) => x.error_code === -32010);
      return r.length >= 4 ? r : null;
    }, 3000, 'four -32010 audit records');
    assert.deepEqual([...new Set(recs.map((x) => x.agent))].sort(), ['bad', 'none']);
    assert.ok(recs.every((x) => x.decision === 'BLOCK' && x.method === 'initialize'));
  })());

  test('aip check --config names every agent whose policy does not verify (exit 1)', () => {
    const r = aip('check', '--config', gw.configPath);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /agent bad: policy signature invalid/);
    assert.match(r.stderr, /agent none: policy signature invalid/);
    assert.doesNotMatch(r.stderr, /agent good/);
  });

  test('a bad trusted_keys entry is a config error', () => {
    const cfg = fs.readFileSync(gw.configPath, 'utf8').replace(p('v1.pub'), p('v1.pem'));
    const f = path.join(gw.dir, 'bad-keys.yaml');
    fs.writeFileSync(f, cfg);
    const r = aip('check', '--config', f);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad-keys\.yaml:\d+:\d+: trusted_keys: .*v1\.pem holds a private key/);
  });
});

describe('stdio wrapper with --trusted-keys', () => {
  const SPEC = `apiVersion: aip.io/v1alpha1
kind: AgentPolicy
metadata:
  name: wrapped-agent
spec:
  allowed_tools: [echo]
`;

  test('a signed policy: the wrapper runs and enforces it', async () => {
    write('w.yaml', SPEC);
    sign('v2.pem', 'w.yaml', 'w-signed.yaml');
    // sdkWrapper writes its own policy from a spec; point --policy at ours instead
    const w = await sdkWrapper({ spec: {}, extra: ['--policy', p('w-signed.yaml'), '--trusted-keys', `${p('v1.pub')},${p('v2.pub')}`] });
    try {
      assert.deepEqual(names((await w.client.listTools()).tools), ['echo']);
      assert.equal(textOf(await w.client.callTool({ name: 'echo', arguments: { message: 'ok' } })), 'ok');
      assert.match(w.stderr, /w-signed\.yaml: signature verified/);
    } finally {
      await w.close();
    }
  });

  for (const [label, file, reason] of [
    ['tampered', 'w-tampered.yaml', /the signature does not verify/],
    ['unsigned', 'w.yaml', /the policy is not signed/],
    // the bytes are verified before they are parsed, as in aip serve (core/policy_source.c):
    // a signed file made invalid is a signature failure, never a YAML error of untrusted bytes
    ['tampered and unparsable', 'w-broken.yaml', /w-broken\.yaml:\d+:\d+: /],
  ]) {
    test(`a ${label} policy: the wrapper refuses to start (exit 1), the server is never run`, () => {
      if (label === 'tampered') write(file, read('w-signed.yaml').replace('[echo]', '[echo, env]'));
      if (label === 'tampered and unparsable') write(file, read('w-signed.yaml').replace('[echo]', '[echo, {'));
      const r = run(AIP_BIN, [...wrapperArgs({ target: TARGET_TEST_SERVER, policy: p(file), audit: p('w-audit.jsonl') }),
        // no input: the wrapper exits before it reads stdin, and writing to it then raced
        // with the exit (spawnSync EPIPE, a flaky failure)
        '--trusted-keys', p('v2.pub')], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /aip: policy signature invalid: /);
      assert.match(r.stderr, reason);
      assert.doesNotMatch(r.stderr, /started/);
    });
  }

  test('without --trusted-keys the signature is not checked (as in AIP, no keys, no check)', () => {
    const r = run(AIP_BIN, wrapperArgs({ target: TARGET_TEST_SERVER, policy: p('w-tampered.yaml'), audit: p('w-audit.jsonl') }),
      { input: '{"jsonrpc":"2.0","id":1,"method":"ping"}\n', timeout: 10000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.trim()).result !== undefined, true);
  });
});
