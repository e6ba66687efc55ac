//! One `wrk` run against the server: a generated Lua script sends the secret key (HTTP Basic, as
//! Nango's clients do) and picks a random seeded connection per request; its `done` hook prints
//! the figures as one JSON line, which we read back. Meanwhile the server's memory is sampled.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::seed::HOT;
use crate::server::{machine_cpu_ticks, process_cpu_ticks, DatabaseCpu, Server};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Endpoint {
    /// `GET /health`: the ceiling (routing, middleware, JSON, no database).
    #[serde(rename = "GET /health")]
    Health,
    /// `GET /connection/<random id>?provider_config_key=<key>`: the hot path.
    #[serde(rename = "GET /connection/:id")]
    Connection,
    /// The same request to a server without its read cache (`NANGO_CONNECTION_CACHE_SIZE=0`):
    /// every request reads and decrypts the row, so this is how the store itself scales.
    #[serde(rename = "GET /connection/:id (cache off)")]
    ConnectionUncached,
    /// The hot path with the default cache, each request picking one of a fixed set of
    /// `HOT_SET` connections spread evenly over the stored ones: the same working set whatever
    /// the number stored, so that number is the only thing that changes between sizes.
    #[serde(rename = "GET /connection/:id (1k hot set)")]
    ConnectionHotSet,
    /// `GET /proxy/items` for an API-key connection: the proxy's whole path (secret key,
    /// connection lookup, key put in, the call to the fake API, the answer passed back).
    #[serde(rename = "GET /proxy/items")]
    Proxy,
    /// The same call to the fake API directly, in the same run: what the proxy adds to.
    #[serde(rename = "GET /api/items (fake API directly)")]
    ProxyDirect,
}

/// The connection and config of the proxy runs.
pub const PROXY_CONNECTION: &str = "bench-proxy-1";
pub const PROXY_CONFIG: &str = "bench-api";

/// Connections in the working set of [`Endpoint::ConnectionHotSet`].
pub const HOT_SET: u64 = 1000;

impl Endpoint {
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Health => "GET /health",
            Endpoint::Connection => "GET /connection/:id",
            Endpoint::ConnectionUncached => "GET /connection/:id (cache off)",
            Endpoint::ConnectionHotSet => "GET /connection/:id (1k hot set)",
            Endpoint::Proxy => "GET /proxy/items",
            Endpoint::ProxyDirect => "GET /api/items (fake API directly)",
        }
    }
}

/// What `wrk` measured (latencies in microseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WrkFigures {
    pub requests: u64,
    pub duration_us: u64,
    pub connect_errors: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    /// Responses with a status of 400 or more.
    pub status_errors: u64,
    pub timeouts: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl WrkFigures {
    pub fn socket_errors(&self) -> u64 {
        self.connect_errors + self.read_errors + self.write_errors + self.timeouts
    }
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRun {
    pub backend: String,
    pub endpoint: Endpoint,
    pub stored_connections: u64,
    pub concurrency: u32,
    pub threads: u32,
    pub seconds: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Server CPU time (user + system) per request: where the cost is, even when the load
    /// generator shares the machine.
    pub server_cpu_us_per_request: f64,
    /// Server thread context switches per request (all threads).
    pub server_context_switches_per_request: f64,
    /// CPU of the machine used by wrk, and by every process but wrk, the server, its database
    /// and the bench itself (other work skews the figures), and stolen by the hypervisor, in %
    /// of all CPUs over the run.
    pub wrk_cpu_pct: f64,
    /// PostgreSQL's processes for the database (none for SQLite: it runs inside the server).
    pub database_cpu_pct: f64,
    pub database_cpu_us_per_request: f64,
    pub other_cpu_pct: f64,
    pub steal_pct: f64,
    /// Highest VmRSS sampled during the run.
    pub server_rss_max_kb: u64,
    pub wrk: WrkFigures,
}

pub struct Load<'a> {
    pub backend: &'a str,
    pub endpoint: Endpoint,
    pub config_key: &'a str,
    /// Connections `<HOT>1..=n` exist; requests pick among them uniformly.
    pub stored_connections: u64,
    pub concurrency: u32,
    pub seconds: u64,
    /// PostgreSQL: the database's name, to find its server processes.
    pub database: Option<&'a str>,
    /// Where wrk sends the requests when not to the server (the fake API, for `ProxyDirect`).
    pub url: Option<&'a str>,
}

