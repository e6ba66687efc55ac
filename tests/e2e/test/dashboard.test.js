// The web dashboard at /dashboard in headless Chromium, against the real server binary and
// oauth2-mock-server: a wrong key is refused, the right one logs in, an integration is created
// through the form (provider picked with the catalog search), "connect a test account" runs the
// popup flow with the server's frontend SDK, the connection is listed as healthy, a forced
// refresh renews it, and it is deleted. The harness's server has no secret key (its dashboard is
// open, with a warning: checked last), so this file starts a second server with one, on the
// harness's provider. Screenshots: tests/e2e/artifacts/dashboard-*.png, at 1280x800.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { NANGO_BIN, PROVIDER, SETTLE_MS, artifactPath, freePort, sleep, startHarness, uniqueId } from '../lib/harness.js';

const SECRET_KEY = 'dashboard-e2e-secret-key';
const VIEWPORT = { width: 1280, height: 800 };

let h;
let server;
let page;
/** Console errors and uncaught exceptions of the dashboard pages (CSP violations show here). */
const pageErrors = [];

/** `nango serve` with a secret key, on the harness's mock provider; stopped in `after`. */
async function startKeyedServer(providerUrl) {
  const dir = mkdtempSync(path.join(tmpdir(), 'nango-e2e-dashboard-'));
  const providersFile = path.join(dir, 'providers.yaml');
  writeFileSync(
    providersFile,
    [`${PROVIDER}:`, '  auth_mode: OAUTH2', `  authorization_url: ${providerUrl}/authorize`, `  token_url: ${providerUrl}/token`, ''].join('\n'),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    SERVER_PORT: String(port),
    NANGO_BIND: '127.0.0.1',
    NANGO_SERVER_URL: url,
    NANGO_DATABASE_URL: `sqlite://${path.join(dir, 'nango.db')}`,
    NANGO_PROVIDERS_FILE: providersFile,
    NANGO_SECRET_KEY: SECRET_KEY,
    LOG_LEVEL: 'info',
  };
  for (const name of ['NANGO_CALLBACK_URL', 'PORT', 'NANGO_DB_HOST', 'NANGO_REQUIRE_CONNECT_SESSION']) delete env[name];
  let log = '';
  const child = spawn(NANGO_BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', (c) => (log += c));
  child.stderr.setEncoding('utf8').on('data', (c) => (log += c));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`the keyed server did not start:\n${log}`);
    }
    await sleep(100);
  }
  return { url, stop, log: () => log };
}

/** GET /connection/<id> on the keyed server, with the key. */
async function restConnection(key, connectionId) {
  const res = await fetch(
    `${server.url}/connection/${encodeURIComponent(connectionId)}?provider_config_key=${encodeURIComponent(key)}`,
    { headers: { Authorization: `Bearer ${SECRET_KEY}` } },
  );
  return { status: res.status, body: await res.json() };
}

const shot = (name) => page.screenshot({ path: artifactPath(`dashboard-${name}.png`), fullPage: true });

async function sessionCookie() {
  return (await h.context.cookies(`${server.url}/dashboard`)).find((c) => c.name === 'nango_dashboard');
}

before(async () => {
  h = await startHarness();
  server = await startKeyedServer(h.providerUrl);
  page = await h.context.newPage();
  await page.setViewportSize(VIEWPORT);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    // The refused login is answered 401 on purpose; anything else is a problem.
    const expected = m.location()?.url?.endsWith('/dashboard/login') && m.text().includes('401');
    if (m.type() === 'error' && !expected) pageErrors.push(`${m.text()} (${m.location()?.url})`);
  });
});

after(async () => {
  await server?.stop();
  await h?.stop();
});

const key = uniqueId('mock-int');
const connectionId = uniqueId('test-user');

