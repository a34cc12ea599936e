// OAuth 2.1 end to end with TypeScript clients: the StreamableHTTPClientTransport of the v1 SDK
// (@modelcontextprotocol/sdk) and of the v2 client (@modelcontextprotocol/client) with an
// authProvider, and mcp-remote (the stdio<->HTTP proxy desktop hosts use) as a child process.
//
// Every test starts its own daemon with the local authorization server in test mode
// (`--auth-provider local --oauth-test-user admin`): `/authorize` answers at once with a 302 to the
// redirect_uri carrying `code`, `state` and `iss`, so the "browser" only has to GET the URL.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import {
  Client,
  Daemon,
  freePort,
  integrationConfig,
  loadClientV2,
  nodeModulePath,
  onlyText,
  StdioClientTransport,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  wireRecorder,
} from './helpers.mjs';

const ADMIN_PASSWORD = `interop-${randomBytes(9).toString('base64url')}`;

async function startAuthDaemon(name) {
  const daemon = new Daemon(name, {
    config: integrationConfig(),
    args: ['--auth-provider', 'local', '--oauth-test-user', 'admin', '--admin-password', ADMIN_PASSWORD],
  });
  const dataDir = path.join(daemon.logDir, 'data');
  fs.mkdirSync(dataDir);
  daemon.extraArgs.push('--data-dir', dataDir);
  await daemon.start();
  return daemon;
}

/** A test against a fresh auth daemon; a failure prints the daemon's stderr (and `extraLog()`). */
function oauthTest(name, fn) {
  test(name, async (t) => {
    const ctx = { daemon: null, extraLog: () => '' };
    try {
      ctx.daemon = await startAuthDaemon(name.split(' ')[0].replace(/\W/g, ''));
      await fn(ctx, t);
    } catch (err) {
      console.error(`--- mcp-daemon stderr (test "${name}") ---\n${ctx.daemon?.stderr() ?? '<not started>'}`);
      const extra = ctx.extraLog();
      if (extra) console.error(`--- client log ---\n${extra}`);
      console.error('--- end ---');
      throw err;
    } finally {
      await ctx.daemon?.stop();
    }
  });
}

/** Form fields of a recorded token request (the SDK posts URLSearchParams). */
function formOf(exchange) {
  const body = exchange.body;
  if (body instanceof URLSearchParams) return Object.fromEntries(body);
  if (typeof body === 'string') return Object.fromEntries(new URLSearchParams(body));
  return {};
}

function tokenRequests(wire, grantType) {
  return wire.exchanges.filter((x) => x.method === 'POST' && x.path === '/token' && formOf(x).grant_type === grantType);
}

/** The same JWT (or opaque token) with its tail altered: a token the server must refuse with 401. */
function corrupt(token) {
  const tail = token.slice(-4);
  return token.slice(0, -4) + (tail === 'AAAA' ? 'BBBB' : 'AAAA');
}

/**
 * OAuthClientProvider kept in memory. redirectToAuthorization is the browser: it GETs the
 * authorization URL with redirect:'manual' and keeps the code the 302 carried.
 */
class MemoryOAuthProvider {
  constructor(redirectUrl, issuer) {
    this._redirectUrl = redirectUrl;
    this.issuer = issuer;
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.tokenHistory = [];
    this.authorizations = [];
    this.codes = [];
    this.issuers = [];
    this.invalidations = [];
  }

  get redirectUrl() {
    return this._redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: 'mcp-daemon-interop-ts',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }

  clientInformation() {
    return this._client;
  }

  saveClientInformation(info) {
    this._client = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
    this.tokenHistory.push(tokens);
  }

  async redirectToAuthorization(url) {
    this.authorizations.push(new URL(url));
    const res = await fetch(url, { redirect: 'manual' });
    const text = await res.text();
    assert.ok([302, 303].includes(res.status), `test-mode /authorize must redirect at once, got ${res.status}: ${text.slice(0, 300)}`);
    const location = new URL(res.headers.get('location'));
    assert.equal(`${location.origin}${location.pathname}`, this._redirectUrl, `redirected to ${location}`);
    const params = location.searchParams;
    assert.equal(params.get('error'), null, `authorization error: ${location}`);
    for (const name of ['code', 'state', 'iss']) {
      assert.equal(params.getAll(name).length, 1, `redirect must carry exactly one ${name}: ${location}`);
    }
    assert.equal(params.get('state'), this._state, 'state must be echoed');
    assert.equal(params.get('iss'), this.issuer, 'iss (RFC 9207) must be the issuer');
    this.codes.push(params.get('code'));
    this.issuers.push(params.get('iss'));
  }

