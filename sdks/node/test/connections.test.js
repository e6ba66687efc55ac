// Connections against the real server, with tokens issued by oauth2-mock-server through the
// browser-less OAuth flow of the compat harness.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Nango, NangoError } from '../index.js';
import { looksLikeJwt, startHarness, uniqueId } from '../../../tests/compat/lib/harness.js';

const UNKNOWN_CONNECTION = "No connection matching params 'connection_id' and 'provider_config_key'.";

describe('connections', () => {
  let h;
  let nango;
  let shape = () => {};
  before(async () => {
    h = await startHarness();
    nango = new Nango({ host: h.nangoUrl, retryDelayMs: 10 });
    h.onTokenResponse((body, grantType) => shape(body, grantType));
  });
  beforeEach(() => {
    shape = () => {};
  });
  after(() => h?.stop());

  const refreshRequests = (refreshToken) =>
    h.tokenRequests.filter((r) => r.body.grant_type === 'refresh_token' && r.body.refresh_token === refreshToken);

  async function connected() {
    const key = await h.createConfig();
    const connectionId = uniqueId('user');
    const { issued } = await h.connect(key, connectionId);
    assert.ok(looksLikeJwt(issued.access_token));
    assert.ok(issued.refresh_token, 'the mock issues a refresh token');
    return { key, connectionId, issued };
  }

  test('getConnection returns the whole connection body', async () => {
    const { key, connectionId, issued } = await connected();
    const conn = await nango.getConnection(key, connectionId);
    assert.equal(conn.provider_config_key, key);
    assert.equal(conn.connection_id, connectionId);
    assert.equal(typeof conn.id, 'number');
    assert.ok(Number.isFinite(Date.parse(conn.created_at)));
    assert.ok(Number.isFinite(Date.parse(conn.updated_at)));
    assert.deepEqual(conn.connection_config, {});
    assert.equal(conn.account_id, 0);
    assert.equal(conn.credentials.type, 'OAUTH2');
    assert.equal(conn.credentials.access_token, issued.access_token);
    assert.equal(conn.credentials.refresh_token, issued.refresh_token);
    assert.ok(Number.isFinite(Date.parse(conn.credentials.expires_at)));
    assert.equal(conn.credentials.raw.access_token, issued.access_token);
  });

  test('getToken returns the OAuth 2 access token', async () => {
    const { key, connectionId, issued } = await connected();
    const token = await nango.getToken(key, connectionId);
    assert.equal(typeof token, 'string');
    assert.equal(token, issued.access_token);
  });

  test("getRawTokenResponse returns the provider's token response", async () => {
    const { key, connectionId, issued } = await connected();
    const raw = await nango.getRawTokenResponse(key, connectionId);
    for (const field of ['access_token', 'refresh_token', 'token_type', 'expires_in', 'scope']) {
      assert.deepEqual(raw[field], issued[field], field);
    }
  });

  test('listConnections lists {connection_id, provider: <config key>, created}', async () => {
    const a = await connected();
    const b = await connected();
    const { connections } = await nango.listConnections();
    assert.ok(Array.isArray(connections));
    for (const c of [a, b]) {
      const row = connections.find((x) => x.connection_id === c.connectionId);
      assert.ok(row, `${c.connectionId} listed`);
      assert.deepEqual(Object.keys(row).sort(), ['connection_id', 'created', 'provider']);
      assert.equal(row.provider, c.key);
      assert.ok(Number.isFinite(Date.parse(row.created)));
    }
  });

  test('deleteConnection deletes it; a second delete is a 400 unkown_connection', async () => {
    const { key, connectionId } = await connected();
    const other = await connected();
    assert.equal(await nango.deleteConnection(key, connectionId), undefined);
    await assert.rejects(nango.getToken(key, connectionId), { status: 400, type: 'unkown_connection' });
    const { connections } = await nango.listConnections();
    assert.ok(!connections.some((c) => c.connection_id === connectionId));
    assert.ok(connections.some((c) => c.connection_id === other.connectionId), 'the other one is kept');
    assert.equal(await nango.getToken(other.key, other.connectionId), other.issued.access_token);
    await assert.rejects(nango.deleteConnection(key, connectionId), (err) => {
      assert.ok(err instanceof NangoError);
      assert.equal(err.status, 400);
      assert.equal(err.type, 'unkown_connection');
      assert.equal(err.message, UNKNOWN_CONNECTION);
      return true;
    });
  });

  test("an unknown connection: 400 unkown_connection (Nango's spelling) for every connection method", async () => {
    const { key } = await connected();
    const missing = uniqueId('nobody');
    for (const call of [
      () => nango.getConnection(key, missing),
      () => nango.getToken(key, missing),
      () => nango.getRawTokenResponse(key, missing),
      () => nango.deleteConnection(key, missing),
      () => nango.getToken(uniqueId('no-such-config'), missing),
    ]) {
      await assert.rejects(call(), (err) => {
        assert.ok(err instanceof NangoError);
        assert.equal(err.status, 400);
        assert.equal(err.type, 'unkown_connection');
        assert.equal(err.message, UNKNOWN_CONNECTION);
        assert.deepEqual(err.body, { error: UNKNOWN_CONNECTION, type: 'unkown_connection' });
        assert.deepEqual(err.response, { status: 400, data: err.body });
        return true;
      });
    }
  });

  test('a connection of another config key is not found', async () => {
    const a = await connected();
    const b = await connected();
    await assert.rejects(nango.getToken(b.key, a.connectionId), { status: 400, type: 'unkown_connection' });
  });

  test('forceRefresh: the server refreshes now, with the stored refresh token, and keeps the new token', async () => {
    const { key, connectionId, issued } = await connected();
    assert.ok(issued.expires_in > 15 * 60, 'a long-lived token: no refresh without forceRefresh');
    assert.equal(await nango.getToken(key, connectionId), issued.access_token);
    assert.equal(refreshRequests(issued.refresh_token).length, 0);

    const token = await nango.getToken(key, connectionId, { forceRefresh: true });
    assert.ok(looksLikeJwt(token));
    assert.notEqual(token, issued.access_token, 'a new access token');
    const refreshes = refreshRequests(issued.refresh_token);
    assert.equal(refreshes.length, 1, 'one grant_type=refresh_token request at the provider');
    assert.equal(refreshes[0].response.body.access_token, token);

    // Stored: read again without forcing, no new refresh.
    assert.equal(await nango.getToken(key, connectionId), token);
    const refreshed = refreshes[0].response.body.refresh_token ?? issued.refresh_token;
    const total = () => h.tokenRequests.filter((r) => r.body.grant_type === 'refresh_token').length;
    const before = total();

    // getConnection and getRawTokenResponse take the option too.
    const conn = await nango.getConnection(key, connectionId, { forceRefresh: true });
    assert.notEqual(conn.credentials.access_token, token);
    assert.equal(total(), before + 1);
    assert.equal(h.tokenRequests.at(-1).body.refresh_token, refreshed);
    const raw = await nango.getRawTokenResponse(key, connectionId, { forceRefresh: true });
    assert.notEqual(raw.access_token, conn.credentials.access_token);
    assert.equal(total(), before + 2);
    assert.equal(await nango.getToken(key, connectionId), raw.access_token);
  });

  test('forceRefresh without a refresh token: 400 not_refreshable, the token is kept', async () => {
    shape = (body, grantType) => {
      if (grantType === 'authorization_code') delete body.refresh_token;
    };
    const key = await h.createConfig();
    const connectionId = uniqueId('user');
    const { issued } = await h.connect(key, connectionId);
    assert.equal(issued.refresh_token, undefined);
    await assert.rejects(nango.getToken(key, connectionId, { forceRefresh: true }), (err) => {
      assert.ok(err instanceof NangoError);
      assert.equal(err.status, 400);
      assert.equal(err.type, 'not_refreshable');
      assert.equal(err.message, err.body.error);
      return true;
    });
    assert.equal(await nango.getToken(key, connectionId), issued.access_token);
  });

  test('an expiring token is refreshed by a plain getToken', async () => {
    shape = (body, grantType) => {
      // Expired on arrival: due at once (docs/refresh.md).
      if (grantType === 'authorization_code') body.expires_in = 0;
    };
    const { key, connectionId, issued } = await connected();
    assert.equal(issued.expires_in, 0);
    const token = await nango.getToken(key, connectionId);
    assert.notEqual(token, issued.access_token);
    assert.equal(refreshRequests(issued.refresh_token).length, 1);
  });

  test('ids and keys with reserved characters round-trip', async () => {
    const key = await h.createConfig({ key: `a/b c?d-${uniqueId('k')}` });
    for (const connectionId of ['a/b c?d', 'x#y%z+w&q=1', 'é ü/..', '%2F', '...']) {
      const { issued } = await h.connect(key, connectionId);
      const conn = await nango.getConnection(key, connectionId);
      assert.equal(conn.connection_id, connectionId);
      assert.equal(conn.provider_config_key, key);
      assert.equal(await nango.getToken(key, connectionId), issued.access_token);
      const { connections } = await nango.listConnections();
      assert.ok(connections.some((c) => c.connection_id === connectionId && c.provider === key), connectionId);
      await nango.deleteConnection(key, connectionId);
      await assert.rejects(nango.getToken(key, connectionId), { type: 'unkown_connection' }, connectionId);
    }
  });
});