test('the dashboard sends a visitor without a session to the login form, and refuses a wrong key', async () => {
  await page.goto(`${server.url}/dashboard`);
  assert.equal(new URL(page.url()).pathname, '/dashboard/login');
  await shot('login');
  await page.fill('#secret_key', 'not-the-key');
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/dashboard/login') && r.request().method() === 'POST'),
    page.click('button[type="submit"]'),
  ]);
  assert.equal(response.status(), 401);
  await page.waitForSelector('#login-error');
  assert.match(await page.textContent('#login-error'), /not the server's secret key/);
  assert.equal(await sessionCookie(), undefined, 'no session cookie after a wrong key');
  await shot('login-refused');
});

test('the right key logs in with an HttpOnly, SameSite=Strict session cookie', async () => {
  await page.fill('#secret_key', SECRET_KEY);
  await Promise.all([page.waitForURL(`${server.url}/dashboard`), page.click('button[type="submit"]')]);
  assert.equal((await page.textContent('h1')).trim(), 'Integrations');
  const cookie = await sessionCookie();
  assert.ok(cookie, 'a session cookie');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.path, '/dashboard');
  assert.equal(await page.evaluate(() => document.cookie), '', 'not readable by scripts');
  assert.equal(await page.locator('.banner').count(), 0, 'no open-dashboard warning with a key');
  await shot('integrations-empty');
});

test('an integration is created through the form, the provider picked with the catalog search', async () => {
  await Promise.all([page.waitForURL(`${server.url}/dashboard/new-integration`), page.click('text=New integration')]);
  await page.fill('#provider_config_key', key);
  await page.fill('#provider', 'moc');
  const choice = page.locator(`#provider-results button[data-provider="${PROVIDER}"]`);
  await choice.waitFor({ timeout: SETTLE_MS });
  await page.fill('#oauth_client_id', `client-${key}`);
  await page.fill('#oauth_client_secret', `secret-${key}`);
  await page.fill('#oauth_scopes', 'openid profile');
  await page.focus('#provider');
  await shot('new-integration');
  await choice.click();
  assert.equal(await page.inputValue('#provider'), PROVIDER);
  await Promise.all([page.waitForURL(/\/dashboard\/integrations\/[^/]+\?notice=created/), page.click('button:has-text("Create integration")')]);
  assert.match(await page.textContent('.notice'), new RegExp(`Integration ${key} created`));
  assert.equal((await page.textContent('h1')).trim(), key);
  const res = await fetch(`${server.url}/config/${key}`, { headers: { Authorization: `Bearer ${SECRET_KEY}` } });
  const { config } = await res.json();
  assert.equal(config.provider, PROVIDER);
  assert.equal(config.oauth_scopes, 'openid,profile');
  // Listed on the integrations page with its client id and scopes.
  await page.goto(`${server.url}/dashboard`);
  const row = page.locator(`#integrations tr[data-key="${key}"]`);
  assert.match(await row.textContent(), new RegExp(`client-${key}`));
  assert.match(await row.textContent(), /openid[\s\S]*profile/);
  await shot('integrations');
  await Promise.all([page.waitForURL(/\/dashboard\/integrations\/[^/?]+$/), row.locator('a.strong').click()]);
  // The callback URL is shown with a copy button that writes it to the clipboard.
  await h.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await page.click('.copy-row.compact button[data-copy]');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${server.url}/oauth/callback`);
});

test('"connect a test account" runs the popup flow and the connection is listed as healthy', async () => {
  await page.fill('#test-connection-id', connectionId);
  await shot('integration');
  const popupPromise = h.nextPopup();
  await page.click('#connect-test-button');
  const popup = await popupPromise;
  await popup.waitForEvent('close', { timeout: SETTLE_MS * 2 }).catch(() => {});
  await page.waitForURL(/notice=connected/, { timeout: SETTLE_MS * 2 });
  assert.match(await page.textContent('.notice'), new RegExp(`Connected ${connectionId}`));
  const row = page.locator(`#connections tr[data-connection-id="${connectionId}"]`);
  assert.equal((await row.locator('.badge').textContent()).trim(), 'healthy');
  await shot('connected');

  await page.click('.mainnav a:has-text("Connections")');
  await page.waitForURL(`${server.url}/dashboard/connections`);
  const listed = page.locator(`#connections tr[data-connection-id="${connectionId}"]`);
  assert.equal((await listed.locator('.badge').textContent()).trim(), 'healthy');
  await shot('connections');
  const { status } = await restConnection(key, connectionId);
  assert.equal(status, 200);
});

