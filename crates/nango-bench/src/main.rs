//! `nango-bench`: the benchmark behind `scripts/bench` (issue 7). It starts the real
//! `target/release/nango serve` on SQLite and on PostgreSQL, seeds connections through the
//! server library's store, loads the server with `wrk`, runs a refresh storm against a local fake
//! provider, and prints one table (also written as JSON). Figures are compared with the targets,
//! informationally; only endpoint errors make it exit non-zero.

mod fake_provider;
mod report;
mod seed;
mod server;
mod storm;
mod wrk;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use chrono::Utc;
use clap::Parser;
use serde_json::json;

use fake_provider::FakeProvider;
use report::{ProcessRun, Report, SeedRun};
use seed::{Seeder, HOT, STORM};
use server::{Server, ServerConfig};
use wrk::{Endpoint, Load, PROXY_CONFIG, PROXY_CONNECTION};

/// The provider config every connection belongs to, and its template in the providers file.
const CONFIG_KEY: &str = "bench";
const PROVIDER: &str = "bench-provider";

#[derive(Debug, Parser)]
#[command(about = "Benchmark the real `nango serve` (see scripts/bench)")]
struct Args {
    /// Small and quick: 1k connections, a 1k storm, 2 s per measurement
    #[arg(long)]
    smoke: bool,
    /// Where the JSON results go [default: target/bench/results.json, smoke-results.json with --smoke]
    #[arg(long, env = "NANGO_BENCH_OUT")]
    out: Option<PathBuf>,
    /// Seconds per measurement [default: 10, 2 with --smoke]
    #[arg(long, env = "NANGO_BENCH_SECONDS")]
    seconds: Option<u64>,
    /// Stored connections: the first for the throughput runs, all for the scaling runs on SQLite
    /// [default: 1000,100000,1000000; 1000,5000 with --smoke]
    #[arg(long, env = "NANGO_BENCH_SIZES", value_delimiter = ',')]
    sizes: Vec<u64>,
    /// Expired connections of the refresh storm [default: 10000, 1000 with --smoke]
    #[arg(long, env = "NANGO_BENCH_STORM")]
    storm: Option<u64>,
    /// Storm requests in flight at once
    #[arg(long, env = "NANGO_BENCH_STORM_CONCURRENCY", default_value_t = 512)]
    storm_concurrency: usize,
    /// The server's cap on refreshes in flight per provider (NANGO_REFRESH_CONCURRENCY)
    #[arg(long, env = "NANGO_BENCH_REFRESH_CONCURRENCY", default_value_t = 64)]
    refresh_concurrency: usize,
    /// How long the fake provider takes to answer a refresh
    #[arg(long, env = "NANGO_BENCH_PROVIDER_DELAY_MS", default_value_t = 20)]
    provider_delay_ms: u64,
    /// PostgreSQL server on which a fresh database is created (and dropped after). The default
    /// is on this machine without TLS, as a co-located database is reached (its socket or
    /// loopback); without `sslmode`, sqlx negotiates TLS when the server offers it (Debian's
    /// does), which costs CPU on both sides of every statement.
    #[arg(
        long,
        env = "NANGO_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    )]
    postgres_url: String,
    /// Upserts in flight while seeding [default: 1 on SQLite (one writer), 32 on PostgreSQL]
    #[arg(long, env = "NANGO_BENCH_SEED_CONCURRENCY")]
    seed_concurrency: Option<usize>,
    /// Backends to run
    #[arg(
        long,
        env = "NANGO_BENCH_BACKENDS",
        value_delimiter = ',',
        default_value = "sqlite,postgres"
    )]
    backends: Vec<String>,
    /// The server binary
    #[arg(
        long,
        env = "NANGO_BENCH_NANGO",
        default_value = "target/release/nango"
    )]
    nango: PathBuf,
    /// LOG_LEVEL of the server
    #[arg(long, env = "NANGO_BENCH_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Keep the run's directory (SQLite database, wrk scripts, providers file) to look into
    #[arg(long, env = "NANGO_BENCH_KEEP", value_parser = clap::builder::BoolishValueParser::new())]
    keep: bool,
    /// Directory for the databases, logs and scripts of the run
    #[arg(long, env = "NANGO_BENCH_DIR", default_value = "target/bench")]
    dir: PathBuf,
}

