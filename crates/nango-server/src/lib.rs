//! Nango-compatible OAuth token broker: the whole server as a library.
//!
//! `main` (in `nango-cli`) parses flags and calls [`run`]; tests build an [`AppState`] with
//! [`AppState::new`] and call [`serve`] on a listener they bound, so every test gets a real server
//! on a real port.

pub mod api;
pub mod config;
pub mod configs;
pub mod connect_sessions;
pub mod connect_ui;
pub mod connections;
pub mod credentials;
pub mod dashboard;
pub mod error;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod nango_import;
pub mod oauth;
pub mod outbound;
pub mod providers;
pub mod proxy;
pub mod secret;
pub mod server;
pub mod store;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

pub use config::{ServeArgs, Settings};

use credentials::Refresher;
use oauth::notify::WsHub;
use providers::Catalog;
use store::Store;

/// Everything a request handler needs; one shared allocation, so a clone (every middleware
/// layer and handler of every request takes one) is one reference count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What `AppState` shares.
pub struct Shared {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    /// Client for provider token endpoints (no redirects, rustls).
    pub http: reqwest::Client,
    /// The same, connecting to public addresses only (`outbound`).
    pub http_public: reqwest::Client,
    pub ws: Arc<WsHub>,
    pub refresher: Arc<Refresher>,
    pub public_rate_limit: api::guard::PublicRateLimit,
    /// Wrong secret keys per client address (REST and dashboard login).
    pub auth_failures: api::guard::AuthFailureLimit,
    pub webhook_wakeup: webhooks::Wakeup,
    pub metrics: Arc<metrics::Metrics>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("provider catalog: {0}")]
    Catalog(#[from] providers::CatalogError),
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

impl AppState {
    /// Loads the catalog, opens (and migrates) the database and builds the shared clients.
    pub async fn new(settings: Settings) -> Result<AppState, StartupError> {
        // Also here, not only when flags are read: settings built in code must not send
        // unsigned (or API-key-signed) webhooks either.
        config::check_webhook_secret(
            &settings.webhook_urls,
            settings.webhook_secret.as_ref(),
            settings.secret_key.as_ref(),
        )?;
        let catalog = Catalog::load(settings.providers_file.as_deref())?;
        catalog.log_operator_file(settings.providers_file.as_deref());
        let cipher = store::Cipher::from_base64_keys(&settings.encryption_keys)
            .map_err(store::StoreError::from)?;
        let store = store::connect(
            settings.database_url.expose(),
            Arc::new(cipher),
            settings.connection_cache_size,
        )
        .await?;
        // Refuse to start on data sealed with a key we were not given, rather than failing (or
        // worse, answering) on the first request that reads it.
        store.verify_encryption_keys().await?;
        let http = outbound::client(false)?;
        let http_public = outbound::client(true)?;
        Ok(AppState(Arc::new(Shared {
            store,
            catalog: Arc::new(catalog),
            http,
            http_public,
            ws: Arc::new(WsHub::default()),
            refresher: Arc::new(Refresher::new(settings.refresh_concurrency)),
            public_rate_limit: api::guard::PublicRateLimit::per_minute(
                settings.public_rate_limit_per_minute,
            ),
            auth_failures: api::guard::AuthFailureLimit::per_minute(
                settings.auth_failures_per_minute,
            ),
            webhook_wakeup: webhooks::Wakeup::default(),
            metrics: Arc::new(metrics::Metrics::new()),
            settings: Arc::new(settings),
        })))
    }
}

/// The REST API's routes, open and secured, with the OpenAPI document generated from the same
/// `#[utoipa::path]` annotations that give each route its path.
fn rest_api() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    let (public, mut document) =
        utoipa_axum::router::OpenApiRouter::with_openapi(api::openapi::ApiDoc::openapi())
            .merge(api::api_auth::routes())
            .merge(api::health::routes())
            .merge(api::openapi::routes())
            .merge(api::providers::routes())
            .merge(api::connect_sessions::session_routes())
            .merge(api::sdk::routes())
            .split_for_parts();
    let (secured, secured_document) = utoipa_axum::router::OpenApiRouter::default()
        .merge(api::configs::routes())
        .merge(api::connect_sessions::routes())
        .merge(api::connections::routes())
        .merge(api::current::routes())
        .merge(api::current_edits::routes())
        .merge(api::integrations::routes())
        .merge(api::metrics::routes())
        .merge(api::webhook_deliveries::routes())
        .split_for_parts();
    document.merge(secured_document);
    document.merge(proxy::ProxyDoc::openapi());
    api::openapi::document_wrong_key_limit(&mut document);
    (public, secured, document)
}

