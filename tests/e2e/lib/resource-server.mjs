// A small SDK stdio MCP server for the routing tests: resources, a template, prompts, all of
// whose requests are appended to $PROBE_LOG (one JSON line each), so a test can show what
// reached the server and what never did.
//
// - resources: file://$PROBE_DIR/notes.txt (text), file://$PROBE_DIR/secret/key.txt (listed,
//   so the gateway must hide it when protected), vault://token (text with a fake AWS key),
//   vault://blob (the same text as a base64 blob);
// - template: file:///{+path} (reads any file under PROBE_DIR as text);
// - prompts: "leak" (its message carries a fake AWS key), "shared" (a name two probes share),
//   "b__x" under PROBE_NAME=a (reads as the qualified name of server b's "x");
// - completion for the prompt "shared" argument "q";
// - tool add-prompt {name}: registers a prompt (prompts/list_changed follows);
// - resources/subscribe: {} and a notifications/resources/updated for that URI 50 ms later.
import fs from 'node:fs';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { z } from 'zod';

const NAME = process.env.PROBE_NAME || 'probe';
const DIR = process.env.PROBE_DIR || '/tmp';
const LOG = process.env.PROBE_LOG;
const SECRET = 'AKIAIOSFODNN7EXAMPLE';

const server = new McpServer({ name: NAME, version: '1.0.0' },
  { capabilities: { logging: {}, completions: {}, resources: { subscribe: true } }, instructions: `Probe ${NAME}: read the notes first.` });

const text = (uri, t) => ({ contents: [{ uri, mimeType: 'text/plain', text: t }] });
const readFile = (u) => {
  const p = decodeURIComponent(new URL(u).pathname);
  try { return fs.readFileSync(p, 'utf8'); } catch (e) { return `cannot read ${p}: ${e.code}`; }
};

server.registerResource('notes', `file://${DIR}/notes.txt`, { mimeType: 'text/plain' },
  async (uri) => text(uri.href, readFile(uri.href)));
server.registerResource('key', `file://${DIR}/secret/key.txt`, { mimeType: 'text/plain' },
  async (uri) => text(uri.href, readFile(uri.href)));
server.registerResource('token', 'vault://token', { mimeType: 'text/plain' },
  async (uri) => text(uri.href, `the token is ${SECRET}`));
server.registerResource('blob', 'vault://blob', { mimeType: 'application/octet-stream' },
  async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'application/octet-stream', blob: Buffer.from(`the token is ${SECRET}`).toString('base64') }] }));
server.registerResource('any file', new ResourceTemplate('file:///{+path}', { list: undefined }),
  { mimeType: 'text/plain' }, async (uri) => text(uri.href, readFile(uri.href)));

server.registerPrompt('leak', { description: 'carries a secret' }, async () => ({
  messages: [{ role: 'user', content: { type: 'text', text: `use key ${SECRET} from ${NAME}` } }],
}));
server.registerPrompt('shared', { argsSchema: { q: completable(z.string(), (v) => [`${NAME}-${v}`, `${NAME}-${SECRET}`]) } }, async ({ q }) => ({
  messages: [{ role: 'user', content: { type: 'text', text: `shared prompt of ${NAME}: ${q ?? ''}` } },
    { role: 'user', content: { type: 'resource', resource: { uri: `file://${DIR}/notes.txt`, mimeType: 'text/plain', text: 'notes' } } }],
}));
server.registerPrompt(`only-${NAME}`, { argsSchema: { file: z.string().optional() } }, async ({ file }) => ({
  messages: [{ role: 'user', content: { type: 'text', text: `only ${NAME} ${file ?? ''}` } }],
}));
if (NAME === 'a') {
  server.registerPrompt('b__x', {}, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'a b__x' } }] }));
}
if (NAME === 'b') {
  server.registerPrompt('x', {}, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'b x' } }] }));
}

// a tool that adds a prompt: the SDK then sends notifications/prompts/list_changed
server.registerTool('add-prompt', { inputSchema: { name: z.string() } }, async ({ name }) => {
  server.registerPrompt(name, {}, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: `${name} of ${NAME}` } }] }));
  return { content: [{ type: 'text', text: `added ${name}` }] };
});

// subscriptions: acknowledged (the request is logged below); an update follows at once
server.server.setRequestHandler(SubscribeRequestSchema, async (req) => {
  setTimeout(() => server.server.sendResourceUpdated({ uri: req.params.uri }).catch(() => {}), 50);
  return {};
});
server.server.setRequestHandler(UnsubscribeRequestSchema, async () => ({}));

// log every request before the SDK handles it (connect installs the SDK's handler; wrap it)
const transport = new StdioServerTransport();
await server.connect(transport);
const handler = transport.onmessage;
transport.onmessage = (m) => {
  if (LOG && m && m.method) fs.appendFileSync(LOG, JSON.stringify({ server: NAME, method: m.method, params: m.params ?? null }) + '\n');
  handler(m);
};
