//! The `nango` binary: parses the command line, sets up logging and colours, and hands over to
//! the server library (`serve`, `db:rotate-key`), the REST client (the management commands) or
//! the doctor.

mod cli;
mod commands;
mod doctor;
mod import;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use nango_server::logging::LogFormat;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};
use output::Printed;

#[tokio::main]
async fn main() -> ExitCode {
    // Before parsing, so that clap's help and usage errors follow `--color` too: clap writes
    // through anstream, which reads this process-wide choice.
    anstream::ColorChoice::write_global(cli::color_in_args(std::env::args_os()).into());
    let cli = Cli::parse();
    anstream::ColorChoice::write_global(cli.color.into());
    let json = cli.json;

    let (log_level, log_format) = match &cli.command {
        Command::Serve(args) | Command::DbRotateKey(args) => {
            (args.log_level.clone(), args.log_format)
        }
        // The import's own lines are its report; the store's start-up logs would only
        // interleave with its progress.
        Command::ImportNango(args) => ("warn".into(), args.server.log_format),
        Command::Doctor(args) => (args.server.log_level.clone(), args.server.log_format),
        _ => (
            std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into()),
            LogFormat::Text,
        ),
    };
    if let Err(e) = init_logging(&log_level, log_format) {
        return fail(&e);
    }

    match cli.command {
        Command::Serve(args) => match nango_server::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("The Nango server could not start: {e}")),
        },
        Command::DbRotateKey(args) => match nango_server::rotate_encryption_key(args).await {
            Ok(report) => print_result(&output::done(
                json,
                &format!(
                    "✅ Re-encrypted {} secret(s) with the primary key ({} already were); retired keys: {}",
                    report.resealed,
                    report.current,
                    if report.retired.is_empty() {
                        "none".to_string()
                    } else {
                        report.retired.join(", ")
                    }
                ),
            )),
            Err(e) => fail(&format!("Could not rotate the encryption key: {e}")),
        },
        Command::ImportNango(args) => match import::run(args, json).await {
            Ok((printed, code)) => {
                if print_result(&printed) == ExitCode::SUCCESS {
                    code
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => fail(&e),
        },
        Command::Doctor(args) => {
            let report = doctor::run(args).await;
            let printed = if json {
                Printed::Data(output::pretty(&report.json()))
            } else {
                Printed::Text(report.text())
            };
            match print_result(&printed) {
                code if report.passed() => code,
                _ => ExitCode::FAILURE,
            }
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "nango", &mut script);
            print_result(&Printed::Data(
                String::from_utf8_lossy(&script).trim_end().to_string(),
            ))
        }
        command => match commands::run(command, json).await {
            Ok(printed) => print_result(&printed),
            Err(e) => fail(&commands::describe(&e)),
        },
    }
}

/// Logs go to stderr so that stdout carries only results (tokens, JSON) for scripts; as text,
/// coloured when stderr takes colours, or as JSON lines (`NANGO_LOG_FORMAT=json`).
fn init_logging(level: &str, format: LogFormat) -> Result<(), String> {
    if format == LogFormat::Json {
        return nango_server::logging::init(level, format);
    }
    let filter =
        EnvFilter::try_new(level).map_err(|e| format!("Invalid log level {level:?}: {e}"))?;
    let colours = anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        // Control characters in logged values (many come from requests) escaped.
        .fmt_fields(nango_server::logging::text_fields())
        .try_init()
        .map_err(|e| format!("Could not install the logger: {e}"))
}

/// `❌ <message>` on stderr, its first line in red (the lines after it say what to do).
fn fail(message: &str) -> ExitCode {
    let (first, rest) = message.split_once('\n').unwrap_or((message, ""));
    let first = output::paint(output::ERROR, &format!("❌ {first}"));
    if rest.is_empty() {
        anstream::eprintln!("{first}");
    } else {
        anstream::eprintln!("{first}\n{rest}");
    }
    ExitCode::FAILURE
}

/// A closed pipe (`nango config:list | head -1`) is the reader's choice, not a failure; any other
/// write error means the result was lost, so it must not exit 0. Data goes out byte for byte;
/// text for a person through anstream, which drops its colours where they are off.
fn print_result(printed: &Printed) -> ExitCode {
    fn write_line(out: &mut impl Write, text: &str) -> std::io::Result<()> {
        writeln!(out, "{text}")?;
        out.flush()
    }
    let written = match printed {
        Printed::Data(text) => write_line(&mut std::io::stdout().lock(), text),
        Printed::Text(text) => write_line(&mut anstream::stdout().lock(), text),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&format!("Could not write the result: {e}")),
    }
}
