// API_KEY and BASIC providers: the app's own form hands what the user typed to our SDK
// (auth(key, id, {credentials})), from another origin, with no popup; the server checks it
// against the template and stores it.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { PROVIDER_API_KEY, PROVIDER_BASIC, SDKS, startHarness, uniqueId } from '../lib/harness.js';

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

test('our SDK: an API key entered in the app is stored, no popup opened', async () => {
  const key = await h.createConfig({ provider: PROVIDER_API_KEY, scopes: '' });
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  let popups = 0;
  const count = () => popups++;
  page.context().on('page', count);
  const outcome = await h.runAuth(page, { key, connectionId, options: { credentials: { apiKey: 'sk-abcdef1234' } } });
  page.context().off('page', count);
  assert.deepEqual(outcome, { ok: true, result: { providerConfigKey: key, connectionId } });
  assert.equal(popups, 0);
  const { status, body } = await h.getConnection(key, connectionId);
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(body.credentials, { type: 'API_KEY', apiKey: 'sk-abcdef1234' });
});

test('our SDK: a key in the wrong format is refused with invalid_credentials and not stored', async () => {
  const key = await h.createConfig({ provider: PROVIDER_API_KEY, scopes: '' });
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  const outcome = await h.runAuth(page, { key, connectionId, options: { credentials: { apiKey: 'not a key' } } });
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error.type, 'invalid_credentials');
  assert.equal(outcome.error.error.type, 'invalid_credentials');
  assert.equal(outcome.error.connectionId, connectionId);
  const { status } = await h.getConnection(key, connectionId);
  assert.equal(status, 400);
});

test('our SDK: username and password for a BASIC provider; the wrong mode is auth_mode_err', async () => {
  const key = await h.createConfig({ provider: PROVIDER_BASIC, scopes: '' });
  const connectionId = uniqueId('user');
  const page = await h.openApp(SDKS.ours);
  const ok = await h.runAuth(page, {
    key,
    connectionId,
    options: { credentials: { username: 'ada@example.com', password: 'pa ss/word' } },
  });
  assert.equal(ok.ok, true, JSON.stringify(ok));
  const { body } = await h.getConnection(key, connectionId);
  assert.deepEqual(body.credentials, { type: 'BASIC', username: 'ada@example.com', password: 'pa ss/word' });

  const wrong = await h.runAuth(page, { key, connectionId: uniqueId('user'), options: { credentials: { apiKey: 'sk-abcdef1234' } } });
  assert.equal(wrong.ok, false);
  assert.equal(wrong.error.type, 'auth_mode_err');
});
