//! The admin listener as an operator uses it: off unless configured,
//! health, readiness that follows Nova and turns off while draining (on a
//! signal, or by hand: admin `POST /drain`, `nova-guard --drain`), and
//! metrics that move as requests flow and that an operator can alert on.
//! The binary on real sockets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{
    free_port, metric, put, raw, send_get, setup, wait_until, Answer, BadUpstream, Conn, Guard,
    Misbehaviour, Upstream, BOUND, SERVER,
};

/// Fast readiness checks, so that the tests need not wait long.
const QUICK: &[(&str, &str)] = &[
    ("NOVA_GUARD_READINESS_INTERVAL", "100ms"),
    ("NOVA_GUARD_READINESS_TIMEOUT", "200ms"),
];

/// With an admin listener and [`QUICK`] readiness checks (and `extra`).
async fn start(upstream: &str, extra: &[(&str, &str)]) -> (Guard, SocketAddr) {
    let mut env: Vec<(&str, &str)> = QUICK.to_vec();
    env.extend_from_slice(extra);
    Guard::start_with_admin(upstream, &env).await
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

#[tokio::test]
async fn the_admin_listener_is_off_unless_configured() {
    let (up, guard) = setup().await;
    assert_eq!(send_get(guard.addr, "/healthz").await.status, 200);
    // That was forwarded to Nova, not answered by an admin endpoint.
    assert_eq!(up.count(), 1);
    assert!(!guard
        .events()
        .iter()
        .any(|e| e["message"] == "admin listening"));
}

#[tokio::test]
async fn health_readiness_and_metrics_that_move_as_requests_flow() {
    let up = Upstream::start().await;
    let (guard, admin) = Guard::start_with_admin(&up.url(), &[]).await;
    let h = send_get(admin, "/healthz").await;
    assert_eq!((h.status, h.text().as_str()), (200, "ok\n"));
    assert_eq!(send_get(admin, "/readyz").await.status, 200);
    assert_eq!(send_get(admin, "/nothing").await.status, 404);
    assert_eq!(up.count(), 0, "admin requests went to Nova");

    let before = send_get(admin, "/metrics").await;
    assert_eq!(before.status, 200);
    assert_eq!(
        before.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(before
        .text()
        .contains("# TYPE nova_guard_request_duration_seconds histogram"));

    let valid = br#"{"server": {"name": "a"}}"#;
    assert_eq!(raw(guard.addr, &put(SERVER, &[], valid)).await.status, 200);
    let bad = br#"{"server": {"name": ""}}"#;
    assert_eq!(raw(guard.addr, &put(SERVER, &[], bad)).await.status, 400);
    let smuggle = b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(raw(guard.addr, smuggle).await.status, 400);
    assert_eq!(send_get(guard.addr, "/v2.1/flavors").await.status, 200);
    guard.wait_exchanges(4).await;
    // One connection held open for the gauge.
    let mut held = Conn::open(guard.addr).await;
    held.send(b"GET /v2.1/flavors HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(held.answer().await.status, 200);
    guard.wait_exchanges(5).await;

    let m = send_get(admin, "/metrics").await.text();
    let count = |s: &str| metric(&m, s).unwrap_or(0.0);
    assert_eq!(
        count(r#"nova_guard_requests_total{operation="update",verdict="forwarded",status="200"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(
        count(r#"nova_guard_requests_total{operation="update",verdict="rejected",status="400"}"#),
        1.0
    );
    assert_eq!(
        count(r#"nova_guard_requests_total{operation="other",verdict="rejected",status="400"}"#),
        1.0
    );
    assert_eq!(
        count(r#"nova_guard_requests_total{operation="other",verdict="passthrough",status="200"}"#),
        2.0
    );
    assert_eq!(
        count(r#"nova_guard_rejections_total{operation="update",field="name",rule="minLength"}"#),
        1.0
    );
    assert_eq!(
        count(
            r#"nova_guard_rejections_total{operation="other",field="",rule="content_length_and_transfer_encoding"}"#
        ),
        1.0
    );
    // By operation: the two updates, the three others.
    let all = |name: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(
        count(r#"nova_guard_request_duration_seconds_bucket{operation="update",le="+Inf"}"#),
        2.0
    );
    assert_eq!(all("nova_guard_request_duration_seconds_count{"), 5.0);
    assert_eq!(all("nova_guard_upstream_duration_seconds_count{"), 3.0);
    assert!(count("nova_guard_open_connections") >= 1.0);
    assert!(count("nova_guard_body_bytes_received_total") >= (valid.len() + bad.len()) as f64);
    assert!(count("nova_guard_body_bytes_sent_total") > 0.0);
    drop(held);
}

#[tokio::test]
async fn readiness_fails_and_upstream_errors_are_counted_when_nova_is_unreachable() {
    let (guard, admin) = Guard::start_with_admin(&format!("http://{}", free_port()), &[]).await;
    assert_eq!(send_get(admin, "/healthz").await.status, 200);
    assert_eq!(send_get(admin, "/readyz").await.status, 503);
    assert_eq!(send_get(guard.addr, "/v2.1/servers").await.status, 502);
    guard.wait_exchanges(1).await;
    let m = send_get(admin, "/metrics").await.text();
    assert_eq!(
        metric(
            &m,
            r#"nova_guard_upstream_errors_total{kind="upstream_connect"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            r#"nova_guard_requests_total{operation="other",verdict="passthrough",status="502"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn readiness_turns_off_while_draining() {
    let up = Upstream::start().await;
    let (mut guard, admin) = Guard::start_with_admin(&up.url(), &[]).await;
    assert_eq!(send_get(admin, "/readyz").await.status, 200);
    let in_flight = tokio::spawn(send_get(guard.addr, "/slow/1500"));
    wait_until("Nova to have the request", || up.count() == 1).await;
    guard.signal("TERM");
    assert!(guard.wait_event("shutting down").await.is_some());
    let r = send_get(admin, "/readyz").await;
    assert_eq!((r.status, r.text().as_str()), (503, "shutting down\n"));
    assert_eq!(send_get(admin, "/healthz").await.status, 200);
    let a = tokio::time::timeout(BOUND, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(guard.wait_exit(BOUND).await.unwrap().code(), Some(0));
}
