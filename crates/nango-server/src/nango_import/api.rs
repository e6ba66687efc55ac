//! Reads a Nango server through its API (0.9: `/config`, `/connection`; current: `/integrations`,
//! `/connections`) with the team's secret key, into a [`SourceSnapshot`]. Only GET requests.
//!
//! Reading a connection's credentials through the API is not side-effect free on the source: a
//! Nango server refreshes a token that is about to expire before answering (0.9: within 15
//! minutes of its expiry; current Nango likewise on `GET /connections/:id`), so an import may
//! make the source call a provider and rotate a refresh token. What is read is then the source's
//! newest credentials, which is what the import wants; nothing can ask the API for the stored
//! row without that check (only a database source avoids it).

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::{Map, Value};
use url::Url;

use super::source::{
    SourceConfig, SourceConnection, SourceError, SourceLayout, SourceSnapshot, Unreadable,
};
use crate::outbound::is_momentary_failure;
use crate::secret::Secret;
use crate::store::ImportKind;

/// Which API dialect to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    /// Current Nango if the server answers `GET /integrations` like it, else Nango 0.9.
    #[default]
    Auto,
    /// Nango 0.9: `/config`, `/connection`, the secret key as HTTP Basic user.
    V09,
    /// Current Nango: `/integrations`, `/connections`, the secret key as Bearer token.
    Current,
}

/// Connections asked for per page of current Nango's `GET /connections` (it takes 1 to 2000).
pub const PAGE_SIZE: u32 = 1000;

/// How to read; [`ApiOptions::new`] has the defaults.
#[derive(Debug, Clone, Copy)]
pub struct ApiOptions {
    pub version: ApiVersion,
    /// `limit` of each `GET /connections` page (current Nango), 1 to 2000.
    pub page_size: u32,
}

impl ApiOptions {
    pub fn new(version: ApiVersion) -> Self {
        ApiOptions {
            version,
            page_size: PAGE_SIZE,
        }
    }
}

/// Requests in flight at once for per-item reads: enough to hide latency, few enough not to
/// look like an attack to the source (or to make it refresh many tokens at once).
const IN_FLIGHT: usize = 8;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries after the first for a request that failed in passing (5xx, 429, no answer).
const RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// A `Retry-After` longer than this is not waited for whole: an import is interactive.
const LONGEST_WAIT: Duration = Duration::from_secs(10);
/// Characters of a source's error message kept in a reason (a whole HTML page helps no one).
const MESSAGE_CHARS: usize = 300;

