#!/usr/bin/env node
// Fixture MCP server for the official conformance suite (@modelcontextprotocol/conformance):
// every tool, resource, prompt and utility its server scenarios name, with the exact contents
// their printed requirements ask for. The suite's own reference server is in its GitHub
// repository only, not in the npm package, so this is ours, on the public SDK API (v1 1.32.2).
//
//   node fixture.mjs --stdio                 one session over stdin/stdout
//   node fixture.mjs --http [--port N]       Streamable HTTP on http://127.0.0.1:N/mcp (N=0: any
//                                            free port); prints "listening <url>" on stdout
//
// HTTP mode follows the 2025-11-25 transport closely, because the suite checks it: a session
// per initialize (404 once it is deleted or unknown), an event store so SSE streams are
// resumable (priming event, `retry`, GET + Last-Event-ID), and Host/Origin checks against DNS
// rebinding (loopback names only).
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { Server, StdioServerTransport, StreamableHTTPServerTransport, InMemoryEventStore, types } from './sdk.mjs';

const {
  CallToolRequestSchema, ListToolsRequestSchema, ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema, ReadResourceRequestSchema, SubscribeRequestSchema,
  UnsubscribeRequestSchema, ListPromptsRequestSchema, GetPromptRequestSchema,
  CompleteRequestSchema, CreateMessageResultSchema, ElicitResultSchema, McpError, ErrorCode,
  isInitializeRequest,
} = types;

// 1x1 PNG and a 10-sample 8 kHz mono 8-bit WAV: the smallest valid media the scenarios accept.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = (() => {
  const samples = Buffer.alloc(10, 0x80);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + samples.length, 4); h.write('WAVE', 8);
  h.write('fmt ', 12); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24); h.writeUInt32LE(8000, 28); h.writeUInt16LE(1, 32); h.writeUInt16LE(8, 34);
  h.write('data', 36); h.writeUInt32LE(samples.length, 40);
  return Buffer.concat([h, samples]).toString('base64');
})();

const NO_ARGS = { type: 'object', properties: {} };
const str = (description) => ({ type: 'string', description });

// json-schema-2020-12: the suite compares these keywords after a tools/list round trip.
const SCHEMA_2020_12 = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  $defs: {
    address: { $anchor: 'addressDef', type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } },
  },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
    contactMethod: { type: 'string', enum: ['phone', 'email'] },
    phone: { type: 'string' },
    email: { type: 'string' },
  },
  allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
  if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
  then: { required: ['phone'] },
  else: { required: ['email'] },
  additionalProperties: false,
};

const TOOLS = [
  ['test_simple_text', 'Returns a simple text response', NO_ARGS],
  ['test_image_content', 'Returns a 1x1 PNG image', NO_ARGS],
  ['test_audio_content', 'Returns a short WAV clip', NO_ARGS],
  ['test_embedded_resource', 'Returns an embedded text resource', NO_ARGS],
  ['test_multiple_content_types', 'Returns text, image and resource content', NO_ARGS],
  ['test_tool_with_logging', 'Sends three info log messages while it runs', NO_ARGS],
  ['test_error_handling', 'Always fails with isError: true', NO_ARGS],
  ['test_tool_with_progress', 'Reports progress 0, 50 and 100 of 100', NO_ARGS],
  ['test_sampling', 'Asks the client for an LLM completion (sampling/createMessage)',
    { type: 'object', properties: { prompt: str('The prompt to send to the LLM') }, required: ['prompt'] }],
  ['test_elicitation', 'Asks the user for a username and email (elicitation/create)',
    { type: 'object', properties: { message: str('The message to show the user') }, required: ['message'] }],
  ['test_elicitation_sep1034_defaults', 'Elicitation with a default for every primitive type', NO_ARGS],
  ['test_elicitation_sep1330_enums', 'Elicitation with all five enum schema variants', NO_ARGS],
  ['test_reconnection', 'Closes its SSE stream mid-call; the answer arrives after the client resumes', NO_ARGS],
  ['json_schema_2020_12_tool', 'Tool with JSON Schema 2020-12 features', SCHEMA_2020_12],
].map(([name, description, inputSchema]) => ({ name, description, inputSchema }));

