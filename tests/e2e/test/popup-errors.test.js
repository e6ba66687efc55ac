// Failing popup flows: every auth() promise settles (within 5 s here) with the right error type,
// whether the server reported it (callback_err, provider_config_err) or the browser saw it
// (blocked_by_browser, window_closed, timeout, connection_failed).

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import {
  PROVIDER_COOP_SLOW,
  PROVIDER_SLOW,
  SDK_NAMES,
  SDKS,
  freePort,
  putInBackground,
  sleep,
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

/** The `{type, message}` of a rejection in any SDK's shape (ours, 0.9.0 flat, 0.8.0 nested). */
function rejection(outcome) {
  assert.equal(outcome.ok, false, `expected a rejection, got ${JSON.stringify(outcome)}`);
  const e = outcome.error;
  return e.error && !e.type ? e.error : { type: e.type, message: e.message };
}

/** Our SDK's rejection: an Error with the full shape. */
function assertOurError(outcome, type, { key, connectionId } = {}) {
  assert.equal(outcome.ok, false, `expected a rejection, got ${JSON.stringify(outcome)}`);
  const e = outcome.error;
  assert.equal(e.isError, true, 'not an Error instance');
  assert.equal(e.type, type, `type (message: ${e.message})`);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0, 'empty message');
  assert.deepEqual(e.error, { type, message: e.message });
  if (key !== undefined) assert.equal(e.providerConfigKey, key);
  if (connectionId !== undefined) assert.equal(e.connectionId, connectionId);
  return e;
}

/** Counts the popups opened while `fn` runs. */
async function countingPopups(fn) {
  let popups = 0;
  const onPage = () => {
    popups += 1;
  };
  h.context.on('page', onPage);
  try {
    const value = await fn();
    return { value, popups };
  } finally {
    h.context.off('page', onPage);
  }
}

for (const sdk of [SDKS.ours, SDKS.v09, SDKS.v08]) {
  test(`${SDK_NAMES[sdk]}: the provider denies access -> callback_err`, async () => {
    const key = await h.createConfig();
    h.denyAuthorization(key, { error: 'access_denied', error_description: 'The user said no' });
    const connectionId = uniqueId('user');
    const page = await h.openApp(sdk);
    const outcome = await h.runAuth(page, { key, connectionId });
    const { type, message } = rejection(outcome);
    assert.equal(type, 'callback_err');
    assert.match(message, /^Did not get oauth_token and\/or oauth_verifier in the callback\./);
    if (sdk === SDKS.ours) {
      assertOurError(outcome, 'callback_err', { key, connectionId });
      // The provider's reason reaches the app.
      assert.match(message, /access_denied/);
      assert.match(message, /The user said no/);
    }
    const { status } = await h.getConnection(key, connectionId);
    assert.equal(status, 400, 'a denied flow must not create a connection');
  });
}

test('our SDK: an unknown provider config key -> provider_config_err', async () => {
  const key = uniqueId('no-such-config');
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  const outcome = await h.runAuth(page, { key, connectionId });
  const e = assertOurError(outcome, 'provider_config_err', { key, connectionId });
  assert.equal(e.message, `Could not find a Provider Config matching the "${key}" key.`);
  assert.ok(!h.requests.some((u) => u.startsWith(h.providerUrl) && u.includes(`client-${key}`)));
});

test('our SDK: a missing connection id is refused without opening a popup', async () => {
  const key = await h.createConfig();
  const page = await h.openApp(SDKS.ours);
  const { value: outcome, popups } = await countingPopups(() => h.runAuth(page, { key, connectionId: '' }));
  assertOurError(outcome, 'missing_connection_id', { key });
  assert.equal(popups, 0);
});

test('our SDK: a blocked popup (window.open returns null) -> blocked_by_browser', async () => {
  const key = await h.createConfig();
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  await page.evaluate(() => {
    window.open = () => null;
  });
  const { value: outcome, popups } = await countingPopups(() => h.runAuth(page, { key, connectionId }));
  assertOurError(outcome, 'blocked_by_browser', { key, connectionId });
  assert.equal(popups, 0);
});

test('our SDK: the user closes the popup before the flow ends -> window_closed', async () => {
  const key = await h.createConfig({ provider: PROVIDER_SLOW });
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  const popupPromise = h.nextPopup();
  const started = Date.now();
  const outcomePromise = h.runAuth(page, { key, connectionId });
  const popup = await popupPromise;
  await popup.waitForURL(`${h.providerUrl}/wait?**`, { timeout: 5000 });
  await popup.close();
  const outcome = await outcomePromise;
  assertOurError(outcome, 'window_closed', { key, connectionId });
  assert.ok(Date.now() - started < 5000);
});

