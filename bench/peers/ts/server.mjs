// Benchmark peer: the tools `add(a, b)` and `echo(message)` served by the official TypeScript
// MCP SDK's streamable HTTP transport, stateful (one transport per session, kept in memory),
// as the SDK's simpleStreamableHttp example does. Node's HTTP server sets TCP_NODELAY itself.
//
//   node server.mjs [PORT]        (or PORT in the environment; default 8002)
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod/v4';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8002);

function newServer() {
  const server = new McpServer({ name: 'bench-peer-ts', version: '0.1.0' });
  server.registerTool(
    'add',
    {
      description: 'Add two numbers and return the sum as text.',
      inputSchema: { a: z.number().describe('First number'), b: z.number().describe('Second number') },
    },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }),
  );
  server.registerTool(
    'echo',
    {
      description: 'Return the message unchanged.',
      inputSchema: { message: z.string().describe('Text to echo') },
    },
    async ({ message }) => ({ content: [{ type: 'text', text: message }] }),
  );
  return server;
}

const transports = new Map();
const app = createMcpExpressApp();

app.post('/mcp', async (req, res) => {
  const sessionId = req.headers['mcp-session-id'];
  const existing = sessionId ? transports.get(sessionId) : undefined;
  if (existing) {
    await existing.handleRequest(req, res, req.body);
    return;
  }
  if (sessionId || !isInitializeRequest(req.body)) {
    res.status(sessionId ? 404 : 400).json({
      jsonrpc: '2.0',
      error: { code: -32000, message: sessionId ? 'Session not found' : 'No valid session ID' },
      id: null,
    });
    return;
  }
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (id) => transports.set(id, transport),
  });
  transport.onclose = () => {
    if (transport.sessionId) transports.delete(transport.sessionId);
  };
  await newServer().connect(transport);
  await transport.handleRequest(req, res, req.body);
});

// GET (standalone SSE stream) and DELETE (end of session) go to the session's transport.
const bySession = async (req, res) => {
  const transport = transports.get(req.headers['mcp-session-id']);
  if (!transport) {
    res.status(400).send('Invalid or missing session ID');
    return;
  }
  await transport.handleRequest(req, res);
};
app.get('/mcp', bySession);
app.delete('/mcp', bySession);

app.listen(port, '127.0.0.1', (error) => {
  if (error) {
    console.error(error);
    process.exit(1);
  }
  console.error(`ts-sdk peer listening on http://127.0.0.1:${port}/mcp`);
});
