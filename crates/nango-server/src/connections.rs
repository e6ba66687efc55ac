//! Connection operations every front door shares (REST in both dialects, the end user's
//! credential forms, the dashboard): credentials entered, fetched or imported, checked and
//! stored; deletion with its webhook.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::configs::config_and_template;
use crate::connect_sessions::{grant_flow, redeem, use_up};
use crate::credentials::{
    fetch_client_credentials, iso_millis, verify_credentials, ApiKeyCredentials, BasicCredentials,
    ClientCredentials, Credentials, FreshError, OAuth1Credentials, OAuth2Credentials, VerifyError,
};
use crate::error::ApiError;
use crate::providers::{
    settle_connection_config, AuthMode, ProviderTemplate, ValueSource, PARAMS_PREFIX,
};
use crate::store::{Connection, ConnectionFields, Owner, ProviderConfig};
use crate::webhooks::{self, EventKind};
use crate::AppState;

/// Keys, usernames and passwords longer than this are refused (no provider issues such keys).
const MAX_SECRET_LEN: usize = 4096;

/// What the end user (or the backend) entered.
#[derive(Debug, Default)]
pub struct EnteredCredentials {
    pub api_key: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// A string field of a JSON body (absent or null: not given).
pub fn optional_string(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::InvalidRequest(format!(
            "Param '{name}' must be a string."
        ))),
    }
}

