// NANGO_SECRET_KEY set on the real server: the SDK sends it as the HTTP Basic username.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Nango, NangoError } from '../index.js';
import { PROVIDER, startHarness, uniqueId } from '../../../tests/compat/lib/harness.js';

const INVALID_KEY = 'Authentication failed. The provided secret key is invalid.';
const MISSING_HEADER = 'Authentication failed. The request is missing the Authorization header.';

describe('secret key', () => {
  const secretKey = `sk-${randomBytes(12).toString('hex')}`;
  let h;
  let key;
  let connectionId;
  let issued;
  before(async () => {
    h = await startHarness({ secretKey });
    key = await h.createConfig();
    connectionId = uniqueId('user');
    ({ issued } = await h.connect(key, connectionId));
  });
  after(() => h?.stop());

  // Every method, against existing objects where it matters.
  const calls = (nango) => [
    ['getConnection', () => nango.getConnection(key, connectionId)],
    ['getToken', () => nango.getToken(key, connectionId)],
    ['getRawTokenResponse', () => nango.getRawTokenResponse(key, connectionId)],
    ['listConnections', () => nango.listConnections()],
    ['deleteConnection', () => nango.deleteConnection(key, connectionId)],
    ['listConfigs', () => nango.listConfigs()],
    ['getConfig', () => nango.getConfig(key)],
    ['createConfig', () => nango.createConfig({ providerConfigKey: uniqueId('c'), provider: PROVIDER, oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: '' })],
    ['updateConfig', () => nango.updateConfig({ providerConfigKey: key, provider: PROVIDER, oauthClientId: 'x', oauthClientSecret: 'y', oauthScopes: '' })],
    ['deleteConfig', () => nango.deleteConfig(key)],
  ];

  const rejectsWith = async (name, promise, status, type, message) => {
    await assert.rejects(promise, (err) => {
      assert.ok(err instanceof NangoError, `${name}: ${err}`);
      assert.equal(err.status, status, name);
      assert.equal(err.type, type, name);
      assert.equal(err.message, message, name);
      assert.deepEqual(err.response, { status, data: { error: message, type } }, name);
      for (const text of [err.message, String(err), err.stack, inspect(err), JSON.stringify(err)]) {
        assert.ok(!text.includes(secretKey.slice(3)), `${name}: the secret key is not in the error`);
      }
      return true;
    });
  };

  test('a wrong key: 401 invalid_secret_key on every method, nothing changed', async () => {
    const nango = new Nango({ host: h.nangoUrl, secretKey: `${secretKey}-wrong`, retryDelayMs: 1 });
    for (const [name, call] of calls(nango)) {
      await rejectsWith(name, call(), 401, 'invalid_secret_key', INVALID_KEY);
    }
    const good = new Nango({ host: h.nangoUrl, secretKey });
    assert.equal(await good.getToken(key, connectionId), issued.access_token, 'the connection is still there');
    assert.equal((await good.getConfig(key)).config.oauth_client_id, `client-${key}`, 'the config is unchanged');
  });

  test('no key, or an empty one: 401 missing_auth_header on every method', async () => {
    for (const nango of [new Nango({ host: h.nangoUrl }), new Nango({ host: h.nangoUrl, secretKey: '' }), new Nango(h.nangoUrl)]) {
      for (const [name, call] of calls(nango)) {
        await rejectsWith(name, call(), 401, 'missing_auth_header', MISSING_HEADER);
      }
    }
  });

  test('the right key works for every method', async () => {
    const nango = new Nango({ host: h.nangoUrl, secretKey });
    const results = {};
    for (const [name, call] of calls(nango)) results[name] = await call();
    assert.equal(results.getConnection.connection_id, connectionId);
    assert.equal(results.getToken, issued.access_token);
    assert.equal(results.getRawTokenResponse.access_token, issued.access_token);
    assert.ok(results.listConnections.connections.some((c) => c.connection_id === connectionId));
    assert.equal(results.deleteConnection, undefined);
    assert.ok(results.listConfigs.configs.some((c) => c.unique_key === key));
    assert.equal(results.getConfig.config.unique_key, key);
    assert.ok(Number.isInteger(results.createConfig.config_id));
    assert.equal(results.updateConfig, undefined);
    assert.equal(results.deleteConfig, undefined);
    await assert.rejects(nango.getToken(key, connectionId), { status: 400, type: 'unkown_connection' });
    await assert.rejects(nango.getConfig(key), { status: 400, type: 'unknown_provider_config' });
  });

  test('the key is not readable from the client object', () => {
    const nango = new Nango({ host: h.nangoUrl, secretKey });
    const shown = `${inspect(nango, { showHidden: true, depth: 5 })} ${JSON.stringify(nango)} ${Object.keys(nango)}`;
    assert.ok(!shown.includes(secretKey), shown);
    assert.equal(nango.secretKey, undefined);
  });
});