  // Kept so the v2 client can check the callback leg against the authorization server it discovered (SEP-2352).
  saveDiscoveryState(state) {
    this._discovery = state;
  }

  discoveryState() {
    return this._discovery;
  }

  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }

  codeVerifier() {
    return this._verifier;
  }

  invalidateCredentials(scope) {
    this.invalidations.push(scope);
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
  }
}

/**
 * The SDK flow end to end: connect without a token (UnauthorizedError after the provider was sent
 * to /authorize), finishAuth with the code, reconnect, use the server, then twice make the access
 * token unacceptable (as when it expires) so the SDK answers the 401 with a refresh_token grant.
 * `sdk`: { Client, Transport, UnauthorizedError, clientOptions, finishAuth(transport, code, iss) }.
 */
async function sdkOAuthFlow(ctx, sdk) {
  const { daemon } = ctx;
  const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
  const provider = new MemoryOAuthProvider(redirectUrl, daemon.base);
  const wire = wireRecorder();
  ctx.extraLog = () => wire.describe();
  const newClient = () => new sdk.Client({ name: 'mcp-daemon-interop-ts-oauth', version: '0.0.0' }, sdk.clientOptions);

  // 1. No token: connect fails with UnauthorizedError after the provider was sent to /authorize.
  const first = new sdk.Transport(daemon.mcpUrl, { authProvider: provider, fetch: wire.fetch });
  const client1 = newClient();
  await assert.rejects(client1.connect(first), (err) => err instanceof sdk.UnauthorizedError);
  await client1.close();

  const challenge = wire.exchanges[0];
  assert.deepEqual([challenge.method, challenge.path, challenge.status], ['POST', '/mcp', 401], wire.describe());
  const wwwAuth = challenge.responseHeaders.get('www-authenticate') ?? '';
  assert.match(wwwAuth, /^Bearer /, wwwAuth);
  assert.ok(wwwAuth.includes(`resource_metadata="${daemon.base}/.well-known/oauth-protected-resource/mcp"`), wwwAuth);
  const paths = wire.exchanges.map((x) => `${x.method} ${x.path} ${x.status}`);
  assert.ok(paths.includes('GET /.well-known/oauth-protected-resource/mcp 200'), wire.describe());
  assert.ok(
    paths.includes('GET /.well-known/oauth-authorization-server 200') || paths.includes('GET /.well-known/openid-configuration 200'),
    wire.describe(),
  );
  assert.ok(paths.includes('POST /register 201'), `DCR must answer 201\n${wire.describe()}`);
  assert.ok(provider._client?.client_id, `no client_id registered: ${JSON.stringify(provider._client)}`);

  assert.equal(provider.authorizations.length, 1);
  const authorize = provider.authorizations[0];
  assert.equal(`${authorize.origin}${authorize.pathname}`, `${daemon.base}/authorize`);
  assert.equal(authorize.searchParams.get('client_id'), provider._client.client_id);
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authorize.searchParams.get('resource'), `${daemon.base}/mcp`);
  assert.equal(provider.codes.length, 1);

  // 2. The app hands the code back; the SDK redeems it (PKCE verifier, resource) at /token.
  await sdk.finishAuth(first, provider.codes[0], provider.issuers[0]);
  const [codeGrant] = tokenRequests(wire, 'authorization_code');
  assert.ok(codeGrant, wire.describe());
  assert.equal(codeGrant.status, 200, wire.describe());
  assert.match(codeGrant.responseHeaders.get('cache-control') ?? '', /no-store/);
  assert.equal(formOf(codeGrant).resource, `${daemon.base}/mcp`);
  assert.ok(formOf(codeGrant).code_verifier, 'PKCE verifier missing');
  const issued = provider._tokens;
  assert.ok(issued?.access_token, JSON.stringify(issued));
  assert.equal(issued.token_type.toLowerCase(), 'bearer');
  assert.ok(issued.refresh_token, `no refresh_token issued: ${JSON.stringify(issued)}`);

  // 3. Reconnect with the token and use the server.
  const transport = new sdk.Transport(daemon.mcpUrl, { authProvider: provider, fetch: wire.fetch });
  const client = newClient();
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    assert.ok(tools.some((tool) => tool.name === 'add_numbers'), JSON.stringify(tools.map((tool) => tool.name)));
    assert.equal(onlyText(await client.callTool({ name: 'add_numbers', arguments: { a: 2, b: 3 } })), '5');

    // 4. The access token stops being accepted (as when it expires): the next call gets a 401,
    //    the SDK redeems the refresh token, stores the rotated pair and retries.
    for (const a of [40, 41]) {
      const before = provider._tokens;
      const refreshesBefore = tokenRequests(wire, 'refresh_token').length;
      provider._tokens = { ...before, access_token: corrupt(before.access_token) };
      assert.equal(onlyText(await client.callTool({ name: 'add_numbers', arguments: { a, b: 1 } })), String(a + 1));
      const refreshes = tokenRequests(wire, 'refresh_token').slice(refreshesBefore);
      assert.equal(refreshes.length, 1, `expected one refresh_token grant\n${wire.describe()}`);
      assert.equal(refreshes[0].status, 200, wire.describe());
      assert.equal(formOf(refreshes[0]).refresh_token, before.refresh_token);
      assert.equal(formOf(refreshes[0]).resource, `${daemon.base}/mcp`);
      const after = provider._tokens;
      assert.notEqual(after.access_token, before.access_token);
      assert.ok(after.refresh_token && after.refresh_token !== before.refresh_token, 'the refresh token must rotate');
    }
    assert.equal(provider.authorizations.length, 1, 'a refresh must not need a new authorization');
    assert.equal(tokenRequests(wire, 'authorization_code').length, 1);
    assert.deepEqual(provider.invalidations, [], 'the SDK dropped credentials');
    return wire;
  } finally {
    if (transport.sessionId) await transport.terminateSession().catch(() => {});
    await client.close();
  }
}