/// What this run measures, resolved from the arguments.
struct Plan {
    smoke: bool,
    seconds: u64,
    warmup_seconds: u64,
    sizes: Vec<u64>,
    concurrencies: Vec<u32>,
    storm: u64,
    storm_concurrency: usize,
    refresh_concurrency: usize,
    seed_concurrency: Option<usize>,
    provider_delay: Duration,
    backends: Vec<String>,
    postgres_url: String,
    nango: PathBuf,
    log_level: String,
    keep: bool,
    dir: PathBuf,
    out: PathBuf,
}

impl Plan {
    fn from_args(args: Args) -> Result<Plan> {
        let smoke = args.smoke;
        let mut sizes = if args.sizes.is_empty() {
            if smoke {
                vec![1000, 5000]
            } else {
                vec![1000, 100_000, 1_000_000]
            }
        } else {
            args.sizes
        };
        sizes.sort_unstable();
        sizes.dedup();
        if sizes.first().is_none_or(|&n| n == 0) {
            bail!("NANGO_BENCH_SIZES must be positive numbers");
        }
        for backend in &args.backends {
            if !matches!(backend.as_str(), "sqlite" | "postgres") {
                bail!("unknown backend {backend:?} (sqlite, postgres)");
            }
        }
        Ok(Plan {
            smoke,
            seconds: args.seconds.unwrap_or(if smoke { 2 } else { 10 }).max(1),
            warmup_seconds: 1,
            sizes,
            concurrencies: vec![1, 16, 128],
            storm: args.storm.unwrap_or(if smoke { 1000 } else { 10_000 }),
            storm_concurrency: args.storm_concurrency.max(1),
            refresh_concurrency: args.refresh_concurrency.max(1),
            seed_concurrency: args.seed_concurrency.map(|n| n.max(1)),
            provider_delay: Duration::from_millis(args.provider_delay_ms),
            backends: args.backends,
            postgres_url: args.postgres_url,
            nango: args.nango,
            log_level: args.log_level,
            keep: args.keep,
            out: args.out.unwrap_or_else(|| {
                args.dir.join(if smoke {
                    "smoke-results.json"
                } else {
                    "results.json"
                })
            }),
            dir: args.dir,
        })
    }
}

/// What every backend's run shares.
struct Shared {
    secret_key: String,
    encryption_key: String,
    providers_file: PathBuf,
    provider: FakeProvider,
    run_dir: tempfile::TempDir,
    ticks_per_second: u64,
    http: reqwest::Client,
}

