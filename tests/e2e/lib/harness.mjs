// Harness for the aip-gateway end-to-end tests: temp dirs, free loopback ports, gateway
// config + policies, starting/stopping `aip serve`, SDK clients and raw HTTP helpers.
//
// Everything talks to 127.0.0.1 only.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = path.resolve(here, '..');
export const REPO = path.resolve(E2E_DIR, '../..');
export const BUILD_DIR = path.resolve(process.env.AIP_BUILD_DIR || path.join(REPO, 'build'));
export const AIP_BIN = path.join(BUILD_DIR, 'aip');
export const TEST_SERVER = path.join(BUILD_DIR, 'tests/mcp-server/aip-test-server');
/** True for an ASan/UBSan build: its allocator keeps freed memory resident (quarantine), so
 * peak-RSS bounds say nothing there and the tests that measure memory only check results. */
export const SANITIZED = (() => {
  try {
    return /^AIP_SANITIZE:BOOL=ON$/m.test(fs.readFileSync(path.join(BUILD_DIR, 'CMakeCache.txt'), 'utf8'));
  } catch { return false; }
})();
export const EVERYTHING_JS = path.join(
  E2E_DIR, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
/** Preload that binds every TCP listen of a Node program to 127.0.0.1 (see lib/loopback.mjs). */
export const LOOPBACK_PRELOAD = path.join(here, 'loopback.mjs');

for (const f of [AIP_BIN, TEST_SERVER]) {
  if (!fs.existsSync(f)) throw new Error(`missing ${f}: build first (cmake --build build) or set AIP_BUILD_DIR`);
}

export const sha256hex = (s) => createHash('sha256').update(s).digest('hex');

/**
 * Writes a config or policy file as 0644 whatever the umask: `aip serve` and the wrapper refuse
 * files that group or others can write (docs/operations.md), and a rewrite keeps the old mode.
 */
export function writeConfigFile(file, text) {
  fs.writeFileSync(file, text, { mode: 0o644 });
  fs.chmodSync(file, 0o644);
}

export function makeTempDir(prefix = 'aip-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A port that was free a moment ago on 127.0.0.1 (listen on 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---- a tiny YAML writer (block style, every string JSON-quoted) ---------------------------

function yScalar(v) {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  return JSON.stringify(String(v));
}

function yKey(k) {
  return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k) ? k : JSON.stringify(k);
}

export function toYaml(v, indent = 0) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return '\n' + v.map((item) => {
      if (item && typeof item === 'object' && !Array.isArray(item)) {
        const body = toYaml(item, indent + 2).replace(/^\n/, '');
        return `${pad}- ${body.slice(indent + 2)}`;
      }
      return `${pad}- ${typeof item === 'object' && item !== null ? toYaml(item, indent + 2) : yScalar(item)}`;
    }).join('\n');
  }
  if (v && typeof v === 'object') {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    if (keys.length === 0) return '{}';
    return '\n' + keys.map((k) => {
      const val = v[k];
      if (val && typeof val === 'object') return `${pad}${yKey(k)}:${toYaml(val, indent + 2)}`.replace(/:\n?(\[\]|\{\})$/, ': $1');
      return `${pad}${yKey(k)}: ${yScalar(val)}`;
    }).join('\n');
  }
  return yScalar(v);
}

export function policyDoc(name, spec) {
  return {
    apiVersion: 'aip.io/v1alpha1',
    kind: 'AgentPolicy',
    metadata: { name, version: '1.0.0' },
    spec: { mode: 'enforce', ...spec },
  };
}

/** An upstream entry for the C test server; `env` is passed to the child (AIP_TEST_*). */
export function testServer(env = {}) {
  return { command: [TEST_SERVER], env };
}

/** A Streamable HTTP upstream entry: `url` plus optional configured `headers`. */
export function httpServer(url, headers) {
  return headers ? { url, headers } : { url };
}

// ---- processes ----------------------------------------------------------------------------

/** Direct children of `pid` (scans /proc; Linux only), as {pid, cmdline}. */
/** Bytes a process has handed to write(2) and friends so far (/proc/PID/io `wchar`): a server
 * whose reader stopped reading stops here, whatever the reader's allocator does. */