/// Reads the configs and connections of the Nango server at `base_url` with `secret_key`;
/// `progress(done, total)` is called after each connection read.
pub async fn read_nango_api(
    base_url: &Url,
    secret_key: &str,
    version: ApiVersion,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SourceSnapshot, SourceError> {
    read_nango_api_with(base_url, secret_key, ApiOptions::new(version), progress).await
}

/// [`read_nango_api`] with every option.
pub async fn read_nango_api_with(
    base_url: &Url,
    secret_key: &str,
    options: ApiOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SourceSnapshot, SourceError> {
    let client = Client::new(base_url, secret_key)?;
    let page_size = options.page_size.clamp(1, 2000);
    match options.version {
        ApiVersion::Current => match client.probe_current().await? {
            Probe::Found(integrations) => {
                read_current(&client, integrations, page_size, progress).await
            }
            Probe::Refused(refusal) => Err(refusal),
            Probe::Other(what) => Err(SourceError::NotNango(format!(
                "{} does not answer like a current Nango server: {what}",
                client.base
            ))),
        },
        ApiVersion::V09 => match client.probe_09().await? {
            Probe::Found(configs) => read_09(&client, configs, progress).await,
            Probe::Refused(refusal) => Err(refusal),
            Probe::Other(what) => Err(SourceError::NotNango(format!(
                "{} does not answer like a Nango 0.9 server: {what}",
                client.base
            ))),
        },
        // Current first: a server that speaks both (this one) is read in the richer dialect,
        // and a 0.9 server has no `/integrations` route to confuse with it.
        ApiVersion::Auto => match client.probe_current().await? {
            Probe::Found(integrations) => {
                read_current(&client, integrations, page_size, progress).await
            }
            Probe::Refused(refusal) => Err(refusal),
            Probe::Other(current) => match client.probe_09().await? {
                Probe::Found(configs) => read_09(&client, configs, progress).await,
                Probe::Refused(refusal) => Err(refusal),
                Probe::Other(old) => Err(SourceError::NotNango(format!(
                    "{} does not answer like a Nango server (current or 0.9): {current}; {old}",
                    client.base
                ))),
            },
        },
    }
}

/// How a source's secret key is sent.
#[derive(Debug, Clone, Copy)]
enum Auth {
    /// 0.9: `Basic base64("<key>:")`; it does not accept Bearer.
    Basic,
    /// Current Nango.
    Bearer,
}

struct Client {
    http: reqwest::Client,
    /// The URL given, without user info, query or fragment: the key is in a header, and this
    /// is what messages show.
    base: Url,
    basic: HeaderValue,
    bearer: HeaderValue,
    /// Only to scrub it out of whatever a source answers.
    key: Secret<String>,
}

/// One HTTP answer, read whole.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: Vec<u8>,
}

/// What a first request found out about the server.
enum Probe {
    /// The list it answered.
    Found(Vec<Value>),
    /// The key was refused: the error to give.
    Refused(SourceError),
    /// Not this dialect: what it answered instead.
    Other(String),
}

impl Client {
    fn new(base_url: &Url, secret_key: &str) -> Result<Client, SourceError> {
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(SourceError::Invalid(format!(
                "a Nango API source is an http(s) URL, not {}",
                base_url.scheme()
            )));
        }
        let mut base = base_url.clone();
        // Both only fail for URLs without a host, refused above.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_query(None);
        base.set_fragment(None);
        let header = |value: String| {
            HeaderValue::from_str(&value)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| {
                    SourceError::Invalid(
                        "the secret key has characters an HTTP header cannot carry".into(),
                    )
                })
        };
        let basic = header(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{secret_key}:"))
        ))?;
        let bearer = header(format!("Bearer {secret_key}"))?;
        // No redirects: a redirect elsewhere should be the operator's choice of URL, not
        // followed with the key (the answer says where it points).
        let http = crate::outbound::client(false).map_err(|e| {
            SourceError::Unreachable(format!("cannot make an HTTP client: {}", root_cause(&e)))
        })?;
        Ok(Client {
            http,
            base,
            basic,
            bearer,
            key: Secret::new(secret_key.to_string()),
        })
    }

    /// The URL of `segments` under the base, each segment percent-encoded whole (a `/` or `?` in
    /// an id stays in the id).
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// GET with retries for failures in passing; `Err` is why no answer came (after retries).
    async fn get(&self, url: &Url, auth: Auth) -> Result<Answer, String> {
        let authorization = match auth {
            Auth::Basic => self.basic.clone(),
            Auth::Bearer => self.bearer.clone(),
        };
        let mut attempt = 0;
        loop {
            let sent = self
                .http
                .get(url.clone())
                .header(AUTHORIZATION, authorization.clone())
                .header(ACCEPT, "application/json")
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await;
            let (outcome, retry_after) = match sent {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let location = response
                        .headers()
                        .get(LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .map(String::from);
                    match response.bytes().await {
                        Ok(body) => (
                            Ok(Answer {
                                status,
                                location,
                                body: body.to_vec(),
                            }),
                            retry_after,
                        ),
                        Err(e) => (Err(describe(e)), None),
                    }
                }
                Err(e) => (Err(describe(e)), None),
            };
            let again = match &outcome {
                Ok(answer) => is_momentary_failure(answer.status),
                Err(_) => true,
            };
            if !again || attempt >= RETRIES {
                return outcome;
            }
            let backoff = FIRST_BACKOFF * 2u32.pow(attempt);
            let wait = retry_after.unwrap_or(backoff).min(LONGEST_WAIT);
            tracing::debug!(
                path = url.path(),
                attempt,
                "retrying a request to the Nango source"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// `GET /integrations` with Bearer: 200 with a `data` array is current Nango.
    async fn probe_current(&self) -> Result<Probe, SourceError> {
        let url = self.url(&["integrations"], &[]);
        let answer = self
            .get(&url, Auth::Bearer)
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok(self.probe(&url, answer, "data", "a list of integrations"))
    }

    /// `GET /config` with Basic: 200 with a `configs` array is Nango 0.9.
    async fn probe_09(&self) -> Result<Probe, SourceError> {
        let url = self.url(&["config"], &[]);
        let answer = self
            .get(&url, Auth::Basic)
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok(self.probe(&url, answer, "configs", "a list of provider configs"))
    }

    fn probe(&self, url: &Url, answer: Answer, field: &str, expected: &str) -> Probe {
        if is_refusal(answer.status) {
            return Probe::Refused(self.refused(url, answer.status));
        }
        if answer.status == StatusCode::OK {
            let list = serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|mut body| match body.get_mut(field).map(Value::take) {
                    Some(Value::Array(items)) => Some(items),
                    _ => None,
                });
            return match list {
                Some(items) => Probe::Found(items),
                None => Probe::Other(format!(
                    "GET {} answered 200 with something other than {expected}",
                    request_path(url)
                )),
            };
        }
        Probe::Other(self.unexpected(url, &answer))
    }

    /// A list every later step needs: any failure stops the import.
    async fn get_list(&self, url: &Url, auth: Auth) -> Result<Value, SourceError> {
        let answer = self.get(url, auth).await.map_err(|e| self.unreachable(e))?;
        self.json_list(url, answer)
    }

    fn json_list(&self, url: &Url, answer: Answer) -> Result<Value, SourceError> {
        if is_refusal(answer.status) {
            return Err(self.refused(url, answer.status));
        }
        if !answer.status.is_success() {
            let what = self.unexpected(url, &answer);
            return Err(if is_momentary_failure(answer.status) {
                SourceError::Unreachable(format!(
                    "the Nango server at {} failed: {what}",
                    self.base
                ))
            } else {
                SourceError::NotNango(format!("the Nango server at {}: {what}", self.base))
            });
        }
        serde_json::from_slice(&answer.body).map_err(|_| {
            SourceError::NotNango(format!(
                "the Nango server at {}: GET {} answered something other than JSON",
                self.base,
                request_path(url)
            ))
        })
    }

    /// A per-item read: the item's JSON, or why it cannot be had (the import goes on without
    /// it), or a refused key (which stops everything: every later read would fail too).
    async fn get_item(&self, url: &Url, auth: Auth) -> Result<Result<Value, String>, SourceError> {
        let answer = match self.get(url, auth).await {
            Ok(answer) => answer,
            Err(cause) => return Ok(Err(format!("no answer from the source: {cause}"))),
        };
        if is_refusal(answer.status) {
            return Err(self.refused(url, answer.status));
        }
        if !answer.status.is_success() {
            return Ok(Err(format!(
                "the source answered {}: {}",
                answer.status,
                self.message(&answer.body)
            )));
        }
        Ok(serde_json::from_slice(&answer.body)
            .map_err(|_| "the source answered something other than JSON".to_string()))
    }

    fn unreachable(&self, cause: String) -> SourceError {
        SourceError::Unreachable(format!(
            "cannot reach the Nango server at {}: {cause}",
            self.base
        ))
    }

    fn refused(&self, url: &Url, status: StatusCode) -> SourceError {
        SourceError::Unreachable(format!(
            "the Nango server at {} refused the secret key ({status} to GET {}); check the \
             secret key given (current Nango: the secret key of the environment to read)",
            self.base,
            request_path(url)
        ))
    }

    fn unexpected(&self, url: &Url, answer: &Answer) -> String {
        let path = request_path(url);
        if answer.status.is_redirection() {
            return format!(
                "GET {path} answered {} to {} (give the URL it points to)",
                answer.status,
                answer.location.as_deref().unwrap_or("nowhere")
            );
        }
        format!(
            "GET {path} answered {}: {}",
            answer.status,
            self.message(&answer.body)
        )
    }

    /// The source's own error message: `{"error": "..."}` (0.9), `{"error": {code, message}}`
    /// (current), else the start of the body; never the secret key, should a source echo it.
    fn message(&self, body: &[u8]) -> String {
        let text = match serde_json::from_slice::<Value>(body) {
            Ok(json) => match json.get("error") {
                Some(Value::String(message)) => message.clone(),
                Some(Value::Object(error)) => {
                    let field = |name| error.get(name).and_then(Value::as_str);
                    match (field("code"), field("message")) {
                        (Some(code), Some(message)) => format!("{code}: {message}"),
                        (Some(text), None) | (None, Some(text)) => text.to_string(),
                        (None, None) => "an error without a message".into(),
                    }
                }
                _ => "a JSON body without an error message".into(),
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let words: Vec<&str> = text.split_whitespace().collect();
                if words.is_empty() {
                    "an empty body".into()
                } else {
                    words.join(" ")
                }
            }
        };
        let mut text: String = text.chars().take(MESSAGE_CHARS).collect();
        let key = self.key.expose();
        // A very short key would also match ordinary text; such a key is not a real one.
        if key.len() >= 4 {
            text = text.replace(key.as_str(), "***");
        }
        text
    }
}

/// Reads a Nango 0.9 server, whose `GET /config` answered `configs`.
async fn read_09(
    client: &Client,
    rows: Vec<Value>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SourceSnapshot, SourceError> {
    let mut snapshot = SourceSnapshot {
        layout: SourceLayout::Api09,
        environment: None,
        configs: Vec::new(),
        connections: Vec::new(),
        unreadable: Vec::new(),
    };
    for row in rows {
        match config_09(&row) {
            Ok(config) => snapshot.configs.push(config),
            Err(unreadable) => snapshot.unreadable.push(unreadable),
        }
    }

    let url = client.url(&["connection"], &[]);
    let list = client.get_list(&url, Auth::Basic).await?;
    let Some(items) = list.get("connections").and_then(Value::as_array) else {
        return Err(SourceError::NotNango(format!(
            "the Nango server at {}: GET /connection answered no list of connections",
            client.base
        )));
    };
    let mut listed = Vec::new();
    for item in items {
        // 0.7.8 to 0.8.3 spelt it `conection_id`; 0.9 lists the config key as `provider`
        // (later servers add `provider_config_key` and put the template name there).
        let id = string(item, "connection_id").or_else(|| string(item, "conection_id"));
        let key = string(item, "provider_config_key").or_else(|| string(item, "provider"));
        match (key, id) {
            (Some(key), Some(id)) => listed.push((key, id)),
            (key, id) => snapshot
                .unreadable
                .push(unlisted(key.unwrap_or_default(), id.unwrap_or_default())),
        }
    }

    let read = read_each(listed, progress, |key, id| async move {
        let url = client.url(&["connection", &id], &[("provider_config_key", &key)]);
        let row = match client.get_item(&url, Auth::Basic).await? {
            Ok(row) => row,
            Err(reason) => return Ok(Err(unreadable_connection(&key, &id, reason))),
        };
        Ok(connection(&key, &id, &row, false))
    })
    .await?;
    take_connections(&mut snapshot, read);
    Ok(snapshot)
}

/// Connections read go into the snapshot, those that could not be into its unreadable items.
fn take_connections(
    snapshot: &mut SourceSnapshot,
    read: Vec<Result<SourceConnection, Unreadable>>,
) {
    for item in read {
        match item {
            Ok(connection) => snapshot.connections.push(connection),
            Err(unreadable) => snapshot.unreadable.push(unreadable),
        }
    }
}

/// Reads a current Nango server, whose `GET /integrations` answered `data`.
async fn read_current(
    client: &Client,
    integrations: Vec<Value>,
    page_size: u32,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SourceSnapshot, SourceError> {
    let mut snapshot = SourceSnapshot {
        layout: SourceLayout::ApiCurrent,
        // The API does not say which environment the key belongs to.
        environment: None,
        configs: Vec::new(),
        connections: Vec::new(),
        unreadable: Vec::new(),
    };

    // The list has no secrets: each integration's OAuth app is one more request.
    let keys: Vec<String> = integrations
        .iter()
        .filter_map(|i| string(i, "unique_key"))
        .collect();
    let configs = in_order(
        futures::stream::iter(keys.into_iter().enumerate().map(|(index, key)| async move {
            let url = client.url(&["integrations", &key], &[("include", "credentials")]);
            let read = match client.get_item(&url, Auth::Bearer).await? {
                Ok(mut body) => config_current(&key, body.get_mut("data").map(Value::take)),
                Err(reason) => Err(unreadable_config(&key, reason)),
            };
            Ok::<_, SourceError>((index, read))
        }))
        .buffer_unordered(IN_FLIGHT),
        |_| {},
    )
    .await?;
    for config in configs {
        match config {
            Ok(config) => snapshot.configs.push(config),
            Err(unreadable) => snapshot.unreadable.push(unreadable),
        }
    }

    let (listed, unlisted_items) = list_connections_current(client, page_size).await?;
    snapshot.unreadable.extend(unlisted_items);
    let read = read_each(listed, progress, |key, id| async move {
        // `refresh_token=true`: without it current Nango leaves the refresh token out.
        let url = client.url(
            &["connections", &id],
            &[("provider_config_key", &key), ("refresh_token", "true")],
        );
        let body = match client.get_item(&url, Auth::Bearer).await? {
            Ok(body) => body,
            Err(reason) => return Ok(Err(unreadable_connection(&key, &id, reason))),
        };
        Ok(connection(&key, &id, &body, true))
    })
    .await?;
    take_connections(&mut snapshot, read);
    Ok(snapshot)
}

/// Every page of `GET /connections`: `(key, id)` of each connection, and the items that name
/// none. Pages are offsets, so a connection created or deleted meanwhile can shift one into
/// the next page twice (kept once) or out of sight (read by the next import).
async fn list_connections_current(
    client: &Client,
    page_size: u32,
) -> Result<(Vec<(String, String)>, Vec<Unreadable>), SourceError> {
    let mut seen = HashSet::new();
    let mut listed = Vec::new();
    let mut unlisted_items = Vec::new();
    let limit = page_size.to_string();
    let mut page: u32 = 0;
    loop {
        let page_text = page.to_string();
        let url = client.url(&["connections"], &[("limit", &limit), ("page", &page_text)]);
        let answer = client
            .get(&url, Auth::Bearer)
            .await
            .map_err(|e| client.unreachable(e))?;
        let body = if page == 0 && answer.status == StatusCode::BAD_REQUEST {
            // A version without paging refuses the parameters it does not know: all at once.
            client
                .get_list(&client.url(&["connections"], &[]), Auth::Bearer)
                .await?
        } else {
            client.json_list(&url, answer)?
        };
        let Some(items) = body.get("connections").and_then(Value::as_array) else {
            return Err(SourceError::NotNango(format!(
                "the Nango server at {}: GET /connections answered no list of connections",
                client.base
            )));
        };
        let mut new = 0;
        for item in items {
            match (
                string(item, "provider_config_key"),
                string(item, "connection_id"),
            ) {
                (Some(key), Some(id)) => {
                    if seen.insert((key.clone(), id.clone())) {
                        listed.push((key, id));
                        new += 1;
                    }
                }
                (key, id) => {
                    unlisted_items.push(unlisted(key.unwrap_or_default(), id.unwrap_or_default()))
                }
            }
        }
        // A short page is the last; so is a longer one or one with nothing new (a server that
        // ignores paging answers everything every time).
        if items.len() != page_size as usize || new == 0 || page == u32::MAX {
            break;
        }
        page += 1;
    }
    Ok((listed, unlisted_items))
}

/// Reads each listed connection with `read`, [`IN_FLIGHT`] at a time, reporting progress;
/// the results in the order listed.
async fn read_each<F, Fut>(
    listed: Vec<(String, String)>,
    progress: &(dyn Fn(usize, usize) + Sync),
    read: F,
) -> Result<Vec<Result<SourceConnection, Unreadable>>, SourceError>
where
    F: Fn(String, String) -> Fut,
    Fut: std::future::Future<Output = Result<Result<SourceConnection, Unreadable>, SourceError>>,
{
    let total = listed.len();
    let mut done = 0;
    let read = &read;
    in_order(
        futures::stream::iter(listed.into_iter().enumerate().map(|(index, (key, id))| {
            async move {
                if id == "." || id == ".." {
                    // URL parsers resolve such a path segment, even percent-encoded: the request
                    // would reach another route.
                    let reason = "a connection id of '.' or '..' cannot be read over HTTP".into();
                    return Ok((index, Err(unreadable_connection(&key, &id, reason))));
                }
                Ok((index, read(key, id).await?))
            }
        }))
        .buffer_unordered(IN_FLIGHT),
        |_| {
            done += 1;
            progress(done, total);
        },
    )
    .await
}

/// Drains a stream of `(index, item)`, calling `each` per item; the items by index.
async fn in_order<T>(
    stream: impl futures::Stream<Item = Result<(usize, T), SourceError>>,
    mut each: impl FnMut(&T),
) -> Result<Vec<T>, SourceError> {
    futures::pin_mut!(stream);
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        let (index, item) = item?;
        each(&item);
        items.push((index, item));
    }
    items.sort_by_key(|(index, _)| *index);
    Ok(items.into_iter().map(|(_, item)| item).collect())
}

fn config_09(row: &Value) -> Result<SourceConfig, Unreadable> {
    let Some(key) = string(row, "unique_key") else {
        return Err(unreadable_config("", "a config row without a key".into()));
    };
    let Some(provider) = string(row, "provider") else {
        return Err(unreadable_config(
            &key,
            "no provider (template) named".into(),
        ));
    };
    Ok(SourceConfig {
        provider,
        client_id: string(row, "oauth_client_id").unwrap_or_default(),
        client_secret: string(row, "oauth_client_secret").unwrap_or_default(),
        scopes: string(row, "oauth_scopes").unwrap_or_default(),
        display_name: None,
        unique_key: key,
    })
}

/// An `ApiPublicIntegration` with `credentials` (`null` for an integration without an OAuth
/// app: API key or Basic providers, whose end users bring the credentials).
fn config_current(key: &str, data: Option<Value>) -> Result<SourceConfig, Unreadable> {
    let Some(data) = data.filter(Value::is_object) else {
        return Err(unreadable_config(
            key,
            "the source answered no integration".into(),
        ));
    };
    let Some(provider) = string(&data, "provider") else {
        return Err(unreadable_config(
            key,
            "no provider (template) named".into(),
        ));
    };
    let credentials = data.get("credentials").filter(|c| c.is_object());
    let field = |name| {
        credentials
            .and_then(|c| string(c, name))
            .unwrap_or_default()
    };
    // A string in some versions, a list in others; stored comma-separated as the databases do.
    let scopes = match credentials.and_then(|c| c.get("scopes")) {
        Some(Value::String(scopes)) => scopes.clone(),
        Some(Value::Array(scopes)) => scopes
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    Ok(SourceConfig {
        unique_key: key.to_string(),
        provider,
        client_id: field("client_id"),
        client_secret: field("client_secret"),
        scopes,
        display_name: string(&data, "display_name").filter(|n| !n.is_empty()),
    })
}

/// A connection's full JSON (0.9's row, or current Nango's `ApiPublicConnectionFull`), for the
/// `(key, id)` it was asked for.
fn connection(
    key: &str,
    id: &str,
    body: &Value,
    current: bool,
) -> Result<SourceConnection, Unreadable> {
    let credentials = match body.get("credentials") {
        Some(credentials @ Value::Object(_)) => credentials.clone(),
        _ => {
            return Err(unreadable_connection(
                key,
                id,
                "the source answered no credentials".into(),
            ))
        }
    };
    let object = |name| match body.get(name) {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    Ok(SourceConnection {
        provider_config_key: key.to_string(),
        connection_id: id.to_string(),
        credentials,
        connection_config: object("connection_config"),
        metadata: object("metadata"),
        end_user: if current {
            body.get("end_user").and_then(end_user)
        } else {
            None
        },
        tags: object("tags"),
        created_at: time(body, "created_at"),
        updated_at: time(body, "updated_at"),
        // The API does not say when the source last refreshed.
        last_refreshed_at: None,
    })
}

/// Current Nango's end user in this server's shape (the same keys), nulls left out; none
/// without an id.
fn end_user(user: &Value) -> Option<Map<String, Value>> {
    let id = string(user, "id").filter(|id| !id.is_empty())?;
    let mut mapped = Map::new();
    mapped.insert("id".into(), Value::String(id));
    for name in ["email", "display_name"] {
        if let Some(value) = string(user, name) {
            mapped.insert(name.into(), Value::String(value));
        }
    }
    if let Some(tags @ Value::Object(_)) = user.get("tags") {
        mapped.insert("tags".into(), tags.clone());
    }
    if let Some(organization) = user.get("organization") {
        if let Some(org_id) = string(organization, "id").filter(|id| !id.is_empty()) {
            let mut org = Map::new();
            org.insert("id".into(), Value::String(org_id));
            if let Some(name) = string(organization, "display_name") {
                org.insert("display_name".into(), Value::String(name));
            }
            mapped.insert("organization".into(), Value::Object(org));
        }
    }
    Some(mapped)
}

fn unreadable_config(key: &str, reason: String) -> Unreadable {
    Unreadable {
        kind: ImportKind::Config,
        provider_config_key: key.to_string(),
        connection_id: String::new(),
        reason,
    }
}

fn unreadable_connection(key: &str, id: &str, reason: String) -> Unreadable {
    Unreadable {
        kind: ImportKind::Connection,
        provider_config_key: key.to_string(),
        connection_id: id.to_string(),
        reason,
    }
}

fn unlisted(key: String, id: String) -> Unreadable {
    Unreadable {
        kind: ImportKind::Connection,
        provider_config_key: key,
        connection_id: id,
        reason: "listed without a connection id or provider config key".into(),
    }
}

fn string(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).map(String::from)
}

fn time(value: &Value, name: &str) -> Option<DateTime<Utc>> {
    let text = value.get(name)?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn is_refusal(status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
}

/// Path and query of a request, for messages (ids and keys only: the key is in a header).
fn request_path(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// Why a request got no answer, without its URL (messages name the server once).
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", REQUEST_TIMEOUT.as_secs());
    }
    root_cause(&error.without_url())
}

/// The innermost cause (`Connection refused (os error 111)`, a DNS failure), which says more
/// than the wrappers around it.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}
