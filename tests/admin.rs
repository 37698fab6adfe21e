//! The admin listener as an operator uses it: readiness that follows Nova,
//! a manual drain (admin `POST /drain`, `nova-guard --drain`), and metrics
//! to alert on. The binary on real sockets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{put, raw, Answer, BadUpstream, Guard, Misbehaviour, Upstream};

const SERVER: &str = "/v2.1/deadbeef/servers/9a1d7f4e-2b44-4f0c-9a2e-5e7b1c0d3f11";

/// Fast readiness checks, so that the tests need not wait long.
const QUICK: &[(&str, &str)] = &[
    ("NOVA_GUARD_ADMIN_LISTEN", "127.0.0.1:0"),
    ("NOVA_GUARD_READINESS_INTERVAL", "100ms"),
    ("NOVA_GUARD_READINESS_TIMEOUT", "200ms"),
];

async fn start(upstream: &str, extra: &[(&str, &str)]) -> (Guard, SocketAddr) {
    let mut env: Vec<(&str, &str)> = QUICK.to_vec();
    env.extend_from_slice(extra);
    let guard = Guard::start(upstream, &env);
    let event = guard
        .wait_event("admin listening")
        .await
        .expect("no admin listener");
    let admin = event["admin"].as_str().unwrap().parse().unwrap();
    (guard, admin)
}

async fn call(addr: SocketAddr, method: &str, path: &str) -> Answer {
    raw(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
}

/// Poll `/readyz` until it answers `status` (bounded).
async fn readyz_becomes(admin: SocketAddr, status: u16) -> Answer {
    let mut last = call(admin, "GET", "/readyz").await;
    for _ in 0..200 {
        if last.status == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        last = call(admin, "GET", "/readyz").await;
    }
    panic!(
        "/readyz never answered {status}: {} {}",
        last.status,
        last.text()
    );
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn readiness_follows_nova_s_health() {
    // A Nova that accepts connections and never answers: not ready, though
    // connecting to it works.
    let stalled = BadUpstream::start(Misbehaviour::Stall).await;
    let (_guard, admin) = start(&stalled.url(), &[]).await;
    let a = readyz_becomes(admin, 503).await;
    assert_eq!(a.text(), "upstream unreachable\n");
    let m = call(admin, "GET", "/metrics").await.text();
    assert_eq!(metric(&m, "nova_guard_ready"), Some(0.0), "{m}");
    assert_eq!(metric(&m, "nova_guard_upstream_up"), Some(0.0), "{m}");

    // A Nova that answers, then goes away, then comes back on its port.
    let up = Upstream::start().await;
    let (_guard, admin) = start(&up.url(), &[]).await;
    assert_eq!(call(admin, "GET", "/readyz").await.status, 200);
    let m = call(admin, "GET", "/metrics").await.text();
    assert_eq!(metric(&m, "nova_guard_ready"), Some(1.0), "{m}");
    let addr = up.addr;
    up.stop().await;
    drop(up);
    readyz_becomes(admin, 503).await;
    let _back = Upstream::start_on(addr).await;
    readyz_becomes(admin, 200).await;
}

#[tokio::test]
async fn an_operator_drains_one_instance_and_puts_it_back() {
    let up = Upstream::start().await;
    let (guard, admin) = start(&up.url(), &[]).await;
    assert_eq!(call(admin, "GET", "/readyz").await.status, 200);
    assert_eq!(call(admin, "GET", "/drain").await.text(), "serving\n");

    let drained = call(admin, "POST", "/drain").await;
    assert_eq!(
        (drained.status, drained.text().as_str()),
        (200, "draining\n")
    );
    let ready = call(admin, "GET", "/readyz").await;
    assert_eq!((ready.status, ready.text().as_str()), (503, "draining\n"));
    // Still serving whatever the load balancer still sends.
    let a = raw(
        guard.addr,
        &put(SERVER, &[], br#"{"server": {"name": "a"}}"#),
    )
    .await;
    assert_eq!(a.status, 200);
    let m = call(admin, "GET", "/metrics").await.text();
    assert_eq!(metric(&m, "nova_guard_draining"), Some(1.0), "{m}");
    assert!(guard
        .wait_event("draining on request: /readyz says no, connections are still served")
        .await
        .is_some());

    assert_eq!(call(admin, "DELETE", "/drain").await.text(), "serving\n");
    assert_eq!(call(admin, "GET", "/readyz").await.status, 200);
    assert_eq!(call(admin, "PUT", "/drain").await.status, 405);

    // As a preStop hook does it: the binary itself, in the same environment.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nova-guard"))
        .arg("--drain")
        .env_clear()
        .env("NOVA_GUARD_ADMIN_LISTEN", admin.to_string())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(call(admin, "GET", "/readyz").await.status, 503);
    // Without an admin listener to ask, it says so.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nova-guard"))
        .args(["--drain", "1s"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOVA_GUARD_ADMIN_LISTEN"));
}

#[tokio::test]
async fn metrics_an_operator_can_alert_on() {
    let up = Upstream::start().await;
    let (guard, admin) = start(&up.url(), &[("NOVA_GUARD_MODE", "report")]).await;
    // Report-only mode: forwarded, and counted with the rule that would
    // have refused it.
    let a = raw(
        guard.addr,
        &put(SERVER, &[], br#"{"server": {"name": ""}}"#),
    )
    .await;
    assert_eq!(a.status, 200);
    guard.wait_exchanges(1).await;
    let m = call(admin, "GET", "/metrics").await;
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = m.text();
    assert_eq!(
        metric(
            &m,
            r#"nova_guard_reported_total{operation="update",field="name",rule="minLength"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, r#"nova_guard_mode{mode="report"}"#),
        Some(1.0),
        "{m}"
    );
    assert_eq!(metric(&m, r#"nova_guard_mode{mode="enforce"}"#), Some(0.0));
    let build = m
        .lines()
        .find(|l| l.starts_with("nova_guard_build_info{version=\""))
        .unwrap_or_else(|| panic!("no build_info in\n{m}"));
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{build}"
    );
    assert!(
        build.contains("commit=\"") && build.ends_with(" 1"),
        "{build}"
    );
    assert!(
        metric(
            &m,
            r#"nova_guard_request_duration_seconds_count{operation="update"}"#
        ) == Some(1.0),
        "{m}"
    );
    for process in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let v = metric(&m, process).unwrap_or_else(|| panic!("{process} missing in\n{m}"));
        // A fresh process may not have used a clock tick of CPU yet.
        assert!(
            v > 0.0 || (process == "process_cpu_seconds_total" && v == 0.0),
            "{process} {v}"
        );
    }
}
