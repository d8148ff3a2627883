// Numbers are forwarded byte for byte (issue 11 item 7): the bytes the policy checked are the
// bytes the upstream decodes, and a client's 17+ digit id comes back unchanged, both on a
// forwarded answer and on the gateway's own error reply.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Gateway, newToken, parseMaybeSse } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const A = newToken('alice');
const V = '2025-11-25';
let gw;
let sid;

before(async () => {
  gw = await Gateway.start({
    servers: { raw: { command: [process.execPath, path.join(here, 'lib/raw-echo-server.mjs')] } },
    agents: [{ name: 'alice', token: A, servers: ['raw'],
      policy: { allowed_tools: ['raw'], tool_rules: [{ tool: 'raw', allow_args: { p: '^0\\.[0-9]+$' } }] } }],
  });
  sid = await gw.rawSession(A, V);
});

after(async () => { if (gw) await gw.stop(); });

const t = (name, fn) => test(name, (ctx) => gw.wrap(fn)(ctx));

t('the upstream receives the exact number bytes the policy checked', async () => {
  const body = '{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call","params":{"name":"raw",' +
    '"arguments":{"p":0.9999999999999999,"big":12345678901234567891,"e":1E2,"f":1.0,"z":-0,"n":[0.30000000000000004]}}}';
  const r = await gw.post(body, { token: A, session: sid, version: V });
  assert.equal(r.status, 200, r.text);
  const raw = parseMaybeSse(r);
  const text = raw.result?.content?.[0]?.text || '';
  assert.ok(text.includes('"arguments":{"p":0.9999999999999999,"big":12345678901234567891,"e":1E2,"f":1.0,"z":-0,' +
    '"n":[0.30000000000000004]}'), `upstream saw: ${text}`);
  // the answer carries the client's id as the client wrote it (JSON.parse would round it)
  const answer = r.text.includes('data:') ? r.text.split('\n').filter((l) => l.startsWith('data:')).pop().slice(5).trim() : r.text;
  assert.match(answer, /"id":12345678901234567890[,}]/, answer);
});

t("the gateway's own error reply echoes a 17-digit id unchanged", async () => {
  const body = '{"jsonrpc":"2.0","id":98765432109876543,"method":"tools/call","params":{"name":"raw",' +
    '"arguments":{"p":1}}}';
  const r = await gw.post(body, { token: A, session: sid, version: V });
  assert.match(r.text, /"id":98765432109876543[,}]/, r.text);
  assert.match(r.text, /-32001/, r.text);
});
