// Issue 11, the approval queue: the decision API survives any body (arrays, scalars, wrong
// types, invalid JSON, over-size), an approval lets exactly one execution through (live
// delivery consumes it; a retry after a disconnect claims it once, also across restarts and
// between two racing sessions), display-safe fields for invisible and bidi characters (API and
// CLI), the per-agent cap on pending approvals, the stored-arguments size cap and the paged list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AIP_BIN, Gateway, newToken, sha256hex, testServer, textOf, waitFor } from './lib/harness.mjs';

const run = promisify(execFile);
let gw;
const opToken = newToken('operator');
const botToken = newToken('agent');
const capToken = newToken('agent');

before(async () => {
  gw = await Gateway.start({
    servers: { t: testServer() },
    agents: [
      { name: 'bot', token: botToken, servers: ['t'], policy: { tool_rules: [{ tool: 'echo', action: 'ask' }] } },
      { name: 'capbot', token: capToken, servers: ['t'], policy: { tool_rules: [{ tool: 'echo', action: 'ask' }] } },
    ],
    extra: {
      operators: [{ name: 'alice', token_sha256: sha256hex(opToken) }],
      approvals: { timeout: '10m', max_pending_per_agent: 3, max_args_size: '2KiB' },
      shutdown_grace: '1s',
    },
  });
});
after(async () => { await gw?.stop(); });

const op = (path, opts = {}) => fetch(`${gw.adminUrl}${path}`, {
  ...opts, headers: { Authorization: `Bearer ${opToken}`, 'Content-Type': 'application/json', ...(opts.headers || {}) },
});
const cli = (args) =>
  run(AIP_BIN, ['approvals', ...args, '--admin', gw.adminUrl], { env: { ...process.env, AIP_OPERATOR_TOKEN: opToken } })
    .then((r) => ({ code: 0, out: r.stdout }), (e) => ({ code: e.code, out: e.stdout, err: e.stderr }));

async function pendingWhere(pred, what) {
  let found;
  await waitFor(async () => {
    const r = await op('/v1/approvals?status=pending');
    found = (await r.json()).approvals.find(pred);
    return !!found;
  }, 5000, what);
  return found;
}
const pendingFor = (message) => pendingWhere((a) => a.arguments?.message === message, `a pending approval for ${message}`);
const auditLines = () => gw.auditRecords();
const decide = (id, verb) => op(`/v1/approvals/${id}/${verb}`, { method: 'POST', body: '{}' });

// ---- item 2: every body is checked for its type -------------------------------------------------

test('decision bodies of every wrong shape get a clean 400 and the gateway stays up', () => gw.wrap(async () => {
  const { client } = await gw.connect(botToken);
  const call = client.callTool({ name: 'echo', arguments: { message: 'body-shapes' } });
  call.catch(() => {});
  const a = await pendingFor('body-shapes');
  const bodies = ['[]', '["x"]', '[{"reason":"x"}]', '"x"', '1', 'null', 'true', '{"reason":1}',
                  '{"reason":["x"]}', '{"reason":{"a":1}}', '{"reason":null}', '{', '{"reason":"x"',
                  '\u0000', '{"reason":"' + 'x'.repeat(2000) + '"}', '{"reason":"' + 'x'.repeat(20000) + '"}',
                  ' '.repeat(17000) + '{}'];
  for (const id of [a.id, '0123456789abcdef0123456789abcdef']) {
    for (const verb of ['approve', 'deny']) {
      for (const body of bodies) {
        const r = await op(`/v1/approvals/${id}/${verb}`, { method: 'POST', body });
        assert.equal(r.status, 400, `${verb} ${body.slice(0, 40)}`);
        assert.equal((await r.json()).error, 'bad_request');
      }
    }
  }
  // past the HTTP layer's body limit the answer is 413, as for any request
  // (or the connection is closed before the body is sent)
  const big = await op(`/v1/approvals/${a.id}/approve`, { method: 'POST', body: '{"reason":"' + 'x'.repeat(5 << 20) + '"}' })
    .then((x) => x.status, () => 'closed');
  assert.ok(big === 413 || big === 'closed', String(big));
  const r = await op(`/v1/approvals/${a.id}`);
  assert.equal(r.status, 200);
  assert.equal((await r.json()).status, 'pending'); // none of them decided anything
  await decide(a.id, 'deny');
  await assert.rejects(call, (e) => e.code === -32004);
})());

// ---- item 3: one approval, one execution ----------------------------------------------------------

test('approved and answered live, the identical call sent again asks again', () => gw.wrap(async () => {
  const { client } = await gw.connect(botToken);
  const call = client.callTool({ name: 'echo', arguments: { message: 'live-once' } });
  const a = await pendingFor('live-once');
  const approved = await decide(a.id, 'approve');
  assert.equal(approved.status, 200);
  assert.equal(textOf(await call), 'live-once');
  assert.equal(typeof (await approved.json()).used_at, 'string'); // consumed by the live call
  const again = client.callTool({ name: 'echo', arguments: { message: 'live-once' } });
  again.catch(() => {});
  const b = await pendingFor('live-once');
  assert.notEqual(b.id, a.id);
  await decide(b.id, 'deny');
  await assert.rejects(again, (e) => e.code === -32004);
})());

