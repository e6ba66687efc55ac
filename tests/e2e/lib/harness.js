// Browser test harness: a real OAuth2 provider (oauth2-mock-server), the real `nango serve` binary
// as a child process, an app page served from ANOTHER origin that loads the frontend SDK under
// test, and Debian's headless Chromium driven by playwright-core.
//
// Environment:
//   NANGO_BIN                 server binary (default <repo>/target/debug/nango)
//   CHROMIUM_BIN              browser (default /usr/bin/chromium; `apt-get install -y chromium`)
//   NANGO_E2E_OUR_SDK         where the app page loads our SDK from: `server` (default,
//                             <server>/sdk/frontend.js) or `file` (sdks/frontend/index.js served by
//                             the app server, to work on the SDK without a server build)
//   NANGO_E2E_SERVER_LOG      file the server's stdout/stderr are appended to

import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Events, OAuth2Server } from 'oauth2-mock-server';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const e2eRoot = path.resolve(here, '..');
export const repoRoot = path.resolve(e2eRoot, '..', '..');
export const artifactsDir = path.join(e2eRoot, 'artifacts');
export const sdkSourcePath = path.join(repoRoot, 'sdks', 'frontend', 'index.js');
export const NANGO_BIN = process.env.NANGO_BIN
  ? path.resolve(repoRoot, process.env.NANGO_BIN)
  : path.join(repoRoot, 'target', 'debug', 'nango');
export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const OUR_SDK_SOURCE = process.env.NANGO_E2E_OUR_SDK || 'server';

/** Provider templates declared in the providers file given to the server. */
export const PROVIDER = 'mock'; // oauth2-mock-server's /authorize and /token
export const PROVIDER_ZENDESK_LIKE = 'zendesk-like'; // ${connectionConfig.params.subdomain} in the URL path
export const PROVIDER_SLOW = 'slow'; // an authorize page that never redirects (a user who takes their time)
export const PROVIDER_COOP = 'coop'; // an authorize page with Cross-Origin-Opener-Policy: same-origin
export const PROVIDER_COOP_SLOW = 'coop-slow'; // the same policy on a consent page that never redirects
export const PROVIDER_API_KEY = 'apikey'; // auth_mode API_KEY, keys look like sk-<8+ lowercase/digits>
export const PROVIDER_BASIC = 'basic'; // auth_mode BASIC

/** The SDKs an app page can load. */
export const SDKS = {
  ours: 'ours',
  v08: 'nango-frontend-08', // @nangohq/frontend@0.8.0, postMessage protocol
  v09: 'nango-frontend-09', // @nangohq/frontend@0.9.0, WebSocket protocol
  now: 'nango-frontend-now', // @nangohq/frontend@0.71, connect sessions and openConnectUI
};

/** Human names of the SDKs, for test titles. */
export const SDK_NAMES = {
  [SDKS.ours]: 'our SDK',
  [SDKS.v08]: '@nangohq/frontend@0.8.0',
  [SDKS.v09]: '@nangohq/frontend@0.9.0',
  [SDKS.now]: '@nangohq/frontend@0.71',
};

/** Every promise the browser runs must settle within this. */
export const SETTLE_MS = 5000;

export const uniqueId = (prefix) => `${prefix}-${randomBytes(5).toString('hex')}`;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects when `promise` has not settled within `ms`. */
export async function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// --- the OAuth provider ----------------------------------------------------------------------

async function startMockProvider() {
  const mock = new OAuth2Server();
  await mock.issuer.keys.generate('RS256');
  await mock.start(0, '127.0.0.1');
  const url = `http://127.0.0.1:${mock.address().port}`;
  mock.service.on(Events.BeforeTokenSigning, (token) => {
    token.payload.jti = randomUUID();
  });
  // Per client id: query parameters that replace `code` on the redirect back to the server
  // (a provider refusing access).
  const denials = new Map();
  mock.service.on(Events.BeforeAuthorizeRedirect, (redirect, req) => {
    const denial = denials.get(req.query.client_id);
    if (!denial) return;
    redirect.url.searchParams.delete('code');
    for (const [name, value] of Object.entries(denial)) redirect.url.searchParams.set(name, value);
  });
  // A consent page that never answers: the user is still deciding.
  mock.service.addRoute('GET', '/wait', (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Mock provider</title><h1>Sign in to Mock provider</h1><p>Waiting for you…</p>');
  });
  // A consent page that isolates itself from its opener (as some identity providers do), then
  // goes on to the real authorize endpoint.
  mock.service.addRoute('GET', '/coop-authorize', (req, res) => {
    const next = `/authorize?${new URL(req.url, url).searchParams}`;
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cross-Origin-Opener-Policy': 'same-origin',
    });
    res.end(`<!doctype html><title>Mock provider</title><meta http-equiv="refresh" content="0.2;url=${next.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}"><p>Signing you in…</p>`);
  });
  mock.service.addRoute('GET', '/coop-wait', (req, res) => {
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cross-Origin-Opener-Policy': 'same-origin',
    });
    res.end('<!doctype html><title>Mock provider</title><h1>Sign in to Mock provider</h1><p>Waiting for you…</p>');
  });
  return { mock, url, denials };
}

