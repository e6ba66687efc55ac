//! `nango import:nango`: runs the import of the server library, shows its progress on a
//! terminal (stderr, so that stdout keeps only the report), and prints the report: a summary for
//! a person, or JSON for scripts. The exit status tells whether anything was skipped.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nango_server::nango_import::{
    api::ApiVersion, Action, Counts, ImportOptions, ImportReport, Phase, Source,
};

use crate::cli::ImportNangoArgs;
use crate::output::{self, Printed};

/// Exit status when some items were skipped and the rest imported.
const PARTLY_IMPORTED: u8 = 3;

pub async fn run(args: ImportNangoArgs, json: bool) -> Result<(Printed, ExitCode), String> {
    let version = match args.nango_api_version.as_str() {
        "0.9" => ApiVersion::V09,
        "current" => ApiVersion::Current,
        _ => ApiVersion::Auto,
    };
    let source = Source::parse(
        &args.from,
        args.nango_db_schema.clone(),
        args.environment.clone(),
        args.nango_encryption_key.clone(),
        args.nango_secret_key.clone(),
        version,
    )
    .map_err(|e| format!("Could not import from Nango: {e}"))?;
    // How many at once is the library's choice, by this server's database.
    let options = ImportOptions {
        dry_run: args.dry_run,
        update: args.update,
        ..ImportOptions::default()
    };
    let meter = Meter::new(std::io::stderr().is_terminal());
    let report =
        nango_server::import_from_nango(args.server, source, options, &|phase, done, total| {
            meter.show(phase, done, total)
        })
        .await;
    meter.finish();
    let report =
        report.map_err(|e| format!("Could not import from Nango: {e}\nNothing was written."))?;
    let code = if report.anything_skipped() {
        ExitCode::from(PARTLY_IMPORTED)
    } else {
        ExitCode::SUCCESS
    };
    let printed = if json {
        // The skipped items also on their own, for scripts that only want those.
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        value["skipped"] =
            serde_json::to_value(report.skipped().collect::<Vec<_>>()).unwrap_or_default();
        Printed::Data(output::pretty(&value))
    } else {
        Printed::Text(summary(&report))
    };
    Ok((printed, code))
}

/// The report for a person: what was read, the counts, every skipped item with its reason,
/// the notes on items kept as they are here, and, for a dry run, every item.
fn summary(report: &ImportReport) -> String {
    let mut lines = Vec::new();
    let verb = if report.dry_run {
        "Would import"
    } else {
        "Imported"
    };
    lines.push(format!(
        "{verb} from {} ({}{})",
        report.source,
        report.layout,
        report
            .environment
            .as_ref()
            .map(|e| format!(", environment {e}"))
            .unwrap_or_default()
    ));
    lines.push(format!("  integrations: {}", counts(&report.configs)));
    lines.push(format!("  connections:  {}", counts(&report.connections)));
    if report.dry_run {
        lines.push(String::new());
        lines.push(output::paint(
            output::HEADER,
            "Dry run: nothing was written. It would do:",
        ));
        for item in &report.items {
            lines.push(format!(
                "  {:<18} {:<10} {}{}",
                action_name(item.action),
                item.kind,
                name(item),
                item.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
        }
    } else {
        let notes: Vec<_> = report
            .items
            .iter()
            .filter(|i| i.action != Action::Skipped && i.reason.is_some())
            .collect();
        if !notes.is_empty() {
            lines.push(String::new());
            lines.push(output::paint(output::HEADER, "Kept as they are here:"));
            for item in notes {
                lines.push(format!(
                    "  {} {}: {}",
                    item.kind,
                    name(item),
                    item.reason.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    let skipped: Vec<_> = report.skipped().collect();
    if !skipped.is_empty() {
        lines.push(String::new());
        lines.push(output::paint(
            output::WARNING,
            &format!("Skipped ({}), the rest was imported:", skipped.len()),
        ));
        for item in skipped {
            lines.push(format!(
                "  {} {}: {}",
                item.kind,
                name(item),
                item.reason.as_deref().unwrap_or("no reason given")
            ));
        }
    }
    let changed = report.configs.changed_at_source + report.connections.changed_at_source;
    if changed > 0 && !report.update {
        lines.push(String::new());
        lines.push(format!(
            "{changed} item(s) changed at the source since the last import: run again with --update to take them."
        ));
    }
    let taken = report.configs.new
        + report.configs.updated
        + report.connections.new
        + report.connections.updated;
    if taken == 0 && !report.dry_run {
        lines.push(String::new());
        lines.push(output::paint(
            output::SUCCESS,
            "Nothing new to import: what could be imported is as the last import left it.",
        ));
    } else if !report.dry_run && !report.anything_skipped() {
        lines.push(String::new());
        lines.push(output::paint(output::SUCCESS, "✅ Import complete."));
    }
    lines.join("\n")
}

fn counts(c: &Counts) -> String {
    format!(
        "{} new, {} updated, {} unchanged, {} changed at the source, {} skipped",
        c.new, c.updated, c.unchanged, c.changed_at_source, c.skipped
    )
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::New => "new",
        Action::Updated => "update",
        Action::Unchanged => "unchanged",
        Action::ChangedAtSource => "changed at source",
        Action::Skipped => "skip",
    }
}

fn name(item: &nango_server::nango_import::ItemOutcome) -> String {
    match &item.connection_id {
        Some(id) => format!("{} / {id}", item.provider_config_key),
        None => item.provider_config_key.clone(),
    }
}

/// A one-line progress meter on stderr (count and rate), on a terminal only, redrawn at most
/// ten times a second.
struct Meter {
    on: bool,
    state: Mutex<MeterState>,
}

struct MeterState {
    started: Instant,
    drawn: Option<Instant>,
    phase: Option<Phase>,
}

impl Meter {
    fn new(on: bool) -> Meter {
        Meter {
            on,
            state: Mutex::new(MeterState {
                started: Instant::now(),
                drawn: None,
                phase: None,
            }),
        }
    }

    fn show(&self, phase: Phase, done: usize, total: usize) {
        if !self.on {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        if state.phase != Some(phase) {
            state.phase = Some(phase);
            state.started = now;
        } else if done < total
            && state
                .drawn
                .is_some_and(|at| now - at < Duration::from_millis(100))
        {
            return;
        }
        state.drawn = Some(now);
        let seconds = (now - state.started).as_secs_f64().max(0.001);
        let verb = match phase {
            Phase::Reading => "reading",
            Phase::Importing => "importing",
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{verb} connections: {done}/{total} ({:.0}/s)",
            done as f64 / seconds
        );
        let _ = err.flush();
    }

    fn finish(&self) {
        let drawn = self
            .state
            .lock()
            .map(|s| s.drawn.is_some())
            .unwrap_or(false);
        if self.on && drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}
