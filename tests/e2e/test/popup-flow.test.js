// Successful popup flows in Chromium with our SDK (from the server's /sdk/frontend.js) and the
// published @nangohq/frontend 0.9.0 (WebSocket) and 0.8.0 (postMessage), each ending with the
// token readable over REST; and connection config reaching an interpolated authorize URL.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, before, test } from 'node:test';
import {
  PROVIDER_COOP,
  PROVIDER_ZENDESK_LIKE,
  SDK_NAMES,
  SDKS,
  putInBackground,
  sdkSourcePath,
  startHarness,
  uniqueId,
  watchPopupHandle,
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

/** The connection exists on the server with an access token. */
async function assertConnected(key, connectionId) {
  const { status, body } = await h.getConnection(key, connectionId);
  assert.equal(status, 200, `GET /connection/${connectionId}: ${JSON.stringify(body)}`);
  assert.equal(body.connection_id, connectionId);
  assert.equal(body.provider_config_key, key);
  assert.equal(body.credentials?.type, 'OAUTH2');
  assert.equal(typeof body.credentials?.access_token, 'string');
  assert.ok(body.credentials.access_token.length > 0, 'empty access token');
  return body;
}

/** The /oauth/connect request the popup made for this connection. */
function connectRequest(key, connectionId) {
  const prefix = `${h.nangoUrl}/oauth/connect/`;
  const url = h.requests
    .filter((u) => u.startsWith(prefix))
    .map((u) => new URL(u))
    .find((u) => decodeURIComponent(u.pathname.slice('/oauth/connect/'.length)) === key && u.searchParams.get('connection_id') === connectionId);
  assert.ok(url, `no /oauth/connect request for ${key}/${connectionId} among ${h.requests.length} requests`);
  return url;
}

test('the server serves our SDK verbatim at /sdk/frontend.js, loadable cross-origin as a module', async () => {
  const res = await fetch(`${h.nangoUrl}/sdk/frontend.js`, { headers: { Origin: h.appOrigin } });
  assert.equal(res.status, 200, 'GET /sdk/frontend.js');
  assert.match(res.headers.get('content-type') ?? '', /^(text|application)\/javascript\b/);
  const allowOrigin = res.headers.get('access-control-allow-origin');
  assert.ok(allowOrigin === '*' || allowOrigin === h.appOrigin, `Access-Control-Allow-Origin: ${allowOrigin}`);
  assert.equal(await res.text(), readFileSync(sdkSourcePath, 'utf8'), 'the served file differs from sdks/frontend/index.js');
});

test('our SDK: popup flow over the WebSocket protocol resolves and the token is on the server', async () => {
  const key = await h.createConfig();
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  const module = await page.evaluate(() => window.sdkModule);
  assert.deepEqual(module.names.sort(), ['Nango', 'NangoAuthError', 'VERSION', 'default']);
  assert.equal(module.sameDefault, true);

  const outcome = await h.runAuth(page, {
    key,
    connectionId,
    // Values with characters that must be URL-encoded to arrive intact.
    options: { params: { note: 'a&b=c d+e', 'odd name': 'x/y?z#w' } },
  });
  assert.deepEqual(outcome, { ok: true, result: { providerConfigKey: key, connectionId } });

  const connect = connectRequest(key, connectionId);
  assert.ok(connect.searchParams.get('ws_client_id'), `the popup did not carry ws_client_id: ${connect}`);
  const body = await assertConnected(key, connectionId);
  assert.equal(body.connection_config['connectionConfig.params.note'], 'a&b=c d+e');
  assert.equal(body.connection_config['connectionConfig.params.odd name'], 'x/y?z#w');
});

test('our SDK: a config key and connection id with reserved characters round-trip', async () => {
  const key = await h.createConfig({ key: uniqueId('cfg with space&amp') });
  const connectionId = `${uniqueId('user')}/é?#&`;
  const page = await h.openApp(SDKS.ours);
  const outcome = await h.runAuth(page, { key, connectionId });
  assert.deepEqual(outcome, { ok: true, result: { providerConfigKey: key, connectionId } });
  await assertConnected(key, connectionId);
});

test('@nangohq/frontend@0.9.0 (WebSocket protocol): popup flow resolves and the token is on the server', async () => {
  const key = await h.createConfig();
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.v09);
  const outcome = await h.runAuth(page, { key, connectionId });
  assert.deepEqual(outcome, { ok: true, result: { providerConfigKey: key, connectionId } });
  assert.ok(connectRequest(key, connectionId).searchParams.get('ws_client_id'));
  await assertConnected(key, connectionId);
});

test('@nangohq/frontend@0.8.0 (postMessage protocol): popup flow resolves and the token is on the server', async () => {
  const key = await h.createConfig();
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.v08);
  const outcome = await h.runAuth(page, { key, connectionId });
  assert.deepEqual(outcome, { ok: true, result: { connectionId, providerConfigKey: key } });
  assert.equal(connectRequest(key, connectionId).searchParams.get('ws_client_id'), null);
  await assertConnected(key, connectionId);
});

// (0.9.0 is left out: its popup is `noopener`, so it cannot see the user close it and its promise
// would never settle.)
for (const sdk of [SDKS.ours, SDKS.v08]) {
  test(`${SDK_NAMES[sdk]}: connection config reaches the interpolated authorize URL`, async () => {
    const key = await h.createConfig({ provider: PROVIDER_ZENDESK_LIKE });
    const connectionId = uniqueId('user');
    const page = await h.openApp(sdk);
    const authorizePrefix = `${h.providerUrl}/acme-eu/authorize?`;
    const popupPromise = h.nextPopup();
    const authorizePromise = h.context.waitForEvent('request', {
      predicate: (r) => r.url().startsWith(authorizePrefix),
      timeout: 5000,
    });
    const outcomePromise = h.runAuth(page, { key, connectionId, options: { params: { subdomain: 'acme-eu' } } });
    const popup = await popupPromise;
    const authorize = new URL((await authorizePromise).url());
    assert.equal(authorize.searchParams.get('client_id'), `client-${key}`);
    assert.equal(authorize.searchParams.get('response_type'), 'code');
    assert.equal(authorize.searchParams.get('redirect_uri'), `${h.nangoUrl}/oauth/callback`);
    assert.ok(authorize.searchParams.get('state'));
    // The mock provider has no such page: the user gives up and closes the popup.
    await popup.close();
    const outcome = await outcomePromise;
    assert.equal(outcome.ok, false);
    if (sdk === SDKS.v08) assert.equal(outcome.error.error.type, 'authorization_cancelled');
    else assert.equal(outcome.error.type, 'window_closed');
  });
}

for (const background of [false, true]) {
  const where = background ? 'in the background' : 'focused';
  test(`our SDK (app ${where}): a provider page with Cross-Origin-Opener-Policy (popup.closed reads true early) still succeeds`, async () => {
    const key = await h.createConfig({ provider: PROVIDER_COOP });
    const connectionId = uniqueId('user');
    const page = await h.openApp(SDKS.ours);
    await watchPopupHandle(page);
    if (background) await putInBackground(page);
    // The default closedGraceMs: the COOP page goes on to the provider within it.
    const outcome = await h.runAuth(page, { key, connectionId });
    assert.deepEqual(outcome, { ok: true, result: { providerConfigKey: key, connectionId } });
    assert.equal(await page.evaluate(() => window.sawClosedEarly), true, 'popup.closed never read true: the COOP page did not sever the opener');
    await assertConnected(key, connectionId);
  });
}
