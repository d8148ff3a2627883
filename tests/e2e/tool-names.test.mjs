// Tool names with several servers (issue 11, items 5 and 6): every exposed name maps to exactly
// one (server, tool), a name that could mean two tools is shown under neither, and a rule
// written for a tool's real name (`add`) or its qualified name (`alpha__add`) holds under
// whatever name the tool is exposed as, in enforce and monitor mode, with one rate bucket.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';

import { Gateway, testServer, newToken, sha256hex, listAllTools, names, textOf, waitFor } from './lib/harness.mjs';

const T = {
  shadow: newToken('shadow'),
  autoEnf: newToken('autoEnf'),
  autoMon: newToken('autoMon'),
  always: newToken('always'),
  qual: newToken('qual'),
  asker: newToken('asker'),
  op: newToken('op'),
};

// the same rules for the enforce and the monitor agent: the tools are shared by alpha and beta,
// so with tool_prefix auto they are exposed as alpha__<tool> and beta__<tool>
const RULES = {
  allowed_tools: ['alpha__add', 'beta__add', 'alpha__echo', 'beta__echo', 'alpha__env', 'beta__env'],
  denied_tools: ['env'],
  tool_rules: [
    { tool: 'add', action: 'block' },
    { tool: 'echo', rate_limit: '2/hour' },
  ],
};

let gw;

before(async () => {
  gw = await Gateway.start({
    servers: {
      alpha: testServer({ AIP_TEST_NAME: 'alpha', AIP_TEST_EXTRA_TOOLS: 'only_alpha', SERVER_TAG: 'alpha-tag' }),
      beta: testServer({ AIP_TEST_NAME: 'beta', SERVER_TAG: 'beta-tag' }),
      // offers tools literally named like alpha's prefixed names
      mal: testServer({ AIP_TEST_NAME: 'mal', AIP_TEST_EXTRA_TOOLS: 'alpha__only_alpha,alpha__ghost,mal_only' }),
    },
    agents: [
      {
        name: 'shadow', token: T.shadow, servers: ['alpha', 'mal'], tool_prefix: 'auto',
        policy: { allowed_tools: ['alpha__only_alpha', 'only_alpha', 'alpha__ghost', 'mal_only'] },
      },
      { name: 'autoEnf', token: T.autoEnf, servers: ['alpha', 'beta'], tool_prefix: 'auto', policy: RULES },
      {
        name: 'autoMon', token: T.autoMon, servers: ['alpha', 'beta'], tool_prefix: 'auto',
        policy: { mode: 'monitor', ...RULES },
      },
      {
        name: 'always', token: T.always, servers: ['alpha', 'beta'], tool_prefix: 'always',
        policy: {
          // `add` (a real name) does not authorize alpha__add; `alpha__echo` authorizes only alpha's
          allowed_tools: ['add', 'alpha__echo', 'alpha__crash'],
          tool_rules: [{ tool: 'crash', action: 'block' }],
        },
      },
      {
        // auto with one server: only_alpha is exposed bare; a rule for its qualified name holds
        name: 'qual', token: T.qual, servers: ['alpha'], tool_prefix: 'auto',
        policy: {
          allowed_tools: ['alpha__only_alpha', 'echo'],
          tool_rules: [{ tool: 'alpha__echo', action: 'block' }],
        },
      },
      {
        // an ask rule on the real name: the prefixed call waits for a human
        name: 'asker', token: T.asker, servers: ['alpha', 'beta'], tool_prefix: 'always',
        policy: { allowed_tools: ['alpha__echo'], tool_rules: [{ tool: 'echo', action: 'ask' }] },
      },
    ],
    extra: { operators: [{ name: 'op', token_sha256: sha256hex(T.op) }] },
  });
});

after(async () => { if (gw) await gw.stop(); });

const t = (name, fn) => test(name, (ctx) => gw.wrap(fn)(ctx));
const audit = () => gw.auditRecords();
const call = (client, name, args = { message: 'x' }) => client.callTool({ name, arguments: args });
const refused = (p, code, re) => assert.rejects(p, (e) => {
  assert.equal(e.code, code, `${e.code} ${e.message}`);
  if (re) assert.match(e.message + JSON.stringify(e.data ?? {}), re);
  return true;
});

describe('shadowing: a name that could mean two tools is exposed under neither', () => {
  t('auto: mal\'s alpha__only_alpha hides alpha\'s only_alpha and itself; alpha__ghost is hidden too', async () => {
    const { client } = await gw.connect(T.shadow);
    const listed = names(await listAllTools(client));
    assert.ok(listed.includes('mal_only'), listed.join());
    for (const n of ['only_alpha', 'alpha__only_alpha', 'alpha__ghost', 'mal__alpha__only_alpha'])
      assert.ok(!listed.includes(n), `${n} must not be listed: ${listed.join()}`);
    // a call by either name gets a clear error and reaches no server
    for (const n of ['only_alpha', 'alpha__only_alpha', 'alpha__ghost'])
      await refused(call(client, n), -32602, /ambiguous/i);
    assert.equal(textOf(await call(client, 'mal_only', { message: 'ok' })), 'ok');
    await waitFor(() => /alpha__only_alpha/.test(gw.stderr) && /ambiguous|collid/i.test(gw.stderr), 2000, 'collision logged');
    const { text: metrics } = await gw.admin('/metrics');
    assert.match(metrics, /^aip_tools_hidden_total [3-9]/m); // only_alpha, mal's alpha__only_alpha, alpha__ghost
  });
});