export function bytesWrittenBy(pid) {
  return Number(/^wchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))[1]);
}

/** Resolves once `pid` has written (almost) nothing for `quietMs`, i.e. it is blocked on a full
 * pipe or socket; returns how much it had written by then. Throws after `timeoutMs`. */
export async function writerStalls(pid, { quietMs = 500, slack = 256 * 1024, timeoutMs = 10000 } = {}) {
  const end = Date.now() + timeoutMs;
  let last = bytesWrittenBy(pid);
  for (;;) {
    await sleep(quietMs);
    const now = bytesWrittenBy(pid);
    if (now - last < slack) return now;
    if (Date.now() > end) throw new Error(`pid ${pid} kept writing (${now} bytes so far): nothing holds it back`);
    last = now;
  }
}

export function childrenOf(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      // pid (comm) state ppid ... ; comm may contain spaces/parens: split after the last ')'
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) !== pid) continue;
      const cmdline = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(d), state: rest[0], cmdline });
    } catch { /* raced with an exit */ }
  }
  return out;
}

export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

// ---- the gateway --------------------------------------------------------------------------

let tokenSeq = 0;
/** A fresh bearer token for an agent. */
export function newToken(label = 'agent') {
  tokenSeq++;
  return `aip_e2e_${label}_${process.pid}_${tokenSeq}_${Math.random().toString(36).slice(2)}`;
}

/** Replaces a file the way editors and config tools do: write a temp file, rename over. */
export function replaceFile(file, text) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** The audit records written so far (a line the writer is still writing, with no newline yet,
 * is not one: a large record, or any record under a sanitizer's slowness, can be read half
 * written). Every test reads the audit log through this. */
export function auditRecords(file) {
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines.pop(); // '' after the last newline, or the unfinished line
  return lines.filter(Boolean).map((l) => JSON.parse(l));
}

export class Gateway {
  /**
   * opts.servers: { name: {command, env} }
   * opts.agents: [{ name, token, policy: <spec object>, servers: [...], tool_prefix?, ask_via? }]
   * opts.limits: { max_body, request_timeout, ... }
   * opts.extra: extra top-level config keys
   * opts.env: extra environment variables of the gateway process itself
   * opts.ready: false to wait for /healthz only (a gateway that starts with an agent blocked)
   */
  /** This gateway's audit records so far (auditRecords). */
  auditRecords() { return auditRecords(this.auditPath); }

  constructor(opts) {
    this.opts = opts;
    this.dir = makeTempDir();
    this.stderr = '';
    this.clients = [];
    this.tokens = {};
  }

  static async start(opts) {
    const gw = new Gateway(opts);
    await gw._start();
    return gw;
  }

  get url() { return `http://127.0.0.1:${this.port}/mcp`; }
  /** Path of an agent's policy file (written from opts.agents[].policy). */
  policyPath(agent) { return path.join(this.dir, 'policies', `${agent}.yaml`); }
  /** Rewrites an agent's policy from a spec object (atomic rename, as editors do). */
  writePolicy(agent, spec) {
    replaceFile(this.policyPath(agent), toYaml(policyDoc(agent, spec)).replace(/^\n/, '') + '\n');
  }
  get adminUrl() { return `http://127.0.0.1:${this.adminPort}`; }

  writeConfig() {
    const { servers, agents, limits, extra } = this.opts;
    fs.mkdirSync(path.join(this.dir, 'policies'), { recursive: true });
    const cfgAgents = agents.map((a) => {
      this.tokens[a.name] = a.token;
      const pfile = `policies/${a.name}.yaml`;
      writeConfigFile(path.join(this.dir, pfile), toYaml(policyDoc(a.name, a.policy)).replace(/^\n/, '') + '\n');
      return {
        name: a.name,
        token_sha256: sha256hex(a.token),
        policy: pfile,
        servers: a.servers,
        tool_prefix: a.tool_prefix,
        ask_via: a.ask_via,
        max_sessions: a.max_sessions,
        max_inflight: a.max_inflight,
      };
    });
    this.auditPath = path.join(this.dir, 'audit.jsonl');
    const cfg = {
      listen: `127.0.0.1:${this.port}`,
      admin: { listen: `127.0.0.1:${this.adminPort}` },
      store: { path: 'aip.db' },
      audit: { path: 'audit.jsonl' },
      limits,
      ...(extra || {}),
      servers,
      agents: cfgAgents,
    };
    this.configPath = path.join(this.dir, 'gateway.yaml');
    writeConfigFile(this.configPath, toYaml(cfg).replace(/^\n/, '') + '\n');
  }

