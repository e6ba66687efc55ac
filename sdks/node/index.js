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
    // The operator's values for the template's placeholders ({hostname: 'ghe.example.com'}): the
    // only source of a template's host. Left out, an update keeps the stored ones.
    connection_config: pick('connectionConfig', 'connection_config'),
  };
}

// ----- proxy -----

const PROXY_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
/** Methods a request that got no response may be sent again with (as the other calls). */
const IDEMPOTENT_METHODS = new Set(['GET', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']);
const RESPONSE_TYPES = ['json', 'text', 'arraybuffer', 'stream'];
/** The most the server accepts in the `Retries` header. */
const MAX_PROXY_RETRIES = 10;
/** What URL parsing (fetch's included) resolves as `.` and `..` segments, encoded or not. */
const DOT_SEGMENTS = new Set(['.', '..', '%2e', '.%2e', '%2e.', '%2e%2e']);

/**
 * The path and query of `<METHOD> /proxy/<endpoint>`: `/proxy` + the endpoint (a `/` added in
 * front when it has none), its own query (if any) followed by `params`.
 */
function proxyTarget(endpoint, params) {
  if (typeof endpoint !== 'string' || endpoint === '') {
    throw new NangoError("Missing param 'endpoint'.", { type: 'missing_endpoint' });
  }
  // A `#` would end the URL (a fragment is never sent): it is data here.
  const hash = endpoint.replaceAll('#', '%23');
  const mark = hash.indexOf('?');
  let path = mark === -1 ? hash : hash.slice(0, mark);
  const ownQuery = mark === -1 ? '' : hash.slice(mark + 1);
  if (!path.startsWith('/')) path = `/${path}`;
  if (path.split('/').some((segment) => DOT_SEGMENTS.has(segment.toLowerCase()))) {
    // `/proxy/../connection` would reach the server's own `/connection`, with the secret key.
    throw new NangoError(`The endpoint '${endpoint}' cannot be sent: URL parsing resolves its '.' and '..' segments.`, {
      type: 'invalid_request',
    });
  }
  // URL parsing turns `\` into `/` in http(s) paths.
  path = path.replaceAll('\\', '%5C');
  const query = [ownQuery, queryString(params)].filter((q) => q !== '').join('&');
  return `/proxy${path}${query ? `?${query}` : ''}`;
}

/** `params` as a query string: URLSearchParams encoding, arrays as repeated keys. */
function queryString(params) {
  if (params === undefined || params === null) return '';
  if (typeof params === 'string') return params.startsWith('?') ? params.slice(1) : params;
  if (params instanceof URLSearchParams) return params.toString();
  if (typeof params !== 'object' || Array.isArray(params)) {
    throw new TypeError("Nango: option 'params' must be an object, a URLSearchParams or a query string");
  }
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null) search.append(key, String(item));
    }
  }
  return search.toString();
}

/** A key or id for a request header: printable ASCII only, no surrounding spaces. */
function headerArg(value, param) {
  if (!/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(value)) {
    throw new NangoError(`Param '${param}' cannot be sent to the proxy: it goes in a header, which carries printable ASCII only.`, {
      type: 'invalid_request',
    });
  }
  return value;
}

const isInstance = (value, name) => typeof globalThis[name] === 'function' && value instanceof globalThis[name];

/**
 * The request body: `{body, contentType, replayable}`. Strings, bytes, URLSearchParams, Blob,
 * FormData and ReadableStream go as they are; anything else is JSON.
 */
function proxyBody(data) {
  if (data === undefined || data === null) return { replayable: true };
  if (typeof data === 'string' || data instanceof ArrayBuffer || ArrayBuffer.isView(data) || isInstance(data, 'Blob') || isInstance(data, 'FormData')) {
    // fetch adds the Content-Type of strings (text/plain), Blobs (their type) and FormData.
    return { body: data, replayable: true };
  }
  if (data instanceof URLSearchParams) {
    return { body: data.toString(), contentType: 'application/x-www-form-urlencoded;charset=UTF-8', replayable: true };
  }
  if (isInstance(data, 'ReadableStream')) return { body: data, replayable: false, stream: true };
  const json = JSON.stringify(data);
  if (json === undefined) throw new TypeError(`Nango: option 'data' cannot be sent as JSON (${typeof data})`);
  return { body: json, contentType: 'application/json', replayable: true };
}

