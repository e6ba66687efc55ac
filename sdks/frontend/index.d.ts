/*!
 * nango-rs frontend SDK v0.1.0 — TypeScript declarations.
 */

/** Version of this SDK. */
export declare const VERSION: string;

/** Flow error types the server reports (Nango 0.9 plus this server's own). */
export type ServerErrorType =
  | 'missing_connection_id'
  | 'no_provider_config_key'
  | 'provider_config_err'
  | 'unknown_config_key'
  | 'url_param_err'
  | 'grant_type_err'
  | 'auth_mode_err'
  | 'callback_err'
  | 'token_err'
  | 'unknown_err'
  | 'state_err'
  | 'invalid_request'
  | 'invalid_return_to'
  | 'connect_session_err';

/** Error types raised in the browser, without a server answer. */
export type ClientErrorType =
  | 'blocked_by_browser'
  | 'window_closed'
  | 'timeout'
  | 'connection_failed'
  | 'unsupported_environment';

export type AuthErrorType = ServerErrorType | ClientErrorType | (string & {});

export interface NangoOptions {
  /** Base URL of the server, e.g. `https://nango.example.com`. Default `http://localhost:3003`. */
  host?: string;
  /** Sent as `public_key` (accepted and ignored by a self-hosted server). */
  publicKey?: string;
  /** Sent as `connect_session_token`. */
  connectSessionToken?: string;
  /** Log what the SDK does to the console. */
  debug?: boolean;
  /**
   * Extra origins allowed to post the legacy `AUTHORIZATION_*` messages (the host's origin always
   * is): only needed when the server's callback URL is on another origin.
   */
  callbackOrigins?: string[];
}

export interface AuthResult {
  providerConfigKey: string;
  connectionId: string;
}

/** The rejection of {@link Nango.auth}; also thrown by {@link Nango.handleRedirectResult}. */
export declare class NangoAuthError extends Error {
  constructor(type: string, message: string, details?: { providerConfigKey?: string; connectionId?: string });
  readonly name: 'NangoAuthError';
  type: AuthErrorType;
  message: string;
  providerConfigKey?: string;
  connectionId?: string;
  /** The same `{type, message}` in the shape `@nangohq/frontend` 0.8 rejected with. */
  error: { type: AuthErrorType; message: string };
}

export interface CommonAuthOptions {
  /** Connection config, e.g. `{subdomain: 'acme'}` for `${connectionConfig.params.subdomain}`. */
  params?: Record<string, string | number | boolean>;
}

export interface PopupAuthOptions extends CommonAuthOptions {
  mode?: 'popup';
  /** Reject with `timeout` after this long. Default 300000 (5 minutes). */
  timeoutMs?: number;
  /**
   * After the popup reads as closed (and the app's window has the focus: a popup severed by
   * the provider's Cross-Origin-Opener-Policy also reads as closed, but keeps the focus), how long
   * a result may still arrive before rejecting with `window_closed`. Default 1000.
   */
  closedGraceMs?: number;
}

export interface RedirectAuthOptions extends CommonAuthOptions {
  mode: 'redirect';
  /** Where the server sends the browser back to (its origin must be allow-listed on the server). Default: the current URL. */
  returnTo?: string;
}

/** Credentials typed into the app's own form, for API_KEY and BASIC providers (no popup). */
export type EnteredCredentials = { apiKey: string } | { username: string; password?: string };

export interface CredentialsAuthOptions {
  credentials: EnteredCredentials;
  /** Reject with `timeout` after this long. Default 30000. */
  timeoutMs?: number;
}

export declare class Nango {
  static readonly VERSION: string;
  readonly host: string;
  readonly hostBaseUrl: string;
  publicKey?: string;
  connectSessionToken?: string;
  debug: boolean;
  callbackOrigins: string[];

  /** @throws Error `Invalid URL provided for the Nango host: <host>` */
  constructor(config?: string | NangoOptions);

  /** The `/oauth/connect` URL of a flow (without `ws_client_id` / `return_to`). */
  connectUrl(providerConfigKey: string, connectionId: string, options?: CommonAuthOptions): string;

  /** Popup mode: settles with the outcome; rejects a {@link NangoAuthError}. */
  auth(providerConfigKey: string, connectionId: string, options?: PopupAuthOptions): Promise<AuthResult>;
  /** Redirect mode: navigates away; resolves once navigation started. */
  auth(providerConfigKey: string, connectionId: string, options: RedirectAuthOptions): Promise<void>;
  /**
   * API_KEY / BASIC providers: stores what the user entered (checked by the server against the
   * provider's template); rejects a {@link NangoAuthError} such as `invalid_credentials`.
   */
  auth(providerConfigKey: string, connectionId: string, options: CredentialsAuthOptions): Promise<AuthResult>;
  /**
   * Under a connect session made with an end user (`POST /connect/sessions` with `end_user`,
   * passed as `connectSessionToken`): no connection id; the server makes one and the result
   * reports it.
   */
  auth(providerConfigKey: string, options?: PopupAuthOptions | CredentialsAuthOptions): Promise<AuthResult>;

  /**
   * Reads the outcome of a redirect-mode flow: `null` when `url` (default `window.location.href`)
   * carries none, the result on success; throws a {@link NangoAuthError} on failure.
   */
  static handleRedirectResult(url?: string | URL | Location): AuthResult | null;
}

export default Nango;
