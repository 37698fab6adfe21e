//! Every `NOVA_GUARD_*` variable, parsed in one place. A bad value never
//! starts a half-configured proxy: all problems are collected and reported
//! together, each naming the variable, its value and what was expected.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;
use ipnetwork::IpNetwork;

use crate::nova::policy::normalise;
use crate::nova::{AccessIpPolicy, Microversion, Profile, Python, Release};
use crate::tls::{self, UpstreamTls};

/// Whether verdicts are acted on or only reported (`NOVA_GUARD_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardMode {
    /// Invalid bodies are answered by nova-guard; `accessIPv6` is rewritten.
    Enforce,
    /// Everything is forwarded unchanged; verdicts are only logged.
    Report,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Where Nova is: scheme, authority and an optional base path.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub uri: Uri,
    /// Base path without a trailing `/` (empty for none).
    pub base_path: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub upstream: Upstream,
    pub path_prefix: String,
    pub max_body_bytes: u64,
    /// The Nova release and Python whose answers are matched.
    pub profile: Profile,
    /// What `latest` means (the release's maximum unless overridden).
    pub max_microversion: Microversion,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub client_header_timeout: Duration,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_header_bytes: usize,
    pub trusted_proxies: Vec<IpNetwork>,
    pub client_body_timeout: Duration,
    pub client_send_timeout: Duration,
    pub upstream_idle_timeout: Duration,
    pub max_headers: usize,
    pub max_uri_bytes: usize,
    pub max_connections: usize,
    pub max_requests_per_connection: u64,
    pub admin_listen: Option<SocketAddr>,
    /// The listener's certificate chain and key (PEM files): TLS when set.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How to reach an `https://` upstream.
    pub upstream_tls: UpstreamTls,
    pub mode: GuardMode,
    pub access_ip_policy: AccessIpPolicy,
}

/// One bad variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub var: &'static str,
    pub value: String,
    pub expected: String,
}

