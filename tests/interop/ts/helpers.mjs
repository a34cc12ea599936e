// Shared helpers for the TypeScript-SDK interop tests: load the official SDKs from the
// project-local install, start/stop mcp-daemon processes, and build connected clients.
// v1 (`@modelcontextprotocol/sdk`) is loaded eagerly; the v2 client package
// (`@modelcontextprotocol/client`, the 2026-07-28 era) only by the tests that call loadClientV2().
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

// run.sh installs the SDK under .tooling/node (outside the work tree's source folders), so
// the test files cannot resolve it by bare specifier; import the package's ESM build by path.
const NODE_MODULES =
  process.env.MCP_INTEROP_NODE_MODULES ?? path.join(REPO_ROOT, '.tooling', 'node', 'node_modules');
const SDK_ROOT = path.join(NODE_MODULES, '@modelcontextprotocol', 'sdk');

/** Path of a file inside an installed package (e.g. `nodeModulePath('mcp-remote', 'package.json')`). */
export function nodeModulePath(...parts) {
  return path.join(NODE_MODULES, ...parts);
}

function sdk(subpath) {
  return import(pathToFileURL(path.join(SDK_ROOT, 'dist', 'esm', subpath)).href);
}

export const SDK_VERSION = JSON.parse(fs.readFileSync(path.join(SDK_ROOT, 'package.json'), 'utf8')).version;
export const { Client } = await sdk('client/index.js');
export const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');
export const { SSEClientTransport } = await sdk('client/sse.js');
export const { StdioClientTransport } = await sdk('client/stdio.js');
export const { UnauthorizedError } = await sdk('client/auth.js');
export const types = await sdk('types.js');

export const TRANSPORTS = ['streamable_http', 'sse'];

// Environment knobs the daemon reads; scrubbed so the caller's shell cannot change what the tests start.
const DAEMON_ENV_KNOBS = [
  'PORT',
  'HOST',
  'MCP_CONFIG_FILE',
  'MCP_TRANSPORT',
  'SESSION_TTL_SECS',
  'SESSION_REAP_INTERVAL_SECS',
  'MAX_BODY_BYTES',
  'MAX_JSON_DEPTH',
  'ALLOWED_HOSTS',
  'ALLOWED_ORIGINS',
  'SSE_KEEPALIVE_SECS',
  'SSE_RETRY_MS',
  'REPLAY_BUFFER_EVENTS',
  'REPLAY_BUFFER_STREAMS',
  'CLIENT_REQUEST_TIMEOUT_SECS',
  'PAGE_SIZE',
  'LOG_FORMAT',
  // auth (tests pass what they want as flags)
  'AUTH_PROVIDER',
  'PUBLIC_URL',
  'DATA_DIR',
  'JWT_SECRET_KEY',
  'ACCESS_TOKEN_EXP',
  'LOCAL_USER_FILE',
  'ADMIN_USERNAME',
  'ADMIN_PASSWORD',
  'ADMIN_STATIC_TOKEN',
  'OAUTH_TEST_USER',
  'CIMD_ALLOW_PRIVATE',
  'OAUTH_CLIENTS_FILE',
  'COGNITO_USER_POOL_ID',
  'COGNITO_REGION',
  'COGNITO_APP_CLIENT_ID',
  'COGNITO_APP_SECRET',
  'COGNITO_JWKS_URL',
  'COGNITO_ISSUER',
  'COGNITO_ENDPOINT',
  'AWS_REGION',
  'REGION_NAME',
];

export function daemonBin() {
  const raw = process.env.MCP_DAEMON_BIN ?? 'target/release/mcp-daemon';
  return path.isAbsolute(raw) ? raw : path.join(REPO_ROOT, raw);
}