/// The OpenAPI 3.1 document of the REST API (served at `/openapi.json`).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    rest_api().2
}

/// All routes, with the body limit, and open CORS on the routes a web page calls (the frontend
/// SDKs: the OAuth flow, credential entry, the catalog, the SDK file, health, the OpenAPI
/// document) and on nothing that takes the secret key: a page in a browser must never read the
/// REST API's answers, even of a server without a key.
pub fn router(state: AppState) -> Router {
    let (public, secured, _) = rest_api();
    let require_secret_key = middleware::from_fn_with_state(state.clone(), api::require_secret_key);
    let secured = secured
        .method_not_allowed_fallback(api::method_not_allowed)
        .route_layer(require_secret_key.clone());
    let timeout = tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::GATEWAY_TIMEOUT,
        state.settings.request_timeout,
    );
    // The proxy passes the provider's answers through as they are: no CORS (which would answer
    // every OPTIONS itself; the secret key has no business in a browser anyway), no security
    // headers of ours, no body limit (bodies are streamed).
    let proxy = proxy::routes()
        .route_layer(require_secret_key)
        .layer(timeout);
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::PATCH,
            Method::POST,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request());
    let browser = Router::new()
        .merge(public)
        .merge(oauth::routes())
        .layer(cors);
    // Without a secret key, only requests naming this server (not a rebound domain) are
    // answered; with one, the key guards what matters.
    let keyless_hosts = Arc::new(
        state
            .settings
            .secret_key
            .is_none()
            .then(|| state.settings.keyless_hosts()),
    );
    Router::new()
        .merge(browser)
        .merge(dashboard::routes())
        .merge(connect_ui::routes())
        .merge(secured)
        .fallback(api::route_not_found)
        .layer(DefaultBodyLimit::max(api::BODY_LIMIT_BYTES))
        .layer(timeout)
        // Inside the rate limit: each WebSocket counts as a request of the flow.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            oauth::notify::upgrade_websockets,
        ))
        .layer(middleware::from_fn_with_state(
            state.public_rate_limit.clone(),
            api::guard::rate_limit_public,
        ))
        .layer(middleware::from_fn(api::guard::security_headers))
        .merge(proxy)
        .layer(middleware::from_fn_with_state(
            keyless_hosts,
            api::guard::check_host,
        ))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            observe_request,
        ))
        .with_state(state)
}

/// Gives each request an id (the caller's `X-Request-Id` when it is a plain token, a new one
/// otherwise), answered in `X-Request-Id` and carried by every log line of the request; counts
/// it in the metrics by route template; and logs one line per request: method, path (never the
/// query: it carries codes and states), status.
async fn observe_request(
    axum::extract::State(metrics): axum::extract::State<Arc<metrics::Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    use tracing::Instrument;
    let id = logging::request_id(request.headers());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_string();
    let path: String = request.uri().path().chars().take(200).collect();
    let span = tracing::info_span!("request", id = %id, %method, %route);
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    metrics.observe_request(method.as_str(), &route, status, took);
    span.in_scope(|| {
        tracing::debug!(
            %path,
            status,
            micros = took.as_micros() as u64,
            "request"
        )
    });
    response
}

/// Serves on `listener` until `shutdown` completes, then drains in-flight requests. Expired OAuth
/// flow states are purged in the background.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let purge_store = state.store.clone();
    let purge_limits = state.public_rate_limit.clone();
    let webhook_retention = chrono::Duration::from_std(state.settings.webhook_retention)
        .unwrap_or(chrono::Duration::MAX);
    let purge_failures = state.auth_failures.clone();
    let purger = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = purge_store
                .delete_expired_oauth_sessions(chrono::Utc::now())
                .await
            {
                tracing::warn!(error = %e, "could not purge expired OAuth flow states");
            }
            // Here, not in the webhook worker: rows stay from when URLs were configured too.
            if let Some(before) = chrono::Utc::now().checked_sub_signed(webhook_retention) {
                if let Err(e) = purge_store.prune_webhooks(before).await {
                    tracing::warn!(error = %e, "could not prune finished webhook deliveries");
                }
            }
            purge_limits.forget_idle_clients();
            purge_failures.forget_idle_clients();
        }
    });
    let proactive = tokio::spawn(credentials::proactive::run(state.clone()));
    let webhook_worker = tokio::spawn(webhooks::run_worker(state.clone()));
    let forwarder = match state.store.subscribe_ws_frames().await {
        Ok(Some(frames)) => Some(tokio::spawn(oauth::notify::forward_published_frames(
            state.ws.clone(),
            frames,
        ))),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "flow results from other replicas will not reach WebSockets here");
            None
        }
    };
    let limits = server::Limits {
        max_connections: state.settings.max_connections,
        header_read_timeout: state.settings.header_read_timeout,
        idle_timeout: state.settings.idle_timeout,
    };
    let result = server::serve(listener, router(state), limits, shutdown).await;
    purger.abort();
    proactive.abort();
    webhook_worker.abort();
    if let Some(forwarder) = forwarder {
        forwarder.abort();
    }
    result
}