/// Every bad variable found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  {}={:?}: expected {}", p.var, p.value, p.expected)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The variables nova-guard reads, with their defaults and meaning.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("NOVA_GUARD_LISTEN", "0.0.0.0:8775", "address to listen on"),
    (
        "NOVA_GUARD_UPSTREAM",
        "http://127.0.0.1:8774",
        "Nova's base URL (http or https)",
    ),
    (
        "NOVA_GUARD_PATH_PREFIX",
        "",
        "path prefix in front of /v2 and /v2.1, e.g. /compute",
    ),
    (
        "NOVA_GUARD_MAX_BODY_BYTES",
        "114688",
        "largest update-server body validated; larger ones get 413",
    ),
    (
        "NOVA_GUARD_NOVA_RELEASE",
        "2026.2",
        "the Nova release behind nova-guard: 2024.1, 2025.1, 2025.2, 2026.1 or 2026.2",
    ),
    (
        "NOVA_GUARD_NOVA_PYTHON",
        "",
        "the Python running Nova, 3.10 to 3.13 (empty: the release's usual, 3.10 for 2024.1, else 3.12)",
    ),
    (
        "NOVA_GUARD_MAX_MICROVERSION",
        "",
        "what `latest` means; versions above it are left to Nova (empty: the release's maximum)",
    ),
    (
        "NOVA_GUARD_LOG",
        "info",
        "log filter (tracing EnvFilter syntax)",
    ),
    ("NOVA_GUARD_LOG_FORMAT", "json", "json or text"),
    (
        "NOVA_GUARD_CLIENT_HEADER_TIMEOUT",
        "10s",
        "a client must send its request head within this (also the keep-alive idle limit)",
    ),
    (
        "NOVA_GUARD_UPSTREAM_CONNECT_TIMEOUT",
        "5s",
        "connecting to Nova",
    ),
    (
        "NOVA_GUARD_UPSTREAM_TIMEOUT",
        "120s",
        "Nova's response head must arrive within this (else 504), nor may its answer pause longer",
    ),
    (
        "NOVA_GUARD_SHUTDOWN_GRACE",
        "30s",
        "in-flight exchanges may finish within this after SIGTERM",
    ),
    (
        "NOVA_GUARD_MAX_HEADER_BYTES",
        "65536",
        "request head larger than this gets 431 (at least 8192)",
    ),
    (
        "NOVA_GUARD_TRUSTED_PROXIES",
        "",
        "comma-separated CIDRs whose X-Forwarded-For is kept and appended to",
    ),
    (
        "NOVA_GUARD_CLIENT_BODY_TIMEOUT",
        "30s",
        "a validated body must arrive within this, a streamed one not pause longer (else 408)",
    ),
    (
        "NOVA_GUARD_CLIENT_SEND_TIMEOUT",
        "60s",
        "a client that takes none of its answer for this long is disconnected",
    ),
    (
        "NOVA_GUARD_UPSTREAM_IDLE_TIMEOUT",
        "60s",
        "an idle pooled connection to Nova is closed after this",
    ),
    (
        "NOVA_GUARD_MAX_HEADERS",
        "100",
        "request header lines allowed (more gets 431)",
    ),
    (
        "NOVA_GUARD_MAX_URI_BYTES",
        "8192",
        "request target longer than this gets 414",
    ),
    (
        "NOVA_GUARD_MAX_CONNECTIONS",
        "1024",
        "client connections served at once; more get 503 and are closed",
    ),
    (
        "NOVA_GUARD_MAX_REQUESTS_PER_CONNECTION",
        "1000",
        "requests served on one connection before it is closed",
    ),
    (
        "NOVA_GUARD_ADMIN_LISTEN",
        "",
        "address for /healthz, /readyz and /metrics (empty: off)",
    ),
    (
        "NOVA_GUARD_TLS_CERT",
        "",
        "PEM certificate chain: the listener speaks TLS (reloaded on SIGHUP)",
    ),
    (
        "NOVA_GUARD_TLS_KEY",
        "",
        "PEM private key of NOVA_GUARD_TLS_CERT",
    ),
    (
        "NOVA_GUARD_UPSTREAM_CA_FILE",
        "",
        "PEM CA bundle for an https upstream (default: system roots)",
    ),
    (
        "NOVA_GUARD_UPSTREAM_CLIENT_CERT",
        "",
        "PEM client certificate chain presented to an https upstream",
    ),
    (
        "NOVA_GUARD_UPSTREAM_CLIENT_KEY",
        "",
        "PEM private key of NOVA_GUARD_UPSTREAM_CLIENT_CERT",
    ),
    (
        "NOVA_GUARD_MODE",
        "enforce",
        "enforce, or report (verdicts logged, every request forwarded unchanged)",
    ),
    (
        "NOVA_GUARD_ACCESS_IPV4_DENY",
        "",
        "comma-separated IPv4 CIDRs refused as accessIPv4",
    ),
    (
        "NOVA_GUARD_ACCESS_IPV4_ALLOW",
        "",
        "comma-separated IPv4 CIDRs; when set, accessIPv4 must be in one",
    ),
    (
        "NOVA_GUARD_ACCESS_IPV6_DENY",
        "",
        "comma-separated IPv6 CIDRs refused as accessIPv6",
    ),
    (
        "NOVA_GUARD_ACCESS_IPV6_ALLOW",
        "",
        "comma-separated IPv6 CIDRs; when set, accessIPv6 must be in one",
    ),
    (
        "NOVA_GUARD_ACCESS_IP_MAPPED_AS_V4",
        "false",
        "true: an IPv4-mapped accessIPv6 is judged by the IPv4 lists",
    ),
];

