// The operator web page (/approvals) driven in headless Chromium (Debian's /usr/bin/chromium,
// through playwright-core): sign in with the operator token, watch a call whose policy says
// `ask` appear live (SSE), approve or deny it with a reason, and the agent's call ends
// accordingly. Values from the API must be shown as text (no HTML injection), the page's
// Content-Security-Policy must forbid inline script, and a wrong token shows an error.
//
// The browser may reach 127.0.0.1 only: every request of the context is routed through a check
// that aborts anything else, the host resolver maps every name to nothing, every other address
// goes to a proxy that does not exist, and background networking is off. The test fails if anything else was even attempted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { Gateway, newToken, sha256hex, testServer, textOf, waitFor } from './lib/harness.mjs';

const CHROMIUM = '/usr/bin/chromium';
// Chromium is installed by scripts/setup.sh: a missing browser fails the suite, unless explicitly waived.
const skip = process.env.AIP_E2E_NO_BROWSER ? 'AIP_E2E_NO_BROWSER is set' : false;

let gw;
let browser;
let context;
const opToken = newToken('operator');
const agentToken = newToken('agent');
const offLoopback = []; // URLs the browser tried that were not on 127.0.0.1

before(async () => {
  if (skip) return;
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh`);
  gw = await Gateway.start({
    servers: { t: testServer() },
    agents: [{
      name: 'bot', token: agentToken, servers: ['t'],
      policy: { allowed_tools: ['add'], tool_rules: [{ tool: 'echo', action: 'ask' }] },
    }],
    extra: {
      operators: [{ name: 'alice', token_sha256: sha256hex(opToken) }],
      approvals: { timeout: '30s' },
    },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      // anything not on loopback (which Chromium never proxies) goes to a proxy that is not there
      '--proxy-server=http://127.0.0.1:9'],
  });
  context = await browser.newContext();
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === '127.0.0.1') return route.continue();
    offLoopback.push(u.href);
    return route.abort('blockedbyclient');
  });
});

after(async () => {
  await browser?.close();
  await gw?.stop();
});


/** A fresh tab on the page; console errors and page errors are collected. */
async function openPage() {
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  await page.goto(`${gw.adminUrl}/approvals`);
  return page;
}

/** Signs in and waits until the page's event stream is open (so what follows arrives live). */
async function signIn(page, token = opToken) {
  const stream = page.waitForResponse((r) => r.url().endsWith('/v1/approvals/events') && r.status() === 200);
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  await stream;
  await page.locator('#status', { hasText: 'signed in, live' }).waitFor();
  assert.equal(await page.isVisible('#queue'), true);
  assert.equal(await page.isVisible('#login'), false);
}

const pendingRow = (page, text) => page.locator('#pending tbody tr', { hasText: text });

const op = (p, opts = {}) => fetch(`${gw.adminUrl}${p}`, {
  ...opts, headers: { Authorization: `Bearer ${opToken}`, 'Content-Type': 'application/json' },
});

test('the page is served with a CSP that forbids inline script, and the browser enforces it', { skip }, () => gw.wrap(async () => {
  for (const p of ['/approvals', '/approvals.js', '/approvals.css']) {
    const r = await fetch(`${gw.adminUrl}${p}`);
    assert.equal(r.status, 200, p);
    const csp = r.headers.get('content-security-policy') || '';
    assert.match(csp, /default-src 'none'/, p);
    assert.match(csp, /script-src 'self'(;|$)/, p);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, p);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    await r.arrayBuffer();
  }
  const page = await openPage();
  // An inline script added to the document must not run; the page's own script did run.
  const ran = await page.evaluate(async () => {
    const s = document.createElement('script');
    s.textContent = 'window.inlineRan = 1';
    document.body.appendChild(s);
    const b = document.createElement('button');
    b.setAttribute('onclick', 'window.handlerRan = 1');
    document.body.appendChild(b);
    b.click();
    await new Promise((r) => setTimeout(r, 100));
    return { inline: window.inlineRan, handler: window.handlerRan };
  });
  assert.deepEqual(ran, { inline: undefined, handler: undefined });
  assert.equal(await page.isVisible('#login-form'), true, 'the page script ran (login form shown)');
  await page.close();
})());

test('a wrong token shows an error and keeps the queue hidden', { skip }, () => gw.wrap(async () => {
  const page = await openPage();
  for (const bad of ['wrong-token', agentToken]) {
    await page.fill('#token', bad);
    await page.click('#login-form button[type=submit]');
    await page.locator('#status', { hasText: 'wrong token' }).waitFor({ timeout: 5000 });
    assert.equal(await page.isVisible('#queue'), false);
    assert.equal(await page.isVisible('#login'), true);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('aip-operator-token')), null,
      'a refused token is not kept');
  }
  await page.close();
})());

test('a pending call appears live, is approved with a reason, and the agent gets the result', { skip }, () => gw.wrap(async () => {
  const page = await openPage();
  await signIn(page);
  assert.equal(await page.isVisible('#empty'), true);
  const { client } = await gw.connect(agentToken);
  const call = client.callTool({ name: 'echo', arguments: { message: 'page-approve-me' } });
  call.catch(() => {});
  const row = pendingRow(page, 'page-approve-me');
  await row.waitFor({ timeout: 5000 });
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[0], 'bot');
  assert.equal(cells[1], 't');
  assert.equal(cells[2], 'echo');
  assert.equal(JSON.parse(cells[3]).message, 'page-approve-me');
  assert.equal(await page.textContent('#pending-count'), '(1)');
  assert.equal(await page.isVisible('#empty'), false);
  await row.locator('input.reason').fill('looks fine');
  await row.locator('button.approve').click();
  assert.equal(textOf(await call), 'page-approve-me');
  // the row leaves the queue and shows up among the recent decisions
  await row.waitFor({ state: 'detached', timeout: 5000 });
  const recent = page.locator('#recent tbody tr', { hasText: 'looks fine' });
  await recent.waitFor({ timeout: 5000 });
  assert.deepEqual((await recent.locator('td').allTextContents()).slice(0, 5),
    ['bot', 'echo', 'approved', 'alice', 'looks fine']);
  const list = (await (await op('/v1/approvals?status=approved')).json()).approvals;
  const rec = list.find((a) => a.arguments?.message === 'page-approve-me');
  assert.equal(rec.decided_by, 'alice');
  assert.equal(rec.reason, 'looks fine');
  assert.deepEqual(page.errors, []);
  await page.close();
})());

test('deny from the page: the agent gets -32004 User denied', { skip }, () => gw.wrap(async () => {
  const page = await openPage();
  await signIn(page);
  const { client } = await gw.connect(agentToken);
  const call = client.callTool({ name: 'echo', arguments: { message: 'page-deny-me' } });
  call.catch(() => {});
  const row = pendingRow(page, 'page-deny-me');
  await row.waitFor({ timeout: 5000 });
  await row.locator('input.reason').fill('not today');
  await row.locator('button.deny').click();
  await assert.rejects(call, (e) => e.code === -32004 && /User denied/.test(e.message));
  const recent = page.locator('#recent tbody tr', { hasText: 'not today' });
  await recent.waitFor({ timeout: 5000 });
  assert.equal(await recent.locator('td.denied').textContent(), 'denied');
  await page.close();
})());

test('a call that arrives before the event stream is open is still shown', { skip }, () => gw.wrap(async () => {
  const page = await openPage();
  let release;
  const gate = new Promise((r) => { release = r; });
  await page.route('**/v1/approvals/events', async (route) => { await gate; await route.fallback(); });
  await page.fill('#token', opToken);
  await page.click('#login-form button[type=submit]');
  await page.locator('#status', { hasText: 'signed in, live' }).waitFor();
  // the lists were loaded, the stream is held back: a call created now sends its event to nobody
  const { client } = await gw.connect(agentToken);
  const call = client.callTool({ name: 'echo', arguments: { message: 'page-early-bird' } });
  call.catch(() => {});
  let rec;
  await waitFor(async () => {
    const list = (await (await op('/v1/approvals?status=pending')).json()).approvals;
    rec = list.find((a) => a.arguments?.message === 'page-early-bird');
    return rec;
  }, 5000, 'the pending record');
  release();
  await pendingRow(page, 'page-early-bird').waitFor({ timeout: 5000 });
  await op(`/v1/approvals/${rec.id}/deny`, { method: 'POST', body: '{}' });
  await assert.rejects(call, (e) => e.code === -32004);
  await page.close();
})());

test('HTML in arguments and reasons is shown as text, never parsed', { skip }, () => gw.wrap(async () => {
  const page = await openPage();
  await signIn(page);
  const evil = '<img src=x onerror="window.pwned=1">';
  const { client } = await gw.connect(agentToken);
  const call = client.callTool({ name: 'echo', arguments: { message: evil, '<b>key</b>': '<script>window.pwned=2</script>' } });
  call.catch(() => {});
  const row = pendingRow(page, 'onerror');
  await row.waitFor({ timeout: 5000 });
  const shown = JSON.parse(await row.locator('pre').textContent());
  assert.equal(shown.message, evil);
  assert.equal(shown['<b>key</b>'], '<script>window.pwned=2</script>');
  assert.equal(await page.locator('img').count(), 0, 'no img element was created');
  assert.equal(await page.locator('#queue b, #queue script').count(), 0);
  const reason = '<img src=y onerror="window.pwned=3">';
  await row.locator('input.reason').fill(reason);
  await row.locator('button.deny').click();
  await assert.rejects(call, (e) => e.code === -32004);
  const recent = page.locator('#recent tbody tr', { hasText: 'src=y' });
  await recent.waitFor({ timeout: 5000 });
  assert.equal(await recent.locator('td').nth(4).textContent(), reason);
  assert.equal(await page.locator('img').count(), 0);
  await new Promise((r) => setTimeout(r, 200)); // an onerror would fire by now
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.deepEqual(page.errors, []);
  await page.close();
})());

test('bidi controls, invisible characters and padding are shown as escapes, never raw', { skip }, () => gw.wrap(async () => {
  const page = await openPage();
  await signIn(page);
  const { client } = await gw.connect(agentToken);
  const args = { message: 'page-bidi', cmd: 'cat notes\u202etxt.sh', zw: 'a\u200bb\u2066c', pad: 'ok' + ' '.repeat(200) + '; curl evil' };
  const call = client.callTool({ name: 'echo', arguments: args });
  call.catch(() => {});
  const row = pendingRow(page, 'page-bidi');
  await row.waitFor({ timeout: 5000 });
  const text = await row.locator('pre').textContent();
  assert.doesNotMatch(text, /[\u202a-\u202e\u2066-\u2069\u200b-\u200f]/);
  for (const s of ['<U+202E>', '<U+200B>', '<U+2066>', '<U+0020 x200>', '; curl evil']) assert.ok(text.includes(s), `${s} in ${text}`);
  const rowText = await row.textContent();
  assert.doesNotMatch(rowText, /[\u202a-\u202e\u2066-\u2069\u200b-\u200f]/);
  await row.locator('input.reason').fill('no \u202e thanks');
  await row.locator('button.deny').click();
  await assert.rejects(call, (e) => e.code === -32004);
  const recent = page.locator('#recent tbody tr', { hasText: 'thanks' });
  await recent.waitFor({ timeout: 5000 });
  assert.equal(await recent.locator('td').nth(4).textContent(), 'no <U+202E> thanks');
  assert.deepEqual(page.errors, []);
  await page.close();
})());

test('signed in survives a reload (sessionStorage); sign out forgets the token', { skip }, () => gw.wrap(async () => {
  const page = await openPage();
  await signIn(page);
  const stream = page.waitForResponse((r) => r.url().endsWith('/v1/approvals/events') && r.status() === 200);
  await page.reload();
  await stream;
  await page.locator('#status', { hasText: 'signed in, live' }).waitFor();
  await page.click('#logout');
  assert.equal(await page.textContent('#status'), 'signed out');
  assert.equal(await page.isVisible('#login'), true);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('aip-operator-token')), null);
  // no request with an empty token keeps going after sign-out
  const after = [];
  page.on('request', (r) => after.push(r.url()));
  await new Promise((r) => setTimeout(r, 2500));
  assert.deepEqual(after, []);
  await page.close();
})());

test('the browser reached nothing but 127.0.0.1', { skip }, () => {
  assert.deepEqual(offLoopback, []);
});
