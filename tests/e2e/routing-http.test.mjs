// Resources, prompts, completion and logging routed across a stdio and a Streamable HTTP
// upstream of one agent: server-everything twice, once over stdio and once in streamableHttp
// mode (loopback only), so every URI and prompt name collides across the two transports.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';

import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { Gateway, EverythingHttpServer, httpServer, newToken, EVERYTHING_JS, gatewayTest, stopAll } from './lib/harness.mjs';

const TOKEN = newToken('mixed');
let ev, gw;

before(async () => {
  ev = await EverythingHttpServer.start();
  gw = await Gateway.start({
    servers: { web: httpServer(ev.url), local: { command: [process.execPath, EVERYTHING_JS, 'stdio'] } },
    agents: [{ name: 'mixed', token: TOKEN, servers: ['web', 'local'], policy: { allowed_methods: ['*'] } }],
  });
});

after(() => stopAll([gw], [ev]));

const t = gatewayTest(() => gw, () => [ev]);

t('initialize: both servers\' capabilities and instructions', async () => {
  const { client } = await gw.connect(TOKEN);
  const caps = client.getServerCapabilities();
  assert.equal(caps.resources?.subscribe, true);
  assert.ok(caps.prompts && caps.completions && caps.logging, JSON.stringify(caps));
  assert.match(client.getInstructions(), /^## web\n\n[^]*\n\n## local\n\n/);
});

t('lists merge across HTTP and stdio; reads, prompts and completion reach the right one', async () => {
  const { client } = await gw.connect(TOKEN);
  const uris = (await client.listResources()).resources.map((r) => r.uri);
  assert.equal(uris.filter((u) => u.startsWith('aip://web/demo://')).length, 7, uris.join(' '));
  assert.equal(uris.filter((u) => u.startsWith('aip://local/demo://')).length, 7, uris.join(' '));
  const r = await client.readResource({ uri: 'aip://web/demo://resource/dynamic/text/42' });
  assert.equal(r.contents[0].uri, 'aip://web/demo://resource/dynamic/text/42');
  assert.match(r.contents[0].text, /42/);
  const p = await client.getPrompt({ name: 'web__args-prompt', arguments: { city: 'Nantes' } });
  assert.match(JSON.stringify(p.messages), /Nantes/);
  const c = await client.complete({ ref: { type: 'ref/prompt', name: 'local__completable-prompt' }, argument: { name: 'department', value: 'Ma' } });
  assert.ok(c.completion.values.includes('Marketing'), JSON.stringify(c));
  assert.deepEqual(await client.setLoggingLevel('info'), {});
  await assert.rejects(client.getPrompt({ name: 'args-prompt', arguments: { city: 'x' } }), (e) => {
    assert.ok(e instanceof McpError && e.code === -32602, String(e));
    return true;
  });
});
