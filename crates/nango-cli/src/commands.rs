//! The client commands: one call to the server each, turned into the text to print.

use std::io::IsTerminal;

use nango_client::{Client, Error, GetOptions, NewConfig, Token};

use crate::cli::{ClientOpts, Command, ConfigFields, RefreshOpts};
use crate::output::{self, Printed};

/// Runs a client command and returns what goes to stdout. `serve`, `db:rotate-key`, `doctor`
/// and `completions` are not client commands and are handled by `main`.
pub async fn run(command: Command, json: bool) -> Result<Printed, Error> {
    use Printed::{Data, Text};
    match command {
        Command::Serve(_)
        | Command::DbRotateKey(_)
        | Command::ImportNango(_)
        | Command::Doctor(_)
        | Command::Completions { .. } => Err(Error::InvalidArgument(
            "`serve`, `db:rotate-key`, `doctor` and `completions` are not client commands".into(),
        )),
        Command::ProvidersList {
            search,
            auth_mode,
            client,
        } => {
            let providers = connect(&client)?
                .list_providers_of(search.as_deref(), auth_mode.as_deref())
                .await?;
            if json {
                return Ok(Data(output::pretty(
                    &serde_json::json!({ "providers": providers }),
                )));
            }
            Ok(Text(output::providers_table(&providers)))
        }
        Command::ProvidersGet { name, client } => {
            let provider = connect(&client)?.get_provider(&name).await?;
            Ok(Data(output::pretty(
                &serde_json::json!({ "name": provider.name, "template": provider.template }),
            )))
        }
        Command::ConfigList { client } => {
            let nango = connect(&client)?;
            if json {
                return Ok(Data(output::pretty(&nango.list_configs_raw().await?)));
            }
            Ok(Text(output::configs_table(&nango.list_configs().await?)))
        }
        Command::ConfigGet {
            provider_config_key,
            client,
        } => {
            let nango = connect(&client)?;
            if json {
                return Ok(Data(output::pretty(
                    &nango.get_config_raw(&provider_config_key).await?,
                )));
            }
            Ok(Text(output::config_table(
                &nango.get_config(&provider_config_key).await?,
            )))
        }
        Command::ConfigCreate { fields, client } => {
            let config_id = connect(&client)?
                .create_config(&new_config(fields)?)
                .await?;
            if json {
                return Ok(Data(output::pretty(
                    &serde_json::json!({ "config_id": config_id }),
                )));
            }
            Ok(output::done(
                json,
                "✅ Successfully created a new provider configuration!",
            ))
        }
        Command::ConfigEdit { fields, client } => {
            connect(&client)?
                .update_config(&new_config(fields)?)
                .await?;
            Ok(output::done(
                json,
                "✅ Successfully edited an existing provider configuration!",
            ))
        }
        Command::ConfigDelete {
            provider_config_key,
            client,
        } => {
            connect(&client)?
                .delete_config(&provider_config_key)
                .await?;
            Ok(output::done(
                json,
                "✅ Successfully deleted the provider configuration!",
            ))
        }
        Command::ConnectionGet {
            connection,
            refresh,
            client,
        } => {
            // Tokens in clear: showing the connection is exactly what was asked for.
            let body = connect(&client)?
                .get_connection_raw_with(
                    &connection.provider_config_key,
                    &connection.connection_id,
                    get_options(refresh),
                )
                .await?;
            Ok(Data(output::pretty(&body)))
        }
        Command::ConnectionList { client } => {
            let nango = connect(&client)?;
            if json {
                return Ok(Data(output::pretty(&nango.list_connections_raw().await?)));
            }
            Ok(Text(output::connections_table(
                &nango.list_connections().await?,
            )))
        }
        Command::ConnectionDelete { connection, client } => {
            connect(&client)?
                .delete_connection(&connection.provider_config_key, &connection.connection_id)
                .await?;
            Ok(output::done(
                json,
                "✅ Successfully deleted the connection!",
            ))
        }
        Command::TokenGet {
            connection,
            refresh,
            client,
        } => {
            let nango = connect(&client)?;
            let (key, id) = (&connection.provider_config_key, &connection.connection_id);
            let options = get_options(refresh);
            if json {
                return Ok(Data(output::pretty(
                    &nango.get_connection_raw_with(key, id, options).await?,
                )));
            }
            // The bare token, so `$(nango token:get ...)` can be used as is.
            Ok(Data(token_text(
                &nango.get_token_with(key, id, options).await?,
            )))
        }
    }
}