test('a forced refresh renews the token (masked on the page, revealed on request)', async () => {
  await page.click(`#connections tr[data-connection-id="${connectionId}"] a.strong`);
  await page.waitForSelector('#force-refresh');
  const before = await restConnection(key, connectionId);
  const oldToken = before.body.credentials.access_token;
  const html = await page.content();
  assert.ok(!html.includes(oldToken), 'the page does not hold the full access token');
  assert.ok(!html.includes(before.body.credentials.refresh_token), 'nor the refresh token');
  const masked = (await page.textContent('#secret-access_token')).trim();
  assert.ok(masked.includes('••••') && !masked.includes(oldToken), masked);
  const refreshedBefore = await page.getAttribute('#last-refresh time', 'datetime');
  await sleep(1100); // a refresh time one second later at least

  await Promise.all([page.waitForURL(/notice=refreshed/), page.click('#force-refresh')]);
  assert.match(await page.textContent('.notice'), /credentials were refreshed/);
  const refreshedAfter = await page.getAttribute('#last-refresh time', 'datetime');
  assert.notEqual(refreshedAfter, refreshedBefore, 'the last-refresh time changed');
  assert.ok(new Date(refreshedAfter) > new Date(refreshedBefore ?? 0));
  assert.equal((await page.textContent('#status')).trim(), 'healthy');
  const after = await restConnection(key, connectionId);
  const newToken = after.body.credentials.access_token;
  assert.notEqual(newToken, oldToken, 'a new access token');
  assert.ok(!(await page.content()).includes(newToken), 'still masked');

  // Reveal: one token in full, fetched on request, then hidden again.
  await page.click('button[data-field="access_token"]');
  await page.waitForFunction(() => document.querySelector('#secret-access_token').classList.contains('revealed'));
  assert.equal((await page.textContent('#secret-access_token')).trim(), newToken);
  await shot('connection');
  await page.click('button[data-field="access_token"]');
  assert.equal((await page.textContent('#secret-access_token')).trim(), masked, 'masked again');
});

test('the connection is deleted after a confirm step', async () => {
  await Promise.all([page.waitForURL(/\/delete$/), page.click('a:has-text("Delete")')]);
  await shot('confirm-delete');
  assert.match(await page.textContent('.confirm-text'), new RegExp(connectionId));
  await Promise.all([page.waitForURL(/notice=connection_deleted/), page.click('button:has-text("Delete")')]);
  assert.match(await page.textContent('.notice'), new RegExp(`Connection ${connectionId} deleted`));
  assert.equal(await page.locator(`#connections tr[data-connection-id="${connectionId}"]`).count(), 0);
  const { status } = await restConnection(key, connectionId);
  assert.equal(status, 400, 'gone over REST too');
  await shot('after-delete');
});

test('the dashboard pages ran without script errors or CSP violations', () => {
  assert.deepEqual(pageErrors, []);
});

test('logging out ends the session in the browser', async () => {
  await Promise.all([page.waitForURL(`${server.url}/dashboard/login`), page.click('button:has-text("Log out")')]);
  assert.equal(await sessionCookie(), undefined);
  await page.goto(`${server.url}/dashboard/connections`);
  assert.equal(new URL(page.url()).pathname, '/dashboard/login');
});

test('without a secret key the dashboard is open and says so', async () => {
  await page.goto(`${h.nangoUrl}/dashboard`);
  const banner = page.locator('.banner');
  assert.match(await banner.textContent(), /No secret key is configured/);
  assert.ok(await banner.isVisible());
  await shot('open-warning');
});
