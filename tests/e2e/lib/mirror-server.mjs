// A tiny stdio "MCP server" for the wrapper's raw tests: it shows what reached it.
//
// - prints a non-JSON banner on stdout first (the wrapper must log and drop it; MIRROR_BANNER);
// - initialize: answers with the client's protocolVersion;
// - notifications/initialized: sends a server->client request {"id":"srv-1","method":"ping"};
// - any other request: {"result":{"echo":<the message as received>}};
// - a notification: a notifications/message whose data is {"notified":<message>};
// - a response or error (no method): a notifications/message whose data is {"received":<msg>};
// - an array (batch): each element as above, answered one by one;
// - a line it cannot parse: {"jsonrpc":"2.0","id":null,"error":{"code":-32700,...}};
// - stdin EOF: exits with MIRROR_EXIT (default 0); SIGTERM is ignored when MIRROR_IGNORE_TERM=1.
import readline from 'node:readline';

const out = (m) => process.stdout.write(JSON.stringify(m) + '\n');
process.stdout.write(`${process.env.MIRROR_BANNER || 'mirror server starting (this line is not JSON)'}\n`);
if (process.env.MIRROR_IGNORE_TERM === '1') process.on('SIGTERM', () => {});

function handle(msg) {
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return;
  if (typeof msg.method !== 'string') {
    out({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: { received: msg } } });
    return;
  }
  if (msg.id === undefined) {
    out({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: { notified: msg } } });
    if (msg.method === 'notifications/initialized') out({ jsonrpc: '2.0', id: 'srv-1', method: 'ping' });
    return;
  }
  if (msg.method === 'initialize') {
    out({
      jsonrpc: '2.0', id: msg.id,
      result: {
        protocolVersion: msg.params?.protocolVersion || '2025-11-25',
        capabilities: { tools: {} },
        serverInfo: { name: 'mirror', version: '1.0.0' },
      },
    });
    return;
  }
  out({ jsonrpc: '2.0', id: msg.id, result: { echo: msg } });
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    out({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    return;
  }
  if (Array.isArray(msg)) msg.forEach(handle);
  else handle(msg);
});
rl.on('close', () => process.exit(Number(process.env.MIRROR_EXIT || 0)));