// --- the app (another origin) ----------------------------------------------------------------

const appPage = (sdkUrl, body) => `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>E2E app</title></head>
<body>
<h1>Example app</h1>
<button id="connect" type="button">Connect</button>
<pre id="out"></pre>
<script type="module">
import * as sdk from ${JSON.stringify(sdkUrl)};
const Nango = sdk.default;
window.Nango = Nango;
window.sdkModule = { names: Object.keys(sdk), VERSION: sdk.VERSION, sameDefault: sdk.Nango === sdk.default };
// What a rejection looked like, as plain data (Error objects do not cross to the test process).
const describe = (e) => e === null || typeof e !== 'object'
  ? { thrown: String(e) }
  : {
      isError: e instanceof Error,
      name: e.name,
      type: e.type,
      message: e.message,
      providerConfigKey: e.providerConfigKey,
      connectionId: e.connectionId,
      error: e.error ? { type: e.error.type, message: e.error.message } : undefined,
    };
window.describeError = describe;
/** Runs one auth() and returns how it settled: {ok: true, result} or {ok: false, error}. */
window.runAuth = async ({ config, key, connectionId, options }) => {
  try {
    const nango = new Nango(config);
    const result = await nango.auth(key, connectionId, options);
    return { ok: true, result: result === undefined ? null : { ...result } };
  } catch (e) {
    return { ok: false, error: describe(e) };
  }
};
${body}
window.sdkReady = true;
</script>
</body>
</html>
`;

/** Reads the redirect-mode outcome on the page the server sent the browser back to. */
const RETURN_SCRIPT = `
try {
  window.redirectOutcome = { ok: true, result: Nango.handleRedirectResult() };
} catch (e) {
  window.redirectOutcome = { ok: false, error: describe(e) };
}`;

