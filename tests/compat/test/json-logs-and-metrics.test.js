// Operating the server (issue 8): with NANGO_LOG_FORMAT=json every line the server prints is a
// JSON object, the lines of a request carry its id (the one answered in X-Request-Id), and no
// secret shows; GET /metrics (secret key) counts flows, requests, refreshes and their outcomes.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Nango } from '@nangohq/node';
import { PROVIDER, startHarness, uniqueId } from '../lib/harness.js';

const secretKey = `sk-${uniqueId('ops')}`;
const auth = { Authorization: `Bearer ${secretKey}` };
let h;
const saved = {};
before(async () => {
  for (const name of ['LOG_LEVEL', 'NANGO_LOG_FORMAT']) saved[name] = process.env[name];
  process.env.LOG_LEVEL = 'debug';
  process.env.NANGO_LOG_FORMAT = 'json';
  h = await startHarness({ secretKey });
  // Refresh tokens on every grant, so a forced refresh has one to present.
  h.onTokenResponse((body) => {
    body.refresh_token ??= `rt-${uniqueId('refresh')}`;
  });
});
after(async () => {
  await h?.stop();
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** `name{labels} value` lines of the OpenMetrics text, as a map from `name{labels}` to number. */
async function scrape() {
  const res = await fetch(`${h.nangoUrl}/metrics`, { headers: auth });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/openmetrics-text/);
  const text = await res.text();
  assert.ok(text.endsWith('# EOF\n'), 'an OpenMetrics document ends with # EOF');
  const samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

const sample = (samples, name) => samples.get(name) ?? 0;

test('/metrics needs the secret key', async () => {
  const res = await fetch(`${h.nangoUrl}/metrics`);
  assert.equal(res.status, 401);
});

test('the counters move with a flow, token reads and a forced refresh', async () => {
  const nango = new Nango({ host: h.nangoUrl, secretKey });
  const key = await h.createConfig();
  const before = await scrape();

  const connectionId = uniqueId('user');
  await h.connect(key, connectionId);
  await nango.getToken(key, connectionId);
  await nango.getToken(key, connectionId);
  const forced = await fetch(
    `${h.nangoUrl}/connection/${connectionId}?provider_config_key=${key}&force_refresh=true`,
    { headers: auth },
  );
  assert.equal(forced.status, 200);
  const refused = await fetch(`${h.nangoUrl}/connection/${connectionId}?provider_config_key=nope`, { headers: auth });
  assert.equal(refused.status, 400);

  const after = await scrape();
  const moved = (name) => sample(after, name) - sample(before, name);
  assert.equal(moved(`nango_oauth_flows_total{provider="${PROVIDER}",outcome="success"}`), 1);
  assert.equal(moved(`nango_refreshes_total{provider="${PROVIDER}",outcome="success"}`), 1);
  assert.equal(moved(`nango_refresh_duration_seconds_count{provider="${PROVIDER}"}`), 1);
  const route = 'route="/connection/{connection_id}"';
  assert.equal(moved(`nango_http_requests_total{method="GET",${route},status="200"}`), 3);
  assert.equal(moved(`nango_http_requests_total{method="GET",${route},status="400"}`), 1);
  assert.ok(moved(`nango_http_request_duration_seconds_count{method="GET",${route}}`) >= 4);
  // Labels name routes, never the connection id a caller chose.
  const text = await (await fetch(`${h.nangoUrl}/metrics`, { headers: auth })).text();
  assert.ok(!text.includes(connectionId), 'a connection id leaked into a metric label');
});

test('every log line is JSON, request lines carry the request id, and no secret shows', async () => {
  const nango = new Nango({ host: h.nangoUrl, secretKey });
  const key = await h.createConfig();
  const connectionId = uniqueId('user');
  const flow = await h.connect(key, connectionId);
  const token = await nango.getToken(key, connectionId);

  // Our own id is kept; a hostile one is replaced.
  const mine = uniqueId('req').replace(/[^A-Za-z0-9_.-]/g, '-');
  const res = await fetch(`${h.nangoUrl}/connection/${connectionId}?provider_config_key=${key}`, {
    headers: { ...auth, 'X-Request-Id': mine },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-request-id'), mine);
  const hostile = await fetch(`${h.nangoUrl}/health`, { headers: { 'X-Request-Id': 'a"} {"level":"ERROR' } });
  const replaced = hostile.headers.get('x-request-id');
  assert.match(replaced, /^[0-9a-f]{32}$/);
  // A moment for the last lines to be written.
  await new Promise((resolve) => setTimeout(resolve, 200));

  const lines = h.serverLog().split('\n').filter((line) => line.length > 0);
  assert.ok(lines.length > 20, `few log lines at debug level: ${lines.length}`);
  const entries = lines.map((line, i) => {
    try {
      return JSON.parse(line);
    } catch (err) {
      assert.fail(`log line ${i + 1} is not JSON: ${line.slice(0, 200)}`);
    }
  });
  for (const entry of entries) {
    assert.equal(typeof entry.timestamp, 'string');
    assert.match(entry.level, /^(TRACE|DEBUG|INFO|WARN|ERROR)$/);
    assert.equal(typeof entry.fields, 'object');
  }
  assert.ok(
    entries.some((e) => e.fields.message === 'Nango Server is listening'),
    'the start line is a JSON log line too',
  );
  const requestLines = entries.filter((e) => e.fields.message === 'request');
  assert.ok(requestLines.length > 5);
  for (const entry of requestLines) {
    assert.match(entry.span?.id ?? '', /^[A-Za-z0-9_.-]{1,64}$/, JSON.stringify(entry));
    assert.equal(typeof entry.span.route, 'string');
  }
  assert.ok(
    requestLines.some((e) => e.span.id === mine && e.fields.status === 200),
    'the line of our request carries the id we sent',
  );
  assert.ok(requestLines.some((e) => e.span.id === replaced));

  const log = h.serverLog();
  for (const secret of [secretKey, `secret-${key}`, token, flow.callbackUrl.searchParams.get('code')]) {
    assert.ok(secret && secret.length >= 8);
    assert.ok(!log.includes(secret), `a secret is in the JSON log: ${secret.slice(0, 6)}…`);
  }
});
