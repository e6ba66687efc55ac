// Short-lived tokens from a real OpenID Connect provider (node-oidc-provider): 6-second access
// tokens, refresh-token rotation, and reuse detection that revokes the whole grant. The server
// must refresh such a token once per half-life however many requests ask, never present a
// refresh token twice, and hand out only tokens the OP accepts (docs/refresh.md).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { cookiesFrom, freePort, sleep, startHarness, uniqueId } from '../lib/harness.js';
import { authorizeAtOp, startOidcProvider } from '../lib/oidc-op.js';

const TTL = 6; // seconds

let h;
let op;
let key;

before(async () => {
  const opPort = await freePort();
  const opUrl = `http://127.0.0.1:${opPort}`;
  h = await startHarness({
    templates: [
      'oidc:',
      '  auth_mode: OAUTH2',
      `  authorization_url: ${opUrl}/auth`,
      `  token_url: ${opUrl}/token`,
      '  authorization_params:',
      '    prompt: consent # offline_access (a refresh token) is only granted with consent',
    ],
  });
  key = uniqueId('oidc');
  op = await startOidcProvider({
    port: opPort,
    accessTokenTtl: TTL,
    clients: [{ clientId: `client-${key}`, clientSecret: `secret-${key}`, redirectUri: `${h.nangoUrl}/oauth/callback` }],
  });
  await h.createConfig({ key, provider: 'oidc', scopes: 'openid,offline_access' });
});

after(async () => {
  await h?.stop();
  await op?.stop();
});

/** The whole flow: the server's redirect, the OP's login and consent, the callback. */
async function connectUser(connectionId) {
  const connect = await fetch(
    `${h.nangoUrl}/oauth/connect/${encodeURIComponent(key)}?connection_id=${encodeURIComponent(connectionId)}`,
    { redirect: 'manual' },
  );
  assert.equal(connect.status, 302, await connect.text());
  const callback = await authorizeAtOp(connect.headers.get('location'), connectionId);
  assert.ok(callback.searchParams.get('code'), `the OP answered ${callback}`);
  const done = await fetch(callback, { redirect: 'manual', headers: { cookie: cookiesFrom(connect) } });
  assert.equal(done.status, 200, (await done.text()).slice(0, 500));
}

async function readConnection(connectionId) {
  const res = await fetch(`${h.nangoUrl}/connection/${encodeURIComponent(connectionId)}?provider_config_key=${encodeURIComponent(key)}`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.credentials;
}

/** Whether the OP accepts the access token (its userinfo endpoint answers 200). */
async function accepted(accessToken) {
  const res = await fetch(`${op.url}/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
  await res.arrayBuffer();
  return res.status === 200;
}

test('a 6 s token from a real OIDC provider is refreshed once by 20 concurrent reads, then once per half-life', { timeout: 60_000 }, async () => {
  const user = uniqueId('user');
  await connectUser(user);
  const first = await readConnection(user);
  assert.ok(first.refresh_token, 'offline_access brought a refresh token');
  assert.equal(op.refreshes().length, 0, 'a fresh token is not refreshed');

  // Past half its lifetime: due.
  await sleep((TTL / 2) * 1000 + 300);
  const answers = await Promise.all(Array.from({ length: 20 }, () => readConnection(user)));
  const tokens = new Set(answers.map((c) => c.access_token));
  assert.equal(op.refreshes().length, 1, `one refresh for 20 reads: ${JSON.stringify(op.events)}`);
  assert.equal(tokens.size, 1, 'one token in all answers');
  assert.notEqual([...tokens][0], first.access_token);
  assert.ok(await accepted([...tokens][0]), 'the OP accepts the refreshed token');

  // Reads every 200 ms for 8 s: each token is refreshed once it is due, not on every read.
  const seen = new Set();
  for (let i = 0; i < 40; i++) {
    const credentials = await readConnection(user);
    seen.add(credentials.access_token);
    assert.ok(Date.parse(credentials.expires_at) > Date.now(), 'an unexpired token');
    assert.ok(await accepted(credentials.access_token), `read ${i}: the OP accepts the token`);
    await sleep(200);
  }
  const refreshes = op.refreshes().length;
  assert.ok(refreshes >= 2 && refreshes <= 4, `${refreshes} refreshes in all (one per half-life and a bit)`);
  assert.equal(seen.size, refreshes, 'each refresh brought one token, handed out until the next');
  const errors = op.events.filter((e) => e.type === 'grant.error');
  assert.deepEqual(errors, [], 'no refresh token presented twice (the OP would have revoked the grant)');

  // The grant is alive: a forced refresh works and its token is accepted.
  const res = await fetch(`${h.nangoUrl}/connection/${encodeURIComponent(user)}?provider_config_key=${encodeURIComponent(key)}&force_refresh=true`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(await accepted(body.credentials.access_token));
});