oauthTest('sdk v1 StreamableHTTPClientTransport: 401, discovery, DCR, PKCE, token, tool call, refresh', async (ctx) => {
  const wire = await sdkOAuthFlow(ctx, {
    Client,
    Transport: StreamableHTTPClientTransport,
    UnauthorizedError,
    clientOptions: {},
    finishAuth: (transport, code) => transport.finishAuth(code),
  });
  assert.ok(wire.requests('initialize').length > 0, wire.describe());
});

for (const mode of ['legacy', 'auto']) {
  oauthTest(`client v2 (versionNegotiation ${mode}): 401, discovery, DCR, PKCE, iss, token, tool call, refresh`, async (ctx) => {
    const v2 = await loadClientV2();
    const wire = await sdkOAuthFlow(ctx, {
      Client: v2.Client,
      Transport: v2.StreamableHTTPClientTransport,
      UnauthorizedError: v2.UnauthorizedError,
      clientOptions: { capabilities: {}, versionNegotiation: { mode } },
      // v2 checks the RFC 9207 iss of the authorization response against the AS metadata.
      finishAuth: (transport, code, iss) => transport.finishAuth(code, iss),
    });
    const probe = mode === 'auto' ? 'server/discover' : 'initialize';
    assert.ok(wire.requests(probe).length > 0, `expected ${probe}\n${wire.describe()}`);
  });
}

// ---------------------------------------------------------------------------------- mcp-remote

const MCP_REMOTE_PKG = nodeModulePath('mcp-remote', 'package.json');

/**
 * A "browser" for mcp-remote: the `open` package runs its bundled xdg-open, which (without a
 * desktop session) runs $BROWSER with the URL. This one GETs the authorization URL, follows
 * the 302 to mcp-remote's loopback callback, and appends what happened to $FAKE_BROWSER_LOG.
 */
function writeFakeBrowser(dir) {
  const file = path.join(dir, 'fake-browser.mjs');
  fs.writeFileSync(
    file,
    `#!${process.execPath}
import fs from 'node:fs';
const url = process.argv[2];
const entry = { url };
try {
  const res = await fetch(url, { redirect: 'manual' });
  entry.status = res.status;
  entry.location = res.headers.get('location');
  await res.arrayBuffer();
  if (entry.location) {
    const callback = new URL(entry.location, url);
    let cb;
    try {
      cb = await fetch(callback);
    } catch (err) {
      if (callback.hostname !== 'localhost') throw err;
      callback.hostname = '127.0.0.1'; // a browser tries every address of localhost
      cb = await fetch(callback);
    }
    entry.callbackStatus = cb.status;
    entry.callbackBody = (await cb.text()).slice(0, 200);
  }
} catch (err) {
  entry.error = String(err);
}
fs.appendFileSync(process.env.FAKE_BROWSER_LOG, JSON.stringify(entry) + '\\n');
`,
    { mode: 0o755 },
  );
  return file;
}