/// Runs `wrk` for `load.seconds` and returns its figures.
pub async fn run(
    server: &Server,
    secret_key: &str,
    script_dir: &Path,
    ticks_per_second: u64,
    load: &Load<'_>,
) -> Result<LoadRun> {
    let script = script_dir.join(format!(
        "{}-{}.lua",
        match load.endpoint {
            Endpoint::Health => "health",
            Endpoint::Connection => "connection",
            Endpoint::ConnectionUncached => "connection-uncached",
            Endpoint::ConnectionHotSet => "connection-hot-set",
            Endpoint::Proxy => "proxy",
            Endpoint::ProxyDirect => "proxy-direct",
        },
        load.stored_connections
    ));
    std::fs::write(&script, lua_script(secret_key, load))?;
    let threads = if load.concurrency == 1 { 1 } else { 2 };

    let cpu_before = server.cpu_ticks()?;
    let switches_before = server.context_switches()?;
    let database_cpu = DatabaseCpu::start(load.database);
    // The bench's own process (its fake provider API serves the direct proxy runs) is not
    // "other work".
    let bench_before = process_cpu_ticks(std::process::id())?;
    let (busy_before, steal_before) = machine_cpu_ticks()?;
    let started = std::time::Instant::now();
    let mut wrk = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{}", load.concurrency))
        .arg(format!("-d{}s", load.seconds))
        .arg("--timeout")
        .arg("5s")
        .arg("-s")
        .arg(&script)
        .arg(load.url.unwrap_or(&server.url))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running wrk (apt-get install -y wrk)")?;
    let wrk_pid = wrk.id().context("wrk exited at once")?;
    let mut rss_max_kb = 0;
    let mut wrk_ticks = 0;
    let mut sample = tokio::time::interval(Duration::from_millis(100));
    while wrk.try_wait()?.is_none() {
        sample.tick().await;
        if let Ok(memory) = server.memory() {
            rss_max_kb = rss_max_kb.max(memory.rss_kb);
        }
        // The last sample before wrk exits misses at most 100 ms of its time.
        if let Ok(ticks) = process_cpu_ticks(wrk_pid) {
            wrk_ticks = ticks;
        }
    }
    let output = wrk.wait_with_output().await?;
    let cpu_ticks = server.cpu_ticks()?.saturating_sub(cpu_before);
    let switches = server.context_switches()?.saturating_sub(switches_before);
    let (busy_after, steal_after) = machine_cpu_ticks()?;
    let capacity = started.elapsed().as_secs_f64()
        * ticks_per_second as f64
        * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
        / 100.0;
    let database_ticks = database_cpu.ticks_since_start();
    let bench_ticks = process_cpu_ticks(std::process::id())?.saturating_sub(bench_before);
    let other_ticks = (busy_after - busy_before)
        .saturating_sub(cpu_ticks + wrk_ticks + database_ticks + bench_ticks);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BENCH_JSON "))
        .with_context(|| format!("no figures in the output of wrk:\n{stdout}"))?;
    let figures: WrkFigures = serde_json::from_str(json)?;
    let seconds = figures.duration_us as f64 / 1e6;
    let cpu_us = cpu_ticks as f64 * 1e6 / ticks_per_second as f64;
    Ok(LoadRun {
        backend: load.backend.to_string(),
        endpoint: load.endpoint,
        stored_connections: load.stored_connections,
        concurrency: load.concurrency,
        threads,
        seconds: load.seconds,
        requests_per_second: if seconds > 0.0 {
            figures.requests as f64 / seconds
        } else {
            0.0
        },
        p50_ms: figures.p50_us / 1000.0,
        p99_ms: figures.p99_us / 1000.0,
        server_cpu_us_per_request: if figures.requests > 0 {
            cpu_us / figures.requests as f64
        } else {
            0.0
        },
        server_context_switches_per_request: if figures.requests > 0 {
            switches as f64 / figures.requests as f64
        } else {
            0.0
        },
        wrk_cpu_pct: wrk_ticks as f64 / capacity,
        database_cpu_pct: database_ticks as f64 / capacity,
        database_cpu_us_per_request: if figures.requests > 0 {
            database_ticks as f64 * 1e6 / ticks_per_second as f64 / figures.requests as f64
        } else {
            0.0
        },
        other_cpu_pct: other_ticks as f64 / capacity,
        steal_pct: (steal_after - steal_before) as f64 / capacity,
        server_rss_max_kb: rss_max_kb,
        wrk: figures,
    })
}

/// The Lua script of a run: one request per call of `request`, a random connection each time,
/// each wrk thread with its own random sequence.
fn lua_script(secret_key: &str, load: &Load<'_>) -> String {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{secret_key}:").as_bytes());
    let path = match load.endpoint {
        Endpoint::Health => "/health",
        Endpoint::Proxy => "/proxy/items",
        Endpoint::ProxyDirect => "/api/items",
        Endpoint::Connection | Endpoint::ConnectionUncached | Endpoint::ConnectionHotSet => "",
    };
    let proxy_headers = match load.endpoint {
        Endpoint::Proxy => format!(
            "wrk.headers[\"Connection-Id\"] = \"{PROXY_CONNECTION}\"\n  \
             wrk.headers[\"Provider-Config-Key\"] = \"{PROXY_CONFIG}\""
        ),
        Endpoint::ProxyDirect => format!(
            "wrk.headers[\"X-Api-Key\"] = \"{}\"",
            crate::fake_provider::API_KEY
        ),
        _ => String::new(),
    };
    // Requests pick `random(picks) * stride`: every stored connection, or the hot set spread
    // over them.
    let stored = load.stored_connections.max(1);
    let (picks, stride) = match load.endpoint {
        Endpoint::ConnectionHotSet if stored > HOT_SET => (HOT_SET, stored / HOT_SET),
        _ => (stored, 1),
    };
    format!(
        r#"-- Generated by nango-bench.
local fixed_path = "{path}"
local picks = {picks}
local stride = {stride}
local prefix = "/connection/{HOT}"
local suffix = "?provider_config_key={key}"
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + thread_number)
  wrk.headers["Authorization"] = "Basic {basic}"
  {proxy_headers}
end

function request()
  if fixed_path ~= "" then
    return wrk.format("GET", fixed_path)
  end
  return wrk.format("GET", prefix .. (math.random(picks) * stride) .. suffix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%.1f,"p90_us":%.1f,' ..
    '"p99_us":%.1f,"max_us":%.1f,"mean_us":%.1f}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"#,
        key = load.config_key,
    )
}
