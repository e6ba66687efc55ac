/*!
 * nango-rs frontend SDK v0.1.0
 * Connects your users' accounts through a nango-rs server (wire-compatible with Nango 0.9).
 * A dependency-free ES module: `import Nango from '<host>/sdk/frontend.js'` or from a bundler.
 * Licensed MIT OR Apache-2.0.
 */

/** Version of this SDK. */
export const VERSION = '0.1.0';

const DEFAULT_HOST = 'http://localhost:3003';
const DEFAULT_TIMEOUT_MS = 5 * 60 * 1000;
const DEFAULT_CLOSED_GRACE_MS = 1000;
const POPUP_POLL_MS = 250;
const SOCKET_OPEN_TIMEOUT_MS = 4000;
const HEALTH_PROBE_TIMEOUT_MS = 4000;
const POPUP_WIDTH = 500;
const POPUP_HEIGHT = 600;
const REDIRECT_PARAMS = ['nango_result', 'provider_config_key', 'connection_id', 'error_type', 'error_message'];

/** Whether the user is looking at the app's window (true where the browser cannot tell). */
function appHasFocus() {
  try {
    return typeof document === 'undefined' || typeof document.hasFocus !== 'function' || document.hasFocus();
  } catch {
    return true;
  }
}

/**
 * How an authorization failed. `type` is one of the server's flow error types (`callback_err`,
 * `provider_config_err`, ...) or a client-side one (`blocked_by_browser`, `window_closed`,
 * `timeout`, `connection_failed`). `error` repeats `{type, message}` in the shape of the legacy
 * `@nangohq/frontend` 0.8 rejections, so code written for either SDK keeps working.
 */
export class NangoAuthError extends Error {
  constructor(type, message, details = {}) {
    super(message);
    this.name = 'NangoAuthError';
    this.type = type;
    this.providerConfigKey = details.providerConfigKey;
    this.connectionId = details.connectionId;
    this.error = { type, message };
  }
}

const hasWindow = () => typeof window !== 'undefined';

/** The value a URL query parameter had last (a redirect may append to an URL that had one). */
function lastParam(params, name) {
  const all = params.getAll(name);
  return all.length ? all[all.length - 1] : undefined;
}

export class Nango {
  /**
   * @param {string | {host?: string, publicKey?: string, debug?: boolean, connectSessionToken?: string,
   *   callbackOrigins?: string[]}} [config] the server's base URL, or options.
   */
  constructor(config = {}) {
    const options = typeof config === 'string' ? { host: config } : config || {};
    if (typeof options !== 'object') {
      throw new TypeError('new Nango() expects the host URL or an options object.');
    }
    let host = options.host === undefined || options.host === null || options.host === '' ? DEFAULT_HOST : String(options.host);
    if (host.endsWith('/')) host = host.slice(0, -1);
    let parsed;
    try {
      parsed = new URL(host);
    } catch {
      parsed = null;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new Error(`Invalid URL provided for the Nango host: ${host}`);
    }
    this.host = host;
    this.hostBaseUrl = host; // the name @nangohq/frontend uses
    this.publicKey = options.publicKey || undefined;
    this.connectSessionToken = options.connectSessionToken || undefined;
    this.debug = Boolean(options.debug);
    // Origins whose popup pages may post the legacy AUTHORIZATION_* messages: the server's own,
    // plus any the app declares (a NANGO_CALLBACK_URL on another origin).
    this.callbackOrigins = [parsed.origin, ...(Array.isArray(options.callbackOrigins) ? options.callbackOrigins : [])];
    this.log(`SDK ${VERSION}, host ${host}`);
  }

  /** @private */
  log(...args) {
    if (this.debug && typeof console !== 'undefined') console.log('[nango]', ...args);
  }