function readBrowserLog(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

function findTokensFile(configDir) {
  const dirs = fs.existsSync(configDir) ? fs.readdirSync(configDir) : [];
  for (const sub of dirs) {
    const full = path.join(configDir, sub);
    if (!fs.statSync(full).isDirectory()) continue;
    const hit = fs.readdirSync(full).find((f) => f.endsWith('_tokens.json'));
    if (hit) return path.join(full, hit);
  }
  return null;
}

oauthTest('mcp-remote 0.15.1: browser sign-in, tools over stdio, refresh on the next start', async (ctx) => {
  const { daemon } = ctx;
  const pkg = JSON.parse(fs.readFileSync(MCP_REMOTE_PKG, 'utf8'));
  assert.equal(pkg.version, '0.15.1');
  const proxy = path.join(path.dirname(MCP_REMOTE_PKG), pkg.bin['mcp-remote']);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-interop-mcp-remote-'));
  const configDir = path.join(home, 'mcp-auth');
  const browserLog = path.join(home, 'browser.log');
  const browser = writeFakeBrowser(home);
  const callbackPort = await freePort();
  let stderr = '';
  ctx.extraLog = () => `mcp-remote stderr:\n${stderr.slice(-8000)}\nbrowser log:\n${JSON.stringify(readBrowserLog(browserLog), null, 1)}`;

  // No desktop session, so xdg-open falls through to $BROWSER; a temp HOME and config dir so
  // nothing is shared with other runs.
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    MCP_REMOTE_CONFIG_DIR: configDir,
    BROWSER: browser,
    FAKE_BROWSER_LOG: browserLog,
  };

  async function session(fn) {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [proxy, daemon.mcpUrl.href, String(callbackPort), '--transport', 'http-only', '--auth-timeout', '20'],
      env,
      cwd: home,
      stderr: 'pipe',
    });
    transport.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const client = new Client({ name: 'mcp-daemon-interop-mcp-remote', version: '0.0.0' });
    await client.connect(transport);
    try {
      await fn(client);
    } finally {
      await client.close();
    }
  }

  // First start: 401 -> discovery -> DCR -> browser -> callback -> token, then the proxy serves.
  await session(async (client) => {
    const { tools } = await client.listTools();
    assert.ok(tools.some((tool) => tool.name === 'add_numbers'), JSON.stringify(tools.map((tool) => tool.name)));
    assert.equal(onlyText(await client.callTool({ name: 'add_numbers', arguments: { a: 2, b: 3 } })), '5');
  });
  const visits = readBrowserLog(browserLog);
  assert.equal(visits.length, 1, JSON.stringify(visits));
  const [visit] = visits;
  assert.equal(visit.error, undefined, JSON.stringify(visit));
  const authorize = new URL(visit.url);
  assert.equal(`${authorize.origin}${authorize.pathname}`, `${daemon.base}/authorize`);
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authorize.searchParams.get('redirect_uri'), `http://localhost:${callbackPort}/oauth/callback`);
  assert.ok([302, 303].includes(visit.status), JSON.stringify(visit));
  const callback = new URL(visit.location);
  assert.equal(callback.searchParams.get('iss'), daemon.base, visit.location);
  assert.equal(visit.callbackStatus, 200, JSON.stringify(visit));

  const tokensFile = findTokensFile(configDir);
  assert.ok(tokensFile, `mcp-remote stored no tokens under ${configDir}`);
  const stored = JSON.parse(fs.readFileSync(tokensFile, 'utf8'));
  assert.ok(stored.access_token && stored.refresh_token, `stored tokens: ${Object.keys(stored)}`);

  // Second start with the access token past its expiry: mcp-remote refreshes instead of
  // opening the browser, and the rotated pair is stored.
  fs.writeFileSync(tokensFile, JSON.stringify({ ...stored, expires_at: Date.now() - 1000 }));
  const stderrBefore = stderr.length;
  await session(async (client) => {
    assert.equal(onlyText(await client.callTool({ name: 'add_numbers', arguments: { a: 40, b: 2 } })), '42');
  });
  assert.equal(readBrowserLog(browserLog).length, 1, 'the second start must not sign in again');
  assert.match(stderr.slice(stderrBefore), /Refreshed the access token/, 'mcp-remote did not refresh');
  const refreshed = JSON.parse(fs.readFileSync(tokensFile, 'utf8'));
  assert.notEqual(refreshed.access_token, stored.access_token);
  assert.ok(refreshed.refresh_token && refreshed.refresh_token !== stored.refresh_token, 'the refresh token must rotate');
  fs.rmSync(home, { recursive: true, force: true });
});
