//! The command line: `nango serve` plus the Nango 0.9 client commands, names and argument order
//! as the original CLI had them (`config:create <key> <provider> ...`).

use std::ffi::OsString;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Self-hosted OAuth token broker, wire-compatible with Nango 0.9.
///
/// `nango serve` runs the server; the other commands manage it over its REST API.
/// `nango doctor` checks a setup; `nango completions <shell>` prints a shell completion script.
#[derive(Debug, Parser)]
#[command(name = "nango", version, arg_required_else_help = true)]
pub struct Cli {
    /// Print JSON (the server's response, pretty-printed; doctor's report) instead of a table or
    /// message
    #[arg(long, global = true)]
    pub json: bool,

    /// When to use colours: auto (only on a terminal, and never with NO_COLOR set), always,
    /// never
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,

    #[command(subcommand)]
    pub command: Command,
}

/// `--color`: `auto` leaves the decision to each stream (a terminal, no `NO_COLOR`, see
/// <https://no-color.org>); the other two are an explicit request, which wins over `NO_COLOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl From<ColorWhen> for anstream::ColorChoice {
    fn from(when: ColorWhen) -> Self {
        match when {
            ColorWhen::Auto => anstream::ColorChoice::Auto,
            ColorWhen::Always => anstream::ColorChoice::Always,
            ColorWhen::Never => anstream::ColorChoice::Never,
        }
    }
}

/// The `--color` of a command line before clap parses it, so that clap's own help and usage
/// errors (printed while parsing) follow it too. Anything clap would refuse counts as `auto`:
/// clap reports it right after.
pub fn color_in_args(args: impl IntoIterator<Item = OsString>) -> ColorWhen {
    let mut when = ColorWhen::Auto;
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        let Some(arg) = arg.to_str() else { continue };
        let value = match arg {
            "--" => break,
            "--color" => args.next().and_then(|v| v.into_string().ok()),
            _ => arg.strip_prefix("--color=").map(str::to_string),
        };
        if let Some(value) = value {
            when = ColorWhen::from_str(&value, false).unwrap_or(ColorWhen::Auto);
        }
    }
    when
}

/// `nango doctor`: where the server is, plus everything `nango serve` is configured with.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// URL of the Nango server [default: http://localhost:3003]
    #[arg(long = "host", env = "NANGO_HOSTPORT", value_name = "URL")]
    pub host: Option<String>,

    /// The settings of `nango serve` (its flags and environment); `--secret-key` is also the
    /// key the CLI sends.
    #[command(flatten)]
    pub server: nango_server::ServeArgs,
}

/// Where the server is and how to authenticate; every client command takes these.
#[derive(Debug, Clone, Args)]
pub struct ClientOpts {
    /// URL of the Nango server [default: http://localhost:3003]
    #[arg(long = "host", env = "NANGO_HOSTPORT", value_name = "URL")]
    pub host: Option<String>,

    /// Secret key of the server (sent as HTTP Basic username)
    #[arg(
        long,
        env = "NANGO_SECRET_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub secret_key: Option<String>,
}

/// The five fields of a provider configuration, in the order the 0.9 CLI took them.
#[derive(Debug, Clone, Args)]
pub struct ConfigFields {
    /// Unique key of this configuration (e.g. github)
    pub provider_config_key: String,
    /// Provider template name from the catalog (e.g. github, google, slack)
    pub provider: String,
    /// OAuth client id issued by the provider
    pub oauth_client_id: String,
    /// OAuth client secret issued by the provider; `-` reads it from standard input (keeps it out
    /// of `ps` and shell history)
    pub oauth_client_secret: String,
    /// Scopes to request, comma-separated (e.g. "repo,user")
    pub oauth_scopes: String,
    /// A value for one of the template's placeholders, e.g. `hostname=ghe.example.com` for
    /// github-enterprise (repeatable). Hosts come only from here, never from the browser. Not
    /// given on config:edit: the stored values are kept
    #[arg(long = "connection-config", value_name = "NAME=VALUE", value_parser = name_value)]
    pub connection_config: Vec<(String, String)>,
}

/// `NAME=VALUE`, split at the first `=`.
fn name_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// `nango import:nango`: the source, how to read it, and the settings of `nango serve`.
#[derive(Debug, Clone, Args)]
pub struct ImportNangoArgs {
    /// The Nango to import from: the postgres:// URL of its database, or the http(s):// URL of
    /// the server (read through its API with --nango-secret-key)
    #[arg(long, value_name = "SOURCE")]
    pub from: String,