/// hyper's HTTP/1 reader cannot work with a smaller buffer.
const MIN_HEADER_BYTES: usize = 8192;

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut p = Parser {
            lookup: &lookup,
            problems: Vec::new(),
        };
        let listen = p.parse("NOVA_GUARD_LISTEN", "an address like 0.0.0.0:8775", |s| {
            s.parse::<SocketAddr>().ok()
        });
        let upstream = p.parse(
            "NOVA_GUARD_UPSTREAM",
            "an http:// or https:// URL with a host, like http://127.0.0.1:8774",
            parse_upstream,
        );
        let path_prefix = p.parse(
            "NOVA_GUARD_PATH_PREFIX",
            "empty, or a path starting with / and not ending with /, like /compute",
            |s| {
                let ok = s.is_empty()
                    || (s.starts_with('/')
                        && !s.ends_with('/')
                        && s.bytes().all(|b| b.is_ascii_graphic()));
                ok.then(|| s.to_owned())
            },
        );
        let max_body_bytes = p.parse(
            "NOVA_GUARD_MAX_BODY_BYTES",
            "a whole number of bytes, at least 1",
            |s| s.parse::<u64>().ok().filter(|n| *n >= 1),
        );
        let release = p.parse(
            "NOVA_GUARD_NOVA_RELEASE",
            &format!("one of {}", names(Release::ALL.map(Release::as_str))),
            |s| s.parse::<Release>().ok(),
        );
        let python = p.parse(
            "NOVA_GUARD_NOVA_PYTHON",
            &format!("empty or one of {}", names(Python::ALL.map(Python::as_str))),
            |s| match s {
                "" => Some(None),
                _ => s.parse::<Python>().ok().map(Some),
            },
        );
        // A Python the release's Nova does not run on (Nova 34 needs 3.11).
        let python = match (release, python) {
            (Some(r), Some(py)) => {
                let py = py.unwrap_or_else(|| r.default_python());
                if !r.supports(py) {
                    let supported: Vec<&str> = r.pythons().map(Python::as_str).collect();
                    p.problems.push(ConfigProblem {
                        var: "NOVA_GUARD_NOVA_PYTHON",
                        value: py.to_string(),
                        expected: format!(
                            "empty or one of {} (what Nova {r} runs on)",
                            names(supported)
                        ),
                    });
                }
                Some(py)
            }
            _ => None,
        };
        let max_microversion = p.parse(
            "NOVA_GUARD_MAX_MICROVERSION",
            "empty or a microversion like 2.104, at least 2.1",
            |s| match s {
                "" => Some(None),
                _ => s
                    .parse::<Microversion>()
                    .ok()
                    .filter(|v| *v >= Microversion::MIN)
                    .map(Some),
            },
        );
        let log_filter = p.parse(
            "NOVA_GUARD_LOG",
            "a tracing filter such as info or nova_guard=debug",
            |s| {
                tracing_subscriber::EnvFilter::builder()
                    .parse(s)
                    .ok()
                    .map(|_| s.to_owned())
            },
        );
        let log_format = p.parse("NOVA_GUARD_LOG_FORMAT", "json or text", |s| match s {
            "json" => Some(LogFormat::Json),
            "text" => Some(LogFormat::Text),
            _ => None,
        });
        let duration = "a duration like 250ms, 10s or 2m, above zero";
        let client_header_timeout =
            p.parse("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", duration, parse_duration);
        let upstream_connect_timeout = p.parse(
            "NOVA_GUARD_UPSTREAM_CONNECT_TIMEOUT",
            duration,
            parse_duration,
        );
        let upstream_timeout = p.parse("NOVA_GUARD_UPSTREAM_TIMEOUT", duration, parse_duration);
        let shutdown_grace = p.parse("NOVA_GUARD_SHUTDOWN_GRACE", duration, parse_duration);
        let max_header_bytes = p.parse(
            "NOVA_GUARD_MAX_HEADER_BYTES",
            "a whole number of bytes, at least 8192",
            |s| s.parse::<usize>().ok().filter(|n| *n >= MIN_HEADER_BYTES),
        );
        let trusted_proxies = p.parse(
            "NOVA_GUARD_TRUSTED_PROXIES",
            "a comma-separated list of CIDRs like 10.0.0.0/8,::1/128",
            parse_cidrs,
        );
        let client_body_timeout =
            p.parse("NOVA_GUARD_CLIENT_BODY_TIMEOUT", duration, parse_duration);
        let client_send_timeout =
            p.parse("NOVA_GUARD_CLIENT_SEND_TIMEOUT", duration, parse_duration);
        let upstream_idle_timeout =
            p.parse("NOVA_GUARD_UPSTREAM_IDLE_TIMEOUT", duration, parse_duration);
        let max_headers = p.parse(
            "NOVA_GUARD_MAX_HEADERS",
            "a whole number from 8 to 10000",
            |s| s.parse::<usize>().ok().filter(|n| (8..=10_000).contains(n)),
        );
        let max_uri_bytes = p.parse(
            "NOVA_GUARD_MAX_URI_BYTES",
            "a whole number of bytes from 256 to 65534",
            |s| {
                s.parse::<usize>()
                    .ok()
                    .filter(|n| (256..=65_534).contains(n))
            },
        );
        let max_connections = p.parse(
            "NOVA_GUARD_MAX_CONNECTIONS",
            "a whole number, at least 1",
            |s| s.parse::<usize>().ok().filter(|n| *n >= 1),
        );
        let max_requests_per_connection = p.parse(
            "NOVA_GUARD_MAX_REQUESTS_PER_CONNECTION",
            "a whole number, at least 1",
            |s| s.parse::<u64>().ok().filter(|n| *n >= 1),
        );
        let admin_listen = p.parse(
            "NOVA_GUARD_ADMIN_LISTEN",
            "empty, or an address like 127.0.0.1:9775",
            |s| {
                if s.is_empty() {
                    Some(None)
                } else {
                    s.parse::<SocketAddr>().ok().map(Some)
                }
            },
        );
        let tls = p.tls_listener();
        let upstream_tls = p.upstream_tls(upstream.as_ref());
        let guard = parse_guard(&mut p);

        if !p.problems.is_empty() {
            return Err(ConfigError(p.problems));
        }
        // Every value parsed (a failure would have been recorded above).
        let config = (|| {
            let (mode, access_ip_policy) = guard?;
            let profile = Profile::new(release?, python?);
            Some(Config {
                listen: listen?,
                upstream: upstream?,
                path_prefix: path_prefix?,
                max_body_bytes: max_body_bytes?,
                profile,
                max_microversion: max_microversion?
                    .unwrap_or_else(|| profile.release.max_microversion()),
                log_filter: log_filter?,
                log_format: log_format?,
                client_header_timeout: client_header_timeout?,
                upstream_connect_timeout: upstream_connect_timeout?,
                upstream_timeout: upstream_timeout?,
                shutdown_grace: shutdown_grace?,
                max_header_bytes: max_header_bytes?,
                trusted_proxies: trusted_proxies?,
                client_body_timeout: client_body_timeout?,
                client_send_timeout: client_send_timeout?,
                upstream_idle_timeout: upstream_idle_timeout?,
                max_headers: max_headers?,
                max_uri_bytes: max_uri_bytes?,
                max_connections: max_connections?,
                max_requests_per_connection: max_requests_per_connection?,
                admin_listen: admin_listen?,
                tls: tls?,
                upstream_tls: upstream_tls?,
                mode,
                access_ip_policy,
            })
        })();
        config.ok_or(ConfigError(p.problems))
    }

    /// `NOVA_GUARD_*` variables in the environment that nova-guard does not
    /// know: most likely typos, worth a warning at start-up.
    pub fn unknown_variables() -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with("NOVA_GUARD_"))
            .filter(|k| !VARIABLES.iter().any(|(name, _, _)| name == k))
            .collect()
    }
}

