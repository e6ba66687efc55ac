//! The `nango` binary: parses the command line, sets up logging, and hands over to the server
//! library (`serve`) or the REST client (every other command).

mod cli;
mod commands;
mod output;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_level = match &cli.command {
        Command::Serve(args) | Command::DbRotateKey(args) => args.log_level.clone(),
        _ => std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into()),
    };
    let filter = match EnvFilter::try_new(&log_level) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("❌ Invalid log level {log_level:?}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Logs go to stderr so that stdout carries only results (tokens, JSON) for scripts.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    match cli.command {
        Command::Serve(args) => match nango_server::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("❌ The Nango server could not start: {e}");
                ExitCode::FAILURE
            }
        },
        Command::DbRotateKey(args) => match nango_server::rotate_encryption_key(args).await {
            Ok(report) => print_result(&format!(
                "✅ Re-encrypted {} secret(s) with the primary key ({} already were); retired keys: {}",
                report.resealed,
                report.current,
                if report.retired.is_empty() {
                    "none".to_string()
                } else {
                    report.retired.join(", ")
                }
            )),
            Err(e) => {
                eprintln!("❌ Could not rotate the encryption key: {e}");
                ExitCode::FAILURE
            }
        },
        command => match commands::run(command, cli.json).await {
            Ok(text) => print_result(&text),
            Err(e) => {
                eprintln!("❌ {}", commands::describe(&e));
                ExitCode::FAILURE
            }
        },
    }
}

/// A closed pipe (`nango config:list | head -1`) is the reader's choice, not a failure; any other
/// write error means the result was lost, so it must not exit 0.
fn print_result(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("❌ Could not write the result: {e}");
            ExitCode::FAILURE
        }
    }
}
