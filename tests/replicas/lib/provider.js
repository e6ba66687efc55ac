// A fake OAuth 2 provider that rotates refresh tokens strictly, as RFC 9700 §4.14 allows: every
// refresh token works once; a reused one is refused with `invalid_grant` (and counted). Every call
// is recorded, with the replica that made it (each replica is given its own token URL path,
// `/token/<tag>`), so a test can say exactly which connection lost what.
//
// A connection's tokens form a *family*: the code exchange opens one, each successful refresh
// extends it. The first access token of a family expires in `firstExpiresIn` seconds (0 by
// default: expired on arrival, so the next read refreshes it), tokens from a refresh in
// `refreshExpiresIn` seconds (an hour by default, so a family needs exactly one refresh per
// storm; short lifetimes test the refresh rule for short-lived tokens, docs/refresh.md).
// With `revokeFamilyOnReuse`, a reused refresh token revokes its whole family (reuse detection
// as RFC 9700 §4.14 describes it): the connection is lost, which the tests must never cause.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rand = () => randomBytes(6).toString('hex');

/** `[min, max]` or a number (milliseconds) -> one delay. */
function pick(range) {
  if (typeof range === 'number') return range;
  const [min, max] = range;
  return min + Math.random() * (max - min);
}

/**
 * `reuseGraceMs` > 0 models providers with a reuse interval (Auth0's "reuse interval", Okta's
 * grace period, Xero's 30 minutes): a used refresh token is accepted again for that long after its
 * first use (once per rotation), issuing a new pair and revoking the pair of its first use. 0 (the
 * default) is strict rotation: any reuse is refused.
 *
 * @param {{refreshDelayMs?: number|[number, number], codeDelayMs?: number|[number, number],
 *          firstExpiresIn?: number, refreshExpiresIn?: number, reuseGraceMs?: number,
 *          revokeFamilyOnReuse?: boolean}} [opts]
 */
