// Property-based run of schemathesis (PyPI) against the real server's /openapi.json: every
// operation is called with generated input (valid and invalid), and every answer is checked
// against the document: no 5xx, documented status codes, content types, headers and body schemas,
// auth enforced. The server runs with a secret key and holds a real connection made through
// oauth2-mock-server, under the document's example names (config `github`, connection `user-42`),
// so the examples phase also checks a real 200 of GET /connection against its schema.
//
// Environment: NANGO_BIN (server binary), SCHEMATHESIS (the `schemathesis` command, default on
// PATH), NANGO_SCHEMATHESIS_MAX_EXAMPLES (per operation, default 100), NANGO_TEST_DATABASE_URL
// (PostgreSQL instead of SQLite, as in tests/compat).
//
// One check is left out: positive_data_acceptance expects every schema-valid request to succeed
// or answer 404, but the Nango 0.9 contract answers 400 for an unknown config or connection and
// for an unknown provider template, and the client libraries depend on those answers.

import { spawn } from 'node:child_process';
import { startHarness } from '../compat/lib/harness.js';

const secretKey = 'sk-schemathesis-run';
const schemathesis = process.env.SCHEMATHESIS || 'schemathesis';
const maxExamples = process.env.NANGO_SCHEMATHESIS_MAX_EXAMPLES || '100';

// The wrong-key limit (NANGO_AUTH_FAILURE_LIMIT, 20 a minute) would turn most of the run's
// requests into 429s once its auth checks have sent a few wrong keys, leaving the routes behind
// the gate untested; the limit itself is tested in crates/nango-server/tests/api. 0 turns it off.
const h = await startHarness({ secretKey, env: { NANGO_AUTH_FAILURE_LIMIT: '0' } });
let code = 1;
try {
  const key = await h.createConfig({ key: 'github' });
  await h.connect(key, 'user-42');
  const args = [
    '--config-file', new URL('./schemathesis.toml', import.meta.url).pathname,
    'run',
    `${h.nangoUrl}/openapi.json`,
    '--checks', 'all',
    '--exclude-checks', 'positive_data_acceptance',
    '--header', `Authorization: Bearer ${secretKey}`,
    '--max-examples', maxExamples,
    '--seed', process.env.NANGO_SCHEMATHESIS_SEED || '20261128',
    '--phases', 'examples,coverage,fuzzing,stateful',
    '--no-color',
  ];
  console.log(`$ ${schemathesis} ${args.join(' ').replace(secretKey, '***')}`);
  code = await new Promise((resolve) => {
    const child = spawn(schemathesis, args, { stdio: 'inherit' });
    child.on('error', (err) => {
      console.error(`cannot run ${schemathesis}: ${err.message} (pip install schemathesis, or set SCHEMATHESIS)`);
      resolve(1);
    });
    child.on('exit', (status) => resolve(status ?? 1));
  });
  if (code !== 0) console.error(`\nServer log:\n${h.serverLog().split('\n').slice(-40).join('\n')}`);
} finally {
  await h.stop();
}
process.exit(code);
