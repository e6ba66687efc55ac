// nango.proxy and its shorthands: what goes on the wire (against a local stub standing in for the
// server), then through the real server to a fake provider API (a template whose `base_api_url`
// points at it), with the access token of a connection made through oauth2-mock-server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';
import { Nango, NangoError } from '../index.js';
import { closedPort, cut, json, startStub, stubsClosedAfterEach } from '../test-support/stub-server.js';
import { PROVIDER_API, startHarness, uniqueId } from '../../../tests/compat/lib/harness.js';

const basic = (key) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

/** Reads a web ReadableStream to the end: `{bytes, chunks}`. */
async function drain(stream) {
  let bytes = 0;
  let chunks = 0;
  for await (const chunk of stream) {
    bytes += chunk.byteLength;
    chunks += 1;
  }
  return { bytes, chunks };
}

describe('proxy: the request', () => {
  const stub = stubsClosedAfterEach(afterEach);
  const base = { providerConfigKey: 'github', connectionId: 'user-42' };

  test('method, /proxy path, query, auth, Connection-Id and Provider-Config-Key, prefixed headers, Retries', async () => {
    const s = await stub(json(200, { ok: true }));
    const nango = new Nango({ host: s.url, secretKey: 'sk-test' });
    const res = await nango.proxy({
      ...base,
      method: 'get',
      endpoint: '/user/repos',
      params: { per_page: 10, sort: 'a b&c', label: ['x', 'y'], skipped: undefined, none: null },
      headers: { Accept: 'application/vnd.github+json', 'X-GitHub-Api-Version': 2022, 'X-Skipped': undefined },
      retries: 3,
    });
    assert.deepEqual(res.data, { ok: true });
    const r = s.requests[0];
    assert.equal(r.method, 'GET');
    assert.equal(r.url, '/proxy/user/repos?per_page=10&sort=a+b%26c&label=x&label=y');
    assert.equal(r.headers.authorization, basic('sk-test'));
    assert.equal(r.headers['connection-id'], 'user-42');
    assert.equal(r.headers['provider-config-key'], 'github');
    assert.equal(r.headers['nango-proxy-accept'], 'application/vnd.github+json');
    assert.equal(r.headers['nango-proxy-x-github-api-version'], '2022');
    assert.equal(r.headers['nango-proxy-x-skipped'], undefined);
    assert.equal(r.headers.retries, '3');
    assert.equal(r.headers['content-type'], undefined, 'no body, no Content-Type');
    assert.equal(r.body, '');
  });

  test('no Retries header unless given; no Authorization without a secret key; retries 0 is sent', async () => {
    const s = await stub(json(200, {}));
    const nango = new Nango(s.url);
    await nango.proxy({ ...base, endpoint: '/a' });
    await nango.proxy({ ...base, endpoint: '/a', retries: 0 });
    assert.equal(s.requests[0].headers.retries, undefined);
    assert.equal(s.requests[0].headers.authorization, undefined);
    assert.equal(s.requests[1].headers.retries, '0');
  });

  test('the endpoint: a / added in front, its own query kept before params, # and \\ encoded, the host prefix kept', async () => {
    const s = await stub(json(200, {}));
    const nango = new Nango(`${s.url}/nango/`);
    await nango.get({ ...base, endpoint: 'users' });
    await nango.get({ ...base, endpoint: '/search?q=a#b', params: { page: 2 } });
    await nango.get({ ...base, endpoint: '/a\\b' });
    await nango.get({ ...base, endpoint: '/', params: 'x=1&y=2' });
    await nango.get({ ...base, endpoint: '/files/a%20b...', params: new URLSearchParams([['k', 'v w']]) });
    assert.deepEqual(
      s.requests.map((r) => r.url),
      [
        '/nango/proxy/users',
        '/nango/proxy/search?q=a%23b&page=2',
        '/nango/proxy/a%5Cb',
        '/nango/proxy/?x=1&y=2',
        '/nango/proxy/files/a%20b...?k=v+w',
      ],
    );
  });

  test('the shorthands set the method; any of the seven methods can be given', async () => {
    const s = await stub(json(200, {}));
    const nango = new Nango(s.url);
    await nango.get({ ...base, endpoint: '/x', method: 'POST' });
    await nango.post({ ...base, endpoint: '/x' });
    await nango.put({ ...base, endpoint: '/x' });
    await nango.patch({ ...base, endpoint: '/x' });
    await nango.delete({ ...base, endpoint: '/x' });
    for (const method of ['HEAD', 'options']) await nango.proxy({ ...base, endpoint: '/x', method });
    assert.deepEqual(
      s.requests.map((r) => r.method),
      ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'],
    );
  });

  test('data: objects as JSON, strings, bytes and URLSearchParams as they are; a caller Content-Type wins', async () => {
    const s = await stub(json(200, {}));
    const nango = new Nango(s.url);
    await nango.post({ ...base, endpoint: '/j', data: { title: 'Hi', labels: ['a'] } });
    await nango.post({ ...base, endpoint: '/a', data: [1, 2] });
    await nango.put({ ...base, endpoint: '/s', data: 'plain text' });
    await nango.put({ ...base, endpoint: '/b', data: Buffer.from('bytes!'), headers: { 'content-type': 'application/octet-stream' } });
    await nango.post({ ...base, endpoint: '/f', data: new URLSearchParams({ a: '1', b: 'x y' }) });
    await nango.post({ ...base, endpoint: '/x', data: { a: 1 }, headers: { 'Content-Type': 'application/merge-patch+json' } });
    const seen = s.requests.map((r) => [r.url, r.headers['content-type'], r.body, r.headers['nango-proxy-content-type']]);
    assert.deepEqual(seen, [
      ['/proxy/j', 'application/json', '{"title":"Hi","labels":["a"]}', undefined],
      ['/proxy/a', 'application/json', '[1,2]', undefined],
      ['/proxy/s', 'text/plain;charset=UTF-8', 'plain text', undefined],
      ['/proxy/b', 'application/octet-stream', 'bytes!', undefined],
      ['/proxy/f', 'application/x-www-form-urlencoded;charset=UTF-8', 'a=1&b=x+y', undefined],
      ['/proxy/x', 'application/merge-patch+json', '{"a":1}', undefined],
    ]);
  });

  test('a ReadableStream body is streamed up', async () => {
    const s = await stub(json(200, {}));
    const parts = ['one,', 'two,', 'three'];
    const stream = new ReadableStream({
      pull(controller) {
        const next = parts.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(next));
      },
    });
    await new Nango(s.url).post({ ...base, endpoint: '/upload', data: stream, headers: { 'Content-Type': 'text/csv' } });
    assert.equal(s.requests[0].body, 'one,two,three');
    assert.equal(s.requests[0].headers['content-type'], 'text/csv');
  });

  test('bad arguments are refused before any request: NangoError for keys, ids and endpoints, TypeError for options', async () => {
    const s = await stub(json(200, {}));
    const nango = new Nango(s.url);
    const nangoErrors = [
      [{ connectionId: 'c', endpoint: '/x' }, 'missing_provider_config'],
      [{ providerConfigKey: '', connectionId: 'c', endpoint: '/x' }, 'missing_provider_config'],
      [{ providerConfigKey: 'k', endpoint: '/x' }, 'missing_connection'],
      [{ providerConfigKey: 'k', connectionId: 'c' }, 'missing_endpoint'],
      [{ providerConfigKey: 'k', connectionId: 'c', endpoint: '' }, 'missing_endpoint'],
      [{ providerConfigKey: 'k', connectionId: 'c', endpoint: '/a/../config' }, 'invalid_request'],
      [{ providerConfigKey: 'k', connectionId: 'c', endpoint: '..' }, 'invalid_request'],
      [{ providerConfigKey: 'k', connectionId: 'c', endpoint: '/a/%2E%2e/b' }, 'invalid_request'],
      [{ providerConfigKey: 'k', connectionId: 'c', endpoint: '/a/./b' }, 'invalid_request'],
      [{ providerConfigKey: 'k', connectionId: 'usér', endpoint: '/x' }, 'invalid_request'],
      [{ providerConfigKey: 'k\n', connectionId: 'c', endpoint: '/x' }, 'invalid_request'],
    ];
    for (const [config, type] of nangoErrors) {
      await assert.rejects(nango.proxy(config), (err) => {
        assert.ok(err instanceof NangoError, JSON.stringify(config));
        assert.equal(err.type, type, JSON.stringify(config));
        assert.equal(err.status, undefined);
        return true;
      });
    }
    const ok = { providerConfigKey: 'k', connectionId: 'c', endpoint: '/x' };
    for (const config of [
      { ...ok, method: 'TRACE' },
      { ...ok, method: 42 },
      { ...ok, retries: 11 },
      { ...ok, retries: -1 },
      { ...ok, retries: 1.5 },
      { ...ok, retries: '3' },
      { ...ok, responseType: 'blob' },
      { ...ok, timeoutMs: 0 },
      { ...ok, params: 42 },
      { ...ok, params: [['a', 'b']] },
      { ...ok, headers: 'X-A: b' },
      { ...ok, headers: { 'Bad Name': 'x' } },
      { ...ok, headers: { 'X-A': 'line\nbreak' } },
      { ...ok, data: () => {} },
    ]) {
      await assert.rejects(nango.proxy(config), TypeError, JSON.stringify(config));
    }
    await assert.rejects(nango.proxy(), TypeError);
    await assert.rejects(nango.get('/x'), TypeError);
    assert.equal(s.requests.length, 0);
  });

  test('never throws on an HTTP status: a provider 404, a proxy error and a 500 are returned', async () => {
    const answers = {
      '/proxy/missing': [404, { 'Content-Type': 'application/json' }, '{"message":"Not Found"}'],
      '/proxy/nango-error': [400, { 'Content-Type': 'application/json; charset=utf-8', 'Nango-Proxy-Error': 'true' }, '{"error":"Unknown connection.","type":"unknown_connection"}'],
      '/proxy/boom': [500, { 'Content-Type': 'text/html' }, '<h1>oops</h1>'],
      '/proxy/redirect': [302, { Location: 'https://elsewhere.example.com/' }, ''],
    };
    const s = await stub((req, res) => {
      const [status, headers, body] = answers[req.url];
      res.writeHead(status, headers);
      res.end(body);
    });
    const nango = new Nango({ host: s.url, retries: 3, retryDelayMs: 1 });
    const missing = await nango.get({ ...base, endpoint: '/missing' });
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.data, { message: 'Not Found' });
    const proxyError = await nango.get({ ...base, endpoint: '/nango-error' });
    assert.equal(proxyError.status, 400);
    assert.equal(proxyError.headers['nango-proxy-error'], 'true');
    assert.deepEqual(proxyError.data, { error: 'Unknown connection.', type: 'unknown_connection' });
    const boom = await nango.get({ ...base, endpoint: '/boom' });
    assert.equal(boom.status, 500);
    assert.equal(boom.data, '<h1>oops</h1>');
    const redirect = await nango.get({ ...base, endpoint: '/redirect' });
    assert.equal(redirect.status, 302, 'redirects are not followed');
    assert.equal(redirect.headers.location, 'https://elsewhere.example.com/');
    assert.equal(s.requests.length, 4, 'an answer is never retried by the client');
  });

  test('data by responseType: JSON by content type, text, arraybuffer, json, stream; headers as an object', async () => {
    const s = await stub((req, res) => {
      if (req.url.startsWith('/proxy/json')) {
        res.writeHead(200, { 'Content-Type': 'application/vnd.api+json', 'Set-Cookie': ['a=1', 'b=2'], 'X-Rate-Limit': '9' });
        res.end('{"data":[1]}');
      } else if (req.url.startsWith('/proxy/bad-json')) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('not json');
      } else if (req.url.startsWith('/proxy/empty')) {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('{"looks":"like json"}');
      }
    });
    const nango = new Nango(s.url);
    const auto = await nango.get({ ...base, endpoint: '/json' });
    assert.deepEqual(auto.data, { data: [1] });
    assert.equal(auto.status, 200);
    assert.equal(auto.statusText, 'OK');
    assert.equal(auto.headers['x-rate-limit'], '9');
    assert.equal(auto.headers['content-type'], 'application/vnd.api+json');
    assert.deepEqual(auto.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal((await nango.get({ ...base, endpoint: '/text' })).data, '{"looks":"like json"}', 'text/plain stays text');
    assert.deepEqual((await nango.get({ ...base, endpoint: '/text', responseType: 'json' })).data, { looks: 'like json' });
    assert.equal((await nango.get({ ...base, endpoint: '/json', responseType: 'text' })).data, '{"data":[1]}');
    assert.equal((await nango.get({ ...base, endpoint: '/bad-json' })).data, 'not json', 'labelled JSON but not: the text');
    await assert.rejects(nango.get({ ...base, endpoint: '/bad-json', responseType: 'json' }), { type: 'invalid_response', status: 200 });
    const empty = await nango.get({ ...base, endpoint: '/empty' });
    assert.equal(empty.status, 204);
    assert.equal(empty.data, '');
    assert.equal((await nango.get({ ...base, endpoint: '/empty', responseType: 'json' })).data, undefined);
    const buffer = await nango.get({ ...base, endpoint: '/json', responseType: 'arraybuffer' });
    assert.ok(buffer.data instanceof ArrayBuffer);
    assert.equal(Buffer.from(buffer.data).toString(), '{"data":[1]}');
    const stream = await nango.proxy({ ...base, endpoint: '/json', responseType: 'stream' });
    assert.ok(stream.data instanceof ReadableStream);
    assert.equal(await new Response(stream.data).text(), '{"data":[1]}');
  });

  test('responseType stream: returned at the headers, before the body is all sent, and outside the timeout', async () => {
    const CHUNK = Buffer.alloc(256 * 1024, 7);
    let ended = false;
    const s = await stub((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.write(CHUNK);
      // The rest comes later than the client's timeout.
      res.on('error', () => {});
      setTimeout(() => {
        if (res.destroyed) return;
        res.write(CHUNK);
        res.end(CHUNK);
        ended = true;
      }, 400);
    });
    const nango = new Nango({ host: s.url, timeoutMs: 200, retries: 0 });
    const res = await nango.get({ ...base, endpoint: '/big', responseType: 'stream' });
    assert.equal(res.status, 200);
    assert.equal(ended, false, 'resolved before the body was all sent');
    const { bytes } = await drain(res.data);
    assert.equal(bytes, CHUNK.length * 3);
    assert.equal(ended, true);

    // Without 'stream' the same response is under the timeout, body included.
    await assert.rejects(nango.get({ ...base, endpoint: '/big', responseType: 'arraybuffer' }), { type: 'timeout' });
  });

  test('no response: network_error or timeout, retried for GET but not for POST', async () => {
    const port = await closedPort();
    const nango = new Nango({ host: `http://127.0.0.1:${port}`, retries: 2, retryDelayMs: 1 });
    await assert.rejects(nango.get({ ...base, endpoint: '/x' }), (err) => {
      assert.ok(err instanceof NangoError);
      assert.equal(err.type, 'network_error');
      assert.match(err.message, /GET \/proxy\/x/);
      assert.match(err.message, /3 attempts/);
      return true;
    });

    const s = await stub(cut());
    const flaky = new Nango({ host: s.url, retries: 2, retryDelayMs: 1 });
    await assert.rejects(flaky.post({ ...base, endpoint: '/x', data: { a: 1 } }), { type: 'network_error' });
    assert.equal(s.requests.length, 1, 'a POST is sent once');
    await assert.rejects(flaky.get({ ...base, endpoint: '/x' }), { type: 'network_error' });
    assert.equal(s.requests.length, 4, 'a GET is tried three times');

    const hanging = await stub(() => {});
    const slow = new Nango({ host: hanging.url, retries: 0, timeoutMs: 5000 });
    await assert.rejects(slow.get({ ...base, endpoint: '/x', timeoutMs: 50 }), (err) => {
      assert.equal(err.type, 'timeout');
      assert.match(err.message, /within 50 ms/);
      return true;
    });
  });
});