const RESOURCES = {
  'test://static-text': { name: 'static-text', description: 'A static text resource', mimeType: 'text/plain', text: 'This is the content of the static text resource.' },
  'test://static-binary': { name: 'static-binary', description: 'A static binary resource (PNG)', mimeType: 'image/png', blob: PNG },
  'test://watched-resource': { name: 'watched-resource', description: 'A resource clients can subscribe to', mimeType: 'text/plain', text: 'Watched resource content.' },
};
const TEMPLATE = { uriTemplate: 'test://template/{id}/data', name: 'template-data', description: 'Data for an id', mimeType: 'application/json' };
const TEMPLATE_RE = /^test:\/\/template\/([^/]+)\/data$/;

const PROMPTS = [
  { name: 'test_simple_prompt', description: 'A prompt without arguments' },
  { name: 'test_prompt_with_arguments', description: 'A prompt with two arguments',
    arguments: [{ name: 'arg1', description: 'First test argument', required: true }, { name: 'arg2', description: 'Second test argument', required: true }] },
  { name: 'test_prompt_with_embedded_resource', description: 'A prompt embedding a resource',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }] },
  { name: 'test_prompt_with_image', description: 'A prompt with an image' },
];

const COMPLETIONS = ['paris', 'park', 'party', 'test', 'testing', 'tested'];

const text = (t) => ({ type: 'text', text: t });
const user = (content) => ({ role: 'user', content });

/** Asks the client something on behalf of the call in `extra` (so over HTTP the request rides
 * that call's SSE stream); a client without the capability gets an error result instead. */
async function askClient(server, extra, capability, request, schema) {
  if (!server.getClientCapabilities()?.[capability]) {
    return { error: `client does not support ${capability}` };
  }
  return { result: await extra.sendRequest(request, schema) };
}

