//! The server under test: `nango serve` as a child process, how long it takes to answer, and what
//! it costs (memory and CPU, read from `/proc/<pid>`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// Settings of one server process (everything else is left at its default).
pub struct ServerConfig<'a> {
    pub nango: &'a Path,
    pub database_url: &'a str,
    pub secret_key: &'a str,
    pub encryption_key: &'a str,
    pub providers_file: &'a Path,
    pub log_level: &'a str,
    pub log: PathBuf,
    /// `NANGO_CONNECTION_CACHE_SIZE`, when not the server's default.
    pub cache_size: Option<usize>,
    /// `NANGO_REFRESH_CONCURRENCY`: refreshes in flight per provider.
    pub refresh_concurrency: usize,
}

pub struct Server {
    child: Child,
    pub pid: u32,
    pub url: String,
    pub log: PathBuf,
    /// From spawning the process to its first `200` on `GET /health`.
    pub healthy_after: Duration,
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Now (`VmRSS`).
    pub rss_kb: u64,
    /// The most it has ever been (`VmHWM`).
    pub peak_kb: u64,
}

impl Server {
    /// Spawns the server on a free port and polls `GET /health` every millisecond until it
    /// answers 200 (at most 30 s).
    pub async fn start(config: ServerConfig<'_>) -> Result<Server> {
        let port = free_port()?;
        let log = std::fs::File::create(&config.log)
            .with_context(|| format!("creating {}", config.log.display()))?;
        let mut command = Command::new(config.nango);
        command.arg("serve");
        // Only our settings: a NANGO_* variable of the calling shell (NANGO_DB_HOST,
        // NANGO_WEBHOOK_URLS...) would change what is measured.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("NANGO_") || matches!(&*name, "SERVER_PORT" | "PORT" | "LOG_LEVEL")
            {
                command.env_remove(&*name);
            }
        }
        command
            .env("SERVER_PORT", port.to_string())
            .env("NANGO_BIND", "127.0.0.1")
            .env("NANGO_DATABASE_URL", config.database_url)
            .env("NANGO_SECRET_KEY", config.secret_key)
            .env("NANGO_ENCRYPTION_KEY", config.encryption_key)
            .env("NANGO_PROVIDERS_FILE", config.providers_file)
            .env("LOG_LEVEL", config.log_level)
            .env(
                "NANGO_REFRESH_CONCURRENCY",
                config.refresh_concurrency.to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);

        if let Some(size) = config.cache_size {
            command.env("NANGO_CONNECTION_CACHE_SIZE", size.to_string());
        }
        let url = format!("http://127.0.0.1:{port}");
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()?;
        let health = format!("{url}/health");
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", config.nango.display()))?;
        let pid = child.id().context("the server exited at once")?;
        loop {
            if let Ok(response) = probe.get(&health).send().await {
                if response.status().is_success() {
                    break;
                }
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the server exited ({status}) before answering; its log:\n{}",
                    log_tail(&config.log)
                );
            }
            if spawned.elapsed() > Duration::from_secs(30) {
                bail!(
                    "the server did not answer GET /health within 30 s; its log:\n{}",
                    log_tail(&config.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(Server {
            healthy_after: spawned.elapsed(),
            child,
            pid,
            url,
            log: config.log,
        })
    }

    pub fn memory(&self) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
                .unwrap_or(0)
        };
        Ok(Memory {
            rss_kb: field("VmRSS:"),
            peak_kb: field("VmHWM:"),
        })
    }

    /// CPU time the process has used (user + system), in clock ticks.
    pub fn cpu_ticks(&self) -> Result<u64> {
        process_cpu_ticks(self.pid)
    }

    /// Context switches (voluntary and not) of every thread of the process so far: a request
    /// that hops between threads (a runtime worker, a database worker) pays for each hop.
    pub fn context_switches(&self) -> Result<u64> {
        let mut total = 0;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
                continue; // the thread ended meanwhile
            };
            total += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        Ok(total)
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s. An error when it had died.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the server had exited ({status}); its log:\n{}",
                log_tail(&self.log)
            );
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                eprintln!("  the server did not stop within 10 s of SIGTERM; killing it");
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

/// CPU time a process has used (user + system), in clock ticks.
pub fn process_cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start at field 3 (`state`);
    // utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (number(11), number(12)) {
        (Some(user), Some(system)) => Ok(user + system),
        _ => bail!("cannot read CPU time from /proc/{pid}/stat"),
    }
}

/// CPU time of PostgreSQL's server processes for one database (their command line names it)
/// since `start`: the database's share of the work. Backends the pool opens meanwhile count
/// from their start.
pub struct DatabaseCpu {
    database: Option<String>,
    before: HashMap<u32, u64>,
}

impl DatabaseCpu {
    /// `None`: no database processes (SQLite runs inside the server); always 0.
    pub fn start(database: Option<&str>) -> DatabaseCpu {
        let before = database
            .map(database_processes)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pid| Some((pid, process_cpu_ticks(pid).ok()?)))
            .collect();
        DatabaseCpu {
            database: database.map(str::to_string),
            before,
        }
    }

    pub fn ticks_since_start(&self) -> u64 {
        let Some(database) = &self.database else {
            return 0;
        };
        database_processes(database)
            .into_iter()
            .filter_map(|pid| {
                let now = process_cpu_ticks(pid).ok()?;
                Some(now.saturating_sub(self.before.get(&pid).copied().unwrap_or(0)))
            })
            .sum()
    }
}

fn database_processes(database: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let cmdline = String::from_utf8_lossy(&cmdline);
                cmdline.starts_with("postgres:") && cmdline.contains(database)
            })
        })
        .collect()
}

/// The whole machine's CPU time so far, in clock ticks: (spent by processes, stolen by the
/// hypervisor).
pub fn machine_cpu_ticks() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().unwrap_or_default();
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    // Interrupt time (fields 5 and 6) is left out: no process is charged for it, and under load
    // it is mostly the run's own loopback traffic.
    Ok((at(0) + at(1) + at(2), at(7)))
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// A port nothing listens on now (the kernel's pick; released for the server to take).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The last lines of a server log, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
