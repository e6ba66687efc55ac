// What goes on the wire and the retry policy, against small local HTTP servers that record the
// requests they get (the real server cannot hang or cut connections on demand).
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Nango, NangoError } from '../index.js';
import { closedPort, cut, hang, json, stubsClosedAfterEach } from '../test-support/stub-server.js';

const stub = stubsClosedAfterEach(afterEach);

const CONNECTION = {
  id: 1,
  created_at: '2023-02-28T10:00:00.000Z',
  updated_at: '2023-02-28T10:00:00.000Z',
  provider_config_key: 'k',
  connection_id: 'c',
  credentials: { type: 'OAUTH2', access_token: 'at-1', raw: { access_token: 'at-1' } },
  connection_config: {},
  account_id: 0,
  metadata: {},
};

// Every method with arguments, the request it must make, and whether it is idempotent.
const CALLS = [
  ['getConnection', (n) => n.getConnection('k', 'c'), 'GET', '/connection/c?provider_config_key=k'],
  ['getToken', (n) => n.getToken('k', 'c'), 'GET', '/connection/c?provider_config_key=k'],
  ['getRawTokenResponse', (n) => n.getRawTokenResponse('k', 'c'), 'GET', '/connection/c?provider_config_key=k'],
  ['listConnections', (n) => n.listConnections(), 'GET', '/connection'],
  ['deleteConnection', (n) => n.deleteConnection('k', 'c'), 'DELETE', '/connection/c?provider_config_key=k'],
  ['listConfigs', (n) => n.listConfigs(), 'GET', '/config'],
  ['getConfig', (n) => n.getConfig('k'), 'GET', '/config/k'],
  [
    'createConfig',
    (n) => n.createConfig({ providerConfigKey: 'k', provider: 'p', oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: 'a' }),
    'POST',
    '/config',
  ],
  [
    'updateConfig',
    (n) => n.updateConfig({ providerConfigKey: 'k', provider: 'p', oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: 'a' }),
    'PUT',
    '/config',
  ],
  ['deleteConfig', (n) => n.deleteConfig('k'), 'DELETE', '/config/k'],
];

