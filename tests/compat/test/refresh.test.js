// Token refresh: the provider issues short-lived tokens; GET /connection refreshes those that
// expire in less than 15 minutes, at the provider's token endpoint with grant_type=refresh_token.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Nango } from '@nangohq/node';
import { Events } from 'oauth2-mock-server';
import { looksLikeJwt, startHarness, uniqueId } from '../lib/harness.js';

describe('refresh', () => {
  let h;
  let nango;
  // How the mock answers token requests in the current test: (body, grantType) => void
  let shape = () => {};
  before(async () => {
    h = await startHarness();
    nango = new Nango({ host: h.nangoUrl });
    h.mock.service.on(Events.BeforeResponse, (response, req) => {
      if (response.statusCode === 200) shape(response.body, req.body.grant_type);
    });
  });
  beforeEach(() => {
    shape = () => {};
  });
  after(() => h?.stop());

  const refreshRequests = (refreshToken) =>
    h.tokenRequests.filter((r) => r.body.grant_type === 'refresh_token' && r.body.refresh_token === refreshToken);

  test('refresh: an expiring token is refreshed and the refresh token is kept when the provider sends none', async () => {
    shape = (body, grantType) => {
      if (grantType === 'authorization_code') {
        // Expired on arrival: due at once (a token is refreshed once less than
        // min(15 minutes, half its lifetime) remains; docs/refresh.md).
        body.expires_in = 0;
        body.refresh_token ??= 'rt-from-test';
      } else if (grantType === 'refresh_token') {
        delete body.refresh_token; // many providers do not rotate refresh tokens
        delete body.id_token;
        body.expires_in = 3600;
      }
    };
    const key = await h.createConfig();
    const connectionId = uniqueId('user');
    const { issued } = await h.connect(key, connectionId);
    assert.equal(issued.expires_in, 0);
    assert.ok(issued.refresh_token);

    const started = Date.now();
    const token = await nango.getToken(key, connectionId);
    assert.ok(looksLikeJwt(token), `JWT-looking token, got ${token}`);
    assert.notEqual(token, issued.access_token, 'a new access token');

    const refreshes = refreshRequests(issued.refresh_token);
    assert.equal(refreshes.length, 1, 'one grant_type=refresh_token request with the stored refresh token');
    assert.equal(refreshes[0].body.client_id, `client-${key}`);
    assert.equal(refreshes[0].response.body.access_token, token, 'getToken returns what the refresh issued');

    // Stored: the next read returns the refreshed token, without refreshing again (1 h left),
    // and the refresh token from the code exchange is kept.
    const conn = await nango.getConnection(key, connectionId);
    assert.equal(conn.credentials.access_token, token);
    assert.equal(conn.credentials.refresh_token, issued.refresh_token);
    const expiresAt = Date.parse(conn.credentials.expires_at);
    assert.ok(Math.abs(expiresAt - (started + 3600_000)) < 120_000, `expires_at ${conn.credentials.expires_at} ~ now + 1 h`);
    assert.equal(refreshRequests(issued.refresh_token).length, 1, 'no second refresh');
    assert.equal((await nango.getRawTokenResponse(key, connectionId)).access_token, token);
  });

  test('refresh: a rotated refresh token from the provider replaces the stored one', async () => {
    shape = (body, grantType) => {
      if (grantType === 'authorization_code') {
        body.expires_in = 0;
      } else if (grantType === 'refresh_token') {
        body.expires_in = 3600;
        body.refresh_token = `rotated-${body.refresh_token}`;
      }
    };
    const key = await h.createConfig();
    const connectionId = uniqueId('user');
    const { issued } = await h.connect(key, connectionId);
    assert.ok(issued.refresh_token);

    const token = await nango.getToken(key, connectionId);
    assert.notEqual(token, issued.access_token);
    const [refresh] = refreshRequests(issued.refresh_token);
    assert.ok(refresh, 'grant_type=refresh_token observed at the token endpoint');
    const rotated = refresh.response.body.refresh_token;
    assert.match(rotated, /^rotated-/);

    const conn = await nango.getConnection(key, connectionId);
    assert.equal(conn.credentials.access_token, token);
    assert.equal(conn.credentials.refresh_token, rotated);
  });
});
