// NANGO_SECRET_KEY set on the server: @nangohq/node@0.9.0 sends it as the HTTP Basic username.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Nango } from '@nangohq/node';
import { startHarness, uniqueId } from '../lib/harness.js';

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

  test('secret key: the right key works', async () => {
    const nango = new Nango({ host: h.nangoUrl, secretKey });
    assert.equal(await nango.getToken(key, connectionId), issued.access_token);
    const conn = await nango.getConnection(key, connectionId);
    assert.equal(conn.connection_id, connectionId);
    const list = await nango.listConnections();
    assert.ok(list.connections.some((c) => c.connection_id === connectionId && c.provider === key));
  });

  test('secret key: a wrong key is rejected with 401', async () => {
    const nango = new Nango({ host: h.nangoUrl, secretKey: `${secretKey}-wrong` });
    for (const call of [() => nango.getToken(key, connectionId), () => nango.listConnections()]) {
      await assert.rejects(call(), (err) => {
        assert.equal(err.response?.status, 401, `status of ${err}`);
        assert.equal(err.response.data.error, INVALID_KEY);
        return true;
      });
    }
  });

  test('secret key: no key at all is rejected with 401', async () => {
    const nango = new Nango({ host: h.nangoUrl }); // sends no Authorization header
    await assert.rejects(nango.getToken(key, connectionId), (err) => {
      assert.equal(err.response?.status, 401, `status of ${err}`);
      assert.equal(err.response.data.error, MISSING_HEADER);
      return true;
    });
  });
});
