// Test harness: a real OAuth2 provider (oauth2-mock-server, none of our code) plus the real
// `nango serve` binary as a child process, on free ports, with a fresh database.
//
// Environment:
//   NANGO_BIN                 server binary (default <repo>/target/debug/nango)
//   NANGO_TEST_DATABASE_URL   PostgreSQL URL; when set, a fresh database `nango_compat_<random>` is
//                             created on it for each server and dropped afterwards. Otherwise the
//                             server gets a temporary SQLite file.
//   NANGO_COMPAT_SERVER_LOG   file the server's stdout/stderr are appended to (default: kept in
//                             memory only; it is printed when the server fails to start).

import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Events, OAuth2Server } from 'oauth2-mock-server';
import pg from 'pg';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const NANGO_BIN = process.env.NANGO_BIN
  ? path.resolve(repoRoot, process.env.NANGO_BIN)
  : path.join(repoRoot, 'target', 'debug', 'nango');

/** Provider template names declared in the providers file given to the server. */
export const PROVIDER = 'mock-oauth2'; // Nango's default client authentication: credentials in the body
export const PROVIDER_HEADER = 'mock-oauth2-header'; // `authorization_method: header` (HTTP Basic)
export const PROVIDER_CC = 'mock-oauth2-cc'; // OAUTH2_CC: the server fetches tokens with the client credentials grant
export const PROVIDER_API_KEY = 'mock-api-key'; // API_KEY: connections made with POST /connection {api_key}
export const PROVIDER_BASIC = 'mock-basic'; // BASIC: connections made with POST /connection {username, password}
export const PROVIDER_API = 'mock-oauth2-api'; // OAUTH2 at the mock, with `base_api_url: <apiBaseUrl>` (only with that option): the proxy's target

/** base64url(SHA-256(verifier)), the S256 PKCE transform of RFC 7636. */
export const s256 = (verifier) => createHash('sha256').update(verifier, 'ascii').digest('base64url');

/** A compact JWS: three base64url segments, the first decoding to a JSON header with `alg`. */
export function looksLikeJwt(token) {
  if (typeof token !== 'string') return false;
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) return false;
  try {
    return typeof JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')).alg === 'string';
  } catch {
    return false;
  }
}

export const uniqueId = (prefix) => `${prefix}-${randomBytes(6).toString('hex')}`;

/**
 * The browser's part of a flow without a browser: the `Cookie` header that carries the cookies a
 * response set (the flow cookie `/oauth/connect` sets, which `/oauth/callback` requires).
 */
export function cookiesFrom(response) {
  return response.headers
    .getSetCookie()
    .map((cookie) => cookie.split(';')[0])
    .join('; ');
}

/** A free TCP port on 127.0.0.1 (the OS picks it; it is released before being returned). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts oauth2-mock-server on a free port of 127.0.0.1: `{mock, url, authorizeRequests,
 * tokenRequests}` (the two arrays record what reached the provider). Also used by
 * `mock-provider-cli.js` (the Rust client's tests).
 */
export async function startMockProvider() {
  const mock = new OAuth2Server();
  await mock.issuer.keys.generate('RS256');
  await mock.start(0, '127.0.0.1');
  const url = `http://127.0.0.1:${mock.address().port}`;

  // The mock signs tokens without a `jti`, so two tokens minted in the same second for the same
  // subject would be byte-identical; a random jti makes every issued access token distinct.
  mock.service.on(Events.BeforeTokenSigning, (token) => {
    token.payload.jti = randomUUID();
  });

  // What reached the provider. `response` is the mutable response object itself, so hooks
  // registered later by a test (which may replace `.body`) are reflected when it is read.
  const authorizeRequests = [];
  const tokenRequests = [];
  mock.service.on(Events.BeforeAuthorizeRedirect, (redirect, req) => {
    authorizeRequests.push({ query: { ...req.query }, redirect: redirect.url });
  });
  mock.service.on(Events.BeforeResponse, (response, req) => {
    tokenRequests.push({ body: { ...req.body }, headers: { ...req.headers }, response });
  });
  return { mock, url, authorizeRequests, tokenRequests };
}

/**
 * Creates a fresh database `<prefix>_<random>` on the PostgreSQL server of `adminUrl`; returns its
 * URL, `query(sql, params)` (a short-lived connection to it) and `drop()`.
 */
