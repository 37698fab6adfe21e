use std::collections::HashMap;
use std::time::Duration;

use super::*;

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
    assert_eq!(c.listener.listen, "0.0.0.0:8775".parse().unwrap());
    assert_eq!(
        c.upstream.uri.authority().unwrap().as_str(),
        "127.0.0.1:8774"
    );
    assert_eq!(c.upstream.base_path, "");
    assert!(c.upstream.tls.is_none());
    assert!(c.listener.tls.is_none());
    assert_eq!(c.validation.max_body_bytes, 114_688);
    assert_eq!(c.validation.max_microversion, Microversion::new(2, 104));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.limits.header_timeout, Duration::from_secs(10));
    assert_eq!(c.upstream.timeout, Duration::from_secs(120));
    assert_eq!(c.limits.max_header_bytes, 65_536);
    assert!(c.listener.trusted_proxies.is_empty());
    assert_eq!(c.limits.body_timeout, Duration::from_secs(30));
    assert_eq!(c.limits.send_timeout, Duration::from_secs(60));
    assert_eq!(c.upstream.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.limits.max_headers, 100);
    assert_eq!(c.limits.max_uri_bytes, 8192);
    assert_eq!(c.listener.max_connections, 1024);
    assert_eq!(c.limits.max_requests_per_connection, 1000);
    assert_eq!(c.listener.workers, 0);
    assert_eq!(c.admin.listen, None);
}

#[test]
fn limits_are_checked_together() {
    let err = config(&[
        ("NOVA_GUARD_CLIENT_BODY_TIMEOUT", "never"),
        ("NOVA_GUARD_UPSTREAM_IDLE_TIMEOUT", "0s"),
        ("NOVA_GUARD_MAX_HEADERS", "2"),
        ("NOVA_GUARD_MAX_URI_BYTES", "70000"),
        ("NOVA_GUARD_MAX_CONNECTIONS", "0"),
        ("NOVA_GUARD_MAX_REQUESTS_PER_CONNECTION", "-3"),
        ("NOVA_GUARD_ADMIN_LISTEN", "localhost"),
        ("NOVA_GUARD_WORKERS", "2000"),
    ])
    .unwrap_err();
    assert_eq!(err.0.len(), 8, "{err}");
    let c = config(&[
        ("NOVA_GUARD_MAX_URI_BYTES", "65534"),
        ("NOVA_GUARD_ADMIN_LISTEN", "127.0.0.1:9775"),
        ("NOVA_GUARD_WORKERS", "3"),
    ])
    .unwrap();
    assert_eq!(c.admin.listen, Some("127.0.0.1:9775".parse().unwrap()));
    assert_eq!(c.limits.max_uri_bytes, 65_534);
    assert_eq!(c.listener.workers, 3);
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
    let mut vars: Vec<_> = err.0.iter().map(|p| p.var).collect();
    vars.sort_unstable();
    assert_eq!(
        vars,
        [
            "NOVA_GUARD_LISTEN",
            "NOVA_GUARD_LOG_FORMAT",
            "NOVA_GUARD_MAX_BODY_BYTES",
            "NOVA_GUARD_MAX_HEADER_BYTES",
            "NOVA_GUARD_MAX_MICROVERSION",
            "NOVA_GUARD_PATH_PREFIX",
            "NOVA_GUARD_TRUSTED_PROXIES",
            "NOVA_GUARD_UPSTREAM",
            "NOVA_GUARD_UPSTREAM_TIMEOUT",
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
        ("NOVA_GUARD_UPSTREAM_TIMEOUT", "1m30s"),
        ("NOVA_GUARD_TRUSTED_PROXIES", " 10.0.0.0/8 , ::1/128 "),
    ])
    .unwrap();
    assert_eq!(c.upstream.base_path, "/compute");
    assert_eq!(c.upstream.host_port(), "nova.internal:8774");
    assert_eq!(c.listener.shutdown_grace, Duration::from_millis(250));
    assert_eq!(c.upstream.connect_timeout, Duration::from_secs(120));
    assert_eq!(c.upstream.timeout, Duration::from_secs(90));
    assert_eq!(c.listener.trusted_proxies.len(), 2);
}

#[test]
fn an_upstream_with_a_password_is_refused_without_showing_it() {
    for url in [
        "http://admin:s3cret@nova:8774",
        "https://admin:s3cret@nova:8774/compute",
        "http://s3cret@nova:8774",
    ] {
        let err = config(&[("NOVA_GUARD_UPSTREAM", url)]).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("NOVA_GUARD_UPSTREAM=\"http"), "{text}");
        assert!(text.contains("without a user or password"), "{text}");
        assert!(!format!("{err:?}").contains("s3cret"));
    }
    // An '@' in the path is no password.
    assert!(config(&[("NOVA_GUARD_UPSTREAM", "http://nova:8774/a@b")]).is_ok());
}

