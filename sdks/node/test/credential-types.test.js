// getToken for the auth modes without a browser flow, against the real server: API_KEY and BASIC
// connections imported with POST /connection, OAUTH2_CC tokens the server fetches from
// oauth2-mock-server with the client credentials grant.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Nango } from '../index.js';
import {
  PROVIDER,
  PROVIDER_API_KEY,
  PROVIDER_BASIC,
  PROVIDER_CC,
  looksLikeJwt,
  startHarness,
  uniqueId,
} from '../../../tests/compat/lib/harness.js';

describe('credential types', () => {
  let h;
  let nango;
  before(async () => {
    h = await startHarness();
    nango = new Nango(h.nangoUrl);
  });
  after(() => h?.stop());

  async function config(provider) {
    const key = uniqueId('cfg');
    await nango.createConfig({ providerConfigKey: key, provider, oauthClientId: `client-${key}`, oauthClientSecret: `secret-${key}`, oauthScopes: '' });
    return key;
  }

  /** POST /connection through the SDK; the created connection. */
  async function importConnection({ provider_config_key, connection_id, api_key, username, password }) {
    return nango.createConnection({
      providerConfigKey: provider_config_key,
      connectionId: connection_id,
      apiKey: api_key,
      username,
      password,
    });
  }

  test('API_KEY: getToken returns the key', async () => {
    const key = await config(PROVIDER_API_KEY);
    const connectionId = uniqueId('user');
    await importConnection({ provider_config_key: key, connection_id: connectionId, api_key: 'sk_live_abc123' });
    assert.equal(await nango.getToken(key, connectionId), 'sk_live_abc123');
    const conn = await nango.getConnection(key, connectionId);
    assert.deepEqual(conn.credentials, { type: 'API_KEY', apiKey: 'sk_live_abc123' });
    assert.equal(await nango.getRawTokenResponse(key, connectionId), undefined, 'no token response for an API key');
    await assert.rejects(nango.getToken(key, connectionId, { forceRefresh: true }), { status: 400, type: 'not_refreshable' });
  });

  test('createConnection refuses what the template refuses, with the server\'s error type', async () => {
    const key = await config(PROVIDER_API_KEY);
    await assert.rejects(nango.createConnection({ providerConfigKey: key, connectionId: uniqueId('user'), apiKey: '' }), {
      name: 'NangoError',
      status: 400,
      type: 'invalid_credentials',
    });
    const oauth = await config(PROVIDER);
    await assert.rejects(nango.createConnection({ providerConfigKey: oauth, connectionId: uniqueId('user'), apiKey: 'k' }), {
      status: 400,
      type: 'auth_mode_err',
    });
  });

  test('listProviders and getProvider browse the catalog', async () => {
    const { providers } = await nango.listProviders({ search: 'github' });
    assert.ok(providers.some((p) => p.name === 'github'), JSON.stringify(providers));
    const detail = await nango.getProvider(PROVIDER_API_KEY);
    assert.equal(detail.name, PROVIDER_API_KEY);
    assert.equal(detail.template.auth_mode, 'API_KEY');
    await assert.rejects(nango.getProvider('no-such-provider'), { status: 404, type: 'unknown_provider' });
  });

  test('BASIC: getToken returns {username, password}', async () => {
    const key = await config(PROVIDER_BASIC);
    const connectionId = uniqueId('user');
    await importConnection({ provider_config_key: key, connection_id: connectionId, username: 'ada', password: 'p@ss word' });
    assert.deepEqual(await nango.getToken(key, connectionId), { username: 'ada', password: 'p@ss word' });
  });

  test('OAUTH2_CC: getToken returns the token; forceRefresh fetches a new one with the client credentials', async () => {
    const key = await config(PROVIDER_CC);
    const connectionId = uniqueId('service');
    const imported = await importConnection({ provider_config_key: key, connection_id: connectionId });
    assert.equal(imported.credentials.type, 'OAUTH2_CC');
    const ccGrants = () => h.tokenRequests.filter((r) => r.body.grant_type === 'client_credentials' && r.body.client_id === `client-${key}`);
    assert.equal(ccGrants().length, 1);

    const token = await nango.getToken(key, connectionId);
    assert.ok(looksLikeJwt(token));
    assert.equal(token, imported.credentials.token);
    assert.equal(token, ccGrants()[0].response.body.access_token);

    const fresh = await nango.getToken(key, connectionId, { forceRefresh: true });
    assert.notEqual(fresh, token);
    assert.equal(ccGrants().length, 2, 'a second client_credentials grant at the provider');
    assert.equal(fresh, ccGrants()[1].response.body.access_token);
    assert.equal(await nango.getToken(key, connectionId), fresh);
    assert.equal((await nango.getRawTokenResponse(key, connectionId)).access_token, fresh);
  });
});