struct Parser<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<ConfigProblem>,
}

impl Parser<'_> {
    /// A path variable: `None` when unset or empty.
    fn path(&self, var: &str) -> Option<PathBuf> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    fn problem(&mut self, var: &'static str, value: Option<&PathBuf>, expected: String) {
        self.problems.push(ConfigProblem {
            var,
            value: value.map_or_else(String::new, |p| p.display().to_string()),
            expected,
        });
    }

    /// Both or neither of the listener's certificate and key, loadable together.
    fn tls_listener(&mut self) -> Option<Option<(PathBuf, PathBuf)>> {
        let cert = self.path("NOVA_GUARD_TLS_CERT");
        let key = self.path("NOVA_GUARD_TLS_KEY");
        match (cert, key) {
            (None, None) => Some(None),
            (Some(cert), None) => {
                self.problem(
                    "NOVA_GUARD_TLS_KEY",
                    None,
                    "a PEM private key file, set together with NOVA_GUARD_TLS_CERT".into(),
                );
                let _ = cert;
                None
            }
            (None, Some(key)) => {
                let _ = key;
                self.problem(
                    "NOVA_GUARD_TLS_CERT",
                    None,
                    "a PEM certificate file, set together with NOVA_GUARD_TLS_KEY".into(),
                );
                None
            }
            (Some(cert), Some(key)) => match tls::load_certified_key(&cert, &key) {
                Ok(_) => Some(Some((cert, key))),
                Err(e) => {
                    self.problem(
                        "NOVA_GUARD_TLS_CERT",
                        Some(&cert),
                        format!("a PEM certificate chain whose key is NOVA_GUARD_TLS_KEY ({e})"),
                    );
                    None
                }
            },
        }
    }

    /// The CA bundle and client certificate for an https upstream.
    fn upstream_tls(&mut self, upstream: Option<&Upstream>) -> Option<UpstreamTls> {
        let ca_file = self.path("NOVA_GUARD_UPSTREAM_CA_FILE");
        let cert = self.path("NOVA_GUARD_UPSTREAM_CLIENT_CERT");
        let key = self.path("NOVA_GUARD_UPSTREAM_CLIENT_KEY");
        let before = self.problems.len();
        let client_cert = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                if let Err(e) = tls::load_certified_key(&cert, &key) {
                    self.problem(
                        "NOVA_GUARD_UPSTREAM_CLIENT_CERT",
                        Some(&cert),
                        format!("a PEM certificate chain whose key is NOVA_GUARD_UPSTREAM_CLIENT_KEY ({e})"),
                    );
                }
                Some((cert, key))
            }
            (Some(_), None) => {
                self.problem(
                    "NOVA_GUARD_UPSTREAM_CLIENT_KEY",
                    None,
                    "a PEM private key file, set together with NOVA_GUARD_UPSTREAM_CLIENT_CERT"
                        .into(),
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    "NOVA_GUARD_UPSTREAM_CLIENT_CERT",
                    None,
                    "a PEM certificate file, set together with NOVA_GUARD_UPSTREAM_CLIENT_KEY"
                        .into(),
                );
                None
            }
        };
        if let Some(ca) = &ca_file {
            if let Err(e) = tls::check_ca_file(ca) {
                self.problem(
                    "NOVA_GUARD_UPSTREAM_CA_FILE",
                    Some(ca),
                    format!("a PEM file of CA certificates ({e})"),
                );
            }
        }
        let settings = UpstreamTls {
            ca_file,
            client_cert,
        };
        let https = upstream.is_some_and(|u| u.uri.scheme_str() == Some("https"));
        if !https && (settings.ca_file.is_some() || settings.client_cert.is_some()) {
            let var = if settings.ca_file.is_some() {
                "NOVA_GUARD_UPSTREAM_CA_FILE"
            } else {
                "NOVA_GUARD_UPSTREAM_CLIENT_CERT"
            };
            let value = settings
                .ca_file
                .clone()
                .or_else(|| settings.client_cert.clone().map(|c| c.0));
            self.problem(
                var,
                value.as_ref(),
                "to be set only with an https:// NOVA_GUARD_UPSTREAM".into(),
            );
        } else if https && self.problems.len() == before {
            if let Err(e) = tls::client_config(&settings) {
                self.problem(
                    "NOVA_GUARD_UPSTREAM_CA_FILE",
                    settings.ca_file.as_ref(),
                    format!("CA certificates for the https upstream ({e})"),
                );
            }
        }
        (self.problems.len() == before).then_some(settings)
    }

    /// Parse `var` (or its default) with `f`; record a problem when it fails.
    fn parse<T>(
        &mut self,
        var: &'static str,
        expected: &str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let default = VARIABLES
            .iter()
            .find(|(name, _, _)| *name == var)
            .map(|(_, d, _)| *d)
            .unwrap_or("");
        let value = (self.lookup)(var).unwrap_or_else(|| default.to_owned());
        let parsed = f(value.trim());
        if parsed.is_none() {
            self.problems.push(ConfigProblem {
                var,
                value,
                expected: expected.to_owned(),
            });
        }
        parsed
    }
}

