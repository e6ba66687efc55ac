// Three replicas on one PostgreSQL, a provider that rotates refresh tokens and refuses any reused
// one: 1,000 concurrent token reads on 100 expiring connections must cost exactly 100 refreshes
// and give 1,000 correct answers.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  connectionUrl,
  countBy,
  createConfig,
  eachLimit,
  get,
  logTails,
  makeConnections,
  startCluster,
} from '../lib/cluster.js';
import { startFakeProvider } from '../lib/provider.js';

const CONNECTIONS = 100;
const READS_PER_CONNECTION = 10;
const KEY = 'rotating';

let provider;
let cluster;

before(async () => {
  provider = await startFakeProvider({ refreshDelayMs: [50, 200], firstExpiresIn: 0, refreshExpiresIn: 3600 });
  cluster = await startCluster({ providerUrl: provider.url, count: 3 });
});

after(async () => {
  await cluster?.stop();
  await provider?.stop();
});

test('1,000 concurrent reads over 3 replicas refresh each of 100 rotating connections exactly once', { timeout: 120_000 }, async (t) => {
  const { replicas } = cluster;
  await createConfig(replicas[0], KEY);
  const setupStart = Date.now();
  const ids = await makeConnections(provider, replicas, KEY, CONNECTIONS);
  const setupMs = Date.now() - setupStart;
  assert.equal(provider.figures().codeExchanges, CONNECTIONS, 'one code exchange per connection');
  // The proactive refresher of a replica may already have refreshed some (it is not configurable
  // and scans at a random moment in the first minute, which a slow setup on a loaded machine can
  // reach); those refreshes count too: still exactly one per connection in all.
  for (const id of ids) {
    const family = provider.familyOf(KEY, id);
    assert.ok(
      family && (family.tokens.length === 1 || family.tokens.length === 2),
      `${id} has its first token, or the one refresh of a proactive scan`,
    );
  }
  const refreshedBeforeStorm = provider.refreshCalls().length;

  // The storm: request j of connection i goes to replica (i*10 + j) % 3, all at once.
  const requests = [];
  for (let i = 0; i < ids.length; i++) {
    for (let j = 0; j < READS_PER_CONNECTION; j++) {
      const replica = replicas[(i * READS_PER_CONNECTION + j) % replicas.length];
      requests.push({ id: ids[i], replica: replica.tag, url: connectionUrl(replica, KEY, ids[i]) });
    }
  }
  const stormStart = Date.now();
  const answers = await Promise.all(
    requests.map(async (r) => {
      const begun = Date.now();
      const answer = await get(r.url);
      return { ...r, ...answer, ms: Date.now() - begun };
    }),
  );
  const stormMs = Date.now() - stormStart;
  const figures = provider.figures();
  const latencies = answers.map((a) => a.ms).sort((a, b) => a - b);
  t.diagnostic(
    `setup: ${CONNECTIONS} OAuth flows in ${setupMs} ms; storm: ${answers.length} reads in ${stormMs} ms ` +
      `(p50 ${latencies[Math.floor(latencies.length / 2)]} ms, max ${latencies.at(-1)} ms); ` +
      `answers 200: ${answers.filter((a) => a.status === 200).length}; ` +
      `refresh calls: ${figures.refreshCalls} (${refreshedBeforeStorm} before the storm, by the proactive refresher), ` +
      `by replica: ${JSON.stringify(countBy(provider.refreshCalls(), (c) => c.replica))}; ` +
      `reused refresh tokens: ${figures.reused}, unknown: ${figures.unknown}`,
  );

  const failed = answers.filter((a) => a.status !== 200);
  assert.deepEqual(
    failed.slice(0, 10).map((a) => ({ id: a.id, replica: a.replica, status: a.status, body: a.body, error: a.error })),
    [],
    `${failed.length} of ${answers.length} reads failed\n${failed.length ? logTails(replicas) : ''}`,
  );
  assert.equal(figures.reused, 0, 'no refresh token was presented twice');
  assert.equal(figures.unknown, 0, 'no unknown refresh token was presented');
  assert.equal(figures.otherRefusals, 0, 'no other refusal');
  assert.equal(figures.refreshCalls, CONNECTIONS, 'exactly one refresh per connection');

  for (const id of ids) {
    const family = provider.familyOf(KEY, id);
    const mine = answers.filter((a) => a.id === id);
    const tokens = new Set(mine.map((a) => a.body.credentials?.access_token));
    assert.equal(family.tokens.length, 2, `${id}: the provider issued one refresh (${JSON.stringify(provider.history(family.id))})`);
    assert.deepEqual([...tokens], [family.tokens[1].access], `${id}: every read answers the refreshed access token`);
    for (const a of mine) {
      assert.equal(a.body.connection_id, id);
      assert.equal(a.body.provider_config_key, KEY);
      assert.equal(a.body.credentials.refresh_token, family.tokens[1].refresh, `${id}: the rotated refresh token is stored`);
    }
  }

  // Afterwards: every stored refresh token is the provider's latest, read through every replica,
  // and a forced refresh (which needs it) succeeds for every connection.
  await eachLimit(ids, 10, async (id, i) => {
    for (const replica of replicas) {
      const read = await get(connectionUrl(replica, KEY, id));
      assert.equal(read.status, 200, `${id} via ${replica.tag}: ${JSON.stringify(read.body)}`);
      assert.equal(read.body.credentials.refresh_token, provider.familyOf(KEY, id).latest.refresh);
    }
    const forced = await get(connectionUrl(replicas[i % replicas.length], KEY, id, true));
    assert.equal(forced.status, 200, `forced refresh of ${id}: ${JSON.stringify(forced.body)}`);
    const family = provider.familyOf(KEY, id);
    assert.equal(family.tokens.length, 3, `${id}: the forced refresh reached the provider once`);
    assert.equal(forced.body.credentials.access_token, family.latest.access);
    assert.equal(forced.body.credentials.refresh_token, family.latest.refresh);
  });
  const final = provider.figures();
  assert.equal(final.refreshCalls, 2 * CONNECTIONS);
  assert.equal(final.reused, 0);
  assert.equal(final.ok, 2 * CONNECTIONS);
});