  async _start() {
    this.port = await freePort();
    this.adminPort = await freePort();
    while (this.adminPort === this.port) this.adminPort = await freePort();
    this.writeConfig();
    this.proc = spawn(AIP_BIN, ['serve', '--config', this.configPath], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(this.opts.env || {}) },
    });
    this.pid = this.proc.pid;
    this.proc.stdout.on('data', (d) => { this.stderr += d.toString(); });
    this.proc.stderr.on('data', (d) => { this.stderr += d.toString(); });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve({ code, signal }));
    });
    let exitInfo = null;
    this.exited.then((e) => { exitInfo = e; });
    const deadline = Date.now() + 15000;
    for (;;) {
      if (exitInfo) {
        throw new Error(`aip serve exited during startup (${JSON.stringify(exitInfo)})\n` +
          `config:\n${fs.readFileSync(this.configPath, 'utf8')}\nstderr:\n${this.stderr}`);
      }
      try {
        const probe = this.opts.ready === false ? '/healthz' : '/readyz';
        const r = await fetch(`${this.adminUrl}${probe}`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status === 200) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        this.proc.kill('SIGKILL');
        throw new Error(`aip serve not ready after 15 s\nstderr:\n${this.stderr}`);
      }
      await sleep(50);
    }
  }

  /** Print the gateway's log (for failing tests). */
  dumpLog(label = '') {
    process.stderr.write(`\n----- aip serve log ${label} (${this.configPath}) -----\n${this.stderr}\n----- end of log -----\n`);
  }

  /** Wraps a test body: on failure, the gateway log is printed before the error propagates. */
  wrap(fn) {
    return async (t) => {
      try {
        await fn(t);
      } catch (e) {
        this.dumpLog(t?.name ? `[${t.name}]` : '');
        throw e;
      }
    };
  }

  /** SIGTERM, then the process must exit 0 within 5 s. The temp dir goes unless AIP_E2E_KEEP. */
  async stop() {
    try {
      await this._stop();
    } finally {
      if (!process.env.AIP_E2E_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** Stops (SIGTERM, must exit 0) and starts again on the same folder: same store, same audit. */
  async restart() {
    await this._stop();
    this.stderr += '\n----- restart -----\n';
    await this._start();
  }

  async _stop() {
    for (const c of this.clients.splice(0)) {
      try { await c.close(); } catch { /* already closed */ }
    }
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
      const e = await this.exited;
      this.dumpLog('[gateway died before stop]');
      assert.fail(`aip serve had already exited: ${JSON.stringify(e)}`);
    }
    this.proc.kill('SIGTERM');
    const res = await Promise.race([this.exited, sleep(5000, null, { ref: false })]);
    if (!res) {
      this.proc.kill('SIGKILL');
      await this.exited;
      this.dumpLog('[did not exit within 5 s of SIGTERM]');
      assert.fail('aip serve did not exit within 5 s of SIGTERM');
    }
    if (res.code !== 0) {
      this.dumpLog('[non-zero exit]');
      assert.equal(res.code, 0, `aip serve exit after SIGTERM: ${JSON.stringify(res)}`);
    }
  }

  /**
   * An SDK Client connected with the agent's bearer token. Returns {client, transport,
   * getStream} where getStream resolves once the standalone GET SSE stream got its 200.
   */
  async connect(token, { name = 'e2e-client', capabilities = {}, onGetStream, headers = {} } = {}) {
    let markGet;
    const getStream = new Promise((resolve) => { markGet = resolve; });
    const fetchSpy = async (url, init) => {
      const res = await fetch(url, init);
      if ((init?.method || 'GET') === 'GET' && res.status === 200) markGet(res);
      return res;
    };
    const transport = new StreamableHTTPClientTransport(new URL(this.url), {
      requestInit: { headers: { ...headers, Authorization: 'Bearer ' + token } },
      fetch: fetchSpy,
      reconnectionOptions: { maxReconnectionDelay: 1000, initialReconnectionDelay: 200, reconnectionDelayGrowFactor: 1.5, maxRetries: 0 },
    });
    const client = new Client({ name, version: '1.0.0' }, { capabilities });
    client.onerror = () => {}; // GET-stream reconnect noise at shutdown
    await client.connect(transport);
    this.clients.push(client);
    return { client, transport, getStream };
  }

  // ---- admin listener -----------------------------------------------------------------------

  /** GET on the admin listener (/healthz, /readyz, /metrics): {status, text}. */
  async admin(p) {
    const res = await fetch(`${this.adminUrl}${p}`, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, text: await res.text() };
  }

  /** The value of one metric from /metrics (undefined when absent); see metricValue. */
  async metric(name) {
    const { status, text } = await this.admin('/metrics');
    assert.equal(status, 200, `/metrics: ${status}`);
    return metricValue(text, name);
  }

  // ---- raw HTTP ---------------------------------------------------------------------------

  /** fetch against the gateway; `path` defaults to /mcp. Returns {status, headers, text, json}. */
  async raw({ method = 'POST', path: p = '/mcp', headers = {}, body, token, signal } = {}) {
    const h = { ...headers };
    if (token) h.Authorization = 'Bearer ' + token;
    const res = await fetch(`http://127.0.0.1:${this.port}${p}`, {
      method, headers: h, body, signal: signal || AbortSignal.timeout(10000),
    });
    const text = await res.text();
    let json;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    return { status: res.status, headers: res.headers, text, json, res };
  }

  /** POST one JSON-RPC message with the usual MCP headers. */
  async post(msg, { token, session, version, headers = {} } = {}) {
    const h = {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      ...headers,
    };
    if (session) h['Mcp-Session-Id'] = session;
    if (version) h['MCP-Protocol-Version'] = version;
    return this.raw({ method: 'POST', headers: h, body: typeof msg === 'string' ? msg : JSON.stringify(msg), token });
  }

  /** Raw initialize + notifications/initialized; returns the session id. */
  async rawSession(token, protocolVersion = '2025-11-25') {
    const r = await this.post({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }, { token });
    assert.equal(r.status, 200, `initialize: ${r.status} ${r.text}`);
    const sid = r.headers.get('mcp-session-id');
    assert.ok(sid, 'initialize answer has Mcp-Session-Id');
    const body = parseMaybeSse(r);
    assert.equal(body.result?.protocolVersion, protocolVersion, `negotiated version: ${r.text}`);
    const n = await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' },
      { token, session: sid, version: protocolVersion === '2025-03-26' ? undefined : protocolVersion });
    assert.equal(n.status, 202, `notifications/initialized: ${n.status} ${n.text}`);
    return sid;
  }
}