/// `a, b, c` for an expected-value message.
fn names<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

fn parse_upstream(s: &str) -> Option<Upstream> {
    let uri: Uri = s.parse().ok()?;
    let scheme = uri.scheme_str()?;
    if !matches!(scheme, "http" | "https") || uri.host().is_none() || uri.query().is_some() {
        return None;
    }
    let scheme = scheme.to_owned();
    let base_path = uri.path().trim_end_matches('/').to_owned();
    let authority = uri.authority()?.clone();
    if authority.as_str().contains('@') {
        return None;
    }
    let uri = Uri::builder()
        .scheme(scheme.as_str())
        .authority(authority)
        .path_and_query("/")
        .build()
        .ok()?;
    Some(Upstream { uri, base_path })
}

/// `250ms`, `10s`, `2m`, `1h`; zero is refused (it would make every call fail).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

/// `NOVA_GUARD_MODE` and the access-IP policy.
fn parse_guard(p: &mut Parser<'_>) -> Option<(GuardMode, AccessIpPolicy)> {
    let mode = p.parse("NOVA_GUARD_MODE", "enforce or report", |s| match s {
        "enforce" => Some(GuardMode::Enforce),
        "report" => Some(GuardMode::Report),
        _ => None,
    });
    let v4 = "a comma-separated list of IPv4 CIDRs like 127.0.0.0/8,169.254.0.0/16";
    let v6 = "a comma-separated list of IPv6 CIDRs like ::1/128,fe80::/10";
    let ipv4_deny = p.parse("NOVA_GUARD_ACCESS_IPV4_DENY", v4, |s| family_cidrs(s, true));
    let ipv4_allow = p.parse("NOVA_GUARD_ACCESS_IPV4_ALLOW", v4, |s| {
        family_cidrs(s, true)
    });
    let ipv6_deny = p.parse("NOVA_GUARD_ACCESS_IPV6_DENY", v6, |s| {
        family_cidrs(s, false)
    });
    let ipv6_allow = p.parse("NOVA_GUARD_ACCESS_IPV6_ALLOW", v6, |s| {
        family_cidrs(s, false)
    });
    let mapped_as_v4 = p.parse(
        "NOVA_GUARD_ACCESS_IP_MAPPED_AS_V4",
        "true or false",
        |s| match s {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
    );
    Some((
        mode?,
        AccessIpPolicy {
            ipv4_deny: ipv4_deny?,
            ipv4_allow: ipv4_allow?,
            ipv6_deny: ipv6_deny?,
            ipv6_allow: ipv6_allow?,
            mapped_as_v4: mapped_as_v4?,
        },
    ))
}

/// CIDRs all of one family (`v4` or not), host bits cleared.
fn family_cidrs(s: &str, v4: bool) -> Option<Vec<IpNetwork>> {
    let nets = parse_cidrs(s)?;
    nets.iter()
        .all(|n| n.is_ipv4() == v4)
        .then(|| nets.into_iter().map(normalise).collect())
}

fn parse_cidrs(s: &str) -> Option<Vec<IpNetwork>> {
    s.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<IpNetwork>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_valid() {
        let c = config(&[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:8775".parse().unwrap());
        assert_eq!(
            c.upstream.uri.authority().unwrap().as_str(),
            "127.0.0.1:8774"
        );
        assert_eq!(c.upstream.base_path, "");
        assert_eq!(c.max_body_bytes, 114_688);
        assert_eq!(c.max_microversion, Microversion::new(2, 104));
        assert_eq!(c.profile, Profile::default());
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.client_header_timeout, Duration::from_secs(10));
        assert_eq!(c.upstream_timeout, Duration::from_secs(120));
        assert_eq!(c.max_header_bytes, 65_536);
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.client_body_timeout, Duration::from_secs(30));
        assert_eq!(c.client_send_timeout, Duration::from_secs(60));
        assert_eq!(c.upstream_idle_timeout, Duration::from_secs(60));
        assert_eq!(c.max_headers, 100);
        assert_eq!(c.max_uri_bytes, 8192);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.max_requests_per_connection, 1000);
        assert_eq!(c.admin_listen, None);
    }

    #[test]
    fn hardening_variables_are_checked_together() {
        let err = config(&[
            ("NOVA_GUARD_CLIENT_BODY_TIMEOUT", "never"),
            ("NOVA_GUARD_UPSTREAM_IDLE_TIMEOUT", "0s"),
            ("NOVA_GUARD_MAX_HEADERS", "2"),
            ("NOVA_GUARD_MAX_URI_BYTES", "70000"),
            ("NOVA_GUARD_MAX_CONNECTIONS", "0"),
            ("NOVA_GUARD_MAX_REQUESTS_PER_CONNECTION", "-3"),
            ("NOVA_GUARD_ADMIN_LISTEN", "localhost"),
        ])
        .unwrap_err();
        assert_eq!(err.0.len(), 7, "{err}");
        let c = config(&[
            ("NOVA_GUARD_MAX_URI_BYTES", "65534"),
            ("NOVA_GUARD_ADMIN_LISTEN", "127.0.0.1:9775"),
        ])
        .unwrap();
        assert_eq!(c.admin_listen, Some("127.0.0.1:9775".parse().unwrap()));
        assert_eq!(c.max_uri_bytes, 65_534);
    }

    #[test]
    fn every_bad_variable_is_reported_at_once() {
        let err = config(&[
            ("NOVA_GUARD_LISTEN", "nowhere"),
            ("NOVA_GUARD_UPSTREAM", "ftp://x"),
            ("NOVA_GUARD_MAX_BODY_BYTES", "-1"),
            ("NOVA_GUARD_MAX_MICROVERSION", "2.0"),
            ("NOVA_GUARD_LOG_FORMAT", "xml"),
            ("NOVA_GUARD_UPSTREAM_TIMEOUT", "0s"),
            ("NOVA_GUARD_MAX_HEADER_BYTES", "100"),
            ("NOVA_GUARD_TRUSTED_PROXIES", "10.0.0.0/8,bogus"),
            ("NOVA_GUARD_PATH_PREFIX", "compute/"),
        ])
        .unwrap_err();
        let vars: Vec<_> = err.0.iter().map(|p| p.var).collect();
        assert_eq!(
            vars,
            [
                "NOVA_GUARD_LISTEN",
                "NOVA_GUARD_UPSTREAM",
                "NOVA_GUARD_PATH_PREFIX",
                "NOVA_GUARD_MAX_BODY_BYTES",
                "NOVA_GUARD_MAX_MICROVERSION",
                "NOVA_GUARD_LOG_FORMAT",
                "NOVA_GUARD_UPSTREAM_TIMEOUT",
                "NOVA_GUARD_MAX_HEADER_BYTES",
                "NOVA_GUARD_TRUSTED_PROXIES",
            ]
        );
        let text = err.to_string();
        assert!(text.contains("NOVA_GUARD_LISTEN=\"nowhere\": expected an address"));
        assert!(text.contains("9 problem(s)"));
    }

    #[test]
    fn upstream_base_path_and_durations() {
        let c = config(&[
            ("NOVA_GUARD_UPSTREAM", "http://nova.internal:8774/compute/"),
            ("NOVA_GUARD_SHUTDOWN_GRACE", "250ms"),
            ("NOVA_GUARD_UPSTREAM_CONNECT_TIMEOUT", "2m"),
            ("NOVA_GUARD_TRUSTED_PROXIES", " 10.0.0.0/8 , ::1/128 "),
        ])
        .unwrap();
        assert_eq!(c.upstream.base_path, "/compute");
        assert_eq!(c.shutdown_grace, Duration::from_millis(250));
        assert_eq!(c.upstream_connect_timeout, Duration::from_secs(120));
        assert_eq!(c.trusted_proxies.len(), 2);
    }

    #[test]
    fn release_and_python() {
        let c = config(&[("NOVA_GUARD_NOVA_RELEASE", "2024.1")]).unwrap();
        assert_eq!(c.profile, Profile::new(Release::R2024_1, Python::Py3_10));
        assert_eq!(c.max_microversion, Microversion::new(2, 96));
        let c = config(&[
            ("NOVA_GUARD_NOVA_RELEASE", "2025.2"),
            ("NOVA_GUARD_NOVA_PYTHON", "3.13"),
            ("NOVA_GUARD_MAX_MICROVERSION", "2.101"),
        ])
        .unwrap();
        assert_eq!(c.profile, Profile::new(Release::R2025_2, Python::Py3_13));
        assert_eq!(c.max_microversion, Microversion::new(2, 101));
        let c = config(&[("NOVA_GUARD_NOVA_PYTHON", "3.11")]).unwrap();
        assert_eq!(c.profile, Profile::new(Release::R2026_2, Python::Py3_11));

        let e = config(&[
            ("NOVA_GUARD_NOVA_RELEASE", "2023.1"),
            ("NOVA_GUARD_MAX_MICROVERSION", "latest"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = e.0.iter().map(|p| p.var).collect();
        assert_eq!(
            vars,
            ["NOVA_GUARD_NOVA_RELEASE", "NOVA_GUARD_MAX_MICROVERSION"]
        );
        assert_eq!(
            e.0[0].expected,
            "one of 2024.1, 2025.1, 2025.2, 2026.1, 2026.2"
        );
        let e = config(&[
            ("NOVA_GUARD_NOVA_RELEASE", "2026"),
            ("NOVA_GUARD_NOVA_PYTHON", "3.9"),
        ])
        .unwrap_err();
        assert_eq!(e.0.len(), 2);
        assert_eq!(e.0[1].expected, "empty or one of 3.10, 3.11, 3.12, 3.13");
        // Nova 34 needs Python 3.11.
        let e = config(&[("NOVA_GUARD_NOVA_PYTHON", "3.10")]).unwrap_err();
        assert_eq!(
            (e.0[0].var, e.0[0].expected.as_str()),
            (
                "NOVA_GUARD_NOVA_PYTHON",
                "empty or one of 3.11, 3.12, 3.13 (what Nova 2026.2 runs on)"
            )
        );
        assert!(config(&[
            ("NOVA_GUARD_NOVA_RELEASE", "2026.1"),
            ("NOVA_GUARD_NOVA_PYTHON", "3.10"),
        ])
        .is_ok());
    }

    #[test]
    fn the_readme_table_lists_every_variable_with_its_default() {
        let readme = include_str!("../README.md");
        for (name, default, _) in VARIABLES {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{name}` |")))
                .unwrap_or_else(|| panic!("{name} is not in README's table"));
            if !default.is_empty() {
                assert!(
                    row.contains(&format!("| `{default}` |")),
                    "{name}: README does not give the default {default}: {row}"
                );
            }
        }
        let listed = readme
            .lines()
            .filter(|l| l.starts_with("| `NOVA_GUARD_"))
            .count();
        assert_eq!(
            listed,
            VARIABLES.len(),
            "README lists variables nova-guard does not read"
        );
    }

    #[test]
    fn mode_and_access_ip_policy() {
        let c = config(&[]).unwrap();
        assert_eq!(c.mode, GuardMode::Enforce);
        assert!(c.access_ip_policy.is_empty());
        assert!(!c.access_ip_policy.mapped_as_v4);
        let c = config(&[
            ("NOVA_GUARD_MODE", "report"),
            ("NOVA_GUARD_ACCESS_IPV4_DENY", "127.0.0.1/8, 169.254.0.0/16"),
            ("NOVA_GUARD_ACCESS_IPV6_ALLOW", "2001:db8::/32"),
            ("NOVA_GUARD_ACCESS_IP_MAPPED_AS_V4", "true"),
        ])
        .unwrap();
        assert_eq!(c.mode, GuardMode::Report);
        let p = &c.access_ip_policy;
        assert_eq!(p.ipv4_deny[0].to_string(), "127.0.0.0/8");
        assert_eq!(p.ipv4_deny.len(), 2);
        assert_eq!(p.ipv6_allow.len(), 1);
        assert!(p.mapped_as_v4);
        let err = config(&[
            ("NOVA_GUARD_MODE", "audit"),
            ("NOVA_GUARD_ACCESS_IPV4_DENY", "::1/128"),
            ("NOVA_GUARD_ACCESS_IPV4_ALLOW", "10.0.0.0/33"),
            ("NOVA_GUARD_ACCESS_IPV6_DENY", "10.0.0.0/8"),
            ("NOVA_GUARD_ACCESS_IPV6_ALLOW", "x"),
            ("NOVA_GUARD_ACCESS_IP_MAPPED_AS_V4", "yes"),
        ])
        .unwrap_err();
        let vars: Vec<_> = err.0.iter().map(|p| p.var).collect();
        assert_eq!(
            vars,
            [
                "NOVA_GUARD_MODE",
                "NOVA_GUARD_ACCESS_IPV4_DENY",
                "NOVA_GUARD_ACCESS_IPV4_ALLOW",
                "NOVA_GUARD_ACCESS_IPV6_DENY",
                "NOVA_GUARD_ACCESS_IPV6_ALLOW",
                "NOVA_GUARD_ACCESS_IP_MAPPED_AS_V4",
            ]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        for bad in [
            "",
            "10",
            "s",
            "1.5s",
            "10 s",
            "0ms",
            "-1s",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