    /// The source's NANGO_ENCRYPTION_KEY (base64), for a current Nango database's encrypted rows
    #[arg(
        long,
        env = "NANGO_SOURCE_ENCRYPTION_KEY",
        hide_env_values = true,
        value_name = "BASE64"
    )]
    pub nango_encryption_key: Option<String>,

    /// The source's secret key (of the environment to import), for an API source
    #[arg(
        long,
        env = "NANGO_SOURCE_SECRET_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub nango_secret_key: Option<String>,

    /// The environment of a current Nango database to import, by name or id
    #[arg(long, default_value = "prod", value_name = "NAME")]
    pub environment: String,

    /// The schema of the Nango database (its NANGO_DB_SCHEMA)
    #[arg(long, default_value = "nango", value_name = "SCHEMA")]
    pub nango_db_schema: String,

    /// The API dialect of a server source: auto (current if it answers /integrations, else 0.9),
    /// 0.9 or current
    #[arg(long, default_value = "auto", value_name = "VERSION", value_parser = ["auto", "0.9", "current"])]
    pub nango_api_version: String,

    /// Print what would be done, naming every integration and connection; write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Also take integrations and connections that changed at the source since the last import
    /// (never over tokens this server has refreshed since)
    #[arg(long)]
    pub update: bool,

    /// The settings of `nango serve`: where to write, and with which encryption key.
    #[command(flatten)]
    pub server: nango_server::ServeArgs,
}

/// A connection is named by its config key and its connection id (0.9 order).
#[derive(Debug, Clone, Args)]
pub struct ConnectionRef {
    /// Key of the provider configuration the connection belongs to
    pub provider_config_key: String,
    /// Id the connection was created under (e.g. your user id)
    pub connection_id: String,
}

/// How `connection:get` and `token:get` ask for the credentials.
#[derive(Debug, Clone, Copy, Args)]
pub struct RefreshOpts {
    /// Refresh the credentials now, whatever their expiry (fails for credentials without a
    /// refresh token)
    #[arg(long)]
    pub force_refresh: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Nango server
    Serve(nango_server::ServeArgs),

    /// List the provider configurations
    #[command(name = "config:list")]
    ConfigList {
        #[command(flatten)]
        client: ClientOpts,
    },

    /// Show one provider configuration (the client secret is masked)
    #[command(name = "config:get")]
    ConfigGet {
        /// Key of the provider configuration
        provider_config_key: String,
        #[command(flatten)]
        client: ClientOpts,
    },

    /// Create a provider configuration
    #[command(name = "config:create")]
    ConfigCreate {
        #[command(flatten)]
        fields: ConfigFields,
        #[command(flatten)]
        client: ClientOpts,
    },

    /// Replace the provider, client id, client secret and scopes of a provider configuration
    #[command(name = "config:edit")]
    ConfigEdit {
        #[command(flatten)]
        fields: ConfigFields,
        #[command(flatten)]
        client: ClientOpts,
    },

    /// Delete a provider configuration (its connections are kept)
    #[command(name = "config:delete")]
    ConfigDelete {
        /// Key of the provider configuration
        provider_config_key: String,
        #[command(flatten)]
        client: ClientOpts,
    },

    /// Show a connection with its fresh credentials, as JSON (tokens included)
    #[command(name = "connection:get")]
    ConnectionGet {
        #[command(flatten)]
        connection: ConnectionRef,
        #[command(flatten)]
        refresh: RefreshOpts,
        #[command(flatten)]
        client: ClientOpts,
    },

    /// List the connections (without credentials)
    #[command(name = "connection:list")]
    ConnectionList {
        #[command(flatten)]
        client: ClientOpts,
    },

    /// Delete a connection
    #[command(name = "connection:delete")]
    ConnectionDelete {
        #[command(flatten)]
        connection: ConnectionRef,
        #[command(flatten)]
        client: ClientOpts,
    },

    /// List the providers of the server's catalog (name, display name, auth mode, categories)
    #[command(name = "providers:list")]
    ProvidersList {
        /// Only providers whose name, display name or a category contains this text
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// Only providers of this auth mode: OAUTH2, OAUTH1, OAUTH2_CC, API_KEY or BASIC (several
        /// comma-separated)
        #[arg(long, value_name = "MODE")]
        auth_mode: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
    },

    /// Show one provider's template from the server's catalog, as JSON
    #[command(name = "providers:get")]
    ProvidersGet {
        /// Provider name (e.g. github)
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },

    /// Import the integrations and connections of a Nango server, without re-authorizing anyone
    ///
    /// Reads a Nango database (0.9 or current layout, detected) or a running Nango server's API
    /// (0.9 or current, detected), then writes into the database of `nango serve` (same flags
    /// and environment), sealed with its NANGO_ENCRYPTION_KEY. No provider is called; the source
    /// is only read. Run it again to take what is new: it never puts back older tokens over ones
    /// this server refreshed, and takes changes made at the source only with --update.
    ///
    /// Exit status: 0 when every item was imported (or was already), 3 when some were skipped
    /// (listed with their reasons; the rest was imported), 1 when nothing was imported (the
    /// source, its key or this server's database could not be used), 2 for a usage error.
    #[command(name = "import:nango")]
    ImportNango(ImportNangoArgs),

    /// Re-encrypt every stored secret with the first key of NANGO_ENCRYPTION_KEY, online
    ///
    /// Works on the database of `nango serve` (same flags and environment). Put the new key
    /// first in NANGO_ENCRYPTION_KEY, keep the old one after it, restart the servers with that
    /// list, run this, then drop the old key.
    #[command(name = "db:rotate-key")]
    DbRotateKey(nango_server::ServeArgs),