test('two sessions racing for an approval made after a disconnect: exactly one runs', () => gw.wrap(async () => {
  const { client } = await gw.connect(botToken);
  const ac = new AbortController();
  const call = client.callTool({ name: 'echo', arguments: { message: 'race-me' } }, undefined, { signal: ac.signal });
  call.catch(() => {});
  const a = await pendingFor('race-me');
  ac.abort();
  await assert.rejects(call);
  const approved = await decide(a.id, 'approve');
  assert.equal(approved.status, 200);
  assert.equal((await approved.json()).used_at, null); // nobody waiting: left for a retry
  const c1 = (await gw.connect(botToken)).client, c2 = (await gw.connect(botToken)).client;
  const p1 = c1.callTool({ name: 'echo', arguments: { message: 'race-me' } });
  const p2 = c2.callTool({ name: 'echo', arguments: { message: 'race-me' } });
  p1.catch(() => {});
  p2.catch(() => {});
  const b = await pendingFor('race-me'); // the loser asks again
  await decide(b.id, 'deny');
  const res = await Promise.allSettled([p1, p2]);
  assert.equal(res.filter((x) => x.status === 'fulfilled' && textOf(x.value) === 'race-me').length, 1);
  assert.equal(res.filter((x) => x.status === 'rejected' && x.reason.code === -32004).length, 1);
  assert.equal(typeof (await (await op(`/v1/approvals/${a.id}`)).json()).used_at, 'string');
})());

test('consumed and claimable states survive a restart', () => gw.wrap(async () => {
  let { client } = await gw.connect(botToken);
  // (1) delivered live, then a restart: the identical call still asks again
  const live = client.callTool({ name: 'echo', arguments: { message: 'restart-live' } });
  const a = await pendingFor('restart-live');
  await decide(a.id, 'approve');
  assert.equal(textOf(await live), 'restart-live');
  // (2) never delivered (the client went away), approved, then a restart: claimable once
  const ac = new AbortController();
  const gone = client.callTool({ name: 'echo', arguments: { message: 'restart-gone' } }, undefined, { signal: ac.signal });
  gone.catch(() => {});
  const b = await pendingFor('restart-gone');
  ac.abort();
  await assert.rejects(gone);
  await decide(b.id, 'approve');
  await gw.restart();
  ({ client } = await gw.connect(botToken));
  const again = client.callTool({ name: 'echo', arguments: { message: 'restart-live' } });
  again.catch(() => {});
  const c = await pendingFor('restart-live');
  assert.notEqual(c.id, a.id);
  await decide(c.id, 'deny');
  await assert.rejects(again, (e) => e.code === -32004);
  assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: 'restart-gone' } })), 'restart-gone');
  const twice = client.callTool({ name: 'echo', arguments: { message: 'restart-gone' } });
  twice.catch(() => {});
  const d = await pendingFor('restart-gone');
  assert.notEqual(d.id, b.id);
  await decide(d.id, 'deny');
  await assert.rejects(twice, (e) => e.code === -32004);
})());

// ---- item 11: display-safe fields -------------------------------------------------------------------

const tricky = { message: 'disp', cmd: 'rm -rf /tmp/x\u202e;txt.exe', zw: 'a\u200bb\ufeffc\u2066d', pad: 'ok' + ' '.repeat(300) + '; curl evil', nb: 'x\u00a0\u00a0\u00a0y', c1: 'q\u0085r' };
const rawInvisible = /[\u202a-\u202e\u2066-\u2069\u200b-\u200f\u061c\ufeff\u2060\u0085\u00a0]/;

