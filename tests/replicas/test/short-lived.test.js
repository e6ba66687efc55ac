// Three replicas on one PostgreSQL, a provider that rotates refresh tokens and revokes the whole
// grant when a used refresh token comes back (reuse detection), and tokens that live 60 s, 10 s,
// 1 s or 0 s: a token is refreshed once however many requests ask on whichever replica, not on
// every request (docs/refresh.md).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connect, connectionUrl, createConfig, get, logTails, sleep, startCluster } from '../lib/cluster.js';
import { startFakeProvider } from '../lib/provider.js';

let provider;
let cluster;
let serial = 0;

before(async () => {
  provider = await startFakeProvider({ refreshDelayMs: [50, 100], revokeFamilyOnReuse: true });
  cluster = await startCluster({ providerUrl: provider.url, count: 3 });
});

after(async () => {
  await cluster?.stop();
  await provider?.stop();
});

/** A new config and connection whose first token came expired (due at once). */
async function freshConnection() {
  const key = `short-${++serial}`;
  const { replicas } = cluster;
  await createConfig(replicas[0], key);
  await connect(provider, replicas[0], replicas[1], key, 'user-1');
  return { key, id: 'user-1', family: provider.familyOf(key, 'user-1') };
}

const refreshesOf = (family) => provider.refreshCalls().filter((c) => c.family === family.id);

function assertNoReuse(family) {
  const reused = refreshesOf(family).filter((c) => c.outcome !== 'ok');
  assert.deepEqual(reused, [], `refused refreshes: ${JSON.stringify(provider.history(family.id), null, 1)}`);
  assert.ok(!family.revoked, 'the provider revoked the grant');
}

for (const lifetime of [60, 10, 1]) {
  test(`${lifetime} s tokens: 20 concurrent reads over 3 replicas make one refresh and get one token`, { timeout: 60_000 }, async () => {
    provider.setLifetimes({ refresh: lifetime });
    const { key, id, family } = await freshConnection();
    const { replicas } = cluster;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => get(connectionUrl(replicas[i % replicas.length], key, id))),
    );
    for (const a of answers) assert.equal(a.status, 200, `${JSON.stringify(a.body)}\n${logTails(replicas)}`);
    const tokens = new Set(answers.map((a) => a.body.credentials.access_token));
    assert.equal(refreshesOf(family).length, 1, `one refresh call: ${JSON.stringify(provider.history(family.id), null, 1)}`);
    assert.equal(tokens.size, 1, `one token in all answers: ${[...tokens]}`);
    assert.equal([...tokens][0], family.latest.access, 'the token the refresh issued');
    // The reads that follow (within the second) take it as it is.
    for (const replica of replicas) {
      const again = await get(connectionUrl(replica, key, id));
      assert.equal(again.body.credentials.access_token, family.latest.access);
    }
    assert.equal(refreshesOf(family).length, 1);
    assertNoReuse(family);
  });
}

test('60 s tokens: 100 reads spread over 30 s on 3 replicas make at most 2 refreshes', { timeout: 90_000 }, async () => {
  provider.setLifetimes({ refresh: 60 });
  const { key, id, family } = await freshConnection();
  const { replicas } = cluster;
  const start = Date.now();
  for (let i = 0; i < 100; i++) {
    const answer = await get(connectionUrl(replicas[i % replicas.length], key, id));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.ok(Date.parse(answer.body.credentials.expires_at) > Date.now(), 'an unexpired token');
    const wait = start + (i + 1) * 300 - Date.now();
    if (wait > 0) await sleep(wait);
  }
  const refreshes = refreshesOf(family).length;
  assert.ok(refreshes >= 1 && refreshes <= 2, `${refreshes} refreshes`);
  assertNoReuse(family);
});

test('expires_in 0 from every refresh: no loop, one refresh per request at most', { timeout: 60_000 }, async () => {
  provider.setLifetimes({ refresh: 0 });
  const { key, id, family } = await freshConnection();
  const { replicas } = cluster;
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => get(connectionUrl(replicas[i % replicas.length], key, id))),
  );
  for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(new Set(answers.map((a) => a.body.credentials.access_token)).size, 1);
  // Sequential reads in the next seconds: the token just refreshed is handed out as it is.
  for (let i = 0; i < 20; i++) {
    const answer = await get(connectionUrl(replicas[i % replicas.length], key, id));
    assert.equal(answer.status, 200);
    assert.equal(answer.body.credentials.access_token, family.latest.access);
  }
  assert.equal(refreshesOf(family).length, 1, 'no loop');
  // Once those seconds have passed, a request refreshes once, and again after the next ones:
  // one refresh per request at most, and the case logged once per connection by a replica.
  for (let round = 0; round < 2; round++) {
    await sleep(5_200);
    const answer = await get(connectionUrl(replicas[0], key, id));
    assert.equal(answer.status, 200);
    assert.equal(answer.body.credentials.access_token, family.latest.access);
  }
  assert.equal(refreshesOf(family).length, 3);
  assertNoReuse(family);
  const warning = 'the provider issued a token that expires within seconds';
  const logged = replicas.map(
    (r) => r.log.split('\n').filter((l) => l.includes(warning) && l.includes(`provider_config_key=${key} `)).length,
  );
  assert.ok(logged[0] === 1, `replica 1 refreshed twice and logged once: ${logged}`);
  assert.ok(logged.every((n) => n <= 1), `at most once per replica: ${logged}`);
});
