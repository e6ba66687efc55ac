// Type declarations of nango-rs-node (hand-written; index.js is the implementation).

export interface NangoOptions {
  /** Base URL of the server. Default `http://localhost:3003`; one trailing `/` is removed. */
  host?: string;
  /** The server's NANGO_SECRET_KEY, sent as HTTP Basic `<secretKey>:`. Empty or absent: no auth header. */
  secretKey?: string;
  /** Per-attempt timeout in milliseconds (connect, headers and body). Default 30000. */
  timeoutMs?: number;
  /** Retries after a network error or timeout, for GET, PUT and DELETE only. Default 2. */
  retries?: number;
  /** Delay before the first retry; doubled before each next one. Default 200 ms. */
  retryDelayMs?: number;
  /** A fetch implementation to use instead of the global `fetch`. */
  fetch?: typeof fetch;
}

export interface GetConnectionOptions {
  /** Refresh the credentials now, whatever their expiry (`force_refresh=true`). */
  forceRefresh?: boolean;
}

export interface OAuth2Credentials {
  type: 'OAUTH2';
  access_token: string;
  refresh_token?: string;
  /** ISO 8601 with milliseconds; absent when the provider gave no lifetime. */
  expires_at?: string;
  raw: Record<string, unknown>;
}

export interface OAuth2ClientCredentials {
  type: 'OAUTH2_CC';
  token: string;
  expires_at?: string;
  raw: Record<string, unknown>;
}

export interface OAuth1Credentials {
  type: 'OAUTH1';
  oauth_token: string;
  oauth_token_secret: string;
  raw: Record<string, unknown>;
}

export interface ApiKeyCredentials {
  type: 'API_KEY';
  apiKey: string;
}

export interface BasicCredentials {
  type: 'BASIC';
  username: string;
  password: string;
}

export type Credentials =
  | OAuth2Credentials
  | OAuth2ClientCredentials
  | OAuth1Credentials
  | ApiKeyCredentials
  | BasicCredentials;

/** The body of `GET /connection/:connectionId`. */
export interface Connection {
  id: number;
  created_at: string;
  updated_at: string;
  provider_config_key: string;
  connection_id: string;
  credentials: Credentials;
  connection_config: Record<string, unknown>;
  account_id: number;
  metadata: Record<string, unknown> | null;
}

export interface ConnectionSummary {
  connection_id: string;
  /** The provider config key (the name Nango 0.9 used). */
  provider: string;
  /** ISO 8601 with milliseconds. */
  created: string;
}

export interface ConnectionList {
  connections: ConnectionSummary[];
}

/** A provider config as the server returns it (client secret included). */
export interface ProviderConfig {
  id: number;
  created_at: string;
  updated_at: string;
  /** The provider config key. */
  unique_key: string;
  /** The provider template's name in the catalog. */
  provider: string;
  oauth_client_id: string;
  oauth_client_secret: string;
  /** Comma-separated. */
  oauth_scopes: string;
  account_id: number;
  /** The operator's values for the template's placeholders (`{hostname: 'ghe.example.com'}`). */
  connection_config?: Record<string, string>;
}

export interface ConfigList {
  configs: ProviderConfig[];
}

export interface ConfigEnvelope {
  config: ProviderConfig;
}

/**
 * The fields of `createConfig` and `updateConfig`. The snake_case names of the REST body are
 * accepted too (`provider_config_key`, `oauth_client_id`, ...).
 */
export interface ProviderConfigInput {
  providerConfigKey?: string;
  provider?: string;
  oauthClientId?: string;
  oauthClientSecret?: string;
  /** An array, or a comma (or space) separated string. */
  oauthScopes?: string[] | string;
  provider_config_key?: string;
  unique_key?: string;
  oauth_client_id?: string;
  oauth_client_secret?: string;
  oauth_scopes?: string[] | string;
  /**
   * Values for the template's placeholders, by name (`{hostname: 'ghe.example.com'}` for
   * github-enterprise). A placeholder that chooses the host takes its value only from here, never
   * from the browser. Left out on `updateConfig`, the stored values are kept.
   */
  connectionConfig?: Record<string, string>;
  connection_config?: Record<string, string>;
}

export interface ConfigCreated {
  config_id: number;
}

export interface OAuth1Token {
  oAuthToken: string;
  oAuthTokenSecret: string;
}

export interface BasicToken {
  username: string;
  password: string;
}

/** What `getToken` returns: a string for OAUTH2, OAUTH2_CC and API_KEY. */
export type Token = string | OAuth1Token | BasicToken;