test('the API keeps the raw arguments and adds a display form with invisible characters made visible', () => gw.wrap(async () => {
  const { client } = await gw.connect(botToken);
  const call = client.callTool({ name: 'echo', arguments: tricky });
  call.catch(() => {});
  const a = await pendingWhere((x) => x.arguments?.message === 'disp', 'the tricky approval');
  assert.deepEqual(a.arguments, tricky); // raw, as JSON
  const shown = a.display.arguments;
  assert.equal(typeof shown, 'string');
  assert.doesNotMatch(shown, rawInvisible);
  for (const s of ['<U+202E>', '<U+200B>', '<U+FEFF>', '<U+2066>', '<U+0085>', '<U+00A0 x3>', '<U+0020 x300>', '; curl evil'])
    assert.ok(shown.includes(s), `${s} in ${shown}`);
  assert.ok(shown.length < 400, 'the padding is collapsed');
  assert.equal(a.display.tool, 'echo');
  // the CLI prints the display form, and its JSON output is ASCII-only
  let r = await cli(['show', a.id]);
  assert.equal(r.code, 0, r.err);
  assert.doesNotMatch(r.out, rawInvisible);
  assert.ok(r.out.includes('<U+202E>') && r.out.includes('<U+0020 x300>'), r.out);
  r = await cli(['list', '--status', 'pending']);
  assert.equal(r.code, 0, r.err);
  assert.doesNotMatch(r.out, rawInvisible);
  assert.ok(r.out.includes('<U+202E>'), r.out);
  r = await cli(['show', a.id, '--json']);
  assert.equal(r.code, 0, r.err);
  assert.doesNotMatch(r.out, /[^\x00-\x7f]/);
  assert.deepEqual(JSON.parse(r.out).arguments, tricky);
  await decide(a.id, 'deny');
  await assert.rejects(call, (e) => e.code === -32004);
})());

// ---- item 13: per-agent cap, stored-size cap, paged list ----------------------------------------------

test('over max_pending_per_agent an ask is refused with a clear error and audited; other agents are not affected', () => gw.wrap(async () => {
  const { client } = await gw.connect(capToken);
  const held = [];
  for (let i = 0; i < 3; i++) {
    const c = client.callTool({ name: 'echo', arguments: { message: `cap-${i}` } });
    c.catch(() => {});
    held.push(c);
    await pendingFor(`cap-${i}`);
  }
  await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'cap-3' } }),
    (e) => e.code === -32002 && /pending approvals/i.test(e.message));
  await waitFor(() => auditLines().some((e) => e.decision === 'DENIED' && /pending approvals/i.test(e.reason || '')), 5000, 'the refusal audited');
  // another agent still asks
  const other = (await gw.connect(botToken)).client;
  const o = other.callTool({ name: 'echo', arguments: { message: 'cap-other' } });
  o.catch(() => {});
  const oa = await pendingFor('cap-other');
  await decide(oa.id, 'deny');
  await assert.rejects(o);
  // a decided one frees a slot
  const first = await pendingFor('cap-0');
  await decide(first.id, 'deny');
  await assert.rejects(held[0]);
  const next = client.callTool({ name: 'echo', arguments: { message: 'cap-4' } });
  next.catch(() => {});
  const n = await pendingFor('cap-4');
  for (const m of ['cap-1', 'cap-2']) await decide((await pendingFor(m)).id, 'deny');
  await decide(n.id, 'deny');
  await Promise.allSettled([...held, next]);
})());

test('arguments over max_args_size are stored truncated; the approved call runs with the full arguments', () => gw.wrap(async () => {
  const { client } = await gw.connect(botToken);
  const big = 'B'.repeat(10000);
  const call = client.callTool({ name: 'echo', arguments: { message: big } });
  const a = await pendingWhere((x) => x.arguments_truncated === true, 'the truncated approval');
  assert.equal(typeof a.arguments, 'string');
  assert.ok(a.arguments.length <= 2048, `stored ${a.arguments.length}`);
  assert.ok(a.arguments_size > 10000);
  assert.ok(JSON.stringify(a).length < 8000);
  assert.match(a.display.arguments, /truncated/);
  await decide(a.id, 'approve');
  assert.equal(textOf(await call), big);
})());

test('the list is paged: bounded page size, next_offset', () => gw.wrap(async () => {
  const { client } = await gw.connect(botToken);
  for (let i = 0; i < 3; i++) {
    const c = client.callTool({ name: 'echo', arguments: { message: `page-${i}` } });
    c.catch(() => {});
    await pendingFor(`page-${i}`);
  }
  let r = await op('/v1/approvals?status=pending&limit=500');
  let j = await r.json();
  const total = j.approvals.length;
  assert.ok(total >= 3);
  assert.equal(j.next_offset, null);
  r = await op('/v1/approvals?status=pending&limit=2');
  j = await r.json();
  assert.equal(j.approvals.length, 2);
  assert.equal(j.next_offset, 2);
  r = await op(`/v1/approvals?status=pending&limit=2&offset=${total - 1}`);
  j = await r.json();
  assert.equal(j.approvals.length, 1);
  assert.equal(j.next_offset, null);
  for (const q of ['limit=0', 'limit=501', 'limit=1&limit=2', 'offset=x']) {
    r = await op(`/v1/approvals?${q}`);
    assert.equal(r.status, 400, q);
  }
  const c = await cli(['list', '--status', 'pending', '--limit', '2']);
  assert.equal(c.code, 0, c.err);
  assert.match(c.out, /--offset 2/);
  for (let i = 0; i < 3; i++) await decide((await pendingFor(`page-${i}`)).id, 'deny');
})());

test('the gateway is still up', async () => {
  const r = await op('/v1/approvals');
  assert.equal(r.status, 200);
});
