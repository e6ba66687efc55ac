// The SDK package itself, without a browser: its package.json, that it is one dependency-free
// module, its exports and declarations, the constructor, URL building and reading a redirect.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { repoRoot, sdkSourcePath } from '../lib/harness.js';

const sdkDir = path.join(repoRoot, 'sdks', 'frontend');
const pkg = JSON.parse(readFileSync(path.join(sdkDir, 'package.json'), 'utf8'));
const source = readFileSync(sdkSourcePath, 'utf8');
const dts = readFileSync(path.join(sdkDir, 'index.d.ts'), 'utf8');
const sdk = await import(pathToFileURL(sdkSourcePath).href);
const { Nango, NangoAuthError, VERSION } = sdk;

test('package.json: an ES module with exports and types', () => {
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.types, './index.d.ts');
  assert.equal(pkg.exports['.'].import, './index.js');
  assert.equal(pkg.exports['.'].types, './index.d.ts');
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.peerDependencies, undefined);
});

test('index.js is one self-contained module: no imports, the version in its header', () => {
  assert.doesNotMatch(source, /^\s*import\s/m, 'index.js imports something');
  assert.doesNotMatch(source, /\brequire\s*\(/, 'index.js requires something');
  assert.doesNotMatch(source, /\bimport\s*\(/, 'index.js imports something dynamically');
  assert.equal(VERSION, pkg.version);
  assert.ok(source.slice(0, 300).includes(`v${VERSION}`), 'the header comment does not carry the version');
  assert.ok(dts.slice(0, 300).includes(`v${VERSION}`), 'the declarations header does not carry the version');
});

test('exports: default and named Nango, VERSION, NangoAuthError; all declared', () => {
  assert.equal(sdk.default, Nango);
  assert.equal(typeof Nango, 'function');
  assert.equal(Nango.VERSION, VERSION);
  for (const declaration of [
    /export declare const VERSION: string;/,
    /export declare class Nango\b/,
    /export default Nango;/,
    /export declare class NangoAuthError extends Error/,
    /static handleRedirectResult\(/,
  ]) {
    assert.match(dts, declaration);
  }
});

test('constructor: a string or options; one trailing slash stripped; invalid hosts refused', () => {
  assert.equal(new Nango('http://127.0.0.1:3003/').host, 'http://127.0.0.1:3003');
  assert.equal(new Nango('https://nango.example.com/base//').host, 'https://nango.example.com/base/');
  const withOptions = new Nango({ host: 'https://nango.example.com', publicKey: 'pk', debug: false, connectSessionToken: 'cst' });
  assert.equal(withOptions.host, 'https://nango.example.com');
  assert.equal(withOptions.hostBaseUrl, 'https://nango.example.com');
  for (const bad of ['not a url', 'localhost:3003', 'ftp://example.com', '/relative']) {
    assert.throws(() => new Nango(bad), { message: `Invalid URL provided for the Nango host: ${bad}` });
    assert.throws(() => new Nango({ host: bad }), { message: `Invalid URL provided for the Nango host: ${bad}` });
  }
});

test('connectUrl: every part URL-encoded, params as params[name]=value, keys added in order', () => {
  const nango = new Nango({ host: 'http://127.0.0.1:3003/', publicKey: 'p k', connectSessionToken: 't&t' });
  assert.equal(
    nango.connectUrl('my key/1', 'user#1&x', { params: { subdomain: 'acme', 'a b': 'c&d=e', n: 42, skip: { no: 1 }, also: null } }),
    'http://127.0.0.1:3003/oauth/connect/my%20key%2F1?connection_id=user%231%26x&public_key=p%20k&connect_session_token=t%26t' +
      '&params[subdomain]=acme&params[a%20b]=c%26d%3De&params[n]=42',
  );
});

test('auth() outside a browser rejects instead of throwing', async () => {
  const nango = new Nango('http://127.0.0.1:3003');
  await assert.rejects(nango.auth('key', 'id'), { type: 'unsupported_environment' });
  await assert.rejects(nango.auth('', 'id'), { type: 'no_provider_config_key' });
  await assert.rejects(nango.auth('key', ''), { type: 'missing_connection_id' });
});

test('handleRedirectResult: null without a result, the result on success, throws the error', () => {
  assert.equal(Nango.handleRedirectResult('http://app.test/settings?tab=1'), null);
  assert.deepEqual(Nango.handleRedirectResult('http://app.test/?nango_result=success&provider_config_key=gh&connection_id=u%201'), {
    providerConfigKey: 'gh',
    connectionId: 'u 1',
  });
  assert.deepEqual(Nango.handleRedirectResult(new URL('http://app.test/?nango_result=success&provider_config_key=gh&connection_id=u')), {
    providerConfigKey: 'gh',
    connectionId: 'u',
  });
  let thrown;
  try {
    Nango.handleRedirectResult(
      'http://app.test/?nango_result=error&error_type=callback_err&error_message=Denied%20%3Cb%3E&provider_config_key=gh&connection_id=u',
    );
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof Error);
  assert.ok(thrown instanceof NangoAuthError);
  assert.equal(thrown.type, 'callback_err');
  assert.equal(thrown.message, 'Denied <b>');
  assert.equal(thrown.providerConfigKey, 'gh');
  assert.equal(thrown.connectionId, 'u');
  assert.deepEqual(thrown.error, { type: 'callback_err', message: 'Denied <b>' });
  // An URL that had an older result and got a new one appended: the new one counts.
  assert.deepEqual(
    Nango.handleRedirectResult(
      'http://app.test/?nango_result=error&error_type=x&nango_result=success&provider_config_key=gh&connection_id=u',
    ),
    { providerConfigKey: 'gh', connectionId: 'u' },
  );
});
