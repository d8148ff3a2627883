// Helpers for the stdio wrapper tests (`aip --target "CMD ARGS" --policy P --audit A`):
// policy files, an SDK client over StdioClientTransport, and a raw line-level driver.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { AIP_BIN, TEST_SERVER, EVERYTHING_JS, auditRecords, makeTempDir, policyDoc, toYaml, sleep, waitFor, writeConfigFile } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const MIRROR_JS = path.join(here, 'mirror-server.mjs');
export { AIP_BIN, TEST_SERVER, EVERYTHING_JS, auditRecords };

/** --target for the C test server, the mirror server and server-everything (no spaces in paths). */
export const TARGET_TEST_SERVER = TEST_SERVER;
export const TARGET_MIRROR = `${process.execPath} ${MIRROR_JS}`;
export const TARGET_EVERYTHING = `${process.execPath} ${EVERYTHING_JS} stdio`;
for (const p of [TEST_SERVER, MIRROR_JS, EVERYTHING_JS, process.execPath]) {
  if (/\s/.test(p)) throw new Error(`--target splits on white space; path has some: ${p}`);
}

/** A temp dir with agent.yaml (from a spec object) and the audit path; `name` = metadata.name. */
export function wrapperDir(spec, name = 'wrapped-agent') {
  const dir = makeTempDir('aip-wrap-');
  const policy = path.join(dir, 'agent.yaml');
  writeConfigFile(policy, toYaml(policyDoc(name, spec)).replace(/^\n/, '') + '\n');
  return { dir, policy, audit: path.join(dir, 'audit.jsonl') };
}

export function cleanup(dir) {
  if (!process.env.AIP_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
}

/** Waits until the audit file holds a record matching pred; returns it. */
export async function waitAudit(file, pred, ms = 3000, what = 'audit record') {
  return waitFor(() => auditRecords(file).find(pred), ms, what);
}

export function wrapperArgs({ target, policy, audit, extra = [] }) {
  return ['--target', target, '--policy', policy, '--audit', audit, ...extra];
}

/**
 * SDK client -> aip --target ... over stdio. The SDK passes only a few variables to its child
 * unless `env` is given, so the environment is passed explicitly.
 * opts: target, spec (policy), capabilities, extra (more wrapper args), onElicit (handler).
 */
export async function sdkWrapper({ target = TARGET_TEST_SERVER, spec, capabilities = {}, extra = [], onElicit, env = {} }) {
  const d = wrapperDir(spec);
  const transport = new StdioClientTransport({
    command: AIP_BIN,
    args: wrapperArgs({ target, policy: d.policy, audit: d.audit, extra }),
    env: { ...process.env, ...env },
    cwd: d.dir,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (b) => { stderr += b.toString(); });
  const client = new Client({ name: 'wrapper-e2e', version: '1.0.0' }, { capabilities });
  if (onElicit) {
    const { ElicitRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
    client.setRequestHandler(ElicitRequestSchema, onElicit);
  }
  await client.connect(transport);
  return {
    ...d, client, transport,
    get stderr() { return stderr; },
    get pid() { return transport.pid; },
    async close() {
      try { await client.close(); } catch { /* gone */ }
      cleanup(d.dir);
      // an ASan/UBSan build reports at exit (AIP_BUILD_DIR=build-asan)
      await sleep(50);
      assert.doesNotMatch(stderr, /Sanitizer|runtime error:/, 'sanitizer report in the wrapper\'s stderr');
    },
  };
}

/**
 * The wrapper driven line by line: send(obj | string) writes one line; next(pred, ms) resolves
 * with the first received message (parsed) matching pred that was not taken before.
 */
export class RawWrapper {
  static start(opts) {
    const w = new RawWrapper(opts);
    return w;
  }

  constructor({ target = TARGET_MIRROR, spec, extra = [], env = {}, args } = {}) {
    Object.assign(this, wrapperDir(spec || { allowed_tools: ['echo'] }));
    this.stderr = '';
    this.lines = [];
    this.taken = new Set();
    this.waiters = [];
    this.proc = spawn(AIP_BIN, args || wrapperArgs({ target, policy: this.policy, audit: this.audit, extra }), {
      cwd: this.dir, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env },
    });
    this.pid = this.proc.pid;
    let parts = []; // pieces of the unfinished line: only new bytes are searched for '\n'
    this.proc.stdout.on('data', (b) => {
      let start = 0, i;
      while ((i = b.indexOf(10, start)) >= 0) {
        parts.push(b.subarray(start, i));
        this.lines.push(Buffer.concat(parts).toString());
        parts = [];
        start = i + 1;
      }
      if (start < b.length) parts.push(b.subarray(start));
      this._wake();
    });
    this.proc.stderr.on('data', (b) => { this.stderr += b.toString(); });
    this.proc.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  send(msg) {
    this.proc.stdin.write((typeof msg === 'string' ? msg : JSON.stringify(msg)) + '\n');
  }

  /** Messages received so far (parsed). */
  get messages() {
    return this.lines.map((l) => JSON.parse(l));
  }

  _find(pred) {
    for (let i = 0; i < this.lines.length; i++) {
      if (this.taken.has(i)) continue;
      const m = JSON.parse(this.lines[i]);
      if (pred(m)) {
        this.taken.add(i);
        return m;
      }
    }
    return undefined;
  }

  _wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  async next(pred = () => true, ms = 3000, what = 'a message') {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this._find(pred);
      if (m) return m;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms} ms; got:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** The answer to request `id`. */
  reply(id, ms) { return this.next((m) => m.id === id && !m.method, ms, `reply to id ${JSON.stringify(id)}`); }

  /** initialize + notifications/initialized (the mirror then sends its ping "srv-1"). */
  async init(protocolVersion = '2025-06-18', capabilities = {}) {
    this.send({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion, capabilities, clientInfo: { name: 'raw', version: '1' } } });
    const r = await this.reply('init');
    assert.equal(r.result?.protocolVersion, protocolVersion, JSON.stringify(r));
    this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return r;
  }

  /** Nothing unexpected arrives for `ms` (counts lines not yet taken that match pred). */
  async none(pred, ms = 300) {
    await sleep(ms);
    const extra = this.lines.map((l) => JSON.parse(l)).filter((m, i) => !this.taken.has(i) && pred(m));
    assert.deepEqual(extra, [], 'no such message');
  }

  endInput() { this.proc.stdin.end(); }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.stdin.end();
      const r = await Promise.race([this.exited, sleep(5000, null, { ref: false })]);
      if (!r) this.proc.kill('SIGKILL');
    }
    await this.exited;
    cleanup(this.dir);
    await sleep(20);
    assert.doesNotMatch(this.stderr, /Sanitizer|runtime error:/, 'sanitizer report in the wrapper\'s stderr');
  }

  dump(label = '') {
    process.stderr.write(`\n----- wrapper ${label} -----\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}\n-----\n`);
  }
}