test('a refused refresh is tried once, not once per waiting read', { timeout: 60_000 }, async (t) => {
  // The user revoked the app: the provider refuses the refresh token. 30 concurrent reads of each
  // of 5 connections over the 3 replicas wait for one refresh; once it is refused, the others must
  // answer that refusal (the connection is backing off), not present the dead token again.
  const { replicas } = cluster;
  const key = 'revoked';
  await createConfig(replicas[0], key);
  provider.revokeClient(`client-${key}`);
  const before = provider.refreshCalls().length;
  const ids = await makeConnections(provider, replicas, key, 5);
  const reads = [];
  for (const [i, id] of ids.entries()) {
    for (let j = 0; j < 30; j++) reads.push(get(connectionUrl(replicas[(i + j) % replicas.length], key, id)).then((a) => ({ id, ...a })));
  }
  const answers = await Promise.all(reads);
  const calls = provider.refreshCalls().slice(before);
  const perConnection = countBy(calls, (c) => provider.families.get(c.family).label);
  t.diagnostic(`refresh calls per revoked connection for 30 concurrent reads: ${JSON.stringify(perConnection)}`);
  assert.deepEqual(
    countBy(answers, (a) => `${a.status} ${a.body?.type}`),
    { '400 refresh_rejected': answers.length },
    'every read reports the refusal',
  );
  assert.deepEqual(
    perConnection,
    Object.fromEntries(ids.map((id) => [id, 1])),
    'the provider is asked once per connection; the waiting reads answer the recorded refusal',
  );
});