/// Resolves settings from flags and environment, binds, and serves until SIGTERM or Ctrl-C.
pub async fn run(args: ServeArgs) -> Result<(), StartupError> {
    let settings = Settings::from_args(&args)?;
    settings.check_exposure()?;
    match &settings.secret_key {
        None => tracing::warn!(
            "NANGO_SECRET_KEY is not set: the /config and /connection API is open to anyone who can reach {}",
            settings.listen
        ),
        Some(key) if key.expose().chars().count() < config::SHORT_SECRET_KEY => tracing::warn!(
            "NANGO_SECRET_KEY is shorter than {} characters: it can be guessed; use a long random key (e.g. `openssl rand -hex 32`)",
            config::SHORT_SECRET_KEY
        ),
        Some(_) => {}
    }
    let listen = settings.listen;
    let port = listen.port();
    let callback_url = settings.callback_url.clone();
    let log_format = settings.log_format;
    let state = AppState::new(settings).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: listen,
            source,
        })?;
    // The line Nango printed, for a person; a log collector gets it as a log line instead.
    match log_format {
        logging::LogFormat::Text => println!(
            "✅ Nango Server is listening on port {port}. OAuth callback URL: {callback_url}"
        ),
        logging::LogFormat::Json => {
            tracing::info!(port, callback_url = %callback_url, "Nango Server is listening")
        }
    }
    serve(listener, state, shutdown_signal())
        .await
        .map_err(StartupError::Serve)?;
    tracing::info!("server stopped");
    Ok(())
}

/// `nango db:rotate-key`: re-seals every secret in the database named by the serve settings
/// with the primary (first) key of `NANGO_ENCRYPTION_KEY`, then retires the keys nothing is
/// sealed with any more. Safe while servers run on the same database (each row is swapped with
/// compare-and-set); they must already be configured with the new key list.
pub async fn rotate_encryption_key(args: ServeArgs) -> Result<store::RotationReport, StartupError> {
    let settings = Settings::from_args(&args)?;
    let cipher = store::Cipher::from_base64_keys(&settings.encryption_keys)
        .map_err(store::StoreError::from)?;
    let store = store::connect(settings.database_url.expose(), Arc::new(cipher), 0).await?;
    // Same check as at start: data sealed with a key that is not in the list cannot be re-sealed.
    store.verify_encryption_keys().await?;
    Ok(store.rotate_encryption().await?)
}

/// `nango import:nango`: checks this server's settings and opens its database (as `nango
/// serve` would with `args`), then reads the whole Nango source (a wrong source or encryption
/// key stops here, before any item is written), then imports it.
pub async fn import_from_nango(
    args: ServeArgs,
    source: nango_import::Source,
    options: nango_import::ImportOptions,
    progress: nango_import::Progress<'_>,
) -> Result<nango_import::ImportReport, nango_import::ImportError> {
    let opened = async {
        let settings = Settings::from_args(&args)?;
        let catalog = Catalog::load(settings.providers_file.as_deref())?;
        let cipher = store::Cipher::from_base64_keys(&settings.encryption_keys)
            .map_err(store::StoreError::from)?;
        let store = store::connect(settings.database_url.expose(), Arc::new(cipher), 0).await?;
        store.verify_encryption_keys().await?;
        // Measured on 10k connections: eight at a time halve a PostgreSQL import's time, and
        // quadruple a SQLite one's (one writer).
        let sqlite = settings.database_url.expose().starts_with("sqlite:");
        Ok::<_, StartupError>((catalog, store, if sqlite { 1 } else { 8 }))
    };
    let (catalog, store, in_flight) = opened.await?;
    let options = nango_import::ImportOptions {
        in_flight,
        ..options
    };
    let snapshot = source.read(progress).await?;
    nango_import::import_snapshot(
        store.as_ref(),
        &catalog,
        snapshot,
        &source.name(),
        options,
        progress,
    )
    .await
    .map_err(nango_import::ImportError::Interrupted)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
