// The operator page: everything goes through the approval API with the operator's bearer token.
// Values from the API are only ever put into the page with textContent, never as HTML, and only
// in their display-safe form (the API's `display` fields: bidi controls, invisible characters
// and long padding shown as <U+XXXX> escapes), never the raw strings.
'use strict';

const api = '/v1/approvals';
let token = sessionStorage.getItem('aip-operator-token') || '';
let stream = null;

const $ = (id) => document.getElementById(id);

function headers(extra) {
  return Object.assign({ Authorization: 'Bearer ' + token }, extra || {});
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text == null ? '' : String(text);
  if (cls) td.className = cls;
  return td;
}

// The display-safe form of a record's string field; never falls back to the raw value.
function shown(a, key) { return a.display && typeof a.display[key] === 'string' ? a.display[key] : ''; }

function setStatus(text) { $('status').textContent = text; }

async function decide(id, action, reason) {
  const res = await fetch(`${api}/${id}/${action}`, {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(reason ? { reason } : {}),
  });
  if (!res.ok && res.status !== 409) setStatus(`decision failed: HTTP ${res.status}`);
  await refresh();
}

function pendingRow(tbody, a) {
  const row = tbody.insertRow();
  row.dataset.id = a.id;
  cell(row, shown(a, 'agent'));
  cell(row, shown(a, 'server'));
  cell(row, shown(a, 'tool'));
  const args = row.insertCell();
  const pre = document.createElement('pre');
  pre.textContent = shown(a, 'arguments');
  args.appendChild(pre);
  cell(row, a.expires_at);
  const td = row.insertCell();
  const reason = document.createElement('input');
  reason.className = 'reason';
  reason.placeholder = 'reason (optional)';
  td.appendChild(reason);
  for (const action of ['approve', 'deny']) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = action;
    b.textContent = action === 'approve' ? 'Approve' : 'Deny';
    b.addEventListener('click', () => decide(a.id, action, reason.value));
    td.appendChild(b);
  }
}

function recentRow(tbody, a) {
  const row = tbody.insertRow();
  cell(row, shown(a, 'agent'));
  cell(row, shown(a, 'tool'));
  cell(row, a.status, a.status);
  cell(row, shown(a, 'decided_by'));
  cell(row, shown(a, 'reason'));
  cell(row, a.decided_at);
}

async function load(query) {
  const res = await fetch(`${api}?${query}`, { headers: headers() });
  if (res.status === 401) throw new Error('unauthorized');
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const page = await res.json();
  page.approvals.more = page.next_offset != null;
  return page.approvals;
}

async function refresh() {
  try {
    const [pending, all] = await Promise.all([load('status=pending&limit=200'), load('limit=50')]);
    const pb = $('pending').tBodies[0], rb = $('recent').tBodies[0];
    pb.replaceChildren();
    rb.replaceChildren();
    pending.forEach((a) => pendingRow(pb, a));
    all.filter((a) => a.status !== 'pending').forEach((a) => recentRow(rb, a));
    $('pending-count').textContent = `(${pending.length}${pending.more ? '+' : ''})`;
    $('empty').hidden = pending.length > 0;
    setStatus('signed in, live');
    return true;
  } catch (e) {
    setStatus(e.message === 'unauthorized' ? 'wrong token' : `error: ${e.message}`);
    return false;
  }
}

// Server-sent events read with fetch, since EventSource cannot send an Authorization header.
async function listen() {
  if (stream) stream.abort();
  if (!token) return; // signed out while a reconnect was scheduled
  const mine = stream = new AbortController();
  try {
    const res = await fetch(`${api}/events`, { headers: headers(), signal: mine.signal });
    if (res.status === 401) {
      setStatus('wrong token');
      return;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    // Anything created before the stream was open (between sign-in and now, or while it was
    // down) sent no event we saw: reload the lists once the stream is open.
    await refresh();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (event.includes('data:')) await refresh();
      }
    }
  } catch (e) {
    if (e.name === 'AbortError') return;
    setStatus(`event stream: ${e.message}; reconnecting`);
  }
  if (stream !== mine) return; // a newer stream took over (or signed out)
  setTimeout(() => { if (stream === mine) listen(); }, 2000); // the stream ended: reconnect
}

async function signIn(t) {
  token = t;
  if (await refresh()) {
    sessionStorage.setItem('aip-operator-token', token);
    $('login').hidden = true;
    $('queue').hidden = false;
    listen();
  }
}

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  signIn($('token').value);
});
$('logout').addEventListener('click', () => {
  sessionStorage.removeItem('aip-operator-token');
  if (stream) stream.abort();
  stream = null;
  token = '';
  $('queue').hidden = true;
  $('login').hidden = false;
  setStatus('signed out');
});
if (token) signIn(token);