  /**
   * The URL of `/oauth/connect` for this flow, every part URL-encoded.
   * @param {string} providerConfigKey
   * @param {string} connectionId
   * @param {{params?: Record<string, string | number | boolean>}} [options]
   * @returns {string}
   */
  connectUrl(providerConfigKey, connectionId, options = {}) {
    // Without an id (a connect session made with an end user), the server names the connection.
    const query = connectionId === undefined ? [] : [`connection_id=${encodeURIComponent(connectionId)}`];
    if (this.publicKey) query.push(`public_key=${encodeURIComponent(this.publicKey)}`);
    if (this.connectSessionToken) query.push(`connect_session_token=${encodeURIComponent(this.connectSessionToken)}`);
    const params = options && options.params;
    if (params && typeof params === 'object') {
      for (const [name, value] of Object.entries(params)) {
        if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
          query.push(`params[${encodeURIComponent(name)}]=${encodeURIComponent(String(value))}`);
        }
      }
    }
    return `${this.host}/oauth/connect/${encodeURIComponent(providerConfigKey)}?${query.join('&')}`;
  }

  /**
   * Runs the OAuth flow of `providerConfigKey` for the connection `connectionId`.
   *
   * Popup mode (default): resolves `{providerConfigKey, connectionId}` once the server stored the
   * connection; rejects a {@link NangoAuthError}. Every call settles: at the latest after
   * `timeoutMs` (default 5 minutes).
   *
   * Redirect mode (`{mode: 'redirect', returnTo}`): navigates this window to the server, which
   * sends the browser back to `returnTo` (default: the current URL) with the outcome in the query;
   * read it with {@link Nango.handleRedirectResult}. The promise resolves once navigation starts.
   */
  auth(providerConfigKey, connectionId, options = {}) {
    // auth(key, options): under a connect session made with an end user (POST /connect/sessions
    // with `end_user`), the server makes the connection id and the result reports it.
    if (connectionId !== null && typeof connectionId === 'object') {
      options = connectionId;
      connectionId = undefined;
    }
    options = options || {};
    if (typeof providerConfigKey !== 'string' || providerConfigKey === '') {
      return Promise.reject(
        new NangoAuthError('no_provider_config_key', 'Missing Provider Config unique key.', { connectionId }),
      );
    }
    const idless = connectionId === undefined && Boolean(this.connectSessionToken);
    if (!idless && ((typeof connectionId !== 'string' && typeof connectionId !== 'number') || connectionId === '')) {
      return Promise.reject(
        new NangoAuthError('missing_connection_id', 'Missing Connection ID.', { providerConfigKey }),
      );
    }
    if (!idless) connectionId = String(connectionId);
    if (options.credentials !== undefined) {
      return this.enterCredentials(providerConfigKey, connectionId, options.credentials, options);
    }
    if (!hasWindow()) {
      return Promise.reject(
        new NangoAuthError('unsupported_environment', 'Nango frontend needs a browser window.', { providerConfigKey, connectionId }),
      );
    }
    const url = this.connectUrl(providerConfigKey, connectionId, options);
    if (options.mode === 'redirect') return this.redirect(url, options.returnTo);
    if (options.mode !== undefined && options.mode !== 'popup') {
      return Promise.reject(new TypeError(`Unknown auth mode: ${options.mode}`));
    }
    return this.popupFlow(url, providerConfigKey, connectionId, options);
  }

  /**
   * Stores credentials the user typed into the app's own form, for providers whose auth mode is
   * API_KEY (`{apiKey}`) or BASIC (`{username, password}`): no popup. The server checks them
   * against the provider's template. Resolves `{providerConfigKey, connectionId}`; rejects a
   * {@link NangoAuthError} (`invalid_credentials`, `auth_mode_err`, `connection_failed`, ...).
   * @private
   */
  enterCredentials(providerConfigKey, connectionId, credentials, options = {}) {
    const details = { providerConfigKey, connectionId };
    if (!credentials || typeof credentials !== 'object') {
      return Promise.reject(new NangoAuthError('invalid_credentials', 'credentials must be {apiKey} or {username, password}.', details));
    }
    let kind;
    let body;
    if (credentials.apiKey !== undefined) {
      kind = 'api-key';
      body = { apiKey: credentials.apiKey };
    } else if (credentials.username !== undefined) {
      kind = 'basic';
      body = { username: credentials.username, password: credentials.password ?? '' };
    } else {
      return Promise.reject(new NangoAuthError('invalid_credentials', 'credentials must be {apiKey} or {username, password}.', details));
    }
    const query = connectionId === undefined ? [] : [`connection_id=${encodeURIComponent(connectionId)}`];
    if (this.connectSessionToken) query.push(`connect_session_token=${encodeURIComponent(this.connectSessionToken)}`);
    const url = `${this.host}/api-auth/${kind}/${encodeURIComponent(providerConfigKey)}?${query.join('&')}`;
    const timeoutMs = Number.isFinite(options.timeoutMs) && options.timeoutMs > 0 ? options.timeoutMs : 30000;
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), timeoutMs) : null;
    this.log(`storing ${kind} credentials for ${providerConfigKey}/${connectionId}`);
    return fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      signal: controller ? controller.signal : undefined,
    })
      .then(
        async (response) => {
          let data = null;
          try {
            data = await response.json();
          } catch {
            data = null;
          }
          if (response.ok) {
            return {
              providerConfigKey: (data && data.providerConfigKey) || providerConfigKey,
              connectionId: (data && data.connectionId) || connectionId,
            };
          }
          // `{error: <text>, type}`, or current Nango's `{error: {code, message}}` (id-less calls).
          const nested = data && data.error && typeof data.error === 'object' ? data.error : null;
          throw new NangoAuthError(
            (nested ? nested.code : data && data.type) || 'unknown_err',
            (nested ? nested.message : data && data.error) || `The server answered HTTP ${response.status}.`,
            details,
          );
        },
        (err) => {
          const timedOut = err && err.name === 'AbortError';
          throw new NangoAuthError(
            timedOut ? 'timeout' : 'connection_failed',
            timedOut ? `The server did not answer within ${timeoutMs} ms.` : `Could not reach the Nango server at ${this.host}.`,
            details,
          );
        },
      )
      .finally(() => {
        if (timer) clearTimeout(timer);
      });
  }

  /** @private */
  redirect(url, returnTo) {
    let target;
    try {
      const back = new URL(returnTo === undefined ? window.location.href : String(returnTo), window.location.href);
      // Leftovers of an earlier redirect must not be read again on the way back.
      for (const name of REDIRECT_PARAMS) back.searchParams.delete(name);
      target = `${url}&return_to=${encodeURIComponent(back.href)}`;
    } catch (err) {
      return Promise.reject(err);
    }
    this.log(`redirecting to ${target}`);
    window.location.assign(target);
    return Promise.resolve();
  }

  /** @private */
  popupFlow(url, providerConfigKey, connectionId, options) {
    const timeoutMs = Number.isFinite(options.timeoutMs) && options.timeoutMs > 0 ? options.timeoutMs : DEFAULT_TIMEOUT_MS;
    const closedGraceMs = Number.isFinite(options.closedGraceMs) && options.closedGraceMs >= 0 ? options.closedGraceMs : DEFAULT_CLOSED_GRACE_MS;
    const details = { providerConfigKey, connectionId };

    return new Promise((resolve, reject) => {
      let settled = false;
      let popup = null;
      let socket = null;
      let acknowledged = false;
      let fellBack = false;
      const timers = new Set();
      const later = (fn, ms) => {
        const id = setTimeout(() => {
          timers.delete(id);
          fn();
        }, ms);
        timers.add(id);
        return id;
      };
      let pollId = null;
      let onRefocus = null;

      const cleanup = () => {
        settled = true;
        for (const id of timers) clearTimeout(id);
        timers.clear();
        if (pollId !== null) clearInterval(pollId);
        window.removeEventListener('message', onMessage, false);
        if (onRefocus) window.removeEventListener('focus', onRefocus, false);
        closeSocket();
      };
      const closeSocket = () => {
        if (!socket) return;
        const s = socket;
        socket = null;
        s.onopen = s.onmessage = s.onerror = s.onclose = null;
        try {
          s.close();
        } catch {
          // already closed
        }
      };
      const succeed = (key, id) => {
        if (settled) return;
        cleanup();
        const result = { providerConfigKey: key || providerConfigKey, connectionId: id || connectionId };
        this.log('authorization succeeded', result);
        resolve(result);
      };
      const fail = (type, message, extra = {}) => {
        if (settled) return;
        cleanup();
        const error = new NangoAuthError(type || 'unknown_err', message || 'Unknown error during the OAuth flow.', {
          providerConfigKey: extra.providerConfigKey || providerConfigKey,
          connectionId: extra.connectionId || connectionId,
        });
        this.log('authorization failed', error.type, error.message);
        reject(error);
      };

      const openPopup = (popupUrl) => {
        if (settled) return;
        this.log(`opening popup ${popupUrl}`);
        try {
          popup = window.open(popupUrl, '', popupFeatures());
        } catch {
          popup = null;
        }
        if (!popup) {
          fail('blocked_by_browser', 'The browser blocked the authorization popup: call auth() from a click handler, or allow popups for this site.', details);
          return;
        }
        pollId = setInterval(() => {
          let closed;
          try {
            closed = popup.closed;
          } catch {
            closed = false;
          }
          if (!closed) return;
          clearInterval(pollId);
          pollId = null;
          // A result may still be on its way (the server's page closes itself right after the
          // server sent it): it wins if it arrives within the grace period.
          const declareClosed = () =>
            later(() => fail('window_closed', 'The authorization window was closed before the authorization completed.', details), closedGraceMs);
          if (appHasFocus()) {
            declareClosed();
            return;
          }
          // `closed` also reads true, for good, when the provider's page sends
          // Cross-Origin-Opener-Policy (Google's sign-in does): the browser cuts our handle while
          // the user is still signing in, in a popup that keeps the focus. A popup the user really
          // closed hands the focus back to this window, so the grace period starts then.
          this.log('popup handle reads closed while the app is in the background: waiting for the focus');
          onRefocus = () => {
            window.removeEventListener('focus', onRefocus, false);
            onRefocus = null;
            declareClosed();
          };
          window.addEventListener('focus', onRefocus, false);
        }, POPUP_POLL_MS);
      };

      // The legacy protocol: the server's page posts the outcome to window.opener. Listened to in
      // both protocols: a server that could not reach our socket falls back to it.
      const onMessage = (event) => {
        if (settled || !popup || event.source !== popup) return;
        if (!this.callbackOrigins.includes(event.origin)) return;
        const message = event.data;
        if (!message || typeof message !== 'object' || !message.eventType) return;
        const data = message.data && typeof message.data === 'object' ? message.data : {};
        if (message.eventType === 'AUTHORIZATION_SUCEEDED' || message.eventType === 'AUTHORIZATION_SUCCEEDED') {
          succeed(data.providerConfigKey, data.connectionId);
        } else if (message.eventType === 'AUTHORIZATION_FAILED') {
          const err = data.error && typeof data.error === 'object' ? data.error : {};
          fail(err.type, err.message, data);
        }
      };
      window.addEventListener('message', onMessage, false);

      const fallBack = async (reason) => {
        if (settled || fellBack) return;
        fellBack = true;
        closeSocket();
        this.log(`WebSocket unavailable (${reason}), checking the server`);
        const reachable = await this.probe();
        if (settled) return;
        if (!reachable) {
          fail('connection_failed', `Could not reach the Nango server at ${this.host}.`, details);
          return;
        }
        this.log('using the postMessage protocol');
        openPopup(url);
      };

      later(() => {
        try {
          if (popup && !popup.closed) popup.close();
        } catch {
          // nothing left to close
        }
        fail('timeout', `The authorization did not complete within ${timeoutMs} ms.`, details);
      }, timeoutMs);

      if (typeof WebSocket === 'undefined') {
        fallBack('no WebSocket support');
        return;
      }
      try {
        const wsUrl = new URL(`${this.host}/`);
        wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
        socket = new WebSocket(wsUrl.href);
      } catch (err) {
        fallBack(String(err));
        return;
      }
      const openTimer = later(() => {
        if (!acknowledged) fallBack('no connection_ack in time');
      }, SOCKET_OPEN_TIMEOUT_MS);
      socket.onmessage = (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!frame || typeof frame !== 'object') return;
        switch (frame.message_type) {
          case 'connection_ack':
            if (acknowledged || typeof frame.ws_client_id !== 'string' || fellBack) return;
            acknowledged = true;
            clearTimeout(openTimer);
            timers.delete(openTimer);
            openPopup(`${url}&ws_client_id=${encodeURIComponent(frame.ws_client_id)}`);
            break;
          case 'success':
            succeed(frame.provider_config_key, frame.connection_id);
            break;
          case 'error':
            fail(frame.error_type, frame.error_desc, {
              providerConfigKey: frame.provider_config_key,
              connectionId: frame.connection_id,
            });
            break;
          default:
          // unknown frames are ignored
        }
      };
      const onSocketGone = () => {
        if (!acknowledged) {
          fallBack('socket failed');
          return;
        }
        // After the ack the server falls back to the postMessage page if our socket is gone,
        // and the popup watch still runs: nothing to do but forget the socket.
        this.log('WebSocket closed');
        socket = null;
      };
      socket.onerror = onSocketGone;
      socket.onclose = onSocketGone;
    });
  }

  /** @private Whether the server answers at all (any HTTP response counts). */
  async probe() {
    if (typeof fetch !== 'function') return true;
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), HEALTH_PROBE_TIMEOUT_MS) : null;
    try {
      await fetch(`${this.host}/health`, {
        mode: 'no-cors',
        cache: 'no-store',
        credentials: 'omit',
        signal: controller ? controller.signal : undefined,
      });
      return true;
    } catch {
      return false;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /**
   * Reads the outcome of a redirect-mode flow from the URL the server sent the browser back to.
   * Returns `null` when the URL carries no outcome, `{providerConfigKey, connectionId}` on success,
   * and throws a {@link NangoAuthError} on failure (inside an async function, `await` it to get a
   * rejection).
   * @param {string | URL | Location} [url] default `window.location.href`
   */
  static handleRedirectResult(url) {
    if (url === undefined) {
      if (!hasWindow()) throw new TypeError('Nango.handleRedirectResult() needs a URL outside a browser.');
      url = window.location.href;
    }
    const parsed = new URL(String(url), hasWindow() ? window.location.href : undefined);
    const params = parsed.searchParams;
    const result = lastParam(params, 'nango_result');
    if (!result) return null;
    const providerConfigKey = lastParam(params, 'provider_config_key');
    const connectionId = lastParam(params, 'connection_id');
    if (result === 'success') return { providerConfigKey, connectionId };
    throw new NangoAuthError(
      lastParam(params, 'error_type') || 'unknown_err',
      lastParam(params, 'error_message') || 'Unknown error during the OAuth flow.',
      { providerConfigKey, connectionId },
    );
  }
}

Nango.VERSION = VERSION;

/** Window features of the popup, centred; never `noopener`: the SDK watches the popup. */
function popupFeatures() {
  const screen = window.screen || { width: POPUP_WIDTH, height: POPUP_HEIGHT };
  const width = Math.min(POPUP_WIDTH, screen.width);
  const height = Math.min(POPUP_HEIGHT, screen.height);
  const left = Math.max(screen.width / 2 - POPUP_WIDTH / 2, 0);
  const top = Math.max(screen.height / 2 - POPUP_HEIGHT / 2, 0);
  return [
    `width=${width}`,
    `height=${height}`,
    `top=${top}`,
    `left=${left}`,
    'scrollbars=yes',
    'resizable=yes',
    'status=no',
    'toolbar=no',
    'location=no',
    'copyhistory=no',
    'menubar=no',
    'directories=no',
  ].join(',');
}

export default Nango;