#[tokio::main]
async fn main() -> ExitCode {
    let plan = match Plan::from_args(Args::parse()) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("nango-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&plan).await {
        Ok(report) if report.errors.is_empty() => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!("\nErrors (endpoints that failed, steps that could not run):");
            for error in &report.errors {
                eprintln!("  - {error}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("nango-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(plan: &Plan) -> Result<Report> {
    let started = Instant::now();
    if !plan.nango.exists() {
        bail!(
            "{} is missing: cargo build --release -p nango-cli",
            plan.nango.display()
        );
    }
    std::fs::create_dir_all(&plan.dir)?;
    let provider = FakeProvider::start(plan.provider_delay).await?;
    let run_dir = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&plan.dir)?;
    let providers_file = run_dir.path().join("providers.yaml");
    std::fs::write(
        &providers_file,
        format!(
            "{PROVIDER}:\n  auth_mode: OAUTH2\n  authorization_url: {url}/authorize\n  token_url: {url}/token\n\
             {PROXY_CONFIG}:\n  auth_mode: API_KEY\n  base_api_url: {url}/api\n  api_key:\n    header: X-Api-Key\n",
            url = provider.url
        ),
    )?;
    let ctx = Shared {
        secret_key: hex_bytes(16)?,
        encryption_key: base64::engine::general_purpose::STANDARD.encode(random_bytes(32)?),
        providers_file,
        provider,
        run_dir,
        ticks_per_second: server::clock_ticks_per_second(),
        http: reqwest::Client::new(),
    };

    let mut report = Report {
        mode: if plan.smoke { "smoke" } else { "full" }.into(),
        started_at: nango_server::credentials::iso_millis(Utc::now()),
        machine: machine(),
        git: git(),
        settings: settings(plan),
        ..Report::default()
    };
    print_header(plan, &report);

    for backend in &plan.backends {
        let result = match backend.as_str() {
            "sqlite" => {
                let url = format!("sqlite://{}", ctx.run_dir.path().join("nango.db").display());
                bench_backend(plan, &ctx, "sqlite", &url, &mut report).await
            }
            _ => bench_postgres(plan, &ctx, &mut report).await,
        };
        if let Err(e) = result {
            eprintln!("!! {backend}: {e:#}");
            report.errors.push(format!("{backend}: {e:#}"));
        }
    }

    report.total_seconds = started.elapsed().as_secs_f64();
    // Other work on the machine skews every figure; the load average shows whether there was any.
    report.machine["load_average_at_end"] = json!(std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .ok());
    report.collect_endpoint_errors();
    report.build_figures(plan.sizes[0], &plan.concurrencies, &plan.sizes);
    report.print_table();
    if plan.keep {
        let kept = ctx.run_dir.keep();
        println!("Kept the run's directory: {}", kept.display());
    }
    if let Some(parent) = plan.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&plan.out, serde_json::to_string_pretty(&report)?)?;
    println!(
        "{} mode: {:.0} s in all (after the build). JSON: {}",
        report.mode,
        report.total_seconds,
        plan.out.display()
    );
    Ok(report)
}

/// A fresh database on the PostgreSQL server, benchmarked, then dropped whatever happened.
async fn bench_postgres(plan: &Plan, ctx: &Shared, report: &mut Report) -> Result<()> {
    use sqlx::Connection;
    let name = format!("nango_bench_{}_{}", std::process::id(), hex_bytes(4)?);
    let mut admin = sqlx::PgConnection::connect(&plan.postgres_url)
        .await
        .with_context(|| {
            format!(
                "connecting to PostgreSQL at {} (NANGO_BENCH_POSTGRES_URL)",
                redact(&plan.postgres_url)
            )
        })?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await?;
    let mut url = url::Url::parse(&plan.postgres_url)?;
    url.set_path(&name);
    let result = bench_backend(plan, ctx, "postgres", url.as_str(), report).await;
    // The server has stopped, but the seeder's pool may still be closing: FORCE (PostgreSQL
    // 13+) ends its sessions; older servers get a plain DROP.
    let drop = format!("DROP DATABASE IF EXISTS \"{name}\"");
    let dropped = match sqlx::query(&format!("{drop} WITH (FORCE)"))
        .execute(&mut admin)
        .await
    {
        Ok(_) => Ok(()),
        Err(_) => sqlx::query(&drop).execute(&mut admin).await.map(|_| ()),
    };
    if let Err(e) = dropped {
        eprintln!("!! could not drop the database {name}: {e}");
    }
    result
}

/// Everything measured on one backend, in order: start-up and idle memory, the throughput
/// matrix, (SQLite) the hot path as the table grows, the refresh storm, memory after load, and
/// (SQLite) a restart on the full database.
async fn bench_backend(
    plan: &Plan,
    ctx: &Shared,
    backend: &str,
    database_url: &str,
    report: &mut Report,
) -> Result<()> {
    eprintln!("\n== {backend}");
    let log = plan.dir.join(format!("server-{backend}.log"));
    let config = || ServerConfig {
        nango: &plan.nango,
        database_url,
        secret_key: &ctx.secret_key,
        encryption_key: &ctx.encryption_key,
        providers_file: &ctx.providers_file,
        log_level: &plan.log_level,
        log: log.clone(),
        cache_size: None,
        refresh_concurrency: plan.refresh_concurrency,
    };
    let server = Server::start(config()).await?;
    eprintln!(
        "  healthy {:.1} ms after spawn (pid {}, log {})",
        server.healthy_after.as_secs_f64() * 1000.0,
        server.pid,
        log.display()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut process = ProcessRun {
        backend: backend.into(),
        healthy_after_ms: server.healthy_after.as_secs_f64() * 1000.0,
        idle_rss_kb: server.memory()?.rss_kb,
        ..ProcessRun::default()
    };
    report.process.push(process.clone());
    let process_index = report.process.len() - 1;

    // A second server on the same database without the read cache: the store's own cost, and
    // how it scales, beside the cached figures. Idle except while it is measured.
    let uncached = Server::start(ServerConfig {
        cache_size: Some(0),
        log: plan.dir.join(format!("server-{backend}-uncached.log")),
        ..config()
    })
    .await?;
    let result = load_backend(plan, ctx, backend, database_url, &server, uncached, report).await;
    if let Ok(memory) = server.memory() {
        process.peak_rss_kb = Some(memory.peak_kb);
    }
    let stopped = server.stop().await;
    report.process[process_index] = process.clone();
    result?;
    stopped?;

    if backend == "sqlite" {
        let stored = plan.sizes.last().copied().unwrap_or(0) + plan.storm;
        let again = Server::start(config()).await?;
        let ms = again.healthy_after.as_secs_f64() * 1000.0;
        eprintln!("  restart on {stored} stored connections: healthy {ms:.1} ms after spawn");
        again.stop().await?;
        process.restart_healthy_after_ms = Some(ms);
        process.restart_stored_connections = Some(stored);
        report.process[process_index] = process;
    }
    Ok(())
}

async fn load_backend(
    plan: &Plan,
    ctx: &Shared,
    backend: &str,
    database_url: &str,
    server: &Server,
    uncached: Server,
    report: &mut Report,
) -> Result<()> {
    create_config(ctx, server).await?;
    // SQLite has one writer: concurrent upserts only queue on its lock.
    let concurrency = plan
        .seed_concurrency
        .unwrap_or(if backend == "sqlite" { 1 } else { 32 });
    let seeder = Seeder::open(database_url, &ctx.encryption_key, concurrency).await?;
    let far_future = Utc::now() + chrono::Duration::days(3650);

    let matrix_size = plan.sizes[0];
    seed_hot(&seeder, backend, 1..=matrix_size, far_future, report).await?;
    let database = postgres_database_name(database_url);
    let measure = |endpoint, stored_connections, concurrency, seconds| Load {
        backend,
        endpoint,
        config_key: CONFIG_KEY,
        stored_connections,
        concurrency,
        seconds,
        database: database.as_deref(),
        url: None,
    };
    let dir = ctx.run_dir.path();
    for (endpoint, target) in [
        (Endpoint::Connection, server),
        (Endpoint::ConnectionUncached, &uncached),
    ] {
        let warm_up = measure(endpoint, matrix_size, 16, plan.warmup_seconds);
        wrk::run(target, &ctx.secret_key, dir, ctx.ticks_per_second, &warm_up).await?;
    }
    for &c in &plan.concurrencies {
        for endpoint in [
            Endpoint::Health,
            Endpoint::Connection,
            Endpoint::ConnectionUncached,
        ] {
            let target = match endpoint {
                Endpoint::ConnectionUncached => &uncached,
                _ => server,
            };
            let load = measure(endpoint, matrix_size, c, plan.seconds);
            let run = wrk::run(target, &ctx.secret_key, dir, ctx.ticks_per_second, &load).await?;
            print_run(&run);
            report.load.push(run);
        }
    }

    // What the proxy adds: the same small GET to the fake API directly and through /proxy.
    if backend == "sqlite" {
        create_proxy_connection(ctx, server).await?;
        for &c in &plan.concurrencies {
            for endpoint in [Endpoint::ProxyDirect, Endpoint::Proxy] {
                let load = Load {
                    url: (endpoint == Endpoint::ProxyDirect).then_some(ctx.provider.url.as_str()),
                    ..measure(endpoint, matrix_size, c, plan.seconds)
                };
                let run =
                    wrk::run(server, &ctx.secret_key, dir, ctx.ticks_per_second, &load).await?;
                print_run(&run);
                report.load.push(run);
            }
        }
    }

    if backend == "sqlite" && plan.sizes.len() > 1 {
        // The matrix measured the first size at c=16, but for the hot set, which at the first
        // size is every stored connection: its baseline.
        for (index, size) in plan.sizes.iter().copied().enumerate() {
            if index > 0 {
                let stored = plan.sizes[index - 1];
                seed_hot(&seeder, backend, stored + 1..=size, far_future, report).await?;
            }
            let endpoints: &[(Endpoint, &Server)] = if index == 0 {
                &[(Endpoint::ConnectionHotSet, server)]
            } else {
                &[
                    (Endpoint::Connection, server),
                    (Endpoint::ConnectionHotSet, server),
                    (Endpoint::ConnectionUncached, &uncached),
                ]
            };
            for &(endpoint, target) in endpoints {
                let warm_up = measure(endpoint, size, 16, plan.warmup_seconds);
                wrk::run(target, &ctx.secret_key, dir, ctx.ticks_per_second, &warm_up).await?;
                let load = measure(endpoint, size, 16, plan.seconds);
                let run =
                    wrk::run(target, &ctx.secret_key, dir, ctx.ticks_per_second, &load).await?;
                eprintln!(
                    "  {size} stored, c=16, {}: {:.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
                    endpoint.label(),
                    run.requests_per_second,
                    run.p50_ms,
                    run.p99_ms
                );
                report.load.push(run);
            }
        }
    }

    // Its proactive refresher must not take part in the storm.
    uncached.stop().await?;

    if plan.storm > 0 {
        eprintln!("  seeding {} expired connections for the storm", plan.storm);
        ctx.provider.forget_refresh_tokens();
        let counts_at_seed = ctx.provider.counts();
        let expired = Utc::now() - chrono::Duration::hours(1);
        let took = seeder
            .seed(CONFIG_KEY, STORM, 1..=plan.storm, expired)
            .await?;
        report.seeds.push(seed_run(
            &seeder,
            backend,
            "expired tokens for the storm".into(),
            plan.storm,
            took,
        ));
        let storm = storm::Storm {
            backend,
            base_url: &server.url,
            secret_key: &ctx.secret_key,
            config_key: CONFIG_KEY,
            connections: plan.storm,
            concurrency: plan.storm_concurrency,
            refresh_concurrency: plan.refresh_concurrency,
            provider_delay: plan.provider_delay,
            counts_at_seed,
        };
        let database_cpu = server::DatabaseCpu::start(database.as_deref());
        let cpu_before = server.cpu_ticks()?;
        let mut run = storm::run(&storm, &ctx.provider).await?;
        let per_connection =
            |ticks: u64| ticks as f64 * 1000.0 / ctx.ticks_per_second as f64 / plan.storm as f64;
        run.server_cpu_ms_per_connection =
            per_connection(server.cpu_ticks()?.saturating_sub(cpu_before));
        run.database_cpu_ms_per_connection = per_connection(database_cpu.ticks_since_start());
        eprintln!(
            "  storm: {} connections in {:.2} s, {} refresh calls, {} errors",
            run.connections,
            run.seconds,
            run.refresh_calls + run.refresh_calls_before,
            run.non_2xx + run.transport_errors + run.stale_tokens
        );
        report.storms.push(run);
    }
    Ok(())
}

/// Seeds hot-path connections (valid for years) and records how long it took.
async fn seed_hot(
    seeder: &Seeder,
    backend: &str,
    ids: std::ops::RangeInclusive<u64>,
    expires_at: chrono::DateTime<Utc>,
    report: &mut Report,
) -> Result<()> {
    eprintln!("  seeding connections {}..={}", ids.start(), ids.end());
    let what = format!("valid tokens {}..={}", ids.start(), ids.end());
    let n = ids.end() + 1 - ids.start();
    let took = seeder.seed(CONFIG_KEY, HOT, ids, expires_at).await?;
    report.seeds.push(seed_run(seeder, backend, what, n, took));
    Ok(())
}

/// The database of a PostgreSQL URL (`None` for SQLite).
fn postgres_database_name(database_url: &str) -> Option<String> {
    if database_url.starts_with("sqlite:") {
        return None;
    }
    let url = url::Url::parse(database_url).ok()?;
    Some(url.path().trim_start_matches('/').to_string()).filter(|name| !name.is_empty())
}

fn seed_run(seeder: &Seeder, backend: &str, what: String, n: u64, took: Duration) -> SeedRun {
    let sizes = seeder.sqlite_sizes();
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    SeedRun {
        backend: backend.into(),
        what,
        connections: n,
        seconds: took.as_secs_f64(),
        per_second: n as f64 / took.as_secs_f64().max(1e-9),
        sqlite_file_mb: sizes.map(|(file, _)| mb(file)),
        sqlite_wal_mb: sizes.map(|(_, wal)| mb(wal)),
    }
}

/// One line of progress per measured run.
fn print_run(run: &wrk::LoadRun) {
    eprintln!(
        "  c={:<3} {:<36} {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  {} errors",
        run.concurrency,
        run.endpoint.label(),
        run.requests_per_second,
        run.p50_ms,
        run.p99_ms,
        run.wrk.status_errors + run.wrk.socket_errors()
    );
}

/// `POST /config` for the fake provider's template, with the secret key.
async fn create_config(ctx: &Shared, server: &Server) -> Result<()> {
    post_json(
        ctx,
        server,
        "/config",
        json!({
            "provider_config_key": CONFIG_KEY,
            "provider": PROVIDER,
            "oauth_client_id": "bench-client",
            "oauth_client_secret": "bench-secret",
            "oauth_scopes": "read",
        }),
    )
    .await
}

/// The API-key config and connection of the proxy runs.
async fn create_proxy_connection(ctx: &Shared, server: &Server) -> Result<()> {
    post_json(
        ctx,
        server,
        "/config",
        json!({"provider_config_key": PROXY_CONFIG, "provider": PROXY_CONFIG,
               "oauth_client_id": "", "oauth_client_secret": "", "oauth_scopes": ""}),
    )
    .await?;
    post_json(
        ctx,
        server,
        "/connection",
        json!({"provider_config_key": PROXY_CONFIG, "connection_id": PROXY_CONNECTION,
               "api_key": fake_provider::API_KEY}),
    )
    .await
}

/// A POST of `body` to the server with the secret key, which must succeed.
async fn post_json(
    ctx: &Shared,
    server: &Server,
    path: &str,
    body: serde_json::Value,
) -> Result<()> {
    let response = ctx
        .http
        .post(format!("{}{path}", server.url))
        .basic_auth(&ctx.secret_key, Some(""))
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        bail!("POST {path} answered {status}: {}", response.text().await?);
    }
    Ok(())
}

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes)
}

