// An SDK Streamable HTTP server that uses the MCP 2025-11-25 SSE polling pattern, for the
// gateway's upstream resumption (tests/e2e/resume.test.mjs): an event store (so every
// event has an id and a priming event opens each POST stream), retryInterval RETRY_MS, and a
// tool `poll_slow {ms}` that closes its POST stream at once (closeSSEStream), waits `ms`, then
// answers: the answer only reaches a client that resumes with GET + Last-Event-ID; and a tool
// `drop_get_then_notify {ms}` that sends notifications/tools/list_changed, closes the standalone
// GET stream and sends another
// notifications/tools/list_changed `ms` later (kept in the event store until the client resumes).
// Listens on 127.0.0.1:PORT; prints "listening <port>" and "resume <last-event-id>" per GET
// that resumes a stream.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const RETRY_MS = Number(process.env.RETRY_MS || 200);

// The SDK's EventStore interface, in memory. (Not the SDK's examples/InMemoryEventStore: it
// takes the stream id as the text before the first "_" of an event id, which for the
// standalone GET stream "_GET_stream" is "", so it never replays that stream.)
class EventStore {
  constructor() { this.events = []; this.n = 0; }
  async storeEvent(streamId, message) {
    const id = `${++this.n}.${Buffer.from(streamId).toString('hex')}`;
    this.events.push({ id, streamId, message });
    return id;
  }
  async getStreamIdForEventId(id) { return this.events.find((e) => e.id === id)?.streamId; }
  async replayEventsAfter(lastId, { send }) {
    const i = this.events.findIndex((e) => e.id === lastId);
    if (i < 0) return '';
    const { streamId } = this.events[i];
    for (const e of this.events.slice(i + 1)) if (e.streamId === streamId) await send(e.id, e.message);
    return streamId;
  }
}
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
  // closes the standalone GET stream, then (while the client waits `retry` to reconnect)
  // announces a tool list change: it reaches a client that resumes that stream
  server.registerTool('drop_get_then_notify', {
    description: 'closes the GET stream, then sends tools/list_changed after ms',
    inputSchema: { ms: z.number() },
  }, async ({ ms }, extra) => {
    // one notification live first: it gives the client an event id on the GET stream
    server.sendToolListChanged();
    await new Promise((r) => setTimeout(r, 200));
    extra.closeStandaloneSSEStream?.();
    setTimeout(() => server.sendToolListChanged(), ms);
    return { content: [{ type: 'text', text: 'dropped' }] };
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
      eventStore: new EventStore(),
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