async function callTool(server, { name, arguments: args = {} }, extra) {
  const token = extra._meta?.progressToken;
  switch (name) {
    case 'test_simple_text':
      return { content: [text('This is a simple text response for testing.')] };
    case 'test_image_content':
      return { content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] };
    case 'test_audio_content':
      return { content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] };
    case 'test_embedded_resource':
      return { content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }] };
    case 'test_multiple_content_types':
      return { content: [
        text('Multiple content types test:'),
        { type: 'image', data: PNG, mimeType: 'image/png' },
        { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' } },
      ] };
    case 'test_tool_with_logging': {
      const log = (data) => extra.sendNotification({ method: 'notifications/message', params: { level: 'info', logger: 'fixture', data } });
      await log('Tool execution started');
      await sleep(50);
      await log('Tool processing data');
      await sleep(50);
      await log('Tool execution completed');
      return { content: [text('Tool with logging executed successfully')] };
    }
    case 'test_error_handling':
      return { isError: true, content: [text('This tool intentionally returns an error for testing')] };
    case 'test_tool_with_progress': {
      for (const progress of [0, 50, 100]) {
        if (token !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100 } });
        }
        if (progress < 100) await sleep(50);
      }
      return { content: [text('Tool with progress executed successfully')] };
    }
    case 'test_sampling': {
      const r = await askClient(server, extra, 'sampling', {
        method: 'sampling/createMessage',
        params: { messages: [user(text(String(args.prompt ?? '')))], maxTokens: 100 },
      }, CreateMessageResultSchema);
      if (r.error) return { isError: true, content: [text(r.error)] };
      const c = r.result.content;
      return { content: [text(`LLM response: ${c?.type === 'text' ? c.text : JSON.stringify(c)}`)] };
    }
    case 'test_elicitation': {
      const r = await askClient(server, extra, 'elicitation', {
        method: 'elicitation/create',
        params: {
          message: String(args.message ?? ''),
          requestedSchema: {
            type: 'object',
            properties: { username: str("User's response"), email: str("User's email address") },
            required: ['username', 'email'],
          },
        },
      }, ElicitResultSchema);
      if (r.error) return { isError: true, content: [text(r.error)] };
      return { content: [text(`User response: action=${r.result.action}, content=${JSON.stringify(r.result.content ?? {})}`)] };
    }
    case 'test_elicitation_sep1034_defaults':
    case 'test_elicitation_sep1330_enums': {
      const properties = name === 'test_elicitation_sep1034_defaults' ? {
        name: { type: 'string', description: 'Name', default: 'John Doe' },
        age: { type: 'integer', description: 'Age', default: 30 },
        score: { type: 'number', description: 'Score', default: 95.5 },
        status: { type: 'string', description: 'Status', enum: ['active', 'inactive', 'pending'], default: 'active' },
        verified: { type: 'boolean', description: 'Verified', default: true },
      } : {
        untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
        titledSingle: { type: 'string', oneOf: [{ const: 'value1', title: 'First Option' }, { const: 'value2', title: 'Second Option' }, { const: 'value3', title: 'Third Option' }] },
        legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
        untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
        titledMulti: { type: 'array', items: { anyOf: [{ const: 'value1', title: 'First Choice' }, { const: 'value2', title: 'Second Choice' }, { const: 'value3', title: 'Third Choice' }] } },
      };
      const r = await askClient(server, extra, 'elicitation', {
        method: 'elicitation/create',
        params: { message: 'Please review and update the form fields', requestedSchema: { type: 'object', properties } },
      }, ElicitResultSchema);
      if (r.error) return { isError: true, content: [text(r.error)] };
      return { content: [text(`Elicitation completed: action=${r.result.action}, content=${JSON.stringify(r.result.content ?? {})}`)] };
    }
    case 'test_reconnection':
      // SEP-1699 polling: close this call's SSE stream after the priming event (only offered
      // over HTTP with an event store, on 2025-11-25), answer a little later; the SDK keeps the
      // answer in the event store for the client's GET + Last-Event-ID.
      extra.closeSSEStream?.();
      await sleep(100);
      return { content: [text('Reconnection test completed successfully')] };
    case 'json_schema_2020_12_tool':
      return { content: [text('ok')] };
    default:
      // -32602 as the SDK's McpServer answers an unknown tool
      throw new McpError(ErrorCode.InvalidParams, `Tool ${name} not found`);
  }
}

function readResource(uri) {
  const r = RESOURCES[uri];
  if (r) return { contents: [{ uri, mimeType: r.mimeType, ...(r.text !== undefined ? { text: r.text } : { blob: r.blob }) }] };
  const m = TEMPLATE_RE.exec(uri);
  if (m) {
    const id = decodeURIComponent(m[1]);
    return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }] };
  }
  // SEP-2164: unknown resource is -32602 with the uri in data
  throw new McpError(ErrorCode.InvalidParams, 'Resource not found', { uri });
}

function getPrompt({ name, arguments: args = {} }) {
  switch (name) {
    case 'test_simple_prompt':
      return { messages: [user(text('This is a simple prompt for testing.'))] };
    case 'test_prompt_with_arguments':
      return { messages: [user(text(`Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'`))] };
    case 'test_prompt_with_embedded_resource':
      return { messages: [
        user({ type: 'resource', resource: { uri: String(args.resourceUri ?? 'test://embedded'), mimeType: 'text/plain', text: 'Embedded resource content for testing.' } }),
        user(text('Please process the embedded resource above.')),
      ] };
    case 'test_prompt_with_image':
      return { messages: [user({ type: 'image', data: PNG, mimeType: 'image/png' }), user(text('Please analyze the image above.'))] };
    default:
      throw new McpError(ErrorCode.InvalidParams, `Prompt ${name} not found`);
  }
}

