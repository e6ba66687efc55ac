// The current Node client, @nangohq/node@0.71 (installed as nango-node-now), against the real
// server: the token-broker calls that read and delete connections go to /connections/...; the
// 0.9 client keeps working on the same server and connection.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Nango as Nango09 } from '@nangohq/node';
import { Nango as NangoNow } from 'nango-node-now';
import { startHarness, uniqueId } from '../lib/harness.js';

describe('@nangohq/node@0.71', () => {
  const secretKey = `sk-${randomBytes(12).toString('hex')}`;
  let h;
  let key;
  let connectionId;
  let issued;
  let nango;
  before(async () => {
    h = await startHarness({ secretKey });
    key = await h.createConfig();
    connectionId = uniqueId('user');
    ({ issued } = await h.connect(key, connectionId));
    nango = new NangoNow({ host: h.nangoUrl, secretKey });
  });
  after(() => h?.stop());

  test('getToken, getConnection, getRawTokenResponse and getMetadata read the connection', async () => {
    assert.equal(await nango.getToken(key, connectionId), issued.access_token);
    const connection = await nango.getConnection(key, connectionId);
    assert.equal(connection.connection_id, connectionId);
    assert.equal(connection.provider_config_key, key);
    assert.equal(connection.credentials.type, 'OAUTH2');
    assert.equal(connection.credentials.access_token, issued.access_token);
    assert.equal(connection.credentials.refresh_token, undefined, 'refresh token only when asked for');
    assert.deepEqual(connection.errors, []);
    assert.deepEqual(connection.tags, {});
    const withRefreshToken = await nango.getConnection(key, connectionId, false, true);
    assert.equal(withRefreshToken.credentials.refresh_token, issued.refresh_token);
    const raw = await nango.getRawTokenResponse(key, connectionId);
    assert.equal(raw.access_token, issued.access_token);
    assert.deepEqual(await nango.getMetadata(key, connectionId), {});
    // The 0.9 client reads the same connection.
    const old = new Nango09({ host: h.nangoUrl, secretKey });
    assert.equal(await old.getToken(key, connectionId), issued.access_token);
  });

  test('getToken with forceRefresh returns a new token from the provider', async () => {
    const refreshed = await nango.getToken(key, connectionId, true);
    assert.notEqual(refreshed, issued.access_token);
    assert.equal(await nango.getToken(key, connectionId), refreshed);
  });

  test('an unknown connection is a 404 in current Nango\'s envelope', async () => {
    await assert.rejects(nango.getConnection(key, uniqueId('nobody')), (err) => {
      assert.equal(err.response?.status, 404);
      assert.equal(err.response.data.error.code, 'not_found');
      return true;
    });
  });

  test('listConnections finds the connection by id and by integration', async () => {
    const byId = await nango.listConnections(connectionId);
    assert.equal(byId.connections.length, 1);
    const [line] = byId.connections;
    assert.equal(line.connection_id, connectionId);
    assert.equal(line.provider_config_key, key);
    assert.deepEqual(line.errors, []);
    const byIntegration = await nango.listConnections({ integrationId: key });
    assert.ok(byIntegration.connections.some((c) => c.connection_id === connectionId));
    const none = await nango.listConnections({ integrationId: `${key}-other` });
    assert.deepEqual(none.connections, []);
  });

  test('deleteConnection deletes it; a second delete is refused', async () => {
    const other = uniqueId('user');
    await h.connect(key, other);
    const response = await nango.deleteConnection(key, other);
    assert.deepEqual(response.data, { success: true });
    await assert.rejects(nango.getToken(key, other), (err) => err.response?.status === 404);
    await assert.rejects(nango.deleteConnection(key, other), (err) => {
      assert.equal(err.response?.status, 400);
      assert.equal(err.response.data.error.code, 'unknown_connection');
      return true;
    });
  });
});
