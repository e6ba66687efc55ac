//! Who may choose where a template's requests go: which URL placeholders pick the host (only the
//! operator fills those, on the provider config) and which only fill a label under a fixed domain
//! (the browser may still give those), and which addresses a built-in template may reach.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

use super::interpolate::{pieces, Piece};
use super::ProviderTemplate;

/// How a flow's `params[name]` arrive in a connection config: `connectionConfig.params.<name>`.
pub const PARAMS_PREFIX: &str = "connectionConfig.params.";

/// The placeholders of a template's URL hosts, by full placeholder name
/// (`connectionConfig.params.hostname`), worked out when the catalog loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPlaceholders {
    /// Placeholders that choose the host itself: the whole host, its registrable domain
    /// (`login.${region}`), or the port. Only the operator's values fill these.
    pub host: BTreeSet<String>,
    /// Placeholders that fill labels under a fixed domain of at least two labels
    /// (`${subdomain}.zendesk.com`): whatever the value, the request stays under that domain.
    pub label: BTreeSet<String>,
}

impl HostPlaceholders {
    /// Classifies the placeholders in the host of each URL (those in a path keep the
    /// interpolation's own rules). A name that is a host placeholder in any URL is one everywhere.
    pub fn classify<'a>(urls: impl IntoIterator<Item = &'a str>) -> HostPlaceholders {
        let mut out = HostPlaceholders::default();
        for url in urls {
            let Some(start) = url.find("://").map(|i| i + 3) else {
                continue; // `${metadata.<field>}` base URLs: checked when used (F17)
            };
            let authority_end = url[start..]
                .find(['/', '?', '#'])
                .map_or(url.len(), |i| start + i);
            let authority = &url[start..authority_end];
            // Placeholder names hold no ':', so the first ':' ends the host.
            let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
            let Some(host_pieces) = pieces(host) else {
                continue; // refused by the URL check at load
            };
            let names = host_pieces.iter().filter_map(|p| match p {
                Piece::Placeholder(name) => Some((*name).to_string()),
                Piece::Text(_) => None,
            });
            let under_fixed_domain = match host_pieces.last() {
                Some(Piece::Text(tail)) => tail
                    .strip_prefix('.')
                    .map(|domain| domain.split('.').filter(|l| !l.is_empty()).count() >= 2)
                    .unwrap_or(false),
                _ => false,
            };
            if under_fixed_domain {
                out.label.extend(names);
            } else {
                out.host.extend(names);
            }
            if let Some(port_pieces) = pieces(port) {
                out.host.extend(port_pieces.iter().filter_map(|p| match p {
                    Piece::Placeholder(name) => Some((*name).to_string()),
                    Piece::Text(_) => None,
                }));
            }
        }
        // A name used both ways is treated as the stronger kind.
        let host = out.host.clone();
        out.label.retain(|name| !host.contains(name));
        out
    }

    /// The params names (`hostname`) of the host placeholders.
    pub fn host_params(&self) -> impl Iterator<Item = &str> {
        self.host
            .iter()
            .filter_map(|name| name.strip_prefix(PARAMS_PREFIX))
    }
}

/// Where the values besides the operator's come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSource {
    /// The browser's `params[...]` at `/oauth/connect`.
    Browser,
    /// A connection config stored with a flow or a connection.
    Stored,
}

/// Why a connection config cannot be used for a template's URLs.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error(
        "The host placeholder '{name}' can only be set by the operator: set it in the provider \
         config's connection_config (POST/PUT /config, or `nango config:edit --connection-config \
         {name}=<host>`)."
    )]
    NotSetByOperator { name: String },
    #[error(
        "Connection Config param '{name}' must be a single DNS label (letters, digits and '-', \
         1 to 63 characters, no '.')."
    )]
    NotALabel { name: String },
    #[error("Connection Config param '{name}' must be one of: {choices}.")]
    NotAChoice { name: String, choices: String },
}

