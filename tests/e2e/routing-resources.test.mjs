// Resources, prompts, completion and logging routed by `aip serve` across two servers per agent,
// with the real SDK client in front: two server-everything instances (every URI and prompt name
// collides), two probe servers (lib/resource-server.mjs: they log every request, so a refused
// URI can be shown never to reach them), server-memory with server-filesystem. The naming rule
// is docs/routing.md.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { McpError, ResourceUpdatedNotificationSchema, LoggingMessageNotificationSchema, PromptListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { Gateway, newToken, makeTempDir, EVERYTHING_JS, E2E_DIR, waitFor, sleep, parseMaybeSse } from './lib/harness.mjs';

const PROBE_JS = path.join(E2E_DIR, 'lib/resource-server.mjs');
const MEMORY_JS = path.join(E2E_DIR, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js');
const FS_JS = path.join(E2E_DIR, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');
const AWS = 'AKIAIOSFODNN7EXAMPLE';
const patterns = [{ name: 'AWS', regex: 'AKIA[0-9A-Z]{16}' }];

const T = { ev: newToken('ev'), probe: newToken('probe'), never: newToken('never'), mem: newToken('mem'), plain: newToken('plain') };
let gw, dir, log;

before(async () => {
  dir = fs.realpathSync(makeTempDir('aip-routing-'));
  fs.mkdirSync(path.join(dir, 'secret'));
  fs.mkdirSync(path.join(dir, 'x'));
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'plain notes');
  fs.writeFileSync(path.join(dir, 'secret/key.txt'), 'the real key');
  fs.writeFileSync(path.join(dir, 'blob.bin'), Buffer.from([0, 1, 2, 3, 255]));
  log = path.join(dir, 'probe.log');
  const probe = (name) => ({ command: [process.execPath, PROBE_JS], env: { PROBE_NAME: name, PROBE_DIR: dir, PROBE_LOG: log } });
  const all = { allowed_methods: ['*'] };
  gw = await Gateway.start({
    servers: {
      evA: { command: [process.execPath, EVERYTHING_JS, 'stdio'] },
      evB: { command: [process.execPath, EVERYTHING_JS, 'stdio'] },
      a: probe('a'),
      b: probe('b'),
      memory: { command: [process.execPath, MEMORY_JS], env: { MEMORY_FILE_PATH: path.join(dir, 'memory.jsonl') } },
      files: { command: [process.execPath, FS_JS, dir] },
    },
    agents: [
      { name: 'ev', token: T.ev, servers: ['evA', 'evB'],
        policy: { ...all, allowed_tools: ['evA__get-resource-links', 'evA__get-resource-reference', 'evA__toggle-simulated-logging'] } },
      { name: 'probe', token: T.probe, servers: ['a', 'b'],
        policy: { ...all, allowed_tools: ['a__add-prompt'], protected_paths: [path.join(dir, 'secret')], dlp: { patterns, detect_encoding: true } } },
      { name: 'never', token: T.never, servers: ['a', 'b'], tool_prefix: 'never', policy: all },
      { name: 'mem', token: T.mem, servers: ['memory', 'files'],
        policy: { ...all, allowed_tools: ['create_entities', 'read_media_file'], dlp: { patterns } } },
      { name: 'plain', token: T.plain, servers: ['evA'], policy: { allowed_tools: ['echo'] } },
    ],
  });
});

after(async () => {
  if (gw) await gw.stop();
  if (dir && !process.env.AIP_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
});

const t = (name, fn) => test(name, (ctx) => gw.wrap(fn)(ctx));
const rejectsWith = (p, code, re) => assert.rejects(p, (e) => {
  assert.ok(e instanceof McpError, String(e));
  assert.equal(e.code, code, e.message);
  if (re) assert.match(e.message, re);
  return true;
});
const probeLog = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
const audit = () => gw.auditRecords();

t('initialize: the union of the servers\' capabilities and their instructions, each under its server', async () => {
  const { client } = await gw.connect(T.ev);
  const caps = client.getServerCapabilities();
  assert.deepEqual(caps.resources, { subscribe: true, listChanged: true });
  assert.deepEqual(caps.prompts, { listChanged: true });
  assert.ok(caps.completions && caps.logging && caps.tools, JSON.stringify(caps));
  const ins = client.getInstructions();
  assert.match(ins, /^## evA\n\n# Everything Server/);
  assert.match(ins, /\n\n## evB\n\n# Everything Server/);
  // server-filesystem offers no resources and server-memory no prompts
  const m = await gw.connect(T.mem);
  const mc = m.client.getServerCapabilities();
  assert.equal(mc.resources.subscribe, true);
  assert.equal(mc.prompts, undefined);
});

t('two server-everything: colliding URIs, templates and prompt names are qualified; reads route to the right server', async () => {
  const { client } = await gw.connect(T.ev);
  const { resources } = await client.listResources();
  assert.equal(resources.length, 14);
  assert.ok(resources.every((r) => /^aip:\/\/ev[AB]\/demo:\/\//.test(r.uri)), resources.map((r) => r.uri).join(' '));
  const uri = 'aip://evB/demo://resource/static/document/architecture.md';
  const r = await client.readResource({ uri });
  assert.equal(r.contents[0].uri, uri);
  assert.ok(r.contents[0].text.length > 0);
  const { resourceTemplates } = await client.listResourceTemplates();
  assert.deepEqual(resourceTemplates.map((x) => x.uriTemplate).sort(), [
    'aip://evA/demo://resource/dynamic/blob/{resourceId}', 'aip://evA/demo://resource/dynamic/text/{resourceId}',
    'aip://evB/demo://resource/dynamic/blob/{resourceId}', 'aip://evB/demo://resource/dynamic/text/{resourceId}']);
  const d = await client.readResource({ uri: 'aip://evA/demo://resource/dynamic/text/7' });
  assert.equal(d.contents[0].uri, 'aip://evA/demo://resource/dynamic/text/7');
  assert.match(d.contents[0].text, /7/);
  // the unqualified URI could mean either server: refused, not guessed
  await rejectsWith(client.readResource({ uri: 'demo://resource/static/document/architecture.md' }), -32602, /Ambiguous/);
  const { prompts } = await client.listPrompts();
  assert.ok(prompts.some((p) => p.name === 'evA__simple-prompt') && prompts.some((p) => p.name === 'evB__args-prompt'));
  assert.ok(!prompts.some((p) => p.name === 'simple-prompt'));
  const g = await client.getPrompt({ name: 'evB__args-prompt', arguments: { city: 'Lyon' } });
  assert.match(JSON.stringify(g.messages), /Lyon/);
  const c = await client.complete({ ref: { type: 'ref/prompt', name: 'evA__completable-prompt' }, argument: { name: 'department', value: 'En' } });
  assert.ok(c.completion.values.includes('Engineering'), JSON.stringify(c));
  // ref/resource: routed by the template's exposed URI, sent with the server's own
  const rc = await client.complete({ ref: { type: 'ref/resource', uri: 'aip://evB/demo://resource/dynamic/text/{resourceId}' }, argument: { name: 'resourceId', value: '1' } });
  assert.deepEqual(rc.completion.values, ['1']);
  await rejectsWith(client.complete({ ref: { type: 'ref/resource', uri: 'demo://resource/dynamic/text/{resourceId}' }, argument: { name: 'resourceId', value: '1' } }), -32602, /resource template/);
});

t('resource_link and embedded resources in tool results name resources as the agent sees them', async () => {
  const { client } = await gw.connect(T.ev);
  const r = await client.callTool({ name: 'evA__get-resource-links', arguments: { count: 2 } });
  const links = r.content.filter((c) => c.type === 'resource_link');
  assert.ok(links.length >= 1, JSON.stringify(r));
  for (const l of links) assert.match(l.uri, /^aip:\/\/evA\/demo:\/\//);
  const back = await client.readResource({ uri: links[0].uri });
  assert.equal(back.contents[0].uri, links[0].uri);
  const e = await client.callTool({ name: 'evA__get-resource-reference', arguments: { resourceType: 'Text', resourceId: 3 } });
  const emb = e.content.find((c) => c.type === 'resource');
  assert.ok(emb, JSON.stringify(e));
  assert.equal(emb.resource.uri, 'aip://evA/demo://resource/dynamic/text/3');
});

t('protected_paths: a listed protected resource is hidden, and every spelling of it is refused before any server sees it', async () => {
  const { client } = await gw.connect(T.probe);
  const { resources } = await client.listResources();
  const uris = resources.map((r) => r.uri);
  assert.ok(uris.includes(`aip://a/file://${dir}/notes.txt`) && uris.includes(`aip://b/file://${dir}/notes.txt`), uris.join(' '));
  assert.ok(!uris.some((u) => u.includes('secret/key')), uris.join(' '));
  const before = probeLog().length;
  const bad = [
    `file://${dir}/secret/key.txt`,
    `aip://a/file://${dir}/secret/key.txt`,
    `aip://b/file://${dir}/x/../secret/key.txt`,
    `aip://a/file://${dir}/x/%2e%2e/secret/key.txt`,
    `aip://a/file://${dir}/x/%2E%2E/secret/%6Bey.txt`,
    `aip://a/file:${dir}/secret/key.txt`,
    `aip://a/file://localhost${dir}/secret/key.txt`,
    `aip://b/${dir}/secret`,
    `${dir}/secret/key.txt`,
  ];
  for (const uri of bad) {
    await rejectsWith(client.readResource({ uri }), -32007, /protected path/);
    await rejectsWith(client.subscribeResource({ uri }), -32007, /protected path/);
  }
  const seen = probeLog().slice(before);
  assert.ok(!seen.some((m) => JSON.stringify(m).includes('secret')), JSON.stringify(seen));
  // the notes (not protected) are read through the template route, under the qualified name
  const ok = await client.readResource({ uri: `aip://b/file://${dir}/notes.txt` });
  assert.equal(ok.contents[0].text, 'plain notes');
  assert.ok(probeLog().some((m) => m.server === 'b' && m.method === 'resources/read' && m.params.uri === `file://${dir}/notes.txt`));
  // every decision is audited with the URI in place of the tool
  const recs = audit().filter((x) => x.method === 'resources/read');
  assert.ok(recs.some((x) => x.tool === bad[3] && x.decision === 'PROTECTED_PATH'), JSON.stringify(recs.slice(-3)));
  assert.ok(recs.some((x) => x.tool === `aip://b/file://${dir}/notes.txt` && x.decision === 'ALLOW'));
});

t('DLP: a secret in a resource, a prompt message and a completion value is redacted', async () => {
  const { client } = await gw.connect(T.probe);
  const r = await client.readResource({ uri: 'aip://a/vault://token' });
  assert.equal(r.contents[0].text, 'the token is [REDACTED:AWS]');
  const p = await client.getPrompt({ name: 'a__leak' });
  assert.equal(p.messages[0].content.text, 'use key [REDACTED:AWS] from a');
  const c = await client.complete({ ref: { type: 'ref/prompt', name: 'b__shared' }, argument: { name: 'q', value: 'v' } });
  assert.deepEqual(c.completion.values, ['b-v', 'b-[REDACTED:AWS]']);
  // an embedded resource in a prompt message names the resource as the agent sees it
  const s = await client.getPrompt({ name: 'a__shared', arguments: { q: 'hi' } });
  assert.equal(s.messages[1].content.resource.uri, `aip://a/file://${dir}/notes.txt`);
  // a blob, where the rule asks for encoded matches (detect_encoding): redacted too (raw
  // JSON-RPC: the redacted blob is no longer base64, which the SDK client would refuse)
  const sid = await gw.rawSession(T.probe);
  const raw = await gw.post({ jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'aip://a/vault://blob' } },
    { token: T.probe, session: sid, version: '2025-11-25' });
  const blob = parseMaybeSse(raw).result.contents[0].blob;
  assert.equal(blob, '[REDACTED:AWS:encoded]');
  const recs = audit().filter((x) => x.method === 'prompts/get');
  assert.ok(recs.some((x) => x.tool === 'a__leak' && x.decision === 'ALLOW'));
});

t('hidden prompts: ambiguous names are not listed and refused when named', async () => {
  const { client } = await gw.connect(T.probe);
  const names = (await client.listPrompts()).prompts.map((p) => p.name);
  // a's "b__x" reads as b's qualified "x": both are hidden
  assert.ok(!names.includes('x') && !names.includes('b__x'), names.join(' '));
  assert.ok(names.includes('only-a') && names.includes('a__shared'), names.join(' '));
  await rejectsWith(client.getPrompt({ name: 'b__x' }), -32602, /Ambiguous prompt name/);
  await rejectsWith(client.getPrompt({ name: 'x' }), -32602, /Ambiguous prompt name/);
  await rejectsWith(client.getPrompt({ name: 'nope' }), -32602, /Unknown prompt/);
  // tool_prefix never: a name two servers share is exposed by neither
  const n = await gw.connect(T.never);
  const nn = (await n.client.listPrompts()).prompts.map((p) => p.name);
  assert.ok(!nn.includes('shared') && nn.includes('only-a') && nn.includes('only-b'), nn.join(' '));
  await rejectsWith(n.client.getPrompt({ name: 'shared' }), -32602, /Ambiguous/);
  // prompt arguments pass protected_paths like tool arguments
  await rejectsWith(client.getPrompt({ name: 'only-a', arguments: { file: `${dir}/secret/key.txt` } }), -32007);
});

t('prompts/list_changed from a server reaches the agent\'s sessions and the merged list is fetched again', async () => {
  const { client, getStream } = await gw.connect(T.probe);
  const other = await gw.connect(T.probe);
  let changed = 0, changedOther = 0;
  client.setNotificationHandler(PromptListChangedNotificationSchema, () => { changed++; });
  other.client.setNotificationHandler(PromptListChangedNotificationSchema, () => { changedOther++; });
  await getStream;
  await other.getStream;
  assert.ok(!(await client.listPrompts()).prompts.some((p) => p.name === 'fresh'));
  await client.callTool({ name: 'a__add-prompt', arguments: { name: 'fresh' } });
  await waitFor(() => changed >= 1 && changedOther >= 1, 3000, 'prompts/list_changed at both sessions');
  const names = (await client.listPrompts()).prompts.map((p) => p.name);
  assert.ok(names.includes('fresh'), names.join(' '));
  const g = await client.getPrompt({ name: 'fresh' });
  assert.equal(g.messages[0].content.text, 'fresh of a');
});

t('logging/setLevel reaches every server of the agent', async () => {
  const { client } = await gw.connect(T.probe);
  const before = probeLog().length;
  assert.deepEqual(await client.setLoggingLevel('debug'), {});
  await waitFor(() => {
    const s = probeLog().slice(before).filter((m) => m.method === 'logging/setLevel').map((m) => m.server).sort();
    return s.join() === 'a,b';
  }, 3000, 'setLevel at a and b');
});

t('notifications/message from a server reaches the agent\'s session', async () => {
  const { client, getStream } = await gw.connect(T.ev);
  const got = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => got.push(n.params));
  await getStream;
  await client.setLoggingLevel('debug');
  await client.callTool({ name: 'evA__toggle-simulated-logging', arguments: {} });
  try {
    await waitFor(() => got.length > 0, 8000, 'a log message');
  } finally {
    await client.callTool({ name: 'evA__toggle-simulated-logging', arguments: {} });
  }
});

t('subscriptions: resources/updated goes only to the session that subscribed', async () => {
  const s1 = await gw.connect(T.mem);
  const s2 = await gw.connect(T.mem);
  const got1 = [], got2 = [];
  s1.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => got1.push(n.params.uri));
  s2.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => got2.push(n.params.uri));
  await s1.getStream;
  await s2.getStream;
  const uris = (await s1.client.listResources()).resources.map((r) => r.uri);
  assert.deepEqual(uris, ['memory://knowledge-graph']); // only memory offers resources: unchanged
  await s1.client.subscribeResource({ uri: 'memory://knowledge-graph' });
  await s1.client.callTool({ name: 'create_entities', arguments: { entities: [{ name: 'k', entityType: 't', observations: [`key ${AWS}`] }] } });
  await waitFor(() => got1.length === 1, 3000, 'the subscriber hears the update');
  await sleep(300);
  assert.deepEqual(got1, ['memory://knowledge-graph']);
  assert.deepEqual(got2, []);
  // a secret in a resource's text is redacted
  const r = await s2.client.readResource({ uri: 'memory://knowledge-graph' });
  assert.ok(r.contents[0].text.includes('[REDACTED:AWS]') && !r.contents[0].text.includes(AWS), r.contents[0].text);
  await s1.client.unsubscribeResource({ uri: 'memory://knowledge-graph' });
  await s1.client.callTool({ name: 'create_entities', arguments: { entities: [{ name: 'k2', entityType: 't', observations: ['o'] }] } });
  await sleep(500);
  assert.equal(got1.length, 1, 'no update after unsubscribe');
});

t('subscriptions: the server is asked once per resource and told to stop when the last subscriber goes', async () => {
  const s1 = await gw.connect(T.probe);
  const s2 = await gw.connect(T.probe);
  const s3 = await gw.connect(T.probe);
  const got = [[], [], []];
  [s1, s2, s3].forEach((s, i) => s.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => got[i].push(n.params.uri)));
  await Promise.all([s1.getStream, s2.getStream, s3.getStream]);
  const uri = `aip://a/file://${dir}/notes.txt`;
  const real = `file://${dir}/notes.txt`;
  const count = (method) => probeLog().filter((m) => m.server === 'a' && m.method === method && m.params?.uri === real).length;
  const sub0 = count('resources/subscribe'), unsub0 = count('resources/unsubscribe');
  await s1.client.subscribeResource({ uri });
  await waitFor(() => got[0].length === 1, 3000, 'the first subscriber hears the update');
  assert.deepEqual(got[0], [uri], 'under the URI it subscribed with');
  await s2.client.subscribeResource({ uri });
  assert.equal(count('resources/subscribe'), sub0 + 1, 'one upstream subscription for both sessions');
  await s1.client.unsubscribeResource({ uri });
  await sleep(200);
  assert.equal(count('resources/unsubscribe'), unsub0, 'a subscriber is left: the server keeps sending');
  await s2.client.unsubscribeResource({ uri });
  await waitFor(() => count('resources/unsubscribe') === unsub0 + 1, 3000, 'the last one gone: unsubscribed upstream');
  assert.deepEqual(got[2], [], 'a session that never subscribed hears nothing');
  // a session that ends is unsubscribed too
  await s3.client.subscribeResource({ uri });
  await waitFor(() => got[2].length === 1, 3000, 'the third subscriber hears the update');
  await s3.transport.terminateSession();
  await waitFor(() => count('resources/unsubscribe') === unsub0 + 2, 3000, 'its session ended: unsubscribed upstream');
});

t('an embedded resource from a server without resources is qualified, so it never reads as another server\'s', async () => {
  const { client } = await gw.connect(T.mem);
  const r = await client.callTool({ name: 'read_media_file', arguments: { path: path.join(dir, 'blob.bin') } });
  const emb = r.content.find((c) => c.type === 'resource');
  assert.ok(emb, JSON.stringify(r));
  assert.equal(emb.resource.uri, `aip://files/file://${dir}/blob.bin`);
});

t('the default method list refuses resources, prompts and logging (-32006) and allows completion', async () => {
  const { client } = await gw.connect(T.plain);
  await rejectsWith(client.listResources(), -32006, /Method not allowed/);
  await rejectsWith(client.readResource({ uri: 'demo://resource/static/document/architecture.md' }), -32006);
  await rejectsWith(client.listPrompts(), -32006);
  await rejectsWith(client.setLoggingLevel('debug'), -32006);
  const c = await client.complete({ ref: { type: 'ref/prompt', name: 'completable-prompt' }, argument: { name: 'department', value: 'En' } });
  assert.ok(c.completion.values.includes('Engineering'));
});