#[test]
fn mode_and_access_ip_policy() {
    let c = config(&[]).unwrap();
    assert_eq!(c.validation.enforcement, Enforcement::Enforce);
    assert!(c.validation.access_ip_policy.is_empty());
    assert!(!c.validation.access_ip_policy.mapped_as_v4);
    let c = config(&[
        ("NOVA_GUARD_MODE", "report"),
        ("NOVA_GUARD_ACCESS_IPV4_DENY", "127.0.0.1/8, 169.254.0.0/16"),
        ("NOVA_GUARD_ACCESS_IPV6_ALLOW", "2001:db8::/32"),
        ("NOVA_GUARD_ACCESS_IP_MAPPED_AS_V4", "true"),
    ])
    .unwrap();
    assert_eq!(c.validation.enforcement, Enforcement::Report);
    let p = &c.validation.access_ip_policy;
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
fn tls_settings_go_in_pairs_and_only_with_https() {
    let err = config(&[("NOVA_GUARD_TLS_CERT", "/nonexistent.pem")]).unwrap_err();
    assert_eq!(err.0[0].var, "NOVA_GUARD_TLS_KEY");
    let err = config(&[("NOVA_GUARD_UPSTREAM_CLIENT_KEY", "/k.pem")]).unwrap_err();
    assert_eq!(err.0[0].var, "NOVA_GUARD_UPSTREAM_CLIENT_CERT");
    let err = config(&[
        ("NOVA_GUARD_TLS_CERT", "/nonexistent.pem"),
        ("NOVA_GUARD_TLS_KEY", "/nonexistent.key"),
    ])
    .unwrap_err();
    assert!(err.0[0].expected.contains("cannot read"), "{err}");
}

/// The operator guide's configuration table is this list: one row per
/// variable, with its default and its meaning, in this order.
#[test]
fn the_guide_s_table_is_the_declarations() {
    let guide = include_str!("../../docs/operations.md");
    let rows: Vec<&str> = guide
        .lines()
        .filter(|l| l.starts_with("| `NOVA_GUARD_"))
        .collect();
    let expected: Vec<String> = VARIABLES.iter().map(table_row).collect();
    assert_eq!(
        rows,
        expected,
        "docs/operations.md's configuration table must read, in this order:\n{}",
        expected.join("\n")
    );
}

/// A variable's row in the guide's table.
pub fn table_row(v: &Var) -> String {
    let default = if v.default.is_empty() {
        "empty".to_owned()
    } else {
        format!("`{}`", v.default)
    };
    format!("| `{}` | {default} | {} |", v.name, v.meaning)
}

#[test]
fn release_and_python() {
    let c = config(&[]).unwrap();
    assert_eq!(
        c.validation.profile,
        Profile::new(Release::R2026_2, Python::Py3_11)
    );
    let c = config(&[("NOVA_GUARD_NOVA_RELEASE", "2024.1")]).unwrap();
    assert_eq!(
        c.validation.profile,
        Profile::new(Release::R2024_1, Python::Py3_11)
    );
    assert_eq!(c.validation.max_microversion, Microversion::new(2, 96));
    let c = config(&[
        ("NOVA_GUARD_NOVA_RELEASE", "2025.2"),
        ("NOVA_GUARD_NOVA_PYTHON", "3.13"),
        ("NOVA_GUARD_MAX_MICROVERSION", "2.101"),
    ])
    .unwrap();
    assert_eq!(
        c.validation.profile,
        Profile::new(Release::R2025_2, Python::Py3_13)
    );
    assert_eq!(c.validation.max_microversion, Microversion::new(2, 101));

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
    assert_eq!(e.0[1].expected, "one of 3.10, 3.11, 3.12, 3.13");
    // Nova 34 needs Python 3.11.
    let e = config(&[("NOVA_GUARD_NOVA_PYTHON", "3.10")]).unwrap_err();
    assert_eq!(
        (e.0[0].var, e.0[0].expected.as_str()),
        (
            "NOVA_GUARD_NOVA_PYTHON",
            "one of 3.11, 3.12, 3.13 (what Nova 2026.2 runs on)"
        )
    );
    assert!(config(&[
        ("NOVA_GUARD_NOVA_RELEASE", "2026.1"),
        ("NOVA_GUARD_NOVA_PYTHON", "3.10"),
    ])
    .is_ok());
}