describe('proxy: through the real server to a provider API', () => {
  const secretKey = `sk-${randomBytes(12).toString('hex')}`;
  const BIG = 3 * 1024 * 1024;
  let api;
  let h;
  let nango;
  let key;
  let connectionId;
  let accessToken;

  before(async () => {
    // The fake provider API: it records every request (startStub) and answers by path.
    api = await startStub((req, res, body) => {
      const url = new URL(req.url, 'http://api.test');
      if (url.pathname === '/missing') return json(404, { message: 'Not Found' })(req, res);
      if (url.pathname === '/text') {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Api': 'fake' });
        return res.end('hello from the API');
      }
      if (url.pathname === '/big') {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
        return res.end(Buffer.alloc(BIG, 1));
      }
      return json(200, { method: req.method, path: url.pathname, query: url.search, body })(req, res);
    });
    h = await startHarness({ secretKey, apiBaseUrl: api.url });
    nango = new Nango({ host: h.nangoUrl, secretKey, retryDelayMs: 10 });
    key = await h.createConfig({ provider: PROVIDER_API });
    connectionId = uniqueId('user');
    ({ issued: { access_token: accessToken } } = await h.connect(key, connectionId));
  });
  after(async () => {
    await h?.stop();
    await api?.close();
  });

  const last = () => api.requests.at(-1);

  test("a GET reaches the API with the connection's Bearer token, the query and the unprefixed headers", async () => {
    const res = await nango.get({
      providerConfigKey: key,
      connectionId,
      endpoint: '/repos/octo/hello',
      params: { per_page: 5, label: ['a', 'b c'] },
      headers: { 'X-Custom': 'value 1', Accept: 'application/json' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.data.method, 'GET');
    assert.equal(res.data.path, '/repos/octo/hello');
    const query = new URLSearchParams(res.data.query);
    assert.deepEqual([...query], [['per_page', '5'], ['label', 'a'], ['label', 'b c']]);
    const r = last();
    assert.equal(r.body, '');
    assert.equal(r.headers.authorization, `Bearer ${accessToken}`);
    assert.equal(r.headers['x-custom'], 'value 1');
    assert.equal(r.headers.accept, 'application/json');
    for (const name of Object.keys(r.headers)) {
      assert.doesNotMatch(name, /^nango-proxy-/i, 'the prefix is stripped');
      assert.notEqual(name, 'connection-id');
      assert.notEqual(name, 'provider-config-key');
    }
    assert.ok(!JSON.stringify(r.headers).includes(secretKey), 'the secret key does not reach the provider');
  });

  test('POST, PUT, PATCH and DELETE carry their method and body, with the Content-Type', async () => {
    const common = { providerConfigKey: key, connectionId, endpoint: 'issues' };
    const post = await nango.post({ ...common, data: { title: 'Bug', n: 1 } });
    assert.equal(post.status, 200);
    assert.equal(last().method, 'POST');
    assert.equal(last().url, '/issues');
    assert.deepEqual(JSON.parse(last().body), { title: 'Bug', n: 1 });
    assert.match(last().headers['content-type'], /^application\/json/);
    assert.equal(last().headers.authorization, `Bearer ${accessToken}`);

    await nango.put({ ...common, data: 'raw text', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(last().method, 'PUT');
    assert.equal(last().body, 'raw text');
    assert.match(last().headers['content-type'], /^text\/plain/);

    await nango.patch({ ...common, data: new URLSearchParams({ state: 'closed' }) });
    assert.equal(last().method, 'PATCH');
    assert.equal(last().body, 'state=closed');
    assert.match(last().headers['content-type'], /^application\/x-www-form-urlencoded/);

    const del = await nango.delete({ ...common, endpoint: '/issues/1' });
    assert.equal(del.data.method, 'DELETE');
    assert.equal(last().url, '/issues/1');
  });

  test("a provider's 404 is returned, not thrown", async () => {
    const before = api.requests.length;
    const res = await nango.get({ providerConfigKey: key, connectionId, endpoint: '/missing', retries: 0 });
    assert.equal(res.status, 404);
    assert.deepEqual(res.data, { message: 'Not Found' });
    assert.match(res.headers['content-type'], /^application\/json/);
    assert.equal(api.requests.length, before + 1);
  });

  test('a text response is text, with the provider headers', async () => {
    const res = await nango.get({ providerConfigKey: key, connectionId, endpoint: '/text' });
    assert.equal(res.status, 200);
    assert.equal(res.data, 'hello from the API');
    assert.equal(res.headers['x-api'], 'fake');
  });

  test('responseType stream: a large body read as a stream', async () => {
    const res = await nango.get({ providerConfigKey: key, connectionId, endpoint: '/big', responseType: 'stream' });
    assert.equal(res.status, 200);
    assert.ok(res.data instanceof ReadableStream);
    const { bytes } = await drain(res.data);
    assert.equal(bytes, BIG);
  });

  test('errors of the proxy itself are returned too, as {error, type}, and reach no API', async () => {
    const before = api.requests.length;
    const unknown = await nango.get({ providerConfigKey: key, connectionId: uniqueId('nobody'), endpoint: '/x' });
    assert.ok(unknown.status >= 400 && unknown.status < 500, `status ${unknown.status}`);
    assert.equal(typeof unknown.data.error, 'string');
    assert.equal(typeof unknown.data.type, 'string');

    const wrongKey = await new Nango({ host: h.nangoUrl, secretKey: 'wrong' }).get({ providerConfigKey: key, connectionId, endpoint: '/x' });
    assert.equal(wrongKey.status, 401);
    assert.equal(wrongKey.data.type, 'invalid_secret_key');
    assert.equal(api.requests.length, before, 'the API saw none of them');
  });
});