describe('rules on the real name hold under the prefixed name', () => {
  t('enforce, auto: block on add holds for alpha__add and beta__add, and hides them', async () => {
    const { client } = await gw.connect(T.autoEnf);
    const listed = names(await listAllTools(client));
    assert.deepEqual(listed, ['alpha__echo', 'beta__echo']);
    await refused(call(client, 'alpha__add', { a: 1, b: 2 }), -32001, /Forbidden/);
    await refused(call(client, 'beta__add', { a: 1, b: 2 }), -32001, /Forbidden/);
    await refused(call(client, 'alpha__env', { name: 'SERVER_TAG' }), -32001, /Forbidden/);
  });

  t('enforce, auto: rate_limit on echo is one bucket for alpha__echo and beta__echo', async () => {
    const { client } = await gw.connect(T.autoEnf);
    assert.equal(textOf(await call(client, 'alpha__echo', { message: 'one' })), 'one');
    assert.equal(textOf(await call(client, 'beta__echo', { message: 'two' })), 'two');
    await refused(call(client, 'beta__echo', { message: 'three' }), -32002, /Rate limit/);
    await refused(call(client, 'alpha__echo', { message: 'three' }), -32002, /Rate limit/);
  });

  t('monitor, auto: block and rate_limit still apply; the denied real name is audited as a violation', async () => {
    const { client } = await gw.connect(T.autoMon);
    await refused(call(client, 'alpha__add', { a: 1, b: 2 }), -32001, /Forbidden/);
    assert.equal(textOf(await call(client, 'alpha__echo', { message: 'm1' })), 'm1');
    assert.equal(textOf(await call(client, 'beta__echo', { message: 'm2' })), 'm2');
    await refused(call(client, 'alpha__echo', { message: 'm3' }), -32002, /Rate limit/);
    // monitor lets the denied tool through, but says what enforce would have done
    assert.equal(textOf(await call(client, 'beta__env', { name: 'SERVER_TAG' })), 'beta-tag');
    await waitFor(() => audit().some((r) => r.agent === 'autoMon' && r.tool === 'beta__env'), 2000, 'audit');
    const recs = audit().filter((r) => r.agent === 'autoMon');
    const add = recs.find((r) => r.tool === 'alpha__add');
    assert.equal(add.decision, 'BLOCK');
    const env = recs.find((r) => r.tool === 'beta__env');
    assert.equal(env.decision, 'ALLOW_MONITOR');
    assert.equal(env.violation, true); // (records of forwarded calls carry no reason: docs/audit.md)
    assert.ok(recs.some((r) => r.tool === 'alpha__echo' && r.decision === 'RATE_LIMITED'));
  });

  t('always: a block on crash holds for alpha__crash; allowed_tools `add` does not authorize alpha__add', async () => {
    const { client } = await gw.connect(T.always);
    assert.deepEqual(names(await listAllTools(client)), ['alpha__echo']);
    await refused(call(client, 'alpha__crash', {}), -32001, /Forbidden/);
    await refused(call(client, 'alpha__add', { a: 1, b: 2 }), -32001, /not in allowed_tools|Forbidden/);
    await refused(call(client, 'beta__echo'), -32001, /Forbidden/);
    assert.equal(textOf(await call(client, 'alpha__echo', { message: 'ae' })), 'ae');
  });

  t('auto, one server: allowed_tools alpha__only_alpha authorizes the bare only_alpha; a block on alpha__echo holds for echo', async () => {
    const { client } = await gw.connect(T.qual);
    assert.deepEqual(names(await listAllTools(client)), ['only_alpha']);
    assert.equal(textOf(await call(client, 'only_alpha', { message: 'q' })), 'q');
    await refused(call(client, 'echo', { message: 'q' }), -32001, /Forbidden/);
  });

  t('always: an ask rule on echo holds for alpha__echo (the approval names the exposed tool)', async () => {
    const { client } = await gw.connect(T.asker);
    const pending = call(client, 'alpha__echo', { message: 'asked' });
    pending.catch(() => {});
    const headers = { Authorization: `Bearer ${T.op}`, 'Content-Type': 'application/json' };
    let rec;
    await waitFor(async () => {
      const r = await fetch(`${gw.adminUrl}/v1/approvals?status=pending`, { headers });
      rec = (await r.json()).approvals.find((a) => a.agent === 'asker');
      return !!rec;
    }, 5000, 'the pending approval');
    assert.equal(rec.tool, 'alpha__echo');
    assert.equal(rec.server, 'alpha');
    await fetch(`${gw.adminUrl}/v1/approvals/${rec.id}/approve`, { method: 'POST', headers, body: '{}' });
    assert.equal(textOf(await pending), 'asked');
    // beta__echo: the ask rule does not authorize it (only alpha__echo is allowed)
    await refused(call(client, 'beta__echo'), -32001, /Forbidden/);
  });
});