async function startAppServer({ nangoUrl }) {
  const port = await freePort();
  // The app's origin is `localhost`, the server's `127.0.0.1`: cross-origin, as in production.
  const origin = `http://localhost:${port}`;
  const ourSdkUrl = OUR_SDK_SOURCE === 'file' ? `${origin}/sdk/ours.js` : `${nangoUrl}/sdk/frontend.js`;
  const sdkUrl = (sdk) => {
    switch (sdk) {
      case SDKS.ours:
        return ourSdkUrl;
      case SDKS.v08:
      case SDKS.v09:
        return `${origin}/sdk/${sdk}.js`;
      case SDKS.now:
        // Several modules (index.js imports ./authModal.js and ./connectUI.js): served as a folder.
        return `${origin}/sdk/${sdk}/index.js`;
      default:
        throw new Error(`unknown SDK ${sdk}`);
    }
  };
  const staticFiles = {
    '/sdk/ours.js': sdkSourcePath,
    [`/sdk/${SDKS.v08}.js`]: path.join(e2eRoot, 'node_modules', SDKS.v08, 'dist', 'index.js'),
    [`/sdk/${SDKS.v09}.js`]: path.join(e2eRoot, 'node_modules', SDKS.v09, 'dist', 'index.js'),
  };
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url, origin);
    const nowPrefix = `/sdk/${SDKS.now}/`;
    const nowFile = url.pathname.startsWith(nowPrefix) && /^[a-zA-Z]+\.js$/.test(url.pathname.slice(nowPrefix.length))
      ? path.join(e2eRoot, 'node_modules', SDKS.now, 'dist', url.pathname.slice(nowPrefix.length))
      : null;
    const file = staticFiles[url.pathname] ?? (nowFile && existsSync(nowFile) ? nowFile : null);
    if (file) {
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(readFileSync(file));
      return;
    }
    const sdk = url.searchParams.get('sdk') || SDKS.ours;
    if (url.pathname === '/app' || url.pathname === '/return') {
      let html;
      try {
        html = appPage(sdkUrl(sdk), url.pathname === '/return' ? RETURN_SCRIPT : '');
      } catch (err) {
        res.writeHead(400).end(String(err));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(html);
      return;
    }
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    origin,
    sdkUrl,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// --- the server --------------------------------------------------------------------------------

async function startNango({ providerUrl, dir, appOrigin, port }) {
  const providersFile = path.join(dir, 'providers.yaml');
  writeFileSync(
    providersFile,
    [
      `# oauth2-mock-server at ${providerUrl}`,
      `${PROVIDER}:`,
      '  auth_mode: OAUTH2',
      `  authorization_url: ${providerUrl}/authorize`,
      `  token_url: ${providerUrl}/token`,
      `${PROVIDER_ZENDESK_LIKE}:`,
      '  auth_mode: OAUTH2',
      `  authorization_url: ${providerUrl}/\${connectionConfig.params.subdomain}/authorize`,
      `  token_url: ${providerUrl}/\${connectionConfig.params.subdomain}/token`,
      `${PROVIDER_COOP}:`,
      '  auth_mode: OAUTH2',
      `  authorization_url: ${providerUrl}/coop-authorize`,
      `  token_url: ${providerUrl}/token`,
      `${PROVIDER_API_KEY}:`,
      '  auth_mode: API_KEY',
      '  api_key:',
      '    header: X-Api-Key',
      '    pattern: "sk-[a-z0-9]{8,}"',
      `${PROVIDER_BASIC}:`,
      '  auth_mode: BASIC',
      `${PROVIDER_COOP_SLOW}:`,
      '  auth_mode: OAUTH2',
      `  authorization_url: ${providerUrl}/coop-wait`,
      `  token_url: ${providerUrl}/token`,
      `${PROVIDER_SLOW}:`,
      '  auth_mode: OAUTH2',
      `  authorization_url: ${providerUrl}/wait`,
      `  token_url: ${providerUrl}/token`,
      '',
    ].join('\n'),
  );
  const nangoUrl = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    SERVER_PORT: String(port),
    NANGO_BIND: '127.0.0.1',
    NANGO_SERVER_URL: nangoUrl,
    NANGO_DATABASE_URL: `sqlite://${path.join(dir, 'nango.db')}`,
    NANGO_PROVIDERS_FILE: providersFile,
    NANGO_REDIRECT_ALLOWLIST: appOrigin,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    TELEMETRY: 'false',
  };
  for (const name of ['NANGO_SECRET_KEY', 'NANGO_CALLBACK_URL', 'PORT', 'NANGO_DB_HOST']) delete env[name];

  let log = '';
  const logFile = process.env.NANGO_E2E_SERVER_LOG;
  const onOutput = (chunk) => {
    log += chunk;
    if (logFile) appendFileSync(logFile, chunk);
  };
  if (logFile) appendFileSync(logFile, `\n=== ${new Date().toISOString()} ${NANGO_BIN} serve on ${nangoUrl}\n`);
  const child = spawn(NANGO_BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', onOutput);
  child.stderr.setEncoding('utf8').on('data', onOutput);
  let exited = null;
  const exitedPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.on('error', (error) => {
      exited = { error: String(error) };
      resolve();
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exitedPromise;
    clearTimeout(timer);
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`nango serve exited before becoming healthy (${JSON.stringify(exited)}):\n${log}`);
    }
    try {
      const res = await fetch(`${nangoUrl}/`);
      if (res.ok && (await res.json()).result === 'ok') break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nango serve did not become healthy within 30 s:\n${log}`);
    }
    await sleep(100);
  }
  return { nangoUrl, stop, log: () => log };
}

// --- the browser -------------------------------------------------------------------------------

async function startBrowser(dir) {
  if (!existsSync(CHROMIUM_BIN)) {
    throw new Error(`Chromium not found at ${CHROMIUM_BIN}: run \`apt-get install -y chromium\` or set CHROMIUM_BIN`);
  }
  const userDataDir = mkdtempSync(path.join(dir, 'chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 900, height: 700 },
  });
  // Every JavaScript dialog anywhere (app page or popup) is recorded and dismissed, and every
  // request the browser makes is recorded.
  const dialogs = [];
  const requests = [];
  context.on('request', (request) => requests.push(request.url()));
  context.on('dialog', (dialog) => {
    dialogs.push({ type: dialog.type(), message: dialog.message(), url: dialog.page()?.url() });
    dialog.dismiss().catch(() => {});
  });
  // A page that stays open, so closing every other page between tests never ends the browser.
  const anchor = context.pages()[0] ?? (await context.newPage());
  return { context, dialogs, requests, anchor };
}

// --- all together -----------------------------------------------------------------------------

/**
 * Starts the provider, the server, the app and the browser. Call `stop()` in `after`.
 */
