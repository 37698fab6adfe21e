//! The environment, read once into settings grouped by who consumes them:
//! the listener, the limits put on clients, Nova (with its TLS), what is
//! validated, the admin listener and the logs. A bad value never starts a
//! half-configured proxy: every problem is collected and reported together,
//! each naming the variable, its value (never a password) and what was
//! expected. Certificates and keys are read here, once, and handed on
//! loaded.
//!
//! This module sits above what it configures: it builds their settings, and
//! nothing below imports it.

mod parse;
pub mod vars;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnetwork::IpNetwork;

pub use parse::{duration as parse_duration, mask_userinfo};
pub use vars::{Var, ALL as VARIABLES};

pub use crate::guard::Enforcement;
use crate::nova::{AccessIpPolicy, Microversion, Profile, Python, Release};
use crate::tls::{self, ReloadingCert};
use vars::*;

pub use crate::log::Format as LogFormat;

/// Where clients connect, and who may be in front of them.
#[derive(Debug, Clone)]
pub struct Listener {
    pub listen: SocketAddr,
    /// The listener's certificate, loaded: TLS when set.
    pub tls: Option<Arc<ReloadingCert>>,
    /// Worker threads; 0: one per CPU.
    pub workers: usize,
    pub max_connections: usize,
    /// Proxies whose forwarding headers are kept.
    pub trusted_proxies: Vec<IpNetwork>,
    pub shutdown_grace: Duration,
}

/// What a client may send, and how slowly.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_uri_bytes: usize,
    pub max_requests_per_connection: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub send_timeout: Duration,
}

/// How to reach Nova (consumed by both upstream clients).
pub use crate::upstream::Settings as Upstream;

/// What is validated, and how.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The Nova release and Python whose answers are matched.
    pub profile: Profile,
    pub path_prefix: String,
    pub max_body_bytes: u64,
    pub max_microversion: Microversion,
    pub enforcement: Enforcement,
    pub access_ip_policy: AccessIpPolicy,
}

/// The admin listener, and how readiness checks Nova.
#[derive(Debug, Clone)]
pub struct Admin {
    pub listen: Option<SocketAddr>,
    pub readiness: crate::admin::Check,
}

#[derive(Debug, Clone)]
pub struct Log {
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listener: Listener,
    pub limits: Limits,
    pub upstream: Upstream,
    pub validation: Validation,
    pub admin: Admin,
    pub log: Log,
}

/// One bad variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub var: &'static str,
    /// As given, passwords masked.
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

/// hyper's and the codec's head reading cannot work with a smaller buffer.
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
        let listener = listener(&mut p);
        let limits = limits(&mut p);
        let upstream = upstream(&mut p);
        let validation = validation(&mut p);
        let admin = admin(&mut p);
        let log = log(&mut p);
        if !p.problems.is_empty() {
            return Err(ConfigError(p.problems));
        }
        // Every group parsed (a failure would have been recorded above).
        match (listener, limits, upstream, validation, admin, log) {
            (
                Some(listener),
                Some(limits),
                Some(upstream),
                Some(validation),
                Some(admin),
                Some(log),
            ) => Ok(Config {
                listener,
                limits,
                upstream,
                validation,
                admin,
                log,
            }),
            _ => Err(ConfigError(p.problems)),
        }
    }

    /// What guarding needs of the configuration.
    pub fn guard_settings(&self) -> crate::guard::Settings {
        let v = &self.validation;
        crate::guard::Settings {
            profile: v.profile,
            path_prefix: v.path_prefix.clone(),
            max_body_bytes: v.max_body_bytes,
            max_microversion: v.max_microversion,
            body_timeout: self.limits.body_timeout,
            enforcement: v.enforcement,
            access_ip_policy: v.access_ip_policy.clone(),
        }
    }

    /// `NOVA_GUARD_*` variables in the environment that nova-guard does not
    /// know: most likely typos, worth a warning at start-up.
    pub fn unknown_variables() -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with("NOVA_GUARD_") && vars::find(k).is_none())
            .collect()
    }
}