fn hex_bytes(n: usize) -> Result<String> {
    Ok(random_bytes(n)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_string());
    let memory_kb = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .ok()
    };
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": cpu_model,
        "memory_mb": memory_kb.map(|kb| kb / 1024),
        "kernel": read("/proc/sys/kernel/osrelease"),
        "load_average_at_start": read("/proc/loadavg"),
        "wrk": command_output("wrk", &["--version"]).and_then(|v| v.lines().next().map(str::to_string)),
        // Set by scripts/bench (NANGO_BENCH_PROFILE): a debug build's figures are not comparable.
        "build": std::env::var("NANGO_BENCH_BUILD").unwrap_or_else(|_| "release".into()),
    })
}

fn git() -> serde_json::Value {
    json!({
        "commit": command_output("git", &["rev-parse", "HEAD"]).map(|s| s.trim().to_string()),
        "dirty": command_output("git", &["status", "--porcelain"]).map(|s| !s.trim().is_empty()),
    })
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    // wrk prints its version on stdout and exits 1.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (!text.trim().is_empty()).then_some(text)
}

fn settings(plan: &Plan) -> serde_json::Value {
    // The server's own defaults, from the library (no flag changes them).
    let defaults = nango_server::Settings::for_address(([127, 0, 0, 1], 0).into(), "");
    json!({
        "seconds_per_measurement": plan.seconds,
        "warmup_seconds": plan.warmup_seconds,
        "stored_connections": plan.sizes,
        "concurrencies": plan.concurrencies,
        "scaling_concurrency": 16,
        "storm_connections": plan.storm,
        "storm_concurrency": plan.storm_concurrency,
        "provider_delay_ms": plan.provider_delay.as_millis() as u64,
        "backends": plan.backends,
        "postgres_url": redact(&plan.postgres_url),
        "server_log_level": plan.log_level,
        "server": {
            "refresh_margin_s": defaults.refresh_margin.as_secs(),
            "provider_timeout_s": defaults.provider_timeout.as_secs(),
            "request_timeout_s": defaults.request_timeout.as_secs(),
            "proactive_refresh_interval_s": defaults.proactive_refresh_interval.as_secs(),
            "refresh_concurrency": plan.refresh_concurrency,
            "connection_cache_size": defaults.connection_cache_size,
        },
    })
}

