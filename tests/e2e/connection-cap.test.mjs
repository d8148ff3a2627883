// issue 11: the /mcp listener had no connection cap, so 1,100 idle connections at `ulimit -n
// 1024` locked every client out, /readyz too. Now /mcp connections above limits.max_connections
// get a 503 and are closed, while the admin listener (its own descriptors in reserve) answers;
// and running out of descriptors altogether (EMFILE) costs no busy loop.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { spawnSync } from 'node:child_process';

import { Gateway, testServer, newToken, sha256hex, sleep, waitFor } from './lib/harness.mjs';

const TOKEN = newToken('cap');
const OP = newToken('op');
const CAP = 20;

/** Opens a TCP connection; resolves once connected, with a promise of what the server sends. */
function open(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const ended = new Promise((r) => { sock.on('close', () => r(data)); });
    sock.on('data', (d) => { data += d; });
    sock.on('error', () => {});
    sock.on('connect', () => resolve({ sock, ended, get data() { return data; } }));
    sock.on('error', reject);
  });
}

const cpuSeconds = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
};

async function adminWorks(gw) {
  assert.equal((await gw.admin('/healthz')).status, 200);
  assert.equal((await gw.admin('/readyz')).status, 200);
  assert.equal((await gw.admin('/metrics')).status, 200);
  const q = await fetch(`${gw.adminUrl}/v1/approvals`, { headers: { Authorization: `Bearer ${OP}` } });
  assert.equal(q.status, 200);
}

describe('limits.max_connections', () => {
  let gw;
  const socks = [];
  before(async () => {
    gw = await Gateway.start({
      limits: { max_connections: CAP, header_timeout: '30s', idle_timeout: '30s' },
      servers: { tools: testServer() },
      agents: [{ name: 'cap', token: TOKEN, servers: ['tools'], policy: { allowed_tools: ['echo'] } }],
      extra: { operators: [{ name: 'op', token_sha256: sha256hex(OP) }] },
    });
  });
  after(async () => { for (const s of socks) s.sock.destroy(); if (gw) await gw.stop(); });

  test('at the cap a new /mcp connection gets 503 and is closed; the admin listener still answers', (ctx) => gw.wrap(async () => {
    for (let i = 0; i < CAP; i++) socks.push(await open(gw.port));
    await sleep(200); // all accepted
    for (let i = 0; i < 3; i++) {
      const extra = await open(gw.port);
      const got = await Promise.race([extra.ended, sleep(3000, 'still open')]);
      assert.match(got, /^HTTP\/1\.1 503 /, `connection over the cap: ${got}`);
    }
    await adminWorks(gw);
    await waitFor(() => /refusing connections: max_connections reached/.test(gw.stderr), 3000, 'warning');
    assert.equal(await gw.metric('aip_http_connections_refused_total'), 3);
    // room again once some close
    for (const s of socks.splice(0, 5)) s.sock.destroy();
    await sleep(200);
    const r = await gw.post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }, { token: TOKEN });
    assert.equal(r.status, 200, r.text);
  })(ctx));
});

describe('unset max_connections: derived from RLIMIT_NOFILE', () => {
  let gw;
  const socks = [];
  before(async () => {
    gw = await Gateway.start({
      limits: { header_timeout: '30s' },
      servers: { tools: testServer() },
      agents: [{ name: 'cap', token: TOKEN, servers: ['tools'], policy: { allowed_tools: ['echo'] } }],
      extra: { operators: [{ name: 'op', token_sha256: sha256hex(OP) }] },
    });
  });
  after(async () => { for (const s of socks) s.sock.destroy(); if (gw) await gw.stop(); });

  test('the log names the derived cap', (ctx) => gw.wrap(async () => {
    const soft = Number(spawnSync('sh', ['-c', `grep 'Max open files' /proc/${gw.pid}/limits`]).stdout.toString().trim().split(/\s+/)[3]);
    const m = /\(max (\d+) connections\)/.exec(gw.stderr);
    assert.ok(m, 'startup line names the cap');
    assert.ok(Number(m[1]) < soft && Number(m[1]) >= soft / 2, `cap ${m[1]} for RLIMIT_NOFILE ${soft}`);
  })(ctx));

  test('out of descriptors (EMFILE): no busy loop, and service resumes when connections close', { skip: spawnSync('prlimit', ['--version']).status !== 0 }, (ctx) => gw.wrap(async () => {
    // lower the running gateway's limit under its cap: its accepts now hit EMFILE
    const used = fs.readdirSync(`/proc/${gw.pid}/fd`).length;
    const lim = used + 15;
    assert.equal(spawnSync('prlimit', [`--pid=${gw.pid}`, `--nofile=${lim}:${lim}`]).status, 0);
    const cpu0 = cpuSeconds(gw.pid);
    for (let i = 0; i < 60; i++) socks.push(await open(gw.port));
    await sleep(1500);
    const spent = cpuSeconds(gw.pid) - cpu0;
    assert.ok(spent < 0.6, `the gateway spent ${spent.toFixed(2)} s of CPU in 1.5 s at EMFILE`);
    assert.equal(gw.proc.exitCode, null, 'still running');
    for (const s of socks.splice(0)) s.sock.destroy();
    await sleep(300);
    await adminWorks(gw);
    const r = await gw.post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }, { token: TOKEN });
    assert.equal(r.status, 200, r.text);
  })(ctx));
});

// The case: more idle connections than the open-file limit allows. The gateway starts
// with a soft RLIMIT_NOFILE of 300 (inherited: the test lowers its own soft limit around the
// start), so its derived cap is 150; 400 idle connections must leave /readyz, /metrics and the
// approval API answering.
describe('more idle connections than ulimit -n', { skip: spawnSync('prlimit', ['--version']).status !== 0 }, () => {
  let gw;
  const socks = [];
  before(async () => {
    const own = fs.readFileSync(`/proc/${process.pid}/limits`, 'utf8').match(/Max open files\s+(\d+)/)[1];
    assert.equal(spawnSync('prlimit', [`--pid=${process.pid}`, '--nofile=300:']).status, 0);
    try {
      gw = await Gateway.start({
        limits: { header_timeout: '30s', idle_timeout: '30s' },
        servers: { tools: testServer() },
        agents: [{ name: 'cap', token: TOKEN, servers: ['tools'], policy: { allowed_tools: ['echo'] } }],
        extra: { operators: [{ name: 'op', token_sha256: sha256hex(OP) }] },
      });
    } finally {
      spawnSync('prlimit', [`--pid=${process.pid}`, `--nofile=${own}:`]);
    }
  });
  after(async () => { for (const s of socks) s.sock.destroy(); if (gw) await gw.stop(); });

  test('400 idle /mcp connections at a limit of 300: the admin listener keeps answering', (ctx) => gw.wrap(async () => {
    assert.match(gw.stderr, /\(max 150 connections\)/);
    for (let i = 0; i < 400; i++) socks.push(await open(gw.port));
    await sleep(500);
    await adminWorks(gw);
    assert.ok(await gw.metric('aip_http_connections_refused_total') >= 250);
    for (const s of socks.splice(0)) s.sock.destroy();
    await sleep(300);
    const r = await gw.post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }, { token: TOKEN });
    assert.equal(r.status, 200, r.text);
  })(ctx));
});
