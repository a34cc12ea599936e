// The 2026-07-28 stateless era on /mcp with the official v2 TypeScript client
// (@modelcontextprotocol/client) and `versionNegotiation: { mode: 'auto' }`: the client probes
// `server/discover`, adopts 2026-07-28, and stamps every request with the per-request `_meta`
// and `Mcp-Method`/`Mcp-Name` headers, without a session. Input-required results are fulfilled
// by the handler registered for `elicitation/create` and retried with `inputResponses`.
//
// The wire assertions guard against a silent downgrade: auto mode falls back to `initialize`
// on anything that is not definite modern evidence, and every call would still pass.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  connect,
  connectV2,
  Daemon,
  integrationConfig,
  loadClientV2,
  onlyText,
  wireRecorder,
  withDaemonLog,
} from './helpers.mjs';

const MODERN = '2026-07-28';
const PROTOCOL_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';
const CLIENT_CAPABILITIES_KEY = 'io.modelcontextprotocol/clientCapabilities';
// Methods whose target travels in the `Mcp-Name` header, and the param that names it.
const NAME_PARAM = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

const v2 = await loadClientV2();
let daemon;

before(async () => {
  daemon = new Daemon('integration-modern', { config: integrationConfig() });
  await daemon.start();
});

after(async () => {
  await daemon?.stop();
});

/** The client negotiated with `server/discover` only, never got a session, and stamped every
 * request with the 2026-07-28 `_meta` and headers. */
function assertModernWire(wire) {
  const log = wire.describe();
  const requests = wire.requests();
  assert.ok(requests.length > 0, `no requests recorded\n${log}`);
  assert.equal(requests[0].body.method, 'server/discover', `first request is not the probe\n${log}`);
  assert.deepEqual(wire.requests('initialize'), [], `auto mode fell back to initialize\n${log}`);
  assert.deepEqual([...wire.sessionIds()], [], `the stateless era must not assign Mcp-Session-Id\n${log}`);
  assert.deepEqual([...new Set(wire.exchanges.map((x) => x.method))], ['POST'], `unexpected non-POST traffic\n${log}`);
  for (const x of requests) {
    const { method, params = {} } = x.body;
    assert.equal(x.path, '/mcp', log);
    assert.equal(x.status, 200, `${method} answered HTTP ${x.status}\n${log}`);
    assert.equal(x.headers.get('mcp-method'), method, `Mcp-Method header of ${JSON.stringify(x.body)}`);
    assert.equal(x.headers.get('mcp-protocol-version'), MODERN, `MCP-Protocol-Version of ${JSON.stringify(x.body)}`);
    assert.equal(params._meta?.[PROTOCOL_VERSION_KEY], MODERN, `_meta of ${JSON.stringify(x.body)}`);
    if (NAME_PARAM[method]) {
      assert.equal(x.headers.get('mcp-name'), params[NAME_PARAM[method]], `Mcp-Name of ${JSON.stringify(x.body)}`);
    }
  }
}

/** An `elicitation/create` handler answering from a queue; records (input key, params) per call. */
function elicitor(...answers) {
  const seen = [];
  return {
    seen,
    capabilities: { elicitation: {} },
    setup(client) {
      client.setRequestHandler('elicitation/create', async (request, ctx) => {
        // For input-required results the SDK passes the server-assigned input key as the request id.
        seen.push({ key: ctx?.mcpReq?.id, params: request.params });
        assert.ok(answers.length > 0, `unexpected elicitation: ${JSON.stringify(request.params)}`);
        return { action: 'accept', content: answers.shift() };
      });
    },
  };
}

function assertAsksFor(params, message, field) {
  assert.equal(params.message, message, JSON.stringify(params));
  assert.equal(params.requestedSchema?.type, 'object', JSON.stringify(params));
  assert.equal(params.requestedSchema?.properties?.[field]?.type, 'string', JSON.stringify(params));
}

const it = (name, fn) => test(name, withDaemonLog(() => daemon, fn));