fn listener(p: &mut Parser<'_>) -> Option<Listener> {
    let listen = p.get(&LISTEN, |s| s.parse::<SocketAddr>().ok());
    let tls = p.tls_listener();
    let workers = p.get(&WORKERS, |s| s.parse::<usize>().ok().filter(|n| *n <= 1024));
    let max_connections = p.get(&MAX_CONNECTIONS, |s| {
        s.parse::<usize>().ok().filter(|n| *n >= 1)
    });
    let trusted_proxies = p.get(&TRUSTED_PROXIES, parse::cidrs);
    let shutdown_grace = p.get(&SHUTDOWN_GRACE, parse::duration);
    Some(Listener {
        listen: listen?,
        tls: tls?,
        workers: workers?,
        max_connections: max_connections?,
        trusted_proxies: trusted_proxies?,
        shutdown_grace: shutdown_grace?,
    })
}

fn limits(p: &mut Parser<'_>) -> Option<Limits> {
    let max_header_bytes = p.get(&MAX_HEADER_BYTES, |s| {
        s.parse::<usize>().ok().filter(|n| *n >= MIN_HEADER_BYTES)
    });
    let max_headers = p.get(&MAX_HEADERS, |s| {
        s.parse::<usize>().ok().filter(|n| (8..=10_000).contains(n))
    });
    let max_uri_bytes = p.get(&MAX_URI_BYTES, |s| {
        s.parse::<usize>()
            .ok()
            .filter(|n| (256..=65_534).contains(n))
    });
    let max_requests = p.get(&MAX_REQUESTS_PER_CONNECTION, |s| {
        s.parse::<u64>().ok().filter(|n| *n >= 1)
    });
    let header_timeout = p.get(&CLIENT_HEADER_TIMEOUT, parse::duration);
    let body_timeout = p.get(&CLIENT_BODY_TIMEOUT, parse::duration);
    let send_timeout = p.get(&CLIENT_SEND_TIMEOUT, parse::duration);
    Some(Limits {
        max_header_bytes: max_header_bytes?,
        max_headers: max_headers?,
        max_uri_bytes: max_uri_bytes?,
        max_requests_per_connection: max_requests?,
        header_timeout: header_timeout?,
        body_timeout: body_timeout?,
        send_timeout: send_timeout?,
    })
}

fn upstream(p: &mut Parser<'_>) -> Option<Upstream> {
    let raw = p.value(&UPSTREAM);
    let url = if mask_userinfo(&raw) != raw {
        // Nova takes a Keystone token from each client, never the proxy's
        // own credentials: a user and password here would only end up in
        // logs and process listings.
        p.fail(
            &UPSTREAM,
            &raw,
            "a URL without a user or password (Nova authenticates each client's own token; \
             put no credentials in the upstream URL)",
        );
        None
    } else {
        p.get(&UPSTREAM, parse::upstream_url)
    };
    let connect_timeout = p.get(&UPSTREAM_CONNECT_TIMEOUT, parse::duration);
    let timeout = p.get(&UPSTREAM_TIMEOUT, parse::duration);
    let idle_timeout = p.get(&UPSTREAM_IDLE_TIMEOUT, parse::duration);
    let https = url
        .as_ref()
        .is_some_and(|(uri, _)| uri.scheme_str() == Some("https"));
    let tls = p.upstream_tls(https);
    let (uri, base_path) = url?;
    Some(Upstream {
        uri,
        base_path,
        connect_timeout: connect_timeout?,
        timeout: timeout?,
        idle_timeout: idle_timeout?,
        tls: tls?,
    })
}

