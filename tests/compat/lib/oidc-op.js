// A real OpenID Connect provider for the tests: node-oidc-provider (a certified OP; none of our
// code), configured as a security-minded deployment is: short-lived access tokens, refresh-token
// rotation, and its reuse detection (a consumed refresh token presented again revokes the whole
// grant, `refresh token already used`). Its development login and consent pages are driven over
// HTTP by `authorize`, as a browser would submit them.

import Provider from 'oidc-provider';

/**
 * Starts the OP on `port` of 127.0.0.1 with one confidential client per entry of `clients`
 * (`{clientId, clientSecret, redirectUri}`), access tokens living `accessTokenTtl` seconds.
 * Returns `{url, provider, events, stop}`; `events` records every token-endpoint outcome as
 * `{type: 'grant.success'|'grant.error', grantType, error}`.
 */
export async function startOidcProvider({ port, clients, accessTokenTtl }) {
  const url = `http://127.0.0.1:${port}`;
  const provider = new Provider(url, {
    clients: clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: [c.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // Nango's default client authentication: id and secret in the form body.
      token_endpoint_auth_method: 'client_secret_post',
    })),
    ttl: { AccessToken: accessTokenTtl, RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600 },
    rotateRefreshToken: true,
    cookies: { keys: ['nango-tests-cookie-key'] },
    findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  });
  // Quiet: the OP logs a warning per development feature in use.
  provider.on('server_error', (ctx, err) => process.stderr.write(`oidc-provider: ${err.stack}\n`));
  const events = [];
  provider.on('grant.success', (ctx) =>
    events.push({ type: 'grant.success', grantType: ctx.oidc.params?.grant_type }),
  );
  provider.on('grant.error', (ctx, error) =>
    events.push({ type: 'grant.error', grantType: ctx.oidc.params?.grant_type, error: error.message }),
  );
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  return {
    url,
    provider,
    events,
    refreshes: () => events.filter((e) => e.grantType === 'refresh_token'),
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** A cookie jar of name -> value, fed from every response's Set-Cookie headers. */
function cookieJar() {
  const cookies = new Map();
  return {
    take(response) {
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const at = pair.indexOf('=');
        cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1));
      }
    },
    header: () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
  };
}

/**
 * Follows the OP's side of an authorization from `authorizeUrl` (the server's redirect to the
 * OP) as the browser would: the login page (signed in as `account`), the consent page, and the
 * redirect back. Returns the callback URL (with `code` and `state`).
 */
export async function authorizeAtOp(authorizeUrl, account) {
  const jar = cookieJar();
  let next = new URL(authorizeUrl);
  for (let hop = 0; hop < 12; hop++) {
    const interaction = /^\/interaction\/([^/]+)$/.exec(next.pathname);
    const res = interaction
      ? await fetch(next, {
          method: 'POST',
          redirect: 'manual',
          headers: { Cookie: jar.header(), 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(await promptOf(next, jar, account)),
        })
      : await fetch(next, { redirect: 'manual', headers: { Cookie: jar.header() } });
    jar.take(res);
    const location = res.headers.get('location');
    if (!location) throw new Error(`the OP answered ${res.status} at ${next.pathname}: ${(await res.text()).slice(0, 500)}`);
    await res.arrayBuffer().catch(() => {});
    next = new URL(location, next);
    if (next.origin !== new URL(authorizeUrl).origin) return next;
  }
  throw new Error('the OP never redirected back');
}

/** What the interaction page at `url` asks (login or consent), answered. */
async function promptOf(url, jar, account) {
  const page = await fetch(url, { headers: { Cookie: jar.header() } });
  jar.take(page);
  const html = await page.text();
  const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
  if (prompt === 'login') return { prompt, login: account, password: 'any' };
  if (prompt === 'consent') return { prompt };
  throw new Error(`unexpected interaction page: ${html.slice(0, 500)}`);
}
