//! The refresh storm: every seeded storm connection (expired token) is asked for once, many at a
//! time, so the server refreshes each at the fake provider while the others wait.

use std::time::{Duration, Instant};

use anyhow::Result;
use base64::Engine;
use futures::StreamExt;
use serde::Serialize;

use crate::fake_provider::{Counts, FakeProvider};
use crate::seed::STORM;

#[derive(Debug, Clone, Serialize)]
pub struct StormRun {
    pub backend: String,
    pub connections: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The server's cap on refreshes in flight per provider (`NANGO_REFRESH_CONCURRENCY`).
    pub refresh_concurrency: usize,
    pub provider_delay_ms: u64,
    /// From the first request sent to the last answer.
    pub seconds: f64,
    /// `connections * delay / min(concurrency, refresh_concurrency)`: the time if the server
    /// added nothing to the provider's.
    pub ideal_seconds: f64,
    pub ok: u64,
    /// Answers other than 200.
    pub non_2xx: u64,
    /// Requests that got no answer.
    pub transport_errors: u64,
    /// 200 answers with the seeded (expired) access token instead of one the provider issued.
    pub stale_tokens: u64,
    /// Token endpoint calls while the storm ran (must equal `connections`).
    pub refresh_calls: u64,
    /// Calls before the storm started: the server's proactive refresher got there first.
    pub refresh_calls_before: u64,
    /// A refresh token presented twice (a connection refreshed twice).
    pub duplicate_refreshes: u64,
    pub bad_token_requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Server CPU time (user + system) per connection served, in ms.
    pub server_cpu_ms_per_connection: f64,
    /// PostgreSQL's processes' CPU time per connection served, in ms (0 for SQLite).
    pub database_cpu_ms_per_connection: f64,
    /// Distinct statuses and errors seen, for the error report (at most five).
    pub sample_errors: Vec<String>,
}

pub struct Storm<'a> {
    pub backend: &'a str,
    pub base_url: &'a str,
    pub secret_key: &'a str,
    pub config_key: &'a str,
    pub connections: u64,
    pub concurrency: usize,
    pub refresh_concurrency: usize,
    pub provider_delay: Duration,
    /// Provider counts when the storm connections were seeded.
    pub counts_at_seed: Counts,
}

enum Outcome {
    Fresh,
    Stale,
    Status(u16, String),
    Transport(String),
}

pub async fn run(storm: &Storm<'_>, provider: &FakeProvider) -> Result<StormRun> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(storm.concurrency)
        .timeout(Duration::from_secs(120))
        .build()?;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:", storm.secret_key))
    );
    let before = provider.counts();
    let started = Instant::now();
    let outcomes: Vec<(Outcome, Duration)> = futures::stream::iter(1..=storm.connections)
        .map(|n| {
            let request = client
                .get(format!("{}/connection/{STORM}{n}", storm.base_url))
                .query(&[("provider_config_key", storm.config_key)])
                .header(reqwest::header::AUTHORIZATION, &auth);
            async move {
                let sent = Instant::now();
                let outcome = match request.send().await {
                    Err(e) => Outcome::Transport(e.to_string()),
                    Ok(response) => {
                        let status = response.status();
                        match response.text().await {
                            Err(e) => Outcome::Transport(e.to_string()),
                            Ok(body) if status.is_success() => {
                                if access_token(&body).is_some_and(|t| t.starts_with("fresh-")) {
                                    Outcome::Fresh
                                } else {
                                    Outcome::Stale
                                }
                            }
                            Ok(body) => Outcome::Status(status.as_u16(), body),
                        }
                    }
                };
                (outcome, sent.elapsed())
            }
        })
        .buffer_unordered(storm.concurrency)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let during = provider.counts() - before;

    let mut run = StormRun {
        backend: storm.backend.to_string(),
        connections: storm.connections,
        concurrency: storm.concurrency,
        refresh_concurrency: storm.refresh_concurrency,
        provider_delay_ms: storm.provider_delay.as_millis() as u64,
        seconds,
        ideal_seconds: storm.connections as f64 * storm.provider_delay.as_secs_f64()
            / storm.concurrency.min(storm.refresh_concurrency).max(1) as f64,
        ok: 0,
        non_2xx: 0,
        transport_errors: 0,
        stale_tokens: 0,
        refresh_calls: during.calls,
        refresh_calls_before: (before - storm.counts_at_seed).calls,
        duplicate_refreshes: during.duplicates,
        bad_token_requests: during.bad_requests,
        p50_ms: 0.0,
        p99_ms: 0.0,
        max_ms: 0.0,
        server_cpu_ms_per_connection: 0.0,
        database_cpu_ms_per_connection: 0.0,
        sample_errors: Vec::new(),
    };
    let mut latencies: Vec<f64> = Vec::with_capacity(outcomes.len());
    for (outcome, latency) in outcomes {
        latencies.push(latency.as_secs_f64() * 1000.0);
        match outcome {
            Outcome::Fresh => run.ok += 1,
            // The expired token handed out as it was: a refresh was skipped.
            Outcome::Stale => run.stale_tokens += 1,
            Outcome::Status(status, body) => {
                run.non_2xx += 1;
                let body: String = body.chars().take(200).collect();
                sample(&mut run.sample_errors, format!("{status}: {body}"));
            }
            Outcome::Transport(e) => {
                run.transport_errors += 1;
                sample(&mut run.sample_errors, e);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index]
    };
    run.p50_ms = at(0.50);
    run.p99_ms = at(0.99);
    run.max_ms = latencies.last().copied().unwrap_or(0.0);
    Ok(run)
}

/// Keeps a few distinct errors for the report.
fn sample(errors: &mut Vec<String>, error: String) {
    if errors.len() < 5 && !errors.contains(&error) {
        errors.push(error);
    }
}

fn access_token(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value
        .get("credentials")?
        .get("access_token")?
        .as_str()
        .map(str::to_string)
}