describe('requests', () => {
  test('every method sends its REST call with Accept, Basic auth and, with a body, Content-Type', async () => {
    const s = await stub((req, res) => json(200, req.method === 'GET' && req.url.startsWith('/connection/') ? CONNECTION : { ok: true })(req, res));
    const nango = new Nango({ host: s.url, secretKey: 'sk-test' });
    for (const [name, call, method, url] of CALLS) {
      const before = s.requests.length;
      await call(nango);
      assert.equal(s.requests.length, before + 1, `${name}: one request`);
      const r = s.requests.at(-1);
      assert.equal(r.method, method, name);
      assert.equal(r.url, url, name);
      assert.equal(r.headers.accept, 'application/json', name);
      assert.equal(r.headers.authorization, `Basic ${Buffer.from('sk-test:').toString('base64')}`, name);
      if (method === 'POST' || method === 'PUT') {
        assert.equal(r.headers['content-type'], 'application/json', name);
        assert.deepEqual(JSON.parse(r.body), {
          provider_config_key: 'k',
          provider: 'p',
          oauth_client_id: 'i',
          oauth_client_secret: 's',
          oauth_scopes: 'a',
        });
      } else {
        assert.equal(r.headers['content-type'], undefined, `${name}: no Content-Type without a body`);
        assert.equal(r.body, '', name);
      }
    }
  });

  test('a non-ASCII secret key is sent as the base64 of its UTF-8 bytes', async () => {
    const s = await stub(json(200, { configs: [] }));
    await new Nango({ host: s.url, secretKey: 'clé-ü' }).listConfigs();
    assert.equal(s.requests[0].headers.authorization, `Basic ${Buffer.from('clé-ü:', 'utf8').toString('base64')}`);
  });

  test('no Authorization header without a secret key, nor with an empty one', async () => {
    const s = await stub(json(200, { connections: [] }));
    await new Nango({ host: s.url }).listConnections();
    await new Nango({ host: s.url, secretKey: '' }).listConnections();
    await new Nango(s.url).listConnections();
    assert.equal(s.requests.length, 3);
    for (const r of s.requests) assert.equal(r.headers.authorization, undefined);
  });

  test('ids and keys are percent-encoded; forceRefresh adds force_refresh=true', async () => {
    const s = await stub((req, res) => json(200, req.url.startsWith('/connection/') ? CONNECTION : {})(req, res));
    const nango = new Nango(s.url);
    await nango.getConnection('a/b c?d', 'x/y z?w#%+é');
    await nango.getToken('k&force_refresh=true', 'c', { forceRefresh: true });
    await nango.getRawTokenResponse('k', 'c', { forceRefresh: false });
    await nango.deleteConnection('a/b', 'x?y');
    await nango.getConfig('a/b c?d');
    await nango.deleteConfig('#');
    assert.deepEqual(
      s.requests.map((r) => `${r.method} ${r.url}`),
      [
        'GET /connection/x%2Fy%20z%3Fw%23%25%2B%C3%A9?provider_config_key=a%2Fb%20c%3Fd',
        'GET /connection/c?provider_config_key=k%26force_refresh%3Dtrue&force_refresh=true',
        'GET /connection/c?provider_config_key=k',
        'DELETE /connection/x%3Fy?provider_config_key=a%2Fb',
        'GET /config/a%2Fb%20c%3Fd',
        'DELETE /config/%23',
      ],
    );
  });

  test('a host with a path prefix (reverse proxy) is kept', async () => {
    const s = await stub(json(200, { configs: [] }));
    await new Nango({ host: `${s.url}/nango/` }).listConfigs();
    assert.equal(s.requests[0].url, '/nango/config');
  });

  test("'.' and '..' ids are refused before any request (URL parsing would resolve them)", async () => {
    const s = await stub(json(200, { result: 'ok' }));
    const nango = new Nango(s.url);
    for (const call of [
      () => nango.getConnection('k', '..'),
      () => nango.getToken('k', '.'),
      () => nango.deleteConnection('k', '..'),
      () => nango.getConfig('..'),
      () => nango.deleteConfig('.'),
    ]) {
      await assert.rejects(call(), (err) => err instanceof NangoError && err.type === 'invalid_request' && err.status === undefined);
    }
    assert.equal(s.requests.length, 0);
    // In a query they are fine.
    assert.deepEqual(await nango.getConnection('..', 'c'), { result: 'ok' });
    assert.equal(s.requests[0].url, '/connection/c?provider_config_key=..');
  });

  test('missing keys and ids are refused before any request, with the server error types', async () => {
    const s = await stub(json(200, CONNECTION));
    const nango = new Nango(s.url);
    const cases = [
      [() => nango.getConnection('', 'c'), 'missing_provider_config'],
      [() => nango.getToken(undefined, 'c'), 'missing_provider_config'],
      [() => nango.getRawTokenResponse('k', ''), 'missing_connection'],
      [() => nango.deleteConnection('k', null), 'missing_connection'],
      [() => nango.getConfig(''), 'missing_provider_config'],
      [() => nango.deleteConfig(), 'missing_provider_config'],
    ];
    for (const [call, type] of cases) {
      await assert.rejects(call(), (err) => {
        assert.ok(err instanceof NangoError);
        assert.equal(err.type, type);
        assert.equal(err.status, undefined);
        return true;
      });
    }
    assert.equal(s.requests.length, 0);
    // A numeric id is sent as its text (0.9.0 interpolated it).
    assert.equal(await nango.getToken('k', 42), 'at-1');
    assert.equal(s.requests[0].url, '/connection/42?provider_config_key=k');
  });

  test('createConfig accepts snake_case names and scopes as an array', async () => {
    const s = await stub(json(200, { config_id: 7 }));
    const nango = new Nango(s.url);
    assert.deepEqual(
      await nango.createConfig({
        provider_config_key: 'k',
        provider: 'p',
        oauth_client_id: 'i',
        oauth_client_secret: 's',
        oauth_scopes: ['a', 'b'],
      }),
      { config_id: 7 },
    );
    await nango.createConfig({ providerConfigKey: 'k', provider: 'p', oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: [] });
    // Missing fields are left out, for the server to report.
    await nango.createConfig({ providerConfigKey: 'k' });
    assert.deepEqual(
      s.requests.map((r) => JSON.parse(r.body)),
      [
        { provider_config_key: 'k', provider: 'p', oauth_client_id: 'i', oauth_client_secret: 's', oauth_scopes: 'a,b' },
        { provider_config_key: 'k', provider: 'p', oauth_client_id: 'i', oauth_client_secret: 's', oauth_scopes: '' },
        { provider_config_key: 'k' },
      ],
    );
  });
});