/** The request headers: the caller's prefixed with `Nango-Proxy-`, except `Content-Type`. */
function proxyHeaders(headers, out) {
  if (headers === undefined || headers === null) return undefined;
  let entries;
  if (isInstance(headers, 'Headers') || Array.isArray(headers)) entries = [...headers];
  else if (typeof headers === 'object') entries = Object.entries(headers);
  else throw new TypeError("Nango: option 'headers' must be an object, a Headers or an array of [name, value] pairs");
  let contentType;
  for (const [name, value] of entries) {
    if (value === undefined || value === null) continue;
    const plain = String(name).toLowerCase() === 'content-type';
    try {
      if (plain) out.set('Content-Type', String(value));
      else out.append(`Nango-Proxy-${name}`, String(value));
    } catch (err) {
      throw new TypeError(`Nango: header '${name}' cannot be sent: ${err.message}`);
    }
    if (plain) contentType = String(value);
  }
  return contentType;
}

/** The response headers as a plain object (lower-case names); `set-cookie` is an array. */
function headersObject(headers) {
  const out = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  const cookies = typeof headers.getSetCookie === 'function' ? headers.getSetCookie() : [];
  if (cookies.length > 0) out['set-cookie'] = cookies;
  return out;
}

const isJsonType = (contentType) => /^\s*application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType ?? '');

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

  // ----- proxy -----

  /**
   * Calls the provider's API through the server (`<method> /proxy/<endpoint>`), which adds the
   * connection's credentials. Resolves to the provider's response, `{status, statusText,
   * headers, data}`, whatever its status: a provider's 404 or 429 is returned, not thrown (and
   * so are errors of the proxy itself, e.g. a 400 `{error, type}` for an unknown connection).
   * Throws only when the arguments are wrong or no response came (network error, timeout).
   */
  async proxy(config) {
    if (config === null || typeof config !== 'object') {
      throw new TypeError('Nango: proxy takes a config object ({endpoint, providerConfigKey, connectionId, ...})');
    }
    const key = headerArg(configKeyArg(config.providerConfigKey), 'provider_config_key');
    const id = headerArg(connectionIdArg(config.connectionId), 'connection_id');
    const path = proxyTarget(config.endpoint, config.params);
    const method = typeof config.method === 'string' ? config.method.toUpperCase() : config.method ?? 'GET';
    if (!PROXY_METHODS.includes(method)) {
      throw new TypeError(`Nango: option 'method' must be one of ${PROXY_METHODS.join(', ')}, got ${String(config.method)}`);
    }
    const retries = checkNumber('retries', config.retries, undefined, { integer: true, max: MAX_PROXY_RETRIES });
    const timeoutMs = checkNumber('timeoutMs', config.timeoutMs, this.#timeoutMs, { min: 1 });
    const responseType = config.responseType;
    if (responseType !== undefined && !RESPONSE_TYPES.includes(responseType)) {
      throw new TypeError(`Nango: option 'responseType' must be one of ${RESPONSE_TYPES.join(', ')}, got ${String(responseType)}`);
    }

    const headers = new Headers();
    const callerContentType = proxyHeaders(config.headers, headers);
    headers.set('Connection-Id', id);
    headers.set('Provider-Config-Key', key);
    if (retries !== undefined) headers.set('Retries', String(retries));
    const auth = this.#authorization();
    if (auth) headers.set('Authorization', auth);
    const body = proxyBody(config.data);
    if (body.contentType && callerContentType === undefined) headers.set('Content-Type', body.contentType);

    const init = { method, headers, redirect: 'manual' };
    if (body.body !== undefined) init.body = body.body;
    // Node's fetch needs this for a stream body.
    if (body.stream) init.duplex = 'half';
    const attempts = IDEMPOTENT_METHODS.has(method) && body.replayable ? this.#retries + 1 : 1;
    const what = `${method} ${path.split('?')[0]}`;
    const read = (res) => {
      if (responseType === 'stream') return res.body;
      if (responseType === 'arraybuffer') return res.arrayBuffer();
      return res.text();
    };

    let outcome;
    for (let attempt = 1; ; attempt++) {
      outcome = await this.#attempt(`${this.#host}${path}`, init, { timeoutMs, read });
      if (!('failure' in outcome)) break;
      if (attempt < attempts) {
        await sleep(this.#retryDelayMs * 2 ** (attempt - 1));
        continue;
      }
      throw this.#unreachable(outcome, what, attempt, timeoutMs);
    }

    const { res, body: raw } = outcome;
    let data = raw;
    if (responseType === 'json') {
      try {
        data = raw === '' ? undefined : JSON.parse(raw);
      } catch {
        throw new NangoError(`The response to ${what} (status ${res.status}) is not JSON, and responseType 'json' was asked for.`, {
          status: res.status,
          type: 'invalid_response',
          body: raw,
        });
      }
    } else if (responseType === undefined && raw !== '' && isJsonType(res.headers.get('content-type'))) {
      try {
        data = JSON.parse(raw);
      } catch {
        // Labelled JSON but not: the text as it came.
      }
    }
    return { status: res.status, statusText: res.statusText, headers: headersObject(res.headers), data };
  }

  /** `proxy` with method GET. */
  async get(config) {
    return this.proxy(withMethod(config, 'GET'));
  }

  /** `proxy` with method POST. */
  async post(config) {
    return this.proxy(withMethod(config, 'POST'));
  }

  /** `proxy` with method PUT. */
  async put(config) {
    return this.proxy(withMethod(config, 'PUT'));
  }

  /** `proxy` with method PATCH. */
  async patch(config) {
    return this.proxy(withMethod(config, 'PATCH'));
  }

  /** `proxy` with method DELETE. */
  async delete(config) {
    return this.proxy(withMethod(config, 'DELETE'));
  }

  // ----- transport -----

  /** `Basic base64("<secretKey>:")`, or undefined without a secret key. */
  #authorization() {
    return this.#secretKey ? `Basic ${base64(`${this.#secretKey}:`)}` : undefined;
  }

  #headers(hasBody) {
    const headers = { Accept: 'application/json' };
    if (hasBody) headers['Content-Type'] = 'application/json';
    const auth = this.#authorization();
    if (auth) headers.Authorization = auth;
    return headers;
  }

  /**
   * One attempt, within the timeout: `{res, body}` (`body` is what `read(res)` resolved to; the
   * whole text by default), or `{failure, timedOut}` when no complete response came. The timeout
   * covers `read` too, so a returned stream is no longer under it.
   */
  async #attempt(url, init, { timeoutMs = this.#timeoutMs, read = (res) => res.text() } = {}) {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      const res = await this.#fetch(url, { ...init, signal: controller.signal });
      return { res, body: await read(res) };
    } catch (err) {
      return { failure: err, timedOut };
    } finally {
      clearTimeout(timer);
    }
  }

  /** The NangoError of a request that got no (complete) response after `attempt` tries. */
  #unreachable({ failure, timedOut }, what, attempt, timeoutMs = this.#timeoutMs) {
    const tries = attempt === 1 ? '' : ` (${attempt} attempts)`;
    if (timedOut) {
      return new NangoError(`The Nango server at ${this.#host} did not answer ${what} within ${timeoutMs} ms${tries}.`, {
        type: 'timeout',
        cause: failure,
      });
    }
    const reason = failure?.cause?.code ?? failure?.cause?.message ?? failure?.message ?? String(failure);
    return new NangoError(`Could not reach the Nango server at ${this.#host} (${what}): ${reason}${tries}.`, {
      type: 'network_error',
      cause: failure,
    });
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
      throw this.#unreachable(response, what, attempt);
    }

    const { status } = response.res;
    const text = response.body;
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
      const location = response.res.headers?.get?.('location') ?? undefined;
      const redirect = status >= 300 && status < 400 ? `, a redirect to ${location} (redirects are not followed)` : '';
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

/** The config with `method` set (the shorthands). */
function withMethod(config, method) {
  if (config === null || typeof config !== 'object') {
    throw new TypeError(`Nango: ${method.toLowerCase()} takes a config object ({endpoint, providerConfigKey, connectionId, ...})`);
  }
  return { ...config, method };
}

export default Nango;
