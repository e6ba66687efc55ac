// Redirect mode (no popup): auth(key, id, {mode: 'redirect', returnTo}) sends the whole window
// through the flow and the server back to returnTo, where Nango.handleRedirectResult() reads the
// outcome; a returnTo outside the server's NANGO_REDIRECT_ALLOWLIST is refused on a page.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { SDKS, SETTLE_MS, startHarness, uniqueId } from '../lib/harness.js';

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

/**
 * Starts a redirect-mode auth() on the app page and waits for the browser to come back to
 * `returnTo`; returns the URL it came back to and what handleRedirectResult() made of it.
 */
async function redirectRoundTrip(key, connectionId, returnTo) {
  const page = await h.openApp(SDKS.ours);
  const returnPath = new URL(returnTo).pathname;
  const back = page.waitForURL((url) => url.pathname === returnPath && url.searchParams.has('nango_result'), {
    timeout: SETTLE_MS,
  });
  // The page navigates away while (or right after) auth() resolves.
  const started = await page
    .evaluate((args) => window.runAuth(args), { config: h.sdkConfig(), key, connectionId, options: { mode: 'redirect', returnTo } })
    .catch((err) => ({ navigatedAway: String(err.message).split('\n')[0] }));
  if (started && 'ok' in started) assert.deepEqual(started, { ok: true, result: null });
  await back;
  await page.waitForFunction(() => window.redirectOutcome !== undefined, null, { timeout: SETTLE_MS });
  return { url: new URL(page.url()), outcome: await page.evaluate(() => window.redirectOutcome), page };
}

test('redirect mode: success comes back to returnTo, keeps its query, and the token is on the server', async () => {
  const key = await h.createConfig();
  const connectionId = uniqueId('user');
  const returnTo = `${h.appOrigin}/return?sdk=ours&tab=integrations`;
  const { url, outcome } = await redirectRoundTrip(key, connectionId, returnTo);
  assert.equal(url.origin, h.appOrigin);
  assert.equal(url.searchParams.get('tab'), 'integrations');
  assert.equal(url.searchParams.get('nango_result'), 'success');
  assert.deepEqual(outcome, { ok: true, result: { providerConfigKey: key, connectionId } });
  // The connect request carried the return URL, URL-encoded.
  const connect = h.requests.find((u) => u.startsWith(`${h.nangoUrl}/oauth/connect/${key}?`));
  assert.ok(connect, 'no /oauth/connect request');
  assert.equal(new URL(connect).searchParams.get('return_to'), returnTo);
  assert.equal(new URL(connect).searchParams.get('ws_client_id'), null);
  const { status, body } = await h.getConnection(key, connectionId);
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(typeof body.credentials?.access_token, 'string');
});

test('redirect mode: a provider refusal comes back as an error that handleRedirectResult throws', async () => {
  const key = await h.createConfig();
  h.denyAuthorization(key, { error: 'access_denied', error_description: 'Nope' });
  const connectionId = uniqueId('user');
  const { url, outcome } = await redirectRoundTrip(key, connectionId, `${h.appOrigin}/return?sdk=ours`);
  assert.equal(url.searchParams.get('nango_result'), 'error');
  assert.equal(outcome.ok, false);
  const e = outcome.error;
  assert.equal(e.isError, true);
  assert.equal(e.type, 'callback_err');
  assert.match(e.message, /access_denied/);
  assert.deepEqual(e.error, { type: 'callback_err', message: e.message });
  assert.equal(e.providerConfigKey, key);
  assert.equal(e.connectionId, connectionId);
});

test('redirect mode: an unknown config key comes back as provider_config_err', async () => {
  const key = uniqueId('no-such-config');
  const connectionId = uniqueId('user');
  const { outcome } = await redirectRoundTrip(key, connectionId, `${h.appOrigin}/return?sdk=ours`);
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error.type, 'provider_config_err');
  assert.equal(outcome.error.providerConfigKey, key);
});

test('redirect mode: a second flow from a page that still has a result reads the new result', async () => {
  const key = await h.createConfig();
  h.denyAuthorization(key, { error: 'access_denied' });
  const first = await redirectRoundTrip(key, uniqueId('user'), `${h.appOrigin}/return?sdk=ours`);
  assert.equal(first.outcome.ok, false);
  // Retry from the page we came back to (its URL has nango_result=error...), with a working config
  // and the default returnTo (the current page).
  const key2 = await h.createConfig();
  const connectionId = uniqueId('user');
  const page = first.page;
  const previous = page.url();
  const back = page.waitForURL((url) => url.href !== previous && url.searchParams.get('nango_result') === 'success', {
    timeout: SETTLE_MS,
  });
  await page
    .evaluate((args) => window.runAuth(args), { config: h.sdkConfig(), key: key2, connectionId, options: { mode: 'redirect' } })
    .catch(() => {});
  await back;
  await page.waitForFunction(() => window.redirectOutcome !== undefined, null, { timeout: SETTLE_MS });
  const outcome = await page.evaluate(() => window.redirectOutcome);
  assert.deepEqual(outcome, { ok: true, result: { providerConfigKey: key2, connectionId } });
  assert.deepEqual(new URL(page.url()).searchParams.getAll('nango_result'), ['success']);
});

test('redirect mode: a returnTo outside the allow-list is refused on a page, not followed', async () => {
  const key = await h.createConfig();
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  // Same app, but as http://127.0.0.1:<port>: another origin, not in NANGO_REDIRECT_ALLOWLIST.
  const evil = `${h.appOrigin.replace('localhost', '127.0.0.1')}/return?sdk=ours`;
  const responsePromise = page.waitForResponse((r) => r.url().startsWith(`${h.nangoUrl}/oauth/connect/`), {
    timeout: SETTLE_MS,
  });
  await page
    .evaluate((args) => window.runAuth(args), { config: h.sdkConfig(), key, connectionId, options: { mode: 'redirect', returnTo: evil } })
    .catch(() => {});
  const response = await responsePromise;
  assert.equal(response.headers().location, undefined, 'the server redirected');
  assert.ok(response.status() >= 400, `status ${response.status()}`);
  // The browser shows the server's page (and stays there).
  await page.waitForURL((url) => url.href.startsWith(`${h.nangoUrl}/oauth/connect/`), { timeout: SETTLE_MS });
  await page.waitForLoadState('load');
  await page.waitForTimeout(500);
  assert.ok(page.url().startsWith(`${h.nangoUrl}/oauth/connect/`), `the browser left the server's page: ${page.url()}`);
  const html = await response.text();
  assert.match(html, /invalid_return_to/, 'the page does not carry the invalid_return_to type');
  const text = await page.evaluate(() => document.body?.innerText ?? '');
  assert.ok(text.trim().length > 0, 'the refusal page shows nothing');
  assert.ok(!h.requests.some((u) => u.startsWith(`${h.providerUrl}/authorize`) && u.includes(`client-${key}`)), 'the flow went on to the provider');
  assert.ok(!h.requests.some((u) => u.startsWith(evil.split('?')[0])), 'the browser went to the refused returnTo');
});
