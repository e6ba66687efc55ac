// NANGO_WEBHOOK_FORMAT=nango: the auth webhooks of a real `nango serve` pass the checks of the
// current Node client (@nangohq/node@0.71, installed as nango-node-now), which code written for
// today's Nango calls on every delivery.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Nango as NangoNow } from 'nango-node-now';
import { sleep, startHarness, uniqueId } from '../lib/harness.js';

/** An HTTP receiver that keeps each POST's raw body and headers. */
async function startReceiver() {
  const received = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      received.push({ body, headers: req.headers });
      res.writeHead(200).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  return { url, received, stop: () => new Promise((resolve) => server.close(resolve)) };
}

describe('webhooks in Nango format', () => {
  const secretKey = `sk-${randomBytes(12).toString('hex')}`;
  const signingKey = `whsec-${randomBytes(12).toString('hex')}`;
  let receiver;
  let h;
  before(async () => {
    receiver = await startReceiver();
    h = await startHarness({
      secretKey,
      env: {
        NANGO_WEBHOOK_URLS: receiver.url,
        NANGO_WEBHOOK_SECRET: signingKey,
        NANGO_WEBHOOK_FORMAT: 'nango',
      },
    });
  });
  after(async () => {
    await h?.stop();
    await receiver?.stop();
  });

  test('a new connection arrives as an auth creation webhook that verifyIncomingWebhookRequest accepts', async () => {
    const key = await h.createConfig();
    const connectionId = uniqueId('user');
    await h.connect(key, connectionId);
    const deadline = Date.now() + 15_000;
    while (receiver.received.length === 0 && Date.now() < deadline) await sleep(100);
    assert.equal(receiver.received.length, 1, 'one delivery');
    const { body, headers } = receiver.received[0];

    const payload = JSON.parse(body);
    assert.equal(payload.from, 'nango');
    assert.equal(payload.type, 'auth');
    assert.equal(payload.operation, 'creation');
    assert.equal(payload.success, true);
    assert.equal(payload.connectionId, connectionId);
    assert.equal(payload.providerConfigKey, key);
    assert.equal(payload.authMode, 'OAUTH2');
    assert.equal(payload.environment, 'prod');

    const nango = new NangoNow({ host: h.nangoUrl, secretKey, webhookSigningKey: signingKey });
    assert.equal(nango.verifyIncomingWebhookRequest(body, headers), true);
    // The deprecated check of older clients passes too.
    assert.equal(nango.verifyWebhookSignature(headers['x-nango-signature'], payload), true);

    // A changed body, or another key, does not verify.
    const tampered = body.replace(connectionId, `${connectionId}x`);
    assert.equal(nango.verifyIncomingWebhookRequest(tampered, headers), false);
    const wrongKey = new NangoNow({ host: h.nangoUrl, secretKey, webhookSigningKey: `${signingKey}x` });
    assert.equal(wrongKey.verifyIncomingWebhookRequest(body, headers), false);
  });
});
