// The seed quickstart's backend lines, literally (`new Nango('http://...')`, which the published
// 0.9.0 rejects), against the real server; and the constructor's host handling.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import NangoDefault, { Nango, NangoError } from '../index.js';
import { startHarness, uniqueId } from '../../../tests/compat/lib/harness.js';

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

  test("seed: new Nango('http://...'), getToken, getRawTokenResponse", async () => {
    // Tell Nango where to find your Nango server
    let nango = new Nango(h.nangoUrl);
    let accessToken = await nango.getToken(key, connectionId);
    let rawTokenResponse = await nango.getRawTokenResponse(key, connectionId);

    assert.equal(accessToken, issued.access_token);
    assert.equal(rawTokenResponse.access_token, issued.access_token);
    assert.equal(rawTokenResponse.refresh_token, issued.refresh_token);
  });

  test('the 0.9.0 form, the default export, a URL object and a trailing slash all work', async () => {
    for (const nango of [
      new Nango({ host: h.nangoUrl }),
      new NangoDefault({ host: `${h.nangoUrl}/` }),
      new Nango(new URL(h.nangoUrl)),
      new Nango(`${h.nangoUrl}/`),
    ]) {
      assert.equal(nango.host, h.nangoUrl);
      assert.equal(nango.serverUrl, h.nangoUrl);
      assert.equal(await nango.getToken(key, connectionId), issued.access_token);
    }
  });
});

describe('constructor', () => {
  test('the default host is http://localhost:3003 (self-hosted), not api.nango.dev', () => {
    assert.equal(new Nango().host, 'http://localhost:3003');
    assert.equal(new Nango({}).host, 'http://localhost:3003');
    assert.equal(new Nango({ host: '' }).host, 'http://localhost:3003');
    assert.equal(new Nango({ secretKey: 'sk' }).host, 'http://localhost:3003');
  });

  test('one trailing slash is removed, and only one', () => {
    assert.equal(new Nango('https://nango.example.com/').host, 'https://nango.example.com');
    assert.equal(new Nango('https://nango.example.com//').host, 'https://nango.example.com/');
    assert.equal(new Nango('https://example.com/nango/').host, 'https://example.com/nango');
  });

  test('an invalid URL throws the 0.9.0 message', () => {
    for (const host of ['not a url', 'localhost:3003', 'ftp://example.com', '//example.com']) {
      assert.throws(
        () => new Nango({ host }),
        (err) => {
          assert.ok(err instanceof NangoError);
          assert.ok(err instanceof Error);
          assert.equal(err.message, `Invalid URL provided for the Nango host: ${host}`);
          assert.equal(err.type, 'invalid_host');
          return true;
        },
      );
    }
    assert.throws(() => new Nango('not a url'), { message: 'Invalid URL provided for the Nango host: not a url' });
  });

  test('a host with credentials in it is refused without echoing them', () => {
    assert.throws(
      () => new Nango('https://user:hunter2@nango.example.com'),
      (err) => err instanceof NangoError && err.type === 'invalid_host' && !err.message.includes('hunter2'),
    );
  });

  test('a non-object, non-string config is a TypeError', () => {
    assert.throws(() => new Nango(3003), TypeError);
    assert.throws(() => new Nango(null), TypeError);
    assert.throws(() => new Nango({ secretKey: 42 }), TypeError);
  });
});