export async function startFakeProvider({
  refreshDelayMs = [50, 200],
  codeDelayMs = [0, 10],
  firstExpiresIn: firstLifetime = 0,
  refreshExpiresIn: refreshLifetime = 3600,
  reuseGraceMs = 0,
  revokeFamilyOnReuse = false,
} = {}) {
  // Lifetimes (seconds) of the tokens issued from now on; `setLifetimes` changes them.
  let firstExpiresIn = firstLifetime;
  let refreshExpiresIn = refreshLifetime;
  /** code -> {family, clientId, redirectUri, used} */
  const codes = new Map();
  /** family id -> {id, label, clientId, tokens: [{access, refresh, by: seq|'code'}], latest} */
  const families = new Map();
  /** refresh token -> {family, usedBy: call seq | null} */
  const refreshTokens = new Map();
  /** access token -> family id */
  const accessTokens = new Map();
  /** Every call of /authorize and /token, in arrival order. */
  const calls = [];
  /** Clients whose grants were revoked (the user removed the app): every refresh is refused. */
  const revokedClients = new Set();
  let seq = 0;

  function issue(family, by, expiresIn) {
    const access = `at.${family.id}.${family.tokens.length}.${rand()}`;
    const refresh = `rt.${family.id}.${family.tokens.length}.${rand()}`;
    family.tokens.push({ access, refresh, by });
    family.latest = { access, refresh };
    refreshTokens.set(refresh, { family: family.id, usedBy: null });
    accessTokens.set(access, family.id);
    return {
      access_token: access,
      token_type: 'Bearer',
      expires_in: expiresIn,
      refresh_token: refresh,
      scope: 'read',
    };
  }

  function readBody(req) {
    return new Promise((resolve, reject) => {
      let data = '';
      req.setEncoding('utf8');
      req.on('data', (c) => (data += c));
      req.on('end', () => resolve(data));
      req.on('error', reject);
    });
  }

  /** client_id/secret from HTTP Basic or from the form body. */
  function clientOf(req, form) {
    const auth = req.headers.authorization ?? '';
    if (auth.startsWith('Basic ')) {
      const [id, secret] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      return { id: decodeURIComponent(id), secret: decodeURIComponent(secret ?? '') };
    }
    return { id: form.get('client_id'), secret: form.get('client_secret') };
  }

  async function handleToken(req, res, tag) {
    const form = new URLSearchParams(await readBody(req));
    const grant = form.get('grant_type');
    const call = {
      seq: ++seq,
      kind: grant === 'refresh_token' ? 'refresh' : grant === 'authorization_code' ? 'code' : `grant:${grant}`,
      replica: tag,
      startedAt: Date.now(),
      answeredAt: null,
      status: null,
      outcome: null,
      family: null,
      presented: null,
      issued: null,
      delivered: null,
    };
    calls.push(call);
    let finished = false;
    res.on('finish', () => (finished = true));
    res.on('close', () => (call.delivered = finished));

    const client = clientOf(req, form);
    const answer = async (status, body, delayMs) => {
      call.status = status;
      await sleep(delayMs);
      call.answeredAt = Date.now();
      call.socketClosedBeforeAnswer = req.socket.destroyed;
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const refuse = (outcome, error, delayMs) => {
      call.outcome = outcome;
      return answer(400, { error }, delayMs);
    };

    if (grant === 'authorization_code') {
      const code = codes.get(form.get('code'));
      const delay = pick(codeDelayMs);
      if (!code || code.used) return refuse('bad_code', 'invalid_grant', delay);
      if (client.id !== code.clientId || !client.secret) return refuse('bad_client', 'invalid_client', delay);
      if (form.get('redirect_uri') !== code.redirectUri) return refuse('bad_redirect_uri', 'invalid_grant', delay);
      code.used = true;
      const family = families.get(code.family);
      call.family = family.id;
      const body = issue(family, 'code', firstExpiresIn);
      call.issued = { access: body.access_token, refresh: body.refresh_token };
      call.outcome = 'ok';
      return answer(200, body, delay);
    }
    if (grant === 'refresh_token') {
      const presented = form.get('refresh_token');
      call.presented = presented;
      const delay = pick(refreshDelayMs);
      const entry = refreshTokens.get(presented);
      if (!entry) return refuse('unknown', 'invalid_grant', delay);
      call.family = entry.family;
      const family = families.get(entry.family);
      if (client.id !== family.clientId || !client.secret) return refuse('bad_client', 'invalid_client', delay);
      if (entry.revoked || revokedClients.has(client.id)) return refuse('revoked', 'invalid_grant', delay);
      if (entry.usedBy !== null) {
        call.firstUsedBy = entry.usedBy;
        const first = calls.find((c) => c.seq === entry.usedBy);
        if (reuseGraceMs > 0 && !entry.graceUsed && call.startedAt - first.startedAt <= reuseGraceMs) {
          // Within the reuse interval: the pair issued by the first use is replaced by a new one.
          entry.graceUsed = call.seq;
          const child = refreshTokens.get(first.issued.refresh);
          if (child && child.usedBy === null) child.revoked = true;
          const body = issue(family, call.seq, refreshExpiresIn);
          call.issued = { access: body.access_token, refresh: body.refresh_token };
          call.outcome = 'grace_reuse';
          return answer(200, body, delay);
        }
        if (revokeFamilyOnReuse) {
          family.revoked = true;
          for (const entry of refreshTokens.values()) if (entry.family === family.id) entry.revoked = true;
        }
        return refuse('reused', 'invalid_grant', delay);
      }
      // The rotation is committed when the request arrives, as a provider's database would do it;
      // whether the answer reaches the client is out of the provider's hands.
      entry.usedBy = call.seq;
      const body = issue(family, call.seq, refreshExpiresIn);
      call.issued = { access: body.access_token, refresh: body.refresh_token };
      call.outcome = 'ok';
      return answer(200, body, delay);
    }
    return refuse('unsupported', 'unsupported_grant_type', 0);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://provider');
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const redirectUri = url.searchParams.get('redirect_uri');
      const clientId = url.searchParams.get('client_id');
      if (!redirectUri || !clientId || url.searchParams.get('response_type') !== 'code') {
        res.writeHead(400, { 'Content-Type': 'text/plain' });
        res.end('bad authorization request');
        return;
      }
      const family = { id: `f${families.size + 1}`, label: null, key: null, clientId, tokens: [], latest: null };
      families.set(family.id, family);
      const code = `code-${rand()}`;
      codes.set(code, { family: family.id, clientId, redirectUri, used: false });
      calls.push({ seq: ++seq, kind: 'authorize', family: family.id, startedAt: Date.now() });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      if (url.searchParams.has('state')) back.searchParams.set('state', url.searchParams.get('state'));
      res.writeHead(302, { Location: back.href });
      res.end();
      return;
    }
    const token = /^\/token(?:\/([\w-]+))?$/.exec(url.pathname);
    if (req.method === 'POST' && token) {
      handleToken(req, res, token[1] ?? null).catch((err) => {
        res.destroy(err);
      });
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found');
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;

  const refreshCalls = () => calls.filter((c) => c.kind === 'refresh');

  return {
    url,
    calls,
    families,
    refreshCalls,
    /** Names the family a code belongs to (the test knows which connection's flow got it). */
    label(code, connectionId, key) {
      const entry = codes.get(code);
      if (!entry) throw new Error(`the provider never issued the code ${code}`);
      Object.assign(families.get(entry.family), { label: connectionId, key });
      return entry.family;
    },
    /** The token family of connection (key, connectionId). */
    familyOf(key, connectionId) {
      for (const f of families.values()) if (f.label === connectionId && f.key === key) return f;
      return undefined;
    },
    familyOfAccessToken: (access) => accessTokens.get(access),
    /** The `expires_in` of tokens issued from now on, by code exchange and by refresh. */
    setLifetimes({ first = firstExpiresIn, refresh = refreshExpiresIn }) {
      firstExpiresIn = first;
      refreshExpiresIn = refresh;
    },
    /** Refuses every refresh of this client from now on (the user revoked the app). */
    revokeClient(clientId) {
      revokedClients.add(clientId);
    },
    /** Refresh calls that arrived but are not answered yet, by replica tag. */
    inFlight() {
      return refreshCalls().filter((c) => c.answeredAt === null);
    },
    figures() {
      const refresh = refreshCalls();
      const count = (o) => refresh.filter((c) => c.outcome === o).length;
      return {
        refreshCalls: refresh.length,
        ok: count('ok'),
        reused: count('reused'),
        graceReused: count('grace_reuse'),
        revoked: count('revoked'),
        unknown: count('unknown'),
        otherRefusals: refresh.filter(
          (c) => c.outcome && !['ok', 'reused', 'grace_reuse', 'revoked', 'unknown'].includes(c.outcome),
        ).length,
        codeExchanges: calls.filter((c) => c.kind === 'code' && c.outcome === 'ok').length,
      };
    },
    /** Everything the provider saw of one family, for failure reports. */
    history(familyId) {
      const family = families.get(familyId);
      return {
        family: familyId,
        connection: family?.label,
        latestRefreshToken: family?.latest?.refresh,
        calls: calls
          .filter((c) => c.family === familyId && c.kind !== 'authorize')
          .map((c) => ({
            seq: c.seq,
            kind: c.kind,
            replica: c.replica,
            outcome: c.outcome,
            presented: c.presented,
            issued: c.issued?.refresh,
            startedAt: new Date(c.startedAt).toISOString(),
            answeredAt: c.answeredAt && new Date(c.answeredAt).toISOString(),
            socketClosedBeforeAnswer: c.socketClosedBeforeAnswer,
            delivered: c.delivered,
            firstUsedBy: c.firstUsedBy,
          })),
      };
    },
    stop() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