/// The connection config a template's URLs are filled from: `given` (the browser's params, or a
/// stored connection config) with the operator's values laid over it. Every host placeholder must
/// have an operator value (a given one is never used for a host, even one stored before this
/// rule); a label placeholder the browser fills must be a single DNS label.
pub fn settle_connection_config(
    template: &ProviderTemplate,
    operator: &Map<String, Value>,
    given: &Map<String, Value>,
    source: ValueSource,
) -> Result<Map<String, Value>, HostError> {
    let mut merged = given.clone();
    for (name, value) in operator {
        merged.insert(format!("{PARAMS_PREFIX}{name}"), value.clone());
    }
    for full in &template.hosts.host {
        let name = full.strip_prefix(PARAMS_PREFIX).unwrap_or(full);
        if operator.contains_key(name) {
            continue;
        }
        let field = template.connection_config.get(name);
        match field {
            // A closed list of the provider's own hosts: anyone may choose among them.
            Some(field) if !field.choices.is_empty() => {
                let chosen = given
                    .get(full)
                    .and_then(Value::as_str)
                    .or(field.default.as_deref());
                match chosen {
                    Some(value) if field.accepts(value) => {
                        merged.insert(full.clone(), Value::String(value.to_string()));
                    }
                    _ => {
                        return Err(HostError::NotAChoice {
                            name: name.to_string(),
                            choices: field.choices.join(", "),
                        })
                    }
                }
            }
            // The template's own default stands in for the operator's value; a given one is
            // never used for a host.
            Some(field) if field.default.is_some() => {
                let default = field.default.clone().unwrap_or_default();
                merged.insert(full.clone(), Value::String(default));
            }
            _ => {
                return Err(HostError::NotSetByOperator {
                    name: name.to_string(),
                })
            }
        }
    }
    let merged = template.with_defaults(merged);
    if source == ValueSource::Browser {
        for full in &template.hosts.label {
            let name = full.strip_prefix(PARAMS_PREFIX).unwrap_or(full);
            if operator.contains_key(name) {
                continue;
            }
            if let Some(value) = given.get(full) {
                if !value.as_str().is_some_and(is_dns_label) {
                    return Err(HostError::NotALabel {
                        name: name.to_string(),
                    });
                }
            }
        }
    }
    Ok(merged)
}

/// A template URL filled for a stored flow or connection (the callback, a refresh, the client
/// credentials grant) from `operator` (the provider config's values) laid over `stored`, a host
/// only from the operator (a host stored on a connection, e.g. from before this rule, is never
/// used). Also says whether the request must reach public addresses only
/// (`Shared::http_for`): a built-in template whose host comes from a placeholder. Errors are
/// meant for the operator.
pub fn stored_url(
    template: &ProviderTemplate,
    operator: &Map<String, Value>,
    stored: &Map<String, Value>,
    url: &str,
) -> Result<(String, bool), String> {
    let values = settle_connection_config(template, operator, stored, ValueSource::Stored)
        .map_err(|e| e.to_string())?;
    settled_url(template, &values, url)
}

/// [`stored_url`] from values already settled (`settle_connection_config`), for callers that also
/// fill parameters from them.
pub fn settled_url(
    template: &ProviderTemplate,
    values: &Map<String, Value>,
    url: &str,
) -> Result<(String, bool), String> {
    let filled = super::interpolate_url(url, values).map_err(|e| e.to_string())?;
    let public_only = template.public_hosts_only();
    if public_only {
        let host = url::Url::parse(&filled)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        check_host_name(&host).map_err(|e| format!("the provider's host is refused: {e}"))?;
    }
    Ok((filled, public_only))
}

/// One DNS label: letters, digits and hyphens, 1 to 63 characters, not starting or ending with a
/// hyphen.
pub fn is_dns_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

/// Why a host may not be reached for a built-in template.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostRefusal {
    #[error("'{host}' is an IP address; built-in templates only reach public host names")]
    IpLiteral { host: String },
    #[error("'{host}' is a local or internal name (localhost, metadata, .internal, .local, a single label)")]
    LocalName { host: String },
    #[error("'{host}' resolves to a non-public address ({addr})")]
    NonPublicAddress { host: String, addr: IpAddr },
}

/// Names that mean this machine, the cloud's metadata service or the local network whatever DNS
/// says; and IP literals (a host placeholder of a built-in template is a provider's host name).
pub fn check_host_name(host: &str) -> Result<(), HostRefusal> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok()
        || host
            .rsplit('.')
            .next()
            .is_some_and(|last| !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(HostRefusal::IpLiteral { host });
    }
    let local_suffixes = [
        ".localhost",
        ".local",
        ".internal",
        ".localdomain",
        ".home.arpa",
        ".intranet",
        ".lan",
    ];
    if !host.contains('.')
        || local_suffixes.iter().any(|s| host.ends_with(s))
        || host == "metadata.google.internal"
    {
        return Err(HostRefusal::LocalName { host });
    }
    Ok(())
}

/// Resolves `host` and refuses it when any address is not public. A name that does not resolve
/// (yet, or not from here) passes: requests to it go through the guarded resolver, which checks
/// again when they are made.
pub async fn check_resolved_host(host: &str) -> Result<(), HostRefusal> {
    check_host_name(host)?;
    let lookup = tokio::net::lookup_host((host, 443));
    let Ok(Ok(addrs)) = tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await
    else {
        return Ok(());
    };
    for addr in addrs {
        if !is_public(addr.ip()) {
            return Err(HostRefusal::NonPublicAddress {
                host: host.to_string(),
                addr: addr.ip(),
            });
        }
    }
    Ok(())
}

