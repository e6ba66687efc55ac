// The package itself: no dependencies, exports and types wired, every method declared.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import * as sdk from '../index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const dts = readFileSync(path.join(root, 'index.d.ts'), 'utf8');

/** The body of `export class <name> ... { ... }` in index.d.ts (classes there have no nested braces at depth 0 issues). */
function declaredClass(name) {
  const start = dts.search(new RegExp(`export (declare )?class ${name}\\b`));
  assert.ok(start >= 0, `index.d.ts declares class ${name}`);
  let depth = 0;
  let open = -1;
  for (let i = start; i < dts.length; i++) {
    if (dts[i] === '{') {
      if (depth === 0) open = i;
      depth += 1;
    } else if (dts[i] === '}') {
      depth -= 1;
      if (depth === 0) return dts.slice(open + 1, i);
    }
  }
  assert.fail(`unterminated class ${name} in index.d.ts`);
}

/** Method names declared at the top level of a class body. */
function declaredMethods(body) {
  const names = new Set();
  let depth = 0;
  for (const line of body.split('\n')) {
    const m = depth === 0 && line.match(/^\s{2}([A-Za-z_$][\w$]*)\s*(<[^>]*>)?\(/);
    if (m && m[1] !== 'constructor') names.add(m[1]);
    for (const ch of line) {
      if (ch === '{') depth += 1;
      else if (ch === '}') depth -= 1;
    }
  }
  return names;
}

describe('package', () => {
  test('package.json: name, version, ESM, exports with types and default, engines, license', () => {
    assert.equal(pkg.name, 'nango-rs-node');
    assert.equal(pkg.version, '0.1.0');
    assert.equal(pkg.type, 'module');
    assert.equal(pkg.types, './index.d.ts');
    assert.equal(pkg.exports['.'].types, './index.d.ts');
    assert.equal(pkg.exports['.'].default, './index.js');
    assert.equal(Object.keys(pkg.exports['.'])[0], 'types', "'types' comes first, as TypeScript requires");
    assert.deepEqual(pkg.engines, { node: '>=18' });
    assert.equal(pkg.license, 'MIT OR Apache-2.0');
    assert.equal(pkg.scripts.test, 'node --test --test-concurrency=1 test/');
    for (const file of [pkg.exports['.'].types, pkg.exports['.'].default, './README.md']) {
      assert.ok(existsSync(path.join(root, file)), file);
    }
  });

  test('no dependencies of any kind', () => {
    for (const field of ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies', 'bundleDependencies', 'bundledDependencies']) {
      assert.ok(!(field in pkg) || Object.keys(pkg[field]).length === 0, `${field} is empty`);
    }
    // And the code imports nothing (not even node: modules, so it also loads in other runtimes).
    const code = readFileSync(path.join(root, 'index.js'), 'utf8');
    assert.doesNotMatch(code, /^\s*import\s/m);
    assert.doesNotMatch(code, /\brequire\(/);
  });

  test('index.js exports Nango (named and default) and NangoError', () => {
    assert.deepEqual(Object.keys(sdk).sort(), ['Nango', 'NangoError', 'default']);
    assert.equal(sdk.default, sdk.Nango);
    assert.ok(new sdk.NangoError('x') instanceof Error);
  });

  test('index.d.ts declares every exported class and every Nango method, and nothing more', () => {
    for (const name of ['Nango', 'NangoError']) declaredClass(name);
    assert.match(dts, /export default Nango;/);

    const implemented = Object.getOwnPropertyNames(sdk.Nango.prototype).filter(
      (n) => n !== 'constructor' && typeof Object.getOwnPropertyDescriptor(sdk.Nango.prototype, n).value === 'function',
    );
    const expected = [
      'getConnection',
      'getToken',
      'getRawTokenResponse',
      'listConnections',
      'deleteConnection',
      'createConnection',
      'listProviders',
      'getProvider',
      'listConfigs',
      'getConfig',
      'createConfig',
      'updateConfig',
      'deleteConfig',
      'proxy',
      'get',
      'post',
      'put',
      'patch',
      'delete',
    ];
    assert.deepEqual(implemented.sort(), [...expected].sort(), 'the methods the SDK has');
    assert.deepEqual([...declaredMethods(declaredClass('Nango'))].sort(), [...expected].sort(), 'the methods index.d.ts declares');

    const body = declaredClass('Nango');
    for (const getter of ['host', 'serverUrl']) {
      assert.ok(Object.getOwnPropertyDescriptor(sdk.Nango.prototype, getter)?.get, `getter ${getter}`);
      assert.match(body, new RegExp(`readonly ${getter}: string;`));
    }
    const errorBody = declaredClass('NangoError');
    for (const field of ['status', 'type', 'body', 'response']) {
      assert.match(errorBody, new RegExp(`^\\s+${field}: `, 'm'), `NangoError.${field} declared`);
      assert.ok(field in new sdk.NangoError('x', { status: 400, type: 't', body: {} }), `NangoError.${field} set`);
    }
  });
});