fn print_header(plan: &Plan, report: &Report) {
    let m = &report.machine;
    println!(
        "nango-bench ({} mode): {} CPU(s), {}; load average {}; commit {}{}",
        report.mode,
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or("unknown CPU"),
        m["load_average_at_start"].as_str().unwrap_or("?"),
        report.git["commit"].as_str().unwrap_or("unknown"),
        if report.git["dirty"].as_bool().unwrap_or(false) {
            " (with uncommitted changes)"
        } else {
            ""
        }
    );
    if m["build"] != "release" {
        println!(
            "The server is a {} build: these figures only show that every endpoint answers; \
             compare only release builds' figures.",
            m["build"].as_str().unwrap_or("?")
        );
    }
    let s = &report.settings["server"];
    println!(
        "{} s per measurement; wrk and the server share the machine. Refreshes: at most {} in \
         flight per provider (NANGO_REFRESH_CONCURRENCY), one per connection; refresh margin {} s, \
         provider timeout {} s; the storm sends {} requests at a time. Read cache: {} connections \
         (a second server with NANGO_CONNECTION_CACHE_SIZE=0 gives the cache-off figures). \
         PostgreSQL: {}.",
        plan.seconds,
        plan.refresh_concurrency,
        s["refresh_margin_s"],
        s["provider_timeout_s"],
        plan.storm_concurrency,
        s["connection_cache_size"],
        redact(&plan.postgres_url)
    );
}
