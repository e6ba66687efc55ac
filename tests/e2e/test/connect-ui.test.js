// Current Nango's frontend, @nangohq/frontend@0.71, in Chromium against the real server: auth()
// with a connect session token and no connection id (OAuth popup and API key), a used token
// refused, and openConnectUI through this server's Connect UI page (/connect) to connections,
// with its postMessage events. Screenshots of the page go to tests/e2e/artifacts/.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import {
  PROVIDER,
  PROVIDER_API_KEY,
  SDKS,
  SETTLE_MS,
  artifactPath,
  startHarness,
  uniqueId,
  within,
} from '../lib/harness.js';

let h;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});
afterEach(async () => {
  await h?.closePages();
});

/** POST /connect/sessions with current Nango's body; returns `data`. */
async function mintSession(body) {
  const res = await fetch(`${h.nangoUrl}/connect/sessions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, 201, `POST /connect/sessions: ${JSON.stringify(json)}`);
  return json.data;
}

/** POST /integrations with a display name (current Nango's API); returns the key. */
async function createIntegration({ provider, displayName, oauth = true }) {
  const key = uniqueId(provider);
  const body = { provider, unique_key: key, display_name: displayName };
  if (oauth) body.credentials = { type: 'OAUTH2', client_id: `client-${key}`, client_secret: `secret-${key}`, scopes: 'openid' };
  const res = await fetch(`${h.nangoUrl}/integrations`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `POST /integrations: ${await res.text()}`);
  return key;
}

/** GET /connections?endUserId=...: the connections of one end user. */
async function connectionsOf(endUserId) {
  const res = await fetch(`${h.nangoUrl}/connections?endUserId=${encodeURIComponent(endUserId)}`);
  assert.equal(res.status, 200);
  return (await res.json()).connections;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test('@nangohq/frontend@0.71: auth() with a session token and no connection id connects, and the used token is refused', async () => {
  const key = await h.createConfig();
  const endUser = uniqueId('end-user');
  const { token } = await mintSession({ end_user: { id: endUser, email: 'eu@example.com' }, allowed_integrations: [key] });
  const page = await h.openApp(SDKS.now);
  const config = { host: h.nangoUrl, connectSessionToken: token };

  const outcome = await h.runAuth(page, { key, config });
  assert.equal(outcome.ok, true, JSON.stringify(outcome));
  assert.equal(outcome.result.providerConfigKey, key);
  assert.match(outcome.result.connectionId, UUID);
  const connections = await connectionsOf(endUser);
  assert.deepEqual(connections.map((c) => c.connection_id), [outcome.result.connectionId]);
  assert.equal(connections[0].end_user.email, 'eu@example.com');
  const { status, body } = await h.getConnection(key, outcome.result.connectionId);
  assert.equal(status, 200);
  assert.equal(body.credentials.type, 'OAUTH2');

  // The token has made its connection: a second flow with it fails and stores nothing.
  const again = await h.runAuth(page, { key, config });
  assert.equal(again.ok, false, JSON.stringify(again));
  assert.equal(again.error.type, 'connect_session_err', JSON.stringify(again));
  assert.equal((await connectionsOf(endUser)).length, 1);
});

test('@nangohq/frontend@0.71: API-key credentials under a session; a refused key keeps the token', async () => {
  const key = await h.createConfig({ provider: PROVIDER_API_KEY });
  const endUser = uniqueId('end-user');
  const { token } = await mintSession({ end_user: { id: endUser } });
  const page = await h.openApp(SDKS.now);
  const config = { host: h.nangoUrl, connectSessionToken: token };

  const refused = await h.runAuth(page, { key, config, options: { credentials: { apiKey: 'not-a-key' } } });
  assert.equal(refused.ok, false, JSON.stringify(refused));
  assert.equal(refused.error.type, 'invalid_credentials', JSON.stringify(refused));
  assert.match(refused.error.message, /format/);

  const done = await h.runAuth(page, { key, config, options: { credentials: { apiKey: 'sk-abcdefgh12' } } });
  assert.equal(done.ok, true, JSON.stringify(done));
  assert.match(done.result.connectionId, UUID);
  const [connection] = await connectionsOf(endUser);
  assert.equal(connection.connection_id, done.result.connectionId);

  const used = await h.runAuth(page, { key, config, options: { credentials: { apiKey: 'sk-abcdefgh34' } } });
  assert.equal(used.ok, false, JSON.stringify(used));
  assert.equal(used.error.type, 'invalid_connect_session', JSON.stringify(used));
});

/** Opens Connect UI from the app page with @nangohq/frontend@0.71; events land in window.uiEvents. */
async function openConnectUI(page, token, extra = {}) {
  await page.evaluate(
    ({ nangoUrl, token, extra }) => {
      window.uiEvents = [];
      const nango = new window.Nango({ host: nangoUrl, connectSessionToken: token });
      window.connectUI = nango.openConnectUI({
        baseURL: `${nangoUrl}/connect`,
        apiURL: nangoUrl,
        onEvent: (event) => window.uiEvents.push(JSON.parse(JSON.stringify(event))),
        ...extra,
      });
    },
    { nangoUrl: h.nangoUrl, token, extra },
  );
  const frame = page.frameLocator('#connect-ui');
  await frame.getByRole('heading', { name: 'Choose an integration' }).waitFor({ timeout: SETTLE_MS });
  return frame;
}

async function waitForEvent(page, type) {
  await within(
    SETTLE_MS * 2,
    page.waitForFunction((t) => window.uiEvents.some((e) => e.type === t), type, { timeout: SETTLE_MS * 2 }),
    `Connect UI event ${type}`,
  );
  return page.evaluate((t) => window.uiEvents.find((e) => e.type === t), type);
}

test('openConnectUI: the page lists the allowed integrations by name and connects one through the popup', async () => {
  const crm = await createIntegration({ provider: PROVIDER, displayName: 'Acme CRM' });
  const keys = await createIntegration({ provider: PROVIDER_API_KEY, displayName: 'Keyed API', oauth: false });
  const hidden = await createIntegration({ provider: PROVIDER, displayName: 'Not Allowed' });
  const endUser = uniqueId('end-user');
  const { token } = await mintSession({ end_user: { id: endUser }, allowed_integrations: [crm, keys] });

  const page = await h.openApp(SDKS.now);
  await page.setViewportSize({ width: 900, height: 700 });
  const frame = await openConnectUI(page, token);
  const buttons = frame.getByRole('listitem').getByRole('button');
  await buttons.first().waitFor();
  const names = await buttons.allInnerTexts();
  assert.equal(names.length, 2, names.join(' | '));
  assert.ok(names.some((n) => n.includes('Acme CRM')), names.join(' | '));
  assert.ok(names.some((n) => n.includes('Keyed API')), names.join(' | '));
  assert.ok(!names.some((n) => n.includes('Not Allowed')), names.join(' | '));
  assert.ok(hidden);
  await page.screenshot({ path: artifactPath('connect-ui-list.png') });

  const popup = h.nextPopup();
  await frame.getByRole('button', { name: /Acme CRM/ }).click();
  await popup;
  const connected = await waitForEvent(page, 'connect');
  assert.equal(connected.payload.providerConfigKey, crm);
  assert.match(connected.payload.connectionId, UUID);
  await frame.getByText('Acme CRM is connected.').waitFor({ timeout: SETTLE_MS });
  await page.screenshot({ path: artifactPath('connect-ui-connected.png') });
  const connections = await connectionsOf(endUser);
  assert.deepEqual(connections.map((c) => c.connection_id), [connected.payload.connectionId]);

  // Done closes the page: the app gets `close` and the iframe goes.
  await frame.getByRole('button', { name: 'Done' }).click();
  await waitForEvent(page, 'close');
  await page.waitForFunction(() => !document.getElementById('connect-ui'), null, { timeout: SETTLE_MS });
});

test('openConnectUI: the API-key form works from the keyboard, reports errors, and a used session is refused', async () => {
  const keys = await createIntegration({ provider: PROVIDER_API_KEY, displayName: 'Keyed API', oauth: false });
  const endUser = uniqueId('end-user');
  const { token } = await mintSession({ end_user: { id: endUser }, allowed_integrations: [keys] });
  const page = await h.openApp(SDKS.now);
  await page.setViewportSize({ width: 900, height: 700 });
  const frame = await openConnectUI(page, token, { themeOverride: 'dark' });

  // The first integration has the focus; Enter opens its form, whose field is labelled.
  await frame.getByRole('button', { name: /Keyed API/ }).waitFor();
  await page.keyboard.press('Enter');
  const field = frame.getByLabel('API key');
  await field.waitFor({ timeout: SETTLE_MS });
  await page.keyboard.type('wrong');
  await page.keyboard.press('Enter');
  const error = await waitForEvent(page, 'error');
  assert.equal(error.payload.errorType, 'invalid_credentials');
  await frame.getByRole('status').filter({ hasText: /format/ }).waitFor({ timeout: SETTLE_MS });
  await page.screenshot({ path: artifactPath('connect-ui-dark-error.png') });

  await field.fill('sk-abcdefgh56');
  await page.keyboard.press('Enter');
  const connected = await waitForEvent(page, 'connect');
  assert.equal(connected.payload.providerConfigKey, keys);
  assert.match(connected.payload.connectionId, UUID);
  assert.equal((await connectionsOf(endUser)).length, 1);

  // Escape closes.
  await page.keyboard.press('Escape');
  await waitForEvent(page, 'close');

  // The session has made its connection: Connect UI opened with it again says so.
  await page.evaluate(() => {
    window.uiEvents = [];
  });
  await page.evaluate(
    ({ nangoUrl, token }) => {
      const nango = new window.Nango({ host: nangoUrl, connectSessionToken: token });
      nango.openConnectUI({ baseURL: `${nangoUrl}/connect`, apiURL: nangoUrl, onEvent: (e) => window.uiEvents.push(JSON.parse(JSON.stringify(e))) });
    },
    { nangoUrl: h.nangoUrl, token },
  );
  const refused = await waitForEvent(page, 'error');
  assert.equal(refused.payload.errorType, 'invalid_connect_session');
});

test('the Connect UI page may be framed only by the app origins of NANGO_REDIRECT_ALLOWLIST', async () => {
  const res = await fetch(`${h.nangoUrl}/connect/?apiURL=${encodeURIComponent(h.nangoUrl)}`);
  assert.equal(res.status, 200);
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(csp, new RegExp(`frame-ancestors ${h.appOrigin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  assert.equal(res.headers.get('x-frame-options'), null);
  // Another origin's page (the provider's, here) cannot show it.
  const other = await h.context.newPage();
  const blocked = [];
  other.on('console', (msg) => blocked.push(msg.text()));
  await other.goto(`${h.providerUrl}/wait`);
  await other.evaluate((src) => {
    const iframe = document.createElement('iframe');
    iframe.src = src;
    document.body.append(iframe);
  }, `${h.nangoUrl}/connect/`);
  await other.waitForTimeout(500);
  const framed = other.frames().find((f) => f.url().startsWith(`${h.nangoUrl}/connect`));
  const content = framed ? await framed.content().catch(() => '') : '';
  assert.ok(!content.includes('Connect an account'), 'the page rendered inside a foreign frame');
});