/**
 * Every error of this client. Known `type`s: the server's (`unkown_connection` (sic),
 * `unknown_provider_config`, `invalid_secret_key`, `missing_auth_header`, `not_refreshable`, ...)
 * and the client's own (`network_error`, `timeout`, `invalid_response`, `http_error`,
 * `unknown_credentials_type`, `invalid_host`, `invalid_request`, `missing_provider_config`,
 * `missing_connection`, `missing_endpoint`).
 */
export class NangoError extends Error {
  constructor(message: string, details?: { status?: number; type?: string; body?: unknown; cause?: unknown });
  readonly name: 'NangoError';
  /** HTTP status; undefined when no response was received. */
  status: number | undefined;
  type: string | undefined;
  /** Parsed response body (`{error, type}` for server errors). */
  body: unknown;
  /** The axios error shape @nangohq/node@0.9.0 threw; undefined when no response was received. */
  response: { status: number; data: unknown } | undefined;
}

/** `createConnection`: the fields for the provider's auth mode (none for OAUTH2_CC). */
export interface NewConnectionInput {
  providerConfigKey: string;
  connectionId: string;
  /** API_KEY providers. */
  apiKey?: string;
  /** BASIC providers. */
  username?: string;
  password?: string;
}

export interface ProviderSummary {
  name: string;
  display_name: string | null;
  auth_mode: 'OAUTH2' | 'OAUTH1' | 'OAUTH2_CC' | 'API_KEY' | 'BASIC';
  categories: string[];
  docs: string | null;
}

export interface ProviderList {
  providers: ProviderSummary[];
}

export interface ProviderDetail {
  name: string;
  /** The whole template: URLs, parameters, quirks, `connection_config`, `api_key`, ... */
  template: Record<string, unknown> & { auth_mode: ProviderSummary['auth_mode'] };
}

export type ProxyMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS';

/**
 * How `proxy` reads the response body into `data`. Default: parsed JSON when the response's
 * `Content-Type` is JSON (`application/json`, `application/*+json`) and the body parses, else the
 * text (`''` for an empty body).
 */
export type ProxyResponseType =
  /** Parsed JSON (`undefined` for an empty body); a body that is not JSON throws `invalid_response`. */
  | 'json'
  /** The body as text. */
  | 'text'
  /** The body as an ArrayBuffer. */
  | 'arraybuffer'
  /**
   * The body unread: fetch's `ReadableStream` (null when there is none), so a large download is
   * not buffered. Read or cancel it. `Readable.fromWeb(data)` makes it a Node stream.
   */
  | 'stream';

/** The arguments of `proxy` (and, without `method`, of `get`, `post`, `put`, `patch`, `delete`). */
export interface ProxyConfig {
  /** Default `GET`; case-insensitive. */
  method?: ProxyMethod | Lowercase<ProxyMethod>;
  /**
   * The provider API's path, joined to the template's `base_api_url` by the server (`/user/repos`;
   * a `/` is added in front when missing). It may carry a query string; `params` are appended to it.
   * `.` and `..` segments are refused (`invalid_request`).
   */
  endpoint: string;
  providerConfigKey: string;
  /** Sent in a header: printable ASCII only (`invalid_request` otherwise). */
  connectionId: string;
  /** Query parameters (URLSearchParams encoding; an array value repeats the key; null/undefined skipped). */
  params?:
    | string
    | URLSearchParams
    | Record<string, string | number | boolean | null | undefined | ReadonlyArray<string | number | boolean>>;
  /**
   * The request body. Strings, ArrayBuffers and typed arrays (Buffers), Blobs, FormData and
   * ReadableStreams are sent as they are (fetch gives strings `text/plain;charset=UTF-8`);
   * URLSearchParams as `application/x-www-form-urlencoded`; anything else as JSON
   * (`application/json`). A `Content-Type` in `headers` wins.
   */
  data?: unknown;
  /**
   * Headers for the provider, sent as `Nango-Proxy-<Name>` (the server forwards them as
   * `<Name>`), except `Content-Type`, which is sent as it is.
   */
  headers?: Record<string, string | number | null | undefined> | Headers | Array<[string, string]>;
  /**
   * How many times the server may retry the provider call on a 429 or 5xx (the `Retries`
   * header, 0 to 10). Absent: the server's default (0 for POST and PATCH, a few for idempotent
   * methods). Not the client's own `retries` option, which is about reaching the Nango server.
   */
  retries?: number;
  responseType?: ProxyResponseType;
  /**
   * Time limit of one attempt, in ms; default the client's `timeoutMs`. It covers reading the
   * body, except with `responseType: 'stream'` (only until the response headers).
   */
  timeoutMs?: number;
}