/// Checks entered credentials against the template (present, within limits, matching its
/// documented format) and turns them into what is stored.
pub fn validated_credentials(
    template: &ProviderTemplate,
    entered: EnteredCredentials,
) -> Result<Credentials, ApiError> {
    let invalid = |message: String| ApiError::InvalidCredentials(message);
    let check = |name: &str, value: &str, pattern: Option<&String>| -> Result<(), ApiError> {
        if value.len() > MAX_SECRET_LEN {
            return Err(invalid(format!(
                "'{name}' is too long (at most {MAX_SECRET_LEN} bytes)."
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid(format!(
                "'{name}' must not contain control characters."
            )));
        }
        if let Some(pattern) = pattern {
            // Validated when the catalog loaded; anchored so the whole value must match.
            let matches = regex::Regex::new(&format!("^(?:{pattern})$"))
                .map(|re| re.is_match(value))
                .unwrap_or(false);
            if !matches {
                return Err(invalid(format!(
                    "'{name}' does not have the provider's format."
                )));
            }
        }
        Ok(())
    };
    match template.auth_mode {
        AuthMode::ApiKey => {
            let api_key = entered
                .api_key
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| invalid("An API key is required.".into()))?;
            let scheme = template.api_key.clone().unwrap_or_default();
            check("apiKey", &api_key, scheme.pattern.as_ref())?;
            Ok(Credentials::ApiKey(ApiKeyCredentials { api_key }))
        }
        AuthMode::Basic => {
            let scheme = template.basic.clone().unwrap_or_default();
            let username = entered
                .username
                .filter(|u| !u.is_empty())
                .ok_or_else(|| invalid("A username is required.".into()))?;
            check("username", &username, scheme.username_pattern.as_ref())?;
            let password = entered.password.unwrap_or_default();
            if scheme.password_required && password.is_empty() {
                return Err(invalid("A password is required.".into()));
            }
            check("password", &password, None)?;
            Ok(Credentials::Basic(BasicCredentials { username, password }))
        }
        other => Err(ApiError::WrongAuthMode {
            mode: other.as_str(),
        }),
    }
}

/// The connection config a direct connection keeps: `given` settled with the provider config's
/// values (a host only from those, or from a template's own choices) and checked against the
/// template's patterns.
pub fn checked_connection_config(
    template: &ProviderTemplate,
    config: &ProviderConfig,
    given: &Map<String, Value>,
    source: ValueSource,
) -> Result<Map<String, Value>, ApiError> {
    let settled = settle_connection_config(template, &config.connection_config, given, source)
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    template
        .check_connection_values(&settled)
        .map_err(ApiError::InvalidRequest)?;
    Ok(settled)
}

/// Creates or replaces a connection whose credentials need no browser: entered ones for API_KEY
/// and BASIC, a token fetched now for OAUTH2_CC.
pub async fn store_direct_connection(
    state: &AppState,
    key: &str,
    connection_id: &str,
    entered: EnteredCredentials,
    given_config: Map<String, Value>,
) -> Result<Connection, ApiError> {
    let (config, template) = config_and_template(state, key).await?;
    // The backend is trusted with a connection's values, not with a host: that stays the
    // operator's (the provider config's), as for stored values.
    let connection_config =
        checked_connection_config(template, &config, &given_config, ValueSource::Stored)?;
    let credentials = match template.auth_mode {
        AuthMode::OAuth2ClientCredentials => Credentials::OAuth2ClientCredentials(
            fetch_client_credentials(state, &config, &connection_config)
                .await
                .map_err(|e| match e {
                    FreshError::Rejected(error) => ApiError::ClientCredentialsRejected { error },
                    FreshError::Unavailable(reason) => ApiError::ProviderUnavailable { reason },
                    other => ApiError::from(other),
                })?,
        ),
        _ => validated_credentials(template, entered)?,
    };
    store_connection(
        state,
        template,
        ConnectionFields {
            provider_config_key: key.to_string(),
            connection_id: connection_id.to_string(),
            credentials,
            connection_config,
            metadata: Map::new(),
            obtained_at: Utc::now(),
            owner: None,
        },
    )
    .await
}

/// Creates or replaces the connection with these credentials.
pub async fn store_connection(
    state: &AppState,
    template: &ProviderTemplate,
    fields: ConnectionFields,
) -> Result<Connection, ApiError> {
    let connection = state.store.upsert_connection(&fields).await?;
    tracing::info!(
        provider_config_key = %fields.provider_config_key,
        connection_id = %fields.connection_id,
        auth_mode = template.auth_mode.as_str(),
        "connection stored"
    );
    crate::webhooks::connection_stored(state, &connection).await;
    Ok(connection)
}

/// The end user's API key or username and password for a connection (the frontend's credential
/// forms): checked against the template, verified with the provider, then the connect session
/// (if any) is used up and the connection stored. Under a session of current Nango's kind the
/// server names the connection (`connection_id` must then be `None`); otherwise the caller does.
pub async fn enter_credentials(
    state: &AppState,
    key: &str,
    connection_id: Option<&str>,
    mode: AuthMode,
    entered: EnteredCredentials,
    mut given: Map<String, Value>,
    token: Option<&str>,
) -> Result<Connection, ApiError> {
    let grant = grant_flow(state, token, key, connection_id).await?;
    let connection_id = match (&grant, connection_id) {
        (Some(grant), _) => grant.connection_id.clone(),
        (None, Some(id)) => id.to_string(),
        (None, None) => return Err(ApiError::MissingConnection),
    };
    if let Some(grant) = &grant {
        for (name, value) in grant.defaults.connection_config.iter().flatten() {
            given.insert(
                format!("{PARAMS_PREFIX}{name}"),
                Value::String(value.clone()),
            );
        }
    }
    let (config, template) = config_and_template(state, key).await?;
    if template.auth_mode != mode {
        return Err(ApiError::WrongAuthMode {
            mode: template.auth_mode.as_str(),
        });
    }
    // Checked before the connect session is used up, so a typo does not cost the user theirs.
    let credentials = validated_credentials(template, entered)?;
    let connection_config =
        checked_connection_config(template, &config, &given, ValueSource::Browser)?;
    verified(state, &config, template, &credentials, &connection_config).await?;
    let owner = match &grant {
        Some(grant) => Some(use_up(state, &grant.token_hash).await?),
        None => {
            redeem(state, token, key, &connection_id).await?;
            None
        }
    };
    store_connection(
        state,
        template,
        ConnectionFields {
            provider_config_key: key.to_string(),
            connection_id,
            credentials,
            connection_config,
            metadata: Map::new(),
            obtained_at: Utc::now(),
            owner,
        },
    )
    .await
}

/// Runs the template's verification call with entered credentials: a refusal or a failure
/// means nothing is stored.
async fn verified(
    state: &AppState,
    config: &ProviderConfig,
    template: &ProviderTemplate,
    credentials: &Credentials,
    connection_config: &Map<String, Value>,
) -> Result<(), ApiError> {
    verify_credentials(state, config, template, credentials, connection_config)
        .await
        .map_err(|e| match e {
            VerifyError::Refused { status } => ApiError::InvalidCredentials(format!(
                "The provider refused these credentials (HTTP {status} from its verification call): check them and try again."
            )),
            VerifyError::Unavailable(reason) => ApiError::VerificationUnavailable { reason },
            VerifyError::Unusable(reason) => ApiError::InvalidRequest(format!(
                "The credentials could not be verified: {reason}"
            )),
        })
}

/// `{"subdomain": "acme"}` as the stored form `{"connectionConfig.params.subdomain": "acme"}`
/// (a key already in that form is kept); values must be strings.
pub fn placeholder_values(values: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    values
        .iter()
        .map(|(name, value)| {
            let Value::String(text) = value else {
                return Err(ApiError::InvalidRequest(format!(
                    "Param 'connection_config.{name}' must be a string."
                )));
            };
            let key = if name.starts_with(PARAMS_PREFIX) {
                name.clone()
            } else {
                format!("{PARAMS_PREFIX}{name}")
            };
            Ok((key, Value::String(text.clone())))
        })
        .collect()
}

/// Credentials a backend already holds, to be kept as they are (current Nango's
/// `POST /connections`): nothing is asked of the provider except, for an API key or a username
/// and password, the template's verification call.
#[derive(Debug)]
pub enum ImportedCredentials {
    OAuth2 {
        access_token: String,
        refresh_token: Option<String>,
        expires_at: Option<DateTime<Utc>>,
        /// The provider's token response, when the backend kept it.
        raw: Option<Map<String, Value>>,
    },
    OAuth1 {
        oauth_token: String,
        oauth_token_secret: String,
        /// The provider's access-token response, when the backend kept it.
        raw: Option<Map<String, Value>>,
    },
    ClientCredentials {
        token: String,
        expires_at: Option<DateTime<Utc>>,
        /// The provider's token response, when the backend kept it.
        raw: Option<Map<String, Value>>,
        /// The app it was issued to, when known: must be the config's, whose app fetches the
        /// next token.
        client_id: Option<String>,
    },
    Entered(EnteredCredentials),
}

impl ImportedCredentials {
    /// The auth mode they belong to (`Entered` fits API_KEY and BASIC).
    fn fits(&self, mode: AuthMode) -> bool {
        match self {
            ImportedCredentials::OAuth2 { .. } => mode == AuthMode::OAuth2,
            ImportedCredentials::OAuth1 { .. } => mode == AuthMode::OAuth1,
            ImportedCredentials::ClientCredentials { .. } => {
                mode == AuthMode::OAuth2ClientCredentials
            }
            ImportedCredentials::Entered(_) => matches!(mode, AuthMode::ApiKey | AuthMode::Basic),
        }
    }
}

/// A connection a backend brings with its credentials.
#[derive(Debug)]
pub struct ImportedConnection {
    pub provider_config_key: String,
    pub connection_id: String,
    pub credentials: ImportedCredentials,
    /// Placeholder values in the stored form (`connectionConfig.params.<name>`).
    pub connection_config: Map<String, Value>,
    pub metadata: Map<String, Value>,
    /// `None` keeps a replaced connection's end user and tags.
    pub owner: Option<Owner>,
}

/// Tokens longer than this are refused (no provider issues such tokens; a JWT with many claims
/// stays far below).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Creates or replaces a connection with credentials the backend already holds, without an
/// authorization by the end user: the way over from another token broker.
pub async fn import_connection(
    state: &AppState,
    import: ImportedConnection,
) -> Result<Connection, ApiError> {
    let key = import.provider_config_key.as_str();
    let (config, template) = config_and_template(state, key).await?;
    let connection_config = checked_connection_config(
        template,
        &config,
        &import.connection_config,
        ValueSource::Stored,
    )?;
    let entered = matches!(import.credentials, ImportedCredentials::Entered(_));
    let credentials = imported_credentials(&config, template, import.credentials)?;
    if entered {
        verified(state, &config, template, &credentials, &connection_config).await?;
    }
    store_connection(
        state,
        template,
        ConnectionFields {
            provider_config_key: import.provider_config_key.clone(),
            connection_id: import.connection_id,
            credentials,
            connection_config,
            metadata: import.metadata,
            obtained_at: Utc::now(),
            owner: import.owner,
        },
    )
    .await
}

/// Imported credentials checked against the config's template and made stored credentials;
/// entered ones (an API key, a username and password) are checked for shape here, and for
/// validity with the provider only by the caller that may call it.
pub fn imported_credentials(
    config: &ProviderConfig,
    template: &ProviderTemplate,
    imported: ImportedCredentials,
) -> Result<Credentials, ApiError> {
    if !imported.fits(template.auth_mode) {
        return Err(ApiError::InvalidRequest(format!(
            "These credentials do not fit provider '{}', whose auth mode is {}.",
            config.provider,
            template.auth_mode.as_str()
        )));
    }
    let token_problem = |name: &str, value: &str| -> Option<ApiError> {
        if value.is_empty() {
            Some(ApiError::InvalidRequest(format!(
                "Param 'credentials.{name}' is required."
            )))
        } else if value.len() > MAX_TOKEN_LEN || value.chars().any(char::is_control) {
            Some(ApiError::InvalidRequest(format!(
                "Param 'credentials.{name}' is not a token: at most {MAX_TOKEN_LEN} bytes, no control characters."
            )))
        } else {
            None
        }
    };
    Ok(match imported {
        ImportedCredentials::OAuth2 {
            access_token,
            refresh_token,
            expires_at,
            raw,
        } => {
            let problem = token_problem("access_token", &access_token).or_else(|| {
                refresh_token
                    .as_deref()
                    .and_then(|t| token_problem("refresh_token", t))
            });
            if let Some(problem) = problem {
                return Err(problem);
            }
            let raw = raw.unwrap_or_else(|| {
                let mut raw = Map::new();
                raw.insert("access_token".into(), Value::String(access_token.clone()));
                if let Some(token) = &refresh_token {
                    raw.insert("refresh_token".into(), Value::String(token.clone()));
                }
                if let Some(at) = expires_at {
                    raw.insert("expires_at".into(), Value::String(iso_millis(at)));
                }
                raw
            });
            Credentials::OAuth2(OAuth2Credentials {
                access_token,
                refresh_token,
                expires_at,
                raw: Value::Object(raw),
            })
        }
        ImportedCredentials::OAuth1 {
            oauth_token,
            oauth_token_secret,
            raw,
        } => {
            let problem = token_problem("oauth_token", &oauth_token)
                .or_else(|| token_problem("oauth_token_secret", &oauth_token_secret));
            if let Some(problem) = problem {
                return Err(problem);
            }
            let raw = raw.map(Value::Object).unwrap_or_else(|| {
                serde_json::json!({
                    "oauth_token": oauth_token,
                    "oauth_token_secret": oauth_token_secret,
                })
            });
            Credentials::OAuth1(OAuth1Credentials {
                oauth_token,
                oauth_token_secret,
                raw,
            })
        }
        ImportedCredentials::ClientCredentials {
            token,
            expires_at,
            raw,
            client_id,
        } => {
            if let Some(problem) = token_problem("token", &token) {
                return Err(problem);
            }
            if client_id.is_some_and(|id| id != config.oauth_client_id) {
                return Err(ApiError::InvalidRequest(format!(
                    "Param 'credentials.client_id' is not the client id of integration '{}', whose app fetches this connection's next tokens: import it into an integration with that app.",
                    config.unique_key
                )));
            }
            let raw = raw.unwrap_or_else(|| {
                let mut raw = Map::new();
                raw.insert("access_token".into(), Value::String(token.clone()));
                if let Some(at) = expires_at {
                    raw.insert("expires_at".into(), Value::String(iso_millis(at)));
                }
                raw
            });
            Credentials::OAuth2ClientCredentials(ClientCredentials {
                token,
                expires_at,
                raw: Value::Object(raw),
            })
        }
        ImportedCredentials::Entered(entered) => validated_credentials(template, entered)?,
    })
}

/// Deletes a connection and emits the `connection.deleted` webhook (also the dashboard's delete);
/// `UnknownConnection` when there was none.
pub async fn delete_connection_and_notify(
    state: &AppState,
    key: &str,
    connection_id: &str,
) -> Result<(), ApiError> {
    if state.store.delete_connection(key, connection_id).await? {
        webhooks::emit(
            state,
            EventKind::ConnectionDeleted,
            key,
            connection_id,
            serde_json::json!({}),
        )
        .await;
        Ok(())
    } else {
        Err(ApiError::UnknownConnection)
    }
}

/// The end user a connection is for, as the app names them (current Nango's `end_user`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndUser {
    /// The app's id of its user.
    #[schema(min_length = 1, max_length = 255, example = "user-42")]
    pub id: String,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub display_name: Option<String>,
    /// Strings by name.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tags: Option<Map<String, Value>>,
    #[serde(default)]
    pub organization: Option<Organization>,
}