/** Run `fn(client, transport)` on a fresh auto-mode v2 client whose traffic goes to `wire`. */
async function usingModern(wire, opts, fn) {
  const conn = await connectV2(daemon, { ...opts, wire });
  try {
    return await fn(conn.client, conn.transport);
  } finally {
    await conn.close();
  }
}

describe(`2026-07-28 era with @modelcontextprotocol/client ${v2.version} (auto negotiation)`, () => {
  it('connect with auto negotiates 2026-07-28 through server/discover', async () => {
    const wire = wireRecorder();
    await usingModern(wire, {}, async (client, transport) => {
      assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
      assert.equal(client.getProtocolEra(), 'modern');
      const discover = client.getDiscoverResult();
      assert.ok(discover?.supportedVersions?.includes(MODERN), JSON.stringify(discover));
      assert.ok(client.getServerVersion()?.name, `serverInfo missing: ${JSON.stringify(client.getServerVersion())}`);
      const caps = client.getServerCapabilities();
      assert.ok(caps?.tools && caps?.resources && caps?.prompts, `capabilities: ${JSON.stringify(caps)}`);
      assert.equal(transport.sessionId, undefined, 'the stateless era must not assign a session');
      // A request after the probe must be served in the modern era too.
      assert.equal(onlyText(await client.callTool({ name: 'hello', arguments: {} })), 'Hello, World!');
    });
    assert.deepEqual(
      wire.requests().map((x) => x.body.method),
      ['server/discover', 'tools/call'],
      wire.describe(),
    );
    assertModernWire(wire);
  });

  it('listTools', async () => {
    const wire = wireRecorder();
    const { tools } = await usingModern(wire, {}, (client) => client.listTools());
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    for (const name of ['hello', 'add_numbers', 'test_input_required_result_elicitation']) {
      assert.ok(byName[name], `${name} missing from ${Object.keys(byName)}`);
    }
    const schema = byName.add_numbers.inputSchema;
    assert.equal(schema.type, 'object');
    assert.ok(schema.required?.includes('a') && schema.required?.includes('b'), JSON.stringify(schema));
    assertModernWire(wire);
  });

  it('callTool hello and add_numbers', async () => {
    const wire = wireRecorder();
    await usingModern(wire, {}, async (client) => {
      assert.equal(onlyText(await client.callTool({ name: 'hello', arguments: {} })), 'Hello, World!');
      assert.equal(onlyText(await client.callTool({ name: 'hello', arguments: { name: 'V2' } })), 'Hello, V2!');
      assert.equal(onlyText(await client.callTool({ name: 'add_numbers', arguments: { a: 2, b: 3 } })), '5');
    });
    assert.deepEqual(
      wire.requests('tools/call').map((x) => x.headers.get('mcp-name')),
      ['hello', 'hello', 'add_numbers'],
      wire.describe(),
    );
    assertModernWire(wire);
  });

  it('readResource status://server', async () => {
    const wire = wireRecorder();
    const result = await usingModern(wire, {}, (client) => client.readResource({ uri: 'status://server' }));
    assert.equal(result.contents.length, 1, JSON.stringify(result));
    const [contents] = result.contents;
    assert.equal(contents.uri, 'status://server');
    assert.equal(contents.mimeType, 'application/json');
    assert.equal(JSON.parse(contents.text).status, 'ok', contents.text);
    assert.equal(wire.requests('resources/read').length, 1, wire.describe());
    assertModernWire(wire);
  });

  it('getPrompt example-prompt', async () => {
    const wire = wireRecorder();
    const result = await usingModern(wire, {}, (client) =>
      client.getPrompt({ name: 'example-prompt', arguments: { arg1: 'quokka-9' } }),
    );
    assert.equal(result.messages.length, 1, JSON.stringify(result));
    const [message] = result.messages;
    assert.equal(message.role, 'user');
    assert.equal(message.content.type, 'text');
    assert.ok(message.content.text.includes('quokka-9'), message.content.text);
    assertModernWire(wire);
  });

  it('input-required result is answered by the elicitation handler and retried', async () => {
    const wire = wireRecorder();
    const elicit = elicitor({ name: 'Alice' });
    const result = await usingModern(wire, elicit, (client) =>
      client.callTool({ name: 'test_input_required_result_elicitation', arguments: {} }),
    );
    assert.equal(onlyText(result), 'Hello, Alice!');

    assert.equal(elicit.seen.length, 1, JSON.stringify(elicit.seen));
    assert.equal(elicit.seen[0].key, 'user_name');
    assertAsksFor(elicit.seen[0].params, 'What is your name?', 'name');

    // Two legs on the wire: the original call, then a retry (fresh id) carrying the answer.
    const calls = wire.requests('tools/call').map((x) => x.body);
    assert.equal(calls.length, 2, wire.describe());
    const [first, retry] = calls;
    assert.equal(first.params.inputResponses, undefined, JSON.stringify(first));
    assert.equal(first.params.requestState, undefined, JSON.stringify(first));
    assert.notEqual(retry.id, first.id);
    assert.equal(retry.params.name, 'test_input_required_result_elicitation');
    assert.deepEqual(retry.params.inputResponses, { user_name: { action: 'accept', content: { name: 'Alice' } } });
    for (const c of calls) assert.ok(c.params._meta[CLIENT_CAPABILITIES_KEY]?.elicitation, JSON.stringify(c));
    assertModernWire(wire);
  });

  it('multi-round input-required result echoes the sealed requestState', async () => {
    const wire = wireRecorder();
    const elicit = elicitor({ name: 'Alice' }, { color: 'green' });
    const result = await usingModern(wire, elicit, (client) =>
      client.callTool({ name: 'test_input_required_result_multi_round', arguments: {} }),
    );
    assert.equal(onlyText(result), 'Alice likes green');
    assert.deepEqual(elicit.seen.map((s) => s.key), ['step1', 'step2']);
    assertAsksFor(elicit.seen[0].params, 'What is your name?', 'name');
    assertAsksFor(elicit.seen[1].params, 'What is your favorite color?', 'color');

    const calls = wire.requests('tools/call').map((x) => x.body.params);
    assert.equal(calls.length, 3, wire.describe());
    assert.equal(calls[0].inputResponses, undefined, JSON.stringify(calls[0]));
    assert.deepEqual(calls[1].inputResponses, { step1: { action: 'accept', content: { name: 'Alice' } } });
    assert.deepEqual(calls[2].inputResponses, { step2: { action: 'accept', content: { color: 'green' } } });
    const states = calls.slice(1).map((c) => c.requestState);
    assert.ok(states.every((s) => typeof s === 'string' && s.length > 0), JSON.stringify(calls));
    assert.notEqual(states[0], states[1], 'requestState must advance between rounds');
    assertModernWire(wire);
  });

  it('serves a v1 legacy client and a v2 auto client side by side', async () => {
    const wire = wireRecorder();
    const legacy = await connect('streamable_http', daemon);
    try {
      await usingModern(wire, {}, async (modern) => {
        assert.equal(legacy.transport.protocolVersion, '2025-11-25');
        assert.ok(legacy.transport.sessionId, 'the legacy client must have a session');
        assert.equal(modern.getNegotiatedProtocolVersion(), MODERN);
        const [a, b] = await Promise.all([
          legacy.client.callTool({ name: 'hello', arguments: { name: 'Legacy' } }),
          modern.callTool({ name: 'hello', arguments: { name: 'Auto' } }),
        ]);
        assert.equal(onlyText(a), 'Hello, Legacy!');
        assert.equal(onlyText(b), 'Hello, Auto!');
        // The legacy session is still usable after the modern traffic.
        assert.equal(onlyText(await legacy.client.callTool({ name: 'hello', arguments: {} })), 'Hello, World!');
      });
    } finally {
      await legacy.close();
    }
    assertModernWire(wire);
  });
});
