// Several `nango serve` processes on one fresh PostgreSQL database, pointed at the fake provider;
// plus the browser-less OAuth flow and small HTTP helpers.
//
// Environment:
//   NANGO_BIN                 server binary (default <repo>/target/debug/nango)
//   NANGO_TEST_DATABASE_URL   PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres);
//                             a database `nango_replicas_<random>` is created on it and dropped after
//   NANGO_REPLICAS_SERVER_LOG file the servers' output is appended to (default: kept in memory and
//                             printed when a server fails to start)

import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

// The harness of tests/compat brings `pg` (resolved from tests/compat/node_modules).
let harness;
try {
  harness = await import('../../compat/lib/harness.js');
} catch (err) {
  throw new Error(
    `cannot load tests/compat/lib/harness.js (${err.message}); run \`cd tests/compat && npm ci\` first`,
  );
}
export const { NANGO_BIN, createPostgresDatabase, freePort, sleep } = harness;

export const PROVIDER = 'fake-rotating';
const ADMIN_URL = process.env.NANGO_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Starts `count` replicas on a fresh database. Replica i gets its own port and its own providers
 * file, identical except for the token URL path (`/token/r<i+1>`), so the provider can tell which
 * replica made each call. All replicas advertise replica 1's callback URL (the redirect_uri must be
 * one stable value); tests deliver callbacks to any replica, since flow state is in the database.
 */