/// The end user's organization in the app.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    #[schema(min_length = 1, max_length = 255)]
    pub id: String,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub display_name: Option<String>,
}

/// At most this many tags on a connection or an end user.
const MAX_TAGS: usize = 64;

/// Checks tags: at most 64, names of 1 to 64 characters, string values of at most 255. Names are
/// kept in lower case, as current Nango's clients send them when they filter.
pub fn checked_tags(what: &str, tags: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let tags: Map<String, Value> = tags
        .into_iter()
        .map(|(name, value)| (name.to_lowercase(), value))
        .collect();
    if tags.len() > MAX_TAGS {
        return Err(ApiError::InvalidRequest(format!(
            "'{what}' has more than {MAX_TAGS} tags."
        )));
    }
    for (name, value) in &tags {
        let fits = (1..=64).contains(&name.chars().count())
            && !name.chars().any(char::is_control)
            && value
                .as_str()
                .is_some_and(|v| v.chars().count() <= 255 && !v.chars().any(char::is_control));
        if !fits {
            return Err(ApiError::InvalidRequest(format!(
                "'{what}.{name}' is not a tag: names of 1 to 64 characters, string values of at most 255."
            )));
        }
    }
    Ok(tags)
}

/// The owner of a connection from what the app gave: its end user (with the organization given
/// beside it, as connect sessions take it) and tags. As current Nango does, the end user's id,
/// email and display name are also tags (`end_user_id`, `end_user_email`,
/// `end_user_display_name`), unless the app set those tags itself, so that `GET /connections`
/// finds connections by them.
pub fn owner_from(
    end_user: Option<EndUser>,
    organization: Option<Organization>,
    tags: Option<Map<String, Value>>,
) -> Result<Owner, ApiError> {
    let mut tags = checked_tags("tags", tags.unwrap_or_default())?;
    let Some(user) = end_user else {
        if organization.is_some() {
            return Err(ApiError::InvalidRequest(
                "Param 'organization' needs an 'end_user'.".into(),
            ));
        }
        return Ok(Owner {
            end_user: None,
            tags,
        });
    };
    let text = |name: &str, value: &str, min: usize| -> Result<(), ApiError> {
        let length = value.chars().count();
        if length < min || length > 255 || value.chars().any(char::is_control) {
            return Err(ApiError::InvalidRequest(format!(
                "Param '{name}' must be {min} to 255 characters, without control characters."
            )));
        }
        Ok(())
    };
    text("end_user.id", &user.id, 1)?;
    let organization = organization.or(user.organization);
    let mut stored = Map::new();
    stored.insert("id".into(), Value::String(user.id.clone()));
    for (name, value) in [("email", &user.email), ("display_name", &user.display_name)] {
        if let Some(value) = value {
            text(&format!("end_user.{name}"), value, 0)?;
            stored.insert(name.into(), Value::String(value.clone()));
            tags.entry(format!("end_user_{name}"))
                .or_insert_with(|| Value::String(value.clone()));
        }
    }
    tags.entry("end_user_id".to_string())
        .or_insert_with(|| Value::String(user.id.clone()));
    stored.insert(
        "tags".into(),
        Value::Object(checked_tags(
            "end_user.tags",
            user.tags.unwrap_or_default(),
        )?),
    );
    if let Some(org) = organization {
        text("organization.id", &org.id, 1)?;
        let mut entry = Map::new();
        entry.insert("id".into(), Value::String(org.id));
        if let Some(name) = org.display_name {
            text("organization.display_name", &name, 0)?;
            entry.insert("display_name".into(), Value::String(name));
        }
        stored.insert("organization".into(), Value::Object(entry));
    }
    let tags = checked_tags("tags", tags)?;
    Ok(Owner {
        end_user: Some(stored),
        tags,
    })
}

