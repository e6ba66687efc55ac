// nango-rs-node: Node client of the nango-rs REST API, call-compatible with @nangohq/node@0.9.0.
// No dependencies: global fetch (Node >= 18) and AbortController.

const DEFAULT_HOST = 'http://localhost:3003';
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 2;
const DEFAULT_RETRY_DELAY_MS = 200;

/** Error types the Nango 0.9 server reported only as a message (it had no `type` field). */
const TYPES_BY_MESSAGE = new Map([
  ['Missing request body.', 'missing_body'],
  ["Missing param 'provider_config_key'.", 'missing_provider_config'],
  ['There is no Provider Configuration matching this key.', 'unknown_provider_config'],
  ["Missing param 'provider'.", 'missing_provider_template'],
  ["No Provider Template matching the 'provider' parameter.", 'unknown_provider_template'],
  ["Missing param 'oauth_client_id'.", 'missing_client_id'],
  ["Missing param 'oauth_client_secret'.", 'missing_client_secret'],
  ["Missing param 'oauth_scopes'.", 'missing_scopes'],
  ["Missing param 'connection_id'.", 'missing_connection'],
  ["No connection matching params 'connection_id' and 'provider_config_key'.", 'unkown_connection'],
  ["There is already a Provider Configuration matching the param 'provider_config_key'.", 'duplicate_provider_config'],
  ['Authentication failed. The request is missing the Authorization header.', 'missing_auth_header'],
  ['Authentication failed. The provided secret key is invalid.', 'invalid_secret_key'],
  ['An unhandled error has occured.', 'server_error'],
]);

/**
 * Every failure of this client. `status` is the HTTP status (undefined when no response came),
 * `type` the server's machine-readable error type (or `network_error`, `timeout`, ...), `body`
 * the parsed response body, and `response` mirrors the axios error shape of @nangohq/node@0.9.0
 * (`error.response.status`, `error.response.data`).
 */