describe('responses', () => {
  test('an error response becomes a NangoError with status, type, message, body and response', async () => {
    const body = { error: "No connection matching params 'connection_id' and 'provider_config_key'.", type: 'unkown_connection' };
    const s = await stub(json(400, body));
    await assert.rejects(new Nango(s.url).getToken('k', 'c'), (err) => {
      assert.ok(err instanceof NangoError);
      assert.ok(err instanceof Error);
      assert.equal(err.name, 'NangoError');
      assert.equal(err.status, 400);
      assert.equal(err.type, 'unkown_connection');
      assert.equal(err.message, body.error);
      assert.deepEqual(err.body, body);
      assert.deepEqual(err.response, { status: 400, data: body });
      return true;
    });
  });

  test('a Nango 0.9 error without a type gets the type of its message', async () => {
    const s = await stub(json(401, { error: 'Authentication failed. The provided secret key is invalid.' }));
    await assert.rejects(new Nango(s.url).listConnections(), { status: 401, type: 'invalid_secret_key' });
  });

  test('a non-JSON error response: http_error with the status in the message', async () => {
    const s = await stub((req, res) => {
      res.writeHead(502, { 'Content-Type': 'text/html' });
      res.end('<html>Bad Gateway</html>');
    });
    await assert.rejects(new Nango(s.url).listConfigs(), (err) => {
      assert.equal(err.type, 'http_error');
      assert.equal(err.status, 502);
      assert.match(err.message, /status code 502/);
      assert.equal(err.body, '<html>Bad Gateway</html>');
      assert.deepEqual(err.response, { status: 502, data: '<html>Bad Gateway</html>' });
      return true;
    });
  });

  test('a 2xx that is not a JSON object where one is expected: invalid_response', async () => {
    const s = await stub((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html>some other server</html>');
    });
    await assert.rejects(new Nango(s.url).getToken('k', 'c'), { type: 'invalid_response', status: 200 });
    await assert.rejects(new Nango(s.url).listConnections(), { type: 'invalid_response' });
  });

  test('redirects are not followed (the secret key stays with the host it was given for)', async () => {
    const target = await stub(json(200, { connections: [] }));
    const s = await stub((req, res) => {
      res.writeHead(302, { Location: `${target.url}/connection` });
      res.end();
    });
    await assert.rejects(new Nango({ host: s.url, secretKey: 'sk-redirect' }).listConnections(), (err) => {
      assert.equal(err.status, 302);
      assert.equal(err.type, 'http_error');
      assert.ok(err.message.includes(target.url), err.message);
      return true;
    });
    assert.equal(target.requests.length, 0);
  });

  test('empty 200 bodies resolve to undefined', async () => {
    const s = await stub((req, res) => {
      res.writeHead(200);
      res.end();
    });
    const nango = new Nango(s.url);
    assert.equal(await nango.deleteConnection('k', 'c'), undefined);
    assert.equal(await nango.deleteConfig('k'), undefined);
    assert.equal(
      await nango.updateConfig({ providerConfigKey: 'k', provider: 'p', oauthClientId: 'i', oauthClientSecret: 's', oauthScopes: '' }),
      undefined,
    );
  });
});

