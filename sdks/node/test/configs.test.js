// Provider configs against the real server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Nango, NangoError } from '../index.js';
import { PROVIDER, PROVIDER_HEADER, startHarness, uniqueId } from '../../../tests/compat/lib/harness.js';

const UNKNOWN_CONFIG = 'There is no Provider Configuration matching this key.';

describe('configs', () => {
  let h;
  let nango;
  before(async () => {
    h = await startHarness();
    nango = new Nango({ host: h.nangoUrl });
  });
  after(() => h?.stop());

  test('createConfig, getConfig, listConfigs, updateConfig, deleteConfig: a round trip', async () => {
    const key = uniqueId('cfg');
    const created = await nango.createConfig({
      providerConfigKey: key,
      provider: PROVIDER,
      oauthClientId: 'client-1',
      oauthClientSecret: 'secret-1',
      oauthScopes: ['openid', 'profile'],
    });
    assert.deepEqual(Object.keys(created), ['config_id']);
    assert.ok(Number.isInteger(created.config_id));

    const { config } = await nango.getConfig(key);
    assert.equal(config.id, created.config_id);
    assert.equal(config.unique_key, key);
    assert.equal(config.provider, PROVIDER);
    assert.equal(config.oauth_client_id, 'client-1');
    assert.equal(config.oauth_client_secret, 'secret-1');
    assert.equal(config.oauth_scopes, 'openid,profile');
    assert.ok(Number.isFinite(Date.parse(config.created_at)));

    const listed = await nango.listConfigs();
    assert.deepEqual(Object.keys(listed), ['configs']);
    assert.deepEqual(
      listed.configs.find((c) => c.unique_key === key),
      config,
    );

    // snake_case names and a comma string work too.
    assert.equal(
      await nango.updateConfig({
        provider_config_key: key,
        provider: PROVIDER_HEADER,
        oauth_client_id: 'client-2',
        oauth_client_secret: 'secret-2',
        oauth_scopes: 'email,offline_access',
      }),
      undefined,
    );
    const updated = (await nango.getConfig(key)).config;
    assert.equal(updated.provider, PROVIDER_HEADER);
    assert.equal(updated.oauth_client_id, 'client-2');
    assert.equal(updated.oauth_client_secret, 'secret-2');
    assert.equal(updated.oauth_scopes, 'email,offline_access');

    // getConfig's own row, modified, can be given back to updateConfig (unique_key accepted).
    await nango.updateConfig({ ...updated, oauth_client_id: 'client-3' });
    assert.equal((await nango.getConfig(key)).config.oauth_client_id, 'client-3');

    assert.equal(await nango.deleteConfig(key), undefined);
    await assert.rejects(nango.getConfig(key), { status: 400, type: 'unknown_provider_config', message: UNKNOWN_CONFIG });
    assert.ok(!(await nango.listConfigs()).configs.some((c) => c.unique_key === key));
  });

  test('connectionConfig sets the operator\'s placeholder values; an update without it keeps them', async () => {
    const key = uniqueId('cfg');
    await nango.createConfig({
      providerConfigKey: key,
      provider: 'github-enterprise',
      oauthClientId: 'i',
      oauthClientSecret: 's',
      oauthScopes: 'repo',
      connectionConfig: { hostname: 'ghe.example.com' },
    });
    assert.deepEqual((await nango.getConfig(key)).config.connection_config, { hostname: 'ghe.example.com' });
    await nango.updateConfig({ providerConfigKey: key, provider: 'github-enterprise', oauthClientId: 'i2', oauthClientSecret: 's', oauthScopes: 'repo' });
    assert.deepEqual((await nango.getConfig(key)).config.connection_config, { hostname: 'ghe.example.com' });
    // A built-in template's host must be public.
    await assert.rejects(
      nango.updateConfig({ providerConfigKey: key, provider: 'github-enterprise', oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: 'repo', connectionConfig: { hostname: '169.254.169.254' } }),
      { status: 400 },
    );
    await nango.deleteConfig(key);
  });

  test('a config made with createConfig runs an OAuth flow', async () => {
    const key = uniqueId('cfg');
    await nango.createConfig({ providerConfigKey: key, provider: PROVIDER, oauthClientId: `cid-${key}`, oauthClientSecret: 'cs', oauthScopes: 'openid' });
    const connectionId = uniqueId('user');
    const { issued, tokenRequest, authorizeUrl } = await h.connect(key, connectionId);
    assert.equal(authorizeUrl.searchParams.get('client_id'), `cid-${key}`);
    assert.equal(tokenRequest.body.client_id, `cid-${key}`);
    assert.equal(await nango.getToken(key, connectionId), issued.access_token);
  });

  test('space- or comma-separated scopes are stored as a comma list', async () => {
    const key = uniqueId('cfg');
    await nango.createConfig({ providerConfigKey: key, provider: PROVIDER, oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: 'user public_repo,,repo' });
    assert.equal((await nango.getConfig(key)).config.oauth_scopes, 'user,public_repo,repo');
  });

  test('unknown config: getConfig and updateConfig answer 400 unknown_provider_config; deleteConfig succeeds', async () => {
    const key = uniqueId('nope');
    for (const call of [
      () => nango.getConfig(key),
      () => nango.updateConfig({ providerConfigKey: key, provider: PROVIDER, oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: '' }),
    ]) {
      await assert.rejects(call(), (err) => {
        assert.ok(err instanceof NangoError);
        assert.equal(err.status, 400);
        assert.equal(err.type, 'unknown_provider_config');
        assert.equal(err.message, UNKNOWN_CONFIG);
        assert.deepEqual(err.response, { status: 400, data: { error: UNKNOWN_CONFIG, type: 'unknown_provider_config' } });
        return true;
      });
    }
    assert.equal(await nango.deleteConfig(key), undefined, '200 whether or not it existed (as in 0.9)');
  });

  test('createConfig errors: duplicate key, missing and unknown fields, in Nango order', async () => {
    const key = uniqueId('cfg');
    const full = { providerConfigKey: key, provider: PROVIDER, oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: 'a' };
    await nango.createConfig(full);
    const cases = [
      [full, 'duplicate_provider_config'],
      [{ ...full, providerConfigKey: undefined }, 'missing_provider_config'],
      [{ ...full, providerConfigKey: uniqueId('c'), provider: undefined }, 'missing_provider_template'],
      [{ ...full, providerConfigKey: uniqueId('c'), provider: 'no-such-template' }, 'unknown_provider_template'],
      [{ ...full, providerConfigKey: uniqueId('c'), oauthClientId: undefined }, 'missing_client_id'],
      [{ ...full, providerConfigKey: uniqueId('c'), oauthClientSecret: undefined }, 'missing_client_secret'],
      [{ ...full, providerConfigKey: uniqueId('c'), oauthScopes: undefined }, 'missing_scopes'],
    ];
    for (const [config, type] of cases) {
      await assert.rejects(nango.createConfig(config), (err) => {
        assert.ok(err instanceof NangoError, `${type}: ${err}`);
        assert.equal(err.status, 400, type);
        assert.equal(err.type, type);
        assert.equal(err.message, err.body.error);
        return true;
      });
    }
    await assert.rejects(nango.createConfig(null), TypeError);
    await assert.rejects(nango.updateConfig('k'), TypeError);
  });

  test('updateConfig reports a missing field', async () => {
    const key = uniqueId('cfg');
    await nango.createConfig({ providerConfigKey: key, provider: PROVIDER, oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: 'a' });
    await assert.rejects(nango.updateConfig({ providerConfigKey: key, provider: PROVIDER, oauthClientId: 'i', oauthScopes: 'a' }), {
      status: 400,
      type: 'missing_client_secret',
    });
    assert.equal((await nango.getConfig(key)).config.oauth_client_secret, 's', 'unchanged');
  });

  test('config keys with reserved characters round-trip', async () => {
    for (const key of [`a/b c?d ${uniqueId('k')}`, `#%+&=${uniqueId('k')}`, `é/..${uniqueId('k')}`]) {
      await nango.createConfig({ providerConfigKey: key, provider: PROVIDER, oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: '' });
      assert.equal((await nango.getConfig(key)).config.unique_key, key);
      assert.ok((await nango.listConfigs()).configs.some((c) => c.unique_key === key));
      await nango.updateConfig({ providerConfigKey: key, provider: PROVIDER, oauthClientId: 'i2', oauthClientSecret: 's', oauthScopes: '' });
      assert.equal((await nango.getConfig(key)).config.oauth_client_id, 'i2');
      await nango.deleteConfig(key);
      await assert.rejects(nango.getConfig(key), { type: 'unknown_provider_config' }, key);
    }
  });
});