export async function startCluster({ providerUrl, count = 3 }) {
  if (!existsSync(NANGO_BIN)) {
    throw new Error(`nango binary not found at ${NANGO_BIN}: run \`cargo build -p nango-cli\` or set NANGO_BIN`);
  }
  const cleanups = [];
  const cleanup = async () => {
    while (cleanups.length) {
      try {
        await cleanups.pop()();
      } catch (err) {
        process.stderr.write(`cluster cleanup: ${err?.stack ?? err}\n`);
      }
    }
  };
  try {
    let db;
    try {
      db = await createPostgresDatabase(ADMIN_URL, 'nango_replicas');
    } catch (err) {
      throw new Error(`PostgreSQL at ${ADMIN_URL} is not usable (${err.message}); set NANGO_TEST_DATABASE_URL`);
    }
    cleanups.push(() => db.drop());
    const dir = mkdtempSync(path.join(tmpdir(), 'nango-replicas-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

    const ports = [];
    for (let i = 0; i < count; i++) ports.push(await freePort());
    const serverUrl = `http://127.0.0.1:${ports[0]}`;
    const replicas = ports.map((port, i) => {
      const tag = `r${i + 1}`;
      const providersFile = path.join(dir, `providers-${tag}.yaml`);
      writeFileSync(
        providersFile,
        [
          `# The fake rotating provider at ${providerUrl}; the token path names replica ${tag}.`,
          `${PROVIDER}:`,
          '  auth_mode: OAUTH2',
          `  authorization_url: ${providerUrl}/authorize`,
          `  token_url: ${providerUrl}/token/${tag}`,
          '',
        ].join('\n'),
      );
      const env = {
        ...process.env,
        SERVER_PORT: String(port),
        NANGO_BIND: '127.0.0.1',
        NANGO_SERVER_URL: serverUrl,
        NANGO_CALLBACK_URL: `${serverUrl}/oauth/callback`,
        NANGO_DATABASE_URL: db.url,
        NANGO_PROVIDERS_FILE: providersFile,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
        TELEMETRY: 'false',
      };
      for (const v of ['NANGO_SECRET_KEY', 'NANGO_ENCRYPTION_KEY', 'PORT', 'NANGO_DB_HOST', 'NANGO_REQUIRE_CONNECT_SESSION']) delete env[v];
      return new Replica(tag, port, env);
    });
    cleanups.push(() => Promise.all(replicas.map((r) => r.stop())));
    await Promise.all(replicas.map((r) => r.start()));
    return { db, replicas, serverUrl, stop: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

class Replica {
  constructor(tag, port, env) {
    this.tag = tag;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.env = env;
    this.log = '';
    this.child = null;
    this.exited = null;
  }

  async start() {
    const logFile = process.env.NANGO_REPLICAS_SERVER_LOG;
    let partial = '';
    const onOutput = (chunk) => {
      this.log += chunk;
      if (!logFile) return;
      const lines = (partial + chunk).split('\n');
      partial = lines.pop();
      if (lines.length) appendFileSync(logFile, lines.map((l) => `[${this.tag}] ${l}\n`).join(''));
    };
    this.log += `=== ${new Date().toISOString()} start ${this.tag} on ${this.url}\n`;
    const child = spawn(NANGO_BIN, ['serve'], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = null;
    child.stdout.setEncoding('utf8').on('data', onOutput);
    child.stderr.setEncoding('utf8').on('data', onOutput);
    this.exitedPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve();
      });
      child.on('error', (error) => {
        this.exited = { error: String(error) };
        resolve();
      });
    });
    this.killOnExit = () => child.kill('SIGKILL');
    process.on('exit', this.killOnExit);

    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.exited) {
        throw new Error(`${this.tag}: nango serve exited before becoming healthy (${JSON.stringify(this.exited)}):\n${this.log}`);
      }
      try {
        const res = await fetch(`${this.url}/health`);
        if (res.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${this.tag}: no answer on GET /health within 30 s:\n${this.log}`);
      await sleep(50);
    }
  }

  /** SIGKILL: no shutdown, no lease release, in-flight provider calls abandoned. */
  async kill() {
    if (!this.child || this.exited) return;
    this.child.kill('SIGKILL');
    await this.exitedPromise;
    process.off('exit', this.killOnExit);
  }

  async stop() {
    if (!this.child || this.exited) return;
    process.off('exit', this.killOnExit);
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exitedPromise;
    clearTimeout(timer);
  }
}

/** fetch that never throws: `{status, body, error}` (status 0 when the request failed). */
export async function get(url) {
  try {
    const res = await fetch(url);
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: res.status, body };
  } catch (err) {
    return { status: 0, error: String(err.cause?.code ?? err.cause ?? err.message) };
  }
}

export async function createConfig(replica, key) {
  const res = await fetch(`${replica.url}/config`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      provider_config_key: key,
      provider: PROVIDER,
      oauth_client_id: `client-${key}`,
      oauth_client_secret: `secret-${key}`,
      oauth_scopes: 'read',
    }),
  });
  if (res.status !== 200) throw new Error(`POST /config on ${replica.tag} answered ${res.status}: ${await res.text()}`);
}

/**
 * The browser-less OAuth flow: /oauth/connect on `connectVia` (302) -> provider /authorize (302,
 * labels the code's token family with the connection id) -> /oauth/callback delivered to
 * `callbackVia` (200).
 */
export async function connect(provider, connectVia, callbackVia, key, connectionId) {
  const connect = await fetch(
    `${connectVia.url}/oauth/connect/${encodeURIComponent(key)}?connection_id=${encodeURIComponent(connectionId)}`,
    { redirect: 'manual' },
  );
  const authorize = connect.headers.get('location');
  if (connect.status !== 302 || !authorize) {
    throw new Error(`${connectVia.tag} GET /oauth/connect answered ${connect.status}: ${await connect.text()}`);
  }
  const back = await fetch(authorize, { redirect: 'manual' });
  const callback = back.headers.get('location');
  if (back.status !== 302 || !callback) throw new Error(`provider /authorize answered ${back.status}: ${await back.text()}`);
  const callbackUrl = new URL(callback);
  provider.label(callbackUrl.searchParams.get('code'), connectionId, key);
  const delivered = new URL(`${callbackUrl.pathname}${callbackUrl.search}`, callbackVia.url);
  // The browser's part: the flow cookie set by /oauth/connect goes back with the callback (the
  // cookie's hash is in the database, so any replica can check it).
  const cookie = connect.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const done = await fetch(delivered, { redirect: 'manual', headers: { cookie } });
  const html = await done.text();
  if (done.status !== 200) {
    throw new Error(`${callbackVia.tag} GET /oauth/callback for ${connectionId} answered ${done.status}: ${html.slice(0, 500)}`);
  }
}

/** n connections `conn-000`... made through the flow, connect and callback on rotating replicas. */
export async function makeConnections(provider, replicas, key, n, parallel = 10) {
  const ids = Array.from({ length: n }, (_, i) => `conn-${String(i).padStart(3, '0')}`);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < ids.length) {
        const i = next++;
        await connect(provider, replicas[i % replicas.length], replicas[(i + 1) % replicas.length], key, ids[i]);
      }
    }),
  );
  return ids;
}

export const connectionUrl = (replica, key, id, force = false) =>
  `${replica.url}/connection/${encodeURIComponent(id)}?provider_config_key=${encodeURIComponent(key)}${force ? '&force_refresh=true' : ''}`;

/** Last lines of every replica's output, for failure messages. */
export const logTails = (replicas, lines = 30) =>
  replicas.map((r) => `--- ${r.tag} (last ${lines} lines)\n${r.log.split('\n').slice(-lines).join('\n')}`).join('\n');

/** Runs `fn(item, index)` over `items`, at most `limit` at a time; rejects on the first failure. */
export async function eachLimit(items, limit, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

export function countBy(items, key) {
  const out = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}