    /// Print a fresh access token of a connection (OAuth1: token and secret; basic: username
    /// and password)
    #[command(name = "token:get")]
    TokenGet {
        #[command(flatten)]
        connection: ConnectionRef,
        #[command(flatten)]
        refresh: RefreshOpts,
        #[command(flatten)]
        client: ClientOpts,
    },

    /// Check a setup: the server, the secret key, the encryption key, the database and the
    /// callback URL, one line each; exits 1 when a check fails
    ///
    /// Run it with the environment (or the flags) of `nango serve`, plus NANGO_HOSTPORT when
    /// the server is not at http://localhost:3003. Each network check gives up after 5 seconds.
    /// A SQLite database is opened read-only; a PostgreSQL one is opened as `nango serve` opens
    /// it at start (which applies pending migrations and registers the first encryption key).
    #[command(name = "doctor", mut_arg("log_level", |arg| arg.default_value("warn")))]
    Doctor(DoctorArgs),

    /// Print the completion script of a shell (bash, zsh, fish, powershell, elvish)
    ///
    /// For example: `nango completions bash > ~/.local/share/bash-completion/completions/nango`,
    /// `nango completions zsh > "${fpath[1]}/_nango"`, `nango completions fish >
    /// ~/.config/fish/completions/nango.fish`.
    #[command(name = "completions")]
    Completions {
        /// The shell to complete in
        shell: clap_complete::Shell,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_create_takes_the_0_9_argument_order() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from([
            "nango",
            "config:create",
            "gh",
            "github",
            "id",
            "secret",
            "repo,user",
            "--host",
            "http://h:1",
            "--json",
        ])?;
        assert!(cli.json);
        match cli.command {
            Command::ConfigCreate { fields, client } => {
                assert_eq!(fields.provider_config_key, "gh");
                assert_eq!(fields.provider, "github");
                assert_eq!(fields.oauth_client_id, "id");
                assert_eq!(fields.oauth_client_secret, "secret");
                assert_eq!(fields.oauth_scopes, "repo,user");
                assert_eq!(client.host.as_deref(), Some("http://h:1"));
            }
            other => panic!("parsed as {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn token_get_takes_key_then_connection_id() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from(["nango", "--json", "token:get", "gh", "user-1"])?;
        assert!(cli.json);
        match cli.command {
            Command::TokenGet {
                connection,
                refresh,
                ..
            } => {
                assert_eq!(connection.provider_config_key, "gh");
                assert_eq!(connection.connection_id, "user-1");
                assert!(!refresh.force_refresh);
            }
            other => panic!("parsed as {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn color_is_found_before_parsing_wherever_it_is() {
        let args = |line: &str| line.split(' ').map(OsString::from).collect::<Vec<_>>();
        assert_eq!(color_in_args(args("nango config:list")), ColorWhen::Auto);
        assert_eq!(
            color_in_args(args("nango --color never --help")),
            ColorWhen::Never
        );
        assert_eq!(
            color_in_args(args("nango config:list --color=always")),
            ColorWhen::Always
        );
        assert_eq!(
            color_in_args(args("nango --color=purple help")),
            ColorWhen::Auto
        );
        assert_eq!(
            color_in_args(args("nango token:get -- --color=never x")),
            ColorWhen::Auto
        );
    }

    #[test]
    fn color_doctor_and_completions_parse() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from(["nango", "doctor", "--color", "never"])?;
        assert_eq!(cli.color, ColorWhen::Never);
        match cli.command {
            // Quieter than `serve`: the report is the output.
            Command::Doctor(args) if std::env::var_os("LOG_LEVEL").is_none() => {
                assert_eq!(args.server.log_level, "warn")
            }
            Command::Doctor(_) => {}
            other => panic!("parsed as {other:?}"),
        }
        let cli = Cli::try_parse_from(["nango", "completions", "zsh"])?;
        assert_eq!(cli.color, ColorWhen::Auto);
        assert!(matches!(
            cli.command,
            Command::Completions {
                shell: clap_complete::Shell::Zsh
            }
        ));
        assert!(Cli::try_parse_from(["nango", "completions", "tcsh"]).is_err());
        assert!(Cli::try_parse_from(["nango", "--color", "sometimes", "config:list"]).is_err());
        Ok(())
    }

    #[test]
    fn token_and_connection_get_take_force_refresh() -> Result<(), clap::Error> {
        for command in ["token:get", "connection:get"] {
            let cli = Cli::try_parse_from(["nango", command, "gh", "user-1", "--force-refresh"])?;
            match cli.command {
                Command::TokenGet { refresh, .. } | Command::ConnectionGet { refresh, .. } => {
                    assert!(refresh.force_refresh, "{command}")
                }
                other => panic!("parsed as {other:?}"),
            }
        }
        assert!(Cli::try_parse_from(["nango", "connection:list", "--force-refresh"]).is_err());
        Ok(())
    }
}
