// The MCP SDK (v1, 1.32.2) of the e2e tests, reused from tests/e2e/node_modules rather than
// installed a second time: ESM resolves bare names only from node_modules folders above the
// importing file (NODE_PATH does not apply), and tests/e2e is a sibling, so the one relative
// path lives here. tests/mcp-conformance/run.sh installs tests/e2e's packages when missing.
const SDK = '../e2e/node_modules/@modelcontextprotocol/sdk/dist/esm';

export const { Server } = await import(`${SDK}/server/index.js`);
export const { StdioServerTransport } = await import(`${SDK}/server/stdio.js`);
export const { StreamableHTTPServerTransport } = await import(`${SDK}/server/streamableHttp.js`);
export const { InMemoryEventStore } = await import(`${SDK}/examples/shared/inMemoryEventStore.js`);
export const { Client } = await import(`${SDK}/client/index.js`);
export const { StreamableHTTPClientTransport } = await import(`${SDK}/client/streamableHttp.js`);
export const types = await import(`${SDK}/types.js`);