fn get_options(refresh: RefreshOpts) -> GetOptions {
    GetOptions::new().force_refresh(refresh.force_refresh)
}

/// What `token:get` prints: the token alone when it is one string, else one `name:value` line
/// per part.
fn token_text(token: &Token) -> String {
    match token {
        Token::OAuth1 {
            oauth_token,
            oauth_token_secret,
        } => format!(
            "token:{}\nsecret:{}",
            oauth_token.expose(),
            oauth_token_secret.expose()
        ),
        Token::Basic { username, password } => {
            format!("username:{username}\npassword:{}", password.expose())
        }
        // OAuth2, client credentials, API key, and whatever single string a newer client adds.
        other => other.expose().unwrap_or_default().to_string(),
    }
}

/// The message after `❌`: the server's own words, plus what to do when that is not obvious.
pub fn describe(error: &Error) -> String {
    match error {
        Error::Network { .. } | Error::Timeout { .. } => {
            format!("{error}\n   Is the server running? Set NANGO_HOSTPORT (or --host) to its URL.")
        }
        Error::Api { status: 401, .. } => format!(
            "{error}\n   Set NANGO_SECRET_KEY (or --secret-key) to the server's secret key."
        ),
        _ => error.to_string(),
    }
}

fn new_config(f: ConfigFields) -> Result<NewConfig, Error> {
    let secret = if f.oauth_client_secret == "-" {
        read_secret(std::io::stdin().lock())?
    } else {
        f.oauth_client_secret
    };
    Ok(NewConfig {
        provider_config_key: f.provider_config_key,
        provider: f.provider,
        oauth_client_id: f.oauth_client_id,
        oauth_client_secret: secret.into(),
        oauth_scopes: f.oauth_scopes,
        connection_config: (!f.connection_config.is_empty())
            .then(|| f.connection_config.into_iter().collect()),
    })
}

/// The client secret from standard input (`config:create ... -`): all of it, less one trailing
/// line break (what `echo` or a here-string adds).
fn read_secret(mut input: impl std::io::Read) -> Result<String, Error> {
    let mut secret = String::new();
    input.read_to_string(&mut secret).map_err(|e| {
        Error::InvalidArgument(format!(
            "cannot read the client secret from standard input: {e}"
        ))
    })?;
    if let Some(rest) = secret.strip_suffix('\n') {
        secret = rest.strip_suffix('\r').unwrap_or(rest).to_string();
    }
    if secret.is_empty() {
        return Err(Error::InvalidArgument(
            "the client secret read from standard input is empty".into(),
        ));
    }
    Ok(secret)
}

/// Builds the client. An empty variable counts as unset, as `process.env.X || default` did.
fn connect(opts: &ClientOpts) -> Result<Client, Error> {
    let host = opts.host.as_deref().filter(|h| !h.trim().is_empty());
    if std::io::stderr().is_terminal() {
        // Only for a person at a terminal: in scripts and pipes it would be noise on stderr.
        let assumption = match host {
            None => Some("Assuming you are running Nango on localhost:3003 because you did not set the NANGO_HOSTPORT env var.".to_string()),
            Some(h) if std::env::var("NANGO_HOSTPORT").is_ok_and(|v| v == h) => Some(format!(
                "Assuming you are self-hosting Nango (because you set the NANGO_HOSTPORT env var to {h})."
            )),
            Some(_) => None,
        };
        if let Some(assumption) = assumption {
            anstream::eprintln!("{}\n", output::paint(output::WARNING, &assumption));
        }
    }
    let mut builder = Client::builder(host.unwrap_or(nango_client::DEFAULT_HOST));
    if let Some(key) = &opts.secret_key {
        builder = builder.secret_key(key.as_str());
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_prints_as_scripts_expect() {
        assert_eq!(token_text(&Token::OAuth2("gho_1".into())), "gho_1");
        assert_eq!(
            token_text(&Token::OAuth2ClientCredentials("cc_1".into())),
            "cc_1"
        );
        assert_eq!(token_text(&Token::ApiKey("sk-1".into())), "sk-1");
        assert_eq!(
            token_text(&Token::OAuth1 {
                oauth_token: "t".into(),
                oauth_token_secret: "s".into()
            }),
            "token:t\nsecret:s"
        );
        assert_eq!(
            token_text(&Token::Basic {
                username: "ann".into(),
                password: "pw".into()
            }),
            "username:ann\npassword:pw"
        );
    }
}
