// The OAuth2 flow against oauth2-mock-server, then the published @nangohq/node@0.9.0 client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Nango } from '@nangohq/node';
import { PROVIDER_HEADER, looksLikeJwt, s256, startHarness, uniqueId } from '../lib/harness.js';

const UNKNOWN_CONNECTION = "No connection matching params 'connection_id' and 'provider_config_key'.";

describe('OAuth2 flow and @nangohq/node@0.9.0', () => {
  let h;
  let nango;
  before(async () => {
    h = await startHarness();
    nango = new Nango({ host: h.nangoUrl });
  });
  after(() => h?.stop());

  test('flow: connect redirects to the provider, callback stores the connection and answers HTML', async () => {
    const key = await h.createConfig({ scopes: 'openid,profile' });
    const connectionId = uniqueId('user');
    const flow = await h.connect(key, connectionId);

    const q = flow.authorizeUrl.searchParams;
    assert.equal(flow.authorizeUrl.origin + flow.authorizeUrl.pathname, `${h.providerUrl}/authorize`);
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), `client-${key}`);
    assert.equal(q.get('redirect_uri'), `${h.nangoUrl}/oauth/callback`);
    assert.equal(q.get('scope'), 'openid profile');
    assert.ok(q.get('state'), 'state is set');
    assert.equal(flow.callbackUrl.searchParams.get('state'), q.get('state'), 'provider echoed the state');

    assert.equal(flow.callbackStatus, 200);
    assert.match(flow.callbackContentType, /^text\/html/);
    assert.match(flow.html, /<script|<html/i);

    // The code exchange the server made at the provider.
    assert.equal(flow.tokenRequest.body.grant_type, 'authorization_code');
    assert.equal(flow.tokenRequest.body.code, flow.callbackUrl.searchParams.get('code'));
    assert.equal(flow.tokenRequest.body.redirect_uri, `${h.nangoUrl}/oauth/callback`);

    const conn = await nango.getConnection(key, connectionId);
    assert.equal(conn.credentials.access_token, flow.issued.access_token);
  });

  test('getToken returns the access token issued by the provider', async () => {
    const key = await h.createConfig();
    const connectionId = uniqueId('user');
    const { issued } = await h.connect(key, connectionId);

    const token = await nango.getToken(key, connectionId);
    assert.ok(looksLikeJwt(token), `JWT-looking token, got ${token}`);
    assert.equal(token, issued.access_token);
    const conn = await nango.getConnection(key, connectionId);
    assert.equal(token, conn.credentials.access_token);

    // expires in an hour: no refresh, the same token again
    const refreshes = h.tokenRequests.filter((r) => r.body.grant_type === 'refresh_token').length;
    assert.equal(await nango.getToken(key, connectionId), issued.access_token);
    assert.equal(h.tokenRequests.filter((r) => r.body.grant_type === 'refresh_token').length, refreshes);
  });

  test('getRawTokenResponse returns the raw token response', async () => {
    const key = await h.createConfig();
    const connectionId = uniqueId('user');
    const { issued } = await h.connect(key, connectionId);

    const raw = await nango.getRawTokenResponse(key, connectionId);
    assert.equal(typeof raw, 'object');
    assert.equal(raw.access_token, issued.access_token);
    assert.equal(raw.token_type, 'Bearer');
    assert.ok('expires_in' in raw || 'expires_at' in raw, `expires_in/expires_at in ${JSON.stringify(raw)}`);
    // Everything the provider answered is kept (the server may add expires_at).
    for (const [k, v] of Object.entries(issued)) assert.deepEqual(raw[k], v, `raw.${k}`);
  });

  test('getConnection returns the connection with OAUTH2 credentials', async () => {
    const key = await h.createConfig();
    const connectionId = uniqueId('user');
    const exchangedAt = Date.now();
    const { issued } = await h.connect(key, connectionId);

    const conn = await nango.getConnection(key, connectionId);
    assert.equal(conn.provider_config_key, key);
    assert.equal(conn.connection_id, connectionId);
    assert.equal(conn.credentials.type, 'OAUTH2');
    assert.equal(conn.credentials.access_token, issued.access_token);
    assert.equal(conn.credentials.refresh_token, issued.refresh_token);
    const expiresAt = Date.parse(conn.credentials.expires_at);
    assert.ok(Number.isFinite(expiresAt), `expires_at is a date: ${conn.credentials.expires_at}`);
    const expected = exchangedAt + issued.expires_in * 1000;
    assert.ok(Math.abs(expiresAt - expected) < 120_000, `expires_at ${conn.credentials.expires_at} ~ now + ${issued.expires_in}s`);
    assert.equal(conn.credentials.raw.access_token, issued.access_token);
  });

  test('listConnections lists connections with provider = the provider config key', async () => {
    const key = await h.createConfig();
    const ids = [uniqueId('user'), uniqueId('user')];
    for (const id of ids) await h.connect(key, id);

    const list = await nango.listConnections();
    assert.ok(Array.isArray(list.connections), JSON.stringify(list));
    for (const id of ids) {
      const entry = list.connections.find((c) => c.connection_id === id);
      assert.ok(entry, `connection ${id} listed in ${JSON.stringify(list)}`);
      assert.equal(entry.provider, key);
      assert.ok(Number.isFinite(Date.parse(entry.created)), `created is a date: ${entry.created}`);
      assert.equal(entry.credentials, undefined, 'no credentials in the list');
    }
  });

  test('PKCE: the code_verifier sent to the token endpoint matches the S256 code_challenge', async () => {
    const key = await h.createConfig();
    const flow = await h.connect(key, uniqueId('user'));

    const challenge = flow.authorizeUrl.searchParams.get('code_challenge');
    assert.equal(flow.authorizeUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.match(challenge ?? '', /^[A-Za-z0-9_-]{43}$/, 'base64url SHA-256 without padding');
    // what the provider saw at /authorize is what our Location said
    const seen = h.authorizeRequests.find((r) => r.query.state === flow.authorizeUrl.searchParams.get('state'));
    assert.equal(seen?.query.code_challenge, challenge);

    const verifier = flow.tokenRequest.body.code_verifier;
    assert.ok(verifier, `code_verifier sent in ${JSON.stringify(flow.tokenRequest.body)}`);
    assert.match(verifier, /^[A-Za-z0-9\-._~]{43,128}$/, 'RFC 7636 verifier');
    assert.equal(s256(verifier), challenge);
  });

  test('client credentials go in the body by default and in a Basic header with authorization_method: header', async () => {
    const bodyKey = await h.createConfig();
    const bodyFlow = await h.connect(bodyKey, uniqueId('user'));
    assert.equal(bodyFlow.tokenRequest.body.client_id, `client-${bodyKey}`);
    assert.equal(bodyFlow.tokenRequest.body.client_secret, `secret-${bodyKey}`);
    assert.equal(bodyFlow.tokenRequest.headers.authorization, undefined);

    const headerKey = await h.createConfig({ provider: PROVIDER_HEADER });
    const headerConnection = uniqueId('user');
    const headerFlow = await h.connect(headerKey, headerConnection);
    const auth = headerFlow.tokenRequest.headers.authorization ?? '';
    assert.match(auth, /^Basic /);
    assert.equal(Buffer.from(auth.slice(6), 'base64').toString('utf8'), `client-${headerKey}:secret-${headerKey}`);
    assert.equal(headerFlow.tokenRequest.body.client_id, undefined);
    assert.equal(headerFlow.tokenRequest.body.client_secret, undefined);
    assert.equal(await nango.getToken(headerKey, headerConnection), headerFlow.issued.access_token);
  });

  test('unknown connection: 400 with the Nango error message', async () => {
    const key = await h.createConfig();
    await assert.rejects(nango.getToken(key, uniqueId('nobody')), (err) => {
      assert.equal(err.response?.status, 400, `status of ${err}`);
      assert.equal(err.response.data.error, UNKNOWN_CONNECTION);
      return true;
    });
    await assert.rejects(nango.getConnection(key, uniqueId('nobody')), (err) => {
      assert.equal(err.response?.status, 400);
      assert.equal(err.response.data.error, UNKNOWN_CONNECTION);
      return true;
    });
  });
});
