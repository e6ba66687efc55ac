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
 * `unknown_credentials_type`, `invalid_host`, `missing_provider_config`, `missing_connection`).
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
}

export default Nango;
