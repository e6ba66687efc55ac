//! The results: what was measured (kept as measured, for the JSON file), the figures and ratios
//! derived from it with their targets, the printed table, and the endpoint errors that make the
//! bench exit non-zero. Targets are informational: a MISS never fails the run.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::storm::StormRun;
use crate::wrk::{Endpoint, LoadRun};

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub mode: String,
    pub started_at: String,
    pub total_seconds: f64,
    pub machine: Value,
    pub git: Value,
    pub settings: Value,
    pub process: Vec<ProcessRun>,
    pub seeds: Vec<SeedRun>,
    pub load: Vec<LoadRun>,
    pub storms: Vec<StormRun>,
    pub figures: Vec<Figure>,
    /// Endpoint errors and failed steps; any makes the bench exit non-zero.
    pub errors: Vec<String>,
}

/// Start-up and memory of one server process.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessRun {
    pub backend: String,
    /// Spawn to first 200 on `GET /health`, on an empty (new) database.
    pub healthy_after_ms: f64,
    /// VmRSS one second after start, before any request but `/health` probes.
    pub idle_rss_kb: u64,
    /// VmHWM after every load of this backend (wrk runs and the storm).
    pub peak_rss_kb: Option<u64>,
    /// Spawn to healthy again, on the same database once it holds every seeded connection.
    pub restart_healthy_after_ms: Option<f64>,
    pub restart_stored_connections: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedRun {
    pub backend: String,
    pub what: String,
    pub connections: u64,
    pub seconds: f64,
    pub per_second: f64,
    /// SQLite: the database file and its WAL afterwards, in MB.
    pub sqlite_file_mb: Option<f64>,
    pub sqlite_wal_mb: Option<f64>,
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub section: String,
    pub name: String,
    /// As printed.
    pub value: String,
    /// The same, as numbers.
    pub numbers: Map<String, Value>,
    pub target: Option<String>,
    /// `PASS` / `MISS` against the target (informational), `FAIL` for a correctness check.
    pub result: Option<String>,
}

/// The targets of issue 7, compared against (never asserted).
pub struct Targets {
    pub min_connection_health_ratio: f64,
    pub max_p99_ms_at_128: f64,
    pub max_scaling_ratio: f64,
    pub max_storm_over_ideal: f64,
    pub max_idle_rss_mb: f64,
    pub max_load_rss_mb: f64,
    pub max_healthy_ms: f64,
}

pub const TARGETS: Targets = Targets {
    min_connection_health_ratio: 0.5,
    max_p99_ms_at_128: 5.0,
    max_scaling_ratio: 1.3,
    max_storm_over_ideal: 2.0,
    max_idle_rss_mb: 30.0,
    max_load_rss_mb: 150.0,
    max_healthy_ms: 200.0,
};

/// CPU taken by other processes (or the hypervisor) above which a run is reported as disturbed.
const DISTURBED_PCT: f64 = 10.0;

fn pass(ok: bool) -> Option<String> {
    Some(if ok { "PASS" } else { "MISS" }.to_string())
}