fn validation(p: &mut Parser<'_>) -> Option<Validation> {
    let path_prefix = p.get(&PATH_PREFIX, |s| {
        let ok = s.is_empty()
            || (s.starts_with('/') && !s.ends_with('/') && s.bytes().all(|b| b.is_ascii_graphic()));
        ok.then(|| s.to_owned())
    });
    let max_body_bytes = p.get(&MAX_BODY_BYTES, |s| {
        s.parse::<u64>().ok().filter(|n| *n >= 1)
    });
    let release = p.get(&NOVA_RELEASE, |s| s.parse::<Release>().ok());
    let python = p.get(&NOVA_PYTHON, |s| s.parse::<Python>().ok());
    // A Python the release's Nova does not run on (Nova 34 needs 3.11).
    if let (Some(r), Some(py)) = (release, python) {
        if !r.supports(py) {
            let supported: Vec<&str> = r.pythons().map(Python::as_str).collect();
            p.fail(
                &NOVA_PYTHON,
                py.as_str(),
                &format!("one of {} (what Nova {r} runs on)", supported.join(", ")),
            );
        }
    }
    let max_microversion = p.get(&MAX_MICROVERSION, |s| match s {
        "" => Some(None),
        _ => s
            .parse::<Microversion>()
            .ok()
            .filter(|v| *v >= Microversion::MIN)
            .map(Some),
    });
    let enforcement = p.get(&MODE, |s| match s {
        "enforce" => Some(Enforcement::Enforce),
        "report" => Some(Enforcement::Report),
        _ => None,
    });
    let ipv4_deny = p.get(&ACCESS_IPV4_DENY, |s| parse::family_cidrs(s, true));
    let ipv4_allow = p.get(&ACCESS_IPV4_ALLOW, |s| parse::family_cidrs(s, true));
    let ipv6_deny = p.get(&ACCESS_IPV6_DENY, |s| parse::family_cidrs(s, false));
    let ipv6_allow = p.get(&ACCESS_IPV6_ALLOW, |s| parse::family_cidrs(s, false));
    let mapped_as_v4 = p.get(&ACCESS_IP_MAPPED_AS_V4, parse::boolean);
    let profile = Profile::new(release?, python?);
    Some(Validation {
        profile,
        path_prefix: path_prefix?,
        max_body_bytes: max_body_bytes?,
        max_microversion: max_microversion?.unwrap_or_else(|| profile.release.max_microversion()),
        enforcement: enforcement?,
        access_ip_policy: AccessIpPolicy {
            ipv4_deny: ipv4_deny?,
            ipv4_allow: ipv4_allow?,
            ipv6_deny: ipv6_deny?,
            ipv6_allow: ipv6_allow?,
            mapped_as_v4: mapped_as_v4?,
        },
    })
}

fn admin(p: &mut Parser<'_>) -> Option<Admin> {
    let listen = p.get(&ADMIN_LISTEN, |s| {
        if s.is_empty() {
            Some(None)
        } else {
            s.parse::<SocketAddr>().ok().map(Some)
        }
    });
    let interval = p.get(&READINESS_INTERVAL, parse::duration);
    let timeout = p.get(&READINESS_TIMEOUT, parse::duration);
    Some(Admin {
        listen: listen?,
        readiness: crate::admin::Check {
            interval: interval?,
            timeout: timeout?,
        },
    })
}

fn log(p: &mut Parser<'_>) -> Option<Log> {
    let filter = p.get(&LOG, |s| {
        tracing_subscriber::EnvFilter::builder()
            .parse(s)
            .ok()
            .map(|_| s.to_owned())
    });
    let format = p.get(&LOG_FORMAT, |s| match s {
        "json" => Some(LogFormat::Json),
        "text" => Some(LogFormat::Text),
        _ => None,
    });
    Some(Log {
        filter: filter?,
        format: format?,
    })
}

struct Parser<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<ConfigProblem>,
}

