//! Every `NOVA_GUARD_*` variable, declared once: its name, default, what it
//! means (for `--help` and the operator guide's table, which a test holds to
//! this list) and what a valid value looks like (for error messages). Each
//! is parsed in exactly one place, by the group that consumes it
//! ([`super`]).

/// One variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    pub default: &'static str,
    /// One line, as `--help` and the guide's table show it.
    pub meaning: &'static str,
    /// What a valid value is, for the error naming a bad one.
    pub expected: &'static str,
}

const DURATION: &str = "a duration like 250ms, 10s, 2m or 1m30s, above zero";

macro_rules! vars {
    ($($id:ident = $name:literal, $default:literal, $meaning:literal, $expected:expr;)*) => {
        $(pub const $id: Var = Var {
            name: $name,
            default: $default,
            meaning: $meaning,
            expected: $expected,
        };)*
        /// Every variable, in the order `--help` and the guide list them.
        pub const ALL: &[Var] = &[$($id),*];
    };
}

vars! {
    // The listener.
    LISTEN = "NOVA_GUARD_LISTEN", "0.0.0.0:8775",
        "address to listen on (HTTP/1.1 and HTTP/2; over TLS when NOVA_GUARD_TLS_CERT is set)",
        "an address like 0.0.0.0:8775";
    TLS_CERT = "NOVA_GUARD_TLS_CERT", "",
        "PEM certificate chain: the listener speaks TLS 1.2/1.3; reloaded on SIGHUP and when the file changes",
        "a PEM certificate file, set together with NOVA_GUARD_TLS_KEY";
    TLS_KEY = "NOVA_GUARD_TLS_KEY", "",
        "PEM private key of NOVA_GUARD_TLS_CERT",
        "a PEM private key file, set together with NOVA_GUARD_TLS_CERT";
    WORKERS = "NOVA_GUARD_WORKERS", "0",
        "worker threads, each accepting and serving its own connections (0: one per CPU the process may use)",
        "a whole number from 0 (one per CPU) to 1024";
    MAX_CONNECTIONS = "NOVA_GUARD_MAX_CONNECTIONS", "1024",
        "client connections served at once; one more gets a 503 and is closed",
        "a whole number, at least 1";
    TRUSTED_PROXIES = "NOVA_GUARD_TRUSTED_PROXIES", "",
        "comma-separated CIDRs of the proxies in front (e.g. the load balancer's /32s): only theirs are Forwarded and X-Forwarded-* kept",
        "a comma-separated list of CIDRs like 10.0.0.11/32,::1/128";
    SHUTDOWN_GRACE = "NOVA_GUARD_SHUTDOWN_GRACE", "30s",
        "after SIGTERM, exchanges in flight may finish within this",
        DURATION;
    // What a client may send, and how slowly.
    MAX_HEADER_BYTES = "NOVA_GUARD_MAX_HEADER_BYTES", "65536",
        "a request head larger than this gets 431 (at least 8192)",
        "a whole number of bytes, at least 8192";
    MAX_HEADERS = "NOVA_GUARD_MAX_HEADERS", "100",
        "header lines allowed in a request head; more get 431",
        "a whole number from 8 to 10000";
    MAX_URI_BYTES = "NOVA_GUARD_MAX_URI_BYTES", "8192",
        "a request target longer than this gets 414",
        "a whole number of bytes from 256 to 65534";
    MAX_REQUESTS_PER_CONNECTION = "NOVA_GUARD_MAX_REQUESTS_PER_CONNECTION", "1000",
        "requests served on one HTTP/1.1 connection; the last answer closes it",
        "a whole number, at least 1";
    CLIENT_HEADER_TIMEOUT = "NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "10s",
        "a client must send its request head within this; also how long an idle connection is kept",
        DURATION;
    CLIENT_BODY_TIMEOUT = "NOVA_GUARD_CLIENT_BODY_TIMEOUT", "30s",
        "a validated body must arrive within this, a streamed one never pause longer (else 408)",
        DURATION;
    CLIENT_SEND_TIMEOUT = "NOVA_GUARD_CLIENT_SEND_TIMEOUT", "60s",
        "a client that takes none of its answer for this long is disconnected",
        DURATION;
    // Nova.
    UPSTREAM = "NOVA_GUARD_UPSTREAM", "http://127.0.0.1:8774",
        "Nova's base URL (http:// or https://host:port[/base-path])",
        "an http:// or https:// URL with a host, like http://127.0.0.1:8774";
    UPSTREAM_CONNECT_TIMEOUT = "NOVA_GUARD_UPSTREAM_CONNECT_TIMEOUT", "5s",
        "connecting to Nova (else 502)",
        DURATION;
    UPSTREAM_TIMEOUT = "NOVA_GUARD_UPSTREAM_TIMEOUT", "120s",
        "Nova's response head must arrive within this (else 504), nor may its answer pause longer; keep it below the load balancer's timeout",
        DURATION;
    UPSTREAM_IDLE_TIMEOUT = "NOVA_GUARD_UPSTREAM_IDLE_TIMEOUT", "60s",
        "an idle connection to Nova is closed after this",
        DURATION;
    UPSTREAM_CA_FILE = "NOVA_GUARD_UPSTREAM_CA_FILE", "",
        "PEM CA bundle an https:// Nova is verified against (default: the system's)",
        "a PEM file of CA certificates";
    UPSTREAM_CLIENT_CERT = "NOVA_GUARD_UPSTREAM_CLIENT_CERT", "",
        "PEM client certificate chain presented to an https:// Nova",
        "a PEM certificate file, set together with NOVA_GUARD_UPSTREAM_CLIENT_KEY";
    UPSTREAM_CLIENT_KEY = "NOVA_GUARD_UPSTREAM_CLIENT_KEY", "",
        "PEM private key of NOVA_GUARD_UPSTREAM_CLIENT_CERT",
        "a PEM private key file, set together with NOVA_GUARD_UPSTREAM_CLIENT_CERT";
    // What is validated, and how.
    PATH_PREFIX = "NOVA_GUARD_PATH_PREFIX", "",
        "path prefix in front of /v2 and /v2.1, e.g. /compute as devstack mounts it",
        "empty, or a path starting with / and not ending with /, like /compute";
    MAX_BODY_BYTES = "NOVA_GUARD_MAX_BODY_BYTES", "114688",
        "largest update, create or server action body validated (Nova's own default); larger gets 413",
        "a whole number of bytes, at least 1";
    NOVA_RELEASE = "NOVA_GUARD_NOVA_RELEASE", "2026.2",
        "the Nova release behind nova-guard, whose schemas, messages and microversions are matched: 2024.1, 2025.1, 2025.2, 2026.1 or 2026.2",
        "one of 2024.1, 2025.1, 2025.2, 2026.1, 2026.2";
    NOVA_PYTHON = "NOVA_GUARD_NOVA_PYTHON", "3.11",
        "the Python running Nova, whose Unicode database its character classes and messages follow: 3.10 to 3.13",
        "one of 3.10, 3.11, 3.12, 3.13";
    MAX_MICROVERSION = "NOVA_GUARD_MAX_MICROVERSION", "",
        "what latest means; versions above it are left to Nova (empty: the release's maximum)",
        "empty, or a microversion like 2.104, at least 2.1";
    MODE = "NOVA_GUARD_MODE", "enforce",
        "enforce, or report: every verdict logged, every request forwarded as received",
        "enforce or report";
    ACCESS_IPV4_DENY = "NOVA_GUARD_ACCESS_IPV4_DENY", "",
        "comma-separated IPv4 CIDRs an accessIPv4 may not be in",
        "a comma-separated list of IPv4 CIDRs like 127.0.0.0/8,169.254.0.0/16";
    ACCESS_IPV4_ALLOW = "NOVA_GUARD_ACCESS_IPV4_ALLOW", "",
        "comma-separated IPv4 CIDRs; when set, an accessIPv4 must be in one of them",
        "a comma-separated list of IPv4 CIDRs like 127.0.0.0/8,169.254.0.0/16";
    ACCESS_IPV6_DENY = "NOVA_GUARD_ACCESS_IPV6_DENY", "",
        "comma-separated IPv6 CIDRs an accessIPv6 may not be in",
        "a comma-separated list of IPv6 CIDRs like ::1/128,fe80::/10";
    ACCESS_IPV6_ALLOW = "NOVA_GUARD_ACCESS_IPV6_ALLOW", "",
        "comma-separated IPv6 CIDRs; when set, an accessIPv6 must be in one of them",
        "a comma-separated list of IPv6 CIDRs like ::1/128,fe80::/10";
    ACCESS_IP_MAPPED_AS_V4 = "NOVA_GUARD_ACCESS_IP_MAPPED_AS_V4", "false",
        "true: an IPv4-mapped accessIPv6 (::ffff:a.b.c.d) is judged as a.b.c.d by the IPv4 lists",
        "true or false";
    // Operators.
    ADMIN_LISTEN = "NOVA_GUARD_ADMIN_LISTEN", "",
        "address of /healthz, /readyz, /metrics and /drain, e.g. 127.0.0.1:9775 (empty: off)",
        "empty, or an address like 127.0.0.1:9775";
    READINESS_INTERVAL = "NOVA_GUARD_READINESS_INTERVAL", "2s",
        "how often Nova is checked (GET /) for /readyz",
        DURATION;
    READINESS_TIMEOUT = "NOVA_GUARD_READINESS_TIMEOUT", "1s",
        "a check of Nova not answered below 500 within this makes /readyz say no",
        DURATION;
    LOG = "NOVA_GUARD_LOG", "info",
        "log filter (tracing EnvFilter syntax)",
        "a tracing filter such as info or nova_guard=debug";
    LOG_FORMAT = "NOVA_GUARD_LOG_FORMAT", "json",
        "json, or text",
        "json or text";
}

/// The declaration of `name`, when nova-guard reads it.
pub fn find(name: &str) -> Option<&'static Var> {
    ALL.iter().find(|v| v.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_declared_once_and_named_for_nova_guard() {
        for (i, v) in ALL.iter().enumerate() {
            assert!(v.name.starts_with("NOVA_GUARD_"), "{}", v.name);
            assert!(
                !v.meaning.is_empty() && !v.expected.is_empty(),
                "{}",
                v.name
            );
            assert!(
                ALL[i + 1..].iter().all(|w| w.name != v.name),
                "{} declared twice",
                v.name
            );
        }
    }
}