/// Sets a connection's end user and tags (current Nango's `PATCH /connections/{id}`): given
/// parts replace the stored ones, absent parts stay.
pub async fn change_owner(
    state: &AppState,
    key: &str,
    connection_id: &str,
    end_user: Option<EndUser>,
    tags: Option<Map<String, Value>>,
) -> Result<Owner, ApiError> {
    let connection = state
        .store
        .get_connection(key, connection_id)
        .await?
        .ok_or(ApiError::UnknownConnection)?;
    let mut owner = connection.owner;
    if let Some(tags) = tags {
        owner.tags = checked_tags("tags", tags)?;
    }
    if let Some(user) = end_user {
        let given = owner_from(Some(user), None, None)?;
        owner.end_user = given.end_user;
        for (name, value) in given.tags {
            owner.tags.insert(name, value);
        }
        owner.tags = checked_tags("tags", owner.tags)?;
    }
    if state.store.update_owner(key, connection_id, &owner).await? {
        Ok(owner)
    } else {
        Err(ApiError::UnknownConnection)
    }
}

/// Writes metadata on connections, all or none (current Nango's `POST` and
/// `PATCH /connections/metadata`): every connection is checked to exist first. `merge` lays the
/// given top-level keys over the stored ones instead of replacing them.
pub async fn write_metadata(
    state: &AppState,
    key: &str,
    connection_ids: &[String],
    metadata: &Map<String, Value>,
    merge: bool,
) -> Result<(), ApiError> {
    config_and_template(state, key).await?;
    for id in connection_ids {
        if state.store.get_connection(key, id).await?.is_none() {
            return Err(ApiError::UnknownConnection);
        }
    }
    for id in connection_ids {
        // Deleted meanwhile: nothing to write on it.
        state
            .store
            .update_metadata(key, id, metadata, merge)
            .await?;
    }
    Ok(())
}
