//! Prometheus metrics (`GET /metrics`, OpenMetrics text): requests by route and status with their
//! latency, refreshes by provider and outcome, OAuth flow outcomes, webhook deliveries. Labels
//! carry route templates, provider names and outcomes, never a connection id or anything a
//! caller chose freely (the number of series stays bounded, and no user data leaks).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    provider: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    event: String,
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 0.25 ms to about 8 s: a cached token read to a slow provider.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The server's metrics, registered once per server (`AppState`), so that servers in one
/// process (tests, embedding) keep their own.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Histograms<RouteLabels>,
    refreshes: Family<OutcomeLabels, Counter>,
    refresh_duration: Histograms<ProviderLabels>,
    flows: Family<OutcomeLabels, Counter>,
    webhook_deliveries: Family<DeliveryLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// How a refresh at a provider ended.
#[derive(Debug, Clone, Copy)]
pub enum RefreshOutcome {
    Success,
    /// The provider refused (`invalid_grant`...): the user must authorize again.
    Rejected,
    /// The provider failed or was unreachable: retried later.
    Unavailable,
}

/// How a webhook delivery attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum DeliveryOutcome {
    Delivered,
    /// Failed; will be tried again.
    Retrying,
    /// Failed for the last time.
    GaveUp,
}

/// The `method` label: a method HTTP defines, or `OTHER`. A caller may send any token as a
/// method, and each new label value would be a new series kept for the life of the process.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("OTHER")
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("nango");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        let request_duration: Histograms<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route",
            request_duration.clone(),
        );
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "refreshes",
            "Token refreshes at providers, by provider and outcome (success, rejected, unavailable)",
            refreshes.clone(),
        );
        let refresh_duration: Histograms<ProviderLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "refresh_duration_seconds",
            "Time a provider took to answer a refresh, by provider",
            refresh_duration.clone(),
        );
        let flows = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "oauth_flows",
            "Completed authorization flows, by provider and outcome (success or the error type)",
            flows.clone(),
        );
        let webhook_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by event type and outcome (delivered, retrying, gave_up)",
            webhook_deliveries.clone(),
        );
        Metrics {
            registry,
            requests,
            request_duration,
            refreshes,
            refresh_duration,
            flows,
            webhook_deliveries,
        }
    }

    /// `route` is the route template (`/connection/{connection_id}`), not the path.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn observe_refresh(&self, provider: &str, outcome: RefreshOutcome, took: Duration) {
        let outcome = match outcome {
            RefreshOutcome::Success => "success",
            RefreshOutcome::Rejected => "rejected",
            RefreshOutcome::Unavailable => "unavailable",
        };
        self.refreshes
            .get_or_create(&OutcomeLabels {
                provider: provider.to_string(),
                outcome,
            })
            .inc();
        self.refresh_duration
            .get_or_create(&ProviderLabels {
                provider: provider.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// `outcome`: `success` or the error type the frontend receives (`token_err`, ...).
    pub fn observe_flow(&self, provider: &str, outcome: &'static str) {
        self.flows
            .get_or_create(&OutcomeLabels {
                provider: provider.to_string(),
                outcome,
            })
            .inc();
    }

    pub fn observe_webhook_delivery(&self, event: &str, outcome: DeliveryOutcome) {
        let outcome = match outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retrying => "retrying",
            DeliveryOutcome::GaveUp => "gave_up",
        };
        self.webhook_deliveries
            .get_or_create(&DeliveryLabels {
                event: event.to_string(),
                outcome,
            })
            .inc();
    }

    /// Everything, in the OpenMetrics text format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_observed_with_bounded_labels() {
        let metrics = Metrics::new();
        metrics.observe_request(
            "GET",
            "/connection/{connection_id}",
            200,
            Duration::from_millis(2),
        );
        metrics.observe_refresh(
            "github",
            RefreshOutcome::Rejected,
            Duration::from_millis(30),
        );
        metrics.observe_flow("github", "success");
        metrics.observe_webhook_delivery("connection.created", DeliveryOutcome::Retrying);
        let text = metrics.render().unwrap();
        for line in [
            r#"nango_http_requests_total{method="GET",route="/connection/{connection_id}",status="200"} 1"#,
            r#"nango_refreshes_total{provider="github",outcome="rejected"} 1"#,
            r#"nango_oauth_flows_total{provider="github",outcome="success"} 1"#,
            r#"nango_webhook_deliveries_total{event="connection.created",outcome="retrying"} 1"#,
            r#"nango_refresh_duration_seconds_count{provider="github"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