/// A globally routable unicast address: not loopback, private (RFC 1918, ULA), link-local (which
/// holds 169.254.169.254), CGNAT, unspecified, multicast, broadcast, documentation, benchmarking
/// or reserved; IPv6 forms that embed an IPv4 address are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they embed.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) {
        return is_public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    // Global unicast is 2000::/3; within it, Teredo (2001::/32), ORCHIDs and documentation
    // (2001:db8::/32) are not destinations.
    (s[0] & 0xe000) == 0x2000 && !(s[0] == 0x2001 && (s[1] == 0 || s[1] == 0xdb8 || s[1] < 0x200))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic
mod tests {
    use super::*;
    use serde_json::json;

    fn names(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter()
            .map(|n| n.strip_prefix(PARAMS_PREFIX).unwrap_or(n))
            .collect()
    }

    #[test]
    fn placeholders_are_classified_by_where_they_sit_in_the_host() {
        let h = HostPlaceholders::classify([
            "https://${connectionConfig.params.subdomain}.zendesk.com/oauth",
            "https://${connectionConfig.params.a}.auth.${connectionConfig.params.b}.amazoncognito.com/x",
            "https://ca-${connectionConfig.params.env}.adyen.com/x",
            "https://${connectionConfig.params.hostname}/login/${connectionConfig.params.realm}",
            "https://login.${connectionConfig.params.region}/oauth",
            "https://start.exactonline.${connectionConfig.params.extension}/api",
            "http://localhost:${connectionConfig.params.port}/t",
            "https://${connectionConfig.params.tld}.com/x",
            "${metadata.instance_url}",
        ]);
        assert_eq!(names(&h.label), ["a", "b", "env", "subdomain"]);
        assert_eq!(
            names(&h.host),
            ["extension", "hostname", "port", "region", "tld"]
        );
    }

    #[test]
    fn the_builtin_host_templates_are_found() {
        let catalog = super::super::Catalog::builtin().unwrap();
        let with_host: Vec<&str> = catalog
            .iter()
            .filter(|(_, t)| !t.hosts.host.is_empty())
            .map(|(name, _)| name)
            .collect();
        for name in [
            "blackboard",
            "canvas-lms",
            "databricks",
            "fusionauth",
            "genesys-cloud",
            "gitea",
            "github-enterprise",
            "gitlab-self-managed",
            "keycloak",
            "mastodon",
            "nextcloud",
            "snowflake",
            "battlenet",
            "exact-online",
        ] {
            assert!(with_host.contains(&name), "{name}: {with_host:?}");
        }
        let zendesk = catalog.get("zendesk").unwrap();
        assert!(zendesk.hosts.host.is_empty());
        assert!(!zendesk.hosts.label.is_empty());
    }

    #[test]
    fn operator_values_win_and_hosts_need_them() {
        let catalog = super::super::Catalog::builtin().unwrap();
        let ghe = catalog.get("github-enterprise").unwrap();
        let browser: Map<String, Value> =
            serde_json::from_value(json!({"connectionConfig.params.hostname": "attacker.example"}))
                .unwrap();
        assert_eq!(
            settle_connection_config(ghe, &Map::new(), &browser, ValueSource::Browser),
            Err(HostError::NotSetByOperator {
                name: "hostname".into()
            })
        );
        let operator: Map<String, Value> =
            serde_json::from_value(json!({"hostname": "ghe.example.com"})).unwrap();
        let merged =
            settle_connection_config(ghe, &operator, &browser, ValueSource::Stored).unwrap();
        assert_eq!(
            merged["connectionConfig.params.hostname"],
            "ghe.example.com"
        );

        let zendesk = catalog.get("zendesk").unwrap();
        for bad in ["a.b", "a_b", "", "-a", "évil"] {
            let given: Map<String, Value> =
                serde_json::from_value(json!({"connectionConfig.params.subdomain": bad})).unwrap();
            assert!(
                settle_connection_config(zendesk, &Map::new(), &given, ValueSource::Browser)
                    .is_err(),
                "{bad}"
            );
        }
        let given: Map<String, Value> =
            serde_json::from_value(json!({"connectionConfig.params.subdomain": "acme-1"})).unwrap();
        assert!(
            settle_connection_config(zendesk, &Map::new(), &given, ValueSource::Browser).is_ok()
        );
    }

    #[test]
    fn local_names_and_literals_are_refused() {
        for host in [
            "127.0.0.1",
            "169.254.169.254",
            "10.0.0.1",
            "localhost",
            "a.localhost",
            "metadata.google.internal",
            "metadata",
            "[::1]",
            "::1",
            "1.2.3.4",
            "host.local",
            "x.0177",
        ] {
            assert!(check_host_name(host).is_err(), "{host}");
        }
        for host in ["ghe.example.com", "gitlab.acme.io"] {
            assert!(check_host_name(host).is_ok(), "{host}");
        }
    }

    #[test]
    fn only_public_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "140.82.112.3",
            "2606:4700::1111",
            "8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