fn numbers(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn describe_run(run: &LoadRun) -> String {
    let database = if run.backend == "postgres" {
        format!(" +db {:.0}", run.database_cpu_us_per_request)
    } else {
        String::new()
    };
    format!(
        "{:>7} req/s  p50 {:>5.2}  p99 {:>6.2} ms  cpu {:>3.0}{database} µs/req  {:>4.1} cs/req  others {:.0}%",
        grouped(run.requests_per_second.round() as u64),
        run.p50_ms,
        run.p99_ms,
        run.server_cpu_us_per_request,
        run.server_context_switches_per_request,
        run.other_cpu_pct + run.steal_pct
    )
}

fn run_numbers(run: &LoadRun) -> Map<String, Value> {
    numbers(json!({
        "requests_per_second": run.requests_per_second,
        "p50_ms": run.p50_ms,
        "p99_ms": run.p99_ms,
        "server_cpu_us_per_request": run.server_cpu_us_per_request,
        "server_context_switches_per_request": run.server_context_switches_per_request,
        "wrk_cpu_pct": run.wrk_cpu_pct,
        "database_cpu_us_per_request": run.database_cpu_us_per_request,
        "database_cpu_pct": run.database_cpu_pct,
        "other_cpu_pct": run.other_cpu_pct,
        "steal_pct": run.steal_pct,
    }))
}

impl Report {
    fn find(
        &self,
        backend: &str,
        endpoint: Endpoint,
        stored: Option<u64>,
        c: u32,
    ) -> Option<&LoadRun> {
        self.load.iter().find(|r| {
            r.backend == backend
                && r.endpoint == endpoint
                && r.concurrency == c
                && stored.is_none_or(|s| r.stored_connections == s)
        })
    }

    /// Derives the figures, ratios and target results from the runs.
    pub fn build_figures(&mut self, matrix_size: u64, concurrencies: &[u32], sizes: &[u64]) {
        let mut figures = Vec::new();
        let backends: Vec<String> = {
            let mut seen: Vec<String> = Vec::new();
            for b in self
                .process
                .iter()
                .map(|p| &p.backend)
                .chain(self.load.iter().map(|r| &r.backend))
            {
                if !seen.contains(b) {
                    seen.push(b.clone());
                }
            }
            seen
        };

        for process in &self.process {
            let section = format!("Process ({})", process.backend);
            let on_sqlite = process.backend == "sqlite";
            figures.push(Figure {
                section: section.clone(),
                name: "spawn -> healthy (new database)".into(),
                value: format!("{:.1} ms", process.healthy_after_ms),
                numbers: numbers(json!({"ms": process.healthy_after_ms})),
                target: on_sqlite.then(|| format!("< {:.0} ms", TARGETS.max_healthy_ms)),
                result: if on_sqlite {
                    pass(process.healthy_after_ms < TARGETS.max_healthy_ms)
                } else {
                    None
                },
            });
            if let (Some(ms), Some(stored)) = (
                process.restart_healthy_after_ms,
                process.restart_stored_connections,
            ) {
                figures.push(Figure {
                    section: section.clone(),
                    name: format!("restart -> healthy ({} stored)", grouped(stored)),
                    value: format!("{ms:.1} ms"),
                    numbers: numbers(json!({"ms": ms, "stored_connections": stored})),
                    target: on_sqlite.then(|| format!("< {:.0} ms", TARGETS.max_healthy_ms)),
                    result: if on_sqlite {
                        pass(ms < TARGETS.max_healthy_ms)
                    } else {
                        None
                    },
                });
            }
            figures.push(Figure {
                section: section.clone(),
                name: "RSS idle (1 s after start)".into(),
                value: format!("{:.1} MB", mb(process.idle_rss_kb)),
                numbers: numbers(json!({"mb": mb(process.idle_rss_kb)})),
                target: on_sqlite.then(|| format!("< {:.0} MB", TARGETS.max_idle_rss_mb)),
                result: if on_sqlite {
                    pass(mb(process.idle_rss_kb) < TARGETS.max_idle_rss_mb)
                } else {
                    None
                },
            });
            if let Some(peak) = process.peak_rss_kb {
                figures.push(Figure {
                    section: section.clone(),
                    name: "peak RSS under load (VmHWM)".into(),
                    value: format!("{:.1} MB", mb(peak)),
                    numbers: numbers(json!({"mb": mb(peak)})),
                    target: on_sqlite.then(|| format!("< {:.0} MB", TARGETS.max_load_rss_mb)),
                    result: if on_sqlite {
                        pass(mb(peak) < TARGETS.max_load_rss_mb)
                    } else {
                        None
                    },
                });
            }
        }

        for backend in &backends {
            let section = format!(
                "HTTP ({backend}, {} connections stored)",
                grouped(matrix_size)
            );
            for &c in concurrencies {
                let health = self.find(backend, Endpoint::Health, Some(matrix_size), c);
                let connection = self.find(backend, Endpoint::Connection, Some(matrix_size), c);
                let uncached =
                    self.find(backend, Endpoint::ConnectionUncached, Some(matrix_size), c);
                for run in [health, connection, uncached].into_iter().flatten() {
                    let (target, result) = if run.endpoint == Endpoint::Connection && c == 128 {
                        (
                            Some(format!("p99 < {:.0} ms", TARGETS.max_p99_ms_at_128)),
                            pass(run.p99_ms < TARGETS.max_p99_ms_at_128),
                        )
                    } else {
                        (None, None)
                    };
                    figures.push(Figure {
                        section: section.clone(),
                        name: format!("c={c:<3} {}", run.endpoint.label()),
                        value: describe_run(run),
                        numbers: run_numbers(run),
                        target,
                        result,
                    });
                }
                if let (Some(health), Some(connection)) = (health, connection) {
                    if health.requests_per_second > 0.0 {
                        let ratio = connection.requests_per_second / health.requests_per_second;
                        figures.push(Figure {
                            section: section.clone(),
                            name: format!("c={c:<3} throughput connection / health"),
                            value: format!("{ratio:.2}"),
                            numbers: numbers(json!({"ratio": ratio})),
                            target: Some(format!(">= {:.2}", TARGETS.min_connection_health_ratio)),
                            result: pass(ratio >= TARGETS.min_connection_health_ratio),
                        });
                    }
                }
            }
        }

        // The proxy: the same small GET to the fake API directly and through /proxy, in the
        // same run. The fake API runs in the bench process, so the server CPU of a proxied run
        // is the proxy's own.
        for &c in concurrencies {
            let direct = self.find("sqlite", Endpoint::ProxyDirect, None, c);
            let proxied = self.find("sqlite", Endpoint::Proxy, None, c);
            let (Some(direct), Some(proxied)) = (direct, proxied) else {
                continue;
            };
            let section = "Proxy overhead (sqlite, an API-key connection, fake API on loopback)";
            for run in [direct, proxied] {
                figures.push(Figure {
                    section: section.into(),
                    name: format!("c={c:<3} {}", run.endpoint.label()),
                    value: describe_run(run),
                    numbers: run_numbers(run),
                    target: None,
                    result: None,
                });
            }
            let added_p50 = proxied.p50_ms - direct.p50_ms;
            let added_p99 = proxied.p99_ms - direct.p99_ms;
            let ratio = if direct.requests_per_second > 0.0 {
                proxied.requests_per_second / direct.requests_per_second
            } else {
                0.0
            };
            figures.push(Figure {
                section: section.into(),
                name: format!("c={c:<3} added by the proxy"),
                value: format!(
                    "p50 +{added_p50:.2} ms  p99 +{added_p99:.2} ms  throughput x{ratio:.2}"
                ),
                numbers: numbers(json!({
                    "added_p50_ms": added_p50,
                    "added_p99_ms": added_p99,
                    "throughput_ratio": ratio,
                })),
                target: None,
                result: None,
            });
        }

        // Scaling with stored connections (SQLite; every size at c=16). The target applies where
        // the number stored is the only change between sizes: a fixed working set through the
        // read cache, and the store's own lookup (cache off). Uniform picks over all stored
        // connections through the cache also grow the working set past the cache's size, so
        // most become misses: shown, not judged.
        if sizes.len() > 1 {
            for (endpoint, what, judged) in [
                (
                    Endpoint::ConnectionHotSet,
                    "default cache, 1k hot set",
                    true,
                ),
                (
                    Endpoint::ConnectionUncached,
                    "cache off, uniform picks",
                    true,
                ),
                (Endpoint::Connection, "default cache, uniform picks", false),
            ] {
                let section = format!("Hot path vs stored connections (sqlite, c=16, {what})");
                let runs: Vec<&LoadRun> = sizes
                    .iter()
                    .filter_map(|&s| self.find("sqlite", endpoint, Some(s), 16))
                    .collect();
                for run in &runs {
                    figures.push(Figure {
                        section: section.clone(),
                        name: format!("{} stored", grouped(run.stored_connections)),
                        value: describe_run(run),
                        numbers: run_numbers(run),
                        target: None,
                        result: None,
                    });
                }
                let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
                    continue;
                };
                if runs.len() < 2 {
                    continue;
                }
                let label = format!(
                    "{}/{}",
                    short(last.stored_connections),
                    short(first.stored_connections)
                );
                for (what, a, b) in [
                    ("p50", last.p50_ms, first.p50_ms),
                    ("p99", last.p99_ms, first.p99_ms),
                ] {
                    let ratio = if b > 0.0 { a / b } else { 0.0 };
                    figures.push(Figure {
                        section: section.clone(),
                        name: format!("{what} latency ratio {label}"),
                        value: format!("{ratio:.2}"),
                        numbers: numbers(json!({"ratio": ratio})),
                        target: judged.then(|| format!("<= {:.1}", TARGETS.max_scaling_ratio)),
                        result: if judged {
                            pass(ratio <= TARGETS.max_scaling_ratio)
                        } else {
                            None
                        },
                    });
                }
            }
        }

        for storm in &self.storms {
            let section = format!("Refresh storm ({})", storm.backend);
            let budget = storm.ideal_seconds * TARGETS.max_storm_over_ideal;
            figures.push(Figure {
                section: section.clone(),
                name: format!(
                    "serve {} expired, {} in flight, cap {}/provider",
                    grouped(storm.connections),
                    storm.concurrency,
                    storm.refresh_concurrency,
                ),
                value: format!(
                    "{:.2} s  ({:.0}/s; ideal {:.2} s at {} ms/refresh)",
                    storm.seconds,
                    storm.connections as f64 / storm.seconds.max(1e-9),
                    storm.ideal_seconds,
                    storm.provider_delay_ms
                ),
                numbers: numbers(json!({
                    "seconds": storm.seconds,
                    "ideal_seconds": storm.ideal_seconds,
                    "over_ideal": storm.seconds / storm.ideal_seconds.max(1e-9),
                })),
                target: Some(format!("<= {budget:.2} s (2x ideal)")),
                result: pass(storm.seconds <= budget),
            });
            figures.push(Figure {
                section: section.clone(),
                name: "request latency".into(),
                value: format!(
                    "p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms; cpu {:.2}{} ms/connection",
                    storm.p50_ms,
                    storm.p99_ms,
                    storm.max_ms,
                    storm.server_cpu_ms_per_connection,
                    if storm.database_cpu_ms_per_connection > 0.0 {
                        format!(" +db {:.2}", storm.database_cpu_ms_per_connection)
                    } else {
                        String::new()
                    }
                ),
                numbers: numbers(json!({
                    "p50_ms": storm.p50_ms, "p99_ms": storm.p99_ms, "max_ms": storm.max_ms,
                    "server_cpu_ms_per_connection": storm.server_cpu_ms_per_connection,
                    "database_cpu_ms_per_connection": storm.database_cpu_ms_per_connection,
                })),
                target: None,
                result: None,
            });
            let calls = storm.refresh_calls + storm.refresh_calls_before;
            figures.push(Figure {
                section: section.clone(),
                name: "refresh calls at the provider".into(),
                value: format!(
                    "{} ({} before the storm by the proactive refresher, {} duplicates)",
                    grouped(calls),
                    storm.refresh_calls_before,
                    storm.duplicate_refreshes
                ),
                numbers: numbers(json!({
                    "calls": calls,
                    "before_storm": storm.refresh_calls_before,
                    "duplicates": storm.duplicate_refreshes,
                })),
                target: Some(format!("= {}", grouped(storm.connections))),
                result: Some(
                    if calls == storm.connections && storm.duplicate_refreshes == 0 {
                        "PASS"
                    } else {
                        "FAIL"
                    }
                    .into(),
                ),
            });
            let errors = storm.non_2xx + storm.transport_errors + storm.stale_tokens;
            figures.push(Figure {
                section,
                name: "errors".into(),
                value: format!(
                    "{} non-2xx, {} transport, {} expired tokens handed out",
                    storm.non_2xx, storm.transport_errors, storm.stale_tokens
                ),
                numbers: numbers(json!({
                    "non_2xx": storm.non_2xx,
                    "transport": storm.transport_errors,
                    "stale_tokens": storm.stale_tokens,
                })),
                target: Some("0".into()),
                result: Some(if errors == 0 { "PASS" } else { "FAIL" }.into()),
            });
        }

        for seed in &self.seeds {
            figures.push(Figure {
                section: "Seeding (through the store; informational)".into(),
                name: format!("{}: {}", seed.backend, seed.what),
                value: format!(
                    "{} in {:.1} s ({}/s){}",
                    grouped(seed.connections),
                    seed.seconds,
                    grouped(seed.per_second.round() as u64),
                    match (seed.sqlite_file_mb, seed.sqlite_wal_mb) {
                        (Some(file), Some(wal)) => format!("; file {file:.0} MB, WAL {wal:.0} MB"),
                        _ => String::new(),
                    }
                ),
                numbers: numbers(json!({
                    "connections": seed.connections,
                    "seconds": seed.seconds,
                    "per_second": seed.per_second,
                    "sqlite_file_mb": seed.sqlite_file_mb,
                    "sqlite_wal_mb": seed.sqlite_wal_mb,
                })),
                target: None,
                result: None,
            });
        }
        let disturbed: Vec<String> = self
            .load
            .iter()
            .filter(|r| r.other_cpu_pct + r.steal_pct > DISTURBED_PCT)
            .map(|r| {
                format!(
                    "{} {} c={} ({:.0}%)",
                    r.backend,
                    r.endpoint.label(),
                    r.concurrency,
                    r.other_cpu_pct + r.steal_pct
                )
            })
            .collect();
        figures.push(Figure {
            section: "Measurement".into(),
            name: format!("runs disturbed by other work (others > {DISTURBED_PCT:.0}%)"),
            value: if disturbed.is_empty() {
                "none".into()
            } else {
                let listed: Vec<&str> = disturbed.iter().take(3).map(String::as_str).collect();
                format!(
                    "{} of {} runs: {}{}",
                    disturbed.len(),
                    self.load.len(),
                    listed.join(", "),
                    if disturbed.len() > listed.len() {
                        ", ..."
                    } else {
                        ""
                    }
                )
            },
            numbers: numbers(json!({"disturbed": disturbed.len(), "runs": self.load.len()})),
            target: None,
            result: None,
        });
        self.figures = figures;
    }

    /// Endpoint errors of the runs (non-2xx, socket errors, wrong refresh counts).
    pub fn collect_endpoint_errors(&mut self) {
        for run in &self.load {
            let w = &run.wrk;
            if w.status_errors > 0 || w.socket_errors() > 0 {
                self.errors.push(format!(
                    "{} {} c={} ({} stored): {} non-2xx, {} connect / {} read / {} write errors, {} timeouts",
                    run.backend,
                    run.endpoint.label(),
                    run.concurrency,
                    run.stored_connections,
                    w.status_errors,
                    w.connect_errors,
                    w.read_errors,
                    w.write_errors,
                    w.timeouts
                ));
            }
            if w.requests == 0 {
                self.errors.push(format!(
                    "{} {} c={}: no request completed",
                    run.backend,
                    run.endpoint.label(),
                    run.concurrency
                ));
            }
        }
        for storm in &self.storms {
            let calls = storm.refresh_calls + storm.refresh_calls_before;
            if storm.non_2xx + storm.transport_errors + storm.stale_tokens > 0 {
                self.errors.push(format!(
                    "{} refresh storm: {} non-2xx, {} transport errors, {} expired tokens handed out; e.g. {:?}",
                    storm.backend,
                    storm.non_2xx,
                    storm.transport_errors,
                    storm.stale_tokens,
                    storm.sample_errors
                ));
            }
            if calls != storm.connections
                || storm.duplicate_refreshes > 0
                || storm.bad_token_requests > 0
            {
                self.errors.push(format!(
                    "{} refresh storm: {calls} refresh calls for {} connections ({} duplicates, {} bad token requests)",
                    storm.backend,
                    storm.connections,
                    storm.duplicate_refreshes,
                    storm.bad_token_requests
                ));
            }
        }
    }

    /// The table of every figure, grouped by section.
    pub fn print_table(&self) {
        let name_width = self
            .figures
            .iter()
            .map(|f| f.name.chars().count())
            .max()
            .unwrap_or(0);
        let value_width = self
            .figures
            .iter()
            .map(|f| f.value.chars().count())
            .max()
            .unwrap_or(0);
        let target_width = self
            .figures
            .iter()
            .map(|f| f.target.as_deref().unwrap_or("").chars().count())
            .max()
            .unwrap_or(0);
        let rule = "-".repeat(name_width + value_width + target_width + 14);
        let mut section = "";
        println!();
        println!(
            "cpu: server CPU time per request (+db: PostgreSQL's); cs: server context switches \
             per request; others: \
             CPU the machine spent on anything but the server, its database and wrk (or lost to the \
             hypervisor) during the run, in % of all CPUs; above a few %, the run was disturbed."
        );
        println!("{rule}");
        for figure in &self.figures {
            if figure.section != section {
                section = &figure.section;
                println!("{section}");
            }
            println!(
                "  {:<name_width$}  {:<value_width$}  {:<target_width$}  {}",
                figure.name,
                figure.value,
                figure.target.as_deref().unwrap_or(""),
                figure.result.as_deref().unwrap_or("")
            );
        }
        println!("{rule}");
    }
}

/// 1000 -> "1k", 1000000 -> "1M".
fn short(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}