/** One MCP server instance (one per HTTP session, one for stdio). */
function createServer() {
  const server = new Server(
    { name: 'aip-conformance-fixture', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
      instructions: 'Fixture server for the MCP conformance suite (aip-gateway tests).',
    },
  );
  const subscriptions = new Set();
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, (req, extra) => callTool(server, req.params, extra));
  server.setRequestHandler(ListResourcesRequestSchema, () => ({
    resources: Object.entries(RESOURCES).map(([uri, { name, description, mimeType }]) => ({ uri, name, description, mimeType })),
  }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: [TEMPLATE] }));
  server.setRequestHandler(ReadResourceRequestSchema, (req) => readResource(req.params.uri));
  server.setRequestHandler(SubscribeRequestSchema, (req) => { subscriptions.add(req.params.uri); return {}; });
  server.setRequestHandler(UnsubscribeRequestSchema, (req) => { subscriptions.delete(req.params.uri); return {}; });
  server.setRequestHandler(ListPromptsRequestSchema, () => ({ prompts: PROMPTS }));
  server.setRequestHandler(GetPromptRequestSchema, (req) => getPrompt(req.params));
  server.setRequestHandler(CompleteRequestSchema, (req) => {
    const prefix = String(req.params.argument?.value ?? '');
    const values = COMPLETIONS.filter((v) => v.startsWith(prefix));
    return { completion: { values, total: values.length, hasMore: false } };
  });
  return server;
}

// ---- HTTP ---------------------------------------------------------------------------------

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
/** The host name of a Host header value or an Origin URL, without the port. */
function hostName(v) {
  try { return new URL(v.includes('://') ? v : `http://${v}`).hostname; } catch { return null; }
}

function jsonError(res, status, code, message) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function serveHttp(port) {
  const sessions = new Map(); // session id -> transport
  const srv = http.createServer(async (req, res) => {
    try {
      // DNS rebinding: a loopback server answers loopback names only (any port)
      if (!LOOPBACK.has(hostName(req.headers.host ?? ''))) return jsonError(res, 403, -32000, 'Forbidden: invalid Host header');
      if (req.headers.origin !== undefined && !LOOPBACK.has(hostName(req.headers.origin))) return jsonError(res, 403, -32000, 'Forbidden: invalid Origin header');
      if (new URL(req.url, 'http://127.0.0.1').pathname !== '/mcp') return jsonError(res, 404, -32000, 'Not found');
      const sid = req.headers['mcp-session-id'];
      if (sid !== undefined) {
        const t = sessions.get(sid);
        if (!t) return jsonError(res, 404, -32001, 'Session not found');
        return await t.handleRequest(req, res);
      }
      if (req.method !== 'POST') return jsonError(res, 400, -32000, 'Bad Request: no session');
      let body;
      try { body = await readJson(req); } catch { return jsonError(res, 400, -32700, 'Parse error'); }
      if (!isInitializeRequest(body)) return jsonError(res, 400, -32000, 'Bad Request: no session');
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new InMemoryEventStore(),
        retryInterval: 200,
        onsessioninitialized: (id) => sessions.set(id, transport),
      });
      transport.onclose = () => { if (transport.sessionId) sessions.delete(transport.sessionId); };
      await createServer().connect(transport);
      await transport.handleRequest(req, res, body);
    } catch (e) {
      process.stderr.write(`fixture: ${e.stack || e}\n`);
      if (!res.headersSent) jsonError(res, 500, -32603, 'Internal error');
      else res.end();
    }
  });
  srv.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening http://127.0.0.1:${srv.address().port}/mcp\n`);
  });
  const stop = () => {
    for (const t of sessions.values()) t.close().catch(() => {});
    srv.close(() => process.exit(0));
    srv.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// ---- main ---------------------------------------------------------------------------------

const argv = process.argv.slice(2);
if (argv[0] === '--stdio') {
  await createServer().connect(new StdioServerTransport());
} else if (argv[0] === '--http') {
  const i = argv.indexOf('--port');
  serveHttp(i > 0 ? Number(argv[i + 1]) : 0);
} else {
  process.stderr.write('usage: fixture.mjs --stdio | --http [--port N]\n');
  process.exit(2);
}
