//! When credentials are refreshed: one rule for every path that asks (a request, the background
//! pass, the dashboard), whatever the token's lifetime. `docs/refresh.md` explains it with a
//! worked example.
//!
//! A token is refreshed ahead of expiry once its remaining life is below
//! `min(margin, lifetime / 2)`: the margin (15 minutes by default) for ordinary tokens, half the
//! lifetime for tokens that live less than twice the margin (a 60 s token is refreshed once 30 s
//! remain, not on every request). Credentials a refresh stored moments ago are never refreshed
//! again automatically, so a provider answering `expires_in: 0` cannot cause a loop.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Credentials;
use crate::store::ConnectionHealth;

/// Credentials a refresh stored less than this long ago are not refreshed again except by
/// `force_refresh`: whatever lifetime the provider gave them (0 s, 1 s, an expiry already past
/// when its answer arrived), they are refreshed at most once per this interval.
pub const RECENTLY_REFRESHED: Duration = Duration::from_secs(5);

/// After a temporary failure, requests try the provider again at most this long after the last
/// attempt, however far the background pass has backed off: once a provider is back, every
/// connection that is asked for serves a fresh token again within this.
pub const REQUEST_RETRY_MAX: Duration = Duration::from_secs(30);

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// How long the credentials were issued for: from when they were obtained to when they expire
/// (zero when they were already expired then). `None` when either is unknown.
pub fn lifetime(expires_at: DateTime<Utc>, health: &ConnectionHealth) -> Option<chrono::Duration> {
    let obtained = health.refreshed_at?;
    Some((expires_at - obtained).max(chrono::Duration::zero()))
}

/// How long before expiry a token is refreshed: `min(margin, lifetime / 2)`.
pub fn window(margin: Duration, lifetime: Option<chrono::Duration>) -> chrono::Duration {
    let margin = chrono(margin);
    match lifetime {
        Some(lifetime) => margin.min(lifetime / 2),
        None => margin,
    }
}

/// True when the credentials came from a refresh less than `RECENTLY_REFRESHED` ago.
pub fn recently_refreshed(health: &ConnectionHealth, now: DateTime<Utc>) -> bool {
    health.obtained_by_refresh
        && health
            .refreshed_at
            .is_some_and(|at| now - at < chrono(RECENTLY_REFRESHED))
}

/// True when the access token has expired (never, for one without an expiry).
pub fn expired(credentials: &Credentials, now: DateTime<Utc>) -> bool {
    credentials.expires_at().is_some_and(|at| at <= now)
}

/// True when the credentials should be refreshed before being handed out: they can be
/// (`renewable`: a refresh token, client credentials, or a token the provider extends itself),
/// their remaining life is inside the window of `margin` (the provider's or the server's, plus
/// the background pass's lookahead), and no refresh stored them moments ago.
pub fn due(
    credentials: &Credentials,
    renewable: bool,
    health: &ConnectionHealth,
    margin: Duration,
    now: DateTime<Utc>,
) -> bool {
    if !renewable || recently_refreshed(health, now) {
        return false;
    }
    let Some(expires_at) = credentials.expires_at() else {
        return false;
    };
    expires_at - now < window(margin, lifetime(expires_at, health))
}