describe('getToken by credentials type (stubbed bodies; the real server is in credential-types.test.js)', () => {
  const withCredentials = async (credentials) => {
    const s = await stub(json(200, { ...CONNECTION, credentials }));
    return new Nango(s.url);
  };

  test('OAUTH1 gives {oAuthToken, oAuthTokenSecret}', async () => {
    const nango = await withCredentials({ type: 'OAUTH1', oauth_token: 'ot', oauth_token_secret: 'ots', raw: { oauth_token: 'ot' } });
    assert.deepEqual(await nango.getToken('k', 'c'), { oAuthToken: 'ot', oAuthTokenSecret: 'ots' });
    assert.deepEqual(await nango.getRawTokenResponse('k', 'c'), { oauth_token: 'ot' });
  });

  test('OAUTH2_CC gives token, or access_token when there is no token', async () => {
    assert.equal(await (await withCredentials({ type: 'OAUTH2_CC', token: 'cc-1', raw: {} })).getToken('k', 'c'), 'cc-1');
    assert.equal(await (await withCredentials({ type: 'OAUTH2_CC', access_token: 'cc-2', raw: {} })).getToken('k', 'c'), 'cc-2');
  });

  test("an unknown type: unknown_credentials_type with 0.9's message, no token in the error", async () => {
    const nango = await withCredentials({ type: 'SAML', access_token: 'secret-token-value' });
    await assert.rejects(nango.getToken('k', 'c'), (err) => {
      assert.ok(err instanceof NangoError);
      assert.equal(err.type, 'unknown_credentials_type');
      assert.equal(err.message, "Unrecognized OAuth type 'SAML' in stored credentials.");
      assert.ok(!JSON.stringify({ ...err, message: err.message }).includes('secret-token-value'));
      return true;
    });
  });
});

