// Demo set over streamable HTTP and legacy HTTP+SSE with the official TypeScript SDK client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, Daemon, onlyText, TRANSPORTS, types, withDaemonLog } from './helpers.mjs';

let daemon;

before(async () => {
  daemon = new Daemon('demo'); // no --config: the built-in demo set
  await daemon.start();
});

after(async () => {
  await daemon?.stop();
});

for (const kind of TRANSPORTS) {
  describe(`demo set over ${kind}`, () => {
    const it = (name, fn) =>
      test(
        name,
        withDaemonLog(
          () => daemon,
          async () => {
            const conn = await connect(kind, daemon);
            try {
              await fn(conn.client, conn.transport);
            } finally {
              await conn.close();
            }
          },
        ),
      );

    it('connect negotiates the latest protocol version', async (client, transport) => {
      const info = client.getServerVersion();
      assert.ok(info?.name, `serverInfo.name missing: ${JSON.stringify(info)}`);
      assert.ok(info?.version, `serverInfo.version missing: ${JSON.stringify(info)}`);
      const caps = client.getServerCapabilities();
      assert.ok(caps?.tools, `tools capability missing: ${JSON.stringify(caps)}`);
      assert.ok(caps?.resources, `resources capability missing: ${JSON.stringify(caps)}`);
      assert.ok(caps?.prompts, `prompts capability missing: ${JSON.stringify(caps)}`);
      assert.equal(types.LATEST_PROTOCOL_VERSION, '2025-11-25');
      if (kind === 'streamable_http') {
        // The transport records the negotiated version to send as MCP-Protocol-Version.
        assert.equal(transport.protocolVersion, '2025-11-25');
        assert.ok(transport.sessionId, 'streamable HTTP server must assign an Mcp-Session-Id');
      }
    });

    it('listTools includes hello and add_numbers', async (client) => {
      const { tools } = await client.listTools();
      const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
      assert.ok(byName.hello, `tools: ${Object.keys(byName)}`);
      assert.ok(byName.add_numbers, `tools: ${Object.keys(byName)}`);
      const schema = byName.add_numbers.inputSchema;
      assert.equal(schema.type, 'object');
      assert.ok(schema.required?.includes('a') && schema.required?.includes('b'), JSON.stringify(schema));
    });

    it('callTool hello with default and explicit name', async (client) => {
      assert.equal(onlyText(await client.callTool({ name: 'hello', arguments: {} })), 'Hello, World!');
      assert.equal(onlyText(await client.callTool({ name: 'hello', arguments: { name: 'Node' } })), 'Hello, Node!');
    });

    it('callTool add_numbers', async (client) => {
      assert.equal(onlyText(await client.callTool({ name: 'add_numbers', arguments: { a: 2, b: 3 } })), '5');
      assert.equal(onlyText(await client.callTool({ name: 'add_numbers', arguments: { a: 1.5, b: 2 } })), '3.5');
    });

    it('readResource status://server', async (client) => {
      const { contents } = await client.readResource({ uri: 'status://server' });
      assert.equal(contents.length, 1, JSON.stringify(contents));
      assert.equal(contents[0].uri, 'status://server');
      assert.equal(contents[0].mimeType, 'application/json');
      const body = JSON.parse(contents[0].text);
      assert.equal(body.status, 'ok', contents[0].text);
    });

    it('getPrompt example-prompt', async (client) => {
      const { messages } = await client.getPrompt({ name: 'example-prompt', arguments: { arg1: 'okapi-17' } });
      assert.equal(messages.length, 1, JSON.stringify(messages));
      assert.equal(messages[0].role, 'user');
      assert.equal(messages[0].content.type, 'text');
      assert.match(messages[0].content.text, /okapi-17/);
    });

    it('unknown tool is a -32602 protocol error', async (client) => {
      await assert.rejects(client.callTool({ name: 'definitely_not_a_tool', arguments: {} }), (err) => {
        assert.ok(err instanceof types.McpError, `expected McpError, got ${err}`);
        assert.equal(err.code, -32602);
        return true;
      });
    });
  });
}
