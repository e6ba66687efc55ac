// No secret in any log line: a whole run at the most verbose log level (flows, refreshes,
// forced refreshes, API calls with the secret key, a failed flow), then every secret the test
// saw or chose is searched for in everything the server printed.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Nango } from '@nangohq/node';
import { startHarness, uniqueId } from '../lib/harness.js';

const secretKey = `sk-${uniqueId('logs')}`;
let h;
let saved;
before(async () => {
  saved = process.env.LOG_LEVEL;
  process.env.LOG_LEVEL = 'trace';
  h = await startHarness({ secretKey });
});
after(async () => {
  await h?.stop();
  if (saved === undefined) delete process.env.LOG_LEVEL;
  else process.env.LOG_LEVEL = saved;
});

test('a trace-level run prints no secret key, client secret, code or token', async () => {
  const nango = new Nango({ host: h.nangoUrl, secretKey });
  const key = await h.createConfig();
  const secrets = new Set([secretKey, `secret-${key}`]);
  for (let i = 0; i < 3; i++) {
    const connectionId = uniqueId('user');
    const flow = await h.connect(key, connectionId);
    secrets.add(flow.callbackUrl.searchParams.get('code'));
    const connection = await nango.getConnection(key, connectionId);
    secrets.add(connection.credentials.access_token);
    if (connection.credentials.refresh_token) secrets.add(connection.credentials.refresh_token);
    // A forced refresh through the REST API.
    const res = await fetch(
      `${h.nangoUrl}/connection/${encodeURIComponent(connectionId)}?provider_config_key=${key}&force_refresh=true`,
      { headers: { Authorization: `Bearer ${secretKey}` } },
    );
    const refreshed = await res.json();
    assert.equal(res.status, 200, JSON.stringify(refreshed));
    secrets.add(refreshed.credentials.access_token);
    if (refreshed.credentials.refresh_token) secrets.add(refreshed.credentials.refresh_token);
  }
  // A wrong key and a failed flow also get logged.
  await fetch(`${h.nangoUrl}/connection`, { headers: { Authorization: `Bearer wrong-${secretKey}` } });
  await fetch(`${h.nangoUrl}/oauth/callback?code=${uniqueId('stolen-code')}&state=nope`);

  const log = h.serverLog();
  assert.ok(log.length > 1000, `the server printed almost nothing at trace level (${log.length} bytes)`);
  for (const secret of secrets) {
    assert.ok(secret && secret.length >= 8, `a weak secret in the list: ${secret}`);
    assert.ok(!log.includes(secret), `a secret is in the server log: ${secret.slice(0, 6)}…`);
  }
});