export async function createPostgresDatabase(adminUrl, prefix = 'nango_compat') {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    name,
    async query(sql, params = []) {
      const c = new pg.Client({ connectionString: url.href });
      await c.connect();
      try {
        return (await c.query(sql, params)).rows;
      } finally {
        await c.end();
      }
    },
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * Starts the mock provider and a `nango serve` child process pointed at it.
 * `apiBaseUrl` adds the template PROVIDER_API, whose `base_api_url` is that URL (a fake API the
 * test runs, for `/proxy`).
 * `templates`: more lines of the providers file (templates for other providers of a test).
 *
 * `env`: more environment variables for `nango serve` (e.g. the webhook settings).
 *
 * @param {{secretKey?: string, apiBaseUrl?: string, templates?: string[], env?: Record<string, string>}} [opts]
 */
export async function startHarness({ secretKey, apiBaseUrl, templates = [], env: extraEnv = {} } = {}) {
  if (!existsSync(NANGO_BIN)) {
    throw new Error(`nango binary not found at ${NANGO_BIN}: run \`cargo build -p nango-cli\` or set NANGO_BIN`);
  }
  const cleanups = [];
  const cleanup = async () => {
    while (cleanups.length) {
      try {
        await cleanups.pop()();
      } catch (err) {
        process.stderr.write(`harness cleanup: ${err?.stack ?? err}\n`);
      }
    }
  };

  try {
    const provider = await startMockProvider();
    cleanups.push(() => provider.mock.stop());

    const dir = mkdtempSync(path.join(tmpdir(), 'nango-compat-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

    const providersFile = path.join(dir, 'providers.yaml');
    writeFileSync(
      providersFile,
      [
        `# oauth2-mock-server at ${provider.url}; it accepts client credentials in the body or as HTTP Basic.`,
        `${PROVIDER}:`,
        '  auth_mode: OAUTH2',
        `  authorization_url: ${provider.url}/authorize`,
        `  token_url: ${provider.url}/token`,
        '  # no authorization_method: Nango\'s default, client_id/client_secret in the form body',
        `${PROVIDER_HEADER}:`,
        '  auth_mode: OAUTH2',
        `  authorization_url: ${provider.url}/authorize`,
        `  token_url: ${provider.url}/token`,
        '  authorization_method: header',
        `${PROVIDER_CC}:`,
        '  auth_mode: OAUTH2_CC',
        `  token_url: ${provider.url}/token`,
        `${PROVIDER_API_KEY}:`,
        '  auth_mode: API_KEY',
        `${PROVIDER_BASIC}:`,
        '  auth_mode: BASIC',
        ...(apiBaseUrl
          ? [
              `${PROVIDER_API}:`,
              '  auth_mode: OAUTH2',
              `  authorization_url: ${provider.url}/authorize`,
              `  token_url: ${provider.url}/token`,
              `  base_api_url: ${apiBaseUrl}`,
            ]
          : []),
        ...templates,
        '',
      ].join('\n'),
    );

    let databaseUrl;
    if (process.env.NANGO_TEST_DATABASE_URL) {
      const db = await createPostgresDatabase(process.env.NANGO_TEST_DATABASE_URL);
      cleanups.push(() => db.drop());
      databaseUrl = db.url;
    } else {
      databaseUrl = `sqlite://${path.join(dir, 'nango.db')}`;
    }

    const port = await freePort();
    const nangoUrl = `http://127.0.0.1:${port}`;
    const env = {
      ...process.env,
      SERVER_PORT: String(port),
      NANGO_BIND: '127.0.0.1',
      NANGO_SERVER_URL: nangoUrl,
      NANGO_DATABASE_URL: databaseUrl,
      NANGO_PROVIDERS_FILE: providersFile,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      TELEMETRY: 'false',
    };
    delete env.NANGO_SECRET_KEY;
    delete env.NANGO_CALLBACK_URL;
    delete env.PORT;
    if (secretKey) env.NANGO_SECRET_KEY = secretKey;
    Object.assign(env, extraEnv);

    let log = '';
    const logFile = process.env.NANGO_COMPAT_SERVER_LOG;
    const onOutput = (chunk) => {
      log += chunk;
      if (logFile) appendFileSync(logFile, chunk);
    };
    if (logFile) appendFileSync(logFile, `\n=== ${new Date().toISOString()} ${NANGO_BIN} serve on ${nangoUrl} (${databaseUrl})\n`);

    const child = spawn(NANGO_BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8').on('data', onOutput);
    child.stderr.setEncoding('utf8').on('data', onOutput);
    let exited = null;
    const exitedPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        exited = { code, signal };
        resolve();
      });
      child.on('error', (err) => {
        exited = { error: err };
        resolve();
      });
    });
    const killOnExit = () => child.kill('SIGKILL');
    process.on('exit', killOnExit);
    cleanups.push(async () => {
      process.off('exit', killOnExit);
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitedPromise;
      clearTimeout(timer);
    });

    // Wait for the health check.
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) {
        throw new Error(`nango serve exited before becoming healthy (${JSON.stringify(exited)}):\n${log}`);
      }
      try {
        const res = await fetch(`${nangoUrl}/`);
        if (res.ok && (await res.json()).result === 'ok') break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(`nango serve did not answer GET / with {"result":"ok"} within 30 s:\n${log}`);
      }
      await sleep(100);
    }

    const authHeader = secretKey
      ? { Authorization: `Basic ${Buffer.from(`${secretKey}:`).toString('base64')}` }
      : {};

    return {
      nangoUrl,
      providerUrl: provider.url,
      mock: provider.mock,
      authorizeRequests: provider.authorizeRequests,
      tokenRequests: provider.tokenRequests,
      secretKey,
      serverLog: () => log,

      /**
       * Calls `shape(body, grantType, req)` on every successful token response of the mock
       * provider before it is sent (to change `expires_in`, drop the refresh token...).
       * Returns a function that removes the hook.
       */
      onTokenResponse(shape) {
        const listener = (response, req) => {
          if (response.statusCode === 200) shape(response.body, req.body.grant_type, req);
        };
        provider.mock.service.on(Events.BeforeResponse, listener);
        return () => provider.mock.service.off(Events.BeforeResponse, listener);
      },

      /** POST /config for one of the mock providers; returns the config key. */
      async createConfig({ key = uniqueId('cfg'), provider: tmpl = PROVIDER, scopes = 'openid,profile' } = {}) {
        const res = await fetch(`${nangoUrl}/config`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', ...authHeader },
          body: JSON.stringify({
            provider_config_key: key,
            provider: tmpl,
            oauth_client_id: `client-${key}`,
            oauth_client_secret: `secret-${key}`,
            oauth_scopes: scopes,
          }),
        });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`POST /config answered ${res.status}: ${text}`);
        return key;
      },

      /**
       * Drives the whole browser-less OAuth flow over HTTP:
       * /oauth/connect (302) -> provider /authorize (302) -> /oauth/callback (HTML).
       * Returns every hop so tests can assert on them; throws when a hop is not a redirect.
       * `connectSessionToken`: a connect session's token (`connect_session_token`); such a
       * session names the connection itself, so `connectionId` may then be null.
       */
      async runFlow(key, connectionId, { connectSessionToken } = {}) {
        const query = [];
        if (connectionId != null) query.push(`connection_id=${encodeURIComponent(connectionId)}`);
        if (connectSessionToken) query.push(`connect_session_token=${encodeURIComponent(connectSessionToken)}`);
        const connectUrl = `${nangoUrl}/oauth/connect/${encodeURIComponent(key)}?${query.join('&')}`;
        const connect = await fetch(connectUrl, { redirect: 'manual' });
        const location = connect.headers.get('location');
        if (connect.status !== 302 || !location) {
          throw new Error(`GET /oauth/connect answered ${connect.status} (Location: ${location}): ${await connect.text()}`);
        }
        const authorizeUrl = new URL(location, nangoUrl);
        const authorize = await fetch(authorizeUrl, { redirect: 'manual' });
        const cbLocation = authorize.headers.get('location');
        if (authorize.status !== 302 || !cbLocation) {
          throw new Error(`provider /authorize answered ${authorize.status}: ${await authorize.text()}`);
        }
        const callbackUrl = new URL(cbLocation);
        const callback = await fetch(callbackUrl, { redirect: 'manual', headers: { cookie: cookiesFrom(connect) } });
        const html = await callback.text();
        const tokenRequest = provider.tokenRequests.findLast((r) => r.body.code === callbackUrl.searchParams.get('code'));
        return {
          authorizeUrl,
          callbackUrl,
          callbackStatus: callback.status,
          callbackContentType: callback.headers.get('content-type') ?? '',
          html,
          /** The code exchange the server made at the provider's token endpoint, if any. */
          tokenRequest,
          /** The token response the provider answered it with. */
          issued: tokenRequest?.response.body,
        };
      },

      /** runFlow that insists on success (200 HTML page and a token exchange). */
      async connect(key, connectionId, options = {}) {
        const flow = await this.runFlow(key, connectionId, options);
        if (flow.callbackStatus !== 200 || !flow.issued) {
          throw new Error(
            `OAuth callback answered ${flow.callbackStatus} (token exchange seen: ${Boolean(flow.tokenRequest)}): ${flow.html.slice(0, 500)}`,
          );
        }
        return flow;
      },

      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