/** The JSON-RPC body of a POST answer sent as application/json or as SSE (last message). */
export function parseMaybeSse(r) {
  const ct = r.headers.get('content-type') || '';
  if (ct.startsWith('text/event-stream')) {
    const msgs = sseMessages(r.text);
    return msgs[msgs.length - 1];
  }
  return r.json;
}

export function sseMessages(text) {
  const out = [];
  for (const ev of text.split(/\r?\n\r?\n/)) {
    const data = ev.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
    if (data) out.push(JSON.parse(data));
  }
  return out;
}

/**
 * A node:test `test` for a gateway that a test file starts later: `gwOf()` is the gateway,
 * `othersOf()` the upstream processes whose logs are printed too when the test fails.
 */
export const gatewayTest = (gwOf, othersOf = () => []) => (name, fn) => test(name, async (ctx) => {
  try {
    await gwOf().wrap(fn)(ctx);
  } catch (e) {
    for (const o of othersOf()) o?.dumpLog(`[${ctx.name}]`);
    throw e;
  }
});

/** Stops the gateways first, then the upstream processes they use, even when one fails. */
export async function stopAll(gateways, upstreams = []) {
  try {
    for (const g of gateways) if (g) await g.stop();
  } finally {
    for (const u of upstreams) if (u) await u.stop();
  }
}