/// When a request may try the provider again after a temporary failure: the background pass's
/// `retry_after`, but never later than `REQUEST_RETRY_MAX` after the last attempt. `None` when
/// the last refresh did not fail.
pub fn request_retry_at(health: &ConnectionHealth) -> Option<DateTime<Utc>> {
    let capped = health.failed_at? + chrono(REQUEST_RETRY_MAX);
    Some(health.retry_after.map_or(capped, |at| at.min(capped)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::OAuth2Credentials;
    use chrono::TimeZone;

    const MARGIN: Duration = Duration::from_secs(15 * 60);

    fn t0() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0)
            .single()
            .unwrap_or_default()
    }

    fn secs(n: i64) -> chrono::Duration {
        chrono::Duration::seconds(n)
    }

    /// Credentials issued at t0 for `lifetime` seconds (a refresh token when `refreshable`).
    fn issued(
        lifetime: i64,
        refreshable: bool,
        by_refresh: bool,
    ) -> (Credentials, ConnectionHealth) {
        let credentials = Credentials::OAuth2(OAuth2Credentials {
            access_token: "a".into(),
            refresh_token: refreshable.then(|| "r".to_string()),
            expires_at: Some(t0() + secs(lifetime)),
            raw: serde_json::json!({}),
        });
        let health = ConnectionHealth {
            refreshed_at: Some(t0()),
            obtained_by_refresh: by_refresh,
            ..Default::default()
        };
        (credentials, health)
    }

    /// Seconds after t0 at which the token first counts as due (searched to the second).
    fn first_due(lifetime: i64, by_refresh: bool) -> Option<i64> {
        let (c, h) = issued(lifetime, true, by_refresh);
        (0..=7200).find(|s| due(&c, c.refreshable(), &h, MARGIN, t0() + secs(*s)))
    }

    #[test]
    fn long_lived_tokens_are_refreshed_within_the_margin() {
        // An hour: 15 minutes before expiry.
        assert_eq!(first_due(3600, true), Some(2701));
        // 20 minutes: half the lifetime (10 minutes) is shorter than the margin.
        assert_eq!(first_due(1200, true), Some(601));
    }

    #[test]
    fn short_lived_tokens_are_refreshed_at_half_their_lifetime() {
        // Keycloak's 5 minutes, Exact Online's 10, an OIDC server's 60 s.
        assert_eq!(first_due(300, true), Some(151));
        assert_eq!(first_due(600, true), Some(301));
        assert_eq!(first_due(60, true), Some(31));
        // From a flow, a 10 s token is due after 5 s; from a refresh, not before 5 s either.
        assert_eq!(first_due(10, false), Some(6));
        assert_eq!(first_due(10, true), Some(6));
    }

    #[test]
    fn degenerate_lifetimes_wait_a_few_seconds_after_a_refresh() {
        for lifetime in [0, 1, -30] {
            // From a refresh: not before RECENTLY_REFRESHED has passed.
            assert_eq!(first_due(lifetime, true), Some(5), "lifetime {lifetime}");
            // From a flow or an import: due at once (the first refresh is the one that helps).
            let (c, h) = issued(lifetime, true, false);
            assert!(
                due(&c, c.refreshable(), &h, MARGIN, t0() + secs(1)),
                "lifetime {lifetime}"
            );
        }
    }

    #[test]
    fn the_provider_margin_replaces_the_server_margin_but_not_the_lifetime_rule() {
        let (c, h) = issued(600, true, true);
        let margin = Duration::from_secs(30);
        assert!(!due(&c, c.refreshable(), &h, margin, t0() + secs(569)));
        assert!(due(&c, c.refreshable(), &h, margin, t0() + secs(571)));
        let (c, h) = issued(40, true, true);
        // Half of 40 s is 20 s: due once less than 20 s remain, though the margin is 30 s.
        assert!(!due(&c, c.refreshable(), &h, margin, t0() + secs(19)));
        assert!(due(&c, c.refreshable(), &h, margin, t0() + secs(21)));
    }

    #[test]
    fn unknown_lifetimes_and_unrefreshable_tokens() {
        let (c, mut h) = issued(600, true, false);
        h.refreshed_at = None;
        // Nothing says when it was issued: the margin alone.
        assert!(due(&c, c.refreshable(), &h, MARGIN, t0()));
        let (c, h) = issued(-10, false, false);
        assert!(
            !due(&c, c.refreshable(), &h, MARGIN, t0()),
            "no refresh token"
        );
        let never = Credentials::OAuth2(OAuth2Credentials {
            access_token: "a".into(),
            refresh_token: Some("r".into()),
            expires_at: None,
            raw: serde_json::json!({}),
        });
        assert!(!due(
            &never,
            never.refreshable(),
            &ConnectionHealth::default(),
            MARGIN,
            t0()
        ));
    }

    #[test]
    fn requests_retry_at_most_thirty_seconds_after_the_last_attempt() {
        let failed = ConnectionHealth {
            failed_at: Some(t0()),
            retry_after: Some(t0() + secs(3600)),
            ..Default::default()
        };
        assert_eq!(request_retry_at(&failed), Some(t0() + secs(30)));
        let early = ConnectionHealth {
            retry_after: Some(t0() + secs(5)),
            ..failed.clone()
        };
        assert_eq!(request_retry_at(&early), Some(t0() + secs(5)));
        assert_eq!(request_retry_at(&ConnectionHealth::default()), None);
    }
}
