// A stdio MCP server (SDK) whose tools ask their client for a sampling after a delay, to test
// how `aip serve` finds the session of a stdio server's request (docs/routing.md, "Which
// session gets a request"): `sample-named` names its call in params._meta.relatedRequestId,
// `sample-unnamed` does not (the gateway then takes the agent's most recent capable call).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CreateMessageResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const server = new McpServer({ name: 'related-server', version: '1.0.0' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (const [name, named] of [['sample-named', true], ['sample-unnamed', false]]) {
  server.registerTool(name, { inputSchema: { tag: z.string(), delayMs: z.number() } }, async ({ tag, delayMs }, extra) => {
    await sleep(delayMs);
    const params = { messages: [{ role: 'user', content: { type: 'text', text: tag } }], maxTokens: 5 };
    if (named) params._meta = { relatedRequestId: extra.requestId };
    const r = await server.server.request({ method: 'sampling/createMessage', params }, CreateMessageResultSchema);
    // the server's id of the call, for the test to compare with what the agent saw
    return { content: [{ type: 'text', text: `${tag}: ${r.content.text}` }], _meta: { upstreamId: extra.requestId } };
  });
}

await server.connect(new StdioServerTransport());