export async function startHarness() {
  if (!existsSync(NANGO_BIN)) {
    throw new Error(`nango binary not found at ${NANGO_BIN}: run \`cargo build -p nango-cli\` or set NANGO_BIN`);
  }
  const cleanups = [];
  const stop = async () => {
    while (cleanups.length) {
      try {
        await cleanups.pop()();
      } catch (err) {
        process.stderr.write(`harness cleanup: ${err?.stack ?? err}\n`);
      }
    }
  };
  try {
    const dir = mkdtempSync(path.join(tmpdir(), 'nango-e2e-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

    const provider = await startMockProvider();
    cleanups.push(() => provider.mock.stop());

    // The app needs the server's URL (to load /sdk/frontend.js) and the server the app's origin
    // (its allow-list): reserve the server's port first.
    const nangoPort = await freePort();
    const app = await startAppServer({ nangoUrl: `http://127.0.0.1:${nangoPort}` });
    cleanups.push(app.stop);

    const nango = await startNango({ providerUrl: provider.url, dir, appOrigin: app.origin, port: nangoPort });
    cleanups.push(nango.stop);

    const browser = await startBrowser(dir);
    cleanups.push(() => browser.context.close());

    const { context, dialogs, requests, anchor } = browser;
    const nangoUrl = nango.nangoUrl;

    const harness = {
      nangoUrl,
      providerUrl: provider.url,
      appOrigin: app.origin,
      context,
      dialogs,
      /** Every URL the browser requested, in order. */
      requests,
      serverLog: nango.log,
      stop,

      /** POST /config; returns the config key. */
      async createConfig({ key = uniqueId('cfg'), provider: tmpl = PROVIDER, scopes = 'openid,profile' } = {}) {
        const res = await fetch(`${nangoUrl}/config`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
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

      /** Makes the provider refuse every authorization for this config key. */
      denyAuthorization(key, params = { error: 'access_denied' }) {
        provider.denials.set(`client-${key}`, params);
      },

      /** GET /connection/<id>?provider_config_key=<key>: {status, body}. */
      async getConnection(key, connectionId) {
        const res = await fetch(
          `${nangoUrl}/connection/${encodeURIComponent(connectionId)}?provider_config_key=${encodeURIComponent(key)}`,
        );
        const text = await res.text();
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        return { status: res.status, body };
      },

      /** Opens the app page with the given SDK and waits until it loaded (fails fast if it cannot). */
      async openApp(sdk = SDKS.ours, pathname = '/app') {
        const page = await context.newPage();
        const errors = [];
        let onError;
        const failed = new Promise((resolve) => {
          onError = (text) => {
            errors.push(text);
            resolve();
          };
        });
        page.on('pageerror', (err) => onError(String(err)));
        page.on('console', (msg) => {
          if (msg.type() === 'error') onError(msg.text());
        });
        await page.goto(`${app.origin}${pathname}?sdk=${encodeURIComponent(sdk)}`);
        const ready = page.waitForFunction(() => window.sdkReady === true, null, { timeout: SETTLE_MS }).then(() => true, () => false);
        // An error before the SDK is ready (a 404 for the module...) ends the wait early.
        const early = failed.then(() => sleep(300)).then(() => page.evaluate(() => window.sdkReady === true).catch(() => false));
        if (!(await Promise.race([ready, early]))) {
          throw new Error(`the app page did not load the SDK ${sdk} (${app.sdkUrl(sdk)}): ${errors.join(' | ') || 'no error reported'}`);
        }
        return page;
      },

      /** `{host, debug}` options for `new Nango()`: every SDK version accepts an options object. */
      sdkConfig(host = nangoUrl) {
        return { host, debug: true };
      },

      /** Calls window.runAuth in `page` and returns the outcome, insisting that it settles in time. */
      async runAuth(page, { key, connectionId, options, config = harness.sdkConfig(), settleMs = SETTLE_MS }) {
        return within(
          settleMs,
          page.evaluate((args) => window.runAuth(args), { config, key, connectionId, options }),
          `auth(${key}, ${connectionId})`,
        );
      },

      /** Resolves with the next page (popup) the browser opens. */
      nextPopup(timeout = SETTLE_MS) {
        return context.waitForEvent('page', { timeout });
      },

      /** Closes every page the tests opened (between tests). */
      async closePages() {
        for (const p of context.pages()) if (p !== anchor) await p.close().catch(() => {});
      },
    };
    return harness;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Makes `page` record whether the popup handle the SDK gets ever reads `closed`. */
export async function watchPopupHandle(page) {
  await page.evaluate(() => {
    const open = window.open.bind(window);
    window.open = (...args) => {
      const popup = open(...args);
      window.sawClosedEarly = false;
      const watch = setInterval(() => {
        if (popup && popup.closed) {
          window.sawClosedEarly = true;
          clearInterval(watch);
        }
      }, 20);
      return popup;
    };
  });
}

/** Makes `page` look like a window in the background (a headless browser says every page has the focus). */
export async function putInBackground(page) {
  await page.evaluate(() => {
    document.hasFocus = () => false;
  });
}

/** The path under tests/e2e/artifacts/ of a screenshot (the folder is created). */
export function artifactPath(name) {
  mkdirSync(artifactsDir, { recursive: true });
  return path.join(artifactsDir, name);
}
