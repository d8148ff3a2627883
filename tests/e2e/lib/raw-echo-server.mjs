// A minimal MCP stdio server for byte-exactness tests: its one tool `raw` answers with the
// exact line it received (so a test sees the bytes the gateway forwarded), and every answer
// copies the request's id bytes as they were written (no JSON round trip on our side).
import readline from 'node:readline';

const rl = readline.createInterface({ input: process.stdin });
const idOf = (line) => (line.match(/"id":(-?[0-9][0-9.eE+-]*|"(?:[^"\\]|\\.)*")/) || [])[1];
const send = (id, result) => process.stdout.write(`{"jsonrpc":"2.0","id":${id},"result":${JSON.stringify(result)}}\n`);

rl.on('line', (line) => {
  const msg = JSON.parse(line);
  const id = idOf(line);
  if (msg.method === 'initialize') {
    send(id, { protocolVersion: msg.params.protocolVersion, capabilities: { tools: {} },
      serverInfo: { name: 'raw-echo', version: '1' } });
  } else if (msg.method === 'tools/list') {
    send(id, { tools: [{ name: 'raw', description: 'Returns the request line as received.',
      inputSchema: { type: 'object' } }] });
  } else if (msg.method === 'tools/call') {
    send(id, { content: [{ type: 'text', text: line }] });
  } else if (id !== undefined && msg.method) {
    send(id, {});
  }
});
