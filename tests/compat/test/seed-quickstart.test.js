// The seed quickstart (step 3), as far as it holds with @nangohq/node@0.9.0.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Nango } from '@nangohq/node';
import { startHarness, uniqueId } from '../lib/harness.js';

describe('seed quickstart', () => {
  let h;
  let key;
  let connectionId;
  let issued;
  before(async () => {
    h = await startHarness();
    key = await h.createConfig();
    connectionId = uniqueId('user');
    ({ issued } = await h.connect(key, connectionId));
  });
  after(() => h?.stop());

  // The quickstart says `new Nango('http://localhost:3003')`: that is the 0.7.x constructor.
  // @nangohq/node 0.9.0 takes an options object and does `config.host = config.host || ...`,
  // which on a string throws in strict-mode ESM, so the seed's literal line cannot work with
  // 0.9.0 whatever the server does. This records that client fact; the server is then tested
  // with the 0.9.0 form of the same call (`{host}`, no secret key, as in the seed).
  test("seed: 0.9.0 rejects the seed's string constructor with a TypeError", () => {
    assert.throws(() => new Nango(h.nangoUrl), {
      name: 'TypeError',
      message: /Cannot create property 'host' on string/,
    });
  });

  test('seed: getToken and getRawTokenResponse with new Nango({host})', async () => {
    const nango = new Nango({ host: h.nangoUrl });
    const accessToken = await nango.getToken(key, connectionId);
    assert.equal(accessToken, issued.access_token);
    const raw = await nango.getRawTokenResponse(key, connectionId);
    assert.equal(raw.access_token, accessToken);
    assert.equal(raw.refresh_token, issued.refresh_token);
  });

  test('seed: the REST call returns the documented connection object', async () => {
    const res = await fetch(`${h.nangoUrl}/connection/${connectionId}?provider_config_key=${key}`, {
      headers: { 'Content-type': 'application/json' },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const body = await res.json();
    for (const field of ['id', 'created_at', 'updated_at', 'provider_config_key', 'connection_id', 'credentials', 'connection_config']) {
      assert.ok(field in body, `${field} in ${JSON.stringify(Object.keys(body))}`);
    }
    assert.equal(body.provider_config_key, key);
    assert.equal(body.connection_id, connectionId);
    assert.ok(Number.isFinite(Date.parse(body.created_at)));
    assert.ok(Number.isFinite(Date.parse(body.updated_at)));
    assert.equal(body.credentials.type, 'OAUTH2');
    assert.equal(body.credentials.access_token, issued.access_token);
    assert.equal(body.credentials.refresh_token, issued.refresh_token);
    assert.ok(Number.isFinite(Date.parse(body.credentials.expires_at)));
    assert.equal(body.credentials.raw.access_token, issued.access_token);
    assert.equal(typeof body.connection_config, 'object');
  });
});
