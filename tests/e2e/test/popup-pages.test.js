// What the popup shows: the server's success and error pages have a readable body (screenshots in
// tests/e2e/artifacts/), and a hostile error_description from the provider is shown as text and
// runs no script, on the WebSocket page and on the legacy postMessage page.
//
// The pages close themselves 300 ms after loading; to look at them, window.close is replaced on
// the server's origin by a function recording that the page asked to close.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { SDK_NAMES, SDKS, artifactPath, startHarness, uniqueId } from '../lib/harness.js';

const HOSTILE = '</script><script>alert(1)</script>';

let h;
before(async () => {
  h = await startHarness();
  await h.context.addInitScript((nangoOrigin) => {
    if (window.location.origin === nangoOrigin) {
      window.close = () => {
        window.__closeRequested = true;
      };
    }
  }, h.nangoUrl);
});
after(async () => {
  await h?.stop();
});
afterEach(async () => {
  await h?.closePages();
});

/**
 * Runs auth() and returns the outcome with the popup, once it shows the server's callback page
 * and asked to close itself.
 */
async function runToCallbackPage(sdk, key, connectionId) {
  const page = await h.openApp(sdk);
  const popupPromise = h.nextPopup();
  const outcome = await h.runAuth(page, { key, connectionId });
  const popup = await popupPromise;
  await popup.waitForURL(`${h.nangoUrl}/oauth/callback?**`, { timeout: 5000 });
  await popup.waitForLoadState('load');
  await popup.waitForFunction(() => window.__closeRequested === true, null, { timeout: 5000 });
  return { outcome, popup };
}

/** The visible text of the page's body. */
const bodyText = (popup) => popup.evaluate(() => document.body?.innerText ?? '');

test('the popup success page has a visible body (screenshot: artifacts/popup-success.png)', async () => {
  const key = await h.createConfig();
  const connectionId = uniqueId('user');
  const { outcome, popup } = await runToCallbackPage(SDKS.ours, key, connectionId);
  assert.deepEqual(outcome, { ok: true, result: { providerConfigKey: key, connectionId } });
  const text = await bodyText(popup);
  assert.ok(text.trim().length > 0, 'the success page body is empty');
  assert.ok(text.includes(connectionId), `the success page does not name the connection: ${JSON.stringify(text)}`);
  await popup.screenshot({ path: artifactPath('popup-success.png') });
});

test('the popup error page has a visible body (screenshot: artifacts/popup-error.png)', async () => {
  const key = await h.createConfig();
  h.denyAuthorization(key, { error: 'access_denied', error_description: 'The user denied access' });
  const connectionId = uniqueId('user');
  const { outcome, popup } = await runToCallbackPage(SDKS.ours, key, connectionId);
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error.type, 'callback_err');
  const text = await bodyText(popup);
  assert.ok(text.includes('The user denied access'), `the error page does not show the reason: ${JSON.stringify(text)}`);
  await popup.screenshot({ path: artifactPath('popup-error.png') });
});

// Ours and 0.9.0 get the WebSocket page; 0.8.0 the legacy page with the message in its script.
for (const sdk of [SDKS.ours, SDKS.v09, SDKS.v08]) {
  test(`${SDK_NAMES[sdk]}: a hostile error_description is text, and no script runs`, async () => {
    const key = await h.createConfig();
    h.denyAuthorization(key, { error: 'access_denied', error_description: HOSTILE });
    const connectionId = uniqueId('user');
    const dialogsBefore = h.dialogs.length;
    const { outcome, popup } = await runToCallbackPage(sdk, key, connectionId);

    assert.equal(outcome.ok, false);
    const error = outcome.error.error && !outcome.error.type ? outcome.error.error : outcome.error;
    assert.equal(error.type, 'callback_err');
    assert.ok(error.message.includes(HOSTILE), `the rejection's message lost the provider's text: ${JSON.stringify(error.message)}`);

    const text = await bodyText(popup);
    assert.ok(text.includes(HOSTILE), `the page does not show the description as text: ${JSON.stringify(text)}`);
    assert.equal(await popup.evaluate(() => document.scripts.length), 1, 'the page has more than its own script');
    // Give an injected script every chance to run before checking.
    await popup.waitForTimeout(300);
    assert.deepEqual(h.dialogs.slice(dialogsBefore), [], 'a dialog was opened');
    if (sdk === SDKS.ours) await popup.screenshot({ path: artifactPath('popup-error-hostile.png') });
  });
}
