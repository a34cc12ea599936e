// A real OpenID Connect provider for the upstream sign-in tests (tests/interop/python/test_sso.py):
// panva's certified `oidc-provider` (pinned in tests/interop/ts/package.json, installed by
// tests/interop/run.sh into .tooling/node), on http://127.0.0.1:<port>, with
//
//   - one confidential client (client_secret_basic, code flow, PKCE S256 required) whose redirect
//     URIs are given on the command line (the daemon's <base>/authorize/callback);
//   - the package's built-in development login and consent pages (devInteractions): any login
//     name and any password sign in, as the account whose `sub` is the login name;
//   - accounts with `email`, `name` and, for the login `carol`, `groups: ["ops"]`. Every claim
//     of the granted scopes goes into the id_token (conformIdTokenClaims: false), as Cognito
//     does with `cognito:groups`;
//   - the dev pages' own "[ Cancel ]" link (GET /interaction/<uid>/abort): the interaction ends
//     with `access_denied`, which the provider returns to the client's redirect_uri (with state
//     and iss) like any authorization error.
//
// oidc-provider 8.x, not 9.x: every 9.x release supports Node.js 22 and later only (it warns
// "Unsupported runtime" on the machine's Node 20); 8.x supports Node 18 and later.
//
//   node provider.mjs --port 9000 --client-id ID --client-secret SECRET \
//        --redirect-uri http://127.0.0.1:8000/authorize/callback [--redirect-uri ...]
//
// Every option can also come from the environment: OIDC_TEST_PORT, OIDC_TEST_CLIENT_ID,
// OIDC_TEST_CLIENT_SECRET, OIDC_TEST_REDIRECT_URIS (space-separated). It prints one line
// `oidc-provider listening on <issuer>` on stdout once it accepts connections, and logs every
// request (method, path, status) on stderr.

import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const NODE_MODULES =
  process.env.MCP_INTEROP_NODE_MODULES ?? path.join(REPO_ROOT, '.tooling', 'node', 'node_modules');

// The package lives in .tooling/node (run.sh), not next to this file: import it by path.
const { default: Provider } = await import(
  pathToFileURL(path.join(NODE_MODULES, 'oidc-provider', 'lib', 'index.js')).href
);

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_TEST_PORT },
    'client-id': { type: 'string', default: process.env.OIDC_TEST_CLIENT_ID },
    'client-secret': { type: 'string', default: process.env.OIDC_TEST_CLIENT_SECRET },
    'redirect-uri': {
      type: 'string',
      multiple: true,
      default: (process.env.OIDC_TEST_REDIRECT_URIS ?? '').split(/\s+/).filter(Boolean),
    },
  },
});
for (const name of ['port', 'client-id', 'client-secret']) {
  if (!opts[name]) {
    console.error(`provider.mjs: --${name} is required`);
    process.exit(2);
  }
}
if (opts['redirect-uri'].length === 0) {
  console.error('provider.mjs: at least one --redirect-uri is required');
  process.exit(2);
}

const port = Number(opts.port);
const issuer = `http://127.0.0.1:${port}`;

// Groups by login name: what the daemon turns into roles.
const GROUPS = { carol: ['ops'] };

function account(id) {
  return {
    accountId: id,
    async claims() {
      const claims = {
        sub: id,
        email: `${id}@example.test`,
        email_verified: true,
        name: id.charAt(0).toUpperCase() + id.slice(1),
        preferred_username: id,
      };
      if (GROUPS[id]) claims.groups = GROUPS[id];
      return claims;
    },
  };
}

// A fresh signing key per run (the package's built-in development key would do too, with a
// warning); RS256 is what every relying party must accept.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: opts['client-id'],
      client_secret: opts['client-secret'],
      redirect_uris: opts['redirect-uri'],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  jwks: { keys: [signingKey] },
  // PKCE for every client, not only public ones (the default); S256 is the only method offered.
  pkce: { required: () => true },
  // `groups` with every id_token (scope openid), the rest with their usual scopes.
  claims: {
    openid: ['sub', 'groups'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  // Claims of the granted scopes in the id_token of the code flow too, not only at userinfo.
  conformIdTokenClaims: false,
  async findAccount(_ctx, id) {
    return account(id);
  },
  features: {
    devInteractions: { enabled: true },
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  renderError(ctx, out, error) {
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>oidc-provider error</title><pre id="provider-error">${
      JSON.stringify(out, null, 2).replace(/[<>&]/g, (c) => `&#${c.charCodeAt(0)};`)
    }</pre>`;
    console.error(`provider error: ${error?.stack ?? error}`);
  },
});

// Request log (stderr), for the test's failure report.
provider.use(async (ctx, next) => {
  const started = Date.now();
  try {
    await next();
  } finally {
    const location = ctx.response.get('Location');
    console.error(
      `${ctx.method} ${ctx.originalUrl} -> ${ctx.status}${location ? ` Location: ${location}` : ''} (${Date.now() - started} ms)`,
    );
  }
});

provider.on('server_error', (_ctx, err) => console.error(`server_error: ${err?.stack ?? err}`));
provider.on('grant.error', (_ctx, err) => console.error(`grant.error: ${err?.message ?? err}`));
provider.on('authorization.error', (_ctx, err) => console.error(`authorization.error: ${err?.message ?? err}`));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
