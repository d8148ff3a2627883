// An SDK Streamable HTTP server that uses the MCP 2025-11-25 SSE polling pattern, for the
// gateway's upstream resumption (tests/e2e/resume.test.mjs): an InMemoryEventStore (so every
// event has an id and a priming event opens each POST stream), retryInterval RETRY_MS, and a
// tool `poll_slow {ms}` that closes its POST stream at once (closeSSEStream), waits `ms`, then
// answers: the answer only reaches a client that resumes with GET + Last-Event-ID.
// Listens on 127.0.0.1:PORT; prints "listening <port>" and "resume <last-event-id>" per GET
// that resumes a stream.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
import { z } from 'zod';

const RETRY_MS = Number(process.env.RETRY_MS || 200);
const transports = new Map();

function newServer() {
  const server = new McpServer({ name: 'polling', version: '1.0.0' });
  server.registerTool('poll_slow', {
    description: 'closes its SSE stream, then answers after ms',
    inputSchema: { ms: z.number() },
  }, async ({ ms }, extra) => {
    extra.closeSSEStream?.();
    await new Promise((r) => setTimeout(r, ms));
    return { content: [{ type: 'text', text: `polled ${ms}` }] };
  });
  return server;
}

const srv = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
  const sid = req.headers['mcp-session-id'];
  if (req.method === 'GET' && req.headers['last-event-id']) {
    process.stdout.write(`resume ${req.headers['last-event-id']}\n`);
  }
  let t = sid && transports.get(sid);
  if (!t) {
    if (sid || req.method !== 'POST' || body?.method !== 'initialize') {
      res.writeHead(sid ? 404 : 400).end();
      return;
    }
    t = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new InMemoryEventStore(),
      retryInterval: RETRY_MS,
      onsessioninitialized: (id) => transports.set(id, t),
    });
    t.onclose = () => { if (t.sessionId) transports.delete(t.sessionId); };
    await newServer().connect(t);
  }
  await t.handleRequest(req, res, body);
});
srv.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${srv.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