export function integrationConfig() {
  return path.join(REPO_ROOT, 'tests', 'fixtures', 'integration.json');
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Daemon {
  /** `args`: extra command-line flags (e.g. the auth settings of the OAuth tests). */
  constructor(name, { config, args = [] } = {}) {
    this.name = name;
    this.config = config;
    this.extraArgs = args;
    this.logDir = fs.mkdtempSync(path.join(os.tmpdir(), `mcp-interop-ts-${name}-`));
    this.logPath = path.join(this.logDir, 'stderr.log');
    this.proc = null;
    this.exitCode = null;
  }

  get mcpUrl() {
    return new URL(`${this.base}/mcp`);
  }

  get sseUrl() {
    return new URL(`${this.base}/sse`);
  }

  async start() {
    const bin = daemonBin();
    try {
      fs.accessSync(bin, fs.constants.X_OK);
    } catch {
      throw new Error(`mcp-daemon binary not found or not executable: ${bin} (set MCP_DAEMON_BIN)`);
    }
    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    const args = ['--host', '127.0.0.1', '--port', String(this.port)];
    if (this.config) {
      if (!fs.existsSync(this.config)) throw new Error(`daemon config file missing: ${this.config}`);
      args.push('--config', this.config);
    }
    args.push(...this.extraArgs);
    const env = { ...process.env, RUST_BACKTRACE: process.env.RUST_BACKTRACE ?? '1' };
    for (const knob of DAEMON_ENV_KNOBS) delete env[knob];
    // Every test client registers from 127.0.0.1; the per-source rate has its own test
    // (tests/it/auth_attacks.rs).
    env.OAUTH_REGISTRATIONS_PER_MINUTE = '1000';
    const logFd = fs.openSync(this.logPath, 'w');
    // cwd: its temp folder, so nothing written relative to it (the default ./data) lands in the checkout.
    this.proc = spawn(bin, args, { stdio: ['ignore', 'ignore', logFd], env, cwd: this.logDir });
    fs.closeSync(logFd);
    this.proc.on('exit', (code, signal) => {
      this.exitCode = code ?? signal;
    });
    await this.waitHealthy();
  }

  async waitHealthy(timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    let last = null;
    while (Date.now() < deadline) {
      if (this.exitCode !== null) {
        throw new Error(`daemon ${this.name} exited (${this.exitCode}) before becoming healthy\n--- stderr ---\n${this.stderr()}`);
      }
      try {
        const res = await fetch(`${this.base}/health`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
        last = `status ${res.status}`;
      } catch (e) {
        last = e;
      }
      await sleep(50);
    }
    await this.stop();
    throw new Error(`daemon ${this.name} not healthy within ${timeoutMs} ms (last: ${last})\n--- stderr ---\n${this.stderr()}`);
  }

  async stop() {
    const proc = this.proc;
    if (!proc || this.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  stderr(limit = 20_000) {
    let text;
    try {
      text = fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '<no stderr log>';
    }
    return text.length <= limit ? text : `...<truncated>...\n${text.slice(-limit)}`;
  }
}

/** Wrap a test body so a failure carries the daemon's stderr. */
export function withDaemonLog(getDaemon, fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (err) {
      const d = getDaemon();
      const log = d ? d.stderr() : '<daemon not started>';
      console.error(`--- mcp-daemon ${d?.name} stderr (test "${t.name}") ---\n${log}\n--- end stderr ---`);
      throw err;
    }
  };
}

/**
 * Connect an SDK Client over the given transport kind. `setup(client)` runs before
 * connect so request handlers (elicitation, sampling) are in place for the handshake.
 */
export async function connect(kind, daemon, { capabilities = {}, setup } = {}) {
  const client = new Client({ name: 'mcp-daemon-interop-ts', version: '0.0.0' }, { capabilities });
  if (setup) setup(client);
  let transport;
  if (kind === 'streamable_http') transport = new StreamableHTTPClientTransport(daemon.mcpUrl);
  else if (kind === 'sse') transport = new SSEClientTransport(daemon.sseUrl);
  else throw new Error(`unknown transport ${kind}`);
  await client.connect(transport);
  return {
    client,
    transport,
    async close() {
      if (kind === 'streamable_http' && transport.sessionId) await transport.terminateSession();
      await client.close();
    },
  };
}

// ---------------------------------------------------------------- v2 client (@modelcontextprotocol/client)

const CLIENT_V2_ROOT = path.join(NODE_MODULES, '@modelcontextprotocol', 'client');
let clientV2;

/** The v2 client package's ESM build plus its `version` (imported once, by path, like v1). */
export async function loadClientV2() {
  if (!clientV2) {
    const { version } = JSON.parse(fs.readFileSync(path.join(CLIENT_V2_ROOT, 'package.json'), 'utf8'));
    const mod = await import(pathToFileURL(path.join(CLIENT_V2_ROOT, 'dist', 'index.mjs')).href);
    clientV2 = { ...mod, version };
  }
  return clientV2;
}

/**
 * Connect a v2 Client to the daemon's /mcp with `versionNegotiation: { mode }` ('auto' probes
 * `server/discover` first). `setup(client)` runs before connect so request handlers are in place;
 * `wire` (see wireRecorder) records the HTTP traffic.
 */
export async function connectV2(daemon, { capabilities = {}, setup, wire, mode = 'auto' } = {}) {
  const { Client: ClientV2, StreamableHTTPClientTransport: TransportV2 } = await loadClientV2();
  const client = new ClientV2(
    { name: 'mcp-daemon-interop-ts-v2', version: '0.0.0' },
    { capabilities, versionNegotiation: { mode } },
  );
  if (setup) setup(client);
  const transport = new TransportV2(daemon.mcpUrl, wire ? { fetch: wire.fetch } : {});
  await client.connect(transport);
  return {
    client,
    transport,
    async close() {
      if (transport.sessionId) await transport.terminateSession();
      await client.close();
    },
  };
}

/**
 * A `fetch` for a client transport that records every exchange: the request (method, path,
 * headers, parsed JSON body) and the head of its response (status, headers; bodies may be
 * streams and are not read). Exchanges are listed in the order their responses arrived.
 */
export function wireRecorder() {
  const exchanges = [];
  return {
    exchanges,
    async fetch(input, init = {}) {
      const res = await fetch(input, init);
      let body = init.body;
      if (typeof body === 'string') {
        try {
          body = JSON.parse(body);
        } catch {
          // not JSON: keep the text
        }
      }
      exchanges.push({
        method: init.method ?? 'GET',
        path: new URL(String(input)).pathname,
        headers: new Headers(init.headers),
        body,
        status: res.status,
        responseHeaders: res.headers,
      });
      return res;
    },
    /** POSTed JSON-RPC requests (not responses or notifications), optionally of one method. */
    requests(method) {
      const isRequest = (x) => x.body && typeof x.body === 'object' && 'id' in x.body && 'method' in x.body;
      return exchanges.filter((x) => isRequest(x) && (method === undefined || x.body.method === method));
    },
    sessionIds() {
      return new Set(exchanges.map((x) => x.responseHeaders.get('mcp-session-id')).filter(Boolean));
    },
    describe() {
      const body = (x) => (x.body === undefined ? '' : JSON.stringify(x.body).slice(0, 300));
      return exchanges.map((x) => `${x.method} ${x.path} -> ${x.status} ${body(x)}`).join('\n');
    },
  };
}

/** The text of a tool result that must be exactly one text block and not an error. */
export function onlyText(result) {
  if (result.isError) throw new Error(`tool returned isError: ${JSON.stringify(result)}`);
  if (!Array.isArray(result.content) || result.content.length !== 1) {
    throw new Error(`expected exactly one content block: ${JSON.stringify(result.content)}`);
  }
  const [block] = result.content;
  if (block.type !== 'text') throw new Error(`expected text content: ${JSON.stringify(block)}`);
  return block.text;
}

export async function waitUntil(predicate, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export { sleep };