describe('timeouts and retries', () => {
  test('connection refused: network_error after 1 + retries attempts, with exponential backoff', async () => {
    const port = await closedPort();
    const nango = new Nango({ host: `http://127.0.0.1:${port}`, retries: 2, retryDelayMs: 100 });
    const started = Date.now();
    await assert.rejects(nango.getToken('k', 'c'), (err) => {
      assert.ok(err instanceof NangoError);
      assert.equal(err.type, 'network_error');
      assert.equal(err.status, undefined);
      assert.equal(err.response, undefined);
      assert.equal(err.body, undefined);
      assert.ok(err.cause, 'the fetch error is the cause');
      assert.match(err.message, /ECONNREFUSED/);
      assert.match(err.message, /3 attempts/);
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 300 - 10, `waited 100 + 200 ms between the attempts, took ${elapsed} ms`);
  });

  test('network errors: GET, PUT and DELETE are retried `retries` times, POST never', async () => {
    const s = await stub(cut());
    const nango = new Nango({ host: s.url, retries: 2, retryDelayMs: 1 });
    for (const [name, call, method] of CALLS) {
      const before = s.requests.length;
      await assert.rejects(call(nango), { type: 'network_error' }, name);
      const expected = method === 'POST' ? 1 : 3;
      assert.equal(s.requests.length - before, expected, `${name}: ${expected} attempts`);
    }
  });

  test('retries: 0 makes a single attempt; the default is 2 retries', async () => {
    const s = await stub(cut());
    await assert.rejects(new Nango({ host: s.url, retries: 0 }).listConnections(), { type: 'network_error' });
    assert.equal(s.requests.length, 1);
    await assert.rejects(new Nango({ host: s.url, retryDelayMs: 1 }).listConnections(), { type: 'network_error' });
    assert.equal(s.requests.length, 4);
  });

  test('a server that does not answer: timeout after timeoutMs per attempt, retried for GET, not for POST', async () => {
    const s = await stub(hang());
    const nango = new Nango({ host: s.url, timeoutMs: 150, retries: 1, retryDelayMs: 10 });
    let started = Date.now();
    await assert.rejects(nango.getConnection('k', 'c'), (err) => {
      assert.ok(err instanceof NangoError);
      assert.equal(err.type, 'timeout');
      assert.equal(err.status, undefined);
      assert.match(err.message, /within 150 ms/);
      return true;
    });
    let elapsed = Date.now() - started;
    assert.equal(s.requests.length, 2, 'two attempts');
    assert.ok(elapsed >= 300 && elapsed < 5000, `two 150 ms attempts took ${elapsed} ms`);

    started = Date.now();
    await assert.rejects(nango.createConfig({ providerConfigKey: 'k' }), { type: 'timeout' });
    elapsed = Date.now() - started;
    assert.equal(s.requests.length, 3, 'POST: one attempt');
    assert.ok(elapsed >= 150 && elapsed < 5000, `one 150 ms attempt took ${elapsed} ms`);
  });

  test('the timeout also covers a body that never ends', async () => {
    const s = await stub((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"connections": [');
    });
    await assert.rejects(new Nango({ host: s.url, timeoutMs: 150, retries: 0 }).listConnections(), { type: 'timeout' });
    assert.equal(s.requests.length, 1);
  });

  for (const status of [400, 401, 404, 500, 502, 503]) {
    test(`an HTTP ${status} is never retried`, async () => {
      const s = await stub(json(status, { error: `status ${status}`, type: `t${status}` }));
      const nango = new Nango({ host: s.url, retries: 3, retryDelayMs: 1 });
      for (const [name, call] of CALLS) {
        const before = s.requests.length;
        await assert.rejects(call(nango), { status, type: `t${status}`, message: `status ${status}` }, name);
        assert.equal(s.requests.length - before, 1, `${name}: one request`);
      }
    });
  }

  test('a network error followed by an answer: the retry succeeds', async () => {
    let n = 0;
    const s = await stub((req, res) => {
      n += 1;
      if (n === 1) req.socket.destroy();
      else json(200, { connections: [{ connection_id: 'c', provider: 'k', created: 'x' }] })(req, res);
    });
    const list = await new Nango({ host: s.url, retryDelayMs: 1 }).listConnections();
    assert.equal(list.connections[0].connection_id, 'c');
    assert.equal(s.requests.length, 2);
  });

  test('invalid options are refused', () => {
    assert.throws(() => new Nango({ timeoutMs: 0 }), TypeError);
    assert.throws(() => new Nango({ timeoutMs: Infinity }), TypeError, 'setTimeout would fire at once');
    assert.throws(() => new Nango({ timeoutMs: 2 ** 31 }), TypeError);
    assert.throws(() => new Nango({ retryDelayMs: -1 }), TypeError);
    assert.throws(() => new Nango({ retries: -1 }), TypeError);
    assert.throws(() => new Nango({ retries: 1.5 }), TypeError);
    assert.throws(() => new Nango({ retryDelayMs: 'x' }), TypeError);
    assert.throws(() => new Nango({ fetch: 'no' }), TypeError);
  });

  test('a custom fetch is used', async () => {
    const seen = [];
    const nango = new Nango({
      host: 'http://nango.invalid',
      fetch: async (url, init) => {
        seen.push([String(url), init.method]);
        return new Response(JSON.stringify({ connections: [] }), { status: 200 });
      },
    });
    assert.deepEqual(await nango.listConnections(), { connections: [] });
    assert.deepEqual(seen, [['http://nango.invalid/connection', 'GET']]);
  });
});