export class NangoError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, type?: string, body?: unknown, cause?: unknown}} [details]
   */
  constructor(message, { status, type, body, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'NangoError';
    this.status = status;
    this.type = type;
    this.body = body;
    this.response = status === undefined ? undefined : { status, data: body };
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Base64 of the UTF-8 bytes of `text` (no Buffer, so the module has no Node-only global). */
function base64(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Longest delay setTimeout honours (longer ones fire at once). */
const MAX_DELAY_MS = 2 ** 31 - 1;

function checkNumber(name, value, fallback, { integer = false, min = 0, max = MAX_DELAY_MS } = {}) {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new TypeError(`Nango: option '${name}' must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** A key or id for a path or query: a non-empty string (numbers are accepted, as 0.9.0 did). */
function idArg(value, type, message) {
  if (typeof value === 'number' && Number.isFinite(value)) value = String(value);
  if (typeof value !== 'string' || value === '') throw new NangoError(message, { type });
  return value;
}
const configKeyArg = (key) =>
  idArg(key, 'missing_provider_config', "Missing param 'provider_config_key'.");
const connectionIdArg = (id) => idArg(id, 'missing_connection', "Missing param 'connection_id'.");

/**
 * An id as one URL path segment. `.` and `..` cannot be sent: URL parsing (fetch's included)
 * resolves them, encoded as `%2E` or not, so `/connection/..` would reach `/` instead.
 */
function pathSegment(value, param) {
  if (value === '.' || value === '..') {
    throw new NangoError(`Param '${param}' cannot be '${value}': it cannot be sent in a URL path.`, {
      type: 'invalid_request',
    });
  }
  return encodeURIComponent(value);
}

/** The JSON body of POST /config and PUT /config, from camelCase or snake_case fields. */
function configBody(config) {
  if (config === null || typeof config !== 'object') {
    throw new TypeError('Nango: the provider config must be an object');
  }
  const pick = (...names) => {
    for (const name of names) if (config[name] !== undefined) return config[name];
    return undefined;
  };
  let scopes = pick('oauthScopes', 'oauth_scopes');
  if (Array.isArray(scopes)) scopes = scopes.join(',');
  // Undefined fields are left out of the JSON, so the server reports the first missing one.
  return {
    provider_config_key: pick('providerConfigKey', 'provider_config_key', 'uniqueKey', 'unique_key'),
    provider: pick('provider'),
    oauth_client_id: pick('oauthClientId', 'oauth_client_id'),
    oauth_client_secret: pick('oauthClientSecret', 'oauth_client_secret'),
    oauth_scopes: scopes,
  };
}

export class Nango {
  #host;
  #secretKey;
  #timeoutMs;
  #retries;
  #retryDelayMs;
  #fetch;

  /**
   * @param {string | URL | {host?: string, secretKey?: string, timeoutMs?: number, retries?: number,
   *   retryDelayMs?: number, fetch?: typeof fetch}} [config]
   */
  constructor(config = {}) {
    if (typeof config === 'string' || config instanceof URL) config = { host: String(config) };
    if (config === null || typeof config !== 'object') {
      throw new TypeError('Nango: expected a host URL string or an options object');
    }
    let host = config.host || DEFAULT_HOST;
    if (typeof host !== 'string') host = String(host);
    if (host.endsWith('/')) host = host.slice(0, -1);
    let url;
    try {
      url = new URL(host);
    } catch {
      throw new NangoError(`Invalid URL provided for the Nango host: ${host}`, { type: 'invalid_host' });
    }
    // `new URL('localhost:3003')` parses (as the scheme `localhost:`) but cannot be fetched.
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new NangoError(`Invalid URL provided for the Nango host: ${host}`, { type: 'invalid_host' });
    }
    if (url.username || url.password) {
      // Not echoed: the URL holds a credential.
      throw new NangoError('Invalid URL provided for the Nango host: it contains credentials (give the secret key as secretKey)', {
        type: 'invalid_host',
      });
    }
    if (config.secretKey !== undefined && config.secretKey !== null && typeof config.secretKey !== 'string') {
      throw new TypeError('Nango: option secretKey must be a string');
    }
    if (config.fetch !== undefined && typeof config.fetch !== 'function') {
      throw new TypeError('Nango: option fetch must be a function');
    }
    if (config.fetch === undefined && typeof globalThis.fetch !== 'function') {
      throw new TypeError('Nango: no global fetch (Node.js >= 18 is required), pass one as option fetch');
    }
    this.#host = host;
    this.#secretKey = config.secretKey || '';
    this.#timeoutMs = checkNumber('timeoutMs', config.timeoutMs, DEFAULT_TIMEOUT_MS, { min: 1 });
    this.#retries = checkNumber('retries', config.retries, DEFAULT_RETRIES, { integer: true, max: 100 });
    this.#retryDelayMs = checkNumber('retryDelayMs', config.retryDelayMs, DEFAULT_RETRY_DELAY_MS);
    this.#fetch = config.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** The server's base URL, without a trailing slash. */
  get host() {
    return this.#host;
  }

  /** Same as `host` (the property name of @nangohq/node@0.9.0). */
  get serverUrl() {
    return this.#host;
  }

  // ----- connections -----

  /**
   * The connection with fresh credentials (refreshed by the server first when they expire soon,
   * or now with `forceRefresh`).
   */
  async getConnection(providerConfigKey, connectionId, options = {}) {
    const key = configKeyArg(providerConfigKey);
    const id = connectionIdArg(connectionId);
    let query = `provider_config_key=${encodeURIComponent(key)}`;
    if (options?.forceRefresh) query += '&force_refresh=true';
    return this.#request('GET', `/connection/${pathSegment(id, 'connection_id')}?${query}`, { expect: 'object' });
  }

  /** The token to call the provider's API with; its shape depends on the credentials type. */
  async getToken(providerConfigKey, connectionId, options = {}) {
    const connection = await this.getConnection(providerConfigKey, connectionId, options);
    const credentials = connection.credentials ?? {};
    switch (credentials.type) {
      case 'OAUTH2':
        return credentials.access_token;
      case 'OAUTH2_CC':
        return credentials.token ?? credentials.access_token;
      case 'OAUTH1':
        return { oAuthToken: credentials.oauth_token, oAuthTokenSecret: credentials.oauth_token_secret };
      case 'API_KEY':
        return credentials.apiKey;
      case 'BASIC':
        return { username: credentials.username, password: credentials.password };
      default:
        throw new NangoError(`Unrecognized OAuth type '${credentials.type}' in stored credentials.`, {
          type: 'unknown_credentials_type',
        });
    }
  }

  /** The provider's token response as stored (`credentials.raw`). */
  async getRawTokenResponse(providerConfigKey, connectionId, options = {}) {
    const connection = await this.getConnection(providerConfigKey, connectionId, options);
    return connection.credentials?.raw;
  }

  /** `{connections: [{connection_id, provider, created}]}` (`provider` is the config key). */
  async listConnections() {
    return this.#request('GET', '/connection', { expect: 'object' });
  }

  /** Deletes the connection; resolves to undefined (the server answers an empty 200). */
  async deleteConnection(providerConfigKey, connectionId) {
    const key = configKeyArg(providerConfigKey);
    const id = connectionIdArg(connectionId);
    const path = `/connection/${pathSegment(id, 'connection_id')}?provider_config_key=${encodeURIComponent(key)}`;
    return this.#request('DELETE', path);
  }

  /**
   * Creates (or replaces) a connection that needs no browser: an API_KEY provider's key
   * (`apiKey`), a BASIC provider's `username` and `password`, or, for an OAUTH2_CC provider,
   * nothing: the server fetches the token with the config's client credentials and renews it.
   * Resolves to the connection. Never retried.
   */
  async createConnection({ providerConfigKey, connectionId, apiKey, username, password } = {}) {
    const body = {
      provider_config_key: configKeyArg(providerConfigKey),
      connection_id: connectionIdArg(connectionId),
    };
    if (apiKey !== undefined) body.api_key = apiKey;
    if (username !== undefined) body.username = username;
    if (password !== undefined) body.password = password;
    return this.#request('POST', '/connection', { body, expect: 'object' });
  }

  // ----- provider catalog -----

  /** `{providers: [{name, display_name, auth_mode, categories, docs}]}`, optionally filtered. */
  async listProviders({ search } = {}) {
    const query = search ? `?search=${encodeURIComponent(search)}` : '';
    return this.#request('GET', `/providers${query}`, { expect: 'object' });
  }

  /** `{name, template}`: one provider's template (URLs, auth mode, connection config, quirks). */
  async getProvider(name) {
    const provider = configKeyArg(name);
    return this.#request('GET', `/providers/${pathSegment(provider, 'name')}`, { expect: 'object' });
  }

  // ----- provider configs -----

  /** `{configs: [...]}`, client secrets included. */
  async listConfigs() {
    return this.#request('GET', '/config', { expect: 'object' });
  }

  /** `{config: {...}}`. */
  async getConfig(providerConfigKey) {
    const key = configKeyArg(providerConfigKey);
    return this.#request('GET', `/config/${pathSegment(key, 'provider_config_key')}`, { expect: 'object' });
  }

  /** Creates a provider config; resolves to `{config_id}`. Never retried. */
  async createConfig(config) {
    return this.#request('POST', '/config', { body: configBody(config) });
  }

  /** Replaces a provider config's provider, client id and secret and scopes; resolves to undefined. */
  async updateConfig(config) {
    return this.#request('PUT', '/config', { body: configBody(config) });
  }

  /** Deletes a provider config (200 whether or not it existed); resolves to undefined. */
  async deleteConfig(providerConfigKey) {
    const key = configKeyArg(providerConfigKey);
    return this.#request('DELETE', `/config/${pathSegment(key, 'provider_config_key')}`);
  }

  // ----- transport -----

  #headers(hasBody) {
    const headers = { Accept: 'application/json' };
    if (hasBody) headers['Content-Type'] = 'application/json';
    if (this.#secretKey) {
      headers.Authorization = `Basic ${base64(`${this.#secretKey}:`)}`;
    }
    return headers;
  }

  /**
   * One attempt, within the timeout: `{status, text, location}` of the response (its whole body
   * read), or `{failure, timedOut}` when no complete response came.
   */
  async #attempt(url, init) {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeoutMs);
    try {
      const res = await this.#fetch(url, { ...init, signal: controller.signal });
      const text = await res.text();
      return { status: res.status, text, location: res.headers?.get?.('location') ?? undefined };
    } catch (err) {
      return { failure: err, timedOut };
    } finally {
      clearTimeout(timer);
    }
  }

  async #request(method, path, { body, expect } = {}) {
    const url = `${this.#host}${path}`;
    const init = { method, headers: this.#headers(body !== undefined), redirect: 'manual' };
    if (body !== undefined) init.body = JSON.stringify(body);
    // Only network failures and timeouts are retried, and only for idempotent methods: a POST
    // may have been applied before the connection broke. An HTTP response is never retried.
    const attempts = method === 'POST' ? 1 : this.#retries + 1;
    const what = `${method} ${path.split('?')[0]}`;

    let response;
    for (let attempt = 1; ; attempt++) {
      response = await this.#attempt(url, init);
      if (!('failure' in response)) break;
      if (attempt < attempts) {
        await sleep(this.#retryDelayMs * 2 ** (attempt - 1));
        continue;
      }
      const { failure, timedOut } = response;
      const tries = attempt === 1 ? '' : ` (${attempt} attempts)`;
      if (timedOut) {
        throw new NangoError(`The Nango server at ${this.#host} did not answer ${what} within ${this.#timeoutMs} ms${tries}.`, {
          type: 'timeout',
          cause: failure,
        });
      }
      const reason = failure?.cause?.code ?? failure?.cause?.message ?? failure?.message ?? String(failure);
      throw new NangoError(`Could not reach the Nango server at ${this.#host} (${what}): ${reason}${tries}.`, {
        type: 'network_error',
        cause: failure,
      });
    }

    const { status, text } = response;
    let data;
    let isJson = false;
    if (text !== '') {
      try {
        data = JSON.parse(text);
        isJson = true;
      } catch {
        data = text;
      }
    }

    if (status < 200 || status >= 300) {
      const serverMessage = isJson && data && typeof data.error === 'string' ? data.error : undefined;
      let type = isJson && data && typeof data.type === 'string' ? data.type : undefined;
      type ??= (serverMessage && TYPES_BY_MESSAGE.get(serverMessage)) ?? 'http_error';
      const redirect = status >= 300 && status < 400 ? `, a redirect to ${response.location} (redirects are not followed)` : '';
      throw new NangoError(serverMessage ?? `Request failed with status code ${status} (${what}${redirect}).`, {
        status,
        type,
        body: data,
      });
    }

    if (expect === 'object' && (!isJson || data === null || typeof data !== 'object' || Array.isArray(data))) {
      throw new NangoError(`The Nango server answered ${what} with status ${status} but not a JSON object; is ${this.#host} a Nango server?`, {
        status,
        type: 'invalid_response',
        body: isJson ? undefined : data,
      });
    }
    return data;
  }
}

export default Nango;