test('our SDK: a popup on a page with Cross-Origin-Opener-Policy is not reported closed while the user signs in, and is once they close it', async () => {
  const key = await h.createConfig({ provider: PROVIDER_COOP_SLOW });
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  await watchPopupHandle(page);
  // A real browser gives the focus to the popup; the app's window is in the background.
  await putInBackground(page);
  const popupPromise = h.nextPopup();
  let settled = false;
  const outcomePromise = h.runAuth(page, { key, connectionId, settleMs: 15000 }).finally(() => {
    settled = true;
  });
  const popup = await popupPromise;
  await popup.waitForURL(`${h.providerUrl}/coop-wait?**`, { timeout: 5000 });
  // Well past the default grace period: the handle reads closed, yet the user is still signing in.
  await sleep(3000);
  assert.equal(await page.evaluate(() => window.sawClosedEarly), true, 'the COOP page did not sever the opener');
  assert.equal(settled, false, 'reported an outcome while the popup was still open');
  assert.equal(popup.isClosed(), false);
  // The user closes the popup; the browser hands the focus back to the app.
  await popup.close();
  const closedAt = Date.now();
  await page.evaluate(() => {
    document.hasFocus = () => true;
    window.dispatchEvent(new Event('focus'));
  });
  const outcome = await outcomePromise;
  assertOurError(outcome, 'window_closed', { key, connectionId });
  assert.ok(Date.now() - closedAt < 5000, `settled ${Date.now() - closedAt} ms after the close`);
});

test('our SDK: a forged AUTHORIZATION_SUCEEDED posted by the provider page is ignored', async () => {
  const key = await h.createConfig({ provider: PROVIDER_SLOW });
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  const popupPromise = h.nextPopup();
  const outcomePromise = h.runAuth(page, { key, connectionId });
  const popup = await popupPromise;
  await popup.waitForURL(`${h.providerUrl}/wait?**`, { timeout: 5000 });
  // Our popup keeps its opener (no noopener): a page at the provider can post to the app.
  const posted = await popup.evaluate(
    ([k, id]) => {
      if (!window.opener) return false;
      window.opener.postMessage({ eventType: 'AUTHORIZATION_SUCEEDED', data: { connectionId: id, providerConfigKey: k } }, '*');
      return true;
    },
    [key, connectionId],
  );
  assert.equal(posted, true, 'the popup has no opener');
  await popup.close();
  assertOurError(await outcomePromise, 'window_closed', { key, connectionId });
});

test('our SDK: a flow that does not finish in timeoutMs -> timeout, and the popup is closed', async () => {
  const key = await h.createConfig({ provider: PROVIDER_SLOW });
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  const popupPromise = h.nextPopup();
  const outcomePromise = h.runAuth(page, { key, connectionId, options: { timeoutMs: 1500 } });
  const popup = await popupPromise;
  const outcome = await outcomePromise;
  const e = assertOurError(outcome, 'timeout', { key, connectionId });
  assert.match(e.message, /1500 ms/);
  await popup.waitForEvent('close', { timeout: 2000 }).catch(() => {});
  assert.equal(popup.isClosed(), true, 'the SDK left the popup open after the timeout');
});

test('our SDK: the server is unreachable -> connection_failed, no popup', async () => {
  const deadPort = await freePort(); // nothing listens there
  const page = await h.openApp(SDKS.ours);
  const { value: outcome, popups } = await countingPopups(() =>
    h.runAuth(page, { key: 'any', connectionId: 'any', config: h.sdkConfig(`http://127.0.0.1:${deadPort}`) }),
  );
  const e = assertOurError(outcome, 'connection_failed', { key: 'any', connectionId: 'any' });
  assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${deadPort}`));
  assert.equal(popups, 0);
});

test('our SDK: without a WebSocket it falls back to the postMessage protocol', async () => {
  const key = await h.createConfig();
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  await page.evaluate(() => {
    // A socket that can never connect (a proxy that drops upgrades).
    window.WebSocket = class {
      constructor() {
        setTimeout(() => {
          this.onerror?.(new Event('error'));
          this.onclose?.(new Event('close'));
        }, 10);
      }
      close() {}
    };
  });
  const outcome = await h.runAuth(page, { key, connectionId });
  assert.deepEqual(outcome, { ok: true, result: { providerConfigKey: key, connectionId } });
  const connect = h.requests.find((u) => u.startsWith(`${h.nangoUrl}/oauth/connect/${key}?`) && u.includes(connectionId));
  assert.ok(connect, 'no /oauth/connect request');
  assert.equal(new URL(connect).searchParams.get('ws_client_id'), null);
  assert.equal((await h.getConnection(key, connectionId)).status, 200);
});

test('our SDK: without a WebSocket, a server error arrives by postMessage too', async () => {
  const key = uniqueId('no-such-config');
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  await page.evaluate(() => {
    window.WebSocket = undefined;
  });
  const outcome = await h.runAuth(page, { key, connectionId });
  assertOurError(outcome, 'provider_config_err', { key, connectionId });
});
