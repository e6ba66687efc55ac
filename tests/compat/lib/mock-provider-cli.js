#!/usr/bin/env node
// oauth2-mock-server (none of our code) as a child process, for tests written in other languages
// (the Rust client's `crates/nango-client/tests/server.rs`).
//
//   node tests/compat/lib/mock-provider-cli.js [--no-refresh-token]
//
// Prints one JSON line `{"url": "http://127.0.0.1:<port>"}` once the provider listens, then one
// JSON line per request it served:
//   {"event": "authorize", "client_id", "redirect_uri", "scope", "state"}
//   {"event": "token", "grant_type", "client_id", "refresh_token" (the one presented, if any),
//    "status", "issued": {"access_token", "refresh_token"}}
// and exits when its stdin closes (so it cannot outlive the test process that spawned it).
//
// --no-refresh-token   token responses carry no refresh_token (credentials that cannot be refreshed)

import { startMockProvider } from './harness.js';

const args = process.argv.slice(2);
const known = new Set(['--no-refresh-token']);
for (const arg of args) {
  if (!known.has(arg)) {
    process.stderr.write(`mock-provider-cli: unknown argument ${arg}\n`);
    process.exit(2);
  }
}
const noRefreshToken = args.includes('--no-refresh-token');

const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

/** The client id of a token request: HTTP Basic user name, or the body's `client_id`. */
function clientIdOf(req) {
  const auth = req.headers?.authorization ?? '';
  if (auth.startsWith('Basic ')) {
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    return decodeURIComponent(decoded.split(':')[0]);
  }
  return req.body?.client_id;
}

const provider = await startMockProvider();
const { mock } = provider;

// Registered after the harness's own listeners: they keep references, so what they recorded
// reflects these changes too.
mock.service.on('beforeResponse', (response, req) => {
  if (noRefreshToken && response.statusCode === 200) delete response.body.refresh_token;
  emit({
    event: 'token',
    grant_type: req.body?.grant_type,
    client_id: clientIdOf(req),
    refresh_token: req.body?.refresh_token,
    status: response.statusCode,
    issued: { access_token: response.body?.access_token, refresh_token: response.body?.refresh_token },
  });
});
mock.service.on('beforeAuthorizeRedirect', (_redirect, req) => {
  const { client_id, redirect_uri, scope, state } = req.query;
  emit({ event: 'authorize', client_id, redirect_uri, scope, state });
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  try {
    await mock.stop();
  } finally {
    process.exit(0);
  }
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);

emit({ url: provider.url });