/** `get`, `post`, `put`, `patch` and `delete` set the method themselves. */
export type ProxyShorthandConfig = Omit<ProxyConfig, 'method'>;

/** The provider's response, as the server passed it on (whatever its status). */
export interface ProxyResponse<T = any> {
  status: number;
  statusText: string;
  /** Lower-case names; `set-cookie`, when present, is an array. */
  headers: Record<string, string> & { 'set-cookie'?: string[] };
  /** The body, as `responseType` says. */
  data: T;
}

export class Nango {
  constructor(config?: string | URL | NangoOptions);
  /** Base URL of the server, without a trailing slash. */
  readonly host: string;
  /** Same as `host`. */
  readonly serverUrl: string;

  getConnection(providerConfigKey: string, connectionId: string, options?: GetConnectionOptions): Promise<Connection>;
  /**
   * The token to authenticate API calls with: a string for OAUTH2 (`access_token`), OAUTH2_CC and
   * API_KEY, an {@link OAuth1Token} for OAUTH1, a {@link BasicToken} for BASIC. Typed `any`, as in
   * @nangohq/node@0.9.0, so `const token: string = await nango.getToken(...)` compiles; see {@link Token}.
   */
  getToken(providerConfigKey: string, connectionId: string, options?: GetConnectionOptions): Promise<any>;
  getRawTokenResponse(
    providerConfigKey: string,
    connectionId: string,
    options?: GetConnectionOptions,
  ): Promise<Record<string, unknown> | undefined>;
  listConnections(): Promise<ConnectionList>;
  deleteConnection(providerConfigKey: string, connectionId: string): Promise<void>;
  /**
   * Creates or replaces a connection without a browser flow: API_KEY (`apiKey`), BASIC
   * (`username`, `password`) or OAUTH2_CC (the server fetches the token). Never retried.
   */
  createConnection(connection: NewConnectionInput): Promise<Connection>;

  /** The provider catalog, optionally filtered by name, display name or category. */
  listProviders(options?: { search?: string }): Promise<ProviderList>;
  getProvider(name: string): Promise<ProviderDetail>;

  listConfigs(): Promise<ConfigList>;
  getConfig(providerConfigKey: string): Promise<ConfigEnvelope>;
  createConfig(config: ProviderConfigInput): Promise<ConfigCreated>;
  updateConfig(config: ProviderConfigInput): Promise<void>;
  deleteConfig(providerConfigKey: string): Promise<void>;

  /**
   * Calls the provider's API through the server (`<METHOD> /proxy/<endpoint>`), which adds the
   * connection's credentials (e.g. `Authorization: Bearer <access token>`).
   *
   * Resolves to the response whatever its HTTP status: check `status`. A provider's 404 or 429
   * is returned, not thrown, and so is an error of the proxy itself (a 4xx/5xx whose `data` is
   * `{error, type}`, e.g. an unknown connection or a wrong secret key). Rejects with a
   * `NangoError` only when the arguments are wrong (nothing sent), when no response came
   * (`network_error`, `timeout`), or when `responseType: 'json'` meets a body that is not JSON
   * (`invalid_response`). Bad option values reject with a `TypeError`.
   */
  proxy(config: ProxyConfig & { responseType: 'stream' }): Promise<ProxyResponse<ReadableStream<Uint8Array> | null>>;
  proxy(config: ProxyConfig & { responseType: 'arraybuffer' }): Promise<ProxyResponse<ArrayBuffer>>;
  proxy(config: ProxyConfig & { responseType: 'text' }): Promise<ProxyResponse<string>>;
  proxy<T = any>(config: ProxyConfig): Promise<ProxyResponse<T>>;
  /** `proxy` with method GET. */
  get<T = any>(config: ProxyShorthandConfig): Promise<ProxyResponse<T>>;
  /** `proxy` with method POST. */
  post<T = any>(config: ProxyShorthandConfig): Promise<ProxyResponse<T>>;
  /** `proxy` with method PUT. */
  put<T = any>(config: ProxyShorthandConfig): Promise<ProxyResponse<T>>;
  /** `proxy` with method PATCH. */
  patch<T = any>(config: ProxyShorthandConfig): Promise<ProxyResponse<T>>;
  /** `proxy` with method DELETE. */
  delete<T = any>(config: ProxyShorthandConfig): Promise<ProxyResponse<T>>;
}

export default Nango;