/** Reads SSE messages from a fetch Response one at a time (null at the end of the stream). */
export function sseReader(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  return async function next() {
    for (;;) {
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (data) return JSON.parse(data);
      }
      const { value, done } = await reader.read();
      if (done) return null;
      buf += decoder.decode(value, { stream: true });
    }
  };
}

/** Every page of tools/list (SDK listTools returns one page). */
export async function listAllTools(client, maxPages = 50) {
  const tools = [];
  let cursor;
  for (let i = 0; i < maxPages; i++) {
    const r = await client.listTools(cursor ? { cursor } : undefined);
    tools.push(...r.tools);
    cursor = r.nextCursor;
    if (!cursor) return tools;
  }
  throw new Error('tools/list did not end after ' + maxPages + ' pages');
}

export const names = (tools) => tools.map((t) => t.name).sort();

/** Run fn and return [ms, result-or-error]. */
export async function timed(fn) {
  const t0 = performance.now();
  try {
    const v = await fn();
    return { ms: performance.now() - t0, value: v };
  } catch (e) {
    return { ms: performance.now() - t0, error: e };
  }
}

export function textOf(result) {
  return (result.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('');
}

/** Wait until pred() is truthy (polling), or throw after ms. */
export async function waitFor(pred, ms = 3000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export { sleep };

/** A promise that rejects after ms (the timer does not keep the process alive). */
export function rejectAfter(ms, what) {
  return sleep(ms, undefined, { ref: false }).then(() => { throw new Error(`${what}: nothing within ${ms} ms`); });
}

/** p, or a rejection after ms. */
export function within(p, ms, what) {
  return Promise.race([p, rejectAfter(ms, what)]);
}


/**
 * The value of a metric in Prometheus text format (undefined when absent): `name` for an
 * unlabelled one, or the series exactly as rendered, e.g. 'aip_rate_limited_total{agent="bot"}'.
 */
export function metricValue(text, name) {
  for (const line of text.split('\n')) {
    if (name.includes('{')) {
      if (line.startsWith(name + ' ')) return Number(line.slice(name.length + 1).trim().split(/\s/)[0]);
      continue;
    }
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)\s+(\S+)/.exec(line);
    if (m && m[1] === name) return Number(m[2]);
  }
  return undefined;
}

// ---- upstream processes over HTTP -----------------------------------------------------------

// Every upstream process a test starts; killed when the test process exits, whatever happened.
const upstreamProcs = new Set();
process.on('exit', () => {
  for (const p of upstreamProcs) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
});

class UpstreamProcess {
  constructor(label) {
    this.label = label;
    this.log = '';
  }

  _spawn(cmd, args, env) {
    this.proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.pid = this.proc.pid;
    upstreamProcs.add(this.proc);
    this.proc.stdout.on('data', (d) => { this.log += d.toString(); });
    this.proc.stderr.on('data', (d) => { this.log += d.toString(); });
    this.exitInfo = null;
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        upstreamProcs.delete(this.proc);
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  get running() { return this.exitInfo === null; }

  /** SIGKILL, and wait for the exit. */
  async kill() {
    if (this.running) this.proc.kill('SIGKILL');
    return this.exited;
  }

  /** SIGTERM, then SIGKILL after 3 s. Resolves to the exit {code, signal}. */
  async stop() {
    if (!this.running) return this.exitInfo;
    this.proc.kill('SIGTERM');
    const r = await Promise.race([this.exited, sleep(3000, null, { ref: false })]);
    if (r) return r;
    this.proc.kill('SIGKILL');
    return this.exited;
  }

  dumpLog(label = '') {
    process.stderr.write(`\n----- ${this.label} log ${label} -----\n${this.log}\n----- end of log -----\n`);
  }
}

/**
 * The C test server in Streamable HTTP mode on 127.0.0.1 (`--http 127.0.0.1:PORT`).
 * opts: reply 'json' | 'sse'; port (0 = a free one; give the old port to restart "in place");
 * env: AIP_TEST_* variables (AIP_TEST_HTTP_FAULT, AIP_TEST_VERBOSE, ...).
 */
export class TestHttpServer extends UpstreamProcess {
  static async start(opts = {}) {
    const s = new TestHttpServer(`aip-test-server ${opts.env?.AIP_TEST_NAME || ''} (${opts.reply || 'sse'})`);
    await s._start(opts);
    return s;
  }

  get url() { return `http://127.0.0.1:${this.port}/mcp`; }

  async _start({ reply = 'sse', port = 0, env = {} }) {
    this.opts = { reply, env };
    const dir = makeTempDir('aip-e2e-ts-');
    const portFile = path.join(dir, 'port');
    try {
      this._spawn(TEST_SERVER, ['--http', `127.0.0.1:${port}`, '--reply', reply, '--port-file', portFile],
        { PATH: process.env.PATH, ...env });
      const deadline = Date.now() + 5000;
      for (;;) {
        if (fs.existsSync(portFile)) {
          this.port = Number(fs.readFileSync(portFile, 'utf8').trim());
          if (this.port > 0) break;
        }
        if (!this.running) throw new Error(`${this.label} exited at start (${JSON.stringify(this.exitInfo)}):\n${this.log}`);
        if (Date.now() > deadline) {
          this.proc.kill('SIGKILL');
          throw new Error(`${this.label}: no port file after 5 s:\n${this.log}`);
        }
        await sleep(10);
      }
      if (port) assert.equal(this.port, port, 'restarted on the port asked for');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Another instance with the same options on the same port (after kill/stop). */
  async restart() {
    assert.ok(!this.running, 'restart after the old process is gone');
    return TestHttpServer.start({ ...this.opts, port: this.port });
  }
}

/**
 * @modelcontextprotocol/server-everything in streamableHttp mode, kept on 127.0.0.1 by the
 * loopback preload. Ready once GET /mcp answers with any HTTP status.
 */
export class EverythingHttpServer extends UpstreamProcess {
  static async start() {
    const s = new EverythingHttpServer('server-everything streamableHttp');
    await s._start();
    return s;
  }

  get url() { return `http://127.0.0.1:${this.port}/mcp`; }

  async _start() {
    this.port = await freePort();
    this._spawn(process.execPath, ['--import', pathToFileURL(LOOPBACK_PRELOAD).href, EVERYTHING_JS, 'streamableHttp'],
      { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(this.port) });
    const deadline = Date.now() + 15000;
    for (;;) {
      if (!this.running) throw new Error(`${this.label} exited at start (${JSON.stringify(this.exitInfo)}):\n${this.log}`);
      try {
        const r = await fetch(this.url, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        break; // any HTTP status: it is listening
      } catch { /* not yet */ }
      if (Date.now() > deadline) {
        this.proc.kill('SIGKILL');
        throw new Error(`${this.label}: no answer on ${this.url} after 15 s:\n${this.log}`);
      }
      await sleep(50);
    }
  }
}

/**
 * The TCP sockets listening on `port`, from /proc/net/tcp and /proc/net/tcp6 (no `ss` needed):
 * [{ family: 4|6, addr }] with addr as printed by the kernel (hex), decoded for IPv4.
 */
export function tcpListeners(port) {
  const out = [];
  for (const [file, family] of [['/proc/net/tcp', 4], ['/proc/net/tcp6', 6]]) {
    let text;
    try { text = fs.readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue; // 0A = LISTEN
      const [addrHex, portHex] = f[1].split(':');
      if (parseInt(portHex, 16) !== port) continue;
      let addr = addrHex;
      if (family === 4) addr = [3, 2, 1, 0].map((i) => parseInt(addrHex.slice(i * 2, i * 2 + 2), 16)).join('.');
      else if (addrHex === '00000000000000000000000000000000') addr = '::';
      else if (addrHex === '00000000000000000000000001000000') addr = '::1';
      out.push({ family, addr });
    }
  }
  return out;
}