impl Parser<'_> {
    /// The value of `var`, or its default.
    fn value(&self, var: &Var) -> String {
        (self.lookup)(var.name).unwrap_or_else(|| var.default.to_owned())
    }

    /// Record that `var` is bad.
    fn fail(&mut self, var: &Var, value: &str, expected: &str) {
        self.problems.push(ConfigProblem {
            var: var.name,
            // A problem is printed: never with a password in it.
            value: mask_userinfo(value),
            expected: expected.to_owned(),
        });
    }

    /// Parse `var` (or its default) with `f`; record a problem when it fails.
    fn get<T>(&mut self, var: &Var, f: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        let value = self.value(var);
        let parsed = f(value.trim());
        if parsed.is_none() {
            self.fail(var, &value, var.expected);
        }
        parsed
    }

    /// A path variable: `None` when unset or empty.
    fn path(&self, var: &Var) -> Option<PathBuf> {
        Some(PathBuf::from(self.value(var).trim())).filter(|p| !p.as_os_str().is_empty())
    }

    fn fail_path(&mut self, var: &Var, path: Option<&PathBuf>, expected: String) {
        let value = path.map_or_else(String::new, |p| p.display().to_string());
        self.fail(var, &value, &expected);
    }

    /// Both or neither of the listener's certificate and key, loaded together.
    fn tls_listener(&mut self) -> Option<Option<Arc<ReloadingCert>>> {
        match (self.path(&TLS_CERT), self.path(&TLS_KEY)) {
            (None, None) => Some(None),
            (Some(_), None) => {
                self.fail_path(&TLS_KEY, None, TLS_KEY.expected.into());
                None
            }
            (None, Some(_)) => {
                self.fail_path(&TLS_CERT, None, TLS_CERT.expected.into());
                None
            }
            (Some(cert), Some(key)) => match ReloadingCert::load(&cert, &key) {
                Ok(loaded) => Some(Some(Arc::new(loaded))),
                Err(e) => {
                    self.fail_path(
                        &TLS_CERT,
                        Some(&cert),
                        format!("a PEM certificate chain whose key is NOVA_GUARD_TLS_KEY ({e})"),
                    );
                    None
                }
            },
        }
    }

    /// The client configuration for an https upstream, built once.
    fn upstream_tls(&mut self, https: bool) -> Option<Option<Arc<rustls::ClientConfig>>> {
        let ca_file = self.path(&UPSTREAM_CA_FILE);
        let cert = self.path(&UPSTREAM_CLIENT_CERT);
        let key = self.path(&UPSTREAM_CLIENT_KEY);
        let before = self.problems.len();
        let client_cert = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                if let Err(e) = tls::load_certified_key(&cert, &key) {
                    self.fail_path(
                        &UPSTREAM_CLIENT_CERT,
                        Some(&cert),
                        format!("a PEM certificate chain whose key is NOVA_GUARD_UPSTREAM_CLIENT_KEY ({e})"),
                    );
                }
                Some((cert, key))
            }
            (Some(_), None) => {
                self.fail_path(
                    &UPSTREAM_CLIENT_KEY,
                    None,
                    UPSTREAM_CLIENT_KEY.expected.into(),
                );
                None
            }
            (None, Some(_)) => {
                self.fail_path(
                    &UPSTREAM_CLIENT_CERT,
                    None,
                    UPSTREAM_CLIENT_CERT.expected.into(),
                );
                None
            }
        };
        if let Some(ca) = &ca_file {
            if let Err(e) = tls::check_ca_file(ca) {
                self.fail_path(
                    &UPSTREAM_CA_FILE,
                    Some(ca),
                    format!("a PEM file of CA certificates ({e})"),
                );
            }
        }
        if self.problems.len() != before {
            return None;
        }
        let settings = tls::UpstreamTls {
            ca_file,
            client_cert,
        };
        if !https {
            if settings.ca_file.is_some() || settings.client_cert.is_some() {
                let (var, value) = match (&settings.ca_file, &settings.client_cert) {
                    (Some(ca), _) => (&UPSTREAM_CA_FILE, Some(ca)),
                    (None, c) => (&UPSTREAM_CLIENT_CERT, c.as_ref().map(|c| &c.0)),
                };
                self.fail_path(
                    var,
                    value,
                    "to be set only with an https:// NOVA_GUARD_UPSTREAM".into(),
                );
                return None;
            }
            return Some(None);
        }
        match tls::client_config(&settings) {
            Ok(mut config) => {
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(Some(Arc::new(config)))
            }
            Err(e) => {
                self.fail_path(
                    &UPSTREAM_CA_FILE,
                    settings.ca_file.as_ref(),
                    format!("CA certificates for the https upstream ({e})"),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
