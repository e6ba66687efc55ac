// The current Node client, @nangohq/node@0.71 (installed as nango-node-now), against the real
// server: the token-broker calls that write (integrations, metadata, end users and tags, connect
// sessions, imported credentials) and those that browse the provider catalog and call the
// proxy. Every value written is read back through the client, and every refusal is checked for
// its status and current Nango's error code. The 0.9 client reads what the current one made.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Nango as Nango09 } from '@nangohq/node';
import { Nango as NangoNow } from 'nango-node-now';
import { PROVIDER, PROVIDER_API, startHarness, uniqueId } from '../lib/harness.js';

/** Asserts that `promise` rejects with an HTTP error of `status` whose body has `error.code`. */
async function rejectsWith(promise, status, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.response?.status, status, `status of ${err.config?.method} ${err.config?.url}`);
    assert.equal(err.response.data?.error?.code, code, JSON.stringify(err.response.data));
    return true;
  });
}

/**
 * A provider API for the proxy: answers each path with the queued `{status, body}` answers in
 * turn (200 `{ok: true, path}` once the queue is empty) and records every request it gets.
 */
async function startFakeApi() {
  const requests = [];
  const queues = new Map();
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    requests.push({ method: req.method, path, url: req.url, headers: { ...req.headers } });
    const next = queues.get(path)?.shift() ?? { status: 200, body: { ok: true, path } };
    res.writeHead(next.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(next.body));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    /** The answers `path` gives before the default one. */
    queue(path, ...answers) {
      queues.set(path, answers);
    },
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('@nangohq/node@0.71 writes', () => {
  const secretKey = `sk-${randomBytes(12).toString('hex')}`;
  let h;
  let api;
  let nango;
  let key; // a config made with the harness (POST /config), one flow connection on it
  let connectionId;
  let issued;
  const inOneHour = () => new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, '.000Z');
  /** POST /connections (the 0.71 client has no method for it), as current Nango's docs call it. */
  const importConnection = (body) =>
    fetch(`${h.nangoUrl}/connections`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${secretKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  const session = (token, method = 'GET') =>
    fetch(`${h.nangoUrl}/connect/session`, { method, headers: { Authorization: `Bearer ${token}` } });

  before(async () => {
    api = await startFakeApi();
    h = await startHarness({ secretKey, apiBaseUrl: api.url });
    key = await h.createConfig();
    connectionId = uniqueId('user');
    ({ issued } = await h.connect(key, connectionId));
    nango = new NangoNow({ host: h.nangoUrl, secretKey });
  });
  after(async () => {
    await h?.stop();
    await api?.stop();
  });

  test('listIntegrations and getIntegration show the configs, credentials only when included', async () => {
    const { configs } = await nango.listIntegrations();
    const keys = configs.map((c) => c.unique_key);
    assert.equal(new Set(keys).size, keys.length, `unique keys: ${keys}`);
    const mine = configs.find((c) => c.unique_key === key);
    assert.ok(mine, `${key} in ${keys}`);
    assert.equal(mine.provider, PROVIDER);
    assert.equal(mine.display_name, PROVIDER, 'no display name of its own nor in the template: the provider name');
    assert.equal(mine.credentials, undefined);

    const plain = await nango.getIntegration({ uniqueKey: key });
    assert.equal(plain.data.unique_key, key);
    assert.equal(plain.data.provider, PROVIDER);
    assert.equal(plain.data.credentials, undefined, 'credentials only with include=credentials');
    const withCredentials = await nango.getIntegration({ uniqueKey: key }, { include: ['credentials'] });
    assert.deepEqual(withCredentials.data.credentials, {
      type: 'OAUTH2',
      client_id: `client-${key}`,
      client_secret: `secret-${key}`,
      scopes: 'openid,profile',
      webhook_secret: null,
    });
    await rejectsWith(nango.getIntegration({ uniqueKey: uniqueId('nokey') }), 404, 'not_found');
  });

  test('createIntegration, a flow on it, updateIntegration and deleteIntegration', async () => {
    const newKey = uniqueId('int');
    const created = await nango.createIntegration({
      provider: PROVIDER,
      unique_key: newKey,
      display_name: 'My Mock',
      credentials: { type: 'OAUTH2', client_id: 'app-1', client_secret: 'app-1-secret', scopes: 'openid,email' },
    });
    assert.equal(created.data.unique_key, newKey);
    assert.equal(created.data.provider, PROVIDER);
    assert.equal(created.data.display_name, 'My Mock');
    const { configs } = await nango.listIntegrations();
    assert.ok(configs.some((c) => c.unique_key === newKey && c.display_name === 'My Mock'));
    await rejectsWith(
      nango.createIntegration({
        provider: PROVIDER,
        unique_key: newKey,
        credentials: { type: 'OAUTH2', client_id: 'x', client_secret: 'y' },
      }),
      400,
      'invalid_body',
    );
    await rejectsWith(
      nango.createIntegration({
        provider: `${PROVIDER}-nonexistent`,
        unique_key: uniqueId('int'),
        credentials: { type: 'OAUTH2', client_id: 'x', client_secret: 'y' },
      }),
      400,
      'invalid_body',
    );

    // A real flow on the new integration uses its OAuth app and scopes.
    const first = uniqueId('user');
    const flow = await h.connect(newKey, first);
    assert.equal(flow.authorizeUrl.searchParams.get('client_id'), 'app-1');
    assert.deepEqual(flow.authorizeUrl.searchParams.get('scope').split(/[ ,]/), ['openid', 'email']);
    assert.equal(flow.tokenRequest.body.client_id, 'app-1');
    assert.equal(flow.tokenRequest.body.client_secret, 'app-1-secret');
    assert.equal(await nango.getToken(newKey, first), flow.issued.access_token);

    const updated = await nango.updateIntegration(
      { uniqueKey: newKey },
      { display_name: 'Renamed Mock', credentials: { type: 'OAUTH2', client_id: 'app-2', client_secret: 'app-2-secret', scopes: 'openid' } },
    );
    assert.equal(updated.data.display_name, 'Renamed Mock');
    const read = await nango.getIntegration({ uniqueKey: newKey }, { include: ['credentials'] });
    assert.equal(read.data.display_name, 'Renamed Mock');
    assert.equal(read.data.credentials.client_id, 'app-2');
    assert.equal(read.data.credentials.client_secret, 'app-2-secret');
    assert.equal(read.data.credentials.scopes, 'openid');
    // Credentials alone keep the display name.
    await nango.updateIntegration({ uniqueKey: newKey }, { credentials: { type: 'OAUTH2', client_id: 'app-3', client_secret: 'app-3-secret' } });
    const again = await nango.getIntegration({ uniqueKey: newKey }, { include: ['credentials'] });
    assert.equal(again.data.display_name, 'Renamed Mock');
    assert.equal(again.data.credentials.client_id, 'app-3');
    // The next flow and the next refresh use the new app.
    const second = await h.connect(newKey, uniqueId('user'));
    assert.equal(second.tokenRequest.body.client_id, 'app-3');
    const tokensSeen = h.tokenRequests.length;
    const refreshed = await nango.getToken(newKey, first, true);
    assert.notEqual(refreshed, flow.issued.access_token);
    const refresh = h.tokenRequests.slice(tokensSeen).find((r) => r.body.grant_type === 'refresh_token');
    assert.equal(refresh?.body.client_id, 'app-3');
    assert.equal(refresh.body.client_secret, 'app-3-secret');
    await rejectsWith(nango.updateIntegration({ uniqueKey: uniqueId('nokey') }, { display_name: 'x' }), 404, 'not_found');

    const deleted = await nango.deleteIntegration(newKey);
    assert.equal(deleted.status, 200);
    assert.deepEqual(deleted.data, { success: true });
    await rejectsWith(nango.getIntegration({ uniqueKey: newKey }), 404, 'not_found');
    assert.ok(!(await nango.listIntegrations()).configs.some((c) => c.unique_key === newKey));
    await rejectsWith(nango.deleteIntegration(newKey), 404, 'not_found');
  });

  test('listProviders({search}) and getProvider({provider}) describe the catalog\'s templates', async () => {
    const found = await nango.listProviders({ search: PROVIDER });
    const names = found.data.map((p) => p.name);
    assert.ok(names.includes(PROVIDER), `${PROVIDER} in ${names}`);
    assert.ok(names.every((n) => n.includes(PROVIDER)), `only matches: ${names}`);
    assert.deepEqual((await nango.listProviders({ search: `zz-${randomBytes(4).toString('hex')}` })).data, []);
    const { data } = await nango.getProvider({ provider: PROVIDER });
    assert.equal(data.name, PROVIDER);
    assert.equal(data.auth_mode, 'OAUTH2');
    assert.equal(data.authorization_url, `${h.providerUrl}/authorize`);
    assert.equal(data.token_url, `${h.providerUrl}/token`);
    await assert.rejects(nango.getProvider({ provider: `${PROVIDER}-nonexistent` }), (err) => err.response?.status === 404);
  });

  test('a connection imported with POST /connections serves its own token, to both clients', async () => {
    const id = uniqueId('imported');
    const expiresAt = inOneHour();
    const tokensBefore = h.tokenRequests.length;
    const res = await importConnection({
      provider_config_key: key,
      connection_id: id,
      credentials: { type: 'OAUTH2', access_token: 'imported-access', refresh_token: 'imported-refresh', expires_at: expiresAt },
    });
    const body = await res.json();
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.equal(body.connection_id, id);
    assert.equal(body.provider_config_key, key);
    assert.equal(body.credentials.access_token, 'imported-access');

    assert.equal(await nango.getToken(key, id), 'imported-access');
    const connection = await nango.getConnection(key, id, false, true);
    assert.equal(connection.credentials.type, 'OAUTH2');
    assert.equal(connection.credentials.refresh_token, 'imported-refresh');
    assert.equal(new Date(connection.credentials.expires_at).toISOString(), expiresAt);
    assert.equal(h.tokenRequests.length, tokensBefore, 'neither the import nor the reads called the provider');
    // The 0.9 client reads the imported connection on its own route.
    const old = await new Nango09({ host: h.nangoUrl, secretKey }).getConnection(key, id);
    assert.equal(old.connection_id, id);
    assert.equal(old.credentials.access_token, 'imported-access');

    const unknown = await importConnection({
      provider_config_key: uniqueId('nokey'),
      connection_id: id,
      credentials: { type: 'OAUTH2', access_token: 'x' },
    });
    assert.equal(unknown.status, 400);
    assert.equal((await unknown.json()).error.code, 'unknown_provider_config');
  });

  test('setMetadata replaces, updateMetadata merges, for one connection or several, all or none', async () => {
    const other = uniqueId('imported');
    const res = await importConnection({
      provider_config_key: key,
      connection_id: other,
      credentials: { type: 'OAUTH2', access_token: 'other-access', expires_at: inOneHour() },
    });
    assert.equal(res.status, 201);

    const set = await nango.setMetadata(key, connectionId, { a: 1 });
    assert.equal(set.status, 201);
    assert.deepEqual(await nango.getMetadata(key, connectionId), { a: 1 });
    const update = await nango.updateMetadata(key, connectionId, { b: 2 });
    assert.equal(update.status, 200);
    assert.deepEqual(await nango.getMetadata(key, connectionId), { a: 1, b: 2 });
    await nango.setMetadata(key, connectionId, { c: 3 });
    assert.deepEqual(await nango.getMetadata(key, connectionId), { c: 3 }, 'set replaces');

    await nango.setMetadata(key, [connectionId, other], { shared: 'yes' });
    assert.deepEqual(await nango.getMetadata(key, connectionId), { shared: 'yes' });
    assert.deepEqual(await nango.getMetadata(key, other), { shared: 'yes' });
    await nango.updateMetadata(key, [connectionId, other], { more: [1, 2] });
    assert.deepEqual(await nango.getMetadata(key, other), { shared: 'yes', more: [1, 2] });

    const nobody = uniqueId('nobody');
    await rejectsWith(nango.setMetadata(key, nobody, { a: 1 }), 404, 'unknown_connection');
    await rejectsWith(nango.updateMetadata(key, [other, nobody], { lost: true }), 404, 'unknown_connection');
    assert.deepEqual(await nango.getMetadata(key, other), { shared: 'yes', more: [1, 2] }, 'nothing written');
    // The metadata survives a refresh (the row is rewritten with new credentials).
    await nango.getToken(key, connectionId, true);
    assert.deepEqual(await nango.getMetadata(key, connectionId), { shared: 'yes', more: [1, 2] });
    await nango.setMetadata(key, connectionId, {});
    assert.deepEqual(await nango.getMetadata(key, connectionId), {});
  });

  test('patchConnection gives an end user and tags that listConnections filters on', async () => {
    const userId = uniqueId('eu');
    const email = `${userId}@example.com`;
    const patched = await nango.patchConnection(
      { connectionId, provider_config_key: key },
      { end_user: { id: userId, email }, tags: { k: 'v' } },
    );
    assert.deepEqual(patched, { success: true });

    const connection = await nango.getConnection(key, connectionId);
    assert.deepEqual(connection.end_user, { id: userId, display_name: null, email, tags: {}, organization: null });
    assert.deepEqual(connection.tags, { k: 'v', end_user_id: userId, end_user_email: email });

    const ids = (list) => list.connections.map((c) => `${c.provider_config_key}/${c.connection_id}`);
    const me = [`${key}/${connectionId}`];
    assert.deepEqual(ids(await nango.listConnections({ userId })), me);
    assert.deepEqual(ids(await nango.listConnections(undefined, undefined, { endUserId: userId })), me);
    assert.deepEqual(ids(await nango.listConnections({ tags: { k: 'v' } })), me);
    assert.deepEqual(ids(await nango.listConnections({ tags: { email } })), me, 'the client asks tags[end_user_email]');
    assert.deepEqual(ids(await nango.listConnections({ userId, tags: { k: 'other' } })), []);
    assert.deepEqual(ids(await nango.listConnections({ userId: `${userId}-other` })), []);
    const [line] = (await nango.listConnections({ userId })).connections;
    assert.equal(line.end_user.id, userId);
    assert.equal(line.tags.k, 'v');

    // Tags alone replace the tags and keep the end user.
    await nango.patchConnection({ connectionId, provider_config_key: key }, { tags: { k: 'w' } });
    const again = await nango.getConnection(key, connectionId);
    assert.deepEqual(again.tags, { k: 'w' });
    assert.equal(again.end_user.id, userId);
    assert.deepEqual(ids(await nango.listConnections({ tags: { k: 'v' } })), []);
    assert.deepEqual(ids(await nango.listConnections({ userId })), me);

    await rejectsWith(
      nango.patchConnection({ connectionId: uniqueId('nobody'), provider_config_key: key }, { tags: { k: 'v' } }),
      404,
      'unknown_connection',
    );
  });

  test('createConnectSession: the token reads its session and makes one connection that waitForConnection finds', async () => {
    const userId = uniqueId('eu');
    const email = `${userId}@example.com`;
    const created = await nango.createConnectSession({ end_user: { id: userId, email }, allowed_integrations: [key] });
    const { token, connect_link: link, expires_at: expiresAt } = created.data;
    assert.equal(typeof token, 'string');
    assert.ok(token.length >= 20, token);
    assert.ok(link.startsWith(h.nangoUrl) && link.includes(token), link);
    assert.ok(Date.parse(expiresAt) > Date.now(), expiresAt);

    const read = await session(token);
    const view = await read.json();
    assert.equal(read.status, 200, JSON.stringify(view));
    assert.deepEqual(view.data.integrations.map((i) => i.unique_key), [key], 'only the allowed integration');
    assert.equal(view.data.integrations[0].provider, PROVIDER);
    assert.equal(view.data.endUser.id, userId);
    assert.equal(view.data.isReconnecting, false);
    assert.equal(view.data.expires_at, expiresAt);
    assert.equal((await session(`${token}x`)).status, 401);

    // The session's flow makes a connection the server names, with the session's end user.
    const flow = await h.connect(key, null, { connectSessionToken: token });
    const waited = await nango.waitForConnection(key, userId);
    assert.equal(waited.provider_config_key, key);
    assert.equal(waited.end_user.id, userId);
    assert.match(waited.connection_id, /^[0-9a-f-]{36}$/);
    assert.equal(await nango.getToken(key, waited.connection_id), flow.issued.access_token);
    const used = await session(token);
    assert.equal(used.status, 401, 'the token is used up by its connection');
    assert.equal((await used.json()).error.code, 'invalid_connect_session');

    await rejectsWith(
      nango.createConnectSession({ end_user: { id: userId }, allowed_integrations: [uniqueId('nokey')] }),
      400,
      'invalid_body',
    );
  });

  test('createReconnectSession: its flow replaces the credentials of that connection', async () => {
    const created = await nango.createReconnectSession({ connection_id: connectionId, integration_id: key });
    const { token, connect_link: link, expires_at: expiresAt } = created.data;
    assert.equal(typeof token, 'string');
    assert.ok(link.includes(token), link);
    assert.ok(Date.parse(expiresAt) > Date.now(), expiresAt);
    const view = await (await session(token)).json();
    assert.equal(view.data.isReconnecting, true);
    assert.deepEqual(view.data.allowed_integrations, [key]);

    const previous = await nango.getToken(key, connectionId);
    const flow = await h.connect(key, null, { connectSessionToken: token });
    assert.notEqual(flow.issued.access_token, previous);
    assert.equal(await nango.getToken(key, connectionId), flow.issued.access_token);

    const ended = await nango.createReconnectSession({ connection_id: connectionId, integration_id: key });
    assert.equal((await session(ended.data.token, 'DELETE')).status, 204);
    assert.equal((await session(ended.data.token)).status, 401, 'an ended session reads nothing');

    await rejectsWith(
      nango.createReconnectSession({ connection_id: uniqueId('nobody'), integration_id: key }),
      404,
      'unknown_connection',
    );
  });

  test('proxy: retryOn retries a 409 within retries; the provider never sees the control headers', async () => {
    const apiKey = await h.createConfig({ provider: PROVIDER_API });
    const apiConnection = uniqueId('user');
    const { issued: apiIssued } = await h.connect(apiKey, apiConnection);
    const call = { providerConfigKey: apiKey, connectionId: apiConnection };

    api.queue('/flaky', { status: 409, body: { error: 'conflict' } });
    const seen = api.requests.length;
    const ok = await nango.get({
      ...call,
      endpoint: '/flaky',
      params: { q: '1' },
      retries: 1,
      retryOn: [409],
      headers: { 'X-Custom': 'yes' },
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.data, { ok: true, path: '/flaky' });
    const reached = api.requests.slice(seen);
    assert.equal(reached.length, 2, 'the 409 and its retry');
    for (const req of reached) {
      assert.equal(req.url, '/flaky?q=1');
      assert.equal(req.headers.authorization, `Bearer ${apiIssued.access_token}`);
      assert.equal(req.headers['x-custom'], 'yes');
      for (const name of ['retry-on', 'retries', 'base-url-override', 'connection-id', 'provider-config-key', 'nango-is-sync', 'nango-activity-log-id']) {
        assert.equal(req.headers[name], undefined, `${name} reached the provider`);
      }
    }

    // Without retryOn a 409 is the provider's answer, given back at once.
    api.queue('/flaky', { status: 409, body: { error: 'conflict' } });
    const seenAgain = api.requests.length;
    await assert.rejects(nango.get({ ...call, endpoint: '/flaky', retries: 1 }), (err) => {
      assert.equal(err.response?.status, 409);
      assert.deepEqual(err.response.data, { error: 'conflict' });
      return true;
    });
    assert.equal(api.requests.length - seenAgain, 1);

    // retries: 1 allows one retry only, whatever retryOn says.
    api.queue('/flaky', { status: 409, body: { n: 1 } }, { status: 409, body: { n: 2 } });
    const seenLast = api.requests.length;
    await assert.rejects(nango.get({ ...call, endpoint: '/flaky', retries: 1, retryOn: [409] }), (err) => {
      assert.equal(err.response?.status, 409);
      assert.deepEqual(err.response.data, { n: 2 });
      return true;
    });
    assert.equal(api.requests.length - seenLast, 2);
  });
});
